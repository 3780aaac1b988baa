/*
 * fuzz_civil: a differential check of res_parse_ts, the timestamp parser of
 * MBTA resources, against old_res_parse_ts below, a frozen copy of it as it
 * was before it moved onto the shared ISO 8601 parser of util/civil. The
 * move must not change what a resource accepts or the instant it reads:
 * same return code, same microseconds, *us untouched on a refusal.
 *
 * LLVMFuzzerInitialize first runs a generated set (every byte replaced by
 * every value, every truncation, deletion and insertion of a dozen valid
 * timestamps; random digits in the template) and aborts on the first
 * difference, so every run of this target, CI's short ones included, replays
 * it. The fuzzer then tries the raw input, and the input laid over a valid
 * timestamp (most random bytes fail at the first character). On every input
 * also: civil_parse_iso8601 with the offset optional (serve's --clock)
 * accepts what resources accept, as the same instant, and what it accepts
 * without an offset is the same instant as with "Z".
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mbta/resource.h"
#include "util/civil.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- the reference: res_parse_ts and its helper as of commit a0cff44, not to be edited ---- */

static int old_digits(const char *s, size_t n, int *out)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

static int old_res_parse_ts(const char *s, size_t len, int64_t *us)
{
    int y, mo, d, h, mi, sec, frac_us = 0;
    size_t p = 19;
    if (len < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != ' ') || s[13] != ':' ||
        s[16] != ':')
        return -1;
    if (old_digits(s, 4, &y) || old_digits(s + 5, 2, &mo) || old_digits(s + 8, 2, &d) ||
        old_digits(s + 11, 2, &h) || old_digits(s + 14, 2, &mi) || old_digits(s + 17, 2, &sec))
        return -1;
    if (y < 1900 || y > 2999 || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || sec > 60)
        return -1;
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (d > mdays[mo - 1] || (mo == 2 && d == 29 && !leap))
        return -1;
    if (p < len && s[p] == '.') {
        size_t n = 0;
        p++;
        while (p < len && s[p] >= '0' && s[p] <= '9') {
            if (n < 6)
                frac_us = frac_us * 10 + (s[p] - '0');
            n++;
            p++;
        }
        if (n == 0 || n > 9)
            return -1;
        for (; n < 6; n++)
            frac_us *= 10;
    }
    int off_min;
    if (p < len && s[p] == 'Z') {
        off_min = 0;
        p++;
    } else if (p < len && (s[p] == '+' || s[p] == '-')) {
        int oh, om;
        int sign = s[p] == '-' ? -1 : 1;
        if (len - p == 6 && s[p + 3] == ':') {
            if (old_digits(s + p + 1, 2, &oh) || old_digits(s + p + 4, 2, &om))
                return -1;
            p += 6;
        } else if (len - p == 5) {
            if (old_digits(s + p + 1, 2, &oh) || old_digits(s + p + 3, 2, &om))
                return -1;
            p += 5;
        } else {
            return -1;
        }
        if (oh > 23 || om > 59)
            return -1;
        off_min = sign * (oh * 60 + om);
    } else {
        return -1;
    }
    if (p != len)
        return -1;
    int64_t secs = civil_days_from_date(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - off_min * 60;
    *us = secs * 1000000 + frac_us;
    return 0;
}

/* ---- the check ---------------------------------------------------------------------------- */

#define UNTOUCHED INT64_MIN

static unsigned long long checked, accepted;

static void check(const char *s, size_t n)
{
    int64_t old_us = UNTOUCHED, new_us = UNTOUCHED;
    int old_rc = old_res_parse_ts(s, n, &old_us);
    int new_rc = res_parse_ts(s, n, &new_us, NULL, 0);
    checked++;
    accepted += old_rc == 0;
    if (old_rc != new_rc || old_us != new_us) {
        fprintf(stderr, "fuzz_civil: \"%.*s\" (%zu bytes): old rc %d us %lld, new rc %d us %lld\n",
                (int)n, s, n, old_rc, (long long)old_us, new_rc, (long long)new_us);
        abort();
    }
    /* The same parser with the offset optional (serve's --clock) accepts
     * a superset: the same instants, and without an offset, UTC's. */
    int64_t opt_us = UNTOUCHED, z_us = UNTOUCHED;
    int opt_rc = civil_parse_iso8601(s, n, CIVIL_ISO_OFFSET_OPTIONAL, &opt_us, NULL, 0);
    if (new_rc == 0 && (opt_rc != 0 || opt_us != new_us)) {
        fprintf(stderr, "fuzz_civil: \"%.*s\": refused or moved with the offset optional\n", (int)n,
                s);
        abort();
    }
    if (opt_rc == 0 && new_rc != 0) {
        char b[128];
        if (n + 1 > sizeof(b))
            abort(); /* nothing that long can be a timestamp */
        memcpy(b, s, n);
        b[n] = 'Z';
        if (civil_parse_iso8601(b, n + 1, 0, &z_us, NULL, 0) || z_us != opt_us) {
            fprintf(stderr, "fuzz_civil: \"%.*s\": accepted with the offset optional, not as UTC\n",
                    (int)n, s);
            abort();
        }
    }
}

/* Valid timestamps of every form resources accept, and the edges: the
 * mutations of these reach every branch of the old parser. */
static const char *const bases[] = {
    "1970-01-01T00:00:00Z",
    "2026-12-04T14:03:11-05:00",
    "2026-12-04T19:03:11.123456Z",
    "2026-12-04T19:03:11.1+00:00",
    "2024-02-29T00:00:00+0130",
    "2024-02-29 23:59:60.987654321-23:59",
    "2000-02-29T12:30:45.5+14:00",
    "1900-01-01T00:00:00Z",
    "2999-12-31T23:59:59.999999-0000",
    "2026-03-08T02:30:00.12345678Z",
    "2026-04-30T07:00:00+05:45",
    "2100-02-28T00:00:00.000001-1200",
};

