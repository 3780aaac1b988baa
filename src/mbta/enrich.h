/*
 * enrich: the per-event features of issue 7, computed from the current
 * event's typed values and the previous committed state of the same entity.
 *
 * Pure: no socket, no clock, no global, no time zone database. America/New_York
 * is computed in code with the US DST rules in force since 2007 (second
 * Sunday of March 02:00 local to first Sunday of November 02:00 local), so
 * replaying a topic gives the same values on any machine.
 *
 * Every output has a `has_*` flag: 0 means "not computable" and the sink
 * writes SQL NULL (never a zero standing in for "unknown").
 *
 * The caller owns where `prev` comes from: the entity's row in the current
 * table as committed before this event (see pg/sink.c), so that a replay
 * from offset 0 into an empty schema gives identical rows.
 */
#ifndef MBTA_ENRICH_H
#define MBTA_ENRICH_H

#include <stdint.h>

/* A vehicle's position as stored in its current row. */
struct enrich_pos {
    int present; /* 0: no previous row (first sighting, or removed) */
    int has_latlon;
    double lat, lon;
    int has_updated_at;
    int64_t updated_at_us;
};

struct enrich_vehicle_in {
    int64_t received_at_us;
    struct enrich_pos cur;
    struct enrich_pos prev;
    int has_route_type; /* the route's GTFS type, when the sink knows it */
    int route_type;
};

struct enrich_vehicle_out {
    int has_ingest_lag;
    int64_t ingest_lag_ms;
    int has_prev; /* prev_gap_s and prev_distance_m */
    double prev_gap_s, prev_distance_m;
    int has_implied_speed;
    double implied_speed_mps;
    int has_local;        /* service_date, local_hour, local_dow */
    int32_t service_date; /* days since 1970-01-01 */
    int local_hour;       /* 0-23 */
    int local_dow;        /* 0 = Sunday */
    int has_route_type;
    int route_type;
};

struct enrich_prediction_in {
    int64_t received_at_us;
    int has_predicted; /* arrival_time, else departure_time */
    int64_t predicted_us;
    int has_prev_predicted; /* the same prediction id's previous committed value */
    int64_t prev_predicted_us;
    int has_scheduled; /* the schedule's time, when the sink knows it */
    int64_t scheduled_us;
};

struct enrich_prediction_out {
    int has_lead_time;
    double lead_time_s;
    int has_drift;
    double drift_s;
    int has_schedule_delay;
    double schedule_delay_s;
};

void enrich_vehicle(const struct enrich_vehicle_in *in, struct enrich_vehicle_out *out);
void enrich_prediction(const struct enrich_prediction_in *in, struct enrich_prediction_out *out);

/* Great-circle distance in metres (haversine, mean Earth radius 6371008.8 m). */
double enrich_distance_m(double lat1, double lon1, double lat2, double lon2);

/* America/New_York's offset from UTC in seconds (-18000 or -14400) at t. */
int enrich_ny_offset_s(int64_t utc_s);

/*
 * The MBTA service date of an instant: the New York local date of (t - 3 h),
 * as days since 1970-01-01; also the local hour and day of week of t.
 */
void enrich_ny_local(int64_t utc_us, int32_t *service_date, int *hour, int *dow);

/* Formats days since 1970-01-01 as YYYY-MM-DD into buf (>= 16 bytes). */
void enrich_date_str(int32_t days, char *buf);

#endif
