/* conn.c: bt_conn, TCP and TLS connections on libuv (see conn.h).
 *
 * Output is gathered in one buffer per connection and handed to libuv as a
 * single write per loop turn; while that write is in flight new output
 * accumulates in a second buffer. Reading pauses while too much output is
 * pending, so a peer that does not read cannot make us buffer without bound.
 * bt__conn_pump_h2 fills it from an nghttp2 session, for clients and servers
 * alike. */
/* POLLRDHUP (Linux) */
#define _GNU_SOURCE
#include "conn.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <baton/alloc.h>
#include <baton/error.h>

#include "alloc_cache.h"
#include "loop_int.h"
#include "thread_cache.h"
#include "tls.h"

#define READ_CHUNK 65536

struct bt_conn {
  bt_flushable flushable; /* first: the loop hands it back to us */
  uv_tcp_t tcp;
  uv_connect_t connect_req;
  uv_write_t write_req;
  uv_timer_t owner_timer; /* bt__conn_set_timeout / handshake */
  uv_timer_t write_timer; /* a write that makes no progress */
  bt_loop *loop;
  const bt_conn_ops *ops;
  void *ud;
  bt_conn_limits limits;
  SSL *ssl;
  BIO *rbio, *wbio; /* network side of the TLS engine */
  int ready;
  int reading;
  int owner_paused; /* bt__conn_pause_reading: the owner's budget is spent */
  int want_drain;   /* the owner stopped producing at the high-water mark */
  int closing;      /* bt__conn_close called: flush then close */
  int handle_closing;
  int close_err;
  int handles_open; /* tcp + two timers, for the deferred free */
  uint8_t *out;     /* accumulating output */
  size_t out_len, out_cap;
  size_t plain_len; /* TLS: plaintext of this turn in the thread's buffer */
  uint8_t *wbuf;    /* output being written */
  size_t wlen, wcap;
  char peer[64];
  char error[160];
};

static _Thread_local uint8_t tls_plain[READ_CHUNK];

static void conn_flush(bt_flushable *f);
static void start_write(bt_conn *c);
static void close_now(bt_conn *c, int err);

/* TLS records carry up to 16 KiB: a turn's frames are sealed together in
 * full records instead of one record per HTTP/2 frame, which would cost the
 * peer a read (and us a MAC) per frame. */
#define TLS_RECORD 16384

/* The plaintext waits in one buffer per thread, not per connection (an
 * idle connection holds none): a connection's writes and their sealing
 * happen in one go (its flush, or its close), so one connection at a time
 * uses it; `plain_owner` says which, and a write by another seals the
 * owner's first. */
typedef struct plain_buf {
  uint8_t *buf;
  size_t cap;
} plain_buf;

static _Thread_local bt_conn *plain_owner;
static _Thread_local plain_buf *tls_plain_buf;

/* At thread exit (thread_cache.h). */
static void plain_destroy(void *p) {
  plain_buf *pb = p;
  tls_plain_buf = NULL;
  free(pb->buf);
}

static plain_buf *thread_plain(void) {
  if (tls_plain_buf)
    return tls_plain_buf;
  tls_plain_buf = bt__thread_cache_new(sizeof(plain_buf), plain_destroy);
  if (!tls_plain_buf)
    abort(); /* out of memory, or a write from a thread's exit handlers */
  return tls_plain_buf;
}

static void seal(bt_conn *c);

static void append_plain(bt_conn *c, const uint8_t *data, size_t len) {
  if (plain_owner && plain_owner != c)
    seal(plain_owner);
  plain_buf *pb = thread_plain();
  if (c->plain_len + len > pb->cap) {
    size_t cap = pb->cap ? pb->cap : 4 * TLS_RECORD;
    while (cap < c->plain_len + len)
      cap *= 2;
    uint8_t *buf = realloc(pb->buf, cap);
    if (!buf) {
      fprintf(stderr, "baton: out of memory (%zu bytes) at %s:%d\n", cap,
              __FILE__, __LINE__);
      abort();
    }
    pb->buf = buf;
    pb->cap = cap;
  }
  memcpy(pb->buf + c->plain_len, data, len);
  c->plain_len += len;
  plain_owner = c;
}

