/*
 * feed: see feed.h. Per slot of the world it keeps what the client holds
 * (uid, version and the JSON text last sent), so a diff only renders the
 * slots whose version moved.
 */
#include "serve/feed.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FEED_MAXHIDE  64
#define FEED_DATA_MAX ((size_t)256 << 20)

struct held {
    int sent;
    uint32_t uid, version;
    char *json;
    size_t len;
    char id[48];
    int type;
};

struct feed {
    const struct sim *sim;
    struct feed_query q;
    size_t n;
    struct held *h;
    unsigned char *want;
    int started;
    char hide[FEED_MAXHIDE][48];
    int hide_type[FEED_MAXHIDE];
    size_t nhide;
    struct buf tmp;
    /* entities the client holds whose slot was taken by a newer entity (an
     * add committed before the old one's remove) */
    struct held *ghost;
    size_t nghost, ghost_cap;
};

/* ---- query ---------------------------------------------------------------------------------- */

void feed_query_init(struct feed_query *q, int type)
{
    memset(q, 0, sizeof(*q));
    q->type = type;
}

static void strv_free(char **v, size_t *n)
{
    for (size_t i = 0; i < *n; i++)
        free(v[i]);
    *n = 0;
}

void feed_query_fini(struct feed_query *q)
{
    strv_free(q->route, &q->nroute);
    strv_free(q->stop, &q->nstop);
    strv_free(q->trip, &q->ntrip);
}

static int split(const char *value, char **v, size_t *n, char *errstr, size_t errsz,
                 const char *key)
{
    const char *p = value;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len) {
            if (*n == FEED_MAXF || len > 64) {
                snprintf(errstr, errsz, "%s: too many or too long values", key);
                return -1;
            }
            v[*n] = strndup(p, len);
            if (!v[*n])
                return -1;
            (*n)++;
        }
        p += len + (e ? 1 : 0);
    }
    return 0;
}

int feed_query_set(struct feed_query *q, const char *key, const char *value, char *errstr,
                   size_t errsz)
{
    if (!value)
        value = "";
    if (!strcmp(key, "filter[route]"))
        return split(value, q->route, &q->nroute, errstr, errsz, key);
    if (!strcmp(key, "filter[stop]"))
        return split(value, q->stop, &q->nstop, errstr, errsz, key);
    if (!strcmp(key, "filter[trip]"))
        return split(value, q->trip, &q->ntrip, errstr, errsz, key);
    if (!strcmp(key, "filter[route_type]") || !strcmp(key, "filter[type]")) {
        const char *p = value;
        while (*p) {
            char *end;
            long t = strtol(p, &end, 10);
            if (end == p || t < 0 || t > 4 || (*end && *end != ',') ||
                q->nroute_type == sizeof(q->route_type) / sizeof(q->route_type[0])) {
                snprintf(errstr, errsz, "%s: invalid value", key);
                return -1;
            }
            q->route_type[q->nroute_type++] = (int)t;
            p = *end ? end + 1 : end;
        }
        return 0;
    }
    if (!strcmp(key, "include")) {
        const char *p = value;
        while (*p) {
            const char *e = strchr(p, ',');
            size_t len = e ? (size_t)(e - p) : strlen(p);
            char name[32];
            if (len && len < sizeof(name)) {
                memcpy(name, p, len);
                name[len] = '\0';
                int t = sim_type_parse(name, 0);
                if (t < 0 || t == SIM_ALERT) {
                    snprintf(errstr, errsz, "include: unsupported relationship \"%s\"", name);
                    return -1;
                }
                q->include |= 1u << t;
            }
            p += len + (e ? 1 : 0);
        }
        return 0;
    }
    if (!strncmp(key, "filter[", 7)) {
        snprintf(errstr, errsz, "%s: unsupported filter", key);
        return -1;
    }
    return 0;
}

int feed_query_filtered(const struct feed_query *q)
{
    return q->nroute || q->nstop || q->ntrip || q->nroute_type;
}

/* ---- batches -------------------------------------------------------------------------------- */

void feed_batch_init(struct feed_batch *b)
{
    memset(b, 0, sizeof(*b));
    buf_init(&b->data, FEED_DATA_MAX);
}

void feed_batch_fini(struct feed_batch *b)
{
    free(b->ev);
    free(b->item_off);
    free(b->item_len);
    free(b->item_slot);
    buf_fini(&b->data);
    memset(b, 0, sizeof(*b));
}

