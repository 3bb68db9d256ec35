/* drain.c - the gateway's ring as consumer: attach, batched reads into records.c, the
 * doorbell (futex wait or eventfd through io_uring), the idle poll of runtime.idle backoff
 * and the wake-by promise that lets the broker skip the doorbell. */
#include "drain.h"

#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "deliver.h"
#include "doorbell.h"
#include "herald_time.h"
#include "log.h"
#include "records.h"
#include "uring.h"

#define GW_READ_BATCH   256
#define GW_DRAIN_BUDGET 8192 /* ring records per wake before yielding to lws */

struct gw_drain {
    ring_t *ring;
    doorbell_t doorbell;
    bool doorbell_open;
    bool doorbell_armed;
    bool idle_spin_pending; /* runtime.idle backoff: poll the empty ring before sleeping */
    bool want_spin;         /* this pass found the ring empty: spin before arming */
};

void gw_drain_init(gw_t *g)
{
    g->drain = calloc(1, sizeof *g->drain);
    if (!g->drain) abort();
    g->drain->idle_spin_pending = g->cfg.idle_spin_us || g->cfg.idle_yield_us;
}

void gw_drain_fini(gw_t *g)
{
    struct gw_drain *d = g->drain;
    if (!d) return;
    if (d->doorbell_open) doorbell_close(&d->doorbell);
    if (d->ring) ring_close(d->ring);
    free(d);
    g->drain = NULL;
}

bool gw_drain_attached(const gw_t *g)
{
    return g->drain->ring != NULL;
}

void gw_drain_run(gw_t *g)
{
    struct gw_drain *d = g->drain;
    if (!d->ring) return;
    long budget = GW_DRAIN_BUDGET;
    while (budget > 0) {
        long n = ring_read_batch(d->ring, gw_records_on_record, g, GW_READ_BATCH);
        if (n == -HERR_CORRUPT) {
            g->c.ring_corrupt++;
            log_error("corrupt ring record: skipped to the producer's position");
            budget--;
            continue;
        }
        if (n > 0) {
            budget -= n;
            continue;
        }
        if (d->doorbell_armed) return;
        if (d->idle_spin_pending) { /* runtime.idle backoff: poll before sleeping */
            d->want_spin = true;
            return;
        }
        int rc = doorbell_arm(&d->doorbell, gw_ud(UD_DOORBELL, 0));
        if (rc == 1) {
            d->doorbell_armed = true;
            return;
        }
        if (rc < 0) {
            log_error("doorbell: %s", strerror(-rc));
            break; /* poll again via the no-op below */
        }
        budget--; /* records arrived during the handshake */
    }
    gw_uring_queue_nop(g);
}

int gw_drain_attach(gw_t *g)
{
    struct gw_drain *d = g->drain;
    char name[160];
    herald_error_t err;
    ring_name(name, sizeof name, g->cfg.shm_prefix, g->id);
    if (ring_open(&d->ring, name, RING_CONSUMER, 0, g->id, &err) < 0) {
        log_error("ring %s: %s", name, err.message);
        d->ring = NULL;
        return -1;
    }
    int rc = doorbell_open(&d->doorbell, gw_uring_ring(g), d->ring);
    if (rc < 0) {
        log_error("doorbell of ring %s: %s", name, strerror(-rc));
        ring_close(d->ring);
        d->ring = NULL;
        return -1;
    }
    d->doorbell_open = true;
    ring_skip_all(d->ring); /* a (re)started gateway starts clean */
    ring_heartbeat(d->ring);
    log_info("attached ring %s (doorbell: %s)", name, doorbell_kind_name(d->doorbell.kind));
    gw_drain_run(g);
    return 0;
}

void gw_drain_on_doorbell(gw_t *g, int res)
{
    g->drain->doorbell_armed = false;
    if (doorbell_complete(&g->drain->doorbell, res) < 0)
        log_error("doorbell wait failed: %s", strerror(-res));
    gw_drain_run(g);
}

/* runtime.idle = backoff:S,Y (Aeron's backoff idle strategy, for hosts with spare cores):
 * with the ring empty, poll it for S us, then poll and yield the CPU for Y us more, and only
 * then arm the doorbell and sleep; records that arrive meanwhile are delivered at once, with
 * no doorbell (the broker sees no sleeper) and no wake-up. Client sockets wait meanwhile. */
static void drain_spin(gw_t *g)
{
    struct gw_drain *d = g->drain;
    uint64_t spin = g->cfg.idle_spin_us * 1000ull, yield = g->cfg.idle_yield_us * 1000ull;
    uint64_t t = mono_ns(), spin_end = t + spin, end = spin_end + yield;
    while (t < end) {
        if (ring_pending(d->ring)) {
            gw_deliver_begin_pass(g);
            g->now_ns = t;
            d->want_spin = false;
            gw_drain_run(g);
            gw_deliver_due(g, t + GW_FLUSH_SLACK_NS);
            gw_deliver_write_now(g);
            g->c.idle_spin_hits++;
            spin_end = mono_ns() + spin; /* busy: keep polling */
            end = spin_end + yield;
        } else if (t >= spin_end) {
            sched_yield();
        } else {
            __builtin_ia32_pause();
        }
        t = mono_ns();
    }
    g->now_ns = t;
}

void gw_drain_idle(gw_t *g)
{
    struct gw_drain *d = g->drain;
    if (!d->want_spin) return;
    d->want_spin = false;
    drain_spin(g);
    d->idle_spin_pending = false;
    gw_drain_run(g); /* arms the doorbell (the sleep handshake re-checks the ring) */
    d->idle_spin_pending = true;
    d->want_spin = false;
}

void gw_drain_wake_by(gw_t *g, uint64_t next_ns)
{
    struct gw_drain *d = g->drain;
    /* Records that arrived while the promise changed may not have been rung for: read them
     * (a no-op brings us back). */
    if (d->ring && d->doorbell_armed && ring_set_wake_by(d->ring, next_ns)) gw_uring_queue_nop(g);
}

void gw_drain_heartbeat(gw_t *g)
{
    if (g->drain->ring) ring_heartbeat(g->drain->ring);
}

void gw_drain_stats(gw_t *g, ring_stats_t *rs)
{
    memset(rs, 0, sizeof *rs);
    if (g->drain->ring) ring_stats(g->drain->ring, rs);
}
