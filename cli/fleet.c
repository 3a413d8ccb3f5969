/* fleet.c - several machines, one schedule (fleet.h).
 *
 * Tasks.  One task owns the database connection (db_main): it connects
 * (with back-off), keeps the node registered, sends the jobs' definitions,
 * claims ticks in batches (every claim asked while a batch is out goes in
 * the next: one transaction, sorted by job so that nodes lock alike),
 * renews leases, reaps expired ones, takes pending attempts, and sends
 * records; between these it waits on the connection's socket (for
 * notifications) until its next heartbeat or until someone wakes it.  A
 * second task (trust_main) watches the trust window of every lease held,
 * and stops a run whose lease could not be renewed in time.
 *
 * Waking a task.  The library has no condition variable: a task that must
 * be woken waits by joining a task that sleeps until cancelled, and whoever
 * wakes it cancels that sleeper.  A veto waits so for its claim's answer,
 * the connection's task so for work.
 *
 * Tick identity.  A calendar job's tick is its exact wall-clock instant,
 * the same on every node.  An interval job's ticks are the points of the
 * wall clock's grid: k * interval + its spread's offset (a hash of its
 * name in [0, spread]), in ns since the epoch; a node starts the job on
 * the grid point next on the database's clock (known from the heartbeat
 * round trips) and names each tick by the grid point nearest to it on
 * that clock, so that a node's own wall clock does not matter.
 *
 * Time.  Each round trip of the heartbeat gives the database's clock
 * (clock_timestamp()) against this node's: the offset of the sample with
 * the shortest round trip among the last eight (its error is under half
 * of it).  A node whose wall clock is off the database's by more than
 * fleet_max_skew claims nothing, and says so.
 */
#include "fleet.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fleetsql.h"
#include "guard.h"
#include "log.h"
#include "outbox.h"
#include "pg.h"
#include "runner.h"

#define BACKOFF_MIN CHIME_MS(100)
#define BACKOFF_MAX CHIME_SEC(5)
#define RECORDS_MAX 10000 /* records waiting in memory, at most */
#define SAMPLES 8

/* A job whose ticks the fleet claims. */
struct fleet_job {
  struct fleet *f;
  struct job *job;       /* the runner's, NULL once it ended */
  char name[JOB_NAME_MAX + 1];
  char hash[33];         /* its definition's */
  bool calendar;
  chime_ns every, offset; /* an interval's, and its grid's offset (the spread's) */
  chime_ns jitter;
  const char *overlap;
  unsigned max_concurrent;
  bool rerun, run_local, catch_up;
  bool defined;          /* its definition is in the database */
  bool define_sent;
  bool caught_up;        /* its catch-up was looked for since the last connection */
  bool standing_by;      /* the fleet has another definition (said) */
  chime_ns watermark;    /* as the database last said */
  struct fleet_job *next;
};

enum { C_PRECLAIMED = 1, C_CLAIMED, C_RUNNING };

/* A run of a fleet job this node holds: a lease (id > 0), or a run of no
 * claim while the database was unreachable (degraded, id 0). */
struct claim {
  struct fleet_job *fj;
  int state;
  int64_t id;
  chime_ns tick;      /* the fleet's tick (wall ns) */
  chime_ns fire;      /* when it was to run: tick + jitter */
  chime_ns lib_tick;  /* the library's tick of its run (to find its START) */
  int attempt;
  uint64_t number;    /* the library's run number, once started */
  struct run *run;    /* once its child started, until its end */
  bool degraded;
  bool catch_up;
  chime_ns since;     /* when it was claimed (loop clock) */
  chime_ns trust_until;
  outcome stopping;   /* being stopped for this outcome (0: not) */
  chime_ns kill_at;   /* SIGKILL then, if still there (0: none) */
  struct claim *next;
};

/* A claim asked of the connection's task. */
struct claimreq {
  struct claimreq *next;
  struct fleet_job *fj;
  chime_ns tick, fire, lib_tick;
  bool catch_up;
  bool internal;     /* asked by the connection's task itself (a catch-up): no veto waits */
  chime_task waiter; /* the veto's sleeper */
  bool answered, abandoned;
  int rc;            /* 0, or a negative errno: no answer */
  char status[16];
  int64_t id, old_watermark;
  char def_node[JOB_NAME_MAX + 1];
  chime_ns sent;     /* loop clock, when its batch was sent */
};

struct sample {
  chime_ns rtt, mono_to_db, wall_offset;
};

struct fleet {
  struct runner *r;
  char conninfo[4096];
  char node[JOB_NAME_MAX + 1];
  char host[256];
  int64_t instance;
  chime_ns lease, trust, beat_every, max_skew, query_max;
  char outbox_path[4096];
  struct outbox *ob;
  bool outbox_full;         /* there may be records in the outbox */
  struct guard guard;
  chime_ns guard_sent;
  struct fleet_metrics m;
  struct observer obs;
  /* the connection and its task */
  struct pg *pg;
  chime_task db_task, trust_task, idle;
  bool db_live, trust_live, idle_live;
  chime_ns idle_until;
  chime_ns next_beat;
  chime_ns down_since;      /* loop clock; 0 while up */
  bool down_said, ever_up, stopping, fatal;
  char last_why[512];
  bool beat_now;
  /* time */
  struct sample samples[SAMPLES];
  int nsamples, sample_next;
  chime_ns mono_to_db;      /* the database's wall clock minus the loop's clock */
  chime_ns wall_offset;     /* the database's wall clock minus this node's */
  bool offset_known;
  /* state */
  struct fleet_job *jobs;
  struct claim *claims;
  struct claimreq *reqs, **reqs_tail;
  struct frec *recs, **recs_tail;
  size_t nrecs;
  unsigned long long recs_lost;
};

