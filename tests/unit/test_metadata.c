/* Tests for metadata.c: the ordered list, key rules and the wire form of
 * "-bin" values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include <baton/alloc.h>
#include <baton/arena.h>
#include <baton/error.h>
#include "metadata_wire.h"

#define KEY(s) (s), strlen(s)

static void test_metadata_add_and_read_back(void **state) {
  long base = bt_alloc_live();
  bt_metadata *md = bt_metadata_new(NULL);
  assert_int_equal(bt_metadata_count(md), 0);
  assert_int_equal(bt_metadata_add_str(md, "x-user", "alice"), 0);
  assert_int_equal(bt_metadata_add(md, KEY("x-id"), "12345", 3), 0);
  assert_int_equal(bt_metadata_count(md), 2);

  const char *key;
  const uint8_t *value;
  size_t len;
  assert_int_equal(bt_metadata_at(md, 0, &key, &value, &len), 0);
  assert_string_equal(key, "x-user");
  assert_int_equal(len, 5);
  assert_string_equal((const char *)value, "alice");
  assert_int_equal(bt_metadata_at(md, 1, &key, &value, &len), 0);
  assert_string_equal(key, "x-id");
  assert_int_equal(len, 3);
  /* the value is NUL-terminated at value_len, not at the source's end */
  assert_string_equal((const char *)value, "123");
  assert_int_equal(bt_metadata_at(md, 2, &key, &value, &len), BT_ERR_INVAL);

  bt_metadata_free(md);
  assert_int_equal(bt_alloc_live(), base);
}

static void test_metadata_keeps_order_and_duplicates(void **state) {
  bt_metadata *md = bt_metadata_new(NULL);
  char key[16], val[16];
  /* past the initial capacity, with a repeated key */
  for (int i = 0; i < 50; i++) {
    snprintf(key, sizeof(key), "k%d", i % 10);
    snprintf(val, sizeof(val), "v%d", i);
    assert_int_equal(bt_metadata_add_str(md, key, val), 0);
  }
  assert_int_equal(bt_metadata_count(md), 50);
  for (size_t i = 0; i < 50; i++) {
    const char *k;
    const uint8_t *v;
    assert_int_equal(bt_metadata_at(md, i, &k, &v, NULL), 0);
    snprintf(key, sizeof(key), "k%zu", i % 10);
    snprintf(val, sizeof(val), "v%zu", i);
    assert_string_equal(k, key);
    assert_string_equal((const char *)v, val);
  }
  /* get returns the first value for a key */
  size_t len = 0;
  const uint8_t *v = bt_metadata_get(md, "k3", &len);
  assert_non_null(v);
  assert_string_equal((const char *)v, "v3");
  assert_int_equal(len, 2);
  assert_non_null(bt_metadata_get(md, "k3", NULL));
  assert_null(bt_metadata_get(md, "k", NULL));
  assert_null(bt_metadata_get(md, "missing", &len));
  bt_metadata_free(md);
}

static void test_metadata_arena_backed(void **state) {
  bt_arena *a = bt_arena_new(0);
  long base = bt_alloc_live();
  size_t used = bt_arena_used(a);
  bt_metadata *md = bt_metadata_new(a);
  for (int i = 0; i < 20; i++)
    assert_int_equal(bt_metadata_add_str(md, "x-k", "value"), 0);
  assert_int_equal(bt_metadata_count(md), 20);
  assert_true(bt_arena_used(a) > used);
  /* all of it came from the arena (4 KiB first block suffices) */
  assert_int_equal(bt_alloc_live(), base);
  bt_metadata_free(md); /* no-op */
  assert_int_equal(bt_metadata_count(md), 20);
  bt_arena_free(a);
}

static void test_metadata_free_null(void **state) {
  bt_metadata_free(NULL);
  assert_int_equal(bt_metadata_count(NULL), 0);
  assert_null(bt_metadata_get(NULL, "a", NULL));
}

static void test_metadata_key_validation(void **state) {
  const char *good[] = {"a",
                        "x-user-id",
                        "foo_bar.baz",
                        "0-9",
                        "-",
                        "grpc-x",
                        "abcdefghijklmnopqrstuvwxyz0123456789_.-"};
  const char *bad[] = {"",    "X-User", "a b", "a:b", ":path", "key\x80",
                       "a/b", "a\tb",   "é",   "a!",  "a,b",   "a=b"};
  for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
    assert_true(bt_metadata_key_is_valid(KEY(good[i])));
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    assert_false(bt_metadata_key_is_valid(KEY(bad[i])));
  /* the length bounds the key: an embedded NUL is not a key character */
  assert_false(bt_metadata_key_is_valid("ab\0c", 4));
  assert_false(bt_metadata_key_is_valid(NULL, 0));

  bt_metadata *md = bt_metadata_new(NULL);
  assert_int_equal(bt_metadata_add_str(md, "Upper", "v"), BT_ERR_INVAL);
  assert_int_equal(bt_metadata_add_str(md, "", "v"), BT_ERR_INVAL);
  assert_int_equal(bt_metadata_add_str(md, ":authority", "v"), BT_ERR_INVAL);
  assert_int_equal(bt_metadata_count(md), 0);
  bt_metadata_free(md);
}

static void test_metadata_value_validation(void **state) {
  bt_metadata *md = bt_metadata_new(NULL);
  /* printable ASCII including space and tilde */
  assert_int_equal(bt_metadata_add_str(md, "a", " !~ok~ "), 0);
  assert_int_equal(bt_metadata_add_str(md, "a", ""), 0);
  assert_int_equal(bt_metadata_add_str(md, "a", "tab\there"), BT_ERR_INVAL);
  assert_int_equal(bt_metadata_add_str(md, "a", "nl\n"), BT_ERR_INVAL);
  assert_int_equal(bt_metadata_add_str(md, "a", "del\x7f"), BT_ERR_INVAL);
  assert_int_equal(bt_metadata_add_str(md, "a", "caf\xc3\xa9"), BT_ERR_INVAL);
  assert_int_equal(bt_metadata_add(md, KEY("a"), "a\0b", 3), BT_ERR_INVAL);
  assert_int_equal(bt_metadata_count(md), 2);
  /* binary values take any byte, NUL included */
  const uint8_t bin[] = {0, 0xFF, '\n', 0x7F, 0x80};
  assert_int_equal(bt_metadata_add(md, KEY("trace-bin"), bin, sizeof(bin)), 0);
  size_t len;
  const uint8_t *v = bt_metadata_get(md, "trace-bin", &len);
  assert_int_equal(len, sizeof(bin));
  assert_memory_equal(v, bin, sizeof(bin));
  bt_metadata_free(md);
}

static void test_metadata_key_is_binary(void **state) {
  assert_true(bt_metadata_key_is_binary(KEY("x-bin")));
  assert_true(bt_metadata_key_is_binary(KEY("-bin")));
  assert_true(bt_metadata_key_is_binary(KEY("grpc-status-details-bin")));
  assert_false(bt_metadata_key_is_binary(KEY("bin")));
  assert_false(bt_metadata_key_is_binary(KEY("x-binary")));
  assert_false(bt_metadata_key_is_binary(KEY("xbin")));
  assert_false(bt_metadata_key_is_binary(KEY("x-BIN")));
  assert_false(bt_metadata_key_is_binary(KEY("")));
  /* only the first len bytes count */
  assert_false(bt_metadata_key_is_binary("x-bin", 4));
}

static void test_metadata_key_is_reserved(void **state) {
  const char *reserved[] = {
      ":path",
      ":authority",
      ":status",
      "content-type",
      "te",
      "grpc-status",
      "grpc-message",
      "grpc-timeout",
      "grpc-encoding",
      "grpc-accept-encoding",
      "connection",
      "host",
      "transfer-encoding",
      "keep-alive",
      "upgrade",
      "proxy-connection",
      "content-length",
      "grpc-future-header",
  };
  const char *user[] = {
      "user-agent",
      "x-user-id",
      "authorization",
      "grpc-status-details-bin",
      "grpc-trace-bin",
      "content-typex",
      "tee",
      "grpc",
      "grpcx-status",
      "content",
  };
  for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
    if (!bt_metadata_key_is_reserved(KEY(reserved[i])))
      fail_msg("%s should be reserved", reserved[i]);
  }
  for (size_t i = 0; i < sizeof(user) / sizeof(user[0]); i++) {
    if (bt_metadata_key_is_reserved(KEY(user[i])))
      fail_msg("%s should not be reserved", user[i]);
  }
  /* the length bounds the key */
  assert_true(bt_metadata_key_is_reserved("teapot", 2));
  assert_false(bt_metadata_key_is_reserved("", 0));
}

static void test_metadata_wire_bin_decodes_padded_and_unpadded(void **state) {
  bt_metadata *md = bt_metadata_new(NULL);
  const char *padded = "AAH/gA==";
  const char *unpadded = "AAH/gA";
  assert_int_equal(bt__metadata_add_wire(md, KEY("a-bin"),
                                         (const uint8_t *)padded,
                                         strlen(padded)),
                   0);
  assert_int_equal(bt__metadata_add_wire(md, KEY("b-bin"),
                                         (const uint8_t *)unpadded,
                                         strlen(unpadded)),
                   0);
  const uint8_t want[] = {0x00, 0x01, 0xFF, 0x80};
  size_t len;
  const uint8_t *v = bt_metadata_get(md, "a-bin", &len);
  assert_int_equal(len, 4);
  assert_memory_equal(v, want, 4);
  v = bt_metadata_get(md, "b-bin", &len);
  assert_int_equal(len, 4);
  assert_memory_equal(v, want, 4);
  /* empty binary value */
  assert_int_equal(
      bt__metadata_add_wire(md, KEY("c-bin"), (const uint8_t *)"", 0), 0);
  v = bt_metadata_get(md, "c-bin", &len);
  assert_non_null(v);
  assert_int_equal(len, 0);
  bt_metadata_free(md);
}

