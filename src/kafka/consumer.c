/* consumer: see consumer.h. */
#include "kafka/consumer.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kafka/kconf.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/sig.h"

struct apart {
    char *topic;
    int32_t partition;
    int eof;
};

struct consumer {
    rd_kafka_t *rk;
    struct consumer_conf conf;
    struct apart *parts;
    size_t nparts;
    rd_kafka_resp_err_t last_err;
    int idle; /* the last poll timed out */
    /* next offsets not yet sent to Kafka (consumer_commit), and when we
     * last sent them */
    rd_kafka_topic_partition_list_t *pending;
    int64_t last_commit_ms;
};

/* Sends the pending offsets to Kafka, asynchronously. */
static void commit_pending(struct consumer *c)
{
    if (c->pending && c->pending->cnt)
        rd_kafka_commit(c->rk, c->pending, 1);
    if (c->pending)
        rd_kafka_topic_partition_list_destroy(c->pending);
    c->pending = NULL;
    c->last_commit_ms = clock_mono_ms();
}

static void parts_add(struct consumer *c, const char *topic, int32_t partition)
{
    for (size_t i = 0; i < c->nparts; i++)
        if (c->parts[i].partition == partition && !strcmp(c->parts[i].topic, topic))
            return;
    struct apart *p = realloc(c->parts, (c->nparts + 1) * sizeof(*p));
    if (!p)
        abort();
    c->parts = p;
    p[c->nparts].topic = strdup(topic);
    p[c->nparts].partition = partition;
    p[c->nparts].eof = 0;
    c->nparts++;
}

static void parts_del(struct consumer *c, const char *topic, int32_t partition)
{
    for (size_t i = 0; i < c->nparts; i++)
        if (c->parts[i].partition == partition && !strcmp(c->parts[i].topic, topic)) {
            free(c->parts[i].topic);
            c->parts[i] = c->parts[--c->nparts];
            return;
        }
}

static struct apart *parts_find(struct consumer *c, const char *topic, int32_t partition)
{
    for (size_t i = 0; i < c->nparts; i++)
        if (c->parts[i].partition == partition && !strcmp(c->parts[i].topic, topic))
            return &c->parts[i];
    return NULL;
}

/* Sets every partition's offset from the caller's store, topic by topic. */
static void set_offsets(struct consumer *c, rd_kafka_topic_partition_list_t *l)
{
    for (int i = 0; i < l->cnt; i++) {
        const char *topic = l->elems[i].topic;
        int done = 0;
        for (int k = 0; k < i; k++)
            if (!strcmp(l->elems[k].topic, topic))
                done = 1;
        if (done)
            continue;
        int32_t *ps = calloc((size_t)l->cnt, sizeof(*ps));
        int64_t *os = calloc((size_t)l->cnt, sizeof(*os));
        int *idx = calloc((size_t)l->cnt, sizeof(*idx));
        size_t n = 0;
        if (!ps || !os || !idx)
            abort();
        for (int k = i; k < l->cnt; k++)
            if (!strcmp(l->elems[k].topic, topic)) {
                idx[n] = k;
                ps[n++] = l->elems[k].partition;
            }
        uint64_t rnd = (uint64_t)clock_realtime_ns() | 1;
        /* Without the stored offsets we cannot start: a wrong start would
         * double or skip. Ask until the store answers (or we are told to
         * stop, then start from the beginning: the sink skips what it has). */
        for (int attempt = 0; c->conf.offsets_fn(c->conf.opaque, topic, ps, n, os); attempt++) {
            if (sig_stop) {
                for (size_t k = 0; k < n; k++)
                    os[k] = -1;
                break;
            }
            int64_t ms = clock_backoff_ms(attempt, 200, 5000, &rnd);
            log_warn("%s: stored offsets unavailable, asking again in %" PRId64 " ms", topic, ms);
            rd_kafka_poll(c->rk, 0);
            struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
            nanosleep(&ts, NULL);
        }
        for (size_t k = 0; k < n; k++) {
            l->elems[idx[k]].offset = os[k] >= 0 ? os[k] : RD_KAFKA_OFFSET_BEGINNING;
            if (os[k] >= 0)
                log_info("%s [%d]: assigned, starting at offset %" PRId64, topic, (int)ps[k],
                         os[k]);
            else
                log_info("%s [%d]: assigned, starting at the beginning", topic, (int)ps[k]);
        }
        free(ps);
        free(os);
        free(idx);
    }
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    struct consumer *c = opaque;
    int coop = !strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE");
    rd_kafka_error_t *e = NULL;
    rd_kafka_resp_err_t r = RD_KAFKA_RESP_ERR_NO_ERROR;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        set_offsets(c, parts);
        for (int i = 0; i < parts->cnt; i++)
            parts_add(c, parts->elems[i].topic, parts->elems[i].partition);
        if (coop)
            e = rd_kafka_incremental_assign(rk, parts);
        else
            r = rd_kafka_assign(rk, parts);
    } else {
        if (c->conf.revoke_fn)
            c->conf.revoke_fn(c->conf.opaque, parts);
        commit_pending(c); /* while the partitions are still ours */
        for (int i = 0; i < parts->cnt; i++) {
            parts_del(c, parts->elems[i].topic, parts->elems[i].partition);
            log_info("%s [%d]: revoked", parts->elems[i].topic, (int)parts->elems[i].partition);
        }
        if (coop)
            e = rd_kafka_incremental_unassign(rk, parts);
        else
            r = rd_kafka_assign(rk, NULL);
    }
    if (e) {
        log_error("rebalance: %s", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
    } else if (r) {
        log_error("rebalance: %s", rd_kafka_err2str(r));
    }
}

