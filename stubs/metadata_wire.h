/* metadata_wire.h (private): the wire side of gRPC metadata, used by the HTTP/2
 * layer. "-bin" values are raw bytes in a bt_metadata and unpadded base64 on
 * the wire. */
#ifndef BT_METADATA_PRIV_H
#define BT_METADATA_PRIV_H

#include <stddef.h>
#include <stdint.h>

#include <baton/metadata.h>

/* Adds a header as received. For "-bin" keys the value is base64-decoded
 * (padded or unpadded); other values are copied as they are (the HTTP/2
 * library has already checked them as field values). Returns 0,
 * BT_ERR_INVAL for a name that is not a valid metadata key, or BT_ERR_PARSE
 * for a "-bin" value that is not base64 (the caller decides whether to drop
 * the header or fail the call). Nothing is added on error. */
int bt__metadata_add_wire(bt_metadata *md, const char *name, size_t name_len,
                          const uint8_t *value, size_t value_len);
/* Length of what goes on the wire for value (without a NUL). */
size_t bt__metadata_wire_value_len(const char *key, const uint8_t *value,
                                   size_t len);
/* Writes the wire form of value and a NUL into out (capacity >=
 * bt__metadata_wire_value_len + 1): unpadded base64 for "-bin" keys, the bytes
 * otherwise. Returns the length without the NUL. */
size_t bt__metadata_wire_value(const char *key, const uint8_t *value,
                               size_t len, char *out);

#endif
