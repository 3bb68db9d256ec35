/* clustered_int.h - the state of the broker's cluster mode, shared by clustered.c (life
 * cycle, ownership, rounds, delivery), clustered_fwd.c (forwarding) and clustered_stat.c
 * (status). clustered.h is the broker's interface to it. */
#ifndef HERALD_BK_CLUSTERED_INT_H
#define HERALD_BK_CLUSTERED_INT_H

#include "broker.h"
#include "cluster.h"
#include "clustered.h"
#include "users.h"

#define CL_FWD_FRAME_MAX (512u * 1024) /* records per forward request (NATS max_payload: 1 MB) */
#define CL_FWD_HEAD      5u            /* msgpack array32 header of a forward frame */
#define CL_INFLIGHT_MAX  50000u        /* records of a partition handed over, not yet answered */

/* One partition as the broker sees it. */
typedef struct {
    bool owned;         /* gained and not lost, as cb.owner said */
    bool memo_owns;     /* cl_owns() in the loop pass memo_pass - 1 */
    uint64_t memo_pass; /* 0 = no memo */
    uint64_t gen;       /* bumped at every gain and loss: older rounds do not roll back */
    uint32_t inflight;  /* records of rounds handed to cl_append_round, not yet answered */
    uint64_t pos;       /* last stream seq delivered here (journaled with its records) */
    uint64_t pending;   /* stream messages after pos when it was sent: the consumer's lag */
    uint64_t delivered; /* records written to histories and rings */
    uint64_t skipped;   /* records whose seq this node had already delivered */
    /* the forward being collected for the request in ingest (bk_cluster_forward_add) */
    uint8_t *fw_buf; /* CL_FWD_HEAD bytes of array header, then canonical records */
    size_t fw_len, fw_cap;
    uint32_t *fw_idx; /* the request's slot of each record */
    uint32_t fw_n, fw_idx_cap;
    bool fw_touched;
} bk_clpart_t;

/* A round of one partition in flight (cl_append_round's round_ctx). */
typedef struct bk_clround {
    struct bk_clround *prev, *next;
    unsigned p;
    uint64_t gen; /* of its partition when handed over */
    uint32_t n;
    bk_item_t *items[];
} bk_clround_t;

/* A forward in flight (cl_forward's req_ctx): which slots of req it answers. */
typedef struct bk_clfwd {
    struct bk_clfwd *prev, *next;
    bk_req_t *req;
    unsigned p;
    uint32_t n;
    uint32_t idx[];
} bk_clfwd_t;

/* A publish another node forwarded here, until its request is answered (req->fwd). */
struct bk_clin {
    struct bk_clin *prev, *next;
    cl_fwd_t *fwd;
    bk_req_t *req;
};

/* Counters of the broker's side (the cluster layer keeps its own: cl_counters). */
typedef struct {
    uint64_t forwarded;        /* publishes sent to their partition's owner */
    uint64_t forward_failed;   /* refused: the forward could not be sent or was not answered */
    uint64_t unavailable;      /* refused here: the partition had no writable owner */
    uint64_t busy;             /* refused here: the partition's rounds waited past the bound */
    uint64_t rounds;           /* rounds handed to cl_append_round */
    uint64_t rounds_failed;    /* answered with anything but CL_OK */
    uint64_t served;           /* forwarded publishes served as the owner */
    uint64_t gains, losses;    /* partition ownership */
    uint64_t journal_failures; /* the journal stopped taking deliveries */
} bk_clcount_t;

typedef struct bk_cluster {
    broker_t *b;
    cl_t *cl;
    loop_io_t io;
    unsigned n_parts;
    bk_clpart_t *parts;
    unsigned *touched; /* partitions with a forward being collected */
    unsigned n_touched;
    /* a drain round grouped by partition (bk_cluster_round) */
    uint32_t *cnt, *order;
    cl_rec_t *recs;
    bk_clround_t *rounds; /* in flight */
    bk_clfwd_t *fwds;     /* in flight */
    struct bk_clin *ins;  /* being served */
    bool delivered;       /* records delivered in this dispatch: flush the journal, rings */
    bool journal_off;     /* a journal write failed: deliveries are no longer journaled */
    msgpack_sbuffer resp; /* response frames of forwarded publishes */
    msgpack_unpacked unp; /* answers to our forwards */
    bk_clcount_t c;
    log_ratelimit_t rl_round, rl_fwd;
} bk_cluster_t;

/* The partition of u, computed once. */
static inline unsigned bk_cl_user_part(bk_cluster_t *st, bk_user_t *u)
{
    if (!u->cl_part1) u->cl_part1 = (uint16_t)(cl_partition_of(st->cl, u->id, u->id_len) + 1);
    return u->cl_part1 - 1u;
}

/* A cluster status as a word ("ok", "unavailable", "fenced", "unknown"). */
const char *bk_cl_status_name(cl_status_t s);

/* clustered_fwd.c: the cluster layer's callbacks for forwards, and their end at shutdown
 * (answer what is being served before cl_close, refuse what is still waiting after it). */
void bk_cl_on_forwarded(void *ctx, unsigned p, cl_fwd_t *fwd, const uint8_t *frame, size_t len);
void bk_cl_on_forward_done(void *ctx, void *req_ctx, cl_status_t s, const uint8_t *resp,
                           size_t len);
void bk_cl_served_close(bk_cluster_t *st);
void bk_cl_forwards_close(bk_cluster_t *st);

#endif
