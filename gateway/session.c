/* session.c - the herald.json / herald.msgpack WebSocket protocols: session life cycle,
 * client ops (subscribe, unsubscribe, resume, ping, refresh, ack, acks), flood control, the
 * per-user session bound, the resume rate limit and the heartbeat (pings, idle and token
 * expiry). */
#include "session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "clientop.h"
#include "control.h"
#include "deliver.h"
#include "frames.h"
#include "herald_time.h"
#include "log.h"
#include "users.h"

#define ALL_CHANNELS      ((1u << CH__COUNT) - 1)
#define GW_RX_MAX         (64 * 1024) /* largest client message we accept */
#define GW_FLOOD_LIMIT    20          /* bad client messages tolerated ... */
#define GW_FLOOD_WINDOW_S 10          /* ... within this many seconds */
/* Acks a session may send: a bucket of GW_ACKS_BURST refilled at GW_ACKS_PER_S (an ack is
 * one control frame to the broker; a client acks what it was sent, a few per second). */
#define GW_ACKS_BURST 1024
#define GW_ACKS_PER_S 256

/* Refresh denials (peer-driven): logged at most 5 a second. */
static log_ratelimit_t refusal_rl;

static void session_reply(gw_t *g, gw_session_t *s, gw_msg_t *m)
{
    gw_deliver(g, s, m, 0);
    gw_msg_unref(m);
}

/* Past gateway.max_sessions_per_user open sessions, close the user's oldest (4009): many
 * sessions on one token would each replay history and multiply the user's traffic. */
static void session_bound_user(gw_t *g, gw_user_t *u)
{
    if (u->n_open <= g->cfg.max_sessions_per_user) return;
    gw_session_t *oldest = NULL;
    for (gw_session_t *s = u->sessions; s; s = s->unext)
        if (!s->close_code) oldest = s; /* the list is newest first */
    if (!oldest) return;
    g->c.session_limit_closes++;
    log_info("session %s (user %s): closed, the user has more than %u sessions", oldest->id_str,
             u->id, g->cfg.max_sessions_per_user);
    gw_deliver_close_later(g, oldest, 4009, "too many sessions for this user");
}

static void session_open(gw_t *g, gw_session_t *s, struct lws *wsi, const gw_auth_t *a)
{
    const struct lws_protocols *p = lws_get_protocol(wsi);
    s->wsi = wsi;
    s->binary = p && p->user != NULL;
    s->since = a->since;
    s->exp_s = a->exp_s;
    s->acks = a->acks;
    gw_users_add(g->users, s, a->user);
    snprintf(s->id_str, sizeof s->id_str, "%u-%llx", g->id, (unsigned long long)s->id);
    s->last_rx_ns = s->last_ping_ns = g->now_ns = mono_ns();
    /* the connect-time resume (since=S) is the first of the bucket */
    s->resume_tokens = g->cfg.resumes_per_minute - (a->since ? 1 : 0);
    s->resume_refill_ns = g->now_ns;
    s->ack_tokens = GW_ACKS_BURST;
    s->ack_refill_ns = g->now_ns;
    g->c.sessions_opened++;
    s->state = SESS_WAIT_READY;
    gw_control_send_open(g, s);
    session_bound_user(g, s->user);
}

static void session_closed(gw_t *g, gw_session_t *s)
{
    if (!s->user) return; /* never established */
    gw_control_send_close(g, s);
    gw_deliver_drop(g, s);
    gw_users_remove(g->users, s);
    g->c.sessions_closed++;
    free(s->rx);
    s->rx = NULL;
    s->wsi = NULL;
}

static void session_bad_input(gw_t *g, gw_session_t *s, const char *code, const char *msg)
{
    g->c.bad_client_msgs++;
    if (g->now_ns - s->bad_window_ns > GW_FLOOD_WINDOW_S * GW_NS_PER_S) {
        s->bad_window_ns = g->now_ns;
        s->bad_count = 0;
    }
    if (++s->bad_count > GW_FLOOD_LIMIT) {
        g->c.flood_closes++;
        log_warn("session %s (user %s): too many bad messages, closing", s->id_str, s->user->id);
        gw_deliver_close_later(g, s, 1008, "too many bad messages");
        return;
    }
    session_reply(g, s, gw_frames_error(&g->jb, s->binary, code, msg));
}

