/* log.c - logfmt and JSON lines, from the same calls.
 *
 * A line is built in a fixed buffer on the caller's stack and written with
 * a single write(2), so that lines from one process never interleave and
 * memory stays bounded whatever a child prints.  Values are escaped the
 * same way in both formats (\" \\ \n \r \t \u00XX, and U+FFFD for bytes
 * that are not UTF-8), so that a JSON line is always valid JSON and a
 * logfmt line is always one line.
 *
 * Writing never blocks the loop: a log nobody reads (a full pipe) must not
 * stop every job.  Pipes and sockets are written with RWF_NOWAIT; regular
 * files and /dev/null, which are always writable, as they are; other
 * descriptors (a terminal) after a poll that says they are writable.  A
 * line that cannot be written now is dropped and counted, and the count is
 * logged (event=log_dropped) before the next line that can be.  A line
 * written in part keeps its end, which goes out before anything else, so
 * lines are never mixed.  A log on a closed pipe drops
 * every line: chime's SIGPIPE handler (runner.c) does nothing.
 */
#include "log.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

static log_format format = LOG_LOGFMT;
static int out_fd = 2;

/* How lines are written to out_fd without blocking. */
static enum { HOW_UNKNOWN, HOW_NOWAIT, HOW_POLL, HOW_PLAIN } how;
static char pending[LOG_LINE_MAX]; /* the unwritten end of a line written in part */
static size_t pending_len;
static unsigned long long dropped; /* lines dropped since the last one written */
static unsigned long long dropped_total; /* lines dropped, in all */

int log_format_parse(const char *text, log_format *f) {
  if (!text || !f) return -EINVAL;
  if (strcmp(text, "logfmt") == 0) *f = LOG_LOGFMT;
  else if (strcmp(text, "json") == 0) *f = LOG_JSON;
  else return -EINVAL;
  return 0;
}

void log_setup(log_format f, int fd) {
  format = f;
  if (fd != out_fd) how = HOW_UNKNOWN, pending_len = 0, dropped = 0;
  out_fd = fd;
}

unsigned long long log_dropped(void) { return dropped; }
unsigned long long log_dropped_total(void) { return dropped_total; }

/* Room always kept back for what ends a cut line: a closing quote, the
 * marker ` cut=true` or `,"cut":true}`, and the newline. */
#define RESERVE 24

/* Appends, unless the line is full: then nothing more is added (so a value
 * is never cut in the middle of an escape) and the line is marked cut. */
static void raw(struct logline *l, const char *s, size_t n) {
  if (l->cut || l->len + n + RESERVE > sizeof l->buf) {
    l->cut = true;
    return;
  }
  memcpy(l->buf + l->len, s, n);
  l->len += n;
}

/* Appends from the reserve, for the text that ends a line. */
static void force(struct logline *l, const char *s) {
  size_t n = strlen(s);
  memcpy(l->buf + l->len, s, n);
  l->len += n;
}

static void rawz(struct logline *l, const char *s) { raw(l, s, strlen(s)); }

/* The length of the valid UTF-8 sequence at p (at most n bytes), or 0. */
static size_t utf8_len(const unsigned char *p, size_t n) {
  size_t len;
  unsigned min;
  unsigned cp;
  if (p[0] < 0x80) return 1;
  if ((p[0] & 0xE0) == 0xC0) len = 2, min = 0x80, cp = p[0] & 0x1F;
  else if ((p[0] & 0xF0) == 0xE0) len = 3, min = 0x800, cp = p[0] & 0x0F;
  else if ((p[0] & 0xF8) == 0xF0) len = 4, min = 0x10000, cp = p[0] & 0x07;
  else return 0;
  if (len > n) return 0;
  for (size_t i = 1; i < len; i++) {
    if ((p[i] & 0xC0) != 0x80) return 0;
    cp = cp << 6 | (p[i] & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return len;
}

/* Whether a logfmt value can go without quotes. */
static bool bare(const char *s, size_t n) {
  if (n == 0) return false;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c <= ' ' || c == '=' || c == '"' || c == '\\' || c >= 0x7F) return false;
  }
  return true;
}

