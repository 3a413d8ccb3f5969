/* cron.c - cron expressions: parsing, and the next fire time.
 *
 * A compiled expression is a bit set per field (bit v set: the value v
 * matches), two flags for the classic day rule, and whether the hour field
 * names every hour (the daylight saving rule of chime.h depends on it); or,
 * for @every, an interval.  It is immutable once made.
 *
 * The next fire time is searched field by field in local time: a month
 * that does not match is skipped whole, then a day, an hour, a minute, so
 * that even a leap-day expression costs a few dozen steps per year, never
 * a loop over minutes.  Time zones enter as spans of constant UTC offset
 * (cal.h): within a span local time runs evenly, and at the start of each
 * span the gap or overlap it opens is judged by the rules of chime.h.  The
 * fire times form one fixed set for a given expression and zone; next is
 * the first of them after `after`, so repeated calls never repeat or skip
 * one.
 */
#include "cal.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

enum { F_SEC, F_MIN, F_HOUR, F_DOM, F_MON, F_DOW, NFIELDS };

struct chime_cron_expr {
  uint64_t bits[NFIELDS]; /* bit v: value v matches (day-of-week: 0-6, Sunday 0) */
  chime_ns every;         /* @every: the interval (> 0); 0 for a calendar expression */
  bool dom_star;          /* the day-of-month text starts with '*' */
  bool dow_star;          /* the day-of-week text starts with '*' */
  bool all_hours;         /* the hour field names every hour */
};

struct field {
  const char *name;
  int min, max; /* the numbers accepted */
  int top;      /* where '*' and "a/n" end (day-of-week: 6, as 7 is Sunday again) */
  const char *names;
  int name_base; /* the value of the first name */
};

static const struct field fields[NFIELDS] = {
    {"second", 0, 59, 59, NULL, 0},
    {"minute", 0, 59, 59, NULL, 0},
    {"hour", 0, 23, 23, NULL, 0},
    {"day-of-month", 1, 31, 31, NULL, 0},
    {"month", 1, 12, 12, "janfebmaraprmayjunjulaugsepoctnovdec", 1},
    {"day-of-week", 0, 7, 6, "sunmontuewedthufrisat", 0},
};

#define ALL_HOURS 0xffffffu

/* ---- parsing -------------------------------------------------------------- */

struct parser {
  const char *expr;      /* the whole text, for columns */
  chime_cron_error *err; /* NULL: the caller does not want the reason */
};

static bool is_blank(char c) { return c == ' ' || c == '\t'; }
static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static char lower(char c) { return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c; }

