/*
 * mbta-stream tail URL: kcat for SSE. Connects with the same key, headers
 * and reconnection logic as `produce` (sse_stream) and prints each
 * dispatched event to stdout as one JSON line
 *
 *     {"event":"update","data":"{\"id\":...}","id":""}
 *
 * (`data` is a JSON string holding the data field; bytes that are not valid
 * UTF-8 become U+FFFD), or with --raw the body bytes exactly as received.
 * Logs go to stderr. Exit: 0 on SIGINT/SIGTERM or after --count events, 1
 * when the stream stopped on a fatal status (one line names it), 2 on a
 * usage error.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "sse/sse_stream.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/opt.h"
#include "util/sig.h"

struct tail {
    int raw;
    long count;
    uint64_t events;
    int stopped;
    int out_error;
    struct buf line;
};

/* Appends s as the body of a JSON string: escapes, and U+FFFD for every
 * byte that does not start a valid UTF-8 sequence. */
static void tail_json_str(struct buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t i = 0, run = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        size_t len = 0;
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            i++;
            run++;
            continue;
        }
        buf_append(b, s + i - run, run);
        run = 0;
        if (c < 0x80) {
            char e[6] = {'\\', 0, 0, 0, 0, 0};
            size_t el = 2;
            switch (c) {
            case '"':
                e[1] = '"';
                break;
            case '\\':
                e[1] = '\\';
                break;
            case '\n':
                e[1] = 'n';
                break;
            case '\r':
                e[1] = 'r';
                break;
            case '\t':
                e[1] = 't';
                break;
            case '\b':
                e[1] = 'b';
                break;
            case '\f':
                e[1] = 'f';
                break;
            default:
                e[1] = 'u';
                e[2] = '0';
                e[3] = '0';
                e[4] = hex[c >> 4];
                e[5] = hex[c & 15];
                el = 6;
            }
            buf_append(b, e, el);
            i++;
            continue;
        }
        /* Multi-byte UTF-8: validate (no overlongs, no surrogates, <= U+10FFFF). */
        unsigned char c1 = i + 1 < n ? (unsigned char)s[i + 1] : 0;
        unsigned char c2 = i + 2 < n ? (unsigned char)s[i + 2] : 0;
        unsigned char c3 = i + 3 < n ? (unsigned char)s[i + 3] : 0;
        if (c >= 0xC2 && c <= 0xDF && (c1 & 0xC0) == 0x80)
            len = 2;
        else if (c >= 0xE0 && c <= 0xEF && (c1 & 0xC0) == 0x80 && (c2 & 0xC0) == 0x80 &&
                 !(c == 0xE0 && c1 < 0xA0) && !(c == 0xED && c1 > 0x9F))
            len = 3;
        else if (c >= 0xF0 && c <= 0xF4 && (c1 & 0xC0) == 0x80 && (c2 & 0xC0) == 0x80 &&
                 (c3 & 0xC0) == 0x80 && !(c == 0xF0 && c1 < 0x90) && !(c == 0xF4 && c1 > 0x8F))
            len = 4;
        if (len) {
            buf_append(b, s + i, len);
            i += len;
        } else {
            buf_append(b, "\xEF\xBF\xBD", 3);
            i++;
        }
    }
    buf_append(b, s + i - run, run);
}

static void tail_write(struct tail *t, const char *p, size_t n)
{
    if (t->out_error)
        return;
    if (fwrite(p, 1, n, stdout) != n)
        t->out_error = errno ? errno : EIO;
}

