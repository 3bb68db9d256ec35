/* gw.h - herald-gateway internals: the process state, sessions, users and the module API. */
#ifndef HERALD_GW_H
#define HERALD_GW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <liburing.h>
#include <libwebsockets.h>
#include <msgpack.h>

#include "config.h"
#include "doorbell.h"
#include "heartbeat.h"
#include "json.h"
#include "log.h"
#include "model.h"
#include "ring.h"

#define GW_RX_MAX         (64 * 1024) /* largest client message we accept */
#define GW_FLOOD_LIMIT    20          /* bad client messages tolerated ... */
#define GW_FLOOD_WINDOW_S 10          /* ... within this many seconds */
#define GW_DRAIN_BUDGET   8192        /* ring records per wake before yielding to lws */
#define GW_WRITE_COALESCE (64 * 1024) /* bytes of frames per coalesced write */
#define GW_NS_PER_MS      1000000ull
/* A held batch whose deadline falls within this of a wake-up is flushed in that wake-up
 * (SPEC 6 bounds the wait, not its minimum): a deadline right after a doorbell wake then
 * costs no wake-up of its own, and one timer wake flushes every deadline near it. */
#define GW_FLUSH_SLACK_NS (1 * GW_NS_PER_MS)
#define GW_NS_PER_S       1000000000ull

/* One output frame with LWS_PRE headroom. Notification frames are rendered once and shared
 * by every session that receives them (refs); control frames have one owner. */
typedef struct gw_msg {
    uint32_t refs;
    uint32_t len;
    bool binary;
    bool notification;   /* counts as "pushed" when written */
    unsigned char buf[]; /* LWS_PRE + len */
} gw_msg_t;

static inline unsigned char *gw_msg_data(gw_msg_t *m)
{
    return m->buf + LWS_PRE;
}

/* FIFO of frame references (power-of-two circular array). */
typedef struct {
    gw_msg_t **items;
    uint32_t head, count, cap;
} gw_fifo_t;

typedef enum {
    SESS_WAIT_READY = 0, /* open sent (or to send); waiting for REC_SESSION_READY */
    SESS_LIVE,           /* welcome sent; receives live notifications */
} gw_sess_state_t;

struct gw_user;

/* A WebSocket session: the lws per-session data of the herald.* protocols. */
typedef struct gw_session {
    struct lws *wsi;
    struct gw_user *user;
    uint64_t id;
    char id_str[24];
    gw_sess_state_t state;
    bool binary;    /* herald.msgpack */
    bool deflate;   /* permessage-deflate negotiated: lws must frame (compress) each write */
    bool open_sent; /* `open` went to the current broker connection */
    bool filtered;  /* a subscribe/unsubscribe set `channels` */
    uint32_t channels;
    uint64_t since;                /* resume point at connect (0 = none) */
    uint64_t live_from;            /* first user seq delivered live */
    uint64_t bcast_live_from;      /* first broadcast seq delivered live */
    uint64_t have_from;            /* lowest seq this session holds contiguously up to live */
    uint64_t replay_lo, replay_hi; /* accepted session-addressed replay range (hi 0 = none) */
    uint64_t replay_next; /* next replayed seq not yet delivered (dedups a re-sent replay) */
    bool resume_pending;  /* reply `resumed` at REC_REPLAY_END */
    /* links */
    struct gw_session *unext, *uprev; /* user's sessions */
    struct gw_session *anext, *aprev; /* every session */
    struct gw_session *hnext;         /* id hash chain */
    struct {
        struct gw_session *next, *prev;
        uint64_t deadline_ns;
        bool on;
    } dl[HERALD_PRIORITIES - 1]; /* flush deadline lists for P1..P3 */
    /* output */
    gw_fifo_t ready; /* to write now */
    gw_fifo_t held;  /* P1..P3 waiting for their flush */
    size_t pending_bytes;
    bool writable_requested;
    bool on_wlist;            /* queued on gw_t.wlist for a direct write this pass */
    struct gw_session *wnext; /* gw_t.wlist link */
    bool want_ping;
    uint16_t close_code; /* != 0: close at the next writable callback */
    const char *close_reason;
    /* input */
    char *rx;
    size_t rx_len;
    bool rx_overflow;
    uint64_t last_rx_ns, last_ping_ns;
    unsigned bad_count;
    uint64_t bad_window_ns;
} gw_session_t;

/* A held ring record (a user's records after a seq gap, waiting for the fill). */
typedef struct {
    uint8_t *bytes;
    uint32_t len;
    uint64_t seq;
} gw_held_t;

/* A user with sessions on this gateway, and its position in the user's sequence. */
typedef struct gw_user {
    char id[HERALD_MAX_ID_LEN + 1];
    struct gw_user *hnext;
    gw_session_t *sessions;
    unsigned n_sessions;
    bool known;       /* last is valid */
    uint64_t last;    /* last seq delivered in order */
    uint64_t want_to; /* highest seq known to exist */
    bool filling;     /* a session-0 replay is outstanding */
    uint64_t fill_to;
    gw_held_t *held;
    size_t n_held, cap_held;
} gw_user_t;

typedef enum { CTL_DOWN = 0, CTL_HELLO_SENT, CTL_UP } gw_ctl_state_t;

typedef struct {
    uint64_t sessions_opened, sessions_closed;
    uint64_t pushed, failed;
    uint64_t slow_closes, timeout_closes, flood_closes;
    uint64_t auth_fail[4]; /* missing, bad_signature, expired, invalid */
    uint64_t bad_client_msgs;
    uint64_t bad_http_paths; /* refused web file paths (traversal, odd characters) */
    uint64_t ring_records, ring_corrupt, bad_records;
    uint64_t gaps_detected, replays_requested, gap_msgs;
    uint64_t ctl_connects, ctl_errors; /* ctl_errors: error replies other than to hello */
} gw_counters_t;

typedef struct gw {
    herald_config_t cfg;
    unsigned id;
    struct lws_context *lws;
    struct lws_vhost *vh;
    /* io_uring */
    struct io_uring uring;
    struct lws *uring_wsi;
    bool uring_ready;
    uint64_t now_ns;
    bool timer_armed;
    uint64_t timer_at_ns;
    struct __kernel_timespec timer_ts, timer_upd_ts;
    bool nop_pending;
    /* ring */
    ring_t *ring;
    doorbell_t doorbell;
    bool doorbell_open;
    bool doorbell_armed;
    /* broker control link */
    int ctl_fd;
    gw_ctl_state_t ctl_state;
    uint64_t ctl_gen;
    uint64_t ctl_retry_at_ns;
    uint64_t ctl_backoff_ms;
    bool ctl_recv_pending, ctl_pollout_pending;
    uint8_t *ctl_rx;
    size_t ctl_rx_len;
    uint8_t *ctl_tx;
    size_t ctl_tx_len, ctl_tx_cap;
    msgpack_sbuffer ctl_sb;
    log_ratelimit_t ctl_err_rl;
    log_ratelimit_t web_rl; /* refused web file paths */
    /* sessions and users */
    gw_session_t *all;
    size_t n_sessions;
    gw_session_t **sess_tab;
    size_t sess_tab_size;
    gw_user_t **user_tab;
    size_t user_tab_size, n_users;
    gw_user_t bcast; /* the broadcast sequence ("*"); its sessions are all sessions */
    uint64_t next_session;
    struct {
        gw_session_t *head, *tail;
    } dl[HERALD_PRIORITIES - 1];
    uint64_t tick_at_ns;
    /* Flush deadlines count from when a notification was written to the ring (REC_CLOCK),
     * not from when it was read: the broker lets records wait for our own timer. */
    uint64_t rec_clock_ns; /* the last REC_CLOCK: records since were written after it */
    uint64_t dl_origin_ns; /* the origin of the last deadline set (they never go back) */
    /* liveness: beaten at the end of every io_uring reap (at least at the 1 s tick) */
    hb_t hb;
    /* Sessions with output queued during a reap pass, written directly at its end (one
     * send each, no writable callback round trip); see gw_deliver_write_now. */
    gw_session_t *wlist;
    bool in_reap;
    /* scratch */
    unsigned char wbuf[LWS_PRE + GW_WRITE_COALESCE];
    jbuf_t jb;
    msgpack_unpacked unp;
    gw_counters_t c;
} gw_t;

/* user_data tags of io_uring requests: low 8 bits tag, the rest a generation. */
enum { UD_DOORBELL = 1, UD_TIMER, UD_TIMER_UPD, UD_NOP, UD_CTL_RECV, UD_CTL_POLLOUT };

static inline uint64_t gw_ud(unsigned tag, uint64_t gen)
{
    return (gen << 8) | tag;
}

uint64_t gw_now_ns(void);

/* --- uring.c: io_uring instance, its adoption into lws, timers, ring drain --- */
int gw_uring_init(gw_t *g);
void gw_uring_fini(gw_t *g);
/* lws callback for the adopted io_uring fd (protocol "gw-uring"). */
int gw_uring_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                      size_t len);
/* Get an SQE (submitting the queue first if it is full). */
struct io_uring_sqe *gw_uring_sqe(gw_t *g);
/* Attach the ring (after the broker's hello_ok) and start waiting on its doorbell. */
int gw_uring_attach_ring(gw_t *g);
/* Re-arm the single timeout for the nearest deadline and submit queued SQEs. */
void gw_uring_commit(gw_t *g);

