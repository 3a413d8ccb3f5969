/* child.h - the child of a run: whom it runs as, its environment, the
 * program it execs, its standard input and output. */
#ifndef CHIME_CLI_CHILD_H
#define CHIME_CLI_CHILD_H

#include <chime.h>
#include <pwd.h>
#include <stdbool.h>
#include <stddef.h>

#include "config.h"

/* What a run's child is started with: made by child_prepare, started by
 * child_spawn, freed by child_release. */
struct child {
  struct passwd pw; /* whom it runs as, when has_user */
  bool has_user;
  char pwbuf[4096];
  char **env;       /* its environment (one allocation) */
  unsigned *groups; /* a user's groups, when chime is root */
  int ngroups;
  const char **argv; /* the command's words, the first resolved in the job's PATH (one allocation) */
  bool die_with_parent; /* SIGKILL when chime dies (a fleet's leased run: it must not outlive its lease) */
  chime_proc *proc;  /* once spawned */
  int pid;
};

/* Everything but the spawn: the user (a name, or a uid in range), the
 * working directory, the environment (the daemon's with the job's env and
 * the user's HOME, USER and LOGNAME over it; or cron's, with clean_env),
 * the user's groups, the program (found in the job's PATH).  Returns 0, or
 * a negative errno with why in `why`. */
int child_prepare(const struct job_conf *c, struct child *ch, char *why, size_t size);
/* Starts the child in a process group of its own, every signal at its
 * default, stdout and stderr on pipes, stdin on /dev/null or a pipe when
 * the job has input (*in_fd: its write end, else -1).  Returns 0, or a
 * negative errno with why. */
int child_spawn(const struct job_conf *c, struct child *ch, int *in_fd, char *why, size_t size);
/* Frees what child_prepare and child_spawn made (the child itself with
 * chime_proc_free). */
void child_release(struct child *ch);

/* The user's groups (getgrouplist: gid and every group that lists the
 * user), for a child run as that user, as login and cron give them.
 * Returns their count and the list in *groups (free it), or -ENOMEM,
 * -E2BIG (more than NGROUPS_MAX). */
int user_groups(const char *user, unsigned gid, unsigned **groups);
/* The environment of a run of c: the daemon's, with the job's env over it,
 * and HOME, USER and LOGNAME of pw (may be NULL).  One allocation (free
 * it), or NULL when out of memory. */
char **job_env(const struct job_conf *c, const struct passwd *pw);

#endif
