/* child.c - the child of a run: whom it runs as, its environment, the
 * program it execs (child.h).
 *
 * Nothing of a config reaches a shell unless the job asks for one (shell =
 * true, or a crontab's SHELL): the command's words are the child's argv.
 * A job's user is looked up when each run starts (the passwd file may
 * change while chime runs), and a uid must fit: 4294967296 is refused, not
 * run as root.  A crontab job (clean_env) gets cron's environment, not
 * chime's, and its program is found in its own PATH, as cron's shell
 * would find it.
 */
#include "child.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "boost.h"
#include "cronenv.h"

extern char **environ;

char **job_env(const struct job_conf *c, const struct passwd *pw) {
  size_t njob = 0, total = 0, extra = 0;
  while (c->env && c->env[njob]) njob++;
  while (environ[total]) total++;
  if (pw) extra = strlen(pw->pw_dir) + 2 * strlen(pw->pw_name) + strlen("HOME=USER=LOGNAME=") + 3;
  size_t slots = total + 3 + njob + 1;
  char **env = malloc(slots * sizeof *env + extra);
  if (!env) return NULL;
  const char *add[3];
  size_t nadd = 0;
  if (pw) {
    char *p = (char *)(env + slots);
    const char *fmt[3] = {"HOME=%s", "USER=%s", "LOGNAME=%s"};
    const char *val[3] = {pw->pw_dir, pw->pw_name, pw->pw_name};
    for (int i = 0; i < 3; i++) {
      add[nadd++] = p;
      p += sprintf(p, fmt[i], val[i]) + 1; /* the room was counted above */
    }
  }
  size_t n = 0;
  for (size_t i = 0; i < total + nadd + njob; i++) {
    const char *v = i < total ? environ[i] : i < total + nadd ? add[i - total] : c->env[i - total - nadd];
    size_t klen = strcspn(v, "=");
    bool later = false; /* a later entry of the same name wins: the user's, the job's over the daemon's (whose
                         * own are taken as they are: comparing each with each would cost a run hundreds of
                         * comparisons) */
    for (size_t k = i < total ? total : i + 1; k < total + nadd + njob && !later; k++) {
      const char *w = k < total ? environ[k] : k < total + nadd ? add[k - total] : c->env[k - total - nadd];
      later = strncmp(v, w, klen) == 0 && w[klen] == '=';
    }
    if (!later) env[n++] = (char *)v;
  }
  env[n] = NULL;
  return env;
}

/* Fills ch->pw for the job's user: a name, or a uid (all digits) that
 * fits.  0, or a negative errno with why. */
static int find_user(const char *user, struct child *ch, char *why, size_t size) {
  struct passwd *found = NULL;
  bool digits = *user != '\0';
  for (const char *p = user; *p; p++)
    digits = digits && *p >= '0' && *p <= '9';
  int rc;
  if (digits) {
    errno = 0;
    char *end;
    unsigned long long uid = strtoull(user, &end, 10);
    if (errno || *end || uid > 4294967294ull || (uid_t)uid != uid) {
      snprintf(why, size, "user %s: a uid is 0 to 4294967294", user);
      return -EINVAL;
    }
    rc = getpwuid_r((uid_t)uid, &ch->pw, ch->pwbuf, sizeof ch->pwbuf, &found);
  } else {
    rc = getpwnam_r(user, &ch->pw, ch->pwbuf, sizeof ch->pwbuf, &found);
  }
  if (!found) {
    snprintf(why, size, "user %s: %s", user, rc ? strerror(rc) : "no such user");
    return -EINVAL;
  }
  if (geteuid() != 0 && ch->pw.pw_uid != geteuid()) {
    snprintf(why, size, "user %s: chime must run as root to run a job as another user", user);
    return -EPERM;
  }
  ch->has_user = true;
  return 0;
}

int user_groups(const char *user, unsigned gid, unsigned **groups) {
  _Static_assert(sizeof(gid_t) == sizeof(unsigned), "gid_t is an unsigned int");
  int size = 32;
  for (;;) {
    gid_t *list = malloc((size_t)size * sizeof *list);
    if (!list) return -ENOMEM;
    int n = size;
    if (getgrouplist(user, (gid_t)gid, list, &n) >= 0) {
      *groups = (unsigned *)list;
      return n;
    }
    free(list);
    if (n > NGROUPS_MAX) return -E2BIG;
    size = n > size ? n : size * 2; /* n: how many it needs */
  }
}

/* chime's own passwd entry, for cron's environment of a job without a
 * user (its HOME and LOGNAME). */
