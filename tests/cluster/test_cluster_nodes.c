/* test_cluster_nodes.c - herald in cluster mode (protocol.md 11): three real herald nodes (broker
 * and
 * gateway each) on a real 3-server NATS JetStream cluster (R3). A notification published on
 * any node reaches the user's sessions on every node once, in seq order, and resumes on any
 * node; kill -9 of a partition owner and of a stream leader under load lose and duplicate
 * nothing acknowledged and keep every user's seqs gap-free, with the affected partitions
 * refused 503 unavailable (Retry-After) for a bounded time; a stopped owner is fenced when it
 * resumes; dedup holds across an owner change; a restarted node rejoins. */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cl_wire.h"
#include "hnode.h"
#include "hstreams.h"
#include "natsfix.h"

#define PARTS 6 /* user partitions; the broadcast one is PARTS */
#define NODES 3

/* Longest a partition may refuse publishes after a kill. Issue 12 measures <= 10 s in a
 * release build (docs/cluster.md); the bound here leaves room for a sanitizer build on two
 * shared cores. */
#define REFUSAL_BOUND_MS 20000
/* Partitions whose stream leader survived should not refuse at all beyond the writes in
 * flight on connections to the killed server, resolved as soon as their nodes reconnect.
 * Was 10 s while an owner stepped down when a renewal was stored but its answer lost, and
 * while the control thread's waits on leaderless streams could delay renewals past the TTL
 * (cl_lease.c: read-back from the leader, keeper thread). */
#define OTHERS_BOUND_MS 3000

static natsfix_t nf;
static hnode_t node[NODES];
static hnode_t *nodes[NODES];

static void setup(void)
{
    ck_assert_int_eq(natsfix_start(&nf, 3), 0);
    for (unsigned i = 0; i < NODES; i++) {
        hnode_init(&node[i], i + 1, nf.url, PARTS);
        nodes[i] = &node[i];
    }
}

static void teardown(void)
{
    for (unsigned i = 0; i < NODES; i++)
        hnode_stop(&node[i]);
    natsfix_stop(&nf);
    procs_cleanup();
}

static void start_all(void)
{
    for (unsigned i = 0; i < NODES; i++)
        hnode_start(&node[i]);
    ck_assert_msg(hnode_settled(nodes, NODES, PARTS, 60000), "partitions did not settle");
}

/* --- sessions --- */

#define MAX_USERS 32

typedef struct {
    hsink_t s[MAX_USERS];
    unsigned n;
} sinks_t;

static void sinks_open(sinks_t *k, hnode_t *n, const char *prefix, unsigned users)
{
    memset(k, 0, sizeof *k);
    ck_assert_uint_le(users, MAX_USERS);
    for (unsigned i = 0; i < users; i++) {
        snprintf(k->s[i].user, sizeof k->s[i].user, "%s%u", prefix, i);
        k->s[i].c = hnode_client(n, k->s[i].user, NULL);
    }
    k->n = users;
}

static void sinks_drain(sinks_t *k)
{
    for (unsigned i = 0; i < k->n; i++)
        hsink_drain(&k->s[i], 0);
}

/* Each session got its user's acknowledged notifications 1..N, in order, once. */
static void sinks_verify(sinks_t *k, const hload_t *l)
{
    for (unsigned i = 0; i < k->n; i++) {
        hsink_t *s = &k->s[i];
        size_t n = hload_user_acked(l, s->user);
        ck_assert_msg(hsink_wait(s, n, HN_WAIT), "%s: %llu of %zu delivered", s->user,
                      (unsigned long long)s->last, n);
        hsink_drain(s, 300);
        ck_assert_msg(s->received == n && s->disorder == 0 && s->gaps == 0,
                      "%s: %llu received of %zu, %llu out of order, %llu gaps", s->user,
                      (unsigned long long)s->received, n, (unsigned long long)s->disorder,
                      (unsigned long long)s->gaps);
    }
}

static void sinks_close(sinks_t *k)
{
    for (unsigned i = 0; i < k->n; i++)
        wsc_close(k->s[i].c);
    k->n = 0;
}

/* Run the load (sessions drained meanwhile) until every item is acknowledged; at_ms into
 * it, call event once. */