/* Output buffers of the usual size go back to a per-thread pool when a
 * connection has written everything, so an idle connection holds none. */
#define OUT_BUF 16384
#define OUT_POOL_MAX 256

typedef struct out_pool {
  void *free[OUT_POOL_MAX];
  size_t n;
} out_pool;

static _Thread_local out_pool *tls_out_pool;

static void pool_empty(out_pool *op) {
  while (op->n) {
    bt__alloc_note_cached(-1);
    bt_free(op->free[--op->n]);
  }
}

/* At thread exit (thread_cache.h); buffers released later on this thread
 * find no pool and are freed. */
static void pool_destroy(void *p) {
  tls_out_pool = NULL;
  pool_empty(p);
}

/* NULL when out of memory or the thread is exiting: no pooling then. */
static out_pool *thread_pool(void) {
  if (tls_out_pool)
    return tls_out_pool;
  tls_out_pool = bt__thread_cache_new(sizeof(out_pool), pool_destroy);
  return tls_out_pool;
}

void bt__conn_cache_flush(void) {
  if (tls_out_pool)
    pool_empty(tls_out_pool);
  /* The thread's TLS plaintext buffer, when no connection is using it. */
  if (!plain_owner && tls_plain_buf) {
    free(tls_plain_buf->buf);
    tls_plain_buf->buf = NULL;
    tls_plain_buf->cap = 0;
  }
}

static void buf_put(uint8_t *b, size_t cap) {
  if (!b)
    return;
  out_pool *op = thread_pool();
  if (op && cap == OUT_BUF && op->n < OUT_POOL_MAX) {
    op->free[op->n++] = b;
    bt__alloc_note_cached(1);
    return;
  }
  bt_free(b);
}

/* Room for need more bytes in the accumulating buffer. */
static void ensure_out(bt_conn *c, size_t need) {
  if (c->out_len + need <= c->out_cap)
    return;
  if (!c->out) {
    out_pool *op = thread_pool();
    if (op && op->n && need <= OUT_BUF) {
      c->out = op->free[--op->n];
      bt__alloc_note_cached(-1);
      c->out_cap = OUT_BUF;
      return;
    }
  }
  size_t cap = c->out_cap ? c->out_cap : OUT_BUF;
  while (cap < c->out_len + need)
    cap *= 2;
  c->out = bt_realloc(c->out, cap);
  c->out_cap = cap;
}

/* Everything is written: hand the buffers back to the pool. */
static void release_idle_buffers(bt_conn *c) {
  if (c->wlen || c->out_len)
    return;
  buf_put(c->wbuf, c->wcap);
  c->wbuf = NULL;
  c->wcap = 0;
  buf_put(c->out, c->out_cap);
  c->out = NULL;
  c->out_cap = 0;
}

static void append_out(bt_conn *c, const uint8_t *data, size_t len) {
  ensure_out(c, len);
  memcpy(c->out + c->out_len, data, len);
  c->out_len += len;
}

/* Moves whatever the TLS engine wants to send into the output buffer. */
static void drain_wbio(bt_conn *c) {
  if (!c->wbio)
    return;
  size_t pending;
  while ((pending = BIO_ctrl_pending(c->wbio)) > 0) {
    ensure_out(c, pending);
    int n = BIO_read(c->wbio, c->out + c->out_len, (int)pending);
    if (n <= 0)
      break;
    c->out_len += (size_t)n;
  }
}

static void set_peer(bt_conn *c) {
  struct sockaddr_storage ss;
  int len = sizeof(ss);
  char ip[INET6_ADDRSTRLEN] = "?";
  int port = 0;
  if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
    if (ss.ss_family == AF_INET) {
      struct sockaddr_in *a = (struct sockaddr_in *)&ss;
      uv_ip4_name(a, ip, sizeof(ip));
      port = ntohs(a->sin_port);
    } else if (ss.ss_family == AF_INET6) {
      struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
      uv_ip6_name(a, ip, sizeof(ip));
      port = ntohs(a->sin6_port);
    }
  }
  snprintf(c->peer, sizeof(c->peer), "%s:%d", ip, port);
}

