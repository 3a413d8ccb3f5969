/* test_events.c - what a job tells of itself (events, outcomes, skips),
 * the veto, triggered ticks, the reasons of a cancellation, and the
 * reasons of a refusal. */
#include "test.h"

/* ---- a job that records its events ------------------------------------------- */

struct rec {
  struct trace trace;          /* its events, in order */
  chime_ns (*dur)(int k);      /* how long run k sleeps */
  int (*result)(int k);        /* what run k returns (NULL: 0) */
  int (*veto)(int k);          /* what the veto says about tick k (k from 0) */
  chime_ns veto_sleep;         /* the veto holds each tick this long first */
  int n, vetoes;               /* runs, veto calls */
  chime_cancel_reason why[64]; /* each run's chime_cancelled_by() at its end */
  chime_cancel_reason veto_why;
  int veto_rc;                 /* what the veto's sleep returned last */
  chime_task job;              /* its handle, for callbacks that act on it */
  int cancel_on;               /* cancel the job on this event type (0: never) */
  int stop_on;                 /* stop it on this event type */
  int suspend_rc;              /* what chime_sleep returned inside a callback */
  chime_job_stats done;        /* the DONE event's statistics */
  int done_result;
};

static struct rec R;

static const char *outcome_name(chime_outcome o) {
  static const char *const names[] = {"ok", "error", "timeout", "cancelled", "replaced", "shutdown", "abandoned"};
  return names[o];
}

static const char *reason_name(chime_skip_reason r) {
  static const char *const names[] = {"?", "overlap", "missed", "backoff", "vetoed"};
  return names[r];
}

/* Seconds, with milliseconds when there are some. */
static void secs(char *buf, size_t size, chime_ns t) {
  if (t % CHIME_SEC(1))
    snprintf(buf, size, "%lld.%03lld", (long long)(t / CHIME_SEC(1)), (long long)(t % CHIME_SEC(1) / CHIME_MS(1)));
  else
    snprintf(buf, size, "%lld", (long long)(t / CHIME_SEC(1)));
}

static void on_event(const chime_event *ev) {
  struct rec *r = ev->arg;
  char t[32], last[32];
  secs(t, sizeof t, ev->tick);
  switch (ev->type) {
  case CHIME_EVENT_TICK: trace_add(&r->trace, "T%s", t); break;
  case CHIME_EVENT_START: trace_add(&r->trace, "S%s#%llu%s", t, (unsigned long long)ev->run, ev->triggered ? "!" : ""); break;
  case CHIME_EVENT_END:
    trace_add(&r->trace, "E%s#%llu:%s", t, (unsigned long long)ev->run, outcome_name(ev->outcome));
    break;
  case CHIME_EVENT_SKIP:
    secs(last, sizeof last, ev->last);
    if (ev->count == 1)
      trace_add(&r->trace, "K%s:%s%s", t, reason_name(ev->reason), ev->triggered ? "!" : "");
    else
      trace_add(&r->trace, "K%s..%s:%s*%llu", t, last, reason_name(ev->reason), (unsigned long long)ev->count);
    if (ev->reason == CHIME_SKIP_VETOED && ev->result != 1) /* the veto's answer, when not 1 */
      snprintf(r->trace.text + strlen(r->trace.text), sizeof r->trace.text - strlen(r->trace.text), "(%d)",
               ev->result);
    break;
  case CHIME_EVENT_DONE:
    trace_add(&r->trace, "D%d", ev->result);
    r->done = *ev->stats;
    r->done_result = ev->result;
    break;
  }
  /* what a callback may do: act on the job, never suspend */
  if (ev->type == CHIME_EVENT_TICK) r->suspend_rc = chime_sleep(1);
  if ((int)ev->type == r->cancel_on) assert_int_equal(chime_cancel(ev->job), 0);
  if ((int)ev->type == r->stop_on) assert_int_equal(chime_every_stop(ev->job), 0);
}

