/* test_generator.c: the stubs protoc-gen-baton generates for
 * tests/unit/proto/gentest.proto.
 *
 * That this file compiles already checks the generated names against
 * protoc-c's (BatonTest__GenTest__EchoRequest__Inner, the httpget_url member,
 * Baton__Common__Ping from the imported file). The tests then check the method
 * table, the invoke trampolines and every generated wrapper. The runtime
 * functions the stubs call are replaced at link time (ld --wrap, see
 * generated.cmake) by recorders below, so each wrapper is seen passing the
 * right path, descriptor and arguments, and a NULL handler is seen answering
 * UNIMPLEMENTED, without a network. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <baton/error.h>
#include <baton/status.h>

#include "gentest.baton.h"
#include "gentest_common.baton.h"

/* Stand-ins for the opaque runtime objects: only their addresses matter. */
static max_align_t fake_storage[6];
#define FAKE_CALL ((bt_call *)&fake_storage[0])
#define FAKE_SERVER ((bt_server *)&fake_storage[1])
#define FAKE_CHANNEL ((bt_channel *)&fake_storage[2])
#define FAKE_SYNC_CHANNEL ((bt_sync_channel *)&fake_storage[3])
#define FAKE_SYNC_CALL ((bt_sync_call *)&fake_storage[4])

/* ---- what the wrapped runtime functions saw ---------------------------- */

static struct {
  int calls; /* every recorder bumps it, so order can be checked */
  int finish_code, finish_seq;
  char finish_message[256];
  const bt_service_desc *svc;
  const void *svc_handlers;
  void *svc_ud;
  const ProtobufCMessage *sent;
  int send_seq, close_seq;
  const char *path;
  const ProtobufCMessage *req;
  const ProtobufCMessageDescriptor *output;
  const bt_call_opts *opts;
  const bt_client_callbacks *cbs;
  void *ud;
  int next_rv;                /* what the recorder returns */
  ProtobufCMessage *next_out; /* what it hands out as a response */
  const char *next_message;   /* bt_sync_unary's status message */
} seen;

static bt_client_call *const fake_client_call =
    (bt_client_call *)&fake_storage[5];

void __wrap_bt_call_finish(bt_call *call, int code, const char *message) {
  assert_ptr_equal(call, FAKE_CALL);
  seen.finish_code = code;
  seen.finish_seq = ++seen.calls;
  snprintf(seen.finish_message, sizeof seen.finish_message, "%s",
           message ? message : "");
}

int __wrap_bt_server_add_service(bt_server *server, const bt_service_desc *svc,
                                 const void *handlers, void *ud) {
  assert_ptr_equal(server, FAKE_SERVER);
  seen.calls++;
  seen.svc = svc;
  seen.svc_handlers = handlers;
  seen.svc_ud = ud;
  return seen.next_rv;
}

int __wrap_bt_call_send(bt_call *call, const ProtobufCMessage *msg) {
  assert_ptr_equal(call, FAKE_CALL);
  seen.calls++;
  seen.sent = msg;
  return seen.next_rv;
}

bt_client_call *__wrap_bt_channel_call(bt_channel *ch, const char *path,
                                       const ProtobufCMessage *req,
                                       const ProtobufCMessageDescriptor *output,
                                       const bt_call_opts *opts,
                                       const bt_client_callbacks *cbs,
                                       void *ud) {
  assert_ptr_equal(ch, FAKE_CHANNEL);
  seen.calls++;
  seen.path = path;
  seen.req = req;
  seen.output = output;
  seen.opts = opts;
  seen.cbs = cbs;
  seen.ud = ud;
  return fake_client_call;
}

bt_client_call *__wrap_bt_channel_start_call(
    bt_channel *ch, const char *path, const ProtobufCMessageDescriptor *output,
    const bt_call_opts *opts, const bt_client_callbacks *cbs, void *ud) {
  return __wrap_bt_channel_call(ch, path, NULL, output, opts, cbs, ud);
}

int __wrap_bt_sync_unary(bt_sync_channel *ch, const char *path,
                         const ProtobufCMessage *req,
                         const ProtobufCMessageDescriptor *output,
                         const bt_call_opts *opts, ProtobufCMessage **resp,
                         char **message) {
  assert_ptr_equal(ch, FAKE_SYNC_CHANNEL);
  assert_non_null(resp);
  seen.calls++;
  seen.path = path;
  seen.req = req;
  seen.output = output;
  seen.opts = opts;
  *resp = seen.next_out;
  if (message)
    *message = (char *)seen.next_message;
  return seen.next_rv;
}

