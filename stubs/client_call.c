/* client_call.c: bt_client_call, one client-side RPC (API in baton/client.h)
 * and how its final status is decided from what the server sent (gRPC's
 * rules: grpc-status from trailers or a trailers-only response; else the
 * HTTP status mapped; else the RST_STREAM code mapped). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <baton/alloc.h>
#include <baton/error.h>
#include <baton/status.h>

#include "cli.h"
#include "srv.h"
#include "loop_int.h"
#include "metadata_wire.h"
#include "percent.h"
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

/* ---- what the call holds against the channel's budget --------------- */

/* delta bytes held by call: against the channel's budget, or, for a call
 * proxied for a client (charge_to), against that client's connection. */
static void account(bt_client_call *call, long long delta) {
  if (call->charge_to)
    bt__srv_call_charge_linked(call->charge_to, delta);
  else if (delta > 0)
    bt__budget_charge(&call->ch->budget, (size_t)delta);
  else if (delta < 0)
    bt__budget_release(&call->ch->budget, (size_t)-delta);
}

static void charge(bt_client_call *call, size_t *slot, size_t now_held) {
  long long delta = (long long)now_held - (long long)*slot;
  *slot = now_held;
  if (delta)
    account(call, delta);
}

void bt_client_call_charge_to(bt_client_call *call, bt_call *server_call) {
  long long held = (long long)(call->in_charged + call->out_charged);
  account(call, -held);
  call->charge_to = server_call;
  account(call, held);
}

/* Over the budget its bytes count against. */
static int over_budget(const bt_client_call *call) {
  return call->charge_to ? bt__srv_call_budget_exceeded(call->charge_to)
                         : bt__budget_exceeded(&call->ch->budget);
}

static void charge_decoder(bt_client_call *call) {
  charge(call, &call->in_charged, call->in.dec.buf_cap);
}

static void charge_queue(bt_client_call *call) {
  charge(call, &call->out_charged, call->out.bytes);
}

/* The call is leaving its channel (it ended): nothing more is sent or
 * decoded, and its bytes go back to the budget while the channel, which may
 * be freed before on_done runs, is still there. */
static void release_buffers(bt_client_call *call) {
  if (call->blocked)
    bt__cli_channel_unblock(call->ch, call);
  if (call->in_charged == 0 && call->out_charged == 0 && !call->in.dec.buf &&
      !call->out.head)
    return; /* the common end of a call: nothing held */
  bt__sendq_clear(&call->out);
  bt__msgin_clear(&call->in);
  charge_queue(call);
  charge_decoder(call);
}

static void call_free(bt_client_call *call) {
  bt_timer_free(call->timer);
  bt__sendq_clear(&call->out);
  bt__msgin_clear(&call->in);
  bt_arena_free(call->arena);
}

/* Delivers on_done and frees the call. */
static void complete(bt_client_call *call, int code, const char *message) {
  bt_status st = {.code = code,
                  .message = message ? message : "",
                  .trailers = call->trailers};
  if (call->cbs.on_done)
    call->cbs.on_done(call, &st, call->ud);
  call_free(call);
}

/* Takes the call off its connection or the pending list. */
static void detach(bt_client_call *call) {
  if (call->state == CC_PENDING && call->ch) {
    bt__cli_channel_unqueue(call->ch, call);
  } else if (call->cc) {
    cli_conn *cc = call->cc;
    if (call->prev)
      call->prev->next = call->next;
    else
      cc->calls = call->next;
    if (call->next)
      call->next->prev = call->prev;
    cc->active--;
    if (call->stream_id > 0)
      nghttp2_session_set_stream_user_data(cc->h2, call->stream_id, NULL);
  }
  call->prev = call->next = NULL;
  call->state = CC_DONE;
  release_buffers(call);
}

static void timer_fired(void *ud) {
  bt_client_call *call = ud;
  if (call->state == CC_DONE) { /* a deferred on_done */
    complete(call, call->local_code, call->local_message);
    return;
  }
  bt__cli_call_fail(call, BT_GRPC_DEADLINE_EXCEEDED, "Deadline Exceeded");
}

