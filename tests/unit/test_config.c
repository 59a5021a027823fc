/* Tests for config.c: a full config read into structs with its defaults,
 * and the exact "file:line: message" of each kind of mistake.
 *
 * The group runs in a temporary folder holding the files a config names
 * (descriptors, certificates), so relative paths resolve there. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <baton/alloc.h>
#include <baton/arena.h>
#include "config/config.h"

static char tmpdir[] = "/tmp/test_config_XXXXXX";
static char olddir[4096];
static const char *const files[] = {"x.pb",      "gw.crt",    "gw.key",
                                    "ca.crt",    "conf/d.pb", "conf/c.crt",
                                    "conf/c.key"};

static int group_setup(void **state) {
  if (!getcwd(olddir, sizeof(olddir)) || !mkdtemp(tmpdir) ||
      chdir(tmpdir) != 0 || mkdir("conf", 0700) != 0)
    return -1;
  for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
    FILE *fp = fopen(files[i], "w");
    if (!fp)
      return -1;
    fputs("x", fp);
    fclose(fp);
  }
  return 0;
}

static int group_teardown(void **state) {
  for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
    unlink(files[i]);
  unlink("gw.yaml");
  rmdir("conf");
  if (chdir(olddir) != 0)
    return -1;
  return rmdir(tmpdir);
}

typedef struct fx {
  bt_arena *arena;
  gw_diag diag;
  long live;
} fx;

static int setup(void **state) {
  fx *f = calloc(1, sizeof(*f));
  f->live = bt_alloc_live();
  f->arena = bt_arena_new(0);
  gw_diag_init(&f->diag);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fx *f = *state;
  gw_diag_clear(&f->diag);
  bt_arena_free(f->arena);
  assert_int_equal(bt_alloc_live(), f->live);
  free(f);
  return 0;
}

static gw_config *load_as(fx *f, const char *name, const char *text) {
  gw_ynode *root = gw_ynode_parse(name, text, strlen(text), f->arena, &f->diag);
  if (!root)
    return NULL;
  return gw_config_from_yaml(name, root, f->arena, &f->diag);
}

static gw_config *load(fx *f, const char *text) {
  return load_as(f, "gw.yaml", text);
}

static void expect_errors(fx *f, const char *const *want, size_t n) {
  if (f->diag.n != n) {
    for (size_t i = 0; i < f->diag.n; i++)
      print_message("got: %s\n", f->diag.lines[i]);
  }
  assert_int_equal(f->diag.n, n);
  for (size_t i = 0; i < n; i++)
    assert_string_equal(f->diag.lines[i], want[i]);
}

/* Loads BASE followed by more (so more starts at line 3) and expects
 * exactly one error. */
#define BASE "listen: { address: \"127.0.0.1:8443\" }\ndescriptors: x.pb\n"

static void expect_one(fx *f, const char *more, const char *want) {
  char text[2048];
  snprintf(text, sizeof(text), "%s%s", BASE, more);
  gw_diag_clear(&f->diag);
  assert_null(load(f, text));
  expect_errors(f, &want, 1);
}

static const char full[] =
    "listen:\n"                                                   /* 1 */
    "  - address: \"0.0.0.0:8443\"\n"                             /* 2 */
    "    tls: { cert: gw.crt, key: gw.key, ca: ca.crt,\n"         /* 3 */
    "           require_client_cert: true }\n"                    /* 4 */
    "  - address: \"[::1]:8080\"\n"                               /* 5 */
    "descriptors: x.pb\n"                                         /* 6 */
    "workers: 4\n"                                                /* 7 */
    "limits:\n"                                                   /* 8 */
    "  max_recv_message: 8MiB\n"                                  /* 9 */
    "  max_concurrent_streams: 500\n"                             /* 10 */
    "  max_header_list: 32KiB\n"                                  /* 11 */
    "  idle_timeout: 2m\n"                                        /* 12 */
    "  handshake_timeout: 1500ms\n"                               /* 13 */
    "  max_message_depth: 32\n"                                   /* 14 */
    "forward_metadata: [authorization, x-request-id]\n"           /* 15 */
    "backends:\n"                                                 /* 16 */
    "  orders:\n"                                                 /* 17 */
    "    endpoints: [\"127.0.0.1:50051\", \"localhost:50061\"]\n" /* 18 */
    "    tls: { ca: ca.crt, cert: gw.crt, key: gw.key,\n"         /* 19 */
    "           server_name: orders.internal, verify_hostname: false }\n"
    "    connect_timeout: 250ms\n"       /* 21 */
    "    connections: 4\n"               /* 22 */
    "    max_streams: 50\n"              /* 23 */
    "    max_recv_message: 1MB\n"        /* 24 */
    "  catalog:\n"                       /* 25 */
    "    endpoints: [\"[::1]:50052\"]\n" /* 26 */
    "    tls: { ca: ca.crt }\n"          /* 27 */
    "routes:\n"                          /* 28 */
    "  - { prefix: /shop.v1.Catalog/, backend: catalog, timeout: 5s }\n"
    "  - { prefix: /shop.v1.Orders/Get, backend: orders }\n" /* 30 */
    "flows:\n"                                               /* 31 */
    "  shop.v1.Shop/PlaceOrder:\n"                           /* 32 */
    "    steps: []\n";                                       /* 33 */

