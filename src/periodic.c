/* periodic.c - periodic jobs: chime_every, its policies and statistics.
 *
 * A job is a 128-byte record (struct chime__job) holding its timer entry,
 * its next tick and its statistics; everything jobs have in common (target,
 * destructor, options, name, group) is in a shared, immutable spec.
 *
 * Flow of a tick.  The job's timer fires at the tick's planned time (grid
 * time + jitter, moved to a coalescing boundary if the job has a window);
 * the loop puts the job on the due queue (its timer fields are the links
 * while it waits there).  The runner, one task per loop, takes due jobs in
 * order and handles each tick (tick()): it decides, by the overlap and
 * missed policies, whether the tick runs or is skipped, finds and arms the
 * next tick (next_tick()), and calls the target inline, on its own stack:
 * a run that returns without suspending costs no task, no stack and no
 * context switch.  If the target suspends, the runner becomes that run's
 * task (chime__runner_promote) and a new runner takes over the queue; when
 * the target returns, the run ends there and that task ends with it.
 *
 * When a run returns (run_end()): statistics, the error policy, and the
 * next tick for what waits on a run's end (fixed delay, a queued tick, a
 * catch-up tick, a back-off).  A job stops (no more ticks) when cancelled,
 * at a limit, or by CHIME_ERROR_STOP; it ends when its last run has
 * returned: its destructor runs, its joiner wakes, its group counts it.
 */
#include "internal.h"

#include <string.h>

/* No duration of a job may exceed this (about 73 years), so that a few of
 * them add to a deadline without overflow. */
#define MAX_DURATION ((chime_ns)1 << 61)

static uint32_t add_sat(uint32_t a, uint64_t b) { return b >= UINT32_MAX - a ? UINT32_MAX : a + (uint32_t)b; }

/* ---- specs ------------------------------------------------------------------ */

static void choose_step(const chime_loop *loop, struct chime__spec *s);
static void spec_put(struct chime__spec *s);

/* Whether the spec's name is `name` as it keeps it (cut to 31 bytes). */
static bool same_name(const struct chime__spec *s, const char *name) {
  return s->name[0] == name[0] && (!name[0] || strncmp(s->name, name, sizeof s->name - 1) == 0);
}

/* Whether the spec has this calendar (none, for interval jobs). */
static bool same_calendar(const struct chime__spec *s, const chime_cron_expr *cron, const chime_tz *tz) {
  return cron ? s->cron && s->tz == tz && chime__cron_equal(s->cron, cron) : !s->cron;
}

static bool spec_equal(const struct chime__spec *s, chime_fn target, const struct chime__settings *o, chime_group *g,
                       const char *name, const chime_cron_expr *cron, const chime_tz *tz) {
  return s->target == target && s->group == g && same_name(s, name) && memcmp(&s->opts, o, sizeof *o) == 0 &&
         same_calendar(s, cron, tz);
}

/* Whether settings s are what options o ask for: field by field, which is
 * cheaper than building settings from o to compare them whole. */
static bool settings_are(const struct chime__settings *s, const chime_every_opts *o) {
  return s->jitter == o->jitter && s->timeout == o->timeout && s->window == o->window && s->until == o->until &&
         s->max_runs == o->max_runs && s->dtor == o->dtor && s->backoff_base == o->backoff_base &&
         s->backoff_max == o->backoff_max && s->max_catch_up == o->max_catch_up &&
         s->max_concurrent == o->max_concurrent && s->schedule == (uint8_t)o->schedule &&
         s->missed == (uint8_t)o->missed && s->overlap == (uint8_t)o->overlap && s->on_error == (uint8_t)o->on_error;
}

/* A spec with these settings: the loop's last one if equal, else a new
 * one (which becomes the loop's last).  `o` must be normalised (zeroed,
 * then copied field by field, key and name NULL) so that memcmp compares
 * settings only. */
static struct chime__spec *spec_get(chime_loop *loop, chime_fn target, const struct chime__settings *o, chime_group *g,
                                    const char *name, const chime_cron_expr *cron, const chime_tz *tz) {
  struct chime__spec *s = loop->spec_cache;
  if (s && spec_equal(s, target, o, g, name, cron, tz)) {
    s->refs++;
    return s;
  }
  s = chime__malloc(sizeof *s);
  if (!s) return NULL;
  memset(s, 0, sizeof *s);
  if (cron && !(s->cron = chime__cron_dup(cron))) {
    chime__free(s);
    return NULL;
  }
  s->tz = tz;
  s->refs = 2; /* the caller's and the cache's */
  s->target = target;
  s->opts = *o;
  s->group = g;
  strncpy(s->name, name, sizeof s->name - 1);
  choose_step(loop, s);
  if (loop->spec_cache) spec_put(loop->spec_cache);
  loop->spec_cache = s;
  return s;
}

