/* boost.h - the daemon's loop above its jobs.
 *
 * Under load, a start must not wait for a CPU behind the children chime
 * started a moment ago: where chime may raise its priority (root, or an
 * RLIMIT_NICE that allows it), the loop's thread runs BOOST nice levels
 * above chime's own, and every child (a run, a hook, a mail) is started
 * at chime's own nice value, as it would have been.  Threads the loop
 * starts afterwards (the history's) share its level.  Without the
 * privilege nothing changes. */
#ifndef CHIME_CLI_BOOST_H
#define CHIME_CLI_BOOST_H

#include <chime.h>

#define BOOST 10 /* nice levels */

/* Raises the calling thread's priority; returns the levels it took (0:
 * none), and the nice values in *loop and *jobs. */
int boost_loop(int *loop, int *jobs);
/* Gives po chime's own nice value once the loop is boosted. */
void boost_child(chime_proc_opts *po);

#endif
