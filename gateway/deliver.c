/* deliver.c - per-session output: shared frames, P0-now / P1..P3-batched queues, flush
 * deadlines (three FIFO lists, one per priority, so the nearest deadline is a list head),
 * the slow-consumer bound (in the bytes each queued frame really holds) and coalesced
 * writes. */
#include <stdlib.h>
#include <string.h>

#include "fifo.h"
#include "gw.h"
#include "herald_time.h"
#include "log.h"

gw_msg_t *gw_msg_new(const void *data, size_t len, bool binary)
{
    gw_msg_t *m = malloc(sizeof *m + LWS_PRE + len);
    if (!m) abort();
    m->refs = 1;
    m->len = (uint32_t)len;
    m->binary = binary;
    m->notification = m->live = m->conflatable = m->conflated = false;
    m->prio = m->type = 0;
    m->cap = 0;
    m->ts_ns = m->seq = m->ckey = 0;
    if (len) memcpy(gw_msg_data(m), data, len);
    return m;
}

void gw_msg_unref(gw_msg_t *m)
{
    if (m && --m->refs == 0) free(m);
}

static void fifo_free(gw_fifo_t *f)
{
    while (fifo_front(f)) {
        gw_msg_unref(fifo_front(f));
        fifo_pop(f);
    }
    free(f->items);
    memset(f, 0, sizeof *f);
}

static void dl_unlink(gw_t *g, gw_session_t *s, unsigned i)
{
    if (!s->dl[i].on) return;
    if (s->dl[i].prev)
        s->dl[i].prev->dl[i].next = s->dl[i].next;
    else
        g->dl[i].head = s->dl[i].next;
    if (s->dl[i].next)
        s->dl[i].next->dl[i].prev = s->dl[i].prev;
    else
        g->dl[i].tail = s->dl[i].prev;
    s->dl[i].next = s->dl[i].prev = NULL;
    s->dl[i].on = false;
}

/* Deadlines of one priority are appended in time order (same delay for all), so each list
 * stays sorted without a heap. */
static void dl_append(gw_t *g, gw_session_t *s, unsigned i, uint64_t deadline)
{
    s->dl[i].deadline_ns = deadline;
    s->dl[i].next = NULL;
    s->dl[i].prev = g->dl[i].tail;
    if (g->dl[i].tail)
        g->dl[i].tail->dl[i].next = s;
    else
        g->dl[i].head = s;
    g->dl[i].tail = s;
    s->dl[i].on = true;
}

/* When the notification being delivered was written to the ring (its REC_CLOCK, or now when
 * the broker sent none), never earlier than the previous origin: each deadline list stays
 * in time order. */
static uint64_t deliver_origin(gw_t *g)
{
    uint64_t o = g->rec_clock_ns && g->rec_clock_ns < g->now_ns ? g->rec_clock_ns : g->now_ns;
    if (o < g->dl_origin_ns) o = g->dl_origin_ns;
    g->dl_origin_ns = o;
    return o;
}

void gw_session_want_write(gw_t *g, gw_session_t *s)
{
    if (s->writable_requested || !s->wsi) return;
    if (g->in_reap && !s->deflate && !s->close_code) {
        if (!s->on_wlist) {
            s->on_wlist = true;
            s->wnext = g->wlist;
            g->wlist = s;
        }
        return;
    }
    s->writable_requested = true;
    lws_callback_on_writable(s->wsi);
}

