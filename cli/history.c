/* history.c - runs recorded in SQLite.
 *
 * One table, `runs`: a row is inserted when a run starts (outcome
 * "running") and completed when it ends, so that a crash leaves the run in
 * flight on record; ticks skipped together are one row (outcome
 * "skipped", their reason, count, first and last tick), so that a job
 * skipping a million ticks writes one row, not a million.  The database is
 * in WAL mode (readers never block the daemon).  The daemon's writes come
 * from a thread of its pool, in transactions (recorder.c): a database
 * locked by someone else delays them, never a tick.  The schema's version
 * is PRAGMA user_version; each migration takes it one step forward in a
 * transaction of its own; a new database is made at the latest version at
 * once (schema_now: ALTER TABLE re-reads the whole schema, nine of them
 * cost a first start thousands of allocations), and a test keeps the two
 * ways to the same schema.  Times are nanoseconds since the Unix epoch;
 * durations nanoseconds.
 *
 * `chime history` only reads: it opens the database read-only, never
 * creates nor migrates it, and reads an older schema as it is (columns it
 * lacks are NULL), so that it works on a file or directory it cannot
 * write.  A database without its -wal file is read as immutable: no
 * daemon has it open (a daemon's connection keeps the -wal), and SQLite
 * then creates no -wal or -shm beside it (files a root `chime history`
 * would leave to a user's daemon, which could not write them).  With a
 * -wal, it is read in WAL mode, and as immutable if the -shm cannot be
 * opened or made.
 */
#include "history.h"

#include <errno.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "procinfo.h"

/* The statements the recorder writes with, prepared once (parsing them
 * for each run cost more than the writes). */
enum { ST_START, ST_RUN, ST_END, ST_SKIP, ST_COUNT };

struct history {
  sqlite3 *db;
  int version; /* the schema's (user_version) */
  sqlite3_stmt *cached[ST_COUNT];
};

/* The statement `which` (sql), prepared at its first use and kept, its
 * bindings cleared (its user resets it after its step). */
static int cached(struct history *h, int which, const char *sql, sqlite3_stmt **out) {
  if (!h->cached[which]) {
    int rc = sqlite3_prepare_v3(h->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &h->cached[which], NULL);
    if (rc != SQLITE_OK) return rc;
  } else {
    sqlite3_clear_bindings(h->cached[which]);
  }
  *out = h->cached[which];
  return SQLITE_OK;
}

/* migrations[v] takes the schema from version v to v + 1; a new database
 * (version 0) gets schema_now. */
static const char *const migrations[HISTORY_SCHEMA] = {
    NULL,
    "ALTER TABLE runs ADD COLUMN error TEXT;"
    "ALTER TABLE runs ADD COLUMN chime_pid INTEGER;"
    "CREATE INDEX runs_job_scheduled ON runs(job, scheduled);",
    "ALTER TABLE runs ADD COLUMN triggered INTEGER;"
    "ALTER TABLE runs ADD COLUMN reason TEXT;"
    "ALTER TABLE runs ADD COLUMN skipped INTEGER;"
    "ALTER TABLE runs ADD COLUMN last_scheduled INTEGER;",
    "ALTER TABLE runs ADD COLUMN pid_start INTEGER;"
    "ALTER TABLE runs ADD COLUMN chime_start INTEGER;"
    "ALTER TABLE runs ADD COLUMN boot_id TEXT;",
    /* 5: what triggered a run (its tick: NULL); what its hook did; the
     * paused jobs; indexes for pruning a job's rows newest first */
    "ALTER TABLE runs ADD COLUMN triggered_by TEXT;"
    "UPDATE runs SET triggered_by = 'catch_up' WHERE triggered = 1;"
    "ALTER TABLE runs ADD COLUMN hook TEXT;"
    "ALTER TABLE runs ADD COLUMN hook_outcome TEXT;"
    "ALTER TABLE runs ADD COLUMN hook_exit_code INTEGER;"
    "ALTER TABLE runs ADD COLUMN hook_signal INTEGER;"
    "ALTER TABLE runs ADD COLUMN hook_error TEXT;"
    "CREATE INDEX runs_job_id ON runs(job, id);"
    "CREATE INDEX runs_job_outcome ON runs(job, outcome);"
    "CREATE TABLE paused (job TEXT PRIMARY KEY, since INTEGER NOT NULL);",
};

/* The schema at HISTORY_SCHEMA, for a new database: what the migrations
 * make, in one step. */
