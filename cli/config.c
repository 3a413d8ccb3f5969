/* config.c - the keys of a job and of the daemon.
 *
 * Each key is set from its text and checked alone by job_set or
 * daemon_set, the setters both the config file (conffile.c) and the
 * command line use; job_finish then checks the keys together and computes
 * what follows from them.  Errors say why without file, line or key: the
 * caller knows those.  An unknown key is matched against the known ones,
 * so that a typing error gets its correction.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "argv.h"

/* ---- errors ---------------------------------------------------------------- */

void errors_add(struct errors *e, const char *fmt, ...) {
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  e->count++;
  if (n < 0) return;
  size_t len = strlen(line);
  if (e->len + len + 2 > e->cap) {
    size_t cap = (e->cap ? e->cap * 2 : 512) + len + 2;
    char *t = realloc(e->text, cap);
    if (!t) return; /* the count still says there was an error */
    e->text = t, e->cap = cap;
  }
  memcpy(e->text + e->len, line, len);
  e->len += len;
  e->text[e->len++] = '\n';
  e->text[e->len] = '\0';
}

void errors_free(struct errors *e) {
  free(e->text);
  memset(e, 0, sizeof *e);
}

/* ---- one job's keys ------------------------------------------------------------ */

void job_init(struct job_conf *job) {
  memset(job, 0, sizeof *job);
  job->kill_grace = CHIME_SEC(5);
  job->max_concurrent = 2;
  job->backoff = CHIME_SEC(10);
  job->backoff_max = CHIME_MIN(10);
  job->hook_timeout = CHIME_MIN(1);
}

void daemon_init(struct daemon_conf *d) {
  memset(d, 0, sizeof *d);
  d->shutdown_grace = CHIME_SEC(8);
  d->fleet_lease = CHIME_SEC(20);
  d->fleet_max_skew = CHIME_SEC(1);
}

void job_free(struct job_conf *job) {
  if (!job) return;
  free(job->name);
  free(job->schedule);
  chime_cron_free(job->cron);
  chime_tz_free(job->tz);
  free(job->tz_name);
  free(job->command);
  free(job->argv);
  free(job->shell_path);
  free(job->input);
  free(job->mailto);
  free(job->env);
  free(job->dir);
  free(job->user);
  free(job->on_failure);
  free(job->on_recovery);
  free(job->failure_argv);
  free(job->recovery_argv);
  free(job->fingerprint);
  memset(job, 0, sizeof *job);
}

void daemon_free(struct daemon_conf *d) {
  free(d->db);
  free(d->socket);
  free(d->fleet);
  free(d->node);
  free(d->fleet_outbox);
  d->db = d->socket = d->fleet = d->node = d->fleet_outbox = NULL;
}

static int say(char *err, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int say(char *err, size_t size, const char *fmt, ...) {
  if (err && size) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, size, fmt, ap);
    va_end(ap);
  }
  return -EINVAL;
}

static int set_string(char **field, const char *value) {
  char *copy = strdup(value);
  if (!copy) return -ENOMEM;
  free(*field);
  *field = copy;
  return 0;
}

static int parse_bool(const char *v, bool *out) {
  static const char *const yes[] = {"true", "yes", "on", "1"}, *const no[] = {"false", "no", "off", "0"};
  for (size_t i = 0; i < 4; i++) {
    if (strcmp(v, yes[i]) == 0) return *out = true, 0;
    if (strcmp(v, no[i]) == 0) return *out = false, 0;
  }
  return -EINVAL;
}

static int parse_uint(const char *v, unsigned long long max, unsigned long long *out) {
  if (*v < '0' || *v > '9') return -EINVAL;
  errno = 0;
  char *end;
  unsigned long long n = strtoull(v, &end, 10);
  if (*end || errno || n > max) return -EINVAL;
  *out = n;
  return 0;
}

/* The shortest interval a job may have: a program cannot be started much
 * more often (a start costs a fork and an exec, about a millisecond of
 * CPU), and a shorter one would only pile up skipped ticks. */
#define EVERY_MIN CHIME_MS(10)

static int check_every(chime_ns d, const char *v, char *err, size_t size) {
  if (d >= EVERY_MIN) return 0;
  return say(err, size, "\"%s\" is shorter than 10ms, the shortest interval a program can be run at", v);
}

static int parse_enum(const char *v, const char *const *names, int count, int *out) {
  for (int i = 0; i < count; i++)
    if (names[i] && strcmp(v, names[i]) == 0) return *out = i, 0;
  return -EINVAL;
}

static const char *const overlap_names[] = {"skip", "queue", "allow", "replace"};
/* In the order of chime_on_error. */
static const char *const on_error_names[] = {"continue", "stop", "backoff"};

static int set_duration(chime_ns *field, const char *v, chime_ns min, char *err, size_t size) {
  chime_ns d;
  int rc = chime_parse_duration(v, &d);
  if (rc == -ERANGE) /* under a nanosecond, or past the clock */
    return say(err, size, "\"%s\" is out of range (from 1ns to 292 years, or 0)", v);
  if (rc) return say(err, size, "\"%s\" is not a duration (such as 30s, 1h30m, 2min)", v);
  if (d < min) return say(err, size, "must be more than 0");
  if (d > CHIME_HOUR(24 * 365 * 10)) return say(err, size, "\"%s\" is more than ten years", v);
  *field = d;
  return 0;
}

static bool env_name_ok(const char *w, size_t n) {
  if (n == 0 || (w[0] >= '0' && w[0] <= '9')) return false;
  for (size_t i = 0; i < n; i++)
    if (!(w[i] == '_' || (w[i] >= 'a' && w[i] <= 'z') || (w[i] >= 'A' && w[i] <= 'Z') || (w[i] >= '0' && w[i] <= '9')))
      return false;
  return true;
}

/* Appends n NAME=VALUE words to job->env, checking each (one allocation,
 * as argv_split makes). */
static int env_append(struct job_conf *job, char *const *words, size_t n, char *err, size_t size) {
  for (size_t i = 0; i < n; i++) {
    const char *eq = strchr(words[i], '=');
    if (!eq || !env_name_ok(words[i], (size_t)(eq - words[i]))) return say(err, size, "\"%s\" is not NAME=VALUE", words[i]);
  }
  size_t old = 0, bytes = 0;
  while (job->env && job->env[old]) bytes += strlen(job->env[old++]) + 1;
  for (size_t i = 0; i < n; i++) bytes += strlen(words[i]) + 1;
  size_t table = (old + n + 1) * sizeof(char *);
  char **env = malloc(table + bytes);
  if (!env) return -ENOMEM;
  char *p = (char *)env + table;
  for (size_t i = 0; i < old + n; i++) {
    const char *w = i < old ? job->env[i] : words[i - old];
    env[i] = strcpy(p, w);
    p += strlen(w) + 1;
  }
  env[old + n] = NULL;
  free(job->env);
  job->env = env;
  return 0;
}

/* The env key: NAME=VALUE words, split as a command is. */
static int add_env(struct job_conf *job, const char *v, char *err, size_t size) {
  char **words;
  int n;
  char why[160];
  int rc = argv_split(v, &words, &n, why, sizeof why);
  if (rc == -ENOMEM) return rc;
  if (rc) return say(err, size, "%s", why);
  rc = env_append(job, words, (size_t)n, err, size);
  free(words);
  return rc;
}

int job_add_env(struct job_conf *job, const char *word, char *err, size_t size) {
  char *words[1] = {(char *)word};
  return env_append(job, words, 1, err, size);
}

static int set_schedule(struct job_conf *job, const char *v, char *err, size_t size) {
  if (strcmp(v, "@reboot") == 0) { /* no expression: one run at start */
    if (set_string(&job->schedule, v)) return -ENOMEM;
    chime_cron_free(job->cron);
    job->cron = NULL;
    job->every = 0;
    job->reboot = true;
    return 0;
  }
  chime_cron_expr *cron = NULL;
  chime_cron_error ce;
  memset(&ce, 0, sizeof ce);
  int rc = chime_cron_parse(v, &cron, &ce);
  if (rc == -ENOMEM) return rc;
  if (rc) return say(err, size, "column %d: %s", ce.column, ce.message);
  chime_ns interval = 0;
  if (chime_cron_interval(cron, &interval) == 0) { /* "@every D": an interval job */
    chime_cron_free(cron);
    cron = NULL;
    if (check_every(interval, v, err, size)) return -EINVAL;
  }
  if (set_string(&job->schedule, v)) {
    chime_cron_free(cron);
    return -ENOMEM;
  }
  chime_cron_free(job->cron);
  job->cron = cron;
  job->every = interval;
  job->reboot = false;
  return 0;
}

