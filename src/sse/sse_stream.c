/*
 * sse_stream: see sse_stream.h. Each stream owns one curl easy handle that
 * is added to the client's multi handle for an attempt and removed when the
 * attempt ends; between attempts the stream waits on its own backoff timer.
 * Everything happens inside sse_client_run(): timers are checked there, and
 * pause/resume requests are applied there (data only flows inside it).
 *
 * What it does not do: decide what an event means (the caller's on_event),
 * or log state changes (the caller's on_state gets a one-line reason). It
 * logs only what the server says in an `event: error` and, when verbose,
 * libcurl's debug lines with the key masked.
 */
#include "sse/sse_stream.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "util/buf.h"
#include "util/clock.h"
#include "util/log.h"

#define SSE_ERRBODY_MAX 4096 /* what we keep of a non-2xx body for the message */

enum sse_phase {
    SSE_PH_WAIT,   /* waiting for next_attempt_ms */
    SSE_PH_ACTIVE, /* the easy handle is in the multi handle */
    SSE_PH_STOPPED
};

struct sse_client {
    CURLM *multi;
    struct sse_stream *streams;
    uint64_t rnd;
    int activity; /* a callback fired during this sse_client_run */
};

struct sse_stream {
    struct sse_client *c;
    struct sse_stream *next;
    char *name, *url, *url_masked, *api_key;
    char **headers;
    size_t nheaders;
    long idle_timeout_ms, connect_timeout_ms, backoff_base_ms, backoff_cap_ms, healthy_ms;
    long retry_after_cap_ms;
    int verbose;
    struct sse_stream_cbs cbs;
    void *opaque;

    struct sse_parser *parser;
    CURL *easy;
    struct curl_slist *hdrs;
    char curl_err[CURL_ERROR_SIZE];

    enum sse_phase phase;
    int64_t next_attempt_ms;
    int attempt;       /* backoff exponent */
    int attempts_made; /* to count reconnects */
    int paused;        /* what the caller wants */
    int curl_paused;   /* what libcurl has been told */
    int64_t last_byte_ms;
    int got_bytes;        /* body bytes since the last tick: last_byte_ms is stale */
    int64_t connected_ms; /* 0: not connected in this attempt */
    int64_t chunk_ns;     /* wall clock of the chunk being parsed */

    /* The current response. */
    long status;
    int headers_done, accepted, error_event, fatal;
    int64_t retry_after_ms; /* -1: none */
    char content_type[128];
    char location[2048];
    char fatal_msg[512];
    struct buf errbody;

    struct sse_stream_stats stats;
};

static int sse_ci_prefix(const char *s, size_t n, const char *lit)
{
    size_t l = strlen(lit);
    return n >= l && strncasecmp(s, lit, l) == 0;
}

/* Whether a Content-Type value is text/event-stream, with or without
 * parameters ("text/event-stream; charset=utf-8", as Phoenix sends it). */
static int sse_is_event_stream(const char *ct)
{
    static const char mt[] = "text/event-stream";
    if (strncasecmp(ct, mt, sizeof(mt) - 1) != 0)
        return 0;
    ct += sizeof(mt) - 1;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    return *ct == '\0' || *ct == ';';
}

/* ---- client ---- */

struct sse_client *sse_client_new(char *errstr, size_t errsz)
{
    struct sse_client *c = NULL;
    static int global_done;

    if (!global_done) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            snprintf(errstr, errsz, "curl_global_init failed");
            return NULL;
        }
        global_done = 1;
    }
    c = calloc(1, sizeof(*c));
    if (!c)
        goto nomem;
    c->multi = curl_multi_init();
    if (!c->multi)
        goto nomem;
    c->rnd = (uint64_t)clock_realtime_ns() ^ ((uint64_t)(uintptr_t)c << 17);
    if (!c->rnd)
        c->rnd = 1;
    return c;
nomem:
    snprintf(errstr, errsz, "out of memory");
    free(c);
    return NULL;
}