static const char schema_now[] = "CREATE TABLE runs ("
                                 " id INTEGER PRIMARY KEY,"
                                 " job TEXT NOT NULL,"
                                 " scheduled INTEGER NOT NULL,"
                                 " started INTEGER NOT NULL,"
                                 " ended INTEGER,"
                                 " outcome TEXT NOT NULL,"
                                 " exit_code INTEGER,"
                                 " signal INTEGER,"
                                 " late INTEGER NOT NULL,"
                                 " pid INTEGER,"
                                 " stdout_tail BLOB,"
                                 " stderr_tail BLOB,"
                                 " error TEXT,"
                                 " chime_pid INTEGER,"
                                 " triggered INTEGER,"
                                 " reason TEXT,"
                                 " skipped INTEGER,"
                                 " last_scheduled INTEGER,"
                                 " pid_start INTEGER,"
                                 " chime_start INTEGER,"
                                 " boot_id TEXT,"
                                 " triggered_by TEXT,"
                                 " hook TEXT,"
                                 " hook_outcome TEXT,"
                                 " hook_exit_code INTEGER,"
                                 " hook_signal INTEGER,"
                                 " hook_error TEXT);"
                                 "CREATE INDEX runs_job_scheduled ON runs(job, scheduled);"
                                 "CREATE INDEX runs_job_id ON runs(job, id);"
                                 "CREATE INDEX runs_job_outcome ON runs(job, outcome);"
                                 "CREATE TABLE paused (job TEXT PRIMARY KEY, since INTEGER NOT NULL);";

int history_default_path(char *buf, size_t size) {
  const char *state = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
  int n;
  if (state && state[0] == '/') n = snprintf(buf, size, "%s/chime/history.db", state);
  else if (home && home[0] == '/') n = snprintf(buf, size, "%s/.local/state/chime/history.db", home);
  else return -ENOENT;
  return n > 0 && (size_t)n < size ? 0 : -ENAMETOOLONG;
}

/* mkdir -p of the directories above path, private to the user. */
static int make_parents(const char *path) {
  char dir[4096];
  if (strlen(path) >= sizeof dir) return -ENAMETOOLONG;
  strcpy(dir, path);
  for (char *p = dir + 1; *p; p++) {
    if (*p != '/') continue;
    *p = '\0';
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) return -errno;
    *p = '/';
  }
  return 0;
}

const char *history_error(struct history *h) { return h && h->db ? sqlite3_errmsg(h->db) : "no database"; }

static int fail(struct history *h, int rc) {
  (void)h;
  return rc == SQLITE_BUSY || rc == SQLITE_LOCKED ? -EBUSY : rc == SQLITE_NOMEM ? -ENOMEM : -EIO;
}

static int exec(struct history *h, const char *sql) {
  int rc = sqlite3_exec(h->db, sql, NULL, NULL, NULL);
  return rc == SQLITE_OK ? 0 : fail(h, rc);
}

static int user_version(struct history *h, int *v) {
  sqlite3_stmt *st;
  int rc = sqlite3_prepare_v2(h->db, "PRAGMA user_version", -1, &st, NULL);
  if (rc != SQLITE_OK) return fail(h, rc);
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) *v = sqlite3_column_int(st, 0);
  sqlite3_finalize(st);
  return rc == SQLITE_ROW ? 0 : fail(h, rc);
}

static int migrate(struct history *h, char *err, size_t size, const char *path) {
  int v;
  int rc = user_version(h, &v);
  if (rc) return rc;
  if (v > HISTORY_SCHEMA) {
    snprintf(err, size, "history database %s: schema version %d is newer than this chime's (%d)", path, v,
             HISTORY_SCHEMA);
    return -EPROTO;
  }
  while (v < HISTORY_SCHEMA) {
    /* Each step reads the version again in its transaction: another chime
     * starting on the same file may have taken it a step already. */
    if ((rc = exec(h, "BEGIN IMMEDIATE")) != 0) return rc;
    int to = v;
    if ((rc = user_version(h, &v)) == 0 && v < HISTORY_SCHEMA) {
      to = v == 0 ? HISTORY_SCHEMA : v + 1;
      char bump[64];
      snprintf(bump, sizeof bump, "PRAGMA user_version = %d;", to);
      if ((rc = exec(h, v == 0 ? schema_now : migrations[v])) == 0) rc = exec(h, bump);
    }
    if (rc || (rc = exec(h, "COMMIT")) != 0) goto rollback;
    v = v < to ? to : v;
  }
  return 0;
rollback:
  sqlite3_exec(h->db, "ROLLBACK", NULL, NULL, NULL);
  return rc;
}

