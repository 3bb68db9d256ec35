/* test_cl_lease.c - partition ownership against a real nats-server: leases acquired by the
 * preferred node and renewed, handed over on close, lost by a stalled owner that then writes
 * nothing, taken from a killed or stopped owner process, whose writes the stream fences. */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clnode.h"
#include "clpeer.h"
#include "herald_time.h"
#include "natsfix.h"
#include "shard.h"

#define PARTS 4

static natsfix_t nf;

static void setup(void)
{
    ck_assert_int_eq(natsfix_start(&nf, 1), 0);
}

static void teardown(void)
{
    natsfix_stop(&nf);
}

typedef struct {
    clnode_t **nodes;
    size_t count;
} owners_t;

/* Every partition (broadcast included) owned by exactly one of the nodes. */
static bool all_owned_once(void *arg)
{
    owners_t *o = arg;
    for (unsigned p = 0; p <= PARTS; p++) {
        int owners = 0;
        for (size_t i = 0; i < o->count; i++)
            owners += o->nodes[i] && o->nodes[i]->cl && o->nodes[i]->owns[p] &&
                      cl_owns(o->nodes[i]->cl, p);
        if (owners != 1) return false;
    }
    return true;
}

static unsigned preferred_of(unsigned p, const unsigned *ids, size_t n)
{
    char key[16];
    int len = snprintf(key, sizeof key, "p%u", p);
    unsigned best = 0;
    uint64_t best_w = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t w = shard_weight(key, (size_t)len, ids[i]);
        if (!best || w > best_w) {
            best = ids[i];
            best_w = w;
        }
    }
    return best;
}

START_TEST(partitions_get_one_owner_each_the_preferred_node_and_keep_it_past_the_ttl)
{
    cl_config_t c1, c2;
    clnode_t a, b;
    clnode_config(&c1, nf.url, 1, PARTS, 1);
    clnode_config(&c2, nf.url, 2, PARTS, 1);
    ck_assert_int_eq(clnode_open(&a, &c1), 0);
    ck_assert_int_eq(clnode_open(&b, &c2), 0);
    clnode_t *nodes[] = {&a, &b};
    owners_t o = {nodes, 2};
    /* Once both see each other, every partition settles on its rendezvous choice. */
    const unsigned ids[] = {1, 2};
    bool settled = false;
    for (int i = 0; i < 100 && !settled; i++) {
        clnode_pump(nodes, 2, 100);
        settled = all_owned_once(&o);
        for (unsigned p = 0; settled && p <= PARTS; p++)
            settled = (preferred_of(p, ids, 2) == 1 ? &a : &b)->owns[p];
    }
    ck_assert_msg(settled, "partitions did not settle on their preferred nodes");
    cl_pinfo_t before[PARTS + 1], after;
    for (unsigned p = 0; p <= PARTS; p++)
        cl_info((a.owns[p] ? &a : &b)->cl, p, &before[p]);
    /* Two lease TTLs later: same owners, renewed (higher revisions), no change reported. */
    unsigned gains[PARTS + 1];
    for (unsigned p = 0; p <= PARTS; p++)
        gains[p] = a.gains[p] + b.gains[p];
    clnode_pump(nodes, 2, 2 * (int)c1.lease_ttl_ms);
    for (unsigned p = 0; p <= PARTS; p++) {
        clnode_t *owner = a.owns[p] ? &a : &b;
        ck_assert(owner->owns[p] && cl_owns(owner->cl, p));
        cl_info(owner->cl, p, &after);
        ck_assert_int_eq(after.state, CL_P_OWNER);
        ck_assert_uint_gt(after.lease_rev, before[p].lease_rev);
        ck_assert_uint_eq(a.gains[p] + b.gains[p], gains[p]);
    }
    clnode_close(&a);
    clnode_close(&b);
}
END_TEST

