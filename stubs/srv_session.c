/* srv_session.c: one HTTP/2 server session per accepted connection.
 *
 * The HTTP/2 core does no I/O: bytes from bt_conn go in through
 * nghttp2_session_mem_recv, bytes out through nghttp2_session_mem_send in the
 * connection's once-per-turn flush. Per-stream state (a bt_call) is created
 * in on_begin_headers and handed back to call.c in on_stream_close. */
#include <stdio.h>
#include <string.h>

#include <baton/alloc.h>
#include <baton/error.h>

#include "pool.h"
#include "srv.h"

static int on_begin_headers(nghttp2_session *h2, const nghttp2_frame *frame,
                            void *user_data) {
  srv_session *s = user_data;
  if (frame->hd.type != NGHTTP2_HEADERS ||
      frame->headers.cat != NGHTTP2_HCAT_REQUEST)
    return 0;
  if (s->goaway) {
    nghttp2_submit_rst_stream(h2, NGHTTP2_FLAG_NONE, frame->hd.stream_id,
                              NGHTTP2_REFUSED_STREAM);
    return 0;
  }
  bt_call *call = srv_call_new(s, frame->hd.stream_id);
  nghttp2_session_set_stream_user_data(h2, frame->hd.stream_id, call);
  s->open_streams++;
  bt_conn_set_timeout(s->conn, 0);
  return 0;
}

static int on_header(nghttp2_session *h2, const nghttp2_frame *frame,
                     const uint8_t *name, size_t namelen, const uint8_t *value,
                     size_t valuelen, uint8_t flags, void *user_data) {
  (void)flags;
  (void)user_data;
  if (frame->hd.type != NGHTTP2_HEADERS ||
      frame->headers.cat != NGHTTP2_HCAT_REQUEST)
    return 0; /* gRPC clients send no trailers; ignore them */
  bt_call *call = nghttp2_session_get_stream_user_data(h2, frame->hd.stream_id);
  if (!call)
    return 0;
  if (srv_call_header(call, name, namelen, value, valuelen) != 0)
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  return 0;
}

/* Rapid Reset (CVE-2023-44487): a client that opens and resets streams
 * faster than the configured rate is told to calm down and disconnected.
 * nghttp2's own limit stays as a backstop at twice the burst, but answers
 * INTERNAL_ERROR; ENHANCE_YOUR_CALM says what happened. */
static int reset_flood(srv_session *s) {
  const bt_server_opts *o = &s->worker->server->opts;
  int64_t now = bt_now_ns();
  s->reset_tokens +=
      (double)(now - s->reset_refill_ns) / 1e9 * o->stream_reset_rate;
  if (s->reset_tokens > o->stream_reset_burst)
    s->reset_tokens = o->stream_reset_burst;
  s->reset_refill_ns = now;
  if (s->reset_tokens < 1)
    return 1;
  s->reset_tokens -= 1;
  return 0;
}

static int on_frame_recv(nghttp2_session *h2, const nghttp2_frame *frame,
                         void *user_data) {
  srv_session *s = user_data;
  bt_call *call;
  switch (frame->hd.type) {
  case NGHTTP2_RST_STREAM:
    if (reset_flood(s)) {
      nghttp2_session_terminate_session(h2, NGHTTP2_ENHANCE_YOUR_CALM);
      s->goaway = 1;
    }
    break;
  case NGHTTP2_SETTINGS:
    if (!(frame->hd.flags & NGHTTP2_FLAG_ACK) && !s->got_settings) {
      /* The preface arrived: the settings timeout becomes the idle one. */
      s->got_settings = 1;
      if (s->open_streams == 0)
        bt_conn_set_timeout(s->conn, s->worker->server->opts.idle_timeout_ms);
    }
    break;
  case NGHTTP2_HEADERS:
    call = nghttp2_session_get_stream_user_data(h2, frame->hd.stream_id);
    if (!call)
      break;
    if (frame->headers.cat == NGHTTP2_HCAT_REQUEST)
      srv_call_headers_done(call);
    if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)
      srv_call_end_of_input(call);
    break;
  case NGHTTP2_DATA:
    if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) {
      call = nghttp2_session_get_stream_user_data(h2, frame->hd.stream_id);
      if (call)
        srv_call_end_of_input(call);
    }
    break;
  default:
    break;
  }
  return 0;
}

