/* cl_core.c - the queue to the broker thread (eventfd + cl_dispatch), the control thread's
 * loop, names and queries. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cl_int.h"
#include "log.h"
#include "shard.h"

uint64_t cl_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void cl_tick_deadline(unsigned ms, struct timespec *ts)
{
    clock_gettime(CLOCK_REALTIME, ts);
    uint64_t ns = (uint64_t)ts->tv_nsec + (uint64_t)ms * 1000000u;
    ts->tv_sec += (time_t)(ns / 1000000000u);
    ts->tv_nsec = (long)(ns % 1000000000u);
}

void cl_stream_name(const cl_t *cl, unsigned p, char *out, size_t cap)
{
    snprintf(out, cap, "%s_P%u", cl->stream_pfx, p);
}

void cl_subject(const cl_t *cl, unsigned p, char kind, char *out, size_t cap)
{
    switch (kind) {
    case 'i':
        snprintf(out, cap, "%s.in.%u", cl->name, p);
        break;
    case 'n':
        snprintf(out, cap, "%s.node.%u", cl->name, p);
        break;
    default: /* 'r' records, 'o' ownership markers, '*' both */
        snprintf(out, cap, "%s.p.%u.%c", cl->name, p, kind);
        break;
    }
}

cl_item_t *cl_item_new(cl_item_kind_t kind, unsigned p)
{
    cl_item_t *it = calloc(1, sizeof *it);
    if (!it) abort();
    it->kind = kind;
    it->p = p;
    return it;
}

void cl_item_free(cl_item_t *it)
{
    if (it->msg) natsMsg_Destroy(it->msg);
    free(it->tk);
    free(it->recs);
    free(it);
}

void cl_push(cl_t *cl, cl_item_t *it)
{
    bool was_empty = cl->q_head == NULL;
    if (cl->q_tail)
        cl->q_tail->next = it;
    else
        cl->q_head = it;
    cl->q_tail = it;
    cl->q_bytes += it->bytes;
    if (it->fail_mark) cl->parts[it->p].failing++;
    if (was_empty) {
        uint64_t one = 1;
        /* Never blocks (the counter cannot overflow at one write per empty-to-busy). */
        if (write(cl->efd, &one, sizeof one) < 0 && errno != EAGAIN)
            log_warn("cluster: eventfd write failed: %s", strerror(errno));
    }
}

void cl_kick(cl_t *cl)
{
    cl->ctl_kick = true;
    pthread_cond_signal(&cl->ctl_cond);
}

int cl_fd(const cl_t *cl)
{
    return cl->efd;
}

size_t cl_dispatch(cl_t *cl)
{
    uint64_t v;
    if (read(cl->efd, &v, sizeof v) < 0 && errno != EAGAIN)
        log_warn("cluster: eventfd read failed: %s", strerror(errno));
    pthread_mutex_lock(&cl->mu);
    cl_item_t *it = cl->q_head;
    cl->q_head = cl->q_tail = NULL;
    cl->q_bytes = 0;
    pthread_cond_broadcast(&cl->q_cond);
    pthread_mutex_unlock(&cl->mu);

    size_t ran = 0;
    const cl_callbacks_t *cb = &cl->cb;
    while (it) {
        cl_item_t *next = it->next;
        cl_part_t *part = &cl->parts[it->p];
        bool current = true;
        if (it->fail_mark || it->kind == CLI_OWNER || it->kind == CLI_RECORDS) {
            pthread_mutex_lock(&cl->mu);
            /* A failure stops counting before its callback: the broker rolls back in it and
             * may append again right away once the last one is seen. */
            if (it->fail_mark) part->failing--;
            if (it->kind == CLI_OWNER && it->tk) part->broker_gen = it->gen;
            if (it->kind == CLI_RECORDS) current = it->gen == part->cons_gen;
            pthread_mutex_unlock(&cl->mu);
        }
        switch (it->kind) {
        case CLI_APPENDED:
            if (cb->appended) cb->appended(cb->ctx, it->p, it->ctx, it->st);
            break;
        case CLI_OWNER:
            if (cb->owner) cb->owner(cb->ctx, it->p, it->tk, it->st);
            break;
        case CLI_RECORDS:
            if (current && cb->records)
                cb->records(cb->ctx, it->p, it->seq, it->recs, it->n, it->pending);
            break;
        case CLI_FORWARDED: {
            cl_fwd_t *fwd = malloc(sizeof *fwd);
            if (!fwd) abort();
            fwd->msg = it->msg;
            it->msg = NULL;
            if (cb->forwarded)
                cb->forwarded(cb->ctx, it->p, fwd, (const uint8_t *)natsMsg_GetData(fwd->msg),
                              (size_t)natsMsg_GetDataLength(fwd->msg));
            else
                cl_forward_reply(cl, fwd, NULL, 0);
            break;
        }
        case CLI_FORWARD_DONE:
            if (cb->forward_done)
                cb->forward_done(cb->ctx, it->ctx, it->st,
                                 it->msg ? (const uint8_t *)natsMsg_GetData(it->msg) : NULL,
                                 it->msg ? (size_t)natsMsg_GetDataLength(it->msg) : 0);
            break;
        }
        cl_item_free(it);
        ran++;
        it = next;
    }
    return ran;
}

unsigned cl_partitions(const cl_t *cl)
{
    return cl->n_parts;
}

unsigned cl_partition_of(const cl_t *cl, const char *user, size_t len)
{
    if (len == 1 && user[0] == '*') return cl->cfg.partitions;
    return shard_gateway(user, len, cl->cfg.partitions);
}

