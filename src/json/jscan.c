/*
 * jscan: see jscan.h. One iterative scanner (an explicit container stack,
 * no recursion, so hostile nesting cannot blow the C stack) used three ways:
 * validate, split a top-level array, pick top-level string members.
 */
#include "json/jscan_int.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SSE2__) && !defined(JSCAN_PORTABLE)
#include <emmintrin.h>
#endif

struct sc {
    const unsigned char *p;
    size_t n, pos;
    int max_depth;
    char *errstr;
    size_t errsz;
};

__attribute__((format(printf, 2, 3))) static int sc_fail(struct sc *s, const char *fmt, ...)
{
    if (s->errstr && s->errsz) {
        int k = snprintf(s->errstr, s->errsz, "offset %zu: ", s->pos);
        if (k >= 0 && (size_t)k < s->errsz) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(s->errstr + k, s->errsz - (size_t)k, fmt, ap);
            va_end(ap);
        }
    }
    return -1;
}

static void sc_ws(struct sc *s)
{
    /* Locals: a store through an unsigned char pointer may alias *s, so
     * working on s->pos directly reloads it at every byte. */
    const unsigned char *p = s->p;
    size_t pos = s->pos, n = s->n;
    while (pos < n) {
        unsigned char c = p[pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        pos++;
    }
    s->pos = pos;
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Reads 4 hex digits at p (n bytes available); -1 if not hex. */
static long hex4(const unsigned char *p, size_t n)
{
    long v = 0;
    if (n < 4)
        return -1;
    for (int i = 0; i < 4; i++) {
        int h = hexval(p[i]);
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    return v;
}

/* Length of the valid UTF-8 sequence at p (lead byte >= 0x80), or 0. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    unsigned char c = p[0];
    size_t len;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0; /* continuation byte, C0/C1 (overlong), F5+ */
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
        return 0;
    if (cp >= 0xD800 && cp <= 0xDFFF)
        return 0;
    return len;
}

#define SC_ONES  0x0101010101010101ULL
#define SC_HIGHS 0x8080808080808080ULL

/* Nonzero when one of the 8 bytes in w needs a closer look: below 0x20,
 * '"', '\\' or 0x80 and above (bit tricks from "Bit Twiddling Hacks":
 * a zero byte of w ^ c finds c, (w - n*ones) & ~w finds bytes below n; no
 * false negatives, and a false positive only costs the byte loop). */
static inline uint64_t sc_special8(uint64_t w)
{
    uint64_t q = w ^ (SC_ONES * '"'), b = w ^ (SC_ONES * '\\');
    return (((w - SC_ONES * 0x20) & ~w) | ((q - SC_ONES) & ~q) | ((b - SC_ONES) & ~b) | w) &
           SC_HIGHS;
}

/* Scans a string starting at the opening quote; on success s->pos is past the
 * closing quote and *raw covers the content. Plain ASCII, most of MBTA's
 * JSON, is skipped 8 bytes at a time. */
static int sc_string(struct sc *s, struct jscan_span *raw, int *escaped)
{
    const unsigned char *p = s->p;
    size_t n = s->n, start = s->pos + 1, pos = start;
    int esc = 0;
    for (;;) {
        while (n - pos >= 8) {
            uint64_t w;
            memcpy(&w, p + pos, 8);
            if (sc_special8(w))
                break;
            pos += 8;
        }
        while (pos < n && p[pos] >= 0x20 && p[pos] < 0x80 && p[pos] != '"' && p[pos] != '\\')
            pos++;
        s->pos = pos; /* for sc_fail's offset */
        if (pos >= n)
            return sc_fail(s, "unterminated string");
        unsigned char c = p[pos];
        if (c == '"') {
            if (raw) {
                raw->off = start;
                raw->len = pos - start;
            }
            if (escaped)
                *escaped = esc;
            s->pos = pos + 1;
            return 0;
        }
        if (c < 0x20)
            return sc_fail(s, "control character 0x%02x in string", c);
        if (c == '\\') {
            esc = 1;
            if (pos + 1 >= n)
                return sc_fail(s, "unterminated escape");
            unsigned char e = p[pos + 1];
            if (e == 'u') {
                long u = hex4(p + pos + 2, n - pos - 2);
                if (u < 0)
                    return sc_fail(s, "bad \\u escape");
                if (u >= 0xDC00 && u <= 0xDFFF)
                    return sc_fail(s, "lone low surrogate \\u%04lX", u);
                if (u >= 0xD800 && u <= 0xDBFF) {
                    size_t q = pos + 6;
                    long lo = -1;
                    if (q + 1 < n && p[q] == '\\' && p[q + 1] == 'u')
                        lo = hex4(p + q + 2, n - q - 2);
                    if (lo < 0xDC00 || lo > 0xDFFF)
                        return sc_fail(s, "lone high surrogate \\u%04lX", u);
                    pos += 12;
                } else {
                    pos += 6;
                }
                continue;
            }
            if (!strchr("\"\\/bfnrt", e) || e == '\0')
                return sc_fail(s, "bad escape \\%c", e >= 0x20 && e < 0x7f ? e : '?');
            pos += 2;
            continue;
        }
        /* c >= 0x80 */
        size_t l = utf8_len(p + pos, n - pos);
        if (!l)
            return sc_fail(s, "invalid UTF-8");
        pos += l;
    }
}

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* A number at pos: the position past it, or 0 with *why. */
static inline size_t sc_skip_number(const unsigned char *p, size_t pos, size_t n, const char **why,
                                    size_t *errpos)
{
    if (pos < n && p[pos] == '-')
        pos++;
    if (pos >= n || !is_digit(p[pos])) {
        *why = "bad number";
        goto fail;
    }
    if (p[pos] == '0') {
        pos++;
    } else {
        while (pos < n && is_digit(p[pos]))
            pos++;
    }
    if (pos < n && p[pos] == '.') {
        pos++;
        if (pos >= n || !is_digit(p[pos])) {
            *why = "bad fraction";
            goto fail;
        }
        while (pos < n && is_digit(p[pos]))
            pos++;
    }
    if (pos < n && (p[pos] == 'e' || p[pos] == 'E')) {
        pos++;
        if (pos < n && (p[pos] == '+' || p[pos] == '-'))
            pos++;
        if (pos >= n || !is_digit(p[pos])) {
            *why = "bad exponent";
            goto fail;
        }
        while (pos < n && is_digit(p[pos]))
            pos++;
    }
    /* A number must not run into a letter or digit ("01", "1x"): the caller
     * checks what follows, which must be a separator. */
    return pos;
fail:
    *errpos = pos;
    return 0;
}

/* Byte classes for the hot loops: JSON whitespace; string bytes that need
 * no check (printable ASCII other than '"' and '\\'). */
static const unsigned char sc_ws_tab[256] = {[' '] = 1, ['\t'] = 1, ['\n'] = 1, ['\r'] = 1};
static const unsigned char sc_plain_tab[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
};

static inline size_t sc_skip_ws(const unsigned char *p, size_t pos, size_t n)
{
    while (pos < n && sc_ws_tab[p[pos]])
        pos++;
    return pos;
}

/* A string at pos (the opening quote): the position past its closing quote,
 * or 0 with s->pos and errstr set. Short plain strings, most of the
 * tokens, are done here; anything else goes to sc_string. */
static inline size_t sc_skip_string(struct sc *s, size_t pos, struct jscan_span *raw, int *escaped)
{
    const unsigned char *p = s->p;
    size_t q = pos + 1, n = s->n;
    while (n - q >= 8) {
        uint64_t w;
        memcpy(&w, p + q, 8);
        if (sc_special8(w))
            break;
        q += 8;
    }
    while (q < n && sc_plain_tab[p[q]])
        q++;
    if (q < n && p[q] == '"') {
        if (raw) {
            raw->off = pos + 1;
            raw->len = q - pos - 1;
        }
        if (escaped)
            *escaped = 0;
        return q + 1;
    }
    s->pos = pos;
    if (sc_string(s, raw, escaped) < 0)
        return 0;
    return s->pos;
}

/* Expects a member name at pos (after whitespace), then ':'. Returns the
 * position past the ':' or 0 with s->pos and errstr set. */
static inline __attribute__((always_inline)) size_t
sc_member_name(struct sc *s, size_t pos, struct jscan_span *raw, int *escaped)
{
    const unsigned char *p = s->p;
    pos = sc_skip_ws(p, pos, s->n);
    if (pos >= s->n || p[pos] != '"') {
        s->pos = pos;
        sc_fail(s, "expected a member name");
        return 0;
    }
    pos = sc_skip_string(s, pos, raw, escaped);
    if (!pos)
        return 0;
    pos = sc_skip_ws(p, pos, s->n);
    if (pos >= s->n || p[pos] != ':') {
        s->pos = pos;
        sc_fail(s, "expected ':'");
        return 0;
    }
    return pos + 1;
}

/*
 * Scans one value starting at s->pos (leading whitespace skipped) whose
 * container nesting starts at depth0. On success s->pos is just past the
 * value; returns its kind. The position lives in a local (a store through
 * an unsigned char pointer may alias *s) and goes back to s->pos around
 * the calls that need it.
 */
static int sc_value(struct sc *s, int depth0)
{
    unsigned char stack[JSCAN_DEPTH_LIMIT];
    const unsigned char *p = s->p;
    const size_t n = s->n;
    size_t pos = s->pos;
    int depth = 0, kind = 0;
#define SC_FAIL(...) (s->pos = pos, sc_fail(s, __VA_ARGS__))
    for (;;) {
        /* a value */
        pos = sc_skip_ws(p, pos, n);
        if (pos >= n)
            return SC_FAIL("unexpected end of input");
        unsigned char c = p[pos];
        int opened = 0;
        if (c == '{' || c == '[') {
            if (depth0 + depth + 1 > s->max_depth)
                return SC_FAIL("nesting deeper than %d", s->max_depth);
            stack[depth++] = c;
            pos = sc_skip_ws(p, pos + 1, n);
            if (depth == 1)
                kind = c == '{' ? JSCAN_OBJECT : JSCAN_ARRAY;
            if (pos < n && p[pos] == (c == '{' ? '}' : ']')) {
                pos++;
                depth--;
            } else if (c == '{') {
                if (!(pos = sc_member_name(s, pos, NULL, NULL)))
                    return -1;
                continue;
            } else {
                continue;
            }
            opened = 1;
        }
        if (!opened) {
            int k;
            if (c == '"') {
                k = JSCAN_STRING;
                if (!(pos = sc_skip_string(s, pos, NULL, NULL)))
                    return -1;
            } else if (c == '-' || is_digit(c)) {
                const char *why = NULL;
                size_t ep = 0;
                k = JSCAN_NUMBER;
                if (!(pos = sc_skip_number(p, pos, n, &why, &ep))) {
                    pos = ep;
                    return SC_FAIL("%s", why);
                }
            } else if (c == 't' || c == 'f' || c == 'n') {
                static const char *const lits[] = {"true", "false", "null"};
                int li = c == 't' ? 0 : c == 'f' ? 1 : 2;
                size_t ll = li == 1 ? 5 : 4;
                k = li == 0 ? JSCAN_TRUE : li == 1 ? JSCAN_FALSE : JSCAN_NULL;
                if (n - pos < ll || memcmp(p + pos, lits[li], ll) != 0)
                    return SC_FAIL("invalid literal");
                pos += ll;
            } else {
                return SC_FAIL("unexpected character '%c'", c >= 0x20 && c < 0x7f ? c : '?');
            }
            if (depth == 0) {
                s->pos = pos;
                return k;
            }
        }
        /* after a value inside containers: ',' or a closer */
        for (;;) {
            if (depth == 0) {
                s->pos = pos;
                return kind;
            }
            pos = sc_skip_ws(p, pos, n);
            if (pos >= n)
                return SC_FAIL("unexpected end of input");
            c = p[pos];
            unsigned char top = stack[depth - 1];
            if (c == ',') {
                pos++;
                if (top == '{' && !(pos = sc_member_name(s, pos, NULL, NULL)))
                    return -1;
                break; /* next value */
            }
            if ((top == '{' && c == '}') || (top == '[' && c == ']')) {
                pos++;
                depth--;
                continue;
            }
            return SC_FAIL(top == '{' ? "expected ',' or '}'" : "expected ',' or ']'");
        }
    }
#undef SC_FAIL
}

static void sc_init(struct sc *s, const char *buf, size_t n, int max_depth, char *errstr,
                    size_t errsz)
{
    s->p = (const unsigned char *)buf;
    s->n = n;
    s->pos = 0;
    s->max_depth = max_depth <= 0 ? JSCAN_DEPTH_DEFAULT : max_depth;
    if (s->max_depth > JSCAN_DEPTH_LIMIT)
        s->max_depth = JSCAN_DEPTH_LIMIT;
    s->errstr = errstr;
    s->errsz = errsz;
    if (errstr && errsz)
        errstr[0] = '\0';
}

static int sc_end(struct sc *s)
{
    sc_ws(s);
    if (s->pos != s->n)
        return sc_fail(s, "trailing data after the value");
    return 0;
}

int jscan_validate_scalar(const char *buf, size_t n, int max_depth, char *errstr, size_t errsz)
{
    struct sc s;
    sc_init(&s, buf, n, max_depth, errstr, errsz);
    int k = sc_value(&s, 0);
    if (k < 0 || sc_end(&s) < 0)
        return -1;
    return k;
}

/* After an element of the top-level array or object: 1 when a ',' says
 * another follows, 0 past the closing byte, -1 with the reason otherwise. */
static int sc_after_element(struct sc *s, char close)
{
    sc_ws(s);
    if (s->pos >= s->n)
        return sc_fail(s, "unexpected end of input");
    if (s->p[s->pos] == ',' || s->p[s->pos] == (unsigned char)close) {
        s->pos++;
        return s->p[s->pos - 1] == ',';
    }
    return sc_fail(s, "expected ',' or '%c'", close);
}

int jscan_array_scalar(const char *buf, size_t n, int max_depth, size_t max_items,
                       struct jscan_span **spans, size_t *cap, size_t *count, char *errstr,
                       size_t errsz)
{
    struct sc s;
    sc_init(&s, buf, n, max_depth, errstr, errsz);
    *count = 0;
    sc_ws(&s);
    if (s.pos >= n || s.p[s.pos] != '[')
        return sc_fail(&s, "expected an array");
    s.pos++;
    sc_ws(&s);
    if (s.pos < n && s.p[s.pos] == ']') {
        s.pos++;
        return sc_end(&s);
    }
    for (;;) {
        sc_ws(&s);
        size_t start = s.pos;
        if (sc_value(&s, 1) < 0)
            return -1;
        if (max_items && *count >= max_items)
            return sc_fail(&s, "more than %zu items", max_items);
        if (*count == *cap) {
            size_t ncap = *cap ? *cap * 2 : 64;
            struct jscan_span *v = realloc(*spans, ncap * sizeof(*v));
            if (!v)
                return sc_fail(&s, "out of memory");
            *spans = v;
            *cap = ncap;
        }
        (*spans)[*count].off = start;
        (*spans)[*count].len = s.pos - start;
        (*count)++;
        int more = sc_after_element(&s, ']');
        if (more > 0)
            continue;
        return more < 0 ? -1 : sc_end(&s);
    }
}

static int name_equals(const char *buf, const struct jscan_span *raw, int escaped, const char *key)
{
    size_t klen = strlen(key);
    if (!escaped)
        return raw->len == klen && memcmp(buf + raw->off, key, klen) == 0;
    char tmp[256];
    long l = jscan_unescape(buf + raw->off, raw->len, tmp, sizeof(tmp));
    return l >= 0 && (size_t)l == klen && memcmp(tmp, key, klen) == 0;
}

int jscan_object_scalar(const char *buf, size_t n, int max_depth, const char *const *keys,
                        size_t nkeys, struct jscan_str *out, char *errstr, size_t errsz)
{
    struct sc s;
    sc_init(&s, buf, n, max_depth, errstr, errsz);
    for (size_t i = 0; i < nkeys; i++)
        memset(&out[i], 0, sizeof(out[i]));
    sc_ws(&s);
    if (s.pos >= n || s.p[s.pos] != '{')
        return sc_fail(&s, "expected an object");
    s.pos++;
    sc_ws(&s);
    if (s.pos < n && s.p[s.pos] == '}') {
        s.pos++;
        return sc_end(&s);
    }
    for (;;) {
        struct jscan_span name;
        int name_esc = 0;
        size_t np = sc_member_name(&s, s.pos, &name, &name_esc);
        if (!np)
            return -1;
        s.pos = np;
        sc_ws(&s);
        struct jscan_str val = {0};
        if (s.pos < n && s.p[s.pos] == '"') {
            size_t vp = sc_skip_string(&s, s.pos, &val.raw, &val.escaped);
            if (!vp)
                return -1;
            s.pos = vp;
            val.found = 1;
            val.kind = JSCAN_STRING;
        } else {
            int k = sc_value(&s, 1);
            if (k < 0)
                return -1;
            val.kind = k;
        }
        for (size_t i = 0; i < nkeys; i++)
            if (name_equals(buf, &name, name_esc, keys[i]))
                out[i] = val;
        int more = sc_after_element(&s, '}');
        if (more > 0)
            continue;
        return more < 0 ? -1 : sc_end(&s);
    }
}

/* Past the value at pos in text known to be valid: strings skipped by their
 * quotes, containers by counting brackets; nothing checked. Bounded by n. */
static size_t tr_skip_value(const unsigned char *p, size_t pos, size_t n)
{
    size_t depth = 0;
    while (pos < n) {
        unsigned char c = p[pos];
        if (c == '"') {
            pos++;
            while (pos < n && p[pos] != '"')
                pos += p[pos] == '\\' ? 2 : 1;
            pos++;
            if (pos > n)
                return n;
        } else if (c == '{' || c == '[') {
            depth++;
            pos++;
            continue;
        } else if (c == '}' || c == ']') {
            if (!depth)
                return pos; /* a scalar ended at its container's end */
            depth--;
            pos++;
        } else if (c == ',' && !depth) {
            return pos;
        } else {
            pos++;
            continue;
        }
        if (!depth)
            return pos;
    }
    return n;
}

/* A string's content at pos (the opening quote) in trusted text. */
static size_t tr_string(const unsigned char *p, size_t pos, size_t n, struct jscan_span *raw,
                        int *escaped)
{
    size_t q = pos + 1;
    int esc = 0;
    while (q < n && p[q] != '"') {
        if (p[q] == '\\') {
            esc = 1;
            q++;
        }
        q++;
    }
    if (q > n)
        q = n;
    raw->off = pos + 1;
    raw->len = q - pos - 1;
    *escaped = esc;
    return q + 1;
}

static int tr_kind(unsigned char c)
{
    switch (c) {
    case '{':
        return JSCAN_OBJECT;
    case '[':
        return JSCAN_ARRAY;
    case '"':
        return JSCAN_STRING;
    case 't':
        return JSCAN_TRUE;
    case 'f':
        return JSCAN_FALSE;
    case 'n':
        return JSCAN_NULL;
    default:
        return JSCAN_NUMBER;
    }
}

int jscan_members(const char *buf, size_t n, const char *const *keys, size_t nkeys,
                  struct jscan_str *out)
{
    /* The fast scanner validates again, yet takes a third of the time of
     * the walk below (which finds each string's end by scanning it): on
     * valid text its answers are jscan_object's, which are this function's.
     * What it does not vouch for (escapes, UTF-8) takes the walk. */
    if (jscan_object_fast(buf, n, JSCAN_DEPTH_LIMIT, keys, nkeys, out) == 0)
        return 0;
    const unsigned char *p = (const unsigned char *)buf;
    for (size_t i = 0; i < nkeys; i++)
        memset(&out[i], 0, sizeof(out[i]));
    size_t pos = sc_skip_ws(p, 0, n);
    if (pos >= n || p[pos] != '{')
        return -1;
    pos = sc_skip_ws(p, pos + 1, n);
    while (pos < n && p[pos] == '"') {
        struct jscan_span name;
        int name_esc;
        pos = tr_string(p, pos, n, &name, &name_esc);
        pos = sc_skip_ws(p, pos, n);
        if (pos < n && p[pos] == ':')
            pos = sc_skip_ws(p, pos + 1, n);
        if (pos >= n)
            break;
        struct jscan_str val = {0};
        val.kind = tr_kind(p[pos]);
        if (p[pos] == '"') {
            pos = tr_string(p, pos, n, &val.raw, &val.escaped);
            val.found = 1;
        } else {
            pos = tr_skip_value(p, pos, n);
        }
        for (size_t i = 0; i < nkeys; i++)
            if (name_equals(buf, &name, name_esc, keys[i]))
                out[i] = val;
        pos = sc_skip_ws(p, pos, n);
        if (pos >= n || p[pos] != ',')
            break;
        pos = sc_skip_ws(p, pos + 1, n);
    }
    return 0;
}

static size_t put_utf8(char *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

long jscan_unescape(const char *raw, size_t n, char *out, size_t outsz)
{
    const unsigned char *p = (const unsigned char *)raw;
    size_t i = 0, o = 0;
    while (i < n) {
        char tmp[4];
        size_t tl;
        if (p[i] != '\\') {
            tmp[0] = (char)p[i];
            tl = 1;
            i++;
        } else {
            if (i + 1 >= n)
                return -1;
            unsigned char e = p[i + 1];
            i += 2;
            switch (e) {
            case '"':
            case '\\':
            case '/':
                tmp[0] = (char)e;
                break;
            case 'b':
                tmp[0] = '\b';
                break;
            case 'f':
                tmp[0] = '\f';
                break;
            case 'n':
                tmp[0] = '\n';
                break;
            case 'r':
                tmp[0] = '\r';
                break;
            case 't':
                tmp[0] = '\t';
                break;
            case 'u': {
                long u = hex4(p + i, n - i);
                if (u < 0)
                    return -1;
                i += 4;
                uint32_t cp = (uint32_t)u;
                if (u >= 0xD800 && u <= 0xDBFF) {
                    long lo = -1;
                    if (i + 1 < n && p[i] == '\\' && p[i + 1] == 'u')
                        lo = hex4(p + i + 2, n - i - 2);
                    if (lo < 0xDC00 || lo > 0xDFFF)
                        return -1;
                    i += 6;
                    cp = 0x10000 + (((uint32_t)u - 0xD800) << 10) + ((uint32_t)lo - 0xDC00);
                } else if (u >= 0xDC00 && u <= 0xDFFF) {
                    return -1;
                }
                tl = put_utf8(tmp, cp);
                goto put;
            }
            default:
                return -1;
            }
            tl = 1;
        }
    put:
        if (o + tl + 1 > outsz)
            return -1;
        memcpy(out + o, tmp, tl);
        o += tl;
    }
    if (o + 1 > outsz)
        return -1;
    out[o] = '\0';
    return (long)o;
}

/* ---- the fast scanner ------------------------------------------------------
 *
 * The reference walk above is latency-bound: the end of each string is found
 * by scanning it, and where the next token starts depends on that scan, so
 * the processor cannot run ahead. The fast walk splits the work in two:
 *
 * stage 1 (fs_stage1): 64-byte blocks, SSE2 where there is SSE2. It lists
 *   the position of every '"' and checks that the text has no backslash and
 *   no byte >= 0x80 (then every quote opens or closes a string, strings need
 *   no UTF-8 or escape checks) and no control byte inside a string. This is
 *   throughput-bound: no block depends on the previous one but for one bit.
 * stage 2 (fs_value, fs_object, fs_array): sc_value's grammar walk, byte by
 *   byte outside strings, but a string at x is skipped by taking the next
 *   listed closing quote (see FS_STRING for why it is x's). The next
 *   position no longer waits for a scan.
 *
 * Anything stage 1 does not vouch for (an escape, UTF-8, a control byte in a
 * string, a document past 4 GiB) and any error at all make the caller run
 * the reference scanner on the whole document instead: verdicts, messages
 * and spans are then the reference's by construction, and the fast walk
 * only has to be right on what it accepts. fuzz_jscan compares the two on
 * every input; MBTA's vehicles and predictions are plain compact ASCII.
 */

#define FS_BAIL JSCAN_FAST_BAIL
#define FS_QCAP 1024 /* quote positions per stage 1 window */

struct fs {
    const unsigned char *p;
    size_t n;
    int max_depth;
    size_t blk;     /* stage 1 has read buf[0..blk) */
    int done;       /* ... and that is all of it; sentinels follow q[qn) */
    uint64_t instr; /* all ones when blk is inside a string */
    size_t qi, qn;  /* unconsumed closing quote positions q[qi..qn) */
    /* A block is classified only while qn + 64 <= FS_QCAP and stores at
     * most 64 entries (its closing quotes, at most 32, in groups of 8, at
     * least one group), so stores stay below FS_QCAP; the sentinels go at
     * qn and qn + 1 <= FS_QCAP + 1. The 8 more are margin. */
    uint32_t q[FS_QCAP + 8 + 2];
};

static void fs_init(struct fs *f, const char *buf, size_t n, int max_depth)
{
    f->p = (const unsigned char *)buf;
    f->n = n;
    f->max_depth = max_depth <= 0 ? JSCAN_DEPTH_DEFAULT : max_depth;
    if (f->max_depth > JSCAN_DEPTH_LIMIT)
        f->max_depth = JSCAN_DEPTH_LIMIT;
    f->blk = 0;
    f->done = 0;
    f->instr = 0;
    f->qi = f->qn = 0;
}

static inline unsigned fs_popcount(uint64_t x)
{
#ifdef __POPCNT__
    return (unsigned)__builtin_popcountll(x);
#else
    /* Without the instruction the builtin is a library call. */
    x = x - ((x >> 1) & 0x5555555555555555ULL);
    x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
    x = (x + (x >> 4)) & 0x0F0F0F0F0F0F0F0FULL;
    return (unsigned)((x * 0x0101010101010101ULL) >> 56);
#endif
}

/* Bit i set where b[i] is '"' (*quotes); nonzero when one of the 64 bytes
 * at b is '\\' or below 0x20 or 0x80 and above (one test per block: such a
 * block takes the slow path in fs_stage1). Two versions that must agree on
 * both (test_jscan checks every byte value at every position): SSE2, and
 * a portable one for other processors. The portable one is compiled in
 * every build (jscan_classify_portable is its test hook), so it cannot rot
 * on x86-64, where it is never used unless built with -DJSCAN_PORTABLE. */
static inline uint64_t fs_classify_portable(const unsigned char *b, uint64_t *quotes)
{
    uint64_t qm = 0, odd = 0;
    for (int i = 0; i < 8; i++) {
        /* Byte k in bits 8k..8k+7 on any byte order (one load where the
         * processor is little-endian). */
        const unsigned char *c = b + 8 * i;
        uint64_t w = (uint64_t)c[0] | (uint64_t)c[1] << 8 | (uint64_t)c[2] << 16 |
                     (uint64_t)c[3] << 24 | (uint64_t)c[4] << 32 | (uint64_t)c[5] << 40 |
                     (uint64_t)c[6] << 48 | (uint64_t)c[7] << 56;
        /* Exact per byte (no borrow between bytes): the high bit of each
         * byte of z is set where w has a '"' (Bit Twiddling Hacks,
         * "determine if a word has a zero byte", the exact form). */
        uint64_t x = w ^ (SC_ONES * '"');
        uint64_t z = ~(((x & ~SC_HIGHS) + ~SC_HIGHS) | x | ~SC_HIGHS);
        /* Gathers bit 8k+7 to bit 56+k: the multiply's partial products
         * land on distinct bits (8k + 7j + 7 are all different), so no carry
         * disturbs the top byte. */
        qm |= ((((z >> 7) & SC_ONES) * 0x0102040810204080ULL) >> 56) << (8 * i);
        /* Any-byte tests, where a borrow can only add a false positive
         * above a true one: below 0x20, '\\', or high bit set. */
        uint64_t bs = w ^ (SC_ONES * '\\');
        odd |= ((w - SC_ONES * 0x20) & ~w) | ((bs - SC_ONES) & ~bs) | w;
    }
    *quotes = qm;
    return odd & SC_HIGHS;
}

#if defined(__SSE2__) && !defined(JSCAN_PORTABLE)
static inline uint64_t fs_classify(const unsigned char *b, uint64_t *quotes)
{
    const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\'),
                  space = _mm_set1_epi8(0x20);
    __m128i v0 = _mm_loadu_si128((const __m128i *)(const void *)b),
            v1 = _mm_loadu_si128((const __m128i *)(const void *)(b + 16)),
            v2 = _mm_loadu_si128((const __m128i *)(const void *)(b + 32)),
            v3 = _mm_loadu_si128((const __m128i *)(const void *)(b + 48));
    /* Signed compare: bytes >= 0x80 are negative, so "below 0x20" too. */
#define FS_ODD(v) _mm_or_si128(_mm_cmpeq_epi8(v, bslash), _mm_cmplt_epi8(v, space))
    __m128i odd =
        _mm_or_si128(_mm_or_si128(FS_ODD(v0), FS_ODD(v1)), _mm_or_si128(FS_ODD(v2), FS_ODD(v3)));
#undef FS_ODD
    *quotes = (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v0, quote)) |
              (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v1, quote)) << 16 |
              (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v2, quote)) << 32 |
              (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v3, quote)) << 48;
    return (uint64_t)(unsigned)_mm_movemask_epi8(odd);
}
#else
#define fs_classify fs_classify_portable
#endif

