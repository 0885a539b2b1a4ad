/* CHECK(cond) for guest/init's host-native unit tests: counts a failure and goes on, so one run
 * reports every broken case; main() prints the count and returns non-zero when it is not 0. */
#pragma once
#include <stdio.h>

static int failures;

#define CHECK(c)                                          \
  do {                                                    \
    if (!(c)) {                                           \
      printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #c); \
      failures++;                                         \
    }                                                     \
  } while (0)