START_TEST(closing_node_hands_its_partitions_to_the_other)
{
    cl_config_t c1, c2;
    clnode_t a, b;
    clnode_config(&c1, nf.url, 1, PARTS, 1);
    clnode_config(&c2, nf.url, 2, PARTS, 1);
    ck_assert_int_eq(clnode_open(&a, &c1), 0);
    clnode_t *nodes[] = {&a, &b};
    owners_t o = {nodes, 1};
    ck_assert(clnode_wait(nodes, 1, 10000, all_owned_once, &o));
    cln_round_t *r = clnode_append(&a, "u1", 3, "x");
    ck_assert_int_eq(clnode_round_wait(nodes, 1, r, 5000), CL_OK);
    free(r);
    ck_assert_int_eq(clnode_open(&b, &c2), 0);
    clnode_pump(nodes, 2, 1500);
    long t0 = (long)time(NULL);
    clnode_close(&a);
    nodes[0] = NULL;
    o.nodes = nodes;
    o.count = 2;
    /* Released leases are taken at once, not after their TTL. */
    ck_assert(clnode_wait(nodes, 2, 3000, all_owned_once, &o));
    ck_assert_int_le((long)time(NULL) - t0, 3);
    unsigned p = cl_partition_of(b.cl, "u1", 2);
    ck_assert_uint_eq(clnode_user_seq(&b, "u1"), 3);
    r = clnode_append(&b, "u1", 1, "y");
    ck_assert_int_eq(clnode_round_wait(nodes, 2, r, 5000), CL_OK);
    ck_assert_uint_eq(r->recs[0].seq, 4);
    ck_assert_uint_eq(r->p, p);
    free(r);
    clnode_close(&b);
}
END_TEST

/* Messages of stream written by node (their Nats-Msg-Id starts "<node>."), and the last seq. */
typedef struct {
    unsigned node;
    uint64_t count, last_seq, marker_of_other;
} by_node_t;

static void count_by_node(uint64_t seq, const char *subject, const void *data, int len,
                          const char *msg_id, void *ctx)
{
    (void)data;
    (void)len;
    by_node_t *b = ctx;
    char pfx[16];
    int n = snprintf(pfx, sizeof pfx, "%u.", b->node);
    bool mine = msg_id && strncmp(msg_id, pfx, (size_t)n) == 0;
    if (mine) {
        b->count++;
        b->last_seq = seq;
    } else if (msg_id && strstr(subject, ".o")) {
        b->marker_of_other = seq;
    }
}

static void stream_of(const clnode_t *n, const char *user, char *out, size_t cap)
{
    snprintf(out, cap, "HERALD_P%u", cl_partition_of(n->cl, user, strlen(user)));
}

typedef struct {
    clnode_t *n;
} owns_all_t;

static bool node_owns_all(void *arg)
{
    clnode_t *n = ((owns_all_t *)arg)->n;
    for (unsigned p = 0; p < cl_partitions(n->cl); p++)
        if (!n->owns[p] || !cl_owns(n->cl, p)) return false;
    return true;
}

/* Node 1 alone, once it owns every partition. */
static void open_sole_owner(clnode_t *a, cl_config_t *c)
{
    clnode_config(c, nf.url, 1, PARTS, 1);
    ck_assert_int_eq(clnode_open(a, c), 0);
    clnode_t *nodes[] = {a};
    owns_all_t oa = {a};
    ck_assert(clnode_wait(nodes, 1, 10000, node_owns_all, &oa));
}

