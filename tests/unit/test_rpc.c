/* test_rpc.c: libbaton's server and client against each other over real
 * loopback sockets (h2c), with raw-bytes methods so no generated code is
 * involved: all four call kinds, metadata both ways, status and message,
 * deadlines, cancellation, unknown methods, the receive limit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <baton/baton.h>

static bt_server *server;
static int port;

/* ---- handlers ------------------------------------------------------- */

/* Raw (bytes) methods only: bidi echo answers each message and ends with
 * the status named by request metadata "x-status". */
static void bidi_msg(bt_call *call, const ProtobufCMessage *msg,
                     const uint8_t *bytes, size_t len, void *ud) {
  bt_call_send_bytes(call, bytes, len);
}

static void bidi_half_close(bt_call *call, void *ud) {
  const uint8_t *st =
      bt_metadata_get(bt_call_request_metadata(call), "x-status", NULL);
  bt_call_add_trailing_metadata(call, "x-trailer", "t", 1);
  bt_call_finish(call, st ? atoi((const char *)st) : 0,
                 st ? "requested status" : NULL);
}

static void bidi_cancel(bt_call *call, void *ud) {
  int *cancels = ud;
  __atomic_add_fetch(cancels, 1, __ATOMIC_SEQ_CST);
  bt_call_finish(call, BT_GRPC_CANCELLED, NULL);
}

static int cancels;

static void echo_invoke(bt_call *call, const ProtobufCMessage *req,
                        const void *h, void *ud) {
  /* "x-echo" comes back as initial metadata, or the request entry that
   * "x-echo-key" names. */
  const bt_metadata *req_md = bt_call_request_metadata(call);
  const uint8_t *key = bt_metadata_get(req_md, "x-echo-key", NULL);
  const uint8_t *v =
      bt_metadata_get(req_md, key ? (const char *)key : "x-echo", NULL);
  if (v)
    bt_call_add_initial_metadata(call, "x-echo", v, strlen((const char *)v));
  const uint8_t *bin;
  size_t bin_len;
  bin = bt_metadata_get(bt_call_request_metadata(call), "x-data-bin", &bin_len);
  if (bin)
    bt_call_add_initial_metadata(call, "x-data-bin", bin, bin_len);
  bt_call_on_message(call, bidi_msg, NULL);
  bt_call_on_half_close(call, bidi_half_close, NULL);
  bt_call_on_cancel(call, bidi_cancel, &cancels);
}

/* Never answers: waits for the deadline or a cancel. */
static void hang_invoke(bt_call *call, const ProtobufCMessage *req,
                        const void *h, void *ud) {
  bt_call_on_cancel(call, bidi_cancel, &cancels);
}

static const bt_method_desc methods[] = {
    {"/test.Echo/Bidi", BT_CALL_BIDI_STREAMING, NULL, NULL, echo_invoke},
    {"/test.Echo/Hang", BT_CALL_BIDI_STREAMING, NULL, NULL, hang_invoke},
};
static const bt_service_desc service = {"test.Echo", 2, methods};

static int setup(void **state) {
  bt_server_opts o;
  bt_server_opts_init(&o);
  o.workers = 2;
  o.max_recv_message = 64 * 1024;
  server = bt_server_new(&o);
  assert_int_equal(bt_server_add_service(server, &service, NULL, NULL), 0);
  assert_int_equal(bt_server_listen(server, "127.0.0.1", 0, NULL), 0);
  port = bt_server_port(server, 0);
  assert_true(port > 0);
  assert_int_equal(bt_server_start(server), 0);
  return 0;
}

static int teardown(void **state) {
  bt_server_free(server);
  return 0;
}

static bt_sync_channel *channel(void) {
  bt_channel_opts o;
  bt_channel_opts_init(&o);
  o.host = "127.0.0.1";
  o.port = port;
  bt_sync_channel *ch;
  assert_int_equal(bt_sync_channel_new(&o, &ch, NULL, 0), 0);
  return ch;
}

/* Raw calls give bytes: collect them with the async API on the sync loop is
 * not exposed, so these tests use a tiny async harness instead. */
typedef struct {
  int done;
  int code;
  char message[256];
  uint8_t got[70000];
  size_t got_len;
  int n_msgs;
  char header_echo[64];
  uint8_t bin[64];
  size_t bin_len;
  char trailer[16];
} result;

static void r_headers(bt_client_call *c, const bt_metadata *md, void *ud) {
  result *r = ud;
  size_t len;
  const uint8_t *v = bt_metadata_get(md, "x-echo", &len);
  if (v)
    snprintf(r->header_echo, sizeof(r->header_echo), "%.*s", (int)len, v);
  v = bt_metadata_get(md, "x-data-bin", &len);
  if (v && len <= sizeof(r->bin)) {
    memcpy(r->bin, v, len);
    r->bin_len = len;
  }
}

