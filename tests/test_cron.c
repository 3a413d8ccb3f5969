/* test_cron.c - cron expressions, time zones, next fire times.
 *
 * Every instant here is explicit and every zone named, so that the tests
 * give the same answers on any machine with the IANA database.  Expected
 * fire times are written as the zone's local time with its abbreviation
 * (chime_tz_format), which tells the two occurrences of a repeated hour
 * apart; the DST tests also pin the UTC instants.  The year-long
 * comparisons use the C library's own zone code (localtime_r) as an
 * independent reference.
 */
#include "test.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- helpers ---------------------------------------------------------------- */

/* "YYYY-MM-DD HH:MM:SS" read as UTC. */
static chime_ns utc(const char *text) {
  struct tm tm;
  memset(&tm, 0, sizeof tm);
  if (sscanf(text, "%d-%d-%d %d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
    fail_msg("bad time '%s'", text);
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return CHIME_SEC((int64_t)timegm(&tm));
}

static chime_tz *zone(const char *name) {
  chime_tz *tz = NULL;
  int rc = chime_tz_load(name, &tz);
  if (rc) fail_msg("chime_tz_load(%s): %s", name ? name : "NULL", chime_strerror(rc));
  return tz;
}

/* The syntax cron() and refuses() read expressions in; a test that
 * changes it sets it back. */
static chime_cron_syntax syntax = CHIME_CRON_CHIME;

static chime_cron_expr *cron(const char *expr) {
  chime_cron_expr *c = NULL;
  chime_cron_error e;
  memset(&e, 0, sizeof e);
  int rc = chime_cron_parse_syntax(expr, syntax, &c, &e);
  if (rc) fail_msg("'%s': %s (column %d: %s)", expr, chime_strerror(rc), e.column, e.message);
  return c;
}

static const char *local(const chime_tz *tz, chime_ns t, char *buf, size_t size) {
  int n = chime_tz_format(tz, t, buf, size);
  assert_true(n > 0 && (size_t)n < size);
  return buf;
}

/* The next n fire times of expr in zone after `after` (UTC) are want[0..n),
 * written as local times. */
static void fires(const char *expr, const char *name, const char *after, const char *const *want, size_t n) {
  chime_cron_expr *c = cron(expr);
  chime_tz *tz = zone(name);
  chime_ns got[32];
  assert_true(n <= 32);
  int k = chime_cron_next_n(c, tz, utc(after), got, n);
  char buf[64], msg[2048] = "";
  bool ok = k == (int)n;
  for (int i = 0; i < k; i++) {
    local(tz, got[i], buf, sizeof buf);
    ok &= (size_t)i < n && strcmp(buf, want[i]) == 0;
    snprintf(msg + strlen(msg), sizeof msg - strlen(msg), "\n  got  %s%s%s", buf, (size_t)i < n ? "  want " : "",
             (size_t)i < n ? want[i] : "");
  }
  chime_tz_free(tz);
  chime_cron_free(c);
  if (!ok) fail_msg("'%s' in %s after %s UTC: %d times:%s", expr, name, after, k, msg);
}

#define FIRES(expr, zone_name, after, ...)                                                                             \
  fires(expr, zone_name, after, (const char *const[]){__VA_ARGS__},                                                    \
        sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *))

/* The first fire time after `after` is the UTC instant `want`. */
static void next_is(const char *expr, const char *name, const char *after, const char *want) {
  chime_cron_expr *c = cron(expr);
  chime_tz *tz = zone(name);
  chime_ns got = 0;
  int rc = chime_cron_next(c, tz, utc(after), &got);
  chime_tz_free(tz);
  chime_cron_free(c);
  if (rc) fail_msg("'%s' in %s after %s: %s", expr, name, after, chime_strerror(rc));
  if (got != utc(want))
    fail_msg("'%s' in %s after %s: got %lld, want %s UTC (%lld)", expr, name, after, (long long)got, want,
             (long long)utc(want));
}

/* Two expressions fire at the same times for a while. */
static void same_times(const char *a, const char *b) {
  chime_cron_expr *ca = cron(a), *cb = cron(b);
  chime_tz *tz = zone("Europe/Berlin");
  chime_ns ta[40], tb[40];
  assert_int_equal(chime_cron_next_n(ca, tz, utc("2026-01-01 00:00:00"), ta, 40), 40);
  assert_int_equal(chime_cron_next_n(cb, tz, utc("2026-01-01 00:00:00"), tb, 40), 40);
  for (int i = 0; i < 40; i++)
    if (ta[i] != tb[i]) fail_msg("'%s' and '%s' differ at %d: %lld, %lld", a, b, i, (long long)ta[i], (long long)tb[i]);
  chime_tz_free(tz);
  chime_cron_free(ca);
  chime_cron_free(cb);
}

/* The expression is refused at `column` with `message`, and *cron is left
 * alone. */
static void refuses(const char *expr, int column, const char *message) {
  chime_cron_expr *untouched = (chime_cron_expr *)&untouched, *c = untouched;
  chime_cron_error e;
  memset(&e, 0, sizeof e);
  int rc = chime_cron_parse_syntax(expr, syntax, &c, &e);
  if (rc != -EINVAL) fail_msg("'%s': got %d, want -EINVAL", expr, rc);
  if (c != untouched) fail_msg("'%s': output touched on failure", expr);
  if (e.column != column || strcmp(e.message, message) != 0)
    fail_msg("'%s':\n  got  column %d: %s\n  want column %d: %s", expr, e.column, e.message, column, message);
}

/* ---- syntax --------------------------------------------------------------- */

static void parse_reads_numbers_ranges_steps_and_lists(void **state) {
  (void)state;
  FIRES("5,10-12,40/7 * * * *", "UTC", "2026-05-01 10:00:00", "2026-05-01 10:05:00 UTC", "2026-05-01 10:10:00 UTC",
        "2026-05-01 10:11:00 UTC", "2026-05-01 10:12:00 UTC", "2026-05-01 10:40:00 UTC", "2026-05-01 10:47:00 UTC",
        "2026-05-01 10:54:00 UTC", "2026-05-01 11:05:00 UTC");
  FIRES("*/15 * * * *", "UTC", "2026-05-01 10:00:00", "2026-05-01 10:15:00 UTC", "2026-05-01 10:30:00 UTC",
        "2026-05-01 10:45:00 UTC", "2026-05-01 11:00:00 UTC");
  FIRES("10-30/10 9-17/4 * * *", "UTC", "2026-05-01 10:00:00", "2026-05-01 13:10:00 UTC", "2026-05-01 13:20:00 UTC",
        "2026-05-01 13:30:00 UTC", "2026-05-01 17:10:00 UTC");
  FIRES("* * * * *", "UTC", "2026-05-01 10:00:30", "2026-05-01 10:01:00 UTC", "2026-05-01 10:02:00 UTC");
  FIRES("0 0 1 */5 *", "UTC", "2026-01-01 00:00:00", "2026-06-01 00:00:00 UTC", "2026-11-01 00:00:00 UTC",
        "2027-01-01 00:00:00 UTC");
  FIRES("07 003 * * *", "UTC", "2026-05-01 10:00:00", "2026-05-02 03:07:00 UTC"); /* leading zeros */
}

static void parse_accepts_blanks_and_tabs_around_fields(void **state) {
  (void)state;
  same_times("  0\t12 * *\t\t*  ", "0 12 * * *");
  same_times("\t@daily ", "0 0 * * *");
}

static void parse_reads_month_and_weekday_names_in_any_case(void **state) {
  (void)state;
  same_times("0 0 1 JAN,mar-May *", "0 0 1 1,3-5 *");
  same_times("0 0 * * Mon-FRI", "0 0 * * 1-5");
  same_times("0 0 1 jan/4 *", "0 0 1 1,5,9 *");
  same_times("0 0 * * sat-sun", "0 0 * * 0,6"); /* sun ends a range as 7 */
  same_times("0 0 * * fri-sun", "0 0 * * 5-7");
}

static void sunday_is_both_0_and_7(void **state) {
  (void)state;
  same_times("0 9 * * 0", "0 9 * * 7");
  same_times("0 9 * * sun", "0 9 * * 7");
  FIRES("0 9 * * 5-7", "UTC", "2026-05-01 10:00:00", "2026-05-02 09:00:00 UTC", "2026-05-03 09:00:00 UTC",
        "2026-05-08 09:00:00 UTC");
  /* '*' and a/n run to 6: every second day from Monday is Mon, Wed, Fri. */
  same_times("0 9 * * 1/2", "0 9 * * 1,3,5");
  same_times("0 9 * * */2", "0 9 * * 0,2,4,6");
}

static void six_fields_start_with_seconds(void **state) {
  (void)state;
  FIRES("*/20 * * * * *", "UTC", "2026-05-01 10:00:30", "2026-05-01 10:00:40 UTC", "2026-05-01 10:01:00 UTC",
        "2026-05-01 10:01:20 UTC");
  FIRES("0 30 2 * * *", "UTC", "2026-05-01 10:00:00", "2026-05-02 02:30:00 UTC");
  FIRES("15,45 0 0 1 1 *", "UTC", "2026-05-01 10:00:00", "2027-01-01 00:00:15 UTC", "2027-01-01 00:00:45 UTC",
        "2028-01-01 00:00:15 UTC");
}

static void day_fields_both_restricted_match_either(void **state) {
  (void)state;
  /* The 13th, and every Friday. */
  FIRES("0 0 13 * fri", "UTC", "2026-02-01 00:00:00", "2026-02-06 00:00:00 UTC", "2026-02-13 00:00:00 UTC",
        "2026-02-20 00:00:00 UTC", "2026-02-27 00:00:00 UTC", "2026-03-06 00:00:00 UTC", "2026-03-13 00:00:00 UTC");
  /* "0 0 30 2 mon" never has a Feb 30, but has the Mondays of February. */
  FIRES("0 0 30 2 mon", "UTC", "2026-01-01 00:00:00", "2026-02-02 00:00:00 UTC", "2026-02-09 00:00:00 UTC",
        "2026-02-16 00:00:00 UTC", "2026-02-23 00:00:00 UTC", "2027-02-01 00:00:00 UTC");
}

static void day_field_starting_with_star_makes_both_match(void **state) {
  (void)state;
  /* Odd days that are Mondays. */
  FIRES("0 0 */2 * mon", "UTC", "2026-06-01 00:00:00", "2026-06-15 00:00:00 UTC", "2026-06-29 00:00:00 UTC",
        "2026-07-13 00:00:00 UTC");
  /* The 13th when it is a Friday: "*" / "*" + "/7" in day-of-week is Sunday only. */
  FIRES("0 0 13 * */5", "UTC", "2026-01-01 00:00:00", "2026-02-13 00:00:00 UTC", "2026-03-13 00:00:00 UTC",
        "2026-09-13 00:00:00 UTC", "2026-11-13 00:00:00 UTC", "2026-12-13 00:00:00 UTC");
  same_times("0 0 1 * *", "0 0 1 * */1");
}

static void macros_are_their_expressions(void **state) {
  (void)state;
  same_times("@yearly", "0 0 1 1 *");
  same_times("@annually", "0 0 1 1 *");
  same_times("@monthly", "0 0 1 * *");
  same_times("@weekly", "0 0 * * 0");
  same_times("@daily", "0 0 * * *");
  same_times("@midnight", "0 0 * * *");
  same_times("@hourly", "0 * * * *");
  same_times("@HOURLY", "0 * * * *");
}

static void every_macro_is_an_interval(void **state) {
  (void)state;
  chime_cron_expr *c = cron("@every 1h 30m");
  chime_tz *tz = zone("UTC");
  chime_ns d = 0, next = 0, times[3];
  assert_int_equal(chime_cron_interval(c, &d), 0);
  assert_int_equal(d, CHIME_MIN(90));
  assert_int_equal(chime_cron_next(c, tz, 12345, &next), 0);
  assert_int_equal(next, 12345 + CHIME_MIN(90));
  assert_int_equal(chime_cron_next_n(c, tz, 0, times, 3), 3);
  assert_int_equal(times[2], CHIME_MIN(270));
  assert_int_equal(chime_cron_next(c, tz, INT64_MAX - CHIME_MIN(89), &next), -ERANGE);
  chime_cron_free(c);
  c = cron("@every 250ms");
  assert_int_equal(chime_cron_next(c, tz, CHIME_SEC(10), &next), 0);
  assert_int_equal(next, CHIME_MS(10250));
  chime_cron_free(c);
  /* Other expressions have no interval. */
  c = cron("@hourly");
  d = 7;
  assert_int_equal(chime_cron_interval(c, &d), -EINVAL);
  assert_int_equal(d, 7);
  assert_int_equal(chime_cron_interval(NULL, &d), -EINVAL);
  assert_int_equal(chime_cron_interval(c, NULL), -EINVAL);
  chime_cron_free(c);
  chime_tz_free(tz);
}

/* ---- days by the month's shape, years, the crontab syntax ------------------------- */

static void last_day_of_month_and_days_before_it(void **state) {
  (void)state;
  FIRES("0 0 L * *", "Europe/Berlin", "2026-01-15 00:00:00", "2026-01-31 00:00:00 CET", "2026-02-28 00:00:00 CET",
        "2026-03-31 00:00:00 CEST", "2026-04-30 00:00:00 CEST");
  FIRES("0 0 L 2 *", "America/New_York", "2027-06-01 00:00:00", "2028-02-29 00:00:00 EST", "2029-02-28 00:00:00 EST");
  FIRES("0 12 L-3 * *", "America/New_York", "2026-01-01 00:00:00", "2026-01-28 12:00:00 EST",
        "2026-02-25 12:00:00 EST", "2026-03-28 12:00:00 EDT", "2026-04-27 12:00:00 EDT");
  /* L-30 is the 1st of a 31-day month, and no day of a shorter one. */
  FIRES("0 0 l-30 * *", "UTC", "2026-01-01 00:00:00", "2026-03-01 00:00:00 UTC", "2026-05-01 00:00:00 UTC",
        "2026-07-01 00:00:00 UTC", "2026-08-01 00:00:00 UTC");
  same_times("0 0 L-0 * *", "0 0 L * *");
  same_times("0 0 L,15 * *", "0 0 15,L * *");
}

static void nearest_weekday_stays_in_its_month(void **state) {
  (void)state;
  /* Jan 15 2026 is a Thursday; Feb 15 and Mar 15 are Sundays (Monday
   * after); Aug 15 is a Saturday (Friday before). */
  FIRES("0 9 15W * *", "Europe/Berlin", "2026-01-01 00:00:00", "2026-01-15 09:00:00 CET", "2026-02-16 09:00:00 CET",
        "2026-03-16 09:00:00 CET");
  FIRES("0 9 15W 8 *", "America/New_York", "2026-01-01 00:00:00", "2026-08-14 09:00:00 EDT");
  /* Aug 1 2026 is a Saturday: not Friday Jul 31 but Monday the 3rd; Nov 1
   * is a Sunday: Monday the 2nd. */
  FIRES("0 9 1W 8,11 *", "Europe/Berlin", "2026-01-01 00:00:00", "2026-08-03 09:00:00 CEST",
        "2026-11-02 09:00:00 CET");
  /* May 31 2026 is a Sunday: back to Friday the 29th; January's 31st a
   * Saturday: Friday the 30th; April has no 31st: no run. */
  FIRES("0 9 31W 1,4,5 *", "America/New_York", "2026-01-01 00:00:00", "2026-01-30 09:00:00 EST",
        "2026-05-29 09:00:00 EDT", "2027-01-29 09:00:00 EST");
  /* The last weekday: Jan 31 2026 Saturday, Feb 28 Saturday, May 31 Sunday. */
  FIRES("0 9 LW * *", "Europe/Berlin", "2026-01-01 00:00:00", "2026-01-30 09:00:00 CET", "2026-02-27 09:00:00 CET",
        "2026-03-31 09:00:00 CEST", "2026-04-30 09:00:00 CEST", "2026-05-29 09:00:00 CEST");
}

static void nth_and_last_weekday_of_the_month(void **state) {
  (void)state;
  FIRES("0 12 * * 5#1", "Europe/Berlin", "2026-01-01 00:00:00", "2026-01-02 12:00:00 CET", "2026-02-06 12:00:00 CET",
        "2026-03-06 12:00:00 CET", "2026-04-03 12:00:00 CEST", "2026-05-01 12:00:00 CEST");
  same_times("0 12 * * fri#1", "0 12 * * 5#1");
  /* Fifth Mondays of 2026: March, June, August, November. */
  FIRES("0 12 * * mon#5", "America/New_York", "2026-01-01 00:00:00", "2026-03-30 12:00:00 EDT",
        "2026-06-29 12:00:00 EDT", "2026-08-31 12:00:00 EDT", "2026-11-30 12:00:00 EST");
  FIRES("0 18 * * 5L", "America/New_York", "2026-01-01 00:00:00", "2026-01-30 18:00:00 EST",
        "2026-02-27 18:00:00 EST", "2026-03-27 18:00:00 EDT", "2026-04-24 18:00:00 EDT");
  same_times("0 18 * * friL", "0 18 * * 5L");
  same_times("0 18 * * 7L", "0 18 * * 0l");
  same_times("0 18 * * 7#2", "0 18 * * sun#2");
  /* Either day field, by the classic rule: the last day, and the last Friday. */
  FIRES("0 0 L * 5L", "UTC", "2026-01-01 00:00:00", "2026-01-30 00:00:00 UTC", "2026-01-31 00:00:00 UTC",
        "2026-02-27 00:00:00 UTC", "2026-02-28 00:00:00 UTC");
  /* With a '*' day-of-month, both: the 2nd Tuesday only if it is in 8-14, always. */
  same_times("0 0 */1 * 2#2", "0 0 * * tue#2");
}

/* The days a month's shape names are local dates: the daylight saving
 * rules hold on them as on any other. */
static void shaped_days_follow_the_daylight_saving_rules(void **state) {
  (void)state;
  /* Europe changes on the last Sunday of March and of October. */
  FIRES("30 2 * 3 0L", "Europe/Berlin", "2026-01-01 00:00:00", "2026-03-29 03:00:00 CEST",
        "2027-03-28 03:00:00 CEST");
  FIRES("30 2 * 10 7L", "Europe/Berlin", "2026-01-01 00:00:00", "2026-10-25 02:30:00 CEST",
        "2027-10-31 02:30:00 CEST");
  /* The US on the second Sunday of March and the first of November. */
  FIRES("30 2 * 3 0#2", "America/New_York", "2026-01-01 00:00:00", "2026-03-08 03:00:00 EDT",
        "2027-03-14 03:00:00 EDT");
  FIRES("30 1 * 11 0#1", "America/New_York", "2026-06-01 00:00:00", "2026-11-01 01:30:00 EDT",
        "2027-11-07 01:30:00 EDT");
  FIRES("30 * 1 11 0#1", "America/New_York", "2026-11-01 04:00:00", "2026-11-01 00:30:00 EDT",
        "2026-11-01 01:30:00 EDT", "2026-11-01 01:30:00 EST", "2026-11-01 02:30:00 EST");
}

static void year_field_names_years(void **state) {
  (void)state;
  syntax = CHIME_CRON_CRONTAB;
  FIRES("0 0 1 1 * 2027", "Europe/Berlin", "2026-05-01 00:00:00", "2027-01-01 00:00:00 CET");
  FIRES("0 0 29 2 * 2027-2033", "America/New_York", "2026-05-01 00:00:00", "2028-02-29 00:00:00 EST",
        "2032-02-29 00:00:00 EST");
  FIRES("0 12 * * 5#1 */10", "UTC", "2029-12-01 00:00:00", "2030-01-04 12:00:00 UTC", "2030-02-01 12:00:00 UTC");
  chime_cron_expr *c = cron("0 0 1 1 * 2027");
  chime_tz *tz = zone("UTC");
  chime_ns times[3], next = 7;
  assert_int_equal(chime_cron_next_n(c, tz, utc("2026-01-01 00:00:00"), times, 3), 1);
  assert_int_equal(chime_cron_next(c, tz, utc("2027-01-01 00:00:00"), &next), -ERANGE);
  assert_int_equal(next, 7);
  chime_cron_free(c);
  /* A year is not '*': years before 1970 and after 2099 match only '*'. */
  c = cron("0 0 1 1 * 1970-2099");
  assert_int_equal(chime_cron_next(c, tz, utc("1960-01-01 00:00:00"), &next), 0);
  assert_int_equal(next, utc("1970-01-01 00:00:00"));
  assert_int_equal(chime_cron_next(c, tz, utc("2099-01-01 00:00:00"), &next), -ERANGE);
  chime_cron_free(c);
  c = cron("0 0 1 1 * *");
  assert_int_equal(chime_cron_next(c, tz, utc("2099-01-01 00:00:00"), &next), 0);
  assert_int_equal(next, utc("2100-01-01 00:00:00"));
  chime_cron_free(c);
  chime_tz_free(tz);
  syntax = CHIME_CRON_CHIME;
  /* Seven fields: seconds first and year last, in either syntax. */
  FIRES("15 0 0 1 1 * 2027,2029", "UTC", "2026-05-01 00:00:00", "2027-01-01 00:00:15 UTC", "2029-01-01 00:00:15 UTC");
  same_times("0 30 2 * * * *", "30 2 * * *");
}

/* The rule of chime.h: six fields are seconds first in chime's syntax and
 * year last in the crontab syntax; five and seven mean the same in both. */
static void six_fields_depend_on_the_syntax_and_nothing_else(void **state) {
  (void)state;
  FIRES("*/5 * * * * *", "UTC", "2026-05-01 10:00:00", "2026-05-01 10:00:05 UTC", "2026-05-01 10:00:10 UTC");
  syntax = CHIME_CRON_CRONTAB;
  FIRES("*/5 * * * * *", "UTC", "2026-05-01 10:00:00", "2026-05-01 10:05:00 UTC", "2026-05-01 10:10:00 UTC");
  FIRES("30 2 * * *", "UTC", "2026-05-01 10:00:00", "2026-05-02 02:30:00 UTC");
  FIRES("0 30 2 * * * *", "UTC", "2026-05-01 10:00:00", "2026-05-02 02:30:00 UTC");
  same_times("@daily", "0 0 * * *");
  refuses("0 0 * * * 1969", 11, "year field: 1969 is out of range 1970-2099");
  refuses("0 0 * * * 2100", 11, "year field: 2100 is out of range 1970-2099");
  refuses("0 0 * * * jan", 11, "year field: expected a number 1970-2099, found 'jan'");
  refuses("0 0 29 2 * 2027", 5,
          "day-of-month field: no day given occurs in the months and years given, so the expression never matches");
  refuses("0 0 * * * * * *", 15, "expected 5, 6 or 7 fields, found 8");
  syntax = CHIME_CRON_CHIME;
  /* In chime's syntax a year in the sixth field is refused, with the rule. */
  refuses("0 0 * * * 2026", 11,
          "day-of-week field: 2026 is out of range 0-7 (six fields are seconds first here: for a year, give seven, "
          "seconds first and year last)");
  chime_cron_expr *c = NULL;
  assert_int_equal(chime_cron_parse_syntax("* * * * *", (chime_cron_syntax)2, &c, NULL), -EINVAL);
  assert_int_equal(chime_cron_parse_syntax("* * * * *", (chime_cron_syntax)-1, &c, NULL), -EINVAL);
  assert_null(c);
}

static void shaped_days_are_refused_where_they_mean_nothing(void **state) {
  (void)state;
  refuses("L * * * *", 1, "minute field: L (last) is for day-of-month and day-of-week only");
  refuses("0 L * * *", 3, "hour field: L (last) is for day-of-month and day-of-week only");
  refuses("0 0 * L *", 7, "month field: L (last) is for day-of-month and day-of-week only");
  refuses("5W * * * *", 2, "minute field: W (nearest weekday) is for day-of-month only");
  refuses("0 0 * * 5W", 10, "day-of-week field: W (nearest weekday) is for day-of-month only");
  refuses("0 0 5#1 * *", 6, "day-of-month field: # (nth weekday) is for day-of-week only");
  refuses("0 0 * * L", 9, "day-of-week field: L alone names no day: 5L is the last Friday, 6 is Saturday");
  refuses("0 0 W * *", 5, "day-of-month field: W follows a day (15W) or L (LW)");
  refuses("0 0 32W * *", 5, "day-of-month field: 32 is out of range 1-31");
  refuses("0 0 0W * *", 5, "day-of-month field: 0 is out of range 1-31");
  refuses("0 0 L-31 * *", 7, "day-of-month field: L-n counts 0 to 30 days back from the month's last");
  refuses("0 0 L- * *", 7, "day-of-month field: L-n counts 0 to 30 days back from the month's last");
  refuses("0 0 * * 5#6", 11, "day-of-week field: 5#6: the nth weekday of a month is #1 to #5");
  refuses("0 0 * * 5#0", 11, "day-of-week field: 5#0: the nth weekday of a month is #1 to #5");
  refuses("0 0 * * 5#", 11, "day-of-week field: 5#: the nth weekday of a month is #1 to #5");
  refuses("0 0 * * 8L", 9, "day-of-week field: 8 is out of range 0-7");
  refuses("0 0 1-5W * *", 8, "day-of-month field: W follows a single day (15W), not a range or a step");
  refuses("0 0 * * 1-5L", 12, "day-of-week field: L follows a single weekday (5L, 5#3), not a range or a step");
  refuses("0 0 L/2 * *", 6, "day-of-month field: unexpected '/' after L");
  refuses("0 0 LW-1 * *", 7, "day-of-month field: unexpected '-' after LW");
  refuses("0 0 * * 5L-6", 11, "day-of-week field: unexpected '-' after 5L");
  refuses("0 0 * * 5#2#3", 12, "day-of-week field: unexpected '#' after 5#2");
  /* A day that never comes. */
  refuses("0 0 L-30 2 *", 5, "day-of-month field: no day given occurs in the months given, so the expression never matches");
  refuses("0 0 31W 4,6 *", 5, "day-of-month field: no day given occurs in the months given, so the expression never matches");
  /* Rare is not never: a fifth Sunday in February (2032, 2060, ...). */
  chime_cron_free(cron("0 0 * 2 0#5"));
}

/* ---- errors ------------------------------------------------------------------ */

static void parse_counts_fields(void **state) {
  (void)state;
  refuses("", 1, "expected 5, 6 or 7 fields, found 0");
  refuses("   ", 1, "expected 5, 6 or 7 fields, found 0");
  refuses("* * * *", 8, "expected 5, 6 or 7 fields, found 4");
  refuses("0 0 * * * * * *", 15, "expected 5, 6 or 7 fields, found 8");
  refuses("1 2 3 4 5 6 7 8", 15, "expected 5, 6 or 7 fields, found 8");
}

static void parse_reports_values_out_of_range(void **state) {
  (void)state;
  refuses("61 * * * *", 1, "minute field: 61 is out of range 0-59");
  refuses("0 24 * * *", 3, "hour field: 24 is out of range 0-23");
  refuses("0 0 0 * *", 5, "day-of-month field: 0 is out of range 1-31");
  refuses("0 0 32 * *", 5, "day-of-month field: 32 is out of range 1-31");
  refuses("0 0 * 13 *", 7, "month field: 13 is out of range 1-12");
  refuses("0 0 * * 8", 9, "day-of-week field: 8 is out of range 0-7");
  refuses("60 * * * * *", 1, "second field: 60 is out of range 0-59");
  refuses("0 1-99 * * *", 5, "hour field: 99 is out of range 0-23");
  refuses("99999999999999999999 * * * *", 1, "minute field: 99999999999999999999 is out of range 0-59");
}

static void parse_reports_unknown_names(void **state) {
  (void)state;
  refuses("0 0 * foo *", 7, "month field: unknown name 'foo'");
  refuses("0 0 * * monday", 9, "day-of-week field: unknown name 'monday'");
  refuses("0 0 * jan-xyz *", 11, "month field: unknown name 'xyz'");
  refuses("0 jan * * *", 3, "hour field: expected a number 0-23, found 'jan'");
  refuses("x * * * *", 1, "minute field: expected a number 0-59, found 'x'");
}

static void parse_reports_bad_steps_and_ranges(void **state) {
  (void)state;
  refuses("*/0 * * * *", 3, "minute field: step 0 (a step must be at least 1)");
  refuses("0 0 1-9/0 * *", 9, "day-of-month field: step 0 (a step must be at least 1)");
  refuses("*/ * * * *", 3, "minute field: expected a step (a number) after '/'");
  refuses("*/x * * * *", 3, "minute field: expected a step (a number) after '/'");
  refuses("5-1 * * * *", 1, "minute field: range 5-1 goes backwards (the start must not be after the end)");
  refuses("0 0 * * fri-mon", 9,
          "day-of-week field: range fri-mon goes backwards (the start must not be after the end)");
  refuses("1- * * * *", 3, "minute field: expected a value after '-'");
}

static void parse_reports_unexpected_characters(void **state) {
  (void)state;
  refuses("5x * * * *", 2, "minute field: unexpected 'x' after 5");
  refuses("*-5 * * * *", 2, "minute field: unexpected '-' after *");
  refuses("1-5-7 * * * *", 4, "minute field: unexpected '-' after 1-5");
  refuses("1,,2 * * * *", 3, "minute field: unexpected ',' (expected a number or '*')");
  refuses("1, * * * *", 3, "minute field: expected a value after ','");
  refuses("0 0 ? * *", 5, "day-of-month field: unexpected '?' (expected a number or '*')");
  refuses("0 0 * * #", 9, "day-of-week field: unexpected '#' (expected a number, a name or '*')");
  refuses("\xff * * * *", 1, "minute field: unexpected '\\xff' (expected a number or '*')");
}

static void parse_reports_bad_macros(void **state) {
  (void)state;
  refuses("@fortnightly", 1, "unknown macro '@fortnightly'");
  refuses("  @", 3, "unknown macro '@'");
  refuses("@daily now", 8, "unexpected 'now' after @daily");
  refuses("@every", 7, "@every needs a duration, such as 5m or 1h30m");
  refuses("@every   ", 10, "@every needs a duration, such as 5m or 1h30m");
  refuses("@every 0s", 8, "@every: the interval must be longer than 0");
  refuses("@every soon", 8, "@every: 'soon' is not a duration (such as 5m or 1h30m)");
  refuses("@every -5m", 8, "@every: '-5m' is not a duration (such as 5m or 1h30m)");
  refuses("@every 99999999999h", 8, "@every: the duration '99999999999h' is too long");
  refuses("@every5m", 1, "unknown macro '@every5m'");
}

static void parse_refuses_expressions_that_never_match(void **state) {
  (void)state;
  const char *msg = "day-of-month field: no day given occurs in the months given, so the expression never matches";
  refuses("0 0 30 2 *", 5, msg);
  refuses("0 0 31 4,6,9,11 *", 5, msg);
  refuses("0 0 30,31 feb *", 5, msg);
  refuses("0 0 0 31 2 */7", 7, msg);
  /* Rare is not never. */
  chime_cron_free(cron("0 0 29 2 *"));
  chime_cron_free(cron("0 0 31 * *"));
  chime_cron_free(cron("0 0 30 2 mon"));
  chime_cron_free(cron("0 0 29 2 */7"));
}

static void parse_checks_its_arguments(void **state) {
  (void)state;
  chime_cron_expr *c = NULL;
  assert_int_equal(chime_cron_parse(NULL, &c, NULL), -EINVAL);
  assert_int_equal(chime_cron_parse("* * * * *", NULL, NULL), -EINVAL);
  assert_int_equal(chime_cron_parse("61 * * * *", &c, NULL), -EINVAL); /* no error wanted */
  assert_null(c);
  /* A long message is cut to fit, NUL-terminated. */
  chime_cron_error e;
  assert_int_equal(chime_cron_parse("0 0 * * abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz", &c, &e), -EINVAL);
  assert_int_equal(e.column, 9);
  assert_string_equal(e.message, "day-of-week field: unknown name 'abcdefghijklmnopqrstuvwx...'");
  chime_cron_free(NULL);
}

/* ---- next fire times in UTC -------------------------------------------------- */

static void next_skips_short_months(void **state) {
  (void)state;
  FIRES("0 0 31 * *", "UTC", "2026-01-01 00:00:00", "2026-01-31 00:00:00 UTC", "2026-03-31 00:00:00 UTC",
        "2026-05-31 00:00:00 UTC", "2026-07-31 00:00:00 UTC", "2026-08-31 00:00:00 UTC", "2026-10-31 00:00:00 UTC",
        "2026-12-31 00:00:00 UTC", "2027-01-31 00:00:00 UTC");
  FIRES("0 12 30 * *", "UTC", "2027-01-30 12:00:00", "2027-03-30 12:00:00 UTC");
}

static void next_finds_leap_days_and_knows_2100_is_not_leap(void **state) {
  (void)state;
  FIRES("0 0 29 2 *", "UTC", "2023-06-01 00:00:00", "2024-02-29 00:00:00 UTC", "2028-02-29 00:00:00 UTC");
  FIRES("0 0 29 2 *", "UTC", "2096-03-01 00:00:00", "2104-02-29 00:00:00 UTC");
  FIRES("0 0 29 2 *", "UTC", "1999-03-01 00:00:00", "2000-02-29 00:00:00 UTC"); /* 2000 is */
  FIRES("0 0 * 2 *", "UTC", "2100-02-27 12:00:00", "2100-02-28 00:00:00 UTC", "2101-02-01 00:00:00 UTC");
  /* Sunday Feb 29ths: 2032, then 2060. */
  FIRES("0 0 29 2 */7", "UTC", "2026-01-01 00:00:00", "2032-02-29 00:00:00 UTC", "2060-02-29 00:00:00 UTC");
}

static void next_rolls_over_the_year(void **state) {
  (void)state;
  FIRES("59 23 31 12 *", "UTC", "2026-12-31 23:59:00", "2027-12-31 23:59:00 UTC");
  FIRES("0 0 * * *", "UTC", "2026-12-31 12:00:00", "2027-01-01 00:00:00 UTC", "2027-01-02 00:00:00 UTC");
  FIRES("59 59 23 31 12 *", "UTC", "2026-12-31 23:59:58", "2026-12-31 23:59:59 UTC", "2027-12-31 23:59:59 UTC");
}

static void next_is_strictly_after_on_a_whole_second(void **state) {
  (void)state;
  chime_cron_expr *c = cron("30 * * * *");
  chime_tz *tz = zone("UTC");
  chime_ns t = utc("2026-05-01 10:30:00"), next = 0;
  assert_int_equal(chime_cron_next(c, tz, t, &next), 0);
  assert_int_equal(next, utc("2026-05-01 11:30:00"));
  assert_int_equal(chime_cron_next(c, tz, t - 1, &next), 0);
  assert_int_equal(next, t);
  assert_int_equal(chime_cron_next(c, tz, t - CHIME_MS(1500), &next), 0);
  assert_int_equal(next, t);
  assert_int_equal(chime_cron_next(c, tz, t + 1, &next), 0);
  assert_int_equal(next, utc("2026-05-01 11:30:00"));
  /* Before 1970 too. */
  assert_int_equal(chime_cron_next(c, tz, utc("1960-01-01 00:00:00") - 1, &next), 0);
  assert_int_equal(next, utc("1960-01-01 00:30:00"));
  chime_cron_free(c);
  c = cron("* * * * * *");
  assert_int_equal(chime_cron_next(c, tz, CHIME_MS(-1500), &next), 0);
  assert_int_equal(next, CHIME_SEC(-1));
  assert_int_equal(chime_cron_next(c, tz, INT64_MIN, &next), 0);
  assert_int_equal(next, CHIME_SEC(INT64_MIN / 1000000000));
  chime_cron_free(c);
  chime_tz_free(tz);
}

static void next_stops_at_the_end_of_chime_ns(void **state) {
  (void)state;
  chime_cron_expr *c = cron("0 0 1 1 *");
  chime_tz *tz = zone("Europe/Berlin");
  chime_ns next = 5, times[4];
  assert_int_equal(chime_cron_next(c, tz, utc("2262-01-01 00:00:00"), &next), -ERANGE);
  assert_int_equal(next, 5);
  assert_int_equal(chime_cron_next_n(c, tz, utc("2259-06-01 00:00:00"), times, 4), 3);
  assert_int_equal(times[2], utc("2261-12-31 23:00:00"));
  assert_int_equal(chime_cron_next(c, tz, INT64_MAX, &next), -ERANGE);
  chime_cron_free(c);
  /* The last second chime_ns holds is 2262-04-11 23:47:16 UTC. */
  c = cron("* * * * * *");
  assert_int_equal(chime_cron_next(c, tz, utc("2262-04-11 23:47:15"), &next), 0);
  assert_int_equal(next, utc("2262-04-11 23:47:16"));
  assert_int_equal(chime_cron_next(c, tz, next, &next), -ERANGE);
  chime_cron_free(c);
  chime_tz_free(tz);
}

static void next_checks_its_arguments(void **state) {
  (void)state;
  chime_cron_expr *c = cron("* * * * *");
  chime_tz *tz = zone("UTC");
  chime_ns next = 5, times[2] = {5, 5};
  assert_int_equal(chime_cron_next(NULL, tz, 0, &next), -EINVAL);
  assert_int_equal(chime_cron_next(c, NULL, 0, &next), -EINVAL);
  assert_int_equal(chime_cron_next(c, tz, 0, NULL), -EINVAL);
  assert_int_equal(chime_cron_next_n(NULL, tz, 0, times, 2), -EINVAL);
  assert_int_equal(chime_cron_next_n(c, NULL, 0, times, 2), -EINVAL);
  assert_int_equal(chime_cron_next_n(c, tz, 0, NULL, 2), -EINVAL);
  assert_int_equal(chime_cron_next_n(c, tz, 0, times, (size_t)INT_MAX + 1), -EINVAL);
  assert_int_equal(next, 5);
  assert_int_equal(times[0], 5);
  assert_int_equal(chime_cron_next_n(c, tz, 0, times, 0), 0);
  chime_cron_free(c);
  chime_tz_free(tz);
}

/* ---- daylight saving time ------------------------------------------------------ */

/* Berlin: 2026-03-29 02:00 CET -> 03:00 CEST (01:00 UTC); 2026-10-25 03:00
 * CEST -> 02:00 CET (01:00 UTC). */
static void berlin_skipped_time_fires_once_at_the_transition(void **state) {
  (void)state;
  FIRES("30 2 * * *", "Europe/Berlin", "2026-03-27 12:00:00", "2026-03-28 02:30:00 CET", "2026-03-29 03:00:00 CEST",
        "2026-03-30 02:30:00 CEST");
  next_is("30 2 * * *", "Europe/Berlin", "2026-03-28 12:00:00", "2026-03-29 01:00:00");
  /* Every minute of the lost hour collapses into one run. */
  FIRES("* 2 * * *", "Europe/Berlin", "2026-03-29 00:58:00", "2026-03-29 03:00:00 CEST", "2026-03-30 02:00:00 CEST");
}

static void berlin_repeated_time_fires_once_at_its_first_occurrence(void **state) {
  (void)state;
  FIRES("30 2 * * *", "Europe/Berlin", "2026-10-24 12:00:00", "2026-10-25 02:30:00 CEST", "2026-10-26 02:30:00 CET");
  next_is("30 2 * * *", "Europe/Berlin", "2026-10-24 12:00:00", "2026-10-25 00:30:00");
  FIRES("*/20 2 * * *", "Europe/Berlin", "2026-10-24 23:30:00", "2026-10-25 02:00:00 CEST", "2026-10-25 02:20:00 CEST",
        "2026-10-25 02:40:00 CEST", "2026-10-26 02:00:00 CET");
}

static void berlin_every_hour_skips_the_lost_hour_and_repeats_the_extra_one(void **state) {
  (void)state;
  FIRES("30 * * * *", "Europe/Berlin", "2026-03-28 23:00:00", "2026-03-29 00:30:00 CET", "2026-03-29 01:30:00 CET",
        "2026-03-29 03:30:00 CEST");
  FIRES("30 * * * *", "Europe/Berlin", "2026-10-24 23:00:00", "2026-10-25 01:30:00 CEST", "2026-10-25 02:30:00 CEST",
        "2026-10-25 02:30:00 CET", "2026-10-25 03:30:00 CET");
  next_is("30 * * * *", "Europe/Berlin", "2026-10-25 00:30:00", "2026-10-25 01:30:00");
}

/* New York: 2026-03-08 02:00 EST -> 03:00 EDT (07:00 UTC); 2026-11-01 02:00
 * EDT -> 01:00 EST (06:00 UTC). */
static void new_york_skipped_time_fires_once_at_the_transition(void **state) {
  (void)state;
  FIRES("30 2 * * *", "America/New_York", "2026-03-07 12:00:00", "2026-03-08 03:00:00 EDT", "2026-03-09 02:30:00 EDT");
  next_is("30 2 * * *", "America/New_York", "2026-03-07 12:00:00", "2026-03-08 07:00:00");
  /* A time after the gap still fires at its own time, once. */
  FIRES("0 3 * * *", "America/New_York", "2026-03-07 12:00:00", "2026-03-08 03:00:00 EDT", "2026-03-09 03:00:00 EDT");
}

static void new_york_repeated_time_fires_once_at_its_first_occurrence(void **state) {
  (void)state;
  FIRES("30 1 * * *", "America/New_York", "2026-10-31 12:00:00", "2026-11-01 01:30:00 EDT", "2026-11-02 01:30:00 EST");
  next_is("30 1 * * *", "America/New_York", "2026-10-31 12:00:00", "2026-11-01 05:30:00");
}

static void new_york_every_hour_skips_the_lost_hour_and_repeats_the_extra_one(void **state) {
  (void)state;
  FIRES("30 * * * *", "America/New_York", "2026-03-08 05:00:00", "2026-03-08 00:30:00 EST", "2026-03-08 01:30:00 EST",
        "2026-03-08 03:30:00 EDT");
  FIRES("30 * * * *", "America/New_York", "2026-11-01 04:00:00", "2026-11-01 00:30:00 EDT", "2026-11-01 01:30:00 EDT",
        "2026-11-01 01:30:00 EST", "2026-11-01 02:30:00 EST");
  next_is("30 * * * *", "America/New_York", "2026-11-01 05:30:00", "2026-11-01 06:30:00");
}

/* Lord Howe moves by 30 minutes: 2026-10-04 02:00 +1030 -> 02:30 +11
 * (2026-10-03 15:30 UTC); 2026-04-05 02:00 +11 -> 01:30 +1030 (2026-04-04
 * 15:00 UTC). */
static void lord_howe_skipped_half_hour_fires_once_at_the_transition(void **state) {
  (void)state;
  FIRES("15 2 * * *", "Australia/Lord_Howe", "2026-10-02 12:00:00", "2026-10-03 02:15:00 +1030",
        "2026-10-04 02:30:00 +11", "2026-10-05 02:15:00 +11");
  next_is("15 2 * * *", "Australia/Lord_Howe", "2026-10-03 12:00:00", "2026-10-03 15:30:00");
  /* 02:30 exists: it is the first minute after the gap. */
  FIRES("30 2 * * *", "Australia/Lord_Howe", "2026-10-03 12:00:00", "2026-10-04 02:30:00 +11",
        "2026-10-05 02:30:00 +11");
  /* 02:00 does not. */
  FIRES("0 2 * * *", "Australia/Lord_Howe", "2026-10-03 12:00:00", "2026-10-04 02:30:00 +11",
        "2026-10-05 02:00:00 +11");
}

static void lord_howe_repeated_half_hour_fires_once_at_its_first_occurrence(void **state) {
  (void)state;
  FIRES("45 1 * * *", "Australia/Lord_Howe", "2026-04-04 12:00:00", "2026-04-05 01:45:00 +11",
        "2026-04-06 01:45:00 +1030");
  next_is("45 1 * * *", "Australia/Lord_Howe", "2026-04-04 12:00:00", "2026-04-04 14:45:00");
  /* 01:15 is not repeated; 02:00 happens once, after the repeat. */
  FIRES("15 1 * * *", "Australia/Lord_Howe", "2026-04-04 12:00:00", "2026-04-05 01:15:00 +11",
        "2026-04-06 01:15:00 +1030");
  FIRES("0 2 * * *", "Australia/Lord_Howe", "2026-04-04 12:00:00", "2026-04-05 02:00:00 +1030");
}

static void lord_howe_every_hour_skips_the_lost_half_hour_and_repeats_the_extra_one(void **state) {
  (void)state;
  FIRES("15 * * * *", "Australia/Lord_Howe", "2026-10-03 13:00:00", "2026-10-04 00:15:00 +1030",
        "2026-10-04 01:15:00 +1030", "2026-10-04 03:15:00 +11");
  FIRES("45 * * * *", "Australia/Lord_Howe", "2026-04-04 13:00:00", "2026-04-05 00:45:00 +11",
        "2026-04-05 01:45:00 +11", "2026-04-05 01:45:00 +1030", "2026-04-05 02:45:00 +1030");
  FIRES("0,30 * * * *", "Australia/Lord_Howe", "2026-10-03 14:00:00", "2026-10-04 01:00:00 +1030",
        "2026-10-04 01:30:00 +1030", "2026-10-04 02:30:00 +11", "2026-10-04 03:00:00 +11");
}

static void seconds_follow_the_same_rules_across_a_transition(void **state) {
  (void)state;
  FIRES("*/20 * * * * *", "America/New_York", "2026-11-01 05:59:00", "2026-11-01 01:59:20 EDT",
        "2026-11-01 01:59:40 EDT", "2026-11-01 01:00:00 EST", "2026-11-01 01:00:20 EST");
  FIRES("*/20 59 1 * * *", "America/New_York", "2026-11-01 05:59:00", "2026-11-01 01:59:20 EDT",
        "2026-11-01 01:59:40 EDT", "2026-11-02 01:59:00 EST");
  FIRES("*/10 30 2 * * *", "Europe/Berlin", "2026-03-29 00:00:00", "2026-03-29 03:00:00 CEST",
        "2026-03-30 02:30:00 CEST", "2026-03-30 02:30:10 CEST");
  FIRES("*/20 59 1 * * *", "America/New_York", "2026-03-08 06:59:30", "2026-03-08 01:59:40 EST",
        "2026-03-09 01:59:00 EDT");
  FIRES("30 59 1 * * *", "Australia/Lord_Howe", "2026-04-04 14:59:00", "2026-04-05 01:59:30 +11",
        "2026-04-06 01:59:30 +1030");
}

static void after_inside_the_repeated_hour(void **state) {
  (void)state;
  /* 01:15 EST is the second 01:15 in New York. */
  FIRES("30 1 * * *", "America/New_York", "2026-11-01 06:15:00", "2026-11-02 01:30:00 EST");
  FIRES("30 * * * *", "America/New_York", "2026-11-01 06:15:00", "2026-11-01 01:30:00 EST", "2026-11-01 02:30:00 EST");
  /* 01:45 EDT: the first 01:30 is past, and the second does not fire. */
  FIRES("30 1 * * *", "America/New_York", "2026-11-01 05:45:00", "2026-11-02 01:30:00 EST");
  FIRES("0 2 * * *", "America/New_York", "2026-11-01 05:45:00", "2026-11-01 02:00:00 EST");
}

static void after_at_the_end_of_a_gap(void **state) {
  (void)state;
  /* The gap's run is at 07:00 UTC; from that instant on the next is the next day. */
  next_is("30 2 * * *", "America/New_York", "2026-03-08 06:59:59", "2026-03-08 07:00:00");
  next_is("30 2 * * *", "America/New_York", "2026-03-08 07:00:00", "2026-03-09 06:30:00");
  next_is("30 * * * *", "America/New_York", "2026-03-08 06:59:59", "2026-03-08 07:30:00");
}

/* The fire times of a year computed by brute force: every minute of the
 * year, its local time from the C library, matched against a predicate
 * written by hand (not parsed).  A schedule whose hours are all of them
 * fires whenever the local time matches.  Any other fires only at the
 * first occurrence of a local time (a local time no later than one seen
 * before is a repeat), and a gap's matching minutes fire at the first
 * minute after it. */
struct ref {
  const char *expr;
  bool (*match)(const struct tm *t);
  bool all_hours;
};

static bool m30(const struct tm *t) { return t->tm_min == 30; }
static bool h2m30(const struct tm *t) { return t->tm_hour == 2 && t->tm_min == 30; }
static bool h1m30(const struct tm *t) { return t->tm_hour == 1 && t->tm_min == 30; }
static bool q1to3(const struct tm *t) { return t->tm_hour >= 1 && t->tm_hour <= 3 && t->tm_min % 15 == 0; }
static bool sun0or45(const struct tm *t) { return t->tm_wday == 0 && (t->tm_min == 0 || t->tm_min == 45); }
static bool h2m15(const struct tm *t) { return t->tm_hour == 2 && t->tm_min == 15; }
static bool h1m45(const struct tm *t) { return t->tm_hour == 1 && t->tm_min == 45; }
static bool first_or_mon(const struct tm *t) {
  return t->tm_hour == 2 && t->tm_min == 0 && (t->tm_mday == 1 || t->tm_wday == 1);
}

static const struct ref refs[] = {
    {"30 * * * *", m30, true},        {"30 2 * * *", h2m30, false},         {"30 1 * * *", h1m30, false},
    {"*/15 1-3 * * *", q1to3, false}, {"0,45 * * * sun", sun0or45, true},   {"15 2 * * *", h2m15, false},
    {"45 1 * * *", h1m45, false},     {"0 2 1 * mon", first_or_mon, false},
};

static void set_env(const char *name, const char *value) {
  if (value)
    setenv(name, value, 1);
  else
    unsetenv(name);
}

/* Compares every expression of refs over the year 2026 in the zone. */
static void matches_brute_force(const char *name) {
  enum { MINUTES = 365 * 24 * 60 };
  chime_ns start = utc("2026-01-01 00:00:00");
  time_t t0 = (time_t)(start / CHIME_SEC(1));
  long *off = malloc(MINUTES * sizeof *off);
  chime_ns *want = malloc(MINUTES * sizeof *want), *got = malloc(MINUTES * sizeof *got);
  assert_non_null(off);
  assert_non_null(want);
  assert_non_null(got);
  char *saved = getenv("TZ") ? strdup(getenv("TZ")) : NULL;
  setenv("TZ", name, 1);
  tzset();
  for (long i = 0; i < MINUTES; i++) {
    time_t t = t0 + i * 60;
    struct tm tm;
    localtime_r(&t, &tm);
    off[i] = tm.tm_gmtoff;
  }
  set_env("TZ", saved);
  tzset();
  free(saved);
  chime_tz *tz = zone(name);
  for (size_t r = 0; r < sizeof refs / sizeof refs[0]; r++) {
    size_t n = 0;
    time_t seen = 0, prev = 0;
    for (long i = 0; i < MINUTES; i++) {
      time_t l = t0 + i * 60 + off[i];
      struct tm tm;
      bool fire = false;
      gmtime_r(&l, &tm);
      if (refs[r].all_hours) {
        fire = refs[r].match(&tm);
      } else {
        fire = refs[r].match(&tm) && (i == 0 || l > seen);
        for (time_t s = prev + 60; i > 0 && s < l && !fire; s += 60) {
          gmtime_r(&s, &tm);
          fire = refs[r].match(&tm);
        }
      }
      if (fire) want[n++] = CHIME_SEC((int64_t)(t0 + i * 60));
      if (i == 0 || l > seen) seen = l;
      prev = l;
    }
    chime_cron_expr *c = cron(refs[r].expr);
    int k = chime_cron_next_n(c, tz, start - 1, got, n + 1);
    chime_cron_free(c);
    assert_int_equal(k, (int)n + 1);
    assert_true(got[n] >= start + CHIME_SEC((int64_t)MINUTES * 60));
    for (size_t i = 0; i < n; i++) {
      if (got[i] == want[i]) continue;
      char g[64], w[64];
      fail_msg("'%s' in %s, run %zu: got %s, want %s", refs[r].expr, name, i, local(tz, got[i], g, sizeof g),
               local(tz, want[i], w, sizeof w));
    }
  }
  chime_tz_free(tz);
  free(off);
  free(want);
  free(got);
}

static void berlin_year_matches_brute_force(void **state) {
  (void)state;
  matches_brute_force("Europe/Berlin");
}

static void new_york_year_matches_brute_force(void **state) {
  (void)state;
  matches_brute_force("America/New_York");
}

static void lord_howe_year_matches_brute_force(void **state) {
  (void)state;
  matches_brute_force("Australia/Lord_Howe");
}

/* ---- time zones ------------------------------------------------------------------ */

static void tz_format_writes_local_time_and_abbreviation(void **state) {
  (void)state;
  chime_tz *tz = zone("Europe/Berlin");
  char buf[64];
  assert_int_equal(chime_tz_format(tz, utc("2026-03-29 01:00:00"), buf, sizeof buf), 24);
  assert_string_equal(buf, "2026-03-29 03:00:00 CEST");
  assert_string_equal(local(tz, utc("2026-03-29 00:59:59") + CHIME_MS(999), buf, sizeof buf),
                      "2026-03-29 01:59:59 CET");
  assert_string_equal(local(tz, utc("1969-12-31 23:00:00") - 1, buf, sizeof buf), "1969-12-31 23:59:59 CET");
  /* Cut to fit, returning the whole length, as snprintf does. */
  memset(buf, 'x', sizeof buf);
  assert_int_equal(chime_tz_format(tz, utc("2026-03-29 01:00:00"), buf, 11), 24);
  assert_string_equal(buf, "2026-03-29");
  assert_int_equal(chime_tz_format(NULL, 0, buf, sizeof buf), -EINVAL);
  assert_int_equal(chime_tz_format(tz, 0, NULL, sizeof buf), -EINVAL);
  assert_int_equal(chime_tz_format(tz, 0, buf, 0), -EINVAL);
  chime_tz_free(tz);
}

static void tz_name_is_the_name_given(void **state) {
  (void)state;
  chime_tz *tz = zone("America/New_York");
  assert_string_equal(chime_tz_name(tz), "America/New_York");
  chime_tz_free(tz);
  assert_null(chime_tz_name(NULL));
  chime_tz_free(NULL);
}

static void tz_rules_apply_beyond_the_table(void **state) {
  (void)state;
  chime_tz *tz = zone("Europe/Berlin");
  char buf[64];
  assert_string_equal(local(tz, utc("2100-07-01 10:00:00"), buf, sizeof buf), "2100-07-01 12:00:00 CEST");
  assert_string_equal(local(tz, utc("2100-12-01 10:00:00"), buf, sizeof buf), "2100-12-01 11:00:00 CET");
  /* The last Sunday of March 2100 is the 28th. */
  assert_string_equal(local(tz, utc("2100-03-28 00:59:59"), buf, sizeof buf), "2100-03-28 01:59:59 CET");
  assert_string_equal(local(tz, utc("2100-03-28 01:00:00"), buf, sizeof buf), "2100-03-28 03:00:00 CEST");
  assert_string_equal(local(tz, utc("2262-04-11 12:00:00"), buf, sizeof buf), "2262-04-11 14:00:00 CEST");
  chime_tz_free(tz);
  FIRES("30 2 * * *", "Europe/Berlin", "2100-03-27 12:00:00", "2100-03-28 03:00:00 CEST", "2100-03-29 02:30:00 CEST");
  FIRES("30 2 * * *", "Europe/Berlin", "2100-10-30 12:00:00", "2100-10-31 02:30:00 CEST", "2100-11-01 02:30:00 CET");
}

static void tz_load_refuses_zones_the_database_does_not_have(void **state) {
  (void)state;
  chime_tz *untouched = (chime_tz *)&untouched, *tz = untouched;
  assert_int_equal(chime_tz_load("Mars/Olympus", &tz), -ENOENT);
  assert_int_equal(chime_tz_load("Europe", &tz), -ENOENT);              /* a directory */
  assert_int_equal(chime_tz_load("Europe/Berlin/Mitte", &tz), -ENOENT); /* below a file */
  assert_int_equal(chime_tz_load("Utc", &tz), -ENOENT);                 /* names are exact */
  assert_ptr_equal(tz, untouched);
}

static void tz_load_refuses_names_that_are_not_zone_names(void **state) {
  (void)state;
  chime_tz *untouched = (chime_tz *)&untouched, *tz = untouched;
  char long_name[300];
  memset(long_name, 'A', sizeof long_name - 1);
  long_name[sizeof long_name - 1] = '\0';
  const char *bad[] = {"../etc/passwd",     "/etc/passwd", "Europe/../../etc/passwd", "Europe/Ber lin",
                       "Europe/Berlin;",    "zone.tab",    "Europe\\Berlin",          "Europe/Berlin\n",
                       "\xc3\xa9t\xc3\xa9", long_name};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    if (chime_tz_load(bad[i], &tz) != -EINVAL) fail_msg("'%s' was not refused", bad[i]);
  assert_int_equal(chime_tz_load("UTC", NULL), -EINVAL);
  assert_ptr_equal(tz, untouched);
  /* A file of the database that is not a zone is a corrupt zone. */
  assert_int_equal(chime_tz_load("leapseconds", &tz), -EINVAL);
  assert_ptr_equal(tz, untouched);
}

/* A directory of zones made by the test, used as TZDIR. */
struct tzdir {
  char path[64];
  char *saved;
};

static void tzdir_open(struct tzdir *d) {
  strcpy(d->path, "/tmp/chime-tzdir-XXXXXX");
  assert_non_null(mkdtemp(d->path));
  d->saved = getenv("TZDIR") ? strdup(getenv("TZDIR")) : NULL;
  setenv("TZDIR", d->path, 1);
}

static void tzdir_write(struct tzdir *d, const char *name, const void *data, size_t len) {
  char path[128];
  snprintf(path, sizeof path, "%s/%s", d->path, name);
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(data, 1, len, f), len);
  fclose(f);
}

