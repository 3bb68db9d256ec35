/* control.c - the gateway's link to the broker over <runtime.dir>/control.sock (proto.h):
 * connect with backoff, hello, open/close/replay requests, and resync after a broker restart.
 * Reads go through io_uring (one recv in flight); writes are non-blocking with a buffer. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "codec.h"
#include "frame.h"
#include "gw.h"
#include "log.h"
#include "proto.h"

#define CTL_RX_CAP      (256 * 1024)
#define CTL_TX_MAX      (16u * 1024 * 1024) /* a broker this far behind is stuck: reconnect */
#define CTL_BACKOFF_MIN 100
#define CTL_BACKOFF_MAX 2000

void gw_ctl_init(gw_t *g)
{
    g->ctl_fd = -1;
    g->ctl_state = CTL_DOWN;
    g->ctl_backoff_ms = CTL_BACKOFF_MIN;
    g->ctl_retry_at_ns = 0;
    g->ctl_rx = malloc(CTL_RX_CAP);
    if (!g->ctl_rx) abort();
    msgpack_sbuffer_init(&g->ctl_sb);
}

static void ctl_schedule_retry(gw_t *g)
{
    g->ctl_retry_at_ns = gw_now_ns() + g->ctl_backoff_ms * GW_NS_PER_MS;
    g->ctl_backoff_ms =
        g->ctl_backoff_ms * 2 > CTL_BACKOFF_MAX ? CTL_BACKOFF_MAX : g->ctl_backoff_ms * 2;
}

static void ctl_disconnect(gw_t *g, const char *why)
{
    if (g->ctl_fd < 0) return;
    log_warn("broker control link down: %s", why);
    shutdown(g->ctl_fd, SHUT_RDWR);
    close(g->ctl_fd);
    g->ctl_fd = -1;
    g->ctl_state = CTL_DOWN;
    g->ctl_gen++; /* completions of the old socket are ignored */
    g->ctl_recv_pending = g->ctl_pollout_pending = false;
    g->ctl_rx_len = g->ctl_tx_len = 0;
    g->ctl_tx_deferred = false;
    for (gw_session_t *s = g->all; s; s = s->anext)
        s->open_sent = false;
    ctl_schedule_retry(g);
}

void gw_ctl_fini(gw_t *g)
{
    if (g->ctl_fd >= 0) {
        close(g->ctl_fd);
        g->ctl_fd = -1;
    }
    g->ctl_state = CTL_DOWN;
    free(g->ctl_rx);
    free(g->ctl_tx);
    g->ctl_rx = g->ctl_tx = NULL;
    g->ctl_tx_len = g->ctl_tx_cap = 0;
    msgpack_sbuffer_destroy(&g->ctl_sb);
}

static void ctl_flush(gw_t *g)
{
    size_t off = 0;
    while (off < g->ctl_tx_len) {
        ssize_t n =
            send(g->ctl_fd, g->ctl_tx + off, g->ctl_tx_len - off, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) {
            off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!g->ctl_pollout_pending) {
                struct io_uring_sqe *sqe = gw_uring_sqe(g);
                io_uring_prep_poll_add(sqe, g->ctl_fd, POLLOUT);
                io_uring_sqe_set_data64(sqe, gw_ud(UD_CTL_POLLOUT, g->ctl_gen));
                g->ctl_pollout_pending = true;
                io_uring_submit(&g->uring);
            }
            break;
        }
        ctl_disconnect(g, n < 0 ? strerror(errno) : "send returned 0");
        return;
    }
    memmove(g->ctl_tx, g->ctl_tx + off, g->ctl_tx_len - off);
    g->ctl_tx_len -= off;
}

/* Frame the packed map in ctl_sb and queue it: sent now, or with deferred at the end of the
 * loop pass (gw_ctl_flush_deferred) together with whatever else the pass queued. */
static void ctl_queue_packed(gw_t *g, bool deferred)
{
    size_t need = g->ctl_tx_len + FRAME_HDR + g->ctl_sb.size;
    if (need > CTL_TX_MAX) {
        ctl_disconnect(g, "broker is not reading the control socket");
        return;
    }
    if (need > g->ctl_tx_cap) {
        size_t cap = g->ctl_tx_cap ? g->ctl_tx_cap : 4096;
        while (cap < need)
            cap *= 2;
        g->ctl_tx = realloc(g->ctl_tx, cap);
        if (!g->ctl_tx) abort();
        g->ctl_tx_cap = cap;
    }
    frame_put_len(g->ctl_tx + g->ctl_tx_len, (uint32_t)g->ctl_sb.size);
    memcpy(g->ctl_tx + g->ctl_tx_len + FRAME_HDR, g->ctl_sb.data, g->ctl_sb.size);
    g->ctl_tx_len = need;
    if (deferred && g->ctl_tx_len < 64 * 1024) {
        g->ctl_tx_deferred = true;
        return;
    }
    g->ctl_tx_deferred = false;
    if (!g->ctl_pollout_pending) ctl_flush(g);
}

