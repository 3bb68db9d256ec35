/* cl_consume.c - delivery: an ordered consumer per partition that the broker wants, from a
 * stream position or a time, handing each round message's records to the broker thread in
 * stream order. A bound on the bytes waiting for the broker holds the delivery thread back
 * (and through JetStream's flow control, the server).
 *
 * An ordered consumer lives on its stream's leader (memory, one replica). cnats recreates it
 * when its heartbeats stop, but after a leader kill that coincides with the loss of this
 * node's own server connection it was seen to stay silent for good (cnats 3.4.1, server
 * 2.9.10). So a watchdog, every CL_STALL_NS: a consumer that delivered nothing since the last
 * check while the stream holds a later round message is replaced, from the message after the
 * last one delivered, when that round is old (stored CL_STALL_NS ago or more) or was already
 * there at the check before. A round stored a moment before the check is given a period to
 * arrive, so a healthy consumer under a light load is not replaced; a dead one under a steady
 * load is replaced after 1-3 periods of silence. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cl_int.h"
#include "cl_wire.h"
#include "log.h"

#define CL_QUEUE_BOUND (64u * 1024 * 1024) /* consumed bytes waiting for the broker thread */
#define CL_STALL_NS    1000000000ull       /* watchdog period (see above) */

/* What a consumer's callbacks need; freed when its subscription is done delivering. */
typedef struct {
    cl_t *cl;
    unsigned p;
    uint64_t gen;
} cl_cons_ctx_t;

static void cl_consume_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    (void)nc;
    (void)sub;
    cl_cons_ctx_t *ctx = closure;
    cl_t *cl = ctx->cl;
    cl_part_t *part = &cl->parts[ctx->p];
    uint64_t seq = 0, pending = 0;
    jsMsgMetaData *meta = NULL;
    if (natsMsg_GetMetaData(&meta, msg) == NATS_OK) {
        seq = meta->Sequence.Stream;
        pending = meta->NumPending;
        jsMsgMetaData_Destroy(meta);
    }
    const uint8_t *body = (const uint8_t *)natsMsg_GetData(msg);
    size_t len = (size_t)natsMsg_GetDataLength(msg);
    long n = cl_wire_parse_round(body, len, NULL, 0);
    cl_rec_t *recs = n > 0 ? malloc((size_t)n * sizeof *recs) : NULL;
    if (n > 0 && !recs) abort();
    if (n < 0 || seq == 0 || (n > 0 && cl_wire_parse_round(body, len, recs, (size_t)n) != n)) {
        log_error("cluster: partition %u: stream message %llu is not a herald round; skipped",
                  ctx->p, (unsigned long long)seq);
        pthread_mutex_lock(&cl->mu);
        cl->c.corrupt_messages++;
        pthread_mutex_unlock(&cl->mu);
        free(recs);
        natsMsg_Destroy(msg);
        return;
    }
    pthread_mutex_lock(&cl->mu);
    while (!cl->stop && cl->q_bytes > CL_QUEUE_BOUND && ctx->gen == part->cons_gen)
        pthread_cond_wait(&cl->q_cond, &cl->mu);
    if (cl->stop || ctx->gen != part->cons_gen || seq <= part->consumed) {
        pthread_mutex_unlock(&cl->mu);
        free(recs);
        natsMsg_Destroy(msg);
        return;
    }
    part->consumed = seq;
    cl->c.consumed_messages++;
    cl->c.consumed_records += (uint64_t)n;
    cl_item_t *it = cl_item_new(CLI_RECORDS, ctx->p);
    it->gen = ctx->gen;
    it->seq = seq;
    it->pending = pending;
    it->recs = recs;
    it->n = (size_t)n;
    it->msg = msg;
    it->bytes = len;
    cl_push(cl, it);
    pthread_mutex_unlock(&cl->mu);
}

static void cl_consume_done(void *closure)
{
    free(closure);
}

int cl_consume_start(cl_t *cl, unsigned p, uint64_t from_seq, uint64_t since_ns)
{
    if (p >= cl->n_parts) return -HERR_BAD_VALUE;
    pthread_mutex_lock(&cl->mu);
    cl_part_t *part = &cl->parts[p];
    part->cons_gen++;
    part->cons_want = true;
    part->cons_from = from_seq;
    part->cons_since = since_ns;
    part->consumed = from_seq ? from_seq - 1 : 0;
    cl_kick(cl);
    pthread_mutex_unlock(&cl->mu);
    return 0;
}

void cl_consume_stop(cl_t *cl, unsigned p)
{
    if (p >= cl->n_parts) return;
    pthread_mutex_lock(&cl->mu);
    cl_part_t *part = &cl->parts[p];
    part->cons_gen++;
    part->cons_want = false;
    pthread_cond_broadcast(&cl->q_cond); /* a delivery waiting for room gives up */
    cl_kick(cl);
    pthread_mutex_unlock(&cl->mu);
}

