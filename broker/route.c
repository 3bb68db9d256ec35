/* route.c - gateways and their rings: attach/detach, record writes, per-gateway backlog, replay. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker.h"
#include "items.h"
#include "proto.h"
#include "route.h"
#include "users.h"

/* The gateways this broker knows (attached now, or once: their rings stay open). */
struct bk_routing {
    bk_gateway_t *gws[BK_MAX_GATEWAYS];
    unsigned active;            /* attached */
    loop_timer_t backlog_timer; /* while a gateway has a backlog: retry every 1 ms */
    bool backlog_scheduled;
};

bk_gateway_t *bk_route_attach(broker_t *b, unsigned id, pid_t pid, herald_error_t *err)
{
    if (id >= BK_MAX_GATEWAYS) {
        herr_set(err, HERR_BAD_VALUE, "gw", "gateway id %u out of range (max %u)", id,
                 BK_MAX_GATEWAYS - 1);
        return NULL;
    }
    bk_gateway_t *g = b->routing->gws[id];
    if (g && g->attached) {
        herr_set(err, HERR_BAD_VALUE, "gw", "gateway %u is already attached (pid %d)", id,
                 (int)g->pid);
        return NULL;
    }
    if (!g) {
        g = calloc(1, sizeof *g);
        if (!g) abort();
        g->id = id;
        b->routing->gws[id] = g;
    }
    if (!g->ring) {
        char name[160];
        ring_name(name, sizeof name, b->cfg.shm_prefix, id);
        if (ring_open(&g->ring, name, RING_PRODUCER, b->cfg.ring_bytes, id, err) < 0) {
            g->ring = NULL;
            return NULL;
        }
    }
    g->attached = true;
    g->pid = pid;
    g->attaches++;
    b->routing->active++;
    log_info("gateway %u attached (pid %d)", id, (int)pid);
    return g;
}

/* Free the backlog; returns how many of its records were live notifications. */
static uint64_t backlog_clear(bk_gateway_t *g)
{
    uint64_t notify = 0;
    for (bk_backlog_rec_t *r = g->bl_head, *nx; r; r = nx) {
        nx = r->next;
        notify += r->type == REC_NOTIFY;
        free(r);
    }
    g->bl_head = g->bl_tail = NULL;
    g->bl_bytes = g->bl_count = 0;
    return notify;
}

void bk_route_detach(broker_t *b, bk_gateway_t *g)
{
    if (!g->attached) return;
    g->attached = false;
    g->ctrl = NULL;
    b->routing->active--;
    bk_users_routes_forget_gateway(b, g->id);
    g->users = 0;
    uint64_t records = g->bl_count, notify = backlog_clear(g);
    if (records) {
        /* Undelivered notifications: counted as drops (the gateway's clients resume or
         * see a gap when they reconnect). */
        g->drops += notify;
        b->c.ring_drops += notify;
        b->c.dropped += notify;
        log_warn("gateway %u detached with %llu backlogged records (%llu notifications) "
                 "discarded, counted as drops",
                 g->id, (unsigned long long)records, (unsigned long long)notify);
    }
    log_info("gateway %u detached (pid %d): routing to it stopped", g->id, (int)g->pid);
}

static void drop_notify(broker_t *b, bk_gateway_t *g)
{
    g->drops++;
    b->c.ring_drops++;
    b->c.dropped++;
    ring_count_drops(g->ring, 1);
    if (log_ratelimit_ok(&g->drop_rl, 1))
        log_warn("gateway %u: ring and backlog full, dropping notifications (%llu so far)", g->id,
                 (unsigned long long)g->drops);
}

static void backlog_push(broker_t *b, bk_gateway_t *g, uint32_t type, const void *a, uint32_t alen,
                         const void *c, uint32_t clen)
{
    bk_backlog_rec_t *r = malloc(sizeof *r + alen + clen);
    if (!r) abort();
    r->next = NULL;
    r->type = type;
    r->len = alen + clen;
    if (alen) memcpy(r->bytes, a, alen);
    if (clen) memcpy(r->bytes + alen, c, clen);
    if (g->bl_tail)
        g->bl_tail->next = r;
    else
        g->bl_head = r;
    g->bl_tail = r;
    g->bl_bytes += r->len;
    g->bl_count++;
    if (type == REC_NOTIFY) b->c.backlogged++; /* notifications, as drops count them */
    if (!b->routing->backlog_scheduled) {
        b->routing->backlog_scheduled = true;
        loop_timer_at(b->loop, &b->routing->backlog_timer, loop_now(b->loop) + BK_BACKLOG_RETRY_NS);
    }
}

