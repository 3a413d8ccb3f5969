/* test_cli_run.c - the chime command end to end: the real binary runs real
 * children; schedules run on the virtual clock (hours in milliseconds), and
 * the few real-clock tests (signals) have generous bounds. */
#define _GNU_SOURCE
#include <grp.h>
#include <pwd.h>
#include <sys/resource.h>

#include "cli_test.h"
#include "cli_db.h"
#include "history.h"

/* Runs of the same job that overlapped in time (rows of skipped ticks are
 * no runs). */
#define OVERLAPS                                                                                                      \
  "SELECT count(*) FROM runs x JOIN runs y ON x.job = y.job AND x.id < y.id AND y.started < x.ended"                 \
  " AND x.outcome != 'skipped' AND y.outcome != 'skipped'"

static void every_runs_on_time(void **state) {
  (void)state;
  char dir[64], db[128], conf[128];
  paths(dir, db, conf);
  struct proc p;
  double t0 = mono();
  assert_int_equal(run(&p, (const char *const[]){"every", "1h", "--max-runs", "3", "--db", db, "--", "echo", "hello", NULL},
                       VIRTUAL),
                   0);
  assert_true(mono() - t0 < 20); /* three hours of schedule, at once */
  assert_int_equal(count(p.log, "event=start"), 3);
  assert_int_equal(count(p.log, "line=hello"), 3);
  assert_int_equal(q(db, "SELECT count(*) FROM runs WHERE outcome = 'ok' AND exit_code = 0"), 3);
  assert_int_equal(q(db, "SELECT max(scheduled) - min(scheduled) FROM runs"), 2 * 3600000000000LL);
  assert_int_equal(q(db, "SELECT max(late) FROM runs"), 0);
  assert_int_equal(q(db, "SELECT count(*) FROM runs WHERE stdout_tail = CAST('hello' || char(10) AS BLOB)"), 3);
  proc_free(&p);
}

static void overlapping_ticks_are_skipped(void **state) {
  (void)state;
  char dir[64], db[128], conf[128];
  paths(dir, db, conf);
  struct proc p;
  /* runs of 0.35 s every 100 ms: the ticks that fall due meanwhile are skipped */
  assert_int_equal(run(&p,
                       (const char *const[]){"every", "100ms", "--max-runs", "2", "--db", db, "--", "sleep", "0.35",
                                             NULL},
                       VIRTUAL),
                   0);
  assert_int_equal(count(p.log, "event=start"), 2);
  assert_true(count(p.log, "event=skip job=sleep reason=overlap") >= 3);
  /* each skip is logged as its tick falls, before the overrunning run ends */
  const char *skip = strstr(p.log, "event=skip job=sleep"), *end = strstr(p.log, "event=end job=sleep");
  assert_true(skip && end && skip < end);
  assert_int_equal(q(db, "SELECT count(*) FROM runs WHERE outcome = 'ok'"), 2);
  assert_true(q(db, "SELECT max(scheduled) - min(scheduled) FROM runs") >= 300000000LL);
  proc_free(&p);
}

static void hung_job_is_killed_at_its_timeout(void **state) {
  (void)state;
  char dir[64], db[128], conf[128];
  paths(dir, db, conf);
  struct proc p;
  assert_int_equal(run(&p,
                       (const char *const[]){"every", "1s", "--max-runs", "1", "--timeout", "500ms", "--kill-grace",
                                             "300ms", "--name", "hung", "--db", db, "--", "sh", "-c",
                                             "trap '' TERM; sleep 60", NULL},
                       VIRTUAL),
                   0);
  assert_int_equal(q(db, "SELECT count(*) FROM runs WHERE outcome = 'timeout' AND signal = 9"), 1);
  long long pid = q(db, "SELECT pid FROM runs");
  assert_true(pid > 0);
  assert_true(group_gone((pid_t)pid, 10)); /* nothing of its group is left */
  assert_non_null(strstr(p.log, "outcome=timeout signal=KILL"));
  proc_free(&p);
}

static void sigterm_leaves_complete_records_and_no_process(void **state) {
  (void)state;
  char dir[64], db[128], conf[128];
  paths(dir, db, conf);
  write_file(conf,
             "[job slow]\nevery = 50ms\nstart_now = true\ncommand = sleep 60\n"
             "[job stubborn]\nevery = 50ms\nstart_now = true\ncommand = sh -c 'trap \"\" TERM; echo ready; sleep 60'\n",
             0644);
  struct proc p;
  start(&p, (const char *const[]){"run", conf, "--db", db, "--shutdown-grace", "300ms", NULL}, NULL);
  assert_true(wait_log(&p, "event=start job=slow", 20));
  assert_true(wait_log(&p, "job=stubborn stream=stdout", 20)); /* its trap is set */
  double t0 = mono();
  kill(p.pid, SIGTERM);
  assert_int_equal(finish(&p, 30), 0);
  assert_true(mono() - t0 < 10);
  assert_int_equal(q(db, "SELECT count(*) FROM runs WHERE outcome = 'running' OR ended IS NULL"), 0);
  assert_int_equal(q(db, "SELECT count(*) FROM runs WHERE job = 'slow' AND outcome = 'stopped' AND signal = 15"), 1);
  assert_int_equal(q(db, "SELECT count(*) FROM runs WHERE job = 'stubborn' AND outcome = 'stopped' AND signal = 9"),
                   1);
  for (int k = 0; k < 2; k++) {
    long long pid = q(db, k ? "SELECT pid FROM runs WHERE job = 'slow'" : "SELECT pid FROM runs WHERE job = 'stubborn'");
    assert_true(pid > 0);
    assert_true(group_gone((pid_t)pid, 10));
  }
  assert_non_null(strstr(p.log, "event=stop"));
  proc_free(&p);
}

static void second_signal_kills_at_once(void **state) {
  (void)state;
  char dir[64], db[128], conf[128];
  paths(dir, db, conf);
  write_file(conf, "[job stubborn]\nevery = 50ms\nstart_now = true\ncommand = sh -c 'trap \"\" TERM; echo ready; sleep 60'\n",
             0644);
  struct proc p;
  start(&p, (const char *const[]){"run", conf, "--db", db, "--shutdown-grace", "60s", NULL}, NULL);
  assert_true(wait_log(&p, "job=stubborn stream=stdout", 20)); /* its trap is set */
  kill(p.pid, SIGTERM);
  assert_true(wait_log(&p, "event=stopping", 20));
  double t0 = mono();
  kill(p.pid, SIGINT);
  assert_int_equal(finish(&p, 30), 0);
  assert_true(mono() - t0 < 10); /* not the 60 s grace */
  assert_non_null(strstr(p.log, "event=kill"));
  assert_int_equal(q(db, "SELECT count(*) FROM runs WHERE outcome = 'stopped' AND signal = 9"), 1);
  proc_free(&p);
}

static void sighup_reloads_and_refuses_a_bad_config(void **state) {
  (void)state;
  char dir[64], db[128], conf[128];
  paths(dir, db, conf);
  write_file(conf, "[job a]\nevery = 100ms\ncommand = echo from-a\n[job keep]\nevery = 100ms\ncommand = echo kept\n",
             0644);
  struct proc p;
  start(&p, (const char *const[]){"run", conf, "--db", db, NULL}, NULL);
  assert_true(wait_log(&p, "line=from-a", 20));
  write_file(conf, "[job b]\nevery = 100ms\ncommand = echo from-b\n[job keep]\nevery = 100ms\ncommand = echo kept\n",
             0644);
  kill(p.pid, SIGHUP);
  assert_true(wait_log(&p, "event=reload config=", 20));
  assert_non_null(strstr(p.log, "kept=1 started=1 stopped=1"));
  assert_true(wait_log(&p, "line=from-b", 20));
  write_file(conf, "[job b]\nevery = 100ms\ncommand = echo from-b\nbad key\n", 0644);
  kill(p.pid, SIGHUP);
  assert_true(wait_log(&p, "event=reload_error", 20));
  assert_true(wait_log(&p, "the running config goes on", 20));
  assert_true(wait_log_from(&p, p.len, "line=from-b", 20)); /* one more, after the refusal */
  kill(p.pid, SIGTERM);
  assert_int_equal(finish(&p, 30), 0);
  size_t a_after = strstr(p.log, "event=reload config=") - p.log;
  assert_null(strstr(p.log + a_after + 1, "event=start job=a "));
  proc_free(&p);
}

/* A crontab's daemon reloads it as a crontab (not as an INI file). */
static void sighup_reloads_a_crontab_as_a_crontab(void **state) {
  (void)state;
  char dir[64], db[128], conf[128];
  paths(dir, db, conf);
  write_file(conf, "# every second (seconds first, year last)\n* * * * * * * echo from-a\n", 0644);
  struct proc p;
  start(&p, (const char *const[]){"crontab", conf, "--db", db, NULL}, NULL);
  assert_true(wait_log(&p, "line=from-a", 20));
  write_file(conf, "* * * * * * * echo from-b\n", 0644);
  kill(p.pid, SIGHUP);
  assert_true(wait_log(&p, "event=reload config=", 20));
  assert_null(strstr(p.log, "event=reload_error"));
  assert_true(wait_log(&p, "line=from-b", 20));
  kill(p.pid, SIGTERM);
  assert_int_equal(finish(&p, 30), 0);
  proc_free(&p);
}

static void catch_up_runs_once_after_a_missed_tick(void **state) {
  (void)state;
  char dir[64], db[128], conf[128];
  paths(dir, db, conf);
  const char *args[] = {"every", "10s", "--max-runs", "1", "--catch-up", "--name", "cu", "--db", db, "--", "true",
                        NULL};
  struct proc p;
  /* runs at 1000010; down until 1000105: the ticks of 1000020 to 1000100
   * were missed, and the latest of them runs, once */
  assert_int_equal(run(&p, args, (const char *const[]){"CHIME_CLOCK=virtual", "CHIME_TEST_WALL=1000000", NULL}), 0);
  proc_free(&p);
  assert_int_equal(run(&p, args, (const char *const[]){"CHIME_CLOCK=virtual", "CHIME_TEST_WALL=1000105", NULL}), 0);
  assert_int_equal(count(p.log, "event=catch_up"), 1);
  assert_int_equal(count(p.log, "catch_up=true"), 1);
  assert_int_equal(q(db, "SELECT count(*) FROM runs WHERE scheduled = 1000100000000000"), 1);
  assert_int_equal(q(db, "SELECT late FROM runs WHERE scheduled = 1000100000000000"), 5000000000LL);
  assert_int_equal(q(db, "SELECT count(*) FROM runs"), 3);
  proc_free(&p);
  /* last tick at 1000115; back at 1000120: nothing was missed */
  assert_int_equal(run(&p, args, (const char *const[]){"CHIME_CLOCK=virtual", "CHIME_TEST_WALL=1000120", NULL}), 0);
  assert_int_equal(count(p.log, "event=catch_up"), 0);
  assert_int_equal(q(db, "SELECT count(*) FROM runs"), 4);
  proc_free(&p);
}

