/* broker.h - herald-broker's core: the process state every module is handed (config, loop,
 * counters, hooks, the 1 s tick) and a pointer to each module's private state. Each module
 * declares its functions and types in its own header (pipeline.h, users.h, route.h ...).
 *
 * Which module may call which (-> lists them; a module calls only modules below it; ^ marks
 * the hooks, bk_hooks_t below, through which a lower module reaches up):
 *
 *   main.c       command line, start-up, signals, the 1 s tick         (the entry point)
 *   core.c       sets the hooks (bk_core_hooks)
 *   loop.c       the epoll loop: fds, timers, end-of-pass hooks (loop.h)
 *   ---------------------------------------------------------------- may call everyone below
 *   api.c        HTTP API    -> http ingest pipeline stats revoke presence acks webui clustered
 *   stats.c      /api/stats, /metrics (read-only over the modules)
 *   reload.c     SIGHUP             -> acks pipeline
 *   control.c    gateways' control  -> revoke acks native route users
 *   clustered*.c cluster mode: forwards, rounds to JetStream, consumers (cluster/ below it)
 *                                   -> ingest pipeline journal native route users dedup items
 *   revoke.c     locks, disconnects -> native route
 *   native.c     sockets, framing   -> guard ingest pipeline          ^control
 *   guard.c      peer uid, api key
 *   http*.c      HTTP/1.1 server                                      ^api
 *   ingest.c     publishes in: decode, dedup, bounds, enqueue
 *                                   -> pipeline journal acks dedup users items
 *   pipeline.c   queues, requests, the drain round
 *                                   -> journal acks route dedup users items
 *                                                            ^native ^http ^clustered
 *   journal*.c   durability, replay, compaction -> dedup users items (jfile.c, jsum.c)
 *                                                            ^clustered
 *   acks.c       acknowledged delivery -> route users
 *   presence.c   last seen of offline users -> route users
 *   route.c      gateways, rings, backlog, replay -> users items
 *   users.c      users, floors, histories, routes -> items        ^presence ^route ^journal
 *   dedup.c      the message_id window -> items (jsum.c)
 *   items.c      notification records and their allocator
 *   webui.c      the web UI's files and JSON
 *
 * The same map with the gateway's: docs/architecture.md "Modules". */
#ifndef HERALD_BROKER_H
#define HERALD_BROKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "config.h"
#include "err.h"
#include "http.h"
#include "heartbeat.h"
#include "json.h"
#include "latency.h"
#include "log.h"
#include "loop.h"
#include "model.h"
#include "ring.h"
#include "rtdir.h"

#define BK_MAX_GATEWAYS  256
#define BK_MAX_FRAME     (16u * 1024 * 1024) /* native frame bound */
#define BK_ROUND_BUDGET  4096                /* notifications sequenced per drain round */
#define BK_MAX_BATCH     10000u /* items per batch request; a larger one is refused whole */
#define BK_BACKLOG_BYTES (64u * 1024 * 1024) /* per-gateway backlog bound beyond the ring */
#define BK_TX_PAUSE      (8u * 1024 * 1024)  /* stop reading a connection with more unsent output */

typedef struct bk_req bk_req_t;
typedef struct bk_user bk_user_t;
typedef struct bk_dedup_entry bk_dedup_entry_t;
typedef struct bk_waiter bk_waiter_t;
typedef struct bk_item bk_item_t;
typedef struct bk_gateway bk_gateway_t;
typedef struct bk_conn bk_conn_t;

typedef struct {
    uint64_t accepted, sent, deduplicated, dropped;
    uint64_t queue_full[HERALD_PRIORITIES];
    uint64_t invalid, too_large, bad_frames, unauthorized;
    uint64_t ring_drops, backlogged;
    uint64_t http_requests, native_frames, ctrl_frames, ctrl_errors;
    uint64_t journal_bytes, journal_compactions, journal_corrupt, journal_errors;
    uint64_t replays, gaps;
    uint64_t replay_overflows; /* replays answered with a gap: the backlog was full */
    uint64_t read_pauses;      /* connections paused for unread responses (backpressure) */
    uint64_t drain_rounds;     /* journal appends (one per round) */
    /* HTTP server */
    uint64_t http_connections, http_refused, http_errors, http_timeouts, http_idle_closes;
    uint64_t http_responses[6]; /* by status class: [2] = 2xx ... [5] = 5xx */
    uint64_t disconnects, disconnect_closed, disconnect_timeouts; /* POST /api/disconnect */
    uint64_t reloads, reload_errors;                              /* SIGHUP */
    uint64_t id_conflicts;    /* message_ids reused for another user, type or payload */
    uint64_t over_capacity;   /* publishes refused at broker.max_memory */
    uint64_t users_forgotten; /* users idle past history_age_s, freed */
    uint64_t ctrl_refused;    /* control.sock peers of another uid, refused */
    uint64_t native_refused;  /* broker.sock peers of another uid, refused */
} bk_counters_t;

