/*
 * publisher: the SSE events of a few streams in, Kafka messages out as
 * docs/CONTRACT.md says, with a per-stream backlog when the producer's
 * queue is full.
 *
 * Two layers:
 *  - the plan (pure: no producer call, no clock, no global): one SSE event
 *    classified (reset, add, update, remove, bad, ignored) and turned into
 *    its messages one at a time by index: kind, key, value span, headers.
 *    A reset is one message per item, sliced out of the array exactly as
 *    received (jscan), then one end-of-reset marker per partition; a bad
 *    event or reset item is one dead letter with a reason. Messages are
 *    built by index so that a half-sent event can go on later exactly
 *    where it stopped, without a list of messages in memory.
 *  - the publisher (I/O): owns the librdkafka producer, sends the plans'
 *    messages, counts, logs bad events once with context, and on a full
 *    queue keeps the event in the stream's backlog and pauses the stream's
 *    SSE source (borrowed) until delivery reports have drained the backlog.
 *    Nothing is dropped and nothing blocks on the queue. Each reset reads
 *    the topic's partition count again (a metadata request, at most
 *    PUBLISHER_REFRESH_MS), so that partitions added while we run get
 *    their markers too.
 *
 * It does not parse SSE, open connections, parse options or print stats
 * lines: the entry point (src/cmd/cmd_produce.c) does, from the counters.
 * Not thread-safe: one thread drives the publisher, the SSE client and
 * the delivery reports (publisher_poll).
 */
#ifndef MBTA_PUBLISHER_H
#define MBTA_PUBLISHER_H

#include <stddef.h>
#include <stdint.h>

#include "json/jscan.h"
#include "kafka/producer.h"

struct sse_stream;

/* ---- the plan (pure) ---- */

#define PUBLISHER_KEY_MAX 1024 /* "type:id" longer than this is a bad event */
#define PUBLISHER_DEPTH   64   /* nesting cap of the resources' JSON */

enum publisher_kind {
    PUBLISHER_RESET,
    PUBLISHER_ADD,
    PUBLISHER_UPDATE,
    PUBLISHER_REMOVE,
    PUBLISHER_BAD,    /* the whole event is one dead letter */
    PUBLISHER_IGNORED /* an event name that is not ours: nothing to send */
};

/* "reset", "add", "update", "remove", "bad", "ignored". */
const char *publisher_kind_name(enum publisher_kind k);
/* The kind an SSE event name stands for: RESET..REMOVE, else IGNORED. */
enum publisher_kind publisher_kind_parse(const char *name, size_t len);

/* One SSE event as publisher_plan_init classified it. Borrows data, items
 * and stream; the rest is inline (a plan can be copied with its data). */
struct publisher_plan {
    enum publisher_kind kind;
    const char *stream; /* the stream name: key of dead letters, header */
    size_t stream_len;
    const char *data; /* the event's data; borrowed */
    size_t len;
    const struct jscan_span *items; /* reset: the items' spans in data */
    size_t nitems;
    const char *evname;          /* BAD: the event header (the SSE event name) */
    char reason[256];            /* BAD: why, one line */
    char key[PUBLISHER_KEY_MAX]; /* ADD, UPDATE, REMOVE: "type:id" */
    size_t klen;
    int64_t generation;                   /* the generation the event's messages carry */
    int64_t received_ns;                  /* wall clock: header and record timestamp */
    char gen_s[24], rat_s[24], seq_s[24]; /* the headers, NUL-terminated */
    size_t gen_l, rat_l, seq_l;
};

/*
 * Classifies the event named `kind` (publisher_kind_parse) with data
 * [data, data+len), received at received_ns (wall clock, ns), number seq
 * of its stream, into p. *generation is the stream's generation in force:
 * a valid reset advances it to max(received_ns, *generation + 1) (strictly
 * increasing even when the clock is not); anything else leaves it.
 * A reset's item spans go to *scratch (grown with realloc, caller frees;
 * *scratch may start NULL with *cap 0, but scratch and cap must not be NULL
 * for a reset; the plan borrows *scratch until the next call with it).
 * Returns p->kind: kind itself, PUBLISHER_BAD (with p->reason: malformed
 * JSON, not an array/object, missing or non-string "type"/"id", key too
 * long) or PUBLISHER_IGNORED. A reset's items are checked one by one when
 * their message is built (a bad item does not spoil the others).
 */
enum publisher_kind publisher_plan_init(struct publisher_plan *p, enum publisher_kind kind,
                                        const char *stream, const char *data, size_t len,
                                        int64_t received_ns, uint64_t seq, int64_t *generation,
                                        struct jscan_span **scratch, size_t *cap);
/* A dead-letter plan for an event the SSE parser skipped whole (oversized):
 * event header "-", empty value. reason is copied. */
void publisher_plan_skipped(struct publisher_plan *p, const char *stream, const char *reason,
                            int64_t received_ns, uint64_t seq, int64_t generation);

/* How many messages the plan makes when the topic has `partitions`. */
size_t publisher_plan_count(const struct publisher_plan *p, int partitions);

/* One message. Borrows from the plan it came from and from itself (do not
 * copy it): key, value and header values stay valid while both live. */
