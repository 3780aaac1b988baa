/*
 * hist: log-linear latency histogram (see hist.h). Bucket i < 64 holds the
 * value i. Above, octave k >= 1 covers [2^(k+5), 2^(k+6)) with 32 buckets of
 * width 2^k: index 64 + (k-1)*32 + (v >> k) - 32. It does not allocate,
 * print or read a clock.
 */
#include "util/hist.h"

#include <stdio.h>
#include <string.h>

#define HALF (1u << (HIST_SUB_BITS - 1)) /* 32 */
#define SUB  (1u << HIST_SUB_BITS)       /* 64 */
#define VMAX ((UINT64_C(1) << HIST_MAX_BITS) - 1)

void hist_init(struct hist *h)
{
    memset(h, 0, sizeof(*h));
}

size_t hist_index(uint64_t v)
{
    if (v > VMAX)
        v = VMAX;
    if (v < SUB)
        return (size_t)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v); /* >= HIST_SUB_BITS */
    unsigned k = msb - (HIST_SUB_BITS - 1);            /* shift, >= 1 */
    return SUB + (size_t)(k - 1) * HALF + (size_t)((v >> k) - HALF);
}

uint64_t hist_bucket_low(size_t i)
{
    if (i < SUB)
        return i;
    size_t k = (i - SUB) / HALF + 1;
    uint64_t top = (i - SUB) % HALF + HALF;
    return top << k;
}

uint64_t hist_bucket_high(size_t i)
{
    if (i < SUB)
        return i;
    size_t k = (i - SUB) / HALF + 1;
    return hist_bucket_low(i) + (UINT64_C(1) << k) - 1;
}

void hist_add(struct hist *h, int64_t v)
{
    uint64_t u;
    if (v < 0) {
        h->negative++;
        u = 0;
    } else {
        u = (uint64_t)v;
    }
    if (u > VMAX)
        h->clamped++;
    h->bucket[hist_index(u)]++;
    if (!h->count || u < h->min)
        h->min = u;
    if (u > h->max)
        h->max = u;
    h->count++;
    h->sum += (double)u;
}

void hist_merge(struct hist *dst, const struct hist *src)
{
    if (!src->count)
        return;
    for (size_t i = 0; i < HIST_BUCKETS; i++)
        dst->bucket[i] += src->bucket[i];
    if (!dst->count || src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
    dst->count += src->count;
    dst->negative += src->negative;
    dst->clamped += src->clamped;
    dst->sum += src->sum;
}

uint64_t hist_quantile(const struct hist *h, double q)
{
    if (!h->count)
        return 0;
    if (q >= 1.0)
        return h->max;
    if (q < 0)
        q = 0;
    /* the rank-th smallest value, 1-based: ceil(q * count), at least 1 */
    uint64_t rank = (uint64_t)(q * (double)h->count);
    if ((double)rank < q * (double)h->count)
        rank++;
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (size_t i = 0; i < HIST_BUCKETS; i++) {
        seen += h->bucket[i];
        if (seen >= rank) {
            uint64_t v = hist_bucket_high(i);
            if (v > h->max)
                v = h->max;
            if (v < h->min)
                v = h->min;
            return v;
        }
    }
    return h->max;
}

double hist_mean(const struct hist *h)
{
    return h->count ? h->sum / (double)h->count : 0.0;
}

char *hist_format_us(const struct hist *h, char *out, size_t outsz)
{
    if (!outsz)
        return out;
    snprintf(out, outsz, "n=%llu p50=%.1fms p99=%.1fms max=%.1fms", (unsigned long long)h->count,
             (double)hist_quantile(h, 0.50) / 1000.0, (double)hist_quantile(h, 0.99) / 1000.0,
             (double)h->max / 1000.0);
    return out;
}
