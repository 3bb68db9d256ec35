/* control.c - the gateway's link to the broker over <runtime.dir>/control.sock (proto.h):
 * connect with backoff, hello, open/close/replay requests, and resync after a broker restart.
 * Reads go through io_uring (one recv in flight); writes are non-blocking with a buffer. */
#include "control.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "codec.h"
#include "frame.h"
#include "herald_time.h"
#include "log.h"
#include "proto.h"
#include "revoke.h"
#include "uring.h"

#define CTL_RX_CAP      (256 * 1024)
#define CTL_TX_MAX      (16u * 1024 * 1024) /* a broker this far behind is stuck: reconnect */
#define CTL_BACKOFF_MIN 100
#define CTL_BACKOFF_MAX 2000

typedef enum { CTL_DOWN = 0, CTL_HELLO_SENT, CTL_UP } gw_control_state_t;

struct gw_control {
    int fd;
    gw_control_state_t state;
    uint64_t gen; /* bumped per socket: completions of an old one are ignored */
    uint64_t retry_at_ns;
    uint64_t backoff_ms;
    bool recv_pending, pollout_pending;
    bool tx_deferred; /* frames queued to go out at the end of the loop pass (acks) */
    uint8_t *rx;
    size_t rx_len;
    uint8_t *tx;
    size_t tx_len, tx_cap;
    msgpack_sbuffer sb;
    log_ratelimit_t err_rl;
    gw_control_hooks_t hooks;
};

void gw_control_init(gw_t *g, const gw_control_hooks_t *hooks)
{
    struct gw_control *c = calloc(1, sizeof *c);
    if (!c) abort();
    c->fd = -1;
    c->state = CTL_DOWN;
    c->backoff_ms = CTL_BACKOFF_MIN;
    c->rx = malloc(CTL_RX_CAP);
    if (!c->rx) abort();
    msgpack_sbuffer_init(&c->sb);
    c->hooks = *hooks;
    g->ctl = c;
}

static void ctl_schedule_retry(gw_t *g)
{
    struct gw_control *c = g->ctl;
    c->retry_at_ns = mono_ns() + c->backoff_ms * GW_NS_PER_MS;
    c->backoff_ms = c->backoff_ms * 2 > CTL_BACKOFF_MAX ? CTL_BACKOFF_MAX : c->backoff_ms * 2;
}

static void ctl_disconnect(gw_t *g, const char *why)
{
    struct gw_control *c = g->ctl;
    if (c->fd < 0) return;
    log_warn("broker control link down: %s", why);
    shutdown(c->fd, SHUT_RDWR);
    close(c->fd);
    c->fd = -1;
    c->state = CTL_DOWN;
    c->gen++; /* completions of the old socket are ignored */
    c->recv_pending = c->pollout_pending = false;
    c->rx_len = c->tx_len = 0;
    c->tx_deferred = false;
    for (gw_session_t *s = gw_users_all(g->users); s; s = s->anext)
        s->open_sent = false;
    ctl_schedule_retry(g);
}

void gw_control_close(gw_t *g)
{
    struct gw_control *c = g->ctl;
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    c->state = CTL_DOWN;
    c->retry_at_ns = UINT64_MAX; /* stopping: no reconnect */
    free(c->rx);
    free(c->tx);
    c->rx = c->tx = NULL;
    c->rx_len = c->tx_len = c->tx_cap = 0;
    msgpack_sbuffer_destroy(&c->sb);
    msgpack_sbuffer_init(&c->sb);
}

void gw_control_fini(gw_t *g)
{
    if (!g->ctl) return;
    gw_control_close(g);
    free(g->ctl);
    g->ctl = NULL;
}

bool gw_control_up(const gw_t *g)
{
    return g->ctl->state == CTL_UP;
}

uint64_t gw_control_retry_at(const gw_t *g)
{
    return g->ctl->state == CTL_DOWN ? g->ctl->retry_at_ns : UINT64_MAX;
}

static void ctl_flush(gw_t *g)
{
    struct gw_control *c = g->ctl;
    size_t off = 0;
    while (off < c->tx_len) {
        ssize_t n = send(c->fd, c->tx + off, c->tx_len - off, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) {
            off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!c->pollout_pending) {
                struct io_uring_sqe *sqe = gw_uring_sqe(g);
                io_uring_prep_poll_add(sqe, c->fd, POLLOUT);
                io_uring_sqe_set_data64(sqe, gw_ud(UD_CTL_POLLOUT, c->gen));
                c->pollout_pending = true;
                gw_uring_submit(g);
            }
            break;
        }
        ctl_disconnect(g, n < 0 ? strerror(errno) : "send returned 0");
        return;
    }
    memmove(c->tx, c->tx + off, c->tx_len - off);
    c->tx_len -= off;
}

