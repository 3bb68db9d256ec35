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
#include "latency.h"
#include "jwt.h"
#include "log.h"
#include "model.h"
#include "ring.h"

#define GW_RX_MAX (64 * 1024) /* largest client message we accept */
/* lws's receive buffer per session: client messages are small ops, and a larger one arrives
 * in several callbacks (session.c joins them up to GW_RX_MAX); every idle session holds it. */
#define GW_LWS_RX_BUF     512
#define GW_FLOOD_LIMIT    20          /* bad client messages tolerated ... */
#define GW_FLOOD_WINDOW_S 10          /* ... within this many seconds */
#define GW_DRAIN_BUDGET   8192        /* ring records per wake before yielding to lws */
#define GW_WRITE_COALESCE (64 * 1024) /* bytes of frames per coalesced write */
#define GW_WRITE_FRAMES   512         /* frames per coalesced write */
#define GW_NS_PER_MS      1000000ull
/* A held batch whose deadline falls within this of a wake-up is flushed in that wake-up
 * (SPEC 6 bounds the wait, not its minimum): a deadline right after a doorbell wake then
 * costs no wake-up of its own, and one timer wake flushes every deadline near it. */
#define GW_FLUSH_SLACK_NS (1 * GW_NS_PER_MS)
#define GW_NS_PER_S       1000000000ull
/* Descriptors kept out of the connection cap when gateway.max_connections is 0 (auto):
 * listener, io_uring, ring, control socket, /metrics scrapes, lws internals. */
#define GW_FD_RESERVE 64
/* Acks a session may send: a bucket of GW_ACKS_BURST refilled at GW_ACKS_PER_S (an ack is
 * one control frame to the broker; a client acks what it was sent, a few per second). */
#define GW_ACKS_BURST 1024
#define GW_ACKS_PER_S 256
/* Bytes a queued frame costs beyond its payload: the gw_msg_t header and LWS_PRE headroom,
 * the allocator's header, the queue slot and the WebSocket frame header. The slow-consumer
 * bound counts these, so a flood of tiny frames is bounded by the memory it really holds. */
#define GW_MSG_OVERHEAD (sizeof(struct gw_msg) + LWS_PRE + 16 + sizeof(void *) + 10)

/* One output frame with LWS_PRE headroom. Notification frames are rendered once and shared
 * by every session that receives them (refs); control frames have one owner. */
typedef struct gw_msg {
    uint32_t refs;
    uint32_t len;
    bool binary;
    bool notification; /* counts as "pushed" when written */
    bool live;         /* counts in the delivery latency when written (not a resume replay) */
    uint8_t prio;
    /* Conflation (conflate.c). A notification of a conflatable type (delivery.conflate, not
     * P0, not a broadcast) has conflatable set; its key is computed when first needed
     * (ckey 0 = not yet). A `conflated` frame (conflated set) is owned by one session and
     * grows in place up to cap bytes as it names more seqs. */
    bool conflatable;
    bool conflated;
    uint8_t type;        /* model_type_index of a notification */
    uint32_t cap;        /* conflated frames: bytes allocated after LWS_PRE */
    uint64_t seq;        /* a notification's seq */
    uint64_t ckey;       /* conflation key (user + type + instrument or account), 0 = unknown */
    uint64_t ts_ns;      /* the notification's timestamp (wall clock) */
    unsigned char buf[]; /* LWS_PRE + len */
} gw_msg_t;

/* A notification in a write being made: counted in the latency once the write is taken. */
typedef struct {
    uint64_t ts_ns;
    uint8_t prio;
} gw_wtime_t;

static inline unsigned char *gw_msg_data(gw_msg_t *m)
{
    return m->buf + LWS_PRE;
}

/* FIFO of frame references (power-of-two circular array; fifo.h). Slots are numbered by
 * absolute position (base is the position of items[head]); a slot whose frame conflation
 * took out holds NULL (a hole) until it reaches the front. */
