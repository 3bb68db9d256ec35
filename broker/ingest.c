/* ingest.c - publishes into the pipeline: decode and validate each notification, dedup,
 * the memory and queue bounds, the canonical encoding, the queue (or, in cluster mode, the
 * forward to its partition's owner). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "acks.h"
#include "broker.h"
#include "codec.h"
#include "dedup.h"
#include "herald_time.h"
#include "items.h"
#include "journal.h"
#include "ingest.h"
#include "pipeline.h"
#include "pipeline_int.h"
#include "proto.h"
#include "route.h"
#include "users.h"

static const char over_capacity_msg[] =
    "broker at its memory bound (broker.max_memory): not accepted, retry later";
static const char unavailable_msg[] =
    "the user's partition has no writable owner right now (cluster failover): not accepted, "
    "retry later";
static const char busy_msg[] =
    "too many notifications of this user's partition wait for the cluster's acknowledgement: "
    "not accepted, retry later";
static uint8_t enc[CODEC_ENCODE_CAP]; /* one canonical record, copied into its item */

static void refuse(broker_t *b, bk_req_t *req, uint32_t idx, const herald_error_t *err)
{
    b->c.invalid++;
    if (log_ratelimit_ok(&b->rl_bad, 5))
        log_warn("refused notification: %s (%s)", herr_code(err->code), err->message);
    bk_result_fail(req, idx, err->code, err->message);
}

/* A notification that passed decoding and validation, waiting for its dedup and queue
 * decision. Ingest runs in chunks of these: parsing a whole chunk first lets the dedup and
 * user-table cache lines of every item be prefetched before any of them is probed (each
 * probe is otherwise a cache miss, the largest single cost of ingest). */
typedef struct {
    notif_t n;
    uint32_t idx;
    uint32_t id_len, id_hash;
    uint32_t user_len, user_hash;
} bk_parsed_t;

#define INGEST_CHUNK 32

/* Phase 1: decode and validate slot idx's object into p; prefetch what phase 2 touches.
 * Returns false if the slot was answered (refused) already. */
static bool ingest_parse(broker_t *b, bk_req_t *req, uint32_t idx, const uint8_t **cur,
                         const uint8_t *end, bk_parsed_t *p, uint32_t ahead)
{
    herald_error_t err;
    const uint8_t *item = *cur;
    if (bk_pipeline_journal_blocks(b)) {
        b->c.dropped++;
        bk_result_fail_static(req, idx, HERR_IO, bk_pipeline_journal_failed_msg);
        *cur += codec_span(item);
        return false;
    }
    if (bk_mem_used(b) >= b->cfg.max_memory) { /* until the sweep frees users and history */
        b->c.dropped++;
        b->c.over_capacity++;
        if (log_ratelimit_ok(&b->pipe->rl_full, 1))
            log_warn("memory bound reached (%llu of broker.max_memory %llu bytes in users, "
                     "history and dedup): refusing publishes (%llu refused so far)",
                     (unsigned long long)bk_mem_used(b), (unsigned long long)b->cfg.max_memory,
                     (unsigned long long)b->c.over_capacity);
        bk_result_fail_static(req, idx, HERR_OVER_CAPACITY, over_capacity_msg);
        *cur += codec_span(item);
        return false;
    }
    long used = codec_notif_scan(item, (size_t)(end - item), &p->n, &err);
    if (used < 0) {
        refuse(b, req, idx, &err);
        *cur += codec_span(item);
        return false;
    }
    *cur += used;
    p->idx = idx;
    p->id_len = p->n.message_id_len;
    p->id_hash = bk_dedup_hash(p->n.message_id, p->id_len);
    bk_dedup_prefetch(b, p->id_hash, ahead);
    p->user_len = p->n.user_id_len;
    p->user_hash = bk_users_hash(p->n.user_id, p->user_len);
    bk_users_prefetch(b, p->user_hash);
    return true;
}

static const char id_conflict_msg[] =
    "message_id already used for another notification (a different user_id, message_type "
    "or payload): choose a new id";

/* Encode n into enc (its timestamp set if absent). Returns the length, or -1 after refusing
 * slot p->idx (too large for the model or for the ring). */
