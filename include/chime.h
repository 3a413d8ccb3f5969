/* chime.h - periodic tasks in the background of an event-loop program.
 *
 * This header is the specification of the library.  Every function documents
 * what it does, what it returns, its errors, who owns what, and from where it
 * may be called.  Sections follow the layers of the library, bottom up:
 * version and errors, time, loops, tasks, task groups, running a program.
 *
 * Conventions that hold everywhere:
 *  - Functions that can fail return int: 0 (or a count) on success, a negative
 *    errno on failure (-EINVAL, -ENOMEM, -ECANCELED, -ETIMEDOUT, ...).  A call
 *    that fails changes nothing and leaves its output parameters untouched.
 *  - Time is chime_ns: signed 64-bit nanoseconds.  Durations are relative,
 *    deadlines are absolute instants on the clock of the loop (chime_now()).
 *  - A loop belongs to the thread that created it.  Every function that acts
 *    on a loop, a task or a group must be called from that thread, while the
 *    loop runs there (from a task, or from code the loop calls), unless it
 *    says otherwise.  Calls from anywhere else return -EPERM.
 *  - "Task only" functions suspend the calling task; called outside a task
 *    they return -EPERM.
 */
#ifndef CHIME_H
#define CHIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(CHIME_STATIC)
#define CHIME_EXPORT
#elif defined(__GNUC__)
#define CHIME_EXPORT __attribute__((visibility("default")))
#else
#define CHIME_EXPORT
#endif

/* ======================================================================== */
/* Version and errors                                                       */
/* ======================================================================== */

#define CHIME_VERSION_MAJOR 0
#define CHIME_VERSION_MINOR 1
#define CHIME_VERSION_PATCH 0
#define CHIME_VERSION_STRING "0.1.0"

/* The version of the library the program runs with, as "MAJOR.MINOR.PATCH".
 * Returns a static string.  Callable from anywhere. */
CHIME_EXPORT const char *chime_version(void);

/* A short English description of `err`, a negative errno returned by this
 * library (a positive value is treated as its negation).  Returns a static
 * string, never NULL; unknown values give "unknown error".  Thread-safe. */
CHIME_EXPORT const char *chime_strerror(int err);

/* ======================================================================== */
/* Time                                                                     */
/* ======================================================================== */

/* Nanoseconds: a duration, or an instant on a loop's monotonic clock. */
typedef int64_t chime_ns;

/* Duration constructors.  Integer or floating arguments both work:
 * CHIME_MS(250), CHIME_SEC(1.5).  Overflow is the caller's to avoid. */
#define CHIME_NSEC(x) ((chime_ns)(x))
#define CHIME_US(x) ((chime_ns)((x)*1000LL))
#define CHIME_MS(x) ((chime_ns)((x)*1000000LL))
#define CHIME_SEC(x) ((chime_ns)((x)*1000000000LL))
#define CHIME_MIN(x) ((chime_ns)((x)*60000000000LL))
#define CHIME_HOUR(x) ((chime_ns)((x)*3600000000000LL))

/* A deadline that never comes: chime_sleep_until(CHIME_NEVER) waits until
 * the task is cancelled. */
#define CHIME_NEVER INT64_MAX

/* The current instant on the clock of the loop running on this thread: real
 * monotonic time, or the loop's virtual time (see chime_loop_opts.clock).
 * Outside a running loop, the real monotonic clock (CLOCK_MONOTONIC).
 * Never fails; never goes backwards. */
CHIME_EXPORT chime_ns chime_now(void);

/* Moves the virtual clock of the loop running on this thread forward by
 * `d` at once, as though the calling code had kept the loop busy that long
 * (a blocking call, the process being stopped): deadlines passed meanwhile
 * fire late, and periodic jobs apply their missed-tick policies, as they
 * would after a real stall (Tokio's time::advance).
 * Returns 0; -EINVAL (d < 0, overflow, or a loop on the real clock);
 * -EPERM (no loop running on this thread). */
CHIME_EXPORT int chime_clock_advance(chime_ns d);

/* Parses a human duration into nanoseconds: a sequence of numbers, each with
 * a unit, optionally separated by spaces: "250ms", "1.5s", "1h30m", "2min",
 * "1h 30m 10s".  Units: ns, us (usec, µs), ms (msec), s (sec, second,
 * seconds), m (min, minute, minutes), h (hr, hour, hours), d (day, days),
 * w (week, weeks).  A bare number means seconds ("30" is 30 s), as in systemd.
 * Fractions are exact to the nanosecond ("0.1s" is 100000000).
 * Returns 0 and stores the duration in *out; -EINVAL for NULL arguments,
 * empty text, an unknown unit or a malformed number (negative durations
 * included); -ERANGE if the value does not fit in chime_ns, or is not zero
 * and less than a nanosecond ("0.0000000001s"). */
CHIME_EXPORT int chime_parse_duration(const char *text, chime_ns *out);

/* Formats a duration the way chime_parse_duration reads it back, with the
 * largest units first and no zero parts: "1h30m", "1.5s", "250ms", "0s".
 * Negative durations get a leading '-'.  Writes at most `size` bytes
 * including the terminating NUL.  Returns the length of the full text (as
 * snprintf does), or -EINVAL if buf is NULL or size is 0. */
CHIME_EXPORT int chime_format_duration(chime_ns d, char *buf, size_t size);

/* ======================================================================== */
/* Loops                                                                    */
/* ======================================================================== */

/* An event loop: a run queue of tasks, a clock, timers, and a backend that
 * waits for file descriptors and deadlines.  Opaque. */
typedef struct chime_loop chime_loop;

/* Which clock a loop runs on. */
typedef enum chime_clock {
  /* CHIME_CLOCK_VIRTUAL if the environment variable CHIME_CLOCK is
   * "virtual", CHIME_CLOCK_REAL otherwise. */
  CHIME_CLOCK_DEFAULT = 0,
  /* CLOCK_MONOTONIC. */
  CHIME_CLOCK_REAL,
  /* Virtual time, starting at 0: it stands still while any task can run, and
   * when every task waits it jumps straight to the next deadline (after
   * checking, without blocking, that no file descriptor is ready).  Hours of
   * schedule run in milliseconds and give the same results every run. */
  CHIME_CLOCK_VIRTUAL,
} chime_clock;

/* Which mechanism a loop waits with. */
typedef enum chime_backend {
  /* CHIME_BACKEND_POLL if the environment variable CHIME_BACKEND is "poll",
   * otherwise the best the system has (epoll on Linux). */
  CHIME_BACKEND_DEFAULT = 0,
  /* epoll(7), waiting with nanosecond timeouts (epoll_pwait2 where the
   * kernel has it, otherwise milliseconds rounded up).  Linux only. */
  CHIME_BACKEND_EPOLL,
  /* poll(2)/ppoll(2): portable, O(number of file descriptors) per wait. */
  CHIME_BACKEND_POLL,
} chime_backend;

/* Options for a new loop.  The zero value gives every default. */
typedef struct chime_loop_opts {
  chime_clock clock;     /* default: CHIME_CLOCK_DEFAULT */
  chime_backend backend; /* default: CHIME_BACKEND_DEFAULT */
  /* Usable bytes of each task's stack, rounded up to whole pages; 0 means
   * 64 KiB.  At least 16 KiB, at most 1 GiB.  Stacks come from mmap with a
   * guard page below them, are committed lazily by the kernel, and are kept
   * in a pool for reuse.  An overflow is reported on stderr as such. */
  size_t stack_size;
  /* Threads for chime_to_thread, started as calls come; 0 means the number
   * of CPUs. */
  unsigned pool_threads;
} chime_loop_opts;

/* Creates a loop owned by the calling thread.  `opts` may be NULL for the
 * defaults.  On success stores the loop in *loop (the caller owns it and
 * frees it with chime_loop_free) and returns 0.
 * Errors: -EINVAL (NULL loop, an unknown enum value, a stack size out of
 * range, or CHIME_BACKEND_EPOLL where there is no epoll), -ENOMEM, -EMFILE
 * and other errnos of epoll_create1(2)/pipe2(2). */
CHIME_EXPORT int chime_loop_new(const chime_loop_opts *opts, chime_loop **loop);

