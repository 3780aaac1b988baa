/*
 * test_jscan: the JSON scanner over fixture files in tests/data/jscan/
 * (JSONTestSuite naming: y_ must be accepted, n_ refused; the depth cap used
 * is 128, so n_deep_200 is refused for depth and y_deep_100 accepted), plus
 * tables for array splitting and member lookup: exact spans, byte for byte.
 *
 * The fast scanner (jscan_int.h) is checked three ways on every case below:
 * the public functions against the reference (jscan_*_scalar: same return,
 * message, spans and members), the fast scanner alone (jscan_*_fast) where
 * it must take the document itself (plain ASCII without escapes), and
 * concrete expected results. Inputs are exact-size heap copies so that
 * ASan sees any read past the end.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json/jscan_int.h"
#include "t.h"

#define FIXDIR "tests/data/jscan"

static char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *b = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            cap = cap ? cap * 2 : 4096;
            b = realloc(b, cap);
        }
        size_t r = fread(b + len, 1, cap - len, f);
        if (!r)
            break;
        len += r;
    }
    fclose(f);
    *n = len;
    return b;
}

static void test_fixtures(void)
{
    DIR *d = opendir(FIXDIR);
    T_ASSERTF(d, "cannot open %s (run from the repo root)", FIXDIR);
    int ny = 0, nn = 0;
    struct dirent *de;
    char path[512], err[256];
    while ((de = readdir(d))) {
        const char *nm = de->d_name;
        if ((nm[0] != 'y' && nm[0] != 'n') || nm[1] != '_')
            continue;
        snprintf(path, sizeof(path), "%s/%s", FIXDIR, nm);
        size_t n = 0;
        char *b = slurp(path, &n);
        T_ASSERTF(b || n == 0, "cannot read %s", path);
        int k = jscan_validate(b ? b : "", n, 0, err, sizeof(err));
        /* The same result from an exact-size heap copy (ASan sees overreads). */
        char *exact = malloc(n ? n : 1);
        if (n)
            memcpy(exact, b, n);
        int k2 = jscan_validate(exact, n, 0, NULL, 0);
        free(exact);
        free(b);
        if (nm[0] == 'y') {
            ny++;
            T_ASSERTF(k > 0, "%s refused: %s", nm, err);
        } else {
            nn++;
            T_ASSERTF(k < 0, "%s accepted as kind %d", nm, k);
            T_ASSERTF(err[0], "%s refused without a reason", nm);
        }
        T_ASSERTF(k == k2, "%s: %d vs %d", nm, k, k2);
    }
    closedir(d);
    T_ASSERTF(ny >= 15 && nn >= 40, "only %d y_ and %d n_ fixtures", ny, nn);
}

static void test_depth_cap(void)
{
    char b[64];
    memset(b, '[', 10);
    memset(b + 10, ']', 10);
    T_EQ_INT(jscan_validate(b, 20, 10, NULL, 0), JSCAN_ARRAY);
    T_EQ_INT(jscan_validate(b, 20, 9, NULL, 0), -1);
    /* Elements of a split array are at depth 1. */
    struct jscan_span *sp = NULL;
    size_t cap = 0, cnt = 0;
    T_EQ_INT(jscan_array(b, 20, 10, 0, &sp, &cap, &cnt, NULL, 0), 0);
    T_EQ_INT(cnt, 1);
    T_EQ_INT(jscan_array(b, 20, 9, 0, &sp, &cap, &cnt, NULL, 0), -1);
    free(sp);
}

static const struct {
    const char *in;
    int ok;
    const char *items[5]; /* expected slices, NULL-terminated */
} split_cases[] = {
    {"[]", 1, {NULL}},
    {" [ ] ", 1, {NULL}},
    {"[1]", 1, {"1"}},
    {"[ {\"a\" : [1, 2]} ,\n\"x,]\" , null ]", 1, {"{\"a\" : [1, 2]}", "\"x,]\"", "null"}},
    {"[{\"type\":\"vehicle\",\"id\":\"y1\"},{\"type\":\"trip\",\"id\":\"t\\\"1\"}]",
     1,
     {"{\"type\":\"vehicle\",\"id\":\"y1\"}", "{\"type\":\"trip\",\"id\":\"t\\\"1\"}"}},
    {"[-1.5e3,true,false]", 1, {"-1.5e3", "true", "false"}},
    {"{}", 0, {NULL}},
    {"[1,]", 0, {NULL}},
    {"[1 2]", 0, {NULL}},
    {"[1] x", 0, {NULL}},
    {"\"[]\"", 0, {NULL}},
};

static void test_split(void)
{
    struct jscan_span *sp = NULL;
    size_t cap = 0;
    for (size_t i = 0; i < sizeof(split_cases) / sizeof(split_cases[0]); i++) {
        const char *in = split_cases[i].in;
        size_t cnt = 99;
        char err[128];
        int rc = jscan_array(in, strlen(in), 0, 0, &sp, &cap, &cnt, err, sizeof(err));
        T_ASSERTF((rc == 0) == split_cases[i].ok, "case %zu \"%s\": rc %d (%s)", i, in, rc, err);
        if (!split_cases[i].ok)
            continue;
        size_t want = 0;
        while (split_cases[i].items[want])
            want++;
        T_ASSERTF(cnt == want, "case %zu: %zu items, expected %zu", i, cnt, want);
        for (size_t j = 0; j < cnt; j++)
            T_EQ_MEM(in + sp[j].off, sp[j].len, split_cases[i].items[j],
                     strlen(split_cases[i].items[j]));
    }
    free(sp);
}

static void test_split_many(void)
{
    /* Growth past the initial span capacity, and the item cap. */
    char b[4096];
    size_t n = 0;
    b[n++] = '[';
    for (int i = 0; i < 500; i++)
        n += (size_t)snprintf(b + n, sizeof(b) - n, "%s%d", i ? "," : "", i);
    b[n++] = ']';
    struct jscan_span *sp = NULL;
    size_t cap = 0, cnt = 0;
    T_EQ_INT(jscan_array(b, n, 0, 0, &sp, &cap, &cnt, NULL, 0), 0);
    T_EQ_INT(cnt, 500);
    T_EQ_MEM(b + sp[499].off, sp[499].len, "499", 3);
    char err[128];
    T_EQ_INT(jscan_array(b, n, 0, 100, &sp, &cap, &cnt, err, sizeof(err)), -1);
    T_ASSERT(strstr(err, "more than 100 items"));
    free(sp);
}

static const struct {
    const char *in;
    int ok;
    const char *type, *id; /* decoded; NULL when not a string member */
} obj_cases[] = {
    {"{\"type\":\"vehicle\",\"id\":\"y1731\"}", 1, "vehicle", "y1731"},
    {" { \"id\" : \"a\" , \"x\":{\"id\":\"inner\"}, \"type\":\"stop\" } ", 1, "stop", "a"},
    {"{\"attributes\":{\"type\":\"no\"},\"id\":\"p-1\"}", 1, NULL, "p-1"},
    {"{\"type\":\"t\",\"id\":7}", 1, "t", NULL},
    {"{\"\\u0074ype\":\"trip\",\"id\":\"a\\/b\\u00e9\"}", 1, "trip", "a/b\xc3\xa9"},
    {"{\"id\":\"1\",\"id\":\"2\",\"type\":\"v\"}", 1, "v", "2"},
    {"{}", 1, NULL, NULL},
    {"[]", 0, NULL, NULL},
    {"{\"type\":\"v\",\"id\":\"1\"", 0, NULL, NULL},
    {"{\"type\":\"v\",\"id\":\"1\"}}", 0, NULL, NULL},
    {"{\"type\":\"v\",\"id\":\"\xff\"}", 0, NULL, NULL},
};

static void test_object(void)
{
    static const char *const keys[] = {"type", "id"};
    for (size_t i = 0; i < sizeof(obj_cases) / sizeof(obj_cases[0]); i++) {
        const char *in = obj_cases[i].in;
        struct jscan_str out[2];
        char err[128];
        int rc = jscan_object(in, strlen(in), 0, keys, 2, out, err, sizeof(err));
        T_ASSERTF((rc == 0) == obj_cases[i].ok, "case %zu \"%s\": rc %d (%s)", i, in, rc, err);
        if (!obj_cases[i].ok)
            continue;
        const char *want[2] = {obj_cases[i].type, obj_cases[i].id};
        for (int k = 0; k < 2; k++) {
            T_ASSERTF(out[k].found == (want[k] != NULL), "case %zu key %s: found %d", i, keys[k],
                      out[k].found);
            if (!want[k])
                continue;
            char dec[64];
            long l = jscan_unescape(in + out[k].raw.off, out[k].raw.len, dec, sizeof(dec));
            T_ASSERT(l >= 0);
            T_EQ_STR(dec, want[k]);
        }
        /* The trusted lookup gives the same answer on what validated. */
        struct jscan_str tr[2];
        T_ASSERTF(jscan_members(in, strlen(in), keys, 2, tr) == 0, "case %zu: members", i);
        for (int k = 0; k < 2; k++)
            T_ASSERTF(tr[k].found == out[k].found && tr[k].kind == out[k].kind &&
                          tr[k].escaped == out[k].escaped && tr[k].raw.off == out[k].raw.off &&
                          tr[k].raw.len == out[k].raw.len,
                      "case %zu key %s: members differs from object", i, keys[k]);
    }
}

static void test_unescape(void)
{
    char o[8];
    T_EQ_INT(jscan_unescape("\\uD83D\\uDE00", 12, o, sizeof(o)), 4);
    T_EQ_MEM(o, 4, "\xf0\x9f\x98\x80", 4);
    T_EQ_INT(jscan_unescape("abcdefgh", 8, o, sizeof(o)), -1); /* no room for the NUL */
    T_EQ_INT(jscan_unescape("abcdefg", 7, o, sizeof(o)), 7);
    T_EQ_INT(jscan_unescape("\\uDC00", 6, o, sizeof(o)), -1);
    T_EQ_INT(jscan_unescape("\\q", 2, o, sizeof(o)), -1);
}

/* ---- the fast scanner against the reference ---------------------------- */

static char *exact_copy(const char *b, size_t n)
{
    char *c = malloc(n ? n : 1);
    T_ASSERT(c);
    if (n)
        memcpy(c, b, n);
    return c;
}

static int str_eq(const struct jscan_str *a, const struct jscan_str *b)
{
    return a->found == b->found && a->kind == b->kind && a->escaped == b->escaped &&
           a->raw.off == b->raw.off && a->raw.len == b->raw.len;
}

static int spans_eq(const struct jscan_span *a, size_t na, const struct jscan_span *b, size_t nb)
{
    if (na != nb)
        return 0;
    for (size_t i = 0; i < na; i++)
        if (a[i].off != b[i].off || a[i].len != b[i].len)
            return 0;
    return 1;
}

/* Keys looked up in every comparison: the ones produce uses and two more. */
static const char *const fk[] = {"type", "id", "a", "k"};
#define FK_N 4

/*
 * Runs jscan_validate, jscan_array and jscan_object on an exact-size copy of
 * b[0..n) at depth md (and max_items for the array), and fails unless each
 * gives what its reference gives: return value, message, spans, members.
 * The fast scanner alone must either bail or give the reference's result.
 * Returns the reference's verdict of jscan_validate.
 */
