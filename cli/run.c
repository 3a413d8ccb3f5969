/* run.c - one run of a job, in its phases: the child is prepared and
 * started with its output captured, its start recorded, its input given,
 * its end waited for (or brought about), what it left behind ended, and
 * what it did kept for the run's end event (runner.c), which logs and
 * records it.
 *
 * A run is the target of the job's library run: the library starts it at
 * its tick, times it (opts.timeout), cancels it when a newer run replaces
 * it or the daemon stops, and tells how it ended.  A cancellation ends the
 * child: SIGTERM to its group, then SIGKILL after the job's kill grace (at
 * shutdown, the grace every run shares), with cancellation held back
 * meanwhile so that the record is always completed.  Processes the child
 * left behind in its group are ended the same way: no orphan outlives its
 * run.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "capture.h"
#include "child.h"
#include "control.h"
#include "fleet.h"
#include "log.h"
#include "procinfo.h"
#include "runner.h"

struct run *run_find(const struct runner *r, const struct job *job, uint64_t number) {
  for (struct run *x = r->runs; x; x = x->next)
    if (x->job == job && x->number == number) return x;
  return NULL;
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

static void log_start(const struct run *run) {
  struct logline l;
  log_begin(&l, "info", "start");
  log_str(&l, "job", run->rec.job);
  log_int(&l, "pid", run->pid);
  log_time(&l, "scheduled", run->rec.scheduled);
  log_dur(&l, "late", run->rec.late);
  if (run->catch_up) log_str(&l, "catch_up", "true");
  log_end(&l);
}

/* What a run holds while it goes: on the heap, not on the task's stack;
 * kept with its record until written (the record points into it). */
struct run_state {
  struct child child;
  struct capture out, err, both;
  char why[512];
};

/* The cleanup of a run once its child has gone.  A cancellation (the
 * job's timeout, a replacing run, the shutdown) may come at any point of
 * it: later waits are shielded, so that the capture tasks are always
 * joined before their memory goes. */
static void note_cancel(void) { chime_shield(true); }

/* chime_join_until through cancellations, which are noted. */
static int join_noting(chime_task t, chime_ns deadline) {
  int rc;
  while ((rc = chime_join_until(t, deadline, NULL)) == -ECANCELED) note_cancel();
  return rc;
}

/* Waits for the capture tasks; a pipe held open by a process outside the
 * group is given up on after a second: a task not joined by then is
 * cancelled and joined. */
