/* cl_append.c - writing drain rounds to a partition's stream: one commit in flight per
 * partition (the rounds queued behind it go together in the next one: group commit), each
 * message fenced on the stream's last sequence and the previous message's id, answers in
 * round order, writes in doubt resolved by retrying the same message (same Nats-Msg-Id). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cl_int.h"
#include "cl_wire.h"
#include "log.h"
#include "model.h"

/* Rounds taken into one commit: a few max_payload messages, so one commit's acknowledgement
 * stays well within ack_wait_ms on a loaded machine. */
#define CL_COMMIT_MAX_BYTES (4u * 1024 * 1024)

/* JetStream API error codes (nats-server errors.json). */
#define CL_JS_WRONG_LAST_SEQ   10071
#define CL_JS_WRONG_LAST_MSGID 10070

cl_result_t cl_result_of(natsStatus s, jsErrCode code)
{
    switch (s) {
    case NATS_OK:
        return CL_R_OK;
    case NATS_NO_RESPONDERS:
        return CL_R_NO_LEADER;
    case NATS_ERR: /* the stream answered with an error: the message was not stored */
        if (code == CL_JS_WRONG_LAST_SEQ || code == CL_JS_WRONG_LAST_MSGID) return CL_R_WRONG_LAST;
        return code ? CL_R_NO_LEADER : CL_R_DOUBT;
    default: /* timeout, connection lost or reconnecting: it may have reached the leader */
        return CL_R_DOUBT;
    }
}

void cl_commit_free(cl_commit_t *c)
{
    if (!c) return;
    for (size_t i = 0; i < c->n_msgs; i++)
        natsMsg_Destroy(c->msgs[i]);
    for (cl_round_t *r = c->rounds, *nx; r; r = nx) {
        nx = r->next;
        free(r);
    }
    free(c->msgs);
    free(c->res);
    free(c->seqs);
    free(c->ids);
    free(c);
}

static void cl_round_answer(cl_t *cl, unsigned p, cl_round_t *r, cl_status_t st)
{
    cl_item_t *it = cl_item_new(CLI_APPENDED, p);
    it->ctx = r->ctx;
    it->st = st;
    it->fail_mark = st != CL_OK;
    switch (st) {
    case CL_OK:
        cl->c.rounds_ok++;
        break;
    case CL_UNAVAILABLE:
        cl->c.rounds_unavailable++;
        break;
    case CL_FENCED:
        cl->c.rounds_fenced++;
        break;
    case CL_UNKNOWN:
        cl->c.rounds_unknown++;
        break;
    }
    cl_push(cl, it);
    free(r);
}

/* Fail every queued round (not the commit in flight) with st. */
static void cl_fail_queued(cl_t *cl, cl_part_t *part, cl_status_t st)
{
    for (cl_round_t *r = part->q_head, *nx; r; r = nx) {
        nx = r->next;
        cl_round_answer(cl, part->idx, r, r->doomed != CL_OK ? r->doomed : st);
    }
    part->q_head = part->q_tail = NULL;
    part->q_count = 0;
}

static bool cl_lease_ok(const cl_t *cl, const cl_part_t *part, uint64_t now)
{
    return cl->cfg.test_no_lease_check || now < part->valid_until;
}

