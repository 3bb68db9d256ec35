/* test_revoke.c - revocation, TLS and the broker's reload against the real processes (protocol.md
 * 12): POST /api/disconnect closes a user's sessions on every gateway with 4003 and answers
 * how many; with `until` the user is refused (401) until then, also by a gateway that
 * restarts and after a broker restart; gateways serve wss:// with a self-signed certificate
 * and /api/route says so; SIGHUP rotates the broker's api key. */
#include <check.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gwsys.h"
#include "herald_time.h"
#include "jwt.h"
#include "procs.h"

static gws_t S;

/* POST /api/disconnect with body (and header, may be NULL); returns the status. */
static int disconnect(const char *body, const char *header, char *resp, size_t cap)
{
    return procs_http_post("127.0.0.1", S.http, "/api/disconnect", "application/json", header, body,
                           resp, cap);
}

/* POST /api/disconnect for user (until 0 = none) and return the answer's closed count. */
static uint64_t disconnect_user(const char *user, uint64_t until_ns)
{
    char body[256], resp[512];
    if (until_ns)
        snprintf(body, sizeof body, "{\"user_id\":\"%s\",\"until\":%llu}", user,
                 (unsigned long long)until_ns);
    else
        snprintf(body, sizeof body, "{\"user_id\":\"%s\"}", user);
    ck_assert_int_eq(disconnect(body, NULL, resp, sizeof resp), 200);
    json_t *j = json_loads(resp, 0, NULL);
    ck_assert_msg(j && json_is_integer(json_object_get(j, "closed")), "answer: %s", resp);
    uint64_t closed = gws_jint(j, "closed");
    json_decref(j);
    return closed;
}

/* The handshake status for user on gateway gw (101 connections are closed again). */
static int try_connect(unsigned gw, const char *user)
{
    char tok[512];
    wsc_t *c = NULL;
    gws_token(user, tok, sizeof tok);
    int st = gws_connect(&S, gw, tok, NULL, &c);
    wsc_close(c);
    return st;
}

/* The handshake status once it is `want`, trying for a few seconds (a restarted gateway
 * gets its locks right after it attaches); the last status otherwise. */
static int connect_until(unsigned gw, const char *user, int want)
{
    int st = 0;
    for (int i = 0; i < 100 && (st = try_connect(gw, user)) != want; i++)
        usleep(50000);
    return st;
}

static uint64_t broker_stat(const char *key)
{
    char body[16384], pat[96];
    ck_assert_int_eq(procs_http_get("127.0.0.1", S.http, "/api/stats", body, sizeof body), 200);
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(body, pat);
    ck_assert_msg(p != NULL, "no %s in %s", key, body);
    return strtoull(p + strlen(pat), NULL, 10);
}

START_TEST(disconnect_closes_the_users_sessions_on_two_gateways_with_4003)
{
    gws_start(&S, 2, NULL);
    wsc_t *a0 = gws_client(&S, 0, "u1", NULL, NULL);
    wsc_t *a1 = gws_client(&S, 0, "u1", NULL, "herald.msgpack");
    wsc_t *a2 = gws_client(&S, 1, "u1", NULL, NULL);
    wsc_t *other = gws_client(&S, 0, "u2", NULL, NULL);
    ck_assert_uint_eq(disconnect_user("u1", 0), 3);
    gws_expect_close(a0, 4003);
    gws_expect_close(a1, 4003);
    gws_expect_close(a2, 4003);
    gws_expect_seq(other, gws_publish(&S, "u2", "position_limit", 0, 0));
    ck_assert_uint_eq(gws_stat(&S, 0, "disconnect_closes"), 2);
    ck_assert_uint_eq(gws_stat(&S, 1, "disconnect_closes"), 1);
    ck_assert_uint_eq(broker_stat("disconnects"), 1);
    ck_assert_uint_eq(broker_stat("disconnect_sessions_closed"), 3);
    /* without until the user may come straight back */
    ck_assert_int_eq(try_connect(0, "u1"), 101);
    /* a user with no session anywhere: nothing to close */
    ck_assert_uint_eq(disconnect_user("nobody", 0), 0);
    wsc_close(a0);
    wsc_close(a1);
    wsc_close(a2);
    wsc_close(other);
    gws_stop(&S);
}
END_TEST

START_TEST(disconnect_with_until_refuses_new_sessions_until_then)
{
    gws_start(&S, 2, NULL);
    wsc_t *c = gws_client(&S, 1, "u1", NULL, NULL);
    uint64_t until = now_ns() + 3000000000ull;
    ck_assert_uint_eq(disconnect_user("u1", until), 1);
    gws_expect_close(c, 4003);
    ck_assert_int_eq(try_connect(0, "u1"), 401);
    ck_assert_int_eq(try_connect(1, "u1"), 401);
    ck_assert_uint_eq(gws_stat(&S, 0, "auth_failures_revoked"), 1);
    ck_assert_int_eq(try_connect(0, "u2"), 101); /* only u1 is locked */
    ck_assert_uint_eq(broker_stat("user_locks"), 1);
    while (now_ns() < until + 200000000ull)
        usleep(50000);
    ck_assert_int_eq(try_connect(0, "u1"), 101);
    ck_assert_int_eq(try_connect(1, "u1"), 101);
    wsc_close(c);
    gws_stop(&S);
}
END_TEST

