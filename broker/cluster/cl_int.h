/* cl_int.h - the cluster layer's private state, shared by its files (cluster.h is the API).
 *
 * Threads: the broker thread (API calls, cl_dispatch), the control thread (cl_core.c: leases,
 * takeovers, resolution of writes in doubt, checkpoints, timeouts), the keeper (cl_lease.c:
 * node key and lease renewals, never held up by the control thread) and cnats's delivery
 * threads (acks, forwarded requests, replies, consumed messages). One mutex, cl->mu, guards
 * everything below that more than one of them touches; no cnats call that waits on the
 * network is made while holding it. */
#ifndef HERALD_CL_INT_H
#define HERALD_CL_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <nats/nats.h>

#include "cl_state.h"
#include "log.h"
#include "cluster.h"

#define CL_CKPT_HISTORY 8 /* values kept per checkpoint key (cl_open.c) */
#define CL_MAX_NODES    64
#define CL_NAME_MAX     32
#define CL_ID_MAX       64 /* Nats-Msg-Id we write: "<node>.<epoch>.<seq>" */

/* One entry of the queue to the broker thread. */
typedef enum {
    CLI_APPENDED,
    CLI_OWNER,
    CLI_RECORDS,
    CLI_FORWARDED,
    CLI_FORWARD_DONE,
} cl_item_kind_t;

typedef struct cl_item {
    struct cl_item *next;
    cl_item_kind_t kind;
    unsigned p;
    cl_status_t st;
    bool fail_mark; /* counted in its partition's `failing` until dispatched */
    uint64_t gen;   /* CLI_OWNER gained: ownership generation; CLI_RECORDS: consumer gen */
    void *ctx;      /* round_ctx / req_ctx */
    natsMsg *msg;   /* consumed message / forwarded request / forward answer */
    cl_takeover_t *tk;
    cl_rec_t *recs;
    size_t n, bytes; /* records; bytes counted against the queue bound */
    uint64_t seq, pending;
} cl_item_t;

/* A round waiting to be written, its records encoded (wire format, no message head). */
typedef struct cl_round {
    struct cl_round *next;
    void *ctx;
    cl_status_t doomed; /* not CL_OK: fails with this status at its turn, never written */
    uint32_t n;
    size_t len;
    uint8_t data[];
} cl_round_t;

/* Outcome of one message of a commit. */
typedef enum {
    CL_R_PENDING = 0,
    CL_R_OK,
    CL_R_NO_LEADER,  /* no responders: nobody stored it */
    CL_R_WRONG_LAST, /* another write came first: fenced */
    CL_R_DOUBT,      /* timeout, connection trouble: may or may not be stored */
} cl_result_t;

/* The write in flight for a partition: queued rounds, packed into messages that continue
 * the partition's chain (each expects the stream's last seq; later ones also the previous
 * message's id). */
typedef struct {
    cl_round_t *rounds; /* the rounds it carries, in order */
    natsMsg **msgs;
    cl_result_t *res;
    uint64_t *seqs; /* stream seq of each stored message */
    char (*ids)[CL_ID_MAX];
    size_t n_msgs, n_answered;
    size_t resolved; /* messages known stored, a prefix (resolution works from here) */
    uint64_t base;   /* stream last seq the first message expects */
    bool resolving;  /* in doubt: the control thread retries from `resolved` */
    bool ever_doubt; /* something may have been stored without us knowing */
} cl_commit_t;

