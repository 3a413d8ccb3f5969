/* fleetdb.c - a fleet node's connection to its database, and the task
 * that owns it (fleetint.h): it connects (with back-off, on a thread of
 * the pool), creates or migrates the schema, registers the node, sends
 * the jobs' definitions, claims ticks in batches (the claims asked while a
 * batch is out go in the next: one transaction, in the order of the jobs'
 * names, so that nodes lock alike), renews leases, reaps expired ones,
 * takes pending attempts, looks for catch-ups, and sends records (the
 * outbox's first); between these it waits on the connection's socket (for
 * notifications) until its next heartbeat or until someone wakes it.
 * Every wait has a deadline: a server that does not answer in time is
 * one that is gone.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fleetint.h"
#include "fleetsql.h"
#include "log.h"

/* ---- the clock -------------------------------------------------------------------------- */

/* A round trip sent at (wall0, mono0), answered at (wall1, mono1), with
 * the database's clock `db` in between. */
void clock_sample(struct fleet *f, chime_ns wall0, chime_ns mono0, chime_ns wall1, chime_ns mono1, chime_ns db) {
  struct sample s = {mono1 - mono0, db - (mono0 + mono1) / 2, db - (wall0 / 2 + wall1 / 2)};
  f->samples[f->sample_next] = s;
  f->sample_next = (f->sample_next + 1) % SAMPLES;
  if (f->nsamples < SAMPLES) f->nsamples++;
  const struct sample *best = &f->samples[0];
  for (int i = 1; i < f->nsamples; i++)
    if (f->samples[i].rtt < best->rtt) best = &f->samples[i];
  f->mono_to_db = best->mono_to_db;
  f->wall_offset = s.wall_offset; /* the latest: a step of the wall clock shows at once */
  f->offset_known = true;
  f->m.clock_offset = f->wall_offset;
  bool skewed = f->wall_offset > f->max_skew || f->wall_offset < -f->max_skew;
  if (skewed != f->m.skewed) {
    struct logline l;
    log_begin(&l, skewed ? "error" : "info", "clock_skew");
    log_dur(&l, "offset", -f->wall_offset);
    log_dur(&l, "bound", f->max_skew);
    log_str(&l, "msg", skewed ? "this node's clock is off the database's by more than fleet_max_skew: it claims no "
                                "tick until its clock is set right"
                              : "this node's clock is within fleet_max_skew of the database's again: claims resume");
    log_end(&l);
  }
  f->m.skewed = skewed;
}

/* ---- statements --------------------------------------------------------------------------- */

struct params {
  const char *v[16];
  int len[16], fmt[16];
  int n;
  char num[16][24];
};

static void p_text(struct params *p, const char *s) {
  p->v[p->n] = s, p->len[p->n] = 0, p->fmt[p->n] = 0;
  p->n++;
}
static void p_int(struct params *p, long long x) {
  snprintf(p->num[p->n], sizeof p->num[0], "%lld", x);
  p_text(p, p->num[p->n]);
}
static void p_bool(struct params *p, bool b) { p_text(p, b ? "t" : "f"); }
static void p_bin(struct params *p, const char *b, size_t n) {
  p->v[p->n] = b ? b : "", p->len[p->n] = (int)n, p->fmt[p->n] = 1;
  p->n++;
}

static int push(struct fleet *f, int st, struct params *p) {
  return pg_push(f->pg, fleet_stmt_name[st], p->n, p->v, p->len, p->fmt);
}

/* A Postgres array literal of words that need no quoting beyond quotes
 * (job names, hex, numbers), into a buffer the caller frees. */
static char *array_of(size_t n, const char *(*item)(void *ctx, size_t i, char *buf), void *ctx) {
  size_t cap = 64, len = 0;
  char *a = malloc(cap), one[64];
  if (!a) return NULL;
  a[len++] = '{';
  for (size_t i = 0; i < n; i++) {
    const char *w = item(ctx, i, one);
    size_t need = strlen(w) + 4;
    if (len + need + 2 > cap) {
      char *b = realloc(a, cap = (cap + need) * 2);
      if (!b) return free(a), NULL;
      a = b;
    }
    len += (size_t)sprintf(a + len, "%s\"%s\"", i ? "," : "", w);
  }
  a[len++] = '}';
  a[len] = '\0';
  return a;
}

static const char *result_error(const PGresult *res) {
  const char *m = res ? PQresultErrorMessage(res) : "no result";
  return *m ? m : "no result";
}

/* ---- the connection ------------------------------------------------------------------------ */

void db_say_down(struct fleet *f, const char *why) {
  if (f->down_said) return;
  f->down_said = true;
  log_msg("error", "fleet", "the fleet's database is unreachable: %s; no tick is claimed until it returns "
                            "(on_db_down = run_local jobs run here meanwhile)", why);
}

/* Every claim and pause still waiting gets no answer. */
static void fail_claims(struct fleet *f, int rc) {
  while (f->pauses) {
    struct pausereq *q = f->pauses;
    f->pauses = q->next;
    q->rc = rc, q->answered = true;
    if (q->abandoned) free(q);
    else chime_cancel(q->waiter);
  }
  while (f->reqs) {
    struct claimreq *q = f->reqs;
    f->reqs = q->next;
    q->rc = rc, q->answered = true;
    f->m.claims_failed++;
    if (q->abandoned || q->internal) free(q);
    else chime_cancel(q->waiter);
  }
  f->reqs_tail = &f->reqs;
}

