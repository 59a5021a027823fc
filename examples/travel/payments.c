/* payments.c: travel-payments, the Payments backend of the flight-booking
 * saga (proto/travel/v1/travel.proto).
 *
 * Pay captures a payment "pay-<n>" (card_token "tok_declined": the card is
 * declined, FAILED_PRECONDITION); Refund, the saga's compensation, refunds
 * it. Refund must be safe for a payment that never happened: an unknown or
 * already refunded id changes nothing and is recorded as "refund-noop"; an
 * empty id means "the one this saga's pay step made", if any.
 *
 *   travel-payments --port=N [switches: see common.h]  (bt_serve's flags:
 * --help) */
#include <string.h>

#include "common.h"
#include "travel/v1/travel.baton.h"

static int pay(bt_call *call, const void *r, const travel_saga *saga,
               const ProtobufCMessage **resp, const char **message) {
  const Travel__V1__PayRequest *req = r;
  if (req->reservation_id[0] == '\0' || req->amount_cents < 0) {
    *message = "a payment needs a reservation_id and amount_cents >= 0";
    return BT_GRPC_INVALID_ARGUMENT;
  }
  if (strcmp(req->card_token, "tok_declined") == 0) {
    *message = travel_sprintf(call, "card declined for reservation %s",
                              req->reservation_id);
    return BT_GRPC_FAILED_PRECONDITION;
  }
  Travel__V1__Payment *p = bt_arena_alloc(bt_call_arena(call), sizeof *p);
  travel__v1__payment__init(p);
  p->id = travel_sprintf(call, "pay-%ld", travel_next_id());
  p->amount_cents = req->amount_cents;
  p->status = "CAPTURED";
  travel_record_add(p->id, p->status, saga, req->reservation_id,
                    req->amount_cents, "%lld cents for %s",
                    (long long)req->amount_cents, req->reservation_id);
  travel_op("pay", p->id, saga);
  *resp = &p->base;
  return BT_GRPC_OK;
}

static int refund(bt_call *call, const void *r, const travel_saga *saga,
                  const ProtobufCMessage **resp, const char **message) {
  const Travel__V1__RefundRequest *req = r;
  travel_record *rec = req->payment_id[0]
                           ? travel_record_find(req->payment_id)
                           : travel_record_of_compensated_step(saga);
  Travel__V1__Payment *p = bt_arena_alloc(bt_call_arena(call), sizeof *p);
  travel__v1__payment__init(p);
  p->id = rec ? rec->key : req->payment_id;
  if (!rec || strcmp(rec->status, "REFUNDED") == 0) {
    travel_op("refund-noop", p->id, saga);
  } else {
    travel_record_set_status(rec, "REFUNDED");
    travel_op("refund", rec->key, saga);
  }
  if (rec) {
    p->amount_cents = rec->amount;
    p->status = rec->status;
  }
  *resp = &p->base; /* packed before the lock is released */
  return BT_GRPC_OK;
}

static void on_pay(bt_call *call, const Travel__V1__PayRequest *req, void *ud) {
  travel_handle(call, "Pay", req, pay);
}

static void on_refund(bt_call *call, const Travel__V1__RefundRequest *req,
                      void *ud) {
  travel_handle(call, "Refund", req, refund);
}

static const Travel__V1__Payments_BatonHandlers handlers = {
    .pay = on_pay,
    .refund = on_refund,
    .get = travel_get,
    .reset = travel_reset,
    .configure = travel_configure};

static int setup(bt_server *server, void *ud) {
  return travel__v1__payments__baton_register(server, &handlers, ud);
}

int main(int argc, char **argv) {
  bt_serve_app app = travel_app("travel-payments", setup);
  return bt_serve(argc, argv, &app);
}
