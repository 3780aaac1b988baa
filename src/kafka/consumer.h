/*
 * consumer: a librdkafka high-level consumer (group member) whose positions
 * come from the caller, not from Kafka.
 *
 * enable.auto.commit and enable.auto.offset.store are off. On assignment the
 * rebalance callback asks `offsets_fn` for the stored next offset of every
 * new partition (PostgreSQL, in our case) and assigns at it (the beginning
 * when nothing is stored). On revocation it calls `revoke_fn` first, so the
 * caller can commit or drop the in-flight batch of those partitions before
 * another member takes them. Both protocols (eager and cooperative) work.
 * consumer_commit() sends the next offsets to Kafka asynchronously, at most
 * once a second, for lag monitoring only.
 *
 * Does not: store anything, retry the caller's work, or sleep beyond the
 * poll timeout. Not thread-safe: one thread polls.
 */
#ifndef MBTA_CONSUMER_H
#define MBTA_CONSUMER_H

#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "util/opt.h"

struct consumer;

/* Fills offsets[i] with the next offset to read of topic/partitions[i], or
 * -1 for "from the beginning". Returns 0, or -1 to have it asked again. */
typedef int (*consumer_offsets_fn)(void *opaque, const char *topic, const int32_t *partitions,
                                   size_t n, int64_t *offsets);
/* The partitions are about to be taken away. */
typedef void (*consumer_revoke_fn)(void *opaque, const rd_kafka_topic_partition_list_t *parts);

struct consumer_conf {
    const char *brokers;
    const char *group;
    const char *topics;       /* "^regex" or "a,b,c" */
    const struct strlist *kv; /* -X key=value, applied last */
    consumer_offsets_fn offsets_fn;
    consumer_revoke_fn revoke_fn;
    void *opaque;
};

/* Returns a subscribed consumer or NULL with errstr (a configuration error). */
struct consumer *consumer_new(const struct consumer_conf *conf, char *errstr, size_t errsz);

/*
 * Waits up to timeout_ms for one message. Returns a message (caller frees
 * with rd_kafka_message_destroy) or NULL (timeout, partition end, or an error
 * already logged). Serves the rebalance callbacks.
 */
rd_kafka_message_t *consumer_poll(struct consumer *c, int timeout_ms);

/* Whether the last consumer_poll() returned NULL because nothing was ready
 * (its timeout ran out), rather than for a partition-end or error event:
 * the caller's cue that a batch holds everything fetched so far. */
int consumer_idle(const struct consumer *c);

/* Whether at least one partition is assigned and every assigned one has
 * reached its end since the last message read from it. */
int consumer_all_eof(const struct consumer *c);

/* Number of partitions assigned now. */
size_t consumer_assigned(const struct consumer *c);

/* Pauses or resumes every assigned partition (while the sink is down). */
void consumer_pause(struct consumer *c, int pause);

/* Commits "offset + 1" of each message's partition to Kafka, asynchronously
 * and at most once a second (the rest is sent at the next call, before a
 * revocation, or by consumer_destroy). */
void consumer_commit(struct consumer *c, rd_kafka_message_t *const *msgs, size_t n);

/* Sum over assigned partitions of (high watermark - position), -1 if unknown. */
int64_t consumer_lag(struct consumer *c);

/* Leaves the group (revoke_fn runs) and frees; NULL is a no-op. */
void consumer_destroy(struct consumer *c);

#endif
