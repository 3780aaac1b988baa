/*
 * sse_parser: an incremental Server-Sent Events parser following the WHATWG
 * rules (HTML "Server-sent events", parsing an event stream). Pure: bytes in,
 * events out through a callback; no I/O, no clock, no globals.
 *
 * Feeding the same bytes in any chunking gives the same events. Lines end in
 * CR, LF or CRLF (a CR at the end of one chunk and an LF at the start of the
 * next are one line end); a leading UTF-8 BOM is skipped; comments are
 * ignored; `data` lines are joined with "\n"; one space after the colon is
 * stripped; unknown fields are ignored; `id` containing NUL is ignored;
 * `retry` is honoured when all digits, any number of them, and clamped to
 * SSE_MAX_RETRY_MS (24 h); an empty data buffer dispatches nothing.
 *
 * Caps: an event whose data grows past max_event, or that has a `data`,
 * `event` or `id` line longer than max_line, is skipped whole: on_error is
 * called once with SSE_ERR_TOOBIG, and the parser resynchronises at the next
 * blank line; the event after it is parsed as usual. The event type and the
 * id are capped at SSE_MAX_NAME bytes the same way. A comment, `retry` or
 * unknown-field line longer than max_line is dropped without a report and
 * costs no event (a comment or unknown field never changed one; the `retry`
 * is lost). With max_line under 5 a line is judged by its first max_line + 1
 * bytes: one that may be `data`, `event` or `id` counts as one. Memory stays
 * within max_line + max_event + 3 * SSE_MAX_NAME (plus a small constant).
 *
 * Bytes pass through undecoded: invalid UTF-8 reaches the callback as is.
 */
#ifndef MBTA_SSE_PARSER_H
#define MBTA_SSE_PARSER_H

#include <stddef.h>

/* All three strings are also NUL-terminated at their length. */
struct sse_event {
    const char *type; /* "message" when the event had no `event` field */
    size_t type_len;
    const char *data; /* lines joined with "\n", no trailing newline */
    size_t data_len;
    const char *id; /* the last event ID (persists across events), "" if none */
    size_t id_len;
};

#define SSE_MAX_NAME 4096 /* cap on an event type or id */

/* Cap on `retry:` (24 h in ms): larger values, however many digits, read as
 * this. A server asking for more than a day is broken, not patient. */
#define SSE_MAX_RETRY_MS 86400000L

enum sse_err {
    SSE_ERR_TOOBIG = 1, /* an event over a cap: skipped (one call per event) */
};

/* Called for each dispatched event; the event's pointers are borrowed until
 * the callback returns. Return 0 to go on, non-zero to make sse_parser_feed
 * stop and return that value (the rest of the chunk is not parsed). */
typedef int(sse_event_cb)(void *opaque, const struct sse_event *ev);
typedef void(sse_error_cb)(void *opaque, enum sse_err err, const char *msg);

struct sse_parser_conf {
    size_t max_line;  /* default 16 MiB when 0 */
    size_t max_event; /* default 64 MiB when 0 */
};

struct sse_parser;

struct sse_parser *sse_parser_new(const struct sse_parser_conf *conf, sse_event_cb *on_event,
                                  sse_error_cb *on_error, void *opaque);
void sse_parser_destroy(struct sse_parser *p); /* NULL is a no-op */

/* Parses n bytes. Returns 0, or the non-zero value an on_event returned. */
int sse_parser_feed(struct sse_parser *p, const char *buf, size_t n);

/* Forgets a partial line and event (after a connection ends); keeps the last
 * event ID and retry, and expects a BOM again at the start. */
void sse_parser_reset(struct sse_parser *p);

/* The reconnection time the server asked for with `retry:`, or -1 when it
 * did not; 0 to SSE_MAX_RETRY_MS. */
long sse_parser_retry_ms(const struct sse_parser *p);
/* The last event ID ("" when none); borrowed until the next feed. */
const char *sse_parser_last_id(const struct sse_parser *p);

#endif
