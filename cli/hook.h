/* hook.h - a job's failure and recovery hooks: on_failure runs after a
 * run that failed, was killed, timed out or could not start; on_recovery
 * after the first success that follows failures.
 *
 * A hook runs as its job's runs do (its user, directory, environment; no
 * shell unless the job has one), with the run in its environment
 * (CHIME_JOB, CHIME_HOOK, CHIME_OUTCOME, CHIME_EXIT_CODE, CHIME_SIGNAL,
 * CHIME_ERROR, CHIME_RUN_ID, CHIME_SCHEDULED, CHIME_DURATION,
 * CHIME_FAILURES) and the run's output (the last 64 KiB of both streams,
 * as they came) on its standard input.  It is bounded: its own timeout
 * (hook_timeout; then SIGTERM, and SIGKILL after the job's kill_grace);
 * one hook at a time for a job; while one runs or waits, a newer failure
 * takes the place of the one waiting (CHIME_FAILURES counts the failures
 * it stands for); and a job's on_failure hooks start at least HOOK_GAP
 * apart, so a job failing every second runs its hook once a minute.  What
 * a hook did is logged (event=hook) and recorded on its run's row. */
#ifndef CHIME_CLI_HOOK_H
#define CHIME_CLI_HOOK_H

#include <chime.h>

#include "runner.h"

#define HOOK_GAP CHIME_MIN(1)      /* between the starts of two on_failure hooks of a job */
#define HOOK_ROW_WAIT CHIME_SEC(5) /* how long a hook waits for its run's row (CHIME_RUN_ID) */

struct hooks;

/* The daemon's hooks: 0 and *out, or -ENOMEM.  They hear when runs'
 * records are written (recorder_on_end) until hooks_free. */
int hooks_new(struct runner *r, struct hooks **out);
/* A run of j ended (its END event; run NULL if it could not be kept):
 * queues its job's hook, if the run calls for one.  Never suspends. */
void hooks_run_ended(struct hooks *h, const struct job *j, const struct run *run);
/* Task only.  Drops the hooks that wait for their job's HOOK_GAP, lets the
 * others run and finish until `deadline`, then ends those still going. */
void hooks_stop(struct hooks *h, chime_ns deadline);
/* Frees them (after hooks_stop). */
void hooks_free(struct hooks *h);

#endif
