/* main.c - the chime command: parses the command line and runs one of
 * every, cron, run, crontab, check, convert and history.
 *
 * Exit status: 0 success; 1 an error (an invalid config, a job stopped by
 * its errors, a database that cannot be read); 2 a bad command line.
 */
#include <chime.h>
#include <errno.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "control.h"
#include "crontab.h"
#include "fleethist.h"
#include "history.h"
#include "log.h"
#include "prune.h"
#include "runner.h"

static const char usage[] =
    "usage: chime every INTERVAL [OPTIONS] -- PROGRAM [ARGS...]\n"
    "       chime cron 'EXPRESSION' [OPTIONS] -- PROGRAM [ARGS...]\n"
    "       chime run FILE [--watch] [DAEMON OPTIONS]\n"
    "       chime crontab FILE [--system] [DAEMON OPTIONS]\n"
    "       chime check FILE [--crontab|--ini] [--system]\n"
    "       chime convert FILE [--system]\n"
    "       chime history [JOB | --job JOB] [--limit N] [--json] [--db PATH | --fleet CONNINFO]\n"
    "       chime history prune [JOB] [--config FILE] [--db PATH] [--history-keep D] [--history-max-runs N]\n"
    "                           [--history-keep-ok N] [--history-keep-failed N]\n"
    "       chime status [--json] [--socket PATH] [--db PATH]\n"
    "       chime trigger|pause|resume JOB [--socket PATH] [--db PATH]\n"
    "       chime reload [--socket PATH] [--db PATH]\n"
    "       chime --help | --version\n"
    "\n"
    "Job options of every and cron (the config file's keys):\n"
    "  --name NAME  --timeout D  --kill-grace D  --jitter D  --spread D  --window D\n"
    "  --overlap skip|queue|allow|replace  --max-concurrent N  --on-error continue|backoff|stop\n"
    "  --backoff D  --backoff-max D  --max-runs N  --env NAME=VALUE  --dir PATH  --user USER\n"
    "  --tz ZONE  --shell  --catch-up  --start-now  --on-failure CMD  --on-recovery CMD  --hook-timeout D\n"
    "  --history-keep D  --history-max-runs N  --history-keep-ok N  --history-keep-failed N\n"
    "  --scope fleet|host  --on-node-loss drop|rerun  --on-db-down skip|run_local\n"
    "DAEMON OPTIONS, of every, cron, run and crontab:\n"
    "  --db PATH|none  --socket PATH|none  --log-format logfmt|json  --shutdown-grace D\n"
    "  --http ADDR:PORT  (metrics, health, a JSON API and a status page; 127.0.0.1:9746)\n"
    "  --fleet CONNINFO  --node NAME  --fleet-lease D  --fleet-max-skew D  --fleet-outbox PATH\n"
    "Durations: 30s, 1h30m, 2min, 250ms.  See chime(1) and chime.conf(5).\n";

/* Exit status 1, said. */
static int out_of_memory(void) {
  fputs("chime: out of memory\n", stderr);
  return 1;
}

/* The value of option --key was refused (`why`), or could not be kept. */
static int option_error(const char *key, int rc, const char *why) {
  if (rc == -ENOMEM) return out_of_memory();
  fprintf(stderr, "chime: --%s: %s\n", key, why);
  return 2;
}

static int bad_usage(const char *fmt, const char *what) {
  fprintf(stderr, "chime: ");
  fprintf(stderr, fmt, what);
  fprintf(stderr, "\n(chime --help tells how to use it)\n");
  return 2;
}

/* An option's name as a key: "--kill-grace" is kill_grace. */
static void option_key(const char *opt, char *key, size_t size) {
  size_t n = strcspn(opt + 2, "=");
  if (n >= size) n = size - 1;
  for (size_t i = 0; i < n; i++) key[i] = opt[2 + i] == '-' ? '_' : opt[2 + i];
  key[n] = '\0';
}

