/* test_calendar.c - calendar jobs (chime_cron) on the virtual clock: their
 * times, their zones and daylight saving time, every option of a periodic
 * job, and wall-clock jumps. */
#include "test.h"

/* Wall instant of a UTC time "YYYY-MM-DD HH:MM:SS". */
static chime_ns utc(const char *s) {
  struct tm tm;
  memset(&tm, 0, sizeof tm);
  assert_non_null(strptime(s, "%Y-%m-%d %H:%M:%S", &tm));
  return (chime_ns)timegm(&tm) * CHIME_SEC(1);
}

struct record {
  const char *zone; /* for the trace's local times */
  chime_tz *tz;
  struct trace trace;
  int runs;
  int fail_first; /* the first n runs fail */
  chime_ns run_for;
  bool tick_matches; /* chime_tick() named a whole second of the wall clock, not after the run's start */
  bool tick_exact;   /* ... and the very nanosecond the run started at (no run was late) */
};

/* Records the local wall time of each run. */
static int record_run(void *arg) {
  struct record *r = arg;
  char buf[64];
  assert_true(chime_tz_format(r->tz, chime_wall_now(), buf, sizeof buf) > 0);
  trace_add(&r->trace, "%s", buf + 5); /* "MM-DD HH:MM:SS ZONE" */
  chime_ns tick;
  assert_int_equal(chime_tick(&tick), 0);
  if (tick % CHIME_SEC(1) != 0 || tick > chime_wall_now()) r->tick_matches = false;
  if (tick != chime_wall_now()) r->tick_exact = false;
  r->runs++;
  if (r->run_for) {
    int rc = chime_sleep(r->run_for);
    if (rc) return rc; /* cut short by a timeout */
  }
  return r->runs <= r->fail_first ? -EIO : 0;
}

static void record_init(struct record *r, const char *zone) {
  memset(r, 0, sizeof *r);
  r->zone = zone;
  r->tick_matches = r->tick_exact = true;
  assert_int_equal(chime_tz_load(zone, &r->tz), 0);
}

struct plan {
  const char *start; /* UTC wall time the virtual clock starts at */
  const char *expr;
  chime_every_opts opts;
  struct record *rec;
  chime_ns run_time; /* how long the main task lets the job go on */
};

static int plan_main(void *arg) {
  struct plan *p = arg;
  assert_int_equal(chime_wall_set(utc(p->start)), 0);
  chime_task job;
  assert_int_equal(chime_cron(p->expr, record_run, p->rec, &p->opts, &job), 0);
  assert_int_equal(chime_sleep(p->run_time), 0);
  assert_int_equal(chime_cancel(job), 0);
  int rc;
  assert_int_equal(chime_join(job, &rc), 0);
  assert_int_equal(rc, -ECANCELED);
  return 0;
}

/* Runs expr from `start` (UTC) for `run_time`, in zone, and checks the
 * local times of the runs. */
static void expect_runs(const char *expr, const char *zone, const char *start, chime_ns run_time, const char *want) {
  struct record r;
  record_init(&r, zone);
  struct plan p = {start, expr, {.tz = zone}, &r, run_time};
  assert_int_equal(run_virtual(plan_main, &p), 0);
  assert_string_equal(r.trace.text, want);
  assert_true(r.tick_matches);
  assert_true(r.tick_exact);
  chime_tz_free(r.tz);
}

static void a_daily_job_runs_at_its_time_every_day(void **state) {
  (void)state;
  expect_runs("30 2 * * *", "UTC", "2026-03-01 12:00:00", CHIME_HOUR(72),
              "03-02 02:30:00 UTC 03-03 02:30:00 UTC 03-04 02:30:00 UTC");
  expect_runs("0 9 * * mon", "America/New_York", "2026-11-24 12:00:00", CHIME_HOUR(24 * 14),
              "11-30 09:00:00 EST 12-07 09:00:00 EST");
}

/* ---- daylight saving time, as README.md states it ------------------------------------- */

