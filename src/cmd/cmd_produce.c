/*
 * mbta-stream produce: MBTA SSE streams into Kafka topics (docs/CONTRACT.md).
 *
 * One thread, one loop: sse_client_run (the streams' callbacks turn events
 * into messages) then producer_poll (delivery reports), repeat. A `reset` is
 * split into one message per resource, sliced out of the array exactly as
 * received (jscan), then an end-of-reset marker goes to every partition.
 *
 * Backpressure: when librdkafka's queue is full, the event (and whatever the
 * stream still delivers from the current chunk) waits in that stream's
 * backlog, the stream is paused, and the backlog is retried as delivery
 * reports free space; the stream resumes once it is drained. Nothing is
 * dropped and the loop never blocks. While a backlog waits, the loop waits
 * on delivery reports (which free the queue), not on the paused source.
 * `pauses=` in the stats counts the pauses.
 *
 * Bad events (malformed JSON, wrong shape, missing type or id, oversized)
 * are counted, logged once with context and sent to the dead-letter topic.
 *
 * At exit, after the totals, a `timing:` line gives what a benchmark needs:
 * wall time from the first event to the last delivery report and the
 * process's CPU time (bench/bench_produce.sh; --max-events ends a run after
 * exactly N events, as kcat -c does).
 */
#include <errno.h>
#include <inttypes.h>
#include <sys/resource.h>
#include <time.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "json/jscan.h"
#include "kafka/producer.h"
#include "sse/sse_stream.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/opt.h"
#include "util/sig.h"

#define KEY_MAX 1024

enum ev_kind { EV_RESET, EV_ADD, EV_UPDATE, EV_REMOVE, EV_BAD };

static const char *const ev_names[] = {"reset", "add", "update", "remove", "bad"};

/* One event on its way to Kafka. A reset yields one step per item and then
 * one per partition (the markers); other events one step. `next` is the
 * first step not yet enqueued, so a job can stop on a full queue and go on
 * later exactly where it stopped. */
struct job {
    enum ev_kind kind;
    char *data; /* borrowed while on the stack, owned in the backlog */
    size_t len;
    struct jscan_span *spans; /* reset items; owned in the backlog */
    size_t nspans;
    int64_t received_ns, generation;
    uint64_t seq;
    char *evname; /* bad events: the SSE event name as received */
    char *reason; /* bad events */
    size_t next, good;
    struct job *link;
};

struct pstream {
    char *name, *path, *topic, *url;
    size_t name_len;
    struct app *app;
    struct sse_stream *sse;
    int partitions;
    int64_t generation;
    int have_reset, warned_no_reset, stopped;
    uint64_t seq;
    uint64_t ev_in, produced, delivered, failed, bad, bytes;
    uint64_t pauses; /* times the stream was paused for a full queue */
    char gen_s[24];  /* the generation header, formatted once per reset */
    size_t gen_l;
    int64_t gen_of;
    struct job *bl_head, *bl_tail;
    size_t bl_len;
    char unknown[8][64]; /* event names already logged as ignored */
    int nunknown;
};

struct app {
    struct producer *prod;
    struct pstream *streams;
    size_t nstreams;
    char *dlq; /* NULL or "": dead letters only logged */
    int max_depth;
    int fatal;
    int closing;                  /* purging at exit: already counted as undelivered */
    uint64_t ev_total;            /* events in, all streams (--max-events) */
    int dr_seen;                  /* a delivery report since the last poll */
    int64_t first_ns, last_dr_ns; /* CLOCK_MONOTONIC: first event, last report */
    /* jscan scratch for reset splitting */
    struct jscan_span *spans;
    size_t spans_cap;
};

/* ---- options ---- */
static char *o_brokers, *o_api_url, *o_api_key, *o_dlq;
static struct strlist o_streams, o_x;
static long o_partitions, o_rf, o_stats, o_max_event, o_idle, o_flush, o_topic_timeout,
    o_max_events;
static int o_verbose;
static char *o_log_level;

