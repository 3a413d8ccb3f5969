/* jobs.h - the jobs layer: periodic jobs (periodic.c), the schedules they
 * follow (intervals there, calendars in calendar.c), their events, veto
 * and triggers.
 *
 * A job is an object of kind CHIME__JOB in the loop's slabs: 64 bytes it
 * touches from its creation (struct chime__job), and a side record
 * (struct chime__job_side) it touches from its first tick: statistics and
 * the policies' state.  Everything jobs made alike have in common (target,
 * options, name, group, schedule) is in a shared, immutable spec.
 */
#ifndef CHIME_JOBS_H
#define CHIME_JOBS_H

#include "loop.h"

#define CHIME__JOB 2

struct chime__job;
struct chime__spec;

/* A kind of schedule: when ticks are, on which clock.  A tick is an
 * instant of the schedule's own clock: the monotonic one for intervals,
 * the wall clock for calendars. */
struct chime__sched {
  /* Now, on the schedule's clock, given the monotonic clock's reading. */
  chime_ns (*now)(const chime_loop *loop, chime_ns mono);
  /* An instant of the schedule's clock on the monotonic clock, and on the
   * wall clock, as the clocks stand now. */
  chime_ns (*to_mono)(const chime_loop *loop, chime_ns t);
  chime_ns (*to_wall)(const chime_loop *loop, chime_ns t);
  /* The first tick strictly after tick t of a job of spec s (and, for an
   * interval, `interval`), or CHIME_NEVER. */
  chime_ns (*after)(const struct chime__spec *s, chime_ns interval, chime_ns t);
  /* From tick t on, steps over the ticks <= limit: stores how many in
   * *count (a calendar counts up to a cap, then jumps) and the last of
   * them in *last, and returns the first tick after limit, or
   * CHIME_NEVER. */
  chime_ns (*skip)(const struct chime__spec *s, chime_ns interval, chime_ns t, chime_ns limit, uint64_t *count,
                   chime_ns *last);
};

extern const struct chime__sched chime__interval_sched;

/* The options of a job that matter after it was created, without padding
 * (every byte is a field, so that memcmp compares settings). */
struct chime__settings {
  chime_ns jitter, timeout, backoff_base, backoff_max, until, window, veto_timeout;
  uint64_t max_runs;
  void (*dtor)(void *arg);
  void (*on_event)(const chime_event *ev);
  int (*veto)(const chime_event *tick);
  uint32_t max_catch_up;
  uint16_t max_concurrent;
  uint8_t schedule, missed, overlap, on_error;
  uint8_t zero[6]; /* explicit padding, always 0 */
};

/* The coalescing steps, coarsest first: a job's window chooses the
 * coarsest that fits in it (periodic.c), and its runs wait for the next
 * multiple of that step (tick.c). */
#define CHIME__STEPS(X)                                                                                                \
  X(CHIME_MIN(1))                                                                                                      \
  X(CHIME_SEC(10)) X(CHIME_SEC(1)) X(CHIME_MS(250)) X(CHIME_MS(100)) X(CHIME_MS(10)) X(CHIME_MS(1)) X(CHIME_US(500))   \
      X(CHIME_US(250)) X(CHIME_US(100)) X(CHIME_US(10))

/* x modulo a step of CHIME__STEPS: each a division by a constant, which
 * the compiler makes a multiplication, where dividing by a variable costs
 * 30 to 90 cycles (two of them were 5% of scale's CPU). */
static inline uint64_t chime__mod_step(uint64_t x, chime_ns step) {
  switch (step) {
#define CHIME__MOD_CASE(v)                                                                                             \
  case (v): return x % (uint64_t)(v);
    CHIME__STEPS(CHIME__MOD_CASE)
#undef CHIME__MOD_CASE
  default: return x % (uint64_t)step;
  }
}

/* What jobs share: target, options, name, group, schedule.  Immutable once
 * made and reference-counted; jobs created with equal settings share one
 * (the loop keeps the last one made), and changing a job's name or group
 * gives it a copy. */
