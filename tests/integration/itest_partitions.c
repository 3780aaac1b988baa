/*
 * itest_partitions: the end-of-reset markers follow the topic when it
 * gains partitions while `mbta-stream produce` runs.
 *
 * `serve` (a small deterministic world) feeds `produce` into a new topic
 * of 2 partitions. Once the first reset's 2 markers are in, the topic grows
 * to 4 partitions (Admin API CreatePartitions: what kafka-topics --alter
 * does), and serve is restarted on the same port, so that produce
 * reconnects and gets a second reset. That reset's markers must be on all
 * 4 partitions, each exactly once, after the reset's items there, with the
 * count of the reset's records; its items must be placed by librdkafka
 * over the 4 partitions (murmur2 of the key, as Java clients); produce
 * must log "now 4 partitions" and exit 0 on SIGTERM with nothing
 * undelivered.
 *
 * Needs MBTA_STREAM and KAFKA_BROKERS (tests/run sets them); timeouts are
 * scaled by TMOUT_MULTIPLIER.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "t.h"

#define STREAM     "vehicles"
#define MARKER_KEY "mbta-stream:reset-end:" STREAM
#define MAX_PARTS  8

static char *bin, *brokers;
static char topic[128], tmpdir[64], serve_log[128], produce_log[128];
static pid_t serve_pid = -1, produce_pid = -1;
static int serve_out = -1;

/* ------------------------------------------------------------ processes */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Starts argv with stderr appended to errlog; stdout to a pipe (*out) or
 * /dev/null. Returns the pid, or -1. */
static pid_t spawn(char *const argv[], const char *errlog, int *out)
{
    int fds[2] = {-1, -1};
    if (out && pipe(fds) < 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        int err = open(errlog, O_WRONLY | O_CREAT | O_APPEND, 0644);
        int o = out ? fds[1] : open("/dev/null", O_WRONLY);
        if (err < 0 || o < 0)
            _exit(127);
        dup2(o, 1);
        dup2(err, 2);
        if (out)
            close(fds[0]);
        execv(argv[0], argv);
        _exit(127);
    }
    if (out) {
        close(fds[1]);
        if (pid < 0)
            close(fds[0]);
        else
            *out = fds[0];
    }
    return pid;
}

/* Waits up to ms for pid; its exit code, 128+signal, or -1 on time-out. */
static int wait_exit(pid_t pid, int ms)
{
    int64_t end = now_ms() + ms;
    for (;;) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        if (r < 0 || now_ms() >= end)
            return -1;
        usleep(20000);
    }
}

static void stop_child(pid_t *pid)
{
    if (*pid <= 0)
        return;
    kill(*pid, SIGTERM);
    if (wait_exit(*pid, 10000) < 0) {
        kill(*pid, SIGKILL);
        waitpid(*pid, NULL, 0);
    }
    *pid = -1;
}

static void stop_serve(void)
{
    stop_child(&serve_pid);
    if (serve_out >= 0)
        close(serve_out);
    serve_out = -1;
}

/* Starts serve on port (0: a free one); returns its port, or -1. The same
 * seed, clock and limit every time: each serve's first connection gets the
 * same world. The pipe stays open: serve owns its stdout until it ends. */
static int start_serve(int port)
{
    char p[16];
    snprintf(p, sizeof(p), "%d", port);
    char *argv[] = {bin,           "serve", "--port",  p,
                    "--seed",      "7",     "--clock", "2026-03-02T08:00:00-05:00",
                    "--limit",     "20",    "--rate",  "500",
                    "--keepalive", "600",   NULL};
    serve_pid = spawn(argv, serve_log, &serve_out);
    if (serve_pid < 0)
        return -1;
    char line[128];
    size_t n = 0;
    int64_t end = now_ms() + T_TMOUT(10000);
    while (n < sizeof(line) - 1 && now_ms() < end) {
        struct pollfd pf = {serve_out, POLLIN, 0};
        if (poll(&pf, 1, 100) <= 0)
            continue;
        if (read(serve_out, line + n, 1) != 1)
            break;
        if (line[n++] == '\n')
            break;
    }
    line[n] = '\0';
    const char *colon = strrchr(line, ':');
    if (strncmp(line, "http://127.0.0.1:", 17) || !colon)
        return -1;
    return atoi(colon + 1);
}

