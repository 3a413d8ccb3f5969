/* test_task.c - spawn, sleep, yield, join, detach, cancel, shield. */
#include "test.h"

static struct trace tr;

/* ---- spawning and order -------------------------------------------------- */

static int note(void *arg) {
  trace_add(&tr, "%s", (const char *)arg);
  return 0;
}

static int spawner(void *unused) {
  (void)unused;
  chime_task a, b;
  assert_int_equal(chime_spawn(note, "a", &a), 0);
  trace_add(&tr, "spawned-a");
  assert_int_equal(chime_spawn(note, "b", &b), 0);
  trace_add(&tr, "spawned-b");
  assert_int_equal(chime_yield(), 0);
  trace_add(&tr, "back");
  assert_int_equal(chime_join(a, NULL), 0);
  assert_int_equal(chime_join(b, NULL), 0);
  return 0;
}

static void spawned_task_runs_when_spawner_suspends(void **state) {
  (void)state;
  memset(&tr, 0, sizeof tr);
  assert_int_equal(run_virtual(spawner, NULL), 0);
  assert_string_equal(tr.text, "spawned-a spawned-b a b back");
}

static int sleeper(void *arg) {
  chime_ns d = (chime_ns)(intptr_t)arg;
  if (chime_sleep(d) != 0) return -1;
  trace_add(&tr, "%lld@%ld", (long long)(d / CHIME_SEC(1)), now_s());
  return (int)(d / CHIME_SEC(1));
}

static int sleepers(void *unused) {
  (void)unused;
  chime_task t[4];
  static const int secs[4] = {3, 1, 2, 1};
  for (int i = 0; i < 4; i++)
    assert_int_equal(chime_spawn(sleeper, (void *)(intptr_t)CHIME_SEC(secs[i]), &t[i]), 0);
  for (int i = 0; i < 4; i++) {
    int rc;
    assert_int_equal(chime_join(t[i], &rc), 0);
    assert_int_equal(rc, secs[i]);
  }
  assert_int_equal(chime_now(), CHIME_SEC(3));
  return 0;
}

static void sleepers_wake_at_their_deadlines_in_order(void **state) {
  (void)state;
  memset(&tr, 0, sizeof tr);
  assert_int_equal(run_virtual(sleepers, NULL), 0);
  /* equal deadlines: the one that went to sleep first wakes first */
  assert_string_equal(tr.text, "1@1 1@1 2@2 3@3");
}

static int exact_sleeper(void *arg) {
  chime_ns d = *(chime_ns *)arg;
  chime_ns start = chime_now();
  if (chime_sleep(d) != 0) return -1;
  return chime_now() == start + d ? 0 : -2;
}

static int many_sleepers(void *unused) {
  (void)unused;
  enum { N = 5000 };
  static chime_ns d[N];
  static chime_task t[N];
  uint64_t x = 12345;
  for (int i = 0; i < N; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    d[i] = (chime_ns)(x % (uint64_t)CHIME_HOUR(2)); /* every distance the timers keep apart */
    assert_int_equal(chime_spawn(exact_sleeper, &d[i], &t[i]), 0);
  }
  for (int i = 0; i < N; i++) {
    int rc = -99;
    assert_int_equal(chime_join(t[i], &rc), 0);
    assert_int_equal(rc, 0);
  }
  return 0;
}

static void thousands_of_sleepers_wake_exactly_on_time(void **state) {
  (void)state;
  assert_int_equal(run_virtual(many_sleepers, NULL), 0);
}

/* ---- join and detach ------------------------------------------------------ */

static int returns_arg(void *arg) { return (int)(intptr_t)arg; }

static int join_main(void *unused) {
  (void)unused;
  chime_task t;
  int rc = 0;
  /* joining a task that has already finished */
  assert_int_equal(chime_spawn(returns_arg, (void *)(intptr_t)42, &t), 0);
  assert_int_equal(chime_yield(), 0);
  assert_int_equal(chime_task_done(t), 1);
  assert_int_equal(chime_join(t, &rc), 0);
  assert_int_equal(rc, 42);
  /* the handle is consumed: every later use is refused */
  assert_int_equal(chime_join(t, &rc), -EINVAL);
  assert_int_equal(chime_detach(t), -EINVAL);
  assert_int_equal(chime_cancel(t), -EINVAL);
  assert_int_equal(chime_task_done(t), -EINVAL);
  /* ... even once its memory holds another task */
  chime_task u;
  assert_int_equal(chime_spawn(returns_arg, (void *)(intptr_t)7, &u), 0);
  assert_int_equal(chime_join(t, &rc), -EINVAL);
  assert_int_equal(chime_join(u, &rc), 0);
  assert_int_equal(rc, 7);
  /* a result pointer is optional */
  assert_int_equal(chime_spawn(returns_arg, NULL, &u), 0);
  assert_int_equal(chime_join(u, NULL), 0);
  return 0;
}

