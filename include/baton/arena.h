/* baton/arena.h: a memory pool per call.
 *
 * Headers, metadata and decoded messages of one RPC come from the call's
 * arena; closing the call frees everything in one go. Not thread-safe: an
 * arena belongs to the event loop of its call. */
#ifndef BATON_ARENA_H
#define BATON_ARENA_H

#include <stddef.h>
#include <protobuf-c/protobuf-c.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Built with -fvisibility=hidden: what this header declares is exported. */
#pragma GCC visibility push(default)

typedef struct bt_arena bt_arena;

/* Allocates an arena whose first block holds about first_block bytes
 * (0 picks a default). Free with bt_arena_free. */
bt_arena *bt_arena_new(size_t first_block);
/* Frees the arena and everything allocated from it; accepts NULL. */
void bt_arena_free(bt_arena *arena);
/* Arenas of the default size are kept in a small per-thread cache when
 * freed and reused by bt_arena_new; a thread's cache is freed when it exits.
 * This frees the calling thread's cache now (for the main thread before
 * exit, so leak checkers see nothing). */
void bt_arena_cache_flush(void);
/* Drops every allocation but keeps the first block for reuse. */
void bt_arena_reset(bt_arena *arena);

/* Returns size bytes aligned to 16, owned by the arena; never NULL. */
void *bt_arena_alloc(bt_arena *arena, size_t size);
/* As bt_arena_alloc, zero-filled. */
void *bt_arena_calloc(bt_arena *arena, size_t size);
/* Copies len bytes into the arena. */
void *bt_arena_memdup(bt_arena *arena, const void *p, size_t len);
/* Copies len bytes of s into the arena and NUL-terminates them. */
char *bt_arena_strndup(bt_arena *arena, const char *s, size_t len);
/* Bytes handed out so far (for memory accounting). */
size_t bt_arena_used(const bt_arena *arena);

/* A protobuf-c allocator that takes memory from this arena; its free is a
 * no-op. The returned struct lives inside the arena. */
ProtobufCAllocator *bt_arena_protobuf_allocator(bt_arena *arena);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif
