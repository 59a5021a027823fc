/* frame.c: the gRPC length-prefixed message decoder.
 *
 * DATA payloads arrive in arbitrary pieces. A message wholly inside one piece
 * is handed to the callback in place; only a message that straddles pieces is
 * copied, into a buffer that grows with the bytes received (never past the
 * length the prefix announced, which was checked against the limit), so a
 * peer cannot make us allocate more than it sent, nor more than max_len. */
#include "frame.h"

#include <baton/alloc.h>
#include <baton/error.h>

#include <string.h>

/* A buffer kept for reuse between straddling messages up to this size;
 * larger ones are released after their message so an idle stream does not
 * pin max_len bytes. */
#define FRAME_KEEP_BUF (64 * 1024)
#define FRAME_FIRST_BUF (16 * 1024)

void bt__frame_decoder_init(bt_frame_decoder *d, size_t max_len) {
  memset(d, 0, sizeof(*d));
  d->max_len = max_len;
}

void bt__frame_decoder_clear(bt_frame_decoder *d) {
  if (!d)
    return;
  bt_free(d->buf);
  d->buf = NULL;
  d->buf_cap = 0;
  d->hdr_have = 0;
  d->body_len = 0;
  d->body_have = 0;
}

/* The prefix is complete: checks it and starts the body. */
static int begin_body(bt_frame_decoder *d) {
  if (d->hdr[0] > 1)
    return BT_ERR_PARSE;
  d->compressed = d->hdr[0];
  uint32_t len = (uint32_t)d->hdr[1] << 24 | (uint32_t)d->hdr[2] << 16 |
                 (uint32_t)d->hdr[3] << 8 | (uint32_t)d->hdr[4];
  if (len > d->max_len)
    return BT_ERR_TOO_LARGE;
  d->body_len = len;
  d->body_have = 0;
  return 0;
}

/* Room for need body bytes. The buffer grows with what arrived, doubling
 * up to the length the prefix announced: memory follows the bytes a peer
 * actually sent, not the size it claimed. */
static int grow(bt_frame_decoder *d, size_t need) {
  size_t cap = d->buf_cap ? d->buf_cap : FRAME_FIRST_BUF;
  while (cap < need)
    cap *= 2;
  if (cap > d->body_len)
    cap = d->body_len;
  uint8_t *buf = bt_try_realloc(d->buf, cap);
  if (!buf)
    return -1;
  d->buf = buf;
  d->buf_cap = cap;
  return 0;
}

/* Ready for the next prefix. */
static void end_message(bt_frame_decoder *d) {
  d->hdr_have = 0;
  d->body_len = 0;
  d->body_have = 0;
  if (d->buf_cap > FRAME_KEEP_BUF) {
    bt_free(d->buf);
    d->buf = NULL;
    d->buf_cap = 0;
  }
}

int bt__frame_decoder_feed(bt_frame_decoder *d, const uint8_t *data, size_t len,
                           bt_frame_cb cb, void *ud) {
  static const uint8_t empty[1];
  int rv;
  for (;;) {
    if (d->hdr_have < BT_FRAME_HEADER_LEN) {
      if (len == 0)
        return 0;
      size_t n = BT_FRAME_HEADER_LEN - d->hdr_have;
      if (n > len)
        n = len;
      memcpy(d->hdr + d->hdr_have, data, n);
      d->hdr_have += n;
      data += n;
      len -= n;
      if (d->hdr_have < BT_FRAME_HEADER_LEN)
        return 0;
      rv = begin_body(d);
      if (rv != 0)
        return rv;
    }
    if (d->body_have == 0 && len >= d->body_len) {
      /* Whole message in this piece: no copy. */
      const uint8_t *msg = d->body_len ? data : empty;
      size_t n = d->body_len;
      int compressed = d->compressed;
      data += n;
      len -= n;
      end_message(d);
      rv = cb(ud, compressed, msg, n);
      if (rv != 0)
        return rv;
      continue;
    }
    if (len == 0)
      return 0;
    size_t n = d->body_len - d->body_have;
    if (n > len)
      n = len;
    if (d->buf_cap < d->body_have + n && grow(d, d->body_have + n) != 0)
      return BT_ERR_NOMEM;
    memcpy(d->buf + d->body_have, data, n);
    d->body_have += n;
    data += n;
    len -= n;
    if (d->body_have < d->body_len)
      return 0;
    /* The callback sees the buffer before end_message may release it. */
    rv = cb(ud, d->compressed, d->buf, d->body_len);
    end_message(d);
    if (rv != 0)
      return rv;
  }
}

int bt__frame_decoder_partial(const bt_frame_decoder *d) {
  return d->hdr_have > 0;
}

void bt__frame_header_write(uint8_t out[BT_FRAME_HEADER_LEN], int compressed,
                            uint32_t len) {
  out[0] = compressed ? 1 : 0;
  out[1] = (uint8_t)(len >> 24);
  out[2] = (uint8_t)(len >> 16);
  out[3] = (uint8_t)(len >> 8);
  out[4] = (uint8_t)len;
}