static int batch_push(struct feed_batch *b, enum feed_kind k, size_t slot, size_t off, size_t len)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        struct feed_event *ev = realloc(b->ev, cap * sizeof(*ev));
        if (!ev)
            return -1;
        b->ev = ev;
        b->cap = cap;
    }
    struct feed_event *e = &b->ev[b->n++];
    e->kind = k;
    e->slot = slot;
    e->off = off;
    e->len = len;
    e->type = -1;
    e->id[0] = '\0';
    return 0;
}

static int item_push(struct feed_batch *b, size_t slot, size_t off, size_t len)
{
    if (b->nitems == b->items_cap) {
        size_t cap = b->items_cap ? b->items_cap * 2 : 256;
        size_t *o = realloc(b->item_off, cap * sizeof(*o));
        if (!o)
            return -1;
        b->item_off = o;
        size_t *l = realloc(b->item_len, cap * sizeof(*l));
        if (!l)
            return -1;
        b->item_len = l;
        size_t *s = realloc(b->item_slot, cap * sizeof(*s));
        if (!s)
            return -1;
        b->item_slot = s;
        b->items_cap = cap;
    }
    b->item_off[b->nitems] = off;
    b->item_len[b->nitems] = len;
    b->item_slot[b->nitems] = slot;
    b->nitems++;
    return 0;
}

/* ---- feed ----------------------------------------------------------------------------------- */

struct feed *feed_new(const struct sim *sim, const struct feed_query *q)
{
    struct feed *f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    f->sim = sim;
    f->n = sim_count(sim);
    f->h = calloc(f->n, sizeof(*f->h));
    f->want = calloc(f->n, 1);
    buf_init(&f->tmp, 1 << 20);
    feed_query_init(&f->q, q->type);
    char err[64];
    int bad = !f->h || !f->want;
    for (size_t i = 0; !bad && i < q->nroute; i++)
        bad = feed_query_set(&f->q, "filter[route]", q->route[i], err, sizeof(err));
    for (size_t i = 0; !bad && i < q->nstop; i++)
        bad = feed_query_set(&f->q, "filter[stop]", q->stop[i], err, sizeof(err));
    for (size_t i = 0; !bad && i < q->ntrip; i++)
        bad = feed_query_set(&f->q, "filter[trip]", q->trip[i], err, sizeof(err));
    memcpy(f->q.route_type, q->route_type, sizeof(q->route_type));
    f->q.nroute_type = q->nroute_type;
    f->q.include = q->include;
    if (bad) {
        feed_destroy(f);
        return NULL;
    }
    return f;
}

void feed_destroy(struct feed *f)
{
    if (!f)
        return;
    if (f->h)
        for (size_t i = 0; i < f->n; i++)
            free(f->h[i].json);
    free(f->h);
    for (size_t i = 0; i < f->nghost; i++)
        free(f->ghost[i].json);
    free(f->ghost);
    free(f->want);
    buf_fini(&f->tmp);
    feed_query_fini(&f->q);
    free(f);
}

void feed_hide(struct feed *f, int type, const char *id)
{
    if (f->nhide == FEED_MAXHIDE)
        return;
    snprintf(f->hide[f->nhide], sizeof(f->hide[0]), "%s", id);
    f->hide_type[f->nhide++] = type;
}

static int in_list(char *const *v, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(v[i], s))
            return 1;
    return 0;
}

static int matches(const struct feed *f, const struct sim_ent *e)
{
    const struct feed_query *q = &f->q;
    if (!e->alive || (int)e->type != q->type)
        return 0;
    if (q->nroute && !in_list(q->route, q->nroute, sim_route_id(f->sim, e->route)))
        return 0;
    if (q->nroute_type) {
        int rt = sim_route_type(f->sim, e->route), ok = 0;
        for (size_t i = 0; i < q->nroute_type; i++)
            ok |= q->route_type[i] == rt;
        if (!ok)
            return 0;
    }
    if (q->nstop && e->type != SIM_VEHICLE && e->type != SIM_TRIP) {
        if (e->type == SIM_ROUTE) {
            int ok = 0;
            for (size_t i = 0; i < q->nstop; i++)
                ok |= sim_route_has_stop(f->sim, e->route, q->stop[i]);
            if (!ok)
                return 0;
        } else if (e->stop < 0 || !in_list(q->stop, q->nstop, sim_ent(f->sim, (size_t)e->stop)->id))
            return 0;
    }
    if (q->ntrip &&
        (e->trip < 0 || !in_list(q->trip, q->ntrip, sim_ent(f->sim, (size_t)e->trip)->id)))
        return 0;
    return 1;
}

static int hidden(const struct feed *f, const struct sim_ent *e)
{
    for (size_t i = 0; i < f->nhide; i++)
        if (f->hide_type[i] == (int)e->type && !strcmp(f->hide[i], e->id))
            return 1;
    return 0;
}

