/*
 * resource: see resource.h. The descriptors below ARE the column lists of
 * sql/001_schema.sql (same names, same order); change both together.
 */
#include "mbta/resource.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int digits(const char *s, size_t n, int *out)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

int res_parse_ts(const char *s, size_t len, int64_t *us)
{
    int y, mo, d, h, mi, sec, frac_us = 0;
    size_t p = 19;
    if (len < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != ' ') || s[13] != ':' ||
        s[16] != ':')
        return -1;
    if (digits(s, 4, &y) || digits(s + 5, 2, &mo) || digits(s + 8, 2, &d) ||
        digits(s + 11, 2, &h) || digits(s + 14, 2, &mi) || digits(s + 17, 2, &sec))
        return -1;
    if (y < 1900 || y > 2999 || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || sec > 60)
        return -1;
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (d > mdays[mo - 1] || (mo == 2 && d == 29 && !leap))
        return -1;
    if (p < len && s[p] == '.') {
        size_t n = 0;
        p++;
        while (p < len && s[p] >= '0' && s[p] <= '9') {
            if (n < 6)
                frac_us = frac_us * 10 + (s[p] - '0');
            n++;
            p++;
        }
        if (n == 0 || n > 9)
            return -1;
        for (; n < 6; n++)
            frac_us *= 10;
    }
    int off_min;
    if (p < len && s[p] == 'Z') {
        off_min = 0;
        p++;
    } else if (p < len && (s[p] == '+' || s[p] == '-')) {
        int oh, om;
        int sign = s[p] == '-' ? -1 : 1;
        if (len - p == 6 && s[p + 3] == ':') {
            if (digits(s + p + 1, 2, &oh) || digits(s + p + 4, 2, &om))
                return -1;
            p += 6;
        } else if (len - p == 5) {
            if (digits(s + p + 1, 2, &oh) || digits(s + p + 3, 2, &om))
                return -1;
            p += 5;
        } else {
            return -1;
        }
        if (oh > 23 || om > 59)
            return -1;
        off_min = sign * (oh * 60 + om);
    } else {
        return -1;
    }
    if (p != len)
        return -1;
    int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - off_min * 60;
    *us = secs * 1000000 + frac_us;
    return 0;
}

static const char *json_kind(const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "array";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
        return "integer";
    case JSON_REAL:
        return "number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "boolean";
    default:
        return "null";
    }
}

static int col_value(const struct res_col *c, const json_t *attrs, const json_t *rels,
                     struct res_value *v, char **owned, char *errstr, size_t errsz)
{
    const json_t *j;
    v->null = 1;
    if (c->kind == RES_RELID) {
        const json_t *r = rels ? json_object_get(rels, c->src) : NULL;
        if (!r || json_is_null(r))
            return 0;
        if (!json_is_object(r)) {
            snprintf(errstr, errsz, "relationships.%s: expected object, got %s", c->src,
                     json_kind(r));
            return -1;
        }
        const json_t *data = json_object_get(r, "data");
        if (!data || json_is_null(data))
            return 0;
        j = json_is_object(data) ? json_object_get(data, "id") : NULL;
        if (!j || !json_is_string(j)) {
            snprintf(errstr, errsz, "relationships.%s.data: expected {\"id\": string}", c->src);
            return -1;
        }
        v->s = json_string_value(j);
        v->slen = json_string_length(j);
        v->null = 0;
        return 0;
    }
    j = attrs ? json_object_get(attrs, c->src) : NULL;
    if (!j || json_is_null(j))
        return 0;
    switch (c->kind) {
    case RES_TEXT:
        if (!json_is_string(j))
            goto wrong;
        v->s = json_string_value(j);
        v->slen = json_string_length(j);
        break;
    case RES_INT:
        if (!json_is_integer(j))
            goto wrong;
        v->i = json_integer_value(j);
        if (c->min != c->max && (v->i < c->min || v->i > c->max)) {
            snprintf(errstr, errsz, "attributes.%s: %lld out of range [%.0f, %.0f]", c->src,
                     (long long)v->i, c->min, c->max);
            return -1;
        }
        break;
    case RES_DBL:
        if (!json_is_number(j))
            goto wrong;
        v->d = json_number_value(j);
        if (c->min != c->max && !(v->d >= c->min && v->d <= c->max)) {
            snprintf(errstr, errsz, "attributes.%s: %g out of range [%g, %g]", c->src, v->d, c->min,
                     c->max);
            return -1;
        }
        break;
    case RES_BOOL:
        if (!json_is_boolean(j))
            goto wrong;
        v->i = json_is_true(j);
        break;
    case RES_TS:
        if (!json_is_string(j))
            goto wrong;
        if (res_parse_ts(json_string_value(j), json_string_length(j), &v->i)) {
            snprintf(errstr, errsz, "attributes.%s: \"%.40s\" is not an ISO 8601 timestamp", c->src,
                     json_string_value(j));
            return -1;
        }
        break;
    case RES_JSON:
        if (!json_is_array(j) && !json_is_object(j))
            goto wrong;
        *owned = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!*owned) {
            snprintf(errstr, errsz, "attributes.%s: cannot encode", c->src);
            return -1;
        }
        v->s = *owned;
        v->slen = strlen(*owned);
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
             json_kind(j));
    return -1;
}