static void sse_stream_free(struct sse_stream *s)
{
    if (!s)
        return;
    if (s->easy) {
        if (s->phase == SSE_PH_ACTIVE)
            curl_multi_remove_handle(s->c->multi, s->easy);
        curl_easy_cleanup(s->easy);
    }
    curl_slist_free_all(s->hdrs);
    sse_parser_destroy(s->parser);
    buf_fini(&s->errbody);
    for (size_t i = 0; i < s->nheaders; i++)
        free(s->headers[i]);
    free(s->headers);
    free(s->name);
    free(s->url);
    free(s->url_masked);
    if (s->api_key) {
        memset(s->api_key, 0, strlen(s->api_key));
        free(s->api_key);
    }
    free(s);
}

void sse_client_destroy(struct sse_client *c)
{
    if (!c)
        return;
    while (c->streams) {
        struct sse_stream *s = c->streams;
        c->streams = s->next;
        sse_stream_free(s);
    }
    curl_multi_cleanup(c->multi);
    free(c);
}

/* ---- masking ---- */

char *sse_stream_mask_url(const char *url)
{
    size_t n = strlen(url);
    char *out = malloc(n + 4);
    const char *q = strchr(url, '?');
    size_t o = 0;
    if (!out)
        return NULL;
    if (!q) {
        memcpy(out, url, n + 1);
        return out;
    }
    memcpy(out, url, (size_t)(q - url));
    o = (size_t)(q - url);
    const char *p = q;
    while (*p) {
        /* p points at '?' or '&' */
        out[o++] = *p++;
        const char *e = p + strcspn(p, "&#");
        if (!strncasecmp(p, "api_key=", 8)) {
            memcpy(out + o, p, 8);
            o += 8;
            memcpy(out + o, "***", 3);
            o += 3;
        } else {
            memcpy(out + o, p, (size_t)(e - p));
            o += (size_t)(e - p);
        }
        p = e;
        if (*p == '#') {
            size_t rest = strlen(p);
            memcpy(out + o, p, rest);
            o += rest;
            break;
        }
    }
    out[o] = '\0';
    return out;
}

/* Copies src to dst (capped) with every occurrence of key replaced by ***
 * and the value of an x-api-key header line or api_key= parameter masked. */
static void sse_mask_text(const char *key, const char *src, size_t n, char *dst, size_t dstsz)
{
    size_t o = 0, klen = key ? strlen(key) : 0;
    size_t i = 0;
    while (i < n && o + 4 < dstsz) {
        int line_start = i == 0 || src[i - 1] == '\n';
        if (klen && n - i >= klen && memcmp(src + i, key, klen) == 0) {
            memcpy(dst + o, "***", 3);
            o += 3;
            i += klen;
            continue;
        }
        if ((line_start && sse_ci_prefix(src + i, n - i, "x-api-key:")) ||
            sse_ci_prefix(src + i, n - i, "api_key=")) {
            size_t l = src[i] == 'x' || src[i] == 'X' ? 10 : 8;
            if (o + l + 4 >= dstsz)
                break;
            memcpy(dst + o, src + i, l);
            o += l;
            i += l;
            while (i < n && src[i] == ' ')
                i++;
            memcpy(dst + o, l == 10 ? " ***" : "***", l == 10 ? 4 : 3);
            o += l == 10 ? 4 : 3;
            while (i < n && src[i] != '\r' && src[i] != '\n' && src[i] != '&' && src[i] != ' ')
                i++;
            continue;
        }
        dst[o++] = src[i++];
    }
    dst[o] = '\0';
}

static int sse_debug_cb(CURL *h, curl_infotype type, char *data, size_t size, void *userp)
{
    struct sse_stream *s = userp;
    char text[2048];
    (void)h;
    if (type != CURLINFO_TEXT && type != CURLINFO_HEADER_IN && type != CURLINFO_HEADER_OUT)
        return 0;
    sse_mask_text(s->api_key, data, size, text, sizeof(text));
    const char *dir = type == CURLINFO_HEADER_OUT ? ">" : type == CURLINFO_HEADER_IN ? "<" : "*";
    /* One log line per text line. */
    char *save = NULL;
    for (char *line = strtok_r(text, "\r\n", &save); line; line = strtok_r(NULL, "\r\n", &save))
        log_write(LOG_INFO, "%s: curl %s %s", s->name, dir, line);
    return 0;
}

