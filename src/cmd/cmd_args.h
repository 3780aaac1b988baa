/*
 * cmd_args: what the entry points share when they read their arguments:
 * opt_parse followed by the log level (one
 * usage line on stderr, exit codes as cmd.h says), and the option table
 * rows and sse_stream_conf of an SSE source, so that `record` reconnects
 * exactly like `tail` and both take the same flags.
 *
 * It does not open anything or log anything but usage errors.
 */
#ifndef MBTA_CMD_ARGS_H
#define MBTA_CMD_ARGS_H

#include "sse/sse_stream.h"
#include "util/opt.h"

/*
 * opt_parse into opts, then log_init(cmd, *log_level).
 * Returns -1 to go on, or the exit code to return at once: 0 after --help,
 * 2 on a usage error (its one line already on stderr, "mbta-stream CMD: ...").
 */
int cmd_args_parse(const struct opt *opts, const char *cmd, const char *synopsis, int argc,
                   char **argv, struct strlist *positional, char *const *log_level);

/* The --log-level row every subcommand has (p: char **), read by
 * cmd_args_parse. */
/* clang-format off */
#define CMD_ARGS_LOG_LEVEL_OPT(p)                                                                  \
    {"log-level", 0, OPT_STR, "MBTA_LOG_LEVEL", "info", 0, 0, "LEVEL",                             \
     "error, warn, info or debug", (p), 0}
/* clang-format on */

/* The flags of one SSE source; filled by opt_parse through the rows below. */
struct cmd_args_stream {
    struct strlist headers;
    char *api_key, *cacert;
    long idle_timeout, connect_timeout, backoff_base, backoff_cap, healthy, retry_after_cap;
    long max_line, max_event;
    int verbose;
    const char **hdrv; /* NULL-terminated copy for sse_stream_conf */
};

/* The option-table rows of an SSE source (s: struct cmd_args_stream *):
 * the connection's, the parser's caps and -v. `produce` takes the first and
 * the last and has its own --max-event (one cap for lines and events). */
/* clang-format off */
#define CMD_ARGS_STREAM_OPTS(s)                                                                  \
    CMD_ARGS_CONN_OPTS(s), CMD_ARGS_CAPS_OPTS(s), CMD_ARGS_VERBOSE_OPT(s)
#define CMD_ARGS_CONN_OPTS(s)                                                                    \
    {"header", 'H', OPT_LIST, NULL, NULL, 0, 0, "'NAME: VALUE'",                                 \
     "add a request header (repeatable)", &(s)->headers, 0},                                     \
    {"api-key", 0, OPT_STR, "MBTA_API_KEY", NULL, 0, 0, "KEY", "sent as x-api-key",              \
     &(s)->api_key, OPT_F_SECRET},                                                               \
    {"cacert", 0, OPT_STR, NULL, NULL, 0, 0, "FILE",                                             \
     "CA certificates (PEM) to verify the server with, instead of the system's", &(s)->cacert, 0}, \
    {"idle-timeout", 0, OPT_INT, NULL, "75000", 1, 86400000, "MS",                               \
     "no byte for this long: reconnect", &(s)->idle_timeout, 0},                                 \
    {"connect-timeout", 0, OPT_INT, NULL, "10000", 1, 600000, "MS", "TCP+TLS connect timeout",   \
     &(s)->connect_timeout, 0},                                                                  \
    {"backoff-base", 0, OPT_INT, NULL, "500", 1, 3600000, "MS",                                  \
     "first reconnect waits up to this (full jitter)", &(s)->backoff_base, 0},                   \
    {"backoff-cap", 0, OPT_INT, NULL, "30000", 1, 3600000, "MS", "longest reconnect backoff",    \
     &(s)->backoff_cap, 0},                                                                      \
    {"healthy", 0, OPT_INT, NULL, "60000", 1, 86400000, "MS",                                    \
     "connected this long resets the backoff", &(s)->healthy, 0},                                \
    {"retry-after-cap", 0, OPT_INT, NULL, "300000", 1, 86400000, "MS",                           \
     "longest wait a 429 or an SSE retry: may ask for", &(s)->retry_after_cap, 0}
#define CMD_ARGS_CAPS_OPTS(s)                                                                    \
    {"max-line", 0, OPT_INT, NULL, "16777216", 16, 1e10, "BYTES", "longest SSE line",            \
     &(s)->max_line, 0},                                                                         \
    {"max-event", 0, OPT_INT, NULL, "67108864", 16, 1e10, "BYTES",                               \
     "largest event data (bigger ones are skipped)", &(s)->max_event, 0}
#define CMD_ARGS_VERBOSE_OPT(s)                                                                  \
    {"verbose", 'v', OPT_BOOL, NULL, NULL, 0, 0, NULL,                                           \
     "libcurl verbose output on stderr (API key masked)", &(s)->verbose, 0}
/* clang-format on */

/* Fills conf from s for url (name NULL: the masked URL). conf borrows from
 * s and url. Returns 0, or -1 when out of memory. */
int cmd_args_stream_conf(struct cmd_args_stream *s, const char *url, struct sse_stream_conf *conf);
/* sse_client_new and sse_client_add of one stream. Returns the client
 * (caller frees with sse_client_destroy), or NULL with *rc the exit code:
 * 2 for a bad URL or header (one line "mbta-stream CMD: ..." on stderr),
 * 1 when libcurl cannot start (logged). */
struct sse_client *cmd_args_stream_open(const char *cmd, const struct sse_stream_conf *conf,
                                        const struct sse_stream_cbs *cbs, void *opaque, int *rc);
/* Frees what cmd_args_stream_conf allocated (the strings opt_free frees). */
void cmd_args_stream_fini(struct cmd_args_stream *s);

#endif
