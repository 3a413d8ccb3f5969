/* run.c - one run of a job: a child in its own process group, its output
 * captured, its end recorded.
 *
 * A run is a task of the periodic job.  It records the run, starts the
 * child with stdout and stderr on pipes read by two capture tasks, and
 * waits for it.  A cancellation (the job's timeout, an overlapping run
 * replacing it, or the shutdown) ends the child: SIGTERM to its group, then
 * SIGKILL after the grace period, with cancellation held back meanwhile so
 * that the record is always completed.  Processes the child left behind in
 * its group are ended the same way: no orphan outlives its run.
 *
 * The library keeps a job's own runs from overlapping; runs it does not
 * see, a catch-up run and the runs of a job's version before a reload, go
 * through the same policy here (overlap_clear) before they start.
 */
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "capture.h"
#include "log.h"
#include "runner.h"

extern char **environ;

/* Why a run ended early, by what cancelled it: the shutdown, a newer run
 * (which marks the runs it replaces), or else the job's timeout, the only
 * other cancellation.  Not from the time the run took: the library counts
 * the timeout from the tick, and a run may have waited for its turn
 * (overlap_clear) before it started. */
static const char *cancel_reason(const struct run *run) {
  if (run->job->r->stopping) return "stopped";
  return run->replaced ? "replaced" : "timeout";
}

/* The environment of the child: the daemon's, with the job's env (and,
 * for a user, HOME, USER and LOGNAME) over it.  One allocation, which
 * holds the user's three variables too; NULL when out of memory. */
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
    bool later = false; /* a later entry of the same name wins */
    for (size_t k = i + 1; k < total + nadd + njob && !later; k++) {
      const char *w = k < total ? environ[k] : k < total + nadd ? add[k - total] : c->env[k - total - nadd];
      later = strncmp(v, w, klen) == 0 && w[klen] == '=';
    }
    if (!later) env[n++] = (char *)v;
  }
  env[n] = NULL;
  return env;
}

/* Fills *pw (with buf) for the job's user.  0, or -EINVAL with why. */
static int find_user(const char *user, struct passwd *pw, char *buf, size_t size, char *why, size_t why_size) {
  struct passwd *found = NULL;
  char *end;
  unsigned long uid = strtoul(user, &end, 10);
  int rc = *end || !*user ? getpwnam_r(user, pw, buf, size, &found) : getpwuid_r((uid_t)uid, pw, buf, size, &found);
  if (!found) {
    snprintf(why, why_size, "user %s: %s", user, rc ? strerror(rc) : "no such user");
    return -EINVAL;
  }
  if (geteuid() != 0 && pw->pw_uid != geteuid()) {
    snprintf(why, why_size, "user %s: chime must run as root to run a job as another user", user);
    return -EPERM;
  }
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

void reap_adopted(const struct runner *r) {
  for (;;) {
    siginfo_t si = {.si_pid = 0};
    if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) != 0 || si.si_pid == 0) return;
    for (const struct run *x = r->runs; x; x = x->next)
      if (x->pid == si.si_pid) return; /* a run's child, which its run reaps */
    waitpid(si.si_pid, NULL, WNOHANG);
  }
}

static void log_start(const struct job *j, int pid, chime_ns sched, chime_ns late, bool catch_up) {
  struct logline l;
  log_begin(&l, "info", "start");
  log_str(&l, "job", j->conf->name);
  log_int(&l, "pid", pid);
  log_time(&l, "scheduled", sched);
  log_dur(&l, "late", late);
  if (catch_up) log_str(&l, "catch_up", "true");
  log_end(&l);
}

static void log_end_of_run(const struct job *j, int pid, const struct run_result *res, chime_ns duration,
                           chime_ns late) {
  struct logline l;
  log_begin(&l, strcmp(res->outcome, "ok") == 0 ? "info" : "warn", "end");
  log_str(&l, "job", j->conf->name);
  if (pid) log_int(&l, "pid", pid);
  log_str(&l, "outcome", res->outcome);
  if (res->exit_code >= 0) log_int(&l, "exit", res->exit_code);
  if (res->signal > 0) log_str(&l, "signal", sigabbrev_np(res->signal) ? sigabbrev_np(res->signal) : "?");
  log_dur(&l, "duration", duration);
  log_dur(&l, "late", late);
  if (res->error) log_str(&l, "error", res->error);
  log_end(&l);
}

