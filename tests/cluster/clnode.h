/* clnode.h - a stand-in for the broker on top of one cl_t, for the cluster tests: a per-user
 * sequencer that rolls back failed rounds as the broker will, and records of everything the
 * cluster layer reported (ownership, acknowledged records, consumed records, forwards). */
#ifndef HERALD_TEST_CLNODE_H
#define HERALD_TEST_CLNODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster.h"

#define CLN_MAXP 64

typedef struct {
    char user[65], id[65];
    uint64_t seq;
} cln_rec_t;

typedef struct {
    cln_rec_t *v;
    size_t n, cap;
} cln_recs_t;

/* A round handed to cl_append_round, until its answer. */
typedef struct {
    unsigned p;
    bool done;
    cl_status_t st;
    uint64_t answered; /* 1 for the first round answered on its node, 2 for the next... */
    size_t n;
    cln_rec_t recs[];
} cln_round_t;

typedef struct {
    void *ctx;
    bool done;
    cl_status_t st;
    char resp[256];
} cln_fwd_t;

typedef struct clnode {
    cl_t *cl;
    unsigned id;
    /* ownership as reported */
    bool owns[CLN_MAXP];
    unsigned gains[CLN_MAXP], losses[CLN_MAXP];
    cln_recs_t tk_users[CLN_MAXP], tk_ids[CLN_MAXP]; /* last takeover: seq in .seq */
    uint64_t tk_ckpt[CLN_MAXP], tk_replayed[CLN_MAXP];
    /* sequencer */
    cln_recs_t users; /* user + last seq (id unused) */
    /* results */
    cln_recs_t acked;
    uint64_t rounds_ok, rounds_failed[4];
    cln_recs_t consumed[CLN_MAXP];
    uint64_t consumed_last[CLN_MAXP];
    bool consumed_disorder;
    size_t pad;     /* bytes of filler added to each record appended */
    uint64_t order; /* rounds answered so far: each round gets its place in `answered` */
    /* forwards: answered here with "ack:<frame>" unless silent */
    bool forward_silent;
    unsigned forwarded_in;
    cl_fwd_t *held[16]; /* unanswered (silent) forwards, answered empty at close */
    unsigned n_held;
} clnode_t;

/* Test timings: short leases so expiry tests run in seconds. */
void clnode_config(cl_config_t *cfg, const char *url, unsigned node_id, unsigned partitions,
                   unsigned replicas);

/* The cluster layer's defaults (15 s lease, 250 ms tick, 3 s probe grace...). */
void clnode_production_timings(cl_config_t *cfg);

/* Open a node (cl_open with clnode's callbacks). Returns 0 or -1 (err printed). */
int clnode_open(clnode_t *n, const cl_config_t *cfg);
void clnode_close(clnode_t *n);

/* Dispatch for up to ms milliseconds across nodes (NULL entries skipped). */
void clnode_pump(clnode_t **nodes, size_t count, int ms);

/* Pump until cond(ctx) holds or ms pass; returns whether it held. */
bool clnode_wait(clnode_t **nodes, size_t count, int ms, bool (*cond)(void *), void *ctx);

/* Sequence count records of user (ids "<prefix>-<seq>") in one round of its partition and
 * hand it over. The round's answer is in the returned round (free() it). */
cln_round_t *clnode_append(clnode_t *n, const char *user, size_t count, const char *prefix);
/* A round of several users: users[i] gets count records each. */
cln_round_t *clnode_append_users(clnode_t *n, const char *const *users, size_t n_users,
                                 size_t count, const char *prefix);

/* Publish one notification with message id `id` as the broker does: an id the partition's
 * window knows (from the last takeover, or acknowledged here since) is a duplicate, answered
 * with its original seq (*dup_seq, NULL returned); else a round of one record is handed over. */
cln_round_t *clnode_publish_id(clnode_t *n, const char *user, const char *id, uint64_t *dup_seq);

/* Pump until the round is answered (or ms pass); returns its status or -1. */
int clnode_round_wait(clnode_t **nodes, size_t count, cln_round_t *r, int ms);

/* The sequencer's last seq of user (0 = none). */
uint64_t clnode_user_seq(clnode_t *n, const char *user);

/* Forward frame to p's owner; the answer lands in f. */
int clnode_forward(clnode_t *n, unsigned p, const char *frame, cln_fwd_t *f);

void cln_recs_push(cln_recs_t *r, const char *user, size_t ulen, const char *id, size_t idlen,
                   uint64_t seq);
void cln_recs_free(cln_recs_t *r);

#endif
