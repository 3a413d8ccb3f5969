/* crontab.c - a crontab, read as Debian's cron reads it, into jobs.
 *
 * The file is read line by line.  A line is blank, a comment, an
 * environment line or a job line, told apart as cron tells them: a line is
 * an environment line if cron's own parser (load_env, a small state
 * machine: a name, maybe quoted, '=', a value, maybe quoted) takes it,
 * else a job line.  The environment built so far is copied into each job,
 * so that a setting applies to the lines after it; SHELL, CRON_TZ (or TZ),
 * MAILTO and RANDOM_DELAY also set the job's keys.  A job line is a
 * schedule in the crontab syntax of chime.h, tried with 7, 6 then 5 fields
 * as supercronic does (the first that parses; what is left is the
 * command), or a macro; then, in the system format, a user; then the
 * command, whose first unescaped '%' ends it: the rest, each '%' a
 * newline, is its standard input.  Lines cron would refuse are refused,
 * except the calendar syntax chime adds (L, W, #, a year, seconds), and so
 * are lines cron would take but that mean nothing or could not run (an
 * empty command, a relative SHELL, an unknown user): each error is
 * FILE:LINE: why, and any error refuses the file.
 */
#include "crontab.h"

#include <ctype.h>
#include <errno.h>
#include <search.h>
#include <stdint.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "argv.h"

/* What a line has set so far: the environment (NAME=VALUE, in the order
 * first set, a later setting replacing an earlier one), and the chime
 * options waiting for the next job line. */
struct state {
  const char *file;
  int line;
  const struct crontab_opts *o;
  struct errors *errs, *warnings;
  char **env; /* NAME=VALUE, each allocated */
  size_t nenv;
  char *pending; /* the `# chime:` options for the next job line, joined by blanks; NULL: none */
  int pending_line;
  struct config *cfg;
  struct hsearch_data names; /* the jobs' names so far; a name's data: the next suffix to try after it */
  bool nomem;
};

static void line_error(struct state *st, const char *fmt, const char *what) __attribute__((format(printf, 2, 0)));
static void line_error(struct state *st, const char *fmt, const char *what) {
  char msg[1100];
  snprintf(msg, sizeof msg, fmt, what);
  errors_add(st->errs, "%s:%d: %s", st->file, st->line, msg);
}

static const char *env_get(const struct state *st, const char *name) {
  size_t n = strlen(name);
  for (size_t i = 0; i < st->nenv; i++)
    if (strncmp(st->env[i], name, n) == 0 && st->env[i][n] == '=') return st->env[i] + n + 1;
  return NULL;
}

/* ---- environment lines ----------------------------------------------------- */

enum env_state { NAMEI, NAME, EQ1, EQ2, VALUEI, VALUE, FINI, ERROR };

/* Cron's load_env on one line (leading blanks gone): whether it is an
 * environment line, with its name and value in name and val (each at
 * least strlen(line) + 1 bytes); *how is where the parse ended and *eq
 * whether it got past the '=', for errors. */
static bool env_parse(const char *line, char *name, char *val, enum env_state *how, bool *eq) {
  enum env_state state = NAMEI;
  char quote = 0, *out = name;
  const char *c = line;
  while (state != ERROR && *c) {
    switch (state) {
    case NAMEI:
    case VALUEI:
      if (*c == '\'' || *c == '"') quote = *c++;
      state++;
      /* fall through */
    case NAME:
    case VALUE:
      if (quote) {
        if (*c == quote) {
          state++, c++;
          break;
        }
        if (state == NAME && *c == '=') {
          state = ERROR;
          break;
        }
      } else if (state == NAME) {
        if (isspace((unsigned char)*c)) {
          c++, state++;
          break;
        }
        if (*c == '=') {
          state++;
          break;
        }
      }
      if (*c) *out++ = *c++;
      break;
    case EQ1:
      if (*c == '=') {
        state++, quote = 0, *eq = true;
        *out = '\0';
        out = val;
      } else if (!isspace((unsigned char)*c)) {
        state = ERROR;
      }
      c++;
      break;
    case EQ2:
    case FINI:
      if (isspace((unsigned char)*c))
        c++;
      else
        state++;
      break;
    case ERROR: break;
    }
  }
  *out = '\0';
  *how = state == VALUE && quote ? ERROR : state;
  if (state != FINI && !(state == VALUE && !quote)) return false;
  if (state == VALUE) /* an unquoted value loses its trailing blanks */
    while (out > val && isspace((unsigned char)out[-1]))
      *--out = '\0';
  return true;
}

static bool shell_name(const char *n) {
  if (!*n || isdigit((unsigned char)*n)) return false;
  for (; *n; n++)
    if (!isalnum((unsigned char)*n) && *n != '_') return false;
  return true;
}

/* Sets NAME=VALUE in the environment of the lines after this one. */
static void env_set(struct state *st, const char *name, const char *val) {
  size_t n = strlen(name);
  char *entry = malloc(n + strlen(val) + 2);
  if (!entry) {
    st->nomem = true;
    return;
  }
  sprintf(entry, "%s=%s", name, val);
  for (size_t i = 0; i < st->nenv; i++)
    if (strncmp(st->env[i], name, n) == 0 && st->env[i][n] == '=') {
      free(st->env[i]);
      st->env[i] = entry;
      return;
    }
  char **env = realloc(st->env, (st->nenv + 1) * sizeof *env);
  if (!env) {
    free(entry);
    st->nomem = true;
    return;
  }
  st->env = env;
  st->env[st->nenv++] = entry;
}

/* An environment line: checks what chime gives a meaning to. */
static void env_line(struct state *st, const char *name, const char *val) {
  char why[300];
  struct job_conf scratch;
  if (!*name) {
    line_error(st, "%s", "an environment line needs a name before '='");
    return;
  }
  if (!shell_name(name)) {
    line_error(st, "%s: not a variable name (letters, digits and _, not starting with a digit)", name);
    return;
  }
  if (strlen(name) + strlen(val) + 1 > CRONTAB_MAX_ENV) {
    line_error(st, "%s: longer than cron takes (999 bytes)", name);
    return;
  }
  job_init(&scratch);
  int rc = 0;
  if (strcmp(name, "SHELL") == 0 && val[0] != '/')
    rc = -EINVAL,
    snprintf(why, sizeof why, "SHELL=%s: give the shell's absolute path (cron runs it without a PATH search)", val);
  else if ((strcmp(name, "CRON_TZ") == 0 || strcmp(name, "TZ") == 0) && *val &&
           (rc = job_set(&scratch, "tz", val[0] == ':' ? val + 1 : val, why, sizeof why)) == -EINVAL)
    snprintf(why + strlen(why), sizeof why - strlen(why), " (%s)", name);
  else if (strcmp(name, "MAILTO") == 0 && (rc = job_set(&scratch, "mailto", val, why, sizeof why)) == -EINVAL)
    ;
  else if (strcmp(name, "RANDOM_DELAY") == 0) {
    char *end;
    long m = strtol(val, &end, 10);
    if (!isdigit((unsigned char)*val) || *end || m > 24 * 60)
      rc = -EINVAL, snprintf(why, sizeof why, "RANDOM_DELAY=%s: give whole minutes, 0 to 1440 (as cronie)", val);
  }
  job_free(&scratch);
  if (rc == -ENOMEM)
    st->nomem = true;
  else if (rc)
    line_error(st, "%s", why);
  else
    env_set(st, name, val);
}

/* ---- job lines ------------------------------------------------------------------ */

/* Cron's macros: lower case only, as Debian's cron takes them. */
static const char *const macros[] = {"@yearly", "@annually", "@monthly", "@weekly",
                                     "@daily",  "@midnight", "@hourly",  "@reboot"};

static const char *skip_blanks(const char *p) {
  while (*p == ' ' || *p == '\t')
    p++;
  return p;
}

static const char *word_end(const char *p) {
  while (*p && *p != ' ' && *p != '\t')
    p++;
  return p;
}

/* The schedule at the start of line s: 7, 6 or 5 fields in the crontab
 * syntax (the first count that parses, as supercronic), or a macro.  Its
 * text in chime's syntax (a year last with six fields is written with a
 * seconds field before it, so that it means the same to chime_cron) goes
 * to sched; returns where the rest of the line starts, or NULL after
 * reporting. */
static const char *schedule(struct state *st, const char *s, char *sched, size_t size) {
  const char *starts[8], *ends[8];
  int n = 0;
  for (const char *p = s; *p && n < 8;) {
    starts[n] = p;
    ends[n] = p = word_end(p);
    p = skip_blanks(p);
    n++;
  }
  if (*s == '@') {
    size_t len = (size_t)(ends[0] - s);
    for (size_t i = 0; i < sizeof macros / sizeof macros[0]; i++)
      if (strlen(macros[i]) == len && strncmp(s, macros[i], len) == 0) {
        snprintf(sched, size, "%s", macros[i]);
        return skip_blanks(ends[0]);
      }
    char word[64];
    snprintf(word, sizeof word, "%.*s", len < 40 ? (int)len : 40, s);
    if (strcmp(word, "@every") == 0)
      line_error(st, "%s is chime's, not cron's: write the job in chime's INI format (schedule = @every 5m)", word);
    else
      line_error(st,
                 "unknown macro %s (cron's: @reboot @yearly @annually @monthly @weekly @daily @midnight @hourly, "
                 "in lower case)",
                 word);
    return NULL;
  }
  chime_cron_error ce;
  for (int count = 7; count >= 5; count--) {
    if (n <= count) continue; /* the command needs a word too */
    size_t len = (size_t)(ends[count - 1] - s);
    if (len + 3 > size) continue;
    memcpy(sched, s, len);
    sched[len] = '\0';
    chime_cron_expr *c = NULL;
    int rc = chime_cron_parse_syntax(sched, CHIME_CRON_CRONTAB, &c, &ce);
    chime_cron_free(c);
    if (rc == -ENOMEM) return st->nomem = true, NULL;
    if (rc) continue;
    if (count == 6) {
      memmove(sched + 2, sched, len + 1), memcpy(sched, "0 ", 2);
      if (st->warnings)
        errors_add(st->warnings,
                   "%s:%d: six fields: the sixth, %.*s, is a year (as supercronic reads it); Debian's "
                   "cron refuses such a line or runs '%.*s...' as the command",
                   st->file, st->line, (int)(ends[5] - starts[5]), starts[5], (int)(ends[5] - starts[5]), starts[5]);
    }
    return skip_blanks(ends[count - 1]);
  }
  /* Five fields did not parse, or there was nothing after them: say why. */
  if (n <= 5) {
    if (n < 5) {
      line_error(st, "%s", "not a job (five time fields, then the command) nor an environment line (NAME=VALUE)");
    } else {
      line_error(st, "%s", "no command after the five time fields");
    }
    return NULL;
  }
  size_t len = (size_t)(ends[4] - s);
  snprintf(sched, size, "%.*s", (int)len, s);
  chime_cron_expr *c = NULL;
  chime_cron_parse_syntax(sched, CHIME_CRON_CRONTAB, &c, &ce);
  chime_cron_free(c);
  char msg[300];
  snprintf(msg, sizeof msg, "column %d: %s", ce.column, ce.message);
  line_error(st, "%s", msg);
  return NULL;
}

/* Splits a crontab command at its first unescaped '%': the command, with
 * each \% made %, into cmd; the rest, each unescaped % a newline and each
 * \% a %, and a newline at its end if it has none, into *input (NULL with
 * no '%').  Other backslashes stay, as cron leaves them for the shell. */
static int split_percent(const char *s, char *cmd, char **input) {
  const char *p = s;
  char *o = cmd;
  *input = NULL;
  for (; *p && *p != '%'; p++) {
    if (*p == '\\' && p[1] == '%') p++;
    *o++ = *p;
  }
  *o = '\0';
  if (!*p) return 0;
  char *in = malloc(strlen(p) + 2);
  if (!in) return -ENOMEM;
  o = in;
  for (p++; *p; p++) {
    if (*p == '\\' && p[1] == '%')
      *o++ = *++p;
    else
      *o++ = *p == '%' ? '\n' : *p;
  }
  if (o > in && o[-1] != '\n') *o++ = '\n';
  *o = '\0';
  *input = in;
  return 0;
}

/* The job's name from its command: the program's base name, and the base
 * name of the last absolute path among its arguments ("run-parts" with
 * "/etc/cron.daily" is run-parts-cron.daily), skipping the words of the
 * shell that run nothing themselves (cd, test, [, if, ...), assignments and
 * redirections; letters outside a name's become '-'. */
static void derive_name(const char *command, char *name, size_t size) {
  static const char *const quiet[] = {"cd",    "test", "[",   "]",  "[[",   "]]",      "if",   "then",
                                      "else",  "fi",   "!",   "{",  "}",    "command", "exec", "nice",
                                      "nohup", "time", "env", "do", "done", "while"};
  char prog[JOB_NAME_MAX + 1] = "", arg[JOB_NAME_MAX + 1] = "";
  const char *p = command;
  bool skip_to_next = false, redirect = false, in_prog = false;
  while (*(p = skip_blanks(p))) {
    const char *e = p;
    while (*e && *e != ' ' && *e != '\t' && *e != ';' && *e != '|' && *e != '&')
      e++;
    size_t n = (size_t)(e - p);
    if (n == 0) { /* ; | && || : a new command */
      skip_to_next = false, redirect = false, in_prog = prog[0] != '\0' ? false : in_prog;
      if (prog[0]) break;
      p++;
      continue;
    }
    bool quiet_word = false;
    for (size_t i = 0; i < sizeof quiet / sizeof quiet[0]; i++)
      quiet_word |= strlen(quiet[i]) == n && strncmp(p, quiet[i], n) == 0;
    bool is_redirect = memchr(p, '>', n) || memchr(p, '<', n);
    if (redirect || is_redirect) {
      redirect = is_redirect && (p[n - 1] == '>' || p[n - 1] == '<'); /* "> file": the file is next */
    } else if (!prog[0] && !skip_to_next) {
      if (quiet_word)
        skip_to_next =
            strncmp(p, "cd", n) == 0 || strncmp(p, "test", n) == 0 || *p == '[' || strncmp(p, "command", n) == 0;
      else if (!memchr(p, '=', n) && *p != '-' && *p != '(' && *p != '$' && *p != '"' && *p != '\'') {
        const char *base = p;
        for (const char *q = p; q < e; q++)
          if (*q == '/') base = q + 1;
        snprintf(prog, sizeof prog, "%.*s", (int)(e - base), base);
        in_prog = true;
      }
    } else if (in_prog && *p == '/' && n > 1) {
      const char *base = p;
      for (const char *q = p; q < e; q++)
        if (*q == '/' && q + 1 < e) base = q + 1;
      snprintf(arg, sizeof arg, "%.*s", (int)(e - base), base);
      if (arg[0] && arg[strlen(arg) - 1] == '/') arg[strlen(arg) - 1] = '\0';
    }
    p = e;
  }
  if (!prog[0]) snprintf(prog, sizeof prog, "job");
  snprintf(name, size, "%s%s%s", prog, arg[0] && strcmp(arg, prog) ? "-" : "", strcmp(arg, prog) ? arg : "");
  for (char *c = name; *c; c++)
    if (!isalnum((unsigned char)*c) && !strchr("_.-@", *c)) *c = '-';
}

static ENTRY *name_find(struct state *st, char *name) {
  ENTRY q = {.key = name}, *e = NULL;
  return hsearch_r(q, FIND, &e, &st->names) ? e : NULL;
}

/* A name not yet taken: name, or name-2, name-3, ... (a thousand lines of
 * one program are named in linear time: the taken name keeps the suffix
 * to try next). */
