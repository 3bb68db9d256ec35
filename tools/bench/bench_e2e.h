/* bench_e2e.h - herald-bench e2e: the run shared by the publisher thread, the WebSocket
 * session pool (main thread) and the report. */
#ifndef HERALD_BENCH_E2E_H
#define HERALD_BENCH_E2E_H

#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <msgpack.h>

#include "hist.h"
#include "config.h"
#include "model.h"

#define BENCH_MAX_GATEWAYS  64
#define BENCH_MAX_NODES     8
#define BENCH_MAX_OVERRIDES 32
#define BENCH_TICK_NS       100000000ull /* delivery timeline resolution: 100 ms */

typedef struct {
    /* options (set by bench_e2e_main, read-only afterwards) */
    unsigned sessions;
    unsigned users;
    unsigned gateways;
    uint64_t messages;
    double rate;                     /* notifications/s, 0 = as fast as acknowledged */
    unsigned slice_us;               /* --slice-us */
    uint64_t slice_ns;               /* with a rate: one frame per slice (0 = as they fall due) */
    unsigned mix[HERALD_PRIORITIES]; /* percent per priority, sums to 100 */
    unsigned payload_bytes;          /* approximate size of a published notification (msgpack) */
    unsigned batch;                  /* notifications per request frame */
    unsigned window;                 /* request frames in flight */
    bool ingress_http;               /* one notification per HTTP request (--ingress http) */
    bool idle;                       /* --idle: connect, publish nothing, report memory */
    unsigned pub_conns;              /* --ingress http: keep-alive connections */
    unsigned pipeline;               /* --ingress http: requests in flight per connection */
    double timeout_s;                /* publish start -> give up waiting for deliveries */
    unsigned src_addrs;              /* loopback source addresses 127.0.0.1.. to spread over */
    bool spawn;
    bool self_test;
    unsigned ack_share;     /* --ack-share P: percent published as margin_call (ack_required) */
    bool acks;              /* --acks: sessions opt in (acks=1) and acknowledge margin calls */
    unsigned slow_readers;  /* --slow-readers K: extra sessions that read very slowly */
    unsigned slow_rate;     /* position updates per second for them, in all */
    unsigned slow_read_bps; /* bytes per second each of them reads */
    bool use_lws;           /* receive with the libwebsockets client instead of the lean receiver */
    bool use_poll;          /* with use_lws: lws's poll() loop instead of libev (epoll) */
    const char *config_path;
    const char *overrides[BENCH_MAX_OVERRIDES]; /* "section.key=value" for children too */
    /* --node: the nodes of a running cluster (target mode): sessions spread over them, the
     * publisher on node pub_node (--pub-node, 1-based on the command line) */
    const char *node_paths[BENCH_MAX_NODES];
    unsigned n_nodes, pub_node;
    herald_config_t *node_cfg; /* one per node, the overrides applied */
    unsigned n_overrides;
    herald_config_t cfg;   /* what the herald under test runs with */
    char broker_addr[320]; /* native ingress address for libherald */
    char run_nonce[20];    /* makes message ids unique across runs against one herald */

    /* users: user k has id user_ids[k] and user_sessions[k] sessions */
    char (*user_ids)[24];
    uint32_t *user_sessions;

    /* publisher thread writes, main reads after joining (or the atomics meanwhile) */
    uint8_t *acked;            /* bit i: notification i acknowledged ok */
    _Atomic uint64_t expected; /* deliveries owed: sum of sessions of acked notifications
                                  (a progress counter: relaxed, no data hangs on it) */
    _Atomic bool pub_done;     /* release: the publisher's counters are final */
    uint64_t pub_sent;         /* notifications sent in request frames */
    uint64_t pub_acked;
    uint64_t pub_duplicate;            /* acknowledged as duplicate (ids are unique: a bug) */
    uint64_t pub_refused[HERR__COUNT]; /* by herr_index */
    uint64_t pub_t_refused[2];         /* mono ns of the first and last refusal received */
    uint64_t pub_t_start;              /* mono ns of the first send */
    uint64_t pub_t_end;                /* mono ns of the last response */
    double pub_cpu_s;                  /* publisher thread CPU */
    char pub_error[256];               /* why the publisher stopped early ("" = it did not) */

    /* receive side (main thread) */
    hist_t lat[HERALD_PRIORITIES]; /* publish -> client, ns */
    uint64_t received;             /* unique notification deliveries */
    uint64_t duplicates;           /* same notification twice on one session */
    uint64_t out_of_order;         /* a seq not above the last of its priority on the session */
    uint64_t foreign;              /* notification for another user, or an unknown index */
    uint64_t other_frames;         /* error, gap, ... frames */
    uint64_t malformed;
    uint64_t frame_bytes;  /* bytes of notification frames */
    uint64_t t_last_rx;    /* mono ns of the last notification */
    uint64_t t_origin;     /* mono ns just before the publisher starts (set by main) */
    uint32_t *rx_per_tick; /* deliveries per BENCH_TICK_NS since t_origin */
    unsigned n_ticks;
    double rx_cpu_s;    /* receive loop CPU during the publish phase */
    uint64_t acks_sent; /* acks the receivers sent (--acks) */

    /* --slow-readers (bench_slow.c), final once bslow_stop returned */
    uint64_t slow_published, slow_notifications, slow_conflated_msgs, slow_conflated_seqs;
    uint64_t slow_gap_seqs; /* named in gap messages (not in history any more) */
    unsigned slow_closed, slow_closed_4008, slow_alive;
    uint64_t slow_unaccounted; /* updates an open slow session neither got nor was told of */

    volatile sig_atomic_t *stop; /* set by SIGINT/SIGTERM */
} bench_run_t;