bt_sync_call *
__wrap_bt_sync_call_start(bt_sync_channel *ch, const char *path,
                          const ProtobufCMessageDescriptor *output,
                          const bt_call_opts *opts) {
  assert_ptr_equal(ch, FAKE_SYNC_CHANNEL);
  seen.calls++;
  seen.path = path;
  seen.output = output;
  seen.opts = opts;
  return FAKE_SYNC_CALL;
}

int __wrap_bt_sync_call_send(bt_sync_call *call, const ProtobufCMessage *msg) {
  assert_ptr_equal(call, FAKE_SYNC_CALL);
  seen.sent = msg;
  seen.send_seq = ++seen.calls;
  return 0;
}

int __wrap_bt_sync_call_close_send(bt_sync_call *call) {
  assert_ptr_equal(call, FAKE_SYNC_CALL);
  seen.close_seq = ++seen.calls;
  return 0;
}

int __wrap_bt_sync_call_recv(bt_sync_call *call, ProtobufCMessage **out) {
  assert_ptr_equal(call, FAKE_SYNC_CALL);
  seen.calls++;
  *out = seen.next_rv == 1 ? seen.next_out : NULL;
  return seen.next_rv;
}

static int reset_seen(void **state) {
  memset(&seen, 0, sizeof seen);
  return 0;
}

/* ---- handlers that record how they were called ------------------------- */

static struct {
  const char *which;
  bt_call *call;
  const void *req;
  void *ud;
} handled;

static void on_unary(bt_call *call, const BatonTest__GenTest__EchoRequest *req,
                     void *ud) {
  handled.which = "unary";
  handled.call = call;
  handled.req = req;
  handled.ud = ud;
}

static void on_server_stream(bt_call *call,
                             const BatonTest__GenTest__EchoRequest *req,
                             void *ud) {
  handled.which = "server_stream";
  handled.call = call;
  handled.req = req;
  handled.ud = ud;
}

static void on_client_stream(bt_call *call, void *ud) {
  handled.which = "client_stream";
  handled.call = call;
  handled.ud = ud;
}

static void on_bidi_stream(bt_call *call, void *ud) {
  handled.which = "bidi_stream";
  handled.call = call;
  handled.ud = ud;
}

static void on_ping_pong(bt_call *call, const Baton__Common__Ping *req,
                         void *ud) {
  handled.which = "ping_pong";
  handled.call = call;
  handled.req = req;
  handled.ud = ud;
}

static void on_httpget_url(bt_call *call,
                           const BatonTest__GenTest__EchoRequest__Inner *req,
                           void *ud) {
  handled.which = "httpget_url";
  handled.call = call;
  handled.req = req;
  handled.ud = ud;
}

static const BatonTest__GenTest__GenService_BatonHandlers all_handlers = {
    .unary = on_unary,
    .server_stream = on_server_stream,
    .client_stream = on_client_stream,
    .bidi_stream = on_bidi_stream,
    .ping_pong = on_ping_pong,
    .httpget_url = on_httpget_url,
};

static const bt_service_desc *const svc =
    &baton_test__gen_test__gen_service__baton_service;

/* The table row for path; fails the test when there is none. */
static const bt_method_desc *method(const char *path) {
  for (size_t i = 0; i < svc->n_methods; i++)
    if (strcmp(svc->methods[i].path, path) == 0)
      return &svc->methods[i];
  fail_msg("no method %s in the table", path);
  return NULL;
}

/* ---- the method table -------------------------------------------------- */

