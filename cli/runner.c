/* runner.c - the daemon: starts each job on the loop, hears its events,
 * waits for signals, reloads the config on SIGHUP, and shuts down on
 * SIGTERM or SIGINT.
 *
 * What happens is what the library's events say: a run's end (logged and
 * recorded with its outcome), ticks skipped (one line and one row for each
 * run of them, with their count), a job's end.  The command never polls
 * the library's statistics.  A tick missed while chime was down is run
 * again by the library (chime_every_trigger) under the job's own overlap
 * policy; the old version of a job changed by a reload still running is
 * the veto's to weigh, against the new version's policy: skip (its ticks
 * are skipped while the old one runs), allow (up to max_concurrent between
 * the two), queue (the latest tick waits, and is triggered when the old
 * version ends), replace (the old version is cancelled).  After reloads
 * in a row the versions form a chain: each new one weighs the runs of
 * every older version still going, and a version that ends hands its
 * place in the chain to the next.
 *
 * The main task owns every job handle.  It waits for SIGHUP, SIGINT and
 * SIGTERM; when every job has ended by itself (max_runs, on_error = stop)
 * the last job's end cancels the wait instead.  At shutdown it stops
 * scheduling and cancels every job at once, which cancels their runs: each
 * run sends SIGTERM to its child's group, and SIGKILL to what is left when
 * the one shutdown grace they share ends (stop_deadline), then the history
 * is written; so a shutdown takes one grace, however many runs there are.
 * A second SIGTERM or SIGINT meanwhile SIGKILLs every child at once.
 *
 * The daemon is a child subreaper: a process a job leaves behind whose
 * parent has gone (a double fork) is adopted by chime, not by init, so
 * that it is ended with its run's group and reaped (run.c).  SIGPIPE has a
 * handler that does nothing, so that a log on a closed pipe costs lines,
 * not the daemon; a handler, not SIG_IGN, so that children do not inherit
 * it ignored.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "argv.h"
#include "boost.h"
#include "control.h"
#include "cronenv.h"
#include "crontab.h"
#include "fleet.h"
#include "http.h"
#include "log.h"
#include "runner.h"

/* ---- a run's end --------------------------------------------------------------- */

/* The outcome of a run: the library's word on how it ended, with what the
 * child did. */
static outcome outcome_of(const struct run *run, const chime_event *ev) {
  if (run->forced) return run->forced;
  switch (ev->outcome) {
  case CHIME_OUTCOME_OK: return OUTCOME_OK;
  case CHIME_OUTCOME_ERROR:
    if (!run->child_done) return OUTCOME_ERROR;
    return run->rec.signal ? OUTCOME_SIGNAL : OUTCOME_FAILED;
  case CHIME_OUTCOME_TIMEOUT: return OUTCOME_TIMEOUT;
  case CHIME_OUTCOME_REPLACED: return OUTCOME_REPLACED;
  case CHIME_OUTCOME_CANCELLED: /* the daemon cancels a job when it stops, or when a new version replaces it */
    return run->job->replaced ? OUTCOME_REPLACED : OUTCOME_STOPPED;
  case CHIME_OUTCOME_SHUTDOWN: return OUTCOME_STOPPED;
  case CHIME_OUTCOME_ABANDONED: return OUTCOME_INTERRUPTED;
  }
  return OUTCOME_ERROR;
}

static void log_end_of_run(const struct run *run, const chime_event *ev) {
  const struct run_record *rec = &run->rec;
  struct logline l;
  log_begin(&l, rec->result == OUTCOME_OK ? "info" : "warn", "end");
  log_str(&l, "job", rec->job);
  if (run->pid) log_int(&l, "pid", run->pid);
  log_str(&l, "outcome", outcome_name(rec->result));
  if (rec->exit_code >= 0) log_int(&l, "exit", rec->exit_code);
  if (rec->signal > 0) log_str(&l, "signal", sigabbrev_np(rec->signal) ? sigabbrev_np(rec->signal) : "?");
  log_dur(&l, "duration", ev->duration);
  log_dur(&l, "late", rec->late);
  if (rec->error) log_str(&l, "error", rec->error);
  log_end(&l);
}

/* A mail of a run's output (cron's MAILTO), sent by a task of its own,
 * which outlives the run and its job: it keeps what it needs. */
struct mail {
  char *output;
  size_t len;
  int status;    /* the child's wait status */
  char **env;    /* the job's env (MAILFROM), one allocation, or NULL */
  char strings[]; /* name, command, mailto, user: NUL-terminated, one after another */
};

static int mail_task(void *arg) {
  struct mail *m = arg;
  const char *name = m->strings, *command = name + strlen(name) + 1, *mailto = command + strlen(command) + 1;
  const char *user = mailto + strlen(mailto) + 1;
  struct job_conf c;
  job_init(&c);
  c.name = (char *)name, c.command = (char *)command, c.mailto = (char *)mailto, c.env = m->env;
  char why[512] = "";
  int rc = cronenv_mail(&c, user, NULL, m->output, m->len, m->status, CHIME_MIN(1), why, sizeof why);
  if (rc && rc != -ECANCELED)
    log_msg("error", "mail", "job %s: its output was not mailed to %s: %s", name, mailto,
            why[0] ? why : chime_strerror(rc));
  free(m->env);
  free(m->output);
  free(m);
  return 0;
}

/* Mails the output of a run whose job has a mailto, as cron does: only
 * when there was output. */
static void mail_output(struct run *run) {
  const struct job_conf *c = run->job->conf;
  if (!c->mailto || !run->mail_len || !run->job->r->mailer) return;
  const char *user = c->user ? c->user : getenv("LOGNAME") ? getenv("LOGNAME") : "root";
  const char *parts[4] = {c->name, c->command, c->mailto, user};
  size_t bytes = 0;
  for (int i = 0; i < 4; i++) bytes += strlen(parts[i]) + 1;
  struct mail *m = calloc(1, sizeof *m + bytes);
  bool nomem = !m;
  if (m) {
    char *p = m->strings;
    for (int i = 0; i < 4; i++) p = stpcpy(p, parts[i]) + 1;
    m->env = argv_copy(c->env, 0, &nomem);
  }
  if (nomem || chime_spawn(mail_task, m, NULL) != 0) {
    log_msg("error", "mail", "job %s: out of memory: its output was not mailed", c->name);
    if (m) free(m->env);
    free(m);
    return;
  }
  m->output = run->mail, m->len = run->mail_len;
  run->mail = NULL;
  int code = run->rec.exit_code;
  m->status = run->rec.signal ? run->rec.signal : code >= 0 ? code << 8 : 0;
}

void runner_observe(struct runner *r, struct observer *o) {
  o->next = r->observers;
  r->observers = o;
}

static void observe(struct runner *r, const struct job *j, const chime_event *ev, const struct run *run) {
  for (struct observer *o = r->observers; o; o = o->next)
    o->fn(o->ctx, j, ev, run);
}

/* The status of a job after one of its runs ended. */
static void status_ended(struct job_status *st, const struct run_record *rec) {
  st->runs[rec->result]++;
  st->last_outcome = rec->result;
  st->last_start = rec->started;
  st->last_end = rec->ended;
  st->last_exit = rec->exit_code;
  if (rec->result == OUTCOME_OK)
    st->last_ok = rec->ended;
  else
    st->last_failure = rec->ended;
}

static void run_ended(struct runner *r, struct job *j, const chime_event *ev) {
  struct run *run = run_find(r, j, ev->run);
  if (!run) { /* its target could not start it (no memory): said then */
    observe(r, j, ev, NULL);
    return;
  }
  run->rec.result = outcome_of(run, ev);
  run->rec.ended = chime_wall_now();
  status_ended(&j->status, &run->rec);
  observe(r, j, ev, run);
  log_end_of_run(run, ev);
  mail_output(run);
  if (run->prev) run->prev->next = run->next;
  else r->runs = run->next;
  if (run->next) run->next->prev = run->prev;
  free(run->mail);
  recorder_end(r->rec, &run->rec); /* the run's memory is the recorder's now */
  j->running--;
  reap_adopted(r);
  if (!r->spare) r->spare = calloc(1, sizeof *r->spare);
}

/* ---- skipped ticks, and a job's end ---------------------------------------------------- */

int skip_reason_of(const chime_event *ev) {
  if (ev->reason != CHIME_SKIP_VETOED) return ev->reason;
  switch (ev->result) {
  case VETO_QUEUED: case VETO_SILENT: return -1; /* not skipped: it waits its turn, or another node runs it */
  case VETO_OVERLAP: return CHIME_SKIP_OVERLAP; /* an old version's run, or the fleet's */
  case VETO_PAUSED: return SKIP_PAUSED;
  default: return CHIME_SKIP_VETOED;
  }
}

