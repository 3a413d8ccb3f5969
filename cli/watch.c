/* watch.c - the daemon seen from outside (watch.h): what the runner's
 * events say that its job status does not keep, snapshots, and the
 * Prometheus exposition and JSON written from them.
 *
 * What the watch keeps per job name is an entry of an open-addressing
 * table (names are few and never leave it: a name a reload removed keeps
 * its entry, a hundred bytes, until chime exits).  An entry belongs to one
 * version of its job, told by a hash of the job's fingerprint (every
 * setting): a new version empties it.
 *
 * The writers run on a pool thread over a snapshot and format by hand:
 * 10,000 jobs give half a million lines of exposition, where snprintf and
 * strftime would cost more than the 50 ms an answer may take.
 */
#include "watch.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

/* Bucket bounds in ns, and as the exposition writes them. */
static const chime_ns duration_bounds[WATCH_DURATION_BUCKETS] = {
    CHIME_MS(10), CHIME_MS(50), CHIME_MS(100), CHIME_MS(500), CHIME_SEC(1), CHIME_SEC(5),
    CHIME_SEC(10), CHIME_SEC(30), CHIME_SEC(60), CHIME_SEC(300), CHIME_SEC(1800)};
static const char *const duration_les[WATCH_DURATION_BUCKETS + 1] = {
    "0.01", "0.05", "0.1", "0.5", "1", "5", "10", "30", "60", "300", "1800", "+Inf"};
static const chime_ns lateness_bounds[WATCH_LATENESS_BUCKETS] = {
    CHIME_US(100), CHIME_US(500), CHIME_MS(1), CHIME_MS(5), CHIME_MS(10),
    CHIME_MS(50), CHIME_MS(100), CHIME_MS(500), CHIME_SEC(1), CHIME_SEC(5)};
static const char *const lateness_les[WATCH_LATENESS_BUCKETS + 1] = {
    "0.0001", "0.0005", "0.001", "0.005", "0.01", "0.05", "0.1", "0.5", "1", "5", "+Inf"};

/* What the watch keeps of a job name. */
struct entry {
  char name[JOB_NAME_MAX + 1]; /* "" : a free slot */
  uint64_t version;            /* the hash of its version's fingerprint */
  struct hist duration, lateness;
  struct last_run last;
  size_t snap;                 /* its job's index in the snapshot numbered gen */
  uint64_t gen;
};

struct watch {
  struct runner *r;
  struct observer obs;
  struct entry *slots; /* a power of two of them, at most 70% used */
  size_t cap, used;
  uint64_t gen;        /* snapshots taken */
  chime_ns started;    /* wall clock */
};

/* FNV-1a, 64 bits. */
static uint64_t hash(const char *s) {
  uint64_t h = 14695981039346656037ULL;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
  return h;
}

static void last_init(struct last_run *l) {
  memset(l, 0, sizeof *l);
  l->exit_code = -1;
}

