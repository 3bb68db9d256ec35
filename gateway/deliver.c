/* deliver.c - per-session output: shared frames, P0-now / P1..P3-batched queues, flush
 * deadlines (three FIFO lists, one per priority, so the nearest deadline is a list head),
 * the slow-consumer bound (in the bytes each queued frame really holds) and coalesced
 * writes. */
#include "deliver.h"

#include <stdlib.h>
#include <string.h>

#include "conflate.h"
#include "herald_time.h"
#include "log.h"

#define GW_WRITE_FRAMES 512 /* frames per coalesced write */

/* A notification in a write being made: counted in the latency once the write is taken. */
typedef struct {
    uint64_t ts_ns;
    uint8_t prio;
} gw_wtime_t;

struct gw_deliver {
    struct {
        gw_session_t *head, *tail;
    } dl[HERALD_PRIORITIES - 1]; /* sessions with a held batch, by deadline, per P1..P3 */
    /* Flush deadlines count from when a notification was written to the ring (REC_CLOCK),
     * not from when it was read: the broker lets records wait for our own timer. */
    uint64_t rec_clock_ns; /* the last REC_CLOCK: records since were written after it */
    uint64_t dl_origin_ns; /* the origin of the last deadline set (they never go back) */
    /* Sessions with output queued during a reap pass, written directly at its end (one
     * send each, no writable callback round trip); see gw_deliver_write_now. */
    gw_session_t *wlist;
    bool in_reap;
    log_ratelimit_t cf_rl;              /* sessions starting to conflate */
    latency_t lat;                      /* timestamp -> socket write accepted, live notifications */
    gw_wtime_t wtimes[GW_WRITE_FRAMES]; /* the notifications of the write in progress */
    unsigned char wbuf[LWS_PRE + GW_WRITE_COALESCE];
};

void gw_deliver_init(gw_t *g)
{
    g->deliver = calloc(1, sizeof *g->deliver);
    if (!g->deliver) abort();
    latency_init(&g->deliver->lat);
}

void gw_deliver_fini(gw_t *g)
{
    free(g->deliver);
    g->deliver = NULL;
}

const latency_t *gw_deliver_latency(const gw_t *g)
{
    return &g->deliver->lat;
}

uint64_t gw_deliver_next_deadline(const gw_t *g)
{
    uint64_t next = 0;
    for (unsigned i = 0; i < HERALD_PRIORITIES - 1; i++) {
        const gw_session_t *s = g->deliver->dl[i].head;
        if (s && (!next || s->dl[i].deadline_ns < next)) next = s->dl[i].deadline_ns;
    }
    return next;
}

void gw_deliver_set_clock(gw_t *g, uint64_t mono_ns)
{
    g->deliver->rec_clock_ns = mono_ns;
}

void gw_deliver_begin_pass(gw_t *g)
{
    g->deliver->in_reap = true;
}

static void dl_unlink(gw_t *g, gw_session_t *s, unsigned i)
{
    if (!s->dl[i].on) return;
    if (s->dl[i].prev)
        s->dl[i].prev->dl[i].next = s->dl[i].next;
    else
        g->deliver->dl[i].head = s->dl[i].next;
    if (s->dl[i].next)
        s->dl[i].next->dl[i].prev = s->dl[i].prev;
    else
        g->deliver->dl[i].tail = s->dl[i].prev;
    s->dl[i].next = s->dl[i].prev = NULL;
    s->dl[i].on = false;
}

/* Deadlines of one priority are appended in time order (same delay for all), so each list
 * stays sorted without a heap. */
static void dl_append(gw_t *g, gw_session_t *s, unsigned i, uint64_t deadline)
{
    s->dl[i].deadline_ns = deadline;
    s->dl[i].next = NULL;
    s->dl[i].prev = g->deliver->dl[i].tail;
    if (g->deliver->dl[i].tail)
        g->deliver->dl[i].tail->dl[i].next = s;
    else
        g->deliver->dl[i].head = s;
    g->deliver->dl[i].tail = s;
    s->dl[i].on = true;
}

/* When the notification being delivered was written to the ring (its REC_CLOCK, or now when
 * the broker sent none), never earlier than the previous origin: each deadline list stays
 * in time order. */
