/* snapshot.c - the daemon seen from outside (snapshot.h): what the runner's
 * events say that its job status does not keep, snapshots, and the
 * Prometheus exposition and JSON written from them.
 *
 * What the tally keeps per job name is an entry of an open-addressing
 * table (names are few and never leave it: a name a reload removed keeps
 * its entry, a hundred bytes, until chime exits).  An entry belongs to one
 * version of its job, told by a hash of the job's fingerprint (every
 * setting): a new version empties it.
 *
 * The writers run on a pool thread over a snapshot and format by hand:
 * 10,000 jobs give half a million lines of exposition, where snprintf and
 * strftime would cost more than the 50 ms an answer may take.
 */
#include "snapshot.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

/* Bucket bounds in ns, and as the exposition writes them. */
static const chime_ns duration_bounds[SNAP_DURATION_BUCKETS] = {
    CHIME_MS(10), CHIME_MS(50), CHIME_MS(100), CHIME_MS(500), CHIME_SEC(1), CHIME_SEC(5),
    CHIME_SEC(10), CHIME_SEC(30), CHIME_SEC(60), CHIME_SEC(300), CHIME_SEC(1800)};
static const char *const duration_les[SNAP_DURATION_BUCKETS + 1] = {
    "0.01", "0.05", "0.1", "0.5", "1", "5", "10", "30", "60", "300", "1800", "+Inf"};
static const chime_ns lateness_bounds[SNAP_LATENESS_BUCKETS] = {
    CHIME_US(100), CHIME_US(500), CHIME_MS(1), CHIME_MS(5), CHIME_MS(10),
    CHIME_MS(50), CHIME_MS(100), CHIME_MS(500), CHIME_SEC(1), CHIME_SEC(5)};
static const char *const lateness_les[SNAP_LATENESS_BUCKETS + 1] = {
    "0.0001", "0.0005", "0.001", "0.005", "0.01", "0.05", "0.1", "0.5", "1", "5", "+Inf"};

/* What the tally keeps of a job name. */
struct entry {
  char name[JOB_NAME_MAX + 1]; /* "" : a free slot */
  uint64_t version;            /* the hash of its version's fingerprint */
  struct hist duration, lateness;
  struct last_run last;
  char every[24];              /* its version's interval as written (30s), or "" */
  size_t snap;                 /* its job's index in the snapshot numbered gen */
  uint64_t gen;
};

struct tally {
  struct runner *r;
  struct observer obs;
  struct entry *slots; /* a power of two of them, at most 70% used */
  size_t cap, used;
  uint64_t gen;        /* snapshots taken */
  chime_ns started;    /* wall clock */
};

/* FNV-1a, 64 bits: for names. */
static uint64_t hash(const char *s) {
  uint64_t h = 14695981039346656037ULL;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
  return h;
}

/* A hash of a long text (a fingerprint, hundreds of bytes, hashed for
 * each job at each snapshot), eight bytes at a step. */
static uint64_t hash_long(const char *s) {
  size_t n = strlen(s);
  uint64_t h = n * 0x9E3779B97F4A7C15ULL, w;
  for (; n >= 8; s += 8, n -= 8) {
    memcpy(&w, s, 8);
    h = (h ^ w) * 0xff51afd7ed558ccdULL;
    h ^= h >> 32;
  }
  w = 0;
  memcpy(&w, s, n);
  h = (h ^ w) * 0xc4ceb9fe1a85ec53ULL;
  return h ^ (h >> 29);
}

static void last_init(struct last_run *l) {
  memset(l, 0, sizeof *l);
  l->exit_code = -1;
}

static int grow(struct tally *w) {
  size_t cap = w->cap ? w->cap * 2 : 64;
  struct entry *slots = calloc(cap, sizeof *slots);
  if (!slots) return -ENOMEM;
  for (size_t i = 0; i < w->cap; i++) {
    if (!w->slots[i].name[0]) continue;
    size_t k = hash(w->slots[i].name) & (cap - 1);
    while (slots[k].name[0]) k = (k + 1) & (cap - 1);
    slots[k] = w->slots[i];
  }
  free(w->slots);
  w->slots = slots, w->cap = cap;
  return 0;
}