static void a_time_the_clock_skips_runs_once_at_the_first_instant_after(void **state) {
  (void)state;
  /* Berlin: 2026-03-29 02:00 CET -> 03:00 CEST */
  expect_runs("30 2 * * *", "Europe/Berlin", "2026-03-27 12:00:00", CHIME_HOUR(72),
              "03-28 02:30:00 CET 03-29 03:00:00 CEST 03-30 02:30:00 CEST");
  /* New York: 2026-03-08 02:00 EST -> 03:00 EDT */
  expect_runs("30 2 * * *", "America/New_York", "2026-03-06 12:00:00", CHIME_HOUR(72),
              "03-07 02:30:00 EST 03-08 03:00:00 EDT 03-09 02:30:00 EDT");
  /* Lord Howe: 2026-10-04 02:00 +1030 -> 02:30 +11 (a half-hour shift) */
  expect_runs("15 2 * * *", "Australia/Lord_Howe", "2026-10-02 12:00:00", CHIME_HOUR(72),
              "10-03 02:15:00 +1030 10-04 02:30:00 +11 10-05 02:15:00 +11");
}

static void a_time_the_clock_repeats_runs_once_at_its_first_occurrence(void **state) {
  (void)state;
  /* Berlin: 2026-10-25 03:00 CEST -> 02:00 CET */
  expect_runs("30 2 * * *", "Europe/Berlin", "2026-10-23 12:00:00", CHIME_HOUR(72),
              "10-24 02:30:00 CEST 10-25 02:30:00 CEST 10-26 02:30:00 CET");
  /* New York: 2026-11-01 02:00 EDT -> 01:00 EST */
  expect_runs("30 1 * * *", "America/New_York", "2026-10-30 12:00:00", CHIME_HOUR(72),
              "10-31 01:30:00 EDT 11-01 01:30:00 EDT 11-02 01:30:00 EST");
  /* Lord Howe: 2026-04-05 02:00 +11 -> 01:30 +1030 */
  expect_runs("45 1 * * *", "Australia/Lord_Howe", "2026-04-03 12:00:00", CHIME_HOUR(72),
              "04-04 01:45:00 +11 04-05 01:45:00 +11 04-06 01:45:00 +1030");
}

static void fixed_minutes_of_every_hour_run_at_every_real_hour(void **state) {
  (void)state;
  /* the hour that repeats runs twice, the one skipped not at all */
  expect_runs("30 * * * *", "Europe/Berlin", "2026-10-24 23:00:00", CHIME_HOUR(4),
              "10-25 01:30:00 CEST 10-25 02:30:00 CEST 10-25 02:30:00 CET 10-25 03:30:00 CET");
  expect_runs("30 * * * *", "Europe/Berlin", "2026-03-28 23:00:00", CHIME_HOUR(3),
              "03-29 00:30:00 CET 03-29 01:30:00 CET 03-29 03:30:00 CEST");
}

/* ---- the options of a periodic job --------------------------------------------------------- */

static void overlap_timeout_and_backoff_apply_to_calendar_jobs(void **state) {
  (void)state;
  /* runs of 90 s every minute: the overlapping ticks are skipped */
  struct record r;
  record_init(&r, "UTC");
  r.run_for = CHIME_SEC(90);
  struct plan p = {"2026-01-01 00:00:30", "* * * * *", {.tz = "UTC"}, &r, CHIME_MIN(5)};
  assert_int_equal(run_virtual(plan_main, &p), 0);
  assert_string_equal(r.trace.text, "01-01 00:01:00 UTC 01-01 00:03:00 UTC 01-01 00:05:00 UTC");
  chime_tz_free(r.tz);
  /* two failures back off 150 s then 300 s */
  record_init(&r, "UTC");
  r.fail_first = 2;
  p = (struct plan){"2026-01-01 00:00:30",
                    "* * * * *",
                    {.tz = "UTC", .on_error = CHIME_ERROR_BACKOFF, .backoff_base = CHIME_SEC(150),
                     .backoff_max = CHIME_MIN(10)},
                    &r,
                    CHIME_MIN(10)};
  assert_int_equal(run_virtual(plan_main, &p), 0);
  assert_string_equal(r.trace.text, "01-01 00:01:00 UTC 01-01 00:04:00 UTC 01-01 00:09:00 UTC 01-01 00:10:00 UTC");
  chime_tz_free(r.tz);
}

