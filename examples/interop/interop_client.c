/* interop_client.c: baton-interop-client, gRPC's interop test client
 * (doc/interop-test-descriptions.md) written with the blocking API of the
 * stubs protoc-gen-baton generates, to test the runtime against stock gRPC
 * servers and baton-interop-server.
 *
 *   baton-interop-client --server_host=H --server_port=N
 *       --test_case=NAME[,NAME...]|all [--use_tls=true [--ca=FILE]
 *       [--server_host_override=NAME] [--cert=FILE --key=FILE]]
 *       [--rpc_timeout=SECONDS] [--sizes=N[,N...]]
 *
 * Prints "PASS name" or "FAIL name: reason" per case and exits 0 only when
 * every requested case passed (2 for bad flags). Each case checks every
 * assertion the descriptions list, payload contents included.
 *
 * message_sizes is Baton's own case, not one of gRPC's, and is left out of
 * "all": the four call kinds at every size of --sizes (tests/e2e/
 * message_sizes.py runs it against stock servers). --rpc_timeout is the
 * deadline of every call but timeout_on_sleeping_server's (default 20 s). */
#include <baton/baton.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grpc/testing/test.baton.h"

#define ECHO_INITIAL_KEY "x-grpc-test-echo-initial"
#define ECHO_INITIAL_VALUE "test_initial_metadata_value"
#define ECHO_TRAILING_KEY "x-grpc-test-echo-trailing-bin"
static const uint8_t echo_trailing_value[] = {0xab, 0xab, 0xab};

/* Every call but timeout_on_sleeping_server's gets this deadline, so a
 * misbehaving server fails a case instead of hanging the run. */
#define CALL_DEADLINE_MS (20 * 1000LL)
static int64_t call_deadline_ms = CALL_DEADLINE_MS; /* --rpc_timeout */

#define WHY_LEN 512
/* In a case: unless cond, record the reason and go to the case's cleanup. */
#define CHECK(cond, ...)                                                       \
  do {                                                                         \
    if (!(cond)) {                                                             \
      snprintf(why, WHY_LEN, __VA_ARGS__);                                     \
      goto out;                                                                \
    }                                                                          \
  } while (0)

typedef Grpc__Testing__StreamingOutputCallRequest output_req;
typedef Grpc__Testing__StreamingOutputCallResponse output_resp;

/* ---- helpers --------------------------------------------------------------
 */

static bt_call_opts default_opts(void) {
  bt_call_opts o = {0};
  o.timeout_ms = call_deadline_ms;
  return o;
}

/* A payload of n zero bytes; free with payload_clear. */
static void payload_init(Grpc__Testing__Payload *p, size_t n) {
  grpc__testing__payload__init(p);
  p->body.len = n;
  p->body.data = n ? bt_calloc(1, n) : NULL;
}

static void payload_clear(Grpc__Testing__Payload *p) {
  bt_free(p->body.data);
  p->body.data = NULL;
}

/* NULL when the payload is n zero bytes, else what is wrong with it. */
static const char *payload_problem(const Grpc__Testing__Payload *p, size_t n) {
  static _Thread_local char buf[96];
  size_t len = p ? p->body.len : 0;
  if (len != n) {
    snprintf(buf, sizeof buf, "payload of %zu bytes, want %zu", len, n);
    return buf;
  }
  for (size_t i = 0; i < len; i++)
    if (p->body.data[i] != 0)
      return "payload bytes are not all zero";
  return NULL;
}

static void free_msg(void *msg) {
  if (msg)
    protobuf_c_message_free_unpacked(msg, NULL);
}

/* One ResponseParameters entry and a request payload, as ping_pong and the
 * cancel/metadata cases send. Free with output_req_clear. */
typedef struct one_output_req {
  output_req req;
  Grpc__Testing__ResponseParameters param;
  Grpc__Testing__ResponseParameters *params[1];
  Grpc__Testing__Payload payload;
} one_output_req;

static void output_req_init(one_output_req *r, int32_t response_size,
                            size_t payload_size) {
  grpc__testing__streaming_output_call_request__init(&r->req);
  grpc__testing__response_parameters__init(&r->param);
  r->param.size = response_size;
  r->params[0] = &r->param;
  if (response_size >= 0) {
    r->req.n_response_parameters = 1;
    r->req.response_parameters = r->params;
  }
  payload_init(&r->payload, payload_size);
  if (payload_size)
    r->req.payload = &r->payload;
}

static void output_req_clear(one_output_req *r) {
  payload_clear(&r->payload);
}

/* Reads every remaining response; returns how many came, or a BT_ERR_*. */
static int drain(bt_sync_call *call) {
  int n = 0, rv;
  output_resp *resp;
  while ((rv = grpc__testing__test_service__full_duplex_call__recv(
              call, &resp)) == 1) {
    free_msg(resp);
    n++;
  }
  return rv < 0 ? rv : n;
}

/* NULL when call echoed the test metadata (initial and trailing). */
static const char *echo_problem(bt_sync_call *call) {
  size_t len = 0;
  const bt_metadata *initial = bt_sync_call_initial_metadata(call);
  const uint8_t *v =
      initial ? bt_metadata_get(initial, ECHO_INITIAL_KEY, &len) : NULL;
  if (!v || len != strlen(ECHO_INITIAL_VALUE) ||
      memcmp(v, ECHO_INITIAL_VALUE, len) != 0)
    return "initial metadata " ECHO_INITIAL_KEY " missing or different";
  const bt_status *st = bt_sync_call_status(call);
  v = bt_metadata_get(st->trailers, ECHO_TRAILING_KEY, &len);
  if (!v || len != sizeof echo_trailing_value ||
      memcmp(v, echo_trailing_value, len) != 0)
    return "trailing metadata " ECHO_TRAILING_KEY " missing or different";
  return NULL;
}

