/* pingpong_libuv - chime-bench's pingpong workload written for libuv, so
 * that one run can put the two side by side:
 *
 *   pingpong_libuv [N]      N 1-byte messages over two pipes (default 2e6)
 *
 * Two pipes, a and b; the "pong" side reads a byte from a and writes it to
 * b, the "ping" side reads it from b and writes it to a again.  Both sides
 * are read callbacks of uv_pipe_t handles in one loop; writes go through
 * uv_try_write (the pipe always has room), which is libuv's fastest path.
 * Prints the same JSON line as chime-bench pingpong, with impl "libuv".
 */
#define _GNU_SOURCE
#include "bench.h"

#include <fcntl.h>
#include <uv.h>

static long rounds, done;
static uv_pipe_t a_rd, a_wr, b_rd, b_wr;
static char buf[64];

static void alloc_cb(uv_handle_t *h, size_t size, uv_buf_t *out) {
  (void)h;
  (void)size;
  *out = uv_buf_init(buf, sizeof buf);
}

static void send_byte(uv_pipe_t *to) {
  uv_buf_t b = uv_buf_init("x", 1);
  if (uv_try_write((uv_stream_t *)to, &b, 1) != 1) {
    fprintf(stderr, "pingpong_libuv: uv_try_write failed\n");
    exit(1);
  }
}

static void pong_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  (void)s;
  (void)b;
  for (ssize_t i = 0; i < n; i++) send_byte(&b_wr);
}

static void ping_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  (void)b;
  for (ssize_t i = 0; i < n; i++) {
    if (++done == rounds) {
      uv_read_stop(s);
      uv_read_stop((uv_stream_t *)&a_rd);
      return;
    }
    send_byte(&a_wr);
  }
}

int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 2000000;
  rounds = n / 2;
  int a[2], b[2];
  if (pipe2(a, O_NONBLOCK) || pipe2(b, O_NONBLOCK)) return 1;
  uv_loop_t *loop = uv_default_loop();
  uv_pipe_init(loop, &a_rd, 0);
  uv_pipe_init(loop, &a_wr, 0);
  uv_pipe_init(loop, &b_rd, 0);
  uv_pipe_init(loop, &b_wr, 0);
  uv_pipe_open(&a_rd, a[0]);
  uv_pipe_open(&a_wr, a[1]);
  uv_pipe_open(&b_rd, b[0]);
  uv_pipe_open(&b_wr, b[1]);
  uv_read_start((uv_stream_t *)&a_rd, alloc_cb, pong_read);
  uv_read_start((uv_stream_t *)&b_rd, alloc_cb, ping_read);
  int64_t t0 = mono_ns();
  send_byte(&a_wr);
  uv_run(loop, UV_RUN_DEFAULT);
  int64_t dt = mono_ns() - t0;
  j_pingpong("libuv", 2 * rounds, dt, "1-byte messages between two read callbacks over two pipes");
  uv_close((uv_handle_t *)&a_rd, NULL);
  uv_close((uv_handle_t *)&a_wr, NULL);
  uv_close((uv_handle_t *)&b_rd, NULL);
  uv_close((uv_handle_t *)&b_wr, NULL);
  uv_run(loop, UV_RUN_DEFAULT);
  uv_loop_close(loop);
  return 0;
}