START_TEST(paused_owner_loses_its_lease_and_steps_down_without_writing)
{
    cl_config_t c1, c2;
    clnode_t a, b;
    clnode_config(&c1, nf.url, 1, PARTS, 1);
    clnode_config(&c2, nf.url, 2, PARTS, 1);
    ck_assert_int_eq(clnode_open(&a, &c1), 0);
    clnode_t *nodes[] = {&a, &b};
    owns_all_t oa = {&a}, ob = {&b};
    ck_assert(clnode_wait(nodes, 1, 10000, node_owns_all, &oa));
    cln_round_t *r = clnode_append(&a, "u1", 2, "a");
    ck_assert_int_eq(clnode_round_wait(nodes, 1, r, 5000), CL_OK);
    free(r);
    /* A's control thread stalls: no renewals, no node key. B takes over once the TTL ran out. */
    cl_test_pause(a.cl, true);
    ck_assert_int_eq(clnode_open(&b, &c2), 0);
    ck_assert(clnode_wait(nodes, 2, 4 * (int)c1.lease_ttl_ms, node_owns_all, &ob));
    ck_assert_uint_eq(clnode_user_seq(&b, "u1"), 2);
    char stream[32];
    stream_of(&a, "u1", stream, sizeof stream);
    by_node_t before = {.node = 1}, after = {.node = 1};
    ck_assert_int_ge(natsfix_read_stream(&nf, stream, count_by_node, &before), 1);
    /* A still believes it owns p; its own lease check stops the write and makes it step down. */
    unsigned p = cl_partition_of(a.cl, "u1", 2);
    ck_assert(a.owns[p]);
    ck_assert(!cl_owns(a.cl, p));
    r = clnode_append(&a, "u1", 1, "stale");
    ck_assert_int_eq(clnode_round_wait(nodes, 2, r, 5000), CL_FENCED);
    free(r);
    ck_assert(!a.owns[p]);
    ck_assert_uint_eq(a.losses[p], 1);
    ck_assert_int_ge(natsfix_read_stream(&nf, stream, count_by_node, &after), 1);
    ck_assert_uint_eq(after.count, before.count);
    /* Resumed, A is a healthy node again: the partitions it is preferred for come back to
     * it through B, with the seqs B wrote. */
    cl_test_pause(a.cl, false);
    owners_t o = {nodes, 2};
    ck_assert(clnode_wait(nodes, 2, 10000, all_owned_once, &o));
    r = clnode_append(&b, "u1", 1, "b");
    clnode_t *owner = a.owns[p] ? &a : &b;
    if (owner == &a) { /* B's round is refused: A sequences u1 now */
        ck_assert_int_eq(clnode_round_wait(nodes, 2, r, 5000), CL_FENCED);
        free(r);
        r = clnode_append(&a, "u1", 1, "a2");
    }
    ck_assert_int_eq(clnode_round_wait(nodes, 2, r, 5000), CL_OK);
    ck_assert_uint_eq(r->recs[0].seq, 3);
    free(r);
    clnode_close(&a);
    clnode_close(&b);
}
END_TEST

START_TEST(stopped_owner_process_is_fenced_by_the_stream_and_steps_down)
{
    /* The peer skips its own lease check, so only the stream can stop its late write. */
    clpeer_t peer;
    char line[128];
    ck_assert_int_eq(clpeer_start(&peer, nf.env.dir, nf.url, 1, PARTS, 1, true), 0);
    ck_assert_int_eq(clpeer_cmd(&peer, "wait_all 10000", line, sizeof line, 15000), 0);
    ck_assert_str_eq(line, "ok");
    ck_assert_int_eq(clpeer_cmd(&peer, "append u1 3", line, sizeof line, 15000), 0);
    ck_assert_str_eq(line, "ok 1 3");
    ck_assert_int_eq(clpeer_cmd(&peer, "pause 1", line, sizeof line, 5000), 0);
    procs_kill(peer.pid, SIGSTOP);

    cl_config_t c2;
    clnode_t b;
    clnode_config(&c2, nf.url, 2, PARTS, 1);
    uint64_t t0 = mono_ms();
    ck_assert_int_eq(clnode_open(&b, &c2), 0);
    clnode_t *nodes[] = {&b};
    owns_all_t ob = {&b};
    ck_assert(clnode_wait(nodes, 1, 4 * (int)c2.lease_ttl_ms, node_owns_all, &ob));
    fprintf(stderr, "owner SIGSTOP: partitions taken over in %ld ms (lease TTL %u ms)\n",
            (long)(mono_ms() - t0), c2.lease_ttl_ms);
    ck_assert_uint_eq(clnode_user_seq(&b, "u1"), 3);

    procs_kill(peer.pid, SIGCONT);
    unsigned p = cl_partition_of(b.cl, "u1", 2);
    char cmd[32];
    snprintf(cmd, sizeof cmd, "owns %u", p);
    ck_assert_int_eq(clpeer_cmd(&peer, cmd, line, sizeof line, 5000), 0);
    ck_assert_str_eq(line, "1"); /* it still thinks so */
    clpeer_send(&peer, "append u1 1");
    clnode_pump(nodes, 1, 0);
    ck_assert_int_eq(clpeer_read(&peer, line, sizeof line, 15000), 0);
    ck_assert_str_eq(line, "fail fenced");
    ck_assert_int_eq(clpeer_cmd(&peer, cmd, line, sizeof line, 5000), 0);
    ck_assert_str_eq(line, "0");
    /* Nothing of the peer's after B's marker. */
    char stream[32];
    stream_of(&b, "u1", stream, sizeof stream);
    by_node_t w = {.node = 1};
    ck_assert_int_ge(natsfix_read_stream(&nf, stream, count_by_node, &w), 2);
    ck_assert_uint_gt(w.marker_of_other, 0);
    ck_assert_uint_lt(w.last_seq, w.marker_of_other);
    cln_round_t *r = clnode_append(&b, "u1", 1, "b");
    ck_assert_int_eq(clnode_round_wait(nodes, 1, r, 5000), CL_OK);
    ck_assert_uint_eq(r->recs[0].seq, 4);
    free(r);
    clpeer_stop(&peer);
    clnode_close(&b);
}
END_TEST

