/* test_time.c - clocks and human durations. */
#include "test.h"

#include "machine.h"

static void parses(const char *text, chime_ns want) {
  chime_ns got = -1;
  int rc = chime_parse_duration(text, &got);
  if (rc != 0) fail_msg("'%s': %s", text, chime_strerror(rc));
  if (got != want) fail_msg("'%s': got %lld, want %lld", text, (long long)got, (long long)want);
}

static void refuses(const char *text, int want) {
  chime_ns got = 12345;
  int rc = chime_parse_duration(text, &got);
  if (rc != want) fail_msg("'%s': got %d, want %d", text ? text : "(null)", rc, want);
  assert_int_equal(got, 12345); /* output untouched */
}

static void parse_duration_reads_every_unit(void **state) {
  (void)state;
  parses("250ms", CHIME_MS(250));
  parses("1.5s", CHIME_MS(1500));
  parses("1h30m", CHIME_MIN(90));
  parses("2min", CHIME_MIN(2));
  parses("1h 30m 10s", CHIME_SEC(5410));
  parses("  30s  ", CHIME_SEC(30));
  parses("30 s", CHIME_SEC(30));
  parses("30", CHIME_SEC(30)); /* bare number: seconds */
  parses("0.1s", CHIME_MS(100));
  parses(".5s", CHIME_MS(500));
  parses("100ns", 100);
  parses("10us", CHIME_US(10));
  parses("10\xc2\xb5s", CHIME_US(10));
  parses("3usec", CHIME_US(3));
  parses("7msec", CHIME_MS(7));
  parses("2sec 1second 2seconds", CHIME_SEC(5));
  parses("1minute 2minutes", CHIME_MIN(3));
  parses("1hr 1hour 1hours", CHIME_HOUR(3));
  parses("1d", CHIME_HOUR(24));
  parses("2days", CHIME_HOUR(48));
  parses("1w", CHIME_HOUR(168));
  parses("1.000000001s", CHIME_SEC(1) + 1);
  parses("1.5h", CHIME_MIN(90));
  parses("0s", 0);
  parses("9223372036.854775807s", INT64_MAX);
}

static void parse_duration_refuses_bad_text(void **state) {
  (void)state;
  chime_ns out;
  assert_int_equal(chime_parse_duration(NULL, &out), -EINVAL);
  assert_int_equal(chime_parse_duration("1s", NULL), -EINVAL);
  refuses("", -EINVAL);
  refuses("   ", -EINVAL);
  refuses("-1s", -EINVAL);
  refuses("+1s", -EINVAL);
  refuses("1x", -EINVAL);
  refuses("s", -EINVAL);
  refuses("1.5.5s", -EINVAL);
  refuses("1h30", -EINVAL);
  refuses("30 5", -EINVAL);
  refuses("abc", -EINVAL);
  refuses("1S", -EINVAL);
  refuses("1 h 2", -EINVAL);
  refuses(".s", -EINVAL);
  refuses("9223372036.854775808s", -ERANGE);
  refuses("9223372037s", -ERANGE);
  refuses("99999999999999999999999", -ERANGE);
  refuses("106752d 1d", -ERANGE);
}

static void formats(chime_ns d, const char *want) {
  char buf[64];
  int n = chime_format_duration(d, buf, sizeof buf);
  assert_string_equal(buf, want);
  assert_int_equal(n, (int)strlen(want));
}

static void format_duration_writes_largest_units_first(void **state) {
  (void)state;
  formats(0, "0s");
  formats(CHIME_MS(1500), "1.5s");
  formats(CHIME_SEC(90), "1m30s");
  formats(CHIME_MIN(90), "1h30m");
  formats(CHIME_MS(250), "250ms");
  formats(1234, "1.234us");
  formats(7, "7ns");
  formats(CHIME_HOUR(26) + CHIME_MS(500), "1d2h0.5s");
  formats(-CHIME_SEC(2), "-2s");
  formats(INT64_MIN, "-106751d23h47m16.854775808s");
  formats(INT64_MAX, "106751d23h47m16.854775807s");
}

static void format_duration_round_trips(void **state) {
  (void)state;
  uint64_t x = 88172645463325252ull;
  for (int i = 0; i < 20000; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    chime_ns d = (chime_ns)(x >> (1 + i % 63));
    char buf[64];
    chime_format_duration(d, buf, sizeof buf);
    chime_ns back = -1;
    assert_int_equal(chime_parse_duration(buf, &back), 0);
    assert_int_equal(back, d);
  }
}

static void format_duration_truncates_like_snprintf(void **state) {
  (void)state;
  char buf[4];
  assert_int_equal(chime_format_duration(CHIME_SEC(5410), buf, sizeof buf), (int)strlen("1h30m10s"));
  assert_string_equal(buf, "1h3");
  assert_int_equal(chime_format_duration(1, NULL, 4), -EINVAL);
  assert_int_equal(chime_format_duration(1, buf, 0), -EINVAL);
}

