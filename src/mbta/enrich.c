/*
 * enrich: see enrich.h. Calendar arithmetic and New York's offset come from
 * util/civil, shared with the simulator so that both agree.
 */
#include "mbta/enrich.h"
#include "util/civil.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

int enrich_ny_offset_s(int64_t utc_s)
{
    return civil_ny_offset_s(utc_s);
}

void enrich_ny_local(int64_t utc_us, int32_t *service_date, int *hour, int *dow)
{
    int64_t s = civil_floordiv(utc_us, 1000000);
    int64_t local = s + enrich_ny_offset_s(s);
    int64_t day = civil_floordiv(local, 86400);
    *hour = (int)((local - day * 86400) / 3600);
    *dow = civil_weekday(day);
    *service_date = (int32_t)civil_floordiv(local - 3 * 3600, 86400);
}

void enrich_date_str(int32_t days, char *buf)
{
    int64_t y;
    int m, d;
    civil_date_from_days(days, &y, &m, &d);
    snprintf(buf, 16, "%04d-%02d-%02d", (int)(y % 10000), m, d);
}

double enrich_distance_m(double lat1, double lon1, double lat2, double lon2)
{
    const double r = 6371008.8, rad = M_PI / 180.0;
    double dlat = (lat2 - lat1) * rad, dlon = (lon2 - lon1) * rad;
    double a = sin(dlat / 2) * sin(dlat / 2) +
               cos(lat1 * rad) * cos(lat2 * rad) * sin(dlon / 2) * sin(dlon / 2);
    if (a > 1)
        a = 1;
    return 2 * r * asin(sqrt(a));
}

void enrich_vehicle(const struct enrich_vehicle_in *in, struct enrich_vehicle_out *out)
{
    memset(out, 0, sizeof(*out));
    const struct enrich_pos *c = &in->cur, *p = &in->prev;
    if (c->has_updated_at) {
        out->has_ingest_lag = 1;
        out->ingest_lag_ms = civil_floordiv(in->received_at_us - c->updated_at_us, 1000);
    }
    /* Local time of the position report itself; the receive time only when
     * the report has none. */
    int64_t t = c->has_updated_at ? c->updated_at_us : in->received_at_us;
    out->has_local = 1;
    enrich_ny_local(t, &out->service_date, &out->local_hour, &out->local_dow);
    /* A "previous position" is an earlier report: the same or an older
     * updated_at (a resent or reordered report) gives no gap to speak of. */
    if (p->present && p->has_latlon && p->has_updated_at && c->has_latlon && c->has_updated_at &&
        c->updated_at_us > p->updated_at_us) {
        out->has_prev = 1;
        out->prev_gap_s = (double)(c->updated_at_us - p->updated_at_us) / 1e6;
        out->prev_distance_m = enrich_distance_m(p->lat, p->lon, c->lat, c->lon);
        out->has_implied_speed = 1;
        out->implied_speed_mps = out->prev_distance_m / out->prev_gap_s;
    }
    if (in->has_route_type) {
        out->has_route_type = 1;
        out->route_type = in->route_type;
    }
}

void enrich_prediction(const struct enrich_prediction_in *in, struct enrich_prediction_out *out)
{
    memset(out, 0, sizeof(*out));
    if (!in->has_predicted)
        return;
    out->has_lead_time = 1;
    out->lead_time_s = (double)(in->predicted_us - in->received_at_us) / 1e6;
    if (in->has_prev_predicted) {
        out->has_drift = 1;
        out->drift_s = (double)(in->predicted_us - in->prev_predicted_us) / 1e6;
    }
    if (in->has_scheduled) {
        out->has_schedule_delay = 1;
        out->schedule_delay_s = (double)(in->predicted_us - in->scheduled_us) / 1e6;
    }
}
