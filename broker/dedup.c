/* dedup.c - the window of recent message ids: hash lookup plus a FIFO ring, oldest evicted first. */
#include <stdlib.h>
#include <string.h>

#include "broker.h"

struct bk_dedup_entry {
    bk_dedup_entry_t *hnext;
    bk_item_t *item; /* the notification while it is still queued */
    uint64_t seq;    /* 0 while queued */
    uint32_t hash;
    bool used;
    char id[HERALD_MAX_ID_LEN + 1];
};

typedef struct bk_dedup {
    bk_dedup_entry_t *slots; /* FIFO ring: slots[(head + i) % window] */
    bk_dedup_entry_t **tab;
    uint32_t window, head, count, mask;
} bk_dedup_t;

static uint32_t id_hash(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

int bk_dedup_init(broker_t *b, uint32_t window)
{
    bk_dedup_t *d = calloc(1, sizeof *d);
    if (!d) return -1;
    d->window = window ? window : 1;
    uint32_t size = 16;
    while (size < 2 * d->window) size <<= 1;
    d->mask = size - 1;
    d->slots = calloc(d->window, sizeof *d->slots);
    d->tab = calloc(size, sizeof *d->tab);
    if (!d->slots || !d->tab) {
        free(d->slots);
        free(d->tab);
        free(d);
        return -1;
    }
    b->dedup = d;
    return 0;
}

void bk_dedup_free(broker_t *b)
{
    if (!b->dedup) return;
    free(b->dedup->slots);
    free(b->dedup->tab);
    free(b->dedup);
    b->dedup = NULL;
}

static bk_dedup_entry_t *find_hashed(bk_dedup_t *d, const char *id, uint32_t h)
{
    for (bk_dedup_entry_t *e = d->tab[h & d->mask]; e; e = e->hnext)
        if (e->hash == h && !strcmp(e->id, id)) return e;
    return NULL;
}

bk_dedup_entry_t *bk_dedup_find(broker_t *b, const char *id)
{
    return find_hashed(b->dedup, id, id_hash(id));
}

static void unlink_entry(bk_dedup_t *d, bk_dedup_entry_t *e)
{
    bk_dedup_entry_t **pp = &d->tab[e->hash & d->mask];
    while (*pp != e) pp = &(*pp)->hnext;
    *pp = e->hnext;
    if (e->item) e->item->dedup = NULL; /* still queued: it will not report its seq here */
    e->used = false;
}

bk_dedup_entry_t *bk_dedup_insert(broker_t *b, const char *id, uint64_t seq, bk_item_t *item)
{
    bk_dedup_t *d = b->dedup;
    uint32_t h = id_hash(id);
    bk_dedup_entry_t *old = item ? NULL : find_hashed(d, id, h); /* ingest checked already */
    if (old) { /* replaying a journal that holds it twice: keep the newest */
        old->seq = seq;
        old->item = item;
        return old;
    }
    uint32_t slot;
    if (d->count == d->window) {
        slot = d->head;
        unlink_entry(d, &d->slots[slot]);
        d->head = (d->head + 1) % d->window;
    } else {
        slot = (d->head + d->count) % d->window;
        d->count++;
    }
    bk_dedup_entry_t *e = &d->slots[slot];
    size_t len = strnlen(id, HERALD_MAX_ID_LEN);
    e->hash = h;
    e->seq = seq;
    e->item = item;
    e->used = true;
    memcpy(e->id, id, len);
    e->id[len] = '\0';
    e->hnext = d->tab[e->hash & d->mask];
    d->tab[e->hash & d->mask] = e;
    return e;
}

uint64_t bk_dedup_seq(const bk_dedup_entry_t *e)
{
    return e->seq;
}

bk_item_t *bk_dedup_item(const bk_dedup_entry_t *e)
{
    return e->item;
}

void bk_dedup_sequenced(bk_dedup_entry_t *e, uint64_t seq)
{
    e->seq = seq;
    e->item = NULL;
}

void bk_dedup_each(broker_t *b, bk_dedup_visit_fn fn, void *ctx)
{
    bk_dedup_t *d = b->dedup;
    for (uint32_t i = 0; i < d->count; i++) {
        bk_dedup_entry_t *e = &d->slots[(d->head + i) % d->window];
        if (e->used && e->seq) fn(e->id, e->seq, ctx);
    }
}

size_t bk_dedup_count(broker_t *b)
{
    return b->dedup->count;
}
