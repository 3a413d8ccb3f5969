/* stack.c - a loop's pool of task stacks, and the report of a stack
 * overflow.
 *
 * Stacks are reused most recently freed first (its pages are the likeliest
 * to be resident and cached).  The pool keeps every stack it is given: it
 * holds at most the largest number of tasks that were alive at once.  When
 * it is empty, a stack comes from the newest block, whose stacks are
 * handed out in order and untouched until then; a new block is as large as
 * every stack mapped before (up to 64), so that a burst of tasks (10,000
 * runs that suspend at once) maps a few dozen blocks, not a stack at a
 * time.
 *
 * Overflow: a task that runs past the bottom of its stack touches the guard
 * page and gets SIGSEGV.  A handler, installed once per process on an
 * alternate signal stack, checks whether the faulting address is the guard
 * page of the running task's stack; if so it says so on stderr.  Either
 * way it then hands the fault to whatever handled SIGSEGV before (the
 * default action, a debugger's or a sanitizer's handler).
 */
#include "loop.h"

#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#ifdef CHIME_ASAN
#include <sanitizer/asan_interface.h>
#endif

#ifdef CHIME_TESTING
#include "testing.h"
long chime__test_stacks_in_use(void) {
  chime_loop *loop = chime__tls_loop;
  return loop ? (long)(loop->stacks_mapped - loop->pool_count) : 0;
}
#endif

/* A block of stacks (coro.c maps it): stacks [0, used) were handed out,
 * the others never touched. */
struct chime__stack_block {
  struct chime__stack_block *next; /* older blocks */
  void *base;
  unsigned count, used;
};

/* Stacks a block holds at most (and at most 8 MiB of them). */
#define BLOCK_STACKS 64u
#define BLOCK_BYTES ((size_t)8 << 20)

/* A new block, as large as the stacks mapped so far (so the pool doubles)
 * within the bounds above. */
static int block_new(chime_loop *loop) {
  size_t room = BLOCK_BYTES / loop->stack_size;
  uint64_t n = loop->stacks_mapped ? loop->stacks_mapped : 1;
  if (n > BLOCK_STACKS) n = BLOCK_STACKS;
  if (n > room) n = room ? room : 1;
  struct chime__stack_block *b = chime__malloc(sizeof *b);
  if (!b) return -ENOMEM;
  b->base = chime__stacks_map(loop->stack_size, (unsigned)n);
  if (!b->base) {
    chime__free(b);
    return -ENOMEM;
  }
  b->count = (unsigned)n;
  b->used = 0;
  b->next = loop->stack_blocks;
  loop->stack_blocks = b;
  return 0;
}

int chime__stack_get(chime_loop *loop, struct chime__stack **out) {
  struct chime__stack *s = loop->stack_pool;
  if (s) {
    if (CHIME__FAULT()) return -ENOMEM; /* stands for the mapping it saves */
    loop->stack_pool = s->next;
    loop->pool_count--;
#ifdef CHIME_ASAN
    /* Frames of the previous owner that never returned left poisoned
     * redzones behind. */
    ASAN_UNPOISON_MEMORY_REGION(s->lo, s->size);
#endif
    *out = s;
    return 0;
  }
  struct chime__stack_block *b = loop->stack_blocks;
  if (!b || b->used == b->count) {
    int rc = block_new(loop);
    if (rc) return rc;
    b = loop->stack_blocks;
  } else if (CHIME__FAULT()) {
    return -ENOMEM; /* stands for the mapping it saves */
  }
  *out = chime__stack_at(b->base, loop->stack_size, b->used++);
  loop->stacks_mapped++;
  return 0;
}

void chime__stack_put(chime_loop *loop, struct chime__stack *s) {
  s->next = loop->stack_pool;
  loop->stack_pool = s;
  loop->pool_count++;
}

