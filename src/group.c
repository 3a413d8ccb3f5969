/* group.c - task groups: tasks waited for and cancelled together.
 *
 * A group owns its members (they have no handles); a member leaves the
 * group when it finishes, and its record is freed then.  The group keeps
 * the first negative result a member returned, so that a join can report
 * it, and with cancel_on_error it cancels the others as soon as one fails
 * (asyncio.TaskGroup).  Groups are allocated with malloc and tracked by the
 * loop, which frees those still alive when it is freed.
 */
#include "loop.h"

#include <string.h>

struct chime_group {
  chime_loop *loop;
  struct chime__task *members; /* unfinished members, oldest first */
  struct chime__task *last;    /* the newest member */
  size_t size;                 /* their number */
  size_t others;               /* objects of other kinds it owns (periodic jobs) */
  struct chime__task *joiner;  /* the task in chime_group_join */
  int first_error;             /* first negative result since the last join */
  bool cancelled;              /* members present and future are cancelled */
  bool cancel_on_error;
  chime_group *prev, *next; /* the loop's groups */
};

static void link_member(chime_group *g, struct chime__task *t) {
  t->group = g;
  t->next_in_group = NULL;
  t->prev_in_group = g->last;
  if (g->last)
    g->last->next_in_group = t;
  else
    g->members = t;
  g->last = t;
  g->size++;
}

static void unlink_member(chime_group *g, struct chime__task *t) {
  if (t->prev_in_group)
    t->prev_in_group->next_in_group = t->next_in_group;
  else
    g->members = t->next_in_group;
  if (t->next_in_group)
    t->next_in_group->prev_in_group = t->prev_in_group;
  else
    g->last = t->prev_in_group;
  t->group = NULL;
  t->prev_in_group = t->next_in_group = NULL;
  g->size--;
}

static void cancel_all(chime_group *g) {
  g->cancelled = true;
  for (struct chime__task *t = g->members; t; t = t->next_in_group)
    chime__task_cancel(g->loop, t, 0);
  for (int k = CHIME__TASK + 1; g->others && k < CHIME__NKINDS; k++)
    if (g->loop->kinds[k]) g->loop->kinds[k]->cancel_group(g->loop, g, 0);
}

/* A member's result: keep the first error, and maybe cancel the rest. */
static void count_result(chime_group *g, int result) {
  if (result >= 0) return;
  if (g->first_error == 0) g->first_error = result;
  if (g->cancel_on_error && !g->cancelled) cancel_all(g);
}

static void member_gone(chime_loop *loop, chime_group *g, int result) {
  count_result(g, result);
  if (g->size == 0 && g->others == 0 && g->joiner) chime__task_wake(loop, g->joiner, 0);
}

void chime__group_member_done(chime_loop *loop, struct chime__task *t) {
  chime_group *g = t->group;
  unlink_member(g, t);
  member_gone(loop, g, t->result);
}

void chime__group_other_done(chime_loop *loop, chime_group *g, int result) {
  g->others--;
  member_gone(loop, g, result);
}

void chime__group_adopt(chime_group *g) { g->others++; }
void chime__group_count(chime_group *g, int result) { count_result(g, result); }
void chime__group_member_abandoned(struct chime__task *t) { unlink_member(t->group, t); }
bool chime__group_cancelled(const chime_group *g) { return g->cancelled; }

static void forget_joiner(chime_loop *loop, struct chime__task *t) {
  CHIME__UNUSED(loop);
  ((chime_group *)t->wait_on)->joiner = NULL;
}

/* Waiting for the members of a cancelled group is part of cleaning up. */
static bool joins_cancelled(const struct chime__task *t) { return ((const chime_group *)t->wait_on)->cancelled; }

static const struct chime__wait group_wait = {.forget = forget_joiner, .excused = joins_cancelled};

void chime__groups_free(chime_loop *loop) {
  while (loop->groups) {
    chime_group *g = loop->groups;
    loop->groups = g->next;
    chime__free(g);
  }
}

