/* reservations.c: travel-reservations, the Reservations backend of the
 * flight-booking saga (proto/travel/v1/travel.proto).
 *
 * Create holds a reservation "res-<n>"; Cancel, the saga's compensation,
 * cancels it. Cancel must be safe for a reservation that never happened
 * (the gateway died while Create was in flight): an unknown or already
 * cancelled id changes nothing and is recorded as "cancel-noop"; an empty
 * id means "the one this saga's reserve step made", if any.
 *
 *   travel-reservations --port=N [switches: see common.h]  (bt_serve's flags:
 * --help) */
#include <string.h>

#include "common.h"
#include "travel/v1/travel.baton.h"

static int create(bt_call *call, const void *r, const travel_saga *saga,
                  const ProtobufCMessage **resp, const char **message) {
  const Travel__V1__CreateReservationRequest *req = r;
  if (req->flight_id[0] == '\0') {
    *message = "a reservation needs a flight_id";
    return BT_GRPC_INVALID_ARGUMENT;
  }
  Travel__V1__Reservation *res =
      bt_arena_alloc(bt_call_arena(call), sizeof *res);
  travel__v1__reservation__init(res);
  res->id = travel_sprintf(call, "res-%ld", travel_next_id());
  res->flight_id = req->flight_id;
  res->status = "HELD";
  travel_record_add(res->id, res->status, saga, req->flight_id, 0,
                    "flight %s for %s", req->flight_id, req->customer_id);
  travel_op("create", res->id, saga);
  *resp = &res->base;
  return BT_GRPC_OK;
}

static int cancel(bt_call *call, const void *r, const travel_saga *saga,
                  const ProtobufCMessage **resp, const char **message) {
  const Travel__V1__CancelReservationRequest *req = r;
  travel_record *rec = req->reservation_id[0]
                           ? travel_record_find(req->reservation_id)
                           : travel_record_of_compensated_step(saga);
  Travel__V1__Reservation *res =
      bt_arena_alloc(bt_call_arena(call), sizeof *res);
  travel__v1__reservation__init(res);
  res->id = rec ? rec->key : req->reservation_id;
  if (!rec || strcmp(rec->status, "CANCELLED") == 0) {
    travel_op("cancel-noop", res->id, saga);
  } else {
    travel_record_set_status(rec, "CANCELLED");
    travel_op("cancel", rec->key, saga);
  }
  if (rec) {
    res->flight_id = rec->ref;
    res->status = rec->status;
  }
  *resp = &res->base; /* packed before the lock is released */
  return BT_GRPC_OK;
}

static void on_create(bt_call *call,
                      const Travel__V1__CreateReservationRequest *req,
                      void *ud) {
  travel_handle(call, "Create", req, create);
}

static void on_cancel(bt_call *call,
                      const Travel__V1__CancelReservationRequest *req,
                      void *ud) {
  travel_handle(call, "Cancel", req, cancel);
}

static const Travel__V1__Reservations_BatonHandlers handlers = {
    .create = on_create,
    .cancel = on_cancel,
    .get = travel_get,
    .reset = travel_reset,
    .configure = travel_configure};

static int setup(bt_server *server, void *ud) {
  return travel__v1__reservations__baton_register(server, &handlers, ud);
}

int main(int argc, char **argv) {
  bt_serve_app app = travel_app("travel-reservations", setup);
  return bt_serve(argc, argv, &app);
}
