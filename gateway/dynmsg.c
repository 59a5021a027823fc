/* dynmsg.c (gateway): protobuf messages decoded and encoded from registry
 * types, without generated code.
 *
 * Decoding makes two passes over each message's bytes. The first validates
 * the wire format (tags, varints, lengths, wire types against field types,
 * packed runs, UTF-8) and counts each known field's occurrences, stepping
 * over sub-messages in O(1); then one arena block is taken for the message
 * (header, slots, every occurrence: see struct gw_msg), and the second pass
 * fills it, decoding sub-messages recursively. So every byte is read twice
 * whatever the nesting, a message costs one allocation, and string, bytes and
 * sub-message payloads stay pointers into the input. Occurrences hold raw wire
 * values (the varint, the fixed bits, a pointer and length); gw_msg_get
 * converts them to the field's C type when asked.
 *
 * A singular sub-message that occurs more than once is merged, as protobuf
 * does, by decoding the concatenation of its occurrences (a copy made only
 * in that rare case; merges nest at most 4 deep, so the input is copied at
 * most 4 times). Other singular fields keep their last occurrence.
 * Unknown fields are validated and skipped; they stay in gw_msg_bytes.
 *
 * Limits: groups (wire types 3 and 4) are refused; a message is at most
 * 4 GiB (gRPC's own framing limit); nesting is capped by max_depth (0 or no
 * limits: 64; more than 1000 is treated as 1000, to bound the C stack).
 * Strings are checked as UTF-8 in proto2 files too; proto2's [default = ...]
 * is not applied (absent fields read as zero, an enum as its first value). */
#include "dynmsg.h"

#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_DEPTH 64
#define MAX_DEPTH 1000
/* Merged sub-messages inside merged sub-messages (see finish_singular_msg). */
#define MAX_MERGE_NESTING 4
#define MAX_FIELD_NUMBER 536870911u

/* registry.c holds an empty instance of every type, made at load. */
const void *gw_registry_empty_msg_(const gw_message *m);

/* One occurrence: the raw varint or fixed bits, a payload, or (for
 * message fields, after decoding) the sub-message. */
typedef union occ {
  uint64_t raw;
  struct {
    const uint8_t *p;
    size_t n;
  } s;
  const gw_msg *msg;
} occ;

typedef struct slot {
  uint32_t start; /* first occurrence in the message's occ array */
  uint32_t count;
} slot;

/* One arena block: this header, then slot slots[n_slots], then uint32_t
 * present[n_present] (indexes of the fields present), then, 16-aligned,
 * the occurrences. Dense messages have a slot per field index up to the
 * last one present (O(1) lookup); sparse ones, where that would waste more
 * than it holds, a slot per present field, found by binary search in the
 * sorted present[]. So a message costs memory in proportion to what its
 * bytes hold, never to the size of its type: a hostile stream of tiny
 * sub-messages of a type with hundreds of fields cannot blow up. */
struct gw_msg {
  const gw_message *type;
  const uint8_t *data;
  uint32_t len;
  uint32_t n_slots;
  uint32_t n_present;
  uint32_t dense;
};

static inline slot *slots_of(const gw_msg *m) {
  return (slot *)(uintptr_t)(m + 1);
}

static inline uint32_t *present_of(const gw_msg *m) {
  return (uint32_t *)(slots_of(m) + m->n_slots);
}

static inline occ *occ_of(const gw_msg *m) {
  uintptr_t p = (uintptr_t)(present_of(m) + m->n_present);
  return (occ *)((p + 15) & ~(uintptr_t)15);
}

/* The slot of the field at index idx, or NULL when it is absent. */
static slot *find_slot(const gw_msg *m, uint32_t idx) {
  if (m->dense)
    return idx < m->n_slots ? &slots_of(m)[idx] : NULL;
  const uint32_t *present = present_of(m);
  size_t lo = 0, hi = m->n_present;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (present[mid] == idx)
      return &slots_of(m)[mid];
    if (present[mid] < idx)
      lo = mid + 1;
    else
      hi = mid;
  }
  return NULL;
}

static const uint8_t empty_bytes[1];

size_t gw_dynmsg_empty_size_(void) {
  return sizeof(gw_msg);
}

void gw_dynmsg_empty_init_(void *storage, const gw_message *type) {
  gw_msg *m = storage;
  memset(m, 0, sizeof(*m));
  m->type = type;
  m->data = empty_bytes;
}

/* ---- wire helpers ---------------------------------------------------- */

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };
enum { RD_OK = 0, RD_TRUNC, RD_LONG };

/* Reads a varint of at most 10 bytes whose value fits 64 bits. */
static inline int rd_varint(const uint8_t **pp, const uint8_t *end,
                            uint64_t *out) {
  const uint8_t *p = *pp;
  if (p < end && *p < 0x80) {
    *out = *p;
    *pp = p + 1;
    return RD_OK;
  }
  uint64_t v = 0;
  for (unsigned i = 0; i < 10; i++) {
    if (p >= end)
      return RD_TRUNC;
    uint8_t b = *p++;
    if (i == 9 && b > 1)
      return RD_LONG;
    v |= (uint64_t)(b & 0x7f) << (7 * i);
    if (b < 0x80) {
      *out = v;
      *pp = p;
      return RD_OK;
    }
  }
  return RD_LONG;
}

