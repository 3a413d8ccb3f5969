/* test_process.c - child processes: spawning, output, exit, termination,
 * bad programs, and no zombie left behind.  Real programs, on the real
 * clock, with generous deadlines. */
#include "test.h"
#include "procstat.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/resource.h>
#include <sys/wait.h>

#define LONG_WAIT CHIME_SEC(30) /* far more than any of these children takes */

static chime_ns soon(void) { return chime_now() + LONG_WAIT; }

/* No child of this process is left, running or zombie. */
static void assert_no_children(void) {
  errno = 0;
  assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
  assert_int_equal(errno, ECHILD);
}

/* The entries of /proc/self/fd; with `on`, only the descriptors open on
 * that path. */
static int open_fds(const char *on) {
  int n = 0;
  DIR *d = opendir("/proc/self/fd");
  assert_non_null(d);
  for (struct dirent *e; (e = readdir(d));) {
    char link[300], target[64];
    snprintf(link, sizeof link, "/proc/self/fd/%s", e->d_name);
    ssize_t len = on ? readlink(link, target, sizeof target - 1) : 0;
    if (!on || (len > 0 && (target[len] = 0, strcmp(target, on) == 0))) n++;
  }
  closedir(d);
  return n;
}

/* A process that is gone, or a zombie (its parent, now init, may not
 * reap it at once). */
static bool dead(pid_t pid) {
  char state = procstat_state(pid);
  return state == 0 || state == 'Z';
}

/* Reads a child's pipe to its end (at most cap - 1 bytes kept). */
static size_t read_all(int fd, char *buf, size_t cap) {
  size_t len = 0;
  for (;;) {
    char chunk[256];
    int n = chime_read(fd, chunk, sizeof chunk, soon());
    assert_true(n >= 0);
    if (n == 0) break;
    size_t keep = (size_t)n < cap - 1 - len ? (size_t)n : cap - 1 - len;
    memcpy(buf + len, chunk, keep);
    len += keep;
  }
  buf[len] = '\0';
  return len;
}

/* ---- output, input, environment ------------------------------------------------- */

static int output_main(void *arg) {
  (void)arg;
  const char *argv[] = {"sh", "-c", "echo \"out:$GREETING\"; echo err >&2; cat; exit 3", NULL};
  const char *envp[] = {"GREETING=hello", "PATH=/usr/bin:/bin", NULL};
  chime_proc_opts o = {.envp = envp, .cwd = "/"};
  o.in.mode = o.out.mode = o.err.mode = CHIME_STDIO_PIPE;
  chime_proc *p;
  assert_int_equal(chime_proc_spawn(argv, &o, &p), 0);
  assert_true(chime_proc_pid(p) > 0);
  int in = chime_proc_fd(p, 0);
  assert_true(in >= 0);
  assert_int_equal(chime_write_all(in, "piped\n", 6, soon(), NULL), 0);
  assert_int_equal(close(in), 0); /* the child's cat sees the end... */
  char out[128], err[128];
  read_all(chime_proc_fd(p, 1), out, sizeof out);
  read_all(chime_proc_fd(p, 2), err, sizeof err);
  assert_string_equal(out, "out:hello\npiped\n");
  assert_string_equal(err, "err\n");
  int status;
  assert_int_equal(chime_proc_wait(p, soon(), &status), 0);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 3);
  assert_int_equal(chime_proc_signal(p, SIGTERM), -ESRCH); /* gone */
  chime_proc_free(p);
  return 0;
}

static void a_child_reads_and_writes_pipes_and_gets_its_environment(void **state) {
  (void)state;
  assert_int_equal(run_real(output_main, NULL), 0);
  assert_no_children();
}

