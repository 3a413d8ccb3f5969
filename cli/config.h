/* config.h - jobs and their settings: the config file (INI, read with
 * inih), its [defaults], and the same keys set from the command line. */
#ifndef CHIME_CLI_CONFIG_H
#define CHIME_CLI_CONFIG_H

#include <chime.h>
#include <stdbool.h>
#include <stddef.h>

#include "history.h"
#include "listen.h"
#include "log.h"

/* The longest config file read, and the longest line in it. */
#define CONFIG_MAX_BYTES (1 << 20)
#define CONFIG_MAX_LINE 4096
/* The longest job name. */
#define JOB_NAME_MAX 64

/* One job, as configured.  Every key of the file is a field here. */
struct job_conf {
  char *name;
  int line;                 /* the line of its [job NAME] header; 0 on the command line */
  char *schedule;           /* a cron expression, or NULL */
  chime_cron_expr *cron;    /* schedule, compiled (NULL for an interval) */
  chime_tz *tz;             /* its zone (loaded when schedule is set) */
  char *tz_name;            /* `tz`, or NULL for the local zone */
  chime_ns every;           /* the interval (from `every` or "@every D"); 0 for a calendar job */
  char *command;            /* the command as written */
  char **argv;              /* the command split into words (or SHELL -c COMMAND) */
  bool shell;               /* run the command with a shell: shell_path, or /bin/sh */
  char *shell_path;         /* `shell = /path`, a crontab's SHELL: the shell's absolute path; NULL: /bin/sh */
  char **env;               /* KEY=VALUE words added to the environment, NULL-terminated */
  bool clean_env;           /* the environment is env and cron's defaults alone (cronenv_build), not chime's */
  char *input;              /* the child's standard input (a crontab's text after %); NULL: /dev/null */
  char *mailto;             /* mail a run's output here (cronenv_mail); NULL: no mail */
  bool reboot;              /* @reboot: one run when chime starts, no schedule */
  char *dir;                /* working directory, or NULL */
  char *user;               /* user to run as (name or uid), or NULL */
  chime_ns timeout;         /* 0: none */
  chime_ns kill_grace;      /* SIGTERM to SIGKILL, at a timeout */
  chime_ns jitter, spread, window;
  chime_overlap overlap;
  unsigned max_concurrent;  /* with overlap = allow */
  chime_on_error on_error;
  chime_ns backoff, backoff_max;
  bool catch_up;            /* run once after downtime that missed a run */
  bool set_max_concurrent;  /* max_concurrent was given (it needs overlap = allow) */
  bool set_backoff;         /* backoff or backoff_max was given (they need on_error = backoff) */
  bool start_now;           /* an interval job's first run at once */
  unsigned long long max_runs; /* 0: no limit */
  char *on_failure;         /* the hook run after a run that failed, timed out or could not start, or NULL */
  char *on_recovery;        /* the hook run after the first success that follows failures, or NULL */
  char **failure_argv, **recovery_argv; /* the hooks split as command is (or SHELL -c HOOK), or NULL */
  chime_ns hook_timeout;    /* a hook still going then is ended as a run at its timeout */
  struct history_bounds history; /* history_keep, history_max_runs, history_keep_ok, history_keep_failed */
  bool scope_host;          /* in a fleet: every node runs it (scope = host), unclaimed; else the fleet's */
  bool rerun_on_node_loss;  /* in a fleet: a run whose node was lost is run again (rerun), or not (drop) */
  bool run_local;           /* in a fleet: while the database is unreachable, run anyway (on_db_down = run_local) */
  char *fingerprint;        /* every effective setting, to tell a changed job on reload */
};

/* Daemon settings: the [chime] section, or the command line. */
struct daemon_conf {
  char *db;                 /* history database path; NULL: the default; "none": no history */
  log_format format;
  bool format_set;
  chime_ns shutdown_grace;  /* SIGTERM to SIGKILL at shutdown */
  bool grace_set;
  char http[LISTEN_TEXT_MAX]; /* the HTTP endpoint's address as given (listen_addr_parse), "none", or "": none */
  char *socket;             /* the control socket's path; NULL: beside db (DB.sock); "none": none */
  bool watch;               /* reload when the config file changes (inotify) */
  char *fleet;              /* the fleet's PostgreSQL (conninfo, URI or service name); NULL: no fleet */
  char *node;               /* this node's name in the fleet; NULL: the hostname */
  chime_ns fleet_lease;     /* a claimed run's lease, on the database's clock */
  chime_ns fleet_max_skew;  /* the most this node's clock may be off the database's to claim */
  char *fleet_outbox;       /* where records wait while the database is unreachable; NULL: beside the history */
};

struct config {
  char *path;
  int crontab; /* read from a crontab (CRONTAB_USER, CRONTAB_SYSTEM), or 0: INI; a reload reads it the same way */
  struct daemon_conf daemon;
  struct job_conf **jobs;
  size_t njobs;
};

enum { CRONTAB_USER = 1, CRONTAB_SYSTEM = 2 };

/* Errors, one a line: "FILE:LINE: [SECTION] KEY: why". */
struct errors {
  char *text;
  size_t len, cap;
  int count;
};
void errors_add(struct errors *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void errors_free(struct errors *e);

/* Whether a job name is 1 to JOB_NAME_MAX letters, digits and _ . - @. */
bool job_name_ok(const char *name);
/* Whether c may stand in a job name. */
bool job_name_char(char c);

/* Built-in defaults of a job and of the daemon. */
void job_init(struct job_conf *job);
void daemon_init(struct daemon_conf *d);
void daemon_free(struct daemon_conf *d);
void job_free(struct job_conf *job);

/* Sets one key of a job from its text, checking it alone.  Returns 0, or
 * -EINVAL with the reason in err (without file, line or key), -ENOENT for
 * an unknown key (err says which key was meant, if one is near), -ENOMEM.
 * The job is unchanged on error.  `env` takes NAME=VALUE words, split as
 * a command is. */
int job_set(struct job_conf *job, const char *key, const char *value, char *err, size_t errsize);
/* Adds one NAME=VALUE to the job's environment, taken as it is (the
 * command line's --env, which the shell has already split).  As job_set. */
int job_add_env(struct job_conf *job, const char *word, char *err, size_t errsize);
/* Sets one key of the daemon, as job_set. */
int daemon_set(struct daemon_conf *d, const char *key, const char *value, char *err, size_t errsize);
/* The key (of a job or of [chime]) nearest to an unknown one, with - read
 * as _ and case ignored ("backof-max" is near backoff_max), or NULL if
 * none is near. */
const char *key_nearest(const char *key);

/* Unsets, in a job whose schedule is set, the keys that do not fit its kind
 * of schedule (tz for an interval; spread and start_now for a calendar),
 * except those `keep` says were given for the job itself: a [defaults]
 * key is a default for the jobs it fits.  Those kept, job_finish refuses. */
void job_drop_unfit(struct job_conf *job, bool (*keep)(const void *ctx, const char *key), const void *ctx);

/* How job_finish reports a problem: the key it is about and why. */
typedef void (*finish_report)(void *ctx, const char *key, const char *why);
/* Checks the keys together (a schedule, a command, keys that do not apply
 * to the kind of schedule, ...) and computes what follows from them (argv:
 * the command split into words, or sh -c COMMAND with shell; words already
 * in argv, from the command line, are kept; the zone; the fingerprint).
 * Reports every problem found, not only the first.  Returns 0, -EINVAL
 * after reporting, or -ENOMEM. */
int job_finish(struct job_conf *job, finish_report report, void *ctx);

/* What a job shared by a fleet ([chime] fleet, scope = fleet) cannot
 * have: start_now and max_runs (each node would count its own), a jitter
 * not shorter than its interval (the fleet waits it out before the
 * claim, which must come before the next tick).  Reports each; returns
 * 0 or -EINVAL. */
int job_fleet_check(const struct job_conf *job, finish_report report, void *ctx);

/* Reads a config file: refused if it is not a regular file, is writable by
 * every user, or is larger than CONFIG_MAX_BYTES.  Returns 0 and a config
 * in *out (free it with config_free), or a negative errno with every error
 * found added to errs: a config with any error is refused whole. */
int config_load(const char *path, struct config **out, struct errors *errs);
/* The file's text, read with config_load's checks: 0 and the text in *text
 * (NUL-terminated; free it) and its length, or a negative errno, said in
 * errs. */
int config_read(const char *path, char **text, size_t *len, struct errors *errs);
/* The same, from text in memory; `name` stands for the file in errors. */
int config_parse(const char *name, const char *text, size_t len, struct config **out, struct errors *errs);
void config_free(struct config *cfg);

/* The wall time of the job's latest tick in (after, until], or 0 if none:
 * the tick a daemon that was down from after to until missed last. */
chime_ns job_latest_tick(const struct job_conf *job, chime_ns after, chime_ns until);

/* The job's next n run times (wall clock) after `after`, into times: the
 * count stored, or a negative errno. */
int job_next_runs(const struct job_conf *job, chime_ns after, chime_ns *times, int n);

#endif
