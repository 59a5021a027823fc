/* base64.h (private): standard base64 for "-bin" metadata values.
 * gRPC emits unpadded values and must accept padded and unpadded ones. */
#ifndef BT_BASE64_H
#define BT_BASE64_H

#include <stddef.h>
#include <stdint.h>

/* Length of the unpadded encoding of len bytes. */
size_t bt__base64_encoded_len(size_t len);
/* Writes the unpadded encoding and a NUL; returns its length. out capacity
 * >= bt__base64_encoded_len(len) + 1. */
size_t bt__base64_encode(const uint8_t *in, size_t len, char *out);
/* Decodes padded or unpadded input into out (capacity >= len * 3 / 4 + 1).
 * Returns 0 with *out_len, or BT_ERR_PARSE for characters outside the
 * alphabet, misplaced padding or an impossible length (len % 4 == 1). */
int bt__base64_decode(const char *in, size_t len, uint8_t *out,
                      size_t *out_len);

#endif
