/* control.c - the gateway control protocol (proto.h): hello, open, close, replay, resync, and
 * the answers to disconnect requests (revoke.c). */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "acks.h"
#include "broker.h"
#include "codec.h"
#include "control.h"
#include "native.h"
#include "proto.h"
#include "revoke.h"
#include "route.h"
#include "users.h"

static msgpack_unpacked ctrl_msg;
static bool ctrl_msg_ready;

static int get_u64(const msgpack_object *o, const char *key, uint64_t *out, herald_error_t *err)
{
    *out = 0; /* defined on every path, also for callers that go on after an error */
    const msgpack_object *v = codec_map_get(o, key);
    if (!v) return herr_set(err, HERR_MISSING_FIELD, key, "control message lacks %s", key);
    if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return herr_set(err, HERR_BAD_KIND, key, "%s must be a non-negative integer", key);
    *out = v->via.u64;
    return 0;
}

static bk_user_t *get_user(broker_t *b, const msgpack_object *o, herald_error_t *err)
{
    const msgpack_object *v = codec_map_get(o, "user");
    if (!v || v->type != MSGPACK_OBJECT_STR || !v->via.str.size ||
        v->via.str.size > HERALD_MAX_ID_LEN) {
        herr_set(err, HERR_BAD_VALUE, "user", "user must be a string of 1..%d bytes",
                 HERALD_MAX_ID_LEN);
        return NULL;
    }
    return bk_users_get(b, v->via.str.ptr, v->via.str.size, true);
}

static void send_map(broker_t *b, bk_conn_t *c, msgpack_sbuffer *sb)
{
    bk_native_send(b, c, sb->data, sb->size);
    msgpack_sbuffer_destroy(sb);
}

static void pk_str(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str(pk, strlen(s));
    msgpack_pack_str_body(pk, s, strlen(s));
}

static void send_error(broker_t *b, bk_conn_t *c, const herald_error_t *err)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 3);
    pk_str(&pk, "op");
    pk_str(&pk, "error");
    pk_str(&pk, "code");
    pk_str(&pk, herr_code(err->code));
    pk_str(&pk, "message");
    pk_str(&pk, err->message);
    send_map(b, c, &sb);
}

static int op_hello(broker_t *b, bk_conn_t *c, const msgpack_object *o, herald_error_t *err)
{
    uint64_t gw, pid, version;
    if (c->gw) return herr_set(err, HERR_BAD_VALUE, "op", "hello sent twice");
    if (get_u64(o, "gw", &gw, err) || get_u64(o, "pid", &pid, err) ||
        get_u64(o, "version", &version, err))
        return -1;
    if (version != PROTO_VERSION)
        return herr_set(err, HERR_BAD_VALUE, "version", "protocol version %llu, broker speaks %u",
                        (unsigned long long)version, PROTO_VERSION);
    if (gw >= BK_MAX_GATEWAYS)
        return herr_set(err, HERR_BAD_VALUE, "gw", "gateway id %llu out of range",
                        (unsigned long long)gw);
    bk_gateway_t *g = bk_route_attach(b, (unsigned)gw, (pid_t)pid, err);
    if (!g) return -1;
    g->ctrl = c;
    c->gw = g;

    char name[160];
    ring_name(name, sizeof name, b->cfg.shm_prefix, g->id);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 4);
    pk_str(&pk, "op");
    pk_str(&pk, "hello_ok");
    pk_str(&pk, "broker_pid");
    msgpack_pack_uint64(&pk, (uint64_t)getpid());
    pk_str(&pk, "ring");
    pk_str(&pk, name);
    pk_str(&pk, "capacity");
    msgpack_pack_uint64(&pk, ring_header(g->ring)->capacity);
    send_map(b, c, &sb);
    bk_revoke_gateway_up(b, g);
    return 0;
}

/* An optional non-negative integer field (0 when absent). */
static int get_opt_u64(const msgpack_object *o, const char *key, uint64_t *out, herald_error_t *err)
{
    *out = 0;
    return codec_map_get(o, key) ? get_u64(o, key, out, err) : 0;
}

static int op_open(broker_t *b, bk_gateway_t *g, const msgpack_object *o, herald_error_t *err)
{
    uint64_t session, since, acks;
    if (get_u64(o, "session", &session, err) || get_opt_u64(o, "since", &since, err) ||
        get_opt_u64(o, "acks", &acks, err))
        return -1;
    bk_user_t *u = get_user(b, o, err);
    if (!u) return -1;
    /* One step: nothing is sequenced between these records, so the session sees every
     * notification after last_seq live. */
    bk_users_route_add(b, u, g->id, 1);
    rec_session_ready_t r = {session, u->last_seq, bk_users_bcast(b)->last_seq};
    bk_route_write(b, g, REC_SESSION_READY, &r, sizeof r, NULL, 0);
    if (since) bk_route_replay(b, g, u, session, since, u->last_seq, true);
    if (acks) bk_acks_sessions(b, g, u->id, u->id_len, 1); /* may re-send what waits: after */
    return 0;
}

static int op_close(broker_t *b, bk_gateway_t *g, const msgpack_object *o, herald_error_t *err)
{
    uint64_t acks;
    if (get_opt_u64(o, "acks", &acks, err)) return -1;
    bk_user_t *u = get_user(b, o, err);
    if (!u) return -1;
    if (acks) bk_acks_sessions(b, g, u->id, u->id_len, -1);
    bk_users_route_del(b, u, g->id, 1);
    return 0;
}

