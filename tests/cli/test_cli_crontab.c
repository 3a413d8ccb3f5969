/* test_cli_crontab.c - crontabs read as cron reads them (crontab.c), their
 * conversion to the INI format, and what a run of one needs of cron
 * (cronenv.c): its environment, PATH lookup, and mail through a fake
 * sendmail that records what it was given.  The crontabs Debian's packages
 * install (cron, e2fsprogs, sysstat, php-common, anacron,
 * popularity-contest) are read and their fire times compared with a
 * matcher of their fields written here; one that is not installed is
 * skipped, visibly (exit 77, ctest's SKIP_RETURN_CODE). */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../select.h"

#include <ctype.h>
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "cronenv.h"
#include "crontab.h"

static const struct crontab_opts user_tab = {.system = false, .euid = 0};
static const struct crontab_opts system_tab = {.system = true, .euid = 0};

/* Reads text as a crontab that must be accepted. */
static struct config *read_ok(const char *text, const struct crontab_opts *o) {
  struct errors errs = {0}, warns = {0};
  struct config *cfg = NULL;
  int rc = crontab_parse("tab", text, strlen(text), o, &cfg, &errs, &warns);
  if (rc) print_error("%s\n---\n%s", text, errs.text ? errs.text : "(no message)");
  assert_int_equal(rc, 0);
  errors_free(&errs);
  errors_free(&warns);
  return cfg;
}

/* Reads text as a crontab that must be refused, with `why` among the
 * errors, and *out left alone. */
static void read_bad(const char *text, size_t len, const struct crontab_opts *o, const char *why) {
  struct errors errs = {0};
  struct config *untouched = (struct config *)&untouched, *cfg = untouched;
  int rc = crontab_parse("tab", text, len, o, &cfg, &errs, NULL);
  if (rc != -EINVAL || !errs.text || !strstr(errs.text, why))
    print_error("%.*s\n--- got %d:\n%s--- want: %s\n", (int)len, text, rc, errs.text ? errs.text : "", why);
  assert_int_equal(rc, -EINVAL);
  assert_non_null(strstr(errs.text, why));
  assert_ptr_equal(cfg, untouched);
  errors_free(&errs);
}
#define BAD(text, why) read_bad(text, strlen(text), &user_tab, why)

static const char *env_of(const struct job_conf *j, const char *name) {
  size_t n = strlen(name);
  for (char **e = j->env; e && *e; e++)
    if (strncmp(*e, name, n) == 0 && (*e)[n] == '=') return *e + n + 1;
  return NULL;
}

/* ---- the reader ------------------------------------------------------------------ */

static void percent_ends_the_command_and_starts_its_input(void **state) {
  (void)state;
  static const struct {
    const char *line, *command, *input;
  } cases[] = {
      {"* * * * * cat%a%b", "cat", "a\nb\n"},
      {"* * * * * mail -s hi joe%Joe,%%Where are your kids?%", "mail -s hi joe", "Joe,\n\nWhere are your kids?\n"},
      {"* * * * * date +\\%F", "date +%F", NULL},
      {"* * * * * printf '%s' x", "printf '", "s' x\n"},
      {"* * * * * cat%line1%line2\\%x%%end", "cat", "line1\nline2%x\n\nend\n"},
      {"* * * * * a\\b%c\\d", "a\\b", "c\\d\n"},
      {"* * * * * true%", "true", ""},
      {"* * * * * echo x   ", "echo x", NULL},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct config *cfg = read_ok(cases[i].line, &user_tab);
    const struct job_conf *j = cfg->jobs[0];
    assert_string_equal(j->command, cases[i].command);
    if (cases[i].input)
      assert_string_equal(j->input, cases[i].input);
    else
      assert_null(j->input);
    assert_string_equal(j->argv[0], "/bin/sh");
    assert_string_equal(j->argv[1], "-c");
    assert_string_equal(j->argv[2], cases[i].command);
    config_free(cfg);
  }
  BAD("* * * * * %stdin", "no command: it ends at the first '%'");
}

/* As Debian's cron 3.0pl1-162 reads them (checked with its crontab(1)
 * and the X-Cron-Env of its mail). */