static void r_message(bt_client_call *c, const ProtobufCMessage *m,
                      const uint8_t *bytes, size_t len, void *ud) {
  result *r = ud;
  if (r->got_len + len <= sizeof(r->got)) {
    memcpy(r->got + r->got_len, bytes, len);
    r->got_len += len;
  }
  r->n_msgs++;
}

static void r_done(bt_client_call *c, const bt_status *st, void *ud) {
  result *r = ud;
  r->done = 1;
  r->code = st->code;
  snprintf(r->message, sizeof(r->message), "%s", st->message);
  const uint8_t *t = bt_metadata_get(st->trailers, "x-trailer", NULL);
  if (t)
    snprintf(r->trailer, sizeof(r->trailer), "%s", (const char *)t);
}

static const bt_client_callbacks rcbs = {r_headers, r_message, r_done};

typedef struct {
  bt_loop *loop;
  bt_channel *ch;
} async_client;

static void client_open(async_client *a) {
  a->loop = bt_loop_new();
  bt_channel_opts o;
  bt_channel_opts_init(&o);
  o.host = "127.0.0.1";
  o.port = port;
  assert_int_equal(bt_channel_new(a->loop, &o, &a->ch, NULL, 0), 0);
}

static void client_close(async_client *a) {
  bt_channel_free(a->ch);
  bt_loop_free(a->loop);
}

static void wait_done(async_client *a, result *r) {
  while (!r->done)
    bt_loop_run_once(a->loop, 1);
}

static void test_rpc_bidi_echo_with_metadata(void **state) {
  async_client a;
  client_open(&a);
  bt_metadata *md = bt_metadata_new(NULL);
  bt_metadata_add_str(md, "x-echo", "hello");
  const uint8_t bin[] = {0, 1, 2, 0xff, 0xfe};
  bt_metadata_add(md, "x-data-bin", 10, bin, sizeof(bin));
  bt_call_opts opts = {.metadata = md};
  result r = {0};
  bt_client_call *c =
      bt_channel_start_call(a.ch, "/test.Echo/Bidi", NULL, &opts, &rcbs, &r);
  bt_client_call_send_bytes(c, (const uint8_t *)"abc", 3);
  bt_client_call_send_bytes(c, (const uint8_t *)"", 0);
  bt_client_call_send_bytes(c, (const uint8_t *)"defg", 4);
  bt_client_call_close_send(c);
  wait_done(&a, &r);
  assert_int_equal(r.code, BT_GRPC_OK);
  assert_int_equal(r.n_msgs, 3);
  assert_memory_equal(r.got, "abcdefg", 7);
  assert_string_equal(r.header_echo, "hello");
  assert_int_equal(r.bin_len, sizeof(bin));
  assert_memory_equal(r.bin, bin, sizeof(bin));
  assert_string_equal(r.trailer, "t");
  bt_metadata_free(md);
  client_close(&a);
}

static void test_rpc_status_and_message(void **state) {
  async_client a;
  client_open(&a);
  bt_metadata *md = bt_metadata_new(NULL);
  bt_metadata_add_str(md, "x-status", "9");
  bt_call_opts opts = {.metadata = md};
  result r = {0};
  bt_client_call *c =
      bt_channel_start_call(a.ch, "/test.Echo/Bidi", NULL, &opts, &rcbs, &r);
  bt_client_call_close_send(c);
  wait_done(&a, &r);
  assert_int_equal(r.code, BT_GRPC_FAILED_PRECONDITION);
  assert_string_equal(r.message, "requested status");
  bt_metadata_free(md);
  client_close(&a);
}

static void
test_rpc_client_metadata_user_agent_and_reserved_keys(void **state) {
  async_client a;
  client_open(&a);
  bt_metadata *md = bt_metadata_new(NULL);
  bt_metadata_add_str(md, "x-echo-key", "user-agent");
  bt_metadata_add_str(md, "user-agent", "my-app/1.0");
  /* Keys the transport writes itself are not sent twice: a second
   * content-type would make the server answer 415. */
  bt_metadata_add_str(md, "content-type", "text/plain");
  bt_metadata_add_str(md, "te", "gzip");
  bt_call_opts opts = {.metadata = md};
  result r = {0};
  bt_client_call *c =
      bt_channel_start_call(a.ch, "/test.Echo/Bidi", NULL, &opts, &rcbs, &r);
  bt_metadata_free(md); /* the call keeps its own copy */
  /* a message, so initial metadata comes as headers, not trailers-only */
  bt_client_call_send_bytes(c, (const uint8_t *)"x", 1);
  bt_client_call_close_send(c);
  wait_done(&a, &r);
  assert_int_equal(r.code, BT_GRPC_OK);
  /* The caller's user-agent goes in front of ours, as gRPC does. */
  assert_string_equal(r.header_echo, "my-app/1.0 grpc-c-baton/0.1");
  client_close(&a);
}

