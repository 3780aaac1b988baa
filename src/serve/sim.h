/*
 * sim: a small synthetic MBTA world, deterministic from a seed and a start
 * instant. Routes of several GTFS route types (light rail, subway, commuter
 * rail, bus) with stops along a line around Boston; vehicles that run trips
 * stop to stop (IN_TRANSIT_TO -> INCOMING_AT -> STOPPED_AT), late or early;
 * trips and schedules that exist while a vehicle runs them; predictions for
 * the upcoming stops, refreshed every 10 s and removed once passed; alerts
 * created, updated and removed.
 *
 * Pure: no clock, socket, file or global. Time only moves in sim_step (one
 * simulated second). Every resource lives in a fixed slot (the slot array
 * never grows); a slot's uid changes when it holds a new entity and its
 * version changes whenever its JSON rendering may have changed, so a caller
 * can diff cheaply (see feed.h).
 *
 * It also keeps the ground truth: the instant each vehicle actually arrived
 * at each stop (sim_arrivals).
 */
#ifndef MBTA_SIM_H
#define MBTA_SIM_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

enum sim_type {
    SIM_ROUTE,
    SIM_STOP,
    SIM_TRIP,
    SIM_VEHICLE,
    SIM_PREDICTION,
    SIM_SCHEDULE,
    SIM_ALERT,
    SIM_NTYPES
};

/* A read-only view of one slot. Relationship fields are slot indexes or -1. */
struct sim_ent {
    enum sim_type type;
    int alive;
    uint32_t uid;     /* changes when the slot holds a new entity */
    uint32_t version; /* changes when the rendering may have changed */
    int route;        /* route index (== its slot); every entity has one */
    int stop, trip, vehicle, schedule;
    char id[48];
};

/* Ground truth: a vehicle reached a stop (STOPPED_AT) at arrived_s. */
struct sim_arrival {
    char vehicle[24], trip[24], stop[16], route[16];
    int stop_sequence;
    int64_t arrived_s;
};

struct sim;

/* A new world at start_s (Unix seconds), already warmed up so vehicles are
 * spread along their routes. Caller frees with sim_destroy. NULL on ENOMEM. */
struct sim *sim_new(uint64_t seed, int64_t start_s);
void sim_destroy(struct sim *s); /* NULL is a no-op */

/* Advances the world by one simulated second. */
void sim_step(struct sim *s);
int64_t sim_now(const struct sim *s); /* Unix seconds */

size_t sim_count(const struct sim *s); /* number of slots (constant) */
const struct sim_ent *sim_ent(const struct sim *s, size_t slot);

/* Appends the JSON:API resource object of a live slot to out.
 * Returns 0, or -1 when the slot is dead or out is full. */
int sim_render(const struct sim *s, size_t slot, struct buf *out);

const char *sim_type_name(enum sim_type t); /* "vehicle", ... */
/* The type for a name ("vehicle") or a path ("vehicles"); -1 if unknown. */
int sim_type_parse(const char *name, int plural);

int sim_route_type(const struct sim *s, int route);
const char *sim_route_id(const struct sim *s, int route);
/* 1 when the route serves a stop with this id. */
int sim_route_has_stop(const struct sim *s, int route, const char *stop_id);

/* Arrivals recorded since the last sim_arrivals_clear (borrowed). */
const struct sim_arrival *sim_arrivals(const struct sim *s, size_t *n);
void sim_arrivals_clear(struct sim *s);

/* America/New_York UTC offset in minutes (-300 or -240) at a Unix instant,
 * by the US rules since 2007 (second Sunday of March 02:00 EST to the first
 * Sunday of November 02:00 EDT). No time zone database involved. */
int sim_ny_offset_min(int64_t unix_s);
/* Writes "2026-12-04T14:03:11-05:00" (26 bytes + NUL) into out[32]. */
void sim_format_time(int64_t unix_s, char out[32]);
/* Parses ISO 8601 "YYYY-MM-DDTHH:MM:SS" with an optional fraction (dropped)
 * and "Z", "+HH:MM", "-HH:MM", "+HHMM" or "-HHMM" or no offset (UTC):
 * civil_parse_iso8601's grammar and checks (month lengths, years
 * 1900-2999). Returns 0, or -1 with the reason in errstr[errsz] (optional). */
int sim_parse_time(const char *str, int64_t *unix_s, char *errstr, size_t errsz);

#endif