/* ---- per-response callbacks ---- */

static int64_t sse_parse_retry_after(const char *v)
{
    char *end;
    while (*v == ' ' || *v == '\t')
        v++;
    if (isdigit((unsigned char)*v)) {
        long long secs = strtoll(v, &end, 10);
        while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n')
            end++;
        if (*end == '\0')
            return secs * 1000;
    }
    time_t t = curl_getdate(v, NULL);
    if (t == -1)
        return -1;
    int64_t d = ((int64_t)t - (int64_t)time(NULL)) * 1000;
    return d < 0 ? 0 : d;
}

/* Whether the (maybe relative) url has the host of the transfer's current
 * URL. */
static int sse_same_host(CURL *e, const char *url)
{
    char *cur = NULL, *h1 = NULL, *h2 = NULL;
    CURLU *a = curl_url(), *b = NULL;
    int same = 0;
    curl_easy_getinfo(e, CURLINFO_EFFECTIVE_URL, &cur);
    if (a && cur && curl_url_set(a, CURLUPART_URL, cur, 0) == CURLUE_OK)
        b = curl_url_dup(a); /* so that a relative Location resolves against it */
    if (b && curl_url_set(b, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(a, CURLUPART_HOST, &h1, 0) == CURLUE_OK &&
        curl_url_get(b, CURLUPART_HOST, &h2, 0) == CURLUE_OK)
        same = strcasecmp(h1, h2) == 0;
    curl_free(h1);
    curl_free(h2);
    curl_url_cleanup(a);
    curl_url_cleanup(b);
    return same;
}

static size_t sse_header_cb(char *data, size_t size, size_t nitems, void *userp)
{
    struct sse_stream *s = userp;
    size_t n = size * nitems;
    char val[2048];
    int truncated = 0;

    s->last_byte_ms = clock_mono_ms();
    if (sse_ci_prefix(data, n, "HTTP/")) {
        /* A new response (redirect, 100-continue, or the real one). */
        s->status = 0;
        s->headers_done = 0;
        s->retry_after_ms = -1;
        s->content_type[0] = '\0';
        s->location[0] = '\0';
        const char *sp = memchr(data, ' ', n);
        if (sp)
            s->status = strtol(sp + 1, NULL, 10);
        return n;
    }
    if (n <= 2 && (data[0] == '\r' || data[0] == '\n')) {
        long code = 0;
        curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &code);
        if (code)
            s->status = code;
        if (s->status / 100 == 1)
            return n;
        if (s->status / 100 == 3) {
            const char *loc = s->location[0] ? s->location : NULL;
            if (loc) {
                /* libcurl follows it, sending our custom headers along: the
                 * key must not go to another host. */
                if (s->api_key && !sse_same_host(s->easy, loc)) {
                    s->fatal = 1;
                    snprintf(s->fatal_msg, sizeof(s->fatal_msg),
                             "HTTP %ld redirect to another host: not sending the API key there",
                             s->status);
                    return 0;
                }
                return n;
            }
        }
        s->headers_done = 1;
        s->stats.last_status = (int)s->status;
        if (s->status / 100 != 2)
            return n;
        if (s->status == 204)
            return n;
        if (!sse_is_event_stream(s->content_type)) {
            s->fatal = 1;
            snprintf(s->fatal_msg, sizeof(s->fatal_msg),
                     "HTTP %ld with Content-Type \"%s\", not text/event-stream", s->status,
                     s->content_type);
            return 0; /* aborts the transfer */
        }
        s->accepted = 1;
        s->connected_ms = clock_mono_ms();
        s->stats.connects++;
        s->c->activity = 1;
        if (s->cbs.on_state)
            s->cbs.on_state(s->opaque, s, SSE_CONNECTED, (int)s->status, "connected");
        return n;
    }
    const char *colon = memchr(data, ':', n);
    if (!colon)
        return n;
    size_t vl = n - (size_t)(colon + 1 - data);
    const char *v = colon + 1;
    while (vl && (*v == ' ' || *v == '\t')) {
        v++;
        vl--;
    }
    while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
        vl--;
    if (vl >= sizeof(val)) {
        vl = sizeof(val) - 1;
        truncated = 1;
    }
    memcpy(val, v, vl);
    val[vl] = '\0';
    if (sse_ci_prefix(data, n, "location:")) {
        /* Too long to check: an unparsable value counts as another host. */
        snprintf(s->location, sizeof(s->location), "%s", truncated ? "\x01" : val);
    } else if (sse_ci_prefix(data, n, "content-type:")) {
        snprintf(s->content_type, sizeof(s->content_type), "%.120s", val);
    } else if (sse_ci_prefix(data, n, "retry-after:")) {
        s->retry_after_ms = sse_parse_retry_after(val);
    } else if (sse_ci_prefix(data, n, "x-ratelimit-reset:") && s->retry_after_ms < 0) {
        /* Epoch seconds (milliseconds tolerated); Retry-After wins if both. */
        long long r = strtoll(val, NULL, 10);
        if (r > 100000000000LL)
            r /= 1000;
        if (r > 0) {
            int64_t d = ((int64_t)r - (int64_t)time(NULL)) * 1000;
            s->retry_after_ms = d < 0 ? 0 : d;
        }
    }
    return n;
}

