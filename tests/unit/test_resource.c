/*
 * test_resource: the MBTA resource transform over tests/data/resources/
 * (one real-shaped fixture per type, older payloads, unknown types and
 * attributes, and refused ones: bad_*.json must be refused with a reason),
 * the timestamp parser, the key split, and enrichment by hand-computed
 * values (distance, gap, speed, service date across midnight and DST).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mbta/enrich.h"
#include "mbta/resource.h"
#include "pg/sink.h"
#include "t.h"

static char *slurp(const char *name, size_t *len)
{
    char path[256];
    snprintf(path, sizeof(path), "tests/data/resources/%s", name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *b = malloc(1 << 16);
    *len = fread(b, 1, (1 << 16) - 1, f);
    fclose(f);
    b[*len] = 0;
    return b;
}

/* The bytes of the last fixture loaded: a row borrows from them. */
static char *loaded;

/* Parses a fixture; returns 0 and fills row, or -1 with why. The row is
 * valid until the next load. */
static int load(const char *name, struct res_row *row, char *why, size_t whysz)
{
    size_t len;
    free(loaded);
    loaded = slurp(name, &len);
    if (!loaded) {
        snprintf(why, whysz, "cannot read %s", name);
        return -2;
    }
    return res_parse(loaded, len, NULL, NULL, row, why, whysz);
}

static const struct res_value *col(const struct res_row *r, const char *name)
{
    int i = res_type_col(r->type, name);
    return i < 0 ? NULL : &r->v[i];
}

static void test_vehicle(void)
{
    struct res_row r;
    char why[256];
    T_ASSERTF(load("vehicle.json", &r, why, sizeof(why)) == 0, "%s", why);
    T_EQ_STR(r.type->current, "vehicles");
    T_EQ_STR(r.id, "R-5482E4F8");
    T_EQ_INT(col(&r, "bearing")->i, 135);
    T_ASSERT(fabs(col(&r, "latitude")->d - 42.35493) < 1e-12);
    T_ASSERT(col(&r, "speed")->null);
    T_ASSERT(col(&r, "occupancy_status")->null);
    T_EQ_MEM(col(&r, "current_status")->s, col(&r, "current_status")->slen, "IN_TRANSIT_TO",
             strlen("IN_TRANSIT_TO"));
    T_EQ_MEM(col(&r, "route_id")->s, col(&r, "route_id")->slen, "Red", strlen("Red"));
    T_EQ_MEM(col(&r, "stop_id")->s, col(&r, "stop_id")->slen, "70077", strlen("70077"));
    /* 2026-12-04T14:03:11-05:00 = 19:03:11Z = 1796410991 */
    T_EQ_INT(col(&r, "updated_at")->i, 1796410991LL * 1000000);
    T_ASSERT(!col(&r, "carriages")->null);
    T_ASSERT(memmem(col(&r, "carriages")->s, col(&r, "carriages")->slen, "\"label\":\"1713\"", 14));
    res_row_fini(&r);
}

static void test_vehicle_old_payload(void)
{
    struct res_row r;
    char why[256];
    T_ASSERTF(load("vehicle_old.json", &r, why, sizeof(why)) == 0, "%s", why);
    T_ASSERT(col(&r, "carriages")->null);
    T_ASSERT(col(&r, "revenue")->null);
    T_ASSERT(col(&r, "stop_id")->null); /* "data": null */
    T_ASSERT(col(&r, "trip_id")->null);
    T_ASSERT(fabs(col(&r, "speed")->d - 4.5) < 1e-12);
    res_row_fini(&r);
}

