/* Unit tests of src/util: opt (precedence, config file, errors), buf (caps),
 * clock (backoff bounds). */
#include <stdlib.h>
#include <string.h>

#include "t.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/opt.h"

static char *brokers, *key;
static long batch;
static double ratio;
static int verbose;
static struct strlist streams, xprops, pos;

static const struct opt opts[] = {
    {"brokers", 'b', OPT_STR, "T_BROKERS", "localhost:9092", 0, 0, "HOST:PORT", "brokers", &brokers,
     0},
    {"batch", 0, OPT_INT, "T_BATCH", "10", 1, 1000, "N", "batch size", &batch, 0},
    {"ratio", 0, OPT_DBL, NULL, "0.5", 0, 1, "X", "ratio", &ratio, 0},
    {"verbose", 'v', OPT_BOOL, NULL, NULL, 0, 0, NULL, "verbose", &verbose, 0},
    {"stream", 's', OPT_LIST, NULL, NULL, 0, 0, "SPEC", "streams", &streams, 0},
    {"X", 'X', OPT_LIST, NULL, NULL, 0, 0, "K=V", "librdkafka", &xprops, OPT_F_MERGE},
    {"api-key", 0, OPT_STR, "T_KEY", NULL, 0, 0, "KEY", "key", &key, OPT_F_SECRET},
    {NULL, 0, OPT_STR, NULL, NULL, 0, 0, NULL, NULL, NULL, 0},
};

static int parse(int argc, char **argv, char *err, size_t errsz)
{
    opt_free(opts);
    strlist_fini(&pos);
    return opt_parse(opts, "produce", NULL, argc, argv, &pos, err, errsz);
}

static void test_opt_defaults(void)
{
    char err[256] = "";
    char *argv[] = {"produce"};
    unsetenv("T_BROKERS");
    unsetenv("T_BATCH");
    T_EQ_INT(parse(1, argv, err, sizeof(err)), 0);
    T_EQ_STR(brokers, "localhost:9092");
    T_EQ_INT(batch, 10);
    T_ASSERT(ratio == 0.5);
    T_EQ_INT(verbose, 0);
    T_EQ_INT(streams.n, 0);
}

static void test_opt_flags_forms(void)
{
    char err[256] = "";
    char *argv[] = {"produce", "-b",       "b1:1", "--batch=20", "-v", "pos1",        "-s",
                    "x=/a",    "--stream", "y=/b", "-Xacks=all", "--", "-notanoption"};
    T_EQ_INT(parse(13, argv, err, sizeof(err)), 0);
    T_EQ_STR(brokers, "b1:1");
    T_EQ_INT(batch, 20);
    T_EQ_INT(verbose, 1);
    T_EQ_INT(streams.n, 2);
    T_EQ_STR(streams.v[1], "y=/b");
    T_EQ_INT(xprops.n, 1);
    T_EQ_STR(xprops.v[0], "acks=all");
    T_EQ_INT(pos.n, 2);
    T_EQ_STR(pos.v[0], "pos1");
    T_EQ_STR(pos.v[1], "-notanoption");
}

/* flags > environment > file > defaults; lists replace, -X merges. */
static void test_opt_precedence(void)
{
    char err[256] = "";
    char *argv1[] = {"produce", "-c", "tests/data/conf/sample.conf"};
    setenv("T_BATCH", "30", 1);
    T_EQ_INT(parse(3, argv1, err, sizeof(err)), 0);
    T_EQ_STR(brokers, "file-broker:9092");
    T_EQ_INT(batch, 30); /* env beats file */
    T_EQ_INT(streams.n, 2);
    T_EQ_INT(xprops.n, 1);
    T_EQ_STR(xprops.v[0], "linger.ms=7");

    char *argv2[] = {
        "produce", "--config=tests/data/conf/sample.conf", "--batch", "40", "-s", "c=/x", "-X",
        "acks=1"};
    T_EQ_INT(parse(8, argv2, err, sizeof(err)), 0);
    T_EQ_INT(batch, 40);
    T_EQ_INT(streams.n, 1); /* flags replace the file's list */
    T_EQ_STR(streams.v[0], "c=/x");
    T_EQ_INT(xprops.n, 2); /* ... but -X adds to kafka.* */
    T_EQ_STR(xprops.v[1], "acks=1");
    unsetenv("T_BATCH");
}

