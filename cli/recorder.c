/* recorder.c - the daemon's history, written off the loop (recorder.h).
 *
 * The queue is a list of items in the order things happened: a run's
 * start and end are items embedded in its record (no allocation), a run of
 * skipped ticks is an item of its own.  A writer task, started when the
 * queue gets its first item and ending when it is empty, takes up to
 * BATCH items at a time off the queue and hands them to a thread of the
 * pool (chime_to_thread), which writes them in one transaction: many runs
 * ending together cost one commit.  The thread touches only the batch and
 * the database; the loop goes on meanwhile, and new items join the queue.
 * A batch that fails goes back to the front of the queue and is tried
 * again after a pause.
 */
#include "recorder.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "history.h"
#include "log.h"

#define BATCH 256                  /* items in one transaction, at most */
#define LINGER CHIME_MS(10)        /* how long the first item of a batch waits for others */
#define PAUSE_MIN CHIME_MS(100)    /* after a failed batch; doubling */
#define PAUSE_MAX CHIME_SEC(5)

enum { ITEM_START, ITEM_END, ITEM_SKIP, ITEM_PRUNE, ITEM_PAUSE, ITEM_HOOK };

/* What the items of a job's own begin with. */
struct job_item {
  struct rec_item item;
  char job[JOB_NAME_MAX + 1];
};

struct skip_item {
  struct job_item head;
  chime_ns first, last, at;
  uint64_t count;
  int reason;
  trigger_kind trigger;
};

struct prune_item {
  struct job_item head;
  struct history_bounds bounds;
  chime_ns now;   /* the wall clock when queued */
  bool more;      /* its step may have left rows beyond the bounds: another is queued */
};

struct pause_item {
  struct job_item head;
  bool paused;
  chime_ns since;
};

struct hook_item {
  struct rec_item item;
  int64_t row;
  struct hook_result res; /* its strings in text */
  char text[];
};

struct recorder {
  const char *path; /* NULL: no history */
  bool make_dirs;
  pthread_mutex_t mu;     /* held by the pool's thread that uses the database */
  struct history *hist;   /* open, once a batch opened it (under mu) */
  struct rec_item *head;  /* the queue, oldest first */
  struct rec_item *tail;
  size_t queued;
  unsigned long long lost; /* items dropped since the last said */
  unsigned long long lost_total; /* items dropped, in all */
  unsigned long long failures;   /* batches that failed, in all (each try of one) */
  chime_ns failing_since;        /* chime_now() when the batches began to fail; 0 while they succeed */
  char why[1024];                /* why the latest batch failed */
  size_t max;             /* items waiting, at most: RECORDER_MAX (tests: CHIME_TEST_RECORDER_MAX) */
  chime_task writer;      /* the writer task, while writer_live */
  bool writer_live;
  bool flushing;          /* a flush waits: the writer does not linger */
  bool failing;           /* the last batch failed (said once) */
  void (*on_end)(void *ctx, const struct run_record *r, int64_t row); /* recorder_on_end's */
  void *on_end_ctx;
};

static struct run_record *record_of(struct rec_item *it) {
  return it->kind == ITEM_START ? (struct run_record *)((char *)it - offsetof(struct run_record, start_item))
                                : (struct run_record *)((char *)it - offsetof(struct run_record, end_item));
}

void run_record_free(struct run_record *r) {
  if (!r) return;
  free(r->keep);
  free(r);
}

int recorder_new(const char *path, bool make_dirs, struct recorder **out) {
  struct recorder *rec = calloc(1, sizeof *rec);
  if (!rec) return -ENOMEM;
  rec->path = path;
  rec->make_dirs = make_dirs;
  rec->max = RECORDER_MAX;
  const char *max = getenv("CHIME_TEST_RECORDER_MAX");
  char *end;
  unsigned long n = max ? strtoul(max, &end, 10) : 0;
  if (max && *max >= '1' && *max <= '9' && !*end && n <= RECORDER_MAX) rec->max = n;
  pthread_mutex_init(&rec->mu, NULL);
  *out = rec;
  return 0;
}

/* What is done with an item once written (`written`), or dropped: an end
 * is told to on_end and frees its record, an item of its own kind frees
 * itself. */
static void item_done(struct recorder *rec, struct rec_item *it, bool written) {
  if (it->kind == ITEM_END) {
    struct run_record *r = record_of(it);
    if (rec->on_end) rec->on_end(rec->on_end_ctx, r, written ? r->row : 0);
    run_record_free(r);
  } else if (it->kind != ITEM_START) {
    free(it);
  }
}