static int stats_main(void *arg) {
  (void)arg;
  assert_int_equal(chime_wall_set(utc("2026-01-01 00:00:30")), 0);
  struct record r;
  record_init(&r, "UTC");
  r.run_for = CHIME_MIN(10);
  chime_every_opts o = {.tz = "UTC", .timeout = CHIME_SEC(30), .max_runs = 2, .name = "five-minutely"};
  chime_task job;
  assert_int_equal(chime_cron("*/5 * * * *", record_run, &r, &o, &job), 0);
  assert_int_equal(chime_task_set_name(job, "renamed"), 0); /* a copy of its spec */
  chime_job_stats st;
  assert_int_equal(chime_every_stats(job, &st), 0);
  assert_int_equal(st.next, chime_now() + CHIME_SEC(270)); /* 00:05:00 */
  do {
    assert_int_equal(chime_every_stats(job, &st), 0);
  } while (!st.done && chime_sleep(CHIME_MIN(1)) == 0);
  assert_int_equal(st.runs, 2); /* max_runs: it ended by itself */
  assert_int_equal(st.timeouts, 2); /* each run cut at 30 s */
  assert_int_equal(st.last_duration, CHIME_SEC(30));
  int rc;
  assert_int_equal(chime_join(job, &rc), 0);
  assert_int_equal(rc, 0);
  assert_string_equal(r.trace.text, "01-01 00:05:00 UTC 01-01 00:10:00 UTC");
  chime_tz_free(r.tz);
  return 0;
}

static void a_calendar_job_has_statistics_limits_and_a_join_result(void **state) {
  (void)state;
  assert_int_equal(run_virtual(stats_main, NULL), 0);
}

/* ---- wall-clock jumps ------------------------------------------------------------------------- */

struct jump {
  const char *to;           /* UTC wall time set at 12:05 */
  chime_every_opts opts;
  struct record rec;
  uint64_t skipped_missed;
};

static int jump_main(void *arg) {
  struct jump *jp = arg;
  assert_int_equal(chime_wall_set(utc("2026-06-01 12:00:30")), 0);
  chime_task job;
  jp->opts.tz = "UTC";
  assert_int_equal(chime_cron("*/10 * * * *", record_run, &jp->rec, &jp->opts, &job), 0);
  assert_int_equal(chime_sleep(CHIME_SEC(270)), 0); /* 12:05:00 */
  assert_int_equal(chime_wall_set(utc(jp->to)), 0);
  assert_int_equal(chime_sleep(CHIME_MIN(25)), 0);
  chime_job_stats st;
  assert_int_equal(chime_every_stats(job, &st), 0);
  jp->skipped_missed = st.skipped_missed;
  assert_int_equal(chime_cancel(job), 0);
  return chime_join(job, NULL);
}

static void expect_jump(const char *to, chime_every_opts opts, const char *want, uint64_t missed) {
  struct jump jp;
  memset(&jp, 0, sizeof jp);
  jp.to = to;
  jp.opts = opts;
  record_init(&jp.rec, "UTC");
  assert_int_equal(run_virtual(jump_main, &jp), 0);
  assert_string_equal(jp.rec.trace.text, want);
  assert_int_equal(jp.skipped_missed, missed);
  chime_tz_free(jp.rec.tz);
}

static void a_clock_set_back_reschedules_instead_of_sleeping_for_an_hour(void **state) {
  (void)state;
  /* 12:05 -> 11:00: the next run is 11:10, not 12:10 an hour and five minutes later */
  expect_jump("2026-06-01 11:00:00", (chime_every_opts){0}, "06-01 11:10:00 UTC 06-01 11:20:00 UTC",
              0);
}

static void a_clock_set_forward_runs_the_missed_tick_once_by_default(void **state) {
  (void)state;
  /* 12:05 -> 15:01: 12:10 runs at once (late), 12:20 ... 15:00 are counted
   * as missed, then 15:10 and 15:20 */
  expect_jump("2026-06-01 15:01:00", (chime_every_opts){0},
              "06-01 15:01:00 UTC 06-01 15:10:00 UTC 06-01 15:20:00 UTC", 17);
}