static void spec_put(struct chime__spec *s) {
  if (--s->refs) return;
  chime_cron_free(s->cron);
  chime__free(s);
}

/* ---- planning ----------------------------------------------------------- */

/* The job's handle, fixed for its life: seeds its jitter. */
static uint64_t job_id(const struct chime__job *j) { return chime__obj_handle(&j->o); }

/* When the tick at grid time t is planned to run: t plus its jitter, a
 * function of the loop's seed, the job and t (so it is the same whenever it
 * is computed, and different for every tick). */
static chime_ns planned(const chime_loop *loop, const struct chime__job *j, chime_ns t) {
  chime_ns jitter = j->spec->opts.jitter;
  if (!jitter) return t;
  return t + (chime_ns)(chime__mix64(loop->seed ^ chime__mix64(job_id(j) ^ (uint64_t)t)) % ((uint64_t)jitter + 1));
}

/* Coalescing (sd-event's): a job with a window runs at the first boundary
 * at or after its planned time, boundaries being the multiples of the
 * coarsest of these steps that fits in the window, shifted by the loop's
 * perturbation.  Any window as long as a step holds one of its boundaries,
 * so the run is never more than `window` late, and jobs with similar
 * windows wake the loop together.  The step and its phase depend only on
 * the window and the loop: the spec keeps them. */
static void choose_step(const chime_loop *loop, struct chime__spec *s) {
  static const chime_ns steps[] = {CHIME_MIN(1),  CHIME_SEC(10), CHIME_SEC(1), CHIME_MS(250),
                                   CHIME_MS(100), CHIME_MS(10),  CHIME_MS(1),  CHIME_US(500),
                                   CHIME_US(250), CHIME_US(100), CHIME_US(10)};
  s->step = s->phase = 0;
  for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++)
    if (steps[i] <= s->opts.window) {
      s->step = steps[i];
      s->phase = loop->perturb % steps[i];
      return;
    }
}

static void arm(chime_loop *loop, struct chime__job *j) {
  const struct chime__spec *s = j->spec;
  chime_ns at = planned(loop, j, j->due);
  if (s->step) at += (s->step - (at - s->phase) % s->step) % s->step; /* the first boundary >= at */
  chime__timers_add(&loop->timers, &j->o.timer, at > 0 ? at : 0);     /* (a calendar tick a jump left behind) */
}

/* ---- the due queue ------------------------------------------------------ */
/* While a job waits in it, its timer entry is not armed (pos & 3 == 0) and
 * its two fields link the queue: pos the next job (an 8-aligned pointer,
 * so its low bits stay 0), when the previous. */

static struct chime__job *due_next(const struct chime__job *j) { return (struct chime__job *)j->o.timer.pos; }
static struct chime__job *due_prev(const struct chime__job *j) {
  return (struct chime__job *)(uintptr_t)j->o.timer.when;
}

static void due_push(chime_loop *loop, struct chime__job *j) {
  j->o.flags |= CHIME__J_DUE;
  j->o.timer.pos = 0;
  j->o.timer.when = (chime_ns)(uintptr_t)loop->due_tail;
  if (loop->due_tail)
    loop->due_tail->o.timer.pos = (uintptr_t)j;
  else
    loop->due_head = j;
  loop->due_tail = j;
  if (loop->runner && loop->runner->o.state == CHIME__WAITING) chime__task_wake(loop, loop->runner, 0);
}

static void due_unlink(chime_loop *loop, struct chime__job *j) {
  struct chime__job *next = due_next(j), *prev = due_prev(j);
  if (prev)
    prev->o.timer.pos = (uintptr_t)next;
  else
    loop->due_head = next;
  if (next)
    next->o.timer.when = (chime_ns)(uintptr_t)prev;
  else
    loop->due_tail = prev;
  j->o.flags &= (uint16_t)~CHIME__J_DUE;
  j->o.timer.pos = 0;
  j->o.timer.when = 0;
}

void chime__job_fired(chime_loop *loop, struct chime__job *j) { due_push(loop, j); }