static inline uint32_t ld_le32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
         (uint32_t)p[3] << 24;
}

static inline uint64_t ld_le64(const uint8_t *p) {
  return (uint64_t)ld_le32(p) | (uint64_t)ld_le32(p + 4) << 32;
}

/* The wire type a field's values use unpacked; -1 for groups. */
static int wire_of(gw_ftype t) {
  switch (t) {
  case GW_TYPE_DOUBLE:
  case GW_TYPE_FIXED64:
  case GW_TYPE_SFIXED64:
    return WT_I64;
  case GW_TYPE_FLOAT:
  case GW_TYPE_FIXED32:
  case GW_TYPE_SFIXED32:
    return WT_I32;
  case GW_TYPE_STRING:
  case GW_TYPE_BYTES:
  case GW_TYPE_MESSAGE:
    return WT_LEN;
  case GW_TYPE_GROUP:
    return -1;
  default:
    return WT_VARINT;
  }
}

static const char *wire_name(int wt) {
  switch (wt) {
  case WT_VARINT:
    return "varint";
  case WT_I64:
    return "fixed64";
  case WT_I32:
    return "fixed32";
  default:
    return "length-delimited";
  }
}

static int is_scalar_numeric(gw_ftype t) {
  return wire_of(t) == WT_VARINT || wire_of(t) == WT_I64 ||
         wire_of(t) == WT_I32;
}

static int utf8_valid(const uint8_t *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    if (n - i >= 8) {
      uint64_t w;
      memcpy(&w, s + i, 8);
      if (!(w & 0x8080808080808080ull)) {
        i += 8;
        continue;
      }
    }
    uint8_t c = s[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    size_t need;
    uint8_t lo = 0x80, hi = 0xBF; /* range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) {
      need = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
      need = 2;
      if (c == 0xE0)
        lo = 0xA0; /* overlong */
      else if (c == 0xED)
        hi = 0x9F; /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
      need = 3;
      if (c == 0xF0)
        lo = 0x90; /* overlong */
      else if (c == 0xF4)
        hi = 0x8F; /* past U+10FFFF */
    } else {
      return 0;
    }
    if (n - i - 1 < need || s[i + 1] < lo || s[i + 1] > hi)
      return 0;
    for (size_t k = 2; k <= need; k++)
      if ((s[i + k] & 0xC0) != 0x80)
        return 0;
    i += need + 1;
  }
  return 1;
}

/* ---- decoding -------------------------------------------------------- */

/* Where the decoder is, for error messages: a chain on the C stack. */
typedef struct frame {
  const struct frame *parent;
  const gw_field *f; /* NULL: an unknown field, named by num */
  uint32_t num;
  int64_t index; /* element of a repeated field, or -1 */
} frame;

typedef struct dctx {
  bt_arena *arena;
  uint32_t max_depth;
  char *err;
  size_t errlen;
  /* Merges of singular sub-messages in progress, nested. */
  uint32_t merging;
  /* Scratch for the message being scanned: occurrence counts per field
   * index (all zero between uses) and the indexes present, in the order
   * first seen. Sub-messages reuse it once their parent is laid out. */
  uint32_t *counts;
  uint32_t *present;
  size_t scratch_cap;
  uint32_t stack_counts[64];
  uint32_t stack_present[64];
} dctx;

static size_t put_path(char *buf, size_t cap, size_t at, const frame *fr) {
  if (fr->parent) {
    at = put_path(buf, cap, at, fr->parent);
    if (at < cap)
      at += (size_t)snprintf(buf + at, cap - at, ".");
  }
  if (at < cap) {
    if (fr->f)
      at += (size_t)snprintf(buf + at, cap - at, "%s", fr->f->name);
    else
      at += (size_t)snprintf(buf + at, cap - at, "%u", (unsigned)fr->num);
  }
  if (fr->index >= 0 && at < cap)
    at += (size_t)snprintf(buf + at, cap - at, "[%lld]", (long long)fr->index);
  return at;
}

/* Writes "field <path>: <reason>", or just the reason at the top level.
 * Returns -1 for the caller to pass on. */
static int fail_at(dctx *c, const frame *fr, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail_at(dctx *c, const frame *fr, const char *fmt, ...) {
  if (!c->errlen)
    return -1;
  size_t at = 0;
  if (fr) {
    at = (size_t)snprintf(c->err, c->errlen, "field ");
    at = put_path(c->err, c->errlen, at, fr);
    if (at < c->errlen)
      at += (size_t)snprintf(c->err + at, c->errlen - at, ": ");
  }
  if (at < c->errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err + at, c->errlen - at, fmt, ap);
    va_end(ap);
  }
  return -1;
}

static const char *varint_problem(int rc) {
  return rc == RD_TRUNC ? "truncated varint" : "varint overflows 64 bits";
}

