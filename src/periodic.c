/* periodic.c - periodic jobs: chime_every, their options, their lives and
 * ends, triggers and statistics; the interval schedule.
 *
 * A job is a 64-byte record holding its timer entry, its next tick and the
 * counts that keep it alive (struct chime__job), and a side record it
 * touches from its first tick on (statistics, the policies' state); what
 * jobs have in common (target, options, name, group, schedule) is in a
 * shared, immutable spec.  tick.c follows a tick from its timer to the end
 * of its run.
 *
 * A job stops (no more ticks) when cancelled, at a limit, or by
 * CHIME_ERROR_STOP; it ends when its last run has returned and nothing of
 * the library holds it (j->pins: a tick being handled, held by the veto,
 * or triggered): its last event is told, its destructor runs, its joiner
 * wakes, its group counts it.
 *
 * The jobs of a loop are a module of it (loop.h): the due queue, the
 * runner, the runs that suspended, the last spec made.  Jobs register
 * their kind, so that handles, groups and the timers reach them.
 */
#include "jobs.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* No duration of a job may exceed this (about 73 years), so that a few of
 * them add to a deadline without overflow. */
#define MAX_DURATION ((chime_ns)1 << 61)
/* A triggered tick lies within this of the clock's zero (146 years). */
#define TICK_RANGE ((chime_ns)1 << 62)

_Static_assert(sizeof(struct chime__job) == 64, "a job's creation touches 64 bytes");
_Static_assert(sizeof(struct chime__job_side) <= CHIME__SIDE_BYTES, "a job's side record fits its slot");
_Static_assert(sizeof(struct chime__settings) == 104, "settings have no implicit padding");

/* ---- the module ------------------------------------------------------------ */

static bool jobs_pending(chime_loop *loop, void *state);
static void jobs_round(chime_loop *loop, void *state);
static void jobs_shutdown(chime_loop *loop, void *state);
static void jobs_abandon(chime_loop *loop, void *state, chime_report *report);
static void jobs_fini(chime_loop *loop, void *state);

static const struct chime__module jobs_module = {.size = sizeof(struct chime__jobs),
                                                 .round = jobs_round,
                                                 .pending = jobs_pending,
                                                 .shutdown = jobs_shutdown,
                                                 .abandon = jobs_abandon,
                                                 .fini = jobs_fini};

struct chime__jobs *chime__jobs_of(const chime_loop *loop) { return chime__module(loop, &jobs_module); }

static bool jobs_pending(chime_loop *loop, void *state) {
  CHIME__UNUSED(loop);
  return ((struct chime__jobs *)state)->due_head != NULL;
}

/* Due jobs whose runner could not be started (no memory) try again. */
static void jobs_round(chime_loop *loop, void *state) { chime__runner_ensure(loop, state); }

/* ---- specs ------------------------------------------------------------------ */

static void choose_step(const struct chime__jobs *js, struct chime__spec *s);

static void spec_put(struct chime__spec *s) {
  if (--s->refs) return;
  chime_cron_free(s->cron);
  chime__free(s);
}

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
         s->missed == (uint8_t)o->missed && s->overlap == (uint8_t)o->overlap && s->on_error == (uint8_t)o->on_error &&
         s->on_event == o->on_event && s->veto == o->veto && s->veto_timeout == o->veto_timeout;
}

/* A spec with these settings: the loop's last one if equal, else a new
 * one (which becomes the loop's last).  `o` must be normalised (zeroed,
 * then copied field by field) so that memcmp compares settings only. */
static struct chime__spec *spec_get(struct chime__jobs *js, chime_fn target, const struct chime__settings *o,
                                    chime_group *g, const char *name, const chime_cron_expr *cron, const chime_tz *tz) {
  struct chime__spec *s = js->spec_cache;
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
  s->sched = cron ? &chime__calendar_sched : &chime__interval_sched;
  s->refs = 2; /* the caller's and the cache's */
  s->target = target;
  s->opts = *o;
  s->group = g;
  strncpy(s->name, name, sizeof s->name - 1);
  choose_step(js, s);
  if (js->spec_cache) spec_put(js->spec_cache);
  js->spec_cache = s;
  return s;
}

