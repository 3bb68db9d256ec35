/* jwt.c - HS256 JSON Web Tokens (RFC 7519) for client sessions: mint and verify.
 *
 * Only what protocol.md 6 and 12 need: compact serialisation, base64url without padding, alg
 * HS256, claims sub (the user id), exp, nbf, iat, aud and iss. The signature is checked
 * with a constant-time compare against the current and the previous secrets before the
 * claims are parsed; JSON is parsed with jansson. */
#include "jwt.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#define JWT_SIG_LEN   32   /* HMAC-SHA256 */
#define JWT_SIG_B64   43   /* base64url length of 32 bytes, unpadded */
#define JWT_MAX_TOKEN 4096 /* longer than any token we mint by far; bounds the work */
#define JWT_HEADER    "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"

static const char b64url_chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Encode n bytes; out needs (4n+2)/3 + 1 bytes. Returns the length (NUL-terminated). */
static size_t b64url_encode(const unsigned char *in, size_t n, char *out)
{
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = b64url_chars[v >> 18 & 63];
        out[o++] = b64url_chars[v >> 12 & 63];
        out[o++] = b64url_chars[v >> 6 & 63];
        out[o++] = b64url_chars[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = b64url_chars[v >> 18 & 63];
        out[o++] = b64url_chars[v >> 12 & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = b64url_chars[v >> 18 & 63];
        out[o++] = b64url_chars[v >> 12 & 63];
        out[o++] = b64url_chars[v >> 6 & 63];
    }
    out[o] = '\0';
    return o;
}

static int b64url_value(char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
}

/* Strict decode: only the url alphabet, no padding, no stray bits in the last character
 * (so every value has exactly one encoding). Returns the byte count or -1. */
static long b64url_decode(const char *in, size_t n, unsigned char *out, size_t cap)
{
    if (n % 4 == 1 || n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0) > cap) return -1;
    size_t o = 0;
    uint32_t acc = 0;
    unsigned bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64url_value(in[i]);
        if (v < 0) return -1;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0) return -1;
    return (long)o;
}

/* HMAC-SHA256 of data under secret into mac. Returns 0 or -1. */
static int jwt_hmac(const char *secret, const char *data, size_t n, unsigned char *mac)
{
    unsigned int maclen = 0;
    if (!HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)data, n, mac,
              &maclen))
        return -1;
    return maclen == JWT_SIG_LEN ? 0 : -1;
}

static bool jwt_user_ok(const char *user, size_t len)
{
    return len > 0 && len <= HERALD_MAX_ID_LEN && memchr(user, '\0', len) == NULL &&
           !(len == 1 && user[0] == '*');
}

int jwt_policy_init(jwt_policy_t *p, const herald_config_t *cfg, herald_error_t *err)
{
    memset(p, 0, sizeof *p);
    p->require_exp = cfg->auth_require_exp;
    p->leeway_s = cfg->auth_leeway_s;
    snprintf(p->audience, sizeof p->audience, "%s", cfg->auth_audience);
    snprintf(p->issuer, sizeof p->issuer, "%s", cfg->auth_issuer);
    size_t used = 0;
    int n = snprintf(p->store, sizeof p->store, "%s", cfg->auth_secret);
    if (n < 0 || (size_t)n >= sizeof p->store) goto too_many;
    p->secret_at[p->n_secrets++] = 0;
    used = (size_t)n + 1;
    for (const char *s = cfg->auth_previous_secrets; *s;) {
        while (*s == ' ' || *s == '\t')
            s++;
        size_t len = strcspn(s, ","), trimmed = len;
        while (trimmed && (s[trimmed - 1] == ' ' || s[trimmed - 1] == '\t'))
            trimmed--;
        if (trimmed) {
            if (p->n_secrets == JWT_MAX_SECRETS || used + trimmed + 1 > sizeof p->store)
                goto too_many;
            memcpy(p->store + used, s, trimmed);
            p->store[used + trimmed] = '\0';
            p->secret_at[p->n_secrets++] = (uint16_t)used;
            used += trimmed + 1;
        }
        s += len;
        if (*s == ',') s++;
    }
    return 0;
too_many:
    return herr_set(err, HERR_BAD_VALUE, "auth.previous_secrets",
                    "auth.previous_secrets: at most %d previous secrets", JWT_MAX_SECRETS - 1);
}

