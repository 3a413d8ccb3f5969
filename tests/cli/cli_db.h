/* cli_db.h - what the chime command's tests read of a history database:
 * one number or text of a query, on a database the daemon may not have
 * made yet. */
#ifndef CHIME_CLI_DB_H
#define CHIME_CLI_DB_H

#include <sqlite3.h>

#include "cli_test.h"

/* The first column of the first row of sql: as a number into *v, and as
 * text into buf (when not NULL).  1 if there was a row, 0 if not, -1 if
 * the database or its table is not there (yet). */
static int query(const char *db, const char *sql, long long *v, char *buf, size_t size) {
  sqlite3 *h;
  sqlite3_stmt *st;
  int rc = -1;
  if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
      sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK) {
    rc = sqlite3_step(st) == SQLITE_ROW;
    if (rc) *v = sqlite3_column_int64(st, 0);
    if (rc && buf) snprintf(buf, size, "%s", sqlite3_column_text(st, 0) ? (const char *)sqlite3_column_text(st, 0) : "");
    sqlite3_finalize(st);
  }
  sqlite3_close(h);
  return rc;
}

/* One number from the database (-1 if no row). */
static long long q(const char *db, const char *sql) {
  long long v = -1;
  assert_true(query(db, sql, &v, NULL, 0) >= 0);
  return v;
}

/* As q, for a database that may not be there yet: -1 until it is. */
static long long q_soon(const char *db, const char *sql) {
  long long v = -1;
  query(db, sql, &v, NULL, 0);
  return v;
}

#endif
