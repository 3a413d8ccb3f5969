/* fleet_claims.c - claims per second one fleet node sustains against a
 * PostgreSQL server: N jobs defined, then ticks claimed as the daemon
 * claims them (chime.claim, in pipelined batches of B, each batch one
 * transaction; every claim wins: one node), over D seconds.  One JSON
 * line per batch size (bench/SPEC.md's fields, and claims_per_s,
 * claim_p50_us and claim_p99_us: the batch's round trip).
 *
 *   fleet_claims CONNINFO [SECONDS] [JOBS]
 */
#include "bench.h"

#include <chime.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fleetsql.h"
#include "pg.h"

struct ctx {
  const char *conninfo;
  double seconds;
  int jobs;
  int rc;
};

static int run_batch(struct pg *pg, int n, int jobs, long long *tick, const char *node) {
  char job[32], t[32], fire[32], bound[] = "1000000000000000000", lease[] = "20000";
  const char *v[10];
  for (int i = 0; i < n; i++) {
    snprintf(job, sizeof job, "b%05d", (int)((*tick + i) % jobs));
    snprintf(t, sizeof t, "%lld", *tick + i);
    snprintf(fire, sizeof fire, "%lld", (long long)chime_wall_now());
    v[0] = job, v[1] = t, v[2] = fire, v[3] = "h", v[4] = node, v[5] = "1", v[6] = bound, v[7] = lease, v[8] = "f";
    v[9] = "f"; /* not a manual run */
    if (pg_push(pg, fleet_stmt_name[ST_CLAIM], fleet_stmt_params[ST_CLAIM], v, NULL, NULL)) return -EIO;
  }
  *tick += n;
  chime_ns deadline = chime_now() + CHIME_SEC(10);
  int rc = pg_sync(pg, deadline);
  for (int i = 0; rc == 0 && i < n; i++) {
    PGresult *r;
    if ((rc = pg_result(pg, deadline, &r)) != 0) break;
    if (PQresultStatus(r) != PGRES_TUPLES_OK || strcmp(PQgetvalue(r, 0, 0), "won") != 0) rc = -EPROTO;
    PQclear(r);
  }
  return rc ? rc : pg_batch_end(pg, deadline);
}

static int main_task(void *arg) {
  struct ctx *c = arg;
  char why[1024] = "";
  struct pg *pg = NULL;
  chime_ns deadline = chime_now() + CHIME_SEC(30);
  int rc = pg_open(c->conninfo, &pg, why, sizeof why);
  if (rc == 0) rc = fleet_schema(pg, deadline, why, sizeof why);
  if (rc) {
    fprintf(stderr, "fleet_claims: %s\n", why);
    return c->rc = 1;
  }
  /* the jobs, each with one definition, its watermark far in the past */
  for (int i = 0; rc == 0 && i < c->jobs; i++) {
    char job[32];
    snprintf(job, sizeof job, "b%05d", i);
    const char *v[6] = {job, "h", "bench", "allow", "100000000", "drop"}; /* runs going never refuse a claim */
    rc = pg_push(pg, fleet_stmt_name[ST_DEFINE], fleet_stmt_params[ST_DEFINE], v, NULL, NULL);
  }
  if (rc == 0) rc = pg_sync(pg, deadline);
  for (int i = 0; rc == 0 && i < c->jobs; i++) {
    PGresult *r;
    rc = pg_result(pg, deadline, &r);
    PQclear(r);
  }
  if (rc == 0) rc = pg_batch_end(pg, deadline);
  if (rc) {
    fprintf(stderr, "fleet_claims: defining the jobs: %s\n", chime_strerror(rc));
    return c->rc = 1;
  }
  /* every claim must win: each tick is above every watermark (the ticks go up from far in the future, with
   * a bound that lets them) */
  long long tick = 4000000000000000000LL + chime_wall_now() % 1000000000LL * 1000;
  static const int sizes[] = {1, 16, 256};
  for (size_t s = 0; rc == 0 && s < sizeof sizes / sizeof sizes[0]; s++) {
    struct hist h;
    hist_init(&h);
    long long claims = 0;
    int64_t t0 = mono_ns(), cpu0 = cpu_ns(), end = t0 + (int64_t)(c->seconds * 1e9);
    while (rc == 0 && mono_ns() < end) {
      int64_t b0 = mono_ns();
      rc = run_batch(pg, sizes[s], c->jobs, &tick, "bench");
      hist_add(&h, mono_ns() - b0);
      claims += sizes[s];
    }
    double wall = (double)(mono_ns() - t0) / 1e9;
    printf("{\"impl\":\"chime\",\"workload\":\"fleet-claims\",\"n\":%d,\"batch\":%d,\"fires\":%lld,\"wall_s\":%.2f,"
           "\"cpu_s\":%.2f,\"claims_per_s\":%.0f,\"claim_p50_us\":%.0f,\"claim_p99_us\":%.0f}\n",
           c->jobs, sizes[s], claims, wall, (double)(cpu_ns() - cpu0) / 1e9, (double)claims / wall,
           (double)hist_pct(&h, 0.50), (double)hist_pct(&h, 0.99));
    fflush(stdout);
    free(h.fine), free(h.coarse);
  }
  pg_close(pg);
  return c->rc = rc ? 1 : 0;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fputs("usage: fleet_claims CONNINFO [SECONDS] [JOBS]\n", stderr);
    return 2;
  }
  struct ctx c = {argv[1], argc > 2 ? atof(argv[2]) : 5, argc > 3 ? atoi(argv[3]) : 1000, 0};
  int rc = chime_run(main_task, &c, NULL, NULL);
  return rc < 0 ? 1 : c.rc;
}
