/* select.h - a test program run with a test's name runs that test alone
 * (ctest runs each in its own process).  The name must be one of the
 * program's tests: a filter that matches nothing would pass without running
 * anything.  Include after cmocka.h. */
#ifndef CHIME_TEST_SELECT_H
#define CHIME_TEST_SELECT_H

#include <stdio.h>
#include <string.h>

static inline int test_select(const struct CMUnitTest *tests, size_t n, int argc, char **argv) {
  if (argc < 2) return 0;
  for (size_t i = 0; i < n; i++)
    if (strcmp(tests[i].name, argv[1]) == 0) {
      cmocka_set_test_filter(argv[1]);
      return 0;
    }
  fprintf(stderr, "%s: no test named %s\n", argv[0], argv[1]);
  return -1;
}

#endif
