/*
 * sse_stream: many SSE connections in one thread (libcurl multi), each one
 * reconnecting by itself: idle timeout, exponential backoff with full jitter
 * (reset after a healthy period), `retry:` and Last-Event-ID honoured, HTTP
 * statuses classified (fatal: 400/401/403/404/406 with the server's error
 * body in the message; 429: wait for Retry-After or x-ratelimit-reset; 5xx
 * and network errors: retry; a clean close: reconnect).
 *
 * The API key goes in the `x-api-key` header and is never logged, also not
 * in verbose output.
 *
 * The stream itself logs only an `event: error` body (warn) and, when
 * verbose, libcurl's debug lines; state changes go to on_state, whose
 * message ends with "; reconnecting in N ms" for SSE_DISCONNECTED.
 * A 2xx answer that is not text/event-stream stops the stream (WHATWG:
 * "fail the connection"), and so does 204.
 *
 * Backpressure: sse_stream_pause(s, 1) stops reading that connection (libcurl
 * pauses the transfer, the kernel's socket buffer fills, TCP pushes back)
 * without blocking the other streams; nothing is dropped. Pausing from inside
 * on_event takes effect after the current chunk: the events already in it
 * (at most one network read, CURL_MAX_WRITE_SIZE bytes, or one event) are
 * still delivered, so the caller keeps a small backlog.
 */
#ifndef MBTA_SSE_STREAM_H
#define MBTA_SSE_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "sse/sse_parser.h"

struct sse_client;
struct sse_stream;

enum sse_state {
    SSE_CONNECTED,    /* 2xx with text/event-stream received; http_status set */
    SSE_DISCONNECTED, /* the connection ended; will reconnect; msg says why */
    SSE_STOPPED       /* fatal (e.g. 403): this stream will not reconnect */
};

struct sse_stream_conf {
    const char *name;           /* for logs; copied */
    const char *url;            /* copied */
    const char *api_key;        /* sent as x-api-key; NULL for none; copied */
    const char *const *headers; /* extra "Name: value" lines, NULL-terminated; copied */
    long idle_timeout_ms;       /* no byte for this long: reconnect (default 75000) */
    long connect_timeout_ms;    /* default 10000 */
    long backoff_base_ms;       /* default 500 */
    long backoff_cap_ms;        /* default 30000 */
    long healthy_ms;            /* connected this long resets the backoff (default 60000) */
    size_t max_line, max_event; /* parser caps (0: defaults) */
    int verbose;                /* libcurl verbose to the log, key masked */
    long retry_after_cap_ms;    /* longest wait a 429 or `retry:` may ask for (default 300000) */
    const char *cacert;         /* CA bundle (PEM) for TLS; NULL or "": libcurl's default */
};

struct sse_stream_cbs {
    /* A dispatched event; received_ns is the wall clock when the event's
     * last byte was parsed. Pointers are borrowed until return. */
    void (*on_event)(void *opaque, struct sse_stream *s, const struct sse_event *ev,
                     int64_t received_ns);
    /* Connection state changes, with a one-line reason (no secret). */
    void (*on_state)(void *opaque, struct sse_stream *s, enum sse_state st, int http_status,
                     const char *msg);
    /* An event skipped by the parser (too big); may be NULL. */
    void (*on_parse_error)(void *opaque, struct sse_stream *s, const char *msg);
    /* Every body byte as received (after content decoding); may be NULL. */
    void (*on_raw)(void *opaque, struct sse_stream *s, const char *buf, size_t n,
                   int64_t received_ns);
};

struct sse_stream_stats {
    uint64_t connects, reconnects, events, bytes, parse_errors;
    int last_status;
};

struct sse_client *sse_client_new(char *errstr, size_t errsz);
void sse_client_destroy(struct sse_client *c); /* closes all streams; NULL is a no-op */

/* Adds a stream and starts connecting. The stream belongs to the client.
 * Returns NULL with errstr on a bad URL or configuration. */
struct sse_stream *sse_client_add(struct sse_client *c, const struct sse_stream_conf *conf,
                                  const struct sse_stream_cbs *cbs, void *opaque, char *errstr,
                                  size_t errsz);

/* Runs the transfers for at most timeout_ms (callbacks fire from here).
 * Returns the number of streams not SSE_STOPPED. */
int sse_client_run(struct sse_client *c, int timeout_ms);

/* Stops reading (1) or resumes (0) one stream. Idempotent. */
void sse_stream_pause(struct sse_stream *s, int paused);
int sse_stream_paused(const struct sse_stream *s);
const char *sse_stream_name(const struct sse_stream *s);
void sse_stream_stats(const struct sse_stream *s, struct sse_stream_stats *out);

/* A copy of url with the value of every api_key= query parameter replaced
 * by "***" (any case), for logs and files. Caller frees with free(); NULL
 * when out of memory. */
char *sse_stream_mask_url(const char *url);

#endif