int history_open(const char *path, bool make_dirs, struct history **out, char *err, size_t size) {
  struct history *h = calloc(1, sizeof *h);
  if (!h) return snprintf(err, size, "history database %s: out of memory", path), -ENOMEM;
  int rc = 0;
  if (make_dirs && (rc = make_parents(path)) != 0) {
    snprintf(err, size, "history database %s: cannot create its directory: %s", path, strerror(-rc));
    free(h);
    return rc;
  }
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
  int src = sqlite3_open_v2(path, &h->db, flags, NULL);
  if (src == SQLITE_OK) sqlite3_busy_timeout(h->db, 500);
  if (src != SQLITE_OK) rc = fail(h, src);
  else if ((rc = exec(h, "PRAGMA journal_mode = WAL")) == 0 && (rc = exec(h, "PRAGMA synchronous = NORMAL")) == 0)
    rc = migrate(h, err, size, path);
  if (rc == -EPROTO) {
    history_close(h);
    return rc;
  }
  if (rc) {
    snprintf(err, size, "history database %s: %s", path,
             h->db ? sqlite3_errmsg(h->db) : "cannot open");
    history_close(h);
    return rc;
  }
  *out = h;
  return 0;
}

/* Opens path read-only (as a URI, immutable or not) and reads its schema
 * version: 0, or SQLite's error code with h->db left for its message. */
static int open_read(struct history *h, const char *path, bool immutable) {
  char uri[4096 * 3 + 64];
  size_t n = (size_t)snprintf(uri, sizeof uri, "file:");
  for (const char *c = path; *c && n + 4 < sizeof uri; c++) /* the path's own ? # % are not the URI's */
    n += strchr("?#%", *c) ? (size_t)snprintf(uri + n, 4, "%%%02X", (unsigned char)*c) : (uri[n] = *c, 1);
  snprintf(uri + n, sizeof uri - n, "?mode=ro%s", immutable ? "&immutable=1" : "");
  int rc = sqlite3_open_v2(uri, &h->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX, NULL);
  if (rc == SQLITE_OK) sqlite3_busy_timeout(h->db, 2000);
  if (rc == SQLITE_OK && user_version(h, &h->version) != 0) rc = sqlite3_errcode(h->db);
  return rc;
}

int history_open_read(const char *path, struct history **out, char *err, size_t size) {
  struct history *h = calloc(1, sizeof *h);
  if (!h) return snprintf(err, size, "history database %s: out of memory", path), -ENOMEM;
  char wal[4096];
  bool live = (size_t)snprintf(wal, sizeof wal, "%s-wal", path) < sizeof wal && access(wal, F_OK) == 0;
  int rc = open_read(h, path, !live);
  if (live && (rc == SQLITE_CANTOPEN || rc == SQLITE_READONLY)) { /* no -shm, and none can be made */
    sqlite3_close_v2(h->db);
    h->db = NULL;
    rc = open_read(h, path, true);
  }
  if (rc == SQLITE_OK && h->version > HISTORY_SCHEMA) {
    snprintf(err, size, "history database %s: schema version %d is newer than this chime's (%d)", path, h->version,
             HISTORY_SCHEMA);
    history_close(h);
    return -EPROTO;
  }
  if (rc != SQLITE_OK) {
    snprintf(err, size, "history database %s: %s", path, h->db ? sqlite3_errmsg(h->db) : "cannot open");
    history_close(h);
    return rc == SQLITE_NOMEM ? -ENOMEM : -EIO;
  }
  *out = h;
  return 0;
}

void history_close(struct history *h) {
  if (!h) return;
  for (int i = 0; i < ST_COUNT; i++) sqlite3_finalize(h->cached[i]);
  sqlite3_close_v2(h->db);
  free(h);
}

/* Whether the process pid that started at `start` (clock ticks since the
 * boot `boot`) still lives: not a process that reuses its pid. */
static bool same_process(pid_t pid, int64_t start, const char *boot) {
  return pid > 0 && strcmp(boot, boot_id()) == 0 && proc_start_time(pid) == start;
}

/* A run of a chime that died (SIGKILL, a crash) may have left its child's
 * group behind, which nothing times any more: it is killed, if it is
 * still that group (this boot; the child itself gone, or the same process
 * by its start time: never a group whose id a new process took). */
