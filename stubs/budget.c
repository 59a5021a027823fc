/* budget.c: per-connection and process-wide buffer budgets (budget.h). */
#include "budget.h"

#include <stdatomic.h>
#include <stdint.h>

static atomic_size_t process_used;
static atomic_size_t process_limit;
/* Whether process_used is over the limit: recomputed whenever the count
 * moves (a step at a time), so the hot path reads one flag instead of two
 * counters. */
static atomic_int process_state;
#define OVER 1

static void update_state(size_t used) {
  size_t limit = atomic_load_explicit(&process_limit, memory_order_relaxed);
  if (used > SIZE_MAX / 2)
    used = 0; /* a thread's releases published before another's charges */
  atomic_store_explicit(&process_state, limit && used > limit ? OVER : 0,
                        memory_order_relaxed);
}
/* This thread's charges not yet added to process_used (may be negative). */
static _Thread_local long long thread_pending;
static _Thread_local size_t thread_released;

static void publish(void) {
  size_t used;
  if (thread_pending >= 0)
    used = atomic_fetch_add_explicit(&process_used, (size_t)thread_pending,
                                     memory_order_relaxed) +
           (size_t)thread_pending;
  else
    used = atomic_fetch_sub_explicit(&process_used, (size_t)-thread_pending,
                                     memory_order_relaxed) -
           (size_t)-thread_pending;
  thread_pending = 0;
  update_state(used);
}

static void note(long long delta) {
  thread_pending += delta;
  if (thread_pending >= (long long)BT_BUDGET_BATCH ||
      thread_pending <= -(long long)BT_BUDGET_BATCH)
    publish();
}

void bt__budget_flush_thread(void) {
  publish();
}

void bt__budget_init(bt_budget *b, size_t limit) {
  b->used = 0;
  b->limit = limit;
}

void bt__budget_charge(bt_budget *b, size_t n) {
  b->used += n;
  note((long long)n);
}

void bt__budget_release(bt_budget *b, size_t n) {
  /* Releasing more than was charged is a bug of the holder; clamp rather
   * than wrap so the limit keeps working. */
  if (n > b->used)
    n = b->used;
  b->used -= n;
  thread_released += n;
  note(-(long long)n);
}

size_t bt__budget_take_released(void) {
  size_t n = thread_released;
  thread_released = 0;
  return n;
}

void bt__budget_set_process_limit(size_t limit) {
  atomic_store_explicit(&process_limit, limit, memory_order_relaxed);
  update_state(bt__budget_process_used());
}

size_t bt__budget_process_limit(void) {
  return atomic_load_explicit(&process_limit, memory_order_relaxed);
}

size_t bt__budget_process_used(void) {
  size_t used = atomic_load_explicit(&process_used, memory_order_relaxed);
  /* A thread's releases may be published before another's charges. */
  return used > SIZE_MAX / 2 ? 0 : used;
}

static int process_is(int bit) {
  return (atomic_load_explicit(&process_state, memory_order_relaxed) & bit) !=
         0;
}

int bt__budget_exceeded(const bt_budget *b) {
  return (b && b->limit && b->used > b->limit) || process_is(OVER);
}

int bt__budget_relieved(const bt_budget *b) {
  /* The hysteresis is the connection's own: a process over half its limit
   * because of other connections must not keep this one paused (its
   * partial messages could never complete and bring the process down). */
  return (!b->limit || b->used <= b->limit / 2) && !process_is(OVER);
}