static void drop_connection(struct fleet *f, const char *why) {
  pg_close(f->pg);
  f->pg = NULL;
  f->m.db_up = false;
  f->down_since = chime_now();
  fail_claims(f, -ENOTCONN);
  snprintf(f->last_why, sizeof f->last_why, "%.500s", why);
  db_say_down(f, why);
  for (struct fleet_job *fj = f->jobs; fj; fj = fj->next) fj->caught_up = false;
}

static void say_fatal(struct fleet *f, const char *msg) {
  log_msg("error", "fleet", "%s", msg);
  f->fatal = true;
  f->r->failed = true;
  chime_cancel(f->r->main);
}

/* Registers the node: refused while another live daemon holds its name
 * (one on this host whose process is gone does not count). */
static int do_register(struct fleet *f, chime_ns deadline, char *why, size_t size) {
  for (int force = 0; force < 2; force++) {
    struct params p = {.n = 0};
    p_text(&p, f->node), p_int(&p, f->instance), p_text(&p, f->host), p_int(&p, getpid());
    p_bool(&p, force), p_int(&p, f->lease / CHIME_MS(1));
    chime_ns w0 = chime_wall_now(), m0 = chime_now();
    PGresult *res = NULL;
    int rc = push(f, ST_REGISTER, &p);
    if (rc == 0) rc = pg_sync(f->pg, deadline);
    if (rc == 0) rc = pg_result(f->pg, deadline, &res);
    if (rc == 0 && PQresultStatus(res) != PGRES_TUPLES_OK)
      snprintf(why, size, "registering node %s: %s", f->node, result_error(res)), rc = -EPROTO;
    if (rc == 0) rc = pg_batch_end(f->pg, deadline);
    if (rc) {
      PQclear(res);
      if (!why[0]) snprintf(why, size, "registering node %s: %s", f->node, chime_strerror(rc));
      return rc;
    }
    clock_sample(f, w0, m0, chime_wall_now(), chime_now(), pg_int(res, 0, 3));
    bool taken = strcmp(PQgetvalue(res, 0, 0), "taken") == 0;
    char holder[256];
    snprintf(holder, sizeof holder, "%s", PQgetvalue(res, 0, 1));
    int pid = (int)pg_int(res, 0, 2);
    PQclear(res);
    if (!taken) return 0;
    bool dead_here = strcmp(holder, f->host) == 0 && pid > 0 && kill(pid, 0) != 0 && errno == ESRCH;
    if (!dead_here) {
      char msg[512];
      snprintf(msg, sizeof msg, "node name %s is held by a live chime (pid %d on %s): two daemons may not share a "
               "name (give another with node = or --node)", f->node, pid, holder);
      say_fatal(f, msg);
      return -EEXIST;
    }
  }
  return 0;
}

static int connect_db(struct fleet *f) {
  char why[1024] = "";
  struct pg *pg = NULL;
  int rc = pg_open(f->conninfo, &pg, why, sizeof why);
  chime_ns deadline = chime_now() + f->query_max * 4;
  if (rc == 0) {
    f->pg = pg;
    rc = fleet_schema(pg, deadline, why, sizeof why);
    if (rc == -EPROTO && strstr(why, "newer")) say_fatal(f, why), why[0] = '\0';
  }
  if (rc == 0) rc = do_register(f, deadline, why, sizeof why);
  if (rc) {
    if (f->pg) pg_close(f->pg);
    f->pg = NULL;
    if (rc != -ECANCELED && !f->fatal) {
      snprintf(f->last_why, sizeof f->last_why, "%.500s", why);
      db_say_down(f, why);
    }
    return rc;
  }
  f->m.db_up = true;
  f->m.connects++;
  char where[512];
  pg_where(pg, where, sizeof where);
  struct logline l;
  log_begin(&l, "info", "fleet");
  log_str(&l, "node", f->node);
  log_str(&l, "db", where);
  log_dur(&l, "offset", -f->wall_offset);
  if (f->down_since && f->ever_up) log_dur(&l, "down", chime_now() - f->down_since);
  log_str(&l, "msg", f->ever_up ? "the fleet's database is reachable again: claims resume" : "joined the fleet");
  log_end(&l);
  f->ever_up = true;
  f->down_said = false;
  f->down_since = 0;
  f->next_beat = chime_now();
  return 0;
}

/* ---- the heartbeat ------------------------------------------------------------------------- */

static struct claim *claim_by_id(struct fleet *f, int64_t id) {
  for (struct claim *c = f->claims; c; c = c->next)
    if (c->id == id) return c;
  return NULL;
}

static const char *held_id(void *ctx, size_t i, char *buf) {
  int64_t *ids = ctx;
  snprintf(buf, 24, "%lld", (long long)ids[i]);
  return buf;
}

static const char *job_name_at(void *ctx, size_t i, char *buf) {
  (void)buf;
  return ((struct fleet_job **)ctx)[i]->name;
}

static const char *job_hash_at(void *ctx, size_t i, char *buf) {
  (void)buf;
  return ((struct fleet_job **)ctx)[i]->hash;
}

static int by_name(const void *a, const void *b) {
  return strcmp((*(struct fleet_job *const *)a)->name, (*(struct fleet_job *const *)b)->name);
}

/* The live job of a name, if this node runs it. */
static struct fleet_job *live_job(struct fleet *f, const char *name) {
  for (struct fleet_job *fj = f->jobs; fj; fj = fj->next)
    if (fj->job && !fj->job->retired && fj->job->started && strcmp(fj->name, name) == 0) return fj;
  return NULL;
}