bool cl_owns(cl_t *cl, unsigned p)
{
    if (p >= cl->n_parts) return false;
    uint64_t now = cl_now();
    pthread_mutex_lock(&cl->mu);
    cl_part_t *part = &cl->parts[p];
    bool ok = part->state == CL_P_OWNER && part->broker_gen == part->gen && part->failing == 0 &&
              !(part->commit && part->commit->resolving) &&
              (cl->cfg.test_no_lease_check || now < part->valid_until);
    pthread_mutex_unlock(&cl->mu);
    return ok;
}

void cl_info(cl_t *cl, unsigned p, cl_pinfo_t *out)
{
    memset(out, 0, sizeof *out);
    if (p >= cl->n_parts) return;
    pthread_mutex_lock(&cl->mu);
    const cl_part_t *part = &cl->parts[p];
    out->state = part->state;
    out->owner = part->state == CL_P_FOLLOWER ? part->seen_owner : cl->cfg.node_id;
    out->lease_rev = part->state == CL_P_FOLLOWER ? part->seen_rev : part->lease_rev;
    out->stream_last = part->last_seq > part->consumed ? part->last_seq : part->consumed;
    out->consumed = part->cons ? part->consumed : 0;
    out->rounds_waiting = part->q_count;
    for (const cl_round_t *r = part->commit ? part->commit->rounds : NULL; r; r = r->next)
        out->rounds_waiting++;
    out->in_doubt = part->commit && part->commit->resolving;
    out->preferred = cl_preferred(cl, p, false);
    pthread_mutex_unlock(&cl->mu);
}

void cl_counters(cl_t *cl, cl_counters_t *out)
{
    pthread_mutex_lock(&cl->mu);
    *out = cl->c;
    pthread_mutex_unlock(&cl->mu);
}

unsigned cl_nodes(cl_t *cl, unsigned *ids, unsigned cap)
{
    pthread_mutex_lock(&cl->mu);
    unsigned n = cl->n_live < cap ? cl->n_live : cap;
    memcpy(ids, cl->live, n * sizeof *ids);
    pthread_mutex_unlock(&cl->mu);
    return n;
}

void cl_test_pause(cl_t *cl, bool paused)
{
    pthread_mutex_lock(&cl->mu);
    cl->paused = paused;
    cl_kick(cl);
    pthread_mutex_unlock(&cl->mu);
}

void cl_test_lose_renewals(cl_t *cl, unsigned p, unsigned n)
{
    if (p >= cl->n_parts) return;
    pthread_mutex_lock(&cl->mu);
    cl->parts[p].test_lose_renewals = n;
    pthread_mutex_unlock(&cl->mu);
}

/* Resend the writes in doubt of the partitions whose last resend was answered (slow =
 * false) or was not (slow = true), starting at partition first. */
static void cl_resolve_pass(cl_t *cl, unsigned first, bool slow)
{
    for (unsigned i = 0; i < cl->n_parts; i++) {
        cl_part_t *part = &cl->parts[(first + i) % cl->n_parts];
        pthread_mutex_lock(&cl->mu);
        bool resolve = part->commit && part->commit->resolving;
        pthread_mutex_unlock(&cl->mu);
        if (resolve && part->resolve_slow == slow) cl_resolve(cl, part);
    }
}

/* The control thread: leases, takeovers, writes in doubt, checkpoints, delivery set-up,
 * forward timeouts. Blocking NATS calls happen here, never on the broker thread. */
void *cl_ctl_main(void *arg)
{
    cl_t *cl = arg;
    unsigned cons_next = 0; /* the partition whose consumer is looked at first */
    unsigned res_next = 0;  /* ... whose write in doubt is resent first */
    pthread_mutex_lock(&cl->mu);
    while (!cl->stop) {
        if (!cl->ctl_kick) {
            struct timespec ts;
            cl_tick_deadline(cl->cfg.tick_ms, &ts);
            pthread_cond_timedwait(&cl->ctl_cond, &cl->mu, &ts);
        }
        cl->ctl_kick = false;
        if (cl->stop) break;
        bool paused = cl->paused;
        pthread_mutex_unlock(&cl->mu);

        /* Writes in doubt first (their producers wait), those whose last resend got no
         * answer (a stream without a leader: a resend waits for its timeout) after the node
         * and lease work, each pass from a different partition each tick. */
        unsigned res_first = res_next;
        res_next = (res_next + 1) % cl->n_parts;
        if (!paused) cl_resolve_pass(cl, res_first, false);
        if (!paused) {
            cl_nodes_tick(cl);
            cl_leases_tick(cl);
            cl_resolve_pass(cl, res_first, true);
            for (unsigned p = 0; p < cl->n_parts; p++)
                cl_checkpoint_tick(cl, &cl->parts[p], false);
        }
        /* Consumers last, within a budget, from where the last tick stopped: while streams
         * have no leader (or consumers cannot be placed) each start or check waits for its
         * request timeout, and done for every partition in a row these held writes in doubt
         * and takeovers up for tens of seconds. */
        uint64_t t0 = cl_now(), budget = (uint64_t)cl->cfg.tick_ms * 1000000u;
        unsigned first = cons_next;
        for (unsigned i = 0; i < cl->n_parts && cl_now() - t0 < budget; i++) {
            unsigned p = (first + i) % cl->n_parts;
            cl_consume_tick(cl, &cl->parts[p]);
            cons_next = (p + 1) % cl->n_parts;
        }
        cl_forward_timeouts(cl);

        pthread_mutex_lock(&cl->mu);
    }
    pthread_mutex_unlock(&cl->mu);
    return NULL;
}
