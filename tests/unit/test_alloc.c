/* Tests for alloc.c: the live-allocation counter and the out-of-memory
 * policy (abort with the caller's file:line). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <baton/alloc.h>

/* Under ASan or TSan a huge malloc would be reported by the sanitizer
 * itself; let it return NULL so the out-of-memory path of bt_malloc is what
 * runs. */
__attribute__((used, visibility("default"))) const char *
__asan_default_options(void) {
  return "allocator_may_return_null=1";
}
__attribute__((used, visibility("default"))) const char *
__tsan_default_options(void) {
  return "allocator_may_return_null=1";
}

static void test_alloc_counts_live_blocks(void **state) {
  long base = bt_alloc_live();
  void *a = bt_malloc(10);
  void *b = bt_calloc(3, 7);
  char *c = bt_strdup("abc");
  assert_int_equal(bt_alloc_live(), base + 3);
  bt_free(a);
  bt_free(b);
  bt_free(c);
  assert_int_equal(bt_alloc_live(), base);
}

static void test_alloc_free_null_is_noop(void **state) {
  long base = bt_alloc_live();
  bt_free(NULL);
  assert_int_equal(bt_alloc_live(), base);
}

static void test_alloc_zero_size_is_real_pointer(void **state) {
  long base = bt_alloc_live();
  void *a = bt_malloc(0);
  void *b = bt_calloc(0, 16);
  assert_non_null(a);
  assert_non_null(b);
  assert_int_equal(bt_alloc_live(), base + 2);
  bt_free(a);
  bt_free(b);
  assert_int_equal(bt_alloc_live(), base);
}

static void test_alloc_calloc_zeroes(void **state) {
  unsigned char *p = bt_calloc(100, 3);
  for (int i = 0; i < 300; i++)
    assert_int_equal(p[i], 0);
  bt_free(p);
}

static void test_alloc_realloc_keeps_count_and_data(void **state) {
  long base = bt_alloc_live();
  /* realloc(NULL) is an allocation */
  char *p = bt_realloc(NULL, 4);
  assert_int_equal(bt_alloc_live(), base + 1);
  memcpy(p, "abcd", 4);
  p = bt_realloc(p, 1 << 20);
  assert_memory_equal(p, "abcd", 4);
  assert_int_equal(bt_alloc_live(), base + 1);
  /* size 0 keeps a live block rather than freeing behind the counter */
  p = bt_realloc(p, 0);
  assert_non_null(p);
  assert_int_equal(bt_alloc_live(), base + 1);
  bt_free(p);
  assert_int_equal(bt_alloc_live(), base);
}

static void test_alloc_strndup_copies_and_terminates(void **state) {
  char *s = bt_strndup("hello world", 5);
  assert_string_equal(s, "hello");
  bt_free(s);
  /* embedded NUL in the source: len bytes are copied regardless */
  char *z = bt_strndup("a\0b", 3);
  assert_memory_equal(z, "a\0b\0", 4);
  bt_free(z);
}

/* Runs fn in a child with stderr on a pipe; returns its wait status and what
 * it printed. */
static int run_child(void (*fn)(void), char *err, size_t cap) {
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  fflush(NULL);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    dup2(fds[1], 2);
    close(fds[0]);
    fn();
    _exit(0);
  }
  close(fds[1]);
  size_t have = 0;
  ssize_t n;
  while (have + 1 < cap && (n = read(fds[0], err + have, cap - 1 - have)) > 0)
    have += (size_t)n;
  err[have] = '\0';
  close(fds[0]);
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  return status;
}

static void huge_malloc(void) {
  /* More than any address space: malloc must fail. */
  void *p = bt_malloc_at(SIZE_MAX - 4096, "where.c", 4242);
  bt_free(p);
}

static void huge_calloc(void) {
  /* n * size overflows; the macro passes this file's name. */
  void *p = bt_calloc(SIZE_MAX / 2, 4);
  bt_free(p);
}

static void test_alloc_oom_aborts_with_location(void **state) {
  char err[1024];
  int status = run_child(huge_malloc, err, sizeof(err));
  assert_true(WIFSIGNALED(status));
  assert_int_equal(WTERMSIG(status), SIGABRT);
  assert_non_null(strstr(err, "out of memory"));
  assert_non_null(strstr(err, "where.c:4242"));

  status = run_child(huge_calloc, err, sizeof(err));
  assert_true(WIFSIGNALED(status));
  assert_int_equal(WTERMSIG(status), SIGABRT);
  assert_non_null(strstr(err, "out of memory"));
  assert_non_null(strstr(err, "test_alloc.c:"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_alloc_counts_live_blocks),
      cmocka_unit_test(test_alloc_free_null_is_noop),
      cmocka_unit_test(test_alloc_zero_size_is_real_pointer),
      cmocka_unit_test(test_alloc_calloc_zeroes),
      cmocka_unit_test(test_alloc_realloc_keeps_count_and_data),
      cmocka_unit_test(test_alloc_strndup_copies_and_terminates),
      cmocka_unit_test(test_alloc_oom_aborts_with_location),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
