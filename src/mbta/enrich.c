/*
 * enrich: see enrich.h. Civil-date arithmetic after Howard Hinnant's
 * "chrono-compatible low-level date algorithms" (public domain), written
 * again here for int64 days.
 */
#include "mbta/enrich.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static int64_t floordiv(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = floordiv(y, 400);
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = floordiv(z, 146097);
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

/* 0 = Sunday. 1970-01-01 was a Thursday. */
static int weekday(int64_t days)
{
    return (int)(((days % 7) + 7 + 4) % 7);
}

/* Day number of the n-th Sunday (n >= 1) of month m of year y. */
static int64_t nth_sunday(int64_t y, int m, int n)
{
    int64_t first = days_from_civil(y, m, 1);
    int64_t sunday = first + (7 - weekday(first)) % 7;
    return sunday + 7 * (n - 1);
}

int enrich_ny_offset_s(int64_t utc_s)
{
    int64_t y;
    int m, d;
    civil_from_days(floordiv(utc_s, 86400), &y, &m, &d);
    /* DST from 2:00 EST (07:00 UTC) on the second Sunday of March to 2:00
     * EDT (06:00 UTC) on the first Sunday of November. */
    int64_t start = nth_sunday(y, 3, 2) * 86400 + 7 * 3600;
    int64_t end = nth_sunday(y, 11, 1) * 86400 + 6 * 3600;
    return utc_s >= start && utc_s < end ? -4 * 3600 : -5 * 3600;
}

void enrich_ny_local(int64_t utc_us, int32_t *service_date, int *hour, int *dow)
{
    int64_t s = floordiv(utc_us, 1000000);
    int64_t local = s + enrich_ny_offset_s(s);
    int64_t day = floordiv(local, 86400);
    *hour = (int)((local - day * 86400) / 3600);
    *dow = weekday(day);
    *service_date = (int32_t)floordiv(local - 3 * 3600, 86400);
}

void enrich_date_str(int32_t days, char *buf)
{
    int64_t y;
    int m, d;
    civil_from_days(days, &y, &m, &d);
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
        out->ingest_lag_ms = floordiv(in->received_at_us - c->updated_at_us, 1000);
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
