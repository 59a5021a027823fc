/* loop.c: bt_loop, a libuv loop plus a once-per-turn flush of dirty
 * connections, and bt_timer.
 *
 * Writes are batched: code that produces output marks its connection dirty,
 * and a uv_prepare handle (run just before the loop blocks for I/O) flushes
 * every dirty connection once, so a turn that handled many frames issues one
 * write per connection. */
#include "loop_int.h"

#include <stdlib.h>
#include <time.h>

#include <baton/alloc.h>

/* Freed timers kept for reuse per loop: a flow arms and frees several per
 * call, and a fresh one costs an allocation, a handle init and a close that
 * completes only on the next loop turn. */
#define TIMER_CACHE_MAX 1024

struct bt_timer {
  uv_timer_t handle;
  bt_timer_fn fn;
  void *ud;
  bt_timer *next_free;
};

struct bt_loop {
  uv_loop_t uv;
  uv_prepare_t prepare;
  bt_flushable *dirty_head;
  bt_timer *free_timers; /* stopped, still initialized */
  size_t n_free_timers;
  int in_timer_cb; /* a timer callback is running */
};

static void flush_dirty(uv_prepare_t *prepare) {
  bt_loop *loop = prepare->data;
  /* A flush may mark other connections dirty; take the list each round. */
  while (loop->dirty_head) {
    bt_flushable *list = loop->dirty_head;
    loop->dirty_head = NULL;
    while (list) {
      bt_flushable *f = list;
      list = f->next_dirty;
      f->next_dirty = NULL;
      f->dirty = 0;
      f->flush(f);
    }
  }
}

bt_loop *bt_loop_new(void) {
  bt_loop *loop = bt_calloc(1, sizeof(*loop));
  if (uv_loop_init(&loop->uv) != 0) {
    bt_free(loop);
    return NULL;
  }
  loop->uv.data = loop;
  uv_prepare_init(&loop->uv, &loop->prepare);
  loop->prepare.data = loop;
  uv_prepare_start(&loop->prepare, flush_dirty);
  /* The prepare handle alone must not keep bt_loop_run alive. */
  uv_unref((uv_handle_t *)&loop->prepare);
  return loop;
}

static void close_any(uv_handle_t *h, void *arg) {
  if (!uv_is_closing(h))
    uv_close(h, NULL);
}

static void timer_closed(uv_handle_t *h) {
  bt_free(h->data);
}

void bt_loop_free(bt_loop *loop) {
  if (!loop)
    return;
  while (loop->free_timers) {
    bt_timer *t = loop->free_timers;
    loop->free_timers = t->next_free;
    uv_close((uv_handle_t *)&t->handle, timer_closed);
  }
  loop->n_free_timers = 0;
  /* Handles still open belong to objects their owners leaked or freed
   * without closing; close them so uv_loop_close succeeds. */
  uv_walk(&loop->uv, close_any, NULL);
  uv_run(&loop->uv, UV_RUN_DEFAULT);
  uv_loop_close(&loop->uv);
  bt_free(loop);
}

int bt_loop_run(bt_loop *loop) {
  return uv_run(&loop->uv, UV_RUN_DEFAULT);
}

int bt_loop_run_once(bt_loop *loop, int block) {
  return uv_run(&loop->uv, block ? UV_RUN_ONCE : UV_RUN_NOWAIT);
}

void bt_loop_stop(bt_loop *loop) {
  uv_stop(&loop->uv);
}

void *bt_loop_uv(bt_loop *loop) {
  return &loop->uv;
}

bt_loop *bt__loop_from_uv(uv_loop_t *uv) {
  return uv->data;
}

int64_t bt__now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Rounded up, as deadlines (bt_call_deadline) are rounded down: what is
 * left, deadline - bt_now_ms(), never overstates the time there is, so a
 * deadline passed on to a backend is never extended. */
int64_t bt_now_ms(void) {
  return (bt__now_ns() + 999999) / 1000000;
}

void bt__loop_mark_dirty(bt_loop *loop, bt_flushable *f) {
  if (f->dirty)
    return;
  f->dirty = 1;
  f->next_dirty = loop->dirty_head;
  loop->dirty_head = f;
}

void bt__loop_unmark_dirty(bt_loop *loop, bt_flushable *f) {
  if (!f->dirty)
    return;
  for (bt_flushable **p = &loop->dirty_head; *p; p = &(*p)->next_dirty) {
    if (*p == f) {
      *p = f->next_dirty;
      break;
    }
  }
  f->dirty = 0;
  f->next_dirty = NULL;
}

static void timer_fired(uv_timer_t *h) {
  bt_timer *t = h->data;
  bt_loop *loop = bt__loop_from_uv(h->loop);
  loop->in_timer_cb++;
  t->fn(t->ud);
  loop->in_timer_cb--;
}

bt_timer *bt_timer_new(bt_loop *loop, bt_timer_fn fn, void *ud) {
  bt_timer *t = loop->free_timers;
  if (t) {
    loop->free_timers = t->next_free;
    loop->n_free_timers--;
  } else {
    t = bt_calloc(1, sizeof(*t));
    uv_timer_init(&loop->uv, &t->handle);
    t->handle.data = t;
  }
  t->fn = fn;
  t->ud = ud;
  t->next_free = NULL;
  return t;
}

void bt_timer_start(bt_timer *t, uint64_t delay_ms) {
  uv_timer_start(&t->handle, timer_fired, delay_ms, 0);
}

void bt_timer_stop(bt_timer *t) {
  uv_timer_stop(&t->handle);
}

void bt_timer_free(bt_timer *t) {
  if (!t)
    return;
  uv_timer_stop(&t->handle);
  bt_loop *loop = bt__loop_from_uv(t->handle.loop);
  /* Freed from a timer callback it is closed as before: a closing handle
   * keeps this loop turn from blocking in poll, which callers that wait
   * with bt_loop_run_once(loop, 1) for what the callback did rely on. */
  if (!loop->in_timer_cb && loop->n_free_timers < TIMER_CACHE_MAX) {
    /* A stopped timer does not keep the loop alive: park it. */
    t->fn = NULL;
    t->ud = NULL;
    t->next_free = loop->free_timers;
    loop->free_timers = t;
    loop->n_free_timers++;
    return;
  }
  uv_close((uv_handle_t *)&t->handle, timer_closed);
}