static int target(void *p) {
  struct rec *r = p;
  int k = r->n++;
  chime_run_info info;
  assert_int_equal(chime_current_run(&info), 0);
  assert_int_equal((long long)info.run, k + 1);
  int rc = r->dur ? chime_sleep(r->dur(k)) : 0;
  if (k < 64) r->why[k] = chime_cancelled_by();
  if (rc < 0) return rc;
  return r->result ? r->result(k) : 0;
}

static int veto(const chime_event *tick) {
  struct rec *r = tick->arg;
  int k = r->vetoes++;
  assert_int_equal(tick->type, CHIME_EVENT_TICK);
  chime_ns t;
  assert_int_equal(chime_tick(&t), 0);
  assert_int_equal(t, tick->tick);
  if (r->veto_sleep) {
    r->veto_rc = chime_sleep(r->veto_sleep);
    r->veto_why = chime_cancelled_by();
  }
  return r->veto ? r->veto(k) : 0;
}

static chime_every_opts O;
static chime_ns IV, UNTIL;

static void setup(chime_ns iv, chime_ns until) {
  memset(&R, 0, sizeof R);
  memset(&O, 0, sizeof O);
  O.on_event = on_event;
  IV = iv;
  UNTIL = until;
}

/* One job with R and O every IV, until UNTIL, then cancel-and-wait. */
static int one_job(void *unused) {
  (void)unused;
  assert_int_equal(chime_every(IV, target, &R, &O, &R.job), 0);
  assert_int_equal(chime_sleep_until(UNTIL), 0);
  if (chime_task_done(R.job) == 0) assert_int_equal(chime_cancel(R.job), 0);
  int rc;
  assert_int_equal(chime_join(R.job, &rc), 0);
  return 0;
}

static chime_ns secs_25(int k) {
  (void)k;
  return CHIME_SEC(25);
}
static chime_ns secs_5(int k) {
  (void)k;
  return CHIME_SEC(5);
}

/* ---- events ------------------------------------------------------------------- */

static void events_tell_each_tick_run_and_end_in_order(void **state) {
  (void)state;
  setup(CHIME_SEC(10), CHIME_SEC(35));
  assert_int_equal(run_virtual(one_job, NULL), 0);
  assert_string_equal(R.trace.text, "T10 S10#1 E10#1:ok T20 S20#2 E20#2:ok T30 S30#3 E30#3:ok D-125");
  assert_int_equal(R.suspend_rc, -EPERM); /* a callback cannot suspend */
  assert_int_equal((int)R.done.runs, 3);
  assert_true(R.done.done);
  assert_int_equal(R.done_result, -ECANCELED);
}

static int fails_second(int k) { return k == 1 ? -5 : 0; }

static void each_outcome_is_named(void **state) {
  (void)state;
  /* an error, then a timeout */
  setup(CHIME_SEC(10), CHIME_SEC(25));
  R.result = fails_second;
  assert_int_equal(run_virtual(one_job, NULL), 0);
  assert_string_equal(R.trace.text, "T10 S10#1 E10#1:ok T20 S20#2 E20#2:error D-125");
  setup(CHIME_SEC(10), CHIME_SEC(25));
  R.dur = secs_25;
  O.timeout = CHIME_SEC(3);
  assert_int_equal(run_virtual(one_job, NULL), 0);
  assert_string_equal(R.trace.text, "T10 S10#1 E10#1:timeout T20 S20#2 E20#2:timeout D-125");
  assert_int_equal(R.why[0], CHIME_CANCEL_TIMEOUT);
  /* replaced by a newer run; cancelled by a request */
  setup(CHIME_SEC(10), CHIME_SEC(25));
  R.dur = secs_25;
  O.overlap = CHIME_OVERLAP_REPLACE;
  assert_int_equal(run_virtual(one_job, NULL), 0);
  /* the replaced run ends as it cleans up, after the new one started */
  assert_string_equal(R.trace.text, "T10 S10#1 T20 S20#2 E10#1:replaced E20#2:cancelled D-125");
  assert_int_equal(R.why[0], CHIME_CANCEL_REPLACED);
  assert_int_equal(R.why[1], CHIME_CANCEL_REQUEST);
}

