/* fleetsql.h - the fleet's schema in PostgreSQL, its migrations, and the
 * statements the daemon prepares on each connection. */
#ifndef CHIME_CLI_FLEETSQL_H
#define CHIME_CLI_FLEETSQL_H

#include "pg.h"

/* The schema version this program writes (chime.meta.version). */
#define FLEET_SCHEMA 1

/* The prepared statements, by name: each is a call of one of the schema's
 * functions, with parameters only (no statement is ever built from a
 * value). */
enum fleet_stmt {
  ST_REGISTER, ST_DEFINE, ST_CLAIM, ST_BEAT, ST_REAP, ST_TAKE, ST_STARTED, ST_FINISH, ST_LOCAL, ST_SKIP,
  ST_RELEASE, ST_LEAVE, ST_PAUSE, ST_JOBS, ST_COUNT
};
extern const char *const fleet_stmt_name[ST_COUNT];
extern const int fleet_stmt_params[ST_COUNT]; /* how many parameters each takes */

/* Task only.  Creates or migrates the schema (in one transaction, under
 * an advisory lock, so that nodes starting together do it once), then
 * prepares the statements and enters pipeline mode.  0, or a negative
 * errno with why (-EPROTO: a schema newer than this program's). */
int fleet_schema(struct pg *pg, chime_ns deadline, char *why, size_t size);

/* The history query of `chime history --fleet`: $1 the job or NULL, $2 the
 * limit. */
extern const char fleet_history_sql[];

#endif
