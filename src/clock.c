/* clock.c - the machine's clocks, and human durations ("1h30m", "1.5s").
 *
 * CLOCK_MONOTONIC and CLOCK_REALTIME in nanoseconds (vDSO calls, no system
 * call).  A loop's clocks, real or virtual, are now.c's.
 */
#include "machine.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

__extension__ typedef unsigned __int128 u128;

chime_ns chime__mono(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (chime_ns)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static chime_ns realtime(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (chime_ns)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

chime_ns chime__realtime(void) { return realtime(); }

/* ---- the run clock (machine.h) --------------------------------------------- */

#if defined(__x86_64__) && defined(__linux__)
/* Whether the kernel keeps time with the time-stamp counter (it then holds
 * it constant and the same on every CPU): asked once a process, and again
 * when `fresh` (at each measure of the rate: the kernel may give the
 * counter up, its watchdog finding it unstable). */
static bool tsc_serves(bool fresh) {
  static _Atomic int known; /* 0: not asked yet; 1: yes; 2: no */
  int k = fresh ? 0 : atomic_load_explicit(&known, memory_order_relaxed);
  if (!k) {
    char buf[16] = "";
    FILE *f = fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "re");
    if (f) {
      if (!fgets(buf, sizeof buf, f)) buf[0] = 0;
      fclose(f);
    }
    k = strcmp(buf, "tsc\n") == 0 ? 1 : 2;
    atomic_store_explicit(&known, k, memory_order_relaxed);
  }
  return k == 1;
}

#define RATE_AFTER CHIME_MS(100) /* the first rate: over this much time at least */
#define RATE_EVERY CHIME_SEC(1)  /* measured again over each second */
#define PAIR_MAX 20000           /* counts a (counter, clock) pair may take: more, it was preempted */
#define SPAN CHIME_US(100)       /* how far an extrapolation may go from its mark */

chime_ns chime__tsc_mark(struct chime__tsc *c) {
  uint64_t t0 = __builtin_ia32_rdtsc();
  chime_ns mono = chime__mono();
  unsigned cpu;
  uint64_t t1 = __builtin_ia32_rdtscp(&cpu); /* read once the clock's own reading is done */
  /* Where an extrapolation from the last mark would have been just before
   * the clock was read (t0): ahead of it, the clock has slowed (a slew
   * faster than the rate's margin): no extrapolation until the rate is
   * measured again. */
  uint64_t d = t0 - c->tsc;
  if (c->mult && !c->again && (d >> 40 || c->mono + (chime_ns)(((u128)d * c->mult) >> 32) > mono))
    c->mult = 0, c->ref_mono = 0;
  /* The mark takes the counter after the clock: an extrapolation from it
   * comes short, never ahead. */
  c->tsc = t1;
  c->mono = mono;
  c->again = t1 - t0 > PAIR_MAX;
  if (c->again) { /* preempted between: the next reading marks again */
    c->tsc = t1 - c->span;
    return mono;
  }
  uint64_t mid = t0 + (t1 - t0) / 2;
  if (!c->ref_mono || mid <= c->ref_tsc) {
    c->ref_tsc = mid;
    c->ref_mono = mono;
  } else if (mono - c->ref_mono >= (c->mult ? RATE_EVERY : RATE_AFTER)) {
    u128 m = ((u128)(uint64_t)(mono - c->ref_mono) << 32) / (mid - c->ref_tsc);
    m -= m / 512;
    c->mult = m > 0 && m < ((u128)1 << 40) && tsc_serves(c->mult != 0) ? (uint64_t)m : 0; /* 4 MHz at least */
    c->span = c->mult ? (uint64_t)(((u128)SPAN << 32) / c->mult) : 0;
    c->ref_tsc = mid;
    c->ref_mono = mono;
  }
  return mono;
}
#else
chime_ns chime__tsc_mark(struct chime__tsc *c) { return c->mono = chime__mono(); }
#endif

/* ---- durations ------------------------------------------------------------ */

#define NS_S 1000000000LL

static const struct unit {
  const char *name;
  int64_t ns;
} units[] = {
    {"ns", 1},
    {"nsec", 1},
    {"us", 1000},
    {"usec", 1000},
    {"\xc2\xb5s", 1000}, /* µs */
    {"ms", 1000000},
    {"msec", 1000000},
    {"s", NS_S},
    {"sec", NS_S},
    {"second", NS_S},
    {"seconds", NS_S},
    {"m", 60 * NS_S},
    {"min", 60 * NS_S},
    {"minute", 60 * NS_S},
    {"minutes", 60 * NS_S},
    {"h", 3600 * NS_S},
    {"hr", 3600 * NS_S},
    {"hour", 3600 * NS_S},
    {"hours", 3600 * NS_S},
    {"d", 86400 * NS_S},
    {"day", 86400 * NS_S},
    {"days", 86400 * NS_S},
    {"w", 604800 * NS_S},
    {"week", 604800 * NS_S},
    {"weeks", 604800 * NS_S},
};

static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static bool is_unit_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (unsigned char)c >= 0x80;
}
static bool is_space(char c) { return c == ' ' || c == '\t'; }

