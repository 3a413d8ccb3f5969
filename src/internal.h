/* internal.h - private types shared between the library's files.
 *
 * Nothing here is installed.  Names shared between files start with chime__;
 * static names inside a file have no prefix.
 *
 * Objects.  Tasks (and, later, periodic jobs) live in per-loop slabs
 * (slab.c) and begin with a common header, struct chime__obj: a generation
 * that makes stale handles detectable, a kind, and the object's timer entry.
 * A handle is (generation << 32 | slab index).  The timer entry sits at the
 * same offset in every kind, so a fired timer leads back to its object.
 */
#ifndef CHIME_INTERNAL_H
#define CHIME_INTERNAL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "chime.h"
#include "coro/coro.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CHIME__UNUSED(x) ((void)(x))
#define CHIME__LIKELY(x) __builtin_expect(!!(x), 1)
#define CHIME__UNLIKELY(x) __builtin_expect(!!(x), 0)
#define CHIME__CONTAINER(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* ---- fault injection and allocation (fault.c) -------------------------- */

/* True when a fallible call must fail now (testing builds only: the tests
 * walk a failure through every such call).  Every allocation and every
 * system call that can fail is preceded by CHIME__FAULT(). */
#ifdef CHIME_TESTING
bool chime__fault(void);
#define CHIME__FAULT() CHIME__UNLIKELY(chime__fault())
#else
#define CHIME__FAULT() 0
#endif

void *chime__malloc(size_t size);
void *chime__calloc(size_t n, size_t size);
void *chime__realloc(void *p, size_t size);
void chime__free(void *p);

/* mmap/munmap of anonymous read-write memory, through the fault hook. */
void *chime__map(size_t size);
void chime__unmap(void *p, size_t size);

/* ---- clock (clock.c) ---------------------------------------------------- */

chime_ns chime__mono(void);
/* CLOCK_REALTIME now: where a virtual clock's wall side starts. */
chime_ns chime__wall_start(void);

/* ---- timers (timers.c) --------------------------------------------------- */

/* An entry in a loop's timer structure: 16 bytes, embedded in its owner.
 * `pos` says where the entry is (timers.c explains); pos & 3 == 0 means it
 * is not armed, and then its owner may use both fields as it likes. */
struct chime__timer {
  chime_ns when; /* the deadline */
  uintptr_t pos; /* where it is in the structure */
};

/* A wheel of slots for deadlines in the next few seconds, a sorted run for
 * the current slot, and a heap for the far future.  See timers.c. */
#define CHIME__WHEEL_BITS 12
#define CHIME__WHEEL_SLOTS (1u << CHIME__WHEEL_BITS)
#define CHIME__SLOT_SHIFT 20 /* slot width: 2^20 ns, about 1 ms */
#define CHIME__CHUNK 124     /* entries per chunk: 512-byte chunks */

struct chime__near {
  chime_ns when;
  struct chime__timer *e; /* NULL: disarmed (a tombstone) */
};

struct chime__far {
  chime_ns when;
  uint64_t seq; /* arming order among equal deadlines */
  struct chime__timer *e;
};

struct chime__chunk;
struct chime__chunk_block;
struct chime__slabs;

struct chime__slot {
  struct chime__chunk *head, *tail; /* arrays of entries, in arming order */
};

