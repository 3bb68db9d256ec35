/* dedup.c - the window of recent message ids: a FIFO ring of entries, oldest evicted first,
 * indexed by a compact open-addressed table (linear probing, backward-shift deletion). */
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "codec.h"
#include "dedup.h"
#include "items.h"
#include "jsum.h"
#include "seedhash.h"

struct bk_dedup_entry {
    bk_item_t *item; /* the notification while it is still queued */
    uint64_t seq;    /* 0 while queued */
    uint64_t fp;     /* bk_dedup_fp of the notification; 0 = unknown (version 2 journal) */
    uint8_t len;
    bool used;
    char id[HERALD_MAX_ID_LEN + 1];
};

/* A table bucket: the id's 32-bit hash (its home is hash & mask) and its FIFO slot + 1;
 * 0 is an empty bucket. Eight bytes, so a probe run stays in one or two cache lines and
 * a miss usually never touches an entry. */
typedef struct {
    uint32_t hash, slot1;
} bk_bucket_t;

typedef struct bk_dedup {
    bk_dedup_entry_t *slots; /* FIFO ring: slots[(head + i) % window] */
    bk_bucket_t *tab;        /* at most half full */
    uint32_t *hashes;        /* slot i's id hash, apart from its entry: the eviction's
                              * prefetch reads it here (40 KB, cached), not from the cold
                              * entry a window old */
    uint32_t window, head, count, mask;
} bk_dedup_t;

/* Keyed per process (ids come from producers); the journal stores ids, never hashes. */
uint32_t bk_dedup_hash(const char *id, size_t len)
{
    return (uint32_t)seedhash(id, len);
}

/* Seed of the fingerprints: part of the journal format, like jsum64 itself. */
#define DEDUP_FP_SEED 0x6865726164667031ull /* "heradfp1" */

uint64_t bk_dedup_fp_parts(const codec_parts_t *pt)
{
    /* From the message_type's bytes to the end of the user_id's (type, channel, user: their
     * keys and string headers delimit them), then the payload. */
    const uint8_t *who = (const uint8_t *)pt->type;
    size_t who_len = (size_t)((const uint8_t *)pt->user + pt->user_len - who);
    uint64_t h = jsum64(DEDUP_FP_SEED, pt->type_len, pt->user_len, who, who_len);
    h = jsum64(h, pt->payload_len, 0, pt->payload, pt->payload_len);
    return h ? h : 1;
}

uint64_t bk_dedup_fp(const uint8_t *rec, size_t len)
{
    codec_parts_t pt;
    if (codec_canonical_parts(rec, len, &pt) < 0) return 1; /* never: records are canonical */
    return bk_dedup_fp_parts(&pt);
}

int bk_dedup_init(broker_t *b, uint32_t window)
{
    bk_dedup_t *d = calloc(1, sizeof *d);
    if (!d) return -1;
    d->window = window ? window : 1;
    uint32_t size = 16;
    while (size < 2 * d->window)
        size <<= 1;
    d->mask = size - 1;
    /* both are probed at random: huge pages spare a TLB miss per probe */
    d->slots = bk_items_huge_alloc((size_t)d->window * sizeof *d->slots);
    d->tab = bk_items_huge_alloc((size_t)size * sizeof *d->tab);
    d->hashes = bk_items_huge_alloc((size_t)d->window * sizeof *d->hashes);
    b->dedup = d;
    return 0;
}

void bk_dedup_free(broker_t *b)
{
    if (!b->dedup) return;
    bk_items_huge_free(b->dedup->slots, (size_t)b->dedup->window * sizeof *b->dedup->slots);
    bk_items_huge_free(b->dedup->tab, (size_t)(b->dedup->mask + 1) * sizeof *b->dedup->tab);
    bk_items_huge_free(b->dedup->hashes, (size_t)b->dedup->window * sizeof *b->dedup->hashes);
    free(b->dedup);
    b->dedup = NULL;
}

void bk_dedup_prefetch(broker_t *b, uint32_t h, uint32_t ahead)
{
    bk_dedup_t *d = b->dedup;
    __builtin_prefetch(&d->tab[h & d->mask]);
    /* the entry the insert writes: the FIFO ring was last written a window ago */
    uint64_t slot = (uint64_t)d->head + (d->count < d->window ? d->count : 0) + ahead;
    if (slot >= d->window) slot %= d->window; /* rarely: at the ring's end */
    __builtin_prefetch(&d->slots[slot], 1);
    __builtin_prefetch((const char *)&d->slots[slot] + 64, 1);
    /* in a full window that slot's entry is evicted: its bucket is unlinked */
    if (d->count == d->window) __builtin_prefetch(&d->tab[d->hashes[slot] & d->mask], 1);
}

