/* dynmsg.h (gateway/proto): messages decoded and encoded from registry
 * types, without generated code.
 *
 * A decoded gw_msg is a view over the encoded bytes (never copied): each
 * field's occurrences are indexed, sub-messages are decoded too, and the
 * original bytes stay available so a message forwarded whole keeps its
 * unknown fields. Decoding validates everything a mapping may read later
 * (wire types against field types, UTF-8 of strings, nesting depth, sizes),
 * so errors reach the client as INVALID_ARGUMENT naming the field. All
 * memory comes from the call's arena. */
#ifndef GW_DYNMSG_H
#define GW_DYNMSG_H

#include <stddef.h>
#include <stdint.h>

#include <baton/arena.h>

#include "registry.h"

typedef struct gw_msg gw_msg;

/* One value of a field, as the C type its proto type maps to. */
typedef struct gw_value {
  gw_ftype type;
  union {
    int64_t i;  /* int32 int64 sint32 sint64 sfixed32 sfixed64 enum */
    uint64_t u; /* uint32 uint64 fixed32 fixed64 */
    double d;   /* double float */
    int b;      /* bool */
    struct {
      const uint8_t *ptr;
      size_t len;
    } s;               /* string bytes */
    const gw_msg *msg; /* message (NULL never: absent gives count 0) */
  } v;
} gw_value;

typedef struct gw_decode_limits {
  uint32_t max_depth; /* nested messages; default 64 */
  size_t max_bytes;   /* memory the decoded form may take (message headers,
                         slots, occurrences, merge copies); 0 = no limit */
} gw_decode_limits;

/* Decodes data as type. On failure returns -1 and writes a sentence naming
 * the field path into err ("field items[2].sku: invalid UTF-8"), or -2 when
 * the decoded form would take more than lim->max_bytes. data must outlive
 * the message (it is not copied). lim may be NULL. */
int gw_dynmsg_decode(bt_arena *arena, const gw_message *type,
                     const uint8_t *data, size_t len,
                     const gw_decode_limits *lim, gw_msg **out, char *err,
                     size_t errlen);
/* An empty message of type (every field at its default). */
gw_msg *gw_dynmsg_empty(bt_arena *arena, const gw_message *type);

const gw_message *gw_dynmsg_type(const gw_msg *m);
/* The encoded bytes this message was decoded from (unknown fields and
 * all). */
const uint8_t *gw_dynmsg_bytes(const gw_msg *m, size_t *len);
/* Occurrences of f: for a repeated field the element count (packed runs
 * expanded, map entries counted); for a singular field 0 or 1. */
size_t gw_dynmsg_count(const gw_msg *m, const gw_field *f);
/* Element i of f (for singular fields i = 0: the last occurrence, as
 * protobuf's "last one wins"). When a singular field is absent, gives its
 * default (0, "", false, an empty message) and returns 0; otherwise 1. */
int gw_dynmsg_get(const gw_msg *m, const gw_field *f, size_t i, gw_value *out);
/* 1 when a field with presence was set (or a repeated field non-empty, or
 * a proto3 scalar non-default). */
int gw_dynmsg_has(const gw_msg *m, const gw_field *f);

/* ---- encoding ------------------------------------------------------- */

typedef struct gw_enc gw_enc;

/* A growable output buffer in arena. */
gw_enc *gw_dynmsg_enc_new(bt_arena *arena);
/* Writes f (tag + value) for one value. v's type may differ from f's when
 * gw_dynmsg_value_assignable(v->type, ..., f) allowed it at load time: the
 * value is converted (int widths, zigzag, fixed, enum <-> int32, string <->
 * bytes). */
void gw_dynmsg_enc_value(gw_enc *e, const gw_field *f, const gw_value *v);
/* Writes every element of src's field sf into dst field df (repeated to
 * repeated, packed when df is packed). */
void gw_dynmsg_enc_repeated(gw_enc *e, const gw_field *df, const gw_msg *src,
                            const gw_field *sf);
/* Writes sub (an encoder holding a message body) as field f. */
void gw_dynmsg_enc_message(gw_enc *e, const gw_field *f, const gw_enc *sub);
/* Appends raw bytes (an already encoded message body, forwarded whole). */
void gw_dynmsg_enc_raw(gw_enc *e, const uint8_t *data, size_t len);
const uint8_t *gw_dynmsg_enc_data(const gw_enc *e, size_t *len);

/* Load-time check that a value of type from (with message type from_msg for
 * messages, enum from_enum for enums) can be written into field to. Returns
 * 0, or -1 with the reason in err. Rules: same type; integer to integer
 * (any width and signedness, including enum); float/double to double or
 * float; string to string or bytes; bytes to bytes; a message only to a
 * field of the same message type; a repeated field only to a repeated field
 * of an assignable element type. */
int gw_dynmsg_value_assignable(gw_ftype from, const gw_message *from_msg,
                               const gw_enum *from_enum, int from_repeated,
                               const gw_field *to, char *err, size_t errlen);

#endif