static const struct opt produce_opts[] = {
    {"brokers", 'b', OPT_STR, "KAFKA_BROKERS", NULL, 0, 0, "HOST:PORT",
     "Kafka bootstrap brokers (required)", &o_brokers, 0},
    {"api-url", 0, OPT_STR, "MBTA_API_URL", "https://api-v3.mbta.com", 0, 0, "BASE",
     "base URL of the MBTA V3 API (or of `mbta-stream serve`)", &o_api_url, 0},
    {"api-key", 0, OPT_STR, "MBTA_API_KEY", NULL, 0, 0, "KEY", "MBTA API key (x-api-key)",
     &o_api_key, OPT_F_SECRET},
    {"stream", 's', OPT_LIST, NULL, NULL, 0, 0, "NAME=/PATH?QUERY[@TOPIC]",
     "a stream (repeatable); topic mbta.NAME unless @TOPIC; default: vehicles, predictions, "
     "alerts",
     &o_streams, 0},
    {"X", 'X', OPT_LIST, NULL, NULL, 0, 0, "KEY=VALUE",
     "librdkafka property (repeatable; also kafka.KEY in the config file)", &o_x, OPT_F_MERGE},
    {"partitions", 0, OPT_INT, NULL, "3", 1, 100000, "N", "partitions of topics we create",
     &o_partitions, 0},
    {"replication-factor", 0, OPT_INT, NULL, "1", 1, 100, "N",
     "replication factor of topics we create", &o_rf, 0},
    {"dead-letter-topic", 0, OPT_STR, NULL, "mbta.dead-letters", 0, 0, "TOPIC",
     "where bad events go (empty: only logged)", &o_dlq, 0},
    {"stats-interval", 0, OPT_INT, NULL, "30", 0, 86400, "SEC",
     "stats line to stderr every SEC seconds (0: only at exit)", &o_stats, 0},
    {"max-event", 0, OPT_INT, NULL, "67108864", 1024, 1073741824, "BYTES",
     "largest SSE event accepted; larger ones are dead letters", &o_max_event, 0},
    {"idle-timeout", 0, OPT_INT, NULL, "75000", 100, 3600000, "MS",
     "reconnect when the source sends no byte for this long", &o_idle, 0},
    {"flush-timeout", 0, OPT_INT, NULL, "30", 0, 86400, "SEC",
     "on SIGINT/SIGTERM, wait this long for deliveries", &o_flush, 0},
    {"topic-timeout", 0, OPT_INT, NULL, "60", 1, 86400, "SEC",
     "at start, wait this long for the brokers to create/describe topics", &o_topic_timeout, 0},
    {"max-events", 0, OPT_INT, NULL, "0", 0, 1e15, "N",
     "stop after N events in, as on SIGTERM (0: never; for benchmarks and tests)", &o_max_events,
     0},
    {"verbose", 'v', OPT_BOOL, NULL, "false", 0, 0, NULL, "libcurl verbose output (key masked)",
     &o_verbose, 0},
    {"log-level", 0, OPT_STR, "MBTA_LOG_LEVEL", "info", 0, 0, "LEVEL", "error|warn|info|debug",
     &o_log_level, 0},
    {NULL, 0, 0, NULL, NULL, 0, 0, NULL, NULL, NULL, 0},
};

static const char *const default_streams[] = {
    "vehicles=/vehicles?filter[route_type]=0,1",
    ("predictions=/predictions?filter[route]=Red,Orange,Blue,Green-B,Green-C,Green-D,Green-E,"
     "Mattapan"),
    "alerts=/alerts",
};

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- jobs ---- */

static void job_free(struct job *j)
{
    if (!j)
        return;
    free(j->data);
    free(j->spans);
    free(j->evname);
    free(j->reason);
    free(j);
}

/* A heap copy of a (stack) job for the backlog; NULL when out of memory. */
static struct job *job_dup(const struct job *j)
{
    struct job *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    *c = *j;
    c->link = NULL;
    c->data = malloc(j->len + 1);
    c->spans = j->nspans ? malloc(j->nspans * sizeof(*j->spans)) : NULL;
    c->evname = j->evname ? strdup(j->evname) : NULL;
    c->reason = j->reason ? strdup(j->reason) : NULL;
    if (!c->data || (j->nspans && !c->spans) || (j->evname && !c->evname) ||
        (j->reason && !c->reason)) {
        job_free(c);
        return NULL;
    }
    if (j->len)
        memcpy(c->data, j->data, j->len);
    c->data[j->len] = '\0';
    if (j->nspans)
        memcpy(c->spans, j->spans, j->nspans * sizeof(*j->spans));
    return c;
}

/* Logs a bad event once: stream, seq, reason, the first 200 bytes. */
static void log_bad(const struct pstream *s, uint64_t seq, const char *reason, const char *data,
                    size_t len)
{
    char shown[201];
    size_t n = len < 200 ? len : 200;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)data[i];
        shown[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    shown[n] = '\0';
    log_warn("%s: seq %" PRIu64 ": bad event: %s: %s%s", s->name, seq, reason, shown,
             len > 200 ? "..." : "");
}

/* One decoded string member into out (NUL-terminated); its length or -1
 * when it does not fit. Most ids carry no escape: a plain copy. */
static long key_part(const char *data, const struct jscan_str *m, char *out, size_t outsz)
{
    if (m->escaped)
        return jscan_unescape(data + m->raw.off, m->raw.len, out, outsz);
    if (m->raw.len + 1 > outsz)
        return -1;
    memcpy(out, data + m->raw.off, m->raw.len);
    out[m->raw.len] = '\0';
    return (long)m->raw.len;
}

/* Builds "type:id" from a resource object; 0, or -1 with reason. */
static int resource_key(struct app *a, const char *data, size_t len, int validated, char *key,
                        size_t *klen, char *reason, size_t rsz)
{
    static const char *const keys[] = {"type", "id"};
    struct jscan_str m[2];
    char err[160];
    if (validated) {
        /* A reset item: jscan_array validated it already; look only. Items
         * are sliced without whitespace, hence offset 0. */
        if (jscan_members(data, len, keys, 2, m) < 0) {
            snprintf(reason, rsz, "offset 0: expected an object");
            return -1;
        }
    } else if (jscan_object(data, len, a->max_depth, keys, 2, m, err, sizeof(err)) < 0) {
        snprintf(reason, rsz, "%s", err);
        return -1;
    }
    for (int i = 0; i < 2; i++) {
        if (!m[i].found) {
            snprintf(reason, rsz, m[i].kind ? "\"%s\" is not a string" : "no \"%s\"", keys[i]);
            return -1;
        }
        if (!m[i].raw.len) {
            snprintf(reason, rsz, "empty \"%s\"", keys[i]);
            return -1;
        }
    }
    long tl = key_part(data, &m[0], key, KEY_MAX);
    if (tl < 0 || (size_t)tl + 2 >= KEY_MAX) {
        snprintf(reason, rsz, "key too long");
        return -1;
    }
    key[tl] = ':';
    long il = key_part(data, &m[1], key + tl + 1, KEY_MAX - (size_t)tl - 1);
    if (il < 0) {
        snprintf(reason, rsz, "key too long");
        return -1;
    }
    *klen = (size_t)tl + 1 + (size_t)il;
    return 0;
}

/* Decimal digits of v into out (at least 21 bytes), no NUL; returns the
 * length. snprintf costs more than the rest of a header per message. */
static size_t fmt_i64(char *out, int64_t v)
{
    static const char pairs[] =
        "00010203040506070809101112131415161718192021222324252627282930313233"
        "34353637383940414243444546474849505152535455565758596061626364656667"
        "6869707172737475767778798081828384858687888990919293949596979899";
    char tmp[24];
    size_t n = sizeof(tmp), k = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    while (u >= 100) {
        unsigned d = (unsigned)(u % 100) * 2;
        u /= 100;
        tmp[--n] = pairs[d + 1];
        tmp[--n] = pairs[d];
    }
    if (u >= 10) {
        tmp[--n] = pairs[u * 2 + 1];
        tmp[--n] = pairs[u * 2];
    } else {
        tmp[--n] = (char)('0' + u);
    }
    if (v < 0)
        out[k++] = '-';
    memcpy(out + k, tmp + n, sizeof(tmp) - n);
    return k + sizeof(tmp) - n;
}

/* Enqueues one message with the contract's headers. */
static int send_msg(struct pstream *s, const char *topic, int32_t part, const char *key,
                    size_t klen, const char *val, size_t vlen, const char *event,
                    const struct job *j, const char *reason)
{
    char rat[24], seq[24], err[256];
    if (!s->gen_l || s->gen_of != j->generation) {
        s->gen_l = fmt_i64(s->gen_s, j->generation);
        s->gen_of = j->generation;
    }
    size_t rl = fmt_i64(rat, j->received_ns), ql = fmt_i64(seq, (int64_t)j->seq);
    struct producer_hdr h[6] = {{"event", event, strlen(event)},
                                {"stream", s->name, s->name_len},
                                {"generation", s->gen_s, s->gen_l},
                                {"received-at", rat, rl},
                                {"seq", seq, ql},
                                {"reason", reason, reason ? strlen(reason) : 0}};
    int rc = producer_send(s->app->prod, topic, part, key, klen, val, vlen, h, reason ? 6 : 5, s,
                           err, sizeof(err));
    if (rc == PRODUCER_OK) {
        s->produced++;
        s->bytes += vlen;
    } else if (rc == PRODUCER_ERR) {
        /* Not retriable (too large, fatal producer): counted as failed. */
        log_error("%s: seq %" PRIu64 ": %s: produce: %s", s->name, j->seq, topic, err);
        s->failed++;
        rc = PRODUCER_OK; /* move on: retrying would fail the same way */
    }
    return rc;
}