static void test_config_full_config_read(void **state) {
  fx *f = *state;
  gw_config *c = load(f, full);
  expect_errors(f, NULL, 0);
  assert_non_null(c);
  assert_string_equal(c->path, "gw.yaml");
  assert_string_equal(c->dir, ".");

  assert_int_equal(c->n_listeners, 2);
  assert_string_equal(c->listeners[0].host, "0.0.0.0");
  assert_int_equal(c->listeners[0].port, 8443);
  assert_int_equal(c->listeners[0].line, 2);
  assert_int_equal(c->listeners[0].has_tls, 1);
  assert_string_equal(c->listeners[0].tls.cert, "gw.crt");
  assert_string_equal(c->listeners[0].tls.key, "gw.key");
  assert_string_equal(c->listeners[0].tls.ca, "ca.crt");
  assert_int_equal(c->listeners[0].tls.require_client_cert, 1);
  assert_string_equal(c->listeners[1].host, "::1");
  assert_int_equal(c->listeners[1].port, 8080);
  assert_int_equal(c->listeners[1].has_tls, 0);

  assert_string_equal(c->descriptors, "x.pb");
  assert_int_equal(c->descriptors_line, 6);
  assert_int_equal(c->workers, 4);
  assert_int_equal(c->max_recv_message, 8 * 1024 * 1024);
  assert_int_equal(c->max_concurrent_streams, 500);
  assert_int_equal(c->max_header_list, 32 * 1024);
  assert_int_equal(c->idle_timeout_ms, 120000);
  assert_int_equal(c->handshake_timeout_ms, 1500);
  assert_int_equal(c->max_message_depth, 32);

  assert_int_equal(c->n_forward_metadata, 2);
  assert_string_equal(c->forward_metadata[0], "authorization");
  assert_string_equal(c->forward_metadata[1], "x-request-id");

  assert_int_equal(c->n_backends, 2);
  const gw_backend_config *o = gw_config_backend(c, "orders");
  assert_ptr_equal(o, &c->backends[0]);
  assert_string_equal(o->name, "orders");
  assert_int_equal(o->line, 17);
  assert_int_equal(o->n_endpoints, 2);
  assert_string_equal(o->endpoints[0].host, "127.0.0.1");
  assert_int_equal(o->endpoints[0].port, 50051);
  assert_string_equal(o->endpoints[1].host, "localhost");
  assert_int_equal(o->endpoints[1].port, 50061);
  assert_int_equal(o->has_tls, 1);
  assert_string_equal(o->tls.ca, "ca.crt");
  assert_string_equal(o->tls.cert, "gw.crt");
  assert_string_equal(o->tls.key, "gw.key");
  assert_string_equal(o->tls.server_name, "orders.internal");
  assert_int_equal(o->tls.verify_hostname, 0);
  assert_int_equal(o->connect_timeout_ms, 250);
  assert_int_equal(o->connections, 4);
  assert_int_equal(o->max_streams, 50);
  assert_int_equal(o->max_recv_message, 1000000);

  const gw_backend_config *cat = gw_config_backend(c, "catalog");
  assert_ptr_equal(cat, &c->backends[1]);
  assert_string_equal(cat->endpoints[0].host, "::1");
  assert_int_equal(cat->endpoints[0].port, 50052);
  assert_int_equal(cat->tls.verify_hostname, 1); /* the default */
  assert_null(cat->tls.cert);
  assert_null(cat->tls.server_name);
  assert_null(gw_config_backend(c, "nope"));
  assert_null(gw_config_backend(NULL, "orders"));

  assert_int_equal(c->n_routes, 2);
  assert_string_equal(c->routes[0].prefix, "/shop.v1.Catalog/");
  assert_string_equal(c->routes[0].backend, "catalog");
  assert_int_equal(c->routes[0].timeout_ms, 5000);
  assert_int_equal(c->routes[0].line, 29);
  assert_string_equal(c->routes[1].prefix, "/shop.v1.Orders/Get");
  assert_int_equal(c->routes[1].timeout_ms, 60000); /* limits.route_timeout */

  assert_non_null(c->flows);
  assert_int_equal(c->flows->kind, GW_Y_MAP);
  assert_int_equal(c->flows->n, 1);
  assert_string_equal(c->flows->keys[0]->value, "shop.v1.Shop/PlaceOrder");
  assert_int_equal(c->flows->keys[0]->line, 32);
  assert_non_null(c->root);
}

static void test_config_defaults(void **state) {
  fx *f = *state;
  gw_config *c = load(f, BASE "backends:\n  a: { endpoints: [\"h:1\"] }\n");
  expect_errors(f, NULL, 0);
  assert_non_null(c);
  assert_int_equal(c->workers, 0);
  assert_int_equal(c->max_recv_message, 4 * 1024 * 1024);
  assert_int_equal(c->max_concurrent_streams, 1000);
  assert_int_equal(c->max_header_list, 16 * 1024);
  assert_int_equal(c->idle_timeout_ms, 300000);
  assert_int_equal(c->handshake_timeout_ms, 10000);
  assert_int_equal(c->max_message_depth, 64);
  assert_int_equal(c->n_listeners, 1);
  assert_int_equal(c->listeners[0].has_tls, 0);
  assert_int_equal(c->n_routes, 0);
  assert_int_equal(c->n_forward_metadata, 0);
  assert_null(c->flows);
  const gw_backend_config *b = gw_config_backend(c, "a");
  assert_non_null(b);
  assert_int_equal(b->has_tls, 0);
  assert_int_equal(b->tls.verify_hostname, 1);
  assert_int_equal(b->connect_timeout_ms, 1000);
  assert_int_equal(b->connections, 32);
  assert_int_equal(b->max_streams, 32);
  assert_int_equal(b->max_recv_message, 4 * 1024 * 1024);
  /* The bounds of issue 9, as the README's "Limits and defaults" says. */
  assert_int_equal(c->connection_buffer, 32 * 1024 * 1024);
  assert_int_equal(c->process_buffer, 1024 * 1024 * 1024);
  assert_int_equal(c->buffer_timeout_ms, 5000);
  assert_int_equal(c->stream_buffer, 1024 * 1024);
  assert_int_equal(c->decoded_factor, 16);
  assert_int_equal(c->decoded_floor, 1024 * 1024);
  assert_int_equal(c->request_header_timeout_ms, 10000);
  assert_int_equal(c->stream_idle_timeout_ms, 300000);
  assert_int_equal(c->max_connections, 10000);
  assert_int_equal(c->glitch_burst, 1000);
  assert_int_equal(c->glitch_rate, 33);
  assert_int_equal(c->step_timeout_ms, 10000);
  assert_int_equal(c->route_timeout_ms, 60000);
  assert_int_equal(b->max_pending, 1024);
  assert_int_equal(b->pending_timeout_ms, 5000);
  assert_int_equal(b->max_header_list, 64 * 1024);
  assert_int_equal(b->buffer, 64 * 1024 * 1024);
}