/* A claim the connection's task obtained (a pending attempt taken, a
 * catch-up): the job runs it now, through its veto. */
static void run_claimed(struct fleet *f, struct fleet_job *fj, int64_t id, chime_ns tick, int attempt, bool catch_up,
                        chime_ns sent) {
  struct claim *c = claim_add(f, fj, C_PRECLAIMED, id, tick);
  if (!c) {
    claim_release(f, fj, id, "out of memory");
    return;
  }
  c->attempt = attempt, c->catch_up = catch_up;
  c->trust_until = sent + f->trust;
  c->lib_tick = lib_tick_of(f, fj, tick); /* its veto knows it so: a manual run's tick is on no grid */
  int rc = chime_every_trigger(fj->job->handle, c->lib_tick);
  if (rc) {
    claim_drop(f, c);
    claim_release(f, fj, id, chime_strerror(rc));
  }
}

static int beat(struct fleet *f) {
  size_t n = 0;
  for (struct claim *c = f->claims; c; c = c->next) n += c->id != 0;
  int64_t *ids = calloc(n + 1, sizeof *ids);
  size_t k = 0, njobs = 0;
  for (struct claim *c = f->claims; ids && c; c = c->next)
    if (c->id) ids[k++] = c->id;
  for (struct fleet_job *fj = f->jobs; fj; fj = fj->next) njobs += fj->job && fj->defined;
  struct fleet_job **jobs = calloc(njobs + 1, sizeof *jobs);
  njobs = 0;
  for (struct fleet_job *fj = f->jobs; jobs && fj; fj = fj->next)
    if (fj->job && !fj->job->retired && fj->defined) jobs[njobs++] = fj;
  if (jobs) qsort(jobs, njobs, sizeof *jobs, by_name);
  char *id_array = ids ? array_of(k, held_id, ids) : NULL;
  char *names = jobs ? array_of(njobs, job_name_at, jobs) : NULL, *hashes = jobs ? array_of(njobs, job_hash_at, jobs) : NULL;
  int rc = id_array && names && hashes ? 0 : -ENOMEM;
  chime_ns deadline = chime_now() + f->query_max;
  struct params p = {.n = 0};
  p_text(&p, f->node), p_int(&p, f->instance), p_text(&p, id_array), p_int(&p, f->lease / CHIME_MS(1));
  if (rc == 0) rc = push(f, ST_BEAT, &p);
  if (rc == 0) rc = pg_sync(f->pg, deadline) ? -EIO : 0;
  p.n = 0;
  p_text(&p, f->node);
  if (rc == 0) rc = push(f, ST_REAP, &p);
  p.n = 0;
  p_text(&p, f->node), p_int(&p, f->instance), p_text(&p, names), p_text(&p, hashes), p_int(&p, f->lease / CHIME_MS(1));
  bool taking = !f->stopping; /* read once: the shutdown may begin while the answers come */
  if (rc == 0 && taking) rc = push(f, ST_TAKE, &p);
  p.n = 0;
  p_text(&p, names);
  if (rc == 0) rc = push(f, ST_JOBS, &p);
  chime_ns w0 = chime_wall_now(), m0 = chime_now();
  if (rc == 0) rc = pg_sync(f->pg, deadline);
  PGresult *res = NULL;
  if (rc == 0) rc = pg_result(f->pg, deadline, &res);
  if (rc == 0 && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) >= 1) {
    clock_sample(f, w0, m0, chime_wall_now(), chime_now(), pg_int(res, 0, 2));
    if (strcmp(PQgetvalue(res, 0, 1), "gone") == 0) {
      say_fatal(f, "another chime has taken this node's name while this one could not reach the database: stopping");
      for (struct claim *c = f->claims; c; c = c->next)
        if (c->id) claim_stop(f, c, OUTCOME_LEASE_LOST, "this node's name was taken by another chime");
    }
    for (int i = 1; i < PQntuples(res); i++) {
      struct claim *c = claim_by_id(f, pg_int(res, i, 0));
      if (!c) continue;
      const char *state = PQgetvalue(res, i, 1);
      if (strcmp(state, "running") == 0) c->trust_until = m0 + f->trust;
      else if (strcmp(state, "replacing") == 0) claim_stop(f, c, OUTCOME_REPLACED, "a newer tick's run replaces it");
      else if (strcmp(state, "expired") == 0) claim_stop(f, c, OUTCOME_LEASE_LOST, "its lease ended unrenewed");
      else claim_stop(f, c, OUTCOME_LEASE_LOST, "its lease was lost: another node reaped it");
    }
  } else if (rc == 0) {
    log_msg("error", "fleet", "heartbeat: %s", result_error(res));
    rc = -EIO;
  }
  PQclear(res);
  res = NULL;
  if (rc == 0) rc = pg_batch_end(f->pg, deadline);
  /* the reaper's and the taker's transaction */
  if (rc == 0) rc = pg_result(f->pg, deadline, &res);
  for (int i = 0; rc == 0 && PQresultStatus(res) == PGRES_TUPLES_OK && i < PQntuples(res); i++) {
    f->m.reaped++;
    struct logline l;
    log_begin(&l, "warn", "reaped");
    log_str(&l, "job", PQgetvalue(res, i, 1));
    log_time(&l, "scheduled", pg_int(res, i, 2));
    log_int(&l, "attempt", pg_int(res, i, 3));
    log_str(&l, "node", PQgetvalue(res, i, 4));
    log_str(&l, "then", strcmp(PQgetvalue(res, i, 5), "t") == 0 ? "rerun" : "drop");
    log_str(&l, "msg", "its lease ended on the database's clock: the run is lost");
    log_end(&l);
  }
  PQclear(res);
  res = NULL;
  if (rc == 0 && taking) rc = pg_result(f->pg, deadline, &res);
  for (int i = 0; rc == 0 && res && PQresultStatus(res) == PGRES_TUPLES_OK && i < PQntuples(res); i++) {
    struct fleet_job *fj = live_job(f, PQgetvalue(res, i, 1));
    int64_t id = pg_int(res, i, 0);
    if (!fj) {
      struct frec *x = frec_new(FREC_RELEASE, PQgetvalue(res, i, 1));
      if (x) x->id = id, x->error = strdup("the job is not running here");
      frec_put(f, x);
      continue;
    }
    f->m.taken++;
    struct logline l;
    log_begin(&l, "info", "takeover");
    log_str(&l, "job", fj->name);
    log_time(&l, "scheduled", pg_int(res, i, 2));
    log_int(&l, "attempt", pg_int(res, i, 3));
    log_end(&l);
    run_claimed(f, fj, id, pg_int(res, i, 2), (int)pg_int(res, i, 3), strcmp(PQgetvalue(res, i, 4), "t") == 0, m0);
  }
  PQclear(res);
  res = NULL;
  /* the fleet's pauses of the node's jobs, and their latest runs */
  if (rc == 0) rc = pg_result(f->pg, deadline, &res);
  for (int i = 0; rc == 0 && PQresultStatus(res) == PGRES_TUPLES_OK && i < PQntuples(res); i++) {
    struct fleet_job *fj = live_job(f, PQgetvalue(res, i, 0));
    if (!fj) continue;
    fleet_paused_is(f, fj, pg_int(res, i, 1), true);
    if (!PQgetisnull(res, i, 4))
      fleet_last_run(fj, PQgetvalue(res, i, 2), pg_int(res, i, 3), pg_int(res, i, 4),
                     PQgetisnull(res, i, 5) ? -1 : (int)pg_int(res, i, 5));
  }
  PQclear(res);
  if (rc == 0) rc = pg_batch_end(f->pg, deadline);
  free(ids), free(jobs), free(id_array), free(names), free(hashes);
  if (rc == 0) leases_guard(f);
  f->next_beat = chime_now() + f->beat_every;
  return rc;
}

