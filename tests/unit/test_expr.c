/* test_expr.c: the condition language (gateway/flow/expr.c) over the types of
 * tests/unit/proto/expr/, loaded into a real registry from protoc's
 * descriptor set; messages are built with protoc-c's generated code, packed,
 * and decoded with gw_dynmsg_decode, as the gateway decodes a backend's answer.
 *
 * Roots in scope: request (All, no status), pay (Step), other (All, a step
 * that did not run) and opt (Opt, proto3 optionals, encoded by hand). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <baton/alloc.h>
#include <baton/arena.h>

#include "proto/dynmsg.h"
#include "flow/expr.h"
#include "proto/registry.h"
#include "exprtest.pb-c.h"

enum { R_REQUEST, R_PAY, R_OTHER, R_OPT, N_ROOTS };

static gw_registry *reg;
static const char *const names[N_ROOTS] = {"request", "pay", "other", "opt"};
static const gw_message *types[N_ROOTS];
static const int has_code[N_ROOTS] = {0, 1, 1, 0};
static gw_expr_env env;

typedef struct fixture {
  bt_arena *arena;
  const gw_msg *msgs[N_ROOTS];
  int codes[N_ROOTS];
  gw_expr_ctx ctx;
} fixture;

static int group_setup(void **state) {
  char err[256];
  reg = gw_registry_load(EXPRTEST_DESCRIPTOR_SET, err, sizeof(err));
  if (!reg) {
    fprintf(stderr, "registry: %s\n", err);
    return -1;
  }
  types[R_REQUEST] = gw_registry_message(reg, "exprtest.v1.All");
  types[R_PAY] = gw_registry_message(reg, "exprtest.v1.Step");
  types[R_OTHER] = types[R_REQUEST];
  types[R_OPT] = gw_registry_message(reg, "exprtest.v1.Opt");
  for (int i = 0; i < N_ROOTS; i++)
    if (!types[i])
      return -1;
  env.n = N_ROOTS;
  env.names = names;
  env.types = types;
  env.has_code = has_code;
  return 0;
}

static int group_teardown(void **state) {
  gw_registry_free(reg);
  return 0;
}

static const gw_msg *decode(bt_arena *a, const gw_message *type,
                            const uint8_t *data, size_t len) {
  gw_msg *m = NULL;
  char err[256];
  if (gw_dynmsg_decode(a, type, data, len, NULL, &m, err, sizeof(err)) != 0)
    fail_msg("decode %s: %s", type->full_name, err);
  return m;
}

static const gw_msg *pack_decode(bt_arena *a, const gw_message *type,
                                 const ProtobufCMessage *pm) {
  size_t len = protobuf_c_message_get_packed_size(pm);
  uint8_t *buf = bt_arena_alloc(a, len + 1);
  assert_int_equal(protobuf_c_message_pack(pm, buf), len);
  return decode(a, type, buf, len);
}

/* The request every evaluation test reads: each scalar type set to a
 * value that is not its default, nested and repeated fields filled. */
static const gw_msg *make_request(bt_arena *a, double f_double) {
  Exprtest__V1__Deep back_deep = EXPRTEST__V1__DEEP__INIT;
  (void)back_deep;
  Exprtest__V1__Inner back = EXPRTEST__V1__INNER__INIT;
  back.name = "back";
  Exprtest__V1__Deep deep = EXPRTEST__V1__DEEP__INIT;
  deep.v = 99;
  deep.status = EXPRTEST__V1__PAY_STATUS__DECLINED;
  deep.back = &back;
  Exprtest__V1__Inner inner = EXPRTEST__V1__INNER__INIT;
  char *tags[] = {"a", "b"};
  inner.name = "in";
  inner.n = 3;
  inner.deep = &deep;
  inner.n_tags = 2;
  inner.tags = tags;
  Exprtest__V1__Inner r0 = EXPRTEST__V1__INNER__INIT;
  r0.name = "r0";
  Exprtest__V1__Inner *r_inner[] = {&r0};

  Exprtest__V1__All m = EXPRTEST__V1__ALL__INIT;
  m.f_double = f_double;
  m.f_float = 1.5f;
  m.f_int64 = -9000000000LL;
  m.f_uint64 = UINT64_MAX;
  m.f_int32 = -7;
  m.f_fixed64 = 42;
  m.f_fixed32 = 7;
  m.f_bool = 1;
  m.f_string = "h\xc3\xa9llo"; /* 6 bytes, 5 code points */
  static uint8_t bytes[] = {0x00, 0xff};
  m.f_bytes.data = bytes;
  m.f_bytes.len = 2;
  m.f_uint32 = 4000000000u;
  m.f_enum = EXPRTEST__V1__PAY_STATUS__DECLINED;
  m.f_sfixed32 = -3;
  m.f_sfixed64 = -4;
  m.f_sint32 = -5;
  m.f_sint64 = -6;
  m.f_color = EXPRTEST__V1__COLOR__GREEN;
  m.inner = &inner;
  int32_t r_int32[] = {1, 2, 3};
  m.n_r_int32 = 3;
  m.r_int32 = r_int32;
  char *r_string[] = {"x", "y"};
  m.n_r_string = 2;
  m.r_string = r_string;
  Exprtest__V1__PayStatus r_enum[] = {EXPRTEST__V1__PAY_STATUS__OK,
                                      EXPRTEST__V1__PAY_STATUS__DECLINED};
  m.n_r_enum = 2;
  m.r_enum = r_enum;
  m.n_r_inner = 1;
  m.r_inner = r_inner;
  double r_double[] = {0.5, -1e300};
  m.n_r_double = 2;
  m.r_double = r_double;
  uint64_t r_uint64[] = {10, 20};
  m.n_r_uint64 = 2;
  m.r_uint64 = r_uint64;
  uint8_t one[] = {0x01};
  ProtobufCBinaryData r_bytes[] = {{1, one}};
  m.n_r_bytes = 1;
  m.r_bytes = r_bytes;
  Exprtest__V1__All__LabelsEntry l1 = EXPRTEST__V1__ALL__LABELS_ENTRY__INIT;
  Exprtest__V1__All__LabelsEntry l2 = EXPRTEST__V1__ALL__LABELS_ENTRY__INIT;
  l1.key = "k1";
  l1.value = 1;
  l2.key = "k2";
  l2.value = 2;
  Exprtest__V1__All__LabelsEntry *labels[] = {&l1, &l2};
  m.n_labels = 2;
  m.labels = labels;
  Exprtest__V1__All__ByIdEntry b7 = EXPRTEST__V1__ALL__BY_ID_ENTRY__INIT;
  b7.key = 7;
  b7.value = "seven";
  Exprtest__V1__All__ByIdEntry *by_id[] = {&b7};
  m.n_by_id = 1;
  m.by_id = by_id;
  m.choice_case = EXPRTEST__V1__ALL__CHOICE_C_TEXT;
  m.c_text = "chosen";
  return pack_decode(a, types[R_REQUEST], &m.base);
}

static const gw_msg *make_pay(bt_arena *a) {
  Exprtest__V1__Step s = EXPRTEST__V1__STEP__INIT;
  s.status = EXPRTEST__V1__PAY_STATUS__DECLINED;
  s.id = "p-1";
  s.amount = 1250;
  return pack_decode(a, types[R_PAY], &s.base);
}

/* Opt{o_int32: 0 (set, so present), plain: 5, all: {f_int32: 11}}: proto3
 * optional, which protoc-c cannot generate, written as wire bytes. */
static const gw_msg *make_opt(bt_arena *a) {
  static const uint8_t wire[] = {0x08, 0x00, 0x18, 0x05,
                                 0x22, 0x02, 0x28, 0x0B};
  return decode(a, types[R_OPT], wire, sizeof(wire));
}

static int setup(void **state) {
  fixture *f = bt_malloc(sizeof(*f));
  memset(f, 0, sizeof(*f));
  f->arena = bt_arena_new(0);
  f->msgs[R_REQUEST] = make_request(f->arena, 2.5);
  f->msgs[R_PAY] = make_pay(f->arena);
  f->msgs[R_OTHER] = NULL; /* did not run */
  f->msgs[R_OPT] = make_opt(f->arena);
  f->codes[R_REQUEST] = -1;
  f->codes[R_PAY] = 0;
  f->codes[R_OTHER] = -1;
  f->codes[R_OPT] = -1;
  f->ctx.msgs = f->msgs;
  f->ctx.codes = f->codes;
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  bt_arena_free(f->arena);
  bt_free(f);
  return 0;
}

static gw_expr *compile_ok(bt_arena *a, const gw_expr_env *e, const char *src) {
  char err[256] = "";
  gw_expr *x = gw_expr_compile(a, src, e, err, sizeof(err));
  if (!x)
    fail_msg("'%s' did not compile: %s", src, err);
  return x;
}

typedef struct eval_case {
  const char *src;
  int want;
} eval_case;

static void run_eval_cases(bt_arena *a, const gw_expr_ctx *ctx,
                           const eval_case *cases, size_t n) {
  int bad = 0;
  for (size_t i = 0; i < n; i++) {
    gw_expr *x = compile_ok(a, &env, cases[i].src);
    int got = gw_expr_eval(x, ctx);
    if (got != cases[i].want) {
      print_error("'%s': got %d, want %d\n", cases[i].src, got, cases[i].want);
      bad++;
    }
  }
  assert_int_equal(bad, 0);
}

#define RUN_EVAL(a, ctx, cases)                                                \
  run_eval_cases((a), (ctx), (cases), sizeof(cases) / sizeof((cases)[0]))

/* ---- evaluation ---------------------------------------------------------- */

static void test_expr_scalars_of_every_type(void **state) {
  fixture *f = *state;
  static const eval_case cases[] = {
      {"request.f_double == 2.5", 1},
      {"request.f_double > 2", 1},
      {"request.f_double < 2.5", 0},
      {"request.f_float == 1.5", 1},
      {"request.f_int64 == -9000000000", 1},
      {"request.f_int64 < 0", 1},
      {"request.f_uint64 == 18446744073709551615u", 1},
      {"request.f_uint64 > 0", 1},
      {"request.f_uint64 > -1", 1},
      {"request.f_uint64 == -1", 0},
      {"request.f_int32 == -7", 1},
      {"request.f_int32 >= -7 && request.f_int32 <= -7", 1},
      {"request.f_int32 > -7", 0},
      {"request.f_fixed64 == 42u", 1},
      {"request.f_fixed64 == 42", 1},
      {"request.f_fixed64 == 42.0", 1},
      {"request.f_fixed32 == 7", 1},
      {"request.f_bool", 1},
      {"request.f_bool == true", 1},
      {"request.f_bool != false", 1},
      {"!request.f_bool", 0},
      {"request.f_string == 'h\\u00e9llo'", 1},
      {"request.f_string == \"h\xc3\xa9llo\"", 1},
      {"request.f_string == 'hello'", 0},
      {"request.f_string > 'h'", 1},
      {"request.f_string < 'i'", 1},
      {"request.f_bytes == '\\x00\\xff'", 1},
      {"request.f_bytes == '\\x00'", 0},
      {"request.f_bytes > '\\x00'", 1},
      {"request.f_uint32 == 4000000000", 1},
      {"request.f_enum == 'DECLINED'", 1},
      {"request.f_enum == \"OK\"", 0},
      {"'DECLINED' == request.f_enum", 1},
      {"request.f_enum != 'OK'", 1},
      {"request.f_enum == 1", 1},
      {"request.f_enum > 'OK'", 1},
      {"request.f_sfixed32 == -3", 1},
      {"request.f_sfixed64 == -4", 1},
      {"request.f_sint32 == -5", 1},
      {"request.f_sint64 == -6", 1},
      {"request.f_color == 'GREEN'", 1},
      {"request.f_color == 2", 1},
      {"request.c_text == 'chosen'", 1},
      {"request.c_num == 0", 1},
      {"pay.status == 'DECLINED' && pay.amount > 1000", 1},
      {"pay.id == 'p-1'", 1},
      {"opt.o_int32 == 0 && opt.plain == 5 && opt.all.f_int32 == 11", 1},
  };
  RUN_EVAL(f->arena, &f->ctx, cases);
}

