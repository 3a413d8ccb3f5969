/* cancel.c - cancel-and-wait: a background task is cancelled, cleans up,
 * and main waits for it to finish.
 *
 *   task.cancel()
 *   try: await task
 *   except asyncio.CancelledError: pass
 *
 * The periodic task holds a resource (here, a buffer of collected samples);
 * when it is cancelled, its sleep returns -ECANCELED, it flushes what it
 * collected and frees the buffer, and returns -ECANCELED.  chime_join gives
 * main that result.
 */
#include <chime.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

struct sampler {
  int *samples;
  int count;
};

static int sample(void *p) {
  struct sampler *s = p;
  int rc;
  s->samples = malloc(64 * sizeof *s->samples);
  if (!s->samples) return -ENOMEM;
  while ((rc = chime_sleep(CHIME_MS(300))) == 0) {
    s->samples[s->count % 64] = s->count;
    s->count++;
    printf("sample %d\n", s->count);
  }
  /* Cleanup runs on cancellation: the sleep returned -ECANCELED. */
  printf("cancelled after %d samples: flushing and freeing the buffer\n", s->count);
  free(s->samples);
  s->samples = NULL;
  return rc;
}

static int main_task(void *unused) {
  (void)unused;
  struct sampler s = {0};
  chime_task t;
  int rc = chime_spawn(sample, &s, &t);
  if (rc < 0) return rc;
  chime_sleep(CHIME_SEC(1)); /* main goes on while the sampler runs */
  printf("main: cancelling the sampler\n");
  chime_cancel(t);
  int result;
  rc = chime_join(t, &result); /* waits for the cleanup to finish */
  printf("main: the sampler ended with %s, buffer %s\n", chime_strerror(result), s.samples ? "leaked" : "freed");
  return rc;
}

int main(void) {
  int rc = chime_run(main_task, NULL, NULL, NULL);
  if (rc < 0) fprintf(stderr, "cancel: %s\n", chime_strerror(rc));
  return rc < 0;
}