/* The slot of a name: its entry, or the free slot it would take. */
static struct entry *slot(const struct tally *w, const char *name) {
  size_t k = hash(name) & (w->cap - 1);
  while (w->slots[k].name[0] && strcmp(w->slots[k].name, name) != 0) k = (k + 1) & (w->cap - 1);
  return &w->slots[k];
}

/* The entry of job j's name, made if need be, emptied if it was another
 * version's; NULL without memory. */
static struct entry *entry_of(struct tally *w, const struct job *j) {
  if (w->used * 10 >= w->cap * 7 && grow(w) != 0) return NULL;
  const char *name = j->conf->name;
  struct entry *e = slot(w, name);
  uint64_t version = hash_long(j->conf->fingerprint);
  if (!e->name[0]) snprintf(e->name, sizeof e->name, "%s", name), w->used++;
  else if (e->version == version) return e;
  e->version = version;
  e->every[0] = '\0';
  if (!j->conf->cron && !j->conf->reboot) chime_format_duration(j->conf->every, e->every, sizeof e->every);
  memset(&e->duration, 0, sizeof e->duration);
  memset(&e->lateness, 0, sizeof e->lateness);
  last_init(&e->last);
  return e;
}

static void hist_add(struct hist *h, const chime_ns *bounds, int n, chime_ns v) {
  if (v < 0) v = 0;
  int i = 0;
  while (i < n && v > bounds[i]) i++;
  h->bucket[i]++;
  h->count++;
  h->sum += v;
}

/* The observer: a run's end, of a job's current version. */
static void observed(void *ctx, const struct job *j, const chime_event *ev, const struct run *run) {
  struct tally *w = ctx;
  if (ev->type != CHIME_EVENT_END || j->retired) return;
  struct entry *e = entry_of(w, j);
  if (!e) return;
  hist_add(&e->duration, duration_bounds, SNAP_DURATION_BUCKETS, ev->duration);
  hist_add(&e->lateness, lateness_bounds, SNAP_LATENESS_BUCKETS, ev->late);
  if (!run) return;
  const struct run_record *rec = &run->rec;
  e->last = (struct last_run){.scheduled = rec->scheduled, .started = rec->started, .ended = rec->ended,
                              .late = rec->late, .duration = ev->duration, .result = rec->result,
                              .exit_code = rec->exit_code, .signal = rec->signal};
}

int tally_new(struct runner *r, struct tally **out) {
  struct tally *w = calloc(1, sizeof *w);
  if (!w || grow(w) != 0) {
    free(w);
    return -ENOMEM;
  }
  w->r = r;
  w->started = chime_wall_now();
  w->obs = (struct observer){.fn = observed, .ctx = w};
  runner_observe(r, &w->obs);
  *out = w;
  return 0;
}

void tally_free(struct tally *w) {
  if (!w) return;
  free(w->slots);
  free(w);
}

/* ---- snapshots ------------------------------------------------------------------ */

/* Strings of a snapshot, gathered as offsets (the buffer moves as it
 * grows) and made pointers at the end. */
static size_t keep(struct text *t, const char *s) {
  size_t at = t->len;
  text_put(t, s, strlen(s) + 1);
  return at;
}

#define NO_STRING SIZE_MAX

