/* pool.c - a pool of threads for blocking calls (chime_to_thread).
 *
 * Threads start as work arrives, up to the loop's pool_threads
 * (default: the number of CPUs), and wait on a condition variable for more.
 * A finished call posts its completion to the loop, which wakes the waiting
 * task.  The task waits for the call even if it is cancelled meanwhile: a
 * thread cannot be interrupted, and the call may still use its argument.
 * When the loop is freed the pool lets go of it: calls not started are
 * dropped, calls still running finish on their own and their results are
 * thrown away, and the last thread to leave frees the pool.  A call that
 * never returns keeps its thread until the process exits.
 *
 * Lock order: pool->mu, then loop->post_mu.
 */
#include "awaits.h"

#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

/* ---- the pool ----------------------------------------------------------------------- */

struct chime__work {
  struct chime__post post;    /* the completion */
  chime_fn fn;
  void *arg;
  int result;
  bool done;                  /* the completion has come back to the loop */
  struct chime__task *waiter; /* NULL once the waiter is gone (abandoned) */
  struct chime__work *next;   /* the pool's queue */
};

struct chime__pool {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  struct chime__work *head, *tail; /* calls not started */
  unsigned queued;                 /* calls in that queue */
  unsigned threads, idle, max;
  bool stop;
  chime_loop *loop; /* NULL once the loop has let go */
};

#ifdef CHIME_TESTING
#include "testing.h"
static atomic_long live_threads;
long chime__test_pool_threads(void) { return atomic_load(&live_threads); }
#define THREAD_COUNT(d) atomic_fetch_add(&live_threads, (d))
#else
#define THREAD_COUNT(d) ((void)0)
#endif

static void pool_destroy(struct chime__pool *pool) {
  pthread_cond_destroy(&pool->cv);
  pthread_mutex_destroy(&pool->mu);
  chime__free(pool);
}

static void *worker(void *arg) {
  struct chime__pool *pool = arg;
#ifdef __linux__
  pthread_setname_np(pthread_self(), "chime-pool"); /* as top -H and gdb show it */
#endif
  pthread_mutex_lock(&pool->mu);
  for (;;) {
    while (!pool->head && !pool->stop) {
      pool->idle++;
      pthread_cond_wait(&pool->cv, &pool->mu);
      pool->idle--;
    }
    struct chime__work *w = pool->head;
    if (!w) break; /* stopped, nothing left */
    pool->head = w->next;
    if (!pool->head) pool->tail = NULL;
    pool->queued--;
    pthread_mutex_unlock(&pool->mu);
    w->result = w->fn(w->arg);
    pthread_mutex_lock(&pool->mu);
    if (pool->loop)
      chime__post_push(pool->loop, &w->post);
    else
      chime__free(w); /* the loop is gone: nobody waits */
  }
  bool last = --pool->threads == 0;
  pthread_mutex_unlock(&pool->mu);
  if (last) pool_destroy(pool);
  THREAD_COUNT(-1); /* after the pool is freed: a test that sees 0 sees no allocation left */
  return NULL;
}

/* The module's state in a loop: its pool, made at the first call. */
struct pool_ref {
  struct chime__pool *pool;
};

static void pool_release(chime_loop *loop, void *state);
static const struct chime__module pool_module = {.size = sizeof(struct pool_ref), .release = pool_release};

static int pool_get(chime_loop *loop, struct chime__pool **out) {
  struct pool_ref *ref;
  int rc = chime__module_attach(loop, &pool_module, (void **)&ref);
  if (rc) return rc;
  if (!ref->pool) {
    struct chime__pool *pool = chime__calloc(1, sizeof *pool);
    if (!pool) return -ENOMEM;
    pthread_mutex_init(&pool->mu, NULL);
    pthread_cond_init(&pool->cv, NULL);
    pool->max = loop->pool_threads;
    pool->loop = loop;
    ref->pool = pool;
  }
  *out = ref->pool;
  return 0;
}

