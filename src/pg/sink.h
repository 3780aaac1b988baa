/*
 * sink: writes batches of Kafka messages into the PostgreSQL schema of
 * sql/001_schema.sql, exactly once.
 *
 * One transaction per batch: lock the batch's rows of `offsets`, skip any
 * message below the stored next offset (already loaded: this is what makes a
 * rebalance race or a retried commit harmless), COPY one history row per
 * resource event, COPY the dead letters, upsert the current tables from
 * the history rows just copied (one statement per type and segment; within
 * a segment only the last event of an entity counts, a last remove
 * deletes), run the reset-end sweeps in their place in the stream (the
 * batch is cut into segments at each marker, so that a sweep never sees
 * rows that came after it), and store each partition's next offset (last
 * offset + 1).
 * Round trips: three plus two per COPY. The statements that need no
 * answer before the next are sent together in libpq's pipeline mode (BEGIN
 * + offsets lock + previous state; upserts + sweeps + offsets + COMMIT);
 * COPY runs between the two pipelines.
 *
 * Enrichment (mbta/enrich.h) reads the previous state of each vehicle and
 * prediction from its committed current row (one query per type per batch)
 * and follows the batch's own upserts, removes and sweeps in order, so a
 * replay from offset 0 into an empty schema gives identical rows.
 *
 * Does not: talk to Kafka, sleep or retry. The caller retries a batch that
 * returned SINK_RETRY with the same messages (they are kept until commit).
 * A batch that PostgreSQL refuses for its data (SQLSTATE class 22/23: a
 * value our validation let through) is split in halves until the one bad
 * message is found; that one becomes a dead letter with the server's reason.
 * Not thread-safe: one sink per thread.
 */
#ifndef MBTA_PG_SINK_H
#define MBTA_PG_SINK_H

#include <stddef.h>
#include <stdint.h>

struct pg_sink;

enum { SINK_MAX_HEADERS = 16 };

struct sink_hdr {
    const char *name;
    const char *value; /* NULL for a null header value */
    size_t len;
};

/* One Kafka message, borrowed for the duration of the call. */
struct sink_msg {
    const char *topic;
    int32_t partition;
    int64_t offset;
    int64_t timestamp_ms; /* Kafka's, -1 when none: received_at fallback */
    const char *key;      /* NULL: no key */
    size_t keylen;
    const char *value; /* NULL: a tombstone */
    size_t len;
    struct sink_hdr hdrs[SINK_MAX_HEADERS];
    size_t nhdrs;
};

struct pg_sink_stats {
    uint64_t messages;     /* messages committed (skipped duplicates excluded) */
    uint64_t history_rows; /* history rows appended */
    uint64_t current_rows; /* current rows upserted or deleted */
    uint64_t swept;        /* current rows deleted by reset-end sweeps */
    uint64_t dead_letters;
    uint64_t skipped; /* messages below the stored offset (already loaded) */
    uint64_t batches;
};

enum { SINK_OK = 0, SINK_RETRY = 1, SINK_FATAL = -1 };

/*
 * A sink for `schema` (already migrated) in the database of `conninfo`
 * (conninfo or URL; "" for libpq's PG* variables). Connects lazily, at the
 * first call that needs it, and again after a lost connection.
 * `dead_letter_topic` (may be NULL): messages read from it are dead letters.
 * Returns NULL only when out of memory.
 */
struct pg_sink *pg_sink_new(const char *conninfo, const char *schema,
                            const char *dead_letter_topic);
void pg_sink_destroy(struct pg_sink *s);

/*
 * Reads the stored next offsets of `topic` for partitions[0..n) into
 * offsets[] (-1 where nothing is stored). Returns SINK_OK, SINK_RETRY
 * (connection trouble) or SINK_FATAL, with errstr.
 */
int pg_sink_offsets(struct pg_sink *s, const char *topic, const int32_t *partitions, size_t n,
                    int64_t *offsets, char *errstr, size_t errsz);

/*
 * Writes msgs[0..n) (in Kafka order per partition) in one transaction, or
 * several when bisecting a data error. Returns SINK_OK (committed; stats
 * added), SINK_RETRY (nothing committed, try again later with the same
 * messages) or SINK_FATAL (a programming or schema error: nothing committed).
 */
int pg_sink_write(struct pg_sink *s, const struct sink_msg *msgs, size_t n,
                  struct pg_sink_stats *stats, char *errstr, size_t errsz);

/* Formats microseconds since the epoch as "YYYY-MM-DD HH:MM:SS.ffffff+00"
 * into buf (>= 40 bytes). */
void pg_sink_format_ts(int64_t us, char *buf);

#endif
