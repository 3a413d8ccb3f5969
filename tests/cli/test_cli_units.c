/* test_cli_units.c - the chime command's parts alone: the argv splitter,
 * the config reader's errors and defaults, the log's escaping and its
 * writes that never block, the bounded output tail, a user's groups and
 * the latest missed tick. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../select.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <grp.h>
#include <pwd.h>

#include "argv.h"
#include "capture.h"
#include "config.h"
#include "log.h"
#include "child.h"
#include "runner.h"

static void split_ok(const char *text, int n, const char *const *want) {
  char **argv;
  int argc;
  char err[160] = "";
  int rc = argv_split(text, &argv, &argc, err, sizeof err);
  if (rc) print_error("%s: %s\n", text, err);
  assert_int_equal(rc, 0);
  assert_int_equal(argc, n);
  for (int i = 0; i < n; i++) assert_string_equal(argv[i], want[i]);
  assert_null(argv[n]);
  free(argv);
}

static void split_bad(const char *text, const char *why) {
  char **argv = NULL;
  int argc = -1;
  char err[160] = "";
  assert_int_equal(argv_split(text, &argv, &argc, err, sizeof err), -EINVAL);
  assert_null(argv);
  assert_int_equal(argc, -1);
  if (!strstr(err, why)) print_error("%s: got \"%s\", wanted \"%s\"\n", text, err, why);
  assert_non_null(strstr(err, why));
}

static void argv_splits_as_a_shell_does(void **state) {
  (void)state;
  split_ok("backup --fast", 2, (const char *const[]){"backup", "--fast"});
  split_ok("  a\t b\n", 2, (const char *const[]){"a", "b"});
  split_ok("echo 'a b' \"c d\" e\\ f", 4, (const char *const[]){"echo", "a b", "c d", "e f"});
  split_ok("x'y'\"z\"", 1, (const char *const[]){"xyz"});
  split_ok("'$HOME' \"\\$x \\\" \\\\ \\n\"", 2, (const char *const[]){"$HOME", "$x \" \\ \\n"});
  split_ok("'' \"\"", 2, (const char *const[]){"", ""});
  split_ok("a#b", 1, (const char *const[]){"a#b"});
  split_ok("'|' \\;", 2, (const char *const[]){"|", ";"});
}

static void argv_refuses_what_needs_a_shell(void **state) {
  (void)state;
  split_bad("", "column 1: empty command");
  split_bad("   ", "empty command");
  split_bad("echo 'open", "column 6: unterminated");
  split_bad("echo \"open", "column 6: unterminated");
  split_bad("echo a\\", "column 7: a backslash");
  split_bad("echo hi > /tmp/x", "column 9: '>' needs a shell");
  split_bad("a | b", "'|' needs a shell");
  split_bad("a && b", "'&' needs a shell");
  split_bad("echo $HOME", "column 6: '$' needs a shell");
  split_bad("echo \"$HOME\"", "'$' is an expansion");
  split_bad("echo `id`", "'`' needs a shell");
  split_bad("echo # note", "'#' would start a comment");
  split_bad("(x)", "'(' needs a shell");
}

static int parse_n(const char *text, size_t len, struct config **cfg, struct errors *errs) {
  memset(errs, 0, sizeof *errs);
  return config_parse("t.conf", text, len, cfg, errs);
}

static int parse(const char *text, struct config **cfg, struct errors *errs) {
  return parse_n(text, strlen(text), cfg, errs);
}

static void config_bad_n(const char *text, size_t len, const char *want) {
  struct config *cfg = NULL;
  struct errors errs;
  assert_int_equal(parse_n(text, len, &cfg, &errs), -EINVAL);
  assert_null(cfg);
  assert_non_null(errs.text);
  if (!strstr(errs.text, want)) print_error("got:\n%swanted: %s\n", errs.text, want);
  assert_non_null(strstr(errs.text, want));
  errors_free(&errs);
}

static void config_bad(const char *text, const char *want) { config_bad_n(text, strlen(text), want); }

static void config_errors_name_file_line_and_key(void **state) {
  (void)state;
  config_bad("[job a]\nevery = 1s\ncommand = true\ntimeout = soon\n", "t.conf:4: [job a] timeout: \"soon\" is not a duration");
  config_bad("[job a]\nevery = 1s\n", "t.conf:1: [job a]: no command");
  config_bad("[job a]\ncommand = true\n", "t.conf:1: [job a]: no schedule");
  config_bad("[job a]\nevery = 1s\nschedule = @daily\ncommand = true\n", "t.conf:3: [job a] schedule: schedule and every");
  config_bad("[job a]\nschedule = 0 0 30 2 *\ncommand = true\n", "t.conf:2: [job a] schedule: column");
  config_bad("[job a]\nevery = 1s\ncommand = a | b\n", "t.conf:3: [job a] command: column 3: '|' needs a shell");
  config_bad("[job a]\nevery = 1s\ncommand = true\ncommand = false\n", "t.conf:4: [job a] command: given twice");
  config_bad("[job a]\nevery = 1s\ncommand = true\n[job a]\n", "t.conf:4: [job a]: given twice (first at line 1)");
  config_bad("[job a b]\nevery = 1s\ncommand = true\n", "t.conf:1: [job a b]: a job name is");
  config_bad("[jobs]\n", "t.conf:1: [jobs]: unknown section");
  config_bad("every = 1s\n[job a]\nevery = 1s\ncommand = true\n", "t.conf:1: every: a key outside any section");
  config_bad("[job a]\nevery = 1s\ncommand = true\nno equals sign\n", "t.conf:4: not a [section]");
  config_bad("[job a]\nevery = 0s\ncommand = true\n", "t.conf:2: [job a] every: must be more than 0");
  config_bad("[job a]\nevery = 1s\ncommand = true\noverlap = sometimes\n", "overlap: \"sometimes\" is not skip");
  config_bad("[job a]\nevery = 1s\ncommand = true\nenv = 1X=2\n", "env: \"1X=2\" is not NAME=VALUE");
  config_bad("[job a]\nevery = 1s\ncommand = true\ndir = relative\n", "dir: \"relative\" is not an absolute path");
  config_bad("[job a]\nschedule = @daily\ntz = Mars/Olympus\ncommand = true\n", "t.conf:3: [job a] tz:");
  config_bad("[job a]\nevery = 1s\ncommand = true\non_error = backoff\nbackoff = 1m\nbackoff_max = 1s\n",
             "t.conf:6: [job a] backoff_max: shorter than backoff");
  config_bad("[job a]\nevery = 1s\ncommand =\n", "t.conf:3: [job a] command: is empty");
  config_bad("[job a]\nevery = 1s\ncommand = '' -x\n", "t.conf:3: [job a] command: the program's name is empty");
  config_bad("[job a]\nevery = 1s\ncommand = true\n= 3\n", "t.conf:4: a value without a key");
  config_bad("[chime]\nlog_format = xml\n[job a]\nevery = 1s\ncommand = true\n", "t.conf:2: [chime] log_format");
  config_bad("[defaults]\n", "t.conf: no [job NAME] section");
  static const char nul[] = "[job a]\nevery = 1s\ncommand = tr\0ue\n";
  config_bad_n(nul, sizeof nul - 1, "t.conf:3: the line holds a NUL byte");
  char *long_line = malloc(CONFIG_MAX_LINE + 64);
  snprintf(long_line, CONFIG_MAX_LINE + 64, "[job a]\nevery = 1s\ncommand = %0*d\n", CONFIG_MAX_LINE, 7);
  config_bad(long_line, "t.conf:3: the line is longer than");
  free(long_line);
}

static void config_defaults_and_jobs(void **state) {
  (void)state;
  struct config *cfg;
  struct errors errs;
  const char *text = "; comment\n# comment\n[defaults]\ntimeout = 20m\nenv = A=1 B=2\n"
                     "[job backup]\nschedule = 30 2 * * *\ncommand = /bin/backup --fast \"a b\"\n"
                     "jitter = 5m\non_error = backoff\ncatch_up = yes\nenv = B=3\n"
                     "[job tick]\nschedule = @every 1h30m\ncommand = echo $HOME > /tmp/x\nshell = true\ntimeout = 0\n"
                     "[chime]\nshutdown_grace = 3s\nlog_format = json\n";
  int rc = parse(text, &cfg, &errs);
  if (rc) print_error("%s", errs.text);
  assert_int_equal(rc, 0);
  assert_int_equal(cfg->njobs, 2);
  const struct job_conf *b = cfg->jobs[0], *t = cfg->jobs[1];
  assert_string_equal(b->name, "backup");
  assert_int_equal(b->line, 6);
  assert_non_null(b->cron);
  assert_int_equal(b->timeout, CHIME_MIN(20));
  assert_int_equal(b->jitter, CHIME_MIN(5));
  assert_int_equal(b->on_error, CHIME_ERROR_BACKOFF);
  assert_true(b->catch_up);
  assert_string_equal(b->argv[2], "a b");
  assert_string_equal(b->env[0], "A=1");
  assert_string_equal(b->env[2], "B=3"); /* the job's own comes after the defaults', and wins */
  assert_null(t->cron);
  assert_int_equal(t->every, CHIME_SEC(5400));
  assert_int_equal(t->timeout, 0);
  assert_string_equal(t->argv[0], "/bin/sh");
  assert_string_equal(t->argv[2], "echo $HOME > /tmp/x");
  assert_int_equal(cfg->daemon.shutdown_grace, CHIME_SEC(3));
  assert_int_equal(cfg->daemon.format, LOG_JSON);
  assert_string_not_equal(b->fingerprint, t->fingerprint);
  chime_ns times[5];
  assert_int_equal(job_next_runs(t, 0, times, 5), 5);
  assert_int_equal(times[4], 5 * CHIME_SEC(5400));
  config_free(cfg);
}

