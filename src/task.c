/* task.c - tasks: spawn, suspend and resume, sleep, yield, join, detach,
 * cancel.
 *
 * Switching.  A task that suspends hands the CPU straight to the next task
 * of the run queue (one context switch, not two through the scheduler), up
 * to a budget of CHIME__BUDGET switches; then, or when the queue is empty or
 * the loop is stopping, it switches to the scheduler (loop.c), which fires
 * timers and polls descriptors before the next round.
 *
 * Waking.  chime__task_wake() only acts on a WAITING task: it records what
 * the suspension point will return and queues the task.  Whatever the task
 * registered to be woken (a timer, a joiner slot) is removed by the task
 * itself when it resumes, so a cancel or a timer that wins the race leaves
 * nothing behind.
 *
 * Cancellation.  A flag, checked by every suspension point before it
 * suspends and after it resumes ("cancel beats deadline"), so that a task
 * woken but not yet resumed sees -ECANCELED too.
 *
 * Ending.  A task cannot free the stack it runs on: when its function
 * returns it becomes loop->dead and switches away for good, and the context
 * it switched to reaps it (chime__reap): the stack goes back to the pool,
 * and the record is freed unless a handle still owns it.
 */
#include "loop.h"

#include <string.h>

/* Context switches a round of tasks may make before the scheduler runs. */
#define CHIME__BUDGET 64
#define CHIME__COOP 32 /* operations that did not wait, per yield (chime__coop) */

static void runq_push(chime_loop *loop, struct chime__task *t) {
  t->next = NULL;
  if (loop->runq_tail)
    loop->runq_tail->next = t;
  else
    loop->runq_head = t;
  loop->runq_tail = t;
}

static struct chime__task *runq_pop(chime_loop *loop) {
  struct chime__task *t = loop->runq_head;
  if (t) {
    loop->runq_head = t->next;
    if (!loop->runq_head) loop->runq_tail = NULL;
  }
  return t;
}

/* The calling task, if the caller is a task of the loop running here. */
static struct chime__task *self_task(chime_loop **loopp) {
  chime_loop *loop = chime__tls_loop;
  *loopp = loop;
  return loop ? loop->cur : NULL;
}

void chime__task_free(chime_loop *loop, struct chime__task *t) {
  chime__timers_unreserve(&loop->timers, 1);
  chime__obj_free(&loop->slabs, &t->o);
}

static void list_push(struct chime__tlist *l, struct chime__task *t) {
  t->list = l;
  t->next_in_list = NULL;
  t->prev_in_list = l->tail;
  if (l->tail)
    l->tail->next_in_list = t;
  else
    l->head = t;
  l->tail = t;
}

/* Takes a task out of whatever list holds it (the loop's counts it). */
static void task_unlink(chime_loop *loop, struct chime__task *t) {
  struct chime__tlist *l = t->list;
  if (!l) return;
  if (t->prev_in_list)
    t->prev_in_list->next_in_list = t->next_in_list;
  else
    l->head = t->next_in_list;
  if (t->next_in_list)
    t->next_in_list->prev_in_list = t->prev_in_list;
  else
    l->tail = t->prev_in_list;
  t->prev_in_list = t->next_in_list = NULL;
  t->list = NULL;
  if (l == &loop->all) loop->ntasks--;
}

void chime__task_move(chime_loop *loop, struct chime__task *t, struct chime__tlist *to) {
  if (!to) to = &loop->all;
  task_unlink(loop, t);
  list_push(to, t);
  if (to == &loop->all) loop->ntasks++;
}

/* A task that waited may have waited long: the top of its stack is
 * fetched into the cache while the tasks queued before it run. */
void chime__task_wake(chime_loop *loop, struct chime__task *t, int wake) {
  if (t->o.state != CHIME__WAITING) return;
  t->wake = wake;
  t->o.state = CHIME__READY;
  runq_push(loop, t);
  chime__coro_prefetch(&t->coro);
  if (t->owner) { /* a run: its job's record and statistics, cold after its wait */
    __builtin_prefetch(t->owner, 1);
    __builtin_prefetch(chime__obj_side(t->owner), 1);
  }
}

