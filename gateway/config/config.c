/* config.c: the gateway's YAML configuration, checked and turned into
 * gw_config.
 *
 * Every section is a table of keys (name, kind, range, default, where the
 * value goes), in the manner of redis' static_configs[]: one walker checks a
 * map against a table, so adding a key is one line and an unknown key is
 * always an error. Loading never stops at the first problem: every error
 * goes to the diag with its file and line, and the config is returned only
 * when there were none. The flows section is kept as YAML for the flow
 * compiler, which needs the descriptors to check it. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <baton/metadata.h>

#define KIB 1024ULL
#define MIB (1024ULL * 1024)
#define GIB (1024ULL * 1024 * 1024)
/* Upper bounds of durations: past them a value is a typo, not a wish. */
#define HOUR_MS (3600LL * 1000)
#define DAY_MS (24 * HOUR_MS)

/* State of one load. */
typedef struct cfg {
  const char *file;
  const char *dir; /* NULL: the config's folder is the working directory */
  bt_arena *arena;
  gw_diag *diag;
  gw_config *c;
} cfg;

typedef enum {
  K_INT,      /* int */
  K_U32,      /* uint32_t */
  K_SIZE,     /* uint32_t bytes */
  K_BIGSIZE,  /* size_t bytes */
  K_DURATION, /* uint32_t milliseconds */
  K_BOOL,     /* int 0/1 */
  K_STRING,   /* const char * */
  K_PATH,     /* const char *, resolved; the file must be readable */
  K_SECTION   /* anything else: handled by fn */
} key_kind;

typedef struct keydef keydef;
/* Handles a K_SECTION key: val (never NULL) is the value of key in a map
 * whose struct is base; where says which map for messages. */
typedef void (*key_fn)(cfg *g, const keydef *d, const gw_ynode *key,
                       gw_ynode *val, void *base, const char *where);

struct keydef {
  const char *key;
  key_kind kind;
  int required;
  /* numbers, sizes (bytes), durations (ms) and booleans */
  int64_t min, max, def;
  size_t offset; /* of the target in base */
  key_fn fn;
};

/* --- messages ------------------------------------------------------- */

/* A quoted copy of a node's text for a message, in the arena (messages are
 * rare; the arena goes with the load). */
static const char *show(cfg *g, const char *s, size_t len) {
  char q[96];
  gw_diag_quote(q, sizeof(q), s, len);
  return bt_arena_strndup(g->arena, q, strlen(q));
}

static const char *show_node(cfg *g, const gw_ynode *n) {
  return show(g, n->value, n->len);
}

/* Optimal string alignment distance (Levenshtein plus adjacent swaps),
 * for "did you mean". Long strings are never close: they get a big
 * distance rather than a big table. */
static size_t edit_distance(const char *a, size_t la, const char *b,
                            size_t lb) {
  enum { MAXL = 48 };
  if (la > MAXL || lb > MAXL)
    return (size_t)-1;
  size_t d[MAXL + 1][MAXL + 1];
  for (size_t i = 0; i <= la; i++)
    d[i][0] = i;
  for (size_t j = 0; j <= lb; j++)
    d[0][j] = j;
  for (size_t i = 1; i <= la; i++) {
    for (size_t j = 1; j <= lb; j++) {
      size_t cost = a[i - 1] != b[j - 1];
      size_t best = d[i - 1][j] + 1;
      if (d[i][j - 1] + 1 < best)
        best = d[i][j - 1] + 1;
      if (d[i - 1][j - 1] + cost < best)
        best = d[i - 1][j - 1] + cost;
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
          d[i - 2][j - 2] + 1 < best)
        best = d[i - 2][j - 2] + 1;
      d[i][j] = best;
    }
  }
  return d[la][lb];
}

/* Appends " (did you mean 'x'?)" to out when one of the n names is close
 * to s; out is left empty otherwise. */
static void did_you_mean(char *out, size_t cap, const char *s, size_t len,
                         const char *const *names, size_t n) {
  size_t best = (size_t)-1;
  const char *pick = NULL;
  out[0] = '\0';
  for (size_t i = 0; i < n; i++) {
    size_t nl = strlen(names[i]);
    size_t d = edit_distance(s, len, names[i], nl);
    /* Two edits for longer words, one for short ones, and never as many
     * edits as the shorter word has letters ('c' is not a typo of 'b'). */
    size_t allowed = nl <= 4 ? 1 : 2;
    if (d <= allowed && d < (len < nl ? len : nl) && d < best) {
      best = d;
      pick = names[i];
    }
  }
  if (pick)
    snprintf(out, cap, " (did you mean '%s'?)", pick);
}

static void unknown_key(cfg *g, const gw_ynode *key, const keydef *defs,
                        size_t n, const char *where) {
  const char *names[32];
  size_t m = 0;
  for (size_t i = 0; i < n && m < 32; i++)
    names[m++] = defs[i].key;
  char hint[96];
  did_you_mean(hint, sizeof(hint), key->value, key->len, names, m);
  gw_diag_error(g->diag, g->file, key->line, "unknown key '%s'%s%s",
                show_node(g, key), where, hint);
}

static void wrong_kind(cfg *g, const char *name, const char *where,
                       const char *want, const gw_ynode *val) {
  gw_diag_error(g->diag, g->file, val->line, "'%s'%s must be %s, found a %s",
                name, where, want, gw_ynode_kind_name(val));
}

/* --- value parsers ---------------------------------------------------- */

/* Reads the digits at *s into a saturating count. Returns the number of
 * digits. */
