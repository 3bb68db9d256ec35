/* test_gateway_broker.c - herald-broker and two herald-gateways as processes: broadcasts,
 * a user on two gateways, resume after reconnect, and kill -9 of a gateway mid-stream.
 * Notifications are published through the broker's HTTP API. */
#include <check.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "jwt.h"
#include "procs.h"
#include "wsclient.h"

#define SECRET "gateway-broker-test-secret"
#define WAIT   5000

typedef struct {
    procs_env_t env;
    pid_t broker, gw[2];
    uint16_t http, ws;
    char bin_gw[512];
} sys_t;

static sys_t S;

static void sys_spawn_gateway(unsigned id)
{
    char idbuf[8], log[400];
    snprintf(idbuf, sizeof idbuf, "%u", id);
    snprintf(log, sizeof log, "%s/gateway%u.log", S.env.dir, id);
    char *argv[] = {S.bin_gw, (char *)"--id", idbuf, (char *)"-c", S.env.config, NULL};
    S.gw[id] = procs_spawn(S.bin_gw, argv, log);
    ck_assert_int_gt(S.gw[id], 0);
    ck_assert_int_eq(procs_wait_tcp("127.0.0.1", (uint16_t)(S.ws + id), WAIT), 0);
    /* healthy = broker link up and ring attached */
    char body[256];
    int st = 0;
    for (int i = 0; i < 250 && st != 200; i++) {
        st = procs_http_get("127.0.0.1", (uint16_t)(S.ws + id), "/healthz", body, sizeof body);
        if (st != 200) usleep(20000);
    }
    ck_assert_int_eq(st, 200);
}

static void sys_start(void)
{
    char ini[512], bin[512], log[400];
    ck_assert_int_eq(procs_env_init(&S.env, "gwb"), 0);
    S.http = procs_free_ports(1);
    S.ws = procs_free_ports(2);
    ck_assert(S.http && S.ws);
    snprintf(ini, sizeof ini,
             "[broker]\nhttp = 127.0.0.1:%u\n[gateway]\ncount = 2\nlisten = 127.0.0.1:%u\n"
             "ring_bytes = 4M\n[auth]\nsecret = %s\n",
             S.http, S.ws, SECRET);
    ck_assert_int_eq(procs_env_write_config(&S.env, ini), 0);
    procs_build_path("broker/herald-broker", bin, sizeof bin);
    procs_build_path("gateway/herald-gateway", S.bin_gw, sizeof S.bin_gw);
    snprintf(log, sizeof log, "%s/broker.log", S.env.dir);
    char *argv[] = {bin, (char *)"-c", S.env.config, NULL};
    S.broker = procs_spawn(bin, argv, log);
    ck_assert_int_gt(S.broker, 0);
    /* The broker is not probed by connecting (a connection to control.sock is a gateway
     * to it); the gateways retry until it listens, and are waited for below. */
    sys_spawn_gateway(0);
    sys_spawn_gateway(1);
}

static void sys_stop(void)
{
    for (unsigned i = 0; i < 2; i++)
        if (S.gw[i] > 0) procs_stop(S.gw[i], 3000);
    if (S.broker > 0) procs_stop(S.broker, 3000);
    memset(S.gw, 0, sizeof S.gw);
    S.broker = 0;
    procs_cleanup();
}

/* Publish one notification; returns its seq. */
static uint64_t sys_publish(const char *user, const char *type, int prio)
{
    char body[512], resp[1024];
    static unsigned n;
    int len = snprintf(body, sizeof body,
                       "{\"user_id\":\"%s\",\"message_type\":\"%s\",\"message_id\":\"t%d-%u\","
                       "\"source\":\"test\",\"payload\":{}",
                       user, type, (int)getpid(), n++);
    if (prio >= 0) len += snprintf(body + len, sizeof body - (size_t)len, ",\"priority\":%d", prio);
    snprintf(body + len, sizeof body - (size_t)len, "}");
    int st = procs_http_post("127.0.0.1", S.http, "/api/publish", "application/json", NULL, body,
                             resp, sizeof resp);
    ck_assert_msg(st == 200, "publish: %d %s", st, resp);
    const char *p = strstr(resp, "\"seq\":");
    ck_assert_ptr_nonnull(p);
    return strtoull(p + 6, NULL, 10);
}