/* ---- definitions and catch-up -------------------------------------------------------- */

/* Writes the definitions not yet in the database, 64 at most a round, in
 * one transaction: the number written, or a negative errno.  One the
 * database refused undoes the batch (the others go again next round) and
 * is sent again after the next heartbeat, said each time. */
static int define_jobs(struct fleet *f) {
  struct fleet_job *batch[64];
  int n = 0;
  chime_ns now = chime_now();
  for (struct fleet_job *fj = f->jobs; fj && n < 64; fj = fj->next)
    if (fj->job && !fj->job->retired && !fj->defined && now >= fj->define_after) batch[n++] = fj;
  if (!n) return 0;
  chime_ns deadline = now + f->query_max;
  int rc = 0;
  for (int i = 0; rc == 0 && i < n; i++) {
    struct params p = {.n = 0};
    p_text(&p, batch[i]->name), p_text(&p, batch[i]->hash), p_text(&p, f->node), p_text(&p, batch[i]->overlap);
    p_int(&p, batch[i]->max_concurrent), p_text(&p, batch[i]->rerun ? "rerun" : "drop");
    rc = push(f, ST_DEFINE, &p);
  }
  if (rc == 0) rc = pg_sync(f->pg, deadline);
  chime_ns watermark[64];
  int refused = -1;
  char why[256] = "";
  for (int i = 0; rc == 0 && i < n; i++) {
    PGresult *res;
    if ((rc = pg_result(f->pg, deadline, &res)) != 0) break;
    if (PQresultStatus(res) == PGRES_TUPLES_OK) {
      watermark[i] = pg_int(res, 0, 0);
    } else if (PQresultStatus(res) != PGRES_PIPELINE_ABORTED) { /* (after a refusal: not done, not refused) */
      refused = i;
      snprintf(why, sizeof why, "%s", result_error(res));
    }
    PQclear(res);
  }
  if (rc == 0) rc = pg_batch_end(f->pg, deadline);
  if (rc) return rc; /* the connection broke: no refusal, whatever came before */
  if (refused >= 0) {
    log_msg("error", "fleet", "job %s: its definition could not be written: %s", batch[refused]->name, why);
    batch[refused]->define_after = f->next_beat; /* after the next heartbeat */
    return 1;                                    /* the others, at once */
  }
  for (int i = 0; i < n; i++) {
    batch[i]->defined = true;
    batch[i]->standing_by = false;
    batch[i]->watermark = watermark[i];
  }
  return n;
}

