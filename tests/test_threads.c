/* test_threads.c - other threads: posts, chime_spawn_threadsafe, and the
 * worker pool (chime_to_thread).  CI also runs these under ThreadSanitizer. */
#include "test.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>

/* ---- posts from many threads ------------------------------------------------------ */

#define POSTERS 4
#define POSTS 5000

struct posting {
  chime_loop *loop;
  long next[POSTERS]; /* per thread: the sequence number expected next */
  long total;
  long duplicates_or_gaps;
  int done_fd; /* written when the last post has run */
  long job_runs;
};

struct poster {
  struct posting *p;
  int id;
};

static struct posting *the_posting;

/* The pool's threads have left: counted out by the pool, then gone from
 * the process (a detached thread still tears itself down after the count
 * drops; a test that ended then would see its memory as lost). */
static bool a_pool_thread_is_alive(void) {
  DIR *d = opendir("/proc/self/task");
  if (!d) return false; /* no /proc: the count is all there is */
  bool alive = false;
  struct dirent *e;
  while (!alive && (e = readdir(d))) {
    char path[320], name[32] = "";
    snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
    FILE *f = fopen(path, "r");
    if (!f) continue;
    alive = fgets(name, sizeof name, f) && strncmp(name, "chime-pool", 10) == 0;
    fclose(f);
  }
  closedir(d);
  return alive;
}

static void pool_threads_gone(void) {
  while (chime__test_pool_threads() > 0) sched_yield();
  while (a_pool_thread_is_alive()) sched_yield();
}

static void on_post(void *arg) {
  struct posting *p = the_posting;
  uintptr_t v = (uintptr_t)arg;
  int id = (int)(v >> 20);
  long seq = (long)(v & 0xfffff);
  if (p->next[id] != seq) p->duplicates_or_gaps++;
  p->next[id] = seq + 1;
  if (++p->total == POSTERS * POSTS) assert_int_equal(write(p->done_fd, "!", 1), 1);
}

static void *poster_thread(void *arg) {
  struct poster *me = arg;
  for (long i = 0; i < POSTS; i++) {
    int rc;
    while ((rc = chime_loop_post(me->p->loop, on_post, (void *)((uintptr_t)me->id << 20 | (uintptr_t)i))) == -ENOMEM) {
    }
    if (rc) abort();
  }
  return NULL;
}

static int count_run(void *arg) {
  (*(long *)arg)++;
  return 0;
}

static int posting_main(void *arg) {
  struct posting *p = arg;
  p->loop = chime_loop_current();
  int done[2];
  assert_int_equal(pipe2(done, O_NONBLOCK | O_CLOEXEC), 0);
  p->done_fd = done[1];
  chime_task job;
  assert_int_equal(chime_every(CHIME_MS(1), count_run, &p->job_runs, NULL, &job), 0);
  pthread_t th[POSTERS];
  struct poster who[POSTERS];
  for (int i = 0; i < POSTERS; i++) {
    who[i] = (struct poster){p, i};
    assert_int_equal(pthread_create(&th[i], NULL, poster_thread, &who[i]), 0);
  }
  char c;
  assert_int_equal(chime_read(done[0], &c, 1, chime_now() + CHIME_SEC(60)), 1);
  for (int i = 0; i < POSTERS; i++)
    assert_int_equal(pthread_join(th[i], NULL), 0);
  assert_int_equal(chime_sleep(CHIME_MS(20)), 0); /* the job keeps ticking meanwhile */
  assert_int_equal(chime_cancel(job), 0);
  assert_int_equal(chime_join(job, NULL), 0);
  close(done[0]);
  close(done[1]);
  return 0;
}

static void posts_from_four_threads_all_run_once_in_order(void **state) {
  (void)state;
  struct posting p;
  memset(&p, 0, sizeof p);
  the_posting = &p;
  assert_int_equal(run_real(posting_main, &p), 0);
  assert_int_equal(p.total, POSTERS * POSTS);
  assert_int_equal(p.duplicates_or_gaps, 0);
  for (int i = 0; i < POSTERS; i++)
    assert_int_equal(p.next[i], POSTS);
  assert_true(p.job_runs >= 1);
}

/* A loop whose only work is waiting: a post from another thread wakes it. */
static void *post_later(void *arg) {
  struct timespec ts = {0, 20 * 1000 * 1000};
  nanosleep(&ts, NULL);
  static long runs;
  if (chime_spawn_threadsafe(arg, count_run, &runs) != 0) abort();
  return NULL;
}

static atomic_int spawned_ran;

static int spawned(void *arg) {
  assert_int_equal(chime_yield(), 0); /* a real task: it can suspend */
  atomic_fetch_add(&spawned_ran, *(int *)arg);
  return 0;
}

static void *spawner_thread(void *arg) {
  static int one = 1;
  for (int i = 0; i < 100; i++)
    if (chime_spawn_threadsafe(arg, spawned, &one) != 0) abort();
  return NULL;
}

static int spawn_main(void *arg) {
  (void)arg;
  pthread_t th[2];
  for (int i = 0; i < 2; i++)
    assert_int_equal(pthread_create(&th[i], NULL, spawner_thread, chime_loop_current()), 0);
  for (int i = 0; i < 2; i++)
    assert_int_equal(pthread_join(th[i], NULL), 0);
  return 0;
}

static void never_runs(void *arg) {
  (void)arg;
  abort();
}

static void tasks_spawned_from_other_threads_run_on_the_loop(void **state) {
  (void)state;
  atomic_store(&spawned_ran, 0);
  chime_loop *loop;
  chime_loop_opts lo = {.clock = CHIME_CLOCK_VIRTUAL};
  assert_int_equal(chime_loop_new(&lo, &loop), 0);
  assert_int_equal(chime_loop_post(loop, never_runs, NULL), 0);
  chime_loop_free(loop); /* a post still queued is dropped, not run */
  assert_int_equal(chime__test_live_allocs(), 0);

  assert_int_equal(chime_loop_new(&lo, &loop), 0);
  assert_int_equal(chime_loop_post(loop, NULL, NULL), -EINVAL);
  assert_int_equal(chime_spawn_threadsafe(NULL, spawned, NULL), -EINVAL);
  /* spawn_main becomes a task of the loop, whose threads spawn 200 more */
  assert_int_equal(chime_spawn_threadsafe(loop, spawn_main, NULL), 0);
  /* the loop had no task: the post is taken all the same, and spawn_main
   * runs to its end (the spawns are posts still) */
  assert_int_equal(chime_loop_run_once(loop, 0), 0);
  assert_int_equal(chime_loop_run(loop), 0);
  assert_int_equal(atomic_load(&spawned_ran), 200);
  chime_loop_free(loop);
}

static pthread_t poster; /* joined once its post has come */

static int idle_main(void *arg) {
  assert_int_equal(pthread_create(&poster, NULL, post_later, chime_loop_current()), 0);
  (void)arg;
  return 0;
}

static void a_loop_with_nothing_to_do_is_woken_by_a_post(void **state) {
  (void)state;
  chime_loop *loop;
  assert_int_equal(chime_loop_new(NULL, &loop), 0);
  assert_int_equal(chime_spawn_threadsafe(loop, idle_main, NULL), 0);
  /* one round runs idle_main; the next waits (without bound) for the post */
  assert_int_equal(chime_loop_run_once(loop, -1), 0);
  chime_ns t0 = real_ns();
  assert_int_equal(chime_loop_run_once(loop, -1), 0);
  assert_true(real_ns() - t0 < CHIME_SEC(30));
  assert_int_equal(pthread_join(poster, NULL), 0);
  chime_loop_free(loop);
}

static void never_runs(void *arg);

/* ---- the pool --------------------------------------------------------------------- */

static atomic_int in_flight, max_in_flight;

static int square_slowly(void *arg) {
  int now = atomic_fetch_add(&in_flight, 1) + 1;
  int seen = atomic_load(&max_in_flight);
  while (now > seen && !atomic_compare_exchange_weak(&max_in_flight, &seen, now)) {
  }
  struct timespec ts = {0, 2 * 1000 * 1000};
  nanosleep(&ts, NULL);
  atomic_fetch_sub(&in_flight, 1);
  int x = *(int *)arg;
  return x * x;
}

struct call {
  int x, result, rc;
  pthread_t thread;
};

static int caller(void *arg) {
  struct call *c = arg;
  c->rc = chime_to_thread(square_slowly, &c->x, &c->result);
  return 0;
}

