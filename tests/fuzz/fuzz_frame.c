/* fuzz_frame.c: the gRPC message decoder under random input and random
 * chunking.
 *
 * Input: 2 bytes of parameters (limit and chunking seed), then the stream.
 * Property: feeding the stream in random pieces delivers exactly the same
 * messages, and ends with the same result, as feeding it in one piece. */
#include <stdint.h>
#include <string.h>

#include <baton/alloc.h>
#include <baton/error.h>
#include "frame.h"
#include "fuzz_check.h"

typedef struct {
  uint64_t hash; /* FNV-1a over every (flag, length, bytes) delivered */
  size_t count;
  size_t max_len;
  const uint8_t *in; /* the single-feed input, for the zero-copy check */
  size_t in_len;
} digest;

static void mix(digest *dg, const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++) {
    dg->hash ^= p[i];
    dg->hash *= 1099511628211ULL;
  }
}

static int on_msg(void *ud, int compressed, const uint8_t *msg, size_t len) {
  digest *dg = ud;
  FUZZ_CHECK(compressed == 0 || compressed == 1);
  FUZZ_CHECK(len <= dg->max_len);
  FUZZ_CHECK(msg != NULL);
  /* fed in one piece, every message is delivered in place */
  if (dg->in && len > 0)
    FUZZ_CHECK(msg >= dg->in && msg + len <= dg->in + dg->in_len);
  uint8_t head[1 + sizeof(len)];
  head[0] = (uint8_t)compressed;
  memcpy(head + 1, &len, sizeof(len));
  mix(dg, head, sizeof(head));
  mix(dg, msg, len);
  dg->count++;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2)
    return 0;
  long base = bt_alloc_live();
  /* limits from 0 to 255 and one big one, to reach both refusal and
   * buffering */
  size_t max_len = data[0] == 255 ? (size_t)1 << 20 : data[0];
  uint32_t seed = data[1];
  const uint8_t *stream = data + 2;
  size_t len = size - 2;

  bt_frame_decoder d;
  digest whole = {14695981039346656037ULL, 0, max_len, stream, len};
  bt__frame_decoder_init(&d, max_len);
  int rv_whole = bt__frame_decoder_feed(&d, stream, len, on_msg, &whole);
  int partial_whole = rv_whole == 0 && bt__frame_decoder_partial(&d);
  bt__frame_decoder_clear(&d);
  FUZZ_CHECK(rv_whole == 0 || rv_whole == BT_ERR_PARSE ||
             rv_whole == BT_ERR_TOO_LARGE);

  digest pieces = {14695981039346656037ULL, 0, max_len, NULL, 0};
  bt__frame_decoder_init(&d, max_len);
  int rv_pieces = 0;
  size_t at = 0;
  while (at < len && rv_pieces == 0) {
    seed = seed * 1103515245u + 12345u;
    /* mostly small pieces, sometimes empty ones, sometimes large */
    size_t n = (seed >> 16) % 8 == 0 ? (seed >> 8) % 512 : (seed >> 16) % 7;
    if (n > len - at)
      n = len - at;
    rv_pieces = bt__frame_decoder_feed(&d, stream + at, n, on_msg, &pieces);
    at += n;
  }
  int partial_pieces = rv_pieces == 0 && bt__frame_decoder_partial(&d);
  bt__frame_decoder_clear(&d);

  FUZZ_CHECK(rv_whole == rv_pieces);
  FUZZ_CHECK(whole.count == pieces.count);
  FUZZ_CHECK(whole.hash == pieces.hash);
  FUZZ_CHECK(partial_whole == partial_pieces);
  FUZZ_CHECK(bt_alloc_live() == base);
  return 0;
}