static void test_generator_table_lists_every_method(void **state) {
  static const struct {
    const char *path;
    bt_call_kind kind;
    const ProtobufCMessageDescriptor *input, *output;
  } want[] = {
      {"/baton_test.genTest.GenService/Unary", BT_CALL_UNARY,
       &baton_test__gen_test__echo_request__descriptor,
       &baton_test__gen_test__echo_reply__descriptor},
      {"/baton_test.genTest.GenService/ServerStream", BT_CALL_SERVER_STREAMING,
       &baton_test__gen_test__echo_request__descriptor,
       &baton_test__gen_test__echo_reply__descriptor},
      {"/baton_test.genTest.GenService/ClientStream", BT_CALL_CLIENT_STREAMING,
       &baton_test__gen_test__echo_request__descriptor,
       &baton_test__gen_test__echo_reply__descriptor},
      {"/baton_test.genTest.GenService/BidiStream", BT_CALL_BIDI_STREAMING,
       &baton_test__gen_test__echo_request__descriptor,
       &baton_test__gen_test__echo_reply__descriptor},
      {"/baton_test.genTest.GenService/PingPong", BT_CALL_UNARY,
       &baton__common__ping__descriptor, &baton__common__pong__descriptor},
      {"/baton_test.genTest.GenService/HTTPGetURL", BT_CALL_UNARY,
       &baton_test__gen_test__echo_request__inner__descriptor,
       &baton_test__gen_test__echo_reply__descriptor},
  };
  assert_string_equal(svc->name, "baton_test.genTest.GenService");
  assert_int_equal(svc->n_methods, sizeof want / sizeof want[0]);
  for (size_t i = 0; i < svc->n_methods; i++) {
    const bt_method_desc *m = &svc->methods[i];
    assert_string_equal(m->path, want[i].path); /* in .proto order */
    assert_int_equal(m->kind, want[i].kind);
    assert_ptr_equal(m->input, want[i].input);
    assert_ptr_equal(m->output, want[i].output);
    assert_non_null(m->invoke);
  }
}

static void test_generator_path_macros_match_table(void **state) {
  assert_string_equal(BATON_TEST__GEN_TEST__GEN_SERVICE__UNARY__PATH,
                      svc->methods[0].path);
  assert_string_equal(BATON_TEST__GEN_TEST__GEN_SERVICE__HTTPGET_URL__PATH,
                      "/baton_test.genTest.GenService/HTTPGetURL");
}

/* ---- dispatch ---------------------------------------------------------- */

static void test_generator_invoke_passes_typed_request(void **state) {
  BatonTest__GenTest__EchoRequest req =
      BATON_TEST__GEN_TEST__ECHO_REQUEST__INIT;
  Baton__Common__Ping ping = BATON__COMMON__PING__INIT;
  BatonTest__GenTest__EchoRequest__Inner inner =
      BATON_TEST__GEN_TEST__ECHO_REQUEST__INNER__INIT;
  int ud;
  static const struct {
    const char *path, *handler;
  } unary_like[] = {
      {"/baton_test.genTest.GenService/Unary", "unary"},
      {"/baton_test.genTest.GenService/ServerStream", "server_stream"},
      {"/baton_test.genTest.GenService/PingPong", "ping_pong"},
      {"/baton_test.genTest.GenService/HTTPGetURL", "httpget_url"},
  };
  const ProtobufCMessage *reqs[] = {&req.base, &req.base, &ping.base,
                                    &inner.base};
  for (size_t i = 0; i < 4; i++) {
    memset(&handled, 0, sizeof handled);
    method(unary_like[i].path)->invoke(FAKE_CALL, reqs[i], &all_handlers, &ud);
    assert_non_null(handled.which);
    assert_string_equal(handled.which, unary_like[i].handler);
    assert_ptr_equal(handled.call, FAKE_CALL);
    assert_ptr_equal(handled.req, reqs[i]);
    assert_ptr_equal(handled.ud, &ud);
  }
  assert_int_equal(seen.calls, 0); /* nobody finished anything */
}

static void
test_generator_invoke_streaming_handler_gets_call_only(void **state) {
  int ud;
  memset(&handled, 0, sizeof handled);
  method("/baton_test.genTest.GenService/ClientStream")
      ->invoke(FAKE_CALL, NULL, &all_handlers, &ud);
  assert_string_equal(handled.which, "client_stream");
  assert_ptr_equal(handled.call, FAKE_CALL);
  assert_ptr_equal(handled.ud, &ud);

  memset(&handled, 0, sizeof handled);
  method("/baton_test.genTest.GenService/BidiStream")
      ->invoke(FAKE_CALL, NULL, &all_handlers, &ud);
  assert_string_equal(handled.which, "bidi_stream");
  assert_ptr_equal(handled.ud, &ud);
}

