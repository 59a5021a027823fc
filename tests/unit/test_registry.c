/* Tests for registry.c: types, fields and methods loaded from the descriptor
 * set of tests/unit/proto/dyn/ (names, nesting, imports, packing and
 * presence rules of proto2 and proto3, lookups), and the sets it refuses
 * (missing imports, duplicates, garbage), each with its sentence. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <baton/alloc.h>
#include "proto/registry.h"
#include "google/protobuf/descriptor.pb-c.h"

typedef struct fx {
  gw_registry *reg;
  long live;
} fx;

static int setup(void **state) {
  fx *f = calloc(1, sizeof(*f));
  f->live = bt_alloc_live();
  char err[512];
  f->reg = gw_registry_load(DYNTEST_DESCRIPTOR_SET, err, sizeof(err));
  if (!f->reg)
    fprintf(stderr, "load: %s\n", err);
  *state = f;
  return f->reg ? 0 : -1;
}

static int teardown(void **state) {
  fx *f = *state;
  gw_registry_free(f->reg);
  /* everything the registry held is given back */
  assert_int_equal(bt_alloc_live(), f->live);
  free(f);
  return 0;
}

static const gw_field *field(const gw_registry *r, const char *msg,
                             const char *name) {
  const gw_message *m = gw_registry_message(r, msg);
  assert_non_null(m);
  const gw_field *f = gw_registry_field(m, name);
  assert_non_null(f);
  return f;
}

static void test_registry_messages_and_nesting(void **state) {
  fx *f = *state;
  const gw_message *order = gw_registry_message(f->reg, "dyntest.Order");
  assert_non_null(order);
  assert_string_equal(order->full_name, "dyntest.Order");
  assert_ptr_equal(gw_registry_message(f->reg, ".dyntest.Order"), order);
  assert_null(gw_registry_message(f->reg, "dyntest.Ordr"));
  assert_null(gw_registry_message(f->reg, "Order"));
  assert_int_equal(order->n_fields, 14);
  assert_false(order->map_entry);
  /* declaration order, indexes matching */
  assert_string_equal(order->fields[0].name, "id");
  assert_string_equal(order->fields[12].name, "labels");
  for (size_t i = 0; i < order->n_fields; i++)
    assert_int_equal(order->fields[i].index, i);

  /* nested map entries are messages of their own */
  const gw_message *entry =
      gw_registry_message(f->reg, "dyntest.Order.CountsEntry");
  assert_non_null(entry);
  assert_true(entry->map_entry);
  assert_int_equal(entry->n_fields, 2);
  assert_string_equal(entry->fields[0].name, "key");
  assert_int_equal(entry->fields[0].type, GW_TYPE_STRING);
  assert_int_equal(entry->fields[1].type, GW_TYPE_INT32);
  const gw_field *counts = field(f->reg, "dyntest.Order", "counts");
  assert_true(counts->repeated);
  assert_ptr_equal(counts->message, entry);

  /* types of an imported file */
  const gw_message *money = gw_registry_message(f->reg, "dyntest.common.Money");
  assert_non_null(money);
  const gw_field *total = field(f->reg, "dyntest.Order", "total");
  assert_int_equal(total->type, GW_TYPE_MESSAGE);
  assert_ptr_equal(total->message, money);
  const gw_field *items = field(f->reg, "dyntest.Order", "items");
  assert_ptr_equal(items->message, gw_registry_message(f->reg, "dyntest.Item"));
  /* recursion resolves to the message itself */
  assert_ptr_equal(field(f->reg, "dyntest.Order", "child")->message, order);
}