/* A user (u0, u1, ...) whose partition the peer owns. */
static void user_owned_by_peer(clpeer_t *peer, clnode_t *n, char *out, size_t cap, int skip)
{
    for (int i = 0; i < 1000; i++) {
        char user[16], cmd[32], line[16];
        snprintf(user, sizeof user, "u%d", i);
        snprintf(cmd, sizeof cmd, "owns %u", cl_partition_of(n->cl, user, strlen(user)));
        if (clpeer_cmd(peer, cmd, line, sizeof line, 5000) == 0 && strcmp(line, "1") == 0 &&
            skip-- == 0) {
            snprintf(out, cap, "%s", user);
            return;
        }
    }
    ck_abort_msg("the peer owns no partition");
}

/* Production timings: the owner's connection is gone at once (no responders), its lease
 * (15 s) is taken after the probe grace (3 s). */
START_TEST(killed_owner_is_taken_over_with_its_seqs_and_message_ids)
{
    clpeer_t peer;
    char line[128], cmd[64], u1[16];
    ck_assert_int_eq(clpeer_start_production(&peer, nf.env.dir, nf.url, 1, PARTS, 1), 0);
    ck_assert_int_eq(clpeer_cmd(&peer, "wait_all 10000", line, sizeof line, 15000), 0);
    cl_config_t c2;
    clnode_t b;
    clnode_config(&c2, nf.url, 2, PARTS, 1);
    clnode_production_timings(&c2);
    ck_assert_int_eq(clnode_open(&b, &c2), 0);
    clnode_t *nodes[] = {&b};
    clnode_pump(nodes, 1, 3000); /* partitions preferring node 2 move */
    user_owned_by_peer(&peer, &b, u1, sizeof u1, 0);
    unsigned p = cl_partition_of(b.cl, u1, strlen(u1));
    ck_assert(!b.owns[p]);
    /* Two rounds, a checkpoint between them: the takeover reads it and replays the second. */
    snprintf(cmd, sizeof cmd, "append %s 5", u1);
    ck_assert_int_eq(clpeer_cmd(&peer, cmd, line, sizeof line, 15000), 0);
    ck_assert_str_eq(line, "ok 1 5");
    clnode_pump(nodes, 1, 6000); /* past the checkpoint interval (5 s) */
    snprintf(cmd, sizeof cmd, "append %s 3", u1);
    ck_assert_int_eq(clpeer_cmd(&peer, cmd, line, sizeof line, 15000), 0);
    ck_assert_str_eq(line, "ok 6 8");
    procs_kill(peer.pid, SIGKILL);
    procs_reap(peer.pid, 5000);
    peer.pid = 0;
    uint64_t t0 = mono_ms();

    owns_all_t ob = {&b};
    ck_assert(clnode_wait(nodes, 1, 30000, node_owns_all, &ob));
    long took = (long)(mono_ms() - t0);
    fprintf(stderr, "owner kill -9: partitions taken over in %ld ms (15 s lease)\n", took);
    ck_assert_int_lt(took, 12000); /* by the probe, not by the lease's expiry */
    ck_assert_uint_eq(clnode_user_seq(&b, u1), 8);
    ck_assert_uint_gt(b.tk_ckpt[p], 0);
    ck_assert_uint_ge(b.tk_replayed[p], 1);
    /* The dedup window came along: every id with its seq. */
    ck_assert_uint_eq(b.tk_ids[p].n, 8);
    for (size_t i = 0; i < 8; i++) {
        char id[80];
        snprintf(id, sizeof id, "peer-%s-%zu", u1, i + 1);
        ck_assert_str_eq(b.tk_ids[p].v[i].id, id);
        ck_assert_uint_eq(b.tk_ids[p].v[i].seq, i + 1);
    }
    /* A producer's retry of an id the dead owner acknowledged: a duplicate, original seq. */
    char id[80];
    uint64_t dup = 0;
    snprintf(id, sizeof id, "peer-%s-5", u1);
    ck_assert_ptr_null(clnode_publish_id(&b, u1, id, &dup));
    ck_assert_uint_eq(dup, 5);
    cln_round_t *r = clnode_append(&b, u1, 2, "b");
    ck_assert_int_eq(clnode_round_wait(nodes, 1, r, 5000), CL_OK);
    ck_assert_uint_eq(r->recs[0].seq, 9);
    ck_assert_uint_eq(r->recs[1].seq, 10);
    free(r);
    clpeer_stop(&peer);
    clnode_close(&b);
}
END_TEST