void bt__cli_call_fail(bt_client_call *call, int code, const char *message) {
  if (call->state == CC_DONE)
    return;
  bt__cli_conn_reset_stream(call);
  detach(call);
  call->local_code = code;
  if (!message)
    message = "";
  call->local_message = bt_arena_strndup(call->arena, message, strlen(message));
  /* on_done always comes from the loop, never from inside the API call
   * that caused it. */
  if (!call->timer)
    call->timer = bt_timer_new(call->ch->loop, timer_fired, call);
  bt_timer_start(call->timer, 0);
}

void bt__cli_call_conn_lost(bt_client_call *call, const char *why) {
  call->stream_id = -1; /* the session is going away: nothing to reset */
  bt__cli_call_fail(call, BT_GRPC_UNAVAILABLE, why);
}

/* ---- request --------------------------------------------------------- */

int bt__cli_call_attach(bt_client_call *call, cli_conn *cc) {
  bt_channel *ch = call->ch;
  nghttp2_nv *nv =
      bt_arena_alloc(call->arena, (10 + call->md_nv_count) * sizeof(*nv));
  size_t n = 0;
  nv[n++] = MAKE_NV(":method", "POST", 4);
  nv[n++] = ch->ssl_ctx ? MAKE_NV(":scheme", "https", 5)
                        : MAKE_NV(":scheme", "http", 4);
  nv[n++] = MAKE_NV(":path", call->path, strlen(call->path));
  nv[n++] = MAKE_NV(":authority", ch->authority, strlen(ch->authority));
  nv[n++] = MAKE_NV("content-type", "application/grpc", 16);
  nv[n++] = MAKE_NV("te", "trailers", 8);
  nv[n++] = MAKE_NV("user-agent", call->user_agent, call->user_agent_len);
  nv[n++] = MAKE_NV("grpc-accept-encoding", "identity,gzip", 13);
  if (call->gzip)
    nv[n++] = MAKE_NV("grpc-encoding", "gzip", 4);
  if (call->deadline != INT64_MAX) {
    int64_t left = call->deadline - bt__now_ns();
    if (left <= 0) {
      bt__cli_call_fail(call, BT_GRPC_DEADLINE_EXCEEDED, "Deadline Exceeded");
      return 0;
    }
    char *timeout = bt_arena_alloc(call->arena, BT_TIMEOUT_MAX_LEN);
    size_t len = bt__timeout_format(left, timeout);
    nv[n++] = MAKE_NV("grpc-timeout", timeout, len);
    nv[n - 1].flags |= NGHTTP2_NV_FLAG_NO_INDEX; /* see value_is_per_call */
  }
  if (call->md_nv_count) {
    memcpy(nv + n, call->md_nv, call->md_nv_count * sizeof(*nv));
    n += call->md_nv_count;
  }
  nghttp2_data_provider prd = {.source.ptr = call,
                               .read_callback = bt__cli_call_read_data};
  int32_t id = nghttp2_submit_request(cc->h2, NULL, nv, n, &prd, call);
  if (id < 0)
    return BT_ERR_H2;
  call->stream_id = id;
  call->cc = cc;
  call->state = CC_ACTIVE;
  call->prev = NULL;
  call->next = cc->calls;
  if (cc->calls)
    cc->calls->prev = call;
  cc->calls = call;
  cc->active++;
  bt__conn_mark_dirty(cc->conn);
  return 0;
}

ssize_t bt__cli_call_read_data(nghttp2_session *h2, int32_t stream_id,
                               uint8_t *buf, size_t length,
                               uint32_t *data_flags,
                               nghttp2_data_source *source, void *user_data) {
  (void)h2;
  bt_client_call *call = source->ptr;
  size_t n = bt__sendq_read(&call->out, buf, length);
  if (n)
    charge_queue(call);
  if (call->out.bytes > 0 || !call->send_closed)
    return n > 0 ? (ssize_t)n : NGHTTP2_ERR_DEFERRED;
  /* The last message ends the stream in its own frame: no empty DATA
   * frame for END_STREAM (one frame less per call for both peers). */
  *data_flags |= NGHTTP2_DATA_FLAG_EOF;
  return (ssize_t)n;
}

