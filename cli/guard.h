/* guard.h - a process that ends the runs of a fleet node when the node
 * cannot: the dead man's switch of the leases.
 *
 * chime forks it before its loop starts and tells it, through a pipe,
 * the process group of each leased run as it starts and ends, and a
 * deadline on the monotonic clock (the trust window of the oldest
 * renewal, and a little more).  When the deadline passes without a newer
 * one (chime frozen, or cut off and unable to act), or when the pipe
 * closes (chime killed), the guard SIGKILLs every group it holds: no run
 * outlives its lease, whatever happens to chime.
 */
#ifndef CHIME_CLI_GUARD_H
#define CHIME_CLI_GUARD_H

#include <chime.h>

struct guard {
  int fd;  /* the pipe's write end (non-blocking); -1: no guard */
  int pid; /* the guard's */
};

/* Forks the guard (before any thread).  0, or a negative errno. */
int guard_start(struct guard *g);
/* Tells the guard of a run's process group, and of its end. */
void guard_add(struct guard *g, int pgid);
void guard_del(struct guard *g, int pgid);
/* The instant (CLOCK_MONOTONIC, ns) after which the guard kills every
 * group it holds; CHIME_NEVER: none. */
void guard_deadline(struct guard *g, chime_ns mono);
/* Closes the pipe: the guard kills what it still holds, and exits. */
void guard_stop(struct guard *g);

#endif
