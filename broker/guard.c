/* guard.c - who may talk to the broker (protocol.md 12): the peer's uid on the unix sockets
 * (SO_PEERCRED), the api key on native TCP (an auth frame first) and on HTTP publishes,
 * compared in constant time. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "broker.h"
#include "codec.h"
#include "guard.h"

/* The auth frame's first bytes: a msgpack map of one pair whose key is "auth". */
static const uint8_t auth_head[] = {0x81, 0xa4, 'a', 'u', 't', 'h'};

/* {"ok":true} */
static const uint8_t auth_ok[] = {0x81, 0xa2, 'o', 'k', 0xc3};

static log_ratelimit_t rl_peer, rl_auth;

/* SHA-256 of len bytes: keys are compared through their digests, so neither the time nor
 * the lengths compared depend on where or whether the presented key differs. */
static void guard_digest(const void *p, size_t len, uint8_t out[32])
{
    unsigned n = 32;
    if (!EVP_Digest(p, len, out, &n, EVP_sha256(), NULL)) memset(out, 0, 32);
}

bool bk_guard_key_ok(broker_t *b, const char *key, size_t len)
{
    if (!b->cfg.broker_api_key[0]) return true;
    uint8_t want[32], got[32];
    guard_digest(b->cfg.broker_api_key, strlen(b->cfg.broker_api_key), want);
    guard_digest(key, len, got);
    return CRYPTO_memcmp(got, want, sizeof got) == 0;
}

int bk_guard_accept(broker_t *b, int fd, bool ctrl)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) return -1;
    if (ss.ss_family != AF_UNIX) return b->cfg.broker_api_key[0] ? BK_AUTH_REQUIRED : BK_AUTH_FIRST;
    /* broker.sock with runtime.group: the socket's 0660 mode already let only that group in */
    if (!ctrl && b->rt.group) return BK_AUTH_FIRST;
    struct ucred cr;
    socklen_t cl = sizeof cr;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) < 0) {
        cr.uid = (uid_t)-1;
        cr.pid = 0;
    }
    if (cr.uid == geteuid() || cr.uid == 0) return BK_AUTH_FIRST;
    if (ctrl)
        b->c.ctrl_refused++;
    else
        b->c.native_refused++;
    if (log_ratelimit_ok(&rl_peer, 5)) {
        unsigned long more = log_ratelimit_take(&rl_peer);
        log_warn("%s: refused a connection from uid %u (pid %d): only uid %u and root may "
                 "connect (%lu more refused since the last line)",
                 ctrl ? "control.sock" : "broker.sock", (unsigned)cr.uid, (int)cr.pid,
                 (unsigned)geteuid(), more);
    }
    return -1;
}

/* Answer {"ok":false,"error":"unauthorized","message":why}; the connection closes after it. */
static int guard_refuse(broker_t *b, msgpack_sbuffer *answer, const char *why)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, answer, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 3);
    msgpack_pack_str_with_body(&pk, "ok", 2);
    msgpack_pack_false(&pk);
    msgpack_pack_str_with_body(&pk, "error", 5);
    const char *code = herr_code(HERR_UNAUTHORIZED);
    msgpack_pack_str_with_body(&pk, code, strlen(code));
    msgpack_pack_str_with_body(&pk, "message", 7);
    msgpack_pack_str_with_body(&pk, why, strlen(why));
    b->c.unauthorized++;
    if (log_ratelimit_ok(&rl_auth, 5)) {
        unsigned long more = log_ratelimit_take(&rl_auth);
        log_warn("native connection refused: %s (%lu more refused since the last line)", why, more);
    }
    return -1;
}

int bk_guard_auth_frame(broker_t *b, uint8_t *state, const uint8_t *body, size_t len,
                        msgpack_sbuffer *answer)
{
    bool is_auth = len > sizeof auth_head && !memcmp(body, auth_head, sizeof auth_head);
    if (!is_auth) {
        if (*state == BK_AUTH_REQUIRED)
            return guard_refuse(b, answer,
                                "broker.api_key is set: send {\"auth\":\"<key>\"} first");
        *state = BK_AUTH_DONE;
        return 0;
    }
    const char *key;
    uint32_t klen;
    herald_error_t err;
    if (codec_skip(body, len, &err) != (long)len ||
        !codec_str_at(body + sizeof auth_head, &key, &klen))
        return guard_refuse(b, answer, "auth frame must be {\"auth\":\"<key>\"}");
    if (!bk_guard_key_ok(b, key, klen)) return guard_refuse(b, answer, "wrong api key");
    *state = BK_AUTH_DONE;
    msgpack_sbuffer_write(answer, (const char *)auth_ok, sizeof auth_ok);
    return 1;
}