static void unique_name(struct state *st, char *name, size_t size) {
  ENTRY *taken = name_find(st, name);
  if (!taken) return;
  char base[JOB_NAME_MAX + 1];
  snprintf(base, sizeof base, "%.*s", JOB_NAME_MAX - 6, name);
  intptr_t k = taken->data ? (intptr_t)taken->data : 2;
  for (; k < 1000000; k++)
    if ((size_t)snprintf(name, size, "%s-%d", base, (int)k) >= size || !name_find(st, name)) break;
  taken->data = (void *)(k + 1);
}

/* The job's name, taken from now on. */
static void name_take(struct state *st, char *name) {
  ENTRY q = {.key = name}, *e;
  if (!hsearch_r(q, ENTER, &e, &st->names)) st->nomem = true; /* (room for every line was made) */
}

static void finish_error(void *ctx, const char *key, const char *why) {
  struct state *st = ctx;
  errors_add(st->errs, "%s:%d: %s: %s", st->file, st->line, key, why);
}

/* The `# chime:` options waiting, on the job: 0, or -EINVAL reported. */
static int apply_options(struct state *st, struct job_conf *job, char *name, size_t name_size) {
  if (!st->pending) return 0;
  char **words, why[300];
  int n, rc = argv_split(st->pending, &words, &n, why, sizeof why);
  if (rc == -ENOMEM) return st->nomem = true, -ENOMEM;
  if (rc) {
    errors_add(st->errs, "%s:%d: # chime: %s", st->file, st->pending_line, why);
    return -EINVAL;
  }
  for (int i = 0; i < n; i++) {
    char *eq = strchr(words[i], '=');
    if (!eq) {
      errors_add(st->errs, "%s:%d: # chime: %s: give KEY=VALUE", st->file, st->pending_line, words[i]);
      rc = -EINVAL;
      continue;
    }
    *eq = '\0';
    const char *key = words[i], *v = eq + 1;
    if (strcmp(key, "name") == 0) {
      if (job_name_ok(v))
        snprintf(name, name_size, "%s", v);
      else
        errors_add(st->errs, "%s:%d: # chime: name: \"%s\" is not 1 to %d letters, digits and _ . - @", st->file,
                   st->pending_line, v, JOB_NAME_MAX),
            rc = -EINVAL;
      continue;
    }
    if (strcmp(key, "schedule") == 0 || strcmp(key, "every") == 0 || strcmp(key, "command") == 0) {
      errors_add(st->errs, "%s:%d: # chime: %s: the job line gives it", st->file, st->pending_line, key);
      rc = -EINVAL;
      continue;
    }
    int r = job_set(job, key, v, why, sizeof why);
    if (r == -ENOMEM) {
      free(words);
      return st->nomem = true, -ENOMEM;
    }
    if (r) errors_add(st->errs, "%s:%d: # chime: %s: %s", st->file, st->pending_line, key, why), rc = -EINVAL;
  }
  free(words);
  free(st->pending);
  st->pending = NULL;
  return rc;
}

/* The owner of the crontab's jobs: the user column's, or chime's. */
static const struct passwd *owner(struct state *st, const char *user, int euid) {
  const struct passwd *pw = user ? getpwnam(user) : getpwuid((uid_t)euid);
  if (!pw && user)
    line_error(st, "user %s: no such user", user);
  else if (!pw)
    line_error(st, "%s", "chime's own user has no passwd entry (HOME, LOGNAME and MAILTO come from it)");
  else if (user && euid != 0 && pw->pw_uid != (uid_t)euid)
    line_error(st, "user %s: a job as another user needs chime to run as root", user), pw = NULL;
  return pw;
}

