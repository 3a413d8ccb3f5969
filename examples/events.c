/* events.c - a job that tells what happens to it, a veto that asks before
 * each run, and a tick run now.
 *
 * A backup every 10 s that fails now and then, times out once, and whose
 * every other tick the veto refuses (it suspends for 100 ms to make up its
 * mind, as a query would); at 5 s a tick is triggered by hand.  Run with
 * CHIME_CLOCK=virtual to see its 75 s at once.
 */
#include <chime.h>
#include <stdio.h>

static const char *const outcomes[] = {"ok", "error", "timeout", "cancelled", "replaced", "shutdown", "abandoned"};
static const char *const reasons[] = {"", "overlap", "missed", "backoff", "vetoed"};

static double secs(chime_ns t) { return (double)t / 1e9; }

static void on_event(const chime_event *ev) {
  switch (ev->type) {
  case CHIME_EVENT_START:
    printf("%5.1f  start  run %llu for the tick at %.1f%s\n", secs(chime_now()), (unsigned long long)ev->run,
           secs(ev->tick), ev->triggered ? " (triggered)" : "");
    break;
  case CHIME_EVENT_END:
    printf("%5.1f  end    run %llu: %s (%d) after %.1f s\n", secs(chime_now()), (unsigned long long)ev->run,
           outcomes[ev->outcome], ev->result, secs(ev->duration));
    break;
  case CHIME_EVENT_SKIP:
    printf("%5.1f  skip   %llu tick(s) from %.1f: %s\n", secs(chime_now()), (unsigned long long)ev->count,
           secs(ev->tick), reasons[ev->reason]);
    break;
  case CHIME_EVENT_DONE:
    printf("%5.1f  done   %llu runs, %llu errors, %llu vetoed; result %d\n", secs(chime_now()),
           (unsigned long long)ev->stats->runs, (unsigned long long)ev->stats->errors,
           (unsigned long long)ev->stats->skipped_vetoed, ev->result);
    break;
  default: break;
  }
}

/* Every other tick of the grid is refused, after a 100 ms "query". */
static int veto(const chime_event *tick) {
  if (chime_sleep(CHIME_MS(100)) != 0) return -1;
  return !tick->triggered && (tick->tick / CHIME_SEC(10)) % 2 == 0;
}

/* The third run hangs until its timeout; the fourth fails. */
static int backup(void *arg) {
  int *runs = arg;
  int n = ++*runs;
  if (chime_sleep(n == 3 ? CHIME_SEC(60) : CHIME_SEC(1)) != 0) {
    if (chime_cancelled_by() == CHIME_CANCEL_TIMEOUT) printf("%5.1f  (backup: cut short by its timeout)\n", secs(chime_now()));
    return -1;
  }
  return n == 4 ? -5 : 0;
}

static int main_task(void *unused) {
  (void)unused;
  static int runs;
  chime_every_opts o = {.on_event = on_event, .veto = veto, .timeout = CHIME_SEC(5), .veto_timeout = CHIME_SEC(1)};
  chime_task job;
  if (chime_every(CHIME_SEC(10), backup, &runs, &o, &job) != 0) {
    fprintf(stderr, "refused: %s\n", chime_every_error());
    return 1;
  }
  chime_sleep(CHIME_SEC(5));
  chime_every_trigger(job, chime_now()); /* "run now" */
  chime_sleep(CHIME_SEC(70));
  chime_job_stats st;
  int rc;
  chime_cancel(job);
  chime_every_join(job, CHIME_NEVER, &rc, &st);
  return 0;
}

int main(void) { return chime_run(main_task, NULL, NULL, NULL) == 0 ? 0 : 1; }