/* The saga log's absent keys take their documented defaults: the lease
 * (10 s) times worker 0's takeover, which a 0 would run every loop turn. */
static void test_config_saga_log_defaults(void **state) {
  fx *f = *state;
  gw_config *c = load(f, BASE "saga_log: { postgres: \"dbname=x\" }\n");
  expect_errors(f, NULL, 0);
  assert_non_null(c);
  assert_int_equal(c->saga_lease_ms, 10000);
  assert_int_equal(c->saga_group_commit_us, 0);
  assert_null(c->saga_owner);
  c = load(f, BASE "saga_log: { postgres: \"dbname=x\", lease: 2s, "
                   "group_commit: 3ms }\n");
  expect_errors(f, NULL, 0);
  assert_int_equal(c->saga_lease_ms, 2000);
  assert_int_equal(c->saga_group_commit_us, 3000);
}

static void test_config_limits_read_and_route_timeout_resolved(void **state) {
  fx *f = *state;
  /* routes before limits: the default route timeout still applies. */
  gw_config *c =
      load(f, BASE "backends:\n  a: { endpoints: [\"h:1\"], max_pending: 10,"
                   " pending_timeout: 250ms, max_header_list: 8KiB,"
                   " buffer: 2GiB }\n"
                   "routes:\n"
                   "  - { prefix: /a.A/, backend: a }\n"
                   "  - { prefix: /b.B/, backend: a, timeout: 0s }\n"
                   "  - { prefix: /c.C/, backend: a, timeout: 3s }\n"
                   "limits: { connection_buffer: 8MiB, process_buffer: 8GiB,"
                   " buffer_timeout: 1s, stream_buffer: 64KiB,"
                   " request_header_timeout: 0s, stream_idle_timeout: 2m,"
                   " max_connections: 500, glitch_burst: 10, glitch_rate: 1,"
                   " step_timeout: 2s, route_timeout: 30s, decoded_factor: 4,"
                   " decoded_floor: 0 }\n");
  expect_errors(f, NULL, 0);
  assert_non_null(c);
  assert_int_equal(c->connection_buffer, 8 * 1024 * 1024);
  assert_true(c->process_buffer == (size_t)8 << 30);
  assert_int_equal(c->buffer_timeout_ms, 1000);
  assert_int_equal(c->stream_buffer, 64 * 1024);
  assert_int_equal(c->request_header_timeout_ms, 0);
  assert_int_equal(c->stream_idle_timeout_ms, 120000);
  assert_int_equal(c->max_connections, 500);
  assert_int_equal(c->glitch_burst, 10);
  assert_int_equal(c->glitch_rate, 1);
  assert_int_equal(c->step_timeout_ms, 2000);
  assert_int_equal(c->decoded_factor, 4);
  assert_int_equal(c->decoded_floor, 0);
  assert_int_equal(c->routes[0].timeout_ms, 30000); /* limits.route_timeout */
  assert_int_equal(c->routes[1].timeout_ms, 0);     /* explicitly none */
  assert_int_equal(c->routes[2].timeout_ms, 3000);
  const gw_backend_config *b = gw_config_backend(c, "a");
  assert_int_equal(b->max_pending, 10);
  assert_int_equal(b->pending_timeout_ms, 250);
  assert_int_equal(b->max_header_list, 8 * 1024);
  assert_true(b->buffer == (size_t)2 << 30);
}

static void test_config_empty_sections_are_empty(void **state) {
  fx *f = *state;
  gw_config *c = load(f, BASE "backends:\nroutes:\nflows: ~\nlimits:\n"
                              "forward_metadata: []\n");
  expect_errors(f, NULL, 0);
  assert_non_null(c);
  assert_int_equal(c->n_backends, 0);
  assert_int_equal(c->n_routes, 0);
  assert_null(c->flows);
}

static void test_config_unknown_key_top_level(void **state) {
  fx *f = *state;
  expect_one(f, "wrokers: 2\n",
             "gw.yaml:3: unknown key 'wrokers' (did you mean 'workers'?)");
  expect_one(f, "frobnicate: 2\n", "gw.yaml:3: unknown key 'frobnicate'");
}

static void test_config_unknown_key_in_backend(void **state) {
  fx *f = *state;
  char text[512];
  snprintf(text, sizeof(text),
           "%sbackends:\n  orders:\n    endpoint: [\"127.0.0.1:50051\"]\n",
           BASE);
  assert_null(load(f, text));
  const char *want[] = {
      "gw.yaml:5: unknown key 'endpoint' in backend 'orders' (did you mean "
      "'endpoints'?)",
      "gw.yaml:4: missing required key 'endpoints' in backend 'orders'",
  };
  expect_errors(f, want, 2);
}

