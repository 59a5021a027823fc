/* conn.h (private): one connection interface for TCP and TLS.
 *
 * A bt_conn owns a libuv TCP handle and, for TLS, an SSL object over memory
 * BIOs. The HTTP/2 layer above it sees plaintext only: bytes in through
 * on_read, bytes out through bt__conn_write from its on_flush, which the loop
 * calls once per turn after bt__conn_mark_dirty. Destruction is deferred: the
 * owner asks with bt__conn_close and is told with on_close, on a later turn,
 * after which the conn is freed. */
#ifndef BT_CONN_H
#define BT_CONN_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>
#include <uv.h>

#include <baton/loop.h>

typedef struct bt_conn bt_conn;
struct nghttp2_session;

typedef struct bt_conn_ops {
  /* Plaintext from the peer. Return 0 to go on, or a BT_ERR_* to flush
   * what is pending and close. */
  int (*on_read)(bt_conn *c, const uint8_t *data, size_t len, void *ud);
  /* Connected, TLS handshake (if any) done and ALPN h2 agreed. */
  void (*on_ready)(bt_conn *c, void *ud);
  /* Produce output now with bt__conn_write (once per turn when dirty). */
  void (*on_flush)(bt_conn *c, void *ud);
  /* The connection is gone; err is 0 for an orderly close or the BT_ERR_*
   * that ended it. The conn is freed right after this returns. */
  void (*on_close)(bt_conn *c, int err, void *ud);
} bt_conn_ops;

typedef struct bt_conn_limits {
  uint32_t handshake_timeout_ms; /* until on_ready; 0 = none */
  uint32_t write_timeout_ms;     /* a write that makes no progress; 0 = none */
  size_t read_pause_bytes; /* stop reading above this much pending output */
} bt_conn_limits;

/* Accepts a pending connection from server (a listening uv_tcp_t). ctx NULL
 * means plain TCP. Returns NULL when accept fails. */
bt_conn *bt__conn_accept(bt_loop *loop, uv_stream_t *server, SSL_CTX *ctx,
                         const bt_conn_limits *limits, const bt_conn_ops *ops,
                         void *ud);
/* Starts connecting to addr. With ctx, runs a TLS client handshake sending
 * server_name as SNI and, when verify_name, checking the certificate names
 * it (a DNS name or an IP address). Failures arrive through on_close. */
bt_conn *bt__conn_connect(bt_loop *loop, const struct sockaddr *addr,
                          SSL_CTX *ctx, const char *server_name,
                          int verify_name, const bt_conn_limits *limits,
                          const bt_conn_ops *ops, void *ud);

/* Queues bytes for the peer (encrypting them for TLS). */
void bt__conn_write(bt_conn *c, const uint8_t *data, size_t len);
/* Bytes queued or being written: the back-pressure measure. */
size_t bt__conn_pending(const bt_conn *c);
/* The owner's output high- and low-water marks (bytes pending). */
#define BT_CONN_OUTPUT_HIGH (1u << 20)
#define BT_CONN_OUTPUT_LOW (256u << 10)
/* 1 when at least BT_CONN_OUTPUT_HIGH bytes are pending: the owner should
 * stop producing; on_flush then comes again once the backlog is below
 * BT_CONN_OUTPUT_LOW, however the write completed. */
int bt__conn_output_full(bt_conn *c);
/* The HTTP/2 output pump of both sides (channel.c, srv_session.c): moves
 * h2's pending frames into c with bt__conn_write until h2 has none or c's
 * output is full. Stopping at full is safe: bt__conn_output_full marks the
 * owner, and on_flush (which pumps again) comes once the backlog is below
 * BT_CONN_OUTPUT_LOW, even when the write completes at once. An nghttp2
 * error closes c with BT_ERR_H2. */
void bt__conn_pump_h2(bt_conn *c, struct nghttp2_session *h2);
/* Stops reading from the peer until bt__conn_resume_reading (the owner's
 * buffer budget is spent); independent of the pause for pending output. */
void bt__conn_pause_reading(bt_conn *c);
void bt__conn_resume_reading(bt_conn *c);
int bt__conn_reading_paused(const bt_conn *c);
/* 1 when the peer has closed or reset the connection, told without reading
 * (a connection whose reading is paused would not notice otherwise). */
int bt__conn_peer_gone(bt_conn *c);
/* Frees this thread's cached output buffers (memory back to the system
 * after a burst; see server.c's trim). */
void bt__conn_cache_flush(void);
/* Asks for on_flush at the end of this loop turn. */
void bt__conn_mark_dirty(bt_conn *c);
/* Writes what is pending (bounded by the write timeout), then closes. err is
 * passed to on_close. Idempotent. */
void bt__conn_close(bt_conn *c, int err);
/* Arms (ms > 0) or clears (0) a timer that closes the connection with
 * BT_ERR_TIMEOUT: the owner's idle or settings timeout. */
void bt__conn_set_timeout(bt_conn *c, uint32_t ms);
/* "ip:port" of the peer. */
const char *bt__conn_peer(const bt_conn *c);
bt_loop *bt__conn_loop(const bt_conn *c);
/* A sentence on why the last TLS handshake failed, or "". */
const char *bt__conn_error(const bt_conn *c);

#endif