void recorder_free(struct recorder *rec) {
  if (!rec) return;
  while (rec->head) {
    struct rec_item *it = rec->head;
    rec->head = it->next;
    item_done(rec, it, false);
  }
  history_close(rec->hist);
  pthread_mutex_destroy(&rec->mu);
  free(rec);
}

/* ---- the writer ----------------------------------------------------------------- */

/* A batch, written by a thread of the pool. */
struct batch {
  struct recorder *rec;
  struct rec_item *items; /* in order */
  size_t n;
  size_t written;         /* items written when it ended */
  int rc;
  char why[1024];         /* why it failed */
  int interrupted;        /* runs of an earlier chime marked interrupted at the open */
  bool opened;            /* the database was opened by this batch */
  int prune_left;         /* rows its prune steps may still delete */
};

/* A prune step, within what is left of the batch's budget; a job pruned
 * earlier in the batch is not walked again. */
static int write_prune(struct history *h, struct batch *b, struct prune_item *p) {
  p->more = false;
  for (struct rec_item *o = b->items; o != &p->head.item; o = o->next)
    if (o->kind == ITEM_PRUNE && strcmp(((struct prune_item *)o)->head.job, p->head.job) == 0) return 0;
  int limit = b->prune_left < RECORDER_PRUNE_STEP ? b->prune_left : RECORDER_PRUNE_STEP;
  int n = limit > 0 ? history_prune(h, p->head.job, &p->bounds, p->now, limit) : 0;
  if (n < 0) return n;
  b->prune_left -= n;
  p->more = n == limit;
  return 0;
}

static int write_item(struct history *h, struct batch *b, struct rec_item *it) {
  switch (it->kind) {
  case ITEM_SKIP: {
    const struct skip_item *s = (const struct skip_item *)it;
    return history_skip(h, s->head.job, s->first, s->last, s->count, skip_reason_name(s->reason), s->at,
                        trigger_name(s->trigger));
  }
  case ITEM_PRUNE: return write_prune(h, b, (struct prune_item *)it);
  case ITEM_PAUSE: {
    const struct pause_item *p = (const struct pause_item *)it;
    return history_set_paused(h, p->head.job, p->paused, p->since);
  }
  case ITEM_HOOK: {
    const struct hook_item *k = (const struct hook_item *)it;
    return history_hook(h, k->row, &k->res);
  }
  default: break;
  }
  struct run_record *r = record_of(it);
  if (it->kind == ITEM_END && r->whole) return 0; /* written whole, at its start */
  /* its end known already (in the batch, or its start was not written):
   * one row, whole */
  bool whole = it->kind == ITEM_START ? r->whole : r->row <= 0;
  struct run_result res = {0}; /* read only once the run has ended: the loop writes it until then */
  if (whole || it->kind == ITEM_END)
    res = (struct run_result){.outcome = outcome_name(r->result), .exit_code = r->exit_code, .signal = r->signal,
                              .ended = r->ended, .error = r->error, .out = r->out, .err = r->err,
                              .out_len = r->out_len, .err_len = r->err_len};
  if (it->kind == ITEM_START || r->row <= 0) {
    int64_t row = history_start(h, r->job, r->scheduled, r->started, r->late, r->pid, trigger_name(r->trigger),
                                r->pid_start, whole ? &res : NULL);
    if (row < 0) return (int)row;
    r->row = row, r->fresh = true;
    return 0;
  }
  return history_end(h, r->row, &res);
}

/* On a thread of the pool: opens the database if it is not, and writes
 * the batch in one transaction. */
/* The database, opened if it is not (under rec->mu). */
static int open_locked(struct recorder *rec, char *why, size_t size, int *interrupted) {
  if (rec->hist) return 0;
  int rc = history_open(rec->path, rec->make_dirs, &rec->hist, why, size);
  if (rc == 0) *interrupted = history_mark_interrupted(rec->hist);
  return rc ? rc : 1;
}