static bt_conn *conn_new(bt_loop *loop, SSL_CTX *ctx,
                         const bt_conn_limits *limits, const bt_conn_ops *ops,
                         void *ud) {
  bt_conn *c = bt_calloc(1, sizeof(*c));
  uv_loop_t *uv = bt_loop_uv(loop);
  c->flushable.flush = conn_flush;
  c->loop = loop;
  c->ops = ops;
  c->ud = ud;
  if (limits)
    c->limits = *limits;
  if (c->limits.read_pause_bytes == 0)
    c->limits.read_pause_bytes = 4u << 20;
  uv_tcp_init(uv, &c->tcp);
  uv_timer_init(uv, &c->owner_timer);
  uv_timer_init(uv, &c->write_timer);
  c->tcp.data = c->owner_timer.data = c->write_timer.data = c;
  c->handles_open = 3;
  if (ctx) {
    c->ssl = SSL_new(ctx);
    c->rbio = BIO_new(BIO_s_mem());
    c->wbio = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(c->rbio, -1);
    SSL_set_bio(c->ssl, c->rbio, c->wbio);
  }
  return c;
}

static void handle_closed(uv_handle_t *h) {
  bt_conn *c = h->data;
  if (--c->handles_open > 0)
    return;
  if (c->ops->on_close)
    c->ops->on_close(c, c->close_err, c->ud);
  if (c->ssl)
    SSL_free(c->ssl); /* frees both BIOs */
  if (plain_owner == c)
    plain_owner = NULL;
  buf_put(c->out, c->out_cap);
  buf_put(c->wbuf, c->wcap);
  bt_free(c);
}

static void close_now(bt_conn *c, int err) {
  if (c->handle_closing)
    return;
  c->handle_closing = 1;
  c->closing = 1;
  if (!c->close_err)
    c->close_err = err;
  bt__loop_unmark_dirty(c->loop, &c->flushable);
  uv_close((uv_handle_t *)&c->tcp, handle_closed);
  uv_close((uv_handle_t *)&c->owner_timer, handle_closed);
  uv_close((uv_handle_t *)&c->write_timer, handle_closed);
}

static void owner_timeout(uv_timer_t *t) {
  bt_conn *c = t->data;
  close_now(c, BT_ERR_TIMEOUT);
}

static void write_stalled(uv_timer_t *t) {
  bt_conn *c = t->data;
  close_now(c, BT_ERR_TIMEOUT);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  /* Each read is consumed before the next, so one buffer per thread does. */
  static _Thread_local char chunk[READ_CHUNK];
  buf->base = chunk;
  buf->len = sizeof(chunk);
}

static void pause_reading(bt_conn *c) {
  if (c->reading) {
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = 0;
  }
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void resume_reading(bt_conn *c) {
  if (!c->reading && !c->closing && !c->owner_paused &&
      bt__conn_pending(c) <= c->limits.read_pause_bytes) {
    uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
    c->reading = 1;
  }
}

static int deliver(bt_conn *c, const uint8_t *data, size_t len) {
  int rv = c->ops->on_read(c, data, len, c->ud);
  if (rv != 0) {
    bt__conn_close(c, rv);
    return rv;
  }
  return 0;
}

static int check_alpn(bt_conn *c) {
  const unsigned char *proto = NULL;
  unsigned int len = 0;
  SSL_get0_alpn_selected(c->ssl, &proto, &len);
  if (len != 2 || memcmp(proto, "h2", 2) != 0) {
    snprintf(c->error, sizeof(c->error), "peer did not agree to ALPN h2");
    return -1;
  }
  return 0;
}

static void become_ready(bt_conn *c) {
  c->ready = 1;
  uv_timer_stop(&c->owner_timer);
  if (c->ops->on_ready)
    c->ops->on_ready(c, c->ud);
  bt__conn_mark_dirty(c);
}

/* Runs the handshake on what arrived; returns <0 when it failed. */
static int tls_handshake(bt_conn *c) {
  int rv = SSL_do_handshake(c->ssl);
  drain_wbio(c);
  if (rv == 1) {
    if (check_alpn(c) != 0)
      return -1;
    become_ready(c);
    return 0;
  }
  int err = SSL_get_error(c->ssl, rv);
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
    bt__conn_mark_dirty(c);
    return 0;
  }
  unsigned long e = ERR_peek_error();
  long vr = SSL_get_verify_result(c->ssl);
  if (vr != X509_V_OK)
    snprintf(c->error, sizeof(c->error), "TLS handshake failed: %s",
             X509_verify_cert_error_string(vr));
  else if (e)
    snprintf(c->error, sizeof(c->error), "TLS handshake failed: %s",
             ERR_reason_error_string(e));
  else
    snprintf(c->error, sizeof(c->error), "TLS handshake failed");
  ERR_clear_error();
  return -1;
}

