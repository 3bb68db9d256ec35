/* test_cl_append.c - appends, forwarding and delivery against a real nats-server: rounds
 * queued behind a write are grouped and answered in order, a commit larger than a NATS
 * message spans several, a node that does not own a partition is refused, forwards reach
 * the owner (or fail fast without one), ordered consumers deliver the stream in order. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cl_wire.h"
#include "clnode.h"
#include "herald_time.h"
#include "natsfix.h"

#define PARTS 2

static natsfix_t nf;
static cl_config_t cfg1, cfg2;
static clnode_t a, b;

static bool a_owns_all(void *arg)
{
    (void)arg;
    for (unsigned p = 0; p <= PARTS; p++)
        if (!a.owns[p] || !cl_owns(a.cl, p)) return false;
    return true;
}

/* One node, owning everything. */
static void setup(void)
{
    ck_assert_int_eq(natsfix_start(&nf, 1), 0);
    clnode_config(&cfg1, nf.url, 1, PARTS, 1);
    clnode_config(&cfg2, nf.url, 2, PARTS, 1);
    ck_assert_int_eq(clnode_open(&a, &cfg1), 0);
    clnode_t *nodes[] = {&a};
    ck_assert(clnode_wait(nodes, 1, 10000, a_owns_all, NULL));
}

static void teardown(void)
{
    clnode_close(&a);
    clnode_close(&b);
    natsfix_stop(&nf);
}

/* Records of a stream, as written: per user, the seqs in stream order. */
typedef struct {
    cln_recs_t recs;
    uint64_t messages;
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
    s->messages++;
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

/* Each user's records in the stream are seqs 1..N, once each. Returns the record count. */
static size_t check_gap_free(const cln_recs_t *r)
{
    for (size_t i = 0; i < r->n; i++) {
        uint64_t expect = 1;
        for (size_t j = 0; j < i; j++)
            if (strcmp(r->v[j].user, r->v[i].user) == 0) expect++;
        ck_assert_msg(r->v[i].seq == expect, "user %s: seq %llu where %llu was due", r->v[i].user,
                      (unsigned long long)r->v[i].seq, (unsigned long long)expect);
    }
    return r->n;
}

START_TEST(rounds_queued_behind_a_write_go_together_and_are_answered_in_order)
{
    clnode_t *nodes[] = {&a};
    const char *users[] = {"u1", "u2", "u3", "u4", "u5", "u6", "u7", "u8", "u9"};
    const char *mine[9];
    size_t n_mine = 0;
    for (size_t i = 0; i < 9; i++) /* users of partition 0 */
        if (cl_partition_of(a.cl, users[i], strlen(users[i])) == 0) mine[n_mine++] = users[i];
    ck_assert_uint_ge(n_mine, 2);
    cl_counters_t c0, c1;
    cl_counters(a.cl, &c0);
    enum { ROUNDS = 200 };
    cln_round_t *r[ROUNDS];
    for (int i = 0; i < ROUNDS; i++) /* no dispatch between: they queue */
        r[i] = clnode_append_users(&a, mine, n_mine, 1 + (size_t)i % 3, "g");
    for (int i = 0; i < ROUNDS; i++) {
        ck_assert_int_eq(clnode_round_wait(nodes, 1, r[i], 10000), CL_OK);
        ck_assert_uint_eq(r[i]->answered, (uint64_t)i + 1);
    }
    cl_counters(a.cl, &c1);
    ck_assert_uint_eq(c1.rounds_ok - c0.rounds_ok, ROUNDS);
    ck_assert_uint_lt(c1.commits - c0.commits, ROUNDS / 4); /* grouped */
    stream_recs_t s = {0};
    ck_assert_int_gt(natsfix_read_stream(&nf, "HERALD_P0", collect, &s), 0);
    ck_assert(!s.bad);
    size_t expect = 0;
    for (int i = 0; i < ROUNDS; i++)
        expect += r[i]->n;
    ck_assert_uint_eq(check_gap_free(&s.recs), expect);
    ck_assert_uint_eq(s.messages, c1.commits - c0.commits);
    for (int i = 0; i < ROUNDS; i++)
        free(r[i]);
    cln_recs_free(&s.recs);
}
END_TEST

START_TEST(a_round_larger_than_a_nats_message_spans_several_and_is_stored_whole)
{
    clnode_t *nodes[] = {&a};
    a.pad = 60 * 1024; /* 40 records of 60 KiB: 2.4 MB, over the default 1 MB max_payload */
    cln_round_t *r = clnode_append(&a, "big", 40, "big");
    ck_assert_int_eq(clnode_round_wait(nodes, 1, r, 20000), CL_OK);
    free(r);
    a.pad = 0;
    r = clnode_append(&a, "big", 1, "small");
    ck_assert_int_eq(clnode_round_wait(nodes, 1, r, 20000), CL_OK);
    free(r);
    char stream[32];
    snprintf(stream, sizeof stream, "HERALD_P%u", cl_partition_of(a.cl, "big", 3));
    stream_recs_t s = {0};
    ck_assert_int_gt(natsfix_read_stream(&nf, stream, collect, &s), 0);
    ck_assert(!s.bad);
    ck_assert_uint_ge(s.messages, 4); /* 3+ for the big round, 1 for the small */
    ck_assert_uint_eq(check_gap_free(&s.recs), 41);
    cln_recs_free(&s.recs);
}
END_TEST

START_TEST(a_node_that_does_not_own_the_partition_is_refused)
{
    cfg2.partitions = PARTS;
    ck_assert_int_eq(clnode_open(&b, &cfg2), 0);
    cl_test_pause(b.cl, true); /* never takes anything */
    clnode_t *nodes[] = {&a, &b};
    ck_assert(!cl_owns(b.cl, 0));
    cln_round_t *r = clnode_append(&b, "u1", 2, "b");
    ck_assert_int_eq(clnode_round_wait(nodes, 2, r, 5000), CL_FENCED);
    free(r);
    ck_assert_uint_eq(clnode_user_seq(&b, "u1"), 0); /* rolled back */
}
END_TEST

START_TEST(forward_reaches_the_owner_and_its_answer_comes_back)
{
    ck_assert_int_eq(clnode_open(&b, &cfg2), 0);
    cl_test_pause(b.cl, true);
    clnode_t *nodes[] = {&a, &b};
    cln_fwd_t f;
    ck_assert_int_eq(clnode_forward(&b, 1, "frame-1", &f), 0);
    for (int i = 0; i < 200 && !f.done; i++)
        clnode_pump(nodes, 2, 20);
    ck_assert(f.done);
    ck_assert_int_eq(f.st, CL_OK);
    ck_assert_str_eq(f.resp, "ack:frame-1");
    ck_assert_uint_eq(a.forwarded_in, 1);
}
END_TEST

START_TEST(forward_to_a_partition_without_owner_is_unavailable_at_once)
{
    ck_assert_int_eq(clnode_open(&b, &cfg2), 0);
    cl_test_pause(b.cl, true);
    clnode_close(&a); /* nobody owns anything now */
    clnode_t *nodes[] = {&b};
    cln_fwd_t f;
    uint64_t t0 = mono_ms();
    ck_assert_int_eq(clnode_forward(&b, 1, "frame-2", &f), 0);
    for (int i = 0; i < 200 && !f.done; i++)
        clnode_pump(nodes, 1, 10);
    long took = (long)(mono_ms() - t0);
    ck_assert(f.done);
    ck_assert_int_eq(f.st, CL_UNAVAILABLE);
    /* No responders, not the forward timeout. */
    ck_assert_int_lt(took, (long)cfg2.forward_timeout_ms);
}
END_TEST

START_TEST(forward_the_owner_does_not_answer_times_out_unavailable)
{
    ck_assert_int_eq(clnode_open(&b, &cfg2), 0);
    cl_test_pause(b.cl, true);
    a.forward_silent = true;
    clnode_t *nodes[] = {&a, &b};
    cln_fwd_t f;
    ck_assert_int_eq(clnode_forward(&b, 0, "frame-3", &f), 0);
    for (int i = 0; i < 300 && !f.done; i++)
        clnode_pump(nodes, 2, 20);
    ck_assert(f.done);
    ck_assert_int_eq(f.st, CL_UNAVAILABLE);
    ck_assert_uint_eq(a.forwarded_in, 1);
}
END_TEST

typedef struct {
    clnode_t *n;
    unsigned p;
    size_t want;
} consumed_t;

static bool consumed_enough(void *arg)
{
    consumed_t *c = arg;
    return c->n->consumed[c->p].n >= c->want;
}

START_TEST(consumer_delivers_the_stream_in_order_from_a_position_or_a_time_and_stops)
{
    clnode_t *nodes[] = {&a, &b};
    ck_assert_int_eq(clnode_open(&b, &cfg2), 0);
    cl_test_pause(b.cl, true); /* a reader only */
    const char *user = "reader";
    unsigned p = cl_partition_of(a.cl, user, strlen(user));
    for (int i = 0; i < 10; i++) {
        cln_round_t *r = clnode_append(&a, user, 3, "c");
        ck_assert_int_eq(clnode_round_wait(nodes, 2, r, 5000), CL_OK);
        free(r);
    }
    /* From the start: all 30, in order, exactly once. */
    ck_assert_int_eq(cl_consume_start(b.cl, p, 1, 0), 0);
    consumed_t c = {&b, p, 30};
    ck_assert(clnode_wait(nodes, 2, 10000, consumed_enough, &c));
    clnode_pump(nodes, 2, 300);
    ck_assert_uint_eq(b.consumed[p].n, 30);
    ck_assert(!b.consumed_disorder);
    for (size_t i = 0; i < 30; i++)
        ck_assert_uint_eq(b.consumed[p].v[i].seq, i + 1);
    /* Live: new rounds arrive as they are written. */
    cln_round_t *r = clnode_append(&a, user, 2, "live");
    ck_assert_int_eq(clnode_round_wait(nodes, 2, r, 5000), CL_OK);
    free(r);
    c.want = 32;
    ck_assert(clnode_wait(nodes, 2, 5000, consumed_enough, &c));
    ck_assert_uint_eq(b.consumed[p].v[31].seq, 32);
    /* Restart from a stream position: seq 3 of the stream is the second round. */
    b.consumed[p].n = 0;
    b.consumed_last[p] = 0;
    ck_assert_int_eq(cl_consume_start(b.cl, p, 3, 0), 0);
    c.want = 29;
    ck_assert(clnode_wait(nodes, 2, 10000, consumed_enough, &c));
    clnode_pump(nodes, 2, 300);
    ck_assert_uint_eq(b.consumed[p].n, 29);
    ck_assert_uint_eq(b.consumed[p].v[0].seq, 4);
    /* From a time: only what was written after it. The time is taken 10-20 ms into a
     * second, over a second after the last write: cnats 3.4.1 sends such a time without the
     * fraction's leading zero (x.012 s as "x.12", later than the round written right after
     * it), which the layer must not let skip that round. */
    clnode_pump(nodes, 2, 1100);
    struct timespec now;
    for (int i = 0; i < 4000; i++) {
        clock_gettime(CLOCK_REALTIME, &now);
        if (now.tv_nsec >= 10000000 && now.tv_nsec < 20000000) break;
        usleep(500);
    }
    r = clnode_append(&a, user, 1, "late");
    ck_assert_int_eq(clnode_round_wait(nodes, 2, r, 5000), CL_OK);
    free(r);
    b.consumed[p].n = 0;
    b.consumed_last[p] = 0;
    ck_assert_int_eq(
        cl_consume_start(b.cl, p, 0, (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec),
        0);
    c.want = 1;
    ck_assert(clnode_wait(nodes, 2, 10000, consumed_enough, &c));
    clnode_pump(nodes, 2, 300);
    ck_assert_uint_eq(b.consumed[p].n, 1);
    ck_assert_uint_eq(b.consumed[p].v[0].seq, 33);
    /* Stopped: nothing more is delivered. */
    cl_consume_stop(b.cl, p);
    r = clnode_append(&a, user, 1, "after");
    ck_assert_int_eq(clnode_round_wait(nodes, 2, r, 5000), CL_OK);
    free(r);
    clnode_pump(nodes, 2, 500);
    ck_assert_uint_eq(b.consumed[p].n, 1);
}
END_TEST

static Suite *append_suite(void)
{
    Suite *s = suite_create("cluster_append");
    TCase *tc = tcase_create("append");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, rounds_queued_behind_a_write_go_together_and_are_answered_in_order);
    tcase_add_test(tc, a_round_larger_than_a_nats_message_spans_several_and_is_stored_whole);
    tcase_add_test(tc, a_node_that_does_not_own_the_partition_is_refused);
    tcase_add_test(tc, forward_reaches_the_owner_and_its_answer_comes_back);
    tcase_add_test(tc, forward_to_a_partition_without_owner_is_unavailable_at_once);
    tcase_add_test(tc, forward_the_owner_does_not_answer_times_out_unavailable);
    tcase_add_test(tc, consumer_delivers_the_stream_in_order_from_a_position_or_a_time_and_stops);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return natsfix_run_suite(append_suite());
}
