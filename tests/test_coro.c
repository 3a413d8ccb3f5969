/* test_coro.c - the context switch and the stacks under it. */
#include "test.h"

#include <fenv.h>
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

/* Values kept in many locals across switches: at -O2 they live in the
 * callee-saved registers the switch must preserve. */
static int keep_locals(void *arg) {
  long seed = (long)(intptr_t)arg;
  volatile long sink = 0;
  long a = seed * 3, b = seed * 5, c = seed * 7, d = seed * 11, e = seed * 13, f = seed * 17;
  double x = (double)seed / 2, y = (double)seed / 4, z = (double)seed / 8; /* exact in binary */
  for (int i = 0; i < 1000; i++) {
    if (chime_yield() != 0) return -1;
    a += 1, b += 2, c += 3, d += 4, e += 5, f += 6;
    x += 1.5, y += 2.5, z += 3.5;
    sink = a ^ b;
  }
  (void)sink;
  if (a != seed * 3 + 1000 || b != seed * 5 + 2000 || c != seed * 7 + 3000 || d != seed * 11 + 4000 ||
      e != seed * 13 + 5000 || f != seed * 17 + 6000)
    return -2;
  if (x != (double)seed / 2 + 1500 || y != (double)seed / 4 + 2500 || z != (double)seed / 8 + 3500) return -3;
  return 0;
}

static int many_interleaved(void *unused) {
  (void)unused;
  chime_task t[8];
  for (int i = 0; i < 8; i++)
    assert_int_equal(chime_spawn(keep_locals, (void *)(intptr_t)(i + 1), &t[i]), 0);
  for (int i = 0; i < 8; i++) {
    int rc = -99;
    assert_int_equal(chime_join(t[i], &rc), 0);
    assert_int_equal(rc, 0);
  }
  return 0;
}

static void registers_survive_switches(void **state) {
  (void)state;
  assert_int_equal(run_virtual(many_interleaved, NULL), 0);
}

/* The rounding mode (MXCSR and the x87 control word on x86-64, FPCR on
 * AArch64) is callee-saved: each task keeps its own. */
struct rounding {
  int mode;
  double third; /* 1/3 as the task's mode rounds it */
};

static int rounding(void *arg) {
  struct rounding *r = arg;
  volatile double one = 1.0, three = 3.0;
  fesetround(r->mode);
  r->third = one / three;
  for (int i = 0; i < 100; i++) {
    if (chime_yield() != 0) return -1;
    if (fegetround() != r->mode) return -2;
    if (one / three != r->third) return -3;
  }
  return 0;
}

static int rounding_main(void *unused) {
  (void)unused;
  struct rounding r[4] = {{FE_TONEAREST, 0}, {FE_UPWARD, 0}, {FE_DOWNWARD, 0}, {FE_TOWARDZERO, 0}};
  chime_task t[4];
  for (int i = 0; i < 4; i++)
    assert_int_equal(chime_spawn(rounding, &r[i], &t[i]), 0);
  for (int i = 0; i < 4; i++) {
    int rc = -99;
    assert_int_equal(chime_join(t[i], &rc), 0);
    assert_int_equal(rc, 0);
  }
  assert_true(r[1].third > r[2].third); /* the modes really differed */
  return fegetround() == FE_TONEAREST ? 0 : -1;
}

static void each_task_keeps_its_rounding_mode(void **state) {
  (void)state;
  if (RUNNING_ON_VALGRIND) skip(); /* Valgrind only emulates rounding to nearest */
  assert_int_equal(run_virtual(rounding_main, NULL), 0);
}

/* Uses about `arg` bytes of stack. */
static int __attribute__((noinline)) dig(int depth) {
  volatile char frame[1024];
  frame[0] = (char)depth;
  if (depth <= 1) return frame[0];
  return dig(depth - 1) + frame[0];
}

static int use_stack(void *arg) {
  int kib = (int)(intptr_t)arg;
  return dig(kib) > 0 ? 0 : -1;
}

static int deep_main(void *unused) {
  (void)unused;
  chime_task t;
  int rc = -99;
  /* 40 KiB of frames on the default 64 KiB stack (sanitizers pad frames). */
  assert_int_equal(chime_spawn(use_stack, (void *)(intptr_t)24, &t), 0);
  assert_int_equal(chime_join(t, &rc), 0);
  assert_int_equal(rc, 0);
  return 0;
}

static void tasks_can_use_most_of_their_stack(void **state) {
  (void)state;
  assert_int_equal(run_virtual(deep_main, NULL), 0);
}

static int big_main(void *unused) {
  (void)unused;
  chime_task t;
  int rc = -99;
  assert_int_equal(chime_spawn(use_stack, (void *)(intptr_t)400, &t), 0);
  assert_int_equal(chime_join(t, &rc), 0);
  return rc;
}

static void stack_size_option_gives_bigger_stacks(void **state) {
  (void)state;
  chime_run_opts o = virtual_run();
  o.loop.stack_size = 2 * 1024 * 1024;
  assert_int_equal(chime_run(big_main, NULL, &o, NULL), 0);
}

/* Fills 16 KiB of its stack with its number, lets the others run, and
 * checks that nothing else wrote there. */
