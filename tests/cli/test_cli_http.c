/* test_cli_http.c - the chime command's HTTP endpoint, end to end: the
 * real daemon serves on a free loopback port and a client of raw sockets
 * asks it, well and badly.  Schedules run on the real clock (the endpoint
 * is about a running daemon), with generous bounds; the history's outage
 * runs on the virtual clock, where a minute passes at once. */
#define _GNU_SOURCE
#pragma GCC diagnostic ignored "-Wunused-function" /* cli_test.h's helpers this file does not need */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "cli_test.h"
#include "http.h"
#include "snapshot.h"

/* An answer: its status, headers and body (NUL-terminated, owned). */
struct reply {
  int status;
  char *head, *body;
  size_t len;
};

static void reply_free(struct reply *r) {
  free(r->head);
  free(r->body);
  memset(r, 0, sizeof *r);
}

/* The port chime said it serves on (event=http url=http://127.0.0.1:PORT/). */
static int served_port(struct proc *p) {
  assert_true(wait_log(p, "event=http url=http://", 30));
  const char *u = strstr(p->log, "url=http://127.0.0.1:");
  assert_non_null(u);
  return atoi(u + strlen("url=http://127.0.0.1:"));
}

static int dial(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  assert_true(fd >= 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
  struct timeval tv = {.tv_sec = 30};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

static void send_all(int fd, const char *s, size_t n) {
  while (n) {
    ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
    if (w <= 0) return; /* the server may close first: what it answered is read */
    s += w, n -= (size_t)w;
  }
}

/* Reads until the server closes (every answer here ends its connection,
 * or the test asks Connection: close), then splits the answer. */
static void read_reply(int fd, struct reply *r) {
  char *buf = NULL;
  size_t len = 0;
  char chunk[65536];
  ssize_t n;
  while ((n = recv(fd, chunk, sizeof chunk, 0)) > 0) {
    buf = realloc(buf, len + (size_t)n + 1);
    memcpy(buf + len, chunk, (size_t)n);
    len += (size_t)n;
  }
  close(fd);
  memset(r, 0, sizeof *r);
  if (!buf) return;
  buf[len] = '\0';
  sscanf(buf, "HTTP/1.%*d %d", &r->status);
  char *end = strstr(buf, "\r\n\r\n");
  size_t head = end ? (size_t)(end - buf) + 4 : len;
  r->head = strndup(buf, head);
  r->len = len - head;
  r->body = malloc(r->len + 1);
  memcpy(r->body, buf + head, r->len);
  r->body[r->len] = '\0';
  free(buf);
}

/* A request as bytes, and its answer. */
static void raw(int port, const char *request, size_t n, struct reply *r) {
  int fd = dial(port);
  send_all(fd, request, n);
  read_reply(fd, r);
}

static void get(int port, const char *method, const char *target, struct reply *r) {
  char req[4096];
  int n = snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", method, target);
  raw(port, req, (size_t)n, r);
}

/* Asks, and checks the answer's status and that its body holds `text`
 * (NULL: anything). */
static void expect(int port, const char *method, const char *target, int status, const char *text) {
  struct reply r;
  get(port, method, target, &r);
  if (r.status != status || (text && !strstr(r.body, text)))
    print_error("%s %s: %d %s (expected %d, %s)\n", method, target, r.status, r.body ? r.body : "", status,
                text ? text : "");
  assert_int_equal(r.status, status);
  if (text) assert_non_null(strstr(r.body, text));
  reply_free(&r);
}

/* A daemon of a few jobs on the real clock, serving HTTP. */
static const char jobs_conf[] = "[chime]\nhttp = 127.0.0.1:0\n"
                                "[job good]\nevery = 200ms\nstart_now = true\ncommand = true\n"
                                "[job bad]\nevery = 200ms\nstart_now = true\ncommand = sh -c 'echo \"<b>&\\\"x\" >&2; exit 3'\n"
                                "[job slow]\nevery = 100ms\nstart_now = true\ncommand = sleep 0.35\n"
                                "[job later.x-y@z]\nschedule = 0 0 1 1 *\ntz = Europe/Berlin\ncommand = true\n";

/* Waits (at most `limit` real seconds) until the log holds text n times. */
static bool wait_count(struct proc *p, const char *text, int n, double limit) {
  double end = mono() + limit;
  while (count(p->log, text) < n) {
    if (mono() > end) return false;
    pump(p, 0.05);
  }
  return true;
}

/* Starts the daemon of jobs_conf and waits until each job has done enough
 * to show: three runs of good and bad, slow's skipped ticks, and the
 * history written (a batch follows within milliseconds). */
static int start_jobs(struct proc *p, char *dir, char *db, char *conf) {
  paths(dir, db, conf);
  write_file(conf, jobs_conf, 0644);
  start(p, (const char *const[]){"run", conf, "--db", db, NULL}, NULL);
  int port = served_port(p);
  assert_true(wait_log(p, "event=skip job=slow", 30));
  assert_true(wait_count(p, "event=end job=bad", 3, 30));
  assert_true(wait_count(p, "event=end job=good", 3, 30));
  usleep(300000);
  return port;
}

static void stop(struct proc *p) {
  kill(p->pid, SIGINT);
  assert_int_equal(finish(p, 60), 0);
  proc_free(p);
}

/* The value of the sample `line` starts (name and labels), or -1. */
static double sample(const char *text, const char *line) {
  char key[256];
  snprintf(key, sizeof key, "\n%s ", line);
  const char *at = strstr(text, key);
  return at ? strtod(at + strlen(key), NULL) : -1;
}

static void metrics_say_what_the_jobs_did(void **state) {
  (void)state;
  char dir[64], db[128], conf[128];
  struct proc p;
  int port = start_jobs(&p, dir, db, conf);
  struct reply r;
  get(port, "GET", "/metrics", &r);
  assert_int_equal(r.status, 200);
  assert_non_null(strstr(r.head, "Content-Type: text/plain; version=0.0.4"));
  assert_non_null(strstr(r.body, "chime_build_info{version=\"" CHIME_VERSION_STRING "\"} 1\n"));
  assert_true(sample(r.body, "chime_job_runs_total{job=\"good\",outcome=\"ok\"}") >= 2);
  assert_true(sample(r.body, "chime_job_runs_total{job=\"bad\",outcome=\"failed\"}") >= 1);
  assert_true(sample(r.body, "chime_job_runs_total{job=\"good\",outcome=\"failed\"}") == 0);
  assert_true(sample(r.body, "chime_job_skipped_ticks_total{job=\"slow\",reason=\"overlap\"}") >= 1);
  assert_true(sample(r.body, "chime_job_skipped_ticks_total{job=\"slow\",reason=\"paused\"}") == 0);
  assert_true(sample(r.body, "chime_job_run_duration_seconds_count{job=\"good\"}") >= 2);
  assert_true(sample(r.body, "chime_job_run_lateness_seconds_bucket{job=\"good\",le=\"+Inf\"}") >= 2);
  double last_ok = sample(r.body, "chime_job_last_success_timestamp_seconds{job=\"good\"}");
  assert_true(last_ok > 1.7e9 && last_ok <= (double)time(NULL) + 1);
  assert_true(sample(r.body, "chime_job_last_failure_timestamp_seconds{job=\"bad\"}") > 1.7e9);
  assert_null(strstr(r.body, "chime_job_last_success_timestamp_seconds{job=\"bad\"}")); /* none yet: no sample */
  assert_true(sample(r.body, "chime_job_next_run_timestamp_seconds{job=\"later.x-y@z\"}") > (double)time(NULL));
  assert_true(sample(r.body, "chime_job_runs_in_progress{job=\"later.x-y@z\"}") == 0);
  assert_true(sample(r.body, "chime_history_write_failures_total") == 0);
  assert_true(sample(r.body, "chime_log_lines_dropped_total") == 0);
  assert_null(strstr(r.body, "sleep")); /* no commands in labels */
  /* the slow job is running most of the time: its gauge says so at some scrape */
  bool seen_running = false;
  for (int i = 0; i < 40 && !seen_running; i++) {
    struct reply again;
    get(port, "GET", "/metrics", &again);
    seen_running = sample(again.body, "chime_job_runs_in_progress{job=\"slow\"}") == 1;
    reply_free(&again);
    usleep(50000);
  }
  assert_true(seen_running);
  /* Prometheus' own parser and linter, where it is installed */
  if (access("/usr/bin/promtool", X_OK) == 0) {
    char path[160], cmd[400];
    snprintf(path, sizeof path, "%s/metrics.txt", dir);
    write_file(path, r.body, 0644);
    snprintf(cmd, sizeof cmd, "promtool check metrics < %s", path);
    assert_int_equal(system(cmd), 0);
  } else {
    print_message("promtool is not installed (Debian: prometheus): the exposition was not checked by it\n");
  }
  reply_free(&r);
  get(port, "HEAD", "/metrics", &r);
  assert_int_equal(r.status, 200);
  assert_int_equal(r.len, 0);
  reply_free(&r);
  stop(&p);
}

static void api_jobs_gives_each_job(void **state) {
  (void)state;
  char dir[64], db[128], conf[128];
  struct proc p;
  int port = start_jobs(&p, dir, db, conf);
  struct reply r;
  get(port, "GET", "/api/jobs", &r);
  assert_int_equal(r.status, 200);
  assert_non_null(strstr(r.head, "Content-Type: application/json"));
  /* in the config's order, with their schedules */
  const char *good = strstr(r.body, "{\"name\":\"good\""), *bad = strstr(r.body, "{\"name\":\"bad\"");
  const char *later = strstr(r.body, "{\"name\":\"later.x-y@z\"");
  assert_true(good && bad && later && good < bad && bad < later);
  assert_non_null(strstr(good, "\"every\":\"200ms\",\"interval\":0.200"));
  assert_non_null(strstr(later, "\"schedule\":\"0 0 1 1 *\",\"every\":null,\"interval\":null,\"tz\":\"Europe/Berlin\""));
  assert_non_null(strstr(later, "\"next\":\"20"));
  assert_non_null(strstr(later, "\"last\":null"));
  assert_non_null(strstr(bad, "\"last\":{\"outcome\":\"failed\""));
  assert_non_null(strstr(bad, "\"exit_code\":3,\"signal\":null"));
  assert_non_null(strstr(good, "\"last\":{\"outcome\":\"ok\""));
  assert_non_null(strstr(r.body, "\"config\":"));
  /* the slow job runs nearly always: running, and since when */
  bool running = false;
  for (int i = 0; i < 40 && !running; i++) {
    struct reply again;
    get(port, "GET", "/api/jobs", &again);
    const char *slow = strstr(again.body, "{\"name\":\"slow\"");
    running = slow && strstr(slow, "\"running\":1,\"running_since\":\"20");
    reply_free(&again);
    usleep(50000);
  }
  assert_true(running);
  reply_free(&r);
  stop(&p);
}

static void api_runs_pages_through_the_history(void **state) {
  (void)state;
  char dir[64], db[128], conf[128];
  struct proc p;
  int port = start_jobs(&p, dir, db, conf);
  struct reply r = {0};
  double end = mono() + 20; /* the history is written off the loop, a moment later */
  do {
    reply_free(&r);
    get(port, "GET", "/api/runs?job=bad&limit=2", &r);
    assert_int_equal(r.status, 200);
  } while (count(r.body, "\"outcome\":\"failed\"") < 2 && mono() < end && usleep(100000) == 0);
  assert_int_equal(count(r.body, "\"job\":\"bad\""), 2);
  assert_int_equal(count(r.body, "\"id\":"), 2);
  /* the history's fields, the output escaped as JSON */
  assert_non_null(strstr(r.body, "\"outcome\":\"failed\",\"exit_code\":3"));
  assert_non_null(strstr(r.body, "\"stderr\":\"<b>&\\\"x\\n\""));
  /* the next page: before the last id of this one */
  const char *last = strrchr(r.body, '{');
  long long id = atoll(strstr(last, "\"id\":") + 5);
  char target[128];
  snprintf(target, sizeof target, "/api/runs?job=bad&limit=1&before=%lld", id);
  struct reply next;
  get(port, "GET", target, &next);
  assert_int_equal(next.status, 200);
  long long id2 = atoll(strstr(next.body, "\"id\":") + 5);
  assert_true(id2 < id);
  reply_free(&next);
  reply_free(&r);
  /* skipped ticks are on record as such */
  get(port, "GET", "/api/runs?job=slow&limit=50", &r);
  assert_non_null(strstr(r.body, "\"outcome\":\"skipped\""));
  assert_non_null(strstr(r.body, "\"reason\":\"overlap\""));
  reply_free(&r);
  /* all jobs, at most the limit */
  get(port, "GET", "/api/runs?limit=5", &r);
  assert_int_equal(count(r.body, "\"id\":"), 5);
  reply_free(&r);
  stop(&p);
}

/* Each bad parameter of /api/runs, refused with what is wrong. */
static void api_runs_refuses_bad_parameters(void **state) {
  (void)state;
  char dir[64], db[128], conf[128];
  struct proc p;
  int port = start_jobs(&p, dir, db, conf);
  static const struct {
    const char *query, *why;
  } bad[] = {
      {"limit=abc", "limit: a number from 1 to 1000"},
      {"limit=", "limit: a number from 1 to 1000"},
      {"limit=0", "limit: a number from 1 to 1000"},
      {"limit=-5", "limit: a number from 1 to 1000"},
      {"limit=1001", "limit: a number from 1 to 1000"},
      {"limit=99999999999999999999999", "limit: a number from 1 to 1000"},
      {"limit=1e3", "limit: a number from 1 to 1000"},
      {"before=x", "before: a run's id"},
      {"before=18446744073709551617", "before: a run's id"},
      {"job=a%22b", "job: not a job name"},
      {"job=", "job: not a job name"},
      {"limit=1&limit=2", "limit: given twice"},
      {"color=red", "color: unknown parameter"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    char target[256];
    snprintf(target, sizeof target, "/api/runs?%s", bad[i].query);
    char why[200];
    snprintf(why, sizeof why, "{\"error\":\"%s", bad[i].why);
    expect(port, "GET", target, 400, why);
  }
  stop(&p);
}

/* Paths, methods, bodies, headers and bytes that are no request here:
 * each answered as HTTP says, and the daemon goes on. */
static void bad_requests_are_answered_and_change_nothing(void **state) {
  (void)state;
  char dir[64], db[128], conf[128];
  struct proc p;
  int port = start_jobs(&p, dir, db, conf);
  struct reply r;
  expect(port, "GET", "/nope", 404, "not found: /nope");
  expect(port, "GET", "/metrics/", 404, NULL);
  static const char *const methods[] = {"POST", "PUT", "DELETE", "PATCH", "OPTIONS"};
  for (size_t i = 0; i < 5; i++) {
    get(port, methods[i], "/metrics", &r);
    assert_int_equal(r.status, 405);
    assert_non_null(strstr(r.head, "Allow: GET, HEAD"));
    reply_free(&r);
  }
  /* a body is refused before it is read */
  static const char with_body[] = "GET /api/jobs HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\nabc";
  raw(port, with_body, sizeof with_body - 1, &r);
  assert_int_equal(r.status, 413);
  reply_free(&r);
  static const char chunked[] = "GET /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
  raw(port, chunked, sizeof chunked - 1, &r);
  assert_int_equal(r.status, 413);
  reply_free(&r);
  /* headers beyond the memory a request may take */
  size_t big = 64 * 1024;
  char *huge = malloc(big + 256);
  int n = snprintf(huge, 256, "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: ");
  memset(huge + n, 'a', big);
  memcpy(huge + n + big, "\r\n\r\n", 4);
  raw(port, huge, (size_t)n + big + 4, &r);
  assert_true(r.status == 431 || r.status == 413 || r.status == 400);
  reply_free(&r);
  /* a long target */
  n = snprintf(huge, 256, "GET /metrics?");
  memset(huge + n, 'q', big);
  memcpy(huge + n + big, " HTTP/1.1\r\nHost: x\r\n\r\n", 23);
  raw(port, huge, (size_t)n + big + 23, &r);
  assert_true(r.status == 414 || r.status == 431 || r.status == 400);
  reply_free(&r);
  /* many headers, each small */
  n = snprintf(huge, 256, "GET /metrics HTTP/1.1\r\nHost: x\r\n");
  size_t len = (size_t)n;
  for (int i = 0; len + 16 < big; i++) len += (size_t)sprintf(huge + len, "H%d: v\r\n", i);
  memcpy(huge + len, "\r\n", 2);
  raw(port, huge, len + 2, &r);
  assert_true(r.status == 431 || r.status == 413 || r.status == 400);
  reply_free(&r);
  free(huge);
  /* bytes that are no HTTP */
  static const char *const garbage[] = {"\x01\x02\x03\r\n\r\n", "GET\r\n\r\n", "GET / HTTP/9.9\r\n\r\n",
                                        "GET /metrics HTTP/1.1\r\nBad Header\r\n\r\n", "\r\n\r\n\r\n",
                                        "GET /%zz%00 HTTP/1.1\r\nHost: x\r\n\r\n"};
  for (size_t i = 0; i < sizeof garbage / sizeof *garbage; i++) {
    raw(port, garbage[i], strlen(garbage[i]), &r);
    assert_true(r.status == 0 || (r.status >= 400 && r.status < 600)); /* refused, or closed */
    reply_free(&r);
  }
  /* a request cut short, then the end of the client's sending: closed at
   * once, not at the request's deadline; a whole one is still answered */
  for (int whole = 0; whole < 2; whole++) {
    int fd = dial(port);
    const char *req = whole ? "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" : "GET /healthz HTTP/1.1\r\nHo";
    send_all(fd, req, strlen(req));
    shutdown(fd, SHUT_WR);
    double t0 = mono();
    read_reply(fd, &r);
    assert_true(mono() - t0 < 3);
    assert_int_equal(r.status, whole ? 200 : 0);
    reply_free(&r);
  }
  /* and the daemon still answers, and still runs its jobs */
  size_t at = p.len;
  expect(port, "GET", "/healthz", 200, "ok: ");
  assert_true(wait_log_from(&p, at, "event=end job=good", 30));
  stop(&p);
}

/* Clients that send a byte now and then, or nothing, hold a connection
 * each for HTTP_REQUEST_TIME at most: others are answered meanwhile, and
 * the slow ones are closed. */
static void slow_clients_block_no_one(void **state) {
  (void)state;
  char dir[64], db[128], conf[128];
  struct proc p;
  int port = start_jobs(&p, dir, db, conf);
  enum { SLOW = 20 };
  int slow[SLOW];
  for (int i = 0; i < SLOW; i++) {
    slow[i] = dial(port);
    send_all(slow[i], "GET /metrics HTTP/1.1\r\nHo", 25); /* and then nothing, or a trickle */
  }
  double t0 = mono();
  for (int k = 0; k < 5; k++) {
    expect(port, "GET", "/api/jobs", 200, "\"jobs\":[");
    for (int i = 0; i < SLOW; i += 2) send_all(slow[i], "s", 1);
  }
  assert_true(mono() - t0 < 5); /* answered while the slow ones wait */
  /* the slow ones are closed, trickle or not, within the request time (and some slack) */
  for (int i = 0; i < SLOW; i++) {
    char c;
    double start = mono();
    ssize_t got;
    while ((got = recv(slow[i], &c, 1, 0)) > 0) {
    }
    assert_true(got == 0 || errno == ECONNRESET);
    assert_true(mono() - start < 20);
    close(slow[i]);
  }
  assert_true(mono() - t0 < (double)HTTP_REQUEST_TIME / 1e9 + 10);
  stop(&p);
}

static void healthz_says_ok_then_a_stalled_loop(void **state) {
  (void)state;
  char dir[64], db[128], conf[128];
  struct proc p;
  int port = start_jobs(&p, dir, db, conf);
  struct reply r;
  get(port, "GET", "/healthz", &r);
  assert_int_equal(r.status, 200);
  assert_non_null(strstr(r.body, "ok: 4 job(s) scheduled"));
  assert_int_equal(count(r.body, "\n"), 1);
  reply_free(&r);
  /* the whole daemon stopped beyond the bound: its first answer after says so */
  kill(p.pid, SIGSTOP);
  sleep((unsigned)(HTTP_STALL / CHIME_SEC(1)) + 1);
  int fd = dial(port); /* the kernel queues the connection meanwhile */
  send_all(fd, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 53);
  kill(p.pid, SIGCONT);
  read_reply(fd, &r);
  assert_int_equal(r.status, 503);
  assert_non_null(strstr(r.body, "loop stalled"));
  assert_non_null(strstr(r.body, "the bound is 5 s"));
  assert_int_equal(count(r.body, "\n"), 1);
  reply_free(&r);
  /* and healthy again a bound later */
  double end = mono() + (double)HTTP_STALL / 1e9 + 10;
  int status = 0;
  while (status != 200 && mono() < end) {
    usleep(200000);
    get(port, "GET", "/healthz", &r);
    status = r.status;
    reply_free(&r);
  }
  assert_int_equal(status, 200);
  stop(&p);
}

/* A history that cannot be written (its directory is a file) for longer
 * than the bound: 503 with why.  On the virtual clock: the minute passes
 * at once. */
static void healthz_says_the_history_is_unwritable(void **state) {
  (void)state;
  char dir[64], db[128], conf[128];
  paths(dir, db, conf);
  char blocker[128], bad_db[192];
  snprintf(blocker, sizeof blocker, "%s/file", dir);
  write_file(blocker, "not a directory\n", 0644);
  snprintf(bad_db, sizeof bad_db, "%s/h.db", blocker);
  struct proc p;
  start(&p, (const char *const[]){"every", "1s", "--http", "127.0.0.1:0", "--db", bad_db, "--", "true", NULL},
        VIRTUAL);
  int port = served_port(&p);
  assert_true(wait_log(&p, "event=history", 30));
  double end = mono() + 60;
  struct reply r = {0};
  while (mono() < end) {
    get(port, "GET", "/healthz", &r);
    if (r.status == 503) break;
    reply_free(&r);
    usleep(100000);
  }
  assert_int_equal(r.status, 503);
  assert_non_null(strstr(r.body, "history unwritable for"));
  assert_non_null(strstr(r.body, bad_db));
  reply_free(&r);
  get(port, "GET", "/metrics", &r);
  assert_true(sample(r.body, "chime_history_write_failures_total") >= 1);
  reply_free(&r);
  stop(&p);
}

/* Without a database there are no runs to read, and /api/runs says why. */
static void api_runs_without_history(void **state) {
  (void)state;
  struct proc p;
  start(&p, (const char *const[]){"every", "1h", "--http", "127.0.0.1:0", "--db", "none", "--", "true", NULL}, NULL);
  int port = served_port(&p);
  expect(port, "GET", "/api/runs", 404, "no history");
  struct reply r;
  get(port, "GET", "/", &r);
  assert_int_equal(r.status, 200);
  assert_non_null(strstr(r.head, "Content-Type: text/html"));
  assert_non_null(strstr(r.head, "Content-Security-Policy: default-src 'none'"));
  assert_non_null(strstr(r.body, "<title>chime</title>"));
  reply_free(&r);
  stop(&p);
}

/* A port someone has: chime does not start, and names the address. */
static void a_taken_port_is_a_clear_start_up_error(void **state) {
  (void)state;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(listen(fd, 1), 0);
  socklen_t len = sizeof a;
  getsockname(fd, (struct sockaddr *)&a, &len);
  char addr[64], expect[128];
  snprintf(addr, sizeof addr, "127.0.0.1:%d", ntohs(a.sin_port));
  snprintf(expect, sizeof expect, "cannot listen on %s: Address already in use", addr);
  struct proc p;
  assert_int_equal(run(&p, (const char *const[]){"every", "1s", "--http", addr, "--db", "none", "--", "true", NULL}, NULL),
                   1);
  assert_non_null(strstr(p.log, expect));
  assert_null(strstr(p.log, "event=start")); /* nothing ran */
  proc_free(&p);
  /* and an address that is none, refused with the form */
  assert_int_equal(run(&p, (const char *const[]){"every", "1s", "--http", "example.com:80", "--", "true", NULL}, NULL), 2);
  assert_non_null(strstr(p.log, "not an IPv4 address"));
  proc_free(&p);
  close(fd);
}

/* Loopback unless written: a port alone is 127.0.0.1's. */
static void a_port_alone_listens_on_loopback(void **state) {
  (void)state;
  char dir[64], db[128], conf[128];
  paths(dir, db, conf);
  write_file(conf, "[chime]\nhttp = 0\n[job x]\nevery = 1h\ncommand = true\n", 0644);
  struct proc p;
  start(&p, (const char *const[]){"run", conf, "--db", "none", NULL}, NULL);
  int port = served_port(&p);
  assert_true(port > 0);
  expect(port, "GET", "/healthz", 200, "ok: 1 job(s) scheduled");
  stop(&p);
  write_file(conf, "[chime]\nhttp = 0.0.0.0\n[job x]\nevery = 1h\ncommand = true\n", 0644);
  assert_int_equal(run(&p, (const char *const[]){"run", conf, NULL}, NULL), 1);
  assert_non_null(strstr(p.log, "[chime] http: \"0.0.0.0\": the port is not a number"));
  proc_free(&p);
}

/* ---- the writers, alone: names no config takes, escaped in each format ---- */

static struct snapshot *odd_snapshot(void) {
  static struct snap_job jobs[2];
  static struct snapshot s;
  memset(jobs, 0, sizeof jobs);
  snprintf(jobs[0].name, sizeof jobs[0].name, "a\"b\\c\nd<e>&'f");
  jobs[0].schedule = "*/5 * * * *", jobs[0].calendar = true, jobs[0].tz = "Zone/\"Odd\"";
  jobs[0].next = CHIME_NEVER;
  jobs[0].st.runs[OUTCOME_OK] = 3;
  jobs[0].duration.bucket[2] = 3, jobs[0].duration.count = 3, jobs[0].duration.sum = CHIME_MS(150);
  snprintf(jobs[1].name, sizeof jobs[1].name, "plain");
  jobs[1].schedule = "1s", jobs[1].every = CHIME_SEC(1), jobs[1].next = CHIME_SEC(1700000000);
  s = (struct snapshot){.now = CHIME_SEC(1700000000), .njobs = 2, .jobs = jobs};
  return &s;
}

static void exposition_escapes_label_values(void **state) {
  (void)state;
  struct text t = {0};
  render_metrics(odd_snapshot(), &t);
  assert_false(t.nomem);
  assert_non_null(strstr(t.p, "chime_job_runs_total{job=\"a\\\"b\\\\c\\nd<e>&'f\",outcome=\"ok\"} 3\n"));
  assert_non_null(strstr(t.p, "chime_job_run_duration_seconds_bucket{job=\"a\\\"b\\\\c\\nd<e>&'f\",le=\"0.05\"} 0\n"));
  assert_non_null(strstr(t.p, "chime_job_run_duration_seconds_bucket{job=\"a\\\"b\\\\c\\nd<e>&'f\",le=\"0.1\"} 3\n"));
  assert_non_null(strstr(t.p, "chime_job_run_duration_seconds_sum{job=\"a\\\"b\\\\c\\nd<e>&'f\"} 0.150000000\n"));
  assert_non_null(strstr(t.p, "chime_job_next_run_timestamp_seconds{job=\"plain\"} 1700000000.000\n"));
  /* every line is a comment or a sample: no raw newline got out of a value */
  for (const char *line = t.p; *line; line = strchr(line, '\n') + 1)
    assert_true(line[0] == '#' || strncmp(line, "chime_", 6) == 0);
  free(t.p);
}

static void json_escapes_names_and_schedules(void **state) {
  (void)state;
  struct text t = {0};
  render_jobs(odd_snapshot(), &t);
  assert_false(t.nomem);
  assert_non_null(strstr(t.p, "{\"name\":\"a\\\"b\\\\c\\nd<e>&'f\",\"schedule\":\"*/5 * * * *\""));
  assert_non_null(strstr(t.p, "\"tz\":\"Zone/\\\"Odd\\\"\""));
  assert_non_null(strstr(t.p, "\"now\":\"2023-11-14T22:13:20.000Z\""));
  assert_non_null(strstr(t.p, "{\"name\":\"plain\",\"schedule\":null,\"every\":\"1s\",\"interval\":1.000"));
  free(t.p);
}

static void times_are_written_as_format_wall_writes_them(void **state) {
  (void)state;
  static const chime_ns walls[] = {0, 1, CHIME_MS(1) - 1, CHIME_SEC(951782400) /* 2000-02-29 */,
                                   CHIME_SEC(4102444799) + CHIME_MS(999), CHIME_SEC(1709164800) + CHIME_MS(7),
                                   -CHIME_MS(1), -CHIME_SEC(86400) - 1};
  for (size_t i = 0; i < sizeof walls / sizeof *walls; i++) {
    char want[64];
    format_wall(walls[i], want, sizeof want);
    struct text t = {0};
    text_wall(&t, walls[i]);
    assert_string_equal(t.p, want);
    free(t.p);
  }
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(metrics_say_what_the_jobs_did),
      cmocka_unit_test(api_jobs_gives_each_job),
      cmocka_unit_test(api_runs_pages_through_the_history),
      cmocka_unit_test(api_runs_refuses_bad_parameters),
      cmocka_unit_test(bad_requests_are_answered_and_change_nothing),
      cmocka_unit_test(slow_clients_block_no_one),
      cmocka_unit_test(healthz_says_ok_then_a_stalled_loop),
      cmocka_unit_test(healthz_says_the_history_is_unwritable),
      cmocka_unit_test(api_runs_without_history),
      cmocka_unit_test(a_taken_port_is_a_clear_start_up_error),
      cmocka_unit_test(a_port_alone_listens_on_loopback),
      cmocka_unit_test(exposition_escapes_label_values),
      cmocka_unit_test(json_escapes_names_and_schedules),
      cmocka_unit_test(times_are_written_as_format_wall_writes_them),
  };
  if (test_select(tests, sizeof tests / sizeof tests[0], argc, argv)) return 2;
  return cmocka_run_group_tests(tests, NULL, NULL);
}