static void environment_lines_as_debian_cron_reads_them(void **state) {
  (void)state;
  static const struct {
    const char *line, *entry;
  } cases[] = {
      {"A=plain value  ", "A=plain value"},
      {"B = spaced", "B=spaced"},
      {"C=\"double quoted\"  ", "C=double quoted"},
      {"D='single'", "D=single"},
      {"G= \"  lead\"", "G=  lead"},
      {"H=a\"b\"c", "H=a\"b\"c"},
      {"L=\"\"", "L="},
      {"M=\"it's\"", "M=it's"},
      {"F=x#y", "F=x#y"},
      {"Q=a=b", "Q=a=b"},
      {"\"QN\"=v", "QN=v"},
      {"  J=indented", "J=indented"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char text[256];
    snprintf(text, sizeof text, "%s\n* * * * * true\n", cases[i].line);
    struct config *cfg = read_ok(text, &user_tab);
    char **e = cfg->jobs[0]->env;
    assert_non_null(e);
    assert_string_equal(e[0], cases[i].entry);
    assert_true(cfg->jobs[0]->clean_env);
    config_free(cfg);
  }
  BAD("K=\n* * * * * true\n", "tab:1: K=: no value after '=' (write K=\"\" for an empty one)");
  BAD("E=\"unbalanced\n* * * * * true\n", "tab:1: an environment line with unbalanced quotes");
  BAD("I=\"a\"b\n* * * * * true\n", "tab:1: an environment line with unbalanced quotes, or text after the closing one");
  BAD("O='a' 'b'\n* * * * * true\n", "tab:1: an environment line with unbalanced quotes");
  BAD("P=\"a\\\"b\"\n* * * * * true\n", "tab:1: an environment line with unbalanced quotes");
  BAD("=novalue\n* * * * * true\n", "tab:1: an environment line needs a name before '='");
  BAD("A-B=x\n* * * * * true\n", "tab:1: A-B: not a variable name");
  BAD("FOO\n* * * * * true\n", "tab:1: not a job (five time fields, then the command) nor an environment line");
  /* A setting applies to the lines after it, the last one winning. */
  struct config *cfg = read_ok("* * * * * one\nX=1\n* * * * * two\nX=2\n* * * * * three\n", &user_tab);
  assert_null(env_of(cfg->jobs[0], "X"));
  assert_string_equal(env_of(cfg->jobs[1], "X"), "1");
  assert_string_equal(env_of(cfg->jobs[2], "X"), "2");
  config_free(cfg);
}

static void shell_path_zone_mail_and_delay_come_from_the_file(void **state) {
  (void)state;
  struct config *cfg = read_ok("SHELL=/bin/bash\nPATH=/opt/bin:/bin\nMAILTO=ops@example.com\nCRON_TZ=Europe/Berlin\n"
                               "RANDOM_DELAY=5\n30 2 * * * backup\nMAILTO=\"\"\nTZ=America/New_York\n"
                               "CRON_TZ=\"\"\n0 3 * * * other\n",
                               &user_tab);
  const struct job_conf *a = cfg->jobs[0], *b = cfg->jobs[1];
  assert_string_equal(a->argv[0], "/bin/bash");
  assert_string_equal(a->tz_name, "Europe/Berlin");
  assert_string_equal(a->mailto, "ops@example.com");
  assert_int_equal(a->jitter, CHIME_MIN(5));
  assert_string_equal(env_of(a, "PATH"), "/opt/bin:/bin");
  assert_string_equal(cronenv_path(a), "/opt/bin:/bin");
  assert_null(b->mailto);                              /* MAILTO="": no mail */
  assert_string_equal(b->tz_name, "America/New_York"); /* an empty CRON_TZ: TZ's */
  config_free(cfg);
  /* Without MAILTO, mail goes to the crontab's owner. */
  cfg = read_ok("0 3 * * * x\n", &user_tab);
  assert_string_equal(cfg->jobs[0]->mailto, getpwuid(0)->pw_name);
  config_free(cfg);
  BAD("SHELL=bash\n* * * * * true\n", "tab:1: SHELL=bash: give the shell's absolute path");
  BAD("CRON_TZ=Mars/Olympus\n* * * * * true\n", "tab:1: \"Mars/Olympus\" is not a time zone this system has");
  BAD("RANDOM_DELAY=soon\n* * * * * true\n", "tab:1: RANDOM_DELAY=soon: give whole minutes");
  BAD("MAILTO=-oQ/tmp\n* * * * * true\n", "an address may not start with '-'");
}

static void macros_are_cron_s_and_reboot_is_a_flag(void **state) {
  (void)state;
  struct config *cfg = read_ok("@reboot warm\n@daily a\n@hourly b\n", &user_tab);
  assert_true(cfg->jobs[0]->reboot);
  assert_null(cfg->jobs[0]->cron);
  assert_int_equal(cfg->jobs[0]->every, 0);
  chime_ns t[1];
  assert_int_equal(job_next_runs(cfg->jobs[0], 0, t, 1), 0);
  assert_false(cfg->jobs[1]->reboot);
  assert_string_equal(cfg->jobs[1]->schedule, "@daily");
  config_free(cfg);
  BAD("@Daily true\n", "tab:1: unknown macro @Daily (cron's: @reboot");
  BAD("@fortnightly true\n", "tab:1: unknown macro @fortnightly");
  BAD("@every 5m true\n", "tab:1: @every is chime's, not cron's");
  BAD("@reboot\n", "no command after the schedule");
}

static void fields_are_tried_seven_six_then_five(void **state) {
  (void)state;
  struct errors errs = {0}, warns = {0};
  struct config *cfg = NULL;
  const char *text = "*/5 * * * * * run\n0 30 2 * * * 2027 once\n0 2 * * * 2026-backup\n0 0 L * 5#1 x\n";
  assert_int_equal(crontab_parse("tab", text, strlen(text), &user_tab, &cfg, &errs, &warns), 0);
  /* Six fields: the sixth is a year, written for chime_cron with seconds first. */
  assert_string_equal(cfg->jobs[0]->schedule, "0 */5 * * * * *");
  assert_string_equal(cfg->jobs[0]->command, "run");
  assert_string_equal(cfg->jobs[1]->schedule, "0 30 2 * * * 2027");
  assert_string_equal(cfg->jobs[2]->command, "2026-backup");
  assert_string_equal(cfg->jobs[3]->schedule, "0 0 L * 5#1");
  assert_non_null(warns.text);
  assert_non_null(strstr(warns.text, "tab:1: six fields: the sixth, *, is a year"));
  chime_cron_expr *c = NULL;
  chime_tz *utc = NULL;
  assert_int_equal(chime_tz_load("UTC", &utc), 0);
  assert_int_equal(chime_cron_parse(cfg->jobs[0]->schedule, &c, NULL), 0); /* as the daemon will */
  chime_ns next[2];
  assert_int_equal(chime_cron_next_n(c, utc, 0, next, 2), 2);
  assert_int_equal(next[1] - next[0], CHIME_MIN(5));
  chime_cron_free(c);
  chime_tz_free(utc);
  config_free(cfg);
  errors_free(&errs);
  errors_free(&warns);
  BAD("61 * * * * true\n", "tab:1: column 1: minute field: 61 is out of range 0-59");
  BAD("0 0 * * 5#6 true\n", "tab:1: column 11: day-of-week field: 5#6");
  BAD("* * * * *\n", "tab:1: no command after the five time fields");
  BAD("* * * *\n", "tab:1: not a job");
}

static void system_format_has_a_user_refused_unless_root(void **state) {
  (void)state;
  struct config *cfg = read_ok("17 * * * * root cd / && run-parts --report /etc/cron.hourly\n", &system_tab);
  assert_string_equal(cfg->jobs[0]->user, "root");
  assert_string_equal(cfg->jobs[0]->command, "cd / && run-parts --report /etc/cron.hourly");
  assert_string_equal(cfg->jobs[0]->mailto, "root");
  config_free(cfg);
  read_bad("0 2 * * * nosuchuser9 true\n", 27, &system_tab, "tab:1: user nosuchuser9: no such user");
  const struct crontab_opts not_root = {.system = true, .euid = 4242};
  const char *line = "0 2 * * * root true\n";
  read_bad(line, strlen(line), &not_root, "tab:1: user root: a job as another user needs chime to run as root");
  read_bad("0 2 * * *\n", 10, &system_tab, "tab:1: no command after the five time fields");
  assert_true(crontab_system_path("/etc/crontab"));
  assert_true(crontab_system_path("/etc/cron.d/sysstat"));
  assert_false(crontab_system_path("/etc/cron.d/sub/x"));
  assert_false(crontab_system_path("/home/me/crontab"));
  assert_true(crontab_looks_like("# c\n\nA=1\n", 10));
  assert_false(crontab_looks_like("; c\n  [job x]\n", 14));
}

static void bad_files_are_refused_whole_with_file_and_line(void **state) {
  (void)state;
  read_bad("* * * * * a\n\x7f"
           "ELF\0\x01\n",
           18, &user_tab, "tab:2: a NUL byte: not a crontab");
  char *long_line = malloc(5000);
  memset(long_line, 'x', 4999);
  memcpy(long_line, "* * * * * ", 10);
  long_line[4998] = '\n';
  read_bad(long_line, 4999, &user_tab, "tab:1: the line is longer than 4093 bytes");
  long_line[1010] = '\n';
  read_bad(long_line, 1011, &user_tab, "tab:1: the command is longer than cron takes (999 bytes)");
  free(long_line);
  BAD("* * * * * a\r\n", "tab:1: a carriage return");
  BAD("# nothing\n", "tab: no job line: nothing to run");
  BAD("# chime: timeout=5m\n", "tab:1: # chime: no job line after it");
  BAD("# chime: timeout=soon\n* * * * * a\n", "tab:1: # chime: timeout: \"soon\" is not a duration");
  BAD("# chime: schedule=@daily\n* * * * * a\n", "tab:1: # chime: schedule: the job line gives it");
  BAD("# chime: name=no/slash\n* * * * * a\n", "tab:1: # chime: name: \"no/slash\" is not");
}

static void names_come_from_commands_or_chime_comments(void **state) {
  (void)state;
  struct config *cfg =
      read_ok("30 2 * * * /usr/local/bin/backup --full >> /var/log/b.log 2>&1\n"
              "@daily find /tmp -type f -delete\n"
              "* * * * * cd / && run-parts --report /etc/cron.daily\n"
              "* * * * * test -x /usr/sbin/anacron || { cd / && run-parts --report /etc/cron.weekly; }\n"
              "* * * * * command -v debian-sa1 > /dev/null && debian-sa1 1 1\n"
              "* * * * * command -v debian-sa1 > /dev/null && debian-sa1 60 2\n"
              "# chime: name=nightly timeout=5m overlap=queue\n"
              "# chime: jitter=30s\n"
              "0 3 * * * /opt/x\n",
              &user_tab);
  static const char *const names[] = {
      "backup", "find-tmp", "run-parts-cron.daily", "run-parts-cron.weekly", "debian-sa1", "debian-sa1-2", "nightly"};
  assert_int_equal(cfg->njobs, 7);
  for (size_t i = 0; i < 7; i++) {
    assert_string_equal(cfg->jobs[i]->name, names[i]);
    assert_true(job_name_ok(cfg->jobs[i]->name));
  }
  assert_int_equal(cfg->jobs[6]->timeout, CHIME_MIN(5));
  assert_int_equal(cfg->jobs[6]->overlap, CHIME_OVERLAP_QUEUE);
  assert_int_equal(cfg->jobs[6]->jitter, CHIME_SEC(30));
  assert_int_equal(cfg->jobs[5]->timeout, 0);
  config_free(cfg);
}

/* chime convert's INI reads back into the same jobs: every setting, as the
 * fingerprint the reload compares holds them. */
static void convert_writes_ini_that_reads_back_the_same(void **state) {
  (void)state;
  const char *text = "# backups\nSHELL=/bin/bash\nPATH=/usr/local/bin:/usr/bin:/bin\nMAILTO=ops@example.com\n"
                     "CRON_TZ=Europe/Berlin\n30 2 * * * /usr/local/bin/backup --full >> /var/log/backup.log 2>&1\n"
                     "@daily find /tmp -type f -mtime +7 -delete\n"
                     "*/5 * * * * curl -fsS http://localhost:8080/health || echo down\n"
                     "0 9 * * mon-fri echo \"report for $(date +\\%F)\" | mail -s report team\n"
                     "X=\"it's $HOME\"\n0 0 L * * /opt/bin/month-end%a\\b%c\n"
                     "# chime: timeout=5m overlap=allow max_concurrent=3\n"
                     "0 12 * * 5#1 /opt/bin/first-friday\n@reboot /opt/bin/warm-cache\n";
  struct config *tab = read_ok(text, &user_tab), *ini = NULL;
  char *out = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&out, &len);
  assert_int_equal(crontab_convert(text, strlen(text), tab, f), 0);
  fclose(f);
  assert_non_null(strstr(out, "# backups\n"));
  struct errors errs = {0};
  int rc = config_parse("ini", out, len, &ini, &errs);
  if (rc) print_error("%s\n---\n%s", out, errs.text);
  assert_int_equal(rc, 0);
  assert_int_equal(ini->njobs, tab->njobs);
  for (size_t i = 0; i < tab->njobs; i++) {
    assert_string_equal(ini->jobs[i]->name, tab->jobs[i]->name);
    if (tab->jobs[i]->fingerprint) assert_string_equal(ini->jobs[i]->fingerprint, tab->jobs[i]->fingerprint);
    assert_int_equal(ini->jobs[i]->reboot, tab->jobs[i]->reboot);
  }
  free(out);
  errors_free(&errs);
  config_free(tab);
  config_free(ini);
}