void log_escape(const char *s, size_t n, log_emit_fn emit, bool (*stop)(void *ctx), void *ctx) {
  const unsigned char *p = (const unsigned char *)s;
  for (size_t i = 0; i < n && !(stop && stop(ctx));) {
    unsigned char c = p[i];
    char tmp[8];
    if (c == '"' || c == '\\') {
      tmp[0] = '\\', tmp[1] = (char)c;
      emit(ctx, tmp, 2);
      i++;
    } else if (c < 0x20 || c == 0x7F) {
      const char *e = c == '\n' ? "\\n" : c == '\r' ? "\\r" : c == '\t' ? "\\t" : NULL;
      if (!e) snprintf(tmp, sizeof tmp, "\\u%04x", c), e = tmp;
      emit(ctx, e, strlen(e));
      i++;
    } else {
      size_t len = utf8_len(p + i, n - i);
      if (len) emit(ctx, s + i, len), i += len;
      else emit(ctx, "\\ufffd", 6), i++;
    }
  }
}

static void emit_line(void *ctx, const char *piece, size_t n) { raw(ctx, piece, n); }
static bool line_full(void *ctx) { return ((struct logline *)ctx)->cut; }
static void emit_file(void *ctx, const char *piece, size_t n) { fwrite(piece, 1, n, ctx); }

void json_fputs(FILE *f, const char *s, size_t n) {
  fputc('"', f);
  log_escape(s, n, emit_file, NULL, f);
  fputc('"', f);
}

/* Appends a key with what opens its value (`k=`, `k="`, `,"k":"`) in one
 * piece, so that a full line never ends inside a key. */
static void key(struct logline *l, const char *k, bool quoted) {
  char tmp[96];
  if (format == LOG_JSON)
    snprintf(tmp, sizeof tmp, "%s\"%s\":%s", l->len > 1 ? "," : "", k, quoted ? "\"" : "");
  else
    snprintf(tmp, sizeof tmp, "%s%s=%s", l->len ? " " : "", k, quoted ? "\"" : "");
  rawz(l, tmp);
}

void log_mem(struct logline *l, const char *k, const char *v, size_t n) {
  if (l->cut) return;
  if (format == LOG_LOGFMT && bare(v, n)) {
    key(l, k, false);
    raw(l, v, n);
    return;
  }
  key(l, k, true);
  if (l->cut) return;
  log_escape(v, n, emit_line, line_full, l);
  if (l->cut) force(l, "\""); /* the value was cut: its string is closed */
  else rawz(l, "\"");
}

/* A key and an unquoted value, both or neither. */
static void number(struct logline *l, const char *k, const char *v) {
  char tmp[160];
  snprintf(tmp, sizeof tmp, format == LOG_JSON ? "%s\"%s\":%s" : "%s%s=%s", l->len > (format == LOG_JSON) ? (format == LOG_JSON ? "," : " ") : "", k, v);
  rawz(l, tmp);
}

void log_str(struct logline *l, const char *k, const char *v) { log_mem(l, k, v ? v : "", v ? strlen(v) : 0); }

void log_int(struct logline *l, const char *k, long long v) {
  char tmp[32];
  snprintf(tmp, sizeof tmp, "%lld", v);
  number(l, k, tmp);
}

void log_dur(struct logline *l, const char *k, chime_ns d) {
  char tmp[48];
  long long ms = (long long)(d / CHIME_MS(1));
  snprintf(tmp, sizeof tmp, "%s%lld.%03lld", ms < 0 ? "-" : "", (ms < 0 ? -ms : ms) / 1000, (ms < 0 ? -ms : ms) % 1000);
  number(l, k, tmp);
}

void log_dur_text(struct logline *l, const char *k, chime_ns d) {
  char tmp[64];
  chime_format_duration(d, tmp, sizeof tmp);
  log_str(l, k, tmp);
}

void format_wall(chime_ns wall, char *buf, size_t size) {
  time_t sec = (time_t)(wall / CHIME_SEC(1));
  long ms = (long)(wall % CHIME_SEC(1) / CHIME_MS(1));
  if (ms < 0) sec--, ms += 1000;
  struct tm tm;
  char day[32];
  if (!gmtime_r(&sec, &tm) || !strftime(day, sizeof day, "%Y-%m-%dT%H:%M:%S", &tm)) {
    snprintf(buf, size, "?");
    return;
  }
  snprintf(buf, size, "%s.%03ldZ", day, ms);
}

void log_time(struct logline *l, const char *k, chime_ns wall) {
  char tmp[64];
  format_wall(wall, tmp, sizeof tmp);
  log_str(l, k, tmp);
}

void log_begin(struct logline *l, const char *level, const char *event) {
  l->len = 0;
  l->cut = false;
  if (format == LOG_JSON) rawz(l, "{");
  log_time(l, "ts", chime_wall_now());
  log_str(l, "level", level);
  log_str(l, "event", event);
}

/* Ends a line: its cut marker, its closing brace, its newline. */
static void close_line(struct logline *l) {
  if (l->cut) force(l, format == LOG_JSON ? ",\"cut\":true" : " cut=true");
  if (format == LOG_JSON) force(l, "}");
  force(l, "\n");
}

/* One write that does not block: bytes written, or -1 with errno (EAGAIN
 * when the descriptor is full). */
static ssize_t try_write(const char *p, size_t n) {
  if (how == HOW_UNKNOWN) {
    struct stat st;
    bool ok = fstat(out_fd, &st) == 0;
    bool plain = ok && (S_ISREG(st.st_mode) || (S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3))); /* /dev/null */
    how = ok && (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)) ? HOW_NOWAIT : plain ? HOW_PLAIN : HOW_POLL;
  }
  for (;;) {
    ssize_t w;
    if (how == HOW_NOWAIT) {
      struct iovec iov = {(void *)p, n};
      w = pwritev2(out_fd, &iov, 1, -1, RWF_NOWAIT);
      if (w < 0 && (errno == EOPNOTSUPP || errno == EINVAL)) { /* a kernel without it */
        how = HOW_POLL;
        continue;
      }
    } else if (how == HOW_PLAIN) {
      w = write(out_fd, p, n);
    } else {
      struct pollfd pfd = {.fd = out_fd, .events = POLLOUT};
      int ready = poll(&pfd, 1, 0);
      if (ready == 0) return errno = EAGAIN, -1;
      w = ready < 0 ? -1 : write(out_fd, p, n);
    }
    if (w < 0 && errno == EINTR) continue;
    return w;
  }
}

/* Writes a whole line or keeps its end in pending; false if none of it
 * could be written. */
static bool put_line(const char *p, size_t n) {
  ssize_t w = try_write(p, n);
  if (w <= 0) return false;
  pending_len = n - (size_t)w;
  memcpy(pending, p + w, pending_len);
  return true;
}

void log_end(struct logline *l) {
  close_line(l);
  if (pending_len) {
    ssize_t w = try_write(pending, pending_len);
    if (w > 0) memmove(pending, pending + w, pending_len - (size_t)w), pending_len -= (size_t)w;
  }
  if (!pending_len && dropped) { /* tell what was lost, first */
    struct logline note;
    log_begin(&note, "warn", "log_dropped");
    log_int(&note, "lines", (long long)dropped);
    close_line(&note);
    if (put_line(note.buf, note.len)) dropped = 0;
  }
  if (pending_len || dropped || !put_line(l->buf, l->len)) dropped++, dropped_total++;
}

void log_msg(const char *level, const char *event, const char *fmt, ...) {
  struct logline l;
  char msg[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  log_begin(&l, level, event);
  log_str(&l, "msg", msg);
  log_end(&l);
}
