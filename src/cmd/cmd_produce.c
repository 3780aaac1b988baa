/*
 * mbta-stream produce: MBTA SSE streams into Kafka topics (docs/CONTRACT.md).
 *
 * The entry point: options, stream specs (src/cmd/stream_spec.h), wiring
 * of the SSE client (src/sse/sse_stream.h) to the publisher
 * (src/kafka/publisher.h, which turns events into messages, keeps the
 * backlogs and pauses the sources), the loop, signals, stats lines and exit
 * codes.
 *
 * One thread, one loop: sse_client_run (the streams' callbacks hand events
 * to the publisher) then publisher_poll (delivery reports) and
 * publisher_pump (backlogs), repeat. While a backlog waits, the loop waits
 * on delivery reports (which free the queue), not on the paused source.
 *
 * At exit, after the totals, a `timing:` line gives what a benchmark needs:
 * wall time from the first event to the last delivery report and the
 * process's CPU time (bench/bench_produce.sh; --max-events ends a run after
 * exactly N events, as kcat -c does). The stats/totals and timing lines are
 * parsed by bench/lib.sh and bench/bench_produce.sh: keep their fields.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "cmd/cmd.h"
#include "cmd/cmd_args.h"
#include "cmd/stream_spec.h"
#include "kafka/publisher.h"
#include "sse/sse_stream.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/opt.h"
#include "util/sig.h"

/* One --stream: what was asked, where it goes, where it comes from. */
struct pstream {
    struct stream_spec spec;
    struct publisher_stream *pub; /* owned by the publisher */
    struct sse_stream *sse;       /* owned by the client */
};

/* ---- options ---- */
static char *o_brokers, *o_api_url, *o_dlq, *o_log_level;
static struct strlist o_streams, o_x;
static long o_partitions, o_rf, o_stats, o_flush, o_topic_timeout, o_max_events;
static struct cmd_args_stream o_src; /* -H, --api-key, timeouts, backoff, -v */

static const struct opt produce_opts[] = {
    {"brokers", 'b', OPT_STR, "KAFKA_BROKERS", NULL, 0, 0, "HOST:PORT",
     "Kafka bootstrap brokers (required)", &o_brokers, 0},
    {"api-url", 0, OPT_STR, "MBTA_API_URL", "https://api-v3.mbta.com", 0, 0, "BASE",
     "base URL of the MBTA V3 API (or of `mbta-stream serve`)", &o_api_url, 0},
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
    {"flush-timeout", 0, OPT_INT, NULL, "30", 0, 86400, "SEC",
     "on SIGINT/SIGTERM, wait this long for deliveries", &o_flush, 0},
    {"topic-timeout", 0, OPT_INT, NULL, "60", 1, 86400, "SEC",
     "at start, wait this long for the brokers to create/describe topics", &o_topic_timeout, 0},
    {"max-events", 0, OPT_INT, NULL, "0", 0, 1e15, "N",
     "stop after N events in, as on SIGTERM (0: never; for benchmarks and tests)", &o_max_events,
     0},
    CMD_ARGS_CONN_OPTS(&o_src),
    /* One cap for lines and events: an event is at most one data line. */
    {"max-event", 0, OPT_INT, NULL, "67108864", 1024, 1073741824, "BYTES",
     "largest SSE event accepted; larger ones are dead letters", &o_src.max_event, 0},
    CMD_ARGS_VERBOSE_OPT(&o_src),
    CMD_ARGS_LOG_LEVEL_OPT(&o_log_level),
    {NULL, 0, 0, NULL, NULL, 0, 0, NULL, NULL, NULL, 0},
};

static const char *const default_streams[] = {
    "vehicles=/vehicles?filter[route_type]=0,1",
    ("predictions=/predictions?filter[route]=Red,Orange,Blue,Green-B,Green-C,Green-D,Green-E,"
     "Mattapan"),
    "alerts=/alerts",
};

/* ---- SSE callbacks: hand over to the publisher ---- */

static void on_event(void *opaque, struct sse_stream *ss, const struct sse_event *ev,
                     int64_t received_ns)
{
    struct pstream *s = opaque;
    (void)ss;
    publisher_stream_event(s->pub, ev->type, ev->type_len, ev->data, ev->data_len, received_ns);
}

