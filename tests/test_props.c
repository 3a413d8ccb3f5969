/* test_props.c - properties of periodic jobs over a simulated year, with
 * random intervals, run durations, policies and stalls of the loop:
 *   - no run starts before its tick;
 *   - fixed-rate ticks stay on their grid: zero cumulative drift;
 *   - runs overlap only as far as the overlap policy allows;
 *   - the counters add up: every grid point before the next tick was run
 *     or skipped, exactly once (runs + skipped = ticks due).
 */
#include "test.h"

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

TEST_MAIN(cmocka_unit_test(a_simulated_year_keeps_every_promise_seed_1),
          cmocka_unit_test(a_simulated_year_keeps_every_promise_seed_2),
          cmocka_unit_test(a_simulated_year_keeps_every_promise_seed_3))
