/* hook.c - failure and recovery hooks (hook.h).
 *
 * A run's END tells the hooks whether its job now needs one: a request
 * is made then, with what the hook will need of the run and of its job
 * (copied: a reload may free the job's config before the hook runs), and
 * put in its job's slot, one for on_failure and one for on_recovery; a
 * newer failure replaces the request waiting in its slot, and a failure
 * drops a recovery still waiting.  The slots are kept by job name, so a
 * job's versions across reloads share them, and one worker task per job
 * takes them one at a time: the failure first (once HOOK_GAP has passed
 * since its job's last on_failure hook), then the recovery.
 *
 * CHIME_RUN_ID is the run's row in the history, known once the recorder
 * has written the run's end: the recorder tells (recorder_on_end), and a
 * worker waits for that at most HOOK_ROW_WAIT, on a gate the telling
 * opens; a database that is slow or gone delays a hook by that much, no
 * more (CHIME_RUN_ID is then empty, and what the hook did is only
 * logged).
 */
#include "hook.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "argv.h"
#include "capture.h"
#include "child.h"
#include "gate.h"
#include "log.h"
#include "names.h"

enum { HOOK_FAILURE, HOOK_RECOVERY };
static const char *const hook_names[] = {"on_failure", "on_recovery"};

/* The CHIME_ variables a hook gets. */
#define HOOK_VARS 10

/* A hook to run. */
struct hook_req {
  int kind;
  struct job_conf cmd; /* what child.c needs: name, argv (the hook's), env, user, dir, clean_env */
  chime_ns timeout, kill_grace;
  const struct run_record *rec; /* its run's record, until the recorder has told of it */
  int64_t row;                  /* the run's row (0: none) */
  bool told;                    /* the recorder has told */
  struct gate gate;             /* opened when it tells */
  outcome result;               /* the run's */
  int exit_code, signal;
  chime_ns scheduled, duration;
  char *error; /* why the run could not start, or NULL */
  char *tail;  /* its output's tail, or NULL */
  size_t tail_len;
  unsigned long long failures; /* the failures it stands for */
};

/* A job's hooks, by name. */
struct hook_job {
  struct hooks *h;
  struct hook_req *waiting[2]; /* by kind */
  struct hook_req *current;    /* the one its worker has taken */
  bool running;                /* current's process runs (the stop lets it finish) */
  chime_task worker;
  bool worker_live;
  bool failing;                /* its latest run ended not ok */
  unsigned long long failures; /* failures since its last on_failure hook started */
  unsigned long long streak;   /* failures since its latest success */
  chime_ns next_failure;       /* no on_failure hook starts before (chime_now's clock); 0: at once */
  char name[JOB_NAME_MAX + 1];
};

struct hooks {
  struct runner *r;
  struct names jobs; /* name -> struct hook_job */
  bool stopping;
};

static void req_free(struct hook_req *q) {
  if (!q) return;
  free(q->cmd.name);
  free(q->cmd.argv);
  free(q->cmd.env);
  free(q->cmd.user);
  free(q->cmd.dir);
  free(q->error);
  free(q->tail);
  free(q);
}

/* A request for a hook of j after run, or NULL when out of memory. */
static struct hook_req *req_new(int kind, const struct job *j, const struct run *run) {
  const struct job_conf *c = j->conf;
  struct hook_req *q = calloc(1, sizeof *q);
  if (!q) return NULL;
  bool nomem = false;
  job_init(&q->cmd);
  q->kind = kind;
  q->cmd.name = strdup(c->name);
  q->cmd.argv = argv_copy(kind == HOOK_FAILURE ? c->failure_argv : c->recovery_argv, 0, &nomem);
  q->cmd.env = argv_copy(c->env, HOOK_VARS, &nomem); /* the CHIME_ variables go after the job's */
  q->cmd.user = c->user ? strdup(c->user) : NULL;
  q->cmd.dir = c->dir ? strdup(c->dir) : NULL;
  q->cmd.clean_env = c->clean_env;
  q->cmd.input = ""; /* a pipe: the output's tail goes there */
  q->timeout = c->hook_timeout, q->kill_grace = c->kill_grace;
  const struct run_record *rec = &run->rec;
  q->rec = rec;
  q->result = rec->result, q->exit_code = rec->exit_code, q->signal = rec->signal;
  q->scheduled = rec->scheduled, q->duration = rec->ended - rec->started;
  q->error = rec->error ? strdup(rec->error) : NULL;
  if (run->mail_len && (q->tail = malloc(run->mail_len)) != NULL) memcpy(q->tail, run->mail, run->mail_len);
  q->tail_len = q->tail ? run->mail_len : 0;
  if (nomem || !q->cmd.name || !q->cmd.argv || (c->user && !q->cmd.user) || (c->dir && !q->cmd.dir) ||
      (rec->error && !q->error) || (run->mail_len && !q->tail)) {
    req_free(q);
    return NULL;
  }
  return q;
}