static long ingest_encode(broker_t *b, bk_req_t *req, bk_parsed_t *p, uint64_t now)
{
    herald_error_t err;
    notif_t *n = &p->n;
    if (!n->has_timestamp) n->timestamp = now;
    n->seq = 0;
    long len = codec_encode_to(n, enc, sizeof enc);
    if (len < 0) {
        b->c.too_large++;
        herr_set(&err, (herr_t)-len, "", "encoded notification exceeds %u bytes",
                 HERALD_MAX_NOTIF_BYTES);
        refuse(b, req, p->idx, &err);
        return -1;
    }
    /* A record over the ring's max (ring_bytes / 8) could never be delivered, live or as a
     * replay (which adds its session header). */
    if ((uint64_t)len + sizeof(rec_replay_t) > b->cfg.ring_bytes / 8) {
        b->c.too_large++;
        herr_set(&err, HERR_TOO_LARGE, "",
                 "encoded notification of %ld bytes exceeds the ring's "
                 "record limit of %llu bytes (gateway.ring_bytes / 8, less 8)",
                 len, (unsigned long long)(b->cfg.ring_bytes / 8 - sizeof(rec_replay_t)));
        refuse(b, req, p->idx, &err);
        return -1;
    }
    return len;
}

/* A message_id seen before: the same notification again (true), or the id reused for
 * another user, type or payload (false: refused with id_conflict). Entries restored from a
 * version 2 journal have no fingerprint and count as the same. */
static bool ingest_same(broker_t *b, bk_req_t *req, bk_parsed_t *p, bk_dedup_entry_t *e,
                        uint64_t now)
{
    uint64_t want = bk_dedup_fp_of(e);
    if (!want) return true;
    long len = ingest_encode(b, req, p, now);
    if (len < 0) return false;
    codec_parts_t pt;
    codec_encode_parts(&p->n, enc, (size_t)len, &pt);
    if (bk_dedup_fp_parts(&pt) == want) return true;
    b->c.id_conflicts++;
    if (log_ratelimit_ok(&b->rl_bad, 5))
        log_warn("refused notification: message_id %s reused for another user, type or payload "
                 "(id_conflict)",
                 p->n.message_id);
    bk_result_fail_static(req, p->idx, HERR_ID_CONFLICT, id_conflict_msg);
    return false;
}

/* Cluster mode: whether the item stays here for ingest_commit (its partition is owned
 * here); otherwise it is forwarded to its owner (its canonical record, so the owner keeps
 * the message_id and timestamp given here) or refused now. */
static bool ingest_route(broker_t *b, bk_req_t *req, bk_parsed_t *p, uint64_t now)
{
    unsigned part;
    bk_cl_where_t where = b->hooks.cl_where(b, p->n.user_id, p->user_len, req->forwarded, &part);
    if (where == BK_CL_LOCAL) return true;
    memcpy(req->res[p->idx].message_id, p->n.message_id, p->id_len + 1);
    if (where == BK_CL_FORWARD) {
        long len = ingest_encode(b, req, p, now);
        if (len >= 0) b->hooks.cl_forward_add(b, req, part, p->idx, enc, (size_t)len);
        return false;
    }
    b->c.dropped++;
    if (where == BK_CL_BUSY) {
        b->c.queue_full[p->n.priority]++;
        bk_result_fail_static(req, p->idx, HERR_QUEUE_FULL, busy_msg);
    } else {
        bk_result_fail_static(req, p->idx, HERR_UNAVAILABLE, unavailable_msg);
    }
    return false;
}

/* Phase 2: dedup, queue bound, canonical encoding, enqueue. */
static void ingest_commit(broker_t *b, bk_req_t *req, bk_parsed_t *p, uint64_t now)
{
    notif_t *n = &p->n;
    bk_result_t *res = &req->res[p->idx];
    memcpy(res->message_id, n->message_id, p->id_len + 1);

    bk_dedup_entry_t *e = bk_dedup_find(b, n->message_id, p->id_len, p->id_hash);
    if (e) {
        if (!ingest_same(b, req, p, e, now)) return;
        b->c.deduplicated++;
        res->duplicate = true;
        bk_item_t *orig = bk_dedup_item(e);
        if (!orig) {
            res->seq = bk_dedup_seq(e);
            res->done = 1;
            return;
        }
        bk_waiter_t *w = malloc(sizeof *w);
        if (!w) abort();
        *w = (bk_waiter_t){.next = orig->waiters, .req = req, .idx = p->idx, .duplicate = true};
        orig->waiters = w;
        req->pending++;
        return;
    }

    bk_queue_t *q = &b->pipe->q[n->priority];
    if (q->count >= q->cap) {
        b->c.queue_full[n->priority]++;
        b->c.dropped++;
        if (log_ratelimit_ok(&b->pipe->rl_full, 1))
            log_warn("queue P%u full (%u): refusing publishes (%llu refused so far)", n->priority,
                     q->cap, (unsigned long long)b->c.queue_full[n->priority]);
        bk_result_fail_static(req, p->idx, HERR_QUEUE_FULL, "priority queue is full, retry later");
        return;
    }
    long len = ingest_encode(b, req, p, now);
    if (len < 0) return;
    bk_user_t *u = bk_users_get_hashed(b, n->user_id, p->user_len, p->user_hash, true);
    u->queued++;
    bk_item_t *it = bk_items_new((uint32_t)len);
    *it = (bk_item_t){.user = u,
                      .len = (uint32_t)len,
                      .prio = n->priority,
                      .ts_ns = n->timestamp,
                      .ack = bk_acks_type(b, n->type)};
    memcpy(it->bytes, enc, (size_t)len);
    it->req = req;
    it->idx = p->idx;
    codec_parts_t pt;
    codec_encode_parts(n, enc, (size_t)len, &pt);
    it->dedup =
        bk_dedup_insert(b, n->message_id, p->id_len, p->id_hash, 0, it, bk_dedup_fp_parts(&pt));
    if (q->tail)
        q->tail->next = it;
    else
        q->head = it;
    q->tail = it;
    q->count++;
    req->pending++;
    b->c.accepted++;
}

