/* saga.h (gateway/saga): the contract of sagas — the process's saga state
 * (the durable log of sagalog.h and what a crash left unfinished),
 * compensations, and the saga metadata of backend calls. The engine logs a
 * flow's steps through it and hands it a failed saga to compensate. */
#ifndef GW_SAGA_H
#define GW_SAGA_H

#include <stddef.h>
#include <stdint.h>

#include <baton/baton.h>

#include "config/config.h"
#include "core/core.h"
#include "flow/flow.h"
#include "sagalog.h"

/* The process's sagas: the log, the sagas it must finish after a crash,
 * worker 0's lease takeover. One per gateway, shared by its workers. */
typedef struct gw_sagas gw_sagas;

/* The saga log's options from the config. */
gw_sagalog_opts gw_saga_log_opts(const gw_config *cfg);

/* Opens the log the config names and claims this gateway's unfinished
 * sagas, before any worker serves (so none of them can be running here).
 * flows resolve a recovered saga's flow by name; both must outlive the
 * result. Returns NULL with a sentence in err when the log cannot be
 * opened. A log that opens but cannot be read for recovery is reported on
 * stderr and the gateway serves anyway. */
gw_sagas *gw_saga_open(const gw_config *cfg, const gw_flows *flows, char *err,
                       size_t errlen);
/* Closes the log (after every worker stopped). NULL is a no-op. */
void gw_saga_close(gw_sagas *s);

/* On each worker thread as it starts (w->sagas set): the log's completions
 * run on w's loop; worker 0 compensates what gw_saga_open found and, with
 * PostgreSQL, takes over sagas whose owner's lease ran out, every lease
 * period. */
void gw_saga_worker_start(gw_worker *w);
/* As the worker stops: no more takeovers or completions on its loop.
 * Unfinished sagas stay in the log for the next start. */
void gw_saga_worker_stop(gw_worker *w);

/* A step to compensate: the same for a live run that failed and for a saga
 * recovered from the log after a crash. */
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
/* The set of sagas this process is driving (live runs and compensations):
 * add returns 0 when id was there already. */
int gw_saga_live_add(const char *id);
void gw_saga_live_remove(const char *id);
/* Appends rec to the log (see gw_sagalog_append); fn runs on w's loop. */
void gw_saga_log(gw_worker *w, const gw_saga_record *rec, gw_sagalog_done_fn fn,
                 void *ud);
/* Metadata for a saga call: base plus baton-saga-id and baton-step.
 * The caller frees it (bt_metadata_free). */
bt_metadata *gw_saga_metadata(const bt_metadata *base, const char *saga_id,
                              const char *step, int compensation);

#endif