/* The user of publish index i and that notification's index among its user's ones. */
static inline unsigned bench_user_of(const bench_run_t *r, uint64_t i)
{
    return (unsigned)(i % r->users);
}
static inline uint64_t bench_rank_of(const bench_run_t *r, uint64_t i)
{
    return i / r->users;
}
/* How many notifications user k receives in total. */
static inline uint64_t bench_user_msgs(const bench_run_t *r, unsigned k)
{
    return r->messages > k ? (r->messages - k + r->users - 1) / r->users : 0;
}

/* The gateway session s connects to: host and port, and which gateway (of its node) it is. */
void bench_session_gateway(const bench_run_t *r, unsigned s, const char **host, unsigned *port,
                           unsigned *gateway);

/* Publisher thread body (arg: bench_run_t *). Sends r->messages notifications, collects
 * every response, fills the pub_* fields, then sets pub_done. Native ingress (libherald),
 * or with r->ingress_http one JSON notification per HTTP request (bench_http1.c). */
void *bench_pub_thread(void *arg);

/* Encode notifications [first, first+n) as one msgpack array (a request frame body) into
 * sb, replacing its contents; stamps every bench_t0 with t0. Returns the body length. */
size_t bench_pub_encode(const bench_run_t *r, uint64_t first, unsigned n, uint64_t t0,
                        msgpack_sbuffer *sb);

/* Priority of publish index i under r->mix (deterministic per index). */
unsigned bench_pub_priority(const bench_run_t *r, uint64_t i);
/* Is publish index i a margin_call (--ack-share; deterministic per index)? */
bool bench_pub_is_ack(const bench_run_t *r, uint64_t i);

/* Load r->config_path over the defaults, then apply r->overrides in order. Returns 0, or
 * -1 with the failing file or key on stderr. */
int bench_load_config(bench_run_t *r);

/* CPU seconds (user+system) of the calling thread. */
double bench_thread_cpu_s(void);

/* True once the publisher is done and every expected delivery has arrived. */
static inline bool bench_rx_done(const bench_run_t *r)
{
    /* acquire: pairs with the publisher's release; `expected` is then final */
    return atomic_load_explicit(&r->pub_done, memory_order_acquire) &&
           r->received >= atomic_load_explicit(&r->expected, memory_order_relaxed);
}

#endif
