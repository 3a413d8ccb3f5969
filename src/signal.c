/* signal.c - signals: tasks await them (chime_signal_wait), and chime_run
 * turns SIGINT and SIGTERM into cancelling the main task.
 *
 * A loop catches a signal from the first time one of its tasks waits for
 * it (or chime_run asks) until the loop is freed or lets it go.  While any
 * loop catches a signal, the process's disposition for it is a handler of
 * ours (the previous one is restored when the last loop lets go).  The
 * handler only does async-signal-safe things: it counts the signal in
 * every loop that catches it (lock-free atomics) and writes to their
 * wake-up descriptors; each loop then hands the signals to its waiting
 * tasks, one occurrence to one task, oldest waiter first, and keeps the
 * occurrences nobody waits for yet.
 *
 * A self-pipe (the loop's eventfd) rather than signalfd: signalfd sees a
 * signal only if every thread of the process blocks it, which a library
 * cannot ensure; a handler sees it whichever thread it lands on.
 *
 * chime_run's second SIGINT or SIGTERM terminates the process at once: the
 * handler restores the default action and raises the signal again.
 */
#include "awaits.h"

#include <signal.h>
#include <string.h>

#define MAX_LOOPS 64 /* loops catching signals at once */

/* The module's state in a loop: bit s of a mask is signal s. */
struct sigs {
  chime_loop *loop;
  _Atomic uint64_t caught;              /* signals the loop catches */
  uint64_t cancel_main;                 /* signals that cancel chime_run's main task */
  uint64_t sigchld;                     /* SIGCHLD's bit while children need it (no pidfd) */
  void (*on_sigchld)(chime_loop *loop); /* then: what it calls */
  atomic_bool main_seen;                /* one of those arrived already */
  atomic_bool any;                      /* some count is not 0 */
  atomic_uint count[CHIME__NSIG];       /* occurrences caught and not yet handed out */
  int slot;                             /* 1 + the loop's place in the handler's list, or 0 */
  int main_signal;                      /* the signal that cancelled the main task */
  struct chime__sigwait *waiters;       /* tasks waiting, oldest first */
  struct chime__sigwait *waiters_tail;
};

static void sigs_round(chime_loop *loop, void *state);
static bool sigs_pending(chime_loop *loop, void *state);
static void sigs_release(chime_loop *loop, void *state);
static const struct chime__module sigs_module = {
    .size = sizeof(struct sigs), .round = sigs_round, .pending = sigs_pending, .release = sigs_release};

static _Atomic(struct sigs *) catching[MAX_LOOPS]; /* read by the handler */
static atomic_int in_handler[MAX_LOOPS];          /* handlers using catching[i] now */
static pthread_mutex_t install_mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned installed[CHIME__NSIG];       /* loops catching each signal */
static struct sigaction previous[CHIME__NSIG]; /* dispositions to restore */

static void on_signal(int sig) {
  int saved = errno;
  for (int i = 0; i < MAX_LOOPS; i++) {
    atomic_fetch_add(&in_handler[i], 1); /* the loop is not freed while this is up */
    struct sigs *st = atomic_load(&catching[i]);
    bool again = false;
    if (st && (atomic_load(&st->caught) & (1ull << sig))) {
      again = (st->cancel_main & (1ull << sig)) && atomic_exchange(&st->main_seen, true);
      if (!again) {
        atomic_fetch_add(&st->count[sig], 1);
        atomic_store(&st->any, true);
        chime__loop_wake(st->loop);
      }
    }
    atomic_fetch_sub(&in_handler[i], 1);
    if (again) { /* a second interruption: at once */
      struct sigaction dfl;
      memset(&dfl, 0, sizeof dfl);
      dfl.sa_handler = SIG_DFL;
      sigaction(sig, &dfl, NULL);
      raise(sig);
      break;
    }
  }
  errno = saved;
}

/* Whether a task may catch this signal: not those that cannot be caught,
 * nor those the library's stack-overflow report needs, nor the real-time
 * signals the C library keeps for itself (below SIGRTMIN). */
static bool catchable(int sig) {
  return sig > 0 && sig < CHIME__NSIG && sig != SIGKILL && sig != SIGSTOP && sig != SIGSEGV && sig != SIGBUS &&
         (sig < 32 || (sig >= SIGRTMIN && sig <= SIGRTMAX));
}

