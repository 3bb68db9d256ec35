/* test_cl_raft.c - the cluster layer on a real 3-server JetStream cluster (R3): what is
 * acknowledged survives the stream leader's kill -9, nothing is acknowledged without a
 * quorum, and under load a leader kill loses nothing acknowledged, duplicates nothing,
 * keeps every user's seqs gap-free, refuses that partition's writes for a bounded time,
 * and an ordered consumer reading meanwhile sees the stream in order, once. */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cl_wire.h"
#include "clnode.h"
#include "herald_time.h"
#include "natsfix.h"

#define PARTS 2

static natsfix_t nf;

static void setup(void)
{
    ck_assert_int_eq(natsfix_start(&nf, 3), 0);
}

static void teardown(void)
{
    natsfix_stop(&nf);
}

/* Production timings (15 s lease) on test partitions and replicas. */
static void raft_config(cl_config_t *cfg, unsigned node)
{
    clnode_config(cfg, nf.url, node, PARTS, 3);
    cfg->lease_ttl_ms = 15000;
    cfg->tick_ms = 250;
    cfg->ack_wait_ms = 2000;
    cfg->ckpt_interval_ms = 2000;
    cfg->probe_grace_ms = 3000;
}

static bool owns_all(void *arg)
{
    clnode_t *n = arg;
    for (unsigned p = 0; p <= PARTS; p++)
        if (!n->owns[p] || !cl_owns(n->cl, p)) return false;
    return true;
}

typedef struct {
    cln_recs_t recs;
    bool bad;
} stream_recs_t;

static void collect(uint64_t seq, const char *subject, const void *data, int len,
                    const char *msg_id, void *ctx)
{
    (void)seq;
    (void)msg_id;
    stream_recs_t *s = ctx;
    size_t sl = strlen(subject);
    if (sl < 2 || strcmp(subject + sl - 2, ".r") != 0) return;
    long n = cl_wire_parse_round(data, (size_t)len, NULL, 0);
    if (n < 0) {
        s->bad = true;
        return;
    }
    cl_rec_t *recs = calloc((size_t)n + 1, sizeof *recs);
    cl_wire_parse_round(data, (size_t)len, recs, (size_t)n);
    for (long i = 0; i < n; i++)
        cln_recs_push(&s->recs, recs[i].user, recs[i].user_len, recs[i].message_id, recs[i].id_len,
                      recs[i].seq);
    free(recs);
}

static bool has_rec(const cln_recs_t *r, const cln_rec_t *want)
{
    for (size_t i = 0; i < r->n; i++)
        if (r->v[i].seq == want->seq && strcmp(r->v[i].user, want->user) == 0 &&
            strcmp(r->v[i].id, want->id) == 0)
            return true;
    return false;
}

START_TEST(an_acknowledged_round_survives_a_kill_of_the_stream_leader)
{
    cl_config_t cfg;
    clnode_t a;
    raft_config(&cfg, 1);
    ck_assert_int_eq(clnode_open(&a, &cfg), 0);
    clnode_t *nodes[] = {&a};
    ck_assert(clnode_wait(nodes, 1, 30000, owns_all, &a));
    cln_round_t *r = clnode_append(&a, "u1", 5, "q");
    ck_assert_int_eq(clnode_round_wait(nodes, 1, r, 10000), CL_OK);
    char stream[32];
    snprintf(stream, sizeof stream, "HERALD_P%u", r->p);
    int leader = natsfix_stream_leader(&nf, stream);
    ck_assert_int_ge(leader, 0);
    natsfix_signal(&nf, leader, SIGKILL);
    /* Read from the two survivors once they have elected a leader. */
    stream_recs_t s = {0};
    ck_assert_int_ge(natsfix_read_stream(&nf, stream, collect, &s), 1);
    ck_assert(!s.bad);
    for (size_t i = 0; i < r->n; i++)
        ck_assert_msg(has_rec(&s.recs, &r->recs[i]), "acknowledged %s lost", r->recs[i].id);
    free(r);
    cln_recs_free(&s.recs);
    clnode_close(&a);
}
END_TEST

START_TEST(without_a_quorum_nothing_is_acknowledged)
{
    cl_config_t cfg;
    clnode_t a;
    raft_config(&cfg, 1);
    ck_assert_int_eq(clnode_open(&a, &cfg), 0);
    clnode_t *nodes[] = {&a};
    ck_assert(clnode_wait(nodes, 1, 30000, owns_all, &a));
    cln_round_t *r = clnode_append(&a, "u1", 2, "q");
    ck_assert_int_eq(clnode_round_wait(nodes, 1, r, 10000), CL_OK);
    free(r);
    natsfix_signal(&nf, 1, SIGKILL);
    natsfix_signal(&nf, 2, SIGKILL);
    /* One server of three: rounds fail or wait, none is acknowledged. */
    uint64_t ok0 = a.rounds_ok;
    cln_round_t *held[64];
    size_t n_held = 0;
    long end = (long)mono_ms() + 8000;
    while ((long)mono_ms() < end && n_held < 64) {
        held[n_held++] = clnode_append(&a, "u1", 1, "noq");
        clnode_round_wait(nodes, 1, held[n_held - 1], (int)(end - (long)mono_ms()));
        clnode_pump(nodes, 1, 200);
    }
    ck_assert_uint_eq(a.rounds_ok, ok0);
    /* The servers come back: writes are acknowledged again and the seqs stay gap-free. */
    ck_assert_int_eq(natsfix_restart(&nf, 1), 0);
    ck_assert_int_eq(natsfix_restart(&nf, 2), 0);
    bool ok = false;
    end = (long)mono_ms() + 90000;
    while (!ok && (long)mono_ms() < end) {
        clnode_wait(nodes, 1, 1000, owns_all, &a);
        r = clnode_append(&a, "u1", 1, "back");
        ok = clnode_round_wait(nodes, 1, r, 15000) == CL_OK;
        if (r->done) free(r);
    }
    ck_assert(ok);
    for (size_t i = 0; i < n_held; i++) { /* each got an answer by now */
        ck_assert_int_ge(clnode_round_wait(nodes, 1, held[i], 30000), 0);
        free(held[i]);
    }
    char stream[32];
    snprintf(stream, sizeof stream, "HERALD_P%u", cl_partition_of(a.cl, "u1", 2));
    stream_recs_t s = {0};
    ck_assert_int_ge(natsfix_read_stream(&nf, stream, collect, &s), 1);
    for (size_t i = 0; i < s.recs.n; i++)
        ck_assert_uint_eq(s.recs.v[i].seq, i + 1);
    cln_recs_free(&s.recs);
    clnode_close(&a);
}
END_TEST

/* Per partition: when writes were refused, for how long. */
typedef struct {
    long first_fail, back_ok, longest;
    unsigned fails;
} outage_t;

#define LOAD_USERS  12
#define LOAD_ROUNDS 20000

/* The leader-kill load: users by partition, the rounds handed over, outages seen. */
typedef struct {
    char users[LOAD_USERS][16];
    const char *by_part[PARTS + 1][LOAD_USERS];
    size_t n_by_part[PARTS + 1];
    cln_round_t **rounds;
    size_t n_rounds;
    outage_t out[PARTS + 1];
    size_t next_check[PARTS + 1]; /* per partition: the first round not yet looked at */
} load_t;

static void load_users(load_t *l, const clnode_t *a)
{
    for (int i = 0; i < LOAD_USERS; i++) {
        snprintf(l->users[i], sizeof l->users[i], "user%d", i);
        unsigned p = cl_partition_of(a->cl, l->users[i], strlen(l->users[i]));
        l->by_part[p][l->n_by_part[p]++] = l->users[i];
    }
    ck_assert_uint_gt(l->n_by_part[0], 0);
}

/* Outages, from the answers in order. */
static void load_track_outages(load_t *l)
{
    for (size_t i = 0; i < l->n_rounds; i++) {
        cln_round_t *r = l->rounds[i];
        if (!r->done || r->p > PARTS || i < l->next_check[r->p]) continue;
        l->next_check[r->p] = i + 1;
        outage_t *o = &l->out[r->p];
        if (r->st != CL_OK) {
            o->fails++;
            if (!o->first_fail) o->first_fail = (long)mono_ms();
        } else if (o->first_fail) {
            long len = (long)mono_ms() - o->first_fail;
            if (len > o->longest) o->longest = len;
            o->first_fail = 0;
        }
    }
}

/* 30 s (or LOAD_ROUNDS rounds) of appends to every owned partition, killing partition 0's
 * stream leader after 3 s. Returns the killed server. */
static int load_run_and_kill(load_t *l, clnode_t *a, clnode_t **nodes)
{
    long t0 = (long)mono_ms(), killed_at = 0;
    int victim = -1;
    while ((long)mono_ms() - t0 < 30000 && l->n_rounds < LOAD_ROUNDS) {
        if (!killed_at && (long)mono_ms() - t0 > 3000) {
            victim = natsfix_stream_leader(&nf, "HERALD_P0");
            ck_assert_int_ge(victim, 0);
            natsfix_signal(&nf, victim, SIGKILL);
            killed_at = (long)mono_ms();
        }
        for (unsigned p = 0; p < PARTS; p++) {
            if (!l->n_by_part[p] || !a->owns[p]) continue;
            size_t per_user = 1 + l->n_rounds % 2;
            l->rounds[l->n_rounds++] =
                clnode_append_users(a, l->by_part[p], l->n_by_part[p], per_user, "L");
        }
        clnode_pump(nodes, 2, 10);
        load_track_outages(l);
        size_t pending = 0;
        for (size_t i = 0; i < l->n_rounds; i++)
            pending += !l->rounds[i]->done;
        if (pending > 200) clnode_pump(nodes, 2, 50);
    }
    ck_assert_int_ge(victim, 0);
    return victim;
}