/* Runs the loop on the calling thread until no task is left or
 * chime_loop_stop() is called; while every task waits, it waits too (for a
 * deadline, a descriptor, a signal, or a call from another thread).
 * Returns 0, or -EINVAL (NULL loop), -EPERM (not the loop's thread), -EBUSY
 * (a loop is already running on this thread, this one or another: loops do
 * not nest), or the backend's errno if waiting fails. */
CHIME_EXPORT int chime_loop_run(chime_loop *loop);

/* Makes chime_loop_run() return once the running task suspends; tasks keep
 * their state and run again at the next chime_loop_run().  Returns 0,
 * -EINVAL (NULL) or -EPERM (the loop is not running on this thread). */
CHIME_EXPORT int chime_loop_stop(chime_loop *loop);

/* The loop running on this thread, or NULL. */
CHIME_EXPORT chime_loop *chime_loop_current(void);

/* The name of the loop's backend: "epoll" or "poll"; NULL for a NULL loop. */
CHIME_EXPORT const char *chime_loop_backend(const chime_loop *loop);

/* What a shutdown left behind. */
typedef struct chime_report {
  /* chime_run: the main task's return value (0 if it never ran). */
  int result;
  /* chime_run: the signal (SIGINT, SIGTERM) that cancelled the main task,
   * or 0. */
  int signal;
  /* Tasks still alive when the grace period ended: abandoned, their stacks
   * and records freed without their cleanup having run. */
  size_t abandoned;
  /* The names of the abandoned tasks that have one (chime_task_set_name),
   * separated by ", ", truncated with "..." if they do not fit. */
  char names[256];
} chime_report;

/* Cancels every task of the loop and runs the loop until they have all
 * finished, or until `grace` has passed on the loop's clock (grace < 0: wait
 * without bound).  Tasks spawned during the shutdown start cancelled.  Tasks
 * still alive after the grace period are abandoned: counted and named in
 * *report (which may be NULL), and their memory freed.  Afterwards the loop
 * is empty and can be run again or freed.  Called from outside the loop's
 * run (not from a task).  Returns 0, -EINVAL (NULL loop), -EPERM (wrong
 * thread), -EBUSY (called while the loop runs). */
CHIME_EXPORT int chime_loop_shutdown(chime_loop *loop, chime_ns grace, chime_report *report);

/* Frees the loop and everything it still holds: tasks that never finished
 * are abandoned (their stacks freed, their cleanup not run; call
 * chime_loop_shutdown first to let them clean up).  Every handle of the loop
 * becomes invalid.  Does nothing for NULL; must not be called while the loop
 * runs, nor from another thread (it then does nothing). */
CHIME_EXPORT void chime_loop_free(chime_loop *loop);

/* ======================================================================== */
/* Tasks                                                                    */
/* ======================================================================== */

/* A task's function: runs on its own stack, receives the spawn argument,
 * returns the task's result (by convention 0 or a negative errno). */
typedef int (*chime_fn)(void *arg);

/* A task handle: a value, copied freely, opaque.  Every handle returned by a
 * spawn must be joined (chime_join) or detached (chime_detach) exactly once;
 * afterwards it is invalid, and every call with it returns -EINVAL (the
 * handle carries a generation, so a stale copy is recognised even after its
 * memory was reused).  A handle neither joined nor detached when its loop is
 * shut down is released by the loop.  The zero value { 0 } is never a valid
 * handle. */
typedef struct chime_task {
  uint64_t id;
} chime_task;

/* Starts a task that calls fn(arg) on the current loop: asyncio's
 * create_task.  The task is queued and first runs when the calling code
 * suspends (never re-entrantly, never before chime_spawn returns).
 * If `task` is NULL the task is detached at once; otherwise the caller owns
 * the handle stored there.  Ownership of `arg` stays with the caller.
 * Returns 0, -EINVAL (NULL fn), -EPERM (no loop running on this thread),
 * -ENOMEM (no memory for the task or its stack). */
CHIME_EXPORT int chime_spawn(chime_fn fn, void *arg, chime_task *task);

/* As chime_spawn, on a given loop, from the loop's thread whether or not the
 * loop is running: the way to give a loop its first tasks before
 * chime_loop_run().  Returns what chime_spawn returns, and -EINVAL for a
 * NULL loop. */
CHIME_EXPORT int chime_loop_spawn(chime_loop *loop, chime_fn fn, void *arg, chime_task *task);

/* Task only.  Waits until `task` has finished and stores its result in
 * *result (which may be NULL): asyncio's `await task`.  On success the
 * handle is consumed.
 * Returns 0; -EINVAL (invalid or stale handle, or the handle of a task that
 * another task is already joining); -EDEADLK (a task joining itself);
 * -EPERM (not in a task); -ECANCELED (the caller was cancelled: the handle
 * stays valid and may be joined again).  A cancelled caller still waits for
 * a task that has itself been cancelled: waiting for a cancelled task to
 * finish its cleanup is part of cleaning up (cancel-and-wait works from
 * cleanup code); use chime_join_until to bound it. */
CHIME_EXPORT int chime_join(chime_task task, int *result);

/* Task only.  As chime_join, but gives up at `deadline` (an instant of
 * chime_now()) with -ETIMEDOUT, leaving the handle valid.  A cancellation
 * that arrives before the deadline wins over it ("cancel beats deadline").
 * -EINVAL also for a negative deadline. */
CHIME_EXPORT int chime_join_until(chime_task task, chime_ns deadline, int *result);

/* Releases the handle: the task goes on running and its record is freed
 * when it finishes (its result is dropped).  Detaching a finished task frees
 * it at once.  Returns 0, -EINVAL (invalid or stale handle, or a task that
 * is being joined), -EPERM. */
CHIME_EXPORT int chime_detach(chime_task task);

/* Asks `task` to stop: from now on every suspension point of the task
 * (sleep, yield, join, and every wait of the library) returns -ECANCELED at
 * once, starting with the one it is suspended in, so that it can clean up
 * and return.  A task woken but not yet resumed sees -ECANCELED too.
 * The request is never lost and cannot be withdrawn; the task is not forced
 * to stop (code that never reaches a suspension point runs on).  A task
 * that has not started yet still starts, and sees the request at its first
 * suspension point (or by chime_cancelled()), so that it can release its
 * argument.  Cancelling a finished task, or a task twice, does nothing.
 * The handle stays owned by the caller: cancel-and-wait is
 * `chime_cancel(t); chime_join(t, &rc)`.
 * Returns 0, -EINVAL (invalid handle), -EPERM. */
CHIME_EXPORT int chime_cancel(chime_task task);

/* Task only.  Whether the calling task has been asked to stop.  False
 * outside a task. */
CHIME_EXPORT bool chime_cancelled(void);

/* Why a task was asked to stop: the first cancellation it received names
 * it (asyncio and Tokio tell a timeout from a cancel the same way). */
typedef enum chime_cancel_reason {
  CHIME_CANCEL_NONE = 0, /* it was not */
  CHIME_CANCEL_REQUEST,  /* chime_cancel of the task, of its job, or of its group */
  CHIME_CANCEL_TIMEOUT,  /* its job's timeout (chime_every_opts.timeout) */
  CHIME_CANCEL_REPLACED, /* a newer run of its job (CHIME_OVERLAP_REPLACE) */
  CHIME_CANCEL_SHUTDOWN, /* the loop's shutdown (chime_loop_shutdown, the end of chime_run) */
} chime_cancel_reason;

/* Task only.  Why the calling task was cancelled: CHIME_CANCEL_NONE if it
 * was not, or outside a task.  Inside a run of a periodic job, the run's
 * own cancellation (a timeout, a replacing run, the job's cancel). */
CHIME_EXPORT chime_cancel_reason chime_cancelled_by(void);

/* Task only.  Holds back cancellation while `on` is true: suspension points
 * behave as though the task had not been cancelled, so that cleanup can
 * wait for something (flush a buffer, say goodbye to a peer).  The request
 * is kept and takes effect again when the shield is lowered.  Shields do
 * not nest: the last call wins.  Returns the previous setting (0 or 1), or
 * -EPERM outside a task.  The shutdown's grace period still applies. */
CHIME_EXPORT int chime_shield(bool on);

/* Task only.  Suspends the calling task for `d` nanoseconds (d = 0 yields).
 * Returns 0 when the time has passed, -ECANCELED if the task was cancelled
 * (before or during the sleep), -EINVAL if d is negative or now + d
 * overflows, -EPERM outside a task. */
CHIME_EXPORT int chime_sleep(chime_ns d);

/* Task only.  Suspends the calling task until chime_now() >= when
 * (CHIME_NEVER: until cancelled).  A time already past yields once.
 * Returns 0, -ECANCELED, -EINVAL (when < 0), -EPERM. */
CHIME_EXPORT int chime_sleep_until(chime_ns when);

/* Task only.  Lets every other runnable task run once, then resumes.
 * Returns 0, -ECANCELED (without yielding), -EPERM. */
CHIME_EXPORT int chime_yield(void);

/* A handle to the calling task, for chime_cancel and naming: a borrowed
 * handle, which does not own the task (joining it returns -EDEADLK;
 * detaching it or adding it to a group, -EINVAL).  Inside a run of a
 * periodic job it names the job.  Returns the zero handle outside a
 * task. */
CHIME_EXPORT chime_task chime_self(void);

/* Names a task for reports (chime_report.names): at most 31 bytes are kept.
 * NULL clears the name.  Returns 0, -EINVAL (invalid handle), -EPERM. */
CHIME_EXPORT int chime_task_set_name(chime_task task, const char *name);

/* Whether the task has finished: 1 if it has, 0 if it has not, -EINVAL for
 * an invalid handle, -EPERM from the wrong thread. */
CHIME_EXPORT int chime_task_done(chime_task task);

/* ======================================================================== */
/* Waiting for file descriptors                                             */
/* ======================================================================== */

/* Events of chime_wait_fd. */
#define CHIME_READABLE 1u
#define CHIME_WRITABLE 2u

struct sockaddr;

/* Task only.  Suspends the calling task until `fd` is ready for one of
 * `events` (CHIME_READABLE, CHIME_WRITABLE or both), `deadline` passes
 * (CHIME_NEVER: no deadline), or the task is cancelled (cancel beats
 * deadline; a descriptor ready when its deadline has already passed is
 * ready: readiness beats a past deadline).  Returns the events that are ready (> 0; an error or a
 * hang-up counts as both), -ETIMEDOUT, -ECANCELED, -EBADF (fd is not open),
 * -EBUSY (another task already waits on fd in that direction: one reader
 * and one writer per descriptor at a time), -EINVAL (fd < 0, no or unknown
 * events, deadline < 0), -ENOMEM, -EPERM (not in a task).  A regular file
 * is always ready.  Readiness is a hint: the operation may still find
 * nothing to do (another reader took the data), so use non-blocking I/O.
 * The descriptor stays the caller's: it may be closed (and its number
 * reused) at any time, but not while a task waits on it.  Cost: one
 * epoll_ctl per wait, besides the wait itself, unless the descriptor is
 * kept (chime_keep_fd). */
CHIME_EXPORT int chime_wait_fd(int fd, unsigned events, chime_ns deadline);

/* Loop's thread.  Keeps `fd` registered with the loop from now until
 * chime_close(fd), across waits, so that a wait (chime_wait_fd, and those
 * of chime_read, chime_write_all, chime_accept) costs no system call of its
 * own: a watcher that stays started, as libuv's and libev's.  The
 * descriptor is then the loop's until chime_close: closing it with
 * close(2) instead, and waiting on another file under the same number,
 * may wait for ever.  A kept descriptor nobody waits on wakes the loop at
 * most once when it becomes ready.  The pipes of children (chime_proc_fd)
 * are kept already.  Returns 0, -EBADF (fd is not open), -EBUSY (a task
 * waits on it now), -EINVAL (fd < 0), -ENOMEM, -EPERM (no loop running
 * here). */
CHIME_EXPORT int chime_keep_fd(int fd);

/* Closes a descriptor the loop has seen, forgetting what the loop kept for
 * it.  Returns 0, -EBUSY (a task waits on it: nothing done), -EINVAL,
 * -EPERM (no loop running here), or close(2)'s errno. */
CHIME_EXPORT int chime_close(int fd);

/* Task only.  Reads up to n bytes, waiting (until `deadline`) while there is
 * nothing to read, never blocking the loop: pipes, sockets and files are
 * read with RWF_NOWAIT (Linux) whatever their mode; other descriptors
 * (terminals, or any on a kernel without it) must be in non-blocking mode.
 * A descriptor that had nothing at the last read is waited for first.
 * Returns the number of bytes read (0 at end of file), -EINVAL for a
 * descriptor that must be non-blocking and is not, buf NULL with n > 0, or
 * a negative deadline,
 * read(2)'s errno, or chime_wait_fd's.  Reads at most INT32_MAX bytes at a time.
 * A suspension point even when data is there: every 32 reads, writes and
 * accepts that did not have to wait, the task yields to the loop (a
 * cooperative budget, as Tokio's), so a task reading a fast producer does
 * not starve timers, signals and other tasks; it may then see -ECANCELED
 * (nothing was read). */
CHIME_EXPORT int chime_read(int fd, void *buf, size_t n, chime_ns deadline);

/* Task only.  Writes all n bytes, waiting while the descriptor is full, as
 * chime_read reads (RWF_NOWAIT, or a non-blocking descriptor).  Returns 0, or the first error (as chime_read); in
 * every case *written (if not NULL) tells how many bytes were written. */
CHIME_EXPORT int chime_write_all(int fd, const void *buf, size_t n, chime_ns deadline, size_t *written);

/* Task only.  Accepts a connection on a non-blocking listening socket,
 * waiting until one comes.  Returns the new descriptor (non-blocking and
 * close-on-exec; the caller owns it), or as chime_read. */
CHIME_EXPORT int chime_accept(int fd, chime_ns deadline);

/* Task only.  Connects a non-blocking socket, waiting until the connection
 * is made or fails.  Returns 0, the connection's error (-ECONNREFUSED,
 * ...), or as chime_read. */
CHIME_EXPORT int chime_connect(int fd, const struct sockaddr *addr, unsigned addrlen, chime_ns deadline);

/* ======================================================================== */
/* Threads                                                                  */
/* ======================================================================== */

/* Any thread.  Queues fn(arg) to run on the loop's thread, outside any task
 * (it may spawn, cancel and post, but must not block), and wakes the loop.
 * Calls run in the order they were posted, each exactly once, the next time
 * the loop runs; calls still queued when the loop is freed are dropped
 * without running.  The loop must outlive the call to chime_loop_post.
 * Returns 0, -EINVAL (NULL loop or fn), -ENOMEM. */
CHIME_EXPORT int chime_loop_post(chime_loop *loop, void (*fn)(void *arg), void *arg);

/* Any thread.  Starts fn(arg) as a detached task of the loop, through
 * chime_loop_post.  If the loop cannot make the task when it gets to it
 * (no memory), fn does not run.  Returns as chime_loop_post. */
CHIME_EXPORT int chime_spawn_threadsafe(chime_loop *loop, chime_fn fn, void *arg);

/* Task only.  Runs fn(arg) on a thread of the loop's pool and suspends the
 * task until it returns, storing its result in *result (which may be
 * NULL): asyncio's to_thread, for blocking calls.  The pool's threads start
 * as calls come, up to chime_loop_opts.pool_threads.  A thread cannot be
 * interrupted: a task cancelled while fn runs goes on waiting for it (arg
 * must stay valid until fn returns), then returns -ECANCELED with *result
 * set; a task already cancelled does not start fn.  While calls are out,
 * the virtual clock runs no faster than real time instead of jumping.  At shutdown, a task still waiting
 * when the grace period ends is abandoned and its call's result dropped
 * when it comes; a call that never returns keeps its thread until the
 * process exits.  Returns 0, -ECANCELED, -EINVAL (NULL fn), -EPERM (not in
 * a task), -ENOMEM, -EAGAIN (no thread could be started). */
CHIME_EXPORT int chime_to_thread(chime_fn fn, void *arg, int *result);

/* ======================================================================== */
/* Signals                                                                  */
/* ======================================================================== */

/* Task only.  Waits until the process receives one of the n signals in
 * sigs, `deadline` passes, or the task is cancelled; returns the signal's
 * number.  The loop catches a signal from the first wait for it until the
 * loop is freed or chime_signal_release: occurrences that arrive between
 * waits are kept and returned by the next waits, each occurrence to one
 * waiting task, the oldest first.  While caught, the signal's previous
 * disposition is replaced (and restored after).  Returns the signal,
 * -ETIMEDOUT, -ECANCELED, -EINVAL (NULL or empty list, negative deadline,
 * a signal that cannot be caught: SIGKILL, SIGSTOP, SIGSEGV and SIGBUS,
 * which the stack-overflow report needs, and signals 64 and above),
 * -EBUSY (64 loops already catch signals), -ENOMEM (the loop's first wait
 * for a signal could not set up its state), -EPERM. */
CHIME_EXPORT int chime_signal_wait(const int *sigs, int n, chime_ns deadline);

/* Stops the current loop catching `sig`, forgetting occurrences kept.
 * Returns 0, -EINVAL, -EPERM. */
CHIME_EXPORT int chime_signal_release(int sig);

/* ======================================================================== */
/* Child processes                                                          */
/* ======================================================================== */

/* A child process of the loop.  Opaque. */
typedef struct chime_proc chime_proc;

/* What a child's standard descriptor is. */
typedef enum chime_stdio_mode {
  CHIME_STDIO_INHERIT = 0, /* the parent's (default) */
  CHIME_STDIO_NULL,        /* /dev/null (read-write; the loop opens it once) */
  CHIME_STDIO_PIPE,        /* a pipe to the parent: chime_proc_fd gives its end, non-blocking */
  CHIME_STDIO_FILE,        /* a file: `path`, created or truncated (appended to with `append`) */
  CHIME_STDIO_FD,          /* a descriptor of the parent: `fd` (duplicated) */
} chime_stdio_mode;

typedef struct chime_stdio {
  chime_stdio_mode mode;
  const char *path; /* CHIME_STDIO_FILE */
  int fd;           /* CHIME_STDIO_FD */
  bool append;      /* CHIME_STDIO_FILE */
} chime_stdio;

/* Options of a child.  The zero value gives every default. */
typedef struct chime_proc_opts {
  const char *const *envp; /* the environment, NULL-terminated; NULL: the parent's */
  const char *cwd;         /* its working directory; NULL: the parent's */
  chime_stdio in, out, err;
  /* The child leads a new process group (its pid), so that signals reach
   * its own children too; with keep_group it stays in the parent's. */
  bool keep_group;
  /* Run as uid/gid (only root may), with the supplementary groups
   * groups[0..ngroups) (a user's, from getgrouplist(3)), or just gid when
   * ngroups is 0. */
  bool as_user;
  unsigned uid, gid;
  const unsigned *groups;
  unsigned ngroups;
  /* Signals the parent ignores stay ignored in the child (as exec keeps
   * them); with reset_signals every signal has its default action (as
   * systemd starts services).  Either way the child's signal mask is
   * empty and no handler of the parent's runs in it. */
  bool reset_signals;
  /* The child is killed (SIGKILL) when the thread that spawned it ends:
   * when the program dies, even of SIGKILL (Linux's PR_SET_PDEATHSIG; it
   * reaches the child alone, not what it starts).  Elsewhere, nothing. */
  bool die_with_parent;
  /* With set_nice, the child's nice value (-20 to 19), set before it
   * execs: a parent that raised its own priority (a scheduler whose starts
   * must not wait behind its children) starts them at their own.  A value
   * below the parent's needs the privilege to raise a priority. */
  bool set_nice;
  int nice;
} chime_proc_opts;

/* Starts a program: argv[0] is run directly (no shell), looked up in the
 * parent's PATH (as execvp does, whatever envp says) when it has no '/';
 * argv is NULL-terminated.  On success stores the
 * child in *proc (free it with chime_proc_free) and returns 0.  Errors,
 * all before any child runs: -ENOENT (no such program, in PATH or at that
 * path), -EACCES (not executable), -EINVAL (NULL or empty argv, NULL proc,
 * a FILE without a path, groups without as_user or more than NGROUPS_MAX, a nice outside -20..19), -EBADF (a bad FD),
 * -EMFILE, -EAGAIN, -ENOMEM,
 * open(2)'s errno for a FILE, or the errno of setting up the child (chdir,
 * setpriority, setuid, exec) reported back from it (so a missing cwd is -ENOENT too:
 * check it first to tell the two apart); -EPERM (no loop running here).
 * A child reaped by other code (SIGCHLD ignored, a waitpid(-1) elsewhere)
 * counts as exited, with status -1. */
CHIME_EXPORT int chime_proc_spawn(const char *const argv[], const chime_proc_opts *opts, chime_proc **proc);

/* The child's process id, or -EINVAL for NULL. */
CHIME_EXPORT int chime_proc_pid(const chime_proc *proc);

/* The parent's end of the child's standard descriptor `which` (0, 1, 2)
 * when it is a pipe (-ENOENT otherwise, -EINVAL for bad arguments).  The
 * child owns it: chime_proc_free closes it. */
CHIME_EXPORT int chime_proc_fd(const chime_proc *proc, int which);

/* Task only.  Waits until the child exits (it is reaped at once), deadline
 * passes, or the task is cancelled (while children run, a virtual clock
 * runs no faster than real time, so their deadlines stay real); stores its wait status (WIFEXITED...)
 * in *status.  Returns 0, -ETIMEDOUT, -ECANCELED, -EINVAL (NULL, a negative
 * deadline, or a child another task already waits for), -EPERM. */
CHIME_EXPORT int chime_proc_wait(chime_proc *proc, chime_ns deadline, int *status);

/* Sends sig to the child's process group (to the child alone with
 * keep_group).  Returns 0, -ESRCH (it has exited), -EINVAL, -EPERM. */
CHIME_EXPORT int chime_proc_signal(chime_proc *proc, int sig);

/* Task only.  Ends the child: SIGTERM to its group, then SIGKILL if it is
 * still running after `grace`; waits for it and stores its status.  Not
 * interrupted by a cancellation (which would leave the child running).
 * Returns 0, -EINVAL, -EPERM. */
CHIME_EXPORT int chime_proc_terminate(chime_proc *proc, chime_ns grace, int *status);

/* Frees the child, closing its pipes; a child still running is killed
 * (SIGKILL to its group) and reaped first: no zombie is left.  Does
 * nothing for NULL, from another thread than the loop's, or while a task
 * waits for the child.  Children not freed are freed with their loop. */
CHIME_EXPORT void chime_proc_free(chime_proc *proc);

/* ======================================================================== */
/* Embedding                                                                */
/* ======================================================================== */

/* A loop driven from another event loop (libuv, GLib, libevent, a poll
 * loop): watch chime_loop_fd for readability, wake after
 * chime_loop_timeout, and call chime_loop_run_once(loop, 0) on either. */

/* A descriptor that becomes readable when the loop has work (descriptors
 * ready, calls from other threads, signals).  Timers do not make it
 * readable: ask chime_loop_timeout.  Returns the descriptor (the loop owns
 * it), -EINVAL (NULL), -ENOTSUP (the poll backend has none). */
CHIME_EXPORT int chime_loop_fd(const chime_loop *loop);

/* How long the driving loop may wait before calling chime_loop_run_once:
 * 0 if the loop has work now, the time until its earliest deadline, or -1
 * if it has none (wait for chime_loop_fd only).  A virtual clock gives 0
 * while it has deadlines (it jumps).  -EINVAL for NULL. */
CHIME_EXPORT chime_ns chime_loop_timeout(chime_loop *loop);

/* Runs one round of the loop on the calling thread: waits up to `timeout`
 * (0: not at all; < 0: without bound, but not at all for a loop with no
 * task, where nothing but another thread's post could come) for work, then
 * runs what is due (timers, ready descriptors, posts, runnable tasks)
 * until it would have to wait.
 * Returns the number of tasks (periodic jobs included) still alive, or as
 * chime_loop_run. */
CHIME_EXPORT int chime_loop_run_once(chime_loop *loop, chime_ns timeout);

/* ======================================================================== */
/* Task groups                                                              */
/* ======================================================================== */

/* A set of tasks that are waited for and cancelled together: asyncio's
 * TaskGroup, libdill's bundle.  The group owns its members: they have no
 * handles of their own, and each member's record is freed as it finishes. */
typedef struct chime_group chime_group;

/* Options of a group.  The zero value gives the defaults. */
typedef struct chime_group_opts {
  /* When a member returns a negative result, cancel every other member
   * (asyncio.TaskGroup's behaviour).  Default: false. */
  bool cancel_on_error;
} chime_group_opts;

/* Creates an empty group on the current loop.  `opts` may be NULL.  The
 * caller owns *group and frees it with chime_group_free.
 * Returns 0, -EINVAL (NULL group), -EPERM (no loop running), -ENOMEM. */
