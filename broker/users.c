/* users.c - the user table: per-user sequence, bounded history, gateway routes, and the
 * sweep that forgets idle users (their seq carried on by the floors). */
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "herald_time.h"
#include "items.h"
#include "seedhash.h"
#include "users.h"

struct bk_users {
    bk_user_t **tab; /* chained by hnext, size a power of two */
    size_t size, n;
    size_t active;    /* users with a route */
    bk_user_t *bcast; /* the broadcast user "*" */
    uint64_t *floors; /* BK_FLOOR_SLOTS seq floors (see BK_FLOOR_SLOTS) */
    size_t sweep;     /* the bucket bk_users_sweep goes on from */
    bool loading;     /* the journal is being replayed: users get no floor */
    uint64_t mem;     /* user records and their route arrays (broker.max_memory) */
};

/* Keyed per process (user ids come from producers): only this table depends on it. */
uint32_t bk_users_hash(const char *s, size_t len)
{
    return (uint32_t)seedhash(s, len);
}

/* FNV-1a: fixed, since the journal keeps floors by slot. Someone who picks ids to share a
 * slot can only make a forgotten user come back with a higher seq (a gap, never a repeat). */
uint32_t bk_users_floor_slot(const char *id, size_t len)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (uint8_t)id[i]) * 16777619u;
    return h & (BK_FLOOR_SLOTS - 1);
}

void bk_users_floor_raise(broker_t *b, uint32_t slot, uint64_t seq)
{
    if (slot < BK_FLOOR_SLOTS && seq > b->users->floors[slot]) b->users->floors[slot] = seq;
}

int bk_users_init(broker_t *b)
{
    b->users = calloc(1, sizeof *b->users);
    if (!b->users) return -1;
    b->users->size = 1024;
    b->users->tab = calloc(b->users->size, sizeof *b->users->tab);
    b->users->floors = calloc(BK_FLOOR_SLOTS, sizeof *b->users->floors);
    if (!b->users->tab || !b->users->floors) return -1;
    b->mem_fixed += BK_FLOOR_SLOTS * sizeof *b->users->floors;
    b->users->bcast = bk_users_get(b, HERALD_BROADCAST_USER, 1, true);
    return 0;
}

static void users_grow(broker_t *b)
{
    size_t size = b->users->size * 2;
    bk_user_t **tab = calloc(size, sizeof *tab);
    if (!tab) return; /* keep the longer chains */
    for (size_t i = 0; i < b->users->size; i++) {
        for (bk_user_t *u = b->users->tab[i], *nx; u; u = nx) {
            nx = u->hnext;
            size_t h = u->hash & (size - 1);
            u->hnext = tab[h];
            tab[h] = u;
        }
    }
    free(b->users->tab);
    b->users->tab = tab;
    b->users->size = size;
}

void bk_users_prefetch(broker_t *b, uint32_t hash)
{
    bk_user_t *u = b->users->tab[hash & (b->users->size - 1)]; /* the table itself stays cached */
    if (u) __builtin_prefetch(u);
}

bk_user_t *bk_users_get(broker_t *b, const char *id, size_t len, bool create)
{
    return bk_users_get_hashed(b, id, len, bk_users_hash(id, len), create);
}

bk_user_t *bk_users_get_hashed(broker_t *b, const char *id, size_t len, uint32_t hash, bool create)
{
    if (len > HERALD_MAX_ID_LEN) return NULL;
    size_t h = hash & (b->users->size - 1);
    for (bk_user_t *u = b->users->tab[h]; u; u = u->hnext)
        if (u->hash == hash && u->id_len == len && !memcmp(u->id, id, len)) return u;
    if (!create) return NULL;
    bk_user_t *u = calloc(1, sizeof *u);
    if (!u) abort();
    memcpy(u->id, id, len);
    u->id_len = (uint8_t)len;
    u->hash = hash;
    u->last_ns = now_ns();
    /* Created again after being forgotten (or first seen in a slot where someone was): its
     * seqs go on above anything a client may still hold. A journal being replayed says
     * exactly where each user was, so it gets none; nor does a cluster node, whose seqs come
     * from the partition's owner (a floor there would hide the stream's records below it). */
    if (!b->users->loading && !b->cl) u->last_seq = b->users->floors[bk_users_floor_slot(id, len)];
    b->users->mem += sizeof *u;
    u->hnext = b->users->tab[h];
    b->users->tab[h] = u;
    if (++b->users->n > b->users->size) users_grow(b);
    return u;
}

static void history_pop(bk_user_t *u)
{
    bk_item_t *it = u->hist_head;
    u->hist_head = it->next;
    if (!u->hist_head) u->hist_tail = NULL;
    u->hist_count--;
    bk_items_free(it);
}

void bk_users_history_trim(broker_t *b, bk_user_t *u, uint64_t now_ns)
{
    uint64_t age = (uint64_t)b->cfg.history_age_s * 1000000000ull;
    while (u->hist_head && (u->hist_count > b->cfg.history_size ||
                            (now_ns > age && u->hist_head->at_ns < now_ns - age)))
        history_pop(u);
}

void bk_users_history_append(broker_t *b, bk_user_t *u, bk_item_t *it)
{
    it->next = NULL;
    if (u->hist_tail)
        u->hist_tail->next = it;
    else
        u->hist_head = it;
    u->hist_tail = it;
    u->hist_count++;
    bk_users_history_trim(b, u, it->at_ns);
}

uint64_t bk_users_history_first(broker_t *b, bk_user_t *u, uint64_t now_ns)
{
    bk_users_history_trim(b, u, now_ns);
    return u->hist_head ? u->hist_head->seq : u->last_seq + 1;
}

uint32_t bk_users_route_refs(const bk_user_t *u, unsigned gw)
{
    for (uint16_t i = 0; i < u->n_routes; i++)
        if (u->routes[i].gw == gw) return u->routes[i].refs;
    return 0;
}

void bk_users_route_add(broker_t *b, bk_user_t *u, unsigned gw, uint32_t n)
{
    for (uint16_t i = 0; i < u->n_routes; i++) {
        if (u->routes[i].gw == gw) {
            u->routes[i].refs += n;
            return;
        }
    }
    if (u->n_routes == u->cap_routes) {
        uint16_t cap = u->cap_routes ? (uint16_t)(u->cap_routes * 2) : 2;
        struct bk_route *r = realloc(u->routes, cap * sizeof *r);
        if (!r) abort();
        b->users->mem += (uint64_t)(cap - u->cap_routes) * sizeof *r;
        u->routes = r;
        u->cap_routes = cap;
    }
    u->last_ns = now_ns();
    u->routes[u->n_routes++] = (struct bk_route){(uint16_t)gw, n};
    b->hooks.gateway_users(b, gw, 1);
    if (!u->active) {
        u->active = true;
        b->users->active++;
        b->hooks.user_online(b, u->id, u->id_len);
    }
    log_debug("user %s subscribed on gateway %u", u->id, gw);
}

static void route_remove_at(broker_t *b, bk_user_t *u, uint16_t i)
{
    unsigned gw = u->routes[i].gw;
    u->routes[i] = u->routes[--u->n_routes];
    b->hooks.gateway_users(b, gw, -1);
    if (!u->n_routes && u->active) {
        u->active = false;
        b->users->active--;
        b->hooks.user_offline(b, u->id, u->id_len);
    }
    log_debug("user %s unsubscribed from gateway %u", u->id, gw);
}

void bk_users_route_del(broker_t *b, bk_user_t *u, unsigned gw, uint32_t n)
{
    u->last_ns = now_ns();
    for (uint16_t i = 0; i < u->n_routes; i++) {
        if (u->routes[i].gw != gw) continue;
        if (u->routes[i].refs > n)
            u->routes[i].refs -= n;
        else
            route_remove_at(b, u, i);
        return;
    }
}

void bk_users_routes_forget_gateway(broker_t *b, unsigned gw)
{
    for (size_t h = 0; h < b->users->size; h++)
        for (bk_user_t *u = b->users->tab[h]; u; u = u->hnext)
            for (uint16_t i = 0; i < u->n_routes; i++)
                if (u->routes[i].gw == gw) {
                    route_remove_at(b, u, i);
                    break;
                }
}

/* Free u (idle, unlinked from its chain by the caller). */
static void user_forget(broker_t *b, bk_user_t *u)
{
    if (u->last_seq) {
        uint32_t slot = bk_users_floor_slot(u->id, u->id_len);
        if (u->last_seq > b->users->floors[slot]) {
            b->users->floors[slot] = u->last_seq;
            b->hooks.floor_raised(b, slot, u->last_seq);
        }
    }
    b->users->mem -= sizeof *u + (uint64_t)u->cap_routes * sizeof *u->routes;
    b->users->n--;
    b->c.users_forgotten++;
    log_debug("user %s forgotten (idle, last seq %llu)", u->id, (unsigned long long)u->last_seq);
    free(u->routes);
    free(u);
}

size_t bk_users_sweep(broker_t *b, uint64_t now_ns)
{
    uint64_t age = (uint64_t)b->cfg.history_age_s * 1000000000ull;
    size_t budget = b->users->n / 30 > 1024 ? b->users->n / 30 : 1024, forgotten = 0;
    size_t buckets = b->users->size;
    if (b->users->sweep >= buckets) b->users->sweep = 0;
    for (size_t n = 0; n < buckets && budget; n++) {
        bk_user_t **pp = &b->users->tab[b->users->sweep];
        while (*pp) {
            bk_user_t *u = *pp;
            budget -= budget > 0;
            bk_users_history_trim(b, u, now_ns);
            if (u != b->users->bcast && !u->n_routes && !u->queued && !u->hist_head && !u->cl_seq &&
                now_ns - u->last_ns >= age && now_ns > u->last_ns) {
                *pp = u->hnext;
                user_forget(b, u);
                forgotten++;
            } else {
                pp = &u->hnext;
            }
        }
        if (++b->users->sweep == buckets) b->users->sweep = 0;
    }
    return forgotten;
}

void bk_users_free(broker_t *b)
{
    for (size_t h = 0; h < b->users->size; h++) {
        for (bk_user_t *u = b->users->tab[h], *nx; u; u = nx) {
            nx = u->hnext;
            while (u->hist_head)
                history_pop(u);
            free(u->routes);
            free(u);
        }
    }
    free(b->users->tab);
    b->users->tab = NULL;
    free(b->users->floors);
    free(b->users);
    b->users = NULL;
}

bk_user_t *bk_users_bcast(const broker_t *b)
{
    return b->users->bcast;
}

size_t bk_users_count(const broker_t *b)
{
    return b->users->n;
}

size_t bk_users_active(const broker_t *b)
{
    return b->users->active;
}

uint64_t bk_users_floor(const broker_t *b, uint32_t slot)
{
    return b->users->floors[slot];
}

void bk_users_loading(broker_t *b, bool on)
{
    b->users->loading = on;
}

void bk_users_each(broker_t *b, bk_users_visit_fn fn, void *ctx)
{
    for (size_t h = 0; h < b->users->size; h++)
        for (bk_user_t *u = b->users->tab[h]; u; u = u->hnext)
            fn(u, ctx);
}

uint64_t bk_mem_used(const broker_t *b)
{
    return b->mem_fixed + b->users->mem + bk_items_live;
}
