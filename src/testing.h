/* testing.h - hooks that the tests use to make fallible calls fail and to
 * count live allocations.  They exist only in builds with CHIME_TESTING
 * (the `make test` build); nothing here is installed. */
#ifndef CHIME_TESTING_H
#define CHIME_TESTING_H

#include <stdbool.h>

/* After `n` more fallible calls (allocations and system calls that can
 * fail) succeed, make the next one fail; with `sticky`, every one after it
 * fails too.  n < 0 turns failures off. */
void chime__test_fail_after(long n, bool sticky);
/* Fallible calls made since the process started. */
long chime__test_calls(void);
/* Failures injected since the process started. */
long chime__test_failures(void);
/* Allocations made by the library and not yet freed. */
long chime__test_live_allocs(void);
/* Threads of every loop's pool that have not exited yet. */
long chime__test_pool_threads(void);
/* Children are awaited through SIGCHLD, as without pidfds (on) or through
 * pidfds where the kernel has them (off, the default). */
void chime__test_no_pidfd(bool on);
/* Wall-clock jumps the loops' timerfds have told of. */
long chime__test_wall_jumps(void);
/* Waits of every loop's backend (epoll_wait, poll) since the process
 * started. */
long chime__test_backend_waits(void);
/* The timeout (ns, < 0: none) of the latest of those waits. */
long long chime__test_last_wait_timeout(void);
/* Stacks of the loop running on this thread that tasks hold now (mapped
 * and not in the pool). */
long chime__test_stacks_in_use(void);

#endif
