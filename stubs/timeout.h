/* timeout.h (private): the grpc-timeout header value.
 * "TimeoutValue TimeoutUnit": 1 to 8 ASCII digits, then one of H M S m u n. */
#ifndef BT_TIMEOUT_H
#define BT_TIMEOUT_H

#include <stddef.h>
#include <stdint.h>

#define BT_TIMEOUT_MAX_LEN 10 /* 8 digits + unit + NUL */

/* Parses s[0..len). Returns 0 with *ns (saturating at INT64_MAX), or
 * BT_ERR_PARSE for anything else (empty, 9+ digits, sign, space, bad unit). */
int bt__timeout_parse(const char *s, size_t len, int64_t *ns);
/* Formats ns (<= 0 becomes "0n"... callers send a minimum of 1n) with the
 * finest unit whose value fits in 8 digits, rounding up so a peer never sees
 * more time than is left. Writes a NUL-terminated string; returns its length.
 */
size_t bt__timeout_format(int64_t ns, char out[BT_TIMEOUT_MAX_LEN]);

#endif