/* Whether a waiting task is excused from waking for its cancellation (its
 * wait says so: it waits for cleanup, or for what cannot be cut short). */
static bool excused(const struct chime__task *t) { return t->wait && t->wait->excused && t->wait->excused(t); }

/* The first cancellation's reason is the one the task sees. */
void chime__task_cancel(chime_loop *loop, struct chime__task *t, uint16_t why) {
  if (t->o.state == CHIME__DONE || (t->o.flags & CHIME__CANCELLED)) return;
  t->o.flags |= (uint16_t)(CHIME__CANCELLED | (why & CHIME__WHY));
  if (t->o.state == CHIME__WAITING && !(t->o.flags & CHIME__SHIELDED) && !excused(t))
    chime__task_wake(loop, t, -ECANCELED);
}

/* ---- switching ---------------------------------------------------------- */

void chime__reap(chime_loop *loop) {
  struct chime__task *t = loop->dead;
  if (!t) return;
  loop->dead = NULL;
  chime__coro_release(&t->coro);
  chime__stack_put(loop, t->stack);
  t->stack = NULL;
  if (!(t->o.flags & CHIME__HANDLE)) chime__task_free(loop, t);
}

/* Leaves the running task `self` for the next queued task, or for the
 * scheduler.  Returns when `self` is resumed (never, if exiting). */
static void switch_away(chime_loop *loop, struct chime__task *self, bool exiting) {
  struct chime__task *next = NULL;
  if (!loop->stop && loop->budget > 0 && (next = runq_pop(loop))) loop->budget--;
  if (next == self) { /* the only task, yielding: nothing to switch to */
    self->o.state = CHIME__RUNNING;
    return;
  }
  struct chime__coro *to = &loop->sched;
  if (next) {
    next->o.state = CHIME__RUNNING;
    to = &next->coro;
  }
  loop->cur = next;
  chime__coro_switch(&self->coro, to, exiting);
  chime__reap(loop);
}

void chime__sched_resume(chime_loop *loop) {
  struct chime__task *t = runq_pop(loop);
  if (!t) return;
  loop->budget = CHIME__BUDGET;
  loop->coop = 0;
  t->o.state = CHIME__RUNNING;
  loop->cur = t;
  chime__coro_switch(&loop->sched, &t->coro, false);
  chime__reap(loop);
}

/* Suspends `self` (already WAITING, or READY and queued) until woken;
 * returns the value it was woken with. */
static int suspend(chime_loop *loop, struct chime__task *self) {
  if (CHIME__UNLIKELY(self->o.flags & CHIME__HANDOFF)) loop->kinds[self->owner->kind]->handoff(loop, self);
  switch_away(loop, self, false);
  return self->wake;
}

/* A run's timeout has come: the run is cancelled, and counted as timed out. */
bool chime__task_timed_out(chime_loop *loop, struct chime__task *t) {
  if (!t->deadline || t->deadline > chime__now(loop)) return false;
  if (!(t->o.flags & CHIME__CANCELLED)) t->o.flags |= CHIME__TIMED_OUT;
  t->o.flags |= CHIME__CANCELLED;
  return true;
}

/* chime__task_wait; `future`: the caller knows the deadline has not come
 * (one clock reading saved). */
static int wait_impl(chime_loop *loop, const struct chime__wait *wait, void *on, struct chime__task **slot,
                     chime_ns deadline, bool future) {
  struct chime__task *self = loop->cur;
  int rc;
  if (CHIME__UNLIKELY(loop->no_suspend)) return -EPERM;
  self->wait = wait;
  self->wait_on = on;
  if (self->deadline) chime__task_timed_out(loop, self);
  /* The timer serves the earlier of the wait's deadline and the task's
   * (a wait that cannot be cut short, a thread's call, waits for its end
   * whatever the task's deadline). */
  chime_ns at = self->deadline && !(self->o.flags & CHIME__SHIELDED) && !(wait && wait->whole) &&
                        self->deadline < deadline
                    ? self->deadline
                    : deadline;
  if (chime__cancel_pending(self) && !excused(self)) {
    rc = -ECANCELED;
  } else if (!future && deadline != CHIME_NEVER && deadline <= chime__now(loop)) {
    rc = -ETIMEDOUT;
  } else {
    if (slot) *slot = self;
    if (at != CHIME_NEVER) chime__timers_add(&loop->timers, &self->o.timer, at);
    self->o.state = CHIME__WAITING;
    rc = suspend(loop, self);
    chime__timers_del(&loop->timers, &self->o.timer);
    if (slot) *slot = NULL;
    if (chime__cancel_pending(self) && !excused(self))
      rc = -ECANCELED;
    else if (rc == CHIME__WOKEN_BY_TIMER)
      rc = -ETIMEDOUT;
  }
  self->wait = NULL;
  self->wait_on = NULL;
  return rc;
}

int chime__task_wait(chime_loop *loop, const struct chime__wait *wait, void *on, struct chime__task **slot,
                     chime_ns deadline) {
  return wait_impl(loop, wait, on, slot, deadline, false);
}

static void task_finish(chime_loop *loop, struct chime__task *t) {
  t->o.state = CHIME__DONE;
  task_unlink(loop, t);
  if (t->joiner) chime__task_wake(loop, t->joiner, 0);
  if (t->group) chime__group_member_done(loop, t);
  if (t->o.flags & CHIME__MAIN) loop->stop = true;
}

static void task_entry(void *p) {
  struct chime__task *t = p;
  chime__coro_entered();
  chime_loop *loop = chime__tls_loop;
  chime__reap(loop);
  t->result = t->fn(t->arg);
  task_finish(loop, t);
  loop->dead = t;
  switch_away(loop, t, true);
}

/* ---- spawning ----------------------------------------------------------- */

_Static_assert(sizeof(struct chime__task) <= 256, "a task fits its slab class");

/* A new queued task with these flags, in `list`. */
static int task_new(chime_loop *loop, struct chime__tlist *list, chime_fn fn, void *arg, uint16_t flags,
                    struct chime__task **out) {
  struct chime__task *t = (struct chime__task *)chime__obj_alloc(&loop->slabs, CHIME__CLASS_256);
  if (!t) return -ENOMEM;
  int rc = chime__timers_reserve(&loop->timers, 1);
  if (rc == 0) {
    rc = chime__stack_get(loop, &t->stack);
    if (rc) chime__timers_unreserve(&loop->timers, 1);
  }
  if (rc) {
    chime__obj_free(&loop->slabs, &t->o);
    return rc;
  }
  t->o.kind = CHIME__TASK;
  t->o.flags = flags;
  t->fn = fn;
  t->arg = arg;
  chime__coro_make(&t->coro, t->stack, task_entry, t);
  t->o.state = CHIME__READY;
  runq_push(loop, t);
  list_push(list, t);
  if (list == &loop->all) loop->ntasks++;
  *out = t;
  return 0;
}

int chime__task_spawn_in(chime_loop *loop, struct chime__tlist *list, chime_fn fn, void *arg,
                         struct chime__task **out) {
  return task_new(loop, list ? list : &loop->all, fn, arg, loop->shutting_down ? CHIME__CANCELLED : 0, out);
}

int chime__task_spawn(chime_loop *loop, chime_fn fn, void *arg, bool handle, struct chime__task **out) {
  return task_new(loop, &loop->all, fn, arg,
                  (uint16_t)((handle ? CHIME__HANDLE : 0) | (loop->shutting_down ? CHIME__CANCELLED : 0)), out);
}

static int spawn_on(chime_loop *loop, chime_fn fn, void *arg, chime_task *task) {
  if (!fn) return -EINVAL;
  struct chime__task *t;
  int rc = chime__task_spawn(loop, fn, arg, task != NULL, &t);
  if (rc == 0 && task) task->id = chime__obj_handle(&t->o);
  return rc;
}

int chime_spawn(chime_fn fn, void *arg, chime_task *task) {
  chime_loop *loop = chime__tls_loop;
  if (!loop) return -EPERM;
  return spawn_on(loop, fn, arg, task);
}

