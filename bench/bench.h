/* bench.h - measurement for chime-bench, following the benchmark
 * specification the peer programs also follow: one JSON result line per
 * run; monotonic time; CPU as user + system of the whole process over the
 * measured window; lateness in a histogram of 1 us buckets up to 1 s, then
 * 1 ms buckets up to 1000 s, then one overflow bucket. */
#ifndef CHIME_BENCH_H
#define CHIME_BENCH_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static inline int64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline int64_t cpu_ns(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000 +
         ((int64_t)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000;
}

static inline long peak_rss_kb(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

/* Resident bytes now, from /proc/self/statm. */
static inline int64_t rss_bytes(void) {
  long pages = 0, resident = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (!f) return -1;
  if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = -1;
  fclose(f);
  return (int64_t)resident * sysconf(_SC_PAGESIZE);
}

/* Lateness histogram.  Early fires (negative lateness) are counted apart:
 * there must be none. */
enum { FINE = 1000000, COARSE = 1000000 };
struct hist {
  uint32_t *fine;   /* [0, 1 s) in us */
  uint32_t *coarse; /* [1 s, 1000 s) in ms */
  uint64_t n, early, over;
  int64_t min_ns, last_ns;
};

static inline void hist_init(struct hist *h) {
  memset(h, 0, sizeof *h);
  h->fine = calloc(FINE, sizeof *h->fine); /* lazily zeroed pages: only hit buckets become resident */
  h->coarse = calloc(COARSE, sizeof *h->coarse);
  if (!h->fine || !h->coarse) {
    perror("calloc");
    exit(2);
  }
  h->min_ns = INT64_MAX;
}

static inline void hist_add(struct hist *h, int64_t late_ns) {
  h->n++;
  h->last_ns = late_ns;
  if (late_ns < h->min_ns) h->min_ns = late_ns;
  if (late_ns < 0) {
    h->early++;
    return;
  }
  int64_t us = late_ns / 1000;
  if (us < FINE)
    h->fine[us]++;
  else if (us / 1000 < COARSE)
    h->coarse[us / 1000]++;
  else
    h->over++;
}

/* The lateness (us) at quantile p of all recorded fires; early fires count
 * as the lowest values. */
static inline int64_t hist_pct(const struct hist *h, double p) {
  if (!h->n) return 0;
  uint64_t rank = (uint64_t)ceil(p * (double)h->n), acc = h->early;
  if (rank < 1) rank = 1;
  if (acc >= rank) return h->min_ns / 1000;
  for (int64_t i = 0; i < FINE; i++)
    if ((acc += h->fine[i]) >= rank) return i;
  for (int64_t i = 1000; i < COARSE; i++)
    if ((acc += h->coarse[i]) >= rank) return i * 1000;
  return (int64_t)COARSE * 1000;
}

/* The JSON result line. */
struct jline {
  char b[4096];
  size_t len;
};

static inline void j_raw(struct jline *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline void j_raw(struct jline *j, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int w = vsnprintf(j->b + j->len, sizeof j->b - j->len, fmt, ap);
  va_end(ap);
  if (w > 0) j->len += (size_t)w;
  if (j->len >= sizeof j->b) j->len = sizeof j->b - 1;
}
static inline void j_begin_impl(struct jline *j, const char *impl, const char *workload) {
  j->len = 0;
  j_raw(j, "{\"impl\":\"%s\",\"workload\":\"%s\"", impl, workload);
}
static inline void j_begin(struct jline *j, const char *workload) { j_begin_impl(j, "chime", workload); }
static inline void j_int(struct jline *j, const char *k, int64_t v) { j_raw(j, ",\"%s\":%lld", k, (long long)v); }
static inline void j_num(struct jline *j, const char *k, double v, int prec) { j_raw(j, ",\"%s\":%.*f", k, prec, v); }
static inline void j_str(struct jline *j, const char *k, const char *v) {
  j_raw(j, ",\"%s\":\"", k);
  for (; *v; v++)
    j_raw(j, (*v == '"' || *v == '\\') ? "\\%c" : "%c", *v);
  j_raw(j, "\"");
}
static inline void j_end(struct jline *j, FILE *f) {
  j_raw(j, "}");
  fprintf(f, "%s\n", j->b);
  fflush(f);
}
static inline void j_lateness(struct jline *j, const struct hist *h) {
  j_int(j, "late_p50_us", hist_pct(h, 0.50));
  j_int(j, "late_p99_us", hist_pct(h, 0.99));
  j_int(j, "late_max_us", hist_pct(h, 1.0));
}

/* The pingpong line, which chime-bench and pingpong_libuv both print:
 * `messages` one-byte messages in dt ns. */
static inline void j_pingpong(const char *impl, long messages, int64_t dt, const char *note) {
  struct jline j;
  j_begin_impl(&j, impl, "pingpong");
  j_int(&j, "n", messages);
  j_num(&j, "wall_s", (double)dt / 1e9, 3);
  j_num(&j, "msgs_per_s", (double)messages * 1e9 / (double)dt, 0);
  j_num(&j, "ns_per_msg", (double)dt / (double)messages, 1);
  j_str(&j, "note", note);
  j_end(&j, stdout);
}

#endif