/* The loop's shutdown cancels a detached job's run: outcome shutdown. */
static int shutdown_main(void *unused) {
  (void)unused;
  assert_int_equal(chime_every(CHIME_SEC(10), target, &R, &O, NULL), 0);
  return chime_sleep(CHIME_SEC(12));
}

static void a_run_cut_by_the_shutdown_is_told_so(void **state) {
  (void)state;
  setup(CHIME_SEC(10), 0);
  R.dur = secs_25;
  assert_int_equal(run_virtual(shutdown_main, NULL), 0);
  assert_string_equal(R.trace.text, "T10 S10#1 E10#1:shutdown D-125");
  assert_int_equal(R.why[0], CHIME_CANCEL_SHUTDOWN);
}

/* ---- skips ---------------------------------------------------------------------- */

static void overlap_skips_are_told_tick_by_tick(void **state) {
  (void)state;
  setup(CHIME_SEC(10), CHIME_SEC(45));
  R.dur = secs_25;
  assert_int_equal(run_virtual(one_job, NULL), 0);
  assert_string_equal(R.trace.text,
                      "T10 S10#1 T20 K20:overlap T30 K30:overlap E10#1:ok T40 S40#2 E40#2:cancelled D-125");
}

/* A stall of the loop: the ticks it passed over come as one event. */
static int stall_main(void *unused) {
  (void)unused;
  assert_int_equal(chime_every(IV, target, &R, &O, &R.job), 0);
  assert_int_equal(chime_sleep(IV + IV / 2), 0); /* one run */
  assert_int_equal(chime_clock_advance(IV * 3), 0); /* 3 ticks pass: 2 missed, the 3rd runs late */
  assert_int_equal(chime_sleep(IV), 0);
  assert_int_equal(chime_cancel(R.job), 0);
  return chime_join(R.job, NULL);
}

static int stall_us_main(void *unused) {
  (void)unused;
  assert_int_equal(chime_every(IV, target, &R, &O, &R.job), 0);
  assert_int_equal(chime_sleep(CHIME_NSEC(1500)), 0);  /* the run at 1 us */
  assert_int_equal(chime_clock_advance(CHIME_SEC(1)), 0); /* ticks 2 us .. 1.0000015 s pass */
  assert_int_equal(chime_sleep(1), 0);                    /* the scheduler sees them */
  assert_int_equal(chime_cancel(R.job), 0);
  return chime_join(R.job, NULL);
}

static void missed_ticks_come_as_one_event_with_their_count(void **state) {
  (void)state;
  setup(CHIME_SEC(1), 0);
  assert_int_equal(run_virtual(stall_main, NULL), 0);
  assert_string_equal(R.trace.text, "T1 S1#1 E1#1:ok T2 K3..4:missed*2 S2#2 E2#2:ok T5 S5#3 E5#3:ok D-125");
  /* a 1 us job stalled for a second: one event, not a million */
  setup(CHIME_US(1), 0);
  assert_int_equal(run_virtual(stall_us_main, NULL), 0);
  if (!strstr(R.trace.text, " K0.000..1.000:missed*999999 ")) fail_msg("%s", R.trace.text);
  assert_int_equal((int)R.done.skipped_missed, 999999);
  assert_true(R.n < 10); /* and one run for them */
}

static int always_fails(int k) {
  (void)k;
  return -EIO;
}

static void backoff_skips_come_as_one_event(void **state) {
  (void)state;
  setup(CHIME_SEC(1), CHIME_MS(4500));
  R.result = always_fails;
  O.on_error = CHIME_ERROR_BACKOFF;
  O.backoff_base = O.backoff_max = CHIME_MS(2500);
  assert_int_equal(run_virtual(one_job, NULL), 0);
  /* each failure skips the ticks of the next 2.5 s at once, when it returns */
  assert_string_equal(R.trace.text, "T1 S1#1 E1#1:error K2..3:backoff*2 T4 S4#2 E4#2:error K5..6:backoff*2 D-125");
}