static int fill_and_check(void *arg) {
  volatile unsigned char frame[16 * 1024];
  unsigned char mark = (unsigned char)(intptr_t)arg;
  for (size_t i = 0; i < sizeof frame; i++)
    frame[i] = mark;
  for (int round = 0; round < 3; round++)
    if (chime_yield() != 0) return -1;
  for (size_t i = 0; i < sizeof frame; i++)
    if (frame[i] != mark) return -2;
  return 0;
}

#define MANY_STACKS 300

static int many_stacks_main(void *unused) {
  (void)unused;
  static chime_task t[MANY_STACKS];
  for (int i = 0; i < MANY_STACKS; i++)
    assert_int_equal(chime_spawn(fill_and_check, (void *)(intptr_t)(i + 1), &t[i]), 0);
  assert_int_equal(chime__test_stacks_in_use(), MANY_STACKS + 1); /* and main's */
  for (int i = 0; i < MANY_STACKS; i++) {
    int rc = -99;
    assert_int_equal(chime_join(t[i], &rc), 0);
    assert_int_equal(rc, 0);
  }
  return 0;
}

/* Stacks come in blocks of several (1, 1, 2, 4, ... 64): each is its own. */
static void tasks_alive_at_once_have_stacks_of_their_own(void **state) {
  (void)state;
  assert_int_equal(run_virtual(many_stacks_main, NULL), 0);
}

static int overflow(void *arg) {
  (void)arg;
  return dig(1 << 20);
}

static int sleeper(void *arg) {
  (void)arg;
  return chime_sleep(CHIME_SEC(1));
}

/* Overflows a task's stack, `arg` other tasks alive meanwhile (so that its
 * stack is one inside a block, above another's). */
static int overflow_main(void *arg) {
  long others = (long)(intptr_t)arg;
  for (long i = 0; i < others; i++)
    assert_int_equal(chime_spawn(sleeper, NULL, NULL), 0);
  chime_task t;
  assert_int_equal(chime_spawn(overflow, NULL, &t), 0);
  assert_int_equal(chime_task_set_name(t, "recursor"), 0);
  return chime_join(t, NULL);
}

static void overflow_reported(long others) {
  int pipefd[2];
  assert_int_equal(pipe(pipefd), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    dup2(pipefd[1], STDERR_FILENO);
    close(pipefd[0]);
    run_virtual(overflow_main, (void *)(intptr_t)others);
    _exit(0); /* not reached */
  }
  close(pipefd[1]);
  char out[8192] = {0};
  size_t len = 0;
  ssize_t n;
  while ((n = read(pipefd[0], out + len, sizeof out - 1 - len)) > 0)
    len += (size_t)n;
  close(pipefd[0]);
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  /* killed by SIGSEGV (SIGABRT: cmocka's handler, which ours hands the
   * signal on to, aborts under CMOCKA_TEST_ABORT), or (under a sanitizer)
   * exited with its error */
  assert_true(WIFSIGNALED(status) ? WTERMSIG(status) == SIGSEGV || WTERMSIG(status) == SIGABRT
                                  : WEXITSTATUS(status) != 0);
  if (!strstr(out, "chime: stack overflow in task 'recursor'")) fail_msg("stderr was: %s", out);
}

static void stack_overflow_is_reported_as_such(void **state) {
  (void)state;
  overflow_reported(0);
}

static void overflow_of_a_stack_inside_a_block_is_reported(void **state) {
  (void)state;
  overflow_reported(40); /* the recursor's is the 42nd stack: the 10th of a block of 32 */
}

static int counter_task(void *arg) {
  long *count = arg;
  while (chime_yield() == 0)
    (*count)++;
  return 0;
}

static int switch_main(void *unused) {
  (void)unused;
  long counts[3] = {0};
  chime_task t[3];
  for (int i = 0; i < 3; i++)
    assert_int_equal(chime_spawn(counter_task, &counts[i], &t[i]), 0);
  for (int i = 0; i < 100000; i++)
    assert_int_equal(chime_yield(), 0);
  for (int i = 0; i < 3; i++)
    chime_cancel(t[i]);
  for (int i = 0; i < 3; i++)
    assert_int_equal(chime_join(t[i], NULL), 0);
  /* FIFO: every task ran once per round */
  for (int i = 0; i < 3; i++)
    assert_true(counts[i] >= 99999 && counts[i] <= 100000);
  return 0;
}

static void a_hundred_thousand_rounds_of_switches(void **state) {
  (void)state;
  assert_int_equal(run_virtual(switch_main, NULL), 0);
}

TEST_MAIN(cmocka_unit_test(registers_survive_switches), cmocka_unit_test(each_task_keeps_its_rounding_mode),
          cmocka_unit_test(tasks_can_use_most_of_their_stack), cmocka_unit_test(stack_size_option_gives_bigger_stacks),
          cmocka_unit_test(stack_overflow_is_reported_as_such),
          cmocka_unit_test(overflow_of_a_stack_inside_a_block_is_reported),
          cmocka_unit_test(tasks_alive_at_once_have_stacks_of_their_own),
          cmocka_unit_test(a_hundred_thousand_rounds_of_switches))