static size_t read_digits(const char **s, uint64_t *v) {
  size_t n = 0;
  *v = 0;
  while (**s >= '0' && **s <= '9') {
    uint64_t d = (uint64_t)(**s - '0');
    *v = *v > (UINT64_MAX - d) / 10 ? UINT64_MAX : *v * 10 + d;
    (*s)++;
    n++;
  }
  return n;
}

static uint64_t mul_sat(uint64_t a, uint64_t b) {
  return b != 0 && a > UINT64_MAX / b ? UINT64_MAX : a * b;
}

/* Durations to ms, saturating rather than overflowing, so a huge value is
 * reported as out of range rather than as malformed. */
static int parse_duration(const char *s, uint64_t *ms) {
  uint64_t n;
  if (read_digits(&s, &n) == 0)
    return -1;
  if (strcmp(s, "us") == 0)
    *ms = n / 1000 + (n % 1000 != 0); /* rounded up: 500us is not 0 */
  else if (strcmp(s, "ms") == 0)
    *ms = n;
  else if (strcmp(s, "s") == 0)
    *ms = mul_sat(n, 1000);
  else if (strcmp(s, "m") == 0)
    *ms = mul_sat(n, 60 * 1000);
  else if (strcmp(s, "h") == 0)
    *ms = mul_sat(n, 3600 * 1000);
  else
    return -1;
  return 0;
}

static int parse_size(const char *s, uint64_t *bytes) {
  static const struct {
    const char *unit;
    uint64_t mult;
  } units[] = {
      {"", 1},         {"B", 1},           {"KB", 1000},
      {"MB", 1000000}, {"GB", 1000000000}, {"KiB", KIB},
      {"MiB", MIB},    {"GiB", GIB},
  };
  uint64_t n;
  if (read_digits(&s, &n) == 0)
    return -1;
  for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
    if (strcmp(s, units[i].unit) == 0) {
      *bytes = mul_sat(n, units[i].mult);
      return 0;
    }
  }
  return -1;
}

/* Decimal integers only (YAML 1.2 core): "-"? digits, saturating. */
static int parse_int(const char *s, int64_t *v) {
  int neg = *s == '-';
  if (neg)
    s++;
  uint64_t u;
  if (read_digits(&s, &u) == 0 || *s != '\0')
    return -1;
  if (u > (uint64_t)INT64_MAX)
    u = (uint64_t)INT64_MAX;
  *v = neg ? -(int64_t)u : (int64_t)u;
  return 0;
}

int gw_config_parse_duration_ms(const char *s, uint32_t *ms) {
  uint64_t v;
  if (!s || parse_duration(s, &v) != 0 || v > UINT32_MAX)
    return -1;
  *ms = (uint32_t)v;
  return 0;
}

int gw_config_parse_size(const char *s, uint32_t *bytes) {
  uint64_t v;
  if (!s || parse_size(s, &v) != 0 || v > UINT32_MAX)
    return -1;
  *bytes = (uint32_t)v;
  return 0;
}

static int is_host_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
}

int gw_config_parse_hostport(const char *s, bt_arena *arena, const char **host,
                             int *port) {
  if (!s)
    return -1;
  const char *h, *colon;
  size_t hlen;
  if (s[0] == '[') {
    const char *end = strchr(s, ']');
    if (!end || end[1] != ':')
      return -1;
    h = s + 1;
    hlen = (size_t)(end - h);
    char buf[64];
    unsigned char addr[16];
    if (hlen == 0 || hlen >= sizeof(buf))
      return -1;
    memcpy(buf, h, hlen);
    buf[hlen] = '\0';
    if (inet_pton(AF_INET6, buf, addr) != 1)
      return -1;
    colon = end + 1;
  } else {
    colon = strrchr(s, ':');
    if (!colon)
      return -1;
    h = s;
    hlen = (size_t)(colon - s);
    if (hlen == 0 || hlen > 253)
      return -1;
    for (size_t i = 0; i < hlen; i++) {
      if (!is_host_char(h[i]))
        return -1;
    }
  }
  const char *p = colon + 1;
  uint64_t v;
  size_t digits = read_digits(&p, &v);
  if (digits == 0 || digits > 5 || *p != '\0' || v > 65535)
    return -1;
  *host = bt_arena_strndup(arena, h, hlen);
  *port = (int)v;
  return 0;
}

/* --- scalars ---------------------------------------------------------- */

static int is_null(const gw_ynode *n) {
  if (n->kind != GW_Y_SCALAR || n->quoted)
    return 0;
  return n->len == 0 || strcmp(n->value, "~") == 0 ||
         strcmp(n->value, "null") == 0 || strcmp(n->value, "Null") == 0 ||
         strcmp(n->value, "NULL") == 0;
}

/* The text of a scalar value, or NULL after an error. */
static const char *scalar_text(cfg *g, const char *name, const char *where,
                               const char *want, const gw_ynode *val) {
  if (val->kind != GW_Y_SCALAR) {
    wrong_kind(g, name, where, want, val);
    return NULL;
  }
  if (is_null(val)) {
    gw_diag_error(g->diag, g->file, val->line, "'%s'%s needs a value", name,
                  where);
    return NULL;
  }
  if (strlen(val->value) != val->len) {
    gw_diag_error(g->diag, g->file, val->line, "'%s'%s contains a NUL byte",
                  name, where);
    return NULL;
  }
  return val->value;
}

