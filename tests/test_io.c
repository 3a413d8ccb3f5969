/* test_io.c - tasks waiting for file descriptors. */
#include "test.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

static void nonblocking_pipe(int p[2]) { assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0); }

/* ---- ping-pong ------------------------------------------------------------- */

struct pp {
  int in, out;
  int rounds;
  long seen;
};

static int pong(void *arg) {
  struct pp *p = arg;
  char c;
  for (int i = 0; i < p->rounds; i++) {
    int n = chime_read(p->in, &c, 1, CHIME_NEVER);
    if (n != 1) return n < 0 ? n : -EIO;
    p->seen++;
    if (chime_write_all(p->out, &c, 1, CHIME_NEVER, NULL) != 0) return -EIO;
  }
  return 0;
}

static int pingpong_main(void *unused) {
  (void)unused;
  int a[2], b[2];
  nonblocking_pipe(a);
  nonblocking_pipe(b);
  struct pp ping = {b[0], a[1], 1000, 0}, pongs = {a[0], b[1], 1000, 0};
  chime_task t;
  assert_int_equal(chime_spawn(pong, &pongs, &t), 0);
  char c = 'x';
  for (int i = 0; i < ping.rounds; i++) {
    assert_int_equal(chime_write_all(ping.out, &c, 1, CHIME_NEVER, NULL), 0);
    assert_int_equal(chime_read(ping.in, &c, 1, CHIME_NEVER), 1);
  }
  int rc;
  assert_int_equal(chime_join(t, &rc), 0);
  assert_int_equal(rc, 0);
  assert_int_equal(pongs.seen, 1000);
  for (int i = 0; i < 2; i++) {
    assert_int_equal(chime_close(a[i]), 0);
    assert_int_equal(chime_close(b[i]), 0);
  }
  return 0;
}

static void two_tasks_play_ping_pong_over_pipes(void **state) {
  (void)state;
  assert_int_equal(run_real(pingpong_main, NULL), 0);
}

/* A pipe made now takes the number `old` (closed just before): a wait on
 * it sees the new file, not a registration left from the old one. */
static void new_file_under(int old) {
  int b[2];
  nonblocking_pipe(b);
  assert_int_equal(b[0], old);
  assert_int_equal(write(b[1], "z", 1), 1);
  assert_int_equal(chime_wait_fd(b[0], CHIME_READABLE, chime_now() + CHIME_SEC(5)), (int)CHIME_READABLE);
  close(b[0]);
  close(b[1]);
}

/* ---- kept descriptors ------------------------------------------------------------ */

static bool on_epoll(void) { return !getenv("CHIME_BACKEND") || !strcmp(getenv("CHIME_BACKEND"), "epoll"); }

/* The fallible calls (allocations, epoll_ctl) a 1000-round ping-pong
 * makes besides the backend's waits, its pipes kept or not. */
static long pingpong_calls(bool keep) {
  int a[2], b[2];
  nonblocking_pipe(a);
  nonblocking_pipe(b);
  for (int i = 0; keep && i < 2; i++) {
    assert_int_equal(chime_keep_fd(a[i]), 0);
    assert_int_equal(chime_keep_fd(b[i]), 0);
    assert_int_equal(chime_keep_fd(b[i]), 0); /* kept already: nothing to do */
  }
  struct pp pongs = {a[0], b[1], 1000, 0};
  chime_task t;
  assert_int_equal(chime_spawn(pong, &pongs, &t), 0);
  assert_int_equal(chime_yield(), 0); /* the pong task waits */
  long before = chime__test_calls() - chime__test_backend_waits();
  char c = 'x';
  for (int i = 0; i < pongs.rounds; i++) {
    assert_int_equal(chime_write_all(a[1], &c, 1, CHIME_NEVER, NULL), 0);
    assert_int_equal(chime_read(b[0], &c, 1, CHIME_NEVER), 1);
  }
  long calls = chime__test_calls() - chime__test_backend_waits() - before;
  int rc;
  assert_int_equal(chime_join(t, &rc), 0);
  assert_int_equal(rc, 0);
  assert_int_equal(pongs.seen, 1000);
  for (int i = 0; i < 2; i++) {
    assert_int_equal(chime_close(a[i]), 0);
    assert_int_equal(chime_close(b[i]), 0);
  }
  return calls;
}

static int kept_main(void *unused) {
  (void)unused;
  long kept = pingpong_calls(true), armed = pingpong_calls(false);
  print_message("fallible calls in 1000 rounds: %ld kept, %ld armed at each wait\n", kept, armed);
  assert_true(kept < 10);
  if (on_epoll()) assert_true(armed >= 2000); /* an epoll_ctl for each wait, on either side */
  return 0;
}

static void a_kept_descriptor_is_waited_on_without_a_call_per_wait(void **state) {
  (void)state;
  assert_int_equal(run_real(kept_main, NULL), 0);
}

/* A kept descriptor: ready with nobody waiting, it wakes the loop once (not
 * at every turn: a sleep of 50 ms is a handful of turns, not a spin); its
 * peer gone, a wait sees the end; closed with chime_close, its number
 * reused, the new file is waited on; keeping is refused where it cannot
 * be. */
static int idle_main(void *unused) {
  (void)unused;
  int a[2];
  nonblocking_pipe(a);
  assert_int_equal(chime_keep_fd(a[0]), 0);
  assert_int_equal(chime_wait_fd(a[0], CHIME_READABLE, chime_now() + CHIME_MS(5)), -ETIMEDOUT);
  assert_int_equal(write(a[1], "zz", 2), 2); /* ready, nobody waits */
  long waits = chime__test_backend_waits();
  assert_int_equal(chime_sleep(CHIME_MS(50)), 0);
  waits = chime__test_backend_waits() - waits;
  print_message("%ld waits of the backend in 50 ms\n", waits);
  assert_true(waits < 10);
  char buf[8];
  assert_int_equal(chime_read(a[0], buf, sizeof buf, CHIME_NEVER), 2); /* registered again as it waits */
  close(a[1]);
  assert_int_equal(chime_read(a[0], buf, sizeof buf, chime_now() + CHIME_SEC(5)), 0);
  int old = a[0];
  assert_int_equal(chime_close(a[0]), 0);
  new_file_under(old);
  assert_int_equal(chime_keep_fd(-1), -EINVAL);
  assert_int_equal(chime_keep_fd(old), -EBADF); /* closed */
  return 0;
}

static void a_kept_descriptor_nobody_waits_on_does_not_spin_the_loop(void **state) {
  (void)state;
  assert_int_equal(run_real(idle_main, NULL), 0);
  assert_int_equal(chime_keep_fd(0), -EPERM); /* no loop here */
}

/* ---- deadlines and cancellation ----------------------------------------------- */

static int deadline_main(void *unused) {
  (void)unused;
  int p[2];
  nonblocking_pipe(p);
  chime_ns t0 = chime_now();
  assert_int_equal(chime_wait_fd(p[0], CHIME_READABLE, t0 + CHIME_MS(50)), -ETIMEDOUT);
  assert_true(chime_now() - t0 >= CHIME_MS(50));
  char buf[8];
  assert_int_equal(chime_read(p[0], buf, sizeof buf, chime_now() + CHIME_MS(10)), -ETIMEDOUT);
  /* the write end is always writable */
  assert_int_equal(chime_wait_fd(p[1], CHIME_WRITABLE, CHIME_NEVER), (int)CHIME_WRITABLE);
  assert_int_equal(chime_wait_fd(p[1], CHIME_READABLE | CHIME_WRITABLE, CHIME_NEVER), (int)CHIME_WRITABLE);
  close(p[0]);
  close(p[1]);
  return 0;
}

static void a_wait_ends_at_its_deadline(void **state) {
  (void)state;
  assert_int_equal(run_virtual(deadline_main, NULL), 0); /* virtual: the clock jumps to the deadline */
  assert_int_equal(run_real(deadline_main, NULL), 0);
}

static int waiter(void *arg) {
  int fd = *(int *)arg;
  return chime_wait_fd(fd, CHIME_READABLE, chime_now() + CHIME_SEC(5));
}

