/* loop.c - the gateway's event-loop core. lws drives the sockets on a libev loop; the
 * io_uring's fd is adopted into it, so one lws wake-up reaps every completion in one pass:
 * the ring's doorbell, the timeout, the no-op that yields to lws, the broker link. After
 * each pass (and each lws callback that may have changed them) the single timeout is moved
 * to the nearest of the flush deadlines, the 1 s tick and the broker reconnect. Every reap
 * ends with the process's heartbeat (heartbeat.h). */
#include "loop.h"

#include <string.h>

#include "control.h"
#include "deliver.h"
#include "drain.h"
#include "herald_time.h"
#include "http.h"
#include "log.h"
#include "records.h"
#include "revoke.h"
#include "session.h"
#include "uring.h"
#include "users.h"

/* The broker accepted our hello: the ring is attached the first time. */
static int loop_attach(gw_t *g)
{
    return gw_drain_attached(g) ? 0 : gw_drain_attach(g);
}

static const gw_control_hooks_t loop_hooks = {
    .attach = loop_attach,
    .resynced = gw_records_resync,
};

void gw_loop_init(gw_t *g, uint64_t first_session)
{
    g->users = gw_users_new(first_session);
    gw_deliver_init(g);
    gw_revoke_init(g);
    gw_drain_init(g);
    gw_control_init(g, &loop_hooks);
}

int gw_loop_start(gw_t *g)
{
    if (gw_uring_init(g) < 0) return -1;
    g->now_ns = mono_ns();
    g->tick_at_ns = g->now_ns + GW_NS_PER_S;
    gw_control_try_connect(g);
    gw_loop_commit(g);
    return 0;
}

void gw_loop_stop(gw_t *g)
{
    if (g->ctl) gw_control_close(g);
}

void gw_loop_fini(gw_t *g)
{
    gw_control_fini(g);
    gw_drain_fini(g);
    gw_uring_fini(g);
    gw_revoke_fini(g);
    gw_deliver_fini(g);
    gw_users_free(g->users);
    g->users = NULL;
}

void gw_loop_commit(gw_t *g)
{
    uint64_t next = g->tick_at_ns, at = gw_deliver_next_deadline(g);
    /* GW_TIMER_EARLY_NS before the nearest flush deadline (gw.h) */
    if (at) at = at > GW_TIMER_EARLY_NS ? at - GW_TIMER_EARLY_NS : 1;
    if (at && at < next) next = at;
    at = gw_control_retry_at(g);
    if (at < next) next = at;
    gw_uring_arm_timer(g, next);
    /* Asleep on the ring: tell the broker we wake by `next` anyway, so records that may
     * wait until then (P1..P3) need no doorbell. */
    gw_drain_wake_by(g, next);
    gw_uring_submit(g);
}

static void loop_on_timer(gw_t *g)
{
    uint64_t now = g->now_ns;
    if (now >= g->tick_at_ns) {
        g->tick_at_ns = now + GW_NS_PER_S;
        gw_drain_heartbeat(g);
        gw_session_tick(g, now);
        if (++g->ticks % 60 == 0) gw_revoke_sweep(g);
    }
    if (now >= gw_control_retry_at(g)) gw_control_try_connect(g);
}

static void loop_dispatch(gw_t *g, uint64_t ud, int res)
{
    unsigned tag = (unsigned)(ud & 0xff);
    switch (tag) {
    case UD_DOORBELL:
        gw_drain_on_doorbell(g, res);
        break;
    case UD_NOP:
        gw_drain_run(g);
        break;
    case UD_TIMER:
        loop_on_timer(g);
        gw_drain_run(g); /* what the broker let wait until now */
        break;
    case UD_TIMER_UPD:
        break;
    case UD_CTL_RECV:
    case UD_CTL_POLLOUT:
        gw_control_on_cqe(g, tag, ud >> 8, res);
        break;
    default:
        log_warn("io_uring completion with unknown tag %u", tag);
    }
}

static void loop_reap(gw_t *g)
{
    gw_deliver_begin_pass(g);
    for (int round = 0; round < 4; round++) {
        g->now_ns = mono_ns();
        if (!gw_uring_reap(g, loop_dispatch)) break;
    }
    /* Every wake-up (doorbell, timer, no-op) flushes the batches due by now + the slack,
     * which covers the timer's advance (gw.h). */
    gw_deliver_due(g, g->now_ns + GW_FLUSH_SLACK_NS);
    gw_deliver_write_now(g);
    gw_drain_idle(g); /* the ring went empty: poll it a while, then sleep on the doorbell */
    gw_loop_commit(g);
    /* a pass of the loop completed: the timer above guarantees one at least every second */
    hb_beat(&g->hb, g->now_ns);
}

int gw_loop_uring_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                           size_t len)
{
    (void)user;
    (void)in;
    (void)len;
    gw_t *g = lws_context_user(lws_get_context(wsi));
    switch (reason) {
    case LWS_CALLBACK_RAW_RX_FILE:
        loop_reap(g);
        return 0;
    case LWS_CALLBACK_RAW_CLOSE_FILE:
        gw_uring_on_close(g, wsi);
        return 0;
    default:
        return 0;
    }
}

int gw_loop_session_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                             void *in, size_t len)
{
    int rc;
    switch (reason) {
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
    case LWS_CALLBACK_HTTP:
        /* herald.json is the vhost default protocol, so lws asks it about upgrades */
        return gw_http_callback(wsi, reason, NULL, in, len);
    case LWS_CALLBACK_ESTABLISHED:
    case LWS_CALLBACK_RECEIVE:
    case LWS_CALLBACK_CLOSED:
        /* these queue output, requests and deadlines: re-arm the timeout after them */
        rc = gw_session_callback(wsi, reason, user, in, len);
        if (rc == 0) gw_loop_commit(lws_context_user(lws_get_context(wsi)));
        return rc;
    default:
        return gw_session_callback(wsi, reason, user, in, len);
    }
}
