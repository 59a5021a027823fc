/* alloc.c: the one allocation module and its out-of-memory policy.
 *
 * Thin wrappers over malloc: they never return NULL (on exhaustion they print
 * the caller's location and abort, as h2o and redis do) except the bt_try_
 * pair, for sizes a peer chooses; all of them keep a count
 * of live blocks so tests can check for leaks. No header is kept in front of
 * a block: counting calls is enough for leak checks and keeps the blocks
 * plain malloc memory. */
#include <baton/alloc.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static atomic_long live_allocs;

static void oom(size_t size, const char *file, int line) {
  fprintf(stderr, "baton: out of memory allocating %zu bytes at %s:%d\n", size,
          file, line);
  abort();
}

void *bt_malloc_at(size_t size, const char *file, int line) {
  /* malloc(0) may return NULL; callers are promised a real pointer. */
  void *p = malloc(size ? size : 1);
  if (!p)
    oom(size, file, line);
  atomic_fetch_add_explicit(&live_allocs, 1, memory_order_relaxed);
  return p;
}

void *bt_calloc_at(size_t n, size_t size, const char *file, int line) {
  if (n == 0 || size == 0)
    n = size = 1;
  /* calloc checks n * size for overflow; an overflow is reported as OOM. */
  void *p = calloc(n, size);
  if (!p)
    oom(n * size, file, line);
  atomic_fetch_add_explicit(&live_allocs, 1, memory_order_relaxed);
  return p;
}

void *bt_realloc_at(void *p, size_t size, const char *file, int line) {
  /* realloc(p, 0) may free p and return NULL; keep a 1-byte block instead so
   * the pointer stays live and the count stays right. */
  void *q = realloc(p, size ? size : 1);
  if (!q)
    oom(size, file, line);
  if (!p)
    atomic_fetch_add_explicit(&live_allocs, 1, memory_order_relaxed);
  return q;
}

void *bt_try_malloc(size_t size) {
  void *p = malloc(size ? size : 1);
  if (p)
    atomic_fetch_add_explicit(&live_allocs, 1, memory_order_relaxed);
  return p;
}

void *bt_try_realloc(void *p, size_t size) {
  void *q = realloc(p, size ? size : 1);
  if (q && !p)
    atomic_fetch_add_explicit(&live_allocs, 1, memory_order_relaxed);
  return q;
}

char *bt_strndup_at(const char *s, size_t len, const char *file, int line) {
  char *p = bt_malloc_at(len + 1, file, line);
  memcpy(p, s, len);
  p[len] = '\0';
  return p;
}

void bt_free(void *p) {
  if (!p)
    return;
  atomic_fetch_sub_explicit(&live_allocs, 1, memory_order_relaxed);
  free(p);
}

long bt_alloc_live(void) {
  return atomic_load_explicit(&live_allocs, memory_order_relaxed);
}

void bt__alloc_note_cached(long delta) {
  /* A block parked in a reuse cache is not a leak: it leaves the live
   * count while cached and comes back when handed out again. */
  atomic_fetch_sub_explicit(&live_allocs, delta, memory_order_relaxed);
}