/* Coalescing (sd-event's): a job with a window runs at the first boundary
 * at or after its planned time, boundaries being the multiples of the
 * coarsest of these steps that fits in the window, shifted by the loop's
 * perturbation.  Any window as long as a step holds one of its boundaries,
 * so the run is never more than `window` late, and jobs with similar
 * windows wake the loop together.  The step and its phase depend only on
 * the window and the loop: the spec keeps them. */
static void choose_step(const struct chime__jobs *js, struct chime__spec *s) {
#define CHIME__STEP_ELEMENT(v) (v),
  static const chime_ns steps[] = {CHIME__STEPS(CHIME__STEP_ELEMENT)};
#undef CHIME__STEP_ELEMENT
  s->step = s->phase = 0;
  for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++)
    if (steps[i] <= s->opts.window) {
      s->step = steps[i];
      s->phase = js->perturb % steps[i];
      return;
    }
}

/* ---- the interval schedule ---------------------------------------------------- */

static chime_ns mono_now(const chime_loop *loop, chime_ns mono) {
  CHIME__UNUSED(loop);
  return mono;
}

static chime_ns mono_same(const chime_loop *loop, chime_ns t) {
  CHIME__UNUSED(loop);
  return t;
}

static chime_ns mono_to_wall(const chime_loop *loop, chime_ns t) {
  chime_ns w;
  return __builtin_add_overflow(t, chime__wall_offset(loop), &w) ? (t > 0 ? CHIME_NEVER : 0) : w;
}

static chime_ns grid_after(const struct chime__spec *s, chime_ns interval, chime_ns t) {
  CHIME__UNUSED(s);
  return chime__after(t, interval) == CHIME_NEVER ? CHIME_NEVER : t + interval;
}

static chime_ns grid_skip(const struct chime__spec *s, chime_ns interval, chime_ns t, chime_ns limit,
                          uint64_t *count, chime_ns *last) {
  CHIME__UNUSED(s);
  if (t > limit) {
    *count = 0;
    *last = t;
    return t;
  }
  uint64_t k = (uint64_t)((limit - t) / interval); /* grid points in (t, limit] */
  *count = k + 1;
  *last = t + (chime_ns)k * interval;
  return grid_after(s, interval, *last);
}

const struct chime__sched chime__interval_sched = {
    .now = mono_now, .to_mono = mono_same, .to_wall = mono_to_wall, .after = grid_after, .skip = grid_skip};

/* ---- ending --------------------------------------------------------------------- */

static void job_free(chime_loop *loop, struct chime__job *j) {
  spec_put(j->spec);
  chime__timers_unreserve(&loop->timers, 1);
  chime__obj_free(&loop->slabs, &j->o);
}

static void stats_fill(const chime_loop *loop, struct chime__job *j, chime_job_stats *st);

/* The last run has returned and nothing holds the job: it ends. */
void chime__job_finish(chime_loop *loop, struct chime__job *j) {
  const struct chime__spec *s = j->spec;
  j->o.state = CHIME__JOB_DONE;
  loop->ntasks--;
  if (s->opts.on_event) {
    chime_job_stats st;
    stats_fill(loop, j, &st);
    chime_event ev;
    memset(&ev, 0, sizeof ev);
    ev.type = CHIME_EVENT_DONE;
    ev.job.id = chime__obj_handle(&j->o) | CHIME__BORROWED;
    ev.arg = j->arg;
    ev.tick = ev.wall = CHIME_NEVER;
    ev.result = j->result;
    ev.stats = &st;
    chime__job_emit(loop, j, &ev);
  }
  if (s->opts.dtor) s->opts.dtor(j->arg);
  chime__obj_ended(loop, &j->o);
  if (s->group) chime__group_other_done(loop, s->group, j->result);
  if (!(j->o.flags & CHIME__HANDLE)) job_free(loop, j);
}

/* Whether task t is one that cancel_runs(j, why) cancels: every task of
 * the job, but for a replacement only its runs going, not the caller. */
static bool cancels(const chime_loop *loop, const struct chime__job *j, const struct chime__task *t, uint16_t why) {
  if (t->owner != &j->o) return false;
  if (!(why & CHIME__REPLACED)) return true;
  const struct chime__run *r = t->owner_data;
  return t != loop->cur && r && r->number;
}

