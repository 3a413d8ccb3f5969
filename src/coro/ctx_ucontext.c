/* ctx_ucontext.c - the context switch where there is no assembly for the
 * target: swapcontext(3).  Each switch costs a sigprocmask system call. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "coro.h"

#include <ucontext.h>

void chime__ctx_swap(void **from, void *to) { swapcontext((ucontext_t *)*from, (ucontext_t *)to); }
