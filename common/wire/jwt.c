/* jwt.c - HS256 JSON Web Tokens (RFC 7519) for client sessions: mint and verify.
 *
 * Only what SPEC 6 needs: compact serialisation, base64url without padding, alg HS256,
 * claims sub (the user id), iat and exp. The signature is checked with a constant-time
 * compare before the claims are parsed; JSON is parsed with jansson. */
#include "jwt.h"

#include <stdbool.h>
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

long jwt_mint(const char *secret, const char *user, uint64_t now_s, uint64_t ttl_s, char *out,
              size_t outlen)
{
    if (!secret || !*secret || !user || !jwt_user_ok(user, strlen(user))) return -1;
    if (now_s > INT64_MAX || ttl_s > INT64_MAX - now_s) return -1;

    long ret = -1;
    char *claims = NULL;
    json_t *obj = json_pack("{s:s, s:I, s:I}", "sub", user, "iat", (json_int_t)now_s, "exp",
                            (json_int_t)(now_s + ttl_s));
    if (!obj) goto out;
    claims = json_dumps(obj, JSON_COMPACT);
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

/* exp is optional; when present it must be a number strictly after now. */
static int jwt_check_exp(json_t *claims, uint64_t now_s, herald_error_t *err)
{
    json_t *exp = json_object_get(claims, "exp");
    if (!exp) return 0;
    if (json_is_integer(exp)) {
        json_int_t v = json_integer_value(exp);
        if (v > 0 && (uint64_t)v > now_s) return 0;
        return herr_set(err, HERR_UNAUTHORIZED, "exp", "expired: exp %lld <= now %llu",
                        (long long)v, (unsigned long long)now_s);
    }
    if (json_is_real(exp)) {
        if (json_real_value(exp) > (double)now_s) return 0;
        return herr_set(err, HERR_UNAUTHORIZED, "exp", "expired: exp %.0f <= now %llu",
                        json_real_value(exp), (unsigned long long)now_s);
    }
    return herr_set(err, HERR_UNAUTHORIZED, "exp", "malformed: exp is not a number");
}

static int jwt_take_sub(json_t *claims, char user[HERALD_MAX_ID_LEN + 1], herald_error_t *err)
{
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
    memcpy(user, s, n);
    user[n] = '\0';
    return 0;
}

int jwt_verify(const char *secret, const char *token, size_t len, uint64_t now_s,
               char user[HERALD_MAX_ID_LEN + 1], herald_error_t *err)
{
    if (!secret || !*secret)
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

    unsigned char sig[JWT_SIG_LEN], mac[JWT_SIG_LEN];
    if (b64url_decode(dot2 + 1, (size_t)(end - dot2 - 1), sig, sizeof sig) != JWT_SIG_LEN) {
        rc = herr_set(err, HERR_UNAUTHORIZED, "token",
                      "malformed: signature is not 32 base64url bytes");
        goto out;
    }
    if (jwt_hmac(secret, token, (size_t)(dot2 - token), mac) < 0) {
        rc = herr_set(err, HERR_INTERNAL, "token", "HMAC-SHA256 failed");
        goto out;
    }
    if (CRYPTO_memcmp(sig, mac, JWT_SIG_LEN) != 0) {
        rc = herr_set(err, HERR_UNAUTHORIZED, "token", "bad_signature");
        goto out;
    }

    claims = jwt_segment_json(dot1 + 1, (size_t)(dot2 - dot1 - 1));
    if (!claims) {
        rc = herr_set(err, HERR_UNAUTHORIZED, "token",
                      "malformed: claims are not a base64url JSON object");
        goto out;
    }
    rc = jwt_check_exp(claims, now_s, err);
    if (rc == 0) rc = jwt_take_sub(claims, user, err);
out:
    json_decref(claims);
    json_decref(header);
    return rc;
}