static void tls_read(bt_conn *c, const uint8_t *data, size_t len) {
  if (BIO_write(c->rbio, data, (int)len) != (int)len) {
    close_now(c, BT_ERR_TLS);
    return;
  }
  if (!c->ready) {
    if (tls_handshake(c) != 0) {
      /* Send the alert the engine produced, then close. */
      bt__conn_close(c, BT_ERR_TLS);
      return;
    }
    if (!c->ready)
      return;
  }
  for (;;) {
    int n = SSL_read(c->ssl, tls_plain, sizeof(tls_plain));
    if (n > 0) {
      if (deliver(c, tls_plain, (size_t)n) != 0)
        return;
      if (c->closing)
        return;
      continue;
    }
    int err = SSL_get_error(c->ssl, n);
    drain_wbio(c);
    if (err == SSL_ERROR_WANT_READ)
      break;
    if (err == SSL_ERROR_ZERO_RETURN) {
      bt__conn_close(c, 0);
      return;
    }
    ERR_clear_error();
    close_now(c, BT_ERR_TLS);
    return;
  }
  if (c->out_len)
    bt__conn_mark_dirty(c);
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  bt_conn *c = s->data;
  if (nread < 0) {
    pause_reading(c);
    close_now(c, nread == UV_EOF ? 0 : BT_ERR_IO);
    return;
  }
  if (nread == 0 || c->handle_closing)
    return;
  if (c->ssl)
    tls_read(c, (const uint8_t *)buf->base, (size_t)nread);
  else
    deliver(c, (const uint8_t *)buf->base, (size_t)nread);
  if (!c->handle_closing && bt__conn_pending(c) > c->limits.read_pause_bytes)
    pause_reading(c);
}

/* Output went to the socket: an owner that stopped producing at the
 * high-water mark is flushed again once the backlog is below the low one
 * (in the same loop turn: the loop keeps flushing while connections are
 * marked dirty). Without this a write that completes at once would leave
 * the owner's remaining output unsent until the peer sent something. */
static void output_drained(bt_conn *c) {
  if (bt__conn_pending(c) <= c->limits.read_pause_bytes / 2)
    resume_reading(c);
  if (c->want_drain && bt__conn_pending(c) <= BT_CONN_OUTPUT_LOW) {
    c->want_drain = 0;
    bt__conn_mark_dirty(c);
  }
}

static void write_cb(uv_write_t *req, int status) {
  bt_conn *c = req->data;
  c->wlen = 0;
  uv_timer_stop(&c->write_timer);
  if (status < 0) {
    close_now(c, BT_ERR_IO);
    return;
  }
  if (c->handle_closing)
    return;
  if (c->closing && c->out_len == 0) {
    close_now(c, c->close_err);
    return;
  }
  if (bt__conn_pending(c) <= c->limits.read_pause_bytes / 2)
    resume_reading(c);
  release_idle_buffers(c);
  /* Let the owner produce more now that the socket drained. */
  c->want_drain = 0;
  bt__conn_mark_dirty(c);
}

static void start_write(bt_conn *c) {
  if (c->wlen || c->out_len == 0 || c->handle_closing)
    return;
  /* Swap the buffers: the accumulated output goes to the socket. */
  uint8_t *tmp = c->wbuf;
  size_t tcap = c->wcap;
  c->wbuf = c->out;
  c->wcap = c->out_cap;
  c->wlen = c->out_len;
  c->out = tmp;
  c->out_cap = tcap;
  c->out_len = 0;
  uv_buf_t b = uv_buf_init((char *)c->wbuf, (unsigned)c->wlen);
  /* Most writes complete at once; skip the request when they do. */
  int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
  if (n == (int)c->wlen) {
    c->wlen = 0;
    if (c->closing) {
      close_now(c, c->close_err);
      return;
    }
    release_idle_buffers(c);
    output_drained(c);
    return;
  }
  if (n < 0 && n != UV_EAGAIN) {
    close_now(c, BT_ERR_IO);
    return;
  }
  if (n > 0) {
    b.base += n;
    b.len -= (size_t)n;
  }
  c->write_req.data = c;
  if (uv_write(&c->write_req, (uv_stream_t *)&c->tcp, &b, 1, write_cb) != 0) {
    close_now(c, BT_ERR_IO);
    return;
  }
  if (c->limits.write_timeout_ms)
    uv_timer_start(&c->write_timer, write_stalled, c->limits.write_timeout_ms,
                   0);
}

