/* Tests for timeout.c: parsing and formatting grpc-timeout values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include <baton/error.h>
#include "timeout.h"

static int parse(const char *s, int64_t *ns) {
  return bt__timeout_parse(s, strlen(s), ns);
}

static void test_timeout_parse_each_unit(void **state) {
  static const struct {
    const char *s;
    int64_t ns;
  } table[] = {
      {"1n", 1},
      {"1u", 1000},
      {"1m", 1000000},
      {"1S", 1000000000},
      {"1M", 60LL * 1000000000},
      {"1H", 3600LL * 1000000000},
      {"250m", 250000000},
      {"0S", 0},
      {"00000007u", 7000},
      {"99999999n", 99999999},
      {"99999999S", 99999999LL * 1000000000},
      {"99999999M", 99999999LL * 60 * 1000000000},
  };
  for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
    int64_t ns = -1;
    assert_int_equal(parse(table[i].s, &ns), 0);
    assert_int_equal(ns, table[i].ns);
  }
}

static void test_timeout_parse_saturates(void **state) {
  int64_t ns = 0;
  /* 99999999 hours is about 3.6e20 ns, past INT64_MAX */
  assert_int_equal(parse("99999999H", &ns), 0);
  assert_int_equal(ns, INT64_MAX);
  assert_int_equal(parse("2562048H", &ns), 0);
  assert_int_equal(ns, INT64_MAX);
  /* just under the edge is exact */
  assert_int_equal(parse("2562047H", &ns), 0);
  assert_int_equal(ns, 2562047LL * 3600 * 1000000000);
}

static void test_timeout_parse_rejects(void **state) {
  const char *bad[] = {
      "",     "S",   "1",   "10",    "123456789S", "000000001S", "-1S",
      "+1S",  " 1S", "1S ", "1 S",   "1s",         "1h",         "1x",
      "1.5S", "1SS", "S1",  "0x10S", "1\0S",
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    int64_t ns = 42;
    if (bt__timeout_parse(bad[i], strlen(bad[i]), &ns) != BT_ERR_PARSE)
      fail_msg("\"%s\" should be rejected", bad[i]);
    assert_int_equal(ns, 42);
  }
  int64_t ns;
  /* an embedded NUL within the given length */
  assert_int_equal(bt__timeout_parse("1\0S", 3, &ns), BT_ERR_PARSE);
  /* the length bounds the input: "10S" read as "10" has no unit */
  assert_int_equal(bt__timeout_parse("10S", 2, &ns), BT_ERR_PARSE);
  assert_int_equal(bt__timeout_parse(NULL, 0, &ns), BT_ERR_PARSE);
}

static void test_timeout_format_values(void **state) {
  static const struct {
    int64_t ns;
    const char *s;
  } table[] = {
      {0, "0n"},
      {-5, "0n"},
      {INT64_MIN, "0n"},
      {1, "1n"},
      {99999999, "99999999n"},
      /* 100000000 ns no longer fits in 8 digits of n: microseconds */
      {100000000, "100000u"},
      /* rounding up: a peer never sees more time than is left */
      {100000001, "100001u"},
      {1000000000, "1000000u"},
      {99999999000, "99999999u"},
      {99999999001, "100000m"},
      {3600LL * 1000000000, "3600000m"},
      {INT64_MAX, "2562048H"},
  };
  for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
    char out[BT_TIMEOUT_MAX_LEN];
    size_t len = bt__timeout_format(table[i].ns, out);
    assert_string_equal(out, table[i].s);
    assert_int_equal(len, strlen(table[i].s));
  }
}

static void test_timeout_round_trip(void **state) {
  static const int64_t unit_ns[] = {1,          1000,          1000000,
                                    1000000000, 60000000000LL, 3600000000000LL};
  uint64_t x = 88172645463325252ULL;
  for (int i = 0; i < 20000; i++) {
    /* xorshift over the whole positive range, biased to all magnitudes */
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    int64_t ns = (int64_t)((x >> 1) >> (x % 63));
    char out[BT_TIMEOUT_MAX_LEN];
    size_t len = bt__timeout_format(ns, out);
    assert_true(len >= 2 && len < BT_TIMEOUT_MAX_LEN);
    int64_t back = -1;
    assert_int_equal(bt__timeout_parse(out, len, &back), 0);
    /* never less than asked, and off by less than one unit */
    int64_t unit = 0;
    for (int u = 0; u < 6; u++) {
      if ("numSMH"[u] == out[len - 1])
        unit = unit_ns[u];
    }
    assert_true(unit > 0);
    assert_true(back >= ns);
    assert_true(back == INT64_MAX || back - ns < unit);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_timeout_parse_each_unit),
      cmocka_unit_test(test_timeout_parse_saturates),
      cmocka_unit_test(test_timeout_parse_rejects),
      cmocka_unit_test(test_timeout_format_values),
      cmocka_unit_test(test_timeout_round_trip),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