/* `shell`: true or false, or the absolute path of a shell to run the
 * command with (as a crontab's SHELL). */
static int set_shell(struct job_conf *job, const char *v, char *err, size_t size) {
  bool b;
  if (parse_bool(v, &b) == 0) {
    job->shell = b;
    free(job->shell_path), job->shell_path = NULL;
    return 0;
  }
  if (v[0] != '/') return say(err, size, "\"%s\" is not true, false or a shell's absolute path", v);
  if (set_string(&job->shell_path, v)) return -ENOMEM;
  job->shell = true;
  return 0;
}

/* `input`: the child's standard input, with \n for a newline and \\ for
 * a backslash (an INI value is one line). */
static int set_input(struct job_conf *job, const char *v, char *err, size_t size) {
  char *text = malloc(strlen(v) + 1), *o = text;
  if (!text) return -ENOMEM;
  for (const char *p = v; *p; p++) {
    if (*p != '\\') {
      *o++ = *p;
      continue;
    }
    if (p[1] != 'n' && p[1] != '\\') {
      free(text);
      return say(err, size, "\\%c: only \\n (a newline) and \\\\ (a backslash) are escapes", p[1] ? p[1] : ' ');
    }
    *o++ = *++p == 'n' ? '\n' : '\\';
  }
  *o = '\0';
  free(job->input);
  job->input = text;
  return 0;
}

/* `mailto`: where a run's output is mailed; empty: nowhere.  A leading '-'
 * would be read by sendmail as an option: refused. */
static int set_mailto(struct job_conf *job, const char *v, char *err, size_t size) {
  if (!*v) {
    free(job->mailto), job->mailto = NULL;
    return 0;
  }
  for (const char *p = v; *p; p++)
    if (*p == '-' && (p == v || p[-1] == ',')) return say(err, size, "\"%s\": an address may not start with '-'", v);
    else if ((unsigned char)*p <= ' ' || strchr("\"'\\;|&<>`$()", *p))
      return say(err, size, "\"%s\" is not a list of mail addresses", v);
  return set_string(&job->mailto, v);
}

/* A user: a name, or a uid (all digits), which must fit a uid_t and not be
 * (uid_t)-1, the "no user" of setuid: 4294967296 must not become 0. */
static int set_user(struct job_conf *job, const char *v, char *err, size_t size) {
  size_t n = strlen(v);
  bool ok = n > 0 && n <= 32 && v[0] != '-', digits = true;
  for (size_t i = 0; ok && i < n; i++) {
    ok = (v[i] >= 'a' && v[i] <= 'z') || (v[i] >= 'A' && v[i] <= 'Z') || (v[i] >= '0' && v[i] <= '9') ||
         strchr("_.-", v[i]);
    digits = digits && v[i] >= '0' && v[i] <= '9';
  }
  if (!ok) return say(err, size, "\"%s\" is not a user name or number", v);
  unsigned long long uid;
  if (digits && parse_uint(v, 4294967294ull, &uid) != 0) return say(err, size, "uid %s is out of range 0-4294967294", v);
  return set_string(&job->user, v);
}

/* ---- unknown keys ------------------------------------------------------------ */

static const char *const job_keys[] = {
    "schedule", "every",          "tz",       "command", "shell",       "env",      "dir",
    "user",     "timeout",        "kill_grace", "jitter", "spread",     "window",   "overlap",
    "max_concurrent", "on_error", "backoff",  "backoff_max", "catch_up", "start_now", "max_runs",
    "clean_env", "input", "mailto", "on_failure", "on_recovery", "hook_timeout", "history_keep",
    "history_max_runs", "history_keep_ok", "history_keep_failed", "scope", "on_node_loss", "on_db_down",
};
static const char *const daemon_keys[] = {"db",     "log_format", "shutdown_grace", "socket",         "watch",
                                          "http",   "fleet",      "node",           "fleet_lease", "fleet_max_skew",
                                          "fleet_outbox"};
#define COUNT(a) (sizeof(a) / sizeof(a)[0])

static bool in(const char *key, const char *const *keys, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(key, keys[i]) == 0) return true;
  return false;
}

static char fold(char c) { return c == '-' ? '_' : c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c; }

/* The edit distance of a and b (insertions, deletions, substitutions),
 * with - read as _ and case ignored; keys are short, so it is cheap. */
static size_t distance(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  if (la > 64 || lb > 64) return SIZE_MAX;
  size_t row[65];
  for (size_t j = 0; j <= lb; j++) row[j] = j;
  for (size_t i = 1; i <= la; i++) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= lb; j++) {
      size_t up = row[j], best = diag + (fold(a[i - 1]) != fold(b[j - 1]));
      if (up + 1 < best) best = up + 1;
      if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
      diag = up, row[j] = best;
    }
  }
  return row[lb];
}

const char *key_nearest(const char *key) {
  const char *best = NULL;
  size_t best_d = SIZE_MAX;
  for (size_t i = 0; i < COUNT(job_keys) + COUNT(daemon_keys); i++) {
    const char *k = i < COUNT(job_keys) ? job_keys[i] : daemon_keys[i - COUNT(job_keys)];
    size_t d = distance(key, k);
    if (d < best_d) best = k, best_d = d;
  }
  size_t len = strlen(key);
  return best_d <= 2 && best_d * 2 < len ? best : NULL;
}

/* Why a key is unknown: it belongs to the other kind of section, or it
 * looks like a typing error for a known key, or neither. */
static int unknown_key(const char *key, bool daemon, char *err, size_t size) {
  const char *near = key_nearest(key);
  if (!daemon && in(key, daemon_keys, COUNT(daemon_keys)))
    say(err, size, "a key of [chime], not of a job");
  else if (daemon && in(key, job_keys, COUNT(job_keys)))
    say(err, size, "a job's key: put it in [job NAME] or [defaults]");
  else if (near && in(near, daemon ? daemon_keys : job_keys, daemon ? COUNT(daemon_keys) : COUNT(job_keys)))
    say(err, size, "unknown key (did you mean %s?)", near);
  else
    say(err, size, "unknown key");
  return -ENOENT;
}

