/* test_cli_prune.c - a bounded history: the daemon prunes each job's rows
 * as it records them (history_keep, history_max_runs, and Kubernetes'
 * history_keep_ok and history_keep_failed), checked while a week of runs
 * goes by on the virtual clock; chime history prune; bounds refused. */
#define _GNU_SOURCE
/* cli_test.h's and cli_db.h's helpers that these tests do without */
#pragma GCC diagnostic ignored "-Wunused-function"
#include "cli_db.h"
#include "cli_test.h"

/* A week of a job whose runs take 10 ms, every 20 minutes (504 runs),
 * beside a flaky one and one bounded by age: the database holds no more
 * than the bounds say, all along (sampled while it runs: a run going is
 * one row more), and exactly that at the end. */
static void a_week_of_runs_stays_within_the_bounds(void **state) {
  (void)state;
  char dir[64], db[128], conf[128], text[2048];
  paths(dir, db, conf);
  snprintf(text, sizeof text,
           "[defaults]\nevery = 20min\nmax_runs = 504\n"
           "[job tenms]\ncommand = sleep 0.01\nhistory_max_runs = 50\n"
           "[job daily]\ncommand = sleep 0.01\nhistory_keep = 1d\n"
           "[job flaky]\ncommand = sh -c 'n=$(cat %s/n 2>/dev/null || echo 0); echo $((n + 1)) > %s/n;"
           " test $((n %% 3)) -ne 0'\nhistory_keep_ok = 5\nhistory_keep_failed = 3\n",
           dir, dir);
  write_file(conf, text, 0644);
  struct proc p;
  start(&p, (const char *const[]){"run", conf, "--db", db, NULL}, VIRTUAL);
  int samples = 0, status;
  long long most = 0;
  while (waitpid(p.pid, &status, WNOHANG) == 0) {
    pump(&p, 0.05);
    long long n = q_soon(db, "SELECT count(*) FROM runs WHERE job = 'tenms'");
    long long ok = q_soon(db, "SELECT count(*) FROM runs WHERE job = 'flaky' AND outcome = 'ok'");
    long long bad = q_soon(db, "SELECT count(*) FROM runs WHERE job = 'flaky' AND outcome NOT IN ('ok', 'running')");
    long long day = q_soon(db, "SELECT count(*) FROM runs WHERE job = 'daily'");
    if (n < 0) continue;
    samples++;
    most = n > most ? n : most;
    assert_true(n <= 51);
    assert_true(ok <= 6 && bad <= 4);
    assert_true(day <= 73 + 1); /* a day of ticks every 20 min, and its first */
  }
  p.pid = 0;
  pump(&p, 0);
  close(p.out), close(p.err);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  print_message("%d samples, at most %lld rows of tenms\n", samples, most);
  assert_true(samples >= 10);
  assert_int_equal(q(db, "SELECT count(*) FROM runs WHERE job = 'tenms'"), 50);
  /* the latest 50: 49 intervals of 20 minutes from the first to the last */
  assert_int_equal(q(db, "SELECT max(scheduled) - min(scheduled) FROM runs WHERE job = 'tenms'"), 49 * 1200000000000LL);
  assert_int_equal(q(db, "SELECT count(*) FROM runs WHERE job = 'flaky' AND outcome = 'ok'"), 5);
  assert_int_equal(q(db, "SELECT count(*) FROM runs WHERE job = 'flaky' AND outcome = 'failed'"), 3);
  assert_int_equal(q(db, "SELECT max(scheduled) - min(scheduled) <= 86400000000000 FROM runs WHERE job = 'daily'"), 1);
  assert_true(q(db, "SELECT count(*) FROM runs WHERE job = 'daily'") >= 72);
  /* every run was run: 504 of each job */
  assert_int_equal(q(db, "SELECT max(id) FROM runs"), 3 * 504);
  proc_free(&p);
}

