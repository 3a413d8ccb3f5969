/* test_cli_control.c - steering a running chime through its control
 * socket, against the real daemon: status (table and JSON), trigger,
 * pause and resume (kept across a reload and a restart), reload; the
 * socket's refusals (a path that is not a socket, a second daemon, a peer
 * of another uid, a stalled or wordy client); sd_notify against a real
 * datagram socket; reloading on a change of the file, and reload storms.
 * These run on the real clock, with generous bounds: a client is a real
 * process. */
#define _GNU_SOURCE
/* cli_test.h's and cli_db.h's helpers that these tests do without */
#pragma GCC diagnostic ignored "-Wunused-function"
#include <grp.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "cli_db.h"
#include "cli_test.h"

/* Runs `chime ARGS... --db db` (a client): its exit code; p keeps its
 * output. */
static int ctl(struct proc *p, const char *db, const char *const *args) {
  const char *argv[16];
  int n = 0;
  for (; args[n]; n++)
    argv[n] = args[n];
  argv[n++] = "--db", argv[n++] = db, argv[n] = NULL;
  return run(p, argv, NULL);
}

/* A daemon on conf, started and serving its socket. */
static void start_daemon(struct proc *p, const char *conf, const char *db, const char *const *env) {
  start(p, (const char *const[]){"run", conf, "--db", db, NULL}, env);
  assert_true(wait_log(p, "event=ready", 30));
}

/* A scratch directory, a config of `jobs` in it, and a daemon on it,
 * serving its socket (its path in sock, 160 bytes). */
static void daemon_on(struct proc *d, char *dir, char *db, char *conf, char *sock, const char *jobs) {
  paths(dir, db, conf);
  snprintf(sock, 160, "%s.sock", db);
  write_file(conf, jobs, 0644);
  start_daemon(d, conf, db, NULL);
}

static void stop_daemon(struct proc *p) {
  kill(p->pid, SIGTERM);
  assert_int_equal(finish(p, 30), 0);
}

/* Connects to the socket at path (or returns -errno). */
static int dial(const char *path) {
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  assert_true(fd >= 0);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    int e = errno;
    close(fd);
    return -e;
  }
  return fd;
}

/* Reads what the daemon says until it closes (at most `limit` s). */
static void read_all(int fd, char *buf, size_t size, double limit) {
  size_t len = 0;
  struct timeval tv = {.tv_sec = (time_t)limit};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ssize_t n;
  while (len + 1 < size && (n = read(fd, buf + len, size - 1 - len)) > 0)
    len += (size_t)n;
  buf[len] = '\0';
}

static void status_lists_every_job_with_its_next_and_latest_runs(void **state) {
  (void)state;
  char dir[64], db[128], conf[128];
  paths(dir, db, conf);
  write_file(conf,
             "[job quick]\nevery = 100ms\ncommand = true\n"
             "[job slow]\nevery = 1h\nstart_now = true\ncommand = sleep 30\n"
             "[job newyear]\nschedule = 0 0 1 1 *\ntz = UTC\ncommand = true\n",
             0644);
  struct proc d, p;
  start_daemon(&d, conf, db, NULL);
  assert_true(wait_log(&d, "event=end job=quick", 20));
  assert_true(wait_log(&d, "event=start job=slow", 20));
  assert_int_equal(ctl(&p, db, (const char *const[]){"status", NULL}), 0);
  print_message("%s", p.stdout_text);
  assert_non_null(strstr(p.stdout_text, "JOB"));
  assert_non_null(strstr(p.stdout_text, "NEXT"));
  char *quick = strstr(p.stdout_text, "\nquick "), *slow = strstr(p.stdout_text, "\nslow ");
  char *newyear = strstr(p.stdout_text, "\nnewyear ");
  assert_true(quick && slow && newyear && newyear < quick && quick < slow); /* by name */
  assert_non_null(strstr(quick, "every 100ms"));
  assert_non_null(strstr(quick, " ok "));
  assert_non_null(strstr(newyear, "0 0 1 1 * UTC"));
  time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  char year[64];
  snprintf(year, sizeof year, "%04d-01-01T00:00:00.000Z", tm.tm_year + 1900 + 1);
  assert_non_null(strstr(newyear, year));
  long long pid = -1;
  char text[64];
  double end = mono() + 10;
  while (query(db, "SELECT pid FROM runs WHERE job = 'slow'", &pid, NULL, 0) != 1 && mono() < end)
    usleep(20000);
  snprintf(text, sizeof text, "pid %lld for ", pid);
  assert_non_null(strstr(slow, text));
  assert_non_null(strstr(slow, " active "));
  proc_free(&p);
  assert_int_equal(ctl(&p, db, (const char *const[]){"status", "--json", NULL}), 0);
  assert_non_null(strstr(p.stdout_text, "\"name\":\"slow\""));
  snprintf(text, sizeof text, "\"running\":[{\"pid\":%lld,", pid);
  assert_non_null(strstr(p.stdout_text, text));
  assert_non_null(strstr(p.stdout_text, year));
  assert_non_null(strstr(p.stdout_text, "\"paused\":false"));
  assert_non_null(strstr(p.stdout_text, "\"last\":{\"outcome\":\"ok\""));
  assert_non_null(strstr(p.stdout_text, "\"schedule\":\"every 100ms\""));
  proc_free(&p);
  stop_daemon(&d);
  proc_free(&d);
}

