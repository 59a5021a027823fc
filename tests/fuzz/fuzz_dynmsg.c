/* fuzz_dynmsg.c: the dynamic protobuf decoder and encoder.
 *
 * The input is decoded as dyntest.Order from the unit tests' descriptor set
 * (tests/unit/proto/dyn: every scalar type, nested and recursive messages,
 * repeated fields packed and not, maps, oneofs, an imported type).
 * Properties, for every input the decoder accepts: gw_dynmsg_bytes is the
 * input; every occurrence of every field of every sub-message reads back
 * (counts agree with gw_dynmsg_get and gw_dynmsg_has, sub-messages have their
 * field's type); the message forwarded whole and re-encoded field by field
 * both decode again; and re-encoding field by field is a fixed point after
 * one round. */
#include <stdint.h>
#include <string.h>

#include <baton/arena.h>
#include "proto/dynmsg.h"
#include "fuzz_check.h"
#include "proto/registry.h"

static gw_registry *reg;
static const gw_message *order;

static void init(void) {
  if (reg)
    return;
  char err[512];
  reg = gw_registry_load(DYNTEST_DESCRIPTOR_SET, err, sizeof(err));
  if (!reg)
    fprintf(stderr, "%s\n", err);
  FUZZ_CHECK(reg != NULL);
  order = gw_registry_message(reg, "dyntest.Order");
  FUZZ_CHECK(order != NULL);
}

static void walk(const gw_msg *m) {
  const gw_message *t = gw_dynmsg_type(m);
  for (size_t i = 0; i < t->n_fields; i++) {
    const gw_field *f = &t->fields[i];
    size_t n = gw_dynmsg_count(m, f);
    FUZZ_CHECK(f->repeated || n <= 1);
    if (f->repeated || f->has_presence)
      FUZZ_CHECK(gw_dynmsg_has(m, f) == (n > 0));
    gw_value v;
    for (size_t k = 0; k < n; k++) {
      FUZZ_CHECK(gw_dynmsg_get(m, f, k, &v) == 1);
      FUZZ_CHECK(v.type == f->type);
      if (f->type == GW_TYPE_MESSAGE) {
        FUZZ_CHECK(v.v.msg && gw_dynmsg_type(v.v.msg) == f->message);
        walk(v.v.msg);
      } else if (f->type == GW_TYPE_STRING || f->type == GW_TYPE_BYTES) {
        FUZZ_CHECK(v.v.s.ptr != NULL || v.v.s.len == 0);
      }
    }
    FUZZ_CHECK(gw_dynmsg_get(m, f, n, &v) == 0);
    if (f->type == GW_TYPE_MESSAGE)
      FUZZ_CHECK(v.v.msg && gw_dynmsg_type(v.v.msg) == f->message);
  }
}

/* Every field written back; deep: sub-messages field by field as well. */
static gw_enc *reencode(bt_arena *a, const gw_msg *m, int deep) {
  gw_enc *e = gw_dynmsg_enc_new(a);
  const gw_message *t = gw_dynmsg_type(m);
  for (size_t i = 0; i < t->n_fields; i++) {
    const gw_field *f = &t->fields[i];
    size_t n = gw_dynmsg_count(m, f);
    if (deep && f->type == GW_TYPE_MESSAGE) {
      for (size_t k = 0; k < n; k++) {
        gw_value v;
        gw_dynmsg_get(m, f, k, &v);
        gw_dynmsg_enc_message(e, f, reencode(a, v.v.msg, 1));
      }
    } else if (f->repeated) {
      gw_dynmsg_enc_repeated(e, f, m, f);
    } else if (n) {
      gw_value v;
      gw_dynmsg_get(m, f, 0, &v);
      gw_dynmsg_enc_value(e, f, &v);
    }
  }
  return e;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  init();
  bt_arena *arena = bt_arena_new(0);
  char err[256];
  gw_msg *m = NULL;
  if (gw_dynmsg_decode(arena, order, data, size, NULL, &m, err, sizeof(err)) !=
      0) {
    FUZZ_CHECK(m == NULL);
    FUZZ_CHECK(err[0] != '\0');
    bt_arena_free(arena);
    return 0;
  }
  size_t len;
  const uint8_t *bytes = gw_dynmsg_bytes(m, &len);
  FUZZ_CHECK(len == size && (size == 0 || bytes == data));
  walk(m);

  const uint8_t *shallow = gw_dynmsg_enc_data(reencode(arena, m, 0), &len);
  gw_msg *m0 = NULL;
  FUZZ_CHECK(gw_dynmsg_decode(arena, order, shallow, len, NULL, &m0, err,
                              sizeof(err)) == 0);

  size_t len1, len2;
  const uint8_t *e1 = gw_dynmsg_enc_data(reencode(arena, m, 1), &len1);
  gw_msg *m1 = NULL;
  if (gw_dynmsg_decode(arena, order, e1, len1, NULL, &m1, err, sizeof(err)) !=
      0) {
    fprintf(stderr, "re-encoded message refused: %s\n", err);
    FUZZ_CHECK(0);
  }
  walk(m1);
  const uint8_t *e2 = gw_dynmsg_enc_data(reencode(arena, m1, 1), &len2);
  FUZZ_CHECK(len1 == len2 && (len1 == 0 || memcmp(e1, e2, len1) == 0));
  bt_arena_free(arena);
  return 0;
}
