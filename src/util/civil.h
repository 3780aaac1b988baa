/*
 * civil: proleptic Gregorian calendar arithmetic (Howard Hinnant's
 * days_from_civil / civil_from_days algorithms) and the America/New_York
 * UTC offset by the US rules in force since 2007 (DST from the second
 * Sunday of March, 02:00 local, to the first Sunday of November, 02:00
 * local). Pure: no clock, no TZ database, no locale, so that the simulator
 * and the enrichment give the same answers on every machine. Also the one
 * ISO 8601 timestamp parser (MBTA resources, serve's --clock); no
 * formatting, which each caller does its own way.
 */
#ifndef MBTA_CIVIL_H
#define MBTA_CIVIL_H

#include <stddef.h>
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

/* civil_parse_iso8601 flags: without an offset the instant is taken as UTC
 * (serve's --clock); by default an offset is required (MBTA resources). */
#define CIVIL_ISO_OFFSET_OPTIONAL 0x1u

/*
 * Parses the n bytes at s (no NUL needed; all of them, nothing may follow)
 * as "YYYY-MM-DDTHH:MM:SS" ('T' or a space), then an optional fraction
 * (".", 1 to 9 digits: microseconds kept, the rest truncated), then "Z",
 * "+hh:mm", "-hh:mm", "+hhmm" or "-hhmm" (offset hours 00-23).
 * Checked: years 1900-2999, month lengths with leap years, hours 00-23,
 * minutes 00-59, seconds 00-60 (a leap second reads as the next minute's
 * :00). Returns 0 with *us (microseconds since 1970-01-01T00:00:00Z), or -1
 * with *us untouched and, if errstr, the reason in errstr[errsz].
 */
int civil_parse_iso8601(const char *s, size_t n, unsigned flags, int64_t *us, char *errstr,
                        size_t errsz);

#endif
