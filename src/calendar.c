/* calendar.c - calendar jobs (chime_cron): cron expressions run by the
 * periodic machinery of periodic.c and tick.c, on the wall clock.
 *
 * A calendar job is a periodic job whose spec holds a compiled expression,
 * a zone, and the calendar schedule: its ticks are instants of the wall
 * clock, exact to the nanosecond (whole seconds), and each is armed on the
 * monotonic clock through the wall clock's offset from it at the time.
 * tick.c asks the schedule for the tick after a tick, and to step over
 * ticks (missed, backed off).
 *
 * The wall clock moves against the monotonic one: slowly (NTP slews it; a
 * tick that fires early by the difference is armed again for the rest,
 * periodic.c) or at once (an NTP step, an operator, chime_wall_set on the
 * virtual clock).  Linux tells of jumps through a timerfd armed with
 * TFD_TIMER_CANCEL_ON_SET; then every calendar job takes as its next tick
 * the earlier of the one it had and the first after the new wall time
 * (chime__jobs_wall_moved): after a jump back the next tick comes at its
 * new wall time, not an hour late; after a jump forward the tick passed
 * over is due at once, and the missed policy deals with the others.
 * Elsewhere a jump forward is noticed when the next tick fires.
 *
 * Zones are loaded once per loop and name, and shared by its jobs.
 */
#include "jobs.h"

#include <string.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/timerfd.h>
#endif
#include <poll.h>

/* Ticks counted one by one when stepping over them; beyond, the count
 * stops there and the step jumps. */
#define COUNT_CAP 100000

struct chime__tzc {
  struct chime__tzc *next;
  chime_tz *tz;
  char name[]; /* "" for the local zone */
};

/* The module's state in a loop. */
struct calendar {
  struct chime__io jump_io; /* a timerfd cancelled by wall-clock jumps (fd -1: none) */
  bool watching;            /* the loop has had calendar jobs: it watches the wall clock */
  struct chime__tzc *tzs;   /* zones loaded, by name */
};

static void calendar_moved(chime_loop *loop, void *state);
static void calendar_fini(chime_loop *loop, void *state);
static const struct chime__module calendar_module = {
    .size = sizeof(struct calendar), .wall_moved = calendar_moved, .fini = calendar_fini};

/* ---- the schedule ------------------------------------------------------------- */

/* (Saturating: a virtual clock's offset may be far from its monotonic side.) */
static chime_ns wall_now(const chime_loop *loop, chime_ns mono) {
  chime_ns t;
  return __builtin_add_overflow(mono, chime__wall_offset(loop), &t) ? CHIME_NEVER : t;
}

static chime_ns wall_to_mono(const chime_loop *loop, chime_ns t) {
  chime_ns m;
  if (!__builtin_sub_overflow(t, chime__wall_offset(loop), &m)) return m;
  return t > 0 ? CHIME_NEVER : 0;
}

static chime_ns wall_same(const chime_loop *loop, chime_ns t) {
  CHIME__UNUSED(loop);
  return t;
}

static chime_ns cron_after(const struct chime__spec *s, chime_ns interval, chime_ns t) {
  CHIME__UNUSED(interval);
  chime_ns next;
  return chime_cron_next(s->cron, s->tz, t, &next) == 0 ? next : CHIME_NEVER;
}

/* The last tick at or before `limit`, from tick t (<= limit) on: a look
 * back from limit over a span that grows fourfold until it holds a tick,
 * then a walk forward to the last one. */
static chime_ns cron_last(const struct chime__spec *s, chime_ns t, chime_ns limit) {
  for (chime_ns back = CHIME_SEC(1);; back *= 4) {
    chime_ns from = limit - back <= t ? t - 1 : limit - back;
    chime_ns w = cron_after(s, 0, from);
    if (w <= limit) {
      for (chime_ns n; (n = cron_after(s, 0, w)) <= limit;)
        w = n;
      return w;
    }
    if (from < t) return t;
  }
}

