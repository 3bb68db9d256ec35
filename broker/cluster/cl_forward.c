/* cl_forward.c - publishes that reach a node which does not own their partition go to the
 * owner as NATS requests on <name>.in.<p> (the owner subscribes while it owns p, in one
 * queue group), answered with the owner's response bytes. Also the liveness subject
 * <name>.node.<id> other nodes probe. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cl_int.h"
#include "log.h"

static cl_freq_t **cl_freq_slot(cl_t *cl, uint64_t id)
{
    cl_freq_t **slot = &cl->freq_tab[id % CL_FREQ_BUCKETS];
    while (*slot && (*slot)->id != id)
        slot = &(*slot)->hnext;
    return slot;
}

/* Unlink r from the table and the FIFO (caller holds mu). */
static void cl_freq_remove(cl_t *cl, cl_freq_t *r)
{
    cl_freq_t **slot = cl_freq_slot(cl, r->id);
    if (*slot) *slot = r->hnext;
    if (r->prev)
        r->prev->next = r->next;
    else
        cl->freq_head = r->next;
    if (r->next)
        r->next->prev = r->prev;
    else
        cl->freq_tail = r->prev;
}

static void cl_forward_done(cl_t *cl, cl_freq_t *r, cl_status_t st, natsMsg *msg)
{
    cl_item_t *it = cl_item_new(CLI_FORWARD_DONE, 0);
    it->ctx = r->ctx;
    it->st = st;
    it->msg = msg;
    if (st != CL_OK) cl->c.forward_unavailable++;
    cl_push(cl, it);
    free(r);
}

/* An answer on our inbox: "<inbox>.<id>". */
static void cl_forward_answer(natsConnection *nc, natsSubscription *sub, natsMsg *msg,
                              void *closure)
{
    (void)nc;
    (void)sub;
    cl_t *cl = closure;
    const char *subj = natsMsg_GetSubject(msg);
    size_t n = strlen(cl->inbox);
    if (strncmp(subj, cl->inbox, n) != 0 || subj[n] != '.') {
        natsMsg_Destroy(msg);
        return;
    }
    uint64_t id = strtoull(subj + n + 1, NULL, 10);
    pthread_mutex_lock(&cl->mu);
    cl_freq_t *r = *cl_freq_slot(cl, id);
    if (r) {
        cl_freq_remove(cl, r);
        /* No responders: nobody subscribes to <name>.in.<p>, i.e. p has no owner now. */
        if (natsMsg_IsNoResponders(msg)) {
            cl_forward_done(cl, r, CL_UNAVAILABLE, NULL);
            natsMsg_Destroy(msg);
        } else {
            cl_forward_done(cl, r, CL_OK, msg);
        }
    } else {
        natsMsg_Destroy(msg); /* timed out already */
    }
    pthread_mutex_unlock(&cl->mu);
}

static void cl_node_ping(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    (void)sub;
    (void)closure;
    const char *reply = natsMsg_GetReply(msg);
    if (reply) natsConnection_PublishString(nc, reply, "");
    natsMsg_Destroy(msg);
}

int cl_forward_open(cl_t *cl)
{
    char *inbox = NULL;
    if (natsInbox_Create((natsInbox **)&inbox) != NATS_OK) return -HERR_IO;
    snprintf(cl->inbox, sizeof cl->inbox, "%s", inbox);
    natsInbox_Destroy((natsInbox *)inbox);
    char subj[96];
    snprintf(subj, sizeof subj, "%s.*", cl->inbox);
    if (natsConnection_Subscribe(&cl->inbox_sub, cl->nc, subj, cl_forward_answer, cl) != NATS_OK)
        return -HERR_IO;
    natsSubscription_SetPendingLimits(cl->inbox_sub, -1, -1);
    cl_subject(cl, cl->cfg.node_id, 'n', subj, sizeof subj);
    if (natsConnection_Subscribe(&cl->node_sub, cl->nc, subj, cl_node_ping, cl) != NATS_OK)
        return -HERR_IO;
    return 0;
}

void cl_forward_close(cl_t *cl)
{
    if (cl->inbox_sub) natsSubscription_Unsubscribe(cl->inbox_sub);
    for (unsigned p = 0; p < cl->n_parts; p++)
        if (cl->parts[p].in_sub) natsSubscription_Unsubscribe(cl->parts[p].in_sub);
}

/* The subscriptions themselves are destroyed once the connection is closed (cl_close). */
void cl_forward_free(cl_t *cl)
{
    natsSubscription_Destroy(cl->inbox_sub);
    natsSubscription_Destroy(cl->node_sub);
    cl->inbox_sub = cl->node_sub = NULL;
    for (unsigned p = 0; p < cl->n_parts; p++) {
        natsSubscription_Destroy(cl->parts[p].in_sub);
        cl->parts[p].in_sub = NULL;
    }
    for (cl_freq_t *r = cl->freq_head, *nx; r; r = nx) {
        nx = r->next;
        free(r);
    }
    cl->freq_head = cl->freq_tail = NULL;
}

