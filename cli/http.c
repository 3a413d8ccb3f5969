/* http.c - the daemon's HTTP endpoint (http.h), on libmicrohttpd.
 *
 * libmicrohttpd parses requests and writes answers; chime's loop drives
 * it.  MHD runs without threads of its own, on one epoll descriptor: a
 * task of the loop waits for it to be readable (chime_wait_fd) or for
 * MHD's next timeout, and calls MHD_run, which does what is ready without
 * blocking and returns.  So a request costs the loop its parsing and the
 * copy of its answer into the socket, microseconds, between two turns;
 * ticks are never held behind a client.
 *
 * What takes longer is worked out off the loop: the metrics and the jobs'
 * JSON from a snapshot (snapshot.c: the copy on the loop, the writing on a
 * pool thread, unless the jobs are HTTP_INLINE_JOBS or fewer: written on
 * the loop, in less time than a hand-off to a thread), and the runs from the history database (read on a pool
 * thread through a read-only connection of its own, WAL letting it read
 * while the recorder writes).  Meanwhile the connection is suspended (MHD
 * leaves it alone) and a task of the `work` group waits for the thread;
 * when the answer is ready the connection is resumed, and the serving
 * task is told through an eventfd (MHD without threads of its own makes
 * nothing readable for a resumed connection): it waits on an epoll set of
 * both, and runs MHD, which asks for the answer again.  At most HTTP_ASYNC_MAX such answers are out at once.
 *
 * Limits: HTTP_CONNECTIONS at once; a request line and headers in
 * HTTP_REQUEST_BYTES of memory (MHD answers 414 or 431 beyond); no request
 * body (413); each request must be answered within HTTP_REQUEST_TIME of
 * the connection's start or its previous answer, else its socket is shut
 * down (MHD then closes it): a client sending a byte now and then
 * (slowloris) holds one connection for that long, no more, and never the
 * loop.
 *
 * Health: a heartbeat task wakes every HEARTBEAT; /healthz is 503 while it
 * is overdue by HTTP_STALL or has found the loop that late within the
 * last HTTP_STALL (a stalled loop cannot answer at all: its first answer
 * after a stall says so), and while the history has failed to be written
 * for HTTP_HISTORY_DOWN.
 */
#include "http.h"

#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "history.h"
#include "listen.h"
#include "log.h"
#include "snapshot.h"

#define HEARTBEAT CHIME_MS(250)

enum route { ROUTE_NONE, ROUTE_PAGE, ROUTE_HEALTH, ROUTE_METRICS, ROUTE_JOBS, ROUTE_RUNS };

static const struct {
  const char *path;
  enum route route;
} routes[] = {{"/", ROUTE_PAGE},
              {"/healthz", ROUTE_HEALTH},
              {"/metrics", ROUTE_METRICS},
              {"/api/jobs", ROUTE_JOBS},
              {"/api/runs", ROUTE_RUNS}};

/* A connection, for its deadline and its half-close. */
struct conn {
  int fd;
  chime_ns deadline; /* real time (CLOCK_MONOTONIC) */
  bool cut;          /* its socket was shut down */
  bool busy;         /* a request's headers are in: it is being answered */
  bool hup;          /* the client will send nothing more */
  unsigned quiet;    /* with hup: rounds of MHD seen with nothing to read and no request being answered */
  struct conn *prev, *next;
};

/* /api/runs' parameters. */
struct runs_query {
  char job[JOB_NAME_MAX + 1]; /* "" : every job */
  long limit;
  long long before;
  char why[160];              /* the first bad parameter, said */
  bool seen_job, seen_limit, seen_before;
};

/* A request answered off the loop. */
struct req {
  struct http *h;
  struct MHD_Connection *c;
  enum route route;
  struct snapshot *snap;
  struct runs_query q;
  struct text body;
  unsigned status;
  const char *type;
  bool done; /* the body and status are there: the connection was resumed */
};

struct http {
  struct runner *r;
  struct tally *tally;   /* what the jobs' events said (snapshot.c) */
  struct MHD_Daemon *d;
  int epfd;              /* MHD's */
  int kick;              /* an eventfd: a connection was resumed */
  int waitfd;            /* an epoll set of both and of the connections' half-closes: the serving task waits on it */
  bool cut_soon;         /* a connection is done: its socket is to be shut down */
  struct listen_addr addr; /* as bound (its port, if 0 was asked) */
  bool listening;
  chime_task server, heart;
  bool serving, beating;
  chime_group *work;     /* the tasks of answers worked out off the loop */
  unsigned async;        /* of them, going */
  struct conn *conns;
  chime_ns beat;         /* chime_now() at the heartbeat's latest wake */
  chime_ns stall, stall_end; /* the latest stall beyond HTTP_STALL: how long, and when it ended (chime_now) */
};

static chime_ns real_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (chime_ns)ts.tv_sec * CHIME_SEC(1) + ts.tv_nsec;
}

/* ---- answers ------------------------------------------------------------------------ */

static enum MHD_Result answer(struct MHD_Connection *c, unsigned status, const char *type, const char *body,
                              size_t len, enum MHD_ResponseMemoryMode mode) {
  struct MHD_Response *res = MHD_create_response_from_buffer(len, (void *)body, mode);
  if (!res) {
    if (mode == MHD_RESPMEM_MUST_FREE) free((void *)body);
    return MHD_NO; /* no memory: MHD closes the connection */
  }
  MHD_add_response_header(res, MHD_HTTP_HEADER_CONTENT_TYPE, type);
  MHD_add_response_header(res, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
  MHD_add_response_header(res, "X-Content-Type-Options", "nosniff");
  if (status == MHD_HTTP_METHOD_NOT_ALLOWED) MHD_add_response_header(res, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
  if (strncmp(type, "text/html", 9) == 0) /* the page loads nothing from anywhere else */
    MHD_add_response_header(res, "Content-Security-Policy",
                            "default-src 'none'; connect-src 'self'; img-src 'self' data:; "
                            "style-src 'unsafe-inline'; script-src 'unsafe-inline'; base-uri 'none'; "
                            "form-action 'none'; frame-ancestors 'none'");
  enum MHD_Result rc = MHD_queue_response(c, status, res);
  MHD_destroy_response(res);
  return rc;
}

/* One line, a refusal, a failure or the health's word: JSON for the API's paths, text
 * elsewhere. */
static enum MHD_Result refuse(struct MHD_Connection *c, enum route route, unsigned status, const char *why) {
  struct text t = {0};
  if (route == ROUTE_JOBS || route == ROUTE_RUNS) {
    text_puts(&t, "{\"error\":"), text_json(&t, why, strlen(why)), text_puts(&t, "}\n");
  } else {
    text_puts(&t, why), text_put(&t, "\n", 1);
  }
  if (t.nomem) return free(t.p), MHD_NO;
  return answer(c, status, route == ROUTE_JOBS || route == ROUTE_RUNS ? "application/json" : "text/plain; charset=utf-8",
                t.p, t.len, MHD_RESPMEM_MUST_FREE);
}

/* ---- /healthz -------------------------------------------------------------------- */

static enum MHD_Result health(struct http *h, struct MHD_Connection *c) {
  char why[1400];
  chime_ns now = chime_now();
  struct recorder_health rh;
  recorder_health(h->r->rec, &rh);
  unsigned status = MHD_HTTP_SERVICE_UNAVAILABLE;
  if (h->r->stopping)
    snprintf(why, sizeof why, "stopping: chime is ending its runs and will exit");
  else if (now - h->beat > HTTP_STALL)
    snprintf(why, sizeof why, "loop stalled: it has not turned for %.1f s (the bound is %.0f s)",
             (double)(now - h->beat) / 1e9, (double)HTTP_STALL / 1e9);
  else if (h->stall_end && now - h->stall_end < HTTP_STALL)
    snprintf(why, sizeof why, "loop stalled: it did not turn for %.1f s, until %.1f s ago (the bound is %.0f s)",
             (double)h->stall / 1e9, (double)(now - h->stall_end) / 1e9, (double)HTTP_STALL / 1e9);
  else if (rh.failing_since && now - rh.failing_since > HTTP_HISTORY_DOWN)
    snprintf(why, sizeof why, "history unwritable for %.0f s (the bound is %.0f s): %s",
             (double)(now - rh.failing_since) / 1e9, (double)HTTP_HISTORY_DOWN / 1e9, rh.why ? rh.why : "?");
  else {
    status = MHD_HTTP_OK;
    snprintf(why, sizeof why, "ok: %d job(s) scheduled%s%s", h->r->active, h->r->config_path ? " from " : "",
             h->r->config_path ? h->r->config_path : "");
  }
  for (char *p = why; *p; p++) /* one line, whatever an error said */
    if (*p == '\n' || *p == '\r') *p = ' ';
  return refuse(c, ROUTE_HEALTH, status, why);
}

static int heartbeat(void *arg) {
  struct http *h = arg;
  for (;;) {
    chime_ns planned = chime_now() + HEARTBEAT;
    if (chime_sleep_until(planned) != 0) return 0;
    chime_ns now = chime_now();
    if (now - planned > HTTP_STALL) h->stall = now - planned + HEARTBEAT, h->stall_end = now;
    h->beat = now;
  }
}

/* ---- /api/runs' parameters ----------------------------------------------------------- */

/* A whole number of 1 to 18 digits, from 1 to max. */
static int whole(const char *v, long long max, long long *out) {
  size_t n = v ? strspn(v, "0123456789") : 0;
  if (n == 0 || v[n] || n > 18) return -EINVAL;
  long long x = 0;
  for (size_t i = 0; i < n; i++) x = x * 10 + (v[i] - '0');
  if (x < 1 || x > max) return -EINVAL;
  *out = x;
  return 0;
}

static enum MHD_Result runs_param(void *cls, enum MHD_ValueKind kind, const char *key, const char *value) {
  struct runs_query *q = cls;
  (void)kind;
  long long x;
  if (q->why[0]) return MHD_NO;
  if (strcmp(key, "job") == 0 && !q->seen_job) {
    q->seen_job = true;
    if (!value || !job_name_ok(value))
      snprintf(q->why, sizeof q->why, "job: not a job name (1 to %d of A-Z a-z 0-9 _ . - @)", JOB_NAME_MAX);
    else
      snprintf(q->job, sizeof q->job, "%s", value);
  } else if (strcmp(key, "limit") == 0 && !q->seen_limit) {
    q->seen_limit = true;
    if (whole(value, HTTP_RUNS_LIMIT, &x)) snprintf(q->why, sizeof q->why, "limit: a number from 1 to %d", HTTP_RUNS_LIMIT);
    else q->limit = (long)x;
  } else if (strcmp(key, "before") == 0 && !q->seen_before) {
    q->seen_before = true;
    if (whole(value, INT64_MAX / 10, &x)) snprintf(q->why, sizeof q->why, "before: a run's id, a number from 1");
    else q->before = x;
  } else if (strcmp(key, "job") == 0 || strcmp(key, "limit") == 0 || strcmp(key, "before") == 0) {
    snprintf(q->why, sizeof q->why, "%s: given twice", key);
  } else {
    snprintf(q->why, sizeof q->why, "%.40s: unknown parameter (job, limit and before are known)", key);
  }
  return q->why[0] ? MHD_NO : MHD_YES;
}

/* ---- answers worked out off the loop -------------------------------------------------- */

/* On a pool thread: the answer from the snapshot, or from the history. */
static int work_thread(void *arg) {
  struct req *q = arg;
  q->status = MHD_HTTP_OK;
  if (q->route == ROUTE_METRICS) {
    q->type = "text/plain; version=0.0.4; charset=utf-8";
    render_metrics(q->snap, &q->body);
    return 0;
  }
  q->type = "application/json";
  if (q->route == ROUTE_JOBS) {
    render_jobs(q->snap, &q->body);
    return 0;
  }
  const char *path = q->h->r->db_path;
  if (access(path, F_OK) != 0) { /* nothing recorded yet */
    text_puts(&q->body, "[]\n");
    return 0;
  }
  char why[1024];
  struct history *hist;
  if (history_open_read(path, &hist, why, sizeof why) != 0) {
    q->status = MHD_HTTP_SERVICE_UNAVAILABLE;
    text_puts(&q->body, why);
    return 0;
  }
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  struct history_query hq = {.job = q->q.job[0] ? q->q.job : NULL, .limit = (int)q->q.limit, .before = q->q.before,
                             .json = true, .max_bytes = HTTP_RUNS_BYTES};
  int rc = f ? history_page(hist, &hq, f) : -ENOMEM;
  if (f && fclose(f) != 0 && rc == 0) rc = -ENOMEM;
  if (rc == 0) text_put(&q->body, buf, len);
  else q->status = MHD_HTTP_SERVICE_UNAVAILABLE, snprintf(why, sizeof why, "history database %s: %s", path,
                                                          rc == -ENOMEM ? "out of memory" : history_error(hist)),
       text_puts(&q->body, why);
  free(buf);
  history_close(hist);
  return 0;
}

static int work_task(void *arg) {
  struct req *q = arg;
  int rc = chime_to_thread(work_thread, q, NULL);
  if (rc != 0 || q->body.nomem) {
    q->status = MHD_HTTP_SERVICE_UNAVAILABLE;
    free(q->body.p);
    q->body = (struct text){0};
    text_puts(&q->body, rc == -ECANCELED ? "chime is stopping" : rc == 0 ? "out of memory" : chime_strerror(rc));
  }
  snapshot_free(q->snap);
  q->snap = NULL;
  q->done = true;
  q->h->async--;
  MHD_resume_connection(q->c);
  eventfd_write(q->h->kick, 1); /* MHD says nothing of it: the serving task is told */
  return 0;
}

/* Queues q's answer, worked out. */
static enum MHD_Result give(struct MHD_Connection *c, struct req *q) {
  unsigned status = q->status;
  const char *type = q->type ? q->type : "text/plain; charset=utf-8";
  struct text body = q->body;
  q->body = (struct text){0};
  if (status != MHD_HTTP_OK || body.nomem) {
    enum MHD_Result rc = refuse(c, q->route, body.nomem ? MHD_HTTP_SERVICE_UNAVAILABLE : status,
                                body.p && !body.nomem ? body.p : "out of memory");
    free(body.p);
    return rc;
  }
  return answer(c, status, type, body.p ? body.p : "", body.len, body.p ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
}

/* Works out q's answer: a small one at once, on the loop (tens of
 * microseconds, less than handing it to a thread and back); else off the
 * loop, its connection suspended meanwhile. */
static enum MHD_Result work(struct http *h, struct req *q) {
  if (q->route != ROUTE_RUNS && tally_snapshot(h->tally, &q->snap) != 0)
    return refuse(q->c, q->route, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory");
  if (q->snap && q->snap->njobs <= HTTP_INLINE_JOBS) {
    work_thread(q);
    snapshot_free(q->snap);
    q->snap = NULL;
    q->done = true;
    return give(q->c, q);
  }
  if (h->async >= HTTP_ASYNC_MAX) {
    snapshot_free(q->snap);
    q->snap = NULL;
    return refuse(q->c, q->route, MHD_HTTP_SERVICE_UNAVAILABLE, "busy: too many answers being worked out; try again");
  }
  if (chime_group_spawn(h->work, work_task, q) != 0) {
    snapshot_free(q->snap);
    q->snap = NULL;
    return refuse(q->c, q->route, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory");
  }
  h->async++;
  MHD_suspend_connection(q->c);
  return MHD_YES;
}

/* ---- requests ----------------------------------------------------------------------- */

static enum MHD_Result request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                               const char *version, const char *upload, size_t *upload_size, void **req_cls) {
  struct http *h = cls;
  struct req *q = *req_cls;
  (void)version, (void)upload;
  const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  if (ci && ci->socket_context) ((struct conn *)ci->socket_context)->busy = true;
  if (q) return q->done ? give(c, q) : MHD_NO; /* resumed: its answer is there */
  enum route route = ROUTE_NONE;
  for (size_t i = 0; i < sizeof routes / sizeof *routes; i++)
    if (strcmp(url, routes[i].path) == 0) route = routes[i].route;
  if (route == ROUTE_NONE) {
    char why[128];
    snprintf(why, sizeof why, "not found: %.60s (/, /healthz, /metrics, /api/jobs and /api/runs are)", url);
    for (char *p = why; *p; p++)
      if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = '?';
    return refuse(c, route, MHD_HTTP_NOT_FOUND, why);
  }
  if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
    return refuse(c, route, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed: GET or HEAD");
  if (*upload_size || MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING) ||
      (MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH) &&
       strcmp(MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH), "0") != 0))
    return refuse(c, route, MHD_HTTP_CONTENT_TOO_LARGE, "a request body is not taken here");
  switch (route) {
  case ROUTE_PAGE: return answer(c, MHD_HTTP_OK, "text/html; charset=utf-8", status_html, status_html_len, MHD_RESPMEM_PERSISTENT);
  case ROUTE_HEALTH: return health(h, c);
  default: break;
  }
  struct runs_query rq = {.limit = 100};
  if (route == ROUTE_RUNS) {
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, runs_param, &rq);
    if (rq.why[0]) return refuse(c, route, MHD_HTTP_BAD_REQUEST, rq.why);
    if (!h->r->db_path) return refuse(c, route, MHD_HTTP_NOT_FOUND, "no history: chime runs without a database (db = none)");
  }
  if (h->r->stopping && route != ROUTE_METRICS)
    return refuse(c, route, MHD_HTTP_SERVICE_UNAVAILABLE, "chime is stopping");
  q = calloc(1, sizeof *q);
  if (!q) return MHD_NO;
  *q = (struct req){.h = h, .c = c, .route = route, .q = rq};
  *req_cls = q;
  return work(h, q);
}

static void completed(void *cls, struct MHD_Connection *c, void **req_cls, enum MHD_RequestTerminationCode toe) {
  struct req *q = *req_cls;
  (void)cls, (void)toe;
  if (q) { /* its task has ended: it resumed the connection */
    free(q->body.p);
    free(q);
    *req_cls = NULL;
  }
  const union MHD_ConnectionInfo *info = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  struct conn *conn = info ? info->socket_context : NULL;
  if (!conn) return;
  conn->deadline = real_now() + HTTP_REQUEST_TIME; /* the next request's time starts */
  conn->busy = false;
}

static void connection(void *cls, struct MHD_Connection *c, void **socket_context,
                       enum MHD_ConnectionNotificationCode toe) {
  struct http *h = cls;
  struct conn *conn = *socket_context;
  if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
    const union MHD_ConnectionInfo *info = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    conn = calloc(1, sizeof *conn);
    if (!conn) return; /* no deadline of ours for it: MHD's idle timeout still holds */
    conn->fd = info ? info->connect_fd : -1;
    conn->deadline = real_now() + HTTP_REQUEST_TIME;
    /* MHD hears of a client's half-close only by reading, and reads on an
     * edge: a request cut short, then the end of the client's sending,
     * reach it as one edge, and the connection would wait for its
     * deadline.  The set the serving task waits on hears of it. */
    struct epoll_event ev = {.events = EPOLLRDHUP | EPOLLET, .data.ptr = conn};
    if (conn->fd >= 0) epoll_ctl(h->waitfd, EPOLL_CTL_ADD, conn->fd, &ev);
    conn->next = h->conns;
    if (h->conns) h->conns->prev = conn;
    h->conns = conn;
    *socket_context = conn;
    return;
  }
  if (!conn) return;
  if (conn->fd >= 0) epoll_ctl(h->waitfd, EPOLL_CTL_DEL, conn->fd, NULL);
  if (conn->prev) conn->prev->next = conn->next;
  else h->conns = conn->next;
  if (conn->next) conn->next->prev = conn->prev;
  free(conn);
  *socket_context = NULL;
}

