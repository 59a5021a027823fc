/* ratelim.h (private): a token bucket, for the limits on what a peer may
 * make us do per second (stream resets, protocol glitches), as nghttp2's
 * own ratelim: `burst` events at once, refilled at `rate` per second. */
#ifndef BT_RATELIM_H
#define BT_RATELIM_H

#include <stdint.h>

typedef struct bt_ratelim {
  uint32_t burst;
  uint32_t rate; /* tokens per second */
  double tokens;
  int64_t refilled_ns;
} bt_ratelim;

/* A full bucket at now_ns. burst 0 means no limit. */
void bt__ratelim_init(bt_ratelim *r, uint32_t burst, uint32_t rate,
                      int64_t now_ns);
/* Takes one token at now_ns: 0 when there was one, 1 when the bucket is
 * empty (the limit is reached). */
int bt__ratelim_take(bt_ratelim *r, int64_t now_ns);

#endif