static void test_expr_nested_paths(void **state) {
  fixture *f = *state;
  static const eval_case cases[] = {
      {"request.inner.name == 'in'", 1},
      {"request.inner.n == 3", 1},
      {"request.inner.deep.v == 99", 1},
      {"request.inner.deep.status == 'DECLINED'", 1},
      {"request.inner.deep.back.name == 'back'", 1},
      /* Unset sub-messages read as empty ones. */
      {"request.inner.deep.back.deep.v == 0", 1},
      {"request.inner.deep.back.deep.back.name == ''", 1},
      {"request.c_inner.name == ''", 1},
      {"size(request.inner.deep.back.deep.back.tags) == 0", 1},
  };
  RUN_EVAL(f->arena, &f->ctx, cases);
}

static void test_expr_numbers_compare_by_value(void **state) {
  fixture *f = *state;
  static const eval_case cases[] = {
      /* 2^53 + 1 is not a double: a naive conversion says equal. */
      {"9007199254740993 > 9007199254740992.0", 1},
      {"9007199254740993 == 9007199254740992.0", 0},
      {"9007199254740993u > 9007199254740992.0", 1},
      {"-1 < 0u", 1},
      {"0u > -1", 1},
      {"18446744073709551615u > 9223372036854775807", 1},
      {"-9223372036854775808 < -9223372036854775807", 1},
      {"request.f_uint64 < 18446744073709551615.0", 1}, /* that is 2^64 */
      {"request.f_int64 > -1e300", 1},
      {"request.f_int64 < 1e300", 1},
      {"1 == 1.0", 1},
      {"1 < 1.5", 1},
      {"2 > 1.5", 1},
      {"-2 < -1.5", 1},
      {"-1 > -1.5", 1},
      {"1u < 1.5", 1},
      {"0u > -0.5", 1},
      {"0x10 == 16", 1},
      {"0xFFu == 255u", 1},
      {"1e3 == 1000", 1},
      {"1.5e-1 == 0.15", 1},
      {"2.5E+1 == 25", 1},
  };
  RUN_EVAL(f->arena, &f->ctx, cases);
}

static void test_expr_nan_is_unordered(void **state) {
  fixture *f = *state;
  f->msgs[R_REQUEST] = make_request(f->arena, NAN);
  static const eval_case cases[] = {
      {"request.f_double == request.f_double", 0},
      {"request.f_double != request.f_double", 1},
      {"request.f_double < 1", 0},
      {"request.f_double >= 1", 0},
      {"request.f_double <= 1.0", 0},
      {"request.f_int64 < request.f_double", 0},
      {"request.f_uint64 > request.f_double", 0},
      {"request.f_double in [1, 2.0, 3u]", 0},
  };
  RUN_EVAL(f->arena, &f->ctx, cases);
}

static void test_expr_strings_and_escapes(void **state) {
  fixture *f = *state;
  static const eval_case cases[] = {
      {"'a\\'b' == \"a'b\"", 1},
      {"\"a\\\"b\" == 'a\"b'", 1},
      {"'\\\\' == \"\\x5c\"", 1},
      {"'\\u00e9' == '\xc3\xa9'", 1},
      {"'\\u20AC' == '\xe2\x82\xac'", 1},
      {"'\\x41' == 'A'", 1},
      {"'\\n' != '\\t' && '\\r' != '\\n'", 1},
      {"'B' < 'a'", 1},
      {"'ab' < 'abc'", 1},
      {"'' < 'a'", 1},
      {"'abc' >= 'abc'", 1},
      {"'\\x00' > ''", 1},
      {"'\\xff' > 'z'", 1}, /* bytewise, unsigned */
  };
  RUN_EVAL(f->arena, &f->ctx, cases);
}

static void test_expr_in_lists(void **state) {
  fixture *f = *state;
  static const eval_case cases[] = {
      {"2 in request.r_int32", 1},
      {"4 in request.r_int32", 0},
      {"2u in request.r_int32", 1},
      {"2.0 in request.r_int32", 1},
      {"-7 in request.r_int32", 0},
      {"'y' in request.r_string", 1},
      {"'z' in request.r_string", 0},
      {"'DECLINED' in request.r_enum", 1},
      {"request.f_enum in request.r_enum", 1},
      {"pay.status in request.r_enum", 1},
      {"request.f_color in ['RED', 'GREEN']", 1},
      {"request.f_color in ['RED', 0]", 0},
      {"request.f_int32 in [1, -7, 3]", 1},
      {"request.f_int32 in [1, 2, 3,]", 0},
      {"request.f_int32 in []", 0},
      {"'in' in [request.inner.name, 'x']", 1},
      {"request.f_bool in [false, request.f_bool]", 1},
      {"0.5 in request.r_double", 1},
      {"20u in request.r_uint64", 1}, /* not packed on the wire */
      {"30 in request.r_uint64", 0},
      {"'\\x01' in request.r_bytes", 1},
      /* Maps: 'in' tests the keys. */
      {"'k2' in request.labels", 1},
      {"'k3' in request.labels", 0},
      {"7 in request.by_id", 1},
      {"8 in request.by_id", 0},
      {"'a' in request.inner.tags", 1},
      {"1 in other.r_int32", 0},
  };
  RUN_EVAL(f->arena, &f->ctx, cases);
}

