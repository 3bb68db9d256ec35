/* test_gateway_recovery.c - herald-gateway recovery against the real herald-broker: resume
 * at connect and mid-session, a history gap becoming a `gap` message, kill -9 of a gateway
 * mid-stream, and kill -9 of the broker under connected sessions. */
#include <check.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gwsys.h"

static gws_t S;

/* The next frame is a `type` frame (resumed, gap) for seqs from..to. */
static void expect_range(wsc_t *c, const char *type, uint64_t from, uint64_t to)
{
    json_t *j;
    gws_expect_type(c, type, &j);
    ck_assert_uint_eq(gws_jint(j, "from"), from);
    ck_assert_uint_eq(gws_jint(j, "to"), to);
    json_decref(j);
}

START_TEST(resume_at_connect_returns_exactly_the_missed_seqs_then_goes_live)
{
    gws_start(&S, 1, NULL);
    wsc_t *c = gws_client(&S, 0, "u1", NULL, NULL);
    for (int i = 0; i < 3; i++)
        gws_publish(&S, "u1", "position_limit", 0, 0);
    for (uint64_t s = 1; s <= 3; s++)
        gws_expect_seq(c, s);
    wsc_close(c);
    for (int i = 0; i < 3; i++)
        gws_publish(&S, "u1", "position_limit", 0, 0);
    c = gws_client(&S, 0, "u1", "?since=3", NULL);
    for (uint64_t s = 4; s <= 6; s++)
        gws_expect_seq(c, s);
    expect_range(c, "resumed", 4, 6);
    gws_expect_seq(c, gws_publish(&S, "u1", "position_limit", 0, 0));
    gws_expect_silence(c, 300);
    wsc_close(c);
    gws_stop(&S);
}
END_TEST

START_TEST(resume_mid_session_returns_only_the_seqs_the_session_lacks)
{
    gws_start(&S, 1, NULL);
    for (int i = 0; i < 3; i++)
        gws_publish(&S, "u1", "position_limit", 0, 0);
    wsc_t *c = gws_client(&S, 0, "u1", NULL, NULL); /* live from 4 */
    gws_expect_seq(c, gws_publish(&S, "u1", "position_limit", 0, 0));
    wsc_send_text(c, "{\"op\":\"resume\",\"since\":1}");
    gws_expect_seq(c, 2);
    gws_expect_seq(c, 3);
    expect_range(c, "resumed", 2, 3);
    /* nothing left to fetch: answered at once, nothing redelivered */
    wsc_send_text(c, "{\"op\":\"resume\",\"since\":0}");
    gws_expect_seq(c, 1);
    gws_expect_type(c, "resumed", NULL);
    gws_expect_seq(c, gws_publish(&S, "u1", "position_limit", 0, 0));
    gws_expect_silence(c, 300);
    wsc_close(c);
    gws_stop(&S);
}
END_TEST

START_TEST(resume_past_the_history_gets_a_gap_message_then_the_kept_seqs)
{
    const char *o[] = {"broker.history_size=5", NULL};
    gws_start(&S, 1, o);
    for (int i = 0; i < 20; i++)
        gws_publish(&S, "u1", "position_limit", 0, 0);
    wsc_t *c = gws_client(&S, 0, "u1", "?since=2", NULL);
    /* history keeps 16..20: 3..15 are a gap, then the kept ones, then resumed */
    uint64_t gap_from = 0, gap_to = 0, next = 16;
    for (;;) {
        json_t *j = gws_json(c, GWS_WAIT);
        ck_assert_ptr_nonnull(j);
        const char *type = gws_jstr(j, "type");
        if (!strcmp(type, "gap")) {
            ck_assert_uint_eq(gap_from, 0);
            gap_from = gws_jint(j, "from");
            gap_to = gws_jint(j, "to");
        } else if (!strcmp(type, "notification")) {
            ck_assert_uint_eq(gws_jint(j, "seq"), next++);
        } else {
            ck_assert_str_eq(type, "resumed");
            json_decref(j);
            break;
        }
        json_decref(j);
    }
    ck_assert_uint_eq(gap_from, 3);
    ck_assert_uint_eq(gap_to, 15);
    ck_assert_uint_eq(next, 21);
    gws_expect_seq(c, gws_publish(&S, "u1", "position_limit", 0, 0));
    wsc_close(c);
    gws_stop(&S);
}
END_TEST

