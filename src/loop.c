/* loop.c - the event loop: creation, the scheduler, shutdown, modules.
 *
 * The scheduler runs on the thread's own stack.  Each round it
 *   1. waits, if no task is runnable: for the earliest deadline (real
 *      clock), or not at all (virtual clock: after a poll that does not
 *      block, time jumps to the earliest deadline); with runnable tasks it
 *      only polls descriptors, without blocking, if any are watched;
 *   2. runs what other threads posted (post.c), and what the modules
 *      attached to the loop do each round (signal.c hands out signals);
 *   3. fires every timer that is due, which queues tasks;
 *   4. resumes the run queue: tasks then hand the CPU to each other
 *      directly (task.c) until the queue is empty or the round's budget of
 *      switches is spent.
 * It stops when no task (and no post) is left, when asked to (chime_loop_stop, the main
 * task's end), or when a shutdown's grace period ends.  Every loop has an
 * eventfd (a pipe without Linux) through which signal handlers and other
 * threads wake it, so a loop whose tasks all wait on nothing waits for
 * them, as asyncio and Tokio do.
 *
 * Virtual time stands still while tasks run, and runs no faster than real
 * time while a call given to the pool is out or a child process runs (it
 * must not jump ahead of work done outside the loop); the grace period of a shutdown is counted on the loop's
 * clock.
 */
#include "loop.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/eventfd.h>
#include <sys/prctl.h>
#endif
#include <fcntl.h>
#include <poll.h>

_Thread_local chime_loop *chime__tls_loop __attribute__((tls_model("initial-exec")));

#define DEFAULT_STACK ((size_t)64 * 1024)
#define MIN_STACK ((size_t)16 * 1024)
#define MAX_STACK ((size_t)1 << 30)

bool chime__loop_owned(const chime_loop *loop) { return pthread_equal((pthread_t)loop->owner, pthread_self()); }

chime_loop *chime_loop_current(void) { return chime__tls_loop; }

const char *chime_loop_backend(const chime_loop *loop) { return loop ? loop->poller.ops->name : NULL; }

/* Resolves a DEFAULT choice from the environment; -EINVAL for a value the
 * variable does not take. */
static int env_choice(const char *var, const char *const names[], int n, int fallback) {
  const char *v = getenv(var);
  if (!v || !*v) return fallback;
  for (int i = 0; i < n; i++)
    if (names[i] && strcmp(v, names[i]) == 0) return i;
  return -EINVAL;
}

static uint32_t random_seed(const void *salt) {
  return (uint32_t)chime__mix64((uint64_t)chime__mono() ^ (uint64_t)(uintptr_t)salt);
}

static int wake_open(chime_loop *loop);

int chime_loop_new(const chime_loop_opts *opts, chime_loop **out) {
  static const char *const clocks[] = {NULL, "real", "virtual"};
  static const char *const backends[] = {NULL, "epoll", "poll"};
  chime_loop_opts o = opts ? *opts : (chime_loop_opts){0};
  if (!out || (unsigned)o.clock > CHIME_CLOCK_VIRTUAL || (unsigned)o.backend > CHIME_BACKEND_POLL) return -EINVAL;
  int clock = o.clock != CHIME_CLOCK_DEFAULT ? (int)o.clock : env_choice("CHIME_CLOCK", clocks, 3, CHIME_CLOCK_REAL);
  int backend = o.backend;
  if (backend == CHIME_BACKEND_DEFAULT) {
#ifdef __linux__
    backend = env_choice("CHIME_BACKEND", backends, 3, CHIME_BACKEND_EPOLL);
#else
    backend = env_choice("CHIME_BACKEND", backends, 3, CHIME_BACKEND_POLL);
#endif
  }
  if (clock < 0 || backend < 0) return -EINVAL;
  const struct chime__backend_ops *ops = &chime__poll_ops;
  if (backend == CHIME_BACKEND_EPOLL) {
#ifdef __linux__
    ops = &chime__epoll_ops;
#else
    return -EINVAL;
#endif
  }
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  size_t stack = o.stack_size ? o.stack_size : DEFAULT_STACK;
  if (stack < MIN_STACK || stack > MAX_STACK) return -EINVAL;
  stack = (stack + page - 1) & ~(page - 1);

  chime_loop *loop = chime__calloc(1, sizeof *loop);
  if (!loop) return -ENOMEM;
  loop->owner = (unsigned long)pthread_self();
  loop->virtual_clock = clock == CHIME_CLOCK_VIRTUAL;
  loop->wall_base = chime__realtime();
  loop->stack_size = stack;
  loop->poller.ops = ops;
  loop->poller.loop = loop;
  loop->wake_io.fd = -1;
  loop->wake_wfd = -1;
  chime__slabs_init(&loop->slabs, random_seed(loop));
  chime__timers_init(&loop->timers, chime__now(loop), &loop->slabs);
  /* Jitter and coalescing: random on the real clock, fixed on the virtual
   * one so that a test gives the same result every run. */
  loop->seed = loop->virtual_clock ? 0x5eed : ((uint64_t)random_seed(&loop->seed) << 32 | random_seed(loop));
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  loop->pool_threads = o.pool_threads ? o.pool_threads : cpus > 0 ? (unsigned)cpus : 1;
  pthread_mutex_init(&loop->post_mu, NULL);
  int rc = ops->init(&loop->poller);
  if (rc == 0) {
    rc = wake_open(loop);
    if (rc) ops->fini(&loop->poller);
  }
  if (rc) {
    pthread_mutex_destroy(&loop->post_mu);
    chime__free(loop);
    return rc;
  }
  chime__fault_handlers_install();
  *out = loop;
  return 0;
}

