/*
 * serve_http: see serve_http.h.
 *
 * Writes are batched: events are framed into a per-connection buffer and
 * handed to libmicrohttpd in blocks as large as it takes (one chunk per
 * block, not per event), which is what lets one connection carry well over
 * 100,000 events/s. The content callback blocks (thread per connection),
 * polling the socket for a hang-up while it waits, so a client that leaves
 * during a quiet period is noticed at once.
 */
#include "serve/serve_http.h"

#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "serve/feed.h"
#include "serve/recfile.h"
#include "serve/sim.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/log.h"

#define OUT_BLOCK   (256 * 1024) /* produce until this much is pending */
#define MAX_CATCHUP (7 * 86400)  /* steps a late connection may need */
#define MAX_PREV    64

/* What the MBTA's Phoenix server sends (put_resp_content_type adds the
 * charset), so clients meet the media type with its parameter here too. */
#define CT_SSE     "text/event-stream; charset=utf-8"
#define CT_JSONAPI "application/vnd.api+json; charset=utf-8"

struct serve {
    struct serve_conf conf;
    struct MHD_Daemon *d;
    int port;
    FILE *truth;
    pthread_mutex_t mu; /* truth, counters, prev_ids, first_ms */
    long nconn, nstreams;
    int64_t first_ms; /* when the first stream connected: the world clock's zero */
    int64_t arr_mark; /* arrivals up to this sim second are in the truth file */
    char prev_ids[MAX_PREV][48];
    size_t nprev;
    atomic_int stopping;
    char *replay;
    size_t replay_len;
    long replay_start;
};

enum conn_mode { MODE_STREAM, MODE_ERROR, MODE_REPLAY };

struct conn {
    struct serve *srv;
    long id;
    enum conn_mode mode;
    struct MHD_Connection *mc;
    char path[1024];
    struct sim *sim;
    struct feed *feed;
    struct feed_batch batch;
    struct buf out, tmp;
    size_t out_off;
    long events, diffs;
    int started, closing, stalled;
    const char *reason;
    int64_t stall_until, last_write, next_step, rate_base;
    long rate_base_diffs;
    struct buf errbody; /* MODE_ERROR: the data of the `error` event */
    size_t roff;        /* replay: next record */
    int64_t rbase_ms;   /* replay: wall ms of the recording's ns 0 */
    int64_t rlast_ns;
};

/* ---- truth ---------------------------------------------------------------------------------- */

static void json_escape(struct buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    buf_putc(b, '"');
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        buf_append(b, s + run, i - run);
        run = i + 1;
        char e[7] = {'\\', (char)c, 0};
        if (c == '"' || c == '\\')
            buf_append(b, e, 2);
        else if (c == '\n')
            buf_append(b, "\\n", 2);
        else if (c == '\r')
            buf_append(b, "\\r", 2);
        else if (c == '\t')
            buf_append(b, "\\t", 2);
        else {
            char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            buf_append(b, u, 6);
        }
    }
    buf_append(b, s + run, n - run);
    buf_putc(b, '"');
}

static void truth_write(struct serve *srv, const struct buf *line)
{
    if (!srv->truth)
        return;
    pthread_mutex_lock(&srv->mu);
    fwrite(line->data, 1, line->len, srv->truth);
    fflush(srv->truth);
    pthread_mutex_unlock(&srv->mu);
}

static void truth_event(struct conn *c, const char *name, const char *data, size_t len, int bad)
{
    if (!c->srv->truth)
        return;
    struct buf *t = &c->tmp;
    t->len = 0;
    buf_printf(t, "{\"t\":\"event\",\"conn\":%ld,\"path\":", c->id);
    json_escape(t, c->path, strlen(c->path));
    buf_printf(t, ",\"seq\":%ld,\"event\":\"%s\",\"data\":", c->events, name);
    json_escape(t, data, len);
    buf_printf(t, ",\"bad\":%s}\n", bad ? "true" : "false");
    truth_write(c->srv, t);
}

/* The state and close lines of a connection; state may be NULL ([]). */
static void truth_end(struct serve *srv, long id, const char *path, const struct feed *f,
                      const char *reason)
{
    if (!srv->truth)
        return;
    struct buf t;
    buf_init(&t, (size_t)512 << 20);
    buf_printf(&t, "{\"t\":\"state\",\"conn\":%ld,\"path\":", id);
    json_escape(&t, path, strlen(path));
    buf_printf(&t, ",\"state\":");
    if (!f || feed_state_json(f, &t))
        buf_printf(&t, "[]");
    buf_printf(&t, "}\n{\"t\":\"close\",\"conn\":%ld,\"reason\":", id);
    json_escape(&t, reason, strlen(reason));
    buf_printf(&t, "}\n");
    truth_write(srv, &t);
    buf_fini(&t);
}

static void truth_arrivals(struct conn *c)
{
    size_t n;
    const struct sim_arrival *a = sim_arrivals(c->sim, &n);
    if (!n || !c->srv->truth) {
        sim_arrivals_clear(c->sim);
        return;
    }
    struct serve *srv = c->srv;
    struct buf *t = &c->tmp;
    t->len = 0;
    /* every connection runs the same world: write each second once */
    pthread_mutex_lock(&srv->mu);
    int64_t mark = srv->arr_mark;
    if (sim_now(c->sim) > srv->arr_mark)
        srv->arr_mark = sim_now(c->sim);
    pthread_mutex_unlock(&srv->mu);
    for (size_t i = 0; i < n; i++) {
        if (a[i].arrived_s <= mark)
            continue;
        char ts[32];
        sim_format_time(a[i].arrived_s, ts);
        buf_printf(t,
                   "{\"t\":\"arrival\",\"vehicle\":\"%s\",\"trip\":\"%s\",\"route\":\"%s\","
                   "\"stop\":\"%s\",\"stop_sequence\":%d,\"arrived_at\":\"%s\"}\n",
                   a[i].vehicle, a[i].trip, a[i].route, a[i].stop, a[i].stop_sequence, ts);
    }
    sim_arrivals_clear(c->sim);
    if (t->len)
        truth_write(srv, t);
}

/* ---- framing -------------------------------------------------------------------------------- */

static void emit(struct conn *c, const char *name, const char *data, size_t len, int is_diff)
{
    const struct serve_conf *cf = &c->srv->conf;
    const char *eol = cf->fault_cr ? "\r" : "\n";
    int malformed = 0, oversize = 0;
    c->events++;
    if (is_diff) {
        c->diffs++;
        malformed = cf->fault_bad_every > 0 && c->diffs % cf->fault_bad_every == 0 && len > 1;
    }
    oversize = cf->fault_oversize > 0 && c->events == cf->fault_oversize && len > 1;
    size_t start = c->out.len;
    buf_printf(&c->out, "event: %s%sdata: ", name, eol);
    size_t doff = c->out.len;
    if (oversize) {
        /* whitespace before the last byte: still JSON, just too big */
        size_t pad = cf->fault_oversize_bytes > len ? cf->fault_oversize_bytes - len + 1 : 1;
        buf_append(&c->out, data, len - 1);
        char sp[4096];
        memset(sp, ' ', sizeof(sp));
        while (pad) {
            size_t k = pad < sizeof(sp) ? pad : sizeof(sp);
            buf_append(&c->out, sp, k);
            pad -= k;
        }
        buf_append(&c->out, data + len - 1, 1);
    } else if (malformed) {
        buf_append(&c->out, data, len - 1); /* the closing brace is missing */
    } else {
        buf_append(&c->out, data, len);
    }
    size_t dlen = c->out.len - doff;
    buf_printf(&c->out, "%s%s", eol, eol);
    if (c->out.len == start) {
        log_error("conn %ld: output buffer full", c->id);
        c->closing = 1;
        c->reason = "output buffer full";
        return;
    }
    truth_event(c, name, c->out.data + doff, dlen, malformed || oversize);
    if (malformed || oversize)
        c->stalled |= 2; /* marker: this event must not be committed */
    if (cf->fault_close_after > 0 && c->events >= cf->fault_close_after) {
        c->closing = 1;
        c->reason = "fault-close-after";
    }
}

