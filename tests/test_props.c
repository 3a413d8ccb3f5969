/* test_props.c - properties of periodic jobs over a simulated year, with
 * random intervals, run durations, policies and stalls of the loop:
 *   - no run starts before its tick;
 *   - fixed-rate ticks stay on their grid: zero cumulative drift;
 *   - runs overlap only as far as the overlap policy allows;
 *   - the counters add up: every grid point before the next tick was run
 *     or skipped, exactly once (runs + skipped = ticks due).
 * And of calendar expressions, random ones with L, W, #, steps, lists and
 * a year field, over a year, against a matcher that walks every minute
 * and reads the expression's parts as generated (never its text):
 *   - chime_cron_next's times rise strictly;
 *   - each of them matches;
 *   - none that matches is skipped (the two lists are equal).
 */
#include "test.h"

#include <time.h>

#define JOBS 12
#define YEAR CHIME_HOUR(24 * 365)

static uint64_t rng;
static uint64_t next_rand(void) {
  rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
  return rng;
}
static uint64_t below(uint64_t n) { return next_rand() % n; }

struct job {
  chime_every_opts o;
  chime_ns interval, first;
  chime_task h;
  int running, max_running;
  uint64_t starts;
  bool early, off_grid;
};

static struct job jobs[JOBS];

static int target(void *arg) {
  struct job *j = arg;
  chime_ns tick, now = chime_now();
  if (chime_tick(&tick) != 0) return -EPERM;
  if (now < tick) j->early = true;
  if ((tick - j->first) % j->interval != 0) j->off_grid = true;
  j->starts++;
  if (++j->running > j->max_running) j->max_running = j->running;
  /* a run takes nothing, or sleeps up to three intervals, or (rarely) keeps
   * the loop busy up to half an interval; one in eight fails */
  uint64_t r = below(32);
  int rc = 0;
  if (r >= 12 && r < 31)
    rc = chime_sleep((chime_ns)(below(3000) * (uint64_t)j->interval / 1000));
  else if (r == 31)
    rc = chime_clock_advance((chime_ns)(below(500) * (uint64_t)j->interval / 1000));
  j->running--;
  if (rc < 0) return rc;
  return below(8) == 0 ? -EIO : 0;
}

/* Keeps the loop busy now and then, for up to a few hours. */
static int staller(void *unused) {
  (void)unused;
  while (chime_sleep((chime_ns)below((uint64_t)CHIME_HOUR(24 * 20))) == 0)
    chime_clock_advance((chime_ns)below((uint64_t)CHIME_HOUR(5)));
  return 0;
}

static void random_job(struct job *j) {
  memset(j, 0, sizeof *j);
  static const chime_ns intervals[] = {CHIME_MIN(10), CHIME_MIN(17),  CHIME_MIN(45),  CHIME_HOUR(1),
                                       CHIME_HOUR(6), CHIME_HOUR(24), CHIME_SEC(3601)};
  j->interval = intervals[below(sizeof intervals / sizeof intervals[0])];
  j->o.overlap = (chime_overlap)below(4);
  if (j->o.overlap == CHIME_OVERLAP_ALLOW) j->o.max_concurrent = (uint32_t)(1 + below(3));
  j->o.missed = below(2) ? CHIME_MISSED_SKIP : CHIME_MISSED_BURST; /* delay restarts the grid: not here */
  if (j->o.missed == CHIME_MISSED_BURST) j->o.max_catch_up = (uint32_t)(1 + below(5));
  if (below(3) == 0) {
    j->o.on_error = CHIME_ERROR_BACKOFF;
    j->o.backoff_base = j->interval / 2;
    j->o.backoff_max = j->interval * 8;
  }
  if (below(3) == 0) j->o.timeout = j->interval;
  j->o.start = CHIME_START_AT;
  j->o.start_at = (chime_ns)below((uint64_t)CHIME_HOUR(24));
  j->first = j->o.start_at;
}

static int year_main(void *unused) {
  (void)unused;
  for (int i = 0; i < JOBS; i++) {
    random_job(&jobs[i]);
    assert_int_equal(chime_every(jobs[i].interval, target, &jobs[i], &jobs[i].o, &jobs[i].h), 0);
  }
  chime_task stall;
  assert_int_equal(chime_spawn(staller, NULL, &stall), 0);
  assert_int_equal(chime_sleep_until(YEAR), 0);
  for (int i = 0; i < JOBS; i++) {
    struct job *j = &jobs[i];
    chime_job_stats s;
    assert_int_equal(chime_every_stats(j->h, &s), 0);
    if (j->early) fail_msg("job %d: a run started before its tick", i);
    if (j->off_grid) fail_msg("job %d: a tick off the grid (drift)", i);
    int allowed = j->o.overlap == CHIME_OVERLAP_ALLOW     ? (int)j->o.max_concurrent
                  : j->o.overlap == CHIME_OVERLAP_REPLACE ? 2 /* the replaced one cleaning up */
                                                          : 1;
    if (j->max_running > allowed)
      fail_msg("job %d (overlap %d): %d runs at once, %d allowed", i, j->o.overlap, j->max_running, allowed);
    assert_int_equal(s.runs, j->starts);
    /* every grid point before the next tick was accounted for once */
    uint64_t skipped = s.skipped_overlap + s.skipped_missed + s.skipped_backoff;
    uint64_t due = (uint64_t)((s.next - j->first) / j->interval);
    if (s.runs + skipped != due)
      fail_msg("job %d: %llu runs + %llu skipped != %llu ticks due", i, (unsigned long long)s.runs,
               (unsigned long long)skipped, (unsigned long long)due);
    assert_true(s.runs > 0);
    if (getenv("PROPS_VERBOSE"))
      fprintf(stderr, "job %d: iv %llds overlap %d missed %d err %d: runs %llu skip %llu/%llu/%llu next %llds\n", i,
              (long long)(j->interval / CHIME_SEC(1)), j->o.overlap, j->o.missed, j->o.on_error,
              (unsigned long long)s.runs, (unsigned long long)s.skipped_overlap, (unsigned long long)s.skipped_missed,
              (unsigned long long)s.skipped_backoff, (long long)(s.next / CHIME_SEC(1)));
  }
  for (int i = 0; i < JOBS; i++) {
    chime_cancel(jobs[i].h);
    assert_int_equal(chime_join(jobs[i].h, NULL), 0);
  }
  chime_cancel(stall);
  return chime_join(stall, NULL);
}

static void run_year(uint64_t seed) {
  rng = seed;
  chime_ns t0 = real_ns();
  assert_int_equal(run_virtual(year_main, NULL), 0);
  assert_true(real_ns() - t0 < CHIME_SEC(60)); /* generous: seconds at most */
}

static void a_simulated_year_keeps_every_promise_seed_1(void **state) {
  (void)state;
  run_year(0x9e3779b97f4a7c15ull);
}

static void a_simulated_year_keeps_every_promise_seed_2(void **state) {
  (void)state;
  run_year(0x2545f4914f6cdd1dull);
}

static void a_simulated_year_keeps_every_promise_seed_3(void **state) {
  (void)state;
  run_year(0xda942042e4dd58b5ull);
}

/* ---- calendar expressions against a brute-force matcher ----------------------------- */

enum kind { STAR, STAR_STEP, VAL, VAL_STEP, RANGE, RANGE_STEP, LAST, NEAR, LAST_NEAR, NTH, LAST_WDAY };

struct item {
  enum kind kind;
  int a, b, step; /* LAST: a = n of L-n; NEAR: a = day; NTH: a = weekday, b = k; LAST_WDAY: a = weekday */
};

struct field_spec {
  int n;
  struct item it[3];
};

