/* cl_lease.c - who owns which partition: node keys (liveness), probes, and the partition
 * leases in the <name>_cluster KV bucket (create / renew by revision / TTL), with the
 * preferred owner chosen by rendezvous hashing over the live nodes. Control thread only.
 *
 * A lease is an optimisation, not the safety: the stream fence (cl_append.c) keeps a stale
 * owner from writing whatever the bucket says. So a lease may be taken from an owner whose
 * connection is gone (probe: no responders) before its TTL runs out. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cl_int.h"
#include "log.h"
#include "shard.h"

#define CL_NODES_EVERY_NS 1000000000ull /* node listing and probes */

static uint64_t cl_ms(uint32_t ms)
{
    return (uint64_t)ms * 1000000u;
}

/* How long before its TTL runs out a lease stops counting as ours: covers a pause between
 * the check and the write (the stream fence covers the rest). */
static uint64_t cl_margin(const cl_t *cl)
{
    uint64_t m = cl_ms(cl->cfg.lease_ttl_ms) / 5;
    return m > 1000000000ull ? m : 1000000000ull;
}

unsigned cl_preferred(const cl_t *cl, unsigned p, bool reachable)
{
    char key[16];
    int klen = snprintf(key, sizeof key, "p%u", p);
    const unsigned *ids = reachable ? cl->reach : cl->live;
    unsigned n = reachable ? cl->n_reach : cl->n_live, best = 0;
    uint64_t best_w = 0;
    for (unsigned i = 0; i < n; i++) {
        uint64_t w = shard_weight(key, (size_t)klen, ids[i]);
        if (!best || w > best_w || (w == best_w && ids[i] < best)) {
            best = ids[i];
            best_w = w;
        }
    }
    return best;
}

/* The reachability record of node (created on first use), or NULL when the table is full. */
static uint64_t *cl_unreach_of(cl_t *cl, unsigned node)
{
    for (unsigned i = 0; i < CL_MAX_NODES; i++)
        if (cl->unreach[i].node == node) return &cl->unreach[i].since;
    for (unsigned i = 0; i < CL_MAX_NODES; i++)
        if (cl->unreach[i].node == 0) {
            cl->unreach[i].node = node;
            cl->unreach[i].since = 0;
            return &cl->unreach[i].since;
        }
    return NULL;
}

/* node's connection has been gone (probes without responders) for the grace period. */
static bool cl_node_dead(cl_t *cl, unsigned node, uint64_t now)
{
    for (unsigned i = 0; i < CL_MAX_NODES; i++)
        if (cl->unreach[i].node == node)
            return cl->unreach[i].since &&
                   now - cl->unreach[i].since >= cl_ms(cl->cfg.probe_grace_ms);
    return false;
}

/* Ask node's connection for a sign of life: true unless nobody subscribes to its subject
 * (its connection is gone). A node that is slow to answer counts as alive. */
static bool cl_probe(cl_t *cl, unsigned node)
{
    char subj[64];
    cl_subject(cl, node, 'n', subj, sizeof subj);
    natsMsg *reply = NULL;
    natsStatus s = natsConnection_RequestString(&reply, cl->nc, subj, "", 500);
    natsMsg_Destroy(reply);
    return s != NATS_NO_RESPONDERS;
}

/* Node ids with a key in the bucket (listed through the stream's subjects, one API call). */
static int cl_list_nodes(cl_t *cl, unsigned *ids, unsigned cap)
{
    char stream[64], filter[96];
    snprintf(stream, sizeof stream, "KV_%s_cluster", cl->name);
    snprintf(filter, sizeof filter, "$KV.%s_cluster.node.>", cl->name);
    jsOptions o;
    jsOptions_Init(&o);
    o.Stream.Info.SubjectsFilter = filter;
    jsStreamInfo *si = NULL;
    jsErrCode code = 0;
    if (js_GetStreamInfo(&si, cl->jsc, stream, &o, &code) != NATS_OK) {
        return -1;
    }
    unsigned n = 0;
    size_t pfx = strlen(filter) - 1; /* up to the '>' */
    if (si->State.Subjects)
        for (int i = 0; i < si->State.Subjects->Count && n < cap; i++) {
            const char *sub = si->State.Subjects->List[i].Subject;
            if (si->State.Subjects->List[i].Msgs == 0 || strncmp(sub, filter, pfx) != 0) continue;
            unsigned long id = strtoul(sub + pfx, NULL, 10);
            if (id > 0 && id <= UINT32_MAX) ids[n++] = (unsigned)id;
        }
    jsStreamInfo_Destroy(si);
    return (int)n;
}