uint64_t jscan_classify(const unsigned char *b, uint64_t *quotes)
{
    return fs_classify(b, quotes);
}

uint64_t jscan_classify_portable(const unsigned char *b, uint64_t *quotes)
{
    return fs_classify_portable(b, quotes);
}

/* Lists the closing quotes of the next blocks after the unconsumed ones
 * (the walk calls it when none is left, so the memmove is of nothing today;
 * it keeps the function right for any caller). Stops before a block that
 * might not fit in q[] (at most 32 closing quotes per block, 64 counted) or
 * at the end, where the two sentinels go. Returns 0, or -1 when the text
 * has something stage 1 does not vouch for. */
static int fs_stage1(struct fs *f)
{
    const unsigned char *p = f->p;
    const size_t n = f->n;
    size_t keep = f->qn - f->qi, blk = f->blk, qn = keep;
    uint64_t instr = f->instr;
    memmove(f->q, f->q + f->qi, keep * sizeof(f->q[0]));
    f->qi = 0;
    while (blk < n && qn + 64 <= FS_QCAP) {
        unsigned char pad[64];
        const unsigned char *b = p + blk;
        uint64_t valid = ~0ULL;
        if (n - blk < 64) {
            /* The last, short block: a copy padded with spaces, which are
             * neither quotes nor odd (every read stays in buf[0..n)). */
            memset(pad, ' ', sizeof(pad));
            memcpy(pad, b, n - blk);
            b = pad;
            valid = (1ULL << (n - blk)) - 1;
        }
        uint64_t qm, odd = fs_classify(b, &qm);
        qm &= valid;
        /* In a string: from an opening quote (inclusive) to its closing
         * quote (exclusive), the prefix XOR of the quote bits, carried from
         * block to block. With no backslash every quote opens or closes. */
        uint64_t in = qm;
        in ^= in << 1;
        in ^= in << 2;
        in ^= in << 4;
        in ^= in << 8;
        in ^= in << 16;
        in ^= in << 32;
        in ^= instr;
        instr = 0 - (in >> 63); /* all ones when the block ends in a string */
        if (odd) {
            /* Tabs, newlines and carriage returns are whitespace outside
             * strings (the walk checks that); anything else, or one of
             * them in a string, is for the reference. */
            for (uint64_t m = valid; m; m &= m - 1) {
                int i = __builtin_ctzll(m);
                unsigned char c = b[i];
                if (c == '\\' || c >= 0x80 ||
                    (c < 0x20 && (((in >> i) & 1) || (c != '\t' && c != '\n' && c != '\r'))))
                    return -1;
            }
        }
        /* Each closing quote's position: 8 stored at once, past the last
         * one too (room is left for them), and a loop only for a block with
         * more, so no branch per quote. OR-ing the top bit keeps ctz
         * defined once the mask runs out. */
        uint64_t cm = qm & ~in;
        uint32_t *o = f->q + qn, off = (uint32_t)blk;
        unsigned cnt = fs_popcount(cm);
        qn += cnt;
#define FS_PUT(k) (o[k] = off + (uint32_t)__builtin_ctzll(cm | 1ULL << 63), cm &= cm - 1)
        FS_PUT(0), FS_PUT(1), FS_PUT(2), FS_PUT(3), FS_PUT(4), FS_PUT(5), FS_PUT(6), FS_PUT(7);
        while (cnt > 8) {
            o += 8;
            cnt -= 8;
            FS_PUT(0), FS_PUT(1), FS_PUT(2), FS_PUT(3), FS_PUT(4), FS_PUT(5), FS_PUT(6), FS_PUT(7);
        }
#undef FS_PUT
        blk += 64;
    }
    if (blk >= n) {
        blk = n;
        f->done = 1;
        /* Sentinels: a walk that wants another string than there are finds
         * its end at n, which is out of the text. */
        f->q[qn] = f->q[qn + 1] = (uint32_t)n;
    }
    f->blk = blk;
    f->qn = qn;
    f->instr = instr;
    return 0;
}

