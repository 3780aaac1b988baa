/*
 * opt: one table of options per subcommand: name, type, default, bounds,
 * environment variable, help. `--help` and docs/CONFIGURATION.md come from
 * the tables (librdkafka's rdkafka_conf.c idea, pgbouncer's CfKey).
 *
 * Precedence: flags > environment > config file > defaults.
 * The config file is named by --config FILE (or $MBTA_STREAM_CONFIG):
 *
 *     # comments; keys are the long option names
 *     brokers = 127.0.0.1:9092
 *     kafka.linger.ms = 5        # any kafka.* key is a -X property
 *     [produce]                  # keys for one subcommand only
 *     stream = vehicles=/vehicles?filter[route_type]=0,1
 *
 * Keys outside a section are shared by all subcommands and ignored by those
 * that do not know them; an unknown key inside a subcommand's section is an
 * error ("file:line: key: unknown option"). Errors never print a secret.
 * Not thread-safe; parse once at start.
 */
#ifndef MBTA_OPT_H
#define MBTA_OPT_H

#include <stddef.h>
#include <stdio.h>

enum opt_type {
    OPT_STR,  /* dst: char ** (heap, freed by opt_free) */
    OPT_INT,  /* dst: long * */
    OPT_DBL,  /* dst: double * */
    OPT_BOOL, /* dst: int *; "--name" sets 1, "--name=false|0|no" sets 0 */
    OPT_LIST  /* dst: struct strlist *; repeatable */
};

enum {
    OPT_F_SECRET = 1, /* never printed (API keys) */
    OPT_F_MERGE = 2   /* OPT_LIST: later sources append instead of replacing */
};

struct strlist {
    char **v;
    size_t n;
};

struct opt {
    const char *name; /* long option and config-file key */
    int short_name;   /* 0 when none */
    enum opt_type type;
    const char *env; /* environment variable, or NULL */
    const char *def; /* default as text, or NULL */
    double min, max; /* bounds for OPT_INT/OPT_DBL; ignored when equal */
    const char *arg; /* metavar in --help */
    const char *help;
    void *dst;
    int flags;
};

void strlist_push(struct strlist *l, const char *s);
void strlist_fini(struct strlist *l);

/*
 * Fills every dst from defaults, the config file, the environment and argv
 * (argv[0] is the subcommand name). Arguments that are not options are
 * appended to `positional` (may be NULL: then they are an error).
 * Returns 0 on success, 1 when --help was asked (usage already printed to
 * stdout), -1 on error with a one-line reason in errstr.
 */
int opt_parse(const struct opt *opts, const char *cmd, const char *synopsis, int argc, char **argv,
              struct strlist *positional, char *errstr, size_t errsz);

void opt_usage(FILE *fp, const char *cmd, const char *synopsis, const struct opt *opts);

/* Frees what opt_parse allocated into the dsts. */
void opt_free(const struct opt *opts);

#endif
