/*
 * sim: see sim.h. The world model, in short:
 *
 * - Six routes (two light rail, two subway, one commuter rail, one bus),
 *   each a straight-ish line of stops between two real Boston endpoints.
 * - A fixed pool of vehicles per route. A vehicle runs a trip from one end
 *   to the other (direction 0 then 1 then 0...), dwelling at each stop, then
 *   lays over out of service (the vehicle, its trip, schedules and
 *   predictions are removed) and comes back on a new trip.
 * - Each trip has a lateness factor, and vehicles sometimes hold between
 *   stops, so predictions (computed from nominal speeds) drift and have
 *   real errors against the recorded arrivals.
 *
 * Slot layout: routes, stops, then per vehicle [vehicle, trip,
 * predictions x MAXSTOPS, schedules x MAXSTOPS], then alerts.
 */
#include "serve/sim.h"
#include "util/civil.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXSTOPS   12
#define NALERTS    4
#define WARMUP_S   900
#define PER_VEH    (2 + 2 * MAXSTOPS)
#define INCOMING_M 250.0
#define MAXARR     256

struct route_def {
    const char *id;
    int type;
    const char *long_name, *short_name, *color, *text_color, *desc, *fare_class;
    const char *dir_names[2];
    int nveh;
    double speed;      /* nominal cruising speed, m/s */
    int dwell;         /* nominal dwell, s */
    double a[2], b[2]; /* endpoints lat, lon */
    int stop_base;
    const char *prefix; /* vehicle id prefix */
    int nstops;
    const char *stops[MAXSTOPS];
};

static const struct route_def routes[] = {
    {"Green-B",
     0,
     "Green Line B",
     "B",
     "00843D",
     "FFFFFF",
     "Rapid Transit",
     "Light Rail",
     {"West", "East"},
     4,
     8.0,
     20,
     {42.3597, -71.0592},
     {42.3400, -71.1669},
     70196,
     "G-1",
     12,
     {"Government Center", "Park Street", "Boylston", "Arlington", "Copley",
      "Hynes Convention Center", "Kenmore", "Boston University East", "Boston University Central",
      "Babcock Street", "Harvard Avenue", "Boston College"}},
    {"Mattapan",
     0,
     "Mattapan Trolley",
     "",
     "DA291C",
     "FFFFFF",
     "Rapid Transit",
     "Light Rail",
     {"Outbound", "Inbound"},
     2,
     9.0,
     15,
     {42.2846, -71.0637},
     {42.2676, -71.0924},
     70261,
     "G-2",
     8,
     {"Ashmont", "Cedar Grove", "Butler", "Milton", "Central Avenue", "Valley Road", "Capen Street",
      "Mattapan"}},
    {"Red",
     1,
     "Red Line",
     "",
     "DA291C",
     "FFFFFF",
     "Rapid Transit",
     "Rapid Transit",
     {"South", "North"},
     5,
     14.0,
     30,
     {42.3954, -71.1425},
     {42.3302, -71.0577},
     70061,
     "R-54",
     12,
     {"Alewife", "Davis", "Porter", "Harvard", "Central", "Kendall/MIT", "Charles/MGH",
      "Park Street", "Downtown Crossing", "South Station", "Broadway", "Andrew"}},
    {"Orange",
     1,
     "Orange Line",
     "",
     "ED8B00",
     "FFFFFF",
     "Rapid Transit",
     "Rapid Transit",
     {"South", "North"},
     4,
     13.0,
     30,
     {42.4367, -71.0711},
     {42.3474, -71.0755},
     70036,
     "O-54",
     12,
     {"Oak Grove", "Malden Center", "Wellington", "Assembly", "Sullivan Square",
      "Community College", "North Station", "Haymarket", "State", "Downtown Crossing", "Chinatown",
      "Back Bay"}},
    {"CR-Fitchburg",
     2,
     "Fitchburg Line",
     "",
     "80276C",
     "FFFFFF",
     "Regional Rail",
     "Commuter Rail",
     {"Outbound", "Inbound"},
     2,
     22.0,
     45,
     {42.3656, -71.0613},
     {42.4134, -71.3253},
     0,
     "",
     8,
     {"North Station", "Porter", "Belmont", "Waverley", "Waltham", "Brandeis/Roberts",
      "Kendal Green", "Lincoln"}},
    {"1",
     3,
     "Harvard Square - Nubian Station",
     "1",
     "FFC72C",
     "000000",
     "Key Bus",
     "Local Bus",
     {"Outbound", "Inbound"},
     4,
     6.0,
     10,
     {42.3728, -71.1189},
     {42.3295, -71.0838},
     2160,
     "y",
     12,
     {"Harvard", "Massachusetts Ave @ Holyoke St", "Massachusetts Ave @ Bigelow St",
      "Central Square", "Massachusetts Ave @ Sidney St", "MIT @ Mass Ave",
      "Massachusetts Ave @ Beacon St", "Hynes Station", "Massachusetts Ave Station",
      "Massachusetts Ave @ Columbus Ave", "Melnea Cass Blvd @ Washington St", "Nubian"}},
};
#define NROUTES ((int)(sizeof(routes) / sizeof(routes[0])))

enum vstatus { V_IN_TRANSIT, V_INCOMING, V_STOPPED };

static const char *const occupancy[] = {"MANY_SEATS_AVAILABLE", "FEW_SEATS_AVAILABLE",
                                        "STANDING_ROOM_ONLY", "CRUSHED_STANDING_ROOM_ONLY", "FULL"};