/* Frame the packed map in ctl_sb and queue it: sent now, or with deferred at the end of the
 * loop pass (gw_control_flush_deferred) together with whatever else the pass queued. */
static void ctl_queue_packed(gw_t *g, bool deferred)
{
    struct gw_control *c = g->ctl;
    size_t need = c->tx_len + FRAME_HDR + c->sb.size;
    if (need > CTL_TX_MAX) {
        ctl_disconnect(g, "broker is not reading the control socket");
        return;
    }
    if (need > c->tx_cap) {
        size_t cap = c->tx_cap ? c->tx_cap : 4096;
        while (cap < need)
            cap *= 2;
        c->tx = realloc(c->tx, cap);
        if (!c->tx) abort();
        c->tx_cap = cap;
    }
    frame_put_len(c->tx + c->tx_len, (uint32_t)c->sb.size);
    memcpy(c->tx + c->tx_len + FRAME_HDR, c->sb.data, c->sb.size);
    c->tx_len = need;
    if (deferred && c->tx_len < 64 * 1024) {
        c->tx_deferred = true;
        return;
    }
    c->tx_deferred = false;
    if (!c->pollout_pending) ctl_flush(g);
}

static void ctl_send_packed(gw_t *g)
{
    ctl_queue_packed(g, false);
}

void gw_control_flush_deferred(gw_t *g)
{
    struct gw_control *c = g->ctl;
    if (!c->tx_deferred) return;
    c->tx_deferred = false;
    if (c->fd >= 0 && !c->pollout_pending) ctl_flush(g);
}

static msgpack_packer ctl_begin(gw_t *g, const char *op, uint32_t nfields)
{
    struct gw_control *c = g->ctl;
    msgpack_packer pk;
    msgpack_sbuffer_clear(&c->sb);
    msgpack_packer_init(&pk, &c->sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, nfields);
    msgpack_pack_str_with_body(&pk, "op", 2);
    msgpack_pack_str_with_body(&pk, op, strlen(op));
    return pk;
}

static void pk_u64(msgpack_packer *pk, const char *k, uint64_t v)
{
    msgpack_pack_str_with_body(pk, k, strlen(k));
    msgpack_pack_uint64(pk, v);
}

static void pk_str(msgpack_packer *pk, const char *k, const char *v)
{
    msgpack_pack_str_with_body(pk, k, strlen(k));
    msgpack_pack_str_with_body(pk, v, strlen(v));
}

static void ctl_post_recv(gw_t *g)
{
    struct gw_control *c = g->ctl;
    struct io_uring_sqe *sqe = gw_uring_sqe(g);
    io_uring_prep_recv(sqe, c->fd, c->rx + c->rx_len, CTL_RX_CAP - c->rx_len, 0);
    io_uring_sqe_set_data64(sqe, gw_ud(UD_CTL_RECV, c->gen));
    c->recv_pending = true;
}

void gw_control_try_connect(gw_t *g)
{
    struct gw_control *c = g->ctl;
    if (c->state != CTL_DOWN) return;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int n = snprintf(sa.sun_path, sizeof sa.sun_path, "%s/control.sock", g->cfg.runtime_dir);
    if (n < 0 || (size_t)n >= sizeof sa.sun_path) {
        log_error("control socket path %s/control.sock is too long", g->cfg.runtime_dir);
        ctl_schedule_retry(g);
        return;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        log_debug("broker not reachable at %s: %s", sa.sun_path, strerror(errno));
        if (fd >= 0) close(fd);
        ctl_schedule_retry(g);
        return;
    }
    c->fd = fd;
    c->gen++;
    c->state = CTL_HELLO_SENT;
    c->rx_len = c->tx_len = 0;
    g->c.ctl_connects++;
    msgpack_packer pk = ctl_begin(g, "hello", 4);
    pk_u64(&pk, "gw", g->id);
    pk_u64(&pk, "pid", (uint64_t)getpid());
    pk_u64(&pk, "version", PROTO_VERSION);
    ctl_send_packed(g);
    if (c->fd >= 0) ctl_post_recv(g);
}