static bool fwd_done(void *arg)
{
    return ((cln_fwd_t *)arg)->done;
}

/* A node's process dies holding a forwarded publish and is restarted at once: the new process
 * answers the node's probes, so only the lease's incarnation ("<node>.<incarnation>") tells
 * the forwarding node that the publish will never be answered. It is refused (unavailable)
 * when the new process holds the lease, not after the forward timeout (60 s here). The old
 * process is stopped before the new one starts and killed after, so no probe can find the
 * node without a process in between. */
START_TEST(forward_held_by_a_restarted_owner_process_is_refused_at_the_lease_change)
{
    clpeer_t peer, again;
    char line[64], cmd[64], dir2[300];
    ck_assert_int_eq(clpeer_start(&peer, nf.env.dir, nf.url, 1, PARTS, 1, false), 0);
    ck_assert_int_eq(clpeer_cmd(&peer, "wait_all 10000", line, sizeof line, 15000), 0);
    cl_config_t c2;
    clnode_t b;
    clnode_config(&c2, nf.url, 2, PARTS, 1);
    c2.forward_timeout_ms = 60000;
    ck_assert_int_eq(clnode_open(&b, &c2), 0);
    clnode_t *nodes[] = {&b};
    clnode_pump(nodes, 1, 2000); /* partitions preferring node 2 move */
    unsigned p = PARTS + 1;
    for (unsigned i = 0; i <= PARTS && p > PARTS; i++) {
        cl_pinfo_t pi;
        cl_info(b.cl, i, &pi);
        snprintf(cmd, sizeof cmd, "owns %u", i);
        if (pi.owner == 1 && clpeer_cmd(&peer, cmd, line, sizeof line, 5000) == 0 &&
            strcmp(line, "1") == 0)
            p = i;
    }
    ck_assert_msg(p <= PARTS, "the peer owns no partition node 2 sees it own");
    ck_assert_int_eq(clpeer_cmd(&peer, "silent 1", line, sizeof line, 5000), 0);
    cln_fwd_t f = {0};
    ck_assert_int_eq(clnode_forward(&b, p, "frame-held", &f), 0);
    for (int i = 0; i < 100 && strcmp(line, "1") != 0; i++) {
        clnode_pump(nodes, 1, 50);
        ck_assert_int_eq(clpeer_cmd(&peer, "forwarded", line, sizeof line, 5000), 0);
    }
    ck_assert_str_eq(line, "1");
    procs_kill(peer.pid, SIGSTOP);
    snprintf(dir2, sizeof dir2, "%s/again", nf.env.dir);
    ck_assert_int_eq(mkdir(dir2, 0700), 0);
    ck_assert_int_eq(clpeer_start(&again, dir2, nf.url, 1, PARTS, 1, false), 0);
    snprintf(cmd, sizeof cmd, "wait_own %u 10000", p);
    ck_assert_int_eq(clpeer_cmd(&again, cmd, line, sizeof line, 15000), 0);
    ck_assert_str_eq(line, "ok");
    procs_kill(peer.pid, SIGKILL);
    procs_reap(peer.pid, 5000);
    peer.pid = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ck_assert_msg(clnode_wait(nodes, 1, 30000, fwd_done, &f),
                  "the forward held by the dead process was not answered");
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long took = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    fprintf(stderr, "forward held by a restarted owner: refused %ld ms after the restart\n", took);
    ck_assert_int_eq(f.st, CL_UNAVAILABLE);
    /* The new process answers forwards. */
    cln_fwd_t g = {0};
    ck_assert_int_eq(clnode_forward(&b, p, "frame-new", &g), 0);
    ck_assert(clnode_wait(nodes, 1, 10000, fwd_done, &g));
    ck_assert_int_eq(g.st, CL_OK);
    clpeer_stop(&again);
    clpeer_stop(&peer);
    clnode_close(&b);
}
END_TEST

/* An owner wrote a checkpoint's chunks but not its header (it died, lost its lease, or the
 * bucket's leader died in between): the standing header names chunk revisions that are no
 * longer the latest. The next owner still reads that checkpoint (the bucket keeps earlier
 * values) and takes the partition over, with the seqs. */
START_TEST(checkpoint_whose_chunks_were_rewritten_still_takes_over)
{
    clpeer_t peer;
    char line[128], cmd[64], u1[16], key[32];
    ck_assert_int_eq(clpeer_start(&peer, nf.env.dir, nf.url, 1, PARTS, 1, false), 0);
    ck_assert_int_eq(clpeer_cmd(&peer, "wait_all 10000", line, sizeof line, 15000), 0);
    cl_config_t c2;
    clnode_t b;
    clnode_config(&c2, nf.url, 2, PARTS, 1);
    ck_assert_int_eq(clnode_open(&b, &c2), 0);
    clnode_t *nodes[] = {&b};
    clnode_pump(nodes, 1, 2000); /* partitions preferring node 2 move */
    user_owned_by_peer(&peer, &b, u1, sizeof u1, 0);
    unsigned p = cl_partition_of(b.cl, u1, strlen(u1));
    snprintf(cmd, sizeof cmd, "append %s 5", u1);
    ck_assert_int_eq(clpeer_cmd(&peer, cmd, line, sizeof line, 15000), 0);
    ck_assert_str_eq(line, "ok 1 5");
    clnode_pump(nodes, 1, 1500); /* the checkpoint interval is 300 ms here */
    snprintf(key, sizeof key, "p%u.c0", p);
    ck_assert_int_eq(natsfix_kv_rewrite(&nf, "herald_ckpt", key), 0);
    procs_kill(peer.pid, SIGKILL);
    procs_reap(peer.pid, 5000);
    peer.pid = 0;
    owns_all_t ob = {&b};
    ck_assert_msg(clnode_wait(nodes, 1, 20000, node_owns_all, &ob), "partition %u not taken over",
                  p);
    ck_assert_uint_gt(b.tk_ckpt[p], 0);
    ck_assert_uint_eq(clnode_user_seq(&b, u1), 5);
    clpeer_stop(&peer);
    clnode_close(&b);
}
END_TEST

/* A renewal stored by the bucket while its answer was lost (the leader died before
 * answering, say) leaves the owner with a revision that is no longer the last: its next
 * renewal is refused. The lease is still its own, so it stays owner and renews on. */
