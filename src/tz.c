/* tz.c - time zones from the system's zone database (TZif files). */
#include "internal.h"

int chime_tz_load(const char *name, chime_tz **tz) {
  (void)name, (void)tz;
  return -ENOSYS;
}
void chime_tz_free(chime_tz *tz) { (void)tz; }
const char *chime_tz_name(const chime_tz *tz) {
  (void)tz;
  return NULL;
}
int chime_tz_format(const chime_tz *tz, chime_ns t, char *buf, size_t size) {
  (void)tz, (void)t, (void)buf, (void)size;
  return -ENOSYS;
}