/* The group, if the caller may use it: its loop runs on this thread. */
static int check(const chime_group *g) {
  if (!g) return -EINVAL;
  if (chime__tls_loop != g->loop) return -EPERM;
  return 0;
}

int chime_group_new(const chime_group_opts *opts, chime_group **group) {
  chime_loop *loop = chime__tls_loop;
  if (!group) return -EINVAL;
  if (!loop) return -EPERM;
  chime_group *g = chime__calloc(1, sizeof *g);
  if (!g) return -ENOMEM;
  g->loop = loop;
  g->cancel_on_error = opts && opts->cancel_on_error;
  g->next = loop->groups;
  if (loop->groups) loop->groups->prev = g;
  loop->groups = g;
  *group = g;
  return 0;
}

int chime_group_spawn(chime_group *g, chime_fn fn, void *arg) {
  int rc = check(g);
  if (rc) return rc;
  if (!fn) return -EINVAL;
  struct chime__task *t;
  rc = chime__task_spawn(g->loop, fn, arg, false, &t);
  if (rc) return rc;
  link_member(g, t);
  if (g->cancelled) chime__task_cancel(g->loop, t, 0);
  return 0;
}

/* An owning handle's object of another kind (a job) moves in: its kind
 * does it (a finished one gives its result and is freed). */
static int add_other(chime_group *g, struct chime__obj *o) {
  if (o->flags & CHIME__JOINED) return -EINVAL;
  bool done = g->loop->kinds[o->kind]->done(o);
  int rc = g->loop->kinds[o->kind]->to_group(g->loop, o, g);
  if (rc == 0 && !done && g->cancelled) g->loop->kinds[o->kind]->cancel(g->loop, o, 0);
  return rc;
}

int chime_group_add(chime_group *g, chime_task h) {
  int rc = check(g);
  if (rc) return rc;
  struct chime__obj *o = chime__obj_lookup(&g->loop->slabs, h.id);
  if (!o || chime__handle_borrowed(h.id) || !(o->flags & CHIME__HANDLE)) return -EINVAL;
  if (o->kind != CHIME__TASK) return add_other(g, o);
  struct chime__task *t = (struct chime__task *)o;
  if (t->joiner) return -EINVAL;
  t->o.flags &= (uint16_t)~CHIME__HANDLE;
  chime__obj_rekey(&t->o);
  if (t->o.state == CHIME__DONE) {
    count_result(g, t->result);
    if (!t->stack) chime__task_free(g->loop, t);
    return 0;
  }
  link_member(g, t);
  if (g->cancelled) chime__task_cancel(g->loop, t, 0);
  return 0;
}

size_t chime_group_size(const chime_group *g) { return g ? g->size + g->others : 0; }

int chime_group_cancel(chime_group *g) {
  int rc = check(g);
  if (rc) return rc;
  cancel_all(g);
  return 0;
}

int chime_group_join(chime_group *g, chime_ns deadline, int *first_error) {
  int rc = check(g);
  if (rc) return rc;
  struct chime__task *self = g->loop->cur;
  if (!self) return -EPERM;
  /* a member joining its own group would wait for itself */
  if (self->group == g || (self->owner && g->loop->kinds[self->owner->kind]->group_of(self->owner) == g))
    return -EDEADLK;
  if (deadline < 0 || g->joiner) return -EINVAL;
  if (g->size + g->others > 0) {
    rc = chime__task_wait(g->loop, &group_wait, g, &g->joiner, deadline);
    if (rc) return rc;
  }
  if (first_error) *first_error = g->first_error;
  g->first_error = 0;
  return 0;
}

int chime_group_free(chime_group *g) {
  int rc = check(g);
  if (rc) return rc;
  if (g->size + g->others > 0) return -EBUSY;
  chime_loop *loop = g->loop;
  if (g->prev)
    g->prev->next = g->next;
  else
    loop->groups = g->next;
  if (g->next) g->next->prev = g->prev;
  chime__free(g);
  return 0;
}
