/* test_jwt.c - HS256 token minting and verification (protocol.md 6 auth). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "check_run.h"
#include "jwt.h"

#define SECRET "herald-test-secret"
#define NOW    1764000000ull

/* Computed with `openssl dgst -sha256 -hmac herald-test-secret -binary` over the
 * base64url of {"alg":"HS256","typ":"JWT"} "." {"sub":"u1","iat":1764000000,"exp":1764003600}. */
static const char vector_token[] = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
                                   "eyJzdWIiOiJ1MSIsImlhdCI6MTc2NDAwMDAwMCwiZXhwIjoxNzY0MDAzNjAwfQ."
                                   "em6ZyfAhcAnLwYmEbivf0Ay-loUa9cQZsYnKBOoSTR0";

/* Base64url written independently of jwt.c: OpenSSL's base64, then the url alphabet. */
static void test_b64url(const unsigned char *in, size_t n, char *out)
{
    int len = EVP_EncodeBlock((unsigned char *)out, in, (int)n);
    while (len > 0 && out[len - 1] == '=')
        len--;
    out[len] = '\0';
    for (int i = 0; i < len; i++) {
        if (out[i] == '+') out[i] = '-';
        if (out[i] == '/') out[i] = '_';
    }
}

/* Build header.claims.signature from raw JSON texts, signed with HS256 under secret. */
static void test_sign(const char *header, const char *claims, const char *secret, char *out)
{
    char h[1024], c[1024], sig[64];
    test_b64url((const unsigned char *)header, strlen(header), h);
    test_b64url((const unsigned char *)claims, strlen(claims), c);
    snprintf(out, 2200, "%s.%s", h, c);
    unsigned char mac[32];
    unsigned int maclen = 0;
    HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)out, strlen(out), mac,
         &maclen);
    test_b64url(mac, maclen, sig);
    strcat(out, ".");
    strcat(out, sig);
}

/* Verify with secret alone, exp optional and no leeway (the checks of protocol.md 6); on success
 * the user is copied out. */
static int vfy(const char *secret, const char *token, size_t len, uint64_t now, char *user,
               herald_error_t *err)
{
    herald_config_t cfg;
    jwt_policy_t p;
    jwt_claims_t c;
    config_defaults(&cfg);
    snprintf(cfg.auth_secret, sizeof cfg.auth_secret, "%s", secret);
    cfg.auth_require_exp = false;
    cfg.auth_leeway_s = 0;
    ck_assert_int_eq(jwt_policy_init(&p, &cfg, err), 0);
    int rc = jwt_verify(&p, token, len, now, &c, err);
    if (rc == 0) strcpy(user, c.sub);
    return rc;
}

static int verify(const char *token, char *user, herald_error_t *err)
{
    return vfy(SECRET, token, strlen(token), NOW, user, err);
}

#define HS256 "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"

START_TEST(jwt_mint_matches_independently_computed_vector)
{
    char out[512];
    long n = jwt_mint(SECRET, "u1", NOW, 3600, out, sizeof out);
    ck_assert_int_eq(n, (long)strlen(vector_token));
    ck_assert_str_eq(out, vector_token);
}
END_TEST

START_TEST(jwt_verifies_the_jwt_io_example_token)
{
    const char *t = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
                    "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ."
                    "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
    char user[HERALD_MAX_ID_LEN + 1];
    herald_error_t err;
    ck_assert_int_eq(vfy("your-256-bit-secret", t, strlen(t), NOW, user, &err), 0);
    ck_assert_str_eq(user, "1234567890");
}
END_TEST

START_TEST(jwt_round_trip_returns_the_user)
{
    char out[512], user[HERALD_MAX_ID_LEN + 1];
    herald_error_t err;
    const char *users[] = {"u1", "alice@example.com", "用户-7",
                           "0123456789012345678901234567890123456789012345678901234567890123"};
    for (size_t i = 0; i < sizeof users / sizeof users[0]; i++) {
        long n = jwt_mint(SECRET, users[i], NOW, 60, out, sizeof out);
        ck_assert_int_gt(n, 0);
        ck_assert_int_eq(vfy(SECRET, out, (size_t)n, NOW + 59, user, &err), 0);
        ck_assert_str_eq(user, users[i]);
    }
}
END_TEST

