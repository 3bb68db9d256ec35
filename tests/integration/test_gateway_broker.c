/* test_gateway_broker.c - herald-gateway delivery against the real herald-broker: auth,
 * user isolation, channel filters, broadcasts across gateways, one user on two gateways,
 * priority batching, heartbeat and idle timeout, slow consumers, the msgpack subprotocol,
 * permessage-deflate, client ops and floods, /metrics and /healthz. Notifications are
 * published through libherald (or the broker's HTTP API where that is the subject). */
#include <check.h>
#include <jansson.h>
#include <msgpack.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "codec.h"
#include "gwsys.h"
#include "jwt.h"

static gws_t S;

START_TEST(handshake_refuses_missing_bad_and_expired_tokens_with_401)
{
    gws_start(&S, 1, NULL);
    char tok[512], bad[512], expired[512], url[800], base[128];
    wsc_t *c = NULL;
    snprintf(base, sizeof base, "ws://127.0.0.1:%u/ws", S.ws);
    ck_assert_int_eq(wsc_connect(&c, base, NULL, NULL, GWS_WAIT), 401);
    ck_assert_int_gt(jwt_mint("another-secret", "u1", (uint64_t)time(NULL), 60, bad, sizeof bad),
                     0);
    ck_assert_int_eq(wsc_connect(&c, base, bad, NULL, GWS_WAIT), 401);
    ck_assert_int_gt(
        jwt_mint(GWS_SECRET, "u1", (uint64_t)time(NULL) - 7200, 60, expired, sizeof expired), 0);
    ck_assert_int_eq(wsc_connect(&c, base, expired, NULL, GWS_WAIT), 401);
    ck_assert_ptr_null(c);
    ck_assert_uint_eq(gws_stat(&S, 0, "auth_failures_missing"), 1);
    ck_assert_uint_eq(gws_stat(&S, 0, "auth_failures_bad_signature"), 1);
    ck_assert_uint_eq(gws_stat(&S, 0, "auth_failures_expired"), 1);
    ck_assert_uint_eq(gws_stat(&S, 0, "active_sessions"), 0);
    /* a good token in the query string (browsers cannot set headers) gets a live session */
    gws_token("u1", tok, sizeof tok);
    snprintf(url, sizeof url, "%s?token=%s", base, tok);
    ck_assert_int_eq(wsc_connect(&c, url, NULL, NULL, GWS_WAIT), 101);
    gws_expect_type(c, "welcome", NULL);
    gws_expect_seq(c, gws_publish(&S, "u1", "position_limit", 0, 0));
    wsc_close(c);
    gws_stop(&S);
}
END_TEST

/* lws binds its protocols only once its system state is OPERATIONAL; a WebSocket upgraded
 * before that (on a freshly started gateway) got its 101 but never its welcome. The race is
 * in the gateway's first loop pass, so each round restarts the gateway and upgrades the
 * moment its port accepts. */
START_TEST(session_opened_the_moment_a_fresh_gateway_accepts_gets_its_welcome)
{
    gws_init(&S, 1, NULL);
    gws_spawn_broker(&S);
    for (int round = 0; round < 5; round++) {
        gws_launch_gateway(&S, 0);                      /* returns as soon as the port accepts */
        wsc_t *c = gws_client(&S, 0, "u1", NULL, NULL); /* asserts the welcome */
        gws_expect_seq(c, gws_publish(&S, "u1", "position_limit", 0, 0));
        wsc_close(c);
        gws_kill9(&S, &S.gw[0]);
    }
    gws_stop(&S);
}
END_TEST