static void join_gives_the_result_once(void **state) {
  (void)state;
  assert_int_equal(run_virtual(join_main, NULL), 0);
}

static int detach_main(void *unused) {
  (void)unused;
  chime_task t, u;
  assert_int_equal(chime_spawn(sleeper, (void *)(intptr_t)CHIME_SEC(1), &t), 0);
  assert_int_equal(chime_detach(t), 0);
  assert_int_equal(chime_detach(t), -EINVAL);
  assert_int_equal(chime_join(t, NULL), -EINVAL);
  /* detaching a finished task frees it at once */
  assert_int_equal(chime_spawn(returns_arg, NULL, &u), 0);
  assert_int_equal(chime_yield(), 0);
  assert_int_equal(chime_detach(u), 0);
  assert_int_equal(chime_sleep(CHIME_SEC(2)), 0); /* the detached sleeper finishes meanwhile */
  /* spawning without a handle detaches */
  assert_int_equal(chime_spawn(returns_arg, NULL, NULL), 0);
  return 0;
}

static void detach_releases_the_handle(void **state) {
  (void)state;
  memset(&tr, 0, sizeof tr);
  assert_int_equal(run_virtual(detach_main, NULL), 0);
  assert_string_equal(tr.text, "1@1");
}

/* chime_self() borrows: it cannot give away the handle its spawner owns. */
static int detach_self(void *unused) {
  (void)unused;
  return chime_detach(chime_self()) == -EINVAL ? 7 : -1;
}

static int detach_self_main(void *unused) {
  (void)unused;
  chime_task t;
  int rc = 0;
  assert_int_equal(chime_spawn(detach_self, NULL, &t), 0);
  assert_int_equal(chime_sleep(1), 0);
  assert_int_equal(chime_join(t, &rc), 0); /* the spawner's handle still owns it */
  assert_int_equal(rc, 7);
  return 0;
}

static void a_task_cannot_detach_itself_through_chime_self(void **state) {
  (void)state;
  assert_int_equal(run_virtual(detach_self_main, NULL), 0);
}

static chime_task joined_twice;
static int second_joiner(void *unused) {
  (void)unused;
  return chime_join(joined_twice, NULL);
}

static int bad_handles_main(void *unused) {
  (void)unused;
  chime_task zero = {0}, forged = {0x123456789abcdefull}, t, other;
  assert_int_equal(chime_join(zero, NULL), -EINVAL);
  assert_int_equal(chime_join(forged, NULL), -EINVAL);
  assert_int_equal(chime_cancel(zero), -EINVAL);
  assert_int_equal(chime_detach(forged), -EINVAL);
  assert_int_equal(chime_task_set_name(zero, "x"), -EINVAL);
  assert_int_equal(chime_join(chime_self(), NULL), -EDEADLK);
  assert_int_equal(chime_join_until(chime_self(), -1, NULL), -EINVAL);
  assert_int_equal(chime_spawn(NULL, NULL, &t), -EINVAL);
  /* a handle can have one joiner */
  assert_int_equal(chime_spawn(sleeper, (void *)(intptr_t)CHIME_SEC(1), &joined_twice), 0);
  assert_int_equal(chime_spawn(second_joiner, NULL, &other), 0);
  assert_int_equal(chime_yield(), 0); /* second_joiner is now waiting */
  assert_int_equal(chime_join(joined_twice, NULL), -EINVAL);
  assert_int_equal(chime_detach(joined_twice), -EINVAL);
  int rc = -99;
  assert_int_equal(chime_join(other, &rc), 0);
  assert_int_equal(rc, 0);
  return 0;
}