static int file_main(void *arg) {
  const char *path = arg;
  const char *argv[] = {"/bin/sh", "-c", "pwd; echo second", NULL};
  chime_proc_opts o = {.cwd = "/tmp"};
  o.in.mode = CHIME_STDIO_NULL;
  o.out = (chime_stdio){.mode = CHIME_STDIO_FILE, .path = path};
  chime_proc *p;
  assert_int_equal(chime_proc_spawn(argv, &o, &p), 0);
  assert_int_equal(chime_proc_fd(p, 1), -ENOENT); /* not a pipe */
  int status;
  assert_int_equal(chime_proc_wait(p, soon(), &status), 0);
  assert_int_equal(status, 0);
  chime_proc_free(p);
  o.out.append = true;
  assert_int_equal(chime_proc_spawn(argv, &o, &p), 0);
  assert_int_equal(chime_proc_wait(p, soon(), &status), 0);
  chime_proc_free(p);
  return 0;
}

static void output_goes_to_a_file_truncated_or_appended(void **state) {
  (void)state;
  char path[] = "/tmp/chime-test-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, "old contents\n", 13), 13);
  close(fd);
  assert_int_equal(run_real(file_main, path), 0);
  FILE *f = fopen(path, "r");
  char buf[128] = {0};
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  unlink(path);
  buf[n] = '\0';
  assert_string_equal(buf, "/tmp\nsecond\n/tmp\nsecond\n");
  assert_no_children();
}

/* ---- bad programs and bad input --------------------------------------------------------- */

static int bad_main(void *arg) {
  const char *noexec = arg;
  chime_proc *p = NULL;
  const char *missing[] = {"chime-no-such-program", NULL}, *missing_path[] = {"/nonexistent/program", NULL};
  const char *not_exec[] = {noexec, NULL}, *dir[] = {"/tmp", NULL}, *empty[] = {"", NULL};
  const char *ok[] = {"true", NULL};
  assert_int_equal(chime_proc_spawn(missing, NULL, &p), -ENOENT);
  assert_int_equal(chime_proc_spawn(missing_path, NULL, &p), -ENOENT);
  assert_int_equal(chime_proc_spawn(not_exec, NULL, &p), -EACCES);
  assert_int_equal(chime_proc_spawn(dir, NULL, &p), -EACCES); /* exec's own error, from the child */
  assert_int_equal(chime_proc_spawn(empty, NULL, &p), -EINVAL);
  assert_int_equal(chime_proc_spawn(NULL, NULL, &p), -EINVAL);
  assert_int_equal(chime_proc_spawn(ok, NULL, NULL), -EINVAL);
  chime_proc_opts o = {.cwd = "/nonexistent-dir"};
  assert_int_equal(chime_proc_spawn(ok, &o, &p), -ENOENT); /* chdir's error, from the child */
  o = (chime_proc_opts){.out = {.mode = CHIME_STDIO_FILE}};
  assert_int_equal(chime_proc_spawn(ok, &o, &p), -EINVAL); /* a file without a path */
  o = (chime_proc_opts){.out = {.mode = CHIME_STDIO_FILE, .path = "/nonexistent-dir/out"}};
  assert_int_equal(chime_proc_spawn(ok, &o, &p), -ENOENT);
  o = (chime_proc_opts){.out = {.mode = CHIME_STDIO_FD, .fd = 987}};
  assert_int_equal(chime_proc_spawn(ok, &o, &p), -EBADF);
  o = (chime_proc_opts){.out = {.mode = (chime_stdio_mode)42}};
  assert_int_equal(chime_proc_spawn(ok, &o, &p), -EINVAL);
  assert_null(p);
  assert_int_equal(chime_proc_wait(NULL, CHIME_NEVER, NULL), -EINVAL);
  assert_int_equal(chime_proc_signal(NULL, SIGTERM), -EINVAL);
  assert_int_equal(chime_proc_pid(NULL), -EINVAL);
  assert_int_equal(chime_proc_fd(NULL, 1), -EINVAL);
  chime_proc_free(NULL);
  /* the loop goes on working */
  assert_int_equal(chime_proc_spawn(ok, NULL, &p), 0);
  assert_int_equal(chime_proc_fd(p, 3), -EINVAL);
  assert_int_equal(chime_proc_signal(p, 99), -EINVAL);
  assert_int_equal(chime_proc_wait(p, -1, NULL), -EINVAL);
  int status = -1;
  assert_int_equal(chime_proc_wait(p, soon(), &status), 0);
  assert_int_equal(status, 0);
  chime_proc_free(p);
  return 0;
}