static void now_outside_a_loop_is_the_monotonic_clock(void **state) {
  (void)state;
  chime_ns a = chime_now();
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  chime_ns b = chime_now();
  chime_ns mono = (chime_ns)ts.tv_sec * 1000000000 + ts.tv_nsec;
  assert_true(a <= mono && mono <= b);
}

static int sleep_an_hour(void *arg) {
  chime_ns *seen = arg;
  seen[0] = chime_now();
  assert_int_equal(chime_sleep(CHIME_HOUR(1)), 0);
  seen[1] = chime_now();
  assert_int_equal(chime_sleep_until(CHIME_HOUR(2) + 7), 0);
  seen[2] = chime_now();
  return 0;
}

static void virtual_clock_starts_at_zero_and_jumps_to_deadlines(void **state) {
  (void)state;
  chime_ns seen[3];
  chime_ns t0 = real_ns();
  assert_int_equal(run_virtual(sleep_an_hour, seen), 0);
  assert_int_equal(seen[0], 0);
  assert_int_equal(seen[1], CHIME_HOUR(1));
  assert_int_equal(seen[2], CHIME_HOUR(2) + 7);
  assert_true(real_ns() - t0 < CHIME_SEC(5)); /* generous: it takes microseconds */
}

static void environment_selects_the_virtual_clock(void **state) {
  (void)state;
  chime_ns seen[3];
  setenv("CHIME_CLOCK", "virtual", 1);
  assert_int_equal(chime_run(sleep_an_hour, seen, NULL, NULL), 0);
  unsetenv("CHIME_CLOCK");
  assert_int_equal(seen[1], CHIME_HOUR(1));
}

static void environment_values_are_checked(void **state) {
  (void)state;
  chime_loop *loop = NULL;
  setenv("CHIME_CLOCK", "virtaul", 1);
  assert_int_equal(chime_loop_new(NULL, &loop), -EINVAL);
  setenv("CHIME_CLOCK", "real", 1);
  setenv("CHIME_BACKEND", "pol", 1);
  assert_int_equal(chime_loop_new(NULL, &loop), -EINVAL);
  assert_null(loop);
  setenv("CHIME_BACKEND", "poll", 1);
  assert_int_equal(chime_loop_new(NULL, &loop), 0);
  assert_string_equal(chime_loop_backend(loop), "poll");
  chime_loop_free(loop);
  /* an explicit option wins over the environment */
  chime_loop_opts o = {.clock = CHIME_CLOCK_REAL, .backend = CHIME_BACKEND_EPOLL};
  setenv("CHIME_CLOCK", "virtual", 1);
  assert_int_equal(chime_loop_new(&o, &loop), 0);
  assert_string_equal(chime_loop_backend(loop), "epoll");
  chime_loop_free(loop);
  unsetenv("CHIME_CLOCK");
  unsetenv("CHIME_BACKEND");
}

static int read_clock_twice(void *arg) {
  chime_ns *seen = arg;
  seen[0] = chime_now();
  chime_sleep(CHIME_MS(20));
  seen[1] = chime_now();
  return 0;
}

static void real_clock_sleeps_are_never_short(void **state) {
  (void)state;
  chime_ns seen[2];
  assert_int_equal(run_real(read_clock_twice, seen), 0);
  assert_true(seen[1] - seen[0] >= CHIME_MS(20));
  assert_true(seen[1] - seen[0] < CHIME_SEC(5)); /* generous */
}

/* Whether the kernel keeps time with the TSC (the run clock extrapolates). */
static bool tsc_clock(void) {
#if defined(__x86_64__) && defined(__linux__)
  char src[16] = "";
  FILE *f = fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "r");
  if (f) {
    if (!fgets(src, sizeof src, f)) src[0] = 0;
    fclose(f);
  }
  return strcmp(src, "tsc\n") == 0;
#else
  return false;
#endif
}

/* The run clock, read back to back with CLOCK_MONOTONIC for 300 ms: never
 * ahead of it, never backwards, and (where it extrapolates, once its rate
 * is known after 100 ms) close behind it. */
static void run_clock_is_never_ahead_of_the_monotonic_one(void **state) {
  (void)state;
  struct chime__tsc c = {0};
  chime_ns first = chime__tsc_mark(&c), last = first, behind = 0;
  long reads = 0, extrapolated = 0;
  for (chime_ns now = first; now - first < CHIME_MS(300); reads++) {
    chime_ns mark = c.mono, before = chime__mono();
    chime_ns t = chime__tsc_now(&c);
    now = chime__mono();
    if (t > now) fail_msg("read %ld: the run clock %lld ns ahead", reads, (long long)(t - now));
    if (t < last) fail_msg("read %ld: the run clock went back %lld ns", reads, (long long)(last - t));
    if (c.mono == mark && c.mult) { /* extrapolated from the same mark */
      extrapolated++;
      if (before - t > behind) behind = before - t;
    }
    last = t;
  }
  if (!tsc_clock()) skip(); /* the counter does not serve: every read was a clock_gettime */
  if (extrapolated < reads / 2) fail_msg("%ld of %ld reads extrapolated", extrapolated, reads);
  /* 0.2% of the span, and a mark's counter read after its clock (20,000
   * counts at most: 20 us at 1 GHz); generous */
  if (behind > CHIME_US(50)) fail_msg("as much as %lld ns behind", (long long)behind);
}

