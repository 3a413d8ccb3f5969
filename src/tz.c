/* tz.c - time zones from the system's zone database (TZif files), and from
 * POSIX TZ strings.
 *
 * A zone is built once, at load, into one immutable block: the sorted list
 * of every instant at which its UTC offset or abbreviation changes, from
 * the file's table and then from its footer's POSIX rule, year by year up
 * to CHIME__YEAR_MAX (two transitions a year: 6 KiB for Europe/Berlin).
 * A "right/" file has no footer (its leap seconds expire); its rule is read
 * from its twin outside "right/".
 * Every later question (the offset at an instant, the span of constant
 * offset around it) is a binary search in that list, with no allocation,
 * no lock and no global state: no tzset(), no localtime(), whose state is
 * process-wide.
 *
 * Invariants of a loaded zone: at[] is strictly ascending; type[i] is the
 * type in force from at[i] until at[i + 1]; `first` is the type before
 * at[0]; every type index is below ntypes; every abbreviation is a
 * NUL-terminated string inside chars.
 */
#include "cal.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Larger files are not zones: real ones are a few KiB. */
#define TZIF_MAX (64 * 1024)
/* The longest abbreviation kept from a POSIX string (tzcode allows 255;
 * real ones have at most 6 characters). */
#define ABBR_MAX 31
/* Rule times run from -167 to 167 hours (RFC 8536, version 3). */
#define RULE_HOURS_MAX 167

struct ttype {
  int32_t off;   /* UTC offset, seconds east */
  uint32_t abbr; /* index of the abbreviation in chars */
  uint8_t isdst; /* daylight saving time (1) or standard (0) */
};

struct chime_tz {
  int64_t *at;         /* transition instants, strictly ascending */
  uint16_t *type;      /* the type from at[i] on */
  struct ttype *types; /* ntypes local time types */
  char *chars;         /* abbreviations, NUL-terminated */
  const char *name;    /* as given to chime_tz_load, or "localtime" */
  size_t n;            /* transitions */
  uint16_t ntypes;
  uint16_t first; /* the type before at[0] (and always, when n is 0) */
};

/* ---- POSIX TZ strings ("CET-1CEST,M3.5.0,M10.5.0/3") ------------------- */

/* A day of the year on which daylight saving time starts or ends. */
struct rule_date {
  char kind;    /* 'J': Julian day 1-365, Feb 29 never counted; 'D': day 0-365; 'M': month.week.day */
  int n;        /* the day for 'J' and 'D', the month (1-12) for 'M' */
  int week;     /* 'M': week 1-5 (5: the last) */
  int wday;     /* 'M': day of the week, 0 (Sunday) to 6 */
  int32_t time; /* local time of day of the change, seconds (may be negative or past 24 h) */
};

struct posix {
  char std[ABBR_MAX + 1], dst[ABBR_MAX + 1];
  int32_t std_off, dst_off; /* seconds east of Greenwich */
  bool has_dst;
  struct rule_date start, end; /* start in standard time, end in daylight time */
};

struct cursor {
  const char *p, *end;
};