/* ---- response -------------------------------------------------------- */

static int name_is(const uint8_t *name, size_t len, const char *lit) {
  size_t n = strlen(lit);
  return len == n && memcmp(name, lit, n) == 0;
}

int bt__cli_call_header(bt_client_call *call, const nghttp2_frame *frame,
                        const uint8_t *name, size_t namelen,
                        const uint8_t *value, size_t valuelen) {
  int is_trailers = frame->headers.cat != NGHTTP2_HCAT_RESPONSE ||
                    (frame->hd.flags & NGHTTP2_FLAG_END_STREAM);
  /* What we advertised as SETTINGS_MAX_HEADER_LIST_SIZE, enforced (nghttp2
   * does not): counted before anything is stored, so a header block that
   * inflates without end (an HPACK bomb) costs its decoding, not memory. */
  call->header_bytes += namelen + valuelen + 32;
  if (call->header_bytes > call->ch->opts.max_header_list) {
    char why[200];
    snprintf(why, sizeof(why),
             "%s sent response headers and trailers larger than %u bytes",
             call->ch->name, call->ch->opts.max_header_list);
    bt__cli_call_fail(call, BT_GRPC_RESOURCE_EXHAUSTED, why);
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  }
  if (name_is(name, namelen, ":status")) {
    call->http_status = 0;
    for (size_t i = 0; i < valuelen && i < 3; i++)
      call->http_status = call->http_status * 10 + (value[i] - '0');
  } else if (namelen > 0 && name[0] == ':') {
    /* other pseudo-headers are not for us */
  } else if (name_is(name, namelen, "content-type")) {
    call->content_type_ok =
        valuelen >= 16 && memcmp(value, "application/grpc", 16) == 0;
  } else if (name_is(name, namelen, "grpc-status")) {
    int code = 0;
    int ok = valuelen > 0 && valuelen <= 3;
    for (size_t i = 0; ok && i < valuelen; i++) {
      if (value[i] < '0' || value[i] > '9')
        ok = 0;
      else
        code = code * 10 + (value[i] - '0');
    }
    call->have_grpc_status = 1;
    /* Codes past 16 are not gRPC's: UNKNOWN, as the spec says. */
    call->grpc_status =
        ok && code <= BT_GRPC_UNAUTHENTICATED ? code : BT_GRPC_UNKNOWN;
  } else if (name_is(name, namelen, "grpc-message")) {
    call->grpc_message = bt_arena_alloc(call->arena, valuelen + 1);
    bt__percent_decode((const char *)value, valuelen,
                       (uint8_t *)call->grpc_message);
  } else if (name_is(name, namelen, "grpc-encoding")) {
    if (bt__encoding_parse((const char *)value, valuelen, &call->in.encoding))
      call->encoding_bad = 1; /* refused on the first message */
  } else if (name_is(name, namelen, "grpc-accept-encoding")) {
    /* we only send what the server accepts if asked to compress */
  } else {
    bt__metadata_add_wire(is_trailers ? call->trailers : call->init_md,
                          (const char *)name, namelen, value, valuelen);
  }
  return 0;
}

