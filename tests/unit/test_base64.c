/* Tests for base64.c: unpadded encoding, padded and unpadded decoding. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include <baton/error.h>
#include "base64.h"

/* RFC 4648 section 10 vectors, without and with padding. */
static const struct {
  const char *raw, *unpadded, *padded;
} vectors[] = {
    {"", "", ""},
    {"f", "Zg", "Zg=="},
    {"fo", "Zm8", "Zm8="},
    {"foo", "Zm9v", "Zm9v"},
    {"foob", "Zm9vYg", "Zm9vYg=="},
    {"fooba", "Zm9vYmE", "Zm9vYmE="},
    {"foobar", "Zm9vYmFy", "Zm9vYmFy"},
};

#define NVEC (sizeof(vectors) / sizeof(vectors[0]))

static void test_base64_encode_rfc4648_unpadded(void **state) {
  for (size_t i = 0; i < NVEC; i++) {
    char out[32];
    size_t len = strlen(vectors[i].raw);
    assert_int_equal(bt__base64_encoded_len(len), strlen(vectors[i].unpadded));
    size_t n = bt__base64_encode((const uint8_t *)vectors[i].raw, len, out);
    assert_int_equal(n, strlen(vectors[i].unpadded));
    assert_string_equal(out, vectors[i].unpadded);
  }
}

static void test_base64_decode_padded_and_unpadded(void **state) {
  for (size_t i = 0; i < NVEC; i++) {
    const char *forms[] = {vectors[i].unpadded, vectors[i].padded};
    for (int f = 0; f < 2; f++) {
      uint8_t out[32];
      size_t out_len = 99;
      assert_int_equal(
          bt__base64_decode(forms[f], strlen(forms[f]), out, &out_len), 0);
      assert_int_equal(out_len, strlen(vectors[i].raw));
      assert_memory_equal(out, vectors[i].raw, out_len);
    }
  }
}

static void test_base64_full_alphabet(void **state) {
  /* bytes chosen to hit '+' (62) and '/' (63) */
  const uint8_t raw[] = {0xFB, 0xFF, 0xBF, 0xF8};
  char out[16];
  bt__base64_encode(raw, sizeof(raw), out);
  assert_string_equal(out, "+/+/+A");
  uint8_t back[8];
  size_t n;
  assert_int_equal(bt__base64_decode(out, strlen(out), back, &n), 0);
  assert_int_equal(n, sizeof(raw));
  assert_memory_equal(back, raw, sizeof(raw));
}

static void test_base64_decode_rejects(void **state) {
  const char *bad[] = {
      "Z",        /* len % 4 == 1 */
      "Zm9vY",    /* len % 4 == 1 */
      "Zg=",      /* padding without a whole group */
      "Zg===",    /* too much padding */
      "Z===",     /* three pads */
      "====",     /* only padding */
      "Zm8==",    /* padded past the group */
      "Zm9v=",    /* padding after a whole group */
      "Zm9v====", /* a whole group of padding */
      "Zm=v",     /* padding inside */
      "Zg==Zg==", /* padding then more data */
      "Zm9v\n",   /* whitespace */
      "Zm 9v",    /* space */
      "Zm-_",     /* URL-safe alphabet */
      "Zm9\x80",  /* high byte */
      "Zg=A",     /* pad in the third place, data in the fourth */
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    uint8_t out[32];
    size_t n;
    if (bt__base64_decode(bad[i], strlen(bad[i]), out, &n) != BT_ERR_PARSE)
      fail_msg("\"%s\" should be rejected", bad[i]);
  }
  uint8_t out[8];
  size_t n;
  /* an embedded NUL is outside the alphabet */
  assert_int_equal(bt__base64_decode("Zm\0v", 4, out, &n), BT_ERR_PARSE);
}

static void test_base64_round_trip_lengths(void **state) {
  uint8_t raw[300];
  char enc[410];
  uint8_t dec[300 * 3 / 4 + 300];
  for (size_t len = 0; len <= sizeof(raw); len++) {
    for (size_t i = 0; i < len; i++)
      raw[i] = (uint8_t)(i * 131 + len * 7);
    size_t n = bt__base64_encode(raw, len, enc);
    assert_int_equal(n, bt__base64_encoded_len(len));
    assert_int_equal(enc[n], '\0');
    size_t out_len;
    assert_int_equal(bt__base64_decode(enc, n, dec, &out_len), 0);
    assert_int_equal(out_len, len);
    assert_memory_equal(dec, raw, len);
    /* the padded form of the same data decodes the same */
    while (n % 4)
      enc[n++] = '=';
    assert_int_equal(bt__base64_decode(enc, n, dec, &out_len), 0);
    assert_int_equal(out_len, len);
    assert_memory_equal(dec, raw, len);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_base64_encode_rfc4648_unpadded),
      cmocka_unit_test(test_base64_decode_padded_and_unpadded),
      cmocka_unit_test(test_base64_full_alphabet),
      cmocka_unit_test(test_base64_decode_rejects),
      cmocka_unit_test(test_base64_round_trip_lengths),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
