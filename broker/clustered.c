/* clustered.c - the broker in cluster mode (clustered.h): start and stop, partition
 * ownership, drain rounds handed to JetStream, delivery from the partition streams into the
 * histories and rings, and where each publish goes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clustered_int.h"
#include "codec.h"
#include "dedup.h"
#include "herald_time.h"
#include "items.h"
#include "journal.h"
#include "jsum.h"
#include "pipeline.h"
#include "route.h"
#include "users.h"

const char *bk_cl_status_name(cl_status_t s)
{
    switch (s) {
    case CL_OK:
        return "ok";
    case CL_UNAVAILABLE:
        return "unavailable";
    case CL_FENCED:
        return "fenced";
    case CL_UNKNOWN:
        return "unknown";
    }
    return "?";
}

/* --- rounds --- */

static void round_link(bk_cluster_t *st, bk_clround_t *r)
{
    r->prev = NULL;
    r->next = st->rounds;
    if (st->rounds) st->rounds->prev = r;
    st->rounds = r;
}

static void round_unlink(bk_cluster_t *st, bk_clround_t *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        st->rounds = r->next;
    if (r->next) r->next->prev = r->prev;
}

/* The message_id of a canonical record: the string after the seq (codec.h's fixed layout:
 * seq, then the key "message_id", then its value). */
static void item_id(const bk_item_t *it, const char **id, uint8_t *len)
{
    static const char key[] = "\xaamessage_id";
    const uint8_t *p = it->bytes + CODEC_SEQ_OFFSET + 8;
    if (memcmp(p, key, sizeof key - 1)) abort(); /* every item is a canonical record */
    p += sizeof key - 1;
    if ((*p & 0xe0u) == 0xa0u) {
        *len = *p & 0x1fu;
        *id = (const char *)p + 1;
    } else {
        *len = p[1]; /* 0xd9: ids are at most 64 bytes */
        *id = (const char *)p + 2;
    }
}

void bk_cluster_round(broker_t *b, bk_item_t *const *items, size_t n)
{
    bk_cluster_t *st = b->cl;
    if (!n) return;
    memset(st->cnt, 0, (st->n_parts + 1) * sizeof *st->cnt);
    for (size_t i = 0; i < n; i++)
        st->cnt[bk_cl_user_part(st, items[i]->user) + 1]++;
    for (unsigned p = 0; p < st->n_parts; p++) /* cnt[p] becomes the start of p's slice */
        st->cnt[p + 1] += st->cnt[p];
    for (size_t i = 0; i < n; i++)
        st->order[st->cnt[bk_cl_user_part(st, items[i]->user)]++] = (uint32_t)i;
    /* cnt[p] is now the end of p's slice (the start of p + 1's) */
    uint32_t at = 0;
    for (unsigned p = 0; p < st->n_parts; p++) {
        uint32_t k = st->cnt[p] - at;
        if (!k) continue;
        bk_clround_t *r = malloc(sizeof *r + k * sizeof r->items[0]);
        if (!r) abort();
        r->p = p;
        r->gen = st->parts[p].gen;
        r->n = k;
        for (uint32_t j = 0; j < k; j++) {
            bk_item_t *it = items[st->order[at + j]];
            r->items[j] = it;
            cl_rec_t *rec = &st->recs[j];
            item_id(it, &rec->message_id, &rec->id_len);
            rec->user = it->user->id;
            rec->user_len = it->user->id_len;
            rec->bytes = it->bytes;
            rec->len = it->len;
            rec->seq = it->seq;
            rec->prio = it->prio;
        }
        at += k;
        round_link(st, r);
        st->parts[p].inflight += k;
        st->c.rounds++;
        cl_append_round(st->cl, p, st->recs, k, r); /* answered through on_appended */
    }
}