/* --- control.c: the broker link --- */
void gw_ctl_init(gw_t *g);
void gw_ctl_fini(gw_t *g);
void gw_ctl_try_connect(gw_t *g);
void gw_ctl_on_cqe(gw_t *g, unsigned tag, uint64_t gen, int res);
void gw_ctl_send_open(gw_t *g, gw_session_t *s);
void gw_ctl_send_close(gw_t *g, gw_session_t *s);
void gw_ctl_send_replay(gw_t *g, uint64_t session, const char *user, uint64_t from, uint64_t to);

/* --- records.c: the ring record stream --- */
int gw_records_on_record(uint32_t type, const uint8_t *data, uint32_t len, void *ctx);
/* The session-addressed replay of s ended at `to`: answer `resumed` if a resume waits for
 * it (frames replayed so far are flushed first) and stop accepting replayed records. */
void gw_session_replay_end(gw_t *g, gw_session_t *s, uint64_t to);
/* A user's sessions changed: drop the user when it has none left. */
void gw_user_release(gw_t *g, gw_user_t *u);

/* --- deliver.c: output queues, batching, flush deadlines, writes --- */
gw_msg_t *gw_msg_new(const void *data, size_t len, bool binary);
void gw_msg_unref(gw_msg_t *m);
/* Queue a frame for s with priority prio (0 = at once; control frames use 0). Takes a ref. */
void gw_deliver(gw_t *g, gw_session_t *s, gw_msg_t *m, unsigned prio);
/* Move everything held to the ready queue and ask for a writable callback. */
void gw_session_flush(gw_t *g, gw_session_t *s);
/* Flush sessions whose deadline passed; returns the nearest remaining deadline (0 = none). */
uint64_t gw_deliver_due(gw_t *g, uint64_t now_ns);
/* Write ready frames while the socket takes them. Returns -1 to close the connection. */
int gw_session_write(gw_t *g, gw_session_t *s);
/* Get s's ready frames written: during a reap pass (g->in_reap) queue s for the direct
 * write at the end of the pass; otherwise (or when lws must frame: deflate, or a close)
 * ask lws for a writable callback (once until it comes). */
void gw_session_want_write(gw_t *g, gw_session_t *s);
/* End of a reap pass: write every queued session now, from outside a writable callback
 * (plain sessions only; lws buffers a partial send itself). A failed write kills the
 * connection asynchronously. */
void gw_deliver_write_now(gw_t *g);
/* Schedule a close with a WebSocket code; the session writes no more frames. */
void gw_session_close_later(gw_t *g, gw_session_t *s, uint16_t code, const char *reason);
/* Free every queued frame of s and unlink it from the deadline lists. */
void gw_deliver_drop(gw_t *g, gw_session_t *s);

/* --- frames.c: control frames to clients (JSON or msgpack) --- */
gw_msg_t *gw_frame_welcome(gw_t *g, const gw_session_t *s);
gw_msg_t *gw_frame_range(gw_t *g, bool binary, const char *type, uint64_t from, uint64_t to);
gw_msg_t *gw_frame_subscribed(gw_t *g, bool binary, uint32_t channels);
gw_msg_t *gw_frame_pong(gw_t *g, bool binary);
gw_msg_t *gw_frame_error(gw_t *g, bool binary, const char *code, const char *message);

/* --- session.c: the herald.json / herald.msgpack protocols --- */
int gw_session_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                        size_t len);
gw_session_t *gw_session_find(gw_t *g, uint64_t id);
/* Heartbeat tick: pings and idle closes. */
void gw_sessions_tick(gw_t *g, uint64_t now_ns);

/* --- users.c: user table --- */
gw_user_t *gw_user_find(gw_t *g, const char *id, size_t len);
gw_user_t *gw_user_get(gw_t *g, const char *id);
void gw_user_remove(gw_t *g, gw_user_t *u);
void gw_sess_tab_add(gw_t *g, gw_session_t *s);
void gw_sess_tab_del(gw_t *g, gw_session_t *s);

/* --- auth.c: handshake authentication --- */
/* Check the upgrade request's token; on failure answer 401 and return 1 (lws: rejected). On
 * success fills user and since (0 when absent) and returns 0. */
int gw_auth_check(gw_t *g, struct lws *wsi, char user[HERALD_MAX_ID_LEN + 1], uint64_t *since,
                  bool reply_401);

/* --- metrics.c: /metrics, /healthz, /stats --- */
int gw_http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                     size_t len);

#endif
