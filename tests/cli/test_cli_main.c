/* test_cli_main.c - what the chime command's main decides, through the
 * real binary: what check shows, the names it gives jobs, where the
 * history goes, how the schedule is logged. */
#define _GNU_SOURCE
/* cli_test.h's helpers for daemons (waiting for log lines, process
 * groups) have no use here. */
#pragma GCC diagnostic ignored "-Wunused-function"
#include "cli_test.h"

/* The lines of s from `from` (included) to `to` (excluded, or the end). */
static char *part(const char *s, const char *from, const char *to) {
  const char *a = strstr(s, from);
  assert_non_null(a);
  const char *b = to ? strstr(a, to) : NULL;
  return strndup(a, b ? (size_t)(b - a) : strlen(a));
}

/* check lists a job's next five runs, or all of them when max_runs says
 * there are fewer. */
static void check_lists_no_more_runs_than_max_runs(void **state) {
  (void)state;
  char dir[64], conf[128];
  scratch(dir, sizeof dir);
  snprintf(conf, sizeof conf, "%s/c.conf", dir);
  write_file(conf,
             "[job once]\nevery = 3d\nmax_runs = 1\ncommand = true\n"
             "[job thrice]\nschedule = 0 3 * * *\ntz = UTC\nmax_runs = 3\ncommand = true\n"
             "[job many]\nevery = 1h\nmax_runs = 9\ncommand = true\n"
             "[job always]\nevery = 1m\ncommand = true\n",
             0644);
  struct proc p;
  assert_int_equal(run(&p, (const char *const[]){"check", conf, NULL}, NULL), 0);
  char *once = part(p.stdout_text, "[job once]", "[job thrice]");
  char *thrice = part(p.stdout_text, "[job thrice]", "[job many]");
  char *many = part(p.stdout_text, "[job many]", "[job always]");
  char *always = part(p.stdout_text, "[job always]", "job(s), no errors");
  assert_int_equal(count(once, "Z)\n"), 1);
  assert_non_null(strstr(once, "its runs (max_runs) (if started now):"));
  assert_int_equal(count(thrice, " 03:00:00 UTC"), 3);
  assert_int_equal(count(many, "Z)\n"), 5);
  assert_non_null(strstr(many, "next runs (if started now):"));
  assert_int_equal(count(always, "Z)\n"), 5);
  free(once), free(thrice), free(many), free(always);
  proc_free(&p);
}

/* The scheduled line gives an interval as a config would write it, in both log
 * formats; a calendar job's line gives its expression. */
