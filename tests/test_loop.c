/* test_loop.c - loops, chime_run, shutdown, signals, the tutorial. */
#include "test.h"

#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static struct trace tr;

/* ---- the tutorial ---------------------------------------------------------- */

static int work(void *arg) {
  trace_add(&tr, ">Doing work:%s@%ld", (const char *)arg, now_s());
  return 0;
}

struct periodic_args {
  chime_ns interval;
  chime_fn target;
  void *arg;
};

static int periodic(void *p) {
  const struct periodic_args *a = p;
  for (;;) {
    int rc = chime_sleep(a->interval);
    if (rc < 0) {
      trace_add(&tr, "periodic:%d@%ld", rc, now_s());
      return rc;
    }
    a->target(a->arg);
  }
}

static int tutorial_main(void *unused) {
  (void)unused;
  static struct periodic_args args = {CHIME_SEC(1), work, "!"};
  trace_add(&tr, "Main starting");
  assert_int_equal(chime_spawn(periodic, &args, NULL), 0);
  assert_int_equal(chime_sleep(CHIME_SEC(5)), 0);
  trace_add(&tr, "Main done@%ld", now_s());
  return 0;
}

static void the_tutorial_prints_its_six_lines(void **state) {
  (void)state;
  memset(&tr, 0, sizeof tr);
  chime_ns t0 = real_ns();
  chime_report r;
  chime_run_opts o = virtual_run();
  assert_int_equal(chime_run(tutorial_main, NULL, &o, &r), 0);
  assert_string_equal(tr.text, "Main starting >Doing work:!@1 >Doing work:!@2 >Doing work:!@3 >Doing work:!@4 "
                               "Main done@5 periodic:-125@5");
  assert_int_equal(r.result, 0);
  assert_int_equal(r.abandoned, 0);
  assert_true(real_ns() - t0 < CHIME_SEC(5)); /* virtual: no waiting */
}

/* ---- lower-level loops ------------------------------------------------------ */

static int count_down(void *arg) {
  int *n = arg;
  while (*n > 0) {
    (*n)--;
    chime_sleep(CHIME_SEC(1));
  }
  return 0;
}

static void loop_runs_until_no_task_is_left(void **state) {
  (void)state;
  chime_loop *loop;
  chime_loop_opts o = {.clock = CHIME_CLOCK_VIRTUAL};
  assert_int_equal(chime_loop_new(&o, &loop), 0);
  int a = 3, b = 5;
  chime_task t;
  assert_int_equal(chime_loop_spawn(loop, count_down, &a, NULL), 0);
  assert_int_equal(chime_loop_spawn(loop, count_down, &b, &t), 0);
  assert_null(chime_loop_current());
  assert_int_equal(chime_loop_run(loop), 0);
  assert_int_equal(a, 0);
  assert_int_equal(b, 0);
  assert_null(chime_loop_current());
  /* the loop can be given more work and run again */
  a = 2;
  assert_int_equal(chime_loop_spawn(loop, count_down, &a, NULL), 0);
  assert_int_equal(chime_loop_run(loop), 0);
  assert_int_equal(a, 0);
  chime_loop_free(loop); /* t was never joined: the loop releases it */
}

static int stopper(void *arg) {
  chime_loop *loop = arg;
  assert_ptr_equal(chime_loop_current(), loop);
  chime_sleep(CHIME_SEC(2));
  return chime_loop_stop(loop);
}

static void stop_returns_from_run_and_tasks_resume_later(void **state) {
  (void)state;
  chime_loop *loop;
  chime_loop_opts o = {.clock = CHIME_CLOCK_VIRTUAL};
  assert_int_equal(chime_loop_new(&o, &loop), 0);
  int n = 10;
  assert_int_equal(chime_loop_spawn(loop, count_down, &n, NULL), 0);
  assert_int_equal(chime_loop_spawn(loop, stopper, loop, NULL), 0);
  assert_int_equal(chime_loop_run(loop), 0);
  assert_int_equal(n, 8);                          /* ticks at 0 and 1 s; at 2 s the stopper, armed first, runs first */
  assert_int_equal(chime_loop_stop(loop), -EPERM); /* not running */
  assert_int_equal(chime_loop_run(loop), 0);
  assert_int_equal(n, 0);
  chime_loop_free(loop);
}

static int nested(void *unused) {
  (void)unused;
  chime_loop *loop;
  assert_int_equal(chime_loop_new(NULL, &loop), 0);
  assert_int_equal(chime_loop_run(loop), -EBUSY);
  assert_int_equal(chime_loop_shutdown(loop, 0, NULL), -EBUSY);
  chime_loop_free(loop);
  assert_int_equal(chime_run(nested, NULL, NULL, NULL), -EBUSY);
  assert_int_equal(chime_loop_run(chime_loop_current()), -EBUSY);
  return 0;
}