static void bad_handles_are_refused(void **state) {
  (void)state;
  memset(&tr, 0, sizeof tr);
  assert_int_equal(run_virtual(bad_handles_main, NULL), 0);
}

static void task_calls_outside_a_task_are_refused(void **state) {
  (void)state;
  chime_task t = {0};
  assert_int_equal(chime_spawn(returns_arg, NULL, &t), -EPERM);
  assert_int_equal(chime_sleep(1), -EPERM);
  assert_int_equal(chime_sleep_until(1), -EPERM);
  assert_int_equal(chime_yield(), -EPERM);
  assert_int_equal(chime_join(t, NULL), -EPERM);
  assert_int_equal(chime_cancel(t), -EPERM);
  assert_int_equal(chime_detach(t), -EPERM);
  assert_int_equal(chime_shield(true), -EPERM);
  assert_false(chime_cancelled());
  assert_int_equal(chime_self().id, 0);
}

static int bad_durations_main(void *unused) {
  (void)unused;
  assert_int_equal(chime_sleep(-1), -EINVAL);
  assert_int_equal(chime_sleep(INT64_MIN), -EINVAL);
  assert_int_equal(chime_sleep_until(-5), -EINVAL);
  assert_int_equal(chime_sleep(CHIME_SEC(1)), 0);
  assert_int_equal(chime_sleep(INT64_MAX), -EINVAL); /* now + d overflows */
  assert_int_equal(chime_sleep(INT64_MAX - CHIME_SEC(1)), -EINVAL);
  assert_int_equal(chime_now(), CHIME_SEC(1)); /* none of them slept */
  return 0;
}

static void bad_durations_are_refused(void **state) {
  (void)state;
  assert_int_equal(run_virtual(bad_durations_main, NULL), 0);
}

static int count_rounds(void *arg) {
  int *n = arg;
  for (int i = 0; i < 3; i++) {
    (*n)++;
    chime_yield();
  }
  return 0;
}

static int zero_sleeps_main(void *unused) {
  (void)unused;
  int n = 0;
  chime_task t;
  assert_int_equal(chime_spawn(count_rounds, &n, &t), 0);
  assert_int_equal(chime_sleep(0), 0); /* yields */
  assert_int_equal(n, 1);
  assert_int_equal(chime_sleep_until(0), 0); /* a past time yields too */
  assert_int_equal(n, 2);
  assert_int_equal(chime_yield(), 0);
  assert_int_equal(n, 3);
  assert_int_equal(chime_join(t, NULL), 0);
  assert_int_equal(chime_now(), 0);
  return 0;
}

static void zero_and_past_sleeps_yield(void **state) {
  (void)state;
  assert_int_equal(run_virtual(zero_sleeps_main, NULL), 0);
}

/* ---- cancellation --------------------------------------------------------- */

static int cleanup_task(void *unused) {
  (void)unused;
  int rc = chime_sleep(CHIME_HOUR(1));
  trace_add(&tr, "woke:%d@%ld", rc, now_s());
  /* from now on every suspension point is cancelled */
  trace_add(&tr, "sleep:%d yield:%d", chime_sleep(1), chime_yield());
  trace_add(&tr, "cancelled:%d", chime_cancelled());
  return rc;
}

static int cancel_main(void *unused) {
  (void)unused;
  chime_task t;
  assert_int_equal(chime_spawn(cleanup_task, NULL, &t), 0);
  assert_int_equal(chime_sleep(CHIME_SEC(2)), 0);
  assert_int_equal(chime_cancel(t), 0);
  assert_int_equal(chime_cancel(t), 0); /* twice: nothing more */
  int rc = 0;
  assert_int_equal(chime_join(t, &rc), 0);
  assert_int_equal(rc, -ECANCELED);
  assert_int_equal(chime_now(), CHIME_SEC(2));
  return 0;
}

static void cancel_reaches_the_suspension_point_and_every_later_one(void **state) {
  (void)state;
  memset(&tr, 0, sizeof tr);
  assert_int_equal(run_virtual(cancel_main, NULL), 0);
  assert_string_equal(tr.text, "woke:-125@2 sleep:-125 yield:-125 cancelled:1");
}

static int before_start_task(void *unused) {
  (void)unused;
  trace_add(&tr, "started cancelled:%d", chime_cancelled());
  trace_add(&tr, "sleep:%d", chime_sleep(CHIME_SEC(1)));
  return 5;
}