CHIME_EXPORT int chime_group_new(const chime_group_opts *opts, chime_group **group);

/* Spawns fn(arg) as a member of the group (as chime_spawn).  Returns 0,
 * -EINVAL (NULL group or fn), -EPERM, -ENOMEM. */
CHIME_EXPORT int chime_group_spawn(chime_group *group, chime_fn fn, void *arg);

/* Moves an owned handle into the group: from now on the group waits for and
 * frees the task, and the handle is invalid.  A task that has already
 * finished counts at once.  Returns 0, -EINVAL (NULL group, invalid handle,
 * a task already being joined), -EPERM. */
CHIME_EXPORT int chime_group_add(chime_group *group, chime_task task);

/* The number of members still alive; 0 for NULL. */
CHIME_EXPORT size_t chime_group_size(const chime_group *group);

/* Task only.  Waits until every member has finished, or `deadline` passes
 * (CHIME_NEVER: no deadline).  If `first_error` is not NULL it receives the
 * first negative result any member returned since the group was created or
 * last joined successfully, or 0.
 * Returns 0 (all finished), -ETIMEDOUT, -ECANCELED (the caller was
 * cancelled: members go on; a cancelled caller still waits for members of a
 * cancelled group, as chime_join does), -EINVAL (NULL group or negative
 * deadline, or a group another task is already joining), -EPERM. */
CHIME_EXPORT int chime_group_join(chime_group *group, chime_ns deadline, int *first_error);

/* Cancels every member, present and future: tasks added afterwards start
 * cancelled.  Returns 0, -EINVAL, -EPERM. */
CHIME_EXPORT int chime_group_cancel(chime_group *group);

/* Frees an empty group.  Returns 0, -EINVAL (NULL), -EPERM, -EBUSY if
 * members are still alive (cancel and join them first). */
CHIME_EXPORT int chime_group_free(chime_group *group);

/* ======================================================================== */
/* Periodic jobs                                                            */
/* ======================================================================== */

/* A periodic job runs target(arg) again and again in the background of the
 * loop: the tutorial's periodic() task, with every decision it leaves
 * implicit made explicit.  A job is a task: chime_every gives a chime_task
 * handle, and chime_cancel, chime_join, chime_detach, chime_task_done,
 * chime_task_set_name and task groups work on it as on any task.
 *
 * Each run calls the target afresh, as a task of its own for as long as it
 * runs: it may suspend (sleep, join, wait for I/O), it sees -ECANCELED when
 * the job is cancelled or the run times out, and chime_self() inside it
 * names the job.  Between runs a job holds no stack: 64 bytes from its
 * creation (and 4 in the timer wheel), 80 more from its first tick (its
 * statistics).
 *
 * Schedule.  Ticks fall on a grid: first, first + interval, first + 2 *
 * interval, ... (fixed rate), never computed from "now", so there is no
 * drift; or each tick is `interval` after the previous run returned (fixed
 * delay: the tutorial's exact semantics, no grid).  A run starts at its tick
 * plus its jitter; its lateness is how much later than that it started.
 *
 * Every tick that falls due is accounted for exactly once: it starts a run,
 * or it is skipped and counted (stats: skipped_overlap, skipped_missed,
 * skipped_backoff, skipped_vetoed), or it is the one tick waiting to run
 * (queued or being caught up).
 *
 * A tick is an exact instant: for an interval job an instant of
 * chime_now()'s clock (first + k * interval), for a calendar job an
 * instant of the wall clock (chime_wall_now(), the very second the
 * expression names).  That instant, not a conversion of it, is what
 * chime_tick, chime_current_run and the job's events report.
 *
 * Events.  A job may be given a callback (opts.on_event) that hears what
 * happens to it, as it happens: a tick falls due (CHIME_EVENT_TICK), a run
 * starts (CHIME_EVENT_START) and ends with an outcome (CHIME_EVENT_END),
 * ticks are skipped and why (CHIME_EVENT_SKIP: one event for a run of
 * ticks skipped together, with their count, never one per tick), the job
 * ends (CHIME_EVENT_DONE, with its final statistics and join result).
 * Events come on the loop's thread, in the order things happened, each
 * once, when the library is not in the middle of a change: the callback
 * may cancel, stop or trigger this job or others, spawn tasks, read
 * statistics.  It must not suspend (suspension points called from it
 * return -EPERM) and should be quick: it runs on the path of the job's
 * runs.  A job without a callback pays nothing for events.
 *
 * The veto.  A job may also be given a function (opts.veto) asked before
 * each tick's run: it allows it (returns 0) or skips it (> 0, or a
 * negative error: counted in skipped_vetoed, with a CHIME_EVENT_SKIP of
 * reason CHIME_SKIP_VETOED whose result is what the veto returned).  It is
 * called in the run's own task and may suspend to obtain its answer (ask
 * a database whether this process may run this tick): the tick is held
 * meanwhile, without blocking the loop or the job's other ticks.  A hold
 * ends at opts.veto_timeout after it began or at the job's next tick,
 * whichever comes first: the veto's suspension point then returns
 * -ECANCELED, chime_cancelled_by() says CHIME_CANCEL_TIMEOUT, and the tick
 * is skipped as vetoed whatever the veto returns (result -ETIMEDOUT).
 * Overlap is decided before the veto; a held tick is not a run going.
 */

struct chime_job_stats;

/* What an event is about. */
typedef enum chime_event_type {
  CHIME_EVENT_TICK = 1, /* a tick fell due; its fate (run, skip) is decided next */
  CHIME_EVENT_START,    /* a run starts: the target is about to be called */
  CHIME_EVENT_END,      /* a run has returned (or was abandoned at shutdown) */
  CHIME_EVENT_SKIP,     /* ticks were skipped (reason, count) */
  CHIME_EVENT_DONE,     /* the job has ended: its last event */
} chime_event_type;

/* How a run ended.  A run that was cancelled is named by the cancellation,
 * whatever it returned. */
typedef enum chime_outcome {
  CHIME_OUTCOME_OK = 0,    /* returned >= 0 */
  CHIME_OUTCOME_ERROR,     /* returned a negative result (the event's result) */
  CHIME_OUTCOME_TIMEOUT,   /* cancelled by opts.timeout */
  CHIME_OUTCOME_CANCELLED, /* cancelled by a request: chime_cancel of the job or its group */
  CHIME_OUTCOME_REPLACED,  /* cancelled by a newer run (CHIME_OVERLAP_REPLACE) */
  CHIME_OUTCOME_SHUTDOWN,  /* cancelled by the loop's shutdown */
  CHIME_OUTCOME_ABANDONED, /* still going when the shutdown's grace ended: it never returned */
} chime_outcome;

/* Why ticks were skipped. */
typedef enum chime_skip_reason {
  CHIME_SKIP_OVERLAP = 1, /* a run was going (the overlap policy) */
  CHIME_SKIP_MISSED,      /* the loop noticed them late (the missed policy) */
  CHIME_SKIP_BACKOFF,     /* the job was backing off after errors */
  CHIME_SKIP_VETOED,      /* the veto said no, or its hold ran out */
} chime_skip_reason;

/* An event of a job.  Fields a type does not name are 0. */
typedef struct chime_event {
  chime_event_type type;
  chime_task job; /* borrowed (as chime_self's): cancel, stop, trigger, stats, not join */
  void *arg;      /* the job's argument */
  /* The tick (for SKIP, the first tick skipped), exact: on chime_now()'s
   * clock for an interval job, on the wall clock for a calendar job. */
  chime_ns tick;
  /* The same instant on the wall clock: `tick` itself for a calendar job;
   * for an interval job, `tick` moved by the wall clock's offset now. */
  chime_ns wall;
  bool triggered; /* the tick came from chime_every_trigger */
  uint64_t run;   /* START, END: the run's number in the job, 1, 2, ... (its count of runs) */
  chime_ns late;  /* START, END: how late the run started (its start minus tick + jitter) */
  chime_ns duration;      /* END: how long it ran */
  chime_outcome outcome;  /* END */
  int result;             /* END: the target's return; SKIP (vetoed): the veto's; DONE: the job's join result */
  chime_skip_reason reason; /* SKIP */
  uint64_t count;           /* SKIP: how many ticks (>= 1) */
  chime_ns last, last_wall; /* SKIP: the last tick skipped (as tick and wall) */
  const struct chime_job_stats *stats; /* DONE: the final statistics, valid during the call */
} chime_event;

