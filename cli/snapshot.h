/* snapshot.h - what the HTTP endpoint shows of a running daemon: each job's
 * schedule, status, runs going and the spread of its durations and
 * lateness, taken in a snapshot on the loop and written out (Prometheus'
 * text exposition, the JSON of /api/jobs) on a thread of the pool.
 *
 * The counters are the runner's (struct job_status, from the jobs'
 * events); what it does not keep, the histograms of durations and
 * lateness and the latest run as the history has it, the tally keeps
 * from the same events (an observer of the runner), by job name.  Both
 * belong to a job's version: a job changed by a reload starts afresh, its
 * counters and histograms alike (Prometheus reads a counter reset), and
 * the runs of its old version still going are counted as its runs going,
 * no more.
 *
 * A snapshot copies what the writers need and nothing of the daemon's is
 * touched after it is taken, so it may be written out on another thread
 * while the loop goes on.  Its cost on the loop is a copy per job (about
 * 0.2 us: 2 ms for 10,000 jobs, measured); the writing, 10 to 30 ms of
 * CPU for 10,000 jobs, is off the loop.
 */
#ifndef CHIME_CLI_SNAPSHOT_H
#define CHIME_CLI_SNAPSHOT_H

#include <chime.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "fleet.h"
#include "outcome.h"
#include "recorder.h"
#include "runner.h"

/* Bucket bounds, in seconds: durations from 10 ms to half an hour, lateness
 * from 100 us (a healthy loop) to 5 s; each histogram has one more bucket,
 * +Inf. */
#define SNAP_DURATION_BUCKETS 11
#define SNAP_LATENESS_BUCKETS 10

/* A histogram: counts per bucket (not cumulative; the last is +Inf), the
 * count and the sum of the values. */
struct hist {
  uint64_t bucket[SNAP_DURATION_BUCKETS + 1];
  uint64_t count;
  chime_ns sum;
};

/* A job's latest run, with the fields `chime history --json` gives it. */
struct last_run {
  chime_ns scheduled, started, ended; /* wall clock; started 0: none yet */
  chime_ns late, duration;
  outcome result;
  int exit_code, signal; /* -1, 0: none */
};

/* A job, as a snapshot holds it. */
struct snap_job {
  char name[JOB_NAME_MAX + 1];
  const char *schedule;      /* a calendar's expression, an interval as written (30s), or @reboot */
  bool calendar;             /* schedule is a cron expression */
  chime_ns every;            /* an interval job's interval (0: a calendar, or @reboot) */
  const char *tz;            /* a calendar's zone, or NULL for the local one */
  struct job_status st;      /* the runner's counters */
  struct last_run last;
  unsigned running;          /* runs going, its old versions' too */
  chime_ns running_since;    /* wall clock: the start of the oldest run going (0: none) */
  chime_ns next;             /* wall clock: the next run planned (CHIME_NEVER: none) */
  bool ended;                /* the job has ended (max_runs, on_error = stop) */
  bool paused;               /* chime pause: its ticks are skipped */
  struct hist duration, lateness;
};

/* The daemon at one instant. */
struct snapshot {
  chime_ns now;              /* wall clock */
  chime_ns started;          /* wall clock: when chime started */
  int pid;
  bool stopping;
  const char *config;        /* the config file, or NULL */
  const char *db;            /* the history database, or NULL */
  struct recorder_health history; /* its why copied into the snapshot */
  unsigned long long log_dropped;
  bool fleet;                /* a node of a fleet: fm is its */
  struct fleet_metrics fm;
  size_t njobs;
  struct snap_job *jobs;     /* in the config's order */
  char *strings;             /* what the pointers above point into */
};

struct tally;

/* A tally of the runner's jobs: an observer of their events, added to the
 * runner (so it must be made before the jobs start, and outlive the
 * runner's loop).  Returns 0 or -ENOMEM. */
int tally_new(struct runner *r, struct tally **out);
void tally_free(struct tally *w);

/* On the loop.  The daemon now: 0 and *out (free it with snapshot_free), or
 * -ENOMEM. */
int tally_snapshot(struct tally *w, struct snapshot **out);
void snapshot_free(struct snapshot *s);

/* A growing text: appends never fail, but a text that could not grow is
 * marked nomem and grows no more. */
struct text {
  char *p;
  size_t len, cap;
  bool nomem;
};
void text_put(struct text *t, const char *s, size_t n);
void text_puts(struct text *t, const char *s);
/* s[0..n) as a JSON string, escaped as the log escapes (log.c). */
void text_json(struct text *t, const char *s, size_t n);
/* s as a label value of the exposition format: \\, \" and \n escaped. */
void text_label(struct text *t, const char *s);
/* A wall-clock instant as RFC 3339 UTC with milliseconds (as format_wall
 * writes it, in a tenth of its time). */
void text_wall(struct text *t, chime_ns wall);

/* Any thread.  The snapshot in Prometheus' text exposition format (0.0.4),
 * or as the JSON of /api/jobs; appended to *t. */
void render_metrics(const struct snapshot *s, struct text *t);
void render_jobs(const struct snapshot *s, struct text *t);

#endif
