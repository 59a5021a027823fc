/* srv_session.c: one HTTP/2 server session per accepted connection.
 *
 * The HTTP/2 core does no I/O: bytes from bt_conn go in through
 * nghttp2_session_mem_recv, bytes out through nghttp2_session_mem_send in the
 * connection's once-per-turn flush. Per-stream state (a bt_call) is created
 * in on_begin_headers and handed back to call.c in on_stream_close.
 *
 * The session also enforces what a client may make us hold: flow-control
 * window is granted as calls consume what they received (automatic
 * WINDOW_UPDATE is off), the bytes buffered for the connection are counted
 * against a budget (over it the connection is not read; still over after a
 * grace period, the call holding the most is reset), a sweep timer resets
 * streams whose request does not arrive in time or that go idle, and token
 * buckets bound client resets and protocol glitches. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <baton/alloc.h>
#include <baton/error.h>
#include <baton/status.h>

#include "loop_int.h"
#include "pool.h"
#include "srv.h"

void bt__srv_log(const bt_server *server, int level, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  if (server->log) /* no logger: the application chose silence */
    server->log(level, msg, server->log_ud);
}

static uint64_t loop_ms(const srv_session *s) {
  return uv_now(bt_loop_uv(s->worker->loop));
}

/* Sends GOAWAY with code and stops taking streams; the flush closes the
 * connection once nghttp2 has nothing more to send. */
static void terminate(srv_session *s, uint32_t code) {
  nghttp2_session_terminate_session(s->h2, code);
  s->goaway = 1;
  bt__conn_mark_dirty(s->conn);
}

void bt__srv_session_glitch(srv_session *s) {
  if (s->goaway)
    return;
  if (bt__ratelim_take(&s->glitches, bt__now_ns()))
    terminate(s, NGHTTP2_ENHANCE_YOUR_CALM);
}

/* ---- the buffer budget ----------------------------------------------- */

/* Connections open on every listener of the server (all workers). */
static size_t open_connections(const bt_server *server) {
  size_t n = 0;
  for (size_t i = 0; i < server->n_listeners; i++)
    n += atomic_load(&server->listeners[i].n_conns);
  return n ? n : 1;
}

void bt__srv_session_budget(srv_session *s, long long delta) {
  if (delta > 0)
    bt__budget_charge(&s->budget, (size_t)delta);
  else if (delta < 0)
    bt__budget_release(&s->budget, (size_t)-delta);
  if (delta > 0 && !s->read_paused && bt__budget_exceeded(&s->budget)) {
    /* Stop reading: the client's further frames wait in the kernel. */
    s->read_paused = 1;
    s->over_since_ms = loop_ms(s);
    bt__conn_pause_reading(s->conn);
    bt__srv_session_sweep_start(s);
  }
}

void bt__srv_session_process_over(srv_session *s) {
  if (s->read_paused || s->budget.used == 0)
    return;
  size_t share =
      bt__budget_process_limit() / open_connections(s->worker->server);
  if (s->budget.used <= share)
    return;
  /* Holding more than its share of a process over budget, though within
   * its own: stop reading it too, and shed after the grace period like a
   * connection over its own budget. */
  s->read_paused = 1;
  s->over_since_ms = loop_ms(s);
  bt__conn_pause_reading(s->conn);
  bt__srv_session_sweep_start(s);
}

static void maybe_resume_reading(srv_session *s) {
  if (s->read_paused && bt__budget_relieved(&s->budget)) {
    s->read_paused = 0;
    s->over_since_ms = 0;
    bt__conn_resume_reading(s->conn);
  }
}

/* Over budget for longer than the grace period: reset the calls holding the
 * most until the connection is within its budget. When only the process is
 * over, each connection sheds down to its fair share of the process budget
 * (the limit over the connections open), so an attacker spread over many
 * connections, each under its own budget, loses its calls and the others
 * keep theirs. */
static void shed_largest(srv_session *s) {
  const bt_server *server = s->worker->server;
  const bt_server_opts *o = &server->opts;
  int own = s->budget.limit && s->budget.used > s->budget.limit;
  size_t floor = s->budget.limit / 2; /* where reading resumes */
  if (!own) {
    floor = bt__budget_process_limit() / open_connections(server);
    if (s->budget.limit && floor > s->budget.limit / 2)
      floor = s->budget.limit / 2;
  }
  while (s->budget.used > floor && (own || bt__budget_exceeded(&s->budget))) {
    bt_call *largest = NULL;
    size_t most = 0;
    for (bt_call *c = s->calls; c; c = c->next) {
      size_t held = bt__srv_call_charged(c);
      if (held > most && !c->aborted) {
        most = held;
        largest = c;
      }
    }
    if (!largest)
      break;
    char msg[200];
    snprintf(msg, sizeof(msg),
             "%s over its buffer budget for %u ms: this call held %zu bytes",
             own ? "connection" : "process", o->buffer_timeout_ms, most);
    bt__srv_call_abort(largest, BT_GRPC_RESOURCE_EXHAUSTED, msg,
                       NGHTTP2_ENHANCE_YOUR_CALM);
  }
}