/* Everything a run holds: on the heap, not on the task's stack. */
struct run_state {
  struct capture out, err;
  char tail_out[CAPTURE_TAIL], tail_err[CAPTURE_TAIL];
  char pwbuf[4096];
  char why[512];
};

/* The cleanup of a run once its child has gone.  A cancellation (the
 * job's timeout, a replacing run, the shutdown) may come at any point of
 * it: the first one seen names the outcome, and later waits are shielded,
 * so that the capture tasks are always joined before their memory goes. */
struct cleanup {
  const struct run *run;
  const char *reason; /* why the run was cancelled; NULL: it was not */
};

static void note_cancel(struct cleanup *x) {
  if (!x->reason) x->reason = cancel_reason(x->run);
  chime_shield(true);
}

/* chime_join_until through cancellations, which are noted. */
static int join_noting(struct cleanup *x, chime_task t, chime_ns deadline) {
  int rc;
  while ((rc = chime_join_until(t, deadline, NULL)) == -ECANCELED) note_cancel(x);
  return rc;
}

/* Waits for the capture tasks; a pipe held open by a process outside the
 * group is given up on after a second: a task not joined by then is
 * cancelled and joined. */
static void join_captures(struct cleanup *x, chime_task *t, int n) {
  chime_ns deadline = chime_now() + CHIME_SEC(1);
  for (int i = 0; i < n; i++) {
    if (join_noting(x, t[i], deadline) != 0) {
      chime_cancel(t[i]);
      join_noting(x, t[i], CHIME_NEVER);
    }
  }
}

/* A pool thread: reaps the group's processes that are chime's children
 * (leftovers it adopted, SIGKILLed) as they die, for a second at most, in
 * real time (the loop's clock may be virtual, and SIGKILL takes a moment). */
static int reap_group(void *arg) {
  pid_t pgid = *(const int *)arg;
  for (int i = 0; i < 200; i++) {
    pid_t got = waitpid(-pgid, NULL, WNOHANG);
    if (got < 0) return 0; /* none left */
    if (got == 0) nanosleep(&(struct timespec){.tv_nsec = 5000000}, NULL);
  }
  return 0;
}

/* After the child has gone: processes it left in its group get SIGTERM,
 * then SIGKILL once they close its pipes or the grace period ends; they are
 * reaped as they end (chime adopts them, as a subreaper or as PID 1).
 * Capture tasks joined meanwhile are removed from the array; returns how
 * many are left. */
static int end_leftovers(struct cleanup *x, int pid, bool exited, chime_task *captures, int n) {
  if (kill(-pid, 0) != 0) return n;
  if (exited)
    log_msg("warn", "leftover", "job %s: processes left in the group of pid %d: ending them", x->run->job->conf->name,
            pid);
  kill(-pid, SIGTERM);
  const struct runner *r = x->run->job->r;
  chime_ns deadline = chime_now() + x->run->job->conf->kill_grace;
  if (r->stopping && r->stop_deadline < deadline) deadline = r->stop_deadline;
  int left = 0;
  for (int i = 0; i < n; i++)
    if (join_noting(x, captures[i], deadline) != 0) captures[left++] = captures[i];
  kill(-pid, SIGKILL);
  if (chime_cancelled()) note_cancel(x);
  if (chime_to_thread(reap_group, &pid, NULL) == -ECANCELED) note_cancel(x);
  return left;
}

/* Until when a run waits for its child before it logs the ticks skipped
 * meanwhile: just after the job's next tick (which the library counts as
 * skipped while this run goes on, with overlap = skip), so that each skip
 * is logged as it falls, not when the run ends; or `deadline`. */
static chime_ns skip_watch(const struct job *j, bool catch_up, chime_ns deadline) {
  chime_job_stats st;
  if (catch_up || j->conf->overlap != CHIME_OVERLAP_SKIP || !j->started || chime_every_stats(j->handle, &st) != 0 ||
      st.next == CHIME_NEVER)
    return deadline;
  chime_ns at = st.next + j->conf->window + CHIME_MS(1), soonest = chime_now() + CHIME_MS(10);
  if (at < soonest) at = soonest; /* the tick not handled yet: look again a little later */
  return at < deadline ? at : deadline;
}

/* Records the end of run *id, and its start first if that could not be
 * recorded (*id < 0); what fails (out of memory, a busy disk) is tried once
 * more 10 ms later, and then logged. */
