/*
 * test_hist: the latency histogram's bucket layout (contiguous, exact below
 * 64, within 1/32 above), quantiles against exact sorted values, merge,
 * negatives and clamping, and the formatted line.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "t.h"
#include "util/hist.h"

static struct hist h, h2;

static void test_layout_contiguous(void)
{
    /* every bucket starts right after the previous one ends */
    T_EQ_INT(hist_bucket_low(0), 0);
    for (size_t i = 1; i < HIST_BUCKETS; i++)
        T_ASSERTF(hist_bucket_low(i) == hist_bucket_high(i - 1) + 1, "gap before bucket %zu", i);
    T_EQ_INT(hist_bucket_high(HIST_BUCKETS - 1), (INT64_C(1) << HIST_MAX_BITS) - 1);
    T_EQ_INT(hist_index((UINT64_C(1) << HIST_MAX_BITS) - 1), HIST_BUCKETS - 1);
}

static void test_index_bounds(void)
{
    for (uint64_t v = 0; v < 64; v++)
        T_EQ_INT(hist_index(v), v);
    /* powers of two, their neighbours, and a pseudo-random sweep */
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < 200000; i++) {
        uint64_t v;
        if (i < 48 * 3) {
            v = (UINT64_C(1) << (i / 3)) + (uint64_t)(i % 3) - 1;
        } else {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            v = x >> (16 + x % 48);
        }
        if (v >= (UINT64_C(1) << HIST_MAX_BITS))
            continue;
        size_t k = hist_index(v);
        T_ASSERTF(k < HIST_BUCKETS, "index %zu of %llu", k, (unsigned long long)v);
        uint64_t lo = hist_bucket_low(k), hi = hist_bucket_high(k);
        T_ASSERTF(lo <= v && v <= hi, "%llu not in bucket %zu [%llu, %llu]", (unsigned long long)v,
                  k, (unsigned long long)lo, (unsigned long long)hi);
        T_ASSERTF((hi - lo) * 32 <= lo || hi == lo, "bucket %zu too wide", k);
    }
}

static void test_empty(void)
{
    char line[128];
    hist_init(&h);
    T_EQ_INT(hist_quantile(&h, 0.5), 0);
    T_EQ_INT(hist_quantile(&h, 1.0), 0);
    T_ASSERT(hist_mean(&h) == 0.0);
    T_EQ_STR(hist_format_us(&h, line, sizeof(line)), "n=0 p50=0.0ms p99=0.0ms max=0.0ms");
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Quantiles: never below the exact value, at most 1/32 above it. */
static void test_quantiles_vs_exact(void)
{
    enum { N = 20011 };
    static uint64_t v[N];
    uint64_t x = 2463534242ull;
    hist_init(&h);
    for (int i = 0; i < N; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        /* latency-like: mostly 1-20 ms in µs, a long tail to seconds */
        v[i] = (i % 100 == 0) ? 20000 + x % 3000000 : 1000 + x % 19000;
        hist_add(&h, (int64_t)v[i]);
    }
    qsort(v, N, sizeof(v[0]), cmp_u64);
    const double qs[] = {0.0, 0.01, 0.25, 0.5, 0.9, 0.99, 0.999, 1.0};
    for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
        size_t rank = (size_t)(qs[i] * N);
        if ((double)rank < qs[i] * N)
            rank++;
        uint64_t exact = v[rank ? rank - 1 : 0];
        uint64_t got = hist_quantile(&h, qs[i]);
        T_ASSERTF(got >= exact && got - exact <= exact / 32, "q=%g: %llu, exact %llu", qs[i],
                  (unsigned long long)got, (unsigned long long)exact);
    }
    T_EQ_INT(hist_quantile(&h, 1.0), v[N - 1]);
    T_EQ_INT(h.min, v[0]);
    T_EQ_INT(h.max, v[N - 1]);
    T_EQ_INT(h.count, N);
}

static void test_small_exact(void)
{
    hist_init(&h);
    for (int i = 1; i <= 10; i++)
        hist_add(&h, i);
    T_EQ_INT(hist_quantile(&h, 0.5), 5);
    T_EQ_INT(hist_quantile(&h, 0.51), 6);
    T_EQ_INT(hist_quantile(&h, 0.99), 10);
    T_EQ_INT(hist_quantile(&h, 0.0), 1);
    T_ASSERT(hist_mean(&h) == 5.5);
}

/* The reported value never exceeds max, nor goes below min. */
static void test_capped_at_max(void)
{
    hist_init(&h);
    hist_add(&h, 1000001); /* bucket of width 32768 */
    T_EQ_INT(hist_quantile(&h, 0.5), 1000001);
    T_EQ_INT(hist_quantile(&h, 0.99), 1000001);
}

static void test_negative_and_clamp(void)
{
    hist_init(&h);
    hist_add(&h, -5);
    hist_add(&h, INT64_MAX);
    T_EQ_INT(h.negative, 1);
    T_EQ_INT(h.clamped, 1);
    T_EQ_INT(h.min, 0);
    T_EQ_INT(h.max, INT64_MAX);
    T_EQ_INT(hist_quantile(&h, 0.5), 0);
    T_EQ_INT(hist_quantile(&h, 1.0), INT64_MAX);
    T_EQ_INT(h.bucket[HIST_BUCKETS - 1], 1);
}

static void test_merge(void)
{
    hist_init(&h);
    hist_init(&h2);
    for (int i = 0; i < 100; i++)
        hist_add(&h, 100 + i);
    hist_merge(&h2, &h); /* into an empty one: min taken over */
    T_EQ_INT(h2.min, 100);
    hist_init(&h);
    for (int i = 0; i < 100; i++)
        hist_add(&h, 10 + i);
    hist_merge(&h2, &h);
    T_EQ_INT(h2.count, 200);
    T_EQ_INT(h2.min, 10);
    T_EQ_INT(h2.max, 199);
    hist_init(&h);
    hist_merge(&h2, &h); /* empty source: nothing changes */
    T_EQ_INT(h2.min, 10);
    T_EQ_INT(h2.count, 200);
}

static void test_format(void)
{
    char line[128], tiny[8];
    hist_init(&h);
    for (int i = 0; i < 98; i++)
        hist_add(&h, 4000);
    hist_add(&h, 12000);
    hist_add(&h, 35250);
    T_EQ_STR(hist_format_us(&h, line, sizeof(line)), "n=100 p50=4.0ms p99=12.0ms max=35.2ms");
    T_EQ_STR(hist_format_us(&h, tiny, sizeof(tiny)), "n=100 p");
}

int main(void)
{
    T_RUN(test_layout_contiguous);
    T_RUN(test_index_bounds);
    T_RUN(test_empty);
    T_RUN(test_quantiles_vs_exact);
    T_RUN(test_small_exact);
    T_RUN(test_capped_at_max);
    T_RUN(test_negative_and_clamp);
    T_RUN(test_merge);
    T_RUN(test_format);
    return T_DONE();
}