/* Marks until the run clock has measured its rate (at most 2 s). */
static void run_clock_calibrated(struct chime__tsc *c) {
  for (chime_ns t0 = chime__mono(); !c->mult && chime__mono() - t0 < CHIME_SEC(2);)
    chime__tsc_mark(c);
  assert_true(c->mult != 0);
}

/* A clock that slows (a fast slew) makes a measured rate too fast: the
 * next mark sees where an extrapolation would be, ahead of the clock, and
 * stops extrapolating until the rate is measured again. */
static void run_clock_stops_extrapolating_when_the_clock_slows(void **state) {
  (void)state;
  if (!tsc_clock()) skip();
  struct chime__tsc c;
  for (int tries = 0;; tries++) {
    assert_true(tries < 20);
    c = (struct chime__tsc){0};
    run_clock_calibrated(&c);
    chime__tsc_mark(&c);
    if (c.again) continue; /* its reads were preempted apart: tried anew */
    c.mult *= 2;           /* as if the clock had run at half the rate measured, since */
    chime_ns t0 = chime__mono();
    while (chime__mono() - t0 < CHIME_US(30)) {
    }
    chime__tsc_mark(&c); /* an extrapolation would be some 30 us ahead */
    if (c.mult && c.again) continue;
    assert_int_equal(c.mult, 0); /* seen at the mark */
    break;
  }
  for (int i = 0; i < 1000; i++) {
    chime_ns t = chime__tsc_now(&c);
    assert_true(t <= chime__mono());
  }
  run_clock_calibrated(&c); /* and measured again */
}

static int spin_200us(void *arg) {
  (void)arg;
  chime_ns t0 = chime__mono();
  while (chime__mono() - t0 < CHIME_US(200)) {
  }
  return 0;
}

static int job_of_spins(void *arg) {
  chime_job_stats *st = arg;
  chime_task j;
  chime_every_opts o = {.start = CHIME_START_NOW, .max_runs = 500};
  int rc = chime_every(CHIME_MS(1), spin_200us, NULL, &o, &j);
  if (rc) return rc;
  int result = -1;
  rc = chime_every_join(j, CHIME_NEVER, &result, st); /* 500 ms: the run clock's rate is known after 100 */
  return rc ? rc : result;
}

/* Runs' durations, taken with the run clock, are the time the targets took. */
static void run_durations_are_measured_on_the_run_clock(void **state) {
  (void)state;
  chime_job_stats st;
  assert_int_equal(run_real(job_of_spins, &st), 0);
  assert_int_equal(st.runs, 500);
  assert_true(st.last_duration >= CHIME_US(200) - CHIME_US(1)); /* 0.2% of it behind, at most */
  assert_true(st.last_duration < CHIME_MS(100));                /* generous */
  assert_true(st.max_duration >= st.last_duration);
}

/* Text that is not zero never reads as zero; no errno overflows a name. */
static void tiny_durations_and_odd_errors_are_refused_or_named(void **state) {
  (void)state;
  chime_ns d = 7;
  assert_int_equal(chime_parse_duration("0.0000000001s", &d), -ERANGE);
  assert_int_equal(chime_parse_duration("0.0000000009s", &d), -ERANGE); /* was 0: truncated */
  assert_int_equal(chime_parse_duration("0.00000000000000000000001w", &d), -ERANGE);
  assert_int_equal(d, 7);
  assert_int_equal(chime_parse_duration("0.000s", &d), 0);
  assert_int_equal(d, 0);
  assert_int_equal(chime_parse_duration("1.0000000001s", &d), 0); /* what is below a nanosecond is dropped */
  assert_int_equal(d, CHIME_SEC(1));
  assert_string_equal(chime_strerror(INT32_MIN), "unknown error");
  assert_string_equal(chime_strerror(INT32_MAX), "unknown error");
}

TEST_MAIN(cmocka_unit_test(parse_duration_reads_every_unit), cmocka_unit_test(parse_duration_refuses_bad_text),
          cmocka_unit_test(tiny_durations_and_odd_errors_are_refused_or_named),
          cmocka_unit_test(format_duration_writes_largest_units_first), cmocka_unit_test(format_duration_round_trips),
          cmocka_unit_test(format_duration_truncates_like_snprintf),
          cmocka_unit_test(now_outside_a_loop_is_the_monotonic_clock),
          cmocka_unit_test(virtual_clock_starts_at_zero_and_jumps_to_deadlines),
          cmocka_unit_test(environment_selects_the_virtual_clock), cmocka_unit_test(environment_values_are_checked),
          cmocka_unit_test(real_clock_sleeps_are_never_short),
          cmocka_unit_test(run_clock_is_never_ahead_of_the_monotonic_one),
          cmocka_unit_test(run_clock_stops_extrapolating_when_the_clock_slows),
          cmocka_unit_test(run_durations_are_measured_on_the_run_clock))