static void trigger_runs_a_job_now_recorded_as_manual(void **state) {
  (void)state;
  char dir[64], db[128], conf[128];
  paths(dir, db, conf);
  write_file(conf,
             "[job hourly]\nevery = 1h\ncommand = echo by-hand\n"
             "[job busy]\nevery = 1h\nstart_now = true\ncommand = sleep 30\n",
             0644);
  struct proc d, p;
  start_daemon(&d, conf, db, NULL);
  assert_int_equal(ctl(&p, db, (const char *const[]){"trigger", "hourly", NULL}), 0);
  assert_non_null(strstr(p.stdout_text, "job hourly: started"));
  proc_free(&p);
  assert_true(wait_log(&d, "line=by-hand", 20));
  assert_true(wait_log(&d, "event=end job=hourly", 20));
  /* a run of busy is going, and overlap = skip: the trigger's is skipped */
  assert_true(wait_log(&d, "event=start job=busy", 20));
  assert_int_equal(ctl(&p, db, (const char *const[]){"trigger", "busy", NULL}), 0);
  assert_non_null(strstr(p.stdout_text, "skipped: a run of it is going"));
  proc_free(&p);
  stop_daemon(&d);
  assert_int_equal(q(db, "SELECT count(*) FROM runs WHERE job = 'hourly' AND triggered_by = 'manual' AND outcome = 'ok'"
                         " AND triggered = 1"),
                   1);
  assert_int_equal(q(db,
                     "SELECT count(*) FROM runs WHERE job = 'busy' AND outcome = 'skipped' AND triggered_by = 'manual'"
                     " AND reason = 'overlap'"),
                   1);
  assert_int_equal(q(db, "SELECT count(*) FROM runs WHERE job = 'busy' AND triggered_by IS NULL"), 1);
  assert_non_null(strstr(d.log, "event=trigger"));
  proc_free(&d);
  /* the history shows it */
  assert_int_equal(ctl(&p, db, (const char *const[]){"history", NULL}), 0);
  assert_non_null(strstr(p.stdout_text, "  manual"));
  proc_free(&p);
}