static void bad_programs_and_options_get_clear_errors(void **state) {
  (void)state;
  char path[] = "/tmp/chime-test-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  close(fd); /* mode 0600: not executable */
  int fds = open_fds(NULL);
  assert_int_equal(run_real(bad_main, path), 0);
  unlink(path);
  assert_int_equal(open_fds(NULL), fds);
  assert_no_children();
  const char *ok[] = {"true", NULL};
  chime_proc *p;
  assert_int_equal(chime_proc_spawn(ok, NULL, &p), -EPERM); /* no loop */
}

/* ---- waiting, terminating, cancelling --------------------------------------------------- */

static int terminate_main(void *arg) {
  (void)arg;
  /* a child that ignores SIGTERM, with a grandchild that does too */
  const char *argv[] = {"sh", "-c", "trap '' TERM; sleep 1000 & echo $!; wait", NULL};
  chime_proc_opts o = {.out = {.mode = CHIME_STDIO_PIPE}};
  chime_proc *p;
  assert_int_equal(chime_proc_spawn(argv, &o, &p), 0);
  char line[32];
  size_t len = 0;
  while (!memchr(line, '\n', len)) { /* the grandchild's pid */
    int n = chime_read(chime_proc_fd(p, 1), line + len, sizeof line - 1 - len, soon());
    assert_true(n > 0);
    len += (size_t)n;
  }
  line[len] = '\0';
  pid_t grandchild = atoi(line);
  assert_true(grandchild > 0);
  int status;
  chime_ns t0 = chime_now();
  assert_int_equal(chime_proc_wait(p, t0 + CHIME_MS(50), &status), -ETIMEDOUT);
  assert_true(chime_now() - t0 >= CHIME_MS(50));
  assert_int_equal(chime_proc_terminate(p, CHIME_MS(100), &status), 0);
  assert_true(WIFSIGNALED(status));
  assert_int_equal(WTERMSIG(status), SIGKILL); /* SIGTERM was ignored */
  chime_proc_free(p);
  /* the grandchild got the group's SIGKILL too */
  chime_ns until = real_ns() + LONG_WAIT;
  while (!dead(grandchild) && real_ns() < until) assert_int_equal(chime_sleep(CHIME_MS(5)), 0);
  assert_true(dead(grandchild));

  /* a child that obeys SIGTERM ends with it */
  const char *sleeper[] = {"sleep", "1000", NULL};
  assert_int_equal(chime_proc_spawn(sleeper, NULL, &p), 0);
  assert_int_equal(chime_proc_terminate(p, LONG_WAIT, &status), 0);
  assert_true(WIFSIGNALED(status));
  assert_int_equal(WTERMSIG(status), SIGTERM);
  chime_proc_free(p);
  return 0;
}

static void terminate_kills_a_child_that_ignores_sigterm_and_its_group(void **state) {
  (void)state;
  assert_int_equal(run_real(terminate_main, NULL), 0);
  assert_no_children();
}

struct waiting {
  chime_proc *p;
  int rc;
};

static int wait_task(void *arg) {
  struct waiting *w = arg;
  w->rc = chime_proc_wait(w->p, CHIME_NEVER, NULL);
  return 0;
}

static int cancel_main(void *arg) {
  (void)arg;
  const char *sleeper[] = {"sleep", "1000", NULL};
  struct waiting w = {NULL, 1};
  assert_int_equal(chime_proc_spawn(sleeper, NULL, &w.p), 0);
  chime_task t;
  assert_int_equal(chime_spawn(wait_task, &w, &t), 0);
  assert_int_equal(chime_yield(), 0);
  assert_int_equal(chime_proc_wait(w.p, CHIME_NEVER, NULL), -EINVAL); /* one waiter at a time */
  chime_proc_free(w.p);                                               /* refused while waited for */
  assert_int_equal(chime_proc_signal(w.p, 0), 0);
  assert_int_equal(chime_cancel(t), 0);
  assert_int_equal(chime_join(t, NULL), 0);
  assert_int_equal(w.rc, -ECANCELED);
  chime_proc_free(w.p); /* still running: killed and reaped */
  /* a child left to the loop is killed and reaped when the loop is freed */
  assert_int_equal(chime_proc_spawn(sleeper, NULL, &w.p), 0);
  return 0;
}