static int sse_on_event(void *opaque, const struct sse_event *ev)
{
    struct sse_stream *s = opaque;
    s->stats.events++;
    s->c->activity = 1;
    if (ev->type_len == 5 && !memcmp(ev->type, "error", 5)) {
        /* The MBTA sends this for a bad request and then closes. */
        s->error_event = 1;
        log_warn("%s: server sent event: error: %.*s", s->name,
                 (int)(ev->data_len > 1024 ? 1024 : ev->data_len), ev->data);
    }
    if (s->cbs.on_event)
        s->cbs.on_event(s->opaque, s, ev, s->chunk_ns);
    return 0;
}

static void sse_on_parse_error(void *opaque, enum sse_err err, const char *msg)
{
    struct sse_stream *s = opaque;
    (void)err;
    s->stats.parse_errors++;
    s->c->activity = 1;
    if (s->cbs.on_parse_error)
        s->cbs.on_parse_error(s->opaque, s, msg);
}

static size_t sse_write_cb(char *data, size_t size, size_t nmemb, void *userp)
{
    struct sse_stream *s = userp;
    size_t n = size * nmemb;

    if (!s->accepted) {
        /* A non-2xx body: keep its start for the message, drop the rest. */
        if (s->errbody.len < SSE_ERRBODY_MAX)
            buf_append(&s->errbody, data,
                       n < SSE_ERRBODY_MAX - s->errbody.len ? n : SSE_ERRBODY_MAX - s->errbody.len);
        return n;
    }
    if (s->paused) {
        /* libcurl keeps this chunk and hands it over again on resume. */
        s->curl_paused = 1;
        return CURL_WRITEFUNC_PAUSE;
    }
    /* One clock read per chunk (a chunk is often one event): the idle
     * clock is brought up to date by the next tick instead. */
    s->got_bytes = 1;
    s->chunk_ns = clock_realtime_ns();
    s->stats.bytes += n;
    s->c->activity = 1;
    if (s->cbs.on_raw)
        s->cbs.on_raw(s->opaque, s, data, n, s->chunk_ns);
    sse_parser_feed(s->parser, data, n);
    return n;
}

/* ---- attempts ---- */

static int sse_stream_start(struct sse_stream *s, char *errstr, size_t errsz)
{
    struct curl_slist *h = NULL, *t;
    char line[SSE_MAX_NAME + 32];

#define SSE_ADD(str)                                                                               \
    do {                                                                                           \
        t = curl_slist_append(h, (str));                                                           \
        if (!t)                                                                                    \
            goto nomem;                                                                            \
        h = t;                                                                                     \
    } while (0)
    SSE_ADD("Accept: text/event-stream");
    SSE_ADD("Cache-Control: no-cache");
    if (s->api_key && *s->api_key) {
        snprintf(line, sizeof(line), "x-api-key: %s", s->api_key);
        SSE_ADD(line);
        memset(line, 0, sizeof(line));
    }
    for (size_t i = 0; i < s->nheaders; i++)
        SSE_ADD(s->headers[i]);
    const char *id = sse_parser_last_id(s->parser);
    if (*id) {
        snprintf(line, sizeof(line), "Last-Event-ID: %s", id);
        SSE_ADD(line);
    }
#undef SSE_ADD
    curl_slist_free_all(s->hdrs);
    s->hdrs = h;
    curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, s->hdrs);

    s->status = 0;
    s->headers_done = s->accepted = s->error_event = s->fatal = 0;
    s->retry_after_ms = -1;
    s->content_type[0] = '\0';
    s->location[0] = '\0';
    s->fatal_msg[0] = '\0';
    s->curl_err[0] = '\0';
    s->connected_ms = 0;
    s->curl_paused = 0;
    buf_reset(&s->errbody);
    sse_parser_reset(s->parser);
    if (s->attempts_made++)
        s->stats.reconnects++;
    s->last_byte_ms = clock_mono_ms();
    s->got_bytes = 0;
    if (curl_multi_add_handle(s->c->multi, s->easy) != CURLM_OK) {
        snprintf(errstr, errsz, "curl_multi_add_handle failed");
        return -1;
    }
    s->phase = SSE_PH_ACTIVE;
    return 0;
nomem:
    curl_slist_free_all(h);
    snprintf(errstr, errsz, "out of memory");
    return -1;
}

/* Copies a body into msg as one line: control bytes folded, capped. */
static void sse_body_line(const struct buf *b, char *out, size_t outsz)
{
    size_t o = 0;
    for (size_t i = 0; i < b->len && o + 4 < outsz; i++) {
        unsigned char ch = (unsigned char)b->data[i];
        out[o++] = ch < 0x20 || ch == 0x7f ? ' ' : (char)ch;
    }
    if (o + 4 >= outsz && o >= 3)
        memcpy(out + o - 3, "...", 3);
    out[o] = '\0';
}

/* The attempt is over (the handle is already out of the multi handle).
 * Decides between stopping and waiting, and tells the caller. */
