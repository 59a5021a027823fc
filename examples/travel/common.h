/* common.h: what the three travel backends share — their command line (for
 * bt_serve, which runs their main) and the machinery around each business
 * call that makes them fit a saga: idempotency by (baton-saga-id, baton-step),
 * switches that make a method slow or unavailable, and the state tests read
 * back (Get, Reset, Configure).
 *
 * A backend's own code is an apply function per business method. It runs
 * under the backend's one lock, so it reads and changes the records below
 * without locking, and it sees each (saga id, step) at most once. */
#ifndef TRAVEL_COMMON_H
#define TRAVEL_COMMON_H

#include <stdint.h>

#include <baton/baton.h>

#include "travel/v1/state.pb-c.h"

/* The bt_serve_app of a backend: name, setup (registers its service) and
 * the switches of ConfigureRequest (proto/travel/v1/state.proto) as flags,
 * in force from the start and again after each Reset:
 *   [--delay_ms=N [--delay_methods=M1,M2] [--apply_before_delay=true]]
 *   [--unavailable_methods=M1,M2] */
bt_serve_app travel_app(const char *name, bt_serve_setup_fn setup);

/* The saga a call belongs to: its baton-saga-id and baton-step metadata,
 * "" when absent. Owned by the call. */
typedef struct travel_saga {
  const char *id;
  const char *step;
} travel_saga;

/* Applies one business call; runs under the backend's lock. Returns a gRPC
 * code: BT_GRPC_OK with *resp set (memory of the call's arena), or an error
 * with *message (a literal or the call's arena). Either answer is kept and
 * given again to a repeat of the same (saga id, step). */
typedef int (*travel_apply_fn)(bt_call *call, const void *req,
                               const travel_saga *saga,
                               const ProtobufCMessage **resp,
                               const char **message);

/* Serves one business call of method ("Create", "Pay", ...): counts it,
 * answers UNAVAILABLE when the method is switched off, holds it when a delay
 * is configured, answers a repeated (saga id, step) with the first answer
 * (counting a duplicate), and otherwise applies it with apply and remembers
 * the answer. req belongs to the call (as the stubs' requests do). */
void travel_handle(bt_call *call, const char *method, const void *req,
                   travel_apply_fn apply);

/* ---- under the lock: for apply functions only ------------------------ */

/* A reservation, payment or seat. Strings are bt_malloc'd, owned by the
 * backend's state; the record lives until a Reset. */
typedef struct travel_record {
  char *key;     /* "res-<n>", "pay-<n>", the reservation id of a seat */
  char *status;  /* "HELD", "CANCELLED", "CAPTURED", "REFUNDED", "ASSIGNED" */
  char *saga_id; /* of the call that created it */
  char *step;
  char *ref;    /* reservations and seats: flight; payments: reservation */
  char *detail; /* for Get: "flight F1", "seat 3A on F1", ... */
  int64_t amount;
} travel_record;

/* Appends operation op on key to the log Get shows, with saga's id and step
 * and the time. */
void travel_op(const char *op, const char *key, const travel_saga *saga);
/* Creates the record key (copies every string); detail is printf-like. */
travel_record *travel_record_add(const char *key, const char *status,
                                 const travel_saga *saga, const char *ref,
                                 int64_t amount, const char *detail_fmt, ...)
    __attribute__((format(printf, 6, 7)));
/* The record key, or NULL. */
travel_record *travel_record_find(const char *key);
/* The record the forward step of a compensating call created: for step
 * "compensate:reserve" of saga S, the record created by step "reserve" of
 * S. NULL when there is none (the step never happened) or saga is not a
 * compensation. */
travel_record *travel_record_of_compensated_step(const travel_saga *saga);
void travel_record_set_status(travel_record *r, const char *status);
/* How many records have this ref (seats: assigned so far on a flight). */
int64_t travel_records_with_ref(const char *ref);
/* The next number of a process-wide counter (ids: "res-<n>"); not reset. */
long travel_next_id(void);

/* printf into the call's arena. */
char *travel_sprintf(bt_call *call, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- the test methods every backend service serves -------------------- */

void travel_get(bt_call *call, const Travel__V1__GetStateRequest *req,
                void *ud);
void travel_reset(bt_call *call, const Travel__V1__ResetRequest *req, void *ud);
void travel_configure(bt_call *call, const Travel__V1__ConfigureRequest *req,
                      void *ud);

#endif