static void job_line(struct state *st, const char *line) {
  char sched[1024], why[300];
  const char *rest = schedule(st, line, sched, sizeof sched);
  if (!rest) return;
  char user[64] = "";
  if (st->o->system) {
    const char *e = word_end(rest);
    if (e == rest || (size_t)(e - rest) >= sizeof user) {
      line_error(st, "%s", "no user after the schedule (the system format)");
      return;
    }
    snprintf(user, sizeof user, "%.*s", (int)(e - rest), rest);
    rest = skip_blanks(e);
  }
  int euid = st->o->euid >= 0 ? st->o->euid : (int)geteuid();
  const struct passwd *pw = owner(st, user[0] ? user : NULL, euid);
  if (!pw) return;
  char *cmd = malloc(strlen(rest) + 1), *input = NULL;
  if (!cmd || split_percent(rest, cmd, &input)) {
    free(cmd);
    st->nomem = true;
    return;
  }
  const char *end = cmd + strlen(cmd);
  while (end > cmd && (end[-1] == ' ' || end[-1] == '\t'))
    end--;
  cmd[end - cmd] = '\0';
  if (!*skip_blanks(cmd)) {
    line_error(st, "%s",
               *rest == '%' ? "no command: it ends at the first '%' (write \\% for a literal one)"
                            : "no command after the schedule");
    free(cmd), free(input);
    return;
  }
  if (strlen(cmd) > CRONTAB_MAX_COMMAND) {
    line_error(st, "%s", "the command is longer than cron takes (999 bytes)");
    free(cmd), free(input);
    return;
  }
  struct job_conf *job = calloc(1, sizeof *job);
  struct job_conf **jobs = realloc(st->cfg->jobs, (st->cfg->njobs + 1) * sizeof *jobs);
  if (!job || !jobs) {
    free(job), free(cmd), free(input);
    if (jobs) st->cfg->jobs = jobs;
    st->nomem = true;
    return;
  }
  st->cfg->jobs = jobs;
  job_init(job);
  job->line = st->line;
  job->clean_env = true;
  job->shell = true;
  job->input = input;
  job->command = cmd;
  int rc = job_set(job, "schedule", sched, why, sizeof why);
  if (rc == 0 && user[0]) rc = job_set(job, "user", user, why, sizeof why);
  const char *v;
  if (rc == 0 && (v = env_get(st, "SHELL"))) rc = job_set(job, "shell", v, why, sizeof why);
  if (!(v = env_get(st, "CRON_TZ")) || !*v) v = env_get(st, "TZ"); /* CRON_TZ, else TZ */
  if (rc == 0 && !job->reboot && v && *v) rc = job_set(job, "tz", v[0] == ':' ? v + 1 : v, why, sizeof why);
  v = env_get(st, "MAILTO");
  if (rc == 0) rc = job_set(job, "mailto", v ? v : pw->pw_name, why, sizeof why);
  if (rc == 0 && (v = env_get(st, "RANDOM_DELAY")) && strcmp(v, "0") != 0) {
    snprintf(why, sizeof why, "%sm", v);
    rc = job_set(job, "jitter", why, why, sizeof why);
  }
  for (size_t i = 0; rc == 0 && i < st->nenv; i++)
    rc = job_add_env(job, st->env[i], why, sizeof why);
  char name[JOB_NAME_MAX + 1];
  derive_name(cmd, name, sizeof name);
  if (rc == -EINVAL) line_error(st, "%s", why);
  if (rc == 0) rc = apply_options(st, job, name, sizeof name);
  unique_name(st, name, sizeof name);
  if (rc == 0 && !(job->name = strdup(name))) rc = -ENOMEM;
  if (rc == 0) name_take(st, job->name);
  if (rc == 0) rc = job_finish(job, finish_error, st);
  if (rc == -ENOMEM) st->nomem = true;
  if (!job->name) job->name = strdup("?");
  st->cfg->jobs[st->cfg->njobs++] = job;
}

/* ---- files ----------------------------------------------------------------------- */

bool crontab_system_path(const char *path) {
  if (strcmp(path, "/etc/crontab") == 0) return true;
  return strncmp(path, "/etc/cron.d/", 12) == 0 && path[12] && !strchr(path + 12, '/');
}

bool crontab_looks_like(const char *text, size_t len) {
  const char *p = text, *end = text + len;
  while (p < end) {
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
      p++;
    if (p < end && (*p == '#' || *p == ';')) {
      const char *nl = memchr(p, '\n', (size_t)(end - p));
      p = nl ? nl + 1 : end;
      continue;
    }
    return p == end || *p != '[';
  }
  return true;
}

