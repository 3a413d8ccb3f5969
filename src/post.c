/* post.c - calls posted to a loop from other threads.
 *
 * Any thread appends to the loop's queue under a mutex and, if the queue
 * was empty, writes to the loop's eventfd; the loop takes the whole queue
 * each round and runs it on its own thread, outside any task.  Each post's
 * owner decides what running and dropping it mean (a post still queued
 * when the loop is freed is dropped, not run): chime_loop_post's and
 * chime_spawn_threadsafe's here, the thread pool's completions (pool.c).
 */
#include "loop.h"

#include <pthread.h>
#include <stdatomic.h>

/* ---- posts -------------------------------------------------------------------- */

void chime__post_push(chime_loop *loop, struct chime__post *p) {
  p->next = NULL;
  pthread_mutex_lock(&loop->post_mu);
  bool first = !loop->post_head;
  if (loop->post_tail)
    loop->post_tail->next = p;
  else
    loop->post_head = p;
  loop->post_tail = p;
  atomic_store_explicit(&loop->posted, true, memory_order_release);
  if (first) chime__loop_wake(loop); /* under the lock: the loop cannot be freed meanwhile */
  pthread_mutex_unlock(&loop->post_mu);
}

/* Takes the queue, in order. */
static struct chime__post *posts_take(chime_loop *loop) {
  if (!atomic_load_explicit(&loop->posted, memory_order_acquire)) return NULL;
  pthread_mutex_lock(&loop->post_mu);
  struct chime__post *p = loop->post_head;
  loop->post_head = loop->post_tail = NULL;
  atomic_store_explicit(&loop->posted, false, memory_order_relaxed);
  pthread_mutex_unlock(&loop->post_mu);
  return p;
}

void chime__posts_run(chime_loop *loop) {
  for (struct chime__post *p = posts_take(loop), *next; p; p = next) {
    next = p->next;
    p->run(p);
  }
}

void chime__posts_drop(chime_loop *loop) {
  for (struct chime__post *p = posts_take(loop), *next; p; p = next) {
    next = p->next;
    p->drop(p);
  }
}

/* A post made by chime_loop_post or chime_spawn_threadsafe. */
struct user_post {
  struct chime__post p;
  void (*fn)(void *arg);
  chime_fn task;
  void *arg;
};

static void user_run(struct chime__post *p) {
  struct user_post *u = (struct user_post *)p;
  void (*fn)(void *) = u->fn;
  chime_fn task = u->task;
  void *arg = u->arg;
  chime__free(u);
  if (fn) {
    fn(arg);
  } else {
    struct chime__task *t;
    chime__task_spawn(chime__tls_loop, task, arg, false, &t); /* -ENOMEM: the task is not started */
  }
}

static void user_drop(struct chime__post *p) { chime__free(p); }

static int user_post(chime_loop *loop, void (*fn)(void *), chime_fn task, void *arg) {
  struct user_post *u = chime__malloc(sizeof *u);
  if (!u) return -ENOMEM;
  u->p.run = user_run;
  u->p.drop = user_drop;
  u->fn = fn;
  u->task = task;
  u->arg = arg;
  chime__post_push(loop, &u->p);
  return 0;
}

int chime_loop_post(chime_loop *loop, void (*fn)(void *arg), void *arg) {
  if (!loop || !fn) return -EINVAL;
  return user_post(loop, fn, NULL, arg);
}

int chime_spawn_threadsafe(chime_loop *loop, chime_fn fn, void *arg) {
  if (!loop || !fn) return -EINVAL;
  return user_post(loop, NULL, fn, arg);
}