static bool is_flag(const char *key) {
  return strcmp(key, "shell") == 0 || strcmp(key, "catch_up") == 0 || strcmp(key, "start_now") == 0 ||
         strcmp(key, "json") == 0 || strcmp(key, "no_history") == 0 || strcmp(key, "system") == 0 ||
         strcmp(key, "crontab") == 0 || strcmp(key, "ini") == 0 || strcmp(key, "watch") == 0;
}

/* The next option of argv[*i]: its key and value.  1 if there is one, 0 at
 * the end or at "--" (*i is then past it), 2 (usage) after an error. */
static int next_option(int argc, char **argv, int *i, char *key, size_t size, const char **value) {
  if (*i >= argc) return 0;
  const char *a = argv[*i];
  if (strcmp(a, "--") == 0) return ++*i, 0;
  if (strncmp(a, "--", 2) != 0 || !a[2]) return bad_usage("unexpected argument \"%s\"", a);
  option_key(a, key, size);
  const char *eq = strchr(a, '=');
  (*i)++;
  if (eq) *value = eq + 1;
  else if (is_flag(key)) *value = "true";
  else if (*i < argc) *value = argv[(*i)++];
  else return bad_usage("%s needs a value", a);
  return 1;
}

/* The history database's path (NULL for none): --db or the config's db,
 * else the environment's CHIME_DB (empty is unset), else the default under
 * XDG_STATE_HOME or HOME, whose directories are made.  0, or 2 after an
 * error. */
static int db_path(const struct daemon_conf *d, char *buf, size_t size, const char **path, bool *make_dirs) {
  *make_dirs = false;
  const char *db = d->db ? d->db : getenv("CHIME_DB");
  if (db && strcmp(db, "none") == 0) return *path = NULL, 0;
  struct stat st;
  if (db && *db && stat(db, &st) == 0 && !S_ISREG(st.st_mode)) { /* /dev/null would get a /dev/null-journal */
    fprintf(stderr, "chime: history database %s: not a regular file\n", db);
    return 2;
  }
  if (db && *db) return *path = db, 0;
  int rc = history_default_path(buf, size);
  if (rc != 0) {
    fprintf(stderr, "chime: no history database: %s; set CHIME_DB=PATH or give --db PATH (none: no history)\n",
            rc == -ENAMETOOLONG ? "the default path is too long" : "neither XDG_STATE_HOME nor HOME is set");
    return 2;
  }
  *make_dirs = true;
  *path = buf;
  return 0;
}

/* A key as its option: "kill_grace" is "--kill-grace"; the command is
 * what follows "--". */
static const char *as_option(const char *key, char *buf, size_t size) {
  snprintf(buf, size, "%s%s", strcmp(key, "command") == 0 ? "" : "--", key);
  for (char *c = buf; *c; c++) *c = *c == '_' ? '-' : *c;
  return buf;
}

/* An unknown option, with the one meant if one is near. */
static int unknown_option(const char *key) {
  const char *near = key_nearest(key);
  char opt[64], given[64];
  fprintf(stderr, "chime: unknown option %s%s%s%s\n(chime --help tells how to use it)\n",
          as_option(key, given, sizeof given), near ? " (did you mean " : "", near ? as_option(near, opt, sizeof opt) : "",
          near ? "?)" : "");
  return 2;
}

/* job_finish's reports, for the command line. */
static void finish_error(void *ctx, const char *key, const char *why) {
  char opt[64];
  (void)ctx;
  fprintf(stderr, "chime: %s: %s\n", as_option(key, opt, sizeof opt), why);
}

static int daemon_option(struct daemon_conf *d, const char *key, const char *value) {
  char why[256];
  if (strcmp(key, "no_history") == 0) key = "db", value = "none";
  int rc = daemon_set(d, key, value, why, sizeof why);
  if (rc == -ENOENT) return -ENOENT;
  return rc ? option_error(key, rc, why) : 0;
}

static int start(struct config *cfg, const char *config_path, struct daemon_conf *cli) {
  struct daemon_conf *d = &cfg->daemon;
  if (cli->db) free(d->db), d->db = cli->db, cli->db = NULL;
  if (cli->socket) free(d->socket), d->socket = cli->socket, cli->socket = NULL;
  d->watch = d->watch || cli->watch;
  if (cli->fleet) free(d->fleet), d->fleet = cli->fleet, cli->fleet = NULL;
  if (cli->node) free(d->node), d->node = cli->node, cli->node = NULL;
  if (cli->fleet_outbox) free(d->fleet_outbox), d->fleet_outbox = cli->fleet_outbox, cli->fleet_outbox = NULL;
  if (cli->fleet_lease != CHIME_SEC(20)) d->fleet_lease = cli->fleet_lease;
  if (cli->fleet_max_skew != CHIME_SEC(1)) d->fleet_max_skew = cli->fleet_max_skew;
  if (cli->format_set) d->format = cli->format;
  if (cli->grace_set) d->shutdown_grace = cli->shutdown_grace;
  if (cli->http[0]) strcpy(d->http, cli->http);
  char buf[4096];
  const char *path;
  bool make_dirs;
  int rc = db_path(d, buf, sizeof buf, &path, &make_dirs);
  if (rc) return rc;
  log_setup(d->format, 2);
  return runner_main(cfg, config_path, path, make_dirs, d->shutdown_grace);
}

/* The name of a job --name does not name, into buf (JOB_NAME_MAX + 1
 * bytes): the program's base name (with --shell, that of the command's
 * first word: `--shell -- 'echo hi'` is echo), each character a name
 * cannot hold made '_', cut to JOB_NAME_MAX; "job" if nothing is left. */
static void default_name(const struct job_conf *job, char *buf) {
  const char *word = job->argv[0];
  size_t len = strlen(word);
  if (job->shell) {
    word += strspn(word, " \t\n");
    len = strcspn(word, " \t\n");
  }
  while (len > 1 && word[len - 1] == '/') len--;
  const char *base = word;
  for (size_t k = 0; k + 1 < len; k++)
    if (word[k] == '/') base = word + k + 1;
  len -= (size_t)(base - word);
  if (len > JOB_NAME_MAX) len = JOB_NAME_MAX;
  for (size_t k = 0; k < len; k++) buf[k] = job_name_char(base[k]) ? base[k] : '_';
  buf[len] = '\0';
  if (len == 0) strcpy(buf, "job");
}

/* chime every|cron SCHEDULE [options] -- PROGRAM ARGS... */
static int cmd_job(int argc, char **argv, bool cron) {
  if (argc < 3) return bad_usage("%s needs a schedule and a command", argv[1]);
  struct config *cfg = calloc(1, sizeof *cfg);
  struct job_conf *job = calloc(1, sizeof *job);
  struct daemon_conf cli;
  daemon_init(&cli);
  int rc = cfg && job ? 0 : out_of_memory();
  char why[512], key[64];
  if (rc == 0) {
    daemon_init(&cfg->daemon);
    cfg->jobs = calloc(1, sizeof *cfg->jobs);
    job_init(job);
    rc = cfg->jobs ? 0 : out_of_memory();
  }
  if (rc == 0 && (rc = job_set(job, cron ? "schedule" : "every", argv[2], why, sizeof why)) != 0) {
    if (rc != -ENOMEM) fprintf(stderr, "chime: %s \"%s\": %s\n", argv[1], argv[2], why);
    rc = rc == -ENOMEM ? out_of_memory() : 2;
  }
  const char *name = NULL, *value;
  char derived[JOB_NAME_MAX + 1];
  int i = 3, more;
  while (rc == 0 && (more = next_option(argc, argv, &i, key, sizeof key, &value)) == 1) {
    if (strcmp(key, "name") == 0) {
      name = value;
      continue;
    }
    rc = daemon_option(&cli, key, value);
    if (rc != -ENOENT) continue;
    /* one --env is one NAME=VALUE, as the shell has already split it */
    rc = strcmp(key, "env") == 0 ? job_add_env(job, value, why, sizeof why) : job_set(job, key, value, why, sizeof why);
    if (rc == -ENOENT)
      rc = unknown_option(key);
    else if (rc)
      rc = option_error(key, rc, why);
  }
  if (rc == 0 && more == 2) rc = 2;
  if (rc == 0 && i >= argc) rc = bad_usage("%s: no command: give it after --", argv[1]);
  if (rc == 0) { /* the command's words, as given, in one allocation; and as text */
    size_t bytes = 0, n = (size_t)(argc - i);
    for (int k = i; k < argc; k++) bytes += strlen(argv[k]) + 1;
    job->argv = malloc((n + 1) * sizeof(char *) + bytes);
    job->command = malloc(bytes);
    if (!job->argv || !job->command) rc = out_of_memory();
    char *p = job->argv ? (char *)(job->argv + n + 1) : NULL;
    for (size_t k = 0; rc == 0 && k < n; k++) {
      job->argv[k] = strcpy(p, argv[i + (int)k]);
      p += strlen(p) + 1;
      if (k == 0) strcpy(job->command, argv[i]);
      else strcat(strcat(job->command, " "), argv[i + (int)k]);
    }
    if (rc == 0) job->argv[n] = NULL;
    if (rc == 0 && !name) default_name(job, derived), name = derived;
  }
  if (rc == 0 && !job_name_ok(name))
    rc = bad_usage("\"%s\" is not a job name (--name: 1 to 64 letters, digits and _ . - @)", name);
  if (rc == 0 && !(job->name = strdup(name))) rc = out_of_memory();
  if (rc == 0 && (rc = job_finish(job, finish_error, NULL)) != 0) rc = rc == -ENOMEM ? out_of_memory() : 2;
  if (rc == 0) {
    cfg->jobs[cfg->njobs++] = job;
    job = NULL;
    rc = start(cfg, NULL, &cli);
  }
  if (job) job_free(job), free(job);
  config_free(cfg);
  daemon_free(&cli);
  return rc;
}

/* How a file is read: INI, or a crontab (user or system format). */
struct format {
  bool crontab, system;
  char *text; /* a crontab's text, when kept (convert) */
};

/* Reads the file as `how` says; warnings (a crontab's) are printed. */
static int load(const char *path, struct config **cfg, struct format *how) {
  struct errors errs = {0}, warns = {0};
  struct crontab_opts co = {.system = how && how->system, .euid = -1};
  int rc = how && how->crontab ? crontab_load(path, &co, cfg, &errs, &warns, &how->text) : config_load(path, cfg, &errs);
  if (warns.text) fputs(warns.text, stderr);
  if (rc) fprintf(stderr, "%schime: %s: %d error(s): nothing was run\n", errs.text ? errs.text : "", path,
                  errs.count);
  errors_free(&errs);
  errors_free(&warns);
  return rc ? 1 : 0;
}

/* The options of check, convert and crontab after FILE: --crontab, --ini,
 * --system, and the daemon's (crontab only).  Without --crontab or --ini,
 * a file is a crontab unless its first line that is not blank or a
 * comment is an INI [section] (crontab_looks_like); --system, or the
 * file's place (/etc/crontab, /etc/cron.d/NAME), gives the system format.
 * 0, or the exit status of an error. */
static int file_options(int argc, char **argv, bool daemon, struct format *how, struct daemon_conf *cli) {
  char key[64];
  const char *value;
  bool ini = false;
  int i = 3, more, rc = 0;
  memset(how, 0, sizeof *how);
  how->crontab = strcmp(argv[1], "check") != 0;
  while (rc == 0 && (more = next_option(argc, argv, &i, key, sizeof key, &value)) == 1) {
    if (strcmp(key, "system") == 0) how->system = true, how->crontab = true;
    else if (strcmp(key, "crontab") == 0 && strcmp(argv[1], "check") == 0) how->crontab = true;
    else if (strcmp(key, "ini") == 0 && strcmp(argv[1], "check") == 0) ini = true;
    else if (!daemon || (rc = daemon_option(cli, key, value)) == -ENOENT) rc = unknown_option(key);
  }
  if (rc == 0 && more == 2) rc = 2;
  if (rc == 0 && i < argc) rc = bad_usage("unexpected argument \"%s\"", argv[i]);
  if (rc == 0 && ini && how->crontab) rc = bad_usage("%s: --ini with --crontab or --system", argv[1]);
  if (rc || ini) return rc;
  if (!how->crontab) { /* check: by the content */
    struct errors errs = {0};
    char *text;
    size_t len;
    if (config_read(argv[2], &text, &len, &errs) == 0) how->crontab = crontab_looks_like(text, len), free(text);
    errors_free(&errs); /* said again when the file is loaded */
  }
  if (how->crontab && crontab_system_path(argv[2])) how->system = true;
  return 0;
}

static int cmd_run(int argc, char **argv) {
  if (argc < 3 || strncmp(argv[2], "--", 2) == 0) return bad_usage("%s needs a config file", "run");
  struct daemon_conf cli;
  daemon_init(&cli);
  char key[64];
  const char *value;
  int i = 3, more, rc = 0;
  while (rc == 0 && (more = next_option(argc, argv, &i, key, sizeof key, &value)) == 1)
    if ((rc = daemon_option(&cli, key, value)) == -ENOENT) rc = unknown_option(key);
  if (rc == 0 && more == 2) rc = 2;
  if (rc == 0 && i < argc) rc = bad_usage("unexpected argument \"%s\"", argv[i]);
  struct config *cfg = NULL;
  if (rc == 0 && (rc = load(argv[2], &cfg, NULL)) == 0) rc = start(cfg, argv[2], &cli);
  config_free(cfg);
  daemon_free(&cli);
  return rc;
}

/* chime crontab FILE [--system] [daemon options]: the crontab's jobs, run
 * by the daemon as a config file's are. */
static int cmd_crontab(int argc, char **argv) {
  if (argc < 3 || strncmp(argv[2], "--", 2) == 0) return bad_usage("%s needs a crontab file", "crontab");
  struct daemon_conf cli;
  daemon_init(&cli);
  struct format how;
  struct config *cfg = NULL;
  int rc = file_options(argc, argv, true, &how, &cli);
  if (rc == 0 && (rc = load(argv[2], &cfg, &how)) == 0) rc = start(cfg, argv[2], &cli);
  config_free(cfg);
  daemon_free(&cli);
  free(how.text);
  return rc;
}

/* chime convert FILE [--system]: the crontab in chime's INI format. */
static int cmd_convert(int argc, char **argv) {
  if (argc < 3 || strncmp(argv[2], "--", 2) == 0) return bad_usage("%s needs a crontab file", "convert");
  struct format how;
  struct config *cfg = NULL;
  int rc = file_options(argc, argv, false, &how, NULL);
  if (rc == 0 && (rc = load(argv[2], &cfg, &how)) == 0 && crontab_convert(how.text, strlen(how.text), cfg, stdout))
    rc = 1, fprintf(stderr, "chime: convert: writing failed\n");
  free(how.text);
  config_free(cfg);
  return rc;
}

/* Where a six-field `schedule` of the INI format would mean something else
 * in a crontab (year last): a last field that is a year, or seconds-first
 * steps (* /5 in the first field), which a crontab reads as minutes. */
static void check_six_fields(const struct job_conf *j) {
  char f[7][64];
  if (!j->cron || sscanf(j->schedule, "%63s %63s %63s %63s %63s %63s %63s", f[0], f[1], f[2], f[3], f[4], f[5], f[6]) != 6)
    return;
  char *end;
  long year = strtol(f[5], &end, 10);
  if (!*end && year >= 1970 && year <= 2099)
    printf("  warning: six fields: here the first is seconds and \"%s\" a weekday; in a crontab (supercronic) %s "
           "would be the year\n", f[5], f[5]);
  else if (strchr(f[0], '/') || strchr(f[0], ','))
    printf("  warning: six fields: here \"%s\" is seconds (runs up to 60 times a minute); a crontab (supercronic) "
           "reads six fields as minutes to year: give seven (\"0 %s\") or five to leave no doubt\n", f[0], j->schedule);
}

/* Warns about a program that cannot be found from here. */
static void check_program(const struct job_conf *job) {
  const char *prog = job->argv[0];
  if (strchr(prog, '/')) {
    if (access(prog, X_OK) != 0) printf("  warning: %s: %s\n", prog, strerror(errno));
    return;
  }
  const char *path = getenv("PATH");
  char full[4096];
  for (const char *p = path ? path : "/usr/local/bin:/usr/bin:/bin"; p; p = strchr(p, ':') ? strchr(p, ':') + 1 : NULL) {
    int dir = (int)strcspn(p, ":");
    snprintf(full, sizeof full, "%.*s/%s", dir, dir ? p : ".", prog);
    if (access(full, X_OK) == 0) return;
  }
  printf("  warning: %s: not found in PATH\n", prog);
}

static int cmd_check(int argc, char **argv) {
  if (argc < 3 || strncmp(argv[2], "--", 2) == 0) return bad_usage("%s needs exactly one config file", "check");
  struct format how;
  struct config *cfg;
  int rc = file_options(argc, argv, false, &how, NULL);
  if (rc == 0) rc = load(argv[2], &cfg, &how);
  if (rc) return rc;
  chime_tz *local = NULL;
  chime_tz_load(NULL, &local);
  chime_ns now = chime_wall_now();
  for (size_t i = 0; i < cfg->njobs; i++) {
    const struct job_conf *j = cfg->jobs[i];
    char text[128], head[JOB_NAME_MAX + 8];
    snprintf(head, sizeof head, "[job %s]", j->name);
    if (how.crontab) printf("%s  line %d\n", head, j->line), head[0] = '\0';
    if (j->cron) printf("%s  schedule \"%s\" in %s\n", head, j->schedule, chime_tz_name(j->tz));
    else if (j->reboot) printf("%s  @reboot: once, when chime starts\n", head);
    else chime_format_duration(j->every, text, sizeof text), printf("%s  every %s\n", head, text);
    printf("  command: %s%s%s\n", j->shell ? j->shell_path ? j->shell_path : "/bin/sh" : "", j->shell ? " -c " : "",
           j->command);
    if (j->input) printf("  input: %zu bytes on standard input\n", strlen(j->input));
    if (j->mailto) printf("  mail output to: %s\n", j->mailto);
    if (j->jitter) chime_format_duration(j->jitter, text, sizeof text), printf("  jitter: %s\n", text);
    if (j->user) printf("  user: %s\n", j->user);
    if (!j->shell) check_program(j);
    if (!how.crontab) check_six_fields(j);
    chime_ns times[5];
    bool all = j->max_runs && j->max_runs <= 5; /* a job with max_runs = 1 has one run to show */
    int n = job_next_runs(j, now, times, all ? (int)j->max_runs : 5);
    if (n > 0) printf("  %s%s:\n", all ? "its runs (max_runs)" : "next runs", j->cron ? "" : " (if started now)");
    for (int k = 0; k < n; k++) {
      char utc[64];
      format_wall(times[k], utc, sizeof utc);
      if (j->cron || local) chime_tz_format(j->cron ? j->tz : local, times[k], text, sizeof text);
      printf("    %s  (%s)\n", j->cron || local ? text : utc, utc);
    }
  }
  printf("%s: %zu job(s), no errors\n", argv[2], cfg->njobs);
  chime_tz_free(local);
  config_free(cfg);
  free(how.text);
  return 0;
}

