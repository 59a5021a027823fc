/* Tests for budget.c: a connection's count against its limit, the process
 * count published in steps from several threads, and the hysteresis
 * between exceeded and relieved. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>

#include "budget.h"

static int reset_process(void **state) {
  bt__budget_flush_thread();
  bt__budget_set_process_limit(0);
  return 0;
}

static void test_budget_connection_limit_and_hysteresis(void **state) {
  bt_budget b;
  bt__budget_init(&b, 1000);
  bt__budget_charge(&b, 1000);
  assert_false(bt__budget_exceeded(&b)); /* at the limit is within it */
  assert_false(bt__budget_relieved(&b));
  bt__budget_charge(&b, 1);
  assert_true(bt__budget_exceeded(&b));
  bt__budget_release(&b, 400);
  assert_false(bt__budget_exceeded(&b));
  assert_false(bt__budget_relieved(&b)); /* 601 > half the limit */
  bt__budget_release(&b, 101);
  assert_true(bt__budget_relieved(&b));
  bt__budget_release(&b, 500);
  assert_int_equal(b.used, 0);
}

static void test_budget_release_more_than_charged_clamps(void **state) {
  bt_budget b;
  bt__budget_init(&b, 100);
  bt__budget_charge(&b, 10);
  bt__budget_release(&b, 50);
  assert_int_equal(b.used, 0);
  bt__budget_charge(&b, 101);
  assert_true(bt__budget_exceeded(&b));
  bt__budget_release(&b, 101);
}

static void test_budget_no_own_limit_still_obeys_the_process(void **state) {
  size_t before = bt__budget_process_used();
  bt_budget b;
  bt__budget_init(&b, 0);
  bt__budget_set_process_limit(before + 4 * BT_BUDGET_BATCH);
  bt__budget_charge(&b, 3 * BT_BUDGET_BATCH);
  assert_false(bt__budget_exceeded(&b));
  bt__budget_charge(&b, 2 * BT_BUDGET_BATCH);
  bt__budget_flush_thread();
  assert_true(bt__budget_exceeded(&b));
  assert_false(bt__budget_relieved(&b));
  /* Back within the process limit: relieved (the hysteresis is the
   * connection's own, and b has no limit of its own). */
  bt__budget_release(&b, 2 * BT_BUDGET_BATCH);
  bt__budget_flush_thread();
  assert_false(bt__budget_exceeded(&b));
  assert_true(bt__budget_relieved(&b));
  bt__budget_release(&b, 3 * BT_BUDGET_BATCH);
  bt__budget_flush_thread();
  assert_true(bt__budget_relieved(&b));
  assert_int_equal(bt__budget_process_used(), before);
}

static void test_budget_small_charges_are_published_in_steps(void **state) {
  size_t before = bt__budget_process_used();
  bt_budget b;
  bt__budget_init(&b, 0);
  bt__budget_charge(&b, 100);
  /* Below one step nothing reaches the shared counter... */
  assert_int_equal(bt__budget_process_used(), before);
  bt__budget_charge(&b, BT_BUDGET_BATCH);
  /* ...a step's worth does, in one go. */
  assert_int_equal(bt__budget_process_used(), before + BT_BUDGET_BATCH + 100);
  bt__budget_release(&b, BT_BUDGET_BATCH + 100);
  bt__budget_flush_thread();
  assert_int_equal(bt__budget_process_used(), before);
}

#define THREADS 4
#define ROUNDS 10000

static void *charge_and_release(void *arg) {
  bt_budget b;
  bt__budget_init(&b, 0);
  for (int i = 0; i < ROUNDS; i++)
    bt__budget_charge(&b, 1000 + (size_t)i % 7);
  for (int i = 0; i < ROUNDS; i++)
    bt__budget_release(&b, 1000 + (size_t)i % 7);
  bt__budget_flush_thread();
  return NULL;
}

static void test_budget_threads_add_up_to_zero(void **state) {
  size_t before = bt__budget_process_used();
  pthread_t t[THREADS];
  for (int i = 0; i < THREADS; i++)
    pthread_create(&t[i], NULL, charge_and_release, NULL);
  for (int i = 0; i < THREADS; i++)
    pthread_join(t[i], NULL);
  assert_int_equal(bt__budget_process_used(), before);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_budget_connection_limit_and_hysteresis,
                                reset_process),
      cmocka_unit_test_teardown(test_budget_release_more_than_charged_clamps,
                                reset_process),
      cmocka_unit_test_teardown(
          test_budget_no_own_limit_still_obeys_the_process, reset_process),
      cmocka_unit_test_teardown(
          test_budget_small_charges_are_published_in_steps, reset_process),
      cmocka_unit_test_teardown(test_budget_threads_add_up_to_zero,
                                reset_process),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
