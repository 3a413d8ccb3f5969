/* fuzz_crontab.c - libFuzzer target for the crontab reader.
 *
 * The first byte chooses the format (odd: the system format, as root);
 * the rest is the file.  A refused file must say why, one FILE:LINE:
 * line or more, and give no config; an accepted one has jobs whose names
 * are valid and unique, and converts to INI that the INI reader accepts.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "crontab.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  struct crontab_opts o = {.system = data[0] & 1, .euid = 0};
  const char *text = (const char *)data + 1;
  size_t len = size - 1;
  struct errors errs = {0}, warns = {0};
  struct config *cfg = NULL;
  int rc = crontab_parse("fuzz", text, len, &o, &cfg, &errs, &warns);
  if (rc) {
    if (cfg || errs.count == 0 || (rc != -EINVAL && rc != -ENOMEM)) abort();
  } else {
    for (size_t i = 0; i < cfg->njobs; i++) {
      if (!job_name_ok(cfg->jobs[i]->name)) abort();
      for (size_t k = 0; k < i; k++)
        if (strcmp(cfg->jobs[i]->name, cfg->jobs[k]->name) == 0) abort();
    }
    char *out = NULL;
    size_t out_len = 0;
    FILE *f = open_memstream(&out, &out_len);
    if (!f || crontab_convert(text, len, cfg, f) != 0) abort();
    fclose(f);
    struct config *ini = NULL;
    struct errors e2 = {0};
    if (config_parse("ini", out, out_len, &ini, &e2) != 0 || ini->njobs != cfg->njobs) abort();
    config_free(ini);
    errors_free(&e2);
    free(out);
    config_free(cfg);
  }
  errors_free(&errs);
  errors_free(&warns);
  return 0;
}