/* ---- stream timeouts ------------------------------------------------- */

static uint32_t sweep_interval(const bt_server_opts *o) {
  uint32_t ms = 1000;
  uint32_t t[] = {o->request_header_timeout_ms, o->stream_idle_timeout_ms,
                  o->buffer_timeout_ms};
  for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
    if (t[i] && t[i] / 4 < ms)
      ms = t[i] / 4;
  return ms < 25 ? 25 : ms;
}

/* Returns 1 when the session was terminated (stop looking at it). */
static int sweep_calls(srv_session *s, uint64_t now) {
  const bt_server_opts *o = &s->worker->server->opts;
  char msg[160];
  for (bt_call *c = s->calls, *next; c; c = next) {
    next = c->next;
    if (c->status_sent) {
      /* Answered, but the stream is still open: a client that never ends
       * its side (plain HTTP answers are not reset at once), or one that
       * does not read, so the status waits behind queued messages. The
       * idle timeout ends it and drops what waited. */
      if (o->stream_idle_timeout_ms &&
          now - c->active_ms >= o->stream_idle_timeout_ms) {
        c->active_ms = now; /* once */
        bt__srv_call_reset(c, NGHTTP2_CANCEL);
      }
      continue;
    }
    if (c->state == CALL_DONE)
      continue;
    int waiting = c->state == CALL_HEADERS || c->state == CALL_WAIT_UNARY;
    if (waiting && o->request_header_timeout_ms &&
        now - c->started_ms >= o->request_header_timeout_ms) {
      if (c->state == CALL_HEADERS) {
        /* The header block never ended: the client may send nothing else
         * on this connection until it does, so the connection goes. (Not
         * logged: a line per attacking connection is a flood of its own.) */
        terminate(s, NGHTTP2_ENHANCE_YOUR_CALM);
        return 1;
      }
      snprintf(msg, sizeof(msg), "request not received within %u ms",
               o->request_header_timeout_ms);
      bt__srv_call_abort(c, BT_GRPC_DEADLINE_EXCEEDED, msg, NGHTTP2_CANCEL);
    } else if (o->stream_idle_timeout_ms &&
               now - c->active_ms >= o->stream_idle_timeout_ms) {
      snprintf(msg, sizeof(msg), "stream idle for %u ms",
               o->stream_idle_timeout_ms);
      bt__srv_call_abort(c, BT_GRPC_DEADLINE_EXCEEDED, msg, NGHTTP2_CANCEL);
    } else if (c->expire_ms && now >= c->expire_ms) {
      snprintf(msg, sizeof(msg), "call ran past the server's limit of %llu ms",
               (unsigned long long)(c->expire_ms - c->started_ms));
      bt__srv_call_abort(c, BT_GRPC_DEADLINE_EXCEEDED, msg, NGHTTP2_CANCEL);
    }
  }
  return 0;
}

static void notify_writable(srv_session *s);

static void sweep(void *ud) {
  srv_session *s = ud;
  const bt_server_opts *o = &s->worker->server->opts;
  uint64_t now = loop_ms(s);
  s->sweep_armed = 0;
  if (s->read_paused && bt__conn_peer_gone(s->conn)) {
    /* Gone while we were not reading: nothing it sent matters now. */
    bt__conn_close(s->conn, BT_ERR_CLOSED);
    return;
  }
  /* While we do not read a connection because the process (not its own
   * traffic) is over budget, its streams cannot make progress through no
   * fault of theirs: the grace period decides instead of the timeouts. A
   * connection that filled its own budget is timed out as usual. */
  int own_over = s->budget.limit && s->budget.used > s->budget.limit;
  if ((!s->read_paused || own_over) && sweep_calls(s, now))
    return;
  if (s->blocked)
    notify_writable(s); /* relief may have come from elsewhere */
  if (s->read_paused && o->buffer_timeout_ms &&
      now - s->over_since_ms >= o->buffer_timeout_ms)
    shed_largest(s);
  maybe_resume_reading(s);
  bt__conn_mark_dirty(s->conn);
  if (s->open_streams > 0 || s->read_paused)
    bt__srv_session_sweep_start(s);
}