static void a_cancelled_wait_and_a_freed_child_leave_no_zombie(void **state) {
  (void)state;
  assert_int_equal(run_real(cancel_main, NULL), 0);
  assert_no_children();
}

static int virtual_main(void *arg) {
  (void)arg;
  const char *argv[] = {"sleep", "0.5", NULL};
  chime_proc *p;
  chime_ns t0 = chime_now(), r0 = real_ns();
  assert_int_equal(chime_proc_spawn(argv, NULL, &p), 0);
  int status;
  /* the deadline is an hour away: a clock that jumped would time out */
  assert_int_equal(chime_proc_wait(p, t0 + CHIME_HOUR(1), &status), 0);
  assert_int_equal(status, 0);
  chime_ns spent = chime_now() - t0, real = real_ns() - r0;
  assert_true(spent > 0);                     /* it followed real time */
  assert_true(spent <= real + CHIME_MS(1));   /* and no faster */
  chime_proc_free(p);
  return 0;
}

static void a_virtual_clock_keeps_real_time_while_a_child_runs(void **state) {
  (void)state;
  assert_int_equal(run_virtual(virtual_main, NULL), 0);
  assert_no_children();
}

/* ---- a storm --------------------------------------------------------------------- */

static int storm_one(void *arg) {
  int i = (int)(intptr_t)arg;
  const char *quick[] = {"true", NULL}, *slow[] = {"sleep", "1000", NULL};
  chime_proc *p;
  int rc = chime_proc_spawn(i % 2 ? slow : quick, NULL, &p);
  if (rc) return rc;
  int status;
  switch (i % 4) {
  case 0: /* quick, waited for */
  case 2: rc = chime_proc_wait(p, soon(), &status); break;
  case 1: /* slow, timed out then freed */
    rc = chime_proc_wait(p, chime_now() + CHIME_MS(5), &status) == -ETIMEDOUT ? 0 : -EIO;
    break;
  case 3: /* slow, cancelled (by the main task) while waiting */
    rc = chime_proc_wait(p, CHIME_NEVER, &status) == -ECANCELED ? 0 : -EIO;
    break;
  }
  chime_proc_free(p);
  return rc;
}

static int storm_main(void *arg) {
  (void)arg;
  enum { N = 120 };
  chime_task t[N];
  for (int i = 0; i < N; i++)
    assert_int_equal(chime_spawn(storm_one, (void *)(intptr_t)i, &t[i]), 0);
  assert_int_equal(chime_sleep(CHIME_MS(20)), 0);
  for (int i = 3; i < N; i += 4)
    assert_int_equal(chime_cancel(t[i]), 0);
  for (int i = 0; i < N; i++) {
    int rc;
    assert_int_equal(chime_join(t[i], &rc), 0);
    assert_int_equal(rc, 0);
  }
  return 0;
}

static void a_storm_of_spawns_timeouts_and_cancels_leaves_no_zombie(void **state) {
  (void)state;
  int fds = open_fds(NULL);
  assert_int_equal(run_real(storm_main, NULL), 0);
  assert_no_children();
  assert_int_equal(open_fds(NULL), fds);
}

static void without_pidfds_sigchld_tells_of_exits(void **state) {
  (void)state;
  chime__test_no_pidfd(true);
  int fds = open_fds(NULL);
  assert_int_equal(run_real(storm_main, NULL), 0);
  assert_int_equal(run_real(terminate_main, NULL), 0);
  assert_no_children();
  assert_int_equal(open_fds(NULL), fds);
  struct sigaction now;
  sigaction(SIGCHLD, NULL, &now);
  assert_true(now.sa_handler == SIG_DFL); /* given back with the loop */
  chime__test_no_pidfd(false);
}