static wsc_t *sys_client(unsigned gw, const char *user, uint64_t since)
{
    char tok[512], url[256];
    wsc_t *c;
    ck_assert_int_gt(jwt_mint(SECRET, user, (uint64_t)time(NULL), 3600, tok, sizeof tok), 0);
    if (since)
        snprintf(url, sizeof url, "ws://127.0.0.1:%u/ws?since=%llu", S.ws + gw,
                 (unsigned long long)since);
    else
        snprintf(url, sizeof url, "ws://127.0.0.1:%u/ws", S.ws + gw);
    ck_assert_int_eq(wsc_connect(&c, url, tok, NULL, WAIT), 101);
    const char *m;
    ck_assert_int_gt(wsc_recv(c, &m, NULL, WAIT), 0);
    ck_assert_msg(strstr(m, "\"welcome\""), "first message: %s", m);
    return c;
}

/* Next notification's seq (skipping nothing: any other message fails), 0 on timeout. */
static uint64_t next_seq(wsc_t *c, const char *expect_user)
{
    const char *m;
    if (wsc_recv(c, &m, NULL, WAIT) < 0) return 0;
    json_t *j = json_loads(m, 0, NULL);
    ck_assert_msg(j != NULL, "not JSON: %s", m);
    ck_assert_msg(!strcmp(json_string_value(json_object_get(j, "type")), "notification"),
                  "expected a notification: %s", m);
    if (expect_user)
        ck_assert_str_eq(json_string_value(json_object_get(j, "user_id")), expect_user);
    uint64_t seq = (uint64_t)json_integer_value(json_object_get(j, "seq"));
    json_decref(j);
    return seq;
}

static void expect_silence(wsc_t *c, int ms)
{
    const char *m;
    long n = wsc_recv(c, &m, NULL, ms);
    ck_assert_msg(n == -1, "expected nothing, got: %s", n >= 0 ? m : "(closed)");
}

START_TEST(broadcast_reaches_every_session_on_every_gateway)
{
    sys_start();
    wsc_t *a = sys_client(0, "alice", 0);
    wsc_t *b = sys_client(1, "bob", 0);
    uint64_t seq = sys_publish("*", "market_halt", 0);
    ck_assert_uint_eq(next_seq(a, "*"), seq);
    ck_assert_uint_eq(next_seq(b, "*"), seq);
    sys_publish("bob", "position_limit", 0);
    ck_assert_uint_eq(next_seq(b, "bob"), 1);
    expect_silence(a, 300);
    wsc_close(a);
    wsc_close(b);
    sys_stop();
}
END_TEST

START_TEST(user_on_two_gateways_gets_each_notification_once_per_session)
{
    sys_start();
    wsc_t *s0 = sys_client(0, "u1", 0);
    wsc_t *s1 = sys_client(1, "u1", 0);
    wsc_t *s2 = sys_client(1, "u1", 0);
    for (int i = 0; i < 20; i++)
        sys_publish("u1", "trade_canceled", -1); /* P1 */
    wsc_t *all[] = {s0, s1, s2};
    for (unsigned k = 0; k < 3; k++) {
        for (uint64_t seq = 1; seq <= 20; seq++)
            ck_assert_uint_eq(next_seq(all[k], "u1"), seq);
        expect_silence(all[k], k ? 50 : 300);
    }
    for (unsigned k = 0; k < 3; k++)
        wsc_close(all[k]);
    sys_stop();
}
END_TEST