/* Where a publish of one user goes (bk_cluster_where). */
typedef enum {
    BK_CL_LOCAL,       /* this node owns the partition: today's pipeline */
    BK_CL_FORWARD,     /* another node does: forward it */
    BK_CL_UNAVAILABLE, /* nobody can take it now (failover, write in doubt): 503 unavailable */
    BK_CL_BUSY,        /* owned here, but too much of it waits for JetStream: queue_full */
} bk_cl_where_t;

/* Calls from a lower module up to a higher one. The core (core.c: bk_core_hooks) sets them,
 * so that no module includes or calls a module above it. */
typedef struct {
    /* http.c: a complete request (api.c's bk_api_handle) */
    void (*http_request)(struct broker *b, struct bk_http_msg *m, const bk_http_request_t *rq);
    /* native.c: a control connection's frame, and its close (control.c) */
    void (*ctrl_frame)(struct broker *b, bk_conn_t *c, const uint8_t *body, size_t len);
    void (*ctrl_closed)(struct broker *b, bk_conn_t *c);
    /* pipeline.c: every item of req has its answer; its owner is a native connection (its
     * responses go out at the end of the pass) or an HTTP request (answered now) */
    void (*native_done)(struct broker *b, bk_conn_t *c);
    void (*http_done)(struct broker *b, bk_req_t *req);
    /* pipeline.c in cluster mode (b->cl set; clustered.c): a publish another node forwarded
     * has every answer; where a publish goes, its forward to the owner, the drain round */
    void (*fwd_done)(struct broker *b, bk_req_t *req);
    bk_cl_where_t (*cl_where)(struct broker *b, const char *user, size_t len, bool forwarded,
                              unsigned *part);
    void (*cl_forward_add)(struct broker *b, bk_req_t *req, unsigned part, uint32_t idx,
                           const uint8_t *rec, size_t len);
    void (*cl_forward_flush)(struct broker *b, bk_req_t *req);
    void (*cl_round)(struct broker *b, bk_item_t *const *items, size_t n);
    /* journal: a partition's consumer position read back, and the positions to snapshot
     * (clustered.c; none without cluster mode) */
    void (*cl_pos_restore)(struct broker *b, uint32_t p, uint64_t seq);
    unsigned (*cl_pos_count)(const struct broker *b);
    uint64_t (*cl_pos)(const struct broker *b, unsigned p);
    /* users.c: a user's first route came (online) or its last went (offline: presence.c);
     * gateway gw has delta users more (route.c); floor slot was raised to seq (journal.c) */
    void (*user_online)(struct broker *b, const char *id, size_t len);
    void (*user_offline)(struct broker *b, const char *id, size_t len);
    void (*gateway_users)(struct broker *b, unsigned gw, int delta);
    void (*floor_raised)(struct broker *b, uint32_t slot, uint64_t seq);
} bk_hooks_t;

typedef struct broker {
    /* the core: configuration, loop, hooks, counters */
    herald_config_t cfg;
    model_masks_t masks; /* cfg's delivery type lists (acks.c keeps them current) */
    rtdir_t rt;          /* runtime.dir, checked and open (sockets) */
    loop_t *loop;
    bk_hooks_t hooks;  /* set by bk_core_hooks */
    loop_timer_t tick; /* once a second: ring heartbeats, HTTP timeouts, sweeps */
    bk_counters_t c;
    latency_t ingest_lat; /* timestamp -> durable and written to the rings, per priority */
    uint64_t mem_fixed;   /* broker.max_memory: dedup arrays and floors, allocated at start */
    log_ratelimit_t rl_bad, rl_journal;
    uint64_t started_ns;
    hb_t hb; /* liveness (heartbeat.h): beaten by the event loop, and during journal replay */
    /* each module's own state, private to it */
    struct bk_pipeline *pipe;     /* priority queues, drain round (pipeline.c) */
    struct bk_users *users;       /* user table, floors, histories, routes (users.c) */
    struct bk_dedup *dedup;       /* the message_id window (dedup.c) */
    struct bk_routing *routing;   /* gateways and their rings (route.c) */
    struct bk_journal *jr;        /* the journal files (journal*.c) */
    struct bk_native *native;     /* native and control connections (native.c) */
    struct bk_http *http;         /* the HTTP server (http*.c) */
    jbuf_t api_out;               /* api.c's response scratch */
    struct bk_acks *acks;         /* acknowledged delivery (acks.c) */
    struct bk_presence *presence; /* last seen of users offline (presence.c) */
    struct bk_revoke *revoke;     /* locks and disconnects in flight (revoke.c) */
    struct bk_cluster *cl;        /* cluster mode (clustered.c), NULL for a single node */
} broker_t;

#endif
