/* gateway.c: the gateway as a whole — loads config, descriptors and flows,
 * makes the server and its listeners, registers every flow and every routed
 * method as a method of the server (so dispatch is the runtime's hash
 * lookup), and gives each worker its own upstream channels. */
#include "gateway.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proxy/proxy.h"

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
  gw_flow_compile_all(gw->cfg, gw->reg, gw->arena, &gw->flows, diag);
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
  gw_saga_close(gw->sagas);
  for (int i = 0; gw->workers && i < gw->n_workers; i++)
    bt_free(gw->workers[i]);
  gw_registry_free(gw->reg);
  bt_free(gw->workers);
  bt_arena_free(gw->arena);
  bt_free(gw);
}

static void worker_start(bt_loop *loop, int index, void *ud) {
  gw_gateway *gw = ud;
  gw_worker *w = bt_calloc(1, sizeof(*w));
  w->cfg = gw->cfg;
  w->loop = loop;
  w->index = index;
  w->up = gw_upstream_new(loop, gw->cfg);
  w->sagas = gw->sagas;
  gw->workers[index] = w;
  gw_worker_set_current(w);
  if (w->sagas)
    gw_saga_worker_start(w);
}

static void worker_stop(bt_loop *loop, int index, void *ud) {
  gw_gateway *gw = ud;
  gw_worker *w = gw->workers[index];
  if (!w)
    return;
  /* Callbacks still to come (log completions run by detach, cancelled
   * calls reporting on the loop's last turns) see `stopping` and start
   * nothing new; w itself lives until the gateway is freed. */
  w->stopping = 1;
  if (w->sagas)
    gw_saga_worker_stop(w);
  gw_upstream_free(w->up);
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
                        .invoke = gw_engine_invoke};
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

/* What the runtime reports (a listener at its connection limit, ...). */
static void log_runtime(int level, const char *msg, void *ud) {
  static const char *const names[] = {"error", "warning", "info"};
  fprintf(stderr, "baton-gateway: %s: %s\n",
          level >= 0 && level <= 2 ? names[level] : "info", msg);
}

int gw_gateway_start(gw_gateway *gw) {
  gw_config *cfg = gw->cfg;
  if (cfg->saga_line) {
    char err[512];
    gw->sagas = gw_saga_open(cfg, &gw->flows, err, sizeof(err));
    if (!gw->sagas) {
      fprintf(stderr, "baton-gateway: %s:%d: saga log: %s\n", cfg->path,
              cfg->saga_line, err);
      return -1;
    }
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
