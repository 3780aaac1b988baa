/*
 * mbta-stream consume: Kafka topics into PostgreSQL, exactly once.
 *
 * Wires kafka/consumer (positions from PostgreSQL) to pg/sink (one
 * transaction per batch, offsets inside it). The batch's messages stay in
 * memory until their transaction commits; while PostgreSQL is unreachable
 * the partitions are paused and the batch is retried with jittered backoff.
 * On revocation the in-flight batch is committed if possible, otherwise the
 * revoked partitions' messages are dropped (the next owner reads them again
 * from the stored offsets). SIGINT/SIGTERM: commit the current batch if
 * PostgreSQL is up, leave the group, exit 0.
 */
#include <inttypes.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd/cmd.h"
#include "cmd/cmd_args.h"
#include "kafka/consumer.h"
#include "pg/migrate.h"
#include "pg/pgconn.h"
#include "pg/sink.h"
#include "util/clock.h"
#include "util/hist.h"
#include "util/log.h"
#include "util/opt.h"
#include "util/sig.h"

struct app {
    struct consumer *kc;
    struct pg_sink *sink;
    rd_kafka_message_t **batch;
    size_t n, cap;
    struct sink_msg *ms; /* the batch as the sink sees it, reused */
    int64_t *recv_us;    /* received-at header per message, 0 if none */
    size_t mcap;
    struct pg_sink_stats st;
    uint64_t rnd;
    /* received-at -> commit latency (µs) of every committed message: since
     * the last stats line, and since the start */
    struct hist lat_int, lat_all;
};

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static void batch_push(struct app *a, rd_kafka_message_t *m)
{
    if (a->n == a->cap) {
        size_t ncap = a->cap ? a->cap * 2 : 1024;
        rd_kafka_message_t **b = realloc(a->batch, ncap * sizeof(*b));
        if (!b)
            abort();
        a->batch = b;
        a->cap = ncap;
    }
    a->batch[a->n++] = m;
}

/* A received-at header's nanoseconds; 0 when it is not a plain decimal (the
 * sink makes such a message a dead letter). */
