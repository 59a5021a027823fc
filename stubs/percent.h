/* percent.h (private): grpc-message percent-encoding.
 * Bytes outside 0x20..0x7E and '%' itself are sent as %XX (uppercase hex). */
#ifndef BT_PERCENT_H
#define BT_PERCENT_H

#include <stddef.h>
#include <stdint.h>

/* Encoded length of in[0..len) (without a NUL). */
size_t bt__percent_encoded_len(const uint8_t *in, size_t len);
/* Writes the encoding and a NUL to out (capacity >= encoded_len + 1);
 * returns the length without the NUL. */
size_t bt__percent_encode(const uint8_t *in, size_t len, char *out);
/* Decodes into out (capacity >= len + 1, NUL-terminated). A '%' not followed
 * by two hex digits is kept literally, so a bad sequence never loses the
 * message. Returns the decoded length. */
size_t bt__percent_decode(const char *in, size_t len, uint8_t *out);

#endif
