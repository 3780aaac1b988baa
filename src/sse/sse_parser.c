/*
 * sse_parser: see sse_parser.h. Bytes are scanned for CR/LF; a line that
 * lies whole inside one chunk is interpreted in place (no copy), only a line
 * that straddles chunks is gathered in `line`. The data field is copied once
 * into `data`, which is what the callback sees.
 *
 * Not done here: UTF-8 decoding (bytes pass through as received; invalid
 * UTF-8 is for the consumer of the event to judge), reconnection, I/O.
 */
#include "sse/sse_parser.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"

#define SSE_DEFAULT_MAX_LINE  (16u * 1024 * 1024)
#define SSE_DEFAULT_MAX_EVENT (64u * 1024 * 1024)

/* What an oversized line is can be told from its first bytes: "event:" is
 * the longest prefix that matters. */
#define SSE_HEAD 6

/* The retry digits are accumulated as v * 10 + d with v <= SSE_MAX_RETRY_MS:
 * that must fit a long wherever long is 32 bits too. */
_Static_assert(SSE_MAX_RETRY_MS <= (LONG_MAX - 9) / 10, "retry accumulation overflows long");

struct sse_parser {
    sse_event_cb *on_event;
    sse_error_cb *on_error;
    void *opaque;
    size_t max_line, max_event;

    struct buf line;    /* a partial line carried over from the previous chunk */
    struct buf data;    /* the data buffer, each line followed by "\n" */
    struct buf type;    /* the event type buffer */
    struct buf id;      /* the last event ID buffer (set by `id:`) */
    struct buf last_id; /* the last event ID string (set on dispatch) */
    long retry_ms;

    int bom_n;      /* bytes of the BOM matched so far; 3 when done with it */
    int after_cr;   /* the previous byte was a CR: an LF now is part of it */
    int skip_line;  /* discarding the rest of an oversized line */
    int skip_event; /* discarding fields until the next blank line */
};

static const unsigned char sse_bom[3] = {0xEF, 0xBB, 0xBF};

struct sse_parser *sse_parser_new(const struct sse_parser_conf *conf, sse_event_cb *on_event,
                                  sse_error_cb *on_error, void *opaque)
{
    struct sse_parser *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->on_event = on_event;
    p->on_error = on_error;
    p->opaque = opaque;
    p->max_line = conf && conf->max_line ? conf->max_line : SSE_DEFAULT_MAX_LINE;
    p->max_event = conf && conf->max_event ? conf->max_event : SSE_DEFAULT_MAX_EVENT;
    buf_init(&p->line, p->max_line);
    /* +1: the data buffer holds a "\n" after the last line, which the event
     * does not carry, so an event of exactly max_event bytes fits. */
    buf_init(&p->data, p->max_event + 1);
    buf_init(&p->type, SSE_MAX_NAME);
    buf_init(&p->id, SSE_MAX_NAME);
    buf_init(&p->last_id, SSE_MAX_NAME);
    p->retry_ms = -1;
    return p;
}

void sse_parser_destroy(struct sse_parser *p)
{
    if (!p)
        return;
    buf_fini(&p->line);
    buf_fini(&p->data);
    buf_fini(&p->type);
    buf_fini(&p->id);
    buf_fini(&p->last_id);
    free(p);
}

void sse_parser_reset(struct sse_parser *p)
{
    buf_reset(&p->line);
    buf_reset(&p->data);
    buf_reset(&p->type);
    /* A half-received event never dispatched: its id never became the
     * last event ID either, so go back to the committed one. */
    buf_reset(&p->id);
    buf_append(&p->id, p->last_id.data ? p->last_id.data : "", p->last_id.len);
    p->bom_n = 0;
    p->after_cr = 0;
    p->skip_line = 0;
    p->skip_event = 0;
}

long sse_parser_retry_ms(const struct sse_parser *p)
{
    return p->retry_ms;
}

const char *sse_parser_last_id(const struct sse_parser *p)
{
    return p->last_id.data ? p->last_id.data : "";
}

/* The event is dropped: say so once, and discard until the next blank line. */
static void sse_parser_toobig(struct sse_parser *p, const char *what)
{
    if (!p->skip_event && p->on_error)
        p->on_error(p->opaque, SSE_ERR_TOOBIG, what);
    p->skip_event = 1;
    buf_reset(&p->data);
    buf_reset(&p->type);
}