struct chime__spec {
  uint32_t refs;
  chime_fn target;
  struct chime__settings opts;
  chime_group *group;                /* the group that owns the jobs, or NULL */
  chime_ns step, phase;              /* coalescing boundaries: phase + k * step (step 0: none) */
  const struct chime__sched *sched;  /* interval or calendar */
  chime_cron_expr *cron;             /* calendar jobs: their expression (the spec's own copy) */
  const chime_tz *tz;                /* calendar jobs: their zone (the loop's, calendar.c) */
  char name[32];
};

enum chime__job_state {
  CHIME__JOB_ACTIVE = 1, /* ticking */
  CHIME__JOB_STOPPING,   /* no more ticks; runs still going */
  CHIME__JOB_DONE,       /* ended: dtor called, record kept for its handle */
};

enum chime__job_flag {
  /* CHIME__CANCELLED, CHIME__HANDLE, CHIME__JOINED as every kind */
  CHIME__J_DUE = 1u << 4,     /* in the due queue (its timer fields are the links) */
  CHIME__J_QUEUED = 1u << 5,  /* a tick waits for the run going (CHIME_OVERLAP_QUEUE) */
  CHIME__J_CATCHUP = 1u << 6, /* the next tick is already due: armed when the run returns */
  CHIME__J_SIDE = 1u << 7,    /* the side record is this job's (cleared at first use) */
  CHIME__J_WAITERS = 1u << 8, /* triggered ticks wait for the runs going (queue) */
  CHIME__J_HALT = 1u << 9,    /* stopped by a call (chime_every_stop): ticks decided before do not run */
};

/* A periodic job: 64 bytes, and 4 in a wheel slot, all its creation
 * touches. */
struct chime__job {
  struct chime__obj o;      /* gen, kind, state (chime__job_state), flags, timer (the next tick) */
  struct chime__spec *spec; /* shared settings */
  void *arg;
  chime_ns interval; /* interval jobs: the interval (calendar jobs: 0) */
  chime_ns tick;     /* the next tick to handle, on the schedule's clock */
  int32_t result;    /* the join result, once stopping */
  uint8_t running;   /* runs going (at most 255: max_concurrent) */
  uint8_t failures;  /* failed runs in a row (CHIME_ERROR_BACKOFF), saturating */
  uint16_t pins;     /* the library's references: a tick being handled, held, or triggered */
};

/* What a job needs once it ticks: its side record.  Counters saturate. */
struct chime__job_side {
  uint64_t runs;
  uint64_t triggered; /* of them, triggered ticks' (which max_runs does not count) */
  uint32_t errors, timeouts;
  uint32_t skipped_overlap, skipped_missed, skipped_backoff, skipped_vetoed;
  uint16_t catch_up; /* catch-up runs in a row (CHIME_MISSED_BURST) */
  chime_ns last_late, max_late, last_duration, max_duration;
};

/* The jobs of a loop: the jobs module's state. */
struct chime__jobs {
  struct chime__task *runner;       /* runs due jobs inline; NULL until needed */
  struct chime__tlist runner_list;  /* the runner, while it is one */
  struct chime__job *due_head;      /* jobs whose tick fired, oldest first */
  struct chime__job *due_tail;
  struct chime__tlist runs;         /* runs that suspended, holds, triggered ticks */
  struct chime__spec *spec_cache;   /* the last spec made */
  chime_ns perturb;                 /* phase of the loop's coalescing boundaries */
};

/* A run (or a tick held by the veto): it lives on its task's stack, which
 * points at it (owner_data). */
struct chime__run {
  chime_ns tick;   /* the tick it is for */
  chime_ns late;   /* how late it started */
  chime_ns start;  /* when it started (monotonic) */
  uint64_t number; /* its number in the job (0 until it starts) */
  bool triggered;  /* it came from chime_every_trigger */
};

