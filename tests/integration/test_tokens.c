/* test_tokens.c - client tokens against the real herald-gateway and herald-broker (protocol.md 12):
 * exp required, nbf/iat with the leeway, aud/iss, previous secrets, the development secret
 * refused, sessions closed with 4001 at their token's expiry unless refreshed, refresh
 * denied for another user, and SIGHUP rotating the secret without dropping a session. */
#include <check.h>
#include <jansson.h>
#include <msgpack.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "gwsys.h"
#include "jwt.h"

static gws_t S;

static uint64_t now_s(void)
{
    return (uint64_t)time(NULL);
}

/* A token for user signed with secret, with claims as given (ttl 0 = no exp). */
static void mint(char *out, size_t cap, const char *secret, const char *user, uint64_t ttl,
                 uint64_t nbf, const char *aud, const char *iss)
{
    jwt_mint_t m = {.sub = user,
                    .iat = now_s(),
                    .ttl_s = ttl,
                    .no_exp = ttl == 0,
                    .nbf = nbf,
                    .aud = aud,
                    .iss = iss};
    ck_assert_int_gt(jwt_mint_claims(secret, &m, out, cap), 0);
}

/* Connect with token to gateway 0; expect status, and for 101 read the welcome. */
static wsc_t *connect_expect(const char *token, int status)
{
    wsc_t *c = NULL;
    ck_assert_int_eq(gws_connect(&S, 0, token, NULL, &c), status);
    if (status == 101) gws_expect_type(c, "welcome", NULL);
    return c;
}

/* The gateway's log so far. */
static void gateway_log(char *out, size_t cap)
{
    char path[400];
    snprintf(path, sizeof path, "%s/gateway0.log", S.env.dir);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    size_t n = fread(out, 1, cap - 1, f);
    out[n] = '\0';
    fclose(f);
}

START_TEST(token_without_exp_is_refused_unless_exp_is_optional)
{
    char tok[512];
    gws_start(&S, 1, NULL);
    mint(tok, sizeof tok, GWS_SECRET, "u1", 0, 0, NULL, NULL);
    connect_expect(tok, 401);
    ck_assert_uint_eq(gws_stat(&S, 0, "auth_failures_no_exp"), 1);
    gws_stop(&S);

    gws_start(&S, 1, (const char *const[]){"auth.require_exp=false", NULL});
    wsc_t *c = connect_expect(tok, 101);
    gws_expect_seq(c, gws_publish(&S, "u1", "position_limit", 0, 0));
    wsc_close(c);
    gws_stop(&S);
}
END_TEST

START_TEST(nbf_and_iat_in_the_future_are_refused_past_the_leeway)
{
    char tok[512];
    gws_start(&S, 1, NULL); /* leeway 5 s */
    mint(tok, sizeof tok, GWS_SECRET, "u1", 3600, now_s() + 120, NULL, NULL);
    connect_expect(tok, 401);
    ck_assert_uint_eq(gws_stat(&S, 0, "auth_failures_not_yet_valid"), 1);
    /* iat a minute ahead: issued by a clock that is wrong, or forged */
    jwt_mint_t m = {.sub = "u1", .iat = now_s() + 60, .ttl_s = 3600};
    ck_assert_int_gt(jwt_mint_claims(GWS_SECRET, &m, tok, sizeof tok), 0);
    connect_expect(tok, 401);
    ck_assert_uint_eq(gws_stat(&S, 0, "auth_failures_not_yet_valid"), 2);
    /* within the leeway: accepted */
    mint(tok, sizeof tok, GWS_SECRET, "u1", 3600, now_s() + 2, NULL, NULL);
    wsc_close(connect_expect(tok, 101));
    gws_stop(&S);
}
END_TEST

START_TEST(audience_and_issuer_are_checked_when_configured)
{
    char tok[512];
    gws_start(&S, 1,
              (const char *const[]){"auth.audience=herald-web", "auth.issuer=accounts", NULL});
    mint(tok, sizeof tok, GWS_SECRET, "u1", 3600, 0, "other-app", "accounts");
    connect_expect(tok, 401);
    mint(tok, sizeof tok, GWS_SECRET, "u1", 3600, 0, "herald-web", "someone-else");
    connect_expect(tok, 401);
    mint(tok, sizeof tok, GWS_SECRET, "u1", 3600, 0, NULL, NULL);
    connect_expect(tok, 401);
    ck_assert_uint_eq(gws_stat(&S, 0, "auth_failures_wrong_audience"), 3);
    mint(tok, sizeof tok, GWS_SECRET, "u1", 3600, 0, "herald-web", "accounts");
    wsc_close(connect_expect(tok, 101));
    gws_stop(&S);
}
END_TEST