/* ---- the cases ------------------------------------------------------------
 */

static int empty_unary(bt_sync_channel *ch, char *why) {
  Grpc__Testing__Empty req = GRPC__TESTING__EMPTY__INIT;
  Grpc__Testing__Empty *resp = NULL;
  char *message = NULL;
  bt_call_opts opts = default_opts();
  int rv = -1;
  int code = grpc__testing__test_service__empty_call_sync(ch, &req, &opts,
                                                          &resp, &message);
  CHECK(code == BT_GRPC_OK, "status %s: %s", bt_grpc_code_name(code), message);
  CHECK(resp != NULL, "no response message");
  rv = 0;
out:
  free_msg(resp);
  bt_free(message);
  return rv;
}

static int large_unary(bt_sync_channel *ch, char *why) {
  Grpc__Testing__SimpleRequest req = GRPC__TESTING__SIMPLE_REQUEST__INIT;
  Grpc__Testing__Payload payload;
  Grpc__Testing__SimpleResponse *resp = NULL;
  char *message = NULL;
  bt_call_opts opts = default_opts();
  const char *problem;
  int rv = -1;
  payload_init(&payload, 271828);
  req.response_size = 314159;
  req.payload = &payload;
  int code = grpc__testing__test_service__unary_call_sync(ch, &req, &opts,
                                                          &resp, &message);
  CHECK(code == BT_GRPC_OK, "status %s: %s", bt_grpc_code_name(code), message);
  CHECK(resp != NULL, "no response message");
  CHECK(!(problem = payload_problem(resp->payload, 314159)), "%s", problem);
  rv = 0;
out:
  payload_clear(&payload);
  free_msg(resp);
  bt_free(message);
  return rv;
}

static int client_streaming(bt_sync_channel *ch, char *why) {
  static const size_t sizes[] = {27182, 8, 1828, 45904};
  bt_call_opts opts = default_opts();
  Grpc__Testing__StreamingInputCallResponse *resp = NULL;
  int rv = -1, n;
  bt_sync_call *call =
      grpc__testing__test_service__streaming_input_call_sync(ch, &opts);
  CHECK(call != NULL, "could not start the call");
  for (size_t i = 0; i < 4; i++) {
    Grpc__Testing__StreamingInputCallRequest req =
        GRPC__TESTING__STREAMING_INPUT_CALL_REQUEST__INIT;
    Grpc__Testing__Payload payload;
    payload_init(&payload, sizes[i]);
    req.payload = &payload;
    n = bt_sync_call_send(call, &req.base);
    payload_clear(&payload);
    CHECK(n == 0, "sending request %zu: %s", i + 1, bt_strerror(n));
  }
  n = bt_sync_call_close_send(call);
  CHECK(n == 0, "half-close: %s", bt_strerror(n));
  n = grpc__testing__test_service__streaming_input_call__recv(call, &resp);
  const bt_status *st = bt_sync_call_status(call);
  CHECK(st->code == BT_GRPC_OK, "status %s: %s", bt_grpc_code_name(st->code),
        st->message);
  CHECK(n == 1, "no response message (%s)", bt_strerror(n));
  CHECK(resp->aggregated_payload_size == 74922,
        "aggregated_payload_size %d, want 74922",
        (int)resp->aggregated_payload_size);
  rv = 0;
out:
  free_msg(resp);
  bt_sync_call_free(call);
  return rv;
}

static int server_streaming(bt_sync_channel *ch, char *why) {
  static const int32_t sizes[] = {31415, 9, 2653, 58979};
  output_req req = GRPC__TESTING__STREAMING_OUTPUT_CALL_REQUEST__INIT;
  Grpc__Testing__ResponseParameters params[4], *pp[4];
  bt_call_opts opts = default_opts();
  output_resp *resp = NULL;
  const char *problem;
  int rv = -1, n, count = 0;
  for (int i = 0; i < 4; i++) {
    grpc__testing__response_parameters__init(&params[i]);
    params[i].size = sizes[i];
    pp[i] = &params[i];
  }
  req.n_response_parameters = 4;
  req.response_parameters = pp;
  bt_sync_call *call =
      grpc__testing__test_service__streaming_output_call_sync(ch, &req, &opts);
  CHECK(call != NULL, "could not start the call");
  while ((n = grpc__testing__test_service__streaming_output_call__recv(
              call, &resp)) == 1) {
    CHECK(count < 4, "more than 4 responses");
    problem = payload_problem(resp->payload, (size_t)sizes[count]);
    CHECK(!problem, "response %d: %s", count + 1, problem);
    free_msg(resp);
    resp = NULL;
    count++;
  }
  const bt_status *st = bt_sync_call_status(call);
  CHECK(st->code == BT_GRPC_OK, "status %s: %s", bt_grpc_code_name(st->code),
        st->message);
  CHECK(n == 0, "reading responses: %s", bt_strerror(n));
  CHECK(count == 4, "%d responses, want 4", count);
  rv = 0;
out:
  free_msg(resp);
  bt_sync_call_free(call);
  return rv;
}