/* The catch-up run and the first tick's (start_now) fall together: with
 * overlap = skip, one of them runs (the catch-up, triggered as the job
 * starts), and the other is skipped, and recorded so.  max_runs counts the
 * runs of the job's ticks: its one run is the next tick's. */
static void catch_up_respects_overlap(void **state) {
  (void)state;
  char dir[64], db[128], conf[128];
  paths(dir, db, conf);
  const char *args[] = {"every", "10s", "--start-now", "--max-runs", "1", "--catch-up", "--name", "cu", "--db", db,
                        "--", "sleep", "0.3", NULL};
  struct proc p;
  assert_int_equal(run(&p, args, (const char *const[]){"CHIME_CLOCK=virtual", "CHIME_TEST_WALL=1000000", NULL}), 0);
  proc_free(&p);
  assert_int_equal(run(&p, args, (const char *const[]){"CHIME_CLOCK=virtual", "CHIME_TEST_WALL=1000100", NULL}), 0);
  assert_int_equal(count(p.log, "event=catch_up"), 1);
  assert_int_equal(count(p.log, "event=skip job=cu reason=overlap"), 1);
  assert_int_equal(q(db, "SELECT count(*) FROM runs WHERE outcome = 'ok'"), 3);
  assert_int_equal(q(db, "SELECT count(*) FROM runs WHERE outcome = 'ok' AND triggered = 1"), 1);
  assert_int_equal(q(db, "SELECT count(*) FROM runs WHERE outcome = 'skipped' AND reason = 'overlap' AND skipped = 1 "
                         "AND scheduled = 1000100000000000"),
                   1);
  assert_int_equal(q(db, OVERLAPS), 0);
  proc_free(&p);
}

/* A history with one run of job cu, scheduled at (virtual wall) 1000010 s. */
static void first_run_of_cu(const char *db) {
  struct proc p;
  assert_int_equal(run(&p, (const char *const[]){"every", "10s", "--max-runs", "1", "--name", "cu", "--db", db, "--",
                                                 "true", NULL},
                       (const char *const[]){"CHIME_CLOCK=virtual", "CHIME_TEST_WALL=1000000", NULL}),
                   0);
  proc_free(&p);
}

/* A catch-up run, which the library does not time (it is not one of the
 * job's ticks), ends at the job's timeout all the same. */
static void catch_up_run_ends_at_its_timeout(void **state) {
  (void)state;
  char dir[64], db[128], conf[128];
  paths(dir, db, conf);
  struct proc p;
  first_run_of_cu(db);
  start(&p,
        (const char *const[]){"every", "10s", "--max-runs", "1", "--catch-up", "--timeout", "500ms", "--kill-grace",
                              "1s", "--name", "cu", "--db", db, "--", "sleep", "30", NULL},
        (const char *const[]){"CHIME_CLOCK=virtual", "CHIME_TEST_WALL=1000105", NULL});
  assert_int_equal(finish(&p, 20), 0); /* not the 30 s of its sleep */
  assert_int_equal(count(p.log, "catch_up=true"), 1);
  assert_int_equal(q(db, "SELECT count(*) FROM runs WHERE scheduled = 1000100000000000 AND outcome = 'timeout' "
                         "AND signal = 15"),
                   1);
  proc_free(&p);
}

/* overlap = replace: each tick stops the run before it, whose record says
 * replaced (not timeout, which the job also has). */
static void replaced_runs_are_recorded_as_replaced(void **state) {
  (void)state;
  char dir[64], db[128], conf[128];
  paths(dir, db, conf);
  struct proc p;
  assert_int_equal(run(&p,
                       (const char *const[]){"every", "100ms", "--overlap", "replace", "--timeout", "20s",
                                             "--max-runs", "3", "--name", "r", "--db", db, "--", "sleep", "0.3", NULL},
                       VIRTUAL),
                   0);
  assert_int_equal(q(db, "SELECT count(*) FROM runs WHERE outcome = 'replaced' AND signal = 15"), 2);
  assert_int_equal(q(db, "SELECT count(*) FROM runs WHERE outcome = 'ok'"), 1);
  proc_free(&p);
}

/* Starts `chime run conf` on config `first`; once its run has said
 * `begin`, puts config `second` in its place and sends SIGHUP. */
static void start_then_reload(struct proc *p, const char *conf, const char *db, const char *first,
                              const char *second) {
  write_file(conf, first, 0644);
  start(p, (const char *const[]){"run", conf, "--db", db, NULL}, NULL);
  assert_true(wait_log(p, "line=begin", 20));
  write_file(conf, second, 0644);
  kill(p->pid, SIGHUP);
}

/* A run that waited for its turn (overlap = queue, behind its old
 * version's run after a reload) and is then ended by the job's timeout is
 * recorded as a timeout, whatever time it took. */
static void queued_run_cut_by_its_timeout_is_a_timeout(void **state) {
  (void)state;
  char dir[64], db[128], conf[128];
  paths(dir, db, conf);
  const char *head = "[job a]\nevery = 100ms\nstart_now = true\noverlap = queue\ntimeout = 3s\nkill_grace = 1s\n";
  char first[512], second[512];
  snprintf(first, sizeof first, "%scommand = sh -c 'echo begin; sleep 2'\n", head);
  snprintf(second, sizeof second, "%scommand = sleep 10\n", head);
  struct proc p;
  start_then_reload(&p, conf, db, first, second);
  assert_true(wait_log(&p, "kept=0 started=1 stopped=1", 20));
  double end = mono() + 30;
#define SECOND_RUN "(SELECT id FROM runs WHERE outcome != 'skipped' ORDER BY id LIMIT 1 OFFSET 1)"
  while (q_soon(db, "SELECT count(*) FROM runs WHERE id = " SECOND_RUN " AND ended IS NOT NULL") < 1 && mono() < end)
    pump(&p, 0.05);
  kill(p.pid, SIGTERM);
  assert_int_equal(finish(&p, 30), 0);
  assert_int_equal(q(db, "SELECT count(*) FROM runs WHERE id = 1 AND outcome = 'ok'"), 1);
  char outcome[32] = "";
  long long v;
  assert_int_equal(query(db, "SELECT outcome FROM runs WHERE id = " SECOND_RUN, &v, outcome, sizeof outcome), 1);
  assert_string_equal(outcome, "timeout");
  proc_free(&p);
}

/* Every job has ended by its limits while its catch-up run goes on (let
 * finish): SIGTERM still stops chime, and the run is recorded stopped. */
static void sigterm_stops_a_catch_up_run_let_finish(void **state) {
  (void)state;
  char dir[64], db[128], conf[128], cmd[512];
  paths(dir, db, conf);
  struct proc p;
  first_run_of_cu(db);
  /* the catch-up run (first) sleeps; the tick's, a second later, ends the job at once */
  snprintf(cmd, sizeof cmd, "if [ -e %s/first ]; then exit 0; fi; : > %s/first; echo ready; exec sleep 30", dir, dir);
  start(&p,
        (const char *const[]){"every", "1s", "--max-runs", "1", "--catch-up", "--overlap", "allow", "--name", "cu",
                              "--db", db, "--shutdown-grace", "2s", "--", "sh", "-c", cmd, NULL},
        (const char *const[]){"CHIME_CLOCK=virtual", "CHIME_TEST_WALL=1000105", NULL});
  assert_true(wait_log(&p, "line=ready", 20));
  assert_true(wait_log(&p, "outcome=ok", 20)); /* the job has ended */
  double t0 = mono();
  kill(p.pid, SIGTERM);
  assert_int_equal(finish(&p, 20), 0);
  assert_true(mono() - t0 < 10); /* not the catch-up run's 30 s */
  assert_int_equal(q(db, "SELECT count(*) FROM runs WHERE scheduled = 1000105000000000 AND outcome = 'stopped'"), 1);
  assert_non_null(strstr(p.log, "event=stopping"));
  proc_free(&p);
}

static void corrupt_database_gives_a_clear_error(void **state) {
  (void)state;
  char dir[64], db[128], conf[128];
  paths(dir, db, conf);
  char junk[8192];
  memset(junk, 'x', sizeof junk);
  FILE *f = fopen(db, "w");
  fwrite(junk, 1, sizeof junk, f);
  fclose(f);
  struct proc p;
  assert_int_equal(run(&p, (const char *const[]){"history", "--db", db, NULL}, NULL), 1);
  assert_non_null(strstr(p.log, db));
  assert_non_null(strstr(p.log, "file is not a database"));
  proc_free(&p);
  /* the daemon says so and runs its jobs all the same */
  assert_int_equal(run(&p, (const char *const[]){"every", "1s", "--max-runs", "1", "--db", db, "--", "echo", "on", NULL},
                       VIRTUAL),
                   0);
  assert_non_null(strstr(p.log, "file is not a database"));
  assert_non_null(strstr(p.log, "line=on"));
  assert_true(each_line_has(p.log, " event="));
  proc_free(&p);
}