/* ---- what the run was ------------------------------------------------------------ */

/* Adds NAME=VALUE to the request's environment (room was made for it). */
static void put_var(struct hook_req *q, char *buf, size_t *used, size_t size, const char *name, const char *value) {
  size_t n = 0;
  while (q->cmd.env[n])
    n++;
  int len = snprintf(buf + *used, size - *used, "%s=%s", name, value);
  if (len < 0 || (size_t)len >= size - *used) return;
  q->cmd.env[n] = buf + *used;
  *used += (size_t)len + 1;
}

/* The CHIME_ variables, in buf (kept while the hook starts). */
static void put_vars(struct hook_req *q, char *buf, size_t size) {
  size_t used = 0;
  char num[64], when[64];
  const char *sig = q->signal > 0 ? sigabbrev_np(q->signal) : NULL;
  put_var(q, buf, &used, size, "CHIME_JOB", q->cmd.name);
  put_var(q, buf, &used, size, "CHIME_HOOK", hook_names[q->kind]);
  put_var(q, buf, &used, size, "CHIME_OUTCOME", outcome_name(q->result));
  snprintf(num, sizeof num, "%d", q->exit_code);
  put_var(q, buf, &used, size, "CHIME_EXIT_CODE", q->exit_code >= 0 ? num : "");
  put_var(q, buf, &used, size, "CHIME_SIGNAL", q->signal > 0 ? sig ? sig : "?" : "");
  put_var(q, buf, &used, size, "CHIME_ERROR", q->error ? q->error : "");
  snprintf(num, sizeof num, "%lld", (long long)q->row);
  put_var(q, buf, &used, size, "CHIME_RUN_ID", q->row > 0 ? num : "");
  format_wall(q->scheduled, when, sizeof when);
  put_var(q, buf, &used, size, "CHIME_SCHEDULED", when);
  snprintf(num, sizeof num, "%.3f", (double)q->duration / 1e9);
  put_var(q, buf, &used, size, "CHIME_DURATION", num);
  snprintf(num, sizeof num, "%llu", q->failures);
  put_var(q, buf, &used, size, "CHIME_FAILURES", num);
}

/* ---- running one ---------------------------------------------------------------- */

/* What a hook's process holds while it runs: on the heap (the captures
 * are large). */
struct hook_run {
  struct child child;
  struct capture out, err;
  char why[512];
  char vars[8192];
};

/* Waits for the capture tasks, a second at most, then ends those left. */
static void join_captures(chime_task *t, int n) {
  chime_ns deadline = chime_now() + CHIME_SEC(1);
  for (int i = 0; i < n; i++)
    if (chime_join_until(t[i], deadline, NULL) != 0) chime_cancel(t[i]), chime_join(t[i], NULL);
}

/* Runs the hook's process to its end: fills *res (its strings in s). */
static void run_process(struct hook_job *hj, struct hook_req *q, struct hook_run *s, struct hook_result *res) {
  chime_task cap[2];
  int ncap = 0, in_fd = -1, status = 0;
  put_vars(q, s->vars, sizeof s->vars);
  int rc = child_prepare(&q->cmd, &s->child, s->why, sizeof s->why);
  struct capture *caps[2] = {&s->out, &s->err};
  for (int i = 0; !rc && i < 2; i++) {
    caps[i]->job = q->cmd.name, caps[i]->stream = i ? "hook_stderr" : "hook_stdout", caps[i]->fd = -1;
    if ((rc = chime_spawn(capture_task, caps[i], &cap[ncap])) == 0)
      ncap++;
    else
      snprintf(s->why, sizeof s->why, "cannot read its output: %s", chime_strerror(rc));
  }
  if (!rc) rc = child_spawn(&q->cmd, &s->child, &in_fd, s->why, sizeof s->why);
  for (int i = 0; i < ncap; i++)
    caps[i]->pid = s->child.pid, caps[i]->fd = s->child.proc ? chime_proc_fd(s->child.proc, i + 1) : -1;
  if (rc) {
    res->outcome = "error", res->error = s->why;
    join_captures(cap, ncap);
    child_release(&s->child);
    return;
  }
  hj->running = true;
  chime_ns deadline = chime_now() + q->timeout;
  if (in_fd >= 0) {
    int w = chime_write_all(in_fd, q->tail ? q->tail : "", q->tail_len, deadline, NULL);
    if (w && w != -EPIPE && w != -ECANCELED && w != -ETIMEDOUT)
      log_msg("warn", "hook", "job %s: %s: its input was not all written: %s", q->cmd.name, hook_names[q->kind],
              chime_strerror(w));
    if (chime_close(in_fd) != 0) close(in_fd);
  }
  int w = chime_proc_wait(s->child.proc, deadline, &status);
  if (w < 0) { /* its timeout, or the daemon's stop */
    chime_shield(true);
    chime_proc_terminate(s->child.proc, w == -ETIMEDOUT ? q->kill_grace : CHIME_SEC(1), &status);
    snprintf(s->why, sizeof s->why, w == -ETIMEDOUT ? "still going after its hook_timeout" : "chime stopped");
    res->error = s->why;
  }
  kill(-s->child.pid, SIGKILL); /* what it left in its group */
  join_captures(cap, ncap);
  chime_shield(false);
  child_release(&s->child);
  hj->running = false;
  if (WIFEXITED(status)) res->exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) res->signal = WTERMSIG(status);
  res->outcome = w == -ETIMEDOUT  ? "timeout"
                 : w < 0          ? "stopped"
                 : res->signal    ? "signal"
                 : res->exit_code ? "failed"
                                  : "ok";
}