/* Notes the connections whose client has half-closed (from the set the
 * serving task waits on).  One is done once MHD has read all it sent and
 * answers no request of it: its socket is then shut down, so that MHD
 * reads its end.  Sets cut_soon when MHD is to run again. */
static void note_hangups(struct http *h) {
  struct epoll_event evs[64];
  int n = epoll_wait(h->waitfd, evs, 64, 0);
  for (int i = 0; i < n; i++) {
    struct conn *c = evs[i].data.ptr;
    if (c && (evs[i].events & (EPOLLRDHUP | EPOLLHUP))) c->hup = true;
  }
  for (struct conn *c = h->conns; c; c = c->next) {
    char byte;
    if (!c->hup || c->cut) continue;
    if (c->busy || recv(c->fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) != 0) {
      c->quiet = 0;
      continue;
    }
    /* a second quiet round: a request MHD had read behind the last (pipelined) would have begun */
    if (++c->quiet >= 2) c->deadline = 0;
    h->cut_soon = true;
  }
}

/* Shuts down the sockets of connections past their deadline; returns how
 * long until the next deadline (CHIME_NEVER: none). */
static chime_ns cut_late(struct http *h) {
  chime_ns now = real_now(), next = CHIME_NEVER;
  h->cut_soon = false;
  for (struct conn *c = h->conns; c; c = c->next) {
    if (c->cut || c->fd < 0) continue;
    if (c->deadline <= now) {
      shutdown(c->fd, SHUT_RDWR); /* MHD reads its end and closes it */
      c->cut = true;
    } else if (c->deadline - now < next) {
      next = c->deadline - now;
    }
  }
  return next;
}

/* ---- serving ----------------------------------------------------------------------------- */

static int serve(void *arg) {
  struct http *h = arg;
  for (;;) {
    chime_ns wait = cut_late(h);
    MHD_UNSIGNED_LONG_LONG ms;
    if (MHD_get_timeout(h->d, &ms) == MHD_YES && (ms < 3600000 && CHIME_MS((chime_ns)ms) < wait))
      wait = CHIME_MS((chime_ns)ms);
    int rc = wait == 0 ? chime_yield()
                       : chime_wait_fd(h->waitfd, CHIME_READABLE, wait == CHIME_NEVER ? CHIME_NEVER : chime_now() + wait);
    if (rc == -ECANCELED) return 0;
    eventfd_t resumed;
    eventfd_read(h->kick, &resumed);
    cut_late(h);
    /* MHD reads what a half-closing client sent; a connection done with is
     * shut down and MHD run again to close it (a few rounds at most) */
    for (int round = 0; round < 4; round++) {
      MHD_run(h->d);
      note_hangups(h);
      if (!h->cut_soon) break;
      cut_late(h);
    }
  }
}

/* A socket listening on the address. */
static int listen_on(struct http *h, const char *text, char *why, size_t size) {
  char err[256];
  if (listen_addr_parse(text, &h->addr, err, sizeof err) != 0)
    return snprintf(why, size, "http: %s", err), -EINVAL;
  int fd = socket(h->addr.ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1, rc = 0;
  if (fd < 0) rc = -errno;
  else if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
           bind(fd, (struct sockaddr *)&h->addr.ss, h->addr.len) != 0 || listen(fd, HTTP_CONNECTIONS) != 0)
    rc = -errno;
  if (rc) {
    snprintf(why, size, "http: cannot listen on %s: %s%s", h->addr.text, strerror(-rc),
             rc == -EADDRINUSE ? " (another program, or another chime, has it)" : "");
    if (fd >= 0) close(fd);
    return rc;
  }
  struct listen_addr bound = h->addr;
  bound.len = sizeof bound.ss;
  if (getsockname(fd, (struct sockaddr *)&bound.ss, &bound.len) == 0) { /* the port, if 0 was asked */
    unsigned port = ntohs(bound.ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound.ss)->sin6_port
                                                         : ((struct sockaddr_in *)&bound.ss)->sin_port);
    char *colon = strrchr(h->addr.text, ':');
    snprintf(colon + 1, sizeof h->addr.text - (size_t)(colon + 1 - h->addr.text), "%u", port);
  }
  return fd;
}

