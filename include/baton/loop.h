/* baton/loop.h: the event loop a thread runs (libuv underneath) and timers.
 *
 * One loop per thread; every object created on a loop (channels, calls,
 * timers) must be used from that loop's thread only. */
#ifndef BATON_LOOP_H
#define BATON_LOOP_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Built with -fvisibility=hidden: what this header declares is exported. */
#pragma GCC visibility push(default)

typedef struct bt_loop bt_loop;
typedef struct bt_timer bt_timer;

/* A new loop; free with bt_loop_free after it stopped running. */
bt_loop *bt_loop_new(void);
/* Closes every handle still open and frees the loop; accepts NULL. */
void bt_loop_free(bt_loop *loop);
/* Runs until bt_loop_stop or nothing is left to do. Returns non-zero when
 * stopped with handles still active (libuv's uv_run). */
int bt_loop_run(bt_loop *loop);
/* Runs one iteration, blocking for I/O when block is non-zero. Returns
 * non-zero while there is more to do. */
int bt_loop_run_once(bt_loop *loop, int block);
/* Makes bt_loop_run return; callable from the loop's thread only. */
void bt_loop_stop(bt_loop *loop);
/* The underlying uv_loop_t, for code that adds its own libuv handles. */
void *bt_loop_uv(bt_loop *loop);

/* Monotonic clock in milliseconds, rounded up: the clock of deadlines
 * (bt_call_deadline, rounded down), so deadline - bt_now_ms() never
 * overstates what is left. Every time in this API is in milliseconds. */
int64_t bt_now_ms(void);

typedef void (*bt_timer_fn)(void *ud);
/* A stopped timer that calls fn(ud) on this loop. Free with bt_timer_free. */
bt_timer *bt_timer_new(bt_loop *loop, bt_timer_fn fn, void *ud);
/* (Re)arms the timer to fire once after delay_ms. */
void bt_timer_start(bt_timer *t, uint64_t delay_ms);
void bt_timer_stop(bt_timer *t);
/* Stops and frees the timer (memory released on a later loop turn); accepts
 * NULL. Safe to call from the timer's own callback. */
void bt_timer_free(bt_timer *t);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif
