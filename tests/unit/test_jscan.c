/*
 * test_jscan: the JSON scanner over fixture files in tests/data/jscan/
 * (JSONTestSuite naming: y_ must be accepted, n_ refused; the depth cap used
 * is 128, so n_deep_200 is refused for depth and y_deep_100 accepted), plus
 * tables for array splitting and member lookup: exact spans, byte for byte.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json/jscan.h"
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

int main(void)
{
    T_RUN(test_fixtures);
    T_RUN(test_depth_cap);
    T_RUN(test_split);
    T_RUN(test_split_many);
    T_RUN(test_object);
    T_RUN(test_unescape);
    return T_DONE();
}
