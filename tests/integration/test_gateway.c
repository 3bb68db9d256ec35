/* test_gateway.c - herald-gateway as a process: WebSocket handshake and auth, delivery,
 * filters, batching, heartbeat, slow consumers, msgpack, gap fill, resume, broker restart and
 * corrupt ring records. The broker side is scripted (fakebroker.h) so every record the
 * gateway sees is exact. */
#include <check.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fakebroker.h"
#include "jwt.h"
#include "procs.h"
#include "wsclient.h"

#define SECRET "gateway-test-secret"
#define WAIT   5000

typedef struct {
    procs_env_t env;
    fb_t *fb;
    pid_t gw;
    uint16_t port;
    char url[128];
    char log[320];
} gwt_t;

static gwt_t T;

/* Start the fake broker and gateway 0 with extra -o overrides (NULL-terminated). */
static void gwt_start(const char *const *overrides)
{
    char ini[512], bin[512];
    ck_assert_int_eq(procs_env_init(&T.env, "gw"), 0);
    T.port = procs_free_ports(1);
    ck_assert_uint_ne(T.port, 0);
    snprintf(ini, sizeof ini,
             "[gateway]\nlisten = 127.0.0.1:%u\nring_bytes = 1M\n[auth]\nsecret = %s\n", T.port,
             SECRET);
    ck_assert_int_eq(procs_env_write_config(&T.env, ini), 0);
    T.fb = fb_start(T.env.dir, T.env.shm_prefix, 0, 1u << 20);
    ck_assert_ptr_nonnull(T.fb);
    snprintf(T.url, sizeof T.url, "ws://127.0.0.1:%u/ws", T.port);
    snprintf(T.log, sizeof T.log, "%s/gateway0.log", T.env.dir);
    procs_build_path("gateway/herald-gateway", bin, sizeof bin);
    char *argv[40] = {bin, "--id", "0", "-c", T.env.config};
    int argc = 5;
    for (size_t i = 0; overrides && overrides[i] && argc < 36; i++) {
        argv[argc++] = (char *)"-o";
        argv[argc++] = (char *)overrides[i];
    }
    argv[argc] = NULL;
    T.gw = procs_spawn(bin, argv, T.log);
    ck_assert_int_gt(T.gw, 0);
    ck_assert_int_eq(procs_wait_tcp("127.0.0.1", T.port, WAIT), 0);
    ck_assert_int_eq(fb_accept(T.fb, WAIT), 0);
}

static void gwt_stop(void)
{
    if (T.gw > 0) procs_stop(T.gw, 3000);
    T.gw = 0;
    fb_stop(T.fb);
    T.fb = NULL;
    procs_cleanup();
}

static void gwt_token(const char *user, char *out, size_t cap)
{
    ck_assert_int_gt(jwt_mint(SECRET, user, (uint64_t)time(NULL), 3600, out, cap), 0);
}

/* Connect user (query appended to the URL), answer its open with READY(last, bcast_last) and
 * read the welcome. Returns the client; *session gets the session id. */
static wsc_t *gwt_client(const char *user, const char *query, const char *proto, uint64_t last,
                         uint64_t *session, fb_req_t *open)
{
    char tok[512], url[256];
    fb_req_t req;
    wsc_t *c;
    gwt_token(user, tok, sizeof tok);
    snprintf(url, sizeof url, "%s%s", T.url, query ? query : "");
    ck_assert_int_eq(wsc_connect(&c, url, tok, proto, WAIT), 101);
    ck_assert_int_eq(fb_expect(T.fb, "open", &req, WAIT), 0);
    ck_assert_str_eq(req.user, user);
    if (open) *open = req;
    if (session) *session = req.session;
    fb_ready(T.fb, req.session, last, 0);
    const char *m;
    bool bin;
    ck_assert_int_gt(wsc_recv(c, &m, &bin, WAIT), 0);
    if (!proto || strcmp(proto, "herald.msgpack")) {
        ck_assert_msg(strstr(m, "\"type\":\"welcome\""), "first message: %s", m);
        ck_assert_msg(strstr(m, user), "welcome names the user: %s", m);
    }
    return c;
}