/* Take one resume from s's bucket (refilled at resumes_per_minute). */
static bool session_resume_allowed(gw_t *g, gw_session_t *s)
{
    uint32_t per_min = g->cfg.resumes_per_minute;
    uint64_t every_ns = 60 * GW_NS_PER_S / per_min;
    uint64_t earned = (g->now_ns - s->resume_refill_ns) / every_ns;
    if (earned) {
        uint64_t t = s->resume_tokens + earned;
        s->resume_tokens = t > per_min ? per_min : (uint32_t)t;
        s->resume_refill_ns += earned * every_ns;
    }
    if (s->resume_tokens == 0) return false;
    s->resume_tokens--;
    return true;
}

static void session_resume(gw_t *g, gw_session_t *s, uint64_t since)
{
    if (!session_resume_allowed(g, s)) {
        /* Each resume may replay up to history_size notifications into the shared ring. */
        g->c.resumes_limited++;
        session_bad_input(g, s, "rate_limited",
                          "too many resumes: at most gateway.resumes_per_minute");
        return;
    }
    if (s->state != SESS_LIVE) {
        session_bad_input(g, s, "not_ready", "resume before welcome");
        return;
    }
    if (s->resume_pending) {
        session_bad_input(g, s, "resume_pending", "a resume is already in progress");
        return;
    }
    if (since == UINT64_MAX) {
        /* No seq follows it; since + 1 below would wrap to 0. */
        session_bad_input(g, s, herr_code(HERR_BAD_VALUE), "since must be below 2^64-1");
        return;
    }
    if (since + 1 >= s->have_from) {
        /* Everything after `since` is already on this session. */
        session_reply(g, s, gw_frames_range(&g->jb, s->binary, "resumed", since, since));
        return;
    }
    if (!gw_control_up(g)) {
        session_bad_input(g, s, "unavailable", "broker unavailable, retry the resume");
        return;
    }
    s->replay_lo = since + 1;
    s->replay_hi = s->have_from - 1;
    s->replay_next = s->replay_lo;
    s->have_from = since + 1;
    s->resume_pending = true;
    gw_control_send_replay(g, s->id, s->user->id, s->replay_lo, s->replay_hi);
}

/* {"op":"ack","seq":S}: passed on to the broker, which keeps the outstanding set (any session
 * of the user may ack; the broker ignores seqs it does not track). Rate-bounded, as each is
 * a control frame. */
static void session_ack(gw_t *g, gw_session_t *s, uint64_t seq)
{
    uint64_t every_ns = GW_NS_PER_S / GW_ACKS_PER_S;
    uint64_t earned = (g->now_ns - s->ack_refill_ns) / every_ns;
    if (earned) {
        uint64_t t = s->ack_tokens + earned;
        s->ack_tokens = t > GW_ACKS_BURST ? GW_ACKS_BURST : (uint32_t)t;
        s->ack_refill_ns += earned * every_ns;
    }
    if (!s->ack_tokens) {
        g->c.acks_limited++;
        session_bad_input(g, s, "rate_limited", "too many acks");
        return;
    }
    s->ack_tokens--;
    g->c.acks++;
    gw_control_send_ack(g, s->user->id, seq);
}

/* {"op":"acks","on":B}: opt in to acknowledged delivery (or out); answered {"type":"acks",
 * "on":B}. */
static void session_acks(gw_t *g, gw_session_t *s, bool on)
{
    if (s->acks != on) {
        s->acks = on;
        if (on)
            s->user->n_acks++;
        else
            s->user->n_acks--;
        gw_control_send_acks(g, s);
    }
    session_reply(g, s, gw_frames_acks(&g->jb, s->binary, on));
}

static void session_op(gw_t *g, gw_session_t *s, const client_op_t *op)
{
    switch (op->kind) {
    case OP_SUBSCRIBE:
        s->channels = s->filtered ? s->channels | op->channels : op->channels;
        s->filtered = true;
        session_reply(g, s, gw_frames_subscribed(&g->jb, s->binary, s->channels));
        break;
    case OP_UNSUBSCRIBE:
        s->channels = (s->filtered ? s->channels : ALL_CHANNELS) & ~op->channels;
        s->filtered = true;
        session_reply(g, s, gw_frames_subscribed(&g->jb, s->binary, s->channels));
        break;
    case OP_RESUME:
        session_resume(g, s, op->since);
        break;
    case OP_PING:
        session_reply(g, s, gw_frames_pong(&g->jb, s->binary));
        break;
    case OP_ACK:
        session_ack(g, s, op->seq);
        break;
    case OP_ACKS:
        session_acks(g, s, op->on);
        break;
    case OP_REFRESH: {
        herald_error_t err;
        if (gw_auth_refresh(g, s, op->token, op->token_len, &err) < 0) {
            g->c.refresh_denied++;
            if (log_ratelimit_ok(&refusal_rl, 5))
                log_info("session %s (user %s): refresh denied: %s", s->id_str, s->user->id,
                         err.message);
            session_bad_input(g, s, "refresh_denied", err.message);
            break;
        }
        g->c.refreshes++;
        session_reply(g, s, gw_frames_refreshed(&g->jb, s->binary, s->exp_s));
        break;
    }
    }
}

