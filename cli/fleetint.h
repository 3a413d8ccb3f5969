/* fleetint.h - what the two halves of a fleet node share: fleet.c (the
 * jobs' side: the veto, the events, the leases held and their trust
 * window) and fleetdb.c (the connection's task: claims, heartbeats,
 * records).  Private to them. */
#ifndef CHIME_CLI_FLEETINT_H
#define CHIME_CLI_FLEETINT_H

#include <chime.h>
#include <stdbool.h>
#include <stdint.h>

#include "fleet.h"
#include "guard.h"
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
  chime_ns define_after; /* the database refused it: sent again after this (loop clock) */
  bool define_sent;
  bool caught_up;        /* its catch-up was looked for since the last connection */
  bool standing_by;      /* the fleet has another definition: said once; its ticks are still asked for (the fleet's
                            definition may come back to this one), and refused */
  chime_ns watermark;    /* as the database last said */
  chime_ns paused_at;    /* the fleet's pause (chime pause on any node), as the last heartbeat said; 0: none */
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
  chime_ns started_at; /* its child started then (loop clock), its start not recorded yet; 0 */
  chime_ns db_started, db_ended; /* its child's start and its end, on the database's clock (0: not yet) */
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
  bool manual;       /* chime trigger: a run now, its tick the instant it was asked for */
  bool internal;     /* asked by the connection's task itself (a catch-up): no veto waits */
  chime_task waiter; /* the veto's sleeper */
  bool answered, abandoned;
  int rc;            /* 0, or a negative errno: no answer */
  char status[16];
  int64_t id, old_watermark;
  char def_node[JOB_NAME_MAX + 1];
  chime_ns sent;     /* loop clock, when its batch was sent */
};

/* chime pause or resume of a shared job, asked of the connection's task
 * by the control socket's task, which waits for the answer as a veto
 * waits for its claim's. */
struct pausereq {
  struct pausereq *next;
  struct fleet_job *fj;
  bool pause;
  chime_task waiter;
  bool answered, abandoned;
  int rc;
  char status[16];  /* paused, resumed, already, unknown */
  chime_ns since;   /* the pause's, on the database's clock (0: none) */
  char by[JOB_NAME_MAX + 1];
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
  chime_ns start_delay;     /* a run's start is recorded once it has gone on this long */
  char outbox_path[4096];
  struct outbox *ob;
  bool outbox_full;         /* there may be records in the outbox */
  size_t outbox_count;      /* records this daemon put there and has not sent yet (an earlier run's: once taken) */
  struct guard guard;
  chime_ns guard_sent;
  struct fleet_metrics m;
  struct observer obs;
  /* the connection and its task */
  struct pg *pg;
  chime_task db_task, trust_task, idle;
  bool db_live, trust_live, idle_live;
  bool woken;               /* work came since the round began (wake_db): no idling before the next */
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
  struct pausereq *pauses;
  struct frec *recs, **recs_tail;
  size_t nrecs;
  unsigned long long recs_lost;
};

/* ---- small things ------------------------------------------------------------------------ */

static inline uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

static inline uint64_t fnv(const char *s, uint64_t h) {
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) h = (h ^ *p) * 0x100000001b3ull;
  return h;
}

static inline chime_ns min_ns(chime_ns a, chime_ns b) { return a < b ? a : b; }

/* The grid point of an interval job nearest to D (db wall ns). */
static inline chime_ns grid_round(const struct fleet_job *fj, chime_ns d) {
  chime_ns k = (d - fj->offset + fj->every / 2) / fj->every;
  return k * fj->every + fj->offset;
}

/* The first grid point after d. */
static inline chime_ns grid_after(const struct fleet_job *fj, chime_ns d) {
  chime_ns k = (d - fj->offset) / fj->every + 1;
  return k * fj->every + fj->offset;
}

/* A tick's jitter: the same on every node. */
static inline chime_ns jitter_of(const struct fleet_job *fj, chime_ns tick) {
  if (!fj->jitter) return 0;
  return (chime_ns)(mix64(fnv(fj->name, 0xcbf29ce484222325ull) ^ (uint64_t)tick) % ((uint64_t)fj->jitter + 1));
}

/* The database's wall clock now, as this node knows it. */
static inline chime_ns db_now(const struct fleet *f) { return chime_now() + f->mono_to_db; }

/* The fleet's tick of a library tick. */
static inline chime_ns tick_id(const struct fleet *f, const struct fleet_job *fj, chime_ns lib_tick) {
  return fj->calendar ? lib_tick : grid_round(fj, lib_tick + f->mono_to_db);
}

/* A library tick for the fleet's tick (to trigger it). */
static inline chime_ns lib_tick_of(const struct fleet *f, const struct fleet_job *fj, chime_ns tick) {
  return fj->calendar ? tick : tick - f->mono_to_db;
}

/* Work for the connection's task: it ends its idling, or does not begin
 * it (the work came while a round was out).  While there is no
 * connection, only stopping ends the back-off: reconnecting at every
 * record would be a busy loop. */
static inline void wake_db(struct fleet *f) {
  f->woken = true;
  if (f->idle_live && (f->pg || f->stopping)) chime_cancel(f->idle);
}

/* fleet.c: records queued for the connection's task, the claims held. */
struct frec *frec_new(int op, const char *job);
void frec_put(struct fleet *f, struct frec *r);
void claim_release(struct fleet *f, struct fleet_job *fj, int64_t id, const char *why);
struct claim *claim_add(struct fleet *f, struct fleet_job *fj, int state, int64_t id, chime_ns tick);
void claim_drop(struct fleet *f, struct claim *c);
void claim_stop(struct fleet *f, struct claim *c, outcome why, const char *msg);
void leases_guard(struct fleet *f);
/* The fleet's pause of fj, as the database said (0: none); a change is
 * said in the log when `say` (another node asked for it). */
void fleet_paused_is(struct fleet *f, struct fleet_job *fj, chime_ns since, bool say);
/* The latest run of fj ended on any node (its outcome's name in the
 * fleet's history): the job's status shows it when it is newer than the
 * latest this node saw end. */
void fleet_last_run(struct fleet_job *fj, const char *outcome, chime_ns started, chime_ns ended, int exit_code);

/* fleetdb.c: the connection's task (a chime task: fleet_start spawns it);
 * a round trip's clock sample; the log line of the database gone; the
 * records in memory put in the outbox; the node's name let go. */
int fleet_db_main(void *fleet);
void clock_sample(struct fleet *f, chime_ns wall0, chime_ns mono0, chime_ns wall1, chime_ns mono1, chime_ns db);
void db_say_down(struct fleet *f, const char *why);
void frec_spill(struct fleet *f);
void fleet_db_leave(struct fleet *f);
/* A tick won after its hold ended: run it all the same, triggered. */
void run_late(struct fleet *f, struct claimreq *q);

#endif