static void join_captures(chime_task *t, int n) {
  chime_ns deadline = chime_now() + CHIME_SEC(1);
  for (int i = 0; i < n; i++) {
    if (join_noting(t[i], deadline) != 0) {
      chime_cancel(t[i]);
      join_noting(t[i], CHIME_NEVER);
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

/* How long a child that must end is given between SIGTERM and SIGKILL:
 * its job's kill grace, or at shutdown what is left of the grace every
 * run shares. */
static chime_ns grace(const struct run *run) {
  const struct runner *r = run->job->r;
  chime_ns g = run->job->conf->kill_grace;
  if (!r->stopping) return g;
  chime_ns left = r->stop_deadline - chime_now();
  return left < 0 ? 0 : left < g ? left : g;
}

/* After the child has gone: processes it left in its group get SIGTERM,
 * then SIGKILL once they close its pipes or the grace period ends; they are
 * reaped as they end (chime adopts them, as a subreaper or as PID 1).
 * Capture tasks joined meanwhile are removed from the array; returns how
 * many are left. */
static int end_leftovers(const struct run *run, bool exited, chime_task *captures, int n) {
  int pid = run->pid;
  if (kill(-pid, 0) != 0) return n;
  if (exited)
    log_msg("warn", "leftover", "job %s: processes left in the group of pid %d: ending them", run->rec.job, pid);
  kill(-pid, SIGTERM);
  chime_ns deadline = chime_now() + grace(run);
  int left = 0;
  for (int i = 0; i < n; i++)
    if (join_noting(captures[i], deadline) != 0) captures[left++] = captures[i];
  kill(-pid, SIGKILL);
  if (chime_cancelled()) note_cancel();
  if (chime_to_thread(reap_group, &pid, NULL) == -ECANCELED) note_cancel();
  return left;
}

/* Gives the child its standard input (a crontab's %), then closes it.  The
 * text is short (a line of a file): a pipe holds it. */
static void give_input(const struct job_conf *c, int fd) {
  if (fd < 0) return;
  size_t n = strlen(c->input);
  int rc = chime_write_all(fd, c->input, n, chime_now() + CHIME_SEC(1), NULL);
  if (rc && rc != -EPIPE)
    log_msg("warn", "input", "job %s: its standard input was not all written: %s", c->name, chime_strerror(rc));
  if (chime_close(fd) != 0) close(fd);
}

/* A copy of a capture's tail (for a mail, which outlives the run), or
 * NULL with *len 0 when empty or out of memory. */
static char *tail_copy(const struct capture *cap, size_t *len) {
  char *t = cap->tail_len ? malloc(cap->tail_len) : NULL;
  *len = t ? capture_tail(cap, t) : 0;
  return t;
}

/* The run's child: prepared, started with two capture tasks (started
 * first: a child whose output nobody read would block on a full pipe),
 * recorded, waited for or ended; what it did goes into the record. */
static int run_child(struct run *run, struct run_state *s) {
  struct job *j = run->job;
  const struct job_conf *c = j->conf;
  struct run_record *rec = &run->rec;
  int rc = child_prepare(c, &s->child, s->why, sizeof s->why);
  chime_task cap[2];
  int ncap = 0;
  struct capture *caps[2] = {&s->out, &s->err};
  for (int i = 0; !rc && i < 2; i++) {
    caps[i]->job = c->name, caps[i]->stream = i ? "stderr" : "stdout", caps[i]->fd = -1;
    caps[i]->both = c->mailto || c->on_failure || c->on_recovery ? &s->both : NULL; /* a mail's, a hook's input */
    if ((rc = chime_spawn(capture_task, caps[i], &cap[ncap])) == 0)
      ncap++;
    else
      snprintf(s->why, sizeof s->why, "cannot read its output: %s", chime_strerror(rc));
  }
  int in_fd = -1;
  /* to tell the child from a process reusing its pid, after a crash */
  int64_t started = boot_ticks_now();
  /* every run's child dies with chime (child.c): a fleet's run, too, which
   * must not outlive its lease (its guard kills the run's group) */
  if (!rc) rc = child_spawn(c, &s->child, &in_fd, s->why, sizeof s->why);
  run->pid = rec->pid = s->child.pid;
  /* the spawn took a tick or less (as nearly always): its start is that
   * tick or the next; else it is read, as it was */
  int64_t after = run->pid > 0 ? boot_ticks_now() : -1;
  rec->pid_start = run->pid <= 0 ? -1 : after - started <= 1 ? started : proc_start_time(run->pid);
  for (int i = 0; i < ncap; i++) /* fd -1: the task ends at once */
    caps[i]->pid = run->pid, caps[i]->fd = s->child.proc ? chime_proc_fd(s->child.proc, i + 1) : -1;
  recorder_start(j->r->rec, rec); /* the spawn did not suspend: this is still the start */
  if (j->r->fleet) fleet_child_started(j->r->fleet, run);
  if (rc) {
    rec->error = s->why;
    log_msg("error", "start_error", "job %s: %s", c->name, s->why);
    join_captures(cap, ncap);
    child_release(&s->child);
    return rc;
  }
  log_start(run);
  give_input(c, in_fd);
  int status = 0;
  int w = chime_proc_wait(s->child.proc, CHIME_NEVER, &status);
  if (w < 0) { /* the job's timeout, a replacing run, or the shutdown */
    note_cancel();
    chime_proc_terminate(s->child.proc, grace(run), &status);
  }
  join_captures(cap, end_leftovers(run, w == 0, cap, ncap));
  child_release(&s->child);
  if (WIFEXITED(status)) rec->exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) rec->signal = WTERMSIG(status);
  rec->out_len = capture_straighten(&s->out), rec->out = s->out.tail;
  rec->err_len = capture_straighten(&s->err), rec->err = s->err.tail;
  if (caps[0]->both) run->mail = tail_copy(&s->both, &run->mail_len);
  run->child_done = true;
  return rec->exit_code == 0 ? 0 : -EIO;
}

int run_target(void *arg) {
  struct job *j = arg;
  struct runner *r = j->r;
  chime_run_info info = {0};
  chime_current_run(&info);
  struct run *run = calloc(1, sizeof *run);
  if (!run && (run = r->spare) != NULL) /* out of memory: the run is recorded all the same, in the spare */
    r->spare = NULL;
  if (!run) {
    log_msg("error", "start_error", "job %s: out of memory: the run of the tick at %lld could not start",
            j->conf->name, (long long)info.wall);
    return -ENOMEM;
  }
  struct run_record *rec = &run->rec;
  snprintf(rec->job, sizeof rec->job, "%s", j->conf->name);
  rec->scheduled = info.wall, rec->late = info.late, rec->trigger = job_trigger(j, info.tick, info.triggered);
  rec->started = chime_wall_now();
  rec->exit_code = -1;
  run->job = j, run->number = info.run;
  run->catch_up = rec->trigger == TRIGGER_CATCH_UP;
  run->next = r->runs;
  if (r->runs) r->runs->prev = run;
  r->runs = run;
  j->running++;
  /* not calloc: zeroing its 200 KiB of buffers would be the run's largest
   * cost; what must start at zero is set (capture_init, child_prepare) */
  struct run_state *s = malloc(sizeof *s);
  if (s) {
    capture_init(&s->out), capture_init(&s->err), capture_init(&s->both);
    s->why[0] = '\0';
  }
  rec->keep = s; /* freed with the record, which points into it */
  int rc = s ? run_child(run, s) : -ENOMEM;
  if (!s) {
    recorder_start(r->rec, rec);
    if (r->fleet) fleet_child_started(r->fleet, run);
    rec->error = "out of memory: the run could not start";
    log_msg("error", "start_error", "job %s: %s", j->conf->name, rec->error);
  }
  int result = rc == 0 ? 0 : chime_cancelled() ? -ECANCELED : rc == -ENOMEM ? -ENOMEM : -EIO;
  chime_shield(false);
  return result;
}
