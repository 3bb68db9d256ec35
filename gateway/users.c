/* users.c - the gateway's user table (by user_id) and session table (by session id):
 * chained hash tables that double when the load passes 1. */
#include <stdlib.h>
#include <string.h>

#include "gw.h"
#include "seedhash.h"

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

static void user_tab_grow(gw_t *g)
{
    size_t nsize = g->user_tab_size ? g->user_tab_size * 2 : 1024;
    gw_user_t **nt = calloc(nsize, sizeof *nt);
    if (!nt) abort();
    for (size_t i = 0; i < g->user_tab_size; i++) {
        gw_user_t *u = g->user_tab[i], *next;
        for (; u; u = next) {
            next = u->hnext;
            size_t b = hash_bytes(u->id, strlen(u->id)) & (nsize - 1);
            u->hnext = nt[b];
            nt[b] = u;
        }
    }
    free(g->user_tab);
    g->user_tab = nt;
    g->user_tab_size = nsize;
}

gw_user_t *gw_user_find(gw_t *g, const char *id, size_t len)
{
    if (!g->user_tab_size) return NULL;
    size_t b = hash_bytes(id, len) & (g->user_tab_size - 1);
    for (gw_user_t *u = g->user_tab[b]; u; u = u->hnext)
        if (strlen(u->id) == len && !memcmp(u->id, id, len)) return u;
    return NULL;
}

gw_user_t *gw_user_get(gw_t *g, const char *id)
{
    size_t len = strlen(id);
    gw_user_t *u = gw_user_find(g, id, len);
    if (u) return u;
    if (g->n_users >= g->user_tab_size) user_tab_grow(g);
    u = calloc(1, sizeof *u);
    if (!u) abort();
    memcpy(u->id, id, len + 1);
    size_t b = hash_bytes(id, len) & (g->user_tab_size - 1);
    u->hnext = g->user_tab[b];
    g->user_tab[b] = u;
    g->n_users++;
    return u;
}

void gw_user_remove(gw_t *g, gw_user_t *u)
{
    size_t b = hash_bytes(u->id, strlen(u->id)) & (g->user_tab_size - 1);
    for (gw_user_t **pp = &g->user_tab[b]; *pp; pp = &(*pp)->hnext) {
        if (*pp == u) {
            *pp = u->hnext;
            g->n_users--;
            break;
        }
    }
    for (size_t i = 0; i < u->n_held; i++)
        free(u->held[i].bytes);
    free(u->held);
    free(u);
}

static void sess_tab_grow(gw_t *g)
{
    size_t nsize = g->sess_tab_size ? g->sess_tab_size * 2 : 1024;
    gw_session_t **nt = calloc(nsize, sizeof *nt);
    if (!nt) abort();
    for (size_t i = 0; i < g->sess_tab_size; i++) {
        gw_session_t *s = g->sess_tab[i], *next;
        for (; s; s = next) {
            next = s->hnext;
            size_t b = hash_u64(s->id) & (nsize - 1);
            s->hnext = nt[b];
            nt[b] = s;
        }
    }
    free(g->sess_tab);
    g->sess_tab = nt;
    g->sess_tab_size = nsize;
}

void gw_sess_tab_add(gw_t *g, gw_session_t *s)
{
    if (g->n_sessions >= g->sess_tab_size) sess_tab_grow(g);
    size_t b = hash_u64(s->id) & (g->sess_tab_size - 1);
    s->hnext = g->sess_tab[b];
    g->sess_tab[b] = s;
}

void gw_sess_tab_del(gw_t *g, gw_session_t *s)
{
    if (!g->sess_tab_size) return;
    size_t b = hash_u64(s->id) & (g->sess_tab_size - 1);
    for (gw_session_t **pp = &g->sess_tab[b]; *pp; pp = &(*pp)->hnext) {
        if (*pp == s) {
            *pp = s->hnext;
            return;
        }
    }
}

gw_session_t *gw_session_find(gw_t *g, uint64_t id)
{
    if (!g->sess_tab_size) return NULL;
    size_t b = hash_u64(id) & (g->sess_tab_size - 1);
    for (gw_session_t *s = g->sess_tab[b]; s; s = s->hnext)
        if (s->id == id) return s;
    return NULL;
}
