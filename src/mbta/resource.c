/*
 * resource: see resource.h. The descriptors below ARE the column lists of
 * sql/001_schema.sql (same names, same order); change both together.
 */
#include "mbta/resource.h"
#include "util/civil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json/jscan.h"

#define COLS(a) a, sizeof(a) / sizeof(a[0])

static const struct res_col vehicle_cols[] = {
    {"bearing", RES_INT, "bearing", 0, 360},
    {"current_status", RES_TEXT, "current_status", 0, 0},
    {"current_stop_sequence", RES_INT, "current_stop_sequence", 0, 2147483647},
    {"direction_id", RES_INT, "direction_id", 0, 1},
    {"label", RES_TEXT, "label", 0, 0},
    {"latitude", RES_DBL, "latitude", -90, 90},
    {"longitude", RES_DBL, "longitude", -180, 180},
    {"speed", RES_DBL, "speed", 0, 1000},
    {"updated_at", RES_TS, "updated_at", 0, 0},
    {"occupancy_status", RES_TEXT, "occupancy_status", 0, 0},
    {"carriages", RES_JSON, "carriages", 0, 0},
    {"revenue", RES_TEXT, "revenue", 0, 0},
    {"trip_id", RES_RELID, "trip", 0, 0},
    {"stop_id", RES_RELID, "stop", 0, 0},
    {"route_id", RES_RELID, "route", 0, 0},
};

static const struct res_col prediction_cols[] = {
    {"arrival_time", RES_TS, "arrival_time", 0, 0},
    {"departure_time", RES_TS, "departure_time", 0, 0},
    {"arrival_uncertainty", RES_INT, "arrival_uncertainty", -2147483647, 2147483647},
    {"departure_uncertainty", RES_INT, "departure_uncertainty", -2147483647, 2147483647},
    {"direction_id", RES_INT, "direction_id", 0, 1},
    {"last_trip", RES_BOOL, "last_trip", 0, 0},
    {"schedule_relationship", RES_TEXT, "schedule_relationship", 0, 0},
    {"status", RES_TEXT, "status", 0, 0},
    {"stop_sequence", RES_INT, "stop_sequence", 0, 2147483647},
    {"revenue", RES_TEXT, "revenue", 0, 0},
    {"update_type", RES_TEXT, "update_type", 0, 0},
    {"stop_id", RES_RELID, "stop", 0, 0},
    {"route_id", RES_RELID, "route", 0, 0},
    {"trip_id", RES_RELID, "trip", 0, 0},
    {"vehicle_id", RES_RELID, "vehicle", 0, 0},
    {"schedule_id", RES_RELID, "schedule", 0, 0},
};

static const struct res_col alert_cols[] = {
    {"header", RES_TEXT, "header", 0, 0},
    {"short_header", RES_TEXT, "short_header", 0, 0},
    {"description", RES_TEXT, "description", 0, 0},
    {"effect", RES_TEXT, "effect", 0, 0},
    {"cause", RES_TEXT, "cause", 0, 0},
    {"severity", RES_INT, "severity", 0, 32767},
    {"created_at", RES_TS, "created_at", 0, 0},
    {"updated_at", RES_TS, "updated_at", 0, 0},
    {"active_period", RES_JSON, "active_period", 0, 0},
    {"informed_entity", RES_JSON, "informed_entity", 0, 0},
    {"service_effect", RES_TEXT, "service_effect", 0, 0},
    {"timeframe", RES_TEXT, "timeframe", 0, 0},
    {"lifecycle", RES_TEXT, "lifecycle", 0, 0},
    {"banner", RES_TEXT, "banner", 0, 0},
    {"url", RES_TEXT, "url", 0, 0},
    {"image", RES_TEXT, "image", 0, 0},
    {"image_alternative_text", RES_TEXT, "image_alternative_text", 0, 0},
    {"duration_certainty", RES_TEXT, "duration_certainty", 0, 0},
};