static void test_registry_enums(void **state) {
  fx *f = *state;
  const gw_enum *color = gw_registry_enum(f->reg, "dyntest.common.Color");
  assert_non_null(color);
  assert_ptr_equal(gw_registry_enum(f->reg, ".dyntest.common.Color"), color);
  assert_null(gw_registry_enum(f->reg, "dyntest.common.Money"));
  assert_int_equal(color->n_values, 5);
  int32_t n = 0;
  assert_int_equal(gw_registry_enum_value(color, "BLUE", &n), 0);
  assert_int_equal(n, 3);
  assert_int_equal(gw_registry_enum_value(color, "NEGATIVE", &n), 0);
  assert_int_equal(n, -7);
  assert_int_equal(gw_registry_enum_value(color, "PURPLE", &n), -1);
  assert_string_equal(gw_registry_enum_name(color, 2), "GREEN");
  assert_string_equal(gw_registry_enum_name(color, -7), "NEGATIVE");
  assert_null(gw_registry_enum_name(color, 99));
  const gw_field *c = field(f->reg, "dyntest.Order", "color");
  assert_int_equal(c->type, GW_TYPE_ENUM);
  assert_ptr_equal(c->enum_type, color);
}

static void test_registry_field_lookups(void **state) {
  fx *f = *state;
  const gw_message *s = gw_registry_message(f->reg, "dyntest.Scalars");
  for (size_t i = 0; i < s->n_fields; i++) {
    const gw_field *fd = &s->fields[i];
    assert_ptr_equal(gw_registry_field(s, fd->name), fd);
    assert_ptr_equal(gw_registry_field_by_number(s, fd->number), fd);
  }
  assert_null(gw_registry_field(s, "f_nope"));
  assert_null(gw_registry_field(s, ""));
  assert_null(gw_registry_field_by_number(s, 0));
  assert_null(gw_registry_field_by_number(s, 17));
  assert_null(gw_registry_field_by_number(s, 536870911));
  assert_int_equal(field(f->reg, "dyntest.Scalars", "f_sint64")->type,
                   GW_TYPE_SINT64);
  assert_int_equal(field(f->reg, "dyntest.Scalars", "f_sint64")->number, 15);

  /* the table decoders read inline agrees, and ends at the last number */
  assert_non_null(s->dense_by_number);
  assert_int_equal(s->n_dense, 17);
  for (uint32_t n = 0; n < s->n_dense; n++)
    assert_ptr_equal(s->dense_by_number[n], gw_registry_field_by_number(s, n));

  /* far-apart numbers: the sorted path, no table */
  const gw_message *sp = gw_registry_message(f->reg, "dyntest.Sparse");
  assert_null(sp->dense_by_number);
  assert_string_equal(gw_registry_field_by_number(sp, 1)->name, "a");
  assert_string_equal(gw_registry_field_by_number(sp, 1000)->name, "b");
  assert_string_equal(gw_registry_field_by_number(sp, 536870911)->name, "c");
  assert_null(gw_registry_field_by_number(sp, 2));
  assert_null(gw_registry_field_by_number(sp, 999));
  assert_null(gw_registry_field_by_number(sp, 536870910));
}

static void test_registry_packed_rules(void **state) {
  fx *f = *state;
  /* proto3: packed unless [packed = false]; never strings or messages */
  assert_true(field(f->reg, "dyntest.Repeated", "r_int32")->packed);
  assert_true(field(f->reg, "dyntest.Repeated", "r_double")->packed);
  assert_true(field(f->reg, "dyntest.Repeated", "r_enum")->packed);
  assert_true(field(f->reg, "dyntest.Repeated", "r_bool")->packed);
  assert_false(field(f->reg, "dyntest.Repeated", "u_int32")->packed);
  assert_false(field(f->reg, "dyntest.Repeated", "u_enum")->packed);
  assert_false(field(f->reg, "dyntest.Repeated", "r_string")->packed);
  assert_false(field(f->reg, "dyntest.Repeated", "r_bytes")->packed);
  assert_false(field(f->reg, "dyntest.Order", "items")->packed);
  assert_false(field(f->reg, "dyntest.Scalars", "f_int32")->packed);
  /* proto2: packed only when asked */
  assert_false(field(f->reg, "dyntest.legacy.Legacy", "plain")->packed);
  assert_true(field(f->reg, "dyntest.legacy.Legacy", "packed")->packed);
}