int tally_snapshot(struct tally *w, struct snapshot **out) {
  struct runner *r = w->r;
  size_t n = 0;
  for (const struct job *j = r->jobs; j; j = j->next) n += !j->retired;
  struct snapshot *s = calloc(1, sizeof *s);
  struct snap_job *jobs = calloc(n ? n : 1, sizeof *jobs);
  /* offsets of each job's schedule and tz, then of the snapshot's strings */
  size_t *at = calloc(2 * n + 4, sizeof *at);
  struct text str = {0};
  if (!s || !jobs || !at) goto nomem;
  s->now = chime_wall_now();
  s->started = w->started;
  s->pid = (int)getpid();
  s->stopping = r->stopping;
  recorder_health(r->rec, &s->history);
  s->log_dropped = log_dropped_total();
  if (r->fleet) s->fleet = true, s->fm = fleet_metrics(r->fleet);
  at[2 * n] = r->config_path ? keep(&str, r->config_path) : NO_STRING;
  at[2 * n + 1] = r->db_path ? keep(&str, r->db_path) : NO_STRING;
  at[2 * n + 2] = s->history.why ? keep(&str, s->history.why) : NO_STRING;
  /* The jobs are listed newest first: the config's order is the reverse. */
  w->gen++;
  size_t i = n;
  for (const struct job *j = r->jobs; j; j = j->next) {
    if (j->retired) continue;
    struct snap_job *sj = &jobs[--i];
    const struct job_conf *c = j->conf;
    struct entry *e = entry_of(w, j);
    if (!e) goto nomem;
    e->snap = i, e->gen = w->gen;
    memcpy(sj->name, c->name, strlen(c->name) + 1); /* a name fits: job_name_ok */
    sj->calendar = c->cron != NULL;
    if (c->reboot) at[2 * i] = keep(&str, "@reboot");
    else if (c->cron) at[2 * i] = keep(&str, c->schedule);
    else at[2 * i] = keep(&str, e->every), sj->every = c->every;
    at[2 * i + 1] = c->cron && c->tz_name ? keep(&str, c->tz_name) : NO_STRING;
    sj->st = j->status;
    sj->last = e->last;
    sj->duration = e->duration, sj->lateness = e->lateness;
    sj->running = j->running;
    sj->ended = j->ended;
    sj->paused = j->paused;
    chime_job_stats st;
    sj->next = j->started && !j->ended && chime_every_stats(j->handle, &st) == 0 ? st.next_wall : CHIME_NEVER;
  }
  /* the runs of old versions, and when each job's runs began: by name */
  for (const struct job *j = r->jobs; j; j = j->next) {
    const struct entry *e = j->retired && j->running ? slot(w, j->conf->name) : NULL;
    if (e && e->gen == w->gen) jobs[e->snap].running += j->running;
  }
  for (const struct run *run = r->runs; run; run = run->next) {
    const struct entry *e = slot(w, run->rec.job);
    if (e->gen != w->gen) continue;
    struct snap_job *sj = &jobs[e->snap];
    if (!sj->running_since || run->rec.started < sj->running_since) sj->running_since = run->rec.started;
  }
  if (str.nomem) goto nomem;
  for (size_t k = 0; k < n; k++) {
    jobs[k].schedule = str.p + at[2 * k];
    jobs[k].tz = at[2 * k + 1] == NO_STRING ? NULL : str.p + at[2 * k + 1];
  }
  s->config = at[2 * n] == NO_STRING ? NULL : str.p + at[2 * n];
  s->db = at[2 * n + 1] == NO_STRING ? NULL : str.p + at[2 * n + 1];
  s->history.path = s->db;
  s->history.why = at[2 * n + 2] == NO_STRING ? NULL : str.p + at[2 * n + 2];
  s->njobs = n, s->jobs = jobs, s->strings = str.p;
  free(at);
  *out = s;
  return 0;
nomem:
  free(str.p);
  free(at);
  free(jobs);
  free(s);
  return -ENOMEM;
}

void snapshot_free(struct snapshot *s) {
  if (!s) return;
  free(s->jobs);
  free(s->strings);
  free(s);
}

/* ---- text ----------------------------------------------------------------------- */

static char *room(struct text *t, size_t n);

void text_put(struct text *t, const char *s, size_t n) {
  char *p = room(t, n);
  if (!p) return;
  memcpy(p, s, n);
  t->len += n;
  t->p[t->len] = '\0';
}

void text_puts(struct text *t, const char *s) { text_put(t, s, strlen(s)); }

static void emit_text(void *ctx, const char *piece, size_t n) { text_put(ctx, piece, n); }

void text_json(struct text *t, const char *s, size_t n) {
  text_put(t, "\"", 1);
  log_escape(s, n, emit_text, NULL, t);
  text_put(t, "\"", 1);
}

void text_label(struct text *t, const char *s) {
  for (const char *p = s;; p++) {
    size_t run = strcspn(p, "\\\"\n");
    text_put(t, p, run);
    p += run;
    if (!*p) return;
    text_put(t, *p == '\n' ? "\\n" : *p == '"' ? "\\\"" : "\\\\", 2);
  }
}

