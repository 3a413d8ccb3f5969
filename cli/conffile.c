/* conffile.c - reading a config file with inih.
 *
 * inih reads the text through our reader, one line at a time; the reader
 * counts lines (inih's handler does not get them), refuses lines that are
 * too long or hold a NUL byte (inih would cut them silently), notes each
 * [section] header where it stands, so that a section without keys is seen
 * too, and names every line that is neither a header, a key = value nor a
 * comment (inih tells only of the first).  Comments are whole lines: inih's
 * inline comments are off, so `;` and `#` inside a value are the value's
 * (a command such as printf 'a ;b' is kept whole).  The handler stores
 * each key with its line in its section.  Then each job is built: built-in
 * defaults, then [defaults], then its own keys, all through job_set, the
 * setter the command line uses, and checked by job_finish.  Every error is
 * collected with its file, line, section and key; any error refuses the
 * whole file.
 */
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"

enum kind { SEC_BAD, SEC_DEFAULTS, SEC_DAEMON, SEC_JOB };

struct entry {
  char *key, *value;
  int line;
};

struct section {
  enum kind kind;
  char *name; /* the job's name */
  int line;   /* of its header */
  struct entry *e;
  size_t n, cap;
};

struct parse {
  const char *file;
  const char *p, *end; /* the text not read yet */
  int line;            /* of the line inih has just been given */
  struct section *s;
  size_t ns, cap;
  struct section *cur; /* the section keys go to; NULL before the first header */
  struct errors *errs;
  int first_bad;       /* the first line the reader found malformed; 0: none */
  bool nomem;
};

/* "[defaults]", "[chime]" or "[job NAME]", for errors. */
static const char *kind_title(const struct section *s, char *buf, size_t size) {
  if (s->kind == SEC_JOB) snprintf(buf, size, "[job %s]", s->name ? s->name : "?");
  else snprintf(buf, size, "%s", s->kind == SEC_DEFAULTS ? "[defaults]" : "[chime]");
  return buf;
}

/* A header line ("[job backup]"): opens a section.  inih reports a header
 * without its ']' as an error itself; keys then stay where they were. */
static void header(struct parse *ps, const char *line) {
  while (*line == ' ' || *line == '\t') line++;
  if (ps->line == 1 && strncmp(line, "\xEF\xBB\xBF", 3) == 0) line += 3;
  if (*line != '[') return;
  const char *close = strchr(line, ']');
  if (!close) return;
  char title[CONFIG_MAX_LINE];
  size_t n = (size_t)(close - line - 1);
  memcpy(title, line + 1, n);
  title[n] = '\0';
  char *t = title, *e = title + n;
  while (*t == ' ' || *t == '\t') t++;
  while (e > t && (e[-1] == ' ' || e[-1] == '\t')) *--e = '\0';
  if (ps->ns == ps->cap) {
    size_t cap = ps->cap ? ps->cap * 2 : 8;
    struct section *s = realloc(ps->s, cap * sizeof *s);
    if (!s) {
      ps->nomem = true;
      ps->cur = NULL;
      return;
    }
    ps->s = s, ps->cap = cap;
  }
  struct section *s = &ps->s[ps->ns++];
  memset(s, 0, sizeof *s);
  s->line = ps->line;
  ps->cur = s;
  if (strcmp(t, "defaults") == 0) s->kind = SEC_DEFAULTS;
  else if (strcmp(t, "chime") == 0) s->kind = SEC_DAEMON;
  else if (strncmp(t, "job", 3) == 0 && (t[3] == ' ' || t[3] == '\t')) {
    char *name = t + 4;
    while (*name == ' ' || *name == '\t') name++;
    if (!job_name_ok(name)) {
      errors_add(ps->errs, "%s:%d: [%s]: a job name is 1 to %d letters, digits and _ . - @", ps->file, ps->line, t,
                 JOB_NAME_MAX);
      return;
    }
    s->kind = SEC_JOB;
    s->name = strdup(name);
    if (!s->name) ps->nomem = true;
  } else {
    errors_add(ps->errs, "%s:%d: [%s]: unknown section (expected [job NAME], [defaults] or [chime])", ps->file,
               ps->line, t);
    return;
  }
  for (size_t i = 0; i + 1 < ps->ns; i++) {
    const struct section *o = &ps->s[i];
    if (o->kind == s->kind && (s->kind != SEC_JOB || (o->name && s->name && strcmp(o->name, s->name) == 0)))
      errors_add(ps->errs, "%s:%d: [%s]: given twice (first at line %d)", ps->file, ps->line, t, o->line);
  }
}

/* Names a line inih will refuse, as inih tells them apart: a header needs
 * its ']', any other line that is not blank or a comment needs '=' or ':'. */
static void check_line(struct parse *ps, const char *line) {
  if (ps->line == 1 && strncmp(line, "\xEF\xBB\xBF", 3) == 0) line += 3;
  line += strspn(line, " \t\r\n");
  const char *why = NULL;
  if (!*line || *line == ';' || *line == '#') return;
  if (*line == '[' && !strchr(line, ']')) why = "a [section] header without its ']'";
  else if (*line != '[' && !line[strcspn(line, "=:")]) why = "not a [section], a key = value line or a comment";
  if (!why) return;
  errors_add(ps->errs, "%s:%d: %s", ps->file, ps->line, why);
  if (!ps->first_bad) ps->first_bad = ps->line;
}

/* inih's reader: the next line of the text, as fgets would give it. */
static char *reader(char *str, int num, void *stream) {
  struct parse *ps = stream;
  if (ps->p >= ps->end) return NULL;
  const char *nl = memchr(ps->p, '\n', (size_t)(ps->end - ps->p));
  size_t len = nl ? (size_t)(nl - ps->p) : (size_t)(ps->end - ps->p);
  ps->line++;
  size_t n = len;
  if (memchr(ps->p, '\0', len)) errors_add(ps->errs, "%s:%d: the line holds a NUL byte", ps->file, ps->line);
  if (n > (size_t)num - 3) {
    errors_add(ps->errs, "%s:%d: the line is longer than %d bytes", ps->file, ps->line, num - 3);
    n = (size_t)num - 3;
  }
  memcpy(str, ps->p, n);
  str[n] = '\n';
  str[n + 1] = '\0';
  ps->p += len + (nl ? 1 : 0);
  header(ps, str);
  check_line(ps, str);
  return str;
}

static int handler(void *user, const char *section, const char *key, const char *value) {
  struct parse *ps = user;
  struct section *s = ps->cur;
  (void)section; /* the reader knows it, with its line */
  if (!s) {
    errors_add(ps->errs, "%s:%d: %s: a key outside any section", ps->file, ps->line, key);
    return 1;
  }
  if (s->kind == SEC_BAD) return 1; /* its header was refused already */
  if (!*key) {
    errors_add(ps->errs, "%s:%d: a value without a key", ps->file, ps->line);
    return 1;
  }
  for (size_t i = 0; i < s->n; i++) {
    if (strcmp(s->e[i].key, key) != 0 || strcmp(key, "env") == 0) continue;
    char title[JOB_NAME_MAX + 8];
    errors_add(ps->errs, "%s:%d: %s %s: given twice in the section (first at line %d)", ps->file, ps->line,
               kind_title(s, title, sizeof title), key, s->e[i].line);
    return 1;
  }
  if (s->n == s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 8;
    struct entry *e = realloc(s->e, cap * sizeof *e);
    if (!e) return ps->nomem = true, 1;
    s->e = e, s->cap = cap;
  }
  struct entry *e = &s->e[s->n];
  e->key = strdup(key);
  e->value = strdup(value ? value : "");
  e->line = ps->line;
  if (!e->key || !e->value) {
    free(e->key), free(e->value);
    return ps->nomem = true, 1;
  }
  s->n++;
  return 1;
}

/* The line of key in the job's section or in [defaults]; else the header's. */
static int line_of(const struct section *job, const struct section *defaults, const char *key) {
  for (const struct section *s = job; s; s = s == job ? defaults : NULL)
    for (size_t i = s->n; i-- > 0;)
      if (strcmp(s->e[i].key, key) == 0) return s->e[i].line;
  return job->line;
}

/* The keys of a job that were refused: job_finish's complaints about them
 * would only repeat the error (a bad `every` is also "no schedule"). */
struct refused {
  const char *keys[64];
  size_t n;
};

static bool was_refused(const struct refused *f, const char *key) {
  bool schedule = strcmp(key, "schedule") == 0 || strcmp(key, "every") == 0;
  for (size_t i = 0; i < f->n; i++)
    if (strcmp(f->keys[i], key) == 0 ||
        (schedule && (strcmp(f->keys[i], "schedule") == 0 || strcmp(f->keys[i], "every") == 0)))
      return true;
  return false;
}

/* Applies a section's keys to a job, noting those refused in f; reports
 * errors when `report`. */