bk_dedup_entry_t *bk_dedup_find(broker_t *b, const char *id, size_t len, uint32_t h)
{
    bk_dedup_t *d = b->dedup;
    for (uint32_t i = h & d->mask;; i = (i + 1) & d->mask) {
        bk_bucket_t k = d->tab[i];
        if (!k.slot1) return NULL;
        if (k.hash != h) continue;
        bk_dedup_entry_t *e = &d->slots[k.slot1 - 1];
        if (e->len == len && !memcmp(e->id, id, len)) return e;
    }
}

/* Remove slot's bucket and shift the rest of its probe run back so no lookup stops early. */
static void unlink_slot(bk_dedup_t *d, uint32_t slot)
{
    bk_dedup_entry_t *e = &d->slots[slot];
    uint32_t i = d->hashes[slot] & d->mask;
    while (d->tab[i].slot1 != slot + 1)
        i = (i + 1) & d->mask;
    for (uint32_t j = (i + 1) & d->mask; d->tab[j].slot1; j = (j + 1) & d->mask) {
        uint32_t home = d->tab[j].hash & d->mask;
        /* j's bucket may move to the hole i unless its home lies cyclically in (i, j]. */
        bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
        if (stays) continue;
        d->tab[i] = d->tab[j];
        i = j;
    }
    d->tab[i] = (bk_bucket_t){0, 0};
    if (e->item) e->item->dedup = NULL; /* still queued: it will not report its seq here */
    e->used = false;
}

bk_dedup_entry_t *bk_dedup_insert(broker_t *b, const char *id, size_t len, uint32_t h, uint64_t seq,
                                  bk_item_t *item, uint64_t fp)
{
    bk_dedup_t *d = b->dedup;
    if (len > HERALD_MAX_ID_LEN) len = HERALD_MAX_ID_LEN;
    bk_dedup_entry_t *old = item ? NULL : bk_dedup_find(b, id, len, h); /* ingest checked */
    if (old) { /* replaying a journal that holds it twice: keep the newest */
        old->seq = seq;
        old->item = item;
        if (fp) old->fp = fp;
        return old;
    }
    uint32_t slot;
    if (d->count == d->window) {
        slot = d->head;
        if (d->slots[slot].used) unlink_slot(d, slot); /* else forgotten already */
        d->head = d->head + 1 == d->window ? 0 : d->head + 1;
    } else {
        slot = d->head + d->count;
        if (slot >= d->window) slot -= d->window;
        d->count++;
    }
    bk_dedup_entry_t *e = &d->slots[slot];
    d->hashes[slot] = h;
    e->seq = seq;
    e->fp = fp;
    e->item = item;
    e->used = true;
    e->len = (uint8_t)len;
    memcpy(e->id, id, len);
    e->id[len] = '\0';
    uint32_t i = h & d->mask;
    while (d->tab[i].slot1)
        i = (i + 1) & d->mask;
    d->tab[i] = (bk_bucket_t){h, slot + 1};
    return e;
}

void bk_dedup_forget(broker_t *b, bk_dedup_entry_t *e)
{
    bk_dedup_t *d = b->dedup;
    if (!e->used) return;
    /* The slot stays in the FIFO as a hole, skipped by lookups and snapshots and reused when
     * its turn to be evicted comes. */
    unlink_slot(d, (uint32_t)(e - d->slots));
    e->item = NULL;
}

uint64_t bk_dedup_seq(const bk_dedup_entry_t *e)
{
    return e->seq;
}

uint64_t bk_dedup_fp_of(const bk_dedup_entry_t *e)
{
    return e->fp;
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
        if (e->used && e->seq) fn(e->id, e->seq, e->fp, ctx);
    }
}

size_t bk_dedup_count(broker_t *b)
{
    return b->dedup->count;
}

size_t bk_dedup_bytes(broker_t *b)
{
    bk_dedup_t *d = b->dedup;
    return (size_t)d->window * (sizeof *d->slots + sizeof *d->hashes) +
           (size_t)(d->mask + 1) * sizeof *d->tab;
}
