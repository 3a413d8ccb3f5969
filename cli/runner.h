/* runner.h - the daemon: jobs on the loop, their runs, shutdown, reload. */
#ifndef CHIME_CLI_RUNNER_H
#define CHIME_CLI_RUNNER_H

#include <chime.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"

struct passwd;
#include "history.h"

struct runner;

/* A job on the loop. */
struct job {
  struct runner *r;
  struct job_conf *conf;  /* owned */
  chime_task handle;      /* the periodic job (owned until joined) */
  bool started;           /* handle is valid */
  chime_task catch_up;    /* the catch-up run, if one was started */
  bool catching_up;       /* catch_up is valid */
  bool retired;           /* replaced or removed by a reload: no new runs */
  bool ended;             /* the periodic job has ended */
  unsigned running;       /* runs going now */
  uint64_t seen[3];       /* skipped ticks already logged: overlap, missed, backoff */
  chime_ns last_tick;     /* wall time of the latest tick run or logged as skipped; 0: none yet */
  struct job *next;
};

/* A run going now (for the second signal, which kills them all, and for
 * the overlap of runs the library does not see: a catch-up run, a run of
 * a job's version before a reload). */
struct run {
  struct job *job;
  int pid;       /* 0 until the child started */
  bool catch_up; /* the job's catch-up run, not one of its ticks */
  bool replaced; /* cancelled by a newer run (overlap = replace) */
  struct run *prev, *next;
};

struct runner {
  struct job *jobs;
  struct run *runs;
  const char *config_path; /* NULL for a job of the command line */
  const char *db_path;     /* NULL: no history */
  bool db_make_dirs;       /* the default path: create its directories */
  bool db_down;            /* opening it failed (said once) */
  struct history *hist;
  chime_ns shutdown_grace;
  bool stopping;           /* no new runs; running ones are being stopped */
  chime_ns stop_deadline;  /* with stopping: when every run still going gets SIGKILL */
  bool signalled;          /* with stopping: SIGTERM or SIGINT came (else every job ended by itself) */
  chime_task main;
  int active;              /* periodic jobs alive and not retired */
  bool failed;             /* a job ended by an error: exit 1 */
};

/* Runs the daemon until SIGTERM/SIGINT, or until every job has ended.
 * Takes the config's jobs; config_path and db_path are the caller's, for
 * the whole call.  Returns the exit status. */
int runner_main(struct config *cfg, const char *config_path, const char *db_path, bool db_make_dirs,
                chime_ns shutdown_grace);

/* run.c: a periodic job's target, and a catch-up run (arg: the job). */
int run_tick(void *job);
int run_catch_up(void *job);
/* The history database, opened (again) if it is not yet. */
struct history *runner_history(struct runner *r);
/* Logs the ticks the job has skipped since the last call, one line each. */
void job_log_skips(struct job *j);
/* The wall time of the job's next tick after `after`, or 0 if none. */
chime_ns job_next_tick(const struct job *j, chime_ns after);
/* The wall time of the job's latest tick in (after, until], or 0 if none. */
chime_ns job_latest_tick(const struct job *j, chime_ns after, chime_ns until);
/* The user's groups (getgrouplist: gid and every group that lists the
 * user), for a child run as that user, as login and cron give them.
 * Returns their count and the list in *groups (free it), or -ENOMEM,
 * -E2BIG (more than NGROUPS_MAX). */
int user_groups(const char *user, unsigned gid, unsigned **groups);
/* The environment of a run of c: the daemon's, with the job's env over it,
 * and HOME, USER and LOGNAME of pw (may be NULL).  One allocation (free
 * it), or NULL when out of memory. */
char **job_env(const struct job_conf *c, const struct passwd *pw);
/* Reaps the processes chime adopted (as a subreaper) that have exited,
 * leaving the children of runs to the library. */
void reap_adopted(const struct runner *r);

#endif
