/* dynmsg.c (gateway): protobuf messages decoded and encoded from registry
 * types, without generated code.
 *
 * Decoding makes two passes over each message. The first reads its bytes:
 * it validates the wire format (tags, varints, lengths, wire types against
 * field types, packed runs, UTF-8), counts each known field's occurrences
 * and records each one (field, value) in a fixed scratch on the C stack,
 * stepping over sub-messages in O(1); then one arena block is taken for the
 * message (header, slots, every occurrence: see struct gw_msg), and the
 * second pass fills it from the records, decoding sub-messages recursively.
 * A message whose occurrences do not fit in what is left of the scratch
 * (more than ~100 along the nesting) has its bytes read a second time
 * instead. So every byte is read at most twice whatever the nesting, a
 * message costs one allocation, and string, bytes and sub-message payloads
 * stay pointers into the input. Occurrences hold raw wire values (the
 * varint, the fixed bits, a pointer and length); gw_dynmsg_get converts them
 * to the field's C type when asked.
 *
 * A flow decodes and encodes several small messages per call, so the fixed
 * cost per message and per tag is what counts: fields are found through
 * the registry's dense by-number table without a call, wire types come from
 * a table, error paths (field paths, element indexes) are only built when
 * an error happens, the per-field scratch is zeroed once per decode and only
 * as wide as the widest type met, present fields are sorted only when they
 * came out of order, ASCII strings are checked a word at a time, and an
 * encoder comes with its first buffer.
 *
 * A singular sub-message that occurs more than once is merged, as protobuf
 * does, by decoding the concatenation of its occurrences (a copy made only
 * in that rare case; merges nest at most 4 deep, so the input is copied at
 * most 4 times). Other singular fields keep their last occurrence.
 * Unknown fields are validated and skipped; they stay in gw_dynmsg_bytes.
 * Sub-messages are decoded after their parent is validated whole: repeated
 * ones in the order they came, then singular ones in the order their fields
 * first came (by field index in a sparse message), which decides which
 * error is reported when several are bad.
 *
 * Limits: groups (wire types 3 and 4) are refused; a message is at most
 * 4 GiB (gRPC's own framing limit); nesting is capped by max_depth (0 or no
 * limits: 64; more than 1000 is treated as 1000, to bound the C stack).
 * Strings are checked as UTF-8 in proto2 files too; proto2's [default = ...]
 * is not applied (absent fields read as zero, an enum as its first value). */
#include "dynmsg.h"
#include "msglayout.h"

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

/* Scratch counts zeroed up front (see dctx). */
#define SCRATCH_ZEROED 16

#define UNLIKELY(x) __builtin_expect(!!(x), 0)
#define COLD __attribute__((cold, noinline))

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

/* The header of a decoded message: see msglayout.h. */

static inline slot *slots_of(const gw_msg *m) {
  return (slot *)(uintptr_t)(m + 1);
}

static inline uint32_t *present_of(const gw_msg *m) {
  return (uint32_t *)(slots_of(m) + m->n_slots);
}

static inline size_t occ_offset(uint32_t n_slots, uint32_t n_present) {
  size_t at = sizeof(gw_msg) + (size_t)n_slots * sizeof(slot) +
              (size_t)n_present * sizeof(uint32_t);
  return (at + 15) & ~(size_t)15;
}

static inline occ *occ_of(const gw_msg *m) {
  return (occ *)(uintptr_t)((const char *)m + m->occ_at);
}

/* The slot of the field at index idx, or NULL when it is absent (a dense
 * message may give an absent field's slot, of count 0). */