/* Read notifications into seen[] until `last` arrives or the connection ends / goes quiet
 * for 2 s. Asserts increasing order; counts duplicates. Returns the highest seq seen. */
static uint64_t drain_into(wsc_t *c, unsigned char *seen, uint64_t cap, uint64_t last,
                           uint64_t *dups)
{
    uint64_t high = 0;
    const char *m;
    while (high < last && wsc_recv(c, &m, NULL, 2000) >= 0) {
        json_t *j = json_loads(m, 0, NULL);
        ck_assert_msg(j != NULL, "not JSON: %s", m);
        if (!strcmp(gws_jstr(j, "type"), "notification")) {
            uint64_t s = gws_jint(j, "seq");
            ck_assert_msg(s > high, "seq %llu after %llu: out of order", (unsigned long long)s,
                          (unsigned long long)high);
            if (s < cap && seen[s]++) (*dups)++;
            high = s;
        }
        json_decref(j);
    }
    return high;
}

static void assert_each_once(const unsigned char *seen, uint64_t n, uint64_t dups)
{
    ck_assert_uint_eq(dups, 0);
    for (uint64_t s = 1; s <= n; s++)
        ck_assert_msg(seen[s] == 1, "seq %llu seen %u times", (unsigned long long)s, seen[s]);
}

START_TEST(gateway_kill9_mid_stream_then_resume_loses_and_duplicates_nothing)
{
    gws_start(&S, 1, NULL);
    enum { N = 120 };
    unsigned char seen[N + 1] = {0};
    uint64_t dups = 0;
    wsc_t *c = gws_client(&S, 0, "u1", NULL, NULL);
    for (int i = 0; i < N / 2; i++)
        gws_publish(&S, "u1", "trade_canceled", -1, 0);
    uint64_t high = drain_into(c, seen, N + 1, N / 4, &dups);
    ck_assert_uint_ge(high, N / 4);
    gws_kill9(&S, &S.gw[0]);
    /* whatever was in flight is lost with the process; the client sees the close (and
     * may have read nothing more since: keep the highest seq of both reads) */
    uint64_t more = drain_into(c, seen, N + 1, N, &dups);
    if (more > high) high = more;
    ck_assert(wsc_is_closed(c));
    wsc_close(c);
    for (int i = N / 2; i < 3 * N / 4; i++)
        gws_publish(&S, "u1", "trade_canceled", -1, 0);
    gws_spawn_gateway(&S, 0);
    char q[32];
    snprintf(q, sizeof q, "?since=%llu", (unsigned long long)high);
    c = gws_client(&S, 0, "u1", q, NULL);
    for (int i = 3 * N / 4; i < N; i++)
        gws_publish(&S, "u1", "trade_canceled", -1, 0);
    ck_assert_uint_eq(drain_into(c, seen, N + 1, N, &dups), N);
    assert_each_once(seen, N, dups);
    wsc_close(c);
    gws_stop(&S);
}
END_TEST

START_TEST(broker_kill9_and_restart_keeps_sessions_and_loses_nothing_acknowledged)
{
    gws_start(&S, 2, NULL);
    enum { N = 120 };
    unsigned char seen[2][N + 1];
    uint64_t dups[2] = {0, 0};
    memset(seen, 0, sizeof seen);
    wsc_t *c[2] = {gws_client(&S, 0, "u1", NULL, NULL), gws_client(&S, 1, "u1", NULL, NULL)};
    for (int i = 0; i < N / 2; i++)
        gws_publish(&S, "u1", "trade_canceled", -1, 0); /* each acknowledged */
    /* kill at once: the last acknowledged ones may not have reached the rings yet */
    gws_kill9(&S, &S.broker);
    uint64_t connects0 = gws_stat(&S, 0, "broker_connects");
    gws_spawn_broker(&S);
    for (int i = N / 2; i < N; i++)
        ck_assert_uint_eq(gws_publish(&S, "u1", "trade_canceled", -1, 0), (uint64_t)i + 1);
    for (unsigned k = 0; k < 2; k++) {
        ck_assert_uint_eq(drain_into(c[k], seen[k], N + 1, N, &dups[k]), N);
        ck_assert_msg(!wsc_is_closed(c[k]), "session %u was closed by the broker restart", k);
        assert_each_once(seen[k], N, dups[k]);
        gws_expect_silence(c[k], k ? 50 : 300);
    }
    ck_assert_uint_gt(gws_stat(&S, 0, "broker_connects"), connects0);
    for (unsigned k = 0; k < 2; k++)
        wsc_close(c[k]);
    gws_stop(&S);
}
END_TEST

