/* fuzz_http.c - libFuzzer target for the chime command's HTTP endpoint:
 * the whole path of a request, from its bytes on a socket through
 * libmicrohttpd's parser, chime's routing, parameters and limits, to the
 * answer written from a snapshot of a daemon of a few jobs.
 *
 * The endpoint runs as in the daemon, on a chime loop kept from one input
 * to the next: each input is written to one end of a socket pair whose
 * other end the endpoint serves (http_serve_fd), the writing side is shut,
 * and the answer read to its end.  Whatever the bytes, the endpoint must
 * close the connection within a second of real time (no hang), and say
 * nothing or begin with an HTTP status line; nothing may crash or leak.
 */
#include <chime.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http.h"
#include "log.h"
#include "runner.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char conf_text[] = "[job every-second]\nevery = 1s\ncommand = true\n"
                                "[job n.i-g@ht]\nschedule = 0 3 * * 1-5\ntz = UTC\ncommand = true\n";

static chime_loop *loop;
static struct runner runner;
static struct http *http;

struct input {
  const uint8_t *data;
  size_t size;
};

/* The jobs of conf_text, as a runner holds them (not started: no next run). */
static void make_runner(void) {
  struct config *cfg = NULL;
  struct errors errs = {0};
  if (config_parse("fuzz.conf", conf_text, sizeof conf_text - 1, &cfg, &errs) != 0) abort();
  for (size_t i = 0; i < cfg->njobs; i++) {
    struct job *j = calloc(1, sizeof *j);
    if (!j) abort();
    j->r = &runner, j->conf = cfg->jobs[i], j->status.last_exit = -1;
    cfg->jobs[i] = NULL;
    j->status.runs[OUTCOME_OK] = i + 1;
    j->next = runner.jobs, runner.jobs = j;
  }
  config_free(cfg);
  if (recorder_new(NULL, false, &runner.rec) != 0) abort();
  char why[256];
  if (http_new(&runner, NULL, &http, why, sizeof why) != 0) abort();
}

static int start_serving(void *arg) {
  (void)arg;
  if (http_start(http) != 0) abort();
  return 0;
}

static int one_input(void *arg) {
  const struct input *in = arg;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) abort();
  if (http_serve_fd(http, sv[0]) != 0) abort();
  chime_ns deadline = chime_now() + CHIME_SEC(1);
  int rc = chime_write_all(sv[1], in->data, in->size, deadline, NULL);
  if (rc != 0 && rc != -EPIPE && rc != -ECONNRESET) abort(); /* the endpoint may close first */
  shutdown(sv[1], SHUT_WR);
  char head[16] = "", buf[65536];
  size_t got = 0;
  for (;;) {
    int n = chime_read(sv[1], buf, sizeof buf, deadline);
    if (n == 0 || n == -ECONNRESET) break;
    if (n < 0) {
      fprintf(stderr, "fuzz_http: the endpoint did not close the connection: %s\n", chime_strerror(n));
      abort();
    }
    if (got < sizeof head - 1) memcpy(head + got, buf, got + (size_t)n < sizeof head - 1 ? (size_t)n : sizeof head - 1 - got);
    got += (size_t)n;
  }
  if (got && (strncmp(head, "HTTP/1.", 7) != 0 || head[8] != ' ' || head[9] < '1' || head[9] > '5')) {
    fprintf(stderr, "fuzz_http: an answer that is no HTTP: %.15s\n", head);
    abort();
  }
  chime_close(sv[1]);
  chime_loop_stop(loop);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!loop) {
    log_setup(LOG_LOGFMT, 2);
    if (chime_loop_new(&(chime_loop_opts){.clock = CHIME_CLOCK_REAL, .stack_size = 512 * 1024}, &loop) != 0)
      abort();
    make_runner();
    if (chime_loop_spawn(loop, start_serving, NULL, NULL) != 0) abort();
  }
  struct input in = {data, size};
  if (chime_loop_spawn(loop, one_input, &in, NULL) != 0) abort();
  if (chime_loop_run(loop) != 0) abort();
  return 0;
}