/* ---- small things ------------------------------------------------------------------------ */

static uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

static uint64_t fnv(const char *s, uint64_t h) {
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) h = (h ^ *p) * 0x100000001b3ull;
  return h;
}

static chime_ns min_ns(chime_ns a, chime_ns b) { return a < b ? a : b; }

/* The grid point of an interval job nearest to D (db wall ns). */
static chime_ns grid_round(const struct fleet_job *fj, chime_ns d) {
  chime_ns k = (d - fj->offset + fj->every / 2) / fj->every;
  return k * fj->every + fj->offset;
}

/* The first grid point after d. */
static chime_ns grid_after(const struct fleet_job *fj, chime_ns d) {
  chime_ns k = (d - fj->offset) / fj->every + 1;
  return k * fj->every + fj->offset;
}

/* A tick's jitter: the same on every node. */
static chime_ns jitter_of(const struct fleet_job *fj, chime_ns tick) {
  if (!fj->jitter) return 0;
  return (chime_ns)(mix64(fnv(fj->name, 0xcbf29ce484222325ull) ^ (uint64_t)tick) % ((uint64_t)fj->jitter + 1));
}

/* The database's wall clock now, as this node knows it. */
static chime_ns db_now(const struct fleet *f) { return chime_now() + f->mono_to_db; }

/* The fleet's tick of a library tick. */
static chime_ns tick_id(const struct fleet *f, const struct fleet_job *fj, chime_ns lib_tick) {
  return fj->calendar ? lib_tick : grid_round(fj, lib_tick + f->mono_to_db);
}

/* A library tick for the fleet's tick (to trigger it). */
static chime_ns lib_tick_of(const struct fleet *f, const struct fleet_job *fj, chime_ns tick) {
  return fj->calendar ? tick : tick - f->mono_to_db;
}

static int sleeper(void *arg) {
  (void)arg;
  chime_sleep_until(CHIME_NEVER);
  return 0;
}

static void wake_db(struct fleet *f) {
  if (f->idle_live) chime_cancel(f->idle);
}

/* ---- records -------------------------------------------------------------------------- */

static struct frec *frec_new(int op, const char *job) {
  struct frec *r = calloc(1, sizeof *r);
  if (!r) return NULL;
  r->op = op;
  r->exit_code = -1;
  snprintf(r->job, sizeof r->job, "%s", job);
  return r;
}

static void put_rec(struct fleet *f, struct frec *r) {
  if (!r) {
    f->recs_lost++;
    return;
  }
  if (f->nrecs >= RECORDS_MAX && f->recs) { /* full: the oldest goes */
    struct frec *old = f->recs;
    f->recs = old->next;
    if (!f->recs) f->recs_tail = &f->recs;
    frec_free(old);
    f->nrecs--;
    f->recs_lost++;
  }
  r->next = NULL;
  *f->recs_tail = r;
  f->recs_tail = &r->next;
  f->nrecs++;
  f->m.records_waiting = f->nrecs;
  wake_db(f);
}

/* A run's end, as its record says. */
static void fill_end(struct frec *x, const struct run *run) {
  const struct run_record *rec = &run->rec;
  snprintf(x->outcome, sizeof x->outcome, "%s", outcome_name(rec->result));
  x->started = rec->started, x->ended = rec->ended, x->late = rec->late;
  x->pid = rec->pid, x->exit_code = rec->exit_code, x->signal = rec->signal;
  x->triggered = rec->triggered;
  if (rec->error) x->error = strdup(rec->error);
  if (rec->out_len && (x->out = malloc(rec->out_len))) memcpy(x->out, rec->out, x->out_len = rec->out_len);
  if (rec->err_len && (x->err = malloc(rec->err_len))) memcpy(x->err, rec->err, x->err_len = rec->err_len);
}

static void release(struct fleet *f, struct fleet_job *fj, int64_t id, const char *why) {
  struct frec *x = frec_new(FREC_RELEASE, fj->name);
  if (x) x->id = id, x->error = strdup(why);
  put_rec(f, x);
}

/* ---- claims held ---------------------------------------------------------------------- */

static struct claim *claim_add(struct fleet *f, struct fleet_job *fj, int state, int64_t id, chime_ns tick) {
  struct claim *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->fj = fj, c->state = state, c->id = id, c->tick = tick, c->fire = tick + jitter_of(fj, tick), c->attempt = 1;
  c->since = chime_now();
  c->trust_until = c->since + f->trust;
  c->next = f->claims;
  f->claims = c;
  return c;
}

static void claim_drop(struct fleet *f, struct claim *c) {
  for (struct claim **p = &f->claims; *p; p = &(*p)->next)
    if (*p == c) {
      *p = c->next;
      break;
    }
  if (c->run && c->run->pid > 0 && c->id) guard_del(&f->guard, c->run->pid);
  free(c);
}