/* One component: digits[.digits] then an optional unit.  Adds its value to
 * *total.  Returns the position after it, or NULL with *err set. */
static const char *component(const char *p, bool *unitless, bool *nonzero, u128 *total, int *err) {
  uint64_t whole = 0;
  u128 frac = 0, frac_scale = 1;
  int digits = 0;
  for (const char *d = p; is_digit(*d) || *d == '.'; d++)
    *nonzero = *nonzero || (*d >= '1' && *d <= '9');
  for (; is_digit(*p); p++, digits++) {
    if (whole > (UINT64_MAX - 9) / 10) {
      *err = -ERANGE;
      return NULL;
    }
    whole = whole * 10 + (uint64_t)(*p - '0');
  }
  if (*p == '.') {
    p++;
    for (int k = 0; is_digit(*p); p++, digits++, k++) {
      if (k < 19) { /* digits beyond 10^-19 of a week are below a nanosecond */
        frac = frac * 10 + (unsigned)(*p - '0');
        frac_scale *= 10;
      }
    }
  }
  if (digits == 0) {
    *err = -EINVAL;
    return NULL;
  }
  while (is_space(*p))
    p++;
  const char *w = p;
  while (is_unit_char(*p))
    p++;
  size_t len = (size_t)(p - w);
  int64_t scale = NS_S;
  *unitless = len == 0;
  if (len) {
    scale = 0;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
      if (strlen(units[i].name) == len && memcmp(units[i].name, w, len) == 0) scale = units[i].ns;
    }
    if (!scale) {
      *err = -EINVAL;
      return NULL;
    }
  }
  *total += (u128)whole * (uint64_t)scale + frac * (uint64_t)scale / frac_scale;
  if (*total > INT64_MAX) {
    *err = -ERANGE;
    return NULL;
  }
  return p;
}

int chime_parse_duration(const char *text, chime_ns *out) {
  if (!text || !out) return -EINVAL;
  const char *p = text;
  u128 total = 0;
  int n = 0, err = 0;
  bool unitless = false, nonzero = false;
  while (is_space(*p))
    p++;
  while (*p) {
    if (n > 0 && unitless) return -EINVAL; /* "30 5" or "30 5s" */
    p = component(p, &unitless, &nonzero, &total, &err);
    if (!p) return err;
    if (n > 0 && unitless) return -EINVAL; /* "1h 30" */
    n++;
    while (is_space(*p))
      p++;
  }
  if (n == 0) return -EINVAL;
  if (total == 0 && nonzero) return -ERANGE; /* "0.0000000001s": not nothing, but less than a nanosecond */
  *out = (chime_ns)total;
  return 0;
}

/* Appends "<v / unit>[.<fraction>]<name>" with trailing zeros trimmed. */
static size_t put_part(char *buf, size_t size, size_t len, uint64_t v, uint64_t unit, const char *name) {
  char tmp[64];
  int w;
  uint64_t whole = v / unit, rest = v % unit;
  if (rest == 0) {
    w = snprintf(tmp, sizeof tmp, "%llu%s", (unsigned long long)whole, name);
  } else {
    char frac[24];
    int places = 0;
    for (uint64_t u = unit; u > 1; u /= 10)
      places++;
    frac[places] = '\0';
    for (int i = places - 1; i >= 0; i--, rest /= 10)
      frac[i] = (char)('0' + rest % 10);
    for (int i = places - 1; i > 0 && frac[i] == '0'; i--)
      frac[i] = '\0';
    w = snprintf(tmp, sizeof tmp, "%llu.%s%s", (unsigned long long)whole, frac, name);
  }
  if (len < size) snprintf(buf + len, size - len, "%s", tmp);
  return len + (size_t)w;
}

int chime_format_duration(chime_ns d, char *buf, size_t size) {
  if (!buf || size == 0) return -EINVAL;
  size_t len = 0;
  buf[0] = '\0';
  uint64_t v = d < 0 ? (uint64_t)0 - (uint64_t)d : (uint64_t)d;
  if (d < 0) {
    if (size > 1) snprintf(buf, size, "-");
    len = 1;
  }
  if (v == 0) return (int)put_part(buf, size, len, 0, 1, "s");
  static const struct {
    uint64_t ns;
    const char *name;
  } big[] = {{86400ULL * NS_S, "d"}, {3600ULL * NS_S, "h"}, {60ULL * NS_S, "m"}};
  bool any = false;
  for (size_t i = 0; i < 3; i++) {
    if (v >= big[i].ns) {
      len = put_part(buf, size, len, v - v % big[i].ns, big[i].ns, big[i].name);
      v %= big[i].ns;
      any = true;
    }
  }
  if (v == 0) return (int)len;
  if (any || v >= (uint64_t)NS_S) return (int)put_part(buf, size, len, v, NS_S, "s");
  if (v >= 1000000) return (int)put_part(buf, size, len, v, 1000000, "ms");
  if (v >= 1000) return (int)put_part(buf, size, len, v, 1000, "us");
  return (int)put_part(buf, size, len, v, 1, "ns");
}