/* Digits of v into the end of buf[0..size): where they start. */
static char *digits(uint64_t v, char *end) {
  *--end = '\0';
  do *--end = (char)('0' + v % 10);
  while (v /= 10);
  return end;
}

static void text_u64(struct text *t, uint64_t v) {
  char buf[24];
  text_puts(t, digits(v, buf + sizeof buf));
}

static void text_int(struct text *t, long long v) {
  if (v < 0) text_put(t, "-", 1);
  text_u64(t, v < 0 ? 0 - (uint64_t)v : (uint64_t)v);
}

/* ns as seconds, with `places` decimals (1 to 9). */
static void text_seconds(struct text *t, chime_ns ns, int places) {
  if (ns < 0) text_put(t, "-", 1);
  uint64_t v = ns < 0 ? 0 - (uint64_t)ns : (uint64_t)ns;
  text_u64(t, v / 1000000000u);
  char frac[10];
  uint64_t f = v % 1000000000u;
  for (int k = 8; k >= 0; k--) frac[k] = (char)('0' + f % 10), f /= 10;
  frac[0 + places] = '\0';
  text_put(t, ".", 1);
  text_puts(t, frac);
}

/* The civil date of a day counted from 1970-01-01 (Howard Hinnant's
 * days_from_civil, inverted). */
static void civil(int64_t days, int *y, unsigned *m, unsigned *d) {
  days += 719468;
  int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  unsigned doe = (unsigned)(days - era * 146097);
  unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = (int)(yoe + era * 400 + (*m <= 2));
}

void text_wall(struct text *t, chime_ns wall) {
  int64_t ms = wall / CHIME_MS(1); /* toward zero, as format_wall */
  int64_t sec = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
  int64_t days = sec >= 0 ? sec / 86400 : -((-sec + 86399) / 86400);
  unsigned s = (unsigned)(sec - days * 86400), milli = (unsigned)(ms - sec * 1000);
  int y;
  unsigned m, d;
  civil(days, &y, &m, &d);
  if (y < 0 || y > 9999) { /* not in RFC 3339's range */
    text_puts(t, "?");
    return;
  }
  char b[32] = "0000-00-00T00:00:00.000Z";
  unsigned f[] = {(unsigned)y / 100, (unsigned)y % 100, m, d, s / 3600, s / 60 % 60, s % 60};
  static const int pos[] = {0, 2, 5, 8, 11, 14, 17};
  for (int k = 0; k < 7; k++) b[pos[k]] = (char)('0' + f[k] / 10), b[pos[k] + 1] = (char)('0' + f[k] % 10);
  b[20] = (char)('0' + milli / 100), b[21] = (char)('0' + milli / 10 % 10), b[22] = (char)('0' + milli % 10);
  text_put(t, b, 24);
}

/* ---- the exposition ---------------------------------------------------------------------- */

/* Room for n more bytes (and a NUL) at the end of t: where they go, or
 * NULL when t could not grow.  The caller writes them and sets t->len. */
static char *room(struct text *t, size_t n) {
  if (t->nomem) return NULL;
  if (t->len + n + 1 > t->cap) {
    size_t cap = t->cap ? t->cap : 4096;
    while (cap < t->len + n + 1) cap *= 2;
    char *p = realloc(t->p, cap);
    if (!p) {
      t->nomem = true;
      return NULL;
    }
    t->p = p, t->cap = cap;
  }
  return t->p + t->len;
}

static char *put(char *p, const char *s, size_t n) {
  memcpy(p, s, n);
  return p + n;
}

static char *put_u64(char *p, uint64_t v) {
  char buf[24];
  char *d = digits(v, buf + sizeof buf);
  return put(p, d, (size_t)(buf + sizeof buf - 1 - d));
}

/* A piece of text and its length. */
struct piece {
  const char *s;
  size_t n;
};
#define PIECE(lit) ((struct piece){lit, sizeof lit - 1})

/* One sample: NAME{LABELS EXTRA} VALUE, the value a count or, with
 * places > 0, ns as seconds with that many decimals.  Half a million of
 * them make 10,000 jobs' answer: one reservation, copies, no formatting. */