static uint64_t deliver_origin(gw_t *g)
{
    uint64_t o = g->deliver->rec_clock_ns && g->deliver->rec_clock_ns < g->now_ns
                     ? g->deliver->rec_clock_ns
                     : g->now_ns;
    if (o < g->deliver->dl_origin_ns) o = g->deliver->dl_origin_ns;
    g->deliver->dl_origin_ns = o;
    return o;
}

void gw_deliver_want_write(gw_t *g, gw_session_t *s)
{
    if (s->writable_requested || !s->wsi) return;
    if (g->deliver->in_reap && !s->deflate && !s->close_code) {
        if (!s->on_wlist) {
            s->on_wlist = true;
            s->wnext = g->deliver->wlist;
            g->deliver->wlist = s;
        }
        return;
    }
    s->w_urgent = false; /* only orders the end-of-pass writes */
    s->writable_requested = true;
    lws_callback_on_writable(s->wsi);
}

static void deliver_write_listed(gw_t *g, gw_session_t *s)
{
    s->on_wlist = false;
    s->w_urgent = false;
    /* a session closed during the pass asked for its writable callback already */
    if (s->wsi && s->user && !s->close_code && !s->writable_requested && gw_deliver_write(g, s) < 0)
        lws_set_timeout(s->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

void gw_deliver_write_now(gw_t *g)
{
    gw_session_t *list = g->deliver->wlist, *s, *next, *rest = NULL;
    g->deliver->wlist = NULL;
    g->deliver->in_reap =
        false; /* what is left after a partial send waits for a writable callback */
    /* Sessions with a P0 first: each send costs a client socket's wake-up (~10 us here), and
     * a pass that also flushes due P1..P3 batches must not put them ahead of a P0. */
    for (s = list; s; s = next) {
        next = s->wnext;
        s->wnext = NULL;
        if (s->w_urgent) {
            deliver_write_listed(g, s);
        } else {
            s->wnext = rest;
            rest = s;
        }
    }
    for (s = rest; s; s = next) {
        next = s->wnext;
        s->wnext = NULL;
        deliver_write_listed(g, s);
    }
}

void gw_deliver_close_later(gw_t *g, gw_session_t *s, uint16_t code, const char *reason)
{
    if (s->close_code) return;
    if (s->user) s->user->n_open--;
    s->close_code = code;
    s->close_reason = reason;
    gw_deliver_drop(g, s);
    gw_deliver_want_write(g, s);
    /* A peer that never reads never makes us writable: kill it after a grace period. */
    if (s->wsi) lws_set_timeout(s->wsi, PENDING_TIMEOUT_USER_OK, 5);
}

static void deliver_overflow(gw_t *g, gw_session_t *s, gw_msg_t *m)
{
    g->c.slow_closes++;
    if (m->notification) g->c.failed++;
    log_warn("session %s (user %s): %zu bytes pending, closing as slow consumer", s->id_str,
             s->user ? s->user->id : "?", s->pending_bytes);
    gw_deliver_close_later(g, s, 4008, "slow consumer");
}

static uint64_t deliver_push(gw_session_t *s, gw_msg_t *m, unsigned prio)
{
    s->pending_bytes += gw_msg_cost(m);
    return gw_fifo_push(prio == 0 || prio >= HERALD_PRIORITIES ? &s->ready : &s->held, m);
}

static void deliver_pushed(gw_t *g, gw_session_t *s, unsigned prio)
{
    if (prio == 0 || prio >= HERALD_PRIORITIES) {
        if (prio == 0) s->w_urgent = true;
        gw_deliver_want_write(g, s);
        return;
    }
    if (gw_fifo_frames(&s->held) >= g->cfg.batch_size) {
        gw_deliver_flush(g, s);
        return;
    }
    unsigned i = prio - 1;
    if (!s->dl[i].on) dl_append(g, s, i, deliver_origin(g) + g->cfg.flush_ms[i] * GW_NS_PER_MS);
}

void gw_deliver(gw_t *g, gw_session_t *s, gw_msg_t *m, unsigned prio)
{
    if (s->close_code) return;
    if (s->pending_bytes + gw_msg_cost(m) > g->cfg.max_pending_bytes) {
        deliver_overflow(g, s, m);
        return;
    }
    m->refs++;
    deliver_push(s, m, prio);
    deliver_pushed(g, s, prio);
}

void gw_deliver_conflating(gw_t *g, gw_session_t *s, gw_msg_t *m)
{
    if (s->close_code) return;
    if (!s->cf) {
        gw_conflate_begin(s);
        g->c.conflate_entries++;
        if (log_ratelimit_ok(&g->deliver->cf_rl, 5))
            log_info("session %s (user %s): %zu bytes pending, conflating", s->id_str, s->user->id,
                     s->pending_bytes);
    }
    gw_conflate_ent_t *e = gw_conflate_entry(s, m);
    if (!e) { /* unreadable key, or too many keys: not conflated */
        gw_deliver(g, s, m, m->prio);
        return;
    }
    gw_msg_t *c = gw_conflate_replace(s, e, g->c.conflated);
    size_t cost = gw_msg_cost(m) + (c ? gw_msg_cost(c) : 0);
    if (s->pending_bytes + cost > g->cfg.max_pending_bytes) {
        /* What remains is still too much: the 4008 bound applies as without conflation. */
        gw_msg_unref(c);
        gw_conflate_set(e, NULL, 0, false, false);
        deliver_overflow(g, s, m);
        return;
    }
    if (c) deliver_push(s, c, m->prio); /* the queue takes our reference */
    m->refs++;
    uint64_t pos = deliver_push(s, m, m->prio);
    gw_conflate_set(e, m, pos, m->prio != 0, c != NULL);
    deliver_pushed(g, s, m->prio);
}

void gw_deliver_flush(gw_t *g, gw_session_t *s)
{
    for (unsigned i = 0; i < HERALD_PRIORITIES - 1; i++)
        dl_unlink(g, s, i);
    if (!s->held.count) return;
    /* Move every slot, holes too, so positions keep their distances (conflation's index
     * follows them with one offset). */
    uint64_t held_base = s->held.base, ready_end = s->ready.base + s->ready.count;
    while (s->held.count) {
        gw_msg_t *m = s->held.items[s->held.head];
        gw_fifo_push(&s->ready, m);
        if (!m) s->ready.holes++;
        gw_fifo_pop(&s->held);
    }
    if (s->cf) gw_conflate_moved(s, held_base, ready_end);
    if (s->ready.count > s->ready.holes) gw_deliver_want_write(g, s);
}

void gw_deliver_flush_all(gw_t *g)
{
    for (unsigned i = 0; i < HERALD_PRIORITIES - 1; i++)
        while (g->deliver->dl[i].head)
            gw_deliver_flush(g, g->deliver->dl[i].head);
}

uint64_t gw_deliver_due(gw_t *g, uint64_t now_ns)
{
    uint64_t next = 0;
    for (unsigned i = 0; i < HERALD_PRIORITIES - 1; i++) {
        gw_session_t *s;
        while ((s = g->deliver->dl[i].head) && s->dl[i].deadline_ns <= now_ns)
            gw_deliver_flush(g, s);
        if (s && (!next || s->dl[i].deadline_ns < next)) next = s->dl[i].deadline_ns;
    }
    return next;
}

static void deliver_timed(gw_t *g, size_t n);

/* Frame m as an unmasked, uncompressed WebSocket message (valid with permessage-deflate:
 * RSV1 clear means "not compressed") at out; returns the bytes used. */
static size_t ws_frame(unsigned char *out, const gw_msg_t *m)
{
    size_t n = 0, len = m->len;
    out[n++] = (unsigned char)(0x80 | (m->binary ? 0x2 : 0x1));
    if (len < 126) {
        out[n++] = (unsigned char)len;
    } else if (len < 65536) {
        out[n++] = 126;
        out[n++] = (unsigned char)(len >> 8);
        out[n++] = (unsigned char)len;
    } else {
        out[n++] = 127;
        for (int i = 7; i >= 0; i--)
            out[n++] = (unsigned char)(len >> (8 * i));
    }
    memcpy(out + n, gw_msg_data((gw_msg_t *)m), len);
    return n + len;
}

int gw_deliver_write(gw_t *g, gw_session_t *s)
{
    s->writable_requested = false;
    if (s->close_code) {
        lws_close_reason(s->wsi, (enum lws_close_status)s->close_code,
                         (unsigned char *)s->close_reason, strlen(s->close_reason));
        return -1;
    }
    if (s->want_ping) {
        s->want_ping = false;
        /* one payload byte: lws 4.1 drops an empty pong before LWS_CALLBACK_RECEIVE_PONG,
         * so an answer to an empty ping would never count as activity */
        unsigned char ping[LWS_PRE + 1] = {0};
        ping[LWS_PRE] = 'h';
        if (lws_write(s->wsi, ping + LWS_PRE, 1, LWS_WRITE_PING) < 0) return -1;
    }
    /* Coalesce: several ready frames go out pre-framed in one write (one syscall). With
     * permessage-deflate lws frames and compresses each message itself. A send the kernel
     * took only in part leaves the rest buffered in lws (lws_partial_buffered): stop there
     * and wait for the writable callback (no poll() per write as lws_send_pipe_choked). */
    while (gw_fifo_front(&s->ready) && !lws_partial_buffered(s->wsi)) {
        unsigned char *out = g->deliver->wbuf + LWS_PRE;
        size_t used = 0, frames = 0, pushed = 0, timed = 0;
        gw_msg_t *m;
        while (!s->deflate && frames < GW_WRITE_FRAMES && (m = gw_fifo_front(&s->ready)) &&
               used + m->len + 10 <= GW_WRITE_COALESCE) {
            used += ws_frame(out + used, m);
            frames++;
            pushed += m->notification;
            g->c.conflated_frames += m->conflated;
            if (m->live) g->deliver->wtimes[timed++] = (gw_wtime_t){m->ts_ns, m->prio};
            s->pending_bytes -= gw_msg_cost(m);
            gw_fifo_pop(&s->ready);
            gw_msg_unref(m);
        }
        if (!frames) { /* deflate, or one frame larger than the coalescing buffer */
            m = gw_fifo_front(&s->ready);
            if (lws_write(s->wsi, gw_msg_data(m), m->len,
                          m->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT) < 0) {
                g->c.failed += m->notification;
                return -1;
            }
            g->c.pushed += m->notification;
            g->c.conflated_frames += m->conflated;
            if (m->live) g->deliver->wtimes[timed++] = (gw_wtime_t){m->ts_ns, m->prio};
            deliver_timed(g, timed);
            s->pending_bytes -= gw_msg_cost(m);
            gw_fifo_pop(&s->ready);
            gw_msg_unref(m);
            continue;
        }
        if (lws_write(s->wsi, out, used, LWS_WRITE_RAW) < 0) {
            g->c.failed += pushed;
            return -1;
        }
        g->c.pushed += pushed;
        deliver_timed(g, timed);
    }
    if (gw_fifo_front(&s->ready)) gw_deliver_want_write(g, s);
    /* Written down to half the threshold: conflation stops (its index goes). */
    if (s->cf && s->pending_bytes < g->conflate_bytes / 2) gw_conflate_end(s);
    return 0;
}

/* The write of n live notifications (g->deliver->wtimes) was accepted: their delivery latency. */
static void deliver_timed(gw_t *g, size_t n)
{
    if (!n) return;
    uint64_t now = now_ns();
    for (size_t i = 0; i < n; i++) {
        uint64_t ts = g->deliver->wtimes[i].ts_ns;
        latency_record(&g->deliver->lat, g->deliver->wtimes[i].prio, now > ts ? now - ts : 0);
    }
}

void gw_deliver_drop(gw_t *g, gw_session_t *s)
{
    for (unsigned i = 0; i < HERALD_PRIORITIES - 1; i++)
        dl_unlink(g, s, i);
    for (gw_fifo_t *f = &s->ready; f; f = f == &s->ready ? &s->held : NULL) {
        for (uint32_t i = 0; i < f->count; i++) {
            gw_msg_t *m = f->items[(f->head + i) & (f->cap - 1)];
            if (m && m->notification) g->c.failed++;
        }
        gw_fifo_free(f);
    }
    s->pending_bytes = 0;
    gw_conflate_end(s);
}