void bt__srv_session_sweep_start(srv_session *s) {
  const bt_server_opts *o = &s->worker->server->opts;
  if (!o->request_header_timeout_ms && !o->stream_idle_timeout_ms &&
      !s->read_paused && !s->blocked && !s->expiring)
    return;
  if (s->sweep_armed)
    return;
  if (!s->sweep)
    s->sweep = bt_timer_new(s->worker->loop, sweep, s);
  s->sweep_armed = 1;
  bt_timer_start(s->sweep, sweep_interval(o));
}

/* ---- writable notifications ------------------------------------------ */

void bt__srv_session_block(srv_session *s, bt_call *call) {
  if (call->blocked)
    return;
  call->blocked = 1;
  call->blocked_next = s->blocked;
  s->blocked = call;
  bt__srv_session_sweep_start(s); /* relief that comes from elsewhere */
}

void bt__srv_session_unblock(srv_session *s, bt_call *call) {
  for (bt_call **p = &s->blocked; *p; p = &(*p)->blocked_next) {
    if (*p == call) {
      *p = call->blocked_next;
      call->blocked_next = NULL;
      break;
    }
  }
  /* Not found: it is on the list notify_writable is walking, which still
   * needs its link; it is skipped there once not blocked. */
  call->blocked = 0;
}

/* After output went out: tell the calls that can send again. */
static void notify_writable(srv_session *s) {
  bt_call *list = s->blocked;
  s->blocked = NULL;
  while (list) {
    bt_call *c = list;
    list = c->blocked_next;
    c->blocked_next = NULL;
    if (!c->blocked)
      continue; /* taken off while waiting here */
    c->blocked = 0;
    if (bt__srv_call_check_writable(c) && c->sess == s)
      bt__srv_session_block(s, c);
  }
}

/* ---- nghttp2 callbacks ----------------------------------------------- */

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
  bt_call *call = bt__srv_call_new(s, frame->hd.stream_id);
  call->started_ms = call->active_ms = loop_ms(s);
  nghttp2_session_set_stream_user_data(h2, frame->hd.stream_id, call);
  s->open_streams++;
  bt__conn_set_timeout(s->conn, 0);
  bt__srv_session_sweep_start(s);
  return 0;
}

static int on_header(nghttp2_session *h2, const nghttp2_frame *frame,
                     const uint8_t *name, size_t namelen, const uint8_t *value,
                     size_t valuelen, uint8_t flags, void *user_data) {
  if (frame->hd.type != NGHTTP2_HEADERS ||
      frame->headers.cat != NGHTTP2_HCAT_REQUEST)
    return 0; /* gRPC clients send no trailers; ignore them */
  bt_call *call = nghttp2_session_get_stream_user_data(h2, frame->hd.stream_id);
  if (!call)
    return 0;
  if (bt__srv_call_header(call, name, namelen, value, valuelen) != 0)
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  return 0;
}

static int on_invalid_frame(nghttp2_session *h2, const nghttp2_frame *frame,
                            int lib_error_code, void *user_data) {
  (void)h2;
  bt__srv_session_glitch(user_data);
  return 0;
}

static int on_frame_recv(nghttp2_session *h2, const nghttp2_frame *frame,
                         void *user_data) {
  srv_session *s = user_data;
  bt_call *call =
      frame->hd.stream_id
          ? nghttp2_session_get_stream_user_data(h2, frame->hd.stream_id)
          : NULL;
  if (call)
    call->active_ms = loop_ms(s);
  switch (frame->hd.type) {
  case NGHTTP2_RST_STREAM:
    /* Rapid Reset (CVE-2023-44487): a client that opens and resets streams
     * faster than the configured rate is told to calm down. nghttp2's own
     * limit stays as a backstop at twice the burst, but answers
     * INTERNAL_ERROR; ENHANCE_YOUR_CALM says what happened. */
    if (!s->goaway && bt__ratelim_take(&s->resets, bt__now_ns()))
      terminate(s, NGHTTP2_ENHANCE_YOUR_CALM);
    break;
  case NGHTTP2_SETTINGS:
    if (!(frame->hd.flags & NGHTTP2_FLAG_ACK) && !s->got_settings) {
      /* The preface arrived: the settings timeout becomes the idle one. */
      s->got_settings = 1;
      if (s->open_streams == 0)
        bt__conn_set_timeout(s->conn, s->worker->server->opts.idle_timeout_ms);
    }
    break;
  case NGHTTP2_HEADERS:
    if (!call)
      break;
    if (frame->headers.cat == NGHTTP2_HCAT_REQUEST)
      bt__srv_call_headers_done(call);
    if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)
      bt__srv_call_end_of_input(call);
    break;
  case NGHTTP2_DATA:
    if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) {
      if (call)
        bt__srv_call_end_of_input(call);
    } else if (frame->hd.length == 0) {
      bt__srv_session_glitch(s); /* an empty DATA frame carries nothing */
    }
    break;
  default:
    break;
  }
  return 0;
}

