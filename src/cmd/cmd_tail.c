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
#include "cmd/cmd_args.h"
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
    struct strlist positional = {0};
    struct cmd_args_stream sa;
    char *log_level = NULL;
    long count = 0;
    int raw = 0;
    memset(&sa, 0, sizeof(sa));
    const struct opt opts[] = {
        CMD_ARGS_STREAM_OPTS(&sa),
        {"raw", 0, OPT_BOOL, NULL, NULL, 0, 0, NULL, "print the body bytes as received", &raw, 0},
        {"count", 0, OPT_INT, NULL, "0", 0, 1e12, "N", "exit 0 after N events (0: never)", &count,
         0},
        CMD_ARGS_LOG_LEVEL_OPT(&log_level),
        {NULL, 0, OPT_STR, NULL, NULL, 0, 0, NULL, NULL, NULL, 0},
    };
    struct sse_client *c = NULL;
    struct sse_stream_conf conf;
    struct tail t;
    int rc;

    memset(&t, 0, sizeof(t));
    buf_init(&t.line, (size_t)128 << 20);
    rc = cmd_args_parse(opts, "tail", "[options] URL", argc, argv, &positional, &log_level);
    if (rc >= 0)
        goto out;
    rc = 2;
    if (positional.n != 1) {
        fprintf(stderr, "mbta-stream tail: expected one URL (see --help)\n");
        goto out;
    }
    t.raw = raw;
    t.count = count;
    if (cmd_args_stream_conf(&sa, positional.v[0], &conf) < 0) {
        log_error("out of memory");
        rc = 1;
        goto out;
    }
    struct sse_stream_cbs cbs = {
        .on_event = tail_on_event,
        .on_state = tail_on_state,
        .on_parse_error = tail_on_parse_error,
        .on_raw = tail_on_raw,
    };
    if (!(c = cmd_args_stream_open("tail", &conf, &cbs, &t, &rc)))
        goto out;
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
    cmd_args_stream_fini(&sa);
    opt_free(opts); /* and the header list */
    return rc;
}
