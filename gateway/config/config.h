/* config.h (gateway/config: the folder's contract, with diag.h and ynode.h):
 * the gateway's YAML configuration, checked and turned into plain structs. Keys
 * are declared as tables (key, type, range, default); an unknown key, a wrong
 * type or a value out of range is an error naming the file, the line and the
 * key. The `flows` section is kept as YAML nodes: the flow compiler checks it
 * against the descriptors. */
#ifndef GW_CONFIG_H
#define GW_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include <baton/arena.h>

#include "diag.h"
#include "ynode.h"

typedef struct gw_tls_config {
  const char *cert; /* paths resolved against the config file's folder */
  const char *key;
  const char *ca;
  int require_client_cert; /* listeners only */
  const char *server_name; /* backends only: SNI and the verified name */
  int verify_hostname;     /* backends only; default 1 */
} gw_tls_config;

typedef struct gw_listen_config {
  const char *host; /* "0.0.0.0", "::", "127.0.0.1" ... */
  int port;
  int has_tls;
  gw_tls_config tls;
  int line;
} gw_listen_config;

typedef struct gw_endpoint {
  const char *host;
  int port;
} gw_endpoint;

typedef struct gw_backend_config {
  const char *name;
  gw_endpoint *endpoints;
  size_t n_endpoints;
  int has_tls;
  gw_tls_config tls;
  uint32_t connect_timeout_ms; /* default 1000 */
  uint32_t connections;        /* per endpoint and worker; default 2 */
  uint32_t max_streams;        /* in flight per connection; default 100 */
  uint32_t max_recv_message;   /* default 4 MiB */
  uint32_t max_pending;        /* calls waiting for a stream; 1024 */
  uint32_t pending_timeout_ms; /* how long one may wait; 5 s */
  uint32_t max_header_list;    /* response headers + trailers; 64 KiB */
  size_t buffer;               /* bytes buffered per channel; 64 MiB */
  int line;
} gw_backend_config;

/* A route's timeout when its config sets none: limits.route_timeout. */
#define GW_TIMEOUT_UNSET UINT32_MAX

typedef struct gw_route_config {
  const char *prefix;     /* "/pkg.Service/" or "/pkg.Service/Method" */
  const char *backend;    /* a key of backends */
  size_t backend_index;   /* into backends, resolved at load */
  uint32_t timeout_ms;    /* 0: only the client's deadline (resolved from
                             limits.route_timeout when unset) */
  int timeout_is_default; /* timeout_ms came from limits.route_timeout */
  int line;
} gw_route_config;

typedef struct gw_config {
  const char *path; /* the config file */
  const char *dir;  /* its folder: relative paths are resolved against it */
  gw_listen_config *listeners;
  size_t n_listeners;
  const char *descriptors; /* FileDescriptorSet path, resolved */
  int descriptors_line;
  int workers; /* default 0 = one per core */
  /* limits */
  uint32_t max_recv_message;          /* default 4 MiB */
  uint32_t max_concurrent_streams;    /* default 1000 */
  uint32_t max_header_list;           /* default 16 KiB */
  uint32_t idle_timeout_ms;           /* default 300 s */
  uint32_t handshake_timeout_ms;      /* default 10 s */
  uint32_t max_message_depth;         /* nested messages; default 64 */
  size_t connection_buffer;           /* default 32 MiB */
  size_t process_buffer;              /* default 1 GiB; 0 = none */
  uint32_t buffer_timeout_ms;         /* default 5 s */
  size_t stream_buffer;               /* default 1 MiB */
  uint32_t decoded_factor;            /* decoded request <= factor x wire */
  size_t decoded_floor;               /* + floor bytes; 16, 1 MiB */
  uint32_t request_header_timeout_ms; /* default 10 s; 0 = none */
  uint32_t stream_idle_timeout_ms;    /* default 5 min; 0 = none */
  uint32_t max_connections;           /* per listener; 10000; 0 = none */
  uint32_t glitch_burst;              /* default 1000 */
  uint32_t glitch_rate;               /* per second; default 33 */
  uint32_t step_timeout_ms;           /* a step without timeout; default 10 s */
  uint32_t route_timeout_ms; /* a route without timeout; 60 s; 0 = none */
  gw_backend_config *backends;
  size_t n_backends;
  gw_route_config *routes;
  size_t n_routes;
  const char **forward_metadata; /* request metadata copied to backends */
  size_t n_forward_metadata;
  /* saga_log: where flows with compensations record their progress */
  const char *saga_sqlite;   /* SQLite file, resolved; or NULL */
  const char *saga_postgres; /* libpq connection string; or NULL */
  const char *saga_owner;    /* this gateway's id for leases; NULL: host:pid */
  uint32_t saga_lease_ms;    /* default 10 s */
  uint32_t saga_group_commit_us; /* default 1000 us */
  int saga_line;                 /* 0: no saga_log section */
  gw_ynode *flows; /* map: "pkg.Service/Method" -> flow node, or NULL */
  gw_ynode *root;
} gw_config;

/* Loads and checks path. Every problem goes to diag; returns NULL when
 * there was any. All memory comes from arena. */
gw_config *gw_config_load(const char *path, bt_arena *arena, gw_diag *diag);
/* As gw_config_load, but also returns the config when diag got errors
 * (NULL only when the file is not a YAML map), every bad value left at its
 * default or NULL: for `--check`, to go on and compile the flows so one
 * run reports every problem. Never serve with it when diag has errors. */
gw_config *gw_config_load_partial(const char *path, bt_arena *arena,
                                  gw_diag *diag);
/* As gw_config_load from an already parsed tree (for tests). */
gw_config *gw_config_from_yaml(const char *path, gw_ynode *root,
                               bt_arena *arena, gw_diag *diag);
const gw_backend_config *gw_config_backend(const gw_config *c,
                                           const char *name);

/* Value parsers shared with the flow compiler; each returns 0 or -1. */
/* "250ms", "2s", "1m", "1h", "500us" (a bare number is an error). */
int gw_config_parse_duration_ms(const char *s, uint32_t *ms);
/* "4MiB", "16KiB", "1024" (bytes). */
int gw_config_parse_size(const char *s, uint32_t *bytes);
/* "host:port" or "[v6]:port". host is copied into arena. */
int gw_config_parse_hostport(const char *s, bt_arena *arena, const char **host,
                             int *port);

#endif