START_TEST(jwt_verify_reads_only_len_bytes)
{
    char buf[600], user[HERALD_MAX_ID_LEN + 1];
    herald_error_t err;
    snprintf(buf, sizeof buf, "%s&since=17", vector_token);
    ck_assert_int_eq(vfy(SECRET, buf, strlen(vector_token), NOW, user, &err), 0);
    ck_assert_str_eq(user, "u1");
}
END_TEST

START_TEST(jwt_rejects_a_token_signed_with_another_secret)
{
    char out[512], user[HERALD_MAX_ID_LEN + 1];
    herald_error_t err;
    long n = jwt_mint("another-secret", "u1", NOW, 60, out, sizeof out);
    ck_assert_int_eq(vfy(SECRET, out, (size_t)n, NOW, user, &err), -HERR_UNAUTHORIZED);
    ck_assert_int_eq(err.code, HERR_UNAUTHORIZED);
    ck_assert_ptr_nonnull(strstr(err.message, "bad_signature"));
}
END_TEST

START_TEST(jwt_rejects_a_flipped_signature_character)
{
    char t[sizeof vector_token], user[HERALD_MAX_ID_LEN + 1];
    herald_error_t err;
    memcpy(t, vector_token, sizeof t);
    t[sizeof t - 10] = t[sizeof t - 10] == 'A' ? 'B' : 'A';
    ck_assert_int_eq(verify(t, user, &err), -HERR_UNAUTHORIZED);
    ck_assert_ptr_nonnull(strstr(err.message, "bad_signature"));
}
END_TEST

START_TEST(jwt_rejects_an_expired_token)
{
    char out[512], user[HERALD_MAX_ID_LEN + 1];
    herald_error_t err;
    long n = jwt_mint(SECRET, "u1", NOW, 60, out, sizeof out);
    ck_assert_int_eq(vfy(SECRET, out, (size_t)n, NOW + 59, user, &err), 0);
    ck_assert_int_eq(vfy(SECRET, out, (size_t)n, NOW + 60, user, &err), -HERR_UNAUTHORIZED);
    ck_assert_str_eq(err.field, "exp");
    ck_assert_ptr_nonnull(strstr(err.message, "expired"));
}
END_TEST

START_TEST(jwt_rejects_a_non_numeric_exp)
{
    char t[2200], user[HERALD_MAX_ID_LEN + 1];
    herald_error_t err;
    test_sign(HS256, "{\"sub\":\"u1\",\"exp\":\"9999999999\"}", SECRET, t);
    ck_assert_int_eq(verify(t, user, &err), -HERR_UNAUTHORIZED);
    ck_assert_str_eq(err.field, "exp");
    test_sign(HS256, "{\"sub\":\"u1\",\"exp\":1764000000.5}", SECRET, t);
    ck_assert_int_eq(verify(t, user, &err), 0);
    test_sign(HS256, "{\"sub\":\"u1\",\"exp\":-5}", SECRET, t);
    ck_assert_int_eq(verify(t, user, &err), -HERR_UNAUTHORIZED);
}
END_TEST

START_TEST(jwt_rejects_a_tampered_payload)
{
    char t[2200], forged[2200], user[HERALD_MAX_ID_LEN + 1];
    herald_error_t err;
    char claims[128];
    const char *forged_claims = "{\"sub\":\"admin\",\"iat\":1764000000,\"exp\":1764003600}";
    test_b64url((const unsigned char *)forged_claims, strlen(forged_claims), claims);
    strcpy(t, vector_token);
    char *dot1 = strchr(t, '.'), *dot2 = strchr(dot1 + 1, '.');
    *dot1 = '\0';
    snprintf(forged, sizeof forged, "%s.%s%s", t, claims, dot2);
    ck_assert_int_eq(verify(forged, user, &err), -HERR_UNAUTHORIZED);
    ck_assert_ptr_nonnull(strstr(err.message, "bad_signature"));
}
END_TEST