/* Next JSON message as a jansson object (caller json_decref). */
static json_t *gwt_json(wsc_t *c, int timeout_ms)
{
    const char *m;
    long n = wsc_recv(c, &m, NULL, timeout_ms);
    if (n < 0) return NULL;
    json_t *j = json_loads(m, 0, NULL);
    ck_assert_msg(j != NULL, "not JSON: %s", m);
    return j;
}

static const char *jstr(json_t *j, const char *k)
{
    const char *s = json_string_value(json_object_get(j, k));
    return s ? s : "";
}

static uint64_t jint(json_t *j, const char *k)
{
    return (uint64_t)json_integer_value(json_object_get(j, k));
}

static void expect_seq(wsc_t *c, uint64_t seq)
{
    json_t *j = gwt_json(c, WAIT);
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(jstr(j, "type"), "notification");
    ck_assert_uint_eq(jint(j, "seq"), seq);
    json_decref(j);
}

static void expect_type(wsc_t *c, const char *type, json_t **out)
{
    json_t *j = gwt_json(c, WAIT);
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(jstr(j, "type"), type);
    if (out)
        *out = j;
    else
        json_decref(j);
}

static void expect_silence(wsc_t *c, int ms)
{
    const char *m;
    long n = wsc_recv(c, &m, NULL, ms);
    ck_assert_msg(n == -1, "expected nothing, got: %s", n >= 0 ? m : "(closed)");
}

static uint64_t gwt_stat(const char *key)
{
    char body[8192], pat[96];
    ck_assert_int_eq(procs_http_get("127.0.0.1", T.port, "/stats", body, sizeof body), 200);
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(body, pat);
    ck_assert_msg(p != NULL, "no %s in %s", key, body);
    return strtoull(p + strlen(pat), NULL, 10);
}

START_TEST(handshake_refuses_missing_bad_and_expired_tokens_with_401)
{
    gwt_start(NULL);
    char tok[512], bad[512], expired[512], url[800];
    wsc_t *c = NULL;
    ck_assert_int_eq(wsc_connect(&c, T.url, NULL, NULL, WAIT), 401);
    ck_assert_int_gt(jwt_mint("another-secret", "u1", (uint64_t)time(NULL), 60, bad, sizeof bad),
                     0);
    ck_assert_int_eq(wsc_connect(&c, T.url, bad, NULL, WAIT), 401);
    ck_assert_int_gt(
        jwt_mint(SECRET, "u1", (uint64_t)time(NULL) - 7200, 60, expired, sizeof expired), 0);
    ck_assert_int_eq(wsc_connect(&c, T.url, expired, NULL, WAIT), 401);
    ck_assert_ptr_null(c);
    ck_assert_uint_eq(gwt_stat("auth_failures_missing"), 1);
    ck_assert_uint_eq(gwt_stat("auth_failures_bad_signature"), 1);
    ck_assert_uint_eq(gwt_stat("auth_failures_expired"), 1);
    /* a good token in the query string (browsers cannot set headers) */
    gwt_token("u1", tok, sizeof tok);
    snprintf(url, sizeof url, "%s?token=%s", T.url, tok);
    ck_assert_int_eq(wsc_connect(&c, url, NULL, NULL, WAIT), 101);
    fb_req_t req;
    ck_assert_int_eq(fb_expect(T.fb, "open", &req, WAIT), 0);
    ck_assert_str_eq(req.user, "u1");
    ck_assert_uint_eq(req.since, 0);
    wsc_close(c);
    ck_assert_int_eq(fb_expect(T.fb, "close", &req, WAIT), 0);
    gwt_stop();
}
END_TEST

START_TEST(session_receives_only_its_own_users_notifications)
{
    gwt_start(NULL);
    wsc_t *a = gwt_client("alice", NULL, NULL, 0, NULL, NULL);
    wsc_t *b = gwt_client("bob", NULL, NULL, 0, NULL, NULL);
    fb_notify(T.fb, "bob", 1, "position_limit", 0, 0);
    fb_notify(T.fb, "alice", 1, "position_limit", 0, 0);
    json_t *j;
    expect_type(a, "notification", &j);
    ck_assert_str_eq(jstr(j, "user_id"), "alice");
    json_decref(j);
    expect_type(b, "notification", &j);
    ck_assert_str_eq(jstr(j, "user_id"), "bob");
    json_decref(j);
    expect_silence(a, 300);
    expect_silence(b, 100);
    wsc_close(a);
    wsc_close(b);
    gwt_stop();
}
END_TEST