void chime__cancel_runs(chime_loop *loop, struct chime__job *j, uint16_t why) {
  struct chime__jobs *js = chime__jobs_of(loop);
  for (struct chime__task *t = js->runs.head; t; t = t->next_in_list)
    if (cancels(loop, j, t, why)) chime__task_cancel(loop, t, why);
  struct chime__task *r = js->runner;
  if (r && cancels(loop, j, r, why)) chime__task_cancel(loop, r, why);
}

static const struct chime__wait trigger_wait;

/* Wakes triggered ticks waiting for their turn: the first one (`all`
 * false), or every one (the job stopped: they drop). */
static void wake_triggers(chime_loop *loop, struct chime__job *j, bool all) {
  struct chime__jobs *js = chime__jobs_of(loop);
  bool more = false;
  for (struct chime__task *t = js->runs.head; t; t = t->next_in_list)
    if (t->owner == &j->o && t->wait == &trigger_wait && t->o.state == CHIME__WAITING) {
      if (!all && more) return;
      chime__task_wake(loop, t, 0);
      more = true;
    }
  j->o.flags &= (uint16_t)~CHIME__J_WAITERS;
}

void chime__wake_trigger(chime_loop *loop, struct chime__job *j) { wake_triggers(loop, j, j->o.state != CHIME__JOB_ACTIVE); }

void chime__job_stop(chime_loop *loop, struct chime__job *j, int result) {
  if (j->o.state != CHIME__JOB_ACTIVE) return;
  j->o.state = CHIME__JOB_STOPPING;
  chime__job_disarm(loop, j);
  j->o.flags &= (uint16_t) ~(CHIME__J_QUEUED | CHIME__J_CATCHUP);
  j->result = result;
  if (j->o.flags & CHIME__J_WAITERS) wake_triggers(loop, j, true);
}

static void job_cancel(chime_loop *loop, struct chime__job *j, uint16_t why) {
  if (j->o.state == CHIME__JOB_DONE) return;
  j->o.flags |= CHIME__CANCELLED;
  if (j->o.state == CHIME__JOB_STOPPING) j->result = -ECANCELED;
  if (j->running || j->pins) chime__cancel_runs(loop, j, why);
  chime__job_stop(loop, j, -ECANCELED);
  chime__maybe_finish(loop, j);
}

/* ---- the kind ------------------------------------------------------------------- */

static void kind_cancel(chime_loop *loop, struct chime__obj *o, uint16_t why) {
  job_cancel(loop, (struct chime__job *)o, why);
}

static bool kind_done(const struct chime__obj *o) { return o->state == CHIME__JOB_DONE; }
static int kind_result(const struct chime__obj *o) { return ((const struct chime__job *)o)->result; }
static void kind_release(chime_loop *loop, struct chime__obj *o) { job_free(loop, (struct chime__job *)o); }

/* A copy of the job's spec with another name or group. */
static int respec(chime_loop *loop, struct chime__job *j, chime_group *g, const char *name) {
  struct chime__spec *old = j->spec;
  struct chime__spec *s = spec_get(chime__jobs_of(loop), old->target, &old->opts, g, name, old->cron, old->tz);
  if (!s) return -ENOMEM;
  j->spec = s;
  spec_put(old);
  return 0;
}

static int kind_set_name(chime_loop *loop, struct chime__obj *o, const char *name) {
  struct chime__job *j = (struct chime__job *)o;
  return respec(loop, j, j->spec->group, name ? name : "");
}

static int kind_to_group(chime_loop *loop, struct chime__obj *o, chime_group *g) {
  struct chime__job *j = (struct chime__job *)o;
  if (j->o.state == CHIME__JOB_DONE) {
    chime__group_count(g, j->result);
    job_free(loop, j);
    return 0;
  }
  int rc = respec(loop, j, g, j->spec->name);
  if (rc) return rc;
  j->o.flags &= (uint16_t)~CHIME__HANDLE;
  chime__obj_rekey(&j->o);
  chime__group_adopt(g);
  return 0;
}

/* Calls fn(loop, j, ctx) for every job of the loop (fn may free it). */
static void each_job(chime_loop *loop, void (*fn)(chime_loop *loop, struct chime__job *j, void *ctx), void *ctx);

struct group_cancel {
  chime_group *g;
  uint16_t why;
};

static void cancel_in_group(chime_loop *loop, struct chime__job *j, void *ctx) {
  const struct group_cancel *c = ctx;
  if (j->spec->group == c->g) job_cancel(loop, j, c->why);
}

static void kind_cancel_group(chime_loop *loop, chime_group *g, uint16_t why) {
  struct group_cancel c = {g, why};
  each_job(loop, cancel_in_group, &c);
}

static chime_group *kind_group_of(const struct chime__obj *o) { return ((const struct chime__job *)o)->spec->group; }

/* A run, hold or triggered tick abandoned at shutdown: its run is told to
 * have ended so (it never returned). */
static void kind_task_gone(chime_loop *loop, struct chime__task *t) {
  struct chime__job *j = (struct chime__job *)t->owner;
  const struct chime__run *r = t->owner_data;
  if (r && r->number) {
    j->running--;
    chime__emit_end(loop, j, r, -ECANCELED, CHIME_OUTCOME_ABANDONED, chime__now(loop));
  } else if (j->pins) {
    j->pins--;
  }
}

static const struct chime__kind job_kind = {.fired = chime__job_fired,
                                            .cancel = kind_cancel,
                                            .done = kind_done,
                                            .result = kind_result,
                                            .release = kind_release,
                                            .set_name = kind_set_name,
                                            .to_group = kind_to_group,
                                            .cancel_group = kind_cancel_group,
                                            .group_of = kind_group_of,
                                            .handoff = chime__job_handoff,
                                            .task_gone = kind_task_gone};

/* ---- the shutdown ----------------------------------------------------------------- */

struct each {
  chime_loop *loop;
  void (*fn)(chime_loop *loop, struct chime__job *j, void *ctx);
  void *ctx;
};

static void each_one(struct chime__obj *o, void *ctx) {
  const struct each *c = ctx;
  if (o->kind == CHIME__JOB) c->fn(c->loop, (struct chime__job *)o, c->ctx);
}

static void each_job(chime_loop *loop, void (*fn)(chime_loop *loop, struct chime__job *j, void *ctx), void *ctx) {
  struct each c = {loop, fn, ctx};
  chime__slabs_each(&loop->slabs, CHIME__CLASS_64X, each_one, &c);
}

static void shutdown_one(chime_loop *loop, struct chime__job *j, void *ctx) {
  CHIME__UNUSED(ctx);
  job_cancel(loop, j, CHIME__SHUTDOWN);
}

static void jobs_shutdown(chime_loop *loop, void *state) {
  CHIME__UNUSED(state);
  each_job(loop, shutdown_one, NULL);
}

static void abandon_one(chime_loop *loop, struct chime__job *j, void *ctx) {
  chime_report *r = ctx;
  if (j->o.state == CHIME__JOB_DONE) return;
  if (r) {
    r->abandoned++;
    chime__report_name(r, j->spec->name);
  }
  chime__job_disarm(loop, j);
  if (j->o.state == CHIME__JOB_ACTIVE) j->result = -ECANCELED;
  j->o.state = CHIME__JOB_STOPPING;
  j->running = 0;
  j->pins = 0;
  chime__job_finish(loop, j);
}

/* Past the grace period: every run, hold and triggered tick left, the
 * runner, then every job, end. */
static void jobs_abandon(chime_loop *loop, void *state, chime_report *report) {
  struct chime__jobs *js = state;
  while (js->runs.head)
    chime__task_abandon(loop, js->runs.head);
  if (js->runner) {
    struct chime__task *r = js->runner;
    js->runner = NULL;
    chime__task_abandon(loop, r);
  }
  js->due_head = js->due_tail = NULL;
  each_job(loop, abandon_one, report);
}

static void release_one(chime_loop *loop, struct chime__job *j, void *ctx) {
  CHIME__UNUSED(loop);
  CHIME__UNUSED(ctx);
  spec_put(j->spec);
}

/* At loop free: every reference to specs goes (jobs whose handles were
 * never joined still hold theirs). */
static void jobs_fini(chime_loop *loop, void *state) {
  struct chime__jobs *js = state;
  each_job(loop, release_one, NULL);
  if (js->spec_cache) spec_put(js->spec_cache);
  js->spec_cache = NULL;
}

/* ---- creation ------------------------------------------------------------------ */

static _Thread_local char why_text[200];

void chime__every_why(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why_text, sizeof why_text, fmt, ap);
  va_end(ap);
}

const char *chime_every_error(void) { return why_text; }

static bool bad_duration(chime_ns d) { return d < 0 || d > MAX_DURATION; }

/* The first of the option's durations that is out of range, or NULL. */
static const char *bad_durations(const chime_every_opts *o) {
  const struct {
    const char *name;
    chime_ns d;
  } ds[] = {{"jitter", o->jitter},         {"spread", o->spread},         {"timeout", o->timeout},
            {"window", o->window},         {"backoff_base", o->backoff_base}, {"backoff_max", o->backoff_max},
            {"veto_timeout", o->veto_timeout}};
  for (size_t i = 0; i < sizeof ds / sizeof ds[0]; i++)
    if (bad_duration(ds[i].d)) return ds[i].name;
  return NULL;
}

/* Checks the options (and the interval of an interval job, `calendar`
 * false), saying why one is refused.  `now` is needed (and read) only when
 * o->until is set. */
static int check_opts(const chime_every_opts *o, chime_ns interval, chime_ns now, bool calendar) {
  /* The usual options (the default policies, no spread, no until, no veto
   * timeout) pass a few tests at once, where the checks below take thirty
   * branches; anything else, and any refusal, goes through those. */
  if (!((uint64_t)o->schedule | (uint64_t)o->missed | o->max_catch_up | (uint64_t)o->overlap | o->max_concurrent |
        (uint64_t)o->on_error | (uint64_t)o->backoff_base | (uint64_t)o->backoff_max | (uint64_t)o->spread |
        (uintptr_t)o->key | (uint64_t)o->until | (uint64_t)o->veto_timeout) &&
      (calendar || (interval > 0 && interval <= MAX_DURATION)) && (unsigned)o->start <= CHIME_START_AT &&
      ((uint64_t)o->jitter | (uint64_t)o->timeout | (uint64_t)o->window) < (uint64_t)MAX_DURATION &&
      (o->start == CHIME_START_AT ? o->start_at >= 0 : o->start_at == 0) &&
      o->start_at <= CHIME_NEVER - 2 * MAX_DURATION)
    return 0;
#define REFUSE(...) return chime__every_why(__VA_ARGS__), -EINVAL
  if (!calendar && (interval <= 0 || interval > MAX_DURATION))
    REFUSE("interval: must be more than 0 and at most 2^61 ns (about 73 years)");
  if ((unsigned)o->schedule > CHIME_FIXED_DELAY) REFUSE("schedule: unknown value %d", (int)o->schedule);
  if ((unsigned)o->start > CHIME_START_AT) REFUSE("start: unknown value %d", (int)o->start);
  if ((unsigned)o->missed > CHIME_MISSED_DELAY) REFUSE("missed: unknown value %d", (int)o->missed);
  if ((unsigned)o->overlap > CHIME_OVERLAP_REPLACE) REFUSE("overlap: unknown value %d", (int)o->overlap);
  if ((unsigned)o->on_error > CHIME_ERROR_BACKOFF) REFUSE("on_error: unknown value %d", (int)o->on_error);
  const char *bad = bad_durations(o);
  if (bad) REFUSE("%s: must be 0 to 2^61 ns (about 73 years)", bad);
  /* each policy's parameter with its policy, and only then */
  if (o->missed == CHIME_MISSED_BURST && (o->max_catch_up == 0 || o->max_catch_up > UINT16_MAX))
    REFUSE("max_catch_up: needed with CHIME_MISSED_BURST, 1 to 65535");
  if (o->missed != CHIME_MISSED_BURST && o->max_catch_up) REFUSE("max_catch_up: only with CHIME_MISSED_BURST");
  if (o->overlap == CHIME_OVERLAP_ALLOW && (o->max_concurrent == 0 || o->max_concurrent > UINT8_MAX))
    REFUSE("max_concurrent: needed with CHIME_OVERLAP_ALLOW, 1 to 255");
  if (o->overlap != CHIME_OVERLAP_ALLOW && o->max_concurrent) REFUSE("max_concurrent: only with CHIME_OVERLAP_ALLOW");
  if (o->on_error == CHIME_ERROR_BACKOFF && o->backoff_base <= 0)
    REFUSE("backoff_base: needed with CHIME_ERROR_BACKOFF, more than 0");
  if (o->on_error == CHIME_ERROR_BACKOFF && o->backoff_max < o->backoff_base)
    REFUSE("backoff_max: needed with CHIME_ERROR_BACKOFF, at least backoff_base");
  if (o->on_error != CHIME_ERROR_BACKOFF && (o->backoff_base || o->backoff_max))
    REFUSE("%s: only with CHIME_ERROR_BACKOFF", o->backoff_base ? "backoff_base" : "backoff_max");
  if (o->start == CHIME_START_AT && o->start_at < 0) REFUSE("start_at: must not be negative");
  if (o->start != CHIME_START_AT && o->start_at) REFUSE("start_at: only with CHIME_START_AT");
  if (o->start_at > CHIME_NEVER - 2 * MAX_DURATION) REFUSE("start_at: too far in the future");
  if (o->schedule == CHIME_FIXED_DELAY && o->missed != CHIME_MISSED_SKIP)
    REFUSE("missed: CHIME_FIXED_DELAY has no missed ticks (only CHIME_MISSED_SKIP)");
  if (o->schedule == CHIME_FIXED_DELAY && o->overlap != CHIME_OVERLAP_SKIP)
    REFUSE("overlap: CHIME_FIXED_DELAY runs never overlap (only CHIME_OVERLAP_SKIP)");
  if (o->spread > 0 && !o->key) REFUSE("spread: needs a key");
  if (!o->spread && o->key) REFUSE("key: only with a spread");
  if (o->until < 0) REFUSE("until: must not be negative");
  if (o->until && o->until <= now) REFUSE("until: must be in the future");
  if (o->veto_timeout && !o->veto) REFUSE("veto_timeout: only with a veto");
  return 0;
#undef REFUSE
}