/* Partition p's stream holds every acknowledged record of it, and every user's seqs are
 * 1..N once each; the reader saw partition 0's stream in order, each record once. */
static void load_check_stream(const load_t *l, unsigned p, clnode_t *a, clnode_t *reader,
                              clnode_t **nodes)
{
    char name[32];
    snprintf(name, sizeof name, "HERALD_P%u", p);
    stream_recs_t s = {0};
    ck_assert_int_ge(natsfix_read_stream(&nf, name, collect, &s), 0);
    ck_assert(!s.bad);
    for (size_t i = 0; i < a->acked.n; i++) {
        const cln_rec_t *ack = &a->acked.v[i];
        if (cl_partition_of(a->cl, ack->user, strlen(ack->user)) != p) continue;
        ck_assert_msg(has_rec(&s.recs, ack), "acknowledged %s (seq %llu) lost", ack->id,
                      (unsigned long long)ack->seq);
    }
    for (size_t u = 0; u < l->n_by_part[p]; u++) {
        uint64_t expect = 1;
        for (size_t i = 0; i < s.recs.n; i++)
            if (strcmp(s.recs.v[i].user, l->by_part[p][u]) == 0) {
                ck_assert_msg(s.recs.v[i].seq == expect, "%s: seq %llu where %llu was due",
                              l->by_part[p][u], (unsigned long long)s.recs.v[i].seq,
                              (unsigned long long)expect);
                expect++;
            }
    }
    if (p == 0) {
        clnode_pump(nodes, 2, 2000);
        ck_assert(!reader->consumed_disorder);
        ck_assert_uint_eq(reader->consumed[0].n, s.recs.n);
        for (size_t i = 0; i < s.recs.n; i++)
            ck_assert_str_eq(reader->consumed[0].v[i].id, s.recs.v[i].id);
    }
    cln_recs_free(&s.recs);
}

START_TEST(leader_kill_under_load_loses_nothing_acknowledged_and_duplicates_nothing)
{
    cl_config_t cfg, rcfg;
    clnode_t a, reader;
    raft_config(&cfg, 1);
    raft_config(&rcfg, 2);
    ck_assert_int_eq(clnode_open(&a, &cfg), 0);
    clnode_t *nodes[] = {&a, &reader};
    ck_assert(clnode_wait(nodes, 1, 30000, owns_all, &a));
    ck_assert_int_eq(clnode_open(&reader, &rcfg), 0);
    cl_test_pause(reader.cl, true); /* reads only */
    ck_assert_int_eq(cl_consume_start(reader.cl, 0, 1, 0), 0);

    static load_t l;
    memset(&l, 0, sizeof l);
    load_users(&l, &a);
    l.rounds = calloc(LOAD_ROUNDS, sizeof *l.rounds);
    int victim = load_run_and_kill(&l, &a, nodes);
    /* Everything answered (no round is left without its answer). */
    for (size_t i = 0; i < l.n_rounds; i++)
        ck_assert_int_ge(clnode_round_wait(nodes, 2, l.rounds[i], 30000), 0);
    ck_assert_int_eq(natsfix_restart(&nf, victim), 0);
    ck_assert(clnode_wait(nodes, 2, 60000, owns_all, &a));

    fprintf(stderr,
            "leader kill: %zu rounds, %llu acknowledged records; partition 0 refused writes "
            "for %ld ms (%u rounds failed: %llu unavailable, %llu fenced, %llu unknown)\n",
            l.n_rounds, (unsigned long long)a.acked.n, l.out[0].longest, l.out[0].fails,
            (unsigned long long)a.rounds_failed[CL_UNAVAILABLE],
            (unsigned long long)a.rounds_failed[CL_FENCED],
            (unsigned long long)a.rounds_failed[CL_UNKNOWN]);
    ck_assert_uint_gt(a.acked.n, 100);
    ck_assert_int_le(l.out[0].longest, 30000);
    for (unsigned p = 0; p < PARTS; p++)
        load_check_stream(&l, p, &a, &reader, nodes);
    for (size_t i = 0; i < l.n_rounds; i++)
        free(l.rounds[i]);
    free(l.rounds);
    clnode_close(&reader);
    clnode_close(&a);
}
END_TEST

static Suite *raft_suite(void)
{
    Suite *s = suite_create("cluster_raft");
    TCase *tc = tcase_create("raft");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, an_acknowledged_round_survives_a_kill_of_the_stream_leader);
    tcase_add_test(tc, without_a_quorum_nothing_is_acknowledged);
    tcase_add_test(tc, leader_kill_under_load_loses_nothing_acknowledged_and_duplicates_nothing);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return natsfix_run_suite(raft_suite());
}