/* Message i of commit c with body (len bytes) and the chain's headers. */
static int cl_commit_msg(cl_t *cl, cl_part_t *part, cl_commit_t *c, size_t i, const uint8_t *body,
                         size_t len)
{
    char subj[96], num[24];
    cl_subject(cl, part->idx, 'r', subj, sizeof subj);
    natsMsg *m = NULL;
    if (natsMsg_Create(&m, subj, NULL, (const char *)body, (int)len) != NATS_OK) return -1;
    snprintf(c->ids[i], CL_ID_MAX, "%u.%llu.%llu", cl->cfg.node_id, (unsigned long long)part->epoch,
             (unsigned long long)(c->base + i + 1));
    snprintf(num, sizeof num, "%llu", (unsigned long long)(c->base + i));
    /* Raw headers: an expected last sequence of 0 (empty stream) is "unset" in jsPubOptions. */
    natsStatus s = natsMsgHeader_Set(m, "Nats-Msg-Id", c->ids[i]);
    if (s == NATS_OK) s = natsMsgHeader_Set(m, "Nats-Expected-Last-Sequence", num);
    if (s == NATS_OK && i > 0) s = natsMsgHeader_Set(m, "Nats-Expected-Last-Msg-Id", c->ids[i - 1]);
    if (s != NATS_OK) {
        natsMsg_Destroy(m);
        return -1;
    }
    c->msgs[i] = m;
    return 0;
}

/* Walk the rounds' records packed into messages of at most max_body bytes: with body NULL
 * only count the messages, else build them. Returns the message count or -1. */
static long cl_commit_walk(cl_t *cl, cl_part_t *part, cl_commit_t *c, uint8_t *body)
{
    size_t blen = CL_MSG_HEAD, n = 0;
    uint32_t count = 0;
    for (const cl_round_t *r = c->rounds; r; r = r->next) {
        const uint8_t *p = r->data, *end = r->data + r->len;
        while (p < end) {
            const uint8_t *at = p;
            cl_rec_t rec;
            if (!cl_wire_next(&p, end, &rec)) abort(); /* encoded by cl_append_round */
            size_t sz = (size_t)(p - at);
            if (count && blen + sz > cl->max_body) {
                if (body) {
                    cl_wire_msg_head(body, CL_KIND_ROUND, count);
                    if (cl_commit_msg(cl, part, c, n, body, blen) < 0) return -1;
                }
                n++;
                blen = CL_MSG_HEAD;
                count = 0;
            }
            if (body) memcpy(body + blen, at, sz);
            blen += sz;
            count++;
        }
    }
    if (body) {
        cl_wire_msg_head(body, CL_KIND_ROUND, count);
        if (cl_commit_msg(cl, part, c, n, body, blen) < 0) return -1;
    }
    return (long)n + 1;
}

static int cl_commit_pack(cl_t *cl, cl_part_t *part, cl_commit_t *c)
{
    size_t n = (size_t)cl_commit_walk(cl, part, c, NULL);
    c->msgs = calloc(n, sizeof *c->msgs);
    c->res = calloc(n, sizeof *c->res);
    c->seqs = calloc(n, sizeof *c->seqs);
    c->ids = calloc(n, sizeof *c->ids);
    /* A record never exceeds max_body (cl_open checked max_payload against 64 KiB). */
    uint8_t *body = malloc(cl->max_body + HERALD_MAX_NOTIF_BYTES + 256);
    if (!c->msgs || !c->res || !c->seqs || !c->ids || !body) abort();
    c->n_msgs = n;
    long built = cl_commit_walk(cl, part, c, body);
    free(body);
    if (built < 0) return -1;
    cl->c.commits++;
    cl->c.messages_appended += n;
    return 0;
}

