/* test_engine.c: the gateway's heart in memory — flows compiled by flow.c
 * from YAML over tests/unit/proto/engine/enginetest.proto, run by engine.c
 * for a fake client call, compensated and recovered by saga.c over a real
 * SQLite saga log in a temp dir.
 *
 * Nothing touches the network or the real clock: ld --wrap (engine.cmake)
 * hands the gateway's calls of the runtime to the fakes below.
 *   - The upstream: every backend call started is recorded (method, request
 *     bytes, metadata, timeout) and stays open until the test answers it.
 *   - The client call: its request, metadata and deadline are the test's;
 *     its answer is recorded.
 *   - The clock and timers: bt_now_ms reads a fake clock that moves only
 *     when the test advances it, firing the due fake timers in order.
 *   - rand: the backoff jitter, so backoff times are exact.
 * The saga log's completions come through a real bt_loop (its writer thread
 * pokes a uv_async on it), pumped by settle().
 *
 * What the gateway did is kept as a trace in order, with the fake time in
 * ms ("start Orders/Create @0; cancel Shipping/Quote @5; finish UNAVAILABLE
 * step 'stock' failed: gone @5"), so each test asserts the exact sequence. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <baton/alloc.h>
#include <baton/arena.h>
#include <baton/baton.h>
#include <baton/status.h>

#include "config/config.h"
#include "core/core.h"
#include "flow/flow.h"
#include "proto/proto.h"
#include "proxy/proxy.h"
#include "saga/saga.h"
#include "saga/sagalog.h"

#include "enginetest.pb-c.h"

#define MS ((int64_t)1000000)
/* The fake clock's start: far from 0, as a monotonic clock is. */
#define T0 ((int64_t)1000000 * MS)

/* ---- the gateway's config ------------------------------------------------ */

/* One flow per behaviour under test (engt.Front's methods). Placeholders:
 * the descriptor set, the SQLite saga log. */
static const char config_yaml[] =
    "listen: { address: \"127.0.0.1:1\" }\n"
    "descriptors: \"%s\"\n"
    "forward_metadata: [x-tenant]\n"
    "saga_log: { sqlite: \"%s\", group_commit: 0ms }\n"
    "backends:\n"
    "  orders:    { endpoints: [\"127.0.0.1:1\"] }\n"
    "  payments:  { endpoints: [\"127.0.0.1:1\"] }\n"
    "  inventory: { endpoints: [\"127.0.0.1:1\"] }\n"
    "  shipping:  { endpoints: [\"127.0.0.1:1\"] }\n"
    "flows:\n"
    "  engt.Front/Place:\n"
    "    steps:\n"
    "      - name: order\n"
    "        call: orders engt.Orders/Create\n"
    "        request: { customer: request.customer, items: request.items }\n"
    "      - name: pay\n"
    "        call: payments engt.Payments/Charge\n"
    "        request: { order_id: order.id, amount: order.total,\n"
    "                   card: request.card }\n"
    "    response: { order_id: order.id, total: order.total,\n"
    "                payment_id: pay.id }\n"
    "  engt.Front/Fanout:\n"
    "    steps:\n"
    "      - name: order\n"
    "        call: orders engt.Orders/Create\n"
    "        request: { customer: request.customer }\n"
    "      - parallel:\n"
    "          - name: stock\n"
    "            call: inventory engt.Inventory/Reserve\n"
    "            request: { order_id: order.id, items: request.items }\n"
    "          - name: ship\n"
    "            call: shipping engt.Shipping/Quote\n"
    "            request: { order_id: order.id, express: request.express }\n"
    "    response: { order_id: order.id, reservations: stock.ids,\n"
    "                tracking: ship.tracking }\n"
    "  engt.Front/Branch:\n"
    "    steps:\n"
    "      - name: order\n"
    "        call: orders engt.Orders/Create\n"
    "        request: { customer: request.customer }\n"
    "      - name: pay\n"
    "        call: payments engt.Payments/Charge\n"
    "        request: { order_id: order.id, amount: order.total }\n"
    "      - if: pay.status == \"DECLINED\"\n"
    "        then:\n"
    "          - fail: { code: FAILED_PRECONDITION,\n"
    "                    message: \"payment declined for order {order.id} "
    "({pay.status})\" }\n"
    "        else:\n"
    "          - name: ship\n"
    "            call: shipping engt.Shipping/Quote\n"
    "            request: { order_id: order.id, express: true }\n"
    "            when: request.express\n"
    "    response: { order_id: order.id, payment_id: pay.id,\n"
    "                tracking: ship.tracking }\n"
    "  engt.Front/Retry:\n"
    "    timeout: 2s\n"
    "    steps:\n"
    "      - name: pay\n"
    "        call: payments engt.Payments/Charge\n"
    "        request: { card: request.card }\n"
    "        timeout: 300ms\n"
    "        retry: { attempts: 3, backoff: 100ms, max_backoff: 150ms,\n"
    "                 on: [UNAVAILABLE, RESOURCE_EXHAUSTED] }\n"
    "    response: { payment_id: pay.id }\n"
    "  engt.Front/Timed:\n"
    "    timeout: 1s\n"
    "    steps:\n"
    "      - name: order\n"
    "        call: orders engt.Orders/Create\n"
    "        timeout: 300ms\n"
    "      - name: pay\n"
    "        call: payments engt.Payments/Charge\n"
    "        request: { order_id: order.id }\n"
    "        timeout: 2s\n"
    "    response: { order_id: order.id, payment_id: pay.id }\n"
    "  engt.Front/Untimed:\n"
    "    steps:\n"
    "      - name: order\n"
    "        call: orders engt.Orders/Create\n"
    "        timeout: 300ms\n"
    "      - name: pay\n"
    "        call: payments engt.Payments/Charge\n"
    "        request: { order_id: order.id }\n"
    "    response: { payment_id: pay.id }\n"
    "  engt.Front/Book:\n"
    "    steps:\n"
    "      - name: order\n"
    "        call: orders engt.Orders/Create\n"
    "        request: { customer: request.customer, items: request.items }\n"
    "        compensate:\n"
    "          call: orders engt.Orders/Cancel\n"
    "          request: { order_id: order.id }\n"
    "      - parallel:\n"
    "          - name: pay\n"
    "            call: payments engt.Payments/Charge\n"
    "            request: { order_id: order.id, amount: order.total,\n"
    "                       card: request.card }\n"
    "            compensate:\n"
    "              call: payments engt.Payments/Refund\n"
    "              request: { payment_id: pay.id, order_id: order.id,\n"
    "                         amount: order.total }\n"
    "              timeout: 2s\n"
    "              retry: { attempts: 2, backoff: 100ms }\n"
    "          - name: stock\n"
    "            call: inventory engt.Inventory/Reserve\n"
    "            request: { order_id: order.id, items: request.items }\n"
    "            compensate:\n"
    "              call: inventory engt.Inventory/Release\n"
    "              request: { ids: stock.ids, order_id: order.id }\n"
    "      - name: ship\n"
    "        call: shipping engt.Shipping/Quote\n"
    "        request: { order_id: order.id }\n"
    "    response: { order_id: order.id, payment_id: pay.id,\n"
    "                reservations: stock.ids, tracking: ship.tracking }\n";

/* ---- the fakes' state ---------------------------------------------------- */

/* A backend call the gateway started. */
typedef struct upcall {
  char method[64]; /* "Orders/Create": the path without "/engt." */
  int64_t timeout_ms;
  int single_response;
  char md_keys[160]; /* the request metadata's keys, in order */
  char saga_id[48];  /* baton-saga-id */
  char step[64];     /* baton-step */
  char traceparent[64];
  char tenant[32]; /* x-tenant */
  uint8_t *req;
  size_t req_len;
  int closed;    /* close_send seen */
  int cancelled; /* bt_client_call_cancel seen */
  int done;      /* on_done delivered */
  const bt_client_callbacks *cbs;
  void *ud;
} upcall;