static void session_message(gw_t *g, gw_session_t *s, bool binary)
{
    client_op_t op;
    herald_error_t err;
    int rc = binary ? clientop_parse_msgpack((const uint8_t *)s->rx, s->rx_len, &op, &err)
                    : clientop_parse_json(s->rx, s->rx_len, &op, &err);
    if (rc < 0)
        session_bad_input(g, s, herr_code(err.code), err.message);
    else
        session_op(g, s, &op);
}

static void session_receive(gw_t *g, gw_session_t *s, struct lws *wsi, const void *in, size_t len)
{
    s->last_rx_ns = g->now_ns = mono_ns();
    if (!s->rx) {
        s->rx = malloc(GW_RX_MAX);
        if (!s->rx) abort();
    }
    if (s->rx_len + len > GW_RX_MAX)
        s->rx_overflow = true;
    else {
        memcpy(s->rx + s->rx_len, in, len);
        s->rx_len += len;
    }
    if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi)) return;
    if (s->rx_overflow)
        session_bad_input(g, s, "too_large", "message over 64 KiB");
    else if (!s->close_code)
        session_message(g, s, lws_frame_is_binary(wsi));
    s->rx_len = 0;
    s->rx_overflow = false;
    /* Ops are rare: give the buffer back rather than keep 64 KiB per idle session. */
    free(s->rx);
    s->rx = NULL;
}

int gw_session_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                        size_t len)
{
    gw_t *g = lws_context_user(lws_get_context(wsi));
    gw_session_t *s = user;
    gw_auth_t a;

    switch (reason) {
    case LWS_CALLBACK_ESTABLISHED:
        /* The upgrade was authenticated in HTTP_CONFIRM_UPGRADE; the headers are still
         * attached here, so read the identity again rather than carry it across. */
        if (gw_auth_check(g, wsi, &a, false)) return -1;
        session_open(g, s, wsi, &a);
        return 0;
    case LWS_CALLBACK_RECEIVE:
        if (s->user) session_receive(g, s, wsi, in, len);
        return 0;
    case LWS_CALLBACK_CONFIRM_EXTENSION_OKAY:
        /* the session data exists already (lws allocates it before the extensions) */
        if (s && in && !strcmp((const char *)in, "permessage-deflate")) s->deflate = true;
        return 0;
    case LWS_CALLBACK_RECEIVE_PONG:
        s->last_rx_ns = mono_ns();
        return 0;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        if (!s->user) return 0;
        return gw_deliver_write(g, s);
    case LWS_CALLBACK_CLOSED:
        session_closed(g, s);
        return 0;
    default:
        return 0;
    }
}

void gw_session_tick(gw_t *g, uint64_t now_ns)
{
    uint64_t idle_ns = (uint64_t)g->cfg.session_timeout_s * GW_NS_PER_S;
    uint64_t ping_ns = (uint64_t)g->cfg.ping_interval_s * GW_NS_PER_S;
    /* A session lives until its token's exp (plus the leeway the handshake allowed) unless
     * a refresh moved it: checked here, once a second, never per message. */
    uint64_t wall_s = (uint64_t)time(NULL), leeway = g->cfg.auth_leeway_s;
    for (gw_session_t *s = gw_users_all(g->users); s; s = s->anext) {
        if (s->close_code) continue;
        if (s->exp_s && wall_s >= leeway && s->exp_s <= wall_s - leeway) {
            g->c.expiry_closes++;
            log_info("session %s (user %s): token expired, closing", s->id_str, s->user->id);
            gw_deliver_close_later(g, s, 4001, "token_expired");
            continue;
        }
        if (idle_ns && now_ns - s->last_rx_ns > idle_ns) {
            g->c.timeout_closes++;
            log_info("session %s (user %s): idle, closing", s->id_str, s->user->id);
            gw_deliver_close_later(g, s, 1001, "idle timeout");
            continue;
        }
        if (ping_ns && now_ns - s->last_ping_ns >= ping_ns) {
            s->last_ping_ns = now_ns;
            s->want_ping = true;
            gw_deliver_want_write(g, s);
        }
    }
}