struct publisher_msg {
    int dead;          /* 1: a dead letter (to the dead-letter topic, key = stream) */
    int item;          /* 1: a reset item sent as a record (counts in the markers) */
    int32_t partition; /* -1: by key; a marker names its partition */
    const char *key;
    size_t klen;
    const char *val; /* NULL: a tombstone; a dead letter's is never NULL */
    size_t vlen;
    struct producer_hdr hdrs[6];
    size_t nhdrs;
    char keybuf[PUBLISHER_KEY_MAX], valbuf[320], reason[320];
};

/*
 * Message i (0 <= i < publisher_plan_count) of the plan into m. `items_ok`
 * is the number of reset items that went out as records before i: the
 * count in the markers. Returns 0, or -1 when i is past the last message.
 */
int publisher_plan_msg(const struct publisher_plan *p, int partitions, size_t i, size_t items_ok,
                       struct publisher_msg *m);

/* ---- the publisher (I/O) ---- */

/* How long a reset waits for the topic's partition count (then keeps the
 * count it had): the loop is blocked meanwhile. */
#define PUBLISHER_REFRESH_MS 2000

struct publisher;
struct publisher_stream;

struct publisher_conf {
    const struct producer_conf *producer; /* brokers, -X, created topics' shape */
    const char *dead_letter_topic;        /* NULL or "": bad events only logged */
    uint64_t max_events;                  /* take at most this many events (0: all) */
};

/* Creates the producer (the publisher owns it). Returns the publisher, or
 * NULL with errstr (bad -X, bad brokers). */
struct publisher *publisher_new(const struct publisher_conf *conf, char *errstr, size_t errsz);
/* Purges what is still queued (not counted again: see
 * publisher_undelivered before) and frees everything, streams included.
 * The SSE sources are borrowed: not touched. NULL is a no-op. */
void publisher_destroy(struct publisher *pub);

/*
 * Adds a stream: name (the `stream` header) into topic, which is created
 * when missing and whose partition count is read (blocks at most
 * timeout_ms); every reset reads the count again. Both strings are
 * copied. Returns the stream (owned by pub), or NULL with errstr.
 */
struct publisher_stream *publisher_stream_add(struct publisher *pub, const char *name,
                                              const char *topic, int timeout_ms, char *errstr,
                                              size_t errsz);
/* Creates the dead-letter topic when there is one. Returns 0, or -1 with
 * errstr. */
int publisher_dead_letter_ensure(struct publisher *pub, int timeout_ms, char *errstr, size_t errsz);
/* The topic's partition count as of the last reset (or the start). */
int publisher_stream_partitions(const struct publisher_stream *ps);
const char *publisher_stream_name(const struct publisher_stream *ps);

/* The SSE source to pause on a full queue and resume once the backlog is
 * drained (borrowed); NULL detaches it (e.g. once it stopped for good). */
void publisher_stream_source(struct publisher_stream *ps, struct sse_stream *src);

/* One SSE event of the stream (pointers borrowed until return; what must
 * wait is copied). Events past conf->max_events are not taken. */
void publisher_stream_event(struct publisher_stream *ps, const char *type, size_t type_len,
                            const char *data, size_t len, int64_t received_ns);
/* An event the SSE parser skipped whole (oversized): a dead letter. */
void publisher_stream_skipped(struct publisher_stream *ps, const char *reason, int64_t received_ns);

/* Serves delivery reports for at most timeout_ms (they free the queue). */
void publisher_poll(struct publisher *pub, int timeout_ms);
/* Retries the backlogs in order, resuming the sources whose backlog
 * emptied when `resume` (not while draining at exit). Returns 1 while some
 * backlog still waits. */
int publisher_pump(struct publisher *pub, int resume);
/* 1 while some stream has a backlog. */
int publisher_backlog(const struct publisher *pub);
/* Messages queued in librdkafka or in flight. */
int publisher_queue_len(const struct publisher *pub);
/* 1 when the producer hit a fatal error (reason in errstr). */
int publisher_fatal(struct publisher *pub, char *errstr, size_t errsz);

struct publisher_stream_stats {
    uint64_t in;        /* events taken (bad ones included) */
    uint64_t produced;  /* messages enqueued */
    uint64_t delivered; /* delivery reports without error */
    uint64_t failed;    /* not delivered: refused, failed reports, lost */
    uint64_t bad;       /* bad events and reset items */
    uint64_t pauses;    /* times the source was paused for a full queue */
    uint64_t bytes;     /* value bytes enqueued */
    size_t backlog;     /* events waiting */
};
void publisher_stream_stats(const struct publisher_stream *ps, struct publisher_stream_stats *out);

struct publisher_totals {
    uint64_t events;    /* events taken, all streams */
    uint64_t delivered; /* messages delivered, all streams */
    uint64_t bytes;
    int64_t first_ns, last_dr_ns; /* CLOCK_MONOTONIC: first event, last delivery seen (0: none) */
};
void publisher_totals(const struct publisher *pub, struct publisher_totals *out);

/* Messages that will not be delivered if we stop now: in flight, failed
 * and still in the backlogs. */
uint64_t publisher_undelivered(const struct publisher *pub);

#endif