void gw_control_send_open(gw_t *g, gw_session_t *s)
{
    struct gw_control *c = g->ctl;
    if (c->state != CTL_UP) return; /* sent on hello_ok */
    msgpack_packer pk = ctl_begin(g, "open", 5);
    pk_u64(&pk, "session", s->id);
    pk_str(&pk, "user", s->user->id);
    pk_u64(&pk, "since", s->since);
    pk_u64(&pk, "acks", s->acks);
    s->open_sent = true;
    ctl_send_packed(g);
}

/* Does the broker know s (its open went to this broker connection, or it resynced it)? */
static bool ctl_knows(const gw_t *g, const gw_session_t *s)
{
    struct gw_control *c = g->ctl;
    return c->state == CTL_UP && (s->open_sent || s->state == SESS_LIVE);
}

void gw_control_send_close(gw_t *g, gw_session_t *s)
{
    if (!ctl_knows(g, s)) return;
    msgpack_packer pk = ctl_begin(g, "close", 4);
    pk_u64(&pk, "session", s->id);
    pk_str(&pk, "user", s->user->id);
    pk_u64(&pk, "acks", s->acks);
    ctl_send_packed(g);
}

void gw_control_send_acks(gw_t *g, gw_session_t *s)
{
    if (!ctl_knows(g, s)) return; /* the open (or the resync) will carry it */
    msgpack_packer pk = ctl_begin(g, "acks", 4);
    pk_u64(&pk, "session", s->id);
    pk_str(&pk, "user", s->user->id);
    pk_u64(&pk, "on", s->acks);
    ctl_send_packed(g);
}

void gw_control_send_ack(gw_t *g, const char *user, uint64_t seq)
{
    struct gw_control *c = g->ctl;
    if (c->state != CTL_UP) return; /* lost: the broker re-sends, the client acks again */
    msgpack_packer pk = ctl_begin(g, "ack", 3);
    pk_str(&pk, "user", user);
    pk_u64(&pk, "seq", seq);
    ctl_queue_packed(g, true);
}

void gw_control_send_replay(gw_t *g, uint64_t session, const char *user, uint64_t from, uint64_t to)
{
    struct gw_control *c = g->ctl;
    if (c->state != CTL_UP) return;
    msgpack_packer pk = ctl_begin(g, "replay", 5);
    pk_u64(&pk, "session", session);
    pk_str(&pk, "user", user);
    pk_u64(&pk, "from", from);
    pk_u64(&pk, "to", to);
    ctl_send_packed(g);
}

static void ctl_send_lock(gw_t *g, const char *user, uint64_t until_ns)
{
    msgpack_packer pk = ctl_begin(g, "lock", 3);
    pk_str(&pk, "user", user);
    pk_u64(&pk, "until", until_ns);
    ctl_send_packed(g);
}

/* After (re)connecting: tell the broker which users we serve and from where, open the
 * sessions still waiting, re-ask for gap fills that were in flight, and hand back the
 * locks we hold (a restarted broker has forgotten them). */
/* resync {user, sessions, after, acks} for a user with live sessions, and the fill it
 * was waiting for. */
static void ctl_resync_user(gw_user_t *u, void *ctx)
{
    gw_t *g = ctx;
    unsigned live = 0, acks = 0;
    for (gw_session_t *s = u->sessions; s; s = s->unext) {
        live += s->state == SESS_LIVE;
        acks += s->state == SESS_LIVE && s->acks;
    }
    if (!live) return;
    msgpack_packer pk = ctl_begin(g, "resync", 5);
    pk_str(&pk, "user", u->id);
    pk_u64(&pk, "sessions", live);
    pk_u64(&pk, "after", u->last);
    pk_u64(&pk, "acks", acks);
    ctl_send_packed(g);
    if (u->filling) gw_control_send_replay(g, 0, u->id, u->last + 1, u->fill_to);
}

static void ctl_resync(gw_t *g)
{
    gw_revoke_each(g, ctl_send_lock);
    gw_users_each(g->users, ctl_resync_user, g);
    gw_user_t *bc = gw_users_bcast(g->users);
    if (bc->known) {
        /* Broadcasts sequenced while the link was down: the broker replays them without a
         * route (every attached gateway gets broadcasts). */
        msgpack_packer pk = ctl_begin(g, "resync", 4);
        pk_str(&pk, "user", bc->id);
        pk_u64(&pk, "sessions", 0);
        pk_u64(&pk, "after", bc->last);
        ctl_send_packed(g);
    }
    if (bc->filling) gw_control_send_replay(g, 0, bc->id, bc->last + 1, bc->fill_to);
    g->ctl->hooks.resynced(g);
}

