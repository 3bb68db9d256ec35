/* uring.c - the gateway's io_uring instance: adopted into lws as a raw file so lws's poll
 * wakes us on completions; reaps them in batches; owns the single timeout (nearest of the
 * flush deadlines, the 1 s tick and the broker reconnect) and the ring drain + doorbell.
 * Every reap ends with the process's heartbeat (heartbeat.h). */
#include <errno.h>
#include <sched.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gw.h"
#include "log.h"

#define GW_URING_ENTRIES 256
#define GW_READ_BATCH    256

uint64_t gw_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * GW_NS_PER_S + (uint64_t)ts.tv_nsec;
}

struct io_uring_sqe *gw_uring_sqe(gw_t *g)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&g->uring);
    if (!sqe) {
        io_uring_submit(&g->uring);
        sqe = io_uring_get_sqe(&g->uring);
    }
    return sqe; /* cannot be NULL right after a submit of a ring we alone fill */
}

int gw_uring_init(gw_t *g)
{
    int rc = io_uring_queue_init(GW_URING_ENTRIES, &g->uring, 0);
    if (rc < 0) {
        log_error("io_uring_queue_init: %s", strerror(-rc));
        return -1;
    }
    /* lws owns (and closes) the descriptor it adopts: give it a duplicate. */
    lws_sock_file_fd_type fd;
    fd.filefd = dup(g->uring.ring_fd);
    if (fd.filefd < 0) {
        log_error("dup io_uring fd: %s", strerror(errno));
        goto fail;
    }
    g->uring_wsi = lws_adopt_descriptor_vhost(g->vh, LWS_ADOPT_RAW_FILE_DESC, fd, "gw-uring", NULL);
    if (!g->uring_wsi) {
        log_error("lws refused to adopt the io_uring fd");
        goto fail;
    }
    g->uring_ready = true;
    g->now_ns = gw_now_ns();
    g->tick_at_ns = g->now_ns + GW_NS_PER_S;
    return 0;
fail:
    io_uring_queue_exit(&g->uring);
    return -1;
}

void gw_uring_fini(gw_t *g)
{
    if (g->doorbell_open) doorbell_close(&g->doorbell);
    g->doorbell_open = false;
    if (g->ring) ring_close(g->ring);
    g->ring = NULL;
    if (g->uring_ready) io_uring_queue_exit(&g->uring);
    g->uring_ready = false;
}

static void uring_arm_timer(gw_t *g, uint64_t at_ns)
{
    struct io_uring_sqe *sqe;
    /* Keep a pending timeout that is due at most a slack before the nearest deadline;
     * move it otherwise (later too: deadlines flushed early would make it a wasted wake). */
    if (g->timer_armed && at_ns >= g->timer_at_ns && at_ns - g->timer_at_ns <= GW_FLUSH_SLACK_NS)
        return;
    if (!g->timer_armed) {
        g->timer_ts.tv_sec = (long long)(at_ns / GW_NS_PER_S);
        g->timer_ts.tv_nsec = (long long)(at_ns % GW_NS_PER_S);
        sqe = gw_uring_sqe(g);
        io_uring_prep_timeout(sqe, &g->timer_ts, 0, IORING_TIMEOUT_ABS);
        io_uring_sqe_set_data64(sqe, gw_ud(UD_TIMER, 0));
        g->timer_armed = true;
    } else {
        /* Move the one pending timeout instead of adding a second one. */
        g->timer_upd_ts.tv_sec = (long long)(at_ns / GW_NS_PER_S);
        g->timer_upd_ts.tv_nsec = (long long)(at_ns % GW_NS_PER_S);
        sqe = gw_uring_sqe(g);
        io_uring_prep_timeout_update(sqe, &g->timer_upd_ts, gw_ud(UD_TIMER, 0), IORING_TIMEOUT_ABS);
        io_uring_sqe_set_data64(sqe, gw_ud(UD_TIMER_UPD, 0));
        /* no completion when it worked: it would only wake the loop for nothing */
        sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
    }
    g->timer_at_ns = at_ns;
}