/* A lock survives a gateway restart (the broker hands it over at hello) and a broker restart
 * (the gateways hand theirs back); a past until lifts it. */
START_TEST(lock_survives_restarts_and_a_past_until_lifts_it)
{
    gws_start(&S, 2, NULL);
    ck_assert_uint_eq(disconnect_user("u1", now_ns() + 600 * 1000000000ull), 0);
    gws_kill9(&S, &S.gw[1]);
    gws_spawn_gateway(&S, 1);
    ck_assert_int_eq(connect_until(1, "u1", 401), 401);

    gws_kill9(&S, &S.broker);
    gws_spawn_broker(&S);
    char body[256];
    for (int i = 0; i < 250; i++) { /* both gateways re-attached (and resynced) */
        if (gws_gw_get(&S, 0, "/healthz", body, sizeof body) == 200 &&
            gws_gw_get(&S, 1, "/healthz", body, sizeof body) == 200)
            break;
        usleep(20000);
    }
    for (int i = 0; i < 250 && broker_stat("user_locks") < 1; i++)
        usleep(20000);
    ck_assert_uint_eq(broker_stat("user_locks"), 1);
    gws_kill9(&S, &S.gw[0]);
    gws_spawn_gateway(&S, 0);
    ck_assert_int_eq(connect_until(0, "u1", 401), 401);

    ck_assert_uint_eq(disconnect_user("u1", 1), 0); /* until in the past: unlocked */
    ck_assert_int_eq(connect_until(0, "u1", 101), 101);
    ck_assert_int_eq(try_connect(1, "u1"), 101);
    gws_stop(&S);
}
END_TEST

START_TEST(disconnect_needs_the_api_key_and_a_user_id)
{
    char resp[512];
    gws_start(&S, 1, (const char *const[]){"broker.api_key=k-123", NULL});
    wsc_t *c = gws_client(&S, 0, "u1", NULL, NULL);
    ck_assert_int_eq(disconnect("{\"user_id\":\"u1\"}", NULL, resp, sizeof resp), 401);
    ck_assert_int_eq(
        disconnect("{\"user_id\":\"u1\"}", "Authorization: apikey wrong", resp, sizeof resp), 401);
    const char *bad[] = {"",
                         "{}",
                         "{\"user_id\":\"*\"}",
                         "{\"user_id\":7}",
                         "[1]",
                         "{\"user_id\":",
                         "{\"user_id\":\"u1\",\"until\":-5}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        resp[0] = '\0';
        int st = disconnect(bad[i], "Authorization: apikey k-123", resp, sizeof resp);
        ck_assert_msg(st == 400, "body '%s': status %d, answer %s", bad[i], st, resp);
    }
    gws_expect_silence(c, 200);
    ck_assert_int_eq(
        disconnect("{\"user_id\":\"u1\"}", "Authorization: apikey k-123", resp, sizeof resp), 200);
    ck_assert_str_eq(resp, "{\"closed\":1}");
    gws_expect_close(c, 4003);
    wsc_close(c);
    gws_stop(&S);
}
END_TEST