/* What chime_cron would refuse, or chime_every ignore, is refused when
 * the file is read, with the line of the key (in [defaults] if it comes
 * from there). */
static void keys_that_do_not_apply_are_load_errors(void **state) {
  (void)state;
  config_bad("[job a]\nschedule = @daily\nspread = 5m\ncommand = true\n",
             "t.conf:3: [job a] spread: a calendar schedule has no spread");
  config_bad("[job a]\nschedule = @daily\nstart_now = true\ncommand = true\n",
             "t.conf:3: [job a] start_now: only an interval");
  config_bad("[job a]\nevery = 1h\ntz = UTC\ncommand = true\n", "t.conf:3: [job a] tz: only a calendar schedule");
  config_bad("[job a]\nschedule = @every 1h\ntz = UTC\ncommand = true\n", "t.conf:3: [job a] tz: only a calendar");
  struct config *cfg;
  struct errors errs;
  assert_int_equal(parse("[job a]\nevery = 1h\nspread = 5m\nstart_now = true\ncommand = true\n"
                         "[job b]\nschedule = @daily\ntz = UTC\njitter = 5m\ncommand = true\n",
                         &cfg, &errs),
                   0);
  config_free(cfg);
  /* [defaults] keys are defaults for the jobs they fit */
  assert_int_equal(parse("[defaults]\ntz = Europe/Berlin\nspread = 5m\nstart_now = true\n"
                         "[job i]\nevery = 1h\ncommand = true\n[job c]\nschedule = @daily\ncommand = true\n",
                         &cfg, &errs),
                   0);
  assert_null(cfg->jobs[0]->tz_name);
  assert_int_equal(cfg->jobs[0]->spread, CHIME_MIN(5));
  assert_true(cfg->jobs[0]->start_now);
  assert_string_equal(cfg->jobs[1]->tz_name, "Europe/Berlin");
  assert_int_equal(cfg->jobs[1]->spread, 0);
  assert_false(cfg->jobs[1]->start_now);
  config_free(cfg);
  config_bad("[defaults]\nspread = 5m\n[job a]\nschedule = 0 * * * *\nspread = 1m\ncommand = true\n",
             "t.conf:5: [job a] spread: a calendar schedule has no spread");
}