static int on_data_chunk(nghttp2_session *h2, uint8_t flags, int32_t stream_id,
                         const uint8_t *data, size_t len, void *user_data) {
  (void)flags;
  (void)user_data;
  bt_call *call = nghttp2_session_get_stream_user_data(h2, stream_id);
  if (call)
    srv_call_data(call, data, len);
  return 0;
}

static int on_frame_send(nghttp2_session *h2, const nghttp2_frame *frame,
                         void *user_data) {
  (void)user_data;
  /* After a complete response, tell a client that is still sending to stop
   * (RFC 9113 8.1: RST_STREAM NO_ERROR). */
  if ((frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
      (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) &&
      nghttp2_session_get_stream_remote_close(h2, frame->hd.stream_id) == 0)
    nghttp2_submit_rst_stream(h2, NGHTTP2_FLAG_NONE, frame->hd.stream_id,
                              NGHTTP2_NO_ERROR);
  return 0;
}

static int on_stream_close(nghttp2_session *h2, int32_t stream_id,
                           uint32_t error_code, void *user_data) {
  srv_session *s = user_data;
  bt_call *call = nghttp2_session_get_stream_user_data(h2, stream_id);
  if (!call)
    return 0;
  nghttp2_session_set_stream_user_data(h2, stream_id, NULL);
  s->open_streams--;
  srv_call_stream_closed(call, error_code);
  if (s->open_streams == 0) {
    if (s->goaway)
      bt_conn_mark_dirty(s->conn); /* flush decides to close */
    else if (s->got_settings)
      bt_conn_set_timeout(s->conn, s->worker->server->opts.idle_timeout_ms);
  }
  return 0;
}

static void produce(srv_session *s) {
  while (!bt_conn_output_full(s->conn)) {
    const uint8_t *data;
    ssize_t n = nghttp2_session_mem_send(s->h2, &data);
    if (n < 0) {
      bt_conn_close(s->conn, BT_ERR_H2);
      return;
    }
    if (n == 0)
      break;
    bt_conn_write(s->conn, data, (size_t)n);
  }
}

static void session_flush(bt_conn *c, void *ud) {
  srv_session *s = ud;
  (void)c;
  produce(s);
  if (!nghttp2_session_want_read(s->h2) && !nghttp2_session_want_write(s->h2))
    bt_conn_close(s->conn, 0);
  else if (s->goaway && s->open_streams == 0 &&
           !nghttp2_session_want_write(s->h2))
    bt_conn_close(s->conn, 0);
}

static int session_read(bt_conn *c, const uint8_t *data, size_t len, void *ud) {
  srv_session *s = ud;
  ssize_t n = nghttp2_session_mem_recv(s->h2, data, len);
  if (n < 0) {
    /* Fatal for the connection (bad preface, flood, ...): nghttp2 queued a
     * GOAWAY where it could; send it, then close. */
    if (n == NGHTTP2_ERR_BAD_CLIENT_MAGIC)
      nghttp2_session_terminate_session(s->h2, NGHTTP2_PROTOCOL_ERROR);
    produce(s);
    return BT_ERR_H2;
  }
  bt_conn_mark_dirty(c);
  return 0;
}

static void session_ready(bt_conn *c, void *ud) {
  srv_session *s = ud;
  const bt_server_opts *o = &s->worker->server->opts;
  nghttp2_settings_entry iv[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, o->max_concurrent_streams},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, o->initial_window},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, o->max_header_list},
      {NGHTTP2_SETTINGS_MAX_FRAME_SIZE, 16384},
      /* gRPC has no use for RFC 7540's priority tree; without it nghttp2
       * schedules streams from simple queues (cheaper per stream). */
      {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
  };
  nghttp2_submit_settings(s->h2, NGHTTP2_FLAG_NONE, iv,
                          sizeof(iv) / sizeof(iv[0]));
  if (o->connection_window > 65535)
    nghttp2_session_set_local_window_size(s->h2, NGHTTP2_FLAG_NONE, 0,
                                          (int32_t)o->connection_window);
  /* Until the client's SETTINGS arrive the handshake timeout still runs. */
  bt_conn_set_timeout(c, o->handshake_timeout_ms);
  bt_conn_mark_dirty(c);
}

