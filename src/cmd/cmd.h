/*
 * The subcommands. Each entry point parses its arguments, wires modules and
 * maps results to an exit code; only these may call exit().
 * argv[0] is the subcommand name.
 *
 * Exit codes: 0 ok, 1 runtime failure (something undelivered, a fatal source
 * or sink error), 2 usage or configuration error.
 */
#ifndef MBTA_CMD_H
#define MBTA_CMD_H

int cmd_produce(int argc, char **argv);
int cmd_consume(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_record(int argc, char **argv);
int cmd_tail(int argc, char **argv);
int cmd_migrate(int argc, char **argv);

#endif