static void end_left_behind(pid_t pid, int64_t start, const char *boot) {
  if (pid <= 0 || start < 0 || !boot[0] || strcmp(boot, boot_id()) != 0) return;
  int64_t now = proc_start_time(pid);
  if (now >= 0 && !proc_started_near(now, start)) return; /* the pid is another process's now */
  kill(-pid, SIGKILL);
  kill(pid, SIGKILL);
}

int history_mark_interrupted(struct history *h) {
  sqlite3_stmt *sel, *upd;
  int rc = sqlite3_prepare_v2(h->db,
                              "SELECT id, chime_pid, chime_start, boot_id, pid, pid_start FROM runs"
                              " WHERE outcome = 'running'",
                              -1, &sel, NULL);
  if (rc != SQLITE_OK) return fail(h, rc);
  rc = sqlite3_prepare_v2(h->db, "UPDATE runs SET outcome = 'interrupted' WHERE id = ?1", -1, &upd, NULL);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(sel);
    return fail(h, rc);
  }
  int count = 0;
  while ((rc = sqlite3_step(sel)) == SQLITE_ROW) {
    pid_t chime = (pid_t)sqlite3_column_int64(sel, 1);
    const char *boot = sqlite3_column_type(sel, 3) == SQLITE_NULL ? "" : (const char *)sqlite3_column_text(sel, 3);
    bool known = sqlite3_column_type(sel, 2) != SQLITE_NULL;
    bool alive = chime != getpid() && chime > 0 &&
                 (known ? same_process(chime, sqlite3_column_int64(sel, 2), boot) : kill(chime, 0) == 0 || errno == EPERM);
    if (alive) continue; /* its chime runs it still */
    if (sqlite3_column_type(sel, 5) != SQLITE_NULL)
      end_left_behind((pid_t)sqlite3_column_int64(sel, 4), sqlite3_column_int64(sel, 5), boot);
    sqlite3_bind_int64(upd, 1, sqlite3_column_int64(sel, 0));
    if (sqlite3_step(upd) == SQLITE_DONE) count += sqlite3_changes(h->db);
    sqlite3_reset(upd);
  }
  sqlite3_finalize(sel);
  sqlite3_finalize(upd);
  return rc == SQLITE_DONE ? count : fail(h, rc);
}

int history_begin(struct history *h) { return exec(h, "BEGIN IMMEDIATE"); }
int history_commit(struct history *h) { return exec(h, "COMMIT"); }
void history_rollback(struct history *h) { sqlite3_exec(h->db, "ROLLBACK", NULL, NULL, NULL); }

/* Binds a run's end to the statement's parameters from `first`: ended,
 * outcome, exit_code, signal, error, stdout_tail, stderr_tail. */
static void bind_end(sqlite3_stmt *st, int first, const struct run_result *r) {
  sqlite3_bind_int64(st, first, r->ended);
  sqlite3_bind_text(st, first + 1, r->outcome, -1, SQLITE_STATIC);
  if (r->exit_code >= 0) sqlite3_bind_int(st, first + 2, r->exit_code);
  if (r->signal > 0) sqlite3_bind_int(st, first + 3, r->signal);
  if (r->error) sqlite3_bind_text(st, first + 4, r->error, -1, SQLITE_STATIC);
  sqlite3_bind_blob(st, first + 5, r->out ? r->out : "", (int)r->out_len, SQLITE_STATIC);
  sqlite3_bind_blob(st, first + 6, r->err ? r->err : "", (int)r->err_len, SQLITE_STATIC);
}

int64_t history_start(struct history *h, const char *job, chime_ns scheduled, chime_ns started, chime_ns late,
                      int pid, const char *trigger, int64_t pid_start, const struct run_result *end) {
  static int64_t own_start = -2;
  if (own_start == -2) own_start = proc_start_time(getpid());
  sqlite3_stmt *st;
  int rc = end ? cached(h, ST_RUN,
                        "INSERT INTO runs (job, scheduled, started, late, pid, chime_pid, triggered, pid_start,"
                        " chime_start, boot_id, triggered_by, ended, outcome, exit_code, signal, error, stdout_tail,"
                        " stderr_tail)"
                        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
                        &st)
               : cached(h, ST_START,
                        "INSERT INTO runs (job, scheduled, started, late, pid, chime_pid, triggered, pid_start,"
                        " chime_start, boot_id, triggered_by, outcome)"
                        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 'running')",
                        &st);
  if (rc != SQLITE_OK) return fail(h, rc);
  sqlite3_bind_text(st, 1, job, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, scheduled);
  sqlite3_bind_int64(st, 3, started);
  sqlite3_bind_int64(st, 4, late);
  if (pid > 0) sqlite3_bind_int(st, 5, pid);
  sqlite3_bind_int(st, 6, (int)getpid());
  sqlite3_bind_int(st, 7, trigger != NULL);
  if (pid > 0 && pid_start >= 0) sqlite3_bind_int64(st, 8, pid_start);
  if (own_start >= 0) sqlite3_bind_int64(st, 9, own_start);
  sqlite3_bind_text(st, 10, boot_id(), -1, SQLITE_STATIC);
  if (trigger) sqlite3_bind_text(st, 11, trigger, -1, SQLITE_STATIC);
  if (end) bind_end(st, 12, end);
  rc = sqlite3_step(st);
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? sqlite3_last_insert_rowid(h->db) : fail(h, rc);
}