/* The next byte at or after pos that is not whitespace, in c; FS_BAIL at the
 * end of the input. One compare on the common path (no whitespace). */
#define FS_PEEK()                                                                                  \
    do {                                                                                           \
        if (pos >= n)                                                                              \
            return FS_BAIL;                                                                        \
        c = p[pos];                                                                                \
        if (c <= ' ') {                                                                            \
            pos = sc_skip_ws(p, pos, n);                                                           \
            if (pos >= n)                                                                          \
                return FS_BAIL;                                                                    \
            c = p[pos];                                                                            \
        }                                                                                          \
    } while (0)

/* The string whose opening quote is at pos (< n): its closing quote in cq,
 * its content starts at pos + 1 and is cq - pos - 1 long. qv, qi, qn are
 * locals mirroring f->q, f->qi, f->qn (a register, not a store and a reload
 * per string).
 *
 * Why the next listed closing quote is this string's: the walk starts
 * outside any string and never steps over a '"' without taking it as a
 * string (whitespace, numbers, literals and punctuation contain none), and
 * it takes the closing quotes in order, one per string. So every closing
 * quote before pos is consumed, pos is an opening quote by stage 1's parity
 * (with no backslash every quote opens or closes), and the next closing
 * quote is the first quote after pos. The range check costs one compare and
 * sends anything else to the reference all the same. */