static void test_registry_presence_and_oneofs(void **state) {
  fx *f = *state;
  const gw_field *fd;
  /* proto3 scalars have none; messages and oneof members have it */
  assert_false(field(f->reg, "dyntest.Scalars", "f_int32")->has_presence);
  assert_false(field(f->reg, "dyntest.Scalars", "f_string")->has_presence);
  assert_true(field(f->reg, "dyntest.Order", "scalars")->has_presence);
  assert_false(field(f->reg, "dyntest.Order", "items")->has_presence);
  const gw_message *order = gw_registry_message(f->reg, "dyntest.Order");
  assert_int_equal(order->n_oneofs, 1);
  assert_string_equal(order->oneof_names[0], "payment");
  fd = field(f->reg, "dyntest.Order", "card");
  assert_true(fd->has_presence);
  assert_int_equal(fd->oneof, 0);
  assert_int_equal(field(f->reg, "dyntest.Order", "voucher")->oneof, 0);
  assert_int_equal(field(f->reg, "dyntest.Order", "id")->oneof, -1);

  /* proto3 optional: presence, its synthetic oneof hidden */
  const gw_message *opt = gw_registry_message(f->reg, "dyntest.opt.Opt");
  assert_non_null(opt);
  assert_int_equal(opt->n_oneofs, 1);
  assert_string_equal(opt->oneof_names[0], "choice");
  fd = field(f->reg, "dyntest.opt.Opt", "maybe");
  assert_true(fd->has_presence);
  assert_int_equal(fd->oneof, -1);
  fd = field(f->reg, "dyntest.opt.Opt", "label");
  assert_true(fd->has_presence);
  assert_int_equal(fd->oneof, -1);
  assert_false(field(f->reg, "dyntest.opt.Opt", "plain")->has_presence);
  fd = field(f->reg, "dyntest.opt.Opt", "b");
  assert_true(fd->has_presence);
  assert_int_equal(fd->oneof, 0);

  /* proto2 optional fields have presence, repeated ones not */
  assert_true(field(f->reg, "dyntest.legacy.Legacy", "opt")->has_presence);
  assert_false(field(f->reg, "dyntest.legacy.Legacy", "names")->has_presence);
}

static int n_seen;
static void count_method(const gw_method *m, void *ud) {
  assert_non_null(m->input);
  n_seen++;
}

static void test_registry_methods(void **state) {
  fx *f = *state;
  const gw_method *m = gw_registry_method(f->reg, "dyntest.Shop/Place");
  assert_non_null(m);
  assert_ptr_equal(gw_registry_method(f->reg, "/dyntest.Shop/Place"), m);
  assert_string_equal(m->name, "dyntest.Shop/Place");
  assert_string_equal(m->path, "/dyntest.Shop/Place");
  assert_ptr_equal(m->input, gw_registry_message(f->reg, "dyntest.Order"));
  assert_ptr_equal(m->output, gw_registry_message(f->reg, "dyntest.Item"));
  assert_false(m->client_streaming);
  assert_false(m->server_streaming);
  const gw_method *w = gw_registry_method(f->reg, "dyntest.Shop/Watch");
  assert_non_null(w);
  assert_true(w->client_streaming);
  assert_true(w->server_streaming);
  assert_null(gw_registry_method(f->reg, "dyntest.Shop/Nope"));
  assert_null(gw_registry_method(f->reg, "dyntest.Shop"));
  assert_null(gw_registry_method(f->reg, "Shop/Place"));
  n_seen = 0;
  gw_registry_each_method(f->reg, count_method, NULL);
  assert_int_equal(n_seen, 2);
}

