/*
 * sink: see sink.h. The statements are built once per sink from the
 * resource descriptors (mbta/resource.c), so the column lists of the COPYs
 * and upserts always match the tables of sql/001_schema.sql.
 */
#include "pg/sink.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "mbta/enrich.h"
#include "mbta/resource.h"
#include "pg/pgconn.h"
#include "util/buf.h"
#include "util/civil.h"
#include "util/clock.h"
#include "util/log.h"

enum { SINK_DATAERR = 2 }; /* internal: PostgreSQL refused the data */

enum { NTYPES = 8, COPY_CHUNK = 1 << 20, MAX_DAYS = 64, ITEMS_KEEP = 256 };

struct pg_sink {
    char *conninfo;
    char *schema;  /* bare name, validated by pg_migrate_schema_ok */
    char *qschema; /* "name" */
    char *dlq_topic;
    PGconn *conn;
    int64_t days[MAX_DAYS]; /* UTC days whose history partitions exist */
    char *upsert[NTYPES];   /* upsert_sql() per type */
    struct item *items;     /* a batch's classified messages, reused */
    size_t items_cap;
    size_t ndays;
    size_t ntypes;
    /* column indices used by enrichment */
    int v_lat, v_lon, v_upd, p_arr, p_dep;
};

/* One message of a batch, classified. */
enum item_kind { IT_SKIP, IT_RES, IT_REMOVE, IT_MARKER, IT_DEAD };

struct item {
    const struct sink_msg *m;
    enum item_kind kind;
    int superseded; /* a later event of the same entity in the same segment */
    const struct res_type *type;
    struct res_row row;
    char *rtype, *id; /* IT_REMOVE (from the key); IT_RES uses row */
    const char *event;
    size_t eventlen;
    const char *stream;
    size_t streamlen;
    int has_gen;
    int64_t gen;
    int64_t received_us;
    char *reason; /* IT_DEAD */
    struct enrich_vehicle_out ev;
    struct enrich_prediction_out ep;
};

/* ---- small helpers ---------------------------------------------------- */