static void pause_skips_ticks_and_outlives_a_reload_and_a_restart(void **state) {
  (void)state;
  char dir[64], db[128], conf[128], sock[160];
  struct proc d, p;
  daemon_on(&d, dir, db, conf, sock,
            "[job tick]\nevery = 100ms\ncommand = echo tock\n[job other]\nevery = 100ms\ncommand = true\n");
  assert_true(wait_log(&d, "line=tock", 20));
  assert_int_equal(ctl(&p, db, (const char *const[]){"pause", "tick", NULL}), 0);
  assert_non_null(strstr(p.stdout_text, "job tick paused"));
  proc_free(&p);
  size_t from = d.len;
  assert_true(wait_log_from(&d, from, "event=skip job=tick reason=paused", 20));
  /* a reload that changes the job: its new version is paused too */
  write_file(conf, "[job tick]\nevery = 150ms\ncommand = echo tock\n[job other]\nevery = 100ms\ncommand = true\n",
             0644);
  kill(d.pid, SIGHUP);
  assert_true(wait_log_from(&d, from, "event=reload config=", 20));
  from = d.len;
  assert_true(wait_log_from(&d, from, "event=skip job=tick reason=paused", 20));
  assert_true(wait_log_from(&d, from, "event=end job=other", 20));
  assert_null(strstr(d.log + from, "line=tock"));
  /* a manual trigger runs a paused job */
  assert_int_equal(ctl(&p, db, (const char *const[]){"trigger", "tick", NULL}), 0);
  assert_non_null(strstr(p.stdout_text, "started"));
  proc_free(&p);
  assert_true(wait_log_from(&d, from, "line=tock", 20));
  assert_int_equal(ctl(&p, db, (const char *const[]){"pause", "tick", NULL}), 0);
  assert_non_null(strstr(p.stdout_text, "paused already"));
  proc_free(&p);
  stop_daemon(&d);
  proc_free(&d);
  assert_int_equal(q(db, "SELECT count(*) FROM paused WHERE job = 'tick'"), 1);
  assert_true(q(db, "SELECT count(*) FROM runs WHERE job = 'tick' AND outcome = 'skipped' AND reason = 'paused'") >= 2);
  /* a restart: still paused */
  start_daemon(&d, conf, db, NULL);
  assert_true(wait_log(&d, "event=skip job=tick reason=paused", 20));
  assert_int_equal(ctl(&p, db, (const char *const[]){"status", NULL}), 0);
  assert_non_null(strstr(strstr(p.stdout_text, "\ntick "), " paused "));
  proc_free(&p);
  assert_int_equal(ctl(&p, db, (const char *const[]){"resume", "tick", NULL}), 0);
  assert_non_null(strstr(p.stdout_text, "job tick resumed"));
  proc_free(&p);
  from = d.len;
  assert_true(wait_log_from(&d, from, "line=tock", 20));
  assert_int_equal(ctl(&p, db, (const char *const[]){"resume", "tick", NULL}), 0);
  assert_non_null(strstr(p.stdout_text, "not paused"));
  proc_free(&p);
  stop_daemon(&d);
  proc_free(&d);
  assert_int_equal(q(db, "SELECT count(*) FROM paused"), 0);
}

static void reload_tells_what_it_did_or_every_error(void **state) {
  (void)state;
  char dir[64], db[128], conf[128], sock[160];
  struct proc d, p;
  daemon_on(&d, dir, db, conf, sock, "[job a]\nevery = 1h\ncommand = true\n[job keep]\nevery = 1h\ncommand = true\n");
  write_file(conf, "[job b]\nevery = 1h\ncommand = true\n[job keep]\nevery = 1h\ncommand = true\n", 0644);
  assert_int_equal(ctl(&p, db, (const char *const[]){"reload", NULL}), 0);
  assert_non_null(strstr(p.stdout_text, "reloaded: 1 job(s) kept, 1 started, 1 stopped"));
  proc_free(&p);
  write_file(conf, "[job b]\nevery = 1h\ncommand = true\nbogus = 1\n[job c]\nevery = 5x\ncommand = true\n", 0644);
  assert_int_equal(ctl(&p, db, (const char *const[]){"reload", NULL}), 1);
  assert_non_null(strstr(p.log, "c.conf:4: [job b] bogus: unknown key"));
  assert_non_null(strstr(p.log, "c.conf:6: [job c] every:"));
  assert_non_null(strstr(p.log, "2 error(s): refused; the running config goes on"));
  proc_free(&p);
  assert_int_equal(ctl(&p, db, (const char *const[]){"status", NULL}), 0);
  assert_non_null(strstr(p.stdout_text, "\nb "));
  assert_null(strstr(p.stdout_text, "\na "));
  proc_free(&p);
  stop_daemon(&d);
  proc_free(&d);
}

