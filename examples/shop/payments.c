/* payments.c: shop-payments, the Payments backend of the order example.
 *
 * Charge answers charge "ch-<order_id>" for amount_cents, APPROVED unless
 * the card_token says otherwise (tests drive the flow's branches with it):
 *   tok_declined     status DECLINED (the call itself succeeds)
 *   tok_slow         answers after 500 ms (a timer: the loop never blocks)
 *   tok_unavailable  UNAVAILABLE, always (retries, then the step's failure)
 *   tok_flaky        UNAVAILABLE on the first attempt for an order id, then
 *                    APPROVED (remembers only the last order id it failed)
 * A negative amount is INVALID_ARGUMENT.
 *
 *   shop-payments --port=N [--use_tls=true ...]  (bt_serve's flags: --help) */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "common.h"
#include "shop/v1/shop.baton.h"

#define SLOW_MS 500

static pthread_mutex_t flaky_mu = PTHREAD_MUTEX_INITIALIZER;
static char flaky_last[128]; /* the order id tok_flaky failed last */

/* 1 when this is tok_flaky's first attempt for order_id. */
static int flaky_first_attempt(const char *order_id) {
  pthread_mutex_lock(&flaky_mu);
  int first = strncmp(flaky_last, order_id, sizeof flaky_last - 1) != 0;
  if (first)
    snprintf(flaky_last, sizeof flaky_last, "%s", order_id);
  pthread_mutex_unlock(&flaky_mu);
  return first;
}

static void answer(bt_call *call, const Shop__V1__ChargeRequest *req) {
  Shop__V1__Charge charge = SHOP__V1__CHARGE__INIT;
  charge.id = shop_sprintf(call, "ch-%s", req->order_id);
  charge.amount_cents = req->amount_cents;
  charge.status = strcmp(req->card_token, "tok_declined") == 0
                      ? SHOP__V1__PAY_STATUS__DECLINED
                      : SHOP__V1__PAY_STATUS__APPROVED;
  shop_reply(call, &charge.base);
}

/* tok_slow's timer; req lives in the call's arena, so it is still there. */
static void answer_late(bt_call *call, void *ud) {
  if (!shop_gone(call))
    answer(call, ud);
}

static void charge(bt_call *call, const Shop__V1__ChargeRequest *req,
                   void *ud) {
  shop_observe(call);
  const char *tok = req->card_token;
  if (req->amount_cents < 0) {
    bt_call_finish(call, BT_GRPC_INVALID_ARGUMENT, "negative amount_cents");
  } else if (!strcmp(tok, "tok_unavailable") ||
             (!strcmp(tok, "tok_flaky") &&
              flaky_first_attempt(req->order_id))) {
    bt_call_finish(call, BT_GRPC_UNAVAILABLE, "card processor unavailable");
  } else if (!strcmp(tok, "tok_slow")) {
    bt_call_after(call, SLOW_MS, answer_late, (void *)req);
  } else {
    answer(call, req);
  }
}

static const Shop__V1__Payments_BatonHandlers handlers = {.charge = charge,
                                                          .stats = shop_stats};

static int setup(bt_server *server, void *ud) {
  return shop__v1__payments__baton_register(server, &handlers, ud);
}

int main(int argc, char **argv) {
  static const bt_serve_app app = {.name = "shop-payments", .setup = setup};
  return bt_serve(argc, argv, &app);
}