struct stop_geo {
    double lat, lon, pos; /* pos: meters from stop 0 along the line */
    int route, idx;
};

struct veh {
    int route, alive, dir, k; /* k: current/next stop in direction order */
    enum vstatus st;
    double pos;         /* meters from the direction's first stop */
    double speed, late; /* speed m/s; late: trip lateness factor */
    int dwell, layover, hold;
    int speed_null, occ, bearing;
    int64_t trip_no, start_s, updated_s;
    int64_t sched[MAXSTOPS]; /* scheduled arrival, direction order */
    /* predictions as of the last refresh (every 10 s), so a rendering only
     * changes when the version does */
    int64_t parr[MAXSTOPS], pdep[MAXSTOPS];
    signed char pstat[MAXSTOPS], pterm[MAXSTOPS];
    int64_t pat[MAXSTOPS]; /* when each was refreshed */
    int ncars;
};

struct alert {
    int alive, route, stop, effect, updates;
    int64_t created_s, updated_s, end_s, no;
};

struct sim {
    uint64_t rng;
    int64_t now;
    int nstops;
    struct stop_geo *geo; /* nstops */
    int route_first_stop[8];
    double route_len[8];
    struct veh *veh;
    int nveh;
    struct alert alerts[NALERTS];
    int64_t next_alert_no, next_trip_no;
    struct sim_ent *ent;
    size_t nent;
    size_t veh_base, alert_base;
    struct sim_arrival arr[MAXARR];
    size_t narr;
};

/* snprintf that truncates quietly: ids and names here are short by construction. */
__attribute__((format(printf, 3, 4))) static void fmt_s(char *dst, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, n, fmt, ap);
    va_end(ap);
}

/* ---- time ---------------------------------------------------------------------------------- */

/* Calendar arithmetic and New York's offset live in util/civil. */
int sim_ny_offset_min(int64_t unix_s)
{
    return civil_ny_offset_s(unix_s) / 60;
}

void sim_format_time(int64_t unix_s, char out[32])
{
    int off = sim_ny_offset_min(unix_s);
    int64_t local = unix_s + off * 60;
    int64_t days = civil_floordiv(local, 86400), sec = local - days * 86400;
    int64_t y;
    int m, d;
    civil_date_from_days(days, &y, &m, &d);
    int aoff = off < 0 ? -off : off;
    fmt_s(out, 32, "%04d-%02d-%02dT%02d:%02d:%02d%c%02d:%02d", (int)y, m, d, (int)(sec / 3600),
          (int)(sec / 60 % 60), (int)(sec % 60), off < 0 ? '-' : '+', aoff / 60, aoff % 60);
}

/* util/civil's parser, the one resources use, with the offset optional;
 * whole seconds, the fraction dropped (floor: instants before 1970 too). */
int sim_parse_time(const char *str, int64_t *unix_s, char *errstr, size_t errsz)
{
    int64_t us;
    if (!str)
        return -1;
    if (civil_parse_iso8601(str, strlen(str), CIVIL_ISO_OFFSET_OPTIONAL, &us, errstr, errsz))
        return -1;
    *unix_s = civil_floordiv(us, 1000000);
    return 0;
}

/* ---- helpers -------------------------------------------------------------------------------- */

