/*
 * test_sse_parser: table-driven over the tests/data/sse/NAME.cases files (format in
 * whatwg.cases). Each case is fed whole, split in two at every offset, and
 * one byte at a time; every feeding must give exactly the expected events,
 * errors, retry and last event ID. A few behaviours that a fixture cannot
 * express (callback stop, reset, memory caps) are tested in code below.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sse/sse_parser.h"
#include "t.h"
#include "util/buf.h"

#define CASES_DIR "tests/data/sse"

/* Event log, one canonical escaped line per callback. */
static void esc(struct buf *out, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\\' || c == '|')
            buf_printf(out, "\\%c", c);
        else if (c == '\n')
            buf_append(out, "\\n", 2);
        else if (c == '\r')
            buf_append(out, "\\r", 2);
        else if (c < 0x20 || c >= 0x7f)
            buf_printf(out, "\\x%02X", c);
        else
            buf_putc(out, (char)c);
    }
}

static int on_event(void *opaque, const struct sse_event *ev)
{
    struct buf *log = opaque;
    buf_append(log, "< ", 2);
    esc(log, ev->type, ev->type_len);
    buf_putc(log, '|');
    esc(log, ev->data, ev->data_len);
    buf_putc(log, '|');
    esc(log, ev->id, ev->id_len);
    buf_putc(log, '\n');
    return 0;
}

static void on_error(void *opaque, enum sse_err err, const char *msg)
{
    struct buf *log = opaque;
    (void)msg;
    buf_printf(log, "! %s\n", err == SSE_ERR_TOOBIG ? "toobig" : "other");
}

/* Unescapes a fixture string; returns its length. */
static size_t unesc(const char *s, char *out)
{
    size_t n = 0;
    while (*s) {
        if (*s != '\\') {
            out[n++] = *s++;
            continue;
        }
        s++;
        switch (*s) {
        case 'n':
            out[n++] = '\n';
            break;
        case 'r':
            out[n++] = '\r';
            break;
        case 't':
            out[n++] = '\t';
            break;
        case '0':
            out[n++] = '\0';
            break;
        case 'x': {
            char hex[3] = {s[1], s[2], 0};
            out[n++] = (char)strtol(hex, NULL, 16);
            s += 2;
            break;
        }
        default:
            out[n++] = *s;
            break;
        }
        s++;
    }
    return n;
}

struct tcase {
    char name[128];
    size_t max_line, max_event;
    struct buf input;
    struct buf expect; /* canonical log */
    long retry;        /* -2: not checked */
    int check_id;
    char lastid[256];
};

/* Feeds `in` in chunks of the given boundaries; returns the log. */
static void run_feed(const struct tcase *tc, const size_t *cuts, size_t ncuts, struct buf *log)
{
    struct sse_parser_conf conf = {tc->max_line, tc->max_event};
    struct sse_parser *p = sse_parser_new(&conf, on_event, on_error, log);
    size_t at = 0;
    for (size_t i = 0; i <= ncuts; i++) {
        size_t to = i < ncuts ? cuts[i] : tc->input.len;
        sse_parser_feed(p, tc->input.data + at, to - at);
        at = to;
    }
    if (tc->retry != -2)
        buf_printf(log, "= retry %ld\n", sse_parser_retry_ms(p));
    if (tc->check_id) {
        buf_append(log, "= lastid ", 9);
        esc(log, sse_parser_last_id(p), strlen(sse_parser_last_id(p)));
        buf_putc(log, '\n');
    }
    sse_parser_destroy(p);
}

