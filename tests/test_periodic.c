/* test_periodic.c - periodic jobs: every policy's timeline on the virtual
 * clock, statistics, limits, errors, cancellation, bad input. */
#include "test.h"

/* ---- a target that records its runs ---------------------------------------- */

struct rec {
  int n;                    /* runs seen */
  chime_ns start[2048];     /* when each began */
  chime_ns (*dur)(int k);   /* how long run k takes (NULL: no time) */
  int (*result)(int k);     /* what run k returns once done (NULL: 0) */
  bool busy;                /* take the time busy (advance the clock) rather than asleep */
  int cancelled;            /* runs that saw -ECANCELED */
  int running, max_running; /* runs going at once */
};

static int rec_target(void *p) {
  struct rec *r = p;
  int k = r->n++;
  if (k < 2048) r->start[k] = chime_now();
  if (++r->running > r->max_running) r->max_running = r->running;
  chime_ns d = r->dur ? r->dur(k) : 0;
  int rc = 0;
  if (d) rc = r->busy ? chime_clock_advance(d) : chime_sleep(d);
  if (r->busy && rc == 0) rc = chime_yield(); /* a suspension point after the busy time */
  r->running--;
  if (rc == -ECANCELED) r->cancelled++;
  if (rc < 0) return rc;
  return r->result ? r->result(k) : 0;
}

/* "10 40 50.5": the runs' start times in seconds. */
static const char *starts(const struct rec *r) {
  static char buf[4096];
  size_t len = 0;
  buf[0] = '\0';
  for (int k = 0; k < r->n && k < 2048 && len < sizeof buf - 32; k++) {
    chime_ns s = r->start[k] / CHIME_SEC(1), ms = (r->start[k] % CHIME_SEC(1)) / CHIME_MS(1);
    len += (size_t)snprintf(buf + len, sizeof buf - len, k ? " %lld" : "%lld", (long long)s);
    if (ms) {
      len += (size_t)snprintf(buf + len, sizeof buf - len, ".%03lld", (long long)ms);
      while (buf[len - 1] == '0')
        buf[--len] = '\0';
    }
  }
  return buf;
}

static chime_job_stats stats_of(chime_task j) {
  chime_job_stats st;
  assert_int_equal(chime_every_stats(j, &st), 0);
  return st;
}

/* Cancel-and-wait; returns the job's result. */
static int stop(chime_task j) {
  int rc = 12345;
  assert_int_equal(chime_cancel(j), 0);
  assert_int_equal(chime_join(j, &rc), 0);
  return rc;
}

static struct rec R, R2;
static chime_every_opts O;
static chime_ns interval;
static chime_ns until_t; /* main's sleep */
static chime_task J;

/* A main task: one job with R, O and `interval`, until `until_t`; then
 * cancel-and-wait. */
static int one_job(void *unused) {
  (void)unused;
  assert_int_equal(chime_every(interval, rec_target, &R, &O, &J), 0);
  assert_int_equal(chime_sleep_until(until_t), 0);
  return 0;
}

static void setup(chime_ns iv, chime_ns until) {
  memset(&R, 0, sizeof R);
  memset(&R2, 0, sizeof R2);
  memset(&O, 0, sizeof O);
  interval = iv;
  until_t = until;
}

/* Runs one_job; leaves J's stats in *st, taken before it was cancelled. */
static chime_job_stats st;
static int one_job_stats(void *unused) {
  one_job(unused);
  st = stats_of(J);
  int rc = stop(J);
  assert_int_equal(rc, -ECANCELED);
  return 0;
}

static void run_one(void) { assert_int_equal(run_virtual(one_job_stats, NULL), 0); }

/* ---- the schedule ------------------------------------------------------------ */

static int tutorial_main(void *unused) {
  (void)unused;
  chime_task j;
  assert_int_equal(chime_every(CHIME_SEC(1), rec_target, &R, NULL, &j), 0);
  assert_int_equal(chime_sleep(CHIME_SEC(5)), 0);
  return 0; /* the shutdown cancels the job */
}

static void the_tutorial_with_chime_every(void **state) {
  (void)state;
  setup(0, 0);
  assert_int_equal(run_virtual(tutorial_main, NULL), 0);
  assert_string_equal(starts(&R), "1 2 3 4"); /* main's 5 s was armed first */
}

static chime_ns d300(int k) {
  (void)k;
  return CHIME_MS(300);
}

static void fixed_rate_stays_on_the_grid(void **state) {
  (void)state;
  setup(CHIME_SEC(1), CHIME_SEC(1000) + CHIME_MS(500));
  R.dur = d300;
  run_one();
  assert_int_equal(R.n, 1000);
  for (int k = 0; k < 1000; k++)
    assert_int_equal(R.start[k], CHIME_SEC(k + 1)); /* no drift */
  assert_int_equal(st.max_late, 0);
  assert_int_equal(st.max_duration, CHIME_MS(300));
  assert_int_equal(st.next, CHIME_SEC(1001));
}

static void fixed_delay_follows_each_return(void **state) {
  (void)state;
  setup(CHIME_SEC(1), CHIME_SEC(5));
  R.dur = d300;
  O.schedule = CHIME_FIXED_DELAY;
  run_one();
  assert_string_equal(starts(&R), "1 2.3 3.6 4.9");
  assert_int_equal(st.next, CHIME_NEVER); /* a run is going: the next is planned when it returns */
}

static void start_now_and_start_at(void **state) {
  (void)state;
  setup(CHIME_SEC(10), CHIME_SEC(35));
  O.start = CHIME_START_NOW;
  run_one();
  assert_string_equal(starts(&R), "0 10 20 30");
  setup(CHIME_SEC(10), CHIME_SEC(35));
  O.start = CHIME_START_AT;
  O.start_at = CHIME_SEC(3);
  run_one();
  assert_string_equal(starts(&R), "3 13 23 33");
}

/* ---- overlap ------------------------------------------------------------------ */

static chime_ns first_25(int k) { return k == 0 ? CHIME_SEC(25) : 0; }
static chime_ns all_25(int k) {
  (void)k;
  return CHIME_SEC(25);
}