/* The guard's deadline: the earliest trust window of a lease held, and a
 * sixteenth of the lease more (chime's own stop comes first). */
static void guard_update(struct fleet *f) {
  chime_ns first = CHIME_NEVER;
  for (struct claim *c = f->claims; c; c = c->next)
    if (c->id && c->state == C_RUNNING && c->run && c->run->pid > 0) first = min_ns(first, c->trust_until);
  chime_ns at = first == CHIME_NEVER ? CHIME_NEVER : first + f->lease / 4 + f->lease / 16;
  if (at == f->guard_sent) return;
  f->guard_sent = at;
  guard_deadline(&f->guard, at);
}

/* Stops a run the fleet no longer lets it hold: SIGTERM to its group now,
 * SIGKILL after its kill grace (for a lost lease, at most a quarter of the
 * lease: all of it happens before the lease can end). */
static void stop_run(struct fleet *f, struct claim *c, outcome why, const char *msg) {
  if (c->stopping) return;
  c->stopping = why;
  f->m.leases_lost += why == OUTCOME_LEASE_LOST;
  struct logline l;
  log_begin(&l, "warn", why == OUTCOME_LEASE_LOST ? "lease_lost" : "replaced");
  log_str(&l, "job", c->fj->name);
  log_time(&l, "scheduled", c->tick);
  log_int(&l, "attempt", c->attempt);
  if (c->run && c->run->pid > 0) log_int(&l, "pid", c->run->pid);
  log_str(&l, "msg", msg);
  log_end(&l);
  if (!c->run || c->run->pid <= 0) return; /* not started: its start is stopped (fleet_child_started) */
  c->run->forced = why;
  kill(-c->run->pid, SIGTERM);
  chime_ns grace = c->fj->job ? c->fj->job->conf->kill_grace : CHIME_SEC(5);
  if (why == OUTCOME_LEASE_LOST) grace = min_ns(grace, f->lease / 4);
  c->kill_at = chime_now() + grace;
}

/* ---- the clock -------------------------------------------------------------------------- */

/* A round trip sent at (wall0, mono0), answered at (wall1, mono1), with
 * the database's clock `db` in between. */