#define FS_STRING(cq)                                                                              \
    do {                                                                                           \
        if (qi == qn && !f->done) {                                                                \
            f->qi = qi;                                                                            \
            if (fs_stage1(f) < 0)                                                                  \
                return FS_BAIL;                                                                    \
            qi = f->qi;                                                                            \
            qn = f->qn;                                                                            \
        }                                                                                          \
        cq = qv[qi++];                                                                             \
        if (cq - pos - 1 >= n - pos - 1) /* not in (pos, n): a sentinel, or a doubt */             \
            return FS_BAIL;                                                                        \
    } while (0)

/* sc_value's walk: one value at *ppos at nesting depth0; its kind with
 * *ppos past it, or FS_BAIL. */
static int fs_value(struct fs *f, size_t *ppos, int depth0)
{
    unsigned char stack[JSCAN_DEPTH_LIMIT];
    const unsigned char *p = f->p;
    const size_t n = f->n;
    const uint32_t *qv = f->q;
    size_t pos = *ppos, qi = f->qi, qn = f->qn, cq;
    const int room = f->max_depth - depth0; /* containers that may open */
    int depth = 0, kind = 0, k;
    unsigned char c;

value:
    FS_PEEK();
value_c:
    if (c == '"') {
        FS_STRING(cq);
        pos = cq + 1;
        if (!depth) {
            kind = JSCAN_STRING;
            goto done;
        }
        goto after;
    }
    if (c == '{' || c == '[') {
        if (depth + 1 > room)
            return FS_BAIL;
        stack[depth++] = c;
        if (depth == 1)
            kind = c == '{' ? JSCAN_OBJECT : JSCAN_ARRAY;
        pos++;
        unsigned char open = c;
        FS_PEEK();
        if (c == open + 2) { /* '{' + 2 is '}', '[' + 2 is ']' */
            pos++;
            depth--;
            goto after;
        }
        if (open == '{')
            goto member_c;
        goto value_c;
    }
    if (c == '-' || is_digit(c)) {
        const char *why;
        size_t ep;
        if (!(pos = sc_skip_number(p, pos, n, &why, &ep)))
            return FS_BAIL;
        k = JSCAN_NUMBER;
    } else if (c == 't' && n - pos >= 4 && memcmp(p + pos, "true", 4) == 0) {
        pos += 4;
        k = JSCAN_TRUE;
    } else if (c == 'f' && n - pos >= 5 && memcmp(p + pos, "false", 5) == 0) {
        pos += 5;
        k = JSCAN_FALSE;
    } else if (c == 'n' && n - pos >= 4 && memcmp(p + pos, "null", 4) == 0) {
        pos += 4;
        k = JSCAN_NULL;
    } else {
        return FS_BAIL;
    }
    if (!depth) {
        kind = k;
        goto done;
    }
after:
    if (!depth)
        goto done;
    FS_PEEK();
    if (c == ',') {
        pos++;
        if (pos < n && (c = p[pos]) > ' ') {
            if (stack[depth - 1] == '{')
                goto member_c;
            goto value_c;
        }
        if (stack[depth - 1] == '{')
            goto member;
        goto value;
    }
    if (c == stack[depth - 1] + 2) {
        pos++;
        depth--;
        goto after;
    }
    return FS_BAIL;
member:
    FS_PEEK();
member_c:
    if (c != '"')
        return FS_BAIL;
    FS_STRING(cq);
    /* Compact JSON, the common case: "name":v with no whitespace. */
    if (n - cq > 2 && p[cq + 1] == ':' && (c = p[cq + 2]) > ' ') {
        pos = cq + 2;
        goto value_c;
    }
    pos = cq + 1;
    FS_PEEK();
    if (c != ':')
        return FS_BAIL;
    pos++;
    goto value;
done:
    *ppos = pos;
    f->qi = qi;
    f->qn = qn;
    return kind;
}