START_TEST(session_receives_only_its_own_users_notifications)
{
    gws_start(&S, 1, NULL);
    wsc_t *a = gws_client(&S, 0, "alice", NULL, NULL);
    wsc_t *b = gws_client(&S, 0, "bob", NULL, NULL);
    gws_publish(&S, "bob", "position_limit", 0, 0);
    gws_publish(&S, "alice", "position_limit", 0, 0);
    json_t *j;
    gws_expect_type(a, "notification", &j);
    ck_assert_str_eq(gws_jstr(j, "user_id"), "alice");
    json_decref(j);
    gws_expect_type(b, "notification", &j);
    ck_assert_str_eq(gws_jstr(j, "user_id"), "bob");
    json_decref(j);
    gws_expect_silence(a, 300);
    gws_expect_silence(b, 100);
    wsc_close(a);
    wsc_close(b);
    gws_stop(&S);
}
END_TEST

START_TEST(subscribe_limits_a_session_to_its_channels)
{
    gws_start(&S, 1, NULL);
    wsc_t *c = gws_client(&S, 0, "u1", NULL, NULL);
    wsc_send_text(c, "{\"op\":\"subscribe\",\"channels\":[\"trade\"]}");
    json_t *j;
    gws_expect_type(c, "subscribed", &j);
    ck_assert_uint_eq(json_array_size(json_object_get(j, "channels")), 1);
    json_decref(j);
    gws_publish(&S, "u1", "position_limit", 0, 0);                 /* risk */
    uint64_t trade = gws_publish(&S, "u1", "order_expired", 0, 0); /* trade */
    gws_expect_seq(c, trade);
    wsc_send_text(c, "{\"op\":\"unsubscribe\",\"channels\":[\"trade\"]}");
    gws_expect_type(c, "subscribed", &j);
    ck_assert_uint_eq(json_array_size(json_object_get(j, "channels")), 0);
    json_decref(j);
    gws_publish(&S, "u1", "order_expired", 0, 0);
    gws_expect_silence(c, 300);
    wsc_close(c);
    gws_stop(&S);
}
END_TEST

START_TEST(broadcast_reaches_every_session_on_every_gateway)
{
    gws_start(&S, 2, NULL);
    wsc_t *a = gws_client(&S, 0, "alice", NULL, NULL);
    wsc_t *b = gws_client(&S, 1, "bob", NULL, NULL);
    wsc_t *b2 = gws_client(&S, 1, "carol", NULL, NULL);
    uint64_t seq = gws_publish_http(&S, "*", "market_halt", 0);
    json_t *j;
    wsc_t *all[] = {a, b, b2};
    for (unsigned k = 0; k < 3; k++) {
        gws_expect_type(all[k], "notification", &j);
        ck_assert_str_eq(gws_jstr(j, "user_id"), "*");
        ck_assert_uint_eq(gws_jint(j, "seq"), seq);
        json_decref(j);
    }
    gws_expect_seq(b, gws_publish_http(&S, "bob", "position_limit", 0));
    gws_expect_silence(a, 300);
    gws_expect_silence(b2, 50);
    for (unsigned k = 0; k < 3; k++)
        wsc_close(all[k]);
    gws_stop(&S);
}
END_TEST

START_TEST(user_on_two_gateways_gets_each_notification_once_per_session)
{
    gws_start(&S, 2, NULL);
    wsc_t *all[] = {gws_client(&S, 0, "u1", NULL, NULL), gws_client(&S, 1, "u1", NULL, NULL),
                    gws_client(&S, 1, "u1", NULL, NULL)};
    for (int i = 0; i < 20; i++)
        gws_publish(&S, "u1", "trade_canceled", -1, 0); /* P1 */
    for (unsigned k = 0; k < 3; k++) {
        for (uint64_t seq = 1; seq <= 20; seq++)
            gws_expect_seq(all[k], seq);
        gws_expect_silence(all[k], k ? 50 : 300);
    }
    for (unsigned k = 0; k < 3; k++)
        wsc_close(all[k]);
    gws_stop(&S);
}
END_TEST

START_TEST(p0_is_written_before_an_earlier_p3_batch)
{
    const char *o[] = {"gateway.flush_ms=5,100,3000", NULL};
    gws_start(&S, 1, o);
    wsc_t *c = gws_client(&S, 0, "u1", NULL, NULL);
    uint64_t p3a = gws_publish(&S, "u1", "market_halt", 3, 0);
    uint64_t p3b = gws_publish(&S, "u1", "market_halt", 3, 0);
    uint64_t p0 = gws_publish(&S, "u1", "position_limit", 0, 0);
    gws_expect_seq(c, p0);
    gws_expect_seq(c, p3a); /* the P3 batch follows at its deadline */
    gws_expect_seq(c, p3b);
    wsc_close(c);
    gws_stop(&S);
}
END_TEST

/* Doorbell rings of gateway 0's ring, from the broker's /api/stats. */
static uint64_t ring_wakeups(void)
{
    static char body[65536];
    ck_assert_int_eq(procs_http_get("127.0.0.1", S.http, "/api/stats", body, sizeof body), 200);
    const char *p = strstr(body, "\"wakeups\":");
    ck_assert_ptr_nonnull(p);
    return strtoull(p + 10, NULL, 10);
}

/* A notification that may wait for the gateway's own timer (its flush deadline is later)
 * costs no doorbell: the gateway reads it when it wakes anyway. A P0 rings at once. */
START_TEST(notifications_that_can_wait_cost_the_gateway_no_wake_up)
{
    const char *o[] = {"gateway.flush_ms=5,3000,3000", NULL};
    gws_start(&S, 1, o);
    wsc_t *c = gws_client(&S, 0, "u1", NULL, NULL);
    usleep(300 * 1000); /* the gateway sleeps on its ring */
    uint64_t w0 = ring_wakeups();
    for (int i = 0; i < 3; i++)
        gws_publish(&S, "u1", "market_halt", 2, 0);
    for (uint64_t seq = 1; seq <= 3; seq++)
        gws_expect_seq(c, seq); /* delivered at their deadline, read at a timer wake-up */
    ck_assert_uint_eq(ring_wakeups(), w0);
    uint64_t p0 = gws_publish(&S, "u1", "position_limit", 0, 0);
    gws_expect_seq(c, p0);
    ck_assert_uint_gt(ring_wakeups(), w0);
    wsc_close(c);
    gws_stop(&S);
}
END_TEST

/* The count of a latency histogram's series in a /metrics text (0 if absent). */
static uint64_t hist_count(const char *metrics, const char *series)
{
    const char *p = strstr(metrics, series);
    return p ? strtoull(p + strlen(series), NULL, 10) : 0;
}

/* Every live delivery counts once in its priority's delivery latency (per session written
 * to), every publish once in the broker's ingest latency; a resume replay counts in neither. */
START_TEST(latency_histograms_count_every_delivery_once_per_priority)
{
    gws_start(&S, 1, NULL);
    wsc_t *a = gws_client(&S, 0, "lat", NULL, NULL);
    wsc_t *b = gws_client(&S, 0, "lat", NULL, NULL);
    const int per[HERALD_PRIORITIES] = {3, 2, 1, 4};
    uint64_t last = 0;
    for (int p = 0; p < HERALD_PRIORITIES; p++)
        for (int i = 0; i < per[p]; i++)
            last = gws_publish(&S, "lat", "market_halt", p, 0);
    for (wsc_t *c = a; c; c = c == a ? b : NULL)
        for (uint64_t n = 0; n < last; n++) {
            json_t *j;
            gws_expect_type(c, "notification", &j);
            json_decref(j);
        }
    wsc_t *r = gws_client(&S, 0, "lat", "?since=1", NULL); /* a resume: replayed, not live */
    for (uint64_t n = 1; n < last; n++) {
        json_t *j;
        gws_expect_type(r, "notification", &j);
        json_decref(j);
    }
    static char gm[262144], bm[262144], series[128];
    ck_assert_int_eq(gws_gw_get(&S, 0, "/metrics", gm, sizeof gm), 200);
    ck_assert_int_eq(procs_http_get("127.0.0.1", S.http, "/metrics", bm, sizeof bm), 200);
    for (int p = 0; p < HERALD_PRIORITIES; p++) {
        snprintf(series, sizeof series,
                 "herald_delivery_latency_seconds_count{gateway=\"0\",priority=\"P%d\"} ", p);
        ck_assert_uint_eq(hist_count(gm, series), 2 * (uint64_t)per[p]);
        snprintf(series, sizeof series, "herald_ingest_latency_seconds_count{priority=\"P%d\"} ",
                 p);
        ck_assert_uint_eq(hist_count(bm, series), (uint64_t)per[p]);
    }
    ck_assert_ptr_nonnull(strstr(gm, "herald_slo_seconds{priority=\"P0\"} 0.001"));
    wsc_close(a);
    wsc_close(b);
    wsc_close(r);
    gws_stop(&S);
}
END_TEST

/* runtime.idle = backoff: the broker and the gateway poll before they sleep; notifications
 * that arrive meanwhile are found by the gateway's polling (no doorbell) and delivered. */
START_TEST(backoff_idle_strategy_delivers_and_finds_records_by_polling)
{
    const char *o[] = {"runtime.idle=backoff:2000,2000", NULL};
    gws_start(&S, 1, o);
    wsc_t *c = gws_client(&S, 0, "u1", NULL, NULL);
    for (int round = 0; round < 5 && gws_stat(&S, 0, "idle_spin_hits") == 0; round++)
        for (int i = 0; i < 20; i++)
            gws_expect_seq(c, gws_publish(&S, "u1", "position_limit", 0, 0));
    ck_assert_uint_gt(gws_stat(&S, 0, "idle_spin_hits"), 0);
    wsc_close(c);
    gws_stop(&S);
}
END_TEST

START_TEST(batch_size_pending_forces_a_flush_before_the_deadline)
{
    const char *o[] = {"gateway.flush_ms=60000,60000,60000", "gateway.batch_size=5", NULL};
    gws_start(&S, 1, o);
    wsc_t *c = gws_client(&S, 0, "u1", NULL, NULL);
    for (int i = 0; i < 4; i++)
        gws_publish(&S, "u1", "market_halt", 3, 0);
    gws_expect_silence(c, 300);
    gws_publish(&S, "u1", "market_halt", 3, 0);
    for (uint64_t s = 1; s <= 5; s++)
        gws_expect_seq(c, s);
    wsc_close(c);
    gws_stop(&S);
}
END_TEST

START_TEST(heartbeat_keeps_a_responsive_session_open_past_the_timeout)
{
    const char *o[] = {"gateway.ping_interval_s=1", "gateway.session_timeout_s=2", NULL};
    gws_start(&S, 1, o);
    wsc_t *c = gws_client(&S, 0, "u1", NULL, NULL);
    /* The client answers pings while it waits; the session outlives the 2 s timeout. lws
     * 4.1 drops an empty PONG before LWS_CALLBACK_RECEIVE_PONG, so this holds only when
     * the gateway's pings carry a payload (the pong echoes it). */
    gws_expect_silence(c, 4500);
    gws_expect_seq(c, gws_publish(&S, "u1", "position_limit", 0, 0));
    ck_assert_uint_eq(gws_stat(&S, 0, "timeout_closes"), 0);
    wsc_close(c);
    gws_stop(&S);
}
END_TEST

START_TEST(idle_session_is_closed_after_the_session_timeout)
{
    const char *o[] = {"gateway.session_timeout_s=1", "gateway.ping_interval_s=3600", NULL};
    gws_start(&S, 1, o);
    wsc_t *c = gws_client(&S, 0, "u1", NULL, NULL);
    const char *m;
    ck_assert_int_eq(wsc_recv(c, &m, NULL, 6000), -2);
    ck_assert_int_eq(wsc_close_code(c), 1001);
    ck_assert_uint_eq(gws_stat(&S, 0, "timeout_closes"), 1);
    wsc_close(c);
    gws_stop(&S);
}
END_TEST