START_TEST(previous_secret_is_accepted_for_verification)
{
    char tok[512];
    gws_start(&S, 1, (const char *const[]){"auth.previous_secrets=retired-1,retired-2", NULL});
    mint(tok, sizeof tok, "retired-2", "u1", 3600, 0, NULL, NULL);
    wsc_t *c = connect_expect(tok, 101);
    mint(tok, sizeof tok, "never-configured", "u2", 3600, 0, NULL, NULL);
    connect_expect(tok, 401);
    ck_assert_uint_eq(gws_stat(&S, 0, "auth_failures_bad_signature"), 1);
    gws_expect_seq(c, gws_publish(&S, "u1", "position_limit", 0, 0));
    wsc_close(c);
    gws_stop(&S);
}
END_TEST

/* deploy/herald.ini's secret is public: a gateway refuses it unless allowed, and warns. */
START_TEST(development_secret_is_refused_unless_allowed)
{
    char idbuf[] = "0", log[400], text[16384];
    gws_init(&S, 1, NULL);
    gws_write_config(&S, HERALD_DEV_SECRET, NULL);
    snprintf(log, sizeof log, "%s/gateway0.log", S.env.dir);
    char *argv[] = {S.bin_gw, (char *)"--id", idbuf, (char *)"-c", S.env.config, NULL};
    pid_t pid = procs_spawn(S.bin_gw, argv, log);
    ck_assert_int_gt(pid, 0);
    int st = procs_reap(pid, GWS_WAIT);
    ck_assert_msg(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) != 0, "gateway ran with it");
    gateway_log(text, sizeof text);
    ck_assert_msg(strstr(text, "development secret") && strstr(text, "allow_dev_secret"), "log: %s",
                  text);
    gws_stop(&S);

    gws_init(&S, 1, (const char *const[]){"auth.allow_dev_secret=true", NULL});
    gws_write_config(&S, HERALD_DEV_SECRET, NULL);
    gws_spawn_broker(&S);
    gws_spawn_gateway(&S, 0);
    gateway_log(text, sizeof text);
    ck_assert_msg(strstr(text, "PUBLIC DEVELOPMENT SECRET"), "no warning in: %s", text);
    char tok[512];
    mint(tok, sizeof tok, HERALD_DEV_SECRET, "u1", 3600, 0, NULL, NULL);
    wsc_close(connect_expect(tok, 101));
    gws_stop(&S);
}
END_TEST

START_TEST(session_is_closed_with_4001_when_its_token_expires)
{
    char tok[512];
    gws_start(&S, 1, (const char *const[]){"auth.leeway_s=0", NULL});
    uint64_t exp = now_s() + 3;
    mint(tok, sizeof tok, GWS_SECRET, "u1", 3, 0, NULL, NULL);
    wsc_t *c = connect_expect(tok, 101);
    gws_expect_seq(c, gws_publish(&S, "u1", "position_limit", 0, 0));
    gws_expect_close(c, 4001);
    ck_assert_uint_ge(now_s(), exp); /* not before its exp */
    ck_assert_uint_eq(gws_stat(&S, 0, "token_expiry_closes"), 1);
    wsc_close(c);
    gws_stop(&S);
}
END_TEST

START_TEST(refresh_extends_the_session_past_its_first_token)
{
    char tok[512], op[700];
    gws_start(&S, 1, (const char *const[]){"auth.leeway_s=0", NULL});
    uint64_t first_exp = now_s() + 3;
    mint(tok, sizeof tok, GWS_SECRET, "u1", 3, 0, NULL, NULL);
    wsc_t *c = connect_expect(tok, 101);
    mint(tok, sizeof tok, GWS_SECRET, "u1", 3600, 0, NULL, NULL);
    snprintf(op, sizeof op, "{\"op\":\"refresh\",\"token\":\"%s\"}", tok);
    wsc_send_text(c, op);
    json_t *j;
    gws_expect_type(c, "refreshed", &j);
    ck_assert_uint_ge(gws_jint(j, "exp"), first_exp + 3500);
    json_decref(j);
    /* past the first token's expiry (and a tick) the session still delivers */
    while (now_s() <= first_exp + 1)
        wsc_pump(100);
    gws_expect_seq(c, gws_publish(&S, "u1", "position_limit", 0, 0));
    ck_assert(!wsc_is_closed(c));
    ck_assert_uint_eq(gws_stat(&S, 0, "token_refreshes"), 1);
    ck_assert_uint_eq(gws_stat(&S, 0, "token_expiry_closes"), 0);
    wsc_close(c);
    gws_stop(&S);
}
END_TEST