/* ---- descriptors and wake-ups ------------------------------------------- */

int chime__io_set(chime_loop *loop, struct chime__io *io, uint32_t events) {
  int rc = 0;
  if (events == io->events) return 0;
  uint32_t old = io->events;
  io->events = events;
  const struct chime__backend_ops *ops = loop->poller.ops;
  if (!old) {
    rc = ops->add(&loop->poller, io);
  } else if (events) {
    rc = ops->mod(&loop->poller, io);
  } else {
    ops->del(&loop->poller, io);
  }
  if (rc) io->events = old;
  return rc;
}

int chime__io_arm(chime_loop *loop, struct chime__io *io, uint32_t events) {
  const struct chime__backend_ops *ops = loop->poller.ops;
  struct chime__poller *p = &loop->poller;
  bool fresh = !io->events, was = !fresh;
  io->events = events;
  int rc = fresh ? ops->add(p, io) : ops->mod(p, io);
  if (rc == -ENOENT && !fresh) { /* closed and reopened since */
    rc = ops->add(p, io);
    fresh = true;
  }
  if (rc == -EEXIST && fresh) rc = ops->mod(p, io); /* registered by a record since freed */
  if (rc) {
    if (was) ops->del(p, io); /* whatever is left of the old registration */
    io->events = 0;
  }
  return rc ? rc : fresh || !ops->same_file;
}

static void wake_drain(chime_loop *loop, struct chime__io *io, uint32_t revents) {
  CHIME__UNUSED(loop);
  CHIME__UNUSED(revents);
  char buf[64];
  while (read(io->fd, buf, sizeof buf) > 0) {
  }
}

/* The descriptor that posts and signal handlers wake the loop with. */
static int wake_open(chime_loop *loop) {
  int fds[2];
  if (CHIME__FAULT()) return -EMFILE;
#ifdef __linux__
  fds[0] = fds[1] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fds[0] < 0) return -errno;
#else
  if (pipe(fds) != 0) return -errno;
  for (int i = 0; i < 2; i++) {
    fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK);
    fcntl(fds[i], F_SETFD, FD_CLOEXEC);
  }
#endif
  loop->wake_io.fd = fds[0];
  loop->wake_io.cb = wake_drain;
  int rc = chime__io_set(loop, &loop->wake_io, POLLIN);
  if (rc) {
    close(fds[0]);
    if (fds[1] != fds[0]) close(fds[1]);
    loop->wake_io.fd = -1;
    return rc;
  }
  loop->wake_wfd = fds[1];
  return 0;
}

void chime__loop_wake(chime_loop *loop) {
  uint64_t one = 1;
  ssize_t w = write(loop->wake_wfd, &one, sizeof one); /* full eventfd or pipe: already awake */
  (void)w;
}

static void wake_close(chime_loop *loop) {
  chime__io_set(loop, &loop->wake_io, 0);
  if (loop->wake_wfd != loop->wake_io.fd) close(loop->wake_wfd);
  close(loop->wake_io.fd);
  loop->wake_io.fd = loop->wake_wfd = -1;
}

/* ---- the scheduler ------------------------------------------------------- */

static void fire_timers(chime_loop *loop) {
  if (!loop->timers.count) return; /* nothing armed: no clock reading */
  chime_ns now = chime__now(loop);
  struct chime__timer *e;
  while ((e = chime__timers_pop(&loop->timers, now)))
    chime__timer_fired(loop, e);
}

/* Whether the loop has work it need not wait for. */
static bool work_now(chime_loop *loop) {
  if (loop->runq_head || atomic_load(&loop->posted)) return true;
  for (unsigned i = 0; i < loop->nmods; i++)
    if (loop->mods[i].m->pending && loop->mods[i].m->pending(loop, loop->mods[i].state)) return true;
  return false;
}

#ifdef CHIME_TESTING
#include "testing.h"
static _Atomic long backend_waits;
static _Atomic chime_ns last_timeout;
long chime__test_backend_waits(void) { return backend_waits; }
long long chime__test_last_wait_timeout(void) { return (long long)last_timeout; }
#define COUNT_WAIT(t) ((void)backend_waits++, (void)(last_timeout = (t)))
#else
#define COUNT_WAIT(t) ((void)0)
#endif

/* One wait of the backend, up to `timeout` ns (< 0: without bound). */
static int backend_wait(chime_loop *loop, chime_ns timeout) {
  COUNT_WAIT(timeout);
  return loop->poller.ops->wait(&loop->poller, timeout);
}

/* A wait the kernel may end late by a part of its length (epoll and poll:
 * 0.1%, 0.5% for a niced thread, up to 100 ms, whatever the timer slack)
 * is asked for short of its end, then the rest: so a deadline a minute
 * away is met to the microsecond, not 60 ms late, at the cost of a
 * wake-up or two per long wait.  Waits up to SLACK_FREE go at once (their
 * slack is 10 us at most, 50 us niced). */
#define SLACK_FREE CHIME_MS(10)

static int real_wait(chime_loop *loop, chime_ns now, chime_ns next) {
  for (;;) {
    chime_ns t = next == CHIME_NEVER ? -1 : (next > now ? next - now : 0);
    chime_ns ask = t > SLACK_FREE ? t - t / 128 : t;
    int n = backend_wait(loop, ask);
    if (n != 0 || ask == t || work_now(loop)) return n;
    now = chime__now(loop);
  }
}

/* The virtual clock, nothing to run: time jumps to the next deadline
 * (`next`), except while calls are out in the pool or children run, when
 * it runs no faster than real time (it must not jump ahead of work done
 * outside the loop).  With no
 * deadline, the loop waits up to `block` real ns (< 0: without bound) for a
 * descriptor or another thread. */
static int virtual_wait(chime_loop *loop, chime_ns next, chime_ns block) {
  int n = backend_wait(loop, 0);
  if (n != 0 || work_now(loop)) return n;
  if (next == CHIME_NEVER) return backend_wait(loop, block);
  if (next <= loop->vnow) return 0;
  if (loop->outside_busy) {
    chime_ns gap = next - loop->vnow, t0 = chime__mono();
    n = backend_wait(loop, block >= 0 && block < gap ? block : gap);
    chime_ns spent = chime__mono() - t0;
    loop->vnow += spent < gap ? spent : gap;
    return n;
  }
  loop->vnow = next;
  return 0;
}

/* Waits for whatever can wake a task: descriptors, deadlines (up to
 * `until`), signals, other threads; on the virtual clock, see
 * virtual_wait.  Returns 0 or a negative errno. */
static int wait_for_work(chime_loop *loop, chime_ns until, chime_ns block) {
  /* no deadline at all: the wait needs no clock reading */
  chime_ns now = loop->timers.count || until != CHIME_NEVER ? chime__now(loop) : 0;
  chime_ns next = chime__timers_next(&loop->timers, now);
  if (next > until) next = until;
  int n = 0;
  if (loop->virtual_clock) {
    n = virtual_wait(loop, next, block);
  } else {
    n = real_wait(loop, now, next);
  }
  return n < 0 ? n : 0;
}