static int same_as_ref(const char *b0, size_t n, int md, size_t max_items, const char *what)
{
    char *b = exact_copy(b0, n);
    char e1[256], e2[256];
    int k1 = jscan_validate(b, n, md, e1, sizeof(e1));
    int k2 = jscan_validate_scalar(b, n, md, e2, sizeof(e2));
    int kf = jscan_validate_fast(b, n, md);
    int ok_v = k1 == k2 && strcmp(e1, e2) == 0, ok_vf = kf == JSCAN_FAST_BAIL || kf == k2;
    char ve1[256], ve2[256];
    snprintf(ve1, sizeof(ve1), "%s", e1);
    snprintf(ve2, sizeof(ve2), "%s", e2);

    struct jscan_span *s1 = NULL, *s2 = NULL, *s3 = NULL;
    size_t c1 = 0, c2 = 0, c3 = 0, n1 = 0, n2 = 0, n3 = 0;
    int r1 = jscan_array(b, n, md, max_items, &s1, &c1, &n1, e1, sizeof(e1));
    int r2 = jscan_array_scalar(b, n, md, max_items, &s2, &c2, &n2, e2, sizeof(e2));
    int r3 = jscan_array_fast(b, n, md, max_items, &s3, &c3, &n3);
    int ok_a = r1 == r2 && strcmp(e1, e2) == 0 && spans_eq(s1, n1, s2, n2);
    int ok_af = r3 == JSCAN_FAST_BAIL || (r3 == r2 && spans_eq(s3, n3, s2, n2));
    free(s1);
    free(s2);
    free(s3);
    char ae1[256], ae2[256];
    snprintf(ae1, sizeof(ae1), "%s", e1);
    snprintf(ae2, sizeof(ae2), "%s", e2);

    struct jscan_str o1[FK_N], o2[FK_N], o3[FK_N];
    int q1 = jscan_object(b, n, md, fk, FK_N, o1, e1, sizeof(e1));
    int q2 = jscan_object_scalar(b, n, md, fk, FK_N, o2, e2, sizeof(e2));
    int q3 = jscan_object_fast(b, n, md, fk, FK_N, o3);
    int ok_o = q1 == q2 && strcmp(e1, e2) == 0, ok_of = q3 == JSCAN_FAST_BAIL || q3 == q2;
    for (int k = 0; k < FK_N; k++) {
        ok_o = ok_o && str_eq(&o1[k], &o2[k]);
        ok_of = ok_of && (q3 == JSCAN_FAST_BAIL || str_eq(&o3[k], &o2[k]));
    }
    free(b);
    T_ASSERTF(ok_v, "%s: validate %d \"%s\", reference %d \"%s\"", what, k1, ve1, k2, ve2);
    T_ASSERTF(ok_vf, "%s: fast validate %d, reference %d", what, kf, k2);
    T_ASSERTF(ok_a, "%s: array %d (%zu) \"%s\", reference %d (%zu) \"%s\"", what, r1, n1, ae1, r2,
              n2, ae2);
    T_ASSERTF(ok_af, "%s: fast array %d (%zu), reference %d (%zu)", what, r3, n3, r2, n2);
    T_ASSERTF(ok_o, "%s: object %d \"%s\", reference %d \"%s\"", what, q1, e1, q2, e2);
    T_ASSERTF(ok_of, "%s: fast object %d differs from reference %d", what, q3, q2);
    return k2;
}

/* As same_as_ref, and the fast scanner must take the document itself
 * (valid plain ASCII): no silent fallback where speed is expected. */
static int fast_takes(const char *b0, size_t n, int md, const char *what)
{
    int k = same_as_ref(b0, n, md, 0, what);
    T_ASSERTF(k > 0, "%s: refused", what);
    char *b = exact_copy(b0, n);
    int kf = jscan_validate_fast(b, n, md), rf = 0;
    struct jscan_str o[FK_N];
    struct jscan_span *sp = NULL;
    size_t cap = 0, cnt = 0;
    if (k == JSCAN_ARRAY)
        rf = jscan_array_fast(b, n, md, 0, &sp, &cap, &cnt);
    else if (k == JSCAN_OBJECT)
        rf = jscan_object_fast(b, n, md, fk, FK_N, o);
    free(sp);
    free(b);
    T_ASSERTF(kf == k && rf == 0, "%s: the fast scanner bailed (validate %d, %s %d)", what, kf,
              k == JSCAN_ARRAY ? "array" : "object", rf);
    return k;
}

/* jscan_object's decoded string member key on b, or NULL when absent. */
static const char *member(const char *b, size_t n, const char *key, char *dec, size_t decsz)
{
    const char *const keys[] = {key};
    struct jscan_str o;
    if (jscan_object(b, n, 0, keys, 1, &o, NULL, 0) != 0 || !o.found)
        return NULL;
    if (jscan_unescape(b + o.raw.off, o.raw.len, dec, decsz) < 0)
        return NULL;
    return dec;
}

static void test_classify(void)
{
    unsigned char blk[64];
    /* Every byte value at every position, in a block of plain bytes. */
    for (int v = 0; v < 256; v++) {
        for (int i = 0; i < 64; i++) {
            memset(blk, 'a', sizeof(blk));
            blk[i] = (unsigned char)v;
            uint64_t q1 = 1, q2 = 2, wq = v == '"' ? 1ULL << i : 0;
            int wodd = v == '\\' || v < 0x20 || v >= 0x80;
            int o1 = jscan_classify(blk, &q1) != 0, o2 = jscan_classify_portable(blk, &q2) != 0;
            T_ASSERTF(q1 == wq && q2 == wq && o1 == wodd && o2 == wodd,
                      "byte 0x%02x at %d: quotes %llx/%llx odd %d/%d", v, i, (unsigned long long)q1,
                      (unsigned long long)q2, o1, o2);
        }
    }
    /* Mixed blocks: many quotes, an odd byte now and then (a borrow in the
     * portable word tricks must not move a quote bit). */
    static const unsigned char plain[] = {'"', '"', '"', 'a', ' ', '!', '#', 0x7f, '[', ']', '0'};
    static const unsigned char oddb[] = {'\\', 0x00, 0x01, 0x1f, 0x80, 0xbf, 0xff, '\t', '\n'};
    uint32_t x = 2463534242u;
    for (int r = 0; r < 50000; r++) {
        uint64_t wq = 0;
        int wodd = 0;
        for (int i = 0; i < 64; i++) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            unsigned char c =
                (x & 63) == 0 ? oddb[(x >> 8) % sizeof(oddb)] : plain[(x >> 8) % sizeof(plain)];
            blk[i] = c;
            wq |= (uint64_t)(c == '"') << i;
            wodd |= c == '\\' || c < 0x20 || c >= 0x80;
        }
        uint64_t q1, q2;
        int o1 = jscan_classify(blk, &q1) != 0, o2 = jscan_classify_portable(blk, &q2) != 0;
        T_ASSERTF(q1 == wq && q2 == wq && o1 == wodd && o2 == wodd, "random block %d", r);
    }
}