/* Takes the job's next tick out of the timers or the due queue. */
static void disarm(chime_loop *loop, struct chime__job *j) {
  if (j->o.flags & CHIME__J_DUE)
    due_unlink(loop, j);
  else
    chime__timers_del(&loop->timers, &j->o.timer);
}

/* ---- ending --------------------------------------------------------------- */

void chime__job_free(chime_loop *loop, struct chime__job *j) {
  spec_put(j->spec);
  chime__timers_unreserve(&loop->timers, 1);
  chime__obj_free(&loop->slabs, &j->o);
}

/* Wakes the task waiting in chime_join for j. */
static void wake_joiner(chime_loop *loop, struct chime__job *j) {
  struct chime__task *lists[2] = {loop->all_head, loop->runs};
  for (int i = 0; i < 2; i++)
    for (struct chime__task *t = lists[i]; t; t = t->next_all)
      if (t->wait == CHIME__WAIT_JOIN_JOB && t->wait_on == j) {
        chime__task_wake(loop, t, 0);
        return;
      }
}

/* The last run has returned: the job ends. */
static void job_finish(chime_loop *loop, struct chime__job *j) {
  j->o.state = CHIME__JOB_DONE;
  loop->ntasks--;
  if (j->spec->opts.dtor) j->spec->opts.dtor(j->arg);
  if (j->o.flags & CHIME__J_JOINED) wake_joiner(loop, j);
  if (j->spec->group) chime__group_job_done(loop, j->spec->group, chime__job_result(j));
  if (!(j->o.flags & CHIME__HANDLE)) chime__job_free(loop, j);
}

/* Cancels the runs of j that are going (each sees -ECANCELED). */
static void cancel_runs(chime_loop *loop, struct chime__job *j, uint16_t why) {
  for (struct chime__task *t = loop->runs; t; t = t->next_all)
    if (t->job == j) {
      t->o.flags |= why;
      chime__task_cancel(loop, t);
    }
  struct chime__task *r = loop->runner;
  if (r && r->job == j) {
    r->o.flags |= why;
    chime__task_cancel(loop, r);
  }
}

/* No more ticks; the job ends when its last run has returned (callers
 * then call maybe_finish, last: the job may be freed). */
static void job_stop(chime_loop *loop, struct chime__job *j, int result) {
  if (j->o.state != CHIME__JOB_ACTIVE) return;
  j->o.state = CHIME__JOB_STOPPING;
  disarm(loop, j);
  j->o.flags &= (uint16_t) ~(CHIME__J_QUEUED | CHIME__J_CATCHUP);
  j->due = result;
}

static void maybe_finish(chime_loop *loop, struct chime__job *j) {
  if (j->o.state == CHIME__JOB_STOPPING && !j->running) job_finish(loop, j);
}

void chime__job_cancel(chime_loop *loop, struct chime__job *j) {
  if (j->o.state == CHIME__JOB_DONE) return;
  j->o.flags |= CHIME__CANCELLED;
  if (j->o.state == CHIME__JOB_STOPPING) j->due = -ECANCELED;
  if (j->running) cancel_runs(loop, j, 0);
  job_stop(loop, j, -ECANCELED);
  maybe_finish(loop, j);
}

/* ---- ticks ------------------------------------------------------------------- */

/* Makes wall instant w (CHIME_NEVER: none) a calendar job's next tick, at
 * the wall clock's offset `off`; false if there is none. */
static bool cron_set(struct chime__job *j, chime_ns w, chime_ns off) {
  if (w == CHIME_NEVER) return false;
  j->interval = w;
  j->due = w - off;
  return true;
}

/* Arms the next tick (at j->due), or stops the job if it has none or if
 * `until` comes first. */
static void arm_or_stop(chime_loop *loop, struct chime__job *j, bool has_next) {
  const struct chime__settings *o = &j->spec->opts;
  if (!has_next || (o->until && planned(loop, j, j->due) >= o->until))
    job_stop(loop, j, 0);
  else
    arm(loop, j);
}

/* next_tick for a calendar job: the same, over the expression's instants
 * instead of a grid. */
static void cron_next_tick(chime_loop *loop, struct chime__job *j, chime_ns now, bool overlapped) {
  const struct chime__spec *s = j->spec;
  chime_ns off = chime__wall_offset(loop), wnow = now + off;
  chime_ns w = chime__cron_after(s->cron, s->tz, j->interval);
  if (w > wnow) {
    j->catch_up = 0;
  } else if (!overlapped && s->opts.missed == CHIME_MISSED_BURST && j->catch_up < s->opts.max_catch_up) {
    j->catch_up++;
    cron_set(j, w, off);
    j->o.flags |= CHIME__J_CATCHUP;
    return;
  } else {
    uint64_t passed;
    w = chime__cron_skip(s, w, wnow, &passed);
    if (overlapped)
      j->skipped_overlap = add_sat(j->skipped_overlap, passed);
    else
      j->skipped_missed = add_sat(j->skipped_missed, passed);
    j->catch_up = 0;
  }
  arm_or_stop(loop, j, cron_set(j, w, off));
}

/* The tick at grid time t is being handled at `now`: find the next one,
 * counting the grid points passed over (as overlap if they fell due while a
 * run was going, else as missed), and arm it, unless it must wait for the
 * run about to start to return. */
static void next_tick(chime_loop *loop, struct chime__job *j, chime_ns t, chime_ns now, bool overlapped) {
  const struct chime__settings *o = &j->spec->opts;
  if (o->schedule == CHIME_FIXED_DELAY) return; /* planned when the run returns */
  if (j->spec->cron) {
    cron_next_tick(loop, j, now, overlapped);
    return;
  }
  chime_ns iv = j->interval, next = t + iv;
  if (next > now) {
    j->catch_up = 0;
  } else if (!overlapped && o->missed == CHIME_MISSED_BURST && j->catch_up < o->max_catch_up) {
    j->catch_up++;
    j->due = next;
    j->o.flags |= CHIME__J_CATCHUP; /* armed when this run returns: runs back to back */
    return;
  } else {
    uint64_t passed = (uint64_t)((now - t) / iv); /* grid points in (t, now] */
    if (overlapped)
      j->skipped_overlap = add_sat(j->skipped_overlap, passed);
    else
      j->skipped_missed = add_sat(j->skipped_missed, passed);
    next = (!overlapped && o->missed == CHIME_MISSED_DELAY) ? now + iv : t + (chime_ns)(passed + 1) * iv;
    j->catch_up = 0;
  }
  j->due = next;
  arm_or_stop(loop, j, true);
}

static void run_end(chime_loop *loop, struct chime__job *j, int result, chime_ns start, chime_ns end, uint16_t flags);

/* Runs the tick at grid time t now, inline on the calling task (the run
 * was already counted in j->running).  Returns the time it ended. */
static chime_ns run(chime_loop *loop, struct chime__task *self, struct chime__job *j, chime_ns t, chime_ns now) {
  const struct chime__settings *o = &j->spec->opts;
  chime_fn target = j->spec->target;
  chime_ns late = now - planned(loop, j, t);
  j->runs++;
  j->last_late = late;
  if (late > j->max_late) j->max_late = late;
  if (o->max_runs && j->runs >= o->max_runs) job_stop(loop, j, 0);
  self->job = j;
  self->tick = t;
  self->deadline = o->timeout ? now + o->timeout : 0;
  int result = target(j->arg);
  chime_ns end = chime__now(loop);
  uint16_t flags = self->o.flags;
  self->job = NULL;
  self->deadline = 0;
  self->o.flags &= (uint16_t) ~(CHIME__CANCELLED | CHIME__SHIELDED | CHIME__TIMED_OUT | CHIME__REPLACED);
  run_end(loop, j, result, now, end, flags);
  return end;
}

/* Handles the tick of a job the runner took from the due queue.  `now` is
 * the clock's reading (the previous run's end, in a batch); returns the
 * reading after the tick: a run's end, or `now`. */
static chime_ns tick(chime_loop *loop, struct chime__task *self, struct chime__job *j, chime_ns now) {
  const struct chime__settings *o = &j->spec->opts;
  chime_ns t = j->due;
  bool queued = j->o.flags & CHIME__J_QUEUED;
  if (o->until && now >= o->until) {
    job_stop(loop, j, 0);
    maybe_finish(loop, j);
    return now;
  }
  if (j->spec->cron && !queued && !(j->o.flags & CHIME__J_CATCHUP)) {
    chime_ns at = j->interval - chime__wall_offset(loop);
    if (at > now) { /* early: the wall clock was slewed since (or set back) */
      j->due = at;
      arm(loop, j);
      return now;
    }
  }
  if (queued) { /* the tick that waited for the previous run: its turn */
    j->o.flags &= (uint16_t)~CHIME__J_QUEUED;
  } else if (j->running) {
    bool skip = false;
    switch (o->overlap) {
    case CHIME_OVERLAP_QUEUE:
      j->o.flags |= CHIME__J_QUEUED; /* waits for the run to return; nothing armed meanwhile */
      return now;
    case CHIME_OVERLAP_ALLOW: skip = j->running >= o->max_concurrent; break;
    case CHIME_OVERLAP_REPLACE: cancel_runs(loop, j, CHIME__REPLACED); break;
    default: skip = true; break;
    }
    if (skip) {
      j->skipped_overlap = add_sat(j->skipped_overlap, 1);
      next_tick(loop, j, t, now, false);
      return now;
    }
  }
  j->running++; /* before next_tick, which may stop the job: it must not end under this run */
  next_tick(loop, j, t, now, queued);
  return run(loop, self, j, t, now);
}