int crontab_parse(const char *name, const char *text, size_t len, const struct crontab_opts *o, struct config **out,
                  struct errors *errs, struct errors *warnings) {
  struct state st = {.file = name, .o = o, .errs = errs, .warnings = warnings};
  int before = errs->count;
  st.cfg = calloc(1, sizeof *st.cfg);
  char *line = malloc(CONFIG_MAX_LINE + 1), *name_buf = malloc(CONFIG_MAX_LINE + 1), *val = malloc(CONFIG_MAX_LINE + 1);
  if (!st.cfg || !line || !name_buf || !val || !(st.cfg->path = strdup(name))) st.nomem = true;
  if (st.cfg) daemon_init(&st.cfg->daemon);
  if (st.cfg) st.cfg->crontab = o->system ? CRONTAB_SYSTEM : CRONTAB_USER;
  size_t lines = 1;
  for (const char *c = text; (c = memchr(c, '\n', (size_t)(text + len - c))); c++) lines++;
  if (!hcreate_r(2 * lines + 16, &st.names)) st.nomem = true; /* a job a line at most */
  for (const char *p = text, *end = text + len; !st.nomem && p < end;) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
    st.line++;
    const char *raw = p;
    p += n + (nl ? 1 : 0);
    if (memchr(raw, '\0', n)) {
      errors_add(errs, "%s:%d: a NUL byte: not a crontab (a binary file?)", name, st.line);
      if (errs->count - before > 20) break;
      continue;
    }
    if (n > CONFIG_MAX_LINE - 3) {
      errors_add(errs, "%s:%d: the line is longer than %d bytes", name, st.line, CONFIG_MAX_LINE - 3);
      continue;
    }
    memcpy(line, raw, n);
    line[n] = '\0';
    if (memchr(line, '\r', n)) {
      errors_add(errs, "%s:%d: a carriage return (DOS line ends?): cron would make it part of the line", name, st.line);
      continue;
    }
    const char *s = skip_blanks(line);
    if (!*s) continue;
    if (*s == '#') {
      const char *c = skip_blanks(s + 1);
      if (strncmp(c, "chime:", 6) == 0) {
        c += 6;
        size_t old = st.pending ? strlen(st.pending) : 0;
        char *joined = realloc(st.pending, old + strlen(c) + 2);
        if (!joined) {
          st.nomem = true;
          break;
        }
        if (!old) joined[0] = '\0', st.pending_line = st.line;
        st.pending = strcat(strcat(joined, " "), c);
      }
      continue;
    }
    enum env_state how;
    bool eq = false;
    if (env_parse(s, name_buf, val, &how, &eq)) {
      env_line(&st, name_buf, val);
      continue;
    }
    /* Not an environment line to cron: a job line.  One that looks meant
     * as an environment line is named as such. */
    size_t w = strcspn(s, " \t");
    bool meant = eq || (memchr(s, '=', w) && *s != '@' && !isdigit((unsigned char)*s) && *s != '*');
    if (meant && how == EQ2)
      errors_add(errs, "%s:%d: %.*s: no value after '=' (write %.*s\"\" for an empty one)", name, st.line, (int)w, s,
                 (int)(strchr(s, '=') - s + 1), s);
    else if (meant && how == ERROR && (strchr(s, '"') || strchr(s, '\'')))
      errors_add(errs, "%s:%d: an environment line with unbalanced quotes, or text after the closing one", name,
                 st.line);
    else if (meant)
      errors_add(errs, "%s:%d: not an environment line: NAME=VALUE, a value with blanks in quotes as a whole", name,
                 st.line);
    else
      job_line(&st, s);
  }
  if (st.pending && !st.nomem)
    errors_add(errs, "%s:%d: # chime: no job line after it to apply to", name, st.pending_line);
  if (!st.nomem && st.cfg->njobs == 0 && errs->count == before)
    errors_add(errs, "%s: no job line: nothing to run", name);
  if (st.nomem) errors_add(errs, "%s: out of memory", name);
  for (size_t i = 0; i < st.nenv; i++)
    free(st.env[i]);
  free(st.env);
  free(st.pending);
  hdestroy_r(&st.names);
  free(line), free(name_buf), free(val);
  if (st.nomem || errs->count > before) {
    config_free(st.cfg);
    return st.nomem ? -ENOMEM : -EINVAL;
  }
  *out = st.cfg;
  return 0;
}

