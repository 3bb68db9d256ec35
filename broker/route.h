/* route.h - gateways and their rings: attach, write with a backlog, route items, replay. */
#ifndef HERALD_BK_ROUTE_H
#define HERALD_BK_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sys/types.h>

#include "broker.h"
#include "log.h"
#include "ring.h"

/* A record waiting because the ring was full. */
typedef struct bk_backlog_rec {
    struct bk_backlog_rec *next;
    uint32_t type, len;
    uint8_t bytes[];
} bk_backlog_rec_t;

struct bk_gateway {
    unsigned id;
    ring_t *ring;         /* kept open after detach for re-attach and inspection */
    struct bk_conn *ctrl; /* control connection while attached */
    bool attached;
    bool dirty;        /* written this round, needs publish */
    uint64_t due_ns;   /* this round: when its most urgent record is due (0 = at once) */
    uint32_t deferred; /* notifications written since the consumer was last awake */
    pid_t pid;
    uint32_t users; /* users routed here */
    bk_backlog_rec_t *bl_head, *bl_tail;
    uint64_t bl_bytes, bl_count;
    uint64_t drops, records, attaches;
    log_ratelimit_t drop_rl;
};

#define BK_BACKLOG_RETRY_NS 1000000ull /* a gateway's backlog is retried every 1 ms */
void bk_route_init(broker_t *b);
/* Rings left by a previous broker keep their positions: re-open them as producer at start
 * so their gateways' hello re-attaches (and heraldctl sees a live producer). */
void bk_route_reopen(broker_t *b);
/* Gateway id (attached or once attached), or NULL. */
bk_gateway_t *bk_route_gateway(const broker_t *b, unsigned id);
/* Gateways attached now. */
unsigned bk_route_active(const broker_t *b);
bk_gateway_t *bk_route_attach(broker_t *b, unsigned id, pid_t pid, herald_error_t *err);
void bk_route_detach(broker_t *b, bk_gateway_t *g);
/* Write a record to a gateway (ring, or its backlog when full). NOTIFY records past the
 * backlog bound are dropped and counted; other records are never dropped. */
void bk_route_write(broker_t *b, bk_gateway_t *g, uint32_t type, const void *a, uint32_t alen,
                    const void *c, uint32_t clen);
void bk_route_item(broker_t *b, const bk_item_t *it);
void bk_route_publish(broker_t *b);
void bk_route_backlogs_drain(broker_t *b);
void bk_route_heartbeat(broker_t *b);
void bk_route_free(broker_t *b);
/* Gateway gw (if attached once) has delta users routed to it more; never below 0. */
void bk_route_gateway_users(broker_t *b, unsigned gw, int delta);
/* Replay (from, to] of user u into gateway g for session (0 = user-level), with REC_GAP
 * when history no longer covers the start, then REC_REPLAY_END(from+1, to). */
void bk_route_replay(broker_t *b, bk_gateway_t *g, bk_user_t *u, uint64_t session, uint64_t after,
                     uint64_t to, bool end_marker);

#endif