typedef struct {
    gw_msg_t **items;
    uint32_t head, count, cap;
    uint32_t holes; /* NULL slots among count */
    uint64_t base;
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
    uint64_t exp_s; /* the token's exp (wall clock seconds); 0 = none. Checked by the tick */
    char id_str[24];
    gw_sess_state_t state;
    bool binary;    /* herald.msgpack */
    bool deflate;   /* permessage-deflate negotiated: lws must frame (compress) each write */
    bool open_sent; /* `open` went to the current broker connection */
    bool filtered;  /* a subscribe/unsubscribe set `channels` */
    bool acks;      /* opted in to acknowledged delivery (?acks=1 or the acks op; SPEC 14) */
    uint32_t channels;
    uint64_t since;                /* resume point at connect (0 = none) */
    uint64_t live_from;            /* first user seq delivered live */
    uint64_t bcast_live_from;      /* first broadcast seq delivered live */
    uint64_t have_from;            /* lowest seq this session holds contiguously up to live */
    uint64_t replay_lo, replay_hi; /* accepted session-addressed replay range (hi 0 = none) */
    uint64_t replay_next;      /* next replayed seq not yet delivered (dedups a re-sent replay) */
    bool resume_pending;       /* reply `resumed` at REC_REPLAY_END */
    uint32_t resume_tokens;    /* resume ops left in the bucket (gateway.resumes_per_minute) */
    uint64_t resume_refill_ns; /* when the bucket last gained a token */
    uint32_t ack_tokens;       /* ack ops left in the bucket (GW_ACKS_PER_S) */
    uint64_t ack_refill_ns;
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
    struct gw_conflate *cf; /* conflation index while pending_bytes is past conflate_bytes */
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
    gw_session_t *sessions; /* newest first */
    unsigned n_sessions;
    unsigned n_open;  /* sessions not closing (close_code 0): what max_sessions_per_user bounds */
    unsigned n_acks;  /* sessions opted in to acknowledged delivery (the broker's count) */
    bool known;       /* last is valid */
    uint64_t last;    /* last seq delivered in order */
    uint64_t want_to; /* highest seq known to exist */
    bool filling;     /* a session-0 replay is outstanding */
    uint64_t fill_to;
    gw_held_t *held;
    size_t n_held, cap_held;
} gw_user_t;

typedef enum { CTL_DOWN = 0, CTL_HELLO_SENT, CTL_UP } gw_ctl_state_t;

/* Why a handshake was refused with 401 (auth_failures_total{reason}). */
typedef enum {
    GW_AUTH_MISSING = 0,
    GW_AUTH_BAD_SIGNATURE,
    GW_AUTH_EXPIRED,
    GW_AUTH_INVALID, /* malformed, bad sub */
    GW_AUTH_NO_EXP,
    GW_AUTH_NOT_YET_VALID,
    GW_AUTH_WRONG_AUDIENCE, /* aud or iss */
    GW_AUTH_REVOKED,        /* the user is locked (POST /api/disconnect with until) */
    GW_AUTH__COUNT
} gw_auth_reason_t;

typedef struct {
    uint64_t sessions_opened, sessions_closed;
    uint64_t pushed, failed;
    uint64_t slow_closes, timeout_closes, flood_closes;
    uint64_t auth_fail[GW_AUTH__COUNT];
    uint64_t expiry_closes; /* 4001 token_expired */
    uint64_t refreshes, refresh_denied;
    uint64_t session_limit_closes; /* 4009: the user's oldest past max_sessions_per_user */
    uint64_t resumes_limited;      /* resume ops refused as rate_limited */
    uint64_t connections_refused;  /* handshakes answered 503 at the connection cap */
    uint64_t disconnect_closes;    /* 4003: POST /api/disconnect */
    uint64_t reloads, reload_errors;
    uint64_t bad_client_msgs;
    uint64_t bad_http_paths; /* refused web file paths (traversal, odd characters) */
    uint64_t ring_records, ring_corrupt, bad_records;
    uint64_t idle_spin_hits; /* records found by the backoff idle strategy's polling */
    uint64_t gaps_detected, replays_requested, gap_msgs;
    uint64_t ctl_connects, ctl_errors; /* ctl_errors: error replies other than to hello */
    uint64_t conflated[32];            /* seqs conflated away, per model_type_index */
    uint64_t conflated_frames;         /* `conflated` messages written */
    uint64_t conflate_entries;         /* sessions that started conflating */
    uint64_t acks, acks_limited;       /* client acks passed to the broker / refused (rate) */
    uint64_t redeliveries;             /* notifications re-sent for acknowledgement */
} gw_counters_t;