static const struct {
    const char *file;
    int valid, plain; /* plain: ASCII without escapes, the fast scanner's */
    const char *type, *id;
} res_cases[] = {
    {"vehicle.json", 1, 1, "vehicle", "R-5482E4F8"},
    {"vehicle_old.json", 1, 1, "vehicle", "y1731"},
    {"prediction.json", 1, 1, "prediction", "prediction-68608128-70077-130"},
    {"alert.json", 1, 0, "alert", "617421"},
    {"facility.json", 1, 1, "facility", "fac-1"},
    {"route.json", 1, 1, "route", "Red"},
    {"schedule.json", 1, 1, "schedule", "schedule-68608128-70077-130"},
    {"stop.json", 1, 1, "stop", "70077"},
    {"trip.json", 1, 1, "trip", "68608128"},
    {"bad_noid.json", 1, 1, "vehicle", NULL},
    {"bad_range.json", 1, 1, "vehicle", "v9"},
    {"bad_rel.json", 1, 1, "vehicle", "v9"},
    {"bad_ts.json", 1, 1, "vehicle", "v9"},
    {"bad_wrong_type.json", 1, 1, "vehicle", "v9"},
    {"bad_truncated.json", 0, 0, NULL, NULL},
};

static char *resource(const char *file, size_t *n)
{
    char path[256];
    snprintf(path, sizeof(path), "tests/data/resources/%s", file);
    char *b = slurp(path, n);
    T_ASSERTF(b, "cannot read %s", path);
    return b;
}

static void test_fast_resources(void)
{
    for (size_t i = 0; i < sizeof(res_cases) / sizeof(res_cases[0]); i++) {
        size_t n;
        char *b = resource(res_cases[i].file, &n);
        int k = res_cases[i].plain ? fast_takes(b, n, 0, res_cases[i].file)
                                   : same_as_ref(b, n, 0, 0, res_cases[i].file);
        char dt[128], di[128];
        const char *t = member(b, n, "type", dt, sizeof(dt)),
                   *id = member(b, n, "id", di, sizeof(di));
        int valid = res_cases[i].valid;
        free(b);
        T_ASSERTF(valid ? k == JSCAN_OBJECT : k < 0, "%s: kind %d", res_cases[i].file, k);
        if (!valid)
            continue;
        T_EQ_STR(t, res_cases[i].type);
        if (res_cases[i].id)
            T_EQ_STR(id, res_cases[i].id);
        else
            T_ASSERT(id == NULL);
    }
}

/* A reset: the valid resources as one array, each span exactly the file. */
static void test_fast_reset_array(void)
{
    for (int with_alert = 0; with_alert < 2; with_alert++) {
        char *doc = malloc(16384);
        size_t n = 0, off[16], len[16], cnt = 0;
        doc[n++] = '[';
        for (size_t i = 0; i < sizeof(res_cases) / sizeof(res_cases[0]); i++) {
            if (!res_cases[i].valid || (!res_cases[i].plain && !with_alert))
                continue;
            size_t rn;
            char *r = resource(res_cases[i].file, &rn);
            while (rn && (r[rn - 1] == '\n' || r[rn - 1] == ' '))
                rn--;
            if (cnt)
                doc[n++] = ',';
            off[cnt] = n;
            len[cnt++] = rn;
            memcpy(doc + n, r, rn);
            n += rn;
            free(r);
        }
        doc[n++] = ']';
        if (with_alert)
            T_EQ_INT(same_as_ref(doc, n, 0, 0, "reset with alert"), JSCAN_ARRAY);
        else
            fast_takes(doc, n, 0, "reset");
        struct jscan_span *sp = NULL;
        size_t cap = 0, got = 0;
        T_EQ_INT(jscan_array(doc, n, 0, 0, &sp, &cap, &got, NULL, 0), 0);
        T_EQ_INT(got, cnt);
        for (size_t i = 0; i < cnt; i++)
            T_ASSERTF(sp[i].off == off[i] && sp[i].len == len[i], "item %zu", i);
        free(sp);
        free(doc);
    }
}

/* Tokens put so that they start at offsets 60..67: across the first
 * 64-byte block boundary, in three settings (an object member after a
 * padding string, an array after padding whitespace, alone). */
static const struct {
    const char *tok;
    int ok, plain;
} tok_cases[] = {
    {"\"abc\"", 1, 1},
    {"\"\"", 1, 1},
    {"\"0123456789abcdef0123456789\"", 1, 1},
    {"\"a\\nb\"", 1, 0},
    {"\"\\\"\"", 1, 0},
    {"\"\\u00e9\\ud83d\\ude00\"", 1, 0},
    {"\"\xc3\xa9t\xc3\xa9\"", 1, 0},
    {"\"a\x01"
     "b\"",
     0, 0},
    {"\"a\tb\"", 0, 0},
    {"\"a\xff\"", 0, 0},
    {"\"a\\qb\"", 0, 0},
    {"\"abc", 0, 0},
    {"-12.5e+3", 1, 1},
    {"0", 1, 1},
    {"1e5", 1, 1},
    {"01", 0, 0},
    {"1.", 0, 0},
    {"-", 0, 0},
    {"true", 1, 1},
    {"false", 1, 1},
    {"null", 1, 1},
    {"nul", 0, 0},
    {"tru", 0, 0},
    {"[\"x\",{\"y\":[]},\"z\"]", 1, 1},
    {"{\"q\":\"\\\\\"}", 1, 0},
    {"\x80", 0, 0},
};