int job_set(struct job_conf *job, const char *key, const char *v, char *err, size_t size) {
  int e;
  bool b;
  unsigned long long u;
  if (!v) return say(err, size, "needs a value");
  if (strcmp(key, "schedule") == 0) return set_schedule(job, v, err, size);
  if (strcmp(key, "every") == 0) {
    chime_ns d = 0;
    if (set_duration(&d, v, 1, err, size) || check_every(d, v, err, size)) return -EINVAL;
    job->every = d;
    free(job->schedule), job->schedule = NULL;
    chime_cron_free(job->cron), job->cron = NULL;
    job->reboot = false;
    return 0;
  }
  if (strcmp(key, "command") == 0 || strcmp(key, "on_failure") == 0 || strcmp(key, "on_recovery") == 0) {
    if (!*v) return say(err, size, "is empty");
    if (strlen(v) > ARGV_MAX_TEXT) return say(err, size, "is longer than %d bytes", ARGV_MAX_TEXT);
    return set_string(key[0] == 'c' ? &job->command : key[3] == 'f' ? &job->on_failure : &job->on_recovery, v);
  }
  if (strcmp(key, "history_keep") == 0) {
    if (v[0] == '-' || strcmp(v, "0") == 0)
      return say(err, size, "\"%s\": must be more than 0 (db = none keeps no history)", v);
    return set_duration(&job->history.keep, v, 1, err, size);
  }
  if (strcmp(key, "env") == 0) return add_env(job, v, err, size);
  if (strcmp(key, "shell") == 0) return set_shell(job, v, err, size);
  if (strcmp(key, "input") == 0) return set_input(job, v, err, size);
  if (strcmp(key, "mailto") == 0) return set_mailto(job, v, err, size);
  if (strcmp(key, "dir") == 0) {
    if (v[0] != '/') return say(err, size, "\"%s\" is not an absolute path", v);
    return set_string(&job->dir, v);
  }
  if (strcmp(key, "user") == 0) return set_user(job, v, err, size);
  if (strcmp(key, "tz") == 0) {
    chime_tz *tz;
    int rc = chime_tz_load(v, &tz);
    if (rc == -ENOENT) return say(err, size, "\"%s\" is not a time zone this system has", v);
    if (rc) return say(err, size, "\"%s\": %s", v, chime_strerror(rc));
    chime_tz_free(tz);
    return set_string(&job->tz_name, v);
  }
  static const struct {
    const char *key;
    size_t off;
    chime_ns min;
  } durations[] = {
      {"timeout", offsetof(struct job_conf, timeout), 0},  {"kill_grace", offsetof(struct job_conf, kill_grace), 0},
      {"jitter", offsetof(struct job_conf, jitter), 0},    {"spread", offsetof(struct job_conf, spread), 0},
      {"window", offsetof(struct job_conf, window), 0},    {"backoff", offsetof(struct job_conf, backoff), 1},
      {"backoff_max", offsetof(struct job_conf, backoff_max), 1},
      {"hook_timeout", offsetof(struct job_conf, hook_timeout), 1},
  };
  for (size_t i = 0; i < sizeof durations / sizeof durations[0]; i++)
    if (strcmp(key, durations[i].key) == 0) {
      int rc = set_duration((chime_ns *)((char *)job + durations[i].off), v, durations[i].min, err, size);
      if (rc == 0 && strncmp(key, "backoff", 7) == 0) job->set_backoff = true;
      return rc;
    }
  static const struct {
    const char *key;
    size_t off;
  } bools[] = {{"clean_env", offsetof(struct job_conf, clean_env)},
               {"catch_up", offsetof(struct job_conf, catch_up)},
               {"start_now", offsetof(struct job_conf, start_now)}};
  for (size_t i = 0; i < sizeof bools / sizeof bools[0]; i++)
    if (strcmp(key, bools[i].key) == 0) {
      if (parse_bool(v, &b)) return say(err, size, "\"%s\" is not true or false", v);
      *(bool *)((char *)job + bools[i].off) = b;
      return 0;
    }
  if (strcmp(key, "overlap") == 0) {
    if (parse_enum(v, overlap_names, 4, &e)) return say(err, size, "\"%s\" is not skip, queue, allow or replace", v);
    job->overlap = (chime_overlap)e;
    return 0;
  }
  if (strcmp(key, "on_error") == 0) {
    if (parse_enum(v, on_error_names, 3, &e)) return say(err, size, "\"%s\" is not continue, backoff or stop", v);
    job->on_error = (chime_on_error)e;
    return 0;
  }
  if (strcmp(key, "max_concurrent") == 0) {
    if (parse_uint(v, 255, &u) || u == 0) return say(err, size, "\"%s\" is not a number from 1 to 255", v);
    job->max_concurrent = (unsigned)u;
    job->set_max_concurrent = true;
    return 0;
  }
  if (strcmp(key, "scope") == 0) {
    static const char *const scopes[] = {"fleet", "host"};
    if (parse_enum(v, scopes, 2, &e)) return say(err, size, "\"%s\" is not fleet or host", v);
    job->scope_host = e == 1;
    return 0;
  }
  if (strcmp(key, "on_node_loss") == 0) {
    static const char *const losses[] = {"drop", "rerun"};
    if (parse_enum(v, losses, 2, &e)) return say(err, size, "\"%s\" is not drop or rerun", v);
    job->rerun_on_node_loss = e == 1;
    return 0;
  }
  if (strcmp(key, "on_db_down") == 0) {
    static const char *const downs[] = {"skip", "run_local"};
    if (parse_enum(v, downs, 2, &e)) return say(err, size, "\"%s\" is not skip or run_local", v);
    job->run_local = e == 1;
    return 0;
  }
  if (strcmp(key, "max_runs") == 0) {
    if (parse_uint(v, ULLONG_MAX, &u)) return say(err, size, "\"%s\" is not a whole number", v);
    job->max_runs = u;
    return 0;
  }
  static const struct {
    const char *key;
    size_t off;
  } counts[] = {{"history_max_runs", offsetof(struct job_conf, history.max_runs)},
                {"history_keep_ok", offsetof(struct job_conf, history.keep_ok)},
                {"history_keep_failed", offsetof(struct job_conf, history.keep_failed)}};
  for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++)
    if (strcmp(key, counts[i].key) == 0) {
      if (parse_uint(v, HISTORY_BOUND_MAX, &u) || u == 0)
        return say(err, size, "\"%s\" is not a number from 1 to %llu (db = none keeps no history)", v,
                   HISTORY_BOUND_MAX);
      *(uint64_t *)((char *)job + counts[i].off) = u;
      return 0;
    }
  return unknown_key(key, false, err, size);
}