/* Comments are whole lines: a ; or # inside a value is the value's, never
 * a comment that cuts it silently. */
static void semicolons_in_values_are_kept(void **state) {
  (void)state;
  struct config *cfg;
  struct errors errs;
  int rc = parse("; comment\n  # comment too\n[job a]\nevery = 1s\ncommand = printf 'x ;y' \"#z\" ';b'\n"
                 "[job b]\nevery = 1s\nshell = true\ncommand = echo a ; echo b # both\n",
                 &cfg, &errs);
  if (rc) print_error("%s", errs.text);
  assert_int_equal(rc, 0);
  assert_string_equal(cfg->jobs[0]->argv[1], "x ;y");
  assert_string_equal(cfg->jobs[0]->argv[2], "#z");
  assert_string_equal(cfg->jobs[0]->argv[3], ";b");
  assert_string_equal(cfg->jobs[1]->argv[2], "echo a ; echo b # both");
  config_free(cfg);
  config_bad("[job a]\nevery = 1s\ncommand = echo a ;b\n", "t.conf:3: [job a] command: column 8: ';' needs a shell");
  config_bad("[job a]\nevery = 1s ; each second\ncommand = true\n", "t.conf:2: [job a] every: \"1s ; each second\"");
}

/* A file with many errors has them all reported at once, each once. */
static void every_error_of_a_file_is_reported(void **state) {
  (void)state;
  struct config *cfg = NULL;
  struct errors errs;
  const char *text = "[job a]\nevery = 5x\ncommand = true\nnot a key line\n"
                     "[job b]\nevery = 1s\nalso bad\n"
                     "[job c\n"
                     "[job d]\nschedule = @daily\ncommand = a | b\ntz = Mars/Olympus\nspread = 1m\nbackof_max = 1s\n";
  assert_int_equal(parse(text, &cfg, &errs), -EINVAL);
  static const char *const want[] = {
      "t.conf:2: [job a] every: \"5x\" is not a duration",
      "t.conf:4: not a [section]",
      "t.conf:7: not a [section]",
      "t.conf:5: [job b]: no command",
      "t.conf:8: a [section] header without its ']'",
      "t.conf:11: [job d] command: column 3: '|' needs a shell",
      "t.conf:12: [job d] tz: \"Mars/Olympus\" is not a time zone",
      "t.conf:13: [job d] spread: a calendar schedule has no spread",
      "t.conf:14: [job d] backof_max: unknown key (did you mean backoff_max?)",
  };
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    if (!strstr(errs.text, want[i])) print_error("got:\n%swanted: %s\n", errs.text, want[i]);
    assert_non_null(strstr(errs.text, want[i]));
  }
  assert_int_equal(errs.count, sizeof want / sizeof want[0]); /* "no schedule" for a is not said again */
  errors_free(&errs);
}

static void unknown_keys_suggest_the_right_one(void **state) {
  (void)state;
  assert_string_equal(key_nearest("backof_max"), "backoff_max");
  assert_string_equal(key_nearest("Backoff-Max"), "backoff_max");
  assert_string_equal(key_nearest("timout"), "timeout");
  assert_string_equal(key_nearest("shutdown-grace"), "shutdown_grace");
  assert_null(key_nearest("colour"));
  assert_null(key_nearest("x"));
  config_bad("[job a]\nevery = 1s\ncommand = true\nkill_gace = 1s\n",
             "t.conf:4: [job a] kill_gace: unknown key (did you mean kill_grace?)");
  config_bad("[job a]\nevery = 1s\ncommand = true\ndb = /x\n", "t.conf:4: [job a] db: a key of [chime], not of a job");
  config_bad("[chime]\ntimeout = 1s\n[job a]\nevery = 1s\ncommand = true\n",
             "t.conf:2: [chime] timeout: a job's key: put it in [job NAME] or [defaults]");
  config_bad("[job a]\nevery = 1s\ncommand = true\ncolour = blue\n", "t.conf:4: [job a] colour: unknown key\n");
}

static void log_lines_escape_and_stay_bounded(void **state) {
  (void)state;
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  struct logline *l = malloc(sizeof *l);
  char buf[LOG_LINE_MAX + 64];
  log_setup(LOG_LOGFMT, fds[1]);
  log_begin(l, "info", "x");
  log_str(l, "a", "plain");
  log_str(l, "b", "two words \"q\"");
  log_mem(l, "c", "\x01\xff\n", 3);
  log_str(l, "d", "");
  log_end(l);
  ssize_t n = read(fds[0], buf, sizeof buf - 1);
  buf[n] = '\0';
  assert_non_null(strstr(buf, " level=info event=x a=plain b=\"two words \\\"q\\\"\" c=\"\\u0001\\ufffd\\n\" d=\"\"\n"));
  log_setup(LOG_JSON, fds[1]);
  log_begin(l, "info", "x");
  log_int(l, "n", -5);
  log_dur(l, "d", CHIME_MS(1503));
  log_end(l);
  n = read(fds[0], buf, sizeof buf - 1);
  buf[n] = '\0';
  assert_non_null(strstr(buf, ",\"level\":\"info\",\"event\":\"x\",\"n\":-5,\"d\":1.503}\n"));
  char *big = malloc(LOG_LINE_MAX * 2);
  memset(big, '"', LOG_LINE_MAX * 2);
  log_begin(l, "info", "x");
  log_mem(l, "big", big, LOG_LINE_MAX * 2);
  log_str(l, "after", "y");
  log_end(l);
  n = read(fds[0], buf, sizeof buf - 1);
  buf[n] = '\0';
  assert_true(n <= LOG_LINE_MAX);
  assert_non_null(strstr(buf, "\",\"cut\":true}\n")); /* still one valid JSON line */
  free(big);
  free(l);
  log_setup(LOG_LOGFMT, 2);
  close(fds[0]), close(fds[1]);
}

