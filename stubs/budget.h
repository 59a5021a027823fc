/* budget.h (private): bytes Baton buffers on a peer's behalf, counted per
 * connection (or channel) and for the whole process, against limits.
 *
 * What counts: the parts of messages received but not yet complete, request
 * messages held for a handler, and messages queued for sending. A holder
 * charges what it allocates and releases it when freed; the owner of the
 * budget asks bt__budget_exceeded to decide to stop reading or to refuse a
 * send, and bt__budget_relieved to resume. The process total is one atomic
 * counter that each thread updates in steps of BT_BUDGET_BATCH, so the hot
 * path touches a shared cache line rarely; it may lag by a step per thread. */
#ifndef BT_BUDGET_H
#define BT_BUDGET_H

#include <stddef.h>

#define BT_BUDGET_BATCH (64u << 10)

typedef struct bt_budget {
  size_t used;
  size_t limit; /* 0: no limit of its own (the process limit still holds) */
} bt_budget;

void bt__budget_init(bt_budget *b, size_t limit);
void bt__budget_charge(bt_budget *b, size_t n);
void bt__budget_release(bt_budget *b, size_t n);
/* 1 when b (may be NULL) or the process is over its limit. */
int bt__budget_exceeded(const bt_budget *b);
/* 1 when b is at or below half of its limit and the process within its
 * own: what was stopped because of bt__budget_exceeded may start again. */
int bt__budget_relieved(const bt_budget *b);

/* The process-wide limit (0: none); set once at start (bt_server_new). */
void bt__budget_set_process_limit(size_t limit);
size_t bt__budget_process_limit(void);
/* Bytes charged by every thread (approximate, see above). */
size_t bt__budget_process_used(void);
/* Publishes this thread's pending step now (tests, thread exit). */
void bt__budget_flush_thread(void);
/* Bytes this thread released since the last call (then 0 again): a worker
 * gives memory back to the system (malloc_trim) after much was freed. */
size_t bt__budget_take_released(void);

#endif