/* Counts the varints of a packed run, checking each. */
static int count_packed_varints(const uint8_t *p, const uint8_t *end,
                                uint32_t *n) {
  uint32_t count = 0;
  unsigned run = 0; /* continuation bytes so far in this varint */
  for (; p < end; p++) {
    if (run == 9 && *p > 1)
      return RD_LONG;
    if (*p < 0x80) {
      count++;
      run = 0;
    } else {
      run++;
    }
  }
  if (run)
    return RD_TRUNC;
  *n = count;
  return RD_OK;
}

typedef struct scan_out {
  uint32_t n_present;
  uint32_t span; /* last present field index + 1 */
  size_t n_occ;
} scan_out;

/* Pass 1: validates the bytes of one message of type t and counts the
 * occurrences of each known field into c->counts. */
static int scan(dctx *c, const gw_message *t, const uint8_t *p,
                const uint8_t *end, const frame *fr, scan_out *out) {
  uint32_t *counts = c->counts;
  while (p < end) {
    uint64_t tag, len = 0;
    int rc = rd_varint(&p, end, &tag);
    if (rc != RD_OK)
      return fail_at(c, fr, "%s in a tag", varint_problem(rc));
    uint64_t num = tag >> 3;
    int wt = (int)(tag & 7);
    if (num == 0 || num > MAX_FIELD_NUMBER)
      return fail_at(c, fr, "invalid field number %llu",
                     (unsigned long long)num);
    const gw_field *f = gw_message_field_by_number(t, (uint32_t)num);
    frame here = {fr, f, (uint32_t)num, -1};
    if (f && f->repeated)
      here.index = counts[f->index];
    const uint8_t *val = p;
    switch (wt) {
    case WT_VARINT:
      rc = rd_varint(&p, end, &len);
      if (rc != RD_OK)
        return fail_at(c, &here, "%s", varint_problem(rc));
      break;
    case WT_I64:
      if (end - p < 8)
        return fail_at(c, &here, "truncated fixed64 value");
      p += 8;
      break;
    case WT_LEN:
      rc = rd_varint(&p, end, &len);
      if (rc != RD_OK)
        return fail_at(c, &here, "%s in a length", varint_problem(rc));
      if (len > (uint64_t)(end - p))
        return fail_at(c, &here,
                       "length %llu past the end of the message (%zu bytes "
                       "left)",
                       (unsigned long long)len, (size_t)(end - p));
      val = p;
      p += len;
      break;
    case WT_I32:
      if (end - p < 4)
        return fail_at(c, &here, "truncated fixed32 value");
      p += 4;
      break;
    case 3:
    case 4:
      return fail_at(c, &here, "groups (wire types 3 and 4) are not supported");
    default:
      return fail_at(c, &here, "invalid wire type %d", wt);
    }
    if (!f)
      continue;

    int expect = wire_of(f->type);
    if (expect < 0)
      return fail_at(c, &here, "groups are not supported");
    uint32_t add = 1;
    if (wt != expect) {
      if (wt != WT_LEN || !f->repeated || !is_scalar_numeric(f->type))
        return fail_at(c, &here, "wrong wire type (expected %s)",
                       wire_name(expect));
      /* a packed run, whatever the field's declared packing */
      here.index = -1;
      if (expect == WT_VARINT) {
        rc = count_packed_varints(val, p, &add);
        if (rc != RD_OK)
          return fail_at(c, &here, "%s in a packed run", varint_problem(rc));
      } else {
        uint32_t size = expect == WT_I64 ? 8 : 4;
        if (len % size)
          return fail_at(c, &here,
                         "packed %s run of %llu bytes is not a multiple of "
                         "%u",
                         wire_name(expect), (unsigned long long)len,
                         (unsigned)size);
        add = (uint32_t)(len / size);
      }
    } else if (f->type == GW_TYPE_STRING && !utf8_valid(val, (size_t)len)) {
      return fail_at(c, &here, "invalid UTF-8");
    }
    if (!add)
      continue;
    uint32_t before = counts[f->index];
    counts[f->index] = before + add;
    if (before == 0) {
      c->present[out->n_present++] = f->index;
      if (f->index >= out->span)
        out->span = f->index + 1;
    }
    if (f->repeated || f->type == GW_TYPE_MESSAGE)
      out->n_occ += add;
    else if (before == 0)
      out->n_occ += 1; /* last one wins: one place */
  }
  return 0;
}

static gw_msg *decode_msg(dctx *c, const gw_message *t, const uint8_t *data,
                          size_t len, uint32_t depth, const frame *fr);