int chime_loop_spawn(chime_loop *loop, chime_fn fn, void *arg, chime_task *task) {
  if (!loop) return -EINVAL;
  if (!chime__loop_owned(loop) || (chime__tls_loop && chime__tls_loop != loop)) return -EPERM;
  return spawn_on(loop, fn, arg, task);
}

/* ---- objects of other kinds ------------------------------------------------- */

void chime__kind_register(chime_loop *loop, uint8_t kind, const struct chime__kind *ops) { loop->kinds[kind] = ops; }

static const struct chime__kind *kind_of(const chime_loop *loop, const struct chime__obj *o) {
  return loop->kinds[o->kind];
}

/* A task joining an object of another kind waits in loop->joiners. */
static void joiner_unlink(chime_loop *loop, struct chime__task *t) {
  for (struct chime__task **p = &loop->joiners; *p; p = &(*p)->next_joiner)
    if (*p == t) {
      *p = t->next_joiner;
      break;
    }
  t->next_joiner = NULL;
}

static void obj_join_forget(chime_loop *loop, struct chime__task *t) {
  ((struct chime__obj *)t->wait_on)->flags &= (uint16_t)~CHIME__JOINED;
  joiner_unlink(loop, t);
}

/* Waiting for a cancelled task or object to finish is part of cleaning up. */
static bool joins_cancelled(const struct chime__task *t) {
  return ((const struct chime__obj *)t->wait_on)->flags & CHIME__CANCELLED;
}

static const struct chime__wait obj_join_wait = {.forget = obj_join_forget, .excused = joins_cancelled};

void chime__obj_ended(chime_loop *loop, struct chime__obj *o) {
  if (!(o->flags & CHIME__JOINED)) return;
  for (struct chime__task *t = loop->joiners; t; t = t->next_joiner)
    if (t->wait_on == o) {
      chime__task_wake(loop, t, 0);
      return;
    }
}

/* ---- handles ------------------------------------------------------------ */

int chime__handle_lookup(chime_task h, chime_loop **loopp, struct chime__obj **out) {
  chime_loop *loop = chime__tls_loop;
  if (!loop) return -EPERM;
  struct chime__obj *o = chime__obj_lookup(&loop->slabs, h.id);
  if (!o) return -EINVAL;
  *loopp = loop;
  *out = o;
  return 0;
}

static bool obj_done(const chime_loop *loop, const struct chime__obj *o) {
  return o->kind == CHIME__TASK ? o->state == CHIME__DONE : kind_of(loop, o)->done(o);
}

int chime_cancel(chime_task h) {
  chime_loop *loop;
  struct chime__obj *o;
  int rc = chime__handle_lookup(h, &loop, &o);
  if (rc) return rc;
  if (o->kind == CHIME__TASK)
    chime__task_cancel(loop, (struct chime__task *)o, 0);
  else
    kind_of(loop, o)->cancel(loop, o, 0);
  return 0;
}

/* Whether the handle owns its object and is free to join, detach or move
 * it (a borrowed handle, chime_self's, is not). */
static bool owned(chime_task h, const struct chime__obj *o) {
  if (chime__handle_borrowed(h.id) || !(o->flags & CHIME__HANDLE)) return false;
  if (o->kind != CHIME__TASK) return !(o->flags & CHIME__JOINED);
  return !((const struct chime__task *)o)->joiner;
}

/* The handle's owner lets go of a record: freed if it has ended; copies of
 * the handle go stale at once. */
static void release(chime_loop *loop, struct chime__obj *o) {
  o->flags &= (uint16_t)~CHIME__HANDLE;
  chime__obj_rekey(o);
  if (o->kind != CHIME__TASK) {
    if (kind_of(loop, o)->done(o)) kind_of(loop, o)->release(loop, o);
  } else if (o->state == CHIME__DONE && ((struct chime__task *)o)->stack == NULL) {
    chime__task_free(loop, (struct chime__task *)o); /* else chime__reap frees it */
  }
}

