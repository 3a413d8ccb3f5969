/* history.h - the record of runs, in a SQLite database. */
#ifndef CHIME_CLI_HISTORY_H
#define CHIME_CLI_HISTORY_H

#include <chime.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The schema version this program writes (PRAGMA user_version). */
#define HISTORY_SCHEMA 5

struct history;

/* What a finished run left. */
struct run_result {
  const char *outcome; /* ok, failed, signal, timeout, stopped, replaced, error */
  int exit_code;       /* -1: none */
  int signal;          /* 0: none */
  chime_ns ended;      /* wall clock */
  const char *error;   /* why it could not start, or NULL */
  const char *out, *err;
  size_t out_len, err_len;
};

/* How much of a job's history is kept (its history_* keys); 0: that
 * bound is not set.  Rows of runs still going are never pruned. */
struct history_bounds {
  chime_ns keep;        /* rows whose tick (scheduled) is older than this go */
  uint64_t max_runs;    /* the job's latest this many rows are kept (runs and skipped ticks) */
  uint64_t keep_ok;     /* its latest this many runs that succeeded (ok) */
  uint64_t keep_failed; /* its latest this many other rows (runs that did not succeed, skipped ticks) */
};

/* Whether any bound is set. */
bool history_bounded(const struct history_bounds *b);

/* The most a count of history_bounds may be. */
#define HISTORY_BOUND_MAX 1000000000ull

/* What a run's failure or recovery hook did, for the run's row. */
struct hook_result {
  const char *hook;    /* "on_failure" or "on_recovery" */
  const char *outcome; /* ok, failed, signal, timeout, error */
  int exit_code;       /* -1: none */
  int signal;          /* 0: none */
  const char *error;   /* why it could not start or was stopped, or NULL */
};

/* The default path: $XDG_STATE_HOME/chime/history.db, or
 * $HOME/.local/state/chime/history.db.  0, or -ENOENT with neither set. */
int history_default_path(char *buf, size_t size);

/* Opens (creating it if needed, and the directories above it for the
 * default path) the database at path, in WAL mode, migrating its schema
 * forward: the daemon's.  Returns 0 and *out, or a negative errno with a
 * message naming the path in err. */
int history_open(const char *path, bool make_dirs, struct history **out, char *err, size_t errsize);
/* Opens the database at path to read it only (history_print): never
 * creates, migrates nor writes it, so a read-only file or directory will
 * do; an older schema is read as it is.  As history_open; -EPROTO for a
 * schema newer than this program's. */
int history_open_read(const char *path, struct history **out, char *err, size_t errsize);
void history_close(struct history *h);
/* The last error's message (SQLite's). */
const char *history_error(struct history *h);

/* Runs still marked running whose chime is gone (or is this process, so a
 * restarted pid 1 counts) become "interrupted", and what they left of
 * their child's process group is killed (when it is still that group: the
 * same boot, and the child itself gone or the same by its start time).
 * Returns how many, or a negative errno. */
int history_mark_interrupted(struct history *h);
/* A transaction around the writes of a batch: 0 or a negative errno
 * (-EBUSY: the database is locked by someone else). */
int history_begin(struct history *h);
int history_commit(struct history *h);
void history_rollback(struct history *h);
/* Records a run as it starts; returns its row id (> 0) or a negative errno.
 * `trigger`: what made it run other than its tick falling due
 * (trigger_name: "catch_up", "manual", "queued"), NULL for its tick;
 * `pid_start`: the child's start time (boot_ticks_now), or -1; `end`: the
 * run's end when it is known already (one row, whole), or NULL. */
int64_t history_start(struct history *h, const char *job, chime_ns scheduled, chime_ns started, chime_ns late,
                      int pid, const char *trigger, int64_t pid_start, const struct run_result *end);
/* Records `count` ticks skipped for `reason`, from `first` to `last`,
 * decided at `at`: one row.  0 or a negative errno. */
int history_skip(struct history *h, const char *job, chime_ns first, chime_ns last, uint64_t count,
                 const char *reason, chime_ns at, const char *trigger);
/* Records on the run's row what its hook did.  0 or a negative errno. */
int history_hook(struct history *h, int64_t id, const struct hook_result *res);
/* Records that a job is paused since `since` (chime pause), or is not.
 * 0 or a negative errno. */
int history_set_paused(struct history *h, const char *job, bool paused, chime_ns since);
/* Calls fn(ctx, job, since) for each job on record as paused; stops at
 * fn's first non-zero return, which it returns.  0 or a negative errno. */
int history_paused(struct history *h, int (*fn)(void *ctx, const char *job, chime_ns since), void *ctx);
/* One step of pruning a job's history to its bounds: deletes at most
 * `limit` of its rows (the oldest first; never a run still going): those
 * older than b->keep at wall time `now`, then those beyond max_runs,
 * keep_ok and keep_failed.  Returns how many it deleted (`limit`: there
 * may be more), or a negative errno.  Its cost: the deletes, and a walk of
 * the job's latest max_runs (keep_ok, keep_failed) index entries. */
int history_prune(struct history *h, const char *job, const struct history_bounds *b, chime_ns now, int limit);
/* Calls fn(ctx, job) for each job with rows, as history_paused does. */
int history_jobs(struct history *h, int (*fn)(void *ctx, const char *job), void *ctx);
/* Completes the record of a run.  0 or a negative errno. */
int history_end(struct history *h, int64_t id, const struct run_result *res);
/* The latest tick of the job on record, run or skipped: 0, -ENOENT (none),
 * or a negative errno. */
int history_last_scheduled(struct history *h, const char *job, chime_ns *out);
/* Prints the latest `limit` runs (of `job`, or all when NULL), newest first,
 * as a table or as a JSON array.  0 or a negative errno. */
int history_print(struct history *h, const char *job, int limit, bool json, FILE *out);

/* Which runs history_page prints. */
struct history_query {
  const char *job;  /* a job's runs, or NULL for every job's */
  int limit;        /* at most this many rows */
  int64_t before;   /* only rows whose id is below this (> 0), for the page after one: 0 for the latest */
  bool json;        /* a JSON array (history --json), else the table */
  size_t max_bytes; /* no row begun once `out` holds this many bytes (0: no bound) */
};
/* As history_print, for the runs q names, newest first. */
int history_page(struct history *h, const struct history_query *q, FILE *out);

#endif