cl_commit_t *cl_commit_next(cl_t *cl, cl_part_t *part)
{
    if (part->commit) return NULL;
    while (part->q_head && part->q_head->doomed != CL_OK) {
        cl_round_t *r = part->q_head;
        part->q_head = r->next;
        if (!part->q_head) part->q_tail = NULL;
        part->q_count--;
        cl_round_answer(cl, part->idx, r, r->doomed);
    }
    if (!part->q_head) return NULL;
    bool writable = (part->state == CL_P_OWNER || part->state == CL_P_RELEASING) &&
                    cl_lease_ok(cl, part, cl_now());
    if (!writable) {
        if (part->state == CL_P_OWNER) cl_step_down(cl, part, CL_FENCED, "lease expired");
        cl_fail_queued(cl, part, CL_FENCED);
        return NULL;
    }
    cl_commit_t *c = calloc(1, sizeof *c);
    if (!c) abort();
    c->base = part->last_seq;
    cl_round_t **tail = &c->rounds;
    size_t bytes = 0;
    while (part->q_head && part->q_head->doomed == CL_OK &&
           (bytes == 0 || bytes + part->q_head->len <= CL_COMMIT_MAX_BYTES)) {
        cl_round_t *r = part->q_head;
        part->q_head = r->next;
        part->q_count--;
        r->next = NULL;
        *tail = r;
        tail = &r->next;
        bytes += r->len;
    }
    if (!part->q_head) part->q_tail = NULL;
    part->commit = c;
    if (cl_commit_pack(cl, part, c) < 0) {
        /* Out of memory in cnats: nothing was sent, so nothing is stored. */
        log_error("cluster: partition %u: cannot build a message; rounds refused", part->idx);
        for (cl_round_t *r = c->rounds, *nx; r; r = nx) {
            nx = r->next;
            cl_round_answer(cl, part->idx, r, CL_UNAVAILABLE);
        }
        c->rounds = NULL;
        cl_commit_free(c);
        part->commit = NULL;
        cl_fail_queued(cl, part, CL_UNAVAILABLE);
        return NULL;
    }
    return c;
}

/* Every stored record of a successful commit updates the partition's durable view. */
static void cl_commit_success(cl_t *cl, cl_part_t *part, cl_commit_t *c)
{
    for (cl_round_t *r = c->rounds; r; r = r->next) {
        const uint8_t *p = r->data, *end = r->data + r->len;
        cl_rec_t rec;
        while (p < end && cl_wire_next(&p, end, &rec)) {
            if (part->st) cl_state_apply(part->st, &rec);
            cl->c.records_appended++;
            cl->c.bytes_appended += rec.len;
        }
    }
    part->last_seq = c->seqs[c->n_msgs - 1];
    memcpy(part->last_id, c->ids[c->n_msgs - 1], CL_ID_MAX);
    part->dirty = true;
    for (cl_round_t *r = c->rounds, *nx; r; r = nx) {
        nx = r->next;
        cl_round_answer(cl, part->idx, r, CL_OK);
    }
    c->rounds = NULL;
    cl_commit_free(c);
    part->commit = NULL;
    if (part->state == CL_P_RELEASING) cl_kick(cl);
}

/* The commit failed with st: its rounds and every queued one (their seqs follow the failed
 * ones) fail; FENCED and UNKNOWN also end the ownership. */
static void cl_commit_fail(cl_t *cl, cl_part_t *part, cl_commit_t *c, cl_status_t st,
                           const char *why)
{
    if (st != CL_UNAVAILABLE) cl_step_down(cl, part, st, why);
    for (cl_round_t *r = c->rounds, *nx; r; r = nx) {
        nx = r->next;
        cl_round_answer(cl, part->idx, r, st);
    }
    c->rounds = NULL;
    cl_commit_free(c);
    part->commit = NULL;
    cl_fail_queued(cl, part, st);
}

/* All messages of c have an answer: done, failed, or in doubt (caller holds mu). */
static void cl_commit_answered(cl_t *cl, cl_part_t *part, cl_commit_t *c)
{
    /* A stored message proves every earlier one was: each expects its predecessor. */
    size_t stored = 0;
    for (size_t i = c->n_msgs; i > 0; i--)
        if (c->res[i - 1] == CL_R_OK) {
            stored = i;
            break;
        }
    for (size_t i = 0; i < c->n_msgs; i++)
        if (c->res[i] == CL_R_DOUBT) c->ever_doubt = true;
    c->resolved = stored;
    if (stored == c->n_msgs) {
        cl_commit_success(cl, part, c);
    } else if (stored == 0 && c->res[0] == CL_R_NO_LEADER) {
        cl_commit_fail(cl, part, c, CL_UNAVAILABLE, NULL);
    } else if (stored == 0 && c->res[0] == CL_R_WRONG_LAST) {
        cl_commit_fail(cl, part, c, CL_FENCED, "another writer appended (fenced)");
    } else {
        c->resolving = true;
        cl->c.in_doubt++;
        log_warn("cluster: partition %u: write of %zu message(s) in doubt after %zu stored; "
                 "retrying, appends refused meanwhile",
                 part->idx, c->n_msgs - stored, stored);
        cl_kick(cl);
    }
}