long jwt_mint_claims(const char *secret, const jwt_mint_t *m, char *out, size_t outlen)
{
    if (!secret || !*secret || !m->sub || !jwt_user_ok(m->sub, strlen(m->sub))) return -1;
    if (m->iat > INT64_MAX || m->nbf > INT64_MAX || m->ttl_s > INT64_MAX - m->iat) return -1;

    long ret = -1;
    char *claims = NULL;
    json_t *obj = json_pack("{s:s, s:I}", "sub", m->sub, "iat", (json_int_t)m->iat);
    if (!obj) goto out;
    if (!m->no_exp &&
        json_object_set_new(obj, "exp", json_integer((json_int_t)(m->iat + m->ttl_s))))
        goto out;
    if (m->nbf && json_object_set_new(obj, "nbf", json_integer((json_int_t)m->nbf))) goto out;
    if (m->aud && *m->aud && json_object_set_new(obj, "aud", json_string(m->aud))) goto out;
    if (m->iss && *m->iss && json_object_set_new(obj, "iss", json_string(m->iss))) goto out;
    claims = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!claims) goto out;

    size_t hlen = sizeof JWT_HEADER - 1, clen = strlen(claims);
    size_t need = (4 * hlen + 2) / 3 + 1 + (4 * clen + 2) / 3 + 1 + JWT_SIG_B64 + 1;
    if (outlen < need) goto out;

    size_t len = b64url_encode((const unsigned char *)JWT_HEADER, hlen, out);
    out[len++] = '.';
    len += b64url_encode((const unsigned char *)claims, clen, out + len);
    unsigned char mac[JWT_SIG_LEN];
    if (jwt_hmac(secret, out, len, mac) < 0) goto out;
    out[len++] = '.';
    len += b64url_encode(mac, sizeof mac, out + len);
    ret = (long)len;
out:
    free(claims);
    json_decref(obj);
    return ret;
}

long jwt_mint(const char *secret, const char *user, uint64_t now_s, uint64_t ttl_s, char *out,
              size_t outlen)
{
    jwt_mint_t m = {.sub = user, .iat = now_s, .ttl_s = ttl_s};
    return jwt_mint_claims(secret, &m, out, outlen);
}

long jwt_mint_for(const herald_config_t *cfg, const char *user, uint64_t now_s, uint64_t ttl_s,
                  char *out, size_t outlen)
{
    jwt_mint_t m = {.sub = user,
                    .iat = now_s,
                    .ttl_s = ttl_s,
                    .aud = cfg->auth_audience,
                    .iss = cfg->auth_issuer};
    return jwt_mint_claims(cfg->auth_secret, &m, out, outlen);
}

/* Decode one base64url segment and parse it as a JSON object; NULL if either fails. */
static json_t *jwt_segment_json(const char *seg, size_t n)
{
    unsigned char buf[JWT_MAX_TOKEN];
    long blen = b64url_decode(seg, n, buf, sizeof buf);
    if (blen < 0) return NULL;
    json_t *obj = json_loadb((const char *)buf, (size_t)blen, JSON_REJECT_DUPLICATES, NULL);
    if (obj && !json_is_object(obj)) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}

static int jwt_fail(jwt_claims_t *out, jwt_reason_t reason, herald_error_t *err, const char *field,
                    const char *fmt, const char *detail)
{
    out->reason = reason;
    return herr_set(err, HERR_UNAUTHORIZED, field, fmt, detail);
}

/* A NumericDate claim: absent (*present false), or a number, read as whole seconds (a
 * negative one as 0; a fraction rounded up when round_up, down otherwise: a token is valid
 * through the second its claims name). Returns 0, or -1 when the claim is not a number. */
static int jwt_numeric(json_t *claims, const char *name, bool round_up, bool *present, uint64_t *v)
{
    json_t *j = json_object_get(claims, name);
    *present = j != NULL;
    *v = 0;
    if (!j) return 0;
    if (json_is_integer(j)) {
        json_int_t i = json_integer_value(j);
        *v = i > 0 ? (uint64_t)i : 0;
        return 0;
    }
    if (json_is_real(j)) {
        double d = json_real_value(j);
        *v = d >= 1.8e19 ? UINT64_MAX : d > 0 ? (uint64_t)d : 0;
        if (round_up && d > 0 && d < 1.8e19 && (double)*v < d) ++*v;
        return 0;
    }
    return -1;
}

