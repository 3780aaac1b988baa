/* cmd_args: see cmd_args.h. */
#include "cmd/cmd_args.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

int cmd_args_parse(const struct opt *opts, const char *cmd, const char *synopsis, int argc,
                   char **argv, struct strlist *positional, char *const *log_level)
{
    char errstr[512];
    int r = opt_parse(opts, cmd, synopsis, argc, argv, positional, errstr, sizeof(errstr));
    if (r == 1)
        return 0;
    if (r < 0) {
        fprintf(stderr, "mbta-stream %s: %s\n", cmd, errstr);
        return 2;
    }
    int lvl = log_level_parse(*log_level);
    if (lvl < 0) {
        fprintf(stderr, "mbta-stream %s: log-level: \"%s\" is not a level\n", cmd, *log_level);
        return 2;
    }
    log_init(cmd, lvl);
    return -1;
}

int cmd_args_stream_conf(struct cmd_args_stream *s, const char *url, struct sse_stream_conf *conf)
{
    free(s->hdrv);
    s->hdrv = calloc(s->headers.n + 1, sizeof(*s->hdrv));
    if (!s->hdrv)
        return -1;
    for (size_t i = 0; i < s->headers.n; i++)
        s->hdrv[i] = s->headers.v[i];
    memset(conf, 0, sizeof(*conf));
    conf->url = url;
    conf->api_key = s->api_key;
    conf->cacert = s->cacert;
    conf->headers = s->hdrv;
    conf->idle_timeout_ms = s->idle_timeout;
    conf->connect_timeout_ms = s->connect_timeout;
    conf->backoff_base_ms = s->backoff_base;
    conf->backoff_cap_ms = s->backoff_cap;
    conf->healthy_ms = s->healthy;
    conf->retry_after_cap_ms = s->retry_after_cap;
    conf->max_line = (size_t)s->max_line;
    conf->max_event = (size_t)s->max_event;
    conf->verbose = s->verbose;
    return 0;
}

struct sse_client *cmd_args_stream_open(const char *cmd, const struct sse_stream_conf *conf,
                                        const struct sse_stream_cbs *cbs, void *opaque, int *rc)
{
    char errstr[512];
    struct sse_client *c = sse_client_new(errstr, sizeof(errstr));
    if (!c) {
        log_error("%s", errstr);
        *rc = 1;
        return NULL;
    }
    if (!sse_client_add(c, conf, cbs, opaque, errstr, sizeof(errstr))) {
        fprintf(stderr, "mbta-stream %s: %s\n", cmd, errstr);
        sse_client_destroy(c);
        *rc = 2;
        return NULL;
    }
    return c;
}

void cmd_args_stream_fini(struct cmd_args_stream *s)
{
    free(s->hdrv);
    s->hdrv = NULL;
}