static void unlink_session(srv_session *s) {
  srv_worker *w = s->worker;
  if (s->prev)
    s->prev->next = s->next;
  else
    w->sessions = s->next;
  if (s->next)
    s->next->prev = s->prev;
}

static void session_closed(bt_conn *c, int err, void *ud) {
  srv_session *s = ud;
  (void)c;
  (void)err;
  /* nghttp2_session_del does not report open streams as closed: cancel
   * their calls here. */
  while (s->calls) {
    s->open_streams--;
    srv_call_stream_closed(s->calls, NGHTTP2_CANCEL);
  }
  nghttp2_session_del(s->h2);
  unlink_session(s);
  srv_worker *w = s->worker;
  bt_free(s);
  if (w->draining && !w->sessions)
    uv_stop(bt_loop_uv(w->loop));
}

static const bt_conn_ops session_ops = {
    .on_read = session_read,
    .on_ready = session_ready,
    .on_flush = session_flush,
    .on_close = session_closed,
};

static nghttp2_session_callbacks *make_callbacks(void) {
  nghttp2_session_callbacks *cbs;
  nghttp2_session_callbacks_new(&cbs);
  nghttp2_session_callbacks_set_on_begin_headers_callback(cbs,
                                                          on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
  nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
  return cbs;
}

static nghttp2_option *make_options(const bt_server_opts *o) {
  nghttp2_option *opt;
  nghttp2_option_new(&opt);
  /* Messages are consumed as they arrive, so nghttp2's automatic
   * WINDOW_UPDATE is right; the caps below bound what a peer can queue. */
  nghttp2_option_set_max_send_header_block_length(opt, 65536);
  nghttp2_option_set_max_outbound_ack(opt, 1000);
  nghttp2_option_set_max_settings(opt, 32);
  /* Closed streams are kept only for the priority tree, which we do not
   * use: drop them at once. */
  nghttp2_option_set_no_closed_streams(opt, 1);
#ifdef HAVE_NGHTTP2_STREAM_RESET_RATE_LIMIT
  nghttp2_option_set_stream_reset_rate_limit(opt, 2 * o->stream_reset_burst,
                                             o->stream_reset_rate);
#endif
#ifdef HAVE_NGHTTP2_MAX_CONTINUATIONS
  nghttp2_option_set_max_continuations(opt, o->max_continuations);
#endif
  return opt;
}

void srv_session_worker_init(srv_worker *w) {
  w->h2_callbacks = make_callbacks();
  w->h2_options = make_options(&w->server->opts);
}

void srv_session_worker_clear(srv_worker *w) {
  nghttp2_session_callbacks_del(w->h2_callbacks);
  nghttp2_option_del(w->h2_options);
}

void srv_session_accept(srv_worker *w, uv_stream_t *listener,
                        SSL_CTX *ssl_ctx) {
  const bt_server_opts *o = &w->server->opts;
  srv_session *s = bt_calloc(1, sizeof(*s));
  s->worker = w;
  s->reset_tokens = o->stream_reset_burst;
  s->reset_refill_ns = bt_now_ns();
  if (nghttp2_session_server_new3(&s->h2, w->h2_callbacks, s, w->h2_options,
                                  bt_pool_nghttp2_mem()) != 0) {
    bt_free(s);
    return;
  }
  bt_conn_limits limits = {
      .handshake_timeout_ms = o->handshake_timeout_ms,
      .write_timeout_ms = o->write_timeout_ms,
  };
  s->next = w->sessions;
  if (w->sessions)
    w->sessions->prev = s;
  w->sessions = s;
  s->conn =
      bt_conn_accept(w->loop, listener, ssl_ctx, &limits, &session_ops, s);
  if (!s->conn) {
    nghttp2_session_del(s->h2);
    unlink_session(s);
    bt_free(s);
  }
}

void srv_session_goaway(srv_session *s) {
  if (s->goaway)
    return;
  s->goaway = 1;
  nghttp2_submit_goaway(s->h2, NGHTTP2_FLAG_NONE,
                        nghttp2_session_get_last_proc_stream_id(s->h2),
                        NGHTTP2_NO_ERROR, NULL, 0);
  bt_conn_mark_dirty(s->conn);
}