struct chime__timers {
  uint64_t cursor;          /* slot number (when >> SLOT_SHIFT) of the next slot to expand */
  uint64_t count;           /* armed entries */
  uint64_t reserved;        /* entries that may be armed at once */
  uint64_t cap;             /* room in the near run, the far heap and the scratch (>= reserved) */
  uint64_t seq;             /* arming counter for the far heap */
  uint64_t wheel_count;     /* live entries in the wheel */
  uint64_t nchunks;         /* chunks allocated */
  uint64_t chunks_checked;  /* the largest reservation known to have its chunks */
  struct chime__near *near; /* the sorted run is near[near_head, near_tail) */
  uint32_t near_head, near_tail;
  struct chime__far *far; /* binary min-heap of nfar elements */
  uint32_t nfar;
  struct chime__near *scratch;       /* for sorting a slot */
  struct chime__chunk *pool;         /* chunks given back */
  struct chime__chunk_block *blocks; /* every block mapped, in order */
  struct chime__chunk_block *last_block;
  struct chime__chunk_block *fresh_block; /* the block whose chunks [fresh, end) were never used */
  uint32_t fresh;
  const struct chime__slabs *objs;        /* the entries' owners: wheel arrays hold their indices */
  uint64_t summary;                       /* bit i: bits[i] != 0 */
  uint64_t bits[CHIME__WHEEL_SLOTS / 64]; /* bit s: slot s has live entries */
  uint32_t live[CHIME__WHEEL_SLOTS];      /* live entries per slot */
  struct chime__slot slot[CHIME__WHEEL_SLOTS];
};

/* `now`: the clock's reading, where the wheel starts.  Every entry armed
 * must be the timer of an object of `objs`. */
void chime__timers_init(struct chime__timers *t, chime_ns now, const struct chime__slabs *objs);
void chime__timers_fini(struct chime__timers *t);
/* Makes room for `n` more entries that may be armed at once, so that arming
 * never allocates.  Returns 0 or -ENOMEM. */
int chime__timers_reserve(struct chime__timers *t, uint64_t n);
/* Gives back room reserved for `n` entries (their owners are gone). */
void chime__timers_unreserve(struct chime__timers *t, uint64_t n);
/* Arms an entry that is not armed.  Never fails (room was reserved). */
void chime__timers_add(struct chime__timers *t, struct chime__timer *e, chime_ns when);
/* Disarms an entry; does nothing if it is not armed. */
void chime__timers_del(struct chime__timers *t, struct chime__timer *e);
/* A time no later than the earliest deadline (the earliest deadline itself
 * when it is within a millisecond or two of `now`, else possibly the start
 * of its slot: waking then and asking again gives the exact one), or
 * CHIME_NEVER if nothing is armed. */
chime_ns chime__timers_next(struct chime__timers *t, chime_ns now);
/* Disarms and returns the earliest entry if its deadline is <= now, else
 * NULL.  Entries with equal deadlines come out in the order they were
 * armed. */
struct chime__timer *chime__timers_pop(struct chime__timers *t, chime_ns now);

static inline bool chime__timer_armed(const struct chime__timer *e) { return (e->pos & 3) != 0; }

/* ---- objects and slabs (slab.c) ----------------------------------------- */

enum chime__kind { CHIME__FREE = 0, CHIME__TASK = 1, CHIME__JOB = 2 };

/* The common header of every object a handle can name. */
struct chime__obj {
  uint32_t gen;   /* generation: bumped when the object is freed */
  uint8_t kind;   /* enum chime__kind */
  uint8_t state;  /* kind-specific */
  uint16_t flags; /* kind-specific */
  struct chime__timer timer;
};

/* Object classes: each slab holds objects of one power-of-two size. */
enum chime__class { CHIME__CLASS_TASK, CHIME__CLASS_JOB, CHIME__NCLASSES };

struct chime__slabs {
  struct chime__slab **dir; /* slab number -> slab */
  uint32_t nslabs, cap;
  uint32_t seed;                             /* first generation of fresh slots */
  struct chime__obj *free[CHIME__NCLASSES];  /* free lists */
  struct chime__slab *bump[CHIME__NCLASSES]; /* slab with never-used slots */
};

void chime__slabs_init(struct chime__slabs *s, uint32_t seed);
void chime__slabs_fini(struct chime__slabs *s);
/* A zeroed object of the class, generation set, kind left FREE for the
 * caller to set.  NULL on ENOMEM. */
struct chime__obj *chime__obj_alloc(struct chime__slabs *s, enum chime__class c);
/* Frees an object: its generation moves on, so its handles go stale. */
void chime__obj_free(struct chime__slabs *s, struct chime__obj *o);
/* The handle of a live object. */
uint64_t chime__obj_handle(const struct chime__obj *o);
/* An object's index in its loop's slabs (never 0: slot 0 of a slab is its
 * header), and the object at an index (which must be one). */
uint32_t chime__obj_index(const struct chime__obj *o);
struct chime__obj *chime__obj_at(const struct chime__slabs *s, uint32_t index);
/* The live object a handle names, or NULL. */
struct chime__obj *chime__obj_lookup(const struct chime__slabs *s, uint64_t id);
/* Calls fn(o, ctx) for every object of class c that is not free, in slab
 * order; fn may free the object it is given. */
void chime__slabs_each(struct chime__slabs *s, enum chime__class c, void (*fn)(struct chime__obj *o, void *ctx),
                       void *ctx);

/* ---- backends (backend/) --------------------------------------------------- */

struct chime__io;
typedef void (*chime__io_cb)(chime_loop *loop, struct chime__io *io, uint32_t revents);

/* A file descriptor the loop watches.  Events use poll(2)'s bits. */
struct chime__io {
  int fd;
  uint32_t events; /* POLLIN, POLLOUT: what is being watched (0: not registered) */
  uint32_t index;  /* backend-private (poll: position in its array) */
  bool oneshot;    /* disarmed by its first event, until armed again */
  chime__io_cb cb; /* called with the ready events */
};

struct chime__backend_ops {
  const char *name;
  int (*init)(chime_loop *loop);
  void (*fini)(chime_loop *loop);
  int (*add)(chime_loop *loop, struct chime__io *io);
  int (*mod)(chime_loop *loop, struct chime__io *io);
  void (*del)(chime_loop *loop, struct chime__io *io);
  /* Waits up to `timeout` ns (< 0: without bound, 0: not at all), never
   * returning early because of rounding, and calls the callbacks of ready
   * descriptors.  Returns the number of callbacks, or a negative errno. */
  int (*wait)(chime_loop *loop, chime_ns timeout);
  /* A descriptor readable while a wait would report something, or NULL. */
  int (*fd)(const chime_loop *loop);
  /* mod fails (-ENOENT) when the descriptor's file is not the one added. */
  bool same_file;
};

/* Whole milliseconds for poll(2) and epoll_wait(2): rounded up, so that a
 * wait never ends early; < 0 stays -1 (no bound). */
static inline int chime__timeout_ms(chime_ns timeout) {
  if (timeout < 0) return -1;
  chime_ns up = timeout / 1000000 + (timeout % 1000000 != 0);
  return up > 0x7fffffff ? 0x7fffffff : (int)up;
}

/* Under ThreadSanitizer a signal handler runs only inside a call it
 * intercepts as blocking (poll, epoll_wait), not in a raw system call
 * (epoll_pwait2) or ppoll: there the backends wait in whole milliseconds,
 * so that signals reach their loop as they do without it. */
#if defined(__SANITIZE_THREAD__)
#define CHIME__TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CHIME__TSAN 1
#endif
#endif
#ifndef CHIME__TSAN
#define CHIME__TSAN 0
#endif

#ifdef __linux__
extern const struct chime__backend_ops chime__epoll_ops;
#endif
extern const struct chime__backend_ops chime__poll_ops;

/* ---- tasks (task.c) ------------------------------------------------------ */

enum chime__task_state {
  CHIME__READY = 1, /* in the run queue */
  CHIME__RUNNING,   /* the current task */
  CHIME__WAITING,   /* suspended until woken */
  CHIME__DONE,      /* returned; record kept for its handle */
};

