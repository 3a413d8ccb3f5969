/* boost.c - the daemon's loop above its jobs (boost.h). */
#include "boost.h"

#include <errno.h>
#include <stdbool.h>
#include <sys/resource.h>

static bool boosted;
static int own; /* chime's nice value, the children's */

int boost_loop(int *loop, int *jobs) {
  errno = 0;
  int now = getpriority(PRIO_PROCESS, 0); /* on Linux, the calling thread's */
  if (errno) return 0;
  int want = now - BOOST < -20 ? -20 : now - BOOST;
  if (boosted || want == now || setpriority(PRIO_PROCESS, 0, want) != 0) return 0;
  boosted = true, own = now;
  *loop = want, *jobs = now;
  return now - want;
}

void boost_child(chime_proc_opts *po) {
  if (boosted) po->set_nice = true, po->nice = own;
}
