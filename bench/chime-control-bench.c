/* chime-control-bench - the control socket and the history's pruning, for
 * issue 16's figures (not a timed test: a machine shared with other work
 * would make one flaky).
 *
 *   chime-control-bench status [N]    the real daemon with N jobs (default
 *                                     10,000): how long `chime status` and
 *                                     `chime status --json` take, from
 *                                     connect to the answer's last byte
 *   chime-control-bench prune [ROWS]  a history of ROWS rows (default
 *                                     300,000) over its bound of 100, pruned
 *                                     by the recorder as the daemon prunes:
 *                                     each step's time on the writer's
 *                                     thread, and how late a task of the
 *                                     loop waking every millisecond ran
 *                                     meanwhile, and the most CPU the loop's
 *                                     thread spent between two of its wakes
 *                                     (the loop held up, load or not)
 *
 * Each prints the JSON result line of ../shared/bench/SPEC.md's form.
 */
#include "bench.h"

#include <chime.h>
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "control.h"
#include "history.h"
#include "recorder.h"

static _Noreturn void die(const char *what) {
  fprintf(stderr, "chime-control-bench: %s\n", what);
  exit(1);
}

static int cmp_ns(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

/* ---- status ---------------------------------------------------------------------------------- */

/* Times `reps` requests: min, p50 and max into ms[0..2]; the answer's size. */
static size_t time_requests(const char *sock, const char *request, int reps, double ms[3]) {
  int64_t t[64];
  size_t size = 0;
  for (int i = 0; i < reps; i++) {
    FILE *out = fopen("/dev/null", "w"); /* as chime status > /dev/null */
    if (!out) die("/dev/null");
    int64_t t0 = mono_ns();
    int rc = control_request(sock, request, out, stderr);
    fflush(out);
    t[i] = mono_ns() - t0;
    fclose(out);
    if (rc != 0) die("a status request failed");
  }
  char *text = NULL;
  FILE *out = open_memstream(&text, &size); /* once more, for its size */
  if (!out || control_request(sock, request, out, stderr) != 0 || fclose(out) != 0) die("a status request failed");
  free(text);
  qsort(t, (size_t)reps, sizeof t[0], cmp_ns);
  ms[0] = (double)t[0] / 1e6, ms[1] = (double)t[reps / 2] / 1e6, ms[2] = (double)t[reps - 1] / 1e6;
  return size;
}

static int status_bench(long n) {
  char dir[] = "/tmp/chime-control-bench-XXXXXX", conf[128], db[128], sock[160];
  if (!mkdtemp(dir)) die("mkdtemp");
  snprintf(conf, sizeof conf, "%s/c.conf", dir);
  snprintf(db, sizeof db, "%s/h.db", dir);
  snprintf(sock, sizeof sock, "%s.sock", db);
  FILE *f = fopen(conf, "w");
  if (!f) die("the config");
  for (long i = 0; i < n; i++)
    fprintf(f, "[job job-%06ld]\nevery = 1h\ncommand = true\n", i);
  fclose(f);
  pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0) {
    int null = open("/dev/null", O_WRONLY);
    dup2(null, 2);
    execl(CHIME_CLI_PATH, "chime", "run", conf, "--db", db, (char *)NULL);
    _exit(127);
  }
  int64_t t0 = mono_ns();
  FILE *sink = fopen("/dev/null", "w");
  while (control_request(sock, "status", sink, sink) != 0) { /* until it serves */
    if (mono_ns() - t0 > 60 * (int64_t)1000000000) die("the daemon did not start within a minute");
    usleep(20000);
  }
  fclose(sink);
  double table[3], json[3];
  size_t table_size = time_requests(sock, "status", 30, table);
  size_t json_size = time_requests(sock, "status json", 30, json);
  kill(pid, SIGTERM);
  waitpid(pid, NULL, 0);
  struct jline j;
  j_begin(&j, "status");
  j_int(&j, "n", n);
  j_num(&j, "table_min_ms", table[0], 2), j_num(&j, "table_p50_ms", table[1], 2);
  j_num(&j, "table_max_ms", table[2], 2);
  j_int(&j, "table_bytes", (int64_t)table_size);
  j_num(&j, "json_min_ms", json[0], 2), j_num(&j, "json_p50_ms", json[1], 2);
  j_num(&j, "json_max_ms", json[2], 2);
  j_int(&j, "json_bytes", (int64_t)json_size);
  j_end(&j, stdout);
  char cmd[256];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  return system(cmd) == 0 ? 0 : 1;
}

/* ---- prune ------------------------------------------------------------------------------------ */

struct prune_run {
  const char *db;
  long rows;
  struct recorder *rec;
  bool done;
  int64_t late_max, late_sum, cpu_max;
  long wakes;
};

static int64_t thread_cpu_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* A task of the loop that wakes every millisecond: how late it wakes is
 * how long the loop was held, or the machine did not run it (other
 * processes); the CPU time of the loop's thread from one wake to the next
 * is what the loop itself spent, whatever the machine's load. */
