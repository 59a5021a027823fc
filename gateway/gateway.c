/* gateway.c: the gateway as a whole — loads config, descriptors and flows,
 * makes the server and its listeners, registers every flow and every routed
 * method as a method of the server (so dispatch is the runtime's hash
 * lookup), and gives each worker its own upstream channels. */
#include "gateway.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include <baton/status.h>

static _Thread_local gw_worker *current_worker;

gw_worker *gw_worker_current(void) {
  return current_worker;
}

gw_gateway *gw_gateway_load(const char *config_path, gw_diag *diag) {
  gw_gateway *gw = bt_calloc(1, sizeof(*gw));
  gw->arena = bt_arena_new(65536);
  /* Go as far as possible so --check reports config, descriptor and flow
   * errors in one run; any error at all and the gateway does not start. */
  gw->cfg = gw_config_load_partial(config_path, gw->arena, diag);
  if (!gw->cfg || !gw->cfg->descriptors)
    goto fail;
  char err[512];
  gw->reg = gw_registry_load(gw->cfg->descriptors, err, sizeof(err));
  if (!gw->reg) {
    gw_diag_error(diag, gw->cfg->path, gw->cfg->descriptors_line, "%s", err);
    goto fail;
  }
  gw_flows_compile(gw->cfg, gw->reg, gw->arena, &gw->flows, diag);
  /* Routes name their backend; resolve it once, not per request. */
  for (size_t i = 0; i < gw->cfg->n_routes; i++) {
    gw_route_config *r = &gw->cfg->routes[i];
    for (size_t k = 0; k < gw->cfg->n_backends; k++)
      if (r->backend && strcmp(gw->cfg->backends[k].name, r->backend) == 0)
        r->backend_index = k;
  }
  if (gw_diag_count(diag) > 0)
    goto fail;
  return gw;
fail:
  gw_gateway_free(gw);
  return NULL;
}

void gw_gateway_free(gw_gateway *gw) {
  if (!gw)
    return;
  bt_server_free(gw->server);
  gw_sagalog_close(gw->log);
  for (int i = 0; gw->workers && i < gw->n_workers; i++)
    bt_free(gw->workers[i]);
  gw_saga_recovered_free(gw);
  gw_registry_free(gw->reg);
  bt_free(gw->workers);
  bt_arena_free(gw->arena);
  bt_free(gw);
}

static void takeover_tick(void *ud) {
  gw_worker *w = ud;
  /* PostgreSQL: sagas of gateways whose lease ran out become ours. */
  gw_saga_recover(w);
  bt_timer_start(w->takeover, w->gw->cfg->saga_lease_ms);
}

static void worker_start(bt_loop *loop, int index, void *ud) {
  gw_gateway *gw = ud;
  gw_worker *w = bt_calloc(1, sizeof(*w));
  w->gw = gw;
  w->loop = loop;
  w->index = index;
  w->up = gw_upstreams_new(loop, gw->cfg);
  gw->workers[index] = w;
  current_worker = w;
  if (gw->log) {
    gw_sagalog_attach_loop(gw->log, loop);
    if (index == 0) {
      /* Sagas a crash left unfinished (claimed before serving). */
      gw_saga_recover_claimed(w);
      if (gw->cfg->saga_postgres) {
        w->takeover = bt_timer_new(loop, takeover_tick, w);
        bt_timer_start(w->takeover, gw->cfg->saga_lease_ms);
      }
    }
  }
}

static void worker_stop(bt_loop *loop, int index, void *ud) {
  gw_gateway *gw = ud;
  gw_worker *w = gw->workers[index];
  if (!w)
    return;
  /* Callbacks still to come (log completions run by detach, cancelled
   * calls reporting on the loop's last turns) see `stopping` and start
   * nothing new; w itself lives until the gateway is freed. Unfinished
   * sagas stay in the log for the next start. */
  w->stopping = 1;
  bt_timer_free(w->takeover);
  w->takeover = NULL;
  if (gw->log)
    gw_sagalog_detach_loop(gw->log, loop);
  gw_upstreams_free(w->up);
  w->up = NULL;
}

/* ---- registering flows and routed methods ---------------------------- */

typedef struct route_collect {
  gw_gateway *gw;
  bt_method_desc *methods;
  const void **handlers;
  size_t n, cap;
} route_collect;

static int is_flow(const gw_gateway *gw, const gw_method *m) {
  for (size_t i = 0; i < gw->flows.n; i++)
    if (gw->flows.flows[i].method == m)
      return 1;
  return 0;
}