static int cancel_main(void *unused) {
  (void)unused;
  int p[2];
  nonblocking_pipe(p);
  chime_task t;
  assert_int_equal(chime_spawn(waiter, &p[0], &t), 0);
  assert_int_equal(chime_sleep(CHIME_SEC(1)), 0);
  chime_cancel(t);
  int rc;
  assert_int_equal(chime_join(t, &rc), 0);
  assert_int_equal(rc, -ECANCELED);
  assert_int_equal(chime_now(), CHIME_SEC(1));
  /* the descriptor can be waited on again, and data wakes the waiter */
  assert_int_equal(chime_spawn(waiter, &p[0], &t), 0);
  assert_int_equal(chime_yield(), 0);
  assert_int_equal(write(p[1], "x", 1), 1);
  assert_int_equal(chime_join(t, &rc), 0);
  assert_int_equal(rc, (int)CHIME_READABLE);
  close(p[0]);
  close(p[1]);
  return 0;
}

static void cancel_reaches_a_task_waiting_on_a_descriptor(void **state) {
  (void)state;
  assert_int_equal(run_virtual(cancel_main, NULL), 0);
}

/* ---- sharing a descriptor ---------------------------------------------------- */

static int reader_task(void *arg) {
  int fd = *(int *)arg;
  char c;
  return chime_read(fd, &c, 1, CHIME_NEVER);
}

static int busy_main(void *unused) {
  (void)unused;
  int s[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, s), 0);
  chime_task t;
  assert_int_equal(chime_spawn(reader_task, &s[0], &t), 0);
  assert_int_equal(chime_yield(), 0); /* t waits to read s[0] */
  /* a second reader is refused; a writer on the same descriptor is not */
  assert_int_equal(chime_wait_fd(s[0], CHIME_READABLE, CHIME_NEVER), -EBUSY);
  assert_int_equal(chime_wait_fd(s[0], CHIME_WRITABLE, CHIME_NEVER), (int)CHIME_WRITABLE);
  assert_int_equal(chime_close(s[0]), -EBUSY);
  assert_int_equal(write(s[1], "y", 1), 1);
  int rc;
  assert_int_equal(chime_join(t, &rc), 0);
  assert_int_equal(rc, 1);
  assert_int_equal(chime_close(s[0]), 0);
  assert_int_equal(chime_close(s[1]), 0);
  return 0;
}

static void one_reader_and_one_writer_per_descriptor(void **state) {
  (void)state;
  assert_int_equal(run_real(busy_main, NULL), 0);
}

/* A descriptor closed and its number reused between waits: the new file
 * is waited on, not the old registration. */
static int reuse_main(void *unused) {
  (void)unused;
  int a[2];
  nonblocking_pipe(a);
  assert_int_equal(chime_wait_fd(a[1], CHIME_WRITABLE, CHIME_NEVER), (int)CHIME_WRITABLE);
  assert_int_equal(chime_wait_fd(a[0], CHIME_READABLE, chime_now() + CHIME_MS(5)), -ETIMEDOUT);
  int old = a[0];
  close(a[0]);
  close(a[1]);
  new_file_under(old);
  return 0;
}

static void a_reused_descriptor_number_is_a_new_file(void **state) {
  (void)state;
  assert_int_equal(run_real(reuse_main, NULL), 0);
}

/* ---- bad descriptors ------------------------------------------------------------ */