static void format_value(char *out, size_t cap, key_kind kind, int64_t v) {
  if (kind == K_SIZE || kind == K_BIGSIZE) {
    uint64_t u = (uint64_t)v;
    if (u >= GIB && u % GIB == 0)
      snprintf(out, cap, "%lluGiB", (unsigned long long)(u / GIB));
    else if (u >= MIB && u % MIB == 0)
      snprintf(out, cap, "%lluMiB", (unsigned long long)(u / MIB));
    else if (u >= KIB && u % KIB == 0)
      snprintf(out, cap, "%lluKiB", (unsigned long long)(u / KIB));
    else
      snprintf(out, cap, "%llu", (unsigned long long)u);
  } else if (kind == K_DURATION) {
    if (v >= 3600000 && v % 3600000 == 0)
      snprintf(out, cap, "%lldh", (long long)(v / 3600000));
    else if (v >= 60000 && v % 60000 == 0)
      snprintf(out, cap, "%lldm", (long long)(v / 60000));
    else if (v >= 1000 && v % 1000 == 0)
      snprintf(out, cap, "%llds", (long long)(v / 1000));
    else
      snprintf(out, cap, "%lldms", (long long)v);
  } else {
    snprintf(out, cap, "%lld", (long long)v);
  }
}

/* Joins the config's folder and a path from the config. */
static const char *resolve_path(cfg *g, const char *p) {
  if (p[0] == '/' || !g->dir)
    return bt_arena_strndup(g->arena, p, strlen(p));
  size_t dl = strlen(g->dir), pl = strlen(p);
  int slash = g->dir[dl - 1] != '/';
  char *out = bt_arena_alloc(g->arena, dl + slash + pl + 1);
  memcpy(out, g->dir, dl);
  if (slash)
    out[dl] = '/';
  memcpy(out + dl + slash, p, pl + 1);
  return out;
}

static int check_readable(cfg *g, const char *name, const char *where,
                          const char *path, int line) {
  struct stat st;
  const char *why = NULL;
  if (stat(path, &st) != 0)
    why = strerror(errno);
  else if (!S_ISREG(st.st_mode))
    why = "not a regular file";
  else if (access(path, R_OK) != 0)
    why = strerror(errno);
  if (!why)
    return 0;
  gw_diag_error(g->diag, g->file, line, "'%s'%s: cannot read '%s': %s", name,
                where, show(g, path, strlen(path)), why);
  return -1;
}

/* Checks val against d and stores it in base. */
static void set_value(cfg *g, const keydef *d, const gw_ynode *key,
                      gw_ynode *val, void *base, const char *where) {
  static const char *const want[] = {
      [K_INT] = "an integer",
      [K_U32] = "an integer",
      [K_SIZE] = "a size (like 512, 64KiB, 4MiB)",
      [K_BIGSIZE] = "a size (like 512, 64KiB, 4MiB, 1GiB)",
      [K_DURATION] = "a duration (like 500us, 250ms, 2s, 1m, 1h)",
      [K_BOOL] = "true or false",
      [K_STRING] = "a string",
      [K_PATH] = "a file path",
  };
  char *target = (char *)base + d->offset;
  if (d->kind == K_SECTION) {
    d->fn(g, d, key, val, base, where);
    return;
  }
  const char *s = scalar_text(g, d->key, where, want[d->kind], val);
  if (!s)
    return;

  int64_t v = 0;
  switch (d->kind) {
  case K_STRING:
    *(const char **)target = s;
    return;
  case K_PATH: {
    const char *p = resolve_path(g, s);
    if (check_readable(g, d->key, where, p, val->line) == 0)
      *(const char **)target = p;
    return;
  }
  case K_BOOL:
    /* YAML 1.2 core: yes/no/on/off are strings, not booleans. */
    if (!val->quoted && strcmp(s, "true") == 0) {
      *(int *)target = 1;
    } else if (!val->quoted && strcmp(s, "false") == 0) {
      *(int *)target = 0;
    } else {
      gw_diag_error(g->diag, g->file, val->line,
                    "'%s'%s must be true or false, got '%s'%s", d->key, where,
                    show_node(g, val), val->quoted ? " (a quoted string)" : "");
    }
    return;
  case K_INT:
  case K_U32:
    if (val->quoted || parse_int(s, &v) != 0) {
      gw_diag_error(g->diag, g->file, val->line,
                    "'%s'%s must be an integer, got '%s'%s", d->key, where,
                    show_node(g, val), val->quoted ? " (a quoted string)" : "");
      return;
    }
    break;
  case K_SIZE:
  case K_BIGSIZE:
  case K_DURATION: {
    uint64_t u;
    int rv = d->kind == K_DURATION ? parse_duration(s, &u) : parse_size(s, &u);
    if (rv != 0) {
      gw_diag_error(g->diag, g->file, val->line, "'%s'%s must be %s, got '%s'",
                    d->key, where, want[d->kind], show_node(g, val));
      return;
    }
    v = u > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)u;
    break;
  }
  default:
    return;
  }
  if (v < d->min || v > d->max) {
    char lo[32], hi[32];
    format_value(lo, sizeof(lo), d->kind, d->min);
    format_value(hi, sizeof(hi), d->kind, d->max);
    gw_diag_error(g->diag, g->file, val->line,
                  "'%s'%s must be between %s and %s, got '%s'", d->key, where,
                  lo, hi, show_node(g, val));
    return;
  }
  if (d->kind == K_INT)
    *(int *)target = (int)v;
  else if (d->kind == K_BIGSIZE)
    *(size_t *)target = (size_t)v;
  else
    *(uint32_t *)target = (uint32_t)v;
}

static void apply_defaults(const keydef *defs, size_t n, void *base) {
  for (size_t i = 0; i < n; i++) {
    char *target = (char *)base + defs[i].offset;
    switch (defs[i].kind) {
    case K_INT:
    case K_BOOL:
      *(int *)target = (int)defs[i].def;
      break;
    case K_U32:
    case K_SIZE:
    case K_DURATION:
      *(uint32_t *)target = (uint32_t)defs[i].def;
      break;
    case K_BIGSIZE:
      *(size_t *)target = (size_t)defs[i].def;
      break;
    default:
      break;
    }
  }
}

/* Checks map against the table defs and stores what it says in base.
 * where (" in backend 'x'", or "" at the top) and line (where the map is
 * named) are for messages. */
static void walk(cfg *g, const char *name, gw_ynode *map, const keydef *defs,
                 size_t n, void *base, const char *where, int line) {
  if (map->kind != GW_Y_MAP) {
    gw_diag_error(g->diag, g->file, map->line, "'%s' must be a map, found a %s",
                  name, gw_ynode_kind_name(map));
    return;
  }
  unsigned char seen[64] = {0};
  for (size_t i = 0; i < map->n; i++) {
    const gw_ynode *key = map->keys[i];
    size_t j;
    for (j = 0; j < n; j++) {
      if (strlen(defs[j].key) == key->len &&
          memcmp(defs[j].key, key->value, key->len) == 0)
        break;
    }
    if (j == n) {
      unknown_key(g, key, defs, n, where);
      continue;
    }
    seen[j] = 1;
    set_value(g, &defs[j], key, map->values[i], base, where);
  }
  for (size_t j = 0; j < n; j++) {
    if (defs[j].required && !seen[j])
      gw_diag_error(g->diag, g->file, line, "missing required key '%s'%s",
                    defs[j].key, where);
  }
}

#define NKEYS(t) (sizeof(t) / sizeof((t)[0]))

/* --- tls -------------------------------------------------------------- */

static const keydef listen_tls_keys[] = {
    {"cert", K_PATH, 1, 0, 0, 0, offsetof(gw_tls_config, cert), NULL},
    {"key", K_PATH, 1, 0, 0, 0, offsetof(gw_tls_config, key), NULL},
    {"ca", K_PATH, 0, 0, 0, 0, offsetof(gw_tls_config, ca), NULL},
    {"require_client_cert", K_BOOL, 0, 0, 1, 0,
     offsetof(gw_tls_config, require_client_cert), NULL},
};

static const keydef backend_tls_keys[] = {
    {"ca", K_PATH, 0, 0, 0, 0, offsetof(gw_tls_config, ca), NULL},
    {"cert", K_PATH, 0, 0, 0, 0, offsetof(gw_tls_config, cert), NULL},
    {"key", K_PATH, 0, 0, 0, 0, offsetof(gw_tls_config, key), NULL},
    {"server_name", K_STRING, 0, 0, 0, 0, offsetof(gw_tls_config, server_name),
     NULL},
    {"verify_hostname", K_BOOL, 0, 0, 1, 1,
     offsetof(gw_tls_config, verify_hostname), NULL},
};

static void listen_tls(cfg *g, const keydef *d, const gw_ynode *key,
                       gw_ynode *val, void *base, const char *where) {
  gw_listen_config *l = base;
  walk(g, "tls", val, listen_tls_keys, NKEYS(listen_tls_keys), &l->tls,
       " in listen tls", key->line);
  l->has_tls = 1;
  if (l->tls.require_client_cert && !gw_ynode_get(val, "ca"))
    gw_diag_error(g->diag, g->file, key->line,
                  "'require_client_cert' in listen tls needs 'ca' to check "
                  "client certificates against");
}

static void backend_tls(cfg *g, const keydef *d, const gw_ynode *key,
                        gw_ynode *val, void *base, const char *where) {
  gw_backend_config *b = base;
  char w[160];
  snprintf(w, sizeof(w), " in tls of backend '%s'",
           show(g, b->name, strlen(b->name)));
  walk(g, "tls", val, backend_tls_keys, NKEYS(backend_tls_keys), &b->tls, w,
       key->line);
  b->has_tls = 1;
  if (val->kind == GW_Y_MAP &&
      !gw_ynode_get(val, "cert") != !gw_ynode_get(val, "key"))
    gw_diag_error(g->diag, g->file, key->line,
                  "'cert' and 'key'%s go together (a client certificate "
                  "needs its key)",
                  w);
}

/* --- listen ----------------------------------------------------------- */

static void listen_address(cfg *g, const keydef *d, const gw_ynode *key,
                           gw_ynode *val, void *base, const char *where) {
  gw_listen_config *l = base;
  const char *s = scalar_text(g, "address", where, "host:port", val);
  if (!s)
    return;
  if (gw_config_parse_hostport(s, g->arena, &l->host, &l->port) != 0) {
    l->host = NULL;
    gw_diag_error(g->diag, g->file, val->line,
                  "'address'%s must be host:port or [v6]:port, got '%s'", where,
                  show_node(g, val));
  }
}

static const keydef listen_keys[] = {
    {"address", K_SECTION, 1, 0, 0, 0, 0, listen_address},
    {"tls", K_SECTION, 0, 0, 0, 0, 0, listen_tls},
};

static void listen_section(cfg *g, const keydef *d, const gw_ynode *key,
                           gw_ynode *val, void *base, const char *where) {
  gw_config *c = base;
  gw_ynode *const *items = &val;
  size_t n = 1;
  if (val->kind == GW_Y_SEQ) {
    items = val->values;
    n = val->n;
    if (n == 0) {
      gw_diag_error(g->diag, g->file, val->line,
                    "'listen' must name at least one listener");
      return;
    }
  } else if (val->kind != GW_Y_MAP) {
    wrong_kind(g, "listen", "", "a map or a sequence of maps", val);
    return;
  }
  c->listeners = bt_arena_calloc(g->arena, n * sizeof(*c->listeners));
  for (size_t i = 0; i < n; i++) {
    gw_listen_config *l = &c->listeners[c->n_listeners];
    if (items[i]->kind != GW_Y_MAP) {
      wrong_kind(g, "listen", "", "a map or a sequence of maps", items[i]);
      continue;
    }
    l->line = items[i]->line;
    walk(g, "listen", items[i], listen_keys, NKEYS(listen_keys), l,
         " in listen", val->kind == GW_Y_SEQ ? items[i]->line : key->line);
    if (!l->host)
      continue;
    for (size_t j = 0; j < c->n_listeners; j++) {
      const gw_listen_config *o = &c->listeners[j];
      if (o->port == l->port && strcmp(o->host, l->host) == 0) {
        gw_diag_error(g->diag, g->file, l->line,
                      "listen address '%s:%d' is used twice (first at line "
                      "%d)",
                      show(g, l->host, strlen(l->host)), l->port, o->line);
        break;
      }
    }
    c->n_listeners++;
  }
}

/* --- limits ----------------------------------------------------------- */

static const keydef limits_keys[] = {
    {"max_recv_message", K_SIZE, 0, KIB, GIB, 4 * MIB,
     offsetof(gw_config, max_recv_message), NULL},
    {"max_concurrent_streams", K_U32, 0, 1, 100000, 1000,
     offsetof(gw_config, max_concurrent_streams), NULL},
    {"max_header_list", K_SIZE, 0, KIB, MIB, 16 * KIB,
     offsetof(gw_config, max_header_list), NULL},
    {"idle_timeout", K_DURATION, 0, 1, DAY_MS, 300 * 1000,
     offsetof(gw_config, idle_timeout_ms), NULL},
    {"handshake_timeout", K_DURATION, 0, 1, HOUR_MS, 10 * 1000,
     offsetof(gw_config, handshake_timeout_ms), NULL},
    {"max_message_depth", K_U32, 0, 1, 1000, 64,
     offsetof(gw_config, max_message_depth), NULL},
    /* Memory a client can make the gateway hold (bt_server_opts). */
    {"connection_buffer", K_BIGSIZE, 0, 64 * KIB, 64 * GIB, 32 * MIB,
     offsetof(gw_config, connection_buffer), NULL},
    {"process_buffer", K_BIGSIZE, 0, 0, 1024 * GIB, GIB,
     offsetof(gw_config, process_buffer), NULL},
    {"buffer_timeout", K_DURATION, 0, 1, HOUR_MS, 5 * 1000,
     offsetof(gw_config, buffer_timeout_ms), NULL},
    {"stream_buffer", K_BIGSIZE, 0, 16 * KIB, GIB, MIB,
     offsetof(gw_config, stream_buffer), NULL},
    {"decoded_factor", K_U32, 0, 1, 1000, 16,
     offsetof(gw_config, decoded_factor), NULL},
    {"decoded_floor", K_BIGSIZE, 0, 0, GIB, MIB,
     offsetof(gw_config, decoded_floor), NULL},
    /* Time a client can make the gateway wait. */
    {"request_header_timeout", K_DURATION, 0, 0, DAY_MS, 10 * 1000,
     offsetof(gw_config, request_header_timeout_ms), NULL},
    {"stream_idle_timeout", K_DURATION, 0, 0, DAY_MS, 300 * 1000,
     offsetof(gw_config, stream_idle_timeout_ms), NULL},
    {"max_connections", K_U32, 0, 0, 10000000, 10000,
     offsetof(gw_config, max_connections), NULL},
    {"glitch_burst", K_U32, 0, 0, 10000000, 1000,
     offsetof(gw_config, glitch_burst), NULL},
    {"glitch_rate", K_U32, 0, 0, 10000000, 33, offsetof(gw_config, glitch_rate),
     NULL},
    /* Default timeouts of steps and routes that set none (0: none). */
    {"step_timeout", K_DURATION, 0, 1, DAY_MS, 10 * 1000,
     offsetof(gw_config, step_timeout_ms), NULL},
    {"route_timeout", K_DURATION, 0, 0, DAY_MS, 60 * 1000,
     offsetof(gw_config, route_timeout_ms), NULL},
};

static void limits_section(cfg *g, const keydef *d, const gw_ynode *key,
                           gw_ynode *val, void *base, const char *where) {
  if (is_null(val))
    return;
  walk(g, "limits", val, limits_keys, NKEYS(limits_keys), base, " in limits",
       key->line);
}

/* --- forward_metadata ------------------------------------------------- */

static void forward_metadata_section(cfg *g, const keydef *d,
                                     const gw_ynode *key, gw_ynode *val,
                                     void *base, const char *where) {
  gw_config *c = base;
  if (is_null(val))
    return;
  if (val->kind != GW_Y_SEQ) {
    wrong_kind(g, "forward_metadata", "", "a sequence of metadata keys", val);
    return;
  }
  c->forward_metadata =
      bt_arena_calloc(g->arena, (val->n ? val->n : 1) * sizeof(char *));
  for (size_t i = 0; i < val->n; i++) {
    const gw_ynode *item = val->values[i];
    const char *s =
        scalar_text(g, "forward_metadata", "", "a list of metadata keys", item);
    if (!s)
      continue;
    if (!bt_metadata_key_is_valid(s, item->len)) {
      gw_diag_error(g->diag, g->file, item->line,
                    "'%s' in forward_metadata is not a metadata key "
                    "(lowercase letters, digits, '-', '_' and '.')",
                    show_node(g, item));
      continue;
    }
    if (bt_metadata_key_is_reserved(s, item->len)) {
      gw_diag_error(g->diag, g->file, item->line,
                    "'%s' in forward_metadata is set by the transport and "
                    "cannot be forwarded",
                    s);
      continue;
    }
    if (strncmp(s, "baton-", 6) == 0) {
      gw_diag_error(g->diag, g->file, item->line,
                    "'%s' in forward_metadata: baton-* keys are the "
                    "gateway's own (saga ids) and never taken from clients",
                    s);
      continue;
    }
    size_t j;
    for (j = 0; j < c->n_forward_metadata; j++) {
      if (strcmp(c->forward_metadata[j], s) == 0)
        break;
    }
    if (j < c->n_forward_metadata) {
      gw_diag_error(g->diag, g->file, item->line,
                    "'%s' is listed twice in forward_metadata", s);
      continue;
    }
    c->forward_metadata[c->n_forward_metadata++] = s;
  }
}

/* --- backends --------------------------------------------------------- */

static void endpoints_key(cfg *g, const keydef *d, const gw_ynode *key,
                          gw_ynode *val, void *base, const char *where) {
  gw_backend_config *b = base;
  if (val->kind != GW_Y_SEQ) {
    wrong_kind(g, "endpoints", where, "a sequence of host:port", val);
    return;
  }
  if (val->n == 0) {
    gw_diag_error(g->diag, g->file, val->line,
                  "'endpoints'%s must name at least one endpoint", where);
    return;
  }
  b->endpoints = bt_arena_calloc(g->arena, val->n * sizeof(*b->endpoints));
  for (size_t i = 0; i < val->n; i++) {
    const gw_ynode *item = val->values[i];
    const char *s = scalar_text(g, "endpoints", where, "host:port", item);
    if (!s)
      continue;
    gw_endpoint *e = &b->endpoints[b->n_endpoints];
    if (gw_config_parse_hostport(s, g->arena, &e->host, &e->port) != 0 ||
        e->port == 0) {
      gw_diag_error(g->diag, g->file, item->line,
                    "endpoint '%s'%s must be host:port or [v6]:port with a "
                    "port from 1 to 65535",
                    show_node(g, item), where);
      continue;
    }
    b->n_endpoints++;
  }
}

static const keydef backend_keys[] = {
    {"endpoints", K_SECTION, 1, 0, 0, 0, 0, endpoints_key},
    {"tls", K_SECTION, 0, 0, 0, 0, 0, backend_tls},
    {"connect_timeout", K_DURATION, 0, 1, HOUR_MS, 1000,
     offsetof(gw_backend_config, connect_timeout_ms), NULL},
    /* Up to 32 connections per endpoint and worker, each filled to
     * max_streams calls before the next is used (opened on demand): a grpc++
     * server spends less CPU per call with many calls in flight over
     * several connections than with a few crowded ones (bench/run, series
     * 2; nghttpx's best setting there is 32 streams per connection). */
    {"connections", K_U32, 0, 1, 64, 32,
     offsetof(gw_backend_config, connections), NULL},
    {"max_streams", K_U32, 0, 1, 10000, 32,
     offsetof(gw_backend_config, max_streams), NULL},
    {"max_recv_message", K_SIZE, 0, KIB, GIB, 4 * MIB,
     offsetof(gw_backend_config, max_recv_message), NULL},
    /* What a backend, or too much load on it, can make the gateway hold. */
    {"max_pending", K_U32, 0, 0, 1000000, 1024,
     offsetof(gw_backend_config, max_pending), NULL},
    {"pending_timeout", K_DURATION, 0, 0, HOUR_MS, 5 * 1000,
     offsetof(gw_backend_config, pending_timeout_ms), NULL},
    {"max_header_list", K_SIZE, 0, KIB, 16 * MIB, 64 * KIB,
     offsetof(gw_backend_config, max_header_list), NULL},
    {"buffer", K_BIGSIZE, 0, 64 * KIB, 64 * GIB, 64 * MIB,
     offsetof(gw_backend_config, buffer), NULL},
};

/* Backend names appear in flows as "name pkg.Service/Method": a name is one
 * word. */
static int valid_name(const char *s, size_t len) {
  if (len == 0 || strlen(s) != len)
    return 0;
  for (size_t i = 0; i < len; i++) {
    if (!is_host_char(s[i]))
      return 0;
  }
  return 1;
}