static void on_state(void *opaque, struct sse_stream *ss, enum sse_state st, int http_status,
                     const char *msg)
{
    struct pstream *s = opaque;
    (void)ss;
    switch (st) {
    case SSE_CONNECTED:
        log_info("%s: connected (%d)", s->spec.name, http_status);
        break;
    case SSE_DISCONNECTED:
        log_warn("%s: disconnected: %s", s->spec.name, msg ? msg : "");
        break;
    case SSE_STOPPED:
        /* Never resumed again: a stopped stream stays stopped. */
        publisher_stream_source(s->pub, NULL);
        log_error("%s: stopped: %s", s->spec.name, msg ? msg : "");
        break;
    }
}

static void on_parse_error(void *opaque, struct sse_stream *ss, const char *msg)
{
    struct pstream *s = opaque;
    (void)ss;
    publisher_stream_skipped(s->pub, msg ? msg : "oversized", clock_realtime_ns());
}

/* ---- stats ---- */

static void print_stats(struct publisher *pub, const struct pstream *v, size_t n, const char *what)
{
    char line[4096];
    size_t len = 0;
    for (size_t i = 0; i < n && v[i].pub && len < sizeof(line) - 400; i++) {
        struct publisher_stream_stats ps;
        struct sse_stream_stats st = {0};
        publisher_stream_stats(v[i].pub, &ps);
        if (v[i].sse)
            sse_stream_stats(v[i].sse, &st);
        len += (size_t)snprintf(line + len, sizeof(line) - len,
                                "%s%s: in=%" PRIu64 " produced=%" PRIu64 " delivered=%" PRIu64
                                " failed=%" PRIu64 " bad=%" PRIu64 " reconnects=%" PRIu64
                                " backlog=%zu pauses=%" PRIu64 " bytes=%" PRIu64,
                                i ? "; " : "", v[i].spec.name, ps.in, ps.produced, ps.delivered,
                                ps.failed, ps.bad, st.reconnects, ps.backlog, ps.pauses, ps.bytes);
    }
    log_info("%s: %s; queue=%d", what, line, publisher_queue_len(pub));
}

/* The numbers a benchmark needs, in one line at exit: wall time from the
 * first event to the last delivery report (ns resolution, printed in ms)
 * and the process's CPU time (all threads, librdkafka's included). */
