/*
 * Smoke test of the real servers through the same client libraries the
 * product uses: librdkafka produces keyed messages with headers to a new
 * topic and reads them back; libpq creates a table, COPYs rows in and reads
 * them back. Needs KAFKA_BROKERS and DATABASE_URL (tests/run sets them).
 */
#include <inttypes.h>
#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "t.h"

#define N_MSGS 1000

static const char *brokers, *dburl;
static char topic[128];

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    if (m->err)
        fprintf(stderr, "delivery failed: %s\n", rd_kafka_err2str(m->err));
    else
        (*(int *)m->_private)++;
}

static void test_kafka_roundtrip(void)
{
    char err[512];
    int delivered = 0;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    T_ASSERT(rd_kafka_conf_set(conf, "bootstrap.servers", brokers, err, sizeof(err)) == 0);
    T_ASSERT(rd_kafka_conf_set(conf, "enable.idempotence", "true", err, sizeof(err)) == 0);
    rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    T_ASSERTF(p, "producer: %s", err);
    for (int i = 0; i < N_MSGS; i++) {
        char key[32], val[64];
        snprintf(key, sizeof(key), "vehicle:%d", i % 17);
        snprintf(val, sizeof(val), "{\"n\":%d}", i);
        rd_kafka_resp_err_t e = rd_kafka_producev(
            p, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, strlen(key)),
            RD_KAFKA_V_VALUE(val, strlen(val)), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_HEADER("event", "add", 3), RD_KAFKA_V_OPAQUE(&delivered), RD_KAFKA_V_END);
        T_ASSERTF(!e, "produce: %s", rd_kafka_err2str(e));
        rd_kafka_poll(p, 0);
    }
    rd_kafka_flush(p, T_TMOUT(30000));
    T_EQ_INT(delivered, N_MSGS);
    rd_kafka_destroy(p);

    conf = rd_kafka_conf_new();
    char group[160];
    snprintf(group, sizeof(group), "%s-g", topic);
    rd_kafka_conf_set(conf, "bootstrap.servers", brokers, err, sizeof(err));
    rd_kafka_conf_set(conf, "group.id", group, err, sizeof(err));
    rd_kafka_conf_set(conf, "auto.offset.reset", "earliest", err, sizeof(err));
    rd_kafka_t *c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    T_ASSERTF(c, "consumer: %s", err);
    rd_kafka_poll_set_consumer(c);
    rd_kafka_topic_partition_list_t *subs = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(subs, topic, RD_KAFKA_PARTITION_UA);
    T_ASSERT(rd_kafka_subscribe(c, subs) == 0);
    rd_kafka_topic_partition_list_destroy(subs);

    int got = 0, with_header = 0, last[17];
    int in_order = 1;
    for (int i = 0; i < 17; i++)
        last[i] = -1;
    time_t deadline = time(NULL) + T_TMOUT(60000) / 1000;
    while (got < N_MSGS && time(NULL) < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 200);
        if (!m)
            continue;
        if (!m->err) {
            rd_kafka_headers_t *h = NULL;
            const void *hv;
            size_t hl;
            if (rd_kafka_message_headers(m, &h) == 0 &&
                rd_kafka_header_get_last(h, "event", &hv, &hl) == 0 && hl == 3 &&
                !memcmp(hv, "add", 3))
                with_header++;
            int n = atoi((const char *)m->payload + 5), k = n % 17;
            if (n <= last[k])
                in_order = 0; /* per key, order must hold */
            last[k] = n;
            got++;
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    T_EQ_INT(got, N_MSGS);
    T_EQ_INT(with_header, N_MSGS);
    T_ASSERT(in_order);
}

static void test_pg_copy_roundtrip(void)
{
    PGconn *db = PQconnectdb(dburl);
    T_ASSERTF(PQstatus(db) == CONNECTION_OK, "connect: %s", PQerrorMessage(db));
    char sql[512];
    snprintf(sql, sizeof(sql),
             "CREATE TEMP TABLE smoke (id int primary key, name text, at timestamptz)");
    PGresult *r = PQexec(db, sql);
    T_ASSERTF(PQresultStatus(r) == PGRES_COMMAND_OK, "create: %s", PQerrorMessage(db));
    PQclear(r);
    r = PQexec(db, "COPY smoke FROM STDIN");
    T_ASSERT(PQresultStatus(r) == PGRES_COPY_IN);
    PQclear(r);
    for (int i = 0; i < 500; i++) {
        char row[128];
        int n = snprintf(row, sizeof(row), "%d\tname\\t%d\t2026-12-04T14:03:11-05:00\n", i, i);
        T_ASSERT(PQputCopyData(db, row, n) == 1);
    }
    T_ASSERT(PQputCopyEnd(db, NULL) == 1);
    r = PQgetResult(db);
    T_ASSERTF(PQresultStatus(r) == PGRES_COMMAND_OK, "copy: %s", PQerrorMessage(db));
    PQclear(r);
    while ((r = PQgetResult(db)))
        PQclear(r);
    r = PQexec(db, "SELECT count(*), max(name), min(at AT TIME ZONE 'UTC')::text FROM smoke");
    T_ASSERT(PQresultStatus(r) == PGRES_TUPLES_OK);
    T_EQ_STR(PQgetvalue(r, 0, 0), "500");
    T_EQ_STR(PQgetvalue(r, 0, 1), "name\t99");
    T_EQ_STR(PQgetvalue(r, 0, 2), "2026-12-04 19:03:11");
    PQclear(r);
    PQfinish(db);
}

int main(void)
{
    brokers = getenv("KAFKA_BROKERS");
    dburl = getenv("DATABASE_URL");
    if (!brokers || !dburl) {
        printf("FAIL smoke: KAFKA_BROKERS and DATABASE_URL must be set\n");
        return 1;
    }
    snprintf(topic, sizeof(topic), "smoke-%ld-%d", (long)time(NULL), (int)getpid());
    T_RUN(test_kafka_roundtrip);
    T_RUN(test_pg_copy_roundtrip);
    return T_DONE();
}