static void a_clock_set_forward_catches_up_in_a_burst_when_asked(void **state) {
  (void)state;
  chime_every_opts o = {.missed = CHIME_MISSED_BURST, .max_catch_up = 2};
  /* 12:10 runs late, then two catch-up runs (12:20, 12:30) back to back,
   * the rest (12:40 ... 15:00) counted as missed */
  expect_jump("2026-06-01 15:01:00", o,
              "06-01 15:01:00 UTC 06-01 15:01:00 UTC 06-01 15:01:00 UTC 06-01 15:10:00 UTC "
              "06-01 15:20:00 UTC",
              15);
}

/* ---- bad input ------------------------------------------------------------------------------------ */

static int twice(void *arg) {
  (*(int *)arg)++;
  return 0;
}

static int bad_main(void *arg) {
  (void)arg;
  chime_task job;
  int n = 0;
  chime_every_opts o = {0};
  assert_int_equal(chime_cron("61 * * * *", twice, &n, NULL, &job), -EINVAL);
  assert_int_equal(chime_cron("0 0 30 2 *", twice, &n, NULL, &job), -EINVAL); /* never */
  assert_int_equal(chime_cron(NULL, twice, &n, NULL, &job), -EINVAL);
  assert_int_equal(chime_cron("* * * * *", NULL, &n, NULL, &job), -EINVAL);
  o.tz = "Mars/Olympus_Mons";
  assert_int_equal(chime_cron("* * * * *", twice, &n, &o, &job), -ENOENT);
  o.tz = "../etc/passwd";
  assert_int_equal(chime_cron("* * * * *", twice, &n, &o, &job), -EINVAL);
  o = (chime_every_opts){.schedule = CHIME_FIXED_DELAY};
  assert_int_equal(chime_cron("* * * * *", twice, &n, &o, &job), -EINVAL);
  o = (chime_every_opts){.start = CHIME_START_NOW};
  assert_int_equal(chime_cron("* * * * *", twice, &n, &o, &job), -EINVAL);
  o = (chime_every_opts){.missed = CHIME_MISSED_DELAY};
  assert_int_equal(chime_cron("* * * * *", twice, &n, &o, &job), -EINVAL);
  o = (chime_every_opts){.spread = CHIME_SEC(5), .key = "host"};
  assert_int_equal(chime_cron("* * * * *", twice, &n, &o, &job), -EINVAL);
  o = (chime_every_opts){.jitter = -1};
  assert_int_equal(chime_cron("* * * * *", twice, &n, &o, &job), -EINVAL);
  o = (chime_every_opts){.tz = "UTC"};
  assert_int_equal(chime_every(CHIME_SEC(1), twice, &n, &o, &job), -EINVAL); /* a zone is for calendars */
  /* @every is an interval job */
  chime_ns t0 = chime_now();
  o = (chime_every_opts){.max_runs = 2};
  assert_int_equal(chime_cron("@every 90s", twice, &n, &o, &job), 0);
  assert_int_equal(chime_join(job, NULL), 0);
  assert_int_equal(n, 2);
  assert_int_equal(chime_now() - t0, CHIME_SEC(180));
  o = (chime_every_opts){.tz = "Mars/Olympus_Mons"}; /* an unknown zone is an error there too */
  assert_int_equal(chime_cron("@every 90s", twice, &n, &o, &job), -ENOENT);
  o = (chime_every_opts){.tz = "Europe/Berlin", .max_runs = 1}; /* a known one changes nothing */
  assert_int_equal(chime_cron("@every 90s", twice, &n, &o, &job), 0);
  assert_int_equal(chime_join(job, NULL), 0);
  assert_int_equal(chime_now() - t0, CHIME_SEC(270));
  return 0;
}

static void bad_expressions_zones_and_options_get_clear_errors(void **state) {
  (void)state;
  assert_int_equal(run_virtual(bad_main, NULL), 0);
  assert_int_equal(chime_cron("* * * * *", twice, NULL, NULL, NULL), -EPERM);
}