static void backends_section(cfg *g, const keydef *d, const gw_ynode *key,
                             gw_ynode *val, void *base, const char *where) {
  gw_config *c = base;
  if (is_null(val))
    return;
  if (val->kind != GW_Y_MAP) {
    wrong_kind(g, "backends", "", "a map of name to backend", val);
    return;
  }
  c->backends =
      bt_arena_calloc(g->arena, (val->n ? val->n : 1) * sizeof(*c->backends));
  for (size_t i = 0; i < val->n; i++) {
    const gw_ynode *name = val->keys[i];
    gw_ynode *body = val->values[i];
    if (!valid_name(name->value, name->len)) {
      gw_diag_error(g->diag, g->file, name->line,
                    "backend name '%s' must be letters, digits, '-', '_' "
                    "and '.'",
                    show_node(g, name));
      continue;
    }
    gw_backend_config *b = &c->backends[c->n_backends++];
    b->name = name->value;
    b->line = name->line;
    apply_defaults(backend_keys, NKEYS(backend_keys), b);
    apply_defaults(backend_tls_keys, NKEYS(backend_tls_keys), &b->tls);
    char w[128];
    snprintf(w, sizeof(w), " in backend '%s'", b->name);
    if (body->kind != GW_Y_MAP) {
      gw_diag_error(g->diag, g->file, body->line,
                    "backend '%s' must be a map, found a %s", b->name,
                    gw_ynode_kind_name(body));
      continue;
    }
    walk(g, b->name, body, backend_keys, NKEYS(backend_keys), b, w, name->line);
  }
}

/* --- routes ----------------------------------------------------------- */

static void route_prefix(cfg *g, const keydef *d, const gw_ynode *key,
                         gw_ynode *val, void *base, const char *where) {
  gw_route_config *r = base;
  const char *s = scalar_text(g, "prefix", where, "a string", val);
  if (!s)
    return;
  int ok = s[0] == '/';
  for (size_t i = 0; ok && i < val->len; i++)
    ok = (unsigned char)s[i] > ' ' && s[i] != 0x7f;
  if (!ok) {
    gw_diag_error(g->diag, g->file, val->line,
                  "'prefix'%s must be a path like /pkg.Service/ or "
                  "/pkg.Service/Method, got '%s'",
                  where, show_node(g, val));
    return;
  }
  r->prefix = s;
}

static const keydef route_keys[] = {
    {"prefix", K_SECTION, 1, 0, 0, 0, 0, route_prefix},
    {"backend", K_STRING, 1, 0, 0, 0, offsetof(gw_route_config, backend), NULL},
    /* Unset: limits.route_timeout; 0s: only the client's deadline. */
    {"timeout", K_DURATION, 0, 0, DAY_MS, GW_TIMEOUT_UNSET,
     offsetof(gw_route_config, timeout_ms), NULL},
};

static void routes_section(cfg *g, const keydef *d, const gw_ynode *key,
                           gw_ynode *val, void *base, const char *where) {
  gw_config *c = base;
  if (is_null(val))
    return;
  if (val->kind != GW_Y_SEQ) {
    wrong_kind(g, "routes", "", "a sequence of routes", val);
    return;
  }
  c->routes =
      bt_arena_calloc(g->arena, (val->n ? val->n : 1) * sizeof(*c->routes));
  for (size_t i = 0; i < val->n; i++) {
    gw_ynode *item = val->values[i];
    if (item->kind != GW_Y_MAP) {
      wrong_kind(g, "routes", "", "a sequence of maps", item);
      continue;
    }
    gw_route_config *r = &c->routes[c->n_routes++];
    r->line = item->line;
    apply_defaults(route_keys, NKEYS(route_keys), r);
    walk(g, "route", item, route_keys, NKEYS(route_keys), r, " in route",
         item->line);
  }
}

/* Routes may come before the backends in the file: names are checked once
 * everything is read. */
static void check_routes(cfg *g) {
  gw_config *c = g->c;
  const char **names = bt_arena_alloc(
      g->arena, (c->n_backends ? c->n_backends : 1) * sizeof(*names));
  for (size_t i = 0; i < c->n_backends; i++)
    names[i] = c->backends[i].name;
  for (size_t i = 0; i < c->n_routes; i++) {
    gw_route_config *r = &c->routes[i];
    /* limits may come after routes in the file: resolved once all is read. */
    if (r->timeout_ms == GW_TIMEOUT_UNSET) {
      r->timeout_ms = c->route_timeout_ms;
      r->timeout_is_default = 1;
    }
    const gw_backend_config *b = gw_config_backend(c, r->backend);
    if (b) /* resolved once here, not per request */
      r->backend_index = (size_t)(b - c->backends);
    else if (r->backend) {
      char hint[96];
      did_you_mean(hint, sizeof(hint), r->backend, strlen(r->backend), names,
                   c->n_backends);
      gw_diag_error(
          g->diag, g->file, r->line, "route%s%s%s names unknown backend '%s'%s",
          r->prefix ? " '" : "",
          r->prefix ? show(g, r->prefix, strlen(r->prefix)) : "",
          r->prefix ? "'" : "", show(g, r->backend, strlen(r->backend)), hint);
    }
    for (size_t j = 0; r->prefix && j < i; j++) {
      const gw_route_config *o = &c->routes[j];
      if (o->prefix && strcmp(o->prefix, r->prefix) == 0) {
        gw_diag_error(g->diag, g->file, r->line,
                      "route prefix '%s' is used twice (first at line %d)",
                      show(g, r->prefix, strlen(r->prefix)), o->line);
        break;
      }
    }
  }
}

/* --- saga_log --------------------------------------------------------- */

static const keydef saga_keys[] = {
    {"sqlite", K_STRING, 0, 0, 0, 0, offsetof(gw_config, saga_sqlite), NULL},
    {"postgres", K_STRING, 0, 0, 0, 0, offsetof(gw_config, saga_postgres),
     NULL},
    {"owner", K_STRING, 0, 0, 0, 0, offsetof(gw_config, saga_owner), NULL},
    {"lease", K_DURATION, 0, 100, HOUR_MS, 10 * 1000,
     offsetof(gw_config, saga_lease_ms), NULL},
    /* 0: each batch commits as soon as the writer wakes (what has always
     * run when the key is absent). */
    {"group_commit", K_DURATION, 0, 0, 1000, 0,
     offsetof(gw_config, saga_group_commit_us), NULL},
};