static void test_metadata_wire_bad_base64_adds_nothing(void **state) {
  long base = bt_alloc_live();
  bt_metadata *md = bt_metadata_new(NULL);
  const char *bad[] = {"A", "AB=", "A===", "!!!!", "AB CD", "AB\n"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    assert_int_equal(bt__metadata_add_wire(md, KEY("x-bin"),
                                           (const uint8_t *)bad[i],
                                           strlen(bad[i])),
                     BT_ERR_PARSE);
  }
  assert_int_equal(bt_metadata_count(md), 0);
  assert_null(bt_metadata_get(md, "x-bin", NULL));
  bt_metadata_free(md);
  assert_int_equal(bt_alloc_live(), base);
}

static void test_metadata_wire_plain_and_bad_names(void **state) {
  bt_metadata *md = bt_metadata_new(NULL);
  /* plain values are copied as received (the HTTP/2 library checked them) */
  const uint8_t v[] = "caf\xc3\xa9";
  assert_int_equal(bt__metadata_add_wire(md, KEY("x-name"), v, 5), 0);
  size_t len;
  const uint8_t *got = bt_metadata_get(md, "x-name", &len);
  assert_int_equal(len, 5);
  assert_memory_equal(got, v, 5);
  assert_int_equal(
      bt__metadata_add_wire(md, KEY("X-Upper"), (const uint8_t *)"v", 1),
      BT_ERR_INVAL);
  assert_int_equal(bt__metadata_add_wire(md, "", 0, (const uint8_t *)"v", 1),
                   BT_ERR_INVAL);
  assert_int_equal(bt_metadata_count(md), 1);
  bt_metadata_free(md);
}

static void test_metadata_wire_value_encodes_bin_unpadded(void **state) {
  const uint8_t raw[] = {0x00, 0x01, 0xFF, 0x80};
  char out[32];
  assert_int_equal(bt__metadata_wire_value_len("a-bin", raw, 4), 6);
  assert_int_equal(bt__metadata_wire_value("a-bin", raw, 4, out), 6);
  assert_string_equal(out, "AAH/gA");
  assert_int_equal(bt__metadata_wire_value_len("plain", raw, 2), 2);
  assert_int_equal(
      bt__metadata_wire_value("plain", (const uint8_t *)"hey", 3, out), 3);
  assert_string_equal(out, "hey");
  assert_int_equal(bt__metadata_wire_value("e-bin", raw, 0, out), 0);
  assert_string_equal(out, "");
}

static void test_metadata_wire_round_trip(void **state) {
  bt_arena *a = bt_arena_new(0);
  bt_metadata *md = bt_metadata_new(a);
  uint8_t raw[64];
  char wire[128];
  for (size_t n = 0; n < sizeof(raw); n++) {
    for (size_t i = 0; i < n; i++)
      raw[i] = (uint8_t)(i * 53 + n);
    size_t wl = bt__metadata_wire_value("r-bin", raw, n, wire);
    assert_int_equal(wl, bt__metadata_wire_value_len("r-bin", raw, n));
    assert_int_equal(wire[wl], '\0');
    assert_null(strchr(wire, '='));
    assert_int_equal(
        bt__metadata_add_wire(md, KEY("r-bin"), (const uint8_t *)wire, wl), 0);
    const uint8_t *v;
    size_t len;
    assert_int_equal(bt_metadata_at(md, n, NULL, &v, &len), 0);
    assert_int_equal(len, n);
    assert_memory_equal(v, raw, n);
    assert_int_equal(v[len], 0);
  }
  bt_arena_free(a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_metadata_add_and_read_back),
      cmocka_unit_test(test_metadata_keeps_order_and_duplicates),
      cmocka_unit_test(test_metadata_arena_backed),
      cmocka_unit_test(test_metadata_free_null),
      cmocka_unit_test(test_metadata_key_validation),
      cmocka_unit_test(test_metadata_value_validation),
      cmocka_unit_test(test_metadata_key_is_binary),
      cmocka_unit_test(test_metadata_key_is_reserved),
      cmocka_unit_test(test_metadata_wire_bin_decodes_padded_and_unpadded),
      cmocka_unit_test(test_metadata_wire_bad_base64_adds_nothing),
      cmocka_unit_test(test_metadata_wire_plain_and_bad_names),
      cmocka_unit_test(test_metadata_wire_value_encodes_bin_unpadded),
      cmocka_unit_test(test_metadata_wire_round_trip),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