/* The settings of options o (checked). */
static struct chime__settings settings_of(const chime_every_opts *o) {
  struct chime__settings s;
  memset(&s, 0, sizeof s);
  s.jitter = o->jitter;
  s.timeout = o->timeout;
  s.backoff_base = o->backoff_base;
  s.backoff_max = o->backoff_max;
  s.until = o->until;
  s.window = o->window;
  s.veto_timeout = o->veto_timeout;
  s.max_runs = o->max_runs;
  s.dtor = o->dtor;
  s.on_event = o->on_event;
  s.veto = o->veto;
  s.max_catch_up = o->max_catch_up;
  s.max_concurrent = (uint16_t)o->max_concurrent;
  s.schedule = (uint8_t)o->schedule;
  s.missed = (uint8_t)o->missed;
  s.overlap = (uint8_t)o->overlap;
  s.on_error = (uint8_t)o->on_error;
  return s;
}

/* The stable offset of a key in [0, spread]. */
static chime_ns spread_of(const char *key, chime_ns spread) {
  uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
  for (const unsigned char *p = (const unsigned char *)key; *p; p++)
    h = (h ^ *p) * 0x100000001b3ull;
  return (chime_ns)(chime__mix64(h) % ((uint64_t)spread + 1));
}

/* The loop's jobs, attached (and the kind registered) with its first job. */
static int jobs_attach(chime_loop *loop, struct chime__jobs **out) {
  struct chime__jobs *js = chime__jobs_of(loop);
  if (!js) {
    int rc = chime__module_attach(loop, &jobs_module, (void **)&js);
    if (rc) return rc;
    js->perturb = loop->virtual_clock ? 0 : (chime_ns)(loop->seed % (uint64_t)CHIME_MIN(1));
    chime__kind_register(loop, CHIME__JOB, &job_kind);
  }
  *out = js;
  return 0;
}

int chime_every(chime_ns interval, chime_fn target, void *arg, const chime_every_opts *opts, chime_task *out) {
  chime_loop *loop = chime__tls_loop;
  why_text[0] = '\0';
  if (!loop) return -EPERM;
  if (!target) return chime__every_why("target: must not be NULL"), -EINVAL;
  if (opts && opts->tz) return chime__every_why("tz: a time zone is for calendar jobs (chime_cron)"), -EINVAL;
  return chime__job_create(loop, interval, target, arg, opts, out, NULL, NULL);
}

/* The first tick of a new job, on its clock; -EINVAL (or -ERANGE for a
 * calendar that never fires again) if there is none. */
