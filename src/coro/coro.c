/* coro.c - stacks and new contexts.
 *
 * Stacks are mapped in blocks, one anonymous mapping for several: each
 * stack is a guard page, then the usable bytes, then (in the topmost
 * bytes) the stack's descriptor and, for the ucontext fallback, its
 * ucontext_t.  The kernel commits pages as a stack grows into them, so a
 * 64 KiB stack that a task uses 3 KiB of costs one or two pages of memory.
 * A block costs one mmap and a guard per stack, where a mapping of its own
 * cost an mmap and an mprotect (7.9 us a stack, 3.3 in blocks of 64, each
 * with its top two pages touched).  Every stack is announced to Valgrind.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "coro.h"

#include "../machine.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifdef CHIME_HAVE_VALGRIND_H
#include <valgrind/valgrind.h>
#endif

#ifdef CHIME_CORO_UCONTEXT
#include <ucontext.h>
/* What the ucontext fallback keeps at the top of each stack. */
struct uc_top {
  ucontext_t uc;
  void (*entry)(void *);
  void *arg;
};
#define TOP_RESERVE (sizeof(struct chime__stack) + sizeof(struct uc_top) + 128)
#else
#define TOP_RESERVE (sizeof(struct chime__stack) + 64)
#endif

static size_t page_size(void) {
  static size_t page;
  if (!page) page = (size_t)sysconf(_SC_PAGESIZE);
  return page;
}

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102 /* Linux 6.13 */
#endif

/* Whether MADV_GUARD_INSTALL was refused once (an older kernel): then
 * guard pages are PROT_NONE, at a mapping (VMA) of their own each. */
static _Atomic bool no_guard_advice;

/* Makes the page at p a guard page.  MADV_GUARD_INSTALL leaves the block
 * one mapping, where mprotect splits it in two per stack (and
 * vm.max_map_count, 65530 by default, caps the mappings of a process):
 * about 0.5 us a stack against 2.5. */
static int guard(char *p, size_t page) {
  if (chime__advise(p, page, MADV_GUARD_INSTALL, &no_guard_advice) == 0) return 0;
  if (errno != EINVAL) return -1;
  return mprotect(p, page, PROT_NONE);
}

static size_t stride(size_t size) { return page_size() + size; }

void *chime__stacks_map(size_t size, unsigned count) {
  size_t page = page_size(), st = stride(size);
  char *base = chime__map(st * count);
  if (!base) return NULL;
  for (unsigned k = 0; k < count; k++)
    if (CHIME__FAULT() || guard(base + k * st, page) != 0) {
      chime__unmap(base, st * count);
      return NULL;
    }
  return base;
}

/* The descriptor of stack k of a block: at the very top of the stack,
 * 64-byte aligned. */
static struct chime__stack *descriptor(void *base, size_t size, unsigned k) {
  uintptr_t lo = (uintptr_t)base + k * stride(size) + page_size();
  return (struct chime__stack *)((lo + size - sizeof(struct chime__stack)) & ~(uintptr_t)63);
}

struct chime__stack *chime__stack_at(void *base, size_t size, unsigned k) {
  struct chime__stack *s = descriptor(base, size, k);
  s->lo = (char *)base + k * stride(size) + page_size();
  s->size = size - TOP_RESERVE;
  s->next = NULL;
  s->vg_id = 0;
#ifdef CHIME_HAVE_VALGRIND_H
  s->vg_id = VALGRIND_STACK_REGISTER(s->lo, (char *)s->lo + s->size);
#endif
  return s;
}

void chime__stacks_unmap(void *base, size_t size, unsigned count, unsigned used) {
#ifdef CHIME_HAVE_VALGRIND_H
  for (unsigned k = 0; k < used; k++)
    VALGRIND_STACK_DEREGISTER(descriptor(base, size, k)->vg_id);
#else
  (void)used;
#endif
  chime__unmap(base, stride(size) * count);
}