/* ---- crontabs that Debian's packages install ----------------------------------------- */

/* A Vixie cron field (numbers, names, ranges, steps, lists, '*') against a
 * value, read here without chime's parser. */
static bool field_has(const char *f, int v, int lo, int hi, const char *names) {
  char buf[128];
  snprintf(buf, sizeof buf, "%s", f);
  for (char *save = NULL, *item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
    int a = lo, b = hi, step = 1;
    char *slash = strchr(item, '/');
    if (slash) *slash = '\0', step = atoi(slash + 1);
    if (strcmp(item, "*") != 0) {
      char *dash = strchr(item, '-');
      if (dash) *dash = '\0';
      int vals[2];
      const char *parts[2] = {item, dash ? dash + 1 : item};
      for (int k = 0; k < 2; k++) {
        const char *n = names ? strcasestr(names, parts[k]) : NULL;
        vals[k] = n && !isdigit((unsigned char)parts[k][0]) ? (int)(n - names) / 3 + (lo == 1) : atoi(parts[k]);
      }
      a = vals[0], b = dash || slash ? vals[1] : vals[0];
      if (slash && !dash) b = hi;
    }
    for (int x = a; x <= b; x += step)
      if (x == v || (names && lo == 0 && x == 7 && v == 0)) return true;
  }
  return false;
}

static void installed_crontab(const char *path) {
  if (access(path, R_OK) != 0) {
    fprintf(stderr, "[  SKIPPED ] %s is not installed (scripts/deps.sh test installs it)\n", path);
    fflush(stderr);
    _exit(77);
  }
  struct errors errs = {0};
  struct config *cfg = NULL;
  char *text = NULL;
  int rc = crontab_load(path, &system_tab, &cfg, &errs, NULL, &text);
  if (rc) print_error("%s", errs.text);
  assert_int_equal(rc, 0);
  chime_tz *utc = NULL;
  assert_int_equal(chime_tz_load("UTC", &utc), 0);
  for (size_t i = 0; i < cfg->njobs; i++) {
    const struct job_conf *j = cfg->jobs[i];
    /* the job's line, split by hand: five fields */
    const char *p = text;
    for (int l = 1; l < j->line; l++)
      p = strchr(p, '\n') + 1;
    char f[5][64];
    assert_int_equal(sscanf(p, "%63s %63s %63s %63s %63s", f[0], f[1], f[2], f[3], f[4]), 5);
    chime_ns from = CHIME_SEC(1767225600), got[40]; /* 2026-01-01T00:00:00Z */
    assert_int_equal(chime_cron_next_n(j->cron, utc, from - 1, got, 40), 40);
    int n = 0;
    for (time_t t = 1767225600; n < 40; t += 60) {
      struct tm tm;
      gmtime_r(&t, &tm);
      bool dom = field_has(f[2], tm.tm_mday, 1, 31, NULL),
           dow = field_has(f[4], tm.tm_wday, 0, 6, "sunmontuewedthufrisat");
      bool day = f[2][0] == '*' || f[4][0] == '*' ? dom && dow : dom || dow;
      if (field_has(f[0], tm.tm_min, 0, 59, NULL) && field_has(f[1], tm.tm_hour, 0, 23, NULL) && day &&
          field_has(f[3], tm.tm_mon + 1, 1, 12, "janfebmaraprmayjunjulaugsepoctnovdec")) {
        if (got[n] != CHIME_SEC((int64_t)t))
          fail_msg("%s:%d (%s): run %d at %lld, want %lld", path, j->line, j->name, n,
                   (long long)(got[n] / CHIME_SEC(1)), (long long)t);
        n++;
      }
    }
    assert_string_equal(j->user, "root");
    assert_true(j->clean_env);
  }
  assert_true(cfg->njobs > 0);
  chime_tz_free(utc);
  free(text);
  errors_free(&errs);
  config_free(cfg);
}

static void debian_etc_crontab_fires_as_cron_would(void **state) {
  (void)state;
  installed_crontab("/etc/crontab");
}
static void debian_e2scrub_all_fires_as_cron_would(void **state) {
  (void)state;
  installed_crontab("/etc/cron.d/e2scrub_all");
}
static void debian_sysstat_fires_as_cron_would(void **state) {
  (void)state;
  installed_crontab("/etc/cron.d/sysstat");
}
static void debian_php_fires_as_cron_would(void **state) {
  (void)state;
  installed_crontab("/etc/cron.d/php");
}
static void debian_anacron_fires_as_cron_would(void **state) {
  (void)state;
  installed_crontab("/etc/cron.d/anacron");
}
static void debian_popularity_contest_fires_as_cron_would(void **state) {
  (void)state;
  installed_crontab("/etc/cron.d/popularity-contest");
}

/* ---- cronenv ------------------------------------------------------------------------- */

static void run_environment_is_cron_s_not_chime_s(void **state) {
  (void)state;
  setenv("CHIME_DAEMON_ONLY", "1", 1);
  struct config *cfg = read_ok("HOME=/srv\nA=1\nLOGNAME=mallory\n* * * * * x\n", &user_tab);
  struct passwd pw = {.pw_name = "alice", .pw_dir = "/home/alice"};
  char **env = cronenv_build(cfg->jobs[0], &pw);
  assert_non_null(env);
  static const char *const want[] = {"HOME=/srv",          "A=1",           "MAILTO=root", "SHELL=/bin/sh",
                                     "PATH=/usr/bin:/bin", "LOGNAME=alice", NULL};
  size_t n = 0;
  for (; env[n]; n++) {
    bool found = false;
    for (size_t k = 0; want[k]; k++)
      found |= strcmp(env[n], want[k]) == 0;
    if (!found) print_error("unexpected %s\n", env[n]);
    assert_true(found);
  }
  assert_int_equal(n, 5); /* MAILTO is not in the file: not in the environment */
  free(env);
  config_free(cfg);
  cfg = read_ok("SHELL=/bin/bash\nPATH=/opt\n* * * * * x\n", &user_tab);
  env = cronenv_build(cfg->jobs[0], &pw);
  static const char *const want2[] = {"SHELL=/bin/bash", "PATH=/opt", "HOME=/home/alice", "LOGNAME=alice", NULL};
  for (n = 0; want2[n]; n++)
    assert_string_equal(env[n], want2[n]);
  assert_null(env[n]);
  free(env);
  config_free(cfg);
}

static void programs_are_found_in_the_job_s_path(void **state) {
  (void)state;
  char dir[] = "/tmp/chime-path-XXXXXX", file[256], out[512], why[512];
  assert_non_null(mkdtemp(dir));
  snprintf(file, sizeof file, "%s/tool", dir);
  FILE *f = fopen(file, "w");
  fputs("#!/bin/sh\n", f);
  fclose(f);
  chmod(file, 0755);
  snprintf(file, sizeof file, "%s/data", dir);
  fclose(fopen(file, "w"));
  char path[600];
  snprintf(path, sizeof path, "/nonexistent:%s:/bin", dir);
  assert_int_equal(cronenv_find_program("tool", path, out, sizeof out, why, sizeof why), 0);
  snprintf(file, sizeof file, "%s/tool", dir);
  assert_string_equal(out, file);
  assert_int_equal(cronenv_find_program("tool", "/usr/bin:/bin", out, sizeof out, why, sizeof why), -ENOENT);
  assert_string_equal(why, "tool: not found in PATH /usr/bin:/bin");
  assert_int_equal(cronenv_find_program("data", path, out, sizeof out, why, sizeof why), -EACCES);
  assert_int_equal(cronenv_find_program(file, NULL, out, sizeof out, why, sizeof why), 0);
  assert_int_equal(cronenv_find_program("/nonexistent/x", NULL, out, sizeof out, why, sizeof why), -ENOENT);
  assert_string_equal(why, "/nonexistent/x: no such file");
  assert_int_equal(cronenv_find_program("sh", NULL, out, sizeof out, why, sizeof why), 0);
  assert_string_equal(out, "/usr/bin/sh");
  assert_int_equal(cronenv_find_program("tool", path, out, 8, why, sizeof why), -ENAMETOOLONG);
  /* Which PATH: the job's env, cron's default for a crontab, else chime's. */
  struct job_conf j;
  job_init(&j);
  setenv("PATH", "/daemon/bin", 1);
  assert_string_equal(cronenv_path(&j), "/daemon/bin");
  j.clean_env = true;
  assert_string_equal(cronenv_path(&j), "/usr/bin:/bin");
  char err[100];
  assert_int_equal(job_add_env(&j, "PATH=/opt/bin", err, sizeof err), 0);
  assert_string_equal(cronenv_path(&j), "/opt/bin");
  job_free(&j);
  snprintf(file, sizeof file, "%s/tool", dir), unlink(file);
  snprintf(file, sizeof file, "%s/data", dir), unlink(file);
  rmdir(dir);
}