static void unknown_job_exits_1_naming_it(void **state) {
  (void)state;
  char dir[64], db[128], conf[128], sock[160];
  struct proc d, p;
  daemon_on(&d, dir, db, conf, sock, "[job a]\nevery = 1h\ncommand = true\n");
  static const char *const verbs[] = {"trigger", "pause", "resume"};
  for (int i = 0; i < 3; i++) {
    assert_int_equal(ctl(&p, db, (const char *const[]){verbs[i], "nope", NULL}), 1);
    assert_non_null(strstr(p.log, "chime: no job named \"nope\""));
    assert_string_equal(p.stdout_text, "");
    proc_free(&p);
  }
  /* a bad command line is 2 */
  assert_int_equal(ctl(&p, db, (const char *const[]){"trigger", NULL}), 2);
  proc_free(&p);
  assert_int_equal(ctl(&p, db, (const char *const[]){"pause", "a b", NULL}), 2);
  proc_free(&p);
  assert_int_equal(ctl(&p, db, (const char *const[]){"status", "--bogus", NULL}), 2);
  proc_free(&p);
  stop_daemon(&d);
  proc_free(&d);
  /* no daemon: 1, saying so */
  assert_int_equal(ctl(&p, db, (const char *const[]){"status", NULL}), 1);
  assert_non_null(strstr(p.log, "no chime serves"));
  proc_free(&p);
}

static void socket_is_private_and_a_path_that_is_not_one_is_refused(void **state) {
  (void)state;
  char dir[64], db[128], conf[128], sock[160];
  struct proc d, p;
  daemon_on(&d, dir, db, conf, sock, "[job a]\nevery = 1h\ncommand = true\n");
  struct stat st;
  assert_int_equal(lstat(sock, &st), 0);
  assert_true(S_ISSOCK(st.st_mode));
  assert_int_equal(st.st_mode & 0777, 0600);
  stop_daemon(&d);
  assert_int_equal(access(sock, F_OK), -1); /* removed at the end */
  proc_free(&d);
  write_file(sock, "not a socket\n", 0644);
  assert_int_equal(run(&p, (const char *const[]){"run", conf, "--db", db, NULL}, NULL), 1);
  assert_non_null(strstr(p.log, "exists and is not a socket: refused"));
  assert_null(strstr(p.log, "event=ready"));
  proc_free(&p);
  char text[64] = "";
  FILE *f = fopen(sock, "r");
  assert_non_null(f);
  assert_non_null(fgets(text, sizeof text, f));
  fclose(f);
  assert_string_equal(text, "not a socket\n"); /* untouched */
  /* --socket names another: that one is used */
  char other[160];
  snprintf(other, sizeof other, "%s/other.sock", dir);
  start(&d, (const char *const[]){"run", conf, "--db", db, "--socket", other, NULL}, NULL);
  assert_true(wait_log(&d, "event=ready", 30));
  assert_int_equal(run(&p, (const char *const[]){"status", "--socket", other, NULL}, NULL), 0);
  proc_free(&p);
  stop_daemon(&d);
  proc_free(&d);
}

static void two_daemons_on_one_socket_and_a_stale_one(void **state) {
  (void)state;
  char dir[64], db[128], conf[128], sock[160];
  struct proc d, p;
  daemon_on(&d, dir, db, conf, sock, "[job a]\nevery = 1h\ncommand = true\n");
  assert_int_equal(run(&p, (const char *const[]){"run", conf, "--db", db, NULL}, NULL), 1);
  char text[96];
  snprintf(text, sizeof text, "another chime (pid %d) serves the control socket", (int)d.pid);
  assert_non_null(strstr(p.log, text));
  proc_free(&p);
  assert_int_equal(ctl(&p, db, (const char *const[]){"status", NULL}), 0); /* the first serves on */
  proc_free(&p);
  /* killed, it leaves its socket: the next daemon replaces it */
  kill(d.pid, SIGKILL);
  finish(&d, 30);
  proc_free(&d);
  assert_int_equal(access(sock, F_OK), 0);
  start_daemon(&d, conf, db, NULL);
  assert_int_equal(ctl(&p, db, (const char *const[]){"status", NULL}), 0);
  assert_non_null(strstr(p.stdout_text, "\na "));
  proc_free(&p);
  stop_daemon(&d);
  proc_free(&d);
}

