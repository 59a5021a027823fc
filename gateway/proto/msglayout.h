/* msglayout.h (gateway/proto, private): the header every decoded message
 * starts with. dynmsg.c decodes into it; registry.c makes one empty
 * instance per type at load (what an absent sub-message reads as), so the
 * registry stays read-only afterwards without calling into dynmsg. */
#ifndef GW_MSGLAYOUT_H
#define GW_MSGLAYOUT_H

#include <stdint.h>

#include "registry.h"

/* One arena block: this header, then slot slots[n_slots], then uint32_t
 * present[n_present], then, 16-aligned at occ_at, the occurrences. Dense
 * messages (n_present == 0) have a slot per field index up to the last one
 * present (O(1) lookup; an absent field's slot has count 0) and no
 * present[]; sparse ones, where that would waste more than it holds, a
 * slot per present field, found by binary search in the sorted present[]
 * (the indexes of the fields present). So a message costs memory in
 * proportion to what its bytes hold, never to the size of its type: a
 * hostile stream of tiny sub-messages of a type with hundreds of fields
 * cannot blow up. (occ_at fits 32 bits: slots and present[] are bounded by
 * the type's field count.) */
struct gw_msg {
  const gw_message *type;
  const uint8_t *data;
  uint32_t len;
  uint32_t n_slots;
  uint32_t n_present; /* 0: dense */
  uint32_t occ_at;    /* byte offset of the occurrences */
};

#endif
