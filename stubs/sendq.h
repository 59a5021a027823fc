/* sendq.h (private): the queue of framed messages waiting for a stream's
 * DATA frames, shared by server calls and client calls. */
#ifndef BT_SENDQ_H
#define BT_SENDQ_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

typedef struct bt_sendq_chunk bt_sendq_chunk;

typedef struct bt_sendq {
  bt_sendq_chunk *head, *tail;
  size_t bytes; /* framed bytes not yet read */
} bt_sendq;

void bt__sendq_init(bt_sendq *q);
/* Frees every queued chunk. */
void bt__sendq_clear(bt_sendq *q);
/* Frames and queues a message: packed from msg, or copied from bytes. With
 * gzip the body is compressed and the flag set. Returns 0, BT_ERR_TOO_LARGE
 * or BT_ERR_NOMEM (nothing queued). */
int bt__sendq_push_message(bt_sendq *q, const ProtobufCMessage *msg, int gzip);
int bt__sendq_push_bytes(bt_sendq *q, const uint8_t *bytes, size_t len,
                         int gzip);
/* Copies up to len queued bytes into buf; returns how many. */
size_t bt__sendq_read(bt_sendq *q, uint8_t *buf, size_t len);

#endif