static void test_expr_has_and_size(void **state) {
  fixture *f = *state;
  static const eval_case cases[] = {
      {"has(request.inner)", 1},
      {"has(request.inner.deep.back)", 1},
      {"has(request.inner.deep.back.deep)", 0},
      {"has(request.inner.deep.back.deep.back)", 0},
      {"has(request.r_int32)", 1},
      {"has(request.inner.deep.back.tags)", 0},
      {"has(request.labels)", 1},
      {"has(request.c_text)", 1},
      {"has(request.c_inner)", 0},
      {"has(request.c_num)", 0},
      {"has(opt.o_int32)", 1}, /* set to its default: still present */
      {"has(opt.o_string)", 0},
      {"has(opt.all)", 1},
      {"has(other.inner)", 0},
      {"size(request.r_int32) == 3", 1},
      {"size(request.labels) == 2", 1},
      {"size(request.r_inner) == 1", 1},
      {"size(request.inner.tags) == 2", 1},
      {"size(request.f_string) == 5", 1}, /* code points, as CEL */
      {"size(request.f_bytes) == 2", 1},
      {"size(request.r_uint64) == 2", 1},
      {"size(other.r_int32) == 0", 1},
  };
  RUN_EVAL(f->arena, &f->ctx, cases);
}

static void test_expr_code_of_steps(void **state) {
  fixture *f = *state;
  static const eval_case cases[] = {
      {"code(pay) == OK", 1},
      {"code(pay) == 0", 1},
      {"code(other) == -1", 1},
      {"code(pay) in [UNAVAILABLE, DEADLINE_EXCEEDED]", 0},
      {"UNAUTHENTICATED == 16 && CANCELLED == 1 && DATA_LOSS == 15", 1},
  };
  RUN_EVAL(f->arena, &f->ctx, cases);
  f->codes[R_PAY] = 14;
  f->codes[R_OTHER] = 4;
  static const eval_case failed[] = {
      {"code(pay) == UNAVAILABLE", 1},
      {"code(pay) in [UNAVAILABLE, DEADLINE_EXCEEDED]", 1},
      {"code(other) == DEADLINE_EXCEEDED", 1},
      {"code(pay) != OK && code(other) != OK", 1},
  };
  RUN_EVAL(f->arena, &f->ctx, failed);
}

static void test_expr_precedence(void **state) {
  fixture *f = *state;
  static const eval_case cases[] = {
      /* && binds tighter than ||. */
      {"true || false && false", 1},
      {"(true || false) && false", 0},
      {"false && false || true", 1},
      /* ! binds tighter than && and ==, as in CEL. */
      {"!false && false", 0},
      {"!(false && false)", 1},
      {"!!true", 1},
      /* Comparisons bind tighter than && and ||. */
      {"1 < 2 && 2 < 3", 1},
      {"1 > 2 || 2 > 1", 1},
      {"(1 < 2) == true", 1},
      {"-request.f_int32 == 7", 1},
      {"--7 == 7", 1},
      {"-(-7) == 7", 1},
      {"-request.f_double < 0", 1},
      {"- 1 < 0", 1},
      {"\n\trequest.f_bool\r\n&&\ttrue ", 1},
  };
  RUN_EVAL(f->arena, &f->ctx, cases);
}

static void test_expr_defaults_when_roots_are_null(void **state) {
  fixture *f = *state;
  const gw_msg *none[N_ROOTS] = {NULL, NULL, NULL, NULL};
  gw_expr_ctx ctx = {.msgs = none, .codes = NULL};
  static const eval_case cases[] = {
      {"request.f_int64 == 0", 1},
      {"request.f_uint64 == 0u", 1},
      {"request.f_double == 0.0", 1},
      {"request.f_string == ''", 1},
      {"request.f_bytes == ''", 1},
      {"!request.f_bool", 1},
      {"request.f_enum == 'OK'", 1},
      {"request.inner.deep.v == 0", 1},
      {"request.inner.deep.back.name == ''", 1},
      {"has(request.inner)", 0},
      {"has(request.r_int32)", 0},
      {"has(opt.o_int32)", 0},
      {"size(request.r_int32) == 0", 1},
      {"size(request.f_string) == 0", 1},
      {"1 in request.r_int32", 0},
      {"'k1' in request.labels", 0},
      {"code(pay) == -1", 1},
      {"code(other) == -1", 1},
  };
  RUN_EVAL(f->arena, &ctx, cases);
  /* A NULL context reads the same way. */
  RUN_EVAL(f->arena, NULL, cases);
}

/* Evaluation allocates nothing: neither heap nor arena. */
static void test_expr_eval_allocates_nothing(void **state) {
  fixture *f = *state;
  gw_expr *x = compile_ok(
      f->arena, &env,
      "request.f_enum == 'DECLINED' && 'k2' in request.labels && "
      "request.f_string in ['a', 'h\\u00e9llo'] && size(request.r_int32) == 3 "
      "&& has(request.inner.deep) && code(pay) == OK");
  long live = bt_alloc_live();
  size_t used = bt_arena_used(f->arena);
  for (int i = 0; i < 1000; i++)
    assert_int_equal(gw_expr_eval(x, &f->ctx), 1);
  assert_int_equal(bt_alloc_live(), live);
  assert_int_equal(bt_arena_used(f->arena), used);
}

