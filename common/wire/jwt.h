/* jwt.h - HS256 JSON Web Tokens for client auth (OpenSSL HMAC, constant-time compare). */
#ifndef HERALD_JWT_H
#define HERALD_JWT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "err.h"
#include "model.h"

#define JWT_MAX_SECRETS 8 /* auth.secret + up to 7 auth.previous_secrets */

/* What a token must satisfy (protocol.md 12), built from the [auth] keys by jwt_policy_init.
 * Self-contained (no pointers): it may be copied, e.g. to swap in a reloaded one. */
typedef struct {
    uint16_t secret_at[JWT_MAX_SECRETS]; /* offsets in store; [0] = auth.secret, the rest
                                          * verify only (see jwt_policy_secret) */
    unsigned n_secrets;
    bool require_exp;
    uint32_t leeway_s;  /* applies to exp, nbf and iat */
    char audience[128]; /* "" = aud not checked (a token that has one is refused) */
    char issuer[128];   /* "" = iss not checked */
    char store[1280];   /* the secrets, NUL-separated */
} jwt_policy_t;

/* Secret i (0 = the current one) of p. */
static inline const char *jwt_policy_secret(const jwt_policy_t *p, unsigned i)
{
    return p->store + p->secret_at[i];
}

/* Why a token was refused (counters); the error message says more. */
typedef enum {
    JWT_OK = 0,
    JWT_MALFORMED,      /* not three base64url JSON parts, unsupported alg/crit, bad claim kind */
    JWT_BAD_SIGNATURE,  /* none of the policy's secrets signed it */
    JWT_EXPIRED,        /* exp + leeway <= now */
    JWT_NO_EXP,         /* no exp while auth.require_exp */
    JWT_NOT_YET_VALID,  /* nbf or iat later than now + leeway */
    JWT_WRONG_AUDIENCE, /* aud does not name auth.audience (or has one when none is set) */
    JWT_WRONG_ISSUER,   /* iss is not auth.issuer */
    JWT_BAD_SUB,        /* sub missing, empty, over 64 bytes, or the broadcast user */
} jwt_reason_t;

/* What a verified token says, and why it failed otherwise. */
typedef struct {
    char sub[HERALD_MAX_ID_LEN + 1];
    uint64_t exp;        /* seconds since the epoch; 0 = the token has none */
    unsigned secret;     /* index (jwt_policy_secret) of the secret that verified it */
    jwt_reason_t reason; /* JWT_OK on success */
} jwt_claims_t;

/* Optional claims for jwt_mint_claims; NULL or "" = left out. */
typedef struct {
    const char *sub;
    uint64_t iat;   /* issued at (now) */
    uint64_t ttl_s; /* exp = iat + ttl_s */
    bool no_exp;    /* mint without exp (only accepted where auth.require_exp = false) */
    uint64_t nbf;   /* 0 = no nbf */
    const char *aud, *iss;
} jwt_mint_t;

/* Fill p from cfg's [auth] keys. Errors: HERR_BAD_VALUE naming auth.previous_secrets when
 * it holds more than JWT_MAX_SECRETS - 1 entries. Secrets are copied: cfg may go away. */
int jwt_policy_init(jwt_policy_t *p, const herald_config_t *cfg, herald_error_t *err);

/* Mint {"sub","iat","exp"[,"nbf","aud","iss"]} signed with secret (never a previous one).
 * Returns the length written (NUL-terminated) or -1 if out is too small or input is bad. */
long jwt_mint_claims(const char *secret, const jwt_mint_t *m, char *out, size_t outlen);

/* Mint {"sub":user,"iat":now,"exp":now+ttl_s} signed with secret. */
long jwt_mint(const char *secret, const char *user, uint64_t now_s, uint64_t ttl_s, char *out,
              size_t outlen);

/* Mint for user with cfg's auth.secret, and auth.audience / auth.issuer when set: a token
 * the gateways of cfg accept. */
long jwt_mint_for(const herald_config_t *cfg, const char *user, uint64_t now_s, uint64_t ttl_s,
                  char *out, size_t outlen);

/* Verify the signature against each secret of p (constant time), header alg HS256, then the
 * claims: exp (required unless !p->require_exp), nbf, iat, aud, iss against p, and sub
 * (1..64 bytes, not "*"). On success fills out and returns 0. Errors: HERR_UNAUTHORIZED with
 * out->reason and err->field/message saying why; HERR_INTERNAL if HMAC fails. */
int jwt_verify(const jwt_policy_t *p, const char *token, size_t len, uint64_t now_s,
               jwt_claims_t *out, herald_error_t *err);

#endif