static void ticks_skipped(struct runner *r, struct job *j, const chime_event *ev) {
  int reason = skip_reason_of(ev);
  if (reason < 0) return;
  j->status.runs[OUTCOME_SKIPPED] += ev->count;
  j->status.skipped[reason] += ev->count;
  struct logline l;
  log_begin(&l, "warn", "skip");
  log_str(&l, "job", j->conf->name);
  log_str(&l, "reason", skip_reason_name(reason));
  log_time(&l, "scheduled", ev->wall);
  if (ev->count > 1) {
    log_int(&l, "count", ev->count > LLONG_MAX ? LLONG_MAX : (long long)ev->count);
    log_time(&l, "last", ev->last_wall);
  }
  if (reason == CHIME_SKIP_VETOED) log_str(&l, "error", chime_strerror(ev->result));
  log_end(&l);
  recorder_skip(r->rec, j->conf->name, ev->wall, ev->last_wall, ev->count, reason,
                job_trigger(j, ev->tick, ev->triggered));
}

static void job_ended(struct runner *r, struct job *j, int result) {
  j->ended = true;
  if (result < 0 && result != -ECANCELED && !j->retired) r->failed = true;
  struct job *next = j->after;
  if (next) { /* its new version waited on it, and now waits on what it waited on */
    next->before = j->before;
    if (j->before) j->before->after = next;
    j->after = j->before = NULL;
    if (!next->before && next->queued_tick && next->started) chime_every_trigger(next->handle, next->queued_tick);
    if (!next->before) next->queued_tick = 0;
  }
  if (j->retired) return;
  r->active--;
  if (r->active == 0 && !r->stopping) chime_cancel(r->main);
}

/* Every event of every job comes here. */
static void job_event(const chime_event *ev) {
  struct job *j = ev->arg;
  struct runner *r = j->r;
  switch (ev->type) {
  case CHIME_EVENT_END: run_ended(r, j, ev); return; /* it tells the observers itself */
  case CHIME_EVENT_SKIP: ticks_skipped(r, j, ev); break;
  case CHIME_EVENT_DONE: job_ended(r, j, ev->result); break;
  default: break;
  }
  observe(r, j, ev, NULL);
}

/* Before each tick's run: the old version of the job, if a reload left one
 * running, is weighed by the new version's overlap policy. */
static int job_veto(const chime_event *tick) {
  struct job *j = tick->arg;
  /* the fleet weighs every run of the job, old versions too, and its
   * pause is the fleet's */
  if (j->fleet) return fleet_veto(j->r->fleet, j, tick);
  if (j->paused && job_trigger(j, tick->tick, tick->triggered) != TRIGGER_MANUAL) return VETO_PAUSED;
  unsigned older = 0; /* runs of its older versions, after reloads in a row */
  for (const struct job *old = j->before; old; old = old->before) older += old->running;
  if (older == 0) return 0;
  const struct job_conf *c = j->conf;
  switch (c->overlap) {
  case CHIME_OVERLAP_ALLOW: return older + j->running < c->max_concurrent ? 0 : VETO_OVERLAP;
  case CHIME_OVERLAP_REPLACE:
    for (struct job *old = j->before; old; old = old->before)
      if (old->running) old->replaced = true, chime_cancel(old->handle);
    return 0;
  case CHIME_OVERLAP_QUEUE:
    if (j->queued_tick) return VETO_OVERLAP; /* one waits; later ones are dropped */
    j->queued_tick = tick->tick;
    return VETO_QUEUED;
  default: return VETO_OVERLAP;
  }
}

/* ---- starting jobs --------------------------------------------------------------------- */

static void log_scheduled(const struct job *j) {
  chime_job_stats st;
  struct logline l;
  log_begin(&l, "info", "scheduled");
  log_str(&l, "job", j->conf->name);
  if (j->conf->cron) log_str(&l, "schedule", j->conf->schedule);
  else if (j->conf->reboot) log_str(&l, "schedule", "@reboot");
  else log_dur_text(&l, "every", j->conf->every);
  if (chime_every_stats(j->handle, &st) == 0 && st.next_wall != CHIME_NEVER) log_time(&l, "next", st.next_wall);
  log_end(&l);
}

