/* io.c - tasks waiting for file descriptors, and the common operations
 * built on that wait (read, write all, accept, connect).
 *
 * Descriptors belong to the caller: a task may wait on any descriptor, and
 * the caller may close it and open another with the same number at any
 * time.  So each wait arms the descriptor afresh, one-shot (epoll's
 * EPOLLONESHOT, emulated by the poll backend): an epoll_ctl per wait, and
 * never a wait on a registration that belongs to a file closed since.
 * Between waits a descriptor keeps its record and its (disarmed)
 * registration, so that the next wait modifies rather than adds.
 *
 * A kept descriptor (chime_keep_fd, and the pipes of children, which the
 * library closes itself) is the loop's until chime_close: its registration
 * is level-triggered and outlives its waits, so that a wait costs no
 * system call of its own, as a libuv or libev watcher that stays started.
 * It is taken back lazily: an event that finds no task waiting for it
 * narrows the registration to the waiters left (or removes it), so a
 * descriptor nobody waits on wakes the loop at most once.
 *
 * Per descriptor, one task may wait to read and one to write, at once; a
 * second waiter in the same direction gets -EBUSY.  A wait may come back
 * ready when the operation would still block (another reader won the data,
 * an event on a descriptor since closed): the operations here retry, and
 * callers of chime_wait_fd should use non-blocking I/O too.
 */
#include "awaits.h"

#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

/* The module's state in a loop: descriptor number -> its record. */
struct fds {
  struct chime__fdrec **recs;
  size_t n;
};

static void fds_fini(chime_loop *loop, void *state);
static const struct chime__module fds_module = {.size = sizeof(struct fds), .fini = fds_fini};

struct chime__fdrec {
  struct chime__io io;        /* io.events: the interest last armed (0: never registered) */
  struct chime__task *reader; /* the task waiting to read, or NULL */
  struct chime__task *writer; /* the task waiting to write, or NULL */
  bool read_waits;            /* the last chime_read found nothing at first: the next waits first */
  bool kept;                  /* registered until chime_close (chime_keep_fd) */
  uint8_t woke;               /* kept: POLLIN, POLLOUT: a waiter woken for it, not waiting again yet */
  uint8_t mode;               /* the file's mode, known while its registration lasts (enum mode) */
};

enum mode { MODE_UNKNOWN, MODE_NONBLOCKING, MODE_BLOCKING };

/* chime_wait_fd's result bit for a regular file (always ready): internal. */
#define REGULAR 0x100

static struct chime__fdrec *rec_of(struct chime__io *io) { return CHIME__CONTAINER(io, struct chime__fdrec, io); }

static uint32_t interest(const struct chime__fdrec *r) { return (r->reader ? POLLIN : 0) | (r->writer ? POLLOUT : 0); }

/* Wakes both waiters with -EBADF: their descriptor was closed. */
static void wake_closed(chime_loop *loop, struct chime__fdrec *r) {
  if (r->reader) chime__task_wake(loop, r->reader, -EBADF);
  if (r->writer) chime__task_wake(loop, r->writer, -EBADF); /* does nothing if it is the reader, woken */
  r->reader = r->writer = NULL;
}

/* Wakes the waiters the events concern (errors and hang-ups concern both),
 * each with the events it waited for; the registration is disarmed now:
 * re-arm it for a waiter left. */
/* A kept descriptor's registration narrowed to `keep` (the directions of
 * the waiters the event woke) and its waiters' interest (none: removed),
 * after an event that found nobody waiting for part of it. */
static void kept_narrow(chime_loop *loop, struct chime__fdrec *r, uint32_t keep) {
  if (chime__io_set(loop, &r->io, keep | interest(r)) != 0) { /* the file is gone: nothing left to narrow */
    chime__io_set(loop, &r->io, 0);
    r->io.events = 0;
  }
}