static void tail_on_event(void *opaque, struct sse_stream *s, const struct sse_event *ev,
                          int64_t received_ns)
{
    struct tail *t = opaque;
    (void)s;
    (void)received_ns;
    if (t->count && t->events >= (uint64_t)t->count)
        return; /* the rest of the last chunk after --count was reached */
    t->events++;
    if (t->raw)
        return;
    buf_reset(&t->line);
    buf_append(&t->line, "{\"event\":\"", 10);
    tail_json_str(&t->line, ev->type, ev->type_len);
    buf_append(&t->line, "\",\"data\":\"", 10);
    tail_json_str(&t->line, ev->data, ev->data_len);
    buf_append(&t->line, "\",\"id\":\"", 8);
    tail_json_str(&t->line, ev->id, ev->id_len);
    if (buf_append(&t->line, "\"}\n", 3) != BUF_OK) {
        log_error("%s: event too large to print (%zu bytes of data)", sse_stream_name(s),
                  ev->data_len);
        return;
    }
    tail_write(t, t->line.data, t->line.len);
}

static void tail_on_raw(void *opaque, struct sse_stream *s, const char *buf, size_t n,
                        int64_t received_ns)
{
    struct tail *t = opaque;
    (void)s;
    (void)received_ns;
    if (t->raw)
        tail_write(t, buf, n);
}

static void tail_on_state(void *opaque, struct sse_stream *s, enum sse_state st, int http_status,
                          const char *msg)
{
    struct tail *t = opaque;
    switch (st) {
    case SSE_CONNECTED:
        log_info("%s: connected (HTTP %d)", sse_stream_name(s), http_status);
        break;
    case SSE_DISCONNECTED:
        log_warn("%s: disconnected: %s", sse_stream_name(s), msg);
        break;
    case SSE_STOPPED:
        log_error("%s: stopped: %s", sse_stream_name(s), msg);
        t->stopped = 1;
        break;
    }
}

static void tail_on_parse_error(void *opaque, struct sse_stream *s, const char *msg)
{
    (void)opaque;
    log_warn("%s: %s", sse_stream_name(s), msg);
}

