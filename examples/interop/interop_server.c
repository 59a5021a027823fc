/* interop_server.c: baton-interop-server, gRPC's interop test server
 * (grpc.testing.TestService, doc/interop-test-descriptions.md) written with
 * the stubs protoc-gen-baton generates, so stock gRPC clients can test the
 * runtime.
 *
 *   baton-interop-server --port=N [--host=ADDR (default 0.0.0.0)]
 *       [--use_tls=true [--cert=FILE] [--key=FILE]
 *        [--ca=FILE --require_client_cert=true]]
 *       [--LIMIT=N ...]   (any bt_server_opts limit, e.g.
 *       --connection_buffer=8388608 --request_header_timeout_ms=1000)
 * which are bt_serve's flags (baton/serve.h), as is the rest of main.
 *
 * Server features: EmptyCall, UnaryCall, CacheableUnaryCall,
 * StreamingInputCall, StreamingOutputCall, FullDuplexCall, HalfDuplexCall,
 * Echo Status, Echo Metadata, ResponseParameters.interval_us and
 * CompressedResponse (per call, not per message). UnimplementedCall and the
 * whole UnimplementedService are registered without handlers, so they answer
 * UNIMPLEMENTED. expect_compressed is not checked: a handler cannot see
 * whether its request arrived compressed.
 *
 * Handlers never block: delays are bt_call_after timers on the call's loop,
 * and streaming responses wait for bt_call_writable (a client that does not
 * read makes the handler wait, not the queue grow).
 * Prints "listening on PORT" once serving; SIGTERM or SIGINT drains and
 * exits 0 (bt_serve). */
#include <baton/baton.h>

#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "grpc/testing/test.baton.h"

#define ECHO_INITIAL_KEY "x-grpc-test-echo-initial"
#define ECHO_TRAILING_KEY "x-grpc-test-echo-trailing-bin"

/* ---- helpers shared by the handlers ------------------------------------ */

/* Echo Metadata: the two test keys go back as initial and trailing
 * metadata. Added up front, before any message, as the runtime requires. */
static void echo_metadata(bt_call *call) {
  const bt_metadata *md = bt_call_request_metadata(call);
  size_t len;
  const uint8_t *v = bt_metadata_get(md, ECHO_INITIAL_KEY, &len);
  if (v)
    bt_call_add_initial_metadata(call, ECHO_INITIAL_KEY, v, len);
  v = bt_metadata_get(md, ECHO_TRAILING_KEY, &len);
  if (v)
    bt_call_add_trailing_metadata(call, ECHO_TRAILING_KEY, v, len);
}

static int wants_status(const Grpc__Testing__EchoStatus *st) {
  return st && st->code != 0;
}

/* Only COMPRESSABLE payloads exist; anything else is INVALID_ARGUMENT, as
 * the descriptions ask. Returns 1 when it finished the call. */
static int reject_response_type(bt_call *call, Grpc__Testing__PayloadType t) {
  if (t == GRPC__TESTING__PAYLOAD_TYPE__COMPRESSABLE)
    return 0;
  char msg[64];
  snprintf(msg, sizeof msg, "unsupported response_type %d", (int)t);
  bt_call_finish(call, BT_GRPC_INVALID_ARGUMENT, msg);
  return 1;
}

static int bool_value(const Grpc__Testing__BoolValue *b) {
  return b && b->value;
}

/* A payload of size zero bytes; bt_free body.data after use (the runtime
 * packs a message when it is sent, so the body need not outlive that). */
static void zero_payload(Grpc__Testing__Payload *p, int32_t size) {
  grpc__testing__payload__init(p);
  p->type = GRPC__TESTING__PAYLOAD_TYPE__COMPRESSABLE;
  p->body.len = size > 0 ? (size_t)size : 0;
  p->body.data = p->body.len ? bt_calloc(1, p->body.len) : NULL;
}

/* ---- unary methods ------------------------------------------------------ */

