/* status.c - chime status: every job of the config with its schedule,
 * state (active, paused, ended), next run (the library's plan,
 * chime_every_stats' next_wall), latest run (its outcome and end, from the
 * job's events: job_status) and runs going (pid, how long, what triggered
 * them), as a table or as JSON.
 *
 * Its cost is what the loop spends on one request: the jobs sorted by
 * name, the runs going sorted by their job's name and walked beside them,
 * and the answer built in one buffer, sized for it at once, with appends
 * that do no formatting work they can avoid: printf and a growing
 * memstream made 10,000 jobs cost 20 ms; they cost about 8 ms now, from
 * the client's connect to its last byte (bench/chime-control-bench).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "control.h"
#include "log.h"

/* ---- the answer's buffer ------------------------------------------------------------ */

struct out {
  char *p;
  size_t len, cap;
  bool nomem; /* an append failed: the answer is cut */
};

static void put(struct out *o, const char *s, size_t n) {
  if (o->len + n > o->cap) {
    size_t cap = o->cap ? o->cap : 65536;
    while (cap < o->len + n)
      cap *= 2;
    char *p = o->nomem ? NULL : realloc(o->p, cap);
    if (!p) {
      o->nomem = true;
      return;
    }
    o->p = p, o->cap = cap;
  }
  memcpy(o->p + o->len, s, n);
  o->len += n;
}

static void puts_(struct out *o, const char *s) { put(o, s, strlen(s)); }

/* s, then blanks to `width`, then two more: a table's cell. */
static void cell(struct out *o, const char *s, int width) {
  static const char blanks[] = "                                                                ";
  size_t n = strlen(s);
  put(o, s, n);
  for (int pad = width - (int)n + 2; pad > 0; pad -= 64)
    put(o, blanks, pad < 64 ? (size_t)pad : 64);
}

static void put_u64(struct out *o, uint64_t v) {
  char buf[24], *e = buf + sizeof buf, *b = e;
  do
    *--b = (char)('0' + v % 10);
  while (v /= 10);
  put(o, b, (size_t)(e - b));
}

/* A JSON string: escaped as the log escapes, with a fast path for text
 * that needs none (job names always). */
static void put_json_str(struct out *o, const char *s) {
  const char *c = s;
  while (*c >= 0x20 && *c != '"' && *c != '\\' && (unsigned char)*c < 0x80)
    c++;
  if (!*c) {
    put(o, "\"", 1), put(o, s, (size_t)(c - s)), put(o, "\"", 1);
    return;
  }
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  if (f) json_fputs(f, s, strlen(s));
  if (!f || fclose(f) != 0)
    o->nomem = true;
  else
    put(o, text, len);
  free(text);
}

/* An instant as format_wall writes it (RFC 3339 UTC, ms) into t (32
 * bytes), its date and time of day formatted once per second seen (the
 * jobs' times share them); its length. */
static size_t format_time(chime_ns wall, char *t) {
  static chime_ns last_sec = INT64_MIN;
  static char day[32];
  chime_ns sec = wall / CHIME_SEC(1), ms = wall % CHIME_SEC(1) / CHIME_MS(1);
  if (ms < 0) sec--, ms += 1000;
  if (sec != last_sec) {
    format_wall(sec * CHIME_SEC(1), day, sizeof day); /* ...T01:02:03.000Z */
    last_sec = sec;
  }
  size_t n = strlen(day);
  memcpy(t, day, n + 1);
  if (n >= 4)
    t[n - 4] = (char)('0' + ms / 100), t[n - 3] = (char)('0' + ms / 10 % 10), t[n - 2] = (char)('0' + ms % 10);
  return n;
}

static void put_time(struct out *o, chime_ns wall) {
  char t[32];
  put(o, t, format_time(wall, t));
}

/* A duration as people read it at a glance: 912ms, 2.1s, 5m12s, 3h5m. */
static void human(chime_ns d, char *buf, size_t size) {
  if (d < 0) d = 0;
  if (d >= CHIME_MIN(1))
    d -= d % CHIME_SEC(1);
  else if (d >= CHIME_SEC(1))
    d -= d % CHIME_MS(100);
  else
    d -= d % CHIME_MS(1);
  if (d >= CHIME_HOUR(1)) d -= d % CHIME_MIN(1);
  chime_format_duration(d, buf, size);
}

static int by_name(const void *a, const void *b) {
  const struct job *x = *(const struct job *const *)a, *y = *(const struct job *const *)b;
  return strcmp(x->conf->name, y->conf->name);
}

static int run_by_name(const void *a, const void *b) {
  const struct run *x = *(const struct run *const *)a, *y = *(const struct run *const *)b;
  return strcmp(x->job->conf->name, y->job->conf->name);
}

/* The schedule as a config writes it. */
static void schedule_text(const struct job_conf *c, char *buf, size_t size) {
  char every[64];
  if (c->reboot)
    snprintf(buf, size, "@reboot");
  else if (c->cron)
    snprintf(buf, size, "%s%s%s", c->schedule, c->tz_name ? " " : "", c->tz_name ? c->tz_name : "");
  else
    chime_format_duration(c->every, every, sizeof every), snprintf(buf, size, "every %s", every);
}