/* One round: waits (unless tasks are runnable), then runs what is due. */
static int round_once(chime_loop *loop, chime_ns until, chime_ns block) {
  int rc = 0;
  if (!loop->runq_head)
    rc = wait_for_work(loop, until, block);
  else if (loop->nwatch > 0 || ++loop->busy_rounds % 16 == 0)
    rc = backend_wait(loop, 0); /* busy as it is, the loop still sees descriptors (children's pidfds too) */
  if (rc < 0) return rc;
  chime__posts_run(loop);
  for (unsigned i = 0; i < loop->nmods; i++)
    if (loop->mods[i].m->round) loop->mods[i].m->round(loop, loop->mods[i].state);
  fire_timers(loop);
  if (!loop->stop) chime__sched_resume(loop); /* a post may have stopped the loop */
  return 0;
}

/* Runs rounds until the loop stops, has no tasks, or (when nothing is
 * runnable, or after at least one round) `until` has come.  `once`: one
 * round, which may wait (up to until, or up to `block` on the virtual
 * clock). */
static int run_rounds(chime_loop *loop, chime_ns until, bool once, chime_ns block) {
  for (uint64_t rounds = 0; !loop->stop && (loop->ntasks > 0 || atomic_load(&loop->posted) || (once && rounds == 0));
       rounds++) {
    if (once ? rounds > 0 : until != CHIME_NEVER && chime__now(loop) >= until && (!loop->runq_head || rounds > 0))
      break;
    int rc = round_once(loop, until, block);
    if (rc < 0) return rc;
  }
  return 0;
}

/* Makes the loop this thread's running loop for the duration of
 * run_rounds. */
static int run_here(chime_loop *loop, chime_ns until, bool once, chime_ns block) {
  void *altstack;
  int rc = chime__altstack_enter(&altstack);
  if (rc) return rc;
  chime__tls_loop = loop;
  loop->running = true;
  chime__coro_adopt_thread(&loop->sched);
#if defined(__linux__) && defined(PR_SET_TIMERSLACK)
  /* Deadlines to the microsecond: no timer slack while the loop runs. */
  int slack = loop->virtual_clock ? -1 : prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
  if (slack > 1) prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
#endif
  rc = run_rounds(loop, until, once, block);
#if defined(__linux__) && defined(PR_SET_TIMERSLACK)
  if (slack > 1) prctl(PR_SET_TIMERSLACK, (unsigned long)slack, 0, 0, 0);
#endif
  loop->running = false;
  loop->stop = false;
  chime__tls_loop = NULL;
  chime__altstack_leave(altstack);
  return rc;
}

int chime_loop_run(chime_loop *loop) {
  if (!loop) return -EINVAL;
  if (!chime__loop_owned(loop)) return -EPERM;
  if (chime__tls_loop) return -EBUSY;
  return run_here(loop, CHIME_NEVER, false, -1);
}

int chime_loop_stop(chime_loop *loop) {
  if (!loop) return -EINVAL;
  if (chime__tls_loop != loop) return -EPERM;
  loop->stop = true;
  return 0;
}

/* ---- embedding -------------------------------------------------------------- */

int chime_loop_fd(const chime_loop *loop) {
  if (!loop) return -EINVAL;
  return loop->poller.ops->fd ? loop->poller.ops->fd(&loop->poller) : -ENOTSUP;
}

chime_ns chime_loop_timeout(chime_loop *loop) {
  if (!loop) return -EINVAL;
  if (work_now(loop)) return 0;
  chime_ns now = chime__now(loop), next = chime__timers_next(&loop->timers, now);
  if (next == CHIME_NEVER) return -1;
  if (next <= now) return 0;
  /* the virtual clock jumps, unless work outside the loop holds it to real time */
  return loop->virtual_clock && !loop->outside_busy ? 0 : next - now;
}

int chime_loop_run_once(chime_loop *loop, chime_ns timeout) {
  if (!loop) return -EINVAL;
  if (!chime__loop_owned(loop)) return -EPERM;
  if (chime__tls_loop) return -EBUSY;
  if (timeout < 0 && loop->ntasks == 0 && !atomic_load(&loop->posted)) return 0; /* nothing could come */
  chime_ns until = timeout >= 0 && !loop->virtual_clock ? chime__after(chime__now(loop), timeout) : CHIME_NEVER;
  int rc = run_here(loop, until, true, timeout < 0 ? -1 : timeout);
  return rc < 0 ? rc : loop->ntasks > INT32_MAX ? INT32_MAX : (int)loop->ntasks;
}

