/*
 * producer: a thin librdkafka producer configured for no loss: idempotence
 * on, acks=all, message.timeout.ms=0 (retries without end while the process
 * runs), lz4, linger 5 ms, murmur2_random partitioner (Java-compatible).
 * Every property can be overridden with -X (kconf_apply, user last).
 *
 * It sends, counts nothing itself and never blocks on a full queue: a full
 * queue is reported (PRODUCER_FULL) so that the caller can pause its source
 * and retry. Delivery reports reach the caller's callback from
 * producer_poll/producer_flush, with the opaque given to producer_send.
 * Topic creation (Admin API) and partition counts (metadata) block for at
 * most the given timeout; call them at start or on rare events (a reset),
 * not in the hot loop.
 */
#ifndef MBTA_PRODUCER_H
#define MBTA_PRODUCER_H

#include <stddef.h>
#include <stdint.h>

#include "util/opt.h"

struct producer;

struct producer_conf {
    const char *brokers;         /* bootstrap.servers; required */
    const struct strlist *props; /* -X key=value, applied after our defaults */
    int partitions;              /* for topics we create (default 3 when 0) */
    int replication_factor;      /* for topics we create (default 1 when 0) */
};

/* A delivery report: err 0 on success, else librdkafka's error code and a
 * one-line reason. msg_opaque is what producer_send was given. */
typedef void(producer_dr_cb)(void *opaque, void *msg_opaque, int err, const char *reason);

/* Returns the producer, or NULL with errstr (bad -X, bad brokers). */
struct producer *producer_new(const struct producer_conf *conf, producer_dr_cb *dr, void *opaque,
                              char *errstr, size_t errsz);
/* Destroys without flushing: what is still queued is purged (reported as
 * failed to the dr callback first). NULL is a no-op. */
void producer_destroy(struct producer *p);

/*
 * Creates the topic when missing (Admin API, the conf's partitions and
 * replication factor; "already exists" is fine) and returns its partition
 * count from metadata, or -1 with errstr. Blocks at most about timeout_ms.
 */
int producer_topic_ensure(struct producer *p, const char *topic, int timeout_ms, char *errstr,
                          size_t errsz);

/*
 * The topic's partition count as the brokers tell it now (one metadata
 * request, no retry: blocks at most about timeout_ms), or -1 with errstr.
 * Partitions can be added while we run (kafka-topics --alter); the answer
 * also refreshes librdkafka's own view, which places keyed messages.
 */
int producer_topic_partitions(struct producer *p, const char *topic, int timeout_ms, char *errstr,
                              size_t errsz);

struct producer_hdr {
    const char *name; /* name_len bytes (NUL not needed) */
    size_t name_len;
    const char *value; /* value_len bytes (NUL not needed) */
    size_t value_len;
};

enum { PRODUCER_OK = 0, PRODUCER_FULL = 1, PRODUCER_ERR = -1 };

/*
 * Enqueues one message (key, value and headers are copied). partition -1
 * means by key. val NULL means a tombstone (null value). Returns PRODUCER_OK,
 * PRODUCER_FULL (librdkafka's queue is full: nothing was enqueued; retry
 * after producer_poll), or PRODUCER_ERR with errstr (e.g. message too large,
 * unknown partition, a fatal producer error): nothing was enqueued.
 * timestamp_ms is the record's timestamp (CreateTime), 0 for librdkafka's
 * clock at the call.
 */
int producer_send(struct producer *p, const char *topic, int32_t partition, const void *key,
                  size_t klen, const void *val, size_t vlen, const struct producer_hdr *hdrs,
                  size_t nhdrs, int64_t timestamp_ms, void *msg_opaque, char *errstr, size_t errsz);

/* Serves delivery reports and errors for at most timeout_ms. */
void producer_poll(struct producer *p, int timeout_ms);

/* Waits up to timeout_ms for everything queued to be delivered. Returns the
 * number of messages (and requests) still outstanding. */
int producer_flush(struct producer *p, int timeout_ms);

/* Messages and requests queued or in flight. */
int producer_outq_len(struct producer *p);

/* 1 when librdkafka raised a fatal error (e.g. idempotence broken): the
 * producer cannot go on; the reason in errstr. 0 otherwise. */
int producer_fatal(struct producer *p, char *errstr, size_t errsz);

#endif
