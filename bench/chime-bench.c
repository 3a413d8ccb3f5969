/* chime-bench - chime on the benchmark workloads, printing the JSON result
 * line the peer programs print, so that one run can compare them.
 *
 *   chime-bench WORKLOAD [N] [--duration=S] [--window=NS]
 *
 * Workloads (the shared benchmark specification defines the first five):
 *   seed      the tutorial's program with chime_every (stdout: its six
 *             lines; the result line goes to stderr)
 *   accuracy  one job, 10 ms, 500 fires: lateness and drift
 *   scale     N jobs of 1 s, first fires spread over a second, 10 s
 *   churn     create N jobs (1 s + 0..1 s), then cancel every one
 *   suspend   as scale, each target sleeping 10 ms before it returns
 *   switch    a yield round trip between two tasks, N round trips
 *   spawn     spawn + join of an empty task, N times
 *   pingpong  N 1-byte messages between two tasks over two pipes
 *             (bench/pingpong_libuv.c: the same in libuv)
 *   cron-parse   N parses of cron expressions
 *   cron-next    N next fire times per expression, in Europe/Berlin
 *   floor     what this machine charges every implementation of scale
 *             (N fires a second) and churn, whatever its scheduler: a
 *             clock read, a wake-up, first touch of fresh memory
 *
 * Lateness is taken at the top of each call of the target, against the
 * ideal grid: chime_tick() gives the tick a run serves, and the jobs'
 * ticks are the specification's ideal times.
 *
 * --window=NS gives scale and suspend jobs a coalescing window: a run may
 * start up to NS late, on a boundary shared with other jobs, so that the
 * loop wakes once for many.  Default 500 us (the peers wait in whole
 * milliseconds); --window=0 is precise, which at a million fires a second
 * means a wake-up for each one or two, and a busy loop.
 */
#include "bench.h"

#include <chime.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>

static long n_arg;
static double duration_s = 10.0;
static bool duration_given;
static chime_ns window_ns = CHIME_US(500);
static struct hist H;
static uint64_t fires;

static void usage(void) {
  fprintf(stderr, "usage: chime-bench seed|accuracy|scale|churn|suspend|switch|spawn|pingpong|cron-parse|cron-next|"
                  "floor [N] [--duration=S] [--window=NS]\n");
  exit(2);
}

static void fail(const char *what, int rc) {
  fprintf(stderr, "chime-bench: %s: %s\n", what, chime_strerror(rc));
  exit(1);
}

/* Prints a result line for n operations that took dt ns. */
static void report_per_op(const char *workload, long n, int64_t dt, const char *note) {
  struct jline j;
  j_begin(&j, workload);
  j_int(&j, "n", n);
  j_num(&j, "wall_s", (double)dt / 1e9, 3);
  j_num(&j, "ns_per_op", (double)dt / (double)n, 1);
  j_str(&j, "note", note);
  j_end(&j, stdout);
}

/* Records the lateness of the run calling it. */
static void record(void) {
  chime_ns tick;
  int64_t now = mono_ns();
  if (chime_tick(&tick) == 0) hist_add(&H, now - tick);
  fires++;
}

/* ---- seed ----------------------------------------------------------------- */

static int work(void *arg) {
  (void)arg;
  printf(">Doing work:!\n");
  fflush(stdout);
  return 0;
}

static int seed_main(void *arg) {
  (void)arg;
  printf("Main starting\n");
  fflush(stdout);
  /* The tutorial's periodic() sleeps an interval after each run: fixed
   * delay.  (At a fixed rate the fifth tick would fall a few hundred
   * nanoseconds before main's wake-up, main having read the clock after
   * chime_every did, and print a fifth line.) */
  chime_every_opts o = {.schedule = CHIME_FIXED_DELAY};
  int rc = chime_every(CHIME_SEC(1), work, NULL, &o, NULL); /* in the background */
  if (rc) return rc;
  chime_sleep(CHIME_SEC(5));
  printf("Main done\n");
  fflush(stdout);
  return 0; /* the shutdown cancels the job */
}

static int run_seed(int64_t t_entry) {
  int rc = chime_run(seed_main, NULL, NULL, NULL);
  struct jline j;
  j_begin(&j, "seed");
  j_num(&j, "wall_s", (double)(mono_ns() - t_entry) / 1e9, 3);
  j_num(&j, "cpu_s", (double)cpu_ns() / 1e9, 3);
  j_int(&j, "rss_kb", peak_rss_kb());
  j_end(&j, stderr);
  return rc != 0;
}

/* ---- accuracy -------------------------------------------------------------- */

/* The target of accuracy and scale: its lateness recorded. */
static int record_target(void *arg) {
  (void)arg;
  record();
  return 0;
}

static int accuracy_main(void *arg) {
  (void)arg;
  const chime_ns iv = CHIME_MS(10);
  chime_every_opts o = {.start = CHIME_START_AT, .start_at = chime_now() + iv, .max_runs = 500};
  chime_task job;
  int rc = chime_every(iv, record_target, NULL, &o, &job);
  if (rc) fail("chime_every", rc);
  chime_join(job, NULL);
  char note[160] = "";
  if (H.early) snprintf(note, sizeof note, "%llu fires before the ideal time", (unsigned long long)H.early);
  struct jline j;
  j_begin(&j, "accuracy");
  j_int(&j, "n", 1);
  j_int(&j, "interval_ms", 10);
  j_int(&j, "fires", (int64_t)H.n);
  j_lateness(&j, &H);
  j_int(&j, "drift_us", H.last_ns / 1000);
  if (note[0]) j_str(&j, "note", note);
  j_end(&j, stdout);
  return 0;
}

/* ---- scale and suspend ---------------------------------------------------- */

static int suspend_target(void *arg) {
  (void)arg;
  record();
  return chime_sleep(CHIME_MS(10));
}

static int many_jobs(const char *workload, chime_fn target) {
  long n = n_arg;
  int64_t rss_before = rss_bytes();
  int64_t t0 = mono_ns();
  chime_ns c0 = chime_now(); /* the same clock: both are CLOCK_MONOTONIC */
  chime_every_opts o = {.start = CHIME_START_AT, .window = window_ns};
  for (long i = 0; i < n; i++) {
    o.start_at = c0 + CHIME_SEC(1) + (chime_ns)((double)i * 1e9 / (double)n);
    int rc = chime_every(CHIME_SEC(1), target, NULL, &o, NULL);
    if (rc) fail("chime_every", rc);
  }
  int64_t t_setup = mono_ns();
  int64_t rss_after = rss_bytes();
  int64_t cpu0 = cpu_ns();
  chime_sleep_until(t_setup - t0 + c0 + (chime_ns)(duration_s * 1e9));
  int64_t cpu = cpu_ns() - cpu0, wall = mono_ns() - t_setup;

  char note[256] = "";
  size_t len = 0;
  if (H.early)
    len += (size_t)snprintf(note, sizeof note, "%llu fires before the ideal time", (unsigned long long)H.early);
  if (window_ns)
    snprintf(note + len, sizeof note - len, "%sjobs with a coalescing window of %lld us", len ? "; " : "",
             (long long)(window_ns / 1000));
  struct jline j;
  j_begin(&j, workload);
  j_int(&j, "n", n);
  j_int(&j, "interval_ms", 1000);
  j_num(&j, "duration_s", duration_s, 1);
  j_int(&j, "fires", (int64_t)fires);
  j_num(&j, "wall_s", (double)wall / 1e9, 3);
  j_num(&j, "cpu_s", (double)cpu / 1e9, 3);
  j_int(&j, "ns_cpu_per_fire", fires ? cpu / (int64_t)fires : 0);
  j_int(&j, "rss_kb", peak_rss_kb());
  j_int(&j, "bytes_per_task", (rss_after - rss_before) / n);
  j_lateness(&j, &H);
  j_num(&j, "setup_s", (double)(t_setup - t0) / 1e9, 3);
  if (note[0]) j_str(&j, "note", note);
  j_end(&j, stdout);
  fflush(stdout);
  _exit(0); /* the measurement is done: no need to cancel a million jobs one by one */
}

static int scale_main(void *arg) {
  (void)arg;
  return many_jobs("scale", record_target);
}

static int suspend_main(void *arg) {
  (void)arg;
  return many_jobs("suspend", suspend_target);
}

