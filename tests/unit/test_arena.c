/* Tests for arena.c: alignment, block chaining, large allocations, reset and
 * the protobuf-c allocator. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include <baton/alloc.h>
#include <baton/arena.h>

static void test_arena_alignment(void **state) {
  bt_arena *a = bt_arena_new(100);
  /* odd sizes, across several blocks */
  for (size_t i = 0; i < 2000; i++) {
    size_t size = (i * 7) % 97;
    unsigned char *p = bt_arena_alloc(a, size);
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % 16, 0);
    memset(p, 0xAB, size);
  }
  bt_arena_free(a);
}

static void test_arena_allocations_do_not_overlap(void **state) {
  enum { N = 500 };
  bt_arena *a = bt_arena_new(256);
  unsigned char *ptrs[N];
  size_t sizes[N];
  for (size_t i = 0; i < N; i++) {
    sizes[i] = 1 + (i * 37) % 300;
    if (i % 50 == 0)
      sizes[i] = 20000; /* large ones interleaved */
    ptrs[i] = bt_arena_alloc(a, sizes[i]);
    memset(ptrs[i], (int)(i & 0xFF), sizes[i]);
  }
  for (size_t i = 0; i < N; i++) {
    for (size_t j = 0; j < sizes[i]; j++)
      assert_int_equal(ptrs[i][j], i & 0xFF);
  }
  bt_arena_free(a);
}

static void test_arena_zero_size_gets_distinct_pointers(void **state) {
  bt_arena *a = bt_arena_new(0);
  void *p = bt_arena_alloc(a, 0);
  void *q = bt_arena_alloc(a, 0);
  assert_non_null(p);
  assert_non_null(q);
  assert_ptr_not_equal(p, q);
  bt_arena_free(a);
}

static void test_arena_large_allocation_keeps_current_block(void **state) {
  long base = bt_alloc_live();
  bt_arena *a = bt_arena_new(1024);
  unsigned char *small1 = bt_arena_alloc(a, 16);
  unsigned char *big = bt_arena_alloc(a, 1 << 20);
  memset(big, 1, 1 << 20);
  assert_int_equal(bt_alloc_live(), base + 2); /* arena + the big block */
  /* the next small allocation still comes from the first block, right after
   * the first one */
  unsigned char *small2 = bt_arena_alloc(a, 16);
  assert_ptr_equal(small2, small1 + 16);
  assert_int_equal(bt_alloc_live(), base + 2);
  bt_arena_free(a);
  assert_int_equal(bt_alloc_live(), base);
}

static void test_arena_used_counts_bytes(void **state) {
  bt_arena *a = bt_arena_new(0);
  assert_int_equal(bt_arena_used(a), 0);
  bt_arena_alloc(a, 16);
  assert_int_equal(bt_arena_used(a), 16);
  bt_arena_alloc(a, 1);
  /* rounded up to the alignment */
  assert_int_equal(bt_arena_used(a), 32);
  bt_arena_alloc(a, 100000);
  assert_true(bt_arena_used(a) >= 100032);
  bt_arena_reset(a);
  assert_int_equal(bt_arena_used(a), 0);
  bt_arena_free(a);
}

static void test_arena_reset_frees_all_but_first_block(void **state) {
  long base = bt_alloc_live();
  bt_arena *a = bt_arena_new(512);
  unsigned char *first = bt_arena_alloc(a, 8);
  for (int i = 0; i < 100; i++)
    bt_arena_alloc(a, 200);
  bt_arena_alloc(a, 1 << 16);
  assert_true(bt_alloc_live() > base + 2);
  bt_arena_reset(a);
  assert_int_equal(bt_alloc_live(), base + 1);
  /* the first block is reused from its start */
  unsigned char *again = bt_arena_alloc(a, 8);
  assert_ptr_equal(again, first);
  /* and the arena keeps working after a reset */
  for (int i = 0; i < 100; i++)
    memset(bt_arena_alloc(a, 300), 0, 300);
  bt_arena_free(a);
  assert_int_equal(bt_alloc_live(), base);
}

static void test_arena_calloc_zeroes_reused_memory(void **state) {
  bt_arena *a = bt_arena_new(1024);
  memset(bt_arena_alloc(a, 512), 0xFF, 512);
  bt_arena_reset(a);
  unsigned char *p = bt_arena_calloc(a, 512);
  for (int i = 0; i < 512; i++)
    assert_int_equal(p[i], 0);
  bt_arena_free(a);
}