static void test_registry_type_strings(void **state) {
  fx *f = *state;
  char buf[128];
  assert_string_equal(
      gw_registry_field_type_str(field(f->reg, "dyntest.Scalars", "f_int32"),
                                 buf, sizeof(buf)),
      "int32");
  assert_string_equal(
      gw_registry_field_type_str(field(f->reg, "dyntest.Repeated", "r_string"),
                                 buf, sizeof(buf)),
      "repeated string");
  assert_string_equal(
      gw_registry_field_type_str(field(f->reg, "dyntest.Order", "total"), buf,
                                 sizeof(buf)),
      "message dyntest.common.Money");
  assert_string_equal(
      gw_registry_field_type_str(field(f->reg, "dyntest.Order", "items"), buf,
                                 sizeof(buf)),
      "repeated message dyntest.Item");
  assert_string_equal(
      gw_registry_field_type_str(field(f->reg, "dyntest.Order", "color"), buf,
                                 sizeof(buf)),
      "enum dyntest.common.Color");
  assert_string_equal(
      gw_registry_field_type_str(field(f->reg, "dyntest.Order", "counts"), buf,
                                 sizeof(buf)),
      "map<string, int32>");
  assert_string_equal(
      gw_registry_field_type_str(field(f->reg, "dyntest.Order", "by_id"), buf,
                                 sizeof(buf)),
      "map<int64, message dyntest.Item>");
  /* a small buffer is cut, never overrun */
  char small[6];
  assert_string_equal(
      gw_registry_field_type_str(field(f->reg, "dyntest.Order", "counts"),
                                 small, sizeof(small)),
      "map<s");
}

/* ---- refused sets ---------------------------------------------------- */

static uint8_t *read_set(size_t *len) {
  FILE *fp = fopen(DYNTEST_DESCRIPTOR_SET, "rb");
  assert_non_null(fp);
  uint8_t *buf = malloc(1 << 20);
  *len = fread(buf, 1, 1 << 20, fp);
  fclose(fp);
  return buf;
}

typedef Google__Protobuf__FileDescriptorSet fdset;

/* The test set decoded, for tests to edit and re-pack. */
static fdset *unpack_set(void) {
  size_t len;
  uint8_t *buf = read_set(&len);
  fdset *set = google__protobuf__file_descriptor_set__unpack(NULL, len, buf);
  free(buf);
  assert_non_null(set);
  return set;
}

static gw_registry *load_set(const fdset *set, char *err, size_t errlen) {
  size_t len = google__protobuf__file_descriptor_set__get_packed_size(set);
  uint8_t *buf = malloc(len + 1);
  google__protobuf__file_descriptor_set__pack(set, buf);
  gw_registry *r = gw_registry_from_bytes(buf, len, err, errlen);
  free(buf);
  return r;
}

static size_t file_index(const fdset *set, const char *name) {
  for (size_t i = 0; i < set->n_file; i++)
    if (strcmp(set->file[i]->name, name) == 0)
      return i;
  fail_msg("no file %s", name);
  return 0;
}

static void test_registry_missing_import_refused(void **state) {
  long live = bt_alloc_live();
  fdset *set = unpack_set();
  size_t i = file_index(set, "dyn/dyn_common.proto");
  /* as if made without --include_imports */
  Google__Protobuf__FileDescriptorProto *common = set->file[i];
  set->file[i] = set->file[set->n_file - 1];
  set->n_file--;
  char err[512];
  assert_null(load_set(set, err, sizeof(err)));
  assert_string_equal(err, "field dyntest.Scalars.f_enum refers to "
                           "dyntest.common.Color, which is not in the "
                           "descriptor set; was it made with "
                           "--include_imports?");
  set->file[set->n_file++] = common;
  google__protobuf__file_descriptor_set__free_unpacked(set, NULL);
  assert_int_equal(bt_alloc_live(), live);
}

static void test_registry_missing_method_type_refused(void **state) {
  fdset *set = unpack_set();
  Google__Protobuf__FileDescriptorProto *dyn =
      set->file[file_index(set, "dyn/dyn.proto")];
  Google__Protobuf__MethodDescriptorProto *m = dyn->service[0]->method[0];
  char *saved = m->output_type;
  m->output_type = ".dyntest.Gone";
  char err[512];
  assert_null(load_set(set, err, sizeof(err)));
  assert_string_equal(err, "method dyntest.Shop/Place: output type "
                           "'dyntest.Gone' is not in the descriptor set; was "
                           "it made with --include_imports?");
  m->output_type = saved;
  google__protobuf__file_descriptor_set__free_unpacked(set, NULL);
}

