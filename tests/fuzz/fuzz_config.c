/* fuzz_config.c - libFuzzer target for the chime command's config reader.
 *
 * Reads the input as a config file.  A refused one must give at least one
 * error line, each naming the file; an accepted one must have jobs, each
 * with a name, a command split into words and a schedule whose next runs
 * rise strictly, and every number in its range (an interval of 10 ms or
 * more, max_concurrent 1 to 255, a uid that fits, no negative duration).
 * Nothing may crash or leak.
 */
#include <chime.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct config *cfg = NULL;
  struct errors errs = {0};
  int rc = config_parse("fuzz.conf", (const char *)data, size, &cfg, &errs);
  if (rc == 0) {
    if (!cfg || cfg->njobs == 0 || errs.count) abort();
    for (size_t i = 0; i < cfg->njobs; i++) {
      const struct job_conf *j = cfg->jobs[i];
      if (!j->name || !j->argv || !j->argv[0] || !j->fingerprint || (!j->cron && !j->reboot && j->every < CHIME_MS(10)))
        abort();
      if (j->max_concurrent < 1 || j->max_concurrent > 255 || j->timeout < 0 || j->kill_grace < 0 || j->jitter < 0 ||
          j->spread < 0 || j->window < 0 || j->backoff < 0 || j->backoff_max < 0)
        abort();
      if (j->user && j->user[strspn(j->user, "0123456789")] == '\0' && strtoull(j->user, NULL, 10) > 4294967294ull)
        abort();
      chime_ns t[5];
      int n = job_next_runs(j, 1774746000000000000, t, 5);
      for (int k = 1; k < n; k++)
        if (t[k] <= t[k - 1]) abort();
    }
    config_free(cfg);
  } else if (cfg || errs.count == 0 || !errs.text || strncmp(errs.text, "fuzz.conf", 9) != 0) {
    abort();
  }
  errors_free(&errs);
  return 0;
}