void gw_deliver_write_now(gw_t *g)
{
    gw_session_t *s = g->wlist;
    g->wlist = NULL;
    g->in_reap = false; /* what is left after a partial send waits for a writable callback */
    while (s) {
        gw_session_t *next = s->wnext;
        s->on_wlist = false;
        s->wnext = NULL;
        /* a session closed during the pass asked for its writable callback already */
        if (s->wsi && s->user && !s->close_code && !s->writable_requested &&
            gw_session_write(g, s) < 0)
            lws_set_timeout(s->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        s = next;
    }
}

void gw_session_close_later(gw_t *g, gw_session_t *s, uint16_t code, const char *reason)
{
    if (s->close_code) return;
    if (s->user) s->user->n_open--;
    s->close_code = code;
    s->close_reason = reason;
    gw_deliver_drop(g, s);
    gw_session_want_write(g, s);
    /* A peer that never reads never makes us writable: kill it after a grace period. */
    if (s->wsi) lws_set_timeout(s->wsi, PENDING_TIMEOUT_USER_OK, 5);
}

void gw_deliver_overflow(gw_t *g, gw_session_t *s, gw_msg_t *m)
{
    g->c.slow_closes++;
    if (m->notification) g->c.failed++;
    log_warn("session %s (user %s): %zu bytes pending, closing as slow consumer", s->id_str,
             s->user ? s->user->id : "?", s->pending_bytes);
    gw_session_close_later(g, s, 4008, "slow consumer");
}

uint64_t gw_deliver_push(gw_t *g, gw_session_t *s, gw_msg_t *m, unsigned prio)
{
    (void)g;
    s->pending_bytes += gw_msg_cost(m);
    return fifo_push(prio == 0 || prio >= HERALD_PRIORITIES ? &s->ready : &s->held, m);
}

void gw_deliver_pushed(gw_t *g, gw_session_t *s, unsigned prio)
{
    if (prio == 0 || prio >= HERALD_PRIORITIES) {
        gw_session_want_write(g, s);
        return;
    }
    if (fifo_frames(&s->held) >= g->cfg.batch_size) {
        gw_session_flush(g, s);
        return;
    }
    unsigned i = prio - 1;
    if (!s->dl[i].on) dl_append(g, s, i, deliver_origin(g) + g->cfg.flush_ms[i] * GW_NS_PER_MS);
}

void gw_deliver(gw_t *g, gw_session_t *s, gw_msg_t *m, unsigned prio)
{
    if (s->close_code) return;
    if (s->pending_bytes + gw_msg_cost(m) > g->cfg.max_pending_bytes) {
        gw_deliver_overflow(g, s, m);
        return;
    }
    m->refs++;
    gw_deliver_push(g, s, m, prio);
    gw_deliver_pushed(g, s, prio);
}

void gw_session_flush(gw_t *g, gw_session_t *s)
{
    for (unsigned i = 0; i < HERALD_PRIORITIES - 1; i++)
        dl_unlink(g, s, i);
    if (!s->held.count) return;
    /* Move every slot, holes too, so positions keep their distances (conflation's index
     * follows them with one offset). */
    uint64_t held_base = s->held.base, ready_end = s->ready.base + s->ready.count;
    while (s->held.count) {
        gw_msg_t *m = s->held.items[s->held.head];
        fifo_push(&s->ready, m);
        if (!m) s->ready.holes++;
        fifo_pop(&s->held);
    }
    if (s->cf) gw_conflate_moved(s, held_base, ready_end);
    if (s->ready.count > s->ready.holes) gw_session_want_write(g, s);
}

uint64_t gw_deliver_due(gw_t *g, uint64_t now_ns)
{
    uint64_t next = 0;
    for (unsigned i = 0; i < HERALD_PRIORITIES - 1; i++) {
        gw_session_t *s;
        while ((s = g->dl[i].head) && s->dl[i].deadline_ns <= now_ns)
            gw_session_flush(g, s);
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

int gw_session_write(gw_t *g, gw_session_t *s)
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
    while (fifo_front(&s->ready) && !lws_partial_buffered(s->wsi)) {
        unsigned char *out = g->wbuf + LWS_PRE;
        size_t used = 0, frames = 0, pushed = 0, timed = 0;
        gw_msg_t *m;
        while (!s->deflate && frames < GW_WRITE_FRAMES && (m = fifo_front(&s->ready)) &&
               used + m->len + 10 <= GW_WRITE_COALESCE) {
            used += ws_frame(out + used, m);
            frames++;
            pushed += m->notification;
            g->c.conflated_frames += m->conflated;
            if (m->live) g->wtimes[timed++] = (gw_wtime_t){m->ts_ns, m->prio};
            s->pending_bytes -= gw_msg_cost(m);
            fifo_pop(&s->ready);
            gw_msg_unref(m);
        }
        if (!frames) { /* deflate, or one frame larger than the coalescing buffer */
            m = fifo_front(&s->ready);
            if (lws_write(s->wsi, gw_msg_data(m), m->len,
                          m->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT) < 0) {
                g->c.failed += m->notification;
                return -1;
            }
            g->c.pushed += m->notification;
            g->c.conflated_frames += m->conflated;
            if (m->live) g->wtimes[timed++] = (gw_wtime_t){m->ts_ns, m->prio};
            deliver_timed(g, timed);
            s->pending_bytes -= gw_msg_cost(m);
            fifo_pop(&s->ready);
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
    if (fifo_front(&s->ready)) gw_session_want_write(g, s);
    /* Written down to half the threshold: conflation stops (its index goes). */
    if (s->cf && s->pending_bytes < g->conflate_bytes / 2) gw_conflate_end(s);
    return 0;
}

/* The write of n live notifications (g->wtimes) was accepted: their delivery latency. */
static void deliver_timed(gw_t *g, size_t n)
{
    if (!n) return;
    uint64_t now = now_ns();
    for (size_t i = 0; i < n; i++) {
        uint64_t ts = g->wtimes[i].ts_ns;
        latency_record(&g->deliver_lat, g->wtimes[i].prio, now > ts ? now - ts : 0);
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
        fifo_free(f);
    }
    s->pending_bytes = 0;
    gw_conflate_end(s);
}