static void mark(struct feed *f, int slot, int type)
{
    if (slot < 0 || !(f->q.include & (1u << type)))
        return;
    const struct sim_ent *e = sim_ent(f->sim, (size_t)slot);
    if (e->alive && (int)e->type == type && !f->want[slot])
        f->want[slot] = 2;
}

/* want[i]: 1 primary, 2 included, 0 not in the state. */
static void compute_want(struct feed *f)
{
    memset(f->want, 0, f->n);
    for (size_t i = 0; i < f->n; i++) {
        const struct sim_ent *e = sim_ent(f->sim, i);
        if (matches(f, e) && !hidden(f, e))
            f->want[i] = 1;
    }
    if (!f->q.include)
        return;
    for (size_t i = 0; i < f->n; i++) {
        if (f->want[i] != 1)
            continue;
        const struct sim_ent *e = sim_ent(f->sim, i);
        mark(f, e->route, SIM_ROUTE);
        mark(f, e->stop, SIM_STOP);
        mark(f, e->trip, SIM_TRIP);
        mark(f, e->vehicle, SIM_VEHICLE);
        mark(f, e->schedule, SIM_SCHEDULE);
    }
    for (size_t i = 0; i < f->n; i++)
        if (f->want[i] == 2 && hidden(f, sim_ent(f->sim, i)))
            f->want[i] = 0;
}

static int render(struct feed *f, size_t slot, struct buf *out)
{
    return sim_render(f->sim, slot, out);
}

static int build_reset(struct feed *f, struct feed_batch *b)
{
    struct buf *d = &b->data;
    if (buf_putc(d, '['))
        return -1;
    int first = 1;
    /* included ++ data, as the MBTA's server does */
    for (int pass = 2; pass >= 1; pass--) {
        for (size_t i = 0; i < f->n; i++) {
            if (f->want[i] != pass)
                continue;
            if (!first && buf_putc(d, ','))
                return -1;
            size_t off = d->len;
            if (render(f, i, d) || item_push(b, i, off, d->len - off))
                return -1;
            first = 0;
        }
    }
    if (buf_putc(d, ']'))
        return -1;
    return batch_push(b, FEED_RESET, 0, 0, d->len);
}

int feed_diff(struct feed *f, struct feed_batch *b)
{
    b->n = 0;
    b->nitems = 0;
    b->data.len = 0;
    compute_want(f);
    if (!f->started) {
        f->started = 1;
        return build_reset(f, b);
    }
    /* adds and updates render into data; removes are tiny and go last */
    size_t state_bytes = 2, diff_bytes = 0;
    struct buf *d = &b->data;
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < f->n; i++) {
            if (!f->want[i])
                continue;
            const struct sim_ent *e = sim_ent(f->sim, i);
            struct held *h = &f->h[i];
            int same_entity = h->sent && (h->uid == e->uid || !strcmp(h->id, e->id));
            if (pass == 0 && !same_entity) {
                size_t off = d->len;
                if (render(f, i, d) || batch_push(b, FEED_ADD, i, off, d->len - off))
                    return -1;
                state_bytes += d->len - off + 1;
                diff_bytes += d->len - off;
            } else if (pass == 1 && same_entity) {
                if (h->version == e->version && h->uid == e->uid) {
                    state_bytes += h->len + 1;
                    continue;
                }
                size_t off = d->len;
                if (render(f, i, d))
                    return -1;
                size_t len = d->len - off;
                state_bytes += len + 1;
                if (len == h->len && !memcmp(d->data + off, h->json, len)) {
                    d->len = off; /* rendering unchanged: nothing to send */
                    h->version = e->version;
                    h->uid = e->uid;
                    continue;
                }
                if (batch_push(b, FEED_UPDATE, i, off, len))
                    return -1;
                diff_bytes += len;
            }
        }
    }
    for (size_t i = 0; i < f->n + f->nghost; i++) {
        struct held *h = i < f->n ? &f->h[i] : &f->ghost[i - f->n];
        if (!h->sent)
            continue;
        if (i < f->n) {
            const struct sim_ent *e = sim_ent(f->sim, i);
            if (f->want[i] && (h->uid == e->uid || !strcmp(h->id, e->id)))
                continue;
        }
        size_t off = d->len;
        if (buf_printf(d, "{\"id\":\"%s\",\"type\":\"%s\"}", h->id, sim_type_name(h->type)) ||
            batch_push(b, FEED_REMOVE, i < f->n ? i : (size_t)-1, off, d->len - off))
            return -1;
        b->ev[b->n - 1].type = h->type;
        memcpy(b->ev[b->n - 1].id, h->id, sizeof(h->id));
        diff_bytes += d->len - off;
    }
    if (b->n && diff_bytes > state_bytes) {
        b->n = 0;
        b->data.len = 0;
        return build_reset(f, b);
    }
    return 0;
}

