/* control.c - steering a running daemon (control.h): the control socket
 * and its requests, the paused jobs, manual triggers, the history's prune
 * steps as runs end, and the start and stop of the hooks, sd_notify and
 * the watch.
 *
 * The socket.  Its path is the daemon's (--socket, [chime] socket), or by
 * default its history's with ".sock" added: the client finds it the same
 * way.  A lock on PATH.lock (flock, held while the daemon lives) tells a
 * live daemon from a dead one's socket: a daemon that holds no lock left
 * its socket behind, which is replaced; one that holds it is another
 * daemon, and this one refuses to start.  A path that is not a socket is
 * never removed: refused.  A socket at the default path that cannot be
 * made (a history directory chime cannot write) is said and done without;
 * one given cannot, and the daemon does not start.
 *
 * Serving.  An acceptor task takes connections (chime_accept), checks the
 * peer's uid (SO_PEERCRED: chime's own user or root; others are refused
 * and logged), and gives each to a task of its own in a group, at most
 * CONTROL_CONNECTIONS at once.  A connection's task reads one request
 * within CONTROL_READ_TIME, answers it (built whole in memory, then
 * written within CONTROL_WRITE_TIME) and closes: a client that stalls
 * holds its own task, never the loop or another client.  On the virtual
 * clock (tests), those waits have no deadline: virtual time would pass
 * them before a real client could act.
 *
 * Pauses are kept by name, in memory and in the history (table paused),
 * so that they outlive a reload (a changed job is a new struct job with
 * the same name) and a restart.  A paused job's ticks are vetoed
 * (runner.c's job_veto, VETO_PAUSED), and logged and recorded as skipped
 * with reason paused; a manual trigger of it runs.
 */
#include "control.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "fleet.h"
#include "hook.h"
#include "log.h"
#include "notify.h"

/* ---- triggers and pauses ----------------------------------------------------------- */

trigger_kind job_trigger(const struct job *j, chime_ns tick, bool triggered) {
  if (!triggered) return TRIGGER_NONE;
  if (j->catch_up_tick && tick == j->catch_up_tick) return TRIGGER_CATCH_UP;
  for (int i = 0; i < JOB_MANUAL_MAX; i++)
    if (j->manual[i] == tick) return TRIGGER_MANUAL;
  return TRIGGER_QUEUED; /* no other source of triggered ticks */
}

bool control_paused(const struct control *c, const char *name) { return c && names_get(&c->paused, name); }

/* The job of that name the config has now (not a retired version). */
static struct job *find_job(const struct runner *r, const char *name) {
  for (struct job *j = r->jobs; j; j = j->next)
    if (!j->retired && strcmp(j->conf->name, name) == 0) return j;
  return NULL;
}

/* Frees the manual slot of tick (its fate is known). */
static void manual_done(struct job *j, chime_ns tick) {
  for (int i = 0; i < JOB_MANUAL_MAX; i++)
    if (j->manual[i] == tick) {
      j->manual[i] = 0;
      return;
    }
}

/* Tells the triggers waiting on j's tick (or on any of j's ticks, with
 * any) what became of it. */
static void tell_waits(struct control *c, const struct job *j, chime_ns tick, bool any, const char *fate) {
  for (struct trigger_wait *w = c->waits; w; w = w->next)
    if (w->job == j && (any || w->tick == tick) && !w->fate) {
      w->fate = fate;
      gate_open(&w->gate);
    }
}

static int trigger(struct control *c, struct job *j, FILE *out) {
  const char *name = j->conf->name;
  if (j->ended) return fprintf(out, "job %s has ended (max_runs, or on_error = stop): nothing to trigger\n", name), -1;
  const char *why = j->fleet ? fleet_trigger_refused(c->r->fleet, j) : NULL;
  if (why) return fprintf(out, "job %s: not triggered: %s\n", name, why), -1;
  int slot = 0;
  while (slot < JOB_MANUAL_MAX && j->manual[slot])
    slot++;
  if (slot == JOB_MANUAL_MAX)
    return fprintf(out, "job %s: %d runs asked for by trigger wait already\n", name, JOB_MANUAL_MAX), -1;
  /* the tick on the job's clock: the wall clock's for a calendar, the
   * loop's for an interval (never 0, a free slot's mark) */
  chime_ns tick = j->conf->cron ? chime_wall_now() : chime_now();
  if (tick == 0) tick = 1;
  int rc = chime_every_trigger(j->handle, tick);
  if (rc) return fprintf(out, "job %s: cannot be triggered: %s\n", name, chime_strerror(rc)), -1;
  j->manual[slot] = tick;
  log_msg("info", "trigger", "job %s: run now, asked for on the control socket", name);
  struct trigger_wait w = {.job = j, .tick = tick, .next = c->waits};
  c->waits = &w;
  if (gate_arm(&w.gate) == 0) gate_wait(&w.gate, chime_now() + CONTROL_TRIGGER_WAIT);
  for (struct trigger_wait **p = &c->waits; *p; p = &(*p)->next)
    if (*p == &w) {
      *p = w.next;
      break;
    }
  if (!w.fate)
    fprintf(out, "job %s: triggered: it waits its turn (a run of it is going%s)\n", name,
            j->conf->overlap == CHIME_OVERLAP_QUEUE ? ", and overlap = queue" : "");
  else
    fprintf(out, "job %s: %s\n", name, w.fate);
  return 0;
}