static char *xstrndup(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

static int type_index(const struct res_type *t)
{
    return (int)(t - res_types);
}

static const struct sink_hdr *hdr_get(const struct sink_msg *m, const char *name)
{
    for (size_t i = 0; i < m->nhdrs; i++)
        if (m->hdrs[i].name && !strcmp(m->hdrs[i].name, name))
            return &m->hdrs[i];
    return NULL;
}

static int parse_i64(const char *s, size_t n, int64_t *out)
{
    int64_t v = 0;
    int neg = 0;
    size_t i = 0;
    if (n > 0 && s[0] == '-') {
        neg = 1;
        i = 1;
    }
    if (i >= n || n - i > 19)
        return -1;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9' || v > (INT64_MAX - (s[i] - '0')) / 10)
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = neg ? -v : v;
    return 0;
}

/* Length of the valid UTF-8 sequence at s (1-4), or 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    if (s[0] < 0x80)
        return s[0] ? 1 : 0;
    size_t l = (s[0] & 0xE0) == 0xC0   ? 2
               : (s[0] & 0xF0) == 0xE0 ? 3
               : (s[0] & 0xF8) == 0xF0 ? 4
                                       : 0;
    if (!l || l > n || (l == 2 && s[0] < 0xC2) || (l == 4 && s[0] > 0xF4))
        return 0;
    for (size_t i = 1; i < l; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    if (l == 3 && ((s[0] == 0xE0 && s[1] < 0xA0) || (s[0] == 0xED && s[1] >= 0xA0)))
        return 0;
    if (l == 4 && ((s[0] == 0xF0 && s[1] < 0x90) || (s[0] == 0xF4 && s[1] >= 0x90)))
        return 0;
    return l;
}

static int utf8_valid(const char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t l = utf8_len((const unsigned char *)s + i, n - i);
        if (!l)
            return 0;
        i += l;
    }
    return 1;
}

/* ---- COPY text format ------------------------------------------------- */

/* Bytes that COPY text format escapes (1), or that need a look when
 * sanitizing (2: NUL and non-ASCII). */
static unsigned char copy_class[256];

static void copy_class_init(void)
{
    if (copy_class['\\'])
        return;
    for (int c = 0x80; c < 256; c++)
        copy_class[c] = 2;
    copy_class[0] = 2;
    copy_class['\\'] = copy_class['\n'] = copy_class['\r'] = copy_class['\t'] = 1;
}

/* Appends s escaped for COPY text format; invalid UTF-8 and NUL become '?'
 * when `sanitize` (text from outside: keys, headers, reasons). Runs of
 * ordinary bytes are copied in one go: raw JSON rarely needs an escape. */
static int copy_str(struct buf *b, const char *s, size_t n, int sanitize)
{
    const unsigned char *u = (const unsigned char *)s;
    unsigned char mask = sanitize ? 3 : 1;
    size_t start = 0, i = 0;
    while (i < n) {
        while (i < n && !(copy_class[u[i]] & mask))
            i++;
        if (i == n)
            break;
        const char *esc = NULL;
        size_t l = 1;
        switch (u[i]) {
        case '\\':
            esc = "\\\\";
            break;
        case '\n':
            esc = "\\n";
            break;
        case '\r':
            esc = "\\r";
            break;
        case '\t':
            esc = "\\t";
            break;
        default: /* sanitizing: NUL or non-ASCII */
            l = utf8_len(u + i, n - i);
            if (!l) {
                esc = "?";
                l = 1;
            }
        }
        if (esc) {
            if (buf_append(b, s + start, i - start) || buf_append(b, esc, strlen(esc)))
                return -1;
            start = i + l;
        }
        i += l;
    }
    return buf_append(b, s + start, n - start);
}

/* Empties a buffer and keeps its memory (buf_reset gives a large one back
 * to malloc, which costs a consolidation per COPY chunk). */
static void buf_clear(struct buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

static int put_i64(struct buf *b, int64_t v)
{
    char t[24];
    size_t i = sizeof(t);
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        t[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        t[--i] = '-';
    return buf_append(b, t + i, sizeof(t) - i);
}

static int copy_null(struct buf *b)
{
    return buf_append(b, "\\N", 2);
}

static int copy_sep(struct buf *b, char c)
{
    return buf_putc(b, c);
}

static void digits(char *p, int64_t v, int n)
{
    while (n-- > 0) {
        p[n] = (char)('0' + v % 10);
        v /= 10;
    }
}

/* Without printf: this runs for every timestamp of every row. */
void pg_sink_format_ts(int64_t us, char *buf)
{
    int64_t secs = us / 1000000, frac = us % 1000000;
    if (frac < 0) {
        frac += 1000000;
        secs--;
    }
    int64_t days = secs / 86400, rem = secs % 86400;
    if (rem < 0) {
        rem += 86400;
        days--;
    }
    int64_t y;
    int m, d;
    civil_date_from_days(days, &y, &m, &d);
    memcpy(buf, "0000-00-00 00:00:00.000000+00", 30);
    digits(buf, y % 10000, 4);
    digits(buf + 5, m, 2);
    digits(buf + 8, d, 2);
    digits(buf + 11, rem / 3600, 2);
    digits(buf + 14, rem / 60 % 60, 2);
    digits(buf + 17, rem % 60, 2);
    digits(buf + 20, frac, 6);
}

static int copy_ts(struct buf *b, int64_t us)
{
    char t[40];
    pg_sink_format_ts(us, t);
    return buf_append(b, t, 29);
}

static int copy_value(struct buf *b, const struct res_col *c, const struct res_value *v)
{
    if (v->null)
        return copy_null(b);
    switch (c->kind) {
    case RES_INT:
        return put_i64(b, v->i);
    case RES_BOOL:
        return buf_putc(b, v->i ? 't' : 'f');
    case RES_DBL:
        return buf_printf(b, "%.17g", v->d);
    case RES_TS:
        return copy_ts(b, v->i);
    default:
        return copy_str(b, v->s, v->slen, 0);
    }
}

static int copy_dbl(struct buf *b, int has, double d)
{
    return has ? buf_printf(b, "%.17g", d) : copy_null(b);
}

static int copy_int(struct buf *b, int has, int64_t i)
{
    return has ? put_i64(b, i) : copy_null(b);
}

/* ---- libpq plumbing --------------------------------------------------- */

/* Maps a failed result to SINK_RETRY / SINK_DATAERR / SINK_FATAL, fills
 * errstr, and drops the connection when it is gone. Clears res. */
static int fail(struct pg_sink *s, PGresult *res, const char *what, char *errstr, size_t errsz)
{
    const char *m = res ? PQresultErrorMessage(res) : "";
    if (!m || !*m)
        m = PQerrorMessage(s->conn);
    const char *st = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    snprintf(errstr, errsz, "%s: %.*s%s%s%s", what, (int)strcspn(m, "\n"), m, st ? " (" : "",
             st ? st : "", st ? ")" : "");
    int rc = SINK_FATAL;
    if (pgconn_lost(s->conn, res)) {
        rc = SINK_RETRY;
    } else if (st && !strcmp(st, "23514")) {
        s->ndays = 0; /* a partition went away (retention): create it again */
        rc = SINK_RETRY;
    } else if (st && (!strncmp(st, "22", 2) || !strncmp(st, "23", 2) || !strncmp(st, "54", 2))) {
        rc = SINK_DATAERR;
    }
    PQclear(res);
    if (rc == SINK_RETRY && s->conn && PQstatus(s->conn) != CONNECTION_OK) {
        PQfinish(s->conn);
        s->conn = NULL;
    } else if (s->conn && PQtransactionStatus(s->conn) != PQTRANS_IDLE) {
        PGresult *r = PQexec(s->conn, "ROLLBACK");
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            PQfinish(s->conn);
            s->conn = NULL;
        }
        PQclear(r);
    }
    return rc;
}

static int exec(struct pg_sink *s, const char *sql, const char *what, char *errstr, size_t errsz)
{
    PGresult *r = PQexec(s->conn, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        return fail(s, r, what, errstr, errsz);
    PQclear(r);
    return SINK_OK;
}

static int ensure_conn(struct pg_sink *s, char *errstr, size_t errsz)
{
    if (s->conn && PQstatus(s->conn) == CONNECTION_OK)
        return SINK_OK;
    PQfinish(s->conn);
    s->conn = pgconn_open(s->conninfo, "mbta-stream consume", errstr, errsz);
    if (!s->conn)
        return SINK_RETRY;
    /* work_mem: the DISTINCT ON of a batch's wide rows sorts in memory. */
    int rc =
        exec(s, "SET synchronous_commit = on; SET work_mem = '64MB'", "session", errstr, errsz);
    return rc ? SINK_RETRY : SINK_OK;
}

/* Starts COPY sql; SINK_OK when the server is ready for data. */
static int copy_begin(struct pg_sink *s, const char *sql, char *errstr, size_t errsz)
{
    PGresult *r = PQexec(s->conn, sql);
    if (PQresultStatus(r) != PGRES_COPY_IN)
        return fail(s, r, "COPY", errstr, errsz);
    PQclear(r);
    return SINK_OK;
}

static int copy_put(struct pg_sink *s, struct buf *b, int force, char *errstr, size_t errsz)
{
    if (b->len == 0 || (!force && b->len < COPY_CHUNK))
        return SINK_OK;
    if (PQputCopyData(s->conn, b->data, (int)b->len) != 1)
        return fail(s, NULL, "COPY data", errstr, errsz);
    buf_clear(b);
    return SINK_OK;
}

static int copy_end(struct pg_sink *s, struct buf *b, char *errstr, size_t errsz)
{
    int rc = copy_put(s, b, 1, errstr, errsz);
    if (rc)
        return rc;
    if (PQputCopyEnd(s->conn, NULL) != 1)
        return fail(s, NULL, "COPY end", errstr, errsz);
    PGresult *r = PQgetResult(s->conn);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        /* drain the remaining results before the ROLLBACK */
        PGresult *x;
        int frc = fail(s, r, "COPY", errstr, errsz);
        while (s->conn && (x = PQgetResult(s->conn)))
            PQclear(x);
        return frc;
    }
    PQclear(r);
    while ((r = PQgetResult(s->conn)))
        PQclear(r);
    return SINK_OK;
}

/* ---- pipelines -------------------------------------------------------- */

/* Phase timings for the debug line. */
static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/*
 * A transaction costs round trips, not server time, at low rates: the
 * statements that need no answer before the next one is sent go out
 * together in libpq's pipeline mode (libpq >= 14) and are answered
 * together at one sync. COPY cannot be pipelined: it runs between two
 * pipelines, outside pipeline mode.
 */
enum { PIPE_MAX = 256 }; /* statements per sync: their answers fit the socket buffers */
enum { PQ_PLAIN, PQ_KEEP, PQ_SWEEP }; /* what to do with a statement's answer */

struct pipe {
    int nq;                       /* statements sent since the last sync */
    unsigned char kind[PIPE_MAX]; /* PQ_* */
    PGresult *res[PIPE_MAX];      /* PQ_KEEP answers, the caller's to read and clear */
    const char *what[PIPE_MAX];   /* each statement's name for errors (static strings) */
    uint64_t swept;               /* the PQ_SWEEP answers, summed */
};

static void pipe_clear(struct pipe *p)
{
    for (int i = 0; i < PIPE_MAX; i++) {
        PQclear(p->res[i]);
        p->res[i] = NULL;
    }
}

/* The connection is in an unknown state (a send failed, or results are
 * missing): drop it; the batch is retried on a new one. */
static int pipe_lost(struct pg_sink *s, const char *what, char *errstr, size_t errsz)
{
    const char *m = PQerrorMessage(s->conn);
    snprintf(errstr, errsz, "%s: %.*s", what, (int)strcspn(m, "\n"), *m ? m : "connection lost");
    PQfinish(s->conn);
    s->conn = NULL;
    return SINK_RETRY;
}

/* Sends every queued statement and reads every answer up to the sync, then
 * leaves pipeline mode. The first error is mapped as fail() does (the
 * statements after it were skipped by the server). */
static int pipe_sync(struct pg_sink *s, struct pipe *p, const char *what, char *errstr,
                     size_t errsz)
{
    PGresult *bad = NULL;
    int synced = 0, i = 0, badi = -1;
    if (PQpipelineSync(s->conn) == 1) {
        while (!synced) {
            PGresult *r = PQgetResult(s->conn);
            if (!r) { /* the end of one statement's answers */
                if (PQstatus(s->conn) != CONNECTION_OK || ++i > p->nq)
                    break;
                continue;
            }
            ExecStatusType st = PQresultStatus(r);
            if (st == PGRES_PIPELINE_SYNC) {
                synced = 1;
            } else if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
                if (i < p->nq && p->kind[i] == PQ_SWEEP && PQntuples(r) == 1)
                    p->swept += strtoull(PQgetvalue(r, 0, 0), NULL, 10);
                if (i < p->nq && p->kind[i] == PQ_KEEP && !p->res[i]) {
                    p->res[i] = r;
                    r = NULL;
                }
            } else if (st != PGRES_PIPELINE_ABORTED && !bad) {
                bad = r;
                badi = i;
                r = NULL;
            }
            PQclear(r);
        }
    }
    if (badi >= 0 && badi < p->nq)
        what = p->what[badi];
    p->nq = 0;
    if (!synced || !PQexitPipelineMode(s->conn)) {
        PQclear(bad);
        return pipe_lost(s, what, errstr, errsz);
    }
    return bad ? fail(s, bad, what, errstr, errsz) : SINK_OK;
}

/* Queues one statement (entering pipeline mode if needed), syncing first
 * when the pipeline is full. *idx (may be NULL): its index in p, where a
 * PQ_KEEP answer will be. Returns SINK_OK or what pipe_sync() returned. */
static int pipe_send(struct pg_sink *s, struct pipe *p, int kind, const char *sql, int nparams,
                     const char *const *params, int *idx, const char *what, char *errstr,
                     size_t errsz)
{
    if (p->nq == PIPE_MAX) {
        int rc = pipe_sync(s, p, what, errstr, errsz);
        if (rc)
            return rc;
    }
    if ((PQpipelineStatus(s->conn) == PQ_PIPELINE_OFF && PQenterPipelineMode(s->conn) != 1) ||
        PQsendQueryParams(s->conn, sql, nparams, NULL, params, NULL, NULL, 0) != 1)
        return pipe_lost(s, what, errstr, errsz);
    if (idx)
        *idx = p->nq;
    p->what[p->nq] = what;
    p->kind[p->nq++] = (unsigned char)kind;
    return SINK_OK;
}

/* ---- the hash of (type, id) -> item index ------------------------------ */

/* The type is its descriptor and its name: every type without a table of
 * its own shares the generic descriptor, so "facility:x1" and "parking:x1"
 * differ only by name. */
struct hent {
    const void *t;
    const char *tname;
    const char *id;
    size_t val;
};

struct hmap {
    struct hent *e;
    size_t cap, n;
};

static uint64_t hash(const void *t, const char *tname, const char *id)
{
    uint64_t h = 1469598103934665603ull ^ (uint64_t)(uintptr_t)t;
    for (; *tname; tname++)
        h = (h ^ (unsigned char)*tname) * 1099511628211ull;
    h = (h ^ ':') * 1099511628211ull;
    for (; *id; id++)
        h = (h ^ (unsigned char)*id) * 1099511628211ull;
    return h;
}

static struct hent *hmap_slot(struct hmap *m, const void *t, const char *tname, const char *id)
{
    size_t i = hash(t, tname, id) & (m->cap - 1);
    while (m->e[i].id && (m->e[i].t != t || strcmp(m->e[i].id, id) || strcmp(m->e[i].tname, tname)))
        i = (i + 1) & (m->cap - 1);
    return &m->e[i];
}

/* Returns the slot for (t, tname, id), inserting it with val when absent;
 * *found says which. NULL when out of memory. */
static struct hent *hmap_put(struct hmap *m, const void *t, const char *tname, const char *id,
                             size_t val, int *found)
{
    if ((m->n + 1) * 2 > m->cap) {
        size_t ncap = m->cap ? m->cap * 2 : 64;
        struct hmap nm = {calloc(ncap, sizeof(struct hent)), ncap, 0};
        if (!nm.e)
            return NULL;
        for (size_t i = 0; i < m->cap; i++)
            if (m->e[i].id) {
                *hmap_slot(&nm, m->e[i].t, m->e[i].tname, m->e[i].id) = m->e[i];
                nm.n++;
            }
        free(m->e);
        *m = nm;
    }
    struct hent *e = hmap_slot(m, t, tname, id);
    *found = e->id != NULL;
    if (!e->id) {
        e->t = t;
        e->tname = tname;
        e->id = id;
        e->val = val;
        m->n++;
    }
    return e;
}

static void hmap_clear(struct hmap *m)
{
    if (m->e)
        memset(m->e, 0, m->cap * sizeof(*m->e));
    m->n = 0;
}

static void hmap_fini(struct hmap *m)
{
    free(m->e);
    memset(m, 0, sizeof(*m));
}

/* ---- classification --------------------------------------------------- */

static const char *item_id(const struct item *it)
{
    return it->kind == IT_RES ? it->row.id : it->id;
}

static const char *item_type(const struct item *it)
{
    return it->kind == IT_RES ? it->row.rtype : it->rtype;
}

static void dead(struct item *it, const char *fmt, const char *a)
{
    char why[512];
    snprintf(why, sizeof(why), fmt, a);
    res_row_fini(&it->row);
    it->kind = IT_DEAD;
    free(it->reason);
    it->reason = strdup(why);
}

static void classify(struct pg_sink *s, struct item *it, const struct sink_msg *m,
                     const char *force_reason)
{
    char why[512];
    memset(it, 0, sizeof(*it));
    it->m = m;
    if (force_reason) {
        dead(it, "%s", force_reason);
        return;
    }
    const struct sink_hdr *h;
    if (s->dlq_topic && m->topic && !strcmp(m->topic, s->dlq_topic)) {
        h = hdr_get(m, "reason");
        char *r = h && h->value ? xstrndup(h->value, h->len) : NULL;
        dead(it, "%s", r ? r : "dead letter without a reason header");
        free(r);
        return;
    }
    if ((h = hdr_get(m, "received-at")) && h->value) {
        int64_t ns;
        if (parse_i64(h->value, h->len, &ns) || ns <= 0)
            return dead(it, "bad header received-at: %s", "not a positive decimal");
        it->received_us = ns / 1000;
    } else if (m->timestamp_ms > 0) {
        it->received_us = m->timestamp_ms * 1000;
    } else {
        return dead(it, "missing header: %s", "received-at");
    }
    if (it->received_us < (int64_t)-2208988800 * 1000000 || it->received_us > 32503680000000000)
        return dead(it, "header received-at out of range%s", "");
    if ((h = hdr_get(m, "generation")) && h->value) {
        if (parse_i64(h->value, h->len, &it->gen))
            return dead(it, "bad header generation: %s", "not a decimal");
        it->has_gen = 1;
    }
    if ((h = hdr_get(m, "stream")) && h->value) {
        if (!utf8_valid(h->value, h->len) || memchr(h->value, 0, h->len))
            return dead(it, "bad header stream: %s", "not UTF-8 text");
        it->stream = h->value;
        it->streamlen = h->len;
    }
    h = hdr_get(m, "event");
    if (!h || !h->value) {
        if (m->value)
            return dead(it, "missing header: %s", "event");
        it->event = "remove"; /* a bare tombstone */
        it->eventlen = 6;
    } else {
        it->event = h->value;
        it->eventlen = h->len;
    }
#define EV(x) (it->eventlen == strlen(x) && !memcmp(it->event, x, it->eventlen))
    if (EV("reset-end")) {
        json_error_t je;
        json_t *j = m->value ? json_loadb(m->value, m->len, 0, &je) : NULL;
        json_t *g = j ? json_object_get(j, "generation") : NULL;
        json_t *st = j ? json_object_get(j, "stream") : NULL;
        if (!g || !json_is_integer(g) || !st || !json_is_string(st)) {
            json_decref(j);
            return dead(it, "malformed reset-end marker: %s",
                        "expected {\"stream\": string, \"generation\": integer}");
        }
        it->kind = IT_MARKER;
        it->gen = json_integer_value(g);
        it->has_gen = 1;
        it->reason = strdup(json_string_value(st)); /* the marker's stream */
        json_decref(j);
        return;
    }
    const char *kt = NULL, *kid = NULL;
    size_t ktl = 0, kidl = 0;
    int haskey = m->key && !res_split_key(m->key, m->keylen, &kt, &ktl, &kid, &kidl);
    if (haskey && (!utf8_valid(m->key, m->keylen) || memchr(m->key, 0, m->keylen)))
        return dead(it, "key is not UTF-8 text%s", "");
    if (!m->value || EV("remove")) {
        if (!haskey)
            return dead(it, "remove without a <type>:<id> key%s", "");
        it->kind = IT_REMOVE;
        it->rtype = xstrndup(kt, ktl);
        it->id = xstrndup(kid, kidl);
        it->type = res_type_find(kt, ktl);
        return;
    }
    if (!EV("reset") && !EV("add") && !EV("update")) {
        char ev[64];
        snprintf(ev, sizeof(ev), "%.*s", (int)(it->eventlen > 40 ? 40 : it->eventlen), it->event);
        return dead(it, "unknown event \"%s\"", ev);
    }
#undef EV
    char *ktype = haskey ? xstrndup(kt, ktl) : NULL, *kidd = haskey ? xstrndup(kid, kidl) : NULL;
    int rc = res_parse(m->value, m->len, ktype, kidd, &it->row, why, sizeof(why));
    free(ktype);
    free(kidd);
    if (rc)
        return dead(it, "%s", why);
    it->kind = IT_RES;
    it->type = it->row.type;
}

struct classify_job {
    struct pg_sink *s;
    struct item *items;
    const struct sink_msg *msgs;
    size_t n;
    const char *force_reason;
};

static void *classify_run(void *arg)
{
    struct classify_job *j = arg;
    for (size_t i = 0; i < j->n; i++)
        classify(j->s, &j->items[i], &j->msgs[i], j->force_reason);
    return NULL;
}

/* classify() is pure: a large batch is parsed by two threads (PostgreSQL is
 * idle meanwhile, and the machine has a core for it). */
static void classify_all(struct pg_sink *s, struct item *items, const struct sink_msg *msgs,
                         size_t n, const char *force_reason)
{
    struct classify_job a = {s, items, msgs, n, force_reason};
    pthread_t th;
    if (n >= 1000) {
        struct classify_job b = {s, items + n / 2, msgs + n / 2, n - n / 2, force_reason};
        a.n = n / 2;
        if (pthread_create(&th, NULL, classify_run, &b) == 0) {
            classify_run(&a);
            pthread_join(th, NULL);
            return;
        }
        a.n = n;
    }
    classify_run(&a);
}

/* ---- enrichment state ------------------------------------------------- */

struct prev {
    int present;
    struct enrich_pos pos;
    int has_pred;
    int64_t pred_us;
    const char *topic, *stream;
    size_t streamlen;
    int32_t partition;
    int has_gen;
    int64_t gen;
};

/* Queues the reads of the committed rows of the batch's vehicles and
 * predictions; idx[k] is the pipe index of type k's answer, -1 if none. */
static int prev_send(struct pg_sink *s, struct pipe *p, const struct item *items, size_t n,
                     int idx[2], char *errstr, size_t errsz)
{
    for (int k = 0; k < 2; k++) {
        const struct res_type *t = &res_types[k]; /* vehicle, prediction */
        struct buf arr;
        idx[k] = -1;
        buf_init(&arr, (size_t)1 << 30);
        buf_putc(&arr, '{');
        int any = 0;
        for (size_t i = 0; i < n; i++) {
            if ((items[i].kind != IT_RES && items[i].kind != IT_REMOVE) || items[i].type != t)
                continue;
            buf_append(&arr, any ? ",\"" : "\"", any ? 2 : 1);
            for (const char *q = item_id(&items[i]); *q; q++) {
                if (*q == '"' || *q == '\\')
                    buf_putc(&arr, '\\');
                buf_putc(&arr, *q);
            }
            buf_putc(&arr, '"');
            any = 1;
        }
        buf_putc(&arr, '}');
        if (!any) {
            buf_fini(&arr);
            continue;
        }
        char sql[512];
        snprintf(sql, sizeof(sql),
                 "SELECT id, %s, kafka_topic, stream, kafka_partition, generation FROM %s.%s"
                 " WHERE id = ANY($1::text[])",
                 k == 0 ? "latitude, longitude,"
                          " extract(epoch from updated_at)::numeric * 1000000"
                        : "extract(epoch from coalesce(arrival_time, departure_time))::numeric"
                          " * 1000000",
                 s->qschema, t->current);
        const char *params[1] = {arr.data};
        int rc = pipe_send(s, p, PQ_KEEP, sql, 1, params, &idx[k], "previous state", errstr, errsz);
        buf_fini(&arr);
        if (rc)
            return rc;
    }
    return SINK_OK;
}

/* Loads prev_send()'s answer for type k (0 vehicle, 1 prediction) into the
 * enrichment state; r must outlive it (the strings point into it). */
static int prev_apply(const PGresult *r, int k, struct hmap *map, struct prev **prevs,
                      size_t *nprev)
{
    const struct res_type *t = &res_types[k];
    int rows = PQntuples(r);
    /* prevs has room for 2n: at most n loaded, at most n added */
    for (int i = 0; i < rows; i++) {
        struct prev *p = &(*prevs)[*nprev];
        memset(p, 0, sizeof(*p));
        p->present = 1;
        int c = 1;
        if (k == 0) {
            p->pos.present = 1;
            p->pos.has_latlon = !PQgetisnull(r, i, 1) && !PQgetisnull(r, i, 2);
            p->pos.lat = atof(PQgetvalue(r, i, 1));
            p->pos.lon = atof(PQgetvalue(r, i, 2));
            p->pos.has_updated_at = !PQgetisnull(r, i, 3);
            p->pos.updated_at_us = strtoll(PQgetvalue(r, i, 3), NULL, 10);
            c = 4;
        } else {
            p->has_pred = !PQgetisnull(r, i, 1);
            p->pred_us = strtoll(PQgetvalue(r, i, 1), NULL, 10);
            c = 2;
        }
        p->topic = PQgetvalue(r, i, c);
        p->stream = PQgetisnull(r, i, c + 1) ? NULL : PQgetvalue(r, i, c + 1);
        p->streamlen = p->stream ? strlen(p->stream) : 0;
        p->partition = atoi(PQgetvalue(r, i, c + 2));
        p->has_gen = !PQgetisnull(r, i, c + 3);
        p->gen = strtoll(PQgetvalue(r, i, c + 3), NULL, 10);
        int found;
        if (!hmap_put(map, t, t->type, PQgetvalue(r, i, 0), *nprev, &found))
            return SINK_FATAL;
        (*nprev)++;
    }
    return SINK_OK;
}

/* Follows the batch in order: enrichment from the state before each event,
 * then the state after it, the way the current tables will change. */
static int run_enrichment(struct pg_sink *s, struct item *items, size_t n, struct hmap *map,
                          struct prev **prevs, size_t *nprev)
{
    for (size_t i = 0; i < n; i++) {
        struct item *it = &items[i];
        if (it->kind == IT_MARKER) {
            for (size_t j = 0; j < *nprev; j++) {
                struct prev *p = &(*prevs)[j];
                if (p->present && p->partition == it->m->partition && p->topic &&
                    !strcmp(p->topic, it->m->topic) && p->stream &&
                    p->streamlen == strlen(it->reason) &&
                    !memcmp(p->stream, it->reason, p->streamlen) &&
                    !(p->has_gen && p->gen == it->gen))
                    p->present = 0;
            }
            continue;
        }
        if ((it->kind != IT_RES && it->kind != IT_REMOVE) || type_index(it->type) > 1)
            continue;
        int found;
        memset(&(*prevs)[*nprev], 0, sizeof((*prevs)[*nprev]));
        struct hent *e = hmap_put(map, it->type, item_type(it), item_id(it), *nprev, &found);
        if (!e)
            return -1;
        if (!found)
            (*nprev)++;
        struct prev *p = &(*prevs)[e->val];
        if (it->kind == IT_REMOVE) {
            p->present = 0;
            continue;
        }
        const struct res_value *v = it->row.v;
        if (type_index(it->type) == 0) {
            struct enrich_vehicle_in in = {0};
            in.received_at_us = it->received_us;
            in.cur.present = 1;
            in.cur.has_latlon = !v[s->v_lat].null && !v[s->v_lon].null;
            in.cur.lat = v[s->v_lat].d;
            in.cur.lon = v[s->v_lon].d;
            in.cur.has_updated_at = !v[s->v_upd].null;
            in.cur.updated_at_us = v[s->v_upd].i;
            if (p->present)
                in.prev = p->pos;
            enrich_vehicle(&in, &it->ev);
            p->pos = in.cur;
        } else {
            struct enrich_prediction_in in = {0};
            const struct res_value *pv = !v[s->p_arr].null ? &v[s->p_arr] : &v[s->p_dep];
            in.received_at_us = it->received_us;
            in.has_predicted = !pv->null;
            in.predicted_us = pv->i;
            in.has_prev_predicted = p->present && p->has_pred;
            in.prev_predicted_us = p->pred_us;
            enrich_prediction(&in, &it->ep);
            p->has_pred = in.has_predicted;
            p->pred_us = in.predicted_us;
        }
        p->present = 1;
        p->topic = it->m->topic;
        p->stream = it->stream ? it->stream : NULL;
        p->streamlen = it->streamlen;
        p->partition = it->m->partition;
        p->has_gen = it->has_gen;
        p->gen = it->gen;
    }
    return 0;
}

/* ---- rows ------------------------------------------------------------- */

/* The common tail of history and current rows. */
static int copy_tail(struct buf *b, const struct item *it, int history)
{
    const struct sink_msg *m = it->m;
    int rc = 0;
    if (history) {
        rc |= copy_sep(b, '\t');
        rc |= copy_str(b, it->event, it->eventlen, 1);
    }
    rc |= copy_sep(b, '\t');
    rc |= it->stream ? copy_str(b, it->stream, it->streamlen, 1) : copy_null(b);
    rc |= copy_sep(b, '\t');
    rc |= copy_int(b, it->has_gen, it->gen);
    rc |= copy_sep(b, '\t');
    rc |= copy_str(b, m->topic, strlen(m->topic), 1);
    rc |= buf_printf(b, "\t%d\t%" PRId64 "\t", (int)m->partition, m->offset);
    rc |= copy_ts(b, it->received_us);
    rc |= copy_sep(b, '\n');
    return rc;
}

/* One row: history (with enrichment and event) or current staging. */
static int copy_row(struct buf *b, const struct item *it, int history)
{
    const struct res_type *t = it->type;
    int rc = 0, res = it->kind == IT_RES;
    if (!t->type) {
        rc |= copy_str(b, item_type(it), strlen(item_type(it)), 1);
        rc |= copy_sep(b, '\t');
    }
    rc |= copy_str(b, item_id(it), strlen(item_id(it)), 1);
    for (size_t c = 0; c < t->ncols; c++) {
        rc |= copy_sep(b, '\t');
        rc |= res ? copy_value(b, &t->cols[c], &it->row.v[c]) : copy_null(b);
    }
    if (history && type_index(t) == 0) {
        const struct enrich_vehicle_out *e = &it->ev;
        char d[16];
        rc |= copy_sep(b, '\t');
        rc |= copy_int(b, e->has_ingest_lag, e->ingest_lag_ms);
        rc |= copy_sep(b, '\t');
        rc |= copy_dbl(b, e->has_prev, e->prev_gap_s);
        rc |= copy_sep(b, '\t');
        rc |= copy_dbl(b, e->has_prev, e->prev_distance_m);
        rc |= copy_sep(b, '\t');
        rc |= copy_dbl(b, e->has_implied_speed, e->implied_speed_mps);
        rc |= copy_sep(b, '\t');
        if (e->has_local) {
            enrich_date_str(e->service_date, d);
            rc |= buf_append(b, d, strlen(d));
        } else {
            rc |= copy_null(b);
        }
        rc |= copy_sep(b, '\t');
        rc |= copy_int(b, e->has_local, e->local_hour);
        rc |= copy_sep(b, '\t');
        rc |= copy_int(b, e->has_local, e->local_dow);
        rc |= copy_sep(b, '\t');
        rc |= copy_int(b, e->has_route_type, e->route_type);
    } else if (history && type_index(t) == 1) {
        const struct enrich_prediction_out *e = &it->ep;
        rc |= copy_sep(b, '\t');
        rc |= copy_dbl(b, e->has_lead_time, e->lead_time_s);
        rc |= copy_sep(b, '\t');
        rc |= copy_dbl(b, e->has_drift, e->drift_s);
        rc |= copy_sep(b, '\t');
        rc |= copy_dbl(b, e->has_schedule_delay, e->schedule_delay_s);
    }
    rc |= copy_sep(b, '\t');
    if (res)
        rc |= copy_str(b, it->m->value, it->m->len, 0);
    else
        rc |= copy_null(b);
    rc |= copy_tail(b, it, history);
    return rc ? -1 : 0;
}

/* The column list of a table's COPY: "(id, ..., received_at)". */
static void col_list(struct buf *b, const struct res_type *t, int history)
{
    buf_putc(b, '(');
    if (!t->type)
        buf_printf(b, "type, ");
    buf_printf(b, "id");
    for (size_t c = 0; c < t->ncols; c++)
        buf_printf(b, ", %s", t->cols[c].name);
    if (history && type_index(t) == 0)
        buf_printf(b, ", ingest_lag_ms, prev_gap_s, prev_distance_m, implied_speed_mps,"
                      " service_date, local_hour, local_dow, route_type");
    if (history && type_index(t) == 1)
        buf_printf(b, ", lead_time_s, drift_s, schedule_delay_s");
    buf_printf(b,
               ", raw%s, stream, generation, kafka_topic, kafka_partition, kafka_offset,"
               " received_at)",
               history ? ", event" : "");
}

static int copy_dead(struct buf *b, const struct item *it)
{
    const struct sink_msg *m = it->m;
    int rc = copy_str(b, m->topic, strlen(m->topic), 1);
    rc |= buf_printf(b, "\t%d\t%" PRId64 "\t", (int)m->partition, m->offset);
    rc |= m->key ? copy_str(b, m->key, m->keylen, 1) : copy_null(b);
    rc |= copy_sep(b, '\t');
    json_t *h = json_object();
    for (size_t i = 0; i < m->nhdrs; i++) {
        json_t *v = m->hdrs[i].value ? json_stringn(m->hdrs[i].value, m->hdrs[i].len) : NULL;
        if (m->hdrs[i].name && utf8_valid(m->hdrs[i].name, strlen(m->hdrs[i].name)))
            json_object_set_new(h, m->hdrs[i].name, v ? v : json_null());
        else
            json_decref(v);
    }
    char *hs = json_dumps(h, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(h);
    rc |= hs ? copy_str(b, hs, strlen(hs), 0) : copy_null(b);
    free(hs);
    rc |= copy_sep(b, '\t');
    if (m->value) {
        static const char hex[] = "0123456789abcdef";
        rc |= buf_append(b, "\\\\x", 3);
        for (size_t i = 0; i < m->len; i++) {
            unsigned char c = (unsigned char)m->value[i];
            char two[2] = {hex[c >> 4], hex[c & 15]};
            rc |= buf_append(b, two, 2);
        }
    } else {
        rc |= copy_null(b);
    }
    rc |= copy_sep(b, '\t');
    rc |= copy_str(b, it->reason, strlen(it->reason), 1);
    rc |= copy_sep(b, '\t');
    rc |= it->received_us ? copy_ts(b, it->received_us) : copy_null(b);
    rc |= copy_sep(b, '\n');
    return rc ? -1 : 0;
}

/* Appends id as an element of a text[] literal. */
static void arr_add(struct buf *b, const char *id)
{
    buf_putc(b, b->len > 1 ? ',' : '{');
    buf_putc(b, '"');
    for (; *id; id++) {
        if (*id == '"' || *id == '\\')
            buf_putc(b, '\\');
        buf_putc(b, *id);
    }
    buf_putc(b, '"');
}

/* The tail of the statement that applies one segment of one type to its
 * current table. The rows are read back from the history rows just COPY'd
 * (so the raw jsonb is parsed once, not twice, and nothing is sent again):
 * only the winners, the last event of each entity in the segment, which
 * the sink already knows (flush_current names them by offset), so the
 * server neither reads nor sorts the superseded rows; a remove deletes.
 * Caller frees. */
static char *upsert_sql(const struct pg_sink *s, const struct res_type *rt)
{
    struct buf q;
    const char *key = rt->type ? "id" : "type, id";
    buf_init(&q, 1 << 16);
    /* The statement's tail; flush_current() puts the ranges in front. */
    buf_printf(
        &q,
        ") x),"
        " del AS (DELETE FROM %s.%s c USING last l WHERE l.event = 'remove' AND c.id = l.id%s)"
        " INSERT INTO %s.%s AS c ",
        s->qschema, rt->current, rt->type ? "" : " AND c.type = l.type", s->qschema, rt->current);
    col_list(&q, rt, 0);
    buf_printf(&q, " SELECT ");
    size_t from = q.len;
    col_list(&q, rt, 0); /* the same list without its parentheses */
    q.data[from] = ' ';
    q.data[q.len - 1] = ' ';
    buf_printf(&q, "FROM last WHERE event <> 'remove' ON CONFLICT (%s) DO UPDATE SET ", key);
    for (size_t c = 0; c < rt->ncols; c++)
        buf_printf(&q, "%s = EXCLUDED.%s, ", rt->cols[c].name, rt->cols[c].name);
    buf_printf(&q, "raw = EXCLUDED.raw, stream = EXCLUDED.stream,"
                   " generation = EXCLUDED.generation, kafka_topic = EXCLUDED.kafka_topic,"
                   " kafka_partition = EXCLUDED.kafka_partition,"
                   " kafka_offset = EXCLUDED.kafka_offset,"
                   " received_at = EXCLUDED.received_at, ingested_at = now()");
    return q.data; /* the buffer's memory, handed over */
}

struct range {
    const char *topic;
    int32_t partition;
    int64_t lo, hi; /* the winners' offsets */
};

/* Queues the pending current-table changes of one segment. */
static int flush_current(struct pg_sink *s, struct pipe *p, struct item *items, size_t *pend,
                         size_t npend, struct pg_sink_stats *st, char *errstr, size_t errsz)
{
    struct range *rg = calloc(npend, sizeof(*rg));
    int rc = SINK_OK;
    if (!rg)
        return SINK_FATAL;
    for (size_t t = 0; t < s->ntypes && !rc; t++) {
        const struct res_type *rt = &res_types[t];
        size_t nrg = 0, winners = 0;
        int64_t tmin = INT64_MAX, tmax = INT64_MIN;
        for (size_t k = 0; k < npend; k++) {
            struct item *it = &items[pend[k]];
            if (it->type != rt || it->superseded)
                continue;
            winners++;
            if (it->received_us < tmin)
                tmin = it->received_us;
            if (it->received_us > tmax)
                tmax = it->received_us;
            size_t r;
            for (r = 0; r < nrg; r++)
                if (rg[r].partition == it->m->partition && !strcmp(rg[r].topic, it->m->topic))
                    break;
            if (r == nrg) {
                rg[nrg++] =
                    (struct range){it->m->topic, it->m->partition, it->m->offset, it->m->offset};
            } else {
                if (it->m->offset < rg[r].lo)
                    rg[r].lo = it->m->offset;
                if (it->m->offset > rg[r].hi)
                    rg[r].hi = it->m->offset;
            }
        }
        if (!nrg)
            continue;
        /* One branch per partition, as literals: each is planned with its
         * own bounds (an index range scan of the unique key, day partitions
         * pruned; without the offset range, a fresh partition without
         * statistics was planned as a scan of the whole day filtered by the
         * list), the list keeps only the winners. */
        char t0[40], t1[40];
        pg_sink_format_ts(tmin, t0);
        pg_sink_format_ts(tmax, t1);
        struct buf q;
        buf_init(&q, (size_t)1 << 26);
        buf_printf(&q, "WITH last AS (SELECT x.* FROM (");
        for (size_t r = 0; r < nrg; r++) {
            char *lit = PQescapeLiteral(s->conn, rg[r].topic, strlen(rg[r].topic));
            if (!lit) {
                buf_fini(&q);
                rc = pipe_lost(s, "upsert", errstr, errsz);
                break;
            }
            buf_printf(&q,
                       "%sSELECT * FROM %s.%s h WHERE h.kafka_topic = %s AND h.kafka_partition = %d"
                       " AND h.kafka_offset BETWEEN %" PRId64 " AND %" PRId64
                       " AND h.received_at BETWEEN '%s' AND '%s' AND h.kafka_offset = ANY('",
                       r ? " UNION ALL " : "", s->qschema, rt->history, lit, (int)rg[r].partition,
                       rg[r].lo, rg[r].hi, t0, t1);
            PQfreemem(lit);
            char sep = '{';
            for (size_t k = 0; k < npend; k++) {
                const struct item *it = &items[pend[k]];
                if (it->type != rt || it->superseded || it->m->partition != rg[r].partition ||
                    strcmp(it->m->topic, rg[r].topic))
                    continue;
                buf_putc(&q, sep);
                put_i64(&q, it->m->offset);
                sep = ',';
            }
            buf_printf(&q, "}'::bigint[])");
        }
        if (rc)
            break;
        if (buf_append(&q, s->upsert[t], strlen(s->upsert[t]))) {
            buf_fini(&q);
            rc = SINK_FATAL;
            snprintf(errstr, errsz, "upsert statement too large");
            break;
        }
        rc = pipe_send(s, p, PQ_PLAIN, q.data, 0, NULL, NULL, "upsert", errstr, errsz);
        buf_fini(&q);
        st->current_rows += winners;
    }
    free(rg);
    return rc;
}

/* Creates the history partitions of the batch's days (own transactions). */
static int ensure_days(struct pg_sink *s, const struct item *items, size_t n, char *errstr,
                       size_t errsz)
{
    for (size_t i = 0; i < n; i++) {
        if (items[i].kind != IT_RES && items[i].kind != IT_REMOVE)
            continue;
        int64_t us = items[i].received_us;
        int64_t day = (us >= 0 ? us : us - 86399999999) / 86400000000;
        size_t k;
        for (k = 0; k < s->ndays && s->days[k] != day; k++)
            ;
        if (k < s->ndays)
            continue;
        char d[16], sql[256];
        enrich_date_str((int32_t)day, d);
        snprintf(sql, sizeof(sql), "SELECT %s.ensure_day_partitions('%s')", s->qschema, d);
        int rc = exec(s, sql, "day partitions", errstr, errsz);
        if (rc)
            return rc == SINK_DATAERR ? SINK_FATAL : rc;
        if (s->ndays == MAX_DAYS)
            s->ndays = 0;
        s->days[s->ndays++] = day;
    }
    return SINK_OK;
}

/* Releases what the items hold; the array itself is the sink's, reused
 * from batch to batch (a fresh 8 MB calloc per batch costs page faults). */
static void items_free(struct item *items, size_t n)
{
    for (size_t i = 0; items && i < n; i++) {
        res_row_fini(&items[i].row);
        free(items[i].rtype);
        free(items[i].id);
        free(items[i].reason);
        items[i].rtype = items[i].id = items[i].reason = NULL;
    }
}

/* Queues the lock of the batch's offsets rows (the answer, at *idx, says
 * what is already loaded: offsets_apply). */
static int offsets_send(struct pg_sink *s, struct pipe *p, const struct item *items, size_t n,
                        int *idx, char *errstr, size_t errsz)
{
    struct buf topics, parts;
    buf_init(&topics, (size_t)1 << 24);
    buf_init(&parts, (size_t)1 << 24);
    struct hmap seen = {0};
    char pk[300];
    char **keys = calloc(n ? n : 1, sizeof(char *));
    size_t nkeys = 0;
    int rc = SINK_FATAL;
    if (!keys)
        goto out;
    for (size_t i = 0; i < n; i++) {
        int found;
        snprintf(pk, sizeof(pk), "%d", (int)items[i].m->partition);
        keys[nkeys] = strdup(pk);
        if (!keys[nkeys] || !hmap_put(&seen, items[i].m->topic, "", keys[nkeys], 0, &found))
            goto out;
        if (found) {
            free(keys[nkeys]);
            continue;
        }
        nkeys++;
        arr_add(&topics, items[i].m->topic);
        buf_printf(&parts, "%s%d", parts.len ? "," : "{", (int)items[i].m->partition);
    }
    buf_putc(&topics, '}');
    buf_putc(&parts, '}');
    char sql[512];
    snprintf(sql, sizeof(sql),
             "SELECT topic, partition, next_offset FROM %s.offsets WHERE (topic, partition) IN"
             " (SELECT * FROM unnest($1::text[], $2::int[])) FOR UPDATE",
             s->qschema);
    const char *params[2] = {topics.data, parts.data};
    rc = pipe_send(s, p, PQ_KEEP, sql, 2, params, idx, "offsets", errstr, errsz);
out:
    for (size_t i = 0; i < nkeys; i++)
        free(keys[i]);
    free(keys);
    hmap_fini(&seen);
    buf_fini(&topics);
    buf_fini(&parts);
    return rc;
}

/* Marks the messages below their partition's stored next offset. */
static void offsets_apply(const PGresult *r, struct item *items, size_t n, struct pg_sink_stats *st)
{
    for (int row = 0; row < PQntuples(r); row++) {
        const char *topic = PQgetvalue(r, row, 0);
        int32_t part = atoi(PQgetvalue(r, row, 1));
        int64_t next = strtoll(PQgetvalue(r, row, 2), NULL, 10);
        for (size_t i = 0; i < n; i++)
            if (items[i].m->partition == part && !strcmp(items[i].m->topic, topic) &&
                items[i].m->offset < next && items[i].kind != IT_SKIP) {
                res_row_fini(&items[i].row);
                items[i].kind = IT_SKIP;
                st->skipped++;
            }
    }
}

/* Queues the store of each partition's next offset. */
static int write_offsets(struct pg_sink *s, struct pipe *p, const struct sink_msg *msgs, size_t n,
                         char *errstr, size_t errsz)
{
    struct buf topics, parts, offs;
    buf_init(&topics, (size_t)1 << 24);
    buf_init(&parts, (size_t)1 << 24);
    buf_init(&offs, (size_t)1 << 24);
    /* Messages of a partition are in order: its last one has the highest
     * offset. Quadratic in partitions per batch, which are few. */
    for (size_t i = 0; i < n; i++) {
        size_t j;
        for (j = i + 1; j < n; j++)
            if (msgs[j].partition == msgs[i].partition && !strcmp(msgs[j].topic, msgs[i].topic))
                break;
        if (j < n)
            continue;
        arr_add(&topics, msgs[i].topic);
        buf_printf(&parts, "%s%d", parts.len ? "," : "{", (int)msgs[i].partition);
        buf_printf(&offs, "%s%" PRId64, offs.len ? "," : "{", msgs[i].offset + 1);
    }
    buf_putc(&topics, '}');
    buf_putc(&parts, '}');
    buf_putc(&offs, '}');
    char sql[512];
    snprintf(sql, sizeof(sql),
             "INSERT INTO %s.offsets AS o (topic, partition, next_offset)"
             " SELECT * FROM unnest($1::text[], $2::int[], $3::bigint[])"
             " ON CONFLICT (topic, partition) DO UPDATE"
             " SET next_offset = GREATEST(o.next_offset, EXCLUDED.next_offset), updated_at = now()",
             s->qschema);
    const char *params[3] = {topics.data, parts.data, offs.data};
    int rc = pipe_send(s, p, PQ_PLAIN, sql, 3, params, NULL, "offsets", errstr, errsz);
    buf_fini(&topics);
    buf_fini(&parts);
    buf_fini(&offs);
    return rc;
}

/* One transaction for msgs[0..n); every message a dead letter with
 * force_reason when it is not NULL. */
static int write_tx(struct pg_sink *s, const struct sink_msg *msgs, size_t n,
                    const char *force_reason, struct pg_sink_stats *st, char *errstr, size_t errsz)
{
    struct pg_sink_stats d = {0};
    /* Kept from batch to batch (an item is 1.6 KB: 8 MB at 5,000), but
     * given back when batches have become much smaller (a drain is over):
     * the steady state at a low rate should not pay for the last drain. */
    if (n > s->items_cap || (s->items_cap > ITEMS_KEEP && n < s->items_cap / 4)) {
        size_t cap = n > ITEMS_KEEP ? n : ITEMS_KEEP;
        free(s->items);
        s->items_cap = 0;
        if ((s->items = calloc(cap, sizeof(*s->items))))
            s->items_cap = cap;
    }
    struct item *items = s->items;
    size_t *pend = calloc(n ? n : 1, sizeof(*pend));
    struct hmap pmap = {0}, emap = {0};
    struct prev *prevs = NULL;
    size_t nprev = 0, npend = 0;
    struct pipe *pp = calloc(1, sizeof(*pp));
    struct buf b;
    int rc = SINK_FATAL;
    buf_init(&b, (size_t)COPY_CHUNK * 4);
    prevs = calloc(2 * (n ? n : 1), sizeof(*prevs));
    if (!items || !pend || !prevs || !pp) {
        snprintf(errstr, errsz, "out of memory");
        goto out;
    }
    int64_t t_start = mono_us();
    classify_all(s, items, msgs, n, force_reason);
    if ((rc = ensure_conn(s, errstr, errsz)))
        goto out;
    if ((rc = ensure_days(s, items, n, errstr, errsz)))
        goto out;
    int64_t t_begin = mono_us();
    /* Round trip 1: BEGIN, lock the offsets rows, read the previous state. */
    int oidx = -1, pidx[2] = {-1, -1};
    if ((rc = pipe_send(s, pp, PQ_PLAIN, "BEGIN", 0, NULL, NULL, "begin", errstr, errsz)) ||
        (rc = offsets_send(s, pp, items, n, &oidx, errstr, errsz)) ||
        (rc = prev_send(s, pp, items, n, pidx, errstr, errsz)) ||
        (rc = pipe_sync(s, pp, "begin", errstr, errsz)))
        goto out;
    offsets_apply(pp->res[oidx], items, n, &d);
    for (int k = 0; k < 2; k++)
        if (pidx[k] >= 0 && (rc = prev_apply(pp->res[pidx[k]], k, &emap, &prevs, &nprev)))
            goto out;
    int64_t t_prev = mono_us();
    if (run_enrichment(s, items, n, &emap, &prevs, &nprev)) {
        rc = SINK_FATAL;
        snprintf(errstr, errsz, "out of memory");
        goto out;
    }
    /* History: one COPY per table, every event in Kafka order. */
    for (size_t t = 0; t < s->ntypes; t++) {
        size_t rows = 0;
        buf_clear(&b);
        for (size_t i = 0; i < n; i++) {
            if ((items[i].kind != IT_RES && items[i].kind != IT_REMOVE) ||
                items[i].type != &res_types[t])
                continue;
            if (!rows++) {
                struct buf q;
                buf_init(&q, 1 << 16);
                buf_printf(&q, "COPY %s.%s ", s->qschema, res_types[t].history);
                col_list(&q, &res_types[t], 1);
                buf_printf(&q, " FROM STDIN");
                rc = copy_begin(s, q.data, errstr, errsz);
                buf_fini(&q);
                if (rc)
                    goto out;
            }
            if (copy_row(&b, &items[i], 1)) {
                rc = SINK_DATAERR;
                snprintf(errstr, errsz, "row too large");
                goto out;
            }
            if ((rc = copy_put(s, &b, 0, errstr, errsz)))
                goto out;
        }
        if (rows && (rc = copy_end(s, &b, errstr, errsz)))
            goto out;
        d.history_rows += rows;
    }
    int64_t t_hist = mono_us();
    /* Dead letters (before the current tables: independent of them, and
     * COPY cannot join the pipeline that follows). */
    buf_clear(&b);
    for (size_t i = 0; i < n; i++) {
        if (items[i].kind != IT_DEAD)
            continue;
        if (!d.dead_letters++) {
            char sql[256];
            snprintf(sql, sizeof(sql),
                     "COPY %s.dead_letters (kafka_topic, kafka_partition, kafka_offset, key,"
                     " headers, raw, reason, received_at) FROM STDIN",
                     s->qschema);
            if ((rc = copy_begin(s, sql, errstr, errsz)))
                goto out;
        }
        copy_dead(&b, &items[i]);
        if ((rc = copy_put(s, &b, 0, errstr, errsz)))
            goto out;
        log_warn("dead letter: %s [%d] @%" PRId64 ": %s", items[i].m->topic,
                 (int)items[i].m->partition, items[i].m->offset, items[i].reason);
    }
    if (d.dead_letters && (rc = copy_end(s, &b, errstr, errsz)))
        goto out;
    /* Last round trip: the current tables segment by segment (a marker
     * ends a segment and sweeps), the offsets, COMMIT. */
    for (size_t i = 0; i <= n; i++) {
        struct item *it = i < n ? &items[i] : NULL;
        if (it && (it->kind == IT_RES || it->kind == IT_REMOVE)) {
            int found;
            struct hent *e = hmap_put(&pmap, it->type, item_type(it), item_id(it), i, &found);
            if (!e) {
                rc = SINK_FATAL;
                goto out;
            }
            if (found) {
                items[e->val].superseded = 1;
                e->val = i;
            }
            pend[npend++] = i;
            continue;
        }
        if (it && it->kind != IT_MARKER)
            continue;
        if (npend && (rc = flush_current(s, pp, items, pend, npend, &d, errstr, errsz)))
            goto out;
        npend = 0;
        hmap_clear(&pmap);
        if (it) {
            char sql[256], gen[32], part[16];
            snprintf(sql, sizeof(sql), "SELECT %s.reset_sweep($1, $2, $3::int, $4::bigint)",
                     s->qschema);
            snprintf(part, sizeof(part), "%d", (int)it->m->partition);
            snprintf(gen, sizeof(gen), "%" PRId64, it->gen);
            const char *params[4] = {it->m->topic, it->reason, part, gen};
            if ((rc = pipe_send(s, pp, PQ_SWEEP, sql, 4, params, NULL, "reset sweep", errstr,
                                errsz)))
                goto out;
        }
    }
    if (n && (rc = write_offsets(s, pp, msgs, n, errstr, errsz)))
        goto out;
    if ((rc = pipe_send(s, pp, PQ_PLAIN, "COMMIT", 0, NULL, NULL, "commit", errstr, errsz)) ||
        (rc = pipe_sync(s, pp, "commit", errstr, errsz)))
        goto out;
    d.swept = pp->swept;
    int64_t t_commit = mono_us();
    log_debug("batch %zu: classify %lld, begin+offsets+prev %lld, history %lld,"
              " dead letters+current+offsets+commit %lld us",
              n, (long long)(t_begin - t_start), (long long)(t_prev - t_begin),
              (long long)(t_hist - t_prev), (long long)(t_commit - t_hist));
    d.messages = n - d.skipped;
    d.batches = 1;
    st->messages += d.messages;
    st->history_rows += d.history_rows;
    st->current_rows += d.current_rows;
    st->swept += d.swept;
    st->dead_letters += d.dead_letters;
    st->skipped += d.skipped;
    st->batches += d.batches;
    rc = SINK_OK;
out:
    if (rc && s->conn && PQpipelineStatus(s->conn) != PQ_PIPELINE_OFF) {
        /* left mid-pipeline (an out-of-memory exit): the connection's
         * state is unknown */
        PQfinish(s->conn);
        s->conn = NULL;
    }
    if (rc && s->conn && PQtransactionStatus(s->conn) == PQTRANS_INERROR)
        PQclear(PQexec(s->conn, "ROLLBACK"));
    if (pp)
        pipe_clear(pp);
    free(pp);
    free(prevs);
    hmap_fini(&pmap);
    hmap_fini(&emap);
    free(pend);
    items_free(items, n);
    buf_fini(&b);
    return rc;
}

static int write_split(struct pg_sink *s, const struct sink_msg *msgs, size_t n,
                       struct pg_sink_stats *st, char *errstr, size_t errsz)
{
    int rc = write_tx(s, msgs, n, NULL, st, errstr, errsz);
    if (rc != SINK_DATAERR)
        return rc;
    if (n == 1) {
        char reason[600];
        snprintf(reason, sizeof(reason), "refused by PostgreSQL: %s", errstr);
        rc = write_tx(s, msgs, 1, reason, st, errstr, errsz);
        return rc == SINK_DATAERR ? SINK_FATAL : rc;
    }
    log_warn("batch of %zu refused (%s): splitting it to find the bad message", n, errstr);
    rc = write_split(s, msgs, n / 2, st, errstr, errsz);
    return rc ? rc : write_split(s, msgs + n / 2, n - n / 2, st, errstr, errsz);
}

int pg_sink_write(struct pg_sink *s, const struct sink_msg *msgs, size_t n,
                  struct pg_sink_stats *stats, char *errstr, size_t errsz)
{
    if (n == 0)
        return SINK_OK;
    return write_split(s, msgs, n, stats, errstr, errsz);
}

int pg_sink_offsets(struct pg_sink *s, const char *topic, const int32_t *partitions, size_t n,
                    int64_t *offsets, char *errstr, size_t errsz)
{
    int rc = ensure_conn(s, errstr, errsz);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++)
        offsets[i] = -1;
    char sql[256];
    snprintf(sql, sizeof(sql), "SELECT partition, next_offset FROM %s.offsets WHERE topic = $1",
             s->qschema);
    const char *params[1] = {topic};
    PGresult *r = PQexecParams(s->conn, sql, 1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        rc = fail(s, r, "offsets", errstr, errsz);
        return rc == SINK_DATAERR ? SINK_FATAL : rc;
    }
    for (int row = 0; row < PQntuples(r); row++) {
        int32_t p = atoi(PQgetvalue(r, row, 0));
        for (size_t i = 0; i < n; i++)
            if (partitions[i] == p)
                offsets[i] = strtoll(PQgetvalue(r, row, 1), NULL, 10);
    }
    PQclear(r);
    return SINK_OK;
}

struct pg_sink *pg_sink_new(const char *conninfo, const char *schema, const char *dead_letter_topic)
{
    struct pg_sink *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->conninfo = strdup(conninfo ? conninfo : "");
    s->schema = strdup(schema);
    s->qschema = malloc(strlen(schema) + 3);
    s->dlq_topic = dead_letter_topic && *dead_letter_topic ? strdup(dead_letter_topic) : NULL;
    if (!s->conninfo || !s->schema || !s->qschema) {
        pg_sink_destroy(s);
        return NULL;
    }
    sprintf(s->qschema, "\"%s\"", schema);
    s->ntypes = res_types_count;
    copy_class_init();
    for (size_t t = 0; t < s->ntypes; t++)
        if (!(s->upsert[t] = upsert_sql(s, &res_types[t]))) {
            pg_sink_destroy(s);
            return NULL;
        }
    s->v_lat = res_type_col(&res_types[0], "latitude");
    s->v_lon = res_type_col(&res_types[0], "longitude");
    s->v_upd = res_type_col(&res_types[0], "updated_at");
    s->p_arr = res_type_col(&res_types[1], "arrival_time");
    s->p_dep = res_type_col(&res_types[1], "departure_time");
    return s;
}

void pg_sink_destroy(struct pg_sink *s)
{
    if (!s)
        return;
    PQfinish(s->conn);
    for (size_t t = 0; t < NTYPES; t++)
        free(s->upsert[t]);
    free(s->items);
    free(s->conninfo);
    free(s->schema);
    free(s->qschema);
    free(s->dlq_topic);
    free(s);
}