void chime__coro_adopt_thread(struct chime__coro *c) {
  memset(c, 0, sizeof *c);
#ifdef CHIME_ASAN
  /* AddressSanitizer needs the bounds of the stack it switches back to. */
  pthread_attr_t attr;
  if (pthread_getattr_np(pthread_self(), &attr) == 0) {
    void *lo;
    size_t size;
    if (pthread_attr_getstack(&attr, &lo, &size) == 0) {
      c->stack_lo = lo;
      c->stack_size = size;
    }
    pthread_attr_destroy(&attr);
  }
#endif
#ifdef CHIME_TSAN
  c->tsan_fiber = __tsan_get_current_fiber();
#endif
#ifdef CHIME_CORO_UCONTEXT
  static __thread ucontext_t thread_uc;
  c->sp = &thread_uc;
#endif
}

void chime__coro_release(struct chime__coro *c) {
#ifdef CHIME_TSAN
  if (c->tsan_fiber && c->stack_lo) __tsan_destroy_fiber(c->tsan_fiber);
#endif
  c->tsan_fiber = NULL;
}

#ifdef CHIME_CORO_UCONTEXT

static void uc_start(unsigned hi, unsigned lo) {
  struct uc_top *top = (struct uc_top *)(((uintptr_t)hi << 32) | lo);
  top->entry(top->arg);
}

void chime__coro_make(struct chime__coro *c, struct chime__stack *s, void (*entry)(void *), void *arg) {
  struct uc_top *top = (struct uc_top *)(((uintptr_t)s->lo + s->size + 63) & ~(uintptr_t)63);
  getcontext(&top->uc);
  top->uc.uc_stack.ss_sp = s->lo;
  top->uc.uc_stack.ss_size = s->size;
  top->uc.uc_link = NULL;
  top->entry = entry;
  top->arg = arg;
  uintptr_t p = (uintptr_t)top;
  makecontext(&top->uc, (void (*)(void))uc_start, 2, (unsigned)(p >> 32), (unsigned)p);
  c->sp = &top->uc;
  c->stack_lo = s->lo;
  c->stack_size = s->size;
  c->asan_fake = NULL;
#ifdef CHIME_TSAN
  c->tsan_fiber = __tsan_create_fiber(0);
#endif
}

#else /* assembly */

void chime__ctx_start(void);

void chime__coro_make(struct chime__coro *c, struct chime__stack *s, void (*entry)(void *), void *arg) {
  uintptr_t top = ((uintptr_t)s->lo + s->size) & ~(uintptr_t)15;
#if defined(__x86_64__)
  /* The frame chime__ctx_swap pops, lowest first: control words, r15, r14,
   * r13 (arg), r12 (entry), rbx, rbp (0: end of the frame chain), return
   * address.  The return address sits at top - 8, so chime__ctx_start runs
   * with the stack 16-byte aligned, as at a call site. */
  uint64_t *f = (uint64_t *)(top - 64);
  uint32_t mxcsr;
  uint16_t fpucw;
  __asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
  __asm__ volatile("fnstcw %0" : "=m"(fpucw));
  f[0] = (uint64_t)mxcsr | ((uint64_t)fpucw << 32);
  f[1] = 0;
  f[2] = 0;
  f[3] = (uint64_t)(uintptr_t)arg;
  f[4] = (uint64_t)(uintptr_t)entry;
  f[5] = 0;
  f[6] = 0;
  f[7] = (uint64_t)(uintptr_t)chime__ctx_start;
  c->sp = f;
#elif defined(__aarch64__)
  /* The 176-byte frame chime__ctx_swap restores: x19 (entry), x20 (arg),
   * x21-x28, x29 (0: end of the frame chain), x30 (chime__ctx_start),
   * d8-d15, FPCR. */
  uint64_t *f = (uint64_t *)(top - 176);
  memset(f, 0, 176);
  uint64_t fpcr;
  __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
  f[0] = (uint64_t)(uintptr_t)entry;
  f[1] = (uint64_t)(uintptr_t)arg;
  f[11] = (uint64_t)(uintptr_t)chime__ctx_start;
  f[20] = fpcr;
  c->sp = f;
#else
#error "no assembly context switch for this architecture: configure with -DCHIME_CORO=ucontext"
#endif
  c->stack_lo = s->lo;
  c->stack_size = s->size;
  c->asan_fake = NULL;
#ifdef CHIME_TSAN
  c->tsan_fiber = __tsan_create_fiber(0);
#endif
}

#endif
