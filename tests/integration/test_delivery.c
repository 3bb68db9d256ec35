/* test_delivery.c - protocol.md 14 delivery semantics against the real broker and gateways:
 * acknowledged delivery with re-sends across a gateway kill -9, and presence across two
 * gateways. (Conflation: test_conflation.c.) */
#include <check.h>
#include <jansson.h>
#include <msgpack.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gwsys.h"
#include "herald_time.h"
#include "rawws.h"

static gws_t S;

/* --- acknowledged delivery --- */

static uint64_t publish_margin_call(const char *user)
{
    static unsigned n;
    char json[512];
    snprintf(json, sizeof json,
             "{\"user_id\":\"%s\",\"message_type\":\"margin_call\",\"message_id\":\"mc-%d-%u\","
             "\"payload\":{\"user_id\":\"%s\",\"current_margin\":1200.5,\"required_margin\":2000,"
             "\"deadline\":1764003600,\"message\":\"add margin\"}}",
             user, (int)getpid(), n++, user);
    return gws_publish_json(&S, json, 1, NULL);
}

/* GET a broker path as JSON (asserting 200). */
static json_t *broker_get(const char *path)
{
    static char body[65536];
    int st = procs_http_get("127.0.0.1", S.http, path, body, sizeof body);
    ck_assert_msg(st == 200, "GET %s: %d %s", path, st, body);
    json_t *j = json_loads(body, 0, NULL);
    ck_assert_msg(j != NULL, "GET %s: not JSON: %s", path, body);
    return j;
}

/* The user's outstanding entries (GET /api/unacked). */
static json_t *unacked(const char *user)
{
    char path[128];
    snprintf(path, sizeof path, "/api/unacked?user=%s", user);
    json_t *j = broker_get(path);
    ck_assert_str_eq(gws_jstr(j, "user"), user);
    ck_assert(json_is_array(json_object_get(j, "unacked")));
    return j;
}

static size_t unacked_count(const char *user)
{
    json_t *j = unacked(user);
    size_t n = json_array_size(json_object_get(j, "unacked"));
    json_decref(j);
    return n;
}

/* Wait until the user has n outstanding. */
static void wait_unacked(const char *user, size_t n)
{
    uint64_t end = mono_ms() + GWS_WAIT;
    while (unacked_count(user) != n && mono_ms() < end)
        usleep(20000);
    ck_assert_uint_eq(unacked_count(user), n);
}

/* The next notification on c: its seq, and whether it is marked a redelivery. */
static uint64_t next_notification(wsc_t *c, int timeout_ms, bool *redelivery)
{
    json_t *j;
    while ((j = gws_json(c, timeout_ms))) {
        if (!strcmp(gws_jstr(j, "type"), "notification")) {
            uint64_t seq = gws_jint(j, "seq");
            *redelivery = json_is_true(json_object_get(j, "redelivery"));
            json_decref(j);
            return seq;
        }
        json_decref(j);
    }
    return 0;
}

static void send_ack(wsc_t *c, uint64_t seq)
{
    char op[64];
    snprintf(op, sizeof op, "{\"op\":\"ack\",\"seq\":%llu}", (unsigned long long)seq);
    ck_assert_int_eq(wsc_send_text(c, op), 0);
}

/* A margin call not acknowledged is re-sent after delivery.ack_timeout_ms with the same seq
 * and "redelivery":true, shows in /api/unacked with its attempts, and once acknowledged is
 * neither listed nor re-sent again. */
