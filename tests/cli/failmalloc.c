/* failmalloc.c - an LD_PRELOAD library for the chime command's tests: the
 * FAIL_AT-th call of malloc, calloc or realloc in the process fails, once,
 * with ENOMEM.  At exit it says on stderr whether it did ("failmalloc:
 * fired"), so that a walk over FAIL_AT = 1, 2, ... knows when it has passed
 * the last allocation.  It takes itself out of the environment, so that the
 * programs chime runs allocate as usual. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

static long fail_at = -1, calls;
static int fired;
static void *(*real_malloc)(size_t);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static void (*real_free)(void *);

/* dlsym may call calloc before real_calloc is known: it gets this. */
static char early[4096];
static size_t early_used;

__attribute__((constructor)) static void init(void) {
  const char *at = getenv("FAIL_AT");
  if (at) fail_at = atol(at);
  unsetenv("LD_PRELOAD");
  unsetenv("FAIL_AT");
}

__attribute__((destructor)) static void fini(void) {
  static const char msg[] = "failmalloc: fired\n";
  if (fired && write(2, msg, sizeof msg - 1) < 0) fired = 0;
}

static int fail_now(void) {
  if (fail_at < 0 || __atomic_add_fetch(&calls, 1, __ATOMIC_RELAXED) != fail_at) return 0;
  fired = 1;
  errno = ENOMEM;
  return 1;
}

void *malloc(size_t n) {
  if (!real_malloc) *(void **)&real_malloc = dlsym(RTLD_NEXT, "malloc"); /* POSIX's way round ISO C */
  return fail_now() ? NULL : real_malloc(n);
}

void *calloc(size_t n, size_t size) {
  if (!real_calloc) {
    static int looking;
    if (looking) { /* dlsym's own allocation */
      void *p = early + early_used;
      early_used += (n * size + 15) & ~(size_t)15;
      return early_used <= sizeof early ? p : NULL;
    }
    looking = 1;
    *(void **)&real_calloc = dlsym(RTLD_NEXT, "calloc");
  }
  return fail_now() ? NULL : real_calloc(n, size);
}

void *realloc(void *p, size_t n) {
  if (!real_realloc) *(void **)&real_realloc = dlsym(RTLD_NEXT, "realloc");
  return fail_now() ? NULL : real_realloc(p, n);
}

void free(void *p) {
  if ((char *)p >= early && (char *)p < early + sizeof early) return;
  if (!real_free) *(void **)&real_free = dlsym(RTLD_NEXT, "free");
  real_free(p);
}
