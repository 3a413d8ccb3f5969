/* tick.c - the life of a job's tick: planned, fired, decided, held by the
 * veto, run, ended; and the events that tell of each step.
 *
 * Flow of a tick.  The job's timer fires at the tick's planned time (the
 * tick + jitter, moved to a coalescing boundary if the job has a window);
 * the loop puts the job on the due queue (its timer fields are the links
 * while it waits there).  The runner, one task per loop, takes due jobs in
 * order and handles each tick (tick()): it decides by the overlap policy
 * whether the tick runs or is skipped, finds and arms the next tick
 * (next_tick(), which applies the missed policy), asks the veto, and calls
 * the target inline, on its own stack: a run that returns without
 * suspending costs no task, no stack and no context switch.  If the
 * target (or the veto) suspends, the runner becomes that run's task (the
 * kind's handoff) and a new runner takes over the queue; when the target
 * returns, the run ends there and that task ends with it.
 *
 * When a run returns (run_end()): statistics, its event, the error policy,
 * and the next tick for what waits on a run's end (fixed delay, a queued
 * tick, a catch-up tick, a back-off).  A triggered tick (chime_every_
 * trigger) goes the same way from a task of its own, outside the grid.
 *
 * Events are delivered where the job is in a consistent state, with the
 * job pinned (j->pins) so that a callback that cancels or stops it cannot
 * free it under the code that called; after each, that code looks whether
 * the job was halted (cancelled or stopped by a call) before going on.
 */
#include "jobs.h"

#include <string.h>

static uint32_t add_sat(uint32_t a, uint64_t b) { return b >= UINT32_MAX - a ? UINT32_MAX : a + (uint32_t)b; }

/* ---- the side record and small helpers ----------------------------------- */

struct chime__job_side *chime__job_side(struct chime__job *j) {
  struct chime__job_side *d = chime__obj_side(&j->o);
  if (CHIME__UNLIKELY(!(j->o.flags & CHIME__J_SIDE))) {
    memset(d, 0, sizeof *d);
    j->o.flags |= CHIME__J_SIDE;
  }
  return d;
}

static bool is_interval(const struct chime__spec *s) { return s->sched == &chime__interval_sched; }

/* Now on the job's clock, from the monotonic reading `now`. */
static chime_ns sched_now(const chime_loop *loop, const struct chime__spec *s, chime_ns now) {
  return is_interval(s) ? now : s->sched->now(loop, now);
}

/* Whether a call halted the job (cancelled or stopped it) since its tick
 * began: what was decided then no longer runs. */
bool chime__job_halted(const struct chime__job *j) { return j->o.flags & (CHIME__CANCELLED | CHIME__J_HALT); }
#define halted chime__job_halted

/* ---- events --------------------------------------------------------------------- */

/* An event of type `type` about tick t, its common fields filled. */
static chime_event event(const chime_loop *loop, const struct chime__job *j, chime_event_type type, chime_ns t,
                         bool triggered) {
  chime_event ev;
  memset(&ev, 0, sizeof ev);
  ev.type = type;
  ev.job.id = chime__obj_handle(&j->o) | CHIME__BORROWED;
  ev.arg = j->arg;
  ev.tick = t;
  ev.wall = j->spec->sched->to_wall(loop, t);
  ev.triggered = triggered;
  return ev;
}

/* Delivers an event: the job pinned, suspension refused meanwhile. */
void chime__job_emit(chime_loop *loop, struct chime__job *j, const chime_event *ev) {
  void (*fn)(const chime_event *) = j->spec->opts.on_event;
  j->pins++;
  loop->no_suspend++;
  fn(ev);
  loop->no_suspend--;
  j->pins--;
}

/* A run of `count` ticks from `first` to `last` skipped for `reason`. */
static void emit_skip(chime_loop *loop, struct chime__job *j, chime_skip_reason reason, chime_ns first,
                      chime_ns last, uint64_t count, int result, bool triggered) {
  if (!j->spec->opts.on_event || !count) return;
  chime_event ev = event(loop, j, CHIME_EVENT_SKIP, first, triggered);
  ev.reason = reason;
  ev.count = count;
  ev.last = last;
  ev.last_wall = j->spec->sched->to_wall(loop, last);
  ev.result = result;
  chime__job_emit(loop, j, &ev);
}