static const struct res_col trip_cols[] = {
    {"name", RES_TEXT, "name", 0, 0},
    {"headsign", RES_TEXT, "headsign", 0, 0},
    {"direction_id", RES_INT, "direction_id", 0, 1},
    {"wheelchair_accessible", RES_INT, "wheelchair_accessible", 0, 2},
    {"block_id", RES_TEXT, "block_id", 0, 0},
    {"bikes_allowed", RES_INT, "bikes_allowed", 0, 2},
    {"revenue", RES_TEXT, "revenue", 0, 0},
    {"route_id", RES_RELID, "route", 0, 0},
    {"shape_id", RES_RELID, "shape", 0, 0},
    {"service_id", RES_RELID, "service", 0, 0},
    {"route_pattern_id", RES_RELID, "route_pattern", 0, 0},
};

static const struct res_col stop_cols[] = {
    {"name", RES_TEXT, "name", 0, 0},
    {"description", RES_TEXT, "description", 0, 0},
    {"address", RES_TEXT, "address", 0, 0},
    {"platform_code", RES_TEXT, "platform_code", 0, 0},
    {"platform_name", RES_TEXT, "platform_name", 0, 0},
    {"latitude", RES_DBL, "latitude", -90, 90},
    {"longitude", RES_DBL, "longitude", -180, 180},
    {"wheelchair_boarding", RES_INT, "wheelchair_boarding", 0, 2},
    {"location_type", RES_INT, "location_type", 0, 4},
    {"municipality", RES_TEXT, "municipality", 0, 0},
    {"on_street", RES_TEXT, "on_street", 0, 0},
    {"at_street", RES_TEXT, "at_street", 0, 0},
    {"vehicle_type", RES_INT, "vehicle_type", 0, 32767},
    {"parent_station_id", RES_RELID, "parent_station", 0, 0},
    {"zone_id", RES_RELID, "zone", 0, 0},
};

static const struct res_col route_cols[] = {
    {"description", RES_TEXT, "description", 0, 0},
    {"fare_class", RES_TEXT, "fare_class", 0, 0},
    {"short_name", RES_TEXT, "short_name", 0, 0},
    {"long_name", RES_TEXT, "long_name", 0, 0},
    {"sort_order", RES_INT, "sort_order", -2147483647, 2147483647},
    {"type", RES_INT, "type", 0, 1799},
    {"color", RES_TEXT, "color", 0, 0},
    {"text_color", RES_TEXT, "text_color", 0, 0},
    {"direction_names", RES_JSON, "direction_names", 0, 0},
    {"direction_destinations", RES_JSON, "direction_destinations", 0, 0},
    {"listed_route", RES_BOOL, "listed_route", 0, 0},
    {"line_id", RES_RELID, "line", 0, 0},
};

static const struct res_col schedule_cols[] = {
    {"arrival_time", RES_TS, "arrival_time", 0, 0},
    {"departure_time", RES_TS, "departure_time", 0, 0},
    {"stop_sequence", RES_INT, "stop_sequence", 0, 2147483647},
    {"pickup_type", RES_INT, "pickup_type", 0, 3},
    {"drop_off_type", RES_INT, "drop_off_type", 0, 3},
    {"timepoint", RES_BOOL, "timepoint", 0, 0},
    {"direction_id", RES_INT, "direction_id", 0, 1},
    {"stop_headsign", RES_TEXT, "stop_headsign", 0, 0},
    {"stop_id", RES_RELID, "stop", 0, 0},
    {"trip_id", RES_RELID, "trip", 0, 0},
    {"route_id", RES_RELID, "route", 0, 0},
};

const struct res_type res_types[] = {
    {"vehicle", "vehicles", "vehicle_history", COLS(vehicle_cols)},
    {"prediction", "predictions", "prediction_history", COLS(prediction_cols)},
    {"alert", "alerts", "alert_history", COLS(alert_cols)},
    {"trip", "trips", "trip_history", COLS(trip_cols)},
    {"stop", "stops", "stop_history", COLS(stop_cols)},
    {"route", "routes", "route_history", COLS(route_cols)},
    {"schedule", "schedules", "schedule_history", COLS(schedule_cols)},
    {NULL, "resources", "resource_history", NULL, 0},
};
const size_t res_types_count = sizeof(res_types) / sizeof(res_types[0]);

