/* gateway.h (gateway): the assembly — the running gateway, made of the
 * config (config/), the descriptors (proto/), compiled flows (flow/), the
 * saga log (saga/) and each worker's upstream channels (proxy/). Only
 * main.c uses it (and gateway.c, which implements it). */
#ifndef GW_GATEWAY_H
#define GW_GATEWAY_H

#include <baton/baton.h>

#include "config/config.h"
#include "core/core.h"
#include "flow/flow.h"
#include "proto/proto.h"
#include "saga/saga.h"

typedef struct gw_gateway {
  bt_arena *arena; /* config, plans: freed with the gateway */
  gw_config *cfg;
  gw_registry *reg;
  gw_flows flows;
  bt_server *server;
  gw_worker **workers;
  int n_workers;
  gw_sagas *sagas; /* NULL when no flow compensates */
} gw_gateway;

/* Loads config, descriptors and flows. Every error goes to diag; returns
 * NULL when there was any. */
gw_gateway *gw_gateway_load(const char *config_path, gw_diag *diag);
void gw_gateway_free(gw_gateway *gw);
/* Opens the saga log, makes the server (listeners, flows, routes) and
 * starts its workers. Returns 0, or -1 after saying why on stderr. */
int gw_gateway_start(gw_gateway *gw);
/* Drains and stops (from the main thread, once a stop signal came). */
void gw_gateway_shutdown(gw_gateway *gw);
void gw_gateway_wait(gw_gateway *gw);

#endif
