/* drain.h - the gateway's ring (/dev/shm/<prefix>.gw<N>.ring) as consumer: attach after the
 * broker's hello_ok, read it in batches into records.c, sleep on its doorbell when empty
 * (or poll a while first: runtime.idle backoff), and promise the broker when we wake. */
#ifndef HERALD_GW_DRAIN_H
#define HERALD_GW_DRAIN_H

#include <stdbool.h>
#include <stdint.h>

#include "gw.h"
#include "ring.h"

void gw_drain_init(gw_t *g);
/* Close the doorbell and the ring; free the state. */
void gw_drain_fini(gw_t *g);
/* Open the ring and its doorbell, skip what it holds (a (re)started gateway starts clean)
 * and drain. Returns 0, or -1 logged (nothing attached). */
int gw_drain_attach(gw_t *g);
bool gw_drain_attached(const gw_t *g);
/* Read the ring in batches up to a budget (also while the doorbell is armed: records the
 * broker let wait for our timer); when empty, arm the doorbell (or ask for the idle poll);
 * when the budget runs out, queue a no-op so lws serves the sockets and then calls again. */
void gw_drain_run(gw_t *g);
/* The doorbell's wait completed with res: the sleep ended, drain. */
void gw_drain_on_doorbell(gw_t *g, int res);
/* End of a reap pass: if the ring went empty and runtime.idle asks for it, poll it a while
 * (delivering what arrives), then arm the doorbell. */
void gw_drain_idle(gw_t *g);
/* Asleep on the ring: tell the broker we wake by next_ns anyway (records that may wait
 * until then need no doorbell); queues a no-op for records that raced the promise. */
void gw_drain_wake_by(gw_t *g, uint64_t next_ns);
/* The consumer heartbeat the broker and tools read (the 1 s tick). */
void gw_drain_heartbeat(gw_t *g);
/* Lag and drops of the ring (zeros when not attached). */
void gw_drain_stats(gw_t *g, ring_stats_t *rs);

#endif