void chime__stack_pool_free(chime_loop *loop) {
  while (loop->stack_blocks) {
    struct chime__stack_block *b = loop->stack_blocks;
    loop->stack_blocks = b->next;
    chime__stacks_unmap(b->base, loop->stack_size, b->count, b->used);
    chime__free(b);
  }
  loop->stack_pool = NULL;
  loop->pool_count = 0;
  loop->stacks_mapped = 0;
}

/* ---- overflow ----------------------------------------------------------- */

static struct sigaction old_segv, old_bus;
static size_t page_size; /* read once, before any fault: sysconf is not async-signal-safe */

/* Appends text to a buffer, async-signal-safely. */
static size_t put(char *buf, size_t len, size_t cap, const char *s) {
  while (*s && len + 1 < cap)
    buf[len++] = *s++;
  return len;
}

static size_t put_num(char *buf, size_t len, size_t cap, size_t v) {
  char tmp[24];
  int n = 0;
  do {
    tmp[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  while (n && len + 1 < cap)
    buf[len++] = tmp[--n];
  return len;
}

static void on_fault(int sig, siginfo_t *si, void *uc) {
  chime_loop *loop = chime__tls_loop;
  struct chime__task *t = loop ? loop->cur : NULL;
  if (t && t->stack) {
    uintptr_t a = (uintptr_t)si->si_addr, lo = (uintptr_t)t->stack->lo;
    size_t page = page_size;
    if (a < lo && a >= lo - page) {
      char msg[256];
      size_t n = put(msg, 0, sizeof msg, "chime: stack overflow in task");
      if (t->name[0]) {
        n = put(msg, n, sizeof msg, " '");
        n = put(msg, n, sizeof msg, t->name);
        n = put(msg, n, sizeof msg, "'");
      }
      n = put(msg, n, sizeof msg, ": it ran past the ");
      n = put_num(msg, n, sizeof msg, t->stack->size + page);
      n = put(msg, n, sizeof msg, "-byte stack (raise chime_loop_opts.stack_size)\n");
      ssize_t w = write(STDERR_FILENO, msg, n);
      (void)w;
    }
  }
  /* Hand the fault on. */
  struct sigaction *old = sig == SIGSEGV ? &old_segv : &old_bus;
  if ((old->sa_flags & SA_SIGINFO) && old->sa_sigaction) {
    old->sa_sigaction(sig, si, uc);
  } else if (old->sa_handler != SIG_DFL && old->sa_handler != SIG_IGN) {
    old->sa_handler(sig);
  } else {
    /* Returning re-runs the faulting access under the default action. */
    sigaction(sig, old, NULL);
  }
}

static void install(void) {
  page_size = (size_t)sysconf(_SC_PAGESIZE);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_fault;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGSEGV, &sa, &old_segv);
  sigaction(SIGBUS, &sa, &old_bus);
}

void chime__fault_handlers_install(void) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, install);
}

/* The handler needs a stack of its own: the faulting one is exhausted. */
#define ALTSTACK_SIZE (64 * 1024)

int chime__altstack_enter(void **saved) {
  stack_t cur;
  *saved = NULL;
  if (sigaltstack(NULL, &cur) == 0 && !(cur.ss_flags & SS_DISABLE)) return 0; /* the thread has one */
  void *mem = chime__map(ALTSTACK_SIZE);
  if (!mem) return -ENOMEM;
  stack_t ss = {.ss_sp = mem, .ss_size = ALTSTACK_SIZE, .ss_flags = 0};
  if (sigaltstack(&ss, NULL) != 0) {
    chime__unmap(mem, ALTSTACK_SIZE);
    return -errno;
  }
  *saved = mem;
  return 0;
}

void chime__altstack_leave(void *saved) {
  if (!saved) return;
  stack_t ss = {.ss_sp = NULL, .ss_size = 0, .ss_flags = SS_DISABLE};
  sigaltstack(&ss, NULL);
  chime__unmap(saved, ALTSTACK_SIZE);
}
