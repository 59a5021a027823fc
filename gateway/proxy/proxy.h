/* proxy.h (gateway/proxy): the contract of proxying — each worker's
 * channels to the backends (upstream.c), used by routes and flows alike,
 * and routes (route.c): client calls passed through to a backend as they
 * are. */
#ifndef GW_PROXY_H
#define GW_PROXY_H

#include <stddef.h>

#include <baton/baton.h>

#include "config/config.h"

/* upstream.c: per-worker channels to every backend endpoint. */
typedef struct gw_upstreams gw_upstreams;
gw_upstreams *gw_upstream_new(bt_loop *loop, const gw_config *cfg);
void gw_upstream_free(gw_upstreams *u);
/* A channel of backend i, round-robin over its endpoints. */
bt_channel *gw_upstream_pick(gw_upstreams *u, size_t backend);

/* route.c: a routed method registered with the server: its route, and
 * whether the descriptors say its responses are a single message. */
typedef struct gw_route_binding {
  const gw_route_config *route;
  int single_response;
} gw_route_binding;
/* Proxies a call to a route's backend on the calling worker (see
 * core.h). handlers is a gw_route_binding (NULL: find the route by
 * prefix); ud is unused. */
void gw_route_invoke(bt_call *call, const ProtobufCMessage *req,
                     const void *handlers, void *ud);
/* The route whose prefix matches path best (the longest), or NULL. A prefix
 * matches on a '/' boundary or as the whole path. */
const gw_route_config *gw_route_find(const gw_config *cfg, const char *path);
int gw_route_matches(const char *prefix, const char *path);

#endif
