/* loop_int.h (private): what the connection layer needs from bt_loop. */
#ifndef BT_LOOP_INT_H
#define BT_LOOP_INT_H

#include <uv.h>

#include <baton/loop.h>

typedef struct bt_flushable bt_flushable;
/* Something with output to produce once per loop turn (a connection). */
struct bt_flushable {
  void (*flush)(bt_flushable *f);
  bt_flushable *next_dirty;
  int dirty;
};

/* Queues f to be flushed once, right before the loop next polls for I/O:
 * every write a turn produced goes out in one batch. */
void bt__loop_mark_dirty(bt_loop *loop, bt_flushable *f);
/* Removes f from the dirty list (before freeing it). */
void bt__loop_unmark_dirty(bt_loop *loop, bt_flushable *f);
/* Monotonic clock in nanoseconds (bt_now_ms's, finer): the runtime keeps
 * deadlines and rates in ns. */
int64_t bt__now_ns(void);
/* The bt_loop that owns a uv loop (stored in uv_loop_t.data). */
bt_loop *bt__loop_from_uv(uv_loop_t *uv);

#endif