static void test_config_unknown_key_in_tls(void **state) {
  fx *f = *state;
  assert_null(load(f, "listen:\n"
                      "  address: \"127.0.0.1:1\"\n"
                      "  tls: { cert: gw.crt, keys: gw.key }\n"
                      "descriptors: x.pb\n"
                      "backends:\n"
                      "  b:\n"
                      "    endpoints: [\"h:1\"]\n"
                      "    tls: { ca: ca.crt, sni: x }\n"));
  const char *want[] = {
      "gw.yaml:3: unknown key 'keys' in listen tls (did you mean 'key'?)",
      "gw.yaml:3: missing required key 'key' in listen tls",
      "gw.yaml:8: unknown key 'sni' in tls of backend 'b'",
  };
  expect_errors(f, want, 3);
}

static void test_config_unknown_key_in_limits(void **state) {
  fx *f = *state;
  expect_one(f, "limits:\n  max_recv_mesage: 1MiB\n",
             "gw.yaml:4: unknown key 'max_recv_mesage' in limits (did you "
             "mean 'max_recv_message'?)");
}

static void test_config_unknown_key_in_listen_and_route(void **state) {
  fx *f = *state;
  assert_null(load(f, "listen: { adress: \"127.0.0.1:1\" }\n"
                      "descriptors: x.pb\n"
                      "backends: { b: { endpoints: [\"h:1\"] } }\n"
                      "routes:\n"
                      "  - { prefix: /a/, backend: b, timeuot: 1s }\n"));
  const char *want[] = {
      "gw.yaml:1: unknown key 'adress' in listen (did you mean 'address'?)",
      "gw.yaml:1: missing required key 'address' in listen",
      "gw.yaml:5: unknown key 'timeuot' in route (did you mean 'timeout'?)",
  };
  expect_errors(f, want, 3);
}

static void test_config_wrong_kind(void **state) {
  fx *f = *state;
  expect_one(f, "workers: { a: 1 }\n",
             "gw.yaml:3: 'workers' must be an integer, found a map");
  expect_one(f, "backends: [a, b]\n",
             "gw.yaml:3: 'backends' must be a map of name to backend, found a "
             "sequence");
  expect_one(f, "limits: 5\n",
             "gw.yaml:3: 'limits' must be a map, found a "
             "scalar");
  expect_one(f, "backends:\n  b: { endpoints: \"h:1\" }\n",
             "gw.yaml:4: 'endpoints' in backend 'b' must be a sequence of "
             "host:port, found a scalar");
  expect_one(f, "backends:\n  b: [1]\n",
             "gw.yaml:4: backend 'b' must be a map, found a sequence");
  expect_one(f, "routes: { a: 1 }\n",
             "gw.yaml:3: 'routes' must be a sequence of routes, found a map");
  expect_one(f, "routes: [x]\n",
             "gw.yaml:3: 'routes' must be a sequence of maps, found a scalar");
  expect_one(f, "flows: [x]\n",
             "gw.yaml:3: 'flows' must be a map of method to flow, found a "
             "sequence");
  expect_one(f, "forward_metadata: authorization\n",
             "gw.yaml:3: 'forward_metadata' must be a sequence of metadata "
             "keys, found a scalar");
  expect_one(f, "forward_metadata: [[a]]\n",
             "gw.yaml:3: 'forward_metadata' must be a list of metadata keys, "
             "found a sequence");
  expect_one(f, "forward_metadata: [baton-saga-id]\n",
             "gw.yaml:3: 'baton-saga-id' in forward_metadata: baton-* keys "
             "are the gateway's own (saga ids) and never taken from clients");
  expect_one(f, "limits: { connection_buffer: 1KiB }\n",
             "gw.yaml:3: 'connection_buffer' in limits must be between 64KiB "
             "and 64GiB, got '1KiB'");
  expect_one(f, "limits: { stream_idle_timeout: 5 }\n",
             "gw.yaml:3: 'stream_idle_timeout' in limits must be a duration "
             "(like 500us, 250ms, 2s, 1m, 1h), got '5'");
  expect_one(f, "workers: \"4\"\n",
             "gw.yaml:3: 'workers' must be an integer, got '4' (a quoted "
             "string)");
  expect_one(f, "workers: 0x10\n",
             "gw.yaml:3: 'workers' must be an integer, got '0x10'");
  expect_one(f, "workers:\n", "gw.yaml:3: 'workers' needs a value");
}

static void test_config_root_must_be_map(void **state) {
  fx *f = *state;
  assert_null(load(f, "- a\n- b\n"));
  const char *want = "gw.yaml:1: the configuration must be a map, found a "
                     "sequence";
  expect_errors(f, &want, 1);
}

static void test_config_out_of_range(void **state) {
  fx *f = *state;
  expect_one(f, "workers: 300\n",
             "gw.yaml:3: 'workers' must be between 0 and 256, got '300'");
  expect_one(f, "workers: -1\n",
             "gw.yaml:3: 'workers' must be between 0 and 256, got '-1'");
  expect_one(f, "workers: 99999999999999999999999\n",
             "gw.yaml:3: 'workers' must be between 0 and 256, got "
             "'99999999999999999999999'");
  expect_one(f, "limits: { max_recv_message: 2GiB }\n",
             "gw.yaml:3: 'max_recv_message' in limits must be between 1KiB "
             "and 1GiB, got '2GiB'");
  expect_one(f, "limits: { max_header_list: 512 }\n",
             "gw.yaml:3: 'max_header_list' in limits must be between 1KiB "
             "and 1MiB, got '512'");
  expect_one(f, "limits: { max_concurrent_streams: 0 }\n",
             "gw.yaml:3: 'max_concurrent_streams' in limits must be between "
             "1 and 100000, got '0'");
  expect_one(f, "limits: { idle_timeout: 25h }\n",
             "gw.yaml:3: 'idle_timeout' in limits must be between 1ms and "
             "24h, got '25h'");
  expect_one(f, "limits: { handshake_timeout: 99999999999999999999999h }\n",
             "gw.yaml:3: 'handshake_timeout' in limits must be between 1ms "
             "and 1h, got '99999999999999999999999h'");
  expect_one(f, "limits: { max_message_depth: 1001 }\n",
             "gw.yaml:3: 'max_message_depth' in limits must be between 1 "
             "and 1000, got '1001'");
  expect_one(f, "backends:\n  b: { endpoints: [\"h:1\"], connections: 0 }\n",
             "gw.yaml:4: 'connections' in backend 'b' must be between 1 and "
             "64, got '0'");
  expect_one(f,
             "backends:\n  b: { endpoints: [\"h:1\"], max_streams: 10001 }\n",
             "gw.yaml:4: 'max_streams' in backend 'b' must be between 1 and "
             "10000, got '10001'");
}

