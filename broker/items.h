/* items.h - the broker's notifications in memory: the item record and its allocator. */
#ifndef HERALD_BK_ITEMS_H
#define HERALD_BK_ITEMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker.h"

/* A response slot waiting for a notification's seq (the original or a duplicate). */
struct bk_waiter {
    struct bk_waiter *next;
    bk_req_t *req;
    uint32_t idx;
    bool duplicate;
};

/* One accepted notification: queued, then (after sequencing) kept in its user's history. */
struct bk_item {
    struct bk_item *next;    /* priority queue link, then history link */
    bk_user_t *user;         /* set at ingest (users are never freed) */
    bk_dedup_entry_t *dedup; /* its dedup entry while queued (NULL if evicted) */
    bk_req_t *req;           /* the publishing request (NULL once answered) */
    uint32_t idx;            /* its slot in req */
    bk_waiter_t *waiters;    /* duplicates waiting for the same seq */
    uint64_t seq;            /* 0 while queued */
    uint64_t at_ns;          /* wall clock when sequenced (history age) */
    uint64_t ts_ns;          /* the notification's timestamp (ingest latency) */
    uint32_t len;            /* canonical bytes */
    uint8_t prio;
    bool ack; /* a delivery.ack_required type: acks.c may track it once routed */
    uint8_t bytes[];
};

/* Bytes of live items (header + canonical bytes): queued and in histories. */
extern uint64_t bk_items_live;
/* An item with room for len canonical bytes (its len field is the caller's to set, and
 * must equal len when it is freed). Aborts on out-of-memory, like every broker malloc. */
bk_item_t *bk_items_new(uint32_t len);
void bk_items_free(bk_item_t *it);
/* Return the item chunks' memory (at shutdown). */
void bk_items_release(void);
/* Zeroed memory on 2 MiB-aligned pages advised as transparent huge pages (for big, randomly
 * probed tables); never fails (aborts). Free with the same size. */
void *bk_items_huge_alloc(size_t size);
void bk_items_huge_free(void *p, size_t size);

#endif