/* Flags of tasks and jobs (the first three mean the same in both). */
enum chime__task_flag {
  CHIME__CANCELLED = 1u << 0, /* cancel requested */
  CHIME__SHIELDED = 1u << 1,  /* cancellation held back (chime_shield) */
  CHIME__HANDLE = 1u << 2,    /* a handle owns the record */
  CHIME__MAIN = 1u << 3,      /* chime_run's main task: its end stops the loop */
  CHIME__TIMED_OUT = 1u << 4, /* a run cancelled by its job's timeout */
  CHIME__REPLACED = 1u << 5,  /* a run cancelled by CHIME_OVERLAP_REPLACE */
  CHIME__RUN = 1u << 6,       /* a run of a job that suspended: in loop->runs */
  CHIME__INTERNAL = 1u << 7,  /* the runner: in no list, not counted as a task */
};

/* What a waiting task waits for (so that cancellation can judge it). */
enum chime__wait {
  CHIME__WAIT_NONE,
  CHIME__WAIT_SLEEP,
  CHIME__WAIT_JOIN,     /* wait_on: the task */
  CHIME__WAIT_JOIN_JOB, /* wait_on: the job */
  CHIME__WAIT_GROUP,    /* wait_on: the group */
  CHIME__WAIT_RUNNER,   /* the runner, waiting for due jobs */
  CHIME__WAIT_FD,       /* wait_on: the descriptor's record */
  CHIME__WAIT_THREAD,   /* wait_on: the pool's work (never woken by a cancel) */
  CHIME__WAIT_SIGNAL,   /* wait_on: the task's struct chime__sigwait */
  CHIME__WAIT_PROC,     /* wait_on: the child */
};

/* The value a timer delivers to the task it wakes: never what a wait
 * returns otherwise (0, a few event bits, or a negative errno). */
#define CHIME__WOKEN_BY_TIMER 0x40000000

struct chime__task {
  struct chime__obj o;        /* gen, kind, state (chime__task_state), flags, timer */
  struct chime__coro coro;    /* saved context, stack bounds, sanitizer state */
  struct chime__stack *stack; /* the task's stack while it has one */
  chime_fn fn;                /* the task's function and its argument */
  void *arg;
  int result;                   /* fn's return value, once DONE */
  int wake;                     /* what the current suspension returns */
  uint8_t wait;                 /* enum chime__wait while WAITING */
  void *wait_on;                /* the task or group waited for */
  struct chime__task *next;     /* run queue link */
  struct chime__task *prev_all; /* list of the loop's unfinished tasks */
  struct chime__task *next_all;
  struct chime__task *joiner; /* the task waiting in chime_join for this one */
  chime_group *group;         /* the group that owns this task, or NULL */
  struct chime__task *prev_in_group, *next_in_group;
  struct chime__job *job; /* the job whose run this task is running, or NULL */
  chime_ns deadline;      /* the run's timeout: cancelled if still going then (0: none) */
  chime_ns tick;          /* the grid time of the tick the run is for */
  char name[32];
};

/* ---- periodic jobs (periodic.c) ----------------------------------------- */

/* The options of a job that matter after it was created, without padding
 * (every byte is a field, so that memcmp compares settings). */
struct chime__settings {
  chime_ns jitter, timeout, backoff_base, backoff_max, until, window;
  uint64_t max_runs;
  void (*dtor)(void *arg);
  uint32_t max_catch_up;
  uint16_t max_concurrent;
  uint8_t schedule, missed, overlap, on_error;
  uint8_t zero[4]; /* explicit padding, always 0 */
};

/* What jobs share: target, destructor, options, name, group.  Immutable
 * once made and reference-counted; jobs created with equal settings share
 * one (the loop keeps the last one made), and changing a job's name or
 * group gives it a copy. */
struct chime__spec {
  uint32_t refs;
  chime_fn target;
  struct chime__settings opts;
  chime_group *group;   /* the group that owns the jobs, or NULL */
  chime_ns step, phase; /* coalescing boundaries: phase + k * step (step 0: none) */
  chime_cron_expr *cron; /* calendar jobs: their expression (the spec's own copy), else NULL */
  const chime_tz *tz;    /* calendar jobs: their zone (the loop's, calendar.c) */
  char name[32];
};

