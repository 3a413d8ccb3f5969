/* control_client.c - the client side of the control socket (control.h):
 * chime status, trigger, pause, resume and reload send their request and
 * print the daemon's answer.  The client may block (it is a command, not
 * the daemon), within CLIENT_TIME for the whole exchange. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "control.h"

#define CLIENT_TIME 30 /* seconds: a daemon answering no sooner is taken as hung */

int control_default_path(const char *db, char *buf, size_t size) {
  int n = snprintf(buf, size, "%s.sock", db);
  return n > 0 && (size_t)n < size && (size_t)n < sizeof((struct sockaddr_un *)0)->sun_path ? 0 : -ENAMETOOLONG;
}

/* Connects to path: the socket, or -1 after saying why on err. */
static int connect_to(const char *path, FILE *err) {
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof a.sun_path) {
    fprintf(err, "chime: %s: longer than a socket's path may be\n", path);
    return -1;
  }
  memcpy(a.sun_path, path, strlen(path) + 1);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct timeval tv = {.tv_sec = CLIENT_TIME};
  if (fd >= 0) {
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  }
  if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    int e = errno;
    if (e == ENOENT || e == ECONNREFUSED)
      fprintf(err, "chime: no chime serves %s (%s): is the daemon running, with this --db or --socket?\n", path,
              strerror(e));
    else
      fprintf(err, "chime: %s: %s\n", path, strerror(e));
    if (fd >= 0) close(fd);
    return -1;
  }
  return fd;
}

int control_request(const char *path, const char *request, FILE *out, FILE *err) {
  int fd = connect_to(path, err);
  if (fd < 0) return 1;
  char line[CONTROL_REQUEST_MAX + 1];
  int n = snprintf(line, sizeof line, "%s\n", request);
  if (n < 0 || n >= (int)sizeof line || send(fd, line, (size_t)n, MSG_NOSIGNAL) != n) {
    fprintf(err, "chime: %s: the request could not be sent: %s\n", path,
            n >= (int)sizeof line ? "too long" : strerror(errno));
    close(fd);
    return 1;
  }
  /* "ok" or "error", a newline, then the text, until the daemon closes */
  char buf[65536], head[8] = "";
  size_t hlen = 0;
  bool ok = false, headed = false;
  ssize_t got;
  while ((got = read(fd, buf, sizeof buf)) > 0) {
    const char *p = buf;
    size_t len = (size_t)got;
    while (!headed && len) {
      if (*p == '\n') {
        headed = true, ok = strcmp(head, "ok") == 0;
        if (!ok) fputs("chime: ", err);
      } else if (hlen + 1 < sizeof head) {
        head[hlen++] = *p;
      }
      p++, len--;
    }
    if (len) fwrite(p, 1, len, ok ? out : err);
  }
  int e = errno;
  close(fd);
  if (got < 0 || !headed) {
    fprintf(err, "chime: %s: %s\n", path,
            got < 0 ? (e == EAGAIN ? "no answer in 30s" : strerror(e))
                    : "the daemon closed the connection without an answer");
    return 1;
  }
  return ok ? 0 : 1;
}