static void test_config_bad_duration(void **state) {
  fx *f = *state;
  const char *bad[] = {"5", "-1s", "1.5s", "5 s", "5S", "s", "5sec", "1d"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    char more[128], want[256];
    snprintf(more, sizeof(more), "limits: { idle_timeout: \"%s\" }\n", bad[i]);
    snprintf(want, sizeof(want),
             "gw.yaml:3: 'idle_timeout' in limits must be a duration (like "
             "500us, 250ms, 2s, 1m, 1h), got '%s'",
             bad[i]);
    expect_one(f, more, want);
  }
  expect_one(f,
             "backends: { b: { endpoints: [\"h:1\"] } }\n"
             "routes:\n  - { prefix: /a/, backend: b, timeout: 10 }\n",
             "gw.yaml:5: 'timeout' in route must be a duration (like 500us, "
             "250ms, 2s, 1m, 1h), got '10'");
}

static void test_config_bad_size(void **state) {
  fx *f = *state;
  const char *bad[] = {"4XB", "4 MiB", "4mib", "MiB", "-1", "1.5MiB", "4M"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    char more[128], want[256];
    snprintf(more, sizeof(more), "limits: { max_recv_message: \"%s\" }\n",
             bad[i]);
    snprintf(want, sizeof(want),
             "gw.yaml:3: 'max_recv_message' in limits must be a size (like "
             "512, 64KiB, 4MiB), got '%s'",
             bad[i]);
    expect_one(f, more, want);
  }
}

static void test_config_bad_bool(void **state) {
  fx *f = *state;
  assert_null(load(f, "listen:\n"
                      "  address: \"127.0.0.1:1\"\n"
                      "  tls: { cert: gw.crt, key: gw.key, ca: ca.crt,\n"
                      "         require_client_cert: yes }\n"
                      "descriptors: x.pb\n"));
  const char *want = "gw.yaml:4: 'require_client_cert' in listen tls must be "
                     "true or false, got 'yes'";
  expect_errors(f, &want, 1);
  /* YAML 1.2: a quoted "true" is a string */
  expect_one(f,
             "backends: { b: { endpoints: [\"h:1\"], tls: { "
             "verify_hostname: \"true\" } } }\n",
             "gw.yaml:3: 'verify_hostname' in tls of backend 'b' must be true "
             "or false, got 'true' (a quoted string)");
}

static void test_config_bad_address(void **state) {
  fx *f = *state;
  const char *bad[] = {
      "nohost",   "127.0.0.1", ":8443",     "h:",        "h:65536",
      "h:-1",     "h:80x",     "[::1]8443", "[::1:8443", "[zz]:80",
      "::1:8443", "a b:80",    "[]:80",     "h:0000080", "h:+80"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    char text[256], want[256];
    snprintf(text, sizeof(text),
             "listen: { address: \"%s\" }\ndescriptors: x.pb\n", bad[i]);
    snprintf(want, sizeof(want),
             "gw.yaml:1: 'address' in listen must be host:port or [v6]:port, "
             "got '%s'",
             bad[i]);
    gw_diag_clear(&f->diag);
    assert_null(load(f, text));
    const char *w = want;
    expect_errors(f, &w, 1);
  }
  expect_one(f, "backends:\n  b: { endpoints: [\"127.0.0.1:0\", \"h:1\"] }\n",
             "gw.yaml:4: endpoint '127.0.0.1:0' in backend 'b' must be "
             "host:port or [v6]:port with a port from 1 to 65535");
}

static void test_config_missing_required(void **state) {
  fx *f = *state;
  assert_null(load(f, "workers: 1\n"));
  const char *want[] = {
      "gw.yaml:1: missing required key 'listen'",
      "gw.yaml:1: missing required key 'descriptors'",
  };
  expect_errors(f, want, 2);

  expect_one(f, "backends:\n  b: { connections: 1 }\n",
             "gw.yaml:4: missing required key 'endpoints' in backend 'b'");
  expect_one(f, "backends:\n  b: { endpoints: [] }\n",
             "gw.yaml:4: 'endpoints' in backend 'b' must name at least one "
             "endpoint");
  expect_one(f, "routes:\n  - { prefix: /a/ }\n",
             "gw.yaml:4: missing required key 'backend' in route");
  expect_one(f,
             "backends:\n  b: { endpoints: [\"h:1\"], tls: { cert: "
             "gw.crt } }\n",
             "gw.yaml:4: 'cert' and 'key' in tls of backend 'b' go together "
             "(a client certificate needs its key)");

  gw_diag_clear(&f->diag);
  assert_null(load(f, "listen: []\ndescriptors: x.pb\n"));
  const char *w = "gw.yaml:1: 'listen' must name at least one listener";
  expect_errors(f, &w, 1);

  gw_diag_clear(&f->diag);
  assert_null(load(f, "listen:\n  address: \"h:1\"\n  tls: {}\n"
                      "descriptors: x.pb\n"));
  const char *want2[] = {
      "gw.yaml:3: missing required key 'cert' in listen tls",
      "gw.yaml:3: missing required key 'key' in listen tls",
  };
  expect_errors(f, want2, 2);

  gw_diag_clear(&f->diag);
  assert_null(load(f, "listen:\n  address: \"h:1\"\n"
                      "  tls: { cert: gw.crt, key: gw.key,\n"
                      "         require_client_cert: true }\n"
                      "descriptors: x.pb\n"));
  w = "gw.yaml:3: 'require_client_cert' in listen tls needs 'ca' to check "
      "client certificates against";
  expect_errors(f, &w, 1);
}

