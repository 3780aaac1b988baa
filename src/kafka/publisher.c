/* publisher: see publisher.h. */
#include "kafka/publisher.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sse/sse_stream.h"
#include "util/log.h"

/* ======================================================== the plan (pure) */

/* Each kind's name and length (the `event` header value), by enum order. */
/* clang-format off */
#define KIND(s) {s, sizeof(s) - 1}
static const struct {
    const char *name;
    size_t len;
} kinds[] = {KIND("reset"), KIND("add"), KIND("update"), KIND("remove"), KIND("bad"),
             KIND("ignored")};
#undef KIND
/* clang-format on */

const char *publisher_kind_name(enum publisher_kind k)
{
    return (unsigned)k <= PUBLISHER_IGNORED ? kinds[k].name : "?";
}

enum publisher_kind publisher_kind_parse(const char *name, size_t len)
{
    for (int k = PUBLISHER_RESET; k <= PUBLISHER_REMOVE; k++)
        if (len == kinds[k].len && !memcmp(name, kinds[k].name, len))
            return (enum publisher_kind)k;
    return PUBLISHER_IGNORED;
}

/* Decimal digits of v into out (at least 21 bytes), no NUL; returns the
 * length. snprintf costs more than the rest of a header per message, and
 * three of these per event (received-at and generation are 19 digits) were
 * 2% of produce's CPU: eight digits at a time from a 64-bit division, the
 * eight formatted with 32-bit arithmetic, two digits per table load. */
static const char fmt_pairs[] =
    "00010203040506070809101112131415161718192021222324252627282930313233"
    "34353637383940414243444546474849505152535455565758596061626364656667"
    "6869707172737475767778798081828384858687888990919293949596979899";

/* Exactly 8 digits of x < 100000000 at p. */
static void fmt_8(char *p, uint32_t x)
{
    uint32_t hi = x / 10000, lo = x % 10000;
    memcpy(p, fmt_pairs + hi / 100 * 2, 2);
    memcpy(p + 2, fmt_pairs + hi % 100 * 2, 2);
    memcpy(p + 4, fmt_pairs + lo / 100 * 2, 2);
    memcpy(p + 6, fmt_pairs + lo % 100 * 2, 2);
}

