/* pool.c: per-thread free lists of small blocks (see pool.h for why).
 *
 * Size classes: multiples of 16 up to 256 bytes, then four classes per
 * doubling up to BT_POOL_MAX_SIZE (at most 25% slack). Each thread owns a
 * cache of lists, one per class, reached through a thread-local pointer
 * (no locking, no atomics); thread_cache.h frees it when the thread exits. */
#include "pool.h"

#include "thread_cache.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SMALL_CLASSES 16 /* 16, 32, ... 256 */
#define STEPS_PER_DOUBLING 4
/* 256 < size <= 8192: five doublings of four classes. */
#define N_CLASSES (SMALL_CLASSES + 5 * STEPS_PER_DOUBLING)
#define LARGE_CLASS N_CLASSES
#define POOL_MAGIC 0x504f4f4cu /* "POOL" */

/* In front of every block; 16 bytes so the payload keeps malloc's
 * alignment for any type. */
typedef struct block_header {
  uint32_t cls;
  uint32_t magic;
  size_t size; /* requested size (large blocks) or class size */
} block_header;

_Static_assert(sizeof(block_header) == 16, "payload must stay 16-aligned");

typedef struct free_block {
  struct free_block *next;
} free_block;

typedef struct pool_cache {
  free_block *head[N_CLASSES];
  size_t bytes;
} pool_cache;

static _Thread_local pool_cache *tls_cache;

static unsigned size_class(size_t size) {
  if (size <= 16 * SMALL_CLASSES)
    return size == 0 ? 0 : (unsigned)((size + 15) / 16 - 1);
  /* (2^k, 2^(k+1)] with k >= 8, split in four steps of 2^(k-2). */
  unsigned k = 63u - (unsigned)__builtin_clzll((unsigned long long)size - 1);
  size_t step = (size_t)1 << (k - 2);
  size_t j = (size - ((size_t)1 << k) + step - 1) / step; /* 1..4 */
  return SMALL_CLASSES + (k - 8) * STEPS_PER_DOUBLING + (unsigned)j - 1;
}

static size_t class_size(unsigned cls) {
  if (cls < SMALL_CLASSES)
    return (size_t)(cls + 1) * 16;
  unsigned k = 8 + (cls - SMALL_CLASSES) / STEPS_PER_DOUBLING;
  size_t j = (cls - SMALL_CLASSES) % STEPS_PER_DOUBLING + 1;
  return ((size_t)1 << k) + j * ((size_t)1 << (k - 2));
}

static void cache_free_all(pool_cache *c) {
  for (unsigned i = 0; i < N_CLASSES; i++) {
    while (c->head[i]) {
      free_block *b = c->head[i];
      c->head[i] = b->next;
      free((block_header *)b - 1);
    }
  }
  c->bytes = 0;
}

/* At thread exit (thread_cache.h); later frees on this thread find no
 * cache and go straight to free(). */
static void cache_destroy(void *p) {
  tls_cache = NULL;
  cache_free_all(p);
}

static pool_cache *thread_cache(void) {
  if (tls_cache)
    return tls_cache;
  tls_cache = bt__thread_cache_new(sizeof(pool_cache), cache_destroy);
  return tls_cache;
}

static void out_of_memory(size_t size) {
  fprintf(stderr, "baton: out of memory allocating %zu bytes (pool)\n", size);
  abort();
}

static void *block_new(unsigned cls, size_t size) {
  size_t payload = cls == LARGE_CLASS ? size : class_size(cls);
  if (payload > SIZE_MAX - sizeof(block_header))
    out_of_memory(size);
  block_header *h = malloc(sizeof(*h) + payload);
  if (!h)
    out_of_memory(size);
  h->cls = cls;
  h->magic = POOL_MAGIC;
  h->size = payload;
  return h + 1;
}

void *bt__pool_alloc(size_t size) {
  if (size > BT_POOL_MAX_SIZE)
    return block_new(LARGE_CLASS, size);
  unsigned cls = size_class(size);
  pool_cache *c = tls_cache;
  if (c && c->head[cls]) {
    free_block *b = c->head[cls];
    c->head[cls] = b->next;
    c->bytes -= class_size(cls);
    return b;
  }
  return block_new(cls, size);
}

void *bt__pool_calloc(size_t n, size_t size) {
  if (size && n > SIZE_MAX / size)
    out_of_memory(SIZE_MAX);
  void *p = bt__pool_alloc(n * size);
  memset(p, 0, n * size);
  return p;
}

static block_header *header_of(void *p) {
  block_header *h = (block_header *)p - 1;
  if (h->magic != POOL_MAGIC || h->cls > LARGE_CLASS) {
    /* Not ours: a caller bug that would corrupt the heap; stop here. */
    fprintf(stderr, "baton: bt__pool_free of a block the pool did not make\n");
    abort();
  }
  return h;
}

void bt__pool_free(void *p) {
  if (!p)
    return;
  block_header *h = header_of(p);
  pool_cache *c = h->cls == LARGE_CLASS ? NULL : thread_cache();
  if (!c || c->bytes + h->size > BT_POOL_THREAD_BUDGET) {
    h->magic = 0;
    free(h);
    return;
  }
  free_block *b = p;
  b->next = c->head[h->cls];
  c->head[h->cls] = b;
  c->bytes += h->size;
}

void *bt__pool_realloc(void *p, size_t size) {
  if (!p)
    return bt__pool_alloc(size);
  block_header *h = header_of(p);
  if (size <= h->size && h->cls != LARGE_CLASS)
    return p; /* the class has room */
  void *q = bt__pool_alloc(size);
  memcpy(q, p, h->size < size ? h->size : size);
  bt__pool_free(p);
  return q;
}

size_t bt__pool_cached_bytes(void) {
  return tls_cache ? tls_cache->bytes : 0;
}

void bt__pool_flush(void) {
  if (tls_cache)
    cache_free_all(tls_cache);
}

/* ---- nghttp2 -------------------------------------------------------- */

static void *h2_malloc(size_t size, void *ud) {
  return bt__pool_alloc(size);
}

static void h2_free(void *p, void *ud) {
  bt__pool_free(p);
}

static void *h2_calloc(size_t n, size_t size, void *ud) {
  return bt__pool_calloc(n, size);
}

static void *h2_realloc(void *p, size_t size, void *ud) {
  return bt__pool_realloc(p, size);
}

nghttp2_mem *bt__pool_nghttp2_mem(void) {
  static nghttp2_mem mem = {NULL, h2_malloc, h2_free, h2_calloc, h2_realloc};
  return &mem;
}