/* A fake sendmail that records its arguments and its standard input. */
static char mail_dir[64];

static void fake_sendmail(void) {
  snprintf(mail_dir, sizeof mail_dir, "/tmp/chime-mail-XXXXXX");
  assert_non_null(mkdtemp(mail_dir));
  char script[128], body[512];
  snprintf(script, sizeof script, "%s/sendmail", mail_dir);
  snprintf(body, sizeof body, "#!/bin/sh\nprintf '%%s\\n' \"$@\" > %s/args\ncat > %s/stdin\n", mail_dir, mail_dir);
  FILE *f = fopen(script, "w");
  fputs(body, f);
  fclose(f);
  chmod(script, 0755);
  setenv("CHIME_SENDMAIL", script, 1);
}

static char *slurp(const char *name) {
  char path[128];
  snprintf(path, sizeof path, "%s/%s", mail_dir, name);
  FILE *f = fopen(path, "r");
  if (!f) return NULL;
  char *text = calloc(1, 65536);
  size_t n = fread(text, 1, 65535, f);
  text[n] = '\0';
  fclose(f);
  unlink(path);
  return text;
}

struct mail_case {
  struct job_conf *job;
  const char *output;
  int status, rc;
  char why[256];
};

static int mail_task(void *arg) {
  struct mail_case *m = arg;
  static const char *const env[] = {"SHELL=/bin/sh", "LOGNAME=root", NULL};
  m->rc =
      cronenv_mail(m->job, "root", env, m->output, strlen(m->output), m->status, CHIME_SEC(10), m->why, sizeof m->why);
  return 0;
}

static void output_is_mailed_as_debian_cron_mails_it(void **state) {
  (void)state;
  fake_sendmail();
  struct config *cfg = read_ok("MAILTO=ops@example.com\n* * * * * echo hello; exit 3\n* * * * * quiet\n", &user_tab);
  struct mail_case m = {.job = cfg->jobs[0], .output = "hello\n", .status = 3 << 8};
  assert_int_equal(chime_run(mail_task, &m, NULL, NULL), 0);
  if (m.rc) print_error("%s\n", m.why);
  assert_int_equal(m.rc, 0);
  char *args = slurp("args"), *in = slurp("stdin"), host[256] = "", subject[400];
  assert_string_equal(args, "-FCronDaemon\n-i\n-B8BITMIME\n-oem\nops@example.com\n");
  gethostname(host, sizeof host - 1);
  snprintf(subject, sizeof subject, "Subject: Cron <root@%s> echo hello; exit 3 (failed)\n", host);
  assert_non_null(strstr(in, "From: root (Cron Daemon)\nTo: ops@example.com\n"));
  assert_non_null(strstr(in, subject));
  assert_non_null(strstr(in, "Content-Type: text/plain; charset=UTF-8\nContent-Transfer-Encoding: 8bit\n"));
  assert_non_null(strstr(in, "X-Cron-Env: <SHELL=/bin/sh>\nX-Cron-Env: <LOGNAME=root>\n\nhello\n"));
  free(args), free(in);
  /* A run that succeeded: no "(failed)"; one without output: no mail. */
  m.status = 0;
  assert_int_equal(chime_run(mail_task, &m, NULL, NULL), 0);
  in = slurp("stdin");
  assert_null(strstr(in, "(failed)"));
  free(in);
  free(slurp("args"));
  m.output = "";
  assert_int_equal(chime_run(mail_task, &m, NULL, NULL), 0);
  assert_int_equal(m.rc, 0);
  assert_null(slurp("args"));
  /* No mailer: said, never silent. */
  char script[128];
  snprintf(script, sizeof script, "%s/sendmail", mail_dir);
  unlink(script);
  const char *mailer;
  assert_int_equal(cronenv_mailer(&mailer), -ENOENT);
  assert_string_equal(mailer, script);
  m.output = "x\n";
  assert_int_equal(chime_run(mail_task, &m, NULL, NULL), 0);
  assert_int_equal(m.rc, -ENOENT);
  assert_non_null(strstr(m.why, "no mailer"));
  assert_non_null(strstr(m.why, "was not mailed to ops@example.com"));
  rmdir(mail_dir);
  config_free(cfg);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(percent_ends_the_command_and_starts_its_input),
      cmocka_unit_test(environment_lines_as_debian_cron_reads_them),
      cmocka_unit_test(shell_path_zone_mail_and_delay_come_from_the_file),
      cmocka_unit_test(macros_are_cron_s_and_reboot_is_a_flag),
      cmocka_unit_test(fields_are_tried_seven_six_then_five),
      cmocka_unit_test(system_format_has_a_user_refused_unless_root),
      cmocka_unit_test(bad_files_are_refused_whole_with_file_and_line),
      cmocka_unit_test(names_come_from_commands_or_chime_comments),
      cmocka_unit_test(convert_writes_ini_that_reads_back_the_same),
      cmocka_unit_test(debian_etc_crontab_fires_as_cron_would),
      cmocka_unit_test(debian_e2scrub_all_fires_as_cron_would),
      cmocka_unit_test(debian_sysstat_fires_as_cron_would),
      cmocka_unit_test(debian_php_fires_as_cron_would),
      cmocka_unit_test(debian_anacron_fires_as_cron_would),
      cmocka_unit_test(debian_popularity_contest_fires_as_cron_would),
      cmocka_unit_test(run_environment_is_cron_s_not_chime_s),
      cmocka_unit_test(programs_are_found_in_the_job_s_path),
      cmocka_unit_test(output_is_mailed_as_debian_cron_mails_it),
  };
  if (test_select(tests, sizeof tests / sizeof tests[0], argc, argv)) return 2;
  return cmocka_run_group_tests(tests, NULL, NULL);
}