/* After the whole value: only whitespace may follow. */
static int fs_end(struct fs *f, size_t pos)
{
    return sc_skip_ws(f->p, pos, f->n) == f->n ? 0 : FS_BAIL;
}

static int fs_validate(struct fs *f)
{
    size_t pos = 0;
    int k = fs_value(f, &pos, 0);
    if (k < 0 || fs_end(f, pos) < 0)
        return FS_BAIL;
    return k;
}

static int fs_array(struct fs *f, size_t max_items, struct jscan_span **spans, size_t *cap,
                    size_t *count)
{
    const unsigned char *p = f->p;
    const size_t n = f->n;
    size_t pos = 0;
    unsigned char c;
    *count = 0;
    FS_PEEK();
    if (c != '[')
        return FS_BAIL;
    pos++;
    FS_PEEK();
    if (c == ']')
        return fs_end(f, pos + 1);
    for (;;) {
        FS_PEEK();
        size_t start = pos;
        if (fs_value(f, &pos, 1) < 0)
            return FS_BAIL;
        if (max_items && *count >= max_items)
            return FS_BAIL;
        if (*count == *cap) {
            size_t ncap = *cap ? *cap * 2 : 64;
            struct jscan_span *v = realloc(*spans, ncap * sizeof(*v));
            if (!v)
                return FS_BAIL;
            *spans = v;
            *cap = ncap;
        }
        (*spans)[*count].off = start;
        (*spans)[*count].len = pos - start;
        (*count)++;
        FS_PEEK();
        pos++;
        if (c == ',')
            continue;
        if (c == ']')
            return fs_end(f, pos);
        return FS_BAIL;
    }
}

