/* watch.c - [chime] watch = true: the config file is reloaded when it
 * changes, with SIGHUP's rules (runner_reload).
 *
 * inotify watches the file's directory, not the file: editors and tools
 * replace a file (write a new one, rename it over the old: IN_MOVED_TO),
 * and Kubernetes swaps a symlink (..data) in the directory, so a watch on
 * the file's inode would see nothing of either.  Events of other names
 * are read and passed over; after one of the file's (or of a name
 * beginning with "..", Kubernetes' swap), the task waits until WATCH_QUIET
 * passes without another (at most WATCH_SETTLE after the first: a file
 * written in pieces, a burst of saves, is one reload), then reloads if the
 * file is not what it was at the last reload (its device, inode, size and
 * change time, through symlinks): a storm of events costs one reload, and
 * a touch that changed nothing none.  The inotify descriptor is awaited
 * with chime_wait_fd: the loop never blocks on it.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "control.h"
#include "log.h"

#define WATCH_QUIET CHIME_MS(250)
#define WATCH_SETTLE CHIME_SEC(2)

/* What the file was: the fields that change when it does. */
struct seen {
  dev_t dev;
  ino_t ino;
  off_t size;
  struct timespec mtime, ctime;
  bool exists;
};

static struct seen look(const char *path) {
  struct stat st;
  struct seen s = {0};
  if (stat(path, &st) != 0) return s;
  s = (struct seen){st.st_dev, st.st_ino, st.st_size, st.st_mtim, st.st_ctim, true};
  return s;
}

static bool same(const struct seen *a, const struct seen *b) {
  return a->exists == b->exists && a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
         a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec &&
         a->ctime.tv_sec == b->ctime.tv_sec && a->ctime.tv_nsec == b->ctime.tv_nsec;
}

/* Reads the events there are: 1 if one is about the file, 0 if none is,
 * or a negative errno. */
static int read_events(int fd, const char *base) {
  char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
  int about = 0;
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0) return errno == EAGAIN ? about : -errno;
    for (char *p = buf; p < buf + n;) {
      const struct inotify_event *ev = (const struct inotify_event *)p;
      if (ev->mask & IN_Q_OVERFLOW) about = 1; /* events were lost: look */
      if (ev->len && (strcmp(ev->name, base) == 0 || strncmp(ev->name, "..", 2) == 0)) about = 1;
      p += sizeof *ev + ev->len;
    }
  }
}

int watch_task(void *arg) {
  struct control *c = arg;
  const char *path = c->r->config_path;
  char dir[PATH_MAX];
  const char *slash = strrchr(path, '/'), *base = slash ? slash + 1 : path;
  if (!slash)
    snprintf(dir, sizeof dir, ".");
  else
    snprintf(dir, sizeof dir, "%.*s", slash == path ? 1 : (int)(slash - path), path);
  int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0 ||
      inotify_add_watch(
          fd, dir, IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_ATTRIB | IN_MODIFY) < 0) {
    log_msg("error", "watch", "%s cannot be watched: %s; reload with SIGHUP or chime reload", path, strerror(errno));
    if (fd >= 0) close(fd);
    return 0;
  }
  log_msg("info", "watch", "watching %s: a change reloads it", path);
  struct seen last = look(path);
  int rc;
  for (;;) {
    rc = chime_wait_fd(fd, CHIME_READABLE, CHIME_NEVER);
    if (rc >= 0) rc = read_events(fd, base);
    if (rc < 0) break;
    if (rc == 0) continue;
    chime_ns first = chime_now(); /* about the file: wait until it settles */
    for (;;) {
      chime_ns quiet = chime_now() + WATCH_QUIET, settle = first + WATCH_SETTLE;
      rc = chime_wait_fd(fd, CHIME_READABLE, quiet < settle ? quiet : settle);
      if (rc == -ETIMEDOUT) break;
      if (rc < 0 || (rc = read_events(fd, base)) < 0) goto out;
    }
    struct seen now = look(path);
    if (same(&now, &last)) continue;
    log_msg("info", "watch", "%s changed: reloading", path);
    if (runner_reload(c->r, NULL) == -EBUSY) /* the next change tries again */
      log_msg("warn", "watch", "a reload is going on: not reloaded again");
    else
      last = now;
  }
out:
  if (rc != -ECANCELED) log_msg("error", "watch", "%s is no longer watched: %s", path, chime_strerror(rc));
  if (chime_close(fd) != 0) close(fd);
  return 0;
}