static int peek(const struct cursor *c) { return c->p < c->end ? (unsigned char)*c->p : -1; }
static bool is_digit(int ch) { return ch >= '0' && ch <= '9'; }
static bool is_alpha(int ch) { return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z'); }

/* A number of at most `digits` digits. */
static int read_num(struct cursor *c, int digits, int max, int *out) {
  int v = 0, k = 0;
  while (k < digits && is_digit(peek(c)))
    v = v * 10 + (*c->p++ - '0'), k++;
  if (k == 0 || v > max) return -EINVAL;
  *out = v;
  return 0;
}

/* [+-]hh[:mm[:ss]] in seconds, hh at most max_hours. */
static int read_hms(struct cursor *c, int max_hours, int32_t *out) {
  int sign = 1, h = 0, m = 0, s = 0;
  if (peek(c) == '+' || peek(c) == '-') sign = *c->p++ == '-' ? -1 : 1;
  if (read_num(c, 3, max_hours, &h)) return -EINVAL;
  if (peek(c) == ':') {
    c->p++;
    if (read_num(c, 2, 59, &m)) return -EINVAL;
    if (peek(c) == ':') {
      c->p++;
      if (read_num(c, 2, 59, &s)) return -EINVAL;
    }
  }
  *out = sign * (h * 3600 + m * 60 + s);
  return 0;
}

/* An abbreviation: three or more letters, or <...> of letters, digits, '+'
 * and '-'. */
static int read_abbr(struct cursor *c, char *out) {
  size_t k = 0;
  bool quoted = peek(c) == '<';
  if (quoted) c->p++;
  for (;;) {
    int ch = peek(c);
    if (!(is_alpha(ch) || (quoted && (is_digit(ch) || ch == '+' || ch == '-')))) break;
    if (k == ABBR_MAX) return -EINVAL;
    out[k++] = (char)ch;
    c->p++;
  }
  if (quoted && peek(c) != '>') return -EINVAL;
  if (quoted) c->p++;
  out[k] = '\0';
  return k >= 3 ? 0 : -EINVAL;
}

static int read_date(struct cursor *c, struct rule_date *r) {
  r->time = 2 * 3600;
  r->week = r->wday = 0;
  if (peek(c) == 'J') {
    c->p++;
    r->kind = 'J';
    if (read_num(c, 3, 365, &r->n) || r->n < 1) return -EINVAL;
  } else if (peek(c) == 'M') {
    c->p++;
    r->kind = 'M';
    if (read_num(c, 2, 12, &r->n) || r->n < 1 || peek(c) != '.') return -EINVAL;
    c->p++;
    if (read_num(c, 1, 5, &r->week) || r->week < 1 || peek(c) != '.') return -EINVAL;
    c->p++;
    if (read_num(c, 1, 6, &r->wday)) return -EINVAL;
  } else {
    r->kind = 'D';
    if (read_num(c, 3, 365, &r->n)) return -EINVAL;
  }
  if (peek(c) == '/') {
    c->p++;
    return read_hms(c, RULE_HOURS_MAX, &r->time);
  }
  return 0;
}

/* Parses the whole of s[0..len).  POSIX offsets count hours west; they are
 * turned around here.  A daylight name without rules gets the US rules, as
 * tzcode gives it. */
static int parse_posix(const char *s, size_t len, struct posix *p) {
  struct cursor c = {s, s + len};
  int32_t off;
  memset(p, 0, sizeof *p);
  if (read_abbr(&c, p->std) || read_hms(&c, 24, &off)) return -EINVAL;
  p->std_off = -off;
  if (c.p == c.end) return 0;
  if (read_abbr(&c, p->dst)) return -EINVAL;
  p->has_dst = true;
  p->dst_off = p->std_off + 3600;
  if (peek(&c) != ',' && c.p != c.end) {
    if (read_hms(&c, 24, &off)) return -EINVAL;
    p->dst_off = -off;
  }
  if (c.p == c.end) {
    p->start = (struct rule_date){'M', 3, 2, 0, 2 * 3600};
    p->end = (struct rule_date){'M', 11, 1, 0, 2 * 3600};
    return 0;
  }
  if (peek(&c) != ',') return -EINVAL;
  c.p++;
  if (read_date(&c, &p->start) || peek(&c) != ',') return -EINVAL;
  c.p++;
  if (read_date(&c, &p->end)) return -EINVAL;
  return c.p == c.end ? 0 : -EINVAL;
}

/* The local time (seconds) at which the rule date falls in year y. */
static int64_t rule_local(const struct rule_date *r, int64_t y) {
  int64_t day = chime__days_from_civil(y, 1, 1);
  if (r->kind == 'J') {
    day += r->n - 1 + (chime__leap(y) && r->n >= 60);
  } else if (r->kind == 'D') {
    day += r->n;
  } else {
    int64_t first = chime__days_from_civil(y, r->n, 1);
    int d = (r->wday - chime__weekday(first) + 7) % 7 + 7 * (r->week - 1);
    while (d >= chime__month_days(y, r->n))
      d -= 7;
    day = first + d;
  }
  return day * 86400 + r->time;
}

/* ---- building a zone ------------------------------------------------------ */

/* What a zone is made from: a TZif table (or none) and a rule (or none). */
struct source {
  const unsigned char *times; /* timecnt big-endian times of `width` bytes */
  const unsigned char *idx;   /* timecnt type indices */
  const unsigned char *leaps; /* leapcnt (occurrence, correction) pairs */
  const char *chars;          /* charcnt bytes of abbreviations */
  uint32_t timecnt, leapcnt, charcnt, width;
  uint32_t ntypes;
  struct ttype types[258]; /* the table's (at most 256) and the rule's two */
  const struct posix *rule;
};

static int64_t be(const unsigned char *p, uint32_t width) {
  uint64_t v = 0;
  for (uint32_t i = 0; i < width; i++)
    v = v << 8 | p[i];
  if (width == 4) return (int32_t)(uint32_t)v;
  return (int64_t)v;
}

/* The table's i-th transition, in seconds without leap seconds: files of
 * the "right/" kind count them, and carry the corrections to take off. */
static int64_t table_time(const struct source *s, uint32_t i) {
  int64_t t = be(s->times + (size_t)i * s->width, s->width);
  int64_t corr = 0;
  for (uint32_t k = 0; k < s->leapcnt; k++) {
    const unsigned char *l = s->leaps + (size_t)k * (s->width + 4);
    if (be(l, s->width) > t) break;
    corr = be(l + s->width, 4);
  }
  return t - corr;
}

/* The index of a type with this offset, flag and abbreviation, added to the
 * source's types if it has none. */
static uint16_t rule_type(struct source *s, int32_t off, bool isdst, uint32_t abbr, const char *chars) {
  for (uint32_t i = 0; i < s->ntypes; i++)
    if (s->types[i].off == off && s->types[i].isdst == isdst && strcmp(chars + s->types[i].abbr, chars + abbr) == 0)
      return (uint16_t)i;
  s->types[s->ntypes] = (struct ttype){off, abbr, isdst};
  return (uint16_t)s->ntypes++;
}

/* Appends a transition at `when` to type `ty`, or, when the last one is at
 * the same instant, replaces its type (the later rule wins); transitions
 * that change nothing are dropped.  Returns the new count. */
static size_t push(chime_tz *z, size_t n, int64_t when, uint16_t ty) {
  if (n > 0 && z->at[n - 1] == when) {
    uint16_t before = n > 1 ? z->type[n - 2] : z->first;
    if (before == ty) return n - 1;
    z->type[n - 1] = ty;
    return n;
  }
  if (n > 0 && z->at[n - 1] > when) return n;
  if ((n > 0 ? z->type[n - 1] : z->first) == ty) return n;
  z->at[n] = when;
  z->type[n] = ty;
  return n + 1;
}

/* Builds the zone from the source in one allocation.  The table was
 * validated by the caller. */
static int build(struct source *s, const char *name, chime_tz **out) {
  const struct posix *r = s->rule;
  size_t len_std = r ? strlen(r->std) + 1 : 0, len_dst = r && r->has_dst ? strlen(r->dst) + 1 : 0;
  size_t nchars = s->charcnt + 1 + len_std + len_dst, namelen = strlen(name) + 1;
  int64_t last = s->timecnt ? table_time(s, s->timecnt - 1) : INT64_MIN;
  int64_t y0 = CHIME__YEAR_MIN;
  if (s->timecnt) {
    int64_t y;
    int m, d;
    chime__civil_from_days(chime__floor_div(last, 86400), &y, &m, &d);
    y0 = y - 1 > CHIME__YEAR_MIN ? y - 1 : CHIME__YEAR_MIN;
  }
  size_t years = y0 <= CHIME__YEAR_MAX ? (size_t)(CHIME__YEAR_MAX - y0 + 1) : 0;
  size_t cap = s->timecnt + (r && r->has_dst ? 2 * years : 0);
  size_t size = sizeof(chime_tz) + cap * sizeof(int64_t) + (s->ntypes + 2) * sizeof(struct ttype) +
                cap * sizeof(uint16_t) + nchars + namelen;
  chime_tz *z = chime__malloc(size);
  if (!z) return -ENOMEM;
  z->at = (int64_t *)(void *)(z + 1);
  z->types = (struct ttype *)(void *)(z->at + cap);
  z->type = (uint16_t *)(void *)(z->types + s->ntypes + 2);
  z->chars = (char *)(z->type + cap);
  char *zname = z->chars + nchars;
  memcpy(zname, name, namelen);
  z->name = zname;
  if (s->charcnt) memcpy(z->chars, s->chars, s->charcnt);
  z->chars[s->charcnt] = '\0';
  size_t pos = s->charcnt + 1;
  uint16_t ty_std = 0, ty_dst = 0;
  if (r) {
    memcpy(z->chars + pos, r->std, len_std);
    ty_std = rule_type(s, r->std_off, false, (uint32_t)pos, z->chars);
    pos += len_std;
    if (r->has_dst) {
      memcpy(z->chars + pos, r->dst, len_dst);
      ty_dst = rule_type(s, r->dst_off, true, (uint32_t)pos, z->chars);
    }
  }
  memcpy(z->types, s->types, s->ntypes * sizeof(struct ttype));
  z->ntypes = (uint16_t)s->ntypes;
  z->first = 0;
  size_t n = 0;
  for (uint32_t i = 0; i < s->timecnt; i++) {
    z->at[n] = table_time(s, i);
    z->type[n++] = s->idx[i];
  }
  if (r && !s->timecnt) z->first = ty_std;
  if (r && r->has_dst) {
    for (int64_t y = y0; y <= CHIME__YEAR_MAX; y++) {
      int64_t on = rule_local(&r->start, y) - r->std_off, off = rule_local(&r->end, y) - r->dst_off;
      int64_t t1 = on < off ? on : off, t2 = on < off ? off : on;
      uint16_t ty1 = on < off ? ty_dst : ty_std, ty2 = on < off ? ty_std : ty_dst;
      if (n == 0 && !s->timecnt) z->first = ty2; /* before the first change: the state the year ends in */
      if (t1 > last) n = push(z, n, t1, ty1);
      if (t2 > last) n = push(z, n, t2, ty2);
    }
  }
  z->n = n;
  *out = z;
  return 0;
}

/* ---- TZif files (RFC 8536) ------------------------------------------------ */

struct header {
  uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
};

/* Reads the header at p (44 bytes are there) and returns the size of the
 * data block after it for times of `width` bytes. */
static uint64_t read_header(const unsigned char *p, uint32_t width, struct header *h) {
  uint32_t *c = &h->isutcnt;
  for (int i = 0; i < 6; i++)
    c[i] = (uint32_t)be(p + 20 + 4 * i, 4);
  return (uint64_t)h->timecnt * (width + 1) + (uint64_t)h->typecnt * 6 + h->charcnt +
         (uint64_t)h->leapcnt * (width + 4) + h->isstdcnt + h->isutcnt;
}

/* Checks and takes in the data block of a TZif file (version 1, or the
 * 64-bit block of version 2 and later), then the footer's rule. */
static int parse_tzif(const unsigned char *buf, size_t len, struct source *s, struct posix *rule) {
  if (len < 44 || memcmp(buf, "TZif", 4) != 0) return -EINVAL;
  bool v2 = buf[4] >= '2';
  struct header h;
  uint64_t size = read_header(buf, 4, &h);
  if (44 + size > len) return -EINVAL;
  const unsigned char *p = buf + 44;
  uint32_t width = 4;
  if (v2) {
    p += size;
    if ((size_t)(p - buf) + 44 > len || memcmp(p, "TZif", 4) != 0) return -EINVAL;
    width = 8;
    size = read_header(p, 8, &h);
    p += 44;
    if ((size_t)(p - buf) + size > len) return -EINVAL;
  }
  /* Only the block used is checked: writers of version 2 and later may
   * leave the version 1 block nearly empty. */
  if (h.typecnt == 0 || h.typecnt > 256 || h.charcnt == 0) return -EINVAL;
  if ((h.isutcnt && h.isutcnt != h.typecnt) || (h.isstdcnt && h.isstdcnt != h.typecnt)) return -EINVAL;
  s->width = width;
  s->timecnt = h.timecnt;
  s->times = p;
  s->idx = p + (size_t)h.timecnt * width;
  const unsigned char *ti = s->idx + h.timecnt;
  s->chars = (const char *)ti + h.typecnt * 6;
  s->charcnt = h.charcnt;
  s->leaps = (const unsigned char *)s->chars + h.charcnt;
  s->leapcnt = h.leapcnt;
  for (uint32_t i = 0; i < h.timecnt; i++) {
    if (s->idx[i] >= h.typecnt) return -EINVAL;
    int64_t t = be(s->times + (size_t)i * width, width);
    if (t < -((int64_t)1 << 60) || t > ((int64_t)1 << 60)) return -EINVAL;
    if (i > 0 && t <= be(s->times + (size_t)(i - 1) * width, width)) return -EINVAL;
  }
  for (uint32_t i = 0; i < h.leapcnt; i++)
    if (i > 0 && be(s->leaps + (size_t)i * (width + 4), width) <= be(s->leaps + (size_t)(i - 1) * (width + 4), width))
      return -EINVAL;
  s->ntypes = h.typecnt;
  for (uint32_t i = 0; i < h.typecnt; i++) {
    int64_t off = be(ti + 6 * i, 4);
    uint32_t abbr = ti[6 * i + 5];
    if (off < -26 * 3600 || off > 26 * 3600 || abbr >= h.charcnt) return -EINVAL;
    if (!memchr(s->chars + abbr, '\0', h.charcnt - abbr)) return -EINVAL;
    s->types[i] = (struct ttype){(int32_t)off, abbr, ti[6 * i + 4] != 0};
  }
  s->rule = NULL;
  if (!v2) return 0;
  /* The footer: a newline, a POSIX TZ string (maybe empty), a newline. */
  const char *f = (const char *)p + size, *end = (const char *)buf + len;
  if (f >= end || *f != '\n') return -EINVAL;
  const char *nl = memchr(f + 1, '\n', (size_t)(end - f - 1));
  if (!nl) return -EINVAL;
  if (nl == f + 1) return 0;
  if (parse_posix(f + 1, (size_t)(nl - f - 1), rule)) return -EINVAL;
  s->rule = rule;
  return 0;
}

/* Reads a whole file into a new buffer (the caller frees it).  Directories
 * and missing path components are zones the database does not have. */
static int read_file(const char *path, unsigned char **out, size_t *len) {
  if (CHIME__FAULT()) return -EMFILE;
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return errno == ENOTDIR ? -ENOENT : -errno;
  unsigned char *buf = chime__malloc(TZIF_MAX + 1);
  int rc = buf ? 0 : -ENOMEM;
  size_t got = 0;
  while (rc == 0) {
    if (CHIME__FAULT()) {
      rc = -EIO;
      break;
    }
    ssize_t r = read(fd, buf + got, TZIF_MAX + 1 - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) rc = errno == EISDIR ? -ENOENT : -errno;
    if (r <= 0) break;
    got += (size_t)r;
    if (got > TZIF_MAX) rc = -EINVAL;
  }
  close(fd);
  if (rc) {
    chime__free(buf);
    return rc;
  }
  *out = buf;
  *len = got;
  return 0;
}

/* The rule of the zone at `path` with its last "/right/" taken out, into
 * *rule; false if there is none.  zic writes a file with leap seconds whose
 * table expires (all since 2021) with an empty footer, as no rule can say
 * where leap seconds fall after the expiry, and ends its table there; read
 * as CLOCK_REALTIME counts, the zone follows the rule of its twin outside
 * "right/", made from the same source. */
static bool twin_rule(const char *path, struct posix *rule) {
  const char *at = NULL;
  for (const char *p = strstr(path, "/right/"); p; p = strstr(p + 1, "/right/"))
    at = p;
  char twin[4096];
  if (!at || snprintf(twin, sizeof twin, "%.*s%s", (int)(at - path), path, at + 6) >= (int)sizeof twin) return false;
  unsigned char *buf = NULL;
  size_t len = 0;
  if (read_file(twin, &buf, &len)) return false;
  struct source s;
  bool ok = parse_tzif(buf, len, &s, rule) == 0 && s.rule && s.leapcnt == 0;
  chime__free(buf);
  return ok;
}

static int load_path(const char *path, const char *name, chime_tz **out) {
  unsigned char *buf = NULL;
  size_t len = 0;
  int rc = read_file(path, &buf, &len);
  if (rc) return rc;
  struct source s;
  struct posix rule;
  rc = parse_tzif(buf, len, &s, &rule);
  if (rc == 0 && s.leapcnt && !s.rule && twin_rule(path, &rule)) s.rule = &rule;
  if (rc == 0) rc = build(&s, name, out);
  chime__free(buf);
  return rc;
}

static int load_posix(const struct posix *rule, const char *name, chime_tz **out) {
  struct source s;
  memset(&s, 0, sizeof s);
  s.rule = rule;
  return build(&s, name, out);
}

/* A zone name: letters, digits and "_+-/", not starting with '/' (so no
 * absolute path) and with no "." (so no way up). */
static bool valid_name(const char *name) {
  size_t n = strlen(name);
  if (n == 0 || n > 255 || name[0] == '/') return false;
  for (size_t i = 0; i < n; i++) {
    int ch = (unsigned char)name[i];
    if (!(is_alpha(ch) || is_digit(ch) || ch == '_' || ch == '+' || ch == '-' || ch == '/')) return false;
  }
  return true;
}

static int load_named(const char *name, const char *as, chime_tz **out) {
  const char *dir = getenv("TZDIR");
  char path[4096];
  if (!dir || !*dir) dir = "/usr/share/zoneinfo";
  int len = snprintf(path, sizeof path, "%s/%s", dir, name);
  if (len < 0 || (size_t)len >= sizeof path) return -ENAMETOOLONG;
  return load_path(path, as, out);
}

/* The local zone: $TZ (a zone name, an absolute path, or a POSIX string,
 * with an optional leading ':'), else /etc/localtime. */
static int load_local(chime_tz **out) {
  const char *tz = getenv("TZ");
  if (tz && *tz == ':') tz++;
  if (!tz || !*tz) return load_path("/etc/localtime", "localtime", out);
  if (*tz == '/') return load_path(tz, "localtime", out);
  bool named = valid_name(tz);
  if (named) {
    int rc = load_named(tz, "localtime", out);
    if (rc != -ENOENT) return rc;
  }
  struct posix rule;
  if (parse_posix(tz, strlen(tz), &rule) == 0) return load_posix(&rule, "localtime", out);
  return named ? -ENOENT : -EINVAL;
}

/* ---- the public functions --------------------------------------------------- */

int chime_tz_load(const char *name, chime_tz **tz) {
  if (!tz) return -EINVAL;
  if (!name || !*name) return load_local(tz);
  if (!valid_name(name)) return -EINVAL;
  return load_named(name, name, tz);
}

void chime_tz_free(chime_tz *tz) { chime__free(tz); }

const char *chime_tz_name(const chime_tz *tz) { return tz ? tz->name : NULL; }

/* The number of transitions at or before t. */
static size_t find(const chime_tz *tz, int64_t t) {
  size_t lo = 0, hi = tz->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (tz->at[mid] <= t)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

static const struct ttype *type_before(const chime_tz *tz, size_t i) {
  return &tz->types[i ? tz->type[i - 1] : tz->first];
}

void chime__tz_span(const chime_tz *tz, int64_t t, struct chime__span *span) {
  size_t i = find(tz, t);
  span->off = type_before(tz, i)->off;
  span->start = i ? tz->at[i - 1] : INT64_MIN;
  span->end = i < tz->n ? tz->at[i] : INT64_MAX;
  span->prev_off = i ? type_before(tz, i - 1)->off : span->off;
}

int chime_tz_format(const chime_tz *tz, chime_ns t, char *buf, size_t size) {
  if (!tz || !buf || size == 0) return -EINVAL;
  int64_t sec = chime__floor_div(t, 1000000000);
  const struct ttype *ty = type_before(tz, find(tz, sec));
  int64_t local = sec + ty->off, days = chime__floor_div(local, 86400), sod = local - days * 86400;
  int64_t y;
  int m, d;
  chime__civil_from_days(days, &y, &m, &d);
  return snprintf(buf, size, "%04lld-%02d-%02d %02d:%02d:%02d %s", (long long)y, m, d, (int)(sod / 3600),
                  (int)(sod / 60 % 60), (int)(sod % 60), tz->chars + ty->abbr);
}
