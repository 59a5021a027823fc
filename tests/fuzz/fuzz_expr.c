/* fuzz_expr.c: the condition language (gateway/flow/expr.c).
 *
 * The input is compiled as an expression, and as a field path, against a
 * fixed scope over tests/unit/proto/expr/ (request: All, pay: Step, other:
 * All, opt: Opt). Properties: compiling never crashes and either succeeds
 * or writes "column N: ..." with N inside the input (+1 for its end); a
 * compiled expression evaluates to 0 or 1, the same each time, on empty
 * roots and on a populated message, allocating nothing; a compiled path
 * has a parent message on both. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <baton/alloc.h>
#include <baton/arena.h>

#include "proto/dynmsg.h"
#include "flow/expr.h"
#include "exprtest.pb-c.h"
#include "fuzz_check.h"
#include "proto/registry.h"

enum { N_ROOTS = 4 };

static gw_registry *reg;
static const char *const names[N_ROOTS] = {"request", "pay", "other", "opt"};
static const gw_message *types[N_ROOTS];
static const int has_code[N_ROOTS] = {0, 1, 1, 0};
static gw_expr_env env;
static bt_arena *fixed; /* the populated messages, kept for the run */
static const gw_msg *msgs[N_ROOTS];
static int codes[N_ROOTS] = {-1, 14, -1, -1};

static const gw_msg *pack_decode(const gw_message *type,
                                 const ProtobufCMessage *pm) {
  size_t len = protobuf_c_message_get_packed_size(pm);
  uint8_t *buf = bt_arena_alloc(fixed, len + 1);
  FUZZ_CHECK(protobuf_c_message_pack(pm, buf) == len);
  gw_msg *m = NULL;
  char err[256];
  FUZZ_CHECK(
      gw_dynmsg_decode(fixed, type, buf, len, NULL, &m, err, sizeof(err)) == 0);
  return m;
}

static void init(void) {
  char err[256];
  reg = gw_registry_load(EXPRTEST_DESCRIPTOR_SET, err, sizeof(err));
  if (!reg) {
    fprintf(stderr, "fuzz_expr: %s\n", err);
    abort();
  }
  types[0] = gw_registry_message(reg, "exprtest.v1.All");
  types[1] = gw_registry_message(reg, "exprtest.v1.Step");
  types[2] = types[0];
  types[3] = gw_registry_message(reg, "exprtest.v1.Opt");
  for (int i = 0; i < N_ROOTS; i++)
    FUZZ_CHECK(types[i] != NULL);
  env.n = N_ROOTS;
  env.names = names;
  env.types = types;
  env.has_code = has_code;
  fixed = bt_arena_new(0);

  Exprtest__V1__Deep deep = EXPRTEST__V1__DEEP__INIT;
  deep.v = -99;
  deep.status = EXPRTEST__V1__PAY_STATUS__DECLINED;
  Exprtest__V1__Inner inner = EXPRTEST__V1__INNER__INIT;
  char *tags[] = {"a", "b\xc3\xa9"};
  inner.name = "in";
  inner.n = 3;
  inner.deep = &deep;
  inner.n_tags = 2;
  inner.tags = tags;
  Exprtest__V1__All m = EXPRTEST__V1__ALL__INIT;
  m.f_double = 2.5;
  m.f_float = -1.5f;
  m.f_int64 = INT64_MIN;
  m.f_uint64 = UINT64_MAX;
  m.f_int32 = -7;
  m.f_fixed64 = 42;
  m.f_bool = 1;
  m.f_string = "h\xc3\xa9llo";
  m.f_enum = EXPRTEST__V1__PAY_STATUS__DECLINED;
  m.f_color = EXPRTEST__V1__COLOR__RED;
  m.inner = &inner;
  int32_t r_int32[] = {1, 2, 3};
  m.n_r_int32 = 3;
  m.r_int32 = r_int32;
  Exprtest__V1__Inner *r_inner[] = {&inner};
  m.n_r_inner = 1;
  m.r_inner = r_inner;
  Exprtest__V1__All__LabelsEntry l1 = EXPRTEST__V1__ALL__LABELS_ENTRY__INIT;
  l1.key = "k1";
  l1.value = 1;
  Exprtest__V1__All__LabelsEntry *labels[] = {&l1};
  m.n_labels = 1;
  m.labels = labels;
  m.choice_case = EXPRTEST__V1__ALL__CHOICE_C_INNER;
  m.c_inner = &inner;
  msgs[0] = pack_decode(types[0], &m.base);
  Exprtest__V1__Step s = EXPRTEST__V1__STEP__INIT;
  s.status = EXPRTEST__V1__PAY_STATUS__DECLINED;
  s.id = "p-1";
  s.amount = 1250;
  msgs[1] = pack_decode(types[1], &s.base);
  msgs[2] = NULL;
  msgs[3] = NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!reg)
    init();
  /* The config hands expressions over as C strings. */
  char *src = bt_malloc(size + 1);
  memcpy(src, data, size);
  src[size] = '\0';
  size_t len = strlen(src);

  bt_arena *arena = bt_arena_new(0);
  char err[256];
  gw_expr *e = gw_expr_compile(arena, src, &env, err, sizeof(err));
  if (!e) {
    FUZZ_CHECK(strncmp(err, "column ", 7) == 0);
    long col = strtol(err + 7, NULL, 10);
    FUZZ_CHECK(col >= 1 && (size_t)col <= len + 1);
  } else {
    const gw_msg *none[N_ROOTS] = {NULL, NULL, NULL, NULL};
    gw_expr_ctx empty = {.msgs = none, .codes = NULL};
    gw_expr_ctx full = {.msgs = msgs, .codes = codes};
    long live = bt_alloc_live();
    size_t used = bt_arena_used(arena);
    int a = gw_expr_eval(e, &empty);
    int b = gw_expr_eval(e, &full);
    FUZZ_CHECK(a == 0 || a == 1);
    FUZZ_CHECK(b == 0 || b == 1);
    FUZZ_CHECK(gw_expr_eval(e, &empty) == a);
    FUZZ_CHECK(gw_expr_eval(e, &full) == b);
    FUZZ_CHECK(gw_expr_eval(e, NULL) == a);
    FUZZ_CHECK(bt_alloc_live() == live);
    FUZZ_CHECK(bt_arena_used(arena) == used);
  }

  gw_path p;
  if (gw_expr_path_compile(arena, src, &env, &p, err, sizeof(err)) == 0) {
    FUZZ_CHECK(p.root < N_ROOTS);
    for (size_t i = 0; i + 1 < p.n; i++)
      FUZZ_CHECK(!p.fields[i]->repeated && p.fields[i]->message);
    gw_expr_ctx full = {.msgs = msgs, .codes = codes};
    const gw_msg *m = gw_expr_path_parent(&p, NULL, &env, arena);
    FUZZ_CHECK(m != NULL);
    m = gw_expr_path_parent(&p, &full, &env, arena);
    FUZZ_CHECK(m != NULL);
    if (p.n > 0)
      FUZZ_CHECK(gw_dynmsg_count(m, p.fields[p.n - 1]) <= 1 ||
                 p.fields[p.n - 1]->repeated);
  } else {
    FUZZ_CHECK(strncmp(err, "column ", 7) != 0);
  }
  bt_arena_free(arena);
  bt_free(src);
  return 0;
}
