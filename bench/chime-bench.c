/* chime-bench - chime on the benchmark workloads, printing the JSON result
 * line the peer programs print, so that one run can compare them.
 *
 *   chime-bench WORKLOAD [N] [--duration=S]
 *
 * Workloads:
 *   seed     the tutorial's program (stdout: its six lines; the result line
 *            goes to stderr)
 *   switch   a yield round trip between two tasks, N round trips
 *   spawn    spawn + join of an empty task, N times
 */
#include "bench.h"

#include <chime.h>
#include <errno.h>

static long n_arg;
static double duration_s = 10.0;

/* ---- seed ----------------------------------------------------------------- */

static int work(void *arg) {
  (void)arg;
  printf(">Doing work:!\n");
  fflush(stdout);
  return 0;
}

static int periodic(void *arg) {
  chime_fn target = (chime_fn)(uintptr_t)arg;
  for (;;) {
    int rc = chime_sleep(CHIME_SEC(1));
    if (rc < 0) return rc;
    target(NULL);
  }
}

static int seed_main(void *arg) {
  (void)arg;
  printf("Main starting\n");
  fflush(stdout);
  if (chime_spawn(periodic, (void *)(uintptr_t)work, NULL) < 0) return -1;
  chime_sleep(CHIME_SEC(5));
  printf("Main done\n");
  fflush(stdout);
  return 0;
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

/* ---- switch --------------------------------------------------------------- */

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

/* ---- spawn ---------------------------------------------------------------- */

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

static void usage(void) {
  fprintf(stderr, "usage: chime-bench seed|switch|spawn [N] [--duration=S]\n");
  exit(2);
}

int main(int argc, char **argv) {
  int64_t t_entry = mono_ns();
  const char *workload = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strncmp(argv[i], "--duration=", 11))
      duration_s = atof(argv[i] + 11);
    else if (argv[i][0] == '-')
      usage();
    else if (!workload)
      workload = argv[i];
    else
      n_arg = atol(argv[i]);
  }
  if (!workload) usage();
  if (!strcmp(workload, "seed")) return run_seed(t_entry);
  chime_fn fn = NULL;
  if (!strcmp(workload, "switch")) {
    fn = switch_main;
    if (n_arg <= 0) n_arg = 10000000;
  } else if (!strcmp(workload, "spawn")) {
    fn = spawn_main;
    if (n_arg <= 0) n_arg = 1000000;
  } else {
    fprintf(stderr, "chime-bench: workload %s not supported\n", workload);
    return 3;
  }
  int rc = chime_run(fn, NULL, NULL, NULL);
  if (rc != 0) fprintf(stderr, "chime-bench: %s\n", chime_strerror(rc));
  return rc != 0;
}