static uint64_t rnd(struct sim *s)
{
    /* splitmix64: good enough, tiny, and the same everywhere */
    uint64_t z = (s->rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static int rnd_int(struct sim *s, int lo, int hi) /* [lo, hi] */
{
    return lo + (int)(rnd(s) % (uint64_t)(hi - lo + 1));
}

static double rnd_unit(struct sim *s) /* [0, 1) */
{
    return (double)(rnd(s) >> 11) / 9007199254740992.0;
}

static double dist_m(double lat1, double lon1, double lat2, double lon2)
{
    /* equirectangular: plenty for a few kilometres */
    double x = (lon2 - lon1) * M_PI / 180 * cos((lat1 + lat2) / 2 * M_PI / 180);
    double y = (lat2 - lat1) * M_PI / 180;
    return sqrt(x * x + y * y) * 6371000.0;
}

/* Stop index (route order) of direction-order index k. */
static int stop_of(const struct sim *s, const struct veh *v, int k)
{
    int n = routes[v->route].nstops;
    int idx = v->dir == 0 ? k : n - 1 - k;
    return s->route_first_stop[v->route] + idx;
}

/* Position along the direction of direction-order stop k. */
static double pos_of(const struct sim *s, const struct veh *v, int k)
{
    double p = s->geo[stop_of(s, v, k)].pos;
    return v->dir == 0 ? p : s->route_len[v->route] - p;
}

static size_t slot_veh(const struct sim *s, int v)
{
    return s->veh_base + (size_t)v * PER_VEH;
}

static void touch(struct sim *s, size_t slot)
{
    s->ent[slot].version++;
}

static void set_alive(struct sim *s, size_t slot, int alive)
{
    struct sim_ent *e = &s->ent[slot];
    if (alive && !e->alive)
        e->uid++;
    e->alive = alive;
    e->version++;
}

static void veh_ids(struct sim *s, int vi)
{
    struct veh *v = &s->veh[vi];
    size_t b = slot_veh(s, vi);
    char trip[24];
    fmt_s(trip, sizeof(trip), "%lld", (long long)v->trip_no);
    fmt_s(s->ent[b + 1].id, sizeof(s->ent[b + 1].id), "%s", trip);
    for (int k = 0; k < routes[v->route].nstops; k++) {
        int st = stop_of(s, v, k);
        fmt_s(s->ent[b + 2 + k].id, sizeof(s->ent[0].id), "prediction-%s-%s-%d", trip,
              s->ent[st].id, k + 1);
        fmt_s(s->ent[b + 2 + MAXSTOPS + k].id, sizeof(s->ent[0].id), "schedule-%s-%s-%d", trip,
              s->ent[st].id, k + 1);
        s->ent[b + 2 + k].stop = st;
        s->ent[b + 2 + k].schedule = (int)(b + 2 + MAXSTOPS + k);
        s->ent[b + 2 + MAXSTOPS + k].stop = st;
    }
}

static void predictions_refresh(struct sim *s, int vi);

static void veh_start_trip(struct sim *s, int vi)
{
    struct veh *v = &s->veh[vi];
    const struct route_def *rd = &routes[v->route];
    size_t b = slot_veh(s, vi);
    v->dir = !v->dir;
    v->k = 0;
    v->st = V_STOPPED;
    v->pos = 0;
    v->speed = 0;
    v->dwell = rd->dwell + rnd_int(s, 0, rd->dwell);
    v->late = -0.1 + 0.35 * rnd_unit(s);
    v->hold = 0;
    v->trip_no = s->next_trip_no++;
    v->start_s = s->now;
    v->occ = rnd_int(s, 0, 2);
    v->bearing = 0;
    /* the schedule: nominal running times from the planned departure */
    int64_t t = s->now + rd->dwell;
    v->sched[0] = s->now;
    for (int k = 1; k < rd->nstops; k++) {
        t += (int64_t)((pos_of(s, v, k) - pos_of(s, v, k - 1)) / rd->speed + 0.5);
        v->sched[k] = t;
        t += rd->dwell;
    }
    veh_ids(s, vi);
    s->ent[b].stop = stop_of(s, v, 0);
    set_alive(s, b, 1);
    set_alive(s, b + 1, 1);
    for (int k = 0; k < rd->nstops; k++) {
        set_alive(s, b + 2 + k, 1);
        set_alive(s, b + 2 + MAXSTOPS + k, 1);
    }
    v->alive = 1;
    v->updated_s = s->now;
    predictions_refresh(s, vi);
}

static void veh_end_trip(struct sim *s, int vi)
{
    struct veh *v = &s->veh[vi];
    size_t b = slot_veh(s, vi);
    for (size_t i = 0; i < PER_VEH; i++)
        if (s->ent[b + i].alive)
            set_alive(s, b + i, 0);
    v->alive = 0;
    v->layover = rnd_int(s, 60, 300);
}

static void record_arrival(struct sim *s, int vi)
{
    struct veh *v = &s->veh[vi];
    if (s->narr == MAXARR)
        return; /* the caller drains every step; this cannot fill in practice */
    struct sim_arrival *a = &s->arr[s->narr++];
    fmt_s(a->vehicle, sizeof(a->vehicle), "%s", s->ent[slot_veh(s, vi)].id);
    fmt_s(a->trip, sizeof(a->trip), "%lld", (long long)v->trip_no);
    fmt_s(a->stop, sizeof(a->stop), "%s", s->ent[stop_of(s, v, v->k)].id);
    fmt_s(a->route, sizeof(a->route), "%s", routes[v->route].id);
    a->stop_sequence = v->k + 1;
    a->arrived_s = s->now;
}

/* Leaves stop k: its prediction is passed and goes away. */
static void veh_depart(struct sim *s, int vi)
{
    struct veh *v = &s->veh[vi];
    size_t b = slot_veh(s, vi);
    if (s->ent[b + 2 + v->k].alive)
        set_alive(s, b + 2 + v->k, 0);
    if (v->k + 1 >= routes[v->route].nstops) {
        veh_end_trip(s, vi);
        return;
    }
    v->k++;
    v->st = V_IN_TRANSIT;
    v->speed = 0;
    if (rnd(s) % 12 == 0)
        v->hold = rnd_int(s, 20, 90); /* a signal problem ahead */
}

static void veh_step(struct sim *s, int vi)
{
    struct veh *v = &s->veh[vi];
    const struct route_def *rd = &routes[v->route];
    size_t b = slot_veh(s, vi);
    if (!v->alive) {
        if (--v->layover <= 0)
            veh_start_trip(s, vi);
        return;
    }
    int changed = 0;
    if (v->st == V_STOPPED) {
        if (--v->dwell <= 0) {
            veh_depart(s, vi);
            if (!v->alive)
                return;
            changed = 1;
        } else if ((s->now + vi) % 5 == 0) {
            changed = 1;
        }
    } else {
        double target = pos_of(s, v, v->k);
        double want = v->hold > 0 ? 0 : rd->speed / (1 + v->late) * (0.85 + 0.3 * rnd_unit(s));
        if (v->hold > 0)
            v->hold--;
        v->speed += (want - v->speed) * 0.5;
        if (v->speed < 0.05)
            v->speed = 0;
        v->pos += v->speed;
        if (v->pos >= target) {
            v->pos = target;
            v->st = V_STOPPED;
            v->speed = 0;
            v->dwell = rd->dwell + rnd_int(s, -rd->dwell / 3, rd->dwell);
            if (rnd(s) % 3 == 0)
                v->occ = rnd_int(s, 0, 4);
            record_arrival(s, vi);
        } else if (target - v->pos < INCOMING_M) {
            v->st = V_INCOMING;
        }
        changed = 1;
    }
    if (changed) {
        v->updated_s = s->now;
        s->ent[b].stop = stop_of(s, v, v->k);
        touch(s, b);
    }
}

static double veh_lat_lon(const struct sim *s, const struct veh *v, double *lon)
{
    int k = v->k;
    const struct stop_geo *to = &s->geo[stop_of(s, v, k)];
    if (v->st == V_STOPPED || k == 0) {
        *lon = to->lon;
        return to->lat;
    }
    const struct stop_geo *from = &s->geo[stop_of(s, v, k - 1)];
    double p0 = pos_of(s, v, k - 1), p1 = pos_of(s, v, k);
    double f = p1 > p0 ? (v->pos - p0) / (p1 - p0) : 1;
    *lon = from->lon + (to->lon - from->lon) * f;
    return from->lat + (to->lat - from->lat) * f;
}

static int veh_bearing(const struct sim *s, const struct veh *v)
{
    int k = v->k > 0 ? v->k : 1;
    const struct stop_geo *a = &s->geo[stop_of(s, v, k - 1)], *b = &s->geo[stop_of(s, v, k)];
    double x = (b->lon - a->lon) * cos(a->lat * M_PI / 180), y = b->lat - a->lat;
    int deg = (int)lround(atan2(x, y) * 180 / M_PI);
    return (deg + 360) % 360;
}

/* Predicted arrival at direction-order stop j from the current state, with
 * nominal speeds (the simulator's "prediction model": it does not know the
 * trip is late, so it is wrong by about as much as a real one). */
static int64_t predict_arrival(const struct sim *s, const struct veh *v, int j)
{
    const struct route_def *rd = &routes[v->route];
    double t = 0;
    if (v->st == V_STOPPED) {
        if (j == v->k)
            return s->now;
        t += v->dwell;
        t += (pos_of(s, v, j) - v->pos) / rd->speed;
        t += (double)rd->dwell * (j - v->k - 1);
    } else {
        t += (pos_of(s, v, j) - v->pos) / rd->speed + v->hold * 0.5;
        t += (double)rd->dwell * (j - v->k);
    }
    return s->now + (int64_t)(t + 0.5);
}

static void predictions_refresh(struct sim *s, int vi)
{
    struct veh *v = &s->veh[vi];
    const struct route_def *rd = &routes[v->route];
    size_t b = slot_veh(s, vi);
    for (int k = v->k; k < rd->nstops; k++) {
        int last = k == rd->nstops - 1;
        int64_t arr = predict_arrival(s, v, k);
        v->pdep[k] = last ? -1 : arr + (v->st == V_STOPPED && k == v->k ? v->dwell : rd->dwell);
        v->parr[k] = k == 0 ? -1 : arr;
        v->pstat[k] = k != v->k ? 0 : v->st == V_STOPPED ? 1 : v->st == V_INCOMING ? 2 : 0;
        v->pterm[k] = v->k == 0;
        v->pat[k] = s->now;
        if (s->ent[b + 2 + k].alive)
            touch(s, b + 2 + k);
    }
}

static void alert_create(struct sim *s, int i)
{
    struct alert *a = &s->alerts[i];
    size_t slot = s->alert_base + (size_t)i;
    a->alive = 1;
    a->no = s->next_alert_no++;
    a->route = rnd_int(s, 0, NROUTES - 1);
    a->stop = rnd(s) % 2
                  ? s->route_first_stop[a->route] + rnd_int(s, 0, routes[a->route].nstops - 1)
                  : -1;
    a->effect = rnd_int(s, 0, 3);
    a->created_s = a->updated_s = s->now;
    a->end_s = s->now + rnd_int(s, 600, 3600);
    a->updates = 0;
    fmt_s(s->ent[slot].id, sizeof(s->ent[slot].id), "%lld", (long long)a->no);
    s->ent[slot].route = a->route;
    s->ent[slot].stop = a->stop;
    set_alive(s, slot, 1);
}

static void alerts_step(struct sim *s)
{
    for (int i = 0; i < NALERTS; i++) {
        struct alert *a = &s->alerts[i];
        size_t slot = s->alert_base + (size_t)i;
        if (a->alive && s->now >= a->end_s) {
            a->alive = 0;
            set_alive(s, slot, 0);
        } else if (a->alive && s->now - a->updated_s >= 300 && rnd(s) % 4 == 0) {
            a->updated_s = s->now;
            a->updates++;
            touch(s, slot);
        } else if (!a->alive && rnd(s) % 900 == 0) {
            alert_create(s, i);
        }
    }
}

void sim_step(struct sim *s)
{
    s->now++;
    for (int i = 0; i < s->nveh; i++)
        veh_step(s, i);
    /* predictions refresh every 10 s per vehicle (staggered) */
    for (int i = 0; i < s->nveh; i++) {
        struct veh *v = &s->veh[i];
        if (!v->alive || (s->now + i) % 10 != 0)
            continue;
        predictions_refresh(s, i);
    }
    alerts_step(s);
}

/* ---- construction --------------------------------------------------------------------------- */

struct sim *sim_new(uint64_t seed, int64_t start_s)
{
    struct sim *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->rng = seed ^ 0x5DEECE66Dull;
    s->now = start_s - WARMUP_S;
    s->next_alert_no = 600000 + (int64_t)(rnd(s) % 1000) * 10;
    s->next_trip_no = 60000000 + (int64_t)(rnd(s) % 100000) * 10;
    for (int r = 0; r < NROUTES; r++) {
        s->nstops += routes[r].nstops;
        s->nveh += routes[r].nveh;
    }
    s->geo = calloc((size_t)s->nstops, sizeof(*s->geo));
    s->veh = calloc((size_t)s->nveh, sizeof(*s->veh));
    s->nent = (size_t)NROUTES + (size_t)s->nstops + (size_t)s->nveh * PER_VEH + NALERTS;
    s->ent = calloc(s->nent, sizeof(*s->ent));
    if (!s->geo || !s->veh || !s->ent) {
        sim_destroy(s);
        return NULL;
    }
    for (size_t i = 0; i < s->nent; i++) {
        s->ent[i].route = s->ent[i].stop = s->ent[i].trip = -1;
        s->ent[i].vehicle = s->ent[i].schedule = -1;
    }
    /* routes and stops */
    int st = NROUTES;
    for (int r = 0; r < NROUTES; r++) {
        const struct route_def *rd = &routes[r];
        struct sim_ent *e = &s->ent[r];
        e->type = SIM_ROUTE;
        e->alive = 1;
        e->uid = 1;
        e->route = r;
        fmt_s(e->id, sizeof(e->id), "%s", rd->id);
        s->route_first_stop[r] = st;
        double pos = 0;
        for (int i = 0; i < rd->nstops; i++, st++) {
            double f = (double)i / (rd->nstops - 1);
            struct stop_geo *g = &s->geo[st - NROUTES];
            /* a gentle curve so bearings vary along the line */
            double bend = 0.004 * sin(f * M_PI);
            g->lat = rd->a[0] + (rd->b[0] - rd->a[0]) * f + bend;
            g->lon = rd->a[1] + (rd->b[1] - rd->a[1]) * f - bend;
            if (i > 0) {
                struct stop_geo *p = g - 1;
                pos += dist_m(p->lat, p->lon, g->lat, g->lon);
            }
            g->pos = pos;
            g->route = r;
            g->idx = i;
            struct sim_ent *se = &s->ent[st];
            se->type = SIM_STOP;
            se->alive = 1;
            se->uid = 1;
            se->route = r;
            se->stop = st;
            if (rd->type == 2)
                fmt_s(se->id, sizeof(se->id), "place-cr%02d%d", i, r);
            else
                fmt_s(se->id, sizeof(se->id), "%d", rd->stop_base + i * (rd->type == 3 ? 3 : 2));
        }
        s->route_len[r] = pos;
    }
    /* the geo array is indexed by stop slot */
    struct stop_geo *geo = calloc((size_t)(NROUTES + s->nstops), sizeof(*geo));
    if (!geo) {
        sim_destroy(s);
        return NULL;
    }
    memcpy(geo + NROUTES, s->geo, (size_t)s->nstops * sizeof(*geo));
    free(s->geo);
    s->geo = geo;
    /* vehicles and their dependent slots */
    s->veh_base = (size_t)NROUTES + (size_t)s->nstops;
    int vi = 0;
    for (int r = 0; r < NROUTES; r++) {
        for (int j = 0; j < routes[r].nveh; j++, vi++) {
            struct veh *v = &s->veh[vi];
            v->route = r;
            v->dir = j % 2;
            v->layover = 1 + j * (int)(s->route_len[r] / routes[r].speed / routes[r].nveh * 1.6);
            v->speed_null = routes[r].type <= 1 && j % 2 == 0;
            v->ncars = routes[r].type == 0 ? 2 : routes[r].type == 1 ? 6 : 0;
            size_t b = slot_veh(s, vi);
            for (size_t i = 0; i < PER_VEH; i++) {
                struct sim_ent *e = &s->ent[b + i];
                e->type = i == 0             ? SIM_VEHICLE
                          : i == 1           ? SIM_TRIP
                          : i < 2 + MAXSTOPS ? SIM_PREDICTION
                                             : SIM_SCHEDULE;
                e->route = r;
                e->vehicle = (int)b;
                e->trip = (int)b + 1;
            }
            struct sim_ent *ve = &s->ent[b];
            if (routes[r].type == 2)
                fmt_s(ve->id, sizeof(ve->id), "%d", 1630 + vi);
            else if (routes[r].type == 3)
                fmt_s(ve->id, sizeof(ve->id), "y%d", 1700 + vi * 7);
            else
                fmt_s(ve->id, sizeof(ve->id), "%s%02d%c000", routes[r].prefix, 10 + vi,
                      'A' + j % 6);
            ve->stop = -1;
        }
    }
    s->alert_base = s->veh_base + (size_t)s->nveh * PER_VEH;
    for (int i = 0; i < NALERTS; i++) {
        struct sim_ent *e = &s->ent[s->alert_base + (size_t)i];
        e->type = SIM_ALERT;
    }
    for (int i = 0; i < WARMUP_S; i++) {
        sim_step(s);
        if (i == WARMUP_S / 2 && !s->alerts[0].alive)
            alert_create(s, 0); /* one alert is always there at the start: tests want one */
    }
    s->narr = 0;
    return s;
}

void sim_destroy(struct sim *s)
{
    if (!s)
        return;
    free(s->geo);
    free(s->veh);
    free(s->ent);
    free(s);
}

int64_t sim_now(const struct sim *s)
{
    return s->now;
}

size_t sim_count(const struct sim *s)
{
    return s->nent;
}

const struct sim_ent *sim_ent(const struct sim *s, size_t slot)
{
    return &s->ent[slot];
}

const struct sim_arrival *sim_arrivals(const struct sim *s, size_t *n)
{
    *n = s->narr;
    return s->arr;
}

void sim_arrivals_clear(struct sim *s)
{
    s->narr = 0;
}

static const char *const type_names[SIM_NTYPES] = {"route",      "stop",     "trip", "vehicle",
                                                   "prediction", "schedule", "alert"};

const char *sim_type_name(enum sim_type t)
{
    return (unsigned)t < SIM_NTYPES ? type_names[t] : "unknown";
}

int sim_type_parse(const char *name, int plural)
{
    for (int t = 0; t < SIM_NTYPES; t++) {
        size_t n = strlen(type_names[t]);
        if (!strncmp(name, type_names[t], n) && !strcmp(name + n, plural ? "s" : ""))
            return t;
    }
    return -1;
}

int sim_route_type(const struct sim *s, int route)
{
    (void)s;
    return route >= 0 && route < NROUTES ? routes[route].type : -1;
}

const char *sim_route_id(const struct sim *s, int route)
{
    (void)s;
    return route >= 0 && route < NROUTES ? routes[route].id : "";
}

int sim_route_has_stop(const struct sim *s, int route, const char *stop_id)
{
    if (route < 0 || route >= NROUTES)
        return 0;
    for (int i = 0; i < routes[route].nstops; i++)
        if (!strcmp(s->ent[s->route_first_stop[route] + i].id, stop_id))
            return 1;
    return 0;
}

/* ---- rendering ------------------------------------------------------------------------------ */

static void rel(struct buf *o, const char *name, const char *type, const char *id, int comma)
{
    if (id)
        buf_printf(o, "\"%s\":{\"data\":{\"id\":\"%s\",\"type\":\"%s\"}}%s", name, id, type,
                   comma ? "," : "");
    else
        buf_printf(o, "\"%s\":{\"data\":null}%s", name, comma ? "," : "");
}

static void tstr(struct buf *o, const char *name, int64_t t, int comma)
{
    char ts[32];
    if (t < 0) {
        buf_printf(o, "\"%s\":null%s", name, comma ? "," : "");
        return;
    }
    sim_format_time(t, ts);
    buf_printf(o, "\"%s\":\"%s\"%s", name, ts, comma ? "," : "");
}

static void render_route(const struct sim *s, int r, struct buf *o)
{
    const struct route_def *rd = &routes[r];
    const char *d0 = routes[r].stops[rd->nstops - 1], *d1 = routes[r].stops[0];
    buf_printf(
        o,
        "{\"attributes\":{\"color\":\"%s\",\"description\":\"%s\",\"direction_destinations\":"
        "[\"%s\",\"%s\"],\"direction_names\":[\"%s\",\"%s\"],\"fare_class\":\"%s\","
        "\"listed_route\":null,\"long_name\":\"%s\",\"short_name\":\"%s\",\"sort_order\":%d,"
        "\"text_color\":\"%s\",\"type\":%d},\"id\":\"%s\",\"relationships\":{",
        rd->color, rd->desc, d0, d1, rd->dir_names[0], rd->dir_names[1], rd->fare_class,
        rd->long_name, rd->short_name, 10000 + r * 10, rd->text_color, rd->type, rd->id);
    rel(o, "line", "line", rd->id, 0);
    buf_printf(o, "},\"type\":\"route\"}");
    (void)s;
}

static void render_stop(const struct sim *s, size_t slot, struct buf *o)
{
    const struct stop_geo *g = &s->geo[slot];
    const struct route_def *rd = &routes[g->route];
    const char *name = rd->stops[g->idx];
    int bus = rd->type == 3;
    buf_printf(o,
               "{\"attributes\":{\"address\":null,\"at_street\":%s%s%s,\"description\":\"%s - %s\","
               "\"latitude\":%.6f,\"location_type\":0,\"longitude\":%.6f,\"municipality\":\"%s\","
               "\"name\":\"%s\",\"on_street\":%s,\"platform_code\":null,\"platform_name\":\"%s\","
               "\"vehicle_type\":%d,\"wheelchair_boarding\":%d},\"id\":\"%s\",\"relationships\":{",
               bus ? "\"" : "", bus ? "Main Street" : "null", bus ? "\"" : "", name, rd->long_name,
               g->lat, g->lon, g->lon < -71.1 ? "Cambridge" : "Boston", name,
               bus ? "\"Massachusetts Avenue\"" : "null",
               rd->type == 3 ? "Stop" : rd->dir_names[g->idx % 2], rd->type,
               g->idx % 5 == 3 ? 2 : 1, s->ent[slot].id);
    if (bus)
        rel(o, "parent_station", "stop", NULL, 1);
    else {
        char parent[48] = "place-";
        size_t n = strlen(parent);
        for (const char *c = name; *c && n < 14; c++)
            if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z'))
                parent[n++] = (char)(*c | 0x20);
        parent[n] = '\0';
        rel(o, "parent_station", "stop", parent, 1);
    }
    rel(o, "zone", "zone", rd->type == 2 ? (g->idx < 2 ? "CR-zone-1A" : "CR-zone-2") : NULL, 0);
    buf_printf(o, "},\"type\":\"stop\"}");
}

static void render_trip(const struct sim *s, int vi, struct buf *o)
{
    const struct veh *v = &s->veh[vi];
    const struct route_def *rd = &routes[v->route];
    size_t b = slot_veh(s, vi);
    char name[16] = "", sh[32], svc[32], rp[48];
    if (rd->type == 2)
        fmt_s(name, sizeof(name), "%d", 400 + (int)(v->trip_no % 100) * 2 + v->dir);
    fmt_s(sh, sizeof(sh), "%s-%d", rd->id, v->dir);
    fmt_s(svc, sizeof(svc), "SIM-%s-Weekday", rd->id);
    fmt_s(rp, sizeof(rp), "%s-_-%d", rd->id, v->dir);
    buf_printf(o,
               "{\"attributes\":{\"bikes_allowed\":%d,\"block_id\":\"B%s-%d\",\"direction_id\":%d,"
               "\"headsign\":\"%s\",\"name\":\"%s\",\"revenue\":\"REVENUE\","
               "\"wheelchair_accessible\":1},\"id\":\"%s\",\"relationships\":{",
               rd->type >= 2, rd->id, vi, v->dir, rd->stops[v->dir == 0 ? rd->nstops - 1 : 0], name,
               s->ent[b + 1].id);
    rel(o, "route", "route", rd->id, 1);
    rel(o, "route_pattern", "route_pattern", rp, 1);
    rel(o, "service", "service", svc, 1);
    rel(o, "shape", "shape", sh, 0);
    buf_printf(o, "},\"type\":\"trip\"}");
}

static void render_vehicle(const struct sim *s, int vi, struct buf *o)
{
    const struct veh *v = &s->veh[vi];
    const struct route_def *rd = &routes[v->route];
    size_t b = slot_veh(s, vi);
    static const char *const stname[] = {"IN_TRANSIT_TO", "INCOMING_AT", "STOPPED_AT"};
    double lon, lat = veh_lat_lon(s, v, &lon);
    char updated[32];
    sim_format_time(v->updated_s, updated);
    buf_printf(o, "{\"attributes\":{\"bearing\":%d,\"carriages\":[", veh_bearing(s, v));
    for (int c = 0; c < v->ncars; c++) {
        int occ = (v->occ + c) % 5;
        buf_printf(o,
                   "%s{\"label\":\"%d\",\"occupancy_percentage\":%d,\"occupancy_status\":\"%s\"}",
                   c ? "," : "", 1700 + vi * 8 + c, occ * 22 + 5, occupancy[occ]);
    }
    buf_printf(o,
               "],\"current_status\":\"%s\",\"current_stop_sequence\":%d,\"direction_id\":%d,"
               "\"label\":\"%d\",\"latitude\":%.6f,\"longitude\":%.6f,\"occupancy_status\":",
               stname[v->st], v->k + 1, v->dir, 1700 + vi * 8, lat, lon);
    if (rd->type >= 2)
        buf_printf(o, "\"%s\"", occupancy[v->occ]);
    else
        buf_printf(o, "null");
    buf_printf(o, ",\"revenue\":\"REVENUE\",\"speed\":");
    if (v->speed_null)
        buf_printf(o, "null");
    else
        buf_printf(o, "%.1f", v->speed);
    buf_printf(o, ",\"updated_at\":\"%s\"},\"id\":\"%s\",\"relationships\":{", updated,
               s->ent[b].id);
    rel(o, "route", "route", rd->id, 1);
    rel(o, "stop", "stop", s->ent[stop_of(s, v, v->k)].id, 1);
    rel(o, "trip", "trip", s->ent[b + 1].id, 0);
    buf_printf(o, "},\"type\":\"vehicle\"}");
}

static void render_prediction(const struct sim *s, int vi, int k, struct buf *o)
{
    const struct veh *v = &s->veh[vi];
    const struct route_def *rd = &routes[v->route];
    size_t b = slot_veh(s, vi);
    int64_t arr = v->parr[k], dep = v->pdep[k];
    int lead = (int)((dep >= 0 ? dep : arr) - v->pat[k]);
    int unc = lead < 60 ? 60 : lead < 300 ? 120 : lead < 600 ? 300 : 360;
    const char *status = v->pstat[k] == 1   ? "Stopped at station"
                         : v->pstat[k] == 2 ? "Approaching"
                                            : NULL;
    buf_printf(o, "{\"attributes\":{");
    tstr(o, "arrival_time", arr, 0);
    buf_printf(o, ",\"arrival_uncertainty\":");
    buf_printf(o, arr < 0 ? "null" : "%d", unc);
    buf_printf(o, ",");
    tstr(o, "departure_time", dep, 0);
    buf_printf(o, ",\"departure_uncertainty\":");
    buf_printf(o, dep < 0 ? "null" : "%d", unc);
    buf_printf(o,
               ",\"direction_id\":%d,\"last_trip\":false,\"revenue\":\"REVENUE\","
               "\"schedule_relationship\":null,\"status\":%s%s%s,\"stop_sequence\":%d,"
               "\"update_type\":\"%s\"},\"id\":\"%s\",\"relationships\":{",
               v->dir, status ? "\"" : "", status ? status : "null", status ? "\"" : "", k + 1,
               v->pterm[k] ? "AT_TERMINAL" : "MID_TRIP", s->ent[b + 2 + k].id);
    rel(o, "route", "route", rd->id, 1);
    rel(o, "schedule", "schedule", s->ent[b + 2 + MAXSTOPS + k].id, 1);
    rel(o, "stop", "stop", s->ent[stop_of(s, v, k)].id, 1);
    rel(o, "trip", "trip", s->ent[b + 1].id, 1);
    rel(o, "vehicle", "vehicle", s->ent[b].id, 0);
    buf_printf(o, "},\"type\":\"prediction\"}");
}

static void render_schedule(const struct sim *s, int vi, int k, struct buf *o)
{
    const struct veh *v = &s->veh[vi];
    const struct route_def *rd = &routes[v->route];
    size_t b = slot_veh(s, vi);
    int last = k == rd->nstops - 1;
    buf_printf(o, "{\"attributes\":{");
    tstr(o, "arrival_time", k == 0 ? -1 : v->sched[k], 1);
    tstr(o, "departure_time", last ? -1 : v->sched[k] + (k == 0 ? rd->dwell : rd->dwell), 0);
    buf_printf(o,
               ",\"direction_id\":%d,\"drop_off_type\":%d,\"pickup_type\":%d,\"stop_headsign\":"
               "null,\"stop_sequence\":%d,\"timepoint\":%s},\"id\":\"%s\",\"relationships\":{",
               v->dir, k == 0 ? 1 : 0, last ? 1 : 0, k + 1, k % 3 == 0 ? "true" : "false",
               s->ent[b + 2 + MAXSTOPS + k].id);
    rel(o, "route", "route", rd->id, 1);
    rel(o, "stop", "stop", s->ent[stop_of(s, v, k)].id, 1);
    rel(o, "trip", "trip", s->ent[b + 1].id, 0);
    buf_printf(o, "},\"type\":\"schedule\"}");
}

static void render_alert(const struct sim *s, int i, struct buf *o)
{
    static const char *const effects[] = {"DELAY", "SHUTTLE", "STATION_ISSUE", "DETOUR"};
    static const char *const causes[] = {"SIGNAL_PROBLEM", "MAINTENANCE", "POLICE_ACTIVITY",
                                         "CONSTRUCTION"};
    const struct alert *a = &s->alerts[i];
    const struct route_def *rd = &routes[a->route];
    const char *stop = a->stop >= 0 ? s->ent[a->stop].id : NULL;
    char hdr[256];
    fmt_s(hdr, sizeof(hdr), "%s: %s delays of about %d minutes due to a %s.", rd->long_name,
          a->effect == 0 ? "Expect" : "Some", 5 + 5 * (a->updates % 4),
          a->effect == 0 ? "signal problem" : "maintenance issue");
    buf_printf(o, "{\"attributes\":{\"active_period\":[{");
    tstr(o, "end", a->end_s, 1);
    tstr(o, "start", a->created_s, 0);
    buf_printf(o, "}],\"banner\":null,\"cause\":\"%s\",", causes[a->effect]);
    tstr(o, "created_at", a->created_s, 0);
    buf_printf(o,
               ",\"description\":\"Affected stops: %s. Update %d.\",\"duration_certainty\":"
               "\"ESTIMATED\",\"effect\":\"%s\",\"header\":\"%s\",\"image\":null,"
               "\"image_alternative_text\":null,\"informed_entity\":[{\"activities\":[\"BOARD\","
               "\"EXIT\",\"RIDE\"],\"route\":\"%s\",\"route_type\":%d",
               stop ? rd->stops[a->stop - s->route_first_stop[a->route]] : "all", a->updates,
               effects[a->effect], hdr, rd->id, rd->type);
    if (stop)
        buf_printf(o, ",\"stop\":\"%s\"", stop);
    buf_printf(o,
               "}],\"lifecycle\":\"%s\",\"service_effect\":\"%s %s\",\"severity\":%d,"
               "\"short_header\":\"%s\",\"timeframe\":null,",
               a->updates ? "ONGOING" : "NEW", rd->long_name,
               a->effect == 0 ? "delay" : "disruption", 3 + a->effect, hdr);
    tstr(o, "updated_at", a->updated_s, 1);
    buf_printf(o, "\"url\":null},\"id\":\"%s\",\"type\":\"alert\"}",
               s->ent[s->alert_base + (size_t)i].id);
}

int sim_render(const struct sim *s, size_t slot, struct buf *out)
{
    if (slot >= s->nent || !s->ent[slot].alive)
        return -1;
    size_t before = out->len;
    const struct sim_ent *e = &s->ent[slot];
    switch (e->type) {
    case SIM_ROUTE:
        render_route(s, (int)slot, out);
        break;
    case SIM_STOP:
        render_stop(s, slot, out);
        break;
    case SIM_ALERT:
        render_alert(s, (int)(slot - s->alert_base), out);
        break;
    default: {
        size_t rel_slot = slot - s->veh_base;
        int vi = (int)(rel_slot / PER_VEH), i = (int)(rel_slot % PER_VEH);
        if (i == 0)
            render_vehicle(s, vi, out);
        else if (i == 1)
            render_trip(s, vi, out);
        else if (i < 2 + MAXSTOPS)
            render_prediction(s, vi, i - 2, out);
        else
            render_schedule(s, vi, i - 2 - MAXSTOPS, out);
    }
    }
    /* buf_printf failures leave partial output: detect by a missing final brace */
    if (out->len == before || out->data[out->len - 1] != '}') {
        out->len = before;
        if (out->data)
            out->data[before] = '\0';
        return -1;
    }
    return 0;
}