/* Emits up to max events of the batch; returns how many diff events went out. */
static long emit_batch(struct conn *c, long max)
{
    long n = 0;
    struct feed_batch *b = &c->batch;
    for (size_t i = 0; i < b->n && n < max && !c->closing; i++) {
        const struct feed_event *ev = &b->ev[i];
        c->stalled &= ~2;
        emit(c, feed_kind_name(ev->kind), b->data.data + ev->off, ev->len, ev->kind != FEED_RESET);
        if (!(c->stalled & 2))
            feed_commit(c->feed, b, i);
        c->stalled &= ~2;
        if (ev->kind != FEED_RESET)
            n++;
    }
    return n;
}

static void keepalive(struct conn *c)
{
    buf_printf(&c->out, ": keep-alive%s", c->srv->conf.fault_cr ? "\r" : "\n");
}

/* ---- producing ------------------------------------------------------------------------------ */

static int64_t step_ms(const struct serve_conf *cf)
{
    int64_t ms = (int64_t)(1000.0 / cf->speed);
    return ms > 0 ? ms : 1;
}

static void world_step(struct conn *c)
{
    sim_step(c->sim);
    truth_arrivals(c);
}

static long diffs_left(const struct conn *c)
{
    long lim = c->srv->conf.limit;
    return lim > 0 ? lim - c->diffs : 1L << 40;
}

/* Puts more bytes into c->out, or returns how long to wait (ms). */
static int64_t produce_stream(struct conn *c, int64_t now)
{
    const struct serve_conf *cf = &c->srv->conf;
    if (!c->started) {
        c->started = 1;
        if (feed_diff(c->feed, &c->batch)) {
            c->closing = 1;
            c->reason = "out of memory";
            return 0;
        }
        emit_batch(c, 1);
        c->next_step = now + step_ms(cf);
        c->rate_base = now;
        c->rate_base_diffs = c->diffs;
        if (cf->fault_stall_s > 0)
            c->stall_until = now + (int64_t)(cf->fault_stall_s * 1000);
        return 0;
    }
    if (c->stall_until) {
        if (now < c->stall_until)
            return c->stall_until - now;
        c->stall_until = 0;
        c->last_write = now;
        c->rate_base = now;
        c->rate_base_diffs = c->diffs;
    }
    int64_t wait = 1000;
    if (diffs_left(c) > 0) {
        if (cf->rate > 0) {
            long due = (long)((double)(now - c->rate_base) * cf->rate / 1000.0) -
                       (c->diffs - c->rate_base_diffs);
            if (due <= 0) {
                wait = 1;
            } else {
                if (due > 200000)
                    due = 200000;
                long sent = 0;
                for (int it = 0; it < 100000 && sent < due && c->out.len < OUT_BLOCK &&
                                 !c->closing && diffs_left(c) > 0;
                     it++) {
                    world_step(c);
                    if (feed_diff(c->feed, &c->batch))
                        break;
                    long m = due - sent;
                    if (m > diffs_left(c))
                        m = diffs_left(c);
                    sent += emit_batch(c, m);
                }
                return 0;
            }
        } else if (now >= c->next_step) {
            int64_t sm = step_ms(cf);
            int64_t n = (now - c->next_step) / sm + 1;
            if (n > 100000)
                n = 100000;
            for (int64_t i = 0; i < n; i++)
                world_step(c);
            c->next_step += n * sm;
            if (c->next_step < now - 1000)
                c->next_step = now + sm; /* fell far behind: don't try to catch up */
            if (feed_diff(c->feed, &c->batch) == 0)
                emit_batch(c, diffs_left(c));
            if (c->out.len)
                return 0;
            wait = c->next_step - now;
        } else {
            wait = c->next_step - now;
        }
    }
    int64_t ka = (int64_t)(cf->keepalive_s * 1000);
    if (now - c->last_write >= ka) {
        keepalive(c);
        return 0;
    }
    if (c->last_write + ka - now < wait)
        wait = c->last_write + ka - now;
    return wait;
}