static void tzdir_close(struct tzdir *d, const char *name) {
  char path[128];
  snprintf(path, sizeof path, "%s/%s", d->path, name);
  unlink(path);
  rmdir(d->path);
  set_env("TZDIR", d->saved);
  free(d->saved);
}

/* The bytes of a zone of the system's database. */
static size_t read_zone(const char *name, unsigned char *buf, size_t size) {
  char path[256];
  snprintf(path, sizeof path, "/usr/share/zoneinfo/%s", name);
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  size_t n = fread(buf, 1, size, f);
  fclose(f);
  assert_true(n > 0 && n < size);
  return n;
}

static void tz_load_refuses_corrupt_files(void **state) {
  (void)state;
  static unsigned char berlin[8192], bad[8192];
  size_t n = read_zone("Europe/Berlin", berlin, sizeof berlin);
  struct tzdir d;
  tzdir_open(&d);
  chime_tz *tz = NULL;
  /* The file itself loads from the test's directory. */
  tzdir_write(&d, "Zone", berlin, n);
  assert_int_equal(chime_tz_load("Zone", &tz), 0);
  chime_tz_free(tz);
  /* Cut anywhere, it is refused. */
  for (size_t len = 0; len < n; len++) {
    tzdir_write(&d, "Zone", berlin, len);
    int rc = chime_tz_load("Zone", &tz);
    if (rc != -EINVAL) fail_msg("cut to %zu bytes: %d", len, rc);
  }
  /* A wrong magic, a type index out of range, times out of order, a
   * broken footer. */
  memcpy(bad, berlin, n);
  bad[0] = 'X';
  tzdir_write(&d, "Zone", bad, n);
  assert_int_equal(chime_tz_load("Zone", &tz), -EINVAL);
  /* The counts of the version 1 header: isut, isstd, leap, time, type, char. */
  size_t cnt[6];
  for (int i = 0; i < 6; i++)
    cnt[i] = (size_t)berlin[20 + 4 * i] << 24 | (size_t)berlin[21 + 4 * i] << 16 | (size_t)berlin[22 + 4 * i] << 8 |
             berlin[23 + 4 * i];
  assert_true(cnt[3] > 21 && cnt[2] == 0); /* version 2 has the same counts */
  size_t v1 = 44 + cnt[3] * 5 + cnt[4] * 6 + cnt[5] + cnt[1] + cnt[0];
  size_t idx = v1 + 44 + cnt[3] * 8; /* the version 2 type indices */
  memcpy(bad, berlin, n);
  bad[idx + 10] = (unsigned char)cnt[4];
  tzdir_write(&d, "Zone", bad, n);
  assert_int_equal(chime_tz_load("Zone", &tz), -EINVAL);
  memcpy(bad, berlin, n);
  memcpy(bad + v1 + 44 + 8 * 20, berlin + v1 + 44 + 8 * 21, 8);
  tzdir_write(&d, "Zone", bad, n);
  assert_int_equal(chime_tz_load("Zone", &tz), -EINVAL);
  const char *footers[] = {"CET-1CEST,M3.5.0", "CET-1CEST,M3.5.0,M10.5.8",     "CET",   "CET-1CEST,M13.5.0,M10.5.0/3",
                           "<CET-1",           "CET-1CEST,M3.5.0,M10.5.0/168", "CET-25"};
  size_t body = n - 1; /* just after the newline that opens the footer */
  while (berlin[body - 1] != '\n')
    body--;
  for (size_t i = 0; i < sizeof footers / sizeof footers[0]; i++) {
    memcpy(bad, berlin, body);
    size_t len = body + (size_t)sprintf((char *)bad + body, "%s\n", footers[i]);
    tzdir_write(&d, "Zone", bad, len);
    if (chime_tz_load("Zone", &tz) != -EINVAL) fail_msg("footer '%s' was not refused", footers[i]);
  }
  tzdir_close(&d, "Zone");
}