static void print_timing(const struct publisher *pub)
{
    struct rusage ru;
    struct publisher_totals t;
    publisher_totals(pub, &t);
    getrusage(RUSAGE_SELF, &ru);
    double user = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6;
    double sys = (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    double ms =
        t.first_ns && t.last_dr_ns > t.first_ns ? (double)(t.last_dr_ns - t.first_ns) / 1e6 : 0;
    log_info("timing: events=%" PRIu64 " delivered=%" PRIu64 " bytes=%" PRIu64
             " elapsed_ms=%.3f cpu_user_s=%.3f cpu_sys_s=%.3f max_rss_kb=%ld",
             t.events, t.delivered, t.bytes, ms, user, sys, ru.ru_maxrss);
}

static uint64_t events_in(const struct publisher *pub)
{
    struct publisher_totals t;
    publisher_totals(pub, &t);
    return t.events;
}

int cmd_produce(int argc, char **argv)
{
    static const char synopsis[] =
        "-b HOST:PORT [--api-url BASE] [--stream 'NAME=/PATH?QUERY[@TOPIC]' ...] "
        "[-X key=value ...]";
    static const struct sse_stream_cbs cbs = {
        .on_event = on_event, .on_state = on_state, .on_parse_error = on_parse_error};
    char err[512];
    int rc = 2;
    struct pstream *v = NULL;
    size_t nv = 0;
    struct publisher *pub = NULL;
    struct sse_client *client = NULL;

    sig_install();
    rc = cmd_args_parse(produce_opts, "produce", synopsis, argc, argv, NULL, &o_log_level);
    if (rc >= 0)
        goto out;
    rc = 2;
    if (!o_brokers || !*o_brokers) {
        fprintf(stderr, "mbta-stream produce: -b HOST:PORT is required\n");
        goto out;
    }
    size_t nspec = o_streams.n ? o_streams.n : sizeof(default_streams) / sizeof(*default_streams);
    if (!(v = calloc(nspec, sizeof(*v))))
        goto out;
    for (; nv < nspec; nv++) {
        const char *spec = o_streams.n ? o_streams.v[nv] : default_streams[nv];
        if (stream_spec_parse(spec, o_api_url, &v[nv].spec, err, sizeof(err)) < 0) {
            fprintf(stderr, "mbta-stream produce: %s\n", err);
            goto out;
        }
        for (size_t k = 0; k < nv; k++)
            if (!strcmp(v[k].spec.name, v[nv].spec.name)) {
                fprintf(stderr, "mbta-stream produce: --stream %s: the name is used twice\n",
                        v[nv].spec.name);
                nv++;
                goto out;
            }
    }

    struct producer_conf pc = {.brokers = o_brokers,
                               .props = &o_x,
                               .partitions = (int)o_partitions,
                               .replication_factor = (int)o_rf};
    struct publisher_conf conf = {
        .producer = &pc, .dead_letter_topic = o_dlq, .max_events = (uint64_t)o_max_events};
    if (!(pub = publisher_new(&conf, err, sizeof(err)))) {
        fprintf(stderr, "mbta-stream produce: %s\n", err);
        goto out;
    }
    rc = 1;
    /* Topics first: the markers need each topic's partition count. */
    for (size_t i = 0; i < nv; i++) {
        struct pstream *s = &v[i];
        s->pub = publisher_stream_add(pub, s->spec.name, s->spec.topic, (int)o_topic_timeout * 1000,
                                      err, sizeof(err));
        if (!s->pub) {
            log_error("%s: topic %s", s->spec.name, err);
            goto out;
        }
        log_info("%s: %s -> %s (%d partitions)", s->spec.name, s->spec.path, s->spec.topic,
                 publisher_stream_partitions(s->pub));
    }
    if (publisher_dead_letter_ensure(pub, (int)o_topic_timeout * 1000, err, sizeof(err)) < 0) {
        log_error("dead-letter topic %s", err);
        goto out;
    }

    if (!(client = sse_client_new(err, sizeof(err)))) {
        log_error("sse: %s", err);
        goto out;
    }
    struct sse_stream_conf sc;
    o_src.max_line = o_src.max_event;
    if (cmd_args_stream_conf(&o_src, NULL, &sc) < 0)
        goto out;
    for (size_t i = 0; i < nv; i++) {
        struct pstream *s = &v[i];
        sc.name = s->spec.name;
        sc.url = s->spec.url;
        s->sse = sse_client_add(client, &sc, &cbs, s, err, sizeof(err));
        if (!s->sse) {
            fprintf(stderr, "mbta-stream produce: %s: %s\n", s->spec.name, err);
            rc = 2;
            goto out;
        }
        publisher_stream_source(s->pub, s->sse);
    }

    int64_t next_stats = o_stats ? clock_mono_ms() + o_stats * 1000 : INT64_MAX;
    int all_stopped = 0, fatal = 0;
    while (!sig_stop) {
        /* With a backlog, what frees the queue is a delivery report: wait
         * for those (briefly) rather than for the sources; else wait for
         * the sources, which return as soon as bytes arrive. */
        int backlog = publisher_backlog(pub);
        int live = sse_client_run(client, backlog ? 0 : 20);
        publisher_poll(pub, backlog ? 2 : 0);
        publisher_pump(pub, 1);
        if (publisher_fatal(pub, err, sizeof(err))) {
            log_error("kafka: fatal: %s", err);
            fatal = 1;
            break;
        }
        if (o_max_events && events_in(pub) >= (uint64_t)o_max_events) {
            log_info("%" PRIu64 " events in (--max-events)", events_in(pub));
            break;
        }
        if (live == 0) {
            log_error("all streams stopped");
            all_stopped = 1;
            break;
        }
        if (clock_mono_ms() >= next_stats) {
            print_stats(pub, v, nv, "stats");
            next_stats = clock_mono_ms() + o_stats * 1000;
        }
    }

    /* Drain: stop reading, push out the backlogs, flush. */
    for (size_t i = 0; i < nv; i++)
        sse_stream_pause(v[i].sse, 1);
    int64_t deadline = clock_mono_ms() + o_flush * 1000;
    log_info("stopping: flushing (up to %ld s)", o_flush);
    for (;;) {
        int pending = publisher_pump(pub, 0);
        if (!pending && publisher_queue_len(pub) == 0)
            break;
        if (clock_mono_ms() >= deadline || fatal)
            break;
        publisher_poll(pub, 50);
    }
    print_stats(pub, v, nv, "totals");
    print_timing(pub);
    uint64_t lost = publisher_undelivered(pub);
    if (lost) {
        log_error("%" PRIu64 " messages undelivered", lost);
        rc = 1;
    } else {
        rc = all_stopped || fatal ? 1 : 0;
    }
out:
    sse_client_destroy(client);
    publisher_destroy(pub);
    for (size_t i = 0; i < nv; i++)
        stream_spec_fini(&v[i].spec);
    free(v);
    cmd_args_stream_fini(&o_src);
    opt_free(produce_opts);
    return rc;
}