/* && and || chains are flat: a long one neither recurses nor fails. */
static void test_expr_long_chains_are_flat(void **state) {
  fixture *f = *state;
  size_t terms = 100000;
  const char *term = "request.f_int32 == 1 || ";
  size_t tl = strlen(term);
  char *src = bt_malloc(terms * tl + 32);
  for (size_t i = 0; i < terms; i++)
    memcpy(src + i * tl, term, tl);
  strcpy(src + terms * tl, "pay.amount == 1250");
  gw_expr *x = compile_ok(f->arena, &env, src);
  assert_int_equal(gw_expr_eval(x, &f->ctx), 1);
  for (size_t i = 0; i < terms; i++)
    memcpy(src + i * tl, "true && true && true && ", tl);
  strcpy(src + terms * tl, "false");
  x = compile_ok(f->arena, &env, src);
  assert_int_equal(gw_expr_eval(x, &f->ctx), 0);
  bt_free(src);
}

/* ---- compile errors ------------------------------------------------------ */

typedef struct err_case {
  const char *src;
  const char *err;
} err_case;

static void run_err_cases(bt_arena *a, const gw_expr_env *e,
                          const err_case *cases, size_t n) {
  int bad = 0;
  for (size_t i = 0; i < n; i++) {
    char err[256];
    memset(err, 'X', sizeof(err));
    gw_expr *x = gw_expr_compile(a, cases[i].src, e, err, sizeof(err));
    if (x) {
      print_error("'%s' compiled; want error '%s'\n", cases[i].src,
                  cases[i].err);
      bad++;
    } else if (strcmp(err, cases[i].err) != 0) {
      print_error("'%s':\n   got '%s'\n  want '%s'\n", cases[i].src, err,
                  cases[i].err);
      bad++;
    }
  }
  assert_int_equal(bad, 0);
}

#define RUN_ERRS(a, e, cases)                                                  \
  run_err_cases((a), (e), (cases), sizeof(cases) / sizeof((cases)[0]))

static void test_expr_type_errors(void **state) {
  fixture *f = *state;
  static const err_case cases[] = {
      {"request.totl == 1",
       "column 9: unknown field 'totl' in exprtest.v1.All"},
      {"request.f_string == 1", "column 18: cannot compare string with int"},
      {"request.f_int32", "column 1: condition must be bool, got int"},
      {"(request.f_string)", "column 2: condition must be bool, got string"},
      {"size(request.r_int32)", "column 1: condition must be bool, got int"},
      {"[1, 2]", "column 1: condition must be bool, got list"},
      {"request.f_enum == 'DECLINE'",
       "column 19: 'DECLINE' is not a value of enum exprtest.v1.PayStatus "
       "(values: OK, DECLINED)"},
      {"'RED' in request.r_enum",
       "column 1: 'RED' is not a value of enum exprtest.v1.PayStatus "
       "(values: OK, DECLINED)"},
      {"request.f_color in ['RED', 'BLUE']",
       "column 28: 'BLUE' is not a value of enum exprtest.v1.Color (values: "
       "COLOR_UNSPECIFIED, RED, GREEN)"},
      {"request.f_enum == 'OK\\x00'",
       "column 19: 'OK\\x00' is not a value of enum exprtest.v1.PayStatus "
       "(values: OK, DECLINED)"},
      {"code(request) == 0",
       "column 1: code() takes a step name; 'request' has no status"},
      {"code(nope) == 0", "column 6: unknown name 'nope' (in scope: request, "
                          "pay, other, opt)"},
      {"nope == 1",
       "column 1: unknown name 'nope' (in scope: request, pay, other, opt)"},
      {"foo(1)", "column 1: unknown function 'foo' (functions: has, size, "
                 "code)"},
      {"request.f_bool < true", "column 16: '<' cannot order bool values"},
      {"request.inner == 1",
       "column 1: a message (exprtest.v1.Inner) can only be used in has()"},
      {"1 == request", "column 6: a message (exprtest.v1.All) can only be used "
                       "in has()"},
      {"request.r_int32 == 1", "column 1: a list (list(int)) can only be used "
                               "right of 'in' or in size()"},
      {"request.labels in [1]",
       "column 1: a list (map(string, int)) can only be used right of 'in' or "
       "in size()"},
      {"request.r_enum in [1]",
       "column 1: a list (list(enum exprtest.v1.PayStatus)) can only be used "
       "right of 'in' or in size()"},
      {"1 in request.f_int32",
       "column 6: right of 'in' must be a list or a repeated field, got int"},
      {"'a' in request.r_inner",
       "column 5: 'in' cannot search list(message exprtest.v1.Inner): "
       "messages do not compare"},
      {"'a' in request.r_int32", "column 5: cannot compare string with int"},
      {"1 in request.labels", "column 3: cannot compare int with string"},
      {"1 in ['a']", "column 3: cannot compare int with string"},
      {"request.f_int32 in [1, 'a']",
       "column 17: cannot compare int with string"},
      {"1 in [[1]]", "column 7: a list (list) can only be used right of 'in' "
                     "or in size()"},
      {"has(request.f_int32)",
       "column 1: has() needs a field with presence (a message, a oneof "
       "member, an optional or a repeated field); request.f_int32 is int32"},
      {"has(opt.plain)",
       "column 1: has() needs a field with presence (a message, a oneof "
       "member, an optional or a repeated field); opt.plain is int32"},
      {"has(request)", "column 1: has() takes a field path such as "
                       "request.field, not a whole message"},
      {"has(1)", "column 5: expected a field path but found '1'"},
      {"size(request.f_int32) > 0",
       "column 1: size() takes a repeated, string or bytes field; "
       "request.f_int32 is int32"},
      {"size(request.inner) > 0",
       "column 1: size() takes a repeated, string or bytes field; "
       "request.inner is message exprtest.v1.Inner"},
      {"request.r_inner.name == 'x'",
       "column 17: cannot select 'name' from request.r_inner: it is a "
       "repeated field"},
      {"request.f_int32.x == 1",
       "column 17: cannot select 'x' from request.f_int32: it is int, not a "
       "message"},
      {"!request.f_int32",
       "column 2: the operand of '!' must be bool, got int"},
      /* '!' binds tighter than '==': this is (!1) == 1. */
      {"!1 == 1", "column 2: the operand of '!' must be bool, got int"},
      {"request.f_int32 && true",
       "column 1: an operand of '&&' must be bool, got int"},
      {"true || 1", "column 9: an operand of '||' must be bool, got int"},
      {"-request.f_uint32 < 0",
       "column 1: '-' needs an int or a double, got uint"},
      {"-1u < 0", "column 1: '-' needs an int or a double, got uint"},
      {"-'a' == 1", "column 1: '-' needs an int or a double, got string"},
      {"-request.f_enum == 1", "column 1: '-' needs an int or a double, got "
                               "enum exprtest.v1.PayStatus"},
      {"request.f_enum == request.f_color",
       "column 16: cannot compare enum exprtest.v1.PayStatus with enum "
       "exprtest.v1.Color"},
      {"request.f_enum == request.f_string",
       "column 16: cannot compare enum exprtest.v1.PayStatus with string"},
      {"request.f_bool == 1", "column 16: cannot compare bool with int"},
      {"request.f_double == 'x'", "column 18: cannot compare double with "
                                  "string"},
  };
  RUN_ERRS(f->arena, &env, cases);
}

