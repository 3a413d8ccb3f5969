/* base.h - the bottom layer: what every file of the library may use.
 *
 * Layers, bottom up (src/LAYERS lists their files; `make test` checks that
 * each file calls only its own layer and those below it):
 *
 *   base      allocation and fault injection, error names       base.h
 *   machine   clocks, timers, slabs, backends, coroutines, zones machine.h
 *   tasks     tasks, the loop, groups, stacks, posts            loop.h
 *   awaits    descriptors, signals, the thread pool             awaits.h
 *   children  child processes                                  awaits.h
 *   jobs      periodic and calendar jobs, their schedules       jobs.h
 *   program   chime_run                                        (none)
 *
 * A lower layer that must act on an upper one's objects does it through
 * operations the upper one registered with it (loop.h: object kinds,
 * waits, modules), never by naming it.  Nothing here is installed.  Names
 * shared between files start with chime__; static names have no prefix.
 */
#ifndef CHIME_BASE_H
#define CHIME_BASE_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "chime.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CHIME__UNUSED(x) ((void)(x))
#define CHIME__LIKELY(x) __builtin_expect(!!(x), 1)
#define CHIME__UNLIKELY(x) __builtin_expect(!!(x), 0)
#define CHIME__CONTAINER(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* ---- fault injection and allocation (fault.c) -------------------------- */

/* True when a fallible call must fail now (testing builds only: the tests
 * walk a failure through every such call).  Every allocation and every
 * system call that can fail is preceded by CHIME__FAULT(). */
#ifdef CHIME_TESTING
bool chime__fault(void);
#define CHIME__FAULT() CHIME__UNLIKELY(chime__fault())
/* A call counted as CHIME__FAULT's are, that is never failed: where one
 * path of an operation has a fault point and the other cannot (the tests
 * count calls per operation). */
void chime__fault_count(void);
#define CHIME__COUNT() chime__fault_count()
#else
#define CHIME__FAULT() 0
#define CHIME__COUNT() ((void)0)
#endif

void *chime__malloc(size_t size);
void *chime__calloc(size_t n, size_t size);
void *chime__realloc(void *p, size_t size);
void chime__free(void *p);

/* mmap/munmap of anonymous read-write memory, through the fault hook. */
void *chime__map(size_t size);
void chime__unmap(void *p, size_t size);
/* Commits the pages of [p, p + size), of a mapping above, in one call, as
 * a first write to each would one page fault at a time (about a fifth
 * less CPU).  Nothing happens where the kernel cannot (before 5.14). */
void chime__populate(void *p, size_t size);
/* madvise(p, size, advice), unless the kernel refused that advice once
 * (EINVAL: a kernel older than it), which *refused then remembers for
 * every thread.  0, or -1 with errno (EINVAL once refused). */
int chime__advise(void *p, size_t size, int advice, _Atomic bool *refused);

/* ---- small arithmetic ---------------------------------------------------- */

/* now + d (d >= 0), or CHIME_NEVER where that overflows. */
static inline chime_ns chime__after(chime_ns now, chime_ns d) {
  chime_ns t;
  return __builtin_add_overflow(now, d, &t) ? CHIME_NEVER : t;
}

/* splitmix64's finaliser: a good mix of the bits of x. */
static inline uint64_t chime__mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

#endif