static int first_tick(const chime_every_opts *o, chime_ns interval, chime_ns now, const chime_cron_expr *cron,
                      const chime_tz *tz, chime_ns wall, chime_ns *out) {
  if (cron) {
    chime_ns t;
    if (chime_cron_next(cron, tz, wall, &t) != 0) return chime__every_why("expr: fires no more"), -ERANGE;
    *out = t;
    return 0;
  }
  if (o->start == CHIME_START_AFTER_INTERVAL && chime__after(now, interval) == CHIME_NEVER)
    return chime__every_why("interval: the first tick would be past the end of the clock"), -EINVAL;
  chime_ns base = o->start == CHIME_START_AT ? o->start_at : o->start == CHIME_START_NOW ? now : now + interval;
  *out = o->spread ? chime__after(base, spread_of(o->key, o->spread)) : base;
  return 0;
}

int chime__job_create(chime_loop *loop, chime_ns interval, chime_fn target, void *arg, const chime_every_opts *opts,
                      chime_task *out, const chime_cron_expr *cron, const chime_tz *tz) {
  static const chime_every_opts defaults;
  const chime_every_opts *o = opts ? opts : &defaults;
  /* the clock is read only when the options need it */
  chime_ns now = o->start != CHIME_START_AT || o->until || cron ? chime__now(loop) : 0;
  int rc = check_opts(o, interval, now, cron != NULL);
  chime_ns first = 0;
  if (rc == 0) rc = first_tick(o, interval, now, cron, tz, cron ? now + chime__wall_offset(loop) : 0, &first);
  struct chime__jobs *js = NULL;
  if (rc == 0) rc = jobs_attach(loop, &js);
  if (rc) return rc;
  const char *name = o->name ? o->name : "";
  struct chime__spec *s = js->spec_cache;
  if (s && s->target == target && !s->group && same_name(s, name) && settings_are(&s->opts, o) &&
      same_calendar(s, cron, tz)) {
    s->refs++; /* made the same way as the last job: the usual case */
  } else {
    struct chime__settings n = settings_of(o);
    char copy[32] = "";
    strncpy(copy, name, sizeof copy - 1);
    s = spec_get(js, target, &n, NULL, copy, cron, tz);
    if (!s) return -ENOMEM;
  }
  struct chime__job *j = (struct chime__job *)chime__obj_alloc(&loop->slabs, CHIME__CLASS_64X);
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
  j->interval = cron ? 0 : interval;
  j->tick = first;
  loop->ntasks++;
  if (out) out->id = chime__obj_handle(&j->o);
  if (loop->shutting_down) {
    job_cancel(loop, j, CHIME__SHUTDOWN);
  } else {
    chime__arm_or_stop(loop, j, true);
    chime__maybe_finish(loop, j);
  }
  return 0;
}

/* ---- triggered ticks ---------------------------------------------------------------- */

static const struct chime__wait trigger_wait = {.forget = NULL};

/* A triggered tick's task (it holds a pin on the job): the overlap policy,
 * then the veto and the run (chime__run), as a tick of the grid would. */