void chime__job_skipped(chime_loop *loop, struct chime__job *j, chime_skip_reason reason, chime_ns t, int result,
                        bool triggered) {
  struct chime__job_side *d = chime__job_side(j);
  uint32_t *n = reason == CHIME_SKIP_VETOED ? &d->skipped_vetoed : &d->skipped_overlap;
  *n = add_sat(*n, 1);
  emit_skip(loop, j, reason, t, t, 1, result, triggered);
}

/* ---- planning ------------------------------------------------------------- */

static void arm(chime_loop *loop, struct chime__job *j) {
  const struct chime__spec *s = j->spec;
  chime_ns at = chime__tick_mono(loop, s, chime__planned(loop, j, j->tick));
  if (s->step && at >= 0 && at < CHIME_NEVER - s->step) { /* the first coalescing boundary >= at */
    uint64_t r = at < s->phase ? 0 : chime__mod_step((uint64_t)(at - s->phase), s->step);
    at = at < s->phase ? s->phase : r ? at + s->step - (chime_ns)r : at;
  }
  chime__timers_add(&loop->timers, &j->o.timer, at > 0 ? at : 0); /* (a calendar tick a jump left behind) */
}

/* ---- the due queue ------------------------------------------------------ */
/* While a job waits in it, its timer entry is not armed (pos & 3 == 0) and
 * its two fields link the queue: pos the next job (an 8-aligned pointer,
 * so its low bits stay 0), when the previous. */

static struct chime__job *due_next(const struct chime__job *j) { return (struct chime__job *)j->o.timer.pos; }
static struct chime__job *due_prev(const struct chime__job *j) {
  return (struct chime__job *)(uintptr_t)j->o.timer.when;
}

static int runner_main(void *arg);

/* Starts the runner if jobs are due and there is none (-ENOMEM: the next
 * round tries again). */
void chime__runner_ensure(chime_loop *loop, struct chime__jobs *js) {
  if (!js->runner && js->due_head) chime__task_spawn_in(loop, &js->runner_list, runner_main, js, &js->runner);
}

static void due_push(chime_loop *loop, struct chime__jobs *js, struct chime__job *j) {
  j->o.flags |= CHIME__J_DUE;
  j->o.timer.pos = 0;
  j->o.timer.when = (chime_ns)(uintptr_t)js->due_tail;
  if (js->due_tail)
    js->due_tail->o.timer.pos = (uintptr_t)j;
  else
    js->due_head = j;
  js->due_tail = j;
  if (!js->runner)
    chime__runner_ensure(loop, js);
  else if (js->runner->o.state == CHIME__WAITING)
    chime__task_wake(loop, js->runner, 0);
}

static void due_unlink(struct chime__jobs *js, struct chime__job *j) {
  struct chime__job *next = due_next(j), *prev = due_prev(j);
  if (prev)
    prev->o.timer.pos = (uintptr_t)next;
  else
    js->due_head = next;
  if (next)
    next->o.timer.when = (chime_ns)(uintptr_t)prev;
  else
    js->due_tail = prev;
  j->o.flags &= (uint16_t)~CHIME__J_DUE;
  j->o.timer.pos = 0;
  j->o.timer.when = 0;
}

void chime__job_fired(chime_loop *loop, struct chime__obj *o) {
  due_push(loop, chime__jobs_of(loop), (struct chime__job *)o);
}

/* Takes the job's next tick out of the timers or the due queue. */
void chime__job_disarm(chime_loop *loop, struct chime__job *j) {
  if (j->o.flags & CHIME__J_DUE)
    due_unlink(chime__jobs_of(loop), j);
  else
    chime__timers_del(&loop->timers, &j->o.timer);
}

/* Arms the next tick (j->tick), or stops the job if it has none or if
 * `until` comes first. */