/* The documentation's words: interval 10 s, fixed rate, a run that takes
 * 25 s at t=10, policy skip: runs start at 10, 40, 50, ... */
static void overlap_skip_drops_ticks_while_a_run_goes(void **state) {
  (void)state;
  setup(CHIME_SEC(10), CHIME_SEC(75));
  R.dur = first_25;
  run_one();
  assert_string_equal(starts(&R), "10 40 50 60 70");
  assert_int_equal(st.skipped_overlap, 2); /* 20 and 30 */
  assert_int_equal(st.runs + st.skipped_overlap, 7);
  assert_int_equal(R.max_running, 1);
}

/* Queue: the tick at 20 waits and runs at 35, when the long run returns;
 * 30 is dropped; then 40, 50, ... */
static void overlap_queue_runs_one_waiting_tick_at_the_return(void **state) {
  (void)state;
  setup(CHIME_SEC(10), CHIME_SEC(75));
  R.dur = first_25;
  O.overlap = CHIME_OVERLAP_QUEUE;
  run_one();
  assert_string_equal(starts(&R), "10 35 40 50 60 70");
  assert_int_equal(st.skipped_overlap, 1);
  assert_int_equal(st.max_late, CHIME_SEC(15));
  assert_int_equal(R.max_running, 1);
}

/* Allow 2: runs of 25 s every 10 s: two at a time, the third tick dropped. */
static void overlap_allow_runs_up_to_n_at_once(void **state) {
  (void)state;
  setup(CHIME_SEC(10), CHIME_SEC(75));
  R.dur = all_25;
  O.overlap = CHIME_OVERLAP_ALLOW;
  O.max_concurrent = 2;
  run_one();
  /* 10 (to 35), 20 (to 45), 30 dropped, 40 (to 65), 50 (to 75), 60 dropped, 70 */
  assert_string_equal(starts(&R), "10 20 40 50 70");
  assert_int_equal(st.skipped_overlap, 2);
  assert_int_equal(R.max_running, 2);
}

/* Replace: each tick cancels the run still going and starts anew; the
 * cancelled runs are not errors. */
static void overlap_replace_cancels_the_running_run(void **state) {
  (void)state;
  setup(CHIME_SEC(10), CHIME_SEC(45));
  R.dur = all_25;
  O.overlap = CHIME_OVERLAP_REPLACE;
  run_one();
  assert_string_equal(starts(&R), "10 20 30 40");
  assert_int_equal(R.cancelled, 4); /* 10, 20, 30 replaced; 40 cancelled at the end */
  assert_int_equal(st.errors, 0);
  assert_int_equal(st.skipped_overlap, 0);
  assert_int_equal(R.max_running, 2); /* the new run starts while the old one cleans up */
}

/* chime_every_stop: no more ticks, and the run that is going (even with
 * replace, whose next tick would cancel it) goes on to its end. */
static int nothing(void *unused) {
  (void)unused;
  return 0;
}

static int stop_main(void *unused) {
  (void)unused;
  assert_int_equal(chime_every(CHIME_SEC(10), rec_target, &R, &O, &J), 0);
  assert_int_equal(chime_sleep_until(CHIME_SEC(15)), 0);
  assert_int_equal(chime_every_stop(J), 0);
  assert_int_equal(chime_every_stop(J), 0); /* again: nothing more */
  chime_job_stats s = stats_of(J);
  assert_int_equal(s.next, CHIME_NEVER);
  assert_int_equal(s.running, 1);
  int rc = 12345;
  assert_int_equal(chime_join(J, &rc), 0);
  assert_int_equal(rc, 0);
  assert_int_equal(chime_now(), CHIME_SEC(35)); /* the run of 10 s took its 25 s */
  /* an idle job ends at once; a cancelled one keeps its result */
  chime_task idle, gone, plain;
  assert_int_equal(chime_every(CHIME_SEC(10), rec_target, &R2, NULL, &idle), 0);
  assert_int_equal(chime_every(CHIME_SEC(10), rec_target, &R2, NULL, &gone), 0);
  assert_int_equal(chime_every_stop(idle), 0);
  assert_int_equal(chime_join(idle, &rc), 0);
  assert_int_equal(rc, 0);
  assert_int_equal(chime_now(), CHIME_SEC(35));
  assert_int_equal(chime_cancel(gone), 0);
  assert_int_equal(chime_every_stop(gone), 0);
  assert_int_equal(chime_join(gone, &rc), 0);
  assert_int_equal(rc, -ECANCELED);
  assert_int_equal(R2.n, 0);
  assert_int_equal(chime_spawn(nothing, NULL, &plain), 0);
  assert_int_equal(chime_every_stop(plain), -EINVAL); /* not a job */
  assert_int_equal(chime_join(plain, NULL), 0);
  assert_int_equal(chime_every_stop((chime_task){0}), -EINVAL);
  return 0;
}

static void stopping_a_job_lets_its_run_finish(void **state) {
  (void)state;
  setup(CHIME_SEC(10), 0);
  R.dur = all_25;
  O.overlap = CHIME_OVERLAP_REPLACE;
  assert_int_equal(run_virtual(stop_main, NULL), 0);
  assert_string_equal(starts(&R), "10");
  assert_int_equal(R.cancelled, 0);
  assert_int_equal(chime_every_stop(J), -EPERM); /* outside a loop */
}

/* ---- missed ticks ---------------------------------------------------------------- */

/* A task that keeps the loop busy from 0.5 s to 4.2 s. */
static int stall(void *unused) {
  (void)unused;
  chime_sleep(CHIME_MS(500));
  return chime_clock_advance(CHIME_MS(3700));
}

static int stalled_job(void *unused) {
  (void)unused;
  assert_int_equal(chime_spawn(stall, NULL, NULL), 0);
  return one_job_stats(NULL);
}

static void missed_skip_runs_late_once_then_the_next_grid_point(void **state) {
  (void)state;
  setup(CHIME_SEC(1), CHIME_MS(7500));
  assert_int_equal(run_virtual(stalled_job, NULL), 0);
  assert_string_equal(starts(&R), "4.2 5 6 7");
  assert_int_equal(st.skipped_missed, 3); /* 2, 3, 4 */
  assert_int_equal(st.max_late, CHIME_MS(3200));
  assert_int_equal(st.runs + st.skipped_missed, 7);
}

static void missed_burst_catches_up_at_most_the_limit(void **state) {
  (void)state;
  setup(CHIME_SEC(1), CHIME_MS(7500));
  O.missed = CHIME_MISSED_BURST;
  O.max_catch_up = 2;
  assert_int_equal(run_virtual(stalled_job, NULL), 0);
  /* ticks 1, 2, 3 back to back at 4.2 s; 4 dropped; then 5, 6, 7 */
  assert_string_equal(starts(&R), "4.2 4.2 4.2 5 6 7");
  assert_int_equal(st.skipped_missed, 1);
  assert_int_equal(st.runs + st.skipped_missed, 7);
}

static void missed_burst_runs_back_to_back_even_when_runs_suspend(void **state) {
  (void)state;
  setup(CHIME_SEC(1), CHIME_MS(7500));
  O.missed = CHIME_MISSED_BURST;
  O.max_catch_up = 5;
  R.dur = d300;
  assert_int_equal(run_virtual(stalled_job, NULL), 0);
  /* 1 at 4.2; 2 at 4.5; 3 at 4.8; 4 at 5.1; 5 at 5.4; then 6 and 7 on time */
  assert_string_equal(starts(&R), "4.2 4.5 4.8 5.1 5.4 6 7");
  assert_int_equal(st.skipped_missed + st.skipped_overlap, 0);
}

static void missed_delay_restarts_the_grid(void **state) {
  (void)state;
  setup(CHIME_SEC(1), CHIME_MS(7500));
  O.missed = CHIME_MISSED_DELAY;
  assert_int_equal(run_virtual(stalled_job, NULL), 0);
  assert_string_equal(starts(&R), "4.2 5.2 6.2 7.2");
  assert_int_equal(st.skipped_missed, 3);
}

/* A run that keeps the loop busy past its next ticks: the loop notices the
 * next tick late, when the run has returned: it runs late, once, and the
 * grid points passed meanwhile are missed (not overlapped: no run was
 * going when the loop saw them). */
static chime_ns busy_first(int k) { return k == 0 ? CHIME_MS(2500) : 0; }

static void a_busy_run_makes_later_ticks_missed(void **state) {
  (void)state;
  setup(CHIME_SEC(1), CHIME_MS(6500));
  R.dur = busy_first;
  R.busy = true;
  run_one();
  assert_string_equal(starts(&R), "1 3.5 4 5 6");
  assert_int_equal(st.skipped_missed, 1);
  assert_int_equal(st.skipped_overlap, 0);
  assert_int_equal(st.max_duration, CHIME_MS(2500));
}

/* ---- jitter, spread, coalescing ----------------------------------------------- */

static void jitter_delays_each_run_within_bounds_without_drift(void **state) {
  (void)state;
  setup(CHIME_SEC(1), CHIME_SEC(500) + CHIME_MS(999));
  O.jitter = CHIME_MS(200);
  run_one();
  assert_int_equal(R.n, 500);
  chime_ns sum = 0, lo = INT64_MAX, hi = 0;
  for (int k = 0; k < R.n; k++) {
    chime_ns off = R.start[k] - CHIME_SEC(k + 1);
    assert_true(off >= 0 && off <= CHIME_MS(200)); /* never early, never beyond the jitter */
    sum += off;
    if (off < lo) lo = off;
    if (off > hi) hi = off;
  }
  chime_ns mean = sum / R.n;
  assert_true(mean > CHIME_MS(70) && mean < CHIME_MS(130)); /* spread over the range */
  assert_true(hi - lo > CHIME_MS(150));
  assert_int_equal(st.max_late, 0); /* lateness counts from the jittered time */
}

static int two_keys(void *unused) {
  (void)unused;
  chime_every_opts a = {.spread = CHIME_SEC(60), .key = "backup@host-a"};
  chime_every_opts b = {.spread = CHIME_SEC(60), .key = "backup@host-b"};
  chime_task ja, jb;
  assert_int_equal(chime_every(CHIME_MIN(5), rec_target, &R, &a, &ja), 0);
  assert_int_equal(chime_every(CHIME_MIN(5), rec_target, &R2, &b, &jb), 0);
  chime_sleep(CHIME_MIN(31));
  stop(ja);
  stop(jb);
  return 0;
}

static void spread_gives_each_key_a_stable_offset(void **state) {
  (void)state;
  setup(0, 0);
  assert_int_equal(run_virtual(two_keys, NULL), 0);
  assert_int_equal(R.n, 6);
  chime_ns off_a = R.start[0] - CHIME_MIN(5), off_b = R2.start[0] - CHIME_MIN(5);
  assert_true(off_a >= 0 && off_a <= CHIME_SEC(60));
  assert_true(off_b >= 0 && off_b <= CHIME_SEC(60));
  assert_true(off_a != off_b);
  for (int k = 0; k < 6; k++) {
    assert_int_equal(R.start[k], CHIME_MIN(5) * (k + 1) + off_a);
    assert_int_equal(R2.start[k], CHIME_MIN(5) * (k + 1) + off_b);
  }
  /* the same key gives the same offset in another loop */
  chime_ns first = R.start[0];
  setup(0, 0);
  assert_int_equal(run_virtual(two_keys, NULL), 0);
  assert_int_equal(R.start[0], first);
}

static int windowed(void *unused) {
  (void)unused;
  chime_every_opts a = {.start = CHIME_START_AT, .start_at = CHIME_MS(300), .window = CHIME_SEC(1)};
  chime_every_opts b = {.start = CHIME_START_AT, .start_at = CHIME_MS(650), .window = CHIME_SEC(1)};
  chime_task ja, jb;
  assert_int_equal(chime_every(CHIME_SEC(1), rec_target, &R, &a, &ja), 0);
  assert_int_equal(chime_every(CHIME_SEC(1), rec_target, &R2, &b, &jb), 0);
  chime_sleep(CHIME_SEC(10));
  stop(ja);
  stop(jb);
  return 0;
}

static void windows_make_jobs_wake_together(void **state) {
  (void)state;
  setup(0, 0);
  assert_int_equal(run_virtual(windowed, NULL), 0);
  assert_true(R.n >= 9 && R.n == R2.n);
  for (int k = 0; k < R.n; k++) {
    assert_int_equal(R.start[k], R2.start[k]);                   /* together */
    assert_true(R.start[k] >= CHIME_MS(300) + CHIME_SEC(1) * k); /* never early */
    assert_true(R2.start[k] >= CHIME_MS(650) + CHIME_SEC(1) * k);
    assert_true(R.start[k] <= CHIME_MS(300) + CHIME_SEC(1) * k + CHIME_SEC(1)); /* within the window */
  }
}

/* One job per window, each run once at a tick just after a second: the
 * step each window chooses, and when its run starts (the first multiple
 * of the step at or after the tick; the virtual clock's boundaries have no
 * phase). */
static const struct {
  chime_ns window, step;
} windows[] = {
    {CHIME_US(10), CHIME_US(10)},   {CHIME_US(99), CHIME_US(10)},   {CHIME_US(100), CHIME_US(100)},
    {CHIME_US(250), CHIME_US(250)}, {CHIME_US(500), CHIME_US(500)}, {CHIME_MS(3), CHIME_MS(1)},
    {CHIME_MS(10), CHIME_MS(10)},   {CHIME_MS(100), CHIME_MS(100)}, {CHIME_MS(250), CHIME_MS(250)},
    {CHIME_SEC(1), CHIME_SEC(1)},   {CHIME_SEC(10), CHIME_SEC(10)}, {CHIME_MIN(1), CHIME_MIN(1)},
    {CHIME_MIN(5), CHIME_MIN(1)},
};
#define NWINDOWS (sizeof windows / sizeof windows[0])
static struct rec RW[NWINDOWS];
static const chime_ns window_tick = CHIME_SEC(1) + CHIME_US(7) + 3;

static int each_window(void *unused) {
  (void)unused;
  for (size_t i = 0; i < NWINDOWS; i++) {
    chime_every_opts o = {.start = CHIME_START_AT, .start_at = window_tick, .window = windows[i].window, .max_runs = 1};
    assert_int_equal(chime_every(CHIME_MIN(10), rec_target, &RW[i], &o, NULL), 0);
  }
  return chime_sleep(CHIME_MIN(2));
}

static void a_window_waits_for_the_first_boundary_of_its_step(void **state) {
  (void)state;
  memset(RW, 0, sizeof RW);
  assert_int_equal(run_virtual(each_window, NULL), 0);
  for (size_t i = 0; i < NWINDOWS; i++) {
    chime_ns step = windows[i].step, want = (window_tick + step - 1) / step * step;
    assert_int_equal(RW[i].n, 1);
    if (RW[i].start[0] != want)
      fail_msg("window %lld: started at %lld, not %lld", (long long)windows[i].window, (long long)RW[i].start[0],
               (long long)want);
  }
}

/* ---- timeouts and errors --------------------------------------------------- */

static chime_ns d5s(int k) {
  (void)k;
  return CHIME_SEC(5);
}

static void a_run_past_its_timeout_is_cancelled(void **state) {
  (void)state;
  setup(CHIME_SEC(10), CHIME_SEC(35));
  R.dur = d5s;
  O.timeout = CHIME_SEC(2);
  run_one();
  assert_string_equal(starts(&R), "10 20 30");
  assert_int_equal(R.cancelled, 3);
  assert_int_equal(st.timeouts, 3);
  assert_int_equal(st.errors, 3);
  assert_int_equal(st.max_duration, CHIME_SEC(2));
}

static chime_ns busy_5s(int k) {
  (void)k;
  return CHIME_SEC(5);
}

static void a_busy_run_sees_its_timeout_at_its_next_suspension_point(void **state) {
  (void)state;
  setup(CHIME_SEC(10), CHIME_SEC(15));
  R.dur = busy_5s;
  R.busy = true;
  O.timeout = CHIME_SEC(2);
  run_one();
  assert_int_equal(R.cancelled, 1);
  assert_int_equal(st.timeouts, 1);
}

static int fail_odd(int k) { return k % 2 ? -EIO : 0; }
static int fail_third(int k) { return k == 2 ? -EIO : 0; }

static void errors_continue_by_default(void **state) {
  (void)state;
  setup(CHIME_SEC(1), CHIME_MS(10500));
  R.result = fail_odd;
  run_one();
  assert_int_equal(R.n, 10);
  assert_int_equal(st.errors, 5);
}

static int dtor_calls;
static void count_dtor(void *arg) {
  assert_ptr_equal(arg, &R);
  dtor_calls++;
}

static int stop_on_error_main(void *unused) {
  (void)unused;
  chime_task j;
  chime_every_opts o = {.on_error = CHIME_ERROR_STOP, .dtor = count_dtor};
  assert_int_equal(chime_every(CHIME_SEC(1), rec_target, &R, &o, &j), 0);
  int rc = 0;
  assert_int_equal(chime_join(j, &rc), 0);
  assert_int_equal(chime_now(), CHIME_SEC(3));
  return rc;
}

static void errors_stop_the_job_when_asked(void **state) {
  (void)state;
  setup(0, 0);
  R.result = fail_third;
  dtor_calls = 0;
  assert_int_equal(run_virtual(stop_on_error_main, NULL), -EIO);
  assert_int_equal(R.n, 3);
  assert_int_equal(dtor_calls, 1);
}

static int fail_until_8(int k) { return k < 4 ? -EIO : 0; }

static void errors_back_off_exponentially_then_reset(void **state) {
  (void)state;
  setup(CHIME_SEC(1), CHIME_MS(40500));
  R.result = fail_until_8;
  O.on_error = CHIME_ERROR_BACKOFF;
  O.backoff_base = CHIME_SEC(5);
  O.backoff_max = CHIME_SEC(12);
  run_one();
  /* fail at 1 (next >= 6), fail at 6 (>= 16), fail at 16 (>= 28: capped at
   * 12), fail at 28 (>= 40), succeed at 40, then every second */
  assert_string_equal(starts(&R), "1 6 16 28 40");
  assert_int_equal(st.errors, 4);
  assert_int_equal(st.skipped_backoff, 4 + 9 + 11 + 11);
  assert_int_equal(st.runs + st.skipped_backoff, 40);
  assert_int_equal(st.next, CHIME_SEC(41));
}