static int ping_pong(bt_sync_channel *ch, char *why) {
  static const int32_t response_sizes[] = {31415, 9, 2653, 58979};
  static const size_t payload_sizes[] = {27182, 8, 1828, 45904};
  bt_call_opts opts = default_opts();
  output_resp *resp = NULL;
  const char *problem;
  int rv = -1, n;
  bt_sync_call *call =
      grpc__testing__test_service__full_duplex_call_sync(ch, &opts);
  CHECK(call != NULL, "could not start the call");
  for (int i = 0; i < 4; i++) {
    one_output_req r;
    output_req_init(&r, response_sizes[i], payload_sizes[i]);
    n = bt_sync_call_send(call, &r.req.base);
    output_req_clear(&r);
    CHECK(n == 0, "sending request %d: %s", i + 1, bt_strerror(n));
    n = grpc__testing__test_service__full_duplex_call__recv(call, &resp);
    CHECK(n == 1, "no response %d (%s; status %s: %s)", i + 1, bt_strerror(n),
          bt_grpc_code_name(bt_sync_call_status(call)->code),
          bt_sync_call_status(call)->message);
    problem = payload_problem(resp->payload, (size_t)response_sizes[i]);
    CHECK(!problem, "response %d: %s", i + 1, problem);
    free_msg(resp);
    resp = NULL;
  }
  n = bt_sync_call_close_send(call);
  CHECK(n == 0, "half-close: %s", bt_strerror(n));
  n = drain(call);
  const bt_status *st = bt_sync_call_status(call);
  CHECK(st->code == BT_GRPC_OK, "status %s: %s", bt_grpc_code_name(st->code),
        st->message);
  CHECK(n == 0, "%d responses after the fourth (%s)", n,
        n < 0 ? bt_strerror(n) : "want none");
  rv = 0;
out:
  free_msg(resp);
  bt_sync_call_free(call);
  return rv;
}

static int empty_stream(bt_sync_channel *ch, char *why) {
  bt_call_opts opts = default_opts();
  int rv = -1, n;
  bt_sync_call *call =
      grpc__testing__test_service__full_duplex_call_sync(ch, &opts);
  CHECK(call != NULL, "could not start the call");
  n = bt_sync_call_close_send(call);
  CHECK(n == 0, "half-close: %s", bt_strerror(n));
  n = drain(call);
  const bt_status *st = bt_sync_call_status(call);
  CHECK(st->code == BT_GRPC_OK, "status %s: %s", bt_grpc_code_name(st->code),
        st->message);
  CHECK(n == 0, "%d responses, want none", n);
  rv = 0;
out:
  bt_sync_call_free(call);
  return rv;
}

static int custom_metadata(bt_sync_channel *ch, char *why) {
  bt_metadata *md = bt_metadata_new(NULL);
  bt_call_opts opts = default_opts();
  Grpc__Testing__SimpleRequest req = GRPC__TESTING__SIMPLE_REQUEST__INIT;
  Grpc__Testing__Payload payload;
  Grpc__Testing__SimpleResponse *resp = NULL;
  output_resp *oresp = NULL;
  one_output_req r;
  bt_sync_call *unary = NULL, *duplex = NULL;
  const char *problem;
  int rv = -1, n;
  payload_init(&payload, 271828);
  output_req_init(&r, 314159, 271828);
  bt_metadata_add_str(md, ECHO_INITIAL_KEY, ECHO_INITIAL_VALUE);
  bt_metadata_add(md, ECHO_TRAILING_KEY, strlen(ECHO_TRAILING_KEY),
                  echo_trailing_value, sizeof echo_trailing_value);
  opts.metadata = md;

  /* UnaryCall through the generic blocking call: the typed _sync shorthand
   * returns no metadata. */
  req.response_size = 314159;
  req.payload = &payload;
  unary =
      bt_sync_call_start(ch, GRPC__TESTING__TEST_SERVICE__UNARY_CALL__PATH,
                         &grpc__testing__simple_response__descriptor, &opts);
  CHECK(unary != NULL, "could not start UnaryCall");
  bt_sync_call_send(unary, &req.base);
  bt_sync_call_close_send(unary);
  ProtobufCMessage *msg = NULL;
  n = bt_sync_call_recv(unary, &msg);
  resp = (Grpc__Testing__SimpleResponse *)msg;
  const bt_status *st = bt_sync_call_status(unary);
  CHECK(st->code == BT_GRPC_OK, "UnaryCall: status %s: %s",
        bt_grpc_code_name(st->code), st->message);
  CHECK(n == 1, "UnaryCall: no response (%s)", bt_strerror(n));
  CHECK(!(problem = payload_problem(resp->payload, 314159)), "UnaryCall: %s",
        problem);
  CHECK(!(problem = echo_problem(unary)), "UnaryCall: %s", problem);

  duplex = grpc__testing__test_service__full_duplex_call_sync(ch, &opts);
  CHECK(duplex != NULL, "could not start FullDuplexCall");
  n = bt_sync_call_send(duplex, &r.req.base);
  CHECK(n == 0, "FullDuplexCall: sending: %s", bt_strerror(n));
  bt_sync_call_close_send(duplex);
  n = grpc__testing__test_service__full_duplex_call__recv(duplex, &oresp);
  CHECK(n == 1, "FullDuplexCall: no response (%s)", bt_strerror(n));
  CHECK(!(problem = payload_problem(oresp->payload, 314159)),
        "FullDuplexCall: %s", problem);
  n = drain(duplex);
  st = bt_sync_call_status(duplex);
  CHECK(st->code == BT_GRPC_OK, "FullDuplexCall: status %s: %s",
        bt_grpc_code_name(st->code), st->message);
  CHECK(n == 0, "FullDuplexCall: %d responses too many", n);
  CHECK(!(problem = echo_problem(duplex)), "FullDuplexCall: %s", problem);
  rv = 0;
out:
  free_msg(resp);
  free_msg(oresp);
  bt_sync_call_free(unary);
  bt_sync_call_free(duplex);
  output_req_clear(&r);
  payload_clear(&payload);
  bt_metadata_free(md);
  return rv;
}

