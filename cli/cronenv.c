/* cronenv.c - cron's environment, PATH lookup and mail, for a run.
 *
 * Each function does one thing the run code needs for a crontab job and
 * touches nothing else: the environment is built from the job alone (and
 * the passwd entry of whom the run runs as), the lookup reads the file
 * system, and the mail is one child whose standard input is a pipe that
 * this task writes and closes, so that a slow or stuck mailer holds up
 * this task only, never the loop.
 */
#include "cronenv.h"

#include "boost.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* The value of NAME in a NULL-terminated NAME=VALUE list, or NULL. */
static const char *list_get(char *const *env, const char *name) {
  size_t n = strlen(name);
  for (; env && *env; env++)
    if (strncmp(*env, name, n) == 0 && (*env)[n] == '=') return *env + n + 1;
  return NULL;
}

char **cronenv_build(const struct job_conf *c, const struct passwd *pw) {
  size_t n = 0, bytes = 0;
  for (; c->env && c->env[n]; n++)
    bytes += strlen(c->env[n]) + 1;
  const char *home = pw ? pw->pw_dir : "/", *name = pw ? pw->pw_name : "";
  bytes += strlen("SHELL=/bin/sh HOME= PATH=" CRONENV_DEFAULT_PATH " LOGNAME=") + strlen(home) + strlen(name) + 4;
  size_t table = (n + 5) * sizeof(char *);
  char **env = malloc(table + bytes);
  if (!env) return NULL;
  char *p = (char *)env + table;
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (strncmp(c->env[i], "LOGNAME=", 8) != 0) env[k++] = c->env[i];
  const char *fmt[] = {"SHELL=/bin/sh", "HOME=%s", ("PATH=" CRONENV_DEFAULT_PATH), "LOGNAME=%s"};
  const char *names[] = {"SHELL", "HOME", "PATH", "LOGNAME"};
  const char *values[] = {NULL, home, NULL, name};
  for (int i = 0; i < 4; i++) {
    if (i < 3 && list_get(c->env, names[i])) continue; /* the file's own: cron keeps it */
    env[k++] = p;
    p += sprintf(p, fmt[i], values[i]) + 1; /* counted above */
  }
  env[k] = NULL;
  return env;
}

const char *cronenv_path(const struct job_conf *c) {
  const char *path = list_get(c->env, "PATH");
  if (path) return path;
  return c->clean_env ? CRONENV_DEFAULT_PATH : getenv("PATH");
}

/* 0 if `file` is an executable regular file, else -ENOENT or -EACCES. */
static int executable(const char *file) {
  struct stat st;
  if (stat(file, &st) != 0) return errno == EACCES ? -EACCES : -ENOENT;
  if (S_ISDIR(st.st_mode) || access(file, X_OK) != 0) return -EACCES;
  return 0;
}

int cronenv_find_program(const char *prog, const char *path, char *out, size_t size, char *why, size_t why_size) {
  if (strchr(prog, '/')) {
    int rc = executable(prog);
    if (rc)
      snprintf(why, why_size, "%s: %s", prog, rc == -ENOENT ? "no such file" : "not an executable file");
    else if ((size_t)snprintf(out, size, "%s", prog) >= size)
      rc = -ENAMETOOLONG, snprintf(why, why_size, "%s: too long", prog);
    return rc;
  }
  if (!path) path = CRONENV_DEFAULT_PATH;
  int found = -ENOENT;
  for (const char *p = path;; p++) {
    size_t dir = strcspn(p, ":");
    if ((size_t)snprintf(out, size, "%.*s%s%s", (int)dir, p, dir ? "/" : "", prog) >= size) {
      snprintf(why, why_size, "%s: the path in %.*s is too long", prog, (int)dir, p);
      return -ENAMETOOLONG;
    }
    int rc = executable(out);
    if (rc == 0) return 0;
    if (rc == -EACCES) found = -EACCES; /* as execvp: go on, and say so if nothing runs */
    p += dir;
    if (!*p) break;
  }
  snprintf(why, why_size, "%s: %s PATH %s", prog, found == -EACCES ? "not executable in" : "not found in", path);
  return found;
}

int cronenv_mailer(const char **path) {
  const char *m = getenv("CHIME_SENDMAIL");
  *path = m && *m ? m : "/usr/sbin/sendmail";
  return executable(*path);
}

/* Appends to a growing buffer (open_memstream would do, but its FILE
 * cannot fail politely mid-way): 0 or -ENOMEM. */
