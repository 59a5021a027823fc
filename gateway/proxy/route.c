/* route.c: passthrough routes. A call whose path matches a route's prefix
 * is proxied to the route's backend as it is — all four call kinds, every
 * message as bytes, metadata and trailers both ways, the client's deadline
 * and cancellation carried over — with back-pressure both ways: a side whose
 * output queue is over its high-water mark stops the other side's reading
 * (its flow-control window is not granted) until the queue is below half
 * the mark again, as Envoy's watermark buffers do. */
#include <stdio.h>
#include <string.h>

#include <baton/status.h>

#include "proxy.h"

#include "core/core.h"

typedef struct proxy {
  bt_call *down;      /* the client's call; NULL once finished */
  bt_client_call *up; /* the backend call; NULL once done */
} proxy;

static void proxy_maybe_free(proxy *p) {
  if (!p->down && !p->up)
    bt_free(p);
}

static void copy_metadata(const bt_metadata *md, bt_call *call,
                          int (*add)(bt_call *, const char *, const void *,
                                     size_t)) {
  for (size_t i = 0; i < bt_metadata_count(md); i++) {
    const char *key;
    const uint8_t *value;
    size_t len;
    bt_metadata_at(md, i, &key, &value, &len);
    add(call, key, value, len); /* reserved keys are refused: fine */
  }
}

/* ---- backend to client ----------------------------------------------- */

static void up_headers(bt_client_call *c, const bt_metadata *md, void *ud) {
  proxy *p = ud;
  if (!p->down)
    return;
  copy_metadata(md, p->down, bt_call_add_initial_metadata);
  bt_call_send_headers(p->down);
}

static void up_message(bt_client_call *c, const ProtobufCMessage *m,
                       const uint8_t *bytes, size_t len, void *ud) {
  proxy *p = ud;
  if (!p->down)
    return;
  bt_call_send_bytes(p->down, bytes, len);
  /* The client reads slower than the backend sends: stop granting the
   * backend window until the client caught up (down_writable). */
  if (p->down && !bt_call_writable(p->down))
    bt_client_call_read_pause(c);
}

static void up_writable(bt_client_call *c, void *ud) {
  proxy *p = ud;
  if (p->down)
    bt_call_read_resume(p->down);
}

static void up_done(bt_client_call *c, const bt_status *st, void *ud) {
  proxy *p = ud;
  p->up = NULL;
  if (p->down) {
    copy_metadata(st->trailers, p->down, bt_call_add_trailing_metadata);
    bt_call_finish(p->down, st->code, st->message);
    p->down = NULL;
  }
  proxy_maybe_free(p);
}

static const bt_client_callbacks up_cbs = {
    .on_headers = up_headers,
    .on_message = up_message,
    .on_done = up_done,
    .on_writable = up_writable,
};

/* ---- client to backend ----------------------------------------------- */

static void down_message(bt_call *call, const ProtobufCMessage *m,
                         const uint8_t *bytes, size_t len, void *ud) {
  proxy *p = ud;
  if (!p->up)
    return;
  bt_client_call_send_bytes(p->up, bytes, len);
  if (p->up && !bt_client_call_writable(p->up))
    bt_call_read_pause(call);
}

static void down_writable(bt_call *call, void *ud) {
  proxy *p = ud;
  if (p->up)
    bt_client_call_read_resume(p->up);
}

static void down_half_close(bt_call *call, void *ud) {
  proxy *p = ud;
  if (p->up)
    bt_client_call_close_send(p->up);
}

static void down_cancel(bt_call *call, void *ud) {
  proxy *p = ud;
  /* The client left (or its deadline passed): reset the backend call too;
   * its on_done will free the proxy. */
  if (p->up) {
    bt_client_call_cancel(p->up);
    bt_client_call_charge_to(p->up, NULL);
  }
  bt_call_finish(call, BT_GRPC_CANCELLED, NULL);
  p->down = NULL;
  proxy_maybe_free(p);
}

int gw_route_matches(const char *prefix, const char *path) {
  size_t len = strlen(prefix);
  if (strncmp(path, prefix, len) != 0)
    return 0;
  /* "/pkg.Service/Get" routes that method, not "/pkg.Service/GetAdmin";
   * "/pkg.Service" routes the service, not "/pkg.ServiceAdmin/...". */
  return prefix[len - 1] == '/' || path[len] == '\0' || path[len] == '/';
}