static int fault_main(void *arg) {
  (void)arg;
  int n = 0;
  for (long k = 0;; k++) {
    long before = chime__test_failures();
    chime_task job;
    chime_every_opts o = {.tz = "Europe/Berlin", .max_runs = 1};
    chime__test_fail_after(k, false);
    int rc = chime_cron("*/5 * * * *", twice, &n, &o, &job);
    chime__test_fail_after(-1, false);
    if (rc == 0) assert_int_equal(chime_join(job, NULL), 0);
    if (chime__test_failures() == before) {
      assert_int_equal(rc, 0);
      break;
    }
    assert_true(rc == 0 || rc == -ENOMEM || rc == -EMFILE || rc == -EIO); /* -EIO: reading the zone */
  }
  assert_true(n >= 1);
  return 0;
}

static void allocation_failures_are_reported_and_change_nothing(void **state) {
  (void)state;
  assert_int_equal(run_virtual(fault_main, NULL), 0);
}

/* On the real clock: whole seconds of the wall clock, and a timerfd
 * watching for jumps (walked through its failure too). */
static int whole_second(void *arg) {
  chime_ns w = chime_wall_now();
  if (w % CHIME_SEC(1) > CHIME_MS(200)) (*(int *)arg)++; /* more than 200 ms past the second: late */
  return 0;
}

static int real_main(void *arg) {
  int *late = arg;
  chime_task job;
  chime_every_opts o = {.tz = "UTC", .max_runs = 2};
  chime__test_fail_after(0, false); /* the first fallible call fails */
  int rc = chime_cron("* * * * * *", whole_second, late, &o, &job);
  chime__test_fail_after(-1, false);
  assert_true(rc == -ENOMEM || rc == -EMFILE || rc == -EIO);
  assert_int_equal(chime_cron("* * * * * *", whole_second, late, &o, &job), 0);
  assert_int_equal(chime_join(job, NULL), 0);
  return 0;
}

static void on_the_real_clock_runs_start_on_the_wall_clock_second(void **state) {
  (void)state;
  int late = 0;
  assert_int_equal(run_real(real_main, &late), 0);
  assert_int_equal(late, 0);
}

/* The system's clock set (to what it reads: a jump of a few microseconds,
 * which the kernel reports all the same) reaches the loop's timerfd.  The
 * same test on the other backend, or NTP, may set it too meanwhile: at
 * least one jump is seen. */
static int set_main(void *arg) {
  (void)arg;
  chime_task job;
  chime_every_opts o = {.tz = "UTC"};
  assert_int_equal(chime_cron("0 0 1 1 *", twice, &(int){0}, &o, &job), 0);
  long before = chime__test_wall_jumps();
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  if (clock_settime(CLOCK_REALTIME, &ts) != 0) { /* not allowed here */
    assert_int_equal(chime_cancel(job), 0);
    assert_int_equal(chime_join(job, NULL), 0);
    return 1;
  }
  for (int i = 0; i < 3000 && chime__test_wall_jumps() == before; i++) assert_int_equal(chime_sleep(CHIME_MS(10)), 0);
  assert_true(chime__test_wall_jumps() > before);
  chime_job_stats st;
  assert_int_equal(chime_every_stats(job, &st), 0);
  assert_true(st.next > chime_now()); /* still next January, planned afresh */
  assert_int_equal(chime_cancel(job), 0);
  return chime_join(job, NULL);
}

static void a_set_system_clock_reaches_calendar_jobs(void **state) {
  (void)state;
  int rc = run_real(set_main, NULL);
  if (rc == 1) skip(); /* no CAP_SYS_TIME */
  assert_int_equal(rc, 0);
}

/* ---- exact ticks in events ------------------------------------------------------------- */

static struct trace ev_trace;
static chime_tz *ev_tz;

/* Each START and SKIP: its tick and wall as local time, and whether the
 * tick is the wall instant itself, to the nanosecond. */