static int grow(struct watch *w) {
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
static struct entry *slot(const struct watch *w, const char *name) {
  size_t k = hash(name) & (w->cap - 1);
  while (w->slots[k].name[0] && strcmp(w->slots[k].name, name) != 0) k = (k + 1) & (w->cap - 1);
  return &w->slots[k];
}

/* The entry of job j's name, made if need be, emptied if it was another
 * version's; NULL without memory. */
static struct entry *entry_of(struct watch *w, const struct job *j) {
  if (w->used * 10 >= w->cap * 7 && grow(w) != 0) return NULL;
  const char *name = j->conf->name;
  struct entry *e = slot(w, name);
  uint64_t version = hash(j->conf->fingerprint);
  if (!e->name[0]) snprintf(e->name, sizeof e->name, "%s", name), w->used++;
  else if (e->version == version) return e;
  e->version = version;
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
  struct watch *w = ctx;
  if (ev->type != CHIME_EVENT_END || j->retired) return;
  struct entry *e = entry_of(w, j);
  if (!e) return;
  hist_add(&e->duration, duration_bounds, WATCH_DURATION_BUCKETS, ev->duration);
  hist_add(&e->lateness, lateness_bounds, WATCH_LATENESS_BUCKETS, ev->late);
  if (!run) return;
  const struct run_record *rec = &run->rec;
  e->last = (struct last_run){.scheduled = rec->scheduled, .started = rec->started, .ended = rec->ended,
                              .late = rec->late, .duration = ev->duration, .result = rec->result,
                              .exit_code = rec->exit_code, .signal = rec->signal};
}

int watch_new(struct runner *r, struct watch **out) {
  struct watch *w = calloc(1, sizeof *w);
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

void watch_free(struct watch *w) {
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

int watch_snapshot(struct watch *w, struct snapshot **out) {
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
    snprintf(sj->name, sizeof sj->name, "%s", c->name);
    char every[64];
    sj->calendar = c->cron != NULL;
    if (c->reboot) at[2 * i] = keep(&str, "@reboot");
    else if (c->cron) at[2 * i] = keep(&str, c->schedule);
    else chime_format_duration(c->every, every, sizeof every), at[2 * i] = keep(&str, every), sj->every = c->every;
    at[2 * i + 1] = c->cron && c->tz_name ? keep(&str, c->tz_name) : NO_STRING;
    sj->st = j->status;
    sj->last = e->last;
    sj->duration = e->duration, sj->lateness = e->lateness;
    sj->running = j->running;
    sj->ended = j->ended;
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

void text_put(struct text *t, const char *s, size_t n) {
  if (t->nomem) return;
  if (t->len + n + 1 > t->cap) {
    size_t cap = t->cap ? t->cap : 4096;
    while (cap < t->len + n + 1) cap *= 2;
    char *p = realloc(t->p, cap);
    if (!p) {
      t->nomem = true;
      return;
    }
    t->p = p, t->cap = cap;
  }
  memcpy(t->p + t->len, s, n);
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

static void family(struct text *t, const char *name, const char *type, const char *help) {
  text_puts(t, "# HELP "), text_puts(t, name), text_put(t, " ", 1), text_puts(t, help);
  text_puts(t, "\n# TYPE "), text_puts(t, name), text_put(t, " ", 1), text_puts(t, type), text_put(t, "\n", 1);
}

/* `name{job="JOB"` (the caller closes the labels). */
static void sample(struct text *t, const char *name, const char *job) {
  text_puts(t, name);
  text_puts(t, "{job=\"");
  text_label(t, job);
  text_put(t, "\"", 1);
}

static void value_u64(struct text *t, uint64_t v) {
  text_put(t, "} ", 2);
  text_u64(t, v);
  text_put(t, "\n", 1);
}

static void value_time(struct text *t, chime_ns wall) {
  text_put(t, "} ", 2);
  text_seconds(t, wall, 3);
  text_put(t, "\n", 1);
}

static void histogram(struct text *t, const struct snapshot *s, const char *name, const char *help, bool lateness) {
  char bucket[96], sum[96], count[96];
  snprintf(bucket, sizeof bucket, "%s_bucket", name);
  snprintf(sum, sizeof sum, "%s_sum", name);
  snprintf(count, sizeof count, "%s_count", name);
  family(t, name, "histogram", help);
  int nb = lateness ? WATCH_LATENESS_BUCKETS : WATCH_DURATION_BUCKETS;
  const char *const *les = lateness ? lateness_les : duration_les;
  for (size_t i = 0; i < s->njobs; i++) {
    const struct snap_job *j = &s->jobs[i];
    const struct hist *h = lateness ? &j->lateness : &j->duration;
    uint64_t cumulative = 0;
    for (int b = 0; b <= nb; b++) {
      cumulative += h->bucket[b];
      sample(t, bucket, j->name);
      text_puts(t, ",le=\""), text_puts(t, les[b]), text_put(t, "\"", 1);
      value_u64(t, cumulative);
    }
    sample(t, sum, j->name);
    text_put(t, "} ", 2), text_seconds(t, h->sum, 9), text_put(t, "\n", 1);
    sample(t, count, j->name);
    value_u64(t, h->count);
  }
}

/* The outcomes a run of a running chime can have (running, interrupted
 * and skipped are no run's end). */
static const outcome run_outcomes[] = {OUTCOME_OK,      OUTCOME_FAILED,   OUTCOME_SIGNAL, OUTCOME_TIMEOUT,
                                       OUTCOME_STOPPED, OUTCOME_REPLACED, OUTCOME_ERROR};

void render_metrics(const struct snapshot *s, struct text *t) {
  family(t, "chime_build_info", "gauge", "The chime that runs: its version.");
  text_puts(t, "chime_build_info{version=\""), text_label(t, chime_version()), text_puts(t, "\"} 1\n");
  family(t, "chime_start_time_seconds", "gauge", "When chime started, in seconds since the Unix epoch.");
  text_puts(t, "chime_start_time_seconds "), text_seconds(t, s->started, 3), text_put(t, "\n", 1);
  family(t, "chime_jobs", "gauge", "Jobs in the running config.");
  text_puts(t, "chime_jobs "), text_u64(t, s->njobs), text_put(t, "\n", 1);
  family(t, "chime_history_write_failures_total", "counter",
         "Writes of the history database that failed (each try of a batch of records).");
  text_puts(t, "chime_history_write_failures_total "), text_u64(t, s->history.failures), text_put(t, "\n", 1);
  family(t, "chime_history_records_dropped_total", "counter",
         "Records the history never got: its queue was full, or there was no memory.");
  text_puts(t, "chime_history_records_dropped_total "), text_u64(t, s->history.dropped), text_put(t, "\n", 1);
  family(t, "chime_history_queued_records", "gauge", "Records waiting to be written to the history database.");
  text_puts(t, "chime_history_queued_records "), text_u64(t, s->history.queued), text_put(t, "\n", 1);
  family(t, "chime_log_lines_dropped_total", "counter", "Log lines dropped because the log could not take them.");
  text_puts(t, "chime_log_lines_dropped_total "), text_u64(t, s->log_dropped), text_put(t, "\n", 1);

  family(t, "chime_job_runs_total", "counter", "Runs that ended, by job and outcome.");
  for (size_t i = 0; i < s->njobs; i++)
    for (size_t k = 0; k < sizeof run_outcomes / sizeof *run_outcomes; k++) {
      sample(t, "chime_job_runs_total", s->jobs[i].name);
      text_puts(t, ",outcome=\""), text_puts(t, outcome_name(run_outcomes[k])), text_put(t, "\"", 1);
      value_u64(t, s->jobs[i].st.runs[run_outcomes[k]]);
    }
  family(t, "chime_job_skipped_ticks_total", "counter",
         "Ticks that started no run, by job and reason (overlap, missed, backoff, vetoed).");
  for (size_t i = 0; i < s->njobs; i++)
    for (int reason = CHIME_SKIP_OVERLAP; reason <= CHIME_SKIP_VETOED; reason++) {
      sample(t, "chime_job_skipped_ticks_total", s->jobs[i].name);
      text_puts(t, ",reason=\""), text_puts(t, skip_reason_name(reason)), text_put(t, "\"", 1);
      value_u64(t, s->jobs[i].st.skipped[reason]);
    }
  family(t, "chime_job_runs_in_progress", "gauge", "Runs going now, by job.");
  for (size_t i = 0; i < s->njobs; i++) sample(t, "chime_job_runs_in_progress", s->jobs[i].name), value_u64(t, s->jobs[i].running);
  histogram(t, s, "chime_job_run_duration_seconds", "How long runs took, by job.", false);
  histogram(t, s, "chime_job_run_lateness_seconds", "How late runs started after their tick (and jitter), by job.",
            true);
  family(t, "chime_job_last_success_timestamp_seconds", "gauge",
         "When the latest run that succeeded ended, by job (none yet: no sample).");
  for (size_t i = 0; i < s->njobs; i++)
    if (s->jobs[i].st.last_ok)
      sample(t, "chime_job_last_success_timestamp_seconds", s->jobs[i].name), value_time(t, s->jobs[i].st.last_ok);
  family(t, "chime_job_last_failure_timestamp_seconds", "gauge",
         "When the latest run that did not succeed ended, by job (none yet: no sample).");
  for (size_t i = 0; i < s->njobs; i++)
    if (s->jobs[i].st.last_failure)
      sample(t, "chime_job_last_failure_timestamp_seconds", s->jobs[i].name),
          value_time(t, s->jobs[i].st.last_failure);
  family(t, "chime_job_next_run_timestamp_seconds", "gauge",
         "When the next run is planned, by job (none planned: no sample).");
  for (size_t i = 0; i < s->njobs; i++)
    if (s->jobs[i].next != CHIME_NEVER)
      sample(t, "chime_job_next_run_timestamp_seconds", s->jobs[i].name), value_time(t, s->jobs[i].next);
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
  json_key(t, "running", false), text_u64(t, j->running);
  json_wall(t, "running_since", j->running_since, j->running_since != 0);
  json_last(t, &j->last);
  json_wall(t, "last_success", j->st.last_ok, j->st.last_ok != 0);
  json_wall(t, "last_failure", j->st.last_failure, j->st.last_failure != 0);
  json_key(t, "runs", false);
  text_put(t, "{", 1);
  for (size_t k = 0; k < sizeof run_outcomes / sizeof *run_outcomes; k++) {
    json_key(t, outcome_name(run_outcomes[k]), k == 0);
    text_u64(t, j->st.runs[run_outcomes[k]]);
  }
  text_put(t, "}", 1);
  json_key(t, "skipped", false);
  text_put(t, "{", 1);
  for (int reason = CHIME_SKIP_OVERLAP; reason <= CHIME_SKIP_VETOED; reason++) {
    json_key(t, skip_reason_name(reason), reason == CHIME_SKIP_OVERLAP);
    text_u64(t, j->st.skipped[reason]);
  }
  text_puts(t, "}}");
}

void render_jobs(const struct snapshot *s, struct text *t) {
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