int daemon_set(struct daemon_conf *d, const char *key, const char *v, char *err, size_t size) {
  if (!v) return say(err, size, "needs a value");
  if (strcmp(key, "db") == 0) {
    if (!*v) return say(err, size, "is empty");
    return set_string(&d->db, v);
  }
  if (strcmp(key, "log_format") == 0) {
    if (log_format_parse(v, &d->format)) return say(err, size, "\"%s\" is not logfmt or json", v);
    d->format_set = true;
    return 0;
  }
  if (strcmp(key, "shutdown_grace") == 0) {
    if (set_duration(&d->shutdown_grace, v, 0, err, size)) return -EINVAL;
    d->grace_set = true;
    return 0;
  }
  if (strcmp(key, "http") == 0) {
    struct listen_addr a;
    if (strcmp(v, "none") != 0 && listen_addr_parse(v, &a, err, size)) return -EINVAL;
    if (strlen(v) >= sizeof d->http) return say(err, size, "\"%.20s...\" is too long for an address", v);
    strcpy(d->http, v);
    return 0;
  }
  if (strcmp(key, "socket") == 0) {
    if (!*v) return say(err, size, "is empty");
    return set_string(&d->socket, v);
  }
  if (strcmp(key, "watch") == 0) {
    if (parse_bool(v, &d->watch)) return say(err, size, "\"%s\" is not true or false", v);
    return 0;
  }
  if (strcmp(key, "fleet") == 0) {
    if (!*v) return say(err, size, "is empty (a conninfo, a postgresql:// URI or a service name)");
    return set_string(&d->fleet, v);
  }
  if (strcmp(key, "node") == 0) {
    if (!job_name_ok(v)) return say(err, size, "\"%s\" is not a node name (1 to 64 letters, digits and _ . - @)", v);
    return set_string(&d->node, v);
  }
  if (strcmp(key, "fleet_outbox") == 0) {
    if (v[0] != '/') return say(err, size, "\"%s\" is not an absolute path", v);
    return set_string(&d->fleet_outbox, v);
  }
  if (strcmp(key, "fleet_lease") == 0) {
    chime_ns l;
    if (set_duration(&l, v, 1, err, size)) return -EINVAL;
    if (l < CHIME_SEC(1)) return say(err, size, "\"%s\" is shorter than 1s (a lease is renewed six times in it)", v);
    d->fleet_lease = l;
    return 0;
  }
  if (strcmp(key, "fleet_max_skew") == 0) {
    chime_ns m;
    if (set_duration(&m, v, 1, err, size)) return -EINVAL;
    d->fleet_max_skew = m;
    return 0;
  }
  return unknown_key(key, true, err, size);
}

bool job_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || (c && strchr("_.-@", c));
}

bool job_name_ok(const char *n) {
  size_t len = strlen(n);
  if (len == 0 || len > JOB_NAME_MAX) return false;
  for (size_t i = 0; i < len; i++)
    if (!job_name_char(n[i])) return false;
  return true;
}

/* Appends one setting to the fingerprint. */
static void fp(FILE *f, const char *key, const char *value) { fprintf(f, "%s=%s\x1f", key, value ? value : "-"); }
static void fpn(FILE *f, const char *key, long long value) { fprintf(f, "%s=%lld\x1f", key, value); }