static void loops_do_not_nest(void **state) {
  (void)state;
  assert_int_equal(run_virtual(nested, NULL), 0);
}

struct other_thread {
  chime_loop *loop;
  int run, spawn, shutdown, stop;
};

static void *use_from_other_thread(void *p) {
  struct other_thread *o = p;
  o->run = chime_loop_run(o->loop);
  o->spawn = chime_loop_spawn(o->loop, count_down, NULL, NULL);
  o->shutdown = chime_loop_shutdown(o->loop, 0, NULL);
  o->stop = chime_loop_stop(o->loop);
  chime_loop_free(o->loop); /* does nothing */
  return NULL;
}

static void a_loop_refuses_other_threads(void **state) {
  (void)state;
  struct other_thread o = {0};
  assert_int_equal(chime_loop_new(NULL, &o.loop), 0);
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, use_from_other_thread, &o), 0);
  pthread_join(th, NULL);
  assert_int_equal(o.run, -EPERM);
  assert_int_equal(o.spawn, -EPERM);
  assert_int_equal(o.shutdown, -EPERM);
  assert_int_equal(o.stop, -EPERM);
  chime_loop_free(o.loop);
}

static void loop_options_are_checked(void **state) {
  (void)state;
  chime_loop *loop = NULL;
  chime_loop_opts o;
  assert_int_equal(chime_loop_new(NULL, NULL), -EINVAL);
  o = (chime_loop_opts){.stack_size = 4096};
  assert_int_equal(chime_loop_new(&o, &loop), -EINVAL);
  o = (chime_loop_opts){.stack_size = (size_t)2 << 30};
  assert_int_equal(chime_loop_new(&o, &loop), -EINVAL);
  o = (chime_loop_opts){.clock = (chime_clock)7};
  assert_int_equal(chime_loop_new(&o, &loop), -EINVAL);
  o = (chime_loop_opts){.backend = (chime_backend)9};
  assert_int_equal(chime_loop_new(&o, &loop), -EINVAL);
  assert_null(loop);
  assert_int_equal(chime_loop_run(NULL), -EINVAL);
  assert_int_equal(chime_loop_stop(NULL), -EINVAL);
  assert_int_equal(chime_loop_spawn(NULL, count_down, NULL, NULL), -EINVAL);
  assert_int_equal(chime_loop_shutdown(NULL, 0, NULL), -EINVAL);
  assert_null(chime_loop_backend(NULL));
  chime_loop_free(NULL);
  assert_int_equal(chime_run(NULL, NULL, NULL, NULL), -EINVAL);
  chime_run_opts ro = {.grace = -1};
  assert_int_equal(chime_run(count_down, NULL, &ro, NULL), -EINVAL);
  /* the backend the tests asked for */
  assert_int_equal(chime_loop_new(NULL, &loop), 0);
  assert_string_equal(chime_loop_backend(loop), getenv("CHIME_BACKEND") ? getenv("CHIME_BACKEND") : "epoll");
  chime_loop_free(loop);
}

/* ---- shutdown ----------------------------------------------------------------- */

static int slow_cleanup(void *arg) {
  int secs = (int)(intptr_t)arg;
  int rc = chime_sleep(CHIME_HOUR(10));
  chime_shield(true);
  chime_sleep(CHIME_SEC(secs));
  trace_add(&tr, "cleaned-%d@%ld", secs, now_s());
  return rc;
}

static int spawn_cleaners(void *unused) {
  (void)unused;
  for (int s = 1; s <= 3; s++) {
    chime_task t;
    assert_int_equal(chime_spawn(slow_cleanup, (void *)(intptr_t)(s * 10), &t), 0);
    char name[16];
    snprintf(name, sizeof name, "cleaner-%d", s * 10);
    assert_int_equal(chime_task_set_name(t, name), 0);
  }
  chime_sleep(CHIME_SEC(1));
  return 9;
}

static void shutdown_waits_for_cleanup_without_bound_by_default(void **state) {
  (void)state;
  memset(&tr, 0, sizeof tr);
  chime_report r;
  chime_run_opts o = virtual_run();
  assert_int_equal(chime_run(spawn_cleaners, NULL, &o, &r), 9);
  assert_string_equal(tr.text, "cleaned-10@11 cleaned-20@21 cleaned-30@31");
  assert_int_equal(r.result, 9);
  assert_int_equal(r.abandoned, 0);
  assert_string_equal(r.names, "");
}