void cl_commit_publish(cl_t *cl, cl_part_t *part, cl_commit_t *c)
{
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = cl->cfg.ack_wait_ms;
    /* Once its last message is out, c may be answered and freed on an ack thread: nothing
     * of it is read after that but what was copied here. */
    size_t n = c->n_msgs;
    natsMsg *one, **msgs = n == 1 ? &one : malloc(n * sizeof *msgs);
    if (!msgs) abort();
    memcpy(msgs, c->msgs, n * sizeof *msgs);
    for (size_t i = 0; i < n; i++) {
        natsMsg *m = msgs[i];
        natsStatus s = js_PublishMsgAsync(cl->js, &m, &po);
        if (s == NATS_OK) {
            /* cnats's table of pending messages exists from now on (cl_append_reconnected) */
            __atomic_store_n(&cl->async_used, true, __ATOMIC_RELEASE);
            continue;
        }
        /* Not handed over (m is still ours), nor is anything after it: the answers of the
         * earlier ones decide, the rest is in doubt and resolved by retries. */
        log_warn("cluster: partition %u: publish failed: %s", part->idx, natsStatus_GetText(s));
        pthread_mutex_lock(&cl->mu);
        for (size_t j = i; j < c->n_msgs; j++)
            c->res[j] = CL_R_DOUBT;
        c->n_answered += c->n_msgs - i;
        cl_commit_t *next = NULL;
        if (c->n_answered == c->n_msgs) {
            cl_commit_answered(cl, part, c);
            next = cl_commit_next(cl, part);
        }
        pthread_mutex_unlock(&cl->mu);
        if (msgs != &one) free(msgs);
        if (next) cl_commit_publish(cl, part, next);
        return;
    }
    if (msgs != &one) free(msgs);
}

/* The partition a round message's subject "<name>.p.<p>.r" names, or -1. */
static long cl_subject_part(const cl_t *cl, const char *subj)
{
    size_t n = strlen(cl->name);
    if (!subj || strncmp(subj, cl->name, n) != 0 || strncmp(subj + n, ".p.", 3) != 0) return -1;
    char *end;
    unsigned long p = strtoul(subj + n + 3, &end, 10);
    return *end == '.' && p < cl->n_parts ? (long)p : -1;
}

/* The answer to one message of a commit in flight: res (seq when stored). False when no
 * commit in flight holds msg. */
static bool cl_append_answer(cl_t *cl, natsMsg *msg, cl_result_t res, uint64_t seq,
                             const jsPubAckErr *pae)
{
    long p = cl_subject_part(cl, natsMsg_GetSubject(msg));
    if (p < 0) return false; /* not ours: cannot happen */
    cl_part_t *part = &cl->parts[p];
    pthread_mutex_lock(&cl->mu);
    cl_commit_t *c = part->commit, *next = NULL;
    size_t i = 0;
    while (c && i < c->n_msgs && c->msgs[i] != msg)
        i++;
    bool held = c && i < c->n_msgs;
    if (held && c->res[i] == CL_R_PENDING) {
        c->res[i] = res;
        if (res == CL_R_OK) c->seqs[i] = seq;
        if (pae && res != CL_R_NO_LEADER && log_ratelimit_ok(&cl->rl_append, 1))
            log_warn("cluster: partition %ld: append answered %s (%d: %s)", p,
                     natsStatus_GetText(pae->Err), (int)pae->ErrCode,
                     pae->ErrText ? pae->ErrText : "");
        if (++c->n_answered == c->n_msgs) {
            cl_commit_answered(cl, part, c);
            next = cl_commit_next(cl, part);
        }
    }
    pthread_mutex_unlock(&cl->mu);
    if (next) cl_commit_publish(cl, part, next);
    return held;
}