enum chime__job_state {
  CHIME__JOB_ACTIVE = 1, /* ticking */
  CHIME__JOB_STOPPING,   /* no more ticks; runs still going */
  CHIME__JOB_DONE,       /* ended: dtor called, record kept for its handle */
};

enum chime__job_flag {
  /* CHIME__CANCELLED, CHIME__HANDLE as for tasks */
  CHIME__J_DUE = 1u << 8,      /* in loop's due queue (timer fields are the links) */
  CHIME__J_QUEUED = 1u << 9,   /* a tick waits for the run going (CHIME_OVERLAP_QUEUE) */
  CHIME__J_CATCHUP = 1u << 10, /* the next tick is already due: armed when the run returns */
  CHIME__J_JOINED = 1u << 11,  /* a task waits in chime_join for it */
};

/* A periodic job: 120 bytes, plus 8 for its entry in a wheel slot: all a
 * job holds between runs. */
struct chime__job {
  struct chime__obj o;      /* gen, kind, state (chime__job_state), flags, timer (the next tick) */
  struct chime__spec *spec; /* shared settings */
  void *arg;
  chime_ns interval; /* calendar jobs: the wall-clock instant of the tick at `due` */
  chime_ns due;      /* the grid time of the next tick to handle; the join result once stopping */
  uint64_t runs;
  uint32_t errors, timeouts; /* counters saturate at UINT32_MAX */
  uint32_t skipped_overlap, skipped_missed, skipped_backoff;
  uint8_t running;   /* runs going (at most 255: max_concurrent) */
  uint8_t failures;  /* failed runs in a row (CHIME_ERROR_BACKOFF), saturating */
  uint16_t catch_up; /* catch-up runs in a row (CHIME_MISSED_BURST) */
  chime_ns last_late, max_late, last_duration, max_duration;
};

/* A timer of a job fired: queue the job for the runner. */
void chime__job_fired(chime_loop *loop, struct chime__job *j);
void chime__job_cancel(chime_loop *loop, struct chime__job *j);
void chime__job_free(chime_loop *loop, struct chime__job *j);
int chime__job_set_name(chime_loop *loop, struct chime__job *j, const char *name);
int chime__job_set_group(chime_loop *loop, struct chime__job *j, chime_group *g);
static inline int chime__job_result(const struct chime__job *j) { return (int)j->due; }
/* The runner task, running a job inline, is about to suspend: it becomes
 * that run's own task, and a new runner takes over the due queue. */
void chime__runner_promote(chime_loop *loop, struct chime__task *t);
/* Starts a runner if jobs are due and there is none.  Returns 0 or
 * -ENOMEM. */
int chime__runner_ensure(chime_loop *loop);
/* Creates a job (chime_every, chime_cron): `cron` (copied) and `tz` for a
 * calendar job, else NULL and the interval. */
int chime__job_create(chime_loop *loop, chime_ns interval, chime_fn target, void *arg, const chime_every_opts *o,
                      chime_task *out, const chime_cron_expr *cron, const chime_tz *tz);
/* The wall clock was set: calendar jobs plan their next ticks afresh. */
void chime__jobs_wall_moved(chime_loop *loop);
/* Cancels every job (the shutdown), or every job of a group. */
void chime__jobs_cancel(chime_loop *loop, chime_group *only);
/* Ends every job, run and runner left (after the grace period), adding the
 * jobs to the report. */
void chime__jobs_abandon(chime_loop *loop, chime_report *report);
/* At loop free: drops every reference to specs (jobs' and the cache's). */
void chime__specs_release(chime_loop *loop);

/* The task or job a handle names, for a call made on the loop running
 * here: 0, -EPERM (no loop here), or -EINVAL (no such task or job). */
int chime__handle_lookup(chime_task h, chime_loop **loopp, struct chime__obj **out);

/* now + d (d >= 0), or CHIME_NEVER where that overflows. */
static inline chime_ns chime__after(chime_ns now, chime_ns d) {
  chime_ns t;
  return __builtin_add_overflow(now, d, &t) ? CHIME_NEVER : t;
}

