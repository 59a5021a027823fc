/* h2scan.h (private): a second look at the frames a client sends, for the
 * HTTP/2 rules nghttp2 cannot check in the mode Baton runs it in.
 *
 * Baton announces SETTINGS_NO_RFC7540_PRIORITIES (cheaper scheduling) and
 * drops closed streams at once; nghttp2 then ignores PRIORITY frames
 * entirely and cannot tell a frame on a stream the client had finished
 * from one on a stream it never knew. The scanner walks the frame headers
 * of the client's bytes before nghttp2 sees them (payloads are skipped,
 * except a PRIORITY frame's five bytes) and reports, at the first frame
 * that breaks one of these rules:
 *   - DATA or HEADERS on a stream the client itself ended (END_STREAM) or
 *     reset: RFC 9113 5.1, STREAM_CLOSED;
 *   - PRIORITY on stream 0: 6.3, PROTOCOL_ERROR (connection);
 *   - PRIORITY that makes a stream depend on itself: 5.3.1, PROTOCOL_ERROR;
 *   - HEADERS opening a stream with an id lower than one already opened
 *     (5.1.1, PROTOCOL_ERROR): told apart from trailers of an open stream
 *     by the ids of the last BT_H2SCAN_OPENED streams opened.
 * It remembers the last BT_H2SCAN_ENDED streams the client ended; a frame
 * on an older one goes to nghttp2, which ignores it (as it would any frame
 * on a stream it no longer keeps). */
#ifndef BT_H2SCAN_H
#define BT_H2SCAN_H

#include <stddef.h>
#include <stdint.h>

#define BT_H2SCAN_ENDED 16
#define BT_H2SCAN_OPENED 32

typedef enum {
  BT_H2SCAN_OK = 0,
  BT_H2SCAN_STREAM_CLOSED,     /* GOAWAY STREAM_CLOSED */
  BT_H2SCAN_PRIORITY_STREAM_0, /* GOAWAY PROTOCOL_ERROR */
  BT_H2SCAN_PRIORITY_SELF,     /* GOAWAY PROTOCOL_ERROR */
  BT_H2SCAN_STREAM_ID_ORDER,   /* GOAWAY PROTOCOL_ERROR */
} bt_h2scan_verdict;

typedef struct bt_h2scan {
  size_t preface_left; /* client connection preface still to skip */
  uint8_t hdr[9];
  size_t hdr_have;
  uint32_t payload_left; /* of the current frame */
  uint8_t pri[5];        /* a PRIORITY frame's payload */
  size_t pri_have;
  int32_t ended[BT_H2SCAN_ENDED]; /* streams the client finished */
  unsigned ended_next;
  int32_t ended_max; /* the highest of them */
  uint8_t type;      /* of the frame whose payload is being skipped */
  int32_t opened[BT_H2SCAN_OPENED]; /* streams opened, in order */
  unsigned opened_next;
  int32_t max_opened;
  unsigned long priority_frames; /* PRIORITY frames seen (glitches) */
  int32_t stream;                /* the verdict's stream */
} bt_h2scan;

/* For a server (the client's 24-byte preface comes first). */
void bt__h2scan_init(bt_h2scan *s);
/* Scans len more bytes. Returns BT_H2SCAN_OK, or a verdict with *ok_len
 * the bytes before the offending frame (hand those to nghttp2, then act on
 * the verdict; the scanner must not be fed again). */
bt_h2scan_verdict bt__h2scan_feed(bt_h2scan *s, const uint8_t *data, size_t len,
                                  size_t *ok_len);

#endif