int history_skip(struct history *h, const char *job, chime_ns first, chime_ns last, uint64_t count,
                 const char *reason, chime_ns at, const char *trigger) {
  sqlite3_stmt *st;
  int rc = cached(h, ST_SKIP,
                  "INSERT INTO runs (job, scheduled, started, ended, outcome, late, chime_pid, triggered,"
                  " reason, skipped, last_scheduled, triggered_by)"
                  " VALUES (?1, ?2, ?3, ?3, 'skipped', 0, ?4, ?5, ?6, ?7, ?8, ?9)",
                  &st);
  if (rc != SQLITE_OK) return fail(h, rc);
  sqlite3_bind_text(st, 1, job, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, first);
  sqlite3_bind_int64(st, 3, at);
  sqlite3_bind_int(st, 4, (int)getpid());
  sqlite3_bind_int(st, 5, trigger != NULL);
  sqlite3_bind_text(st, 6, reason, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 7, count > INT64_MAX ? INT64_MAX : (sqlite3_int64)count);
  sqlite3_bind_int64(st, 8, last);
  if (trigger) sqlite3_bind_text(st, 9, trigger, -1, SQLITE_STATIC);
  rc = sqlite3_step(st);
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? 0 : fail(h, rc);
}

int history_end(struct history *h, int64_t id, const struct run_result *r) {
  sqlite3_stmt *st;
  int rc = cached(h, ST_END,
                  "UPDATE runs SET ended = ?2, outcome = ?3, exit_code = ?4, signal = ?5, error = ?6,"
                  " stdout_tail = ?7, stderr_tail = ?8 WHERE id = ?1",
                  &st);
  if (rc != SQLITE_OK) return fail(h, rc);
  sqlite3_bind_int64(st, 1, id);
  bind_end(st, 2, r);
  rc = sqlite3_step(st);
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? 0 : fail(h, rc);
}

int history_last_scheduled(struct history *h, const char *job, chime_ns *out) {
  sqlite3_stmt *st;
  int rc = sqlite3_prepare_v2(h->db, "SELECT max(max(scheduled), coalesce(max(last_scheduled), 0)) FROM runs"
                                     " WHERE job = ?1", -1, &st, NULL);
  if (rc != SQLITE_OK) return fail(h, rc);
  sqlite3_bind_text(st, 1, job, -1, SQLITE_STATIC);
  rc = sqlite3_step(st);
  int result = rc != SQLITE_ROW ? fail(h, rc) : sqlite3_column_type(st, 0) == SQLITE_NULL ? -ENOENT : 0;
  if (result == 0) *out = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return result;
}

bool history_bounded(const struct history_bounds *b) {
  return b->keep || b->max_runs || b->keep_ok || b->keep_failed;
}

int history_hook(struct history *h, int64_t id, const struct hook_result *r) {
  sqlite3_stmt *st;
  int rc = sqlite3_prepare_v2(h->db,
                              "UPDATE runs SET hook = ?2, hook_outcome = ?3, hook_exit_code = ?4, hook_signal = ?5,"
                              " hook_error = ?6 WHERE id = ?1",
                              -1, &st, NULL);
  if (rc != SQLITE_OK) return fail(h, rc);
  sqlite3_bind_int64(st, 1, id);
  sqlite3_bind_text(st, 2, r->hook, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, r->outcome, -1, SQLITE_STATIC);
  if (r->exit_code >= 0) sqlite3_bind_int(st, 4, r->exit_code);
  if (r->signal > 0) sqlite3_bind_int(st, 5, r->signal);
  if (r->error) sqlite3_bind_text(st, 6, r->error, -1, SQLITE_STATIC);
  rc = sqlite3_step(st);
  sqlite3_finalize(st);
  return rc == SQLITE_DONE ? 0 : fail(h, rc);
}