/* UnaryCall asking for (code, message); NULL when exactly that came back. */
static int unary_status_is(bt_sync_channel *ch, int want_code,
                           const char *want_message, char *why) {
  Grpc__Testing__SimpleRequest req = GRPC__TESTING__SIMPLE_REQUEST__INIT;
  Grpc__Testing__EchoStatus status = GRPC__TESTING__ECHO_STATUS__INIT;
  Grpc__Testing__SimpleResponse *resp = NULL;
  char *message = NULL;
  bt_call_opts opts = default_opts();
  int rv = -1;
  status.code = want_code;
  status.message = (char *)want_message;
  req.response_status = &status;
  int code = grpc__testing__test_service__unary_call_sync(ch, &req, &opts,
                                                          &resp, &message);
  CHECK(code == want_code, "UnaryCall: status %s (%s), want %s",
        bt_grpc_code_name(code), message, bt_grpc_code_name(want_code));
  CHECK(message && strcmp(message, want_message) == 0,
        "UnaryCall: message \"%s\", want \"%s\"", message ? message : "(none)",
        want_message);
  rv = 0;
out:
  free_msg(resp);
  bt_free(message);
  return rv;
}

static int status_code_and_message(bt_sync_channel *ch, char *why) {
  static const char text[] = "test status message";
  Grpc__Testing__EchoStatus status = GRPC__TESTING__ECHO_STATUS__INIT;
  output_req req = GRPC__TESTING__STREAMING_OUTPUT_CALL_REQUEST__INIT;
  bt_call_opts opts = default_opts();
  bt_sync_call *call = NULL;
  int rv = -1, n;
  if (unary_status_is(ch, BT_GRPC_UNKNOWN, text, why) < 0)
    return -1;

  status.code = BT_GRPC_UNKNOWN;
  status.message = (char *)text;
  req.response_status = &status;
  call = grpc__testing__test_service__full_duplex_call_sync(ch, &opts);
  CHECK(call != NULL, "could not start FullDuplexCall");
  n = bt_sync_call_send(call, &req.base);
  CHECK(n == 0, "FullDuplexCall: sending: %s", bt_strerror(n));
  bt_sync_call_close_send(call);
  drain(call);
  const bt_status *st = bt_sync_call_status(call);
  CHECK(st->code == BT_GRPC_UNKNOWN, "FullDuplexCall: status %s (%s), want %s",
        bt_grpc_code_name(st->code), st->message,
        bt_grpc_code_name(BT_GRPC_UNKNOWN));
  CHECK(strcmp(st->message, text) == 0,
        "FullDuplexCall: message \"%s\", want \"%s\"", st->message, text);
  rv = 0;
out:
  bt_sync_call_free(call);
  return rv;
}

static int special_status_message(bt_sync_channel *ch, char *why) {
  return unary_status_is(
      ch, BT_GRPC_UNKNOWN,
      "\t\ntest with whitespace\r\nand Unicode BMP \xe2\x98\xba"
      " and non-BMP \xf0\x9f\x98\x88\t\n",
      why);
}

static int unimplemented_method(bt_sync_channel *ch, char *why) {
  Grpc__Testing__Empty req = GRPC__TESTING__EMPTY__INIT;
  Grpc__Testing__Empty *resp = NULL;
  char *message = NULL;
  bt_call_opts opts = default_opts();
  int rv = -1;
  int code = grpc__testing__test_service__unimplemented_call_sync(
      ch, &req, &opts, &resp, &message);
  CHECK(code == BT_GRPC_UNIMPLEMENTED, "status %s (%s), want UNIMPLEMENTED",
        bt_grpc_code_name(code), message);
  rv = 0;
out:
  free_msg(resp);
  bt_free(message);
  return rv;
}

static int unimplemented_service(bt_sync_channel *ch, char *why) {
  Grpc__Testing__Empty req = GRPC__TESTING__EMPTY__INIT;
  Grpc__Testing__Empty *resp = NULL;
  char *message = NULL;
  bt_call_opts opts = default_opts();
  int rv = -1;
  int code = grpc__testing__unimplemented_service__unimplemented_call_sync(
      ch, &req, &opts, &resp, &message);
  CHECK(code == BT_GRPC_UNIMPLEMENTED, "status %s (%s), want UNIMPLEMENTED",
        bt_grpc_code_name(code), message);
  rv = 0;
out:
  free_msg(resp);
  bt_free(message);
  return rv;
}

static int cancel_after_begin(bt_sync_channel *ch, char *why) {
  bt_call_opts opts = default_opts();
  int rv = -1;
  bt_sync_call *call =
      grpc__testing__test_service__streaming_input_call_sync(ch, &opts);
  CHECK(call != NULL, "could not start the call");
  bt_sync_call_cancel(call);
  const bt_status *st = bt_sync_call_status(call);
  CHECK(st->code == BT_GRPC_CANCELLED, "status %s (%s), want CANCELLED",
        bt_grpc_code_name(st->code), st->message);
  rv = 0;
out:
  bt_sync_call_free(call);
  return rv;
}

static int cancel_after_first_response(bt_sync_channel *ch, char *why) {
  bt_call_opts opts = default_opts();
  output_resp *resp = NULL;
  one_output_req r;
  const char *problem;
  int rv = -1, n;
  output_req_init(&r, 31415, 27182);
  bt_sync_call *call =
      grpc__testing__test_service__full_duplex_call_sync(ch, &opts);
  CHECK(call != NULL, "could not start the call");
  n = bt_sync_call_send(call, &r.req.base);
  CHECK(n == 0, "sending: %s", bt_strerror(n));
  n = grpc__testing__test_service__full_duplex_call__recv(call, &resp);
  CHECK(n == 1, "no response (%s)", bt_strerror(n));
  CHECK(!(problem = payload_problem(resp->payload, 31415)), "%s", problem);
  bt_sync_call_cancel(call);
  const bt_status *st = bt_sync_call_status(call);
  CHECK(st->code == BT_GRPC_CANCELLED, "status %s (%s), want CANCELLED",
        bt_grpc_code_name(st->code), st->message);
  rv = 0;
out:
  free_msg(resp);
  output_req_clear(&r);
  bt_sync_call_free(call);
  return rv;
}

