/* gate.c - a wake-up made of a task (gate.h). */
#include "gate.h"

#include <errno.h>

static int sleeper(void *arg) {
  (void)arg;
  chime_sleep_until(CHIME_NEVER); /* until gate_open cancels it */
  return 0;
}

int gate_arm(struct gate *g) {
  int rc = chime_spawn(sleeper, NULL, &g->sleeper);
  g->armed = rc == 0;
  return rc;
}

void gate_open(struct gate *g) {
  if (g->armed) chime_cancel(g->sleeper);
}

int gate_wait(struct gate *g, chime_ns deadline) {
  if (!g->armed) return -EINVAL;
  int rc = chime_join_until(g->sleeper, deadline, NULL);
  if (rc != 0) { /* not opened: the sleeper is ended here */
    chime_cancel(g->sleeper);
    chime_join(g->sleeper, NULL);
  }
  g->armed = false;
  return rc;
}