struct buf {
  char *s;
  size_t len, cap;
};

static int put(struct buf *b, const char *s, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t cap = (b->cap + n) * 2 + 256;
    char *t = realloc(b->s, cap);
    if (!t) return -ENOMEM;
    b->s = t, b->cap = cap;
  }
  memcpy(b->s + b->len, s, n);
  b->len += n;
  b->s[b->len] = '\0';
  return 0;
}

/* A header's value: its text with line ends made blanks (a header cannot
 * be ended early by what a command holds). */
static int put_header(struct buf *b, const char *name, const char *value, const char *tail) {
  int rc = put(b, name, strlen(name));
  for (const char *v = value; rc == 0 && *v; v++)
    rc = put(b, *v == '\n' || *v == '\r' ? " " : v, 1);
  if (rc == 0) rc = put(b, tail, strlen(tail));
  return rc ? rc : put(b, "\n", 1);
}

int cronenv_mail(const struct job_conf *c, const char *user, const char *const *env, const char *output, size_t len,
                 int status, chime_ns timeout, char *why, size_t why_size) {
  const char *mailer;
  if (!c->mailto || len == 0) return 0;
  if (cronenv_mailer(&mailer) != 0) {
    snprintf(why, why_size, "no mailer (%s): the output of job %s was not mailed to %s", mailer, c->name, c->mailto);
    return -ENOENT;
  }
  char host[256] = "", from[320];
  gethostname(host, sizeof host - 1);
  const char *mailfrom = list_get((char *const *)env, "MAILFROM");
  if (mailfrom && *mailfrom)
    snprintf(from, sizeof from, "%s", mailfrom);
  else
    snprintf(from, sizeof from, "%s (Cron Daemon)", user);
  char subject[400];
  snprintf(subject, sizeof subject, "Cron <%s@%s> ", user, host);
  bool failed = !WIFEXITED(status) || WEXITSTATUS(status) != 0;
  struct buf b = {0};
  int rc = put_header(&b, "From: ", from, "");
  if (rc == 0) rc = put_header(&b, "To: ", c->mailto, "");
  if (rc == 0) rc = put(&b, "Subject: ", 9);
  if (rc == 0) rc = put_header(&b, subject, c->command, failed ? " (failed)" : "");
  static const char mime[] = "MIME-Version: 1.0\nContent-Type: text/plain; charset=UTF-8\n"
                             "Content-Transfer-Encoding: 8bit\n";
  if (rc == 0) rc = put(&b, mime, sizeof mime - 1);
  for (const char *const *e = env; rc == 0 && e && *e; e++)
    rc = put_header(&b, "X-Cron-Env: <", *e, ">");
  if (rc == 0) rc = put(&b, "\n", 1);
  if (rc == 0) rc = put(&b, output, len);
  int fds[2] = {-1, -1};
  if (rc == 0 && pipe2(fds, O_CLOEXEC) != 0) rc = -errno;
  chime_proc *proc = NULL;
  const char *argv[] = {mailer, "-FCronDaemon", "-i", "-B8BITMIME", "-oem", c->mailto, NULL};
  if (rc == 0) {
    chime_proc_opts po = {
        .in = {.mode = CHIME_STDIO_FD, .fd = fds[0]}, .out = {.mode = CHIME_STDIO_NULL}, .reset_signals = true};
    boost_child(&po);
    rc = chime_proc_spawn(argv, &po, &proc);
  }
  if (fds[0] >= 0) close(fds[0]);
  chime_ns deadline = chime_now() + timeout;
  if (rc == 0) rc = chime_write_all(fds[1], b.s, b.len, deadline, NULL);
  if (fds[1] >= 0) chime_close(fds[1]); /* the mailer's end of input */
  int wstatus = 0;
  if (proc) {
    int w = chime_proc_wait(proc, deadline, &wstatus);
    if (w != 0) chime_proc_terminate(proc, CHIME_SEC(1), &wstatus);
    if (rc == 0) rc = w;
    if (rc == 0 && (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0)) rc = -EIO;
    chime_proc_free(proc);
  }
  free(b.s);
  if (rc == -EIO)
    snprintf(why, why_size, "mailer %s for job %s: %s %d", mailer, c->name, WIFEXITED(wstatus) ? "exit" : "signal",
             WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : WTERMSIG(wstatus));
  else if (rc)
    snprintf(why, why_size, "mailer %s for job %s: %s", mailer, c->name, chime_strerror(rc));
  return rc;
}
