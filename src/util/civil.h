/*
 * civil: proleptic Gregorian calendar arithmetic (Howard Hinnant's
 * days_from_civil / civil_from_days algorithms) and the America/New_York
 * UTC offset by the US rules in force since 2007 (DST from the second
 * Sunday of March, 02:00 local, to the first Sunday of November, 02:00
 * local). Pure: no clock, no TZ database, no locale, so that the simulator
 * and the enrichment give the same answers on every machine.
 */
#ifndef MBTA_CIVIL_H
#define MBTA_CIVIL_H

#include <stdint.h>

/* a / b rounded toward negative infinity (b > 0). */
int64_t civil_floordiv(int64_t a, int64_t b);

/* Days since 1970-01-01 of year y, month m (1-12), day d (1-31). */
int64_t civil_days_from_date(int64_t y, int m, int d);

/* The date of a day number (days since 1970-01-01). */
void civil_date_from_days(int64_t days, int64_t *y, int *m, int *d);

/* Day of the week of a day number: 0 = Sunday ... 6 = Saturday. */
int civil_weekday(int64_t days);

/* America/New_York's offset from UTC at a UTC instant, in seconds:
 * -14400 (EDT) or -18000 (EST). */
int civil_ny_offset_s(int64_t utc_s);

#endif
