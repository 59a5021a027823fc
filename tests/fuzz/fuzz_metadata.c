/* fuzz_metadata.c: metadata as received from the wire, and base64.
 *
 * Input: one byte giving the name's length, the name, then the value.
 * Properties: add_wire either adds one entry or none; a "-bin" value that
 * decodes re-encodes to a wire form that decodes to the same bytes; nothing
 * leaks. The whole input is also tried as base64. */
#include <stdint.h>
#include <string.h>

#include <baton/alloc.h>
#include <baton/arena.h>
#include <baton/error.h>
#include <baton/metadata.h>
#include "base64.h"
#include "fuzz_check.h"
#include "metadata_wire.h"

static void check_base64(const uint8_t *data, size_t size) {
  uint8_t *dec = bt_malloc(size * 3 / 4 + 1);
  size_t n = 0;
  int rv = bt__base64_decode((const char *)data, size, dec, &n);
  FUZZ_CHECK(rv == 0 || rv == BT_ERR_PARSE);
  if (rv == 0) {
    FUZZ_CHECK(n <= size * 3 / 4);
    char *enc = bt_malloc(bt__base64_encoded_len(n) + 1);
    size_t elen = bt__base64_encode(dec, n, enc);
    FUZZ_CHECK(elen == bt__base64_encoded_len(n));
    uint8_t *again = bt_malloc(elen * 3 / 4 + 1);
    size_t n2 = 0;
    FUZZ_CHECK(bt__base64_decode(enc, elen, again, &n2) == 0);
    FUZZ_CHECK(n2 == n && (n == 0 || memcmp(again, dec, n) == 0));
    bt_free(again);
    bt_free(enc);
  }
  bt_free(dec);
}

static void check_wire(bt_metadata *md, const char *name, size_t name_len,
                       const uint8_t *value, size_t value_len) {
  size_t before = bt_metadata_count(md);
  int rv = bt__metadata_add_wire(md, name, name_len, value, value_len);
  FUZZ_CHECK(rv == 0 || rv == BT_ERR_INVAL || rv == BT_ERR_PARSE);
  FUZZ_CHECK(bt_metadata_count(md) == before + (rv == 0));
  FUZZ_CHECK(rv != BT_ERR_INVAL || !bt_metadata_key_is_valid(name, name_len));
  if (rv != 0)
    return;
  const char *key;
  const uint8_t *v;
  size_t vlen;
  FUZZ_CHECK(bt_metadata_at(md, before, &key, &v, &vlen) == 0);
  FUZZ_CHECK(strlen(key) == name_len && memcmp(key, name, name_len) == 0);
  FUZZ_CHECK(v[vlen] == 0);
  int binary = bt_metadata_key_is_binary(name, name_len);
  if (!binary) {
    FUZZ_CHECK(vlen == value_len && (vlen == 0 || !memcmp(v, value, vlen)));
  }
  /* what would go back on the wire comes back as the same entry */
  size_t wlen = bt__metadata_wire_value_len(key, v, vlen);
  char *wire = bt_malloc(wlen + 1);
  FUZZ_CHECK(bt__metadata_wire_value(key, v, vlen, wire) == wlen);
  FUZZ_CHECK(wire[wlen] == '\0');
  FUZZ_CHECK(bt__metadata_add_wire(md, key, name_len, (const uint8_t *)wire,
                                   wlen) == 0);
  const uint8_t *v2;
  size_t v2len;
  FUZZ_CHECK(bt_metadata_at(md, before + 1, NULL, &v2, &v2len) == 0);
  FUZZ_CHECK(v2len == vlen && (vlen == 0 || memcmp(v2, v, vlen) == 0));
  bt_free(wire);
  /* the user-facing add agrees with the key and value rules */
  rv = bt_metadata_add(md, name, name_len, v, vlen);
  FUZZ_CHECK(rv == 0 || rv == BT_ERR_INVAL);
  (void)bt_metadata_key_is_reserved(name, name_len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  long base = bt_alloc_live();
  check_base64(data, size);
  if (size >= 1) {
    size_t name_len = data[0];
    if (name_len > size - 1)
      name_len = size - 1;
    const char *name = (const char *)data + 1;
    const uint8_t *value = data + 1 + name_len;
    size_t value_len = size - 1 - name_len;

    bt_metadata *heap = bt_metadata_new(NULL);
    check_wire(heap, name, name_len, value, value_len);
    bt_metadata_free(heap);

    bt_arena *arena = bt_arena_new(64);
    bt_metadata *md = bt_metadata_new(arena);
    check_wire(md, name, name_len, value, value_len);
    bt_arena_free(arena);
  }
  FUZZ_CHECK(bt_alloc_live() == base);
  return 0;
}