static void test_config_unknown_backend_in_route(void **state) {
  fx *f = *state;
  /* routes before backends: names are checked once everything is read */
  assert_null(load(f, BASE "routes:\n"
                           "  - { prefix: /shop.v1.Catalog/, backend: "
                           "catalgo }\n"
                           "  - { prefix: /x/, backend: zzz }\n"
                           "backends:\n"
                           "  catalog: { endpoints: [\"h:1\"] }\n"));
  const char *want[] = {
      "gw.yaml:4: route '/shop.v1.Catalog/' names unknown backend 'catalgo' "
      "(did you mean 'catalog'?)",
      "gw.yaml:5: route '/x/' names unknown backend 'zzz'",
  };
  expect_errors(f, want, 2);
}

static void test_config_route_prefix_checked(void **state) {
  fx *f = *state;
  assert_null(load(f, BASE "backends: { b: { endpoints: [\"h:1\"] } }\n"
                           "routes:\n"
                           "  - { prefix: shop.v1.Catalog/, backend: b }\n"
                           "  - { prefix: \"/a b/\", backend: b }\n"
                           "  - { prefix: /c/, backend: b }\n"
                           "  - { prefix: /c/, backend: b }\n"));
  const char *want[] = {
      "gw.yaml:5: 'prefix' in route must be a path like /pkg.Service/ or "
      "/pkg.Service/Method, got 'shop.v1.Catalog/'",
      "gw.yaml:6: 'prefix' in route must be a path like /pkg.Service/ or "
      "/pkg.Service/Method, got '/a b/'",
      "gw.yaml:8: route prefix '/c/' is used twice (first at line 7)",
  };
  expect_errors(f, want, 3);
}

static void test_config_duplicate_listen(void **state) {
  fx *f = *state;
  assert_null(load(f, "listen:\n"
                      "  - address: \"0.0.0.0:8443\"\n"
                      "  - address: \"0.0.0.0:8080\"\n"
                      "  - address: \"0.0.0.0:8443\"\n"
                      "descriptors: x.pb\n"));
  const char *want = "gw.yaml:4: listen address '0.0.0.0:8443' is used twice "
                     "(first at line 2)";
  expect_errors(f, &want, 1);
}

static void test_config_duplicate_key(void **state) {
  fx *f = *state;
  assert_null(load(f, BASE "backends:\n"
                           "  a: { endpoints: [\"h:1\"] }\n"
                           "  a: { endpoints: [\"h:2\"] }\n"));
  const char *want = "gw.yaml:5: duplicate key 'a' (first at line 4)";
  expect_errors(f, &want, 1);
}

static void test_config_yaml_syntax_error(void **state) {
  fx *f = *state;
  assert_null(load(f, BASE "backends:\n  a: { endpoints: [\"h:1\"]\n"));
  const char *want = "gw.yaml:5: syntax error: did not find expected ',' or "
                     "'}' (while parsing a flow mapping at line 4)";
  expect_errors(f, &want, 1);
}

static void test_config_alias_bomb_refused(void **state) {
  fx *f = *state;
  assert_null(load(f, BASE
                   "a: &a [x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x]\n"
                   "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                   "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
                   "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                   "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
                   "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"));
  const char *want = "gw.yaml:8: too many nodes (more than 1000000, aliases "
                     "counted in full)";
  expect_errors(f, &want, 1);
}

static void test_config_aliases_share_settings(void **state) {
  fx *f = *state;
  gw_config *c = load(f, BASE "backends:\n"
                              "  a: &common { endpoints: [\"h:1\"], "
                              "connections: 8 }\n"
                              "  b: *common\n");
  expect_errors(f, NULL, 0);
  assert_non_null(c);
  assert_int_equal(gw_config_backend(c, "b")->connections, 8);
  assert_int_equal(gw_config_backend(c, "b")->endpoints[0].port, 1);
}

static void test_config_collects_every_error(void **state) {
  fx *f = *state;
  assert_null(load(f, "listen: { address: nowhere }\n"      /* 1 */
                      "descriptors: missing.pb\n"           /* 2 */
                      "workers: many\n"                     /* 3 */
                      "limits: { idle_timeout: 5 }\n"       /* 4 */
                      "forward_metadata: [Authorization]\n" /* 5 */
                      "backends:\n"                         /* 6 */
                      "  b: { endpoints: [\"h:1\"], connections: 100 }\n"
                      "routes: [{ prefix: /a/, backend: c }]\n"
                      "extra: 1\n"));
  const char *want[] = {
      "gw.yaml:1: 'address' in listen must be host:port or [v6]:port, got "
      "'nowhere'",
      "gw.yaml:2: 'descriptors': cannot read 'missing.pb': No such file or "
      "directory",
      "gw.yaml:3: 'workers' must be an integer, got 'many'",
      "gw.yaml:4: 'idle_timeout' in limits must be a duration (like 500us, "
      "250ms, 2s, 1m, 1h), got '5'",
      "gw.yaml:5: 'Authorization' in forward_metadata is not a metadata key "
      "(lowercase letters, digits, '-', '_' and '.')",
      "gw.yaml:7: 'connections' in backend 'b' must be between 1 and 64, got "
      "'100'",
      "gw.yaml:9: unknown key 'extra'",
      "gw.yaml:8: route '/a/' names unknown backend 'c'",
  };
  expect_errors(f, want, 8);
}

