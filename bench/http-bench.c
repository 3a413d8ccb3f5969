/* http-bench - the chime command's HTTP endpoint under load, measured on
 * the real daemon (a benchmark, not a timed test: it prints what it
 * measured, one JSON line per workload, as chime-bench does).
 *
 *   http-bench [scale|lateness|all] [--jobs=N] [--seconds=S] [--rate=R]
 *
 *   scale     N jobs (10,000) of `true`, every hour, each run once at the
 *             start, so that each has a last run and its histograms
 *             counts; then 20 GETs each of /metrics and /api/jobs, one
 *             after another: the time to the whole answer (p50, max),
 *             the daemon's CPU time per answer, and its size.
 *   lateness  one job of `true` every 100 ms, history on, S seconds (20)
 *             unscraped, then S seconds with R scrapes of /metrics a
 *             second (50) from another thread; each run's lateness (its
 *             start against its tick) read from the history: p50, p99,
 *             max of each, and the p99's difference.
 *
 * The chime binary is CHIME_BIN (the environment), else the one built
 * beside this program.
 */
#include "bench.h"
#include "../tests/procstat.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

extern char **environ;

static int n_jobs = 10000, rate = 50;
static double seconds = 20;

static void die(const char *what) {
  fprintf(stderr, "http-bench: %s: %s\n", what, strerror(errno));
  exit(1);
}

static const char *chime_bin(void) {
  const char *bin = getenv("CHIME_BIN");
  return bin && *bin ? bin : CHIME_BUILT;
}

/* A chime running `conf`, its log in `log`. */
struct daemon {
  pid_t pid;
  int port;
};

static void start_daemon(struct daemon *d, const char *conf, const char *db, const char *log) {
  char *argv[] = {(char *)chime_bin(), "run", (char *)conf, "--db", (char *)db, NULL};
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 2, log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  if (posix_spawn(&d->pid, argv[0], &fa, NULL, argv, environ) != 0) die("posix_spawn chime");
  posix_spawn_file_actions_destroy(&fa);
  for (int i = 0; i < 600; i++) { /* a minute for its url= line */
    FILE *f = fopen(log, "r");
    char line[1024];
    while (f && fgets(line, sizeof line, f)) {
      const char *u = strstr(line, "url=http://127.0.0.1:");
      if (u) d->port = atoi(u + strlen("url=http://127.0.0.1:"));
    }
    if (f) fclose(f);
    if (d->port) return;
    usleep(100000);
  }
  fprintf(stderr, "http-bench: chime did not say where it serves (see %s)\n", log);
  exit(1);
}

static void stop_daemon(struct daemon *d) {
  kill(d->pid, SIGINT);
  waitpid(d->pid, NULL, 0);
}

/* GET path: the answer's size; *ok when its status is 200. */
static size_t get(int port, const char *path, bool *ok) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) die("connect");
  char req[256];
  int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", path);
  if (write(fd, req, (size_t)n) != n) die("write");
  static char buf[1 << 20];
  size_t total = 0;
  ssize_t got;
  bool first = true;
  while ((got = read(fd, buf, sizeof buf)) > 0) {
    if (first) *ok = strncmp(buf, "HTTP/1.1 200", 12) == 0, first = false;
    total += (size_t)got;
  }
  close(fd);
  return total;
}

