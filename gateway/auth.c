/* auth.c - client authentication at the WebSocket handshake: a HS256 JWT from
 * `Authorization: Bearer <t>` or the `token` query parameter; failures answer HTTP 401. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "gw.h"
#include "jwt.h"
#include "log.h"

enum { AUTH_MISSING = 0, AUTH_BAD_SIGNATURE, AUTH_EXPIRED, AUTH_INVALID };

static int auth_reason(const herald_error_t *err)
{
    if (strstr(err->message, "signature")) return AUTH_BAD_SIGNATURE;
    if (strstr(err->message, "expired")) return AUTH_EXPIRED;
    return AUTH_INVALID;
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

/* Anyone can make handshakes fail: they are counted each (auth_fail), logged at most 5 a
 * second, each logged line saying how many were not. */
static log_ratelimit_t auth_rl;

static int auth_reject(gw_t *g, struct lws *wsi, int reason, bool reply_401, const char *why)
{
    if (reply_401) {
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

int gw_auth_check(gw_t *g, struct lws *wsi, char user[HERALD_MAX_ID_LEN + 1], uint64_t *since,
                  bool reply_401)
{
    char token[2048];
    herald_error_t err;
    int n = auth_token(wsi, token, sizeof token);
    if (n <= 0) return auth_reject(g, wsi, AUTH_MISSING, reply_401, "no token");
    if (jwt_verify(g->cfg.auth_secret, token, (size_t)n, (uint64_t)time(NULL), user, &err) < 0)
        return auth_reject(g, wsi, auth_reason(&err), reply_401, err.message);
    *since = auth_since(wsi);
    return 0;
}