/* splitmix64's finaliser: a good mix of the bits of x. */
static inline uint64_t chime__mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

static inline bool chime__cancel_pending(const struct chime__task *t) {
  return (t->o.flags & (CHIME__CANCELLED | CHIME__SHIELDED)) == CHIME__CANCELLED;
}

/* ---- calendar jobs (calendar.c, cron.c) ---------------------------------- */

/* The first instant the expression fires after wall instant `wall`, or
 * CHIME_NEVER. */
chime_ns chime__cron_after(const chime_cron_expr *cron, const chime_tz *tz, chime_ns wall);
/* From tick w on, steps over the ticks at or before `limit`, counting them
 * in *count (up to a cap); returns the first tick after limit. */
chime_ns chime__cron_skip(const struct chime__spec *s, chime_ns w, chime_ns limit, uint64_t *count);
bool chime__cron_equal(const chime_cron_expr *a, const chime_cron_expr *b);
chime_cron_expr *chime__cron_dup(const chime_cron_expr *c);
/* At loop free: the jump watcher and the zones. */
void chime__calendar_free(chime_loop *loop);
/* The wall clock minus the monotonic one, now (clock.c). */
chime_ns chime__wall_offset(const chime_loop *loop);

/* ---- posts and the pool (pool.c) ----------------------------------------- */

/* Something another thread hands to the loop: run on the loop's thread,
 * outside any task, or dropped if the loop is freed first. */
struct chime__post {
  struct chime__post *next;
  void (*run)(struct chime__post *p);
  void (*drop)(struct chime__post *p);
};

/* Any thread: queues a post and wakes the loop. */
void chime__post_push(chime_loop *loop, struct chime__post *p);
void chime__posts_run(chime_loop *loop);
void chime__posts_drop(chime_loop *loop);
/* At loop free: the pool lets go of the loop. */
void chime__pool_release(chime_loop *loop);
struct chime__work;
/* A task waiting for a call will never run again: the call's result is
 * thrown away when it comes. */
void chime__work_forget(struct chime__work *w);

/* ---- loops (loop.c) ---------------------------------------------------- */

#define CHIME__NSIG 64 /* signals 1..63 */