enum { P_MIN, P_HOUR, P_DOM, P_MON, P_DOW, P_YEAR, P_FIELDS };

struct expr_spec {
  struct field_spec f[P_FIELDS];
  bool year; /* a year field is written */
};

static const int lows[P_FIELDS] = {0, 0, 1, 1, 0, 2020}, highs[P_FIELDS] = {59, 23, 31, 12, 6, 2032};

static int in(int lo, int hi) { return lo + (int)below((uint64_t)(hi - lo + 1)); }

/* A random item of field k; hours of `hours_from` on only (a zone whose
 * clock changes before then has no repeated or skipped local times after). */
static struct item random_item(int k, int hours_from) {
  int lo = k == P_HOUR ? hours_from : lows[k], hi = highs[k];
  struct item it = {VAL, in(lo, hi), 0, 0};
  uint64_t r = below(16);
  if (k == P_DOM && r < 3) return (struct item){r == 0 ? LAST : r == 1 ? NEAR : LAST_NEAR, r == 0 ? in(0, 5) : in(1, 31), 0, 0};
  if (k == P_DOW && r < 3) return (struct item){r < 2 ? NTH : LAST_WDAY, in(0, 7), in(1, 5), 0};
  if (r < 6) return it;
  it.b = in(it.a, hi);
  it.step = in(1, 9);
  if (r < 9) it.kind = RANGE;
  else if (r < 12) it.kind = RANGE_STEP;
  else if (r < 14) it.kind = VAL_STEP;
  else it.kind = k == P_HOUR && hours_from > 0 ? RANGE : STAR_STEP;
  return it;
}

static void write_item(const struct item *it, int k, char *out) {
  char *o = out + strlen(out);
  switch (it->kind) {
  case STAR: sprintf(o, "*"); break;
  case STAR_STEP: sprintf(o, "*/%d", it->step); break;
  case VAL: sprintf(o, "%d", it->a); break;
  case VAL_STEP: sprintf(o, "%d/%d", it->a, it->step); break;
  case RANGE: sprintf(o, "%d-%d", it->a, it->b); break;
  case RANGE_STEP: sprintf(o, "%d-%d/%d", it->a, it->b, it->step); break;
  case LAST: it->a ? sprintf(o, "L-%d", it->a) : sprintf(o, "L"); break;
  case NEAR: sprintf(o, "%dW", it->a); break;
  case LAST_NEAR: sprintf(o, "LW"); break;
  case NTH: sprintf(o, "%d#%d", it->a, it->b); break;
  case LAST_WDAY: sprintf(o, "%dL", it->a); break;
  }
  (void)k;
}

static int days_in(int y, int m) {
  static const int d[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0) ? 29 : d[m - 1];
}

/* The weekday of day d of the month whose day `mday` has weekday `wday`. */
static int wday_of(int d, int mday, int wday) { return ((wday + d - mday) % 7 + 7) % 7; }

/* Whether item it of field k matches, at local time tm (tm_year + 1900,
 * tm_mon + 1, ...). */
static bool item_matches(const struct item *it, int k, const struct tm *tm) {
  int y = tm->tm_year + 1900, m = tm->tm_mon + 1, v;
  int values[P_FIELDS] = {tm->tm_min, tm->tm_hour, tm->tm_mday, m, tm->tm_wday, y};
  int top = k == P_YEAR ? 2099 : k == P_DOW ? 6 : highs[k], first = k == P_YEAR ? 1970 : lows[k];
  v = values[k];
  int last = days_in(y, m);
  switch (it->kind) {
  case STAR: return true;
  case STAR_STEP: return v >= first && v <= top && (v - first) % it->step == 0;
  case VAL: return v == it->a || (k == P_DOW && it->a == 7 && v == 0);
  case VAL_STEP: return v >= it->a && v <= top && (v - it->a) % it->step == 0;
  case RANGE: return v >= it->a && v <= it->b;
  case RANGE_STEP: return v >= it->a && v <= it->b && (v - it->a) % it->step == 0;
  case LAST: return v == last - it->a;
  case NEAR:
  case LAST_NEAR: {
    int d = it->kind == NEAR ? it->a : last;
    if (d > last) return false;
    /* the weekday nearest d, searched outwards, within the month */
    for (int dist = 0; dist < 7; dist++)
      for (int s = -1; s <= 1; s += 2) {
        int c = d + s * dist;
        if (c >= 1 && c <= last && wday_of(c, tm->tm_mday, tm->tm_wday) >= 1 && wday_of(c, tm->tm_mday, tm->tm_wday) <= 5)
          return v == c;
      }
    return false;
  }
  case NTH: return tm->tm_wday == it->a % 7 && (tm->tm_mday - 1) / 7 == it->b - 1;
  case LAST_WDAY: return tm->tm_wday == it->a % 7 && tm->tm_mday + 7 > last;
  }
  return false;
}

static bool field_matches(const struct field_spec *f, int k, const struct tm *tm) {
  for (int i = 0; i < f->n; i++)
    if (item_matches(&f->it[i], k, tm)) return true;
  return false;
}

static bool spec_matches(const struct expr_spec *e, const struct tm *tm) {
  for (int k = 0; k < P_FIELDS; k++)
    if (k != P_DOM && k != P_DOW && (k != P_YEAR || e->year) && !field_matches(&e->f[k], k, tm)) return false;
  bool dom = field_matches(&e->f[P_DOM], P_DOM, tm), dow = field_matches(&e->f[P_DOW], P_DOW, tm);
  bool dom_star = e->f[P_DOM].it[0].kind == STAR || e->f[P_DOM].it[0].kind == STAR_STEP;
  bool dow_star = e->f[P_DOW].it[0].kind == STAR || e->f[P_DOW].it[0].kind == STAR_STEP;
  return dom_star || dow_star ? dom && dow : dom || dow;
}

/* One random expression: most fields '*', a few with one to three items. */
static void random_spec(struct expr_spec *e, char *text, int hours_from) {
  memset(e, 0, sizeof *e);
  text[0] = '\0';
  e->year = below(3) == 0;
  for (int k = 0; k < P_FIELDS; k++) {
    struct field_spec *f = &e->f[k];
    bool plain = below(k == P_MIN ? 4 : 2) == 0 && !(k == P_HOUR && hours_from > 0);
    f->n = plain ? 1 : 1 + (int)below(3);
    for (int i = 0; i < f->n; i++)
      f->it[i] = plain ? (struct item){STAR, 0, 0, 0} : random_item(k, hours_from);
    if (k == P_YEAR && !e->year) continue;
    if (k == P_MIN && !plain) f->n = 1; /* few minutes: a year of them stays small */
    if (k) strcat(text, " ");
    for (int i = 0; i < f->n; i++) {
      if (i) strcat(text, ",");
      write_item(&f->it[i], k, text);
    }
  }
}

/* The zone's UTC offset at each minute of the year from t0 (seconds). */
static long *offsets(const char *zone, time_t t0, long minutes) {
  long *off = malloc((size_t)minutes * sizeof *off);
  assert_non_null(off);
  char *saved = getenv("TZ") ? strdup(getenv("TZ")) : NULL;
  setenv("TZ", zone, 1);
  tzset();
  for (long i = 0; i < minutes; i++) {
    time_t t = t0 + i * 60;
    struct tm tm;
    localtime_r(&t, &tm);
    off[i] = tm.tm_gmtoff;
  }
  if (saved) setenv("TZ", saved, 1);
  else unsetenv("TZ");
  tzset();
  free(saved);
  return off;
}

/* `count` random expressions in `zone`, over the year from `start`, each
 * against the brute-force matcher. */