static void empty_call(bt_call *call, const Grpc__Testing__Empty *req,
                       void *ud) {
  Grpc__Testing__Empty resp = GRPC__TESTING__EMPTY__INIT;
  echo_metadata(call);
  grpc__testing__test_service__empty_call__send(call, &resp);
  bt_call_finish(call, BT_GRPC_OK, NULL);
}

static void unary_call(bt_call *call, const Grpc__Testing__SimpleRequest *req,
                       void *ud) {
  echo_metadata(call);
  if (wants_status(req->response_status)) {
    bt_call_finish(call, req->response_status->code,
                   req->response_status->message);
    return;
  }
  if (reject_response_type(call, req->response_type))
    return;
  if (req->response_size < 0) {
    bt_call_finish(call, BT_GRPC_INVALID_ARGUMENT, "negative response_size");
    return;
  }
  if (bool_value(req->response_compressed))
    bt_call_set_compression(call, 1);

  Grpc__Testing__SimpleResponse resp = GRPC__TESTING__SIMPLE_RESPONSE__INIT;
  Grpc__Testing__Payload payload;
  zero_payload(&payload, req->response_size);
  resp.payload = &payload;
  int rv = grpc__testing__test_service__unary_call__send(call, &resp);
  bt_free(payload.body.data);
  bt_call_finish(call, rv < 0 ? BT_GRPC_INTERNAL : BT_GRPC_OK,
                 rv < 0 ? bt_strerror(rv) : NULL);
}

/* A payload that differs per call, with headers a caching proxy honours. */
static void cacheable_unary_call(bt_call *call,
                                 const Grpc__Testing__SimpleRequest *req,
                                 void *ud) {
  static const char cache_control[] = "max-age=60, public";
  static _Atomic uint64_t calls; /* two calls in one ms still differ */
  char now[48];
  snprintf(now, sizeof now, "%" PRId64 "-%" PRIu64, bt_now_ms(), ++calls);
  bt_call_add_initial_metadata(call, "cache-control", cache_control,
                               strlen(cache_control));
  Grpc__Testing__SimpleResponse resp = GRPC__TESTING__SIMPLE_RESPONSE__INIT;
  Grpc__Testing__Payload payload = GRPC__TESTING__PAYLOAD__INIT;
  payload.body.len = strlen(now);
  payload.body.data = (uint8_t *)now;
  resp.payload = &payload;
  grpc__testing__test_service__cacheable_unary_call__send(call, &resp);
  bt_call_finish(call, BT_GRPC_OK, NULL);
}

/* ---- StreamingInputCall ------------------------------------------------- */

typedef struct input_sum {
  int64_t total;
  int finished;
} input_sum;

static void input_on_message(bt_call *call, const ProtobufCMessage *msg,
                             const uint8_t *bytes, size_t len, void *ud) {
  input_sum *s = ud;
  const Grpc__Testing__StreamingInputCallRequest *req =
      (const Grpc__Testing__StreamingInputCallRequest *)msg;
  if (req && req->payload)
    s->total += (int64_t)req->payload->body.len;
}

static void input_on_half_close(bt_call *call, void *ud) {
  input_sum *s = ud;
  if (s->finished)
    return;
  s->finished = 1;
  Grpc__Testing__StreamingInputCallResponse resp =
      GRPC__TESTING__STREAMING_INPUT_CALL_RESPONSE__INIT;
  resp.aggregated_payload_size = (int32_t)s->total;
  grpc__testing__test_service__streaming_input_call__send(call, &resp);
  bt_call_finish(call, BT_GRPC_OK, NULL);
}

static void input_on_cancel(bt_call *call, void *ud) {
  input_sum *s = ud;
  if (s->finished)
    return;
  s->finished = 1;
  bt_call_finish(call, BT_GRPC_CANCELLED, NULL);
}

static void streaming_input_call(bt_call *call, void *ud) {
  input_sum *s = bt_arena_calloc(bt_call_arena(call), sizeof *s);
  echo_metadata(call);
  bt_call_on_message(call, input_on_message, s);
  bt_call_on_half_close(call, input_on_half_close, s);
  bt_call_on_cancel(call, input_on_cancel, s);
}

/* ---- the responder of StreamingOutput-, FullDuplex- and HalfDuplexCall --- */

/* One response still to send. */
typedef struct pending {
  struct pending *next;
  int32_t size;
  int32_t interval_us; /* sleep before sending, relative to the last one */
  int slept;           /* the interval already passed */
} pending;

/* Responses are queued as requests ask for them and sent by responder_pump,
 * which waits out each interval_us with bt_call_after and ends the call once
 * the queue is empty and no more requests can add to it. Lives in the
 * call's arena. */
typedef struct responder {
  bt_call *call;
  pending *head, *tail;
  pending *spare; /* sent entries, reused */
  int waiting;    /* a bt_call_after is pending */
  int blocked;    /* the client is not reading: wait for on_writable */
  int no_more;    /* half-closed, or Echo Status: nothing more is queued */
  int buffering;  /* HalfDuplexCall: hold responses until half-close */
  int finished;
  int code; /* the status to end with */
  const char *message;
} responder;

static responder *responder_new(bt_call *call) {
  responder *r = bt_arena_calloc(bt_call_arena(call), sizeof *r);
  r->call = call;
  r->code = BT_GRPC_OK;
  return r;
}

static void responder_finish(responder *r, int code, const char *message) {
  if (r->finished)
    return;
  r->finished = 1;
  bt_call_finish(r->call, code, message);
}

static void responder_queue(responder *r, int32_t size, int32_t interval_us) {
  pending *p = r->spare;
  if (p)
    r->spare = p->next;
  else
    p = bt_arena_alloc(bt_call_arena(r->call), sizeof *p);
  p->next = NULL;
  p->size = size;
  p->interval_us = interval_us;
  p->slept = 0;
  if (r->tail)
    r->tail->next = p;
  else
    r->head = p;
  r->tail = p;
}

/* Queues what one StreamingOutputCallRequest asks for. Returns -1 when a
 * bad response_type ended the call. */
static int
responder_take(responder *r,
               const Grpc__Testing__StreamingOutputCallRequest *req) {
  if (reject_response_type(r->call, req->response_type)) {
    r->finished = 1;
    return -1;
  }
  for (size_t i = 0; i < req->n_response_parameters; i++) {
    const Grpc__Testing__ResponseParameters *p = req->response_parameters[i];
    if (bool_value(p->compressed))
      bt_call_set_compression(r->call, 1);
    responder_queue(r, p->size, p->interval_us);
  }
  return 0;
}

/* Echo Status: once what is queued went out, end with st; take nothing
 * more. st->message is copied (a streaming request dies with its
 * callback). */
static void responder_end_with(responder *r,
                               const Grpc__Testing__EchoStatus *st) {
  r->code = st->code;
  r->message = bt_arena_strndup(bt_call_arena(r->call), st->message,
                                strlen(st->message));
  r->no_more = 1;
}

static void responder_pump(responder *r);

static void responder_timer(bt_call *call, void *ud) {
  responder *r = ud;
  if (r->finished)
    return;
  r->waiting = 0;
  if (bt_call_is_cancelled(call)) {
    responder_finish(r, BT_GRPC_CANCELLED, NULL);
    return;
  }
  responder_pump(r);
}

static void responder_writable(bt_call *call, void *ud) {
  responder *r = ud;
  r->blocked = 0;
  responder_pump(r);
}