/* A job with catch_up: the latest of its ticks that fell while chime was
 * down (after `last`, the latest on record, up to now) is run once, late,
 * by the library, under the job's overlap policy: triggered as the job
 * starts, it comes before the job's first tick. */
static void catch_up(struct job *j, chime_ns last) {
  chime_ns wall = chime_wall_now(), missed = job_latest_tick(j->conf, last, wall);
  if (!missed) return;
  struct logline l;
  log_begin(&l, "info", "catch_up");
  log_str(&l, "job", j->conf->name);
  log_time(&l, "missed", missed);
  log_time(&l, "last", last);
  log_end(&l);
  /* on the job's own clock: the wall clock's for a calendar, the loop's for an interval */
  chime_ns tick = j->conf->cron ? missed : chime_now() - (wall - missed);
  j->catch_up_tick = tick;
  int rc = chime_every_trigger(j->handle, tick);
  if (rc) log_msg("error", "catch_up", "job %s: no catch-up: %s", j->conf->name, chime_strerror(rc));
}

/* Starts a job; `at_start`: chime is starting (not reloading), so that a
 * job with catch_up runs the tick it missed while chime was down, after
 * `last` (0: nothing on record).  On a reload nothing was missed: ticks a
 * job's old version skipped (overlap, backoff) or that a new interval puts
 * in the past are not caught up. */
static int job_start(struct runner *r, struct job *j, bool at_start, chime_ns last) {
  const struct job_conf *c = j->conf;
  char key[JOB_NAME_MAX + 300];
  chime_every_opts o = {.overlap = c->overlap, .jitter = c->jitter, .spread = c->spread, .timeout = c->timeout,
                        .on_error = c->on_error, .max_runs = c->max_runs, .window = c->window, .name = c->name,
                        .on_event = job_event, .veto = job_veto};
  if (c->overlap == CHIME_OVERLAP_ALLOW) o.max_concurrent = c->max_concurrent;
  if (c->spread) { /* the key is NAME@hostname: the same job on other hosts is spread elsewhere */
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    snprintf(key, sizeof key, "%s@%s", c->name, host);
    o.key = key;
  }
  if (c->on_error == CHIME_ERROR_BACKOFF) o.backoff_base = c->backoff, o.backoff_max = c->backoff_max;
  bool fleet = fleet_owns(r->fleet, c);
  if (fleet) fleet_job_opts(r->fleet, j, &o);
  int rc;
  if (c->reboot) { /* once, when chime starts */
    o.start = CHIME_START_NOW, o.max_runs = 1;
    rc = at_start ? chime_every(CHIME_HOUR(1), run_target, j, &o, &j->handle) : 0;
    if (!at_start) return -EALREADY; /* a reload is not a start */
  } else if (c->cron) {
    o.tz = c->tz_name;
    rc = chime_cron(c->schedule, run_target, j, &o, &j->handle);
  } else {
    if (c->start_now) o.start = CHIME_START_NOW;
    rc = chime_every(c->every, run_target, j, &o, &j->handle);
  }
  if (rc) {
    log_msg("error", "not_started", "job %s: cannot be scheduled: %s", c->name,
            chime_every_error()[0] ? chime_every_error() : chime_strerror(rc));
    return rc;
  }
  j->started = true;
  r->active++;
  log_scheduled(j);
  if (!at_start || !c->catch_up || fleet) return 0; /* a fleet catches up from its watermark */
  if (!r->db_path)
    log_msg("warn", "catch_up", "job %s: catch_up needs the history database: ignored", c->name);
  else if (last)
    catch_up(j, last);
  return 0;
}

/* Adds a job for conf (taken) to the runner and starts it; a job that
 * cannot start is dropped, the others go on.  `before`: its old version,
 * still running (a reload). */
static void job_add(struct runner *r, struct job_conf *conf, bool at_start, struct job *before, chime_ns last) {
  struct job *j = calloc(1, sizeof *j);
  if (!j) {
    log_msg("error", "not_started", "job %s: out of memory", conf->name);
    job_free(conf);
    free(conf);
    return;
  }
  j->r = r, j->conf = conf;
  j->status.last_exit = -1;
  j->paused = control_paused(r->control, conf->name);
  while (before && before->ended) { /* its runs are over; a version older still may run (reloads in a row) */
    struct job *older = before->before;
    before->before = NULL;
    before = older;
  }
  if (before) j->before = before, before->after = j;
  if (job_start(r, j, at_start, last) != 0) {
    if (j->before) j->before->after = NULL;
    job_free(conf);
    free(conf);
    free(j);
    return;
  }
  j->next = r->jobs;
  r->jobs = j;
}

