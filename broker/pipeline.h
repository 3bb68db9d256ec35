/* pipeline.h - ingest, priority queues and the drain round: requests in, seqs out. */
#ifndef HERALD_BK_PIPELINE_H
#define HERALD_BK_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker.h"
#include "items.h"
#include "err.h"
#include "model.h"

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

bk_req_t *bk_req_new(uint32_t n);

/* One slot of req got its answer: hand the request back to its owner when all did. */
void bk_req_slot_done(broker_t *b, bk_req_t *req);
/* Answer slot idx with an error: msg is copied (bk_result_fail) or, for a string literal,
 * referenced (bk_result_fail_static: no allocation per refused item). */
void bk_result_fail(bk_req_t *req, uint32_t idx, herr_t code, const char *msg);
void bk_result_fail_static(bk_req_t *req, uint32_t idx, herr_t code, const char *msg);
void bk_req_orphan(broker_t *b, bk_req_t *req);
void bk_req_free(bk_req_t *req);
/* The queues (bounded by broker.queue_capacity) and the drain round's timer. */
void bk_pipeline_init(broker_t *b);
void bk_pipeline_free(broker_t *b);
/* Notifications queued at priority p, and the bound of that queue (SIGHUP may change it: a
 * lower bound refuses new publishes until the queue drains below it). */
uint32_t bk_pipeline_queued(const broker_t *b, int p);
void bk_pipeline_set_cap(broker_t *b, int p, uint32_t cap);
/* Ask for a drain round at the end of this loop pass. */
void bk_drain_schedule(broker_t *b);
/* Work is queued for a round that has not run: a queue left over by the round budget, or
 * input taken after this pass's round (the loop then passes again without sleeping). */
bool bk_drain_pending(const broker_t *b);
/* The drain round (end-of-pass hook): seqs, one journal write, then rings and answers. */
void bk_drain(broker_t *b);
size_t bk_queue_total(const broker_t *b);
/* Cluster mode: a round's items (bk_cluster_round) were stored on a quorum (code HERR_OK:
 * dedup learns their seqs, producers get them) or not (newest first: with rollback their
 * users' cl_seq go back, ids leave the dedup window, producers get code and msg). Frees
 * the items; their histories are fed by the consumers. */
void bk_round_done(broker_t *b, bk_item_t *const *items, size_t n, herr_t code, const char *msg,
                   bool rollback);

#endif
