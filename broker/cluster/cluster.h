/* cluster.h - herald's cluster layer on NATS JetStream (protocol.md 11, docs/cluster.md): partition
 * ownership by KV lease, fenced appends of drain rounds, forwarding to owners, delivery of
 * the partition streams.
 *
 * The broker is single-threaded; cnats calls back on threads of its own. Everything this
 * module reports goes through a queue: cl_fd() becomes readable when it holds something, and
 * cl_dispatch(), called on the broker thread, runs the queued callbacks there. Every cl_*
 * function below except cl_open/cl_close/cl_info may be called from a callback.
 *
 * Durability contract, per partition p:
 *   - cl_append_round(p, records, round_ctx) stores the round in p's stream (quorum ack);
 *     cb.appended(round_ctx, status) reports it, rounds of one partition in call order.
 *   - seqs in a round continue the ones before it: the owner's sequencer runs ahead of the
 *     stream by the rounds in flight. When a round fails (any status but CL_OK), every later
 *     round of p already handed over fails with it, and so does every cl_append_round(p)
 *     called before the broker has seen the last of those failures: roll back each failed
 *     round's seqs (a user's last seq to the first seq it had in the round, minus one) in the
 *     appended callback, and nothing sequenced on top of a lost round is ever written.
 */
#ifndef HERALD_CLUSTER_H
#define HERALD_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef struct cl cl_t;
typedef struct cl_fwd cl_fwd_t; /* a forwarded publish waiting for its answer */

typedef enum {
    CL_OK = 0,      /* stored on a quorum of the stream's replicas */
    CL_UNAVAILABLE, /* not stored: no writable stream leader (or no owner) now; retry later */
    CL_FENCED,      /* not stored: this node does not own the partition (any more) */
    CL_UNKNOWN,     /* outcome unknown (no answer before the lease ran out), ownership lost:
                     * the stream decides; the next owner's rebuild and every consumer see it */
} cl_status_t;

/* One sequenced notification. Strings are not NUL-terminated. */
typedef struct {
    const char *user;
    const char *message_id;
    const uint8_t *bytes; /* the canonical notification, its seq already patched in */
    uint64_t seq;
    uint32_t len;
    uint8_t user_len, id_len; /* 1..64 each */
    uint8_t prio;
} cl_rec_t;

/* State handed to a new owner: what the stream (and the last checkpoint) say. */
typedef struct {
    const char *user;
    uint64_t seq;
    uint8_t user_len;
} cl_user_seq_t;

typedef struct {
    const char *message_id;
    uint64_t seq;
    uint64_t fp; /* cl_config_t.fingerprint of the notification, 0 = unknown */
    uint8_t id_len;
} cl_id_seq_t;

/* What a notification is, for telling a repeated message_id from a reused one (the broker's
 * dedup fingerprint): computed from a record's canonical bytes, never 0. */
typedef uint64_t (*cl_fingerprint_fn)(const uint8_t *bytes, size_t len);

typedef struct {
    const cl_user_seq_t *users; /* every user of the partition with their last seq */
    size_t n_users;
    const cl_id_seq_t *ids; /* the partition's last dedup_window message ids, oldest first */
    size_t n_ids;
    uint64_t stream_seq;  /* the stream position the state is at (this node's marker) */
    uint64_t lease_epoch; /* the lease revision this ownership started with */
    uint64_t replayed;    /* stream messages read on top of the checkpoint */
    uint64_t ckpt_seq;    /* stream position of the checkpoint used (0 = none) */
} cl_takeover_t;

typedef struct {
    void *ctx; /* first argument of every callback */
    /* A round handed to cl_append_round is done: see the durability contract above. */
    void (*appended)(void *ctx, unsigned p, void *round_ctx, cl_status_t st);
    /* Ownership of p changed. Gained (tk != NULL): the state is valid during the call only;
     * appends are accepted from now on. Lost (tk == NULL, why = the status its pending
     * rounds got): appends to p fail with CL_FENCED from now on. */
    void (*owner)(void *ctx, unsigned p, const cl_takeover_t *tk, cl_status_t why);
    /* Records of one stream message of p, in stream order, each message exactly once per
     * cl_consume_start (valid during the call). pending = messages left in the stream after
     * this one when it was sent (0: caught up). */
    void (*records)(void *ctx, unsigned p, uint64_t stream_seq, const cl_rec_t *recs, size_t n,
                    uint64_t pending);
    /* A publish another node forwarded to this owner of p: answer with cl_forward_reply. */
    void (*forwarded)(void *ctx, unsigned p, cl_fwd_t *req, const uint8_t *frame, size_t len);
    /* The answer to cl_forward: CL_OK with the owner's response bytes, or CL_UNAVAILABLE
     * (nobody owns p now, or no answer within forward_timeout_ms) with resp NULL. */
    void (*forward_done)(void *ctx, void *req_ctx, cl_status_t st, const uint8_t *resp, size_t len);
} cl_callbacks_t;

typedef struct {
    const char *nats;              /* cluster.nats: comma-separated server URLs */
    unsigned node_id;              /* cluster.node_id, >= 1, unique in the cluster */
    unsigned partitions;           /* cluster.partitions; the broadcast user has one more */
    unsigned replicas;             /* cluster.replicas */
    uint32_t history_age_s;        /* stream MaxAge (broker.history_age_s) */
    uint32_t dedup_window;         /* message ids a takeover hands over, per partition */
    const char *name;              /* prefix of streams, buckets, subjects (default "herald") */
    cl_fingerprint_fn fingerprint; /* kept with every message id a takeover hands over; NULL:
                                    * ids are handed over with fp 0 */
    /* Timings in ms; 0 = the default in brackets. */
    uint32_t lease_ttl_ms;       /* [15000] longer than a JetStream leader election */
    uint32_t tick_ms;            /* [250] control loop period */
    uint32_t ack_wait_ms;        /* [5000] an append unanswered this long is in doubt */
    uint32_t forward_timeout_ms; /* [10000] */
    uint32_t ckpt_interval_ms;   /* [5000] checkpoint of a changed partition */
    uint32_t probe_grace_ms;     /* [3000] an owner unreachable this long loses its lease */
    uint32_t open_timeout_ms;    /* [15000] cl_open retries stream creation this long */
    bool test_no_lease_check;    /* tests: skip the local lease check before appending */
} cl_config_t;