static void test_generator_null_handler_answers_unimplemented(void **state) {
  BatonTest__GenTest__EchoRequest req =
      BATON_TEST__GEN_TEST__ECHO_REQUEST__INIT;
  /* Only Unary implemented: every other method must answer UNIMPLEMENTED
   * and Unary's handler must not run in their place. */
  BatonTest__GenTest__GenService_BatonHandlers only_unary = {.unary = on_unary};
  for (size_t i = 1; i < svc->n_methods; i++) {
    memset(&handled, 0, sizeof handled);
    memset(&seen, 0, sizeof seen);
    svc->methods[i].invoke(FAKE_CALL, &req.base, &only_unary, NULL);
    assert_null(handled.which);
    assert_int_equal(seen.finish_seq, 1);
    assert_int_equal(seen.finish_code, BT_GRPC_UNIMPLEMENTED);
    assert_non_null(strstr(seen.finish_message, svc->methods[i].path));
  }
}

static void test_generator_null_table_answers_unimplemented(void **state) {
  svc->methods[0].invoke(FAKE_CALL, NULL, NULL, NULL);
  assert_int_equal(seen.finish_seq, 1);
  assert_int_equal(seen.finish_code, BT_GRPC_UNIMPLEMENTED);
}

/* ---- server wrappers ---------------------------------------------------- */

static void test_generator_register_adds_the_table(void **state) {
  int ud;
  seen.next_rv = BT_ERR_EXISTS;
  int rv = baton_test__gen_test__gen_service__baton_register(
      FAKE_SERVER, &all_handlers, &ud);
  assert_int_equal(rv, BT_ERR_EXISTS); /* the runtime's answer comes back */
  assert_ptr_equal(seen.svc, svc);
  assert_ptr_equal(seen.svc_handlers, &all_handlers);
  assert_ptr_equal(seen.svc_ud, &ud);
}

static void test_generator_send_passes_response(void **state) {
  Baton__Common__Pong pong = BATON__COMMON__PONG__INIT;
  seen.next_rv = BT_ERR_STATE;
  assert_int_equal(
      baton_test__gen_test__gen_service__ping_pong__send(FAKE_CALL, &pong),
      BT_ERR_STATE);
  assert_ptr_equal(seen.sent, &pong.base);
}

/* ---- client wrappers ---------------------------------------------------- */

static void test_generator_start_unary_sends_request(void **state) {
  BatonTest__GenTest__EchoRequest req =
      BATON_TEST__GEN_TEST__ECHO_REQUEST__INIT;
  bt_call_opts opts = {0};
  bt_client_callbacks cbs = {0};
  int ud;
  bt_client_call *c = baton_test__gen_test__gen_service__server_stream__start(
      FAKE_CHANNEL, &req, &opts, &cbs, &ud);
  assert_ptr_equal(c, fake_client_call);
  assert_string_equal(seen.path, "/baton_test.genTest.GenService/ServerStream");
  assert_ptr_equal(seen.req, &req.base);
  assert_ptr_equal(seen.output, &baton_test__gen_test__echo_reply__descriptor);
  assert_ptr_equal(seen.opts, &opts);
  assert_ptr_equal(seen.cbs, &cbs);
  assert_ptr_equal(seen.ud, &ud);
}

static void test_generator_start_streaming_opens_call(void **state) {
  bt_client_callbacks cbs = {0};
  int ud;
  bt_client_call *c = baton_test__gen_test__gen_service__bidi_stream__start(
      FAKE_CHANNEL, NULL, &cbs, &ud);
  assert_ptr_equal(c, fake_client_call);
  assert_string_equal(seen.path, "/baton_test.genTest.GenService/BidiStream");
  assert_null(seen.req);
  assert_ptr_equal(seen.output, &baton_test__gen_test__echo_reply__descriptor);
  assert_ptr_equal(seen.cbs, &cbs);
  assert_ptr_equal(seen.ud, &ud);
}

static void test_generator_sync_unary_returns_typed_response(void **state) {
  Baton__Common__Ping ping = BATON__COMMON__PING__INIT;
  Baton__Common__Pong pong = BATON__COMMON__PONG__INIT;
  Baton__Common__Pong *resp = NULL;
  char *message = NULL;
  seen.next_rv = BT_GRPC_NOT_FOUND;
  seen.next_out = &pong.base;
  seen.next_message = "gone";
  int code = baton_test__gen_test__gen_service__ping_pong_sync(
      FAKE_SYNC_CHANNEL, &ping, NULL, &resp, &message);
  assert_int_equal(code, BT_GRPC_NOT_FOUND);
  assert_ptr_equal(resp, &pong);
  assert_string_equal(message, "gone");
  assert_string_equal(seen.path, "/baton_test.genTest.GenService/PingPong");
  assert_ptr_equal(seen.req, &ping.base);
  assert_ptr_equal(seen.output, &baton__common__pong__descriptor);
}

