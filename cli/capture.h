/* capture.h - a child's stdout or stderr: logged line by line, its last
 * 64 KiB kept for the run's record. */
#ifndef CHIME_CLI_CAPTURE_H
#define CHIME_CLI_CAPTURE_H

#include <stdbool.h>
#include <stddef.h>

#define CAPTURE_TAIL (64 * 1024) /* bytes of output kept per stream */
#define CAPTURE_LINE 4096        /* a longer line is logged in pieces of this size */

struct capture {
  const char *job;    /* for the log lines */
  const char *stream; /* "stdout" or "stderr" */
  int pid;
  int fd;             /* the pipe's read end (non-blocking) */
  char tail[CAPTURE_TAIL];
  size_t tail_start, tail_len; /* a ring: tail_len bytes from tail_start */
  char line[CAPTURE_LINE];
  size_t line_len;
  unsigned long long bytes; /* all the child wrote */
  struct capture *both;     /* also fed the output's tail (stdout and stderr as they came), or NULL */
};

/* An empty capture (its buffers are not cleared: they are written before
 * they are read). */
void capture_init(struct capture *c);
/* Takes n more bytes of output: logs each complete line, keeps the tail. */
void capture_feed(struct capture *c, const char *buf, size_t n);
/* Logs what is left of an unfinished last line. */
void capture_flush(struct capture *c);
/* Puts the tail in order in its own buffer, c->tail (no copy, no
 * allocation); returns its length. */
size_t capture_straighten(struct capture *c);
/* The tail in order, copied to out (CAPTURE_TAIL bytes); returns its length. */
size_t capture_tail(const struct capture *c, char *out);
/* A task: reads c->fd until end of file or cancellation, feeding c. */
int capture_task(void *c);

#endif
