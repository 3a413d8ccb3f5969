/* coro.h - stackful coroutines: contexts, stacks, and the announcements of
 * every stack switch to the sanitizers and to Valgrind.
 *
 * A context is a saved stack pointer (assembly, ctx_x86_64.S and
 * ctx_aarch64.S: callee-saved registers are pushed on the stack being left,
 * then the stack pointer changes; no system call) or, where there is no
 * assembly, a pointer to a ucontext_t (ctx_ucontext.c).
 *
 * Stacks (stack.c) come from mmap in blocks, each with a guard page below
 * it; a stack's descriptor sits at its top, so a stack costs no allocation
 * besides its block.
 */
#ifndef CHIME_CORO_H
#define CHIME_CORO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__SANITIZE_ADDRESS__)
#define CHIME_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CHIME_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define CHIME_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CHIME_TSAN 1
#endif
#endif

#ifdef CHIME_ASAN
#include <sanitizer/common_interface_defs.h>
#endif
#ifdef CHIME_TSAN
#include <sanitizer/tsan_interface.h>
#endif

/* A stack: usable memory [lo, lo + size), guard page just below lo. */
struct chime__stack {
  void *lo;                  /* lowest usable byte */
  size_t size;               /* usable bytes (the descriptor excluded) */
  struct chime__stack *next; /* pool link */
  unsigned vg_id;            /* Valgrind's id for the stack, or 0 */
};

/* Maps a block of `count` stacks of `size` bytes each (a multiple of the
 * page size), each with its guard page; returns its base, or NULL (no
 * memory).  Nothing of a stack is touched until chime__stack_at. */
void *chime__stacks_map(size_t size, unsigned count);
/* Stack k of a block: its descriptor written (which commits its top page). */
struct chime__stack *chime__stack_at(void *base, size_t size, unsigned k);
/* Unmaps a block whose stacks [0, used) were handed out by
 * chime__stack_at. */
void chime__stacks_unmap(void *base, size_t size, unsigned count, unsigned used);

/* A coroutine's saved state. */
struct chime__coro {
  void *sp;             /* saved stack pointer (or ucontext_t *) */
  const void *stack_lo; /* bounds, announced to AddressSanitizer */
  size_t stack_size;
  void *asan_fake;  /* AddressSanitizer's fake stack of this context */
  void *tsan_fiber; /* ThreadSanitizer's fiber */
};

/* Prepares `c` to run entry(arg) on stack `s` at its first switch.  The
 * entry function must never return: it ends by switching away for good
 * (chime__coro_switch with exiting = true). */
void chime__coro_make(struct chime__coro *c, struct chime__stack *s, void (*entry)(void *), void *arg);

/* Makes `c` stand for the code running now on the thread's own stack (the
 * scheduler), so that coroutines can switch back to it. */
void chime__coro_adopt_thread(struct chime__coro *c);
/* Releases what chime__coro_adopt_thread or a coroutine's life acquired
 * from the sanitizers (called after the coroutine ended). */
void chime__coro_release(struct chime__coro *c);

/* The assembly (or ucontext) switch: saves the current context into *from,
 * resumes `to`. */
void chime__ctx_swap(void **from, void *to);

/* Asks for the top of a suspended coroutine's stack (the saved registers
 * and the frames of its suspended calls, a few hundred bytes) to be brought
 * into the cache, ahead of a switch to it (with the ucontext fallback, its
 * saved context).  Only a hint: it never faults. */
static inline void chime__coro_prefetch(const struct chime__coro *c) {
  for (int i = 0; i < 8; i++)
    __builtin_prefetch((const void *)((uintptr_t)c->sp + 64 * (unsigned)i));
}

/* First code a new coroutine runs after its first switch (it completes the
 * switch announcement). */
static inline void chime__coro_entered(void) {
#ifdef CHIME_ASAN
  __sanitizer_finish_switch_fiber(NULL, NULL, NULL);
#endif
}

/* Switches from `from` (the context running now) to `to`.  With exiting =
 * true, `from` will never be resumed: its sanitizer state is dropped. */
static inline void chime__coro_switch(struct chime__coro *from, struct chime__coro *to, bool exiting) {
#ifdef CHIME_ASAN
  __sanitizer_start_switch_fiber(exiting ? NULL : &from->asan_fake, to->stack_lo, to->stack_size);
#else
  (void)exiting;
#endif
#ifdef CHIME_TSAN
  __tsan_switch_to_fiber(to->tsan_fiber, 0);
#endif
  chime__ctx_swap(&from->sp, to->sp);
#ifdef CHIME_ASAN
  __sanitizer_finish_switch_fiber(from->asan_fake, NULL, NULL);
#endif
}

#endif