static void held_set(struct feed *f, size_t slot, const char *json, size_t len)
{
    struct held *h = &f->h[slot];
    const struct sim_ent *e = sim_ent(f->sim, slot);
    char *copy = malloc(len + 1);
    if (!copy)
        return; /* the client state is then under-reported; next diff re-adds it */
    memcpy(copy, json, len);
    copy[len] = '\0';
    free(h->json);
    h->json = copy;
    h->len = len;
    h->sent = 1;
    h->uid = e->uid;
    h->version = e->version;
    h->type = (int)e->type;
    snprintf(h->id, sizeof(h->id), "%s", e->id);
}

static void held_clear(struct held *h)
{
    free(h->json);
    h->json = NULL;
    h->len = 0;
    h->sent = 0;
}

/* Keeps the entity a slot held before an add replaces it, until its remove. */
static void ghost_keep(struct feed *f, struct held *h)
{
    if (f->nghost == f->ghost_cap) {
        size_t cap = f->ghost_cap ? f->ghost_cap * 2 : 16;
        struct held *g = realloc(f->ghost, cap * sizeof(*g));
        if (!g)
            return;
        f->ghost = g;
        f->ghost_cap = cap;
    }
    f->ghost[f->nghost++] = *h;
    h->json = NULL;
    h->sent = 0;
}

void feed_commit(struct feed *f, const struct feed_batch *b, size_t i)
{
    const struct feed_event *ev = &b->ev[i];
    switch (ev->kind) {
    case FEED_RESET:
        for (size_t s = 0; s < f->n; s++)
            held_clear(&f->h[s]);
        for (size_t g = 0; g < f->nghost; g++)
            free(f->ghost[g].json);
        f->nghost = 0;
        for (size_t k = 0; k < b->nitems; k++)
            held_set(f, b->item_slot[k], b->data.data + b->item_off[k], b->item_len[k]);
        break;
    case FEED_ADD:
        if (f->h[ev->slot].sent)
            ghost_keep(f, &f->h[ev->slot]);
        held_set(f, ev->slot, b->data.data + ev->off, ev->len);
        break;
    case FEED_UPDATE:
        held_set(f, ev->slot, b->data.data + ev->off, ev->len);
        break;
    case FEED_REMOVE:
        if (ev->slot < f->n && f->h[ev->slot].sent && f->h[ev->slot].type == ev->type &&
            !strcmp(f->h[ev->slot].id, ev->id)) {
            held_clear(&f->h[ev->slot]);
            break;
        }
        for (size_t g = 0; g < f->nghost; g++) {
            if (f->ghost[g].type == ev->type && !strcmp(f->ghost[g].id, ev->id)) {
                free(f->ghost[g].json);
                f->ghost[g] = f->ghost[--f->nghost];
                break;
            }
        }
        break;
    }
}

int feed_state_json(const struct feed *f, struct buf *out)
{
    int first = 1;
    if (buf_putc(out, '['))
        return -1;
    for (size_t i = 0; i < f->n; i++) {
        if (!f->h[i].sent)
            continue;
        if ((!first && buf_putc(out, ',')) || buf_append(out, f->h[i].json, f->h[i].len))
            return -1;
        first = 0;
    }
    for (size_t i = 0; i < f->nghost; i++) {
        if ((!first && buf_putc(out, ',')) || buf_append(out, f->ghost[i].json, f->ghost[i].len))
            return -1;
        first = 0;
    }
    return buf_putc(out, ']');
}

int feed_document(struct feed *f, struct buf *out)
{
    compute_want(f);
    if (buf_printf(out, "{\"data\":["))
        return -1;
    static const char *const mid = "],\"included\":[";
    for (int pass = 1; pass <= 2; pass++) {
        int first = 1;
        for (size_t i = 0; i < f->n; i++) {
            if (f->want[i] != pass)
                continue;
            if ((!first && buf_putc(out, ',')) || render(f, i, out))
                return -1;
            first = 0;
        }
        if (pass == 1 && buf_append(out, mid, strlen(mid)))
            return -1;
    }
    return buf_printf(out, "],\"jsonapi\":{\"version\":\"1.0\"}}");
}

size_t feed_held_ids(const struct feed *f, int type, char (*ids)[48], size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < f->n && n < max; i++)
        if (f->h[i].sent && f->h[i].type == type)
            snprintf(ids[n++], 48, "%s", f->h[i].id);
    return n;
}

const char *feed_kind_name(enum feed_kind k)
{
    static const char *const names[] = {"reset", "add", "update", "remove"};
    return names[k];
}