void bk_route_write(broker_t *b, bk_gateway_t *g, uint32_t type, const void *a, uint32_t alen,
                    const void *c, uint32_t clen)
{
    if (!g->dirty) { /* the round's first record for g: say when they were written */
        g->dirty = true;
        g->due_ns = UINT64_MAX;
        rec_clock_t ck = {loop_now(b->loop)};
        bk_route_write(b, g, REC_CLOCK, &ck, sizeof ck, NULL, 0);
    }
    if (type != REC_NOTIFY && type != REC_CLOCK) g->due_ns = 0; /* control records: at once */
    if (!g->bl_head) {
        int rc = ring_write2(g->ring, type, a, alen, c, clen);
        if (rc == 0) {
            g->records++;
            return;
        }
        if (rc != -HERR_NO_ROOM) { /* larger than the ring's max record: never deliverable */
            drop_notify(b, g);
            return;
        }
    }
    if (type == REC_NOTIFY && g->bl_bytes + alen + clen > BK_BACKLOG_BYTES) {
        drop_notify(b, g);
        return;
    }
    backlog_push(b, g, type, a, alen, c, clen);
}

/* Write a notification to g; the round's doorbell decision learns when it is due (P0 at
 * once, P1..P3 at their flush delay from now: see ring_publish_due). */
static void route_to(broker_t *b, bk_gateway_t *g, const bk_item_t *it, uint64_t due)
{
    bk_route_write(b, g, REC_NOTIFY, it->bytes, it->len, NULL, 0);
    if (due < g->due_ns) g->due_ns = due;
    g->deferred++;
}

void bk_route_item(broker_t *b, const bk_item_t *it)
{
    uint64_t due = it->prio == 0
                       ? 0
                       : loop_now(b->loop) + (uint64_t)b->cfg.flush_ms[it->prio - 1] * 1000000ull;
    if (it->user == bk_users_bcast(b)) {
        for (unsigned i = 0; i < BK_MAX_GATEWAYS; i++)
            if (b->routing->gws[i] && b->routing->gws[i]->attached)
                route_to(b, b->routing->gws[i], it, due);
        return;
    }
    const bk_user_t *u = it->user;
    for (uint16_t i = 0; i < u->n_routes; i++) {
        bk_gateway_t *g = b->routing->gws[u->routes[i].gw];
        if (g && g->attached) route_to(b, g, it, due);
    }
}

void bk_route_publish(broker_t *b)
{
    for (unsigned i = 0; i < BK_MAX_GATEWAYS; i++) {
        bk_gateway_t *g = b->routing->gws[i];
        if (!g || !g->dirty) continue;
        g->dirty = false;
        /* One release store per round; the doorbell only when the consumer sleeps and has
         * not promised to wake by itself before the round's most urgent record is due. At
         * most batch_size notifications wait unread for its timer, so a session's batch
         * still flushes at batch_size (protocol.md 6), whichever of the two comes first. */
        uint64_t due = g->deferred >= b->cfg.batch_size ? 0 : g->due_ns;
        ring_pub_t pub = ring_publish_due(g->ring, due);
        if (pub == RING_PUB_WAKE) ring_wake(g->ring);
        if (pub != RING_PUB_WAITS) g->deferred = 0;
    }
}

void bk_route_backlogs_drain(broker_t *b)
{
    bool left = false;
    for (unsigned i = 0; i < BK_MAX_GATEWAYS; i++) {
        bk_gateway_t *g = b->routing->gws[i];
        if (!g || !g->bl_head) continue;
        while (g->bl_head) {
            bk_backlog_rec_t *r = g->bl_head;
            int rc = ring_write(g->ring, r->type, r->bytes, r->len);
            if (rc == -HERR_NO_ROOM) break;
            if (rc == 0) {
                g->records++;
                g->dirty = true;
                g->due_ns = 0; /* late already: no waiting for a deadline */
            } else {           /* larger than the ring's max record: can never be delivered */
                drop_notify(b, g);
            }
            g->bl_head = r->next;
            if (!g->bl_head) g->bl_tail = NULL;
            g->bl_bytes -= r->len;
            g->bl_count--;
            free(r);
        }
        if (g->bl_head) left = true;
    }
    bk_route_publish(b);
    b->routing->backlog_scheduled = left;
    if (left)
        loop_timer_at(b->loop, &b->routing->backlog_timer, loop_now(b->loop) + BK_BACKLOG_RETRY_NS);
}

static void backlog_cb(loop_t *l, loop_timer_t *t)
{
    (void)l;
    bk_route_backlogs_drain(t->ctx);
}

void bk_route_init(broker_t *b)
{
    b->routing = calloc(1, sizeof *b->routing);
    if (!b->routing) abort();
    loop_timer_init(&b->routing->backlog_timer, backlog_cb, b);
}

