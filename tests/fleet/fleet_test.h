/* fleet_test.h - what the fleet tests share: a throwaway PostgreSQL server
 * of their own (initdb into a temporary directory, as the postgres user
 * when the test runs as root; listening on a Unix socket in that
 * directory only), chime daemons as nodes, a proxy that can cut one off,
 * and the runs the job program (fleet_job) reported. */
#ifndef CHIME_FLEET_TEST_H
#define CHIME_FLEET_TEST_H

#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../procstat.h"
#include "../select.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define UNUSED __attribute__((unused))

extern char **environ;

static UNUSED double mono(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static UNUSED long long real_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (long long)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static UNUSED void sleep_s(double s) {
  struct timespec d = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
  while (nanosleep(&d, &d) != 0 && errno == EINTR) continue;
}

/* ---- what a failed test leaves behind ------------------------------------------ */

/* A test that fails aborts (CMOCKA_TEST_ABORT): what it started (nodes,
 * proxies, the server) must not outlive it.  Each is noted here, and
 * SIGABRT's handler kills them (kill(2) is async-signal-safe; SIGQUIT is
 * the postmaster's immediate shutdown). */
static pid_t started_pids[1024];
static int nstarted;
static pid_t postmaster_pid;

static void note_started(pid_t pid) {
  if (nstarted < 1024) started_pids[nstarted++] = pid;
}

/* A pid reaped is forgotten: it may soon be another process's. */
static void note_stopped(pid_t pid) {
  for (int i = 0; i < nstarted; i++)
    if (started_pids[i] == pid) started_pids[i] = started_pids[--nstarted];
}

static void on_abort(int sig) {
  for (int i = 0; i < nstarted; i++) kill(started_pids[i], SIGKILL);
  if (postmaster_pid > 0) kill(postmaster_pid, SIGCONT), kill(postmaster_pid, SIGQUIT);
  signal(sig, SIG_DFL);
  raise(sig);
}

/* ---- commands ---------------------------------------------------------------- */

/* Runs argv (as the postgres user if `as_pg` and we are root), its output
 * into `log` (appended); its exit status. */
static UNUSED int cmd(bool as_pg, const char *log, const char *const *argv) {
  const char *v[32];
  int n = 0;
  if (as_pg && geteuid() == 0) v[n++] = "runuser", v[n++] = "-u", v[n++] = "postgres", v[n++] = "--";
  for (int i = 0; argv[i]; i++) v[n++] = argv[i];
  v[n] = NULL;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  pid_t pid;
  int rc = posix_spawnp(&pid, v[0], &fa, NULL, (char *const *)v, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc) return -1;
  int st;
  waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* ---- the server ------------------------------------------------------------------ */

struct pgsrv {
  char dir[64];        /* everything: data/, the socket, logs, configs, the runs' output */
  char bin[256];       /* PostgreSQL's programs */
  char conninfo[256];
  char out[128];       /* the jobs' report (fleet_job) */
};

static UNUSED void pg_bin(struct pgsrv *s, const char *prog, char *buf, size_t size) {
  snprintf(buf, size, "%s/%s", s->bin, prog);
}

/* Starts the server (pg_ctl -w). */
static UNUSED void pg_start(struct pgsrv *s) {
  char ctl[300], data[128], log[128], opts[256], clog[128];
  pg_bin(s, "pg_ctl", ctl, sizeof ctl);
  snprintf(data, sizeof data, "%s/data", s->dir);
  snprintf(log, sizeof log, "%s/postgres.log", s->dir);
  snprintf(clog, sizeof clog, "%s/pg_ctl.log", s->dir);
  snprintf(opts, sizeof opts, "-k %s -c listen_addresses= -c max_connections=60", s->dir);
  assert_int_equal(cmd(true, clog, (const char *const[]){ctl, "-D", data, "-l", log, "-w", "-t", "60", "-o", opts,
                                                         "start", NULL}),
                   0);
  char pidfile[160];
  snprintf(pidfile, sizeof pidfile, "%s/postmaster.pid", data);
  FILE *f = fopen(pidfile, "r");
  if (f && fscanf(f, "%d", &postmaster_pid) != 1) postmaster_pid = 0;
  if (f) fclose(f);
  signal(SIGABRT, on_abort);
}

/* Stops it: mode "fast" or "immediate" (a crash, as far as its clients see). */
static UNUSED void pg_stop(struct pgsrv *s, const char *mode) {
  char ctl[300], data[128], clog[128];
  pg_bin(s, "pg_ctl", ctl, sizeof ctl);
  snprintf(data, sizeof data, "%s/data", s->dir);
  snprintf(clog, sizeof clog, "%s/pg_ctl.log", s->dir);
  cmd(true, clog, (const char *const[]){ctl, "-D", data, "-m", mode, "-w", "stop", NULL});
  postmaster_pid = 0;
}

/* A fresh server in a fresh directory; skips the test where PostgreSQL's
 * server is not installed. */
static UNUSED void pg_up(struct pgsrv *s) {
  memset(s, 0, sizeof *s);
  FILE *p = popen("pg_config --bindir 2>/dev/null", "r");
  if (p && fgets(s->bin, sizeof s->bin, p)) s->bin[strcspn(s->bin, "\n")] = '\0';
  if (p) pclose(p);
  char initdb[300];
  pg_bin(s, "initdb", initdb, sizeof initdb);
  if (!s->bin[0] || access(initdb, X_OK) != 0) {
    print_message("PostgreSQL's server is not installed (Debian: postgresql): skipped\n");
    skip();
  }
  if (geteuid() == 0 && !getpwnam("postgres")) {
    print_message("no postgres user to run the server as: skipped\n");
    skip();
  }
  /* In memory where the machine has it: the tests' own faults (a server
   * frozen, stopped, cut off) are what they test, and a disk's stalls are
   * none of them.  On this project's virtual machines fdatasync stalls for
   * up to 0.8 s at times (a loop of 8 KiB writes and fdatasync: 120
   * stalls over 20 ms in 150 s), longer than a claim's wait with a 3 s
   * lease: in /tmp, fleet.pause_resume_and_trigger_act_fleet_wide saw the
   * database unanswering for 0.75 s three times and a run's lease lost. */
  struct stat shm;
  bool mem = stat("/dev/shm", &shm) == 0 && S_ISDIR(shm.st_mode) && access("/dev/shm", W_OK | X_OK) == 0;
  snprintf(s->dir, sizeof s->dir, "%s/chime-fleet-XXXXXX", mem ? "/dev/shm" : "/tmp");
  assert_non_null(mkdtemp(s->dir));
  chmod(s->dir, 0755);
  if (geteuid() == 0) {
    struct passwd *pw = getpwnam("postgres");
    assert_int_equal(chown(s->dir, pw->pw_uid, pw->pw_gid), 0);
  }
  char data[128], log[128];
  snprintf(data, sizeof data, "%s/data", s->dir);
  snprintf(log, sizeof log, "%s/initdb.log", s->dir);
  assert_int_equal(cmd(true, log, (const char *const[]){initdb, "-D", data, "-A", "trust", "-U", "postgres",
                                                        "--no-sync", "-E", "UTF8", NULL}),
                   0);
  pg_start(s);
  snprintf(s->conninfo, sizeof s->conninfo, "host=%s user=postgres dbname=postgres", s->dir);
  snprintf(s->out, sizeof s->out, "%s/out", s->dir);
}

/* The postmaster's pid and its children's (the server's processes). */
static UNUSED int pg_pids(struct pgsrv *s, pid_t *pids, int max) {
  char path[160];
  snprintf(path, sizeof path, "%s/data/postmaster.pid", s->dir);
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  int pm = 0, n = 0;
  if (fscanf(f, "%d", &pm) != 1) pm = 0;
  fclose(f);
  if (pm <= 0) return 0;
  pids[n++] = pm;
  DIR *d = opendir("/proc");
  struct dirent *e;
  while (d && (e = readdir(d)) && n < max) {
    char buf[512];
    int pid = atoi(e->d_name), ppid = 0;
    const char *fields = pid > 0 ? procstat(pid, buf, sizeof buf) : NULL;
    if (fields && sscanf(fields, "%*c %d", &ppid) == 1 && ppid == pm) pids[n++] = pid;
  }
  if (d) closedir(d);
  return n;
}

/* Freezes (SIGSTOP) or thaws (SIGCONT) every process of the server, the
 * postmaster first: it answers nothing, and nothing it holds is let go. */
static UNUSED void pg_freeze(struct pgsrv *s, bool freeze) {
  pid_t pids[128];
  int n = pg_pids(s, pids, 128);
  assert_true(n > 0);
  for (int i = 0; i < n; i++) kill(pids[i], freeze ? SIGSTOP : SIGCONT);
}

static UNUSED void pg_down(struct pgsrv *s) {
  pg_freeze(s, false);
  pg_stop(s, "immediate");
  char rm[200];
  snprintf(rm, sizeof rm, "rm -rf %s", s->dir);
  if (!getenv("CHIME_FLEET_KEEP") && system(rm) != 0) print_message("could not remove %s\n", s->dir);
}

/* One value of a query (NULL: none), into buf. */
static UNUSED bool pg_value(struct pgsrv *s, const char *sql, char *buf, size_t size) {
  PGconn *c = PQconnectdb(s->conninfo);
  bool ok = false;
  if (PQstatus(c) == CONNECTION_OK) {
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0 && !PQgetisnull(r, 0, 0)) {
      snprintf(buf, size, "%s", PQgetvalue(r, 0, 0));
      ok = true;
    } else if (PQresultStatus(r) != PGRES_TUPLES_OK) {
      print_message("query failed: %s: %s", sql, PQresultErrorMessage(r));
    }
    PQclear(r);
  }
  PQfinish(c);
  return ok;
}

/* A number from the database (-1: none). */
static UNUSED long long q(struct pgsrv *s, const char *fmt, ...) {
  char sql[2048], v[64];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(sql, sizeof sql, fmt, ap);
  va_end(ap);
  return pg_value(s, sql, v, sizeof v) ? atoll(v) : -1;
}

/* Waits (20 s at most, or the test fails) until the query's number is
 * `want`. */
static UNUSED void wait_q(struct pgsrv *s, long long want, const char *sql) {
  for (double end = mono() + 20; q(s, "%s", sql) != want;) {
    assert_true(mono() < end);
    sleep_s(0.05);
  }
}

/* Prints a query's rows (a test's evidence when it fails). */
static UNUSED void q_print(struct pgsrv *s, const char *sql) {
  PGconn *c = PQconnectdb(s->conninfo);
  PGresult *r = PQexec(c, sql);
  for (int i = 0; PQresultStatus(r) == PGRES_TUPLES_OK && i < PQntuples(r); i++) {
    for (int k = 0; k < PQnfields(r); k++) print_message("%s%s", k ? " | " : "  ", PQgetvalue(r, i, k));
    print_message("\n");
  }
  PQclear(r);
  PQfinish(c);
}

/* ---- nodes ------------------------------------------------------------------------- */

struct node {
  char name[16];
  char conf[160];
  char log[160];
  pid_t pid;
};

static UNUSED void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
  chmod(path, 0644);
}

/* A config for the fleet of s: [chime] (fleet, a lease of 3 s unless
 * chime_extra gives one) and `jobs`, the text "FLEET_JOB" in it replaced
 * by the job program's path. */
static UNUSED void write_conf(struct pgsrv *s, const char *path, const char *chime_extra, const char *jobs) {
  char *text = malloc(strlen(jobs) * 2 + 4096), *o = text;
  const char *job = getenv("FLEET_JOB");
  assert_non_null(job);
  o += sprintf(o, "[chime]\nfleet = %s\n%s%s\n[defaults]\nenv = FLEET_OUT=%s\n\n", s->conninfo,
               chime_extra && strstr(chime_extra, "fleet_lease") ? "" : "fleet_lease = 3s\n",
               chime_extra ? chime_extra : "", s->out);
  for (const char *p = jobs; *p;) {
    if (strncmp(p, "FLEET_JOB", 9) == 0) o += sprintf(o, "%s", job), p += 9;
    else *o++ = *p++;
  }
  *o = '\0';
  write_file(path, text);
  free(text);
}

/* Starts chime run CONF --node NAME as node n, its log in the server's
 * directory and its history there as HISTORY.db, with `env`
 * (NAME=VALUE, NULL-terminated, may be NULL) added. */
static UNUSED void node_start_at(struct pgsrv *s, struct node *n, const char *name, const char *history,
                                 const char *conf, const char *const *env) {
  snprintf(n->name, sizeof n->name, "%s", name);
  snprintf(n->conf, sizeof n->conf, "%s", conf);
  static int started;
  snprintf(n->log, sizeof n->log, "%s/%s-%d.log", s->dir, name, ++started);
  char db[160], node_env[64];
  snprintf(db, sizeof db, "%s/%s.db", s->dir, history);
  snprintf(node_env, sizeof node_env, "NODE_NAME=%s", name);
  const char *bin = getenv("CHIME_BIN");
  assert_non_null(bin);
  const char *argv[] = {bin, "run", conf, "--node", name, "--db", db, NULL};
  const char *envp[512];
  int e = 0;
  for (char **v = environ; *v && e < 480; v++)
    if (strncmp(*v, "NODE_NAME=", 10) != 0) envp[e++] = *v;
  envp[e++] = node_env;
  for (; env && *env; env++) envp[e++] = *env;
  envp[e] = NULL;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 2, n->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  assert_int_equal(posix_spawn(&n->pid, bin, &fa, NULL, (char *const *)argv, (char *const *)envp), 0);
  posix_spawn_file_actions_destroy(&fa);
  note_started(n->pid);
}

/* The same, its history NAME.db. */
static UNUSED void node_start(struct pgsrv *s, struct node *n, const char *name, const char *conf,
                              const char *const *env) {
  node_start_at(s, n, name, name, conf, env);
}

/* The node's log so far (the caller frees it). */
static UNUSED char *node_log(const struct node *n) {
  FILE *f = fopen(n->log, "r");
  if (!f) return calloc(1, 1);
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *text = malloc((size_t)len + 1);
  size_t got = fread(text, 1, (size_t)len, f);
  text[got] = '\0';
  fclose(f);
  return text;
}

static UNUSED int count_in(const char *s, const char *text) {
  int n = 0;
  for (const char *p = s; (p = strstr(p, text)) != NULL; p += strlen(text)) n++;
  return n;
}

static UNUSED int log_count(const struct node *n, const char *text) {
  char *log = node_log(n);
  int c = count_in(log, text);
  free(log);
  return c;
}

/* Waits (up to `limit` seconds) until the node's log holds text. */
static UNUSED bool wait_log(const struct node *n, const char *text, double limit) {
  double end = mono() + limit;
  while (log_count(n, text) == 0) {
    if (mono() > end) return false;
    sleep_s(0.05);
  }
  return true;
}

/* Stops the node: a signal, then its exit (30 s at most); its status. */
static UNUSED int node_signal_wait(struct node *n, int sig) {
  if (n->pid <= 0) return -1;
  kill(n->pid, sig);
  int st = 0;
  double end = mono() + 30;
  while (waitpid(n->pid, &st, WNOHANG) == 0) {
    if (mono() > end) kill(n->pid, SIGKILL);
    sleep_s(0.02);
  }
  note_stopped(n->pid);
  n->pid = 0;
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static UNUSED int node_stop(struct node *n) { return node_signal_wait(n, SIGTERM); }

/* Waits (up to `limit` seconds) for the node to exit by itself: its exit
 * status, or -1 (still running: killed). */
static UNUSED int node_exit(struct node *n, double limit) {
  int st = 0;
  double end = mono() + limit;
  while (waitpid(n->pid, &st, WNOHANG) == 0) {
    if (mono() > end) return node_signal_wait(n, SIGKILL), -1;
    sleep_s(0.05);
  }
  note_stopped(n->pid);
  n->pid = 0;
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Prints the node's log (evidence when a test fails). */
static UNUSED void node_print(const struct node *n) {
  char *log = node_log(n);
  print_message("---- %s's log\n%s", n->name, log);
  free(log);
}

/* Whether a process still runs: there, and no zombie (a child of a
 * killed chime is reparented, and reaped when its new parent gets to it). */
static UNUSED bool alive(pid_t pid) {
  char state = procstat_state(pid);
  return state != 0 && state != 'Z' && state != 'X';
}

/* ---- a proxy that can be cut ------------------------------------------------------ */

/* A process that relays every connection made to `from` (a Unix socket
 * directory's .s.PGSQL.5432) to `to`'s; killed, it cuts them all. */
static UNUSED pid_t proxy_start(const char *from_dir, const char *to_dir) {
  char from[100], to[100];
  snprintf(from, sizeof from, "%s/.s.PGSQL.5432", from_dir);
  snprintf(to, sizeof to, "%s/.s.PGSQL.5432", to_dir);
  unlink(from);
  int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  snprintf(a.sun_path, sizeof a.sun_path, "%s", from);
  assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof a), 0);
  chmod(from, 0777);
  assert_int_equal(listen(l, 64), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid > 0) {
    close(l);
    note_started(pid);
    return pid;
  }
  signal(SIGCHLD, SIG_IGN);
  for (;;) {
    int c = accept(l, NULL, NULL);
    if (c < 0) continue;
    if (fork() == 0) { /* one relay per connection */
      int u = socket(AF_UNIX, SOCK_STREAM, 0);
      struct sockaddr_un b = {.sun_family = AF_UNIX};
      snprintf(b.sun_path, sizeof b.sun_path, "%s", to);
      prctl(PR_SET_PDEATHSIG, SIGKILL); /* the proxy killed: so is every relay */
      if (getppid() == 1 || connect(u, (struct sockaddr *)&b, sizeof b) != 0) _exit(1);
      struct pollfd p[2] = {{c, POLLIN, 0}, {u, POLLIN, 0}};
      char buf[65536];
      for (;;) {
        if (poll(p, 2, -1) < 0) _exit(0);
        for (int i = 0; i < 2; i++) {
          if (!p[i].revents) continue;
          ssize_t got = read(p[i].fd, buf, sizeof buf);
          if (got <= 0) _exit(0);
          if (write(p[1 - i].fd, buf, (size_t)got) != got) _exit(0);
        }
      }
    }
    close(c);
  }
}

/* Kills the proxy, and so every connection through it. */
static UNUSED void proxy_kill(pid_t pid) {
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  note_stopped(pid);
}

/* ---- what the jobs reported ------------------------------------------------------------ */

/* One run of fleet_job: its node, pid, start, last sign of life, end
 * (0 if it never said), real time in ns. */
struct jrun {
  char node[16];
  char tag[16]; /* the job's third argument */
  int pid;
  long long start, alive, end;
};

/* Reads the report: the runs, in order of their start; their count. */
static UNUSED int job_runs(struct pgsrv *s, struct jrun **out) {
  FILE *f = fopen(s->out, "r");
  int n = 0, cap = 256;
  struct jrun *r = calloc((size_t)cap, sizeof *r);
  char what, node[16], tag[16];
  int pid;
  long long t;
  while (f && fscanf(f, " %c %15s %d %lld %15s", &what, node, &pid, &t, tag) == 5) {
    int k = n - 1;
    while (k >= 0 && !(r[k].pid == pid && strcmp(r[k].node, node) == 0)) k--;
    if (what == 'S' || k < 0) {
      if (n == cap) r = realloc(r, (size_t)(cap *= 2) * sizeof *r);
      k = n++;
      memset(&r[k], 0, sizeof r[k]);
      snprintf(r[k].node, sizeof r[k].node, "%s", node);
      snprintf(r[k].tag, sizeof r[k].tag, "%s", tag);
      r[k].pid = pid, r[k].start = r[k].alive = t;
    }
    if (t > r[k].alive) r[k].alive = t;
    if (what == 'E') r[k].end = t;
  }
  if (f) fclose(f);
  *out = r;
  return n;
}

#endif
