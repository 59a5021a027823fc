/* gateway.h (gateway, private): the running gateway — config, descriptors
 * and compiled flows shared read-only by every worker, and each worker's
 * own upstream channels. */
#ifndef GW_GATEWAY_H
#define GW_GATEWAY_H

#include <baton/baton.h>

#include "config.h"
#include "diag.h"
#include "flow.h"
#include "registry.h"

typedef struct gw_upstreams gw_upstreams;

typedef struct gw_gateway {
  bt_arena *arena; /* config, plans: freed with the gateway */
  gw_config *cfg;
  gw_registry *reg;
  gw_flows flows;
  bt_server *server;
  struct gw_worker **workers;
  int n_workers;
} gw_gateway;

/* A worker thread's state; handlers find it with gw_worker_current. */
typedef struct gw_worker {
  gw_gateway *gw;
  bt_loop *loop;
  int index;
  gw_upstreams *up;
} gw_worker;

/* Loads config, descriptors and flows. Every error goes to diag; returns
 * NULL when there was any. */
gw_gateway *gw_gateway_load(const char *config_path, gw_diag *diag);
void gw_gateway_free(gw_gateway *gw);
/* Makes the server (listeners, flows, routes) and starts its workers. */
int gw_gateway_start(gw_gateway *gw);
/* Drains and stops (safe from a signal handler). */
void gw_gateway_shutdown(gw_gateway *gw);
void gw_gateway_wait(gw_gateway *gw);

/* The calling worker thread's state. */
gw_worker *gw_worker_current(void);

/* upstream.c: per-worker channels to every backend endpoint. */
gw_upstreams *gw_upstreams_new(bt_loop *loop, const gw_config *cfg);
void gw_upstreams_free(gw_upstreams *u);
/* A channel of backend i, round-robin over its endpoints. */
bt_channel *gw_upstreams_pick(gw_upstreams *u, size_t backend);

/* engine.c: serves a flow's client-facing method. handlers is the gw_flow. */
void gw_flow_invoke(bt_call *call, const ProtobufCMessage *req,
                    const void *handlers, void *ud);
/* route.c: proxies a call to a route's backend. handlers is the
 * gw_route_config (NULL: find it by prefix). */
void gw_route_invoke(bt_call *call, const ProtobufCMessage *req,
                     const void *handlers, void *ud);
/* Request metadata to send upstream: the configured keys, and traceparent
 * (forwarded, or made up when the client sent none). */
bt_metadata *gw_forward_metadata(const gw_config *cfg, bt_call *call);

#endif