/* The back-off after `failures` failed runs in a row. */
static chime_ns backoff_delay(const struct chime__settings *o, unsigned failures) {
  chime_ns d = o->backoff_base;
  for (unsigned i = 1; i < failures && d < o->backoff_max; i++)
    d *= 2;
  return d < o->backoff_max ? d : o->backoff_max;
}

/* What a run's return decides about the next tick. */
static void after_run(chime_loop *loop, struct chime__job *j, chime_ns end, bool failed) {
  const struct chime__settings *o = &j->spec->opts;
  chime_ns not_before = failed && o->on_error == CHIME_ERROR_BACKOFF ? end + backoff_delay(o, j->failures) : 0;
  if (o->schedule == CHIME_FIXED_DELAY) {
    j->due = end + j->interval > not_before ? end + j->interval : not_before;
    arm_or_stop(loop, j, true);
    return;
  }
  if (not_before && j->due < not_before) { /* back off: skip the ticks before not_before */
    uint64_t k;
    bool has_next = true;
    disarm(loop, j);
    j->o.flags &= (uint16_t) ~(CHIME__J_QUEUED | CHIME__J_CATCHUP);
    j->catch_up = 0;
    if (j->spec->cron) {
      chime_ns off = chime__wall_offset(loop);
      has_next = cron_set(j, chime__cron_skip(j->spec, j->interval, not_before + off - 1, &k), off);
    } else {
      k = (uint64_t)((not_before - j->due + j->interval - 1) / j->interval);
      j->due += (chime_ns)k * j->interval;
    }
    j->skipped_backoff = add_sat(j->skipped_backoff, k);
    arm_or_stop(loop, j, has_next);
    return;
  }
  if (j->o.flags & CHIME__J_QUEUED) {
    due_push(loop, j); /* the waiting tick runs now */
  } else if (j->o.flags & CHIME__J_CATCHUP) {
    j->o.flags &= (uint16_t)~CHIME__J_CATCHUP;
    arm(loop, j); /* already due: runs in the next round */
  }
}

static void run_end(chime_loop *loop, struct chime__job *j, int result, chime_ns start, chime_ns end, uint16_t flags) {
  const struct chime__settings *o = &j->spec->opts;
  chime_ns took = end - start;
  j->running--;
  j->last_duration = took;
  if (took > j->max_duration) j->max_duration = took;
  if (flags & CHIME__TIMED_OUT) j->timeouts = add_sat(j->timeouts, 1);
  bool failed = result < 0 && !(flags & CHIME__REPLACED) && !(j->o.flags & CHIME__CANCELLED);
  if (failed) j->errors = add_sat(j->errors, 1);
  if (j->o.state == CHIME__JOB_ACTIVE) {
    if (failed && o->on_error == CHIME_ERROR_STOP) {
      job_stop(loop, j, result);
    } else {
      if (failed && j->failures < UINT8_MAX) j->failures++;
      if (!failed) j->failures = 0;
      after_run(loop, j, end, failed);
    }
  }
  maybe_finish(loop, j);
}

/* ---- the runner ------------------------------------------------------------ */

static struct chime__job *due_pop(chime_loop *loop) {
  struct chime__job *j = loop->due_head;
  if (j) due_unlink(loop, j);
  return j;
}