static void on_appended(void *ctx, unsigned p, void *round_ctx, cl_status_t s)
{
    bk_cluster_t *st = ctx;
    bk_clround_t *r = round_ctx;
    broker_t *b = st->b;
    round_unlink(st, r);
    bk_clpart_t *pt = &st->parts[r->p];
    pt->inflight -= r->n;
    if (s == CL_OK) {
        bk_round_done(b, r->items, r->n, HERR_OK, NULL, false);
        free(r);
        return;
    }
    st->c.rounds_failed++;
    /* Rounds of an earlier ownership need no rollback: the counters were reset since. */
    bool rollback = pt->owned && pt->gen == r->gen;
    const char *msg = s == CL_UNAVAILABLE
                          ? "not stored: the partition's stream has no leader right now (NATS "
                            "failover): retry later"
                      : s == CL_FENCED ? "not stored: this node no longer owns the user's "
                                         "partition: retry"
                                       : "the cluster could not confirm the write (its owner "
                                         "stepped down with it in doubt): retry with the same "
                                         "message_id";
    if (log_ratelimit_ok(&st->rl_round, 1))
        log_warn("cluster: partition %u: a round of %u notifications was not acknowledged (%s); "
                 "its producers are answered unavailable",
                 p, r->n, bk_cl_status_name(s));
    bk_round_done(b, r->items, r->n, HERR_UNAVAILABLE, msg, rollback);
    free(r);
}

/* --- ownership --- */

/* Forget the owner's counters of p's users (they are sequenced elsewhere, or about to be set
 * from a takeover). */
typedef struct {
    bk_cluster_t *st;
    unsigned p;
} users_reset_t;

static void user_reset(bk_user_t *u, void *ctx)
{
    users_reset_t *r = ctx;
    if (u->cl_seq && bk_cl_user_part(r->st, u) == r->p) u->cl_seq = 0;
}

static void users_reset(bk_cluster_t *st, unsigned p)
{
    users_reset_t r = {st, p};
    bk_users_each(st->b, user_reset, &r);
}

static void on_owner(void *ctx, unsigned p, const cl_takeover_t *tk, cl_status_t why)
{
    bk_cluster_t *st = ctx;
    broker_t *b = st->b;
    bk_clpart_t *pt = &st->parts[p];
    pt->gen++;
    pt->memo_pass = 0;
    users_reset(st, p);
    if (!tk) {
        pt->owned = false;
        st->c.losses++;
        log_info("cluster: partition %u is no longer owned here (%s): its publishes are forwarded",
                 p, bk_cl_status_name(why));
        return;
    }
    pt->owned = true;
    st->c.gains++;
    for (size_t i = 0; i < tk->n_users; i++) {
        const cl_user_seq_t *us = &tk->users[i];
        bk_user_t *u = bk_users_get(b, us->user, us->user_len, true);
        if (u) u->cl_seq = us->seq;
    }
    /* The window as the stream has it: a producer retrying after a failover gets its
     * original seq, and a reused id its id_conflict. */
    for (size_t i = 0; i < tk->n_ids; i++) {
        const cl_id_seq_t *e = &tk->ids[i];
        bk_dedup_insert(b, e->message_id, e->id_len, bk_dedup_hash(e->message_id, e->id_len),
                        e->seq, NULL, e->fp);
    }
    log_info("cluster: partition %u is owned here (lease %llu, %zu users, %zu message ids, "
             "stream at %llu)",
             p, (unsigned long long)tk->lease_epoch, tk->n_users, tk->n_ids,
             (unsigned long long)tk->stream_seq);
}

/* --- delivery --- */

static void on_records(void *ctx, unsigned p, uint64_t stream_seq, const cl_rec_t *recs, size_t n,
                       uint64_t pending)
{
    bk_cluster_t *st = ctx;
    broker_t *b = st->b;
    bk_clpart_t *pt = &st->parts[p];
    uint64_t now = now_ns();
    for (size_t i = 0; i < n; i++) {
        const cl_rec_t *r = &recs[i];
        bk_user_t *u = bk_users_get(b, r->user, r->user_len, true);
        /* Each user's seqs rise along the stream; one at or below what this node delivered
         * was delivered already (a consumer restarted before its journaled position). */
        if (!u || r->seq <= u->last_seq) {
            pt->skipped++;
            continue;
        }
        bk_item_t *it = bk_items_new(r->len);
        *it = (bk_item_t){.user = u, .seq = r->seq, .at_ns = now, .len = r->len, .prio = r->prio};
        memcpy(it->bytes, r->bytes, r->len);
        u->last_seq = r->seq;
        u->last_ns = now;
        bk_route_item(b, it);
        if (!st->journal_off) bk_journal_append_hist(b, it);
        b->c.sent++;
        pt->delivered++;
        bk_users_history_append(b, u, it); /* may free it */
    }
    pt->pos = stream_seq;
    pt->pending = pending;
    if (!st->journal_off) bk_journal_clpos(b, p, stream_seq);
    st->delivered = true;
}