static void scheduled_line_gives_the_interval_as_written(void **state) {
  (void)state;
  static const struct {
    const char *every, *logfmt, *json;
  } cases[] = {
      {"3d", "every=3d ", "\"every\":\"3d\""},
      {"90m", "every=1h30m ", "\"every\":\"1h30m\""},
      {"1.5s", "every=1.5s ", "\"every\":\"1.5s\""},
      {"250ms", "every=250ms ", "\"every\":\"250ms\""},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    for (int json = 0; json < 2; json++) {
      struct proc p;
      assert_int_equal(run(&p,
                           (const char *const[]){"every", cases[i].every, "--max-runs", "1", "--db", "none",
                                                 "--log-format", json ? "json" : "logfmt", "--", "true", NULL},
                           VIRTUAL),
                       0);
      const char *line = strstr(p.log, json ? "\"event\":\"scheduled\"" : "event=scheduled ");
      assert_non_null(line);
      const char *want = json ? cases[i].json : cases[i].logfmt, *at = strstr(line, want);
      if (!at || at > strchr(line, '\n')) print_error("no %s in: %.*s\n", want, (int)strcspn(line, "\n"), line);
      assert_true(at && at < strchr(line, '\n'));
      proc_free(&p);
    }
  struct proc p;
  assert_int_equal(run(&p,
                       (const char *const[]){"cron", "0 3 * * *", "--tz", "UTC", "--max-runs", "1", "--db", "none",
                                             "--", "true", NULL},
                       VIRTUAL),
                   0);
  assert_non_null(strstr(p.log, "event=scheduled job=true schedule=\"0 3 * * *\" next="));
  proc_free(&p);
}

/* The name a job gets without --name, in the log of one run: job=NAME. */
static void named(const char *const *args, const char *name) {
  const char *argv[16] = {"every", "1h", "--max-runs", "1", "--db", "none"};
  size_t n = 6;
  for (; *args; args++) argv[n++] = *args;
  argv[n] = NULL;
  char want[128];
  snprintf(want, sizeof want, "event=scheduled job=%s every=1h ", name);
  struct proc p;
  assert_int_equal(run(&p, argv, VIRTUAL), 0);
  if (!strstr(p.log, want)) print_error("no \"%s\" in:\n%s\n", want, p.log);
  assert_non_null(strstr(p.log, want));
  proc_free(&p);
}

/* A job from the command line is named for its program, with --shell for
 * the command's first word (`--shell -- 'echo hi'` needed --name), with
 * what a name cannot hold made '_'; --name wins. */
static void command_line_job_is_named_for_its_program(void **state) {
  (void)state;
  struct proc p;
  assert_int_equal(run(&p, (const char *const[]){"every", "1h", "--max-runs", "1", "--db", "none", "--shell", "--",
                                                 "echo hi", NULL},
                       VIRTUAL),
                   0);
  assert_non_null(strstr(p.log, "event=end job=echo "));
  assert_non_null(strstr(p.log, "line=hi"));
  proc_free(&p);
  named((const char *const[]){"--shell", "--", "  /bin/printf '%s' x | cat", NULL}, "printf");
  named((const char *const[]){"--shell", "--", "cd /tmp && ls", NULL}, "cd");
  named((const char *const[]){"--shell", "--", "$(true)", NULL}, "__true_");
  named((const char *const[]){"--", "/usr/bin/", NULL}, "bin");
  named((const char *const[]){"--", "/no/such dir/my prog", "x", NULL}, "my_prog");
  char longest[128], name[80];
  snprintf(longest, sizeof longest, "/bin/%070d", 7);
  snprintf(name, sizeof name, "%064d", 0);
  named((const char *const[]){"--", longest, NULL}, name);
  named((const char *const[]){"--shell", "--name", "greet", "--", "echo hi", NULL}, "greet");
  /* a --name that is no name is still refused */
  assert_int_equal(run(&p, (const char *const[]){"every", "1h", "--name", "a b", "--", "true", NULL}, VIRTUAL), 2);
  assert_non_null(strstr(p.log, "is not a job name"));
  proc_free(&p);
}

/* Runs chime with args and env to its end: its exit code. */
static int run_env(const char *const *args, const char *const *env, struct proc *p) {
  start(p, args, env);
  return finish(p, 60);
}

/* CHIME_DB names the database, for the daemon and for history, when
 * neither --db nor the config's db does; without it, HOME or
 * XDG_STATE_HOME, chime says what to set instead of starting. */
static void chime_db_names_the_database(void **state) {
  (void)state;
  char dir[64], env_db[128], flag_db[128], conf_db[128], conf[128], text[256];
  scratch(dir, sizeof dir);
  snprintf(env_db, sizeof env_db, "%s/env.db", dir);
  snprintf(flag_db, sizeof flag_db, "%s/flag.db", dir);
  snprintf(conf_db, sizeof conf_db, "%s/conf.db", dir);
  snprintf(conf, sizeof conf, "%s/c.conf", dir);
  char *home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
  char *state_home = getenv("XDG_STATE_HOME") ? strdup(getenv("XDG_STATE_HOME")) : NULL;
  unsetenv("HOME"), unsetenv("XDG_STATE_HOME"), unsetenv("CHIME_DB");
  char env_var[160];
  snprintf(env_var, sizeof env_var, "CHIME_DB=%s", env_db);
  const char *const with_env[] = {"CHIME_CLOCK=virtual", env_var, NULL};
  const char *const once[] = {"every", "1h", "--max-runs", "1", "--", "true", NULL};
  struct proc p;

  /* nothing names it: said, nothing runs */
  assert_int_equal(run_env(once, VIRTUAL, &p), 2);
  assert_non_null(strstr(p.log, "set CHIME_DB=PATH or give --db PATH"));
  assert_null(strstr(p.log, "event=start"));
  proc_free(&p);
  assert_int_equal(run_env((const char *const[]){"history", NULL}, (const char *const[]){"CHIME_DB=", NULL}, &p), 2);
  assert_non_null(strstr(p.log, "neither XDG_STATE_HOME nor HOME is set"));
  proc_free(&p);

  /* CHIME_DB: the daemon writes there, history reads there */
  assert_int_equal(run_env(once, with_env, &p), 0);
  snprintf(text, sizeof text, "event=ready jobs=1 pid=%d db=%s\n", (int)p.pid, env_db);
  assert_non_null(strstr(p.log, text));
  proc_free(&p);
  assert_int_equal(run_env((const char *const[]){"history", "--json", NULL}, with_env, &p), 0);
  assert_int_equal(count(p.stdout_text, "\"job\":\"true\""), 1);
  proc_free(&p);

  /* --db, then the config's db, win over it */
  assert_int_equal(run_env((const char *const[]){"every", "1h", "--max-runs", "1", "--db", flag_db, "--", "true", NULL},
                           with_env, &p),
                   0);
  proc_free(&p);
  snprintf(text, sizeof text, "[chime]\ndb = %s\n[job j]\nevery = 1h\nmax_runs = 1\ncommand = true\n", conf_db);
  write_file(conf, text, 0644);
  assert_int_equal(run_env((const char *const[]){"run", conf, NULL}, with_env, &p), 0);
  proc_free(&p);
  assert_int_equal(access(flag_db, F_OK), 0);
  assert_int_equal(access(conf_db, F_OK), 0);
  assert_int_equal(run_env((const char *const[]){"history", "--json", NULL}, with_env, &p), 0);
  assert_int_equal(count(p.stdout_text, "\"job\":"), 1); /* still the one run */
  proc_free(&p);

  /* CHIME_DB=none: no history */
  assert_int_equal(run_env(once, (const char *const[]){"CHIME_CLOCK=virtual", "CHIME_DB=none", NULL}, &p), 0);
  assert_non_null(strstr(p.log, " db=none\n"));
  proc_free(&p);

  if (home) setenv("HOME", home, 1);
  if (state_home) setenv("XDG_STATE_HOME", state_home, 1);
  free(home), free(state_home);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(check_lists_no_more_runs_than_max_runs),
      cmocka_unit_test(scheduled_line_gives_the_interval_as_written),
      cmocka_unit_test(command_line_job_is_named_for_its_program),
      cmocka_unit_test(chime_db_names_the_database),
  };
  if (test_select(tests, sizeof tests / sizeof tests[0], argc, argv)) return 2;
  return cmocka_run_group_tests(tests, NULL, NULL);
}
