/* sagalog.h (gateway/saga): the durable saga log.
 *
 * For flows with compensations the engine records, before acting on them,
 * a saga's start, each step's start and commit (with the request its
 * compensation would send), each compensation's outcome and the end. A
 * record counts as written only once it is durable. Appends are
 * asynchronous and group-committed: one writer thread per log commits every
 * queued record in one transaction (one fsync), then tells each waiter on
 * its own event loop. Two backends: SQLite in WAL mode (embedded default)
 * and PostgreSQL (several gateways in front of the same services; a gateway
 * that dies leaves its sagas to another one through leases). */
#ifndef GW_SAGALOG_H
#define GW_SAGALOG_H

#include <stddef.h>
#include <stdint.h>

#include <baton/loop.h>

typedef struct gw_sagalog gw_sagalog;

typedef enum gw_saga_state {
  GW_SAGA_RUNNING = 0,      /* forward steps in progress */
  GW_SAGA_COMPENSATING = 1, /* undoing committed steps */
  GW_SAGA_COMPLETED = 2,    /* every step committed: the saga succeeded */
  GW_SAGA_COMPENSATED = 3,  /* failed, and every compensation was applied */
  GW_SAGA_COMPENSATION_FAILED = 4 /* a compensation gave up: needs a human */
} gw_saga_state;

typedef enum gw_step_state {
  GW_STEP_STARTED = 0,     /* sent, outcome unknown: possibly committed */
  GW_STEP_COMMITTED = 1,   /* the backend answered OK */
  GW_STEP_FAILED = 2,      /* the backend answered an error: nothing to undo */
  GW_STEP_COMPENSATED = 3, /* its compensation was applied */
  GW_STEP_COMPENSATION_FAILED = 4
} gw_step_state;

/* "RUNNING", "COMPENSATION_FAILED", ...; gw_sagalog_state_parse gives -1 for
 * an unknown name. */
const char *gw_sagalog_state_name(gw_saga_state s);
int gw_sagalog_state_parse(const char *name);

typedef enum gw_record_kind {
  GW_REC_SAGA_START, /* saga_id, flow, request (the client's request bytes) */
  GW_REC_STEP,       /* saga_id, step, step_state, comp_request, attempts */
  GW_REC_SAGA_STATE  /* saga_id, saga_state (end, or COMPENSATING) */
} gw_record_kind;

/* One record; every pointer is copied by gw_sagalog_append. */
typedef struct gw_saga_record {
  gw_record_kind kind;
  const char *saga_id;
  const char *flow;       /* SAGA_START: "pkg.Service/Method" */
  const uint8_t *request; /* SAGA_START */
  size_t request_len;
  const char *step;            /* STEP: the step's name */
  int step_index;              /* STEP: order of the step in the flow (slot) */
  gw_step_state step_state;    /* STEP */
  const uint8_t *comp_request; /* STEP: the compensation's request bytes;
                                  NULL keeps the one stored by an earlier
                                  record of the step (an empty message is a
                                  non-NULL pointer with length 0) */
  size_t comp_request_len;
  uint32_t attempts;        /* STEP: compensation attempts so far */
  gw_saga_state saga_state; /* SAGA_STATE */
} gw_saga_record;

typedef struct gw_sagalog_opts {
  const char *sqlite_path;  /* one of these two */
  const char *postgres;     /* libpq connection string */
  const char *owner;        /* this gateway's id (leases); default host:pid */
  uint32_t lease_ms;        /* PostgreSQL: a saga whose owner has not renewed
                               for this long may be taken over; default 10 s */
  uint32_t group_commit_us; /* wait up to this long to batch; default 1000 */
} gw_sagalog_opts;

/* Opens (creating the schema if needed) and starts the writer thread.
 * Returns NULL with a sentence in err. A corrupt SQLite file is an error
 * naming the file, never a crash. */
gw_sagalog *gw_sagalog_open(const gw_sagalog_opts *opts, char *err,
                            size_t errlen);