static int64_t produce_replay(struct conn *c, int64_t now)
{
    struct serve *srv = c->srv;
    for (;;) {
        struct recfile_rec rec;
        char err[128];
        size_t off = c->roff;
        int r = recfile_next(srv->replay, srv->replay_len, &off, &rec, err, sizeof(err));
        if (r < 0) {
            log_error("replay: %s", err);
            c->closing = 1;
            c->reason = "replay: malformed recording";
            return 0;
        }
        if (r == 0) {
            if (!srv->conf.loop) {
                c->closing = 1;
                c->reason = "replay end";
                return 0;
            }
            c->roff = (size_t)srv->replay_start;
            c->rbase_ms += (int64_t)((double)c->rlast_ns / 1e6 / srv->conf.speed) + 1;
            c->rlast_ns = 0;
            continue;
        }
        int64_t at = c->rbase_ms + (int64_t)((double)rec.ns / 1e6 / srv->conf.speed);
        if (rec.kind == 'D' && at > now)
            return at - now;
        c->roff = off;
        c->rlast_ns = rec.ns;
        if (rec.kind == 'D') {
            buf_append(&c->out, rec.data, rec.len);
            if (c->out.len >= OUT_BLOCK)
                return 0;
        }
    }
}

static int client_gone(struct conn *c, int64_t ms)
{
    if (ms > 100)
        ms = 100;
    if (ms < 0)
        ms = 0;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c->mc, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci) {
        usleep((useconds_t)ms * 1000);
        return 0;
    }
    struct pollfd p = {.fd = ci->connect_fd, .events = POLLIN | POLLRDHUP};
    int r = poll(&p, 1, (int)ms);
    if (r <= 0)
        return 0;
    if (p.revents & (POLLRDHUP | POLLHUP | POLLERR))
        return 1;
    char x;
    ssize_t k = recv(ci->connect_fd, &x, 1, MSG_PEEK | MSG_DONTWAIT);
    if (k == 0)
        return 1;
    usleep((useconds_t)ms * 1000); /* a pipelined request: not ours to read */
    return 0;
}

static ssize_t reader(void *cls, uint64_t pos, char *dst, size_t max)
{
    struct conn *c = cls;
    (void)pos;
    for (;;) {
        if (c->out.len > c->out_off) {
            size_t n = c->out.len - c->out_off;
            if (n > max)
                n = max;
            if (c->srv->conf.fault_drip)
                n = 1;
            memcpy(dst, c->out.data + c->out_off, n);
            c->out_off += n;
            if (c->out_off == c->out.len)
                c->out.len = c->out_off = 0;
            c->last_write = clock_mono_ms();
            return (ssize_t)n;
        }
        if (c->closing)
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (atomic_load(&c->srv->stopping)) {
            c->reason = "shutdown";
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        int64_t now = clock_mono_ms(), wait = 0;
        if (c->mode == MODE_ERROR) {
            emit(c, "error", c->errbody.data ? c->errbody.data : "{}", c->errbody.len, 0);
            c->closing = 1;
            c->reason = "error event";
        } else if (c->mode == MODE_REPLAY) {
            wait = produce_replay(c, now);
        } else {
            wait = produce_stream(c, now);
        }
        if (c->out.len > c->out_off || c->closing)
            continue;
        if (client_gone(c, wait)) {
            c->reason = "client gone";
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
    }
}

static void conn_destroy(struct conn *c)
{
    feed_destroy(c->feed);
    sim_destroy(c->sim);
    feed_batch_fini(&c->batch);
    buf_fini(&c->out);
    buf_fini(&c->tmp);
    buf_fini(&c->errbody);
    free(c);
}

/* libmicrohttpd's end of a streaming response: truth lines, log, free. */
static void conn_free(void *cls)
{
    struct conn *c = cls;
    struct serve *srv = c->srv;
    if (c->feed && srv->conf.fault_drop_vehicles > 0) {
        pthread_mutex_lock(&srv->mu);
        srv->nprev = feed_held_ids(c->feed, SIM_VEHICLE, srv->prev_ids, MAX_PREV);
        pthread_mutex_unlock(&srv->mu);
    }
    truth_end(srv, c->id, c->path, c->feed, c->reason ? c->reason : "client gone");
    log_info("conn %ld: %s: closed (%s) after %ld events", c->id, c->path,
             c->reason ? c->reason : "client gone", c->events);
    conn_destroy(c);
}

/* ---- requests ------------------------------------------------------------------------------- */

struct args_ctx {
    struct feed_query *q;
    char *path;
    size_t pathsz;
    int n, bad;
    char err[256];
};

static enum MHD_Result arg_iter(void *cls, enum MHD_ValueKind kind, const char *key,
                                const char *value)
{
    struct args_ctx *a = cls;
    (void)kind;
    size_t len = strlen(a->path);
    if (strcmp(key, "api_key") != 0) /* never into logs or the truth file */
        snprintf(a->path + len, a->pathsz - len, "%c%s=%s", a->n++ ? '&' : '?', key,
                 value ? value : "");
    if (!a->bad && feed_query_set(a->q, key, value, a->err, sizeof(a->err)))
        a->bad = 1;
    return MHD_YES;
}

/* rate_limited: the headers of the MBTA's 429 (x-ratelimit-*, the reset in
 * epoch seconds) plus a Retry-After of one second. */
static enum MHD_Result respond(struct MHD_Connection *mc, unsigned status, const char *ctype,
                               const char *body, int rate_limited)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), (void *)(uintptr_t)body,
                                                             MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", ctype);
    if (rate_limited) {
        char reset[32];
        snprintf(reset, sizeof(reset), "%lld", (long long)(clock_realtime_ns() / 1000000000 + 1));
        MHD_add_response_header(r, "Retry-After", "1");
        MHD_add_response_header(r, "x-ratelimit-limit", "1000");
        MHD_add_response_header(r, "x-ratelimit-remaining", "0");
        MHD_add_response_header(r, "x-ratelimit-reset", reset);
    }
    enum MHD_Result ret = MHD_queue_response(mc, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* Appends {"errors":[...]} with the detail escaped (it may quote the
 * client's own parameter names). */
static void error_doc(struct buf *b, unsigned status, const char *code, const char *detail)
{
    buf_printf(b, "{\"errors\":[{\"status\":\"%u\",\"code\":\"%s\",\"detail\":", status, code);
    json_escape(b, detail, strlen(detail));
    buf_printf(b, "}]");
}

static enum MHD_Result respond_error(struct serve *srv, long id, const char *path,
                                     struct MHD_Connection *mc, unsigned status, const char *code,
                                     const char *detail, int rate_limited)
{
    struct buf body;
    buf_init(&body, 4096);
    error_doc(&body, status, code, detail);
    buf_printf(&body, ",\"jsonapi\":{\"version\":\"1.0\"}}");
    char reason[64];
    snprintf(reason, sizeof(reason), "status %u", status);
    truth_end(srv, id, path, NULL, reason);
    log_info("conn %ld: %s: %u %s", id, path, status, code);
    enum MHD_Result ret =
        respond(mc, status, CT_JSONAPI, body.data ? body.data : "{}", rate_limited);
    buf_fini(&body);
    return ret;
}

/* A world at the shared clock's current instant. */
static struct sim *world_now(struct serve *srv, struct conn *c)
{
    pthread_mutex_lock(&srv->mu);
    int64_t now = clock_mono_ms();
    if (srv->first_ms < 0)
        srv->first_ms = now;
    int64_t elapsed = now - srv->first_ms;
    pthread_mutex_unlock(&srv->mu);
    struct sim *s = sim_new(srv->conf.seed, srv->conf.clock_s);
    if (!s)
        return NULL;
    int64_t steps = (int64_t)((double)elapsed * srv->conf.speed / 1000.0);
    if (steps > MAX_CATCHUP)
        steps = MAX_CATCHUP;
    for (int64_t i = 0; i < steps; i++) {
        sim_step(s);
        if (c) {
            c->sim = s;
            truth_arrivals(c);
        } else {
            sim_arrivals_clear(s);
        }
    }
    return s;
}

/* GET /<type>s/<id> as JSON:API: {"data":{...}} from the world now, or 404. */
static enum MHD_Result respond_single(struct serve *srv, long id, const char *path,
                                      struct MHD_Connection *mc, int type, const char *ent_id)
{
    struct sim *s = world_now(srv, NULL);
    struct buf doc;
    enum MHD_Result ret;
    int found = 0;

    buf_init(&doc, (size_t)1 << 20);
    if (!s) {
        ret = respond_error(srv, id, path, mc, 500, "internal_error", "out of memory", 0);
        goto out;
    }
    buf_printf(&doc, "{\"data\":");
    for (size_t i = 0; i < sim_count(s) && !found; i++) {
        const struct sim_ent *e = sim_ent(s, i);
        if (e->alive && (int)e->type == type && !strcmp(e->id, ent_id))
            found = sim_render(s, i, &doc) == 0;
    }
    if (!found) {
        ret = respond_error(srv, id, path, mc, 404, "not_found", "no such resource", 0);
        goto out;
    }
    buf_printf(&doc, ",\"jsonapi\":{\"version\":\"1.0\"}}");
    truth_end(srv, id, path, NULL, "json:api");
    ret = respond(mc, 200, CT_JSONAPI, doc.data, 0);
out:
    buf_fini(&doc);
    sim_destroy(s);
    return ret;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *mc, const char *url,
                               const char *method, const char *version, const char *upload,
                               size_t *upload_size, void **req)
{
    struct serve *srv = cls;
    const struct serve_conf *cf = &srv->conf;
    (void)version;
    (void)upload;
    (void)upload_size;
    if (!*req) { /* first call: headers only; answer on the second */
        *req = (void *)1;
        return MHD_YES;
    }
    pthread_mutex_lock(&srv->mu);
    long id = ++srv->nconn;
    pthread_mutex_unlock(&srv->mu);

    struct feed_query q;
    char path[1024];
    snprintf(path, sizeof(path), "%s", url);
    int type = -1;
    const char *single = NULL; /* the ID of /vehicles/ID */
    if (url[0] == '/') {
        const char *slash = strchr(url + 1, '/');
        char seg[32];
        if (!slash) {
            type = sim_type_parse(url + 1, 1);
        } else if (slash[1] && !strchr(slash + 1, '/') && (size_t)(slash - url - 1) < sizeof(seg)) {
            memcpy(seg, url + 1, (size_t)(slash - url - 1));
            seg[slash - url - 1] = '\0';
            type = sim_type_parse(seg, 1);
            single = slash + 1;
        }
    }
    feed_query_init(&q, type < 0 ? SIM_VEHICLE : type);
    struct args_ctx a = {&q, path, sizeof(path), 0, 0, ""};
    MHD_get_connection_values(mc, MHD_GET_ARGUMENT_KIND, arg_iter, &a);

    struct conn *c = NULL;
    enum MHD_Result ret;
    if (strcmp(method, "GET") != 0) {
        ret = respond_error(srv, id, path, mc, 405, "method_not_allowed", "GET only", 0);
        goto out;
    }
    if (cf->fault_status && id <= cf->fault_count) {
        ret = respond_error(srv, id, path, mc, (unsigned)cf->fault_status, "fault",
                            "injected by --fault-status", cf->fault_status == 429);
        goto out;
    }
    if (cf->api_key) {
        const char *k = MHD_lookup_connection_value(mc, MHD_GET_ARGUMENT_KIND, "api_key");
        if (!k)
            k = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "x-api-key");
        if (!k) {
            ret = respond_error(srv, id, path, mc, 406, "not_acceptable",
                                "streaming requires an API key", 0);
            goto out;
        }
        if (strcmp(k, cf->api_key) != 0) {
            ret = respond_error(srv, id, path, mc, 403, "forbidden", "invalid API key", 0);
            goto out;
        }
    }
    if (type < 0) {
        ret = respond_error(srv, id, path, mc, 404, "not_found", "unknown resource", 0);
        goto out;
    }
    const char *accept = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "Accept");
    int sse = accept && strstr(accept, "text/event-stream");
    if (single && sse) {
        /* Production streams index endpoints only. */
        ret = respond_error(srv, id, path, mc, 406, "not_acceptable",
                            "a single resource is not streamable", 0);
        goto out;
    }
    if (single) {
        ret = respond_single(srv, id, path, mc, type, single);
        goto out;
    }
    int needs_filter = type == SIM_PREDICTION || type == SIM_SCHEDULE || type == SIM_TRIP;
    const char *err = a.bad ? a.err
                      : needs_filter && !feed_query_filtered(&q)
                          ? "At least one filter[] is required."
                          : NULL;
    if (!sse && !cf->replay_path) {
        if (err) {
            ret = respond_error(srv, id, path, mc, 400, "bad_request", err, 0);
            goto out;
        }
        struct sim *s = world_now(srv, NULL);
        struct feed *f = s ? feed_new(s, &q) : NULL;
        struct buf doc;
        buf_init(&doc, (size_t)64 << 20);
        if (!f || feed_document(f, &doc)) {
            ret = respond_error(srv, id, path, mc, 500, "internal_error", "out of memory", 0);
        } else {
            truth_end(srv, id, path, NULL, "json:api");
            ret = respond(mc, 200, CT_JSONAPI, doc.data, 0);
        }
        buf_fini(&doc);
        feed_destroy(f);
        sim_destroy(s);
        goto out;
    }

    c = calloc(1, sizeof(*c));
    if (!c) {
        ret = MHD_NO;
        goto out;
    }
    c->srv = srv;
    c->id = id;
    c->mc = mc;
    snprintf(c->path, sizeof(c->path), "%s", path);
    feed_batch_init(&c->batch);
    buf_init(&c->out, cf->fault_oversize_bytes + ((size_t)256 << 20));
    buf_init(&c->tmp, cf->fault_oversize_bytes * 2 + ((size_t)512 << 20));
    buf_init(&c->errbody, 4096);
    c->last_write = clock_mono_ms();
    if (cf->replay_path) {
        c->mode = MODE_REPLAY;
        c->roff = (size_t)srv->replay_start;
        c->rbase_ms = clock_mono_ms();
    } else if (err) {
        c->mode = MODE_ERROR;
        error_doc(&c->errbody, 400, "bad_request", err);
        buf_putc(&c->errbody, '}');
    } else {
        c->mode = MODE_STREAM;
        c->sim = world_now(srv, c);
        c->feed = c->sim ? feed_new(c->sim, &q) : NULL;
        if (!c->feed) {
            ret = MHD_NO;
            goto out;
        }
        pthread_mutex_lock(&srv->mu);
        long nth = ++srv->nstreams;
        if (nth > 1 && cf->fault_drop_vehicles > 0) {
            long dropped = 0;
            for (size_t i = 0; i < srv->nprev && dropped < cf->fault_drop_vehicles; i++) {
                for (size_t k = 0; k < sim_count(c->sim); k++) {
                    const struct sim_ent *e = sim_ent(c->sim, k);
                    if (e->type == SIM_VEHICLE && e->alive && !strcmp(e->id, srv->prev_ids[i])) {
                        feed_hide(c->feed, SIM_VEHICLE, e->id);
                        log_info("conn %ld: fault: vehicle %s left out", id, e->id);
                        dropped++;
                        break;
                    }
                }
            }
        }
        pthread_mutex_unlock(&srv->mu);
    }
    struct MHD_Response *r =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, OUT_BLOCK, reader, c, conn_free);
    if (!r) {
        ret = MHD_NO;
        goto out;
    }
    MHD_add_response_header(r, "Content-Type", CT_SSE);
    MHD_add_response_header(r, "Cache-Control", "no-cache");
    log_info("conn %ld: %s: streaming", id, path);
    c = NULL; /* the response owns it now (conn_free) */
    ret = MHD_queue_response(mc, 200, r);
    MHD_destroy_response(r);
out:
    if (c) {
        truth_end(srv, c->id, c->path, NULL, "setup failed");
        conn_destroy(c);
    }
    feed_query_fini(&q);
    return ret;
}