static void tz_load_reads_every_tzif_version(void **state) {
  (void)state;
  static unsigned char berlin[8192], copy[8192];
  size_t n = read_zone("Europe/Berlin", berlin, sizeof berlin);
  size_t cnt[6];
  for (int i = 0; i < 6; i++)
    cnt[i] = (size_t)berlin[20 + 4 * i] << 24 | (size_t)berlin[21 + 4 * i] << 16 | (size_t)berlin[22 + 4 * i] << 8 |
             berlin[23 + 4 * i];
  size_t v1 = 44 + cnt[3] * 5 + cnt[4] * 6 + cnt[5] + cnt[1] + cnt[0];
  struct tzdir d;
  tzdir_open(&d);
  char buf[64];
  for (int version = 1; version <= 4; version++) {
    /* Version 1: the 32-bit block alone, no footer. */
    memcpy(copy, berlin, n);
    copy[4] = version == 1 ? 0 : (unsigned char)('0' + version);
    copy[v1 + 4] = copy[4];
    tzdir_write(&d, "Zone", copy, version == 1 ? v1 : n);
    chime_tz *tz = zone("Zone");
    assert_string_equal(local(tz, utc("2026-07-01 10:00:00"), buf, sizeof buf), "2026-07-01 12:00:00 CEST");
    assert_string_equal(local(tz, utc("2026-12-01 10:00:00"), buf, sizeof buf), "2026-12-01 11:00:00 CET");
    chime_tz_free(tz);
  }
  /* Version 2 with an empty version 1 block (all counts 0). */
  memcpy(copy, berlin, 44);
  memset(copy + 20, 0, 24);
  memcpy(copy + 44, berlin + v1, n - v1);
  tzdir_write(&d, "Zone", copy, 44 + n - v1);
  chime_tz *tz = zone("Zone");
  assert_string_equal(local(tz, utc("2030-07-01 10:00:00"), buf, sizeof buf), "2030-07-01 12:00:00 CEST");
  chime_tz_free(tz);
  tzdir_close(&d, "Zone");
}

