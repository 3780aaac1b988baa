/*
 * mbta-stream: MBTA V3 server-sent events -> Kafka -> PostgreSQL.
 * This file only dispatches to a subcommand (src/cmd/cmd_*.c).
 */
#include <stdio.h>
#include <string.h>

#include "cmd/cmd.h"
#include "util/log.h"

#ifndef MBTA_STREAM_VERSION
#define MBTA_STREAM_VERSION "0.1.0"
#endif

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *what;
} commands[] = {
    {"produce", cmd_produce, "stream MBTA SSE endpoints into Kafka topics"},
    {"consume", cmd_consume, "load Kafka topics into PostgreSQL, typed and enriched"},
    {"serve", cmd_serve, "an MBTA-compatible SSE simulator and replayer"},
    {"record", cmd_record, "capture a live stream to a file for replay"},
    {"tail", cmd_tail, "print the events of an SSE URL as JSON lines"},
    {"migrate", cmd_migrate, "create or upgrade the PostgreSQL schema"},
};

static void usage(FILE *fp)
{
    fprintf(fp, "usage: mbta-stream COMMAND [options]   (mbta-stream COMMAND --help)\n\n"
                "commands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(fp, "  %-9s %s\n", commands[i].name, commands[i].what);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "-V") || !strcmp(argv[1], "--version")) {
        printf("mbta-stream %s\n", MBTA_STREAM_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (!strcmp(argv[1], commands[i].name)) {
            log_init(commands[i].name, LOG_INFO);
            return commands[i].fn(argc - 1, argv + 1);
        }
    fprintf(stderr, "mbta-stream: unknown command \"%s\" (see mbta-stream --help)\n", argv[1]);
    return 2;
}