/* Inputs of the unit tests of both callers (test_resource.c, test_sim.c). */
static const char *const unit_cases[] = {
    "2023-02-29T00:00:00Z",      "2026-12-04T14:03:11",   "2026-12-04T14:03:11-05:00x",
    "2026-12-04T24:03:11Z",      "2026-12-04T14:03:11.Z", "",
    "2026-13-01T00:00:00Z",      "2026-12-01 00:00",      "2026-12-01T00:00:00.123+01:30",
    "2026-03-08T06:59:59Z",      "2024-02-29T04:59:59Z",  "2027-01-01T04:30:00Z",
    "2026-11-01T01:00:00-05:00", "2026-02-30T00:00:00Z",  "2026-12-04T19:03:11z",
    "1899-12-31T23:59:59Z",      "3000-01-01T00:00:00Z",  "2026-12-04T19:03:11.1234567890Z",
};

static void check_str(const char *s)
{
    check(s, strlen(s));
}

static uint64_t rng = 0x243F6A8885A308D3ull;

static uint64_t rnd(void)
{
    uint64_t z = (rng += 0x9E3779B97F4A7C15ull); /* splitmix64 */
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* A number of w digits (zero-padded), near the edges of its field most of
 * the time ([lo - 1, hi + 1]), any digits otherwise. */
static size_t put_num(char *b, int w, int lo, int hi)
{
    uint64_t r = rnd();
    int v = r % 4 ? lo - 1 + (int)((r >> 2) % (uint64_t)(hi - lo + 3)) : (int)((r >> 2) % 10000);
    if (v < 0)
        v = 0;
    for (int i = w - 1; i >= 0; i--, v /= 10)
        b[i] = (char)('0' + v % 10);
    return (size_t)w;
}

/* "YYYY-MM-DDTHH:MM:SS", a fraction of 0 to 11 digits or none, one of the
 * offset forms (and some near misses) or none, with random numbers: reaches
 * the range checks (years, month lengths, leap days, hours, offsets) that
 * byte mutations of a dozen valid dates only brush. */
static void check_random(void)
{
    char b[64];
    size_t n = 0;
    n += put_num(b + n, 4, 1900, 2999);
    b[n++] = '-';
    n += put_num(b + n, 2, 1, 12);
    b[n++] = '-';
    n += put_num(b + n, 2, 1, 31);
    b[n++] = rnd() % 8 ? 'T' : ' ';
    n += put_num(b + n, 2, 0, 23);
    b[n++] = ':';
    n += put_num(b + n, 2, 0, 59);
    b[n++] = ':';
    n += put_num(b + n, 2, 0, 60);
    uint64_t r = rnd();
    if (r % 3 == 0) {
        b[n++] = '.';
        for (int i = (int)((r >> 2) % 12); i > 0; i--)
            b[n++] = (char)('0' + rnd() % 10);
    }
    static const char *const offs[] = {"",  "Z",  "+H:M",  "-H:M", "+HM",  "-HM", "+H",
                                       "z", "ZZ", "+H:MM", "-H:",  "+HMM", " "};
    for (const char *t = offs[rnd() % (sizeof(offs) / sizeof(offs[0]))]; *t; t++)
        if (*t == 'H')
            n += put_num(b + n, 2, 0, 23);
        else if (*t == 'M')
            n += put_num(b + n, 2, 0, 59);
        else
            b[n++] = *t;
    check(b, n);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char b[80];
    for (size_t i = 0; i < sizeof(unit_cases) / sizeof(unit_cases[0]); i++)
        check_str(unit_cases[i]);
    for (size_t k = 0; k < sizeof(bases) / sizeof(bases[0]); k++) {
        const char *s = bases[k];
        size_t n = strlen(s);
        check_str(s);
        for (size_t len = 0; len < n; len++)
            check(s, len); /* truncations */
        for (size_t i = 0; i < n; i++) {
            memcpy(b, s, n);
            for (int v = 0; v < 256; v++) { /* every byte, every value */
                b[i] = (char)v;
                check(b, n);
            }
            memcpy(b, s, i); /* deletion */
            memcpy(b + i, s + i + 1, n - i - 1);
            check(b, n - 1);
        }
        static const char ins[] = "0123456789-:T .Z+z";
        for (size_t i = 0; i <= n; i++) /* insertions */
            for (const char *c = ins; *c; c++) {
                memcpy(b, s, i);
                b[i] = *c;
                memcpy(b + i + 1, s + i, n - i);
                check(b, n + 1);
            }
    }
    for (int i = 0; i < 1000000; i++)
        check_random();
    fprintf(stderr, "fuzz_civil: generated set: %llu inputs, %llu accepted, old == new\n", checked,
            accepted);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check((const char *)data, size);
    /* The input laid over a valid timestamp: byte 0 picks it and its
     * length, then (position, character) pairs from a small alphabet. */
    if (size == 0)
        return 0;
    static const char alpha[] = "0123456789-:T .Z+z\x00";
    const char *s = bases[data[0] % (sizeof(bases) / sizeof(bases[0]))];
    char b[64];
    size_t n = strlen(s);
    memcpy(b, s, n);
    if (data[0] & 0x80)
        n -= (size_t)(data[0] >> 4 & 7) % n;
    for (size_t i = 1; i + 1 < size; i += 2)
        b[data[i] % n] = alpha[data[i + 1] % (sizeof(alpha) - 1)];
    check(b, n);
    return 0;
}
