/* sendq.c: framed outbound messages of one stream (see sendq.h). A message
 * is packed straight behind its 5-byte prefix in one allocation. */
#include "sendq.h"

#include <string.h>

#include <baton/alloc.h>
#include <baton/error.h>

#include "compress.h"
#include "frame.h"

struct bt_sendq_chunk {
  bt_sendq_chunk *next;
  size_t len; /* prefix + body */
  size_t off; /* already read */
  uint8_t data[];
};

void bt__sendq_init(bt_sendq *q) {
  q->head = q->tail = NULL;
  q->bytes = 0;
}

void bt__sendq_clear(bt_sendq *q) {
  bt_sendq_chunk *c = q->head;
  while (c) {
    bt_sendq_chunk *next = c->next;
    bt_free(c);
    c = next;
  }
  bt__sendq_init(q);
}

static void append(bt_sendq *q, bt_sendq_chunk *c) {
  c->next = NULL;
  if (q->tail)
    q->tail->next = c;
  else
    q->head = c;
  q->tail = c;
  q->bytes += c->len;
}

/* NULL when out of memory: a message is as large as a handler or a peer
 * made it, so that fails the one call (BT_ERR_NOMEM), not the process. */
static bt_sendq_chunk *chunk_new(size_t body) {
  bt_sendq_chunk *c = bt_try_malloc(sizeof(*c) + BT_FRAME_HEADER_LEN + body);
  if (!c)
    return NULL;
  c->len = BT_FRAME_HEADER_LEN + body;
  c->off = 0;
  return c;
}

static int push_compressed(bt_sendq *q, const uint8_t *bytes, size_t len) {
  uint8_t *z;
  size_t zlen;
  int rv = bt__gzip_compress(bytes, len, &z, &zlen);
  if (rv != 0)
    return rv;
  bt_sendq_chunk *c = chunk_new(zlen);
  if (!c) {
    bt_free(z);
    return BT_ERR_NOMEM;
  }
  bt__frame_header_write(c->data, 1, (uint32_t)zlen);
  memcpy(c->data + BT_FRAME_HEADER_LEN, z, zlen);
  bt_free(z);
  append(q, c);
  return 0;
}

int bt__sendq_push_bytes(bt_sendq *q, const uint8_t *bytes, size_t len,
                         int gzip) {
  if (len > UINT32_MAX)
    return BT_ERR_TOO_LARGE;
  if (gzip)
    return push_compressed(q, bytes, len);
  bt_sendq_chunk *c = chunk_new(len);
  if (!c)
    return BT_ERR_NOMEM;
  bt__frame_header_write(c->data, 0, (uint32_t)len);
  if (len)
    memcpy(c->data + BT_FRAME_HEADER_LEN, bytes, len);
  append(q, c);
  return 0;
}

int bt__sendq_push_message(bt_sendq *q, const ProtobufCMessage *msg, int gzip) {
  size_t len = protobuf_c_message_get_packed_size(msg);
  if (len > UINT32_MAX)
    return BT_ERR_TOO_LARGE;
  bt_sendq_chunk *c = chunk_new(len);
  if (!c)
    return BT_ERR_NOMEM;
  protobuf_c_message_pack(msg, c->data + BT_FRAME_HEADER_LEN);
  if (gzip) {
    int rv = push_compressed(q, c->data + BT_FRAME_HEADER_LEN, len);
    bt_free(c);
    return rv;
  }
  bt__frame_header_write(c->data, 0, (uint32_t)len);
  append(q, c);
  return 0;
}

size_t bt__sendq_read(bt_sendq *q, uint8_t *buf, size_t len) {
  size_t done = 0;
  while (done < len && q->head) {
    bt_sendq_chunk *c = q->head;
    size_t n = c->len - c->off;
    if (n > len - done)
      n = len - done;
    memcpy(buf + done, c->data + c->off, n);
    c->off += n;
    done += n;
    if (c->off == c->len) {
      q->head = c->next;
      if (!q->head)
        q->tail = NULL;
      bt_free(c);
    }
  }
  q->bytes -= done;
  return done;
}