int control_set_paused(struct runner *r, const char *name, chime_ns since) {
  struct control *c = r->control;
  chime_ns *was = c ? names_get(&c->paused, name) : NULL;
  if (c && since && !was) {
    chime_ns *at = malloc(sizeof *at);
    if (!at || names_put(&c->paused, name, at) != 0) return free(at), -ENOMEM;
    was = at;
  }
  if (was && since) *was = since;
  else if (c && was) free(names_del(&c->paused, name));
  for (struct job *j = r->jobs; j; j = j->next)
    if (strcmp(j->conf->name, name) == 0) j->paused = since != 0;
  return 0;
}

static void say_paused(const struct runner *r, const char *name, bool pause, bool fleet, FILE *out) {
  log_msg("info", pause ? "pause" : "resume", "job %s: %s, asked for on the control socket", name,
          pause ? fleet ? "paused on every node of the fleet: its ticks are skipped until it is resumed"
                        : "paused: its ticks are skipped until it is resumed"
                : fleet ? "resumed on every node of the fleet" : "resumed");
  if (pause)
    fprintf(out, "job %s paused%s: its ticks are skipped (reason paused) until chime resume %s%s\n", name,
            fleet ? " on every node of the fleet" : "", name,
            fleet || r->db_path ? "" : " (no history: a restart forgets it)");
  else
    fprintf(out, "job %s resumed%s\n", name, fleet ? " on every node of the fleet" : "");
}

/* A job the fleet shares is paused in the fleet's database, for every
 * node (fleet.c); this node's state follows the database's answer. */
static int pause_job(struct control *c, struct job *j, bool pause, FILE *out) {
  struct runner *r = c->r;
  char name[JOB_NAME_MAX + 1], when[64];
  snprintf(name, sizeof name, "%s", j->conf->name); /* j may be gone once the fleet has answered */
  if (j->fleet) {
    chime_ns since = 0;
    char by[JOB_NAME_MAX + 1] = "";
    int rc = fleet_pause(r->fleet, j, pause, &since, by, sizeof by);
    if (rc == -EALREADY && since) {
      format_wall(since, when, sizeof when);
      return fprintf(out, "job %s is paused already (since %s, by node %s)\n", name, when, by), 0;
    }
    if (rc == -EALREADY) return fprintf(out, "job %s is not paused\n", name), 0;
    if (rc)
      return fprintf(out, "job %s: %s\n", name,
                     rc == -ENOTCONN  ? "the fleet's database is unreachable: nothing changed"
                     : rc == -EAGAIN  ? "its definition is not in the fleet's database yet: try again"
                     : rc == -ENOMEM  ? "out of memory: nothing changed"
                                      : "the fleet's database did not answer in time: chime status tells whether it "
                                        "took the request"),
             -1;
    say_paused(r, name, pause, true, out);
    return 0;
  }
  chime_ns *since = names_get(&c->paused, name);
  if (pause && since) {
    format_wall(*since, when, sizeof when);
    return fprintf(out, "job %s is paused already (since %s)\n", name, when), 0;
  }
  if (!pause && !since) return fprintf(out, "job %s is not paused\n", name), 0;
  chime_ns now = chime_wall_now();
  if (control_set_paused(r, name, pause ? now : 0) != 0) return fprintf(out, "out of memory\n"), -1;
  recorder_pause(r->rec, name, pause, now);
  say_paused(r, name, pause, false, out);
  return 0;
}