struct chime_loop {
  struct chime__timers timers;
  struct chime__slabs slabs;
  /* scheduling */
  struct chime__task *cur;       /* the running task, NULL in the scheduler */
  struct chime__task *runq_head; /* FIFO of READY tasks */
  struct chime__task *runq_tail;
  struct chime__task *dead; /* a finished task whose stack is still in use */
  struct chime__coro sched; /* the scheduler's context (the thread's stack) */
  int budget;               /* task switches left before the scheduler runs */
  int coop;                 /* I/O operations done without waiting since the scheduler ran */
  unsigned busy_rounds;     /* rounds that found tasks runnable (every 16th polls descriptors) */
  bool stop;                /* chime_loop_stop, or the main task ended */
  bool running;             /* inside chime_loop_run */
  bool shutting_down;       /* new tasks start cancelled */
  /* tasks */
  struct chime__task *all_head; /* unfinished tasks, oldest first */
  struct chime__task *all_tail;
  uint64_t ntasks; /* unfinished tasks */
  /* clock */
  bool virtual_clock;
  chime_ns vnow;      /* virtual time */
  chime_ns wall_base; /* the virtual wall clock is wall_base + vnow */
  /* stacks */
  size_t stack_size;               /* usable bytes per stack */
  struct chime__stack *stack_pool; /* free stacks */
  uint64_t pool_count;
  uint64_t stacks_mapped; /* stacks mapped, in the pool or in use */
  /* backend */
  const struct chime__backend_ops *ops;
  void *be;                     /* backend state */
  uint32_t nio;                 /* tasks waiting on descriptors */
  struct chime__fdrec **fdrecs; /* descriptor number -> its record (io.c) */
  size_t nfdrecs;
  /* wake-ups from signal handlers and other threads */
  struct chime__io wake_io; /* read end */
  int wake_wfd;             /* write end (the same fd for an eventfd) */
  chime_group *groups;      /* groups not yet freed */
  /* signals (signal.c): bit s of a mask is signal s */
  _Atomic uint64_t sig_caught;               /* signals the loop catches */
  uint64_t sig_cancel_main;                  /* signals that cancel chime_run's main task */
  uint64_t sig_procs;                        /* SIGCHLD's bit while children need it (no pidfd) */
  atomic_bool sig_main_seen;                 /* one of those arrived already */
  atomic_bool sig_any;                       /* some sig_count is not 0 */
  atomic_uint sig_count[CHIME__NSIG];        /* occurrences caught and not yet handed out */
  int sig_slot;                              /* 1 + the loop's place in the handler's list, or 0 */
  struct chime__sigwait *sig_waiters;        /* tasks waiting, oldest first */
  struct chime__sigwait *sig_waiters_tail;
  struct chime_proc *procs;                  /* children not yet freed (process.c) */
  /* calendar jobs (calendar.c) */
  bool calendar;             /* the loop has had calendar jobs: it watches the wall clock */
  struct chime__io jump_io;  /* a timerfd cancelled by wall-clock jumps (fd -1: none) */
  struct chime__tzc *tzs;    /* zones loaded, by name */
  /* calls from other threads (pool.c) */
  pthread_mutex_t post_mu;       /* guards the queue */
  struct chime__post *post_head; /* queued posts, oldest first */
  struct chime__post *post_tail;
  atomic_bool posted;            /* the queue is not empty (read without the lock) */
  struct chime__pool *pool;      /* threads for chime_to_thread, started on demand */
  unsigned pool_threads;         /* at most this many */
  uint64_t outside_busy;         /* pool calls not yet back, and children running: work
                                    the virtual clock must not outrun */
  /* periodic jobs */
  struct chime__task *runner;  /* runs due jobs inline; NULL until needed */
  struct chime__job *due_head; /* jobs whose tick fired, oldest first */
  struct chime__job *due_tail;
  struct chime__task *runs;       /* runs that suspended (linked by prev_all/next_all) */
  struct chime__spec *spec_cache; /* the last spec made */
  uint64_t seed;                  /* for jitter: random, or fixed on the virtual clock */
  chime_ns perturb;               /* phase of the loop's coalescing boundaries */
  struct chime__task *main;       /* chime_run's main task */
  int main_signal;                /* signal that cancelled main */
  /* ownership */
  unsigned long owner; /* pthread_t of the creating thread */
};

/* The loop running on this thread and its current task. */
extern _Thread_local chime_loop *chime__tls_loop __attribute__((tls_model("initial-exec")));

static inline chime_ns chime__now(const chime_loop *loop) { return loop->virtual_clock ? loop->vnow : chime__mono(); }

bool chime__loop_owned(const chime_loop *loop);
/* Registers, changes (events != 0) or removes (events == 0) a watched fd. */
int chime__io_set(chime_loop *loop, struct chime__io *io, uint32_t events);
/* Arms a one-shot io for `events` (registering it if it never was, or if
 * the file behind its descriptor changed).  Returns 0 if the descriptor is
 * known to be the same file as at the last arming, 1 if it may be another,
 * or a negative errno (-EBADF: the descriptor is closed; -EPERM: a file that
 * cannot be watched, a regular file). */
int chime__io_arm(chime_loop *loop, struct chime__io *io, uint32_t events);
/* io.c: frees the descriptor records at loop free; forgets a task that
 * waited on a descriptor and will never run again. */
void chime__fdrecs_free(chime_loop *loop);
struct chime__fdrec;
void chime__fd_forget(chime_loop *loop, struct chime__fdrec *r, struct chime__task *t);
/* Async-signal-safe: wakes the loop's wait. */
void chime__loop_wake(chime_loop *loop);

