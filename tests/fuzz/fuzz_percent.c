/* fuzz_percent.c: grpc-message percent-encoding.
 *
 * Properties: decoding never grows the text; what decoding yields encodes to
 * printable ASCII that decodes back to the same bytes; encoding the raw
 * input and decoding it gives the input back. */
#include <stdint.h>
#include <string.h>

#include <baton/alloc.h>
#include "fuzz_check.h"
#include "percent.h"

static void check_round_trip(const uint8_t *raw, size_t len) {
  size_t elen = bt__percent_encoded_len(raw, len);
  FUZZ_CHECK(elen >= len && elen <= len * 3);
  char *enc = bt_malloc(elen + 1);
  FUZZ_CHECK(bt__percent_encode(raw, len, enc) == elen);
  FUZZ_CHECK(enc[elen] == '\0');
  for (size_t i = 0; i < elen; i++)
    FUZZ_CHECK(enc[i] >= 0x20 && enc[i] <= 0x7E);
  uint8_t *dec = bt_malloc(elen + 1);
  FUZZ_CHECK(bt__percent_decode(enc, elen, dec) == len);
  FUZZ_CHECK(len == 0 || memcmp(dec, raw, len) == 0);
  bt_free(dec);
  bt_free(enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint8_t *dec = bt_malloc(size + 1);
  size_t n = bt__percent_decode((const char *)data, size, dec);
  FUZZ_CHECK(n <= size);
  FUZZ_CHECK(dec[n] == 0);
  check_round_trip(dec, n);
  bt_free(dec);
  check_round_trip(data, size);
  return 0;
}