static void tz_load_takes_off_leap_seconds(void **state) {
  (void)state;
  if (access("/usr/share/zoneinfo/right/Europe/Berlin", R_OK) != 0) skip();
  chime_tz *right = zone("right/Europe/Berlin"), *posix = zone("Europe/Berlin");
  const char *times[] = {"2016-03-27 00:59:59", "2016-03-27 01:00:00", "2016-10-30 00:59:59", "2016-10-30 01:00:00"};
  for (size_t i = 0; i < sizeof times / sizeof times[0]; i++) {
    char a[64], b[64];
    assert_string_equal(local(right, utc(times[i]), a, sizeof a), local(posix, utc(times[i]), b, sizeof b));
  }
  chime_tz_free(right);
  chime_tz_free(posix);
}

static void local_reads(const char *value, const char *at, const char *want);

/* zic writes a "right/" file whose leap second table expires (every one
 * since 2021) with an empty footer, as no rule can say where leap seconds
 * fall after the expiry; its table ends there, in whatever offset was in
 * force.  Leap seconds aside, the zone's rules are those of its twin
 * outside "right/", whose footer gives them. */
static void tz_load_gives_leap_second_zones_their_rules_past_the_table(void **state) {
  (void)state;
  if (access("/usr/share/zoneinfo/right/Europe/Berlin", R_OK) != 0) skip();
  chime_tz *right = zone("right/Europe/Berlin");
  char buf[64];
  assert_string_equal(local(right, utc("2030-12-01 10:00:00"), buf, sizeof buf), "2030-12-01 11:00:00 CET");
  assert_string_equal(local(right, utc("2031-07-01 10:00:00"), buf, sizeof buf), "2031-07-01 12:00:00 CEST");
  assert_string_equal(chime_tz_name(right), "right/Europe/Berlin");
  chime_tz_free(right);
  /* The same for a path, as $TZ may give it. */
  local_reads("/usr/share/zoneinfo/right/America/New_York", "2030-12-01 12:00:00", "2030-12-01 07:00:00 EST");
  local_reads("right/America/New_York", "2031-07-01 12:00:00", "2031-07-01 08:00:00 EDT");
}