static void line(struct text *t, struct piece name, struct piece labels, struct piece extra, uint64_t v,
                 int places) {
  char *p = room(t, name.n + labels.n + extra.n + 48);
  if (!p) return;
  p = put(p, name.s, name.n);
  *p++ = '{';
  p = put(p, labels.s, labels.n);
  p = put(p, extra.s, extra.n);
  *p++ = '}', *p++ = ' ';
  if (places) {
    p = put_u64(p, v / 1000000000u);
    *p++ = '.';
    uint64_t f = v % 1000000000u;
    char frac[9];
    for (int k = 8; k >= 0; k--) frac[k] = (char)('0' + f % 10), f /= 10;
    p = put(p, frac, (size_t)places);
  } else {
    p = put_u64(p, v);
  }
  *p++ = '\n';
  *p = '\0';
  t->len = (size_t)(p - t->p);
}

static void family(struct text *t, const char *name, const char *type, const char *help) {
  text_puts(t, "# HELP "), text_puts(t, name), text_put(t, " ", 1), text_puts(t, help);
  text_puts(t, "\n# TYPE "), text_puts(t, name), text_put(t, " ", 1), text_puts(t, type), text_put(t, "\n", 1);
}

/* A sample without labels. */
static void bare(struct text *t, const char *name, const char *type, const char *help, uint64_t v, int places) {
  family(t, name, type, help);
  text_puts(t, name), text_put(t, " ", 1);
  if (places) text_seconds(t, (chime_ns)v, places);
  else text_u64(t, v);
  text_put(t, "\n", 1);
}

/* Each job's label, job="NAME" escaped, written once for all its samples. */
struct labels {
  struct text text;
  size_t *at; /* job i's label is text.p[at[i] .. at[i + 1]) */
};

static int labels_make(const struct snapshot *s, struct labels *l) {
  memset(l, 0, sizeof *l);
  l->at = malloc((s->njobs + 1) * sizeof *l->at);
  if (!l->at) return -ENOMEM;
  for (size_t i = 0; i < s->njobs; i++) {
    l->at[i] = l->text.len;
    text_puts(&l->text, "job=\""), text_label(&l->text, s->jobs[i].name), text_put(&l->text, "\"", 1);
  }
  l->at[s->njobs] = l->text.len;
  return l->text.nomem ? -ENOMEM : 0;
}

static struct piece label(const struct labels *l, size_t i) {
  return (struct piece){l->text.p ? l->text.p + l->at[i] : "", l->at[i + 1] - l->at[i]};
}

static void histogram(struct text *t, const struct snapshot *s, const struct labels *l, const char *name,
                      const char *help, bool lateness) {
  char bucket[96], sum[96], count[96];
  struct piece pb = {bucket, (size_t)snprintf(bucket, sizeof bucket, "%s_bucket", name)};
  struct piece ps = {sum, (size_t)snprintf(sum, sizeof sum, "%s_sum", name)};
  struct piece pc = {count, (size_t)snprintf(count, sizeof count, "%s_count", name)};
  family(t, name, "histogram", help);
  int nb = lateness ? SNAP_LATENESS_BUCKETS : SNAP_DURATION_BUCKETS;
  const char *const *les = lateness ? lateness_les : duration_les;
  char le[SNAP_DURATION_BUCKETS + 1][24];
  struct piece ple[SNAP_DURATION_BUCKETS + 1];
  for (int b = 0; b <= nb; b++) ple[b] = (struct piece){le[b], (size_t)snprintf(le[b], sizeof le[b], ",le=\"%s\"", les[b])};
  for (size_t i = 0; i < s->njobs; i++) {
    const struct hist *h = lateness ? &s->jobs[i].lateness : &s->jobs[i].duration;
    uint64_t cumulative = 0;
    for (int b = 0; b <= nb; b++) cumulative += h->bucket[b], line(t, pb, label(l, i), ple[b], cumulative, 0);
    line(t, ps, label(l, i), PIECE(""), (uint64_t)h->sum, 9);
    line(t, pc, label(l, i), PIECE(""), h->count, 0);
  }
}

/* The outcomes a run of a running chime can have (running, interrupted
 * and skipped are no run's end). */
