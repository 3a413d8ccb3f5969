/* runner.c - the daemon: starts each job on the loop, waits for signals,
 * reloads the config on SIGHUP, and shuts down on SIGTERM or SIGINT.
 *
 * The main task owns every job handle.  It waits for SIGHUP, SIGINT and
 * SIGTERM; when every job has ended by itself (max_runs, on_error = stop)
 * the last job's destructor cancels the wait instead.  At shutdown it stops
 * scheduling and cancels every job at once, which cancels their runs: each
 * run sends SIGTERM to its child's group, and SIGKILL to what is left when
 * the one shutdown grace they share ends (stop_deadline), and completes
 * its record; then the main task joins them all, so a shutdown takes one
 * grace, however many runs there are.  A second SIGTERM or SIGINT
 * meanwhile SIGKILLs every child at once.
 *
 * The daemon is a child subreaper: a process a job leaves behind whose
 * parent has gone (a double fork) is adopted by chime, not by init, so
 * that it is ended with its run's group and reaped (run.c).  SIGPIPE has a
 * handler that does nothing, so that a log on a closed pipe costs lines,
 * not the daemon; a handler, not SIG_IGN, so that children do not inherit
 * it ignored.
 *
 * A reload keeps the jobs whose settings did not change (their schedules
 * go on undisturbed), retires the others, and starts the new ones.  A
 * retired job's schedule is stopped (chime_every_stop): no tick of it comes
 * again, not even one that would replace its run, and a run still going is
 * left to finish; the job ends with it.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "log.h"
#include "runner.h"

struct history *runner_history(struct runner *r) {
  if (r->hist || !r->db_path) return r->hist;
  char err[1024];
  if (history_open(r->db_path, r->db_make_dirs, &r->hist, err, sizeof err) == 0) {
    if (r->db_down) log_msg("info", "history", "history database %s: open again, runs are recorded", r->db_path);
    r->db_down = false;
    int n = history_mark_interrupted(r->hist);
    if (n > 0) log_msg("warn", "history", "%d run(s) of an earlier chime were cut short: marked interrupted", n);
  } else if (!r->db_down) {
    log_msg("error", "history", "%s; jobs go on without history until it can be opened", err);
    r->db_down = true;
  }
  return r->hist;
}

/* The job's destructor: it has ended (its last run returned). */
static void job_ended(void *arg) {
  struct job *j = arg;
  j->ended = true;
  if (j->retired) return;
  j->r->active--;
  if (j->r->active == 0 && !j->r->stopping) chime_cancel(j->r->main);
}

static void log_scheduled(const struct job *j) {
  chime_job_stats st;
  struct logline l;
  log_begin(&l, "info", "scheduled");
  log_str(&l, "job", j->conf->name);
  if (j->conf->cron) log_str(&l, "schedule", j->conf->schedule);
  else log_dur_text(&l, "every", j->conf->every);
  if (chime_every_stats(j->handle, &st) == 0 && st.next != CHIME_NEVER)
    log_time(&l, "next", chime_wall_now() + (st.next - chime_now()));
  log_end(&l);
}

/* Starts a job; `at_start`: chime is starting (not reloading), so that a
 * job with catch_up runs the tick it missed while chime was down.  On a
 * reload nothing was missed: ticks a job's old version skipped (overlap,
 * backoff) or that a new interval puts in the past are not caught up. */
static int job_start(struct runner *r, struct job *j, bool at_start) {
  const struct job_conf *c = j->conf;
  char key[JOB_NAME_MAX + 300];
  chime_every_opts o = {.overlap = c->overlap, .jitter = c->jitter, .spread = c->spread, .timeout = c->timeout,
                        .on_error = c->on_error, .max_runs = c->max_runs, .window = c->window, .dtor = job_ended,
                        .name = c->name};
  if (c->overlap == CHIME_OVERLAP_ALLOW) o.max_concurrent = c->max_concurrent;
  if (c->spread) { /* the key is NAME@hostname: the same job on other hosts is spread elsewhere */
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    snprintf(key, sizeof key, "%s@%s", c->name, host);
    o.key = key;
  }
  if (c->on_error == CHIME_ERROR_BACKOFF) o.backoff_base = c->backoff, o.backoff_max = c->backoff_max;
  int rc;
  if (c->cron) {
    o.tz = c->tz_name;
    rc = chime_cron(c->schedule, run_tick, j, &o, &j->handle);
  } else {
    if (c->start_now) o.start = CHIME_START_NOW;
    rc = chime_every(c->every, run_tick, j, &o, &j->handle);
  }
  if (rc) {
    log_msg("error", "not_started", "job %s: cannot be scheduled: %s", c->name, chime_strerror(rc));
    return rc;
  }
  j->started = true;
  r->active++;
  log_scheduled(j);
  if (!at_start) return 0;
  if (c->catch_up && !r->db_path)
    log_msg("warn", "catch_up", "job %s: catch_up needs the history database: ignored", c->name);
  else if (c->catch_up && (rc = chime_spawn(run_catch_up, j, &j->catch_up)) == 0)
    j->catching_up = true;
  else if (c->catch_up)
    log_msg("error", "catch_up", "job %s: no catch-up: %s", c->name, chime_strerror(rc));
  return 0;
}