static int ticker(void *arg) {
  struct prune_run *p = arg;
  int64_t cpu = thread_cpu_ns();
  while (!p->done) {
    chime_ns want = chime_now() + CHIME_MS(1);
    if (chime_sleep_until(want) != 0) break;
    int64_t late = chime_now() - want, now_cpu = thread_cpu_ns();
    p->late_sum += late, p->wakes++;
    if (late > p->late_max) p->late_max = late;
    if (now_cpu - cpu > p->cpu_max) p->cpu_max = now_cpu - cpu;
    cpu = now_cpu;
  }
  return 0;
}

static int prune_main(void *arg) {
  struct prune_run *p = arg;
  chime_task t;
  if (recorder_new(p->db, false, &p->rec) != 0 || chime_spawn(ticker, p, &t) != 0) die("out of memory");
  struct history_bounds b = {.max_runs = 100};
  recorder_prune(p->rec, "big", &b); /* steps follow one another while rows are left */
  recorder_flush(p->rec, CHIME_NEVER);
  p->done = true;
  chime_join(t, NULL);
  recorder_free(p->rec);
  return 0;
}

static int prune_bench(long rows) {
  char dir[] = "/tmp/chime-control-bench-XXXXXX", db[128], err[512], sql[512];
  if (!mkdtemp(dir)) die("mkdtemp");
  snprintf(db, sizeof db, "%s/h.db", dir);
  struct history *h;
  if (history_open(db, false, &h, err, sizeof err) != 0) die(err);
  history_close(h);
  sqlite3 *s;
  snprintf(sql, sizeof sql,
           "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < %ld)"
           " INSERT INTO runs (job, scheduled, started, ended, outcome, exit_code, late, stdout_tail, stderr_tail)"
           " SELECT 'big', x * 1000000000, x * 1000000000, x * 1000000000 + 5000000, 'ok', 0, 0, randomblob(256), x''"
           " FROM c",
           rows);
  if (sqlite3_open(db, &s) != SQLITE_OK || sqlite3_exec(s, sql, NULL, NULL, NULL) != SQLITE_OK) die("the history");
  /* each step alone, as the writer's thread runs it */
  int64_t steps[4096];
  int nsteps = 0;
  if (history_open(db, false, &h, err, sizeof err) != 0) die(err);
  struct history_bounds b = {.max_runs = 100};
  for (int k = 0; k < 40; k++) {
    history_begin(h);
    int64_t t0 = mono_ns();
    int n = history_prune(h, "big", &b, 0, RECORDER_PRUNE_STEP);
    history_commit(h);
    steps[nsteps++] = mono_ns() - t0;
    if (n < RECORDER_PRUNE_STEP) break;
  }
  history_close(h);
  qsort(steps, (size_t)nsteps, sizeof steps[0], cmp_ns);
  /* the rest through the recorder, while the loop's ticker runs */
  struct prune_run p = {.db = db, .rows = rows};
  int64_t t0 = mono_ns();
  if (chime_run(prune_main, &p, NULL, NULL) != 0) die("the loop");
  double wall = (double)(mono_ns() - t0) / 1e9;
  sqlite3_stmt *st;
  long left = -1;
  if (sqlite3_prepare_v2(s, "SELECT count(*) FROM runs", -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
    left = (long)sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(s);
  struct jline j;
  j_begin(&j, "prune");
  j_int(&j, "rows", rows);
  j_int(&j, "left", left);
  j_int(&j, "step_rows", RECORDER_PRUNE_STEP);
  j_num(&j, "step_p50_ms", (double)steps[nsteps / 2] / 1e6, 2);
  j_num(&j, "step_max_ms", (double)steps[nsteps - 1] / 1e6, 2);
  j_num(&j, "wall_s", wall, 2);
  j_int(&j, "loop_wakes", p.wakes);
  j_num(&j, "loop_late_mean_ms", p.wakes ? (double)p.late_sum / (double)p.wakes / 1e6 : 0, 3);
  j_num(&j, "loop_late_max_ms", (double)p.late_max / 1e6, 3);
  j_num(&j, "loop_cpu_max_ms", (double)p.cpu_max / 1e6, 3);
  j_end(&j, stdout);
  char cmd[256];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  return system(cmd) == 0 && left == 100 ? 0 : 1;
}

int main(int argc, char **argv) {
  if (argc < 2) die("usage: chime-control-bench status [N] | prune [ROWS]");
  long n = argc > 2 ? strtol(argv[2], NULL, 10) : 0;
  if (strcmp(argv[1], "status") == 0) return status_bench(n > 0 ? n : 10000);
  if (strcmp(argv[1], "prune") == 0) return prune_bench(n > 0 ? n : 300000);
  die("usage: chime-control-bench status [N] | prune [ROWS]");
}