START_TEST(slow_consumer_is_closed_with_4008_while_others_keep_receiving)
{
    const char *o[] = {"gateway.max_pending_bytes=256K", NULL};
    gws_start(&S, 1, o);
    wsc_t *slow = gws_client(&S, 0, "slow", NULL, NULL);
    wsc_t *fast = gws_client(&S, 0, "fast", NULL, NULL);
    wsc_set_reading(slow, false);
    wsc_pump(50);
    /* far more than the socket buffers and the bound hold; bounded in count */
    for (int i = 0; i < 2000 && gws_stat(&S, 0, "slow_consumer_closes") == 0; i++)
        for (int k = 0; k < 10; k++)
            gws_publish(&S, "slow", "position_limit", 0, 4000);
    ck_assert_uint_eq(gws_stat(&S, 0, "slow_consumer_closes"), 1);
    gws_expect_seq(fast, gws_publish(&S, "fast", "position_limit", 0, 0));
    wsc_set_reading(slow, true);
    gws_expect_close(slow, 4008);
    wsc_close(slow);
    wsc_close(fast);
    gws_stop(&S);
}
END_TEST

START_TEST(msgpack_session_gets_the_canonical_bytes)
{
    gws_start(&S, 1, NULL);
    wsc_t *c = gws_client(&S, 0, "u1", NULL, "herald.msgpack");
    uint64_t seq = gws_publish(&S, "u1", "position_limit", 0, 10);
    const char *m;
    bool bin = false;
    long n = wsc_recv(c, &m, &bin, GWS_WAIT);
    ck_assert(bin);
    ck_assert_int_gt(n, 0);
    /* the frame decodes to what was published, and re-encoding it gives the same bytes */
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    notif_t nt;
    herald_error_t err;
    ck_assert_int_eq(codec_decode((const uint8_t *)m, (size_t)n, &u, &nt, &err), 0);
    ck_assert_uint_eq(nt.seq, seq);
    ck_assert_str_eq(nt.user_id, "u1");
    ck_assert_uint_eq(nt.priority, 0);
    ck_assert_uint_eq(nt.payload.type, MSGPACK_OBJECT_MAP);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    ck_assert_int_eq(codec_encode(&nt, &sb, NULL), n);
    ck_assert(memcmp(sb.data, m, (size_t)n) == 0);
    msgpack_sbuffer_destroy(&sb);
    msgpack_unpacked_destroy(&u);
    static const uint8_t ping[] = {0x81, 0xa2, 'o', 'p', 0xa4, 'p', 'i', 'n', 'g'};
    wsc_send_binary(c, ping, sizeof ping);
    n = wsc_recv(c, &m, &bin, GWS_WAIT);
    ck_assert(bin);
    ck_assert(n > 0 && memmem(m, (size_t)n, "pong", 4));
    wsc_close(c);
    gws_stop(&S);
}
END_TEST

START_TEST(permessage_deflate_session_receives_batched_notifications_intact)
{
    gws_start(&S, 1, NULL);
    wsc_offer_deflate(true);
    wsc_t *c = gws_client(&S, 0, "u1", NULL, NULL);
    for (int i = 0; i < 30; i++)
        gws_publish(&S, "u1", "market_halt", 3, 300);
    uint64_t p0 = gws_publish(&S, "u1", "position_limit", 0, 300); /* P0: flushes nothing held */
    gws_expect_seq(c, p0);
    for (uint64_t s = 1; s <= 30; s++)
        gws_expect_seq(c, s);
    wsc_close(c);
    wsc_offer_deflate(false);
    gws_stop(&S);
}
END_TEST

START_TEST(malformed_client_ops_get_an_error_and_the_session_stays)
{
    gws_start(&S, 1, NULL);
    wsc_t *c = gws_client(&S, 0, "u1", NULL, NULL);
    wsc_send_text(c, "{\"op\":\"ping\"}");
    gws_expect_type(c, "pong", NULL);
    static const char *const bad[] = {"not json", "{\"op\":\"dance\"}", "{\"op\":\"subscribe\"}",
                                      "{\"op\":\"resume\",\"since\":\"x\"}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *j;
        wsc_send_text(c, bad[i]);
        gws_expect_type(c, "error", &j);
        ck_assert_msg(gws_jstr(j, "code")[0], "error without a code for %s", bad[i]);
        json_decref(j);
    }
    wsc_send_text(c, "{\"op\":\"ping\"}");
    gws_expect_type(c, "pong", NULL);
    gws_expect_seq(c, gws_publish(&S, "u1", "position_limit", 0, 0));
    ck_assert(!wsc_is_closed(c));
    ck_assert_uint_eq(gws_stat(&S, 0, "flood_closes"), 0);
    wsc_close(c);
    gws_stop(&S);
}
END_TEST

