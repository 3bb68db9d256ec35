/* gw.h - herald-gateway's core: the process state every module is handed (config, clocks,
 * counters, scratch buffers) and a pointer to each module's private state.
 *
 * Which module may call which (a module calls only those below it; nothing calls up):
 *
 *   main.c          command line, lws context, libev loop, signals        (the entry point)
 *   loop.c          the event-loop core: io_uring reaps, tags, timer, tick, lws callbacks
 *   ---------------------------------------------------------------- may call everyone below
 *   session.c       WebSocket protocol: open/close, client ops, heartbeat
 *   http.c          HTTP side: the /ws upgrade gate, /metrics /stats /healthz, web files
 *   reload.c        configuration at start and on SIGHUP
 *   metrics.c       the counter table, Prometheus and JSON        (read-only over modules)
 *   drain.c         the ring: attach, drain in batches, doorbell, wake-by promise
 *   records.c       the ring record stream: readiness, fan-out, gap fills, replays
 *   control.c       the broker link (hello, requests, resync); calls up only through the
 *                   hooks the core gives it (attach the ring, resync sessions)
 *   auth.c          token policy, handshake check, refresh
 *   revoke.c        locked users, the broker's disconnect
 *   deliver.c       output queues, batching deadlines, slow-consumer bound, writes
 *   conflate.c      the conflation index of a session under backpressure
 *   frames.c        control frames to clients (JSON or msgpack)
 *   uring.c         the io_uring instance: adoption into lws, SQEs, the one timeout
 *   users.c         users and sessions: records and their tables
 *   clientop.c, msg.c, fifo.h   client op decoding, shared frames, output queues
 *
 * Every module includes this header and its own; none of this header's types is a module's.
 * The full edge list is in docs/gateway.md. */
#ifndef HERALD_GW_H
#define HERALD_GW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "config.h"
#include "heartbeat.h"
#include "json.h"
#include "jwt.h"
#include "log.h"
#include "model.h"

#define GW_NS_PER_MS 1000000ull
#define GW_NS_PER_S  1000000000ull
/* A held batch whose deadline falls within this of a wake-up is flushed in that wake-up
 * (protocol.md 6 bounds the wait, not its minimum): a deadline right after a doorbell wake then
 * costs no wake-up of its own, and one timer wake flushes every deadline near it. 2 ms: at
 * 20 k/s the P0 doorbells come about every 1.5 ms per gateway, and with 1 ms the P1..P3
 * deadlines between them needed timer wake-ups of their own (+20 % context switches). */
#define GW_FLUSH_SLACK_NS (2 * GW_NS_PER_MS)
/* The flush timer fires this much before the nearest deadline (its pass flushes what is
 * due within the slack, so that deadline too): the timer's own lateness on a busy host then
 * never holds a batch past its flush delay (protocol.md 6: "at most"). */
#define GW_TIMER_EARLY_NS (1 * GW_NS_PER_MS)
_Static_assert(GW_TIMER_EARLY_NS <= GW_FLUSH_SLACK_NS, "a timer pass must flush its deadline");

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

/* The counters of /metrics and /stats: each module adds to its own, metrics.c reads them. */
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

struct lws_context;
struct lws_vhost;

typedef struct gw {
    /* configuration (reload.c replaces it on SIGHUP) */
    herald_config_t cfg;
    unsigned id;
    model_masks_t masks;      /* cfg's delivery type lists (conflate, ack_required) */
    uint64_t conflate_bytes;  /* config_conflate_bytes(&cfg) */
    jwt_policy_t auth;        /* from cfg's [auth] */
    uint32_t max_connections; /* effective cap (cfg's, or the fd limit less the reserve) */
    const char *config_path;  /* how the config was given, to read it again on SIGHUP */
    char **argv;
    int argc;
    /* the loop (loop.c) */
    struct lws_context *lws;
    struct lws_vhost *vh;
    uint64_t now_ns;     /* CLOCK_MONOTONIC at the start of the current pass or callback */
    uint64_t tick_at_ns; /* the next 1 s tick */
    uint64_t ticks;      /* 1 s ticks so far */
    hb_t hb;             /* liveness, beaten at the end of every reap */
    /* each module's private state, made by its _init */
    struct gw_uring *uring;
    struct gw_drain *drain;
    struct gw_control *ctl;
    struct gw_users *users;
    struct gw_deliver *deliver;
    struct gw_revoke *revoke;
    /* scratch, used within one call */
    jbuf_t jb;
    msgpack_unpacked unp;
    gw_counters_t c;
} gw_t;

#endif