static const outcome run_outcomes[] = {OUTCOME_OK,      OUTCOME_FAILED,   OUTCOME_SIGNAL, OUTCOME_TIMEOUT,
                                       OUTCOME_STOPPED, OUTCOME_REPLACED, OUTCOME_ERROR,  OUTCOME_LEASE_LOST};
#define RUN_OUTCOMES (sizeof run_outcomes / sizeof *run_outcomes)

/* A gauge of wall-clock instants by job, for the jobs that have one. */
static void instants(struct text *t, const struct snapshot *s, const struct labels *l, const char *name,
                     const char *help, size_t field, bool never) {
  family(t, name, "gauge", help);
  struct piece pn = {name, strlen(name)};
  for (size_t i = 0; i < s->njobs; i++) {
    chime_ns v = *(const chime_ns *)((const char *)&s->jobs[i] + field);
    if (never ? v != CHIME_NEVER : v != 0) line(t, pn, label(l, i), PIECE(""), (uint64_t)v, 3);
  }
}

/* A fleet node's own: its claims, leases, records and clock. */
static void fleet_families(struct text *t, const struct fleet_metrics *m) {
  family(t, "chime_fleet_claims_total", "counter",
         "Ticks this node asked the fleet's database for, by result (won: run here; lost: another node's; refused: "
         "the clock's skew, another definition, the database's bound; failed: no answer).");
  const struct {
    const char *result;
    uint64_t v;
  } claims[] = {{"won", m->claims_won}, {"lost", m->claims_lost}, {"refused", m->claims_refused},
                {"failed", m->claims_failed}};
  for (size_t k = 0; k < sizeof claims / sizeof *claims; k++) {
    text_puts(t, "chime_fleet_claims_total{result=\""), text_puts(t, claims[k].result), text_puts(t, "\"} ");
    text_u64(t, claims[k].v), text_put(t, "\n", 1);
  }
  bare(t, "chime_fleet_leases_lost_total", "counter",
       "Runs stopped here because their lease could not be renewed in time, or was lost.", m->leases_lost, 0);
  bare(t, "chime_fleet_results_fenced_total", "counter",
       "Results the fleet's history refused: their run's lease had been lost (kept in the log).", m->results_fenced, 0);
  bare(t, "chime_fleet_leases_reaped_total", "counter", "Expired leases (of any node) this node reaped.", m->reaped,
       0);
  bare(t, "chime_fleet_attempts_taken_total", "counter", "Pending attempts (reruns, queued ticks) this node took.",
       m->taken, 0);
  bare(t, "chime_fleet_degraded_runs_total", "counter",
       "Runs of on_db_down = run_local jobs while the fleet's database was unreachable.", m->degraded, 0);
  bare(t, "chime_fleet_connections_total", "counter", "Connections made to the fleet's database.", m->connects, 0);
  bare(t, "chime_fleet_records_waiting", "gauge", "Records of runs not yet in the fleet's history.",
       m->records_waiting, 0);
  bare(t, "chime_fleet_database_up", "gauge", "1 while the fleet's database is connected and answering.", m->db_up,
       0);
  bare(t, "chime_fleet_clock_skewed", "gauge",
       "1 while this node's clock is off the database's by more than fleet_max_skew (it claims nothing).", m->skewed,
       0);
  bare(t, "chime_fleet_clock_offset_seconds", "gauge", "The database's clock minus this node's.",
       (uint64_t)m->clock_offset, 6);
}

/* What an answer of n jobs takes, about: reserved at once, rather than
 * grown by copies. */
#define METRICS_BYTES_PER_JOB 2700
#define JOBS_BYTES_PER_JOB 640