static int make_fingerprint(struct job_conf *j) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  if (!f) return -ENOMEM;
  fp(f, "schedule", j->cron ? j->schedule : NULL);
  fp(f, "tz", j->tz_name);
  fpn(f, "every", j->every);
  for (char **w = j->argv; *w; w++) fp(f, "arg", *w);
  for (char **w = j->env; w && *w; w++) fp(f, "env", *w);
  fp(f, "dir", j->dir);
  fp(f, "user", j->user);
  fp(f, "input", j->input);
  fp(f, "mailto", j->mailto);
  fpn(f, "clean_env", j->clean_env), fpn(f, "reboot", j->reboot);
  fpn(f, "timeout", j->timeout), fpn(f, "kill_grace", j->kill_grace), fpn(f, "jitter", j->jitter);
  fpn(f, "spread", j->spread), fpn(f, "window", j->window), fpn(f, "overlap", j->overlap);
  fpn(f, "max_concurrent", j->max_concurrent), fpn(f, "on_error", j->on_error), fpn(f, "backoff", j->backoff);
  fpn(f, "backoff_max", j->backoff_max), fpn(f, "catch_up", j->catch_up), fpn(f, "start_now", j->start_now);
  fpn(f, "max_runs", (long long)j->max_runs);
  fp(f, "on_failure", j->on_failure), fp(f, "on_recovery", j->on_recovery), fpn(f, "hook_timeout", j->hook_timeout);
  fpn(f, "history_keep", j->history.keep), fpn(f, "history_max_runs", (long long)j->history.max_runs);
  fpn(f, "history_keep_ok", (long long)j->history.keep_ok);
  fpn(f, "history_keep_failed", (long long)j->history.keep_failed);
  fpn(f, "scope_host", j->scope_host), fpn(f, "rerun", j->rerun_on_node_loss), fpn(f, "run_local", j->run_local);
  if (fclose(f) != 0 || !text) {
    free(text);
    return -ENOMEM;
  }
  free(j->fingerprint);
  j->fingerprint = text;
  return 0;
}

/* The words of `text`, the value of `key`, into *out (one allocation;
 * what was there is freed): SHELL -c TEXT with the job's shell, else the
 * text split into words.  0, -EINVAL (reported), -ENOMEM. */
static int split_command(const struct job_conf *job, const char *key, const char *text, char ***out,
                         finish_report report, void *ctx) {
  char **argv;
  char why[200];
  int argc, rc;
  if (job->shell) {
    static const char *const sh[] = {"/bin/sh", "-c"};
    size_t table = 4 * sizeof(char *);
    argv = malloc(table + strlen(text) + 1);
    if (!argv) return -ENOMEM;
    argv[0] = job->shell_path ? job->shell_path : (char *)sh[0], argv[1] = (char *)sh[1];
    argv[2] = strcpy((char *)argv + table, text), argv[3] = NULL;
  } else {
    rc = argv_split(text, &argv, &argc, why, sizeof why);
    if (rc == -ENOMEM) return rc;
    if (rc) return report(ctx, key, why), -EINVAL;
  }
  free(*out);
  *out = argv;
  if (!argv[0][0]) return report(ctx, key, "the program's name is empty"), -EINVAL;
  return 0;
}

/* argv for the job: the words of the command line (its PROGRAM ARGS...,
 * given as such), or the command's words; and its hooks'.  0, -EINVAL
 * (reported), -ENOMEM. */
static int make_argv(struct job_conf *job, finish_report report, void *ctx) {
  int rc = 0, bad = 0;
  if (!job->argv || job->shell) rc = split_command(job, "command", job->command, &job->argv, report, ctx);
  bad += rc == -EINVAL;
  if (rc != -ENOMEM && job->on_failure)
    bad += (rc = split_command(job, "on_failure", job->on_failure, &job->failure_argv, report, ctx)) == -EINVAL;
  if (rc != -ENOMEM && job->on_recovery)
    bad += (rc = split_command(job, "on_recovery", job->on_recovery, &job->recovery_argv, report, ctx)) == -EINVAL;
  return rc == -ENOMEM ? rc : bad ? -EINVAL : 0;
}

void job_drop_unfit(struct job_conf *job, bool (*keep)(const void *ctx, const char *key), const void *ctx) {
  if (job->set_max_concurrent && job->overlap != CHIME_OVERLAP_ALLOW && !keep(ctx, "max_concurrent"))
    job->set_max_concurrent = false;
  if (job->set_backoff && job->on_error != CHIME_ERROR_BACKOFF && !keep(ctx, "backoff") && !keep(ctx, "backoff_max"))
    job->set_backoff = false;
  if (job->cron) {
    if (!keep(ctx, "spread")) job->spread = 0;
    if (!keep(ctx, "start_now")) job->start_now = false;
  } else if ((job->every || job->reboot) && !keep(ctx, "tz")) {
    free(job->tz_name);
    job->tz_name = NULL;
  }
}

