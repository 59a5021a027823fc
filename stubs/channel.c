/* channel.c: bt_channel and its HTTP/2 client connections.
 *
 * A channel keeps `connections` slots; each slot holds at most one live
 * connection and reconnects with capped exponential backoff (with jitter)
 * after a failure. A new call goes to the first ready connection with free
 * stream capacity (another opens only when all are full); while none is
 * ready calls wait in the pending list, and
 * while every slot is backing off they fail at once with UNAVAILABLE (gRPC's
 * fail-fast behaviour). */
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <baton/alloc.h>
#include <baton/error.h>
#include <baton/status.h>

#include "cli.h"
#include "loop_int.h"
#include "pool.h"
#include "opts_int.h"
#include "tls.h"

void bt_channel_opts_init(bt_channel_opts *o) {
  memset(o, 0, sizeof(*o));
  o->verify_hostname = 1;
  o->connect_timeout_ms = 5000;
  o->connections = 1;
  o->max_recv_message = 4u << 20;
  o->backoff_initial_ms = 100;
  o->backoff_max_ms = 10000;
  o->max_pending = 1024;
  o->pending_timeout_ms = 5000;
  o->max_header_list = 64u << 10;
  o->channel_buffer = 64u << 20;
  o->stream_buffer = 1u << 20;
  o->initialized = BT__OPTS_INITIALIZED;
}

static char *dup_or_null(const char *s) {
  return s ? bt_strdup(s) : NULL;
}

static int resolve(bt_channel *ch) {
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
  struct addrinfo *res = NULL;
  char port[8];
  snprintf(port, sizeof(port), "%d", ch->opts.port);
  /* Numeric addresses resolve without blocking; names block once, here,
   * when the channel is made, not on the loop per call. */
  if (getaddrinfo(ch->host, port, &hints, &res) != 0 || !res)
    return -1;
  memcpy(&ch->addr, res->ai_addr, res->ai_addrlen);
  freeaddrinfo(res);
  ch->addr_ok = 1;
  return 0;
}

static int check_opts(const bt_channel_opts *opts, char *err, size_t errlen) {
  if (!opts || opts->initialized != BT__OPTS_INITIALIZED) {
    snprintf(err, errlen, "channel options not set up by bt_channel_opts_init");
    return BT_ERR_INVAL;
  }
  if (!opts->host || opts->port <= 0 || opts->port > 65535) {
    snprintf(err, errlen, "a channel needs a host and a port in 1..65535");
    return BT_ERR_INVAL;
  }
  return 0;
}

int bt_channel_new(bt_loop *loop, const bt_channel_opts *opts, bt_channel **out,
                   char *err, size_t errlen) {
  char scratch[1];
  if (!err || !errlen) { /* the caller does not want the sentence */
    err = scratch;
    errlen = sizeof(scratch);
  }
  *out = NULL;
  int rc = check_opts(opts, err, errlen);
  if (rc != 0)
    return rc;
  bt_channel *ch = bt_calloc(1, sizeof(*ch));
  ch->loop = loop;
  ch->opts = *opts;
  ch->host = bt_strdup(opts->host);
  ch->ca_file = dup_or_null(opts->ca_file);
  ch->cert_file = dup_or_null(opts->cert_file);
  ch->key_file = dup_or_null(opts->key_file);
  ch->server_name =
      bt_strdup(opts->server_name ? opts->server_name : opts->host);
  if (opts->authority) {
    ch->authority = bt_strdup(opts->authority);
  } else {
    char buf[300];
    snprintf(buf, sizeof(buf), "%s:%d", opts->host, opts->port);
    ch->authority = bt_strdup(buf);
  }
  ch->opts.host = ch->host;
  ch->opts.ca_file = ch->ca_file;
  ch->opts.cert_file = ch->cert_file;
  ch->opts.key_file = ch->key_file;
  ch->opts.server_name = ch->server_name;
  ch->opts.authority = ch->authority;
  if (opts->name) {
    ch->name = bt_strdup(opts->name);
  } else {
    char buf[300];
    snprintf(buf, sizeof(buf), "%s:%d", opts->host, opts->port);
    ch->name = bt_strdup(buf);
  }
  ch->opts.name = ch->name;
  if (ch->opts.max_header_list == 0)
    ch->opts.max_header_list = 64u << 10;
  bt__budget_init(&ch->budget, ch->opts.channel_buffer);
  if (ch->opts.connections <= 0)
    ch->opts.connections = 1;
  if (ch->opts.max_recv_message == 0)
    ch->opts.max_recv_message = 4u << 20;
  if (ch->opts.backoff_initial_ms == 0)
    ch->opts.backoff_initial_ms = 100;
  if (ch->opts.backoff_max_ms < ch->opts.backoff_initial_ms)
    ch->opts.backoff_max_ms = ch->opts.backoff_initial_ms;
  if (opts->use_tls) {
    ch->ssl_ctx = bt__tls_client_ctx(ch->ca_file, ch->cert_file, ch->key_file,
                                     err, errlen);
    rc = BT_ERR_TLS;
    if (!ch->ssl_ctx)
      goto fail;
  }
  if (resolve(ch) != 0) {
    snprintf(err, errlen, "cannot resolve %s", ch->host);
    rc = BT_ERR_NOTFOUND;
    goto fail;
  }
  ch->n_slots = ch->opts.connections;
  ch->slots = bt_calloc((size_t)ch->n_slots, sizeof(*ch->slots));
  for (int i = 0; i < ch->n_slots; i++) {
    ch->slots[i].ch = ch;
    ch->slots[i].backoff_ms = ch->opts.backoff_initial_ms;
  }
  *out = ch;
  return 0;
fail:
  SSL_CTX_free(ch->ssl_ctx);
  bt_free(ch->name);
  bt_free(ch->host);
  bt_free(ch->ca_file);
  bt_free(ch->cert_file);
  bt_free(ch->key_file);
  bt_free(ch->server_name);
  bt_free(ch->authority);
  bt_free(ch);
  return rc;
}

/* ---- the HTTP/2 client session --------------------------------------- */

static bt_client_call *stream_call(nghttp2_session *h2, int32_t id) {
  return nghttp2_session_get_stream_user_data(h2, id);
}

static int on_header(nghttp2_session *h2, const nghttp2_frame *frame,
                     const uint8_t *name, size_t namelen, const uint8_t *value,
                     size_t valuelen, uint8_t flags, void *user_data) {
  if (frame->hd.type != NGHTTP2_HEADERS)
    return 0;
  bt_client_call *call = stream_call(h2, frame->hd.stream_id);
  if (!call)
    return 0;
  return bt__cli_call_header(call, frame, name, namelen, value, valuelen);
}

static int on_frame_recv(nghttp2_session *h2, const nghttp2_frame *frame,
                         void *user_data) {
  cli_conn *cc = user_data;
  if (!cc->ch)
    return 0;
  if (frame->hd.type == NGHTTP2_HEADERS) {
    bt_client_call *call = stream_call(h2, frame->hd.stream_id);
    if (call)
      bt__cli_call_headers_done(call, frame);
  } else if (frame->hd.type == NGHTTP2_GOAWAY) {
    /* No new streams here; streams above last_stream_id are closed by
     * nghttp2 with REFUSED_STREAM. The slot moves to a new connection. */
    cc->goaway = 1;
    if (cc->slot && cc->slot->conn == cc) {
      cc->slot->conn = NULL;
      cc->slot->state = SLOT_IDLE;
    }
    cc->slot = NULL;
  } else if (frame->hd.type == NGHTTP2_SETTINGS &&
             !(frame->hd.flags & NGHTTP2_FLAG_ACK)) {
    /* More streams may now be allowed: serve waiting calls. */
    bt_channel *ch = cc->ch;
    while (ch->pending) {
      size_t before = ch->n_pending;
      bt_client_call *call = ch->pending;
      bt__cli_channel_unqueue(ch, call);
      bt__cli_channel_dispatch(ch, call);
      if (ch->n_pending >= before)
        break;
    }
  }
  return 0;
}

static int on_data_chunk(nghttp2_session *h2, uint8_t flags, int32_t stream_id,
                         const uint8_t *data, size_t len, void *user_data) {
  /* The connection window is granted as bytes arrive (once per read, in
   * conn_read); each stream's as its call hands them on (bt__cli_conn_consume).
   */
  cli_conn *cc = user_data;
  cc->conn_unconsumed += len;
  bt_client_call *call = stream_call(h2, stream_id);
  if (call)
    bt__cli_call_data(call, data, len);
  else
    nghttp2_session_consume_stream(h2, stream_id, len);
  return 0;
}

void bt__cli_conn_consume(bt_client_call *call, size_t len) {
  if (call->read_paused) {
    call->unconsumed += len;
    return;
  }
  cli_conn *cc = call->cc;
  if (!cc || call->stream_id <= 0)
    return;
  nghttp2_session_consume_stream(cc->h2, call->stream_id, len);
  bt__conn_mark_dirty(cc->conn);
}

/* ---- writable notifications ------------------------------------------ */

void bt__cli_channel_block(bt_channel *ch, bt_client_call *call) {
  if (call->blocked)
    return;
  call->blocked = 1;
  call->blocked_next = ch->blocked;
  ch->blocked = call;
}

void bt__cli_channel_unblock(bt_channel *ch, bt_client_call *call) {
  for (bt_client_call **p = &ch->blocked; *p; p = &(*p)->blocked_next) {
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

static void notify_writable(bt_channel *ch) {
  bt_client_call *list = ch->blocked;
  ch->blocked = NULL;
  while (list) {
    bt_client_call *c = list;
    list = c->blocked_next;
    c->blocked_next = NULL;
    if (!c->blocked)
      continue; /* taken off (it ended) while waiting here */
    c->blocked = 0;
    if (bt__cli_call_check_writable(c))
      bt__cli_channel_block(ch, c);
  }
}

static int on_stream_close(nghttp2_session *h2, int32_t stream_id,
                           uint32_t error_code, void *user_data) {
  cli_conn *cc = user_data;
  bt_client_call *call = stream_call(h2, stream_id);
  if (!call || !cc->ch)
    return 0;
  nghttp2_session_set_stream_user_data(h2, stream_id, NULL);
  bt__cli_call_stream_closed(call, error_code);
  /* A slot freed up: a waiting call may take it. (on_done may have freed
   * the channel.) */
  bt_channel *ch = cc->ch;
  if (ch && ch->pending && !cc->goaway) {
    bt_client_call *next = ch->pending;
    bt__cli_channel_unqueue(ch, next);
    bt__cli_channel_dispatch(ch, next);
  }
  return 0;
}

static nghttp2_session_callbacks *cbs;
static nghttp2_option *client_opts;
static pthread_once_t cbs_once = PTHREAD_ONCE_INIT;

static void make_callbacks(void) {
  nghttp2_option_new(&client_opts);
  /* Closed streams are kept only for RFC 7540's priority tree, which gRPC
   * does not use: drop them at once. */
  nghttp2_option_set_no_closed_streams(client_opts, 1);
  /* Window is granted as calls hand responses on (bt__cli_conn_consume). */
  nghttp2_option_set_no_auto_window_update(client_opts, 1);
  nghttp2_session_callbacks_new(&cbs);
  nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
}

/* Shared by every channel of the process: read-only once made. */
static nghttp2_session_callbacks *client_callbacks(void) {
  pthread_once(&cbs_once, make_callbacks);
  return cbs;
}

static void conn_flush(bt_conn *c, void *ud) {
  cli_conn *cc = ud;
  bt__conn_pump_h2(cc->conn, cc->h2);
  if (cc->ch && cc->ch->blocked)
    notify_writable(cc->ch);
  if (!nghttp2_session_want_read(cc->h2) && !nghttp2_session_want_write(cc->h2))
    bt__conn_close(cc->conn, 0);
  else if (cc->goaway && cc->active == 0)
    bt__conn_close(cc->conn, 0);
}

static int conn_read(bt_conn *c, const uint8_t *data, size_t len, void *ud) {
  cli_conn *cc = ud;
  ssize_t n = nghttp2_session_mem_recv(cc->h2, data, len);
  if (cc->conn_unconsumed) {
    nghttp2_session_consume_connection(cc->h2, cc->conn_unconsumed);
    cc->conn_unconsumed = 0;
  }
  if (n < 0) {
    bt__conn_pump_h2(cc->conn, cc->h2);
    return BT_ERR_H2;
  }
  bt__conn_mark_dirty(c);
  return 0;
}

static void slot_backoff_done(void *ud) {
  cli_slot *slot = ud;
  slot->state = SLOT_IDLE;
  bt_channel *ch = slot->ch;
  /* Calls that arrived while backing off failed fast; new ones reconnect. */
  if (ch->pending) {
    bt_client_call *call = ch->pending;
    bt__cli_channel_unqueue(ch, call);
    bt__cli_channel_dispatch(ch, call);
  }
}

static void start_backoff(cli_slot *slot) {
  slot->state = SLOT_BACKOFF;
  if (!slot->backoff_timer)
    slot->backoff_timer = bt_timer_new(slot->ch->loop, slot_backoff_done, slot);
  /* ±20% jitter so a fleet of clients does not reconnect in step. */
  uint32_t ms = slot->backoff_ms;
  uint32_t jitter = ms / 5;
  if (jitter)
    ms = ms - jitter + (uint32_t)(rand() % (int)(2 * jitter + 1));
  bt_timer_start(slot->backoff_timer, ms);
  uint64_t next = (uint64_t)slot->backoff_ms * 16 / 10;
  slot->backoff_ms = next > slot->ch->opts.backoff_max_ms
                         ? slot->ch->opts.backoff_max_ms
                         : (uint32_t)next;
}

static int any_slot_usable(bt_channel *ch) {
  for (int i = 0; i < ch->n_slots; i++)
    if (ch->slots[i].state != SLOT_BACKOFF)
      return 1;
  return 0;
}

static void fail_pending(bt_channel *ch, const char *why) {
  while (ch->pending) {
    bt_client_call *call = ch->pending;
    bt__cli_channel_unqueue(ch, call);
    bt__cli_call_fail(call, BT_GRPC_UNAVAILABLE, why);
  }
}

static void conn_ready(bt_conn *c, void *ud) {
  cli_conn *cc = ud;
  if (!cc->ch)
    return;
  cc->ready = 1;
  if (cc->slot) {
    cc->slot->state = SLOT_READY;
    cc->slot->backoff_ms = cc->ch->opts.backoff_initial_ms;
  }
  nghttp2_settings_entry iv[] = {
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1u << 20},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, cc->ch->opts.max_header_list},
      /* No RFC 7540 priority tree (see srv_session.c). */
      {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
  };
  nghttp2_submit_settings(cc->h2, NGHTTP2_FLAG_NONE, iv,
                          sizeof(iv) / sizeof(iv[0]));
  nghttp2_session_set_local_window_size(cc->h2, NGHTTP2_FLAG_NONE, 0, 16 << 20);
  bt_channel *ch = cc->ch;
  /* Give every waiting call a chance; dispatch re-queues what cannot go. */
  size_t n = ch->n_pending;
  while (n-- > 0 && ch->pending) {
    bt_client_call *call = ch->pending;
    bt__cli_channel_unqueue(ch, call);
    bt__cli_channel_dispatch(ch, call);
  }
  bt__conn_mark_dirty(cc->conn);
}

static void conn_closed(bt_conn *c, int err, void *ud) {
  cli_conn *cc = ud;
  bt_channel *ch = cc->ch;
  if (!ch) { /* the channel is gone; its calls were ended then */
    nghttp2_session_del(cc->h2);
    bt_free(cc);
    return;
  }
  if (cc->prev)
    cc->prev->next = cc->next;
  else
    ch->conns = cc->next;
  if (cc->next)
    cc->next->prev = cc->prev;
  char why[200];
  snprintf(why, sizeof(why), "connection to %s:%d %s%s%s", ch->host,
           ch->opts.port, cc->ready ? "closed" : "failed",
           *bt__conn_error(c) ? ": " : "", bt__conn_error(c));
  while (cc->calls)
    bt__cli_call_conn_lost(cc->calls, why);
  nghttp2_session_del(cc->h2);
  cli_slot *slot = cc->slot;
  bt_free(cc);
  if (!slot)
    return;
  slot->conn = NULL;
  snprintf(slot->last_error, sizeof(slot->last_error), "%s", why);
  if (err == 0 && slot->state == SLOT_READY) {
    slot->state = SLOT_IDLE; /* an orderly close: reconnect on demand */
    return;
  }
  start_backoff(slot);
  if (!any_slot_usable(ch))
    fail_pending(ch, why);
  else if (ch->pending) {
    bt_client_call *call = ch->pending;
    bt__cli_channel_unqueue(ch, call);
    bt__cli_channel_dispatch(ch, call);
  }
}

static const bt_conn_ops conn_ops = {
    .on_read = conn_read,
    .on_ready = conn_ready,
    .on_flush = conn_flush,
    .on_close = conn_closed,
};

static void slot_connect(cli_slot *slot) {
  bt_channel *ch = slot->ch;
  cli_conn *cc = bt_calloc(1, sizeof(*cc));
  cc->slot = slot;
  cc->ch = ch;
  cc->next = ch->conns;
  if (ch->conns)
    ch->conns->prev = cc;
  ch->conns = cc;
  nghttp2_session_client_new3(&cc->h2, client_callbacks(), cc, client_opts,
                              bt__pool_nghttp2_mem());
  slot->conn = cc;
  slot->state = SLOT_CONNECTING;
  bt_conn_limits limits = {.handshake_timeout_ms = ch->opts.connect_timeout_ms,
                           .write_timeout_ms = 30000};
  cc->conn = bt__conn_connect(ch->loop, (struct sockaddr *)&ch->addr,
                              ch->ssl_ctx, ch->server_name,
                              ch->opts.verify_hostname, &limits, &conn_ops, cc);
}

/* ---- dispatch -------------------------------------------------------- */

static int has_capacity(cli_conn *cc) {
  uint32_t max = nghttp2_session_get_remote_settings(
      cc->h2, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
  if (cc->ch->opts.max_streams && cc->ch->opts.max_streams < max)
    max = cc->ch->opts.max_streams;
  return !cc->goaway && cc->active < max;
}

static void pending_expired(void *ud);

/* One timer for the earliest deadline of the waiting calls (a call put
 * back at the tail keeps its first wait time, so the list is not sorted;
 * it holds at most max_pending calls). */
static void arm_pending_timer(bt_channel *ch) {
  if (!ch->opts.pending_timeout_ms || !ch->pending)
    return;
  if (!ch->pending_timer)
    ch->pending_timer = bt_timer_new(ch->loop, pending_expired, ch);
  uint64_t oldest = UINT64_MAX;
  for (bt_client_call *c = ch->pending; c; c = c->next)
    if (c->pending_since_ms < oldest)
      oldest = c->pending_since_ms;
  uint64_t now = uv_now(bt_loop_uv(ch->loop));
  uint64_t due = oldest + ch->opts.pending_timeout_ms;
  bt_timer_start(ch->pending_timer, due > now ? due - now : 0);
  ch->pending_timer_armed = 1;
}

static void pending_expired(void *ud) {
  bt_channel *ch = ud;
  ch->pending_timer_armed = 0;
  uint64_t now = uv_now(bt_loop_uv(ch->loop));
  char why[300];
  snprintf(why, sizeof(why), "no stream to %s within %u ms (pending_timeout)",
           ch->name, ch->opts.pending_timeout_ms);
  for (bt_client_call *c = ch->pending, *next; c; c = next) {
    next = c->next;
    uint64_t waited = now > c->pending_since_ms ? now - c->pending_since_ms : 0;
    if (waited >= ch->opts.pending_timeout_ms) {
      bt__cli_channel_unqueue(ch, c);
      bt__cli_call_fail(c, BT_GRPC_UNAVAILABLE, why);
    }
  }
  arm_pending_timer(ch);
}

static void enqueue(bt_channel *ch, bt_client_call *call) {
  if (!call->was_pending) { /* put back at the tail: its first wait counts */
    call->was_pending = 1;
    call->pending_since_ms = uv_now(bt_loop_uv(ch->loop));
  }
  if (ch->opts.max_pending && ch->n_pending >= ch->opts.max_pending) {
    char why[300];
    snprintf(why, sizeof(why),
             "%zu call%s already waiting for a stream to %s (max_pending)",
             ch->n_pending, ch->n_pending == 1 ? "" : "s", ch->name);
    bt__cli_call_fail(call, BT_GRPC_UNAVAILABLE, why);
    return;
  }
  call->state = CC_PENDING;
  /* FIFO: append at the tail (thousands may wait when the backend's
   * streams are all taken, so no walk). */
  call->prev = ch->pending_tail;
  call->next = NULL;
  if (ch->pending_tail)
    ch->pending_tail->next = call;
  else
    ch->pending = call;
  ch->pending_tail = call;
  ch->n_pending++;
  if (!ch->pending_timer_armed)
    arm_pending_timer(ch);
}

void bt__cli_channel_unqueue(bt_channel *ch, bt_client_call *call) {
  if (call->prev)
    call->prev->next = call->next;
  else
    ch->pending = call->next;
  if (call->next)
    call->next->prev = call->prev;
  else
    ch->pending_tail = call->prev;
  call->prev = call->next = NULL;
  call->state = CC_NEW;
  ch->n_pending--;
}

void bt__cli_channel_dispatch(bt_channel *ch, bt_client_call *call) {
  int connecting = 0;
  /* Fill the first connection with room rather than spreading calls
   * round-robin: a light load then stays on one connection and its peer
   * reads many calls per wakeup; a heavy one fills connection after
   * connection (spreading a light load over every connection a burst had
   * opened doubled the shop backends' CPU per call). */
  for (int k = 0; k < ch->n_slots; k++) {
    cli_slot *slot = &ch->slots[k];
    if (slot->state == SLOT_READY && slot->conn && has_capacity(slot->conn)) {
      if (bt__cli_call_attach(call, slot->conn) == 0)
        return;
      /* The session refused a new stream (stream ids used up after 2^30
       * calls): retire this connection, its slot opens a fresh one. */
      cli_conn *old = slot->conn;
      old->goaway = 1;
      old->slot = NULL;
      slot->conn = NULL;
      slot->state = SLOT_IDLE;
      bt__conn_mark_dirty(old->conn);
    }
    if (slot->state == SLOT_CONNECTING)
      connecting = 1;
  }
  /* No ready connection with room: open one in an idle slot. */
  for (int k = 0; k < ch->n_slots && !connecting; k++) {
    cli_slot *slot = &ch->slots[k];
    if (slot->state == SLOT_IDLE) {
      slot_connect(slot);
      connecting = slot->state == SLOT_CONNECTING;
    }
  }
  int ready = 0;
  for (int k = 0; k < ch->n_slots; k++)
    ready |= ch->slots[k].state == SLOT_READY;
  if (connecting || ready) {
    enqueue(ch, call);
    return;
  }
  const char *why = ch->slots[0].last_error[0] ? ch->slots[0].last_error
                                               : "no connection available";
  bt__cli_call_fail(call, BT_GRPC_UNAVAILABLE, why);
}

void bt__cli_conn_reset_stream(bt_client_call *call) {
  cli_conn *cc = call->cc;
  if (!cc || call->stream_id <= 0)
    return;
  nghttp2_submit_rst_stream(cc->h2, NGHTTP2_FLAG_NONE, call->stream_id,
                            NGHTTP2_CANCEL);
  bt__conn_mark_dirty(cc->conn);
}

void bt__cli_conn_kick(bt_client_call *call) {
  cli_conn *cc = call->cc;
  if (!cc || call->stream_id <= 0)
    return;
  nghttp2_session_resume_data(cc->h2, call->stream_id);
  bt__conn_mark_dirty(cc->conn);
}

void bt_channel_free(bt_channel *ch) {
  if (!ch)
    return;
  ch->freeing = 1;
  fail_pending(ch, "channel closed");
  /* Connections finish closing on later loop turns; they must not touch
   * the channel then. */
  for (cli_conn *cc = ch->conns, *next; cc; cc = next) {
    next = cc->next;
    while (cc->calls)
      bt__cli_call_conn_lost(cc->calls, "channel closed");
    cc->slot = NULL;
    cc->ch = NULL;
    bt__conn_close(cc->conn, BT_ERR_CLOSED);
  }
  for (int i = 0; i < ch->n_slots; i++)
    bt_timer_free(ch->slots[i].backoff_timer);
  bt_timer_free(ch->pending_timer);
  SSL_CTX_free(ch->ssl_ctx);
  bt_free(ch->slots);
  bt_free(ch->name);
  bt_free(ch->host);
  bt_free(ch->ca_file);
  bt_free(ch->cert_file);
  bt_free(ch->key_file);
  bt_free(ch->server_name);
  bt_free(ch->authority);
  bt_free(ch);
}
