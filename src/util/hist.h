/*
 * hist: a fixed-size latency histogram (HdrHistogram's log-linear bucket
 * layout, 64 linear sub-buckets per power of two), for p50/p99/max of
 * latencies. Values below 64 are exact; larger ones land in a bucket whose
 * width is at most 1/32 of its lower bound, so a quantile is reported high
 * by less than 3.2 % and never low. count, sum, min and max are exact.
 *
 * Pure: no allocation, no clock, no I/O; lives in caller storage (about
 * 11 KB). The unit is the caller's: consume records microseconds.
 * Not thread-safe; merge per-thread histograms with hist_merge().
 */
#ifndef MBTA_HIST_H
#define MBTA_HIST_H

#include <stddef.h>
#include <stdint.h>

#define HIST_SUB_BITS 6  /* 64 sub-buckets per octave */
#define HIST_MAX_BITS 48 /* values >= 2^48 are clamped */
#define HIST_BUCKETS  (64 + (HIST_MAX_BITS - HIST_SUB_BITS) * 32)

struct hist {
    uint64_t count;    /* values recorded */
    uint64_t negative; /* of which were < 0 (recorded as 0: clock skew) */
    uint64_t clamped;  /* of which were >= 2^48 (bucketed at the top; max exact) */
    uint64_t min, max; /* exact; 0 while empty */
    double sum;        /* for the mean */
    uint64_t bucket[HIST_BUCKETS];
};

/* Empties the histogram (also the way to start a new interval). */
void hist_init(struct hist *h);

/* Records one value. A negative value counts as 0 and in h->negative. */
void hist_add(struct hist *h, int64_t v);

/* Adds every value of src to dst. */
void hist_merge(struct hist *dst, const struct hist *src);

/*
 * The q-quantile (0 <= q <= 1) as the highest value of the bucket holding
 * the ceil(q * count)-th smallest value, capped at max: an upper bound
 * within the bucket precision. q = 1 gives max exactly; 0 while empty.
 */
uint64_t hist_quantile(const struct hist *h, double q);

/* Mean of the recorded values (0 while empty). */
double hist_mean(const struct hist *h);

/*
 * Writes "n=N p50=X p99=Y max=Z" with the values, taken as microseconds,
 * in milliseconds with 1 decimal (e.g. "n=60000 p50=4.1ms p99=12.0ms
 * max=35.2ms") into out (always NUL-terminated). Returns out.
 */
char *hist_format_us(const struct hist *h, char *out, size_t outsz);

/* Bucket layout, exposed for the tests: index of v, and the lowest and
 * highest value a bucket holds. */
size_t hist_index(uint64_t v);
uint64_t hist_bucket_low(size_t i);
uint64_t hist_bucket_high(size_t i);

#endif