static int reload(struct control *c, FILE *out) {
  struct reload_report rep = {0};
  int rc = runner_reload(c->r, &rep);
  if (rc == 0)
    fprintf(out, "%s reloaded: %d job(s) kept, %d started, %d stopped\n", c->r->config_path, rep.kept, rep.started,
            rep.stopped);
  else if (rc == -EINVAL)
    fprintf(out, "%s%s: %d error(s): refused; the running config goes on\n", rep.errs.text ? rep.errs.text : "",
            c->r->config_path, rep.errs.count);
  else if (rc == -ENOENT)
    fprintf(out, "there is no config file to reload: the job came from the command line\n");
  else
    fprintf(out, "a reload is going on: try again\n");
  errors_free(&rep.errs);
  return rc ? -1 : 0;
}

/* The answer to a request other than status, written to out. */
static int answer_to(struct control *c, const char *verb, const char *arg, FILE *out) {
  bool needs_job = strcmp(verb, "trigger") == 0 || strcmp(verb, "pause") == 0 || strcmp(verb, "resume") == 0;
  if (strcmp(verb, "reload") == 0 && !arg) return reload(c, out);
  if (!needs_job || !arg) {
    fprintf(out, "%s: not a request (status [json], trigger JOB, pause JOB, resume JOB, reload)\n", verb);
    return -1;
  }
  struct job *j = find_job(c->r, arg);
  if (!j) return fprintf(out, "no job named \"%s\"\n", arg), -1;
  if (verb[0] == 't') return trigger(c, j, out);
  return pause_job(c, j, verb[0] == 'p', out);
}

int control_answer(struct control *c, const char *verb, const char *arg, char **text, size_t *len) {
  *text = NULL, *len = 0;
  if (strcmp(verb, "status") == 0 && (!arg || strcmp(arg, "json") == 0)) {
    *text = status_text(c, arg != NULL, len);
    return *text ? 0 : -1;
  }
  FILE *out = open_memstream(text, len);
  if (!out) return -1;
  int rc = answer_to(c, verb, arg, out);
  if (fclose(out) != 0) {
    free(*text);
    *text = NULL, *len = 0;
    return -1;
  }
  return rc;
}

/* ---- what the jobs' events tell ---------------------------------------------------------- */

static void observe(void *ctx, const struct job *cj, const chime_event *ev, const struct run *run) {
  struct control *c = ctx;
  struct job *j = (struct job *)cj; /* the runner's: its manual slots are control's to free */
  const char *why = NULL;
  switch (ev->type) {
  case CHIME_EVENT_START:
    c->running++;
    if (ev->triggered) tell_waits(c, j, ev->tick, false, "started");
    return;
  case CHIME_EVENT_END:
    c->running--;
    if (ev->triggered) manual_done(j, ev->tick);
    hooks_run_ended(c->hooks, j, run);
    break;
  case CHIME_EVENT_SKIP:
    if (ev->triggered) {
      int reason = skip_reason_of(ev);
      why = reason == CHIME_SKIP_OVERLAP  ? "skipped: a run of it is going (overlap = skip)"
            : reason >= 0                 ? "skipped: vetoed (chime's log says why)"
            : ev->result == VETO_QUEUED   ? "queued: it runs once the run going ends (overlap = queue)"
                                          : "not run here: the fleet did not let it (chime's log says why)";
      tell_waits(c, j, ev->tick, false, why);
      manual_done(j, ev->tick);
    }
    break;
  case CHIME_EVENT_DONE:
    tell_waits(c, j, 0, true, "not run: the job has ended");
    memset(j->manual, 0, sizeof j->manual);
    return;
  default: return;
  }
  if (history_bounded(&j->conf->history)) recorder_prune(c->r->rec, j->conf->name, &j->conf->history);
}

/* ---- the socket --------------------------------------------------------------------------- */

/* Takes PATH.lock, whose holder serves PATH: 0, 1 (another daemon holds
 * it: said), or a negative errno. */
static int take_lock(struct control *c) {
  char lock[sizeof((struct sockaddr_un *)0)->sun_path + 8];
  snprintf(lock, sizeof lock, "%s.lock", c->path);
  c->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (c->lock_fd < 0) return -errno;
  if (flock(c->lock_fd, LOCK_EX | LOCK_NB) != 0) {
    int e = errno;
    char pid[32] = "";
    ssize_t n = pread(c->lock_fd, pid, sizeof pid - 1, 0);
    pid[n > 0 ? n : 0] = '\0';
    pid[strcspn(pid, "\n")] = '\0';
    if (e != EWOULDBLOCK) return -e;
    log_msg("error", "control",
            "another chime (pid %s) serves the control socket %s: not started (give each its own"
            " --socket)",
            pid[0] ? pid : "?", c->path);
    return 1;
  }
  char pid[32];
  int n = snprintf(pid, sizeof pid, "%d\n", (int)getpid());
  if (ftruncate(c->lock_fd, 0) != 0 || pwrite(c->lock_fd, pid, (size_t)n, 0) != n) return -errno;
  return 0;
}

/* Opens the socket: 0, 1 (refused: said), or a negative errno. */
static int open_socket(struct control *c) {
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  struct stat st;
  if (lstat(c->path, &st) == 0 && !S_ISSOCK(st.st_mode)) {
    log_msg("error", "control", "%s exists and is not a socket: refused (remove it, or give another --socket)",
            c->path);
    return 1;
  }
  int rc = take_lock(c);
  if (rc) return rc;
  if (lstat(c->path, &st) == 0 && unlink(c->path) != 0) return -errno; /* a dead daemon's */
  c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c->fd < 0) return -errno;
  memcpy(a.sun_path, c->path, strlen(c->path) + 1);
  mode_t old = umask(0177); /* made 0600: no moment when another user could connect */
  rc = bind(c->fd, (struct sockaddr *)&a, sizeof a) == 0 ? 0 : -errno;
  umask(old);
  if (rc == 0 && listen(c->fd, CONTROL_CONNECTIONS) != 0) rc = -errno;
  return rc;
}

/* The socket's path: --socket or [chime] socket, else beside the history. */
static int socket_path(struct control *c, const struct config *cfg, bool *given) {
  const char *p = cfg->daemon.socket;
  char buf[sizeof((struct sockaddr_un *)0)->sun_path];
  *given = p != NULL;
  if (p && strcmp(p, "none") == 0) return 0;
  if (!p && !c->r->db_path) return 0; /* no history, no socket unless one is given */
  if (!p && control_default_path(c->r->db_path, buf, sizeof buf) != 0) {
    log_msg("warn", "control", "%s.sock is longer than a socket's path may be: no control socket (give --socket)",
            c->r->db_path);
    return 0;
  }
  if (p && strlen(p) >= sizeof buf) {
    log_msg("error", "control", "socket %s: longer than a socket's path may be (%zu bytes)", p, sizeof buf - 1);
    return -1;
  }
  return (c->path = strdup(p ? p : buf)) ? 0 : -ENOMEM;
}

/* What a connection's task is given. */
struct conn {
  struct control *c;
  int fd;
};

/* Reads the request line into buf: its length, or a negative errno
 * (-E2BIG: too long, -ENODATA: none came). */
static int read_request(struct conn *k, char *buf, size_t size) {
  size_t len = 0;
  chime_ns deadline = k->c->virtual_clock ? CHIME_NEVER : chime_now() + CONTROL_READ_TIME;
  while (!memchr(buf, '\n', len)) {
    if (len == size) return -E2BIG;
    int n = chime_read(k->fd, buf + len, size - len, deadline);
    if (n < 0) return n;
    if (n == 0) return len ? (int)len : -ENODATA;
    len += (size_t)n;
  }
  return (int)(strchr(buf, '\n') - buf);
}

static void answer(struct conn *k, const char *head, const char *text, size_t len) {
  chime_ns deadline = k->c->virtual_clock ? CHIME_NEVER : chime_now() + CONTROL_WRITE_TIME;
  if (chime_write_all(k->fd, head, strlen(head), deadline, NULL) == 0 && len)
    chime_write_all(k->fd, text, len, deadline, NULL);
}

static int serve(void *arg) {
  struct conn *k = arg;
  char req[CONTROL_REQUEST_MAX + 1];
  memset(req, 0, sizeof req);
  int n = read_request(k, req, CONTROL_REQUEST_MAX);
  if (n == -E2BIG) {
    static const char why[] = "a request is one line of at most 1024 bytes\n";
    answer(k, "error\n", why, sizeof why - 1);
  } else if (n == -ETIMEDOUT) {
    log_msg("warn", "control", "a client sent no request within %.0fs: closed", (double)CONTROL_READ_TIME / 1e9);
  } else if (n >= 0) {
    req[n] = '\0';
    if (n && req[n - 1] == '\r') req[n - 1] = '\0';
    char *what = strchr(req, ' '); /* the verb's argument */
    if (what) *what++ = '\0';
    char *text;
    size_t len;
    int rc = control_answer(k->c, req, what, &text, &len);
    if (!text) { /* no memory for the answer */
      static const char why[] = "out of memory\n";
      answer(k, "error\n", why, sizeof why - 1);
    } else {
      answer(k, rc == 0 ? "ok\n" : "error\n", text, len);
    }
    free(text);
  }
  shutdown(k->fd, SHUT_RDWR);
  if (chime_close(k->fd) != 0) close(k->fd);
  free(k);
  return 0;
}

/* A connection the daemon will not serve: told why at once (what fits in
 * the socket's buffer) and closed. */
static void refuse(int fd, const char *why) {
  char msg[256];
  int n = snprintf(msg, sizeof msg, "error\n%s\n", why);
  if (send(fd, msg, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) { /* the client has gone: nothing to tell */
  }
  if (chime_close(fd) != 0) close(fd);
}

/* Whether the peer is chime's own user or root; a refusal is logged. */
static bool peer_allowed(int fd) {
  struct ucred cred;
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    log_msg("warn", "control", "refused a client whose user cannot be known: %s", strerror(errno));
    return false;
  }
  if (cred.uid == geteuid() || cred.uid == 0) return true;
  log_msg("warn", "control", "refused a client of uid %u (pid %d): only uid %u (chime's) and root may steer it",
          (unsigned)cred.uid, (int)cred.pid, (unsigned)geteuid());
  return false;
}

static int acceptor(void *arg) {
  struct control *c = arg;
  for (;;) {
    int fd = chime_accept(c->fd, CHIME_NEVER);
    if (fd == -ECANCELED) return 0;
    if (fd < 0) { /* out of descriptors, or memory: said, and tried again in a moment */
      log_msg("error", "control", "cannot accept a connection: %s", chime_strerror(fd));
      if (chime_sleep(CHIME_MS(100)) != 0) return 0;
      continue;
    }
    if (!peer_allowed(fd)) {
      refuse(fd, "permission denied: only chime's own user and root may steer it");
      continue;
    }
    if (chime_group_size(c->conns) >= CONTROL_CONNECTIONS) {
      refuse(fd, "busy: too many connections at once; try again");
      continue;
    }
    struct conn *k = malloc(sizeof *k);
    if (!k || chime_group_spawn(c->conns, serve, k) != 0) {
      free(k);
      refuse(fd, "out of memory");
      continue;
    }
    k->c = c, k->fd = fd;
  }
}

/* ---- the daemon's calls -------------------------------------------------------------------- */

static void control_free(struct control *c) {
  if (c->acceptor_live) chime_cancel(c->acceptor), chime_join(c->acceptor, NULL);
  if (c->conns) {
    chime_group_cancel(c->conns);
    chime_group_join(c->conns, CHIME_NEVER, NULL);
    chime_group_free(c->conns);
  }
  if (c->fd >= 0) {
    if (chime_close(c->fd) != 0) close(c->fd);
    unlink(c->path);
  }
  if (c->lock_fd >= 0) close(c->lock_fd); /* the lock goes with it; the file stays, empty of meaning */
  hooks_free(c->hooks);
  names_clear(&c->paused, free);
  free(c->path);
  c->r->control = NULL;
  free(c);
}

/* The paused jobs on record. */
static int read_paused(struct control *c) {
  struct paused_job *list = NULL;
  int rc = recorder_paused(c->r->rec, &list);
  if (rc == -ENOENT) return 0; /* no history */
  if (rc) log_msg("error", "control", "the paused jobs could not be read from the history: %s", chime_strerror(rc));
  for (struct paused_job *p = list, *next; p; p = next) {
    next = p->next;
    chime_ns *since = malloc(sizeof *since);
    if (since) *since = p->since;
    if (!since || names_put(&c->paused, p->job, since) != 0) {
      free(since);
      rc = -ENOMEM;
    }
    free(p);
  }
  return rc == -ENOMEM ? rc : 0;
}