static int own_user(struct child *ch, char *why, size_t size) {
  struct passwd *found = NULL;
  int rc = getpwuid_r(geteuid(), &ch->pw, ch->pwbuf, sizeof ch->pwbuf, &found);
  if (found) return 0;
  snprintf(why, size, "uid %u: %s", (unsigned)geteuid(), rc ? strerror(rc) : "no passwd entry");
  return -EINVAL;
}

/* The command's words, the program resolved in the job's PATH. */
static int resolve_argv(const struct job_conf *c, struct child *ch, char *why, size_t size) {
  size_t n = 0;
  while (c->argv[n]) n++;
  char exe[PATH_MAX], detail[PATH_MAX + 256];
  int rc = cronenv_find_program(c->argv[0], cronenv_path(c), exe, sizeof exe, detail, sizeof detail);
  if (rc) return snprintf(why, size, "cannot run %s", detail), rc;
  size_t len = strlen(exe) + 1;
  const char **argv = malloc((n + 1) * sizeof *argv + len);
  if (!argv) return snprintf(why, size, "out of memory"), -ENOMEM;
  char *copy = (char *)(argv + n + 1);
  memcpy(copy, exe, len);
  argv[0] = copy;
  for (size_t i = 1; i <= n; i++)
    argv[i] = c->argv[i];
  ch->argv = argv;
  return 0;
}

int child_prepare(const struct job_conf *c, struct child *ch, char *why, size_t size) {
  memset(ch, 0, sizeof *ch);
  int rc = 0;
  struct stat st;
  if (c->user) rc = find_user(c->user, ch, why, size);
  else if (c->clean_env) rc = own_user(ch, why, size);
  if (!rc && c->dir && stat(c->dir, &st) != 0) rc = -errno, snprintf(why, size, "dir %s: %s", c->dir, strerror(errno));
  if (!rc) {
    const struct passwd *pw = ch->has_user || c->clean_env ? &ch->pw : NULL;
    ch->env = c->clean_env ? cronenv_build(c, pw) : job_env(c, pw);
    if (!ch->env) rc = -ENOMEM, snprintf(why, size, "out of memory");
  }
  if (!rc && ch->has_user && geteuid() == 0 && (ch->ngroups = user_groups(ch->pw.pw_name, ch->pw.pw_gid, &ch->groups)) < 0)
    rc = ch->ngroups, ch->ngroups = 0, snprintf(why, size, "user %s: its groups: %s", c->user, chime_strerror(rc));
  if (!rc) rc = resolve_argv(c, ch, why, size);
  return rc;
}

int child_spawn(const struct job_conf *c, struct child *ch, int *in_fd, char *why, size_t size) {
  int in[2] = {-1, -1};
  *in_fd = -1;
  if (c->input && pipe2(in, O_CLOEXEC) != 0) return snprintf(why, size, "its input: %s", strerror(errno)), -errno;
  /* Every signal at its default in the child, however chime was started
   * (a shell starting it in the background ignores SIGINT and SIGQUIT). */
  chime_proc_opts po = {.envp = (const char *const *)ch->env, .cwd = c->dir, .in = {.mode = CHIME_STDIO_NULL},
                        .out = {.mode = CHIME_STDIO_PIPE}, .err = {.mode = CHIME_STDIO_PIPE}, .reset_signals = true,
                        .die_with_parent = true};
  if (c->input) po.in = (chime_stdio){.mode = CHIME_STDIO_FD, .fd = in[0]};
  boost_child(&po);
  if (ch->groups) /* root: the user's uid, gid and groups; else it is chime's own user */
    po.as_user = true, po.uid = ch->pw.pw_uid, po.gid = ch->pw.pw_gid, po.groups = ch->groups,
    po.ngroups = (unsigned)ch->ngroups;
  int rc = chime_proc_spawn(ch->argv, &po, &ch->proc);
  if (in[0] >= 0) close(in[0]);
  if (rc == -ENOENT || rc == -EACCES)
    snprintf(why, size, "cannot run %s: %s", ch->argv[0],
             rc == -ENOENT ? "no such program (or directory)" : "permission denied");
  else if (rc)
    snprintf(why, size, "cannot run %s: %s", ch->argv[0], chime_strerror(rc));
  if (rc) {
    if (in[1] >= 0) close(in[1]);
    return rc;
  }
  ch->pid = chime_proc_pid(ch->proc);
  if (in[1] >= 0) fcntl(in[1], F_SETFL, fcntl(in[1], F_GETFL) | O_NONBLOCK);
  *in_fd = in[1];
  return 0;
}

void child_release(struct child *ch) {
  chime_proc_free(ch->proc);
  ch->proc = NULL;
  free(ch->env);
  free(ch->groups);
  free(ch->argv);
  ch->env = NULL, ch->groups = NULL, ch->argv = NULL;
}