static int cancel_before_start_main(void *unused) {
  (void)unused;
  chime_task t;
  int rc;
  assert_int_equal(chime_spawn(before_start_task, NULL, &t), 0);
  assert_int_equal(chime_cancel(t), 0);
  assert_int_equal(chime_join(t, &rc), 0);
  assert_int_equal(rc, 5);
  /* cancelling a finished task does nothing */
  assert_int_equal(chime_spawn(returns_arg, (void *)(intptr_t)3, &t), 0);
  assert_int_equal(chime_yield(), 0);
  assert_int_equal(chime_cancel(t), 0);
  assert_int_equal(chime_join(t, &rc), 0);
  assert_int_equal(rc, 3);
  return 0;
}

static void a_task_cancelled_before_it_starts_still_starts(void **state) {
  (void)state;
  memset(&tr, 0, sizeof tr);
  assert_int_equal(run_virtual(cancel_before_start_main, NULL), 0);
  assert_string_equal(tr.text, "started cancelled:1 sleep:-125");
}

/* Two sleeps due at the same instant: the first woken cancels the second
 * before it resumes; the second must see the cancellation, not its sleep's
 * completion (the tutorial's shutdown depends on it). */
static chime_task victim;
static int cancels_victim(void *unused) {
  (void)unused;
  chime_sleep(CHIME_SEC(5));
  return chime_cancel(victim);
}
static int victim_task(void *unused) {
  (void)unused;
  int rc = chime_sleep(CHIME_SEC(5));
  trace_add(&tr, "victim:%d", rc);
  return rc;
}

static int woken_then_cancelled_main(void *unused) {
  (void)unused;
  chime_task c;
  assert_int_equal(chime_spawn(cancels_victim, NULL, &c), 0);
  assert_int_equal(chime_spawn(victim_task, NULL, &victim), 0);
  assert_int_equal(chime_join(c, NULL), 0);
  int rc;
  assert_int_equal(chime_join(victim, &rc), 0);
  return rc == -ECANCELED ? 0 : -1;
}

static void a_woken_task_cancelled_before_it_resumes_sees_the_cancel(void **state) {
  (void)state;
  memset(&tr, 0, sizeof tr);
  assert_int_equal(run_virtual(woken_then_cancelled_main, NULL), 0);
  assert_string_equal(tr.text, "victim:-125");
}

/* Cancel-and-wait from cleanup code: a cancelled parent cancels its child
 * and waits for the child's cleanup. */
static int child_task(void *unused) {
  (void)unused;
  int rc = chime_sleep(CHIME_HOUR(1));
  chime_shield(true);
  chime_sleep(CHIME_SEC(3)); /* slow cleanup */
  trace_add(&tr, "child-clean@%ld", now_s());
  return rc;
}

static int parent_task(void *unused) {
  (void)unused;
  chime_task child;
  assert_int_equal(chime_spawn(child_task, NULL, &child), 0);
  int rc = chime_join(child, NULL);
  trace_add(&tr, "parent-join:%d@%ld", rc, now_s());
  chime_cancel(child);
  int result = 0;
  rc = chime_join(child, &result);
  trace_add(&tr, "parent-waited:%d:%d@%ld", rc, result, now_s());
  return 0;
}

static int cancel_and_wait_main(void *unused) {
  (void)unused;
  chime_task parent;
  assert_int_equal(chime_spawn(parent_task, NULL, &parent), 0);
  assert_int_equal(chime_sleep(CHIME_SEC(1)), 0);
  chime_cancel(parent);
  assert_int_equal(chime_join(parent, NULL), 0);
  return 0;
}

static void a_cancelled_task_can_cancel_and_wait_for_its_child(void **state) {
  (void)state;
  memset(&tr, 0, sizeof tr);
  assert_int_equal(run_virtual(cancel_and_wait_main, NULL), 0);
  assert_string_equal(tr.text, "parent-join:-125@1 child-clean@4 parent-waited:0:-125@4");
}

static int forever(void *unused) {
  (void)unused;
  return chime_sleep_until(CHIME_NEVER);
}