static int on_data_chunk(nghttp2_session *h2, uint8_t flags, int32_t stream_id,
                         const uint8_t *data, size_t len, void *user_data) {
  /* The connection window is granted as bytes arrive (once per read, in
   * session_read): what a connection may hold is bounded by its budget and
   * each stream's own window. */
  srv_session *s = user_data;
  s->conn_unconsumed += len;
  bt_call *call = nghttp2_session_get_stream_user_data(h2, stream_id);
  if (call)
    bt__srv_call_data(call, data, len);
  else
    nghttp2_session_consume_stream(h2, stream_id, len);
  return 0;
}

static int on_frame_send(nghttp2_session *h2, const nghttp2_frame *frame,
                         void *user_data) {
  /* (A call's activity on the way out is noted where its frames are made:
   * bt__srv_call_read_data.) */
  if ((frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) ||
      !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
    return 0;
  bt_call *call = nghttp2_session_get_stream_user_data(h2, frame->hd.stream_id);
  /* After a complete gRPC response, tell a client that is still sending to
   * stop (RFC 9113 8.1: RST_STREAM NO_ERROR). */
  if (!(call && call->http_only) &&
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
  bt__srv_call_stream_closed(call, error_code);
  if (s->open_streams == 0) {
    if (s->goaway)
      bt__conn_mark_dirty(s->conn); /* flush decides to close */
    else if (s->got_settings)
      bt__conn_set_timeout(s->conn, s->worker->server->opts.idle_timeout_ms);
  }
  return 0;
}

static void session_flush(bt_conn *c, void *ud) {
  srv_session *s = ud;
  bt__conn_pump_h2(s->conn, s->h2);
  if (s->blocked)
    notify_writable(s);
  maybe_resume_reading(s);
  if (!nghttp2_session_want_read(s->h2) && !nghttp2_session_want_write(s->h2))
    bt__conn_close(s->conn, 0);
  else if (s->goaway && s->open_streams == 0 &&
           !nghttp2_session_want_write(s->h2))
    bt__conn_close(s->conn, 0);
}

/* What the scanner found that nghttp2 does not check in our mode (see
 * h2scan.h): a connection error. */
static void scan_verdict(srv_session *s, bt_h2scan_verdict v) {
  s->scan_failed = 1;
  if (v == BT_H2SCAN_STREAM_CLOSED)
    terminate(s, NGHTTP2_STREAM_CLOSED);
  else
    terminate(s, NGHTTP2_PROTOCOL_ERROR);
}

static int session_read(bt_conn *c, const uint8_t *data, size_t len, void *ud) {
  srv_session *s = ud;
  if (s->scan_failed)
    return 0; /* the GOAWAY is on its way; nothing more is read */
  size_t ok = len;
  unsigned long priorities = s->scan.priority_frames;
  bt_h2scan_verdict v = bt__h2scan_feed(&s->scan, data, len, &ok);
  /* gRPC has no use for PRIORITY: a stream of them is only work. */
  for (; priorities < s->scan.priority_frames && !s->goaway; priorities++)
    bt__srv_session_glitch(s);
  ssize_t n = nghttp2_session_mem_recv(s->h2, data, ok);
  if (s->conn_unconsumed) {
    nghttp2_session_consume_connection(s->h2, s->conn_unconsumed);
    s->conn_unconsumed = 0;
  }
  if (n >= 0 && v != BT_H2SCAN_OK)
    scan_verdict(s, v);
  if (n < 0) {
    /* Fatal for the connection (bad preface, flood, ...): nghttp2 queued a
     * GOAWAY where it could; send it, then close. */
    if (n == NGHTTP2_ERR_BAD_CLIENT_MAGIC)
      nghttp2_session_terminate_session(s->h2, NGHTTP2_PROTOCOL_ERROR);
    bt__conn_pump_h2(s->conn, s->h2);
    return BT_ERR_H2;
  }
  bt__conn_mark_dirty(c);
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
  bt__conn_set_timeout(c, o->handshake_timeout_ms);
  bt__conn_mark_dirty(c);
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

static void session_free(srv_session *s) {
  s->worker->trim_due = 1;
  if (s->listener)
    atomic_fetch_sub(&s->listener->n_conns, 1);
  bt_timer_free(s->sweep);
  nghttp2_session_del(s->h2);
  unlink_session(s);
  bt_free(s);
}

static void session_closed(bt_conn *c, int err, void *ud) {
  srv_session *s = ud;
  /* nghttp2_session_del does not report open streams as closed: cancel
   * their calls here. */
  while (s->calls) {
    s->open_streams--;
    bt__srv_call_stream_closed(s->calls, NGHTTP2_CANCEL);
  }
  srv_worker *w = s->worker;
  session_free(s);
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
  nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(
      cbs, on_invalid_frame);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
  nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
  return cbs;
}

static nghttp2_option *make_options(const bt_server_opts *o) {
  nghttp2_option *opt;
  nghttp2_option_new(&opt);
  /* Window is granted as calls consume what they received (call.c), so a
   * client cannot make us hold more than its streams' windows. */
  nghttp2_option_set_no_auto_window_update(opt, 1);
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

void bt__srv_session_worker_init(srv_worker *w) {
  w->h2_callbacks = make_callbacks();
  w->h2_options = make_options(&w->server->opts);
}

void bt__srv_session_worker_clear(srv_worker *w) {
  nghttp2_session_callbacks_del(w->h2_callbacks);
  nghttp2_option_del(w->h2_options);
}

static void refused_closed(uv_handle_t *h) {
  bt_free(h);
}

/* The listener is at its connection limit: take the connection off the
 * backlog and close it at once (a refused connect would be retried by the
 * kernel's backlog, an accepted-and-closed one tells the client now). */
static void refuse_connection(srv_worker *w, uv_stream_t *listener,
                              srv_listener *l) {
  uv_tcp_t *t = bt_malloc(sizeof(*t));
  uv_tcp_init(bt_loop_uv(w->loop), t);
  uv_accept(listener, (uv_stream_t *)t);
  uv_close((uv_handle_t *)t, refused_closed);
  /* One line per 10 s per listener, whichever worker sees it. */
  long long now = (long long)(bt__now_ns() / 1000000);
  long long last = atomic_load(&l->full_logged_ms);
  if ((last == 0 || now - last >= 10000) &&
      atomic_compare_exchange_strong(&l->full_logged_ms, &last, now))
    bt__srv_log(w->server, 1,
                "listener %s:%d is at its connection limit (%u): refusing new "
                "connections",
                l->host[0] ? l->host : "*", l->port,
                w->server->opts.max_connections);
}

void bt__srv_session_accept(srv_worker *w, uv_stream_t *listener,
                            srv_listener *l) {
  const bt_server_opts *o = &w->server->opts;
  if (o->max_connections &&
      atomic_fetch_add(&l->n_conns, 1) >= o->max_connections) {
    atomic_fetch_sub(&l->n_conns, 1);
    refuse_connection(w, listener, l);
    return;
  }
  if (!o->max_connections)
    atomic_fetch_add(&l->n_conns, 1);
  srv_session *s = bt_calloc(1, sizeof(*s));
  s->worker = w;
  s->listener = l;
  int64_t now = bt__now_ns();
  bt__ratelim_init(&s->resets, o->stream_reset_burst, o->stream_reset_rate,
                   now);
  bt__ratelim_init(&s->glitches, o->glitch_burst, o->glitch_rate, now);
  bt__budget_init(&s->budget, o->connection_buffer);
  bt__h2scan_init(&s->scan);
  if (nghttp2_session_server_new3(&s->h2, w->h2_callbacks, s, w->h2_options,
                                  bt__pool_nghttp2_mem()) != 0) {
    atomic_fetch_sub(&l->n_conns, 1);
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
      bt__conn_accept(w->loop, listener, l->ssl_ctx, &limits, &session_ops, s);
  if (!s->conn)
    session_free(s);
}

void bt__srv_session_goaway(srv_session *s) {
  if (s->goaway)
    return;
  s->goaway = 1;
  nghttp2_submit_goaway(s->h2, NGHTTP2_FLAG_NONE,
                        nghttp2_session_get_last_proc_stream_id(s->h2),
                        NGHTTP2_NO_ERROR, NULL, 0);
  bt__conn_mark_dirty(s->conn);
}