static int runner_main(void *arg) {
  chime_loop *loop = arg;
  struct chime__task *self = loop->cur;
  /* One clock reading per run: a run's end is the next one's start. */
  chime_ns now = chime__now(loop);
  for (unsigned n = 1;; n++) {
    struct chime__job *j = due_pop(loop);
    if (!j) {
      chime__task_wait(loop, CHIME__WAIT_RUNNER, NULL, NULL, CHIME_NEVER);
      now = chime__now(loop);
      continue;
    }
    now = tick(loop, self, j, now);
    if (self != loop->runner) return 0; /* promoted: that run has returned; this task ends */
    if (n % 64 == 0) {                  /* let the other tasks run */
      chime_yield();
      now = chime__now(loop);
    }
  }
}

int chime__runner_ensure(chime_loop *loop) {
  if (loop->runner || !loop->due_head) return 0;
  return chime__task_spawn_internal(loop, runner_main, loop, &loop->runner);
}

void chime__runner_promote(chime_loop *loop, struct chime__task *t) {
  loop->runner = NULL;
  t->o.flags |= CHIME__RUN;
  t->prev_all = NULL;
  t->next_all = loop->runs;
  if (loop->runs) loop->runs->prev_all = t;
  loop->runs = t;
  chime__runner_ensure(loop); /* the jobs still due go on at once (-ENOMEM: next round) */
}

/* ---- the shutdown --------------------------------------------------------- */

static void cancel_one(struct chime__obj *o, void *ctx) {
  void **c = ctx;
  struct chime__job *j = (struct chime__job *)o;
  if (!c[1] || j->spec->group == c[1]) chime__job_cancel(c[0], j);
}

void chime__jobs_cancel(chime_loop *loop, chime_group *only) {
  void *ctx[2] = {loop, only};
  chime__slabs_each(&loop->slabs, CHIME__CLASS_JOB, cancel_one, ctx);
}

static void abandon_one(struct chime__obj *o, void *ctx) {
  void **c = ctx;
  chime_loop *loop = c[0];
  struct chime__job *j = (struct chime__job *)o;
  if (o->state == CHIME__JOB_DONE) return;
  if (c[1]) {
    chime_report *r = c[1];
    r->abandoned++;
    chime__report_name(r, j->spec->name);
  }
  disarm(loop, j);
  if (o->state == CHIME__JOB_ACTIVE) j->due = -ECANCELED;
  o->state = CHIME__JOB_STOPPING;
  j->running = 0;
  job_finish(loop, j);
}

void chime__jobs_abandon(chime_loop *loop, chime_report *report) {
  while (loop->runs)
    chime__task_abandon(loop, loop->runs);
  if (loop->runner) chime__task_abandon(loop, loop->runner);
  void *ctx[2] = {loop, report};
  chime__slabs_each(&loop->slabs, CHIME__CLASS_JOB, abandon_one, ctx);
}

static void release_one(struct chime__obj *o, void *ctx) {
  (void)ctx;
  spec_put(((struct chime__job *)o)->spec);
}

void chime__specs_release(chime_loop *loop) {
  /* jobs whose handles were never joined still hold their specs */
  chime__slabs_each(&loop->slabs, CHIME__CLASS_JOB, release_one, NULL);
  if (loop->spec_cache) spec_put(loop->spec_cache);
  loop->spec_cache = NULL;
}

/* ---- names and groups: a copy of the spec --------------------------------- */

static int respec(chime_loop *loop, struct chime__job *j, chime_group *g, const char *name) {
  struct chime__spec *old = j->spec, *s = spec_get(loop, old->target, &old->opts, g, name, old->cron, old->tz);
  if (!s) return -ENOMEM;
  j->spec = s;
  spec_put(old);
  return 0;
}

int chime__job_set_name(chime_loop *loop, struct chime__job *j, const char *name) {
  return respec(loop, j, j->spec->group, name ? name : "");
}

int chime__job_set_group(chime_loop *loop, struct chime__job *j, chime_group *g) {
  return respec(loop, j, g, j->spec->name);
}

/* ---- creation --------------------------------------------------------------- */

static bool bad_duration(chime_ns d) { return d < 0 || d > MAX_DURATION; }

_Static_assert(sizeof(struct chime__settings) == 80, "settings have no implicit padding");

/* Checks the options (and the interval of an interval job, `calendar`
 * false).  `now` is needed (and read) only when o->until is set. */
static int check_opts(const chime_every_opts *o, chime_ns interval, chime_ns now, bool calendar) {
  if (!calendar && (interval <= 0 || interval > MAX_DURATION)) return -EINVAL;
  if ((unsigned)o->schedule > CHIME_FIXED_DELAY || (unsigned)o->start > CHIME_START_AT ||
      (unsigned)o->missed > CHIME_MISSED_DELAY || (unsigned)o->overlap > CHIME_OVERLAP_REPLACE ||
      (unsigned)o->on_error > CHIME_ERROR_BACKOFF)
    return -EINVAL;
  if (bad_duration(o->jitter) || bad_duration(o->spread) || bad_duration(o->timeout) || bad_duration(o->window) ||
      bad_duration(o->backoff_base) || bad_duration(o->backoff_max))
    return -EINVAL;
  /* each policy's parameter with its policy, and only then */
  if ((o->missed == CHIME_MISSED_BURST) != (o->max_catch_up > 0) || o->max_catch_up > UINT16_MAX) return -EINVAL;
  if ((o->overlap == CHIME_OVERLAP_ALLOW) != (o->max_concurrent > 0) || o->max_concurrent > UINT8_MAX) return -EINVAL;
  if (o->on_error == CHIME_ERROR_BACKOFF ? (o->backoff_base <= 0 || o->backoff_max < o->backoff_base)
                                         : (o->backoff_base || o->backoff_max))
    return -EINVAL;
  if ((o->start == CHIME_START_AT) ? o->start_at < 0 : o->start_at != 0) return -EINVAL;
  if (o->schedule == CHIME_FIXED_DELAY && (o->missed != CHIME_MISSED_SKIP || o->overlap != CHIME_OVERLAP_SKIP))
    return -EINVAL;
  if ((o->spread > 0) != (o->key != NULL)) return -EINVAL;
  if (o->until && o->until <= now) return -EINVAL;
  if (o->until < 0 || o->start_at > CHIME_NEVER - 2 * MAX_DURATION) return -EINVAL;
  return 0;
}

/* The settings of options o (checked). */
static struct chime__settings settings_of(const chime_every_opts *o) {
  return (struct chime__settings){.jitter = o->jitter,
                                  .timeout = o->timeout,
                                  .backoff_base = o->backoff_base,
                                  .backoff_max = o->backoff_max,
                                  .until = o->until,
                                  .window = o->window,
                                  .max_runs = o->max_runs,
                                  .dtor = o->dtor,
                                  .max_catch_up = o->max_catch_up,
                                  .max_concurrent = (uint16_t)o->max_concurrent,
                                  .schedule = (uint8_t)o->schedule,
                                  .missed = (uint8_t)o->missed,
                                  .overlap = (uint8_t)o->overlap,
                                  .on_error = (uint8_t)o->on_error,
                                  .zero = {0}};
}

/* The stable offset of a key in [0, spread]. */
static chime_ns spread_of(const char *key, chime_ns spread) {
  uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
  for (const unsigned char *p = (const unsigned char *)key; *p; p++)
    h = (h ^ *p) * 0x100000001b3ull;
  return (chime_ns)(chime__mix64(h) % ((uint64_t)spread + 1));
}

int chime_every(chime_ns interval, chime_fn target, void *arg, const chime_every_opts *opts, chime_task *out) {
  chime_loop *loop = chime__tls_loop;
  if (!loop) return -EPERM;
  if (!target || (opts && opts->tz)) return -EINVAL; /* a zone is for calendar jobs */
  return chime__job_create(loop, interval, target, arg, opts, out, NULL, NULL);
}

