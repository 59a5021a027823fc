/* compress.h (private): the gzip message encoding (zlib). */
#ifndef BT_COMPRESS_H
#define BT_COMPRESS_H

#include <stddef.h>
#include <stdint.h>

/* gzip-compresses in; *out is bt_malloc'ed (bt_free it). Returns 0 or
 * BT_ERR_*. */
int bt__gzip_compress(const uint8_t *in, size_t len, uint8_t **out,
                      size_t *out_len);
/* Decompresses a gzip member; output over max_out bytes stops with
 * BT_ERR_TOO_LARGE (a zip bomb never allocates more than the limit).
 * Corrupt input gives BT_ERR_PARSE. *out is bt_malloc'ed. */
int bt__gzip_decompress(const uint8_t *in, size_t len, size_t max_out,
                        uint8_t **out, size_t *out_len);

#endif