START_TEST(unacked_margin_call_is_resent_until_acked)
{
    const char *o[] = {"delivery.ack_timeout_ms=300", NULL};
    gws_start(&S, 1, o);
    wsc_t *c = gws_client(&S, 0, "acku", "?acks=1", NULL);
    uint64_t t0 = (uint64_t)time(NULL) * 1000000000ull;
    uint64_t seq = publish_margin_call("acku");
    bool re = true;
    ck_assert_uint_eq(next_notification(c, GWS_WAIT, &re), seq);
    ck_assert(!re);
    json_t *j = unacked("acku");
    json_t *e = json_array_get(json_object_get(j, "unacked"), 0);
    ck_assert_ptr_nonnull(e);
    ck_assert_uint_eq(gws_jint(e, "seq"), seq);
    ck_assert_str_eq(gws_jstr(e, "message_type"), "margin_call");
    ck_assert(!strncmp(gws_jstr(e, "message_id"), "mc-", 3));
    ck_assert_uint_ge(gws_jint(e, "delivered_at"), t0);
    ck_assert_uint_ge(gws_jint(e, "attempts"), 1);
    json_decref(j);
    /* not acked: re-sent, same seq, marked */
    ck_assert_uint_eq(next_notification(c, GWS_WAIT, &re), seq);
    ck_assert(re);
    ck_assert_uint_eq(next_notification(c, GWS_WAIT, &re), seq);
    ck_assert(re);
    j = unacked("acku");
    ck_assert_uint_ge(gws_jint(json_array_get(json_object_get(j, "unacked"), 0), "attempts"), 3);
    json_decref(j);
    send_ack(c, seq);
    wait_unacked("acku", 0);
    /* drain a re-send that may have crossed the ack, then nothing more */
    const char *m;
    while (wsc_recv(c, &m, NULL, 400) >= 0)
        continue;
    gws_expect_silence(c, 1500);
    json_t *st = broker_get("/api/stats");
    json_t *acks = json_object_get(st, "acks");
    ck_assert_uint_eq(gws_jint(acks, "acked"), 1);
    ck_assert_uint_eq(gws_jint(acks, "unacked_total"), 1);
    ck_assert_uint_ge(gws_jint(acks, "redeliveries"), 2);
    ck_assert_uint_eq(gws_jint(acks, "outstanding"), 0);
    json_decref(st);
    char metrics[65536];
    ck_assert_int_eq(procs_http_get("127.0.0.1", S.http, "/metrics", metrics, sizeof metrics), 200);
    ck_assert_ptr_nonnull(strstr(metrics, "\nherald_unacked_total 1\n"));
    ck_assert_ptr_nonnull(strstr(metrics, "\nherald_unacked 0\n"));
    ck_assert_uint_ge(gws_stat(&S, 0, "redeliveries"), 2);
    ck_assert_uint_eq(gws_stat(&S, 0, "acks"), 1);
    wsc_close(c);
    gws_stop(&S);
}
END_TEST

/* Sessions that did not opt in see no change: no re-send, nothing tracked; opting in with
 * the op is confirmed, and re-sends then reach that session (msgpack too, marked). */
START_TEST(only_opted_in_sessions_get_resends)
{
    const char *o[] = {"delivery.ack_timeout_ms=200", NULL};
    gws_start(&S, 1, o);
    wsc_t *plain = gws_client(&S, 0, "optu", NULL, NULL);
    uint64_t seq = publish_margin_call("optu");
    gws_expect_seq(plain, seq);
    gws_expect_silence(plain, 800);
    ck_assert_uint_eq(unacked_count("optu"), 0);
    /* opt in on a msgpack session */
    wsc_t *mp = gws_client(&S, 0, "optu", NULL, "herald.msgpack");
    static const char op[] = "\x82\xa2op\xa4"
                             "acks\xa2on\xc3"; /* {"op":"acks","on":true} */
    ck_assert_int_eq(wsc_send_binary(mp, op, sizeof op - 1), 0);
    const char *m;
    bool bin;
    long n = wsc_recv(mp, &m, &bin, GWS_WAIT);
    ck_assert(bin && n > 0 && memmem(m, (size_t)n, "acks", 4));
    uint64_t seq2 = publish_margin_call("optu");
    gws_expect_seq(plain, seq2);
    n = wsc_recv(mp, &m, &bin, GWS_WAIT); /* the notification */
    ck_assert(bin && n > 0);
    wait_unacked("optu", 1);
    n = wsc_recv(mp, &m, &bin, GWS_WAIT); /* its re-send */
    ck_assert(bin && n > 0);
    ck_assert_ptr_nonnull(memmem(m, (size_t)n, "\xaaredelivery\xc3", 12));
    gws_expect_silence(plain, 300); /* the plain session is not re-sent to */
    /* any session may ack: the plain one does */
    send_ack(plain, seq2);
    wait_unacked("optu", 0);
    wsc_close(plain);
    wsc_close(mp);
    gws_stop(&S);
}
END_TEST

/* kill -9 of the gateway between delivery and ack keeps the notification outstanding: the
 * client reconnects to the restarted gateway, resumes, and gets the re-send. */