static void record_run(const struct runner *r, struct history *h, int64_t *id, const char *job, chime_ns sched,
                       chime_ns started, chime_ns late, int pid, const struct run_result *res) {
  for (int attempt = 0;; attempt++) {
    if (*id < 0) *id = history_start(h, job, sched, started, late, pid);
    if (*id > 0 && history_end(h, *id, res) == 0) return;
    if (attempt == 1) break;
    chime_sleep(CHIME_MS(10));
  }
  log_msg("error", "history", "history database %s: cannot record a run of %s: %s", r->db_path, job, history_error(h));
}

static int run_once(struct job *j, chime_ns sched, chime_ns late, bool catch_up) {
  struct runner *r = j->r;
  const struct job_conf *c = j->conf;
  struct run_state *s = calloc(1, sizeof *s);
  if (!s) { /* logged and recorded all the same */
    static const char why[] = "out of memory: the run could not start";
    log_msg("error", "start_failed", "job %s: %s", c->name, why);
    struct history *h = runner_history(r);
    struct run_result res = {.outcome = "error", .exit_code = -1, .error = why, .ended = chime_wall_now()};
    int64_t id = -1;
    if (h) record_run(r, h, &id, c->name, sched, res.ended, late, 0, &res);
    return -ENOMEM;
  }
  struct run me = {.job = j, .catch_up = catch_up, .next = r->runs};
  if (r->runs) r->runs->prev = &me;
  r->runs = &me;
  j->running++;
  chime_ns started = chime_now();
  struct run_result res = {.outcome = "error", .exit_code = -1};
  struct passwd pw, *ppw = NULL;
  int rc = 0;
  struct stat st;
  if (c->user && (rc = find_user(c->user, &pw, s->pwbuf, sizeof s->pwbuf, s->why, sizeof s->why)) == 0) ppw = &pw;
  if (!rc && c->dir && stat(c->dir, &st) != 0)
    rc = -errno, snprintf(s->why, sizeof s->why, "dir %s: %s", c->dir, strerror(errno));
  char **env = rc ? NULL : job_env(c, ppw);
  if (!rc && !env) rc = -ENOMEM, snprintf(s->why, sizeof s->why, "out of memory");
  unsigned *groups = NULL;
  int ngroups = 0;
  if (!rc && ppw && geteuid() == 0 && (ngroups = user_groups(ppw->pw_name, ppw->pw_gid, &groups)) < 0)
    rc = ngroups, snprintf(s->why, sizeof s->why, "user %s: its groups: %s", c->user, chime_strerror(rc));
  /* The capture tasks first: a child whose output nobody read would block
   * on a full pipe.  They start when this task first waits, by when their
   * descriptors are set. */
  chime_task cap[2];
  int ncap = 0;
  struct capture *caps[2] = {&s->out, &s->err};
  for (int i = 0; !rc && i < 2; i++) {
    caps[i]->job = c->name, caps[i]->stream = i ? "stderr" : "stdout", caps[i]->fd = -1;
    if ((rc = chime_spawn(capture_task, caps[i], &cap[ncap])) == 0)
      ncap++;
    else
      snprintf(s->why, sizeof s->why, "cannot read its output: %s", chime_strerror(rc));
  }
  chime_proc *proc = NULL;
  if (!rc) {
    /* Every signal at its default in the child, however chime was started
     * (a shell starting it in the background ignores SIGINT and SIGQUIT). */
    chime_proc_opts po = {.envp = (const char *const *)env, .cwd = c->dir, .in = {.mode = CHIME_STDIO_NULL},
                          .out = {.mode = CHIME_STDIO_PIPE}, .err = {.mode = CHIME_STDIO_PIPE},
                          .reset_signals = true};
    if (groups) /* root: the user's uid, gid and groups; else it is chime's own user */
      po.as_user = true, po.uid = ppw->pw_uid, po.gid = ppw->pw_gid, po.groups = groups, po.ngroups = (unsigned)ngroups;
    rc = chime_proc_spawn((const char *const *)c->argv, &po, &proc);
    if (rc == -ENOENT || rc == -EACCES)
      snprintf(s->why, sizeof s->why, "cannot run %s: %s", c->argv[0],
               rc == -ENOENT ? "no such program (or directory)" : "permission denied");
    else if (rc)
      snprintf(s->why, sizeof s->why, "cannot run %s: %s", c->argv[0], chime_strerror(rc));
  }
  free(groups);
  if (proc) me.pid = chime_proc_pid(proc);
  for (int i = 0; i < ncap; i++) /* fd -1: the task ends at once */
    caps[i]->pid = me.pid, caps[i]->fd = proc ? chime_proc_fd(proc, i + 1) : -1;
  struct history *h = runner_history(r); /* the spawn did not suspend: this is still the start */
  chime_ns started_wall = chime_wall_now();
  int64_t id = h ? history_start(h, c->name, sched, started_wall, late, me.pid) : 0;
  if (id < 0)
    log_msg("error", "history",
            "history database %s: cannot record the start of a run of %s (tried again at its end): %s", r->db_path,
            c->name, history_error(h));
  chime_ns duration = 0;
  struct cleanup x = {.run = &me};
  if (rc) {
    res.error = s->why;
    log_msg("error", "start_error", "job %s: %s", c->name, s->why);
    join_captures(&x, cap, ncap);
  } else {
    log_start(j, me.pid, sched, late, catch_up);
    int status = 0;
    /* A tick's run is timed by the library (a cancellation); a catch-up
     * run, which the library does not see, by its own deadline. */
    chime_ns deadline = catch_up && c->timeout ? started + c->timeout : CHIME_NEVER;
    int w;
    while ((w = chime_proc_wait(proc, skip_watch(j, catch_up, deadline), &status)) == -ETIMEDOUT &&
           chime_now() < deadline)
      job_log_skips(j);
    if (w < 0) { /* the job's timeout, a replacing run, or the shutdown */
      if (w == -ETIMEDOUT) x.reason = "timeout";
      note_cancel(&x);
      chime_ns left = r->stop_deadline - chime_now(); /* the shutdown's grace, shared by every run */
      chime_proc_terminate(proc, !r->stopping ? c->kill_grace : left > 0 ? left : 0, &status);
    }
    join_captures(&x, cap, end_leftovers(&x, me.pid, w == 0, cap, ncap));
    chime_proc_free(proc);
    if (WIFEXITED(status)) res.exit_code = WEXITSTATUS(status);
    if (WIFSIGNALED(status)) res.signal = WTERMSIG(status);
    res.outcome = x.reason ? x.reason : res.exit_code == 0 ? "ok" : res.signal ? "signal" : "failed";
    res.out_len = capture_tail(&s->out, s->tail_out);
    res.err_len = capture_tail(&s->err, s->tail_err);
    res.out = s->tail_out, res.err = s->tail_err;
    duration = chime_now() - started;
  }
  res.ended = chime_wall_now();
  log_end_of_run(j, me.pid, &res, duration, late);
  if (h) record_run(r, h, &id, c->name, sched, started_wall, late, me.pid, &res);
  free(env);
  free(s);
  if (me.prev) me.prev->next = me.next;
  else r->runs = me.next;
  if (me.next) me.next->prev = me.prev;
  reap_adopted(r);
  j->running--;
  int result = strcmp(res.outcome, "ok") == 0 ? 0 : chime_cancelled() ? -ECANCELED : -EIO;
  chime_shield(false);
  return result;
}