/* This node's key, every TTL/3 (the keeper thread). */
static void cl_node_put(cl_t *cl)
{
    uint64_t now = cl_now();
    if (now < cl->node_put_at) return;
    char key[32], val[16];
    snprintf(key, sizeof key, "node.%u", cl->cfg.node_id);
    snprintf(val, sizeof val, "%u", cl->cfg.node_id);
    uint64_t rev;
    if (kvStore_PutString(&rev, cl->kv, key, val) == NATS_OK) {
        cl->node_put_at = now + cl_ms(cl->cfg.lease_ttl_ms) / 3;
    } else {
        cl->node_put_at = now + cl_ms(cl->cfg.tick_ms);
    }
}

void cl_nodes_tick(cl_t *cl)
{
    uint64_t now = cl_now();
    if (now < cl->nodes_read_at) return;
    cl->nodes_read_at = now + CL_NODES_EVERY_NS;
    unsigned ids[CL_MAX_NODES], live[CL_MAX_NODES], reach[CL_MAX_NODES], n_live = 0, n_reach = 0;
    int n = cl_list_nodes(cl, ids, CL_MAX_NODES);
    if (n < 0) { /* keep the last view, but take no lease on it */
        pthread_mutex_lock(&cl->mu);
        cl->nodes_ok = false;
        pthread_mutex_unlock(&cl->mu);
        return;
    }
    /* Probe the listed nodes and the holders of leases (listed or not). */
    unsigned probe[2 * CL_MAX_NODES], n_probe = 0;
    for (int i = 0; i < n; i++)
        if (ids[i] != cl->cfg.node_id) probe[n_probe++] = ids[i];
    pthread_mutex_lock(&cl->mu);
    for (unsigned p = 0; p < cl->n_parts; p++) {
        unsigned o = cl->parts[p].seen_owner;
        bool known = o == 0 || o == cl->cfg.node_id;
        for (unsigned j = 0; j < n_probe && !known; j++)
            known = probe[j] == o;
        if (!known && n_probe < 2 * CL_MAX_NODES) probe[n_probe++] = o;
    }
    pthread_mutex_unlock(&cl->mu);
    live[n_live++] = reach[n_reach++] = cl->cfg.node_id;
    for (unsigned i = 0; i < n_probe; i++) {
        uint64_t *since = cl_unreach_of(cl, probe[i]);
        bool up = cl_probe(cl, probe[i]);
        /* Its connection is gone: forwards it was sent will never be answered. */
        if (!up) cl_forward_fail(cl, probe[i]);
        if (since && up) *since = 0;
        if (since && !up && *since == 0) *since = now;
        bool listed = false;
        for (int j = 0; j < n && !listed; j++)
            listed = ids[j] == probe[i];
        if (!listed) continue;
        if (!cl_node_dead(cl, probe[i], now) && n_live < CL_MAX_NODES) live[n_live++] = probe[i];
        if (up && n_reach < CL_MAX_NODES) reach[n_reach++] = probe[i];
    }
    pthread_mutex_lock(&cl->mu);
    if (n_live != cl->n_live || memcmp(live, cl->live, n_live * sizeof *live) != 0) {
        char list[256];
        size_t off = 0;
        for (unsigned i = 0; i < n_live && off < sizeof list; i++)
            off += (size_t)snprintf(list + off, sizeof list - off, " %u", live[i]);
        log_info("cluster: live nodes:%s", list);
    }
    memcpy(cl->live, live, n_live * sizeof *live);
    cl->n_live = n_live;
    memcpy(cl->reach, reach, n_reach * sizeof *reach);
    cl->n_reach = n_reach;
    cl->nodes_ok = true;
    pthread_mutex_unlock(&cl->mu);
}

