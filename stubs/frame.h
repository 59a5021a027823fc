/* frame.h (private): gRPC message framing, the 5-byte length prefix.
 *
 * The decoder is incremental: feed it DATA frame payloads as they come and it
 * calls back once per complete message, with a pointer into the input when
 * the message did not straddle a feed (no copy), else into its buffer. The
 * length is checked against the limit on the prefix, before any buffering. */
#ifndef BT_FRAME_H
#define BT_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define BT_FRAME_HEADER_LEN 5

typedef struct bt_frame_decoder {
  uint8_t hdr[BT_FRAME_HEADER_LEN];
  size_t hdr_have; /* prefix bytes seen of the current message */
  uint8_t *buf;    /* body of a straddling message (grows as it arrives) */
  size_t buf_cap;
  size_t body_len;  /* length from the prefix */
  size_t body_have; /* body bytes buffered */
  int compressed;   /* flag from the prefix */
  size_t max_len;
} bt_frame_decoder;

/* Called per message; a non-zero return stops decoding and is returned by
 * bt__frame_decoder_feed. msg is valid only during the call. */
typedef int (*bt_frame_cb)(void *ud, int compressed, const uint8_t *msg,
                           size_t len);

/* Caller-supplied storage; messages longer than max_len are refused. */
void bt__frame_decoder_init(bt_frame_decoder *d, size_t max_len);
/* Releases the buffer; the decoder can be initialised again. */
void bt__frame_decoder_clear(bt_frame_decoder *d);
/* Feeds len bytes. Returns 0, BT_ERR_TOO_LARGE (prefix over the limit),
 * BT_ERR_PARSE (flags byte other than 0 or 1), BT_ERR_NOMEM (no memory for
 * a message that straddles feeds) or the callback's value. After
 * an error the decoder must not be fed again. */
int bt__frame_decoder_feed(bt_frame_decoder *d, const uint8_t *data, size_t len,
                           bt_frame_cb cb, void *ud);
/* 1 when part of a message has been seen but not all of it (at the end of a
 * stream that is a truncated message). */
int bt__frame_decoder_partial(const bt_frame_decoder *d);
/* Writes the 5-byte prefix. */
void bt__frame_header_write(uint8_t out[BT_FRAME_HEADER_LEN], int compressed,
                            uint32_t len);

#endif