const struct res_type *res_type_generic(void)
{
    return &res_types[res_types_count - 1];
}

const struct res_type *res_type_find(const char *type, size_t len)
{
    for (size_t i = 0; i + 1 < res_types_count; i++)
        if (strlen(res_types[i].type) == len && !memcmp(res_types[i].type, type, len))
            return &res_types[i];
    return res_type_generic();
}

int res_type_col(const struct res_type *t, const char *name)
{
    for (size_t i = 0; i < t->ncols; i++)
        if (!strcmp(t->cols[i].name, name))
            return (int)i;
    return -1;
}

int res_split_key(const char *key, size_t len, const char **type, size_t *tlen, const char **id,
                  size_t *idlen)
{
    const char *c = key ? memchr(key, ':', len) : NULL;
    if (!c || c == key || (size_t)(c - key) + 1 >= len)
        return -1;
    *type = key;
    *tlen = (size_t)(c - key);
    *id = c + 1;
    *idlen = len - *tlen - 1;
    return 0;
}

/* The grammar and checks are util/civil's, shared with serve's --clock;
 * resources require the offset: a timestamp without one is ambiguous. */
int res_parse_ts(const char *s, size_t len, int64_t *us, char *errstr, size_t errsz)
{
    return civil_parse_iso8601(s, len, 0, us, errstr, errsz);
}

/* ---- a walker over JSON that jscan_validate already accepted ----------
 * No validation here (jscan did it), no allocation: spans only. */

struct span {
    const char *p;
    size_t n;
};

static size_t skip_ws(const char *p, size_t n, size_t i)
{
    while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r'))
        i++;
    return i;
}

/* End (one past) of the value starting at p[i]. */
static size_t skip_value(const char *p, size_t n, size_t i)
{
    if (p[i] == '"') {
        for (i++; i < n && p[i] != '"'; i++)
            if (p[i] == '\\')
                i++;
        return i + 1;
    }
    if (p[i] == '{' || p[i] == '[') {
        int depth = 0;
        for (; i < n; i++) {
            char c = p[i];
            if (c == '"') {
                i = skip_value(p, n, i) - 1;
            } else if (c == '{' || c == '[') {
                depth++;
            } else if (c == '}' || c == ']') {
                if (--depth == 0)
                    return i + 1;
            }
        }
        return n;
    }
    while (i < n && p[i] != ',' && p[i] != '}' && p[i] != ']' && p[i] != ' ' && p[i] != '\t' &&
           p[i] != '\n' && p[i] != '\r')
        i++;
    return i;
}

/* Iterates an object's members: *pos starts at 0 (or where the last call
 * left it); returns 1 with name (between the quotes) and value, 0 at the
 * end. */
static int next_member(struct span obj, size_t *pos, struct span *name, struct span *val)
{
    const char *p = obj.p;
    size_t n = obj.n, i = *pos;
    if (i == 0) {
        i = skip_ws(p, n, 0);
        if (i >= n || p[i] != '{')
            return 0;
        i++;
    }
    i = skip_ws(p, n, i);
    if (i < n && p[i] == ',')
        i = skip_ws(p, n, i + 1);
    if (i >= n || p[i] != '"')
        return 0;
    size_t e = skip_value(p, n, i);
    name->p = p + i + 1;
    name->n = e - i - 2;
    i = skip_ws(p, n, e);
    i = skip_ws(p, n, i + 1); /* the ':' */
    e = skip_value(p, n, i);
    val->p = p + i;
    val->n = e - i;
    *pos = e;
    return 1;
}