/* The same op on herald.msgpack: a msgpack map in, a msgpack map out. */
START_TEST(refresh_works_on_a_msgpack_session)
{
    char tok[512], url[256];
    gws_start(&S, 1, NULL);
    mint(tok, sizeof tok, GWS_SECRET, "u1", 3600, 0, NULL, NULL);
    wsc_t *c;
    gws_url(&S, 0, NULL, url, sizeof url);
    ck_assert_int_eq(wsc_connect(&c, url, tok, "herald.msgpack", GWS_WAIT), 101);
    const char *m;
    bool bin;
    ck_assert_int_gt(wsc_recv(c, &m, &bin, GWS_WAIT), 0); /* welcome */
    mint(tok, sizeof tok, GWS_SECRET, "u1", 7200, 0, NULL, NULL);
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    msgpack_pack_str_with_body(&pk, "op", 2);
    msgpack_pack_str_with_body(&pk, "refresh", 7);
    msgpack_pack_str_with_body(&pk, "token", 5);
    msgpack_pack_str_with_body(&pk, tok, strlen(tok));
    wsc_send_binary(c, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
    long n = wsc_recv(c, &m, &bin, GWS_WAIT);
    ck_assert_int_gt(n, 0);
    ck_assert(bin);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    ck_assert_int_eq(msgpack_unpack_next(&u, m, (size_t)n, NULL), MSGPACK_UNPACK_SUCCESS);
    ck_assert_int_eq(u.data.type, MSGPACK_OBJECT_MAP);
    bool refreshed = false;
    uint64_t exp = 0;
    for (uint32_t i = 0; i < u.data.via.map.size; i++) {
        msgpack_object_kv *kv = &u.data.via.map.ptr[i];
        if (kv->key.via.str.size == 4 && !memcmp(kv->key.via.str.ptr, "type", 4))
            refreshed = kv->val.via.str.size == 9 && !memcmp(kv->val.via.str.ptr, "refreshed", 9);
        if (kv->key.via.str.size == 3 && !memcmp(kv->key.via.str.ptr, "exp", 3))
            exp = kv->val.via.u64;
    }
    msgpack_unpacked_destroy(&u);
    ck_assert(refreshed);
    ck_assert_uint_ge(exp, now_s() + 7000);
    wsc_close(c);
    gws_stop(&S);
}
END_TEST

START_TEST(refresh_with_another_user_or_a_bad_token_is_denied_and_the_old_expiry_stays)
{
    char tok[512], op[700];
    gws_start(&S, 1, (const char *const[]){"auth.leeway_s=0", NULL});
    mint(tok, sizeof tok, GWS_SECRET, "u1", 4, 0, NULL, NULL);
    wsc_t *c = connect_expect(tok, 101);
    const char *bad[3];
    char other[512], forged[512];
    mint(other, sizeof other, GWS_SECRET, "u2", 3600, 0, NULL, NULL);
    mint(forged, sizeof forged, "not-the-secret", "u1", 3600, 0, NULL, NULL);
    bad[0] = other;
    bad[1] = forged;
    bad[2] = "not.a.token";
    for (int i = 0; i < 3; i++) {
        snprintf(op, sizeof op, "{\"op\":\"refresh\",\"token\":\"%s\"}", bad[i]);
        wsc_send_text(c, op);
        json_t *j;
        gws_expect_type(c, "error", &j);
        ck_assert_str_eq(gws_jstr(j, "code"), "refresh_denied");
        json_decref(j);
    }
    ck_assert_uint_eq(gws_stat(&S, 0, "token_refresh_denied"), 3);
    gws_expect_close(c, 4001); /* at the first token's expiry, still */
    wsc_close(c);
    gws_stop(&S);
}
END_TEST

/* Rotation: secret B, previous A; SIGHUP. The session opened with A's token stays and keeps
 * receiving; new tokens of A (previous) and B (current) are accepted; then A is retired by a
 * second SIGHUP: its tokens are refused from then on, the live session is still there. */
START_TEST(sighup_rotates_the_secret_without_dropping_a_live_session)
{
    char tok_a[512], tok_b[512];
    gws_start(&S, 1, NULL);
    mint(tok_a, sizeof tok_a, GWS_SECRET, "u1", 3600, 0, NULL, NULL);
    wsc_t *live = connect_expect(tok_a, 101);

    gws_write_config(&S, "rotated-secret-B", "previous_secrets = " GWS_SECRET "\n");
    ck_assert_int_eq(procs_kill(S.gw[0], SIGHUP), 0);
    for (int i = 0; i < 200 && gws_stat(&S, 0, "config_reloads") < 1; i++)
        usleep(20000);
    ck_assert_uint_eq(gws_stat(&S, 0, "config_reloads"), 1);
    mint(tok_b, sizeof tok_b, "rotated-secret-B", "u2", 3600, 0, NULL, NULL);
    wsc_t *b = connect_expect(tok_b, 101);
    wsc_close(connect_expect(tok_a, 101));
    gws_expect_seq(live, gws_publish(&S, "u1", "position_limit", 0, 0));

    gws_write_config(&S, "rotated-secret-B", NULL);
    ck_assert_int_eq(procs_kill(S.gw[0], SIGHUP), 0);
    for (int i = 0; i < 200 && gws_stat(&S, 0, "config_reloads") < 2; i++)
        usleep(20000);
    connect_expect(tok_a, 401);
    gws_expect_seq(live, gws_publish(&S, "u1", "position_limit", 0, 0));
    gws_expect_seq(b, gws_publish(&S, "u2", "position_limit", 0, 0));
    ck_assert_uint_eq(gws_stat(&S, 0, "active_sessions"), 2);
    wsc_close(live);
    wsc_close(b);
    gws_stop(&S);
}
END_TEST

START_TEST(sighup_with_a_bad_config_keeps_the_running_one)
{
    char tok[512];
    gws_start(&S, 1, NULL);
    mint(tok, sizeof tok, GWS_SECRET, "u1", 3600, 0, NULL, NULL);
    wsc_t *c = connect_expect(tok, 101);
    gws_write_config(&S, "new-secret", "leeway_s = lots\n");
    ck_assert_int_eq(procs_kill(S.gw[0], SIGHUP), 0);
    for (int i = 0; i < 200 && gws_stat(&S, 0, "config_reload_errors") < 1; i++)
        usleep(20000);
    ck_assert_uint_eq(gws_stat(&S, 0, "config_reload_errors"), 1);
    ck_assert_uint_eq(gws_stat(&S, 0, "config_reloads"), 0);
    wsc_close(connect_expect(tok, 101)); /* the old secret still verifies */
    gws_expect_seq(c, gws_publish(&S, "u1", "position_limit", 0, 0));
    char text[16384];
    gateway_log(text, sizeof text);
    ck_assert_msg(strstr(text, "auth.leeway_s"), "the refusal names the key: %s", text);
    wsc_close(c);
    gws_stop(&S);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tokens");
    TCase *tc = tcase_create("tokens");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, token_without_exp_is_refused_unless_exp_is_optional);
    tcase_add_test(tc, nbf_and_iat_in_the_future_are_refused_past_the_leeway);
    tcase_add_test(tc, audience_and_issuer_are_checked_when_configured);
    tcase_add_test(tc, previous_secret_is_accepted_for_verification);
    tcase_add_test(tc, development_secret_is_refused_unless_allowed);
    tcase_add_test(tc, session_is_closed_with_4001_when_its_token_expires);
    tcase_add_test(tc, refresh_extends_the_session_past_its_first_token);
    tcase_add_test(tc, refresh_works_on_a_msgpack_session);
    tcase_add_test(tc, refresh_with_another_user_or_a_bad_token_is_denied_and_the_old_expiry_stays);
    tcase_add_test(tc, sighup_rotates_the_secret_without_dropping_a_live_session);
    tcase_add_test(tc, sighup_with_a_bad_config_keeps_the_running_one);
    suite_add_tcase(s, tc);
    return gws_run(s);
}