START_TEST(gateway_kill9_keeps_it_outstanding)
{
    const char *o[] = {"delivery.ack_timeout_ms=500", NULL};
    gws_start(&S, 1, o);
    wsc_t *c = gws_client(&S, 0, "killu", "?acks=1", NULL);
    uint64_t seq = publish_margin_call("killu");
    bool re;
    ck_assert_uint_eq(next_notification(c, GWS_WAIT, &re), seq);
    gws_kill9(&S, &S.gw[0]);
    wsc_close(c);
    gws_spawn_gateway(&S, 0);
    ck_assert_uint_eq(unacked_count("killu"), 1); /* the broker kept it */
    char q[64];
    snprintf(q, sizeof q, "?acks=1&since=%llu", (unsigned long long)seq);
    c = gws_client(&S, 0, "killu", q, NULL);
    ck_assert_uint_eq(next_notification(c, GWS_WAIT, &re), seq);
    ck_assert(re);
    send_ack(c, seq);
    wait_unacked("killu", 0);
    wsc_close(c);
    gws_stop(&S);
}
END_TEST

/* After delivery.ack_max_attempts sends it is no longer re-sent, but stays listed for the
 * producer to escalate. */
START_TEST(resends_stop_at_max_attempts_and_it_stays_listed)
{
    const char *o[] = {"delivery.ack_timeout_ms=150", "delivery.ack_max_attempts=3", NULL};
    gws_start(&S, 1, o);
    wsc_t *c = gws_client(&S, 0, "maxu", "?acks=1", NULL);
    uint64_t seq = publish_margin_call("maxu");
    bool re;
    for (int i = 0; i < 3; i++)
        ck_assert_uint_eq(next_notification(c, GWS_WAIT, &re), seq);
    gws_expect_silence(c, 1000);
    json_t *j = unacked("maxu");
    json_t *e = json_array_get(json_object_get(j, "unacked"), 0);
    ck_assert_uint_eq(gws_jint(e, "attempts"), 3);
    json_decref(j);
    json_t *st = broker_get("/api/stats");
    ck_assert_uint_eq(gws_jint(json_object_get(st, "acks"), "exhausted"), 1);
    json_decref(st);
    wsc_close(c);
    gws_stop(&S);
}
END_TEST

/* --- presence --- */

static json_t *presence(const char *user)
{
    char path[128];
    snprintf(path, sizeof path, "/api/presence?user=%s", user);
    json_t *j = broker_get(path);
    ck_assert_str_eq(gws_jstr(j, "user"), user);
    return j;
}

/* Wait until the user's presence has `sessions` sessions; returns it. */
static json_t *presence_with(const char *user, uint64_t sessions)
{
    uint64_t end = mono_ms() + GWS_WAIT;
    for (;;) {
        json_t *j = presence(user);
        if (gws_jint(j, "sessions") == sessions || mono_ms() > end) return j;
        json_decref(j);
        usleep(20000);
    }
}

static void assert_gateways(json_t *p, const char *want)
{
    char *got = json_dumps(json_object_get(p, "gateways"), JSON_COMPACT);
    ck_assert_str_eq(got, want);
    free(got);
}