/* The line being read is over max_line; `s`, `n` is the part of it not yet
 * in `line`. Only a line the event depends on costs the event: `data`,
 * `event` or `id`. A comment, a `retry` or an unknown field changes no event,
 * so it costs nothing but itself and is not reported (on_error means an event
 * was lost, and `produce` dead-letters each one). Skipping here would drop
 * the event after a long keep-alive: the MBTA sends no blank line after it.
 *
 * Only the first max_line + 1 bytes of the line are sure to have been seen
 * when the cap is crossed, whatever the chunking, so the decision reads no
 * more than those: under a cap of 5 bytes a line that may still turn out to
 * be `data`, `event` or `id` is taken to be one. */
static void sse_parser_oversized(struct sse_parser *p, const char *s, size_t n)
{
    static const char *const fields[] = {"data:", "event:", "id:"};
    char head[SSE_HEAD];
    size_t want = p->max_line < SSE_HEAD ? p->max_line + 1 : SSE_HEAD;
    size_t hn = p->line.len < want ? p->line.len : want;

    if (hn)
        memcpy(head, p->line.data, hn);
    if (want - hn < n)
        n = want - hn;
    if (n)
        memcpy(head + hn, s, n);
    hn += n;
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        size_t fl = strlen(fields[i]);
        if (memcmp(head, fields[i], hn < fl ? hn : fl) == 0) {
            sse_parser_toobig(p, "line over max_line: event skipped");
            return;
        }
    }
}

static int sse_parser_dispatch(struct sse_parser *p)
{
    struct sse_event ev;

    if (p->skip_event) {
        p->skip_event = 0;
        buf_reset(&p->data);
        buf_reset(&p->type);
        return 0;
    }
    /* WHATWG: the last event ID is committed even when nothing is dispatched. */
    if (p->last_id.len != p->id.len ||
        (p->id.len && memcmp(p->last_id.data, p->id.data, p->id.len) != 0)) {
        buf_reset(&p->last_id);
        buf_append(&p->last_id, p->id.data ? p->id.data : "", p->id.len);
    }
    if (p->data.len == 0) {
        buf_reset(&p->type);
        return 0;
    }
    ev.type = p->type.len ? p->type.data : "message";
    ev.type_len = p->type.len ? p->type.len : 7;
    ev.data = p->data.data;
    ev.data_len = p->data.len - 1;
    p->data.data[ev.data_len] = '\0'; /* the trailing "\n": callers get a C string too */
    ev.id = p->last_id.data ? p->last_id.data : "";
    ev.id_len = p->last_id.len;
    int rc = p->on_event ? p->on_event(p->opaque, &ev) : 0;
    buf_reset(&p->data);
    buf_reset(&p->type);
    return rc;
}

static int sse_field_is(const char *name, size_t len, const char *lit, size_t litlen)
{
    return len == litlen && memcmp(name, lit, len) == 0;
}

