/* outcome.h - how a run ended, why ticks were skipped, and what made a
 * tick run other than falling due: enums, and the names the log and the
 * history give them. */
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

/* Why ticks were skipped: the library's reasons (chime_skip_reason), then
 * the daemon's own, which are vetoes of its (runner.c's job_veto) named. */
enum {
  SKIP_PAUSED = CHIME_SKIP_VETOED + 1, /* the job is paused (chime pause) */
  SKIP_REASON_COUNT
};

/* What made a tick run, other than falling due. */
typedef enum trigger_kind {
  TRIGGER_NONE = 0, /* its tick fell due */
  TRIGGER_CATCH_UP, /* the tick missed while chime was down (catch_up) */
  TRIGGER_MANUAL,   /* chime trigger: run now */
  TRIGGER_QUEUED,   /* the latest tick of a job changed by a reload, queued behind its old version */
} trigger_kind;

/* "ok", "failed", ...: the name the log and the history use. */
const char *outcome_name(outcome o);

/* The outcome of that name, or OUTCOME_COUNT: none. */
outcome outcome_named(const char *name);

/* "overlap", "missed", "backoff", "vetoed", "paused": a skip reason's
 * name (a chime_skip_reason, or SKIP_PAUSED). */
const char *skip_reason_name(int r);

/* "catch_up", "manual", "queued"; NULL for TRIGGER_NONE. */
const char *trigger_name(trigger_kind t);

#endif