static void cl_lease_key(unsigned p, char *out, size_t cap)
{
    snprintf(out, cap, "lease.%u", p);
}

/* A lease's value: "<node>.<incarnation>" ("0" when released). The incarnation tells a
 * node's processes apart: forwards sent to one that died are refused once another one (of
 * the same node id, restarted) holds the lease, not after their timeout. */

/* A lease value "<node>.<incarnation>" ("0" when released; "<node>" from an older build). */
static void cl_lease_parse(const void *data, int len, unsigned *owner, uint64_t *inc)
{
    char val[48] = "", *end;
    if (len > 0 && len < (int)sizeof val) memcpy(val, data, (size_t)len);
    *owner = (unsigned)strtoul(val, &end, 10);
    *inc = *end == '.' ? strtoull(end + 1, NULL, 10) : 0;
}

/* Read p's lease: 1 with owner (0 = released), its incarnation and revision, 0 if absent,
 * -1 on error. A direct get (the bucket has AllowDirect): any replica may answer, one that
 * lags behind too, so what it shows may be older than the last write. */
static int cl_lease_read(cl_t *cl, unsigned p, unsigned *owner, uint64_t *inc, uint64_t *rev)
{
    char key[32];
    cl_lease_key(p, key, sizeof key);
    kvEntry *e = NULL;
    natsStatus s = kvStore_Get(&e, cl->kv, key);
    if (s == NATS_NOT_FOUND) {
        return 0;
    }
    if (s != NATS_OK) {
        return -1;
    }
    cl_lease_parse(kvEntry_Value(e), kvEntry_ValueLen(e), owner, inc);
    *rev = kvEntry_Revision(e);
    kvEntry_Destroy(e);
    return 1;
}

/* The same, answered by the bucket stream's leader: js_GetLastMsg asks
 * $JS.API.STREAM.MSG.GET (cnats 3.4.1; not the direct get, which any replica answers), and
 * only the leader answers that, with every write it has stored. */
static int cl_lease_read_leader(cl_t *cl, unsigned p, unsigned *owner, uint64_t *inc, uint64_t *rev)
{
    char stream[64], subj[96];
    snprintf(stream, sizeof stream, "KV_%s_cluster", cl->name);
    snprintf(subj, sizeof subj, "$KV.%s_cluster.lease.%u", cl->name, p);
    natsMsg *m = NULL;
    jsErrCode code = 0;
    natsStatus s = js_GetLastMsg(&m, cl->jsc, stream, subj, NULL, &code);
    if (s == NATS_NOT_FOUND) return 0;
    if (s != NATS_OK) return -1;
    const char *op = NULL; /* a delete or purge marker: no lease */
    bool gone = natsMsgHeader_Get(m, "KV-Operation", &op) == NATS_OK && op && *op;
    if (!gone) {
        cl_lease_parse(natsMsg_GetData(m), natsMsg_GetDataLength(m), owner, inc);
        *rev = natsMsg_GetSequence(m);
    }
    natsMsg_Destroy(m);
    return gone ? 0 : 1;
}

/* Write p's lease with value node (0 = released), expecting revision `last` (0 = absent). */
static natsStatus cl_lease_write(cl_t *cl, unsigned p, unsigned node, uint64_t last, uint64_t *rev)
{
    char key[32], val[48];
    cl_lease_key(p, key, sizeof key);
    int len = node ? snprintf(val, sizeof val, "%u.%llu", node, (unsigned long long)cl->incarnation)
                   : snprintf(val, sizeof val, "0");
    natsStatus s = last ? kvStore_Update(rev, cl->kv, key, val, len, last)
                        : kvStore_Create(rev, cl->kv, key, val, len);
    return s;
}

