/* broker.h - herald-broker's shared state: notifications in flight, users, gateways, connections. */
#ifndef HERALD_BROKER_H
#define HERALD_BROKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "config.h"
#include "err.h"
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

/* A response slot waiting for a notification's seq (the original or a duplicate). */
typedef struct bk_waiter {
    struct bk_waiter *next;
    bk_req_t *req;
    uint32_t idx;
    bool duplicate;
} bk_waiter_t;

/* One accepted notification: queued, then (after sequencing) kept in its user's history. */
typedef struct bk_item {
    struct bk_item *next;    /* priority queue link, then history link */
    bk_user_t *user;         /* set at ingest (users are never freed) */
    bk_dedup_entry_t *dedup; /* its dedup entry while queued (NULL if evicted) */
    bk_req_t *req;           /* the publishing request (NULL once answered) */
    uint32_t idx;            /* its slot in req */
    bk_waiter_t *waiters;    /* duplicates waiting for the same seq */
    uint64_t seq;            /* 0 while queued */
    uint64_t at_ns;          /* wall clock when sequenced (history age) */
    uint64_t ts_ns;          /* the notification's timestamp (ingest latency) */
    uint32_t len;            /* canonical bytes */
    uint8_t prio;
    bool ack; /* a delivery.ack_required type: acks.c may track it once routed */
    uint8_t bytes[];
} bk_item_t;

/* Per-item outcome of a request. */
typedef struct {
    uint64_t seq;
    uint8_t done;
    bool duplicate;
    bool msg_owned;      /* message is malloc'd (else static) */
    herr_t code;         /* HERR_OK when accepted */
    const char *message; /* error text, or NULL */
    char message_id[HERALD_MAX_ID_LEN + 1];
} bk_result_t;

/* One request frame (native) or HTTP publish body. Owned by its connection's response FIFO
 * (native) or its HTTP session; orphaned (owner gone) requests free themselves once their
 * last pending item completes. */
struct bk_req {
    bk_req_t *next;           /* connection's response FIFO */
    struct bk_conn *conn;     /* native owner, NULL if orphaned or HTTP */
    struct bk_http_msg *http; /* HTTP owner, NULL if orphaned or native */
    struct bk_clin *fwd;      /* cluster: a publish forwarded by another node (clustered.c) */
    bool batch;               /* the body was an array: answer an array */
    bool orphan;
    bool forwarded;    /* cluster: came from another node; never forwarded again */
    herr_t frame_code; /* whole-frame error (malformed, not map/array) */
    char frame_msg[200];
    uint32_t n, pending;
    bk_result_t res[];
};

/* A user (or the broadcast user "*"): sequence, history, routes. Forgotten (freed) by
 * bk_users_sweep once idle past history_age_s, never while an item or a route refers to it. */
struct bk_user {
    struct bk_user *hnext;
    uint64_t last_seq;
    uint64_t last_ns; /* wall clock of its last sequenced notification or session change */
    uint32_t queued;  /* its items still in a priority queue (they point at it) */
    bk_item_t *hist_head, *hist_tail; /* oldest .. newest */
    uint32_t hist_count;
    uint16_t n_routes, cap_routes;
    struct bk_route *routes; /* gateways with a session of this user, refcounted */
    bool active;             /* counted in active_users */
    uint8_t id_len;
    uint16_t cl_part1; /* cluster: its partition + 1 (0 = not computed yet) */
    /* Cluster mode: last_seq is the last seq delivered here (history, rings); cl_seq the last
     * one this node sequenced while it owns the user's partition (0 otherwise). A user with
     * a cl_seq is not forgotten. */
    uint64_t cl_seq;
    uint32_t hash; /* of id: compared before the id on lookup, kept for rehashing */
    char id[HERALD_MAX_ID_LEN + 1];
};

struct bk_route {
    uint16_t gw;
    uint32_t refs; /* open sessions of the user on that gateway */
};

/* A record waiting because the ring was full. */
typedef struct bk_backlog_rec {
    struct bk_backlog_rec *next;
    uint32_t type, len;
    uint8_t bytes[];
} bk_backlog_rec_t;