static inline slot *find_slot(const gw_msg *m, uint32_t idx) {
  if (!m->n_present)
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

/* The wire type each proto type's values use unpacked (-1 for groups; the
 * rest, varint, is 0). A table: the decoder asks for every tag. */
static const int8_t wire_tab[32] = {
    [GW_TYPE_DOUBLE] = WT_I64,   [GW_TYPE_FLOAT] = WT_I32,
    [GW_TYPE_FIXED64] = WT_I64,  [GW_TYPE_FIXED32] = WT_I32,
    [GW_TYPE_STRING] = WT_LEN,   [GW_TYPE_GROUP] = -1,
    [GW_TYPE_MESSAGE] = WT_LEN,  [GW_TYPE_BYTES] = WT_LEN,
    [GW_TYPE_SFIXED32] = WT_I32, [GW_TYPE_SFIXED64] = WT_I64};

static inline int wire_of(gw_ftype t) {
  return wire_tab[(unsigned)t & 31]; /* registry types are 1..18 */
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

static inline int is_scalar_numeric(gw_ftype t) {
  int w = wire_of(t);
  return w >= 0 && w != WT_LEN;
}

/* The field numbered num of t, or NULL. Inline through the registry's
 * dense table; spread-out numbers take the registry's search. */
static inline const gw_field *field_by_number(const gw_message *t,
                                              uint64_t num) {
  if (t->dense_by_number)
    return num < t->n_dense ? t->dense_by_number[num] : NULL;
  return gw_registry_field_by_number(t, (uint32_t)num);
}

/* The general check, from i (a character boundary) to n. */
static int utf8_valid_from(const uint8_t *s, size_t n, size_t i) {
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

/* Most strings are short and ASCII: they are checked a word at a time
 * (short ones in 4-, 2- and 1-byte pieces, the last word of longer ones
 * overlapping the one before), and the general check runs only from the
 * first word with a high bit set. */
static inline int utf8_valid(const uint8_t *s, size_t n) {
  if (n < 8) {
    uint32_t acc = 0;
    const uint8_t *q = s;
    if (n & 4) {
      uint32_t w;
      memcpy(&w, q, 4);
      acc |= w;
      q += 4;
    }
    if (n & 2) {
      uint16_t w;
      memcpy(&w, q, 2);
      acc |= w;
      q += 2;
    }
    if (n & 1)
      acc |= *q;
    return !(acc & 0x80808080u) || utf8_valid_from(s, n, 0);
  }
  size_t i = 0;
  uint64_t w;
  for (; n - i >= 8; i += 8) {
    memcpy(&w, s + i, 8);
    if (w & 0x8080808080808080ull)
      return utf8_valid_from(s, n, i);
  }
  if (i == n)
    return 1;
  memcpy(&w, s + n - 8, 8);
  return !(w & 0x8080808080808080ull) || utf8_valid_from(s, n, i);
}

/* ---- decoding -------------------------------------------------------- */

/* Where the decoder is, for error messages: a chain on the C stack. */
typedef struct frame {
  const struct frame *parent;
  const gw_field *f; /* NULL: an unknown field, named by num */
  uint32_t num;
  int64_t index; /* element of a repeated field, or -1 */
} frame;

/* One occurrence of a known field found by pass 1, and what pass 2 does
 * with it. */
enum {
  OP_ONE,       /* singular scalar, string or bytes: the last one wins */
  OP_ADD,       /* an element, or a singular message's part (merged later) */
  OP_MSG,       /* an element of a repeated message field: decode it */
  OP_MSG1,      /* a singular message's first part: as OP_ADD, and the
                   order in which singular sub-messages are decoded */
  OP_PACKED_V,  /* a packed run (v.s) of varints, */
  OP_PACKED_64, /* of fixed64s, */
  OP_PACKED_32  /* or of fixed32s */
};

typedef struct rec {
  uint32_t idx; /* the field's index */
  uint32_t op;
  occ v; /* raw bits, or payload pointer and length */
} rec;

/* Records on the C stack per decode (24 bytes each): several times what
 * the messages of a flow need, nested ones included. */
#define MAX_RECS 96

typedef struct dctx {
  bt_arena *arena;
  uint32_t max_depth;
  /* What the decoded form may still take (max_bytes), and whether it was
   * refused for that: a message 2 bytes per element on the wire takes a
   * slot and an occurrence per element once decoded. */
  size_t bytes_left;
  int over_budget;
  char *err;
  size_t errlen;
  /* Merges of singular sub-messages in progress, nested. */
  uint32_t merging;
  /* Scratch for the message being scanned: per field index, the places
   * its occurrences take (each one of a repeated field or message, else
   * 1: the last one wins), and the indexes present, in the order first
   * seen. counts[0, zeroed) are zero between uses (each message clears
   * what it set), so a decode zeroes only as many as its widest type has
   * fields, once. Sub-messages reuse the scratch once their parent is laid
   * out. */
  uint32_t *counts;
  uint32_t *present;
  size_t scratch_cap;
  size_t zeroed;
  uint32_t stack_counts[64];
  uint32_t stack_present[64];
  /* What pass 1 found, for pass 2 to place without reading the bytes
   * again: a stack shared down the nesting (a message's records stay
   * while its sub-messages push theirs above). A message whose records do
   * not fit in what is left is read again instead (fill_reparse); so a
   * big message costs no memory here. */
  uint32_t n_recs;
  rec recs[MAX_RECS];
} dctx;

/* Takes n bytes of the decoded form from the budget; 0, or -1 (with the
 * error written) past it. */
static int take_budget(dctx *c, size_t n) {
  if (n <= c->bytes_left) {
    c->bytes_left -= n;
    return 0;
  }
  c->over_budget = 1;
  if (c->errlen)
    snprintf(c->err, c->errlen,
             "decoded message would take more than its memory limit");
  return -1;
}

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
static int vfail_at(dctx *c, const frame *fr, const char *fmt, va_list ap) {
  if (!c->errlen)
    return -1;
  size_t at = 0;
  if (fr) {
    at = (size_t)snprintf(c->err, c->errlen, "field ");
    at = put_path(c->err, c->errlen, at, fr);
    if (at < c->errlen)
      at += (size_t)snprintf(c->err + at, c->errlen - at, ": ");
  }
  if (at < c->errlen)
    vsnprintf(c->err + at, c->errlen - at, fmt, ap);
  return -1;
}

static int fail_at(dctx *c, const frame *fr, const char *fmt, ...) COLD
    __attribute__((format(printf, 3, 4)));

static int fail_at(dctx *c, const frame *fr, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vfail_at(c, fr, fmt, ap);
  va_end(ap);
  return -1;
}

/* As fail_at, inside field num of the message at fr (f when known;
 * index: the element of a repeated field, or -1). The scanner calls this
 * instead of keeping a frame for every tag it reads. */
static int fail_field(dctx *c, const frame *fr, const gw_field *f, uint64_t num,
                      int64_t index, const char *fmt, ...) COLD
    __attribute__((format(printf, 6, 7)));

static int fail_field(dctx *c, const frame *fr, const gw_field *f, uint64_t num,
                      int64_t index, const char *fmt, ...) {
  frame here = {fr, f, (uint32_t)num, index};
  va_list ap;
  va_start(ap, fmt);
  vfail_at(c, &here, fmt, ap);
  va_end(ap);
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
  int unsorted;      /* present[] is not in increasing order */
  int singular_msgs; /* a singular message field is present */
  uint32_t n_recs;   /* records made (or that would have been) */
} scan_out;

/* The element of f the scanner is at, for error paths. */
#define ELEM(f) ((f) && (f)->repeated ? (int64_t)counts[(f)->index] : -1)

/* Pass 1: validates the bytes of one message of type t, counts the
 * places of each known field's occurrences into c->counts, and records
 * the occurrences from c->recs[c->n_recs] while there is room. */
static int scan(dctx *c, const gw_message *t, const uint8_t *p,
                const uint8_t *end, const frame *fr, scan_out *out) {
  uint32_t *counts = c->counts;
  uint32_t *present = c->present;
  rec *const recs = c->recs + c->n_recs, *const rend = c->recs + MAX_RECS;
  rec *r = recs;
  uint32_t n_present = 0, span = 0;
  size_t n_occ = 0;
  int unsorted = 0, singular_msgs = 0;
  while (p < end) {
    uint64_t tag, len = 0;
    int rc = rd_varint(&p, end, &tag);
    if (UNLIKELY(rc != RD_OK))
      return fail_at(c, fr, "%s in a tag", varint_problem(rc));
    uint64_t num = tag >> 3;
    int wt = (int)(tag & 7);
    if (UNLIKELY(num == 0 || num > MAX_FIELD_NUMBER))
      return fail_at(c, fr, "invalid field number %llu",
                     (unsigned long long)num);
    const gw_field *f = field_by_number(t, num);
    const uint8_t *val = p;
    /* tests in order of how common the wire types are (cheaper than a
     * jump table for so few) */
    if (wt == WT_LEN) {
      rc = rd_varint(&p, end, &len);
      if (UNLIKELY(rc != RD_OK))
        return fail_field(c, fr, f, num, ELEM(f), "%s in a length",
                          varint_problem(rc));
      if (UNLIKELY(len > (uint64_t)(end - p)))
        return fail_field(c, fr, f, num, ELEM(f),
                          "length %llu past the end of the message (%zu "
                          "bytes left)",
                          (unsigned long long)len, (size_t)(end - p));
      val = p;
      p += len;
    } else if (wt == WT_VARINT) {
      rc = rd_varint(&p, end, &len);
      if (UNLIKELY(rc != RD_OK))
        return fail_field(c, fr, f, num, ELEM(f), "%s", varint_problem(rc));
    } else if (wt == WT_I64) {
      if (UNLIKELY(end - p < 8))
        return fail_field(c, fr, f, num, ELEM(f), "truncated fixed64 value");
      p += 8;
    } else if (wt == WT_I32) {
      if (UNLIKELY(end - p < 4))
        return fail_field(c, fr, f, num, ELEM(f), "truncated fixed32 value");
      p += 4;
    } else if (wt == 3 || wt == 4) {
      return fail_field(c, fr, f, num, ELEM(f),
                        "groups (wire types 3 and 4) are not supported");
    } else {
      return fail_field(c, fr, f, num, ELEM(f), "invalid wire type %d", wt);
    }
    if (!f)
      continue;

    int expect = wire_of(f->type);
    uint32_t add = 1;
    uint32_t op;
    if (UNLIKELY(wt != expect)) {
      if (expect < 0)
        return fail_field(c, fr, f, num, ELEM(f), "groups are not supported");
      if (wt != WT_LEN || !f->repeated || expect == WT_LEN)
        return fail_field(c, fr, f, num, ELEM(f),
                          "wrong wire type (expected %s)", wire_name(expect));
      /* a packed run, whatever the field's declared packing */
      if (expect == WT_VARINT) {
        rc = count_packed_varints(val, p, &add);
        if (rc != RD_OK)
          return fail_field(c, fr, f, num, -1, "%s in a packed run",
                            varint_problem(rc));
      } else {
        uint32_t size = expect == WT_I64 ? 8 : 4;
        if (len % size)
          return fail_field(c, fr, f, num, -1,
                            "packed %s run of %llu bytes is not a multiple "
                            "of %u",
                            wire_name(expect), (unsigned long long)len,
                            (unsigned)size);
        add = (uint32_t)(len / size);
      }
      if (!add)
        continue;
      op = expect == WT_VARINT ? OP_PACKED_V
           : expect == WT_I64  ? OP_PACKED_64
                               : OP_PACKED_32;
    } else {
      if (f->type == GW_TYPE_STRING && UNLIKELY(!utf8_valid(val, (size_t)len)))
        return fail_field(c, fr, f, num, ELEM(f), "invalid UTF-8");
      /* OP_ONE, OP_ADD (an element, or a singular message's part) or
       * OP_MSG (a repeated message's element) */
      op = (uint32_t)(f->repeated != 0) + (f->type == GW_TYPE_MESSAGE);
    }
    uint32_t idx = f->index;
    uint32_t before = counts[idx];
    if (op != OP_ONE) {
      counts[idx] = before + add;
      n_occ += add;
    } else {
      counts[idx] = 1; /* last one wins: one place */
    }
    if (before == 0) {
      if (op == OP_ONE) {
        n_occ += 1;
      } else if (op == OP_ADD && !f->repeated) {
        singular_msgs = 1;
        op = OP_MSG1;
      }
      present[n_present++] = idx;
      if (idx >= span)
        span = idx + 1;
      else
        unsorted = 1; /* a smaller index than one seen before */
    }
    if (r < rend) {
      r->idx = idx;
      r->op = op;
      if (wt == WT_LEN) {
        r->v.s.p = val;
        r->v.s.n = (size_t)len;
      } else {
        r->v.s.n = 0;
        r->v.raw = wt == WT_VARINT ? len
                   : wt == WT_I64  ? ld_le64(val)
                                   : ld_le32(val);
      }
    }
    r++;
  }
  out->n_present = n_present;
  out->span = span;
  out->n_occ = n_occ;
  out->unsorted = unsorted;
  out->singular_msgs = singular_msgs;
  out->n_recs = (uint32_t)(r - recs);
  return 0;
}

#undef ELEM

static gw_msg *decode_msg(dctx *c, const gw_message *t, const uint8_t *data,
                          size_t len, uint32_t depth, const frame *fr);

/* Merges the occurrences of singular message field f (slot s of m) and
 * decodes them. */
static int finish_singular_msg(dctx *c, gw_msg *m, slot *s, const gw_field *f,
                               uint32_t depth, const frame *fr) {
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
    if (take_budget(c, len) != 0)
      return -1;
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

/* Decodes m's singular sub-messages, once every part of each is known,
 * in the order of the field indexes in order[n] (those of the fields
 * present, singular messages or not). */
static int finish_singulars(dctx *c, gw_msg *m, const uint32_t *order,
                            uint32_t n, uint32_t depth, const frame *fr) {
  const gw_message *t = m->type;
  for (uint32_t j = 0; j < n; j++) {
    const gw_field *f = &t->fields[order[j]];
    if (f->type == GW_TYPE_MESSAGE && !f->repeated &&
        finish_singular_msg(c, m, find_slot(m, order[j]), f, depth, fr) != 0)
      return -1;
  }
  return 0;
}

/* As finish_singulars, in the order the records met them. */
static int finish_singulars_recs(dctx *c, gw_msg *m, uint32_t base, uint32_t n,
                                 uint32_t depth, const frame *fr) {
  const gw_message *t = m->type;
  for (uint32_t j = 0; j < n; j++) {
    const rec *r = &c->recs[base + j];
    if (r->op == OP_MSG1 &&
        finish_singular_msg(c, m, find_slot(m, r->idx), &t->fields[r->idx],
                            depth, fr) != 0)
      return -1;
  }
  return 0;
}

/* Expands a packed run of wire type ew into o[s->count...]. */
static void fill_packed(occ *o, slot *s, int ew, const uint8_t *q,
                        const uint8_t *qend) {
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
}

/* Pass 2 from the n records scan() made at c->recs[base]. */
static int fill_recs(dctx *c, gw_msg *m, uint32_t base, uint32_t n,
                     uint32_t depth, const frame *fr) {
  const gw_message *t = m->type;
  occ *occs = occ_of(m);
  const rec *r = &c->recs[base];
  for (uint32_t j = 0; j < n; j++, r++) {
    slot *s = find_slot(m, r->idx); /* never NULL: the field is present */
    occ *o = &occs[s->start];
    switch (r->op) {
    case OP_ONE:
      o[0] = r->v;
      s->count = 1;
      break;
    case OP_ADD:
    case OP_MSG1:
      o[s->count++] = r->v;
      break;
    case OP_MSG: {
      const gw_field *f = &t->fields[r->idx];
      frame here = {fr, f, f->number, s->count};
      gw_msg *sub =
          decode_msg(c, f->message, r->v.s.p, r->v.s.n, depth + 1, &here);
      if (!sub)
        return -1;
      o[s->count++].msg = sub;
      break;
    }
    default:
      fill_packed(o, s,
                  r->op == OP_PACKED_V    ? WT_VARINT
                  : r->op == OP_PACKED_64 ? WT_I64
                                          : WT_I32,
                  r->v.s.p, r->v.s.p + r->v.s.n);
      break;
    }
  }
  return 0;
}

/* Pass 2 for a message with more occurrences than the records had room
 * for: fills m's occurrences from the bytes scan() accepted. */
static int fill_reparse(dctx *c, gw_msg *m, uint32_t depth, const frame *fr) {
  const gw_message *t = m->type;
  const uint8_t *p = m->data, *end = m->data + m->len;
  occ *occs = occ_of(m);
  while (p < end) {
    uint64_t tag = 0, v = 0;
    rd_varint(&p, end, &tag);
    int wt = (int)(tag & 7);
    const gw_field *f = field_by_number(t, tag >> 3);
    const uint8_t *val = p;
    if (wt == WT_LEN) {
      rd_varint(&p, end, &v);
      val = p;
      p += v;
    } else if (wt == WT_VARINT) {
      rd_varint(&p, end, &v);
    } else if (wt == WT_I64) {
      v = ld_le64(p);
      p += 8;
    } else { /* WT_I32: scan() allowed nothing else */
      v = ld_le32(p);
      p += 4;
    }
    if (!f)
      continue;
    slot *s = find_slot(m, f->index);
    if (!s)
      continue; /* only empty packed runs */
    occ *o = &occs[s->start];
    if (wt != WT_LEN) {
      if (f->repeated) {
        o[s->count++].raw = v;
      } else {
        o[0].raw = v;
        s->count = 1;
      }
    } else if (f->type == GW_TYPE_MESSAGE) {
      if (f->repeated) {
        frame here = {fr, f, f->number, s->count};
        gw_msg *sub =
            decode_msg(c, f->message, val, (size_t)v, depth + 1, &here);
        if (!sub)
          return -1;
        o[s->count++].msg = sub;
      } else { /* merged once all are known */
        o[s->count].s.p = val;
        o[s->count++].s.n = (size_t)v;
      }
    } else if (is_scalar_numeric(f->type)) { /* a packed run */
      fill_packed(o, s, wire_of(f->type), val, p);
    } else { /* strings and bytes */
      uint32_t i = f->repeated ? s->count++ : 0;
      o[i].s.p = val;
      o[i].s.n = (size_t)v;
      s->count = s->count ? s->count : 1;
    }
  }
  return 0;
}

/* Makes the scratch hold n_fields entries, their counts zero. */
static inline void scratch_for(dctx *c, size_t n_fields) {
  if (n_fields <= c->zeroed)
    return;
  if (n_fields > c->scratch_cap) {
    size_t cap = c->scratch_cap * 2;
    if (cap < n_fields)
      cap = n_fields;
    c->counts = bt_arena_calloc(c->arena, cap * sizeof(*c->counts));
    c->present = bt_arena_alloc(c->arena, cap * sizeof(*c->present));
    c->scratch_cap = cap;
    c->zeroed = cap;
    return;
  }
  memset(c->counts + c->zeroed, 0, (n_fields - c->zeroed) * sizeof(*c->counts));
  c->zeroed = n_fields;
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

/* Sorts the distinct indexes of a sparse message that came out of order:
 * by insertion when there are few, as there usually are. */
static void sort_present(uint32_t *v, uint32_t n) {
  if (n > 16) {
    qsort(v, n, sizeof(*v), cmp_u32);
    return;
  }
  for (uint32_t i = 1; i < n; i++) {
    uint32_t x = v[i], j = i;
    for (; j > 0 && v[j - 1] > x; j--)
      v[j] = v[j - 1];
    v[j] = x;
  }
}

static gw_msg *decode_msg(dctx *c, const gw_message *t, const uint8_t *data,
                          size_t len, uint32_t depth, const frame *fr) {
  if (UNLIKELY(depth > c->max_depth)) {
    if (c->errlen)
      snprintf(c->err, c->errlen, "message nested deeper than %u",
               (unsigned)c->max_depth);
    return NULL;
  }
  scratch_for(c, t->n_fields);
  scan_out so = {0, 0, 0, 0, 0, 0};
  uint32_t base = c->n_recs;
  if (scan(c, t, data, data + len, fr, &so) != 0)
    return NULL;

  uint32_t k = so.n_present;
  int dense = so.span <= 16 || so.span / 4 <= k;
  uint32_t n_slots = dense ? so.span : k;
  uint32_t n_present = dense ? 0 : k;
  size_t occ_at = occ_offset(n_slots, n_present);
  if (take_budget(c, occ_at + so.n_occ * sizeof(occ)) != 0)
    return NULL;
  gw_msg *m = bt_arena_alloc(c->arena, occ_at + so.n_occ * sizeof(occ));
  m->type = t;
  m->data = len ? data : empty_bytes;
  m->len = (uint32_t)len;
  m->n_slots = n_slots;
  m->n_present = n_present;
  m->occ_at = (uint32_t)occ_at;
  slot *slots = slots_of(m);
  uint32_t *counts = c->counts;
  uint32_t at = 0;
  if (dense) {
    /* a slot for every index up to the last present, absent ones empty */
    for (uint32_t idx = 0; idx < n_slots; idx++) {
      slots[idx].start = at;
      slots[idx].count = 0;
      at += counts[idx];
      counts[idx] = 0; /* the scratch is free for sub-messages again */
    }
  } else {
    uint32_t *present = present_of(m);
    memcpy(present, c->present, k * sizeof(*present));
    if (so.unsorted)
      sort_present(present, k);
    for (uint32_t j = 0; j < k; j++) {
      uint32_t idx = present[j];
      slots[j].start = at;
      slots[j].count = 0;
      at += counts[idx];
      counts[idx] = 0;
    }
  }
  /* Singular sub-messages are decoded last (their parts may be spread
   * out), in the order their fields first came, or by index in a sparse
   * message. */
  int rv;
  if (so.n_recs <= MAX_RECS - base) {
    c->n_recs = base + so.n_recs; /* kept while sub-messages decode */
    rv = fill_recs(c, m, base, so.n_recs, depth, fr);
    if (rv == 0 && so.singular_msgs)
      rv = dense ? finish_singulars_recs(c, m, base, so.n_recs, depth, fr)
                 : finish_singulars(c, m, present_of(m), k, depth, fr);
    c->n_recs = base;
  } else {
    const uint32_t *order = present_of(m);
    if (dense && so.singular_msgs) /* sub-messages reuse the scratch */
      order = bt_arena_memdup(c->arena, c->present, k * sizeof(*order));
    rv = fill_reparse(c, m, depth, fr);
    if (rv == 0 && so.singular_msgs)
      rv = finish_singulars(c, m, order, k, depth, fr);
  }
  return rv == 0 ? m : NULL;
}

int gw_dynmsg_decode(bt_arena *arena, const gw_message *type,
                     const uint8_t *data, size_t len,
                     const gw_decode_limits *lim, gw_msg **out, char *err,
                     size_t errlen) {
  dctx c;
  c.arena = arena;
  c.max_depth = lim && lim->max_depth ? lim->max_depth : DEFAULT_DEPTH;
  if (c.max_depth > MAX_DEPTH)
    c.max_depth = MAX_DEPTH;
  c.err = err;
  c.errlen = errlen;
  c.counts = c.stack_counts;
  c.present = c.stack_present;
  c.scratch_cap = sizeof(c.stack_counts) / sizeof(c.stack_counts[0]);
  /* enough for most types, in a few stores rather than a memset call */
  for (size_t i = 0; i < SCRATCH_ZEROED; i++)
    c.stack_counts[i] = 0;
  c.zeroed = SCRATCH_ZEROED;
  c.merging = 0;
  c.n_recs = 0;
  c.bytes_left = lim && lim->max_bytes ? lim->max_bytes : SIZE_MAX;
  c.over_budget = 0;
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
    return c.over_budget ? -2 : -1;
  *out = m;
  return 0;
}

gw_msg *gw_dynmsg_empty(bt_arena *arena, const gw_message *type) {
  gw_msg *m = bt_arena_calloc(arena, sizeof(*m));
  m->type = type;
  m->data = empty_bytes;
  return m;
}

const gw_message *gw_dynmsg_type(const gw_msg *m) {
  return m ? m->type : NULL;
}

const uint8_t *gw_dynmsg_bytes(const gw_msg *m, size_t *len) {
  if (!m) {
    *len = 0;
    return empty_bytes;
  }
  *len = m->len;
  return m->data;
}

/* f's slot in m, or NULL when f is absent or not a field of m's type. */
static inline const slot *slot_of(const gw_msg *m, const gw_field *f) {
  if (!m || !f || f->index >= m->type->n_fields ||
      &m->type->fields[f->index] != f)
    return NULL;
  return find_slot(m, f->index);
}

size_t gw_dynmsg_count(const gw_msg *m, const gw_field *f) {
  const slot *s = slot_of(m, f);
  return s ? s->count : 0;
}

static COLD void default_value(const gw_field *f, gw_value *out) {
  memset(out, 0, sizeof(*out));
  out->type = f->type;
  switch (f->type) {
  case GW_TYPE_STRING:
  case GW_TYPE_BYTES:
    out->v.s.ptr = empty_bytes;
    break;
  case GW_TYPE_MESSAGE:
  case GW_TYPE_GROUP:
    out->v.msg = f->message ? gw_registry_empty_message(f->message) : NULL;
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

static inline void value_of(const gw_field *f, const occ *o, gw_value *out) {
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

int gw_dynmsg_get(const gw_msg *m, const gw_field *f, size_t i, gw_value *out) {
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

int gw_dynmsg_has(const gw_msg *m, const gw_field *f) {
  const slot *s = slot_of(m, f);
  if (!s || !s->count)
    return 0;
  if (f->repeated || f->has_presence)
    return 1;
  /* a proto3 scalar without presence: set when not the default */
  gw_value v = {.type = GW_TYPE_BOOL};
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

/* An encoder and its first buffer are one arena block of ENC_BLOCK bytes:
 * the messages a flow writes mostly fit, so each costs one allocation and
 * no copy on growth. Writers reserve room once per value (the tag, a
 * length or scalar: at most ENC_HEAD bytes) and store through a pointer. */
#define ENC_BLOCK 256
#define ENC_HEAD 20

struct gw_enc {
  bt_arena *arena;
  uint8_t *buf;
  size_t len, cap;
};

gw_enc *gw_dynmsg_enc_new(bt_arena *arena) {
  gw_enc *e = bt_arena_alloc(arena, ENC_BLOCK);
  e->arena = arena;
  e->buf = (uint8_t *)(e + 1);
  e->len = 0;
  e->cap = ENC_BLOCK - sizeof(*e);
  return e;
}

/* Makes room for n more bytes; the old buffer stays in the arena (growth is
 * geometric, so at most as much again is wasted). */
static COLD uint8_t *grow(gw_enc *e, size_t n) {
  size_t need = n > SIZE_MAX / 2 - e->len ? SIZE_MAX : e->len + n;
  size_t cap = e->cap * 2;
  if (cap < need)
    cap = need; /* past SIZE_MAX / 2: bt_arena_alloc reports it */
  uint8_t *nb = bt_arena_alloc(e->arena, cap);
  if (e->len)
    memcpy(nb, e->buf, e->len);
  e->buf = nb;
  e->cap = cap;
  return e->buf + e->len;
}

static inline uint8_t *reserve(gw_enc *e, size_t n) {
  if (UNLIKELY(e->cap - e->len < n))
    return grow(e, n);
  return e->buf + e->len;
}

/* Ends a write that started at reserve(): p is one past its last byte. */
static inline void wrote(gw_enc *e, const uint8_t *p) {
  e->len = (size_t)(p - e->buf);
}

static size_t varint_size(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    n++;
  }
  return n;
}

static inline uint8_t *wr_varint(uint8_t *p, uint64_t v) {
  while (v >= 0x80) {
    *p++ = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  *p++ = (uint8_t)v;
  return p;
}

static inline uint8_t *wr_tag(uint8_t *p, uint32_t number, int wt) {
  return wr_varint(p, (uint64_t)number << 3 | (uint64_t)wt);
}

static inline uint8_t *wr_le32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++)
    p[i] = (uint8_t)(v >> (8 * i));
  return p + 4;
}

static inline uint8_t *wr_le64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++)
    p[i] = (uint8_t)(v >> (8 * i));
  return p + 8;
}

static void put_bytes(gw_enc *e, const void *data, size_t len) {
  if (!len)
    return;
  uint8_t *p = reserve(e, len);
  memcpy(p, data, len);
  e->len += len;
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

/* Which gw_value member a numeric type uses (0: none), by table. */
enum { NK_NONE = 0, NK_SIGNED, NK_UNSIGNED, NK_BOOL, NK_FLOAT };
static const uint8_t num_kind_tab[32] = {
    [GW_TYPE_DOUBLE] = NK_FLOAT,     [GW_TYPE_FLOAT] = NK_FLOAT,
    [GW_TYPE_INT64] = NK_SIGNED,     [GW_TYPE_UINT64] = NK_UNSIGNED,
    [GW_TYPE_INT32] = NK_SIGNED,     [GW_TYPE_FIXED64] = NK_UNSIGNED,
    [GW_TYPE_FIXED32] = NK_UNSIGNED, [GW_TYPE_BOOL] = NK_BOOL,
    [GW_TYPE_UINT32] = NK_UNSIGNED,  [GW_TYPE_ENUM] = NK_SIGNED,
    [GW_TYPE_SFIXED32] = NK_SIGNED,  [GW_TYPE_SFIXED64] = NK_SIGNED,
    [GW_TYPE_SINT32] = NK_SIGNED,    [GW_TYPE_SINT64] = NK_SIGNED};

static inline int num_kind(gw_ftype t) {
  return (unsigned)t < 32 ? num_kind_tab[t] : NK_NONE;
}

/* The source value as 64 bits of two's complement: signed values are
 * sign-extended, so narrowing later keeps C's modular conversion. */
static inline uint64_t int_bits(const gw_value *v) {
  switch (num_kind(v->type)) {
  case NK_SIGNED:
    return (uint64_t)v->v.i;
  case NK_UNSIGNED:
    return v->v.u;
  case NK_BOOL:
    return v->v.b != 0;
  case NK_FLOAT: { /* not assignable; saturate rather than UB */
    double d = v->v.d;
    if (d != d)
      return 0;
    if (d >= 9223372036854775807.0)
      return (uint64_t)INT64_MAX;
    if (d <= -9223372036854775808.0)
      return (uint64_t)INT64_MIN;
    return (uint64_t)(int64_t)d;
  }
  default:
    return 0;
  }
}

static double float_val(const gw_value *v) {
  switch (num_kind(v->type)) {
  case NK_FLOAT:
    return v->v.d;
  case NK_SIGNED:
    return (double)v->v.i;
  case NK_UNSIGNED:
    return (double)v->v.u;
  case NK_BOOL:
    return v->v.b != 0;
  default:
    return 0;
  }
}

/* Writes v as a value (no tag) of scalar numeric type t at p (room for 10
 * bytes); returns one past the end. */
static inline uint8_t *wr_scalar(uint8_t *p, gw_ftype t, const gw_value *v) {
  switch (t) {
  case GW_TYPE_INT32:
  case GW_TYPE_ENUM:
    /* negative int32s go on the wire sign-extended to 64 bits */
    return wr_varint(p, (uint64_t)(int64_t)(int32_t)(uint32_t)int_bits(v));
  case GW_TYPE_UINT32:
    return wr_varint(p, (uint32_t)int_bits(v));
  case GW_TYPE_SINT32: {
    uint32_t n = (uint32_t)int_bits(v);
    return wr_varint(p, (uint32_t)(n << 1) ^ (0u - (n >> 31)));
  }
  case GW_TYPE_SINT64: {
    uint64_t x = int_bits(v);
    return wr_varint(p, (x << 1) ^ (0ull - (x >> 63)));
  }
  case GW_TYPE_BOOL:
    return wr_varint(p, int_bits(v) != 0);
  case GW_TYPE_FIXED32:
  case GW_TYPE_SFIXED32:
    return wr_le32(p, (uint32_t)int_bits(v));
  case GW_TYPE_FIXED64:
  case GW_TYPE_SFIXED64:
    return wr_le64(p, int_bits(v));
  case GW_TYPE_FLOAT: {
    double d = float_val(v);
    /* out of float's range is undefined in C; IEEE gives infinity */
    float fl = d > FLT_MAX ? INFINITY : d < -FLT_MAX ? -INFINITY : (float)d;
    uint32_t bits;
    memcpy(&bits, &fl, sizeof(bits));
    return wr_le32(p, bits);
  }
  case GW_TYPE_DOUBLE: {
    double d = float_val(v);
    uint64_t bits;
    memcpy(&bits, &d, sizeof(bits));
    return wr_le64(p, bits);
  }
  default: /* INT64, UINT64 */
    return wr_varint(p, int_bits(v));
  }
}

/* Writes tag, length and payload of a LEN record. */
static inline void put_len_record(gw_enc *e, uint32_t number,
                                  const uint8_t *data, size_t len) {
  uint8_t *p = reserve(e, ENC_HEAD);
  p = wr_tag(p, number, WT_LEN);
  wrote(e, wr_varint(p, len));
  put_bytes(e, data, len);
}

/* Writes one value of f. Absent singular fields are the caller's to skip:
 * whatever is given is written, proto3 defaults included. A value of a
 * type gw_dynmsg_value_assignable refuses is written as the field's zero value,
 * never read as the wrong union member. Group fields are not written. */
void gw_dynmsg_enc_value(gw_enc *e, const gw_field *f, const gw_value *v) {
  if (!e || !f || !v)
    return;
  gw_ftype t = f->type;
  int wt = wire_of(t);
  if (wt != WT_LEN) {
    if (wt < 0)
      return; /* a group */
    uint8_t *p = reserve(e, ENC_HEAD);
    p = wr_tag(p, f->number, wt);
    wrote(e, wr_scalar(p, t, v));
    return;
  }
  const uint8_t *data = NULL;
  size_t len = 0;
  if (t == GW_TYPE_MESSAGE) {
    /* forwarded whole: unknown fields included */
    if (v->type == GW_TYPE_MESSAGE && v->v.msg) {
      data = v->v.msg->data;
      len = v->v.msg->len;
    }
  } else if (v->type == GW_TYPE_STRING || v->type == GW_TYPE_BYTES) {
    data = v->v.s.ptr;
    len = v->v.s.len;
  }
  put_len_record(e, f->number, data, len);
}

void gw_dynmsg_enc_repeated(gw_enc *e, const gw_field *df, const gw_msg *src,
                            const gw_field *sf) {
  if (!e || !df)
    return;
  /* the source's occurrences found once, not once per element */
  const slot *s = slot_of(src, sf);
  if (!s || !s->count)
    return;
  const occ *o = &occ_of(src)[s->start];
  uint32_t n = s->count;
  gw_value v = {.type = GW_TYPE_BOOL};
  if (!(df->repeated && df->packed && is_scalar_numeric(df->type))) {
    for (uint32_t i = 0; i < n; i++) {
      value_of(sf, &o[i], &v);
      gw_dynmsg_enc_value(e, df, &v);
    }
    return;
  }
  /* One LEN record: a byte kept for the length, which fits it when the
   * run is under 128 bytes; a longer length is slid in front. */
  uint8_t *p = reserve(e, ENC_HEAD);
  p = wr_tag(p, df->number, WT_LEN);
  size_t len_at = (size_t)(p - e->buf);
  e->len = len_at + 1;
  for (uint32_t i = 0; i < n; i++) {
    value_of(sf, &o[i], &v);
    wrote(e, wr_scalar(reserve(e, 10), df->type, &v));
  }
  size_t start = len_at + 1;
  size_t payload = e->len - start;
  if (payload < 0x80) {
    e->buf[len_at] = (uint8_t)payload;
    return;
  }
  size_t more = varint_size(payload) - 1;
  reserve(e, more);
  memmove(e->buf + start + more, e->buf + start, payload);
  wr_varint(e->buf + len_at, payload);
  e->len += more;
}

void gw_dynmsg_enc_message(gw_enc *e, const gw_field *f, const gw_enc *sub) {
  if (!e || !f)
    return;
  put_len_record(e, f->number, sub ? sub->buf : NULL, sub ? sub->len : 0);
}

void gw_dynmsg_enc_raw(gw_enc *e, const uint8_t *data, size_t len) {
  if (e && len)
    put_bytes(e, data, len);
}

const uint8_t *gw_dynmsg_enc_data(const gw_enc *e, size_t *len) {
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
  return gw_registry_field_type_str(&tmp, buf, len);
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
int gw_dynmsg_value_assignable(gw_ftype from, const gw_message *from_msg,
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
             gw_registry_field_type_str(to, tb, sizeof(tb)), why);
  return -1;
}
