/* process.c - child processes: spawn, await the exit, signal, terminate.
 *
 * Spawning forks and execs.  The parent resolves the program through PATH
 * first, so that the child, between fork and exec, only makes
 * async-signal-safe calls: it joins a new process group, sets up its
 * standard descriptors, directory and ids, resets its signal mask, and
 * execs.  If anything fails there it writes errno to a close-on-exec pipe
 * and exits: the parent reads the pipe (end of file means exec succeeded)
 * and returns that errno, so a missing or non-executable program is an
 * error of chime_proc_spawn, never a child that dies silently.
 *
 * The exit is awaited through a pidfd (Linux 5.3) watched by the loop;
 * without one, through SIGCHLD (signal.c), on which the loop polls its own
 * children with waitpid(WNOHANG).  The children of a loop are a module of
 * it: freeing the loop kills and reaps them.  A child is reaped as soon as it exits,
 * and chime_proc_free kills (SIGKILL to its group) and reaps a child still
 * running, as does freeing the loop: no zombie is ever left.
 */
#include "awaits.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <grp.h>
#include <limits.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

extern char **environ;

_Static_assert(sizeof(gid_t) == sizeof(unsigned), "chime_proc_opts.groups is handed to setgroups as it is");

#ifdef CHIME_TESTING
#include "testing.h"
static bool no_pidfd;
void chime__test_no_pidfd(bool on) { no_pidfd = on; }
#define NO_PIDFD() no_pidfd
#else
#define NO_PIDFD() 0
#endif

struct chime_proc {
  chime_loop *loop;
  pid_t pid;
  bool own_group;  /* the child leads its own process group */
  bool exited;     /* reaped; status is valid */
  int status;      /* its wait status */
  int fds[3];      /* the parent's ends of the pipes, or -1 */
  struct chime__io io; /* the pidfd (io.fd -1 without one) */
  struct chime__task *waiter;
  chime_proc *prev, *next; /* the loop's children */
};

/* The module's state in a loop. */
struct procs {
  chime_proc *head; /* children not yet freed */
};

static void procs_release(chime_loop *loop, void *state);
static const struct chime__module procs_module = {.size = sizeof(struct procs), .release = procs_release};

/* ---- reaping ---------------------------------------------------------------- */

static void exited(chime_loop *loop, chime_proc *p, int status) {
  p->exited = true;
  p->status = status;
  loop->outside_busy--;
  if (p->io.fd >= 0) {
    chime__io_set(loop, &p->io, 0);
    close(p->io.fd);
    p->io.fd = -1;
  }
  if (p->waiter) chime__task_wake(loop, p->waiter, 0);
}

/* Reaps p if it has exited.  A child someone else reaped (SIGCHLD
 * ignored, a waitpid(-1) elsewhere) is gone all the same: status -1. */
static void try_reap(chime_loop *loop, chime_proc *p) {
  int status = -1;
  if (p->exited) return;
  pid_t r = waitpid(p->pid, &status, WNOHANG);
  if (r == p->pid || (r < 0 && errno == ECHILD)) exited(loop, p, r == p->pid ? status : -1);
}

static void pidfd_ready(chime_loop *loop, struct chime__io *io, uint32_t revents) {
  (void)revents;
  try_reap(loop, CHIME__CONTAINER(io, chime_proc, io));
}

/* SIGCHLD, without pidfds: look at every child of the loop. */
static void procs_poll(chime_loop *loop) {
  struct procs *ps = chime__module(loop, &procs_module);
  for (chime_proc *p = ps->head, *next; p; p = next) {
    next = p->next;
    try_reap(loop, p);
  }
}

/* Sends sig to the child, or to its whole group when it has its own. */
static int signal_child(const chime_proc *p, int sig) { return kill(p->own_group ? -p->pid : p->pid, sig); }

/* Kills and reaps a child still running; blocks only as long as the kernel
 * takes to end a killed process. */
static void kill_and_reap(chime_loop *loop, chime_proc *p) {
  try_reap(loop, p); /* never a signal to a pid that may have been reused */
  if (p->exited) return;
  signal_child(p, SIGKILL);
  int status = -1;
  pid_t r;
  while ((r = waitpid(p->pid, &status, 0)) < 0 && errno == EINTR) {
  }
  exited(loop, p, r == p->pid ? status : -1);
}