static int send_dead_letter(struct pstream *s, const struct job *j, const char *evname,
                            const char *reason, const char *data, size_t len)
{
    const char *dlq = s->app->dlq;
    if (!dlq || !*dlq)
        return PRODUCER_OK;
    return send_msg(s, dlq, -1, s->name, strlen(s->name), data ? data : "", len, evname, j, reason);
}

/* Runs the job's remaining steps. Returns PRODUCER_OK when done, or
 * PRODUCER_FULL (j->next says where to go on). */
static int job_run(struct pstream *s, struct job *j)
{
    char key[KEY_MAX], reason[256];
    size_t klen;
    int rc;

    if (j->kind == EV_BAD) {
        if (j->next == 0) {
            rc = send_dead_letter(s, j, j->evname, j->reason, j->data, j->len);
            if (rc != PRODUCER_OK)
                return rc;
            log_bad(s, j->seq, j->reason, j->data, j->len);
            s->bad++;
            j->next = 1;
        }
        return PRODUCER_OK;
    }
    if (j->kind != EV_RESET) {
        if (j->next)
            return PRODUCER_OK;
        if (resource_key(s->app, j->data, j->len, 0, key, &klen, reason, sizeof(reason)) < 0) {
            rc = send_dead_letter(s, j, ev_names[j->kind], reason, j->data, j->len);
            if (rc != PRODUCER_OK)
                return rc;
            log_bad(s, j->seq, reason, j->data, j->len);
            s->bad++;
        } else {
            int tomb = j->kind == EV_REMOVE;
            rc = send_msg(s, s->topic, -1, key, klen, tomb ? NULL : j->data, tomb ? 0 : j->len,
                          ev_names[j->kind], j, NULL);
            if (rc != PRODUCER_OK)
                return rc;
        }
        j->next = 1;
        return PRODUCER_OK;
    }
    /* reset: items, then one marker per partition */
    while (j->next < j->nspans) {
        const struct jscan_span *sp = &j->spans[j->next];
        const char *item = j->data + sp->off;
        if (resource_key(s->app, item, sp->len, 1, key, &klen, reason, sizeof(reason)) < 0) {
            char r2[300];
            snprintf(r2, sizeof(r2), "reset item %zu: %s", j->next, reason);
            rc = send_dead_letter(s, j, "reset", r2, item, sp->len);
            if (rc != PRODUCER_OK)
                return rc;
            log_bad(s, j->seq, r2, item, sp->len);
            s->bad++;
        } else {
            rc = send_msg(s, s->topic, -1, key, klen, item, sp->len, "reset", j, NULL);
            if (rc != PRODUCER_OK)
                return rc;
            j->good++;
        }
        j->next++;
    }
    char mkey[256], mval[320];
    int mk = snprintf(mkey, sizeof(mkey), "mbta-stream:reset-end:%s", s->name);
    int mv =
        snprintf(mval, sizeof(mval), "{\"stream\":\"%s\",\"generation\":%" PRId64 ",\"count\":%zu}",
                 s->name, j->generation, j->good);
    while (j->next < j->nspans + (size_t)s->partitions) {
        int32_t part = (int32_t)(j->next - j->nspans);
        rc = send_msg(s, s->topic, part, mkey, (size_t)mk, mval, (size_t)mv, "reset-end", j, NULL);
        if (rc != PRODUCER_OK)
            return rc;
        j->next++;
    }
    log_info("%s: reset seq %" PRIu64 ": %zu items, generation %" PRId64 ", %d markers", s->name,
             j->seq, j->good, j->generation, s->partitions);
    return PRODUCER_OK;
}