static void test_rpc_unknown_method_is_unimplemented(void **state) {
  async_client a;
  client_open(&a);
  result r = {0};
  bt_client_call *c =
      bt_channel_start_call(a.ch, "/test.Echo/Nope", NULL, NULL, &rcbs, &r);
  bt_client_call_close_send(c);
  wait_done(&a, &r);
  assert_int_equal(r.code, BT_GRPC_UNIMPLEMENTED);
  assert_non_null(strstr(r.message, "/test.Echo/Nope"));
  client_close(&a);
}

static void test_rpc_deadline_exceeded_both_sides(void **state) {
  async_client a;
  client_open(&a);
  int before = __atomic_load_n(&cancels, __ATOMIC_SEQ_CST);
  result r = {0};
  bt_call_opts opts = {.timeout_ms = 100};
  int64_t t0 = bt_now_ms();
  bt_client_call *c =
      bt_channel_start_call(a.ch, "/test.Echo/Hang", NULL, &opts, &rcbs, &r);
  bt_client_call_close_send(c);
  wait_done(&a, &r);
  int64_t took = bt_now_ms() - t0;
  assert_int_equal(r.code, BT_GRPC_DEADLINE_EXCEEDED);
  assert_true(took >= 95);
  assert_true(took < 1000);
  /* The server's handler learns of it too. */
  for (int i = 0;
       i < 200 && __atomic_load_n(&cancels, __ATOMIC_SEQ_CST) == before; i++)
    bt_loop_run_once(a.loop, 0), usleep(5000);
  assert_true(__atomic_load_n(&cancels, __ATOMIC_SEQ_CST) > before);
  client_close(&a);
}

static void test_rpc_client_cancel_reaches_handler(void **state) {
  async_client a;
  client_open(&a);
  int before = __atomic_load_n(&cancels, __ATOMIC_SEQ_CST);
  result r = {0};
  bt_client_call *c =
      bt_channel_start_call(a.ch, "/test.Echo/Hang", NULL, NULL, &rcbs, &r);
  bt_client_call_send_bytes(c, (const uint8_t *)"x", 1);
  for (int i = 0; i < 20; i++)
    bt_loop_run_once(a.loop, 0), usleep(2000);
  bt_client_call_cancel(c);
  wait_done(&a, &r);
  assert_int_equal(r.code, BT_GRPC_CANCELLED);
  for (int i = 0;
       i < 200 && __atomic_load_n(&cancels, __ATOMIC_SEQ_CST) == before; i++)
    bt_loop_run_once(a.loop, 0), usleep(5000);
  assert_true(__atomic_load_n(&cancels, __ATOMIC_SEQ_CST) > before);
  client_close(&a);
}

static void test_rpc_message_over_limit_is_resource_exhausted(void **state) {
  async_client a;
  client_open(&a);
  result r = {0};
  static uint8_t big[100 * 1024];
  bt_client_call *c =
      bt_channel_start_call(a.ch, "/test.Echo/Bidi", NULL, NULL, &rcbs, &r);
  bt_client_call_send_bytes(c, big, sizeof(big));
  bt_client_call_close_send(c);
  wait_done(&a, &r);
  assert_int_equal(r.code, BT_GRPC_RESOURCE_EXHAUSTED);
  client_close(&a);
}

static void test_rpc_many_concurrent_calls_one_connection(void **state) {
  async_client a;
  client_open(&a);
  enum { N = 300 };
  static result rs[N];
  memset(rs, 0, sizeof(rs));
  for (int i = 0; i < N; i++) {
    bt_client_call *c = bt_channel_start_call(a.ch, "/test.Echo/Bidi", NULL,
                                              NULL, &rcbs, &rs[i]);
    char b[16];
    int n = snprintf(b, sizeof(b), "m%d", i);
    bt_client_call_send_bytes(c, (const uint8_t *)b, (size_t)n);
    bt_client_call_close_send(c);
  }
  for (int i = 0; i < N; i++) {
    wait_done(&a, &rs[i]);
    char b[16];
    int n = snprintf(b, sizeof(b), "m%d", i);
    assert_int_equal(rs[i].code, BT_GRPC_OK);
    assert_int_equal(rs[i].got_len, (size_t)n);
    assert_memory_equal(rs[i].got, b, (size_t)n);
  }
  client_close(&a);
}

