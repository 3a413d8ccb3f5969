/* gate.h - a task waits, with a deadline, until something on the loop (an
 * event callback, another task) opens its gate: the library has no
 * condition variable, so a gate is a task that sleeps until cancelled;
 * opening it cancels the sleeper, waiting for it joins the sleeper.  It
 * costs a pooled stack while armed. */
#ifndef CHIME_CLI_GATE_H
#define CHIME_CLI_GATE_H

#include <chime.h>
#include <stdbool.h>

struct gate {
  chime_task sleeper;
  bool armed; /* sleeper is a task to join */
};

/* Arms the gate, closed.  0 or the errors of chime_spawn. */
int gate_arm(struct gate *g);
/* Opens an armed gate (does nothing to one that is not).  Loop thread. */
void gate_open(struct gate *g);
/* Task only.  Waits until the gate is opened or `deadline` passes, and
 * disarms it.  0 (opened), -ETIMEDOUT, -ECANCELED (the waiter was), or
 * -EINVAL (not armed). */
int gate_wait(struct gate *g, chime_ns deadline);

#endif