/* ---- spawning ------------------------------------------------------------------ */

/* The program to exec: argv[0] itself if it has a '/', else the first
 * executable file of that name in PATH.  Returns 0 or -ENOENT / -EACCES. */
static int resolve(const char *name, char *out, size_t size) {
  if (strchr(name, '/')) {
    if (strlen(name) >= size) return -ENAMETOOLONG;
    strcpy(out, name);
    return access(out, X_OK) == 0 ? 0 : -errno;
  }
  const char *path = getenv("PATH");
  if (!path) path = "/usr/local/bin:/usr/bin:/bin";
  int err = -ENOENT;
  for (const char *p = path;; p++) {
    const char *end = strchr(p, ':');
    size_t dir = end ? (size_t)(end - p) : strlen(p);
    int n = snprintf(out, size, "%.*s/%s", (int)dir, dir ? p : ".", name);
    if (n > 0 && (size_t)n < size) {
      if (access(out, X_OK) == 0) {
        struct stat st;
        if (stat(out, &st) == 0 && S_ISREG(st.st_mode)) return 0;
      } else if (errno == EACCES) {
        err = -EACCES; /* found, not executable: say so if nothing better comes */
      }
    }
    if (!end) break;
    p = end;
  }
  return err;
}

/* The child's end of one standard descriptor, opened in the parent (so that
 * a file that cannot be opened is the parent's error).  *parent gets the
 * parent's end of a pipe.  -1: inherit. */
static int child_end(const chime_stdio *s, int which, int *child, int *parent) {
  *child = *parent = -1;
  int p[2];
  switch (s->mode) {
  case CHIME_STDIO_INHERIT: return 0;
  case CHIME_STDIO_NULL:
  case CHIME_STDIO_FILE: {
    const char *path = s->mode == CHIME_STDIO_NULL ? "/dev/null" : s->path;
    if (!path) return -EINVAL;
    int flags = which == 0 ? O_RDONLY : O_WRONLY | O_CREAT | (s->append ? O_APPEND : O_TRUNC);
    if (CHIME__FAULT()) return -EMFILE;
    *child = open(path, flags | O_CLOEXEC, 0644);
    return *child < 0 ? -errno : 0;
  }
  case CHIME_STDIO_PIPE:
    if (CHIME__FAULT()) return -EMFILE;
    if (pipe2(p, O_CLOEXEC) != 0) return -errno;
    *child = p[which == 0 ? 0 : 1];
    *parent = p[which == 0 ? 1 : 0];
    fcntl(*parent, F_SETFL, fcntl(*parent, F_GETFL) | O_NONBLOCK);
    return 0;
  case CHIME_STDIO_FD:
    if (s->fd < 0 || fcntl(s->fd, F_GETFD) < 0) return -EBADF;
    if (CHIME__FAULT()) return -EMFILE;
    *child = fcntl(s->fd, F_DUPFD_CLOEXEC, 3);
    return *child < 0 ? -errno : 0;
  }
  return -EINVAL;
}

/* A descriptor moved above the standard ones (the parent may have had 0, 1
 * or 2 closed, so that a pipe took one of them). */
static int above_std(int fd) { return fd >= 0 && fd < 3 ? fcntl(fd, F_DUPFD_CLOEXEC, 3) : fd; }

/* Between fork and exec: async-signal-safe calls only. */
static void child(const char *prog, char *const argv[], char *const envp[], const chime_proc_opts *o, const int in[3],
                  int err_fd, pid_t parent) {
  int err = 0, ends[3];
  err_fd = above_std(err_fd);
  for (int i = 0; i < 3; i++)
    if ((ends[i] = above_std(in[i])) < 0 && in[i] >= 0) err = errno;
  /* Handlers do not survive exec anyway; ours must not run before it.
   * Ignored signals stay ignored (as exec keeps them), unless asked. */
  struct sigaction dfl, old;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < CHIME__NSIG; sig++)
    if (sigaction(sig, NULL, &old) == 0 && old.sa_handler != SIG_DFL && (old.sa_handler != SIG_IGN || o->reset_signals))
      sigaction(sig, &dfl, NULL);
  if (!err && !o->keep_group && setpgid(0, 0) != 0) err = errno;
  for (int i = 0; i < 3 && !err; i++)
    if (ends[i] >= 0 && dup2(ends[i], i) < 0) err = errno; /* dup2 clears close-on-exec */
  if (!err && o->cwd && chdir(o->cwd) != 0) err = errno;
  if (!err && o->as_user) {
    gid_t g = (gid_t)o->gid;
    const gid_t *list = o->ngroups ? (const gid_t *)o->groups : &g;
    if (setgroups(o->ngroups ? o->ngroups : 1, list) != 0 || setgid(g) != 0 || setuid((uid_t)o->uid) != 0)
      err = errno;
  }
