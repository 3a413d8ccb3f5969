/* outcome.h - how a run ended, and why ticks were skipped: enums, and the
 * names the log and the history give them. */
#ifndef CHIME_CLI_OUTCOME_H
#define CHIME_CLI_OUTCOME_H

#include <chime.h>

typedef enum outcome {
  OUTCOME_RUNNING = 0, /* started, not ended (the history's mark of a run in flight) */
  OUTCOME_OK,          /* the child exited 0 */
  OUTCOME_FAILED,      /* it exited with another status */
  OUTCOME_SIGNAL,      /* a signal killed it (not chime's) */
  OUTCOME_TIMEOUT,     /* the job's timeout ended it */
  OUTCOME_STOPPED,     /* chime's shutdown ended it */
  OUTCOME_REPLACED,    /* a newer run ended it (overlap = replace) */
  OUTCOME_ERROR,       /* it could not start */
  OUTCOME_INTERRUPTED, /* chime itself ended meanwhile (found at the next start) */
  OUTCOME_SKIPPED,     /* a row of skipped ticks, not a run */
  OUTCOME_LEASE_LOST,  /* a fleet's run stopped because its lease could not be renewed (or was lost) */
  OUTCOME_COUNT
} outcome;

/* "ok", "failed", ...: the name the log and the history use. */
const char *outcome_name(outcome o);

/* "overlap", "missed", "backoff", "vetoed": a skip reason's name. */
const char *skip_reason_name(chime_skip_reason r);

#endif
