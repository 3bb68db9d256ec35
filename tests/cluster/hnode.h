/* hnode.h - real herald nodes on a real NATS cluster for the cluster system tests: a node is a
 * herald-broker and one herald-gateway with cluster.* set (private runtime dir, shm prefix and
 * ports, tests/procs.h); a load of HTTP publishes spread over nodes that retries refusals with
 * the same message_id and keeps what every request was answered; WebSocket sessions that
 * check what they receive. Helpers assert with Check. */
#ifndef HERALD_TEST_HNODE_H
#define HERALD_TEST_HNODE_H

#include <check.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "procs.h"
#include "wsclient.h"

#define HN_SECRET "cluster-system-test-secret"
#define HN_WAIT   30000 /* bound on waits for expected events (elections take ~10 s) */

typedef struct {
    unsigned id; /* cluster.node_id */
    procs_env_t env;
    uint16_t http, ws;
    pid_t broker, gw;
    char bin_broker[512], bin_gw[512];
} hnode_t;

/* Runtime dir, ports and config of node id on the NATS servers nats_url, with partitions. */
void hnode_init(hnode_t *n, unsigned id, const char *nats_url, unsigned partitions);
/* Start the broker (its ports answer once it is in the cluster), then its gateway (until
 * /healthz says it is attached). */
void hnode_start(hnode_t *n);
void hnode_start_broker(hnode_t *n);
/* Send sig to the broker; SIGKILL and SIGTERM also reap it. */
void hnode_signal_broker(hnode_t *n, int sig);
/* Stop gateway and broker (SIGTERM, then SIGKILL), keeping the runtime dir. */
void hnode_stop(hnode_t *n);

/* GET path from the broker; the body parsed as JSON (NULL when not 200). */
json_t *hnode_get(hnode_t *n, const char *path);
/* Node id owning partition p as n's /api/cluster says (0 = none), whether n itself has
 * taken it (owned), and its consumer's lag. */
unsigned hnode_owner(hnode_t *n, unsigned p, bool *owned_here);
/* The last stream seq n's consumer of p delivered (/api/cluster "delivered_to"). */
uint64_t hnode_delivered_to(hnode_t *n, unsigned p);
/* Wait until the running nodes[] all see each other live and every partition held by
 * exactly one of them, the one rendezvous hashing prefers, as they all agree. Returns true,
 * or false after ms. */
bool hnode_settled(hnode_t **nodes, unsigned count, unsigned partitions, int ms);

/* The partition of a user (common/shard.c, as the broker computes it). */
unsigned hnode_partition(const char *user, unsigned partitions);

/* POST one system_notice of user with message_id id (title: variant) to n. Returns the HTTP
 * status (-1 when the connection failed); seq, duplicate, error code and Retry-After are
 * filled from the answer when their pointers are not NULL. */
int hnode_publish(hnode_t *n, const char *user, const char *id, const char *variant, uint64_t *seq,
                  bool *dup, char *error, size_t cap, bool *retry_after);

/* A session of user on n's gateway (query appended to /ws), after its welcome. */
wsc_t *hnode_client(hnode_t *n, const char *user, const char *query);

/* --- sessions that check what they receive --- */
typedef struct {
    wsc_t *c;
    char user[32];
    uint64_t last;                       /* last seq received */
    uint64_t received;                   /* notifications */
    uint64_t disorder;                   /* a seq that was not last + 1 */
    uint64_t gaps;                       /* "gap" messages */
    uint64_t bcast_last, bcast_disorder; /* the same for broadcasts (user "*") */
    bool resumed;                        /* a "resumed" message came */
} hsink_t;

/* Read everything that arrived (waiting up to ms for the first message). */
void hsink_drain(hsink_t *s, int ms);
/* Drain until s->last reaches seq or ms pass; returns whether it did. */
bool hsink_wait(hsink_t *s, uint64_t seq, int ms);

/* --- a publish load over HTTP --- */
#define HL_MAX_CONNS 8
#define HL_MAX_PARTS 16

typedef struct {
    char user[24], id[40];
    unsigned part;
    uint64_t seq;    /* its seq once acknowledged */
    bool acked, dup; /* acknowledged (dup: answered duplicate: an earlier try was stored) */
    unsigned tries;  /* requests sent */
    uint64_t due_ms; /* not before (a retry) */
} hl_item_t;

typedef struct {
    int fd;
    unsigned node;  /* index into hload_t.nodes */
    long item;      /* in flight, -1 = idle */
    uint64_t at_ms; /* sent at */
    uint64_t retry_ms;
    char buf[8192];
    size_t len;
} hl_conn_t;

typedef struct {
    long refusing_since; /* ms the current run of refusals started, 0 = none */
    long longest;        /* longest run of refusals, ms */
    uint64_t refused;    /* 503 answers */
    uint64_t acked;
} hl_part_t;

typedef struct {
    hnode_t *nodes[4];
    unsigned n_nodes;
    bool node_down[4]; /* not used as an entry (killed) */
    unsigned partitions;
    hl_item_t *items;
    size_t n_items, next; /* next never sent */
    size_t *retry;        /* items to send again */
    size_t n_retry;
    unsigned rate; /* first sends per second */
    uint64_t t0_ms;
    hl_conn_t conns[HL_MAX_CONNS];
    unsigned n_conns;
    hl_part_t part[HL_MAX_PARTS];
    uint64_t ok, refused, refused_no_retry_after, conn_errors, other_errors;
    char other[256]; /* the first unexpected answer */
} hload_t;

/* n_items notifications for users "<prefix>0".."<prefix><users-1>" (round robin), sent at
 * rate/s through conns connections spread over nodes[]. */
void hload_init(hload_t *l, hnode_t **nodes, unsigned n_nodes, unsigned partitions,
                const char *prefix, unsigned users, size_t n_items, unsigned rate, unsigned conns);
/* Drive the load for up to ms (sends, answers, retries). */
void hload_step(hload_t *l, int ms);
/* Every item acknowledged. */
bool hload_done(const hload_t *l);
/* Acknowledged items of user (their seqs must be 1..count). */
size_t hload_user_acked(const hload_t *l, const char *user);
void hload_free(hload_t *l);

/* Monotonic milliseconds. */
uint64_t hn_now_ms(void);

#endif