static int file_has(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char line[4096];
    int found = 0;
    while (!found && fgets(line, sizeof(line), f))
        found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

/* ---------------------------------------------------------------- Kafka */

/* Java's (and librdkafka's murmur2_random's) partition of a key: murmur2
 * with seed 0x9747b28c, made positive, modulo the partition count. */
static int32_t murmur2_partition(const char *key, size_t len, int parts)
{
    const uint32_t m = 0x5bd1e995;
    uint32_t h = 0x9747b28c ^ (uint32_t)len;
    const unsigned char *d = (const unsigned char *)key;
    while (len >= 4) {
        uint32_t k =
            (uint32_t)d[0] | (uint32_t)d[1] << 8 | (uint32_t)d[2] << 16 | (uint32_t)d[3] << 24;
        k *= m;
        k ^= k >> 24;
        k *= m;
        h = h * m ^ k;
        d += 4;
        len -= 4;
    }
    switch (len) {
    case 3:
        h ^= (uint32_t)d[2] << 16; /* fall through */
    case 2:
        h ^= (uint32_t)d[1] << 8; /* fall through */
    case 1:
        h ^= d[0];
        h *= m;
    }
    h ^= h >> 13;
    h *= m;
    h ^= h >> 15;
    return (int32_t)((h & 0x7fffffff) % (uint32_t)parts);
}

struct msg {
    int32_t partition;
    int64_t offset;
    char key[256];
    char event[16];
    int64_t generation;
    char value[512]; /* markers: the whole value; others: a prefix */
};

struct topic_dump {
    struct msg *v;
    size_t n, cap;
    int parts;
};

static void dump_free(struct topic_dump *d)
{
    free(d->v);
    memset(d, 0, sizeof(*d));
}

static void hdr_str(rd_kafka_message_t *m, const char *name, char *out, size_t outsz)
{
    rd_kafka_headers_t *h = NULL;
    const void *v;
    size_t l;
    out[0] = '\0';
    if (rd_kafka_message_headers(m, &h) == 0 && rd_kafka_header_get_last(h, name, &v, &l) == 0 && v)
        snprintf(out, outsz, "%.*s", (int)l, (const char *)v);
}

static rd_kafka_t *client(rd_kafka_type_t type)
{
    char err[512], group[160];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", brokers, err, sizeof(err));
    rd_kafka_conf_set(conf, "log_level", "4", err, sizeof(err)); /* our log: produce's */
    if (type == RD_KAFKA_CONSUMER) {
        snprintf(group, sizeof(group), "%s-reader", topic);
        rd_kafka_conf_set(conf, "group.id", group, err, sizeof(err));
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof(err));
    }
    rd_kafka_t *rk = rd_kafka_new(type, conf, err, sizeof(err));
    if (!rk)
        fprintf(stderr, "rd_kafka_new: %s\n", err);
    return rk;
}

/* The topic's partition count from rk's metadata, or -1. */
static int topic_partitions(rd_kafka_t *rk)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    int n = -1;
    if (rd_kafka_metadata(rk, 0, rkt, &md, T_TMOUT(5000)) == 0 && md->topic_cnt == 1 &&
        !md->topics[0].err)
        n = md->topics[0].partition_cnt;
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    return n;
}

/* Every message of the topic, all partitions from the beginning up to the
 * high watermarks read first. 0, or -1 (time-out, errors). */