static int fs_object(struct fs *f, const char *const *keys, size_t nkeys, struct jscan_str *out)
{
    const unsigned char *p = f->p;
    const size_t n = f->n;
    const uint32_t *qv = f->q;
    size_t pos = 0, qi, qn, cq;
    unsigned char c;
    size_t klen[8];
    for (size_t i = 0; i < nkeys && i < 8; i++)
        klen[i] = strlen(keys[i]);
    for (size_t i = 0; i < nkeys; i++)
        memset(&out[i], 0, sizeof(out[i]));
    FS_PEEK();
    if (c != '{')
        return FS_BAIL;
    pos++;
    FS_PEEK();
    if (c == '}')
        return fs_end(f, pos + 1);
    for (;;) {
        if (c != '"')
            return FS_BAIL;
        qi = f->qi;
        qn = f->qn;
        FS_STRING(cq);
        struct jscan_span name = {pos + 1, cq - pos - 1};
        pos = cq + 1;
        FS_PEEK();
        if (c != ':')
            return FS_BAIL;
        pos++;
        FS_PEEK();
        struct jscan_str val = {0};
        if (c == '"') {
            FS_STRING(cq);
            val.raw.off = pos + 1;
            val.raw.len = cq - pos - 1;
            pos = cq + 1;
            val.found = 1;
            val.kind = JSCAN_STRING;
            f->qi = qi;
            f->qn = qn;
        } else {
            f->qi = qi;
            f->qn = qn;
            int k = fs_value(f, &pos, 1);
            if (k < 0)
                return FS_BAIL;
            val.kind = k;
        }
        /* Names are plain here (stage 1 let no backslash through). */
        for (size_t i = 0; i < nkeys; i++) {
            int eq = i < 8 ? name.len == klen[i] && (!klen[i] || p[name.off] == keys[i][0]) &&
                                 memcmp(p + name.off, keys[i], klen[i]) == 0
                           : name_equals((const char *)p, &name, 0, keys[i]);
            if (eq)
                out[i] = val;
        }
        FS_PEEK();
        pos++;
        if (c == ',') {
            FS_PEEK();
            continue;
        }
        if (c == '}')
            return fs_end(f, pos);
        return FS_BAIL;
    }
}

