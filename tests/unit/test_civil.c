/* Unit tests of src/util/civil: round trips over four centuries, known
 * dates, weekdays, New York's DST switch instants, and the ISO 8601 parser
 * (its equivalence to the resource parser it replaced is fuzz/fuzz_civil.c's
 * job). */
#include <string.h>

#include "t.h"
#include "util/civil.h"

static void test_known_days(void)
{
    T_EQ_INT(civil_days_from_date(1970, 1, 1), 0);
    T_EQ_INT(civil_days_from_date(2000, 3, 1), 11017);
    T_EQ_INT(civil_days_from_date(2026, 12, 4), 20791);
    T_EQ_INT(civil_days_from_date(1969, 12, 31), -1);
    T_EQ_INT(civil_weekday(civil_days_from_date(2026, 12, 4)), 5); /* a Friday */
    T_EQ_INT(civil_weekday(civil_days_from_date(1969, 12, 28)), 0);
    T_EQ_INT(civil_floordiv(-1, 86400), -1);
    T_EQ_INT(civil_floordiv(86399, 86400), 0);
}

static void test_round_trip(void)
{
    for (int64_t days = -200000; days < 200000; days += 7) {
        int64_t y;
        int m, d;
        civil_date_from_days(days, &y, &m, &d);
        T_ASSERTF(m >= 1 && m <= 12 && d >= 1 && d <= 31, "day %lld", (long long)days);
        T_EQ_INT(civil_days_from_date(y, m, d), days);
    }
}

/* 2026: DST from 2026-03-08 07:00 UTC to 2026-11-01 06:00 UTC. */
static void test_ny_offset(void)
{
    int64_t start = civil_days_from_date(2026, 3, 8) * 86400 + 7 * 3600;
    int64_t end = civil_days_from_date(2026, 11, 1) * 86400 + 6 * 3600;
    T_EQ_INT(civil_ny_offset_s(start - 1), -18000);
    T_EQ_INT(civil_ny_offset_s(start), -14400);
    T_EQ_INT(civil_ny_offset_s(end - 1), -14400);
    T_EQ_INT(civil_ny_offset_s(end), -18000);
    T_EQ_INT(civil_ny_offset_s(civil_days_from_date(2026, 7, 4) * 86400), -14400);
    T_EQ_INT(civil_ny_offset_s(civil_days_from_date(2026, 12, 4) * 86400), -18000);
    /* 2024: 2024-03-10 and 2024-11-03. */
    int64_t s24 = civil_days_from_date(2024, 3, 10) * 86400 + 7 * 3600;
    T_EQ_INT(civil_ny_offset_s(s24 - 1), -18000);
    T_EQ_INT(civil_ny_offset_s(s24), -14400);
    int64_t e24 = civil_days_from_date(2024, 11, 3) * 86400 + 6 * 3600;
    T_EQ_INT(civil_ny_offset_s(e24 - 1), -14400);
    T_EQ_INT(civil_ny_offset_s(e24), -18000);
}

#define REQ                   0u
#define OPT                   CIVIL_ISO_OFFSET_OPTIONAL
#define T_2026_12_04_19_03_11 1796410991000000LL

/* One row per form and per error class; expected values from Python's
 * datetime. */