/* Merges the occurrences of singular message field f and decodes them. */
static int finish_singular_msg(dctx *c, gw_msg *m, const gw_field *f,
                               uint32_t depth, const frame *fr) {
  slot *s = find_slot(m, f->index);
  occ *o = &occ_of(m)[s->start];
  const uint8_t *data = o[0].s.p;
  size_t len = o[0].s.n;
  frame here = {fr, f, f->number, -1};
  if (s->count > 1) {
    len = 0;
    for (uint32_t i = 0; i < s->count; i++)
      len += o[i].s.n;
    /* Each byte is copied once per merge around it, so merges inside
     * merges are capped: a hostile chain of them would otherwise copy the
     * input once per level of nesting. A decoded message re-encoded whole
     * has no deeper merges than the bytes it came from. */
    if (c->merging >= MAX_MERGE_NESTING)
      return fail_at(c, &here,
                     "sent more than once inside %u other messages sent "
                     "more than once (too many nested merges)",
                     (unsigned)MAX_MERGE_NESTING);
    uint8_t *cat = bt_arena_alloc(c->arena, len);
    size_t at = 0;
    for (uint32_t i = 0; i < s->count; i++) {
      if (o[i].s.n)
        memcpy(cat + at, o[i].s.p, o[i].s.n);
      at += o[i].s.n;
    }
    data = cat;
  }
  c->merging += s->count > 1;
  gw_msg *sub = decode_msg(c, f->message, data, len, depth + 1, &here);
  c->merging -= s->count > 1;
  if (!sub)
    return -1;
  o[0].msg = sub;
  s->count = 1;
  return 0;
}

/* Pass 2: fills m's occurrences from bytes scan() accepted. */
static int fill(dctx *c, gw_msg *m, uint32_t depth, const frame *fr) {
  const gw_message *t = m->type;
  const uint8_t *p = m->data, *end = m->data + m->len;
  while (p < end) {
    uint64_t tag = 0, v = 0;
    rd_varint(&p, end, &tag);
    int wt = (int)(tag & 7);
    const gw_field *f = gw_message_field_by_number(t, (uint32_t)(tag >> 3));
    const uint8_t *val = p;
    switch (wt) {
    case WT_VARINT:
      rd_varint(&p, end, &v);
      break;
    case WT_I64:
      v = ld_le64(p);
      p += 8;
      break;
    case WT_I32:
      v = ld_le32(p);
      p += 4;
      break;
    default: /* WT_LEN: scan() allowed nothing else */
      rd_varint(&p, end, &v);
      val = p;
      p += v;
      break;
    }
    slot *s = f ? find_slot(m, f->index) : NULL;
    if (!s)
      continue; /* unknown, or only empty packed runs */
    occ *o = &occ_of(m)[s->start];
    if (wt == WT_LEN && is_scalar_numeric(f->type)) {
      const uint8_t *q = val, *qend = p;
      int ew = wire_of(f->type);
      while (q < qend) {
        uint64_t x = 0;
        if (ew == WT_VARINT) {
          rd_varint(&q, qend, &x);
        } else if (ew == WT_I64) {
          x = ld_le64(q);
          q += 8;
        } else {
          x = ld_le32(q);
          q += 4;
        }
        o[s->count++].raw = x;
      }
    } else if (f->type == GW_TYPE_MESSAGE && f->repeated) {
      frame here = {fr, f, f->number, s->count};
      gw_msg *sub = decode_msg(c, f->message, val, (size_t)v, depth + 1, &here);
      if (!sub)
        return -1;
      o[s->count++].msg = sub;
    } else if (wt == WT_LEN) {
      /* strings, bytes, and singular messages (merged later) */
      uint32_t i = f->repeated || f->type == GW_TYPE_MESSAGE ? s->count++ : 0;
      o[i].s.p = val;
      o[i].s.n = (size_t)v;
      s->count = s->count ? s->count : 1;
    } else if (f->repeated) {
      o[s->count++].raw = v;
    } else {
      o[0].raw = v;
      s->count = 1;
    }
  }
  const uint32_t *present = present_of(m);
  for (uint32_t j = 0; j < m->n_present; j++) {
    const gw_field *f = &t->fields[present[j]];
    if (f->type == GW_TYPE_MESSAGE && !f->repeated &&
        finish_singular_msg(c, m, f, depth, fr) != 0)
      return -1;
  }
  return 0;
}

