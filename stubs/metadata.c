/* metadata.c: gRPC metadata, an ordered list of key/value pairs, and the
 * rules for keys (valid, binary, reserved) and for their wire form.
 *
 * Entries live in a growable array; each entry's key and value share one
 * allocation ("key\0value\0"). With an arena every byte comes from it and
 * nothing is freed one by one. */
#include "metadata_wire.h"

#include "base64.h"

#include <baton/alloc.h>
#include <baton/error.h>

#include <string.h>

typedef struct md_entry {
  char *key; /* NUL-terminated; the value follows the NUL */
  uint8_t *value;
  size_t value_len;
} md_entry;

struct bt_metadata {
  bt_arena *arena; /* NULL: heap */
  md_entry *entries;
  size_t count;
  size_t cap;
};

static void *md_alloc(bt_metadata *md, size_t n) {
  return md->arena ? bt_arena_alloc(md->arena, n) : bt_malloc(n);
}

static void md_release(bt_metadata *md, void *p) {
  if (!md->arena)
    bt_free(p);
}

bt_metadata *bt_metadata_new(bt_arena *arena) {
  bt_metadata *md =
      arena ? bt_arena_alloc(arena, sizeof(*md)) : bt_malloc(sizeof(*md));
  md->arena = arena;
  md->entries = NULL;
  md->count = 0;
  md->cap = 0;
  return md;
}

void bt_metadata_free(bt_metadata *md) {
  if (!md || md->arena)
    return;
  for (size_t i = 0; i < md->count; i++)
    bt_free(md->entries[i].key);
  bt_free(md->entries);
  bt_free(md);
}

/* Bytes allowed in a key: a-z 0-9 _ - . (PROTOCOL-HTTP2.md). A table, as
 * every header of every call passes through here. */
static const uint8_t key_char_ok[256] = {
    ['-'] = 1, ['.'] = 1, ['_'] = 1, ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1,
    ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1, ['a'] = 1,
    ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1,
    ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1,
    ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1,
    ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
};

int bt_metadata_key_is_valid(const char *key, size_t len) {
  if (!key || len == 0)
    return 0;
  const unsigned char *k = (const unsigned char *)key;
  unsigned ok = 1;
  for (size_t i = 0; i < len; i++)
    ok &= key_char_ok[k[i]];
  return (int)ok;
}

int bt_metadata_key_is_binary(const char *key, size_t len) {
  return key && len >= 4 && memcmp(key + len - 4, "-bin", 4) == 0;
}

static int key_equals(const char *key, size_t len, const char *lit) {
  size_t n = strlen(lit);
  return len == n && memcmp(key, lit, n) == 0;
}

int bt_metadata_key_is_reserved(const char *key, size_t len) {
  /* Headers the HTTP/2 transport itself writes or that HTTP/2 forbids
   * (connection-specific headers, RFC 9113 section 8.2.2). */
  static const char *const transport[] = {
      "content-type",   "te",      "connection",        "host",
      "keep-alive",     "upgrade", "transfer-encoding", "proxy-connection",
      "content-length", /* of this hop's body: not forwarded */
  };
  /* grpc-* headers the application sets itself. */
  static const char *const user_grpc[] = {
      "grpc-status-details-bin",
      "grpc-trace-bin",
      "grpc-tags-bin",
  };
  if (!key || len == 0)
    return 0;
  if (key[0] == ':')
    return 1;
  /* Every reserved key starts with one of these. */
  if (!strchr("cthkupg", key[0]))
    return 0;
  for (size_t i = 0; i < sizeof(transport) / sizeof(transport[0]); i++) {
    if (key_equals(key, len, transport[i]))
      return 1;
  }
  /* PROTOCOL-HTTP2.md reserves the grpc- prefix: grpc-status, grpc-message,
   * grpc-timeout, grpc-encoding, grpc-accept-encoding and future ones. */
  if (len >= 5 && memcmp(key, "grpc-", 5) == 0) {
    for (size_t i = 0; i < sizeof(user_grpc) / sizeof(user_grpc[0]); i++) {
      if (key_equals(key, len, user_grpc[i]))
        return 0;
    }
    return 1;
  }
  return 0;
}