static void log_hook(const struct hook_req *q, const struct hook_result *res, chime_ns took) {
  struct logline l;
  bool ok = strcmp(res->outcome, "ok") == 0;
  log_begin(&l, ok ? "info" : "error", "hook");
  log_str(&l, "job", q->cmd.name);
  log_str(&l, "hook", res->hook);
  log_str(&l, "outcome", res->outcome);
  if (res->exit_code >= 0) log_int(&l, "exit", res->exit_code);
  if (res->signal > 0) log_str(&l, "signal", sigabbrev_np(res->signal) ? sigabbrev_np(res->signal) : "?");
  log_dur(&l, "duration", took);
  if (q->row > 0) log_int(&l, "run_id", q->row);
  log_int(&l, "failures", q->failures > LLONG_MAX ? LLONG_MAX : (long long)q->failures);
  if (res->error) log_str(&l, "error", res->error);
  log_end(&l);
}

/* Runs a request's hook: waits for its run's row first (at most
 * HOOK_ROW_WAIT), then its process; logs and records what it did. */
static void run_hook(struct hook_job *hj, struct hook_req *q) {
  if (!q->told && gate_arm(&q->gate) == 0 && gate_wait(&q->gate, chime_now() + HOOK_ROW_WAIT) == -ECANCELED)
    return; /* the daemon stops */
  struct hook_result res = {.hook = hook_names[q->kind], .exit_code = -1};
  struct hook_run *s = calloc(1, sizeof *s);
  chime_ns t0 = chime_now();
  if (s)
    run_process(hj, q, s, &res);
  else
    res.outcome = "error", res.error = "out of memory";
  log_hook(q, &res, chime_now() - t0);
  recorder_hook(hj->h->r->rec, q->row, &res);
  free(s);
}

/* A job's worker: its hooks one at a time, until none waits. */
static int worker(void *arg) {
  struct hook_job *hj = arg;
  for (;;) {
    struct hook_req *q = hj->waiting[HOOK_FAILURE];
    if (q && chime_now() < hj->next_failure) { /* the gap: a newer failure may take its place meanwhile */
      if (chime_sleep_until(hj->next_failure) != 0) break;
      continue;
    }
    if (q) {
      hj->next_failure = chime_now() + HOOK_GAP;
      q->failures = hj->failures, hj->failures = 0;
    } else if (!(q = hj->waiting[HOOK_RECOVERY])) {
      break;
    }
    hj->waiting[q->kind] = NULL;
    hj->current = q;
    run_hook(hj, q);
    hj->current = NULL;
    req_free(q);
    if (chime_cancelled()) break;
  }
  return 0;
}

/* ---- when runs end ------------------------------------------------------------ */

/* Puts a request in its slot (what waited there is dropped) and makes sure
 * a worker will take it. */
static void enqueue(struct hook_job *hj, struct hook_req *q) {
  req_free(hj->waiting[q->kind]);
  hj->waiting[q->kind] = q;
  if (hj->worker_live && chime_task_done(hj->worker) == 1) chime_join(hj->worker, NULL), hj->worker_live = false;
  if (!hj->worker_live && chime_spawn(worker, hj, &hj->worker) == 0) hj->worker_live = true;
  if (!hj->worker_live) { /* no memory for a task: the next run's end tries again */
    hj->waiting[q->kind] = NULL;
    req_free(q);
  }
}

static bool failed(outcome o) {
  return o == OUTCOME_FAILED || o == OUTCOME_SIGNAL || o == OUTCOME_TIMEOUT || o == OUTCOME_ERROR;
}

