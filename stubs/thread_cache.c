/* thread_cache.c: the one pthread key behind every per-thread reuse cache
 * (see thread_cache.h). Each thread's objects are chained behind small
 * headers; the key's destructor walks the chain when the thread exits. */
#include "thread_cache.h"

#include <pthread.h>
#include <stdalign.h>
#include <stdlib.h>

typedef struct cache_header {
  struct cache_header *next; /* made earlier on this thread */
  bt__thread_cache_destroy_fn destroy;
  alignas(max_align_t) unsigned char obj[]; /* the module's object */
} cache_header;

static pthread_key_t caches_key;
static pthread_once_t caches_once = PTHREAD_ONCE_INIT;
static _Thread_local cache_header *thread_caches;
/* Set once the thread's caches are destroyed at its exit: later uses (from
 * other exit-time destructors) go without a cache instead of making one that
 * nothing would free. */
static _Thread_local int thread_exiting;

static void destroy_all(void *head) {
  thread_exiting = 1;
  thread_caches = NULL;
  for (cache_header *h = head, *next; h; h = next) {
    next = h->next;
    h->destroy(h->obj);
    free(h);
  }
}

static void caches_key_init(void) {
  pthread_key_create(&caches_key, destroy_all);
}

void *bt__thread_cache_new(size_t size, bt__thread_cache_destroy_fn destroy) {
  if (thread_exiting)
    return NULL;
  pthread_once(&caches_once, caches_key_init);
  /* The caches' own bookkeeping stays out of bt_alloc_live: plain calloc. */
  cache_header *h = calloc(1, sizeof(*h) + size);
  if (!h)
    return NULL;
  h->destroy = destroy;
  h->next = thread_caches;
  thread_caches = h;
  /* The key's value is the newest header: what the destructor walks. */
  pthread_setspecific(caches_key, h);
  return h->obj;
}
