/* test_broker_history.c - herald-broker as a process: history and replay, expiry, gateway
 * death and re-attach, kill -9 and restart from the journal, journal faults, bad control
 * messages. */
#include <check.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bk_harness.h"
#include "frame.h"
#include "proto.h"

#include "bk_harness.h"
#include "broker_suite.h"
#include "frame.h"
#include "proto.h"

START_TEST(open_with_since_replays_history_bounded_by_count_with_a_gap)
{
    const char *over[] = {"broker.history_size=5", NULL};
    start(over);
    herald_client_t *c = client();
    for (int i = 0; i < 10; i++)
        publish(c, "hh", 2, NULL);
    ck_assert_int_eq(bkh_gw_attach(&G[0], &H, 0), 0);
    ck_assert_int_eq(bkh_gw_open(&G[0], 9, "hh", 2), 0);
    ck_assert_int_ge(bkh_gw_wait_type(&G[0], 0, REC_REPLAY_END, 3000), 0);
    bkh_rec_t *r = G[0].recs;
    ck_assert_uint_eq(r[0].type, REC_SESSION_READY);
    ck_assert_uint_eq(r[0].last_seq, 10);
    ck_assert_uint_eq(r[1].type, REC_GAP);
    ck_assert_uint_eq(r[1].from, 3);
    ck_assert_uint_eq(r[1].to, 5);
    for (int i = 0; i < 5; i++) {
        ck_assert_uint_eq(r[2 + i].type, REC_REPLAY);
        ck_assert_uint_eq(r[2 + i].seq, 6 + (uint64_t)i);
        ck_assert_uint_eq(r[2 + i].session, 9);
    }
    ck_assert_uint_eq(r[7].type, REC_REPLAY_END);
    ck_assert_str_eq(r[7].user, "hh");
    /* Live notifications follow the replay. */
    herald_result_t x = publish(c, "hh", 2, NULL);
    ck_assert_uint_eq(x.seq, 11);
    bkh_gw_collect(&G[0], 9, 2000);
    ck_assert_uint_eq(G[0].recs[8].type, REC_NOTIFY);
    ck_assert_uint_eq(G[0].recs[8].seq, 11);
    herald_close(c);
}
END_TEST

/* A gateway that never reads: every open with since=1 replays the whole history into the
 * backlog, which must stay bounded (64 MiB); past it, opens get a gap instead. */
START_TEST(replays_into_a_full_backlog_are_bounded_and_answered_with_a_gap)
{
    const char *over[] = {"gateway.ring_bytes=4096", NULL};
    start(over);
    attach_and_open(0, 0, "rb");
    herald_client_t *c = client();
    char json[512];
    msgpack_sbuffer one;
    msgpack_sbuffer_init(&one);
    bkh_notice_json(json, sizeof json, "rb", 1, "");
    bkh_msgpack(&one, json);
    size_t len;
    uint8_t *body = batch_body(1000, one.data, one.size, &len);
    herald_result_t *res = calloc(1000, sizeof *res);
    herald_error_t err;
    ck_assert_int_eq(herald_send(c, body, len, &err), 0);
    ck_assert_int_eq(herald_recv_results(c, res, 1000, &err), 1000);
    ck_assert(res[999].ok && res[999].seq == 1000);
    free(res);
    free(body);
    msgpack_sbuffer_destroy(&one);
    const int opens = 450; /* ~170 KB of history each: 75 MB unbounded */
    for (int i = 0; i < opens; i++)
        ck_assert_int_eq(bkh_gw_open(&G[0], 2 + i, "rb", 1), 0);
    int fd = bkh_http_connect(&H);
    bkh_http_resp_t h = {0};
    for (int i = 0; i < 500; i++) {
        ck_assert_int_eq(bkh_http(fd, "GET", "/api/stats", "", NULL, 0, &h), 200);
        if (bkh_stat_of(h.body, "replays") >= (uint64_t)opens) break;
        bkh_http_free(&h);
        struct timespec ts = {0, 20 * 1000000};
        nanosleep(&ts, NULL);
    }
    ck_assert_uint_eq(bkh_stat_of(h.body, "replays"), opens);
    uint64_t bl = bkh_stat_of(h.body, "backlog_bytes");
    ck_assert_msg(bl <= 65u * 1024 * 1024, "backlog %llu bytes", (unsigned long long)bl);
    ck_assert_uint_gt(bkh_stat_of(h.body, "gaps"), 0);
    bkh_http_free(&h);
    close(fd);
    herald_close(c);
}
END_TEST

START_TEST(history_expires_by_age)
{
    const char *over[] = {"broker.history_age_s=1", NULL};
    start(over);
    herald_client_t *c = client();
    for (int i = 0; i < 3; i++)
        publish(c, "aa", 2, NULL);
    usleep(1500000);
    publish(c, "aa", 2, NULL);
    ck_assert_int_eq(bkh_gw_attach(&G[0], &H, 0), 0);
    ck_assert_int_eq(bkh_gw_replay(&G[0], 0, "aa", 1, 4), 0);
    ck_assert_int_ge(bkh_gw_wait_type(&G[0], 0, REC_REPLAY_END, 3000), 0);
    ck_assert_uint_eq(G[0].recs[0].type, REC_GAP);
    ck_assert_uint_eq(G[0].recs[0].from, 1);
    ck_assert_uint_eq(G[0].recs[0].to, 3);
    ck_assert_uint_eq(G[0].recs[1].type, REC_REPLAY);
    ck_assert_uint_eq(G[0].recs[1].seq, 4);
    ck_assert_uint_eq(G[0].recs[1].session, 0);
    herald_close(c);
}
END_TEST

START_TEST(gateway_death_stops_routing_and_reattach_works)
{
    start(NULL);
    attach_and_open(0, 0, "gd");
    herald_client_t *c = client();
    publish(c, "gd", 1, NULL);
    bkh_gw_collect(&G[0], 2, 2000);
    ck_assert_uint_eq(count_type(&G[0], REC_NOTIFY), 1);
    bkh_gw_disconnect(&G[0]);
    usleep(100000);
    publish(c, "gd", 1, NULL);
    bkh_gw_collect(&G[0], 3, 200);
    ck_assert_uint_eq(count_type(&G[0], REC_NOTIFY), 1); /* not routed any more */
    int fd = bkh_http_connect(&H);
    bkh_http_resp_t hr;
    bkh_http(fd, "GET", "/api/stats", "", NULL, 0, &hr);
    ck_assert_msg(strstr(hr.body, "\"active_gateways\":0") && strstr(hr.body, "\"attached\":false"),
                  "%s", hr.body);
    bkh_http_free(&hr);
    close(fd);
    /* Re-attach with the same id, open again: routing resumes on the same ring. */
    size_t from = G[0].n;
    ck_assert_int_eq(bkh_gw_attach(&G[0], &H, 0), 0);
    ck_assert_int_eq(bkh_gw_open(&G[0], 2, "gd", 0), 0);
    long ready = bkh_gw_wait_type(&G[0], from, REC_SESSION_READY, 3000);
    ck_assert_int_ge(ready, 0);
    ck_assert_uint_eq(G[0].recs[ready].last_seq, 2);
    herald_result_t r = publish(c, "gd", 1, NULL);
    ck_assert_uint_eq(r.seq, 3);
    bkh_gw_collect(&G[0], (size_t)ready + 2, 2000);
    ck_assert_uint_eq(G[0].recs[ready + 1].seq, 3);
    herald_close(c);
}
END_TEST

START_TEST(broker_kill9_restart_keeps_seq_history_and_dedup)
{
    start(NULL);
    attach_and_open(0, 0, "rk");
    herald_client_t *c = client();
    for (int i = 1; i <= 5; i++) {
        char id[16];
        snprintf(id, sizeof id, "rk-%d", i);
        publish(c, "rk", 1, id);
    }
    herald_close(c);
    bkh_gw_collect(&G[0], 6, 2000);
    bkh_stop(&H, SIGKILL);
    ck_assert_int_eq(bkh_start(&H), 0);
    c = client();
    herald_result_t d = publish(c, "rk", 1, "rk-3");
    ck_assert(d.ok && d.duplicate);
    ck_assert_uint_eq(d.seq, 3);
    herald_result_t n = publish(c, "rk", 1, "rk-6");
    ck_assert(!n.duplicate);
    ck_assert_uint_eq(n.seq, 6);
    /* The gateway reconnects: hello re-attaches the same ring, resync replays what it missed. */
    size_t from = G[0].n;
    bkh_gw_disconnect(&G[0]);
    ck_assert_int_eq(bkh_gw_attach(&G[0], &H, 0), 0);
    ck_assert_int_eq(bkh_gw_resync(&G[0], "rk", 1, 5), 0);
    long end = bkh_gw_wait_type(&G[0], from, REC_REPLAY_END, 3000);
    ck_assert_int_ge(end, 0);
    ck_assert_uint_eq(G[0].recs[end - 1].type, REC_REPLAY);
    ck_assert_uint_eq(G[0].recs[end - 1].seq, 6);
    /* History survived: replay from 1. */
    from = G[0].n;
    ck_assert_int_eq(bkh_gw_replay(&G[0], 0, "rk", 1, 6), 0);
    end = bkh_gw_wait_type(&G[0], from, REC_REPLAY_END, 3000);
    ck_assert_int_eq(end - (long)from, 6);
    herald_result_t live = publish(c, "rk", 1, NULL);
    ck_assert_uint_eq(live.seq, 7);
    bkh_gw_collect(&G[0], (size_t)end + 2, 2000);
    ck_assert_uint_eq(G[0].recs[end + 1].seq, 7); /* routed again after resync */
    herald_close(c);
}
END_TEST

/* HERALD_TEST_JOURNAL_FAIL_AFTER=2: the third journal write fails (as on a full /dev/shm),
 * once. Its round is refused with io_error and never happens: no ring sees it, its seq is
 * not used, and a retry is a new publish; a kill -9 then reuses nothing anyone saw. */
START_TEST(failed_journal_write_publishes_nothing_of_its_round)
{
    setenv("HERALD_TEST_JOURNAL_FAIL_AFTER", "2", 1);
    start(NULL);
    unsetenv("HERALD_TEST_JOURNAL_FAIL_AFTER");
    attach_and_open(0, 0, "jf");
    herald_client_t *c = client();
    ck_assert_uint_eq(publish(c, "jf", 1, "jf-1").seq, 1);
    ck_assert_uint_eq(publish(c, "jf", 1, "jf-2").seq, 2);
    herald_result_t r = publish(c, "jf", 1, "jf-3");
    ck_assert(!r.ok);
    ck_assert_str_eq(r.error, "io_error");
    ck_assert_msg(strstr(r.message, "journal"), "names the journal: %s", r.message);
    /* while the journal is failing publishes are refused; once it can grow again the retry
     * is published as new, with the seq the failed round would have had */
    for (int i = 0; i < 100 && !r.ok; i++) {
        struct timespec ts = {0, 50 * 1000000};
        nanosleep(&ts, NULL);
        r = publish(c, "jf", 1, "jf-3");
    }
    ck_assert_msg(r.ok && !r.duplicate && r.seq == 3, "retry: ok %d dup %d seq %llu %s", r.ok,
                  r.duplicate, (unsigned long long)r.seq, r.error);
    ck_assert_uint_eq(publish(c, "jf", 1, "jf-4").seq, 4);
    bkh_gw_collect(&G[0], 5, 3000);
    /* the ring holds 1..4 once each: nothing of the failed round went out before it failed */
    ck_assert_uint_eq(count_type(&G[0], REC_NOTIFY), 4);
    for (size_t i = 0, k = 1; i < G[0].n; i++)
        if (G[0].recs[i].type == REC_NOTIFY) {
            ck_assert_uint_eq(G[0].recs[i].seq, k);
            ck_assert_msg(strcmp(G[0].recs[i].message_id, "jf-3") || k == 3, "seq %zu", k);
            k++;
        }
    ck_assert_uint_ge(bkh_stat(&H, "journal_errors"), 1);
    herald_close(c);
    bkh_stop(&H, SIGKILL);
    ck_assert_int_eq(bkh_start(&H), 0);
    c = client();
    r = publish(c, "jf", 1, "jf-3");
    ck_assert(r.ok && r.duplicate && r.seq == 3);
    r = publish(c, "jf", 1, "jf-5");
    ck_assert_msg(!r.duplicate && r.seq == 5, "seq after restart %llu", (unsigned long long)r.seq);
    herald_close(c);
}
END_TEST

START_TEST(corrupt_journal_tail_is_truncated_and_counted)
{
    start(NULL);
    herald_client_t *c = client();
    for (int i = 0; i < 3; i++)
        publish(c, "cj", 1, NULL);
    herald_close(c);
    bkh_stop(&H, SIGKILL);
    char path[200];
    snprintf(path, sizeof path, "/dev/shm/%s.broker.journal", H.env.shm_prefix);
    FILE *f = fopen(path, "r+b"); /* garbage where the next record would go */
    ck_assert_ptr_nonnull(f);
    uint64_t committed = 0;
    fseek(f, 24, SEEK_SET); /* the header's committed end */
    ck_assert_int_eq(fread(&committed, 8, 1, f), 1);
    ck_assert_uint_gt(committed, 64);
    fseek(f, (long)committed, SEEK_SET);
    fwrite("\x40\x00\x00\x00garbage-tail", 1, 16, f);
    fclose(f);
    ck_assert_int_eq(bkh_start(&H), 0);
    c = client();
    herald_result_t r = publish(c, "cj", 1, NULL);
    ck_assert_uint_eq(r.seq, 4);
    ck_assert_uint_eq(bkh_stat(&H, "journal_corrupt"), 1);
    herald_close(c);
}
END_TEST

START_TEST(bad_control_messages_get_errors_and_never_crash)
{
    start(NULL);
    ck_assert_int_eq(bkh_gw_attach(&G[0], &H, 0), 0);
    const uint8_t junk[] = {0, 0, 0, 3, 0xc1, 0xc1, 0xc1};
    ck_assert_int_eq(write(G[0].fd, junk, sizeof junk), (ssize_t)sizeof junk);
    uint8_t buf[512];
    ssize_t n = read(G[0].fd, buf, sizeof buf);
    ck_assert_int_gt(n, 4);
    ck_assert(memmem(buf, (size_t)n, "error", 5) != NULL);
    ck_assert_int_eq(bkh_gw_replay(&G[0], 0, "", 1, 2), 0); /* empty user */
    n = read(G[0].fd, buf, sizeof buf);
    ck_assert(n > 4 && memmem(buf, (size_t)n, "user", 4) != NULL);
    herald_client_t *c = client();
    herald_result_t r = publish(c, "ok", 1, NULL);
    ck_assert(r.ok);
    herald_close(c);
}
END_TEST

static Suite *broker_history_suite(void)
{
    Suite *s = suite_create("broker_history");
    TCase *t = tcase_create("process");
    tcase_set_timeout(t, 120);
    tcase_add_checked_fixture(t, NULL, cleanup);
    tcase_add_test(t, open_with_since_replays_history_bounded_by_count_with_a_gap);
    tcase_add_test(t, replays_into_a_full_backlog_are_bounded_and_answered_with_a_gap);
    tcase_add_test(t, history_expires_by_age);
    tcase_add_test(t, gateway_death_stops_routing_and_reattach_works);
    tcase_add_test(t, broker_kill9_restart_keeps_seq_history_and_dedup);
    tcase_add_test(t, corrupt_journal_tail_is_truncated_and_counted);
    tcase_add_test(t, failed_journal_write_publishes_nothing_of_its_round);
    tcase_add_test(t, bad_control_messages_get_errors_and_never_crash);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return procs_run_suite(broker_history_suite());
}
