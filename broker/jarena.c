/* jarena.c - jansson's allocator in the broker: a bump arena that rewinds whenever every block
 * it handed out has been freed (after each HTTP body's json_to_msgpack), instead of malloc. */
#include <stdalign.h>
#include <stdlib.h>

#include <jansson.h>

#include "broker.h"

#define JA_CHUNK (1u << 20)

typedef struct ja_chunk {
    struct ja_chunk *prev;
    size_t size, used;
    alignas(max_align_t) unsigned char mem[];
} ja_chunk_t;

static ja_chunk_t *ja_top; /* current chunk; older ones (freed at rewind) behind it */
static size_t ja_live;     /* blocks handed out and not yet freed */

static void *ja_malloc(size_t n)
{
    n = (n + alignof(max_align_t) - 1) & ~(alignof(max_align_t) - 1);
    if (!ja_top || ja_top->size - ja_top->used < n) {
        size_t size = n > JA_CHUNK ? n : JA_CHUNK;
        ja_chunk_t *c = malloc(sizeof *c + size);
        if (!c) return NULL;
        c->prev = ja_top;
        c->size = size;
        c->used = 0;
        ja_top = c;
    }
    void *p = ja_top->mem + ja_top->used;
    ja_top->used += n;
    ja_live++;
    return p;
}

static void ja_free(void *p)
{
    if (!p || --ja_live) return;
    /* Nothing is live: keep one standard chunk, release the rest, start over. */
    while (ja_top->prev || ja_top->size != JA_CHUNK) {
        ja_chunk_t *prev = ja_top->prev;
        free(ja_top);
        ja_top = prev;
        if (!ja_top) return;
    }
    ja_top->used = 0;
}

void bk_jarena_install(void)
{
    json_set_alloc_funcs(ja_malloc, ja_free);
}
