/*
 * jscan: a validating JSON scanner that reports exact byte spans, so that a
 * resource can be sliced out of a document and passed on exactly as it was
 * received (never re-serialized). RFC 8259 grammar, strict: one value with
 * optional whitespace around it, no BOM, no comments, no trailing commas,
 * no leading zeros, no NaN. UTF-8 is validated (no overlong forms, no
 * surrogates, nothing past U+10FFFF) in strings; `\u` escapes must form
 * valid scalar values (a lone surrogate escape is refused, as jansson does,
 * so that what passes here also parses in the consumer). Nesting is capped.
 *
 * Pure: no allocation (except the caller's span array), no I/O, no globals.
 * It does not build a tree or decode numbers; for that use jansson.
 */
#ifndef MBTA_JSCAN_H
#define MBTA_JSCAN_H

#include <stddef.h>

#define JSCAN_DEPTH_DEFAULT 128
#define JSCAN_DEPTH_LIMIT   1024

enum jscan_kind {
    JSCAN_OBJECT = 1,
    JSCAN_ARRAY,
    JSCAN_STRING,
    JSCAN_NUMBER,
    JSCAN_TRUE,
    JSCAN_FALSE,
    JSCAN_NULL
};

struct jscan_span {
    size_t off, len; /* bytes [off, off+len) of the scanned buffer */
};

/* A string member: raw span between the quotes, escapes not decoded. */
struct jscan_str {
    int found;   /* 1 when the member exists and is a string */
    int kind;    /* enum jscan_kind of the member's value, 0 if absent */
    int escaped; /* the raw bytes contain a backslash */
    struct jscan_span raw;
};

/*
 * Validates buf[0..n) as one JSON text with nesting at most max_depth
 * (0: JSCAN_DEPTH_DEFAULT; capped at JSCAN_DEPTH_LIMIT). Returns the kind of
 * the top-level value, or -1 with a one-line reason ("offset 12: ...") in
 * errstr.
 */
int jscan_validate(const char *buf, size_t n, int max_depth, char *errstr, size_t errsz);

/*
 * Validates buf as one JSON text whose top level is an array and stores the
 * span of each element (whitespace around it excluded) in spans[0..*count).
 * *spans is grown with realloc (caller frees; may be NULL initially, with
 * *cap 0); at most max_items elements (0: no cap). Returns 0, or -1 with
 * errstr (not an array, invalid, too many items, out of memory).
 */
int jscan_array(const char *buf, size_t n, int max_depth, size_t max_items,
                struct jscan_span **spans, size_t *cap, size_t *count, char *errstr, size_t errsz);

/*
 * Validates buf as one JSON text whose top level is an object and looks up
 * the top-level members named keys[0..nkeys) (names compared after decoding
 * escapes; when a name repeats, the last one wins, as in jansson). out[i]
 * describes keys[i]. Returns 0, or -1 with errstr (not an object, invalid).
 */
int jscan_object(const char *buf, size_t n, int max_depth, const char *const *keys, size_t nkeys,
                 struct jscan_str *out, char *errstr, size_t errsz);

/*
 * jscan_object's lookup for text already validated (e.g. the items
 * jscan_array sliced out of a reset): the same out[] on a valid object.
 * jscan_object's fast path is tried first (it is the quickest way even
 * though it validates again); text it does not vouch for (escapes, UTF-8)
 * takes a walk that does not validate. On text that is not valid JSON the
 * result is unspecified but memory-safe (every read stays in buf[0..n)).
 * Returns 0, or -1 when the text does not start as an object.
 */
int jscan_members(const char *buf, size_t n, const char *const *keys, size_t nkeys,
                  struct jscan_str *out);

/*
 * Decodes the raw content of a string that jscan validated (escapes to
 * UTF-8) into out[0..outsz), NUL-terminated. Returns the decoded length, or
 * -1 when it does not fit (or the input is not valid string content).
 */
long jscan_unescape(const char *raw, size_t n, char *out, size_t outsz);

#endif
