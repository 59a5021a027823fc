/* pool.h (private): per-thread free lists of small blocks for the hot path.
 *
 * nghttp2 makes some forty small allocations per proxied call (frames,
 * header buffers, stream objects). Under a burst of thousands of streams
 * glibc's per-thread cache (7 blocks per size) runs dry and every one of
 * them takes malloc's slow path. A pool block is a plain malloc block with
 * a 16-byte header naming its size class; a freed block goes on the
 * calling thread's list for its class and is handed out again without
 * malloc, up to a byte budget per thread. Blocks may be freed on any
 * thread. Pool blocks are not counted by bt_alloc_live. */
#ifndef BT_POOL_H
#define BT_POOL_H

#include <stddef.h>

#include <nghttp2/nghttp2.h>

/* Largest size served from the free lists; bigger blocks pass through to
 * malloc (still with the header, so bt__pool_free takes any pool block). */
#define BT_POOL_MAX_SIZE 8192
/* Bytes a thread keeps on its free lists at most; beyond it blocks go back
 * to malloc. */
#define BT_POOL_THREAD_BUDGET (8u << 20)

/* Never NULL (aborts on exhaustion, as bt_malloc); 16-byte aligned. */
void *bt__pool_alloc(size_t size);
void *bt__pool_calloc(size_t n, size_t size);
void *bt__pool_realloc(void *p, size_t size);
/* Accepts NULL. */
void bt__pool_free(void *p);

/* Bytes on the calling thread's free lists (for tests). */
size_t bt__pool_cached_bytes(void);
/* Frees the calling thread's free lists now (a thread's lists are
 * otherwise freed when it exits). */
void bt__pool_flush(void);

/* An nghttp2 allocator backed by the pool, for nghttp2_session_*_new3. */
nghttp2_mem *bt__pool_nghttp2_mem(void);

#endif