static void run_load(hload_t *l, sinks_t *k, uint64_t at_ms, void (*event)(void *), void *ctx,
                     int limit_ms)
{
    uint64_t t0 = hn_now_ms();
    bool fired = event == NULL;
    while (!hload_done(l)) {
        ck_assert_msg(hn_now_ms() - t0 < (uint64_t)limit_ms,
                      "load not acknowledged within %d ms: %zu of %zu sent, %zu to retry "
                      "(%s)",
                      limit_ms, l->next, l->n_items, l->n_retry, l->other);
        if (!fired && hn_now_ms() - t0 >= at_ms) {
            fired = true;
            event(ctx);
        }
        hload_step(l, 20);
        if (k) sinks_drain(k);
    }
    ck_assert_msg(l->other_errors == 0, "unexpected answer: %s", l->other);
    ck_assert_uint_eq(l->refused_no_retry_after, 0);
}

static unsigned owned_count(hnode_t *n)
{
    unsigned c = 0;
    for (unsigned p = 0; p <= PARTS; p++) {
        bool here;
        hnode_owner(n, p, &here);
        c += here;
    }
    return c;
}

/* ------------------------------------------------------------------------------------ */

/* heraldctl cluster: every node sees three nodes and one owner per partition. */
static void heraldctl_cluster_shows_three_nodes(void)
{
    char ctl[512];
    static procs_output_t out;
    procs_build_path("tools/heraldctl/heraldctl", ctl, sizeof ctl);
    const char *argv[] = {ctl, "-c", node[0].env.config, "--json", "cluster", NULL};
    ck_assert_int_eq(procs_run(argv, &out, 30), 0);
    json_t *j = json_loads(out.out, 0, NULL);
    ck_assert_msg(j != NULL, "heraldctl cluster --json: %s", out.out);
    ck_assert(json_is_true(json_object_get(j, "enabled")));
    ck_assert_uint_eq(json_array_size(json_object_get(j, "nodes")), 3);
    json_t *parts = json_object_get(j, "partition");
    ck_assert_uint_eq(json_array_size(parts), PARTS + 1);
    for (unsigned p = 0; p <= PARTS; p++)
        ck_assert_uint_gt(json_integer_value(json_object_get(json_array_get(parts, p), "owner")),
                          0);
    json_decref(j);
    const char *text[] = {ctl, "-c", node[1].env.config, "cluster", NULL};
    ck_assert_int_eq(procs_run(text, &out, 30), 0);
    ck_assert_msg(strstr(out.out, "live nodes:") && strstr(out.out, "partition") &&
                      strstr(out.out, "owner") && strstr(out.out, "rounds_ok"),
                  "%s", out.out);
}