/* exp, nbf and iat against now, with the policy's leeway on each. */
static int jwt_check_times(const jwt_policy_t *p, json_t *claims, uint64_t now_s, jwt_claims_t *out,
                           herald_error_t *err)
{
    bool has;
    uint64_t v, lw = p->leeway_s;
    if (jwt_numeric(claims, "exp", true, &has, &v) < 0)
        return jwt_fail(out, JWT_MALFORMED, err, "exp", "malformed: %s is not a number", "exp");
    if (!has && p->require_exp)
        return jwt_fail(out, JWT_NO_EXP, err, "exp", "no_exp: the token has no exp claim (%s)",
                        "auth.require_exp");
    if (has && (v <= now_s && now_s - v >= lw)) {
        out->reason = JWT_EXPIRED;
        return herr_set(err, HERR_UNAUTHORIZED, "exp", "expired: exp %llu <= now %llu - %llu",
                        (unsigned long long)v, (unsigned long long)now_s, (unsigned long long)lw);
    }
    out->exp = has ? v : 0;
    static const char *const later[] = {"nbf", "iat"};
    for (size_t i = 0; i < 2; i++) {
        if (jwt_numeric(claims, later[i], false, &has, &v) < 0)
            return jwt_fail(out, JWT_MALFORMED, err, later[i], "malformed: %s is not a number",
                            later[i]);
        if (has && v > now_s && v - now_s > lw) {
            out->reason = JWT_NOT_YET_VALID;
            return herr_set(
                err, HERR_UNAUTHORIZED, later[i], "not_yet_valid: %s %llu is after now %llu + %llu",
                later[i], (unsigned long long)v, (unsigned long long)now_s, (unsigned long long)lw);
        }
    }
    return 0;
}

/* aud (a string or an array of strings) must name p->audience when one is configured, and
 * be absent otherwise (RFC 7519 4.1.3); iss must equal p->issuer when one is configured. */
static int jwt_check_names(const jwt_policy_t *p, json_t *claims, jwt_claims_t *out,
                           herald_error_t *err)
{
    json_t *aud = json_object_get(claims, "aud");
    if (aud && !p->audience[0])
        return jwt_fail(out, JWT_WRONG_AUDIENCE, err, "aud",
                        "wrong_audience: the token names an audience, %s is not set",
                        "auth.audience");
    if (p->audience[0]) {
        bool match = false;
        if (json_is_string(aud)) {
            match = strcmp(json_string_value(aud), p->audience) == 0;
        } else if (json_is_array(aud)) {
            size_t i;
            json_t *a;
            json_array_foreach(aud, i, a) match |=
                json_is_string(a) && strcmp(json_string_value(a), p->audience) == 0;
        }
        if (!match)
            return jwt_fail(out, JWT_WRONG_AUDIENCE, err, "aud",
                            "wrong_audience: aud does not name %s", p->audience);
    }
    if (p->issuer[0]) {
        json_t *iss = json_object_get(claims, "iss");
        if (!json_is_string(iss) || strcmp(json_string_value(iss), p->issuer) != 0)
            return jwt_fail(out, JWT_WRONG_ISSUER, err, "iss", "wrong_issuer: iss is not %s",
                            p->issuer);
    }
    return 0;
}

static int jwt_take_sub(json_t *claims, jwt_claims_t *out, herald_error_t *err)
{
    out->reason = JWT_BAD_SUB;
    json_t *sub = json_object_get(claims, "sub");
    if (!json_is_string(sub))
        return herr_set(err, HERR_UNAUTHORIZED, "sub", "no_sub: no string sub claim");
    const char *s = json_string_value(sub);
    size_t n = json_string_length(sub);
    if (n == 0) return herr_set(err, HERR_UNAUTHORIZED, "sub", "no_sub: sub is empty");
    if (n > HERALD_MAX_ID_LEN)
        return herr_set(err, HERR_UNAUTHORIZED, "sub", "bad_sub: sub is %zu bytes, max %d", n,
                        HERALD_MAX_ID_LEN);
    if (!jwt_user_ok(s, n))
        return herr_set(err, HERR_UNAUTHORIZED, "sub",
                        "bad_sub: sub is not a user id (NUL byte or broadcast \"*\")");
    memcpy(out->sub, s, n);
    out->sub[n] = '\0';
    out->reason = JWT_OK;
    return 0;
}

/* Which secret signed token[0..signed_len) with sig: its index, or -1 (every secret is
 * tried, so the time does not say which one matched). -2 if HMAC fails. */
static int jwt_which_secret(const jwt_policy_t *p, const char *token, size_t signed_len,
                            const unsigned char *sig)
{
    int found = -1;
    for (unsigned i = 0; i < p->n_secrets; i++) {
        unsigned char mac[JWT_SIG_LEN];
        const char *secret = jwt_policy_secret(p, i);
        if (!secret[0]) continue;
        if (jwt_hmac(secret, token, signed_len, mac) < 0) return -2;
        if (CRYPTO_memcmp(sig, mac, JWT_SIG_LEN) == 0 && found < 0) found = (int)i;
    }
    return found;
}

int jwt_verify(const jwt_policy_t *p, const char *token, size_t len, uint64_t now_s,
               jwt_claims_t *out, herald_error_t *err)
{
    memset(out, 0, sizeof *out);
    out->reason = JWT_MALFORMED;
    if (!p->n_secrets || !jwt_policy_secret(p, 0)[0])
        return herr_set(err, HERR_UNAUTHORIZED, "auth.secret", "no secret configured");
    if (!token || len == 0) return herr_set(err, HERR_UNAUTHORIZED, "token", "malformed: empty");
    if (len > JWT_MAX_TOKEN)
        return herr_set(err, HERR_UNAUTHORIZED, "token", "malformed: longer than %d bytes",
                        JWT_MAX_TOKEN);
    const char *dot1 = memchr(token, '.', len);
    const char *dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
    const char *end = token + len;
    if (!dot2 || memchr(dot2 + 1, '.', (size_t)(end - dot2 - 1)))
        return herr_set(err, HERR_UNAUTHORIZED, "token",
                        "malformed: not three dot-separated parts");

    int rc = 0;
    json_t *header = NULL, *claims = NULL;
    header = jwt_segment_json(token, (size_t)(dot1 - token));
    if (!header) {
        rc = herr_set(err, HERR_UNAUTHORIZED, "token",
                      "malformed: header is not a base64url JSON object");
        goto out;
    }
    const char *alg = json_string_value(json_object_get(header, "alg"));
    if (!alg || strcmp(alg, "HS256") != 0) {
        rc = herr_set(err, HERR_UNAUTHORIZED, "alg", "unsupported_alg: %.32s (only HS256)",
                      alg ? alg : "missing");
        goto out;
    }
    if (json_object_get(header, "crit")) {
        rc = herr_set(err, HERR_UNAUTHORIZED, "crit", "unsupported_crit: no extensions known");
        goto out;
    }

    unsigned char sig[JWT_SIG_LEN];
    if (b64url_decode(dot2 + 1, (size_t)(end - dot2 - 1), sig, sizeof sig) != JWT_SIG_LEN) {
        rc = herr_set(err, HERR_UNAUTHORIZED, "token",
                      "malformed: signature is not 32 base64url bytes");
        goto out;
    }
    int which = jwt_which_secret(p, token, (size_t)(dot2 - token), sig);
    if (which == -2) {
        rc = herr_set(err, HERR_INTERNAL, "token", "HMAC-SHA256 failed");
        goto out;
    }
    if (which < 0) {
        out->reason = JWT_BAD_SIGNATURE;
        rc = herr_set(err, HERR_UNAUTHORIZED, "token", "bad_signature");
        goto out;
    }
    out->secret = (unsigned)which;

    claims = jwt_segment_json(dot1 + 1, (size_t)(dot2 - dot1 - 1));
    if (!claims) {
        rc = herr_set(err, HERR_UNAUTHORIZED, "token",
                      "malformed: claims are not a base64url JSON object");
        goto out;
    }
    rc = jwt_check_times(p, claims, now_s, out, err);
    if (rc == 0) rc = jwt_check_names(p, claims, out, err);
    if (rc == 0) rc = jwt_take_sub(claims, out, err);
out:
    json_decref(claims);
    json_decref(header);
    return rc;
}