typedef struct bk_gateway {
    unsigned id;
    ring_t *ring;         /* kept open after detach for re-attach and inspection */
    struct bk_conn *ctrl; /* control connection while attached */
    bool attached;
    bool dirty;        /* written this round, needs publish */
    uint64_t due_ns;   /* this round: when its most urgent record is due (0 = at once) */
    uint32_t deferred; /* notifications written since the consumer was last awake */
    pid_t pid;
    uint32_t users; /* users routed here */
    bk_backlog_rec_t *bl_head, *bl_tail;
    uint64_t bl_bytes, bl_count;
    uint64_t drops, records, attaches;
    log_ratelimit_t drop_rl;
} bk_gateway_t;

typedef enum { CONN_LISTEN_NATIVE, CONN_LISTEN_CTRL, CONN_NATIVE, CONN_CTRL } conn_kind_t;

/* Where a native connection is with the api key (guard.c). */
enum {
    BK_AUTH_FIRST,    /* its first frame may be an auth frame (checked) or a publish */
    BK_AUTH_REQUIRED, /* native TCP with broker.api_key: the first frame must be auth */
    BK_AUTH_DONE,
};

typedef struct bk_conn {
    loop_io_t io;
    struct broker *b;
    conn_kind_t kind;
    uint8_t *rx;
    size_t rx_len, rx_cap;
    uint8_t *tx;
    size_t tx_off, tx_len, tx_cap;
    bk_req_t *rq_head, *rq_tail;
    struct bk_conn *prev, *next; /* every native/control connection and listener */
    struct bk_conn *dirty_next;  /* on the broker's flush list */
    bool dirty, closing;
    bool reading;     /* READ interest is on */
    bool paused;      /* not reading: its peer left more than BK_TX_PAUSE of responses unread */
    bk_gateway_t *gw; /* control connections: the gateway after hello */
    uint8_t auth;     /* native: BK_AUTH_*, from bk_guard_accept */
} bk_conn_t;

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

typedef struct bk_queue {
    bk_item_t *head, *tail;
    uint32_t count, cap;
} bk_queue_t;

/* Seq floors of forgotten users: a user created again starts after its slot's floor, the
 * highest last seq of any user forgotten into that slot (slot = a fixed FNV-1a of the id,
 * not the keyed table hash: the journal keeps the floors). 512 KiB. */
#define BK_FLOOR_SLOTS (1u << 16)

typedef struct broker {
    herald_config_t cfg;
    model_masks_t masks;          /* cfg's delivery type lists (acks.c keeps them current) */
    struct bk_acks *acks;         /* acknowledged delivery (acks.h) */
    struct bk_presence *presence; /* last seen of users offline (presence.h) */
    rtdir_t rt;                   /* runtime.dir, checked and open (sockets) */
    loop_t *loop;
    struct bk_http *http; /* http.c */
    jbuf_t api_out;       /* api.c's response scratch */
    bk_counters_t c;
    latency_t ingest_lat; /* timestamp -> durable and written to the rings, per priority */
    bk_queue_t q[HERALD_PRIORITIES];
    /* users */
    bk_user_t **utab;
    size_t utab_size, n_users, active_users;
    bk_user_t *bcast;
    uint64_t *floors;    /* BK_FLOOR_SLOTS seq floors (see BK_FLOOR_SLOTS) */
    size_t sweep_bucket; /* where bk_users_sweep goes on */
    bool loading;        /* the journal is being replayed: users get no floor */
    /* memory bound (broker.max_memory): what is counted against it */
    uint64_t mem_fixed; /* dedup arrays and floors, allocated at start */
    uint64_t mem_users; /* user records and their route arrays */
    /* dedup */
    struct bk_dedup *dedup;
    /* gateways */
    bk_gateway_t *gws[BK_MAX_GATEWAYS];
    unsigned active_gateways;
    /* journal */
    struct bk_journal *jr;
    /* drain bookkeeping */
    bool drain_pending;         /* bk_drain runs at the end of this pass */
    loop_timer_t journal_retry; /* while the journal is failing: probe every 100 ms */
    loop_timer_t backlog_timer; /* while a gateway has a backlog: retry every 1 ms */
    loop_timer_t tick;          /* once a second: ring heartbeats, HTTP timeouts */
    bool backlog_scheduled;
    bk_conn_t *dirty; /* connections with responses to flush */
    bk_conn_t *conns; /* native.c: every connection and listener */
    log_ratelimit_t rl_full, rl_bad, rl_journal;
    struct bk_revoke *revoke; /* locks and disconnects in flight (revoke.c) */
    struct bk_cluster *cl;    /* cluster mode (clustered.c), NULL for a single node */
    uint64_t started_ns;
    hb_t hb; /* liveness (heartbeat.h): beaten by the event loop, and during journal replay */
} broker_t;

/* --- pipeline.c --- */
void bk_queue_init(broker_t *b);
bk_req_t *bk_req_new(uint32_t n);
/* Take a whole request body (msgpack map or array of maps) into a new request. */
bk_req_t *bk_ingest_body(broker_t *b, const uint8_t *body, size_t len);
/* The same for a body another node forwarded (cluster mode): never forwarded again. */
bk_req_t *bk_ingest_forwarded(broker_t *b, const uint8_t *body, size_t len);
/* One slot of req got its answer: hand the request back to its owner when all did. */
void bk_req_slot_done(broker_t *b, bk_req_t *req);
/* Answer slot idx with an error: msg is copied (bk_result_fail) or, for a string literal,
 * referenced (bk_result_fail_static: no allocation per refused item). */
void bk_result_fail(bk_req_t *req, uint32_t idx, herr_t code, const char *msg);
void bk_result_fail_static(bk_req_t *req, uint32_t idx, herr_t code, const char *msg);
void bk_req_orphan(broker_t *b, bk_req_t *req);
void bk_req_free(bk_req_t *req);
void bk_pipeline_init(broker_t *b);
/* Ask for a drain round at the end of this loop pass. */
void bk_drain_schedule(broker_t *b);
/* The drain round (end-of-pass hook): seqs, one journal write, then rings and answers. */
void bk_drain(broker_t *b);
size_t bk_queue_total(const broker_t *b);
/* Cluster mode: a round's items (bk_cluster_round) were stored on a quorum (code HERR_OK:
 * dedup learns their seqs, producers get them) or not (newest first: with rollback their
 * users' cl_seq go back, ids leave the dedup window, producers get code and msg). Frees
 * the items; their histories are fed by the consumers. */
void bk_round_done(broker_t *b, bk_item_t *const *items, size_t n, herr_t code, const char *msg,
                   bool rollback);

/* --- items.c --- */
/* Bytes of live items (header + canonical bytes): queued and in histories. */
extern uint64_t bk_items_live;
/* An item with room for len canonical bytes (its len field is the caller's to set, and
 * must equal len when it is freed). Aborts on out-of-memory, like every broker malloc. */
bk_item_t *bk_item_new(uint32_t len);
void bk_item_free(bk_item_t *it);
/* Return the item chunks' memory (at shutdown). */
void bk_items_release(void);
/* Zeroed memory on 2 MiB-aligned pages advised as transparent huge pages (for big, randomly
 * probed tables); never fails (aborts). Free with the same size. */
void *bk_huge_alloc(size_t size);
void bk_huge_free(void *p, size_t size);

/* --- dedup.c --- */
int bk_dedup_init(broker_t *b, uint32_t window);
void bk_dedup_free(broker_t *b);
/* Hash of an id of len bytes: computed once per notification, given to find and insert. */
uint32_t bk_dedup_hash(const char *id, size_t len);
/* Start loading the table bucket of hash h, and the entry the insert `ahead` inserts from
 * now will write and the bucket of the entry it will evict, so a find/insert a little later
 * does not stall on them. */
void bk_dedup_prefetch(broker_t *b, uint32_t h, uint32_t ahead);
/* The window's entry for id (len bytes, hash h), or NULL. */
bk_dedup_entry_t *bk_dedup_find(broker_t *b, const char *id, size_t len, uint32_t h);
/* Insert (evicting the oldest when full); item is the queued notification or NULL, fp its
 * fingerprint (0 = unknown). With an item the caller has already found id absent; without
 * (journal replay) an existing entry is updated in place. */
bk_dedup_entry_t *bk_dedup_insert(broker_t *b, const char *id, size_t len, uint32_t h, uint64_t seq,
                                  bk_item_t *item, uint64_t fp);
