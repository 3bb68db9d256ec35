/* ctl_publish.c - heraldctl publish, token and shard: the producer's and the client's view. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <msgpack.h>

#include "ctl.h"
#include "herald.h"
#include "json.h"
#include "jwt.h"
#include "shard.h"

/* Pack key then a string value. */
static void ctl_pack_kv(msgpack_packer *pk, const char *key, const char *val)
{
    msgpack_pack_str_with_body(pk, key, strlen(key));
    msgpack_pack_str_with_body(pk, val, strlen(val));
}

/* Build the notification map from the options into sb. Returns 0 or 1 (reported). */
static int ctl_build_notif(ctl_t *ctl, msgpack_sbuffer *sb)
{
    const char *user = ctl_opt(ctl, "user"), *type = ctl_opt(ctl, "type");
    const char *prio = ctl_opt(ctl, "priority"), *id = ctl_opt(ctl, "id");
    const char *source = ctl_opt(ctl, "source"), *payload = ctl_opt(ctl, "payload");
    uint64_t p = 0;

    if (!user || !type) return ctl_fail("publish needs --user U and --type T");
    if (prio && ctl_parse_u64("--priority", prio, &p)) return 1;
    msgpack_sbuffer body;
    msgpack_sbuffer_init(&body);
    if (payload) {
        herald_error_t err = {0};
        if (json_to_msgpack(payload, strlen(payload), &body, &err) < 0) {
            msgpack_sbuffer_destroy(&body);
            return ctl_fail("--payload: %s", err.message);
        }
    }
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2u + !!prio + !!id + !!source + !!payload);
    ctl_pack_kv(&pk, "user_id", user);
    ctl_pack_kv(&pk, "message_type", type);
    if (prio) {
        msgpack_pack_str_with_body(&pk, "priority", 8);
        msgpack_pack_uint64(&pk, p);
    }
    if (id) ctl_pack_kv(&pk, "message_id", id);
    if (source) ctl_pack_kv(&pk, "source", source);
    if (payload) {
        msgpack_pack_str_with_body(&pk, "payload", 7);
        msgpack_sbuffer_write(sb, body.data, body.size);
    }
    msgpack_sbuffer_destroy(&body);
    return 0;
}

int ctl_cmd_publish(ctl_t *ctl)
{
    static const char *const names[] = {"user",   "type",    "priority", "id",
                                        "source", "payload", NULL};
    char sock[300];
    herald_error_t err = {0};
    herald_result_t res = {0};
    int rc = 1;

    if (ctl_check_args(ctl, names, NULL, 0, 0)) return 1;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    if (ctl_build_notif(ctl, &sb)) goto out;
    snprintf(sock, sizeof sock, "%s/broker.sock", ctl->cfg.runtime_dir);
    herald_client_t *c = herald_connect(sock, &err);
    if (!c) {
        ctl_fail("broker unreachable at %s: %s", sock, err.message);
        goto out;
    }
    if (herald_publish(c, (const uint8_t *)sb.data, sb.size, &res, &err) < 0) {
        ctl_fail("publish to %s failed: %s", sock, err.message);
    } else if (!res.ok) {
        ctl_fail("publish refused: %s: %s", res.error, res.message);
    } else {
        if (ctl->json)
            printf("{\"ok\":true,\"seq\":%llu,\"duplicate\":%s}\n", (unsigned long long)res.seq,
                   res.duplicate ? "true" : "false");
        else
            printf("seq %llu%s\n", (unsigned long long)res.seq,
                   res.duplicate ? " (duplicate)" : "");
        rc = 0;
    }
    herald_close(c);
out:
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

int ctl_cmd_token(ctl_t *ctl)
{
    static const char *const names[] = {"user", "ttl", "aud", "iss", "nbf", NULL};
    const char *user, *opt;
    uint64_t ttl = 3600, nbf = 0;
    char token[2048];

    if (ctl_check_args(ctl, names, NULL, 0, 0)) return 1;
    user = ctl_opt(ctl, "user");
    if (!user || !*user) return ctl_fail("token needs --user U");
    if (strlen(user) > HERALD_MAX_ID_LEN)
        return ctl_fail("--user: longer than %d bytes", HERALD_MAX_ID_LEN);
    if ((opt = ctl_opt(ctl, "ttl")) && ctl_parse_u64("--ttl", opt, &ttl)) return 1;
    if ((opt = ctl_opt(ctl, "nbf")) && ctl_parse_u64("--nbf", opt, &nbf)) return 1;
    if (ttl == 0) return ctl_fail("--ttl: must be at least 1 second");
    uint64_t now = (uint64_t)time(NULL);
    /* aud and iss default to what the gateways check (auth.audience, auth.issuer) */
    jwt_mint_t m = {.sub = user,
                    .iat = now,
                    .ttl_s = ttl,
                    .nbf = nbf,
                    .aud = ctl_opt(ctl, "aud") ? ctl_opt(ctl, "aud") : ctl->cfg.auth_audience,
                    .iss = ctl_opt(ctl, "iss") ? ctl_opt(ctl, "iss") : ctl->cfg.auth_issuer};
    if (jwt_mint_claims(ctl->cfg.auth_secret, &m, token, sizeof token) < 0)
        return ctl_fail("token: could not mint a token for %s", user);
    if (strcmp(ctl->cfg.auth_secret, HERALD_DEV_SECRET) == 0)
        fprintf(stderr, "heraldctl: warning: signed with the public development secret (gateways "
                        "accept it only with auth.allow_dev_secret = true)\n");
    if (ctl->json) {
        jbuf_t b;
        jbuf_init(&b, 0);
        jbuf_puts(&b, "{\"user\":");
        json_put_str(&b, user, strlen(user));
        jbuf_puts(&b, ",\"exp\":");
        jbuf_put_u64(&b, now + ttl);
        jbuf_puts(&b, ",\"token\":");
        json_put_str(&b, token, strlen(token));
        jbuf_puts(&b, "}\n");
        fwrite(b.data, 1, b.len, stdout);
        jbuf_free(&b);
    } else {
        printf("%s\n", token);
    }
    return 0;
}

int ctl_cmd_shard(ctl_t *ctl)
{
    const char *pos[1];
    if (ctl_check_args(ctl, NULL, pos, 1, 1)) return 1;
    const char *user = pos[0];
    unsigned count = ctl->cfg.gateway_count ? ctl->cfg.gateway_count : 1;
    unsigned g = shard_gateway(user, strlen(user), count);
    char url[128];
    shard_url(&ctl->cfg, g, url, sizeof url);
    if (ctl->json) {
        jbuf_t b;
        jbuf_init(&b, 0);
        jbuf_puts(&b, "{\"user\":");
        json_put_str(&b, user, strlen(user));
        jbuf_puts(&b, ",\"gateway\":");
        jbuf_put_u64(&b, g);
        jbuf_puts(&b, ",\"url\":");
        json_put_str(&b, url, strlen(url));
        jbuf_puts(&b, "}\n");
        fwrite(b.data, 1, b.len, stdout);
        jbuf_free(&b);
    } else {
        printf("gateway %u %s\n", g, url);
    }
    return 0;
}