bk_gateway_t *bk_route_gateway(const broker_t *b, unsigned id)
{
    return id < BK_MAX_GATEWAYS ? b->routing->gws[id] : NULL;
}

unsigned bk_route_active(const broker_t *b)
{
    return b->routing->active;
}

void bk_route_reopen(broker_t *b)
{
    DIR *d = opendir("/dev/shm");
    if (!d) return;
    char prefix[80];
    snprintf(prefix, sizeof prefix, "%s.gw", b->cfg.shm_prefix);
    size_t pl = strlen(prefix);
    for (struct dirent *e; (e = readdir(d));) {
        unsigned id;
        char tail[8];
        if (strncmp(e->d_name, prefix, pl) || sscanf(e->d_name + pl, "%u%7s", &id, tail) != 2 ||
            strcmp(tail, ".ring") || id >= BK_MAX_GATEWAYS || b->routing->gws[id])
            continue;
        herald_error_t err;
        bk_gateway_t *g = calloc(1, sizeof *g);
        if (!g) abort();
        g->id = id;
        if (ring_open(&g->ring, e->d_name, RING_PRODUCER, b->cfg.ring_bytes, id, &err) < 0) {
            log_warn("ring %s not re-attached: %s", e->d_name, err.message);
            free(g);
            continue;
        }
        b->routing->gws[id] = g;
        log_info("ring %s re-attached as producer", e->d_name);
    }
    closedir(d);
}

void bk_route_heartbeat(broker_t *b)
{
    for (unsigned i = 0; i < BK_MAX_GATEWAYS; i++)
        if (b->routing->gws[i] && b->routing->gws[i]->ring)
            ring_heartbeat(b->routing->gws[i]->ring);
}

void bk_route_gateway_users(broker_t *b, unsigned gw, int delta)
{
    bk_gateway_t *g = b->routing->gws[gw];
    if (!g) return;
    if (delta > 0)
        g->users += (uint32_t)delta;
    else if (g->users)
        g->users--;
}

void bk_route_free(broker_t *b)
{
    for (unsigned i = 0; i < BK_MAX_GATEWAYS; i++) {
        bk_gateway_t *g = b->routing->gws[i];
        if (!g) continue;
        (void)backlog_clear(g);
        if (g->ring) ring_close(g->ring);
        free(g);
        b->routing->gws[i] = NULL;
    }
    free(b->routing);
    b->routing = NULL;
}

static void write_range(broker_t *b, bk_gateway_t *g, uint32_t type, bk_user_t *u, uint64_t session,
                        uint64_t from, uint64_t to)
{
    rec_range_t r = {.session = session, .from = from, .to = to};
    bk_route_write(b, g, type, &r, sizeof r, u->id, (uint32_t)strlen(u->id));
}

void bk_route_replay(broker_t *b, bk_gateway_t *g, bk_user_t *u, uint64_t session, uint64_t after,
                     uint64_t to, bool end_marker)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    if (to > u->last_seq) to = u->last_seq;
    uint64_t first = bk_users_history_first(b, u, now);
    b->c.replays++;
    rec_replay_t rh = {.session = session};
    /* Replays may land in the backlog (a full ring) and are not dropped there, so each one
     * is bounded as if it all did: one that would take the backlog past BK_BACKLOG_BYTES is
     * answered with a gap for the whole range instead (the client refetches state), else
     * every open of a stalled gateway could add history_size records. */
    uint64_t bytes = 0;
    for (bk_item_t *it = u->hist_head; it && it->seq <= to; it = it->next)
        if (it->seq > after) bytes += sizeof rh + it->len;
    if (bytes && g->bl_bytes + bytes > BK_BACKLOG_BYTES) {
        write_range(b, g, REC_GAP, u, session, after + 1, to);
        b->c.gaps++;
        b->c.replay_overflows++;
        if (log_ratelimit_ok(&g->drop_rl, 1))
            log_warn("gateway %u: backlog full, replay of %s (%llu bytes) answered with a gap "
                     "(%llu so far)",
                     g->id, u->id, (unsigned long long)bytes,
                     (unsigned long long)b->c.replay_overflows);
        if (end_marker) write_range(b, g, REC_REPLAY_END, u, session, after + 1, to);
        return;
    }
    if (after + 1 < first && after < to) {
        uint64_t gap_to = first - 1 < to ? first - 1 : to;
        write_range(b, g, REC_GAP, u, session, after + 1, gap_to);
        b->c.gaps++;
    }
    for (bk_item_t *it = u->hist_head; it; it = it->next) {
        if (it->seq <= after) continue;
        if (it->seq > to) break;
        bk_route_write(b, g, REC_REPLAY, &rh, sizeof rh, it->bytes, it->len);
    }
    if (end_marker) write_range(b, g, REC_REPLAY_END, u, session, after + 1, to);
}