static int timeout_on_sleeping_server(bt_sync_channel *ch, char *why) {
  bt_call_opts opts = {0};
  one_output_req r;
  int rv = -1;
  opts.timeout_ms = 1;
  output_req_init(&r, -1, 27182);
  bt_sync_call *call =
      grpc__testing__test_service__full_duplex_call_sync(ch, &opts);
  CHECK(call != NULL, "could not start the call");
  /* The deadline may pass before the request is out; that is fine. */
  bt_sync_call_send(call, &r.req.base);
  drain(call);
  const bt_status *st = bt_sync_call_status(call);
  CHECK(st->code == BT_GRPC_DEADLINE_EXCEEDED,
        "status %s (%s), want DEADLINE_EXCEEDED", bt_grpc_code_name(st->code),
        st->message);
  rv = 0;
out:
  output_req_clear(&r);
  bt_sync_call_free(call);
  return rv;
}

/* ---- message_sizes --------------------------------------------------------
 *
 * For every size S of --sizes, the four call kinds with messages of S bytes
 * both ways, one cell each:
 *   UnaryCall/S            a request and a response of S bytes
 *   StreamingOutputCall/S  three responses of S bytes
 *   StreamingInputCall/S   three requests of S bytes
 *   FullDuplexCall/S       two ping-pong exchanges of S bytes each way
 * S is the serialized message, which is what gRPC's default 4 MiB receive
 * limit counts (not the 5-byte length prefix), so 4 MiB - 64 fits every
 * stock peer. Requests carry the payload pattern (PATTERN_KEY; the e2e stock
 * servers check it byte for byte), responses must be S-sized and all zeros.
 * Prints "PASS Kind/S (ms)" or "FAIL Kind/S: why" per cell; after a failed
 * cell the next starts on a fresh channel, so a stalled connection fails
 * only the cell it stalled in. */

/* 1 KiB, 16 KiB, 64 KiB - 1, 64 KiB + 1, 1 MiB, 3 MiB and 4 MiB - 64. */
static const size_t default_sizes[] = {1024,    16384,   65535,  65537,
                                       1048576, 3145728, 4194240};
#define MAX_SIZES 32
static size_t sizes[MAX_SIZES];      /* --sizes */
static size_t n_sizes;               /* 0: default_sizes */
static bt_channel_opts sizes_chopts; /* for the fresh channels */

/* The client promises that byte i of the payload of its k-th request in a
 * call (k from 0) is (i + k) % 251 (tests/e2e/harness.py PATTERN_KEY): 251
 * is prime, so no frame or buffer size is a multiple of it, and a lost,
 * repeated or reordered chunk breaks the pattern. */
#define PATTERN_KEY "x-baton-payload-pattern"
#define PATTERN_VALUE "mod251"

static void pattern_payload_init(Grpc__Testing__Payload *p, size_t n,
                                 size_t k) {
  grpc__testing__payload__init(p);
  p->body.len = n;
  p->body.data = n ? bt_malloc(n) : NULL;
  for (size_t i = 0; i < n; i++)
    p->body.data[i] = (uint8_t)((i + k) % 251);
}

/* Serialized lengths from the proto3 wire format: every field number here
 * is below 16, so each tag is one byte; a length-delimited field is tag +
 * varint(length) + content; an int32 is tag + varint(value), absent when 0
 * (response_type and Payload.type are COMPRESSABLE = 0: never sent). */
static size_t varint_len(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    n++;
  }
  return n;
}

static size_t field_len(size_t n) {
  return 1 + varint_len(n) + n;
}

static size_t int_field_len(uint64_t v) {
  return v ? 1 + varint_len(v) : 0;
}

/* Payload { body = n bytes } as a field of its parent. */
static size_t payload_field_len(size_t n) {
  return field_len(n ? field_len(n) : 0);
}

/* A message with a payload body of n bytes and response size r. */
typedef size_t (*msg_len_fn)(size_t n, size_t r);

/* SimpleResponse, StreamingOutputCallResponse, StreamingInputCallRequest. */
static size_t payload_only_len(size_t n, size_t r) {
  return payload_field_len(n);
}

/* SimpleRequest { response_size = r, payload }. */
static size_t simple_request_len(size_t n, size_t r) {
  return int_field_len(r) + payload_field_len(n);
}

/* StreamingOutputCallRequest { response_parameters = [{size = r}],
 * payload }. */
static size_t output_request_len(size_t n, size_t r) {
  return field_len(int_field_len(r)) + payload_field_len(n);
}

/* The largest body n with len(n, r) <= target: the message is exactly
 * target bytes, or a byte or two under where a varint grows. */
static size_t fit(msg_len_fn len, size_t r, size_t target) {
  size_t n = target > 16 ? target - 16 : 0;
  while (len(n + 1, r) <= target)
    n++;
  while (n > 0 && len(n, r) > target)
    n--;
  return n;
}

/* NULL when msg packs to want bytes, at most size; else the problem. */
static const char *packed_problem(const ProtobufCMessage *msg, size_t want,
                                  size_t size) {
  static _Thread_local char buf[128];
  size_t got = protobuf_c_message_get_packed_size(msg);
  if (got == want && got <= size)
    return NULL;
  snprintf(buf, sizeof buf,
           "request packs to %zu bytes, sized for %zu (<= %zu)", got, want,
           size);
  return buf;
}

