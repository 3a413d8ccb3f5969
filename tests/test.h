/* test.h - what every test program shares.
 *
 * Each program's main is TEST_MAIN(cmocka_unit_test(a), ...).  Run with a
 * test's name it runs that test alone (ctest runs each in its own process);
 * without arguments, all of them.  After the tests, the group teardown
 * fails the run if the library still holds any allocation.
 */
#ifndef CHIME_TEST_H
#define CHIME_TEST_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the four headers above. */
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "chime.h"
#include "select.h"
#include "testing.h"

/* Options for a loop on the virtual clock (backend from CHIME_BACKEND). */
static inline chime_run_opts virtual_run(void) {
  chime_run_opts o;
  memset(&o, 0, sizeof o);
  o.loop.clock = CHIME_CLOCK_VIRTUAL;
  return o;
}

/* Runs fn(arg) as the main task of a virtual-clock loop; returns its
 * result. */
static inline int run_virtual(chime_fn fn, void *arg) {
  chime_run_opts o = virtual_run();
  return chime_run(fn, arg, &o, NULL);
}

/* Runs fn as the main task of a real-clock loop. */
static inline int run_real(chime_fn fn, void *arg) {
  chime_run_opts o = {.loop = {.clock = CHIME_CLOCK_REAL}};
  return chime_run(fn, arg, &o, NULL);
}

/* A record of events, to compare with the expected sequence. */
struct trace {
  char text[8192];
};

static inline void trace_add(struct trace *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline void trace_add(struct trace *t, const char *fmt, ...) {
  size_t len = strlen(t->text);
  va_list ap;
  va_start(ap, fmt);
  if (len && len < sizeof t->text - 1) t->text[len++] = ' ';
  vsnprintf(t->text + len, sizeof t->text - len, fmt, ap);
  va_end(ap);
}

/* CLOCK_MONOTONIC, whatever clock the loop runs on. */
static inline chime_ns real_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (chime_ns)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Whole seconds of chime_now(), for traces. */
static inline long now_s(void) { return (long)(chime_now() / CHIME_SEC(1)); }

static int test_no_leaks(void **state) {
  (void)state;
  chime__test_fail_after(-1, false);
  long live = chime__test_live_allocs();
  if (live != 0) {
    print_error("the library still holds %ld allocations\n", live);
    return -1;
  }
  return 0;
}

#define TEST_MAIN(...)                                                                                                 \
  int main(int argc, char **argv) {                                                                                    \
    const struct CMUnitTest tests[] = {__VA_ARGS__};                                                                   \
    if (test_select(tests, sizeof tests / sizeof tests[0], argc, argv)) return 2;                                      \
    int failed = cmocka_run_group_tests(tests, NULL, test_no_leaks);                                                   \
    /* A failure inside a task left that task's stack by longjmp: exit now,                                            \
     * before exit handlers run on a stack the sanitizers no longer know. */                                           \
    if (failed) _exit(1);                                                                                              \
    return 0;                                                                                                          \
  }

#endif
