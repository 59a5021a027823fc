/* Tests for pool.c: sizes and alignment across the classes, reuse of freed
 * blocks, the per-thread budget, realloc, frees on another thread, and the
 * allocator handed to nghttp2. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <string.h>

#include "pool.h"

static int teardown(void **state) {
  bt__pool_flush();
  return 0;
}

static void test_pool_every_size_is_usable_and_aligned(void **state) {
  /* Every size up to past the largest class, each filled to its end. */
  for (size_t size = 0; size <= BT_POOL_MAX_SIZE + 100; size++) {
    unsigned char *p = bt__pool_alloc(size);
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % 16, 0);
    memset(p, 0x5A, size);
    bt__pool_free(p);
  }
}

static void test_pool_reuses_a_freed_block_of_the_same_class(void **state) {
  bt__pool_flush();
  void *a = bt__pool_alloc(100);
  bt__pool_free(a);
  assert_true(bt__pool_cached_bytes() >= 100);
  /* 97..112 share a class: the freed block comes back. */
  void *b = bt__pool_alloc(110);
  assert_ptr_equal(a, b);
  assert_int_equal(bt__pool_cached_bytes(), 0);
  /* A different class does not take it. */
  bt__pool_free(b);
  void *c = bt__pool_alloc(300);
  assert_ptr_not_equal(c, b);
  bt__pool_free(c);
}

static void test_pool_blocks_in_use_do_not_overlap(void **state) {
  enum { N = 2000 };
  static unsigned char *ptrs[N];
  static size_t sizes[N];
  for (int round = 0; round < 2; round++) { /* the second from the lists */
    for (size_t i = 0; i < N; i++) {
      sizes[i] = 1 + (i * 131) % 5000;
      ptrs[i] = bt__pool_alloc(sizes[i]);
      memset(ptrs[i], (int)(i & 0xFF), sizes[i]);
    }
    for (size_t i = 0; i < N; i++) {
      for (size_t j = 0; j < sizes[i]; j++)
        if (ptrs[i][j] != (unsigned char)(i & 0xFF))
          fail_msg("block %zu byte %zu overwritten", i, j);
      bt__pool_free(ptrs[i]);
    }
  }
}

static void test_pool_keeps_at_most_its_budget(void **state) {
  bt__pool_flush();
  size_t n = BT_POOL_THREAD_BUDGET / 4096 + 100;
  void **blocks = calloc(n, sizeof(*blocks));
  for (size_t i = 0; i < n; i++)
    blocks[i] = bt__pool_alloc(4096);
  for (size_t i = 0; i < n; i++)
    bt__pool_free(blocks[i]);
  assert_true(bt__pool_cached_bytes() <= BT_POOL_THREAD_BUDGET);
  assert_true(bt__pool_cached_bytes() >= BT_POOL_THREAD_BUDGET - 4096);
  free(blocks);
  bt__pool_flush();
  assert_int_equal(bt__pool_cached_bytes(), 0);
}

static void test_pool_large_blocks_are_not_kept(void **state) {
  bt__pool_flush();
  void *p = bt__pool_alloc(BT_POOL_MAX_SIZE + 1);
  memset(p, 1, BT_POOL_MAX_SIZE + 1);
  bt__pool_free(p);
  assert_int_equal(bt__pool_cached_bytes(), 0);
}

static void test_pool_realloc_keeps_the_bytes(void **state) {
  unsigned char *p = bt__pool_realloc(NULL, 10);
  for (int i = 0; i < 10; i++)
    p[i] = (unsigned char)i;
  /* Within the class: the same block. */
  assert_ptr_equal(bt__pool_realloc(p, 16), p);
  /* Growing across classes and past the largest one. */
  p = bt__pool_realloc(p, 1000);
  p = bt__pool_realloc(p, BT_POOL_MAX_SIZE * 2);
  for (int i = 0; i < 10; i++)
    assert_int_equal(p[i], i);
  p = bt__pool_realloc(p, 5); /* shrinking a large block */
  for (int i = 0; i < 5; i++)
    assert_int_equal(p[i], i);
  bt__pool_free(p);
  bt__pool_free(NULL);
}

static void test_pool_calloc_zeroes_a_reused_block(void **state) {
  unsigned char *p = bt__pool_alloc(64);
  memset(p, 0xFF, 64);
  bt__pool_free(p);
  unsigned char *q = bt__pool_calloc(8, 8);
  assert_ptr_equal(p, q);
  for (int i = 0; i < 64; i++)
    assert_int_equal(q[i], 0);
  bt__pool_free(q);
}

static void *free_all(void *arg) {
  void **blocks = arg;
  for (int i = 0; i < 100; i++)
    bt__pool_free(blocks[i]);
  /* this thread's lists hold them until it exits */
  return (void *)(uintptr_t)bt__pool_cached_bytes();
}

static void test_pool_blocks_can_be_freed_on_another_thread(void **state) {
  bt__pool_flush();
  void *blocks[100];
  for (int i = 0; i < 100; i++)
    blocks[i] = bt__pool_alloc(200);
  pthread_t t;
  void *cached;
  assert_int_equal(pthread_create(&t, NULL, free_all, blocks), 0);
  assert_int_equal(pthread_join(t, &cached), 0);
  assert_int_equal((uintptr_t)cached, 100 * 208);
  /* nothing came back to this thread */
  assert_int_equal(bt__pool_cached_bytes(), 0);
}

static void test_pool_serves_an_nghttp2_session(void **state) {
  nghttp2_session_callbacks *cbs;
  nghttp2_session_callbacks_new(&cbs);
  nghttp2_session *h2;
  assert_int_equal(
      nghttp2_session_client_new3(&h2, cbs, NULL, NULL, bt__pool_nghttp2_mem()),
      0);
  nghttp2_nv nv[] = {
      {(uint8_t *)":method", (uint8_t *)"POST", 7, 4, 0},
      {(uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0},
      {(uint8_t *)":path", (uint8_t *)"/a.B/C", 5, 6, 0},
      {(uint8_t *)":authority", (uint8_t *)"x", 10, 1, 0},
  };
  for (int i = 0; i < 50; i++)
    assert_true(nghttp2_submit_request(h2, NULL, nv, 4, NULL, NULL) > 0);
  const uint8_t *out;
  size_t total = 0;
  ssize_t n;
  while ((n = nghttp2_session_mem_send(h2, &out)) > 0)
    total += (size_t)n;
  assert_int_equal(n, 0);
  assert_true(total > 50 * 9); /* 50 HEADERS frames and the preface */
  nghttp2_session_del(h2);
  nghttp2_session_callbacks_del(cbs);
  assert_true(bt__pool_cached_bytes() > 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_pool_every_size_is_usable_and_aligned,
                                teardown),
      cmocka_unit_test_teardown(
          test_pool_reuses_a_freed_block_of_the_same_class, teardown),
      cmocka_unit_test_teardown(test_pool_blocks_in_use_do_not_overlap,
                                teardown),
      cmocka_unit_test_teardown(test_pool_keeps_at_most_its_budget, teardown),
      cmocka_unit_test_teardown(test_pool_large_blocks_are_not_kept, teardown),
      cmocka_unit_test_teardown(test_pool_realloc_keeps_the_bytes, teardown),
      cmocka_unit_test_teardown(test_pool_calloc_zeroes_a_reused_block,
                                teardown),
      cmocka_unit_test_teardown(test_pool_blocks_can_be_freed_on_another_thread,
                                teardown),
      cmocka_unit_test_teardown(test_pool_serves_an_nghttp2_session, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