static void test_registry_duplicate_refused(void **state) {
  fdset *set = unpack_set();
  size_t i = file_index(set, "dyn/dyn_common.proto");
  Google__Protobuf__FileDescriptorProto **files =
      malloc((set->n_file + 1) * sizeof(*files));
  memcpy(files, set->file, set->n_file * sizeof(*files));
  files[set->n_file] = set->file[i];
  Google__Protobuf__FileDescriptorProto **saved = set->file;
  set->file = files;
  set->n_file++;
  char err[512];
  assert_null(load_set(set, err, sizeof(err)));
  assert_string_equal(
      err, "enum dyntest.common.Color is defined twice in the descriptor set");
  set->file = saved;
  set->n_file--;
  free(files);
  google__protobuf__file_descriptor_set__free_unpacked(set, NULL);
}

static void test_registry_bad_field_refused(void **state) {
  fdset *set = unpack_set();
  Google__Protobuf__FileDescriptorProto *dyn =
      set->file[file_index(set, "dyn/dyn.proto")];
  Google__Protobuf__DescriptorProto *sparse = NULL;
  for (size_t i = 0; i < dyn->n_message_type; i++)
    if (strcmp(dyn->message_type[i]->name, "Sparse") == 0)
      sparse = dyn->message_type[i];
  assert_non_null(sparse);
  char err[512];
  sparse->field[1]->number = 1; /* clashes with a */
  assert_null(load_set(set, err, sizeof(err)));
  assert_string_equal(err, "message dyntest.Sparse has two fields numbered 1");
  sparse->field[1]->number = 0;
  assert_null(load_set(set, err, sizeof(err)));
  assert_string_equal(err, "field dyntest.Sparse.b has invalid number 0");
  sparse->field[1]->number = 1000;
  google__protobuf__file_descriptor_set__free_unpacked(set, NULL);
}

static void test_registry_garbage_refused(void **state) {
  long live = bt_alloc_live();
  char err[512];
  const uint8_t junk[] = {0x0a, 0xff, 0xff, 0xff, 0x0f, 0x01};
  assert_null(gw_registry_from_bytes(junk, sizeof(junk), err, sizeof(err)));
  assert_string_equal(err, "not a FileDescriptorSet (make one with protoc "
                           "--include_imports --descriptor_set_out=FILE)");
  assert_null(gw_registry_from_bytes(junk, 0, err, sizeof(err)));
  assert_string_equal(err, "the descriptor set holds no files");
  assert_null(gw_registry_load("/nonexistent/dyn.pb", err, sizeof(err)));
  assert_string_equal(err, "cannot open /nonexistent/dyn.pb: No such file or "
                           "directory");
  /* every prefix of a real set is refused or loaded, never a crash */
  size_t len;
  uint8_t *buf = read_set(&len);
  for (size_t n = 0; n < len; n += 7) {
    uint8_t *exact = malloc(n ? n : 1);
    memcpy(exact, buf, n);
    gw_registry_free(gw_registry_from_bytes(exact, n, err, sizeof(err)));
    free(exact);
  }
  free(buf);
  gw_registry_free(NULL);
  assert_int_equal(bt_alloc_live(), live);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_registry_messages_and_nesting, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_registry_enums, setup, teardown),
      cmocka_unit_test_setup_teardown(test_registry_field_lookups, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_registry_packed_rules, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_registry_presence_and_oneofs, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_registry_methods, setup, teardown),
      cmocka_unit_test_setup_teardown(test_registry_type_strings, setup,
                                      teardown),
      cmocka_unit_test(test_registry_missing_import_refused),
      cmocka_unit_test(test_registry_missing_method_type_refused),
      cmocka_unit_test(test_registry_duplicate_refused),
      cmocka_unit_test(test_registry_bad_field_refused),
      cmocka_unit_test(test_registry_garbage_refused),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