static int fail(struct parser *ps, const char *at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(struct parser *ps, const char *at, const char *fmt, ...) {
  if (ps->err) {
    va_list ap;
    va_start(ap, fmt);
    ps->err->column = (int)(at - ps->expr) + 1;
    vsnprintf(ps->err->message, sizeof ps->err->message, fmt, ap);
    va_end(ap);
  }
  return -EINVAL;
}

/* Copies text[0..n) for a message: at most 24 bytes, other than printable
 * ASCII written as \xNN. */
static const char *quote(char *buf, const char *text, size_t n) {
  size_t k = 0;
  for (size_t i = 0; i < n && i < 24; i++) {
    unsigned char c = (unsigned char)text[i];
    if (c >= 0x20 && c < 0x7f)
      buf[k++] = (char)c;
    else
      k += (size_t)snprintf(buf + k, 5, "\\x%02x", c);
  }
  if (n > 24) memcpy(buf + k, "...", 3), k += 3;
  buf[k] = '\0';
  return buf;
}

/* A value of field f at *p (a number, or a name where the field has
 * names), ending before `end`.  *named tells which it was. */
static int value(struct parser *ps, const struct field *f, const char **p, const char *end, int *out, bool *named) {
  const char *s = *p, *q = s;
  char buf[100];
  *named = false;
  if (q < end && is_digit(*q)) {
    long v = 0;
    while (q < end && is_digit(*q))
      v = v < 1000000 ? v * 10 + (*q - '0') : v, q++;
    if (v < f->min || v > f->max)
      return fail(ps, s, "%s field: %s is out of range %d-%d", f->name, quote(buf, s, (size_t)(q - s)), f->min, f->max);
    *out = (int)v;
  } else if (q < end && is_alpha(*q)) {
    while (q < end && is_alpha(*q))
      q++;
    size_t n = (size_t)(q - s);
    if (!f->names)
      return fail(ps, s, "%s field: expected a number %d-%d, found '%s'", f->name, f->min, f->max, quote(buf, s, n));
    int found = -1;
    for (int i = 0; n == 3 && f->names[3 * i]; i++)
      if (lower(s[0]) == f->names[3 * i] && lower(s[1]) == f->names[3 * i + 1] && lower(s[2]) == f->names[3 * i + 2])
        found = i;
    if (found < 0) return fail(ps, s, "%s field: unknown name '%s'", f->name, quote(buf, s, n));
    *out = f->name_base + found;
    *named = true;
  } else if (q == end) {
    return fail(ps, s, "%s field: expected a value after '%c'", f->name, s[-1]);
  } else {
    return fail(ps, s, "%s field: unexpected '%s' (expected a number%s or '*')", f->name, quote(buf, s, 1),
                f->names ? ", a name" : "");
  }
  *p = q;
  return 0;
}

/* One field: a comma-separated list of '*', a, a-b, each maybe with /n. */
static int parse_field(struct parser *ps, const struct field *f, const char *s, const char *end, uint64_t *bits) {
  const char *p = s;
  char buf[100], buf2[100];
  *bits = 0;
  for (;;) {
    int lo, hi, step = 1;
    bool named, single = false;
    const char *at = p;
    if (p < end && *p == '*') {
      p++;
      lo = f->min;
      hi = f->top;
    } else {
      int rc = value(ps, f, &p, end, &lo, &named);
      if (rc) return rc;
      hi = lo;
      single = true;
      if (p < end && *p == '-') {
        p++;
        if ((rc = value(ps, f, &p, end, &hi, &named))) return rc;
        if (named && hi == 0 && f == &fields[F_DOW] && lo > 0) hi = 7; /* "fri-sun" */
        if (lo > hi)
          return fail(ps, at, "%s field: range %s goes backwards (the start must not be after the end)", f->name,
                      quote(buf, at, (size_t)(p - at)));
        single = false;
      }
    }
    if (p < end && *p == '/') {
      const char *step_at = ++p;
      long v = 0;
      if (p == end || !is_digit(*p))
        return fail(ps, step_at, "%s field: expected a step (a number) after '/'", f->name);
      while (p < end && is_digit(*p))
        v = v < 1000000 ? v * 10 + (*p - '0') : v, p++;
      if (v == 0) return fail(ps, step_at, "%s field: step 0 (a step must be at least 1)", f->name);
      step = (int)v;
      if (single) hi = f->top > lo ? f->top : lo;
    }
    if (p < end && *p != ',')
      return fail(ps, p, "%s field: unexpected '%s' after %s", f->name, quote(buf, p, 1),
                  quote(buf2, at, (size_t)(p - at)));
    for (int v = lo; v <= hi; v += step)
      *bits |= (uint64_t)1 << v;
    if (p == end) break;
    if (++p == end) return fail(ps, p, "%s field: expected a value after ','", f->name);
  }
  if (f == &fields[F_DOW] && (*bits >> 7 & 1)) *bits = (*bits | 1) & 0x7f;
  return 0;
}

/* Whether some month of the expression has some day of it (Feb 29 counts:
 * leap years have it). */
static bool some_day_exists(const chime_cron_expr *c) {
  static const unsigned char longest[13] = {0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  for (int m = 1; m <= 12; m++)
    if ((c->bits[F_MON] >> m & 1) && (c->bits[F_DOM] & (((uint64_t)2 << longest[m]) - 2))) return true;
  return false;
}

/* Five or six blank-separated fields. */
static int parse_fields(struct parser *ps, const char *s, chime_cron_expr *c) {
  const char *start[NFIELDS], *stop[NFIELDS], *extra = NULL, *last_end = s;
  int n = 0;
  for (const char *p = s; *p;) {
    while (is_blank(*p))
      p++;
    if (!*p) break;
    const char *q = p;
    while (*q && !is_blank(*q))
      q++;
    if (n < NFIELDS)
      start[n] = p, stop[n] = q;
    else if (n == NFIELDS)
      extra = p;
    n++;
    last_end = p = q;
  }
  if (n > NFIELDS) return fail(ps, extra, "expected 5 or 6 fields, found %d", n);
  if (n < 5) return fail(ps, last_end, "expected 5 or 6 fields, found %d", n);
  int first = n == 5 ? F_MIN : F_SEC;
  c->bits[F_SEC] = 1;
  for (int i = first; i < NFIELDS; i++) {
    const char *fs = start[i - first], *fe = stop[i - first];
    int rc = parse_field(ps, &fields[i], fs, fe, &c->bits[i]);
    if (rc) return rc;
    if (i == F_DOM) c->dom_star = *fs == '*';
    if (i == F_DOW) c->dow_star = *fs == '*';
  }
  c->all_hours = c->bits[F_HOUR] == ALL_HOURS;
  if ((c->dom_star || c->dow_star) && !some_day_exists(c))
    return fail(ps, start[F_DOM - first],
                "day-of-month field: no day given occurs in the months given, so the expression never matches");
  return 0;
}

static const struct {
  const char *name, *expr;
} macros[] = {
    {"yearly", "0 0 1 1 *"}, {"annually", "0 0 1 1 *"}, {"monthly", "0 0 1 * *"}, {"weekly", "0 0 * * 0"},
    {"daily", "0 0 * * *"},  {"midnight", "0 0 * * *"}, {"hourly", "0 * * * *"},
};

static bool same_word(const char *s, size_t n, const char *word) {
  if (strlen(word) != n) return false;
  for (size_t i = 0; i < n; i++)
    if (lower(s[i]) != word[i]) return false;
  return true;
}

/* A macro at s ('@'). */
static int parse_macro(struct parser *ps, const char *s, chime_cron_expr *c) {
  const char *q = s + 1;
  char buf[100];
  while (*q && !is_blank(*q))
    q++;
  size_t n = (size_t)(q - s - 1);
  const char *rest = q;
  while (is_blank(*rest))
    rest++;
  if (same_word(s + 1, n, "every")) {
    if (!*rest) return fail(ps, rest, "@every needs a duration, such as 5m or 1h30m");
    int rc = chime_parse_duration(rest, &c->every);
    if (rc == -ERANGE) return fail(ps, rest, "@every: the duration '%s' is too long", quote(buf, rest, strlen(rest)));
    if (rc)
      return fail(ps, rest, "@every: '%s' is not a duration (such as 5m or 1h30m)", quote(buf, rest, strlen(rest)));
    if (c->every <= 0) return fail(ps, rest, "@every: the interval must be longer than 0");
    return 0;
  }
  for (size_t i = 0; i < sizeof macros / sizeof macros[0]; i++) {
    if (!same_word(s + 1, n, macros[i].name)) continue;
    if (*rest) return fail(ps, rest, "unexpected '%s' after @%s", quote(buf, rest, strlen(rest)), macros[i].name);
    struct parser inner = {macros[i].expr, NULL};
    return parse_fields(&inner, macros[i].expr, c);
  }
  return fail(ps, s, "unknown macro '%s'", quote(buf, s, n + 1));
}

int chime_cron_parse(const char *expr, chime_cron_expr **cron, chime_cron_error *err) {
  if (!expr || !cron) return -EINVAL;
  struct parser ps = {expr, err};
  chime_cron_expr c;
  memset(&c, 0, sizeof c);
  const char *s = expr;
  while (is_blank(*s))
    s++;
  int rc = *s == '@' ? parse_macro(&ps, s, &c) : parse_fields(&ps, expr, &c);
  if (rc) return rc;
  chime_cron_expr *out = chime__cron_dup(&c);
  if (!out) return -ENOMEM;
  *cron = out;
  return 0;
}

void chime_cron_free(chime_cron_expr *cron) { chime__free(cron); }

int chime_cron_interval(const chime_cron_expr *cron, chime_ns *interval) {
  if (!cron || !interval || cron->every == 0) return -EINVAL;
  *interval = cron->every;
  return 0;
}

/* ---- the next fire time --------------------------------------------------- */

#define NONE INT64_MAX

/* The first value >= from and <= max in the set, or -1. */
static int next_bit(uint64_t bits, int from, int max) {
  if (from > max) return -1;
  uint64_t b = bits >> from;
  if (!b) return -1;
  int v = from + __builtin_ctzll(b);
  return v <= max ? v : -1;
}

/* A local date and time being searched. */
struct when {
  int64_t y, days; /* year, and days since 1970-01-01 */
  int m, d, h, mi, s;
};

static void next_day(struct when *w) {
  w->days++;
  w->h = w->mi = w->s = 0;
  if (++w->d > chime__month_days(w->y, w->m)) {
    w->d = 1;
    if (++w->m > 12) w->m = 1, w->y++;
  }
}

static bool day_matches(const chime_cron_expr *c, const struct when *w) {
  bool dom = c->bits[F_DOM] >> w->d & 1, dow = c->bits[F_DOW] >> chime__weekday(w->days) & 1;
  return c->dom_star || c->dow_star ? dom && dow : dom || dow;
}

/* The first local time in [from, end) that the fields match, or NONE.
 * Each step either matches a field or moves past a whole month, day, hour
 * or minute that cannot; the search stops at `end` or CHIME__YEAR_MAX. */
static int64_t match_from(const chime_cron_expr *c, int64_t from, int64_t end) {
  if (from >= end) return NONE;
  struct when w;
  w.days = chime__floor_div(from, 86400);
  int64_t sod = from - w.days * 86400;
  chime__civil_from_days(w.days, &w.y, &w.m, &w.d);
  w.h = (int)(sod / 3600), w.mi = (int)(sod / 60 % 60), w.s = (int)(sod % 60);
  for (;;) {
    if (w.y > CHIME__YEAR_MAX || w.days > chime__floor_div(end, 86400)) return NONE;
    if (!(c->bits[F_MON] >> w.m & 1)) {
      int m = next_bit(c->bits[F_MON], w.m + 1, 12);
      if (m < 0) m = next_bit(c->bits[F_MON], 1, 12), w.y++;
      w.m = m, w.d = 1, w.h = w.mi = w.s = 0;
      w.days = chime__days_from_civil(w.y, w.m, 1);
      continue;
    }
    if (!day_matches(c, &w)) {
      /* With the AND rule only the day-of-month set's days can match. */
      int d = c->dom_star || c->dow_star ? next_bit(c->bits[F_DOM], w.d + 1, chime__month_days(w.y, w.m)) : w.d + 1;
      if (d < 0) d = chime__month_days(w.y, w.m) + 1;
      w.days += d - 1 - w.d, w.d = d - 1;
      next_day(&w);
      continue;
    }
    int h = next_bit(c->bits[F_HOUR], w.h, 23);
    if (h < 0) {
      next_day(&w);
      continue;
    }
    if (h != w.h) w.h = h, w.mi = w.s = 0;
    int mi = next_bit(c->bits[F_MIN], w.mi, 59);
    if (mi < 0) {
      if (w.h == 23)
        next_day(&w);
      else
        w.h++, w.mi = w.s = 0;
      continue;
    }
    if (mi != w.mi) w.mi = mi, w.s = 0;
    int s = next_bit(c->bits[F_SEC], w.s, 59);
    if (s < 0) {
      if (w.mi < 59)
        w.mi++, w.s = 0;
      else if (w.h < 23)
        w.h++, w.mi = w.s = 0;
      else
        next_day(&w);
      continue;
    }
    int64_t t = w.days * 86400 + w.h * 3600 + w.mi * 60 + s;
    return t < end ? t : NONE;
  }
}

/* The first fire time at or after second t.  The schedule fires at every
 * instant whose local time matches, except that, unless the hour field
 * names every hour, (a) local times repeated after the clock fell back
 * (before the span's start + its previous offset) do not fire again, and
 * (b) local times skipped when the clock sprang forward fire at the
 * span's start, once.  Each span is searched once: a few spans a year. */
static int next_second(const chime_cron_expr *c, const chime_tz *tz, int64_t t, int64_t *out) {
  for (;;) {
    if (t > CHIME__SEC_MAX) return -ERANGE;
    struct chime__span sp;
    chime__tz_span(tz, t, &sp);
    bool judged = !c->all_hours && sp.start != INT64_MIN;
    if (judged && t == sp.start && sp.off > sp.prev_off &&
        match_from(c, sp.start + sp.prev_off, sp.start + sp.off) != NONE) {
      *out = t;
      return 0;
    }
    int64_t from = t + sp.off;
    if (judged && sp.off < sp.prev_off && from < sp.start + sp.prev_off) from = sp.start + sp.prev_off;
    int64_t l = match_from(c, from, sp.end == INT64_MAX ? INT64_MAX : sp.end + sp.off);
    if (l != NONE) {
      *out = l - sp.off;
      return *out > CHIME__SEC_MAX ? -ERANGE : 0;
    }
    if (sp.end == INT64_MAX) return -ERANGE;
    t = sp.end;
  }
}

int chime_cron_next(const chime_cron_expr *cron, const chime_tz *tz, chime_ns after, chime_ns *next) {
  if (!cron || !tz || !next) return -EINVAL;
  if (cron->every) {
    if (after > INT64_MAX - cron->every) return -ERANGE;
    *next = after + cron->every;
    return 0;
  }
  int64_t sec;
  int rc = next_second(cron, tz, chime__floor_div(after, 1000000000) + 1, &sec);
  if (rc) return rc;
  *next = sec * 1000000000;
  return 0;
}

int chime_cron_next_n(const chime_cron_expr *cron, const chime_tz *tz, chime_ns after, chime_ns *times, size_t n) {
  if (!cron || !tz || !times || n > INT_MAX) return -EINVAL;
  size_t i = 0;
  for (; i < n; i++) {
    int rc = chime_cron_next(cron, tz, after, &times[i]);
    if (rc == -ERANGE) break;
    if (rc) return rc;
    after = times[i];
  }
  return (int)i;
}

/* ---- for calendar jobs (calendar.c) ------------------------------------------ */

bool chime__cron_equal(const chime_cron_expr *a, const chime_cron_expr *b) {
  return memcmp(a->bits, b->bits, sizeof a->bits) == 0 && a->every == b->every && a->dom_star == b->dom_star &&
         a->dow_star == b->dow_star && a->all_hours == b->all_hours;
}

chime_cron_expr *chime__cron_dup(const chime_cron_expr *c) {
  chime_cron_expr *d = chime__malloc(sizeof *d);
  if (d) *d = *c;
  return d;
}
