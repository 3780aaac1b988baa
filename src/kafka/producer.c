/* producer: see producer.h. */
#include "kafka/producer.h"

#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka/kconf.h"
#include "util/clock.h"
#include "util/log.h"

struct ptopic {
    char *name;
    rd_kafka_topic_t *rkt;
};

struct producer {
    rd_kafka_t *rk;
    producer_dr_cb *dr;
    void *opaque;
    int partitions, rf;
    struct ptopic *topics; /* a handful: one per stream plus dead letters */
    size_t ntopics;
};

static void producer_dr_msg(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    struct producer *p = opaque;
    (void)rk;
    if (p->dr)
        p->dr(p->opaque, m->_private, m->err, m->err ? rd_kafka_err2str(m->err) : "");
}

static void producer_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)opaque;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char why[512];
        rd_kafka_fatal_error(rk, why, sizeof(why));
        log_error("kafka: fatal: %s", why);
        return;
    }
    /* Broker down, transport errors: librdkafka retries by itself. */
    log_warn("kafka: %s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

static void producer_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    /* syslog levels: 0-3 errors, 4 warning, 5-6 info, 7 debug */
    int l = level <= 3 ? LOG_ERROR : level == 4 ? LOG_WARN : level <= 6 ? LOG_INFO : LOG_DEBUG;
    if (log_level_current >= l)
        log_write(l, "kafka: %s: %s", fac, buf);
}

struct producer *producer_new(const struct producer_conf *conf, producer_dr_cb *dr, void *opaque,
                              char *errstr, size_t errsz)
{
    static const char *const defaults[] = {"enable.idempotence",
                                           "true",
                                           "acks",
                                           "all",
                                           "message.timeout.ms",
                                           "0",
                                           "compression.codec",
                                           "lz4",
                                           "linger.ms",
                                           "5",
                                           "partitioner",
                                           "murmur2_random",
                                           "client.id",
                                           "mbta-stream",
                                           NULL};
    struct producer *p = NULL;
    rd_kafka_conf_t *kc = rd_kafka_conf_new();
    char why[512];

    if (!conf->brokers || !*conf->brokers) {
        snprintf(errstr, errsz, "no brokers (-b HOST:PORT)");
        goto out;
    }
    if (rd_kafka_conf_set(kc, "bootstrap.servers", conf->brokers, why, sizeof(why)) !=
        RD_KAFKA_CONF_OK) {
        snprintf(errstr, errsz, "brokers: %s", why);
        goto out;
    }
    if (kconf_apply(kc, defaults, conf->props, errstr, errsz) < 0)
        goto out;
    p = calloc(1, sizeof(*p));
    if (!p) {
        snprintf(errstr, errsz, "out of memory");
        goto out;
    }
    p->dr = dr;
    p->opaque = opaque;
    p->partitions = conf->partitions > 0 ? conf->partitions : 3;
    p->rf = conf->replication_factor > 0 ? conf->replication_factor : 1;
    rd_kafka_conf_set_opaque(kc, p);
    rd_kafka_conf_set_dr_msg_cb(kc, producer_dr_msg);
    rd_kafka_conf_set_error_cb(kc, producer_error);
    rd_kafka_conf_set_log_cb(kc, producer_log);
    p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, why, sizeof(why));
    if (!p->rk) {
        snprintf(errstr, errsz, "kafka: %s", why);
        free(p);
        p = NULL;
        goto out;
    }
    kc = NULL; /* rd_kafka_new took it */
out:
    if (kc)
        rd_kafka_conf_destroy(kc);
    return p;
}

void producer_destroy(struct producer *p)
{
    if (!p)
        return;
    if (p->rk) {
        rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_poll(p->rk, 0); /* the purged messages' reports */
    }
    for (size_t i = 0; i < p->ntopics; i++) {
        rd_kafka_topic_destroy(p->topics[i].rkt);
        free(p->topics[i].name);
    }
    free(p->topics);
    if (p->rk)
        rd_kafka_destroy(p->rk);
    free(p);
}