static void responder_pump(responder *r) {
  while (!r->finished && !r->waiting && !r->blocked &&
         !(r->buffering && !r->no_more)) {
    pending *p = r->head;
    if (!p) {
      if (r->no_more)
        responder_finish(r, r->code, r->message);
      return;
    }
    if (p->interval_us > 0 && !p->slept) {
      p->slept = 1;
      r->waiting = 1;
      bt_call_after(r->call, ((uint64_t)p->interval_us + 999) / 1000,
                    responder_timer, r);
      return;
    }
    if (!bt_call_writable(r->call)) {
      /* Back-pressure: produce the next response once the client has read
       * enough of what is queued (bt_call_send would otherwise queue
       * without end for a client that does not read). */
      r->blocked = 1;
      bt_call_on_writable(r->call, responder_writable, r);
      return;
    }
    r->head = p->next;
    if (!r->head)
      r->tail = NULL;
    p->next = r->spare;
    r->spare = p;

    Grpc__Testing__StreamingOutputCallResponse resp =
        GRPC__TESTING__STREAMING_OUTPUT_CALL_RESPONSE__INIT;
    Grpc__Testing__Payload payload;
    zero_payload(&payload, p->size);
    resp.payload = &payload;
    /* The three methods share the response type and so the typed send. */
    int rv =
        grpc__testing__test_service__full_duplex_call__send(r->call, &resp);
    bt_free(payload.body.data);
    if (rv < 0) /* cancelled or gone: nothing more can be sent */
      responder_finish(r, BT_GRPC_CANCELLED, bt_strerror(rv));
  }
}

static void responder_on_message(bt_call *call, const ProtobufCMessage *msg,
                                 const uint8_t *bytes, size_t len, void *ud) {
  responder *r = ud;
  const Grpc__Testing__StreamingOutputCallRequest *req =
      (const Grpc__Testing__StreamingOutputCallRequest *)msg;
  if (r->finished || r->no_more || !req)
    return; /* after Echo Status, requests are not processed */
  if (wants_status(req->response_status))
    responder_end_with(r, req->response_status); /* before its responses */
  else if (responder_take(r, req) < 0)
    return;
  responder_pump(r);
}

static void responder_on_half_close(bt_call *call, void *ud) {
  responder *r = ud;
  r->no_more = 1;
  responder_pump(r);
}

static void responder_on_cancel(bt_call *call, void *ud) {
  responder_finish(ud, BT_GRPC_CANCELLED, NULL);
}

static void
streaming_output_call(bt_call *call,
                      const Grpc__Testing__StreamingOutputCallRequest *req,
                      void *ud) {
  responder *r = responder_new(call);
  echo_metadata(call);
  bt_call_on_cancel(call, responder_on_cancel, r);
  /* The one request is all there is: its responses, then its status. */
  if (responder_take(r, req) < 0)
    return;
  if (wants_status(req->response_status))
    responder_end_with(r, req->response_status);
  r->no_more = 1;
  responder_pump(r);
}

static void duplex_start(bt_call *call, int buffering) {
  responder *r = responder_new(call);
  r->buffering = buffering;
  echo_metadata(call);
  bt_call_on_message(call, responder_on_message, r);
  bt_call_on_half_close(call, responder_on_half_close, r);
  bt_call_on_cancel(call, responder_on_cancel, r);
}

static void full_duplex_call(bt_call *call, void *ud) {
  duplex_start(call, 0);
}

static void half_duplex_call(bt_call *call, void *ud) {
  duplex_start(call, 1);
}

/* ---- main --------------------------------------------------------------- */

static const Grpc__Testing__TestService_BatonHandlers test_service = {
    .empty_call = empty_call,
    .unary_call = unary_call,
    .cacheable_unary_call = cacheable_unary_call,
    .streaming_output_call = streaming_output_call,
    .streaming_input_call = streaming_input_call,
    .full_duplex_call = full_duplex_call,
    .half_duplex_call = half_duplex_call,
    /* .unimplemented_call stays NULL: UNIMPLEMENTED */
};
/* Registered with no handlers at all: every call answers UNIMPLEMENTED. */
static const Grpc__Testing__UnimplementedService_BatonHandlers
    unimplemented_service = {0};

static int setup(bt_server *server, void *ud) {
  int rv =
      grpc__testing__test_service__baton_register(server, &test_service, ud);
  if (rv < 0)
    return rv;
  return grpc__testing__unimplemented_service__baton_register(
      server, &unimplemented_service, ud);
}

int main(int argc, char **argv) {
  /* Every address, as gRPC's own interop servers listen. */
  static const bt_serve_app app = {
      .name = "baton-interop-server", .setup = setup, .host = "0.0.0.0"};
  return bt_serve(argc, argv, &app);
}