static void shutdown_abandons_what_outlives_the_grace_period(void **state) {
  (void)state;
  memset(&tr, 0, sizeof tr);
  chime_report r;
  chime_run_opts o = virtual_run();
  o.grace = CHIME_SEC(15);
  assert_int_equal(chime_run(spawn_cleaners, NULL, &o, &r), 9);
  assert_string_equal(tr.text, "cleaned-10@11");
  assert_int_equal(r.abandoned, 2);
  assert_string_equal(r.names, "cleaner-20, cleaner-30");
}

static int spawn_unnamed(void *unused) {
  (void)unused;
  for (int i = 0; i < 40; i++) {
    chime_task t;
    assert_int_equal(chime_spawn(slow_cleanup, (void *)(intptr_t)100, &t), 0);
    if (i % 2) {
      char name[32];
      snprintf(name, sizeof name, "a-rather-long-task-name-%02d", i);
      chime_task_set_name(t, name);
    }
  }
  return 0;
}

static void the_report_of_abandoned_names_is_bounded(void **state) {
  (void)state;
  memset(&tr, 0, sizeof tr);
  chime_report r;
  chime_run_opts o = virtual_run();
  o.grace = CHIME_SEC(1);
  assert_int_equal(chime_run(spawn_unnamed, NULL, &o, &r), 0);
  assert_int_equal(r.abandoned, 40);
  assert_true(strlen(r.names) < sizeof r.names);
  assert_non_null(strstr(r.names, "a-rather-long-task-name-01, a-rather-long-task-name-03"));
  assert_string_equal(r.names + strlen(r.names) - 3, "...");
}

static int spawns_in_cleanup(void *unused) {
  (void)unused;
  chime_sleep(CHIME_HOUR(1));
  /* spawned during the shutdown: starts cancelled */
  chime_task t;
  assert_int_equal(chime_spawn(slow_cleanup, (void *)(intptr_t)2, &t), 0);
  int rc = 0;
  assert_int_equal(chime_join(t, &rc), 0);
  trace_add(&tr, "late:%d@%ld", rc, now_s());
  return 0;
}

static int late_main(void *unused) {
  (void)unused;
  return chime_spawn(spawns_in_cleanup, NULL, NULL);
}

static void tasks_spawned_during_shutdown_start_cancelled(void **state) {
  (void)state;
  memset(&tr, 0, sizeof tr);
  assert_int_equal(run_virtual(late_main, NULL), 0);
  assert_string_equal(tr.text, "cleaned-2@2 late:-125@2");
}

static int waits_forever(void *unused) {
  (void)unused;
  return chime_sleep_until(CHIME_NEVER);
}

struct remote {
  chime_loop *loop;
  chime_task task;
};

static void cancel_from_loop(void *arg) {
  struct remote *r = arg;
  chime_cancel(r->task);
}

static void *poster(void *arg) {
  struct remote *r = arg;
  struct timespec ts = {0, 50 * 1000 * 1000};
  nanosleep(&ts, NULL);
  chime_loop_post(r->loop, cancel_from_loop, r);
  return NULL;
}

/* Every task waits on nothing the loop knows of: the loop waits too, and
 * another thread wakes it. */
static void a_loop_whose_tasks_wait_on_nothing_waits_for_other_threads(void **state) {
  (void)state;
  struct remote r;
  chime_loop_opts o = {.clock = CHIME_CLOCK_REAL};
  assert_int_equal(chime_loop_new(&o, &r.loop), 0);
  assert_int_equal(chime_loop_spawn(r.loop, waits_forever, NULL, &r.task), 0);
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, poster, &r), 0);
  assert_int_equal(chime_loop_run(r.loop), 0);
  pthread_join(th, NULL);
  chime_loop_free(r.loop);
}

static void freeing_a_loop_abandons_its_tasks(void **state) {
  (void)state;
  chime_loop *loop;
  chime_loop_opts o = {.clock = CHIME_CLOCK_VIRTUAL};
  assert_int_equal(chime_loop_new(&o, &loop), 0);
  int n = 1000;
  for (int i = 0; i < 3; i++)
    assert_int_equal(chime_loop_spawn(loop, count_down, &n, NULL), 0);
  assert_int_equal(chime_loop_spawn(loop, stopper, loop, NULL), 0);
  assert_int_equal(chime_loop_run(loop), 0);
  chime_loop_free(loop); /* three suspended tasks: their stacks are freed */
}

/* ---- signals ------------------------------------------------------------------ */

static int interrupted(void *unused) {
  (void)unused;
  kill(getpid(), SIGINT);
  int rc = chime_sleep_until(CHIME_NEVER);
  trace_add(&tr, "main:%d", rc);
  return rc;
}

