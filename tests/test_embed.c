/* test_embed.c - a loop driven from another event loop (here a plain poll
 * loop): chime_loop_fd, chime_loop_timeout, chime_loop_run_once. */
#include "test.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>

/* The host: polls the loop's descriptor (and nothing of its own) for as long
 * as chime_loop_timeout says, then lets the loop run, until the loop has no
 * task left.  Returns the number of host iterations. */
static long host_loop(chime_loop *loop, chime_ns limit) {
  int fd = chime_loop_fd(loop);
  assert_true(fd >= 0);
  long iterations = 0;
  chime_ns until = real_ns() + limit;
  while (chime_loop_run_once(loop, 0) > 0) {
    assert_true(real_ns() < until);
    chime_ns t = chime_loop_timeout(loop);
    assert_true(t >= -1);
    int ms = t < 0 ? -1 : (int)((t + 999999) / 1000000);
    struct pollfd p = {fd, POLLIN, 0};
    assert_true(poll(&p, 1, ms) >= 0);
    iterations++;
  }
  return iterations;
}

static bool have_fd(void) {
  chime_loop *loop;
  assert_int_equal(chime_loop_new(NULL, &loop), 0);
  int fd = chime_loop_fd(loop);
  chime_loop_free(loop);
  if (fd == -ENOTSUP) return false; /* the poll backend has none */
  assert_true(fd >= 0);
  return true;
}

static int count_run(void *arg) {
  (*(int *)arg)++;
  return 0;
}

static void *post_from_thread(void *arg) {
  static int runs;
  if (chime_spawn_threadsafe(arg, count_run, &runs) != 0) abort();
  return &runs;
}

static void a_post_from_another_thread_makes_the_descriptor_readable(void **state) {
  (void)state;
  if (!have_fd()) skip();
  chime_loop *loop;
  assert_int_equal(chime_loop_new(NULL, &loop), 0);
  assert_int_equal(chime_loop_timeout(loop), -1); /* nothing to do */
  struct pollfd p = {chime_loop_fd(loop), POLLIN, 0};
  assert_int_equal(poll(&p, 1, 0), 0);
  pthread_t th;
  void *runs;
  assert_int_equal(pthread_create(&th, NULL, post_from_thread, loop), 0);
  assert_int_equal(pthread_join(th, &runs), 0);
  assert_int_equal(poll(&p, 1, 30000), 1); /* readable: the loop has work */
  assert_int_equal(chime_loop_timeout(loop), 0);
  assert_int_equal(chime_loop_run_once(loop, 0), 0);
  assert_int_equal(*(int *)runs, 1);
  assert_int_equal(poll(&p, 1, 0), 0); /* and no longer */
  chime_loop_free(loop);
}

struct jobs {
  int runs;
  int pipe_got;
  int pipe_fd;
};

static int start_jobs(void *arg) {
  struct jobs *j = arg;
  chime_every_opts o = {.max_runs = 5};
  chime_task job;
  assert_int_equal(chime_every(CHIME_MS(10), count_run, &j->runs, &o, &job), 0);
  assert_int_equal(chime_detach(job), 0);
  char c;
  j->pipe_got = chime_read(j->pipe_fd, &c, 1, chime_now() + CHIME_SEC(30)); /* a descriptor, too */
  return 0;
}

static void *write_later(void *arg) {
  struct timespec ts = {0, 30 * 1000 * 1000};
  nanosleep(&ts, NULL);
  if (write(*(int *)arg, "x", 1) != 1) abort();
  return NULL;
}

static void timers_descriptors_and_posts_drive_the_host(void **state) {
  (void)state;
  if (!have_fd()) skip();
  chime_loop *loop;
  assert_int_equal(chime_loop_new(NULL, &loop), 0);
  assert_int_equal(chime_loop_timeout(loop), -1); /* nothing to do */
  int p[2];
  assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
  struct jobs j = {0, 0, p[0]};
  assert_int_equal(chime_spawn_threadsafe(loop, start_jobs, &j), 0);
  assert_int_equal(chime_loop_timeout(loop), 0); /* a post waits */
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, write_later, &p[1]), 0);
  chime_ns t0 = real_ns();
  long iterations = host_loop(loop, CHIME_SEC(60));
  assert_int_equal(pthread_join(th, NULL), 0);
  assert_int_equal(j.runs, 5);
  assert_int_equal(j.pipe_got, 1);
  assert_true(real_ns() - t0 >= CHIME_MS(50)); /* five ticks of 10 ms: the host waited for them */
  assert_true(iterations >= 5);
  assert_true(iterations < 1000); /* it slept between them, it did not spin */
  assert_int_equal(chime_loop_timeout(loop), -1);
  chime_loop_free(loop);
  close(p[0]);
  close(p[1]);
}

static int start_hourly(void *arg) {
  chime_every_opts o = {.max_runs = 3};
  chime_task job;
  assert_int_equal(chime_every(CHIME_HOUR(1), count_run, arg, &o, &job), 0);
  return chime_detach(job);
}

static void a_virtual_clock_jumps_in_a_host_loop_too(void **state) {
  (void)state;
  chime_loop *loop;
  chime_loop_opts lo = {.clock = CHIME_CLOCK_VIRTUAL};
  assert_int_equal(chime_loop_new(&lo, &loop), 0);
  int runs = 0;
  assert_int_equal(chime_spawn_threadsafe(loop, start_hourly, &runs), 0);
  long rounds = 0;
  while (chime_loop_run_once(loop, 0) > 0) {
    assert_int_equal(chime_loop_timeout(loop), 0); /* deadlines: time jumps, nobody waits */
    assert_true(++rounds < 100);
  }
  assert_int_equal(runs, 3);
  assert_int_equal(chime_loop_timeout(loop), -1);
  chime_loop_free(loop);
}

static void embedding_calls_check_their_arguments(void **state) {
  (void)state;
  assert_int_equal(chime_loop_fd(NULL), -EINVAL);
  assert_int_equal(chime_loop_timeout(NULL), -EINVAL);
  assert_int_equal(chime_loop_run_once(NULL, 0), -EINVAL);
  chime_loop *loop;
  assert_int_equal(chime_loop_new(NULL, &loop), 0);
  assert_int_equal(chime_loop_run_once(loop, 0), 0); /* nothing to do: returns at once */
  chime_ns t0 = real_ns();
  assert_int_equal(chime_loop_run_once(loop, CHIME_MS(20)), 0); /* waits, for nothing */
  assert_true(real_ns() - t0 >= CHIME_MS(20));
  chime_loop_free(loop);
}

TEST_MAIN(cmocka_unit_test(a_post_from_another_thread_makes_the_descriptor_readable),
          cmocka_unit_test(timers_descriptors_and_posts_drive_the_host),
          cmocka_unit_test(a_virtual_clock_jumps_in_a_host_loop_too),
          cmocka_unit_test(embedding_calls_check_their_arguments))
