/* cli_test.h - what the chime command's tests share: running the real
 * binary (CHIME_BIN) with a bounded real-time wait, reading its log, and a
 * scratch directory per test. */
#ifndef CHIME_CLI_TEST_H
#define CHIME_CLI_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../select.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* A chime started in the background: its pid and the read end of its
 * stderr (the log), with everything read so far. */
struct proc {
  pid_t pid;
  int out, err;
  char *log;     /* stderr so far, NUL-terminated */
  size_t len;
  char *stdout_text;
  size_t out_len;
};

static double mono(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Starts CHIME_BIN with argv (after the program name) and env (NAME=VALUE
 * entries added to ours; NULL-terminated, may be NULL), its stderr (the
 * log) on err_fd, or when err_fd < 0 on a pipe read into p->log.  chime
 * starts with SIGPIPE at its default action, whatever ours is. */
static void start_err(struct proc *p, const char *const *args, const char *const *env, int err_fd) {
  const char *bin = getenv("CHIME_BIN");
  assert_non_null(bin);
  char *argv[64];
  int n = 0;
  argv[n++] = (char *)bin;
  for (; args[n - 1]; n++) argv[n] = (char *)args[n - 1];
  argv[n] = NULL;
  char *envp[512];
  int e = 0;
  for (char **v = environ; *v && e < 400; v++)
    if (strncmp(*v, "CHIME_CLOCK=", 12) != 0) envp[e++] = *v;
  for (; env && *env; env++) envp[e++] = (char *)*env;
  envp[e] = NULL;
  int o[2], er[2] = {-1, err_fd};
  assert_int_equal(pipe2(o, O_CLOEXEC), 0);
  if (err_fd < 0) assert_int_equal(pipe2(er, O_CLOEXEC), 0);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, o[1], 1);
  posix_spawn_file_actions_adddup2(&fa, er[1], 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t dfl;
  sigemptyset(&dfl);
  sigaddset(&dfl, SIGPIPE);
  posix_spawnattr_setsigdefault(&attr, &dfl);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF);
  memset(p, 0, sizeof *p);
  assert_int_equal(posix_spawn(&p->pid, bin, &fa, &attr, argv, envp), 0);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  close(o[1]);
  if (err_fd < 0) close(er[1]);
  p->out = o[0], p->err = er[0];
  fcntl(p->out, F_SETFL, O_NONBLOCK);
  if (p->err >= 0) fcntl(p->err, F_SETFL, O_NONBLOCK);
  p->log = calloc(1, 1), p->stdout_text = calloc(1, 1);
}

static void start(struct proc *p, const char *const *args, const char *const *env) { start_err(p, args, env, -1); }

/* Reads what is there (waiting up to `wait` seconds for something). */
static void pump(struct proc *p, double wait) {
  struct pollfd fds[2] = {{p->out, POLLIN, 0}, {p->err, POLLIN, 0}};
  poll(fds, 2, (int)(wait * 1000));
  for (int i = 0; i < 2; i++) {
    int fd = i ? p->err : p->out;
    char **buf = i ? &p->log : &p->stdout_text;
    size_t *len = i ? &p->len : &p->out_len;
    char chunk[65536];
    ssize_t n;
    while (fd >= 0 && (n = read(fd, chunk, sizeof chunk)) > 0) {
      *buf = realloc(*buf, *len + (size_t)n + 1);
      memcpy(*buf + *len, chunk, (size_t)n);
      *len += (size_t)n;
      (*buf)[*len] = '\0';
    }
  }
}

/* Waits (at most `limit` real seconds) until the log holds `text` at or
 * after byte `from`. */
static bool wait_log_from(struct proc *p, size_t from, const char *text, double limit) {
  double end = mono() + limit;
  while (!strstr(p->log + from, text)) {
    if (mono() > end) return false;
    pump(p, 0.05);
  }
  return true;
}

/* Waits (at most `limit` real seconds) until the log holds `text`. */
static bool wait_log(struct proc *p, const char *text, double limit) { return wait_log_from(p, 0, text, limit); }

/* Waits (at most `limit` real seconds) for the exit; returns the exit code,
 * or -1 after killing a chime that did not exit in time. */
static int finish(struct proc *p, double limit) {
  double end = mono() + limit;
  int status, code = -1;
  for (;;) {
    pump(p, 0.02);
    pid_t w = waitpid(p->pid, &status, WNOHANG);
    if (w == p->pid) {
      code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      break;
    }
    if (mono() > end) {
      kill(p->pid, SIGKILL);
      waitpid(p->pid, &status, 0);
      break;
    }
  }
  pump(p, 0);
  close(p->out);
  if (p->err >= 0) close(p->err);
  return code;
}

static void proc_free(struct proc *p) {
  free(p->log);
  free(p->stdout_text);
}

/* Runs chime to its end (60 s at most): its exit code; p keeps its output. */
static int run(struct proc *p, const char *const *args, const char *const *env) {
  start(p, args, env);
  return finish(p, 60);
}

/* Whether the process group is gone within `limit` seconds: killed
 * processes that were reparented to init stay (as zombies) until init
 * reaps them, which takes it a moment. */
static bool group_gone(pid_t pgid, double limit) {
  double end = mono() + limit;
  while (kill(-pgid, 0) == 0) {
    if (mono() > end) return false;
    usleep(10000);
  }
  return true;
}

/* Whether every line of s holds text. */
static bool each_line_has(const char *s, const char *text) {
  for (const char *line = s, *nl; *line; line = nl + 1) {
    nl = strchr(line, '\n');
    if (!nl) nl = line + strlen(line) - 1;
    const char *hit = strstr(line, text);
    if (!hit || hit > nl) {
      print_error("a line without %s: %.*s\n", text, (int)(nl - line), line);
      return false;
    }
  }
  return true;
}

/* How many times text occurs in s. */
static int count(const char *s, const char *text) {
  int n = 0;
  for (const char *q = s; (q = strstr(q, text)) != NULL; q += strlen(text)) n++;
  return n;
}

/* A fresh scratch directory for the test; its path in dir. */
static void scratch(char *dir, size_t size) {
  snprintf(dir, size, "/tmp/chime-cli-test-XXXXXX");
  assert_non_null(mkdtemp(dir));
}

/* A scratch directory (64 bytes), with the paths of a history database
 * and a config file in it (128 bytes each). */
static void paths(char *dir, char *db, char *conf) {
  scratch(dir, 64);
  snprintf(db, 128, "%s/h.db", dir);
  snprintf(conf, 128, "%s/c.conf", dir);
}

static void write_file(const char *path, const char *text, mode_t mode) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
  chmod(path, mode);
}

#define VIRTUAL ((const char *const[]){"CHIME_CLOCK=virtual", NULL})

#endif