static int value_is_printable(const uint8_t *v, size_t len) {
  for (size_t i = 0; i < len; i++) {
    if (v[i] < 0x20 || v[i] > 0x7E)
      return 0;
  }
  return 1;
}

/* Appends an entry with a copy of key and room for value_cap value bytes;
 * returns the entry for the caller to fill in value and value_len. */
static md_entry *append(bt_metadata *md, const char *key, size_t key_len,
                        size_t value_cap) {
  if (md->count == md->cap) {
    size_t cap = md->cap ? md->cap * 2 : 8;
    md_entry *e = md_alloc(md, cap * sizeof(*e));
    if (md->count)
      memcpy(e, md->entries, md->count * sizeof(*e));
    md_release(md, md->entries);
    md->entries = e;
    md->cap = cap;
  }
  char *mem = md_alloc(md, key_len + 1 + value_cap + 1);
  memcpy(mem, key, key_len);
  mem[key_len] = '\0';
  md_entry *e = &md->entries[md->count++];
  e->key = mem;
  e->value = (uint8_t *)mem + key_len + 1;
  e->value_len = 0;
  return e;
}

int bt_metadata_add(bt_metadata *md, const char *key, size_t key_len,
                    const void *value, size_t value_len) {
  if (!bt_metadata_key_is_valid(key, key_len))
    return BT_ERR_INVAL;
  if (!bt_metadata_key_is_binary(key, key_len) &&
      !value_is_printable(value, value_len))
    return BT_ERR_INVAL;
  md_entry *e = append(md, key, key_len, value_len);
  if (value_len)
    memcpy(e->value, value, value_len);
  e->value[value_len] = '\0';
  e->value_len = value_len;
  return 0;
}

int bt_metadata_add_str(bt_metadata *md, const char *key, const char *value) {
  if (!key || !value)
    return BT_ERR_INVAL;
  return bt_metadata_add(md, key, strlen(key), value, strlen(value));
}

size_t bt_metadata_count(const bt_metadata *md) {
  return md ? md->count : 0;
}

int bt_metadata_at(const bt_metadata *md, size_t i, const char **key,
                   const uint8_t **value, size_t *value_len) {
  if (!md || i >= md->count)
    return BT_ERR_INVAL;
  const md_entry *e = &md->entries[i];
  if (key)
    *key = e->key;
  if (value)
    *value = e->value;
  if (value_len)
    *value_len = e->value_len;
  return 0;
}

const uint8_t *bt_metadata_get(const bt_metadata *md, const char *key,
                               size_t *value_len) {
  if (!md || !key)
    return NULL;
  for (size_t i = 0; i < md->count; i++) {
    if (strcmp(md->entries[i].key, key) == 0) {
      if (value_len)
        *value_len = md->entries[i].value_len;
      return md->entries[i].value;
    }
  }
  return NULL;
}

int bt__metadata_add_wire(bt_metadata *md, const char *name, size_t name_len,
                          const uint8_t *value, size_t value_len) {
  if (!bt_metadata_key_is_valid(name, name_len))
    return BT_ERR_INVAL;
  if (!bt_metadata_key_is_binary(name, name_len)) {
    md_entry *e = append(md, name, name_len, value_len);
    if (value_len)
      memcpy(e->value, value, value_len);
    e->value[value_len] = '\0';
    e->value_len = value_len;
    return 0;
  }
  /* Decode straight into the entry; on bad base64 take the entry back. */
  md_entry *e = append(md, name, name_len, value_len / 4 * 3 + 3);
  int rv = bt__base64_decode((const char *)value, value_len, e->value,
                             &e->value_len);
  if (rv != 0) {
    md->count--;
    md_release(md, e->key);
    return rv;
  }
  e->value[e->value_len] = '\0';
  return 0;
}

size_t bt__metadata_wire_value_len(const char *key, const uint8_t *value,
                                   size_t len) {
  if (bt_metadata_key_is_binary(key, key ? strlen(key) : 0))
    return bt__base64_encoded_len(len);
  return len;
}

size_t bt__metadata_wire_value(const char *key, const uint8_t *value,
                               size_t len, char *out) {
  if (bt_metadata_key_is_binary(key, key ? strlen(key) : 0))
    return bt__base64_encode(value, len, out);
  if (len)
    memcpy(out, value, len);
  out[len] = '\0';
  return len;
}
