/* civil: see civil.h. */
#include "util/civil.h"

#include <stdarg.h>
#include <stdio.h>

int64_t civil_floordiv(int64_t a, int64_t b)
{
    return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
}

int64_t civil_days_from_date(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = civil_floordiv(y, 400);
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void civil_date_from_days(int64_t days, int64_t *y, int *m, int *d)
{
    int64_t z = days + 719468;
    int64_t era = civil_floordiv(z, 146097);
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

int civil_weekday(int64_t days)
{
    /* 1970-01-01 was a Thursday. */
    return (int)((days % 7 + 7 + 4) % 7);
}

/* Day number of the n-th Sunday (n >= 1) of month m of year y. */
static int64_t civil_nth_sunday(int64_t y, int m, int n)
{
    int64_t first = civil_days_from_date(y, m, 1);
    return first + (7 - civil_weekday(first)) % 7 + 7 * (n - 1);
}

int civil_ny_offset_s(int64_t utc_s)
{
    int64_t y;
    int m, d;
    civil_date_from_days(civil_floordiv(utc_s, 86400), &y, &m, &d);
    /* 02:00 EST is 07:00 UTC; 02:00 EDT is 06:00 UTC. */
    int64_t start = civil_nth_sunday(y, 3, 2) * 86400 + 7 * 3600;
    int64_t end = civil_nth_sunday(y, 11, 1) * 86400 + 6 * 3600;
    return utc_s >= start && utc_s < end ? -4 * 3600 : -5 * 3600;
}

/* ---- ISO 8601 ------------------------------------------------------------------------------ */

__attribute__((format(printf, 3, 4))) static int civil_fail(char *errstr, size_t errsz,
                                                            const char *fmt, ...)
{
    if (errstr && errsz) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(errstr, errsz, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* The value of the w decimal digits at s, or -1 if one is not a digit. */
static int civil_digits(const char *s, int w)
{
    int v = 0;
    for (int i = 0; i < w; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

static int civil_month_days(int y, int m)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return mdays[m - 1] + (m == 2 && leap);
}

int civil_parse_iso8601(const char *s, size_t n, unsigned flags, int64_t *us, char *errstr,
                        size_t errsz)
{
    static const char want[] = "YYYY-MM-DDTHH:MM:SS";
    int y, mo, d, h, mi, sec, frac_us = 0, off_min = 0;
    if (n < sizeof(want) - 1)
        return civil_fail(errstr, errsz, "expected %s", want);
    for (size_t i = 0; i < sizeof(want) - 1; i++) {
        int ok = want[i] == 'T'   ? s[i] == 'T' || s[i] == ' '
                 : want[i] == '-' ? s[i] == '-'
                 : want[i] == ':' ? s[i] == ':'
                                  : s[i] >= '0' && s[i] <= '9';
        if (!ok)
            return civil_fail(errstr, errsz, "expected %s", want);
    }
    y = civil_digits(s, 4);
    mo = civil_digits(s + 5, 2);
    d = civil_digits(s + 8, 2);
    h = civil_digits(s + 11, 2);
    mi = civil_digits(s + 14, 2);
    sec = civil_digits(s + 17, 2);
    /* The bounds MBTA resources have always had: a year outside is a data
     * error, not history, and the arithmetic stays far from overflow. */
    if (y < 1900 || y > 2999)
        return civil_fail(errstr, errsz, "year %d is out of range (1900-2999)", y);
    if (mo < 1 || mo > 12)
        return civil_fail(errstr, errsz, "month %02d is out of range (01-12)", mo);
    if (d < 1 || d > civil_month_days(y, mo))
        return civil_fail(errstr, errsz, "day %02d is out of range (%04d-%02d has %d days)", d, y,
                          mo, civil_month_days(y, mo));
    if (h > 23)
        return civil_fail(errstr, errsz, "hour %02d is out of range (00-23)", h);
    if (mi > 59)
        return civil_fail(errstr, errsz, "minute %02d is out of range (00-59)", mi);
    if (sec > 60)
        return civil_fail(errstr, errsz, "second %02d is out of range (00-60)", sec);
    size_t p = sizeof(want) - 1;
    if (p < n && s[p] == '.') {
        size_t nd = 0;
        for (p++; p < n && s[p] >= '0' && s[p] <= '9'; p++, nd++)
            if (nd < 6)
                frac_us = frac_us * 10 + (s[p] - '0');
        /* Nine digits (nanoseconds) is what producers write; more is
         * refused rather than silently cut, as resources always did. */
        if (nd == 0 || nd > 9)
            return civil_fail(errstr, errsz, "fraction: expected 1 to 9 digits after '.'");
        for (; nd < 6; nd++)
            frac_us *= 10;
    }
    if (p == n) {
        if (!(flags & CIVIL_ISO_OFFSET_OPTIONAL))
            return civil_fail(errstr, errsz, "no offset: expected Z, +hh:mm or -hh:mm at the end");
    } else if (s[p] == 'Z' && n - p == 1) {
        off_min = 0;
    } else if ((s[p] == '+' || s[p] == '-') && (n - p == 6 || n - p == 5)) {
        /* "+hh:mm", or "+hhmm" (basic format) that some producers write. */
        int colon = n - p == 6;
        int oh = civil_digits(s + p + 1, 2);
        int om = colon && s[p + 3] != ':' ? -1 : civil_digits(s + p + 3 + colon, 2);
        if (oh < 0 || om < 0)
            return civil_fail(errstr, errsz, "offset: expected Z, +hh:mm, -hh:mm, +hhmm or -hhmm");
        if (oh > 23 || om > 59)
            return civil_fail(errstr, errsz, "offset %.*s is out of range", (int)(n - p), s + p);
        off_min = (s[p] == '-' ? -1 : 1) * (oh * 60 + om);
    } else if (s[p] == 'z' && n - p == 1) {
        /* RFC 3339 allows it; resources never did, and one grammar for
         * both callers means serve's --clock does not either. */
        return civil_fail(errstr, errsz, "offset: lower-case z (write Z)");
    } else {
        return civil_fail(errstr, errsz, "offset: expected Z, +hh:mm, -hh:mm, +hhmm%s",
                          flags & CIVIL_ISO_OFFSET_OPTIONAL ? ", -hhmm or nothing (UTC)"
                                                            : " or -hhmm");
    }
    int64_t secs = civil_days_from_date(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - off_min * 60;
    *us = secs * 1000000 + frac_us;
    return 0;
}