static void collect_routed(const gw_method *m, void *ud) {
  route_collect *rc = ud;
  if (is_flow(rc->gw, m))
    return;
  const gw_route_config *best = gw_route_find(rc->gw->cfg, m->path);
  if (!best)
    return;
  gw_route_binding *b = bt_arena_calloc(rc->gw->arena, sizeof(*b));
  b->route = best;
  b->single_response = !m->server_streaming;
  if (rc->n == rc->cap) {
    rc->cap = rc->cap ? rc->cap * 2 : 16;
    rc->methods = bt_realloc(rc->methods, rc->cap * sizeof(*rc->methods));
    rc->handlers = bt_realloc(rc->handlers, rc->cap * sizeof(*rc->handlers));
  }
  /* The method's own kind: for unary and server-streaming ones the runtime
   * holds the call until its one request message is complete. */
  bt_call_kind kind =
      m->client_streaming
          ? (m->server_streaming ? BT_CALL_BIDI_STREAMING
                                 : BT_CALL_CLIENT_STREAMING)
          : (m->server_streaming ? BT_CALL_SERVER_STREAMING : BT_CALL_UNARY);
  rc->methods[rc->n] = (bt_method_desc){
      .path = m->path, .kind = kind, .invoke = gw_route_invoke};
  rc->handlers[rc->n] = b;
  rc->n++;
}

/* One single-method service per flow and per routed method: each carries
 * its own handlers pointer (the plan or the route) back to invoke. */
static int register_one(gw_gateway *gw, const bt_method_desc *d,
                        const void *handlers) {
  bt_method_desc *copy = bt_arena_alloc(gw->arena, sizeof(*copy));
  *copy = *d;
  bt_service_desc *svc = bt_arena_calloc(gw->arena, sizeof(*svc));
  svc->name = d->path;
  svc->n_methods = 1;
  svc->methods = copy;
  return bt_server_add_service(gw->server, svc, handlers, gw);
}

static int register_methods(gw_gateway *gw) {
  for (size_t i = 0; i < gw->flows.n; i++) {
    const gw_flow *f = &gw->flows.flows[i];
    bt_method_desc d = {.path = f->method->path,
                        .kind = BT_CALL_UNARY,
                        .invoke = gw_flow_invoke};
    if (register_one(gw, &d, f) != 0)
      return -1;
  }
  route_collect rc = {.gw = gw};
  gw_registry_each_method(gw->reg, collect_routed, &rc);
  int rv = 0;
  for (size_t i = 0; i < rc.n && rv == 0; i++)
    rv = register_one(gw, &rc.methods[i], rc.handlers[i]);
  bt_free(rc.methods);
  bt_free(rc.handlers);
  /* Paths the descriptors do not list still match routes by prefix. */
  bt_server_set_fallback(gw->server, gw_route_invoke, gw);
  return rv;
}

/* The saga log's options from the config. */
gw_sagalog_opts gw_saga_log_opts(const gw_config *cfg) {
  gw_sagalog_opts o = {.sqlite_path = cfg->saga_sqlite,
                       .postgres = cfg->saga_postgres,
                       .owner = cfg->saga_owner,
                       .lease_ms = cfg->saga_lease_ms,
                       .group_commit_us = cfg->saga_group_commit_us};
  return o;
}

/* What the runtime reports (a listener at its connection limit, ...). */
static void log_runtime(int level, const char *msg, void *ud) {
  static const char *const names[] = {"error", "warning", "info"};
  fprintf(stderr, "baton-gateway: %s: %s\n",
          level >= 0 && level <= 2 ? names[level] : "info", msg);
}