static int bad_main(void *unused) {
  (void)unused;
  int p[2];
  assert_int_equal(pipe(p), 0); /* blocking */
  char c = 'x';
  /* a blocking pipe is read and written with RWF_NOWAIT where the kernel
   * has it for pipes, else refused: never a blocked loop */
  int rc = chime_write_all(p[1], &c, 1, CHIME_NEVER, NULL);
  assert_true(rc == 0 || rc == -EINVAL);
  if (rc == 0) {
    assert_int_equal(chime_read(p[0], &c, 1, CHIME_NEVER), 1);
    assert_int_equal(chime_read(p[0], &c, 1, chime_now() + CHIME_SEC(1)), -ETIMEDOUT);
  } else {
    assert_int_equal(chime_read(p[0], &c, 1, CHIME_NEVER), -EINVAL);
  }
  assert_int_equal(chime_accept(p[0], CHIME_NEVER), -EINVAL);
  close(p[0]);
  close(p[1]);
  /* a terminal takes no RWF_NOWAIT: in blocking mode it is refused */
  int tty = posix_openpt(O_RDWR | O_NOCTTY);
  assert_true(tty >= 0);
  assert_int_equal(chime_read(tty, &c, 1, CHIME_NEVER), -EINVAL);
  assert_int_equal(fcntl(tty, F_SETFL, O_NONBLOCK), 0);
  assert_int_equal(chime_read(tty, &c, 1, chime_now() + CHIME_SEC(1)), -ETIMEDOUT); /* non-blocking: waited */
  close(tty);
  assert_int_equal(chime_wait_fd(p[0], CHIME_READABLE, CHIME_NEVER), -EBADF); /* closed */
  assert_int_equal(chime_wait_fd(999, CHIME_READABLE, CHIME_NEVER), -EBADF);
  assert_int_equal(chime_wait_fd(-1, CHIME_READABLE, CHIME_NEVER), -EINVAL);
  assert_int_equal(chime_wait_fd(0, 0, CHIME_NEVER), -EINVAL);
  assert_int_equal(chime_wait_fd(0, 4, CHIME_NEVER), -EINVAL);
  assert_int_equal(chime_wait_fd(0, CHIME_READABLE, -1), -EINVAL);
  assert_int_equal(chime_read(999, &c, 1, CHIME_NEVER), -EBADF);
  assert_int_equal(chime_read(0, NULL, 1, CHIME_NEVER), -EINVAL);
  assert_int_equal(chime_connect(0, NULL, 0, CHIME_NEVER), -EINVAL);
  assert_int_equal(chime_close(-3), -EINVAL);
  assert_int_equal(chime_close(999), -EBADF);
  /* a regular file is always ready */
  char path[] = "/tmp/chime-io-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  unlink(path);
  assert_int_equal(chime_wait_fd(fd, CHIME_READABLE, CHIME_NEVER), (int)CHIME_READABLE);
  close(fd);
  return 0;
}

static void bad_descriptors_get_clear_errors(void **state) {
  (void)state;
  assert_int_equal(run_virtual(bad_main, NULL), 0);
  assert_int_equal(chime_wait_fd(0, CHIME_READABLE, CHIME_NEVER), -EPERM);
  assert_int_equal(chime_close(0), -EPERM);
}

/* ---- reads and writes ---------------------------------------------------------- */

static int drain(void *arg) {
  int fd = *(int *)arg;
  static char buf[4096];
  long total = 0;
  int n;
  while ((n = chime_read(fd, buf, sizeof buf, CHIME_NEVER)) > 0)
    total += n;
  return n < 0 ? n : (int)(total / 1024);
}

static int write_main(void *unused) {
  (void)unused;
  int p[2];
  nonblocking_pipe(p);
  chime_task t;
  assert_int_equal(chime_spawn(drain, &p[0], &t), 0);
  static char big[1 << 20]; /* far more than a pipe holds: the writer waits for the reader */
  size_t written = 0;
  assert_int_equal(chime_write_all(p[1], big, sizeof big, CHIME_NEVER, &written), 0);
  assert_int_equal(written, sizeof big);
  close(p[1]); /* end of file for the reader */
  int kib;
  assert_int_equal(chime_join(t, &kib), 0);
  assert_int_equal(kib, 1024);
  /* a write that cannot finish by its deadline says how far it got */
  nonblocking_pipe(p);
  assert_int_equal(chime_write_all(p[1], big, sizeof big, chime_now() + CHIME_MS(20), &written), -ETIMEDOUT);
  assert_true(written > 0 && written < sizeof big);
  close(p[0]);
  close(p[1]);
  return 0;
}

static void write_all_waits_for_room_and_read_sees_the_end(void **state) {
  (void)state;
  assert_int_equal(run_real(write_main, NULL), 0);
}

/* ---- sockets --------------------------------------------------------------------- */

static int server(void *arg) {
  int lfd = *(int *)arg;
  int c = chime_accept(lfd, chime_now() + CHIME_SEC(10));
  if (c < 0) return c;
  char buf[5];
  int n = chime_read(c, buf, 5, chime_now() + CHIME_SEC(10));
  if (n == 5) n = chime_write_all(c, "pong!", 5, CHIME_NEVER, NULL);
  close(c);
  return n;
}