static int cmd_history(int argc, char **argv) {
  const char *job = NULL, *value;
  struct daemon_conf cli;
  daemon_init(&cli);
  long limit = 20;
  bool json = false;
  char key[64];
  int i = 2, more, rc = 0;
  if (i < argc && strncmp(argv[i], "--", 2) != 0) job = argv[i++];
  while (rc == 0 && (more = next_option(argc, argv, &i, key, sizeof key, &value)) == 1) {
    char *end;
    if (strcmp(key, "json") == 0) json = true;
    else if (strcmp(key, "job") == 0 && !job) job = value; /* a job named prune */
    else if (strcmp(key, "limit") == 0) {
      limit = strtol(value, &end, 10);
      if (*end || !*value || limit < 1 || limit > 1000000) rc = bad_usage("--limit \"%s\": give 1 to 1000000", value);
    } else if (strcmp(key, "db") == 0 || strcmp(key, "fleet") == 0) rc = daemon_option(&cli, key, value);
    else rc = bad_usage("unknown option --%s", key);
  }
  if (rc == 0 && more == 2) rc = 2;
  if (rc == 0 && i < argc) rc = bad_usage("unexpected argument \"%s\"", argv[i]);
  char buf[4096], err[1024];
  const char *path = NULL, *fleet = cli.fleet ? cli.fleet : getenv("CHIME_FLEET");
  bool make_dirs;
  if (rc == 0 && fleet && *fleet && !cli.db) { /* the fleet's history */
    rc = fleet_history_print(fleet, job, (int)limit, json, stdout);
    daemon_free(&cli);
    return rc;
  }
  if (rc == 0) rc = db_path(&cli, buf, sizeof buf, &path, &make_dirs);
  if (rc == 0 && !path) rc = bad_usage("%s: there is no history without a database", "history");
  struct history *h = NULL;
  if (rc == 0 && access(path, F_OK) != 0) {
    fprintf(stderr, "chime: no history yet: %s does not exist\n", path);
    rc = json ? (printf("[]\n"), 0) : 0;
  } else if (rc == 0 && history_open_read(path, &h, err, sizeof err) != 0) {
    fprintf(stderr, "chime: %s\n", err);
    rc = 1;
  } else if (rc == 0 && history_print(h, job, (int)limit, json, stdout) != 0) {
    fprintf(stderr, "chime: history database %s: %s\n", path, history_error(h));
    rc = 1;
  }
  history_close(h);
  daemon_free(&cli);
  return rc;
}

/* chime history prune [JOB] [--config FILE] [--db PATH] [bounds]: the
 * bounds given, else each job's of the config. */
static int cmd_prune(int argc, char **argv) {
  const char *job = NULL, *config = NULL, *value;
  struct daemon_conf cli;
  daemon_init(&cli);
  struct job_conf given;
  job_init(&given);
  char key[64], why[256];
  int i = 3, more, rc = 0;
  if (i < argc && strncmp(argv[i], "--", 2) != 0) job = argv[i++];
  while (rc == 0 && (more = next_option(argc, argv, &i, key, sizeof key, &value)) == 1) {
    if (strcmp(key, "config") == 0) config = value;
    else if (strcmp(key, "db") == 0) rc = daemon_option(&cli, key, value);
    else if (strncmp(key, "history_", 8) != 0) rc = bad_usage("unknown option --%s", key);
    else if ((rc = job_set(&given, key, value, why, sizeof why)) != 0) rc = option_error(key, rc, why);
  }
  if (rc == 0 && more == 2) rc = 2;
  if (rc == 0 && i < argc) rc = bad_usage("unexpected argument \"%s\"", argv[i]);
  if (rc == 0 && !config && !history_bounded(&given.history))
    rc = bad_usage("%s: give the bounds (--history-keep, ...) or the config that has them (--config FILE)", "prune");
  struct config *cfg = NULL;
  if (rc == 0 && config && (rc = load(config, &cfg, NULL)) == 0 && !cli.db && cfg->daemon.db)
    rc = (cli.db = strdup(cfg->daemon.db)) ? 0 : out_of_memory();
  char buf[4096];
  const char *path = NULL;
  bool make_dirs;
  if (rc == 0) rc = db_path(&cli, buf, sizeof buf, &path, &make_dirs);
  if (rc == 0 && !path) rc = bad_usage("%s: there is no history without a database", "prune");
  if (rc == 0) rc = prune_history(path, job, cfg, history_bounded(&given.history) ? &given.history : NULL);
  config_free(cfg);
  job_free(&given);
  daemon_free(&cli);
  return rc;
}

