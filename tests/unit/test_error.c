/* Tests for error.c: names and messages of the BT_ERR_* codes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include <baton/error.h>

static void test_error_known_codes(void **state) {
  assert_string_equal(bt_strerror(BT_ERR_OK), "success");
  assert_string_equal(bt_err_name(BT_ERR_OK), "OK");
  assert_string_equal(bt_strerror(BT_ERR_NOMEM), "out of memory");
  assert_string_equal(bt_err_name(BT_ERR_NOMEM), "NOMEM");
  assert_string_equal(bt_err_name(BT_ERR_TOO_LARGE), "TOO_LARGE");
  assert_string_equal(bt_strerror(BT_ERR_PARSE), "malformed input");
  assert_string_equal(bt_err_name(BT_ERR_STATE), "STATE");
  assert_string_equal(bt_strerror(BT_ERR_STATE),
                      "operation not valid in this state");
}

static void test_error_every_code_has_distinct_name(void **state) {
  /* Every code in the range the X-macro covers has its own name and a
   * message other than the fallback. */
  for (int a = 0; a >= BT_ERR_LIMIT; a--) {
    assert_string_not_equal(bt_err_name(a), "UNKNOWN");
    assert_string_not_equal(bt_strerror(a), "unknown error");
    for (int b = a - 1; b >= BT_ERR_LIMIT; b--)
      assert_string_not_equal(bt_err_name(a), bt_err_name(b));
  }
}

static void test_error_unknown_codes(void **state) {
  int unknown[] = {1, 42, BT_ERR_LIMIT - 1, -1000, INT32_MIN};
  for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
    assert_string_equal(bt_strerror(unknown[i]), "unknown error");
    assert_string_equal(bt_err_name(unknown[i]), "UNKNOWN");
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_error_known_codes),
      cmocka_unit_test(test_error_every_code_has_distinct_name),
      cmocka_unit_test(test_error_unknown_codes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