/* Makes the scratch hold n_fields entries (zeroed counts). */
static void scratch_for(dctx *c, size_t n_fields) {
  if (n_fields > c->scratch_cap) {
    size_t cap = c->scratch_cap * 2;
    if (cap < n_fields)
      cap = n_fields;
    c->counts = bt_arena_calloc(c->arena, cap * sizeof(*c->counts));
    c->present = bt_arena_alloc(c->arena, cap * sizeof(*c->present));
    c->scratch_cap = cap;
  }
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

static gw_msg *decode_msg(dctx *c, const gw_message *t, const uint8_t *data,
                          size_t len, uint32_t depth, const frame *fr) {
  if (depth > c->max_depth) {
    if (c->errlen)
      snprintf(c->err, c->errlen, "message nested deeper than %u",
               (unsigned)c->max_depth);
    return NULL;
  }
  scratch_for(c, t->n_fields);
  scan_out so = {0, 0, 0};
  if (scan(c, t, data, data + len, fr, &so) != 0)
    return NULL;

  uint32_t k = so.n_present;
  int dense = so.span <= 16 || so.span / 4 <= k;
  uint32_t n_slots = dense ? so.span : k;
  size_t occ_at = sizeof(gw_msg) + (size_t)n_slots * sizeof(slot) +
                  (size_t)k * sizeof(uint32_t);
  occ_at = (occ_at + 15) & ~(size_t)15;
  gw_msg *m = bt_arena_alloc(c->arena, occ_at + so.n_occ * sizeof(occ));
  m->type = t;
  m->data = len ? data : empty_bytes;
  m->len = (uint32_t)len;
  m->n_slots = n_slots;
  m->n_present = k;
  m->dense = (uint32_t)dense;
  slot *slots = slots_of(m);
  uint32_t *present = present_of(m);
  if (k)
    memcpy(present, c->present, k * sizeof(*present));
  if (dense)
    memset(slots, 0, n_slots * sizeof(*slots));
  else
    qsort(present, k, sizeof(*present), cmp_u32);
  uint32_t *counts = c->counts;
  uint32_t at = 0;
  for (uint32_t j = 0; j < k; j++) {
    uint32_t idx = present[j];
    const gw_field *f = &t->fields[idx];
    slot *s = dense ? &slots[idx] : &slots[j];
    s->start = at;
    s->count = 0;
    at += f->repeated || f->type == GW_TYPE_MESSAGE ? counts[idx] : 1;
    counts[idx] = 0; /* the scratch is free for sub-messages again */
  }
  if (fill(c, m, depth, fr) != 0)
    return NULL;
  return m;
}

int gw_msg_decode(bt_arena *arena, const gw_message *type, const uint8_t *data,
                  size_t len, const gw_decode_limits *lim, gw_msg **out,
                  char *err, size_t errlen) {
  dctx c;
  c.arena = arena;
  c.max_depth = lim && lim->max_depth ? lim->max_depth : DEFAULT_DEPTH;
  if (c.max_depth > MAX_DEPTH)
    c.max_depth = MAX_DEPTH;
  c.err = err;
  c.errlen = errlen;
  memset(c.stack_counts, 0, sizeof(c.stack_counts));
  c.counts = c.stack_counts;
  c.present = c.stack_present;
  c.scratch_cap = sizeof(c.stack_counts) / sizeof(c.stack_counts[0]);
  c.merging = 0;
  if (errlen)
    err[0] = '\0';
  *out = NULL;
  if (!type) {
    fail_at(&c, NULL, "no message type");
    return -1;
  }
  if (len > UINT32_MAX) {
    fail_at(&c, NULL, "message larger than 4 GiB");
    return -1;
  }
  if (!data)
    len = 0;
  gw_msg *m = decode_msg(&c, type, len ? data : empty_bytes, len, 0, NULL);
  if (!m)
    return -1;
  *out = m;
  return 0;
}

gw_msg *gw_msg_empty(bt_arena *arena, const gw_message *type) {
  gw_msg *m = bt_arena_alloc(arena, sizeof(*m));
  gw_dynmsg_empty_init_(m, type);
  return m;
}

const gw_message *gw_msg_type(const gw_msg *m) {
  return m ? m->type : NULL;
}

const uint8_t *gw_msg_bytes(const gw_msg *m, size_t *len) {
  if (!m) {
    *len = 0;
    return empty_bytes;
  }
  *len = m->len;
  return m->data;
}

/* f's slot in m, or NULL when f is absent or not a field of m's type. */
static const slot *slot_of(const gw_msg *m, const gw_field *f) {
  if (!m || !f || f->index >= m->type->n_fields ||
      &m->type->fields[f->index] != f)
    return NULL;
  return find_slot(m, f->index);
}

size_t gw_msg_count(const gw_msg *m, const gw_field *f) {
  const slot *s = slot_of(m, f);
  return s ? s->count : 0;
}

static void default_value(const gw_field *f, gw_value *out) {
  memset(out, 0, sizeof(*out));
  out->type = f->type;
  switch (f->type) {
  case GW_TYPE_STRING:
  case GW_TYPE_BYTES:
    out->v.s.ptr = empty_bytes;
    break;
  case GW_TYPE_MESSAGE:
  case GW_TYPE_GROUP:
    out->v.msg = f->message ? gw_registry_empty_msg_(f->message) : NULL;
    break;
  case GW_TYPE_ENUM:
    /* proto3 enums start at 0; proto2's default is the first value */
    if (f->enum_type && f->enum_type->n_values)
      out->v.i = f->enum_type->numbers[0];
    break;
  default:
    break;
  }
}

static void value_of(const gw_field *f, const occ *o, gw_value *out) {
  out->type = f->type;
  uint64_t raw = o->raw;
  switch (f->type) {
  case GW_TYPE_INT32:
  case GW_TYPE_ENUM:
  case GW_TYPE_SFIXED32:
    out->v.i = (int32_t)(uint32_t)raw;
    break;
  case GW_TYPE_INT64:
  case GW_TYPE_SFIXED64:
    out->v.i = (int64_t)raw;
    break;
  case GW_TYPE_UINT32:
  case GW_TYPE_FIXED32:
    out->v.u = (uint32_t)raw;
    break;
  case GW_TYPE_UINT64:
  case GW_TYPE_FIXED64:
    out->v.u = raw;
    break;
  case GW_TYPE_SINT32: {
    uint32_t n = (uint32_t)raw;
    out->v.i = (int32_t)((n >> 1) ^ (0u - (n & 1)));
    break;
  }
  case GW_TYPE_SINT64:
    out->v.i = (int64_t)((raw >> 1) ^ (0ull - (raw & 1)));
    break;
  case GW_TYPE_BOOL:
    out->v.b = raw != 0;
    break;
  case GW_TYPE_FLOAT: {
    uint32_t bits = (uint32_t)raw;
    float fl;
    memcpy(&fl, &bits, sizeof(fl));
    out->v.d = fl;
    break;
  }
  case GW_TYPE_DOUBLE:
    memcpy(&out->v.d, &raw, sizeof(out->v.d));
    break;
  case GW_TYPE_STRING:
  case GW_TYPE_BYTES:
    out->v.s.ptr = o->s.p;
    out->v.s.len = o->s.n;
    break;
  default: /* MESSAGE */
    out->v.msg = o->msg;
    break;
  }
}

int gw_msg_get(const gw_msg *m, const gw_field *f, size_t i, gw_value *out) {
  if (!f) {
    memset(out, 0, sizeof(*out));
    return 0;
  }
  const slot *s = slot_of(m, f);
  if (!s || i >= s->count) {
    default_value(f, out);
    return 0;
  }
  value_of(f, &occ_of(m)[s->start + i], out);
  return 1;
}

int gw_msg_has(const gw_msg *m, const gw_field *f) {
  const slot *s = slot_of(m, f);
  if (!s || !s->count)
    return 0;
  if (f->repeated || f->has_presence)
    return 1;
  /* a proto3 scalar without presence: set when not the default */
  gw_value v;
  value_of(f, &occ_of(m)[s->start], &v);
  switch (f->type) {
  case GW_TYPE_FLOAT:
  case GW_TYPE_DOUBLE: {
    /* by bits, as protobuf does: -0.0 is not the default */
    uint64_t bits;
    memcpy(&bits, &v.v.d, sizeof(bits));
    return bits != 0;
  }
  case GW_TYPE_BOOL:
    return v.v.b;
  case GW_TYPE_STRING:
  case GW_TYPE_BYTES:
    return v.v.s.len != 0;
  case GW_TYPE_MESSAGE:
  case GW_TYPE_GROUP:
    return 1;
  case GW_TYPE_UINT32:
  case GW_TYPE_UINT64:
  case GW_TYPE_FIXED32:
  case GW_TYPE_FIXED64:
    return v.v.u != 0;
  default:
    return v.v.i != 0;
  }
}

/* ---- encoding -------------------------------------------------------- */

struct gw_enc {
  bt_arena *arena;
  uint8_t *buf;
  size_t len, cap;
};

gw_enc *gw_enc_new(bt_arena *arena) {
  gw_enc *e = bt_arena_alloc(arena, sizeof(*e));
  e->arena = arena;
  e->buf = NULL;
  e->len = e->cap = 0;
  return e;
}

/* Makes room for n more bytes; the old buffer stays in the arena (growth is
 * geometric, so at most as much again is wasted). */
static uint8_t *reserve(gw_enc *e, size_t n) {
  if (e->cap - e->len < n) {
    size_t cap = e->cap ? e->cap * 2 : 128;
    while (cap - e->len < n)
      cap *= 2;
    uint8_t *nb = bt_arena_alloc(e->arena, cap);
    if (e->len)
      memcpy(nb, e->buf, e->len);
    e->buf = nb;
    e->cap = cap;
  }
  return e->buf + e->len;
}

static size_t varint_size(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    n++;
  }
  return n;
}