/* ---- limits ------------------------------------------------------------------ */

static int limited_main(void *unused) {
  (void)unused;
  chime_task a, b;
  chime_every_opts by_count = {.max_runs = 3, .dtor = count_dtor};
  chime_every_opts by_time = {.until = CHIME_MS(4500)};
  assert_int_equal(chime_every(CHIME_SEC(1), rec_target, &R, &by_count, &a), 0);
  assert_int_equal(chime_every(CHIME_SEC(1), rec_target, &R2, &by_time, &b), 0);
  int rc = -1;
  assert_int_equal(chime_join(a, &rc), 0);
  assert_int_equal(rc, 0);
  assert_int_equal(chime_now(), CHIME_SEC(3)); /* ends as its third run returns */
  assert_int_equal(chime_join(b, &rc), 0);
  assert_int_equal(rc, 0);
  assert_int_equal(chime_now(), CHIME_SEC(4)); /* no run could start before 4.5 s after 4 s */
  return 0;
}

static void limits_stop_a_job_by_count_and_by_time(void **state) {
  (void)state;
  setup(0, 0);
  dtor_calls = 0;
  assert_int_equal(run_virtual(limited_main, NULL), 0);
  assert_string_equal(starts(&R), "1 2 3");
  assert_string_equal(starts(&R2), "1 2 3 4");
  assert_int_equal(dtor_calls, 1);
}

/* ---- cancellation, joining, groups, shutdown ------------------------------------ */

static int cancel_mid_run_main(void *unused) {
  (void)unused;
  chime_task j;
  chime_every_opts o = {.dtor = count_dtor};
  assert_int_equal(chime_every(CHIME_SEC(1), rec_target, &R, &o, &j), 0);
  assert_int_equal(chime_sleep(CHIME_MS(3500)), 0); /* the third run sleeps until 8 */
  assert_int_equal(dtor_calls, 0);
  chime_job_stats s = stats_of(j);
  assert_int_equal(s.running, 1);
  assert_int_equal(stop(j), -ECANCELED);
  assert_int_equal(chime_now(), CHIME_MS(3500)); /* the run saw -ECANCELED at once */
  assert_int_equal(R.cancelled, 1);
  assert_int_equal(dtor_calls, 1); /* after the run returned */
  return 0;
}

static chime_ns third_long(int k) { return k == 2 ? CHIME_SEC(5) : 0; }

static void cancel_and_wait_reaches_the_running_target(void **state) {
  (void)state;
  setup(0, 0);
  R.dur = third_long;
  dtor_calls = 0;
  assert_int_equal(run_virtual(cancel_mid_run_main, NULL), 0);
}

static int self_cancel_target(void *p) {
  struct rec *r = p;
  r->start[r->n++] = chime_now();
  if (r->n == 2) chime_cancel(chime_self()); /* chime_self() is the job */
  return 0;
}

static int self_main(void *unused) {
  (void)unused;
  chime_task j;
  assert_int_equal(chime_every(CHIME_SEC(1), self_cancel_target, &R, NULL, &j), 0);
  int rc;
  assert_int_equal(chime_join(j, &rc), 0);
  return rc;
}

static void a_run_can_cancel_its_own_job(void **state) {
  (void)state;
  setup(0, 0);
  assert_int_equal(run_virtual(self_main, NULL), -ECANCELED);
  assert_string_equal(starts(&R), "1 2");
}

static int group_main(void *unused) {
  (void)unused;
  chime_group *g;
  chime_task a, b;
  chime_every_opts three = {.max_runs = 3};
  assert_int_equal(chime_group_new(NULL, &g), 0);
  assert_int_equal(chime_every(CHIME_SEC(1), rec_target, &R, &three, &a), 0);
  assert_int_equal(chime_every(CHIME_SEC(2), rec_target, &R2, NULL, &b), 0);
  assert_int_equal(chime_group_add(g, a), 0);
  assert_int_equal(chime_group_add(g, b), 0);
  assert_int_equal(chime_group_size(g), 2);
  assert_int_equal(chime_join(a, NULL), -EINVAL); /* the group owns it */
  assert_int_equal(chime_group_join(g, CHIME_SEC(5), NULL), -ETIMEDOUT);
  assert_int_equal(chime_group_size(g), 1); /* a ended at 3 s */
  assert_int_equal(chime_group_cancel(g), 0);
  int err = 0;
  assert_int_equal(chime_group_join(g, CHIME_NEVER, &err), 0);
  assert_int_equal(err, -ECANCELED);
  return chime_group_free(g);
}

static void jobs_live_in_groups(void **state) {
  (void)state;
  setup(0, 0);
  assert_int_equal(run_virtual(group_main, NULL), 0);
  assert_string_equal(starts(&R), "1 2 3");
  assert_string_equal(starts(&R2), "2 4");
}

static int detached_main(void *unused) {
  (void)unused;
  chime_every_opts o = {.dtor = count_dtor, .name = "ticker"};
  assert_int_equal(chime_every(CHIME_SEC(1), rec_target, &R, &o, NULL), 0);
  chime_sleep(CHIME_MS(2500));
  return 0;
}

static void the_shutdown_ends_detached_jobs(void **state) {
  (void)state;
  setup(0, 0);
  dtor_calls = 0;
  assert_int_equal(run_virtual(detached_main, NULL), 0);
  assert_string_equal(starts(&R), "1 2");
  assert_int_equal(dtor_calls, 1);
}

static chime_ns forever_run(int k) {
  (void)k;
  return CHIME_HOUR(1);
}

static int stuck_main(void *unused) {
  (void)unused;
  chime_every_opts o = {.dtor = count_dtor, .name = "stuck-job"};
  chime_task j;
  assert_int_equal(chime_every(CHIME_SEC(1), rec_target, &R, &o, &j), 0);
  assert_int_equal(chime_task_set_name(j, "renamed-job"), 0);
  chime_sleep(CHIME_MS(1500));
  return 0;
}

static int shielded_target(void *p) {
  chime_shield(true);
  return rec_target(p);
}

static int stuck_shielded_main(void *unused) {
  (void)unused;
  chime_every_opts o = {.dtor = count_dtor, .name = "stuck-job"};
  chime_task j;
  assert_int_equal(chime_every(CHIME_SEC(1), shielded_target, &R, &o, &j), 0);
  assert_int_equal(chime_task_set_name(j, "renamed-job"), 0);
  chime_sleep(CHIME_MS(1500));
  return 0;
}

static void a_job_stuck_past_the_grace_period_is_reported(void **state) {
  (void)state;
  setup(0, 0);
  R.dur = forever_run;
  dtor_calls = 0;
  chime_report r;
  chime_run_opts o = virtual_run();
  o.grace = CHIME_SEC(5);
  assert_int_equal(chime_run(stuck_main, NULL, &o, &r), 0);
  assert_int_equal(r.abandoned, 0); /* the run saw the cancellation */
  setup(0, 0);
  R.dur = forever_run;
  dtor_calls = 0;
  assert_int_equal(chime_run(stuck_shielded_main, NULL, &o, &r), 0);
  assert_int_equal(r.abandoned, 1);
  assert_string_equal(r.names, "renamed-job");
  assert_int_equal(dtor_calls, 1); /* even abandoned, the destructor runs once */
}

/* ---- statistics, memory ------------------------------------------------------- */

static int observed_main(void *unused) {
  (void)unused;
  chime_task j;
  assert_int_equal(chime_every(CHIME_SEC(1), rec_target, &R, NULL, &j), 0);
  for (int i = 0; i < 2000; i++) {
    chime_job_stats s = stats_of(j); /* reading stats must not move anything */
    assert_true(s.next >= chime_now());
    chime_sleep(CHIME_MS(7));
  }
  return stop(j) == -ECANCELED ? 0 : -1;
}

static void reading_stats_never_moves_the_schedule(void **state) {
  (void)state;
  setup(0, 0);
  assert_int_equal(run_virtual(observed_main, NULL), 0);
  assert_int_equal(R.n, 14);
  for (int k = 0; k < R.n; k++)
    assert_int_equal(R.start[k], CHIME_SEC(k + 1));
}

static chime_ns d10ms(int k) {
  (void)k;
  return CHIME_MS(10);
}

static long stacks_at_peak;
static int stacks_target(void *p) {
  long n = chime__test_stacks_in_use();
  if (n > stacks_at_peak) stacks_at_peak = n;
  return rec_target(p);
}

static int many_jobs_main(void *unused) {
  (void)unused;
  enum { N = 1000 };
  static chime_task jobs[N];
  for (int i = 0; i < N; i++) {
    chime_every_opts o = {.start = CHIME_START_AT, .start_at = CHIME_SEC(1) + CHIME_US(500) * i};
    assert_int_equal(chime_every(CHIME_SEC(1), stacks_target, &R, &o, &jobs[i]), 0);
  }
  chime_sleep(CHIME_MS(5700)); /* ticks fall in [k, k + 0.5 s): no run is going now */
  long between = chime__test_stacks_in_use();
  for (int i = 0; i < N; i++)
    stop(jobs[i]);
  return between <= 2 ? 0 : (int)between; /* main, and the runner waiting */
}

static void between_runs_jobs_hold_no_stack(void **state) {
  (void)state;
  setup(0, 0);
  R.dur = d10ms;
  stacks_at_peak = 0;
  assert_int_equal(run_virtual(many_jobs_main, NULL), 0);
  assert_int_equal(R.n, 5000);
  /* runs of 10 ms, one starting every 0.5 ms: about 20 suspended at once,
   * plus main and the runner */
  if (stacks_at_peak < 20 || stacks_at_peak > 24) fail_msg("peak %ld stacks in use", stacks_at_peak);
}

/* ---- the real clock ------------------------------------------------------------- */

struct real_runs {
  int n;
  chime_ns tick[10], start[10];
};

static int real_target(void *p) {
  struct real_runs *r = p;
  if (r->n < 10) {
    chime_tick(&r->tick[r->n]);
    r->start[r->n] = chime_now();
  }
  r->n++;
  return 0;
}

static struct real_runs real;
static int real_main(void *unused) {
  (void)unused;
  chime_task j;
  chime_every_opts o = {.max_runs = 10};
  chime_ns created = chime_now();
  assert_int_equal(chime_every(CHIME_MS(20), real_target, &real, &o, &j), 0);
  assert_int_equal(chime_join(j, NULL), 0);
  assert_int_equal(real.n, 10);
  for (int k = 0; k < 10; k++) {
    /* on the grid from creation, never early, and (generously) on time */
    assert_true(real.tick[k] - created >= CHIME_MS(20) * (k + 1));
    assert_true(real.tick[k] - created < CHIME_MS(20) * (k + 1) + CHIME_MS(1));
    assert_int_equal(real.tick[k] - real.tick[0], CHIME_MS(20) * k);
    assert_true(real.start[k] >= real.tick[k]);
    assert_true(real.start[k] - real.tick[k] < CHIME_MS(500));
  }
  return 0;
}

static void on_the_real_clock_runs_keep_to_the_grid(void **state) {
  (void)state;
  memset(&real, 0, sizeof real);
  assert_int_equal(run_real(real_main, NULL), 0);
}

/* ---- bad input ------------------------------------------------------------------ */

static int bad_main(void *unused) {
  (void)unused;
  chime_task j = {777};
  static const struct {
    chime_every_opts o;
    chime_ns iv;
  } bad[] = {
      {{0}, 0},
      {{0}, -1},
      {{0}, INT64_MAX},
      {{.schedule = (chime_schedule)5}, CHIME_SEC(1)},
      {{.start = (chime_start)9}, CHIME_SEC(1)},
      {{.missed = (chime_missed)9}, CHIME_SEC(1)},
      {{.overlap = (chime_overlap)9}, CHIME_SEC(1)},
      {{.on_error = (chime_on_error)9}, CHIME_SEC(1)},
      {{.missed = CHIME_MISSED_BURST}, CHIME_SEC(1)}, /* burst with a catch-up limit of 0 */
      {{.max_catch_up = 3}, CHIME_SEC(1)},            /* a limit without burst */
      {{.missed = CHIME_MISSED_BURST, .max_catch_up = 70000}, CHIME_SEC(1)},
      {{.overlap = CHIME_OVERLAP_ALLOW}, CHIME_SEC(1)}, /* allow without a number */
      {{.overlap = CHIME_OVERLAP_ALLOW, .max_concurrent = 256}, CHIME_SEC(1)},
      {{.max_concurrent = 2}, CHIME_SEC(1)},
      {{.on_error = CHIME_ERROR_BACKOFF}, CHIME_SEC(1)},
      {{.on_error = CHIME_ERROR_BACKOFF, .backoff_base = CHIME_SEC(5), .backoff_max = CHIME_SEC(1)}, CHIME_SEC(1)},
      {{.backoff_base = CHIME_SEC(5)}, CHIME_SEC(1)},
      {{.schedule = CHIME_FIXED_DELAY, .overlap = CHIME_OVERLAP_QUEUE}, CHIME_SEC(1)},
      {{.schedule = CHIME_FIXED_DELAY, .missed = CHIME_MISSED_DELAY}, CHIME_SEC(1)},
      {{.spread = CHIME_SEC(5)}, CHIME_SEC(1)}, /* a spread without a key */
      {{.key = "k"}, CHIME_SEC(1)},             /* a key without a spread */
      {{.until = CHIME_SEC(1)}, CHIME_SEC(1)},  /* a stop time in the past */
      {{.until = -5}, CHIME_SEC(1)},
      {{.start = CHIME_START_AT, .start_at = -1}, CHIME_SEC(1)},
      {{.start_at = CHIME_SEC(3)}, CHIME_SEC(1)}, /* a start time without CHIME_START_AT */
      {{.jitter = -1}, CHIME_SEC(1)},
      {{.jitter = INT64_MAX}, CHIME_SEC(1)}, /* overflows when added to a deadline */
      {{.timeout = INT64_MAX - 5}, CHIME_SEC(1)},
      {{.window = -CHIME_SEC(1)}, CHIME_SEC(1)},
      {{.spread = INT64_MAX, .key = "k"}, CHIME_SEC(1)},
      /* refused as well where every other option is the default (which a
       * quicker test than these checks passes) */
      {{0}, ((chime_ns)1 << 61) + 1},
      {{.start = CHIME_START_AT, .start_at = INT64_MAX}, CHIME_SEC(1)},
      {{.window = ((chime_ns)1 << 61) + 1}, CHIME_SEC(1)},
      {{.timeout = INT64_MIN}, CHIME_SEC(1)},
      {{.veto_timeout = CHIME_SEC(1)}, CHIME_SEC(1)}, /* without a veto */
  };
  chime_sleep(CHIME_SEC(2));
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int rc = chime_every(bad[i].iv, rec_target, &R, &bad[i].o, &j);
    if (rc != -EINVAL) fail_msg("case %zu: %d", i, rc);
    assert_int_equal(j.id, 777); /* output untouched */
  }
  assert_int_equal(chime_every(CHIME_SEC(1), NULL, &R, NULL, &j), -EINVAL);
  chime_job_stats s;
  assert_int_equal(chime_every_stats(chime_self(), &s), -EINVAL); /* a task, not a job */
  assert_int_equal(chime_every(CHIME_SEC(1), rec_target, &R, NULL, &j), 0);
  assert_int_equal(chime_every_stats(j, NULL), -EINVAL);
  stop(j);
  assert_int_equal(chime_every_stats(j, &s), -EINVAL); /* joined: stale */
  chime_sleep(CHIME_SEC(3));
  return R.n; /* nothing ran */
}

static void bad_options_are_refused_and_nothing_is_scheduled(void **state) {
  (void)state;
  setup(0, 0);
  assert_int_equal(run_virtual(bad_main, NULL), 0);
  chime_task j = {0};
  chime_job_stats s;
  assert_int_equal(chime_every(CHIME_SEC(1), rec_target, &R, NULL, &j), -EPERM);
  assert_int_equal(chime_every_stats(j, &s), -EPERM);
}

/* Every allocation chime_every makes, failed in turn: -ENOMEM, nothing
 * leaked, the destructor not called, and the loop goes on. */
static int fault_main(void *unused) {
  (void)unused;
  long n;
  for (n = 0;; n++) {
    chime_task j;
    chime_every_opts o = {.dtor = count_dtor, .name = n % 2 ? "odd" : "even"};
    long before = chime__test_failures();
    chime__test_fail_after(n, false);
    int rc = chime_every(CHIME_SEC(1), rec_target, &R, &o, &j);
    chime__test_fail_after(-1, false);
    if (chime__test_failures() == before) {
      assert_int_equal(rc, 0);
      stop(j);
      break;
    }
    assert_int_equal(rc, -ENOMEM);
  }
  assert_true(n >= 2);
  assert_int_equal(dtor_calls, 1);
  return 0;
}

static void allocation_failures_in_chime_every_are_clean(void **state) {
  (void)state;
  setup(0, 0);
  dtor_calls = 0;
  assert_int_equal(run_virtual(fault_main, NULL), 0);
}

/* ---- many targets that suspend, on the real clock ------------------------------ */

static chime_ns worst_late;

static int sleepy_target(void *arg) {
  (void)arg;
  chime_ns tick;
  assert_int_equal(chime_tick(&tick), 0);
  if (chime_now() - tick > worst_late) worst_late = chime_now() - tick;
  return chime_sleep(CHIME_MS(50));
}

static int sleepy_main(void *arg) {
  (void)arg;
  chime_every_opts o = {.start = CHIME_START_AT, .start_at = chime_now() + CHIME_MS(20), .max_runs = 1};
  chime_task jobs[200];
  for (int i = 0; i < 200; i++)
    assert_int_equal(chime_every(CHIME_SEC(1), sleepy_target, NULL, &o, &jobs[i]), 0);
  for (int i = 0; i < 200; i++)
    assert_int_equal(chime_join(jobs[i], NULL), 0);
  return 0;
}

static void jobs_due_together_all_start_while_the_first_ones_suspend(void **state) {
  (void)state;
  worst_late = 0;
  assert_int_equal(run_real(sleepy_main, NULL), 0);
  /* each target suspends at once: all 200 start within a few ms of the
   * tick, not one per wake-up of the loop (a generous bound) */
  assert_true(worst_late < CHIME_MS(500));
}

/* Jobs near the end of chime_ns: refused where their first tick would pass
 * it, and stopped (not wrapped around) where a later one would. */
static int count_run(void *p) {
  (*(int *)p)++;
  return 0;
}

static int far_jobs_main(void *unused) {
  (void)unused;
  static int runs;

  assert_int_equal(chime_wall_set(0), 0); /* so that the wall side may go as far */
  assert_int_equal(chime_clock_advance(INT64_MAX - CHIME_SEC(5) - chime_now()), 0);
  assert_int_equal(chime_every(CHIME_SEC(10), count_run, &runs, NULL, NULL), -EINVAL);
  assert_non_null(strstr(chime_every_error(), "interval"));
  return 0;
}

/* Advances the virtual clock in steps of `step` to the end of time,
 * letting the jobs tick on the way. */
static void drive_to_the_end(chime_ns step) {
  for (int i = 0; i < 64; i++) {
    chime_ns left = INT64_MAX - chime_now();
    if (left <= 2) break;
    assert_int_equal(chime_clock_advance(left - 2 < step ? left - 2 : step), 0);
    assert_int_equal(chime_sleep(1), 0);
  }
  assert_true(INT64_MAX - chime_now() <= 3);
}

/* Ticks, jitter, window and spread near 2^63, driven to the end of the
 * clock (periodic.c's tick and start_at arithmetic overflowed there); a
 * job that started at start_at's limit, the same. */
static int huge_jobs_main(void *unused) {
  (void)unused;
  static int runs;
  const chime_ns big = (chime_ns)1 << 61;
  chime_every_opts o = {.jitter = big, .window = big, .spread = big, .key = "k", .start = CHIME_START_NOW};
  chime_task j;
  assert_int_equal(chime_wall_set(0), 0);
  assert_int_equal(chime_every(big, count_run, &runs, &o, &j), 0);
  drive_to_the_end(big / 8);
  assert_true(runs >= 2);
  assert_int_equal(chime_cancel(j), 0);
  return chime_join(j, NULL);
}

static int start_at_limit_main(void *unused) {
  (void)unused;
  static int runs;
  const chime_ns big = (chime_ns)1 << 61;
  chime_every_opts at = {.start = CHIME_START_AT, .start_at = CHIME_NEVER - 2 * big, .jitter = big};
  chime_task k;
  assert_int_equal(chime_wall_set(0), 0);
  assert_int_equal(chime_every(big, count_run, &runs, &at, &k), 0);
  drive_to_the_end(big / 8);
  assert_int_equal(chime_cancel(k), 0);
  return chime_join(k, NULL);
}

static void jobs_at_the_end_of_time_stop_rather_than_overflow(void **state) {
  (void)state;
  assert_int_equal(run_virtual(far_jobs_main, NULL), 0);
  assert_int_equal(run_virtual(huge_jobs_main, NULL), 0);
  assert_int_equal(run_virtual(start_at_limit_main, NULL), 0);
}

TEST_MAIN(cmocka_unit_test(jobs_due_together_all_start_while_the_first_ones_suspend),
          cmocka_unit_test(jobs_at_the_end_of_time_stop_rather_than_overflow),
          cmocka_unit_test(the_tutorial_with_chime_every), cmocka_unit_test(fixed_rate_stays_on_the_grid),
          cmocka_unit_test(fixed_delay_follows_each_return), cmocka_unit_test(start_now_and_start_at),
          cmocka_unit_test(overlap_skip_drops_ticks_while_a_run_goes),
          cmocka_unit_test(overlap_queue_runs_one_waiting_tick_at_the_return),
          cmocka_unit_test(overlap_allow_runs_up_to_n_at_once),
          cmocka_unit_test(overlap_replace_cancels_the_running_run),
          cmocka_unit_test(missed_skip_runs_late_once_then_the_next_grid_point),
          cmocka_unit_test(missed_burst_catches_up_at_most_the_limit),
          cmocka_unit_test(missed_burst_runs_back_to_back_even_when_runs_suspend),
          cmocka_unit_test(missed_delay_restarts_the_grid), cmocka_unit_test(a_busy_run_makes_later_ticks_missed),
          cmocka_unit_test(jitter_delays_each_run_within_bounds_without_drift),
          cmocka_unit_test(spread_gives_each_key_a_stable_offset), cmocka_unit_test(windows_make_jobs_wake_together),
          cmocka_unit_test(a_window_waits_for_the_first_boundary_of_its_step),
          cmocka_unit_test(a_run_past_its_timeout_is_cancelled),
          cmocka_unit_test(a_busy_run_sees_its_timeout_at_its_next_suspension_point),
          cmocka_unit_test(errors_continue_by_default), cmocka_unit_test(errors_stop_the_job_when_asked),
          cmocka_unit_test(errors_back_off_exponentially_then_reset),
          cmocka_unit_test(limits_stop_a_job_by_count_and_by_time),
          cmocka_unit_test(cancel_and_wait_reaches_the_running_target), cmocka_unit_test(a_run_can_cancel_its_own_job),
          cmocka_unit_test(jobs_live_in_groups), cmocka_unit_test(the_shutdown_ends_detached_jobs),
          cmocka_unit_test(a_job_stuck_past_the_grace_period_is_reported),
          cmocka_unit_test(reading_stats_never_moves_the_schedule), cmocka_unit_test(between_runs_jobs_hold_no_stack),
          cmocka_unit_test(on_the_real_clock_runs_keep_to_the_grid),
          cmocka_unit_test(bad_options_are_refused_and_nothing_is_scheduled),
          cmocka_unit_test(allocation_failures_in_chime_every_are_clean),
          cmocka_unit_test(stopping_a_job_lets_its_run_finish))