static int apply(struct parse *ps, struct job_conf *job, const struct section *s, bool report, struct refused *f) {
  bool every = false, schedule = false;
  char title[JOB_NAME_MAX + 8];
  kind_title(s, title, sizeof title);
  for (size_t i = 0; i < s->n; i++) {
    char why[256];
    const struct entry *e = &s->e[i];
    int rc = job_set(job, e->key, e->value, why, sizeof why);
    if (rc == -ENOMEM) return rc;
    if (rc && f->n < sizeof f->keys / sizeof f->keys[0]) f->keys[f->n++] = e->key;
    if (rc && report) errors_add(ps->errs, "%s:%d: %s %s: %s", ps->file, e->line, title, e->key, why);
    every |= strcmp(e->key, "every") == 0, schedule |= strcmp(e->key, "schedule") == 0;
    if (every && schedule && report && (strcmp(e->key, "every") == 0 || strcmp(e->key, "schedule") == 0)) {
      errors_add(ps->errs, "%s:%d: %s %s: schedule and every both given: give one", ps->file, e->line, title, e->key);
      every = schedule = false;
    }
  }
  return 0;
}

static bool in_section(const void *section, const char *key) {
  const struct section *s = section;
  for (size_t i = 0; i < s->n; i++)
    if (strcmp(s->e[i].key, key) == 0) return true;
  return false;
}

/* job_finish's reports, for one job of the file. */
struct finishing {
  struct parse *ps;
  const struct section *job, *defaults;
  const struct refused *refused;
};

static void finish_error(void *arg, const char *key, const char *why) {
  const struct finishing *x = arg;
  if (was_refused(x->refused, key)) return;
  int line = line_of(x->job, x->defaults, key);
  bool given = line != x->job->line; /* the key is in the file: name it */
  errors_add(x->ps->errs, "%s:%d: [job %s]%s%s: %s", x->ps->file, line, x->job->name, given ? " " : "",
             given ? key : "", why);
}

static int build(struct parse *ps, struct config *cfg) {
  const struct section *defaults = NULL;
  struct job_conf scratch;
  int rc = 0;
  for (size_t i = 0; i < ps->ns; i++)
    if (ps->s[i].kind == SEC_DEFAULTS && !defaults) defaults = &ps->s[i];
  if (defaults) { /* checked once here, applied silently to each job below */
    struct refused refused = {.n = 0};
    job_init(&scratch);
    rc = apply(ps, &scratch, defaults, true, &refused);
    job_free(&scratch);
    if (rc) return rc;
  }
  size_t jobs = 0;
  for (size_t i = 0; i < ps->ns; i++) jobs += ps->s[i].kind == SEC_JOB;
  cfg->jobs = calloc(jobs ? jobs : 1, sizeof *cfg->jobs);
  if (!cfg->jobs) return -ENOMEM;
  for (size_t i = 0; i < ps->ns; i++) {
    const struct section *s = &ps->s[i];
    if (s->kind == SEC_DAEMON) {
      for (size_t k = 0; k < s->n; k++) {
        char why[256];
        rc = daemon_set(&cfg->daemon, s->e[k].key, s->e[k].value, why, sizeof why);
        if (rc == -ENOMEM) return rc;
        if (rc) errors_add(ps->errs, "%s:%d: [chime] %s: %s", ps->file, s->e[k].line, s->e[k].key, why);
      }
    }
    if (s->kind != SEC_JOB) continue;
    struct job_conf *job = calloc(1, sizeof *job);
    if (!job) return -ENOMEM;
    cfg->jobs[cfg->njobs++] = job;
    job_init(job);
    job->line = s->line;
    job->name = strdup(s->name);
    if (!job->name) return -ENOMEM;
    struct refused refused = {.n = 0};
    if ((defaults && (rc = apply(ps, job, defaults, false, &refused))) || (rc = apply(ps, job, s, true, &refused)))
      return rc;
    if (defaults) job_drop_unfit(job, in_section, s);
    struct finishing x = {ps, s, defaults, &refused};
    if ((rc = job_finish(job, finish_error, &x)) == -ENOMEM) return rc;
  }
  if (cfg->daemon.fleet) /* what a job shared by a fleet cannot have, known once [chime] is read */
    for (size_t i = 0, k = 0; i < ps->ns; i++) {
      if (ps->s[i].kind != SEC_JOB) continue;
      struct refused none = {.n = 0};
      struct finishing x = {ps, &ps->s[i], defaults, &none};
      job_fleet_check(cfg->jobs[k++], finish_error, &x);
    }
  if (jobs == 0) errors_add(ps->errs, "%s: no [job NAME] section: nothing to run", ps->file);
  return 0;
}

void config_free(struct config *cfg) {
  if (!cfg) return;
  for (size_t i = 0; i < cfg->njobs; i++) {
    job_free(cfg->jobs[i]);
    free(cfg->jobs[i]);
  }
  free(cfg->jobs);
  daemon_free(&cfg->daemon);
  free(cfg->path);
  free(cfg);
}

int config_parse(const char *name, const char *text, size_t len, struct config **out, struct errors *errs) {
  /* inih's settings are the process's: set them to what this file format is. */
  ini_use_stack = true;
  ini_max_line = CONFIG_MAX_LINE;
  ini_allow_multiline = false;
  ini_allow_bom = true;
  ini_allow_inline_comments = false; /* `;` in a value is the value's: comments are whole lines */
  ini_stop_on_first_error = false;
  ini_allow_no_value = false;
  struct parse ps = {.file = name, .p = text, .end = text + len, .errs = errs};
  int before = errs->count;
  struct config *cfg = calloc(1, sizeof *cfg);
  int rc = cfg ? 0 : -ENOMEM;
  if (rc == 0) {
    daemon_init(&cfg->daemon);
    cfg->path = strdup(name);
    int line = ini_parse_stream(reader, &ps, handler, &ps);
    if (line > 0 && line != ps.first_bad) /* one the reader did not see coming */
      errors_add(errs, "%s:%d: not a [section], a key = value line or a comment", name, line);
    rc = !cfg->path || line == -2 || ps.nomem ? -ENOMEM : build(&ps, cfg);
  }
  for (size_t i = 0; i < ps.ns; i++) {
    for (size_t k = 0; k < ps.s[i].n; k++) free(ps.s[i].e[k].key), free(ps.s[i].e[k].value);
    free(ps.s[i].e);
    free(ps.s[i].name);
  }
  free(ps.s);
  if (rc == -ENOMEM) errors_add(errs, "%s: out of memory", name);
  if (rc == 0 && errs->count > before) rc = -EINVAL;
  if (rc) {
    config_free(cfg);
    return rc;
  }
  *out = cfg;
  return 0;
}

int config_read(const char *path, char **out, size_t *out_len, struct errors *errs) {
  /* O_NONBLOCK: a FIFO given as the config is refused below, not waited on
   * (at a SIGHUP, that would hold up the loop). */
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) {
    int e = errno;
    errors_add(errs, "%s: %s", path, strerror(e));
    return -e;
  }
  struct stat st;
  int rc = 0;
  if (fstat(fd, &st) != 0) rc = -errno, errors_add(errs, "%s: %s", path, strerror(-rc));
  else if (!S_ISREG(st.st_mode)) rc = -EINVAL, errors_add(errs, "%s: not a regular file", path);
  else if (st.st_mode & S_IWOTH)
    rc = -EPERM, errors_add(errs, "%s: writable by every user (mode %04o): refused, as cron does; chmod o-w it", path,
                            (unsigned)(st.st_mode & 07777));
  else if (st.st_size > CONFIG_MAX_BYTES)
    rc = -EFBIG, errors_add(errs, "%s: larger than %d bytes", path, CONFIG_MAX_BYTES);
  char *text = NULL;
  size_t len = 0;
  if (rc == 0) {
    text = malloc((size_t)st.st_size + 1);
    if (!text) rc = -ENOMEM, errors_add(errs, "%s: out of memory", path);
  }
  while (rc == 0 && len <= (size_t)st.st_size) { /* one byte more than stat said: a file that grew is seen */
    ssize_t n = read(fd, text + len, (size_t)st.st_size + 1 - len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) rc = -errno, errors_add(errs, "%s: %s", path, strerror(errno));
    if (n <= 0) break;
    len += (size_t)n;
  }
  if (rc == 0 && len > (size_t)st.st_size) rc = -EAGAIN, errors_add(errs, "%s: changed while being read", path);
  close(fd);
  if (rc == 0) {
    text[len] = '\0';
    *out = text, *out_len = len;
  } else {
    free(text);
  }
  return rc;
}

int config_load(const char *path, struct config **out, struct errors *errs) {
  char *text;
  size_t len;
  int rc = config_read(path, &text, &len, errs);
  if (rc) return rc;
  rc = config_parse(path, text, len, out, errs);
  free(text);
  return rc;
}