static void calendar_matches_brute_force(uint64_t seed, const char *zone, int year, int hours_from, int count) {
  rng = seed;
  struct tm start_tm = {.tm_year = year - 1900, .tm_mday = 1};
  time_t t0 = timegm(&start_tm);
  long minutes = (days_in(year, 2) == 29 ? 366 : 365) * 24L * 60;
  long *off = offsets(zone, t0, minutes);
  chime_ns *want = malloc((size_t)minutes * sizeof *want), *got = malloc((size_t)(minutes + 1) * sizeof *got);
  assert_non_null(want);
  assert_non_null(got);
  chime_tz *tz = NULL;
  assert_int_equal(chime_tz_load(zone, &tz), 0);
  int never = 0;
  for (int x = 0; x < count; x++) {
    struct expr_spec e;
    char text[256];
    random_spec(&e, text, hours_from);
    chime_cron_expr *c = NULL;
    chime_cron_error err;
    int rc = chime_cron_parse_syntax(text, CHIME_CRON_CRONTAB, &c, &err);
    if (rc == -EINVAL && strstr(err.message, "never matches")) { /* checked below: no match in the year either */
      never++;
    } else if (rc) {
      fail_msg("'%s': %s (column %d: %s)", text, chime_strerror(rc), err.column, err.message);
    }
    size_t n = 0;
    for (long i = 0; i < minutes; i++) {
      time_t l = t0 + i * 60 + off[i];
      struct tm tm;
      gmtime_r(&l, &tm);
      if (spec_matches(&e, &tm)) want[n++] = CHIME_SEC((int64_t)(t0 + i * 60));
    }
    if (!c) {
      if (n) fail_msg("'%s' refused as never matching, but matches %zu times in %d", text, n, year);
      continue;
    }
    int k = chime_cron_next_n(c, tz, CHIME_SEC((int64_t)t0) - 1, got, n + 1);
    chime_cron_free(c);
    assert_true(k >= (int)n);
    for (int i = 1; i < k; i++)
      if (got[i] <= got[i - 1]) fail_msg("'%s' in %s: run %d is not after run %d", text, zone, i, i - 1);
    if (k > (int)n && got[n] < CHIME_SEC((int64_t)(t0 + minutes * 60)))
      fail_msg("'%s' in %s: %zu runs in %d, and more: the matcher found no run at %lld", text, zone, n, year,
               (long long)(got[n] / CHIME_SEC(1)));
    for (size_t i = 0; i < n; i++)
      if (got[i] != want[i])
        fail_msg("'%s' in %s, run %zu: got %lld, want %lld", text, zone, i, (long long)(got[i] / CHIME_SEC(1)),
                 (long long)(want[i] / CHIME_SEC(1)));
  }
  if (getenv("PROPS_VERBOSE")) fprintf(stderr, "%d expressions, %d never matching\n", count, never);
  chime_tz_free(tz);
  free(off);
  free(want);
  free(got);
}

static void calendar_expressions_match_brute_force_in_utc(void **state) {
  (void)state;
  calendar_matches_brute_force(0x9e3779b97f4a7c15ull, "UTC", 2026, 0, 60);
  calendar_matches_brute_force(0x2545f4914f6cdd1dull, "UTC", 2028, 0, 60); /* a leap year */
}

/* From 04:00 on, New York's local times each occur once: the daylight
 * saving rules do not enter, only the offsets. */
static void calendar_expressions_match_brute_force_in_new_york(void **state) {
  (void)state;
  calendar_matches_brute_force(0xda942042e4dd58b5ull, "America/New_York", 2026, 4, 60);
}

TEST_MAIN(cmocka_unit_test(a_simulated_year_keeps_every_promise_seed_1),
          cmocka_unit_test(a_simulated_year_keeps_every_promise_seed_2),
          cmocka_unit_test(a_simulated_year_keeps_every_promise_seed_3),
          cmocka_unit_test(calendar_expressions_match_brute_force_in_utc),
          cmocka_unit_test(calendar_expressions_match_brute_force_in_new_york))