static int write_locked(struct batch *b) {
  struct recorder *rec = b->rec;
  int rc = open_locked(rec, b->why, sizeof b->why, &b->interrupted);
  if (rc < 0) return rc;
  b->opened = rc == 1;
  b->prune_left = RECORDER_PRUNE_BATCH;
  /* a run whose start and end are both in the batch is one row */
  struct rec_item *it = b->items;
  for (size_t i = 0; i < b->n; i++, it = it->next) {
    if (it->kind == ITEM_START) record_of(it)->batched = true;
    if (it->kind == ITEM_END) record_of(it)->whole = record_of(it)->batched;
  }
  rc = history_begin(rec->hist);
  /* the prune steps last, after the rows they count (a run's end makes
   * it ok or not) */
  for (int pass = 0; pass < 2; pass++) {
    it = b->items;
    for (size_t i = 0; rc == 0 && i < b->n; i++, it = it->next)
      if ((it->kind == ITEM_PRUNE) == (pass == 1)) rc = write_item(rec->hist, b, it);
  }
  if (rc == 0) rc = history_commit(rec->hist);
  if (rc) {
    snprintf(b->why, sizeof b->why, "history database %s: %s", rec->path, history_error(rec->hist));
    history_rollback(rec->hist);
  }
  /* rows written in a rolled back transaction are not */
  it = b->items;
  for (size_t i = 0; i < b->n; i++, it = it->next) {
    if (it->kind != ITEM_START && it->kind != ITEM_END) continue;
    struct run_record *r = record_of(it);
    if (rc && r->fresh) r->row = 0;
    r->batched = r->whole = r->fresh = false;
  }
  return rc;
}

static int write_batch(void *arg) {
  struct batch *b = arg;
  pthread_mutex_lock(&b->rec->mu);
  b->rc = write_locked(b);
  pthread_mutex_unlock(&b->rec->mu);
  return b->rc;
}

static void say_lost(struct recorder *rec) {
  if (!rec->lost) return;
  log_msg("error", "history", "history database %s: %llu record(s) lost (the queue was full, or no memory)",
          rec->path ? rec->path : "none", rec->lost);
  rec->lost = 0;
}

static void put(struct recorder *rec, struct rec_item *it);

/* Notes where the starts of a batch (a list) are. */
static void starts_at(struct rec_item *items, int at) {
  for (struct rec_item *it = items; it; it = it->next)
    if (it->kind == ITEM_START) record_of(it)->start_at = at;
}

/* The writer task: batches until the queue is empty. */
static int writer_main(void *arg) {
  struct recorder *rec = arg;
  chime_ns pause = PAUSE_MIN;
  while (rec->head) {
    /* items come in streams (runs starting and ending through the
     * second): a batch waits a moment for more, so that a thousand runs a
     * second cost a hundred transactions, not two thousand hand-offs to
     * the pool; never when a batch is full, or a flush waits */
    if (rec->queued < BATCH && !rec->flushing && chime_sleep(LINGER) != 0) return -ECANCELED;
    if (!rec->head) break;
    struct batch b = {.rec = rec, .items = rec->head};
    struct rec_item *last = rec->head;
    /* a prune step is queued just before the end it follows (its
     * observer hears the end first): the two go in one batch */
    for (b.n = 1; (b.n < BATCH || last->kind == ITEM_PRUNE) && last->next; b.n++)
      last = last->next;
    rec->head = last->next; /* the batch leaves the queue; new items go after it */
    if (!rec->head) rec->tail = NULL;
    rec->queued -= b.n;
    last->next = NULL;
    starts_at(b.items, START_WRITING);
    int rc = chime_to_thread(write_batch, &b, NULL);
    if (b.opened && b.interrupted > 0)
      log_msg("warn", "history", "%d run(s) of an earlier chime were cut short: marked interrupted", b.interrupted);
    if (rc == 0 && b.rc == 0) {
      if (rec->failing) log_msg("info", "history", "history database %s: written again", rec->path);
      rec->failing = false;
      rec->failing_since = 0;
      pause = PAUSE_MIN;
      starts_at(b.items, START_WRITTEN);
      for (struct rec_item *it = b.items, *next; it; it = next) {
        next = it->next;
        if (it->kind == ITEM_PRUNE && ((struct prune_item *)it)->more && rec->queued < rec->max / 2)
          put(rec, it); /* the next step, behind what came meanwhile */
        else
          item_done(rec, it, true);
      }
      say_lost(rec);
      continue;
    }
    /* the batch goes back to the front, and is tried again after a pause */
    starts_at(b.items, START_QUEUED);
    last->next = rec->head;
    rec->head = b.items;
    if (!rec->tail) rec->tail = last;
    rec->queued += b.n;
    if (!rec->failing)
      log_msg("error", "history", "%s; runs go on, and %zu record(s) wait to be written",
              b.why[0] ? b.why : chime_strerror(rc ? rc : b.rc), rec->queued);
    rec->failing = true;
    rec->failures++;
    if (!rec->failing_since) rec->failing_since = chime_now();
    snprintf(rec->why, sizeof rec->why, "%s", b.why[0] ? b.why : chime_strerror(rc ? rc : b.rc));
    if (chime_sleep(pause) != 0) return -ECANCELED; /* the flush starts another */
    pause = pause * 2 < PAUSE_MAX ? pause * 2 : PAUSE_MAX;
  }
  return 0;
}