/* The wall clock in ns (stream messages carry their store time on it). */
static uint64_t cl_wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The watchdog (see the top of the file). */
static void cl_consume_check(cl_t *cl, cl_part_t *part)
{
    uint64_t now = cl_now();
    pthread_mutex_lock(&cl->mu);
    bool due = part->cons && part->cons_want && now >= part->cons_check_at;
    uint64_t seen = part->consumed, since = part->cons_since, suspect = part->cons_suspect;
    /* held back by the broker thread (the queue bound) is not stalled */
    bool moved = seen != part->cons_check_seq || cl->q_bytes > CL_QUEUE_BOUND / 2;
    if (due) {
        part->cons_check_at = now + CL_STALL_NS;
        part->cons_check_seq = seen;
        if (moved) part->cons_suspect = 0;
    }
    pthread_mutex_unlock(&cl->mu);
    if (!due || moved) return;
    char stream[64], subj[96];
    cl_stream_name(cl, part->idx, stream, sizeof stream);
    cl_subject(cl, part->idx, 'r', subj, sizeof subj);
    natsMsg *m = NULL;
    jsErrCode code = 0;
    if (js_GetLastMsg(&m, cl->jsc, stream, subj, NULL, &code) != NATS_OK)
        return; /* none yet, or no leader: next time */
    uint64_t last = natsMsg_GetSequence(m), stored = (uint64_t)natsMsg_GetTime(m);
    bool newer = !since || seen || stored >= since;
    natsMsg_Destroy(m);
    bool behind = last > seen && newer;
    bool stalled = behind && (suspect > seen || cl_wall_ns() >= stored + CL_STALL_NS);
    pthread_mutex_lock(&cl->mu);
    part->cons_suspect = behind && !stalled ? last : 0;
    stalled = stalled && part->consumed == seen && part->cons;
    if (stalled) {
        part->cons_restart = true;
        cl->c.consumer_restarts++;
    }
    pthread_mutex_unlock(&cl->mu);
    if (stalled)
        log_warn("cluster: partition %u: consumer silent at stream seq %llu while the stream has "
                 "%llu; replacing it",
                 part->idx, (unsigned long long)seen, (unsigned long long)last);
}

/* A start time cnats encodes right. cnats 3.4.1 writes the fraction of a second without its
 * leading zeros (x.012345678 s goes out as "x.12345678", i.e. up to 0.9 s later), so the
 * server would skip what was stored in between. A fraction under 0.1 s is dropped: the
 * consumer starts up to 0.1 s early (a little more history, never less). */
static uint64_t cl_start_time(uint64_t since_ns)
{
    uint64_t frac = since_ns % 1000000000u;
    return frac < 100000000u ? since_ns - frac : since_ns;
}

void cl_consume_tick(cl_t *cl, cl_part_t *part)
{
    cl_consume_check(cl, part);
    pthread_mutex_lock(&cl->mu);
    bool want = part->cons_want;
    if (part->cons_restart && part->consumed) { /* go on after what was delivered */
        part->cons_from = part->consumed + 1;
        part->cons_since = 0;
    }
    uint64_t gen = part->cons_gen, from = part->cons_from, since = part->cons_since;
    natsSubscription *old = NULL;
    bool stalled = part->cons_restart;
    if (part->cons && (!want || part->cons_sub_gen != gen || part->cons_restart)) {
        old = part->cons;
        part->cons = NULL;
    }
    part->cons_restart = false;
    bool start = want && !part->cons;
    pthread_mutex_unlock(&cl->mu);
    /* A stalled consumer is dropped without asking the server to delete it: it is most
     * likely gone with its server, and that request would hold this thread for its whole
     * timeout while the stream has no leader (the server removes an ephemeral consumer
     * nobody listens to by itself). */
    if (old && !stalled) natsSubscription_Unsubscribe(old);
    if (old) natsSubscription_Destroy(old);
    if (!start) return;

    char stream[64], subj[96];
    cl_stream_name(cl, part->idx, stream, sizeof stream);
    cl_subject(cl, part->idx, 'r', subj, sizeof subj);
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = stream;
    so.Ordered = true;
    if (from) {
        so.Config.DeliverPolicy = js_DeliverByStartSequence;
        so.Config.OptStartSeq = from;
    } else if (since) {
        so.Config.DeliverPolicy = js_DeliverByStartTime;
        so.Config.OptStartTime = (int64_t)cl_start_time(since);
    } else {
        so.Config.DeliverPolicy = js_DeliverNew;
    }
    cl_cons_ctx_t *ctx = malloc(sizeof *ctx);
    if (!ctx) abort();
    *ctx = (cl_cons_ctx_t){.cl = cl, .p = part->idx, .gen = gen};
    natsSubscription *sub = NULL;
    jsErrCode code = 0;
    natsStatus s = js_Subscribe(&sub, cl->jsc, subj, cl_consume_msg, ctx, NULL, &so, &code);
    if (s != NATS_OK) {
        if (log_ratelimit_ok(&cl->rl_consume, 1))
            log_warn("cluster: partition %u: consumer not started (%s, %d); retrying", part->idx,
                     natsStatus_GetText(s), (int)code);
        free(ctx);
        return;
    }
    natsSubscription_SetPendingLimits(sub, -1, -1);
    natsSubscription_SetOnCompleteCB(sub, cl_consume_done, ctx);
    pthread_mutex_lock(&cl->mu);
    part->cons = sub;
    part->cons_sub_gen = gen;
    part->cons_check_at = cl_now() + CL_STALL_NS;
    part->cons_check_seq = part->consumed;
    part->cons_suspect = 0;
    pthread_mutex_unlock(&cl->mu);
}

void cl_consume_close(cl_t *cl, cl_part_t *part)
{
    (void)cl;
    if (part->cons) natsSubscription_Unsubscribe(part->cons);
}