/* After a dispatch: what was delivered is journaled (with the consumers' positions), and
 * the gateways are told. A journal that fails stops taking deliveries for good: its
 * positions stay where its records end, so a restart consumes again from there. */
static void deliveries_done(bk_cluster_t *st)
{
    broker_t *b = st->b;
    if (!st->delivered) return;
    st->delivered = false;
    if (!st->journal_off) {
        if (bk_journal_flush(b) == 0) {
            bk_journal_compact_due(b);
        } else {
            bk_journal_discard(b);
            st->journal_off = true;
            st->c.journal_failures++;
            log_error("cluster: the journal cannot take deliveries; they go on unjournaled, and "
                      "a restart of this broker consumes the streams again from where it "
                      "stopped");
        }
    }
    bk_route_publish(b);
}

/* --- ingest --- */

bk_cl_where_t bk_cluster_where(broker_t *b, const char *user, size_t len, bool forwarded,
                               unsigned *part)
{
    bk_cluster_t *st = b->cl;
    unsigned p = cl_partition_of(st->cl, user, len);
    bk_clpart_t *pt = &st->parts[p];
    *part = p;
    uint64_t pass = loop_passes(b->loop) + 1;
    if (pt->memo_pass != pass) { /* cl_owns takes the cluster layer's lock: once a pass */
        pt->memo_owns = pt->owned && cl_owns(st->cl, p);
        pt->memo_pass = pass;
    }
    if (pt->memo_owns) {
        if (pt->inflight < CL_INFLIGHT_MAX) return BK_CL_LOCAL;
        st->c.busy++;
        return BK_CL_BUSY;
    }
    if (!pt->owned && !forwarded) return BK_CL_FORWARD;
    /* owned but not writable now (a write in doubt, failures being rolled back, lease
     * trouble), or forwarded to a node that no longer owns it */
    st->c.unavailable++;
    if (log_ratelimit_ok(&st->rl_fwd, 1))
        log_warn("cluster: partition %u %s: publishes refused unavailable", p,
                 pt->owned ? "is owned here but not writable now" : "is not owned here (moved)");
    return BK_CL_UNAVAILABLE;
}

/* --- life cycle --- */

static void cl_io(loop_t *l, loop_io_t *io, uint32_t ready)
{
    (void)l;
    (void)ready;
    bk_cluster_t *st = io->ctx;
    cl_dispatch(st->cl);
    deliveries_done(st);
}

int bk_cluster_init(broker_t *b, herald_error_t *err)
{
    (void)err;
    if (!b->cfg.cluster_nats[0]) return 0;
    bk_cluster_t *st = calloc(1, sizeof *st);
    if (!st) abort();
    st->b = b;
    st->n_parts = b->cfg.cluster_partitions + 1;
    st->parts = calloc(st->n_parts, sizeof *st->parts);
    st->touched = calloc(st->n_parts, sizeof *st->touched);
    st->cnt = calloc(st->n_parts + 1, sizeof *st->cnt);
    st->order = calloc(BK_ROUND_BUDGET, sizeof *st->order);
    st->recs = calloc(BK_ROUND_BUDGET, sizeof *st->recs);
    if (!st->parts || !st->touched || !st->cnt || !st->order || !st->recs) abort();
    for (unsigned p = 0; p < st->n_parts; p++)
        st->parts[p].fw_len = CL_FWD_HEAD;
    msgpack_sbuffer_init(&st->resp);
    msgpack_unpacked_init(&st->unp);
    b->cl = st;
    return 0;
}

void bk_cluster_pos_restore(broker_t *b, uint32_t p, uint64_t seq)
{
    bk_cluster_t *st = b->cl;
    if (st && p < st->n_parts && seq > st->parts[p].pos) st->parts[p].pos = seq;
}

