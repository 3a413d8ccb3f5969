/* fleet.c - several machines, one schedule (fleet.h).
 *
 * Tasks.  One task owns the database connection (fleetdb.c): it connects
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

#include "control.h"
#include "fleetint.h"
#include "recorder.h"
#include "log.h"

static int sleeper(void *arg) {
  (void)arg;
  chime_sleep_until(CHIME_NEVER);
  return 0;
}

/* ---- records -------------------------------------------------------------------------- */

struct frec *frec_new(int op, const char *job) {
  struct frec *r = calloc(1, sizeof *r);
  if (!r) return NULL;
  r->op = op;
  r->exit_code = -1;
  snprintf(r->job, sizeof r->job, "%s", job);
  return r;
}

void frec_put(struct fleet *f, struct frec *r) {
  if (!r) {
    f->recs_lost++;
    return;
  }
  r->instance = f->instance; /* the daemon it is of: its fence, wherever it is sent from */
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
  wake_db(f);
}

/* A run's end, as its record says. */
static void fill_end(struct frec *x, const struct run *run) {
  const struct run_record *rec = &run->rec;
  snprintf(x->outcome, sizeof x->outcome, "%s", outcome_name(rec->result));
  x->started = rec->started, x->ended = rec->ended, x->late = rec->late;
  x->pid = rec->pid, x->exit_code = rec->exit_code, x->signal = rec->signal;
  x->triggered = rec->trigger != TRIGGER_NONE;
  if (rec->error) x->error = strdup(rec->error);
  if (rec->out_len && (x->out = malloc(rec->out_len))) memcpy(x->out, rec->out, x->out_len = rec->out_len);
  if (rec->err_len && (x->err = malloc(rec->err_len))) memcpy(x->err, rec->err, x->err_len = rec->err_len);
}

void claim_release(struct fleet *f, struct fleet_job *fj, int64_t id, const char *why) {
  struct frec *x = frec_new(FREC_RELEASE, fj->name);
  if (x) x->id = id, x->error = strdup(why);
  frec_put(f, x);
}

/* ---- claims held ---------------------------------------------------------------------- */

struct claim *claim_add(struct fleet *f, struct fleet_job *fj, int state, int64_t id, chime_ns tick) {
  struct claim *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->fj = fj, c->state = state, c->id = id, c->tick = tick, c->fire = tick + jitter_of(fj, tick), c->attempt = 1;
  c->since = chime_now();
  c->trust_until = c->since + f->trust;
  c->next = f->claims;
  f->claims = c;
  return c;
}

void claim_drop(struct fleet *f, struct claim *c) {
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
void leases_guard(struct fleet *f) {
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
void claim_stop(struct fleet *f, struct claim *c, outcome why, const char *msg) {
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

/* ---- the trust window ------------------------------------------------------------------------ */

/* A fleet's run is timed on the database's clock, as this node knows it
 * from its monotonic clock (c->db_started, c->db_ended: a step of the
 * node's wall clock does not move them); its lateness from its fire time
 * (tick + jitter), so that a node whose clock is off neither looks late
 * nor early. */
static void on_db_clock(const struct fleet *f, const struct claim *c, struct frec *x) {
  (void)f;
  if (c->db_started) x->started = c->db_started, x->late = c->db_started - c->fire;
  if (x->ended) x->ended = c->db_ended;
}

/* The start of a run that has gone on for a while (its pid, so that a
 * run its node loses is on record with it). */
static void record_start(struct fleet *f, struct claim *c) {
  const struct run *run = c->run;
  c->started_at = 0;
  struct frec *x = frec_new(c->id ? FREC_STARTED : FREC_LOCAL, c->fj->name);
  if (x) {
    x->id = c->id, x->tick = c->tick, x->degraded = c->degraded, x->pid = run->pid;
    x->started = run->rec.started, x->late = run->rec.late, x->triggered = run->rec.trigger != TRIGGER_NONE;
    snprintf(x->outcome, sizeof x->outcome, "running");
    on_db_clock(f, c, x);
  }
  frec_put(f, x);
}

static void check_trust(struct fleet *f) {
  chime_ns now = chime_now();
  for (struct claim *c = f->claims, *next; c; c = next) {
    next = c->next;
    if (c->started_at && c->run && now - c->started_at >= f->start_delay) record_start(f, c);
    /* a claim whose run never started (its job stopped meanwhile) */
    if (c->state != C_RUNNING && now - c->since > CHIME_SEC(2) + f->trust) {
      if (!c->stopping && c->id) claim_release(f, c->fj, c->id, "its run never started");
      claim_drop(f, c);
      continue;
    }
    if (!c->id) continue;
    if (!c->stopping && now >= c->trust_until) {
      if (c->state == C_RUNNING)
        claim_stop(f, c, OUTCOME_LEASE_LOST, "the lease could not be renewed within the trust window: the run stops "
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
  chime_ns period = min_ns(f->trust / 20 > CHIME_MS(10) ? f->trust / 20 : CHIME_MS(10), f->start_delay / 2);
  while (chime_sleep(period) == 0) check_trust(f);
  return 0;
}

/* ---- the jobs' events ------------------------------------------------------------------------ */

static struct claim *claim_of_run(struct fleet *f, const struct job *j, uint64_t number) {
  for (struct claim *c = f->claims; c; c = c->next)
    if (c->fj->job == j && c->state == C_RUNNING && c->number == number) return c;
  return NULL;
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
    frec_put(f, x);
    return;
  }
  struct claim *c = claim_of_run(f, j, ev->run);
  if (!c) return;
  c->db_ended = db_now(f);
  if (!c->db_started) c->db_started = c->db_ended - ev->duration; /* its child never started */
  struct frec *x = frec_new(c->id ? FREC_FINISH : FREC_LOCAL, j->conf->name);
  if (x) {
    x->id = c->id, x->tick = c->tick, x->degraded = c->degraded;
    fill_end(x, run);
    on_db_clock(f, c, x);
  }
  frec_put(f, x);
  c->run = NULL;
  if (run->pid > 0 && c->id) guard_del(&f->guard, run->pid);
  claim_drop(f, c);
  leases_guard(f);
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
  frec_put(f, x);
}

static void on_done(struct fleet *f, const struct job *j) {
  struct fleet_job *fj = j->fleet;
  if (!fj) return;
  for (struct claim *c = f->claims, *next; c; c = next) {
    next = c->next;
    if (c->fj != fj || c->state == C_RUNNING) continue;
    if (c->id) claim_release(f, fj, c->id, "its job ended before the run");
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
      x->triggered = run->rec.trigger != TRIGGER_NONE;
    }
    frec_put(f, x);
    return;
  }
  struct claim *c = claim_of_run(f, j, run->number);
  if (!c) return;
  c->run = run;
  /* its start is recorded when it has run a while (the trust task): a
   * short run's end says all, at half the statements */
  c->started_at = chime_now();
  c->db_started = db_now(f);
  if (!c->id || run->pid <= 0) return;
  guard_add(&f->guard, run->pid);
  leases_guard(f);
  if (c->stopping) { /* its lease ran out before its child started */
    outcome why = c->stopping;
    c->stopping = 0;
    claim_stop(f, c, why, "the lease ran out before the run's child started");
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
  bool manual = false;
  if (ev->triggered) { /* a claim the connection's task obtained: its run */
    for (struct claim *c = f->claims; c; c = c->next)
      if (c->fj == fj && c->state == C_PRECLAIMED && c->lib_tick == ev->tick && !c->stopping) {
        c->state = C_CLAIMED;
        return 0;
      }
    if (job_trigger(j, ev->tick, true) != TRIGGER_MANUAL) return VETO_SILENT;
    /* chime trigger: a run now, once across the fleet, under the fleet's
     * overlap policy, paused or not; its tick the instant it was asked */
    manual = true;
    tick = db_now(f);
  }
  chime_ns fire = manual ? tick : tick + jitter_of(fj, tick);
  if (!manual && wait_for(f, fire) != 0) return -ETIMEDOUT;
  if (!f->m.db_up) {
    if (!fj->run_local) {
      f->m.claims_failed++;
      return VETO_SILENT;
    }
    if (fj->paused_at && !manual) return VETO_PAUSED; /* the fleet's pause, as last heard */
    struct claim *c = claim_add(f, fj, C_CLAIMED, 0, tick);
    if (!c) return -ENOMEM;
    c->degraded = true, c->lib_tick = ev->tick, c->fire = fire;
    f->m.degraded++;
    return 0;
  }
  /* a job whose definition this node has not written yet is asked for all
   * the same: the connection's task writes definitions before the claims
   * of its round (a node's first tick can come a moment after its start) */
  if (f->m.skewed) {
    f->m.claims_refused++;
    return VETO_SILENT;
  }
  struct claimreq *q = calloc(1, sizeof *q);
  chime_task w;
  if (!q || chime_spawn(sleeper, NULL, &w) != 0) {
    free(q);
    return -ENOMEM;
  }
  q->fj = fj, q->tick = tick, q->fire = fire, q->lib_tick = ev->tick, q->waiter = w, q->manual = manual;
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
  if (won && fj->standing_by) {
    log_msg("info", "fleet", "job %s: the fleet runs this node's definition of it again: claims resume", fj->name);
    fj->standing_by = false;
  }
  if (won && rc == 0) {
    struct claim *c = claim_add(f, fj, C_CLAIMED, q->id, tick);
    if (c) {
      c->lib_tick = ev->tick, c->trust_until = q->sent + f->trust, c->fire = fire; /* a manual run's: no jitter */
      f->m.claims_won++;
      veto = 0;
    } else {
      claim_release(f, fj, q->id, "out of memory");
    }
  } else if (won) { /* the hold ended as the answer came */
    run_late(f, q);
    veto = -ETIMEDOUT;
  } else if (q->rc == 0 && (strcmp(q->status, "taken") == 0 || strcmp(q->status, "busy") == 0)) {
    f->m.claims_lost++;
  } else if (q->rc == 0 && strcmp(q->status, "overlap") == 0) {
    veto = VETO_OVERLAP;
  } else if (q->rc == 0 && strcmp(q->status, "queued") == 0) {
    veto = VETO_QUEUED;
  } else if (q->rc == 0 && strcmp(q->status, "paused") == 0) {
    veto = VETO_PAUSED;
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

/* ---- pause, resume, trigger --------------------------------------------------------------- */

void fleet_paused_is(struct fleet *f, struct fleet_job *fj, chime_ns since, bool say) {
  bool was = fj->paused_at != 0;
  fj->paused_at = since;
  if (!fj->job || fj->job->retired) return;
  if (fj->job->paused && !since) /* a pause this node kept before the job was the fleet's goes */
    recorder_pause(f->r->rec, fj->name, false, chime_wall_now());
  if (fj->job->paused != (since != 0) && control_set_paused(f->r, fj->name, since) != 0)
    log_msg("error", "fleet", "job %s: out of memory keeping its pause", fj->name);
  if (say && was != (since != 0))
    log_msg("info", since ? "pause" : "resume", "job %s: %s", fj->name,
            since ? "paused on every node of the fleet (chime pause on another node): its ticks are skipped"
                  : "resumed on every node of the fleet (chime resume on another node)");
}

void fleet_last_run(struct fleet_job *fj, const char *name, chime_ns started, chime_ns ended, int exit_code) {
  struct job_status *st = fj->job && !fj->job->retired ? &fj->job->status : NULL;
  outcome o = strcmp(name, "lost") == 0 ? OUTCOME_LEASE_LOST : outcome_named(name);
  if (!st || o == OUTCOME_COUNT || ended <= st->last_end) return;
  st->last_outcome = o, st->last_start = started, st->last_end = ended, st->last_exit = exit_code;
  if (o == OUTCOME_OK) st->last_ok = ended;
  else st->last_failure = ended;
}

int fleet_pause(struct fleet *f, struct job *j, bool pause, chime_ns *since, char *by, size_t size) {
  *since = 0, by[0] = '\0';
  if (!f->m.db_up) return -ENOTCONN;
  struct pausereq *q = calloc(1, sizeof *q);
  chime_task w;
  if (!q || chime_spawn(sleeper, NULL, &w) != 0) return free(q), -ENOMEM;
  q->fj = j->fleet, q->pause = pause, q->waiter = w;
  struct pausereq **tail = &f->pauses; /* in the order asked */
  while (*tail) tail = &(*tail)->next;
  *tail = q;
  wake_db(f);
  if (chime_join_until(w, chime_now() + 2 * f->query_max, NULL) != 0) { /* no answer in time, or cancelled */
    chime_cancel(w);
    chime_join(w, NULL);
  }
  if (!q->answered) {
    q->abandoned = true; /* the connection's task frees it */
    return -ETIMEDOUT;
  }
  int rc = q->rc ? q->rc
           : strcmp(q->status, "already") == 0 ? -EALREADY
           : strcmp(q->status, "unknown") == 0 ? -EAGAIN
                                                : 0;
  *since = q->since;
  snprintf(by, size, "%s", q->by);
  free(q);
  return rc;
}

const char *fleet_trigger_refused(const struct fleet *f, const struct job *j) {
  if (!f->m.db_up && !j->fleet->run_local)
    return "the fleet's database is unreachable: the run could not be kept to one across the fleet "
           "(a job with on_db_down = run_local runs here)";
  if (f->m.db_up && f->m.skewed) return "this node's clock is off the database's by more than fleet_max_skew";
  if (f->m.db_up && !j->fleet->defined) return "its definition is not in the fleet's database yet: try again";
  return NULL;
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
  for (const struct fleet_job *old = f->jobs; old; old = old->next) /* newest first: a reload's job keeps the */
    if (strcmp(old->name, fj->name) == 0) {                          /* fleet's pause as last heard */
      fj->paused_at = old->paused_at;
      break;
    }
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
  f->start_delay = min_ns(f->lease / 12, CHIME_SEC(1));
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
  while (f->pauses) {
    struct pausereq *q = f->pauses;
    f->pauses = q->next;
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
  if (chime_spawn(fleet_db_main, f, &f->db_task) == 0) f->db_live = true;
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
  if (!f->m.db_up) db_say_down(f, f->last_why[0] ? f->last_why : "no answer yet");
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
  if (f->recs) frec_spill(f); /* what the database did not take */
  if (f->nrecs || f->recs_lost)
    log_msg("error", "fleet", "%zu record(s) could not be kept for the fleet's history, %llu lost", f->nrecs,
            f->recs_lost);
  if (f->pg) fleet_db_leave(f); /* the name is free at once */
  if (f->trust_live) chime_cancel(f->trust_task), chime_join(f->trust_task, NULL);
  f->trust_live = false;
  guard_stop(&f->guard); /* every run has ended: the guard exits now, not at the end of the shutdown's grace */
}

struct fleet_metrics fleet_metrics(const struct fleet *f) {
  struct fleet_metrics m = f->m;
  m.records_waiting = f->nrecs + f->outbox_count;
  return m;
}
