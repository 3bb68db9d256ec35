/* pipeline.c - ingest (validate, dedup, enqueue) and the drain rounds that assign seqs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "acks.h"
#include "broker.h"
#include "clustered.h"
#include "codec.h"
#include "herald_time.h"
#include "http.h"
#include "proto.h"

/* The notifications sequenced in the current drain round, in order. */
static bk_item_t *round_items[BK_ROUND_BUDGET];
static const char journal_failed_msg[] =
    "broker journal write failed: not acknowledged, retry later";
static const char over_capacity_msg[] =
    "broker at its memory bound (broker.max_memory): not accepted, retry later";
static const char unavailable_msg[] =
    "the user's partition has no writable owner right now (cluster failover): not accepted, "
    "retry later";
static const char busy_msg[] =
    "too many notifications of this user's partition wait for the cluster's acknowledgement: "
    "not accepted, retry later";
static uint8_t enc[CODEC_ENCODE_CAP]; /* one canonical record, copied into its item */

/* Per-round quanta for P1..P3 so a flood of a higher priority never starves a lower one. */
static const uint32_t quantum[HERALD_PRIORITIES] = {BK_ROUND_BUDGET, 2048, 1024, 512};

void bk_queue_init(broker_t *b)
{
    for (int p = 0; p < HERALD_PRIORITIES; p++)
        b->q[p].cap = b->cfg.queue_capacity[p];
}

size_t bk_queue_total(const broker_t *b)
{
    size_t n = 0;
    for (int p = 0; p < HERALD_PRIORITIES; p++)
        n += b->q[p].count;
    return n;
}

bk_req_t *bk_req_new(uint32_t n)
{
    bk_req_t *r = calloc(1, sizeof *r + (size_t)n * sizeof(bk_result_t));
    if (!r) abort();
    r->n = n;
    return r;
}

void bk_req_free(bk_req_t *req)
{
    if (!req) return;
    for (uint32_t i = 0; i < req->n; i++)
        if (req->res[i].msg_owned) free((char *)req->res[i].message);
    free(req);
}

void bk_req_orphan(broker_t *b, bk_req_t *req)
{
    (void)b;
    req->conn = NULL;
    req->http = NULL;
    if (req->pending == 0)
        bk_req_free(req);
    else
        req->orphan = true;
}

void bk_result_fail_static(bk_req_t *req, uint32_t idx, herr_t code, const char *msg)
{
    bk_result_t *r = &req->res[idx];
    r->done = 1;
    r->code = code;
    if (r->msg_owned) free((char *)r->message);
    r->message = msg;
    r->msg_owned = false;
}

void bk_result_fail(bk_req_t *req, uint32_t idx, herr_t code, const char *msg)
{
    char *copy = strdup(msg ? msg : ""); /* NULL (out of memory) reads as "" */
    bk_result_fail_static(req, idx, code, copy);
    req->res[idx].msg_owned = copy != NULL;
}

void bk_req_slot_done(broker_t *b, bk_req_t *req)
{
    if (--req->pending) return;
    if (req->orphan)
        bk_req_free(req);
    else if (req->conn)
        bk_conn_mark_dirty(b, req->conn);
    else if (req->http)
        bk_http_req_done(b, req);
    else if (req->fwd)
        bk_cluster_req_done(b, req);
}

/* Nothing can be made durable while the single node's journal fails (see bk_journal_flush);
 * in cluster mode JetStream makes rounds durable and the journal is only a restart cache. */
static bool journal_blocks(const broker_t *b)
{
    return !b->cl && bk_journal_failing(b);
}

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
    if (journal_blocks(b)) {
        b->c.dropped++;
        bk_result_fail_static(req, idx, HERR_IO, journal_failed_msg);
        *cur += codec_span(item);
        return false;
    }
    if (bk_mem_used(b) >= b->cfg.max_memory) { /* until the sweep frees users and history */
        b->c.dropped++;
        b->c.over_capacity++;
        if (log_ratelimit_ok(&b->rl_full, 1))
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
    p->user_hash = bk_user_hash(p->n.user_id, p->user_len);
    bk_user_prefetch(b, p->user_hash);
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
    bk_cl_where_t where = bk_cluster_where(b, p->n.user_id, p->user_len, req->forwarded, &part);
    if (where == BK_CL_LOCAL) return true;
    memcpy(req->res[p->idx].message_id, p->n.message_id, p->id_len + 1);
    if (where == BK_CL_FORWARD) {
        long len = ingest_encode(b, req, p, now);
        if (len >= 0) bk_cluster_forward_add(b, req, part, p->idx, enc, (size_t)len);
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

    bk_queue_t *q = &b->q[n->priority];
    if (q->count >= q->cap) {
        b->c.queue_full[n->priority]++;
        b->c.dropped++;
        if (log_ratelimit_ok(&b->rl_full, 1))
            log_warn("queue P%u full (%u): refusing publishes (%llu refused so far)", n->priority,
                     q->cap, (unsigned long long)b->c.queue_full[n->priority]);
        bk_result_fail_static(req, p->idx, HERR_QUEUE_FULL, "priority queue is full, retry later");
        return;
    }
    long len = ingest_encode(b, req, p, now);
    if (len < 0) return;
    bk_user_t *u = bk_user_get_hashed(b, n->user_id, p->user_len, p->user_hash, true);
    u->queued++;
    bk_item_t *it = bk_item_new((uint32_t)len);
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
    if (b->cl) bk_cluster_forward_flush(b, req);
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

/* Give the next notification of q its seq and append it to the journal; it reaches history
 * and rings only once the round is durable (round_publish). In cluster mode the seq comes
 * from the owner's counter (cl_seq) and the round goes to JetStream (bk_cluster_round); the
 * item holds its user (queued) until it is answered. */
static void sequence_one(broker_t *b, bk_queue_t *q, size_t slot, uint64_t now)
{
    bk_item_t *it = q->head;
    q->head = it->next;
    if (!q->head) q->tail = NULL;
    q->count--;
    it->next = NULL;
    it->at_ns = now;
    it->user->last_ns = now;
    round_items[slot] = it;
    if (b->cl) {
        it->seq = ++it->user->cl_seq;
        codec_patch_seq(it->bytes, CODEC_SEQ_OFFSET, it->seq);
        return;
    }
    it->seq = ++it->user->last_seq;
    it->user->queued--;
    codec_patch_seq(it->bytes, CODEC_SEQ_OFFSET, it->seq);
    bk_journal_append(b, it);
}

/* Answer slot idx of req with seq, or refuse it with code and msg. */
static void answer(broker_t *b, bk_req_t *req, uint32_t idx, uint64_t seq, bool dup, herr_t code,
                   const char *msg)
{
    bk_result_t *r = &req->res[idx];
    r->seq = code == HERR_OK ? seq : 0;
    r->duplicate = dup;
    r->done = 1;
    if (code != HERR_OK) bk_result_fail_static(req, idx, code, msg);
    bk_req_slot_done(b, req);
}

static void answer_all(broker_t *b, bk_item_t *it, herr_t code, const char *msg)
{
    if (it->req) answer(b, it->req, it->idx, it->seq, false, code, msg);
    for (bk_waiter_t *w = it->waiters, *nx; w; w = nx) {
        nx = w->next;
        answer(b, w->req, w->idx, it->seq, true, code, msg);
        free(w);
    }
    it->req = NULL;
    it->waiters = NULL;
}

/* The round is in the journal: dedup learns its seqs, the rings and histories get it, and
 * its producers their answers. */
static void round_publish(broker_t *b, size_t n)
{
    uint64_t now = n ? now_ns() : 0;
    for (size_t i = 0; i < n; i++) {
        bk_item_t *it = round_items[i];
        latency_record(&b->ingest_lat, it->prio, now > it->ts_ns ? now - it->ts_ns : 0);
        if (it->dedup) bk_dedup_sequenced(it->dedup, it->seq);
        it->dedup = NULL;
        bk_route_item(b, it);
        if (it->ack) bk_acks_published(b, it);
        b->c.sent++;
        answer_all(b, it, HERR_OK, NULL);
        bk_history_append(b, it->user, it); /* may free it */
    }
    bk_rings_publish(b);
}

/* The journal could not take the round: it never happened. Seqs go back (newest first, so a
 * user's counter ends where it started), ids leave the dedup window (a retry is a new
 * publish), and every producer is answered io_error. Nothing of it reached a ring. */
static void round_discard(broker_t *b, size_t n)
{
    bk_journal_discard(b);
    for (size_t i = n; i-- > 0;) {
        bk_item_t *it = round_items[i];
        it->user->last_seq--;
        if (it->dedup) bk_dedup_forget(b, it->dedup);
        it->dedup = NULL;
        answer_all(b, it, HERR_IO, journal_failed_msg);
        b->c.dropped++;
        bk_item_free(it);
    }
    if (log_ratelimit_ok(&b->rl_journal, 1))
        log_error("journal write failed: a round of %zu notifications was refused (io_error) and "
                  "not published",
                  n);
}

void bk_round_done(broker_t *b, bk_item_t *const *items, size_t n, herr_t code, const char *msg,
                   bool rollback)
{
    if (code == HERR_OK) {
        uint64_t now = n ? now_ns() : 0;
        for (size_t i = 0; i < n; i++) {
            bk_item_t *it = items[i];
            latency_record(&b->ingest_lat, it->prio, now > it->ts_ns ? now - it->ts_ns : 0);
            if (it->dedup) bk_dedup_sequenced(it->dedup, it->seq);
            it->dedup = NULL;
            answer_all(b, it, HERR_OK, NULL);
            it->user->queued--;
            bk_item_free(it);
        }
        return;
    }
    for (size_t i = n; i-- > 0;) {
        bk_item_t *it = items[i];
        /* newest first: a user's counter ends at the first seq it had in the round, less 1 */
        if (rollback && it->user->cl_seq >= it->seq) it->user->cl_seq = it->seq - 1;
        if (it->dedup) bk_dedup_forget(b, it->dedup);
        it->dedup = NULL;
        answer_all(b, it, code, msg);
        b->c.dropped++;
        it->user->queued--;
        bk_item_free(it);
    }
}

static void journal_retry_cb(loop_t *l, loop_timer_t *t)
{
    broker_t *b = t->ctx;
    if (bk_journal_probe(b) < 0)
        loop_timer_at(l, t, loop_now(l) + 100 * 1000000ull);
    else
        bk_drain_schedule(b);
}

/* One drain round (an end-of-pass hook): P0 first, then bounded quanta of P1..P3 so none
 * starves; one journal write for the whole round, then rings, histories and answers. */
void bk_drain(broker_t *b)
{
    if (!b->drain_pending) return;
    b->drain_pending = false;
    if (journal_blocks(b)) return; /* journal_retry_cb schedules the next round */
    uint64_t now = now_ns();
    size_t n = 0;
    bool more = true;
    while (n < BK_ROUND_BUDGET && more) {
        more = false;
        for (int p = 0; p < HERALD_PRIORITIES && n < BK_ROUND_BUDGET; p++) {
            uint32_t k = quantum[p];
            while (k-- && n < BK_ROUND_BUDGET && b->q[p].head)
                sequence_one(b, &b->q[p], n++, now);
            if (b->q[p].head) more = true;
        }
    }
    b->c.drain_rounds++;
    if (b->cl) { /* durable (on a quorum) before answered: see bk_round_done */
        bk_cluster_round(b, round_items, n);
        if (bk_queue_total(b)) bk_drain_schedule(b);
        return;
    }
    /* Durable before visible: nothing reaches a ring, a history or a producer before the
     * journal holds the round. */
    if (bk_journal_flush(b) == 0) {
        round_publish(b, n);
        bk_journal_compact_due(b);
    } else {
        round_discard(b, n);
        loop_timer_at(b->loop, &b->journal_retry, loop_now(b->loop) + 100 * 1000000ull);
    }
    if (bk_queue_total(b) && !bk_journal_failing(b)) bk_drain_schedule(b);
}

void bk_drain_schedule(broker_t *b)
{
    if (b->drain_pending) return;
    b->drain_pending = true;
    loop_again(b->loop); /* the round runs at the end of this pass; a queue left over by the
                          * round budget gets the next pass without sleeping */
}

void bk_pipeline_init(broker_t *b)
{
    latency_init(&b->ingest_lat);
    loop_timer_init(&b->journal_retry, journal_retry_cb, b);
}
