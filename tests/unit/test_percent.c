/* Tests for percent.c: grpc-message percent-encoding. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "percent.h"

static void check_encode(const char *in, size_t len, const char *want) {
  char out[256];
  size_t elen = bt__percent_encoded_len((const uint8_t *)in, len);
  size_t n = bt__percent_encode((const uint8_t *)in, len, out);
  assert_int_equal(n, elen);
  assert_int_equal(n, strlen(want));
  assert_string_equal(out, want);
}

static void check_decode(const char *in, const char *want, size_t want_len) {
  uint8_t out[256];
  size_t n = bt__percent_decode(in, strlen(in), out);
  assert_int_equal(n, want_len);
  assert_memory_equal(out, want, want_len);
  assert_int_equal(out[n], 0);
}

static void test_percent_encode_ascii_unchanged(void **state) {
  check_encode("hello, world! ~{}", 17, "hello, world! ~{}");
  check_encode("", 0, "");
}

static void test_percent_encode_escapes(void **state) {
  check_encode("100%", 4, "100%25");
  check_encode("a\nb\tc", 5, "a%0Ab%09c");
  check_encode("\x7f\x1f", 2, "%7F%1F");
  check_encode("\0", 1, "%00");
  /* UTF-8: each byte escaped, uppercase hex */
  check_encode("caf\xc3\xa9 \xe2\x9c\x93", 9, "caf%C3%A9 %E2%9C%93");
}

static void test_percent_decode(void **state) {
  check_decode("caf%C3%A9", "caf\xc3\xa9", 5);
  /* lowercase hex is accepted too */
  check_decode("caf%c3%a9", "caf\xc3\xa9", 5);
  check_decode("100%25", "100%", 4);
  check_decode("%00x", "\0x", 2);
  check_decode("no escapes", "no escapes", 10);
  check_decode("", "", 0);
}

static void test_percent_decode_bad_sequences_kept(void **state) {
  check_decode("%", "%", 1);
  check_decode("%4", "%4", 2);
  check_decode("%zz", "%zz", 3);
  check_decode("%4g", "%4g", 3);
  check_decode("%g4", "%g4", 3);
  check_decode("50%", "50%", 3);
  check_decode("50%!", "50%!", 4);
  /* a bad '%' followed by a good escape */
  check_decode("%%41", "%A", 2);
  check_decode("%%%", "%%%", 3);
  check_decode("a%2", "a%2", 3);
}

static void test_percent_decode_respects_length(void **state) {
  uint8_t out[8];
  /* "%41" cut to "%4": the escape is incomplete within len */
  assert_int_equal(bt__percent_decode("%41", 2, out), 2);
  assert_memory_equal(out, "%4", 2);
}

static void test_percent_round_trip_all_bytes(void **state) {
  uint8_t in[256];
  for (int i = 0; i < 256; i++)
    in[i] = (uint8_t)i;
  char enc[256 * 3 + 1];
  size_t n = bt__percent_encode(in, sizeof(in), enc);
  /* 95 printable minus '%' stay as they are; the other 162 take 3 bytes */
  assert_int_equal(n, 94 + 162 * 3);
  for (size_t i = 0; i < n; i++)
    assert_true(enc[i] >= 0x20 && enc[i] <= 0x7E);
  uint8_t dec[sizeof(enc)];
  assert_int_equal(bt__percent_decode(enc, n, dec), 256);
  assert_memory_equal(dec, in, 256);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_percent_encode_ascii_unchanged),
      cmocka_unit_test(test_percent_encode_escapes),
      cmocka_unit_test(test_percent_decode),
      cmocka_unit_test(test_percent_decode_bad_sequences_kept),
      cmocka_unit_test(test_percent_decode_respects_length),
      cmocka_unit_test(test_percent_round_trip_all_bytes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