/* ---- what a callback may do ------------------------------------------------------ */

static void a_callback_may_cancel_or_stop_its_job(void **state) {
  (void)state;
  setup(CHIME_SEC(10), CHIME_SEC(35));
  R.cancel_on = CHIME_EVENT_TICK;
  assert_int_equal(run_virtual(one_job, NULL), 0);
  assert_string_equal(R.trace.text, "T10 D-125"); /* the tick does not run */
  setup(CHIME_SEC(10), CHIME_SEC(35));
  R.stop_on = CHIME_EVENT_START; /* the run started goes on, uncancelled */
  assert_int_equal(run_virtual(one_job, NULL), 0);
  assert_string_equal(R.trace.text, "T10 S10#1 E10#1:ok D0");
  setup(CHIME_SEC(10), CHIME_SEC(45));
  R.dur = secs_25;
  R.stop_on = CHIME_EVENT_SKIP;
  assert_int_equal(run_virtual(one_job, NULL), 0);
  assert_string_equal(R.trace.text, "T10 S10#1 T20 K20:overlap E10#1:ok D0");
}

/* A detached job cancelled from its own callback ends cleanly. */
static int detached_main(void *unused) {
  (void)unused;
  R.cancel_on = CHIME_EVENT_END;
  assert_int_equal(chime_every(CHIME_SEC(10), target, &R, &O, NULL), 0);
  return chime_sleep(CHIME_SEC(35));
}

static void a_detached_job_may_cancel_itself_from_its_callback(void **state) {
  (void)state;
  setup(CHIME_SEC(10), 0);
  assert_int_equal(run_virtual(detached_main, NULL), 0);
  assert_string_equal(R.trace.text, "T10 S10#1 E10#1:ok D-125");
}

/* ---- the veto ---------------------------------------------------------------------- */

static int odd_vetoed(int k) { return k % 2; }

static void a_veto_allows_or_skips_each_tick(void **state) {
  (void)state;
  setup(CHIME_SEC(10), CHIME_SEC(45));
  O.veto = veto;
  R.veto = odd_vetoed;
  assert_int_equal(run_virtual(one_job, NULL), 0);
  assert_string_equal(R.trace.text, "T10 S10#1 E10#1:ok T20 K20:vetoed T30 S30#2 E30#2:ok T40 K40:vetoed D-125");
  assert_int_equal((int)R.done.skipped_vetoed, 2);
  assert_int_equal((int)R.done.runs, 2);
}

static void a_held_tick_runs_when_its_veto_answers(void **state) {
  (void)state;
  setup(CHIME_SEC(10), CHIME_SEC(25));
  O.veto = veto;
  R.veto_sleep = CHIME_SEC(2);
  assert_int_equal(run_virtual(one_job, NULL), 0);
  assert_string_equal(R.trace.text, "T10 S10#1 E10#1:ok T20 S20#2 E20#2:ok D-125");
  assert_int_equal(R.done.max_late, CHIME_SEC(2)); /* each started when the veto answered */
}

static void a_hold_past_its_deadline_is_a_skip(void **state) {
  (void)state;
  /* veto_timeout */
  setup(CHIME_SEC(10), CHIME_SEC(25));
  O.veto = veto;
  O.veto_timeout = CHIME_SEC(1);
  R.veto_sleep = CHIME_SEC(5);
  assert_int_equal(run_virtual(one_job, NULL), 0);
  assert_string_equal(R.trace.text, "T10 K10:vetoed(-110) T20 K20:vetoed(-110) D-125");
  assert_int_equal(R.veto_rc, -ECANCELED);
  assert_int_equal(R.veto_why, CHIME_CANCEL_TIMEOUT);
  /* no veto_timeout: the next tick ends the hold */
  setup(CHIME_SEC(10), CHIME_SEC(25));
  O.veto = veto;
  R.veto_sleep = CHIME_SEC(15);
  assert_int_equal(run_virtual(one_job, NULL), 0);
  /* the hold of 10 ends just before 20 falls due; 20's is cut by the cancel */
  assert_string_equal(R.trace.text, "T10 K10:vetoed(-110) T20 K20:vetoed(-125) D-125");
  assert_int_equal((int)R.done.skipped_vetoed, 2);
}