int control_start(struct runner *r, const struct config *cfg) {
  struct control *c = calloc(1, sizeof *c);
  if (!c) return log_msg("error", "control", "out of memory"), -1;
  c->r = r, c->fd = c->lock_fd = -1;
  r->control = c;
  c->notify = notify_init();
  c->watch = cfg->daemon.watch;
  const char *clock = getenv("CHIME_CLOCK");
  c->virtual_clock = clock && strcmp(clock, "virtual") == 0;
  bool given;
  int rc = socket_path(c, cfg, &given);
  if (rc == 0 && c->path && (rc = open_socket(c)) < 0) {
    log_msg(given ? "error" : "warn", "control", "control socket %s: %s: %s", c->path, strerror(-rc),
            given ? "not started" : "none, the jobs go on");
    if (!given) { /* done without */
      if (c->fd >= 0) close(c->fd);
      if (c->lock_fd >= 0) close(c->lock_fd);
      c->fd = c->lock_fd = -1;
      free(c->path), c->path = NULL;
      rc = 0;
    }
  }
  if (rc == 0) rc = read_paused(c);
  if (rc == 0) rc = hooks_new(r, &c->hooks);
  if (rc == 0) rc = chime_group_new(NULL, &c->conns);
  if (rc == 0 && c->fd >= 0 && (rc = chime_spawn(acceptor, c, &c->acceptor)) == 0) c->acceptor_live = true;
  if (rc) {
    if (rc == -ENOMEM) log_msg("error", "control", "out of memory");
    if (c->fd >= 0 && rc != 1) close(c->fd), c->fd = -1; /* not ours to unlink if refused */
    control_free(c);
    return -1;
  }
  c->obs = (struct observer){.fn = observe, .ctx = c};
  runner_observe(r, &c->obs);
  if (c->path) log_msg("info", "control", "serving the control socket %s", c->path);
  return 0;
}

/* ---- systemd -------------------------------------------------------------------------------- */

/* "3 jobs (1 paused), 2 runs in progress": STATUS='s text. */
static void status_line(const struct control *c, char *buf, size_t size) {
  int jobs = 0, paused = 0;
  for (const struct job *j = c->r->jobs; j; j = j->next)
    if (!j->retired && !j->ended) jobs++, paused += j->paused;
  int n = snprintf(buf, size, "%d job(s)", jobs);
  if (paused && n > 0 && (size_t)n < size) n += snprintf(buf + n, size - (size_t)n, " (%d paused)", paused);
  if (n > 0 && (size_t)n < size) snprintf(buf + n, size - (size_t)n, ", %u run(s) in progress", c->running);
}

/* Tells systemd the status when it changes (checked every second), and
 * WATCHDOG=1 as often as the watchdog asks: from a task of the loop, so
 * that a loop that hangs is seen by the watchdog. */
static int notifier(void *arg) {
  struct control *c = arg;
  chime_ns every = notify_watchdog(), now = chime_now();
  chime_ns next_dog = every ? now : CHIME_NEVER, next_status = now + CHIME_SEC(1);
  char last[256] = "", line[256 + 8];
  status_line(c, last, sizeof last);
  for (;;) {
    now = chime_now();
    if (now >= next_dog) notify_send("WATCHDOG=1"), next_dog = now + every;
    if (now >= next_status) {
      char text[256];
      status_line(c, text, sizeof text);
      if (strcmp(text, last) != 0) snprintf(line, sizeof line, "STATUS=%s", text), notify_send(line);
      snprintf(last, sizeof last, "%s", text);
      next_status = now + CHIME_SEC(1);
    }
    if (chime_sleep_until(next_dog < next_status ? next_dog : next_status) != 0) return 0;
  }
}

void control_ready(struct runner *r) {
  struct control *c = r->control;
  if (!c) return;
  if (c->notify) {
    char text[256], msg[300];
    status_line(c, text, sizeof text);
    snprintf(msg, sizeof msg, "READY=1\nSTATUS=%s", text);
    notify_send(msg);
    if (chime_spawn(notifier, c, &c->notifier) == 0) c->notifier_live = true;
  }
  if (c->watch && r->config_path) {
    if (chime_spawn(watch_task, c, &c->watcher) == 0)
      c->watcher_live = true;
    else
      log_msg("error", "watch", "out of memory: %s is not watched", r->config_path);
  }
}

void control_stopping(struct runner *r) {
  if (r->control && r->control->notify) notify_send("STOPPING=1\nSTATUS=stopping every job");
}

void control_stop(struct runner *r) {
  struct control *c = r->control;
  if (!c) return;
  if (c->notifier_live) chime_cancel(c->notifier), chime_join(c->notifier, NULL);
  if (c->watcher_live) chime_cancel(c->watcher), chime_join(c->watcher, NULL);
  hooks_stop(c->hooks, r->stop_deadline);
  control_free(c);
}
