/* Unit tests of src/util/civil: round trips over four centuries, known
 * dates, weekdays, and New York's DST switch instants. */
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

int main(void)
{
    T_RUN(test_known_days);
    T_RUN(test_round_trip);
    T_RUN(test_ny_offset);
    return T_DONE();
}