START_TEST(jwt_rejects_an_alg_other_than_hs256)
{
    char t[2200], user[HERALD_MAX_ID_LEN + 1];
    herald_error_t err;
    const char *headers[] = {"{\"alg\":\"HS512\",\"typ\":\"JWT\"}", "{\"alg\":\"hs256\"}",
                             "{\"typ\":\"JWT\"}", "{\"alg\":256}", "{\"alg\":\"RS256\"}"};
    for (size_t i = 0; i < sizeof headers / sizeof headers[0]; i++) {
        test_sign(headers[i], "{\"sub\":\"u1\",\"exp\":1864000000}", SECRET, t);
        ck_assert_int_eq(verify(t, user, &err), -HERR_UNAUTHORIZED);
        ck_assert_str_eq(err.field, "alg");
    }
    test_sign("{\"alg\":\"HS256\",\"crit\":[\"b64\"]}", "{\"sub\":\"u1\"}", SECRET, t);
    ck_assert_int_eq(verify(t, user, &err), -HERR_UNAUTHORIZED);
}
END_TEST

START_TEST(jwt_rejects_alg_none)
{
    char user[HERALD_MAX_ID_LEN + 1], t[2200];
    herald_error_t err;
    /* {"alg":"none","typ":"JWT"} . {"sub":"u1",...} . (empty signature) */
    const char *unsigned_tok = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0."
                               "eyJzdWIiOiJ1MSIsImlhdCI6MTc2NDAwMDAwMCwiZXhwIjoxNzY0MDAzNjAwfQ.";
    ck_assert_int_eq(verify(unsigned_tok, user, &err), -HERR_UNAUTHORIZED);
    ck_assert_str_eq(err.field, "alg");
    test_sign("{\"alg\":\"none\"}", "{\"sub\":\"u1\"}", SECRET, t);
    ck_assert_int_eq(verify(t, user, &err), -HERR_UNAUTHORIZED);
}
END_TEST

START_TEST(jwt_rejects_malformed_base64_and_structure)
{
    char user[HERALD_MAX_ID_LEN + 1], t[600];
    herald_error_t err;
    const char *bad[] = {
        "", "abc", "a.b", "a.b.c.d", "..",
        /* standard-alphabet and padded forms of the header are not base64url */
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9=.e30.em6ZyfAhcAnLwYmEbivf0Ay-loUa9cQZsYnKBOoSTR0",
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.e30.em6ZyfAhcAnLwYmEbivf0Ay+loUa9cQZsYnKBOoSTR0",
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.e30.em6ZyfAhcAnLwYmEbivf0Ay-loUa9cQZsYnKBOoSTR0=",
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.e30.em6ZyfAhcAnLwYmEbivf0Ay-loUa9cQZsYnKBOoSTR",
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.e30.em6ZyfAhcAnLwYmEbivf0Ay-loUa9cQZsYnKBOoSTR1",
        "e.e30.em6ZyfAhcAnLwYmEbivf0Ay-loUa9cQZsYnKBOoSTR0",
        "W10.e30.em6ZyfAhcAnLwYmEbivf0Ay-loUa9cQZsYnKBOoSTR0", /* header is [] */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_msg(verify(bad[i], user, &err) == -HERR_UNAUTHORIZED, "accepted %s", bad[i]);
        ck_assert_msg(strstr(err.message, "malformed") != NULL, "%s: %s", bad[i], err.message);
    }
    /* A claims part that is not JSON, correctly signed. */
    char h[64];
    test_b64url((const unsigned char *)HS256, strlen(HS256), h);
    snprintf(t, sizeof t, "%s.bm90IGpzb24", h); /* "not json" */
    unsigned char mac[32];
    unsigned int maclen;
    HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET), (unsigned char *)t, strlen(t), mac, &maclen);
    strcat(t, ".");
    test_b64url(mac, maclen, t + strlen(t));
    ck_assert_int_eq(verify(t, user, &err), -HERR_UNAUTHORIZED);
    ck_assert_ptr_nonnull(strstr(err.message, "malformed"));
}
END_TEST

START_TEST(jwt_rejects_a_missing_or_empty_sub)
{
    char t[2200], user[HERALD_MAX_ID_LEN + 1];
    herald_error_t err;
    const char *claims[] = {"{\"exp\":1864000000}", "{\"sub\":\"\",\"exp\":1864000000}",
                            "{\"sub\":42,\"exp\":1864000000}", "{\"sub\":null}"};
    for (size_t i = 0; i < sizeof claims / sizeof claims[0]; i++) {
        test_sign(HS256, claims[i], SECRET, t);
        ck_assert_int_eq(verify(t, user, &err), -HERR_UNAUTHORIZED);
        ck_assert_str_eq(err.field, "sub");
        ck_assert_ptr_nonnull(strstr(err.message, "no_sub"));
    }
}
END_TEST

START_TEST(jwt_rejects_a_sub_longer_than_64_bytes)
{
    char t[2200], claims[256], user[HERALD_MAX_ID_LEN + 1];
    herald_error_t err;
    char sub[66];
    memset(sub, 'x', 65);
    sub[65] = '\0';
    snprintf(claims, sizeof claims, "{\"sub\":\"%s\"}", sub);
    test_sign(HS256, claims, SECRET, t);
    ck_assert_int_eq(verify(t, user, &err), -HERR_UNAUTHORIZED);
    ck_assert_str_eq(err.field, "sub");
    sub[64] = '\0';
    snprintf(claims, sizeof claims, "{\"sub\":\"%s\"}", sub);
    test_sign(HS256, claims, SECRET, t);
    ck_assert_int_eq(verify(t, user, &err), 0);
    ck_assert_str_eq(user, sub);
}
END_TEST

START_TEST(jwt_rejects_the_broadcast_user_and_duplicate_claims)
{
    char t[2200], user[HERALD_MAX_ID_LEN + 1], out[512];
    herald_error_t err;
    test_sign(HS256, "{\"sub\":\"*\"}", SECRET, t);
    ck_assert_int_eq(verify(t, user, &err), -HERR_UNAUTHORIZED);
    ck_assert_int_eq(jwt_mint(SECRET, "*", NOW, 60, out, sizeof out), -1);
    test_sign(HS256, "{\"sub\":\"u1\",\"sub\":\"u2\"}", SECRET, t);
    ck_assert_int_eq(verify(t, user, &err), -HERR_UNAUTHORIZED);
}
END_TEST

START_TEST(jwt_mint_refuses_small_buffers_and_bad_input)
{
    char out[512];
    size_t need = sizeof vector_token;
    ck_assert_int_eq(jwt_mint(SECRET, "u1", NOW, 3600, out, need - 1), -1);
    ck_assert_int_eq(jwt_mint(SECRET, "u1", NOW, 3600, out, need), (long)need - 1);
    ck_assert_int_eq(jwt_mint(SECRET, "", NOW, 60, out, sizeof out), -1);
    ck_assert_int_eq(jwt_mint("", "u1", NOW, 60, out, sizeof out), -1);
    char longuser[70];
    memset(longuser, 'u', 65);
    longuser[65] = '\0';
    ck_assert_int_eq(jwt_mint(SECRET, longuser, NOW, 60, out, sizeof out), -1);
}
END_TEST

/* A policy as the gateway builds it from [auth]: defaults (exp required, leeway 5 s) plus
 * what the test sets. */
static void policy(jwt_policy_t *p, const char *previous, const char *aud, const char *iss)
{
    herald_config_t cfg;
    herald_error_t err;
    config_defaults(&cfg);
    snprintf(cfg.auth_secret, sizeof cfg.auth_secret, "%s", SECRET);
    snprintf(cfg.auth_previous_secrets, sizeof cfg.auth_previous_secrets, "%s",
             previous ? previous : "");
    snprintf(cfg.auth_audience, sizeof cfg.auth_audience, "%s", aud ? aud : "");
    snprintf(cfg.auth_issuer, sizeof cfg.auth_issuer, "%s", iss ? iss : "");
    ck_assert_msg(jwt_policy_init(p, &cfg, &err) == 0, "%s", err.message);
}

static int check(const jwt_policy_t *p, const char *token, uint64_t now, jwt_claims_t *c,
                 herald_error_t *err)
{
    return jwt_verify(p, token, strlen(token), now, c, err);
}

START_TEST(jwt_requires_exp_by_default)
{
    jwt_policy_t p;
    jwt_claims_t c;
    herald_error_t err;
    char t[2200];
    policy(&p, NULL, NULL, NULL);
    test_sign(HS256, "{\"sub\":\"u1\",\"iat\":1764000000}", SECRET, t);
    ck_assert_int_eq(check(&p, t, NOW, &c, &err), -HERR_UNAUTHORIZED);
    ck_assert_int_eq(c.reason, JWT_NO_EXP);
    ck_assert_str_eq(err.field, "exp");
    p.require_exp = false;
    ck_assert_int_eq(check(&p, t, NOW, &c, &err), 0);
    ck_assert_uint_eq(c.exp, 0);
    ck_assert_str_eq(c.sub, "u1");
}
END_TEST

START_TEST(jwt_leeway_applies_to_exp_nbf_and_iat)
{
    jwt_policy_t p;
    jwt_claims_t c;
    herald_error_t err;
    char t[2200];
    policy(&p, NULL, NULL, NULL); /* leeway 5 s */
    test_sign(HS256, "{\"sub\":\"u1\",\"exp\":1764000000}", SECRET, t);
    ck_assert_int_eq(check(&p, t, NOW + 4, &c, &err), 0);
    ck_assert_uint_eq(c.exp, NOW);
    ck_assert_int_eq(check(&p, t, NOW + 5, &c, &err), -HERR_UNAUTHORIZED);
    ck_assert_int_eq(c.reason, JWT_EXPIRED);
    /* nbf and iat in the future: refused past the leeway */
    test_sign(HS256, "{\"sub\":\"u1\",\"exp\":1864000000,\"nbf\":1764000100}", SECRET, t);
    ck_assert_int_eq(check(&p, t, NOW, &c, &err), -HERR_UNAUTHORIZED);
    ck_assert_int_eq(c.reason, JWT_NOT_YET_VALID);
    ck_assert_str_eq(err.field, "nbf");
    ck_assert_int_eq(check(&p, t, NOW + 95, &c, &err), 0);
    test_sign(HS256, "{\"sub\":\"u1\",\"exp\":1864000000,\"iat\":1764000006}", SECRET, t);
    ck_assert_int_eq(check(&p, t, NOW, &c, &err), -HERR_UNAUTHORIZED);
    ck_assert_int_eq(c.reason, JWT_NOT_YET_VALID);
    ck_assert_str_eq(err.field, "iat");
    ck_assert_int_eq(check(&p, t, NOW + 1, &c, &err), 0);
    test_sign(HS256, "{\"sub\":\"u1\",\"exp\":1864000000,\"nbf\":\"soon\"}", SECRET, t);
    ck_assert_int_eq(check(&p, t, NOW, &c, &err), -HERR_UNAUTHORIZED);
    ck_assert_int_eq(c.reason, JWT_MALFORMED);
}
END_TEST

START_TEST(jwt_checks_audience_and_issuer_when_configured)
{
    jwt_policy_t p;
    jwt_claims_t c;
    herald_error_t err;
    char t[2200];
    policy(&p, NULL, "herald", "auth.example");
    const char *good[] = {
        "{\"sub\":\"u1\",\"exp\":1864000000,\"aud\":\"herald\",\"iss\":\"auth.example\"}",
        "{\"sub\":\"u1\",\"exp\":1864000000,\"aud\":[\"x\",\"herald\"],\"iss\":\"auth.example\"}",
    };
    for (size_t i = 0; i < 2; i++) {
        test_sign(HS256, good[i], SECRET, t);
        ck_assert_msg(check(&p, t, NOW, &c, &err) == 0, "%s: %s", good[i], err.message);
    }
    const char *wrong_aud[] = {
        "{\"sub\":\"u1\",\"exp\":1864000000,\"iss\":\"auth.example\"}",
        "{\"sub\":\"u1\",\"exp\":1864000000,\"aud\":\"heraldx\",\"iss\":\"auth.example\"}",
        "{\"sub\":\"u1\",\"exp\":1864000000,\"aud\":[\"x\"],\"iss\":\"auth.example\"}",
        "{\"sub\":\"u1\",\"exp\":1864000000,\"aud\":7,\"iss\":\"auth.example\"}",
    };
    for (size_t i = 0; i < 4; i++) {
        test_sign(HS256, wrong_aud[i], SECRET, t);
        ck_assert_int_eq(check(&p, t, NOW, &c, &err), -HERR_UNAUTHORIZED);
        ck_assert_int_eq(c.reason, JWT_WRONG_AUDIENCE);
    }
    const char *wrong_iss[] = {
        "{\"sub\":\"u1\",\"exp\":1864000000,\"aud\":\"herald\"}",
        "{\"sub\":\"u1\",\"exp\":1864000000,\"aud\":\"herald\",\"iss\":\"evil\"}",
    };
    for (size_t i = 0; i < 2; i++) {
        test_sign(HS256, wrong_iss[i], SECRET, t);
        ck_assert_int_eq(check(&p, t, NOW, &c, &err), -HERR_UNAUTHORIZED);
        ck_assert_int_eq(c.reason, JWT_WRONG_ISSUER);
    }
    /* without auth.audience, a token meant for another audience is not ours (RFC 7519) */
    policy(&p, NULL, NULL, NULL);
    test_sign(HS256, good[0], SECRET, t);
    ck_assert_int_eq(check(&p, t, NOW, &c, &err), -HERR_UNAUTHORIZED);
    ck_assert_int_eq(c.reason, JWT_WRONG_AUDIENCE);
}
END_TEST

START_TEST(jwt_accepts_previous_secrets_and_says_which_one_signed)
{
    jwt_policy_t p;
    jwt_claims_t c;
    herald_error_t err;
    char t[512];
    policy(&p, " old-1 , old-2", NULL, NULL);
    ck_assert_uint_eq(p.n_secrets, 3);
    ck_assert_str_eq(jwt_policy_secret(&p, 1), "old-1");
    ck_assert_str_eq(jwt_policy_secret(&p, 2), "old-2");
    /* a copy works on its own once the original is gone (a reload swaps one in) */
    jwt_policy_t *copy = malloc(sizeof *copy);
    *copy = p;
    memset(&p, 0, sizeof p);
    const char *secrets[] = {SECRET, "old-1", "old-2"};
    for (unsigned i = 0; i < 3; i++) {
        ck_assert_int_gt(jwt_mint(secrets[i], "u1", NOW, 60, t, sizeof t), 0);
        ck_assert_int_eq(check(copy, t, NOW, &c, &err), 0);
        ck_assert_uint_eq(c.secret, i);
    }
    ck_assert_int_gt(jwt_mint("old-3", "u1", NOW, 60, t, sizeof t), 0);
    ck_assert_int_eq(check(copy, t, NOW, &c, &err), -HERR_UNAUTHORIZED);
    free(copy);
    ck_assert_int_eq(c.reason, JWT_BAD_SIGNATURE);
    /* more previous secrets than the policy holds is a configuration error */
    herald_config_t cfg;
    config_defaults(&cfg);
    strcpy(cfg.auth_secret, SECRET);
    strcpy(cfg.auth_previous_secrets, "a,b,c,d,e,f,g,h");
    ck_assert_int_eq(jwt_policy_init(&p, &cfg, &err), -HERR_BAD_VALUE);
    ck_assert_str_eq(err.field, "auth.previous_secrets");
}
END_TEST