#undef FS_PEEK
#undef FS_STRING

/* The fast scanner lists positions as uint32_t (half the cache of size_t):
 * a position, blk and the sentinel n must fit, so 4 GiB and more goes to
 * the reference. */
#define FS_FITS(n) ((uint64_t)(n) < UINT32_MAX - 128)

int jscan_validate_fast(const char *buf, size_t n, int max_depth)
{
    struct fs f;
    if (!FS_FITS(n))
        return FS_BAIL;
    fs_init(&f, buf, n, max_depth);
    return fs_validate(&f);
}

int jscan_array_fast(const char *buf, size_t n, int max_depth, size_t max_items,
                     struct jscan_span **spans, size_t *cap, size_t *count)
{
    struct fs f;
    if (!FS_FITS(n))
        return FS_BAIL;
    fs_init(&f, buf, n, max_depth);
    return fs_array(&f, max_items, spans, cap, count);
}

int jscan_object_fast(const char *buf, size_t n, int max_depth, const char *const *keys,
                      size_t nkeys, struct jscan_str *out)
{
    struct fs f;
    if (!FS_FITS(n))
        return FS_BAIL;
    fs_init(&f, buf, n, max_depth);
    return fs_object(&f, keys, nkeys, out);
}

int jscan_validate(const char *buf, size_t n, int max_depth, char *errstr, size_t errsz)
{
    int k = jscan_validate_fast(buf, n, max_depth);
    if (k == FS_BAIL)
        return jscan_validate_scalar(buf, n, max_depth, errstr, errsz);
    if (errstr && errsz)
        errstr[0] = '\0';
    return k;
}

int jscan_array(const char *buf, size_t n, int max_depth, size_t max_items,
                struct jscan_span **spans, size_t *cap, size_t *count, char *errstr, size_t errsz)
{
    if (jscan_array_fast(buf, n, max_depth, max_items, spans, cap, count) == FS_BAIL)
        return jscan_array_scalar(buf, n, max_depth, max_items, spans, cap, count, errstr, errsz);
    if (errstr && errsz)
        errstr[0] = '\0';
    return 0;
}

int jscan_object(const char *buf, size_t n, int max_depth, const char *const *keys, size_t nkeys,
                 struct jscan_str *out, char *errstr, size_t errsz)
{
    if (jscan_object_fast(buf, n, max_depth, keys, nkeys, out) == FS_BAIL)
        return jscan_object_scalar(buf, n, max_depth, keys, nkeys, out, errstr, errsz);
    if (errstr && errsz)
        errstr[0] = '\0';
    return 0;
}
