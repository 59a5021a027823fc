/* common.c: the shop backends' Stats counters and reply helpers. Handlers
 * run on several worker threads, so the counters sit behind one mutex; a
 * call takes it once on arrival, which costs nothing next to the call
 * itself. The last traceparent and authorization stay allocated at exit:
 * reachable from stats, so no leak checker counts them. */
#include "common.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ---- Stats ----------------------------------------------------------- */

static struct {
  pthread_mutex_t mu;
  int64_t calls;
  int64_t cancelled;
  int64_t last_deadline_ms;
  char *last_traceparent; /* bt_malloc'd; NULL = none */
  char *last_authorization;
} stats = {PTHREAD_MUTEX_INITIALIZER, 0, 0, -1, NULL, NULL};

/* A heap copy of key's value in md, or NULL when absent. */
static char *metadata_copy(const bt_metadata *md, const char *key) {
  size_t len;
  const uint8_t *v = bt_metadata_get(md, key, &len);
  return v ? bt_strndup((const char *)v, len) : NULL;
}

static void count_cancel(bt_call *call, void *ud) {
  pthread_mutex_lock(&stats.mu);
  stats.cancelled++;
  pthread_mutex_unlock(&stats.mu);
}

void shop_observe(bt_call *call) {
  int64_t deadline = bt_call_deadline(call), left = -1;
  if (deadline != INT64_MAX) {
    left = deadline - bt_now_ms();
    if (left < 0)
      left = 0;
  }
  const bt_metadata *md = bt_call_request_metadata(call);
  /* Copied outside the lock; the old values are freed outside it too. */
  char *tp = metadata_copy(md, "traceparent");
  char *auth = metadata_copy(md, "authorization");

  pthread_mutex_lock(&stats.mu);
  stats.calls++;
  stats.last_deadline_ms = left;
  char *old_tp = stats.last_traceparent, *old_auth = stats.last_authorization;
  stats.last_traceparent = tp;
  stats.last_authorization = auth;
  pthread_mutex_unlock(&stats.mu);

  bt_free(old_tp);
  bt_free(old_auth);
  bt_call_on_cancel(call, count_cancel, NULL);
}

void shop_stats(bt_call *call, const Shop__V1__StatsRequest *req, void *ud) {
  bt_arena *arena = bt_call_arena(call);
  Shop__V1__StatsResponse resp = SHOP__V1__STATS_RESPONSE__INIT;
  char *old_tp = NULL, *old_auth = NULL;

  pthread_mutex_lock(&stats.mu);
  resp.calls = stats.calls;
  resp.cancelled = stats.cancelled;
  resp.last_deadline_ms = stats.last_deadline_ms;
  if (stats.last_traceparent)
    resp.last_traceparent = bt_arena_strndup(arena, stats.last_traceparent,
                                             strlen(stats.last_traceparent));
  if (stats.last_authorization)
    resp.last_authorization = bt_arena_strndup(
        arena, stats.last_authorization, strlen(stats.last_authorization));
  if (req->reset) {
    stats.calls = 0;
    stats.cancelled = 0;
    stats.last_deadline_ms = -1;
    old_tp = stats.last_traceparent;
    old_auth = stats.last_authorization;
    stats.last_traceparent = NULL;
    stats.last_authorization = NULL;
  }
  pthread_mutex_unlock(&stats.mu);

  bt_free(old_tp);
  bt_free(old_auth);
  shop_reply(call, &resp.base);
}

/* ---- handler helpers --------------------------------------------------- */

void shop_reply(bt_call *call, const ProtobufCMessage *resp) {
  int rv = bt_call_send(call, resp);
  if (rv < 0 && !bt_call_is_cancelled(call)) {
    bt_call_finish(call, BT_GRPC_INTERNAL, bt_strerror(rv));
    return;
  }
  bt_call_finish(call, BT_GRPC_OK, NULL);
}

int shop_gone(bt_call *call) {
  if (!bt_call_is_cancelled(call))
    return 0;
  bt_call_finish(call, BT_GRPC_CANCELLED, NULL);
  return 1;
}

char *shop_sprintf(bt_call *call, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0)
    n = 0;
  char *s = bt_arena_alloc(bt_call_arena(call), (size_t)n + 1);
  va_start(ap, fmt);
  vsnprintf(s, (size_t)n + 1, fmt, ap);
  va_end(ap);
  return s;
}