void cl_forward_in(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    (void)nc;
    (void)sub;
    cl_part_t *part = closure;
    cl_t *cl = part->cl;
    if (!natsMsg_GetReply(msg)) { /* nobody to answer: not a forward */
        natsMsg_Destroy(msg);
        return;
    }
    cl_item_t *it = cl_item_new(CLI_FORWARDED, part->idx);
    it->msg = msg;
    pthread_mutex_lock(&cl->mu);
    cl->c.forwarded_in++;
    cl_push(cl, it);
    pthread_mutex_unlock(&cl->mu);
}

int cl_forward(cl_t *cl, unsigned p, const void *frame, size_t len, void *req_ctx)
{
    if (p >= cl->n_parts) return -HERR_BAD_VALUE;
    cl_freq_t *r = calloc(1, sizeof *r);
    if (!r) abort();
    pthread_mutex_lock(&cl->mu);
    r->id = ++cl->next_req;
    r->ctx = req_ctx;
    r->p = p;
    r->owner = cl->parts[p].seen_owner;
    r->inc = cl->parts[p].seen_inc;
    r->deadline = cl_now() + (uint64_t)cl->cfg.forward_timeout_ms * 1000000u;
    *cl_freq_slot(cl, r->id) = r;
    r->prev = cl->freq_tail;
    if (cl->freq_tail)
        cl->freq_tail->next = r;
    else
        cl->freq_head = r;
    cl->freq_tail = r;
    cl->c.forwarded_out++;
    uint64_t id = r->id;
    pthread_mutex_unlock(&cl->mu);

    char subj[96], reply[96];
    cl_subject(cl, p, 'i', subj, sizeof subj);
    snprintf(reply, sizeof reply, "%s.%llu", cl->inbox, (unsigned long long)id);
    natsStatus s = natsConnection_PublishRequest(cl->nc, subj, reply, frame, (int)len);
    if (s == NATS_OK) return 0;
    if (log_ratelimit_ok(&cl->rl_forward, 1))
        log_warn("cluster: forward to partition %u: %s", p, natsStatus_GetText(s));
    pthread_mutex_lock(&cl->mu);
    cl_freq_t *still = *cl_freq_slot(cl, id);
    bool failed = still != NULL; /* else answered meanwhile: the callback comes */
    if (still) {
        cl_freq_remove(cl, still);
        free(still);
        cl->c.forwarded_out--;
    }
    pthread_mutex_unlock(&cl->mu);
    return failed ? -HERR_IO : 0;
}

void cl_forward_reply(cl_t *cl, cl_fwd_t *req, const void *resp, size_t len)
{
    const char *reply = natsMsg_GetReply(req->msg);
    if (reply && natsConnection_Publish(cl->nc, reply, resp, (int)len) != NATS_OK) {
        log_warn("cluster: answer to a forwarded publish not sent: %s", nats_GetLastError(NULL));
    }
    natsMsg_Destroy(req->msg);
    free(req);
}

void cl_forward_timeouts(cl_t *cl)
{
    uint64_t now = cl_now();
    pthread_mutex_lock(&cl->mu);
    while (cl->freq_head && cl->freq_head->deadline <= now) {
        cl_freq_t *r = cl->freq_head;
        cl_freq_remove(cl, r);
        cl_forward_done(cl, r, CL_UNAVAILABLE, NULL);
    }
    pthread_mutex_unlock(&cl->mu);
}

void cl_forward_fail(cl_t *cl, unsigned owner)
{
    pthread_mutex_lock(&cl->mu);
    for (cl_freq_t *r = cl->freq_head, *nx; r; r = nx) {
        nx = r->next;
        if (owner && r->owner != owner) continue;
        cl_freq_remove(cl, r);
        cl_forward_done(cl, r, CL_UNAVAILABLE, NULL);
    }
    pthread_mutex_unlock(&cl->mu);
}

/* Only a restart is acted on here. Any other change of holder leaves the earlier one able to
 * answer (a handover: it finishes what it holds), or it is dead and the probes say so within
 * a second (cl_nodes_tick -> cl_forward_fail). A restarted process answers the node's probes
 * itself, so without this the forwards its predecessor held waited for their timeout. */
void cl_forward_moved(cl_t *cl, unsigned p)
{
    const cl_part_t *part = &cl->parts[p];
    if (!part->seen_owner) return;
    for (cl_freq_t *r = cl->freq_head, *nx; r; r = nx) {
        nx = r->next;
        if (r->p != p || r->owner != part->seen_owner || r->inc == part->seen_inc) continue;
        cl_freq_remove(cl, r);
        cl_forward_done(cl, r, CL_UNAVAILABLE, NULL);
    }
}