static void a_peer_of_another_uid_is_refused_and_logged(void **state) {
  (void)state;
  if (geteuid() != 0) {
    print_message("skipped: needs root (a client of another uid)\n");
    skip();
  }
  char dir[64], db[128], conf[128], sock[160];
  struct proc d;
  daemon_on(&d, dir, db, conf, sock, "[job a]\nevery = 1h\ncommand = true\n");
  /* past the socket's mode (which alone keeps others out): SO_PEERCRED */
  assert_int_equal(chmod(dir, 0755), 0);
  assert_int_equal(chmod(sock, 0666), 0);
  int out[2];
  assert_int_equal(pipe(out), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    if (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0) _exit(98);
    int fd = dial(sock);
    if (fd < 0) _exit(97);
    /* refused at once, the connection may be closed before it is written to */
    if (send(fd, "pause a\n", 8, MSG_NOSIGNAL) < 0 && errno != EPIPE && errno != ECONNRESET) _exit(96);
    char buf[512];
    read_all(fd, buf, sizeof buf, 10);
    if (write(out[1], buf, strlen(buf)) < 0) _exit(95);
    _exit(0);
  }
  close(out[1]);
  char buf[512];
  read_all(out[0], buf, sizeof buf, 10);
  close(out[0]);
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  assert_non_null(strstr(buf, "error\npermission denied"));
  assert_true(wait_log(&d, "refused a client of uid 65534", 10));
  stop_daemon(&d);
  assert_null(strstr(d.log, "event=pause"));
  proc_free(&d);
}

static void a_stalled_or_wordy_client_holds_up_no_one(void **state) {
  (void)state;
  char dir[64], db[128], conf[128], sock[160];
  struct proc d, p;
  daemon_on(&d, dir, db, conf, sock, "[job a]\nevery = 100ms\ncommand = true\n");
  int stalled[8];
  for (int i = 0; i < 8; i++)
    assert_true((stalled[i] = dial(sock)) >= 0); /* and say nothing */
  double t0 = mono();
  assert_int_equal(ctl(&p, db, (const char *const[]){"status", NULL}), 0);
  assert_true(mono() - t0 < 1.5); /* answered meanwhile, not after the stalled ones' 2 s */
  proc_free(&p);
  char buf[4096];
  read_all(stalled[0], buf, sizeof buf, 10); /* closed after 2 s, without an answer */
  assert_string_equal(buf, "");
  assert_true(mono() - t0 < 8);
  for (int i = 0; i < 8; i++)
    close(stalled[i]);
  assert_true(wait_log(&d, "a client sent no request within 2s", 10));
  /* a request longer than a line may be */
  int fd = dial(sock);
  assert_true(fd >= 0);
  char big[3000];
  memset(big, 'x', sizeof big);
  assert_int_equal(write(fd, big, sizeof big), (ssize_t)sizeof big);
  read_all(fd, buf, sizeof buf, 10);
  close(fd);
  assert_non_null(strstr(buf, "error\na request is one line of at most 1024 bytes"));
  /* and one that is not a request */
  fd = dial(sock);
  assert_int_equal(write(fd, "launch missiles\n", 16), 16);
  read_all(fd, buf, sizeof buf, 10);
  close(fd);
  assert_non_null(strstr(buf, "error\nlaunch: not a request"));
  size_t from = d.len;
  assert_true(wait_log_from(&d, from, "event=end job=a", 10)); /* the jobs went on */
  stop_daemon(&d);
  proc_free(&d);
}

/* A datagram socket standing in for systemd's NOTIFY_SOCKET. */
static int notify_socket(const char *path) {
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  assert_true(strlen(path) < sizeof a.sun_path);
  memcpy(a.sun_path, path, strlen(path) + 1);
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  assert_true(fd >= 0);
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  return fd;
}

/* The datagrams received within `limit` s, appended to buf (each ending
 * with "|"), until one holds `until`: whether it came. */
static bool datagrams_until(int fd, char *buf, size_t size, const char *until, double limit) {
  double end = mono() + limit;
  while (mono() < end) {
    struct pollfd pfd = {fd, POLLIN, 0};
    if (poll(&pfd, 1, 50) != 1) continue;
    char msg[1024];
    ssize_t n = recv(fd, msg, sizeof msg - 1, 0);
    if (n <= 0) continue;
    msg[n] = '\0';
    size_t len = strlen(buf);
    snprintf(buf + len, size - len, "%s|", msg);
    if (strstr(msg, until)) return true;
  }
  return false;
}