static bt_call_opts pattern_opts(bt_metadata *md) {
  bt_call_opts opts = default_opts();
  bt_metadata_add_str(md, PATTERN_KEY, PATTERN_VALUE);
  opts.metadata = md;
  return opts;
}

static int sizes_unary(bt_sync_channel *ch, size_t size, char *why) {
  Grpc__Testing__SimpleRequest req = GRPC__TESTING__SIMPLE_REQUEST__INIT;
  Grpc__Testing__Payload payload;
  Grpc__Testing__SimpleResponse *resp = NULL;
  bt_metadata *md = bt_metadata_new(NULL);
  bt_call_opts opts = pattern_opts(md);
  char *message = NULL;
  const char *problem;
  int rv = -1;
  size_t r = fit(payload_only_len, 0, size);
  size_t n = fit(simple_request_len, r, size);
  pattern_payload_init(&payload, n, 0);
  req.response_size = (int32_t)r;
  req.payload = &payload;
  problem = packed_problem(&req.base, simple_request_len(n, r), size);
  CHECK(!problem, "%s", problem);
  int code = grpc__testing__test_service__unary_call_sync(ch, &req, &opts,
                                                          &resp, &message);
  CHECK(code == BT_GRPC_OK, "status %s: %s", bt_grpc_code_name(code), message);
  CHECK(resp != NULL, "no response message");
  CHECK(!(problem = payload_problem(resp->payload, r)), "response: %s",
        problem);
  rv = 0;
out:
  payload_clear(&payload);
  free_msg(resp);
  bt_free(message);
  bt_metadata_free(md);
  return rv;
}

static int sizes_output(bt_sync_channel *ch, size_t size, char *why) {
  output_req req = GRPC__TESTING__STREAMING_OUTPUT_CALL_REQUEST__INIT;
  Grpc__Testing__ResponseParameters params[3], *pp[3];
  bt_metadata *md = bt_metadata_new(NULL);
  bt_call_opts opts = pattern_opts(md);
  output_resp *resp = NULL;
  const char *problem;
  int rv = -1, n, count = 0;
  size_t r = fit(payload_only_len, 0, size);
  for (int i = 0; i < 3; i++) {
    grpc__testing__response_parameters__init(&params[i]);
    params[i].size = (int32_t)r;
    pp[i] = &params[i];
  }
  req.n_response_parameters = 3;
  req.response_parameters = pp;
  bt_sync_call *call =
      grpc__testing__test_service__streaming_output_call_sync(ch, &req, &opts);
  CHECK(call != NULL, "could not start the call");
  while ((n = grpc__testing__test_service__streaming_output_call__recv(
              call, &resp)) == 1) {
    CHECK(count < 3, "more than 3 responses");
    problem = payload_problem(resp->payload, r);
    CHECK(!problem, "response %d: %s", count + 1, problem);
    free_msg(resp);
    resp = NULL;
    count++;
  }
  const bt_status *st = bt_sync_call_status(call);
  CHECK(st->code == BT_GRPC_OK, "status %s: %s (after %d responses)",
        bt_grpc_code_name(st->code), st->message, count);
  CHECK(n == 0, "reading responses: %s", bt_strerror(n));
  CHECK(count == 3, "%d responses, want 3", count);
  rv = 0;
out:
  free_msg(resp);
  bt_sync_call_free(call);
  bt_metadata_free(md);
  return rv;
}

static int sizes_input(bt_sync_channel *ch, size_t size, char *why) {
  bt_metadata *md = bt_metadata_new(NULL);
  bt_call_opts opts = pattern_opts(md);
  Grpc__Testing__StreamingInputCallResponse *resp = NULL;
  const char *problem;
  int rv = -1, n;
  size_t body = fit(payload_only_len, 0, size);
  bt_sync_call *call =
      grpc__testing__test_service__streaming_input_call_sync(ch, &opts);
  CHECK(call != NULL, "could not start the call");
  for (size_t k = 0; k < 3; k++) {
    Grpc__Testing__StreamingInputCallRequest req =
        GRPC__TESTING__STREAMING_INPUT_CALL_REQUEST__INIT;
    Grpc__Testing__Payload payload;
    pattern_payload_init(&payload, body, k);
    req.payload = &payload;
    problem = packed_problem(&req.base, payload_only_len(body, 0), size);
    n = problem ? 0 : bt_sync_call_send(call, &req.base);
    payload_clear(&payload);
    CHECK(!problem, "%s", problem);
    CHECK(n == 0, "sending request %zu: %s", k + 1, bt_strerror(n));
  }
  n = bt_sync_call_close_send(call);
  CHECK(n == 0, "half-close: %s", bt_strerror(n));
  n = grpc__testing__test_service__streaming_input_call__recv(call, &resp);
  const bt_status *st = bt_sync_call_status(call);
  CHECK(st->code == BT_GRPC_OK, "status %s: %s", bt_grpc_code_name(st->code),
        st->message);
  CHECK(n == 1, "no response message (%s)", bt_strerror(n));
  CHECK(resp->aggregated_payload_size == (int32_t)(3 * body),
        "aggregated_payload_size %d, want %zu",
        (int)resp->aggregated_payload_size, 3 * body);
  rv = 0;
out:
  free_msg(resp);
  bt_sync_call_free(call);
  bt_metadata_free(md);
  return rv;
}