#ifdef __linux__
  /* after the user (a change of it clears the setting); a parent already
   * gone before it was set is as though it died after */
  if (!err && o->die_with_parent && prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) err = errno;
  if (!err && o->die_with_parent && getppid() != parent) err = ESRCH;
#else
  (void)parent;
#endif
  if (!err) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execve(prog, argv, envp);
    err = errno;
  }
  ssize_t w = write(err_fd, &err, sizeof err);
  (void)w;
  _exit(127);
}

int chime_proc_spawn(const char *const argv[], const chime_proc_opts *opts, chime_proc **out) {
  chime_loop *loop = chime__tls_loop;
  static const chime_proc_opts defaults;
  const chime_proc_opts *o = opts ? opts : &defaults;
  if (!loop) return -EPERM;
  if (!argv || !argv[0] || !argv[0][0] || !out) return -EINVAL;
  if (o->ngroups && (!o->as_user || !o->groups || o->ngroups > NGROUPS_MAX)) return -EINVAL;
#ifndef __linux__
  if (o->die_with_parent) return -ENOTSUP;
#endif
  char prog[4096];
  int rc = resolve(argv[0], prog, sizeof prog);
  if (rc) return rc;
  struct procs *ps;
  rc = chime__module_attach(loop, &procs_module, (void **)&ps);
  if (rc) return rc;
  chime_proc *p = chime__calloc(1, sizeof *p);
  if (!p) return -ENOMEM;
  int ends[3] = {-1, -1, -1}, err_pipe[2] = {-1, -1};
  p->fds[0] = p->fds[1] = p->fds[2] = p->io.fd = -1;
  const chime_stdio *stdio[3] = {&o->in, &o->out, &o->err};
  for (int i = 0; i < 3 && rc == 0; i++) rc = child_end(stdio[i], i, &ends[i], &p->fds[i]);
  if (rc == 0) rc = CHIME__FAULT() ? -EMFILE : pipe2(err_pipe, O_CLOEXEC) == 0 ? 0 : -errno;
  pid_t pid = -1;
  if (rc == 0) {
    /* Signals blocked across fork: no handler of ours runs in the child
     * before it resets them. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t self = getpid();
    pid = CHIME__FAULT() ? (errno = EAGAIN, -1) : fork();
    if (pid == 0)
      child(prog, (char *const *)argv, o->envp ? (char *const *)o->envp : environ, o, ends, err_pipe[1], self);
    int err = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (pid < 0) rc = -err;
  }
  for (int i = 0; i < 3; i++)
    if (ends[i] >= 0) close(ends[i]);
  if (err_pipe[1] >= 0) close(err_pipe[1]);
  if (rc == 0) {
    if (!o->keep_group) setpgid(pid, pid); /* also here: no race with a signal to the group */
    int err = 0;
    ssize_t n;
    while ((n = read(err_pipe[0], &err, sizeof err)) < 0 && errno == EINTR) {
    }
    if (n > 0) { /* the child could not exec */
      waitpid(pid, NULL, 0);
      rc = -err;
    }
  }
  if (err_pipe[0] >= 0) close(err_pipe[0]);
  if (rc) {
    for (int i = 0; i < 3; i++)
      if (p->fds[i] >= 0) close(p->fds[i]);
    chime__free(p);
    return rc;
  }
  p->loop = loop;
  p->pid = pid;
  p->own_group = !o->keep_group;
  p->io.cb = pidfd_ready;
  loop->outside_busy++; /* until reaped */
#ifdef SYS_pidfd_open
  p->io.fd = NO_PIDFD() || CHIME__FAULT() ? -1 : (int)syscall(SYS_pidfd_open, pid, 0);
#endif
  if (p->io.fd >= 0 && chime__io_set(loop, &p->io, POLLIN) != 0) {
    close(p->io.fd);
    p->io.fd = -1;
  }
  if (p->io.fd < 0 && (rc = chime__signals_on_sigchld(loop, procs_poll)) != 0) { /* no pidfd: SIGCHLD tells */
    kill_and_reap(loop, p);
    for (int i = 0; i < 3; i++)
      if (p->fds[i] >= 0) close(p->fds[i]);
    chime__free(p);
    return rc;
  }
  p->next = ps->head;
  if (ps->head) ps->head->prev = p;
  ps->head = p;
  try_reap(loop, p); /* it may be gone already */
  *out = p;
  return 0;
}