int history_set_paused(struct history *h, const char *job, bool paused, chime_ns since) {
  sqlite3_stmt *st;
  int rc = sqlite3_prepare_v2(h->db,
                              paused ? "INSERT OR REPLACE INTO paused (job, since) VALUES (?1, ?2)"
                                     : "DELETE FROM paused WHERE job = ?1",
                              -1, &st, NULL);
  if (rc != SQLITE_OK) return fail(h, rc);
  sqlite3_bind_text(st, 1, job, -1, SQLITE_STATIC);
  if (paused) sqlite3_bind_int64(st, 2, since);
  rc = sqlite3_step(st);
  sqlite3_finalize(st);
  return rc == SQLITE_DONE ? 0 : fail(h, rc);
}

/* Calls fn for the text (and the number, if there is a second column) of
 * each row of sql, as history_paused says. */
static int each_row(struct history *h, const char *sql, int (*fn)(void *ctx, const char *text, chime_ns n),
                    void *ctx) {
  sqlite3_stmt *st;
  int rc = sqlite3_prepare_v2(h->db, sql, -1, &st, NULL);
  if (rc != SQLITE_OK) return fail(h, rc);
  int stop = 0;
  while (!stop && (rc = sqlite3_step(st)) == SQLITE_ROW)
    stop = fn(ctx, (const char *)sqlite3_column_text(st, 0),
              sqlite3_column_count(st) > 1 ? sqlite3_column_int64(st, 1) : 0);
  sqlite3_finalize(st);
  return stop ? stop : rc == SQLITE_DONE ? 0 : fail(h, rc);
}

int history_paused(struct history *h, int (*fn)(void *ctx, const char *job, chime_ns since), void *ctx) {
  return each_row(h, "SELECT job, since FROM paused ORDER BY job", fn, ctx);
}

/* history_jobs's fn, called through each_row's. */
struct jobs_fn {
  int (*fn)(void *ctx, const char *job);
  void *ctx;
};

static int one_job(void *arg, const char *job, chime_ns unused) {
  const struct jobs_fn *j = arg;
  (void)unused;
  return j->fn(j->ctx, job);
}

int history_jobs(struct history *h, int (*fn)(void *ctx, const char *job), void *ctx) {
  struct jobs_fn j = {fn, ctx};
  return each_row(h, "SELECT DISTINCT job FROM runs ORDER BY job", one_job, &j);
}

/* Runs a statement of bound parameters (?1 the job; then int64s); the
 * number of rows it changed, or the first column of its first row (*got:
 * whether there was one), or a negative errno. */
static int64_t run_bound(struct history *h, const char *sql, const char *job, const int64_t *v, int nv, bool *got) {
  sqlite3_stmt *st;
  int rc = sqlite3_prepare_v2(h->db, sql, -1, &st, NULL);
  if (rc != SQLITE_OK) return fail(h, rc);
  sqlite3_bind_text(st, 1, job, -1, SQLITE_STATIC);
  for (int i = 0; i < nv; i++) sqlite3_bind_int64(st, i + 2, v[i]);
  rc = sqlite3_step(st);
  int64_t out = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : sqlite3_changes(h->db);
  if (got) *got = rc == SQLITE_ROW;
  sqlite3_finalize(st);
  return rc == SQLITE_ROW || rc == SQLITE_DONE ? out : fail(h, rc);
}

/* Deletes at most `limit` rows of the job beyond the newest `keep` that
 * `filter` selects.  The number deleted, or a negative errno. */
static int prune_beyond(struct history *h, const char *job, const char *filter, uint64_t keep, int limit) {
  char sql[512];
  bool got;
  snprintf(sql, sizeof sql, "SELECT id FROM runs WHERE job = ?1 AND %s ORDER BY id DESC LIMIT 1 OFFSET ?2", filter);
  int64_t v[2] = {(int64_t)keep, 0};
  int64_t cut = run_bound(h, sql, job, v, 1, &got); /* the newest row to go */
  if (cut < 0 || !got) return cut < 0 ? (int)cut : 0;
  snprintf(sql, sizeof sql,
           "DELETE FROM runs WHERE id IN (SELECT id FROM runs WHERE job = ?1 AND %s AND id <= ?2"
           " AND outcome != 'running' ORDER BY id LIMIT ?3)",
           filter);
  int64_t d[2] = {cut, limit};
  return (int)run_bound(h, sql, job, d, 2, NULL);
}

int history_prune(struct history *h, const char *job, const struct history_bounds *b, chime_ns now, int limit) {
  int done = 0, n = 0;
  if (b->keep > 0 && now - b->keep > 0) {
    int64_t v[2] = {now - b->keep, limit};
    n = (int)run_bound(h,
                       "DELETE FROM runs WHERE id IN (SELECT id FROM runs WHERE job = ?1 AND scheduled < ?2"
                       " AND outcome != 'running' ORDER BY scheduled LIMIT ?3)",
                       job, v, 2, NULL);
    if (n < 0) return n;
    done += n;
  }
  static const struct {
    size_t off;
    const char *filter;
  } counts[] = {
      {offsetof(struct history_bounds, max_runs), "1"},
      {offsetof(struct history_bounds, keep_ok), "outcome = 'ok'"},
      {offsetof(struct history_bounds, keep_failed), "outcome NOT IN ('ok', 'running')"},
  };
  for (size_t i = 0; i < sizeof counts / sizeof counts[0] && done < limit; i++) {
    uint64_t keep = *(const uint64_t *)((const char *)b + counts[i].off);
    if (!keep) continue;
    if ((n = prune_beyond(h, job, counts[i].filter, keep, limit - done)) < 0) return n;
    done += n;
  }
  return done;
}

/* A column that may be NULL, as JSON. */
static void json_int(FILE *out, const char *key, sqlite3_stmt *st, int col) {
  if (sqlite3_column_type(st, col) == SQLITE_NULL) fprintf(out, ",\"%s\":null", key);
  else fprintf(out, ",\"%s\":%lld", key, (long long)sqlite3_column_int64(st, col));
}

static void json_text(FILE *out, const char *key, sqlite3_stmt *st, int col) {
  fprintf(out, ",\"%s\":", key);
  if (sqlite3_column_type(st, col) == SQLITE_NULL) fputs("null", out);
  else json_fputs(out, (const char *)sqlite3_column_blob(st, col), (size_t)sqlite3_column_bytes(st, col));
}

static void json_time(FILE *out, const char *key, sqlite3_stmt *st, int col) {
  char t[64];
  if (sqlite3_column_type(st, col) == SQLITE_NULL) {
    fprintf(out, ",\"%s\":null", key);
    return;
  }
  format_wall(sqlite3_column_int64(st, col), t, sizeof t);
  fprintf(out, ",\"%s\":\"%s\"", key, t);
}

static void print_json(FILE *out, sqlite3_stmt *st, bool first) {
  fprintf(out, "%s{\"id\":%lld", first ? "" : ",\n", (long long)sqlite3_column_int64(st, 0));
  json_text(out, "job", st, 1);
  json_time(out, "scheduled", st, 2), json_time(out, "started", st, 3), json_time(out, "ended", st, 4);
  json_text(out, "outcome", st, 5);
  json_int(out, "exit_code", st, 6), json_int(out, "signal", st, 7);
  fprintf(out, ",\"late\":%.3f", (double)sqlite3_column_int64(st, 8) / 1e9);
  if (sqlite3_column_type(st, 4) == SQLITE_NULL) fputs(",\"duration\":null", out);
  else fprintf(out, ",\"duration\":%.3f", (double)(sqlite3_column_int64(st, 4) - sqlite3_column_int64(st, 3)) / 1e9);
  json_int(out, "pid", st, 9);
  json_text(out, "error", st, 10), json_text(out, "stdout", st, 11), json_text(out, "stderr", st, 12);
  fprintf(out, ",\"triggered\":%s", sqlite3_column_int(st, 13) ? "true" : "false");
  json_text(out, "reason", st, 14), json_int(out, "skipped", st, 15), json_time(out, "last_scheduled", st, 16);
  json_text(out, "triggered_by", st, 17), json_text(out, "hook", st, 18), json_text(out, "hook_outcome", st, 19);
  json_int(out, "hook_exit_code", st, 20), json_int(out, "hook_signal", st, 21), json_text(out, "hook_error", st, 22);
  fputs("}", out);
}

