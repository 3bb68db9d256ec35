/* users.h - users: the table, seq floors of forgotten users, histories, routes and the sweep. */
#ifndef HERALD_BK_USERS_H
#define HERALD_BK_USERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker.h"
#include "items.h"

/* A user (or the broadcast user "*"): sequence, history, routes. Forgotten (freed) by
 * bk_users_sweep once idle past history_age_s, never while an item or a route refers to it. */
struct bk_user {
    struct bk_user *hnext;
    uint64_t last_seq;
    uint64_t last_ns; /* wall clock of its last sequenced notification or session change */
    uint32_t queued;  /* its items still in a priority queue (they point at it) */
    bk_item_t *hist_head, *hist_tail; /* oldest .. newest */
    uint32_t hist_count;
    uint16_t n_routes, cap_routes;
    struct bk_route *routes; /* gateways with a session of this user, refcounted */
    bool active;             /* counted in active_users */
    uint8_t id_len;
    uint16_t cl_part1; /* cluster: its partition + 1 (0 = not computed yet) */
    /* Cluster mode: last_seq is the last seq delivered here (history, rings); cl_seq the last
     * one this node sequenced while it owns the user's partition (0 otherwise). A user with
     * a cl_seq is not forgotten. */
    uint64_t cl_seq;
    uint32_t hash; /* of id: compared before the id on lookup, kept for rehashing */
    char id[HERALD_MAX_ID_LEN + 1];
};

struct bk_route {
    uint16_t gw;
    uint32_t refs; /* open sessions of the user on that gateway */
};

/* Seq floors of forgotten users: a user created again starts after its slot's floor, the
 * highest last seq of any user forgotten into that slot (slot = a fixed FNV-1a of the id,
 * not the keyed table hash: the journal keeps the floors). 512 KiB. */
#define BK_FLOOR_SLOTS (1u << 16)

int bk_users_init(broker_t *b);
/* The user id[0..len), created if absent when create; NULL if not found or len is over
 * HERALD_MAX_ID_LEN. The _hashed form takes bk_users_hash(id, len) computed earlier. */
bk_user_t *bk_users_get(broker_t *b, const char *id, size_t len, bool create);
bk_user_t *bk_users_get_hashed(broker_t *b, const char *id, size_t len, uint32_t hash, bool create);
uint32_t bk_users_hash(const char *id, size_t len);
/* Start loading the first user of hash's chain (ingest prefetches before it looks up). */
void bk_users_prefetch(broker_t *b, uint32_t hash);
void bk_users_history_append(broker_t *b, bk_user_t *u, bk_item_t *it);
void bk_users_history_trim(broker_t *b, bk_user_t *u, uint64_t now_ns);
/* First seq the history still holds (last_seq + 1 if empty). */
uint64_t bk_users_history_first(broker_t *b, bk_user_t *u, uint64_t now_ns);
uint32_t bk_users_route_refs(const bk_user_t *u, unsigned gw);
void bk_users_route_add(broker_t *b, bk_user_t *u, unsigned gw, uint32_t n);
void bk_users_route_del(broker_t *b, bk_user_t *u, unsigned gw, uint32_t n);
void bk_users_routes_forget_gateway(broker_t *b, unsigned gw);
void bk_users_free(broker_t *b);
/* One step of the sweep, from the 1 s tick (nothing is done per publish): visits the next
 * max(1024, users / 30) users, so every user is seen within about 30 s; trims their
 * history by age, and forgets users idle past history_age_s with no session, nothing
 * queued and no history left, raising their floor slot to their last seq (and appending
 * that to the journal). Returns the users forgotten. */
size_t bk_users_sweep(broker_t *b, uint64_t now_ns);
/* The floor slot of a user id. */
uint32_t bk_users_floor_slot(const char *id, size_t len);
void bk_users_floor_raise(broker_t *b, uint32_t slot, uint64_t seq);

/* Memory counted against broker.max_memory: the fixed tables, users and their routes, live
 * items. */
uint64_t bk_mem_used(const broker_t *b);
/* The broadcast user "*". */
bk_user_t *bk_users_bcast(const broker_t *b);
/* Users known, and those with a route (active). */
size_t bk_users_count(const broker_t *b);
size_t bk_users_active(const broker_t *b);
/* The seq floor of slot (< BK_FLOOR_SLOTS): 0 if never raised. */
uint64_t bk_users_floor(const broker_t *b, uint32_t slot);
/* While on (the journal is replayed) users are created without a floor. */
void bk_users_loading(broker_t *b, bool on);
/* Visit every user (the journal's snapshot). fn must not add or forget users. */
typedef void (*bk_users_visit_fn)(bk_user_t *u, void *ctx);
void bk_users_each(broker_t *b, bk_users_visit_fn fn, void *ctx);

#endif