int http_new(struct runner *r, const char *addr, struct http **out, char *why, size_t size) {
  struct http *h = calloc(1, sizeof *h);
  if (!h) return snprintf(why, size, "http: out of memory"), -ENOMEM;
  h->r = r;
  h->epfd = h->kick = h->waitfd = -1;
  int fd = -1;
  if (addr && (fd = listen_on(h, addr, why, size)) < 0) {
    free(h);
    return fd;
  }
  h->listening = addr != NULL;
  unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | (addr ? 0 : MHD_USE_NO_LISTEN_SOCKET);
  h->d = MHD_start_daemon(flags, 0, NULL, NULL, request, h,
                          MHD_OPTION_CONNECTION_LIMIT, (unsigned)HTTP_CONNECTIONS,
                          MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)(HTTP_REQUEST_TIME / CHIME_SEC(1)),
                          MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_REQUEST_BYTES,
                          MHD_OPTION_STRICT_FOR_CLIENT, (int)1,
                          MHD_OPTION_NOTIFY_COMPLETED, completed, h,
                          MHD_OPTION_NOTIFY_CONNECTION, connection, h,
                          addr ? MHD_OPTION_LISTEN_SOCKET : MHD_OPTION_END, fd, /* last: none without addr */
                          MHD_OPTION_END);
  const union MHD_DaemonInfo *info = h->d ? MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_EPOLL_FD) : NULL;
  h->epfd = info ? info->epoll_fd : -1;
  h->kick = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  h->waitfd = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event ev = {.events = EPOLLIN}; /* data.ptr NULL: not a connection */
  if (!info || h->kick < 0 || h->waitfd < 0 || epoll_ctl(h->waitfd, EPOLL_CTL_ADD, h->epfd, &ev) != 0 ||
      epoll_ctl(h->waitfd, EPOLL_CTL_ADD, h->kick, &ev) != 0 || tally_new(r, &h->tally) != 0) {
    snprintf(why, size, "http: %s: libmicrohttpd could not start", h->addr.text[0] ? h->addr.text : "no listener");
    if (!h->d && fd >= 0) close(fd);
    http_free(h);
    return -ENOMEM;
  }
  *out = h;
  return 0;
}