static int socket_main(void *unused) {
  (void)unused;
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  assert_true(lfd >= 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(listen(lfd, 8), 0);
  socklen_t len = sizeof a;
  assert_int_equal(getsockname(lfd, (struct sockaddr *)&a, &len), 0);
  chime_task t;
  assert_int_equal(chime_spawn(server, &lfd, &t), 0);
  int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  assert_int_equal(chime_connect(c, (struct sockaddr *)&a, sizeof a, chime_now() + CHIME_SEC(10)), 0);
  assert_int_equal(chime_write_all(c, "ping!", 5, CHIME_NEVER, NULL), 0);
  char buf[6] = {0};
  assert_int_equal(chime_read(c, buf, 5, chime_now() + CHIME_SEC(10)), 5);
  assert_string_equal(buf, "pong!");
  int rc;
  assert_int_equal(chime_join(t, &rc), 0);
  assert_int_equal(rc, 0);
  close(c);
  /* nobody listens any more: refused */
  close(lfd);
  c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  assert_int_equal(chime_connect(c, (struct sockaddr *)&a, sizeof a, chime_now() + CHIME_SEC(10)), -ECONNREFUSED);
  close(c);
  return 0;
}

static void accept_and_connect_over_loopback(void **state) {
  (void)state;
  assert_int_equal(run_real(socket_main, NULL), 0);
}

/* ---- faults ------------------------------------------------------------------------ */

static int fault_main(void *unused) {
  (void)unused;
  int p[2];
  nonblocking_pipe(p);
  assert_int_equal(write(p[1], "x", 1), 1);
  long n;
  for (n = 0;; n++) {
    long before = chime__test_failures();
    chime__test_fail_after(n, false);
    int rc = chime_wait_fd(p[0], CHIME_READABLE, CHIME_NEVER);
    chime__test_fail_after(-1, false);
    if (chime__test_failures() == before) {
      assert_int_equal(rc, (int)CHIME_READABLE);
      break;
    }
    assert_true(rc == -ENOMEM || rc == (int)CHIME_READABLE); /* epoll_pwait2 missing is no failure */
  }
  /* the loop goes on: the descriptor still works */
  assert_int_equal(chime_wait_fd(p[0], CHIME_READABLE, CHIME_NEVER), (int)CHIME_READABLE);
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  chime__test_fail_after(0, false);
  assert_int_equal(chime_accept(lfd, CHIME_NEVER), -EMFILE); /* a full descriptor table */
  chime__test_fail_after(-1, false);
  close(lfd);
  close(p[0]);
  close(p[1]);
  return 0;
}

static void allocation_and_descriptor_failures_are_reported(void **state) {
  (void)state;
  assert_int_equal(run_virtual(fault_main, NULL), 0);
}

static int stuck_reader(void *arg) {
  chime_shield(true);
  return reader_task(arg);
}

static int abandon_main(void *arg) {
  chime_task t;
  assert_int_equal(chime_spawn(stuck_reader, arg, &t), 0);
  assert_int_equal(chime_task_set_name(t, "stuck-reader"), 0);
  return chime_detach(t);
}

static void a_task_abandoned_while_waiting_leaves_nothing_behind(void **state) {
  (void)state;
  int p[2];
  nonblocking_pipe(p);
  chime_report r;
  chime_run_opts o = virtual_run();
  o.grace = CHIME_SEC(1);
  assert_int_equal(chime_run(abandon_main, &p[0], &o, &r), 0);
  assert_int_equal(r.abandoned, 1);
  assert_string_equal(r.names, "stuck-reader");
  assert_int_equal(write(p[1], "x", 1), 1); /* nobody is woken: the loop is gone */
  close(p[0]);
  close(p[1]);
}

/* ---- a fast producer does not starve the loop ------------------------------------------- */

static atomic_bool flooding;

static void *flood(void *arg) {
  static const char chunk[4096];
  while (atomic_load(&flooding))
    if (write(*(int *)arg, chunk, sizeof chunk) < 0 && errno != EAGAIN) break;
  return NULL;
}

static int greedy_reader(void *arg) {
  char buf[1]; /* a byte at a time: far slower than the writer, so data is always there */
  int n;
  long total = 0;
  while ((n = chime_read(*(int *)arg, buf, sizeof buf, CHIME_NEVER)) > 0) total += n;
  return n < 0 ? n : (int)(total > 0);
}

static int flood_main(void *arg) {
  int *p = arg;
  chime_task t;
  assert_int_equal(chime_spawn(greedy_reader, &p[0], &t), 0);
  assert_int_equal(chime_sleep(CHIME_MS(50)), 0); /* the timer fires although the reader never waits */
  assert_int_equal(chime_cancel(t), 0);
  int rc;
  assert_int_equal(chime_join(t, &rc), 0);
  assert_int_equal(rc, -ECANCELED);
  return 0;
}

static void a_reader_that_never_waits_still_lets_the_loop_run(void **state) {
  (void)state;
  int p[2];
  nonblocking_pipe(p);
  atomic_store(&flooding, true);
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, flood, &p[1]), 0);
  int rc = run_real(flood_main, p);
  atomic_store(&flooding, false);
  assert_int_equal(pthread_join(th, NULL), 0);
  assert_int_equal(rc, 0);
  close(p[0]);
  close(p[1]);
}

