/* Unit tests of the recording format (recfile): round trip and rejects. */
#include <stdio.h>
#include <stdlib.h>

#include "serve/recfile.h"
#include "t.h"

static void test_roundtrip(void)
{
    char *mem = NULL;
    size_t n = 0;
    FILE *fp = open_memstream(&mem, &n);
    T_ASSERT(fp);
    T_ASSERT(recfile_write_header(fp, "url x\ny") == 0);
    T_ASSERT(recfile_write_connect(fp, 5, 200) == 0);
    T_ASSERT(recfile_write_data(fp, 10, "event: a\ndata: {}\n\n", 19) == 0);
    T_ASSERT(recfile_write_data(fp, 11, "", 0) == 0);
    T_ASSERT(recfile_write_data(fp, 12, "\n\nD 1 1\n", 8) == 0);
    T_ASSERT(recfile_write_close(fp, 20, "gone\naway") == 0);
    fclose(fp);
    long off0 = recfile_check(mem, n);
    T_ASSERT(off0 > 0);
    size_t off = (size_t)off0;
    struct recfile_rec r;
    char err[128];
    T_EQ_INT(recfile_next(mem, n, &off, &r, err, sizeof(err)), 1);
    T_EQ_INT(r.kind, 'C');
    T_EQ_INT(r.ns, 5);
    T_EQ_INT(r.status, 200);
    T_EQ_INT(recfile_next(mem, n, &off, &r, err, sizeof(err)), 1);
    T_EQ_MEM(r.data, r.len, "event: a\ndata: {}\n\n", (size_t)19);
    T_EQ_INT(recfile_next(mem, n, &off, &r, err, sizeof(err)), 1);
    T_EQ_INT(r.len, 0);
    T_EQ_INT(recfile_next(mem, n, &off, &r, err, sizeof(err)), 1);
    T_EQ_MEM(r.data, r.len, "\n\nD 1 1\n", (size_t)8);
    T_EQ_INT(recfile_next(mem, n, &off, &r, err, sizeof(err)), 1);
    T_EQ_INT(r.kind, 'X');
    T_EQ_MEM(r.data, r.len, "gone away", (size_t)9);
    T_EQ_INT(recfile_next(mem, n, &off, &r, err, sizeof(err)), 0);
    free(mem);
}

static void test_rejects(void)
{
    static const char *const bad[] = {
        "D 1 5\nabc\n",               /* truncated */
        "D 1 3\nabcX",                /* no terminator */
        "D -1 3\nabc\n",              /* negative time */
        "Q 1 3\n",                    /* unknown kind */
        "D 1 99999999999999999999\n", /* absurd length */
        "X 1 no newline",
        "# unterminated comment",
        "C 1\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        size_t off = 0;
        struct recfile_rec r;
        char err[128];
        T_ASSERTF(recfile_next(bad[i], strlen(bad[i]), &off, &r, err, sizeof(err)) < 0,
                  "accepted case %zu", i);
    }
    T_ASSERT(recfile_check("mbta-stream-recording 2\n", 24) < 0);
}

/* The shipped recording parses and starts with a connect and a reset. */
static void test_shipped_recording(void)
{
    FILE *fp = fopen("tests/data/recording.sse-rec", "rb");
    T_ASSERT(fp);
    static char data[1 << 20];
    size_t n = fread(data, 1, sizeof(data), fp);
    fclose(fp);
    long off0 = recfile_check(data, n);
    T_ASSERT(off0 > 0);
    size_t off = (size_t)off0, nd = 0;
    struct recfile_rec r;
    char err[128];
    int k, first = 1;
    int64_t last = -1;
    while ((k = recfile_next(data, n, &off, &r, err, sizeof(err))) == 1) {
        if (first)
            T_EQ_INT(r.kind, 'C');
        if (r.kind == 'D' && nd++ == 0)
            T_ASSERT(r.len > 13 && !memcmp(r.data, "event: reset\n", 13));
        T_ASSERT(r.ns >= last);
        last = r.ns;
        first = 0;
    }
    T_ASSERTF(k == 0, "%s", err);
    T_ASSERT(nd >= 3);
}

int main(void)
{
    T_RUN(test_roundtrip);
    T_RUN(test_rejects);
    T_RUN(test_shipped_recording);
    return T_DONE();
}
