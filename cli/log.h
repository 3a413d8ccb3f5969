/* log.h - the daemon's log: one line per event on stderr, in logfmt or in
 * JSON lines, with the same keys in both. */
#ifndef CHIME_CLI_LOG_H
#define CHIME_CLI_LOG_H

#include <chime.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

typedef enum log_format {
  LOG_LOGFMT = 0, /* key=value pairs, values quoted when they need it (the default) */
  LOG_JSON,       /* one JSON object a line */
} log_format;

/* The longest line written; longer values are cut, ending with "...". */
#define LOG_LINE_MAX 16384

/* One line being built.  Lives on the stack of whoever logs. */
struct logline {
  char buf[LOG_LINE_MAX];
  size_t len;
  bool cut; /* a value did not fit */
};

/* "logfmt" or "json" into *f: 0, or -EINVAL. */
int log_format_parse(const char *text, log_format *f);

/* Where lines go (default: descriptor 2) and in which format.  Lines are
 * written without ever blocking: one that cannot be written now is
 * dropped and counted (see log.c). */
void log_setup(log_format f, int fd);
/* Lines dropped since the last one written. */
unsigned long long log_dropped(void);
/* Lines dropped since the process started: a counter for metrics. */
unsigned long long log_dropped_total(void);

/* Starts a line: ts (the wall clock, chime_wall_now), level ("info",
 * "warn", "error") and event: every line has one. */
void log_begin(struct logline *l, const char *level, const char *event);
void log_str(struct logline *l, const char *key, const char *value);
/* Bytes that may be anything (a child's output): invalid UTF-8 becomes
 * U+FFFD, control characters are escaped. */
void log_mem(struct logline *l, const char *key, const char *value, size_t n);
void log_int(struct logline *l, const char *key, long long value);
/* A duration, as seconds with millisecond precision: 1.503. */
void log_dur(struct logline *l, const char *key, chime_ns d);
/* A duration as people write it, and chime_parse_duration reads it back:
 * 3d, 1h30m, 1.5s, 250ms (an interval, where seconds would read badly). */
void log_dur_text(struct logline *l, const char *key, chime_ns d);
/* A wall-clock instant, as RFC 3339 UTC with milliseconds. */
void log_time(struct logline *l, const char *key, chime_ns wall);
/* Ends the line and writes it with one write(2), if that need not wait. */
void log_end(struct logline *l);

/* A whole line at once: level, event and msg. */
void log_msg(const char *level, const char *event, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Escapes n bytes as log values are (and JSON strings: \" \\ \n \r \t
 * \u00XX, \ufffd for bytes that are not UTF-8), handing the pieces to
 * emit(ctx, piece, length); stops early when stop (if not NULL) says so. */
typedef void (*log_emit_fn)(void *ctx, const char *piece, size_t n);
void log_escape(const char *s, size_t n, log_emit_fn emit, bool (*stop)(void *ctx), void *ctx);

/* Writes s[0..n) to f as a JSON string, escaped as log values are. */
void json_fputs(FILE *f, const char *s, size_t n);

/* Formats a wall-clock instant as RFC 3339 UTC with milliseconds
 * ("2026-03-29T01:00:00.000Z") into buf (at least 32 bytes). */
void format_wall(chime_ns wall, char *buf, size_t size);

#endif