static void sigint_cancels_the_main_task(void **state) {
  (void)state;
  memset(&tr, 0, sizeof tr);
  chime_report r;
  chime_run_opts o = virtual_run();
  o.cancel_on_signal = true;
  assert_int_equal(chime_run(interrupted, NULL, &o, &r), -ECANCELED);
  assert_string_equal(tr.text, "main:-125");
  assert_int_equal(r.signal, SIGINT);
  struct sigaction now;
  sigaction(SIGINT, NULL, &now);
  assert_true(now.sa_handler == SIG_DFL); /* restored */
}

static int terminated_twice(void *unused) {
  (void)unused;
  kill(getpid(), SIGTERM);
  chime_sleep_until(CHIME_NEVER);
  chime_shield(true);
  kill(getpid(), SIGTERM); /* the second: at once */
  chime_sleep(CHIME_SEC(1));
  return 0;
}

static void a_second_signal_terminates_at_once(void **state) {
  (void)state;
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    chime_run_opts o = virtual_run();
    o.cancel_on_signal = true;
    chime_run(terminated_twice, NULL, &o, NULL);
    _exit(0);
  }
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFSIGNALED(status));
  assert_int_equal(WTERMSIG(status), SIGTERM);
}

/* The virtual clock's sides stay within chime_ns: an advance that would take
 * either past it is refused, and nothing overflows reading them. */
static int far_clock_main(void *unused) {
  (void)unused;
  assert_int_equal(chime_clock_advance(INT64_MAX), -EINVAL); /* the wall side would overflow */
  assert_true(chime_wall_now() > 0);
  assert_int_equal(chime_wall_set(INT64_MAX), 0);
  assert_int_equal(chime_clock_advance(1), -EINVAL);
  assert_int_equal(chime_wall_now(), INT64_MAX);
  assert_int_equal(chime_wall_set(0), 0);
  assert_int_equal(chime_clock_advance(INT64_MAX - chime_now()), 0);
  assert_int_equal(chime_now(), INT64_MAX);
  assert_int_equal(chime_wall_now(), INT64_MAX);
  assert_int_equal(chime_clock_advance(1), -EINVAL);
  return 0;
}

static void the_virtual_clock_never_overflows(void **state) {
  (void)state;
  assert_int_equal(run_virtual(far_clock_main, NULL), 0);
}

/* run_once with no bound on an empty loop: nothing could come, it returns. */
static void run_once_on_an_empty_loop_returns(void **state) {
  (void)state;
  chime_loop *loop;
  assert_int_equal(chime_loop_new(NULL, &loop), 0);
  assert_int_equal(chime_loop_run_once(loop, -1), 0);
  chime_loop_free(loop);
}

/* A deadline seconds away on the real clock: the kernel may end a wait late
 * by 0.1% of its length (2 ms here), whatever the timer slack, so the
 * loop's last wait before it is a short one. */
static int far_deadline_main(void *unused) {
  (void)unused;
  chime_ns t0 = chime_now();
  assert_int_equal(chime_sleep(CHIME_SEC(2)), 0);
  chime_ns late = chime_now() - t0 - CHIME_SEC(2);
  long long last = chime__test_last_wait_timeout();
  print_message("woke %.3f ms late; the last wait asked for %.3f ms\n", (double)late / 1e6, (double)last / 1e6);
  assert_true(late >= 0);
  assert_true(last >= 0 && last <= CHIME_MS(10));
  return 0;
}

static void a_far_deadline_ends_with_a_short_wait(void **state) {
  (void)state;
  assert_int_equal(run_real(far_deadline_main, NULL), 0);
}

TEST_MAIN(cmocka_unit_test(the_tutorial_prints_its_six_lines),
          cmocka_unit_test(a_far_deadline_ends_with_a_short_wait), cmocka_unit_test(loop_runs_until_no_task_is_left),
          cmocka_unit_test(the_virtual_clock_never_overflows), cmocka_unit_test(run_once_on_an_empty_loop_returns),
          cmocka_unit_test(stop_returns_from_run_and_tasks_resume_later), cmocka_unit_test(loops_do_not_nest),
          cmocka_unit_test(a_loop_refuses_other_threads), cmocka_unit_test(loop_options_are_checked),
          cmocka_unit_test(shutdown_waits_for_cleanup_without_bound_by_default),
          cmocka_unit_test(shutdown_abandons_what_outlives_the_grace_period),
          cmocka_unit_test(the_report_of_abandoned_names_is_bounded),
          cmocka_unit_test(tasks_spawned_during_shutdown_start_cancelled),
          cmocka_unit_test(a_loop_whose_tasks_wait_on_nothing_waits_for_other_threads),
          cmocka_unit_test(freeing_a_loop_abandons_its_tasks), cmocka_unit_test(sigint_cancels_the_main_task),
          cmocka_unit_test(a_second_signal_terminates_at_once))
