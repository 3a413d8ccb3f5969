/* process.c - child processes: spawn, await the exit, signal, terminate.
 *
 * Spawning clones (Linux: sharing memory until exec, as posix_spawn does;
 * elsewhere a fork) and execs.  The parent resolves the program through
 * PATH first, so that the child, before exec, only makes system calls: it
 * joins a new process group, sets up its standard descriptors, directory
 * and ids, resets its signal handlers and mask, and execs.  If anything
 * fails there it reports errno and exits: the parent returns that errno,
 * so a missing or non-executable program is an error of chime_proc_spawn,
 * never a child that dies silently.  A child sharing the parent's memory
 * (Linux) writes it where the waiting parent reads it, as posix_spawn
 * does; a forked one (elsewhere, or made a fork by Valgrind or qemu) through a
 * close-on-exec pipe, whose end of file means the exec succeeded.
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
#include <sched.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif
#include <grp.h>
#include <limits.h>
#include <sys/syscall.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

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
  void *stack;      /* the stack a child starts on, until it execs (Linux) */
  int shared;       /* 1: a clone shares the parent's memory until it execs; -1: it is made a fork; 0: not known yet */
  int null_fd;      /* /dev/null, read-write, once a child wanted it: opened once, not at every spawn */
  bool null_open;   /* null_fd is open */
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
 * executable file of that name in PATH.  Returns 0 or -ENOENT / -EACCES
 * (or -ENAMETOOLONG). */