static void uring_queue_nop(gw_t *g)
{
    if (g->nop_pending) return;
    struct io_uring_sqe *sqe = gw_uring_sqe(g);
    io_uring_prep_nop(sqe);
    io_uring_sqe_set_data64(sqe, gw_ud(UD_NOP, 0));
    g->nop_pending = true;
}

void gw_uring_commit(gw_t *g)
{
    uint64_t next = g->tick_at_ns;
    for (unsigned i = 0; i < HERALD_PRIORITIES - 1; i++)
        if (g->dl[i].head && g->dl[i].head->dl[i].deadline_ns < next)
            next = g->dl[i].head->dl[i].deadline_ns;
    if (g->ctl_state == CTL_DOWN && g->ctl_retry_at_ns < next) next = g->ctl_retry_at_ns;
    uring_arm_timer(g, next);
    /* Asleep on the ring: tell the broker we wake by `next` anyway, so records that may
     * wait until then (P1..P3) need no doorbell. Records that arrived while the promise
     * changed may not have been rung for: read them (a no-op brings us back). */
    if (g->ring && g->doorbell_armed && ring_set_wake_by(g->ring, next)) uring_queue_nop(g);
    io_uring_submit(&g->uring);
}

/* Read the ring in batches (also while the doorbell is armed: records the broker let wait
 * for our timer); when empty, arm the doorbell (which does the sleep handshake); when the
 * budget runs out, queue a no-op so lws serves the sockets and then calls us again. */
static void uring_drain(gw_t *g)
{
    if (!g->ring) return;
    long budget = GW_DRAIN_BUDGET;
    while (budget > 0) {
        long n = ring_read_batch(g->ring, gw_records_on_record, g, GW_READ_BATCH);
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
        if (g->doorbell_armed) return;
        if (g->idle_spin_pending) { /* runtime.idle backoff: poll before sleeping */
            g->want_spin = true;
            return;
        }
        int rc = doorbell_arm(&g->doorbell, gw_ud(UD_DOORBELL, 0));
        if (rc == 1) {
            g->doorbell_armed = true;
            return;
        }
        if (rc < 0) {
            log_error("doorbell: %s", strerror(-rc));
            break; /* poll again via the no-op below */
        }
        budget--; /* records arrived during the handshake */
    }
    uring_queue_nop(g);
}

int gw_uring_attach_ring(gw_t *g)
{
    char name[160];
    herald_error_t err;
    ring_name(name, sizeof name, g->cfg.shm_prefix, g->id);
    if (ring_open(&g->ring, name, RING_CONSUMER, 0, g->id, &err) < 0) {
        log_error("ring %s: %s", name, err.message);
        g->ring = NULL;
        return -1;
    }
    int rc = doorbell_open(&g->doorbell, &g->uring, g->ring);
    if (rc < 0) {
        log_error("doorbell of ring %s: %s", name, strerror(-rc));
        ring_close(g->ring);
        g->ring = NULL;
        return -1;
    }
    g->doorbell_open = true;
    ring_skip_all(g->ring); /* a (re)started gateway starts clean */
    ring_heartbeat(g->ring);
    log_info("attached ring %s (doorbell: %s)", name, doorbell_kind_name(g->doorbell.kind));
    uring_drain(g);
    return 0;
}

static void uring_on_timer(gw_t *g)
{
    uint64_t now = g->now_ns;
    if (now >= g->tick_at_ns) {
        g->tick_at_ns = now + GW_NS_PER_S;
        if (g->ring) ring_heartbeat(g->ring);
        gw_sessions_tick(g, now);
        if (++g->ticks % 60 == 0) gw_revoke_sweep(g);
    }
    if (g->ctl_state == CTL_DOWN && now >= g->ctl_retry_at_ns) gw_ctl_try_connect(g);
}

static void uring_dispatch(gw_t *g, uint64_t ud, int res)
{
    unsigned tag = (unsigned)(ud & 0xff);
    switch (tag) {
    case UD_DOORBELL:
        g->doorbell_armed = false;
        if (doorbell_complete(&g->doorbell, res) < 0)
            log_error("doorbell wait failed: %s", strerror(-res));
        uring_drain(g);
        break;
    case UD_NOP:
        g->nop_pending = false;
        uring_drain(g);
        break;
    case UD_TIMER:
        g->timer_armed = false;
        uring_on_timer(g);
        uring_drain(g); /* what the broker let wait until now */
        break;
    case UD_TIMER_UPD:
        break;
    case UD_CTL_RECV:
    case UD_CTL_POLLOUT:
        gw_ctl_on_cqe(g, tag, ud >> 8, res);
        break;
    default:
        log_warn("io_uring completion with unknown tag %u", tag);
    }
}

/* runtime.idle = backoff:S,Y (Aeron's backoff idle strategy, for hosts with spare cores):
 * with the ring empty, poll it for S us, then poll and yield the CPU for Y us more, and only
 * then arm the doorbell and sleep; records that arrive meanwhile are delivered at once, with
 * no doorbell (the broker sees no sleeper) and no wake-up. Client sockets wait meanwhile. */
static void uring_spin(gw_t *g)
{
    uint64_t spin = g->cfg.idle_spin_us * 1000ull, yield = g->cfg.idle_yield_us * 1000ull;
    uint64_t t = gw_now_ns(), spin_end = t + spin, end = spin_end + yield;
    while (t < end) {
        if (ring_pending(g->ring)) {
            g->in_reap = true;
            g->now_ns = t;
            g->want_spin = false;
            uring_drain(g);
            gw_deliver_due(g, t + GW_FLUSH_SLACK_NS);
            gw_deliver_write_now(g);
            g->c.idle_spin_hits++;
            spin_end = gw_now_ns() + spin; /* busy: keep polling */
            end = spin_end + yield;
        } else if (t >= spin_end) {
            sched_yield();
        } else {
            __builtin_ia32_pause();
        }
        t = gw_now_ns();
    }
    g->now_ns = t;
}

static void uring_reap(gw_t *g)
{
    g->in_reap = true;
    for (int round = 0; round < 4; round++) {
        struct io_uring_cqe *cqe;
        unsigned head, n = 0;
        g->now_ns = gw_now_ns();
        io_uring_for_each_cqe(&g->uring, head, cqe)
        {
            uring_dispatch(g, io_uring_cqe_get_data64(cqe), cqe->res);
            n++;
        }
        if (!n) break;
        io_uring_cq_advance(&g->uring, n);
    }
    /* Every wake-up (doorbell, timer, no-op) flushes the batches due by now + the slack. */
    gw_deliver_due(g, g->now_ns + GW_FLUSH_SLACK_NS);
    gw_deliver_write_now(g);
    if (g->want_spin) { /* the ring went empty: poll it a while, then sleep on the doorbell */
        g->want_spin = false;
        uring_spin(g);
        g->idle_spin_pending = false;
        uring_drain(g); /* arms the doorbell (the sleep handshake re-checks the ring) */
        g->idle_spin_pending = true;
        g->want_spin = false;
    }
    gw_uring_commit(g);
    /* a pass of the loop completed: the timer above guarantees one at least every second */
    hb_beat(&g->hb, g->now_ns);
}

int gw_uring_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                      size_t len)
{
    (void)user;
    (void)in;
    (void)len;
    gw_t *g = lws_context_user(lws_get_context(wsi));
    switch (reason) {
    case LWS_CALLBACK_RAW_RX_FILE:
        uring_reap(g);
        return 0;
    case LWS_CALLBACK_RAW_CLOSE_FILE:
        if (g && wsi == g->uring_wsi) g->uring_wsi = NULL;
        return 0;
    default:
        return 0;
    }
}
