/*
 * mbta-stream record URL --out FILE: writes the raw body bytes of an SSE
 * stream with their receive times (src/serve/recfile.h, docs/SERVE.md),
 * reconnecting like `tail` does (sse_stream). Stops on SIGINT/SIGTERM,
 * after --duration seconds or --max-bytes bytes. The API key is sent as
 * x-api-key and never written to the file.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "cmd/cmd_args.h"
#include "serve/recfile.h"
#include "sse/sse_stream.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/opt.h"
#include "util/sig.h"

struct rec {
    FILE *fp;
    int64_t t0;
    long long bytes, max_bytes;
    int err;
};

static int64_t rec_ns(struct rec *r, int64_t now)
{
    int64_t d = now - r->t0;
    return d > 0 ? d : 0;
}

static void rec_on_raw(void *opaque, struct sse_stream *s, const char *buf, size_t n,
                       int64_t received_ns)
{
    struct rec *r = opaque;
    (void)s;
    if (!r->err && recfile_write_data(r->fp, rec_ns(r, received_ns), buf, n))
        r->err = errno ? errno : EIO;
    r->bytes += (long long)n;
}

static void rec_on_state(void *opaque, struct sse_stream *s, enum sse_state st, int http_status,
                         const char *msg)
{
    struct rec *r = opaque;
    int64_t ns = rec_ns(r, clock_realtime_ns());
    if (st == SSE_CONNECTED) {
        log_info("%s: connected (%d)", sse_stream_name(s), http_status);
        if (!r->err && recfile_write_connect(r->fp, ns, http_status))
            r->err = errno ? errno : EIO;
    } else {
        log_warn("%s: %s: %s", sse_stream_name(s), st == SSE_STOPPED ? "stopped" : "disconnected",
                 msg ? msg : "");
        if (!r->err && recfile_write_close(r->fp, ns, msg ? msg : "disconnected"))
            r->err = errno ? errno : EIO;
    }
    if (!r->err && fflush(r->fp))
        r->err = errno ? errno : EIO;
}

static void rec_on_event(void *opaque, struct sse_stream *s, const struct sse_event *ev,
                         int64_t received_ns)
{
    (void)opaque;
    (void)s;
    (void)ev;
    (void)received_ns;
}

int cmd_record(int argc, char **argv)
{
    struct strlist positional = {0};
    struct cmd_args_stream sa;
    char *out_path = NULL, *log_level = NULL, *masked = NULL;
    double duration = 0;
    long max_bytes = 0;
    memset(&sa, 0, sizeof(sa));
    const struct opt opts[] = {
        {"out", 'o', OPT_STR, NULL, NULL, 0, 0, "FILE", "the recording to write (required)",
         &out_path, 0},
        {"duration", 0, OPT_DBL, NULL, "0", 0, 1e9, "SEC", "stop after SEC seconds (0: never)",
         &duration, 0},
        {"max-bytes", 0, OPT_INT, NULL, "0", 0, 1e15, "N", "stop after N body bytes (0: never)",
         &max_bytes, 0},
        CMD_ARGS_STREAM_OPTS(&sa),
        CMD_ARGS_LOG_LEVEL_OPT(&log_level),
        {NULL, 0, OPT_STR, NULL, NULL, 0, 0, NULL, NULL, NULL, 0},
    };
    struct sse_client *c = NULL;
    struct sse_stream_conf conf;
    struct buf comment;
    struct rec r;
    int rc;
    memset(&r, 0, sizeof(r));
    buf_init(&comment, 64 * 1024);
    rc = cmd_args_parse(opts, "record", "[options] URL --out FILE", argc, argv, &positional,
                        &log_level);
    if (rc >= 0)
        goto out;
    rc = 2;
    if (positional.n != 1 || !out_path) {
        fprintf(stderr, "mbta-stream record: expected one URL and --out FILE (see --help)\n");
        goto out;
    }
    r.max_bytes = max_bytes;
    if (cmd_args_stream_conf(&sa, positional.v[0], &conf) < 0 ||
        !(masked = sse_stream_mask_url(positional.v[0]))) {
        log_error("out of memory");
        rc = 1;
        goto out;
    }
    conf.name = "record";
    /* The URL is checked before the file is created; no callback fires
     * before sse_client_run. */
    struct sse_stream_cbs cbs = {
        .on_event = rec_on_event,
        .on_state = rec_on_state,
        .on_raw = rec_on_raw,
    };
    if (!(c = cmd_args_stream_open("record", &conf, &cbs, &r, &rc)))
        goto out;
    rc = 2;
    if (!(r.fp = fopen(out_path, "wb"))) {
        fprintf(stderr, "mbta-stream record: %s: %s\n", out_path, strerror(errno));
        goto out;
    }
    /* A URL too long for the comment cap is cut, not written half-masked. */
    if (buf_printf(&comment, "url %s", masked) != BUF_OK)
        buf_printf(&comment, "url (too long to note)");
    r.t0 = clock_realtime_ns();
    if (recfile_write_header(r.fp, comment.data)) {
        fprintf(stderr, "mbta-stream record: %s: %s\n", out_path, strerror(errno));
        rc = 1;
        goto out;
    }
    sig_install();
    int64_t end_ms = duration > 0 ? clock_mono_ms() + (int64_t)(duration * 1000) : 0;
    rc = 0;
    while (!sig_stop && !r.err) {
        int live = sse_client_run(c, 100);
        if (live == 0) {
            log_error("the stream stopped for good; see above");
            rc = 1;
            break;
        }
        if (end_ms && clock_mono_ms() >= end_ms)
            break;
        if (r.max_bytes && r.bytes >= r.max_bytes)
            break;
    }
    if (!r.err && recfile_write_close(r.fp, rec_ns(&r, clock_realtime_ns()), "record stopped"))
        r.err = errno ? errno : EIO;
    if (r.err) {
        log_error("%s: write failed: %s", out_path, strerror(r.err));
        rc = 1;
    }
    log_info("%s: %lld body bytes recorded", out_path, r.bytes);
out:
    sse_client_destroy(c);
    if (r.fp && fclose(r.fp) && rc == 0) {
        log_error("%s: %s", out_path, strerror(errno));
        rc = 1;
    }
    free(masked);
    buf_fini(&comment);
    strlist_fini(&positional);
    cmd_args_stream_fini(&sa);
    opt_free(opts);
    return rc;
}