int chime_detach(chime_task h) {
  chime_loop *loop;
  struct chime__obj *o;
  int rc = chime__handle_lookup(h, &loop, &o);
  if (rc) return rc;
  if (!owned(h, o)) return -EINVAL;
  release(loop, o);
  return 0;
}

static const struct chime__wait task_join_wait;

/* Inlined in chime_join_until: the spawn-and-join path is hot. */
static inline __attribute__((always_inline)) int join_wait(chime_task h, chime_ns deadline,
                                                           struct chime__obj **out) {
  chime_loop *loop;
  struct chime__task *self = self_task(&loop);
  struct chime__obj *o;
  if (!self) return -EPERM;
  if (deadline < 0) return -EINVAL;
  int rc = chime__handle_lookup(h, &loop, &o);
  if (rc) return rc;
  if (o == &self->o || o == self->owner) return -EDEADLK;
  if (!owned(h, o)) return -EINVAL;
  if (!obj_done(loop, o)) {
    if (o->kind != CHIME__TASK) {
      o->flags |= CHIME__JOINED;
      self->next_joiner = loop->joiners;
      loop->joiners = self;
      rc = chime__task_wait(loop, &obj_join_wait, o, NULL, deadline);
      o->flags &= (uint16_t)~CHIME__JOINED;
      joiner_unlink(loop, self);
    } else {
      struct chime__task *t = (struct chime__task *)o;
      rc = chime__task_wait(loop, &task_join_wait, t, &t->joiner, deadline);
    }
    if (rc) return rc;
  }
  *out = o;
  return 0;
}

int chime__join_wait(chime_task h, chime_ns deadline, struct chime__obj **out) { return join_wait(h, deadline, out); }

void chime__join_release(chime_loop *loop, struct chime__obj *o) { release(loop, o); }

int chime_join_until(chime_task h, chime_ns deadline, int *result) {
  struct chime__obj *o;
  int rc = join_wait(h, deadline, &o);
  if (rc) return rc;
  chime_loop *loop = chime__tls_loop;
  if (result) *result = o->kind == CHIME__TASK ? ((struct chime__task *)o)->result : kind_of(loop, o)->result(o);
  release(loop, o);
  return 0;
}

int chime_join(chime_task h, int *result) { return chime_join_until(h, CHIME_NEVER, result); }

int chime_task_done(chime_task h) {
  chime_loop *loop;
  struct chime__obj *o;
  int rc = chime__handle_lookup(h, &loop, &o);
  if (rc) return rc;
  return obj_done(loop, o);
}

int chime_task_set_name(chime_task h, const char *name) {
  chime_loop *loop;
  struct chime__obj *o;
  int rc = chime__handle_lookup(h, &loop, &o);
  if (rc) return rc;
  if (o->kind != CHIME__TASK) return kind_of(loop, o)->set_name(loop, o, name);
  struct chime__task *t = (struct chime__task *)o;
  memset(t->name, 0, sizeof t->name);
  if (name) strncpy(t->name, name, sizeof t->name - 1);
  return 0;
}

/* A task working for an object (a run of a job) is that object. */
chime_task chime_self(void) {
  chime_loop *loop;
  struct chime__task *self = self_task(&loop);
  chime_task h = {0};
  if (self) h.id = chime__obj_handle(self->owner ? self->owner : &self->o) | CHIME__BORROWED;
  return h;
}

/* ---- suspension points -------------------------------------------------- */

bool chime_cancelled(void) {
  chime_loop *loop;
  struct chime__task *self = self_task(&loop);
  return self && (self->o.flags & CHIME__CANCELLED);
}

chime_cancel_reason chime_cancelled_by(void) {
  chime_loop *loop;
  struct chime__task *self = self_task(&loop);
  if (!self || !(self->o.flags & CHIME__CANCELLED)) return CHIME_CANCEL_NONE;
  if (self->o.flags & CHIME__TIMED_OUT) return CHIME_CANCEL_TIMEOUT;
  if (self->o.flags & CHIME__REPLACED) return CHIME_CANCEL_REPLACED;
  if (self->o.flags & CHIME__SHUTDOWN) return CHIME_CANCEL_SHUTDOWN;
  return CHIME_CANCEL_REQUEST;
}

