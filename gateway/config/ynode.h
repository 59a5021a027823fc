/* ynode.h (gateway/config, private): a YAML document as a tree of nodes that
 * keep their line numbers, read with libyaml. Everything lives in one arena. */
#ifndef GW_YAML_H
#define GW_YAML_H

#include <stddef.h>

#include <baton/arena.h>

#include "diag.h"

typedef enum { GW_Y_SCALAR, GW_Y_MAP, GW_Y_SEQ } gw_ykind;

typedef struct gw_ynode gw_ynode;
struct gw_ynode {
  gw_ykind kind;
  int line; /* 1-based */
  int col;  /* 1-based */
  /* scalar */
  const char *value; /* NUL-terminated */
  size_t len;
  int quoted; /* written with ' or " in the file: always a string */
  /* map (keys[i] -> values[i], in file order) and sequence (values[i]) */
  size_t n;
  gw_ynode **keys;
  gw_ynode **values;
};

/* Parses path. Returns the root node, or NULL after recording an error
 * (file:line: what libyaml said) in diag. Anchors and aliases are resolved;
 * duplicate keys in a map are errors. The tree lives in arena. */
gw_ynode *gw_ynode_load(const char *path, bt_arena *arena, gw_diag *diag);
/* As gw_ynode_load, from memory; name is used in messages. */
gw_ynode *gw_ynode_parse(const char *name, const char *text, size_t len,
                         bt_arena *arena, gw_diag *diag);
/* The value for key in a map node, or NULL. */
gw_ynode *gw_ynode_get(const gw_ynode *map, const char *key);
/* "map", "sequence" or "scalar", for messages. */
const char *gw_ynode_kind_name(const gw_ynode *n);

#endif
