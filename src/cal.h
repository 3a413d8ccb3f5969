/* cal.h - the civil calendar, and what cron.c asks of a time zone.
 *
 * Private to cron.c and tz.c.  Times here are whole seconds: an instant is
 * seconds since the Unix epoch (UTC, leap seconds ignored), and a local time
 * is the same count read on the zone's wall clock (instant + UTC offset), so
 * that the civil functions below serve both.  Days count from 1970-01-01 and
 * may be negative; every division rounds towards minus infinity.
 */
#ifndef CHIME_CAL_H
#define CHIME_CAL_H

#include "machine.h"

#include <stdint.h>

/* The years a computation may reach: chime_ns spans 1677-09-21 to
 * 2262-04-11, and a local time may be a day off its instant. */
#define CHIME__YEAR_MIN 1676
#define CHIME__YEAR_MAX 2263

/* The last second chime_ns can hold. */
#define CHIME__SEC_MAX (INT64_MAX / 1000000000)

static inline int64_t chime__floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static inline bool chime__leap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

static inline int chime__month_days(int64_t y, int m) {
  static const unsigned char days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && chime__leap(y) ? 29 : days[m - 1];
}

/* Days from 1970-01-01 to y-m-d (m 1-12, d 1-31), proleptic Gregorian.
 * Counts in 400-year eras of 146097 days, with years starting in March so
 * that the leap day ends a year: a few multiplications, no loop. */
static inline int64_t chime__days_from_civil(int64_t y, int m, int d) {
  y -= m <= 2;
  int64_t era = chime__floor_div(y, 400);
  int64_t yoe = y - era * 400;                                   /* 0-399 */
  int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1; /* 0-365, from March 1 */
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;           /* 0-146096 */
  return era * 146097 + doe - 719468;
}

/* The inverse of chime__days_from_civil. */
static inline void chime__civil_from_days(int64_t days, int64_t *y, int *m, int *d) {
  days += 719468;
  int64_t era = chime__floor_div(days, 146097);
  int64_t doe = days - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  *d = (int)(doy - (153 * mp + 2) / 5 + 1);
  *m = (int)(mp < 10 ? mp + 3 : mp - 9);
  *y = yoe + era * 400 + (*m <= 2);
}

/* 0 for Sunday ... 6 for Saturday (1970-01-01 was a Thursday). */
static inline int chime__weekday(int64_t days) {
  int64_t r = (days + 4) % 7;
  return (int)(r < 0 ? r + 7 : r);
}

/* A stretch of time during which a zone's UTC offset does not change. */
struct chime__span {
  int64_t start;    /* its first second, or INT64_MIN: it has no start */
  int64_t end;      /* the first second after it, or INT64_MAX: it has no end */
  int32_t off;      /* the UTC offset within it, seconds east of Greenwich */
  int32_t prev_off; /* the offset just before `start` (equal to off when it has none) */
};

/* The span of `tz` that holds instant t: a binary search over the zone's
 * transitions, O(log n). */
void chime__tz_span(const chime_tz *tz, int64_t t, struct chime__span *span);

#endif