static chime_ns cron_skip(const struct chime__spec *s, chime_ns interval, chime_ns t, chime_ns limit, uint64_t *count,
                          chime_ns *last) {
  CHIME__UNUSED(interval);
  uint64_t n = 0;
  chime_ns w = t;
  *last = t;
  while (w != CHIME_NEVER && w <= limit && n < COUNT_CAP) {
    n++;
    *last = w;
    w = cron_after(s, 0, w);
  }
  if (w != CHIME_NEVER && w <= limit) { /* very many: counted up to the cap */
    *last = cron_last(s, w, limit);
    w = cron_after(s, 0, limit);
  }
  *count = n;
  return w;
}

const struct chime__sched chime__calendar_sched = {
    .now = wall_now, .to_mono = wall_to_mono, .to_wall = wall_same, .after = cron_after, .skip = cron_skip};

/* ---- zones ------------------------------------------------------------------------ */

static int tz_get(struct calendar *cal, const char *name, const chime_tz **out) {
  if (!name) name = "";
  for (struct chime__tzc *c = cal->tzs; c; c = c->next)
    if (strcmp(c->name, name) == 0) {
      *out = c->tz;
      return 0;
    }
  size_t len = strlen(name);
  struct chime__tzc *c = chime__malloc(sizeof *c + len + 1);
  if (!c) return -ENOMEM;
  int rc = chime_tz_load(name, &c->tz);
  if (rc) {
    chime__free(c);
    return rc;
  }
  memcpy(c->name, name, len + 1);
  c->next = cal->tzs;
  cal->tzs = c;
  *out = c->tz;
  return 0;
}

/* ---- wall-clock jumps ---------------------------------------------------------------- */

#ifdef __linux__
/* Arms the timerfd to be cancelled by the next jump: an expiry so far off
 * that only a jump ends it. */
static int jump_arm(int fd) {
  struct itimerspec far = {.it_value = {.tv_sec = (time_t)1 << 40}};
  return timerfd_settime(fd, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, &far, NULL) == 0 ? 0 : -errno;
}

#ifdef CHIME_TESTING
#include "testing.h"
static long jumps_seen;
long chime__test_wall_jumps(void) { return jumps_seen; }
#define JUMP_SEEN() jumps_seen++
#else
#define JUMP_SEEN() ((void)0)
#endif

static void jumped(chime_loop *loop, struct chime__io *io, uint32_t revents) {
  (void)revents;
  uint64_t expirations;
  if (read(io->fd, &expirations, sizeof expirations) < 0 && errno == ECANCELED) {
    JUMP_SEEN();
    jump_arm(io->fd);
    calendar_moved(loop, CHIME__CONTAINER(io, struct calendar, jump_io));
  }
}
#endif

/* The first calendar job of a loop: watch for jumps (on the real clock). */
static int watch_jumps(chime_loop *loop, struct calendar *cal) {
  if (cal->watching) return 0;
#ifdef __linux__
  if (!loop->virtual_clock) {
    if (CHIME__FAULT()) return -EMFILE;
    int fd = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK | TFD_CLOEXEC);
    if (fd < 0) return -errno;
    cal->jump_io.fd = fd;
    cal->jump_io.cb = jumped;
    int rc = jump_arm(fd);
    if (rc == 0) rc = chime__io_set(loop, &cal->jump_io, POLLIN);
    if (rc) {
      close(fd);
      cal->jump_io.fd = -1;
      return rc;
    }
  }
#endif
  cal->watching = true;
  return 0;
}

static void calendar_fini(chime_loop *loop, void *state) {
  struct calendar *cal = state;
  if (cal->jump_io.fd >= 0) {
    chime__io_set(loop, &cal->jump_io, 0);
    close(cal->jump_io.fd);
  }
  while (cal->tzs) {
    struct chime__tzc *c = cal->tzs;
    cal->tzs = c->next;
    chime_tz_free(c->tz);
    chime__free(c);
  }
}

/* A calendar job waiting for its next tick takes the earlier of that tick
 * and the first after the wall clock's new reading. */