/* ---- triggered ticks ---------------------------------------------------------------- */

static struct trace T; /* trigger results */

/* A job of 5 s runs every 100 s; a tick is triggered at 1, and another at
 * 2 while that one runs. */
static int trigger_main(void *unused) {
  (void)unused;
  assert_int_equal(chime_every(CHIME_SEC(100), target, &R, &O, &R.job), 0);
  assert_int_equal(chime_sleep(CHIME_SEC(1)), 0);
  trace_add(&T, "%d", chime_every_trigger(R.job, CHIME_SEC(1)));
  assert_int_equal(chime_sleep(CHIME_SEC(1)), 0);
  trace_add(&T, "%d", chime_every_trigger(R.job, CHIME_SEC(2)));
  assert_int_equal(chime_sleep(CHIME_SEC(100)), 0);
  trace_add(&T, "%d", chime_every_trigger(R.job, INT64_MIN));
  chime_task none = {0};
  trace_add(&T, "%d", chime_every_trigger(none, 1));
  assert_int_equal(chime_every_stop(R.job), 0);
  trace_add(&T, "%d", chime_every_trigger(R.job, 1));
  return chime_join(R.job, NULL);
}

static void triggered_ticks_follow_the_overlap_policy(void **state) {
  (void)state;
  static const struct {
    chime_overlap overlap;
    unsigned max;
    const char *want;
  } cases[] = {
      {CHIME_OVERLAP_SKIP, 0, "S1#1! K2:overlap! E1#1:ok T100 S100#2 E100#2:ok D0"},
      {CHIME_OVERLAP_QUEUE, 0, "S1#1! E1#1:ok S2#2! E2#2:ok T100 S100#3 E100#3:ok D0"},
      {CHIME_OVERLAP_ALLOW, 2, "S1#1! S2#2! E1#1:ok E2#2:ok T100 S100#3 E100#3:ok D0"},
      {CHIME_OVERLAP_REPLACE, 0, "S1#1! S2#2! E1#1:replaced E2#2:ok T100 S100#3 E100#3:ok D0"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    setup(0, 0);
    memset(&T, 0, sizeof T);
    R.dur = secs_5;
    O.overlap = cases[i].overlap;
    O.max_concurrent = cases[i].max;
    assert_int_equal(run_virtual(trigger_main, NULL), 0);
    assert_string_equal(R.trace.text, cases[i].want);
    assert_string_equal(T.text, "0 0 -22 -22 -3"); /* a tick out of range, no job, a stopped job */
  }
}

/* ---- cancellation reasons ------------------------------------------------------------ */

static chime_cancel_reason seen;

static int sleeper(void *unused) {
  (void)unused;
  chime_sleep(CHIME_SEC(100));
  seen = chime_cancelled_by();
  return 0;
}

static int reasons_main(void *unused) {
  (void)unused;
  assert_int_equal(chime_cancelled_by(), CHIME_CANCEL_NONE);
  chime_task t;
  assert_int_equal(chime_spawn(sleeper, NULL, &t), 0);
  assert_int_equal(chime_sleep(1), 0);
  assert_int_equal(chime_cancel(t), 0);
  assert_int_equal(chime_join(t, NULL), 0);
  assert_int_equal(seen, CHIME_CANCEL_REQUEST);
  assert_int_equal(chime_spawn(sleeper, NULL, NULL), 0); /* cancelled by the shutdown */
  return 0;
}

static void a_task_tells_why_it_was_cancelled(void **state) {
  (void)state;
  assert_int_equal(chime_cancelled_by(), CHIME_CANCEL_NONE); /* outside a task */
  assert_int_equal(run_virtual(reasons_main, NULL), 0);
  assert_int_equal(seen, CHIME_CANCEL_SHUTDOWN);
}

/* ---- final statistics ---------------------------------------------------------------- */

static int join_stats_main(void *unused) {
  (void)unused;
  O.max_runs = 3;
  assert_int_equal(chime_every(CHIME_SEC(10), target, &R, &O, &R.job), 0);
  chime_job_stats st;
  int rc = 99;
  assert_int_equal(chime_every_join(R.job, CHIME_NEVER, &rc, &st), 0);
  assert_int_equal(rc, 0);
  assert_int_equal((int)st.runs, 3);
  assert_true(st.done);
  assert_int_equal(chime_every_stats(R.job, &st), -EINVAL); /* the handle was consumed */
  chime_task t;
  assert_int_equal(chime_spawn(sleeper, NULL, &t), 0);
  assert_int_equal(chime_every_join(t, CHIME_NEVER, &rc, &st), -EINVAL); /* not a job */
  assert_int_equal(chime_cancel(t), 0);
  return chime_join(t, NULL);
}

static void joining_a_job_can_give_its_final_statistics(void **state) {
  (void)state;
  setup(0, 0);
  assert_int_equal(run_virtual(join_stats_main, NULL), 0);
  assert_int_equal((int)R.done.runs, 3);
}

/* max_runs counts the runs of a job's ticks; a triggered tick's run is on
 * top of them. */
static int max_runs_main(void *unused) {
  (void)unused;
  O.max_runs = 2;
  assert_int_equal(chime_every(CHIME_SEC(10), target, &R, &O, &R.job), 0);
  assert_int_equal(chime_sleep(CHIME_SEC(1)), 0);
  assert_int_equal(chime_every_trigger(R.job, CHIME_SEC(1)), 0);
  return chime_join(R.job, NULL);
}

static void triggered_runs_are_not_counted_by_max_runs(void **state) {
  (void)state;
  setup(0, 0);
  assert_int_equal(run_virtual(max_runs_main, NULL), 0);
  assert_string_equal(R.trace.text, "S1#1! E1#1:ok T10 S10#2 E10#2:ok T20 S20#3 E20#3:ok D0");
  assert_int_equal((int)R.done.runs, 3);
  assert_int_equal((int)R.done.triggered, 1);
}

/* A reused slot starts with clean statistics. */
static int reuse_main(void *unused) {
  (void)unused;
  chime_task a, b;
  chime_job_stats st;
  assert_int_equal(chime_every(CHIME_SEC(1), target, &R, NULL, &a), 0);
  assert_int_equal(chime_sleep(CHIME_MS(3500)), 0);
  assert_int_equal(chime_cancel(a), 0);
  assert_int_equal(chime_every_join(a, CHIME_NEVER, NULL, &st), 0);
  assert_int_equal((int)st.runs, 3);
  R.n = 0;
  assert_int_equal(chime_every(CHIME_SEC(1), target, &R, NULL, &b), 0);
  assert_int_equal(chime_every_stats(b, &st), 0);
  assert_int_equal((int)st.runs, 0);
  assert_int_equal(chime_sleep(CHIME_MS(1500)), 0);
  assert_int_equal(chime_every_stats(b, &st), 0);
  assert_int_equal((int)st.runs, 1);
  assert_int_equal((int)st.skipped_missed, 0);
  assert_int_equal(chime_cancel(b), 0);
  return chime_join(b, NULL);
}

static void a_new_job_in_a_reused_slot_starts_from_zero(void **state) {
  (void)state;
  setup(0, 0);
  assert_int_equal(run_virtual(reuse_main, NULL), 0);
}

/* ---- refusals name their field ------------------------------------------------------- */

static int nop(void *unused) {
  (void)unused;
  return 0;
}

static int refusals_main(void *unused) {
  (void)unused;
  static const struct {
    chime_every_opts o;
    chime_ns interval;
    const char *why;
  } cases[] = {
      {{.schedule = 9}, CHIME_SEC(1), "schedule: unknown value 9"},
      {{.start = 9}, CHIME_SEC(1), "start: unknown value 9"},
      {{.missed = 9}, CHIME_SEC(1), "missed: unknown value 9"},
      {{.overlap = 9}, CHIME_SEC(1), "overlap: unknown value 9"},
      {{.on_error = 9}, CHIME_SEC(1), "on_error: unknown value 9"},
      {{0}, 0, "interval: must be more than 0"},
      {{0}, ((chime_ns)1 << 61) + 1, "interval: must be more than 0"},
      {{.jitter = -1}, CHIME_SEC(1), "jitter: must be 0 to 2^61 ns"},
      {{.spread = -1, .key = "k"}, CHIME_SEC(1), "spread: must be 0 to 2^61 ns"},
      {{.timeout = -1}, CHIME_SEC(1), "timeout: must be 0 to 2^61 ns"},
      {{.window = -1}, CHIME_SEC(1), "window: must be 0 to 2^61 ns"},
      {{.veto_timeout = -1}, CHIME_SEC(1), "veto_timeout: must be 0 to 2^61 ns"},
      {{.missed = CHIME_MISSED_BURST}, CHIME_SEC(1), "max_catch_up: needed with CHIME_MISSED_BURST"},
      {{.max_catch_up = 2}, CHIME_SEC(1), "max_catch_up: only with CHIME_MISSED_BURST"},
      {{.overlap = CHIME_OVERLAP_ALLOW, .max_concurrent = 256}, CHIME_SEC(1), "max_concurrent: needed with"},
      {{.max_concurrent = 2}, CHIME_SEC(1), "max_concurrent: only with CHIME_OVERLAP_ALLOW"},
      {{.on_error = CHIME_ERROR_BACKOFF}, CHIME_SEC(1), "backoff_base: needed with CHIME_ERROR_BACKOFF"},
      {{.on_error = CHIME_ERROR_BACKOFF, .backoff_base = 2, .backoff_max = 1}, CHIME_SEC(1), "backoff_max: needed"},
      {{.backoff_base = 1}, CHIME_SEC(1), "backoff_base: only with CHIME_ERROR_BACKOFF"},
      {{.backoff_max = 1}, CHIME_SEC(1), "backoff_max: only with CHIME_ERROR_BACKOFF"},
      {{.start = CHIME_START_AT, .start_at = -1}, CHIME_SEC(1), "start_at: must not be negative"},
      {{.start_at = 5}, CHIME_SEC(1), "start_at: only with CHIME_START_AT"},
      {{.schedule = CHIME_FIXED_DELAY, .overlap = CHIME_OVERLAP_QUEUE}, CHIME_SEC(1), "overlap: CHIME_FIXED_DELAY"},
      {{.schedule = CHIME_FIXED_DELAY, .missed = CHIME_MISSED_DELAY}, CHIME_SEC(1), "missed: CHIME_FIXED_DELAY"},
      {{.spread = 5}, CHIME_SEC(1), "spread: needs a key"},
      {{.key = "k"}, CHIME_SEC(1), "key: only with a spread"},
      {{.until = -1}, CHIME_SEC(1), "until: must not be negative"},
      {{.until = 1}, CHIME_SEC(1), "until: must be in the future"},
      {{.veto_timeout = 1}, CHIME_SEC(1), "veto_timeout: only with a veto"},
      {{.tz = "UTC"}, CHIME_SEC(1), "tz: a time zone is for calendar jobs"},
  };
  assert_int_equal(chime_sleep(CHIME_SEC(5)), 0); /* so that until = 1 is in the past */
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    assert_int_equal(chime_every(cases[i].interval, nop, NULL, &cases[i].o, NULL), -EINVAL);
    if (strncmp(chime_every_error(), cases[i].why, strlen(cases[i].why)) != 0)
      fail_msg("case %zu: \"%s\", wanted \"%s...\"", i, chime_every_error(), cases[i].why);
  }
  assert_int_equal(chime_every(CHIME_SEC(1), NULL, NULL, NULL, NULL), -EINVAL);
  assert_string_equal(chime_every_error(), "target: must not be NULL");
  /* calendar jobs */
  static const struct {
    const char *expr;
    chime_every_opts o;
    int rc;
    const char *why;
  } cal[] = {
      {"61 * * * *", {0}, -EINVAL, "expr: minute field: 61 is out of range 0-59 (column 1)"},
      {"* * * * *", {.tz = "Mars/Olympus_Mons"}, -ENOENT, "tz: unknown time zone \"Mars/Olympus_Mons\""},
      {"* * * * *", {.tz = "../etc"}, -EINVAL, "tz: \"../etc\" is not a zone name"},
      {"* * * * *", {.schedule = CHIME_FIXED_DELAY}, -EINVAL, "schedule: the expression is the schedule"},
      {"* * * * *", {.start = CHIME_START_NOW}, -EINVAL, "start: the expression is the schedule"},
      {"* * * * *", {.missed = CHIME_MISSED_DELAY}, -EINVAL, "missed: CHIME_MISSED_DELAY restarts a grid"},
      {"* * * * *", {.spread = 1, .key = "k"}, -EINVAL, "spread: a calendar job has no spread"},
      {"@every 1s", {.tz = "Nowhere/Not_A_Zone"}, -ENOENT, "tz: unknown time zone"},
      {"* * * * *", {.overlap = CHIME_OVERLAP_ALLOW}, -EINVAL, "max_concurrent: needed with"},
  };
  for (size_t i = 0; i < sizeof cal / sizeof cal[0]; i++) {
    assert_int_equal(chime_cron(cal[i].expr, nop, NULL, &cal[i].o, NULL), cal[i].rc);
    if (strncmp(chime_every_error(), cal[i].why, strlen(cal[i].why)) != 0)
      fail_msg("calendar case %zu: \"%s\", wanted \"%s...\"", i, chime_every_error(), cal[i].why);
  }
  chime_task j;
  assert_int_equal(chime_every(CHIME_SEC(1), nop, NULL, NULL, &j), 0);
  assert_string_equal(chime_every_error(), ""); /* a success clears it */
  assert_int_equal(chime_cancel(j), 0);
  return chime_join(j, NULL) == 0 ? 0 : -1;
}