static const char *state_of(const struct job *j) { return j->ended ? "ended" : j->paused ? "paused" : "active"; }

/* What status needs, gathered once. */
struct view {
  const struct job **jobs;
  size_t njobs;
  const struct run **runs;
  size_t nruns;
};

static int gather(const struct runner *r, struct view *v) {
  for (const struct job *j = r->jobs; j; j = j->next)
    v->njobs += !j->retired;
  for (const struct run *x = r->runs; x; x = x->next)
    v->nruns++;
  v->jobs = malloc((v->njobs + 1) * sizeof *v->jobs);
  v->runs = malloc((v->nruns + 1) * sizeof *v->runs);
  if (!v->jobs || !v->runs) return -1;
  size_t n = 0;
  for (const struct job *j = r->jobs; j; j = j->next)
    if (!j->retired) v->jobs[n++] = j;
  n = 0;
  for (const struct run *x = r->runs; x; x = x->next)
    v->runs[n++] = x;
  qsort(v->jobs, v->njobs, sizeof *v->jobs, by_name);
  qsort(v->runs, v->nruns, sizeof *v->runs, run_by_name);
  return 0;
}

/* The runs going of the job named as v->jobs[i], from *k on (the runs
 * are walked beside the jobs): their first index, and *k past them. */
static size_t runs_of(const struct view *v, size_t i, size_t *k) {
  const char *name = v->jobs[i]->conf->name;
  while (*k < v->nruns && strcmp(v->runs[*k]->job->conf->name, name) < 0)
    (*k)++;
  size_t first = *k;
  while (*k < v->nruns && strcmp(v->runs[*k]->job->conf->name, name) == 0)
    (*k)++;
  return first;
}

static void json_time(struct out *o, const char *key, chime_ns wall, bool has) {
  puts_(o, ",\"");
  puts_(o, key);
  if (!has) {
    puts_(o, "\":null");
    return;
  }
  puts_(o, "\":\"");
  put_time(o, wall);
  puts_(o, "\"");
}

static void json_job(struct out *o, const struct control *c, const struct view *v, size_t i, size_t *k, chime_ns now) {
  const struct job *j = v->jobs[i];
  const struct job_conf *cf = j->conf;
  const struct job_status *st = &j->status;
  char text[256];
  chime_job_stats stats;
  bool next = chime_every_stats(j->handle, &stats) == 0 && stats.next_wall != CHIME_NEVER;
  puts_(o, i ? ",\n{\"name\":" : "{\"name\":");
  put_json_str(o, cf->name);
  schedule_text(cf, text, sizeof text);
  puts_(o, ",\"schedule\":");
  put_json_str(o, text);
  puts_(o, ",\"state\":\""), puts_(o, state_of(j));
  puts_(o, j->paused ? "\",\"paused\":true" : "\",\"paused\":false");
  const chime_ns *since = names_get(&c->paused, cf->name);
  json_time(o, "paused_since", since ? *since : 0, since != NULL);
  json_time(o, "next", stats.next_wall, next);
  if (st->last_outcome == OUTCOME_RUNNING) {
    puts_(o, ",\"last\":null");
  } else {
    puts_(o, ",\"last\":{\"outcome\":\""), puts_(o, outcome_name(st->last_outcome)), puts_(o, "\"");
    json_time(o, "started", st->last_start, true);
    json_time(o, "ended", st->last_end, true);
    puts_(o, ",\"exit_code\":");
    if (st->last_exit >= 0)
      put_u64(o, (uint64_t)st->last_exit);
    else
      puts_(o, "null");
    puts_(o, "}");
  }
  json_time(o, "last_ok", st->last_ok, st->last_ok != 0);
  json_time(o, "last_failure", st->last_failure, st->last_failure != 0);
  puts_(o, ",\"running\":[");
  size_t first = runs_of(v, i, k);
  for (size_t r = first; r < *k; r++) {
    const struct run *x = v->runs[r];
    const char *trig = trigger_name(x->rec.trigger);
    puts_(o, r > first ? ",{\"pid\":" : "{\"pid\":");
    put_u64(o, x->pid > 0 ? (uint64_t)x->pid : 0);
    json_time(o, "scheduled", x->rec.scheduled, true);
    json_time(o, "started", x->rec.started, true);
    snprintf(text, sizeof text, ",\"elapsed\":%.3f,\"triggered_by\":", (double)(now - x->rec.started) / 1e9);
    puts_(o, text);
    if (trig)
      puts_(o, "\""), puts_(o, trig), puts_(o, "\"}");
    else
      puts_(o, "null}");
  }
  puts_(o, "],\"runs\":{");
  for (int r = OUTCOME_OK; r < OUTCOME_SKIPPED; r++) {
    puts_(o, r == OUTCOME_OK ? "\"" : ",\""), puts_(o, outcome_name((outcome)r)), puts_(o, "\":");
    put_u64(o, st->runs[r]);
  }
  puts_(o, "},\"skipped\":{");
  for (int r = CHIME_SKIP_OVERLAP; r < SKIP_REASON_COUNT; r++) {
    puts_(o, r == CHIME_SKIP_OVERLAP ? "\"" : ",\""), puts_(o, skip_reason_name(r)), puts_(o, "\":");
    put_u64(o, st->skipped[r]);
  }
  puts_(o, "}}");
}

