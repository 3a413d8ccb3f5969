/* procinfo.c - a process's start time and the boot's id (procinfo.h). */
#include "procinfo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int64_t proc_start_time(pid_t pid) {
  char path[64], text[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "re");
  if (!f) return -1;
  size_t n = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[n] = '\0';
  /* the command (field 2) is in parentheses and may hold anything: count
   * the fields after its last ')' */
  const char *p = strrchr(text, ')');
  if (!p) return -1;
  for (int field = 2; field < 22; field++) {
    p = strchr(p + 1, ' ');
    if (!p) return -1;
  }
  char *end;
  long long t = strtoll(p + 1, &end, 10);
  return end == p + 1 || t < 0 ? -1 : (int64_t)t;
}

int64_t boot_ticks_now(void) {
  struct timespec ts;
  static long hz;
  if (!hz) hz = sysconf(_SC_CLK_TCK);
  if (hz <= 0 || clock_gettime(CLOCK_BOOTTIME, &ts) != 0) return -1;
  return (int64_t)ts.tv_sec * hz + (int64_t)ts.tv_nsec / (1000000000 / hz);
}

bool proc_started_near(int64_t actual, int64_t taken) { return actual >= taken && actual - taken <= 2; }

const char *boot_id(void) {
  static char id[64];
  if (id[0]) return id;
  FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");
  if (!f) return "";
  if (!fgets(id, sizeof id, f)) id[0] = '\0';
  fclose(f);
  id[strcspn(id, "\n")] = '\0';
  return id;
}