static void check_case(const struct tcase *tc)
{
    struct buf log;
    size_t cut;
    buf_init(&log, 1 << 20);

    run_feed(tc, NULL, 0, &log);
    T_ASSERTF(log.len == tc->expect.len && !memcmp(log.data, tc->expect.data, log.len),
              "%s (whole): got\n%s\nexpected\n%s", tc->name, log.data ? log.data : "",
              tc->expect.data ? tc->expect.data : "");
    for (cut = 1; cut < tc->input.len; cut++) {
        buf_reset(&log);
        run_feed(tc, &cut, 1, &log);
        T_ASSERTF(log.len == tc->expect.len && !memcmp(log.data, tc->expect.data, log.len),
                  "%s (split at %zu): got\n%s\nexpected\n%s", tc->name, cut, log.data,
                  tc->expect.data ? tc->expect.data : "");
    }
    size_t *cuts = malloc((tc->input.len + 1) * sizeof(*cuts));
    for (size_t i = 0; i + 1 < tc->input.len; i++)
        cuts[i] = i + 1;
    buf_reset(&log);
    run_feed(tc, cuts, tc->input.len ? tc->input.len - 1 : 0, &log);
    free(cuts);
    T_ASSERTF(log.len == tc->expect.len && !memcmp(log.data, tc->expect.data, log.len),
              "%s (byte by byte): got\n%s\nexpected\n%s", tc->name, log.data,
              tc->expect.data ? tc->expect.data : "");
    buf_fini(&log);
}

static int ncases;

static void tcase_start(struct tcase *tc, const char *name)
{
    memset(tc, 0, sizeof(*tc));
    snprintf(tc->name, sizeof(tc->name), "%.100s", name);
    buf_init(&tc->input, 1 << 20);
    buf_init(&tc->expect, 1 << 20);
    tc->retry = -2;
}

static void tcase_finish(struct tcase *tc)
{
    if (tc->name[0]) {
        /* The checks are appended in the order run_feed prints them. */
        check_case(tc);
        ncases++;
    }
    buf_fini(&tc->input);
    buf_fini(&tc->expect);
    tc->name[0] = '\0';
}

static void run_file(const char *path)
{
    FILE *fp = fopen(path, "r");
    char line[8192], raw[8192];
    struct tcase tc;
    struct buf tail; /* "= ..." lines go last, in run_feed's order */
    T_ASSERTF(fp != NULL, "cannot open %s", path);
    memset(&tc, 0, sizeof(tc));
    buf_init(&tail, 4096);
    while (fgets(line, sizeof(line), fp)) {
        line[strcspn(line, "\n")] = '\0';
        if (!strncmp(line, "== ", 3)) {
            if (tc.name[0]) {
                buf_append(&tc.expect, tail.data, tail.len);
                buf_reset(&tail);
                tcase_finish(&tc);
            }
            tcase_start(&tc, line + 3);
        } else if (!strncmp(line, "caps ", 5)) {
            sscanf(line + 5, "%zu %zu", &tc.max_line, &tc.max_event);
        } else if (!strncmp(line, "> ", 2)) {
            size_t n = unesc(line + 2, raw);
            buf_append(&tc.input, raw, n);
        } else if (!strncmp(line, "< ", 2)) {
            /* Split on unescaped '|' and re-escape canonically. */
            char *f[3] = {NULL, NULL, NULL};
            int nf = 0;
            char *s = line + 2;
            f[nf++] = s;
            for (; *s; s++) {
                if (*s == '\\' && s[1]) {
                    s++;
                    continue;
                }
                if (*s == '|' && nf < 3) {
                    *s = '\0';
                    f[nf++] = s + 1;
                }
            }
            T_ASSERTF(nf == 3, "%s: %s: expected type|data|id", path, tc.name);
            buf_append(&tc.expect, "< ", 2);
            for (int i = 0; i < 3; i++) {
                size_t n = unesc(f[i], raw);
                esc(&tc.expect, raw, n);
                buf_putc(&tc.expect, i < 2 ? '|' : '\n');
            }
        } else if (!strncmp(line, "! ", 2)) {
            buf_printf(&tc.expect, "%s\n", line);
        } else if (!strncmp(line, "= retry ", 8)) {
            tc.retry = atol(line + 8);
            buf_printf(&tail, "%s\n", line);
        } else if (!strncmp(line, "= lastid", 8)) {
            tc.check_id = 1;
            size_t n = line[8] ? unesc(line + 9, raw) : 0;
            buf_append(&tail, "= lastid ", 9);
            esc(&tail, raw, n);
            buf_putc(&tail, '\n');
        }
    }
    fclose(fp);
    if (tc.name[0]) {
        buf_append(&tc.expect, tail.data, tail.len);
        tcase_finish(&tc);
    }
    buf_fini(&tail);
}

