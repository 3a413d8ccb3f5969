/* chime-daemon-bench.c - the `daemon` workload of the benchmark
 * specification: the chime command keeps up with N jobs of /bin/true every
 * second, beside the machine's spawn floor measured in the same run.
 *
 *   chime-daemon-bench CHIME N [--duration=S] [--floor=S] [--no-floor]
 *
 * The floor: one process per CPU starting /bin/true with posix_spawn and
 * waiting for it, for --floor seconds (10): spawns a second, all CPUs, and
 * the spawning processes' own CPU per spawn.  And the paced floor: one
 * process starting /bin/true N times a second, each at its time, and
 * waiting for it (paced_*): what a start at a set time costs here, its
 * sleep and wake-ups included.  Then the daemon: a config of
 * N jobs `every = 1s`, `spread = 1s` (each job's grid offset in [0, 1 s]:
 * the N starts spread over each second), history on, for --duration
 * seconds (60, at least 5), stopped with SIGTERM.  Measured over a window
 * of whole seconds, from 3 s after the start to 1 s before the stop: the
 * daemon's CPU (children excluded) from /proc, and from its history the
 * runs of ticks in the window against the N a second due (a tick neither
 * run nor skipped by the stop counts as not run), the ticks skipped, and
 * the runs' lateness (start against tick + spread); and its peak RSS.
 * Prints one JSON line.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <fcntl.h>
#include <spawn.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../tests/procstat.h"

extern char **environ;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* This process's own CPU, in ms. */
static double cpu_self_ms(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
         (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

/* One spawner: posix_spawn + wait of /bin/true until `until`; writes its
 * count and its own CPU (ms) to fd. */
static void spawner(double until, int fd) {
  char *argv[] = {"/bin/true", NULL};
  long n = 0;
  while (now_s() < until) {
    pid_t pid;
    if (posix_spawn(&pid, argv[0], NULL, NULL, argv, environ) != 0) continue;
    waitpid(pid, NULL, 0);
    n++;
  }
  double cpu = cpu_self_ms();
  char line[64];
  int len = snprintf(line, sizeof line, "%ld %.3f\n", n, cpu);
  if (write(fd, line, (size_t)len) != len) _exit(1);
  _exit(0);
}

/* The spawn floor over `secs` on every CPU: spawns a second, and CPU per
 * spawn in ms. */
static void floor_of(double secs, double *per_s, double *cpu_ms) {
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  int p[2];
  if (pipe(p) != 0) exit(1);
  double until = now_s() + secs;
  for (long i = 0; i < cpus; i++)
    if (fork() == 0) spawner(until, p[1]);
  close(p[1]);
  long total = 0;
  double cpu = 0;
  FILE *f = fdopen(p[0], "r");
  long n;
  double c;
  while (f && fscanf(f, "%ld %lf", &n, &c) == 2) total += n, cpu += c;
  if (f) fclose(f);
  while (wait(NULL) > 0) {
  }
  *per_s = (double)total / secs;
  *cpu_ms = total ? cpu / (double)total : 0;
}

/* The paced floor over `secs`: this process starts /bin/true `rate`
 * times a second, each at its time (clock_nanosleep to it), and waits for
 * it: spawns a second, and CPU per spawn in ms.  What the machine charges
 * for a start at a set time, the sleeps and wake-ups any scheduler pays
 * included, where the bare floor's loop never sleeps but for its child. */
static void paced_of(double rate, double secs, double *per_s, double *cpu_ms) {
  char *argv[] = {"/bin/true", NULL};
  struct timespec next;
  clock_gettime(CLOCK_MONOTONIC, &next);
  long step = (long)(1e9 / rate), n = 0;
  double cpu0 = cpu_self_ms(), t0 = now_s(), until = t0 + secs;
  while (now_s() < until) {
    next.tv_nsec += step;
    while (next.tv_nsec >= 1000000000) next.tv_nsec -= 1000000000, next.tv_sec++;
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR) {
    }
    pid_t pid;
    if (posix_spawn(&pid, argv[0], NULL, NULL, argv, environ) != 0) continue;
    waitpid(pid, NULL, 0);
    n++;
  }
  *per_s = (double)n / (now_s() - t0);
  *cpu_ms = n ? (cpu_self_ms() - cpu0) / (double)n : 0;
}

/* The daemon's peak RSS in KiB, from /proc. */
static long peak_rss_kb(pid_t pid) {
  char path[64], text[4096];
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  FILE *f = fopen(path, "r");
  size_t len = f ? fread(text, 1, sizeof text - 1, f) : 0;
  if (f) fclose(f);
  text[len] = '\0';
  const char *hwm = strstr(text, "VmHWM:");
  return hwm ? atol(hwm + 6) : -1;
}

static void sleep_until(double t) {
  double d = t - now_s();
  if (d <= 0) return;
  struct timespec ts = {(time_t)d, (long)((d - (double)(time_t)d) * 1e9)};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

static int cmp_ll(const void *a, const void *b) {
  long long x = *(const long long *)a, y = *(const long long *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: chime-daemon-bench CHIME N [--duration=S] [--floor=S] [--no-floor]\n");
    return 2;
  }
  const char *chime = argv[1];
  long jobs = atol(argv[2]);
  double duration = 60, floor_secs = 10;
  bool floor = true;
  for (int i = 3; i < argc; i++) {
    if (strncmp(argv[i], "--duration=", 11) == 0) duration = atof(argv[i] + 11);
    else if (strncmp(argv[i], "--floor=", 8) == 0) floor_secs = atof(argv[i] + 8);
    else if (strcmp(argv[i], "--no-floor") == 0) floor = false;
  }
  if (jobs < 1 || jobs > 1000000 || duration < 5 || floor_secs <= 0) {
    fprintf(stderr, "chime-daemon-bench: N 1 to 1000000, a duration of 5 s at least, a floor above 0\n");
    return 2;
  }
  double spawns_per_s = 0, cpu_ms_per_spawn = 0;
  double paced_per_s = 0, paced_cpu_ms = 0;
  if (floor) floor_of(floor_secs, &spawns_per_s, &cpu_ms_per_spawn);
  if (floor) paced_of((double)jobs, floor_secs, &paced_per_s, &paced_cpu_ms);
  char dir[] = "/tmp/chime-daemon-bench-XXXXXX";
  if (!mkdtemp(dir)) return 1;
  char conf[128], db[128];
  snprintf(conf, sizeof conf, "%s/jobs.conf", dir);
  snprintf(db, sizeof db, "%s/history.db", dir);
  FILE *f = fopen(conf, "w");
  if (!f) return 1;
  fprintf(f, "[chime]\ndb = %s\n[defaults]\nevery = 1s\nspread = 1s\ncommand = /bin/true\n", db);
  for (long i = 0; i < jobs; i++) fprintf(f, "[job j%ld]\n", i);
  fclose(f);
  chmod(conf, 0644);
  int devnull = open("/dev/null", 1);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(devnull, 2);
    execl(chime, chime, "run", conf, (char *)NULL);
    _exit(127);
  }
  /* The window measured: whole seconds from 3 s after the start (the
   * config read, the history opened, every job's first tick placed) to 1 s
   * before the stop (a run started then may not be on record yet).  Each
   * job has one tick a second, so N of them each second are due. */
  double t0 = now_s();
  struct timespec real;
  clock_gettime(CLOCK_REALTIME, &real);
  long long lo = ((long long)real.tv_sec + 3) * 1000000000LL + real.tv_nsec;
  long window = (long)duration - 4;
  long long hi = lo + (long long)window * 1000000000LL;
  sleep_until(t0 + 3);
  long long cpu0 = procstat_cpu_ticks(pid);
  sleep_until(t0 + 3 + (double)window);
  long long cpu1 = procstat_cpu_ticks(pid);
  double cpu_s = cpu0 < 0 || cpu1 < 0 ? 0 : (double)(cpu1 - cpu0) / (double)sysconf(_SC_CLK_TCK);
  long rss_kb = peak_rss_kb(pid);
  sleep_until(t0 + 4 + (double)window);
  kill(pid, SIGTERM);
  waitpid(pid, NULL, 0);
  sqlite3 *h;
  long long runs = 0, skipped = 0, *late = NULL;
  if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(h, "SELECT late FROM runs WHERE outcome != 'skipped' AND scheduled >= ?1 AND scheduled < ?2",
                           -1, &st, NULL) == SQLITE_OK) {
      sqlite3_bind_int64(st, 1, lo), sqlite3_bind_int64(st, 2, hi);
      size_t cap = 1024;
      late = malloc(cap * sizeof *late);
      while (late && sqlite3_step(st) == SQLITE_ROW) {
        if ((size_t)runs == cap) late = realloc(late, (cap *= 2) * sizeof *late);
        if (late) late[runs++] = sqlite3_column_int64(st, 0);
      }
      sqlite3_finalize(st);
    }
    if (sqlite3_prepare_v2(h,
                           "SELECT coalesce(sum(skipped), 0) FROM runs WHERE outcome = 'skipped'"
                           " AND scheduled >= ?1 AND scheduled < ?2",
                           -1, &st, NULL) == SQLITE_OK) {
      sqlite3_bind_int64(st, 1, lo), sqlite3_bind_int64(st, 2, hi);
      if (sqlite3_step(st) == SQLITE_ROW) skipped = sqlite3_column_int64(st, 0);
      sqlite3_finalize(st);
    }
    sqlite3_close(h);
  }
  qsort(late, (size_t)runs, sizeof *late, cmp_ll);
  long long p50 = runs ? late[runs / 2] : 0, p99 = runs ? late[runs * 99 / 100] : 0;
  long long due = (long long)jobs * window;
  printf("{\"impl\":\"chime\",\"workload\":\"daemon\",\"n\":%ld,\"duration_s\":%.1f,\"window_s\":%ld,\"runs\":%lld,"
         "\"due\":%lld,\"skipped\":%lld,\"cpu_s\":%.3f,\"cpu_ms_per_run\":%.3f,\"late_p50_us\":%lld,"
         "\"late_p99_us\":%lld,\"rss_kb\":%ld",
         jobs, duration, window, runs, due, skipped, cpu_s, runs ? cpu_s * 1e3 / (double)runs : 0, p50 / 1000, p99 / 1000,
         rss_kb);
  if (floor)
    printf(",\"spawns_per_s\":%.0f,\"cpu_ms_per_spawn\":%.3f,\"paced_spawns_per_s\":%.0f,\"paced_cpu_ms_per_spawn\":%.3f",
           spawns_per_s, cpu_ms_per_spawn, paced_per_s, paced_cpu_ms);
  printf("}\n");
  free(late);
  char cmd[256];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd) != 0) return 1;
  return 0;
}