int chime__job_create(chime_loop *loop, chime_ns interval, chime_fn target, void *arg, const chime_every_opts *opts,
                      chime_task *out, const chime_cron_expr *cron, const chime_tz *tz) {
  static const chime_every_opts defaults;
  const chime_every_opts *o = opts ? opts : &defaults;
  /* the clock is read only when the options need it */
  chime_ns now = o->start != CHIME_START_AT || o->until || cron ? chime__now(loop) : 0;
  int rc = check_opts(o, interval, now, cron != NULL);
  if (rc) return rc;
  chime_ns off = 0, first = 0;
  if (cron) { /* the first tick: no need to go further if there is none */
    off = chime__wall_offset(loop);
    if ((first = chime__cron_after(cron, tz, now + off)) == CHIME_NEVER) return -ERANGE;
  }
  const char *name = o->name ? o->name : "";
  struct chime__spec *s = loop->spec_cache;
  if (s && s->target == target && !s->group && same_name(s, name) && settings_are(&s->opts, o) &&
      same_calendar(s, cron, tz)) {
    s->refs++; /* made the same way as the last job: the usual case */
  } else {
    struct chime__settings n = settings_of(o);
    char copy[32] = "";
    strncpy(copy, name, sizeof copy - 1);
    s = spec_get(loop, target, &n, NULL, copy, cron, tz);
    if (!s) return -ENOMEM;
  }
  struct chime__job *j = (struct chime__job *)chime__obj_alloc(&loop->slabs, CHIME__CLASS_JOB);
  if (!j) {
    spec_put(s);
    return -ENOMEM;
  }
  if (chime__timers_reserve(&loop->timers, 1)) {
    spec_put(s);
    chime__obj_free(&loop->slabs, &j->o);
    return -ENOMEM;
  }
  j->o.kind = CHIME__JOB;
  j->o.state = CHIME__JOB_ACTIVE;
  j->o.flags = out ? CHIME__HANDLE : 0;
  j->spec = s;
  j->arg = arg;
  j->interval = interval;
  if (cron)
    cron_set(j, first, off);
  else
    j->due = (o->start == CHIME_START_AT    ? o->start_at
              : o->start == CHIME_START_NOW ? now
                                            : now + interval) +
             (o->spread ? spread_of(o->key, o->spread) : 0);
  loop->ntasks++;
  if (out) out->id = chime__obj_handle(&j->o);
  if (loop->shutting_down) {
    chime__job_cancel(loop, j);
  } else {
    arm_or_stop(loop, j, true);
    maybe_finish(loop, j);
  }
  return 0;
}

/* ---- wall-clock jumps ---------------------------------------------------------- */

/* A calendar job waiting for its next tick takes the earlier of that tick
 * and the first after the wall clock's new reading. */
static void wall_moved(struct chime__obj *o, void *ctx) {
  chime_loop *loop = ctx;
  struct chime__job *j = (struct chime__job *)o;
  if (o->state != CHIME__JOB_ACTIVE || !j->spec->cron || !chime__timer_armed(&o->timer))
    return;
  chime_ns off = chime__wall_offset(loop), w = chime__cron_after(j->spec->cron, j->spec->tz, chime__now(loop) + off);
  chime__timers_del(&loop->timers, &o->timer);
  cron_set(j, w < j->interval ? w : j->interval, off);
  arm_or_stop(loop, j, true);
  maybe_finish(loop, j);
}

void chime__jobs_wall_moved(chime_loop *loop) { chime__slabs_each(&loop->slabs, CHIME__CLASS_JOB, wall_moved, loop); }

/* ---- statistics ------------------------------------------------------------- */

int chime_tick(chime_ns *tick) {
  chime_loop *loop = chime__tls_loop;
  struct chime__task *self = loop ? loop->cur : NULL;
  if (!self || !self->job || !tick) return -EPERM;
  *tick = self->tick;
  return 0;
}

/* The job a handle names: chime__handle_lookup's, and -EINVAL for a task. */
static int job_of(chime_task h, chime_loop **loop, struct chime__job **j) {
  struct chime__obj *o;
  int rc = chime__handle_lookup(h, loop, &o);
  if (rc == 0 && o->kind != CHIME__JOB) rc = -EINVAL;
  if (rc == 0) *j = (struct chime__job *)o;
  return rc;
}

int chime_every_stop(chime_task h) {
  chime_loop *loop;
  struct chime__job *j;
  int rc = job_of(h, &loop, &j);
  if (rc) return rc;
  job_stop(loop, j, 0);
  maybe_finish(loop, j);
  return 0;
}

int chime_every_stats(chime_task h, chime_job_stats *st) {
  chime_loop *loop;
  struct chime__job *j;
  int rc = job_of(h, &loop, &j);
  if (rc) return rc;
  if (!st) return -EINVAL;
  const struct chime__obj *o = &j->o;
  memset(st, 0, sizeof *st);
  st->runs = j->runs;
  st->errors = j->errors;
  st->timeouts = j->timeouts;
  st->skipped_overlap = j->skipped_overlap;
  st->skipped_missed = j->skipped_missed;
  st->skipped_backoff = j->skipped_backoff;
  st->last_late = j->last_late;
  st->max_late = j->max_late;
  st->last_duration = j->last_duration;
  st->max_duration = j->max_duration;
  st->running = j->running;
  st->done = o->state == CHIME__JOB_DONE;
  bool fixed_delay_waits = j->spec->opts.schedule == CHIME_FIXED_DELAY && j->running;
  st->next = o->state == CHIME__JOB_ACTIVE && !fixed_delay_waits ? planned(loop, j, j->due) : CHIME_NEVER;
  return 0;
}
