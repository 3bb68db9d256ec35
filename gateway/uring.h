/* uring.h - the gateway's io_uring instance: adopted into lws as a raw file (its fd is
 * readable while completions wait, so lws's poll wakes us), SQEs tagged with user_data, and
 * the single timeout (armed, or moved with a timeout update). */
#ifndef HERALD_GW_URING_H
#define HERALD_GW_URING_H

#include <liburing.h>

#include "gw.h"

struct lws;

/* user_data tags of io_uring requests: low 8 bits tag, the rest a generation. */
enum { UD_DOORBELL = 1, UD_TIMER, UD_TIMER_UPD, UD_NOP, UD_CTL_RECV, UD_CTL_POLLOUT };

static inline uint64_t gw_ud(unsigned tag, uint64_t gen)
{
    return (gen << 8) | tag;
}

/* Create the io_uring and hand a duplicate of its fd to lws (protocol "gw-uring" of
 * g->vh). Returns 0, or -1 logged. */
int gw_uring_init(gw_t *g);
void gw_uring_fini(gw_t *g);
/* lws closed the adopted descriptor (the context is going away). */
void gw_uring_on_close(gw_t *g, struct lws *wsi);
/* The io_uring itself (the doorbell queues its wait there). */
struct io_uring *gw_uring_ring(gw_t *g);
/* Get an SQE (submitting the queue first if it is full). */
struct io_uring_sqe *gw_uring_sqe(gw_t *g);
/* Submit the queued SQEs. */
void gw_uring_submit(gw_t *g);
/* Have the one timeout fire at at_ns (CLOCK_MONOTONIC): armed, moved, or kept when it is
 * due at most GW_FLUSH_SLACK_NS before. */
void gw_uring_arm_timer(gw_t *g, uint64_t at_ns);
/* Queue a no-op (once until it completes): the loop comes straight back after lws. */
void gw_uring_queue_nop(gw_t *g);
/* Call fn for every completion waiting, then mark them seen. The timeout and the no-op
 * count as no longer pending before fn runs. Returns how many there were. */
unsigned gw_uring_reap(gw_t *g, void (*fn)(gw_t *g, uint64_t ud, int res));

#endif