static int64_t parse_ns(const char *s, size_t n)
{
    int64_t v = 0;
    if (n == 0 || n > 19)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* One attempt to write the batch. SINK_OK empties it. */
static int batch_write(struct app *a)
{
    char err[1024];
    if (!a->n)
        return SINK_OK;
    /* Reused, but given back once batches are much smaller (after a
     * drain): 5,000 messages are 2.4 MB here. */
    if (a->n > a->mcap || (a->mcap > 256 && a->n < a->mcap / 4)) {
        size_t cap = a->n > 256 ? a->n : 256;
        free(a->ms);
        free(a->recv_us);
        a->ms = malloc(cap * sizeof(*a->ms));
        a->recv_us = malloc(cap * sizeof(*a->recv_us));
        if (!a->ms || !a->recv_us)
            abort();
        a->mcap = cap;
    }
    struct sink_msg *ms = a->ms;
    for (size_t i = 0; i < a->n; i++) {
        rd_kafka_message_t *m = a->batch[i];
        struct sink_msg *s = &ms[i];
        rd_kafka_headers_t *h = NULL;
        s->nhdrs = 0;
        a->recv_us[i] = 0;
        s->topic = rd_kafka_topic_name(m->rkt);
        s->partition = m->partition;
        s->offset = m->offset;
        s->timestamp_ms = rd_kafka_message_timestamp(m, NULL);
        s->key = m->key;
        s->keylen = m->key_len;
        s->value = m->payload;
        s->len = m->len;
        if (!rd_kafka_message_headers(m, &h) && h) {
            const char *name;
            const void *val;
            size_t size;
            for (size_t k = 0;
                 s->nhdrs < SINK_MAX_HEADERS && !rd_kafka_header_get_all(h, k, &name, &val, &size);
                 k++) {
                s->hdrs[s->nhdrs].name = name;
                s->hdrs[s->nhdrs].value = val;
                s->hdrs[s->nhdrs].len = size;
                s->nhdrs++;
                if (val && !strcmp(name, "received-at"))
                    a->recv_us[i] = parse_ns(val, size) / 1000;
            }
        }
    }
    int rc = pg_sink_write(a->sink, ms, a->n, &a->st, err, sizeof(err));
    if (rc == SINK_OK) {
        int64_t now_us = clock_realtime_ns() / 1000;
        for (size_t i = 0; i < a->n; i++)
            if (a->recv_us[i] > 0) {
                hist_add(&a->lat_int, now_us - a->recv_us[i]);
                hist_add(&a->lat_all, now_us - a->recv_us[i]);
            }
        consumer_commit(a->kc, a->batch, a->n);
        for (size_t i = 0; i < a->n; i++)
            rd_kafka_message_destroy(a->batch[i]);
        a->n = 0;
    } else {
        log_warn("batch of %zu messages not committed: %s", a->n, err);
    }
    return rc;
}

/* Writes the batch, retrying with backoff while polling (paused) so that
 * rebalances are served. Returns when written, dropped by a revocation, or
 * after `give_up_ms` (< 0: never) or a stop signal when stopping. */
static void batch_flush(struct app *a, int64_t give_up_ms)
{
    int64_t start = clock_mono_ms();
    int paused = 0;
    for (int attempt = 0; a->n; attempt++) {
        if (batch_write(a) == SINK_OK)
            break;
        if (give_up_ms >= 0 && clock_mono_ms() - start >= give_up_ms)
            break;
        if (!paused) {
            consumer_pause(a->kc, 1);
            paused = 1;
        }
        int64_t wait = clock_backoff_ms(attempt, 250, 10000, &a->rnd) + 50;
        int64_t until = clock_mono_ms() + wait;
        while (clock_mono_ms() < until) {
            /* Paused, but a message already fetched may still come: it
             * follows the batch in order, so it joins it. */
            rd_kafka_message_t *m = consumer_poll(a->kc, 100);
            if (m)
                batch_push(a, m);
            if (sig_stop && give_up_ms < 0)
                give_up_ms = 5000;
        }
    }
    if (paused)
        consumer_pause(a->kc, 0);
}

static int offsets_fn(void *opaque, const char *topic, const int32_t *partitions, size_t n,
                      int64_t *offsets)
{
    struct app *a = opaque;
    char err[512];
    int rc = pg_sink_offsets(a->sink, topic, partitions, n, offsets, err, sizeof(err));
    if (rc)
        log_warn("%s: reading stored offsets: %s", topic, err);
    return rc ? -1 : 0;
}

static void revoke_fn(void *opaque, const rd_kafka_topic_partition_list_t *parts)
{
    struct app *a = opaque;
    if (a->n && batch_write(a) != SINK_OK) {
        size_t k = 0, dropped = 0;
        for (size_t i = 0; i < a->n; i++) {
            rd_kafka_message_t *m = a->batch[i];
            if (rd_kafka_topic_partition_list_find(parts, rd_kafka_topic_name(m->rkt),
                                                   m->partition)) {
                rd_kafka_message_destroy(m);
                dropped++;
            } else {
                a->batch[k++] = m;
            }
        }
        a->n = k;
        if (dropped)
            log_warn("revoked before commit: %zu messages left to the next owner", dropped);
    }
}

/* The latency part: since the last stats line, or since the start in the
 * final one. */
static void stats(struct app *a, int final)
{
    char lat[128];
    hist_format_us(final ? &a->lat_all : &a->lat_int, lat, sizeof(lat));
    log_info("%sstats: messages %" PRIu64 ", history rows %" PRIu64 ", current rows %" PRIu64
             ", swept %" PRIu64 ", batches %" PRIu64 ", dead letters %" PRIu64 ", skipped %" PRIu64
             ", lag %" PRId64 ", latency %s",
             final ? "final " : "", a->st.messages, a->st.history_rows, a->st.current_rows,
             a->st.swept, a->st.batches, a->st.dead_letters, a->st.skipped, consumer_lag(a->kc),
             lat);
    hist_init(&a->lat_int);
}

int cmd_consume(int argc, char **argv)
{
    char *brokers = NULL, *pg = NULL, *topics = NULL, *group = NULL, *schema = NULL, *dlq = NULL,
         *loglevel = NULL;
    long batch_size = 0, batch_ms = 0, stats_interval = 0;
    int exit_at_eof = 0;
    struct strlist kv = {0};
    char err[1024];
    struct app a = {0};
    hist_init(&a.lat_int);
    hist_init(&a.lat_all);
    PGconn *conn = NULL;
    int rc = 2;
    const struct opt opts[] = {
        {"brokers", 'b', OPT_STR, "KAFKA_BROKERS", NULL, 0, 0, "HOST:PORT",
         "Kafka bootstrap servers", &brokers, 0},
        {"pg", 0, OPT_STR, "DATABASE_URL", NULL, 0, 0, "CONNINFO",
         "PostgreSQL conninfo or postgres:// URL (default: libpq's PG* variables)", &pg,
         OPT_F_SECRET},
        {"topics", 't', OPT_STR, NULL, "^mbta\\..*", 0, 0, "REGEX_OR_LIST",
         "topics: a regex when it starts with ^, else a comma-separated list", &topics, 0},
        {"group", 'G', OPT_STR, NULL, "mbta-stream", 0, 0, "ID", "Kafka consumer group", &group, 0},
        {"schema", 0, OPT_STR, "MBTA_SCHEMA", "mbta", 0, 0, "NAME", "PostgreSQL schema", &schema,
         0},
        {"dead-letter-topic", 0, OPT_STR, NULL, "mbta.dead-letters", 0, 0, "TOPIC",
         "messages of this topic are dead letters (their reason header kept)", &dlq, 0},
        /* 10,000: a drain of bench_consume.sh at 0.62 of a bare COPY (5,000:
         * 0.55, 20,000: 0.66 but 177 MB RSS draining, 144 MB here); a batch
         * takes only what is ready, so latency at low rates is unchanged. */
        {"batch-size", 0, OPT_INT, NULL, "10000", 1, 1000000, "N",
         "messages per transaction at most", &batch_size, 0},
        {"batch-ms", 0, OPT_INT, NULL, "200", 1, 600000, "MS",
         "commit a batch after this long even while messages keep coming (a batch is"
         " committed as soon as nothing more is ready)",
         &batch_ms, 0},
        {"stats-interval", 0, OPT_INT, NULL, "10", 0, 86400, "SEC",
         "log a stats line this often (0: only at exit)", &stats_interval, 0},
        {"exit-at-eof", 0, OPT_BOOL, NULL, "false", 0, 0, NULL,
         "exit 0 once every assigned partition is at its end", &exit_at_eof, 0},
        {"X", 'X', OPT_LIST, NULL, NULL, 0, 0, "KEY=VALUE", "librdkafka property (repeatable)", &kv,
         OPT_F_MERGE},
        CMD_ARGS_LOG_LEVEL_OPT(&loglevel),
        {0},
    };
    int r = cmd_args_parse(opts, "consume",
                           "-b HOST:PORT --pg CONNINFO [--topics RE] [--group ID] [options]", argc,
                           argv, NULL, &loglevel);
    if (r >= 0) {
        rc = r;
        goto out;
    }
    if (!brokers || !*brokers) {
        fprintf(stderr, "mbta-stream consume: -b/--brokers is required (or KAFKA_BROKERS)\n");
        goto out;
    }
    if (!pg_migrate_schema_ok(schema)) {
        fprintf(stderr,
                "mbta-stream consume: --schema \"%s\": use lower-case letters, digits and _\n",
                schema);
        goto out;
    }
    sig_install();
    /* Before any thread. For glibc's malloc (a MALLOC=libc or sanitizer
     * build; jemalloc, the default, ignores it): glibc gives each thread
     * that allocates its own arena (librdkafka's broker threads, the sink's
     * parser thread), each keeping what it once held: two arenas for the
     * whole process. (A fixed M_MMAP_THRESHOLD of 256 KB was tried too: it
     * made the drain 20 % slower, every fetch and batch buffer mapped and
     * unmapped.) */
    mallopt(M_ARENA_MAX, 2);
    a.rnd = (uint64_t)clock_realtime_ns() | 1;
    rc = 1;
    /* The schema first: retried while PostgreSQL is not up yet. */
    for (int attempt = 0;; attempt++) {
        if (sig_stop) {
            rc = 0;
            goto out;
        }
        if ((conn = pgconn_open(pg, "mbta-stream migrate", err, sizeof(err)))) {
            int n = pg_migrate_run(conn, schema, err, sizeof(err));
            PQfinish(conn);
            conn = NULL;
            if (n >= 0) {
                log_info("schema %s: at version %d (%d applied)", schema, pg_migrate_latest(), n);
                break;
            }
            log_error("schema %s: %s", schema, err);
            goto out;
        }
        int64_t ms = clock_backoff_ms(attempt, 250, 10000, &a.rnd) + 50;
        log_warn("%s (retrying in %" PRId64 " ms)", err, ms);
        sleep_ms(ms);
    }
    if (!(a.sink = pg_sink_new(pg, schema, dlq))) {
        log_error("out of memory");
        goto out;
    }
    struct consumer_conf cc = {brokers, group, topics, &kv, offsets_fn, revoke_fn, &a};
    if (!(a.kc = consumer_new(&cc, err, sizeof(err)))) {
        fprintf(stderr, "mbta-stream consume: %s\n", err);
        rc = 2;
        goto out;
    }
    log_info("consuming %s as group %s into schema %s", topics, group, schema);
    int64_t batch_start = 0, last_stats = clock_mono_ms();
    /* A batch takes whatever is ready (polls without waiting while it holds
     * messages) and is written as soon as nothing more is ready, when full,
     * or after --batch-ms. Under load the batches grow by themselves: what
     * arrives while one commits is ready for the next. Partition-end events
     * do not end a batch (a stale one would cut a batch short). */
    while (!sig_stop) {
        rd_kafka_message_t *m = consumer_poll(a.kc, a.n ? 0 : 50);
        if (m) {
            if (!a.n)
                batch_start = clock_mono_ms();
            batch_push(&a, m);
        }
        if (a.n && ((long)a.n >= batch_size || (!m && consumer_idle(a.kc)) ||
                    clock_mono_ms() - batch_start >= batch_ms))
            batch_flush(&a, -1);
        int eof = consumer_all_eof(a.kc);
        if (stats_interval && clock_mono_ms() - last_stats >= stats_interval * 1000) {
            stats(&a, 0);
            last_stats = clock_mono_ms();
        }
        if (exit_at_eof && eof && !a.n) {
            log_info("every assigned partition is at its end: exiting");
            break;
        }
    }
    if (a.n)
        batch_flush(&a, 5000);
    if (a.n)
        log_warn("stopping with %zu messages not committed (read again at the next start)", a.n);
    rc = 0;
out:
    if (a.kc) {
        stats(&a, 1);
        consumer_destroy(a.kc);
    }
    for (size_t i = 0; i < a.n; i++)
        rd_kafka_message_destroy(a.batch[i]);
    free(a.batch);
    free(a.ms);
    free(a.recv_us);
    pg_sink_destroy(a.sink);
    PQfinish(conn);
    strlist_fini(&kv);
    opt_free(opts);
    return rc;
}