static void ctl_send_packed(gw_t *g)
{
    ctl_queue_packed(g, false);
}

void gw_ctl_flush_deferred(gw_t *g)
{
    if (!g->ctl_tx_deferred) return;
    g->ctl_tx_deferred = false;
    if (g->ctl_fd >= 0 && !g->ctl_pollout_pending) ctl_flush(g);
}

static msgpack_packer ctl_begin(gw_t *g, const char *op, uint32_t nfields)
{
    msgpack_packer pk;
    msgpack_sbuffer_clear(&g->ctl_sb);
    msgpack_packer_init(&pk, &g->ctl_sb, msgpack_sbuffer_write);
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
    struct io_uring_sqe *sqe = gw_uring_sqe(g);
    io_uring_prep_recv(sqe, g->ctl_fd, g->ctl_rx + g->ctl_rx_len, CTL_RX_CAP - g->ctl_rx_len, 0);
    io_uring_sqe_set_data64(sqe, gw_ud(UD_CTL_RECV, g->ctl_gen));
    g->ctl_recv_pending = true;
}

void gw_ctl_try_connect(gw_t *g)
{
    if (g->ctl_state != CTL_DOWN) return;
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
    g->ctl_fd = fd;
    g->ctl_gen++;
    g->ctl_state = CTL_HELLO_SENT;
    g->ctl_rx_len = g->ctl_tx_len = 0;
    g->c.ctl_connects++;
    msgpack_packer pk = ctl_begin(g, "hello", 4);
    pk_u64(&pk, "gw", g->id);
    pk_u64(&pk, "pid", (uint64_t)getpid());
    pk_u64(&pk, "version", PROTO_VERSION);
    ctl_send_packed(g);
    if (g->ctl_fd >= 0) ctl_post_recv(g);
}

void gw_ctl_send_open(gw_t *g, gw_session_t *s)
{
    if (g->ctl_state != CTL_UP) return; /* sent on hello_ok */
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
    return g->ctl_state == CTL_UP && (s->open_sent || s->state == SESS_LIVE);
}

void gw_ctl_send_close(gw_t *g, gw_session_t *s)
{
    if (!ctl_knows(g, s)) return;
    msgpack_packer pk = ctl_begin(g, "close", 4);
    pk_u64(&pk, "session", s->id);
    pk_str(&pk, "user", s->user->id);
    pk_u64(&pk, "acks", s->acks);
    ctl_send_packed(g);
}

void gw_ctl_send_acks(gw_t *g, gw_session_t *s)
{
    if (!ctl_knows(g, s)) return; /* the open (or the resync) will carry it */
    msgpack_packer pk = ctl_begin(g, "acks", 4);
    pk_u64(&pk, "session", s->id);
    pk_str(&pk, "user", s->user->id);
    pk_u64(&pk, "on", s->acks);
    ctl_send_packed(g);
}

void gw_ctl_send_ack(gw_t *g, const char *user, uint64_t seq)
{
    if (g->ctl_state != CTL_UP) return; /* lost: the broker re-sends, the client acks again */
    msgpack_packer pk = ctl_begin(g, "ack", 3);
    pk_str(&pk, "user", user);
    pk_u64(&pk, "seq", seq);
    ctl_queue_packed(g, true);
}