static size_t write_varint(uint8_t *p, uint64_t v) {
  size_t n = 0;
  while (v >= 0x80) {
    p[n++] = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  p[n++] = (uint8_t)v;
  return n;
}

static void put_varint(gw_enc *e, uint64_t v) {
  uint8_t *p = reserve(e, 10);
  e->len += write_varint(p, v);
}

static void put_bytes(gw_enc *e, const void *data, size_t len) {
  if (!len)
    return;
  uint8_t *p = reserve(e, len);
  memcpy(p, data, len);
  e->len += len;
}

static void put_le32(gw_enc *e, uint32_t v) {
  uint8_t *p = reserve(e, 4);
  for (int i = 0; i < 4; i++)
    p[i] = (uint8_t)(v >> (8 * i));
  e->len += 4;
}

static void put_le64(gw_enc *e, uint64_t v) {
  uint8_t *p = reserve(e, 8);
  for (int i = 0; i < 8; i++)
    p[i] = (uint8_t)(v >> (8 * i));
  e->len += 8;
}

static void put_tag(gw_enc *e, uint32_t number, int wt) {
  put_varint(e, (uint64_t)number << 3 | (uint64_t)wt);
}

static int is_signed_int(gw_ftype t) {
  return t == GW_TYPE_INT32 || t == GW_TYPE_INT64 || t == GW_TYPE_SINT32 ||
         t == GW_TYPE_SINT64 || t == GW_TYPE_SFIXED32 ||
         t == GW_TYPE_SFIXED64 || t == GW_TYPE_ENUM;
}

static int is_unsigned_int(gw_ftype t) {
  return t == GW_TYPE_UINT32 || t == GW_TYPE_UINT64 || t == GW_TYPE_FIXED32 ||
         t == GW_TYPE_FIXED64;
}

static int is_floating(gw_ftype t) {
  return t == GW_TYPE_FLOAT || t == GW_TYPE_DOUBLE;
}

/* The source value as 64 bits of two's complement: signed values are
 * sign-extended, so narrowing later keeps C's modular conversion. */
static uint64_t int_bits(const gw_value *v) {
  if (is_signed_int(v->type))
    return (uint64_t)v->v.i;
  if (is_unsigned_int(v->type))
    return v->v.u;
  if (v->type == GW_TYPE_BOOL)
    return v->v.b != 0;
  if (is_floating(v->type)) { /* not assignable; saturate rather than UB */
    double d = v->v.d;
    if (d != d)
      return 0;
    if (d >= 9223372036854775807.0)
      return (uint64_t)INT64_MAX;
    if (d <= -9223372036854775808.0)
      return (uint64_t)INT64_MIN;
    return (uint64_t)(int64_t)d;
  }
  return 0;
}

static double float_val(const gw_value *v) {
  if (is_floating(v->type))
    return v->v.d;
  if (is_signed_int(v->type))
    return (double)v->v.i;
  if (is_unsigned_int(v->type))
    return (double)v->v.u;
  if (v->type == GW_TYPE_BOOL)
    return v->v.b != 0;
  return 0;
}

/* Writes v as a value (no tag) of scalar numeric type t. */
static void put_scalar(gw_enc *e, gw_ftype t, const gw_value *v) {
  uint64_t x = 0;
  if (!is_floating(t))
    x = int_bits(v);
  switch (t) {
  case GW_TYPE_INT32:
  case GW_TYPE_ENUM:
    /* negative int32s go on the wire sign-extended to 64 bits */
    put_varint(e, (uint64_t)(int64_t)(int32_t)(uint32_t)x);
    break;
  case GW_TYPE_UINT32:
    put_varint(e, (uint32_t)x);
    break;
  case GW_TYPE_SINT32: {
    uint32_t n = (uint32_t)x;
    put_varint(e, (uint32_t)(n << 1) ^ (0u - (n >> 31)));
    break;
  }
  case GW_TYPE_SINT64:
    put_varint(e, (x << 1) ^ (0ull - (x >> 63)));
    break;
  case GW_TYPE_BOOL:
    put_varint(e, x != 0);
    break;
  case GW_TYPE_FIXED32:
  case GW_TYPE_SFIXED32:
    put_le32(e, (uint32_t)x);
    break;
  case GW_TYPE_FIXED64:
  case GW_TYPE_SFIXED64:
    put_le64(e, x);
    break;
  case GW_TYPE_FLOAT: {
    double d = float_val(v);
    /* out of float's range is undefined in C; IEEE gives infinity */
    float fl = d > FLT_MAX ? INFINITY : d < -FLT_MAX ? -INFINITY : (float)d;
    uint32_t bits;
    memcpy(&bits, &fl, sizeof(bits));
    put_le32(e, bits);
    break;
  }
  case GW_TYPE_DOUBLE: {
    double d = float_val(v);
    uint64_t bits;
    memcpy(&bits, &d, sizeof(bits));
    put_le64(e, bits);
    break;
  }
  default: /* INT64, UINT64 */
    put_varint(e, x);
    break;
  }
}

/* Writes one value of f. Absent singular fields are the caller's to skip:
 * whatever is given is written, proto3 defaults included. A value of a
 * type gw_value_assignable refuses is written as the field's zero value,
 * never read as the wrong union member. Group fields are not written. */
void gw_enc_value(gw_enc *e, const gw_field *f, const gw_value *v) {
  if (!e || !f || !v)
    return;
  switch (f->type) {
  case GW_TYPE_STRING:
  case GW_TYPE_BYTES: {
    int ok = v->type == GW_TYPE_STRING || v->type == GW_TYPE_BYTES;
    size_t len = ok ? v->v.s.len : 0;
    put_tag(e, f->number, WT_LEN);
    put_varint(e, len);
    if (len)
      put_bytes(e, v->v.s.ptr, len);
    break;
  }
  case GW_TYPE_MESSAGE: {
    /* forwarded whole: unknown fields included */
    const gw_msg *m = v->type == GW_TYPE_MESSAGE ? v->v.msg : NULL;
    size_t len;
    const uint8_t *data = gw_msg_bytes(m, &len);
    put_tag(e, f->number, WT_LEN);
    put_varint(e, len);
    put_bytes(e, data, len);
    break;
  }
  case GW_TYPE_GROUP:
    break;
  default:
    put_tag(e, f->number, wire_of(f->type));
    put_scalar(e, f->type, v);
    break;
  }
}

void gw_enc_repeated(gw_enc *e, const gw_field *df, const gw_msg *src,
                     const gw_field *sf) {
  if (!e || !df)
    return;
  size_t n = gw_msg_count(src, sf);
  if (!n)
    return;
  gw_value v;
  if (!(df->repeated && df->packed && is_scalar_numeric(df->type))) {
    for (size_t i = 0; i < n; i++) {
      gw_msg_get(src, sf, i, &v);
      gw_enc_value(e, df, &v);
    }
    return;
  }
  /* One LEN record: the elements first, then the length slid in front of
   * them (cheaper than sizing every element twice). */
  put_tag(e, df->number, WT_LEN);
  size_t start = e->len;
  for (size_t i = 0; i < n; i++) {
    gw_msg_get(src, sf, i, &v);
    put_scalar(e, df->type, &v);
  }
  size_t payload = e->len - start;
  size_t vs = varint_size(payload);
  reserve(e, vs);
  memmove(e->buf + start + vs, e->buf + start, payload);
  write_varint(e->buf + start, payload);
  e->len += vs;
}

void gw_enc_message(gw_enc *e, const gw_field *f, const gw_enc *sub) {
  if (!e || !f)
    return;
  size_t len = sub ? sub->len : 0;
  put_tag(e, f->number, WT_LEN);
  put_varint(e, len);
  if (len)
    put_bytes(e, sub->buf, len);
}

void gw_enc_raw(gw_enc *e, const uint8_t *data, size_t len) {
  if (e && len)
    put_bytes(e, data, len);
}

const uint8_t *gw_enc_data(const gw_enc *e, size_t *len) {
  if (!e || !e->buf) {
    *len = 0;
    return empty_bytes;
  }
  *len = e->len;
  return e->buf;
}

/* ---- assignability --------------------------------------------------- */

static int is_int(gw_ftype t) {
  return is_signed_int(t) || is_unsigned_int(t);
}

static const char *from_str(gw_ftype from, const gw_message *from_msg,
                            const gw_enum *from_enum, int from_repeated,
                            char *buf, size_t len) {
  gw_field tmp;
  memset(&tmp, 0, sizeof(tmp));
  tmp.type = from;
  tmp.message = from_msg;
  tmp.enum_type = from_enum;
  tmp.repeated = from_repeated;
  return gw_field_type_str(&tmp, buf, len);
}

static int map_entries_match(const gw_message *a, const gw_message *b) {
  if (a == b)
    return 1;
  if (!a || !b || !a->map_entry || !b->map_entry || a->n_fields != 2 ||
      b->n_fields != 2)
    return 0;
  for (int i = 0; i < 2; i++) {
    const gw_field *x = &a->fields[i], *y = &b->fields[i];
    if (x->type != y->type)
      return 0;
    if (x->type == GW_TYPE_MESSAGE && x->message != y->message)
      return 0;
  }
  return 1;
}

/* Rules in dynmsg.h. Besides them: a single value may go into a repeated
 * field (it is written as one element), and a map may go into a map of
 * another message when keys and values have the same types (the entries
 * are forwarded as they are). bool goes only to bool, and bytes do not go
 * into a string (they may not be UTF-8). */
int gw_value_assignable(gw_ftype from, const gw_message *from_msg,
                        const gw_enum *from_enum, int from_repeated,
                        const gw_field *to, char *err, size_t errlen) {
  char fb[300], tb[300];
  const char *why = NULL;
  if (!to) {
    if (errlen)
      snprintf(err, errlen, "no target field");
    return -1;
  }
  gw_ftype t = to->type;
  if (from_repeated && !to->repeated) {
    why = "a repeated field goes only into a repeated field";
  } else if (from == GW_TYPE_GROUP || t == GW_TYPE_GROUP) {
    why = "groups are not supported";
  } else if (t == GW_TYPE_MESSAGE) {
    if (from != GW_TYPE_MESSAGE)
      why = "only a message goes into a message field";
    else if (from_msg != to->message &&
             !(from_repeated && map_entries_match(from_msg, to->message)))
      why = to->message && to->message->map_entry
                ? "maps must have the same key and value types"
                : "a message goes only into a field of the same message type";
  } else if (is_int(t)) {
    if (!is_int(from))
      why = "only an integer or enum goes into an integer or enum field";
  } else if (is_floating(t)) {
    if (!is_floating(from))
      why = "only a float or double goes into a float or double field";
  } else if (t == GW_TYPE_BOOL) {
    if (from != GW_TYPE_BOOL)
      why = "only a bool goes into a bool field";
  } else if (t == GW_TYPE_STRING) {
    if (from == GW_TYPE_BYTES)
      why = "bytes do not go into a string field (they may not be UTF-8)";
    else if (from != GW_TYPE_STRING)
      why = "only a string goes into a string field";
  } else if (t == GW_TYPE_BYTES) {
    if (from != GW_TYPE_BYTES && from != GW_TYPE_STRING)
      why = "only bytes or a string go into a bytes field";
  } else {
    why = "unknown field type";
  }
  if (!why)
    return 0;
  if (errlen)
    snprintf(err, errlen, "%s cannot be written into %s: %s",
             from_str(from, from_msg, from_enum, from_repeated, fb, sizeof(fb)),
             gw_field_type_str(to, tb, sizeof(tb)), why);
  return -1;
}