/* Whether a member name (raw, maybe escaped) is `key`. */
static int name_is(struct span name, const char *key)
{
    size_t kl = strlen(key);
    if (!memchr(name.p, '\\', name.n))
        return name.n == kl && !memcmp(name.p, key, kl);
    char tmp[128];
    long l = jscan_unescape(name.p, name.n, tmp, sizeof(tmp));
    return l >= 0 && (size_t)l == kl && !memcmp(tmp, key, kl);
}

static const char *kind_name(struct span v)
{
    switch (v.p[0]) {
    case '{':
        return "object";
    case '[':
        return "array";
    case '"':
        return "string";
    case 't':
    case 'f':
        return "boolean";
    case 'n':
        return "null";
    default:
        return "number";
    }
}

static int is_null(struct span v)
{
    return v.n == 0 || v.p[0] == 'n';
}

/* A string value's content: borrowed when it has no escape, else decoded
 * into *owned (heap). Returns 0 or -1 (out of memory). */
static int str_value(struct span v, const char **s, size_t *len, char **owned)
{
    const char *raw = v.p + 1;
    size_t rn = v.n - 2;
    if (!memchr(raw, '\\', rn)) {
        *s = raw;
        *len = rn;
        return 0;
    }
    char *o = malloc(rn + 1); /* decoding never makes it longer */
    long l = o ? jscan_unescape(raw, rn, o, rn + 1) : -1;
    if (l < 0) {
        free(o);
        return -1;
    }
    free(*owned);
    *owned = o;
    *s = o;
    *len = (size_t)l;
    return 0;
}

/* A printable prefix of s for a message. */
static const char *num_copy(const char *s, size_t n, char *buf, size_t bufsz)
{
    size_t k = n < bufsz - 1 ? n : bufsz - 1;
    memcpy(buf, s, k);
    buf[k] = '\0';
    return buf;
}

static int number_text(struct span v, char *buf, size_t bufsz)
{
    if (v.n == 0 || v.n >= bufsz)
        return -1;
    memcpy(buf, v.p, v.n);
    buf[v.n] = '\0';
    return 0;
}

static int col_value(const struct res_col *c, struct span j, struct res_value *v, char **owned,
                     char *errstr, size_t errsz)
{
    char num[64];
    v->null = 1;
    if (is_null(j))
        return 0;
    switch (c->kind) {
    case RES_TEXT:
        if (j.p[0] != '"')
            goto wrong;
        if (str_value(j, &v->s, &v->slen, owned))
            goto nomem;
        break;
    case RES_INT: {
        if (j.p[0] != '-' && (j.p[0] < '0' || j.p[0] > '9'))
            goto wrong;
        if (memchr(j.p, '.', j.n) || memchr(j.p, 'e', j.n) || memchr(j.p, 'E', j.n)) {
            snprintf(errstr, errsz, "attributes.%s: expected integer, got number", c->src);
            return -1;
        }
        char *end;
        errno = 0;
        if (number_text(j, num, sizeof(num)) ||
            ((void)(v->i = strtoll(num, &end, 10)), errno || *end) ||
            (c->min != c->max && (v->i < c->min || v->i > c->max))) {
            snprintf(errstr, errsz, "attributes.%s: %.40s out of range [%.0f, %.0f]", c->src,
                     number_text(j, num, sizeof(num)) ? "(a long number)" : num, c->min, c->max);
            return -1;
        }
        break;
    }
    case RES_DBL:
        if (j.p[0] != '-' && (j.p[0] < '0' || j.p[0] > '9'))
            goto wrong;
        if (number_text(j, num, sizeof(num))) {
            snprintf(errstr, errsz, "attributes.%s: number too long", c->src);
            return -1;
        }
        v->d = strtod(num, NULL);
        if (c->min != c->max && !(v->d >= c->min && v->d <= c->max)) {
            snprintf(errstr, errsz, "attributes.%s: %s out of range [%g, %g]", c->src, num, c->min,
                     c->max);
            return -1;
        }
        break;
    case RES_BOOL:
        if (j.p[0] != 't' && j.p[0] != 'f')
            goto wrong;
        v->i = j.p[0] == 't';
        break;
    case RES_TS: {
        const char *t;
        size_t tl;
        if (j.p[0] != '"')
            goto wrong;
        if (str_value(j, &t, &tl, owned))
            goto nomem;
        char why[128];
        if (res_parse_ts(t, tl, &v->i, why, sizeof(why))) {
            snprintf(errstr, errsz, "attributes.%s: \"%.40s\" is not an ISO 8601 timestamp: %s",
                     c->src, num_copy(t, tl, num, sizeof(num)), why);
            return -1;
        }
        break;
    }
    case RES_JSON:
        if (j.p[0] != '[' && j.p[0] != '{')
            goto wrong;
        v->s = j.p; /* the exact bytes: valid JSON, jsonb takes them as they are */
        v->slen = j.n;
        break;
    default:
        break;
    }
    v->null = 0;
    return 0;
wrong:
    snprintf(errstr, errsz, "attributes.%s: expected %s, got %s", c->src,
             c->kind == RES_TEXT || c->kind == RES_TS ? "string"
             : c->kind == RES_INT                     ? "integer"
             : c->kind == RES_DBL                     ? "number"
             : c->kind == RES_BOOL                    ? "boolean"
                                                      : "array or object",
             kind_name(j));
    return -1;
nomem:
    snprintf(errstr, errsz, "attributes.%s: out of memory", c->src);
    return -1;
}

/* relationships.<src>: null, or {"data": null | {"id": string, ...}}. */
static int rel_value(const struct res_col *c, struct span r, struct res_value *v, char **owned,
                     char *errstr, size_t errsz)
{
    struct span name, val, data = {NULL, 0};
    size_t pos = 0;
    v->null = 1;
    if (is_null(r))
        return 0;
    if (r.p[0] != '{') {
        snprintf(errstr, errsz, "relationships.%s: expected object, got %s", c->src, kind_name(r));
        return -1;
    }
    while (next_member(r, &pos, &name, &val))
        if (name_is(name, "data"))
            data = val;
    if (!data.p || is_null(data))
        return 0;
    struct span id = {NULL, 0};
    pos = 0;
    if (data.p[0] == '{')
        while (next_member(data, &pos, &name, &val))
            if (name_is(name, "id"))
                id = val;
    if (!id.p || id.p[0] != '"') {
        snprintf(errstr, errsz, "relationships.%s.data: expected {\"id\": string}", c->src);
        return -1;
    }
    if (str_value(id, &v->s, &v->slen, owned)) {
        snprintf(errstr, errsz, "relationships.%s: out of memory", c->src);
        return -1;
    }
    v->null = 0;
    return 0;
}

void res_row_fini(struct res_row *row)
{
    if (!row)
        return;
    for (size_t i = 0; i < RES_MAX_COLS; i++)
        free(row->owned[i]);
    free(row->rtype_owned);
    free(row->id_owned);
    memset(row, 0, sizeof(*row));
}

/* A NUL-terminated heap copy of a string member's decoded content. */
static char *str_dup(struct span v)
{
    const char *s;
    size_t n;
    char *owned = NULL;
    if (str_value(v, &s, &n, &owned))
        return NULL;
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    free(owned);
    return d;
}