/* Commits what is queued, stops the writer and closes; accepts NULL.
 * Detach every loop first. */
void gw_sagalog_close(gw_sagalog *log);

/* Called on loop's thread once the record is durable (err 0) or could not
 * be written (err < 0). */
typedef void (*gw_sagalog_done_fn)(void *ud, int err);

/* Makes loop able to receive completions (once per loop, from its thread,
 * before its first append); gw_sagalog_detach_loop before the loop is
 * freed. A pending completion keeps the loop alive (bt_loop_run does not
 * return before it ran); an idle attachment does not. */
void gw_sagalog_attach_loop(gw_sagalog *log, bt_loop *loop);
/* From loop's thread: waits for this loop's records still being written (at
 * most one commit) and runs every outstanding callback before returning, so
 * each callback runs exactly once. */
void gw_sagalog_detach_loop(gw_sagalog *log, bt_loop *loop);
/* Queues rec (copied). fn may be NULL (fire and forget, still durable
 * before any later record of the same saga). Thread-safe; with fn, call it
 * on loop's thread, loop attached. err is BT_ERR_INVAL for an invalid
 * record (no saga_id, unknown kind or state, a length without bytes),
 * BT_ERR_CLOSED while the log is closing, BT_ERR_IO when it was not
 * written: its transaction failed (every record of it fails), or an
 * earlier record of its saga appended without fn was lost (then the saga's
 * later records fail up to and including the next one with fn, so nothing
 * durable follows a hole nobody was told about). Forbidden once
 * gw_sagalog_close returned (the log is freed). */
void gw_sagalog_append(gw_sagalog *log, const gw_saga_record *rec,
                       bt_loop *loop, gw_sagalog_done_fn fn, void *ud);

/* ---- reading (blocking; at start-up and for the sagas command) ------- */

typedef struct gw_saga_step_view {
  const char *name;
  int index;
  gw_step_state state;
  const uint8_t *comp_request;
  size_t comp_request_len;
  uint32_t attempts;
} gw_saga_step_view;

typedef struct gw_saga_view {
  const char *saga_id;
  const char *flow;
  const uint8_t *request;
  size_t request_len;
  gw_saga_state state;
  const char *owner;
  int64_t created_ms; /* wall clock, ms since the epoch */
  int64_t updated_ms;
  gw_saga_step_view *steps; /* by index order; the latest state per step */
  size_t n_steps;
} gw_saga_view;

/* Calls fn for every saga in state (or every saga when state < 0), oldest
 * first; the view is valid during the call. fn may append but must not call
 * the functions of this section (they are serialized). Returns the count or
 * < 0 on error. */
int gw_sagalog_list(gw_sagalog *log, int state,
                    void (*fn)(const gw_saga_view *s, void *ud), void *ud);
/* Claims the sagas that must be driven to an end by this gateway: its own
 * unfinished ones (RUNNING, COMPENSATING) and, with PostgreSQL, those whose
 * owner's lease expired (taken over with FOR UPDATE SKIP LOCKED); calls fn
 * for each. With SQLite every unfinished saga in the file counts as this
 * gateway's, so call it before serving. Returns the count or < 0. */
int gw_sagalog_claim_unfinished(gw_sagalog *log,
                                void (*fn)(const gw_saga_view *s, void *ud),
                                void *ud);
/* Renews this gateway's lease on its sagas (PostgreSQL; no-op for SQLite).
 * The log's writer thread also does this every lease_ms / 3. */
int gw_sagalog_renew(gw_sagalog *log);
/* Puts a COMPENSATION_FAILED saga back to COMPENSATING owned by this
 * gateway, its COMPENSATION_FAILED steps back to COMMITTED with attempts 0
 * (the sagas --retry command). Returns 0, BT_ERR_NOTFOUND, BT_ERR_STATE
 * or BT_ERR_IO. */
int gw_sagalog_retry(gw_sagalog *log, const char *saga_id);

#endif