START_TEST(published_on_one_node_reaches_sessions_on_every_node_and_resumes_anywhere)
{
    start_all();
    hsink_t s[NODES];
    for (unsigned i = 0; i < NODES; i++) {
        memset(&s[i], 0, sizeof s[i]);
        snprintf(s[i].user, sizeof s[i].user, "alice");
        s[i].c = hnode_client(&node[i], "alice", NULL);
    }
    /* Through every node in turn: seqs 1..6 whoever owns alice's partition. */
    for (unsigned k = 1; k <= 6; k++) {
        char id[32];
        uint64_t seq = 0;
        snprintf(id, sizeof id, "x-%u", k);
        ck_assert_int_eq(
            hnode_publish(&node[k % NODES], "alice", id, NULL, &seq, NULL, NULL, 0, NULL), 200);
        ck_assert_uint_eq(seq, k);
    }
    uint64_t bseq = 0;
    ck_assert_int_eq(hnode_publish(&node[1], "*", "b-1", NULL, &bseq, NULL, NULL, 0, NULL), 200);
    ck_assert_uint_eq(bseq, 1);
    for (unsigned i = 0; i < NODES; i++) {
        ck_assert_msg(hsink_wait(&s[i], 6, HN_WAIT), "node %u: %llu of 6", i + 1,
                      (unsigned long long)s[i].last);
        for (int t = 0; t < 20 && !s[i].bcast_last; t++)
            hsink_drain(&s[i], 100);
        hsink_drain(&s[i], 200);
        ck_assert_uint_eq(s[i].received, 6);
        ck_assert_uint_eq(s[i].disorder, 0);
        ck_assert_uint_eq(s[i].bcast_last, 1);
    }
    /* Resume on another node than the one the session left. */
    wsc_close(s[2].c);
    for (unsigned k = 7; k <= 9; k++) {
        char id[32];
        uint64_t seq = 0;
        snprintf(id, sizeof id, "x-%u", k);
        ck_assert_int_eq(hnode_publish(&node[0], "alice", id, NULL, &seq, NULL, NULL, 0, NULL),
                         200);
        ck_assert_uint_eq(seq, k);
    }
    ck_assert(hsink_wait(&s[0], 9, HN_WAIT));
    hsink_t r = {.last = 6};
    snprintf(r.user, sizeof r.user, "alice");
    r.c = hnode_client(&node[1], "alice", "?since=6");
    ck_assert(hsink_wait(&r, 9, HN_WAIT));
    for (int t = 0; t < 20 && !r.resumed; t++)
        hsink_drain(&r, 100);
    ck_assert(r.resumed);
    ck_assert_uint_eq(r.received, 3);
    ck_assert_uint_eq(r.disorder, 0);
    /* ... and from further back on the third node (its history came from the streams). */
    hsink_t r3 = {.last = 2};
    snprintf(r3.user, sizeof r3.user, "alice");
    r3.c = hnode_client(&node[2], "alice", "?since=2");
    ck_assert(hsink_wait(&r3, 9, HN_WAIT));
    ck_assert_uint_eq(r3.received, 7);
    ck_assert_uint_eq(r3.disorder, 0);
    wsc_close(r3.c);
    wsc_close(r.c);
    wsc_close(s[0].c);
    wsc_close(s[1].c);
    heraldctl_cluster_shows_three_nodes();
}
END_TEST

typedef struct {
    hload_t *l;
    unsigned victim; /* node index */
    uint64_t at_ms;
} kill_ctx_t;

static void kill_owner(void *arg)
{
    kill_ctx_t *k = arg;
    k->l->node_down[k->victim] = true;
    hnode_signal_broker(&node[k->victim], SIGKILL);
    k->at_ms = hn_now_ms();
}

START_TEST(owner_kill_under_load_loses_nothing_and_duplicates_nothing)
{
    start_all();
    /* The victim: the node owning the most partitions; the load goes through the others,
     * the sessions are on one of them. */
    unsigned victim = 0, most = 0;
    for (unsigned i = 0; i < NODES; i++) {
        unsigned c = owned_count(&node[i]);
        if (c > most) {
            most = c;
            victim = i;
        }
    }
    ck_assert_uint_gt(most, 0);
    bool theirs[PARTS + 1];
    for (unsigned p = 0; p <= PARTS; p++)
        theirs[p] = hnode_owner(&node[0], p, NULL) == node[victim].id;
    hnode_t *entry[2];
    for (unsigned i = 0, k = 0; i < NODES; i++)
        if (i != victim) entry[k++] = &node[i];
    enum { USERS = 24, ITEMS = 3000 };
    sinks_t k;
    sinks_open(&k, entry[0], "ok-u", USERS);
    hload_t l;
    hload_init(&l, entry, 2, PARTS, "ok-u", USERS, ITEMS, 200, 6);
    kill_ctx_t kc = {.l = &l, .victim = victim};
    run_load(&l, &k, 4000, kill_owner, &kc, 120000);
    fprintf(stderr, "owner kill (node %u, %u partitions): %llu acknowledged, %llu refused\n",
            node[victim].id, most, (unsigned long long)l.ok, (unsigned long long)l.refused);
    for (unsigned p = 0; p < PARTS; p++) {
        fprintf(stderr, "  partition %u%s: %llu refused, longest refusal %ld ms\n", p,
                theirs[p] ? " (victim's)" : "", (unsigned long long)l.part[p].refused,
                l.part[p].longest);
        if (theirs[p])
            ck_assert_int_le(l.part[p].longest, REFUSAL_BOUND_MS);
        else /* owned by a survivor: never refused */
            ck_assert_uint_eq(l.part[p].refused, 0);
    }
    hstreams_verify(&nf, PARTS, &l);
    sinks_verify(&k, &l);
    sinks_close(&k);
    hload_free(&l);
}
END_TEST

typedef struct {
    int victim; /* NATS server index */
    char stream[32];
    bool led[PARTS + 1]; /* the partition's stream was led by the victim */
} leader_ctx_t;

static void kill_leader(void *arg)
{
    leader_ctx_t *c = arg;
    c->victim = natsfix_stream_leader(&nf, c->stream);
    ck_assert_int_ge(c->victim, 0);
    for (unsigned p = 0; p <= PARTS; p++) {
        char name[32];
        snprintf(name, sizeof name, "HERALD_P%u", p);
        c->led[p] = natsfix_stream_leader(&nf, name) == c->victim;
    }
    natsfix_signal(&nf, c->victim, SIGKILL);
}

START_TEST(stream_leader_kill_under_load_loses_nothing_and_duplicates_nothing)
{
    start_all();
    enum { USERS = 24, ITEMS = 3000 };
    sinks_t k;
    sinks_open(&k, &node[2], "lk-u", USERS);
    hload_t l;
    hload_init(&l, nodes, NODES, PARTS, "lk-u", USERS, ITEMS, 200, 6);
    leader_ctx_t lc = {.victim = -1};
    snprintf(lc.stream, sizeof lc.stream, "HERALD_P%u", hnode_partition("lk-u0", PARTS));
    run_load(&l, &k, 4000, kill_leader, &lc, 180000);
    ck_assert_int_ge(lc.victim, 0);
    fprintf(stderr, "leader kill (server n%d, leading %s): %llu acknowledged, %llu refused\n",
            lc.victim + 1, lc.stream, (unsigned long long)l.ok, (unsigned long long)l.refused);
    for (unsigned p = 0; p < PARTS; p++) {
        fprintf(stderr, "  partition %u%s: %llu refused, longest refusal %ld ms\n", p,
                lc.led[p] ? " (led by the victim)" : "", (unsigned long long)l.part[p].refused,
                l.part[p].longest);
        /* The others only lose writes in flight on connections to the killed server, resolved
         * as soon as their nodes reconnect. */
        ck_assert_int_le(l.part[p].longest, lc.led[p] ? REFUSAL_BOUND_MS : OTHERS_BOUND_MS);
    }
    hstreams_verify(&nf, PARTS, &l);
    sinks_verify(&k, &l);
    sinks_close(&k);
    hload_free(&l);
    ck_assert_int_eq(natsfix_restart(&nf, lc.victim), 0);
}
END_TEST

START_TEST(dedup_holds_across_an_owner_change)
{
    start_all();
    const char *user = "dd-user";
    unsigned p = hnode_partition(user, PARTS);
    unsigned owner = hnode_owner(&node[0], p, NULL);
    ck_assert_uint_gt(owner, 0);
    hnode_t *o = &node[owner - 1], *other = &node[owner % NODES];
    uint64_t seq = 0, again = 0;
    bool dup = false;
    char err[64];
    ck_assert_int_eq(hnode_publish(other, user, "dd-1", NULL, &seq, &dup, NULL, 0, NULL), 200);
    ck_assert_uint_eq(seq, 1);
    ck_assert_int_eq(hnode_publish(other, user, "dd-2", NULL, &seq, &dup, NULL, 0, NULL), 200);
    ck_assert_uint_eq(seq, 2);
    /* The owner goes away with everything it knew: the next one rebuilds from the stream. */
    hnode_signal_broker(o, SIGKILL);
    uint64_t t0 = hn_now_ms();
    int st;
    while ((st = hnode_publish(other, user, "dd-1", NULL, &again, &dup, err, sizeof err, NULL)) ==
               503 &&
           hn_now_ms() - t0 < HN_WAIT)
        usleep(200000);
    ck_assert_int_eq(st, 200);
    ck_assert(dup);
    ck_assert_uint_eq(again, 1);
    t0 = hn_now_ms(); /* the lease as `other` reads it, every tick */
    while (hnode_owner(other, p, NULL) == owner && hn_now_ms() - t0 < 5000)
        usleep(100000);
    ck_assert_uint_ne(hnode_owner(other, p, NULL), owner);
    /* the same id with another payload is a conflict, not a duplicate */
    ck_assert_int_eq(
        hnode_publish(other, user, "dd-2", "changed", &again, &dup, err, sizeof err, NULL), 409);
    ck_assert_str_eq(err, "id_conflict");
    /* and a new id goes on at 3 */
    ck_assert_int_eq(hnode_publish(other, user, "dd-3", NULL, &again, &dup, NULL, 0, NULL), 200);
    ck_assert_uint_eq(again, 3);
    ck_assert(!dup);
}
END_TEST

/* Step-downs and ownership losses of node n so far (GET /api/cluster). */
static uint64_t stepdowns_of(hnode_t *n)
{
    json_t *j = hnode_get(n, "/api/cluster");
    json_t *c = json_object_get(j, "counters");
    uint64_t v = (uint64_t)json_integer_value(json_object_get(c, "stepdowns")) +
                 (uint64_t)json_integer_value(json_object_get(c, "ownership_losses"));
    json_decref(j);
    return v;
}

START_TEST(stopped_owner_is_fenced_and_steps_down_without_writing)
{
    /* A stopped owner's lease runs out in 5 s, not 15 (for the nodes started here). */
    setenv("HERALD_TEST_CLUSTER_LEASE_MS", "5000", 1);
    start_all();
    const char *user = "st-user";
    unsigned p = hnode_partition(user, PARTS);
    unsigned owner = hnode_owner(&node[0], p, NULL);
    hnode_t *o = &node[owner - 1], *other = &node[owner % NODES];
    uint64_t seq = 0;
    ck_assert_int_eq(hnode_publish(other, user, "st-1", NULL, &seq, NULL, NULL, 0, NULL), 200);
    ck_assert_uint_eq(seq, 1);
    uint64_t stepdowns = stepdowns_of(o);
    /* Stopped past its lease (HERALD_TEST_CLUSTER_LEASE_MS): another node takes over. */
    hnode_signal_broker(o, SIGSTOP);
    uint64_t t0 = hn_now_ms();
    int st;
    while ((st = hnode_publish(other, user, "st-2", NULL, &seq, NULL, NULL, 0, NULL)) != 200 &&
           hn_now_ms() - t0 < 60000)
        usleep(200000);
    ck_assert_int_eq(st, 200);
    ck_assert_uint_eq(seq, 2);
    t0 = hn_now_ms();
    while (hnode_owner(other, p, NULL) == owner && hn_now_ms() - t0 < 5000)
        usleep(100000);
    ck_assert_uint_ne(hnode_owner(other, p, NULL), owner);
    /* Resumed, the stale owner finds its lease gone: it steps down and writes nothing; a
     * publish made through it now goes to the new owner. */
    hnode_signal_broker(o, SIGCONT);
    t0 = hn_now_ms();
    while ((st = hnode_publish(o, user, "st-3", NULL, &seq, NULL, NULL, 0, NULL)) != 200 &&
           hn_now_ms() - t0 < HN_WAIT)
        usleep(200000);
    ck_assert_int_eq(st, 200);
    ck_assert_uint_eq(seq, 3);
    /* It stepped down. (It may own p again by now: it is p's preferred node, and the new
     * owner hands p back to it once it is seen alive again.) */
    t0 = hn_now_ms();
    while (stepdowns_of(o) <= stepdowns && hn_now_ms() - t0 < 5000)
        usleep(100000);
    ck_assert_uint_gt(stepdowns_of(o), stepdowns);
    /* The stream holds st-1, st-2, st-3 as 1, 2, 3 and nothing else of the user. */
    char name[32];
    snprintf(name, sizeof name, "HERALD_P%u", p);
    srecs_t s = {0};
    ck_assert_int_ge(natsfix_read_stream(&nf, name, hstreams_collect, &s), 0);
    uint64_t expect = 1;
    for (size_t i = 0; i < s.n; i++) {
        if (strcmp(s.v[i].user, user)) continue;
        char want[16];
        snprintf(want, sizeof want, "st-%llu", (unsigned long long)expect);
        ck_assert_str_eq(s.v[i].id, want);
        ck_assert_uint_eq(s.v[i].seq, expect++);
    }
    ck_assert_uint_eq(expect, 4);
    free(s.v);
}
END_TEST

START_TEST(a_restarted_node_rejoins_and_catches_up)
{
    start_all();
    hnode_t *gone = &node[2];
    unsigned had = owned_count(gone);
    /* Stopped cleanly: its partitions are handed over at once. */
    hnode_signal_broker(gone, SIGTERM);
    ck_assert(hnode_settled(nodes, 2, PARTS, HN_WAIT));
    enum { USERS = 8, ITEMS = 400 };
    hload_t l;
    hload_init(&l, nodes, 2, PARTS, "rj-u", USERS, ITEMS, 0, 4);
    run_load(&l, NULL, 0, NULL, NULL, 60000);
    ck_assert_uint_eq(l.refused, 0);
    /* Back: it consumes what it missed from where its journal stopped, and takes its
     * preferred partitions again. */
    hnode_start_broker(gone);
    ck_assert(hnode_settled(nodes, NODES, PARTS, 60000));
    ck_assert_uint_eq(owned_count(gone), had);
    uint64_t t0 = hn_now_ms();
    bool caught_up = false;
    while (!caught_up && hn_now_ms() - t0 < HN_WAIT) {
        caught_up = true;
        for (unsigned p = 0; p < PARTS; p++)
            caught_up &= hnode_delivered_to(gone, p) == hnode_delivered_to(&node[0], p);
        if (!caught_up) usleep(100000);
    }
    ck_assert(caught_up);
    /* Its gateway kept running: sessions opened now get what comes next, live... */
    sinks_t k;
    sinks_open(&k, gone, "rj-u", USERS);
    for (unsigned i = 0; i < USERS; i++) {
        char id[48];
        uint64_t seq = 0, before = hload_user_acked(&l, k.s[i].user);
        snprintf(id, sizeof id, "rj-extra-%u", i);
        k.s[i].last = before;
        ck_assert_int_eq(hnode_publish(gone, k.s[i].user, id, NULL, &seq, NULL, NULL, 0, NULL),
                         200);
        ck_assert_uint_eq(seq, before + 1);
        ck_assert(hsink_wait(&k.s[i], seq, HN_WAIT));
        hsink_drain(&k.s[i], 100);
        ck_assert_uint_eq(k.s[i].received, 1);
        ck_assert_uint_eq(k.s[i].disorder, 0);
    }
    sinks_close(&k);
    /* ... and resume what was published while its broker was away, from its history. */
    for (unsigned i = 0; i < USERS; i++) {
        hsink_t r = {.last = 1};
        snprintf(r.user, sizeof r.user, "rj-u%u", i);
        r.c = hnode_client(gone, r.user, "?since=1");
        uint64_t n = hload_user_acked(&l, r.user) + 1;
        ck_assert_msg(hsink_wait(&r, n, HN_WAIT), "%s: resumed to %llu of %llu", r.user,
                      (unsigned long long)r.last, (unsigned long long)n);
        ck_assert_uint_eq(r.received, n - 1);
        ck_assert_uint_eq(r.disorder, 0);
        wsc_close(r.c);
    }
    hload_free(&l);
}
END_TEST

static Suite *nodes_suite(void)
{
    Suite *s = suite_create("cluster_nodes");
    TCase *tc = tcase_create("nodes");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, published_on_one_node_reaches_sessions_on_every_node_and_resumes_anywhere);
    tcase_add_test(tc, dedup_holds_across_an_owner_change);
    tcase_add_test(tc, a_restarted_node_rejoins_and_catches_up);
    tcase_add_test(tc, stopped_owner_is_fenced_and_steps_down_without_writing);
    tcase_add_test(tc, owner_kill_under_load_loses_nothing_and_duplicates_nothing);
    tcase_add_test(tc, stream_leader_kill_under_load_loses_nothing_and_duplicates_nothing);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return natsfix_run_suite(nodes_suite());
}