void gw_ctl_send_replay(gw_t *g, uint64_t session, const char *user, uint64_t from, uint64_t to)
{
    if (g->ctl_state != CTL_UP) return;
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
static void ctl_resync(gw_t *g)
{
    gw_revoke_each(g, ctl_send_lock);
    for (size_t b = 0; b < g->user_tab_size; b++) {
        for (gw_user_t *u = g->user_tab[b]; u; u = u->hnext) {
            unsigned live = 0, acks = 0;
            for (gw_session_t *s = u->sessions; s; s = s->unext) {
                live += s->state == SESS_LIVE;
                acks += s->state == SESS_LIVE && s->acks;
            }
            if (!live) continue;
            msgpack_packer pk = ctl_begin(g, "resync", 5);
            pk_str(&pk, "user", u->id);
            pk_u64(&pk, "sessions", live);
            pk_u64(&pk, "after", u->last);
            pk_u64(&pk, "acks", acks);
            ctl_send_packed(g);
            if (u->filling) gw_ctl_send_replay(g, 0, u->id, u->last + 1, u->fill_to);
        }
    }
    if (g->bcast.known) {
        /* Broadcasts sequenced while the link was down: the broker replays them without a
         * route (every attached gateway gets broadcasts). */
        msgpack_packer pk = ctl_begin(g, "resync", 4);
        pk_str(&pk, "user", g->bcast.id);
        pk_u64(&pk, "sessions", 0);
        pk_u64(&pk, "after", g->bcast.last);
        ctl_send_packed(g);
    }
    if (g->bcast.filling)
        gw_ctl_send_replay(g, 0, g->bcast.id, g->bcast.last + 1, g->bcast.fill_to);
    for (gw_session_t *s = g->all; s && g->ctl_state == CTL_UP; s = s->anext) {
        if (s->state == SESS_WAIT_READY) {
            gw_ctl_send_open(g, s);
        } else if (s->replay_hi || s->resume_pending) {
            /* A resume whose replay (or its end) may have been lost with the old link. */
            uint64_t from = s->replay_next > s->replay_lo ? s->replay_next : s->replay_lo;
            if (from > s->replay_hi)
                gw_session_replay_end(g, s, s->replay_hi); /* all of it was delivered */
            else
                gw_ctl_send_replay(g, s->id, s->user->id, from, s->replay_hi);
        }
    }
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
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    if (msgpack_unpack_next(&u, (const char *)body, len, &off) != MSGPACK_UNPACK_SUCCESS) {
        ctl_disconnect(g, "undecodable frame from the broker");
        goto out;
    }
    const msgpack_object *op = codec_map_get(&u.data, "op");
    if (str_is(op, "hello_ok")) {
        if (g->ctl_state == CTL_UP) goto out;
        if (!g->ring && gw_uring_attach_ring(g) < 0) {
            ctl_disconnect(g, "cannot attach the ring");
            goto out;
        }
        g->ctl_state = CTL_UP;
        g->ctl_backoff_ms = CTL_BACKOFF_MIN;
        log_info("broker control link up");
        ctl_resync(g);
    } else if (str_is(op, "disconnect")) {
        ctl_on_disconnect(g, &u.data);
    } else if (str_is(op, "error")) {
        const msgpack_object *m = codec_map_get(&u.data, "message");
        int mlen = m && m->type == MSGPACK_OBJECT_STR ? (int)m->via.str.size : 0;
        const char *msg = mlen ? m->via.str.ptr : "";
        if (g->ctl_state != CTL_UP) {
            /* The answer to our hello: the broker will not serve this gateway. */
            log_error("broker refused us: %.*s", mlen, msg);
            ctl_disconnect(g, "broker refused the hello");
            goto out;
        }
        /* A refused open/replay/resync concerns one request, not the link: keep serving
         * every other session. */
        g->c.ctl_errors++;
        if (log_ratelimit_ok(&g->ctl_err_rl, 5))
            log_warn("broker refused a control request: %.*s", mlen, msg);
    } else {
        log_warn("unexpected control frame from the broker ignored");
    }
out:
    msgpack_unpacked_destroy(&u);
}

void gw_ctl_on_cqe(gw_t *g, unsigned tag, uint64_t gen, int res)
{
    if (gen != g->ctl_gen || g->ctl_fd < 0) return;
    if (tag == UD_CTL_POLLOUT) {
        g->ctl_pollout_pending = false;
        ctl_flush(g);
        return;
    }
    g->ctl_recv_pending = false;
    if (res <= 0) {
        ctl_disconnect(g, res == 0 ? "broker closed the connection" : strerror(-res));
        return;
    }
    g->ctl_rx_len += (size_t)res;
    size_t off = 0;
    while (g->ctl_fd >= 0 && gen == g->ctl_gen) {
        const uint8_t *body;
        size_t blen;
        long n =
            frame_next(g->ctl_rx + off, g->ctl_rx_len - off, CTL_RX_CAP - FRAME_HDR, &body, &blen);
        if (n < 0) {
            ctl_disconnect(g, "oversized frame from the broker");
            return;
        }
        if (n == 0) break;
        ctl_on_frame(g, body, blen);
        off += (size_t)n;
    }
    if (g->ctl_fd < 0 || gen != g->ctl_gen) return;
    memmove(g->ctl_rx, g->ctl_rx + off, g->ctl_rx_len - off);
    g->ctl_rx_len -= off;
    ctl_post_recv(g);
}