/* Runs the backlog in order; resumes the stream when it is empty. */
static void stream_pump(struct pstream *s, int resume)
{
    while (s->bl_head) {
        struct job *j = s->bl_head;
        if (job_run(s, j) != PRODUCER_OK)
            return;
        s->bl_head = j->link;
        if (!s->bl_head)
            s->bl_tail = NULL;
        s->bl_len--;
        job_free(j);
    }
    if (resume && s->sse && sse_stream_paused(s->sse) && !s->stopped) {
        log_debug("%s: backlog drained, resuming", s->name);
        sse_stream_pause(s->sse, 0);
    }
}

/* Runs a job now when nothing waits before it, else queues it. */
static void stream_submit(struct pstream *s, struct job *j)
{
    if (!s->bl_head && job_run(s, j) == PRODUCER_OK)
        return;
    struct job *c = job_dup(j);
    if (!c) {
        /* Cannot keep it: say so loudly; this is the only loss path. */
        log_error("%s: seq %" PRIu64 ": out of memory for the backlog: event lost", s->name,
                  j->seq);
        s->failed++;
        return;
    }
    if (s->bl_tail)
        s->bl_tail->link = c;
    else
        s->bl_head = c;
    s->bl_tail = c;
    s->bl_len++;
    if (s->sse && !sse_stream_paused(s->sse)) {
        s->pauses++;
        log_debug("%s: kafka queue full, pausing the stream", s->name);
        sse_stream_pause(s->sse, 1);
    }
}

static void submit_bad(struct pstream *s, uint64_t seq, int64_t rns, const char *evname,
                       const char *reason, const char *data, size_t len)
{
    struct job j = {.kind = EV_BAD,
                    .data = (char *)(uintptr_t)data,
                    .len = len,
                    .received_ns = rns,
                    .generation = s->generation,
                    .seq = seq,
                    .evname = (char *)(uintptr_t)evname,
                    .reason = (char *)(uintptr_t)reason};
    stream_submit(s, &j);
}

/* ---- SSE callbacks ---- */

static void on_event(void *opaque, struct sse_stream *ss, const struct sse_event *ev,
                     int64_t received_ns)
{
    struct pstream *s = opaque;
    struct app *a = s->app;
    char evname[64];
    (void)ss;
    enum ev_kind kind = EV_BAD;
    for (int k = EV_RESET; k <= EV_REMOVE; k++)
        if (ev->type_len == strlen(ev_names[k]) && !memcmp(ev->type, ev_names[k], ev->type_len))
            kind = (enum ev_kind)k;
    if (kind == EV_BAD) {
        snprintf(evname, sizeof(evname), "%.*s", (int)(ev->type_len < 63 ? ev->type_len : 63),
                 ev->type);
        /* `error` is logged by the stream layer; others are not ours. */
        int seen = 0;
        for (int i = 0; i < s->nunknown; i++)
            seen |= !strcmp(s->unknown[i], evname);
        if (!seen && s->nunknown < 8) {
            snprintf(s->unknown[s->nunknown++], sizeof(s->unknown[0]), "%s", evname);
            if (strcmp(evname, "error"))
                log_info("%s: ignoring events named \"%s\"", s->name, evname);
        }
        return;
    }
    if (o_max_events && a->ev_total >= (uint64_t)o_max_events)
        return; /* the rest of the last chunk: not ours to take */
    s->seq++;
    s->ev_in++;
    if (!a->ev_total++)
        a->first_ns = mono_ns();
    if (kind != EV_RESET && !s->have_reset && !s->warned_no_reset) {
        s->warned_no_reset = 1;
        log_warn("%s: %s before any reset; produced with generation %" PRId64, s->name,
                 ev_names[kind], s->generation);
    }
    struct job j = {.kind = kind,
                    .data = (char *)(uintptr_t)ev->data,
                    .len = ev->data_len,
                    .received_ns = received_ns,
                    .generation = s->generation,
                    .seq = s->seq};
    if (kind == EV_RESET) {
        size_t n = 0;
        char err[200];
        if (jscan_array(ev->data, ev->data_len, a->max_depth, 0, &a->spans, &a->spans_cap, &n, err,
                        sizeof(err)) < 0) {
            /* The generation stays: the old state is the best we know. */
            submit_bad(s, s->seq, received_ns, "reset", err, ev->data, ev->data_len);
            return;
        }
        int64_t g = received_ns > s->generation ? received_ns : s->generation + 1;
        s->generation = g;
        s->have_reset = 1;
        j.generation = g;
        j.spans = a->spans;
        j.nspans = n;
    }
    stream_submit(s, &j);
}