/* Adds a job for conf (taken) to the runner and starts it; a job that
 * cannot start is dropped, the others go on. */
static void job_add(struct runner *r, struct job_conf *conf, bool at_start) {
  struct job *j = calloc(1, sizeof *j);
  if (!j) {
    log_msg("error", "not_started", "job %s: out of memory", conf->name);
    job_free(conf);
    free(conf);
    return;
  }
  j->r = r, j->conf = conf;
  if (job_start(r, j, at_start) != 0) {
    job_free(conf);
    free(conf);
    free(j);
    return;
  }
  j->next = r->jobs;
  r->jobs = j;
}

/* Cancels (if need be) and joins a job and its catch-up run (cancelled
 * too with `stop`, else waited for), and frees it. */
static void job_reap(struct runner *r, struct job *j, bool stop) {
  int result = 0;
  if (j->catching_up && stop) chime_cancel(j->catch_up);
  if (j->catching_up) chime_join(j->catch_up, NULL), j->catching_up = false;
  if (j->started) chime_cancel(j->handle), chime_join(j->handle, &result);
  if (result < 0 && result != -ECANCELED && !j->retired) r->failed = true;
  for (struct job **p = &r->jobs; *p; p = &(*p)->next)
    if (*p == j) {
      *p = j->next;
      break;
    }
  job_free(j->conf);
  free(j->conf);
  free(j);
}

static void retire(struct runner *r, struct job *j) {
  j->retired = true;
  if (j->started) chime_every_stop(j->handle);
  if (!j->ended) r->active--;
  if (j->running == 0) job_reap(r, j, true);
}

static void reload(struct runner *r) {
  if (!r->config_path) {
    log_msg("warn", "reload", "SIGHUP: there is no config file to reload");
    return;
  }
  struct config *cfg = NULL;
  struct errors errs = {0};
  if (config_load(r->config_path, &cfg, &errs) != 0) {
    for (char *line = errs.text, *nl; line && *line; line = nl + 1) {
      nl = strchr(line, '\n');
      *nl = '\0';
      log_msg("error", "reload_error", "%s", line);
    }
    log_msg("error", "reload", "%s: %d error(s): refused; the running config goes on", r->config_path, errs.count);
    errors_free(&errs);
    return;
  }
  for (struct job *j = r->jobs, *next; j; j = next) { /* retired jobs whose last run has ended */
    next = j->next;
    if (j->retired && j->running == 0) job_reap(r, j, true);
  }
  int kept = 0, stopped = 0, started = 0;
  for (struct job *j = r->jobs, *next; j; j = next) {
    next = j->next;
    if (j->retired) continue;
    size_t i = 0;
    while (i < cfg->njobs && (!cfg->jobs[i] || strcmp(cfg->jobs[i]->name, j->conf->name) != 0)) i++;
    if (i < cfg->njobs && strcmp(cfg->jobs[i]->fingerprint, j->conf->fingerprint) == 0) {
      job_free(cfg->jobs[i]);
      free(cfg->jobs[i]);
      cfg->jobs[i] = NULL;
      kept++;
    } else {
      retire(r, j);
      stopped++;
    }
  }
  for (size_t i = 0; i < cfg->njobs; i++) {
    if (!cfg->jobs[i]) continue;
    job_add(r, cfg->jobs[i], false);
    cfg->jobs[i] = NULL;
    started++;
  }
  if (cfg->daemon.grace_set) r->shutdown_grace = cfg->daemon.shutdown_grace;
  if (cfg->daemon.format_set) log_setup(cfg->daemon.format, 2);
  config_free(cfg);
  struct logline l;
  log_begin(&l, "info", "reload");
  log_str(&l, "config", r->config_path);
  log_int(&l, "kept", kept), log_int(&l, "started", started), log_int(&l, "stopped", stopped);
  log_end(&l);
  if (r->active == 0) chime_cancel(r->main);
}

static void log_stopping(const struct runner *r, int sig) {
  log_msg("info", "stopping", "%s: stopping every job (grace %.3fs)", sig == SIGINT ? "SIGINT" : "SIGTERM",
          (double)r->shutdown_grace / 1e9);
}

/* During the shutdown: a second SIGTERM or SIGINT kills every child now.
 * A shutdown that no signal began (every job ended by its limits) lets
 * catch-up runs finish: the first signal then stops them, as it would
 * have stopped every run, and a second kills. */