int cl_lease_release(cl_t *cl, cl_part_t *part)
{
    pthread_mutex_lock(&cl->mu);
    uint64_t rev = part->lease_rev;
    part->release_lease = false;
    pthread_mutex_unlock(&cl->mu);
    if (!rev) return 0;
    uint64_t nrev;
    natsStatus s = cl_lease_write(cl, part->idx, 0, rev, &nrev);
    pthread_mutex_lock(&cl->mu);
    part->lease_rev = 0;
    if (part->state == CL_P_RELEASING) part->state = CL_P_FOLLOWER;
    pthread_mutex_unlock(&cl->mu);
    if (s == NATS_OK) log_info("cluster: partition %u: lease released", part->idx);
    return s == NATS_OK ? 0 : -HERR_IO;
}

/* Take p's lease (create when last is 0, else replace revision last) and take over. */
static void cl_lease_take(cl_t *cl, cl_part_t *part, uint64_t last, bool forced, unsigned from)
{
    uint64_t t = cl_now(), rev = 0;
    if (cl_lease_write(cl, part->idx, cl->cfg.node_id, last, &rev) != NATS_OK) return;
    if (forced)
        log_warn("cluster: partition %u: lease taken from unreachable node %u", part->idx, from);
    pthread_mutex_lock(&cl->mu);
    if (forced) cl->c.leases_forced++;
    part->state = CL_P_ACQUIRING;
    part->epoch = part->lease_rev = rev;
    part->valid_until = t + cl_ms(cl->cfg.lease_ttl_ms) - cl_margin(cl);
    part->renew_at = t + cl_ms(cl->cfg.lease_ttl_ms) / 3;
    part->release_lease = false;
    part->free_since = 0;
    pthread_mutex_unlock(&cl->mu);
    if (cl_takeover(cl, part) < 0) {
        pthread_mutex_lock(&cl->mu);
        part->state = CL_P_FOLLOWER;
        cl_state_free(part->st);
        part->st = NULL;
        pthread_mutex_unlock(&cl->mu);
        cl_lease_release(cl, part);
    }
}

/* Renew p's lease on revision `rev`. A renewal refused for its revision means the lease
 * moved on since: taken by another node, or renewed by a write of ours that was stored while
 * its answer was lost (a timeout when the bucket's leader died, or our connection did). The
 * bucket's leader tells which: a value that is exactly ours (only this process writes it) is
 * the lost renewal, whose revision we adopt and renew on at once. The lease stays an
 * optimisation: if this were ever wrong, the stream fence would still refuse our writes. */
static void cl_lease_renew(cl_t *cl, cl_part_t *part)
{
    pthread_mutex_lock(&cl->mu);
    uint64_t rev = part->lease_rev, t = cl_now();
    bool due = t >= part->renew_at;
    pthread_mutex_unlock(&cl->mu);
    if (!due) return;
    uint64_t nrev = 0, found = 0;
    bool unsure = false; /* refused, but the leader could not be asked: retry, keep the lease */
    natsStatus s;
    for (int attempt = 0;; attempt++) {
        s = cl_lease_write(cl, part->idx, cl->cfg.node_id, rev, &nrev);
        pthread_mutex_lock(&cl->mu);
        if (s == NATS_OK && part->test_lose_renewals) { /* tests: stored, answer lost */
            part->test_lose_renewals--;
            s = NATS_TIMEOUT;
        }
        pthread_mutex_unlock(&cl->mu);
        if (s != NATS_ERR || attempt > 0) break;
        unsigned owner = 0;
        uint64_t inc = 0, lrev = 0;
        int r = cl_lease_read_leader(cl, part->idx, &owner, &inc, &lrev);
        if (r < 0) {
            unsure = true;
            break;
        }
        if (r == 0 || owner != cl->cfg.node_id || inc != cl->incarnation || lrev <= rev) break;
        log_info("cluster: partition %u: lease renewal stored at revision %llu although its answer "
                 "was lost; still owner",
                 part->idx, (unsigned long long)lrev);
        found = rev = lrev;
    }
    pthread_mutex_lock(&cl->mu);
    if (found) {
        cl->c.lease_readbacks++;
        part->lease_rev = found;
    }
    if (s == NATS_OK) {
        part->lease_rev = nrev;
        part->valid_until = t + cl_ms(cl->cfg.lease_ttl_ms) - cl_margin(cl);
        part->renew_at = t + cl_ms(cl->cfg.lease_ttl_ms) / 3;
    } else if (s == NATS_ERR && !unsure) { /* the revision moved: someone else holds it now */
        part->lease_rev = 0;
        cl_step_down(cl, part, CL_FENCED, "lease lost");
    } else {
        cl->c.lease_renew_errors++;
        part->renew_at = t + cl_ms(cl->cfg.tick_ms);
        if (log_ratelimit_ok(&cl->rl_renew, 1))
            log_warn("cluster: partition %u: lease renewal failed (%s); %lld ms left", part->idx,
                     unsure ? "refused, and the lease could not be read back"
                            : natsStatus_GetText(s),
                     (long long)(part->valid_until - t) / 1000000);
    }
    pthread_mutex_unlock(&cl->mu);
}