/* Cancels (if need be) and joins a job, and frees it. */
static void job_reap(struct runner *r, struct job *j) {
  if (j->started) chime_cancel(j->handle), chime_join(j->handle, NULL);
  for (struct job **p = &r->jobs; *p; p = &(*p)->next)
    if (*p == j) {
      *p = j->next;
      break;
    }
  if (j->after && j->after->before == j) j->after->before = NULL;
  if (j->before && j->before->after == j) j->before->after = NULL;
  job_free(j->conf);
  free(j->conf);
  free(j);
}

/* ---- reloading ------------------------------------------------------------------------------- */

/* A job changed or removed by a reload: its schedule stops (no tick of it
 * comes again), a run still going is left to finish; it is reaped at the
 * next reload or at shutdown. */
static void retire(struct runner *r, struct job *j) {
  j->retired = true;
  if (j->started) chime_every_stop(j->handle);
  if (!j->ended) r->active--;
}

/* Whether a reload is going on (it may suspend, reaping jobs). */
static bool reloading;

int runner_reload(struct runner *r, struct reload_report *rep) {
  if (!r->config_path) {
    log_msg("warn", "reload", "there is no config file to reload");
    return -ENOENT;
  }
  if (reloading) return -EBUSY;
  struct config *cfg = NULL;
  struct errors errs = {0};
  struct crontab_opts co = {.system = r->crontab == CRONTAB_SYSTEM, .euid = -1};
  if ((r->crontab ? crontab_load(r->config_path, &co, &cfg, &errs, NULL, NULL) : config_load(r->config_path, &cfg, &errs)) != 0) {
    for (const char *line = errs.text, *nl; line && *line; line = nl + 1) {
      nl = strchr(line, '\n');
      log_msg("error", "reload_error", "%.*s", (int)(nl - line), line);
    }
    log_msg("error", "reload", "%s: %d error(s): refused; the running config goes on", r->config_path, errs.count);
    if (rep) rep->errs = errs;
    else errors_free(&errs);
    return -EINVAL;
  }
  reloading = true;
  for (struct job *j = r->jobs, *next; j; j = next) { /* retired jobs that have ended */
    next = j->next;
    if (j->retired && j->ended) job_reap(r, j);
  }
  int kept = 0, stopped = 0, started = 0;
  struct job *old[cfg->njobs ? cfg->njobs : 1]; /* the old version of each new job, if one runs */
  memset(old, 0, sizeof old);
  for (struct job *j = r->jobs; j; j = j->next) {
    if (j->retired) continue;
    size_t i = 0;
    while (i < cfg->njobs && (!cfg->jobs[i] || strcmp(cfg->jobs[i]->name, j->conf->name) != 0)) i++;
    if (i < cfg->njobs && strcmp(cfg->jobs[i]->fingerprint, j->conf->fingerprint) == 0) {
      job_free(cfg->jobs[i]);
      free(cfg->jobs[i]);
      cfg->jobs[i] = NULL;
      kept++;
    } else {
      if (i < cfg->njobs && (j->running || j->before)) old[i] = j; /* it, or a version before it, runs */
      retire(r, j);
      stopped++;
    }
  }
  for (size_t i = 0; i < cfg->njobs; i++) {
    if (!cfg->jobs[i]) continue;
    job_add(r, cfg->jobs[i], false, old[i], 0);
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
  if (rep) rep->kept = kept, rep->started = started, rep->stopped = stopped;
  reloading = false;
  if (r->active == 0) chime_cancel(r->main);
  return 0;
}

/* ---- stopping ----------------------------------------------------------------------------------- */

static void log_stopping(const struct runner *r, int sig) {
  log_msg("info", "stopping", "%s: stopping every job (grace %.3fs)", sig == SIGINT ? "SIGINT" : "SIGTERM",
          (double)r->shutdown_grace / 1e9);
}

/* Sends sig to every child of chime (the processes it adopted, as a
 * subreaper, from runs that left their groups: a double fork, setsid) and
 * their groups.  Returns how many there were. */
static int end_adopted(int sig) {
  int n = 0;
  DIR *tasks = opendir("/proc/self/task");
  for (struct dirent *t; tasks && (t = readdir(tasks));) {
    char path[300];
    snprintf(path, sizeof path, "/proc/self/task/%s/children", t->d_name);
    FILE *f = t->d_name[0] != '.' ? fopen(path, "re") : NULL;
    for (int pid; f && fscanf(f, "%d", &pid) == 1; n++) {
      if (getpgid(pid) == pid) kill(-pid, sig);
      kill(pid, sig);
    }
    if (f) fclose(f);
  }
  if (tasks) closedir(tasks);
  return n;
}

/* A thread of the pool: reaps chime's children as they end, for *arg of
 * real time at most (the loop's clock may be virtual). */
static int wait_adopted(void *arg) {
  for (chime_ns waited = 0; waited < *(const chime_ns *)arg; waited += CHIME_MS(10)) {
    pid_t got;
    while ((got = waitpid(-1, NULL, WNOHANG)) > 0) {
    }
    if (got < 0) return 0; /* none left */
    nanosleep(&(struct timespec){.tv_nsec = 10000000}, NULL);
  }
  return 0;
}

/* During the shutdown: a second SIGTERM or SIGINT kills every child now.
 * A shutdown that no signal began (every job ended by its limits) lets
 * the runs left (a catch-up's) finish: the first signal then stops them,
 * as it would have stopped every run, and a second kills. */
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
      if (j->started) chime_cancel(j->handle);
  }
  if (chime_signal_wait(sigs, 2, CHIME_NEVER) < 0) return 0;
  log_msg("warn", "kill", "second signal: killing every run now");
  for (struct run *run = r->runs; run; run = run->next)
    if (run->pid > 0) kill(-run->pid, SIGKILL);
  end_adopted(SIGKILL); /* and what runs left in sessions of their own */
  return 0;
}