typedef struct fake_timer {
  struct fake_timer *next;
  bt_timer_fn fn;
  void *ud;
  int armed;
  int64_t due_ns;
  uint64_t delay_ms; /* as last started */
} fake_timer;

/* The client-facing call the engine serves. */
typedef struct fake_client {
  uint8_t req[512];
  size_t req_len;
  bt_metadata *md;
  int64_t deadline;
  bt_call_event_fn on_cancel;
  void *cancel_ud;
  uint8_t *resp;
  size_t resp_len;
  int finished;
  int code;
  char message[512];
} fake_client;

#define MAX_UPCALLS 32
#define MAX_UNPACKED 64

static struct {
  char dir[256];
  char db[320];
  long live; /* bt_alloc_live at setup */
  bt_arena *arena;
  gw_diag diag;
  gw_config *cfg;
  gw_registry *reg;
  gw_flows flows;
  bt_loop *loop;
  gw_worker worker;
  gw_sagas *sagas;
  int64_t now;
  int rand_values[2]; /* what rand() returns, in turn */
  size_t n_rand, rand_calls;
  upcall calls[MAX_UPCALLS];
  size_t n_calls;
  fake_timer *timers;
  fake_client client;
  char trace[4096];
  ProtobufCMessage *unpacked[MAX_UNPACKED];
  size_t n_unpacked;
} fx;

/* Stands for the one channel of every backend: only its address matters. */
static max_align_t fake_channel_storage;
#define FAKE_CHANNEL ((bt_channel *)&fake_channel_storage)
#define CLIENT_CALL ((bt_call *)&fx.client)

/* Appends to fx.trace, cut at its end (snprintf's count can pass it). */
static void trace_append(const char *fmt, ...) {
  size_t len = strlen(fx.trace);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(fx.trace + len, sizeof(fx.trace) - len, fmt, ap);
  va_end(ap);
}

static void trace(const char *what, const char *arg) {
  trace_append("%s%s%s%s @%lld", fx.trace[0] ? "; " : "", what, arg ? " " : "",
               arg ? arg : "", (long long)((fx.now - T0) / MS));
}

/* ---- the fake upstream --------------------------------------------------- */

static upcall *as_upcall(bt_client_call *c) {
  upcall *u = (upcall *)c;
  assert_true(u >= fx.calls && u < fx.calls + fx.n_calls);
  return u;
}

static void md_copy(const bt_metadata *md, const char *key, char *out,
                    size_t cap) {
  size_t len = 0;
  const uint8_t *v = md ? bt_metadata_get(md, key, &len) : NULL;
  snprintf(out, cap, "%.*s", v ? (int)len : 0, v ? (const char *)v : "");
}

static void md_keys(const bt_metadata *md, char *out, size_t cap) {
  size_t len = 0;
  out[0] = 0;
  for (size_t i = 0; md && i < bt_metadata_count(md); i++) {
    const char *key;
    const uint8_t *value;
    size_t vlen;
    bt_metadata_at(md, i, &key, &value, &vlen);
    len += (size_t)snprintf(out + len, cap - len, "%s%s", i ? "," : "", key);
  }
}

bt_channel *__wrap_gw_upstream_pick(gw_upstreams *u, size_t backend) {
  assert_true(backend < fx.cfg->n_backends);
  return FAKE_CHANNEL;
}

bt_client_call *__wrap_bt_channel_start_call(
    bt_channel *ch, const char *path, const ProtobufCMessageDescriptor *output,
    const bt_call_opts *opts, const bt_client_callbacks *cbs, void *ud) {
  assert_ptr_equal(ch, FAKE_CHANNEL);
  assert_null(output); /* steps are decoded by the gateway, as bytes */
  assert_true(fx.n_calls < MAX_UPCALLS);
  assert_int_equal(strncmp(path, "/engt.", 6), 0);
  upcall *u = &fx.calls[fx.n_calls++];
  memset(u, 0, sizeof(*u));
  snprintf(u->method, sizeof(u->method), "%s", path + 6);
  u->timeout_ms = opts->timeout_ms;
  u->single_response = opts->single_response;
  md_keys(opts->metadata, u->md_keys, sizeof(u->md_keys));
  md_copy(opts->metadata, "baton-saga-id", u->saga_id, sizeof(u->saga_id));
  md_copy(opts->metadata, "baton-step", u->step, sizeof(u->step));
  md_copy(opts->metadata, "traceparent", u->traceparent,
          sizeof(u->traceparent));
  md_copy(opts->metadata, "x-tenant", u->tenant, sizeof(u->tenant));
  u->cbs = cbs;
  u->ud = ud;
  trace("start", u->method);
  return (bt_client_call *)u;
}

int __wrap_bt_client_call_send_bytes(bt_client_call *call, const uint8_t *bytes,
                                     size_t len) {
  upcall *u = as_upcall(call);
  assert_false(u->closed);
  assert_null(u->req); /* unary: one request message */
  u->req = malloc(len ? len : 1);
  memcpy(u->req, bytes, len);
  u->req_len = len;
  return 0;
}

int __wrap_bt_client_call_close_send(bt_client_call *call) {
  as_upcall(call)->closed = 1;
  return 0;
}

void __wrap_bt_client_call_cancel(bt_client_call *call) {
  upcall *u = as_upcall(call);
  /* After on_done the runtime has freed the call: cancelling it then
   * would be a use after free. */
  assert_false(u->done);
  u->cancelled = 1;
  trace("cancel", u->method);
}

/* The backend's answer: a response message (OK) or an error status. */
static void end_upcall(upcall *u, int code, const char *message,
                       const ProtobufCMessage *resp) {
  assert_false(u->done);
  assert_true(u->closed);
  if (resp && u->cbs->on_message) {
    uint8_t buf[512];
    size_t len = protobuf_c_message_get_packed_size(resp);
    assert_true(len <= sizeof(buf));
    protobuf_c_message_pack(resp, buf);
    u->cbs->on_message((bt_client_call *)u, NULL, buf, len, u->ud);
  }
  bt_metadata *trailers = bt_metadata_new(NULL);
  bt_status st = {.code = code, .message = message, .trailers = trailers};
  u->done = 1;
  u->cbs->on_done((bt_client_call *)u, &st, u->ud);
  bt_metadata_free(trailers);
}

/* ---- the fake client call ------------------------------------------------ */

const uint8_t *__wrap_bt_call_request_bytes(const bt_call *call, size_t *len) {
  assert_ptr_equal(call, CLIENT_CALL);
  *len = fx.client.req_len;
  return fx.client.req;
}

const bt_metadata *__wrap_bt_call_request_metadata(const bt_call *call) {
  assert_ptr_equal(call, CLIENT_CALL);
  return fx.client.md;
}

int64_t __wrap_bt_call_deadline(const bt_call *call) {
  assert_ptr_equal(call, CLIENT_CALL);
  /* As the runtime: in ms on bt_now_ms's clock, rounded down. */
  return fx.client.deadline == INT64_MAX ? INT64_MAX : fx.client.deadline / MS;
}

void __wrap_bt_call_on_cancel(bt_call *call, bt_call_event_fn fn, void *ud) {
  assert_ptr_equal(call, CLIENT_CALL);
  fx.client.on_cancel = fn;
  fx.client.cancel_ud = ud;
}

int __wrap_bt_call_send_bytes(bt_call *call, const uint8_t *bytes, size_t len) {
  assert_ptr_equal(call, CLIENT_CALL);
  assert_false(fx.client.finished);
  assert_null(fx.client.resp); /* unary: one response message */
  fx.client.resp = malloc(len ? len : 1);
  memcpy(fx.client.resp, bytes, len);
  fx.client.resp_len = len;
  trace("respond", NULL);
  return 0;
}

void __wrap_bt_call_finish(bt_call *call, int code, const char *message) {
  assert_ptr_equal(call, CLIENT_CALL);
  assert_false(fx.client.finished); /* exactly once */
  fx.client.finished = 1;
  fx.client.code = code;
  snprintf(fx.client.message, sizeof(fx.client.message), "%s",
           message ? message : "");
  char status[600];
  snprintf(status, sizeof(status), "%s%s%s", bt_grpc_code_name(code),
           message ? " " : "", message ? message : "");
  trace("finish", status);
}

