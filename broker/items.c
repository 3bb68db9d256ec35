/* items.c - memory for bk_item_t, and big tables, on transparent huge pages.
 *
 * Items are the broker's hot, scattered data: a history of 1000 per user is a list of items
 * allocated about a user count apart, so every history append, trim and compaction step
 * touches a different 4 KiB page and pays a TLB miss. Items therefore come from 2 MiB
 * chunks the kernel is asked to back with huge pages (MADV_HUGEPAGE: THP is "madvise" on
 * Debian), carved into size classes of 64 bytes with LIFO free lists, so the steady state
 * (an item in at every ingest, one out of a history at every append) costs no malloc/free
 * and reuses an item while it is still in cache. Chunks are kept until shutdown: the broker's
 * item count is bounded by its queues and histories, and the peak is what it needs again.
 *
 * Under AddressSanitizer items are plain malloc/free, so overflows and uses after free are
 * caught with redzones as for any other allocation (test_items builds the chunk allocator
 * under ASan too, with HERALD_ITEMS_CHUNKS). */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "broker.h"
#include "items.h"

#define ITEM_CLASS   64u
#define ITEM_CLASSES 32u        /* items up to 2 KiB; larger ones use malloc */
#define HUGE_PAGE    (2u << 20) /* x86-64 THP size */
#define CHUNK_BYTES  HUGE_PAGE

void *bk_items_huge_alloc(size_t size)
{
    size = (size + HUGE_PAGE - 1) & ~(size_t)(HUGE_PAGE - 1);
    /* over-map by one huge page and trim, so the region is 2 MiB aligned */
    uint8_t *p =
        mmap(NULL, size + HUGE_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) abort();
    size_t lead = (HUGE_PAGE - ((uintptr_t)p & (HUGE_PAGE - 1))) & (HUGE_PAGE - 1);
    if (lead) munmap(p, lead);
    munmap(p + lead + size, HUGE_PAGE - lead);
    p += lead;
    (void)madvise(p, size, MADV_HUGEPAGE); /* advice: without THP, 4 KiB pages work too */
    return p;
}

void bk_items_huge_free(void *p, size_t size)
{
    if (p) munmap(p, (size + HUGE_PAGE - 1) & ~(size_t)(HUGE_PAGE - 1));
}

uint64_t bk_items_live;

#if defined(__SANITIZE_ADDRESS__) && !defined(HERALD_ITEMS_CHUNKS)

bk_item_t *bk_items_new(uint32_t len)
{
    bk_item_t *it = malloc(sizeof *it + len);
    if (!it) abort();
    bk_items_live += sizeof *it + len;
    return it;
}

void bk_items_free(bk_item_t *it)
{
    bk_items_live -= sizeof *it + it->len;
    free(it);
}

void bk_items_release(void) {}

#else

typedef struct chunk {
    struct chunk *next;
} chunk_t;

static bk_item_t *free_list[ITEM_CLASSES];
static chunk_t *chunks;     /* every chunk, for bk_items_release */
static uint8_t *bump, *end; /* the unused rest of the newest chunk */

/* Class index + 1 of an item of len bytes, or 0 if it is too large for a class. */
static size_t item_class(uint32_t len)
{
    size_t c = (sizeof(bk_item_t) + len + ITEM_CLASS - 1) / ITEM_CLASS;
    return c <= ITEM_CLASSES ? c : 0;
}

bk_item_t *bk_items_new(uint32_t len)
{
    size_t c = item_class(len);
    bk_item_t *it;
    bk_items_live += sizeof *it + len;
    if (!c) {
        it = malloc(sizeof *it + len);
        if (!it) abort();
        return it;
    }
    if ((it = free_list[c - 1])) {
        bk_item_t *nx = it->next;
        free_list[c - 1] = nx;
        /* The next item of this class is a history item trimmed a moment ago: only its first
         * line was read. Its other lines are about to be overwritten by the next ingest, and
         * stores that miss stall everything after them once the store buffer fills. */
        if (nx)
            for (size_t off = 64; off < c * ITEM_CLASS; off += 64)
                __builtin_prefetch((uint8_t *)nx + off, 1);
        return it;
    }
    size_t n = c * ITEM_CLASS;
    if ((size_t)(end - bump) < n) {
        /* The rest of the old chunk (under 2 KiB) is left unused. The chunk's first class
         * slot holds the chunk link, so bump starts one class in. */
        chunk_t *ch = bk_items_huge_alloc(CHUNK_BYTES);
        ch->next = chunks;
        chunks = ch;
        bump = (uint8_t *)ch + ITEM_CLASS;
        end = (uint8_t *)ch + CHUNK_BYTES;
    }
    it = (bk_item_t *)bump;
    bump += n;
    return it;
}

void bk_items_free(bk_item_t *it)
{
    size_t c = item_class(it->len);
    bk_items_live -= sizeof *it + it->len;
    if (!c) {
        free(it);
        return;
    }
    it->next = free_list[c - 1];
    free_list[c - 1] = it;
}

void bk_items_release(void)
{
    while (chunks) {
        chunk_t *ch = chunks;
        chunks = ch->next;
        bk_items_huge_free(ch, CHUNK_BYTES);
    }
    memset(free_list, 0, sizeof free_list);
    bump = end = NULL;
}

#endif
