/* fuzz_timeout.c: grpc-timeout parsing and formatting.
 *
 * Properties: parse accepts exactly 1-8 digits and a unit; whatever it
 * accepts formats back to a value that parses to no less and at most one
 * unit more; formatting any int64 yields a parseable string. */
#include <stdint.h>
#include <string.h>

#include <baton/error.h>
#include "fuzz_check.h"
#include "timeout.h"

static int64_t unit_ns(char u) {
  switch (u) {
  case 'n':
    return 1;
  case 'u':
    return 1000;
  case 'm':
    return 1000000;
  case 'S':
    return 1000000000;
  case 'M':
    return 60000000000LL;
  case 'H':
    return 3600000000000LL;
  }
  return 0;
}

static int looks_valid(const uint8_t *s, size_t len) {
  if (len < 2 || len > 9 || unit_ns((char)s[len - 1]) == 0)
    return 0;
  for (size_t i = 0; i + 1 < len; i++) {
    if (s[i] < '0' || s[i] > '9')
      return 0;
  }
  return 1;
}

static void check_format(int64_t ns) {
  char out[BT_TIMEOUT_MAX_LEN];
  size_t len = bt__timeout_format(ns, out);
  FUZZ_CHECK(len >= 2 && len < BT_TIMEOUT_MAX_LEN);
  FUZZ_CHECK(strlen(out) == len);
  int64_t back = -1;
  FUZZ_CHECK(bt__timeout_parse(out, len, &back) == 0);
  int64_t want = ns < 0 ? 0 : ns;
  FUZZ_CHECK(back >= want);
  FUZZ_CHECK(back == INT64_MAX || back - want < unit_ns(out[len - 1]));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  int64_t ns = -1;
  int rv = bt__timeout_parse((const char *)data, size, &ns);
  FUZZ_CHECK(rv == 0 || rv == BT_ERR_PARSE);
  FUZZ_CHECK((rv == 0) == looks_valid(data, size));
  if (rv == 0) {
    FUZZ_CHECK(ns >= 0);
    check_format(ns);
  }
  if (size >= 8) {
    int64_t raw;
    memcpy(&raw, data, sizeof(raw));
    check_format(raw);
  }
  return 0;
}