START_TEST(resume_since_max_u64_gets_an_error_and_the_broker_link_stays)
{
    gws_start(&S, 1, NULL);
    wsc_t *m = gws_client(&S, 0, "u1", NULL, "herald.msgpack");
    wsc_t *j = gws_client(&S, 0, "u2", NULL, NULL);
    uint64_t connects = gws_stat(&S, 0, "broker_connects");
    /* {"op":"resume","since":2^64-1}: since + 1 wraps to 0 */
    static const uint8_t resume[] = {0x82, 0xa2, 'o',  'p',  0xa6, 'r',  'e',  's', 'u',
                                     'm',  'e',  0xa5, 's',  'i',  'n',  'c',  'e', 0xcf,
                                     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    wsc_send_binary(m, resume, sizeof resume);
    const char *d;
    bool bin = false;
    long n = wsc_recv(m, &d, &bin, GWS_WAIT);
    ck_assert_msg(n > 0, "no answer to resume since=2^64-1");
    ck_assert(bin);
    ck_assert_ptr_nonnull(memmem(d, (size_t)n, "error", 5));
    ck_assert_ptr_nonnull(memmem(d, (size_t)n, "bad_value", 9));
    /* the other user's session on this gateway keeps receiving, over the same broker link */
    gws_expect_seq(j, gws_publish(&S, "u2", "position_limit", 0, 0));
    uint64_t seq = gws_publish(&S, "u1", "position_limit", 0, 0);
    n = wsc_recv(m, &d, &bin, GWS_WAIT);
    ck_assert_int_gt(n, 0);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    notif_t nt;
    herald_error_t err;
    ck_assert_int_eq(codec_decode((const uint8_t *)d, (size_t)n, &u, &nt, &err), 0);
    ck_assert_uint_eq(nt.seq, seq);
    msgpack_unpacked_destroy(&u);
    ck_assert_uint_eq(gws_stat(&S, 0, "broker_connects"), connects);
    ck_assert_uint_eq(gws_stat(&S, 0, "broker_connected"), 1);
    wsc_close(m);
    wsc_close(j);
    gws_stop(&S);
}
END_TEST

/* A client message larger than the gateway's per-session receive buffer (GW_LWS_RX_BUF)
 * arrives in pieces and is still read whole. */
START_TEST(a_client_message_larger_than_the_receive_buffer_is_read_whole)
{
    gws_start(&S, 1, NULL);
    wsc_t *c = gws_client(&S, 0, "u1", NULL, NULL);
    static char op[8192];
    int n = snprintf(op, sizeof op, "{\"op\":\"subscribe\",\"channels\":[");
    for (int i = 0; i < 400; i++)
        n += snprintf(op + n, sizeof op - (size_t)n, "%s\"risk\"", i ? "," : "");
    snprintf(op + n, sizeof op - (size_t)n, "]}");
    ck_assert_int_gt((int)strlen(op), 2000); /* four times the buffer, under the op limit */
    ck_assert_int_eq(wsc_send_text(c, op), 0);
    json_t *j = gws_json(c, GWS_WAIT);
    ck_assert_ptr_nonnull(j);
    ck_assert_msg(!strcmp(gws_jstr(j, "type"), "subscribed"), "got %s: %s", gws_jstr(j, "type"),
                  json_object_get(j, "message") ? gws_jstr(j, "message") : "");
    json_decref(j);
    /* only risk now: a trade notification is filtered, a risk one arrives */
    gws_publish(&S, "u1", "order_expired", 0, 0); /* channel trade */
    gws_expect_seq(c, gws_publish(&S, "u1", "position_limit", 0, 0));
    wsc_close(c);
    gws_stop(&S);
}
END_TEST

START_TEST(flood_of_bad_client_input_closes_the_session_with_1008)
{
    gws_start(&S, 1, NULL);
    wsc_t *c = gws_client(&S, 0, "u1", NULL, NULL);
    wsc_t *other = gws_client(&S, 0, "u1", NULL, NULL);
    for (int i = 0; i < 30; i++)
        wsc_send_text(c, "{{{");
    gws_expect_close(c, 1008);
    ck_assert_uint_eq(gws_stat(&S, 0, "flood_closes"), 1);
    /* only the flooding session is closed */
    gws_expect_seq(other, gws_publish(&S, "u1", "position_limit", 0, 0));
    wsc_close(c);
    wsc_close(other);
    gws_stop(&S);
}
END_TEST

START_TEST(metrics_and_healthz_answer_on_the_gateway_port)
{
    gws_start(&S, 1, NULL);
    wsc_t *c = gws_client(&S, 0, "u1", NULL, NULL);
    char body[16384];
    ck_assert_int_eq(procs_http_get("127.0.0.1", S.ws, "/metrics", body, sizeof body), 200);
    ck_assert_ptr_nonnull(strstr(body, "herald_gateway_active_sessions{gateway=\"0\"} 1"));
    ck_assert_ptr_nonnull(strstr(body, "herald_gateway_ring_corrupt"));
    ck_assert_int_eq(procs_http_get("127.0.0.1", S.ws, "/healthz", body, sizeof body), 200);
    ck_assert_int_eq(procs_http_get("127.0.0.1", S.ws, "/nope", body, sizeof body), 404);
    wsc_close(c);
    gws_stop(&S);
}
END_TEST

static Suite *gateway_broker_suite(void)
{
    Suite *s = suite_create("gateway_broker");
    TCase *tc = tcase_create("system");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, handshake_refuses_missing_bad_and_expired_tokens_with_401);
    tcase_add_test(tc, session_opened_the_moment_a_fresh_gateway_accepts_gets_its_welcome);
    tcase_add_test(tc, session_receives_only_its_own_users_notifications);
    tcase_add_test(tc, subscribe_limits_a_session_to_its_channels);
    tcase_add_test(tc, broadcast_reaches_every_session_on_every_gateway);
    tcase_add_test(tc, user_on_two_gateways_gets_each_notification_once_per_session);
    tcase_add_test(tc, p0_is_written_before_an_earlier_p3_batch);
    tcase_add_test(tc, batch_size_pending_forces_a_flush_before_the_deadline);
    tcase_add_test(tc, notifications_that_can_wait_cost_the_gateway_no_wake_up);
    tcase_add_test(tc, latency_histograms_count_every_delivery_once_per_priority);
    tcase_add_test(tc, a_client_message_larger_than_the_receive_buffer_is_read_whole);
    tcase_add_test(tc, backoff_idle_strategy_delivers_and_finds_records_by_polling);
    tcase_add_test(tc, heartbeat_keeps_a_responsive_session_open_past_the_timeout);
    tcase_add_test(tc, idle_session_is_closed_after_the_session_timeout);
    tcase_add_test(tc, slow_consumer_is_closed_with_4008_while_others_keep_receiving);
    tcase_add_test(tc, msgpack_session_gets_the_canonical_bytes);
    tcase_add_test(tc, permessage_deflate_session_receives_batched_notifications_intact);
    tcase_add_test(tc, malformed_client_ops_get_an_error_and_the_session_stays);
    tcase_add_test(tc, resume_since_max_u64_gets_an_error_and_the_broker_link_stays);
    tcase_add_test(tc, flood_of_bad_client_input_closes_the_session_with_1008);
    tcase_add_test(tc, metrics_and_healthz_answer_on_the_gateway_port);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return gws_run(gateway_broker_suite());
}