static void test_fixtures(void)
{
    DIR *d = opendir(CASES_DIR);
    struct dirent *de;
    int files = 0;
    T_ASSERTF(d != NULL, "cannot open %s (run from the repo root)", CASES_DIR);
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (l < 6 || strcmp(de->d_name + l - 6, ".cases") != 0)
            continue;
        char path[512];
        snprintf(path, sizeof(path), "%s/%s", CASES_DIR, de->d_name);
        run_file(path);
        files++;
    }
    closedir(d);
    T_ASSERT(files >= 2);
    T_ASSERT(ncases >= 40);
}

/* The harness's own log format: a case without "= retry" prints no retry. */
static void test_harness_log_format(void)
{
    struct tcase tc;
    struct buf log;
    tcase_start(&tc, "mismatch");
    buf_append(&tc.input, "data: a\n\n", 10);
    buf_init(&log, 4096);
    run_feed(&tc, NULL, 0, &log);
    T_EQ_STR(log.data, "< message|a|\n");
    buf_fini(&log);
    buf_fini(&tc.input);
    buf_fini(&tc.expect);
}

/* Cases written in code rather than in a .cases file: each runs through
 * check_case, so it is fed whole, split at every offset and byte by byte.
 * `expect` is the canonical log ("< type|data|id" and "! toobig" lines). */
struct inline_case {
    const char *name;
    size_t max_line, max_event;
    const char *input;
    const char *expect;
    long retry;         /* -2: not checked */
    const char *lastid; /* NULL: not checked */
};

static void check_inline(const struct inline_case *c)
{
    struct tcase tc;
    tcase_start(&tc, c->name);
    tc.max_line = c->max_line;
    tc.max_event = c->max_event;
    buf_append(&tc.input, c->input, strlen(c->input));
    buf_append(&tc.expect, c->expect, strlen(c->expect));
    tc.retry = c->retry;
    if (c->retry != -2)
        buf_printf(&tc.expect, "= retry %ld\n", c->retry);
    if (c->lastid) {
        tc.check_id = 1;
        buf_printf(&tc.expect, "= lastid %s\n", c->lastid);
    }
    tcase_finish(&tc);
}

/* A line over max_line costs the event it belongs to only when that event
 * depends on it (`data`, `event`, `id`): then the event is skipped with one
 * error. A comment, a `retry` or an unknown field over the cap costs nothing
 * but itself: no event depends on it, so nothing is skipped or reported (an
 * error means an event was lost: `produce` dead-letters each one). */
