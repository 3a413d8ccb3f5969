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
#include "internal.h"

#include <signal.h>
#include <string.h>

#define MAX_LOOPS 64 /* loops catching signals at once */

static _Atomic(chime_loop *) catching[MAX_LOOPS]; /* read by the handler */
static atomic_int in_handler[MAX_LOOPS];          /* handlers using catching[i] now */
static pthread_mutex_t install_mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned installed[CHIME__NSIG];       /* loops catching each signal */
static struct sigaction previous[CHIME__NSIG]; /* dispositions to restore */

static void on_signal(int sig) {
  int saved = errno;
  for (int i = 0; i < MAX_LOOPS; i++) {
    atomic_fetch_add(&in_handler[i], 1); /* the loop is not freed while this is up */
    chime_loop *loop = atomic_load(&catching[i]);
    bool again = false;
    if (loop && (atomic_load(&loop->sig_caught) & (1ull << sig))) {
      again = (loop->sig_cancel_main & (1ull << sig)) && atomic_exchange(&loop->sig_main_seen, true);
      if (!again) {
        atomic_fetch_add(&loop->sig_count[sig], 1);
        atomic_store(&loop->sig_any, true);
        chime__loop_wake(loop);
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

/* Makes the loop catch `sig`. */
static int catch_signal(chime_loop *loop, int sig) {
  if (atomic_load(&loop->sig_caught) & (1ull << sig)) return 0;
  pthread_mutex_lock(&install_mu);
  int rc = 0;
  if (!loop->sig_slot) { /* the loop's place in the handler's list */
    for (int i = 0; i < MAX_LOOPS && !loop->sig_slot; i++)
      if (!atomic_load(&catching[i])) {
        atomic_store(&catching[i], loop);
        loop->sig_slot = i + 1;
      }
    if (!loop->sig_slot) rc = -EBUSY;
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
    atomic_fetch_or(&loop->sig_caught, 1ull << sig);
  } else if (loop->sig_slot && !atomic_load(&loop->sig_caught)) { /* the slot was taken for nothing */
    atomic_store(&catching[loop->sig_slot - 1], NULL);
    loop->sig_slot = 0;
  }
  pthread_mutex_unlock(&install_mu);
  return rc;
}

static void release_signal_locked(chime_loop *loop, int sig) {
  atomic_fetch_and(&loop->sig_caught, ~(1ull << sig));
  if (--installed[sig] == 0) sigaction(sig, &previous[sig], NULL);
}

void chime__signals_release_all(chime_loop *loop) {
  pthread_mutex_lock(&install_mu);
  for (int sig = 1; sig < CHIME__NSIG; sig++)
    if (atomic_load(&loop->sig_caught) & (1ull << sig)) release_signal_locked(loop, sig);
  if (loop->sig_slot) {
    int i = loop->sig_slot - 1;
    atomic_store(&catching[i], NULL);
    while (atomic_load(&in_handler[i])) { /* a handler on another thread still holds the loop */
    }
  }
  loop->sig_slot = 0;
  pthread_mutex_unlock(&install_mu);
}

int chime_signal_release(int sig) {
  chime_loop *loop = chime__tls_loop;
  if (!loop) return -EPERM;
  if (!catchable(sig)) return -EINVAL;
  uint64_t bit = 1ull << sig;
  if (!((loop->sig_cancel_main | loop->sig_procs) & bit)) { /* still needed by chime_run or children */
    pthread_mutex_lock(&install_mu);
    if (atomic_load(&loop->sig_caught) & bit) release_signal_locked(loop, sig);
    pthread_mutex_unlock(&install_mu);
  }
  atomic_store(&loop->sig_count[sig], 0);
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

static void waiter_unlink(chime_loop *loop, struct chime__sigwait *w) {
  if (w->prev)
    w->prev->next = w->next;
  else
    loop->sig_waiters = w->next;
  if (w->next)
    w->next->prev = w->prev;
  else
    loop->sig_waiters_tail = w->prev;
  w->prev = w->next = NULL;
}

/* An occurrence handed to a task that will not take it: it goes to the
 * next waiter. */
static void give_back(chime_loop *loop, int sig) {
  atomic_fetch_add(&loop->sig_count[sig], 1);
  atomic_store(&loop->sig_any, true);
}

void chime__signal_forget(chime_loop *loop, struct chime__sigwait *w) {
  if (w->got)
    give_back(loop, w->got); /* delivery unlinked it already */
  else
    waiter_unlink(loop, w);
}

static bool wants(const struct chime__sigwait *w, int sig) {
  for (int i = 0; i < w->n; i++)
    if (w->sigs[i] == sig) return true;
  return false;
}

/* Gives each caught occurrence to the oldest task waiting for it; chime_run's
 * signals cancel the main task. */
void chime__signals_deliver(chime_loop *loop) {
  if (!atomic_exchange(&loop->sig_any, false)) return;
  for (int sig = 1; sig < CHIME__NSIG; sig++) {
    if (!atomic_load(&loop->sig_count[sig])) continue;
    if (loop->sig_procs & (1ull << sig)) chime__procs_poll(loop);
    if ((loop->sig_cancel_main & (1ull << sig)) && loop->main && loop->main->o.state != CHIME__DONE) {
      atomic_store(&loop->sig_count[sig], 0);
      if (!loop->main_signal) loop->main_signal = sig;
      chime__task_cancel(loop, loop->main);
      continue;
    }
    for (struct chime__sigwait *w = loop->sig_waiters, *next; w && atomic_load(&loop->sig_count[sig]); w = next) {
      next = w->next;
      if (!wants(w, sig)) continue;
      atomic_fetch_sub(&loop->sig_count[sig], 1);
      w->got = sig;
      waiter_unlink(loop, w);
      chime__task_wake(loop, w->task, 0);
    }
  }
}

/* Whether a task already waits for the signal (it comes first). */
static bool awaited(chime_loop *loop, int sig) {
  for (struct chime__sigwait *w = loop->sig_waiters; w; w = w->next)
    if (wants(w, sig)) return true;
  return false;
}

/* A signal kept from before, if the waiter wants one and no older waiter
 * does. */
static int take_pending(chime_loop *loop, const int *sigs, int n) {
  for (int i = 0; i < n; i++) {
    if (awaited(loop, sigs[i])) continue;
    unsigned c = atomic_load(&loop->sig_count[sigs[i]]);
    while (c && !atomic_compare_exchange_weak(&loop->sig_count[sigs[i]], &c, c - 1)) {
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
  for (int i = 0; i < n; i++) {
    int rc = catch_signal(loop, sigs[i]);
    if (rc) return rc;
  }
  if (chime__cancel_pending(self)) return -ECANCELED;
  int got = take_pending(loop, sigs, n);
  if (got) return got;
  struct chime__sigwait w = {self, sigs, n, 0, loop->sig_waiters_tail, NULL};
  if (w.prev)
    w.prev->next = &w;
  else
    loop->sig_waiters = &w;
  loop->sig_waiters_tail = &w;
  int rc = chime__task_wait(loop, CHIME__WAIT_SIGNAL, &w, NULL, deadline);
  if (!w.got) { /* timed out or cancelled */
    waiter_unlink(loop, &w);
    return rc;
  }
  if (rc == -ECANCELED) { /* handed one, but cancelled before resuming: it goes to another */
    give_back(loop, w.got);
    return rc;
  }
  return w.got;
}

int chime__procs_sigchld(chime_loop *loop) {
  int rc = catch_signal(loop, SIGCHLD);
  if (rc == 0) loop->sig_procs = 1ull << SIGCHLD;
  return rc;
}

int chime__signals_catch(chime_loop *loop) {
  loop->sig_cancel_main = (1ull << SIGINT) | (1ull << SIGTERM);
  int rc = catch_signal(loop, SIGINT);
  if (rc == 0) rc = catch_signal(loop, SIGTERM);
  return rc;
}