void chime__arm_or_stop(chime_loop *loop, struct chime__job *j, bool has_next) {
  const struct chime__settings *o = &j->spec->opts;
  if (!has_next || (o->until && chime__tick_mono(loop, j->spec, chime__planned(loop, j, j->tick)) >= o->until))
    chime__job_stop(loop, j, 0);
  else
    arm(loop, j);
}

/* ---- the next tick ------------------------------------------------------------- */

/* The tick t is being handled at `now` (the schedule's clock): find the
 * next one, counting the ticks passed over (as overlap if they fell due
 * while a run was going, else as missed) and telling of them, and arm it,
 * unless it must wait for the run about to start to return. */
static void next_tick(chime_loop *loop, struct chime__job *j, chime_ns t, chime_ns now, bool overlapped) {
  const struct chime__spec *s = j->spec;
  const struct chime__settings *o = &s->opts;
  if (o->schedule == CHIME_FIXED_DELAY) return; /* planned when the run returns */
  struct chime__job_side *d = chime__job_side(j);
  chime_ns next = s->sched->after(s, j->interval, t), first = next, last = 0;
  uint64_t passed = 0;
  if (next == CHIME_NEVER || next > now) {
    j->tick = next;
  } else if (!overlapped && o->missed == CHIME_MISSED_BURST && d->catch_up < o->max_catch_up) {
    d->catch_up++;
    j->tick = next;
    j->o.flags |= CHIME__J_CATCHUP; /* armed when this run returns: runs back to back */
    return;
  } else if (!overlapped && o->missed == CHIME_MISSED_DELAY) { /* intervals only: the grid restarts */
    passed = (uint64_t)((now - t) / j->interval);
    last = t + (chime_ns)passed * j->interval;
    j->tick = chime__after(now, j->interval);
  } else {
    j->tick = s->sched->skip(s, j->interval, next, now, &passed, &last);
  }
  d->catch_up = 0;
  if (overlapped)
    d->skipped_overlap = add_sat(d->skipped_overlap, passed);
  else
    d->skipped_missed = add_sat(d->skipped_missed, passed);
  chime__arm_or_stop(loop, j, j->tick != CHIME_NEVER);
  emit_skip(loop, j, overlapped ? CHIME_SKIP_OVERLAP : CHIME_SKIP_MISSED, first, last, passed, 0, false);
}

/* ---- a run ------------------------------------------------------------------ */

static void run_end(chime_loop *loop, struct chime__job *j, struct chime__run *r, int result, chime_ns end,
                    uint16_t flags);

/* The deadline of a veto's hold: veto_timeout after it began, and before
 * the job's next tick falls due (0: none). */
static chime_ns hold_deadline(const struct chime__job *j, chime_ns now) {
  const struct chime__settings *o = &j->spec->opts;
  chime_ns at = o->veto_timeout ? chime__after(now, o->veto_timeout) : CHIME_NEVER;
  if (j->o.state == CHIME__JOB_ACTIVE && chime__timer_armed(&j->o.timer) && j->o.timer.when <= at)
    at = j->o.timer.when > now ? j->o.timer.when - 1 : now;
  return at == CHIME_NEVER ? 0 : at;
}

/* Asks the veto about tick r->tick, on the calling task (which may
 * suspend).  Returns 0 (run it) or why not. */
static int ask_veto(chime_loop *loop, struct chime__task *self, struct chime__job *j, struct chime__run *r,
                    chime_ns now) {
  chime_event ev = event(loop, j, CHIME_EVENT_TICK, r->tick, r->triggered);
  self->deadline = hold_deadline(j, now);
  int verdict = j->spec->opts.veto(&ev);
  uint16_t flags = self->o.flags;
  self->deadline = 0;
  self->o.flags &= (uint16_t) ~(CHIME__CANCELLED | CHIME__SHIELDED | CHIME__WHY);
  if (flags & CHIME__TIMED_OUT) return -ETIMEDOUT; /* held too long */
  if (flags & CHIME__CANCELLED) return -ECANCELED;
  return verdict;
}

