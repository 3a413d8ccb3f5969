/* test_fault.c - every allocation and fallible system call, made to fail
 * in turn: the caller gets the error, nothing leaks, and the loop still
 * works afterwards. */
#include "test.h"

#include <stdbool.h>
#include <sys/syscall.h>

/* Calls op(arg) with the n-th fallible call failing, for n = 0, 1, ...
 * until op makes no fallible call past n.  After each failure op must
 * have returned one of the errors allowed, and nothing may be leaked. */
static void walk(int (*op)(void *), void *arg, bool sticky, const int *allowed, int nallowed) {
  long n;
  for (n = 0;; n++) {
    long before = chime__test_failures();
    chime__test_fail_after(n, sticky);
    int rc = op(arg);
    chime__test_fail_after(-1, false);
    if (chime__test_failures() == before) {
      if (rc != 0) fail_msg("op failed with %d without an injected failure", rc);
      break;
    }
    bool ok = false;
    for (int i = 0; i < nallowed; i++)
      ok |= rc == allowed[i];
    if (!ok) fail_msg("failure %ld: op returned %d (%s)", n, rc, chime_strerror(rc));
    if (chime__test_live_allocs() != 0) fail_msg("failure %ld: %ld allocations leaked", n, chime__test_live_allocs());
  }
  assert_true(n > 0); /* at least one failure was walked */
}

static const int memory_errors[] = {-ENOMEM, -EMFILE};
/* A program may also succeed: some failures are recovered from (a kernel
 * without epoll_pwait2), and the program checks its own results. */
static const int program_outcomes[] = {-ENOMEM, -EMFILE, 0};

static int new_and_free(void *unused) {
  (void)unused;
  chime_loop *loop = NULL;
  int rc = chime_loop_new(NULL, &loop);
  if (rc) {
    if (loop) return -1000; /* output touched on failure */
    return rc;
  }
  chime_loop_free(loop);
  return 0;
}

static void loop_new_fails_cleanly(void **state) {
  (void)state;
  walk(new_and_free, NULL, false, memory_errors, 2);
}

/* A program that uses every part: spawn, sleep, yield, join, groups,
 * detached tasks, shutdown with tasks left running. */
static int child(void *arg) {
  int n = (int)(intptr_t)arg;
  for (int i = 0; i < n; i++)
    if (chime_sleep(CHIME_MS(10)) < 0) return -ECANCELED;
  return n;
}

static int program(void *unused) {
  (void)unused;
  chime_task t[4];
  int rc, spawned = 0;
  for (int i = 0; i < 4; i++) {
    rc = chime_spawn(child, (void *)(intptr_t)(i + 1), &t[i]);
    if (rc) break;
    spawned++;
  }
  chime_group *g = NULL;
  if (rc == 0) rc = chime_group_new(NULL, &g);
  for (int i = 0; rc == 0 && i < 3; i++)
    rc = chime_group_spawn(g, child, (void *)(intptr_t)2);
  if (rc == 0) rc = chime_spawn(child, (void *)(intptr_t)1000, NULL); /* left for the shutdown */
  chime_yield();
  for (int i = 0; i < spawned; i++) {
    int r;
    int jrc = chime_join(t[i], &r);
    if (jrc == 0 && r != i + 1) return -1000;
  }
  if (g) {
    chime_group_join(g, CHIME_NEVER, NULL);
    chime_group_free(g);
  }
  return rc;
}

static int run_program(void *unused) {
  chime_report r;
  chime_run_opts o = virtual_run();
  int rc = chime_run(program, unused, &o, &r);
  if (rc == 0 && r.abandoned) return -2000;
  return rc;
}

static void every_failure_in_a_whole_program_is_reported(void **state) {
  (void)state;
  walk(run_program, NULL, false, program_outcomes, 3);
}

static void persistent_failure_is_reported_too(void **state) {
  (void)state;
  walk(run_program, NULL, true, program_outcomes, 3);
}

/* After a failed spawn, the same loop goes on: spawn again, run, finish. */
static int recover_main(void *unused) {
  (void)unused;
  for (long n = 0; n < 6; n++) {
    chime_task t;
    chime__test_fail_after(n, false);
    int rc = chime_spawn(child, (void *)(intptr_t)1, &t);
    chime__test_fail_after(-1, false);
    if (rc == 0) {
      int r = 0;
      if (chime_join(t, &r) != 0 || r != 1) return -1;
      continue;
    }
    if (rc != -ENOMEM) return -2;
    rc = chime_spawn(child, (void *)(intptr_t)2, &t);
    int r = 0;
    if (rc != 0 || chime_join(t, &r) != 0 || r != 2) return -3;
  }
  return 0;
}

static void the_loop_works_after_a_failed_spawn(void **state) {
  (void)state;
  assert_int_equal(run_virtual(recover_main, NULL), 0);
}

/* Without epoll_pwait2 the epoll backend rounds timeouts up to whole
 * milliseconds: a loop may wake late, never early.  Where the kernel (or
 * Valgrind) lacks the call already, no failure needs injecting. */
static bool have_pwait2(void) {
#ifdef SYS_epoll_pwait2
  errno = 0;
  return syscall(SYS_epoll_pwait2, -1, NULL, 0, NULL, NULL, 0) == 0 || errno != ENOSYS;
#else
  return false;
#endif
}

static int fine_sleeps(void *inject) {
  for (int i = 0; i < 20; i++) {
    chime_ns d = CHIME_US(100 + 370 * i), t0 = chime_now();
    if (i == 1 && *(bool *)inject) chime__test_fail_after(0, false); /* the next wait finds no epoll_pwait2 */
    if (chime_sleep(d) != 0) return -1;
    chime_ns slept = chime_now() - t0;
    if (slept < d) return -2;
  }
  return 0;
}

static void without_epoll_pwait2_waits_are_rounded_up(void **state) {
  (void)state;
  chime_run_opts o = {.loop = {.clock = CHIME_CLOCK_REAL, .backend = CHIME_BACKEND_EPOLL}};
  bool inject = have_pwait2();
  long before = chime__test_failures();
  assert_int_equal(chime_run(fine_sleeps, &inject, &o, NULL), 0);
  assert_int_equal(chime__test_failures(), before + inject);
}

static void chime_run_fails_cleanly_when_it_cannot_start(void **state) {
  (void)state;
  /* the very first allocation: fn never runs, the report says so */
  chime_report r;
  memset(&r, 0x55, sizeof r);
  chime__test_fail_after(0, false);
  int rc = chime_run(program, NULL, NULL, &r);
  chime__test_fail_after(-1, false);
  assert_int_equal(rc, -ENOMEM);
  assert_int_equal(chime__test_live_allocs(), 0);
}

TEST_MAIN(cmocka_unit_test(loop_new_fails_cleanly), cmocka_unit_test(every_failure_in_a_whole_program_is_reported),
          cmocka_unit_test(persistent_failure_is_reported_too), cmocka_unit_test(the_loop_works_after_a_failed_spawn),
          cmocka_unit_test(chime_run_fails_cleanly_when_it_cannot_start),
          cmocka_unit_test(without_epoll_pwait2_waits_are_rounded_up))
