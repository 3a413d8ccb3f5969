/* control.h - steering a running daemon: its control socket (chime status,
 * trigger, pause, resume, reload), its jobs' failure hooks, its history's
 * bounds, sd_notify and reloading when the config file changes.
 *
 * The daemon calls in at four points (runner.c): control_start before its
 * jobs start, control_ready once they have, control_stopping when the
 * shutdown begins, control_stop before the history's last writes; and it
 * asks control_paused when it adds a job.  Everything else comes from the
 * jobs' events, through an observer.
 *
 * The protocol.  A client connects to the Unix socket and sends one
 * request, a line of at most CONTROL_REQUEST_MAX bytes: a verb and its
 * argument, separated by a space:
 *
 *   status            every job: schedule, next run, latest run, runs going, paused
 *   status json       the same, as one JSON object
 *   trigger JOB       run JOB now, under its overlap policy
 *   pause JOB         skip JOB's ticks (reason paused) until resumed; kept in the history
 *   resume JOB        run them again
 *   reload            reload the config file, as SIGHUP does
 *
 * The daemon answers with a line "ok" or "error", then the answer's text
 * (a table, JSON, or why not), and closes the connection.  Only chime's
 * own user and root are answered (SO_PEERCRED); the socket is mode 0600.
 */
#ifndef CHIME_CLI_CONTROL_H
#define CHIME_CLI_CONTROL_H

#include <chime.h>
#include <stdbool.h>
#include <stdio.h>

#include "gate.h"
#include "names.h"
#include "runner.h"

#define CONTROL_REQUEST_MAX 1024          /* bytes of a request, its newline included */
#define CONTROL_CONNECTIONS 64            /* served at once; more are told the daemon is busy */
#define CONTROL_READ_TIME CHIME_SEC(2)    /* a client has this long to send its request */
#define CONTROL_WRITE_TIME CHIME_SEC(10)  /* and to read the answer */
#define CONTROL_TRIGGER_WAIT CHIME_SEC(2) /* trigger waits this long to tell what became of the run */

struct hooks;

/* A connection of chime trigger waiting to hear what became of its tick. */
struct trigger_wait {
  const struct job *job;
  chime_ns tick;
  const char *fate; /* what became of it, or NULL while it waits */
  struct gate gate; /* opened when the fate is known */
  struct trigger_wait *next;
};

/* What the daemon keeps for steering it. */
struct control {
  struct runner *r;
  char *path;          /* the socket's (owned), or NULL: none */
  int fd;              /* the listening socket, or -1 */
  int lock_fd;         /* PATH.lock, locked while this daemon serves PATH, or -1 */
  chime_task acceptor; /* the task that accepts connections, while acceptor_live */
  bool acceptor_live;
  chime_group *conns;  /* a task per connection */
  bool virtual_clock;  /* CHIME_CLOCK=virtual: reads and writes without deadlines */
  struct names paused; /* paused jobs: name -> its chime_ns since (owned) */
  struct observer obs;
  struct trigger_wait *waits;
  struct hooks *hooks;
  bool notify;         /* NOTIFY_SOCKET names where to tell systemd */
  chime_task notifier; /* STATUS= and WATCHDOG=1, while notifier_live */
  bool notifier_live;
  chime_task watcher; /* reloads when the config file changes, while watcher_live */
  bool watcher_live;
  bool watch;       /* [chime] watch */
  unsigned running; /* runs going, as the events tell */
};

/* The daemon's four calls (runner.c). */
/* Task only.  Before the jobs start: reads the paused jobs from the
 * history, opens the control socket (refusing a path that is not a
 * socket, or one another daemon serves).  0, or -1 after saying why: the
 * daemon does not start. */
int control_start(struct runner *r, const struct config *cfg);
/* The jobs have started: READY=1, the watch and the notifier start. */
void control_ready(struct runner *r);
/* The shutdown begins: STOPPING=1. */
void control_stopping(struct runner *r);
/* Task only.  The jobs have ended: the socket is closed, hooks going end
 * within the shutdown's grace, and what control kept is freed. */
void control_stop(struct runner *r);

/* Whether the job named `name` is paused (c may be NULL: none is). */
bool control_paused(const struct control *c, const char *name);
/* The pause of every job of that name: since (wall ns), or 0: not paused;
 * in memory only (fleet.c keeps a shared job's so, from the fleet's
 * database).  0, or -ENOMEM. */
int control_set_paused(struct runner *r, const char *name, chime_ns since);
/* What made a tick of j run: its own falling due, a catch-up, chime
 * trigger (its tick in j->manual), or the queue behind a reloaded job's
 * old version. */
trigger_kind job_trigger(const struct job *j, chime_ns tick, bool triggered);

/* The daemon's answer to one request (the verb and its argument): 0 for
 * "ok", -1 for "error", its text in *text (malloc'd: free it; NULL with
 * *len 0 when out of memory).  Task only: trigger waits for its run,
 * reload for the file. */
int control_answer(struct control *c, const char *verb, const char *arg, char **text, size_t *len);
/* status.c: the status of every job, as a table or as JSON: its text
 * (malloc'd, *len bytes), or NULL when out of memory. */
char *status_text(const struct control *c, bool json, size_t *len);
/* watch.c: the task that reloads when the config file changes. */
int watch_task(void *control);

/* The client (control_client.c): the socket beside a history database
 * (DB.sock) into buf: 0, or -ENAMETOOLONG (longer than a socket path may
 * be). */
int control_default_path(const char *db, char *buf, size_t size);
/* Sends `request` to the daemon at `path` and writes its answer to out
 * (ok) or err (error, prefixed "chime: ").  Returns the exit status: 0
 * ok, 1 an error (the daemon's, or none listening). */
int control_request(const char *path, const char *request, FILE *out, FILE *err);

#endif
