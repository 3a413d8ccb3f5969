/* seed.c - the tutorial's program, in C.
 *
 *   async def periodic(interval_sec, coro_name, *args, **kwargs):
 *       while True:
 *           await asyncio.sleep(interval_sec)
 *           await coro_name(*args, **kwargs)
 *
 * main starts periodic() as a background task, sleeps 5 s while it runs,
 * and returns; the loop's shutdown then cancels the periodic task.  The
 * output is the tutorial's six lines, every run:
 *
 *   Main starting / >Doing work:! (four times) / Main done
 *
 * (A fifth tick is due at 5 s, the same instant as main's wake-up; main's
 * deadline was set first, so main runs first, returns, and the shutdown
 * cancels the periodic task before its fifth call.)
 *
 * Run it with CHIME_CLOCK=virtual to see the same lines at once.
 */
#include <chime.h>
#include <stdio.h>

/* The target: called afresh, with its arguments, for each period. */
static int work(void *arg) {
  const char *suffix = arg;
  printf(">Doing work:%s\n", suffix);
  fflush(stdout);
  return 0;
}

/* What periodic() takes: the interval, the target and its argument. */
struct periodic_args {
  chime_ns interval;
  chime_fn target;
  void *arg;
};

/* The tutorial's periodic(): sleep for the interval, then await the
 * target; a cancellation surfaces as -ECANCELED from the sleep. */
static int periodic(void *p) {
  const struct periodic_args *a = p;
  for (;;) {
    int rc = chime_sleep(a->interval);
    if (rc < 0) return rc;
    a->target(a->arg);
  }
}

static int main_task(void *unused) {
  (void)unused;
  static struct periodic_args args = {CHIME_SEC(1), work, "!"};
  printf("Main starting\n");
  fflush(stdout);
  int rc = chime_spawn(periodic, &args, NULL); /* runs in the background */
  if (rc < 0) return rc;
  chime_sleep(CHIME_SEC(5));
  printf("Main done\n");
  fflush(stdout);
  return 0;
}

int main(void) {
  int rc = chime_run(main_task, NULL, NULL, NULL);
  if (rc < 0) fprintf(stderr, "seed: %s\n", chime_strerror(rc));
  return rc < 0;
}
