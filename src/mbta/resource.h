/*
 * resource: the pure transform of one MBTA resource (JSON:API object, the
 * bytes of a Kafka value) into typed column values for its type's tables.
 *
 * Table-driven: each known type (vehicle, prediction, alert, trip, stop,
 * route, schedule) has a descriptor listing its typed columns in the order
 * of the SQL tables (sql/001_schema.sql), each column taken from
 * `attributes.<name>` or from `relationships.<rel>.data.id`. Values are
 * validated (JSON type, range, timestamp syntax); a value that does not fit
 * makes the whole resource refused with a one-line reason, so the sink can
 * send it to dead_letters. Unknown attributes are not columns: they stay in
 * the raw jsonb column, which is the value exactly as received. Unknown types
 * map to the generic descriptor (table `resources`).
 *
 * Validation is jscan's (strict RFC 8259, UTF-8 checked) plus a refusal of
 * \u0000, which PostgreSQL's jsonb cannot store; then a walk over the
 * spans: no JSON tree is built, and values borrow from the input bytes.
 *
 * Does not: touch a socket, a clock or a global; format SQL or COPY text.
 * Thread-safe (no state). A row borrows from the data it was parsed from:
 * keep the data alive until res_row_fini.
 */
#ifndef MBTA_RESOURCE_H
#define MBTA_RESOURCE_H

#include <stddef.h>
#include <stdint.h>

enum res_kind {
    RES_TEXT, /* JSON string -> text */
    RES_INT,  /* JSON integer -> integer/smallint, range-checked */
    RES_DBL,  /* JSON number -> double precision, range-checked */
    RES_BOOL, /* JSON true/false -> boolean */
    RES_TS,   /* ISO 8601 string with offset -> timestamptz (microseconds) */
    RES_JSON, /* JSON array/object -> jsonb (re-encoded compactly) */
    RES_RELID /* relationships.<src>.data.id -> text */
};

struct res_col {
    const char *name; /* SQL column name */
    enum res_kind kind;
    const char *src; /* attribute or relationship name */
    double min, max; /* bounds for RES_INT/RES_DBL; ignored when equal */
};

struct res_type {
    const char *type;    /* JSON:API type, e.g. "vehicle"; NULL: generic */
    const char *current; /* current table, e.g. "vehicles" */
    const char *history; /* history table, e.g. "vehicle_history" */
    const struct res_col *cols;
    size_t ncols;
};

enum { RES_MAX_COLS = 32 };

struct res_value {
    int null;
    int64_t i; /* RES_INT, RES_BOOL (0/1), RES_TS (microseconds since the epoch) */
    double d;  /* RES_DBL */
    /* RES_TEXT, RES_RELID: the decoded string, NOT NUL-terminated (slen);
     * RES_JSON: the value's exact bytes. Borrowed from the parsed data, or
     * from owned[] when a string had escapes to decode. */
    const char *s;
    size_t slen;
};

struct res_row {
    const struct res_type *type;
    const char *rtype; /* the resource's "type", NUL-terminated (owned) */
    const char *id;    /* the resource's "id", NUL-terminated (owned) */
    struct res_value v[RES_MAX_COLS];
    char *owned[RES_MAX_COLS]; /* decoded strings, freed by res_row_fini */
    char *rtype_owned, *id_owned;
};

/* The descriptors: the seven known types then the generic one. */
extern const struct res_type res_types[];
extern const size_t res_types_count;
/* The descriptor of a JSON:API type name; the generic one when unknown. */
const struct res_type *res_type_find(const char *type, size_t len);
/* The generic descriptor (type and id only; everything else in raw). */
const struct res_type *res_type_generic(void);
/* Index of a column by name in t, or -1. */
int res_type_col(const struct res_type *t, const char *name);

/*
 * Parses and validates one resource. `key_type`/`key_id` (may be NULL) are
 * from the Kafka key `<type>:<id>`; when given they must match the value's.
 * Returns 0 with *row filled (release with res_row_fini; it borrows from
 * data), or -1 with a one-line reason in errstr (nothing to release). A
 * repeated member: the last one counts (as in jansson and jsonb).
 */
int res_parse(const char *data, size_t len, const char *key_type, const char *key_id,
              struct res_row *row, char *errstr, size_t errsz);

void res_row_fini(struct res_row *row);

/*
 * Parses an ISO 8601 timestamp with an offset or Z, e.g.
 * "2026-12-04T14:03:11-05:00" or "2026-12-04T19:03:11.123Z", into
 * microseconds since the epoch: civil_parse_iso8601 with the offset
 * required (grammar and checks there). Returns 0, or -1 (syntax, range:
 * years 1900-2999, month lengths) with, if errstr, the reason in
 * errstr[errsz] ("month 13 is out of range (01-12)").
 */
int res_parse_ts(const char *s, size_t len, int64_t *us, char *errstr, size_t errsz);

/*
 * Splits a Kafka key "<type>:<id>" (not NUL-terminated) into its parts.
 * Returns 0 (pointers into key) or -1 when there is no ':' or a part is empty.
 */
int res_split_key(const char *key, size_t len, const char **type, size_t *tlen, const char **id,
                  size_t *idlen);

#endif