static void test_rpc_connection_refused_is_unavailable(void **state) {
  bt_loop *loop = bt_loop_new();
  bt_channel_opts o;
  bt_channel_opts_init(&o);
  o.host = "127.0.0.1";
  o.port = 1; /* nothing listens there */
  bt_channel *ch;
  assert_int_equal(bt_channel_new(loop, &o, &ch, NULL, 0), 0);
  result r = {0};
  bt_client_call *c =
      bt_channel_start_call(ch, "/test.Echo/Bidi", NULL, NULL, &rcbs, &r);
  bt_client_call_close_send(c);
  while (!r.done)
    bt_loop_run_once(loop, 1);
  assert_int_equal(r.code, BT_GRPC_UNAVAILABLE);
  bt_channel_free(ch);
  bt_loop_free(loop);
}

static void test_rpc_sync_channel_roundtrip(void **state) {
  bt_sync_channel *ch = channel();
  bt_sync_call *c = bt_sync_call_start(ch, "/test.Echo/Nope", NULL, NULL);
  bt_sync_call_close_send(c);
  const bt_status *st = bt_sync_call_status(c);
  assert_int_equal(st->code, BT_GRPC_UNIMPLEMENTED);
  bt_sync_call_free(c);
  bt_sync_channel_free(ch);
}

/* ---- errors come back as codes and sentences, never on stderr ---------- */

static void test_channel_new_refuses_zeroed_opts(void **state) {
  bt_loop *loop = bt_loop_new();
  bt_channel_opts zeroed = {.host = "127.0.0.1", .port = port};
  bt_channel *ch = (bt_channel *)&zeroed; /* must be reset to NULL */
  char err[256];
  assert_int_equal(bt_channel_new(loop, &zeroed, &ch, err, sizeof(err)),
                   BT_ERR_INVAL);
  assert_null(ch);
  assert_non_null(strstr(err, "bt_channel_opts_init"));
  bt_loop_free(loop);
}

static void test_channel_new_names_what_failed(void **state) {
  bt_loop *loop = bt_loop_new();
  bt_channel_opts o;
  bt_channel_opts_init(&o);
  bt_channel *ch;
  char err[256];
  assert_int_equal(bt_channel_new(loop, &o, &ch, err, sizeof(err)),
                   BT_ERR_INVAL); /* no host */
  assert_non_null(strstr(err, "host"));
  o.host = "127.0.0.1";
  o.port = port;
  o.use_tls = 1;
  o.ca_file = "/nonexistent/ca.pem";
  assert_int_equal(bt_channel_new(loop, &o, &ch, err, sizeof(err)), BT_ERR_TLS);
  assert_null(ch);
  assert_non_null(strstr(err, "/nonexistent/ca.pem"));
  o.use_tls = 0;
  o.host = "no-such-host.invalid";
  assert_int_equal(bt_channel_new(loop, &o, &ch, err, sizeof(err)),
                   BT_ERR_NOTFOUND);
  assert_non_null(strstr(err, "no-such-host.invalid"));
  bt_loop_free(loop);
}

static void keep_last(int level, const char *msg, void *ud) {
  snprintf(ud, 256, "%d %s", level, msg);
}

static void test_server_errors_go_to_the_logger(void **state) {
  bt_server_opts zeroed = {.workers = 1};
  assert_null(bt_server_new(&zeroed));
  bt_server *s = bt_server_new(NULL);
  char last[256] = "";
  bt_server_set_logger(s, keep_last, last);
  bt_tls_opts tls = {.cert_file = "/nonexistent/cert.pem",
                     .key_file = "/nonexistent/key.pem"};
  assert_int_equal(bt_server_listen(s, "127.0.0.1", 0, &tls), BT_ERR_TLS);
  assert_non_null(strstr(last, "0 listener 127.0.0.1:0: cannot load "
                               "certificate /nonexistent/cert.pem"));
  assert_int_equal(bt_server_listen(s, "no-such-host.invalid", 0, NULL),
                   BT_ERR_INVAL);
  assert_non_null(strstr(last, "no-such-host.invalid"));
  bt_server_free(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_rpc_bidi_echo_with_metadata),
      cmocka_unit_test(test_rpc_client_metadata_user_agent_and_reserved_keys),
      cmocka_unit_test(test_rpc_status_and_message),
      cmocka_unit_test(test_rpc_unknown_method_is_unimplemented),
      cmocka_unit_test(test_rpc_deadline_exceeded_both_sides),
      cmocka_unit_test(test_rpc_client_cancel_reaches_handler),
      cmocka_unit_test(test_rpc_message_over_limit_is_resource_exhausted),
      cmocka_unit_test(test_rpc_many_concurrent_calls_one_connection),
      cmocka_unit_test(test_rpc_connection_refused_is_unavailable),
      cmocka_unit_test(test_rpc_sync_channel_roundtrip),
      cmocka_unit_test(test_channel_new_refuses_zeroed_opts),
      cmocka_unit_test(test_channel_new_names_what_failed),
      cmocka_unit_test(test_server_errors_go_to_the_logger),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
