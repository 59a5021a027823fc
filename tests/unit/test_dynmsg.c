/* Tests for dynmsg.c: messages packed by protobuf-c decode dynamically to
 * the same values (every proto3 scalar type, enums, strings and bytes,
 * nested and repeated fields packed and not, maps, oneofs, proto3 optional,
 * an imported type), re-encode field by field to the same bytes, and keep
 * unknown fields when forwarded whole; malformed input is refused with a
 * sentence naming the field; the encoder converts between assignable types
 * and gw_dynmsg_value_assignable says why it refuses the others. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <baton/alloc.h>
#include <baton/arena.h>
#include "proto/dynmsg.h"
#include "proto/registry.h"
#include "dyn/dyn.pb-c.h"

static gw_registry *reg;

static int group_setup(void **state) {
  char err[512];
  reg = gw_registry_load(DYNTEST_DESCRIPTOR_SET, err, sizeof(err));
  if (!reg)
    fprintf(stderr, "load: %s\n", err);
  return reg ? 0 : -1;
}

static int group_teardown(void **state) {
  gw_registry_free(reg);
  return 0;
}

typedef struct fx {
  bt_arena *arena;
  char err[512];
} fx;

static int setup(void **state) {
  fx *f = calloc(1, sizeof(*f));
  f->arena = bt_arena_new(0);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fx *f = *state;
  bt_arena_free(f->arena);
  free(f);
  return 0;
}

static const gw_message *msg(const char *name) {
  const gw_message *m = gw_registry_message(reg, name);
  assert_non_null(m);
  return m;
}

static const gw_field *fld(const gw_message *m, const char *name) {
  const gw_field *f = gw_registry_field(m, name);
  if (!f)
    fail_msg("no field %s in %s", name, m->full_name);
  return f;
}

static gw_msg *decode_ok(fx *f, const gw_message *type, const uint8_t *data,
                         size_t len) {
  gw_msg *m = NULL;
  if (gw_dynmsg_decode(f->arena, type, data, len, NULL, &m, f->err,
                       sizeof(f->err)) != 0)
    fail_msg("decode %s: %s", type->full_name, f->err);
  assert_non_null(m);
  return m;
}

/* The value of singular field name of m. */
static gw_value get(const gw_msg *m, const char *name) {
  gw_value v;
  gw_dynmsg_get(m, fld(gw_dynmsg_type(m), name), 0, &v);
  return v;
}

static gw_value get_i(const gw_msg *m, const char *name, size_t i) {
  gw_value v;
  assert_int_equal(gw_dynmsg_get(m, fld(gw_dynmsg_type(m), name), i, &v), 1);
  return v;
}

static size_t count(const gw_msg *m, const char *name) {
  return gw_dynmsg_count(m, fld(gw_dynmsg_type(m), name));
}

static void assert_str(gw_value v, const char *s) {
  assert_int_equal(v.v.s.len, strlen(s));
  assert_memory_equal(v.v.s.ptr, s, strlen(s));
}

/* Re-encodes every field of m as it was decoded: repeated fields whole,
 * singular ones when present (proto3 scalars when not the default, as
 * protobuf-c writes them). deep: sub-messages field by field too, through
 * gw_dynmsg_enc_message; otherwise forwarded whole. */
static gw_enc *reencode(bt_arena *a, const gw_msg *m, int deep) {
  gw_enc *e = gw_dynmsg_enc_new(a);
  const gw_message *t = gw_dynmsg_type(m);
  for (size_t i = 0; i < t->n_fields; i++) {
    const gw_field *f = &t->fields[i];
    size_t n = gw_dynmsg_count(m, f);
    if (f->type == GW_TYPE_MESSAGE && deep) {
      for (size_t k = 0; k < n; k++) {
        gw_value v;
        gw_dynmsg_get(m, f, k, &v);
        gw_dynmsg_enc_message(e, f, reencode(a, v.v.msg, 1));
      }
    } else if (f->repeated) {
      gw_dynmsg_enc_repeated(e, f, m, f);
    } else if (gw_dynmsg_has(m, f)) {
      gw_value v;
      assert_int_equal(gw_dynmsg_get(m, f, 0, &v), 1);
      gw_dynmsg_enc_value(e, f, &v);
    }
  }
  return e;
}

static void assert_reencodes_to(fx *f, const gw_msg *m, const uint8_t *want,
                                size_t want_len) {
  for (int deep = 0; deep <= 1; deep++) {
    size_t len;
    const uint8_t *data = gw_dynmsg_enc_data(reencode(f->arena, m, deep), &len);
    assert_int_equal(len, want_len);
    assert_memory_equal(data, want, len);
  }
}

/* ---- hand-made wire bytes -------------------------------------------- */

typedef struct bb {
  uint8_t b[1 << 16];
  size_t n;
} bb;

