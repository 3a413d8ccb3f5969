/* pg.h - a PostgreSQL connection used from the loop.
 *
 * The connection is made on a thread of the loop's pool (libpq resolves
 * host names and reads service files with blocking calls), bounded by
 * connect_timeout; from then on it is used with libpq's non-blocking API,
 * in pipeline mode, its socket awaited with chime_wait_fd: the loop never
 * blocks on the database.  Every wait has a deadline: a server that is
 * frozen or cut off is a timeout, and the caller closes the connection.
 * A connection is used by one task at a time.
 */
#ifndef CHIME_CLI_PG_H
#define CHIME_CLI_PG_H

#include <chime.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

struct pg {
  PGconn *conn;
  int fd; /* its socket */
};

/* The conninfo chime is given: a connection string (key=value ...), a
 * postgresql:// URI, or the name of a service (pg_service.conf), made into
 * service=NAME.  Into buf; 0, or -ENAMETOOLONG. */
int pg_conninfo(const char *given, char *buf, size_t size);

/* Task only.  Connects (on a thread of the pool) with `conninfo` (a
 * pg_conninfo), connect_timeout 5 s unless it says otherwise, and puts the
 * connection in non-blocking pipeline mode.  Returns 0 and *out, or a
 * negative errno with libpq's reason in why (which never holds a
 * password).  -ECANCELED if the task was cancelled meanwhile. */
int pg_open(const char *conninfo, struct pg **out, char *why, size_t size);
/* Closes it (NULL does nothing). */
void pg_close(struct pg *pg);
/* "host=... port=... dbname=... user=...": where it is connected, for the
 * log (never the password). */
void pg_where(const struct pg *pg, char *buf, size_t size);

/* Task only.  Outside pipeline mode (the schema's migration): runs `sql`
 * (one or more statements, the simple protocol) and returns the result of
 * its last statement that returned rows in *rows (free it with PQclear;
 * NULL if none).  0, or a negative errno with the server's message in
 * why. */
int pg_simple(struct pg *pg, const char *sql, chime_ns deadline, PGresult **rows, char *why, size_t size);
/* Enters pipeline mode (after pg_simple).  0 or -EIO. */
int pg_pipeline(struct pg *pg);

/* Queues a prepared statement with its parameters (text, except those
 * whose formats[i] is 1: binary, with their lengths) in the pipeline.
 * 0 or -EIO. */
int pg_push(struct pg *pg, const char *name, int n, const char *const *values, const int *lengths, const int *formats);
/* Queues a statement's preparation.  0 or -EIO. */
int pg_prepare(struct pg *pg, const char *name, const char *sql, int nparams);
/* Ends the batch queued so far (one transaction) and sends it all.
 * 0, -ETIMEDOUT, -ECANCELED, -EIO. */
int pg_sync(struct pg *pg, chime_ns deadline);
/* The result of the next statement of the batch: 0 and *res (the
 * caller's: PQclear it), or a negative errno (the connection is then no
 * good).  A statement that failed gives its result all the same
 * (PGRES_FATAL_ERROR, or PGRES_PIPELINE_ABORTED for those after it). */
int pg_result(struct pg *pg, chime_ns deadline, PGresult **res);
/* Reads up to the end of the batch (its Sync).  0 or a negative errno. */
int pg_batch_end(struct pg *pg, chime_ns deadline);
/* Task only.  Waits until the server sends something (a notification)
 * or deadline; reads it.  > 0 something came, -ETIMEDOUT, -ECANCELED,
 * -EIO (the connection is gone). */
int pg_idle(struct pg *pg, chime_ns deadline);

/* A whole-statement helper: the first row's column as int64 (0 if NULL). */
long long pg_int(const PGresult *res, int row, int col);

#endif
