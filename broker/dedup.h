/* dedup.h - the dedup window of message_ids: a fixed ring of entries and its hash table. */
#ifndef HERALD_BK_DEDUP_H
#define HERALD_BK_DEDUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker.h"
#include "codec.h"

int bk_dedup_init(broker_t *b, uint32_t window);
void bk_dedup_free(broker_t *b);
/* Hash of an id of len bytes: computed once per notification, given to find and insert. */
uint32_t bk_dedup_hash(const char *id, size_t len);
/* Start loading the table bucket of hash h, and the entry the insert `ahead` inserts from
 * now will write and the bucket of the entry it will evict, so a find/insert a little later
 * does not stall on them. */
void bk_dedup_prefetch(broker_t *b, uint32_t h, uint32_t ahead);
/* The window's entry for id (len bytes, hash h), or NULL. */
bk_dedup_entry_t *bk_dedup_find(broker_t *b, const char *id, size_t len, uint32_t h);
/* Insert (evicting the oldest when full); item is the queued notification or NULL, fp its
 * fingerprint (0 = unknown). With an item the caller has already found id absent; without
 * (journal replay) an existing entry is updated in place. */
bk_dedup_entry_t *bk_dedup_insert(broker_t *b, const char *id, size_t len, uint32_t h, uint64_t seq,
                                  bk_item_t *item, uint64_t fp);
/* What a notification is, for telling a repeat from a conflicting reuse of its message_id:
 * a 64-bit digest (jsum64) of its message_type, user_id and payload, read from its
 * canonical record rec[0..len). Never 0. Stable across processes and versions: the journal
 * keeps it. */
uint64_t bk_dedup_fp(const uint8_t *rec, size_t len);
/* The same from the record's parts (codec_encode_parts at ingest: no walk). */
uint64_t bk_dedup_fp_parts(const codec_parts_t *pt);
uint64_t bk_dedup_fp_of(const bk_dedup_entry_t *e);
uint64_t bk_dedup_seq(const bk_dedup_entry_t *e);
bk_item_t *bk_dedup_item(const bk_dedup_entry_t *e);
/* Remove e from the window (its notification was never published: a failed round). */
void bk_dedup_forget(broker_t *b, bk_dedup_entry_t *e);
void bk_dedup_sequenced(bk_dedup_entry_t *e, uint64_t seq);
typedef void (*bk_dedup_visit_fn)(const char *id, uint64_t seq, uint64_t fp, void *ctx);
void bk_dedup_each(broker_t *b, bk_dedup_visit_fn fn, void *ctx);
size_t bk_dedup_count(broker_t *b);
/* Bytes of the window's arrays (fixed at start). */
size_t bk_dedup_bytes(broker_t *b);

#endif
