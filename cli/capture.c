/* capture.c - reading a child's output: log lines and a bounded tail.
 *
 * Memory is fixed whatever the child writes: a 64 KiB ring for the tail
 * and a 4 KiB line buffer per stream; a line longer than that is logged in
 * 4 KiB pieces (each marked partial).
 */
#include "capture.h"

#include <chime.h>
#include <errno.h>
#include <string.h>

#include "log.h"

static void log_line(struct capture *c, bool partial) {
  struct logline l;
  log_begin(&l, "info", "output");
  log_str(&l, "job", c->job);
  log_str(&l, "stream", c->stream);
  log_int(&l, "pid", c->pid);
  log_mem(&l, "line", c->line, c->line_len);
  if (partial) log_str(&l, "partial", "true");
  log_end(&l);
  c->line_len = 0;
}

static void keep(struct capture *c, const char *buf, size_t n) {
  if (n >= CAPTURE_TAIL) {
    memcpy(c->tail, buf + n - CAPTURE_TAIL, CAPTURE_TAIL);
    c->tail_start = 0, c->tail_len = CAPTURE_TAIL;
    return;
  }
  size_t end = (c->tail_start + c->tail_len) % CAPTURE_TAIL;
  size_t first = n < CAPTURE_TAIL - end ? n : CAPTURE_TAIL - end;
  memcpy(c->tail + end, buf, first);
  memcpy(c->tail, buf + first, n - first);
  c->tail_len += n;
  if (c->tail_len > CAPTURE_TAIL) {
    c->tail_start = (c->tail_start + c->tail_len - CAPTURE_TAIL) % CAPTURE_TAIL;
    c->tail_len = CAPTURE_TAIL;
  }
}

void capture_init(struct capture *c) {
  c->job = c->stream = NULL;
  c->pid = 0;
  c->fd = -1;
  c->tail_start = c->tail_len = c->line_len = 0;
  c->bytes = 0;
  c->both = NULL;
}

void capture_feed(struct capture *c, const char *buf, size_t n) {
  keep(c, buf, n);
  c->bytes += n;
  if (c->both) { /* both streams, in the order they came */
    keep(c->both, buf, n);
    c->both->bytes += n;
  }
  for (size_t i = 0; i < n; i++) {
    if (buf[i] == '\n') {
      log_line(c, false);
      continue;
    }
    if (c->line_len == CAPTURE_LINE) log_line(c, true);
    c->line[c->line_len++] = buf[i];
  }
}

void capture_flush(struct capture *c) {
  if (c->line_len) log_line(c, true);
}

size_t capture_straighten(struct capture *c) {
  /* rotate the ring left by tail_start, in place: three reversals */
  size_t k = c->tail_start, n = CAPTURE_TAIL;
  for (int pass = 0; k && pass < 3; pass++) {
    size_t lo = pass == 0 ? 0 : pass == 1 ? k : 0, hi = pass == 0 ? k : n;
    for (size_t i = lo, j = hi - 1; i < j; i++, j--) {
      char t = c->tail[i];
      c->tail[i] = c->tail[j];
      c->tail[j] = t;
    }
  }
  c->tail_start = 0;
  return c->tail_len;
}

size_t capture_tail(const struct capture *c, char *out) {
  size_t first = c->tail_len < CAPTURE_TAIL - c->tail_start ? c->tail_len : CAPTURE_TAIL - c->tail_start;
  memcpy(out, c->tail + c->tail_start, first);
  memcpy(out + first, c->tail, c->tail_len - first);
  return c->tail_len;
}

/* Each chunk read costs up to a thousand log lines: the task yields after
 * every one, so that a child that writes as fast as it can (yes) delays
 * other jobs, timeouts and signals by one chunk's work at most.  Out of
 * memory, it reads again 10 ms later: a child whose pipe nobody read would
 * block for ever once the pipe is full. */
int capture_task(void *arg) {
  struct capture *c = arg;
  char buf[4096];
  for (;;) {
    int n = chime_read(c->fd, buf, sizeof buf, CHIME_NEVER);
    if (n > 0) capture_feed(c, buf, (size_t)n);
    if (n == -ENOMEM && chime_sleep(CHIME_MS(10)) == 0) continue;
    if (n <= 0 || chime_sleep(1) != 0) {
      capture_flush(c);
      return n < 0 ? n : n == 0 ? 0 : -ECANCELED;
    }
  }
}