/* ---- churn ----------------------------------------------------------------- */

static int churn_target(void *arg) {
  (void)arg;
  fprintf(stderr, "churn: a job fired\n");
  return 0;
}

static int churn_main(void *arg) {
  (void)arg;
  long n = n_arg;
  chime_task *jobs = malloc(sizeof *jobs * (size_t)n);
  if (!jobs) fail("malloc", -ENOMEM);
  uint64_t x = 0x9e3779b97f4a7c15ull;
  int64_t t_a = mono_ns();
  chime_ns c0 = chime_now(); /* read once, as the peers' loops freeze their time during setup */
  chime_every_opts o = {.start = CHIME_START_AT};
  for (long i = 0; i < n; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    chime_ns iv = CHIME_SEC(1) + (chime_ns)(x % 1000000000ull);
    o.start_at = c0 + iv;
    int rc = chime_every(iv, churn_target, NULL, &o, &jobs[i]);
    if (rc) fail("chime_every", rc);
  }
  int64_t t_b = mono_ns();
  for (long i = 0; i < n; i++) {
    chime_cancel(jobs[i]);
    chime_detach(jobs[i]);
  }
  int64_t t_c = mono_ns();
  char note[200];
  snprintf(note, sizeof note,
           "create %.0f ns/op, cancel %.0f ns/op; create = chime_every, cancel = chime_cancel + chime_detach "
           "(the job's record freed)",
           (double)(t_b - t_a) / (double)n, (double)(t_c - t_b) / (double)n);
  struct jline j;
  j_begin(&j, "churn");
  j_int(&j, "n", n);
  j_num(&j, "wall_s", (double)(t_c - t_a) / 1e9, 3);
  j_num(&j, "ns_per_op", (double)(t_c - t_a) / (2.0 * (double)n), 1);
  j_str(&j, "note", note);
  j_end(&j, stdout);
  free(jobs);
  return 0;
}

/* ---- switch and spawn ------------------------------------------------------- */

static int ping(void *arg) {
  long n = *(long *)arg;
  for (long i = 0; i < n; i++)
    chime_yield();
  return 0;
}

static int switch_main(void *arg) {
  (void)arg;
  long n = n_arg;
  chime_task a, b;
  chime_spawn(ping, &n, &a);
  chime_spawn(ping, &n, &b);
  int64_t t0 = mono_ns();
  chime_join(a, NULL);
  chime_join(b, NULL);
  report_per_op("switch", n, mono_ns() - t0, "yield round trip between two tasks (two task switches)");
  return 0;
}

static int empty(void *arg) {
  (void)arg;
  return 0;
}

static int spawn_main(void *arg) {
  (void)arg;
  long n = n_arg;
  int64_t t0 = mono_ns();
  for (long i = 0; i < n; i++) {
    chime_task t;
    if (chime_spawn(empty, NULL, &t) != 0 || chime_join(t, NULL) != 0) return -1;
  }
  report_per_op("spawn", n, mono_ns() - t0, "spawn + join of an empty task");
  return 0;
}

/* ---- calendar ------------------------------------------------------------------ */

static const char *const cron_exprs[] = {"30 2 * * *", "*/15 9-17 * * mon-fri", "0 0 1 1 *",
                                         "0 0 29 2 *", "0 30 4 1,15 * 5",       "@hourly"};
#define NCRON (sizeof cron_exprs / sizeof cron_exprs[0])

/* chime_cron_parse of each expression in turn, N times in all. */
static int cron_parse_main(void) {
  int64_t t0 = mono_ns();
  for (long i = 0; i < n_arg; i++) {
    chime_cron_expr *c;
    int rc = chime_cron_parse(cron_exprs[i % NCRON], &c, NULL);
    if (rc) fail("chime_cron_parse", rc);
    chime_cron_free(c);
  }
  report_per_op("cron-parse", n_arg, mono_ns() - t0, "parse + free of a cron expression (six kinds, in turn)");
  return 0;
}

/* chime_cron_next, each expression walking its fire times in Europe/Berlin
 * from 2026-01-01: N calls per expression, one line per expression. */
