/* civil: see civil.h. */
#include "util/civil.h"

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
