/* procstat.h - a process's line of /proc/PID/stat, as the tests and the
 * benchmarks read it: its state, its parent, its CPU time.  (The command
 * reads a start time from it too: cli/procinfo.c.) */
#ifndef CHIME_TESTS_PROCSTAT_H
#define CHIME_TESTS_PROCSTAT_H

#include <stdio.h>
#include <string.h>
#include <sys/types.h>

/* The fields after the process's name, its state first, read into buf; or
 * NULL: no such process. */
static inline const char *procstat(pid_t pid, char *buf, size_t size) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "r");
  if (!f) return NULL;
  size_t n = fread(buf, 1, size - 1, f);
  fclose(f);
  buf[n] = '\0';
  const char *close = strrchr(buf, ')'); /* the name may hold blanks and parentheses */
  return close && close[1] == ' ' ? close + 2 : NULL;
}

/* Its state (R, S, Z, ...), or 0: no such process. */
static inline char procstat_state(pid_t pid) {
  char buf[512];
  const char *p = procstat(pid, buf, sizeof buf);
  return p ? *p : 0;
}

/* Its user and system CPU time, in clock ticks; -1: no such process. */
static inline long long procstat_cpu_ticks(pid_t pid) {
  char buf[1024];
  const char *p = procstat(pid, buf, sizeof buf);
  unsigned long long ut, st;
  if (!p || sscanf(p, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2) return -1;
  return (long long)(ut + st);
}

#endif