/* chime status|trigger|pause|resume|reload: one request to the daemon's
 * control socket, found as the daemon finds it: --socket, else the
 * history's path (--db, CHIME_DB, the default) with .sock added. */
static int cmd_control(int argc, char **argv) {
  const char *verb = argv[1], *job = NULL, *value;
  bool needs_job = strcmp(verb, "status") != 0 && strcmp(verb, "reload") != 0, json = false;
  struct daemon_conf cli;
  daemon_init(&cli);
  char key[64];
  int i = 2, more, rc = 0;
  if (needs_job && (i >= argc || strncmp(argv[i], "--", 2) == 0)) rc = bad_usage("%s needs a job's name", verb);
  else if (needs_job && !job_name_ok(argv[i])) rc = bad_usage("\"%s\" is not a job's name", argv[i]);
  else if (needs_job) job = argv[i++];
  while (rc == 0 && (more = next_option(argc, argv, &i, key, sizeof key, &value)) == 1) {
    if (strcmp(key, "json") == 0 && strcmp(verb, "status") == 0) json = true;
    else if (strcmp(key, "db") == 0 || strcmp(key, "socket") == 0) rc = daemon_option(&cli, key, value);
    else rc = bad_usage("unknown option --%s", key);
  }
  if (rc == 0 && more == 2) rc = 2;
  if (rc == 0 && i < argc) rc = bad_usage("unexpected argument \"%s\"", argv[i]);
  char db[4096], sock[4096], request[128];
  const char *path = cli.socket;
  bool make_dirs;
  if (rc == 0 && !path && (rc = db_path(&cli, db, sizeof db, &path, &make_dirs)) == 0) {
    if (!path) rc = bad_usage("%s: no history database, so no socket beside it: give --socket", verb);
    else if (control_default_path(path, sock, sizeof sock) != 0)
      rc = bad_usage("%s.sock: longer than a socket's path may be: give --socket", path);
    path = sock;
  }
  if (rc == 0 && strcmp(path, "none") == 0) rc = bad_usage("%s: --socket none: there is no socket to ask", verb);
  snprintf(request, sizeof request, "%s%s%s", verb, job || json ? " " : "", job ? job : json ? "json" : "");
  if (rc == 0) rc = control_request(path, request, stdout, stderr);
  daemon_free(&cli);
  return rc;
}

int main(int argc, char **argv) {
  if (argc < 2) return bad_usage("%s", "which command?");
  const char *cmd = argv[1];
  if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
    fputs(usage, stdout);
    return 0;
  }
  if (strcmp(cmd, "--version") == 0) {
    printf("chime %s\n", chime_version());
    return 0;
  }
  if (strcmp(cmd, "every") == 0) return cmd_job(argc, argv, false);
  if (strcmp(cmd, "cron") == 0) return cmd_job(argc, argv, true);
  if (strcmp(cmd, "run") == 0) return cmd_run(argc, argv);
  if (strcmp(cmd, "check") == 0) return cmd_check(argc, argv);
  if (strcmp(cmd, "crontab") == 0) return cmd_crontab(argc, argv);
  if (strcmp(cmd, "convert") == 0) return cmd_convert(argc, argv);
  if (strcmp(cmd, "history") == 0 && argc > 2 && strcmp(argv[2], "prune") == 0) return cmd_prune(argc, argv);
  if (strcmp(cmd, "history") == 0) return cmd_history(argc, argv);
  if (strcmp(cmd, "status") == 0 || strcmp(cmd, "trigger") == 0 || strcmp(cmd, "pause") == 0 ||
      strcmp(cmd, "resume") == 0 || strcmp(cmd, "reload") == 0)
    return cmd_control(argc, argv);
  return bad_usage("unknown command \"%s\"", cmd);
}
