/* test_gateway.c - herald-gateway under faults the real broker cannot produce on demand: a
 * seq gap in the live ring (simulated ring drops) and the gap-fill protocol that repairs it,
 * a fill the history no longer covers, a corrupt ring record, a refused control request
 * that must not drop the link, and a ready record delayed across a reconnect. The broker
 * side is scripted (fakebroker.h); every other gateway behaviour is tested against the real
 * herald-broker in test_gateway_broker.c and test_gateway_recovery.c. */
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fakebroker.h"
#include "gwsys.h"

static gws_t S;
static fb_t *FB;

/* Gateway 0 on a fake broker, with one live JSON session of u1 (READY at seq 0). */
static wsc_t *fault_start(void)
{
    char tok[512], url[128];
    fb_req_t req;
    wsc_t *c;
    gws_init(&S, 1, NULL);
    FB = fb_start(S.env.dir, S.env.shm_prefix, 0, 4u << 20);
    ck_assert_ptr_nonnull(FB);
    gws_launch_gateway(&S, 0);
    ck_assert_int_eq(fb_accept(FB, GWS_WAIT), 0);
    gws_token("u1", tok, sizeof tok);
    snprintf(url, sizeof url, "ws://127.0.0.1:%u/ws", S.ws);
    ck_assert_int_eq(wsc_connect(&c, url, tok, NULL, GWS_WAIT), 101);
    ck_assert_int_eq(fb_expect(FB, "open", &req, GWS_WAIT), 0);
    ck_assert_str_eq(req.user, "u1");
    fb_ready(FB, req.session, 0, 0);
    gws_expect_type(c, "welcome", NULL);
    return c;
}

static void fault_stop(wsc_t *c)
{
    wsc_close(c);
    gws_stop(&S);
    fb_stop(FB);
    FB = NULL;
}

START_TEST(fault_live_ring_seq_gap_is_filled_by_replay_and_delivered_in_order)
{
    wsc_t *c = fault_start();
    fb_notify(FB, "u1", 1, "position_limit", 0);
    fb_notify(FB, "u1", 4, "position_limit", 0); /* the ring dropped 2 and 3 */
    fb_req_t req;
    ck_assert_int_eq(fb_expect(FB, "replay", &req, GWS_WAIT), 0);
    ck_assert_uint_eq(req.session, 0);
    ck_assert_str_eq(req.user, "u1");
    ck_assert_uint_eq(req.from, 2);
    ck_assert_uint_eq(req.to, 3);
    fb_notify(FB, "u1", 5, "position_limit", 0); /* held behind the fill */
    fb_replay(FB, 0, "u1", 2, "position_limit", 0);
    fb_replay(FB, 0, "u1", 3, "position_limit", 0);
    fb_range(FB, false, 0, "u1", 2, 3);
    for (uint64_t s = 1; s <= 5; s++)
        gws_expect_seq(c, s);
    gws_expect_silence(c, 200);
    fault_stop(c);
}
END_TEST

START_TEST(fault_live_ring_gap_past_the_history_becomes_a_gap_message)
{
    wsc_t *c = fault_start();
    fb_notify(FB, "u1", 1, "position_limit", 0);
    fb_notify(FB, "u1", 5, "position_limit", 0);
    fb_req_t req;
    ck_assert_int_eq(fb_expect(FB, "replay", &req, GWS_WAIT), 0);
    fb_range(FB, true, 0, "u1", 2, 4);
    fb_range(FB, false, 0, "u1", 2, 4);
    gws_expect_seq(c, 1);
    json_t *j;
    gws_expect_type(c, "gap", &j);
    ck_assert_uint_eq(gws_jint(j, "from"), 2);
    ck_assert_uint_eq(gws_jint(j, "to"), 4);
    json_decref(j);
    gws_expect_seq(c, 5);
    fault_stop(c);
}
END_TEST

START_TEST(fault_corrupt_ring_record_is_counted_and_the_stream_continues)
{
    wsc_t *c = fault_start();
    fb_notify(FB, "u1", 1, "position_limit", 0);
    gws_expect_seq(c, 1);
    fb_corrupt(FB);
    for (int i = 0; i < 250 && gws_stat(&S, 0, "ring_corrupt") == 0; i++)
        usleep(20000);
    ck_assert_uint_eq(gws_stat(&S, 0, "ring_corrupt"), 1);
    fb_notify(FB, "u1", 2, "position_limit", 0);
    gws_expect_seq(c, 2);
    fault_stop(c);
}
END_TEST

START_TEST(fault_refused_control_request_is_counted_and_the_link_stays_up)
{
    wsc_t *c = fault_start();
    uint64_t connects = gws_stat(&S, 0, "broker_connects");
    ck_assert_int_eq(fb_error(FB, "bad_value", "replay range [0,5] is empty"), 0);
    for (int i = 0; i < 500 && gws_stat(&S, 0, "broker_errors") == 0; i++)
        usleep(10000);
    ck_assert_uint_eq(gws_stat(&S, 0, "broker_errors"), 1);
    ck_assert_uint_eq(gws_stat(&S, 0, "broker_connected"), 1);
    ck_assert_uint_eq(gws_stat(&S, 0, "broker_connects"), connects);
    fb_notify(FB, "u1", 1, "position_limit", 0);
    gws_expect_seq(c, 1);
    fault_stop(c);
}
END_TEST

START_TEST(fault_ready_in_flight_across_a_reconnect_then_a_newer_ready_fetches_the_seqs_between)
{
    char tok[512], url[128];
    fb_req_t req;
    wsc_t *c;
    gws_init(&S, 1, NULL);
    FB = fb_start(S.env.dir, S.env.shm_prefix, 0, 4u << 20);
    ck_assert_ptr_nonnull(FB);
    gws_launch_gateway(&S, 0);
    ck_assert_int_eq(fb_accept(FB, GWS_WAIT), 0);
    gws_token("u1", tok, sizeof tok);
    snprintf(url, sizeof url, "ws://127.0.0.1:%u/ws", S.ws);
    ck_assert_int_eq(wsc_connect(&c, url, tok, NULL, GWS_WAIT), 101);
    ck_assert_int_eq(fb_expect(FB, "open", &req, GWS_WAIT), 0);
    uint64_t session = req.session;
    /* the link drops before the ready is read: the gateway opens the session again */
    fb_drop(FB);
    ck_assert_int_eq(fb_accept(FB, GWS_WAIT), 0);
    ck_assert_int_eq(fb_expect(FB, "open", &req, GWS_WAIT), 0);
    ck_assert_uint_eq(req.session, session);
    fb_ready(FB, session, 0, 0); /* the first ready, late */
    gws_expect_type(c, "welcome", NULL);
    fb_ready(FB, session, 2, 0); /* the second: seqs 1 and 2 went by unrouted */
    ck_assert_int_eq(fb_expect(FB, "replay", &req, GWS_WAIT), 0);
    ck_assert_uint_eq(req.session, 0);
    ck_assert_str_eq(req.user, "u1");
    ck_assert_uint_eq(req.from, 1);
    ck_assert_uint_eq(req.to, 2);
    fb_replay(FB, 0, "u1", 1, "position_limit", 0);
    fb_replay(FB, 0, "u1", 2, "position_limit", 0);
    fb_range(FB, false, 0, "u1", 1, 2);
    fb_notify(FB, "u1", 3, "position_limit", 0);
    for (uint64_t s = 1; s <= 3; s++)
        gws_expect_seq(c, s);
    gws_expect_silence(c, 200);
    fault_stop(c);
}
END_TEST

static Suite *gateway_fault_suite(void)
{
    Suite *s = suite_create("gateway");
    TCase *tc = tcase_create("ring_faults");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, fault_live_ring_seq_gap_is_filled_by_replay_and_delivered_in_order);
    tcase_add_test(tc, fault_live_ring_gap_past_the_history_becomes_a_gap_message);
    tcase_add_test(tc, fault_corrupt_ring_record_is_counted_and_the_stream_continues);
    tcase_add_test(tc, fault_refused_control_request_is_counted_and_the_link_stays_up);
    tcase_add_test(
        tc, fault_ready_in_flight_across_a_reconnect_then_a_newer_ready_fetches_the_seqs_between);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return gws_run(gateway_fault_suite());
}