static void test_parse_iso8601(void)
{
    static const struct {
        const char *s;
        unsigned flags;
        long long us;    /* when why is NULL */
        const char *why; /* NULL: accepted; else a part of the reason */
    } cases[] = {
        /* the forms */
        {"1970-01-01T00:00:00Z", REQ, 0, NULL},
        {"2026-12-04T14:03:11-05:00", REQ, T_2026_12_04_19_03_11, NULL},
        {"2026-12-04 14:03:11-0500", REQ, T_2026_12_04_19_03_11, NULL},
        {"2026-12-04T19:03:11+00:00", REQ, T_2026_12_04_19_03_11, NULL},
        {"2026-12-04T19:03:11+23:59", REQ, 1796324651000000LL, NULL},
        {"2026-12-04T19:03:11-2359", REQ, 1796497331000000LL, NULL},
        {"2024-02-29T00:00:00+0130", REQ, 1709159400000000LL, NULL},
        /* fractions: microseconds kept, digits 7 to 9 truncated */
        {"2026-12-04T19:03:11.1Z", REQ, T_2026_12_04_19_03_11 + 100000, NULL},
        {"2026-12-04T19:03:11.123456Z", REQ, T_2026_12_04_19_03_11 + 123456, NULL},
        {"2026-12-04T19:03:11.123456789Z", REQ, T_2026_12_04_19_03_11 + 123456, NULL},
        {"2026-12-04T14:03:11.999999999-05:00", REQ, T_2026_12_04_19_03_11 + 999999, NULL},
        {"2026-12-04T19:03:11.Z", REQ, 0, "fraction"},
        {"2026-12-04T19:03:11.1234567890Z", REQ, 0, "fraction"},
        {"2026-12-04T19:03:11.", OPT, 0, "fraction"},
        /* offset optional (UTC) or required */
        {"2026-12-04T19:03:11", OPT, T_2026_12_04_19_03_11, NULL},
        {"2026-12-04 19:03:11.5", OPT, T_2026_12_04_19_03_11 + 500000, NULL},
        {"2026-12-04T14:03:11-05:00", OPT, T_2026_12_04_19_03_11, NULL},
        {"2026-12-04T19:03:11", REQ, 0, "no offset"},
        {"2026-12-04T19:03:11.5", REQ, 0, "no offset"},
        /* leap days, month lengths */
        {"2024-02-29T00:00:00Z", REQ, 1709164800000000LL, NULL},
        {"2000-02-29T00:00:00Z", REQ, 951782400000000LL, NULL},
        {"2026-02-29T00:00:00Z", REQ, 0, "day 29 is out of range (2026-02 has 28 days)"},
        {"2026-02-29T00:00:00", OPT, 0, "day 29"},
        {"2100-02-29T00:00:00Z", REQ, 0, "2100-02 has 28 days"},
        {"2026-02-30T00:00:00", OPT, 0, "day 30"},
        {"2026-04-31T00:00:00Z", REQ, 0, "2026-04 has 30 days"},
        {"2026-12-31T00:00:00Z", REQ, 1798675200000000LL, NULL},
        {"2026-12-32T00:00:00Z", REQ, 0, "day 32"},
        {"2026-12-00T00:00:00Z", REQ, 0, "day 00"},
        /* years */
        {"1900-01-01T00:00:00Z", REQ, -2208988800000000LL, NULL},
        {"2999-12-31T23:59:59Z", REQ, 32503679999000000LL, NULL},
        {"1899-12-31T23:59:59Z", REQ, 0, "year 1899 is out of range (1900-2999)"},
        {"3000-01-01T00:00:00", OPT, 0, "year 3000"},
        {"0000-01-01T00:00:00Z", REQ, 0, "year 0 "},
        /* months, hours, minutes, seconds (60: a leap second) */
        {"2026-13-01T00:00:00Z", REQ, 0, "month 13"},
        {"2026-00-01T00:00:00Z", REQ, 0, "month 00"},
        {"2026-12-04T24:00:00Z", REQ, 0, "hour 24"},
        {"2026-12-04T23:60:00Z", REQ, 0, "minute 60"},
        {"2026-12-31T23:59:60Z", REQ, 1798761600000000LL, NULL},
        {"2026-12-31T23:59:61Z", REQ, 0, "second 61"},
        /* the fixed part */
        {"", REQ, 0, "expected YYYY-MM-DDTHH:MM:SS"},
        {"2026-12-04", OPT, 0, "expected YYYY"},
        {"2026-12-04T19:03", OPT, 0, "expected YYYY"},
        {"2026/12/04T19:03:11Z", REQ, 0, "expected YYYY"},
        {"2026-12-04t19:03:11Z", REQ, 0, "expected YYYY"},
        {"+026-12-04T19:03:11Z", REQ, 0, "expected YYYY"},
        {"2026-12-04T19:3:11Z", REQ, 0, "expected YYYY"},
        /* the offset */
        {"2026-12-04T19:03:11z", REQ, 0, "lower-case z"},
        {"2026-12-04T19:03:11z", OPT, 0, "lower-case z"},
        {"2026-12-04T19:03:11zz", OPT, 0, "offset: expected"},
        {"2026-12-04T19:03:11x", OPT, 0, "-hhmm or nothing (UTC)"},
        {"2026-12-04T19:03:11 ", REQ, 0, "+hhmm or -hhmm"},
        {"2026-12-04T19:03:11Zx", REQ, 0, "offset: expected"},
        {"2026-12-04T19:03:11+05", REQ, 0, "offset: expected"},
        {"2026-12-04T19:03:11+05:0", REQ, 0, "offset: expected"},
        {"2026-12-04T19:03:11+05:00x", REQ, 0, "offset: expected"},
        {"2026-12-04T19:03:11+05-00", REQ, 0, "offset: expected"},
        {"2026-12-04T19:03:11+24:00", REQ, 0, "offset +24:00 is out of range"},
        {"2026-12-04T19:03:11-0560", OPT, 0, "offset -0560 is out of range"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t us = -42;
        char why[128] = "";
        int rc = civil_parse_iso8601(cases[i].s, strlen(cases[i].s), cases[i].flags, &us, why,
                                     sizeof(why));
        if (!cases[i].why)
            T_ASSERTF(rc == 0 && us == cases[i].us, "%s (flags %u): rc %d, %lld, \"%s\"",
                      cases[i].s, cases[i].flags, rc, (long long)us, why);
        else
            T_ASSERTF(rc == -1 && us == -42 && strstr(why, cases[i].why),
                      "%s (flags %u): rc %d, us %lld, reason \"%s\", want \"%s\"", cases[i].s,
                      cases[i].flags, rc, (long long)us, why, cases[i].why);
    }
    /* Only the n bytes given are read: no NUL needed, and no reason asked. */
    int64_t us = 0;
    T_EQ_INT(civil_parse_iso8601("2026-12-04T19:03:11Zjunk", 20, REQ, &us, NULL, 0), 0);
    T_EQ_INT(us, T_2026_12_04_19_03_11);
    T_EQ_INT(civil_parse_iso8601("2026-12-04T19:03:11Zjunk", 19, REQ, &us, NULL, 0), -1);
    T_EQ_INT(civil_parse_iso8601("2026-12-04T19:03:11Zjunk", 19, OPT, &us, NULL, 0), 0);
    /* a reason that does not fit is cut, not overrun */
    char small[8];
    T_EQ_INT(civil_parse_iso8601("x", 1, REQ, &us, small, sizeof(small)), -1);
    T_EQ_STR(small, "expecte");
}

int main(void)
{
    T_RUN(test_known_days);
    T_RUN(test_round_trip);
    T_RUN(test_ny_offset);
    T_RUN(test_parse_iso8601);
    return T_DONE();
}