/* ---- endless output, faults -------------------------------------------------------- */

static int flood_main(void *arg) {
  (void)arg;
  const char *argv[] = {"yes", "chime", NULL};
  chime_proc_opts o = {.out = {.mode = CHIME_STDIO_PIPE}};
  chime_proc *p;
  assert_int_equal(chime_proc_spawn(argv, &o, &p), 0);
  static char chunk[64 * 1024];
  size_t total = 0;
  assert_true(chime_wait_fd(chime_proc_fd(p, 1), CHIME_READABLE, soon()) > 0);
  long allocs = chime__test_live_allocs(); /* the descriptor's record made */
  while (total < (size_t)16 << 20) { /* 16 MiB through a 64 KiB buffer */
    int n = chime_read(chime_proc_fd(p, 1), chunk, sizeof chunk, soon());
    assert_true(n > 0);
    total += (size_t)n;
  }
  assert_int_equal(chime__test_live_allocs(), allocs); /* the library buffered nothing */
  assert_non_null(memmem(chunk, sizeof chunk, "chime\n", 6));
  int status;
  assert_int_equal(chime_proc_terminate(p, LONG_WAIT, &status), 0);
  assert_true(WIFSIGNALED(status));
  chime_proc_free(p);
  return 0;
}

static void a_child_writing_without_end_is_read_in_bounded_chunks(void **state) {
  (void)state;
  assert_int_equal(run_real(flood_main, NULL), 0);
  assert_no_children();
}

static int fault_main(void *arg) {
  (void)arg;
  const char *argv[] = {"true", NULL};
  chime_proc_opts o = {.out = {.mode = CHIME_STDIO_PIPE}, .err = {.mode = CHIME_STDIO_NULL}};
  /* twice: the first time /dev/null is opened, the second it is the loop's
   * already (and every later failure point is tried in order) */
  for (int pass = 0; pass < 2; pass++)
    for (long n = 0;; n++) {
      long before = chime__test_failures();
      chime_proc *p = NULL;
      chime__test_fail_after(n, false);
      int rc = chime_proc_spawn(argv, &o, &p);
      chime__test_fail_after(-1, false);
      bool failed = chime__test_failures() != before;
      if (rc == 0) {
        int status = -1;
        assert_int_equal(chime_proc_wait(p, soon(), &status), 0); /* a failed pidfd: SIGCHLD tells */
        assert_int_equal(status, 0);
        chime_proc_free(p);
      } else {
        assert_true(failed);
        assert_true(rc == -EMFILE || rc == -ENOMEM || rc == -EAGAIN);
        assert_null(p);
      }
      if (!failed) break;
    }
  return 0;
}

static int null_main(void *arg) {
  int before = *(int *)arg;
  const char *argv[] = {"/bin/sh", "-c", "readlink /proc/self/fd/0 /proc/self/fd/2", NULL};
  for (int i = 0; i < 3; i++) {
    int p3[2];
    assert_int_equal(pipe2(p3, O_CLOEXEC | O_NONBLOCK), 0);
    chime_proc_opts o = {.in = {.mode = CHIME_STDIO_NULL},
                         .err = {.mode = CHIME_STDIO_NULL},
                         .out = {.mode = CHIME_STDIO_FD, .fd = p3[1]}};
    chime_proc *p;
    assert_int_equal(chime_proc_spawn(argv, &o, &p), 0);
    close(p3[1]);
    char buf[128];
    read_all(p3[0], buf, sizeof buf);
    close(p3[0]);
    assert_string_equal(buf, "/dev/null\n/dev/null\n"); /* stdin and stderr */
    int status = -1;
    assert_int_equal(chime_proc_wait(p, soon(), &status), 0);
    assert_int_equal(status, 0);
    chime_proc_free(p);
    assert_int_equal(open_fds("/dev/null"), before + 1); /* the loop's one, opened once */
  }
  return 0;
}