int crontab_load(const char *path, const struct crontab_opts *o, struct config **out, struct errors *errs,
                 struct errors *warnings, char **keep) {
  char *text;
  size_t len;
  int rc = config_read(path, &text, &len, errs);
  if (rc) return rc;
  rc = crontab_parse(path, text, len, o, out, errs, warnings);
  if (rc == 0 && keep)
    *keep = text;
  else
    free(text);
  return rc;
}

/* ---- chime convert ----------------------------------------------------------------- */

/* A word for the INI format's env (split as a command is): quoted with
 * '...' when it holds anything but plain characters. */
static void put_word(FILE *out, const char *w) {
  if (!w[strcspn(w, " \t\n'\"\\$`|&;<>()#*?[]{}~")] && *w != '#') {
    fputs(w, out);
    return;
  }
  fputc('\'', out);
  for (; *w; w++)
    if (*w == '\'')
      fputs("'\\''", out);
    else
      fputc(*w, out);
  fputc('\'', out);
}

static void put_job(FILE *out, const struct job_conf *j) {
  fprintf(out, "[job %s]\n", j->name);
  fprintf(out, "schedule = %s\n", j->schedule);
  if (j->tz_name) fprintf(out, "tz = %s\n", j->tz_name);
  fprintf(out, "command = %s\n", j->command);
  fprintf(out, "shell = %s\n", j->shell_path ? j->shell_path : "true");
  fprintf(out, "clean_env = true\n");
  if (j->env && j->env[0]) {
    fputs("env =", out);
    for (char **e = j->env; *e; e++)
      fputc(' ', out), put_word(out, *e);
    fputc('\n', out);
  }
  if (j->input) {
    fputs("input = ", out);
    for (const char *c = j->input; *c; c++)
      if (*c == '\n')
        fputs("\\n", out);
      else if (*c == '\\')
        fputs("\\\\", out);
      else
        fputc(*c, out);
    fputc('\n', out);
  }
  fprintf(out, "mailto = %s\n", j->mailto ? j->mailto : "");
  if (j->user) fprintf(out, "user = %s\n", j->user);
  char d[64];
  static const char *const overlap[] = {"skip", "queue", "allow", "replace"};
  if (j->jitter) chime_format_duration(j->jitter, d, sizeof d), fprintf(out, "jitter = %s\n", d);
  if (j->timeout) chime_format_duration(j->timeout, d, sizeof d), fprintf(out, "timeout = %s\n", d);
  if (j->overlap) fprintf(out, "overlap = %s\n", overlap[j->overlap]);
  if (j->overlap == CHIME_OVERLAP_ALLOW) fprintf(out, "max_concurrent = %u\n", j->max_concurrent);
}

int crontab_convert(const char *text, size_t len, const struct config *cfg, FILE *out) {
  size_t next = 0;
  int line = 0;
  fputs("# chime's INI format, from a crontab (chime convert): each job line is a [job NAME] section with\n"
        "# cron's environment (clean_env), shell and mail; environment lines are kept as comments.\n",
        out);
  for (const char *p = text, *end = text + len; p < end;) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
    line++;
    const char *s = p;
    while (s < p + n && (*s == ' ' || *s == '\t'))
      s++;
    if (next < cfg->njobs && cfg->jobs[next]->line == line) {
      fprintf(out, "\n# line %d: %.*s\n", line, (int)(p + n - s), s);
      put_job(out, cfg->jobs[next++]);
    } else if (s == p + n) {
      fputc('\n', out);
    } else if (*s == '#') {
      fprintf(out, "%.*s\n", (int)(p + n - s), s);
    } else {
      fprintf(out, "# (environment, line %d) %.*s\n", line, (int)(p + n - s), s);
    }
    p += n + (nl ? 1 : 0);
  }
  return fflush(out) == 0 && !ferror(out) ? 0 : -EIO;
}
