/* common.h: what the four shop backends' handlers share: the Stats method
 * every backend service serves so end-to-end tests can see what reached a
 * backend (calls, cancellations, the deadline left on arrival and the last
 * traceparent and authorization metadata), and reply helpers. Their main is
 * bt_serve (baton/serve.h). */
#ifndef SHOP_COMMON_H
#define SHOP_COMMON_H

#include <baton/baton.h>

#include "shop/v1/common.pb-c.h"

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
