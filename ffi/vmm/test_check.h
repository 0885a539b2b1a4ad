// CHECK(cond) for the native unit tests whose main() returns on the first failure (acpi_test, core_test).
#pragma once
#include <stdio.h>

#define CHECK(cond)                                                   \
  do {                                                                \
    if (!(cond)) {                                                    \
      fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); \
      return 1;                                                       \
    }                                                                 \
  } while (0)
