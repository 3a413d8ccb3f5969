/* outcome.c - the names of outcomes, skip reasons and triggers. */
#include "outcome.h"

#include <string.h>

const char *outcome_name(outcome o) {
  static const char *const names[OUTCOME_COUNT] = {
      [OUTCOME_RUNNING] = "running",   [OUTCOME_OK] = "ok",         [OUTCOME_FAILED] = "failed",
      [OUTCOME_SIGNAL] = "signal",     [OUTCOME_TIMEOUT] = "timeout", [OUTCOME_STOPPED] = "stopped",
      [OUTCOME_REPLACED] = "replaced", [OUTCOME_ERROR] = "error",   [OUTCOME_INTERRUPTED] = "interrupted",
      [OUTCOME_SKIPPED] = "skipped",   [OUTCOME_LEASE_LOST] = "lease_lost",
  };
  return (unsigned)o < OUTCOME_COUNT ? names[o] : "?";
}

outcome outcome_named(const char *name) {
  for (outcome o = 0; o < OUTCOME_COUNT; o++)
    if (strcmp(outcome_name(o), name) == 0) return o;
  return OUTCOME_COUNT;
}

const char *skip_reason_name(int r) {
  switch (r) {
  case CHIME_SKIP_OVERLAP: return "overlap";
  case CHIME_SKIP_MISSED: return "missed";
  case CHIME_SKIP_BACKOFF: return "backoff";
  case CHIME_SKIP_VETOED: return "vetoed";
  case SKIP_PAUSED: return "paused";
  default: return "?";
  }
}

const char *trigger_name(trigger_kind t) {
  switch (t) {
  case TRIGGER_CATCH_UP: return "catch_up";
  case TRIGGER_MANUAL: return "manual";
  case TRIGGER_QUEUED: return "queued";
  default: return NULL;
  }
}
