/* compress.c: the "gzip" grpc-encoding, with zlib.
 *
 * Decompression is bounded: the output buffer never grows past max_out, and
 * one spare byte of output space tells a message that is exactly max_out
 * long from one that is longer, so a zip bomb costs at most max_out bytes. */
#include "compress.h"

#include <baton/alloc.h>
#include <baton/error.h>

#include <limits.h>
#include <string.h>
#include <zlib.h>

/* windowBits 15 with 16 added: gzip wrapper rather than zlib's. */
#define GZIP_WINDOW_BITS (15 + 16)

/* zlib counts in uInt; feed it at most this much at a time. */
#define ZCHUNK ((size_t)UINT_MAX)

static uInt chunk(size_t n) {
  return n > ZCHUNK ? (uInt)ZCHUNK : (uInt)n;
}

int bt__gzip_compress(const uint8_t *in, size_t len, uint8_t **out,
                      size_t *out_len) {
  z_stream zs;
  memset(&zs, 0, sizeof(zs));
  int zr = deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED,
                        GZIP_WINDOW_BITS, 8, Z_DEFAULT_STRATEGY);
  if (zr != Z_OK)
    return zr == Z_MEM_ERROR ? BT_ERR_NOMEM : BT_ERR_INVAL;
  /* deflateBound covers the whole output for one deflate(Z_FINISH) when the
   * input fits in a uLong; it includes the gzip header and trailer. */
  size_t cap = deflateBound(&zs, (uLong)len);
  uint8_t *buf = bt_malloc(cap);
  size_t have_in = 0, have_out = 0;
  for (;;) {
    zs.next_in = (Bytef *)(in ? in + have_in : NULL);
    zs.avail_in = chunk(len - have_in);
    zs.next_out = buf + have_out;
    zs.avail_out = chunk(cap - have_out);
    uInt in0 = zs.avail_in, out0 = zs.avail_out;
    int last = (len - have_in) == zs.avail_in;
    zr = deflate(&zs, last ? Z_FINISH : Z_NO_FLUSH);
    have_in += in0 - zs.avail_in;
    have_out += out0 - zs.avail_out;
    if (zr == Z_STREAM_END)
      break;
    if (zr != Z_OK && zr != Z_BUF_ERROR) {
      deflateEnd(&zs);
      bt_free(buf);
      return BT_ERR_INVAL;
    }
    if (have_out == cap) {
      /* Only reachable past deflateBound's promise; grow rather than fail. */
      cap *= 2;
      buf = bt_realloc(buf, cap);
    }
  }
  deflateEnd(&zs);
  *out = buf;
  *out_len = have_out;
  return 0;
}

int bt__gzip_decompress(const uint8_t *in, size_t len, size_t max_out,
                        uint8_t **out, size_t *out_len) {
  z_stream zs;
  memset(&zs, 0, sizeof(zs));
  int zr = inflateInit2(&zs, GZIP_WINDOW_BITS);
  if (zr != Z_OK)
    return zr == Z_MEM_ERROR ? BT_ERR_NOMEM : BT_ERR_INVAL;
  /* Start near a typical ratio and double, never past max_out. */
  size_t cap = len < SIZE_MAX / 4 ? len * 4 : SIZE_MAX;
  if (cap < 256)
    cap = 256;
  if (cap > max_out)
    cap = max_out;
  /* The size is the peer's choice (up to max_out): running out of memory
   * fails this message, not the process. */
  uint8_t *buf = bt_try_malloc(cap);
  if (!buf) {
    inflateEnd(&zs);
    return BT_ERR_NOMEM;
  }
  size_t have_in = 0, have_out = 0;
  int rv = 0;
  for (;;) {
    uint8_t spare;
    int probing = have_out == cap;
    if (probing && cap < max_out) {
      size_t grown = cap > max_out / 2 ? max_out : cap * 2;
      uint8_t *more = bt_try_realloc(buf, grown);
      if (!more) {
        rv = BT_ERR_NOMEM;
        break;
      }
      buf = more;
      cap = grown;
      probing = 0;
    }
    zs.next_in = (Bytef *)(in ? in + have_in : NULL);
    zs.avail_in = chunk(len - have_in);
    /* At max_out, one byte of scratch: any output there means too large. */
    zs.next_out = probing ? &spare : buf + have_out;
    zs.avail_out = probing ? 1 : chunk(cap - have_out);
    uInt in0 = zs.avail_in, out0 = zs.avail_out;
    zr = inflate(&zs, Z_NO_FLUSH);
    have_in += in0 - zs.avail_in;
    size_t produced = out0 - zs.avail_out;
    if (probing && produced > 0) {
      rv = BT_ERR_TOO_LARGE;
      break;
    }
    have_out += produced;
    if (zr == Z_STREAM_END) {
      /* One gzip member per message: anything after it is garbage. */
      if (have_in != len)
        rv = BT_ERR_PARSE;
      break;
    }
    if (zr == Z_MEM_ERROR) {
      rv = BT_ERR_NOMEM;
      break;
    }
    if (zr == Z_NEED_DICT || zr == Z_DATA_ERROR || zr == Z_STREAM_ERROR) {
      rv = BT_ERR_PARSE;
      break;
    }
    if (zs.avail_out > 0 &&
        (have_in == len || (in0 == zs.avail_in && produced == 0))) {
      /* Room left but no end of stream and no progress: truncated. */
      rv = BT_ERR_PARSE;
      break;
    }
  }
  inflateEnd(&zs);
  if (rv != 0) {
    bt_free(buf);
    return rv;
  }
  *out = buf;
  *out_len = have_out;
  return 0;
}