/* chime pause and resume asked meanwhile: one transaction. */
static int send_pauses(struct fleet *f) {
  struct pausereq *list = NULL, **tail = &list;
  while (f->pauses) { /* those given up on before they were sent are not sent */
    struct pausereq *q = f->pauses;
    f->pauses = q->next, q->next = NULL;
    if (q->abandoned) free(q);
    else *tail = q, tail = &q->next;
  }
  if (!list) return 0;
  chime_ns deadline = chime_now() + f->query_max;
  int rc = 0;
  for (struct pausereq *q = list; rc == 0 && q; q = q->next) {
    struct params p = {.n = 0};
    p_text(&p, q->fj->name), p_text(&p, f->node), p_bool(&p, q->pause);
    rc = push(f, ST_PAUSE, &p);
  }
  if (rc == 0) rc = pg_sync(f->pg, deadline);
  bool aborted = false;
  for (struct pausereq *q = list; rc == 0 && q; q = q->next) {
    PGresult *res;
    if ((rc = pg_result(f->pg, deadline, &res)) != 0) break;
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
      snprintf(q->status, sizeof q->status, "%s", PQgetvalue(res, 0, 0));
      q->since = PQgetisnull(res, 0, 1) ? 0 : pg_int(res, 0, 1);
      snprintf(q->by, sizeof q->by, "%s", PQgetvalue(res, 0, 2));
    } else {
      if (PQresultStatus(res) != PGRES_PIPELINE_ABORTED)
        log_msg("error", "fleet", "pause of job %s: %s", q->fj->name, result_error(res));
      aborted = true;
    }
    PQclear(res);
  }
  if (rc == 0) rc = pg_batch_end(f->pg, deadline);
  /* one refused undid the batch: none was made */
  while (list) {
    struct pausereq *q = list;
    list = q->next;
    if (rc || aborted) q->rc = rc ? rc : -EPROTO;
    else if (strcmp(q->status, "unknown") != 0) fleet_paused_is(f, q->fj, q->since, false);
    q->answered = true;
    if (q->abandoned) free(q);
    else chime_cancel(q->waiter);
  }
  return rc ? rc : 1;
}

/* The latest tick of the job in (after, until], or 0. */
static chime_ns latest_tick(const struct fleet_job *fj, chime_ns after, chime_ns until) {
  if (until <= after) return 0;
  if (!fj->calendar) {
    chime_ns t = grid_round(fj, until);
    if (t > until) t -= fj->every;
    return t > after ? t : 0;
  }
  return job_latest_tick(fj->job->conf, after, until);
}

/* After a connection, a job with catch_up whose latest tick passed
 * unclaimed (the whole fleet was down, or the database) claims it once:
 * the first node to ask wins. */
static void look_for_catch_up(struct fleet *f) {
  for (struct fleet_job *fj = f->jobs; fj; fj = fj->next) {
    if (!fj->job || !fj->defined || fj->caught_up || fj->job->retired) continue;
    fj->caught_up = true;
    if (!fj->catch_up) continue;
    /* a tick past the claims' window: no node runs it any more but by a catch-up */
    chime_ns missed = latest_tick(fj, fj->watermark, db_now(f) - f->max_skew);
    if (!missed) continue;
    struct claimreq *q = calloc(1, sizeof *q);
    if (!q) continue;
    q->fj = fj, q->tick = missed, q->fire = missed, q->catch_up = true, q->internal = true;
    *f->reqs_tail = q;
    f->reqs_tail = &q->next;
  }
}

/* ---- claims -------------------------------------------------------------------------------- */

static int by_job(const void *a, const void *b) {
  const struct claimreq *x = *(struct claimreq *const *)a, *y = *(struct claimreq *const *)b;
  int c = strcmp(x->fj->name, y->fj->name);
  return c ? c : x->tick < y->tick ? -1 : x->tick > y->tick;
}

/* The ticks skipped unclaimed between the watermark and a claimed tick:
 * one row, written by the winner. */
static void record_gap(struct fleet *f, struct fleet_job *fj, chime_ns old, chime_ns tick) {
  chime_ns first, last = 0;
  int64_t count = 0;
  if (!fj->calendar) {
    first = grid_after(fj, old);
    if (first >= tick) return;
    count = (tick - first) / fj->every;
    last = tick - fj->every;
  } else {
    if (!fj->job || chime_cron_next(fj->job->conf->cron, fj->job->conf->tz, old, &first) != 0 || first >= tick)
      return;
    for (chime_ns t = first; t < tick && count < 100000;) {
      last = t, count++;
      if (chime_cron_next(fj->job->conf->cron, fj->job->conf->tz, t, &t) != 0) break;
    }
  }
  struct frec *x = frec_new(FREC_SKIP, fj->name);
  if (x) {
    x->tick = first, x->last = last, x->count = count, x->started = chime_wall_now();
    snprintf(x->outcome, sizeof x->outcome, "unclaimed");
  }
  frec_put(f, x);
  struct logline l;
  log_begin(&l, "warn", "unclaimed");
  log_str(&l, "job", fj->name);
  log_time(&l, "scheduled", first);
  log_int(&l, "count", count);
  if (count > 1) log_time(&l, "last", last);
  log_str(&l, "msg", "ticks no node claimed (the fleet or its database was down, or every node skipped them)");
  log_end(&l);
}

/* A tick won after its hold ended (the database or this node was slow):
 * the claim is this node's, so the tick runs, late, as a triggered tick,
 * rather than being lost. */
void run_late(struct fleet *f, struct claimreq *q) {
  if (q->fj->job && !q->fj->job->retired) run_claimed(f, q->fj, q->id, q->tick, 1, false, q->sent);
  else claim_release(f, q->fj, q->id, "the job ended before its run");
}

/* Whether the claim decided its tick (a run, a queued run, a skip for
 * overlap or pause), moving the job's watermark up to it: then the ticks
 * between the old watermark and it, if any, are a gap that only this
 * answer knows of. */
static bool decided(const struct claimreq *q) {
  static const char *const moved[] = {"won", "overlap", "queued", "paused"};
  if (q->rc != 0 || q->manual) return false;
  for (size_t i = 0; i < sizeof moved / sizeof moved[0]; i++)
    if (strcmp(q->status, moved[i]) == 0) return true;
  return false;
}