/* acks {session, user, on}: a session opted in to acknowledged delivery, or out. */
static int op_acks(broker_t *b, bk_gateway_t *g, const msgpack_object *o, herald_error_t *err)
{
    uint64_t session, on;
    if (get_u64(o, "session", &session, err) || get_u64(o, "on", &on, err)) return -1;
    bk_user_t *u = get_user(b, o, err);
    if (!u) return -1;
    bk_acks_sessions(b, g, u->id, u->id_len, on ? 1 : -1);
    return 0;
}

static int op_replay(broker_t *b, bk_gateway_t *g, const msgpack_object *o, herald_error_t *err)
{
    uint64_t session, from, to;
    if (get_u64(o, "session", &session, err) || get_u64(o, "from", &from, err) ||
        get_u64(o, "to", &to, err))
        return -1;
    bk_user_t *u = get_user(b, o, err);
    if (!u) return -1;
    if (from == 0 || to < from)
        return herr_set(err, HERR_BAD_VALUE, "from", "replay range [%llu,%llu] is empty",
                        (unsigned long long)from, (unsigned long long)to);
    bk_route_replay(b, g, u, session, from - 1, to, true);
    return 0;
}

static int op_resync(broker_t *b, bk_gateway_t *g, const msgpack_object *o, herald_error_t *err)
{
    uint64_t sessions, after, acks;
    if (get_u64(o, "sessions", &sessions, err) || get_u64(o, "after", &after, err) ||
        get_opt_u64(o, "acks", &acks, err))
        return -1;
    bk_user_t *u = get_user(b, o, err);
    if (!u) return -1;
    if (u != bk_users_bcast(b)) { /* broadcasts reach every attached gateway without a route */
        uint32_t have = bk_users_route_refs(u, g->id);
        if (sessions > have) bk_users_route_add(b, u, g->id, (uint32_t)(sessions - have));
    }
    if (after < u->last_seq) bk_route_replay(b, g, u, 0, after, u->last_seq, true);
    if (acks && u != bk_users_bcast(b))
        bk_acks_resync(b, g, u->id, u->id_len,
                       acks > sessions ? (uint32_t)sessions : (uint32_t)acks);
    return 0;
}

void bk_control_frame(broker_t *b, bk_conn_t *c, const uint8_t *body, size_t len)
{
    herald_error_t err = {0};
    int rc;
    b->c.ctrl_frames++;
    if (!ctrl_msg_ready) {
        msgpack_unpacked_init(&ctrl_msg);
        ctrl_msg_ready = true;
    }
    if (codec_unpack(body, len, len, &ctrl_msg, &err) < 0) goto bad;
    const msgpack_object *o = &ctrl_msg.data;
    const msgpack_object *op = o->type == MSGPACK_OBJECT_MAP ? codec_map_get(o, "op") : NULL;
    if (!op || op->type != MSGPACK_OBJECT_STR) {
        herr_set(&err, HERR_MISSING_FIELD, "op", "control message must be a map with op");
        goto bad;
    }
    char name[16] = "";
    if (op->via.str.size < sizeof name) memcpy(name, op->via.str.ptr, op->via.str.size);
    if (!strcmp(name, "hello")) {
        rc = op_hello(b, c, o, &err);
        if (rc < 0) {
            send_error(b, c, &err);
            c->closing = true;
            b->c.ctrl_errors++;
            log_warn("control: hello refused: %s", err.message);
        }
        return;
    }
    if (!c->gw) {
        herr_set(&err, HERR_BAD_VALUE, "op", "%s before hello", name);
        goto bad;
    }
    if (!strcmp(name, "open"))
        rc = op_open(b, c->gw, o, &err);
    else if (!strcmp(name, "close"))
        rc = op_close(b, c->gw, o, &err);
    else if (!strcmp(name, "replay"))
        rc = op_replay(b, c->gw, o, &err);
    else if (!strcmp(name, "resync"))
        rc = op_resync(b, c->gw, o, &err);
    else if (!strcmp(name, "ack"))
        rc = bk_acks_on_ack(b, o, &err);
    else if (!strcmp(name, "acks"))
        rc = op_acks(b, c->gw, o, &err);
    else if (!strcmp(name, "disconnected"))
        rc = bk_revoke_on_disconnected(b, c->gw, o, &err);
    else if (!strcmp(name, "lock"))
        rc = bk_revoke_on_lock(b, o, &err);
    else
        rc = herr_set(&err, HERR_UNKNOWN_OP, "op", "unknown control op \"%s\"", name);
    if (rc < 0) goto bad;
    /* Control records are published at once: a session is waiting for its welcome. */
    bk_route_publish(b);
    return;
bad:
    b->c.ctrl_errors++;
    if (log_ratelimit_ok(&b->rl_bad, 5)) log_warn("control message refused: %s", err.message);
    send_error(b, c, &err);
}

void bk_control_closed(broker_t *b, bk_conn_t *c)
{
    if (c->gw && c->gw->ctrl == c) {
        bk_revoke_gateway_down(b, c->gw);
        bk_acks_gateway_down(b, c->gw);
        bk_route_detach(b, c->gw);
    }
    c->gw = NULL;
}