static void fd_ready(chime_loop *loop, struct chime__io *io, uint32_t revents) {
  struct chime__fdrec *r = rec_of(io);
  if (revents & POLLNVAL) { /* closed while a task waited on it (poll backend) */
    wake_closed(loop, r);
    if (r->kept) chime__io_set(loop, io, 0);
    return;
  }
  unsigned ev = ((revents & (POLLIN | POLLERR | POLLHUP)) ? CHIME_READABLE : 0) |
                ((revents & (POLLOUT | POLLERR | POLLHUP)) ? CHIME_WRITABLE : 0);
  struct chime__task *rd = r->reader, *wr = r->writer;
  if (rd && (ev & CHIME_READABLE)) {
    chime__task_wake(loop, rd, (int)(ev & (rd == wr ? CHIME_READABLE | CHIME_WRITABLE : CHIME_READABLE)));
    r->reader = NULL;
    if (wr == rd) r->writer = wr = NULL;
  }
  if (wr && (ev & CHIME_WRITABLE)) {
    chime__task_wake(loop, wr, (int)(ev & (wr == rd ? CHIME_READABLE | CHIME_WRITABLE : CHIME_WRITABLE)));
    r->writer = NULL;
    if (rd == wr) r->reader = NULL;
  }
  if (r->kept) {
    /* Level-triggered: the readiness a woken task has not used yet is
     * told again, once, before it runs; other readiness that nobody
     * waits for narrows the registration. */
    uint32_t unheard = (((revents & (POLLIN | POLLERR | POLLHUP)) && !rd) ? POLLIN : 0) |
                       (((revents & (POLLOUT | POLLERR | POLLHUP)) && !wr) ? POLLOUT : 0);
    uint32_t woke = (rd ? POLLIN : 0) | (wr ? POLLOUT : 0);
    if (unheard & ~(uint32_t)r->woke) kept_narrow(loop, r, woke);
    r->woke = (uint8_t)woke;
    return;
  }
  if ((r->reader || r->writer) && chime__io_arm(loop, io, interest(r)) > 0) r->mode = MODE_UNKNOWN;
}

/* The record of a descriptor, made on first use (of a descriptor that is
 * open: the table grows only for those). */
static int rec_get(chime_loop *loop, int fd, struct chime__fdrec **out) {
  struct fds *t;
  int rc = chime__module_attach(loop, &fds_module, (void **)&t);
  if (rc) return rc;
  if (((size_t)fd >= t->n || !t->recs[fd]) && fcntl(fd, F_GETFD) < 0) return -EBADF;
  if ((size_t)fd >= t->n) {
    size_t n = t->n ? t->n : 64;
    while (n <= (size_t)fd)
      n *= 2;
    struct chime__fdrec **v = chime__realloc(t->recs, n * sizeof *v);
    if (!v) return -ENOMEM;
    memset(v + t->n, 0, (n - t->n) * sizeof *v);
    t->recs = v;
    t->n = n;
  }
  struct chime__fdrec *r = t->recs[fd];
  if (!r) {
    r = chime__calloc(1, sizeof *r);
    if (!r) return -ENOMEM;
    r->io.fd = fd;
    r->io.cb = fd_ready;
    r->io.oneshot = true;
    t->recs[fd] = r;
  }
  *out = r;
  return 0;
}

/* The record of fd, if it has one. */
static struct chime__fdrec *rec_find(const chime_loop *loop, int fd) {
  const struct fds *t = loop ? chime__module(loop, &fds_module) : NULL;
  return t && fd >= 0 && (size_t)fd < t->n ? t->recs[fd] : NULL;
}

static void fd_forget(chime_loop *loop, struct chime__task *t) {
  struct chime__fdrec *r = t->wait_on;
  if (r->reader == t) r->reader = NULL;
  if (r->writer == t) r->writer = NULL;
  loop->nwatch--;
}

static const struct chime__wait fd_wait_op = {.forget = fd_forget};

static void fds_fini(chime_loop *loop, void *state) {
  struct fds *t = state;
  for (size_t i = 0; i < t->n; i++) {
    if (t->recs[i]) chime__io_set(loop, &t->recs[i]->io, 0);
    chime__free(t->recs[i]);
  }
  chime__free(t->recs);
}

/* A wait whose deadline has passed: a descriptor ready now is ready
 * (readiness wins over the deadline), else -ETIMEDOUT; a cancellation
 * wins over both. */
static int ready_now(const struct chime__task *self, int fd, unsigned events) {
  if (chime__cancel_pending(self)) return -ECANCELED;
  struct pollfd p = {.fd = fd, .events = (short)(((events & CHIME_READABLE) ? POLLIN : 0) |
                                                 ((events & CHIME_WRITABLE) ? POLLOUT : 0))};
  if (poll(&p, 1, 0) <= 0) return -ETIMEDOUT;
  if (p.revents & POLLNVAL) return -EBADF;
  unsigned got = ((p.revents & (POLLIN | POLLERR | POLLHUP)) ? CHIME_READABLE : 0) |
                 ((p.revents & (POLLOUT | POLLERR | POLLHUP)) ? CHIME_WRITABLE : 0);
  got &= (p.revents & (POLLERR | POLLHUP)) ? CHIME_READABLE | CHIME_WRITABLE : events;
  return got ? (int)got : -ETIMEDOUT;
}

