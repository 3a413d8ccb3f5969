/* signal.c - SIGINT and SIGTERM during chime_run: the first cancels the
 * main task, a second terminates the process at once.
 *
 * The handler does only async-signal-safe things: it records the signal in
 * the loop and writes to the loop's wake-up descriptor; the loop cancels
 * the main task on its own stack.  For a second signal the handler restores
 * the default action and raises the signal again, which takes effect when
 * the handler returns.
 */
#include "internal.h"

#include <signal.h>
#include <string.h>

static chime_loop *volatile sig_loop;
static volatile sig_atomic_t sig_seen;
static struct sigaction old_int, old_term;

static void on_signal(int sig) {
  int saved = errno;
  if (sig_seen) {
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigaction(sig, &dfl, NULL);
    raise(sig);
  } else {
    sig_seen = 1;
    chime_loop *loop = sig_loop;
    if (loop) {
      loop->pending_signal = sig;
      chime__loop_wake(loop);
    }
  }
  errno = saved;
}

int chime__signals_catch(chime_loop *loop) {
  int rc = chime__loop_wakeable(loop);
  if (rc) return rc;
  sig_seen = 0;
  sig_loop = loop;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);
  return 0;
}

void chime__signals_release(chime_loop *loop) {
  CHIME__UNUSED(loop);
  sigaction(SIGINT, &old_int, NULL);
  sigaction(SIGTERM, &old_term, NULL);
  sig_loop = NULL;
}
