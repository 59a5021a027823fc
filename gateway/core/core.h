/* core.h (gateway/core): what every layer under the assembly shares — the
 * worker a handler runs on (worker.c), unique ids (ids.c), and the request
 * metadata a client call forwards to its backends (forward.c). */
#ifndef GW_CORE_H
#define GW_CORE_H

#include <stddef.h>

#include <baton/baton.h>

#include "config/config.h"

struct gw_upstreams; /* proxy/: this worker's channels to the backends */
struct gw_sagas;     /* saga/: the process's sagas and their log */

/* A worker thread's state, made by the assembly (gateway.c) when the
 * runtime starts the worker; handlers find it with gw_worker_current. */
typedef struct gw_worker {
  const gw_config *cfg;
  bt_loop *loop;
  int index;
  struct gw_upstreams *up;
  struct gw_sagas *sagas; /* NULL when no flow compensates */
  int stopping;           /* draining: no new backend calls, no log appends */
} gw_worker;

/* The calling thread's worker (NULL off the worker threads). */
gw_worker *gw_worker_current(void);
/* Makes w the calling thread's worker (on the worker thread, at start). */
void gw_worker_set_current(gw_worker *w);

/* n random lowercase hex digits and a NUL into out (n + 1 bytes): a
 * per-thread generator seeded from the kernel, for unique ids (traces,
 * sagas), not secrets. */
void gw_ids_random_hex(char *out, size_t n);

/* Request metadata to send upstream: the configured forward_metadata keys,
 * and traceparent (the client's, or a new trace when it sent none), in
 * arena. */
bt_metadata *gw_forward_metadata(const gw_config *cfg, bt_call *call,
                                 bt_arena *arena);

#endif
