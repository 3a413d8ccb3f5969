/* notify.c - sd_notify's protocol (notify.h): each message is one
 * datagram on the AF_UNIX socket NOTIFY_SOCKET names, a path or, with a
 * leading '@', an abstract name (systemd's sd_notify(3), "the datagram
 * protocol"); no reply.  The socket is non-blocking: the daemon never
 * waits on systemd. */
#include "notify.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static struct sockaddr_un addr;
static socklen_t addr_len; /* 0: no socket */
static int fd = -1;
static chime_ns watchdog;

/* A positive decimal that fits, or 0. */
static unsigned long long number(const char *s) {
  if (!s || *s < '0' || *s > '9') return 0;
  char *end;
  errno = 0;
  unsigned long long n = strtoull(s, &end, 10);
  return errno || *end ? 0 : n;
}

bool notify_init(void) {
  const char *path = getenv("NOTIFY_SOCKET");
  size_t len = path ? strlen(path) : 0;
  addr_len = 0;
  if (len >= 2 && len < sizeof addr.sun_path && (path[0] == '/' || path[0] == '@')) {
    memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    memcpy(addr.sun_path, path, len);
    if (path[0] == '@') addr.sun_path[0] = '\0'; /* abstract: no NUL at its end */
    addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (path[0] == '/'));
  }
  unsigned long long usec = number(getenv("WATCHDOG_USEC")), pid = number(getenv("WATCHDOG_PID"));
  watchdog = usec && usec < (unsigned long long)INT64_MAX / 1000 && (!pid || pid == (unsigned long long)getpid())
                 ? (chime_ns)usec * 1000 / 2
                 : 0;
  unsetenv("NOTIFY_SOCKET");
  unsetenv("WATCHDOG_USEC");
  unsetenv("WATCHDOG_PID");
  return addr_len > 0;
}

int notify_send(const char *message) {
  if (!addr_len) return -ENOTCONN;
  if (fd < 0 && (fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) < 0) return -errno;
  ssize_t n =
      sendto(fd, message, strlen(message), MSG_NOSIGNAL | MSG_DONTWAIT, (const struct sockaddr *)&addr, addr_len);
  return n < 0 ? -errno : 0;
}

chime_ns notify_watchdog(void) { return addr_len ? watchdog : 0; }