/* Loads the local zone with TZ set to `value` (NULL: unset), restoring TZ
 * afterwards. */
static int load_local(const char *value, chime_tz **tz) {
  char *saved = getenv("TZ") ? strdup(getenv("TZ")) : NULL;
  set_env("TZ", value);
  int rc = chime_tz_load(NULL, tz);
  set_env("TZ", saved);
  free(saved);
  return rc;
}

/* In the local zone set by TZ=value, instant `at` (UTC) reads `want`. */
static void local_reads(const char *value, const char *at, const char *want) {
  chime_tz *tz = NULL;
  char buf[64];
  int rc = load_local(value, &tz);
  if (rc) fail_msg("TZ=%s: %s", value, chime_strerror(rc));
  assert_string_equal(chime_tz_name(tz), "localtime");
  local(tz, utc(at), buf, sizeof buf);
  chime_tz_free(tz);
  if (strcmp(buf, want) != 0) fail_msg("TZ=%s at %s UTC: got %s, want %s", value, at, buf, want);
}

static void local_zone_comes_from_tz_names(void **state) {
  (void)state;
  local_reads("Europe/Berlin", "2026-07-01 10:00:00", "2026-07-01 12:00:00 CEST");
  local_reads(":America/New_York", "2026-07-01 10:00:00", "2026-07-01 06:00:00 EDT");
  local_reads("/usr/share/zoneinfo/Australia/Lord_Howe", "2026-07-01 10:00:00", "2026-07-01 20:30:00 +1030");
  local_reads(":/usr/share/zoneinfo/UTC", "2026-07-01 10:00:00", "2026-07-01 10:00:00 UTC");
  /* Unset or empty: /etc/localtime, never a silent UTC. */
  chime_tz *tz = NULL;
  int want = access("/etc/localtime", R_OK) == 0 ? 0 : -ENOENT;
  assert_int_equal(load_local(NULL, &tz), want);
  chime_tz_free(tz);
  tz = NULL;
  assert_int_equal(load_local("", &tz), want);
  chime_tz_free(tz);
  /* "" is NULL. */
  char *saved = getenv("TZ") ? strdup(getenv("TZ")) : NULL;
  setenv("TZ", "America/New_York", 1);
  tz = NULL;
  int rc = chime_tz_load("", &tz);
  set_env("TZ", saved);
  free(saved);
  assert_int_equal(rc, 0);
  assert_string_equal(chime_tz_name(tz), "localtime");
  char buf[64];
  assert_string_equal(local(tz, utc("2026-01-01 12:00:00"), buf, sizeof buf), "2026-01-01 07:00:00 EST");
  chime_tz_free(tz);
  chime_tz *untouched = (chime_tz *)&untouched;
  tz = untouched;
  assert_int_equal(load_local("Mars/Olympus", &tz), -ENOENT);
  assert_int_equal(load_local("/nonexistent/zone", &tz), -ENOENT);
  assert_int_equal(load_local("Europe/Berlin,x", &tz), -EINVAL);
  assert_int_equal(load_local("EST5EDT,M3.2.0", &tz), -EINVAL);
  assert_ptr_equal(tz, untouched);
}