static bool str_is(const msgpack_object *o, const char *s)
{
    return o && o->type == MSGPACK_OBJECT_STR && o->via.str.size == strlen(s) &&
           !memcmp(o->via.str.ptr, s, o->via.str.size);
}

/* disconnect {id, user[, until]}: close the user's sessions, set or lift the lock, answer. */
static void ctl_on_disconnect(gw_t *g, const msgpack_object *o)
{
    const msgpack_object *id = codec_map_get(o, "id"), *user = codec_map_get(o, "user"),
                         *until = codec_map_get(o, "until");
    char uid[HERALD_MAX_ID_LEN + 1];
    if (!id || id->type != MSGPACK_OBJECT_POSITIVE_INTEGER || !user ||
        user->type != MSGPACK_OBJECT_STR || !user->via.str.size ||
        user->via.str.size > HERALD_MAX_ID_LEN ||
        (until && until->type != MSGPACK_OBJECT_POSITIVE_INTEGER)) {
        g->c.ctl_errors++;
        log_warn("malformed disconnect from the broker ignored");
        return;
    }
    memcpy(uid, user->via.str.ptr, user->via.str.size);
    uid[user->via.str.size] = '\0';
    if (until) gw_revoke_lock(g, uid, until->via.u64);
    unsigned closed = gw_revoke_disconnect(g, uid);
    if (id->via.u64 == 0) return;
    msgpack_packer pk = ctl_begin(g, "disconnected", 3);
    pk_u64(&pk, "id", id->via.u64);
    pk_u64(&pk, "closed", closed);
    ctl_send_packed(g);
}

static void ctl_on_frame(gw_t *g, const uint8_t *body, size_t len)
{
    struct gw_control *c = g->ctl;
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    if (msgpack_unpack_next(&u, (const char *)body, len, &off) != MSGPACK_UNPACK_SUCCESS) {
        ctl_disconnect(g, "undecodable frame from the broker");
        goto out;
    }
    const msgpack_object *op = codec_map_get(&u.data, "op");
    if (str_is(op, "hello_ok")) {
        if (c->state == CTL_UP) goto out;
        if (c->hooks.attach(g) < 0) {
            ctl_disconnect(g, "cannot attach the ring");
            goto out;
        }
        c->state = CTL_UP;
        c->backoff_ms = CTL_BACKOFF_MIN;
        log_info("broker control link up");
        ctl_resync(g);
    } else if (str_is(op, "disconnect")) {
        ctl_on_disconnect(g, &u.data);
    } else if (str_is(op, "error")) {
        const msgpack_object *m = codec_map_get(&u.data, "message");
        int mlen = m && m->type == MSGPACK_OBJECT_STR ? (int)m->via.str.size : 0;
        const char *msg = mlen ? m->via.str.ptr : "";
        if (c->state != CTL_UP) {
            /* The answer to our hello: the broker will not serve this gateway. */
            log_error("broker refused us: %.*s", mlen, msg);
            ctl_disconnect(g, "broker refused the hello");
            goto out;
        }
        /* A refused open/replay/resync concerns one request, not the link: keep serving
         * every other session. */
        g->c.ctl_errors++;
        if (log_ratelimit_ok(&c->err_rl, 5))
            log_warn("broker refused a control request: %.*s", mlen, msg);
    } else {
        log_warn("unexpected control frame from the broker ignored");
    }
out:
    msgpack_unpacked_destroy(&u);
}

void gw_control_on_cqe(gw_t *g, unsigned tag, uint64_t gen, int res)
{
    struct gw_control *c = g->ctl;
    if (gen != c->gen || c->fd < 0) return;
    if (tag == UD_CTL_POLLOUT) {
        c->pollout_pending = false;
        ctl_flush(g);
        return;
    }
    c->recv_pending = false;
    if (res <= 0) {
        ctl_disconnect(g, res == 0 ? "broker closed the connection" : strerror(-res));
        return;
    }
    c->rx_len += (size_t)res;
    size_t off = 0;
    while (c->fd >= 0 && gen == c->gen) {
        const uint8_t *body;
        size_t blen;
        long n = frame_next(c->rx + off, c->rx_len - off, CTL_RX_CAP - FRAME_HDR, &body, &blen);
        if (n < 0) {
            ctl_disconnect(g, "oversized frame from the broker");
            return;
        }
        if (n == 0) break;
        ctl_on_frame(g, body, blen);
        off += (size_t)n;
    }
    if (c->fd < 0 || gen != c->gen) return;
    memmove(c->rx, c->rx + off, c->rx_len - off);
    c->rx_len -= off;
    ctl_post_recv(g);
}