void cl_append_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    (void)js;
    cl_append_answer(closure, msg, pa ? CL_R_OK : cl_result_of(pae->Err, pae->ErrCode),
                     pa ? pa->Sequence : 0, pae);
}

void cl_append_reconnected(cl_t *cl)
{
    natsMsgList pending = {0};
    /* cnats 3.4.1 crashes on a context that has not published asynchronously yet */
    if (!__atomic_load_n(&cl->async_used, __ATOMIC_ACQUIRE)) return;
    if (js_PublishAsyncGetPendingList(&pending, cl->js) != NATS_OK) return; /* none */
    size_t n = 0;
    for (int i = 0; i < pending.Count; i++) {
        natsMsg *m = pending.Msgs[i];
        /* Ours again (as after an ack): the commit holding it destroys it. One that no commit
         * holds cannot be; it is left alone rather than risk freeing it twice. */
        pending.Msgs[i] = NULL;
        if (m && cl_append_answer(cl, m, CL_R_DOUBT, 0, NULL)) n++;
    }
    natsMsgList_Destroy(&pending);
    if (n)
        log_warn("cluster: %zu message(s) in flight when the connection dropped: in doubt now, "
                 "resolved by retries",
                 n);
}

void cl_append_round(cl_t *cl, unsigned p, const cl_rec_t *recs, size_t n, void *round_ctx)
{
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += cl_rec_size(&recs[i]);
    cl_round_t *r = malloc(sizeof *r + len);
    if (!r) abort();
    *r = (cl_round_t){.ctx = round_ctx, .n = (uint32_t)n, .len = len};
    uint8_t *at = r->data;
    for (size_t i = 0; i < n; i++)
        at += cl_wire_rec_put(at, &recs[i]);

    pthread_mutex_lock(&cl->mu);
    if (p >= cl->n_parts) { /* no such partition: refused, without holding partition 0 up */
        cl_item_t *it = cl_item_new(CLI_APPENDED, 0);
        it->ctx = round_ctx;
        it->st = CL_FENCED;
        cl->c.rounds_fenced++;
        cl_push(cl, it);
        pthread_mutex_unlock(&cl->mu);
        free(r);
        return;
    }
    cl_part_t *part = &cl->parts[p];
    uint64_t now = cl_now();
    if (part->state == CL_P_OWNER && !cl_lease_ok(cl, part, now))
        cl_step_down(cl, part, CL_FENCED, "lease not renewed in time");
    bool doubt = part->commit && part->commit->resolving;
    if (part->state != CL_P_OWNER || part->broker_gen != part->gen || part->failing || doubt ||
        n == 0)
        r->doomed =
            part->state == CL_P_OWNER && part->broker_gen == part->gen ? CL_UNAVAILABLE : CL_FENCED;
    cl_commit_t *c = NULL;
    if (r->doomed != CL_OK && !part->commit && !part->q_head) {
        cl_round_answer(cl, p, r, r->doomed); /* nothing ahead of it: answer now */
    } else {
        if (part->q_tail)
            part->q_tail->next = r;
        else
            part->q_head = r;
        part->q_tail = r;
        part->q_count++;
        c = cl_commit_next(cl, part);
    }
    pthread_mutex_unlock(&cl->mu);
    if (c) cl_commit_publish(cl, part, c);
}

