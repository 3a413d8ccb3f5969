/* poll.c - the portable backend: ppoll(2) over an array of descriptors.
 *
 * O(number of descriptors) per wait, which is what portability costs.  The
 * array is dense: removing an entry moves the last one into its place.
 * ppoll takes a timespec, so timeouts keep their nanoseconds; the kernel
 * never returns before the timeout has passed.
 */
#include "../machine.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>

struct poll_be {
  struct pollfd *fds;
  struct chime__io **ios;
  uint32_t n, cap;
};

static int poll_init(struct chime__poller *p) {
  struct poll_be *b = chime__calloc(1, sizeof *b);
  if (!b) return -ENOMEM;
  p->be = b;
  return 0;
}

static void poll_fini(struct chime__poller *p) {
  struct poll_be *b = p->be;
  chime__free(b->fds);
  chime__free(b->ios);
  chime__free(b);
  p->be = NULL;
}

/* epoll refuses a closed descriptor when it is registered: so does this. */
static int check_open(int fd) { return fcntl(fd, F_GETFD) < 0 ? -errno : 0; }

static int poll_add(struct chime__poller *p, struct chime__io *io) {
  struct poll_be *b = p->be;
  int rc = check_open(io->fd);
  if (rc) return rc;
  if (b->n == b->cap) {
    uint32_t cap = b->cap ? b->cap * 2 : 8;
    struct pollfd *fds = chime__realloc(b->fds, cap * sizeof *fds);
    if (!fds) return -ENOMEM;
    b->fds = fds;
    struct chime__io **ios = chime__realloc(b->ios, cap * sizeof *ios);
    if (!ios) return -ENOMEM;
    b->ios = ios;
    b->cap = cap;
  }
  io->index = b->n++;
  b->fds[io->index] = (struct pollfd){.fd = io->fd, .events = (short)io->events};
  b->ios[io->index] = io;
  return 0;
}

static int poll_mod(struct chime__poller *p, struct chime__io *io) {
  struct poll_be *b = p->be;
  int rc = check_open(io->fd);
  if (rc) return rc;
  b->fds[io->index].fd = io->fd; /* armed again if it was disarmed */
  b->fds[io->index].events = (short)io->events;
  return 0;
}

static void poll_del(struct chime__poller *p, struct chime__io *io) {
  struct poll_be *b = p->be;
  uint32_t i = io->index, last = --b->n;
  if (i != last) {
    b->fds[i] = b->fds[last];
    b->ios[i] = b->ios[last];
    b->ios[i]->index = i;
  }
}

static int poll_wait(struct chime__poller *p, chime_ns timeout) {
  struct poll_be *b = p->be;
  struct timespec ts = {(time_t)(timeout / 1000000000), (long)(timeout % 1000000000)};
  int n = CHIME__TSAN ? poll(b->fds, b->n, chime__timeout_ms(timeout))
                      : ppoll(b->fds, b->n, timeout < 0 ? NULL : &ts, NULL);
  if (n < 0) return errno == EINTR ? 0 : -errno;
  int called = 0;
  for (uint32_t i = 0; i < b->n && called < n; i++) {
    if (!b->fds[i].revents) continue;
    struct chime__io *io = b->ios[i];
    uint32_t rev = (uint32_t)(unsigned short)b->fds[i].revents;
    b->fds[i].revents = 0;
    if (io->oneshot) b->fds[i].fd = -1; /* disarmed (a negative fd is ignored by poll) until mod */
    called++;
    io->cb(p->loop, io, rev);
  }
  return called;
}

const struct chime__backend_ops chime__poll_ops = {
    .name = "poll",
    .init = poll_init,
    .fini = poll_fini,
    .add = poll_add,
    .mod = poll_mod,
    .del = poll_del,
    .wait = poll_wait,
};