START_TEST(presence_follows_sessions_across_two_gateways)
{
    gws_start(&S, 2, NULL);
    json_t *p = presence("pu");
    ck_assert(json_is_false(json_object_get(p, "online")));
    ck_assert_uint_eq(gws_jint(p, "sessions"), 0);
    ck_assert_uint_eq(gws_jint(p, "last_seen"), 0); /* never seen */
    assert_gateways(p, "[]");
    json_decref(p);

    uint64_t before = (uint64_t)time(NULL) * 1000000000ull;
    wsc_t *a = gws_client(&S, 0, "pu", NULL, NULL);
    p = presence_with("pu", 1);
    ck_assert(json_is_true(json_object_get(p, "online")));
    assert_gateways(p, "[0]");
    ck_assert_uint_ge(gws_jint(p, "last_seen"), before); /* now, while online */
    json_decref(p);
    wsc_t *b = gws_client(&S, 1, "pu", NULL, NULL);
    p = presence_with("pu", 2);
    assert_gateways(p, "[0,1]");
    json_decref(p);
    wsc_close(a);
    p = presence_with("pu", 1);
    ck_assert(json_is_true(json_object_get(p, "online")));
    assert_gateways(p, "[1]");
    json_decref(p);
    uint64_t closed_at = (uint64_t)time(NULL) * 1000000000ull;
    wsc_close(b);
    p = presence_with("pu", 0);
    ck_assert(json_is_false(json_object_get(p, "online")));
    assert_gateways(p, "[]");
    uint64_t seen = gws_jint(p, "last_seen");
    ck_assert_uint_ge(seen, closed_at);
    ck_assert_uint_le(seen, (uint64_t)(time(NULL) + 1) * 1000000000ull);
    json_decref(p);
    /* it stays offline with that last_seen */
    sleep(1);
    p = presence("pu");
    ck_assert_uint_eq(gws_jint(p, "last_seen"), seen);
    json_decref(p);

    /* the batch form, in order; bounds and bad input */
    wsc_t *c = gws_client(&S, 1, "pv", NULL, NULL);
    json_decref(presence_with("pv", 1));
    char resp[8192];
    int st = procs_http_post("127.0.0.1", S.http, "/api/presence", "application/json", NULL,
                             "{\"users\":[\"pv\",\"pu\",\"nobody\"]}", resp, sizeof resp);
    ck_assert_int_eq(st, 200);
    json_t *batch = json_loads(resp, 0, NULL);
    json_t *users = json_object_get(batch, "users");
    ck_assert_uint_eq(json_array_size(users), 3);
    ck_assert_str_eq(gws_jstr(json_array_get(users, 0), "user"), "pv");
    ck_assert(json_is_true(json_object_get(json_array_get(users, 0), "online")));
    ck_assert_uint_eq(gws_jint(json_array_get(users, 1), "last_seen"), seen);
    ck_assert_uint_eq(gws_jint(json_array_get(users, 2), "last_seen"), 0);
    json_decref(batch);
    static char big[1100 * 8 + 32];
    size_t len = (size_t)snprintf(big, sizeof big, "{\"users\":[");
    for (int i = 0; i < 1001; i++)
        len += (size_t)snprintf(big + len, sizeof big - len, "%s\"u%d\"", i ? "," : "", i);
    snprintf(big + len, sizeof big - len, "]}");
    ck_assert_int_eq(procs_http_post("127.0.0.1", S.http, "/api/presence", "application/json", NULL,
                                     big, resp, sizeof resp),
                     413);
    ck_assert_int_eq(procs_http_post("127.0.0.1", S.http, "/api/presence", "application/json", NULL,
                                     "{\"users\":[7]}", resp, sizeof resp),
                     400);
    ck_assert_int_eq(procs_http_get("127.0.0.1", S.http, "/api/presence", resp, sizeof resp), 400);
    ck_assert_int_eq(
        procs_http_get("127.0.0.1", S.http, "/api/presence?user=%2A", resp, sizeof resp), 400);
    wsc_close(c);
    gws_stop(&S);
}
END_TEST

/* With broker.api_key set, presence and the outstanding sets are for producers holding it. */
START_TEST(presence_and_unacked_need_the_api_key_when_one_is_set)
{
    const char *o[] = {"broker.api_key=k-presence", NULL};
    gws_start(&S, 1, o);
    char resp[4096];
    ck_assert_int_eq(
        procs_http_get("127.0.0.1", S.http, "/api/presence?user=u1", resp, sizeof resp), 401);
    ck_assert_int_eq(procs_http_get("127.0.0.1", S.http, "/api/unacked?user=u1", resp, sizeof resp),
                     401);
    ck_assert_int_eq(procs_http_post("127.0.0.1", S.http, "/api/presence", "application/json", NULL,
                                     "{\"users\":[\"u1\"]}", resp, sizeof resp),
                     401);
    ck_assert_int_eq(procs_http_post("127.0.0.1", S.http, "/api/presence", "application/json",
                                     "Authorization: apikey k-presence", "{\"users\":[\"u1\"]}",
                                     resp, sizeof resp),
                     200);
    ck_assert_ptr_nonnull(strstr(resp, "\"online\":false"));
    gws_stop(&S);
}
END_TEST

static Suite *delivery_suite(void)
{
    Suite *s = suite_create("delivery");
    TCase *tc = tcase_create("acks");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, unacked_margin_call_is_resent_until_acked);
    tcase_add_test(tc, only_opted_in_sessions_get_resends);
    tcase_add_test(tc, gateway_kill9_keeps_it_outstanding);
    tcase_add_test(tc, resends_stop_at_max_attempts_and_it_stays_listed);
    suite_add_tcase(s, tc);
    tc = tcase_create("presence");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, presence_follows_sessions_across_two_gateways);
    tcase_add_test(tc, presence_and_unacked_need_the_api_key_when_one_is_set);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return gws_run(delivery_suite());
}
