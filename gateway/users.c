/* users.c - the users and sessions this gateway serves: the user table (by user_id), the
 * session table (by session id), the list of every session and the broadcast user. */
#include "users.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "seedhash.h"

struct gw_users {
    gw_session_t *all; /* every session, newest first */
    size_t n_sessions;
    gw_session_t **sess_tab;
    size_t sess_tab_size;
    gw_user_t **user_tab;
    size_t user_tab_size, n_users;
    gw_user_t bcast; /* the broadcast sequence ("*"); its sessions are all sessions */
    uint64_t next_id;
};

/* Keyed per process: user ids come from tokens, so from outside. */
static uint64_t hash_bytes(const char *p, size_t n)
{
    return seedhash(p, n);
}

static uint64_t hash_u64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x;
}

gw_users_t *gw_users_new(uint64_t first_id)
{
    gw_users_t *t = calloc(1, sizeof *t);
    if (!t) abort();
    snprintf(t->bcast.id, sizeof t->bcast.id, "%s", HERALD_BROADCAST_USER);
    t->next_id = first_id;
    return t;
}

static void user_free(gw_user_t *u)
{
    for (size_t i = 0; i < u->n_held; i++)
        free(u->held[i].bytes);
    free(u->held);
    free(u);
}

void gw_users_free(gw_users_t *t)
{
    if (!t) return;
    for (size_t i = 0; i < t->user_tab_size; i++)
        for (gw_user_t *u = t->user_tab[i], *next; u; u = next) {
            next = u->hnext;
            user_free(u);
        }
    for (size_t i = 0; i < t->bcast.n_held; i++)
        free(t->bcast.held[i].bytes);
    free(t->bcast.held);
    free(t->user_tab);
    free(t->sess_tab);
    free(t);
}

static void user_tab_grow(gw_users_t *t)
{
    size_t nsize = t->user_tab_size ? t->user_tab_size * 2 : 1024;
    gw_user_t **nt = calloc(nsize, sizeof *nt);
    if (!nt) abort();
    for (size_t i = 0; i < t->user_tab_size; i++) {
        gw_user_t *u = t->user_tab[i], *next;
        for (; u; u = next) {
            next = u->hnext;
            size_t b = hash_bytes(u->id, strlen(u->id)) & (nsize - 1);
            u->hnext = nt[b];
            nt[b] = u;
        }
    }
    free(t->user_tab);
    t->user_tab = nt;
    t->user_tab_size = nsize;
}

gw_user_t *gw_users_find(gw_users_t *t, const char *id, size_t len)
{
    if (!t->user_tab_size) return NULL;
    size_t b = hash_bytes(id, len) & (t->user_tab_size - 1);
    for (gw_user_t *u = t->user_tab[b]; u; u = u->hnext)
        if (strlen(u->id) == len && !memcmp(u->id, id, len)) return u;
    return NULL;
}

static gw_user_t *user_get(gw_users_t *t, const char *id)
{
    size_t len = strlen(id);
    gw_user_t *u = gw_users_find(t, id, len);
    if (u) return u;
    if (t->n_users >= t->user_tab_size) user_tab_grow(t);
    u = calloc(1, sizeof *u);
    if (!u) abort();
    memcpy(u->id, id, len + 1);
    size_t b = hash_bytes(id, len) & (t->user_tab_size - 1);
    u->hnext = t->user_tab[b];
    t->user_tab[b] = u;
    t->n_users++;
    return u;
}

static void user_remove(gw_users_t *t, gw_user_t *u)
{
    size_t b = hash_bytes(u->id, strlen(u->id)) & (t->user_tab_size - 1);
    for (gw_user_t **pp = &t->user_tab[b]; *pp; pp = &(*pp)->hnext) {
        if (*pp == u) {
            *pp = u->hnext;
            t->n_users--;
            break;
        }
    }
    user_free(u);
}

gw_user_t *gw_users_bcast(gw_users_t *t)
{
    return &t->bcast;
}

gw_session_t *gw_users_all(gw_users_t *t)
{
    return t->all;
}

size_t gw_users_n_sessions(const gw_users_t *t)
{
    return t->n_sessions;
}

size_t gw_users_n_users(const gw_users_t *t)
{
    return t->n_users;
}

void gw_users_each(gw_users_t *t, void (*fn)(gw_user_t *u, void *ctx), void *ctx)
{
    for (size_t b = 0; b < t->user_tab_size; b++)
        for (gw_user_t *u = t->user_tab[b]; u; u = u->hnext)
            fn(u, ctx);
}

static void sess_tab_grow(gw_users_t *t)
{
    size_t nsize = t->sess_tab_size ? t->sess_tab_size * 2 : 1024;
    gw_session_t **nt = calloc(nsize, sizeof *nt);
    if (!nt) abort();
    for (size_t i = 0; i < t->sess_tab_size; i++) {
        gw_session_t *s = t->sess_tab[i], *next;
        for (; s; s = next) {
            next = s->hnext;
            size_t b = hash_u64(s->id) & (nsize - 1);
            s->hnext = nt[b];
            nt[b] = s;
        }
    }
    free(t->sess_tab);
    t->sess_tab = nt;
    t->sess_tab_size = nsize;
}

static void sess_tab_del(gw_users_t *t, gw_session_t *s)
{
    if (!t->sess_tab_size) return;
    size_t b = hash_u64(s->id) & (t->sess_tab_size - 1);
    for (gw_session_t **pp = &t->sess_tab[b]; *pp; pp = &(*pp)->hnext) {
        if (*pp == s) {
            *pp = s->hnext;
            return;
        }
    }
}

void gw_users_add(gw_users_t *t, gw_session_t *s, const char *user_id)
{
    s->id = ++t->next_id;
    gw_user_t *u = user_get(t, user_id);
    s->user = u;
    s->unext = u->sessions;
    if (u->sessions) u->sessions->uprev = s;
    u->sessions = s;
    u->n_sessions++;
    u->n_open++;
    u->n_acks += s->acks;
    s->anext = t->all;
    if (t->all) t->all->aprev = s;
    t->all = s;
    if (t->n_sessions >= t->sess_tab_size) sess_tab_grow(t);
    size_t b = hash_u64(s->id) & (t->sess_tab_size - 1);
    s->hnext = t->sess_tab[b];
    t->sess_tab[b] = s;
    t->n_sessions++;
}

void gw_users_remove(gw_users_t *t, gw_session_t *s)
{
    gw_user_t *u = s->user;
    if (s->uprev)
        s->uprev->unext = s->unext;
    else
        u->sessions = s->unext;
    if (s->unext) s->unext->uprev = s->uprev;
    u->n_sessions--;
    u->n_acks -= s->acks;
    if (!s->close_code) u->n_open--;
    if (s->aprev)
        s->aprev->anext = s->anext;
    else
        t->all = s->anext;
    if (s->anext) s->anext->aprev = s->aprev;
    sess_tab_del(t, s);
    t->n_sessions--;
    s->user = NULL;
    if (u != &t->bcast && !u->sessions) user_remove(t, u);
}

gw_session_t *gw_users_session(gw_users_t *t, uint64_t id)
{
    if (!t->sess_tab_size) return NULL;
    size_t b = hash_u64(id) & (t->sess_tab_size - 1);
    for (gw_session_t *s = t->sess_tab[b]; s; s = s->hnext)
        if (s->id == id) return s;
    return NULL;
}