static void test_expr_syntax_errors(void **state) {
  fixture *f = *state;
  static const err_case cases[] = {
      {"", "column 1: empty expression"},
      {"   ", "column 1: empty expression"},
      {"(", "column 2: expected a value but found end of expression"},
      {"1 == ", "column 6: expected a value but found end of expression"},
      {"(true", "column 6: expected ')' but found end of expression"},
      {"true)", "column 5: unexpected ')'"},
      {"true true", "column 6: unexpected 'true'"},
      {"request.f_int32 == 1 == 2",
       "column 22: comparisons do not chain: add parentheses"},
      {"1 < 2 in [true]", "column 7: comparisons do not chain: add "
                          "parentheses"},
      {"request.f_int32 = 1", "column 17: unexpected '=' (use '==' to "
                              "compare)"},
      {"true & false", "column 6: unexpected '&' (use '&&')"},
      {"true | false", "column 6: unexpected '|' (use '||')"},
      {"1 + 2 == 3",
       "column 3: unexpected character '+' (conditions have no arithmetic)"},
      {"true ? 1 : 2",
       "column 6: unexpected character '?' (conditions have no arithmetic)"},
      {"request.f_int32 == 1 @", "column 22: unexpected character '@'"},
      {"\x01", "column 1: unexpected byte 0x01"},
      {"true && \xc3\xa9", "column 9: unexpected byte 0xc3"},
      {"'abc", "column 1: unterminated string"},
      {"'abc\\", "column 1: unterminated string"},
      {"'ab\nc' == 'x'", "column 1: unterminated string"},
      {"\"abc' == 'x'", "column 1: unterminated string"},
      {"'a\\qb' == 'x'", "column 3: unknown escape '\\q'"},
      {"'\\u12' == 'x'", "column 2: invalid escape: \\u needs 4 hex digits"},
      {"'\\xg0' == 'x'", "column 2: invalid escape: \\x needs 2 hex digits"},
      {"'\\uD800' == 'x'", "column 2: invalid escape: \\uD800 is a surrogate"},
      {"9223372036854775808 > 0",
       "column 1: integer literal out of range (int is 64-bit signed; add 'u' "
       "for uint)"},
      {"18446744073709551616u > 0", "column 1: integer literal out of range"},
      {"0x10000000000000000 > 0", "column 1: integer literal out of range"},
      {"-9223372036854775809 < 0",
       "column 1: integer literal out of range (int is 64-bit signed)"},
      {"1e999 > 0", "column 1: double literal out of range"},
      {"1 < 1e", "column 5: invalid number: expected digits in the exponent"},
      {"0x == 0", "column 1: invalid hex number: expected a digit after '0x'"},
      {"12abc == 1", "column 1: invalid number '12abc'"},
      {"1.5u == 1", "column 1: invalid number '1.5u'"},
      {"1. == 1", "column 1: invalid number '1.'"},
      {"1.2.3 == 1", "column 1: invalid number '1.2.3'"},
      {".5 == 1", "column 1: expected a value but found '.'"},
      {"request. == 1",
       "column 10: expected a field name after '.' but found '=='"},
      {"request.f_int32. == 1",
       "column 18: expected a field name after '.' but found '=='"},
      {"code(pay.status) == 0", "column 9: expected ')' but found '.'"},
      {"code() == 0", "column 6: expected a step name but found ')'"},
      {"has(request.inner", "column 18: expected ')' but found end of "
                            "expression"},
      {"OK.x == 1", "column 3: unexpected '.'"},
      {"in == 1", "column 1: expected a value but found 'in'"},
      {"1 in [1 2]", "column 9: expected ',' or ']' but found '2'"},
      {"1 in [1,,2]", "column 9: expected a value but found ','"},
      {"1 in [", "column 7: expected a value but found end of expression"},
      {"'a' 'b'", "column 5: unexpected ''b''"},
      {"truex", "column 1: unknown name 'truex' (in scope: request, pay, "
                "other, opt)"},
  };
  RUN_ERRS(f->arena, &env, cases);
}