/* Whether the overlap policy lets one more run start now (after a hold:
 * runs may have started meanwhile); with replace, the runs going are
 * cancelled. */
static bool overlap_allows(chime_loop *loop, struct chime__job *j) {
  const struct chime__settings *o = &j->spec->opts;
  if (!j->running) return true;
  if (o->overlap == CHIME_OVERLAP_REPLACE) chime__cancel_runs(loop, j, CHIME__REPLACED);
  return o->overlap == CHIME_OVERLAP_REPLACE || (o->overlap == CHIME_OVERLAP_ALLOW && j->running < o->max_concurrent);
}

/* Runs tick r->tick now on the calling task, which holds a pin on the job
 * (released here): the veto first, then the target.  `now`: the clock's
 * reading.  Returns the time it ended. */
chime_ns chime__run(chime_loop *loop, struct chime__jobs *js, struct chime__task *self, struct chime__job *j,
                    struct chime__run *r, chime_ns now) {
  const struct chime__spec *s = j->spec;
  const struct chime__settings *o = &s->opts;
  bool last = j->o.state != CHIME__JOB_ACTIVE; /* the job's last tick, stopped by its schedule */
  self->owner = &j->o;
  self->owner_data = r;
  if (self == js->runner) self->o.flags |= CHIME__HANDOFF;
  if (o->veto) {
    int why = ask_veto(loop, self, j, r, now);
    if (!why && (halted(j) || (!last && j->o.state != CHIME__JOB_ACTIVE))) why = -ECANCELED;
    now = chime__run_mark(loop);
    if (why || !overlap_allows(loop, j)) {
      chime__job_skipped(loop, j, why ? CHIME_SKIP_VETOED : CHIME_SKIP_OVERLAP, r->tick, why, r->triggered);
      self->owner = NULL;
      self->owner_data = NULL;
      self->o.flags &= (uint16_t)~CHIME__HANDOFF;
      j->pins--;
      chime__maybe_finish(loop, j);
      return now;
    }
  }
  struct chime__job_side *d = chime__job_side(j);
  j->running++;
  j->pins--;
  r->late = now - chime__tick_mono(loop, s, chime__planned(loop, j, r->tick));
  r->start = now;
  r->number = ++d->runs;
  if (r->triggered) d->triggered++;
  d->last_late = r->late;
  if (r->late > d->max_late) d->max_late = r->late;
  if (o->max_runs && !r->triggered && d->runs - d->triggered >= o->max_runs) chime__job_stop(loop, j, 0);
  if (o->on_event) {
    chime_event ev = event(loop, j, CHIME_EVENT_START, r->tick, r->triggered);
    ev.run = r->number;
    ev.late = r->late;
    chime__job_emit(loop, j, &ev);
  }
  self->deadline = o->timeout ? chime__after(now, o->timeout) : 0;
  int result = s->target(j->arg);
  chime_ns end = chime__run_now(loop);
  if (end < now) end = now; /* a slew the run clock has just seen (machine.h): no run takes less than nothing */
  uint16_t flags = self->o.flags;
  self->owner = NULL;
  self->owner_data = NULL;
  self->deadline = 0;
  self->o.flags &= (uint16_t) ~(CHIME__CANCELLED | CHIME__SHIELDED | CHIME__WHY | CHIME__HANDOFF);
  run_end(loop, j, r, result, end, flags);
  return end;
}

/* ---- a tick ------------------------------------------------------------------- */

/* Handles the tick of a job the runner took from the due queue.  `now` is
 * the clock's reading (the previous run's end, in a batch); returns the
 * reading after the tick: a run's end, or `now`. */