/* The daemon's CPU time so far (user + system, every thread), ns. */
static int64_t daemon_cpu(pid_t pid) {
  long long ticks = procstat_cpu_ticks(pid);
  return ticks < 0 ? 0 : (int64_t)ticks * (1000000000LL / sysconf(_SC_CLK_TCK));
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

/* The machine's load average over the last minute: the wall times above
 * are only as good as the cores this benchmark had. */
static double load(void) {
  double l = 0;
  FILE *f = fopen("/proc/loadavg", "r");
  if (f && fscanf(f, "%lf", &l) != 1) l = 0;
  if (f) fclose(f);
  return l;
}

static void scale(const char *dir) {
  char conf[512], log[512];
  snprintf(conf, sizeof conf, "%s/scale.conf", dir);
  snprintf(log, sizeof log, "%s/scale.log", dir);
  FILE *f = fopen(conf, "w");
  if (!f) die(conf);
  fprintf(f, "[chime]\nhttp = 127.0.0.1:0\n");
  for (int i = 0; i < n_jobs; i++) fprintf(f, "[job job-%05d]\nevery = 1h\nstart_now = true\ncommand = true\n", i);
  fclose(f);
  struct daemon d = {0};
  int64_t t0 = mono_ns();
  start_daemon(&d, conf, "none", log);
  /* until every job has run once: its runs in progress are none, and its
   * ok runs are N */
  bool ok = false;
  for (;;) {
    FILE *lf = fopen(log, "r");
    long ends = 0;
    char line[1024];
    while (lf && fgets(line, sizeof line, lf)) ends += strstr(line, "event=end ") != NULL;
    if (lf) fclose(lf);
    if (ends >= n_jobs) break;
    if (mono_ns() - t0 > 600 * 1000000000LL) {
      fprintf(stderr, "http-bench: only %ld of %d jobs ran in 10 minutes\n", ends, n_jobs);
      break;
    }
    usleep(500000);
  }
  double setup = (double)(mono_ns() - t0) / 1e9;
  static const char *const paths[] = {"/metrics", "/api/jobs"};
  for (int p = 0; p < 2; p++) {
    enum { N = 20 };
    int64_t t[N];
    size_t bytes = 0;
    int64_t cpu0 = daemon_cpu(d.pid);
    for (int i = 0; i < N; i++) {
      int64_t s = mono_ns();
      bytes = get(d.port, paths[p], &ok);
      t[i] = mono_ns() - s;
      if (!ok) fprintf(stderr, "http-bench: %s did not answer 200\n", paths[p]);
    }
    int64_t cpu = daemon_cpu(d.pid) - cpu0;
    qsort(t, N, sizeof *t, cmp_i64);
    struct jline j;
    j_begin(&j, p ? "http-api-jobs" : "http-metrics");
    j_int(&j, "n", n_jobs);
    j_int(&j, "requests", N);
    j_num(&j, "answer_p50_ms", (double)t[N / 2] / 1e6, 2);
    j_num(&j, "answer_max_ms", (double)t[N - 1] / 1e6, 2);
    j_num(&j, "daemon_cpu_ms_per_answer", (double)cpu / N / 1e6, 1);
    j_int(&j, "bytes", (int64_t)bytes);
    j_num(&j, "load_avg", load(), 1);
    j_num(&j, "setup_s", setup, 1);
    j_str(&j, "note", "time to the whole answer over loopback, one request at a time, every job run once; "
                      "the daemon's CPU (user + system, its threads) per answer");
    j_end(&j, stdout);
  }
  stop_daemon(&d);
}

struct scraper {
  int port;
  volatile bool stop;
  long scrapes, failed;
};

static void *scrape(void *arg) {
  struct scraper *s = arg;
  int64_t period = 1000000000LL / rate, next = mono_ns();
  while (!s->stop) {
    bool ok = false;
    get(s->port, "/metrics", &ok);
    s->scrapes++, s->failed += !ok;
    next += period;
    int64_t wait = next - mono_ns();
    if (wait > 0) nanosleep(&(struct timespec){.tv_sec = wait / 1000000000, .tv_nsec = wait % 1000000000}, NULL);
  }
  return NULL;
}

/* One lateness run: p50, p99, max in us of the job's runs. */
static void lateness_run(const char *dir, bool scraped, int64_t out[3], long *runs, long *scrapes, int64_t *cpu) {
  char conf[512], log[512], db[512];
  snprintf(conf, sizeof conf, "%s/late.conf", dir);
  snprintf(log, sizeof log, "%s/late-%d.log", dir, scraped);
  snprintf(db, sizeof db, "%s/late-%d.db", dir, scraped);
  unlink(db);
  FILE *f = fopen(conf, "w");
  if (!f) die(conf);
  fprintf(f, "[chime]\nhttp = 127.0.0.1:0\n[job tick]\nevery = 100ms\ncommand = true\n"
             "[job other]\nevery = 1s\ncommand = true\n");
  fclose(f);
  struct daemon d = {0};
  start_daemon(&d, conf, db, log);
  struct scraper s = {.port = d.port};
  pthread_t th;
  int64_t cpu0 = daemon_cpu(d.pid);
  if (scraped && pthread_create(&th, NULL, scrape, &s) != 0) die("pthread_create");
  usleep((useconds_t)(seconds * 1e6));
  s.stop = true;
  if (scraped) pthread_join(th, NULL);
  *cpu = daemon_cpu(d.pid) - cpu0;
  stop_daemon(&d);
  *scrapes = s.scrapes;
  sqlite3 *h;
  sqlite3_stmt *st;
  if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(h, "SELECT late FROM runs WHERE job = 'tick' AND outcome = 'ok' ORDER BY late", -1, &st,
                         NULL) != SQLITE_OK) {
    fprintf(stderr, "http-bench: %s: %s\n", db, sqlite3_errmsg(h));
    exit(1);
  }
  int64_t *late = NULL;
  long n = 0;
  while (sqlite3_step(st) == SQLITE_ROW) {
    late = realloc(late, (size_t)(n + 1) * sizeof *late);
    late[n++] = sqlite3_column_int64(st, 0);
  }
  sqlite3_finalize(st);
  sqlite3_close(h);
  if (n == 0) {
    fprintf(stderr, "http-bench: no runs on record in %s\n", db);
    exit(1);
  }
  out[0] = late[n / 2] / 1000, out[1] = late[(long)((double)n * 0.99)] / 1000, out[2] = late[n - 1] / 1000;
  *runs = n;
  free(late);
}