/* A writer for what was queued, if none is at work. */
static void wake_writer(struct recorder *rec) {
  if (rec->writer_live && chime_task_done(rec->writer) == 1) {
    chime_detach(rec->writer);
    rec->writer_live = false;
  }
  if (!rec->writer_live && chime_spawn(writer_main, rec, &rec->writer) == 0) rec->writer_live = true;
  /* no memory for a task: the next record tries again */
}

/* Takes `it`, which follows `prev` (NULL: the head), out of the queue. */
static void unlink_after(struct recorder *rec, struct rec_item *prev, struct rec_item *it) {
  *(prev ? &prev->next : &rec->head) = it->next;
  if (rec->tail == it) rec->tail = prev;
  rec->queued--;
}

/* Makes room in a full queue: the oldest item that may go goes, and is
 * counted lost.  Never a start alone (it is in its run's record, which its
 * end frees), nor an end whose start a thread of the pool is writing; an
 * end whose start still waits takes the start with it (the run is lost
 * whole).  The walk passes the starts of runs going, and the ends whose
 * starts are being written (a batch's at most), before it finds one. */
static void make_room(struct recorder *rec) {
  for (struct rec_item *it = rec->head, *prev = NULL; it; prev = it, it = it->next) {
    if (it->kind == ITEM_START) continue;
    struct run_record *r = it->kind == ITEM_END ? record_of(it) : NULL;
    if (r && r->start_at == START_WRITING) continue;
    unlink_after(rec, prev, it);
    if (r && r->start_at == START_QUEUED) /* before `it`: found before the walk reaches it */
      for (struct rec_item *x = rec->head, *xp = NULL; x; xp = x, x = x->next)
        if (x == &r->start_item) {
          unlink_after(rec, xp, x);
          break;
        }
    item_done(rec, it, false);
    rec->lost++, rec->lost_total++;
    return;
  }
}

static void put(struct recorder *rec, struct rec_item *it) {
  if (!rec->path) { /* no history */
    item_done(rec, it, false);
    return;
  }
  it->next = NULL;
  if (rec->queued >= rec->max) make_room(rec);
  if (rec->tail)
    rec->tail->next = it;
  else
    rec->head = it;
  rec->tail = it;
  rec->queued++;
  wake_writer(rec);
}

void recorder_start(struct recorder *rec, struct run_record *r) {
  r->start_item.kind = ITEM_START;
  put(rec, &r->start_item);
}

void recorder_end(struct recorder *rec, struct run_record *r) {
  r->end_item.kind = ITEM_END;
  put(rec, &r->end_item);
}

/* A new item of a job's own (`size` bytes, a struct beginning with a
 * job_item), or NULL: no history, or no memory (then counted as lost
 * when `record`: a record, not a prune step, the next run queues again). */
static void *job_item(struct recorder *rec, size_t size, int kind, const char *job, bool record) {
  struct job_item *it = rec->path ? calloc(1, size) : NULL;
  if (!it) {
    if (rec->path && record) rec->lost++, rec->lost_total++;
    return NULL;
  }
  it->item.kind = kind;
  snprintf(it->job, sizeof it->job, "%s", job);
  return it;
}

void recorder_skip(struct recorder *rec, const char *job, chime_ns first, chime_ns last, uint64_t count,
                   int reason, trigger_kind trigger) {
  struct skip_item *s = job_item(rec, sizeof *s, ITEM_SKIP, job, true);
  if (!s) return;
  s->first = first, s->last = last, s->count = count, s->reason = reason, s->trigger = trigger;
  s->at = chime_wall_now();
  put(rec, &s->head.item);
}

void recorder_prune(struct recorder *rec, const char *job, const struct history_bounds *b) {
  struct prune_item *p = rec->queued < rec->max / 2 ? job_item(rec, sizeof *p, ITEM_PRUNE, job, false) : NULL;
  if (!p) return;
  p->bounds = *b;
  p->now = chime_wall_now();
  put(rec, &p->head.item);
}

void recorder_pause(struct recorder *rec, const char *job, bool paused, chime_ns since) {
  struct pause_item *p = job_item(rec, sizeof *p, ITEM_PAUSE, job, true);
  if (!p) return;
  p->paused = paused, p->since = since;
  put(rec, &p->head.item);
}