struct gw_revoke;

typedef struct gw {
    herald_config_t cfg;
    unsigned id;
    model_masks_t masks;      /* cfg's delivery type lists (conflate, ack_required) */
    uint64_t conflate_bytes;  /* config_conflate_bytes(&cfg) */
    jwt_policy_t auth;        /* from cfg's [auth]; rebuilt by a reload */
    uint32_t max_connections; /* effective cap (cfg's, or the fd limit less GW_FD_RESERVE) */
    struct gw_revoke *revoke; /* users locked out (revoke.c) */
    /* how the config was given, to read it again on SIGHUP */
    const char *config_path;
    char **argv;
    int argc;
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
    bool idle_spin_pending; /* runtime.idle backoff: poll the empty ring before sleeping */
    bool want_spin;         /* this pass found the ring empty: spin before arming */
    /* broker control link */
    int ctl_fd;
    gw_ctl_state_t ctl_state;
    uint64_t ctl_gen;
    uint64_t ctl_retry_at_ns;
    uint64_t ctl_backoff_ms;
    bool ctl_recv_pending, ctl_pollout_pending;
    bool ctl_tx_deferred; /* frames queued to go out at the end of the loop pass (acks) */
    uint8_t *ctl_rx;
    size_t ctl_rx_len;
    uint8_t *ctl_tx;
    size_t ctl_tx_len, ctl_tx_cap;
    msgpack_sbuffer ctl_sb;
    log_ratelimit_t ctl_err_rl;
    log_ratelimit_t web_rl;     /* refused web file paths */
    log_ratelimit_t refusal_rl; /* refresh denials and connection-cap refusals (peer-driven) */
    log_ratelimit_t cf_rl;      /* sessions starting to conflate */
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
    uint64_t ticks; /* 1 s ticks so far */
    /* Sessions with output queued during a reap pass, written directly at its end (one
     * send each, no writable callback round trip); see gw_deliver_write_now. */
    gw_session_t *wlist;
    bool in_reap;
    /* scratch */
    unsigned char wbuf[LWS_PRE + GW_WRITE_COALESCE];
    jbuf_t jb;
    msgpack_unpacked unp;
    gw_counters_t c;
    latency_t deliver_lat;              /* timestamp -> socket write accepted, live notifications */
    gw_wtime_t wtimes[GW_WRITE_FRAMES]; /* the notifications of the write in progress */
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
/* Session s opted in (or out): tell the broker (which keeps each user's outstanding set). */
void gw_ctl_send_acks(gw_t *g, gw_session_t *s);
/* A session of user acknowledged seq: queued, sent with the others of this loop pass. */
void gw_ctl_send_ack(gw_t *g, const char *user, uint64_t seq);
/* End of a loop pass: send what gw_ctl_send_ack queued. */
void gw_ctl_flush_deferred(gw_t *g);

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
/* Queue a frame for s with priority prio (0 = at once; control frames use 0). Takes a ref.
 * Past gateway.max_pending_bytes the session is closed with 4008 instead. */
void gw_deliver(gw_t *g, gw_session_t *s, gw_msg_t *m, unsigned prio);
/* The pieces of gw_deliver, for conflation: put m in the queue of prio (the caller's
 * reference moves in; no bound check) and return its absolute position; then, after the
 * pushes, flush at batch_size or join the deadline list, and get the write going. */
uint64_t gw_deliver_push(gw_t *g, gw_session_t *s, gw_msg_t *m, unsigned prio);
void gw_deliver_pushed(gw_t *g, gw_session_t *s, unsigned prio);
/* m does not fit under gateway.max_pending_bytes: count it and close s with 4008. */
void gw_deliver_overflow(gw_t *g, gw_session_t *s, gw_msg_t *m);
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
/* Bytes frame m holds while queued for one session (payload + GW_MSG_OVERHEAD). */
static inline size_t gw_msg_cost(const gw_msg_t *m)
{
    return m->len + GW_MSG_OVERHEAD;
}
/* Free every queued frame of s and unlink it from the deadline lists. */
void gw_deliver_drop(gw_t *g, gw_session_t *s);

/* --- conflate.c: conflation under backpressure (SPEC 14) --- */
/* The conflation key of a notification of user (ulen bytes) and type (model_type_index):
 * user + type + payload.instrument_id (else payload.account_id, else nothing). Never 0. */
uint64_t gw_conflate_key(const char *user, size_t ulen, unsigned type,
                         const msgpack_object *payload);
/* Queue notification m (m->conflatable, key known or readable from the frame) for s, whose
 * pending output is past conflate_bytes: the pending one with its key leaves the queue and
 * a `conflated` frame naming its seq (and those it had replaced) goes in right before m.
 * Takes a reference like gw_deliver; the 4008 bound applies to what remains. */
void gw_conflate_deliver(gw_t *g, gw_session_t *s, gw_msg_t *m);
/* The held queue's slots from held_base on moved to the ready queue from ready_end on. */
void gw_conflate_moved(gw_session_t *s, uint64_t held_base, uint64_t ready_end);
/* Stop conflating s (drop its index); a no-op when it is not. */
void gw_conflate_end(gw_session_t *s);

/* --- frames.c: control frames to clients (JSON or msgpack) --- */
gw_msg_t *gw_frame_welcome(gw_t *g, const gw_session_t *s);
gw_msg_t *gw_frame_range(gw_t *g, bool binary, const char *type, uint64_t from, uint64_t to);
gw_msg_t *gw_frame_subscribed(gw_t *g, bool binary, uint32_t channels);
gw_msg_t *gw_frame_pong(gw_t *g, bool binary);
gw_msg_t *gw_frame_error(gw_t *g, bool binary, const char *code, const char *message);
gw_msg_t *gw_frame_refreshed(gw_t *g, bool binary, uint64_t exp);
gw_msg_t *gw_frame_acks(gw_t *g, bool binary, bool on);

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

/* --- auth.c: token policy, handshake authentication, refresh --- */
/* What an accepted handshake carries into the session. */
typedef struct {
    char user[HERALD_MAX_ID_LEN + 1];
    uint64_t since; /* ?since=S, 0 when absent */
    uint64_t exp_s; /* the token's exp, 0 = none */
    bool acks;      /* ?acks=1: acknowledged delivery (SPEC 14) */
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

/* --- revoke.c: users locked out, and the broker's disconnect request --- */
void gw_revoke_init(gw_t *g);
void gw_revoke_fini(gw_t *g);
/* Is user locked out now (a lock with until in the future)? Cheap when no lock exists. */
bool gw_revoke_locked(gw_t *g, const char *user);
/* Lock user out until until_ns (wall clock ns); a time not in the future lifts the lock. */
void gw_revoke_lock(gw_t *g, const char *user, uint64_t until_ns);
/* Close every session of user with 4003 disconnected; returns how many were open. */
unsigned gw_revoke_disconnect(gw_t *g, const char *user);
/* Call fn for every lock still in force (resync after a broker restart). */
void gw_revoke_each(gw_t *g, void (*fn)(gw_t *g, const char *user, uint64_t until_ns));
/* Forget locks that ran out (called from the tick). */
void gw_revoke_sweep(gw_t *g);

/* --- reload.c: SIGHUP --- */
/* Read the config again (file + -o overrides): apply secrets, log level and limits, keep
 * the sessions; restart-only keys that changed are logged and keep their old values. A
 * config that does not load or check is logged and the old one stays. Returns 0 or -1. */
int gw_reload(gw_t *g);
/* Load the config as given on the command line into cfg (file, then -o overrides, then
 * the pair checks). Returns 0 or -1 with err. */
int gw_config_read(const gw_t *g, herald_config_t *cfg, herald_error_t *err);
/* Take cfg's delivery keys (type masks, the conflation threshold) into g. Returns 0, or -1
 * with err naming the key (model_delivery_masks). */
int gw_delivery_configure(gw_t *g, const herald_config_t *cfg, herald_error_t *err);
/* The connection cap for cfg: gateway.max_connections, or the fd limit less the reserve. */
uint32_t gw_max_connections(const herald_config_t *cfg);

/* --- metrics.c: /metrics, /healthz, /stats --- */
int gw_http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                     size_t len);

#endif