static void history_prune_cuts_a_history_down_to_its_bounds(void **state) {
  (void)state;
  char dir[64], db[128], conf[128];
  paths(dir, db, conf);
  struct proc p;
  assert_int_equal(
      run(&p, (const char *const[]){"every", "1s", "--max-runs", "30", "--name", "a", "--db", db, "--", "true", NULL},
          VIRTUAL),
      0);
  proc_free(&p);
  assert_int_equal(
      run(&p, (const char *const[]){"every", "1s", "--max-runs", "20", "--name", "b", "--db", db, "--", "false", NULL},
          VIRTUAL),
      0);
  proc_free(&p);
  /* the bounds given, for one job */
  assert_int_equal(
      run(&p, (const char *const[]){"history", "prune", "a", "--history-max-runs", "25", "--db", db, NULL}, NULL), 0);
  assert_non_null(strstr(p.stdout_text, "a: 5 row(s) pruned"));
  proc_free(&p);
  assert_int_equal(q(db, "SELECT count(*) FROM runs WHERE job = 'a'"), 25);
  assert_int_equal(q(db, "SELECT count(*) FROM runs WHERE job = 'b'"), 20);
  /* for every job on record */
  assert_int_equal(run(&p,
                       (const char *const[]){"history", "prune", "--history-keep-ok", "3", "--history-keep-failed", "2",
                                             "--db", db, NULL},
                       NULL),
                   0);
  assert_non_null(strstr(p.stdout_text, "a: 22 row(s) pruned"));
  assert_non_null(strstr(p.stdout_text, "b: 18 row(s) pruned"));
  proc_free(&p);
  assert_int_equal(q(db, "SELECT count(*) FROM runs"), 5);
  /* each job's own bounds, in its config (and the database it names) */
  write_file(conf, "[chime]\ndb = h.db\n[job a]\nevery = 1s\ncommand = true\nhistory_max_runs = 1\n", 0644);
  char in_dir[160];
  snprintf(in_dir, sizeof in_dir, "%s/h.db", dir);
  assert_int_equal(run(&p, (const char *const[]){"history", "prune", "--config", conf, "--db", in_dir, NULL}, NULL), 0);
  assert_non_null(strstr(p.stdout_text, "a: 2 row(s) pruned"));
  proc_free(&p);
  assert_int_equal(q(db, "SELECT count(*) FROM runs WHERE job = 'a'"), 1);
  assert_int_equal(q(db, "SELECT count(*) FROM runs WHERE job = 'b'"), 2);
  /* a job named prune is still shown */
  assert_int_equal(run(&p, (const char *const[]){"history", "--job", "prune", "--db", db, NULL}, NULL), 0);
  proc_free(&p);
}

static void bounds_of_zero_or_below_are_refused(void **state) {
  (void)state;
  char dir[64], db[128], conf[128];
  paths(dir, db, conf);
  write_file(conf,
             "[job a]\nevery = 1h\ncommand = true\nhistory_keep = 0\n"
             "[job b]\nevery = 1h\ncommand = true\nhistory_keep = -3d\n"
             "[job c]\nevery = 1h\ncommand = true\nhistory_max_runs = 0\nhistory_keep_ok = -1\n"
             "history_keep_failed = 99999999999\n",
             0644);
  struct proc p;
  assert_int_equal(run(&p, (const char *const[]){"run", conf, "--db", db, NULL}, NULL), 1);
  print_message("%s", p.log);
  assert_non_null(strstr(p.log, "c.conf:4: [job a] history_keep: \"0\": must be more than 0"));
  assert_non_null(strstr(p.log, "c.conf:8: [job b] history_keep: \"-3d\": must be more than 0"));
  assert_non_null(strstr(p.log, "c.conf:12: [job c] history_max_runs: \"0\" is not a number from 1 to 1000000000"));
  assert_non_null(strstr(p.log, "c.conf:13: [job c] history_keep_ok: \"-1\" is not a number"));
  assert_non_null(strstr(p.log, "c.conf:14: [job c] history_keep_failed: \"99999999999\" is not a number"));
  assert_non_null(strstr(p.log, "5 error(s): nothing was run"));
  proc_free(&p);
  assert_int_equal(run(&p, (const char *const[]){"history", "prune", "--history-keep", "0", "--db", db, NULL}, NULL),
                   2);
  assert_non_null(strstr(p.log, "--history_keep: \"0\": must be more than 0"));
  proc_free(&p);
  assert_int_equal(run(&p, (const char *const[]){"history", "prune", "--db", db, NULL}, NULL), 2);
  assert_non_null(strstr(p.log, "give the bounds"));
  proc_free(&p);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(a_week_of_runs_stays_within_the_bounds),
      cmocka_unit_test(history_prune_cuts_a_history_down_to_its_bounds),
      cmocka_unit_test(bounds_of_zero_or_below_are_refused),
  };
  if (test_select(tests, sizeof tests / sizeof tests[0], argc, argv)) return 2;
  return cmocka_run_group_tests(tests, NULL, NULL);
}