chime_ns job_next_tick(const struct job *j, chime_ns after) {
  chime_ns t;
  if (j->conf->cron) return chime_cron_next(j->conf->cron, j->conf->tz, after, &t) == 0 ? t : 0;
  return after + j->conf->every;
}

chime_ns job_latest_tick(const struct job *j, chime_ns after, chime_ns until) {
  if (!j->conf->cron) {
    chime_ns k = (until - after) / j->conf->every;
    return k > 0 ? after + k * j->conf->every : 0;
  }
  /* Look back from `until` over a span that grows fourfold until it holds
   * a tick, then walk forward to the last one: a few dozen steps, however
   * long the downtime and dense the schedule. */
  for (chime_ns back = CHIME_MIN(1);; back *= 4) {
    chime_ns from = until - back <= after ? after : until - back;
    chime_ns t = job_next_tick(j, from);
    if (t && t <= until) {
      for (chime_ns n; (n = job_next_tick(j, t)) != 0 && n <= until;) t = n;
      return t;
    }
    if (from == after) return 0;
  }
}

/* The line of a skipped tick (sched 0: its time is not known). */
static void log_skip(const struct job *j, const char *reason, chime_ns sched) {
  struct logline l;
  log_begin(&l, "warn", "skip");
  log_str(&l, "job", j->conf->name);
  log_str(&l, "reason", reason);
  if (sched) log_time(&l, "scheduled", sched);
  log_end(&l);
}