static size_t fmt_i64(char *out, int64_t v)
{
    char tmp[24];
    size_t n = sizeof(tmp), k = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    while (u >= 100000000) {
        n -= 8;
        fmt_8(tmp + n, (uint32_t)(u % 100000000));
        u /= 100000000;
    }
    uint32_t w = (uint32_t)u; /* the leading 1 to 8 digits */
    while (w >= 100) {
        n -= 2;
        memcpy(tmp + n, fmt_pairs + w % 100 * 2, 2);
        w /= 100;
    }
    if (w >= 10) {
        n -= 2;
        memcpy(tmp + n, fmt_pairs + w * 2, 2);
    } else {
        tmp[--n] = (char)('0' + w);
    }
    if (v < 0)
        out[k++] = '-';
    memcpy(out + k, tmp + n, sizeof(tmp) - n);
    return k + sizeof(tmp) - n;
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

/* "type:id" of a resource object into key[PUBLISHER_KEY_MAX]; 0, or -1
 * with reason. `validated`: the text is a reset item jscan_array already
 * validated, so only look (items are sliced without whitespace, hence
 * offset 0 in the reason). */
static int resource_key(const char *data, size_t len, int validated, char *key, size_t *klen,
                        char *reason, size_t rsz)
{
    static const char *const keys[] = {"type", "id"};
    struct jscan_str m[2];
    char err[160];
    if (validated) {
        if (jscan_members(data, len, keys, 2, m) < 0) {
            snprintf(reason, rsz, "offset 0: expected an object");
            return -1;
        }
    } else if (jscan_object(data, len, PUBLISHER_DEPTH, keys, 2, m, err, sizeof(err)) < 0) {
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
    long tl = key_part(data, &m[0], key, PUBLISHER_KEY_MAX);
    if (tl < 0 || (size_t)tl + 2 >= PUBLISHER_KEY_MAX) {
        snprintf(reason, rsz, "key too long");
        return -1;
    }
    key[tl] = ':';
    long il = key_part(data, &m[1], key + tl + 1, PUBLISHER_KEY_MAX - (size_t)tl - 1);
    if (il < 0) {
        snprintf(reason, rsz, "key too long");
        return -1;
    }
    *klen = (size_t)tl + 1 + (size_t)il;
    return 0;
}

/* The fields every plan has; the headers formatted once per event. */
static void plan_base(struct publisher_plan *p, enum publisher_kind kind, const char *stream,
                      const char *data, size_t len, int64_t received_ns, uint64_t seq,
                      int64_t generation)
{
    p->kind = kind;
    p->stream = stream;
    p->stream_len = strlen(stream);
    p->data = data ? data : "";
    p->len = len;
    p->items = NULL;
    p->nitems = 0;
    p->evname = NULL;
    p->reason[0] = '\0';
    p->klen = 0;
    p->generation = generation;
    p->received_ns = received_ns;
    p->gen_l = fmt_i64(p->gen_s, generation);
    p->rat_l = fmt_i64(p->rat_s, received_ns);
    p->seq_l = fmt_i64(p->seq_s, (int64_t)seq);
    p->gen_s[p->gen_l] = p->rat_s[p->rat_l] = p->seq_s[p->seq_l] = '\0'; /* for logs */
}

enum publisher_kind publisher_plan_init(struct publisher_plan *p, enum publisher_kind kind,
                                        const char *stream, const char *data, size_t len,
                                        int64_t received_ns, uint64_t seq, int64_t *generation,
                                        struct jscan_span **scratch, size_t *cap)
{
    plan_base(p, kind, stream, data, len, received_ns, seq, *generation);
    if (kind > PUBLISHER_REMOVE) {
        p->kind = PUBLISHER_IGNORED;
        return p->kind;
    }
    p->evname = kinds[kind].name;
    if (kind == PUBLISHER_RESET) {
        size_t n = 0;
        if (jscan_array(p->data, len, PUBLISHER_DEPTH, 0, scratch, cap, &n, p->reason,
                        sizeof(p->reason)) < 0) {
            /* The generation stays: the old state is the best we know. */
            p->kind = PUBLISHER_BAD;
            return p->kind;
        }
        int64_t g = received_ns > *generation ? received_ns : *generation + 1;
        *generation = g;
        p->generation = g;
        p->gen_l = fmt_i64(p->gen_s, g);
        p->gen_s[p->gen_l] = '\0';
        p->items = *scratch;
        p->nitems = n;
        return p->kind;
    }
    if (resource_key(p->data, len, 0, p->key, &p->klen, p->reason, sizeof(p->reason)) < 0)
        p->kind = PUBLISHER_BAD;
    return p->kind;
}

void publisher_plan_skipped(struct publisher_plan *p, const char *stream, const char *reason,
                            int64_t received_ns, uint64_t seq, int64_t generation)
{
    plan_base(p, PUBLISHER_BAD, stream, "", 0, received_ns, seq, generation);
    p->evname = "-";
    snprintf(p->reason, sizeof(p->reason), "%s", reason ? reason : "oversized");
}

size_t publisher_plan_count(const struct publisher_plan *p, int partitions)
{
    switch (p->kind) {
    case PUBLISHER_RESET:
        return p->nitems + (size_t)(partitions > 0 ? partitions : 0);
    case PUBLISHER_IGNORED:
        return 0;
    default:
        return 1;
    }
}

int publisher_plan_msg(const struct publisher_plan *p, int partitions, size_t i, size_t items_ok,
                       struct publisher_msg *m)
{
    const char *event = NULL, *reason = NULL;
    size_t elen = 0;
    if (i >= publisher_plan_count(p, partitions))
        return -1;
    m->dead = 0;
    m->item = 0;
    m->partition = -1;
    switch (p->kind) {
    case PUBLISHER_RESET:
        event = kinds[PUBLISHER_RESET].name;
        elen = kinds[PUBLISHER_RESET].len;
        if (i < p->nitems) {
            const struct jscan_span *sp = &p->items[i];
            const char *item = p->data + sp->off;
            char why[256];
            m->val = item;
            m->vlen = sp->len;
            if (resource_key(item, sp->len, 1, m->keybuf, &m->klen, why, sizeof(why)) < 0) {
                snprintf(m->reason, sizeof(m->reason), "reset item %zu: %s", i, why);
                reason = m->reason;
                m->dead = 1;
            } else {
                m->key = m->keybuf;
                m->item = 1;
            }
        } else {
            int kl = snprintf(m->keybuf, sizeof(m->keybuf), "mbta-stream:reset-end:%s", p->stream);
            int vl = snprintf(m->valbuf, sizeof(m->valbuf),
                              "{\"stream\":\"%s\",\"generation\":%" PRId64 ",\"count\":%zu}",
                              p->stream, p->generation, items_ok);
            m->key = m->keybuf;
            m->klen = (size_t)kl < sizeof(m->keybuf) ? (size_t)kl : sizeof(m->keybuf) - 1;
            m->val = m->valbuf;
            m->vlen = (size_t)vl < sizeof(m->valbuf) ? (size_t)vl : sizeof(m->valbuf) - 1;
            m->partition = (int32_t)(i - p->nitems);
            event = "reset-end";
            elen = 9;
        }
        break;
    case PUBLISHER_ADD:
    case PUBLISHER_UPDATE:
    case PUBLISHER_REMOVE:
        event = kinds[p->kind].name;
        elen = kinds[p->kind].len;
        m->key = p->key;
        m->klen = p->klen;
        m->val = p->kind == PUBLISHER_REMOVE ? NULL : p->data;
        m->vlen = p->kind == PUBLISHER_REMOVE ? 0 : p->len;
        break;
    default: /* PUBLISHER_BAD: the whole event */
        event = p->evname ? p->evname : "-";
        elen = strlen(event);
        snprintf(m->reason, sizeof(m->reason), "%s", p->reason);
        reason = m->reason;
        m->dead = 1;
        m->val = p->data;
        m->vlen = p->len;
        break;
    }
    if (m->dead) {
        m->key = p->stream;
        m->klen = p->stream_len;
    }
    struct producer_hdr *h = m->hdrs;
    h[0] = (struct producer_hdr){"event", 5, event, elen};
    h[1] = (struct producer_hdr){"stream", 6, p->stream, p->stream_len};
    h[2] = (struct producer_hdr){"generation", 10, p->gen_s, p->gen_l};
    h[3] = (struct producer_hdr){"received-at", 11, p->rat_s, p->rat_l};
    h[4] = (struct producer_hdr){"seq", 3, p->seq_s, p->seq_l};
    m->nhdrs = 5;
    if (reason)
        h[m->nhdrs++] = (struct producer_hdr){"reason", 6, reason, strlen(reason)};
    return 0;
}

/* ===================================================== the publisher (I/O) */

/* One event on its way to Kafka: its plan and `next`, the first message
 * not yet enqueued, so that it can stop on a full queue and go on later
 * exactly where it stopped. On the stack the plan borrows the event; in
 * the backlog the job owns copies (data, items). `partitions` is the
 * topic's count when the event arrived: the plan's message count must not
 * change under a half-sent job, so a reset waiting in the backlog keeps the
 * markers it was planned with even when a later reset learns of more
 * partitions (that later reset, behind it in the same backlog, marks them). */
struct job {
    struct publisher_plan plan;
    int partitions;
    char *data;               /* owned copy (backlog only) */
    struct jscan_span *items; /* owned copy (backlog only) */
    size_t next, good;        /* good: reset items sent as records */
    struct job *link;
};

struct publisher_stream {
    char *name, *topic;
    struct publisher *pub;
    struct sse_stream *src; /* borrowed; NULL: nothing to pause */
    int partitions;         /* as of the last reset (or start) */
    int64_t generation;
    int have_reset, warned_no_reset;
    uint64_t seq;
    struct publisher_stream_stats st;
    struct job *bl_head, *bl_tail;
    char unknown[8][64]; /* event names already logged as ignored */
    int nunknown;
    struct publisher_stream *link;
};

struct publisher {
    struct producer *prod;
    struct publisher_stream *streams, *streams_tail;
    char *dlq; /* NULL: dead letters only logged */
    uint64_t max_events;
    int closing; /* purging at exit: already counted as undelivered */
    int dr_seen; /* a delivery report since the last poll */
    struct publisher_totals tot;
    struct jscan_span *spans; /* reset splitting scratch */
    size_t spans_cap;
};

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Not a designated initializer: that would zero the plan's buffers (about
 * 1.5 KB) once per event; the plan's own init sets what it uses. */
static void job_init(struct job *j, int partitions)
{
    j->partitions = partitions;
    j->data = NULL;
    j->items = NULL;
    j->next = j->good = 0;
    j->link = NULL;
}

static void job_free(struct job *j)
{
    if (!j)
        return;
    free(j->data);
    free(j->items);
    free(j);
}

/* A heap copy of a (stack) job for the backlog; NULL when out of memory. */
static struct job *job_dup(const struct job *j)
{
    struct job *c = malloc(sizeof(*c));
    if (!c)
        return NULL;
    *c = *j;
    c->link = NULL;
    c->data = malloc(j->plan.len + 1);
    c->items = j->plan.nitems ? malloc(j->plan.nitems * sizeof(*c->items)) : NULL;
    if (!c->data || (j->plan.nitems && !c->items)) {
        job_free(c);
        return NULL;
    }
    if (j->plan.len)
        memcpy(c->data, j->plan.data, j->plan.len);
    c->data[j->plan.len] = '\0';
    if (j->plan.nitems)
        memcpy(c->items, j->plan.items, j->plan.nitems * sizeof(*c->items));
    c->plan.data = c->data;
    c->plan.items = c->items;
    return c;
}

/* Logs a bad event once: stream, seq, reason, the first 200 bytes. */
static void log_bad(const struct publisher_stream *s, const char *seq, const char *reason,
                    const char *data, size_t len)
{
    char shown[201];
    size_t n = len < 200 ? len : 200;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)data[i];
        shown[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    shown[n] = '\0';
    log_warn("%s: seq %s: bad event: %s: %s%s", s->name, seq, reason, shown,
             len > 200 ? "..." : "");
}

/* Enqueues m. PRODUCER_OK (also when refused for good: counted as failed,
 * since retrying would fail the same way) or PRODUCER_FULL. */
static int send_msg(struct publisher_stream *s, const struct job *j, const struct publisher_msg *m)
{
    char err[256];
    const char *topic = m->dead ? s->pub->dlq : s->topic;
    if (!topic)
        return PRODUCER_OK; /* no dead-letter topic: only logged */
    /* The record's timestamp is the received-at time: what librdkafka would
     * take (the wall clock, ms) without a clock read per message. */
    int rc = producer_send(
        s->pub->prod, topic, m->partition, m->key, m->klen, m->val, m->vlen, m->hdrs, m->nhdrs,
        j->plan.received_ns > 0 ? j->plan.received_ns / 1000000 : 0, s, err, sizeof(err));
    if (rc == PRODUCER_OK) {
        s->st.produced++;
        s->st.bytes += m->vlen;
    } else if (rc == PRODUCER_ERR) {
        log_error("%s: seq %s: %s: produce: %s", s->name, j->plan.seq_s, topic, err);
        s->st.failed++;
        rc = PRODUCER_OK;
    }
    return rc;
}

/* Sends the job's remaining messages. PRODUCER_OK when done, or
 * PRODUCER_FULL (j->next says where to go on). */
static int job_run(struct publisher_stream *s, struct job *j)
{
    struct publisher_msg m;
    size_t n = publisher_plan_count(&j->plan, j->partitions);
    while (j->next < n) {
        publisher_plan_msg(&j->plan, j->partitions, j->next, j->good, &m);
        if (send_msg(s, j, &m) != PRODUCER_OK)
            return PRODUCER_FULL;
        if (m.dead) {
            log_bad(s, j->plan.seq_s, m.reason, m.val, m.vlen);
            s->st.bad++;
        }
        j->good += (size_t)m.item;
        j->next++;
    }
    if (j->plan.kind == PUBLISHER_RESET)
        log_info("%s: reset seq %s: %zu items, generation %" PRId64 ", %d markers", s->name,
                 j->plan.seq_s, j->good, j->plan.generation, j->partitions);
    return PRODUCER_OK;
}

static void stream_pause(struct publisher_stream *s)
{
    if (s->src && !sse_stream_paused(s->src)) {
        s->st.pauses++;
        log_debug("%s: kafka queue full, pausing the stream", s->name);
        sse_stream_pause(s->src, 1);
    }
}

/* Runs the backlog in order; resumes the source when it is empty. */
static void stream_pump(struct publisher_stream *s, int resume)
{
    while (s->bl_head) {
        struct job *j = s->bl_head;
        if (job_run(s, j) != PRODUCER_OK)
            return;
        s->bl_head = j->link;
        if (!s->bl_head)
            s->bl_tail = NULL;
        s->st.backlog--;
        job_free(j);
    }
    if (resume && s->src && sse_stream_paused(s->src)) {
        log_debug("%s: backlog drained, resuming", s->name);
        sse_stream_pause(s->src, 0);
    }
}

/* Runs a job now when nothing waits before it, else queues it. */
static void stream_submit(struct publisher_stream *s, struct job *j)
{
    if (!s->bl_head && job_run(s, j) == PRODUCER_OK)
        return;
    struct job *c = job_dup(j);
    if (!c) {
        /* Cannot keep it: say so loudly; this is the only loss path. */
        log_error("%s: seq %s: out of memory for the backlog: event lost", s->name, j->plan.seq_s);
        s->st.failed++;
        return;
    }
    if (s->bl_tail)
        s->bl_tail->link = c;
    else
        s->bl_head = c;
    s->bl_tail = c;
    s->st.backlog++;
    stream_pause(s);
}

/* Counts an event in; 0 when past max_events (not ours to take). */
static int stream_take(struct publisher_stream *s)
{
    struct publisher *pub = s->pub;
    if (pub->max_events && pub->tot.events >= pub->max_events)
        return 0;
    s->seq++;
    s->st.in++;
    if (!pub->tot.events++)
        pub->tot.first_ns = mono_ns();
    return 1;
}

/*
 * Partitions can be added to the topic while we run (kafka-topics --alter):
 * the markers of a reset must reach every partition, the new ones too, or
 * the consumer never sweeps them. So each reset asks the brokers for the
 * count before its markers are planned; resets are rare (one per
 * connection), so a metadata round trip each is cheap. The same answer
 * updates librdkafka's metadata cache, hence its partitioner spreads keyed
 * messages over the new partitions from this reset on too, before the
 * markers. When the brokers do not answer within the timeout (down,
 * restarting) the old count stays: its partitions still get their markers,
 * and the next reset asks again. It blocks the loop at most that long.
 */
static void stream_refresh_partitions(struct publisher_stream *s)
{
    char err[512];
    int n =
        producer_topic_partitions(s->pub->prod, s->topic, PUBLISHER_REFRESH_MS, err, sizeof(err));
    if (n < 0) {
        log_warn("%s: partition count not refreshed (keeping %d): %s", s->name, s->partitions, err);
        return;
    }
    if (n < s->partitions) {
        /* Kafka never removes partitions: a broker with stale metadata. */
        log_warn("%s: %s: metadata shows %d partitions, fewer than %d: keeping %d", s->name,
                 s->topic, n, s->partitions, s->partitions);
        return;
    }
    if (n != s->partitions) {
        log_info("%s: %s: now %d partitions (was %d)", s->name, s->topic, n, s->partitions);
        s->partitions = n;
    }
}

/* Logs an ignored event name once per stream (the first 8 names). */
static void stream_ignored(struct publisher_stream *s, const char *type, size_t type_len)
{
    char evname[64];
    snprintf(evname, sizeof(evname), "%.*s", (int)(type_len < 63 ? type_len : 63), type);
    for (int i = 0; i < s->nunknown; i++)
        if (!strcmp(s->unknown[i], evname))
            return;
    if (s->nunknown >= 8)
        return;
    snprintf(s->unknown[s->nunknown++], sizeof(s->unknown[0]), "%s", evname);
    /* `error` is logged by the stream layer; others are not ours. */
    if (strcmp(evname, "error"))
        log_info("%s: ignoring events named \"%s\"", s->name, evname);
}

void publisher_stream_event(struct publisher_stream *s, const char *type, size_t type_len,
                            const char *data, size_t len, int64_t received_ns)
{
    struct publisher *pub = s->pub;
    enum publisher_kind kind = publisher_kind_parse(type, type_len);
    if (kind == PUBLISHER_IGNORED) {
        stream_ignored(s, type, type_len);
        return;
    }
    if (!stream_take(s))
        return;
    if (kind != PUBLISHER_RESET && !s->have_reset && !s->warned_no_reset) {
        s->warned_no_reset = 1;
        log_warn("%s: %s before any reset; produced with generation %" PRId64, s->name,
                 kinds[kind].name, s->generation);
    }
    struct job j;
    if (publisher_plan_init(&j.plan, kind, s->name, data, len, received_ns, s->seq, &s->generation,
                            &pub->spans, &pub->spans_cap) == PUBLISHER_RESET) {
        s->have_reset = 1;
        stream_refresh_partitions(s); /* before its markers are planned */
    }
    job_init(&j, s->partitions);
    stream_submit(s, &j);
}

void publisher_stream_skipped(struct publisher_stream *s, const char *reason, int64_t received_ns)
{
    if (!stream_take(s))
        return;
    struct job j;
    job_init(&j, s->partitions);
    publisher_plan_skipped(&j.plan, s->name, reason, received_ns, s->seq, s->generation);
    stream_submit(s, &j);
}

static void publisher_on_dr(void *opaque, void *msg_opaque, int err, const char *reason)
{
    struct publisher *pub = opaque;
    struct publisher_stream *s = msg_opaque;
    if (pub->closing)
        return;
    if (!err) {
        s->st.delivered++;
        pub->dr_seen = 1;
        return;
    }
    s->st.failed++;
    if (s->st.failed <= 10 || s->st.failed % 1000 == 0)
        log_error("%s: delivery failed (%" PRIu64 " so far): %s", s->name, s->st.failed, reason);
}

struct publisher *publisher_new(const struct publisher_conf *conf, char *errstr, size_t errsz)
{
    struct publisher *pub = calloc(1, sizeof(*pub));
    if (!pub) {
        snprintf(errstr, errsz, "out of memory");
        return NULL;
    }
    pub->max_events = conf->max_events;
    if (conf->dead_letter_topic && *conf->dead_letter_topic &&
        !(pub->dlq = strdup(conf->dead_letter_topic))) {
        snprintf(errstr, errsz, "out of memory");
        goto fail;
    }
    pub->prod = producer_new(conf->producer, publisher_on_dr, pub, errstr, errsz);
    if (!pub->prod)
        goto fail;
    return pub;
fail:
    publisher_destroy(pub);
    return NULL;
}

void publisher_destroy(struct publisher *pub)
{
    if (!pub)
        return;
    pub->closing = 1;
    producer_destroy(pub->prod);
    while (pub->streams) {
        struct publisher_stream *s = pub->streams;
        pub->streams = s->link;
        while (s->bl_head) {
            struct job *j = s->bl_head;
            s->bl_head = j->link;
            job_free(j);
        }
        free(s->name);
        free(s->topic);
        free(s);
    }
    free(pub->spans);
    free(pub->dlq);
    free(pub);
}

struct publisher_stream *publisher_stream_add(struct publisher *pub, const char *name,
                                              const char *topic, int timeout_ms, char *errstr,
                                              size_t errsz)
{
    struct publisher_stream *s = calloc(1, sizeof(*s));
    if (!s || !(s->name = strdup(name)) || !(s->topic = strdup(topic))) {
        snprintf(errstr, errsz, "out of memory");
        goto fail;
    }
    s->pub = pub;
    s->partitions = producer_topic_ensure(pub->prod, topic, timeout_ms, errstr, errsz);
    if (s->partitions < 0)
        goto fail;
    if (pub->streams_tail)
        pub->streams_tail->link = s;
    else
        pub->streams = s;
    pub->streams_tail = s;
    return s;
fail:
    if (s) {
        free(s->name);
        free(s->topic);
    }
    free(s);
    return NULL;
}

int publisher_dead_letter_ensure(struct publisher *pub, int timeout_ms, char *errstr, size_t errsz)
{
    if (!pub->dlq)
        return 0;
    return producer_topic_ensure(pub->prod, pub->dlq, timeout_ms, errstr, errsz) < 0 ? -1 : 0;
}

int publisher_stream_partitions(const struct publisher_stream *ps)
{
    return ps->partitions;
}

const char *publisher_stream_name(const struct publisher_stream *ps)
{
    return ps->name;
}

void publisher_stream_source(struct publisher_stream *ps, struct sse_stream *src)
{
    ps->src = src;
}

void publisher_poll(struct publisher *pub, int timeout_ms)
{
    producer_poll(pub->prod, timeout_ms);
    if (pub->dr_seen) {
        pub->dr_seen = 0;
        pub->tot.last_dr_ns = mono_ns();
    }
}

int publisher_pump(struct publisher *pub, int resume)
{
    for (struct publisher_stream *s = pub->streams; s; s = s->link)
        if (s->bl_head || !resume)
            stream_pump(s, resume);
    return publisher_backlog(pub);
}

int publisher_backlog(const struct publisher *pub)
{
    for (const struct publisher_stream *s = pub->streams; s; s = s->link)
        if (s->bl_head)
            return 1;
    return 0;
}

int publisher_queue_len(const struct publisher *pub)
{
    return pub->prod ? producer_outq_len(pub->prod) : 0;
}

int publisher_fatal(struct publisher *pub, char *errstr, size_t errsz)
{
    return producer_fatal(pub->prod, errstr, errsz);
}

void publisher_stream_stats(const struct publisher_stream *ps, struct publisher_stream_stats *out)
{
    *out = ps->st;
}

void publisher_totals(const struct publisher *pub, struct publisher_totals *out)
{
    *out = pub->tot;
    out->delivered = out->bytes = 0;
    for (const struct publisher_stream *s = pub->streams; s; s = s->link) {
        out->delivered += s->st.delivered;
        out->bytes += s->st.bytes;
    }
}

uint64_t publisher_undelivered(const struct publisher *pub)
{
    uint64_t n = 0;
    for (const struct publisher_stream *s = pub->streams; s; s = s->link) {
        const struct publisher_stream_stats *st = &s->st;
        uint64_t done = st->delivered + st->failed;
        n += (st->produced > done ? st->produced - done : 0) + st->failed;
        for (const struct job *j = s->bl_head; j; j = j->link)
            n += publisher_plan_count(&j->plan, j->partitions) - j->next;
    }
    return n;
}