static int uncancelled_child_main(void *unused) {
  (void)unused;
  chime_task t;
  assert_int_equal(chime_spawn(forever, NULL, &t), 0);
  chime_cancel(chime_self());
  /* cancelled, waiting for a task nobody cancelled: refused at once */
  assert_int_equal(chime_join(t, NULL), -ECANCELED);
  assert_int_equal(chime_task_done(t), 0);
  /* the handle is still ours */
  assert_int_equal(chime_cancel(t), 0);
  int rc;
  assert_int_equal(chime_join(t, &rc), 0);
  assert_int_equal(rc, -ECANCELED);
  return 0;
}

static void a_cancelled_caller_does_not_wait_for_an_uncancelled_task(void **state) {
  (void)state;
  assert_int_equal(run_virtual(uncancelled_child_main, NULL), 0);
}

static int join_until_main(void *unused) {
  (void)unused;
  chime_task t;
  assert_int_equal(chime_spawn(sleeper, (void *)(intptr_t)CHIME_SEC(10), &t), 0);
  assert_int_equal(chime_join_until(t, CHIME_SEC(3), NULL), -ETIMEDOUT);
  assert_int_equal(chime_now(), CHIME_SEC(3));
  assert_int_equal(chime_join_until(t, CHIME_SEC(2), NULL), -ETIMEDOUT); /* already past */
  assert_int_equal(chime_now(), CHIME_SEC(3));
  int rc;
  assert_int_equal(chime_join_until(t, CHIME_SEC(20), &rc), 0); /* the handle was kept */
  assert_int_equal(rc, 10);
  assert_int_equal(chime_now(), CHIME_SEC(10));
  return 0;
}

static void join_until_gives_up_and_keeps_the_handle(void **state) {
  (void)state;
  memset(&tr, 0, sizeof tr);
  assert_int_equal(run_virtual(join_until_main, NULL), 0);
}

/* The joiner's deadline and its cancellation fall due at the same instant
 * (the canceller's timer was armed first): cancel wins. */
static chime_task joiner;
static int cancels_joiner(void *unused) {
  (void)unused;
  chime_sleep(CHIME_SEC(4));
  return chime_cancel(joiner);
}

static int joiner_task(void *unused) {
  (void)unused;
  chime_task t;
  assert_int_equal(chime_spawn(forever, NULL, &t), 0);
  int rc = chime_join_until(t, CHIME_SEC(4), NULL);
  chime_cancel(t);
  chime_join(t, NULL);
  return rc;
}

static int cancel_beats_deadline_main(void *unused) {
  (void)unused;
  chime_task c;
  assert_int_equal(chime_spawn(cancels_joiner, NULL, &c), 0);
  assert_int_equal(chime_spawn(joiner_task, NULL, &joiner), 0);
  int rc;
  assert_int_equal(chime_join(joiner, &rc), 0);
  assert_int_equal(chime_join(c, NULL), 0);
  return rc;
}

static void cancel_beats_a_deadline_due_at_the_same_time(void **state) {
  (void)state;
  assert_int_equal(run_virtual(cancel_beats_deadline_main, NULL), -ECANCELED);
}

static int shielded_task(void *unused) {
  (void)unused;
  assert_int_equal(chime_shield(true), 0);
  int rc = chime_sleep(CHIME_SEC(5)); /* cancelled at 1 s, but shielded */
  trace_add(&tr, "shielded-sleep:%d@%ld", rc, now_s());
  assert_int_equal(chime_shield(false), 1);
  trace_add(&tr, "after:%d", chime_yield());
  return 0;
}

static int shield_main(void *unused) {
  (void)unused;
  chime_task t;
  assert_int_equal(chime_spawn(shielded_task, NULL, &t), 0);
  assert_int_equal(chime_sleep(CHIME_SEC(1)), 0);
  chime_cancel(t);
  assert_int_equal(chime_join(t, NULL), 0);
  return 0;
}

static void a_shield_holds_cancellation_back(void **state) {
  (void)state;
  memset(&tr, 0, sizeof tr);
  assert_int_equal(run_virtual(shield_main, NULL), 0);
  assert_string_equal(tr.text, "shielded-sleep:0@5 after:-125");
}

static int sleep_never_main(void *unused) {
  (void)unused;
  chime_task t, c;
  assert_int_equal(chime_spawn(forever, NULL, &t), 0);
  assert_int_equal(chime_spawn(sleeper, (void *)(intptr_t)CHIME_SEC(7), &c), 0);
  assert_int_equal(chime_join(c, NULL), 0);
  assert_int_equal(chime_task_done(t), 0);
  chime_cancel(t);
  int rc;
  assert_int_equal(chime_join(t, &rc), 0);
  assert_int_equal(rc, -ECANCELED);
  return 0;
}