static void sse_stream_ended(struct sse_stream *s, CURLcode result, const char *why)
{
    char msg[1024], masked[1024], body[600];
    int64_t now = clock_mono_ms();
    int retriable = 1;
    int64_t delay = -1;

    s->phase = SSE_PH_WAIT;
    s->c->activity = 1;
    sse_body_line(&s->errbody, body, sizeof(body));
    if (why) {
        snprintf(msg, sizeof(msg), "%s", why);
    } else if (s->fatal) {
        retriable = 0;
        snprintf(msg, sizeof(msg), "%s", s->fatal_msg);
    } else if (s->headers_done && s->status / 100 != 2) {
        long st = s->status;
        const char *hint = st == 401 || st == 403   ? " (bad or missing API key)"
                           : st == 406              ? " (not streamable, or no API key)"
                           : st == 400 || st == 404 ? " (bad endpoint or filter)"
                                                    : "";
        if (st == 429) {
            if (s->retry_after_ms >= 0) {
                delay = s->retry_after_ms;
                if (delay > s->retry_after_cap_ms)
                    delay = s->retry_after_cap_ms;
                /* Spread streams that were refused together. */
                delay += clock_backoff_ms(0, s->backoff_base_ms, s->backoff_base_ms, &s->c->rnd);
            }
            snprintf(msg, sizeof(msg), "HTTP 429 rate limited%s%s%s",
                     s->retry_after_ms >= 0 ? "" : " (no Retry-After)", *body ? ": " : "", body);
        } else {
            retriable = st == 408 || st / 100 == 5;
            snprintf(msg, sizeof(msg), "HTTP %ld%s: %s", st, hint, *body ? body : "(empty body)");
        }
    } else if (s->headers_done && s->status == 204) {
        retriable = 0;
        snprintf(msg, sizeof(msg), "HTTP 204: the server asks not to reconnect");
    } else if (result != CURLE_OK) {
        snprintf(msg, sizeof(msg), "%s%s%s", curl_easy_strerror(result), s->curl_err[0] ? ": " : "",
                 s->curl_err);
    } else {
        snprintf(msg, sizeof(msg), "the server closed the stream%s",
                 s->error_event ? " after event: error" : "");
    }

    /* The body and libcurl's error text come from outside: the key must not
     * reach a log through them either. */
    sse_mask_text(s->api_key, msg, strlen(msg), masked, sizeof(masked));
    memcpy(msg, masked, strlen(masked) + 1);
    if (!retriable) {
        s->phase = SSE_PH_STOPPED;
        if (s->cbs.on_state)
            s->cbs.on_state(s->opaque, s, SSE_STOPPED, (int)s->status, msg);
        return;
    }
    if (s->connected_ms && now - s->connected_ms >= s->healthy_ms)
        s->attempt = 0;
    if (delay < 0) {
        int64_t base = s->backoff_base_ms;
        long retry = sse_parser_retry_ms(s->parser);
        delay = clock_backoff_ms(s->attempt, base, s->backoff_cap_ms, &s->c->rnd);
        if (retry > s->retry_after_cap_ms)
            retry = s->retry_after_cap_ms; /* the parser allows up to 24 h */
        if (retry >= 0 && delay < retry)
            delay = retry; /* the server's `retry:` is a floor */
        if (s->attempt < 30)
            s->attempt++;
    }
    s->next_attempt_ms = now + delay;
    size_t l = strlen(msg);
    snprintf(msg + l, sizeof(msg) - l, "; reconnecting in %lld ms", (long long)delay);
    if (s->cbs.on_state)
        s->cbs.on_state(s->opaque, s, SSE_DISCONNECTED, (int)s->status, msg);
}

static void sse_stream_abort(struct sse_stream *s, const char *why)
{
    curl_multi_remove_handle(s->c->multi, s->easy);
    sse_stream_ended(s, CURLE_OK, why);
}