static int resolve(const char *name, char *out, size_t size) {
  if (strchr(name, '/')) { /* the exec says what is wrong with it */
    if (strlen(name) >= size) return -ENAMETOOLONG;
    strcpy(out, name);
    return 0;
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
 * parent's end of a pipe, non-blocking, as the child's end is until the
 * child clears it (*pipe_end).  -1: inherit.  /dev/null is the loop's,
 * opened once (read-write, as systemd gives it): the parent keeps it. */
static int child_end(struct procs *ps, const chime_stdio *s, int which, int *child, int *parent, bool *pipe_end) {
  *child = *parent = -1;
  *pipe_end = false;
  int p[2];
  switch (s->mode) {
  case CHIME_STDIO_INHERIT: return 0;
  case CHIME_STDIO_NULL:
    if (!ps->null_open) {
      if (CHIME__FAULT()) return -EMFILE;
      if ((ps->null_fd = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0) return -errno;
      ps->null_open = true;
    }
    *child = ps->null_fd;
    return 0;
  case CHIME_STDIO_FILE: {
    const char *path = s->path;
    if (!path) return -EINVAL;
    int flags = which == 0 ? O_RDONLY : O_WRONLY | O_CREAT | (s->append ? O_APPEND : O_TRUNC);
    if (CHIME__FAULT()) return -EMFILE;
    *child = open(path, flags | O_CLOEXEC, 0644);
    return *child < 0 ? -errno : 0;
  }
  case CHIME_STDIO_PIPE:
    if (CHIME__FAULT()) return -EMFILE;
    if (pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) return -errno;
    *child = p[which == 0 ? 0 : 1];
    *parent = p[which == 0 ? 1 : 0];
    *pipe_end = true;
    return 0;
  case CHIME_STDIO_FD:
    if (s->fd < 0 || fcntl(s->fd, F_GETFD) < 0) return -EBADF;
    if (CHIME__FAULT()) return -EMFILE;
    *child = fcntl(s->fd, F_DUPFD_CLOEXEC, 3);
    return *child < 0 ? -errno : 0;
  }
  return -EINVAL;
}

/* ThreadSanitizer cannot follow a child that shares its memory: there, a
 * fork. */
#if defined(__linux__) && !CHIME__TSAN
#define VFORK 1
#else
#define VFORK 0
#endif

#if VFORK
/* The child's side of a spawn, on Linux: clone(CLONE_VM | CLONE_VFORK), as
 * posix_spawn starts a child, so that starting one costs the same however
 * large the program is (a fork copies its page tables: milliseconds for a
 * daemon with many jobs).  The child runs in the parent's memory, on a
 * stack of its own, while the parent's thread waits for it to exec or
 * exit: it makes raw system calls only (no C library state, no sanitizer
 * runtime, no errno of consequence), and leaves what failed where the
 * parent reads it, or writes it to a close-on-exec pipe where the clone
 * is made a fork (clone_shares). */
struct spawn {
  const char *prog;
  char *const *argv, *const *envp;
  const chime_proc_opts *o;
  const int *ends;       /* the child's standard descriptors, or -1 */
  const bool *pipe_end;  /* ends[i] is a pipe's, to be made blocking */
  int err_fd;            /* -1: the error is written to err */
  pid_t parent;
  int err;               /* why the child could not exec; 0 */
};

/* The kernel's struct sigaction (rt_sigaction), on x86-64 and aarch64. */
struct ksigaction {
  uintptr_t handler;
  unsigned long flags;
  void *restorer;
  uint64_t mask;
};

#define NO_SANITIZE __attribute__((no_sanitize("address", "thread", "undefined")))

NO_SANITIZE static long sys(long n, long a, long b, long c, long d) { return syscall(n, a, b, c, d); }

/* A descriptor moved above the standard ones (the parent may have had 0,
 * 1 or 2 closed, so that a pipe took one of them). */
NO_SANITIZE static int raw_above_std(int fd) {
  return fd >= 0 && fd < 3 ? (int)sys(SYS_fcntl, fd, F_DUPFD_CLOEXEC, 3, 0) : fd;
}

NO_SANITIZE static int vchild(void *arg) {
  struct spawn *sp = arg;
  const chime_proc_opts *o = sp->o;
  int err = 0, ends[3];
  int err_fd = raw_above_std(sp->err_fd);
  for (int i = 0; i < 3; i++) {
    if ((ends[i] = raw_above_std(sp->ends[i])) < 0 && sp->ends[i] >= 0) err = EMFILE;
    if (ends[i] >= 0 && sp->pipe_end[i]) sys(SYS_fcntl, ends[i], F_SETFL, 0, 0); /* only the child has it */
  }
  /* Handlers do not survive exec anyway; ours must not run before it.
   * Ignored signals stay ignored (as exec keeps them), unless asked. */
  struct ksigaction dfl, old;
  dfl.handler = (uintptr_t)SIG_DFL, dfl.flags = 0, dfl.restorer = NULL, dfl.mask = 0;
  for (int sig = 1; sig < CHIME__NSIG; sig++)
    if (sys(SYS_rt_sigaction, sig, 0, (long)&old, 8) == 0 && old.handler != (uintptr_t)SIG_DFL &&
        (old.handler != (uintptr_t)SIG_IGN || o->reset_signals))
      sys(SYS_rt_sigaction, sig, (long)&dfl, 0, 8);
  /* syscall() returns -1 and sets errno: the parent's, which waits */
  if (!err && !o->keep_group && sys(SYS_setpgid, 0, 0, 0, 0) != 0) err = errno;
  for (int i = 0; i < 3 && !err; i++) /* dup3 clears close-on-exec */
    if (ends[i] >= 0 && sys(SYS_dup3, ends[i], i, 0, 0) < 0) err = errno;
  if (!err && o->cwd && sys(SYS_chdir, (long)o->cwd, 0, 0, 0) != 0) err = errno;
  if (!err && o->set_nice && sys(SYS_setpriority, PRIO_PROCESS, 0, o->nice, 0) != 0) err = errno; /* before the ids */
  if (!err && o->as_user) {
    gid_t g = (gid_t)o->gid;
    const gid_t *list = o->ngroups ? (const gid_t *)o->groups : &g;
    if (sys(SYS_setgroups, o->ngroups ? o->ngroups : 1, (long)list, 0, 0) != 0 ||
        sys(SYS_setresgid, g, g, g, 0) != 0 || sys(SYS_setresuid, o->uid, o->uid, o->uid, 0) != 0)
      err = errno;
  }
  /* After the ids change (which clears it); a parent gone already is seen */
  if (!err && o->die_with_parent &&
      (sys(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0) != 0 || sys(SYS_getppid, 0, 0, 0, 0) != sp->parent))
    err = ESRCH;
  if (!err) {
    uint64_t none = 0;
    sys(SYS_rt_sigprocmask, SIG_SETMASK, (long)&none, 0, 8);
    sys(SYS_execve, (long)sp->prog, (long)sp->argv, (long)sp->envp, 0);
    err = errno > 0 ? errno : EIO;
  }
  if (err_fd >= 0)
    sys(SYS_write, err_fd, (long)&err, sizeof err, 0);
  else
    __atomic_store_n(&sp->err, err, __ATOMIC_RELAXED); /* the parent reads it once the child is gone */
  sys(SYS_exit_group, 127, 0, 0, 0);
  return 127;
}

#define CHILD_STACK (64 * 1024)

NO_SANITIZE static int probe_child(void *arg) {
  __atomic_store_n((int *)arg, 1, __ATOMIC_RELAXED);
  sys(SYS_exit_group, 0, 0, 0, 0);
  return 0;
}

/* Whether a clone shares the parent's memory until the child execs, so
 * that the child's error can be left in memory: Valgrind and qemu-user
 * make the clone a fork.  Asked once per loop, of a child that only
 * writes a word and exits. */
static bool clone_shares(struct procs *ps) {
  if (ps->shared) return ps->shared > 0;
  if (!ps->stack && !(ps->stack = chime__map(CHILD_STACK))) return false;
  int seen = 0;
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old); /* no handler of ours runs in the child */
  pid_t pid = clone(probe_child, (char *)ps->stack + CHILD_STACK, CLONE_VM | CLONE_VFORK | SIGCHLD, &seen);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (pid < 0) return false; /* asked again at the next spawn */
  while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
  }
  ps->shared = __atomic_load_n(&seen, __ATOMIC_RELAXED) ? 1 : -1;
  return ps->shared > 0;
}

/* Starts the child (clone, CLONE_VM | CLONE_VFORK) on the module's stack
 * for it; returns its pid, or -1 with errno. */
static pid_t spawn_child(struct procs *ps, const struct spawn *sp) {
  if (!ps->stack && !(ps->stack = chime__map(CHILD_STACK))) return errno = ENOMEM, -1;
  char *top = (char *)ps->stack + CHILD_STACK;
  return clone(vchild, top, CLONE_VM | CLONE_VFORK | SIGCHLD, (void *)sp);
}
#else
/* A descriptor moved above the standard ones (the parent may have had 0, 1
 * or 2 closed, so that a pipe took one of them). */
static int above_std(int fd) { return fd >= 0 && fd < 3 ? fcntl(fd, F_DUPFD_CLOEXEC, 3) : fd; }

/* Between fork and exec: async-signal-safe calls only. */
static void child(const char *prog, char *const argv[], char *const envp[], const chime_proc_opts *o, const int in[3],
                  const bool pipe_end[3], int err_fd, pid_t parent) {
  int err = 0, ends[3];
  err_fd = above_std(err_fd);
  for (int i = 0; i < 3; i++) {
    if ((ends[i] = above_std(in[i])) < 0 && in[i] >= 0) err = errno;
    if (ends[i] >= 0 && pipe_end[i]) fcntl(ends[i], F_SETFL, 0); /* only the child has it */
  }
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
  if (!err && o->set_nice && setpriority(PRIO_PROCESS, 0, o->nice) != 0) err = errno; /* before the ids */
  if (!err && o->as_user) {
    gid_t g = (gid_t)o->gid;
    const gid_t *list = o->ngroups ? (const gid_t *)o->groups : &g;
    if (setgroups(o->ngroups ? o->ngroups : 1, list) != 0 || setgid(g) != 0 || setuid((uid_t)o->uid) != 0)
      err = errno;
  }
#ifdef __linux__
  /* After the ids change (which clears it); a parent gone already is seen */
  if (!err && o->die_with_parent && (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)) err = ESRCH;
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
#endif

int chime_proc_spawn(const char *const argv[], const chime_proc_opts *opts, chime_proc **out) {
  chime_loop *loop = chime__tls_loop;
  static const chime_proc_opts defaults;
  const chime_proc_opts *o = opts ? opts : &defaults;
  if (!loop) return -EPERM;
  if (!argv || !argv[0] || !argv[0][0] || !out) return -EINVAL;
  if (o->ngroups && (!o->as_user || !o->groups || o->ngroups > NGROUPS_MAX)) return -EINVAL;
  if (o->set_nice && (o->nice < -20 || o->nice > 19)) return -EINVAL;
  char prog[4096];
  int rc = resolve(argv[0], prog, sizeof prog);
  if (rc) return rc;
  struct procs *ps;
  rc = chime__module_attach(loop, &procs_module, (void **)&ps);
  if (rc) return rc;
  chime_proc *p = chime__calloc(1, sizeof *p);
  if (!p) return -ENOMEM;
  int ends[3] = {-1, -1, -1}, err_pipe[2] = {-1, -1};
  bool pipe_end[3];
  p->fds[0] = p->fds[1] = p->fds[2] = p->io.fd = -1;
  const chime_stdio *stdio[3] = {&o->in, &o->out, &o->err};
  for (int i = 0; i < 3 && rc == 0; i++) rc = child_end(ps, stdio[i], i, &ends[i], &p->fds[i], &pipe_end[i]);
#if VFORK
  bool shared = rc == 0 && clone_shares(ps);
#else
  bool shared = false;
#endif
  if (rc == 0 && !shared) rc = CHIME__FAULT() ? -EMFILE : pipe2(err_pipe, O_CLOEXEC) == 0 ? 0 : -errno;
  pid_t pid = -1;
  int child_err = 0;
  if (rc == 0) {
    /* Signals blocked across fork: no handler of ours runs in the child
     * before it resets them. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
#if VFORK
    struct spawn sp = {prog,     (char *const *)argv, o->envp ? (char *const *)o->envp : environ, o, ends, pipe_end,
                       err_pipe[1], getpid(), 0};
    pid = CHIME__FAULT() ? (errno = EAGAIN, -1) : spawn_child(ps, &sp);
    child_err = __atomic_load_n(&sp.err, __ATOMIC_RELAXED); /* the child has exec'd or exited */
#else
    pid_t self = getpid();
    pid = CHIME__FAULT() ? (errno = EAGAIN, -1) : fork();
    if (pid == 0)
      child(prog, (char *const *)argv, o->envp ? (char *const *)o->envp : environ, o, ends, pipe_end, err_pipe[1],
            self);
#endif
    int err = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (pid < 0) rc = -err;
  }
  for (int i = 0; i < 3; i++)
    if (ends[i] >= 0 && !(ps->null_open && ends[i] == ps->null_fd)) close(ends[i]);
  if (err_pipe[1] >= 0) close(err_pipe[1]);
  if (rc == 0 && !shared) {
    if (!o->keep_group) setpgid(pid, pid); /* also here: no race with a signal to the group */
    ssize_t n;
    while ((n = read(err_pipe[0], &child_err, sizeof child_err)) < 0 && errno == EINTR) {
    }
    if (n <= 0) child_err = 0; /* end of file: it exec'd */
  }
  if (rc == 0 && child_err) { /* the child could not exec */
    waitpid(pid, NULL, 0);
    rc = -child_err;
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
  if (p->io.fd < 0) try_reap(loop, p); /* it may be gone already (a pidfd is readable then: no need) */
  for (int i = 0; i < 3; i++) /* closed by the library alone (chime__fd_close): kept, waits cost no epoll_ctl */
    if (p->fds[i] >= 0) chime__fd_keep(loop, p->fds[i], O_NONBLOCK); /* made so (child_end) */
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
  if (ps->stack) chime__unmap(ps->stack, 64 * 1024);
  ps->stack = NULL;
  if (ps->null_open) close(ps->null_fd);
  ps->null_open = false;
}