/* A row of the table, but its runs going. */
struct cells {
  char sched[256], next[64], in[32], ago[32];
  const char *last;
};

static void cells_of(const struct job *j, chime_ns now, struct cells *c) {
  const struct job_status *st = &j->status;
  chime_job_stats stats;
  schedule_text(j->conf, c->sched, sizeof c->sched);
  strcpy(c->next, "-"), strcpy(c->in, "-"), strcpy(c->ago, "-");
  if (chime_every_stats(j->handle, &stats) == 0 && stats.next_wall != CHIME_NEVER) {
    format_time(stats.next_wall, c->next);
    human(stats.next_wall - now, c->in, sizeof c->in);
  }
  if (st->last_end) human(now - st->last_end, c->ago, sizeof c->ago);
  c->last = st->last_outcome == OUTCOME_RUNNING ? "-" : outcome_name(st->last_outcome);
}

static void widen(int *w, const char *text) {
  int n = (int)strlen(text);
  if (n > *w) *w = n;
}

/* The table: its columns as wide as their widest cell (a first pass). */
static void table(struct out *o, const struct view *v, chime_ns now) {
  int w[6] = {3, 8, 4, 2, 4, 3}; /* JOB SCHEDULE NEXT IN LAST AGO */
  struct cells c;
  for (size_t i = 0; i < v->njobs; i++) {
    cells_of(v->jobs[i], now, &c);
    widen(&w[0], v->jobs[i]->conf->name), widen(&w[1], c.sched), widen(&w[2], c.next), widen(&w[3], c.in);
    widen(&w[4], c.last), widen(&w[5], c.ago);
  }
  cell(o, "JOB", w[0]), cell(o, "SCHEDULE", w[1]), cell(o, "STATE", 6), cell(o, "NEXT", w[2]), cell(o, "IN", w[3]);
  cell(o, "LAST", w[4]), cell(o, "AGO", w[5]), puts_(o, "RUNNING\n");
  size_t k = 0;
  for (size_t i = 0; i < v->njobs; i++) {
    const struct job *j = v->jobs[i];
    cells_of(j, now, &c);
    cell(o, j->conf->name, w[0]), cell(o, c.sched, w[1]), cell(o, state_of(j), 6), cell(o, c.next, w[2]);
    cell(o, c.in, w[3]), cell(o, c.last, w[4]), cell(o, c.ago, w[5]);
    size_t first = runs_of(v, i, &k);
    for (size_t r = first; r < k; r++) {
      const struct run *x = v->runs[r];
      const char *trig = trigger_name(x->rec.trigger);
      human(now - x->rec.started, c.in, sizeof c.in);
      puts_(o, r > first ? ", pid " : "pid ");
      put_u64(o, x->pid > 0 ? (uint64_t)x->pid : 0);
      puts_(o, " for "), puts_(o, c.in);
      if (trig) puts_(o, ", "), puts_(o, trig);
    }
    puts_(o, k > first ? "\n" : "-\n");
  }
}

char *status_text(const struct control *c, bool json, size_t *len) {
  const struct runner *r = c->r;
  struct view v = {0};
  struct out o = {0};
  chime_ns now = chime_wall_now();
  int rc = gather(r, &v);
  o.cap = 4096 + v.njobs * (json ? 400 : 120); /* about what it takes: no copy as it grows */
  if (rc == 0) o.p = malloc(o.cap);
  if (!o.p) {
    o.nomem = true;
  } else if (!json) {
    table(&o, &v, now);
  } else {
    puts_(&o, "{\"pid\":");
    put_u64(&o, (uint64_t)getpid());
    puts_(&o, ",\"now\":\"");
    put_time(&o, now);
    puts_(&o, "\",\"config\":");
    if (r->config_path)
      put_json_str(&o, r->config_path);
    else
      puts_(&o, "null");
    puts_(&o, ",\"db\":");
    if (r->db_path)
      put_json_str(&o, r->db_path);
    else
      puts_(&o, "null");
    puts_(&o, ",\"running\":");
    put_u64(&o, c->running);
    puts_(&o, ",\"jobs\":[\n");
    size_t k = 0;
    for (size_t i = 0; i < v.njobs; i++)
      json_job(&o, c, &v, i, &k, now);
    puts_(&o, "\n]}\n");
  }
  free(v.jobs);
  free(v.runs);
  if (o.nomem) {
    free(o.p);
    return NULL;
  }
  *len = o.len;
  return o.p;
}