static void capture_keeps_the_last_64k(void **state) {
  (void)state;
  struct capture *c = calloc(1, sizeof *c);
  int null = open("/dev/null", O_WRONLY);
  log_setup(LOG_LOGFMT, null);
  c->job = "j", c->stream = "stdout";
  char chunk[1000];
  for (int i = 0; i < 200; i++) { /* 200,000 bytes, lines of 999 */
    memset(chunk, 'a' + i % 26, sizeof chunk);
    chunk[sizeof chunk - 1] = '\n';
    capture_feed(c, chunk, sizeof chunk);
  }
  char *tail = malloc(CAPTURE_TAIL);
  assert_int_equal(capture_tail(c, tail), CAPTURE_TAIL);
  assert_int_equal(tail[CAPTURE_TAIL - 1], '\n');
  assert_int_equal(tail[CAPTURE_TAIL - 2], 'a' + 199 % 26);
  assert_int_equal(c->bytes, 200000);
  free(tail);
  free(c);
  log_setup(LOG_LOGFMT, 2);
  close(null);
}

/* A log nobody reads (a full pipe, here in blocking mode) costs lines, not
 * the daemon: log_end returns at once and counts the line; once the pipe
 * is read, the count is logged before the next line. */
static void log_never_blocks_on_a_full_pipe(void **state) {
  (void)state;
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  fcntl(fds[1], F_SETFL, O_NONBLOCK);
  char junk[4096];
  memset(junk, 'j', sizeof junk);
  while (write(fds[1], junk, sizeof junk) > 0) continue;
  fcntl(fds[1], F_SETFL, 0); /* blocking again: a plain write would wait for ever */
  log_setup(LOG_LOGFMT, fds[1]);
  struct logline *l = malloc(sizeof *l);
  for (int i = 0; i < 3; i++) {
    log_begin(l, "info", "lost");
    log_end(l);
  }
  assert_int_equal(log_dropped(), 3);
  fcntl(fds[0], F_SETFL, O_NONBLOCK);
  char *buf = malloc(1 << 20);
  size_t len = 0;
  ssize_t n;
  while ((n = read(fds[0], buf, 1 << 19)) > 0) continue; /* the junk */
  log_begin(l, "info", "kept");
  log_end(l);
  assert_int_equal(log_dropped(), 0);
  while ((n = read(fds[0], buf + len, (1 << 20) - 1 - len)) > 0) len += (size_t)n;
  buf[len] = '\0';
  assert_non_null(strstr(buf, "level=warn event=log_dropped lines=3\n"));
  assert_non_null(strstr(buf, "level=info event=kept\n"));
  assert_true(strstr(buf, "event=log_dropped") < strstr(buf, "event=kept"));
  assert_null(strstr(buf, "event=lost"));
  free(buf);
  free(l);
  log_setup(LOG_LOGFMT, 2);
  close(fds[0]), close(fds[1]);
}