static void sleep_until_never_waits_for_cancellation(void **state) {
  (void)state;
  memset(&tr, 0, sizeof tr);
  assert_int_equal(run_virtual(sleep_never_main, NULL), 0);
}

static int yielder(void *arg) {
  long *n = arg;
  while (chime_yield() == 0)
    (*n)++;
  return 0;
}

static int busy_main(void *unused) {
  (void)unused;
  long n = 0;
  chime_task t;
  assert_int_equal(chime_spawn(yielder, &n, &t), 0);
  chime_ns start = chime_now();
  assert_int_equal(chime_sleep(CHIME_MS(20)), 0); /* wakes although another task never waits */
  chime_ns slept = chime_now() - start;
  chime_cancel(t);
  assert_int_equal(chime_join(t, NULL), 0);
  assert_true(n > 0);
  assert_true(slept >= CHIME_MS(20) && slept < CHIME_SEC(5));
  return 0;
}

static void a_task_that_never_waits_does_not_starve_timers(void **state) {
  (void)state;
  assert_int_equal(run_real(busy_main, NULL), 0);
}

/* Once an owner gives its handle up, copies of it are stale everywhere. */
static int job_target(void *unused) {
  (void)unused;
  return 0;
}

static int stale_main(void *unused) {
  (void)unused;
  chime_task t, j;
  chime_job_stats st;
  assert_int_equal(chime_spawn(sleeper, (void *)(intptr_t)CHIME_SEC(1), &t), 0);
  assert_int_equal(chime_detach(t), 0);
  assert_int_equal(chime_cancel(t), -EINVAL);
  assert_int_equal(chime_task_done(t), -EINVAL);
  assert_int_equal(chime_task_set_name(t, "x"), -EINVAL);
  assert_int_equal(chime_detach(t), -EINVAL);
  assert_int_equal(chime_every(CHIME_SEC(1), job_target, NULL, NULL, &j), 0);
  assert_int_equal(chime_detach(j), 0);
  assert_int_equal(chime_every_stats(j, &st), -EINVAL);
  assert_int_equal(chime_every_stop(j), -EINVAL);
  assert_int_equal(chime_cancel(j), -EINVAL);
  return 0;
}

static void a_handle_given_up_is_stale_everywhere(void **state) {
  (void)state;
  assert_int_equal(run_virtual(stale_main, NULL), 0);
}

TEST_MAIN(cmocka_unit_test(spawned_task_runs_when_spawner_suspends),
          cmocka_unit_test(sleepers_wake_at_their_deadlines_in_order),
          cmocka_unit_test(thousands_of_sleepers_wake_exactly_on_time), cmocka_unit_test(join_gives_the_result_once),
          cmocka_unit_test(detach_releases_the_handle), cmocka_unit_test(a_task_cannot_detach_itself_through_chime_self),
          cmocka_unit_test(a_handle_given_up_is_stale_everywhere),
          cmocka_unit_test(bad_handles_are_refused), cmocka_unit_test(task_calls_outside_a_task_are_refused),
          cmocka_unit_test(bad_durations_are_refused), cmocka_unit_test(zero_and_past_sleeps_yield),
          cmocka_unit_test(cancel_reaches_the_suspension_point_and_every_later_one),
          cmocka_unit_test(a_task_cancelled_before_it_starts_still_starts),
          cmocka_unit_test(a_woken_task_cancelled_before_it_resumes_sees_the_cancel),
          cmocka_unit_test(a_cancelled_task_can_cancel_and_wait_for_its_child),
          cmocka_unit_test(a_cancelled_caller_does_not_wait_for_an_uncancelled_task),
          cmocka_unit_test(join_until_gives_up_and_keeps_the_handle),
          cmocka_unit_test(cancel_beats_a_deadline_due_at_the_same_time),
          cmocka_unit_test(a_shield_holds_cancellation_back),
          cmocka_unit_test(sleep_until_never_waits_for_cancellation),
          cmocka_unit_test(a_task_that_never_waits_does_not_starve_timers))