static void sample(struct fleet *f, chime_ns wall0, chime_ns mono0, chime_ns wall1, chime_ns mono1, chime_ns db) {
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

static void say_down(struct fleet *f, const char *why) {
  if (f->down_said) return;
  f->down_said = true;
  log_msg("error", "fleet", "the fleet's database is unreachable: %s; no tick is claimed until it returns "
                            "(on_db_down = run_local jobs run here meanwhile)", why);
}

/* Every claim still waiting gets no answer. */
static void fail_claims(struct fleet *f, int rc) {
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
  say_down(f, why);
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
    sample(f, w0, m0, chime_wall_now(), chime_now(), pg_int(res, 0, 3));
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
      say_down(f, why);
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
    release(f, fj, id, "out of memory");
    return;
  }
  c->attempt = attempt, c->catch_up = catch_up;
  c->trust_until = sent + f->trust;
  int rc = chime_every_trigger(fj->job->handle, lib_tick_of(f, fj, tick));
  if (rc) {
    claim_drop(f, c);
    release(f, fj, id, chime_strerror(rc));
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
    if (fj->job && !fj->job->retired && fj->defined && !fj->standing_by) jobs[njobs++] = fj;
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
  if (rc == 0 && !f->stopping) rc = push(f, ST_TAKE, &p);
  chime_ns w0 = chime_wall_now(), m0 = chime_now();
  if (rc == 0) rc = pg_sync(f->pg, deadline);
  PGresult *res = NULL;
  if (rc == 0) rc = pg_result(f->pg, deadline, &res);
  if (rc == 0 && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) >= 1) {
    sample(f, w0, m0, chime_wall_now(), chime_now(), pg_int(res, 0, 2));
    if (strcmp(PQgetvalue(res, 0, 1), "gone") == 0) {
      say_fatal(f, "another chime has taken this node's name while this one could not reach the database: stopping");
      for (struct claim *c = f->claims; c; c = c->next)
        if (c->id) stop_run(f, c, OUTCOME_LEASE_LOST, "this node's name was taken by another chime");
    }
    for (int i = 1; i < PQntuples(res); i++) {
      struct claim *c = claim_by_id(f, pg_int(res, i, 0));
      if (!c) continue;
      const char *state = PQgetvalue(res, i, 1);
      if (strcmp(state, "running") == 0) c->trust_until = m0 + f->trust;
      else if (strcmp(state, "replacing") == 0) stop_run(f, c, OUTCOME_REPLACED, "a newer tick's run replaces it");
      else stop_run(f, c, OUTCOME_LEASE_LOST, "its lease was lost: another node reaped it");
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
  if (rc == 0 && !f->stopping) rc = pg_result(f->pg, deadline, &res);
  for (int i = 0; rc == 0 && res && PQresultStatus(res) == PGRES_TUPLES_OK && i < PQntuples(res); i++) {
    struct fleet_job *fj = live_job(f, PQgetvalue(res, i, 1));
    int64_t id = pg_int(res, i, 0);
    if (!fj) {
      struct frec *x = frec_new(FREC_RELEASE, PQgetvalue(res, i, 1));
      if (x) x->id = id, x->error = strdup("the job is not running here");
      put_rec(f, x);
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
  if (rc == 0) rc = pg_batch_end(f->pg, deadline);
  free(ids), free(jobs), free(id_array), free(names), free(hashes);
  if (rc == 0) guard_update(f);
  f->next_beat = chime_now() + f->beat_every;
  return rc;
}

/* ---- definitions and catch-up -------------------------------------------------------- */

static int define_jobs(struct fleet *f) {
  struct fleet_job *batch[64];
  int n = 0;
  for (struct fleet_job *fj = f->jobs; fj && n < 64; fj = fj->next)
    if (fj->job && !fj->defined) batch[n++] = fj;
  if (!n) return 0;
  chime_ns deadline = chime_now() + f->query_max;
  int rc = 0;
  for (int i = 0; rc == 0 && i < n; i++) {
    struct params p = {.n = 0};
    p_text(&p, batch[i]->name), p_text(&p, batch[i]->hash), p_text(&p, f->node), p_text(&p, batch[i]->overlap);
    p_int(&p, batch[i]->max_concurrent), p_text(&p, batch[i]->rerun ? "rerun" : "drop");
    rc = push(f, ST_DEFINE, &p);
  }
  if (rc == 0) rc = pg_sync(f->pg, deadline);
  for (int i = 0; rc == 0 && i < n; i++) {
    PGresult *res;
    if ((rc = pg_result(f->pg, deadline, &res)) != 0) break;
    if (PQresultStatus(res) == PGRES_TUPLES_OK) {
      batch[i]->defined = true;
      batch[i]->standing_by = false;
      batch[i]->watermark = pg_int(res, 0, 0);
    } else {
      log_msg("error", "fleet", "job %s: its definition could not be written: %s", batch[i]->name, result_error(res));
    }
    PQclear(res);
  }
  if (rc == 0) rc = pg_batch_end(f->pg, deadline);
  return rc ? rc : n;
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
    chime_ns missed = latest_tick(fj, fj->watermark, db_now(f) - f->max_skew - f->beat_every);
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
  put_rec(f, x);
  struct logline l;
  log_begin(&l, "warn", "unclaimed");
  log_str(&l, "job", fj->name);
  log_time(&l, "scheduled", first);
  log_int(&l, "count", count);
  if (count > 1) log_time(&l, "last", last);
  log_str(&l, "msg", "ticks no node claimed (the fleet or its database was down, or every node skipped them)");
  log_end(&l);
}

/* What a claim's answer means here, for a request nobody waits for. */
static void claim_answered(struct fleet *f, struct claimreq *q) {
  bool won = q->rc == 0 && strcmp(q->status, "won") == 0;
  if (won) record_gap(f, q->fj, q->old_watermark, q->tick);
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
      release(f, q->fj, q->id, "the job ended");
    }
    free(q);
    return;
  }
  if (q->abandoned) { /* its hold ended: nobody runs it here */
    if (won) release(f, q->fj, q->id, "claimed after the tick's hold ended");
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
  while (f->reqs) {
    struct claimreq *q = f->reqs;
    f->reqs = q->next;
    if (q->abandoned) {
      free(q);
      continue;
    }
    b[n++] = q;
  }
  f->reqs_tail = &f->reqs;
  qsort(b, n, sizeof *b, by_job);
  chime_ns deadline = chime_now() + f->query_max, sent = chime_now();
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < n; i++) {
    struct params p = {.n = 0};
    p_text(&p, b[i]->fj->name), p_int(&p, b[i]->tick), p_int(&p, b[i]->fire), p_text(&p, b[i]->fj->hash);
    p_text(&p, f->node), p_int(&p, f->instance), p_int(&p, f->max_skew), p_int(&p, f->lease / CHIME_MS(1));
    p_bool(&p, b[i]->catch_up);
    rc = push(f, ST_CLAIM, &p);
    b[i]->sent = sent;
  }
  if (rc == 0) rc = pg_sync(f->pg, deadline);
  size_t got = 0;
  for (; rc == 0 && got < n; got++) {
    PGresult *res;
    struct claimreq *q = b[got];
    if ((rc = pg_result(f->pg, deadline, &res)) != 0) break;
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
      snprintf(q->status, sizeof q->status, "%s", PQgetvalue(res, 0, 0));
      q->id = pg_int(res, 0, 1), q->old_watermark = pg_int(res, 0, 2);
      snprintf(q->def_node, sizeof q->def_node, "%s", PQgetvalue(res, 0, 4));
      if (q->fj->watermark < q->tick && strcmp(q->status, "won") == 0) q->fj->watermark = q->tick;
    } else {
      log_msg("error", "fleet", "claim of job %s: %s", q->fj->name, result_error(res));
      q->rc = -EPROTO;
    }
    PQclear(res);
  }
  if (rc == 0) rc = pg_batch_end(f->pg, deadline);
  /* a batch without its commit answered nothing: its claims may or may not
   * have been made, and are treated as lost (a won one is reaped) */
  for (size_t i = 0; i < n; i++) {
    if (rc) b[i]->rc = rc, f->m.claims_failed++;
    b[i]->answered = true;
    claim_answered(f, b[i]);
  }
  free(b);
  return rc ? rc : 1;
}

/* ---- records ------------------------------------------------------------------------------- */

static int push_rec(struct fleet *f, const struct frec *x) {
  struct params p = {.n = 0};
  switch (x->op) {
  case FREC_STARTED:
    p_int(&p, x->id), p_text(&p, f->node), p_int(&p, f->instance), p_int(&p, x->pid), p_int(&p, x->started);
    p_int(&p, x->late), p_int(&p, getpid());
    return push(f, ST_STARTED, &p);
  case FREC_FINISH:
    p_int(&p, x->id), p_text(&p, f->node), p_int(&p, f->instance), p_text(&p, x->outcome), p_int(&p, x->started);
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
    p_int(&p, x->id), p_text(&p, f->node), p_int(&p, f->instance), p_text(&p, x->error ? x->error : "released");
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
static void spill(struct fleet *f) {
  if (!f->recs || open_outbox(f) != 0) return;
  struct frec *list = f->recs, *left;
  size_t n = f->nrecs;
  f->recs = NULL, f->recs_tail = &f->recs, f->nrecs = 0;
  if (outbox_put(f->ob, list, &left) == 0) {
    f->outbox_full = true;
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
      free_recs(list);
      return 0;
    }
    int rc;
    while ((rc = send_recs(f, list)) == 0) continue; /* a refused one is passed over next time */
    if (rc == 1) outbox_done(f->ob, list);
    free_recs(list);
    return rc < 0 ? rc : 1;
  }
  if (!f->recs) return 0;
  struct frec *list = f->recs, **tail = &f->recs;
  size_t n = 0;
  while (*tail && n < 64) tail = &(*tail)->next, n++;
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
  f->m.records_waiting = f->nrecs;
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

/* One piece of work, the most urgent first.  1 if something was done, 0
 * if nothing waits, or a negative errno (the connection broke). */
static int one_round(struct fleet *f) {
  chime_ns now = chime_now();
  if (f->beat_now || now >= f->next_beat) {
    f->beat_now = false;
    int b = beat(f);
    return b ? b : 1;
  }
  int rc = define_jobs(f);
  if (rc) return rc;
  look_for_catch_up(f);
  if ((rc = claim_batch(f)) != 0) return rc;
  return send_records(f);
}

static int db_main(void *arg) {
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
        if (f->recs && f->down_since && chime_now() - f->down_since > CHIME_SEC(1)) spill(f);
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

/* ---- the trust window ------------------------------------------------------------------------ */

static void check_trust(struct fleet *f) {
  chime_ns now = chime_now();
  for (struct claim *c = f->claims, *next; c; c = next) {
    next = c->next;
    /* a claim whose run never started (its job stopped meanwhile) */
    if (c->state != C_RUNNING && now - c->since > CHIME_SEC(2) + f->trust) {
      if (!c->stopping && c->id) release(f, c->fj, c->id, "its run never started");
      claim_drop(f, c);
      continue;
    }
    if (!c->id) continue;
    if (!c->stopping && now >= c->trust_until) {
      if (c->state == C_RUNNING)
        stop_run(f, c, OUTCOME_LEASE_LOST, "the lease could not be renewed within the trust window: the run stops "
                                           "before the lease can end on the database's clock");
      else
        c->stopping = OUTCOME_LEASE_LOST; /* not started: it will not be */
    }
    if (c->kill_at && now >= c->kill_at) {
      if (c->run && c->run->pid > 0) kill(-c->run->pid, SIGKILL);
      c->kill_at = 0;
    }
  }
}

static int trust_main(void *arg) {
  struct fleet *f = arg;
  chime_ns period = f->trust / 20 > CHIME_MS(10) ? f->trust / 20 : CHIME_MS(10);
  while (chime_sleep(period) == 0) check_trust(f);
  return 0;
}

/* ---- the jobs' events ------------------------------------------------------------------------ */

static struct claim *claim_of_run(struct fleet *f, const struct job *j, uint64_t number) {
  for (struct claim *c = f->claims; c; c = c->next)
    if (c->fj->job == j && c->state == C_RUNNING && c->number == number) return c;
  return NULL;
}

/* A fleet's run is timed on the database's clock: its start and end as
 * this node's clock had them, moved by the offset; its lateness from its
 * fire time (tick + jitter), so that a node whose clock is off neither
 * looks late nor early. */
static void on_db_clock(const struct fleet *f, const struct claim *c, struct frec *x) {
  if (x->started) x->started += f->wall_offset;
  if (x->ended) x->ended += f->wall_offset;
  if (x->started) x->late = x->started - c->fire;
}

static void on_start(struct fleet *f, const struct job *j, const chime_event *ev) {
  if (!j->fleet) return;
  for (struct claim *c = f->claims; c; c = c->next)
    if (c->fj == j->fleet && c->state == C_CLAIMED && c->lib_tick == ev->tick) {
      c->state = C_RUNNING;
      c->number = ev->run;
      return;
    }
}

static void on_end(struct fleet *f, const struct job *j, const chime_event *ev, const struct run *run) {
  if (!run) return;
  if (!j->fleet) { /* scope = host: recorded, unclaimed */
    struct frec *x = frec_new(FREC_LOCAL, j->conf->name);
    if (x) x->tick = run->rec.scheduled, fill_end(x, run);
    put_rec(f, x);
    return;
  }
  struct claim *c = claim_of_run(f, j, ev->run);
  if (!c) return;
  struct frec *x = frec_new(c->id ? FREC_FINISH : FREC_LOCAL, j->conf->name);
  if (x) {
    x->id = c->id, x->tick = c->tick, x->degraded = c->degraded;
    fill_end(x, run);
    on_db_clock(f, c, x);
  }
  put_rec(f, x);
  c->run = NULL;
  if (run->pid > 0 && c->id) guard_del(&f->guard, run->pid);
  claim_drop(f, c);
  guard_update(f);
}

static void on_skip(struct fleet *f, const struct job *j, const chime_event *ev) {
  if (j->fleet) return; /* a fleet's ticks are on record as the claims decided them */
  struct frec *x = frec_new(FREC_SKIP, j->conf->name);
  if (x) {
    x->tick = ev->wall, x->last = ev->count > 1 ? ev->last_wall : ev->wall;
    x->count = ev->count > INT64_MAX ? INT64_MAX : (int64_t)ev->count;
    x->started = chime_wall_now(), x->triggered = ev->triggered;
    snprintf(x->outcome, sizeof x->outcome, "%s", skip_reason_name(ev->reason));
  }
  put_rec(f, x);
}

static void on_done(struct fleet *f, const struct job *j) {
  struct fleet_job *fj = j->fleet;
  if (!fj) return;
  for (struct claim *c = f->claims, *next; c; c = next) {
    next = c->next;
    if (c->fj != fj || c->state == C_RUNNING) continue;
    if (c->id) release(f, fj, c->id, "its job ended before the run");
    claim_drop(f, c);
  }
  fj->job = NULL;
}

static void observe_fn(void *ctx, const struct job *j, const chime_event *ev, const struct run *run) {
  struct fleet *f = ctx;
  switch (ev->type) {
  case CHIME_EVENT_START: on_start(f, j, ev); break;
  case CHIME_EVENT_END: on_end(f, j, ev, run); break;
  case CHIME_EVENT_SKIP: on_skip(f, j, ev); break;
  case CHIME_EVENT_DONE: on_done(f, j); break;
  default: break;
  }
}

void fleet_child_started(struct fleet *f, struct run *run) {
  const struct job *j = run->job;
  if (!j->fleet) {
    struct frec *x = frec_new(FREC_LOCAL, j->conf->name);
    if (x) {
      snprintf(x->outcome, sizeof x->outcome, "running");
      x->tick = run->rec.scheduled, x->started = run->rec.started, x->late = run->rec.late, x->pid = run->pid;
      x->triggered = run->rec.triggered;
    }
    put_rec(f, x);
    return;
  }
  struct claim *c = claim_of_run(f, j, run->number);
  if (!c) return;
  c->run = run;
  struct frec *x = frec_new(c->id ? FREC_STARTED : FREC_LOCAL, j->conf->name);
  if (x) {
    x->id = c->id, x->tick = c->tick, x->degraded = c->degraded, x->pid = run->pid;
    x->started = run->rec.started, x->late = run->rec.late, x->triggered = run->rec.triggered;
    snprintf(x->outcome, sizeof x->outcome, "running");
    on_db_clock(f, c, x);
  }
  put_rec(f, x);
  if (!c->id || run->pid <= 0) return;
  guard_add(&f->guard, run->pid);
  guard_update(f);
  if (c->stopping) { /* its lease ran out before its child started */
    outcome why = c->stopping;
    c->stopping = 0;
    stop_run(f, c, why, "the lease ran out before the run's child started");
  }
}

/* ---- the veto ------------------------------------------------------------------------------ */

/* Holds the tick until `fire` on the database's clock (as this node knows
 * it).  0, or -ECANCELED when the hold ended first. */
static int wait_for(const struct fleet *f, chime_ns fire) {
  chime_ns wait = fire - db_now(f);
  return wait > 0 ? chime_sleep(wait) : 0;
}

int fleet_veto(struct fleet *f, struct job *j, const chime_event *ev) {
  struct fleet_job *fj = j->fleet;
  chime_ns tick = tick_id(f, fj, ev->tick);
  if (ev->triggered) { /* a claim the connection's task obtained: its run */
    for (struct claim *c = f->claims; c; c = c->next)
      if (c->fj == fj && c->state == C_PRECLAIMED && c->tick == tick && !c->stopping) {
        c->state = C_CLAIMED;
        c->lib_tick = ev->tick;
        return 0;
      }
    return VETO_SILENT;
  }
  chime_ns fire = tick + jitter_of(fj, tick);
  if (wait_for(f, fire) != 0) return -ETIMEDOUT;
  if (!f->m.db_up) {
    if (!fj->run_local) {
      f->m.claims_failed++;
      return VETO_SILENT;
    }
    struct claim *c = claim_add(f, fj, C_CLAIMED, 0, tick);
    if (!c) return -ENOMEM;
    c->degraded = true, c->lib_tick = ev->tick;
    f->m.degraded++;
    return 0;
  }
  if (f->m.skewed || fj->standing_by || !fj->defined) {
    f->m.claims_refused++;
    return VETO_SILENT;
  }
  struct claimreq *q = calloc(1, sizeof *q);
  chime_task w;
  if (!q || chime_spawn(sleeper, NULL, &w) != 0) {
    free(q);
    return -ENOMEM;
  }
  q->fj = fj, q->tick = tick, q->fire = fire, q->lib_tick = ev->tick, q->waiter = w;
  *f->reqs_tail = q;
  f->reqs_tail = &q->next;
  wake_db(f);
  int rc = chime_join(w, NULL);
  if (rc) { /* the hold ended */
    chime_cancel(w);
    chime_join(w, NULL);
    if (!q->answered) {
      q->abandoned = true; /* the connection's task frees it */
      return -ETIMEDOUT;
    }
  }
  bool won = q->rc == 0 && strcmp(q->status, "won") == 0;
  int veto = VETO_SILENT;
  if (won && rc == 0) {
    struct claim *c = claim_add(f, fj, C_CLAIMED, q->id, tick);
    if (c) {
      c->lib_tick = ev->tick, c->trust_until = q->sent + f->trust;
      f->m.claims_won++;
      veto = 0;
    } else {
      release(f, fj, q->id, "out of memory");
    }
  } else if (won) {
    release(f, fj, q->id, "claimed after the tick's hold ended");
    veto = -ETIMEDOUT;
  } else if (q->rc == 0 && strcmp(q->status, "taken") == 0) {
    f->m.claims_lost++;
  } else if (q->rc == 0 && strcmp(q->status, "overlap") == 0) {
    veto = VETO_OVERLAP;
  } else if (q->rc == 0 && strcmp(q->status, "queued") == 0) {
    veto = VETO_QUEUED;
  } else if (q->rc == 0 && strcmp(q->status, "definition") == 0) {
    f->m.claims_refused++;
    if (!fj->standing_by)
      log_msg("warn", "fleet", "job %s: the fleet runs another definition of it (set by node %s): this node stands "
                               "by until it runs the same (a restart or reload with the fleet's config)",
              fj->name, q->def_node);
    fj->standing_by = true;
  } else if (q->rc == 0) { /* early, late, unknown: the database's clock says no */
    f->m.claims_refused++;
  }
  free(q);
  return veto;
}

/* ---- jobs starting ------------------------------------------------------------------------- */

bool fleet_owns(const struct fleet *f, const struct job_conf *c) { return f && !c->scope_host && !c->reboot; }

static const char *overlap_word(chime_overlap o) {
  static const char *const words[] = {"skip", "queue", "allow", "replace"};
  return (unsigned)o < 4 ? words[o] : "skip";
}

void fleet_job_opts(struct fleet *f, struct job *j, chime_every_opts *o) {
  const struct job_conf *c = j->conf;
  struct fleet_job *fj = calloc(1, sizeof *fj);
  if (!fj) return; /* then the job runs as this node's alone: said */
  fj->f = f, fj->job = j;
  snprintf(fj->name, sizeof fj->name, "%s", c->name);
  uint64_t h1 = fnv(c->fingerprint, 0xcbf29ce484222325ull), h2 = fnv(c->fingerprint, 0x84222325cbf29ce4ull);
  snprintf(fj->hash, sizeof fj->hash, "%016llx%016llx", (unsigned long long)h1, (unsigned long long)h2);
  fj->calendar = c->cron != NULL;
  fj->every = c->every, fj->jitter = c->jitter;
  fj->offset = c->spread ? (chime_ns)(mix64(fnv(c->name, 0xcbf29ce484222325ull)) % ((uint64_t)c->spread + 1)) : 0;
  if (fj->every) fj->offset %= fj->every;
  fj->overlap = overlap_word(c->overlap);
  fj->max_concurrent = c->overlap == CHIME_OVERLAP_ALLOW ? c->max_concurrent : 1;
  fj->rerun = c->rerun_on_node_loss, fj->run_local = c->run_local, fj->catch_up = c->catch_up;
  fj->next = f->jobs;
  f->jobs = fj;
  j->fleet = fj;
  /* the fleet decides overlap (the database), jitter and spread (from the
   * job and the tick): the library runs what the claims allow */
  o->overlap = CHIME_OVERLAP_ALLOW, o->max_concurrent = 255;
  o->jitter = 0, o->spread = 0, o->key = NULL;
  if (!fj->calendar) {
    o->start = CHIME_START_AT;
    o->start_at = grid_after(fj, db_now(f) + CHIME_MS(1)) - f->mono_to_db;
  }
  wake_db(f);
}

/* ---- the fleet ------------------------------------------------------------------------------- */

int fleet_new(const struct config *cfg, struct fleet **out) {
  const struct daemon_conf *d = &cfg->daemon;
  *out = NULL;
  if (!d->fleet) return 0;
  int bad = 0;
  for (size_t i = 0; i < cfg->njobs; i++) {
    const struct job_conf *c = cfg->jobs[i];
    if (!c || c->scope_host || c->reboot) continue;
    char why[256] = "";
    if (c->start_now) snprintf(why, sizeof why, "start_now: a fleet's interval job ticks on the wall clock's grid");
    else if (c->max_runs) snprintf(why, sizeof why, "max_runs: each node of a fleet would count its own runs");
    else if (!c->cron && c->every && c->jitter >= c->every)
      snprintf(why, sizeof why, "jitter: in a fleet, a jitter must be shorter than the interval");
    if (why[0]) fprintf(stderr, "chime: job %s: %s (give scope = host, or change it)\n", c->name, why), bad++;
  }
  if (bad) return 1;
  struct fleet *f = calloc(1, sizeof *f);
  if (!f) return fputs("chime: out of memory\n", stderr), 1;
  if (pg_conninfo(d->fleet, f->conninfo, sizeof f->conninfo) != 0) {
    fputs("chime: fleet: the connection string is too long\n", stderr);
    free(f);
    return 1;
  }
  gethostname(f->host, sizeof f->host - 1);
  snprintf(f->node, sizeof f->node, "%.64s", d->node ? d->node : f->host);
  if (!job_name_ok(f->node)) {
    fprintf(stderr, "chime: the hostname \"%s\" is no node name: give node = NAME or --node NAME\n", f->node);
    free(f);
    return 1;
  }
  int ur = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (ur < 0 || read(ur, &f->instance, sizeof f->instance) != (ssize_t)sizeof f->instance)
    f->instance = (int64_t)mix64((uint64_t)getpid() ^ (uint64_t)chime_wall_now());
  if (ur >= 0) close(ur);
  f->instance &= INT64_MAX;
  f->lease = d->fleet_lease;
  f->trust = f->lease / 2;
  f->beat_every = f->lease / 6;
  f->max_skew = d->fleet_max_skew;
  f->query_max = min_ns(f->lease / 4, CHIME_SEC(2));
  if (d->fleet_outbox) snprintf(f->outbox_path, sizeof f->outbox_path, "%s", d->fleet_outbox);
  f->reqs_tail = &f->reqs;
  f->recs_tail = &f->recs;
  f->guard_sent = CHIME_NEVER;
  int rc = guard_start(&f->guard);
  if (rc) {
    fprintf(stderr, "chime: fleet: cannot start the guard process: %s\n", strerror(-rc));
    free(f);
    return 1;
  }
  *out = f;
  return 0;
}

void fleet_free(struct fleet *f) {
  if (!f) return;
  guard_stop(&f->guard);
  pg_close(f->pg);
  outbox_close(f->ob);
  while (f->claims) {
    struct claim *c = f->claims;
    f->claims = c->next;
    free(c);
  }
  while (f->jobs) {
    struct fleet_job *fj = f->jobs;
    f->jobs = fj->next;
    free(fj);
  }
  while (f->recs) {
    struct frec *x = f->recs;
    f->recs = x->next;
    frec_free(x);
  }
  while (f->reqs) {
    struct claimreq *q = f->reqs;
    f->reqs = q->next;
    free(q);
  }
  free(f);
}

int fleet_start(struct fleet *f, struct runner *r) {
  f->r = r;
  f->mono_to_db = chime_wall_now() - chime_now();
  if (!f->outbox_path[0] && r->db_path) snprintf(f->outbox_path, sizeof f->outbox_path, "%s-fleet", r->db_path);
  f->outbox_full = f->outbox_path[0] != '\0'; /* what an earlier run left */
  f->obs.fn = observe_fn, f->obs.ctx = f;
  runner_observe(r, &f->obs);
  if (chime_spawn(db_main, f, &f->db_task) == 0) f->db_live = true;
  if (chime_spawn(trust_main, f, &f->trust_task) == 0) f->trust_live = true;
  if (!f->db_live || !f->trust_live) {
    log_msg("error", "fleet", "out of memory: the fleet's tasks could not start");
    return 1;
  }
  f->down_since = chime_now();
  /* the jobs start on the database's clock if it answers soon */
  chime_ns until = chime_now() + f->lease / 4;
  while (!f->m.db_up && !f->fatal && chime_now() < until)
    if (chime_sleep(CHIME_MS(5)) != 0) break;
  if (f->fatal) return 1;
  if (!f->m.db_up) say_down(f, f->last_why[0] ? f->last_why : "no answer yet");
  return 0;
}

void fleet_stop(struct fleet *f, chime_ns deadline) {
  f->stopping = true;
  wake_db(f);
  if (f->db_live && chime_join_until(f->db_task, deadline, NULL) != 0) {
    chime_cancel(f->db_task);
    chime_join(f->db_task, NULL);
  }
  f->db_live = false;
  if (f->recs) spill(f); /* what the database did not take */
  if (f->nrecs || f->recs_lost)
    log_msg("error", "fleet", "%zu record(s) could not be kept for the fleet's history, %llu lost", f->nrecs,
            f->recs_lost);
  if (f->pg) { /* leave: the name is free at once */
    struct params p = {.n = 0};
    p_text(&p, f->node), p_int(&p, f->instance);
    chime_ns d = chime_now() + f->query_max;
    PGresult *res = NULL;
    if (push(f, ST_LEAVE, &p) == 0 && pg_sync(f->pg, d) == 0 && pg_result(f->pg, d, &res) == 0)
      pg_batch_end(f->pg, d);
    PQclear(res);
  }
  if (f->trust_live) chime_cancel(f->trust_task), chime_join(f->trust_task, NULL);
  f->trust_live = false;
}

const struct fleet_metrics *fleet_metrics(const struct fleet *f) { return &f->m; }
