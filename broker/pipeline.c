/* pipeline.c - the priority queues, requests and their answers, and the drain rounds that
 * assign seqs (ingest.c fills the queues). */
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
#include "pipeline.h"
#include "pipeline_int.h"
#include "proto.h"
#include "route.h"
#include "users.h"

const char bk_pipeline_journal_failed_msg[] =
    "broker journal write failed: not acknowledged, retry later";

/* The notifications sequenced in the current drain round, in order. */
static bk_item_t *round_items[BK_ROUND_BUDGET];

/* Per-round quanta for P1..P3 so a flood of a higher priority never starves a lower one. */
static const uint32_t quantum[HERALD_PRIORITIES] = {BK_ROUND_BUDGET, 2048, 1024, 512};

uint32_t bk_pipeline_queued(const broker_t *b, int p)
{
    return b->pipe->q[p].count;
}

void bk_pipeline_set_cap(broker_t *b, int p, uint32_t cap)
{
    b->pipe->q[p].cap = cap;
}

size_t bk_queue_total(const broker_t *b)
{
    size_t n = 0;
    for (int p = 0; p < HERALD_PRIORITIES; p++)
        n += b->pipe->q[p].count;
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
        b->hooks.native_done(b, req->conn);
    else if (req->http)
        b->hooks.http_done(b, req);
    else if (req->fwd)
        b->hooks.fwd_done(b, req);
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
        bk_users_history_append(b, it->user, it); /* may free it */
    }
    bk_route_publish(b);
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
        answer_all(b, it, HERR_IO, bk_pipeline_journal_failed_msg);
        b->c.dropped++;
        bk_items_free(it);
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
            bk_items_free(it);
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
        bk_items_free(it);
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
    if (!b->pipe->drain_pending) return;
    b->pipe->drain_pending = false;
    if (bk_pipeline_journal_blocks(b)) return; /* journal_retry_cb schedules the next round */
    uint64_t now = now_ns();
    size_t n = 0;
    bool more = true;
    while (n < BK_ROUND_BUDGET && more) {
        more = false;
        for (int p = 0; p < HERALD_PRIORITIES && n < BK_ROUND_BUDGET; p++) {
            uint32_t k = quantum[p];
            while (k-- && n < BK_ROUND_BUDGET && b->pipe->q[p].head)
                sequence_one(b, &b->pipe->q[p], n++, now);
            if (b->pipe->q[p].head) more = true;
        }
    }
    b->c.drain_rounds++;
    if (b->cl) { /* durable (on a quorum) before answered: see bk_round_done */
        b->hooks.cl_round(b, round_items, n);
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
        loop_timer_at(b->loop, &b->pipe->journal_retry, loop_now(b->loop) + 100 * 1000000ull);
    }
    if (bk_queue_total(b) && !bk_journal_failing(b)) bk_drain_schedule(b);
}

void bk_drain_schedule(broker_t *b)
{
    b->pipe->drain_pending = true; /* the round runs at the end of this pass */
}

bool bk_drain_pending(const broker_t *b)
{
    return b->pipe->drain_pending;
}

void bk_pipeline_init(broker_t *b)
{
    b->pipe = calloc(1, sizeof *b->pipe);
    if (!b->pipe) abort();
    for (int p = 0; p < HERALD_PRIORITIES; p++)
        b->pipe->q[p].cap = b->cfg.queue_capacity[p];
    latency_init(&b->ingest_lat);
    loop_timer_init(&b->pipe->journal_retry, journal_retry_cb, b);
}

void bk_pipeline_free(broker_t *b)
{
    free(b->pipe);
    b->pipe = NULL;
}