static rd_kafka_topic_t *producer_rkt(struct producer *p, const char *topic)
{
    for (size_t i = 0; i < p->ntopics; i++)
        if (!strcmp(p->topics[i].name, topic))
            return p->topics[i].rkt;
    struct ptopic *v = realloc(p->topics, (p->ntopics + 1) * sizeof(*v));
    if (!v)
        return NULL;
    p->topics = v;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(p->rk, topic, NULL);
    if (!rkt)
        return NULL;
    v[p->ntopics].name = strdup(topic);
    v[p->ntopics].rkt = rkt;
    p->ntopics++;
    return rkt;
}

/* CreateTopics; 0 when created or already there, else -1 with errstr. */
static int producer_create(struct producer *p, const char *topic, int timeout_ms, char *errstr,
                           size_t errsz)
{
    int rc = -1;
    char why[512];
    rd_kafka_NewTopic_t *nt = NULL;
    rd_kafka_AdminOptions_t *ao = NULL;
    rd_kafka_queue_t *q = NULL;
    rd_kafka_event_t *ev = NULL;

    nt = rd_kafka_NewTopic_new(topic, p->partitions, p->rf, why, sizeof(why));
    if (!nt) {
        snprintf(errstr, errsz, "%s: %s", topic, why);
        goto out;
    }
    ao = rd_kafka_AdminOptions_new(p->rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_request_timeout(ao, timeout_ms, why, sizeof(why));
    rd_kafka_AdminOptions_set_operation_timeout(ao, timeout_ms, why, sizeof(why));
    q = rd_kafka_queue_new(p->rk);
    rd_kafka_CreateTopics(p->rk, &nt, 1, ao, q);
    ev = rd_kafka_queue_poll(q, timeout_ms + 2000);
    if (!ev) {
        snprintf(errstr, errsz, "%s: create: no answer in %d ms", topic, timeout_ms);
        goto out;
    }
    if (rd_kafka_event_error(ev)) {
        snprintf(errstr, errsz, "%s: create: %s", topic, rd_kafka_event_error_string(ev));
        goto out;
    }
    const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
    size_t n = 0;
    const rd_kafka_topic_result_t **tr = rd_kafka_CreateTopics_result_topics(res, &n);
    for (size_t i = 0; i < n; i++) {
        rd_kafka_resp_err_t e = rd_kafka_topic_result_error(tr[i]);
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
            log_info("%s: topic created (%d partitions, replication factor %d)", topic,
                     p->partitions, p->rf);
        } else if (e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
            const char *s = rd_kafka_topic_result_error_string(tr[i]);
            snprintf(errstr, errsz, "%s: create: %s", topic, s ? s : rd_kafka_err2str(e));
            goto out;
        }
    }
    rc = 0;
out:
    if (ev)
        rd_kafka_event_destroy(ev);
    if (q)
        rd_kafka_queue_destroy(q);
    if (ao)
        rd_kafka_AdminOptions_destroy(ao);
    if (nt)
        rd_kafka_NewTopic_destroy(nt);
    return rc;
}

/* One metadata request for the topic: its partition count (> 0), 0 when
 * the answer lists no partitions (yet), or -1 with *e set. librdkafka
 * applies the answer to its own metadata cache too, which is what its
 * partitioner uses for keyed messages (partition -1). */
static int producer_metadata_partitions(struct producer *p, rd_kafka_topic_t *rkt, int timeout_ms,
                                        rd_kafka_resp_err_t *e)
{
    const struct rd_kafka_metadata *md = NULL;
    int parts = -1;
    *e = rd_kafka_metadata(p->rk, 0, rkt, &md, timeout_ms);
    if (!*e && md->topic_cnt == 1 && !md->topics[0].err)
        parts = md->topics[0].partition_cnt;
    else if (!*e && md->topic_cnt == 1)
        *e = md->topics[0].err;
    if (md)
        rd_kafka_metadata_destroy(md);
    return parts;
}

