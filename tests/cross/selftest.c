/* selftest.c - the context switch and the scheduler, checked without a
 * test framework, so that it can be cross-compiled and run under
 * qemu-user (scripts/cross-test.sh) on architectures whose switch is
 * written in assembly, and on the ucontext fallback.
 *
 * It checks that callee-saved integer and floating-point registers and
 * the rounding mode survive switches, that virtual-time sleeps end exactly
 * on time and in order, that cancellation and joins work, and that a task
 * can use most of its stack.  Prints "selftest: ok" and exits 0, or says
 * what failed and exits 1. */
#include <chime.h>
#include <errno.h>
#include <fenv.h>
#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond)                                                                                                    \
  do {                                                                                                                 \
    if (!(cond)) {                                                                                                     \
      fprintf(stderr, "selftest: %s:%d: %s\n", __FILE__, __LINE__, #cond);                                             \
      exit(1);                                                                                                         \
    }                                                                                                                  \
  } while (0)

/* Many live locals across yields: they sit in callee-saved registers. */
static int keep(void *arg) {
  long s = (long)(intptr_t)arg;
  long a = s * 3, b = s * 5, c = s * 7, d = s * 11, e = s * 13, f = s * 17, g = s * 19, h = s * 23;
  double x = s * 0.5, y = s * 0.25, z = s * 0.125, w = s * 2.0, v = s * 4.0, u = s * 8.0, r = s * 16.0, q = s * 32.0;
  for (int i = 0; i < 500; i++) {
    if (chime_yield() != 0) return -1;
    a++, b++, c++, d++, e++, f++, g++, h++;
    x += 1, y += 1, z += 1, w += 1, v += 1, u += 1, r += 1, q += 1;
  }
  if (a != s * 3 + 500 || b != s * 5 + 500 || c != s * 7 + 500 || d != s * 11 + 500 || e != s * 13 + 500 ||
      f != s * 17 + 500 || g != s * 19 + 500 || h != s * 23 + 500)
    return -2;
  if (x != s * 0.5 + 500 || y != s * 0.25 + 500 || z != s * 0.125 + 500 || w != s * 2.0 + 500 || v != s * 4.0 + 500 ||
      u != s * 8.0 + 500 || r != s * 16.0 + 500 || q != s * 32.0 + 500)
    return -3;
  return 0;
}

static int round_keeper(void *arg) {
  int mode = (int)(intptr_t)arg;
  fesetround(mode);
  for (int i = 0; i < 100; i++) {
    if (chime_yield() != 0) return -1;
    if (fegetround() != mode) return -2;
  }
  return 0;
}

static int sleeper(void *arg) {
  chime_ns d = (chime_ns)(intptr_t)arg, start = chime_now();
  if (chime_sleep(d) != 0) return -1;
  return chime_now() == start + d ? 0 : -2;
}

static int __attribute__((noinline)) dig(int n) {
  volatile char frame[1024];
  frame[0] = (char)n;
  return n <= 1 ? frame[0] : dig(n - 1) + frame[0];
}

static int digger(void *arg) { return dig((int)(intptr_t)arg) > 0 ? 0 : -1; }

static int forever(void *arg) {
  (void)arg;
  return chime_sleep_until(CHIME_NEVER);
}

static void join_ok(chime_task t, int want) {
  int rc = -999;
  CHECK(chime_join(t, &rc) == 0);
  CHECK(rc == want);
}

static int main_task(void *arg) {
  (void)arg;
  chime_task t[16];
  for (int i = 0; i < 8; i++)
    CHECK(chime_spawn(keep, (void *)(intptr_t)(i + 1), &t[i]) == 0);
  for (int i = 0; i < 8; i++)
    join_ok(t[i], 0);
  static const int modes[] = {FE_TONEAREST, FE_UPWARD, FE_DOWNWARD, FE_TOWARDZERO};
  for (int i = 0; i < 4; i++)
    CHECK(chime_spawn(round_keeper, (void *)(intptr_t)modes[i], &t[i]) == 0);
  for (int i = 0; i < 4; i++)
    join_ok(t[i], 0);
  CHECK(fegetround() == FE_TONEAREST);
  for (int i = 0; i < 16; i++)
    CHECK(chime_spawn(sleeper, (void *)(intptr_t)((i * 7919) % 5000 * 1000000LL), &t[i]) == 0);
  for (int i = 0; i < 16; i++)
    join_ok(t[i], 0);
  CHECK(chime_spawn(digger, (void *)(intptr_t)40, &t[0]) == 0);
  join_ok(t[0], 0);
  CHECK(chime_spawn(forever, NULL, &t[0]) == 0);
  CHECK(chime_sleep(CHIME_SEC(3)) == 0);
  CHECK(chime_cancel(t[0]) == 0);
  join_ok(t[0], -ECANCELED);
  return 0;
}

int main(void) {
  chime_run_opts o = {.loop = {.clock = CHIME_CLOCK_VIRTUAL}};
  int rc = chime_run(main_task, NULL, &o, NULL);
  CHECK(rc == 0);
  puts("selftest: ok");
  return 0;
}
