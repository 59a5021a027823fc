/* seats.c: travel-seats, the Seats backend of the flight-booking saga
 * (proto/travel/v1/travel.proto). Seat assignment is the saga's last step,
 * so it has no compensation; flight_id "FULL" makes it fail
 * (RESOURCE_EXHAUSTED), which sends the saga back through the refund and
 * the cancellation.
 *
 *   travel-seats --port=N [switches: see common.h]  (bt_serve's flags: --help)
 */
#include <string.h>

#include "common.h"
#include "travel/v1/travel.baton.h"

static int assign(bt_call *call, const void *r, const travel_saga *saga,
                  const ProtobufCMessage **resp, const char **message) {
  const Travel__V1__AssignSeatRequest *req = r;
  if (req->reservation_id[0] == '\0' || req->flight_id[0] == '\0') {
    *message = "a seat needs a reservation_id and a flight_id";
    return BT_GRPC_INVALID_ARGUMENT;
  }
  if (strcmp(req->flight_id, "FULL") == 0) {
    *message =
        travel_sprintf(call, "no seat left on flight %s", req->flight_id);
    return BT_GRPC_RESOURCE_EXHAUSTED;
  }
  /* Row n for the flight's n-th seat; the letter by preference. */
  const char *letter = !strcmp(req->preference, "window")  ? "A"
                       : !strcmp(req->preference, "aisle") ? "C"
                                                           : "B";
  Travel__V1__Seat *seat = bt_arena_alloc(bt_call_arena(call), sizeof *seat);
  travel__v1__seat__init(seat);
  seat->seat = travel_sprintf(
      call, "%lld%s", (long long)travel_records_with_ref(req->flight_id) + 1,
      letter);
  travel_record_add(req->reservation_id, "ASSIGNED", saga, req->flight_id, 0,
                    "seat %s on %s", seat->seat, req->flight_id);
  travel_op("assign", req->reservation_id, saga);
  *resp = &seat->base;
  return BT_GRPC_OK;
}

static void on_assign(bt_call *call, const Travel__V1__AssignSeatRequest *req,
                      void *ud) {
  travel_handle(call, "Assign", req, assign);
}

static const Travel__V1__Seats_BatonHandlers handlers = {.assign = on_assign,
                                                         .get = travel_get,
                                                         .reset = travel_reset,
                                                         .configure =
                                                             travel_configure};

static int setup(bt_server *server, void *ud) {
  return travel__v1__seats__baton_register(server, &handlers, ud);
}

int main(int argc, char **argv) {
  bt_serve_app app = travel_app("travel-seats", setup);
  return bt_serve(argc, argv, &app);
}