const gw_route_config *gw_route_find(const gw_config *cfg, const char *path) {
  const gw_route_config *best = NULL;
  size_t best_len = 0;
  for (size_t i = 0; i < cfg->n_routes; i++) {
    size_t len = strlen(cfg->routes[i].prefix);
    if (len > best_len && gw_route_matches(cfg->routes[i].prefix, path)) {
      best = &cfg->routes[i];
      best_len = len;
    }
  }
  return best;
}

/* The client's metadata as it came (its user-agent goes in front of ours;
 * the channel copies what it needs), without baton-* keys: those are the
 * gateway's own (saga ids, steps), and a client must not forge them. */
static const bt_metadata *upstream_metadata(bt_call *call) {
  const bt_metadata *md = bt_call_request_metadata(call);
  size_t n = bt_metadata_count(md);
  size_t i;
  for (i = 0; i < n; i++) {
    const char *key;
    bt_metadata_at(md, i, &key, NULL, NULL);
    if (key[0] == 'b' && strncmp(key, "baton-", 6) == 0)
      break;
  }
  if (i == n)
    return md;
  bt_metadata *clean = bt_metadata_new(bt_call_arena(call));
  for (i = 0; i < n; i++) {
    const char *key;
    const uint8_t *value;
    size_t len;
    bt_metadata_at(md, i, &key, &value, &len);
    if (strncmp(key, "baton-", 6) != 0)
      bt_metadata_add(clean, key, strlen(key), value, len);
  }
  return clean;
}

void gw_route_invoke(bt_call *call, const ProtobufCMessage *req,
                     const void *handlers, void *ud) {
  gw_worker *w = gw_worker_current();
  const gw_route_binding *b = handlers;
  const gw_route_config *route =
      b ? b->route : gw_route_find(w->cfg, bt_call_path(call));
  if (!route) {
    char msg[320];
    snprintf(msg, sizeof(msg), "Method not found: %.256s", bt_call_path(call));
    bt_call_finish(call, BT_GRPC_UNIMPLEMENTED, msg);
    return;
  }
  bt_channel *ch = gw_upstream_pick(w->up, route->backend_index);
  if (!ch) {
    bt_call_finish(call, BT_GRPC_UNAVAILABLE, "backend has no usable endpoint");
    return;
  }
  int64_t deadline = bt_call_deadline(call);
  bt_call_opts opts = {.metadata = upstream_metadata(call),
                       .single_response = b && b->single_response};
  if (route->timeout_ms && deadline == INT64_MAX && route->timeout_is_default) {
    /* The default route timeout is the gateway's own bound on what a call
     * may hold: for a client that set no deadline it is enforced on the
     * client's call, to within a second and without a timer per call (the
     * backend call is cancelled with it), not sent as a grpc-timeout nobody
     * asked for. A route's own timeout is propagated. */
    bt_call_expire_after(call, route->timeout_ms);
  } else if (route->timeout_ms) {
    int64_t d = bt_now_ms() + (int64_t)route->timeout_ms;
    if (d < deadline)
      deadline = d;
  }
  if (deadline != INT64_MAX) {
    opts.timeout_ms = deadline - bt_now_ms();
    if (opts.timeout_ms <= 0)
      opts.timeout_ms = 1;
  }
  proxy *p = bt_calloc(1, sizeof(*p));
  p->down = call;
  bt_call_on_cancel(call, down_cancel, p);
  bt_call_on_writable(call, down_writable, p);
  p->up =
      bt_channel_start_call(ch, bt_call_path(call), NULL, &opts, &up_cbs, p);
  /* What the backend call buffers counts against the client's connection
   * too: a client with many paused streams runs out of its own budget. */
  bt_client_call_charge_to(p->up, call);
  bt_call_kind kind = bt_call_get_kind(call);
  if (kind == BT_CALL_UNARY || kind == BT_CALL_SERVER_STREAMING) {
    /* The runtime waited for the whole request (within the request header
     * timeout) before calling us: no backend stream is held for a client
     * that never sends it. */
    size_t len;
    const uint8_t *bytes = bt_call_request_bytes(call, &len);
    if (bt_client_call_send_bytes(p->up, bytes, len) == 0)
      bt_client_call_close_send(p->up);
    return;
  }
  bt_call_on_message(call, down_message, p);
  bt_call_on_half_close(call, down_half_close, p);
}