struct sse_stream *sse_client_add(struct sse_client *c, const struct sse_stream_conf *conf,
                                  const struct sse_stream_cbs *cbs, void *opaque, char *errstr,
                                  size_t errsz)
{
    struct sse_stream *s = NULL;
    CURLU *u = NULL;
    char *scheme = NULL;

    if (!conf || !conf->url || !*conf->url) {
        snprintf(errstr, errsz, "no URL");
        return NULL;
    }
    u = curl_url();
    if (!u || curl_url_set(u, CURLUPART_URL, conf->url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        (strcasecmp(scheme, "http") && strcasecmp(scheme, "https"))) {
        char *m = sse_stream_mask_url(conf->url);
        snprintf(errstr, errsz, "bad URL \"%s\" (http or https expected)", m ? m : "");
        free(m);
        goto fail;
    }
    s = calloc(1, sizeof(*s));
    if (!s)
        goto nomem;
    s->c = c;
    s->name = strdup(conf->name ? conf->name : conf->url);
    s->url = strdup(conf->url);
    s->url_masked = sse_stream_mask_url(conf->url);
    s->api_key = conf->api_key && *conf->api_key ? strdup(conf->api_key) : NULL;
    if (!s->name || !s->url || !s->url_masked || (conf->api_key && *conf->api_key && !s->api_key))
        goto nomem;
    if (conf->name == NULL) {
        free(s->name);
        s->name = strdup(s->url_masked);
        if (!s->name)
            goto nomem;
    }
    /* Said now, in one line, rather than as a TLS error at every attempt. */
    if (conf->cacert && *conf->cacert && access(conf->cacert, R_OK) != 0) {
        snprintf(errstr, errsz, "cacert %s: %s", conf->cacert, strerror(errno));
        goto fail;
    }
    for (const char *const *hp = conf->headers; hp && *hp; hp++) {
        if (!strchr(*hp, ':')) {
            snprintf(errstr, errsz, "header \"%s\": expected \"Name: value\"", *hp);
            goto fail;
        }
        char **v = realloc(s->headers, (s->nheaders + 1) * sizeof(*v));
        if (!v)
            goto nomem;
        s->headers = v;
        if (!(s->headers[s->nheaders] = strdup(*hp)))
            goto nomem;
        s->nheaders++;
    }
    s->idle_timeout_ms = conf->idle_timeout_ms > 0 ? conf->idle_timeout_ms : 75000;
    s->connect_timeout_ms = conf->connect_timeout_ms > 0 ? conf->connect_timeout_ms : 10000;
    s->backoff_base_ms = conf->backoff_base_ms > 0 ? conf->backoff_base_ms : 500;
    s->backoff_cap_ms = conf->backoff_cap_ms > 0 ? conf->backoff_cap_ms : 30000;
    if (s->backoff_cap_ms < s->backoff_base_ms)
        s->backoff_cap_ms = s->backoff_base_ms;
    s->healthy_ms = conf->healthy_ms > 0 ? conf->healthy_ms : 60000;
    s->retry_after_cap_ms = conf->retry_after_cap_ms > 0 ? conf->retry_after_cap_ms : 300000;
    s->verbose = conf->verbose;
    if (cbs)
        s->cbs = *cbs;
    s->opaque = opaque;
    buf_init(&s->errbody, SSE_ERRBODY_MAX);
    struct sse_parser_conf pc = {conf->max_line, conf->max_event};
    s->parser = sse_parser_new(&pc, sse_on_event, sse_on_parse_error, s);
    s->easy = curl_easy_init();
    if (!s->parser || !s->easy)
        goto nomem;

    CURL *e = s->easy;
    curl_easy_setopt(e, CURLOPT_URL, s->url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, s);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, sse_write_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, sse_header_cb);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, s);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, s->curl_err);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, ""); /* every built-in: gzip, deflate, ... */
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(e, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    if (conf->cacert && *conf->cacert) /* libcurl keeps its own copy */
        curl_easy_setopt(e, CURLOPT_CAINFO, conf->cacert);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, s->connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    /* Behind an https_proxy, the proxy's "HTTP/1.1 200 Connection
     * established" must not reach sse_header_cb as if it were the answer. */
    curl_easy_setopt(e, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
    /* HTTP/1.1 even where TLS would offer h2 (api-v3.mbta.com may): with one
     * TCP connection per stream a pause pushes back through TCP with memory
     * bounded by the socket buffers. libcurl pauses an h2 stream by closing
     * its 32 MB flow-control window, so what the server already sent within
     * it still piles up in libcurl, and unpausing h2 streams had stall bugs
     * fixed only in 2025 (curl issue 16955). Separate connections also keep
     * one stream's stall or reset from taking the others along. SSE gains
     * nothing from h2: one long response per connection. */
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "mbta-stream/0.1 (libcurl)");
    if (s->verbose) {
        curl_easy_setopt(e, CURLOPT_DEBUGFUNCTION, sse_debug_cb);
        curl_easy_setopt(e, CURLOPT_DEBUGDATA, s);
        curl_easy_setopt(e, CURLOPT_VERBOSE, 1L);
    }
    if (sse_stream_start(s, errstr, errsz) < 0)
        goto fail;
    s->next = c->streams;
    c->streams = s;
    curl_free(scheme);
    curl_url_cleanup(u);
    return s;
nomem:
    snprintf(errstr, errsz, "out of memory");
fail:
    sse_stream_free(s);
    curl_free(scheme);
    curl_url_cleanup(u);
    return NULL;
}