static void proc_forget(chime_loop *loop, struct chime__task *t) {
  CHIME__UNUSED(loop);
  ((chime_proc *)t->wait_on)->waiter = NULL;
}

static const struct chime__wait proc_wait = {.forget = proc_forget};

/* ---- using a child ------------------------------------------------------------------ */

/* The loop's own thread only; `task`: from one of its tasks. */
static int check(const chime_proc *p, bool task) {
  if (!p) return -EINVAL;
  if (!chime__loop_owned(p->loop)) return -EPERM;
  return !task || (chime__tls_loop == p->loop && p->loop->cur) ? 0 : -EPERM;
}

int chime_proc_pid(const chime_proc *p) { return p ? p->pid : -EINVAL; }

int chime_proc_fd(const chime_proc *p, int which) {
  if (!p || which < 0 || which > 2) return -EINVAL;
  return p->fds[which] >= 0 ? p->fds[which] : -ENOENT;
}

int chime_proc_signal(chime_proc *p, int sig) {
  int rc = check(p, false);
  if (rc) return rc;
  if (sig < 0 || sig >= CHIME__NSIG) return -EINVAL;
  if (p->exited) return -ESRCH;
  return signal_child(p, sig) == 0 ? 0 : -errno;
}

int chime_proc_wait(chime_proc *p, chime_ns deadline, int *status) {
  chime_loop *loop = chime__tls_loop;
  int rc = check(p, true);
  if (rc) return rc;
  if (deadline < 0 || p->waiter) return -EINVAL;
  if (!p->exited) {
    rc = chime__task_wait(loop, &proc_wait, p, &p->waiter, deadline);
    if (rc) return rc;
  }
  if (status) *status = p->status;
  return 0;
}

int chime_proc_terminate(chime_proc *p, chime_ns grace, int *status) {
  chime_loop *loop = chime__tls_loop;
  int rc = check(p, true);
  if (rc) return rc;
  if (grace < 0 || p->waiter) return -EINVAL;
  if (!p->exited) {
    signal_child(p, SIGTERM);
    chime_ns until = chime__after(chime__now(loop), grace);
    /* shielded: a terminate that a cancellation cut short would leave the
     * child running */
    int was = chime_shield(true);
    rc = chime__task_wait(loop, &proc_wait, p, &p->waiter, until);
    if (rc == -ETIMEDOUT) {
      signal_child(p, SIGKILL);
      rc = chime__task_wait(loop, &proc_wait, p, &p->waiter, CHIME_NEVER);
    }
    chime_shield(was);
  }
  if (status) *status = p->status;
  return 0;
}

static void proc_free(chime_loop *loop, chime_proc *p) {
  kill_and_reap(loop, p); /* closes the pidfd */
  for (int i = 0; i < 3; i++)
    if (p->fds[i] >= 0) chime__fd_close(loop, p->fds[i]);
  if (p->prev)
    p->prev->next = p->next;
  else
    ((struct procs *)chime__module(loop, &procs_module))->head = p->next;
  if (p->next) p->next->prev = p->prev;
  chime__free(p);
}

void chime_proc_free(chime_proc *p) {
  if (check(p, false) || p->waiter) return;
  proc_free(p->loop, p);
}

/* The loop is freed: every child left is killed and reaped. */
static void procs_release(chime_loop *loop, void *state) {
  struct procs *ps = state;
  while (ps->head) proc_free(loop, ps->head);
}
