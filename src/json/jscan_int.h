/*
 * jscan_int.h: jscan's internals for tests, fuzz targets and benchmarks.
 *
 * jscan_validate, jscan_array and jscan_object run a fast scanner first and
 * fall back to the plain byte-at-a-time one (the reference) on anything the
 * fast one does not handle itself, and on every error, so that verdicts and
 * messages come from the reference alone. The reference is exposed here so
 * that the two can be compared on the same input (fuzz_jscan does so on
 * every input) and timed side by side (bench_jscan). Not for production
 * code: use jscan.h.
 */
#ifndef MBTA_JSCAN_INT_H
#define MBTA_JSCAN_INT_H

#include <stdint.h>

#include "json/jscan.h"

/* The reference scanner: same contracts as the functions without _scalar. */
int jscan_validate_scalar(const char *buf, size_t n, int max_depth, char *errstr, size_t errsz);
int jscan_array_scalar(const char *buf, size_t n, int max_depth, size_t max_items,
                       struct jscan_span **spans, size_t *cap, size_t *count, char *errstr,
                       size_t errsz);
int jscan_object_scalar(const char *buf, size_t n, int max_depth, const char *const *keys,
                        size_t nkeys, struct jscan_str *out, char *errstr, size_t errsz);

/*
 * The fast scanner alone: the same results as the functions without _fast
 * on what it accepts, JSCAN_FAST_BAIL on anything it does not vouch for
 * (every error among them; no message). Tests use them to check that the
 * fast path really takes MBTA's documents, not only that the fallback
 * gives the right answer.
 */
#define JSCAN_FAST_BAIL (-2)
int jscan_validate_fast(const char *buf, size_t n, int max_depth);
int jscan_array_fast(const char *buf, size_t n, int max_depth, size_t max_items,
                     struct jscan_span **spans, size_t *cap, size_t *count);
int jscan_object_fast(const char *buf, size_t n, int max_depth, const char *const *keys,
                      size_t nkeys, struct jscan_str *out);

/*
 * The fast scanner's stage 1 block classifier on the 64 bytes at b: sets
 * bit i of *quotes where b[i] is '"'; returns nonzero when one of the bytes
 * is '\\', below 0x20 or 0x80 and above. jscan_classify is the one built
 * (SSE2 on x86-64 unless built with -DJSCAN_PORTABLE), the other the
 * portable one used where there is no SSE2; the two must agree.
 */
uint64_t jscan_classify(const unsigned char *b, uint64_t *quotes);
uint64_t jscan_classify_portable(const unsigned char *b, uint64_t *quotes);

#endif