static void test_config_files_must_exist(void **state) {
  fx *f = *state;
  gw_diag_clear(&f->diag);
  assert_null(load(f, "listen: { address: \"h:1\", tls: { cert: nope.crt, "
                      "key: gw.key } }\n"
                      "descriptors: conf\n"));
  const char *want[] = {
      "gw.yaml:1: 'cert' in listen tls: cannot read 'nope.crt': No such file "
      "or directory",
      "gw.yaml:2: 'descriptors': cannot read 'conf': not a regular file",
  };
  expect_errors(f, want, 2);
}

static void test_config_paths_resolved_against_config_folder(void **state) {
  fx *f = *state;
  char abs[4200];
  snprintf(abs, sizeof(abs),
           "listen: { address: \"h:1\", tls: { cert: c.crt, key: c.key, "
           "ca: %s/ca.crt } }\n"
           "descriptors: d.pb\n",
           tmpdir);
  gw_config *c = load_as(f, "conf/gw.yaml", abs);
  expect_errors(f, NULL, 0);
  assert_non_null(c);
  assert_string_equal(c->dir, "conf");
  assert_string_equal(c->descriptors, "conf/d.pb");
  assert_string_equal(c->listeners[0].tls.cert, "conf/c.crt");
  assert_string_equal(c->listeners[0].tls.key, "conf/c.key");
  char want_ca[4200];
  snprintf(want_ca, sizeof(want_ca), "%s/ca.crt", tmpdir);
  assert_string_equal(c->listeners[0].tls.ca, want_ca); /* absolute stays */

  /* x.pb is beside the working directory, not beside the config */
  gw_diag_clear(&f->diag);
  assert_null(load_as(f, "conf/gw.yaml",
                      "listen: { address: \"h:1\" }\ndescriptors: x.pb\n"));
  const char *want = "conf/gw.yaml:2: 'descriptors': cannot read "
                     "'conf/x.pb': No such file or directory";
  expect_errors(f, &want, 1);
}

static void test_config_forward_metadata_checked(void **state) {
  fx *f = *state;
  assert_null(load(f, BASE "forward_metadata:\n"
                           "  - authorization\n"
                           "  - te\n"
                           "  - grpc-timeout\n"
                           "  - X-Upper\n"
                           "  - authorization\n"
                           "  - \"\"\n"));
  const char *want[] = {
      "gw.yaml:5: 'te' in forward_metadata is set by the transport and "
      "cannot be forwarded",
      "gw.yaml:6: 'grpc-timeout' in forward_metadata is set by the transport "
      "and cannot be forwarded",
      "gw.yaml:7: 'X-Upper' in forward_metadata is not a metadata key "
      "(lowercase letters, digits, '-', '_' and '.')",
      "gw.yaml:8: 'authorization' is listed twice in forward_metadata",
      "gw.yaml:9: '' in forward_metadata is not a metadata key (lowercase "
      "letters, digits, '-', '_' and '.')",
  };
  expect_errors(f, want, 5);
}

static void test_config_odd_text_quoted_in_messages(void **state) {
  fx *f = *state;
  expect_one(f, "\"bad\\nkey\": 1\n", "gw.yaml:3: unknown key 'bad\\x0akey'");
  expect_one(f, "descriptors2: 1\n",
             "gw.yaml:3: unknown key 'descriptors2' (did you mean "
             "'descriptors'?)");
  expect_one(f, "workers: \"1\\02\"\n",
             "gw.yaml:3: 'workers' contains a NUL byte");
  gw_diag_clear(&f->diag);
  assert_null(load(f, BASE "backends:\n  \"a b\": { endpoints: [\"h:1\"] }\n"
                           "  c: { endpoints: [\"h:1\"], tls: { server_name: "
                           "\"x\\0y\" } }\n"));
  const char *want[] = {
      "gw.yaml:4: backend name 'a b' must be letters, digits, '-', '_' and "
      "'.'",
      "gw.yaml:5: 'server_name' in tls of backend 'c' contains a NUL byte",
  };
  expect_errors(f, want, 2);
}

static void test_config_load_from_file(void **state) {
  fx *f = *state;
  FILE *fp = fopen("gw.yaml", "w");
  assert_non_null(fp);
  fputs(BASE "workers: 3\n", fp);
  fclose(fp);
  gw_config *c = gw_config_load("gw.yaml", f->arena, &f->diag);
  expect_errors(f, NULL, 0);
  assert_non_null(c);
  assert_int_equal(c->workers, 3);

  assert_null(gw_config_load("missing.yaml", f->arena, &f->diag));
  const char *want = "missing.yaml: cannot open: No such file or directory";
  expect_errors(f, &want, 1);
}

static void test_config_partial_load_keeps_good_values(void **state) {
  fx *f = *state;
  FILE *fp = fopen("gw.yaml", "w");
  assert_non_null(fp);
  fputs(BASE "workers: lots\n"
             "limits: { idle_timeout: 7m }\n"
             "backends:\n"
             "  a: { endpoints: [\"h:1\"], conect_timeout: 1s }\n"
             "flows: { x.S/M: {} }\n",
        fp);
  fclose(fp);
  assert_null(gw_config_load("gw.yaml", f->arena, &f->diag));
  assert_int_equal(f->diag.n, 2);
  gw_diag_clear(&f->diag);
  gw_config *c = gw_config_load_partial("gw.yaml", f->arena, &f->diag);
  const char *want[] = {
      "gw.yaml:3: 'workers' must be an integer, got 'lots'",
      "gw.yaml:6: unknown key 'conect_timeout' in backend 'a' (did you mean "
      "'connect_timeout'?)",
  };
  expect_errors(f, want, 2);
  assert_non_null(c);
  assert_int_equal(c->workers, 0); /* the bad value left at its default */
  assert_int_equal(c->idle_timeout_ms, 7 * 60000); /* good ones are kept */
  assert_non_null(gw_config_backend(c, "a"));
  assert_int_equal(gw_config_backend(c, "a")->connect_timeout_ms, 1000);
  assert_non_null(c->flows);
  assert_string_equal(c->descriptors, "x.pb");

  /* unreadable YAML still gives nothing */
  gw_diag_clear(&f->diag);
  assert_null(gw_config_load_partial("missing.yaml", f->arena, &f->diag));
  assert_int_equal(f->diag.n, 1);
}