START_TEST(broadcast_sequenced_while_the_gateway_is_disconnected_arrives_after_reconnect)
{
    gws_start(&S, 1, NULL);
    wsc_t *c = gws_client(&S, 0, "u1", NULL, NULL);
    gws_expect_seq(c, gws_publish(&S, "*", "market_halt", 0, 0));
    gws_kill9(&S, &S.broker);
    /* hold the gateway so the restarted broker sequences a broadcast before it reattaches */
    ck_assert_int_eq(kill(S.gw[0], SIGSTOP), 0);
    gws_spawn_broker(&S);
    uint64_t b2 = gws_publish(&S, "*", "market_halt", 0, 0);
    ck_assert_int_eq(kill(S.gw[0], SIGCONT), 0);
    /* no later broadcast is needed to expose it */
    gws_expect_seq(c, b2);
    gws_expect_seq(c, gws_publish(&S, "*", "market_halt", 0, 0));
    gws_expect_seq(c, gws_publish(&S, "u1", "position_limit", 0, 0));
    gws_expect_silence(c, 300);
    ck_assert(!wsc_is_closed(c));
    wsc_close(c);
    gws_stop(&S);
}
END_TEST

START_TEST(resume_whose_replay_is_lost_with_the_broker_completes_after_reconnect)
{
    gws_start(&S, 1, NULL);
    for (int i = 0; i < 3; i++)
        gws_publish(&S, "u1", "position_limit", 0, 0);
    wsc_t *c = gws_client(&S, 0, "u1", NULL, NULL); /* live from 4 */
    /* the broker never reads the replay request: it dies with it */
    ck_assert_int_eq(kill(S.broker, SIGSTOP), 0);
    wsc_send_text(c, "{\"op\":\"resume\",\"since\":1}");
    wsc_send_text(c, "{\"op\":\"ping\"}");
    gws_expect_type(c, "pong", NULL); /* the resume was handled (ops are in order) */
    gws_kill9(&S, &S.broker);
    gws_spawn_broker(&S);
    gws_expect_seq(c, 2);
    gws_expect_seq(c, 3);
    expect_range(c, "resumed", 2, 3);
    gws_expect_seq(c, gws_publish(&S, "u1", "position_limit", 0, 0));
    gws_expect_silence(c, 300);
    wsc_close(c);
    gws_stop(&S);
}
END_TEST

START_TEST(resume_at_connect_since_max_u64_is_no_resume)
{
    gws_start(&S, 1, NULL);
    wsc_t *c = gws_client(&S, 0, "u1", "?since=18446744073709551615", NULL);
    gws_expect_seq(c, gws_publish(&S, "u1", "position_limit", 0, 0));
    gws_expect_silence(c, 300);
    wsc_close(c);
    gws_stop(&S);
}
END_TEST

static Suite *gateway_recovery_suite(void)
{
    Suite *s = suite_create("gateway_recovery");
    TCase *tc = tcase_create("system");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, resume_at_connect_returns_exactly_the_missed_seqs_then_goes_live);
    tcase_add_test(tc, resume_mid_session_returns_only_the_seqs_the_session_lacks);
    tcase_add_test(tc, resume_past_the_history_gets_a_gap_message_then_the_kept_seqs);
    tcase_add_test(tc, gateway_kill9_mid_stream_then_resume_loses_and_duplicates_nothing);
    tcase_add_test(tc, broker_kill9_and_restart_keeps_sessions_and_loses_nothing_acknowledged);
    tcase_add_test(tc,
                   broadcast_sequenced_while_the_gateway_is_disconnected_arrives_after_reconnect);
    tcase_add_test(tc, resume_whose_replay_is_lost_with_the_broker_completes_after_reconnect);
    tcase_add_test(tc, resume_at_connect_since_max_u64_is_no_resume);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return gws_run(gateway_recovery_suite());
}
