/* alloc_cache.h (private): how reuse caches (arena.c) keep bt_alloc_live
 * meaningful: a cached block is not counted as live. */
#ifndef BT_ALLOC_CACHE_H
#define BT_ALLOC_CACHE_H

/* +1 when a block enters a cache, -1 when it leaves it. */
void bt__alloc_note_cached(long delta);

#endif