static int pool_main(void *arg) {
  (void)arg;
  struct call calls[16];
  chime_task t[16];
  chime_ns start = chime_now();
  for (int i = 0; i < 16; i++) {
    calls[i] = (struct call){.x = i, .result = -1, .rc = 1};
    assert_int_equal(chime_spawn(caller, &calls[i], &t[i]), 0);
  }
  for (int i = 0; i < 16; i++) {
    assert_int_equal(chime_join(t[i], NULL), 0);
    assert_int_equal(calls[i].rc, 0);
    assert_int_equal(calls[i].result, i * i);
  }
  /* no deadline anywhere: the virtual clock had nowhere to go */
  assert_int_equal(chime_now(), start);
  assert_int_equal(chime_to_thread(NULL, NULL, NULL), -EINVAL);
  return 0;
}

static void blocking_calls_run_on_at_most_pool_threads_threads(void **state) {
  (void)state;
  atomic_store(&in_flight, 0);
  atomic_store(&max_in_flight, 0);
  chime_run_opts o = virtual_run();
  o.loop.pool_threads = 3;
  assert_int_equal(chime_run(pool_main, NULL, &o, NULL), 0);
  assert_true(atomic_load(&max_in_flight) >= 1);
  assert_true(atomic_load(&max_in_flight) <= 3);
  assert_int_equal(chime_to_thread(square_slowly, &(int){2}, NULL), -EPERM); /* not in a task */
  pool_threads_gone(); /* the threads leave with their loop */
}

/* Blocks on a pipe until the test writes to it. */
static int read_blocking(void *arg) {
  char c;
  return read(*(int *)arg, &c, 1) == 1 ? 7 : -EIO;
}

struct blocked {
  int fd;
  int rc, result;
  bool reached;
};

static int blocked_caller(void *arg) {
  struct blocked *b = arg;
  b->reached = true;
  b->rc = chime_to_thread(read_blocking, &b->fd, &b->result);
  return b->rc;
}

static int sleeper(void *arg) {
  (void)arg;
  return chime_sleep(CHIME_HOUR(1));
}

static int cancel_main(void *arg) {
  int *p = arg; /* a blocking pipe */
  struct blocked b = {p[0], 1, -1, false};
  chime_task t, s;
  assert_int_equal(chime_spawn(blocked_caller, &b, &t), 0);
  assert_int_equal(chime_spawn(sleeper, NULL, &s), 0);
  assert_int_equal(chime_yield(), 0);
  assert_true(b.reached);
  chime_ns before = chime_now();
  assert_int_equal(chime_cancel(t), 0); /* cannot stop the thread: the task waits on */
  assert_int_equal(chime_yield(), 0);
  assert_false(chime_task_done(t));
  assert_int_equal(write(p[1], "x", 1), 1);
  int rc;
  assert_int_equal(chime_join(t, &rc), 0);
  assert_int_equal(rc, -ECANCELED);
  assert_int_equal(b.result, 7); /* the call's result is still given */
  assert_false(chime_task_done(s)); /* time did not jump an hour past the call */
  assert_true(chime_now() - before < CHIME_SEC(30));
  assert_int_equal(chime_cancel(s), 0);
  assert_int_equal(chime_join(s, NULL), 0);
  /* already cancelled: the call does not start */
  b.reached = false;
  assert_int_equal(chime_spawn(blocked_caller, &b, &t), 0);
  assert_int_equal(chime_cancel(t), 0);
  assert_int_equal(chime_join(t, &rc), 0);
  assert_int_equal(rc, -ECANCELED);
  assert_true(b.reached);
  return 0;
}

static void a_cancelled_caller_waits_for_its_call(void **state) {
  (void)state;
  int p[2];
  assert_int_equal(pipe(p), 0);
  assert_int_equal(run_virtual(cancel_main, p), 0);
  char c;
  assert_int_equal(fcntl(p[0], F_SETFL, O_NONBLOCK), 0);
  assert_int_equal(read(p[0], &c, 1), -1); /* the second call never ran: it took no byte */
  close(p[0]);
  close(p[1]);
  pool_threads_gone();
}

static int abandon_main(void *arg) {
  struct blocked *b = arg;
  chime_task t;
  assert_int_equal(chime_spawn(blocked_caller, b, &t), 0);
  assert_int_equal(chime_task_set_name(t, "stuck-call"), 0);
  assert_int_equal(chime_yield(), 0); /* the call starts */
  assert_true(b->reached);
  return chime_detach(t);
}