static void test_fast_block_boundaries(void)
{
    char doc[256], what[96];
    for (size_t t = 0; t < sizeof(tok_cases) / sizeof(tok_cases[0]); t++) {
        const char *tok = tok_cases[t].tok;
        size_t tl = strlen(tok);
        for (size_t off = 60; off <= 67; off++) {
            for (int shape = 0; shape < 3; shape++) {
                size_t n = 0;
                if (shape == 0) { /* {"p":"xxx...","k":TOK} */
                    n = (size_t)snprintf(doc, sizeof(doc),
                                         "{\"p\":\"%.*s\",\"k\":", (int)(off - 12),
                                         "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                                         "xxxxxxxxxxxxxxxxxxxx");
                } else if (shape == 1) { /* [ \t\n...TOK] */
                    doc[n++] = '[';
                    for (; n < off; n++)
                        doc[n] = " \t\n\r"[n % 4];
                } else {
                    for (; n < off; n++)
                        doc[n] = n % 2 ? ' ' : '\n';
                }
                T_ASSERTF(n == off, "setup: %zu != %zu", n, off);
                memcpy(doc + n, tok, tl);
                n += tl;
                if (shape == 0)
                    doc[n++] = '}';
                else if (shape == 1)
                    doc[n++] = ']';
                snprintf(what, sizeof(what), "token %zu at %zu, shape %d", t, off, shape);
                int k = tok_cases[t].plain ? fast_takes(doc, n, 0, what)
                                           : same_as_ref(doc, n, 0, 0, what);
                T_ASSERTF((k > 0) == tok_cases[t].ok, "%s: kind %d", what, k);
                if (!tok_cases[t].ok || shape == 2)
                    continue;
                T_EQ_INT(k, shape == 0 ? JSCAN_OBJECT : JSCAN_ARRAY);
                if (shape == 0 && tok[0] == '"') { /* "k"'s raw span */
                    static const char *const kk[] = {"k"};
                    struct jscan_str o;
                    T_EQ_INT(jscan_object(doc, n, 0, kk, 1, &o, NULL, 0), 0);
                    T_ASSERTF(o.found && o.raw.off == off + 1 && o.raw.len == tl - 2, "%s", what);
                }
                if (shape == 1) { /* the one element's span */
                    struct jscan_span *sp = NULL;
                    size_t cap = 0, cnt = 0;
                    T_EQ_INT(jscan_array(doc, n, 0, 0, &sp, &cap, &cnt, NULL, 0), 0);
                    int good = cnt == 1 && sp[0].off == off && sp[0].len == tl;
                    free(sp);
                    T_ASSERTF(good, "%s: element span", what);
                }
            }
        }
    }
}

/* Every length of the last, short block (0..63) after 0, 1 and 2 full
 * blocks: the copy padded with spaces must neither hide nor invent a byte. */
static void test_fast_tails(void)
{
    char doc[256], what[64];
    for (size_t n = 2; n < 3 * 64; n++) {
        /* "aaa...a": the closing quote is the last byte. */
        doc[0] = '"';
        memset(doc + 1, 'a', n - 2);
        doc[n - 1] = '"';
        snprintf(what, sizeof(what), "string of %zu", n);
        T_EQ_INT(fast_takes(doc, n, 0, what), JSCAN_STRING);
        /* Without it: unterminated, whatever the padding holds. */
        snprintf(what, sizeof(what), "unterminated string of %zu", n - 1);
        T_EQ_INT(same_as_ref(doc, n - 1, 0, 0, what), -1);
        /* A quote as the last byte of a value-less tail. */
        doc[n - 1] = 'a';
        T_EQ_INT(same_as_ref(doc, n, 0, 0, what), -1);
        if (n >= 9) { /* {"id":"bbb"} */
            memcpy(doc, "{\"id\":\"", 7);
            memset(doc + 7, 'b', n - 9);
            memcpy(doc + n - 2, "\"}", 2);
            snprintf(what, sizeof(what), "object of %zu", n);
            T_EQ_INT(fast_takes(doc, n, 0, what), JSCAN_OBJECT);
            static const char *const kk[] = {"id"};
            struct jscan_str o;
            T_EQ_INT(jscan_object(doc, n, 0, kk, 1, &o, NULL, 0), 0);
            T_ASSERTF(o.found && o.raw.off == 7 && o.raw.len == n - 9, "%s", what);
            /* A control byte as the last byte of the string. */
            doc[n - 3] = '\x1f';
            T_EQ_INT(same_as_ref(doc, n, 0, 0, what), -1);
        }
        /* [111...1] and trailing whitespace up to the end. */
        doc[0] = '[';
        memset(doc + 1, '1', n - 2);
        doc[n - 1] = ']';
        snprintf(what, sizeof(what), "number array of %zu", n);
        T_EQ_INT(fast_takes(doc, n, 0, what), JSCAN_ARRAY);
        memcpy(doc, "[1]", 3);
        memset(doc + 3, '\n', n - 2);
        T_EQ_INT(fast_takes(doc, n + 1, 0, what), JSCAN_ARRAY);
    }
}

/* More strings than one stage 1 window lists (FS_QCAP, 1024 closing
 * quotes): the windows must follow one another with the in-string state
 * carried, also when a window ends inside a long string. */
static void test_fast_many_quotes(void)
{
    size_t cap = 1 << 20, n = 0;
    char *doc = malloc(cap);
    size_t offs[1500], lens[1500];
    static const char pad[] = "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstu"
                              "vwxyz0123456789";
    doc[n++] = '[';
    for (int i = 0; i < 1500; i++) {
        if (i)
            n += (size_t)snprintf(doc + n, cap - n, i % 7 ? "," : ",\n\t");
        offs[i] = n;
        /* Names and ids of every length from 0 to 99: quotes fall at
         * every offset of a block, window ends inside strings. */
        n += (size_t)snprintf(doc + n, cap - n, "{\"type\":\"v\",\"id\":\"%d%.*s\"%s}", i,
                              (i * 37) % 100, pad, i % 5 ? "" : ",\"n\":[1,\"x\",null]");
        lens[i] = n - offs[i];
    }
    doc[n++] = ']';
    T_EQ_INT(fast_takes(doc, n, 0, "1500 objects"), JSCAN_ARRAY);
    struct jscan_span *sp = NULL;
    size_t scap = 0, cnt = 0;
    T_EQ_INT(jscan_array(doc, n, 0, 0, &sp, &scap, &cnt, NULL, 0), 0);
    T_EQ_INT(cnt, 1500);
    for (size_t i = 0; i < cnt; i++)
        T_ASSERTF(sp[i].off == offs[i] && sp[i].len == lens[i], "item %zu", i);
    char dec[128];
    char want[128];
    snprintf(want, sizeof(want), "1499%.*s", (1499 * 37) % 100, pad);
    T_EQ_STR(member(doc + sp[1499].off, sp[1499].len, "id", dec, sizeof(dec)), want);
    free(sp);

    /* Errors near the end, after several windows: each refused, with the
     * reference's message. */
    char *bad = malloc(n + 8);
    struct {
        size_t at; /* from the end */
        const char *put;
        int del;
        const char *why;
    } errs[] = {
        {1, "", 1, "unexpected end of input"},    /* no closing ']' */
        {2, ",", 0, "expected a member name"},    /* {...,] */
        {4, "\x01", 0, "control character 0x01"}, /* in the last id */
        {3, "", 1, "unterminated string"},        /* the last '"' gone */
        {4, "\\q", 0, "bad escape"},              /* escape at the end */
        {4, "\xc0", 0, "invalid UTF-8"},          /* overlong lead byte */
        {1, "]]", 0, "trailing data after the value"},
    };
    for (size_t e = 0; e < sizeof(errs) / sizeof(errs[0]); e++) {
        size_t at = n - errs[e].at, pl = strlen(errs[e].put), bn = 0;
        memcpy(bad, doc, at);
        bn = at;
        memcpy(bad + bn, errs[e].put, pl);
        bn += pl;
        size_t rest = errs[e].del ? at + 1 : at + (pl ? pl : 0);
        if (!errs[e].del && errs[e].at == 1 && pl == 2)
            rest = at; /* inserted, nothing replaced */
        memcpy(bad + bn, doc + rest, n - rest);
        bn += n - rest;
        char what[64], err[256];
        snprintf(what, sizeof(what), "late error %zu", e);
        T_EQ_INT(same_as_ref(bad, bn, 0, 0, what), -1);
        T_EQ_INT(jscan_validate(bad, bn, 0, err, sizeof(err)), -1);
        T_ASSERTF(strstr(err, errs[e].why), "%s: \"%s\", expected \"%s\"", what, err, errs[e].why);
    }
    /* A valid escape at the very end: the fast scanner bails, the answer
     * is still the right one. */
    memcpy(bad, doc, n - 4);
    memcpy(bad + n - 4, "\\n\"}]", 5);
    T_EQ_INT(same_as_ref(bad, n + 1, 0, 0, "late escape"), JSCAN_ARRAY);
    T_EQ_INT(jscan_validate_fast(bad, n + 1, 0), JSCAN_FAST_BAIL);
    free(bad);

    /* One object of 1300 members, "type" twice (the last wins) and "id"
     * at the very end. */
    n = 0;
    doc[n++] = '{';
    n += (size_t)snprintf(doc + n, cap - n, "\"type\":\"first\"");
    for (int i = 0; i < 1300; i++)
        n += (size_t)snprintf(doc + n, cap - n, ",\"k%d\":\"%.*s\"", i, i % 90, pad);
    n += (size_t)snprintf(doc + n, cap - n, ",\"type\":\"last\",\"id\":\"end\"}");
    T_EQ_INT(fast_takes(doc, n, 0, "1300 members"), JSCAN_OBJECT);
    T_EQ_STR(member(doc, n, "type", dec, sizeof(dec)), "last");
    T_EQ_STR(member(doc, n, "id", dec, sizeof(dec)), "end");
    free(doc);
}

/* Every message of the reference scanner, through the public functions:
 * the same verdict and the same text. */
static const struct {
    char fn; /* v: validate, a: array, o: object */
    const char *in;
    size_t max_items;
    const char *why;
} err_cases[] = {
    {'v', "\"abc", 0, "offset 4: unterminated string"},
    {'v', "\"a\nb\"", 0, "offset 2: control character 0x0a in string"},
    {'v', "\"ab\\", 0, "offset 3: unterminated escape"},
    {'v', "\"\\u12G4\"", 0, "offset 1: bad \\u escape"},
    {'v', "\"\\uDC00\"", 0, "lone low surrogate \\uDC00"},
    {'v', "\"\\uD800x\"", 0, "lone high surrogate \\uD800"},
    {'v', "\"\\x\"", 0, "bad escape \\x"},
    {'v', "\"\xe0\x80\x80\"", 0, "invalid UTF-8"},
    {'v', "-x", 0, "offset 1: bad number"},
    {'v', "1.e3", 0, "offset 2: bad fraction"},
    {'v', "1e+", 0, "offset 3: bad exponent"},
    {'v', "[1,", 0, "offset 3: unexpected end of input"},
    {'v', "", 0, "offset 0: unexpected end of input"},
    {'v',
     "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
     "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
     0, "offset 128: nesting deeper than 128"},
    {'v', "nulL", 0, "offset 0: invalid literal"},
    {'v', "[1,}", 0, "offset 3: unexpected character '}'"},
    {'v', "{1:2}", 0, "offset 1: expected a member name"},
    {'v', "{\"a\" 1}", 0, "offset 5: expected ':'"},
    {'v', "{\"a\":1]", 0, "offset 6: expected ',' or '}'"},
    {'v', "[1}", 0, "offset 2: expected ',' or ']'"},
    {'v', "{} {}", 0, "offset 3: trailing data after the value"},
    {'a', "{\"a\":1}", 0, "offset 0: expected an array"},
    {'a', "[1,2,3]", 2, "more than 2 items"},
    {'a', "[1 2]", 0, "offset 3: expected ',' or ']'"},
    {'a', "[\"a\",\"b\"", 0, "unexpected end of input"},
    {'a', "[1] 2", 0, "trailing data after the value"},
    {'o', "[1]", 0, "offset 0: expected an object"},
    {'o', "{\"a\":1 \"b\":2}", 0, "offset 7: expected ',' or '}'"},
    {'o', "{\"a\":1,}", 0, "offset 7: expected a member name"},
    {'o', "{\"a\":\"x\"} x", 0, "trailing data after the value"},
    {'o', "{\"a\"", 0, "expected ':'"},
};

static void test_fast_errors(void)
{
    for (size_t i = 0; i < sizeof(err_cases) / sizeof(err_cases[0]); i++) {
        const char *in = err_cases[i].in;
        size_t n = strlen(in);
        char what[64], err[256] = "";
        snprintf(what, sizeof(what), "error case %zu", i);
        same_as_ref(in, n, 0, err_cases[i].max_items, what);
        int rc;
        struct jscan_span *sp = NULL;
        size_t cap = 0, cnt = 0;
        struct jscan_str o[FK_N];
        if (err_cases[i].fn == 'v')
            rc = jscan_validate(in, n, 0, err, sizeof(err));
        else if (err_cases[i].fn == 'a')
            rc = jscan_array(in, n, 0, err_cases[i].max_items, &sp, &cap, &cnt, err, sizeof(err));
        else
            rc = jscan_object(in, n, 0, fk, FK_N, o, err, sizeof(err));
        free(sp);
        T_ASSERTF(rc == -1 && strstr(err, err_cases[i].why),
                  "%s \"%s\": %d \"%s\", expected \"%s\"", what, in, rc, err, err_cases[i].why);
    }
}

/* Nested containers: depth d of '[' around 0 (or {"a": around "x"). */
static size_t nest(char *b, int d, int obj)
{
    size_t n = 0;
    for (int i = 0; i < d; i++) {
        if (obj) {
            memcpy(b + n, "{\"a\":", 5);
            n += 5;
        } else {
            b[n++] = '[';
        }
    }
    memcpy(b + n, obj ? "\"x\"" : "0", obj ? 3 : 1);
    n += obj ? 3 : 1;
    for (int i = 0; i < d; i++)
        b[n++] = obj ? '}' : ']';
    return n;
}

static void test_fast_depth(void)
{
    static const int mds[] = {1, 2, 3, 64, 128, 1024, 0, 5000};
    char *b = malloc(16 * 1024);
    char what[64], err[256];
    for (size_t m = 0; m < sizeof(mds) / sizeof(mds[0]); m++) {
        int md = mds[m], eff = md == 0 ? JSCAN_DEPTH_DEFAULT : md > 1024 ? 1024 : md;
        for (int obj = 0; obj < 2; obj++) {
            size_t n = nest(b, eff, obj);
            snprintf(what, sizeof(what), "depth %d (max %d, %s)", eff, md, obj ? "{" : "[");
            T_EQ_INT(fast_takes(b, n, md, what), obj ? JSCAN_OBJECT : JSCAN_ARRAY);
            n = nest(b, eff + 1, obj);
            snprintf(what, sizeof(what), "depth %d (max %d, %s)", eff + 1, md, obj ? "{" : "[");
            T_EQ_INT(same_as_ref(b, n, md, 0, what), -1);
            T_EQ_INT(jscan_validate(b, n, md, err, sizeof(err)), -1);
            char want[64];
            snprintf(want, sizeof(want), "nesting deeper than %d", eff);
            T_ASSERTF(strstr(err, want), "%s: \"%s\"", what, err);
        }
        /* Split and lookup: their elements and members are at depth 1. */
        size_t n = 0;
        b[n++] = '[';
        n += nest(b + n, eff - 1, 0);
        b[n++] = ']';
        struct jscan_span *sp = NULL;
        size_t cap = 0, cnt = 0;
        T_EQ_INT(jscan_array(b, n, md, 0, &sp, &cap, &cnt, NULL, 0), 0);
        T_EQ_INT(jscan_array_fast(b, n, md, 0, &sp, &cap, &cnt), 0);
        T_EQ_INT(cnt, 1);
        n = 0;
        b[n++] = '[';
        n += nest(b + n, eff, 0);
        b[n++] = ']';
        T_EQ_INT(jscan_array(b, n, md, 0, &sp, &cap, &cnt, NULL, 0), -1);
        free(sp);
        struct jscan_str o[FK_N];
        n = (size_t)snprintf(b, 16, "{\"k\":");
        n += nest(b + n, eff - 1, 1);
        b[n++] = '}';
        T_EQ_INT(jscan_object(b, n, md, fk, FK_N, o, NULL, 0), 0);
        T_EQ_INT(jscan_object_fast(b, n, md, fk, FK_N, o), 0);
        T_EQ_INT(o[3].kind, eff == 1 ? JSCAN_STRING : JSCAN_OBJECT);
        n = (size_t)snprintf(b, 16, "{\"k\":");
        n += nest(b + n, eff, 1);
        b[n++] = '}';
        T_EQ_INT(jscan_object(b, n, md, fk, FK_N, o, NULL, 0), -1);
    }
    free(b);
}

/* vehicle.json with whitespace (all four kinds, in turn) around every
 * structural byte: the same members, the fast scanner still takes it. */
static void test_fast_whitespace(void)
{
    size_t n;
    char *v = resource("vehicle.json", &n);
    while (n && v[n - 1] == '\n')
        n--;
    char *w = malloc(n * 5 + 8);
    size_t m = 0, ws = 0;
    int in = 0;
    for (size_t i = 0; i < n; i++) {
        char c = v[i];
        int structural = !in && strchr("{}[],:", c);
        if (structural)
            w[m++] = " \t\n\r"[ws++ % 4];
        w[m++] = c;
        if (structural) {
            w[m++] = "\t\n\r "[ws % 4];
            w[m++] = " \t\n\r"[ws++ % 4];
        }
        if (c == '"')
            in = !in;
    }
    T_EQ_INT(fast_takes(w, m, 0, "spaced vehicle"), JSCAN_OBJECT);
    char d1[64], d2[64];
    T_EQ_STR(member(w, m, "type", d1, sizeof(d1)), "vehicle");
    T_EQ_STR(member(w, m, "id", d2, sizeof(d2)), "R-5482E4F8");
    /* In an array: element spans without the whitespace. */
    size_t an = 0;
    char *a = malloc(2 * m + 2 * n + 32);
    memcpy(a + an, "\n[\t", 3), an += 3;
    size_t o0 = an;
    memcpy(a + an, v, n), an += n;
    memcpy(a + an, "\r\n,\t ", 5), an += 5;
    size_t o1 = an;
    memcpy(a + an, w, m), an += m;
    memcpy(a + an, " \n]\n", 4), an += 4;
    T_EQ_INT(fast_takes(a, an, 0, "spaced reset"), JSCAN_ARRAY);
    struct jscan_span *sp = NULL;
    size_t cap = 0, cnt = 0;
    T_EQ_INT(jscan_array(a, an, 0, 0, &sp, &cap, &cnt, NULL, 0), 0);
    T_EQ_INT(cnt, 2);
    T_ASSERT(sp[0].off == o0 && sp[0].len == n);
    /* The spaced copy starts with a space before '{' and ends after '}'
     * with two. */
    T_ASSERT(sp[1].off == o1 + 1 && sp[1].len == m - 3);
    free(sp);
    free(a);
    free(w);
    free(v);
}

static void test_fast_array_spans(void)
{
    static const char in[] = "[ 1 ,\"two\",{\"3\":[3]} ,\t[4,[5]],null,true,false,-6.5e-1\n]";
    static const char *const items[] = {"1",    "\"two\"", "{\"3\":[3]}", "[4,[5]]",
                                        "null", "true",    "false",       "-6.5e-1"};
    size_t n = sizeof(in) - 1;
    T_EQ_INT(fast_takes(in, n, 0, "spans"), JSCAN_ARRAY);
    struct jscan_span *sp = NULL;
    size_t cap = 0, cnt = 0;
    T_EQ_INT(jscan_array(in, n, 0, 8, &sp, &cap, &cnt, NULL, 0), 0);
    T_EQ_INT(cnt, 8);
    for (size_t i = 0; i < cnt; i++)
        T_EQ_MEM(in + sp[i].off, sp[i].len, items[i], strlen(items[i]));
    char err[128];
    T_EQ_INT(jscan_array(in, n, 0, 7, &sp, &cap, &cnt, err, sizeof(err)), -1);
    T_ASSERT(strstr(err, "more than 7 items"));
    same_as_ref(in, n, 0, 7, "spans, 7 items");
    T_EQ_INT(jscan_array(" [ \n ] ", 7, 0, 0, &sp, &cap, &cnt, NULL, 0), 0);
    T_EQ_INT(cnt, 0);
    T_EQ_INT(jscan_array_fast(" [ \n ] ", 7, 0, 0, &sp, &cap, &cnt), 0);
    free(sp);
}

/* Member lookup: duplicates (the last wins, also over a non-string),
 * escaped names (the reference decodes them), more than 8 keys. */
static void test_fast_object_members(void)
{
    static const char dup[] = "{\"id\":\"1\",\"type\":\"a\",\"id\":\"2\",\"type\":{\"x\":1}}";
    size_t n = sizeof(dup) - 1;
    T_EQ_INT(fast_takes(dup, n, 0, "duplicates"), JSCAN_OBJECT);
    struct jscan_str o[FK_N];
    T_EQ_INT(jscan_object(dup, n, 0, fk, FK_N, o, NULL, 0), 0);
    T_ASSERT(o[1].found && o[1].raw.off == 27 && o[1].raw.len == 1);
    T_ASSERT(!o[0].found && o[0].kind == JSCAN_OBJECT);

    static const char esc[] = "{\"id\":\"plain\",\"\\u0069d\":\"escaped\",\"typ\\u0065\":\"t\"}";
    n = sizeof(esc) - 1;
    T_EQ_INT(same_as_ref(esc, n, 0, 0, "escaped names"), JSCAN_OBJECT);
    T_EQ_INT(jscan_object_fast(esc, n, 0, fk, FK_N, o), JSCAN_FAST_BAIL);
    char d[64];
    T_EQ_STR(member(esc, n, "id", d, sizeof(d)), "escaped");
    T_EQ_STR(member(esc, n, "type", d, sizeof(d)), "t");
    static const char notid[] = "{\"i\\\\d\":\"x\"}";
    T_EQ_INT(same_as_ref(notid, sizeof(notid) - 1, 0, 0, "i\\d"), JSCAN_OBJECT);
    T_ASSERT(member(notid, sizeof(notid) - 1, "id", d, sizeof(d)) == NULL);

    /* Ten keys: past the first 8 the comparison takes another road. */
    static const char *const many[] = {"k0", "k1", "k2", "k3", "k4", "", "k6", "k7", "k8", "k9"};
    static const char ten[] =
        "{\"k9\":\"nine\",\"\":\"empty\",\"k1\":1,\"k8\":\"8\",\"k8\":\"eight\"}";
    n = sizeof(ten) - 1;
    struct jscan_str a[10], b[10];
    T_EQ_INT(jscan_object_fast(ten, n, 0, many, 10, a), 0);
    T_EQ_INT(jscan_object_scalar(ten, n, 0, many, 10, b, NULL, 0), 0);
    for (int k = 0; k < 10; k++)
        T_ASSERTF(str_eq(&a[k], &b[k]), "key %s", many[k]);
    T_EQ_MEM(ten + a[9].raw.off, a[9].raw.len, "nine", 4);
    T_EQ_MEM(ten + a[8].raw.off, a[8].raw.len, "eight", 5);
    T_EQ_MEM(ten + a[5].raw.off, a[5].raw.len, "empty", 5);
    T_ASSERT(!a[1].found && a[1].kind == JSCAN_NUMBER);
    T_ASSERT(!a[0].found && a[0].kind == 0);
}

/* Every single-byte change and deletion of two real resources, compared. */
static void test_fast_mutations(void)
{
    static const char *const files[] = {"vehicle.json", "prediction.json"};
    static const unsigned char bytes[] = {'"', '\\', 0x01, '\t', ' ', ',', ':', '}', ']',
                                          '{', '[',  0x80, 0xc3, 'a', '1', '-', 'e', 0};
    for (size_t f = 0; f < 2; f++) {
        size_t n;
        char *v = resource(files[f], &n);
        char *m = malloc(n);
        char what[64];
        for (size_t i = 0; i < n; i++) {
            for (size_t j = 0; j < sizeof(bytes); j++) {
                memcpy(m, v, n);
                m[i] = (char)bytes[j];
                snprintf(what, sizeof(what), "%s[%zu] = 0x%02x", files[f], i, bytes[j]);
                same_as_ref(m, n, 0, 0, what);
            }
            memcpy(m, v, i);
            memcpy(m + i, v + i + 1, n - i - 1);
            snprintf(what, sizeof(what), "%s without [%zu]", files[f], i);
            same_as_ref(m, n - 1, 0, 0, what);
        }
        free(m);
        free(v);
    }
}

int main(void)
{
    T_RUN(test_fixtures);
    T_RUN(test_depth_cap);
    T_RUN(test_split);
    T_RUN(test_split_many);
    T_RUN(test_object);
    T_RUN(test_unescape);
    T_RUN(test_classify);
    T_RUN(test_fast_resources);
    T_RUN(test_fast_reset_array);
    T_RUN(test_fast_block_boundaries);
    T_RUN(test_fast_tails);
    T_RUN(test_fast_many_quotes);
    T_RUN(test_fast_errors);
    T_RUN(test_fast_depth);
    T_RUN(test_fast_whitespace);
    T_RUN(test_fast_array_spans);
    T_RUN(test_fast_object_members);
    T_RUN(test_fast_mutations);
    return T_DONE();
}
