/* baton/alloc.h: the one allocation module and its out-of-memory policy.
 *
 * bt_malloc and friends never return NULL: on exhaustion they print the
 * caller's source location and abort (as h2o and redis do), so callers need
 * no NULL checks. The same counters back the allocators handed to nghttp2
 * and protobuf-c. */
#ifndef BATON_ALLOC_H
#define BATON_ALLOC_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Built with -fvisibility=hidden: what this header declares is exported. */
#pragma GCC visibility push(default)

void *bt_malloc_at(size_t size, const char *file, int line);
void *bt_calloc_at(size_t n, size_t size, const char *file, int line);
void *bt_realloc_at(void *p, size_t size, const char *file, int line);
char *bt_strndup_at(const char *s, size_t len, const char *file, int line);
/* Like bt_malloc / bt_realloc but NULL on exhaustion (p is then left
 * alone): for blocks whose size a peer chooses (a message, a queue), so that
 * running out fails the one call that asked, not the process. */
void *bt_try_malloc(size_t size);
void *bt_try_realloc(void *p, size_t size);
/* Frees memory from bt_malloc and friends; accepts NULL. */
void bt_free(void *p);

#define bt_malloc(size) bt_malloc_at((size), __FILE__, __LINE__)
#define bt_calloc(n, size) bt_calloc_at((n), (size), __FILE__, __LINE__)
#define bt_realloc(p, size) bt_realloc_at((p), (size), __FILE__, __LINE__)
#define bt_strdup(s) bt_strndup_at((s), __builtin_strlen(s), __FILE__, __LINE__)
#define bt_strndup(s, len) bt_strndup_at((s), (len), __FILE__, __LINE__)

/* Number of live allocations made through this module (for leak checks in
 * tests; approximate under concurrency). */
long bt_alloc_live(void);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif
