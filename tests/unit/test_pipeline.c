/* test_pipeline.c - the broker's pipeline, users and routes (broker/pipeline.c, users.c,
 * route.c) in-process: a broker state set up as main.c does (a real journal and real rings in
 * /dev/shm, no sockets), publish bodies taken in, drain rounds run, rings read back. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "acks.h"
#include "broker.h"
#include "core.h"
#include "codec.h"
#include "dedup.h"
#include "items.h"
#include "journal.h"
#include "json.h"
#include "ingest.h"
#include "pipeline.h"
#include "presence.h"
#include "procs.h"
#include "proto.h"
#include "route.h"
#include "users.h"

static broker_t *b;
static char prefix[64];
static msgpack_sbuffer body;

/* The journal and rings under prefix: after each test, and in the runner (a failed test's
 * process ends before its teardown). */
static void remove_objects(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -f /dev/shm/%s.*", prefix);
    ck_assert_int_eq(system(cmd), 0);
}

/* A broker state as main.c builds it, minus the listeners: journal and rings under prefix. */
static void setup(void)
{
    b = calloc(1, sizeof *b);
    ck_assert_ptr_nonnull(b);
    config_defaults(&b->cfg);
    snprintf(b->cfg.shm_prefix, sizeof b->cfg.shm_prefix, "%s", prefix);
    b->cfg.ring_bytes = 1u << 20;
    b->cfg.dedup_window = 1024;
    herald_error_t err = {0};
    ck_assert_msg(bk_core_open(b, &err) == 0, "%s", err.message);
    msgpack_sbuffer_init(&body);
}

static void teardown(void)
{
    bk_core_close(b);
    free(b);
    msgpack_sbuffer_destroy(&body);
    remove_objects();
}

/* One system_notice for user, with message_id id (NULL: none) and priority prio. */
static void note_json(char *out, size_t cap, const char *user, const char *id, int prio,
                      const char *title)
{
    char idf[80] = "";
    if (id) snprintf(idf, sizeof idf, "\"message_id\":\"%s\",", id);
    snprintf(out, cap,
             "{%s\"message_type\":\"system_notice\",\"user_id\":\"%s\",\"priority\":%d,"
             "\"payload\":{\"title\":\"%s\",\"content\":\"c\",\"level\":\"info\"}}",
             idf, user, prio, title);
}

/* Take a JSON publish body in and run drain rounds until the queues are empty. */
static bk_req_t *publish(const char *json)
{
    herald_error_t err = {0};
    msgpack_sbuffer_clear(&body);
    ck_assert_msg(json_to_msgpack(json, strlen(json), &body, &err) == 0, "%s", err.message);
    bk_req_t *r = bk_ingest_body(b, (const uint8_t *)body.data, body.size);
    ck_assert_ptr_nonnull(r);
    for (int i = 0; i < 16 && bk_queue_total(b); i++) {
        bk_drain_schedule(b);
        bk_drain(b);
    }
    ck_assert_uint_eq(bk_queue_total(b), 0);
    ck_assert_uint_eq(r->pending, 0);
    return r;
}

static bk_user_t *user(const char *id)
{
    return bk_users_get(b, id, strlen(id), false);
}

/* The broker's loop passes again without sleeping only while a round leaves work queued
 * (bk_drain_pending, read at the end of each pass): a round that takes everything leaves
 * none, one past the round budget leaves the rest. */
START_TEST(a_round_past_its_budget_leaves_the_rest_pending_and_only_then)
{
    size_t n = BK_ROUND_BUDGET + 100, cap = n * 200 + 16, len = 0;
    char *json = malloc(cap), one[256];
    ck_assert_ptr_nonnull(json);
    json[len++] = '[';
    for (size_t i = 0; i < n; i++) {
        char id[32];
        snprintf(id, sizeof id, "budget-%zu", i);
        note_json(one, sizeof one, "u1", id, 1, "t");
        len += (size_t)snprintf(json + len, cap - len, "%s%s", i ? "," : "", one);
    }
    json[len++] = ']';
    herald_error_t err = {0};
    msgpack_sbuffer_clear(&body);
    ck_assert_msg(json_to_msgpack(json, len, &body, &err) == 0, "%s", err.message);
    free(json);
    bk_req_t *r = bk_ingest_body(b, (const uint8_t *)body.data, body.size);
    ck_assert_ptr_nonnull(r);
    ck_assert(bk_drain_pending(b));
    bk_drain(b);
    ck_assert_uint_eq(bk_queue_total(b), 100);
    ck_assert(bk_drain_pending(b)); /* the rest: another pass at once */
    bk_drain(b);
    ck_assert_uint_eq(bk_queue_total(b), 0);
    ck_assert(!bk_drain_pending(b)); /* all taken: the loop may sleep */
    ck_assert_uint_eq(r->pending, 0);
    bk_req_free(r);
}
END_TEST

START_TEST(each_user_gets_gap_free_seqs_and_p0_is_sequenced_first)
{
    char j[4096], one[300];
    size_t w = (size_t)snprintf(j, sizeof j, "[");
    const int prios[] = {3, 0, 2, 1, 3, 0};
    for (int i = 0; i < 6; i++) {
        char id[16];
        snprintf(id, sizeof id, "id-%d", i);
        note_json(one, sizeof one, i % 2 ? "alice" : "bob", id, prios[i], id);
        w += (size_t)snprintf(j + w, sizeof j - w, "%s%s", i ? "," : "", one);
    }
    snprintf(j + w, sizeof j - w, "]");
    bk_req_t *r = publish(j);
    ck_assert_uint_eq(r->n, 6);
    for (uint32_t i = 0; i < 6; i++)
        ck_assert_int_eq(r->res[i].code, HERR_OK);
    /* alice: items 1 (P0), 3 (P1), 5 (P0) → P0s first in arrival order, then P1. */
    ck_assert_uint_eq(r->res[1].seq, 1);
    ck_assert_uint_eq(r->res[5].seq, 2);
    ck_assert_uint_eq(r->res[3].seq, 3);
    /* bob: items 0 (P3), 2 (P2), 4 (P3) → P2, then the P3s in arrival order. */
    ck_assert_uint_eq(r->res[2].seq, 1);
    ck_assert_uint_eq(r->res[0].seq, 2);
    ck_assert_uint_eq(r->res[4].seq, 3);
    bk_user_t *a = user("alice");
    ck_assert_ptr_nonnull(a);
    ck_assert_uint_eq(a->last_seq, 3);
    ck_assert_uint_eq(a->hist_count, 3);
    uint64_t want = 1;
    for (bk_item_t *it = a->hist_head; it; it = it->next)
        ck_assert_uint_eq(it->seq, want++);
    ck_assert_uint_eq(b->c.accepted, 6);
    ck_assert_uint_eq(b->c.sent, 6);
    bk_req_free(r);
}
END_TEST

START_TEST(a_repeat_gets_the_original_seq_and_a_conflict_is_refused)
{
    char j[1024], n1[300], n2[300], n3[300];
    note_json(n1, sizeof n1, "carol", "dup-1", 1, "first");
    bk_req_t *r = publish(n1);
    ck_assert_int_eq(r->res[0].code, HERR_OK);
    ck_assert_uint_eq(r->res[0].seq, 1);
    bk_req_free(r);
    note_json(n2, sizeof n2, "carol", "dup-1", 1, "first");  /* the same again */
    note_json(n3, sizeof n3, "carol", "dup-1", 1, "second"); /* the id, another payload */
    snprintf(j, sizeof j, "[%s,%s]", n2, n3);
    r = publish(j);
    ck_assert_int_eq(r->res[0].code, HERR_OK);
    ck_assert(r->res[0].duplicate);
    ck_assert_uint_eq(r->res[0].seq, 1);
    ck_assert_int_eq(r->res[1].code, HERR_ID_CONFLICT);
    ck_assert_uint_eq(user("carol")->last_seq, 1); /* nothing new was sequenced */
    ck_assert_uint_eq(b->c.deduplicated, 1);
    ck_assert_uint_eq(b->c.id_conflicts, 1);
    bk_req_free(r);
}
END_TEST

START_TEST(an_invalid_item_is_refused_alone)
{
    char j[1024], ok1[300], ok2[300];
    note_json(ok1, sizeof ok1, "dave", NULL, 2, "a");
    note_json(ok2, sizeof ok2, "dave", NULL, 2, "b");
    snprintf(j, sizeof j, "[%s,{\"message_type\":\"no_such_type\",\"user_id\":\"dave\"},%s]", ok1,
             ok2);
    bk_req_t *r = publish(j);
    ck_assert_int_eq(r->res[0].code, HERR_OK);
    ck_assert_int_ne(r->res[1].code, HERR_OK);
    ck_assert_ptr_nonnull(r->res[1].message);
    ck_assert_int_eq(r->res[2].code, HERR_OK);
    ck_assert_uint_eq(r->res[0].seq, 1);
    ck_assert_uint_eq(r->res[2].seq, 2);
    ck_assert_uint_eq(b->c.invalid, 1);
    bk_req_free(r);
}
END_TEST

typedef struct {
    char users[16][HERALD_MAX_ID_LEN + 1];
    uint64_t seqs[16];
    int n;
    uint64_t session;     /* of the replayed records */
    rec_range_t gap, end; /* the last REC_GAP and REC_REPLAY_END */
} seen_t;

/* Ring records: notifications (live or replayed) into users/seqs, ranges into gap/end. */
static int on_record(uint32_t type, const uint8_t *data, uint32_t len, void *ctx)
{
    seen_t *s = ctx;
    if (type == REC_GAP || type == REC_REPLAY_END) {
        ck_assert_uint_ge(len, sizeof(rec_range_t));
        memcpy(type == REC_GAP ? &s->gap : &s->end, data, sizeof(rec_range_t));
        return 0;
    }
    if (type == REC_REPLAY) {
        rec_replay_t rh;
        memcpy(&rh, data, sizeof rh);
        s->session = rh.session;
        data += sizeof rh;
        len -= (uint32_t)sizeof rh;
    } else if (type != REC_NOTIFY) {
        return 0;
    }
    if (s->n == 16) return 0;
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    notif_t n;
    herald_error_t err = {0};
    ck_assert_int_eq(codec_decode(data, len, &u, &n, &err), 0);
    snprintf(s->users[s->n], sizeof s->users[0], "%s", n.user_id);
    s->seqs[s->n++] = n.seq;
    msgpack_unpacked_destroy(&u);
    return 0;
}

START_TEST(a_gateway_ring_gets_only_the_users_routed_to_it)
{
    herald_error_t err = {0};
    bk_gateway_t *g = bk_route_attach(b, 0, getpid(), &err);
    ck_assert_msg(g != NULL, "%s", err.message);
    char name[160];
    ring_name(name, sizeof name, prefix, 0);
    ring_t *c = NULL;
    ck_assert_int_eq(ring_open(&c, name, RING_CONSUMER, 0, 0, &err), 0);
    bk_user_t *e = bk_users_get(b, "erin", 4, true);
    bk_users_route_add(b, e, 0, 2); /* two sessions of erin on gateway 0 */
    ck_assert_uint_eq(bk_users_route_refs(e, 0), 2);
    ck_assert_uint_eq(g->users, 1);
    char j[1024], n1[300], n2[300], n3[300];
    note_json(n1, sizeof n1, "erin", NULL, 0, "x");
    note_json(n2, sizeof n2, "frank", NULL, 0, "y"); /* no session anywhere */
    note_json(n3, sizeof n3, "erin", NULL, 3, "z");
    snprintf(j, sizeof j, "[%s,%s,%s]", n1, n2, n3);
    bk_req_free(publish(j));
    seen_t s = {0};
    ring_read_batch(c, on_record, &s, 100);
    ck_assert_int_eq(s.n, 2);
    ck_assert_str_eq(s.users[0], "erin");
    ck_assert_uint_eq(s.seqs[0], 1);
    ck_assert_str_eq(s.users[1], "erin");
    ck_assert_uint_eq(s.seqs[1], 2);
    /* One session closes: still routed; the last one: not any more. */
    bk_users_route_del(b, e, 0, 1);
    ck_assert_uint_eq(bk_users_route_refs(e, 0), 1);
    bk_users_route_del(b, e, 0, 1);
    ck_assert_uint_eq(bk_users_route_refs(e, 0), 0);
    ck_assert_uint_eq(g->users, 0);
    bk_req_free(publish(n1));
    s.n = 0;
    ring_read_batch(c, on_record, &s, 100);
    ck_assert_int_eq(s.n, 0);
    /* Detaching forgets every route to the gateway. */
    bk_users_route_add(b, e, 0, 1);
    bk_route_detach(b, g);
    ck_assert_uint_eq(bk_users_route_refs(e, 0), 0);
    ring_close(c);
}
END_TEST

