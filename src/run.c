/* run.c - chime_run: a program's main task on a loop of its own, then the
 * shutdown (asyncio.run).
 *
 * The top of the library: it creates the loop, has SIGINT and SIGTERM
 * cancel the main task if asked (signal.c), runs the loop until the main
 * task returns, and shuts it down.
 */
#include "awaits.h"

#include <string.h>

int chime_run(chime_fn fn, void *arg, const chime_run_opts *opts, chime_report *report) {
  chime_run_opts o = opts ? *opts : (chime_run_opts){0};
  if (!fn || o.grace < 0) return -EINVAL;
  if (chime__tls_loop) return -EBUSY;
  chime_loop *loop;
  int rc = chime_loop_new(&o.loop, &loop);
  if (rc) return rc;
  struct chime__task *main_task;
  rc = chime__task_spawn(loop, fn, arg, true, &main_task);
  if (rc == 0 && o.cancel_on_signal) rc = chime__signals_catch(loop);
  if (rc) {
    chime_loop_free(loop);
    return rc;
  }
  main_task->o.flags |= CHIME__MAIN;
  loop->main = main_task;
  rc = chime_loop_run(loop); /* until main returns */
  chime_report local;
  if (!report) report = &local;
  memset(report, 0, sizeof *report);
  if (rc == 0) rc = chime_loop_shutdown(loop, o.grace ? o.grace : -1, report);
  report->result = main_task->o.state == CHIME__DONE ? main_task->result : -ECANCELED;
  report->signal = chime__signals_main(loop);
  chime_loop_free(loop);
  return rc ? rc : report->result;
}