struct consumer *consumer_new(const struct consumer_conf *conf, char *errstr, size_t errsz)
{
    struct consumer *c = calloc(1, sizeof(*c));
    rd_kafka_conf_t *kc = rd_kafka_conf_new();
    rd_kafka_topic_partition_list_t *sub = NULL;
    char *topics = NULL;
    if (!c || !kc) {
        snprintf(errstr, errsz, "out of memory");
        goto fail;
    }
    c->conf = *conf;
    const char *defaults[] = {"bootstrap.servers", conf->brokers, "group.id", conf->group,
                              "enable.auto.commit", "false", "enable.auto.offset.store", "false",
                              "enable.partition.eof", "true", "auto.offset.reset", "earliest",
                              "client.id", "mbta-stream-consume",
                              /* prefetch 16 MB, not 64: the memory goal */
                              "queued.max.messages.kbytes", "16384", NULL};
    if (kconf_apply(kc, defaults, conf->kv, errstr, errsz))
        goto fail;
    rd_kafka_conf_set_rebalance_cb(kc, rebalance_cb);
    rd_kafka_conf_set_opaque(kc, c);
    c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, kc, errstr, errsz);
    if (!c->rk)
        goto fail;
    kc = NULL; /* owned by rk now */
    rd_kafka_poll_set_consumer(c->rk);
    sub = rd_kafka_topic_partition_list_new(4);
    topics = strdup(conf->topics);
    if (topics[0] == '^') {
        rd_kafka_topic_partition_list_add(sub, topics, RD_KAFKA_PARTITION_UA);
    } else {
        char *save = NULL;
        for (char *t = strtok_r(topics, ",", &save); t; t = strtok_r(NULL, ",", &save))
            if (*t)
                rd_kafka_topic_partition_list_add(sub, t, RD_KAFKA_PARTITION_UA);
    }
    if (sub->cnt == 0) {
        snprintf(errstr, errsz, "--topics: no topic given");
        goto fail;
    }
    rd_kafka_resp_err_t err = rd_kafka_subscribe(c->rk, sub);
    if (err) {
        snprintf(errstr, errsz, "subscribe: %s", rd_kafka_err2str(err));
        goto fail;
    }
    rd_kafka_topic_partition_list_destroy(sub);
    free(topics);
    return c;
fail:
    if (sub)
        rd_kafka_topic_partition_list_destroy(sub);
    free(topics);
    if (kc)
        rd_kafka_conf_destroy(kc);
    if (c && c->rk)
        rd_kafka_destroy(c->rk);
    free(c);
    return NULL;
}

rd_kafka_message_t *consumer_poll(struct consumer *c, int timeout_ms)
{
    rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, timeout_ms);
    c->idle = m == NULL;
    if (!m)
        return NULL;
    const char *topic = m->rkt ? rd_kafka_topic_name(m->rkt) : "";
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        struct apart *p = parts_find(c, topic, m->partition);
        if (p && !p->eof) {
            p->eof = 1;
            log_debug("%s [%d]: at end (offset %" PRId64 ")", topic, (int)m->partition, m->offset);
        }
        rd_kafka_message_destroy(m);
        return NULL;
    }
    if (m->err) {
        if (m->err != c->last_err)
            log_warn("kafka: %s%s%s", m->rkt ? topic : "", m->rkt ? ": " : "",
                     rd_kafka_message_errstr(m));
        c->last_err = m->err;
        rd_kafka_message_destroy(m);
        return NULL;
    }
    c->last_err = 0;
    struct apart *p = parts_find(c, topic, m->partition);
    if (p)
        p->eof = 0;
    return m;
}

int consumer_idle(const struct consumer *c)
{
    return c->idle;
}

int consumer_all_eof(const struct consumer *c)
{
    if (!c->nparts)
        return 0;
    for (size_t i = 0; i < c->nparts; i++)
        if (!c->parts[i].eof)
            return 0;
    return 1;
}

size_t consumer_assigned(const struct consumer *c)
{
    return c->nparts;
}

void consumer_pause(struct consumer *c, int pause)
{
    rd_kafka_topic_partition_list_t *l = NULL;
    if (rd_kafka_assignment(c->rk, &l) || !l)
        return;
    if (pause)
        rd_kafka_pause_partitions(c->rk, l);
    else
        rd_kafka_resume_partitions(c->rk, l);
    rd_kafka_topic_partition_list_destroy(l);
}

void consumer_commit(struct consumer *c, rd_kafka_message_t *const *msgs, size_t n)
{
    if (!c->pending)
        c->pending = rd_kafka_topic_partition_list_new(8);
    rd_kafka_topic_partition_list_t *l = c->pending;
    for (size_t i = 0; i < n; i++) {
        const char *t = rd_kafka_topic_name(msgs[i]->rkt);
        rd_kafka_topic_partition_t *p =
            rd_kafka_topic_partition_list_find(l, t, msgs[i]->partition);
        if (!p)
            p = rd_kafka_topic_partition_list_add(l, t, msgs[i]->partition);
        if (msgs[i]->offset + 1 > p->offset)
            p->offset = msgs[i]->offset + 1;
    }
    /* At most once a second: the offsets Kafka holds are for lag
     * monitoring only, and an asynchronous commit per batch (hundreds a
     * second at a low rate) made librdkafka's memory grow by ~0.4 MB/s. */
    if (clock_mono_ms() - c->last_commit_ms >= 1000)
        commit_pending(c);
}

int64_t consumer_lag(struct consumer *c)
{
    rd_kafka_topic_partition_list_t *l = NULL;
    int64_t lag = 0;
    if (rd_kafka_assignment(c->rk, &l) || !l)
        return -1;
    if (l->cnt == 0 || rd_kafka_position(c->rk, l)) {
        /* Nothing assigned: no lag. Positions unknown: cannot say. */
        lag = l->cnt == 0 ? 0 : -1;
        rd_kafka_topic_partition_list_destroy(l);
        return lag;
    }
    for (int i = 0; i < l->cnt; i++) {
        int64_t lo, hi;
        if (rd_kafka_get_watermark_offsets(c->rk, l->elems[i].topic, l->elems[i].partition, &lo,
                                           &hi) ||
            hi < 0 || l->elems[i].offset < 0)
            continue;
        if (hi > l->elems[i].offset)
            lag += hi - l->elems[i].offset;
    }
    rd_kafka_topic_partition_list_destroy(l);
    return lag;
}

void consumer_destroy(struct consumer *c)
{
    if (!c)
        return;
    commit_pending(c);
    rd_kafka_consumer_close(c->rk);
    rd_kafka_destroy(c->rk);
    for (size_t i = 0; i < c->nparts; i++)
        free(c->parts[i].topic);
    free(c->parts);
    free(c);
}
