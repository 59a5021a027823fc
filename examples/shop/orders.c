/* orders.c: shop-orders, the Orders backend of the order example.
 *
 * Create answers order "ord-<n>" (n counts up from 1 per process) with
 * total_cents = sum of quantity * unit_price_cents, echoing the items; it
 * refuses an empty customer_id, no items or a quantity below 1 with
 * INVALID_ARGUMENT. Cancel (the saga's compensation) accepts any "ord-" id.
 *
 *   shop-orders --port=N [--use_tls=true ...]  (bt_serve's flags: --help) */
#include <stdatomic.h>
#include <string.h>

#include "common.h"
#include "shop/v1/shop.baton.h"

static atomic_long next_order = 1;

static void create(bt_call *call, const Shop__V1__CreateOrderRequest *req,
                   void *ud) {
  shop_observe(call);
  if (req->customer_id[0] == '\0' || req->n_items == 0) {
    bt_call_finish(call, BT_GRPC_INVALID_ARGUMENT,
                   "an order needs a customer_id and at least one item");
    return;
  }
  int64_t total = 0;
  for (size_t i = 0; i < req->n_items; i++) {
    const Shop__V1__Item *it = req->items[i];
    if (it->quantity < 1) {
      bt_call_finish(call, BT_GRPC_INVALID_ARGUMENT,
                     shop_sprintf(call, "items[%zu] (%s): quantity %d < 1", i,
                                  it->sku, (int)it->quantity));
      return;
    }
    total += (int64_t)it->quantity * it->unit_price_cents;
  }
  Shop__V1__Order order = SHOP__V1__ORDER__INIT;
  order.id = shop_sprintf(call, "ord-%ld", atomic_fetch_add(&next_order, 1));
  order.total_cents = total;
  order.n_items = req->n_items; /* the request's items, owned by the call */
  order.items = req->items;
  order.customer_id = req->customer_id;
  shop_reply(call, &order.base);
}

static void cancel(bt_call *call, const Shop__V1__CancelOrderRequest *req,
                   void *ud) {
  shop_observe(call);
  if (strncmp(req->order_id, "ord-", 4) != 0) {
    bt_call_finish(call, BT_GRPC_NOT_FOUND,
                   shop_sprintf(call, "no order %s", req->order_id));
    return;
  }
  Shop__V1__CancelOrderResponse resp = SHOP__V1__CANCEL_ORDER_RESPONSE__INIT;
  resp.order_id = req->order_id;
  resp.cancelled = 1;
  shop_reply(call, &resp.base);
}

static const Shop__V1__Orders_BatonHandlers handlers = {
    .create = create, .cancel = cancel, .stats = shop_stats};

static int setup(bt_server *server, void *ud) {
  return shop__v1__orders__baton_register(server, &handlers, ud);
}

int main(int argc, char **argv) {
  static const bt_serve_app app = {.name = "shop-orders", .setup = setup};
  return bt_serve(argc, argv, &app);
}