int http_start(struct http *h) {
  if (!h) return 0;
  h->beat = chime_now();
  int rc = chime_group_new(NULL, &h->work);
  if (rc == 0 && (rc = chime_spawn(heartbeat, h, &h->heart)) == 0) h->beating = true;
  if (rc == 0 && (rc = chime_spawn(serve, h, &h->server)) == 0) h->serving = true;
  if (rc) {
    log_msg("error", "http", "cannot serve: %s", chime_strerror(rc));
    return rc;
  }
  if (h->listening) {
    char url[LISTEN_TEXT_MAX + 16];
    snprintf(url, sizeof url, "http://%s/", h->addr.text);
    struct logline l;
    log_begin(&l, "info", "http");
    log_str(&l, "url", url);
    log_str(&l, "msg", "serving /metrics, /healthz, /api/jobs, /api/runs and the status page");
    log_end(&l);
  }
  return 0;
}

void http_stop(struct http *h) {
  if (!h) return;
  int shield = chime_shield(true);
  if (h->work) { /* answers being worked out: their threads are waited for, their connections resumed */
    chime_group_cancel(h->work);
    chime_group_join(h->work, CHIME_NEVER, NULL);
    chime_group_free(h->work);
    h->work = NULL;
  }
  if (h->serving) chime_cancel(h->server), chime_join(h->server, NULL), h->serving = false;
  if (h->beating) chime_cancel(h->heart), chime_join(h->heart, NULL), h->beating = false;
  chime_shield(shield == 1);
}

void http_free(struct http *h) {
  if (!h) return;
  if (h->d) MHD_stop_daemon(h->d); /* closes the listener and every connection */
  if (h->kick >= 0) close(h->kick);
  if (h->waitfd >= 0) close(h->waitfd);
  tally_free(h->tally);
  free(h);
}

int http_serve_fd(struct http *h, int fd) {
  struct sockaddr_in peer = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  return MHD_add_connection(h->d, fd, (struct sockaddr *)&peer, sizeof peer) == MHD_YES ? 0 : -EIO;
}
