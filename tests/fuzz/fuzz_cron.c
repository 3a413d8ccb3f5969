/* fuzz_cron.c - libFuzzer target for cron expressions.
 *
 * Parses the input as an expression, in chime's syntax and in the
 * crontab syntax (six fields: seconds first, or year last).  A refused one
 * must say where and why (a column inside the text or just past it, a
 * message); an accepted one computes five fire times from a few fixed
 * instants in UTC and in Europe/Berlin, which must rise strictly.  The
 * zones are loaded once and kept for the whole run.
 */
#include <chime.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static chime_tz *zones[2];

static void check(const chime_cron_expr *c, const chime_tz *tz, chime_ns after) {
  chime_ns times[5];
  int n = chime_cron_next_n(c, tz, after, times, 5);
  if (n < 0) abort();
  for (int i = 0; i < n; i++)
    if (times[i] <= (i ? times[i - 1] : after)) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!zones[0] && (chime_tz_load("UTC", &zones[0]) || chime_tz_load("Europe/Berlin", &zones[1]))) abort();
  char *s = malloc(size + 1);
  if (!s) return 0;
  memcpy(s, data, size);
  s[size] = '\0';
  size_t len = strlen(s);
  for (int syntax = CHIME_CRON_CHIME; syntax <= CHIME_CRON_CRONTAB; syntax++) {
    chime_cron_expr *c = NULL;
    chime_cron_error err;
    memset(&err, 0, sizeof err);
    int rc = chime_cron_parse_syntax(s, (chime_cron_syntax)syntax, &c, &err);
    if (rc == 0) {
      static const chime_ns instants[] = {0, 1774746000000000000 /* 2026-03-29 01:00 UTC */,
                                          1792888800123456789 /* 2026-10-25 00:40 UTC */,
                                          9214560000000000000 /* 2261-12-31 */};
      for (int z = 0; z < 2; z++)
        for (size_t i = 0; i < sizeof instants / sizeof instants[0]; i++)
          check(c, zones[z], instants[i]);
      chime_cron_free(c);
    } else if (rc != -EINVAL || err.column < 1 || (size_t)err.column > len + 1 || !err.message[0] ||
               !memchr(err.message, '\0', sizeof err.message)) {
      abort();
    }
  }
  free(s);
  return 0;
}
