/* forward.c: the metadata every backend call of a client call carries —
 * the keys the config forwards, and W3C trace context. */
#include "core.h"

#include <string.h>

bt_metadata *gw_forward_metadata(const gw_config *cfg, bt_call *call,
                                 bt_arena *arena) {
  bt_metadata *md = bt_metadata_new(arena);
  const bt_metadata *in = bt_call_request_metadata(call);
  for (size_t i = 0; i < cfg->n_forward_metadata; i++) {
    const char *key = cfg->forward_metadata[i];
    for (size_t k = 0; k < bt_metadata_count(in); k++) {
      const char *ikey;
      const uint8_t *value;
      size_t len;
      bt_metadata_at(in, k, &ikey, &value, &len);
      if (strcmp(ikey, key) == 0)
        bt_metadata_add(md, ikey, strlen(ikey), value, len);
    }
  }
  /* W3C trace context: forward the caller's, or start a trace here. */
  size_t len;
  const uint8_t *tp = bt_metadata_get(in, "traceparent", &len);
  if (tp) {
    bt_metadata_add(md, "traceparent", 11, tp, len);
  } else {
    /* 00-<trace id: 32 hex>-<span id: 16 hex>-01 */
    char buf[56];
    memcpy(buf, "00-", 3);
    gw_ids_random_hex(buf + 3, 32);
    buf[35] = '-';
    gw_ids_random_hex(buf + 36, 16);
    memcpy(buf + 52, "-01", 4);
    bt_metadata_add(md, "traceparent", 11, buf, 55);
  }
  return md;
}