typedef struct cl_part {
    struct cl *cl;
    unsigned idx;
    cl_pstate_t state;
    uint64_t gen;        /* ownership generation, bumped at each takeover */
    uint64_t broker_gen; /* the generation the broker has seen (set by cl_dispatch) */
    /* lease (control thread, read under mu by the broker thread's lease check) */
    uint64_t epoch;       /* lease revision when acquired: part of our message ids */
    uint64_t lease_rev;   /* our current revision */
    uint64_t valid_until; /* monotonic ns: the lease is surely ours until then */
    uint64_t renew_at;
    bool release_lease; /* control thread: give the lease back when idle */
    /* as last read from the bucket (control thread) */
    unsigned seen_owner;
    uint64_t seen_inc; /* the holder's incarnation (cl_lease.c) */
    uint64_t seen_rev;
    bool seen_present;
    uint64_t free_since;
    /* the chain */
    uint64_t last_seq;
    char last_id[CL_ID_MAX];
    /* rounds */
    cl_round_t *q_head, *q_tail;
    uint32_t q_count;
    cl_commit_t *commit;
    uint32_t failing; /* failures queued for the broker, not yet dispatched */
    cl_state_t *st;   /* the durable view while acquiring/owning, else NULL */
    bool dirty;       /* changed since the last checkpoint */
    uint64_t ckpt_seq, ckpt_rev, ckpt_at;
    natsSubscription *in_sub; /* herald.in.<p> while owner (control thread) */
    /* delivery */
    natsSubscription *cons;
    uint64_t cons_gen;     /* bumped by start/stop; items of older gens are dropped */
    uint64_t cons_sub_gen; /* the generation `cons` was made for */
    bool cons_want;        /* control thread: (re)start the consumer */
    uint64_t cons_from, cons_since;
    uint64_t consumed; /* last stream seq queued for the broker */
    /* stall watchdog (control thread): consumed as of the last check, and when that was */
    uint64_t cons_check_seq, cons_check_at;
    uint64_t cons_suspect; /* the stream's last round at a silent check, not yet delivered */
    bool cons_restart;     /* replace the subscription, from consumed + 1, same generation */
    bool resolve_slow;     /* control thread: the last resend in doubt got no answer in time */
    /* cl_test_lose_renewals: renewals still to be stored with their answer dropped */
    unsigned test_lose_renewals;
} cl_part_t;

/* A forward waiting for its answer (client side). */
typedef struct cl_freq {
    struct cl_freq *next, *prev; /* FIFO by deadline (all share the timeout) */
    struct cl_freq *hnext;
    uint64_t id, deadline;
    unsigned p;
    unsigned owner; /* the partition's lease holder when it was sent (0 = unknown) */
    uint64_t inc;   /* ... and its incarnation */
    void *ctx;
} cl_freq_t;

#define CL_FREQ_BUCKETS 1024

struct cl_fwd {
    natsMsg *msg;
};

struct cl {
    cl_config_t cfg;
    cl_callbacks_t cb;
    uint64_t incarnation; /* this process among the node's lives (in its lease values) */
    char nats[1024];
    char name[CL_NAME_MAX];       /* lower case: subjects, buckets */
    char stream_pfx[CL_NAME_MAX]; /* upper case: stream names */
    natsConnection *nc;
    jsCtx *js;       /* async appends (ack handler) */
    bool async_used; /* js has published (atomic: cl_append_reconnected) */
    jsCtx *jsc;      /* control: stream admin, sync publishes, reads */
    kvStore *kv;     /* <name>_cluster: node keys and leases, TTL = lease TTL */
    kvStore *ckpt;   /* <name>_ckpt: checkpoints */
    size_t max_body; /* largest round message body */

    pthread_mutex_t mu;
    pthread_cond_t ctl_cond; /* wakes the control thread */
    pthread_cond_t q_cond;   /* consumers wait here while the queue is over its bound */
    pthread_t ctl;
    bool ctl_started, stop, paused, ctl_kick;
    pthread_t keep;           /* the lease keeper (cl_lease.c) */
    pthread_cond_t keep_cond; /* wakes it to stop */
    bool keep_started;
    bool closed; /* the connection's closed callback ran: no delivery thread uses cl */
    int efd;
    cl_item_t *q_head, *q_tail;
    size_t q_bytes;

    unsigned n_parts;
    cl_part_t *parts;

    /* nodes (control thread writes, under mu) */
    unsigned live[CL_MAX_NODES]; /* nodes with a key, less those unreachable past the grace */
    unsigned n_live;
    unsigned reach[CL_MAX_NODES]; /* nodes with a key that answered the last probe */
    unsigned n_reach;
    bool nodes_ok; /* the last listing worked: leases may be taken */
    uint64_t node_put_at, nodes_read_at;
    struct {
        unsigned node;
        uint64_t since; /* monotonic ns the node became unreachable, 0 = reachable */
    } unreach[CL_MAX_NODES];

    /* forwarding */
    natsSubscription *inbox_sub, *node_sub;
    char inbox[64];
    uint64_t next_req;
    cl_freq_t *freq_head, *freq_tail;
    cl_freq_t *freq_tab[CL_FREQ_BUCKETS];

    cl_counters_t c;
    /* one per source of repeated warnings; each used by one thread or under mu */
    log_ratelimit_t rl_renew, rl_ckpt, rl_append, rl_consume, rl_forward;
};

/* Monotonic ns. */
uint64_t cl_now(void);
/* A pthread_cond_timedwait deadline (CLOCK_REALTIME) ms from now: the threads' ticks. */
void cl_tick_deadline(unsigned ms, struct timespec *ts);

/* Queue an item for the broker thread (caller holds mu). */
void cl_push(cl_t *cl, cl_item_t *it);
/* A new queue item (aborts on out-of-memory, like the broker). */
cl_item_t *cl_item_new(cl_item_kind_t kind, unsigned p);
void cl_item_free(cl_item_t *it);
/* Wake the control thread (caller holds mu). */
void cl_kick(cl_t *cl);
/* The control thread (cl_core.c), started by cl_open. */
void *cl_ctl_main(void *arg);

/* Names: stream "<NAME>_P<p>", subjects "<name>.p.<p>.r|o", "<name>.in.<p>", "<name>.node.<n>". */
void cl_stream_name(const cl_t *cl, unsigned p, char *out, size_t cap);
void cl_subject(const cl_t *cl, unsigned p, char kind, char *out, size_t cap);

/* cl_append.c */
void cl_append_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure);
/* Our connection is back: the acks of messages in flight may have gone to the old one (a
 * killed server), so they are taken back from cnats and put in doubt now rather than after
 * ack_wait_ms; resolution resends them (same msg-id: a stored one answers "duplicate"). */
void cl_append_reconnected(cl_t *cl);
/* Start the next commit of p if rounds wait and none is in flight (caller holds mu; the
 * messages are published after mu is released: returns the commit to publish or NULL). */
cl_commit_t *cl_commit_next(cl_t *cl, cl_part_t *part);
void cl_commit_publish(cl_t *cl, cl_part_t *part, cl_commit_t *c);
/* Start giving p back (caller holds mu): the broker is told at once, rounds already handed
 * over are still written, the lease is released when none is left (control thread). */
void cl_release_begin(cl_t *cl, cl_part_t *part);
/* Leave ownership of p (caller holds mu): queue the owner-lost callback, fail what waits. */
void cl_step_down(cl_t *cl, cl_part_t *part, cl_status_t why, const char *reason);
/* Control thread: retry the messages of a commit in doubt. */
void cl_resolve(cl_t *cl, cl_part_t *part);
void cl_commit_free(cl_commit_t *c);
/* Map a JetStream publish outcome to a result. */
cl_result_t cl_result_of(natsStatus s, jsErrCode code);

/* cl_lease.c (control thread) */
void cl_nodes_tick(cl_t *cl);
/* Rendezvous choice for p over the live nodes, or those reachable now (caller holds mu). */
unsigned cl_preferred(const cl_t *cl, unsigned p, bool reachable);
void cl_leases_tick(cl_t *cl);
/* The keeper thread: node key and lease renewals (started by cl_open). */
void *cl_keep_main(void *arg);
int cl_lease_release(cl_t *cl, cl_part_t *part);

/* cl_takeover.c (control thread) */
int cl_takeover(cl_t *cl, cl_part_t *part);
void cl_checkpoint_tick(cl_t *cl, cl_part_t *part, bool force);

/* cl_forward.c */
int cl_forward_open(cl_t *cl);
void cl_forward_in(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure);
void cl_forward_timeouts(cl_t *cl);
/* Answer CL_UNAVAILABLE now to the forwards sent to owner (0: every forward): its connection
 * is gone, or ours is, so no answer can come. */
void cl_forward_fail(cl_t *cl, unsigned owner);
/* p's lease was read (caller holds mu): answer CL_UNAVAILABLE to the forwards sent to an
 * earlier process of the node that holds it now (that process is gone: it was restarted). */
void cl_forward_moved(cl_t *cl, unsigned p);
void cl_forward_close(cl_t *cl); /* unsubscribe (the probe subject is cl_close's) */
void cl_forward_free(cl_t *cl);  /* after the connection is closed */

/* cl_consume.c */
void cl_consume_tick(cl_t *cl, cl_part_t *part);
void cl_consume_close(cl_t *cl, cl_part_t *part); /* unsubscribe */

#endif