/* What a notification is, for telling a repeat from a conflicting reuse of its message_id:
 * a 64-bit digest (jsum64) of its message_type, user_id and payload, read from its
 * canonical record rec[0..len). Never 0. Stable across processes and versions: the journal
 * keeps it. */
uint64_t bk_dedup_fp(const uint8_t *rec, size_t len);
/* The same from the record's parts (codec_encode_parts at ingest: no walk). */
uint64_t bk_dedup_fp_parts(const codec_parts_t *pt);
uint64_t bk_dedup_fp_of(const bk_dedup_entry_t *e);
uint64_t bk_dedup_seq(const bk_dedup_entry_t *e);
bk_item_t *bk_dedup_item(const bk_dedup_entry_t *e);
/* Remove e from the window (its notification was never published: a failed round). */
void bk_dedup_forget(broker_t *b, bk_dedup_entry_t *e);
void bk_dedup_sequenced(bk_dedup_entry_t *e, uint64_t seq);
typedef void (*bk_dedup_visit_fn)(const char *id, uint64_t seq, uint64_t fp, void *ctx);
void bk_dedup_each(broker_t *b, bk_dedup_visit_fn fn, void *ctx);
size_t bk_dedup_count(broker_t *b);
/* Bytes of the window's arrays (fixed at start). */
size_t bk_dedup_bytes(broker_t *b);

/* --- users.c --- */
int bk_users_init(broker_t *b);
/* The user id[0..len), created if absent when create; NULL if not found or len is over
 * HERALD_MAX_ID_LEN. The _hashed form takes bk_user_hash(id, len) computed earlier. */
bk_user_t *bk_user_get(broker_t *b, const char *id, size_t len, bool create);
bk_user_t *bk_user_get_hashed(broker_t *b, const char *id, size_t len, uint32_t hash, bool create);
uint32_t bk_user_hash(const char *id, size_t len);
/* Start loading the first user of hash's chain (ingest prefetches before it looks up). */
void bk_user_prefetch(broker_t *b, uint32_t hash);
void bk_history_append(broker_t *b, bk_user_t *u, bk_item_t *it);
void bk_history_trim(broker_t *b, bk_user_t *u, uint64_t now_ns);
/* First seq the history still holds (last_seq + 1 if empty). */
uint64_t bk_history_first(broker_t *b, bk_user_t *u, uint64_t now_ns);
uint32_t bk_route_refs(const bk_user_t *u, unsigned gw);
void bk_route_add(broker_t *b, bk_user_t *u, unsigned gw, uint32_t n);
void bk_route_del(broker_t *b, bk_user_t *u, unsigned gw, uint32_t n);
void bk_routes_forget_gateway(broker_t *b, unsigned gw);
void bk_users_free(broker_t *b);
/* One step of the sweep, from the 1 s tick (nothing is done per publish): visits the next
 * max(1024, users / 30) users, so every user is seen within about 30 s; trims their
 * history by age, and forgets users idle past history_age_s with no session, nothing
 * queued and no history left, raising their floor slot to their last seq (and appending
 * that to the journal). Returns the users forgotten. */
size_t bk_users_sweep(broker_t *b, uint64_t now_ns);
/* The floor slot of a user id. */
uint32_t bk_floor_slot(const char *id, size_t len);
void bk_floor_raise(broker_t *b, uint32_t slot, uint64_t seq);

/* Memory counted against broker.max_memory. */
static inline uint64_t bk_mem_used(const broker_t *b)
{
    return b->mem_fixed + b->mem_users + bk_items_live;
}

/* --- route.c --- */
#define BK_BACKLOG_RETRY_NS 1000000ull /* a gateway's backlog is retried every 1 ms */
void bk_route_init(broker_t *b);
bk_gateway_t *bk_gateway_attach(broker_t *b, unsigned id, pid_t pid, herald_error_t *err);
void bk_gateway_detach(broker_t *b, bk_gateway_t *g);
/* Write a record to a gateway (ring, or its backlog when full). NOTIFY records past the
 * backlog bound are dropped and counted; other records are never dropped. */
void bk_gw_write(broker_t *b, bk_gateway_t *g, uint32_t type, const void *a, uint32_t alen,
                 const void *c, uint32_t clen);