static void on_state(void *opaque, struct sse_stream *ss, enum sse_state st, int http_status,
                     const char *msg)
{
    struct pstream *s = opaque;
    (void)ss;
    switch (st) {
    case SSE_CONNECTED:
        log_info("%s: connected (%d)", s->name, http_status);
        break;
    case SSE_DISCONNECTED:
        log_warn("%s: disconnected: %s", s->name, msg ? msg : "");
        break;
    case SSE_STOPPED:
        s->stopped = 1;
        log_error("%s: stopped: %s", s->name, msg ? msg : "");
        break;
    }
}

static void on_parse_error(void *opaque, struct sse_stream *ss, const char *msg)
{
    struct pstream *s = opaque;
    (void)ss;
    if (o_max_events && s->app->ev_total >= (uint64_t)o_max_events)
        return;
    s->seq++;
    s->ev_in++;
    if (!s->app->ev_total++)
        s->app->first_ns = mono_ns();
    submit_bad(s, s->seq, clock_realtime_ns(), "-", msg ? msg : "oversized", "", 0);
}

static void on_dr(void *opaque, void *msg_opaque, int err, const char *reason)
{
    struct app *a = opaque;
    struct pstream *s = msg_opaque;
    if (a->closing)
        return;
    if (!err) {
        s->delivered++;
        a->dr_seen = 1;
        return;
    }
    s->failed++;
    if (s->failed <= 10 || s->failed % 1000 == 0)
        log_error("%s: delivery failed (%" PRIu64 " so far): %s", s->name, s->failed, reason);
}

/* ---- setup ---- */

static int valid_name(const char *n, size_t len)
{
    if (!len || len > 100)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = n[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return 0;
    }
    return 1;
}

/* NAME=/PATH?QUERY[@TOPIC]; 0 or -1 with errstr. */
static int parse_stream(struct pstream *s, const char *spec, const char *base, char *errstr,
                        size_t errsz)
{
    const char *eq = strchr(spec, '=');
    if (!eq || !valid_name(spec, (size_t)(eq - spec))) {
        snprintf(errstr, errsz,
                 "--stream %s: expected NAME=/PATH?QUERY[@TOPIC], NAME of [A-Za-z0-9._-]", spec);
        return -1;
    }
    const char *path = eq + 1;
    const char *at = strrchr(path, '@');
    size_t plen = at ? (size_t)(at - path) : strlen(path);
    if (!plen || path[0] != '/') {
        snprintf(errstr, errsz, "--stream %s: the path must start with /", spec);
        return -1;
    }
    if (at && !valid_name(at + 1, strlen(at + 1))) {
        snprintf(errstr, errsz, "--stream %s: bad topic name", spec);
        return -1;
    }
    s->name = strndup(spec, (size_t)(eq - spec));
    s->name_len = (size_t)(eq - spec);
    s->path = strndup(path, plen);
    if (at) {
        s->topic = strdup(at + 1);
    } else {
        s->topic = malloc(strlen(s->name) + 6);
        if (s->topic)
            sprintf(s->topic, "mbta.%s", s->name);
    }
    size_t bl = strlen(base);
    while (bl && base[bl - 1] == '/')
        bl--;
    s->url = malloc(bl + plen + 1);
    if (s->url) {
        memcpy(s->url, base, bl);
        memcpy(s->url + bl, path, plen);
        s->url[bl + plen] = '\0';
    }
    return 0;
}

static void print_stats(struct app *a, const char *what)
{
    char line[4096];
    size_t n = 0;
    for (size_t i = 0; i < a->nstreams && n < sizeof(line) - 400; i++) {
        struct pstream *s = &a->streams[i];
        struct sse_stream_stats st = {0};
        if (s->sse)
            sse_stream_stats(s->sse, &st);
        n += (size_t)snprintf(line + n, sizeof(line) - n,
                              "%s%s: in=%" PRIu64 " produced=%" PRIu64 " delivered=%" PRIu64
                              " failed=%" PRIu64 " bad=%" PRIu64 " reconnects=%" PRIu64
                              " backlog=%zu pauses=%" PRIu64 " bytes=%" PRIu64,
                              i ? "; " : "", s->name, s->ev_in, s->produced, s->delivered,
                              s->failed, s->bad, st.reconnects, s->bl_len, s->pauses, s->bytes);
    }
    log_info("%s: %s; queue=%d", what, line, a->prod ? producer_outq_len(a->prod) : 0);
}

/* The numbers a benchmark needs, in one line at exit: wall time from the
 * first event to the last delivery report (ns resolution, printed in ms)
 * and the process's CPU time (all threads, librdkafka's included). */