static void bb_varint(bb *b, uint64_t v) {
  while (v >= 0x80) {
    b->b[b->n++] = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  b->b[b->n++] = (uint8_t)v;
}

static void bb_tag(bb *b, uint32_t num, int wt) {
  bb_varint(b, (uint64_t)num << 3 | (uint64_t)wt);
}

static void bb_raw(bb *b, const void *p, size_t n) {
  if (n)
    memcpy(b->b + b->n, p, n);
  b->n += n;
}

static void bb_len(bb *b, uint32_t num, const void *p, size_t n) {
  bb_tag(b, num, 2);
  bb_varint(b, n);
  bb_raw(b, p, n);
}

static void bb_str(bb *b, uint32_t num, const char *s) {
  bb_len(b, num, s, strlen(s));
}

/* ---- round trips ----------------------------------------------------- */

static const uint8_t some_bytes[] = {0x00, 0xff, 0x80, 'a'};

static void fill_scalars(Dyntest__Scalars *s) {
  s->f_double = -1.5e300;
  s->f_float = 3.25f;
  s->f_int64 = INT64_MIN;
  s->f_uint64 = UINT64_MAX;
  s->f_int32 = -123456;
  s->f_fixed64 = 0xFEDCBA9876543210ull;
  s->f_fixed32 = 0xDEADBEEFu;
  s->f_bool = 1;
  s->f_string = "h\xc3\xa9llo \xe2\x9c\x93";
  s->f_bytes.data = (uint8_t *)some_bytes;
  s->f_bytes.len = sizeof(some_bytes);
  s->f_uint32 = 4000000000u;
  s->f_sfixed32 = -2;
  s->f_sfixed64 = -3000000000000ll;
  s->f_sint32 = INT32_MIN;
  s->f_sint64 = -1;
  s->f_enum = DYNTEST__COMMON__COLOR__NEGATIVE;
}

static void check_scalars(const gw_msg *m) {
  gw_value v;
  v = get(m, "f_double");
  assert_int_equal(v.type, GW_TYPE_DOUBLE);
  assert_true(v.v.d == -1.5e300);
  v = get(m, "f_float");
  assert_int_equal(v.type, GW_TYPE_FLOAT);
  assert_true(v.v.d == 3.25);
  assert_true(get(m, "f_int64").v.i == INT64_MIN);
  assert_true(get(m, "f_uint64").v.u == UINT64_MAX);
  assert_int_equal(get(m, "f_int32").v.i, -123456);
  assert_true(get(m, "f_fixed64").v.u == 0xFEDCBA9876543210ull);
  assert_int_equal(get(m, "f_fixed32").v.u, 0xDEADBEEFu);
  assert_int_equal(get(m, "f_bool").v.b, 1);
  assert_str(get(m, "f_string"), "h\xc3\xa9llo \xe2\x9c\x93");
  v = get(m, "f_bytes");
  assert_int_equal(v.v.s.len, sizeof(some_bytes));
  assert_memory_equal(v.v.s.ptr, some_bytes, sizeof(some_bytes));
  assert_int_equal(get(m, "f_uint32").v.u, 4000000000u);
  assert_int_equal(get(m, "f_sfixed32").v.i, -2);
  assert_true(get(m, "f_sfixed64").v.i == -3000000000000ll);
  assert_true(get(m, "f_sint32").v.i == INT32_MIN);
  assert_int_equal(get(m, "f_sint64").v.i, -1);
  v = get(m, "f_enum");
  assert_int_equal(v.type, GW_TYPE_ENUM);
  assert_int_equal(v.v.i, -7);
}

static void test_dynmsg_scalars_round_trip(void **state) {
  fx *f = *state;
  Dyntest__Scalars s = DYNTEST__SCALARS__INIT;
  fill_scalars(&s);
  size_t len = dyntest__scalars__get_packed_size(&s);
  uint8_t *buf = malloc(len);
  dyntest__scalars__pack(&s, buf);

  const gw_message *type = msg("dyntest.Scalars");
  gw_msg *m = decode_ok(f, type, buf, len);
  assert_ptr_equal(gw_dynmsg_type(m), type);
  check_scalars(m);
  for (size_t i = 0; i < type->n_fields; i++) {
    assert_int_equal(gw_dynmsg_count(m, &type->fields[i]), 1);
    assert_true(gw_dynmsg_has(m, &type->fields[i]));
  }
  /* payloads point into the input, never copied */
  gw_value v = get(m, "f_string");
  assert_true(v.v.s.ptr > buf && v.v.s.ptr < buf + len);
  size_t blen;
  assert_ptr_equal(gw_dynmsg_bytes(m, &blen), buf);
  assert_int_equal(blen, len);

  /* every field written back gives protobuf-c's bytes */
  assert_reencodes_to(f, m, buf, len);
  size_t elen;
  const uint8_t *enc = gw_dynmsg_enc_data(reencode(f->arena, m, 0), &elen);
  Dyntest__Scalars *back = dyntest__scalars__unpack(NULL, elen, enc);
  assert_non_null(back);
  assert_true(back->f_int64 == INT64_MIN);
  assert_true(back->f_sint32 == INT32_MIN);
  assert_int_equal(back->f_enum, DYNTEST__COMMON__COLOR__NEGATIVE);
  assert_string_equal(back->f_string, s.f_string);
  dyntest__scalars__free_unpacked(back, NULL);
  free(buf);
}

static void test_dynmsg_scalars_other_extremes(void **state) {
  fx *f = *state;
  Dyntest__Scalars s = DYNTEST__SCALARS__INIT;
  s.f_double = 5e-324; /* the smallest subnormal */
  s.f_float = -INFINITY;
  s.f_int64 = INT64_MAX;
  s.f_uint64 = 1;
  s.f_int32 = INT32_MAX;
  s.f_sint32 = INT32_MAX;
  s.f_sint64 = INT64_MIN;
  s.f_sfixed32 = INT32_MIN;
  s.f_sfixed64 = INT64_MAX;
  s.f_enum = 1000; /* proto3 enums are open */
  size_t len = dyntest__scalars__get_packed_size(&s);
  uint8_t *buf = malloc(len);
  dyntest__scalars__pack(&s, buf);
  gw_msg *m = decode_ok(f, msg("dyntest.Scalars"), buf, len);
  assert_true(get(m, "f_double").v.d == 5e-324);
  assert_true(isinf(get(m, "f_float").v.d) && get(m, "f_float").v.d < 0);
  assert_true(get(m, "f_int64").v.i == INT64_MAX);
  assert_int_equal(get(m, "f_int32").v.i, INT32_MAX);
  assert_int_equal(get(m, "f_sint32").v.i, INT32_MAX);
  assert_true(get(m, "f_sint64").v.i == INT64_MIN);
  assert_true(get(m, "f_sfixed32").v.i == INT32_MIN);
  assert_true(get(m, "f_sfixed64").v.i == INT64_MAX);
  assert_int_equal(get(m, "f_enum").v.i, 1000);
  /* absent proto3 scalars read as defaults */
  assert_int_equal(count(m, "f_bool"), 0);
  assert_false(gw_dynmsg_has(m, fld(msg("dyntest.Scalars"), "f_bool")));
  assert_reencodes_to(f, m, buf, len);
  free(buf);
}

#define SET_ARRAY(msgp, field, ...)                                            \
  do {                                                                         \
    static __typeof__(*(msgp)->field) vals_[] = {__VA_ARGS__};                 \
    (msgp)->field = vals_;                                                     \
    (msgp)->n_##field = sizeof(vals_) / sizeof(vals_[0]);                      \
  } while (0)

/* Checks every element of repeated field name against the C array. */
#define CHECK_ARRAY(m, src, field, member)                                     \
  do {                                                                         \
    assert_int_equal(count(m, #field), (src)->n_##field);                      \
    for (size_t i_ = 0; i_ < (src)->n_##field; i_++)                           \
      assert_true(get_i(m, #field, i_).v.member == (src)->field[i_]);          \
  } while (0)

static void fill_repeated(Dyntest__Repeated *r) {
  SET_ARRAY(r, r_double, 1.5, -2.25, 0);
  SET_ARRAY(r, r_float, 0.5f, -8.0f);
  SET_ARRAY(r, r_int64, INT64_MIN, 0, INT64_MAX);
  SET_ARRAY(r, r_uint64, 0, 1, UINT64_MAX);
  SET_ARRAY(r, r_int32, -1, 0, INT32_MAX, INT32_MIN);
  SET_ARRAY(r, r_fixed64, 7, UINT64_MAX);
  SET_ARRAY(r, r_fixed32, 1, 0xFFFFFFFFu);
  SET_ARRAY(r, r_bool, 1, 0, 1);
  SET_ARRAY(r, r_string, "a", "", "\xc3\xbc");
  SET_ARRAY(r, r_uint32, 0, 300, 0xFFFFFFFFu);
  SET_ARRAY(r, r_sfixed32, -1, 2);
  SET_ARRAY(r, r_sfixed64, INT64_MIN, -5);
  SET_ARRAY(r, r_sint32, INT32_MIN, -1, 1, INT32_MAX);
  SET_ARRAY(r, r_sint64, INT64_MIN, -64, 63);
  SET_ARRAY(r, r_enum, DYNTEST__COMMON__COLOR__RED,
            DYNTEST__COMMON__COLOR__NEGATIVE, 42);
  SET_ARRAY(r, u_int32, -5, 7);
  SET_ARRAY(r, u_sint64, -9, 9);
  SET_ARRAY(r, u_fixed32, 1, 2, 3);
  SET_ARRAY(r, u_double, 0.5);
  SET_ARRAY(r, u_enum, DYNTEST__COMMON__COLOR__BLUE,
            DYNTEST__COMMON__COLOR__RED);
  static ProtobufCBinaryData bytes[] = {
      {1, (uint8_t *)"\0"}, {0, NULL}, {4, (uint8_t *)some_bytes}};
  r->r_bytes = bytes;
  r->n_r_bytes = 3;
}

static void check_repeated(const gw_msg *m, const Dyntest__Repeated *r) {
  CHECK_ARRAY(m, r, r_double, d);
  CHECK_ARRAY(m, r, r_float, d);
  CHECK_ARRAY(m, r, r_int64, i);
  CHECK_ARRAY(m, r, r_uint64, u);
  CHECK_ARRAY(m, r, r_int32, i);
  CHECK_ARRAY(m, r, r_fixed64, u);
  CHECK_ARRAY(m, r, r_fixed32, u);
  CHECK_ARRAY(m, r, r_bool, b);
  CHECK_ARRAY(m, r, r_uint32, u);
  CHECK_ARRAY(m, r, r_sfixed32, i);
  CHECK_ARRAY(m, r, r_sfixed64, i);
  CHECK_ARRAY(m, r, r_sint32, i);
  CHECK_ARRAY(m, r, r_sint64, i);
  CHECK_ARRAY(m, r, r_enum, i);
  CHECK_ARRAY(m, r, u_int32, i);
  CHECK_ARRAY(m, r, u_sint64, i);
  CHECK_ARRAY(m, r, u_fixed32, u);
  CHECK_ARRAY(m, r, u_double, d);
  CHECK_ARRAY(m, r, u_enum, i);
  assert_int_equal(count(m, "r_string"), r->n_r_string);
  for (size_t i = 0; i < r->n_r_string; i++)
    assert_str(get_i(m, "r_string", i), r->r_string[i]);
  assert_int_equal(count(m, "r_bytes"), r->n_r_bytes);
  for (size_t i = 0; i < r->n_r_bytes; i++) {
    gw_value v = get_i(m, "r_bytes", i);
    assert_int_equal(v.v.s.len, r->r_bytes[i].len);
    if (v.v.s.len)
      assert_memory_equal(v.v.s.ptr, r->r_bytes[i].data, v.v.s.len);
  }
}

static void test_dynmsg_repeated_round_trip(void **state) {
  fx *f = *state;
  Dyntest__Repeated r = DYNTEST__REPEATED__INIT;
  fill_repeated(&r);
  size_t len = dyntest__repeated__get_packed_size(&r);
  uint8_t *buf = malloc(len);
  dyntest__repeated__pack(&r, buf);
  gw_msg *m = decode_ok(f, msg("dyntest.Repeated"), buf, len);
  check_repeated(m, &r);
  /* out of range reads as the default */
  gw_value v;
  assert_int_equal(
      gw_dynmsg_get(m, fld(msg("dyntest.Repeated"), "r_int32"), 4, &v), 0);
  assert_int_equal(v.v.i, 0);
  /* packed fields re-encode packed, unpacked ones unpacked: same bytes */
  assert_reencodes_to(f, m, buf, len);

  size_t elen;
  const uint8_t *enc = gw_dynmsg_enc_data(reencode(f->arena, m, 0), &elen);
  Dyntest__Repeated *back = dyntest__repeated__unpack(NULL, elen, enc);
  assert_non_null(back);
  assert_int_equal(back->n_r_sint32, 4);
  assert_true(back->r_sint32[0] == INT32_MIN);
  assert_int_equal(back->n_u_enum, 2);
  assert_int_equal(back->r_enum[2], 42);
  dyntest__repeated__free_unpacked(back, NULL);
  free(buf);
}

static Dyntest__Item *new_item(const char *sku, int32_t qty, int64_t units) {
  Dyntest__Item *it = calloc(1, sizeof(*it));
  dyntest__item__init(it);
  it->sku = (char *)sku;
  it->qty = qty;
  if (units) {
    it->price = calloc(1, sizeof(*it->price));
    dyntest__common__money__init(it->price);
    it->price->units = units;
    it->price->currency = "EUR";
  }
  return it;
}

static void free_item(Dyntest__Item *it) {
  free(it->price);
  free(it);
}

typedef struct order_fx {
  Dyntest__Order order, kid;
  Dyntest__Scalars scalars;
  Dyntest__Repeated rep;
  Dyntest__Item *items[3], *by_id_items[2];
  Dyntest__Order__CountsEntry counts[2], *countp[2];
  Dyntest__Order__ByIdEntry by_id[2], *by_idp[2];
  Dyntest__Order__LabelsEntry label, *labelp[1];
  Dyntest__Common__Money total;
  char *tags[2];
  uint8_t *buf;
  size_t len;
} order_fx;

static void make_order(order_fx *o) {
  dyntest__order__init(&o->order);
  dyntest__order__init(&o->kid);
  dyntest__scalars__init(&o->scalars);
  dyntest__repeated__init(&o->rep);
  fill_scalars(&o->scalars);
  fill_repeated(&o->rep);
  Dyntest__Order *ord = &o->order;
  ord->id = "order-1";
  ord->scalars = &o->scalars;
  ord->rep = &o->rep;
  o->items[0] = new_item("sku-0", 1, 0);
  o->items[1] = new_item("sku-1", 2, 250);
  o->items[2] = new_item("sku-\xe2\x82\xac", -3, -4);
  o->tags[0] = "red";
  o->tags[1] = "";
  o->items[1]->tags = o->tags;
  o->items[1]->n_tags = 2;
  ord->items = o->items;
  ord->n_items = 3;
  for (int i = 0; i < 2; i++) {
    dyntest__order__counts_entry__init(&o->counts[i]);
    o->countp[i] = &o->counts[i];
    dyntest__order__by_id_entry__init(&o->by_id[i]);
    o->by_idp[i] = &o->by_id[i];
  }
  o->counts[0].key = "a";
  o->counts[0].value = 1;
  o->counts[1].key = "b";
  o->counts[1].value = -2;
  ord->counts = o->countp;
  ord->n_counts = 2;
  o->by_id_items[0] = new_item("x", 9, 0);
  o->by_id_items[1] = new_item("y", 0, 1);
  o->by_id[0].key = 5;
  o->by_id[0].value = o->by_id_items[0];
  o->by_id[1].key = -1;
  o->by_id[1].value = o->by_id_items[1];
  ord->by_id = o->by_idp;
  ord->n_by_id = 2;
  dyntest__order__labels_entry__init(&o->label);
  o->label.key = "k";
  o->label.value = "v";
  o->labelp[0] = &o->label;
  ord->labels = o->labelp;
  ord->n_labels = 1;
  ord->payment_case = DYNTEST__ORDER__PAYMENT_CARD;
  ord->card = "4111";
  dyntest__common__money__init(&o->total);
  o->total.units = 1234;
  o->total.nanos = 500000000;
  o->total.currency = "USD";
  ord->total = &o->total;
  o->kid.id = "kid";
  o->kid.color = DYNTEST__COMMON__COLOR__RED;
  ord->child = &o->kid;
  ord->color = DYNTEST__COMMON__COLOR__BLUE;
  o->len = dyntest__order__get_packed_size(ord);
  o->buf = malloc(o->len);
  dyntest__order__pack(ord, o->buf);
}

static void free_order(order_fx *o) {
  for (int i = 0; i < 3; i++)
    free_item(o->items[i]);
  for (int i = 0; i < 2; i++)
    free_item(o->by_id_items[i]);
  free(o->buf);
}

static void test_dynmsg_nested_maps_oneofs(void **state) {
  fx *f = *state;
  order_fx o;
  make_order(&o);
  const gw_message *ot = msg("dyntest.Order");
  gw_msg *m = decode_ok(f, ot, o.buf, o.len);

  assert_str(get(m, "id"), "order-1");
  check_scalars(get(m, "scalars").v.msg);
  check_repeated(get(m, "rep").v.msg, &o.rep);

  /* repeated messages */
  assert_int_equal(count(m, "items"), 3);
  const gw_msg *it1 = get_i(m, "items", 1).v.msg;
  assert_ptr_equal(gw_dynmsg_type(it1), msg("dyntest.Item"));
  assert_str(get(it1, "sku"), "sku-1");
  assert_int_equal(get(it1, "qty").v.i, 2);
  assert_int_equal(count(it1, "tags"), 2);
  assert_str(get_i(it1, "tags", 0), "red");
  assert_str(get_i(it1, "tags", 1), "");
  const gw_msg *price = get(it1, "price").v.msg;
  assert_ptr_equal(gw_dynmsg_type(price), msg("dyntest.common.Money"));
  assert_int_equal(get(price, "units").v.i, 250);
  assert_str(get(price, "currency"), "EUR");
  const gw_msg *it2 = get_i(m, "items", 2).v.msg;
  assert_int_equal(get(it2, "qty").v.i, -3);
  assert_int_equal(get(get(it2, "price").v.msg, "units").v.i, -4);
  /* an absent sub-message reads as an empty one of its type */
  const gw_msg *it0 = get_i(m, "items", 0).v.msg;
  gw_value pv;
  assert_int_equal(
      gw_dynmsg_get(it0, fld(msg("dyntest.Item"), "price"), 0, &pv), 0);
  assert_non_null(pv.v.msg);
  assert_ptr_equal(gw_dynmsg_type(pv.v.msg), msg("dyntest.common.Money"));
  assert_int_equal(get(pv.v.msg, "units").v.i, 0);
  assert_false(gw_dynmsg_has(it0, fld(msg("dyntest.Item"), "price")));

  /* maps: repeated entries, key = 1, value = 2 */
  const gw_field *counts = fld(ot, "counts");
  assert_int_equal(gw_dynmsg_count(m, counts), 2);
  const gw_msg *e1 = get_i(m, "counts", 1).v.msg;
  gw_value k, v;
  gw_dynmsg_get(e1, &counts->message->fields[0], 0, &k);
  gw_dynmsg_get(e1, &counts->message->fields[1], 0, &v);
  assert_str(k, "b");
  assert_int_equal(v.v.i, -2);
  const gw_field *by_id = fld(ot, "by_id");
  const gw_msg *b0 = get_i(m, "by_id", 0).v.msg;
  gw_dynmsg_get(b0, &by_id->message->fields[0], 0, &k);
  gw_dynmsg_get(b0, &by_id->message->fields[1], 0, &v);
  assert_int_equal(k.v.i, 5);
  assert_str(get(v.v.msg, "sku"), "x");
  const gw_msg *b1 = get_i(m, "by_id", 1).v.msg;
  gw_dynmsg_get(b1, &by_id->message->fields[0], 0, &k);
  assert_int_equal(k.v.i, -1);
  assert_int_equal(count(m, "labels"), 1);

  /* the oneof: card set, the others absent */
  assert_true(gw_dynmsg_has(m, fld(ot, "card")));
  assert_str(get(m, "card"), "4111");
  assert_false(gw_dynmsg_has(m, fld(ot, "account")));
  assert_false(gw_dynmsg_has(m, fld(ot, "voucher")));
  assert_int_equal(count(m, "voucher"), 0);

  /* an imported type, a recursive one, an enum */
  const gw_msg *total = get(m, "total").v.msg;
  assert_int_equal(get(total, "units").v.i, 1234);
  assert_int_equal(get(total, "nanos").v.i, 500000000);
  const gw_msg *kid = get(m, "child").v.msg;
  assert_str(get(kid, "id"), "kid");
  assert_int_equal(get(kid, "color").v.i, DYNTEST__COMMON__COLOR__RED);
  assert_int_equal(count(kid, "child"), 0);
  assert_int_equal(get(m, "color").v.i, DYNTEST__COMMON__COLOR__BLUE);
  /* sub-messages are views into the input */
  size_t tlen;
  const uint8_t *tb = gw_dynmsg_bytes(total, &tlen);
  assert_true(tb > o.buf && tb + tlen <= o.buf + o.len);

  /* whole and field by field, protobuf-c's bytes come back */
  assert_reencodes_to(f, m, o.buf, o.len);
  size_t elen;
  const uint8_t *enc = gw_dynmsg_enc_data(reencode(f->arena, m, 1), &elen);
  Dyntest__Order *back = dyntest__order__unpack(NULL, elen, enc);
  assert_non_null(back);
  assert_string_equal(back->id, "order-1");
  assert_int_equal(back->n_items, 3);
  assert_string_equal(back->items[2]->sku, "sku-\xe2\x82\xac");
  assert_int_equal(back->items[1]->price->units, 250);
  assert_int_equal(back->n_by_id, 2);
  assert_int_equal(back->by_id[1]->key, -1);
  assert_string_equal(back->by_id[1]->value->sku, "y");
  assert_int_equal(back->payment_case, DYNTEST__ORDER__PAYMENT_CARD);
  assert_string_equal(back->card, "4111");
  assert_string_equal(back->child->id, "kid");
  assert_string_equal(back->labels[0]->value, "v");
  assert_true(back->scalars->f_sint32 == INT32_MIN);
  dyntest__order__free_unpacked(back, NULL);
  free_order(&o);
}

static void test_dynmsg_unknown_fields_kept(void **state) {
  fx *f = *state;
  /* an Item read by an older schema that only knows sku */
  Dyntest__Item *it = new_item("abc", 7, 99);
  size_t len = dyntest__item__get_packed_size(it);
  uint8_t *buf = malloc(len);
  dyntest__item__pack(it, buf);
  const gw_message *v1 = msg("dyntest.ItemV1");
  gw_msg *m = decode_ok(f, v1, buf, len);
  assert_str(get(m, "sku"), "abc");
  size_t blen;
  const uint8_t *bytes = gw_dynmsg_bytes(m, &blen);
  assert_int_equal(blen, len);
  assert_memory_equal(bytes, buf, len);

  /* forwarded whole inside an Order, the unknown fields survive */
  gw_enc *e = gw_dynmsg_enc_new(f->arena);
  gw_value v = {.type = GW_TYPE_MESSAGE, .v.msg = m};
  gw_dynmsg_enc_value(e, fld(msg("dyntest.Order"), "items"), &v);
  size_t elen;
  const uint8_t *enc = gw_dynmsg_enc_data(e, &elen);
  Dyntest__Order *back = dyntest__order__unpack(NULL, elen, enc);
  assert_non_null(back);
  assert_int_equal(back->n_items, 1);
  assert_int_equal(back->items[0]->qty, 7);
  assert_int_equal(back->items[0]->price->units, 99);
  dyntest__order__free_unpacked(back, NULL);

  /* and through gw_dynmsg_enc_raw + gw_dynmsg_enc_message */
  gw_enc *sub = gw_dynmsg_enc_new(f->arena);
  gw_dynmsg_enc_raw(sub, bytes, blen);
  e = gw_dynmsg_enc_new(f->arena);
  gw_dynmsg_enc_message(e, fld(msg("dyntest.Order"), "items"), sub);
  enc = gw_dynmsg_enc_data(e, &elen);
  back = dyntest__order__unpack(NULL, elen, enc);
  assert_non_null(back);
  assert_int_equal(back->items[0]->price->units, 99);
  dyntest__order__free_unpacked(back, NULL);

  /* unknown fields of every wire type inside a sub-message are skipped */
  bb in = {.n = 0};
  bb item = {.n = 0};
  bb_str(&item, 1, "s");
  bb_tag(&item, 50, 0);
  bb_varint(&item, UINT64_MAX);
  bb_tag(&item, 51, 1);
  bb_raw(&item, "12345678", 8);
  bb_tag(&item, 52, 5);
  bb_raw(&item, "1234", 4);
  bb_str(&item, 53, "\xff\xfe"); /* not checked: its type is unknown */
  bb_len(&in, 4, item.b, item.n);
  gw_msg *o = decode_ok(f, msg("dyntest.Order"), in.b, in.n);
  const gw_msg *im = get_i(o, "items", 0).v.msg;
  assert_str(get(im, "sku"), "s");
  bytes = gw_dynmsg_bytes(im, &blen);
  assert_int_equal(blen, item.n);
  assert_memory_equal(bytes, item.b, item.n);
  free_item(it);
  free(buf);
}

static void test_dynmsg_last_wins_and_merge(void **state) {
  fx *f = *state;
  const gw_message *ot = msg("dyntest.Order");
  bb in = {.n = 0};
  bb_str(&in, 1, "first");
  bb_tag(&in, 14, 0);
  bb_varint(&in, 1);
  bb_str(&in, 1, "second");
  bb_tag(&in, 14, 0);
  bb_varint(&in, 3);
  /* total twice: merged as protobuf does (units from the first, nanos and
   * currency from the second, which also overrides currency) */
  bb money1 = {.n = 0}, money2 = {.n = 0};
  bb_tag(&money1, 1, 0);
  bb_varint(&money1, 5);
  bb_str(&money1, 3, "EUR");
  bb_tag(&money2, 2, 0);
  bb_varint(&money2, 7);
  bb_str(&money2, 3, "USD");
  bb_len(&in, 12, money1.b, money1.n);
  bb_str(&in, 7, "card-a");
  bb_len(&in, 12, money2.b, money2.n);
  gw_msg *m = decode_ok(f, ot, in.b, in.n);
  assert_str(get(m, "id"), "second");
  assert_int_equal(count(m, "id"), 1);
  assert_int_equal(get(m, "color").v.i, 3);
  assert_int_equal(count(m, "total"), 1);
  const gw_msg *total = get(m, "total").v.msg;
  assert_int_equal(get(total, "units").v.i, 5);
  assert_int_equal(get(total, "nanos").v.i, 7);
  assert_str(get(total, "currency"), "USD");
  assert_true(gw_dynmsg_has(m, fld(ot, "card")));
  /* the whole message forwarded is still the original bytes */
  size_t blen;
  gw_dynmsg_bytes(m, &blen);
  assert_int_equal(blen, in.n);
}

static void test_dynmsg_packed_and_unpacked_mixed(void **state) {
  fx *f = *state;
  const gw_message *rt = msg("dyntest.Repeated");
  bb in = {.n = 0};
  uint8_t run[] = {0x01, 0x02};
  bb_len(&in, 5, run, 2); /* r_int32 packed: 1, 2 */
  bb_tag(&in, 5, 0);      /* r_int32 unpacked: 3 */
  bb_varint(&in, 3);
  bb_len(&in, 5, NULL, 0); /* an empty run */
  uint8_t run2[] = {0x04};
  bb_len(&in, 5, run2, 1);
  bb_tag(&in, 20, 0); /* u_int32 (declared unpacked) sent packed too */
  bb_varint(&in, 9);
  uint8_t run3[] = {0x0a, 0x0b};
  bb_len(&in, 20, run3, 2);
  uint8_t fx32[] = {1, 0, 0, 0, 2, 0, 0, 0};
  bb_len(&in, 7, fx32, 8); /* r_fixed32 packed */
  gw_msg *m = decode_ok(f, rt, in.b, in.n);
  assert_int_equal(count(m, "r_int32"), 4);
  for (int i = 0; i < 4; i++)
    assert_int_equal(get_i(m, "r_int32", (size_t)i).v.i, i + 1);
  assert_int_equal(count(m, "u_int32"), 3);
  assert_int_equal(get_i(m, "u_int32", 2).v.i, 11);
  assert_int_equal(count(m, "r_fixed32"), 2);
  assert_int_equal(get_i(m, "r_fixed32", 1).v.u, 2);

  /* re-encoded in the target's own style */
  gw_enc *e = gw_dynmsg_enc_new(f->arena);
  gw_dynmsg_enc_repeated(e, fld(rt, "r_int32"), m, fld(rt, "r_int32"));
  gw_dynmsg_enc_repeated(e, fld(rt, "u_int32"), m, fld(rt, "u_int32"));
  size_t len;
  const uint8_t *d = gw_dynmsg_enc_data(e, &len);
  const uint8_t want[] = {0x2a, 4,    1,    2,    3,    4,    0xa0, 0x01,
                          0x09, 0xa0, 0x01, 0x0a, 0xa0, 0x01, 0x0b};
  assert_int_equal(len, sizeof(want));
  assert_memory_equal(d, want, len);
}

static void test_dynmsg_presence(void **state) {
  fx *f = *state;
  const gw_message *st = msg("dyntest.Scalars");
  bb in = {.n = 0};
  bb_tag(&in, 5, 0); /* f_int32 = 0 on the wire */
  bb_varint(&in, 0);
  bb_tag(&in, 1, 1); /* f_double = -0.0 */
  uint8_t negzero[] = {0, 0, 0, 0, 0, 0, 0, 0x80};
  bb_raw(&in, negzero, 8);
  bb_str(&in, 9, "");
  gw_msg *m = decode_ok(f, st, in.b, in.n);
  assert_int_equal(count(m, "f_int32"), 1);
  assert_false(gw_dynmsg_has(m, fld(st, "f_int32")));
  assert_true(gw_dynmsg_has(m, fld(st, "f_double")));
  assert_false(gw_dynmsg_has(m, fld(st, "f_string")));
  assert_false(gw_dynmsg_has(m, fld(st, "f_bool")));

  /* proto3 optional and oneof members: present even when zero */
  const gw_message *opt = msg("dyntest.opt.Opt");
  bb o = {.n = 0};
  bb_tag(&o, 1, 0);
  bb_varint(&o, 0);
  bb_tag(&o, 5, 0);
  bb_varint(&o, 0);
  gw_msg *om = decode_ok(f, opt, o.b, o.n);
  assert_true(gw_dynmsg_has(om, fld(opt, "maybe")));
  assert_false(gw_dynmsg_has(om, fld(opt, "label")));
  assert_true(gw_dynmsg_has(om, fld(opt, "b")));
  assert_false(gw_dynmsg_has(om, fld(opt, "a")));
  assert_false(gw_dynmsg_has(om, fld(opt, "plain")));

  /* proto2 optional: presence too */
  const gw_message *leg = msg("dyntest.legacy.Legacy");
  gw_msg *lm = decode_ok(f, leg, o.b, 2);
  assert_true(gw_dynmsg_has(lm, fld(leg, "plain")));
  assert_false(gw_dynmsg_has(lm, fld(leg, "opt")));

  /* an empty message: everything at its default */
  gw_msg *e = gw_dynmsg_empty(f->arena, msg("dyntest.Order"));
  assert_ptr_equal(gw_dynmsg_type(e), msg("dyntest.Order"));
  gw_value v;
  assert_int_equal(gw_dynmsg_get(e, fld(msg("dyntest.Order"), "id"), 0, &v), 0);
  assert_int_equal(v.type, GW_TYPE_STRING);
  assert_non_null(v.v.s.ptr);
  assert_int_equal(v.v.s.len, 0);
  assert_int_equal(gw_dynmsg_get(e, fld(msg("dyntest.Order"), "child"), 0, &v),
                   0);
  assert_ptr_equal(gw_dynmsg_type(v.v.msg), msg("dyntest.Order"));
  size_t len;
  assert_non_null(gw_dynmsg_bytes(e, &len));
  assert_int_equal(len, 0);
  gw_msg *z = decode_ok(f, msg("dyntest.Order"), NULL, 0);
  assert_int_equal(count(z, "items"), 0);
  /* a field of another type reads as absent */
  assert_int_equal(gw_dynmsg_count(z, fld(st, "f_int32")), 0);
  assert_int_equal(gw_dynmsg_get(z, fld(st, "f_int32"), 0, &v), 0);
}

static void test_dynmsg_sparse_numbers(void **state) {
  fx *f = *state;
  const gw_message *sp = msg("dyntest.Sparse");
  bb in = {.n = 0};
  bb_tag(&in, 536870911, 0);
  bb_varint(&in, 77);
  bb_str(&in, 1000, "mid");
  bb_tag(&in, 999, 0); /* unknown */
  bb_varint(&in, 1);
  gw_msg *m = decode_ok(f, sp, in.b, in.n);
  assert_int_equal(get(m, "c").v.i, 77);
  assert_str(get(m, "b"), "mid");
  assert_int_equal(count(m, "a"), 0);
}

static const char *decode_err(fx *f, const gw_message *type, const bb *in,
                              const gw_decode_limits *lim);

/* A big type with few fields set costs what its bytes hold, not a slot per
 * field of the type; lookups still find every field. */
static void test_dynmsg_sparse_layout(void **state) {
  fx *f = *state;
  const gw_message *ot = msg("dyntest.Order");
  static bb in;
  in.n = 0;
  uint8_t rep[] = {0xc0, 0x01, 0x01}; /* u_enum: 1 (index 20 of 21) */
  for (int i = 0; i < 2000; i++)
    bb_len(&in, 16, rep, sizeof(rep));
  bb two = {.n = 0};
  bb_tag(&two, 23, 1); /* u_double */
  bb_raw(&two, "\0\0\0\0\0\0\xf0\x3f", 8);
  bb_tag(&two, 24, 0);
  bb_varint(&two, 2);
  bb_tag(&two, 1, 1); /* r_double, packed field sent unpacked */
  bb_raw(&two, "\0\0\0\0\0\0\0\x40", 8);
  bb_len(&in, 16, two.b, two.n);
  size_t before = bt_arena_used(f->arena);
  gw_msg *m = decode_ok(f, ot, in.b, in.n);
  size_t used = bt_arena_used(f->arena) - before;
  assert_true(used < 16 * in.n);
  assert_int_equal(count(m, "reps"), 2001);
  const gw_msg *r = get_i(m, "reps", 1999).v.msg;
  assert_int_equal(count(r, "u_enum"), 1);
  assert_int_equal(get_i(r, "u_enum", 0).v.i, 1);
  for (size_t i = 0; i < 20; i++)
    assert_int_equal(gw_dynmsg_count(r, &gw_dynmsg_type(r)->fields[i]), 0);
  r = get_i(m, "reps", 2000).v.msg;
  assert_true(get_i(r, "u_double", 0).v.d == 1.0);
  assert_true(get_i(r, "r_double", 0).v.d == 2.0);
  assert_int_equal(get_i(r, "u_enum", 0).v.i, 2);
  assert_int_equal(count(r, "u_fixed32"), 0);
  assert_int_equal(count(r, "r_int32"), 0);
  gw_value v;
  assert_int_equal(gw_dynmsg_get(r, fld(gw_dynmsg_type(r), "r_sint64"), 0, &v),
                   0);
  /* field by field it comes back in declaration order, r_double packed */
  size_t len;
  const uint8_t *d = gw_dynmsg_enc_data(reencode(f->arena, m, 1), &len);
  assert_int_equal(len, in.n + 1);
  r = get_i(decode_ok(f, ot, d, len), "reps", 2000).v.msg;
  assert_true(get_i(r, "r_double", 0).v.d == 2.0);
  assert_int_equal(get_i(r, "u_enum", 0).v.i, 2);
}

/* child{X} child{X}, nested: merging copies the input once per level. */
static void double_nest(bb *out, int levels) {
  static bb tmp;
  out->n = 0;
  bb_str(out, 1, "leaf");
  for (int i = 0; i < levels; i++) {
    tmp.n = 0;
    bb_len(&tmp, 13, out->b, out->n);
    bb_len(&tmp, 13, out->b, out->n);
    memcpy(out->b, tmp.b, tmp.n);
    out->n = tmp.n;
  }
}

static void test_dynmsg_merge_bomb(void **state) {
  fx *f = *state;
  const gw_message *ot = msg("dyntest.Order");
  static bb in;
  double_nest(&in, 4);
  gw_msg *m = decode_ok(f, ot, in.b, in.n);
  for (int i = 0; i < 4; i++)
    m = (gw_msg *)get(m, "child").v.msg;
  assert_str(get(m, "id"), "leaf");
  double_nest(&in, 5);
  assert_string_equal(decode_err(f, ot, &in, NULL),
                      "field child.child.child.child.child: sent more than "
                      "once inside 4 other messages sent more than once (too "
                      "many nested merges)");
  double_nest(&in, 12);
  assert_non_null(strstr(decode_err(f, ot, &in, NULL), "too many nested"));
}

/* ---- malformed input ------------------------------------------------- */

static const char *decode_err(fx *f, const gw_message *type, const bb *in,
                              const gw_decode_limits *lim) {
  gw_msg *m = (gw_msg *)1;
  /* an exact-size copy, so ASan sees any read past the end */
  uint8_t *copy = malloc(in->n ? in->n : 1);
  memcpy(copy, in->b, in->n);
  int rv = gw_dynmsg_decode(f->arena, type, copy, in->n, lim, &m, f->err,
                            sizeof(f->err));
  free(copy);
  assert_int_equal(rv, -1);
  assert_null(m);
  return f->err;
}

static void test_dynmsg_malformed_refused(void **state) {
  fx *f = *state;
  const gw_message *st = msg("dyntest.Scalars");
  bb in;
#define BYTES(...)                                                             \
  do {                                                                         \
    const uint8_t b_[] = {__VA_ARGS__};                                        \
    in.n = 0;                                                                  \
    bb_raw(&in, b_, sizeof(b_));                                               \
  } while (0)

  BYTES(0x80);
  assert_string_equal(decode_err(f, st, &in, NULL),
                      "truncated varint in a tag");
  BYTES(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01);
  assert_string_equal(decode_err(f, st, &in, NULL),
                      "varint overflows 64 bits in a tag");
  BYTES(0x00, 0x01);
  assert_string_equal(decode_err(f, st, &in, NULL), "invalid field number 0");
  BYTES(0x80, 0x80, 0x80, 0x80, 0x10, 0x00); /* number 2^29 */
  assert_string_equal(decode_err(f, st, &in, NULL),
                      "invalid field number 536870912");
  BYTES(0x96, 0x03); /* field 50, wire type 6 */
  assert_string_equal(decode_err(f, st, &in, NULL),
                      "field 50: invalid wire type 6");
  BYTES(0x93, 0x03); /* field 50, start group */
  assert_string_equal(decode_err(f, st, &in, NULL),
                      "field 50: groups (wire types 3 and 4) are not "
                      "supported");
  BYTES(0x0c); /* field 1, end group */
  assert_string_equal(decode_err(f, st, &in, NULL),
                      "field f_double: groups (wire types 3 and 4) are not "
                      "supported");
  BYTES(0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01);
  assert_string_equal(decode_err(f, st, &in, NULL),
                      "field f_int64: varint overflows 64 bits");
  BYTES(0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02);
  assert_string_equal(decode_err(f, st, &in, NULL),
                      "field f_int64: varint overflows 64 bits");
  BYTES(0x18, 0x80);
  assert_string_equal(decode_err(f, st, &in, NULL),
                      "field f_int64: truncated varint");
  BYTES(0x09, 1, 2, 3);
  assert_string_equal(decode_err(f, st, &in, NULL),
                      "field f_double: truncated fixed64 value");
  BYTES(0x15, 1, 2);
  assert_string_equal(decode_err(f, st, &in, NULL),
                      "field f_float: truncated fixed32 value");
  BYTES(0x4a, 100, 'a', 'b');
  assert_string_equal(decode_err(f, st, &in, NULL),
                      "field f_string: length 100 past the end of the message "
                      "(2 bytes left)");
  /* a huge declared length */
  BYTES(0x4a, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01);
  assert_string_equal(decode_err(f, st, &in, NULL),
                      "field f_string: length 9223372036854775808 past the "
                      "end of the message (0 bytes left)");
  BYTES(0x4a, 0x80);
  assert_string_equal(decode_err(f, st, &in, NULL),
                      "field f_string: truncated varint in a length");
  BYTES(0xa2, 0x06, 0x05, 'a'); /* unknown field 100 */
  assert_string_equal(decode_err(f, st, &in, NULL),
                      "field 100: length 5 past the end of the message (1 "
                      "bytes left)");
  BYTES(0x1a, 0x00);
  assert_string_equal(decode_err(f, st, &in, NULL),
                      "field f_int64: wrong wire type (expected varint)");
  BYTES(0x48, 0x01);
  assert_string_equal(
      decode_err(f, st, &in, NULL),
      "field f_string: wrong wire type (expected length-delimited)");
  BYTES(0x0d, 0, 0, 0, 0);
  assert_string_equal(decode_err(f, st, &in, NULL),
                      "field f_double: wrong wire type (expected fixed64)");
  BYTES(0x11, 0, 0, 0, 0, 0, 0, 0, 0);
  assert_string_equal(decode_err(f, st, &in, NULL),
                      "field f_float: wrong wire type (expected fixed32)");
  BYTES(0x4a, 0x02, 0xc3, 0x28);
  assert_string_equal(decode_err(f, st, &in, NULL),
                      "field f_string: invalid UTF-8");
  const char *bad_utf8[] = {
      "\xc0\xaf",         "\xe0\x9f\xbf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
      "\xf5\x80\x80\x80", "\xe2\x82",     "abcdefgh\x80", "\xc3\xa9\xc3"};
  for (size_t i = 0; i < sizeof(bad_utf8) / sizeof(bad_utf8[0]); i++) {
    in.n = 0;
    bb_str(&in, 9, bad_utf8[i]);
    assert_string_equal(decode_err(f, st, &in, NULL),
                        "field f_string: invalid UTF-8");
  }
  const char *good_utf8[] = {"\xed\x9f\xbf", "\xf4\x8f\xbf\xbf",
                             "\xf0\x90\x80\x80", "abcdefghijklmnop\xc2\x80"};
  for (size_t i = 0; i < sizeof(good_utf8) / sizeof(good_utf8[0]); i++) {
    in.n = 0;
    bb_str(&in, 9, good_utf8[i]);
    assert_str(get(decode_ok(f, st, in.b, in.n), "f_string"), good_utf8[i]);
  }
  /* a singular scalar may not come packed */
  BYTES(0x2a, 0x01, 0x01);
  assert_string_equal(decode_err(f, st, &in, NULL),
                      "field f_int32: wrong wire type (expected varint)");

  const gw_message *rt = msg("dyntest.Repeated");
  BYTES(0x3a, 0x03, 1, 2, 3);
  assert_string_equal(decode_err(f, rt, &in, NULL),
                      "field r_fixed32: packed fixed32 run of 3 bytes is not a "
                      "multiple of 4");
  BYTES(0x32, 0x09, 1, 2, 3, 4, 5, 6, 7, 8, 9);
  assert_string_equal(decode_err(f, rt, &in, NULL),
                      "field r_fixed64: packed fixed64 run of 9 bytes is not a "
                      "multiple of 8");
  BYTES(0x2a, 0x02, 0x01, 0x80);
  assert_string_equal(decode_err(f, rt, &in, NULL),
                      "field r_int32: truncated varint in a packed run");
  BYTES(0x2a, 0x0b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0x01);
  assert_string_equal(decode_err(f, rt, &in, NULL),
                      "field r_int32: varint overflows 64 bits in a packed "
                      "run");
  BYTES(0x2a, 0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02);
  assert_string_equal(decode_err(f, rt, &in, NULL),
                      "field r_int32: varint overflows 64 bits in a packed "
                      "run");
  BYTES(0x2a, 0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
        0x28, 0x05);
  assert_int_equal(get_i(decode_ok(f, rt, in.b, in.n), "r_int32", 0).v.i, -1);
  BYTES(0x4a, 0x01, 'a', 0x48, 0x01);
  assert_string_equal(
      decode_err(f, rt, &in, NULL),
      "field r_string[1]: wrong wire type (expected length-delimited)");
  BYTES(0x4a, 0x01, 'a', 0x4a, 0x01, 'b', 0x4a, 0x01, 0xff);
  assert_string_equal(decode_err(f, rt, &in, NULL),
                      "field r_string[2]: invalid UTF-8");

  /* paths through sub-messages, repeated elements and map entries */
  const gw_message *ot = msg("dyntest.Order");
  bb good = {.n = 0}, bad = {.n = 0}, money = {.n = 0};
  bb_str(&good, 1, "ok");
  bb_str(&bad, 1, "\xe0\x80\x80"); /* overlong */
  in.n = 0;
  bb_len(&in, 4, good.b, good.n);
  bb_len(&in, 4, good.b, good.n);
  bb_len(&in, 4, bad.b, bad.n);
  assert_string_equal(decode_err(f, ot, &in, NULL),
                      "field items[2].sku: invalid UTF-8");
  bb_len(&money, 1, "x", 1);
  in.n = 0;
  bb_len(&in, 12, money.b, money.n);
  assert_string_equal(decode_err(f, ot, &in, NULL),
                      "field total.units: wrong wire type (expected varint)");
  bb item = {.n = 0};
  bb_len(&item, 3, money.b, money.n);
  in.n = 0;
  bb_len(&in, 4, item.b, item.n);
  assert_string_equal(
      decode_err(f, ot, &in, NULL),
      "field items[0].price.units: wrong wire type (expected varint)");
  bb entry = {.n = 0};
  bb_str(&entry, 1, "k");
  bb_str(&entry, 2, "v");
  in.n = 0;
  bb_len(&in, 5, entry.b, entry.n);
  assert_string_equal(decode_err(f, ot, &in, NULL),
                      "field counts[0].value: wrong wire type (expected "
                      "varint)");
  bb kid = {.n = 0};
  bb_tag(&kid, 60, 0);
  bb_raw(&kid, "\x80", 1);
  in.n = 0;
  bb_len(&in, 13, kid.b, kid.n);
  assert_string_equal(decode_err(f, ot, &in, NULL),
                      "field child.60: truncated varint");
  bb deep = {.n = 0};
  bb_len(&deep, 13, kid.b, kid.n);
  in.n = 0;
  bb_len(&in, 13, deep.b, deep.n);
  assert_string_equal(decode_err(f, ot, &in, NULL),
                      "field child.child.60: truncated varint");
  /* a tag error inside a sub-message names the sub-message */
  in.n = 0;
  bb_len(&in, 4, "\x80", 1);
  assert_string_equal(decode_err(f, ot, &in, NULL),
                      "field items[0]: truncated varint in a tag");

  /* proto2 strings are checked too */
  const gw_message *leg = msg("dyntest.legacy.Legacy");
  BYTES(0x22, 0x01, 0x80);
  assert_string_equal(decode_err(f, leg, &in, NULL),
                      "field name: invalid UTF-8");
#undef BYTES
}

/* A message two bytes per element on the wire (repeated empty Items) takes
 * a slot and an occurrence per element decoded: max_bytes caps it, and the
 * refusal is told apart from a malformed message (-2, not -1). */
static void test_dynmsg_decoded_memory_budget(void **state) {
  fx *f = *state;
  const gw_message *ot = msg("dyntest.Order");
  static bb in;
  in.n = 0;
  for (int i = 0; i < 10000; i++)
    bb_len(&in, 4, "", 0); /* items: an empty Item */
  gw_msg *m = NULL;
  gw_decode_limits lim = {.max_bytes = 8 * in.n};
  assert_int_equal(gw_dynmsg_decode(f->arena, ot, in.b, in.n, &lim, &m, f->err,
                                    sizeof(f->err)),
                   -2);
  assert_null(m);
  assert_string_equal(f->err,
                      "decoded message would take more than its memory limit");
  /* The same bytes within a budget that fits: decoded whole. */
  lim.max_bytes = 1000 * in.n;
  assert_int_equal(gw_dynmsg_decode(f->arena, ot, in.b, in.n, &lim, &m, f->err,
                                    sizeof(f->err)),
                   0);
  assert_int_equal(count(m, "items"), 10000);
  /* No limit: as before. */
  assert_int_equal(gw_dynmsg_decode(f->arena, ot, in.b, in.n, NULL, &m, f->err,
                                    sizeof(f->err)),
                   0);
  /* A malformed message is still -1 under a budget. */
  in.b[in.n++] = 0x22;
  assert_int_equal(gw_dynmsg_decode(f->arena, ot, in.b, in.n, &lim, &m, f->err,
                                    sizeof(f->err)),
                   -1);
}

/* n Orders nested through child around an empty one. */
static void nest(bb *out, size_t n) {
  static bb tmp;
  out->n = 0;
  for (size_t i = 0; i < n; i++) {
    tmp.n = 0;
    bb_len(&tmp, 13, out->b, out->n);
    memcpy(out->b, tmp.b, tmp.n);
    out->n = tmp.n;
  }
}

static void test_dynmsg_depth_bomb(void **state) {
  fx *f = *state;
  const gw_message *ot = msg("dyntest.Order");
  static bb in;
  nest(&in, 64);
  gw_msg *m = decode_ok(f, ot, in.b, in.n);
  for (int i = 0; i < 64; i++) {
    assert_int_equal(count(m, "child"), 1);
    m = (gw_msg *)get(m, "child").v.msg;
  }
  assert_int_equal(count(m, "child"), 0);
  nest(&in, 65);
  assert_string_equal(decode_err(f, ot, &in, NULL),
                      "message nested deeper than 64");
  gw_decode_limits lim = {.max_depth = 3};
  nest(&in, 3);
  gw_msg *ok = NULL;
  assert_int_equal(gw_dynmsg_decode(f->arena, ot, in.b, in.n, &lim, &ok, f->err,
                                    sizeof(f->err)),
                   0);
  nest(&in, 4);
  assert_string_equal(decode_err(f, ot, &in, &lim),
                      "message nested deeper than 3");
  /* thousands of levels: refused quickly, the stack intact */
  nest(&in, 10000);
  assert_string_equal(decode_err(f, ot, &in, NULL),
                      "message nested deeper than 64");
  /* singular sub-messages merged from many occurrences */
  in.n = 0;
  bb kid = {.n = 0};
  bb_str(&kid, 1, "k");
  for (int i = 0; i < 1000; i++)
    bb_len(&in, 13, kid.b, kid.n);
  m = decode_ok(f, ot, in.b, in.n);
  assert_str(get(get(m, "child").v.msg, "id"), "k");
}

/* When several singular sub-messages are bad, the one whose field came
 * first in the bytes is named, after every repeated one, whether pass 2
 * reads what pass 1 recorded or (past what it can record) the bytes. */
static void test_dynmsg_singular_errors_in_order_sent(void **state) {
  fx *f = *state;
  const gw_message *ot = msg("dyntest.Order");
  bb bad_money = {.n = 0}, bad_kid = {.n = 0}, bad_item = {.n = 0};
  bb_str(&bad_money, 3, "\xff"); /* currency */
  bb_str(&bad_kid, 1, "\xfe");   /* id */
  bb_str(&bad_item, 1, "\xfd");  /* sku */
  static bb in;
  for (int pad = 0; pad <= 150; pad += 150) {
    in.n = 0;
    for (int i = 0; i < pad; i++) {
      bb_tag(&in, 14, 0);
      bb_varint(&in, 1);
    }
    size_t head = in.n;
    bb_len(&in, 13, bad_kid.b, bad_kid.n);
    bb_len(&in, 12, bad_money.b, bad_money.n);
    assert_string_equal(decode_err(f, ot, &in, NULL),
                        "field child.id: invalid UTF-8");
    in.n = head;
    bb_len(&in, 12, bad_money.b, bad_money.n);
    bb_len(&in, 13, bad_kid.b, bad_kid.n);
    bb_len(&in, 12, bad_money.b, bad_money.n);
    assert_string_equal(decode_err(f, ot, &in, NULL),
                        "field total.currency: invalid UTF-8");
    in.n = head;
    bb_len(&in, 13, bad_kid.b, bad_kid.n);
    bb_len(&in, 4, bad_item.b, bad_item.n);
    assert_string_equal(decode_err(f, ot, &in, NULL),
                        "field items[0].sku: invalid UTF-8");
  }
}

/* Around and past the number of occurrences pass 1 records (shared down
 * the nesting), a message reads the same: last one wins, elements in
 * order, packed runs expanded, a singular sub-message merged. */
static void test_dynmsg_many_occurrences(void **state) {
  fx *f = *state;
  const gw_message *ot = msg("dyntest.Order");
  static bb in, rep;
  bb money1 = {.n = 0}, money2 = {.n = 0};
  bb_tag(&money1, 1, 0);
  bb_varint(&money1, 5);
  bb_tag(&money2, 2, 0);
  bb_varint(&money2, 7);
  for (int n = 0; n <= 400; n += n < 120 ? 1 : 70) {
    rep.n = 0;
    for (int i = 0; i < n; i++) {
      char s[16];
      snprintf(s, sizeof(s), "s%d", i);
      bb_str(&rep, 9, s);
    }
    uint8_t run[] = {1, 2, 3};
    bb_len(&rep, 5, run, sizeof(run));
    for (int i = 0; i < n; i++) {
      bb_tag(&rep, 20, 0);
      bb_varint(&rep, 1000 + (uint64_t)i);
    }
    in.n = 0;
    bb_str(&in, 1, "first");
    bb_len(&in, 12, money1.b, money1.n);
    for (int i = 0; i < n; i++) {
      bb_tag(&in, 14, 0);
      bb_varint(&in, (uint64_t)i % 4);
    }
    bb_len(&in, 16, rep.b, rep.n);
    bb_len(&in, 12, money2.b, money2.n);
    bb_str(&in, 1, "last");
    gw_msg *m = decode_ok(f, ot, in.b, in.n);
    assert_str(get(m, "id"), "last");
    assert_int_equal(get(m, "color").v.i, n ? (n - 1) % 4 : 0);
    const gw_msg *total = get(m, "total").v.msg;
    assert_int_equal(get(total, "units").v.i, 5);
    assert_int_equal(get(total, "nanos").v.i, 7);
    assert_int_equal(count(m, "reps"), 1);
    const gw_msg *r = get_i(m, "reps", 0).v.msg;
    assert_int_equal(count(r, "r_string"), n);
    for (int i = 0; i < n; i++) {
      char s[16];
      snprintf(s, sizeof(s), "s%d", i);
      assert_str(get_i(r, "r_string", (size_t)i), s);
    }
    assert_int_equal(count(r, "r_int32"), 3);
    assert_int_equal(get_i(r, "r_int32", 2).v.i, 3);
    assert_int_equal(count(r, "u_int32"), n);
    for (int i = 0; i < n; i++)
      assert_int_equal(get_i(r, "u_int32", (size_t)i).v.i, 1000 + i);
    bt_arena_reset(f->arena);
  }
}

/* ASCII is checked a word at a time: a bad byte is found wherever it is,
 * and a good sequence wherever it starts. */
static void test_dynmsg_utf8_every_position(void **state) {
  fx *f = *state;
  const gw_message *st = msg("dyntest.Scalars");
  bb in;
  char s[64];
  for (size_t len = 0; len <= 40; len++) {
    memset(s, 'a', len);
    s[len] = '\0';
    in.n = 0;
    bb_str(&in, 9, s);
    assert_str(get(decode_ok(f, st, in.b, in.n), "f_string"), s);
    for (size_t at = 0; at < len; at++) {
      memset(s, 'a', len);
      s[at] = (char)0xff;
      in.n = 0;
      bb_len(&in, 9, s, len);
      assert_string_equal(decode_err(f, st, &in, NULL),
                          "field f_string: invalid UTF-8");
      s[at] = (char)0xc3; /* cut by the end when at is the last byte */
      in.n = 0;
      bb_len(&in, 9, s, len);
      if (at + 1 == len) {
        assert_string_equal(decode_err(f, st, &in, NULL),
                            "field f_string: invalid UTF-8");
        continue;
      }
      s[at + 1] = (char)0xa9;
      in.n = 0;
      bb_len(&in, 9, s, len);
      gw_value v = get(decode_ok(f, st, in.b, in.n), "f_string");
      assert_int_equal(v.v.s.len, len);
      assert_memory_equal(v.v.s.ptr, s, len);
    }
    bt_arena_reset(f->arena);
  }
}

/* Every prefix of a valid message decodes or fails cleanly. */
static void test_dynmsg_truncations(void **state) {
  fx *f = *state;
  order_fx o;
  make_order(&o);
  const gw_message *ot = msg("dyntest.Order");
  size_t ok = 0;
  for (size_t n = 0; n < o.len; n++) {
    uint8_t *copy = malloc(n ? n : 1);
    memcpy(copy, o.buf, n);
    gw_msg *m = NULL;
    if (gw_dynmsg_decode(f->arena, ot, copy, n, NULL, &m, f->err,
                         sizeof(f->err)) == 0) {
      ok++;
      reencode(f->arena, m, 1);
    } else {
      assert_true(strlen(f->err) > 0);
    }
    free(copy);
    bt_arena_reset(f->arena);
  }
  /* the cuts between top-level fields are valid messages */
  assert_true(ok >= 10);
  free_order(&o);
}

/* ---- encoding conversions -------------------------------------------- */

static void test_dynmsg_encode_conversions(void **state) {
  fx *f = *state;
  const gw_message *st = msg("dyntest.Scalars");
  gw_enc *e = gw_dynmsg_enc_new(f->arena);
  gw_value v;
#define PUT(field, member, typ, val)                                           \
  do {                                                                         \
    memset(&v, 0, sizeof(v));                                                  \
    v.type = typ;                                                              \
    v.v.member = val;                                                          \
    gw_dynmsg_enc_value(e, fld(st, field), &v);                                \
  } while (0)
  PUT("f_int64", i, GW_TYPE_INT32, -5);
  PUT("f_sint64", u, GW_TYPE_UINT32, 4000000000u);
  PUT("f_int32", i, GW_TYPE_ENUM, -7);
  PUT("f_uint32", i, GW_TYPE_INT64, -1);
  PUT("f_float", d, GW_TYPE_DOUBLE, 0.1);
  PUT("f_double", d, GW_TYPE_FLOAT, 2.5);
  PUT("f_sfixed64", i, GW_TYPE_INT32, -2);
  PUT("f_sint32", u, GW_TYPE_UINT64, UINT64_MAX);
  PUT("f_fixed32", i, GW_TYPE_SINT32, -1);
  PUT("f_enum", i, GW_TYPE_SINT64, -3);
  PUT("f_bool", b, GW_TYPE_BOOL, 1);
  PUT("f_uint64", i, GW_TYPE_SFIXED64, 42);
  PUT("f_fixed64", u, GW_TYPE_FIXED32, 0xFFFFFFFFu);
  PUT("f_sfixed32", i, GW_TYPE_INT64, 0x100000005ll); /* truncated */
  memset(&v, 0, sizeof(v));
  v.type = GW_TYPE_STRING;
  v.v.s.ptr = (const uint8_t *)"xyz";
  v.v.s.len = 3;
  gw_dynmsg_enc_value(e, fld(st, "f_bytes"), &v);
  gw_dynmsg_enc_value(e, fld(st, "f_string"), &v);
#undef PUT
  size_t len;
  const uint8_t *d = gw_dynmsg_enc_data(e, &len);
  Dyntest__Scalars *s = dyntest__scalars__unpack(NULL, len, d);
  assert_non_null(s);
  assert_int_equal(s->f_int64, -5);
  assert_int_equal(s->f_sint64, 4000000000ll);
  assert_int_equal(s->f_int32, -7);
  assert_int_equal(s->f_uint32, 4294967295u);
  assert_true(s->f_float == 0.1f);
  assert_true(s->f_double == 2.5);
  assert_int_equal(s->f_sfixed64, -2);
  assert_int_equal(s->f_sint32, -1);
  assert_int_equal(s->f_fixed32, 0xFFFFFFFFu);
  assert_int_equal(s->f_enum, -3);
  assert_int_equal(s->f_bool, 1);
  assert_int_equal(s->f_uint64, 42);
  assert_int_equal(s->f_fixed64, 0xFFFFFFFFu);
  assert_int_equal(s->f_sfixed32, 5);
  assert_int_equal(s->f_bytes.len, 3);
  assert_memory_equal(s->f_bytes.data, "xyz", 3);
  assert_string_equal(s->f_string, "xyz");
  dyntest__scalars__free_unpacked(s, NULL);
  /* and the dynamic decoder reads the same */
  gw_msg *m = decode_ok(f, st, d, len);
  assert_int_equal(get(m, "f_sint64").v.i, 4000000000ll);
  assert_int_equal(get(m, "f_uint32").v.u, 4294967295u);
  assert_true(get(m, "f_float").v.d == (double)0.1f);
}

static void test_dynmsg_encode_repeated_conversions(void **state) {
  fx *f = *state;
  const gw_message *rt = msg("dyntest.Repeated");
  bb in = {.n = 0};
  uint8_t run[] = {0x01, 0xff, 0xff, 0xff, 0xff, 0xff,
                   0xff, 0xff, 0xff, 0xff, 0x01}; /* 1, -1 */
  bb_len(&in, 5, run, sizeof(run));
  gw_msg *m = decode_ok(f, rt, in.b, in.n);
  gw_enc *e = gw_dynmsg_enc_new(f->arena);
  /* int32 into packed sint32: one record, zigzag */
  gw_dynmsg_enc_repeated(e, fld(rt, "r_sint32"), m, fld(rt, "r_int32"));
  /* int32 into unpacked sint64: a tag each */
  gw_dynmsg_enc_repeated(e, fld(rt, "u_sint64"), m, fld(rt, "r_int32"));
  /* nothing to write: nothing written */
  gw_dynmsg_enc_repeated(e, fld(rt, "r_int64"), m, fld(rt, "r_int64"));
  size_t len;
  const uint8_t *d = gw_dynmsg_enc_data(e, &len);
  const uint8_t want[] = {0x72, 0x02, 0x02, 0x01, 0xa8,
                          0x01, 0x02, 0xa8, 0x01, 0x01};
  assert_int_equal(len, sizeof(want));
  assert_memory_equal(d, want, len);

  /* a packed run longer than 127 bytes: a two-byte length slid in front */
  in.n = 0;
  for (int i = 0; i < 200; i++) {
    bb_tag(&in, 20, 0);
    bb_varint(&in, 1000 + (uint64_t)i);
  }
  m = decode_ok(f, rt, in.b, in.n);
  e = gw_dynmsg_enc_new(f->arena);
  gw_dynmsg_enc_repeated(e, fld(rt, "r_uint64"), m, fld(rt, "u_int32"));
  d = gw_dynmsg_enc_data(e, &len);
  assert_int_equal(len, 1 + 2 + 400);
  Dyntest__Repeated *r = dyntest__repeated__unpack(NULL, len, d);
  assert_non_null(r);
  assert_int_equal(r->n_r_uint64, 200);
  for (int i = 0; i < 200; i++)
    assert_int_equal(r->r_uint64[i], 1000 + i);
  dyntest__repeated__free_unpacked(r, NULL);

  /* repeated strings into repeated bytes; map into another message's map */
  in.n = 0;
  bb_str(&in, 9, "p");
  bb_str(&in, 9, "q");
  m = decode_ok(f, rt, in.b, in.n);
  e = gw_dynmsg_enc_new(f->arena);
  gw_dynmsg_enc_repeated(e, fld(rt, "r_bytes"), m, fld(rt, "r_string"));
  d = gw_dynmsg_enc_data(e, &len);
  const uint8_t want2[] = {0x52, 1, 'p', 0x52, 1, 'q'};
  assert_int_equal(len, sizeof(want2));
  assert_memory_equal(d, want2, len);

  order_fx o;
  make_order(&o);
  gw_msg *om = decode_ok(f, msg("dyntest.Order"), o.buf, o.len);
  const gw_message *other = msg("dyntest.OtherMaps");
  e = gw_dynmsg_enc_new(f->arena);
  gw_dynmsg_enc_repeated(e, fld(other, "counts"), om,
                         fld(msg("dyntest.Order"), "counts"));
  d = gw_dynmsg_enc_data(e, &len);
  Dyntest__OtherMaps *omp = dyntest__other_maps__unpack(NULL, len, d);
  assert_non_null(omp);
  assert_int_equal(omp->n_counts, 2);
  assert_string_equal(omp->counts[1]->key, "b");
  assert_int_equal(omp->counts[1]->value, -2);
  dyntest__other_maps__free_unpacked(omp, NULL);
  free_order(&o);
}

/* An encoder starts with a buffer of its own; past it, what was written
 * is kept. A packed run keeps a byte for its length, slid when it needs
 * two. */
static void test_dynmsg_encode_past_first_buffer(void **state) {
  fx *f = *state;
  const gw_message *rt = msg("dyntest.Repeated");
  gw_enc *e = gw_dynmsg_enc_new(f->arena);
  size_t len;
  assert_non_null(gw_dynmsg_enc_data(e, &len));
  assert_int_equal(len, 0);
  for (int i = 0; i < 100; i++) {
    char s[16];
    gw_value v = {.type = GW_TYPE_STRING};
    v.v.s.len = (size_t)snprintf(s, sizeof(s), "str-%d", i);
    v.v.s.ptr = (const uint8_t *)s;
    gw_dynmsg_enc_value(e, fld(rt, "r_string"), &v);
  }
  const uint8_t *d = gw_dynmsg_enc_data(e, &len);
  assert_true(len > 500);
  Dyntest__Repeated *r = dyntest__repeated__unpack(NULL, len, d);
  assert_non_null(r);
  assert_int_equal(r->n_r_string, 100);
  assert_string_equal(r->r_string[0], "str-0");
  assert_string_equal(r->r_string[99], "str-99");
  dyntest__repeated__free_unpacked(r, NULL);

  /* raw bytes bigger than the first buffer, then wrapped as a field */
  gw_enc *sub = gw_dynmsg_enc_new(f->arena);
  gw_dynmsg_enc_raw(sub, d, len);
  gw_enc *outer = gw_dynmsg_enc_new(f->arena);
  gw_dynmsg_enc_message(outer, fld(msg("dyntest.Order"), "rep"), sub);
  size_t olen;
  const uint8_t *od = gw_dynmsg_enc_data(outer, &olen);
  assert_int_equal(olen, 1 + 2 + len);
  assert_memory_equal(od + 3, d, len);
  gw_msg *om = decode_ok(f, msg("dyntest.Order"), od, olen);
  assert_int_equal(count(get(om, "rep").v.msg, "r_string"), 100);

  static bb in;
  for (size_t n = 126; n <= 129; n++) {
    in.n = 0;
    for (size_t i = 0; i < n; i++) {
      bb_tag(&in, 20, 0);
      bb_varint(&in, 1);
    }
    gw_msg *m = decode_ok(f, rt, in.b, in.n);
    e = gw_dynmsg_enc_new(f->arena);
    gw_dynmsg_enc_repeated(e, fld(rt, "r_uint64"), m, fld(rt, "u_int32"));
    d = gw_dynmsg_enc_data(e, &len);
    size_t lenlen = n < 128 ? 1 : 2;
    assert_int_equal(len, 1 + lenlen + n);
    assert_int_equal(d[0], 0x22);
    assert_int_equal(d[1], n < 128 ? n : (n & 0x7f) | 0x80);
    r = dyntest__repeated__unpack(NULL, len, d);
    assert_non_null(r);
    assert_int_equal(r->n_r_uint64, n);
    assert_int_equal(r->r_uint64[n - 1], 1);
    dyntest__repeated__free_unpacked(r, NULL);
  }
}

static void test_dynmsg_assignable(void **state) {
  const gw_message *st = msg("dyntest.Scalars");
  const gw_message *rt = msg("dyntest.Repeated");
  const gw_message *ot = msg("dyntest.Order");
  const gw_message *other = msg("dyntest.OtherMaps");
  const gw_message *money = msg("dyntest.common.Money");
  const gw_message *item = msg("dyntest.Item");
  const gw_enum *color = gw_registry_enum(reg, "dyntest.common.Color");
  char err[512];
#define OK(from, fm, fe, rep, to)                                              \
  do {                                                                         \
    err[0] = 0;                                                                \
    if (gw_dynmsg_value_assignable(from, fm, fe, rep, to, err, sizeof(err)) != \
        0)                                                                     \
      fail_msg("refused: %s", err);                                            \
  } while (0)
#define NO(from, fm, fe, rep, to, why)                                         \
  do {                                                                         \
    assert_int_equal(                                                          \
        gw_dynmsg_value_assignable(from, fm, fe, rep, to, err, sizeof(err)),   \
        -1);                                                                   \
    assert_string_equal(err, why);                                             \
  } while (0)
  /* integers of any width and sign, enums included */
  OK(GW_TYPE_INT32, NULL, NULL, 0, fld(st, "f_int64"));
  OK(GW_TYPE_INT64, NULL, NULL, 0, fld(st, "f_int32"));
  OK(GW_TYPE_UINT32, NULL, NULL, 0, fld(st, "f_sint64"));
  OK(GW_TYPE_ENUM, NULL, color, 0, fld(st, "f_int32"));
  OK(GW_TYPE_INT32, NULL, NULL, 0, fld(st, "f_enum"));
  OK(GW_TYPE_FIXED64, NULL, NULL, 0, fld(st, "f_sfixed32"));
  OK(GW_TYPE_FLOAT, NULL, NULL, 0, fld(st, "f_double"));
  OK(GW_TYPE_DOUBLE, NULL, NULL, 0, fld(st, "f_float"));
  OK(GW_TYPE_STRING, NULL, NULL, 0, fld(st, "f_bytes"));
  OK(GW_TYPE_STRING, NULL, NULL, 0, fld(st, "f_string"));
  OK(GW_TYPE_BYTES, NULL, NULL, 0, fld(st, "f_bytes"));
  OK(GW_TYPE_BOOL, NULL, NULL, 0, fld(st, "f_bool"));
  OK(GW_TYPE_MESSAGE, money, NULL, 0, fld(ot, "total"));
  OK(GW_TYPE_MESSAGE, item, NULL, 1, fld(ot, "items"));
  OK(GW_TYPE_INT32, NULL, NULL, 1, fld(rt, "r_sint64"));
  /* one value as an element of a repeated field */
  OK(GW_TYPE_STRING, NULL, NULL, 0, fld(rt, "r_string"));
  /* maps of the same key and value types, in another message */
  OK(GW_TYPE_MESSAGE, fld(ot, "counts")->message, NULL, 1,
     fld(other, "counts"));

  NO(GW_TYPE_STRING, NULL, NULL, 0, fld(st, "f_int64"),
     "string cannot be written into int64: only an integer or enum goes into "
     "an integer or enum field");
  NO(GW_TYPE_BYTES, NULL, NULL, 0, fld(st, "f_string"),
     "bytes cannot be written into string: bytes do not go into a string "
     "field (they may not be UTF-8)");
  NO(GW_TYPE_INT32, NULL, NULL, 1, fld(st, "f_int32"),
     "repeated int32 cannot be written into int32: a repeated field goes "
     "only into a repeated field");
  NO(GW_TYPE_MESSAGE, item, NULL, 0, fld(ot, "total"),
     "message dyntest.Item cannot be written into message "
     "dyntest.common.Money: a message goes only into a field of the same "
     "message type");
  NO(GW_TYPE_INT32, NULL, NULL, 0, fld(ot, "total"),
     "int32 cannot be written into message dyntest.common.Money: only a "
     "message goes into a message field");
  NO(GW_TYPE_MESSAGE, fld(ot, "counts")->message, NULL, 1, fld(other, "wide"),
     "map<string, int32> cannot be written into map<string, int64>: maps "
     "must have the same key and value types");
  NO(GW_TYPE_BOOL, NULL, NULL, 0, fld(st, "f_int32"),
     "bool cannot be written into int32: only an integer or enum goes into an "
     "integer or enum field");
  NO(GW_TYPE_INT32, NULL, NULL, 0, fld(st, "f_bool"),
     "int32 cannot be written into bool: only a bool goes into a bool field");
  NO(GW_TYPE_DOUBLE, NULL, NULL, 0, fld(st, "f_int64"),
     "double cannot be written into int64: only an integer or enum goes into "
     "an integer or enum field");
  NO(GW_TYPE_INT64, NULL, NULL, 0, fld(st, "f_double"),
     "int64 cannot be written into double: only a float or double goes into "
     "a float or double field");
  NO(GW_TYPE_ENUM, NULL, color, 0, fld(st, "f_string"),
     "enum dyntest.common.Color cannot be written into string: only a string "
     "goes into a string field");
  NO(GW_TYPE_INT32, NULL, NULL, 0, fld(st, "f_bytes"),
     "int32 cannot be written into bytes: only bytes or a string go into a "
     "bytes field");
#undef OK
#undef NO
}

int main(void) {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_dynmsg_scalars_round_trip),
      T(test_dynmsg_scalars_other_extremes),
      T(test_dynmsg_repeated_round_trip),
      T(test_dynmsg_nested_maps_oneofs),
      T(test_dynmsg_unknown_fields_kept),
      T(test_dynmsg_last_wins_and_merge),
      T(test_dynmsg_packed_and_unpacked_mixed),
      T(test_dynmsg_presence),
      T(test_dynmsg_sparse_numbers),
      T(test_dynmsg_sparse_layout),
      T(test_dynmsg_merge_bomb),
      T(test_dynmsg_malformed_refused),
      T(test_dynmsg_depth_bomb),
      T(test_dynmsg_decoded_memory_budget),
      T(test_dynmsg_singular_errors_in_order_sent),
      T(test_dynmsg_many_occurrences),
      T(test_dynmsg_utf8_every_position),
      T(test_dynmsg_truncations),
      T(test_dynmsg_encode_conversions),
      T(test_dynmsg_encode_repeated_conversions),
      T(test_dynmsg_encode_past_first_buffer),
      T(test_dynmsg_assignable),
  };
#undef T
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
