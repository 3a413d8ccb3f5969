/* recorder.h - the daemon's history, written off the loop.
 *
 * What the daemon records (a run's start, its end, a run of skipped ticks)
 * is queued, never written on the path of a tick: a writer task takes the
 * queue in batches and writes each in one transaction on a thread of the
 * loop's pool (SQLite blocks; the loop must not).  A database that is
 * locked, full or gone delays the writes, not the jobs: the batch waits
 * and is tried again (after 0.1 s, doubling up to 5 s), and the first
 * failure and the recovery are logged.  Nothing queued is lost while the
 * daemon lives, up to RECORDER_MAX items waiting (beyond, the oldest are
 * dropped and counted in the log); at shutdown the queue is written within
 * the shutdown's grace.  What a crash loses is what was queued and not yet
 * written: milliseconds of records, not a run that the history says
 * nothing of (a run whose start was written and whose end was not is
 * marked interrupted at the next start).
 */
#ifndef CHIME_CLI_RECORDER_H
#define CHIME_CLI_RECORDER_H

#include <chime.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "history.h"
#include "outcome.h"

#define RECORDER_MAX 10000 /* items waiting to be written, at most */

struct recorder;

/* A run as the history keeps it.  The daemon fills it as the run goes and
 * hands it to the recorder twice: at its start, and at its end, after
 * which the recorder owns it (and frees it, and `keep`, once written). */
struct run_record {
  char job[JOB_NAME_MAX + 1];
  chime_ns scheduled, started, late; /* wall clock, wall clock, ns */
  trigger_kind trigger;              /* what made it run, other than its tick (TRIGGER_NONE: its tick) */
  int pid;                           /* the child's, 0 until it started */
  int64_t pid_start;                 /* its start time (procinfo.h), or -1 */
  /* its end */
  outcome result;
  int exit_code;      /* -1: none */
  int signal;         /* 0: none */
  chime_ns ended;     /* wall clock */
  const char *error;  /* why it could not start, or NULL */
  const char *out, *err; /* the output's tails, or NULL */
  size_t out_len, err_len;
  void *keep;         /* what error, out and err point into (freed with the record), or NULL */
  /* the recorder's */
  int64_t row; /* its row, once its start is written */
  bool batched, whole, fresh; /* its batch's, on the pool's thread: its start is in it; its end too (one
                               * row, written whole at its start); its row was written by it */
  enum { START_QUEUED, START_WRITING, START_WRITTEN } start_at; /* the loop's: where its start is */
  struct rec_item {
    struct rec_item *next;
    int kind;
  } start_item, end_item; /* its places in the queue */
};

/* A recorder for the database at path (NULL: no history: records are
 * dropped as they come).  The database is opened by the first write.
 * Returns 0 or -ENOMEM. */
int recorder_new(const char *path, bool make_dirs, struct recorder **out);
/* Frees the recorder and whatever is still queued (write it first:
 * recorder_flush). */
void recorder_free(struct recorder *rec);

/* Queue a run's start (once its child has started, or failed to: the
 * fields of its start are not to change after), a run's end (the record
 * is the recorder's from then on), or `count` ticks skipped.  Never
 * block; a skip that cannot be queued (no memory) is logged as lost. */
void recorder_start(struct recorder *rec, struct run_record *r);
void recorder_end(struct recorder *rec, struct run_record *r);
void recorder_skip(struct recorder *rec, const char *job, chime_ns first, chime_ns last, uint64_t count,
                   int reason, trigger_kind trigger);

/* Queue a step of pruning a job's history to its bounds (copied), at the
 * wall clock's now.  A step deletes at most RECORDER_PRUNE_STEP rows, and
 * the rows a batch deletes are at most RECORDER_PRUNE_BATCH (written on
 * the pool, they delay other writes by that much at most, and the loop
 * not at all); while rows beyond the bounds remain, the next step is
 * queued behind what came meanwhile.  Steps of one job in one batch are
 * one.  Not queued while the queue is half full. */
#define RECORDER_PRUNE_STEP 500
#define RECORDER_PRUNE_BATCH 2000
void recorder_prune(struct recorder *rec, const char *job, const struct history_bounds *b);
/* Queue that a job is paused since `since` (chime pause), or no longer. */
void recorder_pause(struct recorder *rec, const char *job, bool paused, chime_ns since);
/* Queue what a hook did, for the row of its run (its strings copied). */
void recorder_hook(struct recorder *rec, int64_t row, const struct hook_result *res);

/* Who hears that the end of a run is written: fn(ctx, record, row) is
 * called on the loop for each record given to recorder_end, once: when
 * its end is written (row > 0), or when it will not be (0: no history,
 * the queue was full, the recorder is freed).  The record is valid during
 * the call only.  NULL fn: no one. */
void recorder_on_end(struct recorder *rec, void (*fn)(void *ctx, const struct run_record *r, int64_t row),
                     void *ctx);

/* A job on record as paused. */
struct paused_job {
  struct paused_job *next;
  chime_ns since;
  char job[JOB_NAME_MAX + 1];
};

/* Task only.  The jobs on record as paused, read on the pool (the
 * database is opened if it is not): 0 and a list in *out (NULL: none;
 * free each), or a negative errno (no history: -ENOENT). */
int recorder_paused(struct recorder *rec, struct paused_job **out);

/* Task only.  Waits until everything queued is written or `deadline`
 * passes.  Returns 0, -ETIMEDOUT (records left: logged), -ECANCELED. */
int recorder_flush(struct recorder *rec, chime_ns deadline);

/* Task only.  The latest tick of `job` on record (chime_wall_now's clock),
 * read on the pool: 0 and *out, -ENOENT (none), or a negative errno. */
int recorder_last_tick(struct recorder *rec, const char *job, chime_ns *out);

/* How the writes fare: what metrics and health checks show. */
struct recorder_health {
  const char *path;              /* the database, or NULL (no history) */
  unsigned long long failures;   /* batches that failed to be written, each try counted, since the start */
  unsigned long long dropped;    /* records dropped (the queue was full, or no memory), since the start */
  size_t queued;                 /* records waiting to be written */
  chime_ns failing_since;        /* chime_now() when the writes began to fail; 0 while they succeed */
  const char *why;               /* why the latest write failed, while they fail (the recorder's), or NULL */
};
void recorder_health(const struct recorder *rec, struct recorder_health *out);

/* Frees a record the recorder was never given. */
void run_record_free(struct run_record *r);

#endif
