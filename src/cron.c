/* cron.c - cron expressions: parsing, and the next fire time.
 *
 * A compiled expression is a bit set per field (bit v set: the value v
 * matches), two flags for the classic day rule, and whether the hour field
 * names every hour (the daylight saving rule of chime.h depends on it); or,
 * for @every, an interval.  Days named by the month's shape (L, L-n, W,
 * LW, w#k, wL) are kept as sets of their own, and a year field as a set of
 * years; an expression without them is searched as before, untouched by
 * their cost.  It is immutable once made.
 *
 * The next fire time is searched field by field in local time: a year or a
 * month that does not match is skipped whole, then a day, an hour, a
 * minute, so that even a leap-day expression costs a few dozen steps per
 * year, never a loop over minutes.  With L, W or #, the days of a month
 * that match are computed once for the month, as one bit set.  Time zones enter as spans of constant UTC offset
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
#include <stdlib.h>
#include <string.h>

enum { F_SEC, F_MIN, F_HOUR, F_DOM, F_MON, F_DOW, F_YEAR, NFIELDS };

/* The years a year field may name: those of Quartz and of cronexpr (which
 * supercronic reads crontabs with). */
#define YEAR_FIRST 1970
#define YEAR_LAST 2099
#define YEAR_WORDS ((YEAR_LAST - YEAR_FIRST) / 64 + 1)

struct chime_cron_expr {
  uint64_t bits[F_YEAR];          /* bit v: value v matches (day-of-week: 0-6, Sunday 0) */
  uint64_t years[YEAR_WORDS];     /* with `year`: bit y - YEAR_FIRST, year y matches */
  uint64_t dow_nth;               /* bit 7 * (k - 1) + w: the k-th weekday w of the month (w#k) */
  uint32_t dom_last;              /* bit n: the n-th day before the month's last (L-n; L is n = 0) */
  uint32_t dom_near;              /* bit d: the weekday nearest day d (dW) */
  uint8_t dow_last;               /* bit w: the month's last weekday w (wL) */
  bool dom_lw;                    /* LW: the month's last weekday (Monday to Friday) */
  bool days;                      /* some of the sets above: days are computed per month */
  bool year;                      /* a year field restricts the years */
  chime_ns every;                 /* @every: the interval (> 0); 0 for a calendar expression */
  bool dom_star;                  /* the day-of-month text starts with '*' */
  bool dow_star;                  /* the day-of-week text starts with '*' */
  bool all_hours;                 /* the hour field names every hour */
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
    {"year", YEAR_FIRST, YEAR_LAST, YEAR_LAST, NULL, 0},
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

static bool is_letter(const char *s, char upper) { return *s == upper || *s == upper - 'A' + 'a'; }

/* Why L, W or # cannot stand in field f: NULL where they can. */
static const char *misplaced(const struct field *f, char c) {
  bool dom = f == &fields[F_DOM], dow = f == &fields[F_DOW];
  if ((c == 'L' || c == 'l') && !dom && !dow) return "L (last) is for day-of-month and day-of-week only";
  if ((c == 'W' || c == 'w') && !dom) return "W (nearest weekday) is for day-of-month only";
  if (c == '#' && !dow) return "# (nth weekday) is for day-of-week only";
  return NULL;
}

/* A value of field f at *p (a number, or a name where the field has
 * names), ending before `end`.  *named tells which it was.  In
 * day-of-week a name may be followed by L (friL). */
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
    if (f == &fields[F_DOW] && n == 4 && is_letter(s + 3, 'L')) q--, n--; /* friL */
    const char *why = misplaced(f, *s);
    if (n == 1 && why) return fail(ps, s, "%s field: %s", f->name, why);
    if (n == 1 && f == &fields[F_DOW] && is_letter(s, 'L'))
      return fail(ps, s, "%s field: L alone names no day: 5L is the last Friday, 6 is Saturday", f->name);
    if (n == 1 && f == &fields[F_DOM] && is_letter(s, 'W'))
      return fail(ps, s, "%s field: W follows a day (15W) or L (LW)", f->name);
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

/* A number of 1 or 2 digits at *p, for L-n and w#k; -1 if there is none
 * (more digits read as 100, out of any range). */
static int small_number(const char **p, const char *end) {
  const char *q = *p;
  int v = 0;
  while (q < end && is_digit(*q))
    v = v < 100 ? v * 10 + (*q - '0') : v, q++;
  if (q == *p) return -1;
  *p = q;
  return v;
}

/* L, L-n or LW at *p ('L') in day-of-month. */
static int last_of_month(struct parser *ps, const char **p, const char *end, chime_cron_expr *c) {
  const char *s = *p, *q = s + 1;
  if (q < end && is_letter(q, 'W')) {
    c->dom_lw = true;
    *p = q + 1;
    return 0;
  }
  int n = 0;
  if (q < end && *q == '-') {
    q++;
    if ((n = small_number(&q, end)) < 0 || n > 30)
      return fail(ps, s + 2, "day-of-month field: L-n counts 0 to 30 days back from the month's last");
  }
  c->dom_last |= (uint32_t)1 << n;
  *p = q;
  return 0;
}

/* Sets the values lo..hi (every step-th) of field f in bits (one word a
 * 64 values from f->min for the year, else the value's own bit). */
static void set_values(const struct field *f, uint64_t *bits, int lo, int hi, int step) {
  if (f == &fields[F_YEAR]) {
    for (int v = lo; v <= hi; v += step)
      bits[(v - YEAR_FIRST) / 64] |= (uint64_t)1 << ((v - YEAR_FIRST) % 64);
    return;
  }
  uint64_t m = 0;
  if (step == 1) /* a whole range at once: '*' costs one mask, not a loop */
    m = (hi >= 63 ? ~(uint64_t)0 : ((uint64_t)2 << hi) - 1) & ~(((uint64_t)1 << lo) - 1);
  else
    for (int v = lo; v <= hi; v += step)
      m |= (uint64_t)1 << v;
  *bits |= m;
}

/* One field: a comma-separated list of '*', a, a-b, each maybe with /n;
 * in day-of-month also L, L-n, LW and nW, in day-of-week wL and w#k. */
static int parse_field(struct parser *ps, const struct field *f, const char *s, const char *end, uint64_t *bits,
                       chime_cron_expr *c) {
  const char *p = s;
  char buf[100], buf2[100];
  bool dom = f == &fields[F_DOM], dow = f == &fields[F_DOW];
  for (;;) {
    int lo, hi, step = 1, rc;
    bool named, single = false, special = false;
    const char *at = p;
    if (p < end && *p == '*') {
      p++;
      lo = f->min;
      hi = f->top;
    } else if (dom && p < end && is_letter(p, 'L')) {
      if ((rc = last_of_month(ps, &p, end, c))) return rc;
      special = true, lo = 1, hi = 0;
    } else {
      if ((rc = value(ps, f, &p, end, &lo, &named))) return rc;
      hi = lo;
      single = true;
      if (dom && p < end && is_letter(p, 'W')) {
        c->dom_near |= (uint32_t)1 << lo;
        special = true, p++;
      } else if (dow && p < end && is_letter(p, 'L')) {
        c->dow_last |= (uint8_t)(1u << (lo % 7));
        special = true, p++;
      } else if (dow && p < end && *p == '#') {
        const char *k_at = ++p;
        int k = small_number(&p, end);
        if (k < 1 || k > 5)
          return fail(ps, k_at, "%s field: %s: the nth weekday of a month is #1 to #5", f->name,
                      quote(buf, at, (size_t)(p - at)));
        c->dow_nth |= (uint64_t)1 << (7 * (k - 1) + lo % 7);
        special = true;
      } else if (p < end && *p == '-') {
        p++;
        if ((rc = value(ps, f, &p, end, &hi, &named))) return rc;
        if (named && hi == 0 && dow && lo > 0) hi = 7; /* "fri-sun" */
        if (lo > hi)
          return fail(ps, at, "%s field: range %s goes backwards (the start must not be after the end)", f->name,
                      quote(buf, at, (size_t)(p - at)));
        single = false;
      }
    }
    if (!special && p < end && *p == '/') {
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
    if (p < end && *p != ',') {
      const char *why = special ? NULL : misplaced(f, *p);
      if (why) return fail(ps, p, "%s field: %s", f->name, why);
      if (!special && !single && (is_letter(p, 'W') || is_letter(p, 'L') || *p == '#'))
        return fail(ps, p, "%s field: %c follows a single %s, not a range or a step", f->name, *p,
                    dom ? "day (15W)" : "weekday (5L, 5#3)");
      return fail(ps, p, "%s field: unexpected '%s' after %s", f->name, quote(buf, p, 1),
                  quote(buf2, at, (size_t)(p - at)));
    }
    if (!special) set_values(f, bits, lo, hi, step);
    if (p == end) break;
    if (++p == end) return fail(ps, p, "%s field: expected a value after ','", f->name);
  }
  if (dow && (*bits >> 7 & 1)) *bits = (*bits | 1) & 0x7f;
  return 0;
}

/* The days d of the month (y, m) on which the expression's day fields
 * match: bit d of the result, for 1 <= d <= the month's length. */
static uint64_t month_days(const chime_cron_expr *c, int64_t y, int m) {
  int last = chime__month_days(y, m);
  int wd1 = chime__weekday(chime__days_from_civil(y, m, 1)); /* the 1st's weekday */
  uint64_t all = ((uint64_t)2 << last) - 2, dom = c->bits[F_DOM] & all, dow = 0;
  for (uint32_t b = c->dom_last; b; b &= b - 1) {
    int d = last - __builtin_ctz(b);
    if (d >= 1) dom |= (uint64_t)1 << d;
  }
  for (uint32_t b = c->dom_near | (c->dom_lw ? (uint32_t)1 << 0 : 0); b; b &= b - 1) {
    int d = __builtin_ctz(b);
    if (d == 0) d = last; /* LW */
    if (d > last) continue; /* 31W in April: no 31st, no run (as 31 alone) */
    int wd = (wd1 + d - 1) % 7;
    if (wd == 6) d = d > 1 ? d - 1 : d + 2;    /* Saturday: the Friday before, or Monday the 3rd */
    if (wd == 0) d = d < last ? d + 1 : d - 2; /* Sunday: the Monday after, or the Friday before the last */
    dom |= (uint64_t)1 << d;
  }
  for (int w = 0; w < 7; w++) {
    int first = 1 + (w - wd1 + 7) % 7; /* the month's first weekday w */
    if (c->bits[F_DOW] >> w & 1)
      for (int d = first; d <= last; d += 7)
        dow |= (uint64_t)1 << d;
    for (int k = 0; k < 5; k++)
      if ((c->dow_nth >> (7 * k + w) & 1) && first + 7 * k <= last) dow |= (uint64_t)1 << (first + 7 * k);
    if (c->dow_last >> w & 1) dow |= (uint64_t)1 << (first + (last - first) / 7 * 7);
  }
  return c->dom_star || c->dow_star ? dom & dow : dom | dow;
}

static bool year_matches(const chime_cron_expr *c, int64_t y) {
  return y >= YEAR_FIRST && y <= YEAR_LAST && (c->years[(y - YEAR_FIRST) / 64] >> ((y - YEAR_FIRST) % 64) & 1);
}

/* The first year >= y the expression names, or -1. */
static int64_t next_year(const chime_cron_expr *c, int64_t y) {
  for (y = y < YEAR_FIRST ? YEAR_FIRST : y; y <= YEAR_LAST; y++)
    if (year_matches(c, y)) return y;
  return -1;
}

/* Whether some month of the expression has some day of it (Feb 29 counts:
 * leap years have it).  With L, W, # or a year, the months are looked at
 * one by one: over the years named, or over a 400-year cycle of the
 * Gregorian calendar, after which weekdays and leap days repeat. */
static bool some_day_exists(const chime_cron_expr *c) {
  static const unsigned char longest[13] = {0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (!c->days && !c->year) {
    if (!c->dom_star && !c->dow_star) return true; /* every weekday occurs in every month */
    for (int m = 1; m <= 12; m++)
      if ((c->bits[F_MON] >> m & 1) && (c->bits[F_DOM] & (((uint64_t)2 << longest[m]) - 2))) return true;
    return false;
  }
  int64_t from = c->year ? YEAR_FIRST : 2000, to = c->year ? YEAR_LAST : 2399;
  for (int64_t y = from; y <= to; y++)
    for (int m = 1; m <= 12; m++)
      if ((!c->year || year_matches(c, y)) && (c->bits[F_MON] >> m & 1) && month_days(c, y, m)) return true;
  return false;
}

/* Which field each position holds, for 5, 6 and 7 fields. */
static const unsigned char layout[2][3][NFIELDS] = {
    /* CHIME_CRON_CHIME: 6 fields are seconds first */
    {{F_MIN, F_HOUR, F_DOM, F_MON, F_DOW},
     {F_SEC, F_MIN, F_HOUR, F_DOM, F_MON, F_DOW},
     {F_SEC, F_MIN, F_HOUR, F_DOM, F_MON, F_DOW, F_YEAR}},
    /* CHIME_CRON_CRONTAB: 6 fields are year last */
    {{F_MIN, F_HOUR, F_DOM, F_MON, F_DOW},
     {F_MIN, F_HOUR, F_DOM, F_MON, F_DOW, F_YEAR},
     {F_SEC, F_MIN, F_HOUR, F_DOM, F_MON, F_DOW, F_YEAR}},
};

/* Five, six or seven blank-separated fields. */
static int parse_fields(struct parser *ps, const char *s, chime_cron_expr *c, chime_cron_syntax syntax) {
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
  if (n > NFIELDS) return fail(ps, extra, "expected 5, 6 or 7 fields, found %d", n);
  if (n < 5) return fail(ps, last_end, "expected 5, 6 or 7 fields, found %d", n);
  const unsigned char *order = layout[syntax][n - 5];
  const char *dom_at = NULL;
  c->bits[F_SEC] = order[0] == F_SEC ? 0 : 1; /* without a seconds field: at second 0 */
  for (int i = 0; i < n; i++) {
    int f = order[i];
    const char *fs = start[i], *fe = stop[i];
    int rc = parse_field(ps, &fields[f], fs, fe, f == F_YEAR ? c->years : &c->bits[f], c);
    if (rc && f == F_DOW && n == 6 && syntax == CHIME_CRON_CHIME && fe - fs == 4 && ps->err &&
        strtol(fs, NULL, 10) >= YEAR_FIRST && strtol(fs, NULL, 10) <= YEAR_LAST)
      snprintf(ps->err->message, sizeof ps->err->message,
               "day-of-week field: %.4s is out of range 0-7 (six fields are seconds first here: for a year, give "
               "seven, seconds first and year last)",
               fs);
    if (rc) return rc;
    if (f == F_DOM) c->dom_star = *fs == '*', dom_at = fs;
    if (f == F_DOW) c->dow_star = *fs == '*';
    if (f == F_YEAR) c->year = *fs != '*' || fe - fs > 1;
  }
  c->days = c->dom_last || c->dom_near || c->dom_lw || c->dow_nth || c->dow_last;
  c->all_hours = c->bits[F_HOUR] == ALL_HOURS;
  if (!some_day_exists(c))
    return fail(ps, dom_at,
                c->year ? "day-of-month field: no day given occurs in the months and years given, so the expression "
                          "never matches"
                        : "day-of-month field: no day given occurs in the months given, so the expression never "
                          "matches");
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
    return parse_fields(&inner, macros[i].expr, c, CHIME_CRON_CHIME);
  }
  return fail(ps, s, "unknown macro '%s'", quote(buf, s, n + 1));
}

int chime_cron_parse(const char *expr, chime_cron_expr **cron, chime_cron_error *err) {
  return chime_cron_parse_syntax(expr, CHIME_CRON_CHIME, cron, err);
}

int chime_cron_parse_syntax(const char *expr, chime_cron_syntax syntax, chime_cron_expr **cron,
                            chime_cron_error *err) {
  if (!expr || !cron || (syntax != CHIME_CRON_CHIME && syntax != CHIME_CRON_CRONTAB)) return -EINVAL;
  struct parser ps = {expr, err};
  chime_cron_expr c;
  memset(&c, 0, sizeof c);
  const char *s = expr;
  while (is_blank(*s))
    s++;
  int rc = *s == '@' ? parse_macro(&ps, s, &c) : parse_fields(&ps, expr, &c, syntax);
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
  int64_t set_y = 0; /* with c->days: the month whose matching days are in `set` */
  int set_m = 0;
  uint64_t set = 0;
  for (;;) {
    if (w.y > CHIME__YEAR_MAX || w.days > chime__floor_div(end, 86400)) return NONE;
    if (c->year && !year_matches(c, w.y)) {
      int64_t y = next_year(c, w.y + 1);
      if (y < 0) return NONE;
      w.y = y, w.m = 1, w.d = 1, w.h = w.mi = w.s = 0;
      w.days = chime__days_from_civil(y, 1, 1);
      continue;
    }
    if (!(c->bits[F_MON] >> w.m & 1)) {
      int m = next_bit(c->bits[F_MON], w.m + 1, 12);
      if (m < 0) m = next_bit(c->bits[F_MON], 1, 12), w.y++;
      w.m = m, w.d = 1, w.h = w.mi = w.s = 0;
      w.days = chime__days_from_civil(w.y, w.m, 1);
      continue;
    }
    if (c->days) {
      if (set_y != w.y || set_m != w.m) set = month_days(c, w.y, w.m), set_y = w.y, set_m = w.m;
      int last = chime__month_days(w.y, w.m), d = next_bit(set, w.d, last);
      if (d != w.d) {
        if (d < 0) d = last + 1;
        w.days += d - 1 - w.d, w.d = d - 1;
        next_day(&w);
        continue;
      }
    } else if (!day_matches(c, &w)) {
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
  return memcmp(a->bits, b->bits, sizeof a->bits) == 0 && memcmp(a->years, b->years, sizeof a->years) == 0 &&
         a->dow_nth == b->dow_nth && a->dom_last == b->dom_last && a->dom_near == b->dom_near &&
         a->dow_last == b->dow_last && a->dom_lw == b->dom_lw && a->year == b->year && a->every == b->every &&
         a->dom_star == b->dom_star && a->dow_star == b->dow_star && a->all_hours == b->all_hours;
}

chime_cron_expr *chime__cron_dup(const chime_cron_expr *c) {
  chime_cron_expr *d = chime__malloc(sizeof *d);
  if (d) *d = *c;
  return d;
}
