/* pipeline_int.h - what pipeline.c (queues, drain) and ingest.c (filling the queues) share.
 * Not for other modules: they use pipeline.h and ingest.h. */
#ifndef HERALD_BK_PIPELINE_INT_H
#define HERALD_BK_PIPELINE_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "broker.h"
#include "journal.h"
#include "log.h"
#include "loop.h"

typedef struct bk_queue {
    bk_item_t *head, *tail;
    uint32_t count, cap;
} bk_queue_t;

/* The priority queues and the drain round's bookkeeping. */
struct bk_pipeline {
    bk_queue_t q[HERALD_PRIORITIES];
    bool drain_pending;         /* bk_drain runs at the end of this pass */
    loop_timer_t journal_retry; /* while the journal is failing: probe every 100 ms */
    log_ratelimit_t rl_full;
};

extern const char bk_pipeline_journal_failed_msg[];

/* Nothing can be made durable while the single node's journal fails (see bk_journal_flush);
 * in cluster mode JetStream makes rounds durable and the journal is only a restart cache. */
static inline bool bk_pipeline_journal_blocks(const broker_t *b)
{
    return !b->cl && bk_journal_failing(b);
}

#endif
