/* jwt.h - HS256 JSON Web Tokens for client auth (OpenSSL HMAC, constant-time compare). */
#ifndef HERALD_JWT_H
#define HERALD_JWT_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "model.h"

/* Mint {"sub":user,"iat":now,"exp":now+ttl_s} signed with secret. Returns length written
 * (NUL-terminated) or -1 if out is too small. */
long jwt_mint(const char *secret, const char *user, uint64_t now_s, uint64_t ttl_s, char *out,
              size_t outlen);

/* Verify signature (constant time), header alg HS256, exp > now (if present), sub present
 * and <= 64 bytes. On success copies sub into user. Errors: HERR_UNAUTHORIZED with a
 * message saying why (bad_signature, expired, malformed, no sub). */
int jwt_verify(const char *secret, const char *token, size_t len, uint64_t now_s,
               char user[HERALD_MAX_ID_LEN + 1], herald_error_t *err);

#endif