/* Starts due attempts, applies pause requests, fires idle timeouts.
 * Returns the ms until the next timer (or `cap`). */
static int64_t sse_client_tick(struct sse_client *c, int64_t now, int64_t cap)
{
    int64_t next = cap;
    for (struct sse_stream *s = c->streams; s; s = s->next) {
        if (s->phase == SSE_PH_WAIT && !s->paused) {
            if (s->next_attempt_ms <= now) {
                char err[256];
                if (sse_stream_start(s, err, sizeof(err)) < 0) {
                    s->next_attempt_ms = now + s->backoff_cap_ms;
                    log_error("%s: %s", s->name, err);
                    continue;
                }
            } else {
                if (s->next_attempt_ms - now < next)
                    next = s->next_attempt_ms - now;
                continue;
            }
        }
        if (s->phase != SSE_PH_ACTIVE)
            continue;
        if (s->paused && !s->curl_paused && s->accepted) {
            s->curl_paused = 1;
            curl_easy_pause(s->easy, CURLPAUSE_RECV);
        } else if (!s->paused && s->curl_paused) {
            s->curl_paused = 0;
            s->last_byte_ms = now; /* the idle clock stood still while paused */
            curl_easy_pause(s->easy, CURLPAUSE_CONT);
            if (s->phase != SSE_PH_ACTIVE)
                continue;
        }
        if (s->got_bytes) {
            s->got_bytes = 0;
            s->last_byte_ms = now; /* bytes came in the previous perform */
        }
        if (s->curl_paused)
            continue;
        int64_t idle_at = s->last_byte_ms + s->idle_timeout_ms;
        if (idle_at <= now) {
            char why[128];
            snprintf(why, sizeof(why), "no byte for %ld ms (idle timeout)", s->idle_timeout_ms);
            sse_stream_abort(s, why);
            if (s->phase == SSE_PH_WAIT && s->next_attempt_ms - now < next)
                next = s->next_attempt_ms - now;
        } else if (idle_at - now < next) {
            next = idle_at - now;
        }
    }
    return next < 0 ? 0 : next;
}

static void sse_client_done(struct sse_client *c)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(c->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        char *priv = NULL;
        CURLcode result = m->data.result;
        CURL *e = m->easy_handle;
        curl_easy_getinfo(e, CURLINFO_PRIVATE, &priv);
        struct sse_stream *s = (struct sse_stream *)(void *)priv;
        curl_multi_remove_handle(c->multi, e);
        if (s)
            sse_stream_ended(s, result, NULL);
    }
}

int sse_client_run(struct sse_client *c, int timeout_ms)
{
    int64_t deadline = clock_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    int running, live = 0;

    c->activity = 0;
    for (;;) {
        int64_t now = clock_mono_ms();
        int64_t wait = sse_client_tick(c, now, deadline > now ? deadline - now : 0);
        curl_multi_perform(c->multi, &running);
        sse_client_done(c);
        if (c->activity)
            break;
        now = clock_mono_ms();
        if (now >= deadline)
            break;
        if (wait > deadline - now)
            wait = deadline - now;
        curl_multi_poll(c->multi, NULL, 0, (int)wait, NULL);
    }
    for (struct sse_stream *s = c->streams; s; s = s->next)
        live += s->phase != SSE_PH_STOPPED;
    return live;
}

void sse_stream_pause(struct sse_stream *s, int paused)
{
    /* Applied by the next sse_client_run (no byte is read outside it); a
     * write already in progress returns CURL_WRITEFUNC_PAUSE. */
    s->paused = paused ? 1 : 0;
}

int sse_stream_paused(const struct sse_stream *s)
{
    return s->paused;
}

const char *sse_stream_name(const struct sse_stream *s)
{
    return s->name;
}

void sse_stream_stats(const struct sse_stream *s, struct sse_stream_stats *out)
{
    *out = s->stats;
}
