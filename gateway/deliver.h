/* deliver.h - per-session output: queue frames (P0 now, P1..P3 in batches with flush
 * deadlines), bound what a session holds (4008), write coalesced frames, close sessions. */
#ifndef HERALD_GW_DELIVER_H
#define HERALD_GW_DELIVER_H

#include "gw.h"
#include "latency.h"
#include "users.h"

#define GW_WRITE_COALESCE (64 * 1024) /* bytes of frames per coalesced write */

/* Make g's delivery state (deadline lists, write buffer, latency); free it. */
void gw_deliver_init(gw_t *g);
void gw_deliver_fini(gw_t *g);

/* Queue a frame for s with priority prio (0 = at once; control frames use 0). Takes a ref.
 * Past gateway.max_pending_bytes the session is closed with 4008 instead. */
void gw_deliver(gw_t *g, gw_session_t *s, gw_msg_t *m, unsigned prio);
/* Queue notification m (m->conflatable) for s, whose pending output is past
 * conflate_bytes: the pending one with its key leaves the queue and a `conflated` frame
 * naming its seq (and those it had replaced) goes in right before m (conflate.c). Takes a
 * reference like gw_deliver; the 4008 bound applies to what remains. */
void gw_deliver_conflating(gw_t *g, gw_session_t *s, gw_msg_t *m);
/* Move everything held to the ready queue and ask for a write. */
void gw_deliver_flush(gw_t *g, gw_session_t *s);
/* Flush every session waiting on a deadline (the delays are about to change). */
void gw_deliver_flush_all(gw_t *g);
/* Flush sessions whose deadline passed; returns the nearest remaining deadline (0 = none). */
uint64_t gw_deliver_due(gw_t *g, uint64_t now_ns);
/* The nearest flush deadline (CLOCK_MONOTONIC ns), 0 = none. */
uint64_t gw_deliver_next_deadline(const gw_t *g);
/* The ring said when the records that follow were written (REC_CLOCK, monotonic): batch
 * deadlines count from then, not from when they were read. */
void gw_deliver_set_clock(gw_t *g, uint64_t mono_ns);

/* A reap pass begins: output queued from now on is written by gw_deliver_write_now. */
void gw_deliver_begin_pass(gw_t *g);
/* Get s's ready frames written: during a reap pass queue s for the direct write at the end
 * of the pass; otherwise (or when lws must frame: deflate, or a close) ask lws for a
 * writable callback (once until it comes). */
void gw_deliver_want_write(gw_t *g, gw_session_t *s);
/* End of a reap pass: write every queued session now, from outside a writable callback
 * (plain sessions only; lws buffers a partial send itself). A failed write kills the
 * connection asynchronously. */
void gw_deliver_write_now(gw_t *g);
/* Write ready frames while the socket takes them (the writable callback). Returns -1 to
 * close the connection. */
int gw_deliver_write(gw_t *g, gw_session_t *s);

/* Schedule a close with a WebSocket code; the session writes no more frames. */
void gw_deliver_close_later(gw_t *g, gw_session_t *s, uint16_t code, const char *reason);
/* Free every queued frame of s and unlink it from the deadline lists. */
void gw_deliver_drop(gw_t *g, gw_session_t *s);
/* Delivery latency of live notifications (timestamp -> socket write accepted). */
const latency_t *gw_deliver_latency(const gw_t *g);

#endif