void bk_route_item(broker_t *b, const bk_item_t *it);
void bk_rings_publish(broker_t *b);
void bk_backlogs_drain(broker_t *b);
void bk_rings_heartbeat(broker_t *b);
void bk_gateways_free(broker_t *b);
/* Replay (from, to] of user u into gateway g for session (0 = user-level), with REC_GAP
 * when history no longer covers the start, then REC_REPLAY_END(from+1, to). */
void bk_replay(broker_t *b, bk_gateway_t *g, bk_user_t *u, uint64_t session, uint64_t after,
               uint64_t to, bool end_marker);

/* --- journal.c --- */
int bk_journal_open(broker_t *b, herald_error_t *err);
void bk_journal_append(broker_t *b, const bk_item_t *it);
/* Cluster mode: a delivered notification (history and seq, no dedup entry on replay), and
 * the stream position partition p's consumer reached (after its records). */
void bk_journal_append_hist(broker_t *b, const bk_item_t *it);
void bk_journal_clpos(broker_t *b, uint32_t p, uint64_t stream_seq);
/* Make what this round appended durable (when the file cannot grow for it, a compaction into
 * the other file may take it instead). Returns 0, or -HERR_IO: the round is not in the
 * journal (bk_journal_discard it; bk_journal_failing from then on). */
int bk_journal_flush(broker_t *b);
/* Compact when the file passed its bound: after the round is in the histories and the dedup
 * window (round_publish), so that the snapshot holds it. */
void bk_journal_compact_due(broker_t *b);
/* Once a second: keep the current file allocated and mapped ahead of the append rate. */
void bk_journal_tick(broker_t *b);
/* True from a failed flush until bk_journal_probe finds the file can grow again. */
bool bk_journal_failing(const broker_t *b);
/* Drop the records appended since the last good flush (the failed round). */
void bk_journal_discard(broker_t *b);
/* While failing: try to grow the file; 0 once it works again, else -HERR_IO. */
int bk_journal_probe(broker_t *b);
void bk_journal_close(broker_t *b);
/* Record that floor slot was raised to seq (a user was forgotten); in the file by the next
 * flush. */
void bk_journal_floor(broker_t *b, uint32_t slot, uint64_t seq);

/* --- native.c --- */
int bk_native_listen(broker_t *b, herald_error_t *err);
/* Close every native/control connection and listener (shutdown). */
void bk_native_close(broker_t *b);
void bk_conn_mark_dirty(broker_t *b, bk_conn_t *c);
void bk_conns_flush(broker_t *b);
/* Queue a control-plane reply frame (already framed) on c. */
void bk_conn_send(broker_t *b, bk_conn_t *c, const void *buf, size_t len);
/* The response frame body of a completed request (one result, or an array), replacing sb. */
void bk_native_pack_response(const bk_req_t *req, msgpack_sbuffer *sb);

/* --- guard.c --- */
/* A connection just accepted (fd): on a unix socket the peer must be our uid or root
 * (SO_PEERCRED; broker.sock with runtime.group is left to the socket's mode). Returns -1
 * (refused: counted, logged rate-limited; the caller closes fd) or the BK_AUTH_* state the
 * connection starts in. */
int bk_guard_accept(broker_t *b, int fd, bool ctrl);
/* A native connection's frame while c->auth != BK_AUTH_DONE. Returns 1 for an auth frame
 * with the right key (answered {"ok":true}), 0 for a frame to handle as a publish, -1 when
 * the connection is refused (answered unauthorized, c->closing set, counted, logged). */
int bk_guard_auth_frame(broker_t *b, bk_conn_t *c, const uint8_t *body, size_t len);
/* Whether key[0..len) is broker.api_key (true when none is set), in constant time. */
bool bk_guard_key_ok(broker_t *b, const char *key, size_t len);

/* --- control.c --- */
void bk_ctrl_frame(broker_t *b, bk_conn_t *c, const uint8_t *body, size_t len);
void bk_ctrl_closed(broker_t *b, bk_conn_t *c);

/* --- http.c, api.c: see http.h --- */
msgpack_sbuffer *bk_http_scratch(broker_t *b);

/* --- stats.c --- */
void bk_stats_json(broker_t *b, jbuf_t *out);
void bk_metrics_text(broker_t *b, jbuf_t *out);

extern broker_t *g_broker;

#endif
