/* arena.c: the per-call memory pool.
 *
 * Blocks are chained; allocations bump a pointer in the newest block. A
 * request too big for a regular block gets a block of its own on a second
 * list, so the space left in the current block is not wasted. The
 * first block lives in the same heap allocation as the arena itself, so an
 * arena for a small call costs one malloc; reset keeps it. */
#include <baton/arena.h>

#include <baton/alloc.h>

#include "alloc_cache.h"
#include "thread_cache.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_ALIGN 16
#define ARENA_DEFAULT_FIRST 4096
/* Regular blocks double up to this size. */
#define ARENA_MAX_BLOCK (64 * 1024)

typedef struct arena_block {
  struct arena_block *next; /* older block */
  unsigned char *ptr;       /* next free byte (not yet aligned) */
  unsigned char *end;
} arena_block;

struct bt_arena {
  bt_arena *next_free; /* in the thread's cache of freed arenas */
  size_t first_size;   /* the first block's data size */
  arena_block *head;   /* current block; the chain ends at first */
  arena_block *large;  /* blocks holding one large allocation each */
  arena_block first;   /* header of the block stored after this struct */
  size_t next_block;   /* size of the next regular block */
  size_t used;
  ProtobufCAllocator pb;
};

static size_t align_up(size_t n) {
  return (n + (ARENA_ALIGN - 1)) & ~(size_t)(ARENA_ALIGN - 1);
}

static unsigned char *first_data(bt_arena *a) {
  return (unsigned char *)(a + 1);
}

static void *pb_alloc(void *ud, size_t size) {
  return bt_arena_alloc(ud, size);
}

static void pb_free(void *ud, void *p) {
  /* Everything goes when the arena does. */
}

/* Each thread keeps up to 512 freed arenas of the default size (2 MiB, a
 * burst of calls in flight): a call's arena
 * then costs no malloc at all, and glibc is spared the large-chunk frees
 * that make it consolidate on the next large request. */
#define ARENA_CACHE_MAX 512

typedef struct arena_cache {
  bt_arena *head;
  size_t n;
} arena_cache;

static _Thread_local arena_cache *tls_arenas;

static void cache_empty(arena_cache *c) {
  while (c->head) {
    bt_arena *a = c->head;
    c->head = a->next_free;
    bt__alloc_note_cached(-1);
    bt_free(a);
  }
  c->n = 0;
}

/* At thread exit (thread_cache.h). */
static void cache_destroy(void *p) {
  tls_arenas = NULL;
  cache_empty(p);
}

static arena_cache *thread_cache(void) {
  if (tls_arenas)
    return tls_arenas;
  tls_arenas = bt__thread_cache_new(sizeof(arena_cache), cache_destroy);
  return tls_arenas;
}

/* Frees the calling thread's cached arenas now (the main thread's cache is
 * otherwise only freed at its exit, which LeakSanitizer would see). */
void bt_arena_cache_flush(void) {
  if (tls_arenas)
    cache_empty(tls_arenas);
}

bt_arena *bt_arena_new(size_t first_block) {
  if (first_block == 0)
    first_block = ARENA_DEFAULT_FIRST;
  /* Room for aligning the first pointer, whatever malloc's alignment. */
  size_t first_size = align_up(first_block) + ARENA_ALIGN;
  bt_arena *a = NULL;
  if (first_size == align_up(ARENA_DEFAULT_FIRST) + ARENA_ALIGN) {
    arena_cache *c = thread_cache();
    if (c && c->head) {
      a = c->head;
      c->head = a->next_free;
      c->n--;
      bt__alloc_note_cached(-1);
    }
  }
  if (!a)
    a = bt_malloc(sizeof(*a) + first_size);
  a->next_free = NULL;
  a->first_size = first_size;
  a->first.next = NULL;
  a->first.ptr = first_data(a);
  a->first.end = first_data(a) + first_size;
  a->head = &a->first;
  a->large = NULL;
  a->next_block = first_size < 1024 ? 1024 : first_size;
  a->used = 0;
  a->pb.alloc = pb_alloc;
  a->pb.free = pb_free;
  a->pb.allocator_data = a;
  return a;
}

/* Frees every block but the first (which is part of the arena). */
static void free_extra_blocks(bt_arena *a) {
  arena_block *b = a->head;
  while (b != &a->first) {
    arena_block *next = b->next;
    bt_free(b);
    b = next;
  }
  a->head = &a->first;
  for (b = a->large; b; b = a->large) {
    a->large = b->next;
    bt_free(b);
  }
}

void bt_arena_free(bt_arena *arena) {
  if (!arena)
    return;
  free_extra_blocks(arena);
  if (arena->first_size == align_up(ARENA_DEFAULT_FIRST) + ARENA_ALIGN) {
    arena_cache *c = thread_cache();
    if (c && c->n < ARENA_CACHE_MAX) {
      arena->next_free = c->head;
      c->head = arena;
      c->n++;
      bt__alloc_note_cached(1);
      return;
    }
  }
  bt_free(arena);
}

void bt_arena_reset(bt_arena *arena) {
  free_extra_blocks(arena);
  arena->first.ptr = first_data(arena);
  arena->used = 0;
}

/* Returns an aligned pointer to size bytes in b, or NULL when b is full. */
static void *block_take(arena_block *b, size_t size) {
  uintptr_t p =
      ((uintptr_t)b->ptr + (ARENA_ALIGN - 1)) & ~(uintptr_t)(ARENA_ALIGN - 1);
  if (p > (uintptr_t)b->end || (uintptr_t)b->end - p < size)
    return NULL;
  b->ptr = (unsigned char *)p + size;
  return (void *)p;
}

static arena_block *block_new(size_t data_size) {
  arena_block *b = bt_malloc(sizeof(*b) + data_size + ARENA_ALIGN);
  b->next = NULL;
  b->ptr = (unsigned char *)(b + 1);
  b->end = b->ptr + data_size + ARENA_ALIGN;
  return b;
}

void *bt_arena_alloc(bt_arena *arena, size_t size) {
  /* Same policy as bt_malloc: an impossible size is out of memory. */
  if (size > SIZE_MAX / 2) {
    fprintf(stderr, "baton: out of memory allocating %zu bytes in an arena\n",
            size);
    abort();
  }
  /* A 0-byte request still gets its own address. */
  size = align_up(size ? size : 1);
  void *p = block_take(arena->head, size);
  if (!p) {
    if (size > arena->next_block / 2) {
      arena_block *b = block_new(size);
      b->next = arena->large;
      arena->large = b;
      p = block_take(b, size);
    } else {
      arena_block *b = block_new(arena->next_block);
      b->next = arena->head;
      arena->head = b;
      if (arena->next_block < ARENA_MAX_BLOCK)
        arena->next_block *= 2;
      p = block_take(b, size);
    }
  }
  arena->used += size;
  return p;
}

void *bt_arena_calloc(bt_arena *arena, size_t size) {
  void *p = bt_arena_alloc(arena, size);
  memset(p, 0, size);
  return p;
}

void *bt_arena_memdup(bt_arena *arena, const void *p, size_t len) {
  void *q = bt_arena_alloc(arena, len);
  if (len)
    memcpy(q, p, len);
  return q;
}

char *bt_arena_strndup(bt_arena *arena, const char *s, size_t len) {
  char *q = bt_arena_alloc(arena, len + 1);
  if (len)
    memcpy(q, s, len);
  q[len] = '\0';
  return q;
}

size_t bt_arena_used(const bt_arena *arena) {
  return arena->used;
}

ProtobufCAllocator *bt_arena_protobuf_allocator(bt_arena *arena) {
  return &arena->pb;
}
