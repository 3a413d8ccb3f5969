/* fuzz_cron.c - libFuzzer target for the cron parser. */
#include <chime.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *s = malloc(size + 1);
  if (!s) return 0;
  memcpy(s, data, size);
  s[size] = '\0';
  chime_cron *c = NULL;
  if (chime_cron_parse(s, &c, NULL) == 0) chime_cron_free(c);
  free(s);
  return 0;
}