static bool has(const unsigned *list, int n, unsigned gid) {
  for (int i = 0; i < n; i++)
    if (list[i] == gid) return true;
  return false;
}

/* A user's groups are its own gid and every group that lists it, as
 * getgrouplist gives them (what login and cron set). */
static void user_groups_lists_supplementary_groups(void **state) {
  (void)state;
  unsigned *groups = NULL;
  int n = user_groups("root", 0, &groups);
  assert_true(n >= 1);
  assert_true(has(groups, n, 0));
  free(groups);
  setgrent();
  struct group *g;
  bool tried = false;
  while (!tried && (g = getgrent()) != NULL) {
    if (!g->gr_mem || !g->gr_mem[0] || !getpwnam(g->gr_mem[0])) continue;
    struct passwd *pw = getpwnam(g->gr_mem[0]);
    n = user_groups(pw->pw_name, pw->pw_gid, &groups);
    assert_true(n >= 2 || g->gr_gid == pw->pw_gid);
    assert_true(has(groups, n, pw->pw_gid));
    assert_true(has(groups, n, g->gr_gid));
    free(groups);
    tried = true;
  }
  endgrent();
  if (!tried) skip(); /* no group here lists a member */
}

/* A run's environment: the job's variables over the daemon's, and the
 * user's HOME, USER and LOGNAME, however long they are. */
static void job_env_puts_the_job_and_the_user_over_the_daemon(void **state) {
  (void)state;
  setenv("CHIME_UNIT_A", "daemon", 1);
  setenv("HOME", "/daemon-home", 1);
  char home[5000];
  memset(home, 'h', sizeof home - 1);
  home[0] = '/', home[sizeof home - 1] = '\0';
  struct passwd pw = {.pw_name = "someone", .pw_dir = home};
  char *vars[] = {"CHIME_UNIT_A=job", "CHIME_UNIT_B=2", NULL};
  struct job_conf c = {.env = vars};
  char **env = job_env(&c, &pw);
  assert_non_null(env);
  int a = 0, b = 0, h = 0, u = 0, l = 0;
  for (char **v = env; *v; v++) {
    a += strcmp(*v, "CHIME_UNIT_A=job") == 0, b += strcmp(*v, "CHIME_UNIT_B=2") == 0;
    h += strncmp(*v, "HOME=", 5) == 0 && strcmp(*v + 5, home) == 0;
    u += strcmp(*v, "USER=someone") == 0, l += strcmp(*v, "LOGNAME=someone") == 0;
    assert_string_not_equal(*v, "CHIME_UNIT_A=daemon");
    assert_string_not_equal(*v, "HOME=/daemon-home");
  }
  assert_true(a == 1 && b == 1 && h == 1 && u == 1 && l == 1);
  free(env);
}

