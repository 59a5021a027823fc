/* Tests for status.c: gRPC code names and the HTTP / HTTP/2 mappings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include <baton/error.h>
#include <baton/status.h>

static void test_status_names(void **state) {
  assert_string_equal(bt_grpc_code_name(BT_GRPC_OK), "OK");
  assert_string_equal(bt_grpc_code_name(BT_GRPC_DEADLINE_EXCEEDED),
                      "DEADLINE_EXCEEDED");
  assert_string_equal(bt_grpc_code_name(BT_GRPC_UNAUTHENTICATED),
                      "UNAUTHENTICATED");
  assert_string_equal(bt_grpc_code_name(-1), "UNKNOWN_CODE");
  assert_string_equal(bt_grpc_code_name(17), "UNKNOWN_CODE");
  assert_string_equal(bt_grpc_code_name(1000000), "UNKNOWN_CODE");
}

static void test_status_from_name_round_trips(void **state) {
  for (int c = 0; c <= 16; c++) {
    const char *name = bt_grpc_code_name(c);
    assert_string_not_equal(name, "UNKNOWN_CODE");
    assert_int_equal(bt_grpc_code_from_name(name, strlen(name)), c);
  }
}

static void test_status_from_name_rejects(void **state) {
  assert_int_equal(bt_grpc_code_from_name("unavailable", 11), BT_ERR_NOTFOUND);
  assert_int_equal(bt_grpc_code_from_name("UNKNOWN_CODE", 12), BT_ERR_NOTFOUND);
  assert_int_equal(bt_grpc_code_from_name("", 0), BT_ERR_NOTFOUND);
  assert_int_equal(bt_grpc_code_from_name(NULL, 0), BT_ERR_INVAL);
  /* the length bounds the name: a prefix is not a match, nor a longer one */
  assert_int_equal(bt_grpc_code_from_name("UNAVAILABLE", 5), BT_ERR_NOTFOUND);
  assert_int_equal(bt_grpc_code_from_name("OKAY", 4), BT_ERR_NOTFOUND);
  assert_int_equal(bt_grpc_code_from_name("OKAY", 2), BT_GRPC_OK);
}

static void test_status_from_http_status(void **state) {
  static const struct {
    int http, grpc;
  } table[] = {
      {400, BT_GRPC_INTERNAL},
      {401, BT_GRPC_UNAUTHENTICATED},
      {403, BT_GRPC_PERMISSION_DENIED},
      {404, BT_GRPC_UNIMPLEMENTED},
      {429, BT_GRPC_UNAVAILABLE},
      {502, BT_GRPC_UNAVAILABLE},
      {503, BT_GRPC_UNAVAILABLE},
      {504, BT_GRPC_UNAVAILABLE},
      {200, BT_GRPC_UNKNOWN},
      {500, BT_GRPC_UNKNOWN},
      {501, BT_GRPC_UNKNOWN},
      {302, BT_GRPC_UNKNOWN},
      {100, BT_GRPC_UNKNOWN},
      {0, BT_GRPC_UNKNOWN},
      {-1, BT_GRPC_UNKNOWN},
  };
  for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
    assert_int_equal(bt_grpc_code_from_http_status(table[i].http),
                     table[i].grpc);
}

static void test_status_from_h2_error(void **state) {
  /* PROTOCOL-HTTP2.md's table, indexed by HTTP/2 error code 0x0..0xd. */
  static const int table[] = {
      BT_GRPC_INTERNAL,           /* NO_ERROR */
      BT_GRPC_INTERNAL,           /* PROTOCOL_ERROR */
      BT_GRPC_INTERNAL,           /* INTERNAL_ERROR */
      BT_GRPC_INTERNAL,           /* FLOW_CONTROL_ERROR */
      BT_GRPC_INTERNAL,           /* SETTINGS_TIMEOUT */
      BT_GRPC_INTERNAL,           /* STREAM_CLOSED */
      BT_GRPC_INTERNAL,           /* FRAME_SIZE_ERROR */
      BT_GRPC_UNAVAILABLE,        /* REFUSED_STREAM */
      BT_GRPC_CANCELLED,          /* CANCEL */
      BT_GRPC_INTERNAL,           /* COMPRESSION_ERROR */
      BT_GRPC_INTERNAL,           /* CONNECT_ERROR */
      BT_GRPC_RESOURCE_EXHAUSTED, /* ENHANCE_YOUR_CALM */
      BT_GRPC_PERMISSION_DENIED,  /* INADEQUATE_SECURITY */
      BT_GRPC_INTERNAL,           /* HTTP_1_1_REQUIRED */
  };
  for (uint32_t e = 0; e < sizeof(table) / sizeof(table[0]); e++)
    assert_int_equal(bt_grpc_code_from_h2_error(e), table[e]);
  assert_int_equal(bt_grpc_code_from_h2_error(0xdead), BT_GRPC_INTERNAL);
  assert_int_equal(bt_grpc_code_from_h2_error(UINT32_MAX), BT_GRPC_INTERNAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_status_names),
      cmocka_unit_test(test_status_from_name_round_trips),
      cmocka_unit_test(test_status_from_name_rejects),
      cmocka_unit_test(test_status_from_http_status),
      cmocka_unit_test(test_status_from_h2_error),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
