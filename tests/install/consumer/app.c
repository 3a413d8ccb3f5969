/* app.c - a program built against an installed chime, as a user builds
 * one: a job every hour, three runs, on the virtual clock when
 * CHIME_CLOCK=virtual (at once).  Prints "chime VERSION: 3 runs" and exits
 * 0, or says what failed and exits 1. */
#include <chime.h>
#include <stdio.h>

static int runs;

static int work(void *arg) {
  (void)arg;
  runs++;
  return 0;
}

static int main_task(void *arg) {
  (void)arg;
  chime_every_opts o = {.max_runs = 3};
  chime_task job;
  int rc = chime_every(CHIME_SEC(3600), work, NULL, &o, &job);
  return rc < 0 ? rc : chime_join(job, NULL);
}

int main(void) {
  int rc = chime_run(main_task, NULL, NULL, NULL);
  if (rc < 0) fprintf(stderr, "app: %s\n", chime_strerror(rc));
  printf("chime %s: %d runs\n", chime_version(), runs);
  return rc < 0 || runs != 3;
}