/* Encrypts the plaintext gathered this turn, in full records. */
static void seal(bt_conn *c) {
  size_t off = 0;
  const uint8_t *plain = thread_plain()->buf;
  if (plain_owner == c)
    plain_owner = NULL;
  while (off < c->plain_len && !c->handle_closing) {
    size_t n = c->plain_len - off;
    if (n > TLS_RECORD)
      n = TLS_RECORD;
    int w = SSL_write(c->ssl, plain + off, (int)n);
    if (w <= 0) {
      ERR_clear_error();
      close_now(c, BT_ERR_TLS);
      break;
    }
    off += (size_t)w;
    drain_wbio(c);
  }
  c->plain_len = 0;
}

static void conn_flush(bt_flushable *f) {
  bt_conn *c = (bt_conn *)f;
  if (c->handle_closing)
    return;
  if (c->ready && !c->closing && c->ops->on_flush)
    c->ops->on_flush(c, c->ud);
  if (c->handle_closing)
    return;
  if (c->plain_len)
    seal(c);
  if (c->handle_closing)
    return;
  start_write(c);
  if (c->closing && c->wlen == 0 && c->out_len == 0)
    close_now(c, c->close_err);
}

void bt__conn_mark_dirty(bt_conn *c) {
  if (!c->handle_closing)
    bt__loop_mark_dirty(c->loop, &c->flushable);
}

void bt__conn_write(bt_conn *c, const uint8_t *data, size_t len) {
  if (c->handle_closing || len == 0)
    return;
  if (!c->ssl) {
    append_out(c, data, len);
    return;
  }
  append_plain(c, data, len);
  /* Bound what waits for the flush; sealing early only splits records. */
  if (c->plain_len >= 4 * TLS_RECORD)
    seal(c);
}

size_t bt__conn_pending(const bt_conn *c) {
  return c->plain_len + c->out_len + c->wlen;
}

int bt__conn_output_full(bt_conn *c) {
  if (bt__conn_pending(c) < BT_CONN_OUTPUT_HIGH)
    return 0;
  c->want_drain = 1;
  return 1;
}

void bt__conn_pump_h2(bt_conn *c, nghttp2_session *h2) {
  while (!bt__conn_output_full(c)) {
    const uint8_t *data;
    ssize_t n = nghttp2_session_mem_send(h2, &data);
    if (n < 0) {
      bt__conn_close(c, BT_ERR_H2);
      return;
    }
    if (n == 0)
      break;
    bt__conn_write(c, data, (size_t)n);
  }
}

void bt__conn_pause_reading(bt_conn *c) {
  c->owner_paused = 1;
  pause_reading(c);
}

void bt__conn_resume_reading(bt_conn *c) {
  if (!c->owner_paused)
    return;
  c->owner_paused = 0;
  resume_reading(c);
}

int bt__conn_reading_paused(const bt_conn *c) {
  return c->owner_paused;
}