/* periodic.c: the loop's jobs (attached with the first job). */
struct chime__jobs *chime__jobs_of(const chime_loop *loop);
/* No more ticks; the job ends when its last run has returned (callers
 * then call chime__maybe_finish, last: the job may be freed). */
void chime__job_stop(chime_loop *loop, struct chime__job *j, int result);
void chime__job_finish(chime_loop *loop, struct chime__job *j);
static inline void chime__maybe_finish(chime_loop *loop, struct chime__job *j) {
  if (j->o.state == CHIME__JOB_STOPPING && !j->running && !j->pins) chime__job_finish(loop, j);
}
/* Cancels the runs, holds and triggered ticks of j (reason flags why). */
void chime__cancel_runs(chime_loop *loop, struct chime__job *j, uint16_t why);
/* A run has ended: the first triggered tick waiting for its turn goes. */
void chime__wake_trigger(chime_loop *loop, struct chime__job *j);

/* tick.c: the life of a tick. */
/* Whether a call halted the job (cancelled or stopped it) since its tick
 * began: what was decided then no longer runs. */
bool chime__job_halted(const struct chime__job *j);
/* One tick t skipped (overlap or vetoed): counted and told of. */
void chime__job_skipped(chime_loop *loop, struct chime__job *j, chime_skip_reason reason, chime_ns t, int result,
                        bool triggered);
struct chime__job_side *chime__job_side(struct chime__job *j);
/* An instant of the job's clock on the monotonic clock (inline: every
 * tick of every job comes here). */
static inline chime_ns chime__tick_mono(const chime_loop *loop, const struct chime__spec *s, chime_ns t) {
  return s->sched == &chime__interval_sched ? t : s->sched->to_mono(loop, t);
}
/* When the tick t is planned to run: t plus its jitter, a function of the
 * loop's seed, the job's slot and t (the same whenever it is computed, and
 * different for every tick).  Saturates instead of overflowing. */
static inline chime_ns chime__planned(const chime_loop *loop, const struct chime__job *j, chime_ns t) {
  chime_ns jitter = j->spec->opts.jitter;
  if (!jitter) return t;
  uint64_t r = chime__mix64(loop->seed ^ chime__mix64(chime__obj_index(&j->o) ^ (uint64_t)t));
  return chime__after(t, (chime_ns)(r % ((uint64_t)jitter + 1)));
}
void chime__job_emit(chime_loop *loop, struct chime__job *j, const chime_event *ev);
void chime__emit_end(chime_loop *loop, struct chime__job *j, const struct chime__run *r, int result,
                     chime_outcome outcome, chime_ns end);
void chime__runner_ensure(chime_loop *loop, struct chime__jobs *js);
void chime__job_fired(chime_loop *loop, struct chime__obj *o);
void chime__job_disarm(chime_loop *loop, struct chime__job *j);
void chime__arm_or_stop(chime_loop *loop, struct chime__job *j, bool has_next);
void chime__job_handoff(chime_loop *loop, struct chime__task *t);
/* Runs tick r->tick now on the calling task, which holds a pin on the job
 * (released here): the veto first, then the target.  Returns the time it
 * ended. */
chime_ns chime__run(chime_loop *loop, struct chime__jobs *js, struct chime__task *self, struct chime__job *j,
                    struct chime__run *r, chime_ns now);

/* Creates a job (chime_every, chime_cron): `cron` (copied) and `tz` for a
 * calendar job, else NULL and the interval.  A refusal of the options
 * says why (chime__every_why). */
int chime__job_create(chime_loop *loop, chime_ns interval, chime_fn target, void *arg, const chime_every_opts *o,
                      chime_task *out, const chime_cron_expr *cron, const chime_tz *tz);
/* A calendar job's next tick may have moved with the wall clock: it takes
 * the earlier of the one it had and `w` (the first after the clock's new
 * reading). */
void chime__job_replan(chime_loop *loop, struct chime__job *j, chime_ns w);
/* Sets the reason chime_every_error gives ("" clears it). */
void chime__every_why(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* calendar.c */
extern const struct chime__sched chime__calendar_sched;

#endif