/* The loop's state, attached at its first use of signals. */
static int sigs_of(chime_loop *loop, struct sigs **out) {
  int rc = chime__module_attach(loop, &sigs_module, (void **)out);
  if (rc == 0) (*out)->loop = loop;
  return rc;
}

/* Makes the loop catch `sig`. */
static int catch_signal(struct sigs *st, int sig) {
  if (atomic_load(&st->caught) & (1ull << sig)) return 0;
  pthread_mutex_lock(&install_mu);
  int rc = 0;
  if (!st->slot) { /* the loop's place in the handler's list */
    for (int i = 0; i < MAX_LOOPS && !st->slot; i++)
      if (!atomic_load(&catching[i])) {
        atomic_store(&catching[i], st);
        st->slot = i + 1;
      }
    if (!st->slot) rc = -EBUSY;
  }
  if (rc == 0 && installed[sig] == 0) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    if (sigaction(sig, &sa, &previous[sig]) != 0) rc = -errno;
  }
  if (rc == 0) {
    installed[sig]++;
    atomic_fetch_or(&st->caught, 1ull << sig);
  } else if (st->slot && !atomic_load(&st->caught)) { /* the slot was taken for nothing */
    atomic_store(&catching[st->slot - 1], NULL);
    st->slot = 0;
  }
  pthread_mutex_unlock(&install_mu);
  return rc;
}

static void release_signal_locked(struct sigs *st, int sig) {
  atomic_fetch_and(&st->caught, ~(1ull << sig));
  if (--installed[sig] == 0) sigaction(sig, &previous[sig], NULL);
}

/* The loop is freed: it stops catching every signal. */
static void sigs_release(chime_loop *loop, void *state) {
  CHIME__UNUSED(loop);
  struct sigs *st = state;
  pthread_mutex_lock(&install_mu);
  for (int sig = 1; sig < CHIME__NSIG; sig++)
    if (atomic_load(&st->caught) & (1ull << sig)) release_signal_locked(st, sig);
  if (st->slot) {
    int i = st->slot - 1;
    atomic_store(&catching[i], NULL);
    while (atomic_load(&in_handler[i])) { /* a handler on another thread still holds the loop */
    }
  }
  st->slot = 0;
  pthread_mutex_unlock(&install_mu);
}

int chime_signal_release(int sig) {
  chime_loop *loop = chime__tls_loop;
  if (!loop) return -EPERM;
  if (!catchable(sig)) return -EINVAL;
  struct sigs *st = chime__module(loop, &sigs_module);
  if (!st) return 0; /* never caught */
  uint64_t bit = 1ull << sig;
  if (!((st->cancel_main | st->sigchld) & bit)) { /* still needed by chime_run or children */
    pthread_mutex_lock(&install_mu);
    if (atomic_load(&st->caught) & bit) release_signal_locked(st, sig);
    pthread_mutex_unlock(&install_mu);
  }
  atomic_store(&st->count[sig], 0);
  return 0;
}

/* ---- the loop's side ------------------------------------------------------------ */

/* A task waiting for signals: it lives on that task's stack. */
struct chime__sigwait {
  struct chime__task *task;
  const int *sigs;
  int n;
  int got;
  struct chime__sigwait *prev, *next;
};

static void waiter_unlink(struct sigs *st, struct chime__sigwait *w) {
  if (w->prev)
    w->prev->next = w->next;
  else
    st->waiters = w->next;
  if (w->next)
    w->next->prev = w->prev;
  else
    st->waiters_tail = w->prev;
  w->prev = w->next = NULL;
}

/* An occurrence handed to a task that will not take it: it goes to the
 * next waiter. */
static void give_back(struct sigs *st, int sig) {
  atomic_fetch_add(&st->count[sig], 1);
  atomic_store(&st->any, true);
}

static void signal_forget(chime_loop *loop, struct chime__task *t) {
  struct sigs *st = chime__module(loop, &sigs_module);
  struct chime__sigwait *w = t->wait_on;
  if (w->got)
    give_back(st, w->got); /* delivery unlinked it already */
  else
    waiter_unlink(st, w);
}

static const struct chime__wait signal_wait = {.forget = signal_forget};

static bool wants(const struct chime__sigwait *w, int sig) {
  for (int i = 0; i < w->n; i++)
    if (w->sigs[i] == sig) return true;
  return false;
}