START_TEST(subscribe_limits_a_session_to_its_channels)
{
    gwt_start(NULL);
    wsc_t *c = gwt_client("u1", NULL, NULL, 0, NULL, NULL);
    wsc_send_text(c, "{\"op\":\"subscribe\",\"channels\":[\"trade\"]}");
    json_t *j;
    expect_type(c, "subscribed", &j);
    ck_assert_uint_eq(json_array_size(json_object_get(j, "channels")), 1);
    json_decref(j);
    fb_notify(T.fb, "u1", 1, "position_limit", 0, 0); /* risk */
    fb_notify(T.fb, "u1", 2, "order_expired", 0, 0);  /* trade */
    expect_seq(c, 2);
    wsc_send_text(c, "{\"op\":\"unsubscribe\",\"channels\":[\"trade\"]}");
    expect_type(c, "subscribed", &j);
    ck_assert_uint_eq(json_array_size(json_object_get(j, "channels")), 0);
    json_decref(j);
    fb_notify(T.fb, "u1", 3, "order_expired", 0, 0);
    expect_silence(c, 300);
    wsc_close(c);
    gwt_stop();
}
END_TEST

START_TEST(p0_is_written_before_an_earlier_p3_batch)
{
    const char *o[] = {"gateway.flush_ms=5,100,3000", NULL};
    gwt_start(o);
    wsc_t *c = gwt_client("u1", NULL, NULL, 0, NULL, NULL);
    fb_notify(T.fb, "u1", 1, "market_halt", 3, 0);
    fb_notify(T.fb, "u1", 2, "market_halt", 3, 0);
    fb_notify(T.fb, "u1", 3, "position_limit", 0, 0);
    expect_seq(c, 3);
    expect_seq(c, 1); /* the P3 batch follows at its deadline */
    expect_seq(c, 2);
    wsc_close(c);
    gwt_stop();
}
END_TEST

START_TEST(batch_size_pending_forces_a_flush_before_the_deadline)
{
    const char *o[] = {"gateway.flush_ms=60000,60000,60000", "gateway.batch_size=5", NULL};
    gwt_start(o);
    wsc_t *c = gwt_client("u1", NULL, NULL, 0, NULL, NULL);
    for (uint64_t s = 1; s <= 4; s++)
        fb_notify(T.fb, "u1", s, "market_halt", 3, 0);
    expect_silence(c, 300);
    fb_notify(T.fb, "u1", 5, "market_halt", 3, 0);
    for (uint64_t s = 1; s <= 5; s++)
        expect_seq(c, s);
    wsc_close(c);
    gwt_stop();
}
END_TEST

START_TEST(idle_session_is_closed_after_the_session_timeout)
{
    const char *o[] = {"gateway.session_timeout_s=1", "gateway.ping_interval_s=3600", NULL};
    gwt_start(o);
    wsc_t *c = gwt_client("u1", NULL, NULL, 0, NULL, NULL);
    const char *m;
    ck_assert_int_eq(wsc_recv(c, &m, NULL, 6000), -2);
    ck_assert_int_eq(wsc_close_code(c), 1001);
    fb_req_t req;
    ck_assert_int_eq(fb_expect(T.fb, "close", &req, WAIT), 0);
    ck_assert_uint_eq(gwt_stat("timeout_closes"), 1);
    wsc_close(c);
    gwt_stop();
}
END_TEST

