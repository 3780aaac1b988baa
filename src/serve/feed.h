/*
 * feed: one streaming query over a sim world, turned into MBTA events.
 * It remembers what the client holds (the resources as last sent) and
 * computes the next batch: a `reset` (the whole state, included ++ data)
 * first and whenever a diff would be larger than the state, otherwise
 * `add`s, then `update`s, then `remove`s. The caller commits each event it
 * really sent, so a batch cut short (limits, faults) stays consistent:
 * what was not committed is simply diffed again next time.
 *
 * Pure: no clock, socket or global; the sim is borrowed.
 */
#ifndef MBTA_FEED_H
#define MBTA_FEED_H

#include <stddef.h>

#include "serve/sim.h"
#include "util/buf.h"

#define FEED_MAXF 32

/* A parsed query: the resource type and its filters (empty: no filter). */
struct feed_query {
    int type; /* enum sim_type */
    char *route[FEED_MAXF], *stop[FEED_MAXF], *trip[FEED_MAXF];
    size_t nroute, nstop, ntrip;
    int route_type[8];
    size_t nroute_type;
    unsigned include; /* bit (1 << enum sim_type) */
};

void feed_query_init(struct feed_query *q, int type);
void feed_query_fini(struct feed_query *q);
/* Applies one query parameter ("filter[route]", "Red,Orange"); unknown
 * parameters other than filters are ignored (api_key, fields...).
 * Returns 0, or -1 with errstr for a bad filter or include. */
int feed_query_set(struct feed_query *q, const char *key, const char *value, char *errstr,
                   size_t errsz);
/* 1 when the query has at least one filter (predictions need one). */
int feed_query_filtered(const struct feed_query *q);

enum feed_kind { FEED_RESET, FEED_ADD, FEED_UPDATE, FEED_REMOVE };

struct feed_event {
    enum feed_kind kind;
    size_t slot;     /* for add/update/remove */
    size_t off, len; /* data in the batch buffer */
    int type;        /* remove: the removed entity */
    char id[48];
};

struct feed_batch {
    struct feed_event *ev;
    size_t n, cap;
    struct buf data;
    size_t *item_off, *item_len, *item_slot; /* a reset's items */
    size_t nitems, items_cap;
};

void feed_batch_init(struct feed_batch *b);
void feed_batch_fini(struct feed_batch *b);

struct feed;

/* Borrows sim (which must outlive the feed); copies q. NULL on ENOMEM. */
struct feed *feed_new(const struct sim *sim, const struct feed_query *q);
void feed_destroy(struct feed *f); /* NULL is a no-op */

/* Never sends this entity (fault injection: a reset missing vehicles). */
void feed_hide(struct feed *f, int type, const char *id);

/* Computes the next batch into b (emptied first): a reset on the first call
 * and when the diff is larger than the state. b->n is 0 when nothing changed.
 * Returns 0, or -1 on ENOMEM. */
int feed_diff(struct feed *f, struct feed_batch *b);
/* Records that event i of b was delivered: the client now holds it. */
void feed_commit(struct feed *f, const struct feed_batch *b, size_t i);

/* Appends the client's state as a JSON array of resource objects. */
int feed_state_json(const struct feed *f, struct buf *out);
/* Appends the JSON:API document of the current world for this query:
 * {"data":[...],"included":[...],"jsonapi":{"version":"1.0"}}. */
int feed_document(struct feed *f, struct buf *out);

/* Enumerates the ids of one type the client holds (for fault injection). */
size_t feed_held_ids(const struct feed *f, int type, char (*ids)[48], size_t max);

const char *feed_kind_name(enum feed_kind k);

#endif