static int sizes_duplex(bt_sync_channel *ch, size_t size, char *why) {
  bt_metadata *md = bt_metadata_new(NULL);
  bt_call_opts opts = pattern_opts(md);
  output_resp *resp = NULL;
  const char *problem;
  int rv = -1, n;
  size_t r = fit(payload_only_len, 0, size);
  size_t body = fit(output_request_len, r, size);
  bt_sync_call *call =
      grpc__testing__test_service__full_duplex_call_sync(ch, &opts);
  CHECK(call != NULL, "could not start the call");
  for (size_t k = 0; k < 2; k++) {
    one_output_req req;
    output_req_init(&req, (int32_t)r, 0);
    pattern_payload_init(&req.payload, body, k);
    req.req.payload = &req.payload;
    problem = packed_problem(&req.req.base, output_request_len(body, r), size);
    n = problem ? 0 : bt_sync_call_send(call, &req.req.base);
    output_req_clear(&req);
    CHECK(!problem, "%s", problem);
    CHECK(n == 0, "sending request %zu: %s", k + 1, bt_strerror(n));
    n = grpc__testing__test_service__full_duplex_call__recv(call, &resp);
    CHECK(n == 1, "no response %zu (%s; status %s: %s)", k + 1, bt_strerror(n),
          bt_grpc_code_name(bt_sync_call_status(call)->code),
          bt_sync_call_status(call)->message);
    problem = payload_problem(resp->payload, r);
    CHECK(!problem, "response %zu: %s", k + 1, problem);
    free_msg(resp);
    resp = NULL;
  }
  n = bt_sync_call_close_send(call);
  CHECK(n == 0, "half-close: %s", bt_strerror(n));
  n = drain(call);
  const bt_status *st = bt_sync_call_status(call);
  CHECK(st->code == BT_GRPC_OK, "status %s: %s", bt_grpc_code_name(st->code),
        st->message);
  CHECK(n == 0, "%d responses after the second (%s)", n,
        n < 0 ? bt_strerror(n) : "want none");
  rv = 0;
out:
  free_msg(resp);
  bt_sync_call_free(call);
  bt_metadata_free(md);
  return rv;
}

typedef int (*size_cell_fn)(bt_sync_channel *ch, size_t size, char *why);

static int message_sizes(bt_sync_channel *ch, char *why) {
  static const struct {
    const char *kind;
    size_cell_fn run;
  } kinds[] = {
      {"UnaryCall", sizes_unary},
      {"StreamingOutputCall", sizes_output},
      {"StreamingInputCall", sizes_input},
      {"FullDuplexCall", sizes_duplex},
  };
  const size_t *list = n_sizes ? sizes : default_sizes;
  size_t n_list =
      n_sizes ? n_sizes : sizeof default_sizes / sizeof default_sizes[0];
  bt_sync_channel *own = NULL; /* the fresh channel after a failure */
  int failed = 0, cells = 0;
  for (size_t i = 0; i < n_list; i++) {
    for (size_t j = 0; j < sizeof kinds / sizeof kinds[0]; j++) {
      char cell_why[WHY_LEN] = "";
      int64_t start = bt_now_ms();
      int rv = kinds[j].run(own ? own : ch, list[i], cell_why);
      long ms = (long)(bt_now_ms() - start);
      cells++;
      if (rv == 0) {
        printf("PASS %s/%zu (%ld ms)\n", kinds[j].kind, list[i], ms);
      } else {
        printf("FAIL %s/%zu: %s (after %ld ms)\n", kinds[j].kind, list[i],
               cell_why, ms);
        failed++;
        bt_sync_channel_free(own);
        bt_sync_channel_new(&sizes_chopts, &own, NULL, 0);
      }
      fflush(stdout);
    }
  }
  bt_sync_channel_free(own);
  CHECK(failed == 0, "%d of %d cells failed", failed, cells);
  return 0;
out:
  return -1;
}

typedef int (*case_fn)(bt_sync_channel *ch, char *why);

static const struct {
  const char *name;
  case_fn run;
  int not_in_all; /* run only when named */
} cases[] = {
    {"empty_unary", empty_unary},
    {"large_unary", large_unary},
    {"client_streaming", client_streaming},
    {"server_streaming", server_streaming},
    {"ping_pong", ping_pong},
    {"empty_stream", empty_stream},
    {"custom_metadata", custom_metadata},
    {"status_code_and_message", status_code_and_message},
    {"special_status_message", special_status_message},
    {"unimplemented_method", unimplemented_method},
    {"unimplemented_service", unimplemented_service},
    {"cancel_after_begin", cancel_after_begin},
    {"cancel_after_first_response", cancel_after_first_response},
    {"timeout_on_sleeping_server", timeout_on_sleeping_server},
    {"message_sizes", message_sizes, 1},
};
#define N_CASES (sizeof cases / sizeof cases[0])

/* ---- flags and main -------------------------------------------------------
 */

typedef struct client_flags {
  const char *host;
  int port;
  int use_tls;
  int use_test_ca;
  const char *ca;
  const char *host_override;
  const char *cert, *key;
  const char *test_case;
} client_flags;

static int parse_bool(const char *v, int *out) {
  if (!strcmp(v, "true") || !strcmp(v, "1")) {
    *out = 1;
    return 0;
  }
  if (!strcmp(v, "false") || !strcmp(v, "0")) {
    *out = 0;
    return 0;
  }
  return -1;
}

/* "--name=value" matching name: returns value, else NULL. */
static const char *flag_value(const char *arg, const char *name) {
  size_t n = strlen(name);
  if (strncmp(arg, "--", 2) != 0 || strncmp(arg + 2, name, n) != 0 ||
      arg[2 + n] != '=')
    return NULL;
  return arg + 3 + n;
}

static int usage(const char *bad) {
  fprintf(stderr,
          "baton-interop-client: bad flag %s\n"
          "usage: baton-interop-client --server_host=H --server_port=N "
          "--test_case=NAME[,NAME...]|all\n"
          "       [--use_tls=true [--ca=FILE] [--server_host_override=NAME] "
          "[--cert=FILE --key=FILE]]\n"
          "       [--rpc_timeout=SECONDS] [--sizes=N[,N...]] (message_sizes; "
          "each N from 16 to 4194304)\n"
          "cases:",
          bad);
  for (size_t i = 0; i < N_CASES; i++)
    fprintf(stderr, " %s", cases[i].name);
  fputc('\n', stderr);
  return 2;
}

/* --sizes=N[,N...]: message_sizes' sizes, each from 16 bytes to 4 MiB. */
static int parse_sizes(const char *v) {
  n_sizes = 0;
  for (const char *p = v;;) {
    char *end;
    long long n = strtoll(p, &end, 10);
    if (end == p || n < 16 || n > 4194304 || n_sizes == MAX_SIZES ||
        (*end != ',' && *end != '\0'))
      return -1;
    sizes[n_sizes++] = (size_t)n;
    if (*end == '\0')
      return 0;
    p = end + 1;
  }
}

static int parse_flags(int argc, char **argv, client_flags *f) {
  memset(f, 0, sizeof *f);
  f->host = "localhost";
  f->port = -1;
  f->test_case = "all";
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v;
    char *end;
    if ((v = flag_value(a, "server_host"))) {
      f->host = v;
    } else if ((v = flag_value(a, "server_port"))) {
      long p = strtol(v, &end, 10);
      if (*v == '\0' || *end != '\0' || p <= 0 || p > 65535)
        return usage(a);
      f->port = (int)p;
    } else if ((v = flag_value(a, "test_case"))) {
      f->test_case = v;
    } else if ((v = flag_value(a, "use_tls"))) {
      if (parse_bool(v, &f->use_tls) < 0)
        return usage(a);
    } else if ((v = flag_value(a, "use_test_ca"))) {
      if (parse_bool(v, &f->use_test_ca) < 0)
        return usage(a);
    } else if ((v = flag_value(a, "ca"))) {
      f->ca = v;
    } else if ((v = flag_value(a, "server_host_override"))) {
      f->host_override = *v ? v : NULL;
    } else if ((v = flag_value(a, "cert"))) {
      f->cert = v;
    } else if ((v = flag_value(a, "key"))) {
      f->key = v;
    } else if ((v = flag_value(a, "rpc_timeout"))) {
      double t = strtod(v, &end);
      if (*v == '\0' || *end != '\0' || !(t > 0 && t <= 3600))
        return usage(a);
      call_deadline_ms = t > 0 && t < 1e-3 ? 1 : (int64_t)(t * 1e3);
    } else if ((v = flag_value(a, "sizes"))) {
      if (parse_sizes(v) < 0)
        return usage(a);
    } else {
      return usage(a);
    }
  }
  if (f->port < 0)
    return usage("(--server_port is required)");
  if (!f->cert != !f->key)
    return usage("(--cert and --key go together)");
  if (f->use_test_ca && !f->ca)
    f->ca = "certs/out/ca.crt"; /* the dev CA certs/make-certs.sh makes */
  return 0;
}

static int case_index(const char *name, size_t len) {
  for (size_t i = 0; i < N_CASES; i++)
    if (strlen(cases[i].name) == len && !strncmp(cases[i].name, name, len))
      return (int)i;
  return -1;
}

/* Runs the cases named in list ("all" or comma-separated names). Returns
 * the number that failed, or -1 for an unknown name. */
static int run_cases(bt_sync_channel *ch, const char *list) {
  int selected[N_CASES], n = 0, failed = 0;
  if (!strcmp(list, "all")) {
    for (size_t i = 0; i < N_CASES; i++)
      if (!cases[i].not_in_all)
        selected[n++] = (int)i;
  } else {
    for (const char *p = list; *p;) {
      size_t len = strcspn(p, ",");
      int i = case_index(p, len);
      if (i < 0 || n == (int)N_CASES) {
        fprintf(stderr, "baton-interop-client: unknown test case %.*s\n",
                (int)len, p);
        return -1;
      }
      selected[n++] = i;
      p += len + (p[len] == ',');
    }
  }
  for (int k = 0; k < n; k++) {
    char why[WHY_LEN] = "";
    if (cases[selected[k]].run(ch, why) == 0) {
      printf("PASS %s\n", cases[selected[k]].name);
    } else {
      printf("FAIL %s: %s\n", cases[selected[k]].name, why);
      failed++;
    }
    fflush(stdout);
  }
  return failed;
}

int main(int argc, char **argv) {
  client_flags f;
  int rv = parse_flags(argc, argv, &f);
  if (rv != 0)
    return rv;

  bt_channel_opts o;
  bt_channel_opts_init(&o);
  o.host = f.host;
  o.port = f.port;
  o.use_tls = f.use_tls;
  o.ca_file = f.ca;
  o.cert_file = f.cert;
  o.key_file = f.key;
  if (f.host_override) {
    /* As gRPC's clients: the name for TLS and for :authority. */
    o.server_name = f.host_override;
    o.authority = f.host_override;
  }
  sizes_chopts = o; /* message_sizes' fresh channels copy it */
  bt_sync_channel *ch;
  char err[512];
  if (bt_sync_channel_new(&o, &ch, err, sizeof(err)) != 0) {
    fprintf(stderr, "baton-interop-client: %s\n", err);
    return 1;
  }
  int failed = run_cases(ch, f.test_case);
  bt_sync_channel_free(ch);
  if (failed < 0)
    return 2;
  return failed ? 1 : 0;
}
