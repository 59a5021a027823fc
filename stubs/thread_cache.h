/* thread_cache.h (private): the per-thread objects behind the runtime's
 * reuse caches (arena.c's freed arenas, conn.c's output buffers and TLS
 * plaintext buffer, pool.c's free lists), made on a thread's first use and
 * destroyed when the thread exits.
 *
 * Each module keeps its object's pointer in a _Thread_local variable and
 * reads that on its hot path: one thread-local load, no call. Only the first
 * use on a thread calls bt__thread_cache_new. (How cached blocks stay out of
 * bt_alloc_live is alloc_cache.h's business.) */
#ifndef BT_THREAD_CACHE_H
#define BT_THREAD_CACHE_H

#include <stddef.h>

/* At the calling thread's exit, destroy(obj) runs for each object made
 * here, newest first: it frees what obj holds and clears the module's
 * pointer to obj (obj itself is freed after it returns). */
typedef void (*bt__thread_cache_destroy_fn)(void *obj);

/* A zeroed object of size bytes for the calling thread, handed to destroy
 * when the thread exits. Returns NULL when out of memory, or when the
 * thread is already exiting and its caches were destroyed: the caller then
 * goes without a cache (a free goes straight to the allocator). */
void *bt__thread_cache_new(size_t size, bt__thread_cache_destroy_fn destroy);

#endif
