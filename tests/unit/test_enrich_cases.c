/*
 * test_enrich_cases: hand-computed expectations for src/mbta/enrich.c
 * (issue 7), next to the consume engineer's cases in test_resource.c:
 * a vehicle moving a known distance in a known time, a prediction revised
 * by a known amount, trips crossing midnight and the year (service date),
 * both DST transitions, and every way a value is NULL (has_* == 0) rather
 * than zero.
 *
 * Distances: haversine with R = 6371008.8 m, so 0.009 degree along a
 * meridian is R * 0.009 * pi / 180 = 1000.7557 m and one degree along the
 * equator is 111195.0802 m. Epoch seconds were computed independently
 * (Python's datetime) and are written out with their UTC and New York
 * local times.
 */
#include <math.h>
#include <stdint.h>

#include "mbta/enrich.h"
#include "t.h"

#define US 1000000LL

static struct enrich_pos pos(double lat, double lon, long long t_s)
{
    struct enrich_pos p = {1, 1, lat, lon, 1, (int64_t)(t_s * US)};
    return p;
}

static void test_known_distance_and_speed(void)
{
    static const struct {
        double lat0, lon0, lat1, lon1;
        long long dt_s;
        double dist_m, speed_mps;
    } cases[] = {
        /* 0.009 degree north along a meridian in 60 s */
        {42.352, -71.055, 42.361, -71.055, 60, 1000.7557, 16.679262},
        /* southbound: same distance, same (unsigned) speed */
        {42.361, -71.055, 42.352, -71.055, 60, 1000.7557, 16.679262},
        /* one degree east along the equator in 3600 s */
        {0, 10, 0, 11, 3600, 111195.0802, 30.887522},
        /* did not move in 5 s: a real zero, not a NULL */
        {42.352, -71.055, 42.352, -71.055, 5, 0, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct enrich_vehicle_in in = {0};
        struct enrich_vehicle_out out;
        in.prev = pos(cases[i].lat0, cases[i].lon0, 1796410991);
        in.cur = pos(cases[i].lat1, cases[i].lon1, 1796410991 + cases[i].dt_s);
        in.received_at_us = in.cur.updated_at_us + 750000; /* 0.75 s later */
        enrich_vehicle(&in, &out);
        T_ASSERTF(out.has_prev && out.has_implied_speed, "case %zu: no prev", i);
        T_ASSERTF(fabs(out.prev_gap_s - (double)cases[i].dt_s) < 1e-9, "case %zu: gap %f", i,
                  out.prev_gap_s);
        T_ASSERTF(fabs(out.prev_distance_m - cases[i].dist_m) < 1e-3, "case %zu: %f m", i,
                  out.prev_distance_m);
        T_ASSERTF(fabs(out.implied_speed_mps - cases[i].speed_mps) < 1e-5, "case %zu: %f m/s", i,
                  out.implied_speed_mps);
        T_EQ_INT(out.has_ingest_lag, 1);
        T_EQ_INT(out.ingest_lag_ms, 750);
    }
}

/* Every way the previous position is missing or unusable gives NULLs (the
 * has_* flags 0), never zeros; the values that do not need it stay. */
static void test_no_previous_position(void)
{
    struct enrich_vehicle_in in = {0};
    struct enrich_vehicle_out out;
    in.cur = pos(42.36, -71.06, 1796410991);
    in.received_at_us = in.cur.updated_at_us + 2 * US;
    for (int k = 0; k < 5; k++) {
        switch (k) {
        case 0: /* first sighting: prev all zero */
            memset(&in.prev, 0, sizeof(in.prev));
            break;
        case 1: /* previous row without coordinates */
            in.prev = pos(0, 0, 1796410981);
            in.prev.has_latlon = 0;
            break;
        case 2: /* previous row without updated_at */
            in.prev = pos(42.35, -71.06, 0);
            in.prev.has_updated_at = 0;
            break;
        case 3: /* an older report arriving after a newer one */
            in.prev = pos(42.35, -71.06, 1796410991 + 10);
            break;
        case 4: /* the same report again */
            in.prev = in.cur;
            break;
        }
        enrich_vehicle(&in, &out);
        T_ASSERTF(!out.has_prev && !out.has_implied_speed, "case %d: prev %d speed %d", k,
                  out.has_prev, out.has_implied_speed);
        T_ASSERTF(out.prev_gap_s == 0 && out.prev_distance_m == 0, "case %d", k);
        T_EQ_INT(out.has_ingest_lag, 1);
        T_EQ_INT(out.ingest_lag_ms, 2000);
        T_EQ_INT(out.has_local, 1);
        T_EQ_INT(out.has_route_type, 0);
    }
    /* The current report itself without coordinates: no distance either. */
    in.prev = pos(42.35, -71.06, 1796410981);
    in.cur.has_latlon = 0;
    enrich_vehicle(&in, &out);
    T_EQ_INT(out.has_prev, 0);
    /* Without updated_at: no lag; local time falls back to received_at. */
    in.cur = pos(42.36, -71.06, 0);
    in.cur.has_updated_at = 0;
    in.received_at_us = 1796448600LL * US; /* 2026-12-05 05:30Z = 00:30 EST */
    enrich_vehicle(&in, &out);
    T_EQ_INT(out.has_ingest_lag, 0);
    T_EQ_INT(out.has_prev, 0);
    T_EQ_INT(out.local_hour, 0);
    /* A route type is passed through only when known. */
    in.has_route_type = 1;
    in.route_type = 0;
    enrich_vehicle(&in, &out);
    T_EQ_INT(out.has_route_type, 1);
    T_EQ_INT(out.route_type, 0);
}

/* A report received before its own updated_at (clock skew at the source)
 * keeps its sign: the lag is a measurement, not clamped. */
static void test_negative_lag(void)
{
    struct enrich_vehicle_in in = {0};
    struct enrich_vehicle_out out;
    in.cur = pos(42.36, -71.06, 1796410991);
    in.received_at_us = in.cur.updated_at_us - 2500000;
    enrich_vehicle(&in, &out);
    T_EQ_INT(out.has_ingest_lag, 1);
    T_EQ_INT(out.ingest_lag_ms, -2500);
}

static void test_service_date_cases(void)
{
    static const struct {
        long long utc_s;
        const char *what, *date;
        int hour, dow;
    } cases[] = {
        {1796410991, "2026-12-04 19:03:11Z = 14:03 EST Fri", "2026-12-04", 14, 5},
        /* a trip crossing midnight: after 00:00 local it is still Friday's service */
        {1796448600, "2026-12-05 05:30Z = 00:30 EST Sat", "2026-12-04", 0, 6},
        {1796457599, "2026-12-05 07:59:59Z = 02:59:59 EST Sat", "2026-12-04", 2, 6},
        {1796457600, "2026-12-05 08:00Z = 03:00 EST Sat", "2026-12-05", 3, 6},
        /* the year boundary */
        {1798779599, "2027-01-01 04:59:59Z = 2026-12-31 23:59:59 EST Thu", "2026-12-31", 23, 4},
        {1798781400, "2027-01-01 05:30Z = 00:30 EST Fri", "2026-12-31", 0, 5},
        /* DST starts 2026-03-08 07:00Z: 01:59:50 EST, then 03:00:10 EDT */
        {1772953190, "2026-03-08 06:59:50Z = 01:59:50 EST Sun", "2026-03-07", 1, 0},
        {1772953210, "2026-03-08 07:00:10Z = 03:00:10 EDT Sun", "2026-03-08", 3, 0},
        /* DST ends 2026-11-01 06:00Z: 01:30 happens twice, both Saturday's service */
        {1793511000, "2026-11-01 05:30Z = 01:30 EDT Sun", "2026-10-31", 1, 0},
        {1793514600, "2026-11-01 06:30Z = 01:30 EST Sun", "2026-10-31", 1, 0},
        {1793519999, "2026-11-01 07:59:59Z = 02:59:59 EST Sun", "2026-10-31", 2, 0},
        {1793520000, "2026-11-01 08:00Z = 03:00 EST Sun", "2026-11-01", 3, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct enrich_vehicle_in in = {0};
        struct enrich_vehicle_out out;
        char d[16];
        in.cur = pos(42.36, -71.06, cases[i].utc_s);
        in.received_at_us = in.cur.updated_at_us;
        enrich_vehicle(&in, &out);
        enrich_date_str(out.service_date, d);
        T_ASSERTF(out.has_local && !strcmp(d, cases[i].date) && out.local_hour == cases[i].hour &&
                      out.local_dow == cases[i].dow,
                  "%s: got %s hour %d dow %d", cases[i].what, d, out.local_hour, out.local_dow);
    }
}

/* Across the spring-forward hour the gap is real elapsed time (20 s), not
 * the local clock difference (1 h 0 min 20 s). */
static void test_gap_across_dst(void)
{
    struct enrich_vehicle_in in = {0};
    struct enrich_vehicle_out out;
    in.prev = pos(42.352, -71.055, 1772953190);
    in.cur = pos(42.355, -71.055, 1772953210);
    in.received_at_us = in.cur.updated_at_us;
    enrich_vehicle(&in, &out);
    T_ASSERT(out.has_prev && fabs(out.prev_gap_s - 20) < 1e-9);
    T_ASSERTF(fabs(out.implied_speed_mps - 1000.7557 / 3 / 20) < 1e-4, "%f", out.implied_speed_mps);
}

static void test_prediction_revisions(void)
{
    /* received 14:00:00 EST (19:00:00Z = 1796410800) */
    const long long rx = 1796410800;
    static const struct {
        long long pred, prev, sched; /* seconds after rx; prev/sched 0x7fff = unknown */
        double lead, drift, delay;
    } cases[] = {
        {300, 0x7fff, 0x7fff, 300, 0, 0}, /* first version: no drift */
        {390, 300, 0x7fff, 390, 90, 0},   /* revised 90 s later */
        {345, 390, 240, 345, -45, 105},   /* revised 45 s earlier; 105 s behind schedule */
        {-20, 10, -20, -20, -30, 0},      /* already due: negative lead; on schedule (a real 0) */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct enrich_prediction_in in = {0};
        struct enrich_prediction_out out;
        in.received_at_us = rx * US;
        in.has_predicted = 1;
        in.predicted_us = (rx + cases[i].pred) * US;
        in.has_prev_predicted = cases[i].prev != 0x7fff;
        in.prev_predicted_us = (rx + cases[i].prev) * US;
        in.has_scheduled = cases[i].sched != 0x7fff;
        in.scheduled_us = (rx + cases[i].sched) * US;
        enrich_prediction(&in, &out);
        T_ASSERTF(out.has_lead_time && fabs(out.lead_time_s - cases[i].lead) < 1e-9,
                  "case %zu: lead %f", i, out.lead_time_s);
        T_ASSERTF(out.has_drift == in.has_prev_predicted &&
                      (!out.has_drift || fabs(out.drift_s - cases[i].drift) < 1e-9),
                  "case %zu: drift %d %f", i, out.has_drift, out.drift_s);
        T_ASSERTF(
            out.has_schedule_delay == in.has_scheduled &&
                (!out.has_schedule_delay || fabs(out.schedule_delay_s - cases[i].delay) < 1e-9),
            "case %zu: delay %d %f", i, out.has_schedule_delay, out.schedule_delay_s);
    }
    /* No predicted time at all (a cancelled stop): everything NULL, even
     * with a previous value and a schedule at hand. */
    struct enrich_prediction_in in = {0};
    struct enrich_prediction_out out;
    in.received_at_us = rx * US;
    in.has_prev_predicted = 1;
    in.prev_predicted_us = (rx + 60) * US;
    in.has_scheduled = 1;
    in.scheduled_us = (rx + 60) * US;
    enrich_prediction(&in, &out);
    T_ASSERT(!out.has_lead_time && !out.has_drift && !out.has_schedule_delay);
    /* Sub-second times keep their fraction. */
    in.has_predicted = 1;
    in.predicted_us = rx * US + 1500000;
    in.has_prev_predicted = 0;
    in.has_scheduled = 0;
    enrich_prediction(&in, &out);
    T_ASSERT(out.has_lead_time && fabs(out.lead_time_s - 1.5) < 1e-9);
}

int main(void)
{
    T_RUN(test_known_distance_and_speed);
    T_RUN(test_no_previous_position);
    T_RUN(test_negative_lag);
    T_RUN(test_service_date_cases);
    T_RUN(test_gap_across_dst);
    T_RUN(test_prediction_revisions);
    return T_DONE();
}