static void test_generator_sync_server_stream_sends_then_closes(void **state) {
  BatonTest__GenTest__EchoRequest req =
      BATON_TEST__GEN_TEST__ECHO_REQUEST__INIT;
  bt_call_opts opts = {0};
  bt_sync_call *c = baton_test__gen_test__gen_service__server_stream_sync(
      FAKE_SYNC_CHANNEL, &req, &opts);
  assert_ptr_equal(c, FAKE_SYNC_CALL);
  assert_string_equal(seen.path, "/baton_test.genTest.GenService/ServerStream");
  assert_ptr_equal(seen.output, &baton_test__gen_test__echo_reply__descriptor);
  assert_ptr_equal(seen.opts, &opts);
  assert_ptr_equal(seen.sent, &req.base);
  assert_int_equal(seen.send_seq, 2); /* start, send, close: in that order */
  assert_int_equal(seen.close_seq, 3);
}

static void
test_generator_sync_streaming_leaves_sending_to_caller(void **state) {
  bt_sync_call *c = baton_test__gen_test__gen_service__client_stream_sync(
      FAKE_SYNC_CHANNEL, NULL);
  assert_ptr_equal(c, FAKE_SYNC_CALL);
  assert_string_equal(seen.path, "/baton_test.genTest.GenService/ClientStream");
  assert_int_equal(seen.calls, 1);
  assert_int_equal(seen.send_seq, 0);
  assert_int_equal(seen.close_seq, 0);
}

static void test_generator_recv_types_response(void **state) {
  BatonTest__GenTest__EchoReply reply = BATON_TEST__GEN_TEST__ECHO_REPLY__INIT;
  BatonTest__GenTest__EchoReply *out = NULL;
  seen.next_rv = 1;
  seen.next_out = &reply.base;
  assert_int_equal(baton_test__gen_test__gen_service__bidi_stream__recv(
                       FAKE_SYNC_CALL, &out),
                   1);
  assert_ptr_equal(out, &reply);

  seen.next_rv = 0; /* the end of the responses */
  assert_int_equal(baton_test__gen_test__gen_service__bidi_stream__recv(
                       FAKE_SYNC_CALL, &out),
                   0);
  assert_null(out);

  seen.next_rv = BT_ERR_CLOSED;
  out = &reply;
  assert_int_equal(baton_test__gen_test__gen_service__bidi_stream__recv(
                       FAKE_SYNC_CALL, &out),
                   BT_ERR_CLOSED);
  assert_null(out);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(test_generator_table_lists_every_method,
                             reset_seen),
      cmocka_unit_test_setup(test_generator_path_macros_match_table,
                             reset_seen),
      cmocka_unit_test_setup(test_generator_invoke_passes_typed_request,
                             reset_seen),
      cmocka_unit_test_setup(
          test_generator_invoke_streaming_handler_gets_call_only, reset_seen),
      cmocka_unit_test_setup(test_generator_null_handler_answers_unimplemented,
                             reset_seen),
      cmocka_unit_test_setup(test_generator_null_table_answers_unimplemented,
                             reset_seen),
      cmocka_unit_test_setup(test_generator_register_adds_the_table,
                             reset_seen),
      cmocka_unit_test_setup(test_generator_send_passes_response, reset_seen),
      cmocka_unit_test_setup(test_generator_start_unary_sends_request,
                             reset_seen),
      cmocka_unit_test_setup(test_generator_start_streaming_opens_call,
                             reset_seen),
      cmocka_unit_test_setup(test_generator_sync_unary_returns_typed_response,
                             reset_seen),
      cmocka_unit_test_setup(
          test_generator_sync_server_stream_sends_then_closes, reset_seen),
      cmocka_unit_test_setup(
          test_generator_sync_streaming_leaves_sending_to_caller, reset_seen),
      cmocka_unit_test_setup(test_generator_recv_types_response, reset_seen),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
