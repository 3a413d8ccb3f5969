/* http.h - the daemon's HTTP endpoint: Prometheus metrics (/metrics), a
 * health check (/healthz), a JSON API (/api/jobs, /api/runs) and a status
 * page (/), served by libmicrohttpd from the daemon's own loop. */
#ifndef CHIME_CLI_HTTP_H
#define CHIME_CLI_HTTP_H

#include <chime.h>
#include <stdbool.h>
#include <stddef.h>

#include "runner.h"

/* The limits every connection lives within (chime.conf(5) states them). */
#define HTTP_CONNECTIONS 64              /* at once; more wait in the kernel's queue */
#define HTTP_REQUEST_BYTES (16 * 1024)  /* a request's line and headers (431, 414 beyond) */
#define HTTP_REQUEST_TIME CHIME_SEC(10) /* from a connection's start, or its previous answer, to the end of the next */
#define HTTP_ASYNC_MAX 4                /* answers worked out off the loop at once (503 beyond) */
#define HTTP_INLINE_JOBS 16             /* /metrics and /api/jobs of this many jobs or fewer: written on the loop */
#define HTTP_RUNS_LIMIT 1000            /* /api/runs: rows in one answer, at most */
#define HTTP_RUNS_BYTES (16 << 20)      /* /api/runs: no row begun past this many bytes */
/* /healthz answers 503 while the loop has not turned for HTTP_STALL, and
 * for HTTP_STALL after such a stall; and once the history could not be
 * written for HTTP_HISTORY_DOWN. */
#define HTTP_STALL CHIME_SEC(5)
#define HTTP_HISTORY_DOWN CHIME_SEC(60)

struct http;

/* Before the loop: listens on `addr` (as listen_addr_parse reads it; NULL:
 * no listener, for http_serve_fd alone), and watches the runner's jobs
 * from now on.  Returns 0 and *out, or a negative errno with why (naming
 * the address) in `why`. */
int http_new(struct runner *r, const char *addr, struct http **out, char *why, size_t size);
/* Task only.  Starts serving, once the config's jobs are started, and
 * logs where (event=http). */
int http_start(struct http *h);
/* Task only.  Stops serving: answers worked out are waited for, and
 * connections still open are closed by http_free. */
void http_stop(struct http *h);
/* After the loop.  Closes every connection and frees it all. */
void http_free(struct http *h);

/* Serves a connected socket (taken: closed when done), as though the
 * listener had accepted it: for tests and the fuzzer. */
int http_serve_fd(struct http *h, int fd);

/* The status page, embedded at build time (status_html.c, from
 * status.html). */
extern const char status_html[];
extern const size_t status_html_len;

#endif
