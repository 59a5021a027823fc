/* ynode.c: a YAML file as a tree of gw_ynode, built from libyaml's events.
 *
 * libyaml's event parser (not its document loader) is used so every node
 * keeps its own line and so this file decides the rules: one document,
 * scalar keys only, no duplicate keys, aliases resolved to the anchored node
 * itself. The tree is shared, not copied, where an alias points, so a small
 * file of nested aliases ("billion laughs") would still be an exponential
 * walk for the config checker: every alias counts as the whole subtree it
 * stands for, and the total and the depth are capped. */
#include "ynode.h"

#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h> /* libyaml */

#include <baton/alloc.h>

/* Nodes of the tree as a walker sees it: aliases count in full. */
#define YAML_MAX_NODES 1000000
/* Nested collections, aliases included. */
#define YAML_MAX_DEPTH 256
/* A config file; anything bigger is a mistake, not a config. */
#define YAML_MAX_FILE (16u * 1024 * 1024)

/* A collection still being read. Its children wait in loader.pending from
 * index start on (keys and values alternate for a map). */
typedef struct yframe {
  gw_ynode *node;
  size_t start;
  size_t size;  /* nodes below and including this one, aliases in full */
  int height;   /* collections on the longest path down, this one included */
  char *anchor; /* bt_malloc'ed, or NULL */
} yframe;

typedef struct yanchor {
  char *name; /* bt_malloc'ed; NULL marks a free slot */
  gw_ynode *node;
  size_t size;
  int height;
} yanchor;

typedef struct yloader {
  const char *name;
  bt_arena *arena;
  gw_diag *diag;
  yframe *frames;
  size_t n_frames, cap_frames;
  gw_ynode **pending;
  size_t n_pending, cap_pending;
  yanchor *anchors; /* open addressing, power-of-two slots */
  size_t n_anchors, cap_anchors;
  size_t total;
  gw_ynode *root;
  int fatal;  /* stop reading */
  int errors; /* problems found so far; the tree is not returned */
} yloader;

static void yerror(yloader *ld, int line, const char *fmt, const char *arg) {
  char q[128];
  if (arg)
    gw_diag_error(ld->diag, ld->name, line, fmt,
                  gw_diag_quote(q, sizeof(q), arg, strlen(arg)));
  else
    gw_diag_error(ld->diag, ld->name, line, "%s", fmt);
  ld->errors++;
}

static uint64_t hash_name(const char *s) {
  uint64_t h = 1469598103934665603ULL;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ULL;
  return h;
}

static yanchor *anchor_slot(yanchor *tab, size_t cap, const char *name) {
  size_t i = (size_t)hash_name(name) & (cap - 1);
  while (tab[i].name && strcmp(tab[i].name, name) != 0)
    i = (i + 1) & (cap - 1);
  return &tab[i];
}

/* Records (or redefines, as YAML allows) an anchor; takes name. */
static void anchor_put(yloader *ld, char *name, gw_ynode *node, size_t size,
                       int height) {
  if ((ld->n_anchors + 1) * 2 > ld->cap_anchors) {
    size_t cap = ld->cap_anchors ? ld->cap_anchors * 2 : 16;
    yanchor *tab = bt_calloc(cap, sizeof(*tab));
    for (size_t i = 0; i < ld->cap_anchors; i++) {
      if (ld->anchors[i].name)
        *anchor_slot(tab, cap, ld->anchors[i].name) = ld->anchors[i];
    }
    bt_free(ld->anchors);
    ld->anchors = tab;
    ld->cap_anchors = cap;
  }
  yanchor *a = anchor_slot(ld->anchors, ld->cap_anchors, name);
  if (a->name) {
    bt_free(name);
  } else {
    a->name = name;
    ld->n_anchors++;
  }
  a->node = node;
  a->size = size;
  a->height = height;
}

static const yanchor *anchor_get(const yloader *ld, const char *name) {
  if (ld->cap_anchors == 0)
    return NULL;
  const yanchor *a = anchor_slot(ld->anchors, ld->cap_anchors, name);
  return a->name ? a : NULL;
}

static char *copy_anchor(const yaml_char_t *anchor) {
  return anchor ? bt_strdup((const char *)anchor) : NULL;
}

/* Counts n more nodes toward the cap. */
static int count_nodes(yloader *ld, size_t n, int line) {
  ld->total += n;
  if (ld->total > YAML_MAX_NODES) {
    yerror(ld, line,
           "too many nodes (more than 1000000, aliases counted in full)", NULL);
    ld->fatal = 1;
    return -1;
  }
  return 0;
}

/* Checks a tag: only the ones that mean "what it already is" are known
 * (same: !!str, !!map or !!seq). For a scalar (is_str not NULL) a known tag
 * makes it a string. */
static int check_tag(yloader *ld, const yaml_char_t *tag, int line,
                     const char *same, int *is_str) {
  if (!tag)
    return 0;
  const char *t = (const char *)tag;
  /* "!" is the non-specific tag: a string for a scalar, nothing more for a
   * collection. */
  if (strcmp(t, "!") == 0 || strcmp(t, same) == 0) {
    if (is_str)
      *is_str = 1;
    return 0;
  }
  yerror(ld, line, "unsupported tag '%s'", t);
  return -1;
}

/* Hands a finished node to the collection being read, or makes it the
 * root. size and height describe what the node stands for (for an alias,
 * the anchored subtree). */
static void add_node(yloader *ld, gw_ynode *node, size_t size, int height) {
  if (ld->n_frames == 0) {
    ld->root = node;
    return;
  }
  yframe *f = &ld->frames[ld->n_frames - 1];
  if (f->node->kind == GW_Y_MAP && (ld->n_pending - f->start) % 2 == 0 &&
      node->kind != GW_Y_SCALAR) {
    char msg[96];
    snprintf(msg, sizeof(msg), "a mapping key must be a scalar, found a %s",
             gw_ynode_kind_name(node));
    yerror(ld, node->line, msg, NULL);
  }
  if (ld->n_pending == ld->cap_pending) {
    ld->cap_pending = ld->cap_pending ? ld->cap_pending * 2 : 64;
    ld->pending =
        bt_realloc(ld->pending, ld->cap_pending * sizeof(*ld->pending));
  }
  ld->pending[ld->n_pending++] = node;
  f->size += size;
  if (height + 1 > f->height)
    f->height = height + 1;
}

static gw_ynode *new_node(yloader *ld, gw_ykind kind, const yaml_mark_t *m) {
  gw_ynode *n = bt_arena_calloc(ld->arena, sizeof(*n));
  n->kind = kind;
  n->line = m->line + 1 > INT32_MAX ? INT32_MAX : (int)m->line + 1;
  n->col = m->column + 1 > INT32_MAX ? INT32_MAX : (int)m->column + 1;
  return n;
}

static void on_scalar(yloader *ld, const yaml_event_t *ev) {
  gw_ynode *n = new_node(ld, GW_Y_SCALAR, &ev->start_mark);
  if (count_nodes(ld, 1, n->line) != 0)
    return;
  n->value = bt_arena_strndup(ld->arena, (const char *)ev->data.scalar.value,
                              ev->data.scalar.length);
  n->len = ev->data.scalar.length;
  n->quoted = ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
  check_tag(ld, ev->data.scalar.tag, n->line, "tag:yaml.org,2002:str",
            &n->quoted);
  if (ev->data.scalar.anchor)
    anchor_put(ld, copy_anchor(ev->data.scalar.anchor), n, 1, 0);
  add_node(ld, n, 1, 0);
}

static void on_alias(yloader *ld, const yaml_event_t *ev) {
  int line =
      (int)(ev->start_mark.line + 1 > INT32_MAX ? INT32_MAX
                                                : ev->start_mark.line + 1);
  const char *name = (const char *)ev->data.alias.anchor;
  const yanchor *a = anchor_get(ld, name);
  if (!a) {
    /* Also what an alias to an anchor still being read gets: the anchor
     * is known only once its node is complete, so no cycle can form. */
    yerror(ld, line, "unknown anchor '%s'", name);
    ld->fatal = 1;
    return;
  }
  if (ld->n_frames + (size_t)a->height > YAML_MAX_DEPTH) {
    yerror(ld, line, "nesting deeper than 256 levels", NULL);
    ld->fatal = 1;
    return;
  }
  if (count_nodes(ld, a->size, line) != 0)
    return;
  add_node(ld, a->node, a->size, a->height);
}

static void on_start(yloader *ld, const yaml_event_t *ev, gw_ykind kind) {
  gw_ynode *n = new_node(ld, kind, &ev->start_mark);
  if (ld->n_frames + 1 > YAML_MAX_DEPTH) {
    yerror(ld, n->line, "nesting deeper than 256 levels", NULL);
    ld->fatal = 1;
    return;
  }
  if (count_nodes(ld, 1, n->line) != 0)
    return;
  const yaml_char_t *anchor, *tag;
  if (kind == GW_Y_MAP) {
    anchor = ev->data.mapping_start.anchor;
    tag = ev->data.mapping_start.tag;
    check_tag(ld, tag, n->line, "tag:yaml.org,2002:map", NULL);
  } else {
    anchor = ev->data.sequence_start.anchor;
    tag = ev->data.sequence_start.tag;
    check_tag(ld, tag, n->line, "tag:yaml.org,2002:seq", NULL);
  }
  if (ld->n_frames == ld->cap_frames) {
    ld->cap_frames = ld->cap_frames ? ld->cap_frames * 2 : 16;
    ld->frames = bt_realloc(ld->frames, ld->cap_frames * sizeof(*ld->frames));
  }
  yframe *f = &ld->frames[ld->n_frames++];
  f->node = n;
  f->start = ld->n_pending;
  f->size = 1;
  f->height = 1;
  f->anchor = copy_anchor(anchor);
}

typedef struct keyref {
  const gw_ynode *key;
  size_t index;
} keyref;

static int keyref_cmp(const void *a, const void *b) {
  const keyref *x = a, *y = b;
  if (x->key->len != y->key->len)
    return x->key->len < y->key->len ? -1 : 1;
  int c = memcmp(x->key->value, y->key->value, x->key->len);
  if (c != 0)
    return c;
  return x->index < y->index ? -1 : x->index > y->index;
}

/* Reports every key that repeats an earlier one, in file order. Sorting
 * keeps a map with many keys from costing n^2 comparisons. */
static void check_duplicates(yloader *ld, const gw_ynode *map) {
  if (map->n < 2)
    return;
  keyref *refs = bt_malloc(map->n * sizeof(*refs));
  size_t *first = bt_malloc(map->n * sizeof(*first));
  size_t m = 0;
  for (size_t i = 0; i < map->n; i++) {
    first[i] = SIZE_MAX;
    if (map->keys[i]->kind == GW_Y_SCALAR) {
      refs[m].key = map->keys[i];
      refs[m].index = i;
      m++;
    }
  }
  qsort(refs, m, sizeof(*refs), keyref_cmp);
  for (size_t i = 1; i < m; i++) {
    const keyref *prev = &refs[i - 1];
    if (prev->key->len == refs[i].key->len &&
        memcmp(prev->key->value, refs[i].key->value, prev->key->len) == 0)
      first[refs[i].index] =
          first[prev->index] != SIZE_MAX ? first[prev->index] : prev->index;
  }
  for (size_t i = 0; i < map->n; i++) {
    if (first[i] == SIZE_MAX)
      continue;
    const gw_ynode *k = map->keys[i];
    char q[128];
    gw_diag_error(ld->diag, ld->name, k->line,
                  "duplicate key '%s' (first at line %d)",
                  gw_diag_quote(q, sizeof(q), k->value, k->len),
                  map->keys[first[i]]->line);
    ld->errors++;
  }
  bt_free(first);
  bt_free(refs);
}

static void on_end(yloader *ld) {
  yframe f = ld->frames[--ld->n_frames];
  gw_ynode *n = f.node;
  size_t count = ld->n_pending - f.start;
  /* An empty collection still gets arrays, so users may index keys and
   * values without a NULL check; pending may still be NULL here. */
  size_t slots = count ? count : 1;
  if (n->kind == GW_Y_MAP) {
    /* libyaml always pairs keys with values (an empty one if need be). */
    n->n = count / 2;
    n->keys = bt_arena_calloc(ld->arena, slots * sizeof(*n->keys));
    n->values = bt_arena_calloc(ld->arena, slots * sizeof(*n->values));
    for (size_t i = 0; i < n->n; i++) {
      n->keys[i] = ld->pending[f.start + 2 * i];
      n->values[i] = ld->pending[f.start + 2 * i + 1];
    }
    check_duplicates(ld, n);
  } else {
    n->n = count;
    n->values = bt_arena_calloc(ld->arena, slots * sizeof(*n->values));
    if (count)
      memcpy(n->values, ld->pending + f.start, count * sizeof(*n->values));
  }
  ld->n_pending = f.start;
  if (f.anchor)
    anchor_put(ld, f.anchor, n, f.size, f.height);
  add_node(ld, n, f.size, f.height);
}

static void syntax_error(yloader *ld, const yaml_parser_t *p) {
  char msg[512];
  int line = 0;
  switch (p->error) {
  case YAML_MEMORY_ERROR:
    snprintf(msg, sizeof(msg), "out of memory while reading YAML");
    break;
  case YAML_READER_ERROR:
    /* The reader runs ahead of the scanner: there is no line, but the
     * byte offset is exact. */
    snprintf(msg, sizeof(msg), "cannot read YAML: %s at byte %zu",
             p->problem ? p->problem : "invalid input", p->problem_offset);
    break;
  default:
    line =
        (int)(p->problem_mark.line + 1 > INT32_MAX ? INT32_MAX
                                                   : p->problem_mark.line + 1);
    if (p->context)
      snprintf(msg, sizeof(msg), "syntax error: %s (%s at line %zu)",
               p->problem ? p->problem : "invalid YAML", p->context,
               p->context_mark.line + 1);
    else
      snprintf(msg, sizeof(msg), "syntax error: %s",
               p->problem ? p->problem : "invalid YAML");
    break;
  }
  yerror(ld, line, msg, NULL);
  ld->fatal = 1;
}

static void run_parser(yloader *ld, yaml_parser_t *p) {
  int documents = 0;
  for (;;) {
    yaml_event_t ev;
    if (!yaml_parser_parse(p, &ev)) {
      syntax_error(ld, p);
      return;
    }
    int done = 0;
    switch (ev.type) {
    case YAML_DOCUMENT_START_EVENT:
      if (documents++ > 0) {
        yerror(ld, (int)ev.start_mark.line + 1,
               "more than one YAML document in the file", NULL);
        ld->fatal = 1;
      }
      break;
    case YAML_SCALAR_EVENT:
      on_scalar(ld, &ev);
      break;
    case YAML_ALIAS_EVENT:
      on_alias(ld, &ev);
      break;
    case YAML_SEQUENCE_START_EVENT:
      on_start(ld, &ev, GW_Y_SEQ);
      break;
    case YAML_MAPPING_START_EVENT:
      on_start(ld, &ev, GW_Y_MAP);
      break;
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
      /* libyaml pairs starts with ends; the guard is for robustness. */
      if (ld->n_frames > 0)
        on_end(ld);
      break;
    case YAML_STREAM_END_EVENT:
    case YAML_NO_EVENT:
      done = 1;
      break;
    default:
      break;
    }
    yaml_event_delete(&ev);
    if (done || ld->fatal)
      return;
  }
}

gw_ynode *gw_ynode_parse(const char *name, const char *text, size_t len,
                         bt_arena *arena, gw_diag *diag) {
  yloader ld;
  memset(&ld, 0, sizeof(ld));
  ld.name = name;
  ld.arena = arena;
  ld.diag = diag;

  yaml_parser_t p;
  if (!yaml_parser_initialize(&p)) {
    gw_diag_error(diag, name, 0, "out of memory while reading YAML");
    return NULL;
  }
  if (!text)
    len = 0;
  yaml_parser_set_input_string(&p, (const unsigned char *)(text ? text : ""),
                               len);
  run_parser(&ld, &p);
  yaml_parser_delete(&p);

  for (size_t i = 0; i < ld.n_frames; i++)
    bt_free(ld.frames[i].anchor);
  bt_free(ld.frames);
  bt_free(ld.pending);
  for (size_t i = 0; i < ld.cap_anchors; i++)
    bt_free(ld.anchors[i].name);
  bt_free(ld.anchors);

  if (ld.errors > 0)
    return NULL;
  if (!ld.root ||
      (ld.root->kind == GW_Y_SCALAR && !ld.root->quoted && ld.root->len == 0)) {
    gw_diag_error(diag, name, 0, "empty configuration");
    return NULL;
  }
  return ld.root;
}

gw_ynode *gw_ynode_load(const char *path, bt_arena *arena, gw_diag *diag) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    gw_diag_error(diag, path, 0, "cannot open: %s", strerror(errno));
    return NULL;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    gw_diag_error(diag, path, 0, "not a regular file");
    close(fd);
    return NULL;
  }
  if ((uint64_t)st.st_size > YAML_MAX_FILE) {
    gw_diag_error(diag, path, 0, "larger than %u MiB",
                  YAML_MAX_FILE / (1024 * 1024));
    close(fd);
    return NULL;
  }
  /* The size is only a hint: read until EOF, within the cap. */
  size_t cap = (size_t)st.st_size + 1, len = 0;
  char *buf = bt_malloc(cap);
  for (;;) {
    if (len == cap) {
      if (cap > YAML_MAX_FILE) {
        gw_diag_error(diag, path, 0, "larger than %u MiB",
                      YAML_MAX_FILE / (1024 * 1024));
        goto fail;
      }
      cap *= 2;
      buf = bt_realloc(buf, cap);
    }
    ssize_t r = read(fd, buf + len, cap - len);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0) {
      gw_diag_error(diag, path, 0, "cannot read: %s", strerror(errno));
      goto fail;
    }
    if (r == 0)
      break;
    len += (size_t)r;
  }
  close(fd);
  gw_ynode *root = gw_ynode_parse(path, buf, len, arena, diag);
  bt_free(buf);
  return root;

fail: /* buf and fd are still ours */
  bt_free(buf);
  close(fd);
  return NULL;
}

gw_ynode *gw_ynode_get(const gw_ynode *map, const char *key) {
  if (!map || map->kind != GW_Y_MAP || !key)
    return NULL;
  size_t len = strlen(key);
  for (size_t i = 0; i < map->n; i++) {
    const gw_ynode *k = map->keys[i];
    if (k->kind == GW_Y_SCALAR && k->len == len &&
        memcmp(k->value, key, len) == 0)
      return map->values[i];
  }
  return NULL;
}

const char *gw_ynode_kind_name(const gw_ynode *n) {
  if (!n)
    return "nothing";
  switch (n->kind) {
  case GW_Y_MAP:
    return "map";
  case GW_Y_SEQ:
    return "sequence";
  default:
    return "scalar";
  }
}