/* What a claim's answer means here, for a request nobody waits for. */
static void claim_answered(struct fleet *f, struct claimreq *q) {
  bool won = q->rc == 0 && strcmp(q->status, "won") == 0;
  if (decided(q)) record_gap(f, q->fj, q->old_watermark, q->tick);
  if (q->internal) { /* a catch-up */
    if (won && q->fj->job && !q->fj->job->retired) {
      struct logline l;
      log_begin(&l, "info", "catch_up");
      log_str(&l, "job", q->fj->name);
      log_time(&l, "missed", q->tick);
      log_time(&l, "last", q->old_watermark);
      log_end(&l);
      run_claimed(f, q->fj, q->id, q->tick, 1, true, q->sent);
    } else if (won) {
      claim_release(f, q->fj, q->id, "the job ended");
    }
    free(q);
    return;
  }
  if (q->abandoned) { /* its hold ended before the answer: a tick won is run all the same, late */
    if (won) run_late(f, q);
    free(q);
    return;
  }
  chime_cancel(q->waiter);
}

static int claim_batch(struct fleet *f) {
  size_t n = 0;
  for (struct claimreq *q = f->reqs; q; q = q->next) n++;
  if (!n) return 0;
  struct claimreq **b = calloc(n, sizeof *b);
  if (!b) return -ENOMEM;
  n = 0;
  struct claimreq *held = NULL, **held_tail = &held;
  while (f->reqs) {
    struct claimreq *q = f->reqs;
    f->reqs = q->next;
    if (q->abandoned) {
      free(q);
    } else if (!q->fj->defined && q->fj->job && !q->fj->job->retired) { /* after its definition: a later round */
      q->next = NULL;
      *held_tail = q, held_tail = &q->next;
    } else {
      b[n++] = q;
    }
  }
  f->reqs = held;
  f->reqs_tail = held ? held_tail : &f->reqs;
  if (!n) {
    free(b);
    return 0;
  }
  qsort(b, n, sizeof *b, by_job);
  chime_ns deadline = chime_now() + f->query_max, sent = chime_now();
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < n; i++) {
    struct params p = {.n = 0};
    p_text(&p, b[i]->fj->name), p_int(&p, b[i]->tick), p_int(&p, b[i]->fire), p_text(&p, b[i]->fj->hash);
    p_text(&p, f->node), p_int(&p, f->instance), p_int(&p, f->max_skew), p_int(&p, f->lease / CHIME_MS(1));
    p_bool(&p, b[i]->catch_up), p_bool(&p, b[i]->manual);
    rc = push(f, ST_CLAIM, &p);
    b[i]->sent = sent;
  }
  if (rc == 0) rc = pg_sync(f->pg, deadline);
  size_t refused = n;
  char why[256] = "";
  for (size_t got = 0; rc == 0 && got < n; got++) {
    PGresult *res;
    struct claimreq *q = b[got];
    if ((rc = pg_result(f->pg, deadline, &res)) != 0) break;
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
      snprintf(q->status, sizeof q->status, "%s", PQgetvalue(res, 0, 0));
      q->id = pg_int(res, 0, 1), q->old_watermark = pg_int(res, 0, 2);
      snprintf(q->def_node, sizeof q->def_node, "%s", PQgetvalue(res, 0, 4));
    } else if (PQresultStatus(res) != PGRES_PIPELINE_ABORTED) {
      refused = got;
      snprintf(why, sizeof why, "%s", result_error(res));
    }
    PQclear(res);
  }
  if (rc == 0) rc = pg_batch_end(f->pg, deadline);
  if (rc == 0 && refused < n) {
    /* one refused undid the whole batch: it fails; the others, none made,
     * are asked again at once, in a batch of their own */
    log_msg("error", "fleet", "claim of job %s: %s", b[refused]->fj->name, why);
    for (size_t i = n; i-- > 0;) {
      if (i == refused) continue;
      memset(b[i]->status, 0, sizeof b[i]->status);
      b[i]->next = f->reqs, f->reqs = b[i];
      if (!b[i]->next) f->reqs_tail = &b[i]->next;
    }
    b[0] = b[refused], b[0]->rc = -EPROTO, n = 1;
  }
  /* a batch without its commit answered nothing: its claims may or may not
   * have been made, and are treated as lost (a won one is reaped) */
  for (size_t i = 0; i < n; i++) {
    struct claimreq *q = b[i];
    if (rc) q->rc = rc;
    if (q->rc) {
      f->m.claims_failed++; /* (a catch-up refused is not asked again before the next connection) */
    } else if (decided(q) && q->fj->watermark < q->tick) {
      q->fj->watermark = q->tick;
    } else if (strcmp(q->status, "unknown") == 0 && !q->fj->standing_by) {
      q->fj->defined = false; /* its row went: written again (not by a node standing by: it would set the old one) */
    }
    q->answered = true;
    claim_answered(f, q);
  }
  free(b);
  return rc ? rc : 1;
}

/* ---- records ------------------------------------------------------------------------------- */