START_TEST(wss_with_a_self_signed_certificate_and_route_says_wss)
{
    procs_env_t certs;
    char cert[400], key[400], o_cert[420], o_key[420];
    ck_assert_int_eq(procs_env_init(&certs, "tls"), 0);
    ck_assert_int_eq(tls_make_cert(certs.dir, "gw", cert, sizeof cert, key, sizeof key), 0);
    snprintf(o_cert, sizeof o_cert, "gateway.tls_cert=%s", cert);
    snprintf(o_key, sizeof o_key, "gateway.tls_key=%s", key);
    gws_start(&S, 1, (const char *const[]){o_cert, o_key, NULL}); /* healthz over https */
    wsc_t *c = gws_client(&S, 0, "u1", NULL, NULL);               /* wss://, verified */
    gws_expect_seq(c, gws_publish(&S, "u1", "position_limit", 0, 0));
    char body[512], tok[512], url[256], want[96];
    ck_assert_int_eq(procs_http_get("127.0.0.1", S.http, "/api/route?user=u1", body, sizeof body),
                     200);
    snprintf(want, sizeof want, "\"url\":\"wss://127.0.0.1:%u/ws\"", S.ws);
    ck_assert_msg(strstr(body, want), "route: %s", body);
    static char status[8192];
    ck_assert_int_eq(procs_http_get("127.0.0.1", S.http, "/api/status", status, sizeof status),
                     200);
    snprintf(want, sizeof want, "\"stats\":\"https://127.0.0.1:%u/stats\"", S.ws);
    ck_assert_msg(strstr(status, want), "status: %s", status);
    /* a plain ws:// client gets nowhere */
    gws_token("u2", tok, sizeof tok);
    wsc_t *d = NULL;
    snprintf(url, sizeof url, "ws://127.0.0.1:%u/ws", S.ws);
    ck_assert_int_ne(wsc_connect(&d, url, tok, NULL, 5000), 101);
    ck_assert_int_eq(procs_http_get("127.0.0.1", S.ws, "/healthz", body, sizeof body), -1);
    ck_assert_uint_eq(gws_stat(&S, 0, "active_sessions"), 1);
    /* heraldctl reaches the TLS gateway too: stats over https, tail over wss */
    char ctl[512];
    static procs_output_t r;
    procs_build_path("tools/heraldctl/heraldctl", ctl, sizeof ctl);
    procs_run((const char *const[]){ctl, "-c", S.env.config, "-o", o_cert, "-o", o_key, "--json",
                                    "stats", "--ca", cert, NULL},
              &r, 30);
    ck_assert_msg(r.rc == 0, "stats: %s", r.err);
    ck_assert_msg(strstr(r.out, "\"active_sessions\":1"), "stats: %s", r.out);
    gws_publish(&S, "u9", "position_limit", 0, 0);
    uint64_t seq = gws_publish(&S, "u9", "position_limit", 0, 0);
    procs_run((const char *const[]){ctl, "-c", S.env.config, "-o", o_cert, "-o", o_key, "tail",
                                    "--user", "u9", "--since", "1", "--count", "1", "--timeout",
                                    "20", "--ca", cert, NULL},
              &r, 40);
    ck_assert_msg(r.rc == 0, "tail: %s", r.err);
    snprintf(want, sizeof want, "\"seq\":%llu", (unsigned long long)seq);
    ck_assert_msg(strstr(r.out, want), "tail: %s", r.out);
    wsc_close(c);
    /* a client that does not trust the certificate (the system's store only: the client
     * context is made afresh once no connection is open) refuses the server */
    wsc_trust(NULL);
    snprintf(url, sizeof url, "wss://127.0.0.1:%u/ws", S.ws);
    ck_assert_int_ne(wsc_connect(&d, url, tok, NULL, 5000), 101);
    ck_assert_ptr_null(d);
    gws_stop(&S);
}
END_TEST

/* broker.api_key in the file (an -o would win over any reload), rotated by SIGHUP. */
START_TEST(broker_sighup_rotates_the_api_key)
{
    char resp[512];
    const char *note = "{\"user_id\":\"u1\",\"message_type\":\"position_limit\",\"payload\":{}}";
    gws_init(&S, 1, NULL);
    gws_write_config(&S, GWS_SECRET, "[broker]\napi_key = key-A\n");
    gws_spawn_broker(&S);
    ck_assert_int_eq(procs_http_post("127.0.0.1", S.http, "/api/publish", "application/json",
                                     "Authorization: apikey key-A", note, resp, sizeof resp),
                     200);
    gws_write_config(&S, GWS_SECRET, "[broker]\napi_key = key-B\n");
    ck_assert_int_eq(procs_kill(S.broker, SIGHUP), 0);
    for (int i = 0; i < 250 && broker_stat("config_reloads") < 1; i++)
        usleep(20000);
    ck_assert_uint_eq(broker_stat("config_reloads"), 1);
    ck_assert_int_eq(procs_http_post("127.0.0.1", S.http, "/api/publish", "application/json",
                                     "Authorization: apikey key-A", note, resp, sizeof resp),
                     401);
    ck_assert_int_eq(procs_http_post("127.0.0.1", S.http, "/api/publish", "application/json",
                                     "Authorization: apikey key-B", note, resp, sizeof resp),
                     200);
    /* a config that does not load leaves the running one */
    gws_write_config(&S, GWS_SECRET, "[broker]\napi_key = key-C\nhistory_size = 0\n");
    ck_assert_int_eq(procs_kill(S.broker, SIGHUP), 0);
    for (int i = 0; i < 250 && broker_stat("config_reload_errors") < 1; i++)
        usleep(20000);
    ck_assert_uint_eq(broker_stat("config_reload_errors"), 1);
    ck_assert_int_eq(procs_http_post("127.0.0.1", S.http, "/api/publish", "application/json",
                                     "Authorization: apikey key-B", note, resp, sizeof resp),
                     200);
    gws_stop(&S);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("revoke");
    TCase *tc = tcase_create("revoke");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, disconnect_closes_the_users_sessions_on_two_gateways_with_4003);
    tcase_add_test(tc, disconnect_with_until_refuses_new_sessions_until_then);
    tcase_add_test(tc, lock_survives_restarts_and_a_past_until_lifts_it);
    tcase_add_test(tc, disconnect_needs_the_api_key_and_a_user_id);
    tcase_add_test(tc, wss_with_a_self_signed_certificate_and_route_says_wss);
    tcase_add_test(tc, broker_sighup_rotates_the_api_key);
    suite_add_tcase(s, tc);
    return gws_run(s);
}