/* A child's /dev/null is the loop's, opened at the first spawn that wants
 * it and closed with the loop; not one open and close per spawn. */
static void dev_null_is_opened_once_per_loop(void **state) {
  (void)state;
  int before = open_fds("/dev/null");
  assert_int_equal(run_real(null_main, &before), 0);
  assert_int_equal(open_fds("/dev/null"), before);
  assert_no_children();
}

static void descriptor_and_fork_failures_are_reported(void **state) {
  (void)state;
  int fds = open_fds(NULL);
  assert_int_equal(run_real(fault_main, NULL), 0);
  assert_no_children();
  assert_int_equal(open_fds(NULL), fds);
}

/* ---- the parent's state: reapers, closed descriptors, groups, signals --------------- */

static int ignored_main(void *arg) {
  (void)arg;
  const char *argv[] = {"true", NULL};
  chime_proc *p;
  assert_int_equal(chime_proc_spawn(argv, NULL, &p), 0);
  int status = 1;
  /* the kernel reaped it (SIGCHLD ignored): gone, status unknown (without
   * pidfds the loop catches SIGCHLD itself, and reaps it: status 0) */
  assert_int_equal(chime_proc_wait(p, soon(), &status), 0);
  assert_true(status == -1 || status == 0);
  assert_int_equal(chime_proc_signal(p, SIGTERM), -ESRCH);
  chime_proc_free(p);
  return 0;
}

/* Runs fn on the real clock while the process ignores sig. */
static void run_ignoring(int sig, chime_fn fn) {
  struct sigaction ign, old;
  memset(&ign, 0, sizeof ign);
  ign.sa_handler = SIG_IGN;
  sigaction(sig, &ign, &old);
  int rc = run_real(fn, NULL);
  sigaction(sig, &old, NULL);
  assert_int_equal(rc, 0);
  assert_no_children();
}

static void a_child_reaped_by_the_kernel_still_counts_as_exited(void **state) {
  (void)state;
  run_ignoring(SIGCHLD, ignored_main);
}

/* In a process of its own, without descriptors 0 and 1 (no assertion: it
 * answers with its exit code). */
static int low_fds_main(void *arg) {
  (void)arg;
  const char *argv[] = {"echo", "through", NULL};
  chime_proc_opts o = {.out = {.mode = CHIME_STDIO_PIPE}};
  chime_proc *p;
  close(0);
  close(1);
  if (chime_proc_spawn(argv, &o, &p) != 0) return 1; /* its pipe took 0 (ours) and 1 (the child's) */
  if (chime_proc_fd(p, 1) != 0) return 2;
  char out[32] = {0};
  int n = chime_read(0, out, sizeof out - 1, soon());
  if (n != 8 || strcmp(out, "through\n") != 0) return 3;
  int status = -1;
  if (chime_proc_wait(p, soon(), &status) != 0 || status != 0) return 4;
  chime_proc_free(p);
  return 0;
}

static void a_parent_without_standard_descriptors_still_wires_the_child(void **state) {
  (void)state;
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) _exit(run_real(low_fds_main, NULL));
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  assert_no_children();
}