int gw_gateway_start(gw_gateway *gw) {
  gw_config *cfg = gw->cfg;
  if (cfg->saga_line) {
    if (!cfg->saga_lease_ms)
      cfg->saga_lease_ms = 10000;
    char err[512];
    gw_sagalog_opts so = gw_saga_log_opts(cfg);
    gw->log = gw_sagalog_open(&so, err, sizeof(err));
    if (!gw->log) {
      fprintf(stderr, "baton-gateway: %s:%d: saga log: %s\n", cfg->path,
              cfg->saga_line, err);
      return -1;
    }
    /* Before any worker serves: nothing claimed here can be running. */
    if (gw_saga_claim_own(gw) < 0)
      fprintf(stderr, "baton-gateway: cannot read the saga log for "
                      "recovery\n");
  }
  bt_server_opts o;
  bt_server_opts_init(&o);
  o.workers = cfg->workers;
  o.max_recv_message = cfg->max_recv_message;
  o.max_concurrent_streams = cfg->max_concurrent_streams;
  o.max_header_list = cfg->max_header_list;
  o.idle_timeout_ms = cfg->idle_timeout_ms;
  o.handshake_timeout_ms = cfg->handshake_timeout_ms;
  o.connection_buffer = cfg->connection_buffer;
  o.process_buffer = cfg->process_buffer;
  o.buffer_timeout_ms = cfg->buffer_timeout_ms;
  o.stream_buffer = cfg->stream_buffer;
  o.request_header_timeout_ms = cfg->request_header_timeout_ms;
  o.stream_idle_timeout_ms = cfg->stream_idle_timeout_ms;
  o.max_connections = cfg->max_connections;
  o.glitch_burst = cfg->glitch_burst;
  o.glitch_rate = cfg->glitch_rate;
  /* Flows and routes decode with the gateway's own limits (dynmsg): the
   * runtime sees raw methods only. */
  gw->server = bt_server_new(&o);
  bt_server_set_logger(gw->server, log_runtime, NULL);
  for (size_t i = 0; i < cfg->n_listeners; i++) {
    const gw_listen_config *l = &cfg->listeners[i];
    bt_tls_opts tls = {.cert_file = l->tls.cert,
                       .key_file = l->tls.key,
                       .ca_file = l->tls.ca,
                       .require_client_cert = l->tls.require_client_cert};
    if (bt_server_listen(gw->server, l->host, l->port,
                         l->has_tls ? &tls : NULL) != 0)
      return -1;
    fprintf(stderr, "baton-gateway: listening on %s:%d (%s)\n", l->host,
            bt_server_port(gw->server, i), l->has_tls ? "TLS" : "h2c");
  }
  if (register_methods(gw) != 0)
    return -1;
  long n = cfg->workers > 0 ? cfg->workers : sysconf(_SC_NPROCESSORS_ONLN);
  gw->n_workers = n > 0 ? (int)n : 1;
  gw->workers = bt_calloc((size_t)gw->n_workers, sizeof(*gw->workers));
  bt_server_on_worker_start(gw->server, worker_start, gw);
  bt_server_on_worker_stop(gw->server, worker_stop, gw);
  return bt_server_start(gw->server);
}

void gw_gateway_shutdown(gw_gateway *gw) {
  if (gw->server)
    bt_server_shutdown(gw->server);
}

void gw_gateway_wait(gw_gateway *gw) {
  if (gw->server)
    bt_server_wait(gw->server);
}

/* ---- metadata sent upstream ------------------------------------------ */

/* xoshiro256** per thread, seeded once from getrandom: trace and saga ids
 * need to be unique, not secret, and a syscall per id showed up in the
 * profile of every flow call. */
static _Thread_local uint64_t rng_state[4];
static _Thread_local int rng_seeded;

static uint64_t rotl(uint64_t x, int k) {
  return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(void) {
  if (!rng_seeded) {
    if (getrandom(rng_state, sizeof(rng_state), 0) != sizeof(rng_state)) {
      uint64_t seed = (uint64_t)bt_now_ns() ^ (uint64_t)(uintptr_t)&rng_seeded;
      for (int i = 0; i < 4; i++) { /* splitmix64 */
        seed += 0x9e3779b97f4a7c15ull;
        uint64_t z = seed;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        rng_state[i] = z ^ (z >> 31);
      }
    }
    rng_seeded = 1;
  }
  uint64_t *s = rng_state;
  uint64_t result = rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

void gw_random_hex(char *out, size_t n) {
  static const char hex[] = "0123456789abcdef";
  uint64_t bits = 0;
  for (size_t i = 0; i < n; i++) {
    if (i % 16 == 0)
      bits = rng_next();
    out[i] = hex[bits & 15];
    bits >>= 4;
  }
  out[n] = 0;
}

bt_metadata *gw_forward_metadata(const gw_config *cfg, bt_call *call,
                                 bt_arena *arena) {
  bt_metadata *md = bt_metadata_new(arena);
  const bt_metadata *in = bt_call_request_metadata(call);
  for (size_t i = 0; i < cfg->n_forward_metadata; i++) {
    const char *key = cfg->forward_metadata[i];
    for (size_t k = 0; k < bt_metadata_count(in); k++) {
      const char *ikey;
      const uint8_t *value;
      size_t len;
      bt_metadata_at(in, k, &ikey, &value, &len);
      if (strcmp(ikey, key) == 0)
        bt_metadata_add(md, ikey, strlen(ikey), value, len);
    }
  }
  /* W3C trace context: forward the caller's, or start a trace here. */
  size_t len;
  const uint8_t *tp = bt_metadata_get(in, "traceparent", &len);
  if (tp) {
    bt_metadata_add(md, "traceparent", 11, tp, len);
  } else {
    /* 00-<trace id: 32 hex>-<span id: 16 hex>-01 */
    char buf[56];
    memcpy(buf, "00-", 3);
    gw_random_hex(buf + 3, 32);
    buf[35] = '-';
    gw_random_hex(buf + 36, 16);
    memcpy(buf + 52, "-01", 4);
    bt_metadata_add(md, "traceparent", 11, buf, 55);
  }
  return md;
}