static chime_ns tick(chime_loop *loop, struct chime__jobs *js, struct chime__task *self, struct chime__job *j,
                     chime_ns now) {
  const struct chime__spec *s = j->spec;
  const struct chime__settings *o = &s->opts;
  chime_ns t = j->tick;
  bool queued = j->o.flags & CHIME__J_QUEUED;
  if (o->until && now >= o->until) {
    chime__job_stop(loop, j, 0);
    chime__maybe_finish(loop, j);
    return now;
  }
  if (!queued && chime__tick_mono(loop, s, t) > now) { /* early: the wall clock was slewed since (or set back) */
    arm(loop, j);
    return now;
  }
  j->pins++; /* held until the tick runs or is dropped */
  if (o->on_event) {
    chime_event ev = event(loop, j, CHIME_EVENT_TICK, t, false);
    chime__job_emit(loop, j, &ev);
    if (halted(j)) goto drop;
  }
  if (queued) { /* the tick that waited for the previous run: its turn */
    j->o.flags &= (uint16_t)~CHIME__J_QUEUED;
  } else if (j->running) {
    bool skip = false;
    switch (o->overlap) {
    case CHIME_OVERLAP_QUEUE:
      j->o.flags |= CHIME__J_QUEUED; /* waits for the run to return; nothing armed meanwhile */
      j->pins--;
      return now;
    case CHIME_OVERLAP_ALLOW: skip = j->running >= o->max_concurrent; break;
    case CHIME_OVERLAP_REPLACE: chime__cancel_runs(loop, j, CHIME__REPLACED); break;
    default: skip = true; break;
    }
    if (skip) {
      chime__job_skipped(loop, j, CHIME_SKIP_OVERLAP, t, 0, false);
      if (!halted(j)) next_tick(loop, j, t, sched_now(loop, s, now), false);
      goto drop;
    }
  }
  next_tick(loop, j, t, sched_now(loop, s, now), queued);
  if (halted(j)) goto drop;
  struct chime__run r = {.tick = t};
  return chime__run(loop, js, self, j, &r, now);
drop:
  j->pins--;
  chime__maybe_finish(loop, j);
  return now;
}

/* ---- the end of a run ------------------------------------------------------------ */

/* The back-off after `failures` failed runs in a row. */
static chime_ns backoff_delay(const struct chime__settings *o, unsigned failures) {
  chime_ns d = o->backoff_base;
  for (unsigned i = 1; i < failures && d < o->backoff_max; i++)
    d *= 2;
  return d < o->backoff_max ? d : o->backoff_max;
}

/* What a run's return decides about the next tick. */
static void after_run(chime_loop *loop, struct chime__job *j, chime_ns end, bool failed) {
  const struct chime__spec *s = j->spec;
  const struct chime__settings *o = &s->opts;
  chime_ns not_before = failed && o->on_error == CHIME_ERROR_BACKOFF ? chime__after(end, backoff_delay(o, j->failures)) : 0;
  if (o->schedule == CHIME_FIXED_DELAY) { /* intervals only: the schedule's clock is the monotonic one */
    chime_ns next = chime__after(end, j->interval);
    j->tick = next > not_before ? next : not_before;
    chime__arm_or_stop(loop, j, j->tick != CHIME_NEVER);
    return;
  }
  if (not_before && chime__tick_mono(loop, s, j->tick) < not_before) { /* back off: skip the ticks before it */
    struct chime__job_side *d = chime__job_side(j);
    uint64_t k;
    chime_ns first = j->tick, last;
    chime__job_disarm(loop, j);
    j->o.flags &= (uint16_t) ~(CHIME__J_QUEUED | CHIME__J_CATCHUP);
    d->catch_up = 0;
    j->tick = s->sched->skip(s, j->interval, j->tick, sched_now(loop, s, not_before) - 1, &k, &last);
    d->skipped_backoff = add_sat(d->skipped_backoff, k);
    chime__arm_or_stop(loop, j, j->tick != CHIME_NEVER);
    emit_skip(loop, j, CHIME_SKIP_BACKOFF, first, last, k, 0, false);
    return;
  }
  if (j->o.flags & CHIME__J_QUEUED) {
    due_push(loop, chime__jobs_of(loop), j); /* the waiting tick runs now */
  } else if (j->o.flags & CHIME__J_CATCHUP) {
    j->o.flags &= (uint16_t)~CHIME__J_CATCHUP;
    arm(loop, j); /* already due: runs in the next round */
  }
}