START_TEST(slow_consumer_is_closed_with_4008_while_others_keep_receiving)
{
    const char *o[] = {"gateway.max_pending_bytes=256K", NULL};
    gwt_start(o);
    wsc_t *slow = gwt_client("slow", NULL, NULL, 0, NULL, NULL);
    wsc_t *fast = gwt_client("fast", NULL, NULL, 0, NULL, NULL);
    wsc_set_reading(slow, false);
    wsc_pump(50);
    uint64_t seq = 0;
    /* far more than the socket buffers and the bound hold */
    for (int i = 0; i < 4000 && gwt_stat("slow_consumer_closes") == 0; i++)
        for (int k = 0; k < 10; k++)
            fb_notify(T.fb, "slow", ++seq, "position_limit", 0, 4000);
    ck_assert_uint_eq(gwt_stat("slow_consumer_closes"), 1);
    fb_notify(T.fb, "fast", 1, "position_limit", 0, 0);
    expect_seq(fast, 1);
    wsc_set_reading(slow, true);
    const char *m;
    long n;
    while ((n = wsc_recv(slow, &m, NULL, WAIT)) >= 0)
        continue;
    ck_assert_int_eq(n, -2);
    ck_assert_int_eq(wsc_close_code(slow), 4008);
    wsc_close(slow);
    wsc_close(fast);
    gwt_stop();
}
END_TEST

START_TEST(msgpack_session_gets_the_canonical_bytes)
{
    gwt_start(NULL);
    wsc_t *c = gwt_client("u1", NULL, "herald.msgpack", 0, NULL, NULL);
    uint8_t want[1024];
    size_t wlen = fb_encode("u1", 1, "position_limit", 0, 10, want, sizeof want);
    fb_notify(T.fb, "u1", 1, "position_limit", 0, 10);
    const char *m;
    bool bin = false;
    long n = wsc_recv(c, &m, &bin, WAIT);
    ck_assert(bin);
    ck_assert_uint_eq((size_t)n, wlen);
    ck_assert(memcmp(m, want, wlen) == 0);
    static const uint8_t ping[] = {0x81, 0xa2, 'o', 'p', 0xa4, 'p', 'i', 'n', 'g'};
    wsc_send_binary(c, ping, sizeof ping);
    n = wsc_recv(c, &m, &bin, WAIT);
    ck_assert(bin);
    ck_assert(n > 0 && memmem(m, (size_t)n, "pong", 4));
    wsc_close(c);
    gwt_stop();
}
END_TEST

START_TEST(permessage_deflate_session_receives_batched_notifications_intact)
{
    gwt_start(NULL);
    wsc_offer_deflate(true);
    wsc_t *c = gwt_client("u1", NULL, NULL, 0, NULL, NULL);
    for (uint64_t s = 1; s <= 30; s++)
        fb_notify(T.fb, "u1", s, "market_halt", 3, 300);
    fb_notify(T.fb, "u1", 31, "position_limit", 0, 300); /* P0: flushes nothing held */
    expect_seq(c, 31);
    for (uint64_t s = 1; s <= 30; s++)
        expect_seq(c, s);
    wsc_close(c);
    wsc_offer_deflate(false);
    gwt_stop();
}
END_TEST

START_TEST(seq_gap_is_filled_by_replay_and_delivered_in_order)
{
    gwt_start(NULL);
    wsc_t *c = gwt_client("u1", NULL, NULL, 0, NULL, NULL);
    fb_notify(T.fb, "u1", 1, "position_limit", 0, 0);
    fb_notify(T.fb, "u1", 4, "position_limit", 0, 0); /* 2 and 3 were dropped */
    fb_req_t req;
    ck_assert_int_eq(fb_expect(T.fb, "replay", &req, WAIT), 0);
    ck_assert_uint_eq(req.session, 0);
    ck_assert_str_eq(req.user, "u1");
    ck_assert_uint_eq(req.from, 2);
    ck_assert_uint_eq(req.to, 3);
    fb_notify(T.fb, "u1", 5, "position_limit", 0, 0); /* held behind the fill */
    fb_replay(T.fb, 0, "u1", 2, "position_limit", 0);
    fb_replay(T.fb, 0, "u1", 3, "position_limit", 0);
    fb_range(T.fb, false, 0, "u1", 2, 3);
    for (uint64_t s = 1; s <= 5; s++)
        expect_seq(c, s);
    expect_silence(c, 200);
    wsc_close(c);
    gwt_stop();
}
END_TEST