/* The loop is freed: the pool lets go of it. */
static void pool_release(chime_loop *loop, void *state) {
  CHIME__UNUSED(loop);
  struct pool_ref *ref = state;
  struct chime__pool *pool = ref->pool;
  if (!pool) return;
  ref->pool = NULL;
  pthread_mutex_lock(&pool->mu);
  pool->loop = NULL;
  pool->stop = true;
  while (pool->head) { /* not started: never run */
    struct chime__work *w = pool->head;
    pool->head = w->next;
    chime__free(w);
  }
  pool->tail = NULL;
  pool->queued = 0;
  pthread_cond_broadcast(&pool->cv);
  bool none = pool->threads == 0;
  pthread_mutex_unlock(&pool->mu);
  if (none) pool_destroy(pool);
}

static void work_done(struct chime__post *p) {
  struct chime__work *w = (struct chime__work *)p;
  chime_loop *loop = chime__tls_loop;
  loop->outside_busy--;
  w->done = true;
  if (w->waiter)
    chime__task_wake(loop, w->waiter, 0);
  else
    chime__free(w); /* its waiter was abandoned */
}

static void work_drop(struct chime__post *p) { chime__free(p); }

/* A task waiting for a call will never run again: the call's result is
 * thrown away when it comes. */
static void work_forget(chime_loop *loop, struct chime__task *t) {
  CHIME__UNUSED(loop);
  struct chime__work *w = t->wait_on;
  if (w->done)
    chime__free(w); /* back already: the task would have freed it */
  else
    w->waiter = NULL; /* freed when it comes back */
}

static bool always(const struct chime__task *t) {
  CHIME__UNUSED(t);
  return true;
}

/* Nothing but the completion ends this wait: a thread cannot be
 * interrupted. */
static const struct chime__wait work_wait = {.forget = work_forget, .excused = always, .whole = true};

int chime_to_thread(chime_fn fn, void *arg, int *result) {
  chime_loop *loop = chime__tls_loop;
  struct chime__task *self = loop ? loop->cur : NULL;
  if (!self) return -EPERM;
  if (!fn) return -EINVAL;
  if (chime__cancel_pending(self)) return -ECANCELED; /* cancelled already: fn is not started */
  struct chime__pool *pool;
  int rc = pool_get(loop, &pool);
  if (rc) return rc;
  struct chime__work *w = chime__calloc(1, sizeof *w);
  if (!w) return -ENOMEM;
  w->post.run = work_done;
  w->post.drop = work_drop;
  w->fn = fn;
  w->arg = arg;
  w->waiter = self;
  pthread_mutex_lock(&pool->mu);
  /* A thread for every call queued, up to max: an idle thread may already
   * have been signalled for a call before this one. */
  if (pool->idle <= pool->queued && pool->threads < pool->max) {
    pthread_t th;
    int err = CHIME__FAULT() ? EAGAIN : pthread_create(&th, NULL, worker, pool);
    if (err == 0) {
      pthread_detach(th);
      pool->threads++;
      THREAD_COUNT(1);
    } else if (pool->threads == 0) { /* no thread to run it at all */
      pthread_mutex_unlock(&pool->mu);
      chime__free(w);
      return -err;
    }
  }
  if (pool->tail)
    pool->tail->next = w;
  else
    pool->head = w;
  pool->tail = w;
  pool->queued++;
  pthread_cond_signal(&pool->cv);
  pthread_mutex_unlock(&pool->mu);
  loop->outside_busy++;
  while (!w->done) /* nothing but the completion ends this wait */
    chime__task_wait(loop, &work_wait, w, NULL, CHIME_NEVER);
  if (result) *result = w->result;
  chime__free(w);
  if (self->deadline) chime__task_timed_out(loop, self); /* a run that outlived its timeout meanwhile */
  return chime__cancel_pending(self) ? -ECANCELED : 0;
}