void hooks_run_ended(struct hooks *h, const struct job *j, const struct run *run) {
  const struct job_conf *c = j->conf;
  if ((!c->failure_argv && !c->recovery_argv) || !run || h->stopping) return;
  outcome o = run->rec.result;
  if (!failed(o) && o != OUTCOME_OK) return; /* stopped, replaced: no word on the job */
  struct hook_job *hj = names_get(&h->jobs, c->name);
  if (!hj) {
    if (!(hj = calloc(1, sizeof *hj)) || names_put(&h->jobs, c->name, hj) != 0) {
      free(hj);
      log_msg("error", "hook", "job %s: out of memory: no hook for its run", c->name);
      return;
    }
    hj->h = h;
    snprintf(hj->name, sizeof hj->name, "%s", c->name);
  }
  int kind = -1;
  if (failed(o)) {
    hj->failures++, hj->streak++;
    hj->failing = true;
    req_free(hj->waiting[HOOK_RECOVERY]); /* it fails again: no recovery to tell */
    hj->waiting[HOOK_RECOVERY] = NULL;
    if (c->failure_argv) kind = HOOK_FAILURE;
  } else {
    if (hj->failing && c->recovery_argv) kind = HOOK_RECOVERY;
    hj->failing = false;
  }
  if (kind < 0) return;
  struct hook_req *q = req_new(kind, j, run);
  if (!q) {
    log_msg("error", "hook", "job %s: out of memory: no %s hook for its run", c->name, hook_names[kind]);
    return;
  }
  if (kind == HOOK_RECOVERY) q->failures = hj->streak, hj->streak = 0;
  enqueue(hj, q);
}

/* The recorder's word on a run's end: the row of the request waiting for
 * it, and its gate opened. */
static void written(void *ctx, const struct run_record *r, int64_t row) {
  struct hooks *h = ctx;
  struct hook_job *hj = names_get(&h->jobs, r->job);
  if (!hj) return;
  struct hook_req *qs[3] = {hj->waiting[0], hj->waiting[1], hj->current};
  for (int i = 0; i < 3; i++)
    if (qs[i] && qs[i]->rec == r) {
      qs[i]->rec = NULL, qs[i]->row = row, qs[i]->told = true;
      gate_open(&qs[i]->gate);
    }
}

int hooks_new(struct runner *r, struct hooks **out) {
  struct hooks *h = calloc(1, sizeof *h);
  if (!h) return -ENOMEM;
  h->r = r;
  recorder_on_end(r->rec, written, h);
  *out = h;
  return 0;
}

/* ---- stopping ------------------------------------------------------------------------ */

/* hooks_stop's walks over the jobs. */
struct stop_walk {
  int dropped;
  chime_ns deadline;
  bool cancel; /* the last walk: every worker still going is cancelled */
};

/* A failure hook that waits for its job's gap is dropped, and so is the
 * recovery behind it; the others run, until the deadline. */
static void drop_waiting(void *ctx, const char *name, void *value) {
  struct stop_walk *w = ctx;
  struct hook_job *hj = value;
  (void)name;
  if (!hj->waiting[HOOK_FAILURE] || chime_now() >= hj->next_failure) return;
  for (int k = 0; k < 2; k++) {
    w->dropped += hj->waiting[k] != NULL;
    req_free(hj->waiting[k]);
    hj->waiting[k] = NULL;
  }
  if (hj->worker_live && !hj->current) chime_cancel(hj->worker); /* it sleeps through the gap */
}

static void join_worker(void *ctx, const char *name, void *value) {
  const struct stop_walk *w = ctx;
  struct hook_job *hj = value;
  (void)name;
  if (!hj->worker_live) return;
  if (w->cancel) chime_cancel(hj->worker);
  if (chime_join_until(hj->worker, w->cancel ? CHIME_NEVER : w->deadline, NULL) == 0) hj->worker_live = false;
}

void hooks_stop(struct hooks *h, chime_ns deadline) {
  struct stop_walk w = {.deadline = deadline};
  h->stopping = true;
  names_each(&h->jobs, drop_waiting, &w);
  if (w.dropped) log_msg("warn", "hook", "chime stops: %d hook(s) that waited are not run", w.dropped);
  names_each(&h->jobs, join_worker, &w); /* those going finish, until the deadline */
  w.cancel = true;
  names_each(&h->jobs, join_worker, &w);
}

static void job_free_hooks(void *value) {
  struct hook_job *hj = value;
  req_free(hj->waiting[0]);
  req_free(hj->waiting[1]);
  free(hj);
}

void hooks_free(struct hooks *h) {
  if (!h) return;
  recorder_on_end(h->r->rec, NULL, NULL);
  names_clear(&h->jobs, job_free_hooks);
  free(h);
}
