/* auth.c - client authentication: the token policy built from [auth] (refusing the public
 * development secret unless allowed), the WebSocket handshake check (connection cap, a JWT
 * from `Authorization: Bearer <t>` or the `token` query parameter, locked users) and the
 * in-session token refresh. Failures answer HTTP 401 (503 at the cap), counted by reason. */
#include "auth.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <libwebsockets.h>

#include "jwt.h"
#include "log.h"
#include "revoke.h"

int gw_auth_configure(const herald_config_t *cfg, jwt_policy_t *p, herald_error_t *err)
{
    if (config_uses_dev_secret(cfg) && !cfg->auth_allow_dev_secret)
        return herr_set(err, HERR_BAD_VALUE, "auth.secret",
                        "auth.secret (or auth.previous_secrets) is the public development secret "
                        "of deploy/herald.ini: set your own secret, or auth.allow_dev_secret = "
                        "true for development only");
    return jwt_policy_init(p, cfg, err);
}

static gw_auth_reason_t auth_reason(jwt_reason_t r)
{
    switch (r) {
    case JWT_BAD_SIGNATURE:
        return GW_AUTH_BAD_SIGNATURE;
    case JWT_EXPIRED:
        return GW_AUTH_EXPIRED;
    case JWT_NO_EXP:
        return GW_AUTH_NO_EXP;
    case JWT_NOT_YET_VALID:
        return GW_AUTH_NOT_YET_VALID;
    case JWT_WRONG_AUDIENCE:
    case JWT_WRONG_ISSUER:
        return GW_AUTH_WRONG_AUDIENCE;
    default:
        return GW_AUTH_INVALID;
    }
}

/* Copy the token into out; returns its length, 0 if absent. */
static int auth_token(struct lws *wsi, char *out, int outlen)
{
    int n = lws_hdr_copy(wsi, out, outlen, WSI_TOKEN_HTTP_AUTHORIZATION);
    if (n > 7 && !strncasecmp(out, "Bearer ", 7)) {
        char *t = out + 7;
        while (*t == ' ')
            t++;
        n = (int)strlen(t);
        memmove(out, t, (size_t)n + 1);
        return n;
    }
    const char *v = lws_get_urlarg_by_name(wsi, "token=", out, outlen);
    if (!v) return 0;
    n = (int)strlen(v);
    memmove(out, v, (size_t)n + 1);
    return n;
}

/* lws_get_urlarg_by_name copies each query argument into buf while it searches and gives
 * up at the first one that does not fit, so buf must hold the longest argument (the token). */
static uint64_t auth_since(struct lws *wsi)
{
    char buf[2048];
    const char *v = lws_get_urlarg_by_name(wsi, "since=", buf, sizeof buf);
    if (!v || !*v) return 0;
    char *end;
    errno = 0;
    unsigned long long s = strtoull(v, &end, 10);
    /* No seq follows 2^64-1 (since + 1 would wrap to 0): treat it as no resume. */
    return *end || errno == ERANGE || s >= UINT64_MAX ? 0 : (uint64_t)s;
}

/* ?acks=1 (or true): the session opts in to acknowledged delivery (protocol.md 14). */
static bool auth_acks(struct lws *wsi)
{
    char buf[2048]; /* as auth_since: room for the longest argument */
    const char *v = lws_get_urlarg_by_name(wsi, "acks=", buf, sizeof buf);
    return v && (!strcmp(v, "1") || !strcmp(v, "true"));
}

/* Anyone can make handshakes fail: they are counted each (auth_fail), logged at most 5 a
 * second, each logged line saying how many were not. */
static log_ratelimit_t auth_rl;
/* Handshakes refused at the connection cap (peer-driven too). */
static log_ratelimit_t cap_rl;

static int auth_reject(gw_t *g, struct lws *wsi, gw_auth_reason_t reason, bool reply,
                       const char *why)
{
    if (reply) {
        g->c.auth_fail[reason]++;
        if (log_ratelimit_ok(&auth_rl, 5)) {
            unsigned long more = log_ratelimit_take(&auth_rl);
            if (more)
                log_info("handshake refused: %s (%lu more refused since, not logged)", why, more);
            else
                log_info("handshake refused: %s", why);
        }
        lws_return_http_status(wsi, HTTP_STATUS_UNAUTHORIZED, NULL);
    }
    return 1;
}

int gw_auth_check(gw_t *g, struct lws *wsi, gw_auth_t *a, bool reply)
{
    char token[2048];
    herald_error_t err;
    jwt_claims_t claims;
    /* Sessions are established right after their upgrade is confirmed (same loop pass),
     * so n_sessions counts every connection this check has let through. */
    size_t n_sessions = gw_users_n_sessions(g->users);
    if (reply && n_sessions >= g->max_connections) {
        g->c.connections_refused++;
        if (log_ratelimit_ok(&cap_rl, 5))
            log_warn("handshake refused: %zu sessions, at gateway.max_connections %u", n_sessions,
                     g->max_connections);
        lws_return_http_status(wsi, HTTP_STATUS_SERVICE_UNAVAILABLE, NULL);
        return 1;
    }
    int n = auth_token(wsi, token, sizeof token);
    if (n <= 0) return auth_reject(g, wsi, GW_AUTH_MISSING, reply, "no token");
    if (jwt_verify(&g->auth, token, (size_t)n, (uint64_t)time(NULL), &claims, &err) < 0)
        return auth_reject(g, wsi, auth_reason(claims.reason), reply, err.message);
    if (gw_revoke_locked(g, claims.sub))
        return auth_reject(g, wsi, GW_AUTH_REVOKED, reply, "user locked by /api/disconnect");
    memcpy(a->user, claims.sub, sizeof a->user);
    a->exp_s = claims.exp;
    a->since = auth_since(wsi);
    a->acks = auth_acks(wsi);
    return 0;
}

int gw_auth_refresh(gw_t *g, gw_session_t *s, const char *token, size_t len, herald_error_t *err)
{
    jwt_claims_t claims;
    if (jwt_verify(&g->auth, token, len, (uint64_t)time(NULL), &claims, err) < 0) return -1;
    if (strcmp(claims.sub, s->user->id) != 0)
        return herr_set(err, HERR_UNAUTHORIZED, "sub",
                        "the token is for another user than the session's");
    if (gw_revoke_locked(g, claims.sub))
        return herr_set(err, HERR_UNAUTHORIZED, "sub", "the user is locked");
    s->exp_s = claims.exp;
    return 0;
}