static chime_outcome outcome_of(int result, uint16_t flags) {
  if (flags & CHIME__CANCELLED) {
    if (flags & CHIME__TIMED_OUT) return CHIME_OUTCOME_TIMEOUT;
    if (flags & CHIME__REPLACED) return CHIME_OUTCOME_REPLACED;
    if (flags & CHIME__SHUTDOWN) return CHIME_OUTCOME_SHUTDOWN;
    return CHIME_OUTCOME_CANCELLED;
  }
  return result < 0 ? CHIME_OUTCOME_ERROR : CHIME_OUTCOME_OK;
}

/* Tells of a run's end. */
void chime__emit_end(chime_loop *loop, struct chime__job *j, const struct chime__run *r, int result,
                     chime_outcome outcome, chime_ns end) {
  if (!j->spec->opts.on_event) return;
  chime_event ev = event(loop, j, CHIME_EVENT_END, r->tick, r->triggered);
  ev.run = r->number;
  ev.late = r->late;
  ev.duration = end - r->start;
  ev.outcome = outcome;
  ev.result = result;
  chime__job_emit(loop, j, &ev);
}

static void run_end(chime_loop *loop, struct chime__job *j, struct chime__run *r, int result, chime_ns end,
                    uint16_t flags) {
  const struct chime__settings *o = &j->spec->opts;
  struct chime__job_side *d = chime__job_side(j);
  chime_ns took = end - r->start;
  j->running--;
  d->last_duration = took;
  if (took > d->max_duration) d->max_duration = took;
  if (flags & CHIME__TIMED_OUT) d->timeouts = add_sat(d->timeouts, 1);
  bool failed = result < 0 && !(flags & CHIME__REPLACED) && !(j->o.flags & CHIME__CANCELLED);
  if (failed) d->errors = add_sat(d->errors, 1);
  j->pins++; /* the follow-up below needs the job */
  chime__emit_end(loop, j, r, result, outcome_of(result, flags), end);
  if (j->o.state == CHIME__JOB_ACTIVE) {
    if (failed && o->on_error == CHIME_ERROR_STOP) {
      chime__job_stop(loop, j, result);
    } else {
      if (failed && j->failures < UINT8_MAX) j->failures++;
      if (!failed) j->failures = 0;
      after_run(loop, j, end, failed);
    }
  }
  if ((j->o.flags & CHIME__J_WAITERS) && !(j->o.flags & CHIME__J_QUEUED)) chime__wake_trigger(loop, j);
  j->pins--;
  chime__maybe_finish(loop, j);
}

/* ---- the runner ------------------------------------------------------------ */

static struct chime__job *due_pop(struct chime__jobs *js) {
  struct chime__job *j = js->due_head;
  if (j) due_unlink(js, j);
  return j;
}

static int runner_main(void *arg) {
  struct chime__jobs *js = arg;
  chime_loop *loop = chime__tls_loop;
  struct chime__task *self = loop->cur;
  /* One reading per run: a run's end is the next one's start.  A batch
   * starts from the clock itself; the ends of its runs are the run clock's,
   * extrapolated from there (chime__run_now). */
  chime_ns now = chime__run_mark(loop);
  for (unsigned n = 1;; n++) {
    struct chime__job *j = due_pop(js);
    if (!j) {
      chime__task_wait(loop, NULL, NULL, NULL, CHIME_NEVER);
      now = chime__run_mark(loop);
      continue;
    }
    now = tick(loop, js, self, j, now);
    if (self != js->runner) return 0; /* handed off: that run has returned; this task ends */
    if (n % 64 == 0) {                /* let the other tasks run */
      chime_yield();
      now = chime__run_mark(loop);
    }
  }
}

/* The runner, running a job's target inline, is about to suspend: it
 * becomes that run's own task, and a new runner takes over the queue. */
void chime__job_handoff(chime_loop *loop, struct chime__task *t) {
  struct chime__jobs *js = chime__jobs_of(loop);
  t->o.flags &= (uint16_t)~CHIME__HANDOFF;
  js->runner = NULL;
  chime__task_move(loop, t, &js->runs);
  chime__runner_ensure(loop, js);
}
