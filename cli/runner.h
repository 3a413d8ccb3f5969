/* runner.h - the daemon: its jobs on the loop, their runs, shutdown,
 * reload.  runner.c keeps the jobs and hears their events; run.c is one
 * run, in its phases. */
#ifndef CHIME_CLI_RUNNER_H
#define CHIME_CLI_RUNNER_H

#include <chime.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "outcome.h"
#include "recorder.h"

struct runner;
struct job;
struct control;

/* Runs of a job asked for by chime trigger that may wait at once. */
#define JOB_MANUAL_MAX 4
struct fleet;
struct fleet_job;

/* What a job's veto returns for a tick it does not run (a skip's result,
 * in its event): its old version's overlap (logged and recorded as
 * overlap), a tick that waits its turn (queued), or a tick that is no
 * skip of this node's to tell of (silent: another node of the fleet runs
 * it, or the fleet says why in its own log lines), or a paused job's. */
enum { VETO_OVERLAP = 1, VETO_QUEUED = 2, VETO_SILENT = 3, VETO_PAUSED = 4 };

/* What a SKIP event counts as: a chime_skip_reason, or SKIP_PAUSED, the
 * daemon's vetoes named; -1: no skip of this node's (queued behind a run
 * going, or left to another node of the fleet). */
int skip_reason_of(const chime_event *ev);

/* A run going now, from its target's start to its end event: what the
 * daemon knows of it.  Made by the run's target (run.c), ended by the
 * job's CHIME_EVENT_END (runner.c). */
struct run {
  struct run_record rec;   /* its record (first: handed to the recorder at the run's end, it is the run's
                              memory, which the recorder frees) */
  struct job *job;
  uint64_t number;         /* the library's number of the run in its job */
  int pid;                 /* the child's, 0 until it started */
  bool catch_up;           /* the tick missed while chime was down */
  bool child_done;         /* the child ran and was waited for: rec's exit_code and signal say how */
  outcome forced;          /* the fleet stopped it (its lease was lost, or replaced): that outcome; else 0 */
  char *mail;              /* both streams' tail, for a job with mailto or hooks (owned), or NULL */
  size_t mail_len;
  struct run *prev, *next; /* the runner's runs */
};

/* What a job has done, as its events told it: what status, metrics and
 * the control socket show. */
struct job_status {
  uint64_t runs[OUTCOME_COUNT];  /* runs ended, by outcome (and OUTCOME_SKIPPED: ticks skipped) */
  uint64_t skipped[SKIP_REASON_COUNT]; /* ticks skipped, by chime_skip_reason or SKIP_PAUSED */
  outcome last_outcome;          /* of the latest run ended (OUTCOME_RUNNING: none yet) */
  chime_ns last_start, last_end; /* wall clock, of the latest run ended (0: none) */
  chime_ns last_ok, last_failure; /* wall clock: the end of the latest run ok, and not ok (0: none) */
  int last_exit;                 /* its exit code (-1: none) */
};

/* A job on the loop. */
struct job {
  struct runner *r;
  struct job_conf *conf;     /* owned */
  chime_task handle;         /* the library's job (owned until joined) */
  bool started;              /* handle is valid */
  bool retired;              /* replaced or removed by a reload: no new runs */
  bool ended;                /* its CHIME_EVENT_DONE came */
  bool replaced;             /* cancelled by its next version (overlap = replace) */
  unsigned running;          /* runs going */
  chime_ns catch_up_tick;    /* the tick triggered as its catch-up, or 0 */
  struct job *before;        /* its old version, still running (or one older still is), after a reload */
  struct job *after;         /* its new version, which waits on it (and on its before) */
  chime_ns queued_tick;      /* overlap = queue behind the old version: the tick that waits, or 0 */
  bool paused;               /* chime pause: its ticks are skipped (control.c) */
  chime_ns manual[JOB_MANUAL_MAX]; /* chime trigger's ticks not yet run or skipped (0: a free slot) */
  struct job_status status;
  struct fleet_job *fleet;   /* the fleet's state of a job whose ticks it claims, or NULL */
  struct job *next;
};

/* Something that hears every job's events after the daemon has (a
 * metrics exporter, a status page): fn(ctx, job, event, run), where run
 * is the run an END is about (its record complete; NULL otherwise, or if
 * it could not be kept). */
struct observer {
  void (*fn)(void *ctx, const struct job *job, const chime_event *ev, const struct run *run);
  void *ctx;
  struct observer *next;
};

struct runner {
  struct job *jobs;
  struct run *runs;
  const char *config_path; /* NULL for a job of the command line */
  int crontab;             /* the config is a crontab (config.crontab): reloads read it as one */
  const char *db_path;     /* NULL: no history */
  struct recorder *rec;
  chime_ns shutdown_grace;
  bool stopping;           /* no new runs; running ones are being stopped */
  chime_ns stop_deadline;  /* with stopping: when every run still going gets SIGKILL */
  bool signalled;          /* with stopping: SIGTERM or SIGINT came (else every job ended by itself) */
  chime_task main;
  int active;              /* jobs alive and not retired */
  bool failed;             /* a job ended by an error: exit 1 */
  bool mailer;             /* some job mails its output, and there is a mailer */
  struct run *spare;       /* a run kept for a run whose own could not be allocated: it is recorded */
  struct observer *observers;
  struct http *http;       /* the HTTP endpoint (http.c), or NULL */
  struct control *control; /* what steers the daemon (control.c), or NULL */
  struct fleet *fleet;     /* several machines, one schedule; NULL: this one alone */
};

/* Adds an observer (the caller keeps it: it must outlive the runner). */
void runner_observe(struct runner *r, struct observer *o);

/* Runs the daemon until SIGTERM/SIGINT, or until every job has ended.
 * Takes the config's jobs; config_path and db_path are the caller's, for
 * the whole call.  Returns the exit status. */
int runner_main(struct config *cfg, const char *config_path, const char *db_path, bool db_make_dirs,
                chime_ns shutdown_grace);

/* What a reload did: jobs kept, started and stopped, or the errors that
 * refused the file (errs.count > 0: nothing changed). */
struct reload_report {
  int kept, started, stopped;
  struct errors errs; /* the caller's to free */
};

/* Task only.  Reloads the config file (SIGHUP's reload): jobs whose
 * settings did not change keep their schedule, changed and removed jobs
 * start no new run, new jobs start; a file with errors is refused.  Logs
 * what it did, and tells it in *rep if not NULL.  0, -EINVAL (refused),
 * -ENOENT (no config file: jobs of the command line), -EBUSY (a reload
 * is going on). */
int runner_reload(struct runner *r, struct reload_report *rep);

/* run.c: a job's target: one run, in its phases. */
int run_target(void *job);
/* The run of `job` the library numbered `number`, or NULL. */
struct run *run_find(const struct runner *r, const struct job *job, uint64_t number);
/* Reaps the processes chime adopted (as a subreaper) that have exited,
 * leaving the children of runs to the library. */
void reap_adopted(const struct runner *r);

#endif