static void print_timing(const struct app *a)
{
    struct rusage ru;
    uint64_t msgs = 0, bytes = 0;
    for (size_t i = 0; i < a->nstreams; i++) {
        msgs += a->streams[i].delivered;
        bytes += a->streams[i].bytes;
    }
    getrusage(RUSAGE_SELF, &ru);
    double user = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6;
    double sys = (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    double ms = a->first_ns && a->last_dr_ns > a->first_ns
                    ? (double)(a->last_dr_ns - a->first_ns) / 1e6
                    : 0;
    log_info("timing: events=%" PRIu64 " delivered=%" PRIu64 " bytes=%" PRIu64
             " elapsed_ms=%.3f cpu_user_s=%.3f cpu_sys_s=%.3f max_rss_kb=%ld",
             a->ev_total, msgs, bytes, ms, user, sys, ru.ru_maxrss);
}

static uint64_t undelivered(struct app *a)
{
    uint64_t n = 0;
    for (size_t i = 0; i < a->nstreams; i++) {
        struct pstream *s = &a->streams[i];
        uint64_t inflight =
            s->produced > s->delivered + s->failed ? s->produced - s->delivered - s->failed : 0;
        n += inflight + s->failed;
        for (struct job *j = s->bl_head; j; j = j->link)
            n += j->kind == EV_RESET ? j->nspans + (size_t)s->partitions - j->next : 1;
    }
    return n;
}

int cmd_produce(int argc, char **argv)
{
    static const char synopsis[] =
        "-b HOST:PORT [--api-url BASE] [--stream 'NAME=/PATH?QUERY[@TOPIC]' ...] "
        "[-X key=value ...]";
    char err[512];
    int rc = 2;
    struct app a = {0};
    struct sse_client *client = NULL;

    sig_install();
    int pr = opt_parse(produce_opts, "produce", synopsis, argc, argv, NULL, err, sizeof(err));
    if (pr == 1) {
        rc = 0;
        goto out;
    }
    if (pr < 0) {
        fprintf(stderr, "mbta-stream produce: %s\n", err);
        goto out;
    }
    int lvl = log_level_parse(o_log_level ? o_log_level : "info");
    if (lvl < 0) {
        fprintf(stderr, "mbta-stream produce: --log-level %s: expected error|warn|info|debug\n",
                o_log_level);
        goto out;
    }
    log_level_current = lvl;
    if (!o_brokers || !*o_brokers) {
        fprintf(stderr, "mbta-stream produce: -b HOST:PORT is required\n");
        goto out;
    }
    a.dlq = o_dlq;
    a.max_depth = 64;
    size_t nspec = o_streams.n ? o_streams.n : sizeof(default_streams) / sizeof(*default_streams);
    a.streams = calloc(nspec, sizeof(*a.streams));
    if (!a.streams)
        goto out;
    for (size_t i = 0; i < nspec; i++) {
        const char *spec = o_streams.n ? o_streams.v[i] : default_streams[i];
        struct pstream *s = &a.streams[a.nstreams++];
        s->app = &a;
        if (parse_stream(s, spec, o_api_url, err, sizeof(err)) < 0) {
            fprintf(stderr, "mbta-stream produce: %s\n", err);
            goto out;
        }
        for (size_t k = 0; k < i; k++)
            if (!strcmp(a.streams[k].name, s->name)) {
                fprintf(stderr, "mbta-stream produce: --stream %s: the name is used twice\n",
                        s->name);
                goto out;
            }
    }

    struct producer_conf pc = {.brokers = o_brokers,
                               .props = &o_x,
                               .partitions = (int)o_partitions,
                               .replication_factor = (int)o_rf};
    a.prod = producer_new(&pc, on_dr, &a, err, sizeof(err));
    if (!a.prod) {
        fprintf(stderr, "mbta-stream produce: %s\n", err);
        goto out;
    }
    rc = 1;
    /* Topics first: the markers need each topic's partition count. */
    for (size_t i = 0; i < a.nstreams; i++) {
        struct pstream *s = &a.streams[i];
        int parts =
            producer_topic_ensure(a.prod, s->topic, (int)o_topic_timeout * 1000, err, sizeof(err));
        if (parts < 0) {
            log_error("%s: topic %s", s->name, err);
            goto out;
        }
        s->partitions = parts;
        log_info("%s: %s -> %s (%d partitions)", s->name, s->path, s->topic, parts);
    }
    if (a.dlq && *a.dlq &&
        producer_topic_ensure(a.prod, a.dlq, (int)o_topic_timeout * 1000, err, sizeof(err)) < 0) {
        log_error("dead-letter topic %s", err);
        goto out;
    }

    client = sse_client_new(err, sizeof(err));
    if (!client) {
        log_error("sse: %s", err);
        goto out;
    }
    static const struct sse_stream_cbs cbs = {
        .on_event = on_event, .on_state = on_state, .on_parse_error = on_parse_error};
    for (size_t i = 0; i < a.nstreams; i++) {
        struct pstream *s = &a.streams[i];
        struct sse_stream_conf sc = {.name = s->name,
                                     .url = s->url,
                                     .api_key = o_api_key && *o_api_key ? o_api_key : NULL,
                                     .idle_timeout_ms = o_idle,
                                     .max_line = (size_t)o_max_event,
                                     .max_event = (size_t)o_max_event,
                                     .verbose = o_verbose};
        s->sse = sse_client_add(client, &sc, &cbs, s, err, sizeof(err));
        if (!s->sse) {
            fprintf(stderr, "mbta-stream produce: %s: %s\n", s->name, err);
            rc = 2;
            goto out;
        }
    }

    int64_t next_stats = o_stats ? clock_mono_ms() + o_stats * 1000 : INT64_MAX;
    int all_stopped = 0;
    while (!sig_stop) {
        /* With a backlog, what frees the queue is a delivery report: wait
         * for those (briefly) rather than for the sources; else wait for
         * the sources, which return as soon as bytes arrive. */
        int backlog = 0;
        for (size_t i = 0; i < a.nstreams; i++)
            backlog |= a.streams[i].bl_head != NULL;
        int live = sse_client_run(client, backlog ? 0 : 20);
        producer_poll(a.prod, backlog ? 2 : 0);
        if (a.dr_seen) {
            a.dr_seen = 0;
            a.last_dr_ns = mono_ns();
        }
        for (size_t i = 0; i < a.nstreams; i++)
            if (a.streams[i].bl_head)
                stream_pump(&a.streams[i], 1);
        if (producer_fatal(a.prod, err, sizeof(err))) {
            log_error("kafka: fatal: %s", err);
            a.fatal = 1;
            break;
        }
        if (o_max_events && a.ev_total >= (uint64_t)o_max_events) {
            log_info("%" PRIu64 " events in (--max-events)", a.ev_total);
            break;
        }
        if (live == 0) {
            log_error("all streams stopped");
            all_stopped = 1;
            break;
        }
        if (clock_mono_ms() >= next_stats) {
            print_stats(&a, "stats");
            next_stats = clock_mono_ms() + o_stats * 1000;
        }
    }

    /* Drain: stop reading, push out the backlogs, flush. */
    for (size_t i = 0; i < a.nstreams; i++)
        sse_stream_pause(a.streams[i].sse, 1);
    int64_t deadline = clock_mono_ms() + o_flush * 1000;
    log_info("stopping: flushing (up to %ld s)", o_flush);
    for (;;) {
        int pending = 0;
        for (size_t i = 0; i < a.nstreams; i++) {
            stream_pump(&a.streams[i], 0);
            pending |= a.streams[i].bl_head != NULL;
        }
        if (!pending && producer_outq_len(a.prod) == 0)
            break;
        if (clock_mono_ms() >= deadline || a.fatal)
            break;
        producer_poll(a.prod, 50);
        if (a.dr_seen) {
            a.dr_seen = 0;
            a.last_dr_ns = mono_ns();
        }
    }
    print_stats(&a, "totals");
    print_timing(&a);
    uint64_t lost = undelivered(&a);
    if (lost) {
        log_error("%" PRIu64 " messages undelivered", lost);
        rc = 1;
    } else {
        rc = all_stopped || a.fatal ? 1 : 0;
    }
out:
    sse_client_destroy(client);
    a.closing = 1;
    producer_destroy(a.prod);
    for (size_t i = 0; i < a.nstreams; i++) {
        struct pstream *s = &a.streams[i];
        while (s->bl_head) {
            struct job *j = s->bl_head;
            s->bl_head = j->link;
            job_free(j);
        }
        free(s->name);
        free(s->path);
        free(s->topic);
        free(s->url);
    }
    free(a.streams);
    free(a.spans);
    opt_free(produce_opts);
    return rc;
}