int job_finish(struct job_conf *job, finish_report report, void *ctx) {
  bool calendar = job->cron != NULL;
  int errors = 0, rc;
  char why[200];
  if (!job->schedule && !job->every && !job->reboot)
    errors++, report(ctx, "schedule", "no schedule: give schedule or every");
  if (!job->command) errors++, report(ctx, "command", "no command");
  else if ((rc = make_argv(job, report, ctx)) == -ENOMEM) return rc;
  else errors += rc != 0;
  if (job->on_error == CHIME_ERROR_BACKOFF && job->backoff_max < job->backoff)
    errors++, report(ctx, "backoff_max", "shorter than backoff");
  /* a policy's parameter without its policy would be ignored: refused, as the library refuses it */
  if (job->set_max_concurrent && job->overlap != CHIME_OVERLAP_ALLOW)
    errors++, report(ctx, "max_concurrent", "only with overlap = allow");
  if (job->set_backoff && job->on_error != CHIME_ERROR_BACKOFF)
    errors++, report(ctx, "backoff", "only with on_error = backoff");
  /* What chime_cron refuses, and what chime_every would ignore, refused here
   * with its key rather than when the job starts. */
  if (calendar && job->spread)
    errors++, report(ctx, "spread", "a calendar schedule has no spread (it moves an interval's grid): use jitter");
  if (calendar && job->start_now)
    errors++, report(ctx, "start_now", "only an interval (every) starts now: a calendar schedule runs at its times");
  if (!calendar && job->tz_name)
    errors++, report(ctx, "tz", "only a calendar schedule has a time zone (every and @every count time, not the clock)");
  if (job->reboot && (job->start_now || job->catch_up || job->spread || job->max_runs))
    errors++, report(ctx, "schedule", "@reboot runs once at start: start_now, catch_up, spread and max_runs do not apply");
  if (calendar && !job->tz && (rc = chime_tz_load(job->tz_name, &job->tz)) != 0) {
    if (rc == -ENOMEM) return rc;
    snprintf(why, sizeof why, "\"%s\": %s", job->tz_name ? job->tz_name : "local", chime_strerror(rc));
    errors++, report(ctx, "tz", why);
  }
  if (errors) return -EINVAL;
  return make_fingerprint(job);
}

int job_fleet_check(const struct job_conf *j, finish_report report, void *ctx) {
  if (j->scope_host || j->reboot) return 0;
  int errors = 0;
  if (j->start_now)
    errors++, report(ctx, "start_now", "a fleet's interval job ticks on the wall clock's grid: give scope = host");
  if (j->max_runs)
    errors++, report(ctx, "max_runs", "each node of a fleet would count its own runs: give scope = host");
  if (!j->cron && j->every && j->jitter >= j->every)
    errors++, report(ctx, "jitter", "in a fleet, a jitter must be shorter than the interval");
  return errors ? -EINVAL : 0;
}

int job_next_runs(const struct job_conf *job, chime_ns after, chime_ns *times, int n) {
  if (job->reboot) return 0;
  if (job->cron) return chime_cron_next_n(job->cron, job->tz, after, times, (size_t)n);
  for (int i = 0; i < n; i++) times[i] = after + (job->start_now ? i : i + 1) * job->every;
  return n;
}

/* The tick after `after` on the job's schedule (wall clock), or 0. */
static chime_ns tick_after(const struct job_conf *job, chime_ns after) {
  chime_ns t;
  if (job->cron) return chime_cron_next(job->cron, job->tz, after, &t) == 0 ? t : 0;
  return job->every && after <= INT64_MAX - job->every ? after + job->every : 0;
}

chime_ns job_latest_tick(const struct job_conf *job, chime_ns after, chime_ns until) {
  if (job->reboot || until <= after) return 0;
  if (!job->cron) {
    chime_ns k = (until - after) / job->every;
    return k > 0 ? after + k * job->every : 0;
  }
  /* Look back from `until` over a span that grows fourfold until it holds
   * a tick, then walk forward to the last one: a few dozen steps, however
   * long the downtime and dense the schedule. */
  for (chime_ns back = CHIME_MIN(1);; back = back > INT64_MAX / 4 ? INT64_MAX : back * 4) {
    chime_ns from = until - after <= back ? after : until - back;
    chime_ns t = tick_after(job, from);
    if (t && t <= until) {
      for (chime_ns n; (n = tick_after(job, t)) != 0 && n <= until;) t = n;
      return t;
    }
    if (from == after) return 0;
  }
}
