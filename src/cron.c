/* cron.c - cron expressions: parsing, and the next fire time. */
#include "internal.h"

int chime_cron_parse(const char *expr, chime_cron **cron, chime_cron_error *err) {
  (void)expr, (void)cron, (void)err;
  return -ENOSYS;
}
void chime_cron_free(chime_cron *cron) { (void)cron; }
int chime_cron_interval(const chime_cron *cron, chime_ns *interval) {
  (void)cron, (void)interval;
  return -ENOSYS;
}
int chime_cron_next(const chime_cron *cron, const chime_tz *tz, chime_ns after, chime_ns *next) {
  (void)cron, (void)tz, (void)after, (void)next;
  return -ENOSYS;
}
int chime_cron_next_n(const chime_cron *cron, const chime_tz *tz, chime_ns after, chime_ns *times, size_t n) {
  (void)cron, (void)tz, (void)after, (void)times, (void)n;
  return -ENOSYS;
}