static void saga_log_section(cfg *g, const keydef *d, const gw_ynode *key,
                             gw_ynode *val, void *base, const char *where) {
  gw_config *c = base;
  if (is_null(val))
    return;
  c->saga_line = key->line;
  /* Absent keys take the table's defaults: the lease timer needs one. */
  apply_defaults(saga_keys, NKEYS(saga_keys), base);
  walk(g, "saga_log", val, saga_keys, NKEYS(saga_keys), base, " in saga_log",
       key->line);
  /* group_commit is read in ms like every duration; the log wants us. */
  c->saga_group_commit_us *= 1000;
  if (!!c->saga_sqlite == !!c->saga_postgres) {
    gw_diag_error(g->diag, g->file, key->line,
                  "saga_log needs exactly one of sqlite or postgres");
    return;
  }
  if (c->saga_sqlite && c->saga_sqlite[0] != '/' && g->dir) {
    size_t n = strlen(g->dir) + strlen(c->saga_sqlite) + 2;
    char *p = bt_arena_alloc(g->arena, n);
    snprintf(p, n, "%s/%s", g->dir, c->saga_sqlite);
    c->saga_sqlite = p;
  }
}

/* --- top level -------------------------------------------------------- */

static void flows_section(cfg *g, const keydef *d, const gw_ynode *key,
                          gw_ynode *val, void *base, const char *where) {
  gw_config *c = base;
  if (is_null(val))
    return;
  if (val->kind != GW_Y_MAP) {
    wrong_kind(g, "flows", "", "a map of method to flow", val);
    return;
  }
  c->flows = val;
}

static void descriptors_key(cfg *g, const keydef *d, const gw_ynode *key,
                            gw_ynode *val, void *base, const char *where) {
  gw_config *c = base;
  static const keydef path = {
      "descriptors", K_PATH, 1, 0, 0, 0, offsetof(gw_config, descriptors),
      NULL};
  c->descriptors_line = val->line;
  set_value(g, &path, key, val, base, where);
}

static const keydef top_keys[] = {
    {"listen", K_SECTION, 1, 0, 0, 0, 0, listen_section},
    {"descriptors", K_SECTION, 1, 0, 0, 0, 0, descriptors_key},
    {"workers", K_INT, 0, 0, 256, 0, offsetof(gw_config, workers), NULL},
    {"limits", K_SECTION, 0, 0, 0, 0, 0, limits_section},
    {"forward_metadata", K_SECTION, 0, 0, 0, 0, 0, forward_metadata_section},
    {"backends", K_SECTION, 0, 0, 0, 0, 0, backends_section},
    {"routes", K_SECTION, 0, 0, 0, 0, 0, routes_section},
    {"flows", K_SECTION, 0, 0, 0, 0, 0, flows_section},
    {"saga_log", K_SECTION, 0, 0, 0, 0, 0, saga_log_section},
};

/* Reads root into a new config; with partial, returns it even after
 * errors (as long as root is a map). */
static gw_config *build(const char *path, gw_ynode *root, bt_arena *arena,
                        gw_diag *diag, int partial) {
  size_t errors_before = gw_diag_count(diag);
  if (!path)
    path = "";
  if (!root) {
    if (gw_diag_count(diag) == errors_before)
      gw_diag_error(diag, path, 0, "empty configuration");
    return NULL;
  }
  gw_config *c = bt_arena_calloc(arena, sizeof(*c));
  c->path = bt_arena_strndup(arena, path, strlen(path));
  const char *slash = strrchr(path, '/');
  if (!slash)
    c->dir = ".";
  else if (slash == path)
    c->dir = "/";
  else
    c->dir = bt_arena_strndup(arena, path, (size_t)(slash - path));
  c->root = root;
  apply_defaults(top_keys, NKEYS(top_keys), c);
  apply_defaults(limits_keys, NKEYS(limits_keys), c);

  cfg g = {path, slash ? c->dir : NULL, arena, diag, c};
  if (root->kind != GW_Y_MAP) {
    gw_diag_error(diag, path, root->line,
                  "the configuration must be a map, found a %s",
                  gw_ynode_kind_name(root));
    return NULL;
  }
  walk(&g, "configuration", root, top_keys, NKEYS(top_keys), c, "", root->line);
  check_routes(&g);
  return partial || gw_diag_count(diag) == errors_before ? c : NULL;
}

gw_config *gw_config_from_yaml(const char *path, gw_ynode *root,
                               bt_arena *arena, gw_diag *diag) {
  return build(path, root, arena, diag, 0);
}

gw_config *gw_config_load(const char *path, bt_arena *arena, gw_diag *diag) {
  gw_ynode *root = gw_ynode_load(path, arena, diag);
  if (!root)
    return NULL;
  return build(path, root, arena, diag, 0);
}

gw_config *gw_config_load_partial(const char *path, bt_arena *arena,
                                  gw_diag *diag) {
  gw_ynode *root = gw_ynode_load(path, arena, diag);
  if (!root)
    return NULL;
  return build(path, root, arena, diag, 1);
}

const gw_backend_config *gw_config_backend(const gw_config *c,
                                           const char *name) {
  if (!c || !name)
    return NULL;
  for (size_t i = 0; i < c->n_backends; i++) {
    if (strcmp(c->backends[i].name, name) == 0)
      return &c->backends[i];
  }
  return NULL;
}