int producer_topic_ensure(struct producer *p, const char *topic, int timeout_ms, char *errstr,
                          size_t errsz)
{
    int64_t deadline = clock_mono_ms() + timeout_ms;
    if (producer_create(p, topic, timeout_ms, errstr, errsz) < 0)
        return -1;
    rd_kafka_topic_t *rkt = producer_rkt(p, topic);
    if (!rkt) {
        snprintf(errstr, errsz, "%s: cannot make a topic handle", topic);
        return -1;
    }
    /* Just after creation the metadata may not list the partitions yet. */
    for (;;) {
        rd_kafka_resp_err_t e;
        int64_t left = deadline - clock_mono_ms();
        int parts = producer_metadata_partitions(p, rkt, (int)(left > 1000 ? left : 1000), &e);
        if (parts > 0)
            return parts;
        if (clock_mono_ms() >= deadline) {
            snprintf(errstr, errsz, "%s: metadata: %s", topic,
                     e ? rd_kafka_err2str(e) : "no partitions");
            return -1;
        }
        rd_kafka_poll(p->rk, 200);
    }
}

int producer_topic_partitions(struct producer *p, const char *topic, int timeout_ms, char *errstr,
                              size_t errsz)
{
    rd_kafka_topic_t *rkt = producer_rkt(p, topic);
    if (!rkt) {
        snprintf(errstr, errsz, "%s: cannot make a topic handle", topic);
        return -1;
    }
    /* One try, no retry loop: the caller keeps the count it had. */
    rd_kafka_resp_err_t e;
    int parts = producer_metadata_partitions(p, rkt, timeout_ms, &e);
    if (parts > 0)
        return parts;
    snprintf(errstr, errsz, "%s: metadata: %s", topic, e ? rd_kafka_err2str(e) : "no partitions");
    return -1;
}

int producer_send(struct producer *p, const char *topic, int32_t partition, const void *key,
                  size_t klen, const void *val, size_t vlen, const struct producer_hdr *hdrs,
                  size_t nhdrs, int64_t timestamp_ms, void *msg_opaque, char *errstr, size_t errsz)
{
    rd_kafka_topic_t *rkt = producer_rkt(p, topic);
    if (!rkt) {
        snprintf(errstr, errsz, "%s: cannot make a topic handle", topic);
        return PRODUCER_ERR;
    }
    rd_kafka_headers_t *h = rd_kafka_headers_new(nhdrs);
    for (size_t i = 0; i < nhdrs; i++)
        rd_kafka_header_add(h, hdrs[i].name, (ssize_t)hdrs[i].name_len, hdrs[i].value,
                            (ssize_t)hdrs[i].value_len);
    rd_kafka_resp_err_t e = rd_kafka_producev(
        p->rk, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_PARTITION(partition),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY((void *)(uintptr_t)key, klen),
        RD_KAFKA_V_VALUE((void *)(uintptr_t)val, val ? vlen : 0), RD_KAFKA_V_HEADERS(h),
        RD_KAFKA_V_TIMESTAMP(timestamp_ms), RD_KAFKA_V_OPAQUE(msg_opaque), RD_KAFKA_V_END);
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
        return PRODUCER_OK; /* librdkafka owns the headers now */
    rd_kafka_headers_destroy(h);
    if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL)
        return PRODUCER_FULL;
    snprintf(errstr, errsz, "%s [%d]: %s", topic, (int)partition, rd_kafka_err2str(e));
    return PRODUCER_ERR;
}

void producer_poll(struct producer *p, int timeout_ms)
{
    rd_kafka_poll(p->rk, timeout_ms);
}

int producer_flush(struct producer *p, int timeout_ms)
{
    rd_kafka_flush(p->rk, timeout_ms);
    return rd_kafka_outq_len(p->rk);
}

int producer_outq_len(struct producer *p)
{
    return rd_kafka_outq_len(p->rk);
}

int producer_fatal(struct producer *p, char *errstr, size_t errsz)
{
    return rd_kafka_fatal_error(p->rk, errstr, errsz) != RD_KAFKA_RESP_ERR_NO_ERROR;
}
