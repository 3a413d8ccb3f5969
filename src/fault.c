/* fault.c - allocation, and the fault-injection hook every fallible call
 * goes through (SQLite's and neco's approach).
 *
 * In testing builds (CHIME_TESTING) the tests can make the n-th fallible
 * call fail, once or from then on, and read how many allocations are live,
 * so that every failure path is walked and every test ends with nothing
 * leaked.  In other builds CHIME__FAULT() is the constant 0 and these are
 * plain wrappers.
 */
#include "base.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>

#ifdef CHIME_TESTING
#include "testing.h"

static atomic_long fail_countdown = -1; /* calls to let through; -1: never fail */
static atomic_bool fail_sticky;
static atomic_long calls, failures, live;

bool chime__fault(void) {
  atomic_fetch_add(&calls, 1);
  long n = atomic_load(&fail_countdown);
  while (n > 0) {
    if (atomic_compare_exchange_weak(&fail_countdown, &n, n - 1)) return false;
  }
  if (n < 0) return false;
  if (!atomic_load(&fail_sticky)) atomic_store(&fail_countdown, -1);
  atomic_fetch_add(&failures, 1);
  return true;
}

void chime__test_fail_after(long n, bool sticky) {
  atomic_store(&fail_sticky, sticky);
  atomic_store(&fail_countdown, n < 0 ? -1 : n);
}
void chime__fault_count(void) { atomic_fetch_add(&calls, 1); }
long chime__test_calls(void) { return atomic_load(&calls); }
long chime__test_failures(void) { return atomic_load(&failures); }
long chime__test_live_allocs(void) { return atomic_load(&live); }
#define COUNT(d) atomic_fetch_add(&live, (d))
#else
#define COUNT(d) ((void)0)
#endif

void *chime__malloc(size_t size) {
  if (CHIME__FAULT()) return NULL;
  void *p = malloc(size);
  if (p) COUNT(1);
  return p;
}

void *chime__calloc(size_t n, size_t size) {
  if (CHIME__FAULT()) return NULL;
  void *p = calloc(n, size);
  if (p) COUNT(1);
  return p;
}

void *chime__realloc(void *p, size_t size) {
  if (CHIME__FAULT()) return NULL;
  void *q = realloc(p, size);
  if (q && !p) COUNT(1);
  return q;
}

void chime__free(void *p) {
  if (p) COUNT(-1);
  free(p);
}

void *chime__map(size_t size) {
  if (CHIME__FAULT()) return NULL;
  void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return NULL;
  COUNT(1);
  return p;
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif

/* Whether MADV_POPULATE_WRITE was refused once (an older kernel). */
static atomic_bool no_populate;

int chime__advise(void *p, size_t size, int advice, _Atomic bool *refused) {
  if (atomic_load_explicit(refused, memory_order_relaxed)) return errno = EINVAL, -1;
  if (madvise(p, size, advice) == 0) return 0;
  if (errno == EINVAL) atomic_store_explicit(refused, true, memory_order_relaxed);
  return -1;
}

void chime__populate(void *p, size_t size) { chime__advise(p, size, MADV_POPULATE_WRITE, &no_populate); }

void chime__unmap(void *p, size_t size) {
  if (!p) return;
  COUNT(-1);
  munmap(p, size);
}
