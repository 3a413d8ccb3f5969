/* test_cli_hook.c - a job's on_failure and on_recovery hooks, against the
 * real daemon: what a hook is given (its environment, the run's output on
 * its standard input), when it runs and when it does not (one at a time,
 * the cap on a job that fails every second), and what becomes of a hook
 * that cannot run or hangs (the job goes on; the hook's end is logged and
 * recorded).  Schedules run on the virtual clock; a hook is a real
 * process, during which the virtual clock follows the real one. */
#define _GNU_SOURCE
/* cli_test.h's and cli_db.h's helpers that these tests do without */
#pragma GCC diagnostic ignored "-Wunused-function"
#include "cli_db.h"
#include "cli_test.h"

/* The text of a file (NUL-terminated; free it), or NULL. */
static char *slurp(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) return NULL;
  char *text = calloc(1, 1 << 20);
  size_t n = fread(text, 1, (1 << 20) - 1, f);
  text[n] = '\0';
  fclose(f);
  return text;
}

/* The text of the file `name` of the scratch directory (free it). */
static char *file_in(const char *dir, const char *name) {
  char path[160];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  char *text = slurp(path);
  if (!text) print_error("no %s\n", path);
  assert_non_null(text);
  return text;
}

/* Writes conf from `text`, each @DIR@ of it the scratch directory, and
 * runs chime on it (the virtual clock) until its jobs end: its exit code. */
static int run_config(struct proc *p, const char *dir, const char *db, const char *conf, const char *text) {
  char buf[4096];
  size_t n = 0;
  for (const char *t = text; *t && n + 64 < sizeof buf;)
    if (strncmp(t, "@DIR@", 5) == 0)
      n += (size_t)snprintf(buf + n, sizeof buf - n, "%s", dir), t += 5;
    else
      buf[n++] = *t++;
  buf[n] = '\0';
  write_file(conf, buf, 0644);
  return run(p, (const char *const[]){"run", conf, "--db", db, NULL}, VIRTUAL);
}

static void on_failure_is_given_the_run_and_its_output(void **state) {
  (void)state;
  char dir[64], db[128], conf[128];
  paths(dir, db, conf);
  struct proc p;
  assert_int_equal(run_config(&p, dir, db, conf,
                              "[job flaky]\nevery = 1h\nstart_now = true\nmax_runs = 1\nenv = GREETING=hello\n"
                              "command = sh -c 'echo out; echo err >&2; exit 3'\n"
                              "on_failure = sh -c 'env | grep -e ^CHIME_ -e ^GREETING= | sort > @DIR@/env;"
                              " cat > @DIR@/stdin'\n"),
                   0);
  char *env = file_in(dir, "env");
  print_message("%s", env);
  static const char *const want[] = {"CHIME_JOB=flaky\n",   "CHIME_HOOK=on_failure\n", "CHIME_OUTCOME=failed\n",
                                     "CHIME_EXIT_CODE=3\n", "CHIME_SIGNAL=\n",         "CHIME_ERROR=\n",
                                     "CHIME_RUN_ID=1\n",    "CHIME_FAILURES=1\n",      "GREETING=hello\n",
                                     "CHIME_SCHEDULED=",    "CHIME_DURATION=0."};
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    if (!strstr(env, want[i])) print_error("no %s in the hook's environment\n", want[i]);
    assert_non_null(strstr(env, want[i]));
  }
  free(env);
  char *in = file_in(dir, "stdin");
  assert_true(strcmp(in, "out\nerr\n") == 0 || strcmp(in, "err\nout\n") == 0);
  free(in);
  assert_non_null(strstr(p.log, "event=hook job=flaky hook=on_failure outcome=ok exit=0"));
  assert_non_null(strstr(p.log, "run_id=1 failures=1"));
  assert_int_equal(q(db, "SELECT count(*) FROM runs WHERE id = 1 AND outcome = 'failed' AND hook = 'on_failure'"
                         " AND hook_outcome = 'ok' AND hook_exit_code = 0 AND hook_error IS NULL"),
                   1);
  proc_free(&p);
  /* a run that could not start calls for the hook too, with why */
  assert_int_equal(run_config(&p, dir, db, conf,
                              "[job broken]\nevery = 1h\nstart_now = true\nmax_runs = 1\n"
                              "command = /nonexistent/program\non_failure = sh -c 'env | grep ^CHIME_ > @DIR@/env2'\n"),
                   0);
  env = file_in(dir, "env2");
  assert_non_null(strstr(env, "CHIME_OUTCOME=error\n"));
  assert_non_null(strstr(env, "CHIME_ERROR=cannot run /nonexistent/program"));
  assert_non_null(strstr(env, "CHIME_EXIT_CODE=\n"));
  free(env);
  proc_free(&p);
}

static void on_recovery_follows_the_first_success_after_failures(void **state) {
  (void)state;
  char dir[64], db[128], conf[128];
  paths(dir, db, conf);
  struct proc p;
  /* runs 1 and 2 fail, 3 and 4 succeed */
  assert_int_equal(run_config(&p, dir, db, conf,
                              "[job wobbly]\nevery = 1h\nstart_now = true\nmax_runs = 4\n"
                              "command = sh -c 'n=$(cat @DIR@/n 2>/dev/null || echo 0); echo $((n + 1)) > @DIR@/n;"
                              " test $n -ge 2'\n"
                              "on_failure = sh -c 'echo \"failure $CHIME_RUN_ID\" >> @DIR@/hooks'\n"
                              "on_recovery = sh -c 'echo \"recovery $CHIME_RUN_ID $CHIME_OUTCOME $CHIME_FAILURES\""
                              " >> @DIR@/hooks'\n"),
                   0);
  char *hooks = file_in(dir, "hooks");
  print_message("%s", hooks);
  assert_string_equal(hooks, "failure 1\nfailure 2\nrecovery 3 ok 2\n");
  free(hooks);
  assert_int_equal(q(db, "SELECT count(*) FROM runs WHERE hook IS NOT NULL"), 3);
  assert_int_equal(q(db, "SELECT count(*) FROM runs WHERE id = 3 AND hook = 'on_recovery' AND hook_outcome = 'ok'"), 1);
  proc_free(&p);
}

static void a_job_failing_every_second_runs_its_hook_once_a_minute(void **state) {
  (void)state;
  char dir[64], db[128], conf[128];
  paths(dir, db, conf);
  struct proc p;
  /* three minutes and a half of failures, each hook a little slow: never
   * two at once, and at most one a minute */
  assert_int_equal(run_config(&p, dir, db, conf,
                              "[job failing]\nevery = 1s\nmax_runs = 210\ncommand = false\n"
                              "on_failure = sh -c 'echo \"start $CHIME_FAILURES\" >> @DIR@/hooks; sleep 0.2;"
                              " echo end >> @DIR@/hooks'\n"),
                   0);
  char *hooks = file_in(dir, "hooks");
  print_message("%s", hooks);
  /* at 1, 61, 121 and 181 s: the first for one failure, the others for
   * about the sixty since; each ended before the next started */
  int starts = 0, failures = 0, n;
  bool open = false;
  for (const char *line = hooks; *line; line = strchr(line, '\n') + 1) {
    if (sscanf(line, "start %d", &n) == 1) {
      assert_false(open);
      assert_true(starts == 0 ? n == 1 : n >= 58 && n <= 61);
      open = true, starts++, failures += n;
    } else {
      assert_true(open && strncmp(line, "end\n", 4) == 0);
      open = false;
    }
  }
  assert_int_equal(starts, 4);
  assert_false(open);
  free(hooks);
  assert_int_equal(q(db, "SELECT count(*) FROM runs WHERE outcome = 'failed'"), 210);
  assert_int_equal(q(db, "SELECT count(*) FROM runs WHERE hook = 'on_failure'"), 4);
  assert_non_null(strstr(p.log, "chime stops: 1 hook(s) that waited are not run"));
  proc_free(&p);
}

static void a_hook_that_cannot_run_or_hangs_is_recorded_and_runs_go_on(void **state) {
  (void)state;
  char dir[64], db[128], conf[128], hook[160];
  paths(dir, db, conf);
  snprintf(hook, sizeof hook, "%s/hook.sh", dir);
  write_file(hook, "#!/bin/sh\necho never\n", 0644); /* not executable */
  struct proc p;
  assert_int_equal(
      run_config(&p, dir, db, conf,
                 "[job missing]\nevery = 1s\nmax_runs = 3\ncommand = false\non_failure = /nonexistent/hook\n"
                 "[job unexecutable]\nevery = 1s\nmax_runs = 3\ncommand = false\n"
                 "on_failure = @DIR@/hook.sh\n"
                 "[job hung]\nevery = 1s\nmax_runs = 3\ncommand = false\non_failure = sleep 60\n"
                 "hook_timeout = 300ms\nkill_grace = 200ms\n"),
      0);
  assert_int_equal(q(db, "SELECT count(*) FROM runs WHERE outcome = 'failed'"), 9); /* every run ran */
  assert_int_equal(q(db, "SELECT count(*) FROM runs WHERE job = 'missing' AND hook = 'on_failure' AND"
                         " hook_outcome = 'error' AND hook_error LIKE 'cannot run /nonexistent/hook%'"),
                   1);
  assert_int_equal(q(db, "SELECT count(*) FROM runs WHERE job = 'unexecutable' AND hook_outcome = 'error' AND"
                         " hook_error LIKE '%not an executable file%'"),
                   1);
  assert_int_equal(q(db, "SELECT count(*) FROM runs WHERE job = 'hung' AND hook_outcome = 'timeout' AND"
                         " hook_signal = 15 AND hook_error LIKE '%hook_timeout%'"),
                   1);
  assert_non_null(strstr(p.log, "event=hook job=missing hook=on_failure outcome=error"));
  assert_non_null(strstr(p.log, "event=hook job=hung hook=on_failure outcome=timeout signal=TERM"));
  proc_free(&p);
}

