/* pg.c - a PostgreSQL connection used from the loop (pg.h).
 *
 * libpq's non-blocking pipeline: statements are queued with
 * PQsendQueryPrepared, a Sync ends the batch (the statements between two
 * Syncs are one implicit transaction), PQflush sends it, waiting for the
 * socket to take more (and reading meanwhile, as libpq asks, so that a
 * server writing back cannot deadlock a client writing); results are
 * read with PQconsumeInput while PQisBusy says a whole one is not in yet.
 * Each statement's results end with a NULL; the batch ends with
 * PGRES_PIPELINE_SYNC.
 */
#include "pg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int pg_conninfo(const char *given, char *buf, size_t size) {
  bool string = strchr(given, '=') || strncmp(given, "postgres://", 11) == 0 || strncmp(given, "postgresql://", 13) == 0;
  int n = snprintf(buf, size, "%s%s", string ? "" : "service=", given);
  return n >= 0 && (size_t)n < size ? 0 : -ENAMETOOLONG;
}

/* What the pool's thread does: the blocking connect. */
struct opening {
  const char *conninfo;
  PGconn *conn;
};

static int open_blocking(void *arg) {
  struct opening *o = arg;
  /* connect_timeout first: the conninfo, expanded in dbname's place, overrides it */
  const char *const keys[] = {"connect_timeout", "fallback_application_name", "dbname", NULL};
  const char *const values[] = {"5", "chime", o->conninfo, NULL};
  o->conn = PQconnectdbParams(keys, values, 1);
  return 0;
}

static void say(char *why, size_t size, const char *what, const PGconn *c) {
  const char *m = c ? PQerrorMessage(c) : "out of memory";
  size_t n = strlen(m);
  while (n && (m[n - 1] == '\n' || m[n - 1] == ' ')) n--;
  snprintf(why, size, "%s%s%.*s", what, *what ? ": " : "", (int)n, m);
}

static void quiet(void *arg, const char *message) { (void)arg, (void)message; }

int pg_open(const char *conninfo, struct pg **out, char *why, size_t size) {
  struct opening o = {conninfo, NULL};
  int rc = chime_to_thread(open_blocking, &o, NULL);
  if (rc != 0) {
    PQfinish(o.conn);
    snprintf(why, size, "%s", chime_strerror(rc));
    return rc;
  }
  if (!o.conn || PQstatus(o.conn) != CONNECTION_OK) {
    say(why, size, "", o.conn);
    PQfinish(o.conn);
    return -ECONNREFUSED;
  }
  struct pg *pg = calloc(1, sizeof *pg);
  if (!pg || PQsetnonblocking(o.conn, 1) != 0) {
    say(why, size, pg ? "non-blocking mode" : "", pg ? o.conn : NULL);
    PQfinish(o.conn);
    free(pg);
    return -ENOMEM;
  }
  pg->conn = o.conn;
  pg->fd = PQsocket(o.conn);
  PQsetNoticeProcessor(o.conn, quiet, NULL); /* the server's notices are no errors: not on stderr */
  *out = pg;
  return 0;
}

void pg_close(struct pg *pg) {
  if (!pg) return;
  PQfinish(pg->conn); /* sends Terminate if it can, without waiting */
  free(pg);
}

void pg_where(const struct pg *pg, char *buf, size_t size) {
  const char *host = PQhost(pg->conn);
  snprintf(buf, size, "host=%s port=%s dbname=%s user=%s", host && *host ? host : "(default)", PQport(pg->conn),
           PQdb(pg->conn), PQuser(pg->conn));
}

/* Sends what libpq holds, reading meanwhile. */
static int flush(struct pg *pg, chime_ns deadline) {
  for (;;) {
    int rc = PQflush(pg->conn);
    if (rc == 0) return 0;
    if (rc < 0) return -EIO;
    rc = chime_wait_fd(pg->fd, CHIME_READABLE | CHIME_WRITABLE, deadline);
    if (rc < 0) return rc;
    if ((rc & CHIME_READABLE) && !PQconsumeInput(pg->conn)) return -EIO;
  }
}

