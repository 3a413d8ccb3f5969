/* awaits.h - the awaits layer (descriptors, signals, the thread pool) and
 * the children layer above it (child processes): what tasks wait for
 * besides time and each other.
 *
 * Each is a module of the loop (loop.h) with its own state, attached the
 * first time a task of the loop uses it, and each suspension registers
 * how it is undone (struct chime__wait).  Child processes use the other
 * two: their pipes are descriptors, and without pidfds SIGCHLD tells of
 * their exits.
 */
#ifndef CHIME_AWAITS_H
#define CHIME_AWAITS_H

#include "loop.h"

/* ---- descriptors (io.c) ---------------------------------------------------- */

/* Closes a descriptor the library opened (a child's pipe): tasks waiting
 * on it see -EBADF. */
void chime__fd_close(chime_loop *loop, int fd);
/* chime_keep_fd on `loop`; `flags`: the descriptor's status flags
 * (F_GETFL) where the caller knows them (a pipe it made), or -1. */
int chime__fd_keep(chime_loop *loop, int fd, int flags);

/* ---- signals (signal.c) ----------------------------------------------------- */

/* chime_run: SIGINT and SIGTERM cancel the main task (a second one ends
 * the process at once).  Returns 0 or a negative errno. */
int chime__signals_catch(chime_loop *loop);
/* The signal that cancelled the main task, or 0. */
int chime__signals_main(const chime_loop *loop);
/* Children without pidfds: SIGCHLD calls fn(loop) each round it came.
 * Returns 0 or a negative errno. */
int chime__signals_on_sigchld(chime_loop *loop, void (*fn)(chime_loop *loop));

#define CHIME__NSIG 64 /* signals 1..63 */

#endif