void render_metrics(const struct snapshot *s, struct text *t) {
  room(t, s->njobs * METRICS_BYTES_PER_JOB);
  struct labels l;
  if (labels_make(s, &l) != 0) {
    t->nomem = true;
    free(l.text.p), free(l.at);
    return;
  }
  family(t, "chime_build_info", "gauge", "The chime that runs: its version.");
  text_puts(t, "chime_build_info{version=\""), text_label(t, chime_version()), text_puts(t, "\"} 1\n");
  bare(t, "chime_start_time_seconds", "gauge", "When chime started, in seconds since the Unix epoch.",
       (uint64_t)s->started, 3);
  bare(t, "chime_jobs", "gauge", "Jobs in the running config.", s->njobs, 0);
  bare(t, "chime_history_write_failures_total", "counter",
       "Writes of the history database that failed (each try of a batch of records).", s->history.failures, 0);
  bare(t, "chime_history_records_dropped_total", "counter",
       "Records the history never got: its queue was full, or there was no memory.", s->history.dropped, 0);
  bare(t, "chime_history_queued_records", "gauge", "Records waiting to be written to the history database.",
       s->history.queued, 0);
  bare(t, "chime_log_lines_dropped_total", "counter", "Log lines dropped because the log could not take them.",
       s->log_dropped, 0);
  if (s->fleet) fleet_families(t, &s->fm);

  struct piece outcomes[RUN_OUTCOMES];
  char outcome_text[RUN_OUTCOMES][32];
  for (size_t k = 0; k < RUN_OUTCOMES; k++)
    outcomes[k] = (struct piece){outcome_text[k], (size_t)snprintf(outcome_text[k], sizeof outcome_text[k],
                                                                  ",outcome=\"%s\"", outcome_name(run_outcomes[k]))};
  family(t, "chime_job_runs_total", "counter", "Runs that ended, by job and outcome.");
  for (size_t i = 0; i < s->njobs; i++)
    for (size_t k = 0; k < RUN_OUTCOMES; k++)
      line(t, PIECE("chime_job_runs_total"), label(&l, i), outcomes[k], s->jobs[i].st.runs[run_outcomes[k]], 0);
  struct piece reasons[SKIP_REASON_COUNT];
  char reason_text[SKIP_REASON_COUNT][32];
  for (int r = CHIME_SKIP_OVERLAP; r < SKIP_REASON_COUNT; r++)
    reasons[r] = (struct piece){reason_text[r], (size_t)snprintf(reason_text[r], sizeof reason_text[r],
                                                                ",reason=\"%s\"", skip_reason_name(r))};
  family(t, "chime_job_skipped_ticks_total", "counter",
         "Ticks that started no run, by job and reason (overlap, missed, backoff, vetoed, paused).");
  for (size_t i = 0; i < s->njobs; i++)
    for (int r = CHIME_SKIP_OVERLAP; r < SKIP_REASON_COUNT; r++)
      line(t, PIECE("chime_job_skipped_ticks_total"), label(&l, i), reasons[r], s->jobs[i].st.skipped[r], 0);
  family(t, "chime_job_runs_in_progress", "gauge", "Runs going now, by job.");
  for (size_t i = 0; i < s->njobs; i++)
    line(t, PIECE("chime_job_runs_in_progress"), label(&l, i), PIECE(""), s->jobs[i].running, 0);
  histogram(t, s, &l, "chime_job_run_duration_seconds", "How long runs took, by job.", false);
  histogram(t, s, &l, "chime_job_run_lateness_seconds",
            "How late runs started after their tick (and jitter), by job.", true);
  instants(t, s, &l, "chime_job_last_success_timestamp_seconds",
           "When the latest run that succeeded ended, by job (none yet: no sample).",
           offsetof(struct snap_job, st) + offsetof(struct job_status, last_ok), false);
  instants(t, s, &l, "chime_job_last_failure_timestamp_seconds",
           "When the latest run that did not succeed ended, by job (none yet: no sample).",
           offsetof(struct snap_job, st) + offsetof(struct job_status, last_failure), false);
  instants(t, s, &l, "chime_job_next_run_timestamp_seconds",
           "When the next run is planned, by job (none planned: no sample).", offsetof(struct snap_job, next), true);
  free(l.text.p);
  free(l.at);
}

/* ---- the JSON of /api/jobs -------------------------------------------------------------- */

static void json_key(struct text *t, const char *key, bool first) {
  if (!first) text_put(t, ",", 1);
  text_put(t, "\"", 1), text_puts(t, key), text_put(t, "\":", 2);
}

static void json_str(struct text *t, const char *key, const char *v) {
  json_key(t, key, false);
  if (v) text_json(t, v, strlen(v));
  else text_puts(t, "null");
}

static void json_wall(struct text *t, const char *key, chime_ns wall, bool set) {
  json_key(t, key, false);
  if (!set) {
    text_puts(t, "null");
    return;
  }
  text_put(t, "\"", 1), text_wall(t, wall), text_put(t, "\"", 1);
}

/* A job's latest run, with the names and forms of `chime history --json`. */
static void json_last(struct text *t, const struct last_run *l) {
  json_key(t, "last", false);
  if (!l->started) {
    text_puts(t, "null");
    return;
  }
  text_puts(t, "{\"outcome\":\""), text_puts(t, outcome_name(l->result)), text_put(t, "\"", 1);
  json_wall(t, "scheduled", l->scheduled, true);
  json_wall(t, "started", l->started, true);
  json_wall(t, "ended", l->ended, true);
  json_key(t, "exit_code", false);
  if (l->exit_code >= 0) text_int(t, l->exit_code);
  else text_puts(t, "null");
  json_key(t, "signal", false);
  if (l->signal > 0) text_int(t, l->signal);
  else text_puts(t, "null");
  json_key(t, "late", false), text_seconds(t, l->late, 3);
  json_key(t, "duration", false), text_seconds(t, l->duration, 3);
  text_put(t, "}", 1);
}

static void json_job(struct text *t, const struct snap_job *j) {
  text_puts(t, "{\"name\":"), text_json(t, j->name, strlen(j->name));
  json_str(t, "schedule", j->calendar ? j->schedule : NULL);
  json_str(t, "every", j->every ? j->schedule : NULL);
  json_key(t, "interval", false);
  if (j->every) text_seconds(t, j->every, 3);
  else text_puts(t, "null");
  json_str(t, "tz", j->tz);
  json_key(t, "reboot", false), text_puts(t, !j->calendar && strcmp(j->schedule, "@reboot") == 0 ? "true" : "false");
  json_wall(t, "next", j->next, j->next != CHIME_NEVER);
  json_key(t, "ended", false), text_puts(t, j->ended ? "true" : "false");
  json_key(t, "paused", false), text_puts(t, j->paused ? "true" : "false");
  json_key(t, "running", false), text_u64(t, j->running);
  json_wall(t, "running_since", j->running_since, j->running_since != 0);
  json_last(t, &j->last);
  json_wall(t, "last_success", j->st.last_ok, j->st.last_ok != 0);
  json_wall(t, "last_failure", j->st.last_failure, j->st.last_failure != 0);
  json_key(t, "runs", false);
  text_put(t, "{", 1);
  for (size_t k = 0; k < RUN_OUTCOMES; k++) {
    json_key(t, outcome_name(run_outcomes[k]), k == 0);
    text_u64(t, j->st.runs[run_outcomes[k]]);
  }
  text_put(t, "}", 1);
  json_key(t, "skipped", false);
  text_put(t, "{", 1);
  for (int reason = CHIME_SKIP_OVERLAP; reason < SKIP_REASON_COUNT; reason++) {
    json_key(t, skip_reason_name(reason), reason == CHIME_SKIP_OVERLAP);
    text_u64(t, j->st.skipped[reason]);
  }
  text_puts(t, "}}");
}

void render_jobs(const struct snapshot *s, struct text *t) {
  room(t, s->njobs * JOBS_BYTES_PER_JOB);
  text_put(t, "{", 1);
  json_key(t, "now", true), text_put(t, "\"", 1), text_wall(t, s->now), text_put(t, "\"", 1);
  json_wall(t, "started", s->started, true);
  json_str(t, "version", chime_version());
  json_key(t, "pid", false), text_int(t, s->pid);
  json_str(t, "config", s->config);
  json_str(t, "db", s->db);
  json_key(t, "stopping", false), text_puts(t, s->stopping ? "true" : "false");
  json_key(t, "jobs", false);
  text_put(t, "[", 1);
  for (size_t i = 0; i < s->njobs; i++) {
    if (i) text_put(t, ",\n", 2);
    json_job(t, &s->jobs[i]);
  }
  text_puts(t, "]}\n");
}