static int push_rec(struct fleet *f, const struct frec *x) {
  struct params p = {.n = 0};
  switch (x->op) {
  case FREC_STARTED:
    p_int(&p, x->id), p_text(&p, f->node), p_int(&p, x->instance), p_int(&p, x->pid), p_int(&p, x->started);
    p_int(&p, x->late), p_int(&p, getpid());
    return push(f, ST_STARTED, &p);
  case FREC_FINISH:
    p_int(&p, x->id), p_text(&p, f->node), p_int(&p, x->instance), p_text(&p, x->outcome), p_int(&p, x->started);
    p_int(&p, x->ended), p_int(&p, x->late), p_int(&p, x->pid);
    if (x->exit_code >= 0) p_int(&p, x->exit_code);
    else p_text(&p, NULL);
    if (x->signal > 0) p_int(&p, x->signal);
    else p_text(&p, NULL);
    p_text(&p, x->error), p_bin(&p, x->out, x->out_len), p_bin(&p, x->err, x->err_len), p_int(&p, getpid());
    return push(f, ST_FINISH, &p);
  case FREC_LOCAL:
    p_text(&p, x->job), p_int(&p, x->tick), p_text(&p, f->node), p_bool(&p, x->degraded), p_text(&p, x->outcome);
    p_int(&p, x->started);
    if (x->ended) p_int(&p, x->ended);
    else p_text(&p, NULL);
    p_int(&p, x->late), p_int(&p, x->pid);
    if (x->exit_code >= 0) p_int(&p, x->exit_code);
    else p_text(&p, NULL);
    if (x->signal > 0) p_int(&p, x->signal);
    else p_text(&p, NULL);
    p_text(&p, x->error), p_bin(&p, x->out, x->out_len), p_bin(&p, x->err, x->err_len), p_bool(&p, x->triggered);
    p_int(&p, getpid());
    return push(f, ST_LOCAL, &p);
  case FREC_SKIP:
    p_text(&p, x->job), p_int(&p, x->tick), p_text(&p, f->node), p_text(&p, x->outcome), p_int(&p, x->count);
    p_int(&p, x->last), p_int(&p, x->started), p_bool(&p, x->triggered);
    return push(f, ST_SKIP, &p);
  case FREC_RELEASE:
    p_int(&p, x->id), p_text(&p, f->node), p_int(&p, x->instance), p_text(&p, x->error ? x->error : "released");
    return push(f, ST_RELEASE, &p);
  }
  return -EINVAL;
}

static void say_fenced(struct fleet *f, const struct frec *x) {
  f->m.results_fenced++;
  struct logline l;
  log_begin(&l, "error", "fenced");
  log_str(&l, "job", x->job);
  log_int(&l, "run", x->id);
  log_str(&l, "outcome", x->outcome);
  if (x->exit_code >= 0) log_int(&l, "exit", x->exit_code);
  if (x->signal > 0) log_int(&l, "signal", x->signal);
  log_time(&l, "started", x->started);
  log_time(&l, "ended", x->ended);
  log_str(&l, "msg", "the run's lease was lost before its result came: the fleet's history refuses it; kept here");
  log_end(&l);
}

/* Sends a list of records in one transaction (those of op 0, refused
 * before, are passed over).  1: sent; 0: the database refused one (it
 * should not): it is said and marked op 0, and the list is to be sent
 * again; or a negative errno (the connection is no good). */
static int send_recs(struct fleet *f, struct frec *list) {
  chime_ns deadline = chime_now() + f->query_max;
  int rc = 0;
  for (struct frec *x = list; rc == 0 && x; x = x->next)
    if (x->op) rc = push_rec(f, x);
  if (rc == 0) rc = pg_sync(f->pg, deadline);
  bool refused = false;
  for (struct frec *x = list; rc == 0 && x; x = x->next) {
    if (!x->op) continue;
    PGresult *res;
    if ((rc = pg_result(f->pg, deadline, &res)) != 0) break;
    ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_FATAL_ERROR && !refused) {
      refused = true;
      log_msg("error", "fleet", "a record of job %s was refused by the database (dropped): %s", x->job,
              result_error(res));
      x->op = 0;
    }
    if (st == PGRES_TUPLES_OK && x->op == FREC_FINISH && !PQgetisnull(res, 0, 0) &&
        strcmp(PQgetvalue(res, 0, 0), "fenced") == 0)
      say_fenced(f, x);
    PQclear(res);
  }
  if (rc == 0) rc = pg_batch_end(f->pg, deadline);
  return rc ? rc : refused ? 0 : 1;
}

static void free_recs(struct frec *list) {
  while (list) {
    struct frec *next = list->next;
    frec_free(list);
    list = next;
  }
}

static int open_outbox(struct fleet *f) {
  if (f->ob) return 0;
  if (!f->outbox_path[0]) return -ENOENT;
  char why[512];
  int rc = outbox_open(f->outbox_path, &f->ob, why, sizeof why);
  if (rc && rc != -ECANCELED) log_msg("error", "fleet", "%s: records wait in memory", why);
  return rc;
}

/* Puts what waits in memory into the outbox. */
void frec_spill(struct fleet *f) {
  if (!f->recs || open_outbox(f) != 0) return;
  struct frec *list = f->recs, *left;
  size_t n = f->nrecs;
  f->recs = NULL, f->recs_tail = &f->recs, f->nrecs = 0;
  if (outbox_put(f->ob, list, &left) == 0) {
    f->outbox_full = true;
    f->outbox_count += n;
    return;
  }
  /* could not: they go back in front of what came meanwhile */
  struct frec *last = left;
  while (last && last->next) last = last->next;
  if (last) {
    last->next = f->recs;
    if (!f->recs) f->recs_tail = &last->next;
    f->recs = left;
    f->nrecs += n;
  }
}