int chime_shield(bool on) {
  chime_loop *loop;
  struct chime__task *self = self_task(&loop);
  if (!self) return -EPERM;
  int was = (self->o.flags & CHIME__SHIELDED) != 0;
  if (on)
    self->o.flags |= CHIME__SHIELDED;
  else
    self->o.flags &= (uint16_t)~CHIME__SHIELDED;
  return was;
}

int chime__coop(chime_loop *loop) {
  if (++loop->coop < CHIME__COOP) return 0;
  loop->coop = 0;
  loop->budget = 0; /* to the scheduler, not only to the next task */
  return chime_yield();
}

int chime_yield(void) {
  chime_loop *loop;
  struct chime__task *self = self_task(&loop);
  if (!self || loop->no_suspend) return -EPERM;
  if (self->deadline) chime__task_timed_out(loop, self);
  if (chime__cancel_pending(self)) return -ECANCELED;
  self->o.state = CHIME__READY;
  runq_push(loop, self);
  suspend(loop, self);
  if (self->deadline) chime__task_timed_out(loop, self);
  return chime__cancel_pending(self) ? -ECANCELED : 0;
}

int chime_sleep_until(chime_ns when) {
  chime_loop *loop;
  struct chime__task *self = self_task(&loop);
  if (!self) return -EPERM;
  if (when < 0) return -EINVAL;
  if (when <= chime__now(loop)) return chime_yield();
  int rc = wait_impl(loop, NULL, NULL, NULL, when, true);
  return rc == -ETIMEDOUT ? 0 : rc;
}

int chime_sleep(chime_ns d) {
  chime_loop *loop;
  struct chime__task *self = self_task(&loop);
  if (!self) return -EPERM;
  if (d <= 0) return d ? -EINVAL : chime_yield();
  chime_ns when;
  if (__builtin_add_overflow(chime__now(loop), d, &when) || when == CHIME_NEVER) return -EINVAL;
  int rc = wait_impl(loop, NULL, NULL, NULL, when, true); /* one clock reading */
  return rc == -ETIMEDOUT ? 0 : rc;
}

/* ---- timers ----------------------------------------------------------- */

void chime__timer_fired(chime_loop *loop, struct chime__timer *e) {
  struct chime__obj *o = CHIME__CONTAINER(e, struct chime__obj, timer);
  if (o->kind != CHIME__TASK) {
    kind_of(loop, o)->fired(loop, o);
    return;
  }
  struct chime__task *t = (struct chime__task *)o;
  if (!(t->o.flags & CHIME__SHIELDED) && t->deadline && chime__task_timed_out(loop, t))
    chime__task_wake(loop, t, -ECANCELED);
  else
    chime__task_wake(loop, t, CHIME__WOKEN_BY_TIMER);
}

/* ---- joining a task ------------------------------------------------------ */

static void task_join_forget(chime_loop *loop, struct chime__task *t) {
  CHIME__UNUSED(loop);
  ((struct chime__task *)t->wait_on)->joiner = NULL;
}

static const struct chime__wait task_join_wait = {.forget = task_join_forget, .excused = joins_cancelled};

/* ---- shutdown ----------------------------------------------------------- */

void chime__task_abandon(chime_loop *loop, struct chime__task *t) {
  chime__timers_del(&loop->timers, &t->o.timer);
  if (t->wait && t->wait->forget) t->wait->forget(loop, t);
  if (t->group) chime__group_member_abandoned(t);
  if (t->owner) kind_of(loop, t->owner)->task_gone(loop, t);
  task_unlink(loop, t);
  t->o.state = CHIME__DONE;
  chime__coro_release(&t->coro);
  chime__stack_put(loop, t->stack);
  t->stack = NULL;
  if (!(t->o.flags & CHIME__HANDLE)) chime__task_free(loop, t);
}

void chime__runq_clear(chime_loop *loop) { loop->runq_head = loop->runq_tail = NULL; }