void recorder_hook(struct recorder *rec, int64_t row, const struct hook_result *res) {
  if (!rec->path || row <= 0) return;
  const char *parts[3] = {res->hook, res->outcome, res->error ? res->error : ""};
  size_t bytes = 0;
  for (int i = 0; i < 3; i++) bytes += strlen(parts[i]) + 1;
  struct hook_item *k = calloc(1, sizeof *k + bytes);
  if (!k) {
    rec->lost++, rec->lost_total++;
    return;
  }
  k->item.kind = ITEM_HOOK;
  k->row = row;
  k->res = *res;
  char *p = k->text;
  const char **fields[3] = {&k->res.hook, &k->res.outcome, &k->res.error};
  for (int i = 0; i < 3; i++) *fields[i] = p, p = stpcpy(p, parts[i]) + 1;
  if (!res->error) k->res.error = NULL;
  put(rec, &k->item);
}

void recorder_on_end(struct recorder *rec, void (*fn)(void *ctx, const struct run_record *r, int64_t row),
                     void *ctx) {
  rec->on_end = fn, rec->on_end_ctx = ctx;
}

int recorder_flush(struct recorder *rec, chime_ns deadline) {
  int rc = 0;
  rec->flushing = true;
  while (rc == 0 && (rec->head || rec->writer_live)) {
    if (!rec->writer_live) wake_writer(rec);
    if (!rec->writer_live) return rec->flushing = false, -ENOMEM;
    rc = chime_join_until(rec->writer, deadline, NULL);
    if (rc == 0) rec->writer_live = false;
  }
  rec->flushing = false;
  if (rc == -ETIMEDOUT)
    log_msg("error", "history", "history database %s: %zu record(s) could not be written before the shutdown",
            rec->path, rec->queued);
  say_lost(rec);
  return rc;
}

void recorder_health(const struct recorder *rec, struct recorder_health *out) {
  *out = (struct recorder_health){.path = rec->path, .failures = rec->failures, .dropped = rec->lost_total,
                                  .queued = rec->queued, .failing_since = rec->failing_since,
                                  .why = rec->failing_since ? rec->why : NULL};
}

/* ---- reading --------------------------------------------------------------------------- */

struct last_tick {
  struct recorder *rec;
  const char *job;
  chime_ns tick;
  int rc;
  int interrupted; /* as a batch's */
  char why[1024];
};

static int read_last(void *arg) {
  struct last_tick *l = arg;
  pthread_mutex_lock(&l->rec->mu);
  l->rc = open_locked(l->rec, l->why, sizeof l->why, &l->interrupted);
  if (l->rc >= 0) l->rc = history_last_scheduled(l->rec->hist, l->job, &l->tick);
  pthread_mutex_unlock(&l->rec->mu);
  return l->rc;
}

/* Reading the paused jobs, on the pool. */
struct paused_read {
  struct recorder *rec;
  struct paused_job *list;
  bool nomem;
  int rc;
  int interrupted; /* as a batch's */
  char why[1024];
};

static int add_paused(void *arg, const char *job, chime_ns since) {
  struct paused_read *p = arg;
  struct paused_job *x = calloc(1, sizeof *x);
  if (!x) return p->nomem = true, 1;
  snprintf(x->job, sizeof x->job, "%s", job ? job : "");
  x->since = since;
  x->next = p->list;
  p->list = x;
  return 0;
}

static int read_paused(void *arg) {
  struct paused_read *p = arg;
  pthread_mutex_lock(&p->rec->mu);
  p->rc = open_locked(p->rec, p->why, sizeof p->why, &p->interrupted);
  if (p->rc >= 0) p->rc = history_paused(p->rec->hist, add_paused, p);
  pthread_mutex_unlock(&p->rec->mu);
  return p->rc;
}

int recorder_paused(struct recorder *rec, struct paused_job **out) {
  if (!rec->path) return -ENOENT;
  struct paused_read p = {.rec = rec};
  int rc = chime_to_thread(read_paused, &p, NULL);
  if (rc == 0 && p.interrupted > 0)
    log_msg("warn", "history", "%d run(s) of an earlier chime were cut short: marked interrupted", p.interrupted);
  if (rc == 0) rc = p.nomem ? -ENOMEM : p.rc < 0 ? p.rc : 0;
  if (rc) {
    for (struct paused_job *x = p.list, *next; x; x = next) next = x->next, free(x);
    return rc;
  }
  *out = p.list;
  return 0;
}

int recorder_last_tick(struct recorder *rec, const char *job, chime_ns *out) {
  if (!rec->path) return -ENOENT;
  struct last_tick l = {.rec = rec, .job = job};
  int rc = chime_to_thread(read_last, &l, NULL);
  if (rc) return rc;
  if (l.interrupted > 0)
    log_msg("warn", "history", "%d run(s) of an earlier chime were cut short: marked interrupted", l.interrupted);
  if (l.rc == 0) *out = l.tick;
  return l.rc;
}