START_TEST(renewal_stored_with_its_answer_lost_keeps_the_owner)
{
    cl_config_t c1;
    clnode_t a;
    open_sole_owner(&a, &c1);
    clnode_t *nodes[] = {&a};
    const unsigned p = 1;
    cl_counters_t c0, c;
    cl_counters(a.cl, &c0);
    cl_pinfo_t before, mid, after;
    cl_info(a.cl, p, &before);
    cl_test_lose_renewals(a.cl, p, 2);
    /* Renewals every TTL/3: within a TTL the two lost ones and those after them ran. */
    clnode_pump(nodes, 1, (int)c1.lease_ttl_ms);
    cl_counters(a.cl, &c);
    ck_assert_uint_eq(c.stepdowns, c0.stepdowns);
    ck_assert_uint_eq(a.losses[p], 0);
    ck_assert_uint_eq(a.gains[p], 1);
    ck_assert_uint_eq(c.lease_readbacks - c0.lease_readbacks, 2);
    ck_assert(a.owns[p] && cl_owns(a.cl, p));
    cl_info(a.cl, p, &mid);
    ck_assert_int_eq(mid.state, CL_P_OWNER);
    ck_assert_uint_ge(mid.lease_rev, before.lease_rev + 3);
    /* It renews on from there, past the TTL, and writes. */
    clnode_pump(nodes, 1, 2 * (int)c1.lease_ttl_ms);
    cl_info(a.cl, p, &after);
    ck_assert_int_eq(after.state, CL_P_OWNER);
    ck_assert_uint_gt(after.lease_rev, mid.lease_rev);
    cl_counters(a.cl, &c);
    ck_assert_uint_eq(c.stepdowns, c0.stepdowns);
    ck_assert_uint_eq(c.lease_readbacks - c0.lease_readbacks, 2);
    ck_assert_uint_eq(a.losses[p], 0);
    char user[16];
    for (unsigned i = 0;; i++) { /* a user of p */
        snprintf(user, sizeof user, "u%u", i);
        if (cl_partition_of(a.cl, user, strlen(user)) == p) break;
    }
    cln_round_t *r = clnode_append(&a, user, 1, "x");
    ck_assert_int_eq(clnode_round_wait(nodes, 1, r, 5000), CL_OK);
    free(r);
    clnode_close(&a);
}
END_TEST

static bool lost_partition(void *arg)
{
    const clnode_t *n = arg;
    return n->losses[1] > 0;
}

/* The negative: a lease another node really wrote ends the ownership, even while renewal
 * answers are being lost (the leader shows the other holder, not us). */
START_TEST(lease_taken_by_another_node_makes_the_owner_step_down)
{
    cl_config_t c1;
    clnode_t a;
    open_sole_owner(&a, &c1);
    clnode_t *nodes[] = {&a};
    const unsigned p = 1;
    cl_counters_t c0, c;
    cl_counters(a.cl, &c0);
    cl_test_lose_renewals(a.cl, p, 1);
    ck_assert_int_eq(natsfix_kv_put(&nf, "herald_cluster", "lease.1", "9.1"), 0);
    ck_assert(clnode_wait(nodes, 1, (int)c1.lease_ttl_ms, lost_partition, &a));
    ck_assert(!cl_owns(a.cl, p));
    cl_counters(a.cl, &c);
    ck_assert_uint_eq(c.lease_readbacks, c0.lease_readbacks);
    ck_assert_uint_gt(c.stepdowns, c0.stepdowns);
    for (unsigned q = 0; q <= PARTS; q++) /* the others are untouched */
        if (q != p) ck_assert(a.owns[q] && a.losses[q] == 0);
    clnode_close(&a);
}
END_TEST

static Suite *lease_suite(void)
{
    Suite *s = suite_create("cluster_lease");
    TCase *tc = tcase_create("lease");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, partitions_get_one_owner_each_the_preferred_node_and_keep_it_past_the_ttl);
    tcase_add_test(tc, closing_node_hands_its_partitions_to_the_other);
    tcase_add_test(tc, paused_owner_loses_its_lease_and_steps_down_without_writing);
    tcase_add_test(tc, stopped_owner_process_is_fenced_by_the_stream_and_steps_down);
    tcase_add_test(tc, killed_owner_is_taken_over_with_its_seqs_and_message_ids);
    tcase_add_test(tc, forward_held_by_a_restarted_owner_process_is_refused_at_the_lease_change);
    tcase_add_test(tc, checkpoint_whose_chunks_were_rewritten_still_takes_over);
    tcase_add_test(tc, renewal_stored_with_its_answer_lost_keeps_the_owner);
    tcase_add_test(tc, lease_taken_by_another_node_makes_the_owner_step_down);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return natsfix_run_suite(lease_suite());
}