/* Take the n notifications laid back to back in items[0..len) (checked well-formed) into
 * slots 0.. of req, a chunk at a time (see bk_parsed_t). Scanned payloads point into items,
 * which outlives every chunk's commit. */
static void ingest_items(broker_t *b, bk_req_t *req, const uint8_t *items, size_t len, uint32_t n)
{
    static bk_parsed_t chunk[INGEST_CHUNK];
    const uint8_t *cur = items, *end = items + len;
    uint64_t now = now_ns();
    for (uint32_t i = 0; i < n; i += INGEST_CHUNK) {
        uint32_t m = n - i < INGEST_CHUNK ? n - i : INGEST_CHUNK, k = 0;
        for (uint32_t j = 0; j < m; j++)
            k += ingest_parse(b, req, i + j, &cur, end, &chunk[k], k);
        for (uint32_t j = 0; j < k; j++)
            if (!b->cl || ingest_route(b, req, &chunk[j], now))
                ingest_commit(b, req, &chunk[j], now);
    }
    if (b->cl) b->hooks.cl_forward_flush(b, req);
}

/* Items announced by a msgpack array header at the start of body (0 if not an array). */
static uint64_t batch_items(const uint8_t *body, size_t len)
{
    if (len >= 1 && (body[0] & 0xf0u) == 0x90u) return body[0] & 0x0fu;
    if (len >= 3 && body[0] == 0xdc) return (uint64_t)body[1] << 8 | body[2];
    if (len >= 5 && body[0] == 0xdd)
        return (uint64_t)body[1] << 24 | (uint64_t)body[2] << 16 | (uint64_t)body[3] << 8 | body[4];
    return 0;
}

static bk_req_t *ingest_body(broker_t *b, const uint8_t *body, size_t len, bool forwarded)
{
    herald_error_t err = {0};
    /* Every item costs a result slot and a response entry (~150 bytes) while an empty map is
     * one byte of input: bound the batch before decoding so one frame cannot amplify into
     * gigabytes. Refused whole, so the producer sees one clear error. */
    uint64_t items = batch_items(body, len);
    if (items > BK_MAX_BATCH) {
        bk_req_t *r = bk_req_new(0);
        b->c.too_large++;
        r->frame_code = HERR_TOO_LARGE;
        snprintf(r->frame_msg, sizeof r->frame_msg,
                 "batch of %llu notifications exceeds the limit of %u per request",
                 (unsigned long long)items, BK_MAX_BATCH);
        return r;
    }
    if (codec_check(body, len, BK_MAX_FRAME, &err) < 0) {
        bk_req_t *r = bk_req_new(0);
        b->c.bad_frames++;
        r->frame_code = err.code;
        snprintf(r->frame_msg, sizeof r->frame_msg, "%s", err.message);
        return r;
    }
    uint32_t n = 0;
    size_t head = codec_array_open(body, len, &n);
    if (head) {
        bk_req_t *r = bk_req_new(n);
        r->forwarded = forwarded;
        r->batch = true;
        r->pending = 1; /* held while the items go in */
        ingest_items(b, r, body + head, len - head, n);
        r->pending--;
        bk_drain_schedule(b);
        return r;
    }
    bk_req_t *r = bk_req_new(1);
    r->forwarded = forwarded;
    r->pending = 1;
    ingest_items(b, r, body, len, 1);
    r->pending--;
    bk_drain_schedule(b);
    return r;
}

bk_req_t *bk_ingest_body(broker_t *b, const uint8_t *body, size_t len)
{
    return ingest_body(b, body, len, false);
}

bk_req_t *bk_ingest_forwarded(broker_t *b, const uint8_t *body, size_t len)
{
    return ingest_body(b, body, len, true);
}