/* How ticks are spaced. */
typedef enum chime_schedule {
  CHIME_FIXED_RATE = 0, /* on the grid first + k * interval (default) */
  CHIME_FIXED_DELAY,    /* interval after the previous run returned */
} chime_schedule;

/* When the first tick is. */
typedef enum chime_start {
  CHIME_START_AFTER_INTERVAL = 0, /* one interval after chime_every (the tutorial's; default) */
  CHIME_START_NOW,                /* at once */
  CHIME_START_AT,                 /* at opts.start_at, an instant of chime_now(); a past instant
                                     anchors the grid there, and the missed policy applies */
} chime_start;

/* What happens to ticks the loop noticed late: a tick whose run starts an
 * interval or more after it, because the loop was blocked, the process was
 * stopped or the machine slept.  The tick being handled runs, late; the
 * grid points passed meanwhile are: */
typedef enum chime_missed {
  CHIME_MISSED_SKIP = 0, /* dropped and counted; the next run is on the next grid point (default) */
  CHIME_MISSED_BURST,    /* run one after another, each as soon as the previous returns, at most
                            opts.max_catch_up of them; the rest are dropped and counted */
  CHIME_MISSED_DELAY,    /* dropped and counted; the grid restarts: the next tick is one interval
                            after this late run started */
} chime_missed;

/* What happens to a tick that falls due while a run of the job is still
 * going (it overran its interval).  Kubernetes' Forbid, Allow, Replace. */
typedef enum chime_overlap {
  CHIME_OVERLAP_SKIP = 0, /* the tick is dropped and counted (default: runs never overlap) */
  CHIME_OVERLAP_QUEUE,    /* the tick waits and runs as soon as the run returns; at most one
                             waits, later ones are dropped and counted */
  CHIME_OVERLAP_ALLOW,    /* the tick starts another run, up to opts.max_concurrent at once;
                             beyond that it is dropped and counted */
  CHIME_OVERLAP_REPLACE,  /* the running run is cancelled (it sees -ECANCELED) and the tick
                             starts a new run at once, while the old one cleans up */
} chime_overlap;

/* What a run that returns a negative result does to the job. */
typedef enum chime_on_error {
  CHIME_ERROR_CONTINUE = 0, /* nothing: the next tick runs as planned (default) */
  CHIME_ERROR_STOP,         /* the job stops: no more ticks; its join result is the error */
  CHIME_ERROR_BACKOFF,      /* the next run starts no earlier than backoff_base after the failed
                               run returned, doubling with each failure in a row up to
                               backoff_max; ticks in between are skipped and counted; a run that
                               succeeds resets it */
} chime_on_error;

/* Options of a periodic job.  The zero value gives every default; every
 * duration is in nanoseconds and must not be negative. */
typedef struct chime_every_opts {
  chime_schedule schedule; /* default: fixed rate */
  chime_start start;       /* default: one interval from now */
  chime_ns start_at;       /* the first tick, with CHIME_START_AT (>= 0) */
  chime_missed missed;     /* default: skip */
  uint32_t max_catch_up;   /* CHIME_MISSED_BURST: catch-up runs in a row, 1 to 65535 (required) */
  chime_overlap overlap;   /* default: skip */
  uint32_t max_concurrent; /* CHIME_OVERLAP_ALLOW: runs at once, 1 to 255 (required) */
  /* A random delay in [0, jitter] added to each run's tick, fresh for
   * every tick (systemd's RandomizedDelaySec).  It never makes a run early
   * and never moves the grid. */
  chime_ns jitter;
  /* A stable offset in [0, spread] added to the whole grid, derived from
   * `key` (systemd's FixedRandomDelay): jobs with the same schedule and
   * different keys (put the host or instance name in it) spread out, and
   * one key always gets the same offset.  Needs a key. */
  chime_ns spread;
  const char *key; /* copied only while chime_every runs */
  /* A run still going `timeout` after it started is cancelled (it sees
   * -ECANCELED at its next suspension point) and counted as a timeout and
   * an error.  0: no timeout. */
  chime_ns timeout;
  chime_on_error on_error; /* default: continue */
  chime_ns backoff_base;   /* CHIME_ERROR_BACKOFF: the first delay (> 0, required) */
  chime_ns backoff_max;    /* CHIME_ERROR_BACKOFF: the cap (>= backoff_base, required) */
  uint64_t max_runs;       /* stop after starting this many runs of its ticks (triggered runs are
                              not counted); 0: no limit */
  chime_ns until;          /* stop at this instant of chime_now(): no run starts at or after it;
                              0: no limit; a past instant is refused */
  /* How late a run may start (sd-event's accuracy): the loop may wake once
   * for many jobs by starting a run at a common instant within [tick,
   * tick + window].  0: precise (default). */
  chime_ns window;
  /* Called with arg once, when the job has ended (after its last run
   * returned); also if the job is abandoned at shutdown.  NULL: arg stays
   * the caller's.  Not called if chime_every fails. */
  void (*dtor)(void *arg);
  const char *name; /* for reports (chime_report.names), at most 31 bytes kept; NULL: none */
  /* chime_cron only: the time zone of the expression, an IANA name
   * ("Europe/Berlin"); NULL: the process's local zone.  Loaded once per
   * loop and name.  chime_every refuses it. */
  const char *tz;
  /* Hears the job's events (see above); NULL: none. */
  void (*on_event)(const chime_event *ev);
  /* Asked before each tick's run, with a CHIME_EVENT_TICK (see above);
   * NULL: every tick may run. */
  int (*veto)(const chime_event *tick);
  /* How long the veto may hold a tick; 0: until the job's next tick.
   * Needs a veto. */
  chime_ns veto_timeout;
} chime_every_opts;

/* Starts a periodic job on the current loop: target(arg), every `interval`,
 * as `opts` says (NULL: every default).  Stores the job's handle in *job,
 * or detaches the job if job is NULL.  The job runs until it is cancelled,
 * stops by itself (max_runs, until, CHIME_ERROR_STOP), or the loop shuts
 * down.  Its join result is 0 when it stopped by a limit, -ECANCELED when
 * cancelled, or the error of the run that stopped it.
 * Returns 0; -EINVAL for a NULL target, an interval <= 0, a duration that
 * is negative or that overflows when added to the job's deadlines (more
 * than about 73 years), an unknown enum value, or contradictory options (a
 * policy's parameter missing, or given without its policy; fixed delay with
 * a missed or overlap policy; a spread without a key; `until` not in the
 * future; a veto_timeout without a veto); -EPERM (no loop running on this
 * thread); -ENOMEM.  After a refusal, chime_every_error() says which field
 * and why. */
CHIME_EXPORT int chime_every(chime_ns interval, chime_fn target, void *arg, const chime_every_opts *opts,
                             chime_task *job);

/* Why the last chime_every or chime_cron called on this thread refused its
 * arguments: "FIELD: why", naming the argument or option field
 * ("max_concurrent: needed with CHIME_OVERLAP_ALLOW, 1 to 255", "tz:
 * unknown time zone \"Mars/Olympus\"", "expr: minute field: 61 is out of
 * range 0-59 (column 1)"); "" after a call that succeeded or refused for
 * another reason than its arguments (-ENOMEM, -EPERM).  A static string of
 * this thread, valid until its next such call.  Never NULL. */
CHIME_EXPORT const char *chime_every_error(void);

/* Stops a periodic or calendar job's schedule, as reaching max_runs does:
 * no tick after this call starts a run (a queued or catch-up tick is
 * dropped), while a run in progress goes on to its end, uncancelled (cancel
 * the job to stop it too).  The job then ends; its join result is 0, or
 * what had already stopped it (an error, -ECANCELED).  Stopping a job that
 * is stopping or has ended does nothing.  From a task of the job's loop or
 * its thread.  Returns 0; -EINVAL (not a job's handle); -EPERM. */
CHIME_EXPORT int chime_every_stop(chime_task job);

/* Inside a run of a periodic job (or its veto): stores in *tick the tick
 * the run is for, its exact scheduled instant before jitter and
 * coalescing (on chime_now()'s clock for an interval job, on the wall
 * clock for a calendar job), so that a target can tell which period it
 * serves.  Returns 0, or -EPERM outside a run of a job (the output is
 * untouched). */
CHIME_EXPORT int chime_tick(chime_ns *tick);

/* What a run is for: the fields of its CHIME_EVENT_START. */
typedef struct chime_run_info {
  chime_ns tick;  /* as chime_tick */
  chime_ns wall;  /* the tick on the wall clock (exact for a calendar job) */
  chime_ns late;  /* how late the run started (0 in the veto: it has not) */
  uint64_t run;   /* its number in the job (0 in the veto) */
  bool triggered; /* it came from chime_every_trigger */
} chime_run_info;

/* Inside a run of a periodic job (or its veto): fills *info.  Returns 0,
 * -EINVAL (NULL info), or -EPERM outside a run. */
CHIME_EXPORT int chime_current_run(chime_run_info *info);

/* Starts a run of the job for `tick` now, as though that tick had just
 * fallen due, under the job's overlap policy (skip: skipped if a run is
 * going; queue: waits for the runs going, in turn with a queued tick;
 * allow: up to max_concurrent; replace: the runs going are cancelled) and
 * its veto, with its timeout and error policy: a manual "run now", or the
 * catch-up of a tick missed while the program was down.  The job's own
 * schedule is not moved, and max_runs does not count triggered runs.
 * `tick` is on the job's clock (chime_now()'s for an interval job, the
 * wall clock's for a calendar job) and is reported as the run's tick; it
 * may lie in the past, even before the clock's zero.  Events say what
 * became of it (their `triggered` is true).  Returns 0; -EINVAL (not a
 * job's handle, a tick more than 2^62 ns from the clock's zero); -ESRCH
 * (the job is stopping or has ended); -EPERM; -ENOMEM. */
CHIME_EXPORT int chime_every_trigger(chime_task job, chime_ns tick);

/* What a job has done so far.  Reading it never changes the schedule. */
typedef struct chime_job_stats {
  uint64_t runs;            /* runs started */
  uint64_t triggered;       /* of them, runs of triggered ticks (chime_every_trigger) */
  uint64_t errors;          /* runs that returned a negative result (timeouts included) */
  uint64_t timeouts;        /* runs cancelled by opts.timeout */
  uint64_t skipped_overlap; /* ticks dropped because a run was still going */
  uint64_t skipped_missed;  /* ticks dropped because the loop noticed them late (a calendar
                               job counts at most 100,000 per jump of the wall clock) */
  uint64_t skipped_backoff; /* ticks dropped while backing off after errors */
  uint64_t skipped_vetoed;  /* ticks the veto refused (or held too long) */
  chime_ns last_late;       /* lateness of the latest run: its start minus its tick (+ jitter) */
  chime_ns max_late;        /* the largest lateness so far */
  chime_ns last_duration;   /* how long the latest finished run took */
  chime_ns max_duration;    /* the longest run so far */
  chime_ns next;            /* when the next run is planned (tick + jitter), or CHIME_NEVER when
                               none is: the job has stopped, or has a fixed delay and a run is
                               going */
  chime_ns next_tick;       /* the next tick itself, exact, on the job's clock (CHIME_NEVER: none) */
  chime_ns next_wall;       /* the planned next run on the wall clock: exact for a calendar job
                               (next_tick + jitter); CHIME_NEVER: none */
  uint32_t running;         /* runs going now */
  bool done;                /* the job has ended */
} chime_job_stats;

/* Fills *stats for a periodic job.  Returns 0, -EINVAL (NULL stats, or the
 * handle of something else than a periodic job), -EPERM. */
CHIME_EXPORT int chime_every_stats(chime_task job, chime_job_stats *stats);

/* Task only.  chime_join_until for a periodic job that also gives its
 * final statistics: on success stores the join result in *result and the
 * statistics in *stats (either may be NULL) and consumes the handle.
 * Returns as chime_join_until, and -EINVAL for a handle that is not a
 * job's. */
CHIME_EXPORT int chime_every_join(chime_task job, chime_ns deadline, int *result, chime_job_stats *stats);

/* ======================================================================== */
/* Calendar schedules                                                       */
/* ======================================================================== */

/* Calendar schedules run on the wall clock: instants are chime_ns counted
 * from the Unix epoch (1970-01-01T00:00:00Z), leap seconds ignored, as
 * CLOCK_REALTIME counts them; local times come from IANA time zones read
 * from the system's zone database (TZif files under $TZDIR or
 * /usr/share/zoneinfo).
 *
 * Expressions: five fields, minute hour day-of-month month day-of-week;
 * six, with a leading seconds field (chime's own syntax) or a trailing year
 * field (the crontab syntax, below); or seven, seconds first and year last.
 * Each field is `*`, a number, a range `a-b`, a step (`a-b/n`, `a/n`, or
 * `*` followed by `/n`), or a list of those separated by commas.  Months
 * may be named jan..dec, days of the week sun..sat (0 and 7 are both
 * Sunday); names are case-insensitive.  In day-of-week, `*` and `a/n` run
 * to 6 (Saturday), and sun ending a range is 7, so fri-sun works.  Years
 * are 1970-2099 (`*`: every year, those outside too).  When both
 * day-of-month and day-of-week are restricted (neither starts with `*`), a
 * day matches if either does (the classic cron rule).  Macros, in any
 * case: @yearly (@annually), @monthly, @weekly, @daily (@midnight),
 * @hourly, and @every DURATION (an interval, in the form
 * chime_parse_duration reads).
 *
 * Days by the month's shape, as Quartz and cronexpr (supercronic) read
 * them, each a list item of its own (no range or step), in any case:
 *  - day-of-month `L`: the month's last day; `L-n` (n 0-30): n days before
 *    it (none in a month shorter than n + 1 days);
 *  - day-of-month `dW` (d 1-31): the weekday (Monday to Friday) nearest
 *    the d-th, within the month: a Saturday moves to the Friday before
 *    (to Monday the 3rd for the 1st), a Sunday to the Monday after (to the
 *    Friday before for the month's last day); no run in a month without a
 *    d-th day, as plain d; `LW`: the month's last weekday;
 *  - day-of-week `wL` (w 0-7 or a name: 5L, friL): the month's last w;
 *    `w#k` (k 1-5): its k-th w (5#1 the first Friday; none in a month
 *    without a fifth).
 * They count as restricting their field for the classic rule: "0 0 L * 5L"
 * runs on the last day and on the last Friday.  A day they name is a local
 * date like any other: the daylight saving rules below apply to its times.
 * L, W and # anywhere else, `L` alone in day-of-week, `32W`, `L-31`,
 * `5#6` and `5#0` are refused with their column.
 *
 * The number of fields, one rule: five fields mean the same everywhere;
 * seven are seconds first and year last everywhere; six depend on the
 * syntax the expression is read in (chime_cron_syntax), and nothing else:
 * chime's own (chime_cron_parse, chime_cron, the chime command's INI
 * `schedule`) puts seconds first, the crontab syntax (a crontab file read
 * by the chime command, as supercronic reads one) puts a year last.  So
 * `0/5 * * * * *` is every 5 seconds in the first and every 5 minutes in
 * the second: an expression moved between the two must be read again.
 * In chime's syntax a six-field expression whose last field is a year
 * (2026) is refused, never read as a weekday.
 *
 * Daylight saving time, the rules:
 *  - A local time that does not exist (the clock jumps forward over it)
 *    fires once, at the first instant after the gap.
 *  - A local time that occurs twice (the clock falls back over it) fires
 *    once, at its first occurrence ...
 *  - ... except in a schedule whose hour field is `*` (or names every
 *    hour another way, as 0-23 does): it runs at every real hour, so a
 *    fixed minute fires in both occurrences of the hour that repeats (and
 *    not at all in the hour that is skipped).
 * The fire times of an expression in a zone are one fixed set: a run skipped
 * as a repeat stays skipped whatever `after` is, so chime_cron_next_n never
 * repeats nor misses one.
 */
typedef struct chime_cron_expr chime_cron_expr;

/* A time zone, loaded once and used for any number of computations.
 * Immutable, so it may be shared between threads. */
typedef struct chime_tz chime_tz;

/* Where an expression is wrong, and why. */
typedef struct chime_cron_error {
  int column;        /* 1-based column of the offending text */
  char message[160]; /* e.g. "minute field: 61 is out of range 0-59" */
} chime_cron_error;

/* The wall clock: CLOCK_REALTIME in nanoseconds (the virtual clock's wall
 * side on a virtual-clock loop running on this thread). */
CHIME_EXPORT chime_ns chime_wall_now(void);

/* Sets the wall clock of the virtual-clock loop running on this thread to
 * `t`, a jump forward or back, as an operator or an NTP step would set the
 * system's; the monotonic clock does not move.  Calendar jobs recompute
 * their next runs (see chime_cron).  Returns 0; -EINVAL (t < 0, or a loop
 * on the real clock); -EPERM (no loop running on this thread). */
CHIME_EXPORT int chime_wall_set(chime_ns t);

/* Compiles a cron expression.  On success stores it in *cron (the caller
 * frees it with chime_cron_free) and returns 0.  On error returns -EINVAL
 * and, if err is not NULL, fills it (the field, the column, what was
 * expected); an expression that can never match (such as "0 0 30 2 *") is
 * an error too.  -ENOMEM.  Thread-safe; needs no loop. */
CHIME_EXPORT int chime_cron_parse(const char *expr, chime_cron_expr **cron, chime_cron_error *err);

/* How a six-field expression is read (see "The number of fields" above). */
typedef enum chime_cron_syntax {
  CHIME_CRON_CHIME = 0, /* chime's own: six fields are seconds first */
  CHIME_CRON_CRONTAB,   /* a crontab's, as supercronic: six fields are year last */
} chime_cron_syntax;

/* chime_cron_parse in the given syntax: chime_cron_parse is
 * chime_cron_parse_syntax(expr, CHIME_CRON_CHIME, cron, err).  The
 * expression compiled is the same kind of object whatever the syntax, and
 * chime_cron_next treats it alike.  Returns as chime_cron_parse; -EINVAL
 * also for a syntax not in the enum. */
CHIME_EXPORT int chime_cron_parse_syntax(const char *expr, chime_cron_syntax syntax, chime_cron_expr **cron,
                                         chime_cron_error *err);

/* Frees a compiled expression; NULL does nothing. */
CHIME_EXPORT void chime_cron_free(chime_cron_expr *cron);

/* For an @every expression: stores its interval and returns 0; -EINVAL for
 * any other expression. */
CHIME_EXPORT int chime_cron_interval(const chime_cron_expr *cron, chime_ns *interval);

/* Loads a time zone by IANA name ("Europe/Berlin", "UTC"); NULL or ""
 * means the process's local zone ($TZ if set, else /etc/localtime).
 * $TZ may be a zone name or an absolute path, either after an optional
 * ':', or a POSIX TZ string ("EST5EDT,M3.2.0,M11.1.0"; a daylight name
 * without rules gets the US rules); an empty $TZ counts as unset.
 * Files with leap seconds ("right/...") are read as CLOCK_REALTIME counts,
 * without them.
 * Returns 0 and stores it in *tz (free it with chime_tz_free); -ENOENT for
 * a zone the database does not have (never a silent UTC); -EINVAL for a
 * malformed name (".." or a path, characters other than letters, digits
 * and "_+-/") or a corrupt file; -ENOMEM; the errno of a failed open or
 * read (-EMFILE, -EIO, -EACCES, ...). */
CHIME_EXPORT int chime_tz_load(const char *name, chime_tz **tz);
CHIME_EXPORT void chime_tz_free(chime_tz *tz);

/* The zone's name as given to chime_tz_load ("localtime" for the local
 * zone). */
CHIME_EXPORT const char *chime_tz_name(const chime_tz *tz);

/* Formats an instant as local time in the zone: "2026-03-29 03:00:00
 * CEST" (the second that holds it: fractions are dropped, towards the
 * past).  Writes at most `size` bytes; returns the length of the whole
 * text (as snprintf), or -EINVAL (NULL tz or buf, or size 0). */
CHIME_EXPORT int chime_tz_format(const chime_tz *tz, chime_ns t, char *buf, size_t size);

/* The first instant strictly after `after` at which the expression fires
 * in zone tz, by the rules above (always a whole second); for @every,
 * after + interval.  Returns 0 and stores it in *next; -EINVAL (NULL
 * arguments); -ERANGE if it would be beyond chime_ns's range (past
 * 2262-04-11 23:47:16 UTC, so in practice beyond the year 2261).  Costs
 * microseconds at most, and allocates nothing. */
CHIME_EXPORT int chime_cron_next(const chime_cron_expr *cron, const chime_tz *tz, chime_ns after, chime_ns *next);

/* The next n fire times after `after` (as chime_cron_next, repeatedly) in
 * times[0..n): what `systemd-analyze calendar --iterations=n` shows.
 * Returns how many were stored (fewer than n only near the end of
 * chime_ns's range), or -EINVAL (NULL arguments, n above INT_MAX). */
CHIME_EXPORT int chime_cron_next_n(const chime_cron_expr *cron, const chime_tz *tz, chime_ns after, chime_ns *times,
                                   size_t n);

/* Starts a calendar job on the current loop: target(arg) at each instant
 * the cron expression `expr` gives in zone opts->tz (the rules above), and
 * in every other way a periodic job as chime_every makes: overlap, missed,
 * jitter, spread, window, timeout, on_error, max_runs, until, dtor, name,
 * statistics, events, veto, triggers, chime_tick (the scheduled instant,
 * exact, on the wall clock),
 * cancel-and-wait, groups.  `schedule`, `start` and `start_at` do not
 * apply and must be zero.  An "@every D" expression makes an interval job,
 * chime_every(D, ...), with the same options (opts->tz is checked, and then
 * means nothing: an interval counts time, not the clock).
 *
 * Calendar ticks follow the wall clock: when it is set forward or back (an
 * NTP step, an operator), the job computes its next tick afresh from the
 * new time instead of firing a burst or sleeping for an hour; ticks a jump
 * forward passed over are missed ticks, handled by opts.missed (skip: the
 * first of them runs at once, late, the others are counted as missed;
 * burst: up to max_catch_up more run back to back).  Where Linux's timerfd
 * is not there to tell of a jump, a jump forward is noticed at the next
 * tick.  A tick that comes early because the wall clock was slewed waits
 * for the rest.  On a
 * virtual-clock loop the wall clock is the virtual one (chime_wall_set).
 * Returns 0; -EINVAL for an expression chime_cron_parse refuses (it tells
 * why), a NULL expr or target, options as chime_every refuses them, or
 * options that do not apply (schedule, start, start_at; missed =
 * CHIME_MISSED_DELAY; a spread, which needs a per-job offset: use jitter);
 * -ENOENT for a zone the system does not have (chime_tz_load's errors);
 * -ERANGE if the expression fires no more before chime_ns ends; -EPERM (no
 * loop running on this thread); -ENOMEM; -EMFILE (the timerfd that watches
 * the wall clock). */
CHIME_EXPORT int chime_cron(const char *expr, chime_fn target, void *arg, const chime_every_opts *opts,
                            chime_task *job);

/* ======================================================================== */
/* Running a program                                                        */
/* ======================================================================== */

/* Options of chime_run.  The zero value gives every default. */
typedef struct chime_run_opts {
  chime_loop_opts loop; /* options of the loop chime_run creates */
  /* How long the shutdown waits for cancelled tasks to finish, on the loop's
   * clock; 0 (the default) waits without bound, as asyncio.run does. */
  chime_ns grace;
  /* Make SIGINT and SIGTERM cancel the main task while chime_run runs
   * (asyncio.run's behaviour for SIGINT); a second such signal terminates
   * the process at once.  The previous dispositions are restored when
   * chime_run returns.  Default: false (signals keep their dispositions). */
  bool cancel_on_signal;
} chime_run_opts;

/* Runs a program: creates a loop, runs fn(arg) as its main task until it
 * returns, then shuts the loop down (every task still alive is cancelled
 * and waited for, within the grace period), frees the loop and returns:
 * asyncio.run.  `opts` and `report` may be NULL.
 * Returns the main task's result, or a negative errno if the loop could not
 * be set up (fn then never ran, and report->result is 0): -EINVAL (NULL fn,
 * bad options), -EBUSY (a loop already runs on this thread), -ENOMEM, and
 * the errnos of chime_loop_new. */
CHIME_EXPORT int chime_run(chime_fn fn, void *arg, const chime_run_opts *opts, chime_report *report);

#ifdef __cplusplus
}
#endif
#endif /* CHIME_H */