/* ---- shutdown ------------------------------------------------------------ */

void chime__report_name(chime_report *r, const char *name) {
  size_t len = strlen(r->names), cap = sizeof r->names;
  if (!name[0] || (len >= 3 && strcmp(r->names + len - 3, "...") == 0)) return;
  size_t need = (len ? 2 : 0) + strlen(name);
  if (len + need + 4 > cap) { /* keep room to mark the cut */
    snprintf(r->names + len, cap - len, "%s...", len ? ", " : "");
    return;
  }
  snprintf(r->names + len, cap - len, "%s%s", len ? ", " : "", name);
}

static void abandon_all(chime_loop *loop, chime_report *report) {
  chime__runq_clear(loop);
  for (unsigned i = 0; i < loop->nmods; i++)
    if (loop->mods[i].m->abandon) loop->mods[i].m->abandon(loop, loop->mods[i].state, report);
  while (loop->all.head) {
    struct chime__task *t = loop->all.head;
    if (report) {
      report->abandoned++;
      chime__report_name(report, t->name);
    }
    t->result = -ECANCELED;
    chime__task_abandon(loop, t);
  }
}

int chime_loop_shutdown(chime_loop *loop, chime_ns grace, chime_report *report) {
  if (!loop) return -EINVAL;
  if (!chime__loop_owned(loop)) return -EPERM;
  if (loop->running || chime__tls_loop) return -EBUSY;
  if (report) {
    report->abandoned = 0;
    report->names[0] = '\0';
  }
  loop->shutting_down = true;
  for (unsigned i = 0; i < loop->nmods; i++)
    if (loop->mods[i].m->shutdown) loop->mods[i].m->shutdown(loop, loop->mods[i].state);
  for (struct chime__task *t = loop->all.head; t; t = t->next_in_list)
    chime__task_cancel(loop, t, CHIME__SHUTDOWN);
  chime_ns until = grace >= 0 ? chime__after(chime__now(loop), grace) : CHIME_NEVER;
  int rc = run_here(loop, until, false, -1);
  /* Tasks still alive past the grace period: abandoned. */
  abandon_all(loop, report);
  loop->shutting_down = false;
  return rc;
}

/* ---- modules --------------------------------------------------------------- */

int chime__module_attach(chime_loop *loop, const struct chime__module *m, void **state) {
  void *st = chime__module(loop, m);
  if (!st) {
    if (loop->nmods == CHIME__NMODULES) return -ENOMEM; /* more modules than the library has */
    st = chime__calloc(1, m->size ? m->size : 1);
    if (!st) return -ENOMEM;
    loop->mods[loop->nmods].m = m;
    loop->mods[loop->nmods].state = st;
    loop->nmods++;
  }
  *state = st;
  return 0;
}

void chime_loop_free(chime_loop *loop) {
  if (!loop || loop->running || !chime__loop_owned(loop)) return;
  abandon_all(loop, NULL); /* tasks waiting on the pool let go of their calls first */
  for (unsigned i = 0; i < loop->nmods; i++) /* then no thread posts to the loop, no child is left */
    if (loop->mods[i].m->release) loop->mods[i].m->release(loop, loop->mods[i].state);
  chime__posts_drop(loop);
  /* a thread still inside chime_loop_post wakes the loop under post_mu:
   * once we hold it, none is */
  pthread_mutex_lock(&loop->post_mu);
  pthread_mutex_unlock(&loop->post_mu);
  for (unsigned i = loop->nmods; i-- > 0;) {
    if (loop->mods[i].m->fini) loop->mods[i].m->fini(loop, loop->mods[i].state);
    chime__free(loop->mods[i].state);
  }
  loop->nmods = 0;
  chime__groups_free(loop);
  wake_close(loop);
  loop->poller.ops->fini(&loop->poller);
  chime__stack_pool_free(loop);
  chime__slabs_fini(&loop->slabs);
  chime__timers_fini(&loop->timers);
  pthread_mutex_destroy(&loop->post_mu);
  chime__free(loop);
}