static int cron_next_main(void) {
  chime_tz *tz;
  int rc = chime_tz_load("Europe/Berlin", &tz);
  if (rc) fail("chime_tz_load", rc);
  for (size_t e = 0; e < NCRON; e++) {
    chime_cron_expr *c;
    if ((rc = chime_cron_parse(cron_exprs[e], &c, NULL)) != 0) fail("chime_cron_parse", rc);
    long n = n_arg;
    chime_ns t = CHIME_SEC(1767225600); /* 2026-01-01T00:00:00Z */
    int64_t t0 = mono_ns();
    for (long i = 0; i < n; i++) {
      if ((rc = chime_cron_next(c, tz, t, &t)) != 0) { /* the end of time: start again */
        t = CHIME_SEC(1767225600);
        n++;
        if (n > 4 * n_arg) fail("chime_cron_next", rc);
      }
    }
    char note[96];
    snprintf(note, sizeof note, "chime_cron_next of \"%s\", Europe/Berlin, each from the last", cron_exprs[e]);
    report_per_op("cron-next", n, mono_ns() - t0, note);
    chime_cron_free(c);
  }
  chime_tz_free(tz);
  return 0;
}

/* ---- pingpong ---------------------------------------------------------------- */

struct pp_end {
  int in, out;
  long rounds;
};

/* Reads a byte, writes it back, `rounds` times. */
static int pp_echo(void *arg) {
  struct pp_end *e = arg;
  char buf[64]; /* as pingpong_libuv's */
  for (long i = 0; i < e->rounds; i++) {
    int rc = chime_read(e->in, buf, sizeof buf, CHIME_NEVER);
    if (rc != 1) return rc < 0 ? rc : -EIO;
    rc = chime_write_all(e->out, buf, 1, CHIME_NEVER, NULL);
    if (rc) return rc;
  }
  return 0;
}

static int pingpong_main(void *arg) {
  (void)arg;
  int a[2], b[2];
  if (pipe2(a, O_NONBLOCK) || pipe2(b, O_NONBLOCK)) fail("pipe2", -errno);
  for (int i = 0; i < 2; i++) /* registered once, as libuv's uv_read_start does: closed with chime_close */
    if (chime_keep_fd(a[i]) || chime_keep_fd(b[i])) fail("chime_keep_fd", -EBADF);
  long rounds = n_arg / 2;
  struct pp_end pong = {a[0], b[1], rounds};
  chime_task t;
  int rc = chime_spawn(pp_echo, &pong, &t);
  if (rc) fail("chime_spawn", rc);
  int64_t t0 = mono_ns();
  char buf[64] = "x";
  for (long i = 0; i < rounds && rc == 0; i++) {
    rc = chime_write_all(a[1], buf, 1, CHIME_NEVER, NULL);
    if (rc == 0 && (rc = chime_read(b[0], buf, sizeof buf, CHIME_NEVER)) == 1) rc = 0;
  }
  int64_t dt = mono_ns() - t0;
  int prc;
  chime_join(t, &prc);
  if (rc || prc) fail("pingpong", rc ? rc : prc);
  j_pingpong("chime", 2 * rounds, dt, "1-byte messages between two tasks over two pipes");
  for (int i = 0; i < 2; i++) {
    chime_close(a[i]);
    chime_close(b[i]);
  }
  return 0;
}

/* ---- floor ----------------------------------------------------------------- */

/* Sleeps to each of `wakes` instants 1 ms apart and makes `per_wake`
 * fires after each (a clock read, a histogram entry, a count); returns the
 * CPU time that took. */
static int64_t wake_loop(int64_t wakes, long per_wake) {
  int64_t cpu0 = cpu_ns(), next = mono_ns();
  for (int64_t w = 0; w < wakes; w++) {
    next += 1000000;
    struct timespec ts = {.tv_sec = next / 1000000000, .tv_nsec = next % 1000000000};
    int rc;
    while ((rc = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL)) == EINTR) {
    }
    if (rc) fail("clock_nanosleep", -rc);
    for (long k = 0; k < per_wake; k++) {
      hist_add(&H, mono_ns() - next);
      fires++;
    }
  }
  return cpu_ns() - cpu0;
}