/* What one partition's lease tick saw and decided under the lock (lease_observe). */
typedef struct {
    int present; /* cl_lease_read: 1 held, 0 free, -1 unavailable */
    unsigned owner;
    uint64_t inc, rev;
    cl_pstate_t state;
    unsigned pref, pref_now;
    bool owner_dead, idle, release, free_long;
    natsSubscription *in_sub; /* a follower's subscription to drop, outside the lock */
} lease_obs_t;

/* Record the lease as read, step down or begin a release as it says, and note what the
 * action after the lock needs. Under cl->mu. */
static void lease_observe(cl_t *cl, unsigned p, uint64_t now, lease_obs_t *o)
{
    cl_part_t *part = &cl->parts[p];
    bool moved = part->seen_owner != (o->present ? o->owner : 0) || part->seen_inc != o->inc;
    part->seen_present = o->present > 0;
    part->seen_owner = o->present ? o->owner : 0;
    part->seen_inc = o->present ? o->inc : 0;
    part->seen_rev = o->present ? o->rev : 0;
    if (moved) cl_forward_moved(cl, p);
    /* A lease with an owner moves to the preferred live node; a free one goes to the
     * preferred node among those answering now (a node that just left is not waited for). */
    unsigned me = cl->cfg.node_id;
    o->pref = cl_preferred(cl, p, false);
    o->pref_now = cl_preferred(cl, p, true);
    o->owner_dead = o->owner && o->owner != cl->cfg.node_id && cl_node_dead(cl, o->owner, now);
    o->state = part->state;
    o->idle = !part->commit && !part->q_head;
    o->release = part->release_lease;
    o->in_sub = o->state == CL_P_FOLLOWER ? part->in_sub : NULL;
    if (o->in_sub) part->in_sub = NULL;
    /* Another process of this node id (started while we were stopped) counts as another
     * node: it holds the lease now. */
    if (o->state == CL_P_OWNER && o->present && (o->owner != me || o->inc != cl->incarnation)) {
        part->lease_rev = 0;
        cl_step_down(cl, part, CL_FENCED, "lease taken by another node");
        o->state = CL_P_FOLLOWER;
    } else if (o->state == CL_P_OWNER && o->pref != me && o->pref == o->pref_now) {
        cl_release_begin(cl, part);
        o->state = CL_P_RELEASING;
    }
    if (!o->present || o->owner == 0) {
        if (!part->free_since) part->free_since = now;
    } else {
        part->free_since = 0;
    }
    o->free_long = part->free_since && now - part->free_since >= cl_ms(cl->cfg.lease_ttl_ms);
}

/* A releasing owner with nothing in flight: last checkpoint, state dropped, lease freed. */
static void lease_release_idle(cl_t *cl, cl_part_t *part)
{
    cl_checkpoint_tick(cl, part, true);
    pthread_mutex_lock(&cl->mu);
    cl_state_free(part->st);
    part->st = NULL;
    natsSubscription *sub = part->in_sub;
    part->in_sub = NULL;
    pthread_mutex_unlock(&cl->mu);
    if (sub) {
        natsSubscription_Unsubscribe(sub);
        natsSubscription_Destroy(sub);
    }
    cl_lease_release(cl, part);
}