static void tick_event(const chime_event *ev) {
  char buf[64];
  if (ev->type != CHIME_EVENT_START && ev->type != CHIME_EVENT_SKIP) return;
  assert_true(chime_tz_format(ev_tz, ev->tick, buf, sizeof buf) > 0);
  trace_add(&ev_trace, "%c%s%s", ev->type == CHIME_EVENT_START ? 'S' : 'K', buf + 5,
            ev->tick == ev->wall && ev->tick % CHIME_SEC(1) == 0 ? "" : "(inexact)");
}

static int exact_target(void *arg) {
  (void)arg;
  chime_run_info info;
  assert_int_equal(chime_current_run(&info), 0);
  assert_int_equal(info.tick, info.wall);
  assert_int_equal(info.tick, chime_wall_now() - info.late);
  return 0;
}

static int exact_main(void *arg) {
  (void)arg;
  chime_every_opts o = {.tz = "Europe/Berlin", .on_event = tick_event};
  chime_task job;
  chime_job_stats st;
  assert_int_equal(chime_wall_set(utc("2026-03-27 12:00:00")), 0);
  assert_int_equal(chime_cron("30 2 * * *", exact_target, NULL, &o, &job), 0);
  assert_int_equal(chime_every_stats(job, &st), 0);
  assert_int_equal(st.next_wall, utc("2026-03-28 01:30:00")); /* 02:30 CET, exactly */
  assert_int_equal(st.next_tick, st.next_wall);
  assert_int_equal(chime_sleep(CHIME_HOUR(24 * 3)), 0);
  /* a jump forward over two runs: they are skipped as one event, exactly */
  assert_int_equal(chime_wall_set(utc("2026-04-01 12:00:00")), 0);
  assert_int_equal(chime_sleep(CHIME_HOUR(24)), 0);
  assert_int_equal(chime_cancel(job), 0);
  return chime_join(job, NULL);
}

static void calendar_ticks_are_exact_instants_across_a_dst_change(void **state) {
  (void)state;
  memset(&ev_trace, 0, sizeof ev_trace);
  assert_int_equal(chime_tz_load("Europe/Berlin", &ev_tz), 0);
  assert_int_equal(run_virtual(exact_main, NULL), 0);
  chime_tz_free(ev_tz);
  /* 29 March: 02:30 does not exist; the run is at 03:00 CEST, the first
   * instant after the gap.  The jump to 1 April 12:00 passed the runs of
   * 31 March and 1 April: the first runs late, the second is skipped (and
   * said so as the late tick is handled, before it starts). */
  assert_string_equal(ev_trace.text, "S03-28 02:30:00 CET S03-29 03:00:00 CEST S03-30 02:30:00 CEST "
                                     "K04-01 02:30:00 CEST S03-31 02:30:00 CEST S04-02 02:30:00 CEST");
}

TEST_MAIN(cmocka_unit_test(a_set_system_clock_reaches_calendar_jobs),
          cmocka_unit_test(calendar_ticks_are_exact_instants_across_a_dst_change),
          cmocka_unit_test(on_the_real_clock_runs_start_on_the_wall_clock_second),
          cmocka_unit_test(a_daily_job_runs_at_its_time_every_day),
          cmocka_unit_test(a_time_the_clock_skips_runs_once_at_the_first_instant_after),
          cmocka_unit_test(a_time_the_clock_repeats_runs_once_at_its_first_occurrence),
          cmocka_unit_test(fixed_minutes_of_every_hour_run_at_every_real_hour),
          cmocka_unit_test(overlap_timeout_and_backoff_apply_to_calendar_jobs),
          cmocka_unit_test(a_calendar_job_has_statistics_limits_and_a_join_result),
          cmocka_unit_test(a_clock_set_back_reschedules_instead_of_sleeping_for_an_hour),
          cmocka_unit_test(a_clock_set_forward_runs_the_missed_tick_once_by_default),
          cmocka_unit_test(a_clock_set_forward_catches_up_in_a_burst_when_asked),
          cmocka_unit_test(bad_expressions_zones_and_options_get_clear_errors),
          cmocka_unit_test(allocation_failures_are_reported_and_change_nothing))
