/*
 * t.h: the smallest test framework that reads well.
 *
 * Each test is a function; T_RUN(fn) runs it and prints one line,
 * "PASS name" or "FAIL name: file:line: what". tests/run counts those lines
 * across every binary and script and prints "N passed, N failed".
 *
 *   static void test_split(void) { T_ASSERT(x == 1); T_EQ_STR(a, "b"); }
 *   int main(void) { T_RUN(test_split); return T_DONE(); }
 *
 * An assertion that fails ends the test (longjmp), not the binary.
 * T_TMOUT(ms) scales a timeout by $TMOUT_MULTIPLIER (sanitizer runs).
 */
#ifndef MBTA_T_H
#define MBTA_T_H

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int t_passed, t_failed;
static jmp_buf t_jmp;
static char t_why[1024];

#define T_FAIL(...)                                                                                \
    do {                                                                                           \
        int t_n_ = snprintf(t_why, sizeof(t_why), "%s:%d: ", __FILE__, __LINE__);                  \
        snprintf(t_why + t_n_, sizeof(t_why) - (size_t)t_n_, __VA_ARGS__);                         \
        longjmp(t_jmp, 1);                                                                         \
    } while (0)

#define T_ASSERT(c)                                                                                \
    do {                                                                                           \
        if (!(c))                                                                                  \
            T_FAIL("assertion failed: %s", #c);                                                    \
    } while (0)

#define T_ASSERTF(c, ...)                                                                          \
    do {                                                                                           \
        if (!(c))                                                                                  \
            T_FAIL(__VA_ARGS__);                                                                   \
    } while (0)

#define T_EQ_INT(a, b)                                                                             \
    do {                                                                                           \
        long long t_a_ = (long long)(a), t_b_ = (long long)(b);                                    \
        if (t_a_ != t_b_)                                                                          \
            T_FAIL("%s == %lld, expected %s == %lld", #a, t_a_, #b, t_b_);                         \
    } while (0)

#define T_EQ_STR(a, b)                                                                             \
    do {                                                                                           \
        const char *t_a_ = (a), *t_b_ = (b);                                                       \
        if (!t_a_ || !t_b_ || strcmp(t_a_, t_b_) != 0)                                             \
            T_FAIL("%s == \"%s\", expected \"%s\"", #a, t_a_ ? t_a_ : "(null)",                    \
                   t_b_ ? t_b_ : "(null)");                                                        \
    } while (0)

#define T_EQ_MEM(a, alen, b, blen)                                                                 \
    do {                                                                                           \
        size_t t_al_ = (alen), t_bl_ = (blen);                                                     \
        if (t_al_ != t_bl_ || memcmp((a), (b), t_al_) != 0)                                        \
            T_FAIL("%s (%zu bytes) != %s (%zu bytes): \"%.*s\" vs \"%.*s\"", #a, t_al_, #b, t_bl_, \
                   (int)(t_al_ > 200 ? 200 : t_al_), (const char *)(a),                            \
                   (int)(t_bl_ > 200 ? 200 : t_bl_), (const char *)(b));                           \
    } while (0)

static inline void t_run(const char *name, void (*fn)(void))
{
    if (setjmp(t_jmp) == 0) {
        fn();
        printf("PASS %s\n", name);
        t_passed++;
    } else {
        printf("FAIL %s: %s\n", name, t_why);
        t_failed++;
    }
    fflush(stdout);
}

#define T_RUN(fn) t_run(#fn, fn)
#define T_DONE()  (t_failed ? 1 : 0)

static inline long T_TMOUT(long ms)
{
    const char *m = getenv("TMOUT_MULTIPLIER");
    double f = m ? atof(m) : 1.0;
    return (long)(ms * (f > 0 ? f : 1.0));
}

#endif