static bool sigs_pending(chime_loop *loop, void *state) {
  CHIME__UNUSED(loop);
  return atomic_load(&((struct sigs *)state)->any);
}

/* Each round: gives each caught occurrence to the oldest task waiting for
 * it; chime_run's signals cancel the main task; SIGCHLD, for children
 * without pidfds, has them looked at. */
static void sigs_round(chime_loop *loop, void *state) {
  struct sigs *st = state;
  if (!atomic_exchange(&st->any, false)) return;
  for (int sig = 1; sig < CHIME__NSIG; sig++) {
    if (!atomic_load(&st->count[sig])) continue;
    if (st->sigchld & (1ull << sig)) st->on_sigchld(loop);
    if ((st->cancel_main & (1ull << sig)) && loop->main && loop->main->o.state != CHIME__DONE) {
      atomic_store(&st->count[sig], 0);
      if (!st->main_signal) st->main_signal = sig;
      chime__task_cancel(loop, loop->main, 0);
      continue;
    }
    for (struct chime__sigwait *w = st->waiters, *next; w && atomic_load(&st->count[sig]); w = next) {
      next = w->next;
      if (!wants(w, sig)) continue;
      atomic_fetch_sub(&st->count[sig], 1);
      w->got = sig;
      waiter_unlink(st, w);
      chime__task_wake(loop, w->task, 0);
    }
  }
}

/* Whether a task already waits for the signal (it comes first). */
static bool awaited(const struct sigs *st, int sig) {
  for (const struct chime__sigwait *w = st->waiters; w; w = w->next)
    if (wants(w, sig)) return true;
  return false;
}

/* A signal kept from before, if the waiter wants one and no older waiter
 * does. */
static int take_pending(struct sigs *st, const int *sigs, int n) {
  for (int i = 0; i < n; i++) {
    if (awaited(st, sigs[i])) continue;
    unsigned c = atomic_load(&st->count[sigs[i]]);
    while (c && !atomic_compare_exchange_weak(&st->count[sigs[i]], &c, c - 1)) {
    }
    if (c) return sigs[i];
  }
  return 0;
}

int chime_signal_wait(const int *sigs, int n, chime_ns deadline) {
  chime_loop *loop = chime__tls_loop;
  struct chime__task *self = loop ? loop->cur : NULL;
  if (!self) return -EPERM;
  if (!sigs || n <= 0 || deadline < 0) return -EINVAL;
  for (int i = 0; i < n; i++)
    if (!catchable(sigs[i])) return -EINVAL;
  struct sigs *st;
  int rc = sigs_of(loop, &st);
  for (int i = 0; rc == 0 && i < n; i++)
    rc = catch_signal(st, sigs[i]);
  if (rc) return rc;
  if (chime__cancel_pending(self)) return -ECANCELED;
  int got = take_pending(st, sigs, n);
  if (got) return got;
  struct chime__sigwait w = {self, sigs, n, 0, st->waiters_tail, NULL};
  if (w.prev)
    w.prev->next = &w;
  else
    st->waiters = &w;
  st->waiters_tail = &w;
  rc = chime__task_wait(loop, &signal_wait, &w, NULL, deadline);
  if (!w.got) { /* timed out or cancelled */
    waiter_unlink(st, &w);
    return rc;
  }
  if (rc == -ECANCELED) { /* handed one, but cancelled before resuming: it goes to another */
    give_back(st, w.got);
    return rc;
  }
  return w.got;
}

int chime__signals_on_sigchld(chime_loop *loop, void (*fn)(chime_loop *loop)) {
  struct sigs *st;
  int rc = sigs_of(loop, &st);
  if (rc == 0) rc = catch_signal(st, SIGCHLD);
  if (rc == 0) {
    st->sigchld = 1ull << SIGCHLD;
    st->on_sigchld = fn;
  }
  return rc;
}

int chime__signals_catch(chime_loop *loop) {
  struct sigs *st;
  int rc = sigs_of(loop, &st);
  if (rc) return rc;
  st->cancel_main = (1ull << SIGINT) | (1ull << SIGTERM);
  rc = catch_signal(st, SIGINT);
  if (rc == 0) rc = catch_signal(st, SIGTERM);
  return rc;
}

int chime__signals_main(const chime_loop *loop) {
  const struct sigs *st = chime__module(loop, &sigs_module);
  return st ? st->main_signal : 0;
}