static void test_every_type(void)
{
    static const struct {
        const char *file, *table, *col, *text;
    } cases[] = {
        {"prediction.json", "predictions", "vehicle_id", "R-5482E4F8"},
        {"alert.json", "alerts", "effect", "STATION_CLOSURE"},
        {"trip.json", "trips", "route_pattern_id", "Red-1-0"},
        {"stop.json", "stops", "parent_station_id", "place-dwnxg"},
        {"route.json", "routes", "line_id", "line-Red"},
        {"schedule.json", "schedules", "trip_id", "68608128"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct res_row r;
        char why[256];
        T_ASSERTF(load(cases[i].file, &r, why, sizeof(why)) == 0, "%s: %s", cases[i].file, why);
        T_EQ_STR(r.type->current, cases[i].table);
        const struct res_value *v = col(&r, cases[i].col);
        T_ASSERTF(v && !v->null, "%s: %s is null", cases[i].file, cases[i].col);
        T_EQ_MEM(v->s, v->slen, cases[i].text, strlen(cases[i].text));
        res_row_fini(&r);
    }
}

static void test_details(void)
{
    struct res_row r;
    char why[256];
    T_ASSERT(load("alert.json", &r, why, sizeof(why)) == 0);
    T_EQ_INT(col(&r, "severity")->i, 7);
    T_EQ_INT(col(&r, "updated_at")->i % 1000000, 500000); /* .5 s */
    T_ASSERT(memchr(col(&r, "description")->s, '\n', col(&r, "description")->slen) != NULL);
    /* escapes decoded: "Line one\nLine\ttwo \\ back" */
    T_EQ_MEM(col(&r, "description")->s, col(&r, "description")->slen, "Line one\nLine\ttwo \\ back",
             strlen("Line one\nLine\ttwo \\ back"));
    res_row_fini(&r);
    T_ASSERT(load("route.json", &r, why, sizeof(why)) == 0);
    T_EQ_INT(col(&r, "type")->i, 1);
    T_EQ_INT(col(&r, "listed_route")->i, 1);
    T_EQ_MEM(col(&r, "direction_names")->s, col(&r, "direction_names")->slen,
             "[\"South\",\"North\"]", strlen("[\"South\",\"North\"]"));
    res_row_fini(&r);
    T_ASSERT(load("prediction.json", &r, why, sizeof(why)) == 0);
    T_ASSERT(col(&r, "departure_time")->null);
    T_ASSERT(col(&r, "schedule_id")->null);
    T_EQ_INT(col(&r, "last_trip")->i, 0);
    res_row_fini(&r);
}

static void test_unknown_type(void)
{
    struct res_row r;
    char why[256];
    T_ASSERT(load("facility.json", &r, why, sizeof(why)) == 0);
    T_ASSERT(r.type == res_type_generic());
    T_EQ_STR(r.type->current, "resources");
    T_EQ_STR(r.rtype, "facility");
    T_EQ_STR(r.id, "fac-1");
    res_row_fini(&r);
}

static void test_refused(void)
{
    static const struct {
        const char *file, *why;
    } cases[] = {
        {"bad_wrong_type.json", "attributes.latitude: expected number, got string"},
        {"bad_range.json", "attributes.latitude: 142.3 out of range"},
        {"bad_ts.json", "attributes.updated_at: \"2026-13-04T14:03:11-05:00\" is not an ISO 8601 "
                        "timestamp: month 13 is out of range (01-12)"},
        {"bad_noid.json", "missing field: \"id\""},
        {"bad_rel.json", "relationships.route.data: expected {\"id\": string}"},
        {"bad_truncated.json", "malformed JSON"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct res_row r;
        char why[256] = "";
        T_ASSERTF(load(cases[i].file, &r, why, sizeof(why)) == -1, "%s accepted", cases[i].file);
        T_ASSERTF(strstr(why, cases[i].why) != NULL, "%s: reason \"%s\"", cases[i].file, why);
    }
}

static void test_key_mismatch(void)
{
    struct res_row r;
    char why[256];
    const char *v = "{\"type\":\"vehicle\",\"id\":\"a\"}";
    T_EQ_INT(res_parse(v, strlen(v), "vehicle", "b", &r, why, sizeof(why)), -1);
    T_ASSERT(strstr(why, "does not match") != NULL);
    T_EQ_INT(res_parse(v, strlen(v), "vehicle", "a", &r, why, sizeof(why)), 0);
    res_row_fini(&r);
    const char *nul = "{\"type\":\"vehicle\",\"id\":\"a\\u0000b\"}";
    T_EQ_INT(res_parse(nul, strlen(nul), NULL, NULL, &r, why, sizeof(why)), -1);
    const char *arr = "[1,2]";
    T_EQ_INT(res_parse(arr, strlen(arr), NULL, NULL, &r, why, sizeof(why)), -1);
    T_ASSERT(strstr(why, "not a resource") != NULL);
}

static void test_edges(void)
{
    static const struct {
        const char *json, *why; /* why NULL: accepted */
    } cases[] = {
        {"{\"type\":\"vehicle\",\"id\":\"a\",\"attributes\":{\"bearing\":1.5}}",
         "attributes.bearing: expected integer, got number"},
        {"{\"type\":\"vehicle\",\"id\":\"a\",\"attributes\":{\"current_stop_sequence\":"
         "99999999999999999999}}",
         "out of range"},
        {"{\"type\":\"vehicle\",\"id\":\"a\",\"attributes\":[]}", "attributes: expected object"},
        {"{\"type\":\"vehicle\",\"id\":\"a\",\"attributes\":{\"label\":\"x\\u0000y\"}}", "\\u0000"},
        {"{\"type\":\"vehicle\",\"id\":\"a\",\"attributes\":{\"label\":\"\\\\u0000\"}}", NULL},
        {"{\"type\":\"vehicle\",\"id\":\"a\",\"attributes\":{\"speed\":1,\"speed\":\"x\"}}",
         "attributes.speed: expected number, got string"},
        {"{\"type\":\"vehicle\",\"id\":\"a\",\"relationships\":{\"route\":\"Red\"}}",
         "relationships.route: expected object, got string"},
        {"{\"type\":\"vehicle\",\"id\":\"a\",\"relationships\":{\"route\":{\"data\":null}},"
         "\"attributes\":null}",
         NULL},
        {"{\"ty\\u0070e\":\"vehicle\",\"id\":\"a\\\"b\"}", NULL},
        {"{\"type\":\"vehicle\",\"id\":\"\"}", "missing field: \"id\""},
        {"{\"type\":\"vehicle\",\"id\":7}", "missing field: \"id\""},
        {"{\"type\":\"vehicle\",\"id\":\"a\"} x", "malformed JSON"},
        {"\"vehicle\"", "not a resource: a JSON string"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct res_row r;
        char why[256] = "";
        int rc = res_parse(cases[i].json, strlen(cases[i].json), NULL, NULL, &r, why, sizeof(why));
        if (!cases[i].why) {
            T_ASSERTF(rc == 0, "%s refused: %s", cases[i].json, why);
            res_row_fini(&r);
        } else {
            T_ASSERTF(rc == -1 && strstr(why, cases[i].why), "%s: rc %d, reason \"%s\"",
                      cases[i].json, rc, why);
        }
    }
    struct res_row r;
    char why[256];
    const char *esc = "{\"ty\\u0070e\":\"vehicle\",\"id\":\"a\\\"b\"}";
    T_ASSERT(res_parse(esc, strlen(esc), NULL, NULL, &r, why, sizeof(why)) == 0);
    T_EQ_STR(r.id, "a\"b");
    T_EQ_STR(r.type->current, "vehicles");
    res_row_fini(&r);
}

static void test_ts(void)
{
    static const struct {
        const char *s;
        long long us; /* -1: refused */
    } cases[] = {
        {"1970-01-01T00:00:00Z", 0},
        {"2026-12-04T14:03:11-05:00", 1796410991000000LL},
        {"2026-12-04T19:03:11.123456Z", 1796410991123456LL},
        {"2026-12-04T19:03:11.1+00:00", 1796410991100000LL},
        {"2024-02-29T00:00:00+0130", 1709159400000000LL},
        {"2023-02-29T00:00:00Z", -1},
        {"2026-12-04T14:03:11", -1},
        {"2026-12-04T14:03:11-05:00x", -1},
        {"2026-12-04T24:03:11Z", -1},
        {"2026-12-04T14:03:11.Z", -1},
        {"", -1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t us = 0;
        int rc = res_parse_ts(cases[i].s, strlen(cases[i].s), &us, NULL, 0);
        if (cases[i].us < 0)
            T_ASSERTF(rc == -1, "%s accepted", cases[i].s);
        else
            T_ASSERTF(rc == 0 && us == cases[i].us, "%s: rc %d, %lld", cases[i].s, rc,
                      (long long)us);
    }
    char buf[40];
    pg_sink_format_ts(1796410991123456LL, buf);
    T_EQ_STR(buf, "2026-12-04 19:03:11.123456+00");
    pg_sink_format_ts(-1, buf);
    T_EQ_STR(buf, "1969-12-31 23:59:59.999999+00");
}

static void test_key_split(void)
{
    const char *t, *id;
    size_t tl, il;
    T_EQ_INT(res_split_key("vehicle:y1:x", 12, &t, &tl, &id, &il), 0);
    T_EQ_MEM(t, tl, "vehicle", 7);
    T_EQ_MEM(id, il, "y1:x", 4);
    T_EQ_INT(res_split_key(":y1", 3, &t, &tl, &id, &il), -1);
    T_EQ_INT(res_split_key("vehicle:", 8, &t, &tl, &id, &il), -1);
    T_EQ_INT(res_split_key("vehicle", 7, &t, &tl, &id, &il), -1);
}

static void test_enrich_vehicle(void)
{
    struct enrich_vehicle_in in = {0};
    struct enrich_vehicle_out out;
    /* No previous position: only lag and local time. */
    in.received_at_us = 1796410993500000LL; /* 2.5 s after updated_at */
    in.cur = (struct enrich_pos){1, 1, 42.0, -71.0, 1, 1796410991000000LL};
    enrich_vehicle(&in, &out);
    T_EQ_INT(out.has_ingest_lag, 1);
    T_EQ_INT(out.ingest_lag_ms, 2500);
    T_EQ_INT(out.has_prev, 0);
    T_EQ_INT(out.has_implied_speed, 0);
    T_EQ_INT(out.local_hour, 14); /* 19:03Z in December = 14:03 EST */
    T_EQ_INT(out.local_dow, 5);   /* a Friday */
    char d[16];
    enrich_date_str(out.service_date, d);
    T_EQ_STR(d, "2026-12-04");
    /* 0.01 degree of latitude north in 20 s: 1111.95 m (R = 6371008.8). */
    in.prev = (struct enrich_pos){1, 1, 41.99, -71.0, 1, 1796410971000000LL};
    enrich_vehicle(&in, &out);
    T_EQ_INT(out.has_prev, 1);
    T_ASSERT(fabs(out.prev_gap_s - 20.0) < 1e-9);
    T_ASSERTF(fabs(out.prev_distance_m - 1111.9508) < 0.01, "%f", out.prev_distance_m);
    T_ASSERT(fabs(out.implied_speed_mps - out.prev_distance_m / 20.0) < 1e-9);
    /* The same report again: no gap, no speed (NULL, not zero). */
    in.prev = in.cur;
    enrich_vehicle(&in, &out);
    T_EQ_INT(out.has_prev, 0);
    T_EQ_INT(out.has_implied_speed, 0);
}

static void test_service_date(void)
{
    static const struct {
        long long utc_s;
        const char *date;
        int hour;
    } cases[] = {
        /* 2026-12-05 00:47 EST (05:47Z): still the service day of Dec 4 */
        {1796449620, "2026-12-04", 0},
        /* 2026-12-05 02:59:59 EST: still Dec 4 */
        {1796457599, "2026-12-04", 2},
        /* 2026-12-05 03:00 EST: Dec 5 */
        {1796457600, "2026-12-05", 3},
        /* 2019-03-10 01:59:59 EST (06:59:59Z), DST starts at 07:00Z */
        {1552201199, "2019-03-09", 1},
        /* 2019-03-10 07:00Z = 03:00 EDT */
        {1552201200, "2019-03-10", 3},
        /* 2026-11-01 05:59:59Z = 01:59:59 EDT; 06:00Z = 01:00 EST */
        {1793512799, "2026-10-31", 1},
        {1793512800, "2026-10-31", 1},
        /* July: EDT, 12:00Z = 08:00 */
        {1783080000, "2026-07-03", 8},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int32_t sd;
        int h, dow;
        char d[16];
        enrich_ny_local(cases[i].utc_s * 1000000, &sd, &h, &dow);
        enrich_date_str(sd, d);
        T_ASSERTF(!strcmp(d, cases[i].date) && h == cases[i].hour, "%lld: %s %d", cases[i].utc_s, d,
                  h);
    }
    T_EQ_INT(enrich_ny_offset_s(1552201199), -18000);
    T_EQ_INT(enrich_ny_offset_s(1552201200), -14400);
}

static void test_enrich_prediction(void)
{
    struct enrich_prediction_in in = {0};
    struct enrich_prediction_out out;
    in.received_at_us = 1000000000LL;
    enrich_prediction(&in, &out);
    T_EQ_INT(out.has_lead_time, 0);
    T_EQ_INT(out.has_drift, 0);
    in.has_predicted = 1;
    in.predicted_us = 1300000000LL; /* 300 s ahead */
    enrich_prediction(&in, &out);
    T_ASSERT(out.has_lead_time && fabs(out.lead_time_s - 300) < 1e-9);
    T_EQ_INT(out.has_drift, 0);
    in.has_prev_predicted = 1;
    in.prev_predicted_us = 1270000000LL; /* revised 30 s later */
    in.has_scheduled = 1;
    in.scheduled_us = 1240000000LL;
    enrich_prediction(&in, &out);
    T_ASSERT(out.has_drift && fabs(out.drift_s - 30) < 1e-9);
    T_ASSERT(out.has_schedule_delay && fabs(out.schedule_delay_s - 60) < 1e-9);
}

int main(void)
{
    T_RUN(test_vehicle);
    T_RUN(test_vehicle_old_payload);
    T_RUN(test_every_type);
    T_RUN(test_details);
    T_RUN(test_unknown_type);
    T_RUN(test_refused);
    T_RUN(test_key_mismatch);
    T_RUN(test_edges);
    T_RUN(test_ts);
    T_RUN(test_key_split);
    T_RUN(test_enrich_vehicle);
    T_RUN(test_service_date);
    T_RUN(test_enrich_prediction);
    free(loaded);
    return T_DONE();
}
