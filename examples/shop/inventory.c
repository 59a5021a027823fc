/* inventory.c: shop-inventory, the Inventory backend of the order example.
 *
 * Reserve waits delay_ms (a timer), then answers reservation ids
 * "res-<sku>", one per item in order. A sku starting with "oos-" is out of
 * stock: the call fails with FAILED_PRECONDITION at once, without the wait,
 * which tests use to fail one branch of a parallel group while the other is
 * still running (and must be cancelled).
 *
 *   shop-inventory --port=N [--use_tls=true ...]  (bt_serve's flags: --help) */
#include <string.h>

#include "common.h"
#include "shop/v1/shop.baton.h"

static void answer(bt_call *call, void *ud) {
  const Shop__V1__ReserveRequest *req = ud; /* in the call's arena */
  if (shop_gone(call))
    return;
  Shop__V1__Reservation resv = SHOP__V1__RESERVATION__INIT;
  resv.order_id = req->order_id;
  resv.n_ids = req->n_items;
  resv.ids = bt_arena_alloc(bt_call_arena(call),
                            (req->n_items + 1) * sizeof *resv.ids);
  for (size_t i = 0; i < req->n_items; i++)
    resv.ids[i] = shop_sprintf(call, "res-%s", req->items[i]->sku);
  shop_reply(call, &resv.base);
}

static void reserve(bt_call *call, const Shop__V1__ReserveRequest *req,
                    void *ud) {
  shop_observe(call);
  for (size_t i = 0; i < req->n_items; i++) {
    const char *sku = req->items[i]->sku;
    if (strncmp(sku, "oos-", 4) == 0) {
      bt_call_finish(call, BT_GRPC_FAILED_PRECONDITION,
                     shop_sprintf(call, "out of stock: %s", sku));
      return;
    }
  }
  if (req->delay_ms > 0)
    bt_call_after(call, (uint64_t)req->delay_ms, answer, (void *)req);
  else
    answer(call, (void *)req);
}

static const Shop__V1__Inventory_BatonHandlers handlers = {.reserve = reserve,
                                                           .stats = shop_stats};

static int setup(bt_server *server, void *ud) {
  return shop__v1__inventory__baton_register(server, &handlers, ud);
}

int main(int argc, char **argv) {
  static const bt_serve_app app = {.name = "shop-inventory", .setup = setup};
  return bt_serve(argc, argv, &app);
}
