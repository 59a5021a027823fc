/* ratelim.c: the token bucket of ratelim.h. */
#include "ratelim.h"

void bt__ratelim_init(bt_ratelim *r, uint32_t burst, uint32_t rate,
                      int64_t now_ns) {
  r->burst = burst;
  r->rate = rate;
  r->tokens = burst;
  r->refilled_ns = now_ns;
}

int bt__ratelim_take(bt_ratelim *r, int64_t now_ns) {
  if (r->burst == 0)
    return 0;
  if (now_ns > r->refilled_ns) {
    r->tokens += (double)(now_ns - r->refilled_ns) / 1e9 * r->rate;
    if (r->tokens > r->burst)
      r->tokens = r->burst;
    r->refilled_ns = now_ns;
  }
  if (r->tokens < 1)
    return 1;
  r->tokens -= 1;
  return 0;
}
