/* fuzz_check.h: a property check that stays on in release builds (assert
 * does not: RelWithDebInfo defines NDEBUG). */
#ifndef BT_FUZZ_CHECK_H
#define BT_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define FUZZ_CHECK(cond)                                                       \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      abort();                                                                 \
    }                                                                          \
  } while (0)

#endif
