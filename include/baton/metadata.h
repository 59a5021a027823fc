/* baton/metadata.h: gRPC metadata, an ordered list of key/value pairs.
 *
 * Keys are lowercase ASCII; values of keys ending in "-bin" are binary and
 * travel base64-encoded on the wire (the runtime encodes and decodes them,
 * so callers always see raw bytes). */
#ifndef BATON_METADATA_H
#define BATON_METADATA_H

#include <stddef.h>
#include <stdint.h>

#include <baton/arena.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Built with -fvisibility=hidden: what this header declares is exported. */
#pragma GCC visibility push(default)

typedef struct bt_metadata bt_metadata;

/* A new, empty list. With an arena, all memory comes from it and
 * bt_metadata_free is a no-op; with NULL it comes from the heap. */
bt_metadata *bt_metadata_new(bt_arena *arena);
/* Frees a heap-backed list and its copies of keys and values; accepts NULL. */
void bt_metadata_free(bt_metadata *md);

/* Appends a copy of key and value. Returns 0, or BT_ERR_INVAL when the key
 * is not a valid metadata key (lowercase [0-9a-z_.-], not empty) or a
 * non-binary value has bytes outside printable ASCII. */
int bt_metadata_add(bt_metadata *md, const char *key, size_t key_len,
                    const void *value, size_t value_len);
/* As bt_metadata_add with NUL-terminated key and value. */
int bt_metadata_add_str(bt_metadata *md, const char *key, const char *value);

size_t bt_metadata_count(const bt_metadata *md);
/* Entry i: key (NUL-terminated) and value (also NUL-terminated for
 * convenience; value_len excludes the NUL). Returns BT_ERR_INVAL past the end.
 */
int bt_metadata_at(const bt_metadata *md, size_t i, const char **key,
                   const uint8_t **value, size_t *value_len);
/* The first value for key, or NULL. value_len may be NULL. */
const uint8_t *bt_metadata_get(const bt_metadata *md, const char *key,
                               size_t *value_len);

/* 1 when key is a valid metadata key. */
int bt_metadata_key_is_valid(const char *key, size_t len);
/* 1 when key ends in "-bin". */
int bt_metadata_key_is_binary(const char *key, size_t len);
/* 1 for keys the transport owns and a user may not set: pseudo-headers,
 * "grpc-*" (except grpc-status-details-bin, grpc-trace-bin, grpc-tags-bin),
 * content-type, te and the connection-specific headers. */
int bt_metadata_key_is_reserved(const char *key, size_t len);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif
