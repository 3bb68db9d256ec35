/* auth.h - client authentication: the token policy of [auth], the WebSocket handshake check
 * (connection cap, JWT, locked users) and the in-session token refresh. */
#ifndef HERALD_GW_AUTH_H
#define HERALD_GW_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gw.h"
#include "users.h"

struct lws;

/* What an accepted handshake carries into the session. */
typedef struct {
    char user[HERALD_MAX_ID_LEN + 1];
    uint64_t since; /* ?since=S, 0 when absent */
    uint64_t exp_s; /* the token's exp, 0 = none */
    bool acks;      /* ?acks=1: acknowledged delivery (protocol.md 14) */
} gw_auth_t;

/* Build the token policy of cfg into p. Refuses (HERR_BAD_VALUE naming auth.secret) the
 * shipped development secret unless auth.allow_dev_secret; more previous secrets than a
 * policy holds. */
int gw_auth_configure(const herald_config_t *cfg, jwt_policy_t *p, herald_error_t *err);
/* Check the upgrade request: the connection cap (503), the token and a lock on its user
 * (401). On refusal answers (when reply) and returns 1 (lws: rejected); on success fills a
 * and returns 0. */
int gw_auth_check(gw_t *g, struct lws *wsi, gw_auth_t *a, bool reply);
/* {"op":"refresh","token":T} on session s: T must be valid and name s's user. Returns 0
 * with s->exp_s set to T's exp, or -1 with err saying why (the session keeps its expiry). */
int gw_auth_refresh(gw_t *g, gw_session_t *s, const char *token, size_t len, herald_error_t *err);

#endif
