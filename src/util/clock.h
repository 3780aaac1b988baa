/*
 * clock: the few time helpers everyone needs, and jittered backoff.
 * Pure apart from reading the clocks.
 */
#ifndef MBTA_CLOCK_H
#define MBTA_CLOCK_H

#include <stdint.h>

/* Nanoseconds since the epoch (CLOCK_REALTIME). */
int64_t clock_realtime_ns(void);
/* Milliseconds of CLOCK_MONOTONIC, for timeouts. */
int64_t clock_mono_ms(void);

/*
 * Exponential backoff with full jitter (AWS architecture blog's "full
 * jitter"): attempt 0 waits in [0, base), attempt n in [0, min(cap,
 * base*2^n)). `rnd` is a caller-owned xorshift state (never 0).
 */
int64_t clock_backoff_ms(int attempt, int64_t base_ms, int64_t cap_ms, uint64_t *rnd);

#endif
