/* calendar.c - calendar jobs (chime_cron): cron expressions run by the
 * periodic machinery of periodic.c, on the wall clock.
 *
 * A calendar job is a periodic job whose spec holds a compiled expression
 * and a zone, and whose `interval` field holds the wall-clock instant of
 * its next tick; j->due is the same instant on the monotonic clock, through
 * the wall clock's offset from it when it was computed.  periodic.c asks
 * here for the tick after a tick, and to step over ticks (missed, backed
 * off).
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
#include "internal.h"

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

/* ---- ticks ------------------------------------------------------------------- */

chime_ns chime__cron_after(const chime_cron_expr *cron, const chime_tz *tz, chime_ns wall) {
  chime_ns next;
  return chime_cron_next(cron, tz, wall, &next) == 0 ? next : CHIME_NEVER;
}

chime_ns chime__cron_skip(const struct chime__spec *s, chime_ns w, chime_ns limit, uint64_t *count) {
  uint64_t n = 0;
  while (w != CHIME_NEVER && w <= limit && n < COUNT_CAP) {
    n++;
    w = chime__cron_after(s->cron, s->tz, w);
  }
  if (w != CHIME_NEVER && w <= limit) w = chime__cron_after(s->cron, s->tz, limit); /* very many: counted up to the cap */
  *count = n;
  return w;
}

/* ---- zones ------------------------------------------------------------------------ */

static int tz_get(chime_loop *loop, const char *name, const chime_tz **out) {
  if (!name) name = "";
  for (struct chime__tzc *c = loop->tzs; c; c = c->next)
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
  c->next = loop->tzs;
  loop->tzs = c;
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
    chime__jobs_wall_moved(loop);
  }
}
#endif

/* The first calendar job of a loop: watch for jumps (on the real clock). */
static int watch_jumps(chime_loop *loop) {
  if (loop->calendar) return 0;
#ifdef __linux__
  if (!loop->virtual_clock) {
    if (CHIME__FAULT()) return -EMFILE;
    int fd = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK | TFD_CLOEXEC);
    if (fd < 0) return -errno;
    loop->jump_io.fd = fd;
    loop->jump_io.cb = jumped;
    int rc = jump_arm(fd);
    if (rc == 0) rc = chime__io_set(loop, &loop->jump_io, POLLIN);
    if (rc) {
      close(fd);
      loop->jump_io.fd = -1;
      return rc;
    }
  }
#endif
  loop->calendar = true;
  return 0;
}

void chime__calendar_free(chime_loop *loop) {
  if (loop->jump_io.fd >= 0) {
    chime__io_set(loop, &loop->jump_io, 0);
    close(loop->jump_io.fd);
    loop->jump_io.fd = -1;
  }
  while (loop->tzs) {
    struct chime__tzc *c = loop->tzs;
    loop->tzs = c->next;
    chime_tz_free(c->tz);
    chime__free(c);
  }
  loop->calendar = false;
}

/* ---- chime_cron ---------------------------------------------------------------------- */

int chime_cron(const char *expr, chime_fn target, void *arg, const chime_every_opts *opts, chime_task *job) {
  chime_loop *loop = chime__tls_loop;
  static const chime_every_opts defaults;
  chime_every_opts o = opts ? *opts : defaults;
  if (!loop) return -EPERM;
  if (!expr || !target) return -EINVAL;
  if (o.schedule || o.start || o.start_at) return -EINVAL; /* the expression is the schedule */
  chime_cron_expr *cron;
  int rc = chime_cron_parse(expr, &cron, NULL);
  if (rc) return rc;
  chime_ns every;
  const chime_tz *tz = NULL;
  if (chime_cron_interval(cron, &every) == 0) { /* @every: an interval job, whose zone is only checked */
    chime_cron_free(cron);
    if (o.tz && (rc = tz_get(loop, o.tz, &tz)) != 0) return rc;
    o.tz = NULL;
    return chime_every(every, target, arg, &o, job);
  }
  /* a spread would need a per-job offset kept with every recomputation;
   * jitter does the same job per tick */
  if (o.missed == CHIME_MISSED_DELAY || o.spread || o.key) rc = -EINVAL;
  if (rc == 0) rc = tz_get(loop, o.tz, &tz);
  if (rc == 0) rc = watch_jumps(loop);
  if (rc == 0) rc = chime__job_create(loop, 0, target, arg, &o, job, cron, tz);
  chime_cron_free(cron);
  return rc;
}