START_TEST(history_gap_becomes_a_gap_message)
{
    gwt_start(NULL);
    wsc_t *c = gwt_client("u1", NULL, NULL, 0, NULL, NULL);
    fb_notify(T.fb, "u1", 1, "position_limit", 0, 0);
    fb_notify(T.fb, "u1", 5, "position_limit", 0, 0);
    fb_req_t req;
    ck_assert_int_eq(fb_expect(T.fb, "replay", &req, WAIT), 0);
    fb_range(T.fb, true, 0, "u1", 2, 4);
    fb_range(T.fb, false, 0, "u1", 2, 4);
    expect_seq(c, 1);
    json_t *j;
    expect_type(c, "gap", &j);
    ck_assert_uint_eq(jint(j, "from"), 2);
    ck_assert_uint_eq(jint(j, "to"), 4);
    json_decref(j);
    expect_seq(c, 5);
    wsc_close(c);
    gwt_stop();
}
END_TEST

START_TEST(resume_at_connect_replays_the_missed_then_goes_live)
{
    gwt_start(NULL);
    uint64_t sid;
    fb_req_t open;
    wsc_t *c = gwt_client("u1", "?since=2", NULL, 5, &sid, &open);
    ck_assert_uint_eq(open.since, 2);
    for (uint64_t s = 3; s <= 5; s++)
        fb_replay(T.fb, sid, "u1", s, "market_halt", 3);
    fb_range(T.fb, false, sid, "u1", 3, 5);
    fb_notify(T.fb, "u1", 6, "position_limit", 0, 0);
    for (uint64_t s = 3; s <= 5; s++)
        expect_seq(c, s);
    json_t *j;
    expect_type(c, "resumed", &j);
    ck_assert_uint_eq(jint(j, "from"), 3);
    ck_assert_uint_eq(jint(j, "to"), 5);
    json_decref(j);
    expect_seq(c, 6);
    /* mid-session resume: only what this session does not hold yet */
    wsc_send_text(c, "{\"op\":\"resume\",\"since\":0}");
    fb_req_t req;
    ck_assert_int_eq(fb_expect(T.fb, "replay", &req, WAIT), 0);
    ck_assert_uint_eq(req.session, sid);
    ck_assert_uint_eq(req.from, 1);
    ck_assert_uint_eq(req.to, 2);
    fb_replay(T.fb, sid, "u1", 1, "position_limit", 0);
    fb_replay(T.fb, sid, "u1", 2, "position_limit", 0);
    fb_range(T.fb, false, sid, "u1", 1, 2);
    expect_seq(c, 1);
    expect_seq(c, 2);
    expect_type(c, "resumed", NULL);
    wsc_close(c);
    gwt_stop();
}
END_TEST

START_TEST(broker_restart_gets_a_resync_with_the_last_seq)
{
    gwt_start(NULL);
    wsc_t *c = gwt_client("u1", NULL, NULL, 0, NULL, NULL);
    fb_notify(T.fb, "u1", 1, "position_limit", 0, 0);
    fb_notify(T.fb, "u1", 2, "position_limit", 0, 0);
    expect_seq(c, 1);
    expect_seq(c, 2);
    fb_drop(T.fb);
    ck_assert_int_eq(fb_accept(T.fb, WAIT), 0);
    fb_req_t req;
    ck_assert_int_eq(fb_expect(T.fb, "resync", &req, WAIT), 0);
    ck_assert_str_eq(req.user, "u1");
    ck_assert_uint_eq(req.sessions, 1);
    ck_assert_uint_eq(req.after, 2);
    /* the restarted broker answers with what was sequenced while the link was down */
    fb_replay(T.fb, 0, "u1", 3, "position_limit", 0);
    fb_range(T.fb, false, 0, "u1", 3, 3);
    fb_notify(T.fb, "u1", 4, "position_limit", 0, 0);
    expect_seq(c, 3);
    expect_seq(c, 4);
    expect_silence(c, 200);
    wsc_close(c);
    gwt_stop();
}
END_TEST

