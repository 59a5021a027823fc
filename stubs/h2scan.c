/* h2scan.c: the frame-header scanner of h2scan.h. */
#include "h2scan.h"

#include <string.h>

#define T_DATA 0x0
#define T_HEADERS 0x1
#define T_PRIORITY 0x2
#define T_RST_STREAM 0x3
#define F_END_STREAM 0x1

void bt__h2scan_init(bt_h2scan *s) {
  memset(s, 0, sizeof(*s));
  s->preface_left = 24;
}

static int was_ended(const bt_h2scan *s, int32_t stream) {
  /* Most frames are for a stream newer than every ended one. */
  if (stream > s->ended_max)
    return 0;
  for (size_t i = 0; i < BT_H2SCAN_ENDED; i++)
    if (s->ended[i] == stream)
      return 1;
  return 0;
}

static void remember_ended(bt_h2scan *s, int32_t stream) {
  if (was_ended(s, stream))
    return;
  s->ended[s->ended_next++ % BT_H2SCAN_ENDED] = stream;
  if (stream > s->ended_max)
    s->ended_max = stream;
}

/* A HEADERS frame on a stream below the highest one opened: trailers of a
 * stream opened earlier, or (an error) a new stream out of order. Every
 * stream opened since the oldest one remembered is remembered, so an id in
 * that range that is not among them was never opened. Below that range it
 * cannot be told and passes (nghttp2 ignores a stream it does not know). */
static int out_of_order(const bt_h2scan *s, int32_t stream) {
  int wrapped = s->opened_next > BT_H2SCAN_OPENED;
  size_t n = wrapped ? BT_H2SCAN_OPENED : s->opened_next;
  /* Not wrapped: every stream of the connection is remembered. */
  if (wrapped && stream < s->opened[s->opened_next % BT_H2SCAN_OPENED])
    return 0;
  for (size_t i = 0; i < n; i++)
    if (s->opened[i] == stream)
      return 0;
  return 1;
}

static uint32_t be24(const uint8_t *p) {
  return (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
}

static int32_t be31(const uint8_t *p) {
  return (int32_t)(((uint32_t)p[0] & 0x7f) << 24 | (uint32_t)p[1] << 16 |
                   (uint32_t)p[2] << 8 | p[3]);
}

/* A whole frame header arrived (at hdr, 9 bytes): judge what can be judged
 * from it. */
static bt_h2scan_verdict on_header(bt_h2scan *s, const uint8_t *hdr) {
  uint8_t type = hdr[3], flags = hdr[4];
  int32_t stream = be31(hdr + 5);
  s->type = type;
  s->payload_left = be24(hdr);
  s->stream = stream;
  if ((type == T_DATA || type == T_HEADERS) && stream > 0 &&
      was_ended(s, stream))
    return BT_H2SCAN_STREAM_CLOSED;
  if (type == T_HEADERS && stream > 0) {
    if (stream > s->max_opened) {
      s->max_opened = stream;
      s->opened[s->opened_next++ % BT_H2SCAN_OPENED] = stream;
    } else if (out_of_order(s, stream)) {
      return BT_H2SCAN_STREAM_ID_ORDER;
    }
  }
  if (type == T_PRIORITY) {
    s->priority_frames++;
    if (stream == 0)
      return BT_H2SCAN_PRIORITY_STREAM_0;
    s->pri_have = 0;
  }
  /* Ended from the next frame on: trailers (HEADERS + END_STREAM) may still
   * be followed by their CONTINUATION frames, which are neither type. */
  if (((type == T_DATA || type == T_HEADERS) && (flags & F_END_STREAM)) ||
      type == T_RST_STREAM)
    if (stream > 0)
      remember_ended(s, stream);
  return BT_H2SCAN_OK;
}

bt_h2scan_verdict bt__h2scan_feed(bt_h2scan *s, const uint8_t *data, size_t len,
                                  size_t *ok_len) {
  size_t i = 0;
  size_t frame_start = 0; /* where the frame being looked at began */
  if (s->preface_left) {
    size_t n = len < s->preface_left ? len : s->preface_left;
    s->preface_left -= n;
    i = n;
  }
  while (i < len) {
    if (s->hdr_have == 0 && len - i >= 9) {
      /* The usual case: a whole header in this piece, read in place. */
      frame_start = i;
      bt_h2scan_verdict v = on_header(s, data + i);
      i += 9;
      if (v != BT_H2SCAN_OK) {
        *ok_len = frame_start;
        return v;
      }
      if (s->payload_left > 0)
        s->hdr_have = 9;
      else
        continue;
    } else if (s->hdr_have < 9) {
      if (s->hdr_have == 0)
        frame_start = i;
      size_t n = 9 - s->hdr_have;
      if (n > len - i)
        n = len - i;
      memcpy(s->hdr + s->hdr_have, data + i, n);
      s->hdr_have += n;
      i += n;
      if (s->hdr_have < 9)
        break;
      bt_h2scan_verdict v = on_header(s, s->hdr);
      if (v != BT_H2SCAN_OK) {
        /* A header that straddled feeds began before this one: nothing of
         * this feed is safe to hand on then. */
        *ok_len = frame_start;
        return v;
      }
      if (s->payload_left == 0)
        s->hdr_have = 0;
      continue;
    }
    /* Payload: the five bytes of a PRIORITY frame are kept. */
    if (s->type == T_PRIORITY && s->pri_have < 5) {
      size_t n = 5 - s->pri_have;
      if (n > len - i)
        n = len - i;
      if (n > s->payload_left)
        n = s->payload_left;
      memcpy(s->pri + s->pri_have, data + i, n);
      s->pri_have += n;
      s->payload_left -= (uint32_t)n;
      i += n;
      if (s->pri_have == 5 && be31(s->pri) == s->stream) {
        *ok_len = frame_start;
        return BT_H2SCAN_PRIORITY_SELF;
      }
    } else {
      size_t n = len - i;
      if (n > s->payload_left)
        n = s->payload_left;
      s->payload_left -= (uint32_t)n;
      i += n;
    }
    if (s->payload_left == 0)
      s->hdr_have = 0;
  }
  *ok_len = len;
  return BT_H2SCAN_OK;
}