/* The machine's costs that no scheduler avoids, in CPU time.  scale at N
 * fires a second with p99 lateness <= 1 ms must wake at least every
 * millisecond, and reads the clock once per fire (the specification's
 * lateness); the floor loop does only that, with an empty scheduler: N /
 * 1000 fires per wake-up.  A wake-up alone is measured with no fires.
 * churn's records are fresh memory: the first write to each 4 KiB page is
 * a page fault, whose cost is measured over 128 MiB (small pages asked
 * for, whatever the system's huge-page setting). */
static int floor_main(void) {
  long per_wake = n_arg / 1000 > 0 ? n_arg / 1000 : 1;
  int64_t wakes = (int64_t)(duration_s * 1000);
  int64_t cpu0 = cpu_ns();
  for (int i = 0; i < 10000000; i++)
    (void)mono_ns(); /* a call into the vDSO: not optimised away */
  double clock_ns = (double)(cpu_ns() - cpu0) / 1e7;

  double wake_ns = (double)wake_loop(wakes, 0) / (double)wakes; /* no fires */
  double fire_ns = (double)wake_loop(wakes, per_wake) / (double)fires;

  size_t size = (size_t)128 << 20;
  char *mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) fail("mmap", -errno);
  madvise(mem, size, MADV_NOHUGEPAGE);
  cpu0 = cpu_ns();
  for (size_t off = 0; off < size; off += 64)
    *(volatile uint64_t *)(mem + off) = off;
  double touch_ns = (double)(cpu_ns() - cpu0) / (double)(size / 128);
  munmap(mem, size);

  struct jline j;
  j_begin(&j, "floor");
  j_int(&j, "n", per_wake * 1000);
  j_num(&j, "clock_ns", clock_ns, 1);
  j_num(&j, "wake_cpu_us", wake_ns / 1e3, 1);
  j_num(&j, "scale_ns_cpu_per_fire", fire_ns, 1);
  j_num(&j, "touch_ns_per_128_bytes", touch_ns, 1);
  j_str(&j, "note",
        "CPU time; scale: a wake-up each ms and N/1000 fires (clock read, histogram) per "
        "wake-up, no scheduler; touch: first write to fresh anonymous memory (4 KiB pages)");
  j_end(&j, stdout);
  return 0;
}

int main(int argc, char **argv) {
  int64_t t_entry = mono_ns();
  const char *workload = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strncmp(argv[i], "--duration=", 11))
      duration_s = atof(argv[i] + 11), duration_given = true;
    else if (!strncmp(argv[i], "--window=", 9))
      window_ns = atoll(argv[i] + 9);
    else if (argv[i][0] == '-')
      usage();
    else if (!workload)
      workload = argv[i];
    else
      n_arg = atol(argv[i]);
  }
  if (!workload || !(duration_s >= 0.01 && duration_s <= 3600)) usage();
  hist_init(&H);
  static const struct {
    const char *name;
    chime_fn fn;
    long default_n;
  } workloads[] = {
      {"accuracy", accuracy_main, 1},       {"scale", scale_main, 10000},      {"suspend", suspend_main, 10000},
      {"churn", churn_main, 1000000},       {"switch", switch_main, 10000000}, {"spawn", spawn_main, 1000000},
      {"pingpong", pingpong_main, 2000000},
  };
  if (!strcmp(workload, "seed")) return run_seed(t_entry);
  if (!strcmp(workload, "cron-parse") || !strcmp(workload, "cron-next")) { /* no loop needed */
    if (n_arg <= 0) n_arg = workload[5] == 'p' ? 1000000 : 100000;
    return workload[5] == 'p' ? cron_parse_main() : cron_next_main();
  }
  if (!strcmp(workload, "floor")) {
    if (n_arg <= 0) n_arg = 1000000;
    if (!duration_given) duration_s = 3.0;
    return floor_main();
  }
  for (size_t i = 0; i < sizeof workloads / sizeof workloads[0]; i++) {
    if (strcmp(workload, workloads[i].name) != 0) continue;
    if (n_arg <= 0) n_arg = workloads[i].default_n;
    int rc = chime_run(workloads[i].fn, NULL, NULL, NULL);
    if (rc != 0) fail(workload, rc);
    return 0;
  }
  fprintf(stderr, "chime-bench: workload %s not supported\n", workload);
  return 3;
}