/* A FIFO as the config file is refused at once, never waited on. */
static void a_fifo_is_not_a_config_file(void **state) {
  (void)state;
  char dir[] = "/tmp/chime-unit-XXXXXX", path[64];
  assert_non_null(mkdtemp(dir));
  snprintf(path, sizeof path, "%s/fifo.conf", dir);
  assert_int_equal(mkfifo(path, 0644), 0);
  struct config *cfg = NULL;
  struct errors errs;
  memset(&errs, 0, sizeof errs);
  assert_int_equal(config_load(path, &cfg, &errs), -EINVAL);
  assert_null(cfg);
  assert_non_null(strstr(errs.text, "fifo.conf: not a regular file"));
  errors_free(&errs);
  unlink(path);
  rmdir(dir);
}

/* The tick a catch-up run is for: the latest one in the downtime. */
static void latest_missed_tick(void **state) {
  (void)state;
  struct config *cfg;
  struct errors errs;
  assert_int_equal(parse("[job i]\nevery = 10s\ncommand = true\n"
                         "[job c]\nschedule = 0 * * * *\ntz = UTC\ncommand = true\n",
                         &cfg, &errs),
                   0);
  const struct job_conf *i = cfg->jobs[0], *c = cfg->jobs[1];
  const chime_ns s = CHIME_SEC(1);
  assert_int_equal(job_latest_tick(i, 1000010 * s, 1000105 * s), 1000100 * s);
  assert_int_equal(job_latest_tick(i, 1000010 * s, 1000020 * s), 1000020 * s);
  assert_int_equal(job_latest_tick(i, 1000010 * s, 1000019 * s), 0);
  const chime_ns hour = 3600 * s, day0 = 1800000000 / 3600 * hour; /* on the hour */
  assert_int_equal(job_latest_tick(c, day0, day0 + 30 * 60 * s), 0);
  assert_int_equal(job_latest_tick(c, day0, day0 + hour), day0 + hour);
  assert_int_equal(job_latest_tick(c, day0, day0 + 3 * hour + 5 * s), day0 + 3 * hour);
  assert_int_equal(job_latest_tick(c, day0, day0 + 400 * 24 * hour + 1), day0 + 400 * 24 * hour);
  config_free(cfg);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(argv_splits_as_a_shell_does),
      cmocka_unit_test(argv_refuses_what_needs_a_shell),
      cmocka_unit_test(config_errors_name_file_line_and_key),
      cmocka_unit_test(config_defaults_and_jobs),
      cmocka_unit_test(keys_that_do_not_apply_are_load_errors),
      cmocka_unit_test(semicolons_in_values_are_kept),
      cmocka_unit_test(every_error_of_a_file_is_reported),
      cmocka_unit_test(unknown_keys_suggest_the_right_one),
      cmocka_unit_test(log_lines_escape_and_stay_bounded),
      cmocka_unit_test(capture_keeps_the_last_64k),
      cmocka_unit_test(log_never_blocks_on_a_full_pipe),
      cmocka_unit_test(user_groups_lists_supplementary_groups),
      cmocka_unit_test(latest_missed_tick),
      cmocka_unit_test(job_env_puts_the_job_and_the_user_over_the_daemon),
      cmocka_unit_test(a_fifo_is_not_a_config_file),
  };
  if (test_select(tests, sizeof tests / sizeof tests[0], argc, argv)) return 2;
  return cmocka_run_group_tests(tests, NULL, NULL);
}