static void hook_keys_are_checked_with_the_file(void **state) {
  (void)state;
  char dir[64], db[128], conf[128];
  paths(dir, db, conf);
  write_file(conf,
             "[defaults]\non_failure = mail $USER\n"
             "[job a]\nevery = 1h\ncommand = true\nhook_timeout = 0\n"
             "[job b]\nevery = 1h\ncommand = true\non_recovery =\n",
             0644);
  struct proc p;
  assert_int_equal(run(&p, (const char *const[]){"check", conf, NULL}, NULL), 1);
  print_message("%s", p.log);
  assert_non_null(strstr(p.log, "c.conf:2: [job a] on_failure: column 6:"));
  assert_non_null(strstr(p.log, "c.conf:6: [job a] hook_timeout: must be more than 0"));
  assert_non_null(strstr(p.log, "c.conf:10: [job b] on_recovery: is empty"));
  proc_free(&p);
  /* with a shell, $ is the shell's */
  write_file(conf, "[job a]\nevery = 1h\ncommand = true\nshell = true\non_failure = echo $CHIME_JOB failed\n", 0644);
  assert_int_equal(run(&p, (const char *const[]){"check", conf, NULL}, NULL), 0);
  proc_free(&p);
}

/* examples/mail-on-failure and examples/post-on-failure, as hooks of the
 * daemon, with a sendmail and a curl that keep what they were given. */
static void the_example_hooks_mail_and_post_a_failure(void **state) {
  (void)state;
  char dir[64], db[128], conf[128], text[2048], path[160];
  paths(dir, db, conf);
  const char *examples = getenv("CHIME_EXAMPLES");
  assert_non_null(examples);
  static const char fake[] = "#!/bin/sh\nprintf '%%s\\n' \"$@\" > %s/%s.args\ncat > %s/%s.in\n";
  static const char *const tools[] = {"sendmail", "curl"};
  for (int i = 0; i < 2; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, tools[i]);
    snprintf(text, sizeof text, fake, dir, tools[i], dir, tools[i]);
    write_file(path, text, 0755);
  }
  snprintf(text, sizeof text,
           "[defaults]\nevery = 1h\nstart_now = true\nmax_runs = 1\n"
           "[job mailed]\ncommand = sh -c 'echo \"disk \\\"full\\\"\"; exit 4'\n"
           "on_failure = %s/mail-on-failure ops@example.com\n"
           "[job posted]\ncommand = sh -c 'printf \"tab\\there\\n\"; kill -9 $$'\n"
           "on_failure = %s/post-on-failure https://hooks.example.com/x\n",
           examples, examples);
  write_file(conf, text, 0644);
  char env_mail[200], env_path[4200];
  snprintf(env_mail, sizeof env_mail, "SENDMAIL=%s/sendmail", dir);
  snprintf(env_path, sizeof env_path, "PATH=%s:%s", dir, getenv("PATH"));
  struct proc p;
  assert_int_equal(run(&p, (const char *const[]){"run", conf, "--db", db, NULL},
                       (const char *const[]){"CHIME_CLOCK=virtual", env_mail, env_path, NULL}),
                   0);
  assert_int_equal(q(db, "SELECT count(*) FROM runs WHERE hook_outcome = 'ok'"), 2);
  proc_free(&p);
  char *args = file_in(dir, "sendmail.args");
  assert_string_equal(args, "-i\n--\nops@example.com\n");
  free(args);
  char *mail = file_in(dir, "sendmail.in");
  print_message("%s", mail);
  assert_non_null(strstr(mail, "To: ops@example.com\n"));
  assert_non_null(strstr(mail, "Subject: chime: mailed failed on "));
  assert_non_null(strstr(mail, "outcome:   failed (exit 4)\n"));
  assert_non_null(strstr(mail, "\n\ndisk \"full\"\n"));
  free(mail);
  args = file_in(dir, "curl.args");
  assert_non_null(strstr(args, "--fail\n"));
  assert_non_null(strstr(args, "--\nhttps://hooks.example.com/x\n"));
  free(args);
  char *body = file_in(dir, "curl.in");
  print_message("%s", body);
  assert_non_null(strstr(body, "\"job\":\"posted\",\"outcome\":\"signal\",\"exit_code\":null,\"signal\":\"KILL\""));
  snprintf(text, sizeof text, "\"run_id\":%lld,", q(db, "SELECT id FROM runs WHERE job = 'posted'"));
  assert_non_null(strstr(body, text));
  assert_non_null(strstr(body, "\"output\":\"tab\\there\"}"));
  free(body);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(on_failure_is_given_the_run_and_its_output),
      cmocka_unit_test(on_recovery_follows_the_first_success_after_failures),
      cmocka_unit_test(a_job_failing_every_second_runs_its_hook_once_a_minute),
      cmocka_unit_test(a_hook_that_cannot_run_or_hangs_is_recorded_and_runs_go_on),
      cmocka_unit_test(hook_keys_are_checked_with_the_file),
      cmocka_unit_test(the_example_hooks_mail_and_post_a_failure),
  };
  if (test_select(tests, sizeof tests / sizeof tests[0], argc, argv)) return 2;
  return cmocka_run_group_tests(tests, NULL, NULL);
}