START_TEST(replay_sends_the_history_after_a_seq_a_gap_for_what_is_gone_and_an_end)
{
    b->cfg.history_size = 4;
    herald_error_t err = {0};
    bk_gateway_t *g = bk_route_attach(b, 1, getpid(), &err);
    ck_assert_msg(g != NULL, "%s", err.message);
    char name[160], n1[300];
    ring_name(name, sizeof name, prefix, 1);
    ring_t *c = NULL;
    ck_assert_int_eq(ring_open(&c, name, RING_CONSUMER, 0, 1, &err), 0);
    for (int i = 0; i < 6; i++) {
        note_json(n1, sizeof n1, "gina", NULL, 2, "h");
        bk_req_free(publish(n1));
    }
    bk_user_t *u = user("gina");
    ck_assert_uint_eq(u->hist_count, 4); /* seqs 3..6 */
    bk_route_replay(b, g, u, 7, 3, u->last_seq, true);
    bk_route_publish(b);
    seen_t s = {0};
    ring_read_batch(c, on_record, &s, 100);
    ck_assert_int_eq(s.n, 3);
    for (int i = 0; i < 3; i++)
        ck_assert_uint_eq(s.seqs[i], (uint64_t)i + 4);
    ck_assert_uint_eq(s.session, 7);
    ck_assert_uint_eq(s.end.session, 7);
    ck_assert_uint_eq(s.end.from, 4);
    ck_assert_uint_eq(s.end.to, 6);
    ck_assert_uint_eq(s.gap.to, 0); /* history covers it: no gap */
    /* From seq 0: 1..2 are out of history, so a gap (1, 2) comes first. */
    memset(&s, 0, sizeof s);
    bk_route_replay(b, g, u, 8, 0, u->last_seq, true);
    bk_route_publish(b);
    ring_read_batch(c, on_record, &s, 100);
    ck_assert_uint_eq(s.gap.session, 8);
    ck_assert_uint_eq(s.gap.from, 1);
    ck_assert_uint_eq(s.gap.to, 2);
    ck_assert_int_eq(s.n, 4);
    ck_assert_uint_eq(s.seqs[0], 3);
    ck_assert_uint_eq(b->c.gaps, 1);
    ring_close(c);
}
END_TEST

START_TEST(a_forgotten_user_comes_back_after_its_last_seq)
{
    char n1[300];
    b->cfg.history_age_s = 1;
    for (int i = 0; i < 3; i++) {
        note_json(n1, sizeof n1, "hank", NULL, 2, "h");
        bk_req_free(publish(n1));
    }
    ck_assert_uint_eq(user("hank")->last_seq, 3);
    /* Long past history_age_s, with no session: the sweep forgets hank and his history. */
    uint64_t later = bk_users_get(b, "hank", 4, false)->last_ns + 10 * 1000000000ull;
    size_t forgotten = 0;
    for (int i = 0; i < 64 && !forgotten; i++)
        forgotten += bk_users_sweep(b, later);
    ck_assert_uint_eq(forgotten, 1);
    ck_assert_ptr_null(user("hank"));
    ck_assert_uint_eq(b->c.users_forgotten, 1);
    bk_req_t *r = publish(n1);
    ck_assert_int_eq(r->res[0].code, HERR_OK);
    ck_assert_uint_gt(r->res[0].seq, 3); /* never a seq the user's clients have seen */
    bk_req_free(r);
}
END_TEST

static Suite *pipeline_suite(void)
{
    Suite *s = suite_create("pipeline");
    TCase *tc = tcase_create("broker");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_unchecked_fixture(tc, NULL, remove_objects);
    tcase_add_test(tc, each_user_gets_gap_free_seqs_and_p0_is_sequenced_first);
    tcase_add_test(tc, a_round_past_its_budget_leaves_the_rest_pending_and_only_then);
    tcase_add_test(tc, a_repeat_gets_the_original_seq_and_a_conflict_is_refused);
    tcase_add_test(tc, an_invalid_item_is_refused_alone);
    tcase_add_test(tc, a_gateway_ring_gets_only_the_users_routed_to_it);
    tcase_add_test(tc, replay_sends_the_history_after_a_seq_a_gap_for_what_is_gone_and_an_end);
    tcase_add_test(tc, a_forgotten_user_comes_back_after_its_last_seq);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    snprintf(prefix, sizeof prefix, "hpipe%d", (int)getpid()); /* the tests' processes share it */
    return procs_run_suite(pipeline_suite());
}