int res_parse(const char *data, size_t len, const char *key_type, const char *key_id,
              struct res_row *row, char *errstr, size_t errsz)
{
    char why[256];
    struct span doc = {data, len}, name, val;
    struct span jt = {NULL, 0}, ji = {NULL, 0}, attrs = {NULL, 0}, rels = {NULL, 0};
    size_t pos = 0;
    memset(row, 0, sizeof(*row));
    int kind = jscan_validate(data, len, 0, why, sizeof(why));
    if (kind < 0) {
        snprintf(errstr, errsz, "malformed JSON: %s", why);
        return -1;
    }
    if (kind != JSCAN_OBJECT) {
        snprintf(errstr, errsz, "not a resource: a JSON %s, expected an object",
                 kind == JSCAN_ARRAY    ? "array"
                 : kind == JSCAN_STRING ? "string"
                 : kind == JSCAN_NUMBER ? "number"
                 : kind == JSCAN_NULL   ? "null"
                                        : "boolean");
        return -1;
    }
    /* PostgreSQL's jsonb refuses \u0000 (it cannot be text). */
    for (const char *p = data; (p = memchr(p, '\\', len - (size_t)(p - data))); p += 2) {
        if ((size_t)(data + len - p) >= 6 && !memcmp(p, "\\u0000", 6)) {
            snprintf(errstr, errsz, "malformed JSON: \\u0000 in a string (jsonb refuses it)");
            return -1;
        }
        if (p + 2 > data + len)
            break;
    }
    while (next_member(doc, &pos, &name, &val)) {
        if (name_is(name, "type"))
            jt = val;
        else if (name_is(name, "id"))
            ji = val;
        else if (name_is(name, "attributes"))
            attrs = val;
        else if (name_is(name, "relationships"))
            rels = val;
    }
    if (!jt.p || jt.p[0] != '"' || jt.n <= 2) {
        snprintf(errstr, errsz, "missing field: \"type\" (non-empty string)");
        goto fail;
    }
    if (!ji.p || ji.p[0] != '"' || ji.n <= 2) {
        snprintf(errstr, errsz, "missing field: \"id\" (non-empty string)");
        goto fail;
    }
    row->rtype = row->rtype_owned = str_dup(jt);
    row->id = row->id_owned = str_dup(ji);
    if (!row->rtype || !row->id) {
        snprintf(errstr, errsz, "out of memory");
        goto fail;
    }
    if (memchr(row->rtype, 0, strlen(row->rtype)) || !*row->rtype || !*row->id) {
        snprintf(errstr, errsz, "type or id contains a NUL character");
        goto fail;
    }
    if ((key_type && strcmp(key_type, row->rtype)) || (key_id && strcmp(key_id, row->id))) {
        snprintf(errstr, errsz, "key %.60s:%.60s does not match the value's %.60s:%.60s",
                 key_type ? key_type : "", key_id ? key_id : "", row->rtype, row->id);
        goto fail;
    }
    row->type = res_type_find(row->rtype, strlen(row->rtype));
    if (attrs.p && !is_null(attrs) && attrs.p[0] != '{') {
        snprintf(errstr, errsz, "attributes: expected object, got %s", kind_name(attrs));
        goto fail;
    }
    if (rels.p && !is_null(rels) && rels.p[0] != '{') {
        snprintf(errstr, errsz, "relationships: expected object, got %s", kind_name(rels));
        goto fail;
    }
    for (size_t i = 0; i < row->type->ncols; i++)
        row->v[i].null = 1;
    /* One pass over each object; a repeated member: the last one wins. */
    struct span found[RES_MAX_COLS];
    memset(found, 0, sizeof(found));
    for (int pass = 0; pass < 2; pass++) {
        struct span obj = pass ? rels : attrs;
        if (!obj.p || is_null(obj))
            continue;
        pos = 0;
        while (next_member(obj, &pos, &name, &val))
            for (size_t i = 0; i < row->type->ncols; i++)
                if ((row->type->cols[i].kind == RES_RELID) == pass &&
                    name_is(name, row->type->cols[i].src))
                    found[i] = val;
    }
    for (size_t i = 0; i < row->type->ncols; i++) {
        const struct res_col *c = &row->type->cols[i];
        if (!found[i].p)
            continue;
        int rc = c->kind == RES_RELID
                     ? rel_value(c, found[i], &row->v[i], &row->owned[i], why, sizeof(why))
                     : col_value(c, found[i], &row->v[i], &row->owned[i], why, sizeof(why));
        if (rc) {
            snprintf(errstr, errsz, "%s %.60s: %s", row->rtype, row->id, why);
            goto fail;
        }
    }
    return 0;
fail:
    res_row_fini(row);
    return -1;
}