START_TEST(resume_after_reconnect_returns_exactly_the_missed_seqs)
{
    sys_start();
    wsc_t *c = sys_client(0, "u1", 0);
    for (int i = 0; i < 3; i++)
        sys_publish("u1", "position_limit", 0);
    for (uint64_t s = 1; s <= 3; s++)
        ck_assert_uint_eq(next_seq(c, "u1"), s);
    wsc_close(c);
    for (int i = 0; i < 3; i++)
        sys_publish("u1", "position_limit", 0);
    c = sys_client(0, "u1", 3);
    for (uint64_t s = 4; s <= 6; s++)
        ck_assert_uint_eq(next_seq(c, "u1"), s);
    const char *m;
    ck_assert_int_gt(wsc_recv(c, &m, NULL, WAIT), 0);
    ck_assert_msg(strstr(m, "\"resumed\"") && strstr(m, "\"from\":4") && strstr(m, "\"to\":6"),
                  "resumed message: %s", m);
    sys_publish("u1", "position_limit", 0);
    ck_assert_uint_eq(next_seq(c, "u1"), 7);
    expect_silence(c, 300);
    wsc_close(c);
    sys_stop();
}
END_TEST

/* Read notifications into seen[] until `last` arrives or the connection ends. */
static uint64_t drain_into(wsc_t *c, unsigned char *seen, uint64_t cap, uint64_t last,
                           uint64_t *dups)
{
    uint64_t high = 0;
    const char *m;
    while (high < last && wsc_recv(c, &m, NULL, 2000) >= 0) {
        json_t *j = json_loads(m, 0, NULL);
        if (!j) continue;
        const char *type = json_string_value(json_object_get(j, "type"));
        if (type && !strcmp(type, "notification")) {
            uint64_t s = (uint64_t)json_integer_value(json_object_get(j, "seq"));
            ck_assert_msg(s > high, "seq %llu after %llu: out of order", (unsigned long long)s,
                          (unsigned long long)high);
            if (s < cap && seen[s]++) (*dups)++;
            high = s;
        }
        json_decref(j);
    }
    return high;
}

START_TEST(gateway_kill9_mid_stream_then_resume_loses_and_duplicates_nothing)
{
    sys_start();
    enum { N = 120 };
    unsigned char seen[N + 1] = {0};
    uint64_t dups = 0;
    wsc_t *c = sys_client(0, "u1", 0);
    for (int i = 0; i < N / 2; i++)
        sys_publish("u1", "trade_canceled", -1);
    uint64_t high = drain_into(c, seen, N + 1, N / 4, &dups);
    ck_assert_uint_ge(high, N / 4);
    procs_kill(S.gw[0], SIGKILL);
    procs_reap(S.gw[0], WAIT);
    S.gw[0] = 0;
    /* whatever was in flight is lost with the process; the client sees the close */
    high = drain_into(c, seen, N + 1, N, &dups);
    ck_assert(wsc_is_closed(c));
    wsc_close(c);
    for (int i = N / 2; i < 3 * N / 4; i++)
        sys_publish("u1", "trade_canceled", -1);
    sys_spawn_gateway(0);
    c = sys_client(0, "u1", high);
    for (int i = 3 * N / 4; i < N; i++)
        sys_publish("u1", "trade_canceled", -1);
    high = drain_into(c, seen, N + 1, N, &dups);
    ck_assert_uint_eq(high, N);
    ck_assert_uint_eq(dups, 0);
    for (uint64_t s = 1; s <= N; s++)
        ck_assert_msg(seen[s] == 1, "seq %llu missing", (unsigned long long)s);
    wsc_close(c);
    sys_stop();
}
END_TEST

static Suite *gateway_broker_suite(void)
{
    Suite *s = suite_create("gateway_broker");
    TCase *tc = tcase_create("system");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, broadcast_reaches_every_session_on_every_gateway);
    tcase_add_test(tc, user_on_two_gateways_gets_each_notification_once_per_session);
    tcase_add_test(tc, resume_after_reconnect_returns_exactly_the_missed_seqs);
    tcase_add_test(tc, gateway_kill9_mid_stream_then_resume_loses_and_duplicates_nothing);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    SRunner *sr = srunner_create(gateway_broker_suite());
    procs_registry_begin();
    srunner_run_all(sr, CK_NORMAL);
    procs_registry_end();
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
