/* guard.c - the leases' dead man's switch (guard.h).
 *
 * The guard is a child of chime that does nothing but wait on its pipe:
 * it closes every other descriptor, ignores the signals a terminal or a
 * service manager sends to a whole group (chime's shutdown closes the
 * pipe, which is its signal), and reads fixed-size messages, each written
 * with one write(2) (atomic on a pipe).  It reads CLOCK_MONOTONIC itself:
 * chime's clock may be virtual, and the deadlines chime sends it are
 * converted.  It exits with _exit, so that nothing of chime's runs
 * there.
 */
#include "guard.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

enum { G_ADD = 1, G_DEL, G_DEADLINE };

struct msg {
  int32_t op;
  int32_t pgid;
  int64_t deadline; /* CLOCK_MONOTONIC ns */
};

static int64_t mono(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void kill_all(const int *groups, size_t n) {
  for (size_t i = 0; i < n; i++) kill(-groups[i], SIGKILL);
}

static _Noreturn void guard_main(int fd) {
  prctl(PR_SET_NAME, "chime-guard");
  static const int ignored[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE, SIGUSR1, SIGUSR2};
  for (size_t i = 0; i < sizeof ignored / sizeof ignored[0]; i++) signal(ignored[i], SIG_IGN);
  int groups[4096];
  size_t n = 0;
  int64_t deadline = INT64_MAX;
  for (;;) {
    int64_t now = mono();
    if (now >= deadline) {
      kill_all(groups, n);
      deadline = INT64_MAX;
    }
    int timeout = deadline == INT64_MAX ? -1 : (int)((deadline - now) / 1000000 + 1);
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, timeout) <= 0) continue;
    struct msg m[64];
    ssize_t got = read(fd, m, sizeof m);
    if (got == 0 || (got < 0 && errno != EINTR && errno != EAGAIN)) { /* chime is gone */
      kill_all(groups, n);
      _exit(0);
    }
    for (ssize_t i = 0; got > 0 && i < got / (ssize_t)sizeof m[0]; i++) {
      switch (m[i].op) {
      case G_ADD:
        if (n < sizeof groups / sizeof groups[0]) groups[n++] = m[i].pgid;
        break;
      case G_DEL:
        for (size_t k = 0; k < n; k++)
          if (groups[k] == m[i].pgid) {
            groups[k] = groups[--n];
            break;
          }
        break;
      case G_DEADLINE: deadline = m[i].deadline; break;
      default: break;
      }
    }
  }
}

int guard_start(struct guard *g) {
  int p[2];
  g->fd = -1;
  if (pipe2(p, O_CLOEXEC) != 0) return -errno;
  pid_t pid = fork();
  if (pid < 0) {
    int e = errno;
    close(p[0]), close(p[1]);
    return -e;
  }
  if (pid == 0) {
    int fd = p[0];
    for (int i = 0; i < 3; i++) { /* keep 0-2 open (to /dev/null) so that no file lands there */
      int null = open("/dev/null", O_RDWR);
      if (null >= 0 && null != i) dup2(null, i), close(null);
    }
    for (int i = 3; i < 65536; i++)
      if (i != fd) close(i);
    guard_main(fd);
  }
  close(p[0]);
  fcntl(p[1], F_SETFL, O_NONBLOCK);
  g->fd = p[1];
  g->pid = pid;
  return 0;
}

static void send_msg(struct guard *g, int op, int pgid, int64_t deadline) {
  if (g->fd < 0) return;
  struct msg m = {op, pgid, deadline};
  if (write(g->fd, &m, sizeof m) != (ssize_t)sizeof m) {
    /* the pipe holds 4096 messages and the guard reads at once: a full one means the guard is stuck */
  }
}

void guard_add(struct guard *g, int pgid) { send_msg(g, G_ADD, pgid, 0); }
void guard_del(struct guard *g, int pgid) { send_msg(g, G_DEL, pgid, 0); }

void guard_deadline(struct guard *g, chime_ns at) {
  /* at is on the loop's clock: convert it to the guard's */
  chime_ns d = at == CHIME_NEVER ? INT64_MAX : at - chime_now() + mono();
  send_msg(g, G_DEADLINE, 0, d);
}

void guard_stop(struct guard *g) {
  if (g->fd >= 0) close(g->fd);
  g->fd = -1;
}