/* The message goes where the caller said, cut to its size, never past. */
static void test_expr_error_buffer_is_bounded(void **state) {
  fixture *f = *state;
  char err[12];
  memset(err, 'X', sizeof(err));
  assert_null(gw_expr_compile(f->arena, "nope == 1", &env, err, 8));
  assert_string_equal(err, "column ");
  assert_int_equal(err[8], 'X');
  assert_null(gw_expr_compile(f->arena, "nope", &env, NULL, 0));
  assert_null(gw_expr_compile(f->arena, NULL, &env, err, sizeof(err)));
  assert_null(gw_expr_compile(f->arena, "x", NULL, err, sizeof(err)));
}

static char *repeat(const char *a, size_t n, const char *mid, const char *b) {
  size_t la = strlen(a), lm = strlen(mid), lb = strlen(b);
  char *s = bt_malloc(n * (la + lb) + lm + 1);
  char *p = s;
  for (size_t i = 0; i < n; i++, p += la)
    memcpy(p, a, la);
  memcpy(p, mid, lm);
  p += lm;
  for (size_t i = 0; i < n; i++, p += lb)
    memcpy(p, b, lb);
  *p = '\0';
  return s;
}

static void test_expr_deep_nesting_is_refused(void **state) {
  fixture *f = *state;
  char err[256];
  /* 64 levels of each kind are fine. */
  char *s = repeat("(", 64, "true", ")");
  assert_int_equal(gw_expr_eval(compile_ok(f->arena, &env, s), &f->ctx), 1);
  bt_free(s);
  s = repeat("!", 64, "true", "");
  assert_int_equal(gw_expr_eval(compile_ok(f->arena, &env, s), &f->ctx), 1);
  bt_free(s);
  s = repeat("-", 64, "1 == 1", "");
  assert_int_equal(gw_expr_eval(compile_ok(f->arena, &env, s), &f->ctx), 1);
  bt_free(s);
  /* 63 list levels below an 'in' (64 with the outer one) parse; the
   * nested lists then fail the type check, not the depth limit. */
  s = repeat("[", 63, "1", "]");
  char *in = bt_malloc(strlen(s) + 8);
  strcpy(in, "1 in [");
  strcat(in, s);
  strcat(in, "]");
  assert_null(gw_expr_compile(f->arena, in, &env, err, sizeof(err)));
  assert_string_equal(err, "column 7: a list (list) can only be used right "
                           "of 'in' or in size()");
  bt_free(in);
  bt_free(s);

  /* One more is refused, at the column of the level that is too deep. */
  s = repeat("(", 65, "true", ")");
  assert_null(gw_expr_compile(f->arena, s, &env, err, sizeof(err)));
  assert_string_equal(err, "column 65: expression nested deeper than 64 "
                           "levels");
  bt_free(s);
  s = repeat("!", 65, "true", "");
  assert_null(gw_expr_compile(f->arena, s, &env, err, sizeof(err)));
  assert_string_equal(err, "column 65: expression nested deeper than 64 "
                           "levels");
  bt_free(s);
  s = repeat("(!", 40, "true", ")");
  assert_null(gw_expr_compile(f->arena, s, &env, err, sizeof(err)));
  assert_string_equal(err, "column 65: expression nested deeper than 64 "
                           "levels");
  bt_free(s);
  s = repeat("[", 65, "1", "]");
  assert_null(gw_expr_compile(f->arena, s, &env, err, sizeof(err)));
  assert_string_equal(err, "column 65: expression nested deeper than 64 "
                           "levels");
  bt_free(s);
  /* A parser that recursed per '(' would overflow the stack here. */
  s = repeat("(", 1000000, "", "");
  assert_null(gw_expr_compile(f->arena, s, &env, err, sizeof(err)));
  assert_string_equal(err, "column 65: expression nested deeper than 64 "
                           "levels");
  bt_free(s);
}

/* Roots win over code names (a step may be called like one), and
 * has_code decides where code() is allowed. */
static void test_expr_roots_shadow_code_names(void **state) {
  fixture *f = *state;
  const char *const n2[] = {"OK", "step"};
  const gw_message *t2[] = {types[R_REQUEST], types[R_PAY]};
  const int c2[] = {1, 1};
  gw_expr_env e2 = {.n = 2, .names = n2, .types = t2, .has_code = c2};
  const gw_msg *m2[] = {f->msgs[R_REQUEST], f->msgs[R_PAY]};
  int codes[] = {5, 0};
  gw_expr_ctx ctx = {.msgs = m2, .codes = codes};
  assert_int_equal(
      gw_expr_eval(compile_ok(f->arena, &e2, "has(OK.inner)"), &ctx), 1);
  assert_int_equal(
      gw_expr_eval(compile_ok(f->arena, &e2, "code(OK) == NOT_FOUND"), &ctx),
      1);
  assert_int_equal(
      gw_expr_eval(compile_ok(f->arena, &e2, "code(step) == CANCELLED"), &ctx),
      0);
  static const err_case cases[] = {
      {"OK == 0",
       "column 1: a message (exprtest.v1.All) can only be used in has()"},
  };
  RUN_ERRS(f->arena, &e2, cases);

  /* No has_code at all: nothing has a status. */
  gw_expr_env e3 = {.n = 2, .names = n2, .types = t2, .has_code = NULL};
  static const err_case none[] = {
      {"code(step) == 0",
       "column 1: code() takes a step name; 'step' has no status"},
  };
  RUN_ERRS(f->arena, &e3, none);
  /* An empty scope. */
  gw_expr_env e4 = {0};
  static const err_case empty[] = {
      {"x == 1", "column 1: unknown name 'x' (in scope: nothing)"},
  };
  RUN_ERRS(f->arena, &e4, empty);
}

/* ---- paths --------------------------------------------------------------- */