static void moved_one(struct chime__obj *o, void *ctx) {
  chime_loop *loop = ctx;
  struct chime__job *j = (struct chime__job *)o;
  if (o->kind != CHIME__JOB || o->state != CHIME__JOB_ACTIVE || j->spec->sched != &chime__calendar_sched ||
      !chime__timer_armed(&o->timer))
    return;
  chime_ns w = cron_after(j->spec, 0, chime__now(loop) + chime__wall_offset(loop));
  chime__timers_del(&loop->timers, &o->timer);
  if (w < j->tick) j->tick = w;
  chime__arm_or_stop(loop, j, true);
  chime__maybe_finish(loop, j);
}

/* The wall clock was set: calendar jobs plan their next ticks afresh. */
static void calendar_moved(chime_loop *loop, void *state) {
  CHIME__UNUSED(state);
  chime__slabs_each(&loop->slabs, CHIME__CLASS_64X, moved_one, loop);
}

/* ---- chime_cron ---------------------------------------------------------------------- */

/* The loop's calendar state, attached with its first calendar job. */
static int calendar_of(chime_loop *loop, struct calendar **out) {
  struct calendar *cal = chime__module(loop, &calendar_module);
  if (!cal) {
    int rc = chime__module_attach(loop, &calendar_module, (void **)&cal);
    if (rc) return rc;
    cal->jump_io.fd = -1;
  }
  *out = cal;
  return 0;
}

/* The zone of a job, saying why one cannot be had. */
static int zone_of(struct calendar *cal, const char *name, const chime_tz **tz) {
  int rc = tz_get(cal, name, tz);
  if (rc == -ENOENT)
    chime__every_why("tz: unknown time zone \"%s\" (not in the zone database)", name);
  else if (rc == -EINVAL)
    chime__every_why("tz: \"%s\" is not a zone name, or its file is corrupt", name);
  else if (rc && rc != -ENOMEM)
    chime__every_why("tz: \"%s\": %s", name ? name : "", chime_strerror(rc));
  return rc;
}

int chime_cron(const char *expr, chime_fn target, void *arg, const chime_every_opts *opts, chime_task *job) {
  chime_loop *loop = chime__tls_loop;
  static const chime_every_opts defaults;
  chime_every_opts o = opts ? *opts : defaults;
  chime__every_why("%s", "");
  if (!loop) return -EPERM;
  if (!expr) return chime__every_why("expr: must not be NULL"), -EINVAL;
  if (!target) return chime__every_why("target: must not be NULL"), -EINVAL;
  /* the expression is the schedule */
  if (o.schedule) return chime__every_why("schedule: the expression is the schedule (must be 0)"), -EINVAL;
  if (o.start || o.start_at) return chime__every_why("%s: the expression is the schedule (must be 0)",
                                                     o.start ? "start" : "start_at"), -EINVAL;
  chime_cron_expr *cron;
  chime_cron_error err;
  int rc = chime_cron_parse(expr, &cron, &err);
  if (rc == -EINVAL) chime__every_why("expr: %s (column %d)", err.message, err.column);
  if (rc) return rc;
  struct calendar *cal;
  rc = calendar_of(loop, &cal);
  chime_ns every;
  const chime_tz *tz = NULL;
  if (rc == 0 && chime_cron_interval(cron, &every) == 0) { /* @every: an interval job, whose zone is only checked */
    chime_cron_free(cron);
    if (o.tz && (rc = zone_of(cal, o.tz, &tz)) != 0) return rc;
    o.tz = NULL;
    return chime_every(every, target, arg, &o, job);
  }
  /* a spread would need a per-job offset kept with every recomputation;
   * jitter does the same job per tick */
  if (rc == 0 && o.missed == CHIME_MISSED_DELAY)
    rc = -EINVAL, chime__every_why("missed: CHIME_MISSED_DELAY restarts a grid, which a calendar has not");
  if (rc == 0 && (o.spread || o.key))
    rc = -EINVAL, chime__every_why("%s: a calendar job has no spread (use jitter)", o.spread ? "spread" : "key");
  if (rc == 0) rc = zone_of(cal, o.tz, &tz);
  if (rc == 0) rc = watch_jumps(loop, cal);
  if (rc == 0) rc = chime__job_create(loop, 0, target, arg, &o, job, cron, tz);
  chime_cron_free(cron);
  return rc;
}
