/* epoll.c - the Linux backend: epoll(7).
 *
 * Waits with nanosecond timeouts through epoll_pwait2 (Linux 5.11); a wait
 * that whole milliseconds say exactly (none, no timeout, whole ms) goes
 * through epoll_wait, the cheaper of the two (pingpong: 4% more messages a
 * second).  Where the kernel lacks epoll_pwait2 (ENOSYS, or EPERM from a
 * seccomp filter that does not know it) the timeout is rounded up to whole
 * milliseconds for epoll_wait, so the loop may wake late but never early.
 * Descriptors are registered level-triggered with the chime__io as their
 * data; a wait reports up to 64 ready descriptors, the rest come with the
 * next wait.
 */
#include "../machine.h"

#ifdef __linux__
#include <poll.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MAX_EVENTS 64

struct epoll_be {
  int epfd;
  bool no_pwait2; /* the kernel lacks epoll_pwait2 */
  struct epoll_event ev[MAX_EVENTS];
};

static int epoll_init(struct chime__poller *p) {
  struct epoll_be *b = chime__calloc(1, sizeof *b);
  if (!b) return -ENOMEM;
  b->epfd = CHIME__FAULT() ? (errno = EMFILE, -1) : epoll_create1(EPOLL_CLOEXEC);
  if (b->epfd < 0) {
    int err = -errno;
    chime__free(b);
    return err;
  }
  p->be = b;
  return 0;
}

static void epoll_fini(struct chime__poller *p) {
  struct epoll_be *b = p->be;
  close(b->epfd);
  chime__free(b);
  p->be = NULL;
}

static uint32_t to_epoll(const struct chime__io *io) {
  uint32_t events = io->events;
  return ((events & POLLIN) ? (uint32_t)EPOLLIN : 0) | ((events & POLLOUT) ? (uint32_t)EPOLLOUT : 0) | EPOLLRDHUP |
         (io->oneshot ? (uint32_t)EPOLLONESHOT : 0);
}

static uint32_t from_epoll(uint32_t ev) {
  uint32_t r = 0;
  if (ev & (EPOLLIN | EPOLLRDHUP)) r |= POLLIN;
  if (ev & EPOLLOUT) r |= POLLOUT;
  if (ev & EPOLLERR) r |= POLLERR;
  if (ev & EPOLLHUP) r |= POLLHUP;
  return r;
}

static int ctl(struct chime__poller *p, int op, struct chime__io *io) {
  struct epoll_be *b = p->be;
  struct epoll_event ev = {.events = to_epoll(io), .data.ptr = io};
  if (CHIME__FAULT()) return -ENOMEM;
  return epoll_ctl(b->epfd, op, io->fd, &ev) == 0 ? 0 : -errno;
}

static int epoll_add(struct chime__poller *p, struct chime__io *io) { return ctl(p, EPOLL_CTL_ADD, io); }
static int epoll_mod(struct chime__poller *p, struct chime__io *io) { return ctl(p, EPOLL_CTL_MOD, io); }

static void epoll_del(struct chime__poller *p, struct chime__io *io) {
  struct epoll_be *b = p->be;
  epoll_ctl(b->epfd, EPOLL_CTL_DEL, io->fd, NULL); /* fails only if already gone */
}

static int wait_once(struct epoll_be *b, chime_ns timeout) {
#ifdef SYS_epoll_pwait2
  if (!b->no_pwait2 && !CHIME__TSAN && timeout > 0 && timeout % 1000000 != 0) {
    struct timespec ts = {(time_t)(timeout / 1000000000), (long)(timeout % 1000000000)};
    /* An injected failure stands for a kernel without the call. */
    int n = CHIME__FAULT()
                ? (errno = ENOSYS, -1)
                : (int)syscall(SYS_epoll_pwait2, b->epfd, b->ev, MAX_EVENTS, &ts, NULL, 0);
    if (n >= 0 || (errno != ENOSYS && errno != EPERM)) return n;
    b->no_pwait2 = true;
  }
#endif
  CHIME__COUNT(); /* a wait, as epoll_pwait2's (under Valgrind, which lacks it, too) */
  return epoll_wait(b->epfd, b->ev, MAX_EVENTS, chime__timeout_ms(timeout));
}

static int epoll_wait_events(struct chime__poller *p, chime_ns timeout) {
  struct epoll_be *b = p->be;
  int n = wait_once(b, timeout);
  if (n < 0) return errno == EINTR ? 0 : -errno;
  for (int i = 0; i < n; i++) {
    struct chime__io *io = b->ev[i].data.ptr;
    io->cb(p->loop, io, from_epoll(b->ev[i].events));
  }
  return n;
}

static int epoll_fd(const struct chime__poller *p) { return ((const struct epoll_be *)p->be)->epfd; }

const struct chime__backend_ops chime__epoll_ops = {
    .name = "epoll",
    .init = epoll_init,
    .fini = epoll_fini,
    .add = epoll_add,
    .mod = epoll_mod,
    .del = epoll_del,
    .wait = epoll_wait_events,
    .fd = epoll_fd,
    .same_file = true,
};
#endif