static void lateness(const char *dir) {
  int64_t quiet[3], loud[3];
  long runs_q, runs_l, scrapes_q, scrapes_l;
  int64_t cpu_q, cpu_l;
  lateness_run(dir, false, quiet, &runs_q, &scrapes_q, &cpu_q);
  lateness_run(dir, true, loud, &runs_l, &scrapes_l, &cpu_l);
  struct jline j;
  j_begin(&j, "http-scrape-lateness");
  j_int(&j, "interval_ms", 100);
  j_num(&j, "duration_s", seconds, 0);
  j_int(&j, "scrapes_per_s", rate);
  j_int(&j, "scrapes", scrapes_l);
  j_int(&j, "runs_unscraped", runs_q);
  j_int(&j, "runs_scraped", runs_l);
  j_int(&j, "late_p50_us_unscraped", quiet[0]);
  j_int(&j, "late_p99_us_unscraped", quiet[1]);
  j_int(&j, "late_max_us_unscraped", quiet[2]);
  j_int(&j, "late_p50_us", loud[0]);
  j_int(&j, "late_p99_us", loud[1]);
  j_int(&j, "late_max_us", loud[2]);
  j_int(&j, "late_p99_delta_us", loud[1] - quiet[1]);
  j_num(&j, "daemon_cpu_us_per_scrape", scrapes_l ? (double)(cpu_l - cpu_q) / (double)scrapes_l / 1e3 : 0, 0);
  j_num(&j, "load_avg", load(), 1);
  j_str(&j, "note", "lateness of a 100 ms job's runs (start against tick), from the history");
  j_end(&j, stdout);
}

int main(int argc, char **argv) {
  const char *what = "all";
  for (int i = 1; i < argc; i++) {
    if (strncmp(argv[i], "--jobs=", 7) == 0) n_jobs = atoi(argv[i] + 7);
    else if (strncmp(argv[i], "--seconds=", 10) == 0) seconds = atof(argv[i] + 10);
    else if (strncmp(argv[i], "--rate=", 7) == 0) rate = atoi(argv[i] + 7);
    else if (argv[i][0] != '-') what = argv[i];
    else {
      fprintf(stderr, "usage: http-bench [scale|lateness|all] [--jobs=N] [--seconds=S] [--rate=R]\n");
      return 2;
    }
  }
  if (n_jobs < 1 || n_jobs > 1000000 || seconds < 1 || seconds > 3600 || rate < 1 || rate > 10000) {
    fprintf(stderr, "http-bench: --jobs 1 to 1000000, --seconds 1 to 3600, --rate 1 to 10000\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  char dir[] = "/tmp/chime-http-bench-XXXXXX";
  if (!mkdtemp(dir)) die("mkdtemp");
  if (strcmp(what, "scale") == 0 || strcmp(what, "all") == 0) scale(dir);
  if (strcmp(what, "lateness") == 0 || strcmp(what, "all") == 0) lateness(dir);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd) != 0) fprintf(stderr, "http-bench: %s left behind\n", dir);
  return 0;
}