void res_row_fini(struct res_row *row)
{
    if (!row)
        return;
    for (size_t i = 0; i < RES_MAX_COLS; i++)
        free(row->owned[i]);
    json_decref(row->json);
    memset(row, 0, sizeof(*row));
}

int res_parse(const char *data, size_t len, const char *key_type, const char *key_id,
              struct res_row *row, char *errstr, size_t errsz)
{
    json_error_t jerr;
    char why[256];
    memset(row, 0, sizeof(*row));
    row->json = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!row->json) {
        snprintf(errstr, errsz, "malformed JSON: %s (at byte %d)", jerr.text, jerr.position);
        return -1;
    }
    if (!json_is_object(row->json)) {
        snprintf(errstr, errsz, "not a resource: a JSON %s, expected an object",
                 json_kind(row->json));
        goto fail;
    }
    const json_t *jt = json_object_get(row->json, "type");
    const json_t *ji = json_object_get(row->json, "id");
    if (!jt || !json_is_string(jt) || json_string_length(jt) == 0) {
        snprintf(errstr, errsz, "missing field: \"type\" (non-empty string)");
        goto fail;
    }
    if (!ji || !json_is_string(ji) || json_string_length(ji) == 0) {
        snprintf(errstr, errsz, "missing field: \"id\" (non-empty string)");
        goto fail;
    }
    row->rtype = json_string_value(jt);
    row->id = json_string_value(ji);
    if (strlen(row->rtype) != json_string_length(jt) || strlen(row->id) != json_string_length(ji)) {
        snprintf(errstr, errsz, "type or id contains a NUL character");
        goto fail;
    }
    if ((key_type && strcmp(key_type, row->rtype)) || (key_id && strcmp(key_id, row->id))) {
        snprintf(errstr, errsz, "key %.60s:%.60s does not match the value's %.60s:%.60s",
                 key_type ? key_type : "", key_id ? key_id : "", row->rtype, row->id);
        goto fail;
    }
    row->type = res_type_find(row->rtype, strlen(row->rtype));
    const json_t *attrs = json_object_get(row->json, "attributes");
    const json_t *rels = json_object_get(row->json, "relationships");
    if (attrs && !json_is_null(attrs) && !json_is_object(attrs)) {
        snprintf(errstr, errsz, "attributes: expected object, got %s", json_kind(attrs));
        goto fail;
    }
    if (rels && !json_is_null(rels) && !json_is_object(rels)) {
        snprintf(errstr, errsz, "relationships: expected object, got %s", json_kind(rels));
        goto fail;
    }
    for (size_t i = 0; i < row->type->ncols; i++)
        if (col_value(&row->type->cols[i], attrs, rels, &row->v[i], &row->owned[i], why,
                      sizeof(why))) {
            snprintf(errstr, errsz, "%s %.60s: %s", row->rtype, row->id, why);
            goto fail;
        }
    return 0;
fail:
    res_row_fini(row);
    return -1;
}