struct setup {
  struct runner *r;
  struct config *cfg;
};

/* CHIME_TEST_WALL (tests): the virtual wall clock starts at that many
 * seconds of the Unix epoch. */
static void test_wall(void) {
  const char *wall = getenv("CHIME_TEST_WALL");
  if (!wall) return;
  char *end;
  errno = 0;
  long long s = strtoll(wall, &end, 10);
  if (errno || *end || s < 0 || s > INT64_MAX / CHIME_SEC(1) || chime_wall_set(s * CHIME_SEC(1)) != 0)
    log_msg("warn", "config", "CHIME_TEST_WALL is seconds, for the virtual clock (CHIME_CLOCK=virtual) only: ignored");
}

static int main_task(void *arg) {
  struct setup *s = arg;
  struct runner *r = s->r;
  static const int sigs[] = {SIGHUP, SIGINT, SIGTERM};
  r->main = chime_self();
  test_wall();
  /* the signals are caught before any job runs: a signal from now on is kept */
  int sig = chime_signal_wait(sigs, 3, 0);
  if (sig != -ETIMEDOUT) {
    log_msg("error", "stop", "cannot wait for signals: %s", chime_strerror(sig));
    r->failed = true;
    return 0;
  }
  bool mail = false;
  for (size_t i = 0; i < s->cfg->njobs; i++)
    mail = mail || s->cfg->jobs[i]->mailto;
  const char *mailer = NULL;
  if (mail && cronenv_mailer(&mailer) != 0)
    log_msg("warn", "mail", "%s is not an executable mailer: the output of jobs with a mailto is not mailed",
            mailer);
  r->mailer = mail && cronenv_mailer(&mailer) == 0;
  if (control_start(r, s->cfg) != 0) { /* said */
    r->failed = true;
    return 0;
  }
  if (r->fleet && fleet_start(r->fleet, r) != 0) {
    control_stop(r);
    r->failed = true;
    return 0;
  }
  for (size_t i = 0; i < s->cfg->njobs; i++) {
    /* the tick a job with catch_up last ran, read before it starts (on the
     * pool: the history may be slow) */
    chime_ns last = 0;
    if (s->cfg->jobs[i]->catch_up && r->db_path && recorder_last_tick(r->rec, s->cfg->jobs[i]->name, &last) != 0)
      last = 0;
    job_add(r, s->cfg->jobs[i], true, NULL, last);
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
    control_ready(r);
    http_start(r->http);
  }
  sig = 0;
  while (r->active > 0) {
    sig = chime_signal_wait(sigs, 3, CHIME_NEVER);
    if (sig != SIGHUP) break;
    if (runner_reload(r, NULL) == -EBUSY) log_msg("warn", "reload", "SIGHUP: a reload is going on: not reloaded again");
  }
  chime_shield(true); /* the cleanup below waits, whatever cancelled us */
  r->stopping = true;
  r->stop_deadline = chime_now() + r->shutdown_grace;
  chime_task kill_task;
  bool by_signal = r->signalled = sig == SIGINT || sig == SIGTERM;
  if (by_signal) log_stopping(r, sig);
  control_stopping(r);
  bool killer_up = chime_spawn(killer, r, &kill_task) == 0;
  /* Every run gets its SIGTERM now, before any is waited for (a job that
   * ended by itself has none). */
  for (struct job *j = r->jobs; j; j = j->next)
    if (j->started) chime_cancel(j->handle);
  while (r->jobs) job_reap(r, r->jobs);
  reap_adopted(r);
  control_stop(r); /* the hooks going finish (within the grace) before what is left of chime's children is ended */
  if (r->fleet) fleet_stop(r->fleet, chime_now() + r->shutdown_grace + CHIME_SEC(5)); /* its guards are children too */
  if (end_adopted(SIGTERM)) { /* descendants of runs that left their groups: as a run's leftovers */
    chime_ns left = r->stop_deadline - chime_now();
    chime_to_thread(wait_adopted, &left, NULL);
    end_adopted(SIGKILL);
    chime_to_thread(wait_adopted, &(chime_ns){CHIME_SEC(1)}, NULL);
  }
  recorder_flush(r->rec, chime_now() + r->shutdown_grace + CHIME_SEC(5));
  if (killer_up) chime_cancel(kill_task), chime_join(kill_task, NULL);
  http_stop(r->http);
  log_msg("info", "stop", "chime stopped");
  return 0;
}