void bt__cli_call_headers_done(bt_client_call *call,
                               const nghttp2_frame *frame) {
  if (frame->headers.cat != NGHTTP2_HCAT_RESPONSE ||
      (frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
    return;
  if (call->http_status >= 100 && call->http_status < 200)
    return; /* informational: the real response follows */
  call->got_headers = 1;
  if (call->cbs.on_headers && call->state == CC_ACTIVE)
    call->cbs.on_headers(call, call->init_md, call->ud);
}

static int deliver_message(void *ud, const uint8_t *msg, size_t len) {
  bt_client_call *call = ud;
  if (call->state != CC_ACTIVE)
    return -1;
  if (call->single_response && call->in.count > 1) {
    char why[200];
    snprintf(why, sizeof(why),
             "%s sent more than one response message for a call that takes "
             "one",
             call->ch->name);
    bt__cli_call_fail(call, BT_GRPC_INTERNAL, why);
    return -1;
  }
  ProtobufCMessage *decoded = NULL;
  if (call->output) {
    decoded = protobuf_c_message_unpack(call->output, NULL, len, msg);
    if (!decoded) {
      char why[256];
      snprintf(why, sizeof(why), "cannot decode response as %s",
               call->output->name);
      bt__cli_call_fail(call, BT_GRPC_INTERNAL, why);
      return -1;
    }
  }
  if (call->cbs.on_message)
    call->cbs.on_message(call, decoded, msg, len, call->ud);
  protobuf_c_message_free_unpacked(decoded, NULL);
  return call->state == CC_ACTIVE ? 0 : -1;
}

void bt__cli_call_data(bt_client_call *call, const uint8_t *data, size_t len) {
  if (call->state != CC_ACTIVE)
    return;
  /* Consumed once handed on (a message to on_message, a part into the
   * decoder), unless the caller paused the call. */
  bt__cli_conn_consume(call, len);
  /* Not a gRPC response (an HTTP error page, a proxy's answer): its body
   * means nothing; the status is decided from the HTTP status at the end. */
  if (call->http_status != 200 || !call->content_type_ok)
    return;
  if (call->encoding_bad) {
    bt__cli_call_fail(
        call, BT_GRPC_INTERNAL,
        "server used a grpc-encoding this client does not accept");
    return;
  }
  int code = bt__msgin_feed(&call->in, data, len);
  charge_decoder(call); /* also after a release deferred during the feed */
  if (code > 0)
    bt__cli_call_fail(call, code, call->in.error);
}

void bt__cli_call_stream_closed(bt_client_call *call, uint32_t error_code) {
  if (call->state != CC_ACTIVE)
    return;
  int partial = bt__msgin_finish(&call->in);
  detach(call);
  char why[128];
  int code;
  const char *message;
  if (call->http_status != 0 && call->http_status != 200) {
    code = bt_grpc_code_from_http_status(call->http_status);
    snprintf(why, sizeof(why), "HTTP status %d without a gRPC status",
             call->http_status);
    message = why;
  } else if (call->have_grpc_status) {
    code = call->grpc_status;
    message = call->grpc_message;
    if (partial && code == BT_GRPC_OK) {
      code = BT_GRPC_INTERNAL;
      message = call->in.error;
    }
  } else if (error_code != NGHTTP2_NO_ERROR) {
    code = bt_grpc_code_from_h2_error(error_code);
    snprintf(why, sizeof(why), "stream reset by the server: %s",
             nghttp2_http2_strerror(error_code));
    message = why;
  } else if (call->http_status == 200 && !call->content_type_ok) {
    code = BT_GRPC_UNKNOWN;
    message = "response content-type is not application/grpc";
  } else {
    code = BT_GRPC_INTERNAL;
    message = "server closed the stream without a grpc-status";
  }
  complete(call, code, message);
}

/* ---- public API ------------------------------------------------------ */

#define BATON_USER_AGENT "grpc-c-baton/0.1"

/* Headers whose value is new on every call. HPACK would add each one to the
 * connection's table, evicting the entries that do repeat and leaving
 * nghttp2 to compare against a table full of same-named dead values (the
 * profile of a flow showed 68 memcmp per header block); sent as "never
 * indexed" they cost nothing later. */
static int value_is_per_call(const char *key, size_t key_len) {
  static const char *const keys[] = {"traceparent", "tracestate",
                                     "baton-saga-id", "x-request-id"};
  if (bt_metadata_key_is_binary(key, key_len))
    return 1;
  for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
    if (strcmp(key, keys[i]) == 0)
      return 1;
  }
  return 0;
}

/* Turns the caller's metadata into header fields in the call's arena once,
 * so a call that waits for a connection keeps them and attaching is a
 * copy: -bin values base64-encoded, keys the transport writes itself
 * skipped, and a "user-agent" entry put in front of ours (as gRPC does). */
static void prepare_metadata(bt_client_call *call, const bt_metadata *md) {
  size_t count = bt_metadata_count(md);
  call->user_agent = BATON_USER_AGENT;
  call->user_agent_len = sizeof(BATON_USER_AGENT) - 1;
  call->md_nv =
      count ? bt_arena_alloc(call->arena, count * sizeof(nghttp2_nv)) : NULL;
  size_t n = 0;
  for (size_t i = 0; i < count; i++) {
    const char *key;
    const uint8_t *value;
    size_t len;
    bt_metadata_at(md, i, &key, &value, &len);
    size_t key_len = strlen(key);
    if (bt_metadata_key_is_reserved(key, key_len))
      continue;
    if (key_len == 10 && memcmp(key, "user-agent", 10) == 0) {
      size_t ua_len = len + 1 + sizeof(BATON_USER_AGENT) - 1;
      char *ua = bt_arena_alloc(call->arena, ua_len + 1);
      memcpy(ua, value, len);
      ua[len] = ' ';
      memcpy(ua + len + 1, BATON_USER_AGENT, sizeof(BATON_USER_AGENT));
      call->user_agent = ua;
      call->user_agent_len = ua_len;
      continue;
    }
    size_t wire_len = bt__metadata_wire_value_len(key, value, len);
    char *mem = bt_arena_alloc(call->arena, key_len + 1 + wire_len + 1);
    memcpy(mem, key, key_len + 1);
    bt__metadata_wire_value(key, value, len, mem + key_len + 1);
    uint8_t flags = NV_NO_COPY;
    if (value_is_per_call(key, key_len))
      flags |= NGHTTP2_NV_FLAG_NO_INDEX;
    call->md_nv[n++] = (nghttp2_nv){
        (uint8_t *)mem, (uint8_t *)mem + key_len + 1, key_len, wire_len, flags};
  }
  call->md_nv_count = n;
}

bt_client_call *bt_channel_start_call(bt_channel *ch, const char *path,
                                      const ProtobufCMessageDescriptor *output,
                                      const bt_call_opts *opts,
                                      const bt_client_callbacks *cbs,
                                      void *ud) {
  bt_arena *arena = bt_arena_new(0);
  bt_client_call *call = bt_arena_calloc(arena, sizeof(*call));
  call->arena = arena;
  call->ch = ch;
  call->path = bt_arena_strndup(arena, path, strlen(path));
  call->output = output;
  if (cbs)
    call->cbs = *cbs;
  call->ud = ud;
  call->deadline = INT64_MAX;
  prepare_metadata(call, opts ? opts->metadata : NULL);
  call->gzip = opts ? opts->gzip : 0;
  call->single_response = opts ? opts->single_response : 0;
  call->init_md = bt_metadata_new(arena);
  call->trailers = bt_metadata_new(arena);
  bt__sendq_init(&call->out);
  bt__msgin_init(&call->in, ch->opts.max_recv_message, deliver_message, call);
  call->state = CC_NEW;
  if (opts && opts->timeout_ms > 0) {
    int64_t now = bt__now_ns();
    int64_t ns = opts->timeout_ms > (INT64_MAX - now) / 1000000
                     ? INT64_MAX - now
                     : opts->timeout_ms * 1000000;
    call->deadline = now + ns;
    call->timer = bt_timer_new(ch->loop, timer_fired, call);
    bt_timer_start(call->timer, (uint64_t)opts->timeout_ms);
  }
  if (ch->freeing) {
    bt__cli_call_fail(call, BT_GRPC_CANCELLED, "channel closed");
    return call;
  }
  /* dispatch attaches the call, queues it or fails it */
  bt__cli_channel_dispatch(ch, call);
  return call;
}

/* Before queueing: a channel (or process) over its budget takes no more,
 * and the call that tried ends, so a producer that ignores writability
 * cannot grow memory without bound. */
static int check_budget(bt_client_call *call) {
  if (!over_budget(call))
    return 0;
  char why[200];
  snprintf(why, sizeof(why),
           "request not sent: the channel to %s is over its buffer budget "
           "(%zu bytes)",
           call->ch->name, call->ch->budget.limit);
  bt__cli_call_fail(call, BT_GRPC_RESOURCE_EXHAUSTED, why);
  return BT_ERR_LIMIT;
}

static int queued(bt_client_call *call, int rv) {
  if (rv != 0) {
    bt__cli_call_fail(call, BT_GRPC_RESOURCE_EXHAUSTED,
                      rv == BT_ERR_NOMEM ? "out of memory for a request"
                                         : "request too large");
    return rv;
  }
  charge_queue(call);
  bt__cli_conn_kick(call);
  if (call->cbs.on_writable && !bt_client_call_writable(call))
    bt__cli_channel_block(call->ch, call);
  return 0;
}

int bt_client_call_send(bt_client_call *call, const ProtobufCMessage *msg) {
  if (call->send_closed || call->state == CC_DONE)
    return BT_ERR_STATE;
  if (check_budget(call) != 0)
    return BT_ERR_LIMIT;
  return queued(call, bt__sendq_push_message(&call->out, msg, call->gzip));
}

int bt_client_call_send_bytes(bt_client_call *call, const uint8_t *bytes,
                              size_t len) {
  if (call->send_closed || call->state == CC_DONE)
    return BT_ERR_STATE;
  if (check_budget(call) != 0)
    return BT_ERR_LIMIT;
  return queued(call, bt__sendq_push_bytes(&call->out, bytes, len, call->gzip));
}

int bt_client_call_writable(const bt_client_call *call) {
  if (call->send_closed || call->state == CC_DONE)
    return 0;
  size_t high = call->ch->opts.stream_buffer;
  return (!high || call->out.bytes < high) && !over_budget(call);
}

size_t bt_client_call_send_queued(const bt_client_call *call) {
  return call->out.bytes;
}

int bt__cli_call_check_writable(bt_client_call *call) {
  if (!call->cbs.on_writable || call->send_closed || call->state == CC_DONE)
    return 0;
  size_t high = call->ch->opts.stream_buffer;
  if ((high && call->out.bytes > high / 2) || over_budget(call))
    return 1;
  call->cbs.on_writable(call, call->ud);
  return 0;
}

void bt_client_call_read_pause(bt_client_call *call) {
  call->read_paused = 1;
}

void bt_client_call_read_resume(bt_client_call *call) {
  if (!call->read_paused)
    return;
  call->read_paused = 0;
  size_t owed = call->unconsumed;
  call->unconsumed = 0;
  if (owed && call->state == CC_ACTIVE)
    bt__cli_conn_consume(call, owed);
}

int bt_client_call_close_send(bt_client_call *call) {
  if (call->send_closed || call->state == CC_DONE)
    return BT_ERR_STATE;
  call->send_closed = 1;
  bt__cli_conn_kick(call);
  return 0;
}

void bt_client_call_cancel(bt_client_call *call) {
  bt__cli_call_fail(call, BT_GRPC_CANCELLED, "Cancelled");
}

bt_client_call *bt_channel_call(bt_channel *ch, const char *path,
                                const ProtobufCMessage *req,
                                const ProtobufCMessageDescriptor *output,
                                const bt_call_opts *opts,
                                const bt_client_callbacks *cbs, void *ud) {
  bt_client_call *call = bt_channel_start_call(ch, path, output, opts, cbs, ud);
  if (bt_client_call_send(call, req) == 0)
    bt_client_call_close_send(call);
  return call;
}
