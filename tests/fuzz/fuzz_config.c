/* fuzz_config.c: the YAML reader and the config checker on any bytes.
 *
 * Input: a config file. Properties: a NULL tree or config always comes with
 * at least one error, a config only without; every error is one printable
 * line starting with the file name; a tree's nodes are well formed and,
 * aliases counted in full, within the node cap; an accepted config holds
 * only values in range and routes to known backends; nothing leaks. The
 * input is also given to the value parsers as a string. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <baton/alloc.h>
#include <baton/arena.h>
#include "config/config.h"
#include "fuzz_check.h"

/* Visits every node as a walker would (shared nodes once per use). */
static void check_tree(const gw_ynode *n, int depth, size_t *visits) {
  FUZZ_CHECK(n != NULL);
  FUZZ_CHECK(depth <= 257); /* 256 collections, then a scalar */
  FUZZ_CHECK(++*visits <= 1000000);
  FUZZ_CHECK(n->line >= 1 && n->col >= 1);
  switch (n->kind) {
  case GW_Y_SCALAR:
    FUZZ_CHECK(n->value != NULL && n->value[n->len] == '\0');
    FUZZ_CHECK(n->n == 0);
    break;
  case GW_Y_MAP:
    for (size_t i = 0; i < n->n; i++) {
      FUZZ_CHECK(n->keys[i]->kind == GW_Y_SCALAR);
      /* no duplicate keys */
      for (size_t j = 0; j < i && j < 64; j++)
        FUZZ_CHECK(
            n->keys[j]->len != n->keys[i]->len ||
            memcmp(n->keys[j]->value, n->keys[i]->value, n->keys[i]->len) != 0);
      if (strlen(n->keys[i]->value) == n->keys[i]->len)
        FUZZ_CHECK(gw_ynode_get(n, n->keys[i]->value) == n->values[i]);
      check_tree(n->keys[i], depth + 1, visits);
      check_tree(n->values[i], depth + 1, visits);
    }
    break;
  case GW_Y_SEQ:
    for (size_t i = 0; i < n->n; i++)
      check_tree(n->values[i], depth + 1, visits);
    break;
  default:
    FUZZ_CHECK(0);
  }
}

static void check_config(const gw_config *c) {
  FUZZ_CHECK(c->n_listeners >= 1);
  for (size_t i = 0; i < c->n_listeners; i++) {
    FUZZ_CHECK(c->listeners[i].host && c->listeners[i].host[0]);
    FUZZ_CHECK(c->listeners[i].port >= 0 && c->listeners[i].port <= 65535);
  }
  FUZZ_CHECK(c->descriptors != NULL);
  FUZZ_CHECK(c->workers >= 0 && c->workers <= 256);
  FUZZ_CHECK(c->max_recv_message >= 1024 && c->max_recv_message <= 1 << 30);
  FUZZ_CHECK(c->max_message_depth >= 1 && c->max_message_depth <= 1000);
  for (size_t i = 0; i < c->n_backends; i++) {
    const gw_backend_config *b = &c->backends[i];
    FUZZ_CHECK(gw_config_backend(c, b->name) != NULL);
    FUZZ_CHECK(b->n_endpoints >= 1);
    for (size_t j = 0; j < b->n_endpoints; j++)
      FUZZ_CHECK(b->endpoints[j].port >= 1 && b->endpoints[j].port <= 65535);
    FUZZ_CHECK(b->connections >= 1 && b->connections <= 64);
    FUZZ_CHECK(b->max_streams >= 1 && b->max_streams <= 10000);
    FUZZ_CHECK(b->connect_timeout_ms >= 1);
  }
  for (size_t i = 0; i < c->n_routes; i++) {
    FUZZ_CHECK(c->routes[i].prefix && c->routes[i].prefix[0] == '/');
    FUZZ_CHECK(gw_config_backend(c, c->routes[i].backend) != NULL);
  }
  for (size_t i = 0; i < c->n_forward_metadata; i++)
    FUZZ_CHECK(c->forward_metadata[i][0] != '\0');
  FUZZ_CHECK(!c->flows || c->flows->kind == GW_Y_MAP);
}

static void check_diag(const gw_diag *d) {
  for (size_t i = 0; i < d->n; i++) {
    const char *line = d->lines[i];
    FUZZ_CHECK(strncmp(line, "fuzz.yaml", 9) == 0);
    for (const char *p = line; *p; p++)
      FUZZ_CHECK((unsigned char)*p >= 0x20 && *p != 0x7f);
  }
}

static void check_value_parsers(const uint8_t *data, size_t size) {
  char *s = bt_malloc(size + 1);
  memcpy(s, data, size);
  s[size] = '\0';
  uint32_t v;
  if (gw_config_parse_duration_ms(s, &v) == 0)
    FUZZ_CHECK(s[0] >= '0' && s[0] <= '9');
  if (gw_config_parse_size(s, &v) == 0)
    FUZZ_CHECK(s[0] >= '0' && s[0] <= '9');
  bt_arena *arena = bt_arena_new(256);
  const char *host = NULL;
  int port = -1;
  if (gw_config_parse_hostport(s, arena, &host, &port) == 0)
    FUZZ_CHECK(host && host[0] && port >= 0 && port <= 65535);
  bt_arena_free(arena);
  bt_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  long base = bt_alloc_live();
  bt_arena *arena = bt_arena_new(0);
  gw_diag diag;
  gw_diag_init(&diag);

  gw_ynode *root =
      gw_ynode_parse("fuzz.yaml", (const char *)data, size, arena, &diag);
  FUZZ_CHECK((root == NULL) == (gw_diag_count(&diag) > 0));
  if (root) {
    size_t visits = 0;
    check_tree(root, 1, &visits);
    gw_config *c = gw_config_from_yaml("fuzz.yaml", root, arena, &diag);
    FUZZ_CHECK((c == NULL) == (gw_diag_count(&diag) > 0));
    if (c)
      check_config(c);
  }
  check_diag(&diag);

  gw_diag_clear(&diag);
  bt_arena_free(arena);
  check_value_parsers(data, size);
  FUZZ_CHECK(bt_alloc_live() == base);
  return 0;
}