/* chime_wait_fd, plus REGULAR in the result for a regular file. */
static int fd_wait(int fd, unsigned events, chime_ns deadline, struct chime__fdrec **rec) {
  chime_loop *loop = chime__tls_loop;
  struct chime__task *self = loop ? loop->cur : NULL;
  if (!self) return -EPERM;
  if (fd < 0 || !events || (events & ~(unsigned)(CHIME_READABLE | CHIME_WRITABLE)) || deadline < 0) return -EINVAL;
  struct chime__fdrec *r;
  int rc = rec_get(loop, fd, &r);
  if (rc) return rc;
  *rec = r;
  if (((events & CHIME_READABLE) && r->reader) || ((events & CHIME_WRITABLE) && r->writer)) return -EBUSY;
  if (deadline != CHIME_NEVER && deadline <= chime__now(loop)) return ready_now(self, fd, events);
  uint32_t want = interest(r) | ((events & CHIME_READABLE) ? POLLIN : 0) | ((events & CHIME_WRITABLE) ? POLLOUT : 0);
  r->woke &= (uint8_t) ~((events & CHIME_READABLE ? POLLIN : 0) | (events & CHIME_WRITABLE ? POLLOUT : 0));
  if (!r->kept || (r->io.events & want) != want) { /* a kept registration serves while it covers the wait */
    rc = chime__io_arm(loop, &r->io, r->kept ? (r->io.events | want) : want);
    if (rc == -EPERM) return (int)events | REGULAR; /* a regular file: always ready, as poll(2) says */
    if (rc < 0) return rc;
    if (rc && !r->kept) r->mode = MODE_UNKNOWN; /* perhaps another file than the last time */
  }
  if (events & CHIME_READABLE) r->reader = self;
  if (events & CHIME_WRITABLE) r->writer = self;
  loop->nwatch++;
  rc = chime__task_wait(loop, &fd_wait_op, r, NULL, deadline);
  loop->nwatch--;
  /* Woken by the descriptor, fd_ready cleared our slots; otherwise we do. */
  if (r->reader == self) r->reader = NULL;
  if (r->writer == self) r->writer = NULL;
  return rc;
}

int chime_wait_fd(int fd, unsigned events, chime_ns deadline) {
  struct chime__fdrec *r;
  int rc = fd_wait(fd, events, deadline, &r);
  return rc > 0 ? rc & ~REGULAR : rc;
}

/* Closes a descriptor the library opened (a child's pipe): tasks waiting on
 * it see -EBADF; the record stays, for the number's next file. */
void chime__fd_close(chime_loop *loop, int fd) {
  struct chime__fdrec *r = rec_find(loop, fd);
  if (r) {
    wake_closed(loop, r);
    chime__io_set(loop, &r->io, 0);
    r->kept = false;
    r->io.oneshot = true;
  }
  close(fd);
}

int chime__fd_keep(chime_loop *loop, int fd, int flags) {
  if (fd < 0) return -EINVAL;
  int fl = flags >= 0 ? flags : fcntl(fd, F_GETFL); /* checked here: a record may outlive its file */
  if (fl < 0) return -EBADF;
  struct chime__fdrec *r;
  int rc = rec_get(loop, fd, &r);
  if (rc || r->kept) return rc;
  if (r->reader || r->writer) return -EBUSY; /* armed one-shot for them */
  chime__io_set(loop, &r->io, 0); /* a one-shot registration left from earlier waits */
  r->kept = true;
  r->io.oneshot = false;
  r->mode = (fl & O_NONBLOCK) ? MODE_NONBLOCKING : MODE_BLOCKING;
  return 0;
}

int chime_keep_fd(int fd) {
  chime_loop *loop = chime__tls_loop;
  return loop ? chime__fd_keep(loop, fd, -1) : -EPERM;
}

int chime_close(int fd) {
  chime_loop *loop = chime__tls_loop;
  if (!loop) return -EPERM;
  if (fd < 0) return -EINVAL;
  struct chime__fdrec *r = rec_find(loop, fd);
  if (r) {
    if (r->reader || r->writer) return -EBUSY; /* a task still waits on it */
    chime__io_set(loop, &r->io, 0);
    chime__free(r);
    ((struct fds *)chime__module(loop, &fds_module))->recs[fd] = NULL;
  }
  return close(fd) == 0 ? 0 : -errno;
}

/* ---- operations ------------------------------------------------------------ */

/* Whether a descriptor would block the whole loop: refused with -EINVAL. */
static int check_nonblocking(int fd) {
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0) return -errno;
  return (fl & O_NONBLOCK) ? 0 : -EINVAL;
}

/* One read or write that cannot block the loop: with RWF_NOWAIT (pipes,
 * sockets and files, on Linux), whatever the descriptor's mode; where the
 * kernel does not take the flag for this descriptor (a terminal, an older
 * kernel), a plain read or write, if the descriptor is non-blocking.
 * `plain`: a regular file said to be ready: read or write it as it is. */
