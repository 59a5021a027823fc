/* call.c: bt_call, one server-side RPC from its request headers to its
 * status (the public API in baton/server.h and the runtime's side in srv.h).
 *
 * A call is allocated in its own arena and freed in one go when both the
 * handler has finished it and nghttp2 has closed its stream; `busy` holds
 * the free off while user code runs inside a callback. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <baton/alloc.h>
#include <baton/error.h>
#include <baton/status.h>

#include "loop_int.h"
#include "metadata_wire.h"
#include "percent.h"
#include "srv.h"
#include "timeout.h"

/* Header fields point at literals or at the call's arena, both alive
 * until nghttp2 has sent or dropped the frame (the call is freed only after
 * its stream closed), so nghttp2 need not copy them. */
#define NV_NO_COPY                                                             \
  (NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE)
#define MAKE_NV(n, v, vlen)                                                    \
  ((nghttp2_nv){(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, (vlen),         \
                NV_NO_COPY})

static int deliver_message(void *ud, const uint8_t *msg, size_t len);
static int can_send(const bt_call *call);
static void fail_call(bt_call *call, int code, const char *message);

bt_call *bt__srv_call_new(srv_session *s, int32_t stream_id) {
  bt_arena *arena = bt_arena_new(4096);
  bt_call *call = bt_arena_calloc(arena, sizeof(*call));
  call->arena = arena;
  call->sess = s;
  call->loop = s->worker->loop;
  call->peer = bt_arena_strndup(arena, bt__conn_peer(s->conn),
                                strlen(bt__conn_peer(s->conn)));
  call->stream_id = stream_id;
  call->state = CALL_HEADERS;
  call->deadline = INT64_MAX;
  call->req_md = bt_metadata_new(arena);
  call->init_md = bt_metadata_new(arena);
  call->trail_md = bt_metadata_new(arena);
  bt__sendq_init(&call->out);
  bt__msgin_init(&call->in, s->worker->server->opts.max_recv_message,
                 deliver_message, call);
  call->next = s->calls;
  if (s->calls)
    s->calls->prev = call;
  s->calls = call;
  return call;
}

/* ---- what the call holds against its connection's budget ------------ */

size_t bt__srv_call_charged(const bt_call *call) {
  return call->in_charged + call->unary_charged + call->out_charged +
         call->linked_charged;
}

void bt__srv_call_charge_linked(bt_call *call, long long delta) {
  if (!call->sess)
    return; /* the stream is gone: its connection holds nothing for it */
  if (delta < 0 && (size_t)-delta > call->linked_charged)
    delta = -(long long)call->linked_charged;
  call->linked_charged += delta;
  if (delta)
    bt__srv_session_budget(call->sess, delta);
}

int bt__srv_call_budget_exceeded(const bt_call *call) {
  return call->sess ? bt__budget_exceeded(&call->sess->budget)
                    : bt__budget_exceeded(NULL);
}

static void charge(bt_call *call, size_t *slot, size_t now_held) {
  long long delta = (long long)now_held - (long long)*slot;
  *slot = now_held;
  if (delta && call->sess)
    bt__srv_session_budget(call->sess, delta);
}

/* The decoder's buffer grows with a message that straddles DATA frames and
 * is released at its end. */
static void charge_decoder(bt_call *call) {
  charge(call, &call->in_charged, call->in.dec.buf_cap);
}

static void charge_queue(bt_call *call) {
  charge(call, &call->out_charged, call->out.bytes);
}

/* Drops what can no longer be delivered or sent and gives it back to the
 * budget: the stream is gone or the call was aborted. */
static void release_buffers(bt_call *call) {
  if (bt__srv_call_charged(call) == 0 && !call->in.dec.buf && !call->out.head)
    return; /* the common end of a call: nothing held */
  bt__msgin_clear(&call->in);
  bt__sendq_clear(&call->out);
  charge_decoder(call);
  charge_queue(call);
  charge(call, &call->unary_charged, 0);
  charge(call, &call->linked_charged, 0);
}

static void call_free(bt_call *call) {
  bt_timer_free(call->deadline_timer);
  bt_timer_free(call->after_timer);
  bt__msgin_clear(&call->in);
  bt__sendq_clear(&call->out);
  bt_arena_free(call->arena);
}

static void maybe_free(bt_call *call) {
  if (call->finished && call->closed && call->busy == 0)
    call_free(call);
}

static void mark_dirty(bt_call *call) {
  if (call->sess)
    bt__conn_mark_dirty(call->sess->conn);
}

/* ---- request headers ------------------------------------------------- */

static int name_is(const uint8_t *name, size_t len, const char *lit) {
  size_t n = strlen(lit);
  return len == n && memcmp(name, lit, n) == 0;
}

static int content_type_is_grpc(const uint8_t *v, size_t len) {
  static const char grpc[] = "application/grpc";
  size_t n = sizeof(grpc) - 1;
  if (len < n || memcmp(v, grpc, n) != 0)
    return 0;
  return len == n || v[n] == '+' || v[n] == ';';
}

static int accepts_gzip(const uint8_t *v, size_t len) {
  /* A comma-separated list: look for the token "gzip". */
  size_t i = 0;
  while (i < len) {
    while (i < len && (v[i] == ' ' || v[i] == ','))
      i++;
    size_t start = i;
    while (i < len && v[i] != ',' && v[i] != ' ')
      i++;
    if (i - start == 4 && memcmp(v + start, "gzip", 4) == 0)
      return 1;
  }
  return 0;
}

int bt__srv_call_header(bt_call *call, const uint8_t *name, size_t namelen,
                        const uint8_t *value, size_t valuelen) {
  const bt_server_opts *o = &call->sess->worker->server->opts;
  /* nghttp2 stores SETTINGS_MAX_HEADER_LIST_SIZE but does not enforce it on
   * what it receives: count as RFC 9113 6.5.2 does (32 bytes per field). */
  call->header_bytes += namelen + valuelen + 32;
  if (call->header_bytes > o->max_header_list) {
    call->headers_too_large = 1;
    return 0;
  }
  if (namelen > 0 && name[0] == ':') {
    if (name_is(name, namelen, ":path")) {
      call->path = bt_arena_strndup(call->arena, (const char *)value, valuelen);
      call->path_len = valuelen;
    } else if (name_is(name, namelen, ":method")) {
      call->method_is_post = valuelen == 4 && memcmp(value, "POST", 4) == 0;
    }
    return 0;
  }
  if (name_is(name, namelen, "content-type")) {
    call->content_type_seen = 1;
    call->content_type_ok = content_type_is_grpc(value, valuelen);
  } else if (name_is(name, namelen, "grpc-timeout")) {
    int64_t ns;
    if (bt__timeout_parse((const char *)value, valuelen, &ns) != 0)
      call->timeout_bad = 1;
    else
      call->deadline =
          ns > INT64_MAX - bt__now_ns() ? INT64_MAX : bt__now_ns() + ns;
  } else if (name_is(name, namelen, "grpc-encoding")) {
    if (bt__encoding_parse((const char *)value, valuelen, &call->in.encoding))
      call->encoding_bad = 1;
  } else if (name_is(name, namelen, "grpc-accept-encoding")) {
    call->accept_gzip = accepts_gzip(value, valuelen);
  } else if (name_is(name, namelen, "te")) {
    /* required by gRPC but nothing to act on */
  } else {
    /* Metadata; a -bin value that is not base64 is dropped, as gRPC does. */
    bt__metadata_add_wire(call->req_md, (const char *)name, namelen, value,
                          valuelen);
  }
  return 0;
}

/* ---- sending --------------------------------------------------------- */

/* Header fields for md, -bin values base64-encoded into the arena. */
static size_t metadata_nv(bt_call *call, const bt_metadata *md,
                          nghttp2_nv *nv) {
  size_t n = bt_metadata_count(md);
  for (size_t i = 0; i < n; i++) {
    const char *key;
    const uint8_t *value;
    size_t len;
    bt_metadata_at(md, i, &key, &value, &len);
    size_t wire_len = bt__metadata_wire_value_len(key, value, len);
    char *wire = bt_arena_alloc(call->arena, wire_len + 1);
    bt__metadata_wire_value(key, value, len, wire);
    nv[i] = (nghttp2_nv){(uint8_t *)key, (uint8_t *)wire, strlen(key), wire_len,
                         NV_NO_COPY};
  }
  return n;
}

static size_t status_nv(bt_call *call, nghttp2_nv *nv) {
  /* Codes are 0..16 (anything else was mapped to UNKNOWN on the way in). */
  static const char codes[][3] = {"0",  "1",  "2",  "3",  "4",  "5",
                                  "6",  "7",  "8",  "9",  "10", "11",
                                  "12", "13", "14", "15", "16"};
  int sc = call->status_code;
  const char *code = sc >= 0 && sc <= 16 ? codes[sc] : "2";
  size_t count = 0;
  nv[count++] = MAKE_NV("grpc-status", code, strlen(code));
  const char *msg = call->status_message;
  if (msg && *msg) {
    size_t len = strlen(msg);
    size_t enc_len = bt__percent_encoded_len((const uint8_t *)msg, len);
    char *enc = bt_arena_alloc(call->arena, enc_len + 1);
    bt__percent_encode((const uint8_t *)msg, len, enc);
    nv[count++] = MAKE_NV("grpc-message", enc, enc_len);
  }
  count += metadata_nv(call, call->trail_md, nv + count);
  return count;
}

static const char grpc_accept[] = "identity,gzip";

static size_t response_headers_nv(bt_call *call, nghttp2_nv *nv) {
  size_t n = 0;
  nv[n++] = MAKE_NV(":status", "200", 3);
  nv[n++] = MAKE_NV("content-type", "application/grpc", 16);
  if (call->gzip)
    nv[n++] = MAKE_NV("grpc-encoding", "gzip", 4);
  nv[n++] =
      MAKE_NV("grpc-accept-encoding", grpc_accept, sizeof(grpc_accept) - 1);
  n += metadata_nv(call, call->init_md, nv + n);
  return n;
}

static void submit_headers(bt_call *call) {
  if (call->headers_submitted || !call->sess)
    return;
  call->headers_submitted = 1;
  size_t cap = 4 + bt_metadata_count(call->init_md);
  nghttp2_nv *nv = bt_arena_alloc(call->arena, cap * sizeof(*nv));
  size_t n = response_headers_nv(call, nv);
  nghttp2_data_provider prd = {.source.ptr = call,
                               .read_callback = bt__srv_call_read_data};
  nghttp2_submit_response(call->sess->h2, call->stream_id, nv, n, &prd);
  mark_dirty(call);
}

/* Sends the status: as trailers after the queued messages, or as a
 * trailers-only response when nothing was sent yet. */
static void send_status(bt_call *call, int code, const char *message) {
  if (call->status_sent)
    return;
  call->status_sent = 1;
  call->status_code = code;
  call->status_message =
      message ? bt_arena_strndup(call->arena, message, strlen(message)) : NULL;
  if (!call->sess)
    return;
  if (call->headers_submitted) {
    call->status_pending = 1;
    nghttp2_session_resume_data(call->sess->h2, call->stream_id);
    mark_dirty(call);
    return;
  }
  call->headers_submitted = 1;
  size_t cap = 4 + 2 + bt_metadata_count(call->init_md) +
               bt_metadata_count(call->trail_md);
  nghttp2_nv *nv = bt_arena_alloc(call->arena, cap * sizeof(*nv));
  size_t n = response_headers_nv(call, nv);
  n += status_nv(call, nv + n);
  nghttp2_submit_response(call->sess->h2, call->stream_id, nv, n, NULL);
  mark_dirty(call);
}

ssize_t bt__srv_call_read_data(nghttp2_session *h2, int32_t stream_id,
                               uint8_t *buf, size_t length,
                               uint32_t *data_flags,
                               nghttp2_data_source *source, void *user_data) {
  bt_call *call = source->ptr;
  size_t n = bt__sendq_read(&call->out, buf, length);
  if (n) {
    charge_queue(call);
    call->active_ms = uv_now(bt_loop_uv(call->loop)); /* frames go out */
  }
  if (call->out.bytes > 0 || !call->status_pending)
    return n > 0 ? (ssize_t)n : NGHTTP2_ERR_DEFERRED;
  /* Everything is out and the status is known: the trailers follow this
   * frame (no empty DATA frame just to end the data). */
  *data_flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
  size_t cap = 2 + bt_metadata_count(call->trail_md);
  nghttp2_nv *nv = bt_arena_alloc(call->arena, cap * sizeof(*nv));
  size_t count = status_nv(call, nv);
  nghttp2_submit_trailer(h2, stream_id, nv, count);
  return (ssize_t)n;
}

static ssize_t read_text(nghttp2_session *h2, int32_t stream_id, uint8_t *buf,
                         size_t length, uint32_t *data_flags,
                         nghttp2_data_source *source, void *user_data) {
  (void)h2;
  bt_call *call = source->ptr;
  size_t n = call->text_len - call->text_off;
  if (n > length)
    n = length;
  memcpy(buf, call->text + call->text_off, n);
  call->text_off += n;
  if (call->text_off == call->text_len)
    *data_flags |= NGHTTP2_DATA_FLAG_EOF;
  return (ssize_t)n;
}

/* A non-gRPC request: a plain HTTP answer with a line saying why, and the
 * end of the stream. Unlike a gRPC response it does not reset a request
 * still being sent: the client ends its side (bounded by the stream idle
 * timeout), as plain HTTP/2 servers do. */
static void respond_http(bt_call *call, const char *status, const char *text) {
  nghttp2_nv nv[] = {MAKE_NV(":status", status, strlen(status)),
                     MAKE_NV("content-type", "text/plain", 10)};
  call->headers_submitted = 1;
  call->status_sent = 1;
  call->http_only = 1;
  call->text = text;
  call->text_len = strlen(text);
  nghttp2_data_provider prd = {.source.ptr = call, .read_callback = read_text};
  nghttp2_submit_response(call->sess->h2, call->stream_id, nv, 2, &prd);
  mark_dirty(call);
}

/* ---- the handler's callbacks ----------------------------------------- */

static void run_after_now(bt_call *call) {
  if (!call->after_fn)
    return;
  bt_call_event_fn fn = call->after_fn;
  call->after_fn = NULL;
  if (call->after_timer)
    bt_timer_stop(call->after_timer);
  call->busy++;
  fn(call, call->after_ud);
  call->busy--;
}

/* The call can no longer succeed: tell the handler (which still finishes). */
static void cancel_handler(bt_call *call) {
  if (call->cancelled)
    return;
  call->cancelled = 1;
  if (call->state != CALL_RUNNING) {
    call->finished = 1; /* no handler has seen it */
    call->state = CALL_DONE;
    return;
  }
  call->busy++;
  if (call->on_cancel)
    call->on_cancel(call, call->on_cancel_ud);
  run_after_now(call);
  call->busy--;
}

static void fail_call(bt_call *call, int code, const char *message) {
  send_status(call, code, message);
  cancel_handler(call);
  maybe_free(call);
}

static void deadline_passed(void *ud) {
  bt_call *call = ud;
  fail_call(call, BT_GRPC_DEADLINE_EXCEEDED, "Deadline Exceeded");
}

static void invoke(bt_call *call, const ProtobufCMessage *req) {
  call->state = CALL_RUNNING;
  call->busy++;
  call->method->invoke(call, req, call->method->handlers, call->method->ud);
  call->busy--;
  maybe_free(call);
}

/* Refuses the call before any handler saw it, for the client's fault:
 * counted as a glitch of its connection. */
static void refuse(bt_call *call, int code, const char *message) {
  send_status(call, code, message);
  call->finished = 1;
  call->state = CALL_DONE;
  if (call->sess)
    bt__srv_session_glitch(call->sess);
}

void bt__srv_call_headers_done(bt_call *call) {
  const bt_server *server = call->sess->worker->server;
  char msg[320];
  if (call->headers_too_large) {
    snprintf(msg, sizeof(msg), "request headers larger than %u bytes",
             server->opts.max_header_list);
    refuse(call, BT_GRPC_RESOURCE_EXHAUSTED, msg);
    return;
  }
  if (!call->method_is_post) {
    call->finished = 1;
    call->state = CALL_DONE;
    respond_http(call, "405",
                 "405 Method Not Allowed: gRPC calls are POST requests\n");
    bt__srv_session_glitch(call->sess);
    return;
  }
  if (!call->content_type_ok) {
    call->finished = 1;
    call->state = CALL_DONE;
    respond_http(call, "415",
                 "415 Unsupported Media Type: gRPC calls have content-type "
                 "application/grpc\n");
    bt__srv_session_glitch(call->sess);
    return;
  }
  if (call->timeout_bad) {
    refuse(call, BT_GRPC_INTERNAL, "malformed grpc-timeout");
    return;
  }
  if (call->encoding_bad) {
    refuse(call, BT_GRPC_UNIMPLEMENTED,
           "grpc-encoding not supported (identity, gzip are)");
    return;
  }
  call->method = bt__srv_server_find(server, call->path, call->path_len);
  if (!call->method) {
    /* A well-formed request for a method we lack: not a glitch. */
    snprintf(msg, sizeof(msg), "Method not found: %.256s", call->path);
    send_status(call, BT_GRPC_UNIMPLEMENTED, msg);
    call->finished = 1;
    call->state = CALL_DONE;
    return;
  }
  if (call->deadline != INT64_MAX) {
    int64_t left = call->deadline - bt__now_ns();
    if (left <= 0) {
      send_status(call, BT_GRPC_DEADLINE_EXCEEDED, "Deadline Exceeded");
      call->finished = 1;
      call->state = CALL_DONE;
      return;
    }
    call->deadline_timer =
        bt_timer_new(call->sess->worker->loop, deadline_passed, call);
    bt_timer_start(call->deadline_timer, (uint64_t)(left + 999999) / 1000000);
  }
  call->pb_alloc = bt_arena_protobuf_allocator(call->arena);
  if (call->method->kind == BT_CALL_UNARY ||
      call->method->kind == BT_CALL_SERVER_STREAMING) {
    call->state = CALL_WAIT_UNARY;
    return;
  }
  invoke(call, NULL);
}

/* protobuf-c allocations for one decoded message, capped: a message whose
 * decoded form would take more than the cap (a repeated empty sub-message
 * is 2 bytes on the wire and a whole struct once decoded) fails to decode
 * instead of taking the memory. */
typedef struct capped_alloc {
  ProtobufCAllocator base;
  ProtobufCAllocator *inner; /* NULL: malloc */
  size_t left;
  int over;
} capped_alloc;

static void *capped_alloc_fn(void *data, size_t size) {
  capped_alloc *a = data;
  if (size > a->left) {
    a->over = 1;
    return NULL;
  }
  a->left -= size;
  if (a->inner)
    return a->inner->alloc(a->inner->allocator_data, size);
  return bt_try_malloc(size);
}

static void capped_free_fn(void *data, void *p) {
  capped_alloc *a = data;
  if (a->inner)
    a->inner->free(a->inner->allocator_data, p);
  else
    bt_free(p);
}

static void capped_init(capped_alloc *a, const bt_call *call,
                        ProtobufCAllocator *inner, size_t wire_len) {
  const bt_server_opts *o = &call->sess->worker->server->opts;
  size_t factor = o->decoded_factor ? o->decoded_factor : SIZE_MAX / 2;
  size_t cap =
      wire_len > (SIZE_MAX / 2) / factor ? SIZE_MAX / 2 : wire_len * factor;
  a->base = (ProtobufCAllocator){capped_alloc_fn, capped_free_fn, a};
  a->inner = inner;
  a->left = cap + o->decoded_floor;
  a->over = 0;
}

/* Decodes msg with the call's input type; on failure ends the call with
 * INVALID_ARGUMENT or, over the decoded-size cap, RESOURCE_EXHAUSTED. */
static ProtobufCMessage *decode(bt_call *call, capped_alloc *a,
                                ProtobufCAllocator *inner, const uint8_t *msg,
                                size_t len) {
  const ProtobufCMessageDescriptor *input = call->method->input;
  capped_init(a, call, inner, len);
  ProtobufCMessage *m = protobuf_c_message_unpack(input, &a->base, len, msg);
  if (m)
    return m;
  char why[320];
  if (a->over) {
    snprintf(why, sizeof(why),
             "decoded %s would take more than %u x its %zu bytes + %zu",
             input->name, call->sess->worker->server->opts.decoded_factor, len,
             call->sess->worker->server->opts.decoded_floor);
    fail_call(call, BT_GRPC_RESOURCE_EXHAUSTED, why);
  } else {
    snprintf(why, sizeof(why), "cannot decode request as %s", input->name);
    fail_call(call, BT_GRPC_INVALID_ARGUMENT, why);
  }
  return NULL;
}

static int deliver_message(void *ud, const uint8_t *msg, size_t len) {
  bt_call *call = ud;
  const ProtobufCMessageDescriptor *input = call->method->input;
  capped_alloc alloc;
  if (call->state == CALL_WAIT_UNARY) {
    if (call->unary_req || (!input && call->in.count > 1)) {
      fail_call(call, BT_GRPC_INTERNAL,
                "unary call with more than one request message");
      if (call->sess)
        bt__srv_session_glitch(call->sess);
      return -1;
    }
    /* The request waits for the end of the stream and then for the
     * handler: it counts against the connection until the stream closes. */
    charge(call, &call->unary_charged, len);
    if (!input) {
      call->unary_bytes = bt_arena_memdup(call->arena, msg, len);
      call->unary_len = len;
      return 0;
    }
    call->unary_req = decode(call, &alloc, call->pb_alloc, msg, len);
    return call->unary_req ? 0 : -1;
  }
  if (call->state != CALL_RUNNING || call->cancelled || !call->on_message)
    return 0;
  ProtobufCMessage *decoded = NULL;
  if (input) {
    decoded = decode(call, &alloc, NULL, msg, len);
    if (!decoded)
      return -1;
  }
  call->busy++;
  call->on_message(call, decoded, msg, len, call->on_message_ud);
  call->busy--;
  if (decoded)
    protobuf_c_message_free_unpacked(decoded, &alloc.base);
  return 0;
}

/* Grants the client window for len more bytes of this stream, unless the
 * call is paused (then it is owed on resume). */
static void consume(bt_call *call, size_t len) {
  if (call->read_paused) {
    call->unconsumed += len;
    return;
  }
  nghttp2_session_consume_stream(call->sess->h2, call->stream_id, len);
}

void bt__srv_call_data(bt_call *call, const uint8_t *data, size_t len) {
  if (call->state == CALL_HEADERS || call->state == CALL_DONE ||
      call->status_sent) {
    nghttp2_session_consume_stream(call->sess->h2, call->stream_id, len);
    return;
  }
  srv_session *s = call->sess;
  call->busy++;
  int code = bt__msgin_feed(&call->in, data, len);
  charge_decoder(call);
  /* Consumed once handed on: a complete message went to the handler, the
   * part of one waits in the decoder (bounded by the message limit and the
   * connection's budget). */
  if (call->sess == s)
    consume(call, len);
  if (code > 0) {
    fail_call(call, code, call->in.error);
    bt__srv_session_glitch(s); /* bad framing, too large, bad compression */
  }
  call->busy--;
  maybe_free(call);
}

void bt__srv_call_end_of_input(bt_call *call) {
  if (call->half_closed)
    return;
  call->half_closed = 1;
  if (call->state == CALL_HEADERS || call->state == CALL_DONE ||
      call->status_sent)
    return;
  int code = bt__msgin_finish(&call->in);
  if (code > 0) {
    fail_call(call, code, call->in.error);
    return;
  }
  if (call->state == CALL_WAIT_UNARY) {
    if (call->in.count == 0) {
      refuse(call, BT_GRPC_INTERNAL, "unary call without a request message");
      return;
    }
    invoke(call, call->unary_req);
    return;
  }
  if (call->on_half_close && !call->cancelled) {
    call->busy++;
    call->on_half_close(call, call->on_half_close_ud);
    call->busy--;
    maybe_free(call);
  }
}

void bt__srv_call_stream_closed(bt_call *call, uint32_t error_code) {
  srv_session *s = call->sess;
  if (call->prev)
    call->prev->next = call->next;
  else
    s->calls = call->next;
  if (call->next)
    call->next->prev = call->prev;
  release_buffers(call);
  if (call->blocked)
    bt__srv_session_unblock(s, call);
  call->sess = NULL;
  call->closed = 1;
  if (call->deadline_timer)
    bt_timer_stop(call->deadline_timer);
  if (!call->status_sent || !call->finished)
    cancel_handler(call);
  maybe_free(call);
}

/* ---- public API ------------------------------------------------------ */

const char *bt_call_path(const bt_call *call) {
  return call->path;
}

bt_call_kind bt_call_get_kind(const bt_call *call) {
  return call->method ? call->method->kind : BT_CALL_BIDI_STREAMING;
}

const bt_metadata *bt_call_request_metadata(const bt_call *call) {
  return call->req_md;
}

int64_t bt_call_deadline(const bt_call *call) {
  return call->deadline == INT64_MAX ? INT64_MAX : call->deadline / 1000000;
}

bt_arena *bt_call_arena(bt_call *call) {
  return call->arena;
}

bt_loop *bt_call_loop(bt_call *call) {
  return call->loop;
}

const uint8_t *bt_call_request_bytes(const bt_call *call, size_t *len) {
  if (len)
    *len = call->unary_len;
  return call->unary_bytes;
}

const char *bt_call_peer(const bt_call *call) {
  return call->peer;
}

void bt_call_on_message(bt_call *call, bt_call_message_fn fn, void *ud) {
  call->on_message = fn;
  call->on_message_ud = ud;
}

void bt_call_on_half_close(bt_call *call, bt_call_event_fn fn, void *ud) {
  call->on_half_close = fn;
  call->on_half_close_ud = ud;
}

void bt_call_on_cancel(bt_call *call, bt_call_event_fn fn, void *ud) {
  call->on_cancel = fn;
  call->on_cancel_ud = ud;
}

int bt_call_is_cancelled(const bt_call *call) {
  return call->cancelled;
}

static int add_md(bt_call *call, bt_metadata *md, const char *key,
                  const void *value, size_t len) {
  size_t klen = strlen(key);
  if (bt_metadata_key_is_reserved(key, klen))
    return BT_ERR_INVAL;
  return bt_metadata_add(md, key, klen, value, len);
}

int bt_call_add_initial_metadata(bt_call *call, const char *key,
                                 const void *value, size_t len) {
  if (call->headers_submitted)
    return BT_ERR_STATE;
  return add_md(call, call->init_md, key, value, len);
}

int bt_call_add_trailing_metadata(bt_call *call, const char *key,
                                  const void *value, size_t len) {
  if (call->status_sent)
    return BT_ERR_STATE;
  return add_md(call, call->trail_md, key, value, len);
}

int bt_call_send_headers(bt_call *call) {
  if (!can_send(call))
    return BT_ERR_STATE;
  submit_headers(call);
  return 0;
}

void bt_call_set_compression(bt_call *call, int gzip) {
  if (!call->headers_submitted)
    call->gzip = gzip && call->accept_gzip;
}

static int can_send(const bt_call *call) {
  return !call->status_sent && !call->finished && !call->cancelled &&
         call->sess;
}

/* Before queueing: a connection (or process) over its budget takes no
 * more, and the call that tried is ended, so a handler that ignores
 * bt_call_writable cannot grow memory without bound. */
static int check_budget(bt_call *call) {
  if (!bt__budget_exceeded(&call->sess->budget))
    return 0;
  char msg[160];
  snprintf(msg, sizeof(msg),
           "response not sent: the connection is over its buffer budget "
           "(%zu bytes; the client is not reading)",
           call->sess->budget.limit);
  bt__srv_call_abort(call, BT_GRPC_RESOURCE_EXHAUSTED, msg,
                     NGHTTP2_ENHANCE_YOUR_CALM);
  return BT_ERR_LIMIT;
}

/* After queueing: the bytes count, nghttp2 is told there is data, and a
 * call over its high-water mark waits to be told it may send again. */
static int queued(bt_call *call, int rv) {
  if (rv != 0) {
    /* Before the headers when this was the first message: the client gets
     * the status, not just a reset. */
    bt__srv_call_abort(call, BT_GRPC_RESOURCE_EXHAUSTED,
                       rv == BT_ERR_NOMEM ? "out of memory for a response"
                                          : "response too large",
                       NGHTTP2_INTERNAL_ERROR);
    return rv;
  }
  /* Headers go with (just before) the first message. */
  submit_headers(call);
  charge_queue(call);
  nghttp2_session_resume_data(call->sess->h2, call->stream_id);
  mark_dirty(call);
  if (call->on_writable && !bt_call_writable(call))
    bt__srv_session_block(call->sess, call);
  return 0;
}

int bt_call_send(bt_call *call, const ProtobufCMessage *msg) {
  if (!can_send(call))
    return BT_ERR_STATE;
  if (check_budget(call) != 0)
    return BT_ERR_LIMIT;
  return queued(call, bt__sendq_push_message(&call->out, msg, call->gzip));
}

int bt_call_send_bytes(bt_call *call, const uint8_t *bytes, size_t len) {
  if (!can_send(call))
    return BT_ERR_STATE;
  if (check_budget(call) != 0)
    return BT_ERR_LIMIT;
  return queued(call, bt__sendq_push_bytes(&call->out, bytes, len, call->gzip));
}

int bt_call_writable(const bt_call *call) {
  if (!can_send(call))
    return 0;
  size_t high = call->sess->worker->server->opts.stream_buffer;
  return (!high || call->out.bytes < high) &&
         !bt__budget_exceeded(&call->sess->budget);
}

size_t bt_call_send_queued(const bt_call *call) {
  return call->out.bytes;
}

void bt_call_on_writable(bt_call *call, bt_call_event_fn fn, void *ud) {
  call->on_writable = fn;
  call->on_writable_ud = ud;
  /* Set after a send left the call unwritable: wait from now. */
  if (fn && call->sess && !bt_call_writable(call))
    bt__srv_session_block(call->sess, call);
}

int bt__srv_call_check_writable(bt_call *call) {
  if (!call->on_writable || !can_send(call))
    return 0;
  /* Below half the mark again (hysteresis: not one wake-up per frame). */
  size_t high = call->sess->worker->server->opts.stream_buffer;
  if ((high && call->out.bytes > high / 2) ||
      bt__budget_exceeded(&call->sess->budget))
    return 1;
  call->busy++;
  call->on_writable(call, call->on_writable_ud);
  call->busy--;
  maybe_free(call);
  return 0;
}

void bt_call_expire_after(bt_call *call, uint32_t ms) {
  if (!call->sess)
    return;
  call->expire_ms = uv_now(bt_loop_uv(call->loop)) + ms;
  call->sess->expiring = 1;
  bt__srv_session_sweep_start(call->sess);
}

void bt_call_read_pause(bt_call *call) {
  call->read_paused = 1;
}

void bt_call_read_resume(bt_call *call) {
  if (!call->read_paused)
    return;
  call->read_paused = 0;
  if (call->unconsumed && call->sess) {
    nghttp2_session_consume_stream(call->sess->h2, call->stream_id,
                                   call->unconsumed);
    mark_dirty(call);
  }
  call->unconsumed = 0;
}

void bt__srv_call_reset(bt_call *call, uint32_t h2_code) {
  if (!call->sess)
    return;
  nghttp2_submit_rst_stream(call->sess->h2, NGHTTP2_FLAG_NONE, call->stream_id,
                            h2_code);
  call->aborted = 1;
  release_buffers(call);
  mark_dirty(call);
}

void bt__srv_call_abort(bt_call *call, int code, const char *message,
                        uint32_t h2_code) {
  if (call->aborted)
    return;
  call->aborted = 1;
  srv_session *s = call->sess;
  if (s && call->headers_submitted) {
    /* Messages were (or are being) sent: their queue may never drain to let
     * trailers out, so the stream is reset. */
    call->status_sent = 1;
    nghttp2_submit_rst_stream(s->h2, NGHTTP2_FLAG_NONE, call->stream_id,
                              h2_code);
    mark_dirty(call);
  } else {
    send_status(call, code, message);
  }
  release_buffers(call);
  call->busy++;
  cancel_handler(call);
  call->busy--;
  maybe_free(call);
}

void bt_call_finish(bt_call *call, int code, const char *message) {
  if (call->finished)
    return;
  call->finished = 1;
  call->state = CALL_DONE;
  if (!call->cancelled)
    send_status(call, code, message);
  maybe_free(call);
}

static void after_fired(void *ud) {
  bt_call *call = ud;
  run_after_now(call);
  maybe_free(call);
}

void bt_call_after(bt_call *call, uint64_t delay_ms, bt_call_event_fn fn,
                   void *ud) {
  call->after_fn = fn;
  call->after_ud = ud;
  if (call->cancelled) {
    run_after_now(call);
    return;
  }
  if (!call->after_timer)
    call->after_timer = bt_timer_new(call->loop, after_fired, call);
  bt_timer_start(call->after_timer, delay_ms);
}
