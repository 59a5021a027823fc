/* msgin.c: incoming gRPC messages of one stream (see msgin.h). */
#include "msgin.h"

#include <stdio.h>
#include <string.h>

#include <baton/alloc.h>
#include <baton/error.h>
#include <baton/status.h>

#include "compress.h"

void bt__msgin_init(bt_msgin *in, size_t max_len,
                    int (*deliver)(void *ud, const uint8_t *msg, size_t len),
                    void *ud) {
  memset(in, 0, sizeof(*in));
  bt__frame_decoder_init(&in->dec, max_len);
  in->max_len = max_len;
  in->deliver = deliver;
  in->ud = ud;
}

void bt__msgin_clear(bt_msgin *in) {
  if (in->feeding) {
    in->cleared = 1;
    return;
  }
  bt__frame_decoder_clear(&in->dec);
}

/* Records why the stream's messages cannot be read; stops the decoder. */
static int fail(bt_msgin *in, int code, const char *why) {
  in->error_code = code;
  snprintf(in->error, sizeof(in->error), "%s", why);
  return 1;
}

static int on_frame(void *ud, int compressed, const uint8_t *msg, size_t len) {
  bt_msgin *in = ud;
  if (!compressed) {
    in->count++;
    return in->deliver(in->ud, msg, len) || in->cleared ? -1 : 0;
  }
  if (in->encoding == BT_ENCODING_IDENTITY)
    return fail(in, BT_GRPC_INTERNAL,
                "compressed message without grpc-encoding");
  uint8_t *plain;
  size_t plain_len;
  int rv = bt__gzip_decompress(msg, len, in->max_len, &plain, &plain_len);
  if (rv == BT_ERR_TOO_LARGE)
    return fail(in, BT_GRPC_RESOURCE_EXHAUSTED,
                "decompressed message larger than the receive limit");
  if (rv == BT_ERR_NOMEM)
    return fail(in, BT_GRPC_RESOURCE_EXHAUSTED,
                "out of memory decompressing a message");
  if (rv != 0)
    return fail(in, BT_GRPC_INTERNAL, "cannot decompress gzip message");
  in->count++;
  rv = in->deliver(in->ud, plain, plain_len);
  bt_free(plain);
  return rv || in->cleared ? -1 : 0;
}

int bt__msgin_feed(bt_msgin *in, const uint8_t *data, size_t len) {
  if (in->cleared)
    return -1;
  in->feeding = 1;
  int rv = bt__frame_decoder_feed(&in->dec, data, len, on_frame, in);
  in->feeding = 0;
  if (in->cleared) {
    bt__frame_decoder_clear(&in->dec);
    return -1;
  }
  if (rv == 0)
    return 0;
  if (rv == 1)
    return in->error_code;
  if (rv == -1)
    return -1;
  if (rv == BT_ERR_TOO_LARGE) {
    in->error_code = BT_GRPC_RESOURCE_EXHAUSTED;
    const uint8_t *h = in->dec.hdr;
    uint32_t len32 = (uint32_t)h[1] << 24 | (uint32_t)h[2] << 16 |
                     (uint32_t)h[3] << 8 | h[4];
    snprintf(in->error, sizeof(in->error),
             "received message larger than max (%u vs. %zu)", len32,
             in->max_len);
    return in->error_code;
  }
  if (rv == BT_ERR_NOMEM) {
    in->error_code = BT_GRPC_RESOURCE_EXHAUSTED;
    snprintf(in->error, sizeof(in->error), "out of memory for a message");
    return in->error_code;
  }
  in->error_code = BT_GRPC_INTERNAL;
  snprintf(in->error, sizeof(in->error), "malformed message framing");
  return in->error_code;
}

int bt__msgin_finish(bt_msgin *in) {
  if (!bt__frame_decoder_partial(&in->dec))
    return 0;
  in->error_code = BT_GRPC_INTERNAL;
  snprintf(in->error, sizeof(in->error),
           "stream ended in the middle of a message");
  return in->error_code;
}

int bt__encoding_parse(const char *value, size_t len, bt_encoding *enc) {
  if (len == 8 && memcmp(value, "identity", 8) == 0) {
    *enc = BT_ENCODING_IDENTITY;
    return 0;
  }
  if (len == 4 && memcmp(value, "gzip", 4) == 0) {
    *enc = BT_ENCODING_GZIP;
    return 0;
  }
  return -1;
}
