/* fleethist.c - the fleet's history, read (fleethist.h).  A read-only
 * query with parameters; a database without the schema yet has no
 * history. */
#include "fleethist.h"

#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>

#include "fleetsql.h"
#include "log.h"

enum { C_ID, C_JOB, C_TICK, C_NODE, C_ATTEMPT, C_KIND, C_OUTCOME, C_STARTED, C_ENDED, C_EXIT, C_SIGNAL, C_LATE, C_PID,
       C_ERROR, C_TRIGGERED, C_CATCH_UP, C_DEGRADED, C_REASON, C_SKIPPED, C_LAST, C_OUT, C_ERR };

static long long num(const PGresult *r, int row, int col) { return strtoll(PQgetvalue(r, row, col), NULL, 10); }

static void json_num(FILE *out, const char *key, const PGresult *r, int row, int col) {
  if (PQgetisnull(r, row, col)) fprintf(out, ",\"%s\":null", key);
  else fprintf(out, ",\"%s\":%s", key, PQgetvalue(r, row, col));
}

static void json_str(FILE *out, const char *key, const PGresult *r, int row, int col) {
  fprintf(out, ",\"%s\":", key);
  if (PQgetisnull(r, row, col)) fputs("null", out);
  else json_fputs(out, PQgetvalue(r, row, col), (size_t)PQgetlength(r, row, col));
}

static void json_time(FILE *out, const char *key, const PGresult *r, int row, int col) {
  char t[64];
  if (PQgetisnull(r, row, col)) {
    fprintf(out, ",\"%s\":null", key);
    return;
  }
  format_wall(num(r, row, col), t, sizeof t);
  fprintf(out, ",\"%s\":\"%s\"", key, t);
}

static void json_bytes(FILE *out, const char *key, const PGresult *r, int row, int col) {
  fprintf(out, ",\"%s\":", key);
  size_t n = 0;
  unsigned char *b = PQgetisnull(r, row, col) ? NULL : PQunescapeBytea((const unsigned char *)PQgetvalue(r, row, col), &n);
  if (!b) fputs("null", out);
  else json_fputs(out, (const char *)b, n), PQfreemem(b);
}

static void print_json(FILE *out, const PGresult *r, int i) {
  fprintf(out, "%s{\"id\":%s", i ? ",\n" : "", PQgetvalue(r, i, C_ID));
  json_str(out, "job", r, i, C_JOB), json_time(out, "scheduled", r, i, C_TICK), json_str(out, "node", r, i, C_NODE);
  json_num(out, "attempt", r, i, C_ATTEMPT), json_str(out, "kind", r, i, C_KIND);
  json_str(out, "outcome", r, i, C_OUTCOME), json_time(out, "started", r, i, C_STARTED);
  json_time(out, "ended", r, i, C_ENDED), json_num(out, "exit_code", r, i, C_EXIT);
  json_num(out, "signal", r, i, C_SIGNAL);
  fprintf(out, ",\"late\":%.3f", PQgetisnull(r, i, C_LATE) ? 0.0 : (double)num(r, i, C_LATE) / 1e9);
  json_num(out, "pid", r, i, C_PID), json_str(out, "error", r, i, C_ERROR);
  fprintf(out, ",\"triggered\":%s,\"catch_up\":%s,\"degraded\":%s", *PQgetvalue(r, i, C_TRIGGERED) == 't' ? "true" : "false",
          *PQgetvalue(r, i, C_CATCH_UP) == 't' ? "true" : "false", *PQgetvalue(r, i, C_DEGRADED) == 't' ? "true" : "false");
  json_str(out, "reason", r, i, C_REASON), json_num(out, "skipped", r, i, C_SKIPPED);
  json_time(out, "last_scheduled", r, i, C_LAST);
  json_bytes(out, "stdout", r, i, C_OUT), json_bytes(out, "stderr", r, i, C_ERR);
  fputs("}", out);
}

static void print_row(FILE *out, const PGresult *r, int i) {
  char sched[64], dur[32] = "-", code[16] = "-", attempt[8] = "-";
  format_wall(num(r, i, C_TICK), sched, sizeof sched);
  if (!PQgetisnull(r, i, C_ENDED) && !PQgetisnull(r, i, C_STARTED) && strcmp(PQgetvalue(r, i, C_KIND), "skip") != 0)
    snprintf(dur, sizeof dur, "%.3fs", (double)(num(r, i, C_ENDED) - num(r, i, C_STARTED)) / 1e9);
  if (!PQgetisnull(r, i, C_EXIT)) snprintf(code, sizeof code, "%s", PQgetvalue(r, i, C_EXIT));
  else if (!PQgetisnull(r, i, C_SIGNAL)) snprintf(code, sizeof code, "SIG%s", PQgetvalue(r, i, C_SIGNAL));
  if (!PQgetisnull(r, i, C_SKIPPED)) snprintf(code, sizeof code, "%s", PQgetvalue(r, i, C_SKIPPED));
  if (num(r, i, C_ATTEMPT) > 0) snprintf(attempt, sizeof attempt, "%s", PQgetvalue(r, i, C_ATTEMPT));
  fprintf(out, "%-6s %-16s %-24s %-12s %-3s %-11s %-10s %-6s %.3fs", PQgetvalue(r, i, C_ID), PQgetvalue(r, i, C_JOB),
          sched, PQgetisnull(r, i, C_NODE) ? "-" : PQgetvalue(r, i, C_NODE), attempt, PQgetvalue(r, i, C_OUTCOME), dur,
          code, PQgetisnull(r, i, C_LATE) ? 0.0 : (double)num(r, i, C_LATE) / 1e9);
  if (!PQgetisnull(r, i, C_ERROR)) fprintf(out, "  %s", PQgetvalue(r, i, C_ERROR));
  if (!PQgetisnull(r, i, C_REASON)) fprintf(out, "  %s", PQgetvalue(r, i, C_REASON));
  if (*PQgetvalue(r, i, C_CATCH_UP) == 't') fputs("  catch_up", out);
  else if (*PQgetvalue(r, i, C_TRIGGERED) == 't') fputs("  triggered", out);
  if (*PQgetvalue(r, i, C_DEGRADED) == 't') fputs("  degraded", out);
  fputc('\n', out);
}

int fleet_history_print(const char *fleet, const char *job, int limit, bool json, FILE *out) {
  char conninfo[4096], lim[16];
  if (pg_conninfo(fleet, conninfo, sizeof conninfo) != 0) return fputs("chime: --fleet: too long\n", stderr), 1;
  const char *const keys[] = {"connect_timeout", "fallback_application_name", "dbname", NULL};
  const char *const values[] = {"10", "chime history", conninfo, NULL};
  PGconn *c = PQconnectdbParams(keys, values, 1);
  if (!c || PQstatus(c) != CONNECTION_OK) {
    fprintf(stderr, "chime: the fleet's database: %s", c ? PQerrorMessage(c) : "out of memory\n");
    PQfinish(c);
    return 1;
  }
  snprintf(lim, sizeof lim, "%d", limit);
  const char *params[2] = {job, lim};
  PGresult *r = PQexecParams(c, "SELECT to_regclass('chime.runs') IS NOT NULL", 0, NULL, NULL, NULL, NULL, 0);
  bool there = r && PQresultStatus(r) == PGRES_TUPLES_OK && *PQgetvalue(r, 0, 0) == 't';
  PQclear(r);
  r = there ? PQexecParams(c, fleet_history_sql, 2, NULL, params, NULL, NULL, 0) : NULL;
  if (there && PQresultStatus(r) != PGRES_TUPLES_OK) {
    fprintf(stderr, "chime: the fleet's history: %s", PQresultErrorMessage(r));
    PQclear(r);
    PQfinish(c);
    return 1;
  }
  int n = r ? PQntuples(r) : 0;
  if (json) fputs("[", out);
  else fprintf(out, "%-6s %-16s %-24s %-12s %-3s %-11s %-10s %-6s %s\n", "ID", "JOB", "SCHEDULED", "NODE", "TRY",
               "OUTCOME", "DURATION", "EXIT", "LATE");
  for (int i = 0; i < n; i++) json ? print_json(out, r, i) : print_row(out, r, i);
  if (json) fputs(n ? "\n]\n" : "]\n", out);
  PQclear(r);
  PQfinish(c);
  return 0;
}
