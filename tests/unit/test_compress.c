/* Tests for compress.c: gzip round trips, interop with gzip(1), and the
 * refusal of bombs, corrupt, truncated and trailing data. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include <baton/alloc.h>
#include <baton/error.h>
#include "compress.h"

/* `printf 'hello gzip' | gzip -n` */
static const uint8_t gzip_hello[] = {
    0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03,
    0xcb, 0x48, 0xcd, 0xc9, 0xc9, 0x57, 0x48, 0xaf, 0xca, 0x2c,
    0x00, 0x00, 0x19, 0x6a, 0xd2, 0xdf, 0x0a, 0x00, 0x00, 0x00,
};

static void round_trip(const uint8_t *in, size_t len) {
  long base = bt_alloc_live();
  uint8_t *z = NULL, *back = NULL;
  size_t zlen = 0, blen = 0;
  assert_int_equal(bt__gzip_compress(in, len, &z, &zlen), 0);
  assert_true(zlen >= 18); /* gzip header and trailer */
  assert_int_equal(z[0], 0x1f);
  assert_int_equal(z[1], 0x8b);
  assert_int_equal(bt__gzip_decompress(z, zlen, len, &back, &blen), 0);
  assert_int_equal(blen, len);
  if (len)
    assert_memory_equal(back, in, len);
  bt_free(z);
  bt_free(back);
  assert_int_equal(bt_alloc_live(), base);
}

static void test_compress_round_trip(void **state) {
  round_trip((const uint8_t *)"", 0);
  round_trip((const uint8_t *)"x", 1);
  round_trip((const uint8_t *)"hello hello hello hello", 23);
  /* incompressible-ish and repetitive megabytes */
  size_t n = 1 << 20;
  uint8_t *big = bt_malloc(n);
  uint32_t x = 1;
  for (size_t i = 0; i < n; i++) {
    x = x * 1664525u + 1013904223u;
    big[i] = (uint8_t)(x >> 24);
  }
  round_trip(big, n);
  memset(big, 'a', n);
  round_trip(big, n);
  bt_free(big);
}

static void test_compress_decompresses_gzip_tool_output(void **state) {
  uint8_t *out;
  size_t len;
  assert_int_equal(
      bt__gzip_decompress(gzip_hello, sizeof(gzip_hello), 1024, &out, &len), 0);
  assert_int_equal(len, 10);
  assert_memory_equal(out, "hello gzip", 10);
  bt_free(out);
}

static void test_compress_limit_is_exact(void **state) {
  uint8_t *out = NULL;
  size_t len = 0;
  long base = bt_alloc_live();
  /* exactly max_out bytes: accepted */
  assert_int_equal(
      bt__gzip_decompress(gzip_hello, sizeof(gzip_hello), 10, &out, &len), 0);
  assert_int_equal(len, 10);
  bt_free(out);
  /* one byte over: refused */
  out = NULL;
  assert_int_equal(
      bt__gzip_decompress(gzip_hello, sizeof(gzip_hello), 9, &out, &len),
      BT_ERR_TOO_LARGE);
  assert_null(out);
  assert_int_equal(
      bt__gzip_decompress(gzip_hello, sizeof(gzip_hello), 0, &out, &len),
      BT_ERR_TOO_LARGE);
  assert_int_equal(bt_alloc_live(), base);
}

static void test_compress_bomb_refused(void **state) {
  /* 32 MiB of zeros compress to ~32 KiB; a 1 MiB limit must stop it */
  size_t n = 32u << 20;
  uint8_t *zeros = bt_calloc(1, n);
  uint8_t *z;
  size_t zlen;
  assert_int_equal(bt__gzip_compress(zeros, n, &z, &zlen), 0);
  bt_free(zeros);
  assert_true(zlen < n / 100);
  long base = bt_alloc_live();
  uint8_t *out = NULL;
  size_t len = 0;
  assert_int_equal(bt__gzip_decompress(z, zlen, 1u << 20, &out, &len),
                   BT_ERR_TOO_LARGE);
  assert_null(out);
  assert_int_equal(bt_alloc_live(), base);
  bt_free(z);
}

static void expect_parse_error(const uint8_t *in, size_t len) {
  long base = bt_alloc_live();
  uint8_t *out = NULL;
  size_t out_len = 0;
  assert_int_equal(bt__gzip_decompress(in, len, 1 << 20, &out, &out_len),
                   BT_ERR_PARSE);
  assert_null(out);
  assert_int_equal(bt_alloc_live(), base);
}

static void test_compress_corrupt_refused(void **state) {
  uint8_t buf[sizeof(gzip_hello)];
  /* a flipped bit in each byte after the header: the deflate data, the
   * CRC-32 or the length in the trailer */
  for (size_t i = 10; i < sizeof(gzip_hello); i++) {
    memcpy(buf, gzip_hello, sizeof(buf));
    buf[i] ^= 0x01;
    expect_parse_error(buf, sizeof(buf));
  }
  /* bad magic */
  memcpy(buf, gzip_hello, sizeof(buf));
  buf[0] = 0x1e;
  expect_parse_error(buf, sizeof(buf));
  /* not gzip at all */
  expect_parse_error((const uint8_t *)"hello world", 11);
  /* zlib-wrapped deflate is a different encoding */
  static const uint8_t zlib_hello[] = {0x78, 0x9c, 0xcb, 0x48, 0xcd, 0xc9, 0xc9,
                                       0x07, 0x00, 0x06, 0x2c, 0x02, 0x15};
  expect_parse_error(zlib_hello, sizeof(zlib_hello));
}

static void test_compress_truncated_refused(void **state) {
  for (size_t len = 0; len < sizeof(gzip_hello); len++)
    expect_parse_error(gzip_hello, len);
  expect_parse_error(NULL, 0);
}

static void test_compress_trailing_garbage_refused(void **state) {
  uint8_t buf[2 * sizeof(gzip_hello)];
  memcpy(buf, gzip_hello, sizeof(gzip_hello));
  buf[sizeof(gzip_hello)] = 'x';
  expect_parse_error(buf, sizeof(gzip_hello) + 1);
  /* a second gzip member is also more than one message's worth */
  memcpy(buf + sizeof(gzip_hello), gzip_hello, sizeof(gzip_hello));
  expect_parse_error(buf, sizeof(buf));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_compress_round_trip),
      cmocka_unit_test(test_compress_decompresses_gzip_tool_output),
      cmocka_unit_test(test_compress_limit_is_exact),
      cmocka_unit_test(test_compress_bomb_refused),
      cmocka_unit_test(test_compress_corrupt_refused),
      cmocka_unit_test(test_compress_truncated_refused),
      cmocka_unit_test(test_compress_trailing_garbage_refused),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
