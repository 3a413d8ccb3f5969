/* outbox.c - a fleet node's records waiting for the database (outbox.h),
 * in a SQLite file of their own: one table whose columns are a record's
 * fields, in the order they came (seq).  Every call runs on a thread of
 * the pool: SQLite blocks, the loop must not.
 */
#include "outbox.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct outbox {
  sqlite3 *db;
};

void frec_free(struct frec *r) {
  if (!r) return;
  free(r->error);
  free(r->out);
  free(r->err);
  free(r);
}

struct call {
  struct outbox *ob;
  const char *path;
  struct frec *list;
  int n;
  int rc;
  char why[256];
};

static const char schema[] =
    "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
    "CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY, op INTEGER, id INTEGER, job TEXT, tick INTEGER,"
    " last INTEGER, count INTEGER, outcome TEXT, started INTEGER, ended INTEGER, late INTEGER, pid INTEGER,"
    " exit_code INTEGER, signal INTEGER, degraded INTEGER, triggered INTEGER, error TEXT, out BLOB, err BLOB,"
    " instance INTEGER)";

static int do_open(void *arg) {
  struct call *c = arg;
  sqlite3 *db = NULL;
  int rc = sqlite3_open_v2(c->path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
  if (rc == SQLITE_OK) sqlite3_busy_timeout(db, 1000), rc = sqlite3_exec(db, schema, NULL, NULL, NULL);
  if (rc != SQLITE_OK) {
    snprintf(c->why, sizeof c->why, "outbox %s: %s", c->path, db ? sqlite3_errmsg(db) : "cannot open");
    sqlite3_close_v2(db);
    return c->rc = -EIO;
  }
  c->ob->db = db;
  return c->rc = 0;
}

int outbox_open(const char *path, struct outbox **out, char *why, size_t size) {
  struct outbox *ob = calloc(1, sizeof *ob);
  if (!ob) return -ENOMEM;
  struct call c = {.ob = ob, .path = path};
  int rc = chime_to_thread(do_open, &c, NULL);
  if (rc == 0) rc = c.rc;
  if (rc) {
    snprintf(why, size, "%s", c.why[0] ? c.why : chime_strerror(rc));
    if (ob->db) sqlite3_close_v2(ob->db);
    free(ob);
    return rc;
  }
  *out = ob;
  return 0;
}

void outbox_close(struct outbox *ob) {
  if (!ob) return;
  sqlite3_close_v2(ob->db);
  free(ob);
}

static int do_put(void *arg) {
  struct call *c = arg;
  sqlite3 *db = c->ob->db;
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
  if (rc == SQLITE_OK)
    rc = sqlite3_prepare_v2(db,
                            "INSERT INTO outbox (op, id, job, tick, last, count, outcome, started, ended, late, pid,"
                            " exit_code, signal, degraded, triggered, error, out, err, instance) VALUES"
                            " (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)",
                            -1, &st, NULL);
  for (const struct frec *r = c->list; rc == SQLITE_OK && r; r = r->next) {
    sqlite3_bind_int(st, 1, r->op);
    sqlite3_bind_int64(st, 2, r->id);
    sqlite3_bind_text(st, 3, r->job, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, r->tick);
    sqlite3_bind_int64(st, 5, r->last);
    sqlite3_bind_int64(st, 6, r->count);
    sqlite3_bind_text(st, 7, r->outcome, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 8, r->started);
    sqlite3_bind_int64(st, 9, r->ended);
    sqlite3_bind_int64(st, 10, r->late);
    sqlite3_bind_int(st, 11, r->pid);
    sqlite3_bind_int(st, 12, r->exit_code);
    sqlite3_bind_int(st, 13, r->signal);
    sqlite3_bind_int(st, 14, r->degraded);
    sqlite3_bind_int(st, 15, r->triggered);
    if (r->error) sqlite3_bind_text(st, 16, r->error, -1, SQLITE_STATIC);
    else sqlite3_bind_null(st, 16);
    sqlite3_bind_blob(st, 17, r->out ? r->out : "", (int)r->out_len, SQLITE_STATIC);
    sqlite3_bind_blob(st, 18, r->err ? r->err : "", (int)r->err_len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 19, r->instance);
    rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
    sqlite3_reset(st);
  }
  sqlite3_finalize(st);
  if (rc == SQLITE_OK) rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
  if (rc != SQLITE_OK) sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
  return c->rc = rc == SQLITE_OK ? 0 : -EIO;
}

int outbox_put(struct outbox *ob, struct frec *list, struct frec **left) {
  struct call c = {.ob = ob, .list = list};
  int rc = chime_to_thread(do_put, &c, NULL);
  if (rc == 0) rc = c.rc;
  if (rc) {
    *left = list;
    return rc;
  }
  *left = NULL;
  while (list) {
    struct frec *next = list->next;
    frec_free(list);
    list = next;
  }
  return 0;
}

static char *dup_col(sqlite3_stmt *st, int col, size_t *len) {
  int n = sqlite3_column_bytes(st, col);
  const void *p = sqlite3_column_blob(st, col);
  if (len) *len = (size_t)n;
  if (sqlite3_column_type(st, col) == SQLITE_NULL || (!len && !p)) return NULL;
  char *copy = malloc((size_t)n + 1);
  if (copy) memcpy(copy, p ? p : "", (size_t)n), copy[n] = '\0';
  return copy;
}

static int do_take(void *arg) {
  struct call *c = arg;
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(c->ob->db,
                         "SELECT seq, op, id, job, tick, last, count, outcome, started, ended, late, pid, exit_code,"
                         " signal, degraded, triggered, error, out, err, instance FROM outbox ORDER BY seq LIMIT ?1",
                         -1, &st, NULL) != SQLITE_OK)
    return c->rc = -EIO;
  sqlite3_bind_int(st, 1, c->n);
  struct frec **tail = &c->list;
  int count = 0, rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    struct frec *r = calloc(1, sizeof *r);
    if (!r) break;
    r->seq = sqlite3_column_int64(st, 0);
    r->op = sqlite3_column_int(st, 1);
    r->id = sqlite3_column_int64(st, 2);
    snprintf(r->job, sizeof r->job, "%s", (const char *)sqlite3_column_text(st, 3));
    r->tick = sqlite3_column_int64(st, 4);
    r->last = sqlite3_column_int64(st, 5);
    r->count = sqlite3_column_int64(st, 6);
    snprintf(r->outcome, sizeof r->outcome, "%s", (const char *)sqlite3_column_text(st, 7));
    r->started = sqlite3_column_int64(st, 8);
    r->ended = sqlite3_column_int64(st, 9);
    r->late = sqlite3_column_int64(st, 10);
    r->pid = sqlite3_column_int(st, 11);
    r->exit_code = sqlite3_column_int(st, 12);
    r->signal = sqlite3_column_int(st, 13);
    r->degraded = sqlite3_column_int(st, 14);
    r->triggered = sqlite3_column_int(st, 15);
    r->error = dup_col(st, 16, NULL);
    r->out = dup_col(st, 17, &r->out_len);
    r->err = dup_col(st, 18, &r->err_len);
    r->instance = sqlite3_column_int64(st, 19);
    *tail = r, tail = &r->next;
    count++;
  }
  sqlite3_finalize(st);
  return c->rc = count;
}

