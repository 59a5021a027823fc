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
#include "sagalog.h"

typedef struct gw_upstreams gw_upstreams;

typedef struct gw_gateway {
  bt_arena *arena; /* config, plans: freed with the gateway */
  gw_config *cfg;
  gw_registry *reg;
  gw_flows flows;
  bt_server *server;
  struct gw_worker **workers;
  int n_workers;
  gw_sagalog *log;                /* NULL when no flow compensates */
  struct gw_recovered *recovered; /* found at start, for worker 0 */
} gw_gateway;

/* A worker thread's state; handlers find it with gw_worker_current. */
typedef struct gw_worker {
  gw_gateway *gw;
  bt_loop *loop;
  int index;
  gw_upstreams *up;
  bt_timer *takeover; /* worker 0 with PostgreSQL: lease takeovers */
  int stopping;       /* draining: no new backend calls, no log appends */
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

/* The saga log's options from the config. */
gw_sagalog_opts gw_saga_log_opts(const gw_config *cfg);

/* n random lowercase hex digits, NUL-terminated (a per-thread generator
 * seeded from the kernel: unique ids, not secrets). */
void gw_random_hex(char *out, size_t n);
/* Sagas this gateway must finish after a crash, read from its log before
 * it serves (copied out of the log's views). */
typedef struct gw_recovered gw_recovered;
/* Claims this gateway's unfinished sagas (before serving, so none of them
 * can be running here) and keeps copies for worker 0 to compensate. */
int gw_saga_claim_own(gw_gateway *gw);
/* Compensates what gw_saga_claim_own found (worker 0, once). */
void gw_saga_recover_claimed(gw_worker *w);
void gw_saga_recovered_free(gw_gateway *gw);

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
/* route.c: a routed method registered with the server: its route, and
 * whether the descriptors say its responses are a single message. */
typedef struct gw_route_binding {
  const gw_route_config *route;
  int single_response;
} gw_route_binding;
/* Proxies a call to a route's backend. handlers is a gw_route_binding
 * (NULL: find the route by prefix). */
void gw_route_invoke(bt_call *call, const ProtobufCMessage *req,
                     const void *handlers, void *ud);
/* The route whose prefix matches path best (the longest), or NULL. A prefix
 * matches on a '/' boundary or as the whole path. */
const gw_route_config *gw_route_find(const gw_config *cfg, const char *path);
int gw_route_matches(const char *prefix, const char *path);
/* saga.c: compensations, driven the same way for a live run that failed
 * and for a saga recovered from the log after a crash. */
typedef struct gw_comp_input {
  int slot;            /* the step (index into flow->steps) */
  gw_step_state state; /* STARTED / COMMITTED (or COMPENSATION_FAILED on a
                          retry): all are compensated */
  const uint8_t *req;  /* the compensation's request bytes (copied) */
  size_t len;
  uint32_t attempts;
} gw_comp_input;

/* Compensates the given steps in reverse order (a parallel group's steps
 * together), logging each outcome and the saga's end. Runs in the
 * background on w's loop. */
void gw_saga_compensate(gw_worker *w, const gw_flow *flow, const char *saga_id,
                        const gw_comp_input *in, size_t n);
/* Claims the sagas this gateway must finish (its own unfinished ones and,
 * with PostgreSQL, those of gateways whose lease expired) and compensates
 * them. Called on worker 0 at start and then every lease period. */
void gw_saga_recover(gw_worker *w);
/* The set of sagas this process is driving (live runs and compensations):
 * add returns 0 when id was there already. */
int gw_saga_live_add(const char *id);
void gw_saga_live_remove(const char *id);
/* Appends rec to the log (see gw_sagalog_append). */
void gw_saga_log(gw_worker *w, const gw_saga_record *rec, gw_sagalog_done_fn fn,
                 void *ud);
/* Metadata for a saga call: base plus baton-saga-id and baton-step.
 * The caller frees it (bt_metadata_free). */
bt_metadata *gw_saga_metadata(const bt_metadata *base, const char *saga_id,
                              const char *step, int compensation);

/* Request metadata to send upstream: the configured keys, and traceparent
 * (forwarded, or made up when the client sent none), in arena. */
bt_metadata *gw_forward_metadata(const gw_config *cfg, bt_call *call,
                                 bt_arena *arena);

#endif