static void every_refusal_names_its_field(void **state) {
  (void)state;
  assert_int_equal(run_virtual(refusals_main, NULL), 0);
}

TEST_MAIN(cmocka_unit_test(events_tell_each_tick_run_and_end_in_order), cmocka_unit_test(each_outcome_is_named),
          cmocka_unit_test(a_run_cut_by_the_shutdown_is_told_so),
          cmocka_unit_test(overlap_skips_are_told_tick_by_tick),
          cmocka_unit_test(missed_ticks_come_as_one_event_with_their_count),
          cmocka_unit_test(backoff_skips_come_as_one_event), cmocka_unit_test(a_callback_may_cancel_or_stop_its_job),
          cmocka_unit_test(a_detached_job_may_cancel_itself_from_its_callback),
          cmocka_unit_test(a_veto_allows_or_skips_each_tick), cmocka_unit_test(a_held_tick_runs_when_its_veto_answers),
          cmocka_unit_test(a_hold_past_its_deadline_is_a_skip),
          cmocka_unit_test(triggered_ticks_follow_the_overlap_policy),
          cmocka_unit_test(a_task_tells_why_it_was_cancelled),
          cmocka_unit_test(joining_a_job_can_give_its_final_statistics),
          cmocka_unit_test(triggered_runs_are_not_counted_by_max_runs),
          cmocka_unit_test(a_new_job_in_a_reused_slot_starts_from_zero),
          cmocka_unit_test(every_refusal_names_its_field))