void cl_step_down(cl_t *cl, cl_part_t *part, cl_status_t why, const char *reason)
{
    if (part->state == CL_P_FOLLOWER) return;
    log_warn("cluster: partition %u: stepping down (%s)", part->idx, reason ? reason : "");
    bool announced = part->state == CL_P_OWNER; /* the broker was told it owns p */
    part->state = CL_P_FOLLOWER;
    part->release_lease = true; /* give it back if it is still ours: no-op otherwise */
    part->valid_until = 0;
    cl->c.stepdowns++;
    cl_state_free(part->st);
    part->st = NULL;
    for (cl_round_t *r = part->q_head; r; r = r->next)
        if (r->doomed == CL_OK) r->doomed = CL_FENCED;
    if (announced) {
        cl_item_t *it = cl_item_new(CLI_OWNER, part->idx);
        it->st = why;
        cl_push(cl, it);
    }
    if (!part->commit) cl_fail_queued(cl, part, CL_FENCED);
    cl_kick(cl);
}

void cl_release_begin(cl_t *cl, cl_part_t *part)
{
    if (part->state != CL_P_OWNER) return;
    log_info("cluster: partition %u: handing over", part->idx);
    part->state = CL_P_RELEASING;
    cl_item_t *it = cl_item_new(CLI_OWNER, part->idx);
    it->st = CL_FENCED;
    cl_push(cl, it);
    cl_kick(cl);
}

void cl_resolve(cl_t *cl, cl_part_t *part)
{
    jsPubOptions po;
    jsPubOptions_Init(&po);
    /* A resend waits 1 s at most: a stream without a leader does not answer (its followers
     * hold the subject), and this thread resolves every partition in turn; one that gets no
     * answer is retried next tick, as often as needed (same msg-id). */
    po.MaxWait = cl->cfg.ack_wait_ms < 1000 ? cl->cfg.ack_wait_ms : 1000;
    for (;;) {
        pthread_mutex_lock(&cl->mu);
        cl_commit_t *c = part->commit, *next = NULL;
        if (!c || !c->resolving) {
            pthread_mutex_unlock(&cl->mu);
            return;
        }
        if (!cl_lease_ok(cl, part, cl_now()) || part->state == CL_P_FOLLOWER) {
            /* Whatever reached the stream stays there; the next owner's rebuild reads it. */
            cl_commit_fail(cl, part, c, CL_UNKNOWN, "lease ran out with a write in doubt");
            next = cl_commit_next(cl, part);
            pthread_mutex_unlock(&cl->mu);
            if (next) cl_commit_publish(cl, part, next);
            return;
        }
        size_t i = c->resolved;
        natsMsg *m = c->msgs[i];
        cl->c.commit_retries++;
        pthread_mutex_unlock(&cl->mu);

        jsPubAck *pa = NULL;
        jsErrCode code = 0;
        natsStatus s = js_PublishMsg(&pa, cl->jsc, m, &po, &code);
        cl_result_t r = cl_result_of(s, code);
        part->resolve_slow = r == CL_R_DOUBT; /* control thread only */

        pthread_mutex_lock(&cl->mu);
        bool more = false;
        if (r == CL_R_OK) {
            c->seqs[i] = pa->Sequence;
            if (++c->resolved == c->n_msgs) {
                log_info("cluster: partition %u: write in doubt resolved: stored%s", part->idx,
                         pa->Duplicate ? " (it had been)" : "");
                c->resolving = false;
                cl_commit_success(cl, part, c);
                next = cl_commit_next(cl, part);
            } else {
                more = true;
            }
        } else if (r == CL_R_WRONG_LAST) {
            /* Our message would have been a duplicate if it had been stored: someone else
             * wrote. Report UNKNOWN all the same when part of the commit is stored. */
            cl_commit_fail(cl, part, c, c->resolved || c->ever_doubt ? CL_UNKNOWN : CL_FENCED,
                           "another writer appended while a write was in doubt");
            next = cl_commit_next(cl, part);
        } else if (r == CL_R_DOUBT) {
            c->ever_doubt = true;
        }
        pthread_mutex_unlock(&cl->mu);
        jsPubAck_Destroy(pa);
        if (next) cl_commit_publish(cl, part, next);
        if (!more) return;
    }
}
