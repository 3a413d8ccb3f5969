/* fuzz_tz.c - libFuzzer target for zone files (TZif and their footers).
 *
 * Writes the input as a zone file "z" in a directory of its own (made once,
 * named in $TZDIR) and loads it.  A refused file must be refused with
 * -EINVAL; a loaded one formats a few instants and computes fire times for
 * two expressions from them, which must rise strictly.  The expressions
 * are parsed once and kept for the whole run.
 */
#define _POSIX_C_SOURCE 200809L /* mkdtemp, setenv, O_CLOEXEC */
#include <chime.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static chime_cron_expr *exprs[2];
static char path[64];

static void check(const chime_cron_expr *c, const chime_tz *tz, chime_ns after) {
  chime_ns times[4];
  int n = chime_cron_next_n(c, tz, after, times, 4);
  if (n < 0) abort();
  for (int i = 0; i < n; i++)
    if (times[i] <= (i ? times[i - 1] : after)) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!exprs[0]) {
    char dir[] = "/tmp/fuzz_tz.XXXXXX";
    if (!mkdtemp(dir) || setenv("TZDIR", dir, 1)) abort();
    snprintf(path, sizeof path, "%s/z", dir);
    if (chime_cron_parse("30 2 * * *", &exprs[0], NULL) || chime_cron_parse("*/20 * * * * *", &exprs[1], NULL)) abort();
  }
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0 || (size && write(fd, data, size) != (ssize_t)size)) abort();
  close(fd);
  chime_tz *tz = NULL;
  int rc = chime_tz_load("z", &tz);
  if (rc) {
    if (rc != -EINVAL) abort();
    return 0;
  }
  static const chime_ns instants[] = {INT64_MIN, -CHIME_SEC(2208988800) /* 1900 */, 0,
                                      1774746000000000000 /* 2026-03-29 01:00 UTC */,
                                      9214560000000000000 /* 2261-12-31 */};
  char buf[80];
  for (size_t i = 0; i < sizeof instants / sizeof instants[0]; i++) {
    int n = chime_tz_format(tz, instants[i], buf, sizeof buf);
    if (n < 20) abort(); /* "YYYY-MM-DD HH:MM:SS " and the abbreviation, maybe cut */
    for (int e = 0; e < 2; e++)
      check(exprs[e], tz, instants[i]);
  }
  chime_tz_free(tz);
  return 0;
}