/* Sends the outbox's records first (they are older), then memory's. */
static int send_records(struct fleet *f) {
  if (f->outbox_full && open_outbox(f) == 0) {
    struct frec *list = NULL;
    int n = outbox_take(f->ob, 64, &list);
    if (n <= 0) {
      f->outbox_full = false;
      f->outbox_count = 0;
      free_recs(list);
      return 0;
    }
    int rc;
    while ((rc = send_recs(f, list)) == 0) continue; /* a refused one is passed over next time */
    if (rc == 1) {
      outbox_done(f->ob, list);
      f->outbox_count = f->outbox_count > (size_t)n ? f->outbox_count - (size_t)n : 0;
    }
    free_recs(list);
    return rc < 0 ? rc : 1;
  }
  if (!f->recs) return 0;
  struct frec *list = f->recs, **tail = &f->recs;
  size_t n = 0;
  while (*tail && n < 256) tail = &(*tail)->next, n++;
  /* the batch leaves the queue while it is sent: records come meanwhile */
  f->recs = *tail;
  *tail = NULL;
  if (!f->recs) f->recs_tail = &f->recs;
  f->nrecs -= n;
  int rc;
  while ((rc = send_recs(f, list)) == 0) continue;
  if (rc < 0) { /* back in front */
    *tail = f->recs;
    if (!f->recs) f->recs_tail = tail;
    f->recs = list;
    f->nrecs += n;
    return rc;
  }
  free_recs(list);
  return 1;
}

/* ---- the connection's task -------------------------------------------------------------- */

static int idler(void *arg) {
  struct fleet *f = arg;
  if (f->pg) return pg_idle(f->pg, f->idle_until);
  return chime_sleep_until(f->idle_until);
}

static void notified(struct fleet *f) {
  PGnotify *n;
  while (f->pg && (n = PQnotifies(f->pg->conn)) != NULL) {
    f->beat_now = true; /* a run revoked (replace), or an attempt pending: the heartbeat asks */
    PQfreemem(n);
  }
}

/* Waits until `until`, work, or a notification.  -ECANCELED if the task
 * was cancelled; -EIO if the connection broke meanwhile. */
static int idle(struct fleet *f, chime_ns until) {
  if (f->stopping || (f->pg && f->woken)) return 0;
  f->idle_until = until;
  if (chime_spawn(idler, f, &f->idle) != 0) return chime_sleep(CHIME_MS(10));
  f->idle_live = true;
  int result = 0, rc = chime_join(f->idle, &result);
  if (rc) { /* we were cancelled */
    chime_cancel(f->idle);
    chime_join(f->idle, NULL);
  }
  f->idle_live = false;
  if (rc) return rc;
  if (f->pg && result == -EIO) return -EIO;
  notified(f);
  return 0;
}

/* One round of work, the most urgent first: the heartbeat when it is
 * due, definitions, the claims waiting, then records, which claims come
 * before but never starve: each round sends records until none wait or a
 * claim does.  1 if something was done, 0 if nothing waits, or a negative
 * errno (the connection broke). */
static int one_round(struct fleet *f) {
  chime_ns now = chime_now();
  f->woken = false;
  notified(f); /* those that came with the answers of the last round */
  if (f->beat_now || now >= f->next_beat) {
    f->beat_now = false;
    int b = beat(f);
    return b ? b : 1;
  }
  int rc = define_jobs(f), did = rc > 0;
  if (rc < 0) return rc;
  if ((rc = send_pauses(f)) < 0) return rc;
  did |= rc > 0;
  look_for_catch_up(f);
  if ((rc = claim_batch(f)) < 0) return rc;
  did |= rc > 0;
  do {
    if ((rc = send_records(f)) < 0) return rc;
    did |= rc > 0;
  } while (rc > 0 && !f->reqs && !f->pauses && chime_now() < f->next_beat);
  return did;
}

int fleet_db_main(void *arg) {
  struct fleet *f = arg;
  chime_ns backoff = BACKOFF_MIN;
  for (;;) {
    if (f->fatal) break;
    if (!f->pg) {
      if (f->stopping) break;
      int rc = connect_db(f);
      if (rc == -ECANCELED || f->fatal) break;
      if (rc) {
        fail_claims(f, -ENOTCONN);
        if (f->recs && f->down_since && chime_now() - f->down_since > CHIME_SEC(1)) frec_spill(f);
        if (idle(f, chime_now() + backoff) == -ECANCELED) break;
        backoff = min_ns(backoff * 2, BACKOFF_MAX);
        continue;
      }
      backoff = BACKOFF_MIN;
    }
    int rc = one_round(f);
    if (rc < 0) {
      char why[256];
      const char *m = PQerrorMessage(f->pg->conn);
      snprintf(why, sizeof why, "%s", rc == -ETIMEDOUT ? "no answer in time (frozen or cut off?)"
                                      : rc == -ECANCELED ? "stopping" : *m ? m : strerror(-rc));
      why[strcspn(why, "\n")] = '\0';
      drop_connection(f, why);
      if (rc == -ECANCELED) break;
      continue;
    }
    if (rc > 0) continue;
    if (f->stopping) break; /* nothing waits */
    rc = idle(f, f->next_beat);
    if (rc == -ECANCELED) break;
    if (rc == -EIO) drop_connection(f, "the connection closed");
  }
  return 0;
}


void fleet_db_leave(struct fleet *f) {
  struct params p = {.n = 0};
  p_text(&p, f->node), p_int(&p, f->instance);
  chime_ns d = chime_now() + f->query_max;
  PGresult *res = NULL;
  if (push(f, ST_LEAVE, &p) == 0 && pg_sync(f->pg, d) == 0 && pg_result(f->pg, d, &res) == 0) pg_batch_end(f->pg, d);
  PQclear(res);
}