static void test_oversized_lines(void)
{
    static const struct inline_case cases[] = {
        /* The defect: the comment's skip swallowed "data: a" and its event. */
        {"comment_then_event", 8, 100, ": 0123456789\ndata: a\n\ndata: b\n\n",
         "< message|a|\n< message|b|\n", -2, NULL},
        {"comment_mid_event", 8, 100, "data: a\n: 0123456789\ndata: b\n\n", "< message|a\\nb|\n",
         -2, NULL},
        {"keepalive_over_cap", 10, 100, "event: a\ndata: 1\n\n: keep-alive\nevent: b\ndata: 2\n\n",
         "< a|1|\n< b|2|\n", -2, NULL},
        {"comment_after_skip", 8, 100, "data: 0123456789\n: 0123456789\ndata: a\n\ndata: b\n\n",
         "! toobig\n< message|b|\n", -2, NULL},
        {"comment_crlf", 8, 100, ":0123456789\r\ndata: a\r\n\r\n", "< message|a|\n", -2, NULL},
        {"unknown_field", 8, 100, "foo: 0123456789\ndata: a\n\n", "< message|a|\n", -2, NULL},
        {"unknown_no_colon", 8, 100, "0123456789abc\ndata: a\n\n", "< message|a|\n", -2, NULL},
        {"unknown_like_data", 8, 100, "data2: 0123456789\ndata: a\n\n", "< message|a|\n", -2, NULL},
        /* WHATWG would honour it; a retry line over the cap is dropped. */
        {"retry", 8, 100, "retry: 000000001000\ndata: a\n\n", "< message|a|\n", -1, NULL},
        /* The event the line belongs to is skipped, never the next one. */
        {"data_first_line", 8, 100, "data: 0123456789\ndata: a\n\ndata: b\n\n",
         "! toobig\n< message|b|\n", -2, NULL},
        {"data_last_line", 8, 100, "data: a\ndata: 0123456789\n\ndata: b\n\n",
         "! toobig\n< message|b|\n", -2, NULL},
        {"event_line", 8, 100, "event: 0123456789\ndata: a\n\ndata: b\n\n",
         "! toobig\n< message|b|\n", -2, NULL},
        {"id_line", 8, 100, "id: 1\ndata: a\n\nid: 0123456789\ndata: b\n\ndata: c\n\n",
         "< message|a|1\n! toobig\n< message|c|1\n", -2, "1"},
        {"data_no_colon", 3, 100, "data\n\nxyz\n\n", "! toobig\n", -2, NULL},
        /* Caps under 5 bytes: only the first max_line + 1 bytes of a line
         * are certain to have been seen, whatever the chunking; a line they
         * cannot tell from `data`, `event` or `id` costs its event. */
        {"tiny_cap", 2, 100, "ide\n\nid:\n\ndat\n\nxyz\n\n:abc\n\nev\n\nevx\n\n",
         "! toobig\n! toobig\n", -2, NULL},
        {"tiny_cap_event", 4, 100, ":xxxx\ndata\n\nretry:5\ndata\n\nevent\ndata\n\n",
         "< message||\n< message||\n! toobig\n", -1, NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        check_inline(&cases[i]);
}

/* `retry` is all ASCII digits or ignored; the value saturates at 24 h so
 * that no digit string overflows or reaches the client as an absurd wait. */
static void test_retry_clamped(void)
{
    static const struct inline_case cases[] = {
        {"retry_huge", 0, 0, "retry: 99999999999999999999\n\n", "", 86400000, NULL},
        {"retry_over_long", 0, 0, "retry: 9223372036854775808\n\n", "", 86400000, NULL},
        {"retry_over_uint32", 0, 0, "retry: 4294967296\n\n", "", 86400000, NULL},
        {"retry_over_int32", 0, 0, "retry: 2147483648\n\n", "", 86400000, NULL},
        {"retry_ten_digits", 0, 0, "retry: 9999999999\n\n", "", 86400000, NULL},
        {"retry_at_limit", 0, 0, "retry: 86400000\n\n", "", 86400000, NULL},
        {"retry_over_limit", 0, 0, "retry: 86400001\n\n", "", 86400000, NULL},
        {"retry_under_limit", 0, 0, "retry: 86399999\n\n", "", 86399999, NULL},
        {"retry_leading_zeros", 0, 0, "retry: 00000000000000000000000000001000\n\n", "", 1000,
         NULL},
        {"retry_zeros_at_limit", 0, 0, "retry: 0000000000000000000086400000\n\n", "", 86400000,
         NULL},
        {"retry_zero", 0, 0, "retry: 0\n\n", "", 0, NULL},
        {"retry_huge_then_small", 0, 0, "retry: 99999999999999999999\ndata: a\n\nretry: 5\n\n",
         "< message|a|\n", 5, NULL},
        {"retry_huge_bogus_ignored", 0, 0, "retry: 7\n\nretry: 99999999999999999999x\n\n", "", 7,
         NULL},
        {"retry_non_digits", 0, 0,
         "retry: 250\n\nretry: 12a\n\nretry: -5\n\nretry: +5\n\nretry: 1.5\n\nretry:  7\n\n"
         "retry: 7 \n\nretry: 0x10\n\nretry: \xD9\xA1\n\n",
         "", 250, NULL},
        {"retry_empty", 0, 0, "retry: 250\n\nretry:\n\nretry: \n\nretry\n\n", "", 250, NULL},
        {"retry_unset", 0, 0, "data: a\n\n", "< message|a|\n", -1, NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        check_inline(&cases[i]);
}

static int stop_after_first(void *opaque, const struct sse_event *ev)
{
    int *n = opaque;
    (void)ev;
    (*n)++;
    return 42;
}

static void test_callback_stops_feed(void)
{
    int n = 0;
    struct sse_parser *p = sse_parser_new(NULL, stop_after_first, NULL, &n);
    const char in[] = "data: a\n\ndata: b\n\n";
    T_EQ_INT(sse_parser_feed(p, in, sizeof(in) - 1), 42);
    T_EQ_INT(n, 1);
    sse_parser_destroy(p);
}

static void test_reset_drops_partial_keeps_id(void)
{
    struct buf log;
    buf_init(&log, 4096);
    struct sse_parser *p = sse_parser_new(NULL, on_event, on_error, &log);
    const char a[] = "id: 7\ndata: a\n\nid: 8\ndata: partial";
    const char b[] = "\xEF\xBB\xBF"
                     "data: b\n\n";
    sse_parser_feed(p, a, sizeof(a) - 1);
    sse_parser_reset(p);
    sse_parser_feed(p, b, sizeof(b) - 1);
    T_EQ_STR(log.data, "< message|a|7\n< message|b|7\n");
    T_EQ_STR(sse_parser_last_id(p), "7");
    sse_parser_destroy(p);
    buf_fini(&log);
}

static void test_reset_cr_pending(void)
{
    /* A CR at the very end of a connection must not eat the next one's LF. */
    struct buf log;
    buf_init(&log, 4096);
    struct sse_parser *p = sse_parser_new(NULL, on_event, on_error, &log);
    sse_parser_feed(p, "data: a\r", 8);
    sse_parser_reset(p);
    sse_parser_feed(p, "\ndata: b\n\n", 10);
    T_EQ_STR(log.data, "< message|b|\n");
    sse_parser_destroy(p);
    buf_fini(&log);
}

static void test_resync_after_huge_stream(void)
{
    /* 10 MB of one line with a 1 KiB cap: one error, then events again. */
    struct buf log;
    buf_init(&log, 4096);
    struct sse_parser_conf conf = {1024, 4096};
    struct sse_parser *p = sse_parser_new(&conf, on_event, on_error, &log);
    char chunk[4096];
    memset(chunk, 'x', sizeof(chunk));
    sse_parser_feed(p, "data: ", 6);
    for (int i = 0; i < 2560; i++)
        sse_parser_feed(p, chunk, sizeof(chunk));
    sse_parser_feed(p, "\n\ndata: ok\n\n", 12);
    T_EQ_STR(log.data, "! toobig\n< message|ok|\n");
    sse_parser_destroy(p);
    buf_fini(&log);
}

static void test_default_caps(void)
{
    struct buf log;
    buf_init(&log, 4 << 20);
    struct sse_parser *p = sse_parser_new(NULL, on_event, on_error, &log);
    /* A 1 MB data line is fine under the defaults. */
    size_t n = 1 << 20;
    char *big = malloc(n + 9);
    memcpy(big, "data: ", 6);
    memset(big + 6, 'a', n);
    memcpy(big + 6 + n, "\n\n", 2);
    T_EQ_INT(sse_parser_feed(p, big, n + 8), 0);
    T_ASSERT(log.len > n);
    free(big);
    sse_parser_destroy(p);
    buf_fini(&log);
    sse_parser_destroy(NULL);
}

int main(void)
{
    T_RUN(test_fixtures);
    T_RUN(test_harness_log_format);
    T_RUN(test_callback_stops_feed);
    T_RUN(test_reset_drops_partial_keeps_id);
    T_RUN(test_reset_cr_pending);
    T_RUN(test_resync_after_huge_stream);
    T_RUN(test_default_caps);
    T_RUN(test_oversized_lines);
    T_RUN(test_retry_clamped);
    return T_DONE();
}
