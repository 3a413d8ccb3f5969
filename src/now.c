/* now.c - a loop's clocks: chime_now, virtual time, and the wall clock.
 *
 * Real time is CLOCK_MONOTONIC (clock.c).  Virtual time belongs to a loop
 * (loop.c moves it when every task waits); chime_now() reads whichever
 * clock the loop running on this thread uses.  A virtual clock has a wall
 * side, wall_base + vnow, which chime_wall_set moves; the modules attached
 * to the loop hear of it (calendar jobs plan afresh).
 */
#include "loop.h"

chime_ns chime_wall_now(void) {
  chime_loop *loop = chime__tls_loop;
  return loop && loop->virtual_clock ? loop->wall_base + loop->vnow : chime__realtime();
}

chime_ns chime__wall_offset(const chime_loop *loop) {
  return loop->virtual_clock ? loop->wall_base : chime__realtime() - chime__mono();
}

chime_ns chime_now(void) {
  chime_loop *loop = chime__tls_loop;
  return loop ? chime__now(loop) : chime__mono();
}

/* A virtual clock's two sides stay within chime_ns: vnow >= 0, and the wall
 * side, wall_base + vnow, in [0, CHIME_NEVER]. */
int chime_wall_set(chime_ns t) {
  chime_loop *loop = chime__tls_loop;
  if (!loop) return -EPERM;
  if (!loop->virtual_clock || t < 0) return -EINVAL;
  loop->wall_base = t - loop->vnow;
  for (unsigned i = 0; i < loop->nmods; i++)
    if (loop->mods[i].m->wall_moved) loop->mods[i].m->wall_moved(loop, loop->mods[i].state);
  return 0;
}

int chime_clock_advance(chime_ns d) {
  chime_loop *loop = chime__tls_loop;
  if (!loop) return -EPERM;
  chime_ns v, wall;
  if (!loop->virtual_clock || d < 0 || __builtin_add_overflow(loop->vnow, d, &v) ||
      __builtin_add_overflow(loop->wall_base, v, &wall))
    return -EINVAL;
  loop->vnow = v;
  return 0;
}