static int read_topic(struct topic_dump *d)
{
    int rc = -1;
    int64_t high[MAX_PARTS], next[MAX_PARTS];
    rd_kafka_t *rk = client(RD_KAFKA_CONSUMER);
    rd_kafka_topic_partition_list_t *tl = NULL;
    memset(d, 0, sizeof(*d));
    if (!rk)
        return -1;
    d->parts = topic_partitions(rk);
    if (d->parts <= 0 || d->parts > MAX_PARTS)
        goto out;
    tl = rd_kafka_topic_partition_list_new(d->parts);
    for (int p = 0; p < d->parts; p++) {
        int64_t lo;
        if (rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &high[p], T_TMOUT(5000)))
            goto out;
        next[p] = lo;
        rd_kafka_topic_partition_list_add(tl, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    }
    if (rd_kafka_assign(rk, tl))
        goto out;
    int64_t end = now_ms() + T_TMOUT(15000);
    for (;;) {
        int done = 1;
        for (int p = 0; p < d->parts; p++)
            done &= next[p] >= high[p];
        if (done)
            break;
        if (now_ms() >= end)
            goto out;
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m)
            continue;
        if (!m->err && m->partition >= 0 && m->partition < d->parts &&
            m->offset < high[m->partition]) {
            if (d->n == d->cap) {
                size_t cap = d->cap ? d->cap * 2 : 256;
                struct msg *v = realloc(d->v, cap * sizeof(*v));
                if (!v) {
                    rd_kafka_message_destroy(m);
                    goto out;
                }
                d->v = v;
                d->cap = cap;
            }
            struct msg *x = &d->v[d->n++];
            char gen[32];
            x->partition = m->partition;
            x->offset = m->offset;
            snprintf(x->key, sizeof(x->key), "%.*s", (int)m->key_len,
                     m->key ? (const char *)m->key : "");
            snprintf(x->value, sizeof(x->value), "%.*s", (int)m->len,
                     m->payload ? (const char *)m->payload : "");
            hdr_str(m, "event", x->event, sizeof(x->event));
            hdr_str(m, "generation", gen, sizeof(gen));
            x->generation = strtoll(gen, NULL, 10);
            next[m->partition] = m->offset + 1;
        }
        rd_kafka_message_destroy(m);
    }
    rc = 0;
out:
    if (tl)
        rd_kafka_topic_partition_list_destroy(tl);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    if (rc < 0)
        dump_free(d);
    return rc;
}

/* Markers in the dump: how many, and the generations seen (up to 8),
 * oldest first. */
static size_t markers(const struct topic_dump *d, int64_t *gens, size_t *ngens)
{
    size_t n = 0;
    *ngens = 0;
    for (size_t i = 0; i < d->n; i++) {
        if (strcmp(d->v[i].event, "reset-end"))
            continue;
        n++;
        size_t k = 0;
        while (k < *ngens && gens[k] != d->v[i].generation)
            k++;
        if (k == *ngens && *ngens < 8)
            gens[(*ngens)++] = d->v[i].generation;
    }
    for (size_t i = 1; i < *ngens; i++) /* a handful: insertion sort */
        for (size_t k = i; k > 0 && gens[k - 1] > gens[k]; k--) {
            int64_t t = gens[k];
            gens[k] = gens[k - 1];
            gens[k - 1] = t;
        }
    return n;
}

/* Waits until the topic holds `want` markers; the dump of that moment. */
static int wait_markers(size_t want, struct topic_dump *d, int ms)
{
    int64_t end = now_ms() + ms;
    for (;;) {
        int64_t gens[8];
        size_t ng;
        if (read_topic(d) == 0 && markers(d, gens, &ng) >= want)
            return 0;
        dump_free(d);
        if (now_ms() >= end)
            return -1;
        usleep(300000);
    }
}

/* CreatePartitions: the topic grows to `total` partitions. */
static void grow_topic(int total)
{
    char err[512];
    rd_kafka_t *rk = client(RD_KAFKA_PRODUCER);
    T_ASSERT(rk);
    rd_kafka_NewPartitions_t *np =
        rd_kafka_NewPartitions_new(topic, (size_t)total, err, sizeof(err));
    T_ASSERTF(np, "NewPartitions: %s", err);
    rd_kafka_AdminOptions_t *ao = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATEPARTITIONS);
    rd_kafka_AdminOptions_set_operation_timeout(ao, T_TMOUT(10000), err, sizeof(err));
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_CreatePartitions(rk, &np, 1, ao, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, T_TMOUT(15000));
    char why[512] = "";
    if (!ev) {
        snprintf(why, sizeof(why), "no answer");
    } else if (rd_kafka_event_error(ev)) {
        snprintf(why, sizeof(why), "%s", rd_kafka_event_error_string(ev));
    } else {
        size_t n = 0;
        const rd_kafka_topic_result_t **tr =
            rd_kafka_CreatePartitions_result_topics(rd_kafka_event_CreatePartitions_result(ev), &n);
        for (size_t i = 0; i < n; i++)
            if (rd_kafka_topic_result_error(tr[i]))
                snprintf(why, sizeof(why), "%s", rd_kafka_topic_result_error_string(tr[i]));
    }
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_AdminOptions_destroy(ao);
    rd_kafka_NewPartitions_destroy(np);
    /* The broker's metadata shows the new partitions a moment later. */
    int64_t end = now_ms() + T_TMOUT(10000);
    int parts = -1;
    while (!why[0] && (parts = topic_partitions(rk)) != total && now_ms() < end)
        usleep(100000);
    rd_kafka_destroy(rk);
    T_ASSERTF(!why[0], "CreatePartitions %s -> %d: %s", topic, total, why);
    T_ASSERTF(parts == total, "metadata shows %d partitions, expected %d", parts, total);
}

/* Checks one reset's markers and items; returns the marker count value. */
static long check_reset(const struct topic_dump *d, int64_t gen, int parts)
{
    int seen[MAX_PARTS] = {0};
    int64_t mark_off[MAX_PARTS] = {0};
    long count = -1;
    size_t items = 0;
    for (size_t i = 0; i < d->n; i++) {
        const struct msg *x = &d->v[i];
        if (x->generation != gen || strcmp(x->event, "reset-end"))
            continue;
        T_ASSERTF(x->partition < parts, "generation %" PRId64 ": a marker on partition %d of %d",
                  gen, (int)x->partition, parts);
        T_ASSERTF(!seen[x->partition]++, "generation %" PRId64 ": two markers on partition %d", gen,
                  (int)x->partition);
        mark_off[x->partition] = x->offset;
        T_EQ_STR(x->key, MARKER_KEY);
        json_error_t je;
        json_t *o = json_loads(x->value, 0, &je);
        T_ASSERTF(o, "marker value %s: %s", x->value, je.text);
        long c = (long)json_integer_value(json_object_get(o, "count"));
        const char *st = json_string_value(json_object_get(o, "stream"));
        int ok = st && !strcmp(st, STREAM) &&
                 json_integer_value(json_object_get(o, "generation")) == gen &&
                 json_is_integer(json_object_get(o, "count"));
        json_decref(o);
        T_ASSERTF(ok, "marker value %s (generation %" PRId64 ")", x->value, gen);
        T_ASSERTF(count < 0 || c == count, "markers disagree on the count: %ld, %ld", c, count);
        count = c;
    }
    for (int p = 0; p < parts; p++)
        T_ASSERTF(seen[p] == 1, "generation %" PRId64 ": %d markers on partition %d of %d", gen,
                  seen[p], p, parts);
    /* The reset's records: placed by key over `parts` partitions (what
     * librdkafka believed), each before its partition's marker. */
    for (size_t i = 0; i < d->n; i++) {
        const struct msg *x = &d->v[i];
        if (x->generation != gen || strcmp(x->event, "reset"))
            continue;
        items++;
        int32_t want = murmur2_partition(x->key, strlen(x->key), parts);
        T_ASSERTF(x->partition == want, "%s on partition %d, murmur2 over %d says %d", x->key,
                  (int)x->partition, parts, (int)want);
        T_ASSERTF(x->offset < mark_off[x->partition],
                  "%s at offset %" PRId64 " after the marker (%" PRId64 ") of partition %d", x->key,
                  x->offset, mark_off[x->partition], (int)x->partition);
    }
    T_ASSERTF(items > 0 && count == (long)items,
              "generation %" PRId64 ": markers count %ld, the topic holds %zu reset records", gen,
              count, items);
    return count;
}

/* ------------------------------------------------------------------ test */