/* The child's process group, and whether it ignores SIGUSR1, as it says. */
static void child_report(chime_proc_opts *o, long *pgid, bool *ignores_usr1, pid_t *pid) {
  const char *argv[] = {"sh", "-c",
                        "cut -d' ' -f5 /proc/$$/stat; "
                        "grep SigIgn /proc/self/status | cut -f2 >&2",
                        NULL};
  int p[2];
  assert_int_equal(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
  o->out.mode = CHIME_STDIO_PIPE;
  o->err = (chime_stdio){.mode = CHIME_STDIO_FD, .fd = p[1]};
  chime_proc *c;
  assert_int_equal(chime_proc_spawn(argv, o, &c), 0);
  close(p[1]);
  *pid = chime_proc_pid(c);
  char out[64], err[64];
  read_all(chime_proc_fd(c, 1), out, sizeof out);
  read_all(p[0], err, sizeof err);
  close(p[0]);
  assert_int_equal(chime_proc_wait(c, soon(), NULL), 0);
  chime_proc_free(c);
  *pgid = atol(out);
  unsigned long long mask = strtoull(err, NULL, 16);
  *ignores_usr1 = (mask >> (SIGUSR1 - 1)) & 1;
}

static int group_main(void *arg) {
  (void)arg;
  long pgid;
  bool ign;
  pid_t pid;
  chime_proc_opts o = {0};
  child_report(&o, &pgid, &ign, &pid);
  assert_int_equal(pgid, pid); /* a group of its own */
  assert_true(ign);            /* SIGUSR1 stays ignored, as exec keeps it */
  o = (chime_proc_opts){.keep_group = true, .reset_signals = true};
  child_report(&o, &pgid, &ign, &pid);
  assert_int_equal(pgid, getpgrp()); /* the parent's group */
  assert_false(ign);                 /* every signal back to its default */
  return 0;
}

static void groups_descriptors_and_ignored_signals_are_as_asked(void **state) {
  (void)state;
  run_ignoring(SIGUSR1, group_main);
}

/* ---- ids ---------------------------------------------------------------------------------- */

/* What `sh -c CMD` prints, run with options o. */
static void output_of(const char *cmd, chime_proc_opts *o, char *out, size_t size) {
  const char *argv[] = {"sh", "-c", cmd, NULL};
  o->out.mode = CHIME_STDIO_PIPE;
  chime_proc *p;
  assert_int_equal(chime_proc_spawn(argv, o, &p), 0);
  read_all(chime_proc_fd(p, 1), out, size);
  assert_int_equal(chime_proc_wait(p, soon(), NULL), 0);
  chime_proc_free(p);
}

static int user_main(void *arg) {
  (void)arg;
  char out[64];
  chime_proc_opts o = {.as_user = true, .uid = 65534, .gid = 65534};
  output_of("id -u; id -G", &o, out, sizeof out);
  assert_string_equal(out, "65534\n65534\n"); /* no group of the parent's goes along */
  static const unsigned groups[] = {65534, 100};
  o = (chime_proc_opts){.as_user = true, .uid = 65534, .gid = 65534, .groups = groups, .ngroups = 2};
  output_of("id -G", &o, out, sizeof out);
  assert_string_equal(out, "65534 100\n");
  o = (chime_proc_opts){.groups = groups, .ngroups = 2}; /* groups without a user */
  const char *argv[] = {"true", NULL};
  chime_proc *p;
  assert_int_equal(chime_proc_spawn(argv, &o, &p), -EINVAL);
  return 0;
}

static int nice_main(void *arg) {
  (void)arg;
  char out[64], want[64];
  chime_proc_opts o = {0};
  errno = 0;
  int own = getpriority(PRIO_PROCESS, 0);
  assert_int_equal(errno, 0);
  output_of("nice", &o, out, sizeof out); /* the parent's, by default */
  snprintf(want, sizeof want, "%d\n", own);
  assert_string_equal(out, want);
  int higher = own < 19 ? own + 1 : 19; /* lowering one's priority needs no privilege */
  o = (chime_proc_opts){.set_nice = true, .nice = higher};
  output_of("nice", &o, out, sizeof out);
  snprintf(want, sizeof want, "%d\n", higher);
  assert_string_equal(out, want);
  const char *argv[] = {"true", NULL};
  chime_proc *p;
  o = (chime_proc_opts){.set_nice = true, .nice = 20};
  assert_int_equal(chime_proc_spawn(argv, &o, &p), -EINVAL);
  o = (chime_proc_opts){.set_nice = true, .nice = -21};
  assert_int_equal(chime_proc_spawn(argv, &o, &p), -EINVAL);
  if (own == -20) return 0;
  /* raising it needs a privilege (CAP_SYS_NICE, or RLIMIT_NICE): whether
   * this process has it, as a fork of it finds */
  pid_t f = fork();
  if (f == 0) _exit(setpriority(PRIO_PROCESS, 0, own - 1) == 0 ? 0 : 1);
  int status;
  assert_int_equal(waitpid(f, &status, 0), f);
  bool may = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  o = (chime_proc_opts){.set_nice = true, .nice = own - 1};
  if (!may) { /* refused in the child, and reported */
    assert_int_equal(chime_proc_spawn(argv, &o, &p), -EACCES);
    return 0;
  }
  output_of("nice", &o, out, sizeof out);
  snprintf(want, sizeof want, "%d\n", own - 1);
  assert_string_equal(out, want);
  return 0;
}

/* A child's nice value: its parent's, or the one asked for. */
static void a_child_runs_at_the_nice_value_asked(void **state) {
  (void)state;
  assert_int_equal(run_real(nice_main, NULL), 0);
  assert_no_children();
}

static void a_child_runs_as_another_user(void **state) {
  (void)state;
  if (geteuid() != 0) skip(); /* only root may */
  assert_int_equal(run_real(user_main, NULL), 0);
  assert_no_children();
}


/* ---- a child that must not outlive its parent ------------------------------------ */

static int orphan_main(void *arg) {
  int fd = *(const int *)arg;
  const char *argv[] = {"sleep", "60", NULL};
  chime_proc_opts o = {.die_with_parent = true};
  chime_proc *p;
  if (chime_proc_spawn(argv, &o, &p) != 0) _exit(2);
  int pid = chime_proc_pid(p);
  if (write(fd, &pid, sizeof pid) != (ssize_t)sizeof pid) _exit(3);
  _exit(0); /* gone without freeing its child (which would kill it): as when killed */
}

static void a_child_dies_with_its_parent(void **state) {
  (void)state;
  int p[2];
  assert_int_equal(pipe(p), 0);
  pid_t parent = fork();
  assert_true(parent >= 0);
  if (parent == 0) {
    close(p[0]);
    run_real(orphan_main, &p[1]);
    _exit(1);
  }
  close(p[1]);
  int pid = 0, status;
  assert_int_equal(read(p[0], &pid, sizeof pid), (ssize_t)sizeof pid);
  close(p[0]);
  assert_int_equal(waitpid(parent, &status, 0), parent);
  assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  double waited = 0;
  for (; !dead(pid) && waited < 5; waited += 0.01) usleep(10000);
  assert_true(dead(pid)); /* killed when its parent died, not after its 60 s */
  assert_no_children();
}

TEST_MAIN(cmocka_unit_test(a_child_reads_and_writes_pipes_and_gets_its_environment),
          cmocka_unit_test(output_goes_to_a_file_truncated_or_appended),
          cmocka_unit_test(bad_programs_and_options_get_clear_errors),
          cmocka_unit_test(terminate_kills_a_child_that_ignores_sigterm_and_its_group),
          cmocka_unit_test(a_cancelled_wait_and_a_freed_child_leave_no_zombie),
          cmocka_unit_test(a_virtual_clock_keeps_real_time_while_a_child_runs),
          cmocka_unit_test(a_storm_of_spawns_timeouts_and_cancels_leaves_no_zombie),
          cmocka_unit_test(without_pidfds_sigchld_tells_of_exits),
          cmocka_unit_test(a_child_writing_without_end_is_read_in_bounded_chunks),
          cmocka_unit_test(descriptor_and_fork_failures_are_reported),
          cmocka_unit_test(dev_null_is_opened_once_per_loop),
          cmocka_unit_test(a_child_reaped_by_the_kernel_still_counts_as_exited),
          cmocka_unit_test(a_parent_without_standard_descriptors_still_wires_the_child),
          cmocka_unit_test(groups_descriptors_and_ignored_signals_are_as_asked),
          cmocka_unit_test(a_child_runs_at_the_nice_value_asked),
          cmocka_unit_test(a_child_runs_as_another_user),
          cmocka_unit_test(a_child_dies_with_its_parent))
