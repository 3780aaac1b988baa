/*
 * fuzz_sse_parser: the SSE parser must not crash, leak or read out of
 * bounds on any input, and must give the same events whatever the chunking
 * (the property the unit tests check on fixtures, here on any bytes): the
 * input is fed whole, in chunks whose sizes come from the input, and one byte
 * at a time, and the three logs must be identical. With small caps, a
 * comment, unknown-field or `retry` line over max_line put in front of the
 * stream must change nothing either (such a line once cost the event after
 * it), and the retry read back is always -1 or within SSE_MAX_RETRY_MS.
 *
 * Input layout: byte 0 picks the caps (small caps exercise the skip and
 * resync paths), byte 1 seeds the chunk sizes, the rest is the stream.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sse/sse_parser.h"
#include "util/buf.h"

static int fz_event(void *opaque, const struct sse_event *ev)
{
    struct buf *log = opaque;
    /* Lengths first so that no two different logs serialise alike. */
    buf_printf(log, "E%zu,%zu,%zu:", ev->type_len, ev->data_len, ev->id_len);
    buf_append(log, ev->type, ev->type_len);
    buf_append(log, ev->data, ev->data_len);
    buf_append(log, ev->id, ev->id_len);
    if (ev->type_len == 0 || ev->data[ev->data_len] != '\0')
        abort(); /* the type is never empty; data is NUL-terminated for convenience */
    return 0;
}

static void fz_error(void *opaque, enum sse_err err, const char *msg)
{
    struct buf *log = opaque;
    buf_printf(log, "!%d:%s", (int)err, msg);
}

static void fz_run(const struct sse_parser_conf *conf, const uint8_t *d, size_t n, int mode,
                   uint8_t seed, struct buf *log)
{
    struct sse_parser *p = sse_parser_new(conf, fz_event, fz_error, log);
    size_t at = 0;
    uint32_t x = seed * 2654435761u + 1;
    while (at < n) {
        size_t len = n - at;
        if (mode == 1) {
            x = x * 1103515245u + 12345u;
            len = 1 + (x >> 16) % 17;
        } else if (mode == 2) {
            len = 1;
        }
        if (len > n - at)
            len = n - at;
        sse_parser_feed(p, (const char *)d + at, len);
        at += len;
    }
    long retry = sse_parser_retry_ms(p);
    if (retry < -1 || retry > SSE_MAX_RETRY_MS)
        abort();
    buf_printf(log, "R%ld I%s", retry, sse_parser_last_id(p));
    sse_parser_destroy(p);
}

/* The stream with one line over max_line in front that no event depends on:
 * after a leading BOM, which must stay first to be skipped. Caller frees. */
static uint8_t *fz_prefix_ignorable(const struct sse_parser_conf *conf, const uint8_t *d, size_t n,
                                    uint8_t seed, size_t *outn)
{
    static const char *const starts[] = {":", "x", "retry:"};
    const char *start = starts[seed % 3];
    size_t sl = strlen(start);
    size_t len = conf->max_line + 1 + (seed >> 2) % 8; /* always over the cap */
    size_t bom = n >= 3 && !memcmp(d, "\xEF\xBB\xBF", 3) ? 3 : 0;
    if (len < sl)
        len = sl;
    uint8_t *t = malloc(n + len + 1);
    if (!t)
        abort();
    memcpy(t, d, bom);
    memcpy(t + bom, start, sl);
    memset(t + bom + sl, start[0] == 'r' ? '9' : 'x', len - sl);
    t[bom + len] = '\n';
    memcpy(t + bom + len + 1, d + bom, n - bom);
    *outn = n + len + 1;
    return t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sse_parser_conf conf = {0, 0};
    struct buf a, b, c;

    if (size < 2)
        return 0;
    if (data[0] & 1) {
        conf.max_line = 1 + (data[0] >> 1) % 64;
        conf.max_event = 1 + (data[0] >> 4) * 8;
    }
    buf_init(&a, 64u << 20);
    buf_init(&b, 64u << 20);
    buf_init(&c, 64u << 20);
    fz_run(&conf, data + 2, size - 2, 0, data[1], &a);
    fz_run(&conf, data + 2, size - 2, 1, data[1], &b);
    fz_run(&conf, data + 2, size - 2, 2, data[1], &c);
    if (a.len != b.len || memcmp(a.data, b.data, a.len) != 0)
        abort();
    if (a.len != c.len || memcmp(a.data, c.data, a.len) != 0)
        abort();
    if (conf.max_line) {
        size_t tn;
        uint8_t *t = fz_prefix_ignorable(&conf, data + 2, size - 2, data[1], &tn);
        buf_reset(&b);
        fz_run(&conf, t, tn, 1, data[1], &b);
        free(t);
        if (a.len != b.len || memcmp(a.data, b.data, a.len) != 0)
            abort();
    }
    buf_fini(&a);
    buf_fini(&b);
    buf_fini(&c);
    return 0;
}