static void local_zone_comes_from_posix_strings(void **state) {
  (void)state;
  const char *ny = "EST5EDT,M3.2.0,M11.1.0";
  local_reads(ny, "2026-03-08 06:59:59", "2026-03-08 01:59:59 EST");
  local_reads(ny, "2026-03-08 07:00:00", "2026-03-08 03:00:00 EDT");
  local_reads(ny, "2026-11-01 05:59:59", "2026-11-01 01:59:59 EDT");
  local_reads(ny, "2026-11-01 06:00:00", "2026-11-01 01:00:00 EST");
  local_reads(ny, "1800-07-01 12:00:00", "1800-07-01 08:00:00 EDT");
  /* The same rules as the file, including the 30-minute change. */
  const char *lh = "<+1030>-10:30<+11>-11,M10.1.0,M4.1.0";
  local_reads(lh, "2026-10-03 15:29:59", "2026-10-04 01:59:59 +1030");
  local_reads(lh, "2026-10-03 15:30:00", "2026-10-04 02:30:00 +11");
  local_reads(lh, "2027-04-03 14:59:59", "2027-04-04 01:59:59 +11");
  local_reads(lh, "2027-04-03 15:00:00", "2027-04-04 01:30:00 +1030");
  /* Fixed offsets, with minutes and seconds. */
  local_reads("<+0545>-5:45", "2026-07-01 10:00:00", "2026-07-01 15:45:00 +0545");
  local_reads("ABC+1:02:03", "2026-07-01 10:00:00", "2026-07-01 08:57:57 ABC");
  local_reads("UTC0", "2026-07-01 10:00:00", "2026-07-01 10:00:00 UTC");
  /* A daylight name without rules gets the US rules. */
  local_reads("XST3XDT", "2026-03-08 05:00:00", "2026-03-08 03:00:00 XDT");
}