static void locked_database_gives_a_clear_error(void **state) {
  (void)state;
  char dir[64], db[128], conf[128];
  paths(dir, db, conf);
  struct proc p;
  assert_int_equal(run(&p, (const char *const[]){"every", "1s", "--max-runs", "1", "--db", db, "--", "true", NULL},
                       VIRTUAL),
                   0);
  proc_free(&p);
  sqlite3 *h;
  assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
  assert_int_equal(sqlite3_exec(h, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
  assert_int_equal(run(&p, (const char *const[]){"every", "1s", "--max-runs", "1", "--db", db, "--", "echo", "on", NULL},
                       VIRTUAL),
                   0);
  assert_non_null(strstr(p.log, "database is locked"));
  assert_non_null(strstr(p.log, db));
  assert_non_null(strstr(p.log, "line=on"));
  sqlite3_exec(h, "ROLLBACK", NULL, NULL, NULL);
  sqlite3_close(h);
  proc_free(&p);
}

/* A daemon started with `args` and `env`, whose history is locked by
 * another process for `locked` seconds once its first run is on record;
 * stopped `after` seconds after the lock goes (it must exit 0), and the
 * history said to be locked, then written again. */
static void lock_under(struct proc *p, const char *db, const char *const *args, const char *const *env,
                       double locked, double after) {
  start(p, args, env);
  assert_true(wait_log(p, "event=end job=tick", 20));
  while (q_soon(db, "SELECT count(*) FROM runs") < 1) pump(p, 0.05);
  sqlite3 *h;
  assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
  assert_int_equal(sqlite3_exec(h, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
  for (double end = mono() + locked; mono() < end;) pump(p, 0.05);
  sqlite3_exec(h, "ROLLBACK", NULL, NULL, NULL);
  sqlite3_close(h);
  for (double end = mono() + after; mono() < end;) pump(p, 0.05);
  kill(p->pid, SIGTERM);
  assert_int_equal(finish(p, 30), 0);
  assert_non_null(strstr(p->log, "database is locked"));
  assert_non_null(strstr(p->log, "written again"));
}

/* A database locked by another process for two seconds, under a job every
 * 100 ms: no run starts late for it (the history is written by a thread,
 * not on the path of a tick), and once the lock goes every run is on
 * record.  Real time; lateness bounded generously (a write on the path of
 * a tick waits 500 ms for a lock). */
static void a_locked_database_delays_no_run_and_loses_none(void **state) {
  (void)state;
  char dir[64], db[128], conf[128];
  paths(dir, db, conf);
  struct proc p;
  lock_under(&p, db, (const char *const[]){"every", "100ms", "--name", "tick", "--db", db, "--", "true", NULL}, NULL, 2,
             1);
  long long runs = count(p.log, "event=end job=tick");
  assert_true(runs >= 20);
  assert_int_equal(q(db, "SELECT count(*) FROM runs WHERE outcome IN ('ok', 'stopped')"), runs);
  assert_true(q(db, "SELECT max(late) FROM runs") < 250000000LL);
  assert_int_equal(q(db, "SELECT count(*) FROM runs WHERE outcome = 'skipped'"), 0);
  proc_free(&p);
}

/* With the database locked, the queue of records fills (to 1 item here:
 * CHIME_TEST_RECORDER_MAX, for tests) while a batch waits on the lock:
 * the oldest records go, and the log says so, but never a run's end whose
 * start is in the batch being written (the end frees the record the start
 * is in: the thread would write freed memory).  Real time. */
static void a_full_queue_drops_the_oldest_never_what_is_being_written(void **state) {
  (void)state;
  char dir[64], db[128], conf[128];
  paths(dir, db, conf);
  struct proc p;
  /* runs of a second, each start waiting on the lock while its end comes,
   * then the ticks it skipped and the next start */
  lock_under(&p, db, (const char *const[]){"every", "10ms", "--name", "tick", "--db", db, "--", "sleep", "1", NULL},
             (const char *const[]){"CHIME_TEST_RECORDER_MAX=1", NULL}, 4, 2);
  assert_non_null(strstr(p.log, "record(s) lost"));
  long long runs = count(p.log, "event=end job=tick");
  long long kept = q(db, "SELECT count(*) FROM runs WHERE outcome IN ('ok', 'stopped')");
  assert_true(runs >= 4 && kept >= 1 && kept <= runs);
  proc_free(&p);
}

/* Where chime may raise its priority, its loop runs ten nice levels above
 * its own, and its jobs at its own (event=priority tells both); where it
 * may not, nothing changes.  Either way a job runs at chime's nice value. */
static void the_loop_runs_above_its_jobs_where_it_may(void **state) {
  (void)state;
  errno = 0;
  int own = getpriority(PRIO_PROCESS, 0);
  assert_int_equal(errno, 0);
  int want = own - 10 < -20 ? -20 : own - 10;
  pid_t f = fork(); /* whether this process may, as a fork of it finds */
  if (f == 0) _exit(setpriority(PRIO_PROCESS, 0, want) == 0 ? 0 : 1);
  int status;
  assert_int_equal(waitpid(f, &status, 0), f);
  bool may = WIFEXITED(status) && WEXITSTATUS(status) == 0 && want < own;
  struct proc p;
  assert_int_equal(
      run(&p, (const char *const[]){"every", "1s", "--max-runs", "1", "--db", "none", "--", "nice", NULL}, VIRTUAL), 0);
  char line[64];
  snprintf(line, sizeof line, "line=%d\n", own);
  assert_non_null(strstr(p.log, line));
  snprintf(line, sizeof line, "event=priority loop_nice=%d jobs_nice=%d\n", want, own);
  if (may)
    assert_non_null(strstr(p.log, line));
  else
    assert_null(strstr(p.log, "loop_nice="));
  proc_free(&p);
}

static void unwritable_database_directory_is_named_and_jobs_go_on(void **state) {
  (void)state;
  struct proc p;
  const char *db = "/proc/self/no-such-dir/h.db";
  assert_int_equal(run(&p, (const char *const[]){"every", "1s", "--max-runs", "1", "--db", db, "--", "echo", "on", NULL},
                       VIRTUAL),
                   0);
  assert_non_null(strstr(p.log, db));
  assert_non_null(strstr(p.log, "line=on"));
  proc_free(&p);
}

static void missing_program_is_named_and_other_jobs_go_on(void **state) {
  (void)state;
  char dir[64], db[128], conf[128];
  paths(dir, db, conf);
  write_file(conf,
             "[defaults]\nmax_runs = 2\n[job gone]\nevery = 1m\ncommand = /no/such/program\n"
             "[job nobody]\nevery = 1m\ncommand = true\nuser = no-such-user-here\n"
             "[job fine]\nevery = 1m\ncommand = echo fine\n",
             0644);
  struct proc p;
  assert_int_equal(run(&p, (const char *const[]){"run", conf, "--db", db, NULL}, VIRTUAL), 0);
  assert_non_null(strstr(p.log, "cannot run /no/such/program"));
  assert_non_null(strstr(p.log, "user no-such-user-here"));
  assert_int_equal(q(db, "SELECT count(*) FROM runs WHERE job = 'gone' AND outcome = 'error'"), 2);
  assert_int_equal(q(db, "SELECT count(*) FROM runs WHERE job = 'nobody' AND outcome = 'error'"), 2);
  assert_int_equal(q(db, "SELECT count(*) FROM runs WHERE job = 'fine' AND outcome = 'ok'"), 2);
  assert_true(each_line_has(p.log, " event="));
  proc_free(&p);
}

static void bad_config_is_refused_whole_with_file_line_and_key(void **state) {
  (void)state;
  char dir[64], db[128], conf[128];
  paths(dir, db, conf);
  write_file(conf,
             "[job ok]\nevery = 1s\ncommand = true\n"
             "[job bad]\nevery = 5x\ncommand = true\n"
             "[job worse]\nschedule = 61 * * * *\ncommand = echo > /tmp/x\ncolour = blue\n",
             0644);
  struct proc p;
  assert_int_equal(run(&p, (const char *const[]){"run", conf, "--db", db, NULL}, VIRTUAL), 1);
  char want[256];
  snprintf(want, sizeof want, "%s:5: [job bad] every: \"5x\" is not a duration", conf);
  assert_non_null(strstr(p.log, want));
  snprintf(want, sizeof want, "%s:8: [job worse] schedule: column 1: minute field", conf);
  assert_non_null(strstr(p.log, want));
  snprintf(want, sizeof want, "%s:10: [job worse] colour: unknown key", conf);
  assert_non_null(strstr(p.log, want));
  assert_non_null(strstr(p.log, "nothing was run"));
  assert_int_equal(access(db, F_OK), -1); /* nothing ran, nothing was written */
  proc_free(&p);
  assert_int_equal(run(&p, (const char *const[]){"check", conf, NULL}, NULL), 1);
  proc_free(&p);
  /* what the library would refuse when the job starts is refused now */
  write_file(conf, "[job nightly]\nschedule = 0 3 * * *\nspread = 10m\ncommand = true\n"
                   "[job often]\nevery = 1m\ntz = UTC\ncommand = true\n", 0644);
  assert_int_equal(run(&p, (const char *const[]){"check", conf, NULL}, NULL), 1);
  snprintf(want, sizeof want, "%s:3: [job nightly] spread: ", conf);
  assert_non_null(strstr(p.log, want));
  snprintf(want, sizeof want, "%s:7: [job often] tz: ", conf);
  assert_non_null(strstr(p.log, want));
  proc_free(&p);
  assert_int_equal(run(&p, (const char *const[]){"run", conf, "--db", db, NULL}, VIRTUAL), 1);
  assert_non_null(strstr(p.log, "2 error(s): nothing was run"));
  proc_free(&p);
}

static void world_writable_config_is_refused(void **state) {
  (void)state;
  char dir[64], db[128], conf[128];
  paths(dir, db, conf);
  write_file(conf, "[job ok]\nevery = 1s\ncommand = true\n", 0666);
  struct proc p;
  assert_int_equal(run(&p, (const char *const[]){"check", conf, NULL}, NULL), 1);
  assert_non_null(strstr(p.log, "writable by every user"));
  proc_free(&p);
}

static void check_prints_the_next_five_runs(void **state) {
  (void)state;
  char dir[64], db[128], conf[128];
  paths(dir, db, conf);
  write_file(conf, "[job nightly]\nschedule = 30 2 * * *\ntz = UTC\ncommand = true\n[job often]\nevery = 90s\ncommand = true\n",
             0644);
  struct proc p;
  assert_int_equal(run(&p, (const char *const[]){"check", conf, NULL}, NULL), 0);
  /* in the nightly job's part only: a run of the other may fall at 02:30:00 too */
  char *often = strstr(p.stdout_text, "[job often]");
  assert_non_null(often);
  assert_non_null(strstr(p.stdout_text, "[job nightly]"));
  assert_true(strstr(p.stdout_text, "[job nightly]") < often);
  *often = '\0';
  assert_int_equal(count(p.stdout_text, " 02:30:00 UTC"), 5);
  *often = '[';
  assert_non_null(strstr(p.stdout_text, "every 1m30s"));
  assert_non_null(strstr(p.stdout_text, "2 job(s), no errors"));
  proc_free(&p);
}

static void json_log_lines_are_json(void **state) {
  (void)state;
  struct proc p;
  assert_int_equal(run(&p,
                       (const char *const[]){"every", "1s", "--max-runs", "1", "--db", "none", "--log-format", "json",
                                             "--", "printf", "a\\tb\\n\\377\\n", NULL},
                       VIRTUAL),
                   0);
  for (char *line = p.log, *nl; *line; line = nl + 1) {
    nl = strchr(line, '\n');
    assert_non_null(nl);
    assert_true(line[0] == '{' && nl[-1] == '}');
  }
  assert_non_null(strstr(p.log, "\"line\":\"a\\tb\""));
  assert_non_null(strstr(p.log, "\"line\":\"\\ufffd\""));
  assert_true(each_line_has(p.log, ",\"event\":\""));
  proc_free(&p);
  /* catch_up without a database: said, with its event */
  assert_int_equal(run(&p, (const char *const[]){"every", "1s", "--max-runs", "1", "--db", "none", "--catch-up", "--",
                                                 "true", NULL},
                       VIRTUAL),
                   0);
  assert_non_null(strstr(p.log, "catch_up needs the history database"));
  assert_true(each_line_has(p.log, " event="));
  proc_free(&p);
}

/* history reads an old schema as it is; the daemon migrates it. */
static void old_schema_is_read_by_history_and_migrated_by_the_daemon(void **state) {
  (void)state;
  char dir[64], db[128], conf[128];
  paths(dir, db, conf);
  sqlite3 *h;
  assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
  assert_int_equal(sqlite3_exec(h,
                                "CREATE TABLE runs (id INTEGER PRIMARY KEY, job TEXT NOT NULL, scheduled INTEGER NOT "
                                "NULL, started INTEGER NOT NULL, ended INTEGER, outcome TEXT NOT NULL, exit_code "
                                "INTEGER, signal INTEGER, late INTEGER NOT NULL, pid INTEGER, stdout_tail BLOB, "
                                "stderr_tail BLOB); INSERT INTO runs VALUES (1, 'old', 0, 0, 1, 'ok', 0, NULL, 0, 7, "
                                "'', ''); PRAGMA user_version = 1;",
                                NULL, NULL, NULL),
                   SQLITE_OK);
  sqlite3_close(h);
  struct proc p;
  assert_int_equal(run(&p, (const char *const[]){"history", "--db", db, "--json", NULL}, NULL), 0);
  assert_non_null(strstr(p.stdout_text, "\"job\":\"old\""));
  assert_non_null(strstr(p.stdout_text, "\"error\":null"));
  assert_int_equal(q(db, "PRAGMA user_version"), 1); /* read, not migrated */
  proc_free(&p);
  assert_int_equal(run(&p, (const char *const[]){"every", "1s", "--max-runs", "1", "--db", db, "--", "true", NULL},
                       VIRTUAL),
                   0);
  assert_int_equal(q(db, "PRAGMA user_version"), HISTORY_SCHEMA);
  assert_int_equal(q(db, "SELECT count(*) FROM runs"), 2);
  assert_int_equal(q(db, "SELECT count(*) FROM runs WHERE triggered_by IS NULL AND hook IS NULL"), 2);
  assert_int_equal(q(db, "SELECT count(*) FROM paused"), 0);
  proc_free(&p);
  /* the migrations and a new database's schema are the same schema */
  char fresh[160], migrated[4096], made[4096];
  snprintf(fresh, sizeof fresh, "%s/fresh.db", dir);
  assert_int_equal(run(&p, (const char *const[]){"every", "1s", "--max-runs", "1", "--db", fresh, "--", "true", NULL},
                       VIRTUAL),
                   0);
  proc_free(&p);
  const char *shape = "SELECT group_concat(x, ',') FROM (SELECT 0 AS k, cid AS n, name || ' ' || type || ' ' || "
                      "\"notnull\" || ' ' || coalesce(dflt_value, '-') || ' ' || pk AS x FROM pragma_table_info('runs') "
                      "UNION ALL SELECT 1, name, 'index ' || name || ' ' || (SELECT group_concat(name) FROM "
                      "pragma_index_info(i.name)) FROM pragma_index_list('runs') AS i UNION ALL SELECT 2, name, 'table ' || "
                      "name FROM sqlite_master WHERE type = 'table' ORDER BY k, n)";
  long long ignored;
  assert_int_equal(query(db, shape, &ignored, migrated, sizeof migrated), 1);
  assert_int_equal(query(fresh, shape, &ignored, made, sizeof made), 1);
  assert_string_equal(migrated, made);
  assert_non_null(strstr(made, "index runs_job_scheduled job,scheduled"));
  /* a newer schema than this chime knows is refused, by name */
  assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
  sqlite3_exec(h, "PRAGMA user_version = 99", NULL, NULL, NULL);
  sqlite3_close(h);
  assert_int_equal(run(&p, (const char *const[]){"history", "--db", db, NULL}, NULL), 1);
  assert_non_null(strstr(p.log, "schema version 99 is newer"));
  proc_free(&p);
}

/* Copies the program at `from` to `to`, executable by everyone. */
static void copy_program(const char *from, const char *to) {
  int in = open(from, O_RDONLY | O_CLOEXEC), out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0755);
  assert_true(in >= 0 && out >= 0);
  char buf[65536];
  ssize_t n;
  while ((n = read(in, buf, sizeof buf)) > 0) assert_int_equal(write(out, buf, (size_t)n), n);
  assert_int_equal(n, 0);
  assert_int_equal(fchmod(out, 0755), 0); /* whatever the umask */
  close(in);
  close(out);
}

/* chime history as a user that can write neither the file nor its
 * directory: it reads them, and leaves nothing beside the file.  As root
 * the reader is uid 65534, which may not reach the build tree (a clone in
 * a private directory): it runs a copy of the command (statically linked
 * with the library) from the scratch directory, which it can reach. */
static void history_reads_a_read_only_database(void **state) {
  (void)state;
  char dir[64], db[128], conf[128], bin[128];
  paths(dir, db, conf);
  struct proc p;
  assert_int_equal(run(&p, (const char *const[]){"every", "1s", "--max-runs", "1", "--db", db, "--", "true", NULL},
                       VIRTUAL),
                   0);
  proc_free(&p);
  snprintf(bin, sizeof bin, "%s/chime", dir);
  copy_program(getenv("CHIME_BIN"), bin);
  struct stat before, after;
  assert_int_equal(stat(db, &before), 0);
  assert_int_equal(chmod(db, 0444), 0);
  assert_int_equal(chmod(dir, 0555), 0);
  int out[2];
  assert_int_equal(pipe(out), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) { /* root writes anything: be nobody */
    if (geteuid() == 0 && (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0)) _exit(98);
    dup2(out[1], 1);
    execl(bin, "chime", "history", "--db", db, (char *)NULL);
    _exit(errno == EACCES ? 97 : 99);
  }
  close(out[1]);
  char buf[4096];
  size_t len = 0;
  ssize_t n;
  while ((n = read(out[0], buf + len, sizeof buf - 1 - len)) > 0) len += (size_t)n;
  buf[len] = '\0';
  close(out[0]);
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  chmod(dir, 0700);
  unlink(bin);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 97) { /* a /tmp that uid 65534 may not search */
    print_message("skipped: uid 65534 may not run %s (%s)\n", bin, strerror(EACCES));
    skip();
  }
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  assert_non_null(strstr(buf, " true "));
  assert_int_equal(stat(db, &after), 0);
  assert_int_equal(after.st_mtim.tv_sec, before.st_mtim.tv_sec);
  assert_int_equal(after.st_mtim.tv_nsec, before.st_mtim.tv_nsec);
  char side[160];
  snprintf(side, sizeof side, "%s-wal", db);
  assert_int_equal(access(side, F_OK), -1);
  snprintf(side, sizeof side, "%s-shm", db);
  assert_int_equal(access(side, F_OK), -1);
}

static void bad_command_lines_exit_2(void **state) {
  (void)state;
  static const char *const cases[][6] = {
      {"every", "5x", "--", "true", NULL},       {"every", "5s", "--bogus", "1", "--", NULL},
      {"every", "5s", NULL},                      {"cron", "61 * * * *", "--", "true", NULL},
      {"nonsense", NULL},                         {"history", "--limit", "0", NULL},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct proc p;
    assert_int_equal(run(&p, cases[i], VIRTUAL), 2);
    proc_free(&p);
  }
}

/* A calendar job from the command line, on the virtual wall clock. */
static void cron_job_runs_on_the_calendar(void **state) {
  (void)state;
  char dir[64], db[128], conf[128];
  paths(dir, db, conf);
  struct proc p;
  assert_int_equal(run(&p,
                       (const char *const[]){"cron", "*/15 * * * *", "--tz", "UTC", "--max-runs", "2", "--db", db, "--",
                                             "true", NULL},
                       (const char *const[]){"CHIME_CLOCK=virtual", "CHIME_TEST_WALL=1800000000", NULL}),
                   0);
  assert_int_equal(q(db, "SELECT count(*) FROM runs WHERE outcome = 'ok'"), 2);
  assert_int_equal(q(db, "SELECT min(scheduled) FROM runs"), 1800000900000000000LL);
  assert_int_equal(q(db, "SELECT max(scheduled) - min(scheduled) FROM runs"), 900000000000LL);
  proc_free(&p);
}

/* A shell command that leaves a process in its group which ignores SIGTERM
 * and holds the pipes, and exits as soon as that process has set its trap
 * (a file says so), then says `ready` and `late` after `secs`. */
static void leftover_command(char *cmd, size_t size, const char *dir, int secs) {
  snprintf(cmd, size,
           "(trap '' TERM; : > %s/trapped; echo ready; sleep %d; echo late) & "
           "while [ ! -e %s/trapped ]; do sleep 0.01; done; exit 0",
           dir, secs, dir);
}

/* The child exits and leaves a process in its group that ignores SIGTERM
 * and holds its pipes: the run's timeout comes while chime waits for it.
 * The record says timeout, and nothing is used after it is freed. */
static void timeout_while_waiting_for_leftovers(void **state) {
  (void)state;
  char dir[64], db[128], conf[128];
  paths(dir, db, conf);
  struct proc p;
  char cmd[512];
  leftover_command(cmd, sizeof cmd, dir, 3);
  assert_int_equal(run(&p,
                       (const char *const[]){"every", "1h", "--start-now", "--max-runs", "1", "--timeout", "1s",
                                             "--kill-grace", "10s", "--name", "left", "--db", db, "--", "sh", "-c",
                                             cmd, NULL},
                       VIRTUAL),
                   0);
  assert_int_equal(q(db, "SELECT count(*) FROM runs WHERE outcome = 'timeout' AND exit_code = 0"), 1);
  assert_null(strstr(p.log, "outcome=ok"));
  proc_free(&p);
}

/* The same, with SIGTERM to chime while it waits for the leftovers. */
static void sigterm_while_waiting_for_leftovers(void **state) {
  (void)state;
  char dir[64], db[128], conf[128];
  paths(dir, db, conf);
  struct proc p;
  char cmd[512];
  leftover_command(cmd, sizeof cmd, dir, 4);
  start(&p,
        (const char *const[]){"every", "1h", "--start-now", "--kill-grace", "10s", "--name", "left", "--db", db, "--",
                              "sh", "-c", cmd, NULL},
        NULL);
  assert_true(wait_log(&p, "line=ready", 20));
  assert_true(wait_log(&p, "processes left in the group", 20));
  kill(p.pid, SIGTERM);
  assert_int_equal(finish(&p, 30), 0);
  assert_int_equal(q(db, "SELECT count(*) FROM runs WHERE outcome = 'stopped'"), 1);
  assert_int_equal(q(db, "SELECT count(*) FROM runs"), 1);
  proc_free(&p);
}

/* The log on a pipe whose reader has gone: chime does not die of SIGPIPE,
 * its jobs run and are recorded; and its children get SIGPIPE at its
 * default action (chime's handler is not SIG_IGN, which they would keep). */
static void closed_log_pipe_does_not_kill_the_daemon(void **state) {
  (void)state;
  char dir[64], db[128], conf[128];
  paths(dir, db, conf);
  int fds[2];
  assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
  close(fds[0]);
  struct proc p;
  start_err(&p,
            (const char *const[]){"every", "1s", "--max-runs", "2", "--name", "sig", "--db", db, "--", "grep",
                                  "^SigIgn", "/proc/self/status", NULL},
            VIRTUAL, fds[1]);
  close(fds[1]);
  assert_int_equal(finish(&p, 60), 0);
  assert_int_equal(q(db, "SELECT count(*) FROM runs WHERE outcome = 'ok'"), 2);
  unsigned long long ignored = ~0ULL;
  char tail[256];
  long long v;
  assert_int_equal(query(db, "SELECT CAST(stdout_tail AS TEXT) FROM runs LIMIT 1", &v, tail, sizeof tail), 1);
  assert_int_equal(sscanf(tail, "SigIgn: %llx", &ignored), 1);
  assert_int_equal(ignored & (1ULL << (SIGPIPE - 1)), 0);
  proc_free(&p);
}

/* The log on a pipe nobody reads, full after a few runs: chime drops lines
 * rather than wait, and its jobs go on. */
static void full_log_pipe_does_not_freeze_the_daemon(void **state) {
  (void)state;
  char dir[64], db[128], conf[128];
  paths(dir, db, conf);
  int fds[2];
  assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
  struct proc p;
  /* 300 lines a run, each logged: ten runs are five times the pipe */
  start_err(&p, (const char *const[]){"every", "1s", "--max-runs", "10", "--db", db, "--", "seq", "1", "300", NULL},
            VIRTUAL, fds[1]);
  close(fds[1]);
  assert_int_equal(finish(&p, 30), 0);
  assert_int_equal(q(db, "SELECT count(*) FROM runs WHERE outcome = 'ok'"), 10);
  close(fds[0]);
  proc_free(&p);
}

/* SIGTERM reaches every run at once, and the runs share one grace: three
 * that ignore it are killed together when it ends, not one after another. */
static void shutdown_takes_one_grace_for_every_job(void **state) {
  (void)state;
  char dir[64], db[128], conf[128];
  paths(dir, db, conf);
  char text[1024] = "";
  for (int i = 1; i <= 3; i++)
    snprintf(text + strlen(text), sizeof text - strlen(text),
             "[job s%d]\nevery = 1h\nstart_now = true\ncommand = sh -c 'trap \"\" TERM; echo ready; sleep 60'\n", i);
  write_file(conf, text, 0644);
  struct proc p;
  start(&p, (const char *const[]){"run", conf, "--db", db, "--shutdown-grace", "3s", NULL}, NULL);
  for (int i = 1; i <= 3; i++) {
    char ready[64];
    snprintf(ready, sizeof ready, "job=s%d stream=stdout", i);
    assert_true(wait_log(&p, ready, 20)); /* its trap is set */
  }
  double t0 = mono();
  kill(p.pid, SIGTERM);
  assert_int_equal(finish(&p, 60), 0);
  double took = mono() - t0;
  assert_true(took >= 2.5);    /* the grace was given */
  assert_true(took < 2 * 3 + 1); /* once: three in a row would take 9 s */
  assert_int_equal(q(db, "SELECT count(*) FROM runs WHERE outcome = 'stopped' AND signal = 9"), 3);
  assert_int_equal(q(db, "SELECT count(*) FROM runs WHERE ended IS NULL"), 0);
  for (int i = 1; i <= 3; i++) {
    char sql[96];
    snprintf(sql, sizeof sql, "SELECT pid FROM runs WHERE job = 's%d'", i);
    assert_true(group_gone((pid_t)q(db, sql), 10));
  }
  proc_free(&p);
}

/* Job a, runs of 1.5 s every 100 ms, started; then its version `v`
 * (env VERSION=v) reloaded while its first run goes. */
static const char long_runs[] = "[job a]\nevery = 100ms\nstart_now = true\ncommand = sh -c 'echo begin; sleep 1.5; "
                                "echo done'\n";

static void start_long_runs(struct proc *p, const char *conf, const char *db) {
  write_file(conf, long_runs, 0644);
  start(p, (const char *const[]){"run", conf, "--db", db, NULL}, NULL);
  assert_true(wait_log(p, "line=begin", 20));
}

static void reload_version(struct proc *p, const char *conf, int v) {
  char changed[512];
  snprintf(changed, sizeof changed, "%senv = VERSION=%d\n", long_runs, v);
  write_file(conf, changed, 0644);
  size_t from = p->len;
  kill(p->pid, SIGHUP);
  assert_true(wait_log_from(p, from, "event=reload ", 20));
}

/* A job changed by a reload while its old version runs: with overlap =
 * skip, the new version starts no run until the old one has ended. */
static void reloaded_job_does_not_overlap_its_old_run(void **state) {
  (void)state;
  char dir[64], db[128], conf[128];
  paths(dir, db, conf);
  struct proc p;
  start_long_runs(&p, conf, db);
  reload_version(&p, conf, 2);
  assert_true(wait_log(&p, "kept=0 started=1 stopped=1", 20));
  assert_true(wait_log(&p, "line=done", 20));
  size_t done = (size_t)(strstr(p.log, "line=done") - p.log);
  assert_true(wait_log_from(&p, done, "event=start job=a ", 20)); /* the new version's first run */
  kill(p.pid, SIGTERM);
  assert_int_equal(finish(&p, 30), 0);
  size_t reload = (size_t)(strstr(p.log, "event=reload ") - p.log);
  assert_true(reload < done);
  const char *between = strstr(p.log + reload, "event=start job=a ");
  assert_true(between > p.log + done); /* none between the reload and the old run's end */
  assert_non_null(strstr(p.log + reload, "event=skip job=a reason=overlap"));
  assert_int_equal(q(db, OVERLAPS), 0);
  proc_free(&p);
}

/* Reloads in a row, the second before the job's second version ran: its
 * third version waits for the first's run too (the second, with no run,
 * has ended by then). */
static void reloads_in_a_row_wait_for_the_oldest_run(void **state) {
  (void)state;
  char dir[64], db[128], conf[128];
  paths(dir, db, conf);
  struct proc p;
  start_long_runs(&p, conf, db);
  size_t first = p.len;
  reload_version(&p, conf, 2);
  reload_version(&p, conf, 3);
  assert_true(wait_log(&p, "line=done", 20));
  size_t done = (size_t)(strstr(p.log, "line=done") - p.log);
  assert_true(wait_log_from(&p, done, "event=start job=a ", 20)); /* the third version's first run */
  kill(p.pid, SIGTERM);
  assert_int_equal(finish(&p, 30), 0);
  const char *between = strstr(p.log + first, "event=start job=a ");
  assert_true(between > p.log + done); /* none between the reloads and the first run's end */
  assert_int_equal(q(db, OVERLAPS), 0);
  proc_free(&p);
}

/* A job changed by a reload stops ticking: with overlap = replace, its old
 * version's next tick does not cancel the run left to finish. */
static void retired_replace_job_lets_its_run_finish(void **state) {
  (void)state;
  char dir[64], db[128], conf[128];
  paths(dir, db, conf);
  const char *cmd = "overlap = replace\ncommand = sh -c 'echo begin; sleep 1.5; echo done'\n";
  char first[512], second[512];
  snprintf(first, sizeof first, "[job a]\nevery = 1s\nstart_now = true\n%s", cmd);
  snprintf(second, sizeof second, "[job a]\nevery = 1h\n%s", cmd); /* the new version's first tick: in an hour */
  struct proc p;
  start_then_reload(&p, conf, db, first, second);
  assert_true(wait_log(&p, "kept=0 started=1 stopped=1", 20));
  assert_true(wait_log(&p, "event=end job=a", 20));
  kill(p.pid, SIGTERM);
  assert_int_equal(finish(&p, 30), 0);
  assert_non_null(strstr(p.log, "line=done"));
  assert_int_equal(q(db, "SELECT count(*) FROM runs"), 1);
  assert_int_equal(q(db, "SELECT count(*) FROM runs WHERE outcome = 'ok'"), 1);
  proc_free(&p);
}

/* A user with supplementary groups (found in the group file): the child
 * has them all, as login and cron give them.  Root only. */
static void job_runs_with_the_users_groups(void **state) {
  (void)state;
  if (geteuid() != 0) skip();
  char user[64] = "";
  gid_t extra = 0;
  setgrent();
  for (struct group *g; !*user && (g = getgrent()) != NULL;) {
    struct passwd *pw = g->gr_mem && g->gr_mem[0] ? getpwnam(g->gr_mem[0]) : NULL;
    if (pw && pw->pw_gid != g->gr_gid) snprintf(user, sizeof user, "%s", pw->pw_name), extra = g->gr_gid;
  }
  endgrent();
  if (!*user) skip();
  char dir[64], db[128], conf[128], want[32];
  paths(dir, db, conf);
  struct proc p;
  assert_int_equal(run(&p,
                       (const char *const[]){"every", "1s", "--max-runs", "1", "--user", user, "--name", "ids", "--db",
                                             db, "--", "id", "-G", NULL},
                       VIRTUAL),
                   0);
  snprintf(want, sizeof want, " %u", (unsigned)extra);
  const char *line = strstr(p.log, "job=ids stream=stdout");
  assert_non_null(line);
  line = strstr(line, "line=");
  assert_non_null(line);
  char ids[256];
  snprintf(ids, sizeof ids, " %.*s ", (int)strcspn(line + 6, "\"\n"), line + 6);
  if (!strstr(ids, want)) print_error("id -G of %s: %s; wanted %s\n", user, ids, want);
  assert_non_null(strstr(ids, want));
  proc_free(&p);
}

/* A reload is not a restart: a job with catch_up changed by it (here to a
 * shorter interval, which puts ticks since its last run in the past)
 * catches nothing up. */
static void reload_catches_nothing_up(void **state) {
  (void)state;
  char dir[64], db[128], conf[128];
  paths(dir, db, conf);
  write_file(conf, "[job a]\nevery = 1h\nstart_now = true\ncatch_up = true\ncommand = echo one\n", 0644);
  struct proc p;
  start(&p, (const char *const[]){"run", conf, "--db", db, NULL}, NULL);
  assert_true(wait_log(&p, "event=end job=a", 20));
  usleep(400000); /* at least four of the new interval since the last tick */
  write_file(conf, "[job a]\nevery = 100ms\ncatch_up = true\ncommand = echo two\n", 0644);
  kill(p.pid, SIGHUP);
  assert_true(wait_log(&p, "kept=0 started=1 stopped=1", 20));
  assert_true(wait_log(&p, "line=two", 20)); /* the new version's first tick */
  kill(p.pid, SIGTERM);
  assert_int_equal(finish(&p, 30), 0);
  assert_int_equal(count(p.log, "event=catch_up"), 0);
  assert_int_equal(count(p.log, "catch_up=true"), 0);
  proc_free(&p);
}

/* A job that double-forks a process (its parent exits, as a daemon's
 * does): chime adopts it as a subreaper, ends it with its run's group and
 * reaps it: nothing of it is left, not even a zombie for init. */
static void double_forked_leftover_is_adopted_and_reaped(void **state) {
  (void)state;
  char dir[64], db[128], conf[128], cmd[1024], pidfile[128];
  paths(dir, db, conf);
  snprintf(pidfile, sizeof pidfile, "%s/pid", dir);
  snprintf(cmd, sizeof cmd,
           "(sh -c 'trap \"\" TERM; echo $$ > %s.tmp; mv %s.tmp %s; exec sleep 30' &); "
           "while [ ! -e %s ]; do sleep 0.01; done; echo ready",
           pidfile, pidfile, pidfile, pidfile);
  struct proc p;
  start(&p,
        (const char *const[]){"every", "1h", "--start-now", "--max-runs", "1", "--kill-grace", "3s", "--name", "df",
                              "--db", db, "--", "sh", "-c", cmd, NULL},
        NULL); /* the real clock: the 3 s grace outlasts the look at its parent below */
  assert_true(wait_log(&p, "line=ready", 20));
  FILE *f = fopen(pidfile, "r");
  assert_non_null(f);
  int pid = 0;
  assert_int_equal(fscanf(f, "%d", &pid), 1);
  fclose(f);
  /* its parent has exited: it is chime's now */
  char path[64], status[4096];
  snprintf(path, sizeof path, "/proc/%d/status", pid);
  int ppid = 0;
  for (double end = mono() + 10; ppid != p.pid && mono() < end; usleep(10000)) {
    f = fopen(path, "r");
    if (!f) break;
    size_t n = fread(status, 1, sizeof status - 1, f);
    fclose(f);
    status[n] = '\0';
    const char *at = strstr(status, "PPid:");
    ppid = at ? atoi(at + 5) : 0;
  }
  assert_int_equal(ppid, p.pid);
  assert_int_equal(finish(&p, 30), 0);
  assert_int_equal(kill(pid, 0), -1); /* gone, reaped: not a zombie */
  assert_int_equal(errno, ESRCH);
  assert_true(group_gone((pid_t)q(db, "SELECT pid FROM runs"), 1));
  proc_free(&p);
}

/* Each --env is one NAME=VALUE, its value as the shell gave it. */
static void env_options_are_one_variable_each(void **state) {
  (void)state;
  struct proc p;
  assert_int_equal(run(&p,
                       (const char *const[]){"every", "1s", "--max-runs", "1", "--env", "A=1", "--env", "B=two words",
                                             "--env", "C=$x 'q'", "--env=D=4", "--db", "none", "--", "sh", "-c",
                                             "echo \"$A|$B|$C|$D\"", NULL},
                       VIRTUAL),
                   0);
  assert_non_null(strstr(p.log, "line=\"1|two words|$x 'q'|4\""));
  proc_free(&p);
  assert_int_equal(run(&p, (const char *const[]){"every", "1s", "--env", "NOVALUE", "--", "true", NULL}, VIRTUAL), 2);
  assert_non_null(strstr(p.log, "--env: \"NOVALUE\" is not NAME=VALUE"));
  proc_free(&p);
}

static long rss_kib(pid_t pid) {
  char path[64], text[4096];
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  size_t n = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[n] = '\0';
  const char *at = strstr(text, "VmRSS:");
  return at ? atol(at + 6) : -1;
}

/* A child that writes without end (yes) while another job runs every
 * 100 ms: the other job keeps its schedule, and chime's memory stays
 * bounded (each stream keeps its last 64 KiB).  Real time. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SANITIZED 1
#endif
#endif

#define FLOOD "head -c 100000 /dev/zero; echo ok" /* more than a pipe holds */

/* Runs chime with args (after the program name) once for every allocation
 * it makes, failing that one (tests/cli/failmalloc.c fails chime's n-th
 * malloc, calloc or realloc, once, for n = 1, 2, ... until n is past its
 * last).  chime never crashes or hangs: it exits 1 having said why, or 0
 * with `runs` runs in its history (fewer only if it said a job could not
 * start for want of memory), each whole, its output read to the end, or the
 * out-of-memory error that kept it from starting (a run whose start could
 * not be recorded is recorded whole at its end). */
static void walk_allocations(const char *const *args, const char *db, long long runs) {
  char preload[600], at[32];
  snprintf(preload, sizeof preload, "LD_PRELOAD=%s", getenv("CHIME_FAILMALLOC"));
  long n = 1, exits = 0;
  for (bool fired = true; fired; n++) {
    unlink(db);
    snprintf(at, sizeof at, "FAIL_AT=%ld", n);
    struct proc p;
    start(&p, args, (const char *const[]){"CHIME_CLOCK=virtual", preload, at, NULL});
    int rc = finish(&p, 30);
    fired = strstr(p.log, "failmalloc: fired") != NULL;
    if (rc != 0 && rc != 1) print_error("failing allocation %ld: exit %d\n%s\n", n, rc, p.log);
    assert_true(rc == 0 || rc == 1);
    if (rc == 1) {
      assert_true(strstr(p.log, "out of memory") || strstr(p.log, "level=error"));
      exits++;
    } else {
      long long all = q(db, "SELECT count(*) FROM runs");
      long long bad = q(db, "SELECT count(*) FROM runs WHERE NOT ((outcome = 'ok' AND length(stdout_tail) = 65536) OR "
                            "(outcome = 'error' AND error LIKE '%out of memory%'))");
      bool dropped = strstr(p.log, "event=not_started") && strstr(p.log, "out of memory");
      if (bad || (all != runs && !dropped))
        print_error("failing allocation %ld: %lld runs, %lld not whole\n%s\n", n, all, bad, p.log);
      assert_int_equal(bad, 0);
      assert_true(all == runs || (dropped && all < runs));
    }
    proc_free(&p);
  }
  print_message("%ld allocations failed in turn; %ld made chime exit\n", n - 2, exits);
  assert_true(n > 100);
}

/* walk_allocations over two runs of `chime every`, or over `chime run` of a
 * file with an interval job (two runs) and a calendar job (one).  Not
 * where a sanitizer's runtime replaces malloc. */
static void walk_command(bool config) {
#ifdef SANITIZED
  print_message("skipped: a sanitizer's runtime replaces malloc, so failmalloc cannot fail it\n");
  skip();
#endif
  char dir[64], db[128], conf[128];
  paths(dir, db, conf);
  write_file(conf,
             "[defaults]\nmax_runs = 2\ncommand = sh -c \"" FLOOD "\"\n"
             "[job a]\nevery = 100ms\n"
             "[job b]\nschedule = * * * * *\nmax_runs = 1\n",
             0644);
  if (config)
    walk_allocations((const char *const[]){"run", conf, "--db", db, NULL}, db, 3);
  else
    walk_allocations(
        (const char *const[]){"every", "100ms", "--max-runs", "2", "--db", db, "--", "sh", "-c", FLOOD, NULL}, db, 2);
}

static void every_allocation_failure_ends_cleanly(void **state) {
  (void)state;
  walk_command(false);
}

static void every_allocation_failure_of_a_config_run_ends_cleanly(void **state) {
  (void)state;
  walk_command(true);
}

static void endless_output_does_not_freeze_other_jobs(void **state) {
  (void)state;
  char dir[64], db[128], conf[128];
  paths(dir, db, conf);
  write_file(conf,
             "[job flood]\nevery = 1h\nstart_now = true\ntimeout = 4s\nkill_grace = 1s\ncommand = yes\n"
             "[job tick]\nevery = 100ms\ncommand = true\n",
             0644);
  int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
  struct proc p;
  start_err(&p, (const char *const[]){"run", conf, "--db", db, NULL}, NULL, null); /* millions of lines */
  close(null);
  double end = mono() + 30;
  while (q_soon(db, "SELECT count(*) FROM runs WHERE job = 'tick'") < 2 && mono() < end) usleep(10000);
  long base = rss_kib(p.pid), most = base;
  while (q_soon(db, "SELECT count(*) FROM runs WHERE job = 'flood' AND ended IS NOT NULL") < 1 && mono() < end) {
    long now = rss_kib(p.pid);
    most = now > most ? now : most;
    usleep(50000);
  }
  kill(p.pid, SIGTERM);
  assert_int_equal(finish(&p, 30), 0);
  assert_int_equal(q(db, "SELECT count(*) FROM runs WHERE job = 'flood' AND outcome = 'timeout'"), 1);
  assert_int_equal(q(db, "SELECT length(stdout_tail) FROM runs WHERE job = 'flood'"), 65536);
  /* about 40 ticks fell during the flood's 4 s: a frozen daemon runs one or
   * two of them, late; a busy machine may make it skip some, not most */
  long long ticks = q(db, "SELECT count(*) FROM runs r WHERE job = 'tick' AND started > "
                          "(SELECT started FROM runs WHERE job = 'flood') AND ended < (SELECT ended FROM runs WHERE job = 'flood')");
  print_message("%lld ticks during the flood\n", ticks);
  assert_true(ticks >= 10);
  assert_true(q(db, "SELECT max(late) FROM runs WHERE job = 'tick'") < 1000000000LL);
  assert_true(base > 0);
  if (most - base > 64 * 1024) print_error("RSS from %ld KiB to %ld KiB\n", base, most);
  assert_true(most - base < 64 * 1024);
  proc_free(&p);
}

/* A calendar job's ticks are exact instants, in the log and the history,
 * across a change of time: 02:30 Berlin on 28, 29 (which has no 02:30: the
 * first instant after the gap, 03:00 CEST) and 30 March 2026. */
static void calendar_ticks_are_exact_in_the_log_and_the_history(void **state) {
  (void)state;
  char dir[64], db[128], conf[128];
  paths(dir, db, conf);
  struct proc p;
  assert_int_equal(run(&p, (const char *const[]){"cron", "30 2 * * *", "--tz", "Europe/Berlin", "--max-runs", "3",
                                                 "--name", "nightly", "--db", db, "--", "true", NULL},
                       (const char *const[]){"CHIME_CLOCK=virtual", "CHIME_TEST_WALL=1774656000", NULL}),
                   0);
  assert_non_null(strstr(p.log, "event=scheduled job=nightly schedule=\"30 2 * * *\" next=2026-03-28T01:30:00.000Z"));
  assert_non_null(strstr(p.log, "scheduled=2026-03-28T01:30:00.000Z late=0.000"));
  assert_non_null(strstr(p.log, "scheduled=2026-03-29T01:00:00.000Z late=0.000"));
  assert_non_null(strstr(p.log, "scheduled=2026-03-30T00:30:00.000Z late=0.000"));
  assert_int_equal(q(db, "SELECT count(*) FROM runs WHERE scheduled IN (1774661400000000000, 1774746000000000000,"
                         " 1774830600000000000) AND late = 0 AND outcome = 'ok'"),
                   3);
  proc_free(&p);
}

/* The daemon stopped (SIGSTOP) for a second while a 10 ms job runs: the
 * ticks it missed are one skip, one line and one row with their count;
 * the job goes on, and SIGTERM stops it at once.  Real time. */
static void a_stalled_daemon_records_its_missed_ticks_as_one_row(void **state) {
  (void)state;
  char dir[64], db[128], conf[128];
  paths(dir, db, conf);
  struct proc p;
  start(&p, (const char *const[]){"every", "10ms", "--name", "fast", "--db", db, "--", "true", NULL}, NULL);
  assert_true(wait_log(&p, "event=end job=fast", 20));
  kill(p.pid, SIGSTOP);
  usleep(1000000);
  kill(p.pid, SIGCONT);
  assert_true(wait_log(&p, "reason=missed", 20));
  size_t at = (size_t)(strstr(p.log, "reason=missed") - p.log);
  assert_true(wait_log_from(&p, at, "event=end job=fast", 20)); /* it goes on */
  double t0 = mono();
  kill(p.pid, SIGTERM);
  assert_int_equal(finish(&p, 20), 0);
  assert_true(mono() - t0 < 10);
  assert_true(count(p.log, "reason=missed") <= 3); /* a line per burst, not per tick */
  assert_true(q(db, "SELECT max(skipped) FROM runs WHERE reason = 'missed'") >= 50);
  assert_true(q(db, "SELECT count(*) FROM runs WHERE reason = 'missed'") <= 3);
  assert_true(q(db, "SELECT count(*) FROM runs WHERE outcome = 'skipped' AND last_scheduled > scheduled") >= 1);
  /* the runs and the skipped ticks tile the grid: each tick once, as a run
   * or in a burst (the tick that ran late is not among the skipped, and
   * the last skipped tick is); an interval's ticks are monotonic instants,
   * so their wall times are 10 ms apart to within the wall clock's slew:
   * counted to the nearest interval */
  assert_int_equal(q(db, "SELECT count(*) FROM runs r JOIN runs s ON s.outcome = 'skipped' AND r.outcome != 'skipped' "
                         "AND r.scheduled BETWEEN s.scheduled AND s.last_scheduled"),
                   0);
  assert_int_equal(q(db, "SELECT count(*) FROM runs WHERE outcome = 'skipped' AND "
                         "(last_scheduled - scheduled + 5000000) / 10000000 + 1 != skipped"),
                   0);
  assert_int_equal(q(db, "SELECT (SELECT count(*) FROM runs WHERE outcome != 'skipped') + "
                         "(SELECT sum(skipped) FROM runs WHERE outcome = 'skipped') - "
                         "((SELECT max(coalesce(last_scheduled, scheduled)) - min(scheduled) + 5000000 FROM runs) / 10000000 + 1)"),
                   0);
  proc_free(&p);
}

/* A uid out of range is refused with the line that gives it (4294967296
 * would be uid 0 once cast); so is an interval shorter than a program can
 * be started at. */
static void out_of_range_numbers_are_refused(void **state) {
  (void)state;
  char dir[64], db[128], conf[128];
  paths(dir, db, conf);
  static const char *const bad[] = {"user = 4294967296\n", "user = 4295032830\n", "user = 4294967295\n",
                                    "every = 1ns\n", "every = 9ms\n", "schedule = @every 1us\n"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char text[256];
    snprintf(text, sizeof text, "[job a]\n%s%scommand = true\n", strncmp(bad[i], "user", 4) == 0 ? "every = 1s\n" : "",
             bad[i]);
    write_file(conf, text, 0644);
    struct proc p;
    assert_int_equal(run(&p, (const char *const[]){"check", conf, NULL}, NULL), 1);
    if (!strstr(p.log, "c.conf:")) fail_msg("%s: %s", bad[i], p.log);
    assert_non_null(strstr(p.log, strncmp(bad[i], "user", 4) == 0 ? "out of range" : "shorter than 10ms"));
    proc_free(&p);
  }
  write_file(conf, "[job a]\nevery = 0.0000000001s\ncommand = true\n", 0644); /* not zero, under 1ns */
  struct proc p;
  assert_int_equal(run(&p, (const char *const[]){"check", conf, NULL}, NULL), 1);
  assert_non_null(strstr(p.log, "c.conf:2: [job a] every: \"0.0000000001s\" is out of range"));
  proc_free(&p);
}

/* chime history shows rows of skipped ticks with their count and reason. */
static void history_shows_skipped_ticks(void **state) {
  (void)state;
  char dir[64], db[128], conf[128];
  paths(dir, db, conf);
  struct proc p;
  assert_int_equal(run(&p, (const char *const[]){"every", "100ms", "--max-runs", "2", "--name", "slow", "--db", db,
                                                 "--", "sleep", "0.25", NULL},
                       VIRTUAL),
                   0);
  proc_free(&p);
  assert_true(q(db, "SELECT count(*) FROM runs WHERE outcome = 'skipped' AND reason = 'overlap'") >= 2);
  assert_int_equal(run(&p, (const char *const[]){"history", "--db", db, NULL}, NULL), 0);
  assert_non_null(strstr(p.stdout_text, "skipped"));
  assert_non_null(strstr(p.stdout_text, "overlap"));
  proc_free(&p);
  assert_int_equal(run(&p, (const char *const[]){"history", "--db", db, "--json", NULL}, NULL), 0);
  assert_non_null(strstr(p.stdout_text, "\"reason\":\"overlap\",\"skipped\":1,"));
  proc_free(&p);
}

/* A crontab run as it is: @reboot once at the start, a program found in
 * the file's PATH (not chime's), its % lines on its standard input, its
 * output mailed to MAILTO through the mailer (a fake one, recording what
 * it is given), and the history of both jobs. */
static void a_crontab_runs_as_cron_runs_it(void **state) {
  (void)state;
  char dir[64], db[128], conf[128], path[256], text[1024], env[300];
  paths(dir, db, conf);
  snprintf(path, sizeof path, "%s/mytool", dir);
  write_file(path, "#!/bin/sh\ncat\necho done\n", 0755);
  snprintf(path, sizeof path, "%s/sendmail", dir);
  snprintf(text, sizeof text, "#!/bin/sh\nprintf '%%s\\n' \"$@\" >> %s/mail-args\ncat >> %s/mail-in\n", dir, dir);
  write_file(path, text, 0755);
  snprintf(text, sizeof text,
           "SHELL=/bin/sh\nPATH=%s:/usr/bin:/bin\nMAILTO=ops@example.com\nCRON_TZ=UTC\n"
           "@reboot echo booted\n"
           "* * * * * mytool%%line one%%line two\n",
           dir);
  snprintf(conf, sizeof conf, "%s/crontab", dir);
  write_file(conf, text, 0644);
  snprintf(env, sizeof env, "CHIME_SENDMAIL=%s", path);
  struct proc p;
  start(&p, (const char *const[]){"crontab", conf, "--db", db, NULL},
        (const char *const[]){"CHIME_CLOCK=virtual", "CHIME_TEST_WALL=1000000", env, NULL});
  assert_true(wait_log(&p, "line=booted", 20));
  assert_true(wait_log(&p, "line=done", 20));
  char mail[128], in[8192] = "";
  snprintf(mail, sizeof mail, "%s/mail-in", dir);
  for (double end = mono() + 20; !strstr(in, "done\n") && mono() < end; pump(&p, 0.05)) { /* both mails */
    FILE *f = fopen(mail, "r");
    size_t n = f ? fread(in, 1, sizeof in - 1, f) : 0;
    in[n] = '\0';
    if (f) fclose(f);
  }
  kill(p.pid, SIGTERM);
  assert_int_equal(finish(&p, 30), 0);
  assert_int_equal(count(p.log, "line=booted"), 1);
  assert_non_null(strstr(p.log, "line=\"line one\""));
  assert_non_null(strstr(p.log, "line=\"line two\""));
  assert_non_null(strstr(in, "booted\n"));
  assert_non_null(strstr(in, "To: ops@example.com\n"));
  assert_non_null(strstr(in, "Subject: Cron <"));
  assert_non_null(strstr(in, "line one\nline two\ndone\n"));
  assert_true(q(db, "SELECT count(*) FROM runs WHERE outcome = 'ok'") >= 2);
  proc_free(&p);
}

/* A pid from a file a job wrote, waiting for it to be there. */
static int pid_from(const char *path, struct proc *p) {
  for (double end = mono() + 20; access(path, R_OK) != 0 && mono() < end;) pump(p, 0.02);
  FILE *f = fopen(path, "r");
  int pid = 0;
  if (f && fscanf(f, "%d", &pid) != 1) pid = 0;
  if (f) fclose(f);
  return pid;
}

static bool process_gone(pid_t pid, double limit) {
  for (double end = mono() + limit; kill(pid, 0) == 0 || errno == EPERM;) {
    if (mono() > end) return false;
    waitpid(pid, NULL, WNOHANG);
    usleep(10000);
  }
  return true;
}

/* A run's descendant that left its group and session (double fork,
 * setsid) does not outlive the daemon's shutdown. */
static void shutdown_ends_a_descendant_in_its_own_session(void **state) {
  (void)state;
  char dir[64], db[128], conf[128], cmd[512], pidfile[128];
  paths(dir, db, conf);
  snprintf(pidfile, sizeof pidfile, "%s/desc", dir);
  snprintf(cmd, sizeof cmd, "(setsid sh -c 'echo $$ > %s.tmp; mv %s.tmp %s; exec sleep 60' &); sleep 30", pidfile,
           pidfile, pidfile);
  struct proc p;
  start(&p, (const char *const[]){"every", "1h", "--start-now", "--name", "ds", "--db", db, "--", "sh", "-c", cmd, NULL},
        NULL);
  int pid = pid_from(pidfile, &p);
  assert_true(pid > 0);
  double t0 = mono();
  kill(p.pid, SIGTERM);
  assert_int_equal(finish(&p, 30), 0);
  assert_true(mono() - t0 < 15);
  assert_true(process_gone(pid, 5));
  proc_free(&p);
}

/* A second SIGTERM acts at once, even while a descendant that ignores
 * SIGTERM holds the run's pipes and the grace is long. */
static void a_second_sigterm_acts_at_once(void **state) {
  (void)state;
  char dir[64], db[128], conf[128], cmd[512], pidfile[128];
  paths(dir, db, conf);
  snprintf(pidfile, sizeof pidfile, "%s/desc", dir);
  snprintf(cmd, sizeof cmd,
           "(setsid sh -c 'trap \"\" TERM; echo $$ > %s.tmp; mv %s.tmp %s; while :; do sleep 1; done' &); "
           "trap '' TERM; sleep 60",
           pidfile, pidfile, pidfile);
  struct proc p;
  start(&p, (const char *const[]){"every", "1h", "--start-now", "--name", "ds", "--shutdown-grace", "30s", "--db", db,
                                  "--", "sh", "-c", cmd, NULL},
        NULL);
  int pid = pid_from(pidfile, &p);
  assert_true(pid > 0);
  kill(p.pid, SIGTERM);
  assert_true(wait_log(&p, "event=stopping", 10));
  usleep(300000); /* the first one is being acted on: the grace runs */
  assert_int_equal(kill(p.pid, 0), 0);
  double t0 = mono();
  kill(p.pid, SIGTERM);
  finish(&p, 30);
  print_message("the second SIGTERM ended chime in %.2f s\n", mono() - t0);
  assert_true(mono() - t0 < 3);
  assert_true(process_gone(pid, 5));
  proc_free(&p);
}

/* A daemon killed with SIGKILL: its run's child dies with it (parent-death
 * signal), and what that child started in its group is killed by the next
 * chime on the same history, which marks the run interrupted. */
static void a_sigkilled_daemon_leaves_no_run_behind(void **state) {
  (void)state;
  char dir[64], db[128], conf[128], cmd[512], pidfile[128];
  paths(dir, db, conf);
  snprintf(pidfile, sizeof pidfile, "%s/grandchild", dir);
  snprintf(cmd, sizeof cmd, "sh -c 'echo $$ > %s.tmp; mv %s.tmp %s; exec sleep 60' & wait", pidfile, pidfile, pidfile);
  struct proc p;
  start(&p, (const char *const[]){"every", "1h", "--start-now", "--name", "k9", "--db", db, "--", "sh", "-c", cmd, NULL},
        NULL);
  int grandchild = pid_from(pidfile, &p);
  assert_true(grandchild > 0);
  while (q_soon(db, "SELECT count(*) FROM runs WHERE outcome = 'running'") < 1) pump(&p, 0.05);
  pid_t child = (pid_t)q(db, "SELECT pid FROM runs");
  kill(p.pid, SIGKILL);
  finish(&p, 30);
  proc_free(&p);
  assert_true(process_gone(child, 5));      /* the run's child, at once */
  assert_int_equal(kill(grandchild, 0), 0); /* its child: left, until the next chime */
  assert_int_equal(run(&p, (const char *const[]){"every", "1h", "--max-runs", "1", "--name", "other", "--db", db, "--",
                                                 "true", NULL},
                       VIRTUAL),
                   0);
  assert_true(process_gone(grandchild, 5));
  assert_int_equal(q(db, "SELECT count(*) FROM runs WHERE job = 'k9' AND outcome = 'interrupted'"), 1);
  proc_free(&p);
}

/* A policy's parameter without its policy would be ignored: refused with
 * its line (the library refuses it too); a [defaults] one is a default for
 * the jobs it fits. */
static void parameters_without_their_policy_are_refused(void **state) {
  (void)state;
  char dir[64], db[128], conf[128];
  paths(dir, db, conf);
  struct proc p;
  write_file(conf, "[job a]\nevery = 1s\ncommand = true\nmax_concurrent = 3\n[job b]\nevery = 1s\ncommand = true\n"
                   "backoff = 5s\n",
             0644);
  assert_int_equal(run(&p, (const char *const[]){"check", conf, NULL}, NULL), 1);
  assert_non_null(strstr(p.log, "c.conf:4: [job a] max_concurrent: only with overlap = allow"));
  assert_non_null(strstr(p.log, "c.conf:8: [job b] backoff: only with on_error = backoff"));
  proc_free(&p);
  write_file(conf, "[defaults]\nmax_concurrent = 3\nbackoff = 5s\n[job a]\nevery = 1s\ncommand = true\n", 0644);
  assert_int_equal(run(&p, (const char *const[]){"check", conf, NULL}, NULL), 0);
  proc_free(&p);
  assert_int_equal(run(&p, (const char *const[]){"every", "1s", "--max-concurrent", "2", "--", "true", NULL}, NULL), 2);
  assert_non_null(strstr(p.log, "--max-concurrent: only with overlap = allow"));
  proc_free(&p);
}

/* A history that is not a regular file is refused (SQLite would make
 * /dev/null-journal beside it). */
static void a_database_that_is_not_a_file_is_refused(void **state) {
  (void)state;
  static const char *const paths_[] = {"/dev/null", "/dev/full", "/tmp"};
  for (size_t i = 0; i < 3; i++) {
    struct proc p;
    assert_int_equal(run(&p, (const char *const[]){"every", "1s", "--max-runs", "1", "--db", paths_[i], "--", "true",
                                                   NULL},
                         VIRTUAL),
                     2);
    assert_non_null(strstr(p.log, "not a regular file"));
    proc_free(&p);
    assert_int_equal(run(&p, (const char *const[]){"history", "--db", paths_[i], NULL}, NULL), 2);
    proc_free(&p);
  }
  assert_int_equal(access("/dev/null-journal", F_OK), -1);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(every_runs_on_time),
      cmocka_unit_test(overlapping_ticks_are_skipped),
      cmocka_unit_test(hung_job_is_killed_at_its_timeout),
      cmocka_unit_test(sigterm_leaves_complete_records_and_no_process),
      cmocka_unit_test(second_signal_kills_at_once),
      cmocka_unit_test(sighup_reloads_and_refuses_a_bad_config),
      cmocka_unit_test(catch_up_runs_once_after_a_missed_tick),
      cmocka_unit_test(catch_up_respects_overlap),
      cmocka_unit_test(catch_up_run_ends_at_its_timeout),
      cmocka_unit_test(replaced_runs_are_recorded_as_replaced),
      cmocka_unit_test(queued_run_cut_by_its_timeout_is_a_timeout),
      cmocka_unit_test(sigterm_stops_a_catch_up_run_let_finish),
      cmocka_unit_test(corrupt_database_gives_a_clear_error),
      cmocka_unit_test(locked_database_gives_a_clear_error),
      cmocka_unit_test(a_locked_database_delays_no_run_and_loses_none),
      cmocka_unit_test(a_full_queue_drops_the_oldest_never_what_is_being_written),
      cmocka_unit_test(the_loop_runs_above_its_jobs_where_it_may),
      cmocka_unit_test(unwritable_database_directory_is_named_and_jobs_go_on),
      cmocka_unit_test(missing_program_is_named_and_other_jobs_go_on),
      cmocka_unit_test(calendar_ticks_are_exact_in_the_log_and_the_history),
      cmocka_unit_test(a_stalled_daemon_records_its_missed_ticks_as_one_row),
      cmocka_unit_test(a_second_sigterm_acts_at_once), cmocka_unit_test(sighup_reloads_a_crontab_as_a_crontab),
      cmocka_unit_test(out_of_range_numbers_are_refused), cmocka_unit_test(history_shows_skipped_ticks),
      cmocka_unit_test(a_crontab_runs_as_cron_runs_it),
      cmocka_unit_test(bad_config_is_refused_whole_with_file_line_and_key),
      cmocka_unit_test(world_writable_config_is_refused),
      cmocka_unit_test(check_prints_the_next_five_runs),
      cmocka_unit_test(json_log_lines_are_json),
      cmocka_unit_test(old_schema_is_read_by_history_and_migrated_by_the_daemon),
      cmocka_unit_test(history_reads_a_read_only_database),
      cmocka_unit_test(bad_command_lines_exit_2),
      cmocka_unit_test(cron_job_runs_on_the_calendar),
      cmocka_unit_test(timeout_while_waiting_for_leftovers),
      cmocka_unit_test(sigterm_while_waiting_for_leftovers),
      cmocka_unit_test(closed_log_pipe_does_not_kill_the_daemon),
      cmocka_unit_test(full_log_pipe_does_not_freeze_the_daemon),
      cmocka_unit_test(shutdown_takes_one_grace_for_every_job),
      cmocka_unit_test(reloaded_job_does_not_overlap_its_old_run),
      cmocka_unit_test(reload_catches_nothing_up),
      cmocka_unit_test(job_runs_with_the_users_groups),
      cmocka_unit_test(double_forked_leftover_is_adopted_and_reaped),
      cmocka_unit_test(shutdown_ends_a_descendant_in_its_own_session),
      cmocka_unit_test(a_sigkilled_daemon_leaves_no_run_behind),
      cmocka_unit_test(parameters_without_their_policy_are_refused),
      cmocka_unit_test(a_database_that_is_not_a_file_is_refused),
      cmocka_unit_test(env_options_are_one_variable_each),
      cmocka_unit_test(endless_output_does_not_freeze_other_jobs),
      cmocka_unit_test(every_allocation_failure_ends_cleanly),
      cmocka_unit_test(every_allocation_failure_of_a_config_run_ends_cleanly),
      cmocka_unit_test(retired_replace_job_lets_its_run_finish),
      cmocka_unit_test(reloads_in_a_row_wait_for_the_oldest_run),
  };
  if (test_select(tests, sizeof tests / sizeof tests[0], argc, argv)) return 2;
  return cmocka_run_group_tests(tests, NULL, NULL);
}
