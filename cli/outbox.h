/* outbox.h - the records of a fleet node on their way to PostgreSQL, and
 * the local file they wait in while the database is unreachable
 * (local-first: a record is kept on this machine before it is sent, and
 * sent until the database has it; each is written by an upsert keyed as
 * the history is, so that sending one twice records it once).
 */
#ifndef CHIME_CLI_OUTBOX_H
#define CHIME_CLI_OUTBOX_H

#include <chime.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

enum frec_op {
  FREC_STARTED = 1, /* a claimed run's child started: its pid (id) */
  FREC_FINISH,      /* a claimed run ended: its outcome (id), fenced */
  FREC_LOCAL,       /* a run of no claim (scope = host, degraded), as it starts and ends: (job, tick, node) */
  FREC_SKIP,        /* ticks skipped: (job, tick, node, reason) */
  FREC_RELEASE,     /* a claim this node will not run (id) */
};

/* One record. */
struct frec {
  struct frec *next;
  int64_t seq;          /* its row in the outbox, once there; 0 */
  int op;
  int64_t id;           /* the claimed run's row */
  int64_t instance;     /* the daemon that made the record (its fence: a restarted node sends its outbox as it) */
  char job[JOB_NAME_MAX + 1];
  chime_ns tick, last;  /* wall clock ns; last: FREC_SKIP's last tick */
  int64_t count;        /* FREC_SKIP */
  char outcome[16];     /* FREC_FINISH, FREC_LOCAL ("running" at its start); FREC_SKIP: the reason */
  chime_ns started, ended, late;
  int pid, exit_code, signal; /* exit_code -1, signal 0: none */
  bool degraded, triggered;
  char *error;          /* owned, or NULL; FREC_RELEASE: why */
  char *out, *err;      /* owned tails, or NULL */
  size_t out_len, err_len;
};

void frec_free(struct frec *r);

struct outbox;

/* Task only: opens (creating it) the outbox at path, on the pool.  0, or a
 * negative errno with why. */
int outbox_open(const char *path, struct outbox **out, char *why, size_t size);
void outbox_close(struct outbox *ob);
/* Task only: writes the list of records (taken: freed once written, or
 * given back in *left if the write failed) on the pool.  0 or a negative
 * errno. */
int outbox_put(struct outbox *ob, struct frec *list, struct frec **left);
/* Task only: reads up to n records, oldest first (their seq set).  The
 * count, or a negative errno. */
int outbox_take(struct outbox *ob, int n, struct frec **list);
/* Task only: deletes the records of the list (by seq).  0 or a negative
 * errno. */
int outbox_done(struct outbox *ob, const struct frec *list);

#endif