static void test_expr_path_compile(void **state) {
  fixture *f = *state;
  char err[256];
  gw_path p;
  assert_int_equal(gw_expr_path_compile(f->arena, "request.inner.deep.v", &env,
                                        &p, err, sizeof(err)),
                   0);
  assert_int_equal(p.root, R_REQUEST);
  assert_int_equal(p.n, 3);
  assert_string_equal(p.fields[0]->name, "inner");
  assert_string_equal(p.fields[1]->name, "deep");
  assert_string_equal(p.fields[2]->name, "v");
  assert_int_equal(
      gw_expr_path_compile(f->arena, " pay ", &env, &p, err, sizeof(err)), 0);
  assert_int_equal(p.root, R_PAY);
  assert_int_equal(p.n, 0);
  /* The last field may be anything: repeated, a map, a message. */
  assert_int_equal(gw_expr_path_compile(f->arena, "request.r_inner", &env, &p,
                                        err, sizeof(err)),
                   0);
  assert_int_equal(p.n, 1);
  assert_true(p.fields[0]->repeated);
  assert_int_equal(gw_expr_path_compile(f->arena, "request.labels", &env, &p,
                                        err, sizeof(err)),
                   0);

  static const err_case cases[] = {
      {"request.totl", "unknown field 'totl' in exprtest.v1.All"},
      {"request.r_inner.name",
       "cannot select 'name' from request.r_inner: it is a repeated field"},
      {"request.f_int32.x",
       "cannot select 'x' from request.f_int32: it is int, not a message"},
      {"nope.x", "unknown name 'nope' (in scope: request, pay, other, opt)"},
      {"request.inner x", "expected the end of the path but found 'x'"},
      {"request.inner == 1", "expected the end of the path but found '=='"},
      {"", "expected a path such as request.field but found end of "
           "expression"},
      {"1", "expected a path such as request.field but found '1'"},
      {"request.", "expected a field name after '.' but found end of "
                   "expression"},
      {"request.'x", "unterminated string"},
  };
  int bad = 0;
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    memset(err, 'X', sizeof(err));
    if (gw_expr_path_compile(f->arena, cases[i].src, &env, &p, err,
                             sizeof(err)) != -1 ||
        strcmp(err, cases[i].err) != 0) {
      print_error("'%s': got '%s', want '%s'\n", cases[i].src, err,
                  cases[i].err);
      bad++;
    }
  }
  assert_int_equal(bad, 0);
}

static void test_expr_path_parent(void **state) {
  fixture *f = *state;
  char err[256];
  gw_path p;
  gw_value v;
  const gw_message *deep_t = gw_registry_message(reg, "exprtest.v1.Deep");
  const gw_message *inner_t = gw_registry_message(reg, "exprtest.v1.Inner");

  assert_int_equal(gw_expr_path_compile(f->arena, "request.inner.deep.v", &env,
                                        &p, err, sizeof(err)),
                   0);
  const gw_msg *m = gw_expr_path_parent(&p, &f->ctx, &env, f->arena);
  assert_ptr_equal(gw_dynmsg_type(m), deep_t);
  assert_int_equal(gw_dynmsg_get(m, p.fields[2], 0, &v), 1);
  assert_int_equal(v.v.i, 99);

  /* n = 0: the root itself. */
  assert_int_equal(
      gw_expr_path_compile(f->arena, "pay", &env, &p, err, sizeof(err)), 0);
  assert_ptr_equal(gw_expr_path_parent(&p, &f->ctx, &env, f->arena),
                   f->msgs[R_PAY]);

  /* A root that did not run and an unset sub-message read as empty
   * messages of their type. */
  assert_int_equal(gw_expr_path_compile(f->arena, "other.inner.deep.v", &env,
                                        &p, err, sizeof(err)),
                   0);
  m = gw_expr_path_parent(&p, &f->ctx, &env, f->arena);
  assert_non_null(m);
  assert_ptr_equal(gw_dynmsg_type(m), deep_t);
  assert_int_equal(gw_dynmsg_get(m, p.fields[2], 0, &v), 0);
  assert_int_equal(v.v.i, 0);
  assert_int_equal(
      gw_expr_path_compile(f->arena, "other", &env, &p, err, sizeof(err)), 0);
  m = gw_expr_path_parent(&p, &f->ctx, &env, f->arena);
  assert_non_null(m);
  assert_ptr_equal(gw_dynmsg_type(m), types[R_OTHER]);
  assert_int_equal(
      gw_expr_path_compile(f->arena, "request.inner.deep.back.deep.back.name",
                           &env, &p, err, sizeof(err)),
      0);
  m = gw_expr_path_parent(&p, &f->ctx, &env, f->arena);
  assert_ptr_equal(gw_dynmsg_type(m), inner_t);
  assert_int_equal(gw_dynmsg_count(m, p.fields[5]), 0);
  assert_int_equal(gw_expr_path_compile(f->arena,
                                        "request.inner.deep.back.name", &env,
                                        &p, err, sizeof(err)),
                   0);
  m = gw_expr_path_parent(&p, NULL, &env, f->arena);
  assert_ptr_equal(gw_dynmsg_type(m), inner_t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
      T(test_expr_scalars_of_every_type),
      T(test_expr_nested_paths),
      T(test_expr_numbers_compare_by_value),
      T(test_expr_nan_is_unordered),
      T(test_expr_strings_and_escapes),
      T(test_expr_in_lists),
      T(test_expr_has_and_size),
      T(test_expr_code_of_steps),
      T(test_expr_precedence),
      T(test_expr_defaults_when_roots_are_null),
      T(test_expr_eval_allocates_nothing),
      T(test_expr_long_chains_are_flat),
      T(test_expr_type_errors),
      T(test_expr_syntax_errors),
      T(test_expr_error_buffer_is_bounded),
      T(test_expr_deep_nesting_is_refused),
      T(test_expr_roots_shadow_code_names),
      T(test_expr_path_compile),
      T(test_expr_path_parent),
#undef T
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