static void a_call_that_never_returns_is_abandoned_at_shutdown(void **state) {
  (void)state;
  int p[2];
  assert_int_equal(pipe(p), 0);
  struct blocked b = {p[0], 1, -1, false};
  chime_report r;
  chime_run_opts o = virtual_run();
  o.grace = CHIME_MS(50); /* followed in real time: a call is out */
  assert_int_equal(chime_run(abandon_main, &b, &o, &r), 0);
  assert_int_equal(r.abandoned, 1);
  assert_string_equal(r.names, "stuck-call");
  assert_int_equal(chime__test_pool_threads(), 1); /* still blocked in read */
  assert_int_equal(write(p[1], "x", 1), 1);        /* now it returns into nothing */
  pool_threads_gone();
  assert_int_equal(chime__test_live_allocs(), 0);
  close(p[0]);
  close(p[1]);
}

static int twice(void *arg) { return 2 * *(int *)arg; }

static int pool_fault_main(void *arg) {
  (void)arg;
  int x = 21;
  for (long n = 0;; n++) {
    long before = chime__test_failures();
    int result = 0;
    chime__test_fail_after(n, false);
    int rc = chime_to_thread(twice, &x, &result);
    chime__test_fail_after(-1, false);
    if (chime__test_failures() == before) {
      assert_int_equal(rc, 0);
      assert_int_equal(result, 42);
      break;
    }
    assert_true(rc == -ENOMEM || rc == -EAGAIN || (rc == 0 && result == 42));
  }
  assert_int_equal(chime_to_thread(twice, &x, NULL), 0); /* the pool goes on working */
  chime__test_fail_after(0, false);
  assert_int_equal(chime_loop_post(chime_loop_current(), never_runs, NULL), -ENOMEM);
  chime__test_fail_after(-1, false);
  return 0;
}

static void pool_failures_are_reported_and_the_pool_goes_on(void **state) {
  (void)state;
  assert_int_equal(run_virtual(pool_fault_main, NULL), 0);
  pool_threads_gone();
}

/* ---- calls and the rest of the loop --------------------------------------------------- */

static int sleep_300ms(void *arg) {
  (void)arg;
  struct timespec ts = {0, 300 * 1000 * 1000};
  nanosleep(&ts, NULL);
  return 5;
}

struct timed_run {
  int rc, result;
  long runs;
};

static int call_in_run(void *arg) {
  struct timed_run *t = arg;
  t->runs++;
  t->result = -1;
  t->rc = chime_to_thread(sleep_300ms, NULL, &t->result);
  return t->rc;
}

static int timeout_main(void *arg) {
  struct timed_run *t = arg;
  chime_every_opts o = {.start = CHIME_START_NOW, .timeout = CHIME_MS(50), .max_runs = 1};
  chime_task job;
  assert_int_equal(chime_every(CHIME_SEC(1), call_in_run, t, &o, &job), 0);
  chime_job_stats st;
  do {
    assert_int_equal(chime_every_stats(job, &st), 0);
  } while (!st.done && chime_sleep(CHIME_MS(10)) == 0);
  assert_int_equal(st.timeouts, 1); /* counted as the timeout it was */
  assert_int_equal(chime_join(job, NULL), 0);
  return 0;
}

static void a_run_timeout_waits_for_the_call_it_cannot_cut_short(void **state) {
  (void)state;
  struct timed_run t = {1, 0, 0};
  assert_int_equal(run_virtual(timeout_main, &t), 0);
  assert_int_equal(t.runs, 1);
  assert_int_equal(t.result, 5); /* the call came back with its result */
  assert_int_equal(t.rc, -ECANCELED); /* told, once the call was back */
  pool_threads_gone();
}

/* Two calls that need each other: one blocks until the other writes. */
static int pipe_reader(void *arg) { return read_blocking(arg); }

static int pipe_writer(void *arg) { return write(*(int *)arg, "x", 1) == 1 ? 0 : -EIO; }

struct pair {
  int p[2];
  int rc[2], result[2];
};

static int call_reader(void *arg) {
  struct pair *pr = arg;
  pr->rc[0] = chime_to_thread(pipe_reader, &pr->p[0], &pr->result[0]);
  return 0;
}

static int pair_main(void *arg) {
  struct pair *pr = arg;
  chime_task t;
  assert_int_equal(chime_spawn(call_reader, pr, &t), 0);
  pr->rc[1] = chime_to_thread(pipe_writer, &pr->p[1], &pr->result[1]); /* queued right behind the reader */
  assert_int_equal(chime_join(t, NULL), 0);
  return 0;
}

static void calls_that_need_each_other_get_threads_of_their_own(void **state) {
  (void)state;
  struct pair pr;
  memset(&pr, 0, sizeof pr);
  assert_int_equal(pipe(pr.p), 0);
  chime_run_opts o = virtual_run();
  o.loop.pool_threads = 2;
  assert_int_equal(chime_run(pair_main, &pr, &o, NULL), 0);
  assert_int_equal(pr.rc[0], 0);
  assert_int_equal(pr.rc[1], 0);
  assert_int_equal(pr.result[0], 7);
  assert_int_equal(pr.result[1], 0);
  close(pr.p[0]);
  close(pr.p[1]);
  pool_threads_gone();
}

static void stop_loop(void *arg) { assert_int_equal(chime_loop_stop(arg), 0); }

static int post_stop_then_return(void *arg) {
  if (chime_loop_post(arg, stop_loop, arg) != 0) abort(); /* queued before the call's completion */
  return 3;
}

static int woken_caller(void *arg) {
  int r;
  chime_to_thread(post_stop_then_return, arg, &r);
  abort(); /* the loop stops before this task runs again */
}

static void a_caller_woken_but_never_resumed_leaves_nothing_behind(void **state) {
  (void)state;
  chime_loop *loop;
  chime_loop_opts lo = {.clock = CHIME_CLOCK_VIRTUAL};
  assert_int_equal(chime_loop_new(&lo, &loop), 0);
  assert_int_equal(chime_spawn_threadsafe(loop, woken_caller, loop), 0);
  assert_int_equal(chime_loop_run(loop), 0);
  chime_loop_free(loop); /* the caller is abandoned with its call back: freed */
  pool_threads_gone();
}

static int embedded_call(void *arg) {
  (void)arg;
  int r;
  return chime_to_thread(sleep_300ms, NULL, &r);
}

static int start_embedded(void *arg) {
  chime_task a, b;
  assert_int_equal(chime_spawn(embedded_call, NULL, &a), 0);
  assert_int_equal(chime_detach(a), 0);
  assert_int_equal(chime_spawn(sleeper, NULL, &b), 0); /* a deadline an hour away */
  *(chime_task *)arg = b;
  return 0;
}

static void an_embedded_virtual_loop_with_a_call_out_says_how_long_to_wait(void **state) {
  (void)state;
  chime_loop *loop;
  chime_loop_opts lo = {.clock = CHIME_CLOCK_VIRTUAL};
  assert_int_equal(chime_loop_new(&lo, &loop), 0);
  chime_task s;
  assert_int_equal(chime_spawn_threadsafe(loop, start_embedded, &s), 0);
  assert_int_equal(chime_loop_run_once(loop, 0), 2);
  assert_int_equal(chime_loop_run_once(loop, 0), 2); /* the tasks start: the call goes out */
  chime_ns t = chime_loop_timeout(loop);
  assert_true(t > 0); /* no jump while the call is out: the host may sleep */
  long rounds = 0;
  while (chime_loop_run_once(loop, t < 0 ? -1 : t) == 2 && ++rounds < 1000) t = chime_loop_timeout(loop);
  assert_true(rounds < 1000); /* it waited, it did not spin */
  chime_loop_free(loop);
  pool_threads_gone();
}

TEST_MAIN(cmocka_unit_test(a_run_timeout_waits_for_the_call_it_cannot_cut_short),
          cmocka_unit_test(calls_that_need_each_other_get_threads_of_their_own),
          cmocka_unit_test(a_caller_woken_but_never_resumed_leaves_nothing_behind),
          cmocka_unit_test(an_embedded_virtual_loop_with_a_call_out_says_how_long_to_wait),
          cmocka_unit_test(posts_from_four_threads_all_run_once_in_order),
          cmocka_unit_test(tasks_spawned_from_other_threads_run_on_the_loop),
          cmocka_unit_test(a_loop_with_nothing_to_do_is_woken_by_a_post),
          cmocka_unit_test(blocking_calls_run_on_at_most_pool_threads_threads),
          cmocka_unit_test(a_cancelled_caller_waits_for_its_call),
          cmocka_unit_test(a_call_that_never_returns_is_abandoned_at_shutdown),
          cmocka_unit_test(pool_failures_are_reported_and_the_pool_goes_on))