int outbox_take(struct outbox *ob, int n, struct frec **list) {
  struct call c = {.ob = ob, .n = n};
  int rc = chime_to_thread(do_take, &c, NULL);
  *list = c.list;
  return rc ? rc : c.rc;
}

static int do_done(void *arg) {
  struct call *c = arg;
  sqlite3_stmt *st;
  int rc = sqlite3_exec(c->ob->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
  if (rc == SQLITE_OK) rc = sqlite3_prepare_v2(c->ob->db, "DELETE FROM outbox WHERE seq = ?1", -1, &st, NULL);
  if (rc != SQLITE_OK) return c->rc = -EIO;
  for (const struct frec *r = c->list; r; r = r->next) {
    sqlite3_bind_int64(st, 1, r->seq);
    sqlite3_step(st);
    sqlite3_reset(st);
  }
  sqlite3_finalize(st);
  rc = sqlite3_exec(c->ob->db, "COMMIT", NULL, NULL, NULL);
  return c->rc = rc == SQLITE_OK ? 0 : -EIO;
}

int outbox_done(struct outbox *ob, const struct frec *list) {
  struct call c = {.ob = ob, .list = (struct frec *)list};
  int rc = chime_to_thread(do_done, &c, NULL);
  return rc ? rc : c.rc;
}
