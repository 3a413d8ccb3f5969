/* crontab.h - reading a crontab into the jobs the INI reader makes.
 *
 * Lines as Debian's cron reads them: blank lines and lines starting with
 * '#' (after blanks) are comments; `NAME=VALUE` lines set the environment
 * of the jobs after them; a job line is a schedule (5, 6 or 7 fields in
 * the crontab syntax of chime.h, or a macro), in the system format a user,
 * then a shell command, whose first unescaped '%' starts its standard
 * input.  A comment `# chime: KEY=VALUE ...` gives the next job line keys
 * of the INI format (and `name`).  Every error is FILE:LINE: why, and a
 * file with any error is refused whole.
 */
#ifndef CHIME_CLI_CRONTAB_H
#define CHIME_CLI_CRONTAB_H

#include <stdbool.h>
#include <stdio.h>

#include "config.h"

/* The longest command cron takes (its MAX_COMMAND, less its NUL), and the
 * longest NAME=VALUE (MAX_ENVSTR). */
#define CRONTAB_MAX_COMMAND 999
#define CRONTAB_MAX_ENV 999

struct crontab_opts {
  bool system; /* the system format: a user column after the schedule */
  int euid;    /* whose crontab this is and who chime runs as: a uid; -1 for geteuid() */
};

/* Whether a path is where cron reads system crontabs: /etc/crontab and
 * the files directly in /etc/cron.d. */
bool crontab_system_path(const char *path);

/* The rule for a file given without --crontab: it is a crontab unless its
 * first line that is not blank or a comment starts with '[' (an INI
 * section header). */
bool crontab_looks_like(const char *text, size_t len);

/* Reads a crontab from text in memory (`name` stands for the file in
 * messages) into a config whose jobs are as the INI reader makes them,
 * each with clean_env, its environment, shell_path, input, mailto, reboot,
 * tz_name and jitter (RANDOM_DELAY) set from the file.  Warnings (a sixth
 * field read as a year) go to `warnings` if it is not NULL.  Returns 0 and
 * the config in *out (config_free), or a negative errno with every error
 * in errs. */
int crontab_parse(const char *name, const char *text, size_t len, const struct crontab_opts *o, struct config **out,
                  struct errors *errs, struct errors *warnings);

/* Reads a file as config_load does (a regular file, not writable by
 * everyone, at most CONFIG_MAX_BYTES), then as crontab_parse.  With
 * `text`, the file's text is kept there (free it), for crontab_convert. */
int crontab_load(const char *path, const struct crontab_opts *o, struct config **out, struct errors *errs,
                 struct errors *warnings, char **text);

/* Writes the INI equivalent of a crontab already read into cfg (its
 * text, for the comments, which are kept in place): a [job NAME] section
 * for each job line, after the comments before it; environment lines
 * become comments, their effect written into each job.  Returns 0, or
 * -EIO if writing failed. */
int crontab_convert(const char *text, size_t len, const struct config *cfg, FILE *out);

#endif