int bt__conn_peer_gone(bt_conn *c) {
  if (c->handle_closing)
    return 1;
  uv_os_fd_t fd;
  if (uv_fileno((uv_handle_t *)&c->tcp, &fd) != 0)
    return 0;
  /* POLLRDHUP: the peer shut its side down, even with bytes still unread
   * (what we do not read while paused). */
  struct pollfd p = {.fd = fd, .events = POLLRDHUP};
  if (poll(&p, 1, 0) != 1)
    return 0;
  return (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

void bt__conn_close(bt_conn *c, int err) {
  if (c->closing)
    return;
  c->closing = 1;
  c->close_err = err;
  pause_reading(c);
  if (c->ssl && c->plain_len)
    seal(c); /* the last frames (a GOAWAY) go before close_notify */
  if (c->handle_closing)
    return;
  if (c->ssl && c->ready && err == 0) {
    SSL_shutdown(c->ssl);
    drain_wbio(c);
  }
  if (c->out_len == 0 && c->wlen == 0) {
    close_now(c, err);
    return;
  }
  /* Bound the final flush: a peer that never reads must not keep us. */
  uv_timer_start(&c->owner_timer, owner_timeout,
                 c->limits.write_timeout_ms ? c->limits.write_timeout_ms : 5000,
                 0);
  bt__loop_mark_dirty(c->loop, &c->flushable);
}

void bt__conn_set_timeout(bt_conn *c, uint32_t ms) {
  if (c->handle_closing || c->closing)
    return;
  if (ms)
    uv_timer_start(&c->owner_timer, owner_timeout, ms, 0);
  else
    uv_timer_stop(&c->owner_timer);
}

const char *bt__conn_peer(const bt_conn *c) {
  return c->peer;
}

bt_loop *bt__conn_loop(const bt_conn *c) {
  return c->loop;
}

const char *bt__conn_error(const bt_conn *c) {
  return c->error;
}

static void start_session(bt_conn *c) {
  uv_tcp_nodelay(&c->tcp, 1);
  set_peer(c);
  resume_reading(c);
  if (c->ssl) {
    if (tls_handshake(c) != 0)
      bt__conn_close(c, BT_ERR_TLS);
  } else {
    become_ready(c);
  }
}

bt_conn *bt__conn_accept(bt_loop *loop, uv_stream_t *server, SSL_CTX *ctx,
                         const bt_conn_limits *limits, const bt_conn_ops *ops,
                         void *ud) {
  bt_conn *c = conn_new(loop, ctx, limits, ops, ud);
  if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
    /* Nothing was accepted: free quietly, the owner never saw it. */
    static const bt_conn_ops no_ops;
    c->ops = &no_ops;
    close_now(c, BT_ERR_IO);
    return NULL;
  }
  if (c->ssl)
    SSL_set_accept_state(c->ssl);
  if (c->limits.handshake_timeout_ms)
    uv_timer_start(&c->owner_timer, owner_timeout,
                   c->limits.handshake_timeout_ms, 0);
  start_session(c);
  return c;
}

static void connect_cb(uv_connect_t *req, int status) {
  bt_conn *c = req->data;
  if (c->handle_closing)
    return;
  if (status < 0) {
    snprintf(c->error, sizeof(c->error), "connect failed: %s",
             uv_strerror(status));
    close_now(c, BT_ERR_IO);
    return;
  }
  start_session(c);
}

bt_conn *bt__conn_connect(bt_loop *loop, const struct sockaddr *addr,
                          SSL_CTX *ctx, const char *server_name,
                          int verify_name, const bt_conn_limits *limits,
                          const bt_conn_ops *ops, void *ud) {
  bt_conn *c = conn_new(loop, ctx, limits, ops, ud);
  if (c->ssl) {
    SSL_set_connect_state(c->ssl);
    if (server_name) {
      struct in6_addr tmp;
      int is_ip = inet_pton(AF_INET, server_name, &tmp) == 1 ||
                  inet_pton(AF_INET6, server_name, &tmp) == 1;
      if (!is_ip)
        SSL_set_tlsext_host_name(c->ssl, server_name);
      if (verify_name) {
        X509_VERIFY_PARAM *param = SSL_get0_param(c->ssl);
        if (is_ip)
          X509_VERIFY_PARAM_set1_ip_asc(param, server_name);
        else
          SSL_set1_host(c->ssl, server_name);
      }
    }
  }
  if (c->limits.handshake_timeout_ms)
    uv_timer_start(&c->owner_timer, owner_timeout,
                   c->limits.handshake_timeout_ms, 0);
  c->connect_req.data = c;
  int rv = uv_tcp_connect(&c->connect_req, &c->tcp, addr, connect_cb);
  if (rv != 0) {
    snprintf(c->error, sizeof(c->error), "connect failed: %s", uv_strerror(rv));
    close_now(c, BT_ERR_IO);
  }
  return c;
}