/* A descriptor number far beyond what is open is refused without a table
 * that size (2^26 records would be half a gigabyte). */
static long rss_kb(void) {
  long pages = 0, resident = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (f) {
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    fclose(f);
  }
  return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static int huge_fd_main(void *unused) {
  (void)unused;
  long before = rss_kb();
  assert_int_equal(chime_wait_fd(1 << 26, CHIME_READABLE, 0), -EBADF);
  assert_int_equal(chime_wait_fd(INT32_MAX, CHIME_WRITABLE, 0), -EBADF);
  assert_true(rss_kb() - before < 64 * 1024);
  return 0;
}

static void a_closed_descriptor_far_away_is_refused_at_once(void **state) {
  (void)state;
  assert_int_equal(run_virtual(huge_fd_main, NULL), 0);
}

/* A descriptor ready when its deadline has passed is ready; negative
 * deadlines are refused by every operation, as by chime_wait_fd. */
static int past_main(void *unused) {
  (void)unused;
  int p[2];
  assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
  assert_int_equal(chime_wait_fd(p[0], CHIME_READABLE, 0), -ETIMEDOUT); /* nothing yet */
  assert_int_equal(write(p[1], "x", 1), 1);
  assert_int_equal(chime_wait_fd(p[0], CHIME_READABLE, 0), CHIME_READABLE);
  assert_int_equal(chime_wait_fd(p[1], CHIME_WRITABLE, 0), CHIME_WRITABLE);
  char c;
  assert_int_equal(chime_read(p[0], &c, 1, -1), -EINVAL);
  assert_int_equal(chime_write_all(p[1], "y", 1, -1, NULL), -EINVAL);
  assert_int_equal(chime_accept(p[0], -1), -EINVAL);
  assert_int_equal(chime_read(p[0], &c, 1, 0), 1);
  assert_int_equal(chime_close(p[0]), 0);
  assert_int_equal(chime_close(p[1]), 0);
  return 0;
}

static void readiness_wins_over_a_past_deadline(void **state) {
  (void)state;
  assert_int_equal(run_virtual(past_main, NULL), 0);
}

TEST_MAIN(cmocka_unit_test(a_reader_that_never_waits_still_lets_the_loop_run),
          cmocka_unit_test(readiness_wins_over_a_past_deadline),
          cmocka_unit_test(a_closed_descriptor_far_away_is_refused_at_once),
          cmocka_unit_test(two_tasks_play_ping_pong_over_pipes), cmocka_unit_test(a_wait_ends_at_its_deadline),
          cmocka_unit_test(a_kept_descriptor_is_waited_on_without_a_call_per_wait),
          cmocka_unit_test(a_kept_descriptor_nobody_waits_on_does_not_spin_the_loop),
          cmocka_unit_test(cancel_reaches_a_task_waiting_on_a_descriptor),
          cmocka_unit_test(one_reader_and_one_writer_per_descriptor),
          cmocka_unit_test(a_reused_descriptor_number_is_a_new_file),
          cmocka_unit_test(bad_descriptors_get_clear_errors),
          cmocka_unit_test(write_all_waits_for_room_and_read_sees_the_end),
          cmocka_unit_test(accept_and_connect_over_loopback),
          cmocka_unit_test(allocation_and_descriptor_failures_are_reported),
          cmocka_unit_test(a_task_abandoned_while_waiting_leaves_nothing_behind))
