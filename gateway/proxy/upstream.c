/* upstream.c: a worker's channels to the backends. Each worker has its own
 * channel per endpoint (no locks on the call path), each spreading calls over
 * up to `connections` HTTP/2 connections of at most `max_streams` calls,
 * filled one after the other and opened as load needs them: one connection to a
 * grpc++ server is served on about one core, and crowded ones cost it more CPU
 * per call. */
#include <stdio.h>

#include "proxy.h"

typedef struct upstream_backend {
  bt_channel **channels; /* one per endpoint */
  size_t n;
  size_t next;
} upstream_backend;

struct gw_upstreams {
  upstream_backend *backends;
  size_t n;
};

static bt_channel *open_channel(bt_loop *loop, const gw_backend_config *b,
                                const gw_endpoint *ep) {
  bt_channel_opts o;
  bt_channel_opts_init(&o);
  o.host = ep->host;
  o.port = ep->port;
  o.connect_timeout_ms = b->connect_timeout_ms;
  o.connections = (int)b->connections;
  o.max_recv_message = b->max_recv_message;
  o.max_streams = b->max_streams;
  o.max_pending = b->max_pending;
  o.pending_timeout_ms = b->pending_timeout_ms;
  o.max_header_list = b->max_header_list;
  o.channel_buffer = b->buffer;
  char name[320];
  snprintf(name, sizeof(name), "backend '%s' (%s:%d)", b->name, ep->host,
           ep->port);
  o.name = name; /* copied by bt_channel_new */
  o.backoff_initial_ms = 50;
  o.backoff_max_ms = 2000;
  if (b->has_tls) {
    o.use_tls = 1;
    o.ca_file = b->tls.ca;
    o.cert_file = b->tls.cert;
    o.key_file = b->tls.key;
    o.server_name = b->tls.server_name;
    o.verify_hostname = b->tls.verify_hostname;
  }
  bt_channel *ch;
  char err[512];
  if (bt_channel_new(loop, &o, &ch, err, sizeof(err)) != 0)
    fprintf(stderr,
            "baton-gateway: backend %s: cannot use endpoint %s:%d: %s\n",
            b->name, ep->host, ep->port, err);
  return ch;
}

gw_upstreams *gw_upstream_new(bt_loop *loop, const gw_config *cfg) {
  gw_upstreams *u = bt_calloc(1, sizeof(*u));
  u->n = cfg->n_backends;
  u->backends = bt_calloc(u->n ? u->n : 1, sizeof(*u->backends));
  for (size_t i = 0; i < u->n; i++) {
    const gw_backend_config *b = &cfg->backends[i];
    upstream_backend *ub = &u->backends[i];
    ub->channels = bt_calloc(b->n_endpoints, sizeof(*ub->channels));
    for (size_t k = 0; k < b->n_endpoints; k++) {
      bt_channel *ch = open_channel(loop, b, &b->endpoints[k]);
      if (ch)
        ub->channels[ub->n++] = ch;
    }
  }
  return u;
}

void gw_upstream_free(gw_upstreams *u) {
  if (!u)
    return;
  for (size_t i = 0; i < u->n; i++) {
    for (size_t k = 0; k < u->backends[i].n; k++)
      bt_channel_free(u->backends[i].channels[k]);
    bt_free(u->backends[i].channels);
  }
  bt_free(u->backends);
  bt_free(u);
}

bt_channel *gw_upstream_pick(gw_upstreams *u, size_t backend) {
  if (!u)
    return NULL; /* the worker is stopping */
  upstream_backend *ub = &u->backends[backend];
  if (ub->n == 0)
    return NULL;
  bt_channel *ch = ub->channels[ub->next];
  ub->next = (ub->next + 1) % ub->n;
  return ch;
}