static void test_arena_memdup_and_strndup(void **state) {
  bt_arena *a = bt_arena_new(0);
  const unsigned char bytes[] = {0, 1, 2, 0xFF, 0};
  unsigned char *d = bt_arena_memdup(a, bytes, sizeof(bytes));
  assert_memory_equal(d, bytes, sizeof(bytes));
  assert_ptr_not_equal(d, bytes);
  char *s = bt_arena_strndup(a, "hello world", 5);
  assert_string_equal(s, "hello");
  char *e = bt_arena_strndup(a, "", 0);
  assert_string_equal(e, "");
  assert_non_null(bt_arena_memdup(a, NULL, 0));
  bt_arena_free(a);
}

static void test_arena_free_null(void **state) {
  bt_arena_free(NULL);
}

static void test_arena_protobuf_allocator(void **state) {
  long base = bt_alloc_live();
  bt_arena *a = bt_arena_new(0);
  ProtobufCAllocator *pa = bt_arena_protobuf_allocator(a);
  assert_non_null(pa);
  assert_ptr_equal(bt_arena_protobuf_allocator(a), pa);
  size_t before = bt_arena_used(a);
  void *p = pa->alloc(pa->allocator_data, 40);
  assert_non_null(p);
  assert_int_equal((uintptr_t)p % 16, 0);
  assert_true(bt_arena_used(a) >= before + 40);
  memset(p, 0x5A, 40);
  /* free is a no-op: the memory stays usable until the arena goes */
  pa->free(pa->allocator_data, p);
  assert_int_equal(((unsigned char *)p)[39], 0x5A);
  /* many protobuf allocations cost no heap blocks per call */
  for (int i = 0; i < 1000; i++)
    pa->alloc(pa->allocator_data, 2000);
  bt_arena_free(a);
  assert_int_equal(bt_alloc_live(), base);
}

/* A message with one bytes field, described by hand so the test needs no
 * generated code. */
typedef struct {
  ProtobufCMessage base;
  ProtobufCBinaryData data;
} test_blob;

static const ProtobufCFieldDescriptor blob_fields[] = {{
    .name = "data",
    .id = 1,
    .label = PROTOBUF_C_LABEL_NONE,
    .type = PROTOBUF_C_TYPE_BYTES,
    .offset = offsetof(test_blob, data),
}};
static const unsigned blob_by_name[] = {0};
static const ProtobufCIntRange blob_ranges[] = {{1, 0}, {0, 1}};
static const ProtobufCMessageDescriptor blob_desc = {
    .magic = PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC,
    .name = "test.Blob",
    .short_name = "Blob",
    .c_name = "test_blob",
    .package_name = "test",
    .sizeof_message = sizeof(test_blob),
    .n_fields = 1,
    .fields = blob_fields,
    .fields_sorted_by_name = blob_by_name,
    .n_field_ranges = 1,
    .field_ranges = blob_ranges,
};

static void test_arena_protobuf_unpack_uses_arena(void **state) {
  uint8_t wire[3 + 300];
  wire[0] = 0x0A; /* field 1, length-delimited */
  wire[1] = 0xAC; /* 300 as a varint */
  wire[2] = 0x02;
  memset(wire + 3, 'x', 300);
  long base = bt_alloc_live();
  bt_arena *a = bt_arena_new(0);
  size_t used = bt_arena_used(a);
  test_blob *m = (test_blob *)protobuf_c_message_unpack(
      &blob_desc, bt_arena_protobuf_allocator(a), sizeof(wire), wire);
  assert_non_null(m);
  assert_int_equal(m->data.len, 300);
  assert_int_equal(m->data.data[0], 'x');
  assert_int_equal(m->data.data[299], 'x');
  /* message and bytes came from the arena, not from bt_malloc */
  assert_true(bt_arena_used(a) >= used + sizeof(test_blob) + 300);
  assert_int_equal(bt_alloc_live(), base + 1);
  /* freeing through the arena allocator is harmless */
  protobuf_c_message_free_unpacked(&m->base, bt_arena_protobuf_allocator(a));
  bt_arena_free(a);
  assert_int_equal(bt_alloc_live(), base);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_arena_alignment),
      cmocka_unit_test(test_arena_allocations_do_not_overlap),
      cmocka_unit_test(test_arena_zero_size_gets_distinct_pointers),
      cmocka_unit_test(test_arena_large_allocation_keeps_current_block),
      cmocka_unit_test(test_arena_used_counts_bytes),
      cmocka_unit_test(test_arena_reset_frees_all_but_first_block),
      cmocka_unit_test(test_arena_calloc_zeroes_reused_memory),
      cmocka_unit_test(test_arena_memdup_and_strndup),
      cmocka_unit_test(test_arena_free_null),
      cmocka_unit_test(test_arena_protobuf_allocator),
      cmocka_unit_test(test_arena_protobuf_unpack_uses_arena),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