void job_log_skips(struct job *j) {
  static const char *const reasons[3] = {"overlap", "missed", "backoff"};
  chime_job_stats st;
  if (!j->started || chime_every_stats(j->handle, &st) != 0) return;
  const uint64_t now[3] = {st.skipped_overlap, st.skipped_missed, st.skipped_backoff};
  for (int k = 0; k < 3; k++) {
    for (; j->seen[k] < now[k]; j->seen[k]++) {
      if (j->last_tick) j->last_tick = job_next_tick(j, j->last_tick);
      log_skip(j, reasons[k], j->last_tick);
    }
  }
}


/* Runs of the job's name going now that the library does not count
 * against this one: the catch-up run's and those of the job's version
 * before a reload; for the catch-up run, every other. */
static unsigned others_running(const struct job *j, bool catch_up) {
  unsigned n = 0;
  for (const struct run *x = j->r->runs; x; x = x->next)
    n += strcmp(x->job->conf->name, j->conf->name) == 0 && (catch_up || x->job != j || x->catch_up);
  return n;
}

/* How often a queued run looks whether the runs before it have ended:
 * only a catch-up run or a reload makes one wait at all. */
#define QUEUE_POLL CHIME_MS(50)

/* The job's overlap policy applied to those runs: whether this run may
 * start (with queue, once they have ended; with replace, stopping them). */
static bool overlap_clear(struct job *j, bool catch_up) {
  unsigned others = others_running(j, catch_up);
  chime_job_stats st;
  if (others == 0) return true;
  switch (j->conf->overlap) {
  case CHIME_OVERLAP_SKIP:
    return false;
  case CHIME_OVERLAP_ALLOW: /* the job's own runs (this one too) and the others */
    return others + (!catch_up && chime_every_stats(j->handle, &st) == 0 ? st.running : 1) <= j->conf->max_concurrent;
  case CHIME_OVERLAP_QUEUE:
    while (others_running(j, catch_up) > 0)
      if (chime_sleep(QUEUE_POLL) != 0) return false;
    return true;
  case CHIME_OVERLAP_REPLACE:
    if (catch_up) return false; /* a tick's run is newer than the tick caught up */
    for (struct run *x = j->r->runs; x; x = x->next)
      if (strcmp(x->job->conf->name, j->conf->name) == 0 && (x->job != j || x->catch_up)) x->replaced = true;
    for (struct job *o = j->r->jobs; o; o = o->next)
      if (o != j && o->running && strcmp(o->conf->name, j->conf->name) == 0) {
        if (o->started) chime_cancel(o->handle);
        if (o->catching_up) chime_cancel(o->catch_up);
      }
    if (j->catching_up) chime_cancel(j->catch_up);
    return true;
  }
  return true;
}

int run_tick(void *arg) {
  struct job *j = arg;
  chime_ns late = 0;
  chime_run_info info = {0};
  chime_current_run(&info);
  chime_ns sched = info.wall;
  chime_job_stats st;
  if (chime_every_stats(j->handle, &st) == 0) late = st.last_late;
  /* With replace, the library has just cancelled the job's runs going. */
  if (j->conf->overlap == CHIME_OVERLAP_REPLACE)
    for (struct run *x = j->r->runs; x; x = x->next)
      if (x->job == j && !x->catch_up) x->replaced = true;
  if (j->retired || j->r->stopping) return 0;
  if (!j->last_tick) j->last_tick = sched;
  /* Skipped ticks logged now lie between the last one and this one. */
  job_log_skips(j);
  j->last_tick = sched;
  if (!overlap_clear(j, false)) {
    log_skip(j, "overlap", sched);
    return 0;
  }
  int rc = run_once(j, sched, late, false);
  job_log_skips(j);
  return rc;
}

/* The latest tick that fell while chime was down runs once, late, with
 * that tick as its scheduled time. */
int run_catch_up(void *arg) {
  struct job *j = arg;
  struct history *h = runner_history(j->r);
  chime_ns last;
  if (chime_cancelled() || !h || history_last_scheduled(h, j->conf->name, &last) != 0) return 0;
  chime_ns missed = job_latest_tick(j, last, chime_wall_now());
  if (!missed) return 0;
  struct logline l;
  log_begin(&l, "info", "catch_up");
  log_str(&l, "job", j->conf->name);
  log_time(&l, "missed", missed);
  log_time(&l, "last", last);
  log_end(&l);
  if (!overlap_clear(j, true)) {
    log_skip(j, "overlap", missed);
    return 0;
  }
  return run_once(j, missed, chime_wall_now() - missed, true);
}