static void posix_rules_read_every_day_form(void **state) {
  (void)state;
  /* Jn: March 1 in every year (Feb 29 is never counted). */
  local_reads("XST3XDT,J60/2,J300/2", "2028-03-01 05:00:00", "2028-03-01 03:00:00 XDT");
  local_reads("XST3XDT,J60/2,J300/2", "2028-03-01 04:59:59", "2028-03-01 01:59:59 XST");
  /* n: zero-based, counting Feb 29: day 59 is Feb 29 in 2028. */
  local_reads("XST3XDT,59/2,299/2", "2028-02-29 05:00:00", "2028-02-29 03:00:00 XDT");
  local_reads("XST3XDT,59/2,299/2", "2027-03-01 05:00:00", "2027-03-01 03:00:00 XDT");
  /* Negative times and times past 24 hours (version 3). */
  local_reads("XST3XDT,M3.2.0/-1,M11.1.0/26", "2026-03-08 01:59:59", "2026-03-07 22:59:59 XST");
  local_reads("XST3XDT,M3.2.0/-1,M11.1.0/26", "2026-03-08 02:00:00", "2026-03-08 00:00:00 XDT");
  local_reads("XST3XDT,M3.2.0/-1,M11.1.0/26", "2026-11-02 03:59:59", "2026-11-02 01:59:59 XDT");
  local_reads("XST3XDT,M3.2.0/-1,M11.1.0/26", "2026-11-02 04:00:00", "2026-11-02 01:00:00 XST");
  /* Week 5 is the last: March 2026 has four Sundays after the 1st... and a 29th. */
  local_reads("XST3XDT,M3.5.0/2,M10.5.0/2", "2026-03-29 05:00:00", "2026-03-29 03:00:00 XDT");
  /* Daylight saving time all year. */
  local_reads("XST3XDT,0/0,J365/25", "2026-01-01 02:30:00", "2026-01-01 00:30:00 XDT");
  local_reads("XST3XDT,0/0,J365/25", "2026-12-31 23:00:00", "2026-12-31 21:00:00 XDT");
  local_reads("XST3XDT,0/0,J365/25", "2100-06-30 23:00:00", "2100-06-30 21:00:00 XDT");
}

