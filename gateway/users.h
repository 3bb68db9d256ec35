/* users.h - the users and sessions this gateway serves: their records, the user table (by
 * user_id), the session table (by session id), the list of every session and the broadcast
 * user. The tables are chained hash tables that double when the load passes 1. */
#ifndef HERALD_GW_USERS_H
#define HERALD_GW_USERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fifo.h"
#include "herald_limits.h"

typedef enum {
    SESS_WAIT_READY = 0, /* open sent (or to send); waiting for REC_SESSION_READY */
    SESS_LIVE,           /* welcome sent; receives live notifications */
} gw_sess_state_t;

struct gw_user;

/* A WebSocket session: the lws per-session data of the herald.* protocols. Each group of
 * fields names the module that writes it. */
typedef struct gw_session {
    /* session.c */
    struct lws *wsi;
    struct gw_user *user;
    uint64_t id;
    uint64_t exp_s; /* the token's exp (wall clock seconds); 0 = none. Checked by the tick */
    char id_str[24];
    bool binary;   /* herald.msgpack */
    bool deflate;  /* permessage-deflate negotiated: lws must frame (compress) each write */
    bool filtered; /* a subscribe/unsubscribe set `channels` */
    bool acks;     /* opted in to acknowledged delivery (?acks=1 or the acks op; protocol.md 14) */
    uint32_t channels;
    uint32_t resume_tokens;    /* resume ops left in the bucket (gateway.resumes_per_minute) */
    uint64_t resume_refill_ns; /* when the bucket last gained a token */
    uint32_t ack_tokens;       /* ack ops left in the bucket */
    uint64_t ack_refill_ns;
    char *rx; /* a client message being joined from its fragments */
    size_t rx_len;
    bool rx_overflow;
    uint64_t last_rx_ns, last_ping_ns;
    unsigned bad_count;
    uint64_t bad_window_ns;
    /* control.c */
    bool open_sent; /* `open` went to the current broker connection */
    /* records.c (and session.c's resume op) */
    gw_sess_state_t state;
    uint64_t since;                /* resume point at connect (0 = none) */
    uint64_t live_from;            /* first user seq delivered live */
    uint64_t bcast_live_from;      /* first broadcast seq delivered live */
    uint64_t have_from;            /* lowest seq this session holds contiguously up to live */
    uint64_t replay_lo, replay_hi; /* accepted session-addressed replay range (hi 0 = none) */
    uint64_t replay_next; /* next replayed seq not yet delivered (dedups a re-sent replay) */
    bool resume_pending;  /* reply `resumed` at REC_REPLAY_END */
    /* users.c */
    struct gw_session *unext, *uprev; /* user's sessions */
    struct gw_session *anext, *aprev; /* every session */
    struct gw_session *hnext;         /* id hash chain */
    /* deliver.c */
    struct {
        struct gw_session *next, *prev;
        uint64_t deadline_ns;
        bool on;
    } dl[HERALD_PRIORITIES - 1]; /* flush deadline lists for P1..P3 */
    gw_fifo_t ready;             /* to write now */
    gw_fifo_t held;              /* P1..P3 waiting for their flush */
    size_t pending_bytes;
    struct gw_conflate *cf; /* conflation index while pending_bytes is past conflate_bytes */
    bool writable_requested;
    bool on_wlist;            /* queued for a direct write at the end of this pass */
    bool w_urgent;            /* ... with a P0 notification: written before the others */
    struct gw_session *wnext; /* that list's link */
    bool want_ping;
    uint16_t close_code; /* != 0: close at the next writable callback */
    const char *close_reason;
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
    unsigned n_open; /* sessions not closing (close_code 0): what max_sessions_per_user bounds */
    unsigned n_acks; /* sessions opted in to acknowledged delivery (the broker's count) */
    /* records.c */
    bool known;       /* last is valid */
    uint64_t last;    /* last seq delivered in order */
    uint64_t want_to; /* highest seq known to exist */
    bool filling;     /* a session-0 replay is outstanding */
    uint64_t fill_to;
    gw_held_t *held;
    size_t n_held, cap_held;
} gw_user_t;

typedef struct gw_users gw_users_t;

/* An empty registry; session ids start above first_id (unique across restarts when it is
 * taken from the clock). Aborts when out of memory. */
gw_users_t *gw_users_new(uint64_t first_id);
/* Free the registry, its users and their held records (sessions belong to lws). */
void gw_users_free(gw_users_t *t);

/* The user with id (len bytes) in the table, or NULL (the broadcast user is not in it). */
gw_user_t *gw_users_find(gw_users_t *t, const char *id, size_t len);
/* The broadcast user ("*"): its sessions are every session. */
gw_user_t *gw_users_bcast(gw_users_t *t);
/* Every session, newest first (follow anext). */
gw_session_t *gw_users_all(gw_users_t *t);
size_t gw_users_n_sessions(const gw_users_t *t);
size_t gw_users_n_users(const gw_users_t *t);
/* Call fn for every user of the table (not the broadcast user). */
void gw_users_each(gw_users_t *t, void (*fn)(gw_user_t *u, void *ctx), void *ctx);

/* Give s the next session id and link it to user_id (created if new, open and counted in
 * n_open and n_acks), to the list of every session and to the session table. */
void gw_users_add(gw_users_t *t, gw_session_t *s, const char *user_id);
/* Unlink s from its user, the list and the table; drop the user when it has no session
 * left. s->user is NULL afterwards. */
void gw_users_remove(gw_users_t *t, gw_session_t *s);
/* The session with id, or NULL. */
gw_session_t *gw_users_session(gw_users_t *t, uint64_t id);

#endif