static ssize_t transfer(int fd, void *buf, size_t n, bool out, bool plain) {
#ifdef RWF_NOWAIT
  if (!plain) {
    struct iovec v = {buf, n};
    ssize_t r = out ? pwritev2(fd, &v, 1, -1, RWF_NOWAIT) : preadv2(fd, &v, 1, -1, RWF_NOWAIT);
    if (r >= 0 || (errno != EOPNOTSUPP && errno != EINVAL && errno != ENOSYS)) return r;
  }
#endif
  int rc = plain ? 0 : check_nonblocking(fd);
  if (rc) {
    errno = -rc;
    return -1;
  }
  return out ? write(fd, buf, n) : read(fd, buf, n);
}

/* The cooperative budget, for the task running here (-EPERM: none). */
static int coop_here(void) {
  chime_loop *loop = chime__tls_loop;
  return loop && loop->cur ? chime__coop(loop) : -EPERM;
}

/* After a wait on r said `ready`: whether a plain read or write cannot
 * block, the file being a regular one, or one known to be non-blocking
 * (checked once while it stays the same file). */
static bool plain_after_wait(int fd, struct chime__fdrec *r, int ready) {
  if (ready & REGULAR) return true;
  if (ready <= 0 || !chime__tls_loop->poller.ops->same_file) return false;
  if (r->mode == MODE_UNKNOWN) r->mode = check_nonblocking(fd) == 0 ? MODE_NONBLOCKING : MODE_BLOCKING;
  return r->mode == MODE_NONBLOCKING;
}

int chime_read(int fd, void *buf, size_t n, chime_ns deadline) {
  if ((!buf && n) || deadline < 0) return -EINVAL;
  if (n > INT32_MAX) n = INT32_MAX;
  int rc = coop_here();
  if (rc) return rc;
  struct chime__fdrec *r = rec_find(chime__tls_loop, fd);
  /* A descriptor that had nothing at the last read, and then less than a
   * buffer's worth (a ping-pong, a quiet socket), is waited for first: a
   * read bound to fail is saved. */
  rc = r && r->read_waits ? fd_wait(fd, CHIME_READABLE, deadline, &r) : 0;
  for (;;) {
    if (rc < 0) return rc;
    ssize_t got = transfer(fd, buf, n, false, r && plain_after_wait(fd, r, rc));
    if (got >= 0) {
      if (r) r->read_waits = rc > 0 && (size_t)got < n;
      return (int)got;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return -errno;
    rc = fd_wait(fd, CHIME_READABLE, deadline, &r);
  }
}

int chime_write_all(int fd, const void *buf, size_t n, chime_ns deadline, size_t *written) {
  size_t done = 0;
  int rc = (!buf && n) || deadline < 0 ? -EINVAL : 0, ready = 0;
  struct chime__fdrec *r = rec_find(chime__tls_loop, fd);
  if (r && r->kept && r->mode == MODE_NONBLOCKING) ready = 1; /* the same file, known non-blocking: write plainly */
  else r = NULL;
  while (rc == 0 && done < n && (rc = coop_here()) == 0) {
    ssize_t w = transfer(fd, (char *)(uintptr_t)buf + done, n - done, true, r && plain_after_wait(fd, r, ready));
    if (w >= 0) {
      done += (size_t)w;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      ready = fd_wait(fd, CHIME_WRITABLE, deadline, &r);
      if (ready < 0) rc = ready;
    } else if (errno != EINTR) {
      rc = -errno;
    }
  }
  if (written) *written = done;
  return rc;
}

int chime_accept(int fd, chime_ns deadline) {
  if (deadline < 0) return -EINVAL;
  int rc = check_nonblocking(fd);
  if (rc) return rc;
  for (;;) {
    if ((rc = coop_here()) != 0) return rc;
    if (CHIME__FAULT()) return -EMFILE;
    int c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (c >= 0) return c;
    if (errno == EINTR || errno == ECONNABORTED) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return -errno;
    rc = chime_wait_fd(fd, CHIME_READABLE, deadline);
    if (rc < 0) return rc;
  }
}

int chime_connect(int fd, const struct sockaddr *addr, unsigned addrlen, chime_ns deadline) {
  if (!addr || deadline < 0) return -EINVAL;
  int rc = check_nonblocking(fd);
  if (rc) return rc;
  if (connect(fd, addr, (socklen_t)addrlen) == 0) return 0;
  if (errno != EINPROGRESS && errno != EINTR) return -errno;
  rc = chime_wait_fd(fd, CHIME_WRITABLE, deadline);
  if (rc < 0) return rc;
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return -errno;
  return -err;
}