/* ---- concurrency and failures ------------------------------------------------ */

#include <pthread.h>

struct shared {
  const chime_cron_expr *c;
  const chime_tz *tz;
  chime_ns times[200];
  int n;
};

static void *compute(void *arg) {
  struct shared *s = arg;
  s->n = chime_cron_next_n(s->c, s->tz, utc("2026-01-01 00:00:00"), s->times, 200);
  return NULL;
}

static void zones_and_expressions_are_shared_between_threads(void **state) {
  (void)state;
  chime_cron_expr *c = cron("30 2 * * *");
  chime_tz *tz = zone("Europe/Berlin");
  struct shared s[4];
  pthread_t th[4];
  for (int i = 0; i < 4; i++) {
    s[i] = (struct shared){c, tz, {0}, 0};
    assert_int_equal(pthread_create(&th[i], NULL, compute, &s[i]), 0);
  }
  for (int i = 0; i < 4; i++)
    pthread_join(th[i], NULL);
  for (int i = 0; i < 4; i++) {
    assert_int_equal(s[i].n, 200);
    assert_memory_equal(s[i].times, s[0].times, sizeof s[0].times);
  }
  chime_cron_free(c);
  chime_tz_free(tz);
}

static void next_never_allocates(void **state) {
  (void)state;
  chime_cron_expr *c = cron("0 0 29 2 *");
  chime_tz *tz = zone("Europe/Berlin");
  chime_ns times[10];
  long calls = chime__test_calls();
  assert_int_equal(chime_cron_next_n(c, tz, 0, times, 10), 10);
  assert_int_equal(chime__test_calls(), calls);
  chime_cron_free(c);
  chime_tz_free(tz);
}

static int open_fds(void) {
  int n = 0;
  DIR *d = opendir("/proc/self/fd");
  if (!d) return -1;
  while (readdir(d))
    n++;
  closedir(d);
  return n;
}

/* Makes the first, second, ... fallible call of op fail (once, or from
 * then on), until op gets through without a failure.  Every failure must
 * come back as one of the errors allowed, with nothing leaked (memory or
 * file descriptors) and the output untouched; returns which errors were
 * seen, as a bit per entry of allowed. */
static unsigned walk(int (*op)(void **out), bool sticky, const int *allowed, int nallowed) {
  unsigned seen = 0;
  int fds = open_fds();
  long n;
  for (n = 0;; n++) {
    long before = chime__test_failures();
    void *out = &out;
    chime__test_fail_after(n, sticky);
    int rc = op(&out);
    chime__test_fail_after(-1, false);
    if (chime__test_failures() == before) {
      if (rc != 0) fail_msg("op failed with %d without an injected failure", rc);
      break;
    }
    int i = 0;
    while (i < nallowed && rc != allowed[i])
      i++;
    if (i == nallowed) fail_msg("failure %ld: op returned %d (%s)", n, rc, chime_strerror(rc));
    seen |= 1u << i;
    if (out != &out) fail_msg("failure %ld: output touched", n);
    if (chime__test_live_allocs() != 0) fail_msg("failure %ld: %ld allocations leaked", n, chime__test_live_allocs());
    if (open_fds() != fds) fail_msg("failure %ld: a file descriptor leaked", n);
  }
  assert_true(n > 0);
  return seen;
}

static int parse_op(void **out) {
  chime_cron_expr *c;
  int rc = chime_cron_parse("*/5 9-17 * * mon-fri", &c, NULL);
  if (rc == 0)
    chime_cron_free(c);
  else
    return rc;
  rc = chime_cron_parse("@every 5m", (chime_cron_expr **)out, NULL);
  if (rc == 0) chime_cron_free(*(chime_cron_expr **)out);
  return rc;
}

static int load_op(void **out) {
  int rc = chime_tz_load("Europe/Berlin", (chime_tz **)out);
  if (rc == 0) chime_tz_free(*(chime_tz **)out);
  return rc;
}

static int local_name_op(void **out) {
  int rc = load_local("XST3", (chime_tz **)out); /* a name, not found, then a POSIX string */
  if (rc == 0) chime_tz_free(*(chime_tz **)out);
  return rc;
}

static int local_posix_op(void **out) {
  int rc = load_local("EST5EDT,M3.2.0,M11.1.0", (chime_tz **)out);
  if (rc == 0) chime_tz_free(*(chime_tz **)out);
  return rc;
}

static void parse_failures_are_reported_and_leak_nothing(void **state) {
  (void)state;
  const int allowed[] = {-ENOMEM};
  assert_int_equal(walk(parse_op, false, allowed, 1), 1);
  assert_int_equal(walk(parse_op, true, allowed, 1), 1);
}

static void tz_load_failures_are_reported_and_leak_nothing(void **state) {
  (void)state;
  const int allowed[] = {-EMFILE, -EIO, -ENOMEM};
  assert_int_equal(walk(load_op, false, allowed, 3), 7); /* open, read, and memory each failed */
  assert_int_equal(walk(load_op, true, allowed, 3), 7);
  assert_int_equal(walk(local_name_op, false, allowed, 3), 5);  /* open and memory */
  assert_int_equal(walk(local_posix_op, false, allowed, 3), 4); /* memory only: no file to open */
}

TEST_MAIN(cmocka_unit_test(parse_reads_numbers_ranges_steps_and_lists),
          cmocka_unit_test(parse_accepts_blanks_and_tabs_around_fields),
          cmocka_unit_test(parse_reads_month_and_weekday_names_in_any_case), cmocka_unit_test(sunday_is_both_0_and_7),
          cmocka_unit_test(six_fields_start_with_seconds), cmocka_unit_test(day_fields_both_restricted_match_either),
          cmocka_unit_test(day_field_starting_with_star_makes_both_match),
          cmocka_unit_test(macros_are_their_expressions), cmocka_unit_test(every_macro_is_an_interval),
          cmocka_unit_test(last_day_of_month_and_days_before_it), cmocka_unit_test(nearest_weekday_stays_in_its_month),
          cmocka_unit_test(nth_and_last_weekday_of_the_month),
          cmocka_unit_test(shaped_days_follow_the_daylight_saving_rules), cmocka_unit_test(year_field_names_years),
          cmocka_unit_test(six_fields_depend_on_the_syntax_and_nothing_else),
          cmocka_unit_test(shaped_days_are_refused_where_they_mean_nothing),
          cmocka_unit_test(parse_counts_fields), cmocka_unit_test(parse_reports_values_out_of_range),
          cmocka_unit_test(parse_reports_unknown_names), cmocka_unit_test(parse_reports_bad_steps_and_ranges),
          cmocka_unit_test(parse_reports_unexpected_characters), cmocka_unit_test(parse_reports_bad_macros),
          cmocka_unit_test(parse_refuses_expressions_that_never_match), cmocka_unit_test(parse_checks_its_arguments),
          cmocka_unit_test(next_skips_short_months), cmocka_unit_test(next_finds_leap_days_and_knows_2100_is_not_leap),
          cmocka_unit_test(next_rolls_over_the_year), cmocka_unit_test(next_is_strictly_after_on_a_whole_second),
          cmocka_unit_test(next_stops_at_the_end_of_chime_ns), cmocka_unit_test(next_checks_its_arguments),
          cmocka_unit_test(berlin_skipped_time_fires_once_at_the_transition),
          cmocka_unit_test(berlin_repeated_time_fires_once_at_its_first_occurrence),
          cmocka_unit_test(berlin_every_hour_skips_the_lost_hour_and_repeats_the_extra_one),
          cmocka_unit_test(new_york_skipped_time_fires_once_at_the_transition),
          cmocka_unit_test(new_york_repeated_time_fires_once_at_its_first_occurrence),
          cmocka_unit_test(new_york_every_hour_skips_the_lost_hour_and_repeats_the_extra_one),
          cmocka_unit_test(lord_howe_skipped_half_hour_fires_once_at_the_transition),
          cmocka_unit_test(lord_howe_repeated_half_hour_fires_once_at_its_first_occurrence),
          cmocka_unit_test(lord_howe_every_hour_skips_the_lost_half_hour_and_repeats_the_extra_one),
          cmocka_unit_test(seconds_follow_the_same_rules_across_a_transition),
          cmocka_unit_test(after_inside_the_repeated_hour), cmocka_unit_test(after_at_the_end_of_a_gap),
          cmocka_unit_test(berlin_year_matches_brute_force), cmocka_unit_test(new_york_year_matches_brute_force),
          cmocka_unit_test(lord_howe_year_matches_brute_force),
          cmocka_unit_test(tz_format_writes_local_time_and_abbreviation), cmocka_unit_test(tz_name_is_the_name_given),
          cmocka_unit_test(tz_rules_apply_beyond_the_table),
          cmocka_unit_test(tz_load_refuses_zones_the_database_does_not_have),
          cmocka_unit_test(tz_load_refuses_names_that_are_not_zone_names),
          cmocka_unit_test(tz_load_refuses_corrupt_files), cmocka_unit_test(tz_load_reads_every_tzif_version),
          cmocka_unit_test(tz_load_takes_off_leap_seconds),
          cmocka_unit_test(tz_load_gives_leap_second_zones_their_rules_past_the_table),
          cmocka_unit_test(local_zone_comes_from_tz_names), cmocka_unit_test(local_zone_comes_from_posix_strings),
          cmocka_unit_test(posix_rules_read_every_day_form),
          cmocka_unit_test(zones_and_expressions_are_shared_between_threads), cmocka_unit_test(next_never_allocates),
          cmocka_unit_test(parse_failures_are_reported_and_leak_nothing),
          cmocka_unit_test(tz_load_failures_are_reported_and_leak_nothing))
