/* loop.h - the tasks layer: tasks, the loop that runs them, groups, stacks,
 * posts from other threads, and the loop's clocks.
 *
 * Objects.  Tasks (and the objects of upper layers, such as periodic jobs)
 * live in per-loop slabs (slab.c) and begin with a common header, struct
 * chime__obj: a generation that makes stale handles detectable, a kind,
 * and the object's timer entry.  A handle is (generation << 32 | slab
 * index).
 *
 * Upper layers.  This layer never names what is built on it.  What it
 * must do to their objects and state, it does through operations they
 * registered:
 *  - an object kind (a job) registers a struct chime__kind: what a fired
 *    timer, a cancel, a join, a name or a group means for its objects;
 *  - a wait (a descriptor, a signal, a child, a call on a thread)
 *    registers a struct chime__wait with each suspension: how to undo it if
 *    the task never runs again, and whether a cancel interrupts it;
 *  - a module (jobs, descriptors, signals, children, the thread pool)
 *    attaches a struct chime__module to the loop: its state, and what it
 *    does each round, at shutdown, when the wall clock moves, and when the
 *    loop is freed.
 */
#ifndef CHIME_LOOP_H
#define CHIME_LOOP_H

#include "machine.h"

#include <pthread.h>
#include <stdatomic.h>

/* ---- objects ------------------------------------------------------------ */

/* Kinds of objects.  Kinds above CHIME__TASK belong to upper layers, which
 * register their operations (chime__kind_register). */
#define CHIME__TASK 1
#define CHIME__NKINDS 4

/* Flags every kind shares (bits 0-3); bits 4-15 are each kind's own. */
enum chime__obj_flag {
  CHIME__CANCELLED = 1u << 0, /* cancel requested */
  CHIME__SHIELDED = 1u << 1,  /* cancellation held back (chime_shield) */
  CHIME__HANDLE = 1u << 2,    /* a handle owns the record */
  CHIME__JOINED = 1u << 3,    /* a task waits in chime_join for it (kinds other than tasks) */
};

struct chime__task;
struct chime__stack_block;

/* What the tasks layer asks of an object kind above it.  `why`: the
 * reason flags of a cancellation (enum chime__task_flag), 0 for a plain
 * request. */
struct chime__kind {
  void (*fired)(chime_loop *loop, struct chime__obj *o); /* its timer fired */
  void (*cancel)(chime_loop *loop, struct chime__obj *o, uint16_t why);
  bool (*done)(const struct chime__obj *o);
  int (*result)(const struct chime__obj *o); /* once done */
  void (*release)(chime_loop *loop, struct chime__obj *o); /* its handle let go of it, done: free it */
  int (*set_name)(chime_loop *loop, struct chime__obj *o, const char *name);
  /* It moves into group g (its handle is given up), or, done, gives g its
   * result and is freed.  0 or a negative errno (nothing changed). */
  int (*to_group)(chime_loop *loop, struct chime__obj *o, chime_group *g);
  void (*cancel_group)(chime_loop *loop, chime_group *g, uint16_t why); /* every object of it in g */
  chime_group *(*group_of)(const struct chime__obj *o);                 /* NULL: none */
  /* t, working for o (t->owner), is about to suspend while flagged
   * CHIME__HANDOFF; t was abandoned, never to run again. */
  void (*handoff)(chime_loop *loop, struct chime__task *t);
  void (*task_gone)(chime_loop *loop, struct chime__task *t);
};

void chime__kind_register(chime_loop *loop, uint8_t kind, const struct chime__kind *ops);

/* ---- tasks (task.c) ------------------------------------------------------ */

enum chime__task_state {
  CHIME__READY = 1, /* in the run queue */
  CHIME__RUNNING,   /* the current task */
  CHIME__WAITING,   /* suspended until woken */
  CHIME__DONE,      /* returned; record kept for its handle */
};

enum chime__task_flag {
  CHIME__MAIN = 1u << 4,      /* chime_run's main task: its end stops the loop */
  CHIME__TIMED_OUT = 1u << 5, /* cancelled by its deadline (a run's timeout) */
  CHIME__REPLACED = 1u << 6,  /* cancelled to make way for a newer one (a job's overlap = replace) */
  CHIME__SHUTDOWN = 1u << 7,  /* cancelled by the loop's shutdown */
  CHIME__HANDOFF = 1u << 8,   /* its owner's kind hears of its next suspension */
};

/* The reasons a cancellation may carry, from the flags above. */
#define CHIME__WHY (CHIME__TIMED_OUT | CHIME__REPLACED | CHIME__SHUTDOWN)

/* What a suspended task waits for, registered by the code that suspends
 * it: how a cancellation and an abandonment treat it. */
struct chime__wait {
  /* t will never run again: undo what the wait registered (t->wait_on). */
  void (*forget)(chime_loop *loop, struct chime__task *t);
  /* Whether a cancellation leaves t waiting (it waits for cleanup, or for
   * what cannot be interrupted).  NULL: never. */
  bool (*excused)(const struct chime__task *t);
  /* The wait cannot be cut short: the task's own deadline does not end it
   * (a call on a thread). */
  bool whole;
};

/* A list of unfinished tasks: the loop's, or one an upper layer keeps. */
struct chime__tlist {
  struct chime__task *head, *tail;
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
  int result;                     /* fn's return value, once DONE */
  int wake;                       /* what the current suspension returns */
  const struct chime__wait *wait; /* what it waits for while WAITING (NULL: nothing to undo) */
  void *wait_on;                  /* the object of that wait */
  struct chime__task *next;       /* run queue link */
  struct chime__tlist *list;      /* the list that holds it while unfinished, or NULL */
  struct chime__task *prev_in_list, *next_in_list;
  struct chime__task *joiner;      /* the task waiting in chime_join for this one */
  struct chime__task *next_joiner; /* in loop->joiners, while joining an object of another kind */
  chime_group *group;              /* the group that owns this task, or NULL */
  struct chime__task *prev_in_group, *next_in_group;
  struct chime__obj *owner; /* the object it works for (a job, for its runs), or NULL */
  void *owner_data;         /* the owner's: a run keeps its tick there */
  chime_ns deadline;        /* cancelled (TIMED_OUT) if still going then; 0: none */
  char name[32];
};

/* Creates a queued task in `list` (NULL: the loop's own, where it counts
 * as alive and is cancelled at shutdown), with a handle owner if
 * `handle`. */
int chime__task_spawn(chime_loop *loop, chime_fn fn, void *arg, bool handle, struct chime__task **out);
int chime__task_spawn_in(chime_loop *loop, struct chime__tlist *list, chime_fn fn, void *arg, struct chime__task **out);
/* Moves an unfinished task to another list (NULL: the loop's). */
void chime__task_move(chime_loop *loop, struct chime__task *t, struct chime__tlist *to);
/* Queues a WAITING task, to return `wake` from its suspension point. */
void chime__task_wake(chime_loop *loop, struct chime__task *t, int wake);
/* Cancels t, with the reason flags `why` (0: a request). */
void chime__task_cancel(chime_loop *loop, struct chime__task *t, uint16_t why);
void chime__task_free(chime_loop *loop, struct chime__task *t);
/* Suspends the running task until it is woken through *slot (which holds
 * the task meanwhile; NULL: no slot), `deadline` passes, or it is
 * cancelled (unless `wait` excuses it).  Returns 0 (woken), -ETIMEDOUT or
 * -ECANCELED. */
int chime__task_wait(chime_loop *loop, const struct chime__wait *wait, void *on, struct chime__task **slot,
                     chime_ns deadline);
/* Whether t has passed its deadline; if so, it is cancelled now and
 * flagged as timed out. */
bool chime__task_timed_out(chime_loop *loop, struct chime__task *t);
/* Ends a task that will never run again: frees its stack, disarms its
 * timer, unlinks it from its list, its wait and its group. */
void chime__task_abandon(chime_loop *loop, struct chime__task *t);
/* chime_join_until in two steps: the checks and the wait for the object
 * to end (0 and the object, or an error), then the release of the handle
 * (the object freed if nothing else holds it). */
int chime__join_wait(chime_task h, chime_ns deadline, struct chime__obj **out);
void chime__join_release(chime_loop *loop, struct chime__obj *o);
/* An object of another kind has ended: the task joining it wakes. */
void chime__obj_ended(chime_loop *loop, struct chime__obj *o);
/* The cooperative budget (Tokio's): called before an I/O operation that
 * may complete without waiting; every so many, the running task yields to
 * the scheduler, so that a task reading a fast producer cannot starve
 * timers, signals and other tasks.  Returns 0, or -ECANCELED. */
int chime__coop(chime_loop *loop);
/* Switches from the scheduler to the first task of the run queue and
 * returns when control comes back to the scheduler. */
void chime__sched_resume(chime_loop *loop);
void chime__reap(chime_loop *loop);
void chime__runq_clear(chime_loop *loop);
void chime__timer_fired(chime_loop *loop, struct chime__timer *e);
/* The task or object a handle names, for a call made on the loop running
 * here: 0, -EPERM (no loop here), or -EINVAL (no such object). */
int chime__handle_lookup(chime_task h, chime_loop **loopp, struct chime__obj **out);

static inline bool chime__cancel_pending(const struct chime__task *t) {
  return (t->o.flags & (CHIME__CANCELLED | CHIME__SHIELDED)) == CHIME__CANCELLED;
}

/* ---- groups (group.c) ---------------------------------------------------- */

void chime__group_member_done(chime_loop *loop, struct chime__task *t);
void chime__group_member_abandoned(struct chime__task *t);
/* Objects of another kind in a group: one joins (to_group), one ends with
 * `result` (its record then leaves the group), one that had ended joins
 * with its result (and is freed by its kind). */
void chime__group_adopt(chime_group *g);
void chime__group_other_done(chime_loop *loop, chime_group *g, int result);
void chime__group_count(chime_group *g, int result);
bool chime__group_cancelled(const chime_group *g);
void chime__groups_free(chime_loop *loop);

/* ---- stacks (stack.c) ----------------------------------------------------- */

int chime__stack_get(chime_loop *loop, struct chime__stack **out);
void chime__stack_put(chime_loop *loop, struct chime__stack *s);
void chime__stack_pool_free(chime_loop *loop);
void chime__fault_handlers_install(void);
int chime__altstack_enter(void **saved);
void chime__altstack_leave(void *saved);

/* ---- posts (post.c) --------------------------------------------------------- */

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

/* ---- modules ------------------------------------------------------------------ */

/* A part of the library above this layer with per-loop state.  Every hook
 * may be NULL. */
struct chime__module {
  size_t size; /* bytes of its state, zeroed when it attaches */
  /* Each round, after posts and before timers fire. */
  void (*round)(chime_loop *loop, void *state);
  /* Whether it has work that must not wait (the loop then polls only). */
  bool (*pending)(chime_loop *loop, void *state);
  /* The shutdown begins: cancel what it runs (reason CHIME__SHUTDOWN). */
  void (*shutdown)(chime_loop *loop, void *state);
  /* Past the grace period: end what is left, counting it in the report
   * (which may be NULL). */
  void (*abandon)(chime_loop *loop, void *state, chime_report *report);
  /* The wall clock was set. */
  void (*wall_moved)(chime_loop *loop, void *state);
  /* The loop is freed: first every module lets go of threads and
   * children, then every module frees its memory. */
  void (*release)(chime_loop *loop, void *state);
  void (*fini)(chime_loop *loop, void *state);
};

#define CHIME__NMODULES 8

/* The module's state in this loop, or NULL if it has not attached. */
static inline void *chime__module(const chime_loop *loop, const struct chime__module *m);
/* Attaches the module (once: later calls give the same state).  Returns 0
 * and its state, or -ENOMEM. */
int chime__module_attach(chime_loop *loop, const struct chime__module *m, void **state);

/* ---- the loop (loop.c) ---------------------------------------------------- */

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
  unsigned no_suspend;      /* code that must not suspend runs (an event callback): suspension
                               points return -EPERM */
  bool stop;                /* chime_loop_stop, or the main task ended */
  bool running;             /* inside chime_loop_run */
  bool shutting_down;       /* new tasks start cancelled */
  /* tasks */
  struct chime__tlist all;     /* unfinished tasks of the loop's own, oldest first */
  uint64_t ntasks;             /* tasks and jobs alive: the loop runs while there are any */
  struct chime__task *main;    /* chime_run's main task */
  struct chime__task *joiners; /* tasks joining objects of other kinds (next_joiner) */
  /* clock */
  bool virtual_clock;
  chime_ns vnow;               /* virtual time */
  chime_ns wall_base;          /* the virtual wall clock is wall_base + vnow */
  struct chime__tsc run_clock; /* chime__run_now's (machine.h) */
  /* stacks */
  size_t stack_size;               /* usable bytes per stack */
  struct chime__stack *stack_pool; /* free stacks */
  uint64_t pool_count;
  uint64_t stacks_mapped;                  /* stacks handed out by blocks, in the pool or in use */
  struct chime__stack_block *stack_blocks; /* blocks of stacks, newest first (stack.c) */
  /* backend */
  struct chime__poller poller;
  uint32_t nwatch; /* tasks waiting on descriptors: a busy loop still polls them */
  /* wake-ups from signal handlers and other threads */
  struct chime__io wake_io; /* read end */
  int wake_wfd;             /* write end (the same fd for an eventfd) */
  /* calls from other threads (post.c) */
  pthread_mutex_t post_mu;       /* guards the queue */
  struct chime__post *post_head; /* queued posts, oldest first */
  struct chime__post *post_tail;
  atomic_bool posted;    /* the queue is not empty (read without the lock) */
  uint64_t outside_busy; /* pool calls not yet back, and children running: work
                            the virtual clock must not outrun */
  unsigned pool_threads; /* chime_loop_opts.pool_threads, resolved */
  chime_group *groups;   /* groups not yet freed */
  uint64_t seed;         /* random, or fixed on the virtual clock */
  /* kinds and modules */
  const struct chime__kind *kinds[CHIME__NKINDS];
  struct {
    const struct chime__module *m;
    void *state;
  } mods[CHIME__NMODULES];
  unsigned nmods;
  /* ownership */
  unsigned long owner; /* pthread_t of the creating thread */
};

static inline void *chime__module(const chime_loop *loop, const struct chime__module *m) {
  for (unsigned i = 0; i < loop->nmods; i++)
    if (loop->mods[i].m == m) return loop->mods[i].state;
  return NULL;
}

/* The loop running on this thread. */
extern _Thread_local chime_loop *chime__tls_loop __attribute__((tls_model("initial-exec")));

static inline chime_ns chime__now(const chime_loop *loop) { return loop->virtual_clock ? loop->vnow : chime__mono(); }
/* The same clock read through the run clock (machine.h): cheaper, and a
 * little behind chime__now where it extrapolates (never ahead); _mark reads
 * the clock itself and starts extrapolating from there. */
static inline chime_ns chime__run_now(chime_loop *loop) {
  return loop->virtual_clock ? loop->vnow : chime__tsc_now(&loop->run_clock);
}
static inline chime_ns chime__run_mark(chime_loop *loop) {
  return loop->virtual_clock ? loop->vnow : chime__tsc_mark(&loop->run_clock);
}
/* The wall clock minus the monotonic one, now (now.c). */
chime_ns chime__wall_offset(const chime_loop *loop);

bool chime__loop_owned(const chime_loop *loop);
/* Registers, changes (events != 0) or removes (events == 0) a watched fd. */
int chime__io_set(chime_loop *loop, struct chime__io *io, uint32_t events);
/* Arms a one-shot io for `events` (registering it if it never was, or if
 * the file behind its descriptor changed).  Returns 0 if the descriptor is
 * known to be the same file as at the last arming, 1 if it may be another,
 * or a negative errno (-EBADF: the descriptor is closed; -EPERM: a file that
 * cannot be watched, a regular file). */
int chime__io_arm(chime_loop *loop, struct chime__io *io, uint32_t events);
/* Async-signal-safe: wakes the loop's wait. */
void chime__loop_wake(chime_loop *loop);
/* Appends a name to a report's list (bounded, cut with "..."). */
void chime__report_name(chime_report *r, const char *name);

#endif