static int trigger_main(void *arg) {
  chime_loop *loop = chime__tls_loop;
  struct chime__task *self = loop->cur;
  struct chime__job *j = (struct chime__job *)self->owner;
  struct chime__run r = {.tick = *(const chime_ns *)arg, .triggered = true};
  chime__free(arg);
  self->owner_data = &r;
  for (;;) {
    if (j->o.state != CHIME__JOB_ACTIVE || chime__job_halted(j) || chime_cancelled()) break;
    const struct chime__settings *o = &j->spec->opts;
    bool skip = false;
    if (j->running && o->overlap == CHIME_OVERLAP_QUEUE) { /* its turn comes when the runs going end */
      j->o.flags |= CHIME__J_WAITERS;
      chime__task_wait(loop, &trigger_wait, j, NULL, CHIME_NEVER);
      continue;
    }
    if (j->running) switch (o->overlap) {
      case CHIME_OVERLAP_ALLOW: skip = j->running >= o->max_concurrent; break;
      case CHIME_OVERLAP_REPLACE: chime__cancel_runs(loop, j, CHIME__REPLACED); break;
      default: skip = true; break;
      }
    if (skip) {
      chime__job_skipped(loop, j, CHIME_SKIP_OVERLAP, r.tick, 0, true);
      break;
    }
    chime__run(loop, chime__jobs_of(loop), self, j, &r, chime__run_mark(loop)); /* releases the pin */
    return 0;
  }
  self->owner_data = NULL;
  j->pins--;
  chime__maybe_finish(loop, j);
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

int chime_every_trigger(chime_task h, chime_ns tick) {
  chime_loop *loop;
  struct chime__job *j;
  int rc = job_of(h, &loop, &j);
  if (rc) return rc;
  if (tick < -TICK_RANGE || tick > TICK_RANGE) return -EINVAL;
  if (j->o.state != CHIME__JOB_ACTIVE) return -ESRCH;
  chime_ns *arg = chime__malloc(sizeof *arg);
  if (!arg) return -ENOMEM;
  *arg = tick;
  struct chime__task *t;
  rc = chime__task_spawn_in(loop, &chime__jobs_of(loop)->runs, trigger_main, arg, &t);
  if (rc) {
    chime__free(arg);
    return rc;
  }
  t->owner = &j->o;
  j->pins++;
  return 0;
}

/* ---- calls on a job ---------------------------------------------------------- */

int chime_every_stop(chime_task h) {
  chime_loop *loop;
  struct chime__job *j;
  int rc = job_of(h, &loop, &j);
  if (rc) return rc;
  if (j->o.state == CHIME__JOB_ACTIVE) j->o.flags |= CHIME__J_HALT;
  chime__job_stop(loop, j, 0);
  chime__maybe_finish(loop, j);
  return 0;
}

static void stats_fill(const chime_loop *loop, struct chime__job *j, chime_job_stats *st) {
  memset(st, 0, sizeof *st);
  if (j->o.flags & CHIME__J_SIDE) {
    const struct chime__job_side *d = chime__job_side(j);
    st->runs = d->runs;
    st->triggered = d->triggered;
    st->errors = d->errors;
    st->timeouts = d->timeouts;
    st->skipped_overlap = d->skipped_overlap;
    st->skipped_missed = d->skipped_missed;
    st->skipped_backoff = d->skipped_backoff;
    st->skipped_vetoed = d->skipped_vetoed;
    st->last_late = d->last_late;
    st->max_late = d->max_late;
    st->last_duration = d->last_duration;
    st->max_duration = d->max_duration;
  }
  st->running = j->running;
  st->done = j->o.state == CHIME__JOB_DONE;
  bool fixed_delay_waits = j->spec->opts.schedule == CHIME_FIXED_DELAY && j->running;
  st->next = st->next_tick = st->next_wall = CHIME_NEVER;
  if (j->o.state == CHIME__JOB_ACTIVE && !fixed_delay_waits && j->tick != CHIME_NEVER) {
    chime_ns planned = chime__planned(loop, j, j->tick);
    st->next = chime__tick_mono(loop, j->spec, planned);
    st->next_tick = j->tick;
    st->next_wall = j->spec->sched->to_wall(loop, planned);
  }
}

int chime_every_stats(chime_task h, chime_job_stats *st) {
  chime_loop *loop;
  struct chime__job *j;
  int rc = job_of(h, &loop, &j);
  if (rc) return rc;
  if (!st) return -EINVAL;
  stats_fill(loop, j, st);
  return 0;
}

int chime_every_join(chime_task h, chime_ns deadline, int *result, chime_job_stats *stats) {
  chime_loop *loop;
  struct chime__job *j;
  int rc = job_of(h, &loop, &j);
  if (rc) return rc;
  struct chime__obj *o;
  rc = chime__join_wait(h, deadline, &o);
  if (rc) return rc;
  if (result) *result = j->result;
  if (stats) stats_fill(loop, j, stats);
  chime__join_release(loop, o);
  return 0;
}

/* The run the calling task is for, or NULL. */
static const struct chime__run *current_run(void) {
  chime_loop *loop = chime__tls_loop;
  struct chime__task *self = loop ? loop->cur : NULL;
  return self && self->owner && self->owner->kind == CHIME__JOB ? self->owner_data : NULL;
}

int chime_tick(chime_ns *tick) {
  const struct chime__run *r = current_run();
  if (!r || !tick) return -EPERM;
  *tick = r->tick;
  return 0;
}

int chime_current_run(chime_run_info *info) {
  const struct chime__run *r = current_run();
  if (!r) return -EPERM;
  if (!info) return -EINVAL;
  const struct chime__job *j = (const struct chime__job *)chime__tls_loop->cur->owner;
  info->tick = r->tick;
  info->wall = j->spec->sched->to_wall(chime__tls_loop, r->tick);
  info->late = r->late;
  info->run = r->number;
  info->triggered = r->triggered;
  return 0;
}