static void ignore_sigpipe(int sig) { (void)sig; }

int runner_main(struct config *cfg, const char *config_path, const char *db_path, bool db_make_dirs,
                chime_ns shutdown_grace) {
  struct runner r = {.config_path = config_path, .crontab = cfg->crontab, .db_path = db_path, .shutdown_grace = shutdown_grace};
  if (fleet_new(cfg, &r.fleet) != 0) return 1;
  r.spare = calloc(1, sizeof *r.spare);
  if (!r.spare || recorder_new(db_path, db_make_dirs, &r.rec) != 0) {
    fleet_free(r.fleet);
    free(r.spare);
    fprintf(stderr, "chime: out of memory\n");
    return 1;
  }
  char why[512];
  if (cfg->daemon.http[0] && strcmp(cfg->daemon.http, "none") != 0 &&
      http_new(&r, cfg->daemon.http, &r.http, why, sizeof why) != 0) {
    log_msg("error", "http", "%s", why);
    recorder_free(r.rec);
    free(r.spare);
    return 1;
  }
  struct sigaction sa = {.sa_handler = ignore_sigpipe, .sa_flags = SA_RESTART};
  sigemptyset(&sa.sa_mask);
  sigaction(SIGPIPE, &sa, NULL);
  if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0)
    log_msg("warn", "config", "not a child subreaper (%s): processes jobs leave behind go to init", strerror(errno));
  int loop_nice, jobs_nice;
  if (boost_loop(&loop_nice, &jobs_nice) > 0) { /* before the loop starts its threads */
    struct logline l;
    log_begin(&l, "info", "priority");
    log_int(&l, "loop_nice", loop_nice);
    log_int(&l, "jobs_nice", jobs_nice);
    log_end(&l);
  }
  struct setup s = {&r, cfg};
  chime_run_opts o = {.loop = {.stack_size = 512 * 1024}};
  int rc = chime_run(main_task, &s, &o, NULL);
  http_free(r.http);
  recorder_free(r.rec);
  fleet_free(r.fleet);
  free(r.spare);
  if (rc < 0) {
    fprintf(stderr, "chime: %s\n", chime_strerror(rc));
    return 1;
  }
  return r.failed ? 1 : 0;
}
