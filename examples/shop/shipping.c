/* shipping.c: shop-shipping, the Shipping backend of the order example.
 *
 * Quote waits delay_ms (a timer), then answers tracking id
 * "trk-<order_id>", eta_days 1 and cost_cents 1500 when express, else 5 and
 * 500. A request without an address (or with no country) is
 * INVALID_ARGUMENT.
 *
 *   shop-shipping --port=N [--use_tls=true ...]  (bt_serve's flags: --help) */
#include "common.h"
#include "shop/v1/shop.baton.h"

static void answer(bt_call *call, void *ud) {
  const Shop__V1__QuoteRequest *req = ud; /* in the call's arena */
  if (shop_gone(call))
    return;
  Shop__V1__Quote quote = SHOP__V1__QUOTE__INIT;
  quote.tracking_id = shop_sprintf(call, "trk-%s", req->order_id);
  quote.eta_days = req->express ? 1 : 5;
  quote.cost_cents = req->express ? 1500 : 500;
  shop_reply(call, &quote.base);
}

static void quote(bt_call *call, const Shop__V1__QuoteRequest *req, void *ud) {
  shop_observe(call);
  if (!req->address || req->address->country[0] == '\0') {
    bt_call_finish(call, BT_GRPC_INVALID_ARGUMENT,
                   "a quote needs an address with a country");
    return;
  }
  if (req->delay_ms > 0)
    bt_call_after(call, (uint64_t)req->delay_ms, answer, (void *)req);
  else
    answer(call, (void *)req);
}

static const Shop__V1__Shipping_BatonHandlers handlers = {.quote = quote,
                                                          .stats = shop_stats};

static int setup(bt_server *server, void *ud) {
  return shop__v1__shipping__baton_register(server, &handlers, ud);
}

int main(int argc, char **argv) {
  static const bt_serve_app app = {.name = "shop-shipping", .setup = setup};
  return bt_serve(argc, argv, &app);
}
