/* fleet_job.c - the job the fleet tests run: it tells, in the file
 * $FLEET_OUT, when it started, that it is alive every 20 ms, and when it
 * ended, each line with its node ($NODE_NAME, inherited from the chime
 * that ran it) and its pid, so that the tests can check the runs against
 * the history.  Times are CLOCK_REALTIME read by the system call itself:
 * a node under faketime must not fake its job's clock too.
 *
 *   fleet_job SECONDS [EXIT [TAG]]
 *
 * Lines: "S|A|E NODE PID REAL_NS TAG" (TAG "-" by default).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static long long real_ns(void) {
  struct timespec ts;
  syscall(SYS_clock_gettime, CLOCK_REALTIME, &ts);
  return (long long)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static const char *tag = "-";

static void say(int fd, char what, const char *node) {
  char line[160];
  int n = snprintf(line, sizeof line, "%c %s %d %lld %s\n", what, node, (int)getpid(), real_ns(), tag);
  if (write(fd, line, (size_t)n) != n) _exit(3);
}

int main(int argc, char **argv) {
  const char *path = getenv("FLEET_OUT"), *node = getenv("NODE_NAME");
  if (!path || !node || argc < 2) return 2;
  int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return 2;
  if (argc > 3) tag = argv[3];
  long long end = real_ns() + (long long)(atof(argv[1]) * 1e9);
  say(fd, 'S', node);
  while (real_ns() < end) {
    long long left = end - real_ns();
    struct timespec d = {0, left < 20000000 ? left : 20000000};
    nanosleep(&d, NULL);
    say(fd, 'A', node);
  }
  say(fd, 'E', node);
  return argc > 2 ? atoi(argv[2]) : 0;
}