int cmd_tail(int argc, char **argv)
{
    struct strlist headers = {0}, positional = {0};
    char *api_key = NULL, *log_level = NULL;
    long idle_timeout = 0, connect_timeout = 0, backoff_base = 0, backoff_cap = 0, healthy = 0;
    long retry_after_cap = 0, max_line = 0, max_event = 0, count = 0;
    int raw = 0, verbose = 0;
    const struct opt opts[] = {
        {"header", 'H', OPT_LIST, NULL, NULL, 0, 0, "'NAME: VALUE'",
         "add a request header (repeatable)", &headers, 0},
        {"raw", 0, OPT_BOOL, NULL, NULL, 0, 0, NULL, "print the body bytes as received", &raw, 0},
        {"api-key", 0, OPT_STR, "MBTA_API_KEY", NULL, 0, 0, "KEY", "sent as x-api-key", &api_key,
         OPT_F_SECRET},
        {"count", 0, OPT_INT, NULL, "0", 0, 1e12, "N", "exit 0 after N events (0: never)", &count,
         0},
        {"idle-timeout", 0, OPT_INT, NULL, "75000", 1, 86400000, "MS",
         "no byte for this long: reconnect", &idle_timeout, 0},
        {"connect-timeout", 0, OPT_INT, NULL, "10000", 1, 600000, "MS", "TCP+TLS connect timeout",
         &connect_timeout, 0},
        {"backoff-base", 0, OPT_INT, NULL, "500", 1, 3600000, "MS",
         "first reconnect waits up to this (full jitter)", &backoff_base, 0},
        {"backoff-cap", 0, OPT_INT, NULL, "30000", 1, 3600000, "MS", "longest reconnect backoff",
         &backoff_cap, 0},
        {"healthy", 0, OPT_INT, NULL, "60000", 1, 86400000, "MS",
         "connected this long resets the backoff", &healthy, 0},
        {"retry-after-cap", 0, OPT_INT, NULL, "300000", 1, 86400000, "MS",
         "longest wait a 429 may ask for", &retry_after_cap, 0},
        {"max-line", 0, OPT_INT, NULL, "16777216", 16, 1e10, "BYTES", "longest SSE line", &max_line,
         0},
        {"max-event", 0, OPT_INT, NULL, "67108864", 16, 1e10, "BYTES",
         "largest event data (bigger ones are skipped)", &max_event, 0},
        {"verbose", 'v', OPT_BOOL, NULL, NULL, 0, 0, NULL,
         "libcurl verbose output on stderr (API key masked)", &verbose, 0},
        {"log-level", 0, OPT_STR, "MBTA_LOG_LEVEL", "info", 0, 0, "LEVEL",
         "error, warn, info or debug", &log_level, 0},
        {NULL, 0, OPT_STR, NULL, NULL, 0, 0, NULL, NULL, NULL, 0},
    };
    char errstr[512];
    struct sse_client *c = NULL;
    const char **hdrv = NULL;
    struct tail t;
    int rc = 2;

    memset(&t, 0, sizeof(t));
    buf_init(&t.line, (size_t)128 << 20);
    int r =
        opt_parse(opts, "tail", "[options] URL", argc, argv, &positional, errstr, sizeof(errstr));
    if (r == 1) {
        rc = 0;
        goto out;
    }
    if (r < 0) {
        fprintf(stderr, "mbta-stream tail: %s\n", errstr);
        goto out;
    }
    if (positional.n != 1) {
        fprintf(stderr, "mbta-stream tail: expected one URL (see --help)\n");
        goto out;
    }
    int lvl = log_level_parse(log_level);
    if (lvl < 0) {
        fprintf(stderr, "mbta-stream tail: log-level: \"%s\" is not a level\n", log_level);
        goto out;
    }
    log_init("tail", lvl);
    t.raw = raw;
    t.count = count;

    hdrv = calloc(headers.n + 1, sizeof(*hdrv)); /* NULL-terminated for sse_stream_conf */
    if (!hdrv)
        abort();
    for (size_t i = 0; i < headers.n; i++)
        hdrv[i] = headers.v[i];
    struct sse_stream_conf conf = {
        .name = NULL,
        .url = positional.v[0],
        .api_key = api_key,
        .headers = hdrv,
        .idle_timeout_ms = idle_timeout,
        .connect_timeout_ms = connect_timeout,
        .backoff_base_ms = backoff_base,
        .backoff_cap_ms = backoff_cap,
        .healthy_ms = healthy,
        .max_line = (size_t)max_line,
        .max_event = (size_t)max_event,
        .verbose = verbose,
        .retry_after_cap_ms = retry_after_cap,
    };
    struct sse_stream_cbs cbs = {
        .on_event = tail_on_event,
        .on_state = tail_on_state,
        .on_parse_error = tail_on_parse_error,
        .on_raw = tail_on_raw,
    };
    if (!(c = sse_client_new(errstr, sizeof(errstr)))) {
        log_error("%s", errstr);
        rc = 1;
        goto out;
    }
    if (!sse_client_add(c, &conf, &cbs, &t, errstr, sizeof(errstr))) {
        fprintf(stderr, "mbta-stream tail: %s\n", errstr);
        goto out;
    }
    sig_install();
    rc = 0;
    while (!sig_stop) {
        int live = sse_client_run(c, 200);
        if (!t.out_error && fflush(stdout) != 0)
            t.out_error = errno ? errno : EIO;
        if (t.out_error) {
            /* A closed pipe (tail | head) is a normal way to stop. */
            if (t.out_error != EPIPE) {
                log_error("stdout: %s", strerror(t.out_error));
                rc = 1;
            }
            break;
        }
        if (t.stopped || live == 0) {
            rc = 1;
            break;
        }
        if (t.count && t.events >= (uint64_t)t.count)
            break;
    }
out:
    sse_client_destroy(c);
    fflush(stdout);
    buf_fini(&t.line);
    strlist_fini(&positional);
    free(hdrv);
    opt_free(opts); /* and the header list */
    return rc;
}
