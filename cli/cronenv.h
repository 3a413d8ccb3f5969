/* cronenv.h - what a run of a crontab job needs of cron at run time: its
 * environment (cron's, not chime's), its program found in its own PATH,
 * and its output mailed as Debian's cron mails it.
 *
 * Called by the run code (run.c): see each function for where. */
#ifndef CHIME_CLI_CRONENV_H
#define CHIME_CLI_CRONENV_H

#include <stddef.h>

#include "config.h"

struct passwd;

/* cron's PATH when the crontab sets none (its _PATH_DEFPATH). */
#define CRONENV_DEFAULT_PATH "/usr/bin:/bin"

/* The environment of a run of a job with clean_env (a crontab's): the
 * job's env, then what Debian's cron adds when the file did not set it,
 * SHELL=/bin/sh, HOME (pw's home) and PATH=/usr/bin:/bin, and always
 * LOGNAME (pw's name: a crontab cannot change it); nothing of chime's own
 * environment.  pw is the user the run runs as (the job's user, or
 * chime's).  One allocation (free it); NULL when out of memory. */
char **cronenv_build(const struct job_conf *c, const struct passwd *pw);

/* The PATH that decides where the job's program is found: PATH in the
 * job's env; else, with clean_env, cron's default; else chime's own
 * ($PATH, or NULL when chime has none). */
const char *cronenv_path(const struct job_conf *c);

/* The program `prog` to exec: itself when it holds a '/' (it must be an
 * executable file), else the first executable file named prog in the
 * directories of `path` (an empty entry is the working directory; NULL
 * path: "/usr/bin:/bin").  Returns 0 with the path in out; -ENOENT (not
 * found, or no such file), -EACCES (found, not executable), -ENAMETOOLONG,
 * each with why ("backup: not found in PATH /usr/bin:/bin"). */
int cronenv_find_program(const char *prog, const char *path, char *out, size_t size, char *why, size_t why_size);

/* The mailer: $CHIME_SENDMAIL if set (tests), else /usr/sbin/sendmail.
 * Returns 0 if it is an executable file, else -ENOENT or -EACCES; *path
 * names it either way.  The daemon asks once at start, when some job has a
 * mailto, and says so if there is none. */
int cronenv_mailer(const char **path);

/* Task only.  Mails a run's output to c->mailto as Debian's cron does:
 * only when there was output (len > 0); the mailer is run as
 * `sendmail -FCronDaemon -i -B8BITMIME -oem MAILTO` with on its standard
 * input the headers From ($MAILFROM of the job's env, else "USER (Cron
 * Daemon)"), To, Subject "Cron <USER@HOST> COMMAND", and " (failed)" when
 * `status` (a wait status) is not a zero exit, MIME-Version,
 * Content-Type (text/plain; UTF-8), Content-Transfer-Encoding (8bit), an
 * X-Cron-Env line for each variable of `env` (the run's environment, may
 * be NULL), a blank line and the output.  The mailer is spawned with
 * chime_proc_spawn, written to with chime_write_all and waited for, all
 * suspending only this task; a mailer still running after `timeout` is
 * terminated.  `user` is whom the run ran as.  Returns 0 (mailed, or
 * nothing to mail: no mailto or no output); -ENOENT (no mailer: the output
 * is not mailed, and the caller says so), -EIO (the mailer failed: why in
 * `why`), -ETIMEDOUT, -ECANCELED, -ENOMEM, chime_proc_spawn's errors. */
int cronenv_mail(const struct job_conf *c, const char *user, const char *const *env, const char *output, size_t len,
                 int status, chime_ns timeout, char *why, size_t why_size);

#endif