static void print_row(FILE *out, sqlite3_stmt *st) {
  char sched[64], dur[32] = "-", code[16] = "-";
  format_wall(sqlite3_column_int64(st, 2), sched, sizeof sched);
  if (sqlite3_column_type(st, 4) != SQLITE_NULL) {
    chime_ns d = sqlite3_column_int64(st, 4) - sqlite3_column_int64(st, 3);
    snprintf(dur, sizeof dur, "%.3fs", (double)d / 1e9);
  }
  if (sqlite3_column_type(st, 6) != SQLITE_NULL) snprintf(code, sizeof code, "%d", sqlite3_column_int(st, 6));
  else if (sqlite3_column_type(st, 7) != SQLITE_NULL) snprintf(code, sizeof code, "SIG%d", sqlite3_column_int(st, 7));
  if (sqlite3_column_type(st, 15) != SQLITE_NULL) { /* skipped ticks: their count and reason */
    snprintf(dur, sizeof dur, "-");
    snprintf(code, sizeof code, "%lld", (long long)sqlite3_column_int64(st, 15));
  }
  fprintf(out, "%-6lld %-16s %-24s %-11s %-10s %-6s %.3fs", (long long)sqlite3_column_int64(st, 0),
          (const char *)sqlite3_column_text(st, 1), sched, (const char *)sqlite3_column_text(st, 5), dur, code,
          (double)sqlite3_column_int64(st, 8) / 1e9);
  if (sqlite3_column_type(st, 10) != SQLITE_NULL) fprintf(out, "  %s", (const char *)sqlite3_column_text(st, 10));
  if (sqlite3_column_type(st, 14) != SQLITE_NULL) fprintf(out, "  %s", (const char *)sqlite3_column_text(st, 14));
  if (sqlite3_column_type(st, 17) != SQLITE_NULL) fprintf(out, "  %s", (const char *)sqlite3_column_text(st, 17));
  else if (sqlite3_column_int(st, 13)) fputs("  triggered", out);
  if (sqlite3_column_type(st, 18) != SQLITE_NULL) /* its hook: which, and how it went */
    fprintf(out, "  %s: %s", (const char *)sqlite3_column_text(st, 18), (const char *)sqlite3_column_text(st, 19));
  fputc('\n', out);
}

int history_print(struct history *h, const char *job, int limit, bool json, FILE *out) {
  return history_page(h, &(struct history_query){.job = job, .limit = limit, .json = json}, out);
}

int history_page(struct history *h, const struct history_query *q, FILE *out) {
  /* Version 1 had no error column, versions below 3 no skipped rows,
   * below 4 no trigger's name nor hooks; version 0 (a new, empty file) no
   * table. */
  static const char sql[] = "SELECT id, job, scheduled, started, ended, outcome, exit_code, signal, late, pid, %s,"
                            " stdout_tail, stderr_tail, %s, %s FROM runs WHERE (?1 IS NULL OR job = ?1)"
                            " AND (?3 IS NULL OR id < ?3) ORDER BY id DESC LIMIT ?2";
  char query[sizeof sql + 256];
  snprintf(query, sizeof query, sql, h->version == 1 ? "NULL" : "error",
           h->version < 3 ? "0, NULL, NULL, NULL" : "triggered, reason, skipped, last_scheduled",
           h->version < 4 ? "NULL, NULL, NULL, NULL, NULL, NULL"
                          : "triggered_by, hook, hook_outcome, hook_exit_code, hook_signal, hook_error");
  sqlite3_stmt *st = NULL;
  int rc = h->version == 0 ? SQLITE_OK : sqlite3_prepare_v2(h->db, query, -1, &st, NULL);
  if (rc != SQLITE_OK) return fail(h, rc);
  if (q->job) sqlite3_bind_text(st, 1, q->job, -1, SQLITE_STATIC);
  sqlite3_bind_int(st, 2, q->limit);
  if (q->before > 0) sqlite3_bind_int64(st, 3, q->before);
  bool json = q->json;
  if (json) fputs("[", out);
  else fprintf(out, "%-6s %-16s %-24s %-11s %-10s %-6s %s\n", "ID", "JOB", "SCHEDULED", "OUTCOME", "DURATION", "EXIT",
               "LATE");
  bool first = true;
  while (st && (!q->max_bytes || ftell(out) < (long)q->max_bytes) && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (json) print_json(out, st, first);
    else print_row(out, st);
    first = false;
  }
  if (rc == SQLITE_ROW) rc = SQLITE_DONE; /* cut at max_bytes */
  if (json) fputs(first ? "]\n" : "\n]\n", out);
  sqlite3_finalize(st);
  return !st || rc == SQLITE_DONE ? 0 : fail(h, rc);
}