static void test_markers_follow_new_partitions(void)
{
    struct topic_dump d = {0};
    int64_t gens[8];
    size_t ng;

    int port = start_serve(0);
    T_ASSERTF(port > 0, "serve did not start (log %s)", serve_log);
    char url[64], spec[256];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
    snprintf(spec, sizeof(spec), STREAM "=/vehicles?filter[route_type]=0,1@%s", topic);
    char *argv[] = {bin,
                    "produce",
                    "-b",
                    brokers,
                    "--api-url",
                    url,
                    "--stream",
                    spec,
                    "--partitions",
                    "2",
                    "--dead-letter-topic",
                    "",
                    "--stats-interval",
                    "0",
                    "--backoff-base",
                    "100",
                    "--backoff-cap",
                    "300",
                    NULL};
    produce_pid = spawn(argv, produce_log, NULL);
    T_ASSERT(produce_pid > 0);

    /* 1. The first reset: 2 partitions, 2 markers. */
    T_ASSERTF(wait_markers(2, &d, T_TMOUT(30000)) == 0,
              "no 2 markers of the first reset in 30 s (log %s)", produce_log);
    T_EQ_INT(d.parts, 2);
    T_EQ_INT(markers(&d, gens, &ng), 2);
    T_EQ_INT(ng, 1);
    int64_t g1 = gens[0];
    check_reset(&d, g1, 2);
    dump_free(&d);

    /* 2. The operator adds partitions while produce runs. */
    grow_topic(4);

    /* 3. The source drops: produce reconnects to a new serve on the same
     * port and gets a new reset. */
    stop_serve();
    T_ASSERTF(start_serve(port) == port, "serve did not restart on port %d (log %s)", port,
              serve_log);
    int64_t t0 = now_ms();
    int r = wait_markers(6, &d, T_TMOUT(20000));
    fprintf(stderr, "second reset's markers: %s after %" PRId64 " ms\n", r ? "not all" : "all",
            now_ms() - t0);
    dump_free(&d);

    /* 4. SIGTERM: drained and flushed, exit 0, nothing undelivered. */
    kill(produce_pid, SIGTERM);
    int rc = wait_exit(produce_pid, T_TMOUT(60000));
    produce_pid = rc < 0 ? produce_pid : -1;
    T_ASSERTF(rc == 0, "produce exited %d on SIGTERM (log %s)", rc, produce_log);
    T_ASSERTF(!file_has(produce_log, "undelivered"), "produce said undelivered (log %s)",
              produce_log);
    T_ASSERTF(file_has(produce_log, "failed=0 "), "totals without failed=0 (log %s)", produce_log);

    T_ASSERTF(read_topic(&d) == 0, "cannot read %s", topic);
    T_EQ_INT(d.parts, 4);
    size_t nm = markers(&d, gens, &ng);
    T_ASSERTF(ng == 2 && gens[0] == g1,
              "expected the markers of 2 resets (generation %" PRId64
              " first), saw %zu generations",
              g1, ng);
    int64_t g2 = gens[1];
    T_ASSERTF(g2 > g1, "generation %" PRId64 " after %" PRId64, g2, g1);
    /* The first reset keeps its 2 markers; the second has one on each of
     * the 4 partitions, new ones included. */
    T_ASSERTF(nm == 6, "%zu markers, expected 2 + 4 (log %s)", nm, produce_log);
    check_reset(&d, g1, 2);
    check_reset(&d, g2, 4);
    dump_free(&d);
    char line[256];
    snprintf(line, sizeof(line), STREAM ": %s: now 4 partitions (was 2)", topic);
    T_ASSERTF(file_has(produce_log, line), "no \"%s\" line (log %s)", line, produce_log);
}

int main(void)
{
    bin = getenv("MBTA_STREAM");
    brokers = getenv("KAFKA_BROKERS");
    if (!bin || !brokers) {
        printf("FAIL partitions: MBTA_STREAM and KAFKA_BROKERS must be set\n");
        return 1;
    }
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/itest_partitions.XXXXXX");
    if (!mkdtemp(tmpdir)) {
        printf("FAIL partitions: mkdtemp: %s\n", strerror(errno));
        return 1;
    }
    snprintf(serve_log, sizeof(serve_log), "%s/serve.log", tmpdir);
    snprintf(produce_log, sizeof(produce_log), "%s/produce.log", tmpdir);
    snprintf(topic, sizeof(topic), "t.partitions.%ld.%d", (long)time(NULL), (int)getpid());
    signal(SIGPIPE, SIG_IGN);
    T_RUN(test_markers_follow_new_partitions);
    stop_child(&produce_pid);
    stop_serve();
    printf("logs in %s\n", tmpdir);
    return T_DONE();
}