unsigned bk_cluster_pos_count(const broker_t *b)
{
    return b->cl ? b->cl->n_parts : 0;
}

uint64_t bk_cluster_pos(const broker_t *b, unsigned p)
{
    return b->cl && p < b->cl->n_parts ? b->cl->parts[p].pos : 0;
}

/* Tests only: HERALD_TEST_CLUSTER_LEASE_MS / _PROBE_MS shorten the lease and the probe grace
 * (a stale owner's lease then runs out in seconds). */
static uint32_t test_ms(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? (uint32_t)strtoul(v, NULL, 10) : 0;
}

int bk_cluster_start(broker_t *b, herald_error_t *err)
{
    bk_cluster_t *st = b->cl;
    if (!st) return 0;
    /* the checksum's one-time set-up, here before any thread of the cluster layer uses it
     * (it fingerprints records for takeovers) */
    (void)jsum64(0, 0, 0, NULL, 0);
    cl_config_t cfg = {
        .nats = b->cfg.cluster_nats,
        .node_id = b->cfg.cluster_node_id,
        .partitions = b->cfg.cluster_partitions,
        .replicas = b->cfg.cluster_replicas,
        .history_age_s = b->cfg.history_age_s,
        .dedup_window = b->cfg.dedup_window,
        .fingerprint = bk_dedup_fp,
        .lease_ttl_ms = test_ms("HERALD_TEST_CLUSTER_LEASE_MS"),
        .probe_grace_ms = test_ms("HERALD_TEST_CLUSTER_PROBE_MS"),
    };
    cl_callbacks_t cb = {
        .ctx = st,
        .appended = on_appended,
        .owner = on_owner,
        .records = on_records,
        .forwarded = bk_cl_on_forwarded,
        .forward_done = bk_cl_on_forward_done,
    };
    int rc = cl_open(&st->cl, &cfg, &cb, err);
    if (rc < 0) return rc;
    st->io = (loop_io_t){.fd = cl_fd(st->cl), .fn = cl_io, .ctx = st};
    if (loop_io_add(b->loop, &st->io, LOOP_READ) < 0)
        return herr_set(err, HERR_IO, "cluster", "epoll refused the cluster layer's descriptor");
    /* Every node keeps every user's history: consume every partition, from where this
     * node's journal says it stopped, else the last history_age_s (what a session may
     * resume from). */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t wall = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    uint64_t age = (uint64_t)b->cfg.history_age_s * 1000000000ull;
    uint64_t since = wall > age ? wall - age : 1;
    for (unsigned p = 0; p < st->n_parts; p++) {
        uint64_t pos = st->parts[p].pos;
        if (cl_consume_start(st->cl, p, pos ? pos + 1 : 0, pos ? 0 : since) < 0)
            return herr_set(err, HERR_IO, "cluster", "partition %u: consumer not started", p);
    }
    log_info("cluster: node %u up, %u partitions (+1 broadcast), consuming every partition",
             b->cfg.cluster_node_id, b->cfg.cluster_partitions);
    return 0;
}

void bk_cluster_close(broker_t *b)
{
    bk_cluster_t *st = b->cl;
    if (!st) return;
    bk_cl_served_close(st); /* while the connection can still answer them */
    if (st->cl) {
        loop_io_del(b->loop, &st->io);
        cl_close(st->cl); /* hands the partitions over; unanswered callbacks are dropped */
        st->cl = NULL;
    }
    while (st->rounds) {
        bk_clround_t *r = st->rounds;
        round_unlink(st, r);
        bk_round_done(b, r->items, r->n, HERR_UNAVAILABLE, "the broker is shutting down", false);
        free(r);
    }
    bk_cl_forwards_close(st);
    for (unsigned p = 0; p < st->n_parts; p++) {
        free(st->parts[p].fw_buf);
        free(st->parts[p].fw_idx);
    }
    msgpack_sbuffer_destroy(&st->resp);
    msgpack_unpacked_destroy(&st->unp);
    free(st->parts);
    free(st->touched);
    free(st->cnt);
    free(st->order);
    free(st->recs);
    free(st);
    b->cl = NULL;
}