/* ---- the fake clock, timers and jitter ----------------------------------- */

int64_t __wrap_bt_now_ms(void) {
  return (fx.now + MS - 1) / MS; /* rounded up, as the runtime's */
}

int __wrap_rand(void) {
  assert_true(fx.rand_calls < fx.n_rand); /* every jitter is scripted */
  return fx.rand_values[fx.rand_calls++];
}

bt_timer *__wrap_bt_timer_new(bt_loop *loop, bt_timer_fn fn, void *ud) {
  assert_ptr_equal(loop, fx.loop);
  fake_timer *t = calloc(1, sizeof(*t));
  t->fn = fn;
  t->ud = ud;
  t->next = fx.timers;
  fx.timers = t;
  return (bt_timer *)t;
}

void __wrap_bt_timer_start(bt_timer *timer, uint64_t delay_ms) {
  fake_timer *t = (fake_timer *)timer;
  t->armed = 1;
  t->delay_ms = delay_ms;
  t->due_ns = fx.now + (int64_t)delay_ms * MS;
}

void __wrap_bt_timer_stop(bt_timer *timer) {
  ((fake_timer *)timer)->armed = 0;
}

void __wrap_bt_timer_free(bt_timer *timer) {
  if (!timer)
    return;
  for (fake_timer **p = &fx.timers; *p; p = &(*p)->next) {
    if (*p == (fake_timer *)timer) {
      *p = (*p)->next;
      free(timer);
      return;
    }
  }
  fail_msg("bt_timer_free of a timer that is not live");
}

static size_t armed_timers(void) {
  size_t n = 0;
  for (fake_timer *t = fx.timers; t; t = t->next)
    n += t->armed;
  return n;
}

static int by_value(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* The armed timers' delays as they were started, ascending ("57,2000"). */
static const char *armed_delays(void) {
  static char out[128];
  uint64_t delays[16];
  size_t n = 0, len = 0;
  for (fake_timer *t = fx.timers; t && n < 16; t = t->next)
    if (t->armed)
      delays[n++] = t->delay_ms;
  qsort(delays, n, sizeof(delays[0]), by_value);
  out[0] = 0;
  for (size_t i = 0; i < n; i++)
    len += (size_t)snprintf(out + len, sizeof(out) - len, "%s%llu",
                            i ? "," : "", (unsigned long long)delays[i]);
  return out;
}

static void script_rand(int a, int b) {
  fx.rand_values[0] = a;
  fx.rand_values[1] = b;
  fx.n_rand = 2;
  fx.rand_calls = 0;
}

/* ---- driving ------------------------------------------------------------- */

/* Runs the saga log's completions (and what they start) until none is
 * pending: the log's async handle keeps the loop alive only then. */
static void settle(void) {
  while (bt_loop_run_once(fx.loop, 1)) {
  }
}

static fake_timer *earliest_due(int64_t until) {
  fake_timer *best = NULL;
  for (fake_timer *t = fx.timers; t; t = t->next)
    if (t->armed && t->due_ns <= until && (!best || t->due_ns < best->due_ns))
      best = t;
  return best;
}

/* Moves the fake clock ms on, firing due timers in order at their time. */
static void advance_ms(int64_t ms) {
  int64_t until = fx.now + ms * MS;
  fake_timer *t;
  while ((t = earliest_due(until))) {
    fx.now = t->due_ns;
    t->armed = 0;
    t->fn(t->ud); /* may free t */
    settle();
  }
  fx.now = until;
}

/* The latest call started to method ("Orders/Create"). */
static upcall *call_to(const char *method) {
  for (size_t i = fx.n_calls; i-- > 0;)
    if (strcmp(fx.calls[i].method, method) == 0)
      return &fx.calls[i];
  fail_msg("no call to %s; trace: %s", method, fx.trace);
  return NULL;
}

static void reply(upcall *u, const ProtobufCMessage *resp) {
  end_upcall(u, BT_GRPC_OK, "", resp);
  settle();
}

static void reply_error(upcall *u, int code, const char *message) {
  end_upcall(u, code, message, NULL);
  settle();
}

/* A cancelled call's report (the runtime's on_done after RST_STREAM). */
static void report_cancelled(upcall *u) {
  assert_true(u->cancelled);
  reply_error(u, BT_GRPC_CANCELLED, "Cancelled");
}

static void *unpack(const ProtobufCMessageDescriptor *d, const uint8_t *bytes,
                    size_t len) {
  ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, len, bytes);
  assert_non_null(m);
  assert_true(fx.n_unpacked < MAX_UNPACKED);
  fx.unpacked[fx.n_unpacked++] = m;
  return m;
}