/* A follower: take a free lease, or a dead owner's, when this node is the one preferred. */
static void lease_follow(cl_t *cl, cl_part_t *part, const lease_obs_t *o)
{
    unsigned me = cl->cfg.node_id;
    if (o->present && o->owner == me) { /* after a step-down, or from an earlier life */
        if (o->pref == me && !o->release) {
            if (o->idle) cl_lease_take(cl, part, o->rev, false, 0);
        } else {
            pthread_mutex_lock(&cl->mu);
            part->lease_rev = o->rev;
            pthread_mutex_unlock(&cl->mu);
            cl_lease_release(cl, part);
        }
    } else if (!o->idle) {
        return;
    } else if (!o->present || o->owner == 0) {
        if (o->pref_now == me || o->free_long)
            cl_lease_take(cl, part, o->present ? o->rev : 0, false, 0);
    } else if (o->owner_dead && o->pref == me) {
        cl_lease_take(cl, part, o->rev, true, o->owner);
    }
}

void cl_leases_tick(cl_t *cl)
{
    uint64_t now = cl_now();
    pthread_mutex_lock(&cl->mu);
    bool nodes_ok = cl->nodes_ok;
    pthread_mutex_unlock(&cl->mu);
    for (unsigned p = 0; p < cl->n_parts; p++) {
        cl_part_t *part = &cl->parts[p];
        lease_obs_t o = {0};
        o.present = cl_lease_read(cl, p, &o.owner, &o.inc, &o.rev);
        /* An owner that reads another holder asks the leader before stepping down: the
         * direct get may have come from a replica that has not seen our latest write yet
         * (the lease we have just taken, say). */
        pthread_mutex_lock(&cl->mu);
        bool owning = part->state == CL_P_OWNER;
        pthread_mutex_unlock(&cl->mu);
        if (owning && o.present > 0 && (o.owner != cl->cfg.node_id || o.inc != cl->incarnation))
            o.present = cl_lease_read_leader(cl, p, &o.owner, &o.inc, &o.rev);
        /* The bucket is unavailable: the other reads would wait for the same timeout (renewals
         * go on in the keeper). */
        if (o.present < 0) break;
        pthread_mutex_lock(&cl->mu);
        lease_observe(cl, p, now, &o);
        pthread_mutex_unlock(&cl->mu);

        if (o.in_sub) {
            natsSubscription_Unsubscribe(o.in_sub);
            natsSubscription_Destroy(o.in_sub);
        }
        switch (o.state) {
        case CL_P_OWNER:
        case CL_P_ACQUIRING:
            break;
        case CL_P_RELEASING:
            if (o.idle) lease_release_idle(cl, part);
            break;
        case CL_P_FOLLOWER:
            /* Take nothing while who is live is unknown, nor while a write of an earlier
             * ownership is in flight (its fence would end the new one). */
            if (nodes_ok) lease_follow(cl, part, &o);
            break;
        }
    }
}

/* The keeper thread: this node's key and the renewals of the leases it holds, apart from the
 * control thread. The control thread makes calls that wait for their timeout (2 s, 5 s for a
 * write in doubt) while a stream has no leader, one after the other; with a stream-leader
 * kill under load they added up past the lease's TTL, and owners of partitions the kill did
 * not touch lost their leases (and their node key: the node was taken for dead). */
void *cl_keep_main(void *arg)
{
    cl_t *cl = arg;
    pthread_mutex_lock(&cl->mu);
    while (!cl->stop) {
        struct timespec ts;
        cl_tick_deadline(cl->cfg.tick_ms, &ts);
        pthread_cond_timedwait(&cl->keep_cond, &cl->mu, &ts);
        if (cl->stop) break;
        bool paused = cl->paused;
        pthread_mutex_unlock(&cl->mu);
        if (!paused) {
            cl_node_put(cl);
            for (unsigned p = 0; p < cl->n_parts; p++) {
                cl_part_t *part = &cl->parts[p];
                pthread_mutex_lock(&cl->mu);
                bool held =
                    (part->state == CL_P_OWNER || part->state == CL_P_RELEASING) && part->lease_rev;
                pthread_mutex_unlock(&cl->mu);
                if (held) cl_lease_renew(cl, part);
            }
        }
        pthread_mutex_lock(&cl->mu);
    }
    pthread_mutex_unlock(&cl->mu);
    return NULL;
}
