/* common.h: what the four shop backends share — their command line, the
 * server's life (listen, "listening on PORT", SIGTERM drains), and the Stats
 * method every backend service serves so end-to-end tests can see what
 * reached a backend: calls, cancellations, the deadline left on arrival and
 * the last traceparent and authorization metadata. */
#ifndef SHOP_COMMON_H
#define SHOP_COMMON_H

#include <baton/baton.h>

#include "shop/v1/common.pb-c.h"

/* Registers the backend's service on server; returns 0 or a BT_ERR_*. */
typedef int (*shop_register_fn)(bt_server *server);

/* The whole main of a backend: parses
 *   --port=N [--host=ADDR] [--workers=N]
 *   [--use_tls=true [--cert=FILE] [--key=FILE]]
 * registers with reg, serves until SIGTERM or SIGINT and returns the exit
 * status (2 for bad flags). name prefixes error messages. */
int shop_serve(const char *name, int argc, char **argv, shop_register_fn reg);

/* Counts call for Stats and records its deadline, traceparent and
 * authorization; counts it again if it gets cancelled. Every handler but
 * Stats calls it first. It takes the call's bt_call_on_cancel slot: a
 * handler that waits learns of a cancel through bt_call_after, which then
 * fires at once. */
void shop_observe(bt_call *call);

/* The Stats handler, the same for every backend service (all share
 * StatsRequest and StatsResponse). */
void shop_stats(bt_call *call, const Shop__V1__StatsRequest *req, void *ud);

/* Sends resp and finishes the call OK (INTERNAL if it could not be sent). */
void shop_reply(bt_call *call, const ProtobufCMessage *resp);

/* For a handler resumed by bt_call_after: when the call was cancelled,
 * finishes it and returns 1 (the handler must not touch it again). */
int shop_gone(bt_call *call);

/* printf into the call's arena. */
char *shop_sprintf(bt_call *call, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