#define REQUEST_OF(u, type, lower)                                             \
  ((type *)unpack(&lower##__descriptor, (u)->req, (u)->req_len))
#define CLIENT_REPLY()                                                         \
  ((Engt__OrderReply *)unpack(&engt__order_reply__descriptor, fx.client.resp,  \
                              fx.client.resp_len))

static const char traceparent[] =
    "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

/* The client calls method with req; deadline is absolute (INT64_MAX:
 * none). Its metadata: x-tenant (forwarded by the config), x-secret (not)
 * and a traceparent. */
static void invoke(const char *method, const Engt__OrderRequest *req,
                   int64_t deadline) {
  const gw_flow *flow = gw_flow_find(&fx.flows, method);
  assert_non_null(flow);
  size_t len = protobuf_c_message_get_packed_size(&req->base);
  assert_true(len <= sizeof(fx.client.req));
  fx.client.req_len = protobuf_c_message_pack(&req->base, fx.client.req);
  fx.client.deadline = deadline;
  fx.client.md = bt_metadata_new(NULL);
  bt_metadata_add_str(fx.client.md, "x-secret", "s3");
  bt_metadata_add_str(fx.client.md, "x-tenant", "t-7");
  bt_metadata_add_str(fx.client.md, "traceparent", traceparent);
  gw_engine_invoke(CLIENT_CALL, NULL, flow, NULL);
  settle();
}

static char *items_ab[] = {"apple", "bread"};

static Engt__OrderRequest order_request(void) {
  Engt__OrderRequest r = ENGT__ORDER_REQUEST__INIT;
  r.customer = "ann";
  r.n_items = 2;
  r.items = items_ab;
  r.card = "tok-1";
  return r;
}

static Engt__Order order_reply(const char *id, int64_t total) {
  Engt__Order o = ENGT__ORDER__INIT;
  o.id = (char *)id;
  o.total = total;
  return o;
}

static Engt__Payment payment_reply(const char *id, const char *status) {
  Engt__Payment p = ENGT__PAYMENT__INIT;
  p.id = (char *)id;
  p.status = (char *)status;
  return p;
}

static Engt__Shipment shipment_reply(const char *tracking) {
  Engt__Shipment s = ENGT__SHIPMENT__INIT;
  s.tracking = (char *)tracking;
  return s;
}

static char *reservation_ids[] = {"r-1", "r-2"};

static Engt__Reservation reservation_reply(void) {
  Engt__Reservation r = ENGT__RESERVATION__INIT;
  r.n_ids = 2;
  r.ids = reservation_ids;
  return r;
}

/* ---- fixtures ------------------------------------------------------------ */

static void make_temp_dir(void) {
  /* tmpfs when there is one: the log fsyncs every commit. */
  const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
  const char *tmp = getenv("TMPDIR");
  if (tmp && tmp[0])
    base = tmp;
  snprintf(fx.dir, sizeof(fx.dir), "%s/test_engine.XXXXXX", base);
  assert_non_null(mkdtemp(fx.dir));
  snprintf(fx.db, sizeof(fx.db), "%s/saga.db", fx.dir);
}

static void load_gateway(void) {
  fx.arena = bt_arena_new(0);
  gw_diag_init(&fx.diag);
  char text[sizeof(config_yaml) + 1024];
  snprintf(text, sizeof(text), config_yaml, ENGINETEST_DESCRIPTOR_SET, fx.db);
  gw_ynode *root =
      gw_ynode_parse("engine.yaml", text, strlen(text), fx.arena, &fx.diag);
  fx.cfg = root ? gw_config_from_yaml("engine.yaml", root, fx.arena, &fx.diag)
                : NULL;
  if (fx.cfg) {
    char err[256];
    fx.reg = gw_registry_load(fx.cfg->descriptors, err, sizeof(err));
    if (!fx.reg)
      fail_msg("descriptors: %s", err);
    gw_flow_compile_all(fx.cfg, fx.reg, fx.arena, &fx.flows, &fx.diag);
  }
  for (size_t i = 0; i < fx.diag.n; i++)
    print_message("config: %s\n", fx.diag.lines[i]);
  assert_non_null(fx.cfg);
  assert_int_equal(fx.diag.n, 0);
  assert_int_equal(fx.flows.n, 7);
}

/* As gateway.c's gw_gateway_start and worker_start, on this thread: the
 * saga log opened (claiming what it holds unfinished), worker 0 started. */
static void start_worker(void) {
  char err[256];
  fx.sagas = gw_saga_open(fx.cfg, &fx.flows, err, sizeof(err));
  if (!fx.sagas)
    fail_msg("saga log: %s", err);
  fx.worker.cfg = fx.cfg;
  fx.worker.loop = fx.loop;
  fx.worker.index = 0;
  fx.worker.sagas = fx.sagas;
  gw_worker_set_current(&fx.worker);
  gw_saga_worker_start(&fx.worker);
  settle();
}

/* As gateway.c's worker_stop and gw_gateway_free: the log detached from
 * the loop (outstanding completions run) and closed. */
static void stop_worker(void) {
  if (!fx.sagas)
    return;
  fx.worker.stopping = 1; /* as gateway.c's worker_stop */
  gw_saga_worker_stop(&fx.worker);
  gw_saga_close(fx.sagas);
  fx.sagas = NULL;
  fx.worker.sagas = NULL;
}

static int setup_loaded(void **state) {
  memset(&fx, 0, sizeof(fx));
  fx.live = bt_alloc_live();
  fx.now = T0;
  make_temp_dir();
  load_gateway();
  fx.loop = bt_loop_new();
  return 0;
}

static int setup(void **state) {
  setup_loaded(state);
  start_worker();
  return 0;
}

static void remove_temp_dir(void) {
  static const char *const files[] = {"saga.db", "saga.db-wal", "saga.db-shm"};
  char path[400];
  for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
    snprintf(path, sizeof(path), "%s/%s", fx.dir, files[i]);
    unlink(path);
  }
  rmdir(fx.dir);
}

/* The first backend call that never reported, or NULL. */
static const upcall *call_left_open(void) {
  for (size_t i = 0; i < fx.n_calls; i++)
    if (!fx.calls[i].done)
      return &fx.calls[i];
  return NULL;
}

static int teardown(void **state) {
  /* Every backend call must have reported: a run (or a compensation) waits
   * for its calls before it frees itself, and the leak check below sees
   * it. The temp dir goes first so a failing test leaves nothing behind. */
  const upcall *open = call_left_open();
  stop_worker();
  gw_worker_set_current(NULL);
  bt_loop_free(fx.loop);
  remove_temp_dir();
  if (open)
    fail_msg("%s never ended; trace: %s", open->method, fx.trace);
  assert_null(fx.timers); /* every timer freed with its run */
  for (size_t i = 0; i < fx.n_unpacked; i++)
    protobuf_c_message_free_unpacked(fx.unpacked[i], NULL);
  for (size_t i = 0; i < fx.n_calls; i++)
    free(fx.calls[i].req);
  free(fx.client.resp);
  bt_metadata_free(fx.client.md);
  gw_registry_free(fx.reg);
  gw_diag_clear(&fx.diag);
  bt_arena_free(fx.arena);
  assert_int_equal(bt_alloc_live(), fx.live);
  return 0;
}

/* ---- sequences ----------------------------------------------------------- */

/* Request fields reach the first step, its response the second, and both
 * responses the client's answer; the second step waits for the first. */
static void test_sequence_maps_fields_through_steps(void **state) {
  Engt__OrderRequest req = order_request();
  invoke("engt.Front/Place", &req, INT64_MAX);
  assert_string_equal(fx.trace, "start Orders/Create @0");
  upcall *order = call_to("Orders/Create");
  Engt__CreateReq *create =
      REQUEST_OF(order, Engt__CreateReq, engt__create_req);
  assert_string_equal(create->customer, "ann");
  assert_int_equal(create->n_items, 2);
  assert_string_equal(create->items[0], "apple");
  assert_string_equal(create->items[1], "bread");
  /* The configured key and the client's trace go upstream; x-secret not. */
  assert_string_equal(order->md_keys, "x-tenant,traceparent");
  assert_string_equal(order->tenant, "t-7");
  assert_string_equal(order->traceparent, traceparent);
  assert_true(order->single_response);

  advance_ms(5);
  Engt__Order o = order_reply("o-1", 1250);
  reply(order, &o.base);
  upcall *pay = call_to("Payments/Charge");
  Engt__ChargeReq *charge = REQUEST_OF(pay, Engt__ChargeReq, engt__charge_req);
  assert_string_equal(charge->order_id, "o-1");
  assert_int_equal(charge->amount, 1250);
  assert_string_equal(charge->card, "tok-1");
  assert_false(fx.client.finished);

  advance_ms(2);
  Engt__Payment p = payment_reply("p-1", "OK");
  reply(pay, &p.base);
  assert_string_equal(fx.trace, "start Orders/Create @0; "
                                "start Payments/Charge @5; "
                                "respond @7; finish OK @7");
  Engt__OrderReply *answer = CLIENT_REPLY();
  assert_string_equal(answer->order_id, "o-1");
  assert_int_equal(answer->total, 1250);
  assert_string_equal(answer->payment_id, "p-1");
  assert_int_equal(answer->n_reservations, 0);
  assert_string_equal(answer->tracking, "");
  assert_int_equal(fx.client.code, BT_GRPC_OK);
  assert_int_equal(fx.n_calls, 2);
}

/* ---- parallel groups ----------------------------------------------------- */

static void fanout_until_group_sent(void) {
  Engt__OrderRequest req = order_request();
  req.express = 1;
  invoke("engt.Front/Fanout", &req, INT64_MAX);
  Engt__Order o = order_reply("o-2", 10);
  reply(call_to("Orders/Create"), &o.base);
}

/* Both members go out together; the flow goes on only when both answered. */
static void test_parallel_joins_when_all_answered(void **state) {
  fanout_until_group_sent();
  assert_string_equal(fx.trace, "start Orders/Create @0; "
                                "start Inventory/Reserve @0; "
                                "start Shipping/Quote @0");
  upcall *stock = call_to("Inventory/Reserve");
  upcall *ship = call_to("Shipping/Quote");
  Engt__ReserveReq *reserve =
      REQUEST_OF(stock, Engt__ReserveReq, engt__reserve_req);
  assert_string_equal(reserve->order_id, "o-2");
  assert_int_equal(reserve->n_items, 2);
  assert_string_equal(reserve->items[1], "bread");
  Engt__QuoteReq *quote = REQUEST_OF(ship, Engt__QuoteReq, engt__quote_req);
  assert_string_equal(quote->order_id, "o-2");
  assert_true(quote->express);

  advance_ms(3);
  Engt__Shipment s = shipment_reply("trk-9");
  reply(ship, &s.base);
  assert_false(fx.client.finished); /* the join waits for stock */

  advance_ms(4);
  Engt__Reservation r = reservation_reply();
  reply(stock, &r.base);
  assert_string_equal(fx.trace, "start Orders/Create @0; "
                                "start Inventory/Reserve @0; "
                                "start Shipping/Quote @0; "
                                "respond @7; finish OK @7");
  Engt__OrderReply *answer = CLIENT_REPLY();
  assert_string_equal(answer->order_id, "o-2");
  assert_int_equal(answer->n_reservations, 2);
  assert_string_equal(answer->reservations[0], "r-1");
  assert_string_equal(answer->reservations[1], "r-2");
  assert_string_equal(answer->tracking, "trk-9");
}

/* A member failing answers the client at once with its status, naming the
 * step, and cancels the other member; that one's report ends the run. */
static void test_parallel_failure_cancels_the_group(void **state) {
  fanout_until_group_sent();
  advance_ms(2);
  reply_error(call_to("Inventory/Reserve"), BT_GRPC_NOT_FOUND, "no such item");
  assert_string_equal(fx.trace,
                      "start Orders/Create @0; "
                      "start Inventory/Reserve @0; "
                      "start Shipping/Quote @0; "
                      "cancel Shipping/Quote @2; "
                      "finish NOT_FOUND step 'stock' failed: no such item @2");
  assert_int_equal(fx.client.code, BT_GRPC_NOT_FOUND);
  assert_null(fx.client.resp);
  assert_int_equal(armed_timers(), 0);

  advance_ms(1);
  report_cancelled(call_to("Shipping/Quote"));
  assert_int_equal(fx.n_calls, 3); /* nothing more after the end */
}

/* The client cancelling cancels every backend call in flight. */
static void test_client_cancel_cancels_backend_calls(void **state) {
  fanout_until_group_sent();
  advance_ms(4);
  fx.client.on_cancel(CLIENT_CALL, fx.client.cancel_ud);
  assert_string_equal(fx.trace, "start Orders/Create @0; "
                                "start Inventory/Reserve @0; "
                                "start Shipping/Quote @0; "
                                "cancel Inventory/Reserve @4; "
                                "cancel Shipping/Quote @4; "
                                "finish CANCELLED @4");
  report_cancelled(call_to("Inventory/Reserve"));
  report_cancelled(call_to("Shipping/Quote"));
}

/* ---- branches ------------------------------------------------------------ */

static void branch_until_paid(int express, const char *pay_status) {
  Engt__OrderRequest req = order_request();
  req.express = express;
  invoke("engt.Front/Branch", &req, INT64_MAX);
  Engt__Order o = order_reply("o-3", 700);
  reply(call_to("Orders/Create"), &o.base);
  upcall *pay = call_to("Payments/Charge");
  Engt__ChargeReq *charge = REQUEST_OF(pay, Engt__ChargeReq, engt__charge_req);
  assert_string_equal(charge->order_id, "o-3");
  assert_int_equal(charge->amount, 700);
  assert_string_equal(charge->card, ""); /* not mapped in this flow */
  Engt__Payment p = payment_reply("p-3", pay_status);
  reply(pay, &p.base);
}

/* if true: then's fail answers with its code and the rendered message. */
static void test_branch_then_fails_with_rendered_message(void **state) {
  branch_until_paid(1, "DECLINED");
  assert_string_equal(fx.trace,
                      "start Orders/Create @0; start Payments/Charge @0; "
                      "finish FAILED_PRECONDITION payment declined for order "
                      "o-3 (DECLINED) @0");
  assert_int_equal(fx.client.code, BT_GRPC_FAILED_PRECONDITION);
  assert_int_equal(fx.n_calls, 2);
}

/* if false: the else block runs (its step with a literal in its request). */
static void test_branch_else_runs_its_steps(void **state) {
  branch_until_paid(1, "APPROVED");
  upcall *ship = call_to("Shipping/Quote");
  Engt__QuoteReq *quote = REQUEST_OF(ship, Engt__QuoteReq, engt__quote_req);
  assert_string_equal(quote->order_id, "o-3");
  assert_true(quote->express); /* the literal true */
  Engt__Shipment s = shipment_reply("trk-3");
  reply(ship, &s.base);
  assert_string_equal(fx.trace, "start Orders/Create @0; "
                                "start Payments/Charge @0; "
                                "start Shipping/Quote @0; "
                                "respond @0; finish OK @0");
  Engt__OrderReply *answer = CLIENT_REPLY();
  assert_string_equal(answer->payment_id, "p-3");
  assert_string_equal(answer->tracking, "trk-3");
}

/* A step whose `when` is false is skipped: its response reads as empty. */
static void test_branch_when_false_skips_the_step(void **state) {
  branch_until_paid(0, "APPROVED");
  assert_string_equal(fx.trace, "start Orders/Create @0; "
                                "start Payments/Charge @0; "
                                "respond @0; finish OK @0");
  Engt__OrderReply *answer = CLIENT_REPLY();
  assert_string_equal(answer->order_id, "o-3");
  assert_string_equal(answer->tracking, "");
}

/* ---- retries ------------------------------------------------------------- */

/* retry { attempts: 3, backoff: 100ms, max_backoff: 150ms }: the nth retry
 * waits backoff x 2^(n-1), capped, jittered over its upper half
 * (cap/2 + rand() % (cap/2 + 1)); each attempt gets the step's timeout. */
static void test_retry_backs_off_exactly_then_gives_up(void **state) {
  script_rand(7, 20);
  Engt__OrderRequest req = order_request();
  invoke("engt.Front/Retry", &req, INT64_MAX);
  upcall *first = call_to("Payments/Charge");
  assert_int_equal(first->timeout_ms, 300);
  assert_string_equal(armed_delays(), "2000"); /* the flow's deadline */

  advance_ms(10);
  reply_error(first, BT_GRPC_UNAVAILABLE, "down");
  /* 100 ms: 50 + 7 % 51 = 57 ms. */
  assert_string_equal(armed_delays(), "57,2000");
  advance_ms(56);
  assert_int_equal(fx.n_calls, 1);
  advance_ms(1);
  assert_int_equal(fx.n_calls, 2);
  upcall *second = call_to("Payments/Charge");
  assert_int_equal(second->timeout_ms, 300);
  assert_int_equal(second->req_len, first->req_len);
  assert_memory_equal(second->req, first->req, first->req_len);

  reply_error(second, BT_GRPC_RESOURCE_EXHAUSTED, "busy");
  /* 200 ms capped at 150: 75 + 20 % 76 = 95 ms. */
  assert_string_equal(armed_delays(), "95,2000");
  advance_ms(94);
  assert_int_equal(fx.n_calls, 2);
  advance_ms(1);
  assert_int_equal(fx.n_calls, 3);

  reply_error(call_to("Payments/Charge"), BT_GRPC_UNAVAILABLE, "still down");
  assert_string_equal(fx.trace,
                      "start Payments/Charge @0; "
                      "start Payments/Charge @67; "
                      "start Payments/Charge @162; "
                      "finish UNAVAILABLE step 'pay' failed: still down @162");
  assert_int_equal(fx.rand_calls, 2); /* no backoff drawn after the last */
  assert_int_equal(armed_timers(), 0);
}

/* A retry that succeeds: the client gets that attempt's response. */
static void test_retry_success_answers_with_the_retry(void **state) {
  script_rand(0, 0);
  Engt__OrderRequest req = order_request();
  invoke("engt.Front/Retry", &req, INT64_MAX);
  reply_error(call_to("Payments/Charge"), BT_GRPC_UNAVAILABLE, "down");
  advance_ms(50); /* 50 + 0 % 51 */
  Engt__Payment p = payment_reply("p-2", "OK");
  reply(call_to("Payments/Charge"), &p.base);
  assert_string_equal(fx.trace, "start Payments/Charge @0; "
                                "start Payments/Charge @50; "
                                "respond @50; finish OK @50");
  assert_string_equal(CLIENT_REPLY()->payment_id, "p-2");
}

/* A code outside retry.on fails the flow at once. */
static void test_retry_only_on_listed_codes(void **state) {
  Engt__OrderRequest req = order_request();
  invoke("engt.Front/Retry", &req, INT64_MAX);
  advance_ms(3);
  reply_error(call_to("Payments/Charge"), BT_GRPC_INVALID_ARGUMENT, "bad card");
  assert_string_equal(fx.trace,
                      "start Payments/Charge @0; "
                      "finish INVALID_ARGUMENT step 'pay' failed: bad card @3");
  assert_int_equal(fx.rand_calls, 0);
}

/* No retry whose backoff would end past the deadline: the step's own
 * failure is the answer, now, rather than DEADLINE_EXCEEDED later. */
static void test_retry_not_past_the_deadline(void **state) {
  script_rand(7, 0);
  Engt__OrderRequest req = order_request();
  invoke("engt.Front/Retry", &req, T0 + 100 * MS);
  advance_ms(50);
  /* 50 + 57 ms >= 100 ms. */
  reply_error(call_to("Payments/Charge"), BT_GRPC_UNAVAILABLE, "down");
  assert_string_equal(fx.trace,
                      "start Payments/Charge @0; "
                      "finish UNAVAILABLE step 'pay' failed: down @50");
  assert_int_equal(fx.rand_calls, 1);
}

/* ---- deadlines ----------------------------------------------------------- */

/* The client's deadline (800.5 ms, which the runtime gives in whole ms,
 * rounded down) under the flow's timeout (1 s): each call gets the smaller
 * of its step timeout and what is left; when the deadline passes, the
 * client gets DEADLINE_EXCEEDED and calls are cancelled. */
static void test_deadline_client_bounds_step_timeouts(void **state) {
  Engt__OrderRequest req = order_request();
  invoke("engt.Front/Timed", &req, T0 + 800 * MS + MS / 2);
  assert_string_equal(armed_delays(), "800");
  upcall *order = call_to("Orders/Create");
  assert_int_equal(order->timeout_ms, 300); /* the step's 300 ms */

  advance_ms(500);
  Engt__Order o = order_reply("o-4", 1);
  reply(order, &o.base);
  upcall *pay = call_to("Payments/Charge");
  assert_int_equal(pay->timeout_ms, 300); /* what is left, under 2 s */

  advance_ms(299);
  assert_false(fx.client.finished);
  advance_ms(1);
  assert_string_equal(fx.trace, "start Orders/Create @0; "
                                "start Payments/Charge @500; "
                                "cancel Payments/Charge @800; "
                                "finish DEADLINE_EXCEEDED Deadline Exceeded "
                                "@800");
  report_cancelled(pay);
}

/* The flow's timeout (1 s) under a client without a deadline. */
static void test_deadline_flow_timeout_bounds_step_timeouts(void **state) {
  Engt__OrderRequest req = order_request();
  invoke("engt.Front/Timed", &req, INT64_MAX);
  assert_string_equal(armed_delays(), "1000");
  upcall *order = call_to("Orders/Create");
  assert_int_equal(order->timeout_ms, 300);
  advance_ms(900);
  Engt__Order o = order_reply("o-5", 1);
  reply(order, &o.base);
  upcall *pay = call_to("Payments/Charge");
  assert_int_equal(pay->timeout_ms, 100);
  Engt__Payment p = payment_reply("p-5", "OK");
  reply(pay, &p.base);
  assert_int_equal(fx.client.code, BT_GRPC_OK);
  assert_int_equal(armed_timers(), 0);
}

/* Neither a client deadline nor a flow timeout: no deadline timer; a step
 * gets its own timeout, or limits.step_timeout (10 s by default). */
static void test_deadline_none_leaves_step_timeouts(void **state) {
  Engt__OrderRequest req = order_request();
  invoke("engt.Front/Untimed", &req, INT64_MAX);
  assert_null(fx.timers);
  upcall *order = call_to("Orders/Create");
  assert_int_equal(order->timeout_ms, 300);
  advance_ms(5000);
  Engt__Order o = order_reply("o-6", 1);
  reply(order, &o.base);
  upcall *pay = call_to("Payments/Charge");
  assert_int_equal(pay->timeout_ms, 10000);
  Engt__Payment p = payment_reply("p-6", "OK");
  reply(pay, &p.base);
  assert_string_equal(CLIENT_REPLY()->payment_id, "p-6");
}

/* ---- the saga log, read back --------------------------------------------- */

typedef struct logged_step {
  char name[16];
  int index;
  int state;
  uint32_t attempts;
} logged_step;

typedef struct logged_saga {
  char id[48];
  char flow[48];
  int state;
  size_t n_steps;
  logged_step steps[8];
} logged_saga;

static struct {
  logged_saga sagas[4];
  size_t n;
} logged;

static void keep_logged(const gw_saga_view *s, void *ud) {
  assert_true(logged.n < 4);
  logged_saga *k = &logged.sagas[logged.n++];
  snprintf(k->id, sizeof(k->id), "%s", s->saga_id);
  snprintf(k->flow, sizeof(k->flow), "%s", s->flow);
  k->state = s->state;
  k->n_steps = s->n_steps;
  assert_true(s->n_steps <= 8);
  for (size_t i = 0; i < s->n_steps; i++) {
    snprintf(k->steps[i].name, sizeof(k->steps[i].name), "%s",
             s->steps[i].name);
    k->steps[i].index = s->steps[i].index;
    k->steps[i].state = s->steps[i].state;
    k->steps[i].attempts = s->steps[i].attempts;
  }
}

/* Stops the worker (so the log is closed and its writes are in) and reads
 * every saga in the log into `logged`. */
static void read_log(void) {
  stop_worker();
  char err[256];
  gw_sagalog_opts o = {.sqlite_path = fx.db};
  gw_sagalog *log = gw_sagalog_open(&o, err, sizeof(err));
  assert_non_null(log);
  memset(&logged, 0, sizeof(logged));
  assert_true(gw_sagalog_list(log, -1, keep_logged, NULL) >= 0);
  gw_sagalog_close(log);
}

/* A step state's name, so a failing comparison reads as one. */
static const char *step_state_name(int state) {
  static const char *const names[] = {"STARTED", "COMMITTED", "FAILED",
                                      "COMPENSATED", "COMPENSATION_FAILED"};
  return state >= 0 && state <= GW_STEP_COMPENSATION_FAILED ? names[state]
                                                            : "UNKNOWN";
}

static void assert_step(const logged_saga *s, size_t i, const char *name,
                        gw_step_state state) {
  assert_true(i < s->n_steps);
  assert_string_equal(s->steps[i].name, name);
  assert_string_equal(step_state_name(s->steps[i].state),
                      step_state_name((int)state));
}

/* ---- sagas --------------------------------------------------------------- */

static const Engt__Done done_reply = ENGT__DONE__INIT;

/* Book: order committed (o-1, 1250 cents); pay and stock sent together. */
static void book_until_group_sent(void) {
  Engt__OrderRequest req = order_request();
  invoke("engt.Front/Book", &req, INT64_MAX);
  Engt__Order o = order_reply("o-1", 1250);
  reply(call_to("Orders/Create"), &o.base);
}

/* Book with order, pay and stock committed and ship sent. */
static void book_until_ship_sent(void) {
  book_until_group_sent();
  Engt__Payment p = payment_reply("p-1", "OK");
  reply(call_to("Payments/Charge"), &p.base);
  Engt__Reservation r = reservation_reply();
  reply(call_to("Inventory/Reserve"), &r.base);
}

static void assert_saga_call(const upcall *u, const char *saga_id,
                             const char *step) {
  assert_string_equal(u->saga_id, saga_id);
  assert_string_equal(u->step, step);
}

/* Every call of a saga carries its id and step; when a later step fails,
 * the client hears at once and the committed steps are undone in reverse
 * order, the parallel group's members together, each compensation's
 * request built from its step's response. */
static void test_saga_compensates_in_reverse_group_together(void **state) {
  book_until_ship_sent();
  const char *id = call_to("Orders/Create")->saga_id;
  assert_int_equal(strlen(id), 32);
  assert_string_equal(call_to("Orders/Create")->md_keys,
                      "x-tenant,traceparent,baton-saga-id,baton-step");
  assert_saga_call(call_to("Orders/Create"), id, "order");
  assert_saga_call(call_to("Payments/Charge"), id, "pay");
  assert_saga_call(call_to("Inventory/Reserve"), id, "stock");
  assert_saga_call(call_to("Shipping/Quote"), id, "ship");

  advance_ms(3);
  reply_error(call_to("Shipping/Quote"), BT_GRPC_FAILED_PRECONDITION,
              "no route");
  assert_string_equal(fx.trace,
                      "start Orders/Create @0; "
                      "start Payments/Charge @0; "
                      "start Inventory/Reserve @0; "
                      "start Shipping/Quote @0; "
                      "finish FAILED_PRECONDITION step 'ship' failed: no "
                      "route @3; "
                      "start Inventory/Release @3; "
                      "start Payments/Refund @3");
  upcall *release = call_to("Inventory/Release");
  assert_saga_call(release, id, "compensate:stock");
  assert_string_equal(release->md_keys, "baton-saga-id,baton-step");
  assert_int_equal(release->timeout_ms, 5000); /* the default */
  Engt__ReleaseReq *rel =
      REQUEST_OF(release, Engt__ReleaseReq, engt__release_req);
  assert_int_equal(rel->n_ids, 2);
  assert_string_equal(rel->ids[0], "r-1");
  assert_string_equal(rel->ids[1], "r-2");
  assert_string_equal(rel->order_id, "o-1");
  upcall *refund = call_to("Payments/Refund");
  assert_saga_call(refund, id, "compensate:pay");
  assert_int_equal(refund->timeout_ms, 2000);
  Engt__RefundReq *ref = REQUEST_OF(refund, Engt__RefundReq, engt__refund_req);
  assert_string_equal(ref->payment_id, "p-1");
  assert_string_equal(ref->order_id, "o-1");
  assert_int_equal(ref->amount, 1250);

  /* The order is cancelled only once the whole group is undone. */
  advance_ms(1);
  reply(release, &done_reply.base);
  assert_int_equal(fx.n_calls, 6);
  advance_ms(1);
  reply(refund, &done_reply.base);
  assert_int_equal(fx.n_calls, 7);
  upcall *cancel = call_to("Orders/Cancel");
  assert_saga_call(cancel, id, "compensate:order");
  Engt__CancelReq *can = REQUEST_OF(cancel, Engt__CancelReq, engt__cancel_req);
  assert_string_equal(can->order_id, "o-1");
  reply(cancel, &done_reply.base);
  assert_string_equal(strstr(fx.trace, "start Payments/Refund"),
                      "start Payments/Refund @3; start Orders/Cancel @5");

  char saga_id[48];
  snprintf(saga_id, sizeof(saga_id), "%s", id);
  read_log();
  assert_int_equal(logged.n, 1);
  const logged_saga *s = &logged.sagas[0];
  assert_string_equal(s->id, saga_id);
  assert_string_equal(s->flow, "engt.Front/Book");
  assert_string_equal(gw_sagalog_state_name((gw_saga_state)s->state),
                      "COMPENSATED");
  assert_int_equal(s->n_steps, 3); /* ship compensates nothing: not logged */
  assert_step(s, 0, "order", GW_STEP_COMPENSATED);
  assert_step(s, 1, "pay", GW_STEP_COMPENSATED);
  assert_step(s, 2, "stock", GW_STEP_COMPENSATED);
}

/* A member failing with a code after which it may have applied
 * (UNAVAILABLE) and a member still in flight (cancelled) are both
 * compensated, but only once the cancelled call has reported: nothing may
 * apply after its undo. */
static void test_saga_compensates_in_flight_steps_after_they_end(void **state) {
  book_until_group_sent();
  advance_ms(2);
  reply_error(call_to("Payments/Charge"), BT_GRPC_UNAVAILABLE,
              "card network down");
  assert_string_equal(fx.trace,
                      "start Orders/Create @0; "
                      "start Payments/Charge @0; "
                      "start Inventory/Reserve @0; "
                      "cancel Inventory/Reserve @2; "
                      "finish UNAVAILABLE step 'pay' failed: card network "
                      "down @2");
  assert_int_equal(fx.n_calls, 3);

  advance_ms(1);
  report_cancelled(call_to("Inventory/Reserve"));
  assert_int_equal(fx.n_calls, 5);
  upcall *release = call_to("Inventory/Release");
  upcall *refund = call_to("Payments/Refund");
  assert_ptr_equal(release, &fx.calls[3]);
  assert_ptr_equal(refund, &fx.calls[4]);
  /* Built before the steps answered: their responses read as empty. */
  Engt__ReleaseReq *rel =
      REQUEST_OF(release, Engt__ReleaseReq, engt__release_req);
  assert_int_equal(rel->n_ids, 0);
  assert_string_equal(rel->order_id, "o-1");
  Engt__RefundReq *ref = REQUEST_OF(refund, Engt__RefundReq, engt__refund_req);
  assert_string_equal(ref->payment_id, "");
  assert_int_equal(ref->amount, 1250);
  reply(release, &done_reply.base);
  reply(refund, &done_reply.base);
  reply(call_to("Orders/Cancel"), &done_reply.base);
  assert_string_equal(strstr(fx.trace, "down @2; "),
                      "down @2; "
                      "start Inventory/Release @3; "
                      "start Payments/Refund @3; "
                      "start Orders/Cancel @3");

  read_log();
  assert_int_equal(logged.n, 1);
  assert_string_equal(
      gw_sagalog_state_name((gw_saga_state)logged.sagas[0].state),
      "COMPENSATED");
  assert_step(&logged.sagas[0], 1, "pay", GW_STEP_COMPENSATED);
  assert_step(&logged.sagas[0], 2, "stock", GW_STEP_COMPENSATED);
}

/* A failing compensation is retried after its backoff (the fake clock
 * decides when); one that gives up leaves the saga COMPENSATION_FAILED,
 * and the earlier steps are still undone. */
static void test_saga_compensation_retries_then_gives_up(void **state) {
  script_rand(7, 0);
  book_until_ship_sent();
  reply_error(call_to("Shipping/Quote"), BT_GRPC_FAILED_PRECONDITION,
              "no route");
  reply(call_to("Inventory/Release"), &done_reply.base);
  upcall *first = call_to("Payments/Refund");
  reply_error(first, BT_GRPC_UNAVAILABLE, "ledger down");
  /* backoff 100 ms: 50 + 7 % 51 = 57 ms */
  assert_string_equal(armed_delays(), "57");
  advance_ms(56);
  assert_int_equal(fx.n_calls, 6);
  advance_ms(1);
  assert_int_equal(fx.n_calls, 7);
  upcall *second = call_to("Payments/Refund");
  assert_ptr_not_equal(second, first);
  assert_int_equal(second->timeout_ms, 2000);
  assert_int_equal(second->req_len, first->req_len);
  assert_memory_equal(second->req, first->req, first->req_len);

  reply_error(second, BT_GRPC_INTERNAL, "ledger broken"); /* 2 of 2 */
  reply(call_to("Orders/Cancel"), &done_reply.base);
  assert_string_equal(strstr(fx.trace, "start Inventory/Release"),
                      "start Inventory/Release @0; "
                      "start Payments/Refund @0; "
                      "start Payments/Refund @57; "
                      "start Orders/Cancel @57");
  assert_int_equal(fx.rand_calls, 1);

  read_log();
  const logged_saga *s = &logged.sagas[0];
  assert_string_equal(gw_sagalog_state_name((gw_saga_state)s->state),
                      "COMPENSATION_FAILED");
  assert_step(s, 0, "order", GW_STEP_COMPENSATED);
  assert_step(s, 1, "pay", GW_STEP_COMPENSATION_FAILED);
  assert_int_equal(s->steps[1].attempts, 2);
  assert_step(s, 2, "stock", GW_STEP_COMPENSATED);
  assert_int_equal(s->steps[2].attempts, 1);
}

/* A saga that succeeds answers the client only once COMPLETED is in the
 * log, and compensates nothing. */
static void test_saga_completed_is_logged_before_the_answer(void **state) {
  book_until_ship_sent();
  Engt__Shipment s = shipment_reply("trk-1");
  end_upcall(call_to("Shipping/Quote"), BT_GRPC_OK, "", &s.base);
  assert_false(fx.client.finished); /* COMPLETED not yet durable */
  settle();
  assert_int_equal(fx.client.code, BT_GRPC_OK);
  Engt__OrderReply *answer = CLIENT_REPLY();
  assert_string_equal(answer->order_id, "o-1");
  assert_string_equal(answer->payment_id, "p-1");
  assert_int_equal(answer->n_reservations, 2);
  assert_string_equal(answer->tracking, "trk-1");
  assert_int_equal(fx.n_calls, 4);

  read_log();
  const logged_saga *saga = &logged.sagas[0];
  assert_string_equal(gw_sagalog_state_name((gw_saga_state)saga->state),
                      "COMPLETED");
  assert_step(saga, 0, "order", GW_STEP_COMMITTED);
  assert_step(saga, 1, "pay", GW_STEP_COMMITTED);
  assert_step(saga, 2, "stock", GW_STEP_COMMITTED);
}

/* ---- recovery ------------------------------------------------------------ */

/* A compensation's request bytes as logged. */
typedef struct logged_bytes {
  uint8_t bytes[64];
  size_t len;
} logged_bytes;

static void append_step(gw_sagalog *log, const char *id, const char *step,
                        int index, gw_step_state state,
                        const ProtobufCMessage *comp, logged_bytes *out) {
  assert_true(protobuf_c_message_get_packed_size(comp) <= sizeof(out->bytes));
  out->len = protobuf_c_message_pack(comp, out->bytes);
  gw_saga_record rec = {.kind = GW_REC_STEP,
                        .saga_id = id,
                        .step = step,
                        .step_index = index,
                        .step_state = state,
                        .comp_request = out->bytes,
                        .comp_request_len = out->len};
  gw_sagalog_append(log, &rec, NULL, NULL, NULL);
}

/* What the compensations of recovered-1 must send, as logged. */
static logged_bytes logged_cancel, logged_refund, logged_release;

/* A Book saga as a gateway that died leaves it: RUNNING, order and the
 * step at index 2 (named pay_name) committed, stock STARTED (in flight). */
static void log_running_saga(const char *pay_name) {
  char err[256];
  gw_sagalog_opts o = {.sqlite_path = fx.db};
  gw_sagalog *log = gw_sagalog_open(&o, err, sizeof(err));
  assert_non_null(log);
  Engt__OrderRequest req = order_request();
  uint8_t req_bytes[128];
  gw_saga_record start = {.kind = GW_REC_SAGA_START,
                          .saga_id = "recovered-1",
                          .flow = "engt.Front/Book",
                          .request = req_bytes,
                          .request_len =
                              protobuf_c_message_pack(&req.base, req_bytes)};
  gw_sagalog_append(log, &start, NULL, NULL, NULL);
  logged_bytes started;
  Engt__CancelReq none = ENGT__CANCEL_REQ__INIT;
  append_step(log, "recovered-1", "order", 1, GW_STEP_STARTED, &none.base,
              &started);
  Engt__CancelReq cancel = ENGT__CANCEL_REQ__INIT;
  cancel.order_id = "o-9";
  append_step(log, "recovered-1", "order", 1, GW_STEP_COMMITTED, &cancel.base,
              &logged_cancel);
  Engt__RefundReq refund = ENGT__REFUND_REQ__INIT;
  refund.payment_id = "p-9";
  refund.order_id = "o-9";
  refund.amount = 990;
  append_step(log, "recovered-1", pay_name, 2, GW_STEP_COMMITTED, &refund.base,
              &logged_refund);
  Engt__ReleaseReq release = ENGT__RELEASE_REQ__INIT;
  release.order_id = "o-9";
  append_step(log, "recovered-1", "stock", 3, GW_STEP_STARTED, &release.base,
              &logged_release);
  gw_sagalog_close(log); /* commits what is queued */
}

static void assert_sent(const upcall *u, const logged_bytes *b) {
  assert_int_equal(u->req_len, b->len);
  assert_memory_equal(u->req, b->bytes, b->len);
}

/* A saga found RUNNING in the log at start is compensated from what the log
 * holds (the latest request per step), in reverse order, the group's
 * members together, with the saga's id; it ends COMPENSATED. */
static void test_recovery_compensates_the_logged_steps(void **state) {
  log_running_saga("pay");
  start_worker();
  assert_string_equal(fx.trace, "start Inventory/Release @0; "
                                "start Payments/Refund @0");
  upcall *release = call_to("Inventory/Release");
  assert_saga_call(release, "recovered-1", "compensate:stock");
  assert_sent(release, &logged_release);
  upcall *refund = call_to("Payments/Refund");
  assert_saga_call(refund, "recovered-1", "compensate:pay");
  assert_int_equal(refund->timeout_ms, 2000);
  assert_sent(refund, &logged_refund);
  reply(refund, &done_reply.base);
  assert_int_equal(fx.n_calls, 2);
  reply(release, &done_reply.base);
  upcall *cancel = call_to("Orders/Cancel");
  assert_saga_call(cancel, "recovered-1", "compensate:order");
  assert_sent(cancel, &logged_cancel);
  reply(cancel, &done_reply.base);
  assert_int_equal(fx.n_calls, 3);

  read_log();
  assert_int_equal(logged.n, 1);
  const logged_saga *s = &logged.sagas[0];
  assert_string_equal(s->id, "recovered-1");
  assert_string_equal(gw_sagalog_state_name((gw_saga_state)s->state),
                      "COMPENSATED");
  assert_step(s, 0, "order", GW_STEP_COMPENSATED);
  assert_step(s, 1, "pay", GW_STEP_COMPENSATED);
  assert_step(s, 2, "stock", GW_STEP_COMPENSATED);
}

/* A logged step that is no longer the flow's step at its index (the flow
 * changed): nothing is sent, the saga is left RUNNING for an operator. */
static void test_recovery_leaves_a_saga_whose_flow_changed(void **state) {
  log_running_saga("charge");
  start_worker();
  assert_int_equal(fx.n_calls, 0);
  read_log();
  assert_int_equal(logged.n, 1);
  assert_string_equal(
      gw_sagalog_state_name((gw_saga_state)logged.sagas[0].state), "RUNNING");
}

#define ENGINE_TEST(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
#define RECOVERY_TEST(name)                                                    \
  cmocka_unit_test_setup_teardown(name, setup_loaded, teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
      ENGINE_TEST(test_sequence_maps_fields_through_steps),
      ENGINE_TEST(test_parallel_joins_when_all_answered),
      ENGINE_TEST(test_parallel_failure_cancels_the_group),
      ENGINE_TEST(test_client_cancel_cancels_backend_calls),
      ENGINE_TEST(test_branch_then_fails_with_rendered_message),
      ENGINE_TEST(test_branch_else_runs_its_steps),
      ENGINE_TEST(test_branch_when_false_skips_the_step),
      ENGINE_TEST(test_retry_backs_off_exactly_then_gives_up),
      ENGINE_TEST(test_retry_success_answers_with_the_retry),
      ENGINE_TEST(test_retry_only_on_listed_codes),
      ENGINE_TEST(test_retry_not_past_the_deadline),
      ENGINE_TEST(test_deadline_client_bounds_step_timeouts),
      ENGINE_TEST(test_deadline_flow_timeout_bounds_step_timeouts),
      ENGINE_TEST(test_deadline_none_leaves_step_timeouts),
      ENGINE_TEST(test_saga_compensates_in_reverse_group_together),
      ENGINE_TEST(test_saga_compensates_in_flight_steps_after_they_end),
      ENGINE_TEST(test_saga_compensation_retries_then_gives_up),
      ENGINE_TEST(test_saga_completed_is_logged_before_the_answer),
      RECOVERY_TEST(test_recovery_compensates_the_logged_steps),
      RECOVERY_TEST(test_recovery_leaves_a_saga_whose_flow_changed),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