static void sd_notify_tells_ready_status_watchdog_and_stopping(void **state) {
  (void)state;
  char dir[64], db[128], conf[128], ns[160], env[200];
  paths(dir, db, conf);
  snprintf(ns, sizeof ns, "%s/notify", dir);
  snprintf(env, sizeof env, "NOTIFY_SOCKET=%s", ns);
  write_file(
      conf,
      "[job slow]\nevery = 1h\nstart_now = true\ncommand = sh -c 'echo socket=${NOTIFY_SOCKET:-unset}; sleep 30'\n"
      "[job idle]\nevery = 1h\ncommand = true\n",
      0644);
  int fd = notify_socket(ns);
  struct proc d;
  static char got[65536];
  got[0] = '\0';
  start(&d, (const char *const[]){"run", conf, "--db", db, NULL},
        (const char *const[]){env, "WATCHDOG_USEC=200000", NULL});
  assert_true(datagrams_until(fd, got, sizeof got, "READY=1", 20));
  assert_true(wait_log(&d, "event=ready", 20));
  assert_true(datagrams_until(fd, got, sizeof got, "STATUS=2 job(s), 1 run(s) in progress", 20));
  /* WATCHDOG=1 every 100 ms (half of WATCHDOG_USEC): many in a second */
  got[0] = '\0';
  double t0 = mono();
  while (mono() - t0 < 1.0)
    datagrams_until(fd, got, sizeof got, "never", 0.1);
  int dogs = 0;
  for (const char *s = got; (s = strstr(s, "WATCHDOG=1")) != NULL; s++)
    dogs++;
  print_message("%d WATCHDOG=1 in a second\n", dogs);
  assert_true(dogs >= 4 && dogs <= 20);
  /* no job sees the socket: it is chime's */
  assert_true(wait_log(&d, "line=\"socket=unset\"", 20));
  kill(d.pid, SIGTERM);
  assert_true(datagrams_until(fd, got, sizeof got, "STOPPING=1", 20));
  assert_int_equal(finish(&d, 30), 0);
  proc_free(&d);
  close(fd);
  /* without WATCHDOG_USEC no WATCHDOG=1; an abstract socket works too */
  char abstract[64];
  snprintf(abstract, sizeof abstract, "@chime-test-%d", (int)getpid());
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  memcpy(a.sun_path + 1, abstract + 1, strlen(abstract) - 1);
  fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  assert_int_equal(
      bind(fd, (struct sockaddr *)&a, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(abstract))), 0);
  snprintf(env, sizeof env, "NOTIFY_SOCKET=%s", abstract);
  got[0] = '\0';
  start(&d, (const char *const[]){"run", conf, "--db", db, NULL}, (const char *const[]){env, NULL});
  assert_true(datagrams_until(fd, got, sizeof got, "READY=1", 20));
  datagrams_until(fd, got, sizeof got, "never", 1.5);
  assert_null(strstr(got, "WATCHDOG=1"));
  stop_daemon(&d);
  proc_free(&d);
  close(fd);
}

static void watch_reloads_when_the_file_is_replaced_or_edited(void **state) {
  (void)state;
  char dir[64], db[128], conf[128], tmp[160];
  paths(dir, db, conf);
  snprintf(tmp, sizeof tmp, "%s/c.conf.new", dir);
  write_file(conf, "[chime]\nwatch = true\n[job a]\nevery = 100ms\ncommand = echo from-a\n", 0644);
  struct proc d;
  start_daemon(&d, conf, db, NULL);
  assert_true(wait_log(&d, "event=watch", 20));
  assert_true(wait_log(&d, "line=from-a", 20));
  /* an editor's save: a new file renamed over the old */
  write_file(tmp, "[chime]\nwatch = true\n[job b]\nevery = 100ms\ncommand = echo from-b\n", 0644);
  assert_int_equal(rename(tmp, conf), 0);
  assert_true(wait_log(&d, "kept=0 started=1 stopped=1", 20));
  assert_true(wait_log(&d, "line=from-b", 20));
  /* a write in place, in pieces, and a storm of them: one reload or two */
  size_t from = d.len;
  for (int i = 0; i < 50; i++) {
    FILE *f = fopen(conf, "w");
    fputs("[chime]\nwatch = true\n[job c]\nevery = 100ms\n", f);
    fflush(f);
    fprintf(f, "command = echo from-c-%d\n", i);
    fclose(f);
  }
  assert_true(wait_log_from(&d, from, "line=from-c-49", 20));
  usleep(500000);
  pump(&d, 0);
  int reloads = count(d.log + from, "event=reload config=");
  print_message("%d reload(s) for 50 writes\n", reloads);
  assert_true(reloads >= 1 && reloads <= 3);
  /* a file with errors is refused, the running config goes on */
  from = d.len;
  write_file(conf, "[chime]\nwatch = true\n[job c]\nevery = soon\ncommand = true\n", 0644);
  assert_true(wait_log_from(&d, from, "event=reload_error", 20));
  assert_true(wait_log_from(&d, from, "the running config goes on", 20));
  from = d.len;
  assert_true(wait_log_from(&d, from, "line=from-c-49", 20));
  /* other files of the directory are no change of it */
  from = d.len;
  write_file(tmp, "x", 0644);
  usleep(700000);
  pump(&d, 0);
  if (strstr(d.log + from, "event=reload")) print_error("%s", d.log + from);
  assert_null(strstr(d.log + from, "event=reload"));
  stop_daemon(&d);
  proc_free(&d);
}