START_TEST(jwt_mint_claims_adds_nbf_aud_iss_and_can_leave_exp_out)
{
    jwt_policy_t p;
    jwt_claims_t c;
    herald_error_t err;
    char t[1024];
    jwt_mint_t m = {.sub = "u1",
                    .iat = NOW,
                    .ttl_s = 60,
                    .nbf = NOW + 10,
                    .aud = "herald",
                    .iss = "auth.example"};
    ck_assert_int_gt(jwt_mint_claims(SECRET, &m, t, sizeof t), 0);
    policy(&p, NULL, "herald", "auth.example");
    ck_assert_int_eq(check(&p, t, NOW, &c, &err), -HERR_UNAUTHORIZED);
    ck_assert_int_eq(c.reason, JWT_NOT_YET_VALID);
    ck_assert_int_eq(check(&p, t, NOW + 10, &c, &err), 0);
    ck_assert_uint_eq(c.exp, NOW + 60);
    m.no_exp = true;
    m.nbf = 0;
    ck_assert_int_gt(jwt_mint_claims(SECRET, &m, t, sizeof t), 0);
    ck_assert_int_eq(check(&p, t, NOW, &c, &err), -HERR_UNAUTHORIZED);
    ck_assert_int_eq(c.reason, JWT_NO_EXP);
    herald_config_t cfg;
    config_defaults(&cfg);
    strcpy(cfg.auth_secret, SECRET);
    strcpy(cfg.auth_audience, "herald");
    strcpy(cfg.auth_issuer, "auth.example");
    ck_assert_int_gt(jwt_mint_for(&cfg, "u1", NOW, 60, t, sizeof t), 0);
    ck_assert_int_eq(check(&p, t, NOW, &c, &err), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("jwt");
    TCase *tc = tcase_create("jwt");
    tcase_add_test(tc, jwt_mint_matches_independently_computed_vector);
    tcase_add_test(tc, jwt_verifies_the_jwt_io_example_token);
    tcase_add_test(tc, jwt_round_trip_returns_the_user);
    tcase_add_test(tc, jwt_verify_reads_only_len_bytes);
    tcase_add_test(tc, jwt_rejects_a_token_signed_with_another_secret);
    tcase_add_test(tc, jwt_rejects_a_flipped_signature_character);
    tcase_add_test(tc, jwt_rejects_an_expired_token);
    tcase_add_test(tc, jwt_rejects_a_non_numeric_exp);
    tcase_add_test(tc, jwt_rejects_a_tampered_payload);
    tcase_add_test(tc, jwt_rejects_an_alg_other_than_hs256);
    tcase_add_test(tc, jwt_rejects_alg_none);
    tcase_add_test(tc, jwt_rejects_malformed_base64_and_structure);
    tcase_add_test(tc, jwt_rejects_a_missing_or_empty_sub);
    tcase_add_test(tc, jwt_rejects_a_sub_longer_than_64_bytes);
    tcase_add_test(tc, jwt_rejects_the_broadcast_user_and_duplicate_claims);
    tcase_add_test(tc, jwt_mint_refuses_small_buffers_and_bad_input);
    tcase_add_test(tc, jwt_requires_exp_by_default);
    tcase_add_test(tc, jwt_leeway_applies_to_exp_nbf_and_iat);
    tcase_add_test(tc, jwt_checks_audience_and_issuer_when_configured);
    tcase_add_test(tc, jwt_accepts_previous_secrets_and_says_which_one_signed);
    tcase_add_test(tc, jwt_mint_claims_adds_nbf_aud_iss_and_can_leave_exp_out);
    suite_add_tcase(s, tc);
    return check_run_suite(s);
}
