/* items.c - memory for bk_item_t: size classes of 64 bytes with free lists, so the steady
 * state (an item in at every ingest, one out of a history at every append) costs no
 * malloc/free, and a freed item is reused while it is still in cache. */
#include <stdlib.h>

#include "broker.h"

#define ITEM_CLASS       64u
#define ITEM_CLASSES     32u                 /* items up to 2 KiB; larger ones use malloc */
#define ITEM_CACHE_BYTES (64u * 1024 * 1024) /* free-list bytes kept; beyond, free() */

/* Under AddressSanitizer an item on a free list is poisoned, so a use after free is still
 * caught although the memory is not given back to malloc. */
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define ITEM_POISON(p, n)   ASAN_POISON_MEMORY_REGION(p, n)
#define ITEM_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define ITEM_POISON(p, n)   ((void)(p), (void)(n))
#define ITEM_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

static bk_item_t *free_list[ITEM_CLASSES];
static size_t cached_bytes;

/* Class index + 1 of an item of len bytes, or 0 if it is too large for a class. */
static size_t item_class(uint32_t len)
{
    size_t c = (sizeof(bk_item_t) + len + ITEM_CLASS - 1) / ITEM_CLASS;
    return c <= ITEM_CLASSES ? c : 0;
}

bk_item_t *bk_item_new(uint32_t len)
{
    size_t c = item_class(len);
    bk_item_t *it;
    if (c && (it = free_list[c - 1])) {
        ITEM_UNPOISON(it, c * ITEM_CLASS);
        free_list[c - 1] = it->next;
        cached_bytes -= c * ITEM_CLASS;
        return it;
    }
    it = malloc(c ? c * ITEM_CLASS : sizeof *it + len);
    if (!it) abort();
    return it;
}

void bk_item_free(bk_item_t *it)
{
    size_t c = item_class(it->len);
    if (c && cached_bytes + c * ITEM_CLASS <= ITEM_CACHE_BYTES) {
        it->next = free_list[c - 1];
        free_list[c - 1] = it;
        cached_bytes += c * ITEM_CLASS;
        ITEM_POISON(it, c * ITEM_CLASS);
        return;
    }
    free(it);
}

void bk_items_release(void)
{
    for (size_t c = 0; c < ITEM_CLASSES; c++) {
        while (free_list[c]) {
            bk_item_t *it = free_list[c];
            ITEM_UNPOISON(it, (c + 1) * ITEM_CLASS);
            free_list[c] = it->next;
            free(it);
        }
    }
    cached_bytes = 0;
}