static int killer(void *arg) {
  struct runner *r = arg;
  static const int sigs[] = {SIGINT, SIGTERM};
  if (!r->signalled) {
    int sig = chime_signal_wait(sigs, 2, CHIME_NEVER);
    if (sig < 0) return 0;
    r->signalled = true;
    r->stop_deadline = chime_now() + r->shutdown_grace;
    log_stopping(r, sig);
    for (struct job *j = r->jobs; j; j = j->next)
      if (j->catching_up) chime_cancel(j->catch_up);
  }
  if (chime_signal_wait(sigs, 2, CHIME_NEVER) < 0) return 0;
  log_msg("warn", "kill", "second signal: killing every run now");
  for (struct run *run = r->runs; run; run = run->next)
    if (run->pid > 0) kill(-run->pid, SIGKILL);
  return 0;
}

struct setup {
  struct runner *r;
  struct config *cfg;
};

static int main_task(void *arg) {
  struct setup *s = arg;
  struct runner *r = s->r;
  r->main = chime_self();
  const char *wall = getenv("CHIME_TEST_WALL"); /* tests: start the virtual wall clock here */
  if (wall && chime_wall_set((chime_ns)strtoll(wall, NULL, 10) * CHIME_SEC(1)) != 0)
    log_msg("warn", "config", "CHIME_TEST_WALL is for the virtual clock (CHIME_CLOCK=virtual) only: ignored");
  runner_history(r);
  for (size_t i = 0; i < s->cfg->njobs; i++) {
    job_add(r, s->cfg->jobs[i], true);
    s->cfg->jobs[i] = NULL;
  }
  if (r->active == 0) {
    log_msg("error", "stop", "no job could be scheduled");
    r->failed = true;
  } else {
    struct logline l;
    log_begin(&l, "info", "ready");
    log_int(&l, "jobs", r->active);
    log_int(&l, "pid", getpid());
    if (r->config_path) log_str(&l, "config", r->config_path);
    log_str(&l, "db", r->db_path ? r->db_path : "none");
    log_end(&l);
  }
  static const int sigs[] = {SIGHUP, SIGINT, SIGTERM};
  int sig = 0;
  while (r->active > 0) {
    sig = chime_signal_wait(sigs, 3, CHIME_NEVER);
    if (sig == -ENOMEM) { /* the signals could not be caught: stop, saying why */
      log_msg("error", "stop", "cannot wait for signals: %s", chime_strerror(sig));
      r->failed = true;
    }
    if (sig != SIGHUP) break;
    reload(r);
  }
  chime_shield(true); /* the cleanup below waits, whatever cancelled us */
  r->stopping = true;
  r->stop_deadline = chime_now() + r->shutdown_grace;
  chime_task kill_task;
  bool by_signal = r->signalled = sig == SIGINT || sig == SIGTERM;
  if (by_signal) log_stopping(r, sig);
  bool killer_up = chime_spawn(killer, r, &kill_task) == 0;
  /* Every run gets its SIGTERM now, before any is waited for; a catch-up
   * run is stopped by a signal only (after the jobs ended by themselves,
   * it is let finish, unless a signal comes: killer). */
  for (struct job *j = r->jobs; j; j = j->next) {
    if (j->started) chime_cancel(j->handle);
    if (j->catching_up && by_signal) chime_cancel(j->catch_up);
  }
  while (r->jobs) job_reap(r, r->jobs, by_signal);
  reap_adopted(r);
  if (killer_up) chime_cancel(kill_task), chime_join(kill_task, NULL);
  log_msg("info", "stop", "chime stopped");
  return 0;
}

static void ignore_sigpipe(int sig) { (void)sig; }

int runner_main(struct config *cfg, const char *config_path, const char *db_path, bool db_make_dirs,
                chime_ns shutdown_grace) {
  struct runner r = {
      .config_path = config_path, .db_path = db_path, .db_make_dirs = db_make_dirs, .shutdown_grace = shutdown_grace};
  struct sigaction sa = {.sa_handler = ignore_sigpipe, .sa_flags = SA_RESTART};
  sigemptyset(&sa.sa_mask);
  sigaction(SIGPIPE, &sa, NULL);
  if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0)
    log_msg("warn", "config", "not a child subreaper (%s): processes jobs leave behind go to init", strerror(errno));
  struct setup s = {&r, cfg};
  chime_run_opts o = {.loop = {.stack_size = 512 * 1024}};
  int rc = chime_run(main_task, &s, &o, NULL);
  history_close(r.hist);
  if (rc < 0) {
    fprintf(stderr, "chime: %s\n", chime_strerror(rc));
    return 1;
  }
  return r.failed ? 1 : 0;
}