/* task.c */
/* Creates a queued task (with a handle owner if `handle`). */
int chime__task_spawn(chime_loop *loop, chime_fn fn, void *arg, bool handle, struct chime__task **out);
/* Queues a WAITING task, to return `wake` from its suspension point. */
void chime__task_wake(chime_loop *loop, struct chime__task *t, int wake);
void chime__task_cancel(chime_loop *loop, struct chime__task *t);
void chime__task_free(chime_loop *loop, struct chime__task *t);
/* Creates the runner: a queued task in no list, not counted. */
int chime__task_spawn_internal(chime_loop *loop, chime_fn fn, void *arg, struct chime__task **out);
/* Suspends the running task until it is woken through *slot (which holds
 * the task meanwhile; NULL: no slot), `deadline` passes, or it is
 * cancelled.  Returns 0 (woken through the slot), -ETIMEDOUT or
 * -ECANCELED; a cancelled task still waits for a cancelled task or group
 * (kind JOIN or GROUP, `on` the task or group). */
int chime__task_wait(chime_loop *loop, enum chime__wait kind, void *on, struct chime__task **slot, chime_ns deadline);
/* Whether the run task t runs has passed its timeout; if so, it is
 * cancelled now and counted as timed out. */
bool chime__task_timed_out(chime_loop *loop, struct chime__task *t);
/* Ends a task that will never run again: frees its stack, disarms its
 * timer, unlinks it from its waits and group. */
void chime__task_abandon(chime_loop *loop, struct chime__task *t);
void chime__runq_clear(chime_loop *loop);
/* The cooperative budget (Tokio's): called before an I/O operation that
 * may complete without waiting; every so many, the running task yields to
 * the scheduler, so that a task reading a fast producer cannot starve
 * timers, signals and other tasks.  Returns 0, or -ECANCELED. */
int chime__coop(chime_loop *loop);
/* Switches from the scheduler to the first task of the run queue and
 * returns when control comes back to the scheduler. */
void chime__sched_resume(chime_loop *loop);
void chime__reap(chime_loop *loop);
void chime__timer_fired(chime_loop *loop, struct chime__timer *e);

/* Appends a name to a report's list (bounded, cut with "..."). */
void chime__report_name(chime_report *r, const char *name);

/* group.c */
void chime__group_member_done(chime_loop *loop, struct chime__task *t);
/* A job of the group ended with `result`. */
void chime__group_job_done(chime_loop *loop, chime_group *g, int result);
void chime__group_member_abandoned(struct chime__task *t);
void chime__group_forget_joiner(chime_group *g);
bool chime__group_cancelled(const chime_group *g);
void chime__groups_free(chime_loop *loop);

/* signal.c */
void chime__fault_handlers_install(void);
int chime__altstack_enter(void **saved);
void chime__altstack_leave(void *saved);
/* chime_run: SIGINT and SIGTERM cancel the main task. */
int chime__signals_catch(chime_loop *loop);
/* Hands caught signals to waiting tasks (and to chime_run, and to the
 * children, see process.c). */
void chime__signals_deliver(chime_loop *loop);
/* At loop free: stops catching every signal. */
void chime__signals_release_all(chime_loop *loop);
struct chime__sigwait;
void chime__signal_forget(chime_loop *loop, struct chime__sigwait *w);
/* Children without pidfds: the loop catches SIGCHLD.  Returns 0 or a
 * negative errno. */
int chime__procs_sigchld(chime_loop *loop);

/* process.c */
/* SIGCHLD came: reaps the loop's children that exited. */
void chime__procs_poll(chime_loop *loop);
void chime__proc_forget_waiter(chime_proc *p);
/* At loop free: kills and reaps every child left. */
void chime__procs_free(chime_loop *loop);
/* io.c: closes a descriptor the library opened; tasks waiting on it see
 * -EBADF. */
void chime__fd_close(chime_loop *loop, int fd);

/* stack.c */
int chime__stack_get(chime_loop *loop, struct chime__stack **out);
void chime__stack_put(chime_loop *loop, struct chime__stack *s);
void chime__stack_pool_free(chime_loop *loop);

#endif
