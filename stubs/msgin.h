/* msgin.h (private): the receiving side of a stream's messages: framing,
 * the size limit and decompression, turned into gRPC status codes. Shared by
 * server calls and client calls. */
#ifndef BT_MSGIN_H
#define BT_MSGIN_H

#include <stddef.h>
#include <stdint.h>

#include "frame.h"

typedef enum { BT_ENCODING_IDENTITY = 0, BT_ENCODING_GZIP = 1 } bt_encoding;

typedef struct bt_msgin {
  bt_frame_decoder dec;
  bt_encoding encoding; /* from grpc-encoding; identity when absent */
  size_t max_len;
  /* set by the frame callback when it fails */
  int error_code;
  char error[128];
  int (*deliver)(void *ud, const uint8_t *msg, size_t len);
  void *ud;
  unsigned long count; /* messages delivered */
  int feeding;         /* inside bt__msgin_feed */
  int cleared;         /* bt__msgin_clear came during a feed: stop it */
} bt_msgin;

/* deliver gets each decoded message (valid only during the call); a
 * non-zero return stops decoding. */
void bt__msgin_init(bt_msgin *in, size_t max_len,
                    int (*deliver)(void *ud, const uint8_t *msg, size_t len),
                    void *ud);
/* Releases the decoder's buffer. Called from inside deliver (a message's
 * handler ended the call), it stops the feed and releases once the decoder
 * has returned. */
void bt__msgin_clear(bt_msgin *in);
/* Feeds DATA payload. Returns 0, or a gRPC status code with in->error set
 * (RESOURCE_EXHAUSTED over the limit, INTERNAL for bad framing, a
 * compressed message without grpc-encoding or corrupt gzip), or what
 * deliver returned (as a negative number). */
int bt__msgin_feed(bt_msgin *in, const uint8_t *data, size_t len);
/* Called at the end of the stream: INTERNAL when a message was cut short. */
int bt__msgin_finish(bt_msgin *in);
/* Parses a grpc-encoding value: 0 with *enc, or -1 when unsupported. */
int bt__encoding_parse(const char *value, size_t len, bt_encoding *enc);

#endif