/* One complete line, without its line end. Returns what dispatch returned. */
static int sse_parser_line(struct sse_parser *p, const char *s, size_t n)
{
    const char *name = s, *val;
    size_t namelen, vallen;

    if (n == 0)
        return sse_parser_dispatch(p);
    if (p->skip_event || s[0] == ':')
        return 0;
    const char *colon = memchr(s, ':', n);
    if (colon) {
        namelen = (size_t)(colon - s);
        val = colon + 1;
        vallen = n - namelen - 1;
        if (vallen && *val == ' ') {
            val++;
            vallen--;
        }
    } else {
        namelen = n;
        val = "";
        vallen = 0;
    }
    switch (namelen) {
    case 4:
        if (sse_field_is(name, namelen, "data", 4)) {
            if (vallen + 1 > p->data.max - p->data.len) {
                sse_parser_toobig(p, "event data over max_event: event skipped");
                return 0;
            }
            buf_append(&p->data, val, vallen);
            buf_putc(&p->data, '\n');
        }
        break;
    case 5:
        if (sse_field_is(name, namelen, "event", 5)) {
            buf_reset(&p->type);
            if (buf_append(&p->type, val, vallen) != BUF_OK)
                sse_parser_toobig(p, "event type over 4 KiB: event skipped");
        } else if (sse_field_is(name, namelen, "retry", 5)) {
            long v = 0;
            size_t i;
            /* Saturates: any number of digits is still "all digits" (WHATWG)
             * and must neither overflow nor reach the client as a wait of
             * months; leading zeros keep v at 0 and cost nothing. */
            for (i = 0; i < vallen && val[i] >= '0' && val[i] <= '9'; i++) {
                v = v * 10 + (val[i] - '0');
                if (v > SSE_MAX_RETRY_MS)
                    v = SSE_MAX_RETRY_MS;
            }
            if (vallen && i == vallen)
                p->retry_ms = v;
        }
        break;
    case 2:
        if (sse_field_is(name, namelen, "id", 2) && !memchr(val, '\0', vallen)) {
            buf_reset(&p->id);
            if (buf_append(&p->id, val, vallen) != BUF_OK) {
                buf_reset(&p->id);
                buf_append(&p->id, p->last_id.data ? p->last_id.data : "", p->last_id.len);
                sse_parser_toobig(p, "event id over 4 KiB: event skipped");
            }
        }
        break;
    default:
        break; /* unknown fields are ignored */
    }
    return 0;
}

/* Appends part of a line that continues past this chunk. */
static void sse_parser_partial(struct sse_parser *p, const char *s, size_t n)
{
    if (p->skip_line)
        return;
    if (buf_append(&p->line, s, n) != BUF_OK) {
        sse_parser_oversized(p, s, n);
        buf_reset(&p->line);
        p->skip_line = 1;
    }
}

/* A line end was found; the line is `line` + s[0..n). */
static int sse_parser_eol(struct sse_parser *p, const char *s, size_t n)
{
    if (p->skip_line) {
        /* The rest of an oversized line: not a blank line, whatever n is. */
        p->skip_line = 0;
        return 0;
    }
    if (p->line.len == 0) {
        if (n > p->max_line) {
            sse_parser_oversized(p, s, n);
            return 0;
        }
        return sse_parser_line(p, s, n);
    }
    if (buf_append(&p->line, s, n) != BUF_OK) {
        sse_parser_oversized(p, s, n);
        buf_reset(&p->line);
        return 0;
    }
    int rc = sse_parser_line(p, p->line.data, p->line.len);
    buf_reset(&p->line);
    return rc;
}

int sse_parser_feed(struct sse_parser *p, const char *buf, size_t n)
{
    const char *s = buf, *end = buf + n;

    /* A leading BOM, possibly split across chunks. */
    while (p->bom_n < 3 && s < end) {
        if ((unsigned char)*s == sse_bom[p->bom_n]) {
            p->bom_n++;
            s++;
            continue;
        }
        /* Not a BOM after all: what matched so far is ordinary bytes (none
         * of them is a line end, so no event can come of them). */
        int matched = p->bom_n;
        p->bom_n = 3;
        if (matched)
            sse_parser_partial(p, (const char *)sse_bom, (size_t)matched);
    }
    if (s == end)
        return 0;

    if (p->after_cr) {
        p->after_cr = 0;
        if (*s == '\n')
            s++;
    }

    /* Next CR and next LF, each searched once per position passed, so the
     * scan stays linear when one of them never appears. */
    const char *cr = NULL, *lf = NULL;
    while (s < end) {
        if (!cr || cr < s)
            cr = memchr(s, '\r', (size_t)(end - s));
        if (!cr)
            cr = end;
        if (!lf || lf < s)
            lf = memchr(s, '\n', (size_t)(end - s));
        if (!lf)
            lf = end;
        const char *eol = cr < lf ? cr : lf;
        if (eol == end) {
            sse_parser_partial(p, s, (size_t)(end - s));
            break;
        }
        const char *line = s;
        s = eol + 1;
        if (*eol == '\r') {
            if (s == end)
                p->after_cr = 1;
            else if (*s == '\n')
                s++;
        }
        int rc = sse_parser_eol(p, line, (size_t)(eol - line));
        if (rc)
            return rc;
    }
    return 0;
}