static void a_reload_storm_leaves_the_daemon_whole(void **state) {
  (void)state;
  char dir[64], db[128], conf[128];
  paths(dir, db, conf);
  static const char *const versions[] = {
      "[job a]\nevery = 50ms\ncommand = sleep 0.08\n[job b]\nevery = 70ms\ncommand = true\n",
      "[job a]\nevery = 60ms\ncommand = sleep 0.08\n[job c]\nevery = 50ms\ncommand = true\n",
  };
  write_file(conf, versions[0], 0644);
  struct proc d, p;
  start_daemon(&d, conf, db, NULL);
  for (int i = 0; i < 40; i++) {
    write_file(conf, versions[i % 2], 0644);
    if (i % 2)
      kill(d.pid, SIGHUP);
    else
      assert_int_equal(ctl(&p, db, (const char *const[]){"reload", NULL}), 0), proc_free(&p);
  }
  for (int i = 0; i < 100; i++)
    kill(d.pid, SIGHUP); /* faster than it reloads */
  write_file(conf, versions[0], 0644);
  assert_int_equal(ctl(&p, db, (const char *const[]){"reload", NULL}), 0);
  proc_free(&p);
  size_t from = d.len;
  assert_true(wait_log_from(&d, from, "event=end job=a", 20));
  assert_true(wait_log_from(&d, from, "event=end job=b", 20));
  assert_int_equal(ctl(&p, db, (const char *const[]){"status", NULL}), 0);
  assert_non_null(strstr(p.stdout_text, "\nb "));
  assert_null(strstr(p.stdout_text, "\nc "));
  proc_free(&p);
  stop_daemon(&d);
  proc_free(&d);
  /* no two runs of a job's versions overlapped, and every run was completed */
  assert_int_equal(q(db, "SELECT count(*) FROM runs x JOIN runs y ON x.job = y.job AND x.id < y.id AND"
                         " y.started < x.ended AND x.outcome NOT IN ('skipped') AND y.outcome NOT IN ('skipped')"),
                   0);
  assert_int_equal(q(db, "SELECT count(*) FROM runs WHERE outcome = 'running'"), 0);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(status_lists_every_job_with_its_next_and_latest_runs),
      cmocka_unit_test(trigger_runs_a_job_now_recorded_as_manual),
      cmocka_unit_test(pause_skips_ticks_and_outlives_a_reload_and_a_restart),
      cmocka_unit_test(reload_tells_what_it_did_or_every_error),
      cmocka_unit_test(unknown_job_exits_1_naming_it),
      cmocka_unit_test(socket_is_private_and_a_path_that_is_not_one_is_refused),
      cmocka_unit_test(two_daemons_on_one_socket_and_a_stale_one),
      cmocka_unit_test(a_peer_of_another_uid_is_refused_and_logged),
      cmocka_unit_test(a_stalled_or_wordy_client_holds_up_no_one),
      cmocka_unit_test(sd_notify_tells_ready_status_watchdog_and_stopping),
      cmocka_unit_test(watch_reloads_when_the_file_is_replaced_or_edited),
      cmocka_unit_test(a_reload_storm_leaves_the_daemon_whole),
  };
  if (test_select(tests, sizeof tests / sizeof tests[0], argc, argv)) return 2;
  return cmocka_run_group_tests(tests, NULL, NULL);
}