static void test_config_parse_duration(void **state) {
  static const struct {
    const char *s;
    uint32_t ms;
  } ok[] = {
      {"0ms", 0},
      {"250ms", 250},
      {"2s", 2000},
      {"1m", 60000},
      {"1h", 3600000},
      {"500us", 1},
      {"1000us", 1},
      {"1001us", 2},
      {"0us", 0},
      {"4294967295ms", UINT32_MAX},
      {"1193h", 1193u * 3600000},
  };
  for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
    uint32_t ms = 12345;
    assert_int_equal(gw_config_parse_duration_ms(ok[i].s, &ms), 0);
    assert_int_equal(ms, ok[i].ms);
  }
  const char *bad[] = {"",
                       "5",
                       "ms",
                       "-1s",
                       "+1s",
                       " 1s",
                       "1s ",
                       "1.5s",
                       "1S",
                       "1sm",
                       "1 s",
                       "1194h",
                       "4294967296ms",
                       "99999999999999999999999s",
                       NULL};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    uint32_t ms = 12345;
    assert_int_equal(gw_config_parse_duration_ms(bad[i], &ms), -1);
    assert_int_equal(ms, 12345);
  }
}

static void test_config_parse_size(void **state) {
  static const struct {
    const char *s;
    uint32_t n;
  } ok[] = {
      {"512", 512},
      {"512B", 512},
      {"16KiB", 16384},
      {"4MiB", 4194304},
      {"1GiB", 1073741824},
      {"4KB", 4000},
      {"4MB", 4000000},
      {"1GB", 1000000000},
      {"0", 0},
      {"4294967295", UINT32_MAX},
      {"3GiB", 3221225472u},
  };
  for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
    uint32_t n = 7;
    assert_int_equal(gw_config_parse_size(ok[i].s, &n), 0);
    assert_int_equal(n, ok[i].n);
  }
  const char *bad[] = {"",   "KiB",    "4kib",       "4 KiB", "4K", "4GiB",
                       "-4", "4.5MiB", "4294967296", "4MiBs", NULL};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    uint32_t n = 7;
    assert_int_equal(gw_config_parse_size(bad[i], &n), -1);
    assert_int_equal(n, 7);
  }
}

static void test_config_parse_hostport(void **state) {
  fx *f = *state;
  static const struct {
    const char *s, *host;
    int port;
  } ok[] = {
      {"0.0.0.0:8443", "0.0.0.0", 8443},
      {"localhost:1", "localhost", 1},
      {"[::]:443", "::", 443},
      {"[::1]:50051", "::1", 50051},
      {"[2001:db8::1]:65535", "2001:db8::1", 65535},
      {"my-host_1.example.com:0", "my-host_1.example.com", 0},
  };
  for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
    const char *host = NULL;
    int port = -1;
    assert_int_equal(gw_config_parse_hostport(ok[i].s, f->arena, &host, &port),
                     0);
    assert_string_equal(host, ok[i].host);
    assert_int_equal(port, ok[i].port);
  }
  const char *bad[] = {"",         "h",       ":1",     "h:",     "h:65536",
                       "h:123456", "::1:80",  "[::1]",  "[::1]:", "[::1]x80",
                       "[1.2]:80", "h:80:90", "h/x:80", "[]:1",   NULL};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    const char *host = NULL;
    int port = -1;
    assert_int_equal(gw_config_parse_hostport(bad[i], f->arena, &host, &port),
                     -1);
    assert_null(host);
    assert_int_equal(port, -1);
  }
}

int main(void) {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_config_full_config_read),
      T(test_config_defaults),
      T(test_config_saga_log_defaults),
      T(test_config_limits_read_and_route_timeout_resolved),
      T(test_config_empty_sections_are_empty),
      T(test_config_unknown_key_top_level),
      T(test_config_unknown_key_in_backend),
      T(test_config_unknown_key_in_tls),
      T(test_config_unknown_key_in_limits),
      T(test_config_unknown_key_in_listen_and_route),
      T(test_config_wrong_kind),
      T(test_config_root_must_be_map),
      T(test_config_out_of_range),
      T(test_config_bad_duration),
      T(test_config_bad_size),
      T(test_config_bad_bool),
      T(test_config_bad_address),
      T(test_config_missing_required),
      T(test_config_unknown_backend_in_route),
      T(test_config_route_prefix_checked),
      T(test_config_duplicate_listen),
      T(test_config_duplicate_key),
      T(test_config_yaml_syntax_error),
      T(test_config_alias_bomb_refused),
      T(test_config_aliases_share_settings),
      T(test_config_collects_every_error),
      T(test_config_files_must_exist),
      T(test_config_paths_resolved_against_config_folder),
      T(test_config_forward_metadata_checked),
      T(test_config_odd_text_quoted_in_messages),
      T(test_config_load_from_file),
      T(test_config_partial_load_keeps_good_values),
      T(test_config_parse_duration),
      T(test_config_parse_size),
      T(test_config_parse_hostport),
  };
#undef T
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
