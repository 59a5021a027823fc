/* Tests for ratelim.c: the token bucket behind the reset and glitch
 * limits (burst, refill at the rate, never above the burst, no limit). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ratelim.h"

#define SEC 1000000000LL

static void test_ratelim_burst_then_empty(void **state) {
  bt_ratelim r;
  bt__ratelim_init(&r, 1000, 33, 0);
  for (int i = 0; i < 1000; i++)
    assert_int_equal(bt__ratelim_take(&r, 0), 0);
  assert_int_equal(bt__ratelim_take(&r, 0), 1);
}

static void test_ratelim_refills_at_the_rate(void **state) {
  bt_ratelim r;
  bt__ratelim_init(&r, 10, 33, 0);
  for (int i = 0; i < 10; i++)
    bt__ratelim_take(&r, 0);
  assert_int_equal(bt__ratelim_take(&r, 0), 1);
  /* One second later 33 tokens came back, capped at the burst of 10. */
  for (int i = 0; i < 10; i++)
    assert_int_equal(bt__ratelim_take(&r, SEC), 0);
  assert_int_equal(bt__ratelim_take(&r, SEC), 1);
  /* 100 ms later: 3.3 tokens, so three takes. */
  for (int i = 0; i < 3; i++)
    assert_int_equal(bt__ratelim_take(&r, SEC + SEC / 10), 0);
  assert_int_equal(bt__ratelim_take(&r, SEC + SEC / 10), 1);
}

static void test_ratelim_steady_rate_below_the_limit_never_trips(void **state) {
  bt_ratelim r;
  bt__ratelim_init(&r, 5, 33, 0);
  /* 30 events a second for a minute. */
  for (int i = 0; i < 30 * 60; i++)
    assert_int_equal(bt__ratelim_take(&r, (int64_t)i * SEC / 30), 0);
}

static void test_ratelim_clock_going_back_is_harmless(void **state) {
  bt_ratelim r;
  bt__ratelim_init(&r, 1, 1, 5 * SEC);
  assert_int_equal(bt__ratelim_take(&r, 5 * SEC), 0);
  assert_int_equal(bt__ratelim_take(&r, 4 * SEC), 1);
}

static void test_ratelim_zero_burst_means_no_limit(void **state) {
  bt_ratelim r;
  bt__ratelim_init(&r, 0, 0, 0);
  for (int i = 0; i < 100000; i++)
    assert_int_equal(bt__ratelim_take(&r, 0), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ratelim_burst_then_empty),
      cmocka_unit_test(test_ratelim_refills_at_the_rate),
      cmocka_unit_test(test_ratelim_steady_rate_below_the_limit_never_trips),
      cmocka_unit_test(test_ratelim_clock_going_back_is_harmless),
      cmocka_unit_test(test_ratelim_zero_burst_means_no_limit),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
