/* revoke.c - revocation on the gateway (POST /api/disconnect on the broker, protocol.md 12): the
 * broker's `disconnect` closes a user's sessions with 4003, and with `until` locks the user
 * out: handshakes of a locked user get 401 until then. Locks live in a small chained hash
 * table keyed by user id; a handshake pays one lookup only while some lock exists. */
#include "revoke.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deliver.h"
#include "herald_time.h"
#include "log.h"
#include "users.h"

typedef struct lock {
    struct lock *next;
    uint64_t until_ns; /* wall clock */
    char user[HERALD_MAX_ID_LEN + 1];
} lock_t;

struct gw_revoke {
    lock_t **tab;
    size_t size, count; /* size: a power of two */
};

static size_t revoke_bucket(const struct gw_revoke *r, const char *user)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a: locks are few and set by the operator */
    for (const char *p = user; *p; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211ull;
    return (size_t)(h ^ (h >> 29)) & (r->size - 1);
}

void gw_revoke_init(gw_t *g)
{
    g->revoke = calloc(1, sizeof *g->revoke);
    if (!g->revoke) abort();
}

void gw_revoke_fini(gw_t *g)
{
    struct gw_revoke *r = g->revoke;
    if (!r) return;
    for (size_t i = 0; i < r->size; i++)
        for (lock_t *l = r->tab[i], *nx; l; l = nx) {
            nx = l->next;
            free(l);
        }
    free(r->tab);
    free(r);
    g->revoke = NULL;
}

static lock_t **revoke_find(struct gw_revoke *r, const char *user)
{
    if (!r->size) return NULL;
    for (lock_t **pp = &r->tab[revoke_bucket(r, user)]; *pp; pp = &(*pp)->next)
        if (strcmp((*pp)->user, user) == 0) return pp;
    return NULL;
}

static void revoke_unlink(struct gw_revoke *r, lock_t **pp)
{
    lock_t *l = *pp;
    *pp = l->next;
    free(l);
    r->count--;
}

bool gw_revoke_locked(gw_t *g, const char *user)
{
    struct gw_revoke *r = g->revoke;
    if (!r->count) return false;
    lock_t **pp = revoke_find(r, user);
    if (!pp) return false;
    if ((*pp)->until_ns > now_ns()) return true;
    revoke_unlink(r, pp);
    return false;
}

static void revoke_grow(struct gw_revoke *r)
{
    size_t nsize = r->size ? r->size * 2 : 64;
    lock_t **nt = calloc(nsize, sizeof *nt);
    if (!nt) abort();
    struct gw_revoke n = {.tab = nt, .size = nsize};
    for (size_t i = 0; i < r->size; i++)
        for (lock_t *l = r->tab[i], *nx; l; l = nx) {
            nx = l->next;
            size_t b = revoke_bucket(&n, l->user);
            l->next = nt[b];
            nt[b] = l;
        }
    free(r->tab);
    r->tab = nt;
    r->size = nsize;
}

void gw_revoke_lock(gw_t *g, const char *user, uint64_t until_ns)
{
    struct gw_revoke *r = g->revoke;
    lock_t **pp = revoke_find(r, user);
    if (until_ns <= now_ns()) {
        if (pp) revoke_unlink(r, pp);
        return;
    }
    if (pp) {
        (*pp)->until_ns = until_ns;
        return;
    }
    if (r->count >= r->size) revoke_grow(r);
    lock_t *l = calloc(1, sizeof *l);
    if (!l) abort();
    snprintf(l->user, sizeof l->user, "%s", user);
    l->until_ns = until_ns;
    size_t b = revoke_bucket(r, user);
    l->next = r->tab[b];
    r->tab[b] = l;
    r->count++;
}

unsigned gw_revoke_disconnect(gw_t *g, const char *user)
{
    gw_user_t *u = gw_users_find(g->users, user, strlen(user));
    unsigned closed = 0;
    if (!u) return 0;
    for (gw_session_t *s = u->sessions; s; s = s->unext) {
        if (s->close_code) continue;
        gw_deliver_close_later(g, s, 4003, "disconnected");
        closed++;
    }
    g->c.disconnect_closes += closed;
    if (closed) log_info("user %s: %u session(s) closed by /api/disconnect", user, closed);
    return closed;
}

void gw_revoke_each(gw_t *g, void (*fn)(gw_t *g, const char *user, uint64_t until_ns))
{
    struct gw_revoke *r = g->revoke;
    uint64_t now = now_ns();
    for (size_t i = 0; i < r->size; i++)
        for (lock_t *l = r->tab[i]; l; l = l->next)
            if (l->until_ns > now) fn(g, l->user, l->until_ns);
}

void gw_revoke_sweep(gw_t *g)
{
    struct gw_revoke *r = g->revoke;
    if (!r->count) return;
    uint64_t now = now_ns();
    for (size_t i = 0; i < r->size; i++)
        for (lock_t **pp = &r->tab[i]; *pp;) {
            if ((*pp)->until_ns <= now)
                revoke_unlink(r, pp);
            else
                pp = &(*pp)->next;
        }
}