/* Waits until PQgetResult would not block. */
static int ready(struct pg *pg, chime_ns deadline) {
  while (PQisBusy(pg->conn)) {
    int rc = chime_wait_fd(pg->fd, CHIME_READABLE, deadline);
    if (rc < 0) return rc;
    if (!PQconsumeInput(pg->conn)) return -EIO;
  }
  return 0;
}

int pg_simple(struct pg *pg, const char *sql, chime_ns deadline, PGresult **rows, char *why, size_t size) {
  *rows = NULL;
  if (!PQsendQuery(pg->conn, sql)) return say(why, size, "", pg->conn), -EIO;
  int rc = flush(pg, deadline), failed = 0;
  while (rc == 0) {
    if ((rc = ready(pg, deadline)) != 0) break;
    PGresult *r = PQgetResult(pg->conn);
    if (!r) break;
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_TUPLES_OK) {
      PQclear(*rows);
      *rows = r;
      continue;
    }
    if (st != PGRES_COMMAND_OK && !failed) {
      const char *m = PQresultErrorMessage(r);
      snprintf(why, size, "%.*s", (int)strcspn(m, "\n"), m);
      failed = -EPROTO;
    }
    PQclear(r);
  }
  if (rc && !why[0]) snprintf(why, size, "%s", chime_strerror(rc));
  if (rc || failed) PQclear(*rows), *rows = NULL;
  return rc ? rc : failed;
}

int pg_pipeline(struct pg *pg) { return PQenterPipelineMode(pg->conn) ? 0 : -EIO; }

int pg_push(struct pg *pg, const char *name, int n, const char *const *values, const int *lengths,
            const int *formats) {
  return PQsendQueryPrepared(pg->conn, name, n, values, lengths, formats, 0) ? 0 : -EIO;
}

int pg_prepare(struct pg *pg, const char *name, const char *sql, int nparams) {
  return PQsendPrepare(pg->conn, name, sql, nparams, NULL) ? 0 : -EIO;
}

int pg_sync(struct pg *pg, chime_ns deadline) {
  if (!PQpipelineSync(pg->conn)) return -EIO;
  return flush(pg, deadline);
}

/* The next result: in a non-blocking pipeline, PQgetResult gives NULL
 * (and PQisBusy says it would not block) while the next statement's
 * answer has not come in yet, so a NULL here means "wait for more". */
static int next_result(struct pg *pg, chime_ns deadline, PGresult **res) {
  for (;;) {
    int rc = ready(pg, deadline);
    if (rc) return rc;
    if ((*res = PQgetResult(pg->conn)) != NULL) return 0;
    if ((rc = chime_wait_fd(pg->fd, CHIME_READABLE, deadline)) < 0) return rc;
    if (!PQconsumeInput(pg->conn)) return -EIO;
  }
}

int pg_result(struct pg *pg, chime_ns deadline, PGresult **res) {
  PGresult *r;
  int rc = next_result(pg, deadline, &r);
  if (rc) return rc;
  if (PQresultStatus(r) == PGRES_PIPELINE_SYNC) {
    PQclear(r);
    return -EIO;
  }
  /* the NULL that ends this statement's results */
  if ((rc = ready(pg, deadline)) != 0) {
    PQclear(r);
    return rc;
  }
  PGresult *end = PQgetResult(pg->conn);
  if (end) { /* more than one result for a statement: none of ours does that */
    PQclear(end);
    PQclear(r);
    return -EIO;
  }
  *res = r;
  return 0;
}

int pg_batch_end(struct pg *pg, chime_ns deadline) {
  for (;;) {
    PGresult *r;
    int rc = next_result(pg, deadline, &r);
    if (rc) return rc;
    ExecStatusType st = PQresultStatus(r);
    PQclear(r);
    if (st == PGRES_PIPELINE_SYNC) return 0;
  }
}

int pg_idle(struct pg *pg, chime_ns deadline) {
  int rc = chime_wait_fd(pg->fd, CHIME_READABLE, deadline);
  if (rc < 0) return rc;
  return PQconsumeInput(pg->conn) ? 1 : -EIO;
}

long long pg_int(const PGresult *res, int row, int col) {
  if (PQgetisnull(res, row, col)) return 0;
  return strtoll(PQgetvalue(res, row, col), NULL, 10);
}