/* ---- lifecycle ------------------------------------------------------------------------------ */

static int load_replay(struct serve *srv, char *errstr, size_t errsz)
{
    int fd = open(srv->conf.replay_path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        snprintf(errstr, errsz, "%s: %s", srv->conf.replay_path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    srv->replay_len = (size_t)st.st_size;
    void *p = srv->replay_len ? mmap(NULL, srv->replay_len, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
    close(fd);
    if (p == MAP_FAILED || !p) {
        snprintf(errstr, errsz, "%s: cannot map (%s)", srv->conf.replay_path,
                 p ? strerror(errno) : "empty file");
        return -1;
    }
    srv->replay = p;
    srv->replay_start = recfile_check(srv->replay, srv->replay_len);
    if (srv->replay_start < 0) {
        snprintf(errstr, errsz, "%s: not an mbta-stream recording", srv->conf.replay_path);
        return -1;
    }
    /* validate the whole file now rather than mid-stream */
    size_t off = (size_t)srv->replay_start;
    struct recfile_rec rec;
    char err[128];
    int r;
    while ((r = recfile_next(srv->replay, srv->replay_len, &off, &rec, err, sizeof(err))) == 1)
        ;
    if (r < 0) {
        snprintf(errstr, errsz, "%s: %s", srv->conf.replay_path, err);
        return -1;
    }
    return 0;
}

struct serve *serve_new(const struct serve_conf *conf, char *errstr, size_t errsz)
{
    struct serve *srv = calloc(1, sizeof(*srv));
    if (!srv) {
        snprintf(errstr, errsz, "out of memory");
        return NULL;
    }
    srv->conf = *conf;
    if (srv->conf.speed <= 0)
        srv->conf.speed = 1;
    if (srv->conf.keepalive_s <= 0)
        srv->conf.keepalive_s = 30;
    pthread_mutex_init(&srv->mu, NULL);
    srv->first_ms = -1;
    srv->arr_mark = INT64_MIN;
    if (conf->truth_path) {
        srv->truth = fopen(conf->truth_path, "w");
        if (!srv->truth) {
            snprintf(errstr, errsz, "%s: %s", conf->truth_path, strerror(errno));
            goto fail;
        }
    }
    if (conf->replay_path && load_replay(srv, errstr, errsz))
        goto fail;
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)conf->port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    srv->d = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL, 0, NULL,
        NULL, handler, srv, MHD_OPTION_SOCK_ADDR, &sin, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)(1 << 20), MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)0, MHD_OPTION_END);
    if (!srv->d) {
        snprintf(errstr, errsz, "cannot listen on 127.0.0.1:%d", conf->port);
        goto fail;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(srv->d, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = di ? di->port : conf->port;
    return srv;
fail:
    serve_destroy(srv);
    return NULL;
}

int serve_port(const struct serve *s)
{
    return s->port;
}

void serve_destroy(struct serve *srv)
{
    if (!srv)
        return;
    atomic_store(&srv->stopping, 1);
    if (srv->d)
        MHD_stop_daemon(srv->d);
    if (srv->truth)
        fclose(srv->truth);
    if (srv->replay)
        munmap(srv->replay, srv->replay_len);
    pthread_mutex_destroy(&srv->mu);
    free(srv);
}
