/* libuv_embed.c - periodic jobs inside a program whose event loop is
 * libuv's.
 *
 * The program keeps its own loop (here: a libuv timer that prints a
 * heartbeat); chime runs in it as a guest.  libuv watches chime's one
 * descriptor (chime_loop_fd) and wakes after chime's next deadline
 * (chime_loop_timeout); either way it calls chime_loop_run_once(loop, 0),
 * which does the due work without blocking.
 *
 * Two jobs run: a "health check" every 100 ms, five times, and a "cache
 * refresh" every 250 ms, twice, whose run waits in the pool for a blocking
 * call (chime_to_thread).  When both jobs have ended, chime's loop has no
 * task left and the program closes its libuv handles and exits (0 if
 * both jobs ran their course).
 */
#define _POSIX_C_SOURCE 200809L /* libuv's headers and nanosleep need POSIX */
#include <chime.h>
#include <errno.h>
#include <stdio.h>
#include <time.h>
#include <uv.h>

struct guest {
  chime_loop *loop;
  uv_poll_t poll;   /* chime's descriptor */
  uv_timer_t timer; /* chime's next deadline */
  uv_timer_t heartbeat;
  int beats;
};

static int health_check(void *arg) {
  int *n = arg;
  printf("health check %d\n", ++*n);
  return 0;
}

static int blocking_fetch(void *arg) {
  struct timespec ts = {0, 20 * 1000 * 1000}; /* a blocking library call */
  nanosleep(&ts, NULL);
  return ++*(int *)arg;
}

static int cache_refresh(void *arg) {
  int version;
  int rc = chime_to_thread(blocking_fetch, arg, &version);
  if (rc) return rc;
  printf("cache refreshed to version %d\n", version);
  return 0;
}

static int checks, version;

/* Started through chime_spawn_threadsafe: chime_every wants a running loop. */
static int start_jobs(void *arg) {
  (void)arg;
  chime_task a, b;
  chime_every_opts ho = {.max_runs = 5}, co = {.max_runs = 2};
  int rc = chime_every(CHIME_MS(100), health_check, &checks, &ho, &a);
  if (rc == 0) rc = chime_detach(a);
  if (rc == 0) rc = chime_every(CHIME_MS(250), cache_refresh, &version, &co, &b);
  if (rc == 0) rc = chime_detach(b);
  return rc;
}

static void drive(struct guest *g);

static void on_readable(uv_poll_t *p, int status, int events) {
  (void)status;
  (void)events;
  drive(p->data);
}

static void on_deadline(uv_timer_t *t) { drive(t->data); }

static void on_heartbeat(uv_timer_t *t) {
  struct guest *g = t->data;
  printf("libuv heartbeat %d\n", ++g->beats);
}

static void close_all(struct guest *g) {
  uv_poll_stop(&g->poll);
  uv_timer_stop(&g->timer);
  uv_timer_stop(&g->heartbeat);
  uv_close((uv_handle_t *)&g->poll, NULL);
  uv_close((uv_handle_t *)&g->timer, NULL);
  uv_close((uv_handle_t *)&g->heartbeat, NULL);
}

/* Lets chime do its due work, then re-arms the timer for its next
 * deadline. */
static void drive(struct guest *g) {
  int alive = chime_loop_run_once(g->loop, 0);
  if (alive < 0) {
    fprintf(stderr, "libuv_embed: chime: %s\n", chime_strerror(alive));
    close_all(g);
    return;
  }
  if (alive == 0) { /* both jobs ended */
    printf("jobs done\n");
    close_all(g);
    return;
  }
  chime_ns t = chime_loop_timeout(g->loop);
  uv_timer_stop(&g->timer);
  if (t >= 0) uv_timer_start(&g->timer, on_deadline, (uint64_t)((t + 999999) / 1000000), 0);
}

int main(void) {
  struct guest g = {0};
  chime_loop_opts lo = {.backend = CHIME_BACKEND_EPOLL}; /* the backend with one descriptor to give */
  int rc = chime_loop_new(&lo, &g.loop);
  if (rc) {
    fprintf(stderr, "libuv_embed: chime_loop_new: %s\n", chime_strerror(rc));
    return 1;
  }
  uv_loop_t *uv = uv_default_loop();
  g.poll.data = g.timer.data = g.heartbeat.data = &g;
  uv_poll_init(uv, &g.poll, chime_loop_fd(g.loop));
  uv_timer_init(uv, &g.timer);
  uv_timer_init(uv, &g.heartbeat);
  uv_poll_start(&g.poll, UV_READABLE, on_readable);
  uv_timer_start(&g.heartbeat, on_heartbeat, 200, 200);
  setvbuf(stdout, NULL, _IOLBF, 0);
  rc = chime_spawn_threadsafe(g.loop, start_jobs, NULL);
  if (rc == 0) {
    drive(&g);
    uv_run(uv, UV_RUN_DEFAULT);
  }
  uv_loop_close(uv);
  chime_loop_free(g.loop);
  if (rc == 0 && (checks != 5 || version != 2)) {
    fprintf(stderr, "libuv_embed: %d health checks and %d refreshes, not 5 and 2\n", checks, version);
    rc = 1;
  }
  return rc ? 1 : 0;
}