/* Counters (monotonic) and gauges for /metrics and heraldctl cluster. */
typedef struct {
    uint64_t rounds_ok, rounds_unavailable, rounds_fenced, rounds_unknown;
    uint64_t records_appended, messages_appended, bytes_appended;
    uint64_t commits, commit_retries, in_doubt; /* JetStream writes; retried; ever in doubt */
    uint64_t takeovers, stepdowns, leases_forced, lease_renew_errors;
    uint64_t lease_readbacks; /* renewals refused for their revision, found stored by us */
    uint64_t checkpoints, checkpoint_errors;
    uint64_t forwarded_out, forwarded_in, forward_unavailable;
    uint64_t consumed_messages, consumed_records, corrupt_messages;
    uint64_t consumer_restarts; /* stalled consumers replaced (see cl_consume.c) */
    uint64_t nats_reconnects, nats_disconnects;
} cl_counters_t;

typedef enum { CL_P_FOLLOWER = 0, CL_P_ACQUIRING, CL_P_OWNER, CL_P_RELEASING } cl_pstate_t;

typedef struct {
    cl_pstate_t state;
    unsigned owner;          /* node id holding the lease as last seen, 0 = none */
    unsigned preferred;      /* rendezvous choice over the live nodes */
    uint64_t lease_rev;      /* revision of the lease entry as last seen */
    uint64_t stream_last;    /* last stream seq this node wrote or consumed */
    uint64_t consumed;       /* last stream seq delivered through cb.records, 0 = not consuming */
    uint32_t rounds_waiting; /* rounds handed over, not yet completed */
    bool in_doubt;           /* a write is being resolved (appends refused meanwhile) */
} cl_pinfo_t;

/* Start the cluster layer: connect, create the streams and buckets if missing, announce this
 * node and start competing for partitions (no partition is owned when this returns; cb.owner
 * tells). Returns 0, or a negative HERR_* with err naming what failed (server, stream). */
int cl_open(cl_t **out, const cl_config_t *cfg, const cl_callbacks_t *cb, herald_error_t *err);

/* Hand over owned partitions (waits up to a second for rounds in flight), leave, free.
 * Callbacks still queued are dropped. */
void cl_close(cl_t *cl);

/* The descriptor to poll for reading; readable while callbacks are queued. */
int cl_fd(const cl_t *cl);

/* Run the queued callbacks on this thread. Returns how many ran. */
size_t cl_dispatch(cl_t *cl);

/* The partition of a user id (the broadcast user "*" has partition cl_partitions()). */
unsigned cl_partition_of(const cl_t *cl, const char *user, size_t len);
/* Partitions including the broadcast one: cluster.partitions + 1. */
unsigned cl_partitions(const cl_t *cl);

/* True while this node owns p and may append to it (owner, lease valid, nothing failing or
 * in doubt): publishes for p are accepted here. */
bool cl_owns(cl_t *cl, unsigned p);

/* Append a drain round's records of partition p (n >= 1, copied before this returns) to p's
 * stream. Rounds queue behind the one in flight and are written together when it is done.
 * Always reports through cb.appended, possibly from a later cl_dispatch. */
void cl_append_round(cl_t *cl, unsigned p, const cl_rec_t *recs, size_t n, void *round_ctx);

/* Forward a publish body (msgpack frame) to the owner of p; cb.forward_done answers.
 * Returns 0, or -HERR_IO if it could not be sent (then no callback comes). */
int cl_forward(cl_t *cl, unsigned p, const void *frame, size_t len, void *req_ctx);

/* Answer a forwarded publish with the response bytes; frees req. */
void cl_forward_reply(cl_t *cl, cl_fwd_t *req, const void *resp, size_t len);

/* Deliver p's records through cb.records from stream seq from_seq (1 = the oldest kept),
 * or from since_ns (wall clock) when from_seq is 0. Replaces a running delivery of p.
 * Returns 0 or -HERR_IO. */
int cl_consume_start(cl_t *cl, unsigned p, uint64_t from_seq, uint64_t since_ns);
void cl_consume_stop(cl_t *cl, unsigned p);

/* Snapshot of p / of the counters, from any thread. */
void cl_info(cl_t *cl, unsigned p, cl_pinfo_t *out);
void cl_counters(cl_t *cl, cl_counters_t *out);

/* This node's id and the live nodes last seen (up to cap), for heraldctl cluster. */
unsigned cl_nodes(cl_t *cl, unsigned *ids, unsigned cap);

/* Tests only: stop the lease work (node key, renewals, takeovers, checkpoints, resolution
 * of writes in doubt) while paused, as a stalled control thread would; delivery and forward
 * timeouts go on. */
void cl_test_pause(cl_t *cl, bool paused);

/* Tests only: the next n lease renewals of p are written, but their answers are dropped and
 * they count as timed out, as when the bucket's leader stores a renewal and dies before
 * answering (the renewal after them then carries a revision that is no longer the last). */
void cl_test_lose_renewals(cl_t *cl, unsigned p, unsigned n);

#endif
