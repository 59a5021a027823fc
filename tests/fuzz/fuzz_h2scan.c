/* fuzz_h2scan.c: the server's frame-header scanner under random bytes and
 * random chunking.
 *
 * Input: 1 byte of chunking seed, then what a client sends (the preface is
 * prepended, so the frames are reached).
 * Properties: fed in random pieces it gives the same verdict, at the same
 * frame, and counts the same PRIORITY frames as fed in one piece; the good
 * bytes it reports never pass the piece it was given. */
#include <stdint.h>
#include <string.h>

#include "fuzz_check.h"
#include "h2scan.h"

#define PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

typedef struct outcome {
  bt_h2scan_verdict v;
  size_t at; /* bytes of the stream judged good */
  unsigned long priorities;
} outcome;

static outcome run(const uint8_t *in, size_t len, uint8_t seed) {
  bt_h2scan s;
  bt__h2scan_init(&s);
  outcome o = {BT_H2SCAN_OK, 0, 0};
  size_t off = 0;
  uint32_t x = seed * 2654435761u + 1;
  while (off < len) {
    size_t n = len - off;
    if (seed) {
      x = x * 1103515245u + 12345u;
      size_t piece = 1 + (x >> 16) % 40;
      if (piece < n)
        n = piece;
    }
    size_t ok = (size_t)-1;
    o.v = bt__h2scan_feed(&s, in + off, n, &ok);
    FUZZ_CHECK(ok <= n);
    o.priorities = s.priority_frames;
    if (o.v != BT_H2SCAN_OK) {
      o.at = off + ok;
      return o;
    }
    off += n;
  }
  o.at = len;
  return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1 || size > 65536)
    return 0;
  static uint8_t buf[24 + 65536];
  memcpy(buf, PREFACE, 24);
  memcpy(buf + 24, data + 1, size - 1);
  size_t len = 24 + size - 1;
  outcome whole = run(buf, len, 0);
  outcome pieces = run(buf, len, data[0] | 1);
  FUZZ_CHECK(whole.v == pieces.v);
  FUZZ_CHECK(whole.priorities == pieces.priorities);
  /* In pieces the good bytes stop at the same frame, or at the start of
   * the piece its header was completed in. */
  FUZZ_CHECK(pieces.at <= len);
  if (whole.v != BT_H2SCAN_OK)
    FUZZ_CHECK(pieces.at >= 24 || whole.at < 24);
  return 0;
}