static void test_opt_errors(void)
{
    char err[256] = "";
    char *a1[] = {"produce", "--batch", "abc"};
    T_EQ_INT(parse(3, a1, err, sizeof(err)), -1);
    T_EQ_STR(err, "batch: \"abc\" is not an integer");
    char *a2[] = {"produce", "--batch", "5000"};
    T_EQ_INT(parse(3, a2, err, sizeof(err)), -1);
    T_EQ_STR(err, "batch: 5000 is out of range [1, 1000]");
    char *a3[] = {"produce", "--nope"};
    T_EQ_INT(parse(2, a3, err, sizeof(err)), -1);
    T_EQ_STR(err, "unknown option --nope (see --help)");
    char *a4[] = {"produce", "--brokers"};
    T_EQ_INT(parse(2, a4, err, sizeof(err)), -1);
    T_EQ_STR(err, "--brokers needs a value (HOST:PORT)");
    char *a5[] = {"produce", "-c", "tests/data/conf/bad-key.conf"};
    T_EQ_INT(parse(3, a5, err, sizeof(err)), -1);
    T_EQ_STR(err, "tests/data/conf/bad-key.conf:2: bogus: unknown option for produce");
    char *a6[] = {"produce", "-c", "tests/data/conf/bad-range.conf"};
    T_EQ_INT(parse(3, a6, err, sizeof(err)), -1);
    T_EQ_STR(err, "tests/data/conf/bad-range.conf:1: batch: 0 is out of range [1, 1000]");
    char *a7[] = {"produce", "-c", "tests/data/conf/missing.conf"};
    T_EQ_INT(parse(3, a7, err, sizeof(err)), -1);
    T_EQ_STR(err, "tests/data/conf/missing.conf: No such file or directory");
}

static void test_opt_secret_from_env(void)
{
    char err[256] = "";
    char *argv[] = {"produce"};
    setenv("T_KEY", "s3cret", 1);
    T_EQ_INT(parse(1, argv, err, sizeof(err)), 0);
    T_EQ_STR(key, "s3cret");
    unsetenv("T_KEY");
}

static void test_buf_cap(void)
{
    struct buf b;
    buf_init(&b, 8);
    T_EQ_INT(buf_append(&b, "abcd", 4), BUF_OK);
    T_EQ_INT(buf_printf(&b, "%d", 1234), BUF_OK);
    T_EQ_STR(b.data, "abcd1234");
    T_EQ_INT(buf_putc(&b, 'x'), BUF_TOOBIG);
    T_EQ_INT(b.len, 8); /* unchanged by the failed append */
    buf_consume(&b, 3);
    T_EQ_STR(b.data, "d1234");
    buf_reset(&b);
    T_EQ_INT(b.len, 0);
    T_EQ_INT(buf_printf(&b, "%s", "123456789"), BUF_TOOBIG);
    buf_fini(&b);
}

static void test_backoff_bounds(void)
{
    uint64_t rnd = 42;
    for (int attempt = 0; attempt < 40; attempt++) {
        for (int i = 0; i < 100; i++) {
            int64_t ms = clock_backoff_ms(attempt, 100, 5000, &rnd);
            int64_t ceiling = attempt < 6 ? 100 << attempt : 5000;
            if (ceiling > 5000)
                ceiling = 5000;
            T_ASSERTF(ms >= 0 && ms < ceiling, "attempt %d: %lld not in [0, %lld)", attempt,
                      (long long)ms, (long long)ceiling);
        }
    }
}

int main(void)
{
    T_RUN(test_opt_defaults);
    T_RUN(test_opt_flags_forms);
    T_RUN(test_opt_precedence);
    T_RUN(test_opt_errors);
    T_RUN(test_opt_secret_from_env);
    T_RUN(test_buf_cap);
    T_RUN(test_backoff_bounds);
    opt_free(opts);
    strlist_fini(&pos);
    return T_DONE();
}