START_TEST(client_ops_get_answers_and_a_flood_of_bad_input_closes)
{
    gwt_start(NULL);
    wsc_t *c = gwt_client("u1", NULL, NULL, 0, NULL, NULL);
    wsc_send_text(c, "{\"op\":\"ping\"}");
    expect_type(c, "pong", NULL);
    wsc_send_text(c, "not json");
    json_t *j;
    expect_type(c, "error", &j);
    ck_assert_str_ne(jstr(j, "code"), "");
    json_decref(j);
    wsc_send_text(c, "{\"op\":\"dance\"}");
    expect_type(c, "error", NULL);
    wsc_send_text(c, "{\"op\":\"ping\"}");
    expect_type(c, "pong", NULL);
    for (int i = 0; i < 30; i++)
        wsc_send_text(c, "{{{");
    const char *m;
    long n;
    while ((n = wsc_recv(c, &m, NULL, WAIT)) >= 0)
        continue;
    ck_assert_int_eq(n, -2);
    ck_assert_int_eq(wsc_close_code(c), 1008);
    ck_assert_uint_eq(gwt_stat("flood_closes"), 1);
    wsc_close(c);
    gwt_stop();
}
END_TEST

START_TEST(corrupt_ring_record_is_counted_and_the_stream_continues)
{
    gwt_start(NULL);
    wsc_t *c = gwt_client("u1", NULL, NULL, 0, NULL, NULL);
    fb_notify(T.fb, "u1", 1, "position_limit", 0, 0);
    expect_seq(c, 1);
    fb_corrupt(T.fb);
    for (int i = 0; i < 100 && gwt_stat("ring_corrupt") == 0; i++)
        usleep(20000);
    ck_assert_uint_eq(gwt_stat("ring_corrupt"), 1);
    fb_notify(T.fb, "u1", 2, "position_limit", 0, 0);
    expect_seq(c, 2);
    wsc_close(c);
    gwt_stop();
}
END_TEST

START_TEST(metrics_and_healthz_answer_on_the_gateway_port)
{
    gwt_start(NULL);
    wsc_t *c = gwt_client("u1", NULL, NULL, 0, NULL, NULL);
    char body[16384];
    ck_assert_int_eq(procs_http_get("127.0.0.1", T.port, "/metrics", body, sizeof body), 200);
    ck_assert_ptr_nonnull(strstr(body, "herald_gateway_active_sessions{gateway=\"0\"} 1"));
    ck_assert_ptr_nonnull(strstr(body, "herald_gateway_ring_corrupt"));
    ck_assert_int_eq(procs_http_get("127.0.0.1", T.port, "/healthz", body, sizeof body), 200);
    ck_assert_int_eq(procs_http_get("127.0.0.1", T.port, "/nope", body, sizeof body), 404);
    wsc_close(c);
    gwt_stop();
}
END_TEST

static Suite *gateway_suite(void)
{
    Suite *s = suite_create("gateway");
    TCase *tc = tcase_create("process");
    tcase_set_timeout(tc, 120);
    /* GW_TEST=<name> runs one test (debugging) */
    const char *only = getenv("GW_TEST");
#define ADD(t)                                                                                     \
    do {                                                                                           \
        if (!only || !strcmp(only, #t)) tcase_add_test(tc, t);                                     \
    } while (0)
    ADD(handshake_refuses_missing_bad_and_expired_tokens_with_401);
    ADD(session_receives_only_its_own_users_notifications);
    ADD(subscribe_limits_a_session_to_its_channels);
    ADD(p0_is_written_before_an_earlier_p3_batch);
    ADD(batch_size_pending_forces_a_flush_before_the_deadline);
    ADD(idle_session_is_closed_after_the_session_timeout);
    ADD(slow_consumer_is_closed_with_4008_while_others_keep_receiving);
    ADD(msgpack_session_gets_the_canonical_bytes);
    ADD(permessage_deflate_session_receives_batched_notifications_intact);
    ADD(seq_gap_is_filled_by_replay_and_delivered_in_order);
    ADD(history_gap_becomes_a_gap_message);
    ADD(resume_at_connect_replays_the_missed_then_goes_live);
    ADD(broker_restart_gets_a_resync_with_the_last_seq);
    ADD(client_ops_get_answers_and_a_flood_of_bad_input_closes);
    ADD(corrupt_ring_record_is_counted_and_the_stream_continues);
    ADD(metrics_and_healthz_answer_on_the_gateway_port);
#undef ADD
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    SRunner *sr = srunner_create(gateway_suite());
    procs_registry_begin();
    srunner_run_all(sr, CK_NORMAL);
    procs_registry_end();
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
