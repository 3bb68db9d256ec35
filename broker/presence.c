/* presence.c - presence (protocol.md 14): online state from the routes, last_seen of offline users
 * (presence.h). */
#include "presence.h"
#include "route.h"
#include "users.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec.h"
#include "seedhash.h"

/* An offline user's last_seen. */
typedef struct seen {
    struct seen *hnext;
    struct seen *older, *newer; /* by last_seen: the oldest is forgotten first */
    uint32_t hash;
    uint8_t id_len;
    char id[HERALD_MAX_ID_LEN + 1];
    uint64_t last_seen; /* wall clock ns */
} seen_t;

struct bk_presence {
    seen_t **tab;
    size_t tab_size, n;
    seen_t *oldest, *newest;
};

static uint64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint32_t seen_hash(const char *id, size_t len)
{
    return (uint32_t)seedhash(id, len); /* keyed: user ids come from outside */
}

int bk_presence_init(broker_t *b)
{
    struct bk_presence *p = calloc(1, sizeof *p);
    if (!p) return -1;
    p->tab_size = 1024;
    p->tab = calloc(p->tab_size, sizeof *p->tab);
    if (!p->tab) {
        free(p);
        return -1;
    }
    b->presence = p;
    return 0;
}

void bk_presence_free(broker_t *b)
{
    struct bk_presence *p = b->presence;
    if (!p) return;
    for (seen_t *s = p->oldest, *nx; s; s = nx) {
        nx = s->newer;
        free(s);
    }
    free(p->tab);
    free(p);
    b->presence = NULL;
}

static seen_t **seen_slot(struct bk_presence *p, const char *id, size_t len, uint32_t h)
{
    seen_t **pp = &p->tab[h & (p->tab_size - 1)];
    while (*pp && !((*pp)->hash == h && (*pp)->id_len == len && !memcmp((*pp)->id, id, len)))
        pp = &(*pp)->hnext;
    return pp;
}

static void seen_remove(struct bk_presence *p, seen_t **pp)
{
    seen_t *s = *pp;
    *pp = s->hnext;
    if (s->older)
        s->older->newer = s->newer;
    else
        p->oldest = s->newer;
    if (s->newer)
        s->newer->older = s->older;
    else
        p->newest = s->older;
    p->n--;
    free(s);
}

void bk_presence_online(broker_t *b, const char *id, size_t len)
{
    struct bk_presence *p = b->presence;
    if (!p || len > HERALD_MAX_ID_LEN) return;
    seen_t **pp = seen_slot(p, id, len, seen_hash(id, len));
    if (*pp) seen_remove(p, pp); /* online: last_seen is now, kept nowhere */
}

void bk_presence_offline(broker_t *b, const char *id, size_t len)
{
    struct bk_presence *p = b->presence;
    if (!p || !len || len > HERALD_MAX_ID_LEN) return;
    uint32_t h = seen_hash(id, len);
    seen_t **pp = seen_slot(p, id, len, h);
    if (*pp) seen_remove(p, pp);
    if (p->n >= BK_PRESENCE_MAX) {
        seen_t *o = p->oldest;
        seen_remove(p, seen_slot(p, o->id, o->id_len, o->hash));
    }
    if (p->n >= p->tab_size) {
        size_t size = p->tab_size * 2;
        seen_t **tab = calloc(size, sizeof *tab);
        if (tab) {
            for (size_t i = 0; i < p->tab_size; i++)
                for (seen_t *s = p->tab[i], *nx; s; s = nx) {
                    nx = s->hnext;
                    s->hnext = tab[s->hash & (size - 1)];
                    tab[s->hash & (size - 1)] = s;
                }
            free(p->tab);
            p->tab = tab;
            p->tab_size = size;
        }
    }
    seen_t *s = calloc(1, sizeof *s);
    if (!s) abort();
    memcpy(s->id, id, len);
    s->id_len = (uint8_t)len;
    s->hash = h;
    s->last_seen = wall_ns();
    pp = &p->tab[h & (p->tab_size - 1)];
    s->hnext = *pp;
    *pp = s;
    s->older = p->newest;
    if (p->newest)
        p->newest->newer = s;
    else
        p->oldest = s;
    p->newest = s;
    p->n++;
}

size_t bk_presence_remembered(const broker_t *b)
{
    return b->presence ? b->presence->n : 0;
}

void bk_presence_json(broker_t *b, const char *id, size_t len, jbuf_t *o)
{
    const bk_user_t *u = bk_users_get(b, id, len, false);
    uint32_t sessions = 0;
    uint16_t gws[BK_MAX_GATEWAYS];
    unsigned n_gws = 0;
    for (uint16_t i = 0; u && i < u->n_routes; i++) {
        const bk_gateway_t *g = bk_route_gateway(b, u->routes[i].gw);
        if (!g || !g->attached || !u->routes[i].refs) continue;
        sessions += u->routes[i].refs;
        unsigned k = n_gws++; /* insertion sort: a user is on a few gateways */
        while (k && gws[k - 1] > u->routes[i].gw) {
            gws[k] = gws[k - 1];
            k--;
        }
        gws[k] = u->routes[i].gw;
    }
    uint64_t last_seen = 0;
    if (n_gws) {
        last_seen = wall_ns();
    } else if (b->presence) {
        struct bk_presence *p = b->presence;
        seen_t *s = *seen_slot(p, id, len, seen_hash(id, len));
        if (s) last_seen = s->last_seen;
    }
    jbuf_puts(o, "{\"user\":");
    json_put_str(o, id, len);
    jbuf_puts(o, n_gws ? ",\"online\":true" : ",\"online\":false");
    jbuf_puts(o, ",\"sessions\":");
    jbuf_put_u64(o, sessions);
    jbuf_puts(o, ",\"gateways\":[");
    for (unsigned i = 0; i < n_gws; i++) {
        if (i) jbuf_putc(o, ',');
        jbuf_put_u64(o, gws[i]);
    }
    jbuf_puts(o, "],\"last_seen\":");
    jbuf_put_u64(o, last_seen);
    jbuf_putc(o, '}');
}

int bk_presence_batch_json(broker_t *b, const char *body, size_t len, jbuf_t *out,
                           herald_error_t *err)
{
    msgpack_sbuffer sb;
    msgpack_unpacked u;
    int rc = 0;
    msgpack_sbuffer_init(&sb);
    msgpack_unpacked_init(&u);
    if (json_to_msgpack(body, len, &sb, err) < 0) {
        rc = -1;
        goto out;
    }
    size_t off = 0;
    if (msgpack_unpack_next(&u, sb.data, sb.size, &off) != MSGPACK_UNPACK_SUCCESS ||
        u.data.type != MSGPACK_OBJECT_MAP) {
        rc = herr_set(err, HERR_NOT_MAP, "", "the body must be an object {\"users\":[...]}");
        goto out;
    }
    const msgpack_object *users = codec_map_get(&u.data, "users");
    if (!users) {
        rc = herr_set(err, HERR_MISSING_FIELD, "users", "users is required");
        goto out;
    }
    if (users->type != MSGPACK_OBJECT_ARRAY) {
        rc = herr_set(err, HERR_BAD_KIND, "users", "users must be an array of user ids");
        goto out;
    }
    if (users->via.array.size > BK_PRESENCE_BATCH) {
        rc = herr_set(err, HERR_TOO_LARGE, "users", "at most %u users per request, got %u",
                      BK_PRESENCE_BATCH, users->via.array.size);
        goto out;
    }
    for (uint32_t i = 0; i < users->via.array.size; i++) {
        const msgpack_object *v = &users->via.array.ptr[i];
        if (v->type != MSGPACK_OBJECT_STR || !v->via.str.size ||
            v->via.str.size > HERALD_MAX_ID_LEN ||
            (v->via.str.size == 1 && v->via.str.ptr[0] == '*')) {
            rc = herr_set(err, HERR_BAD_VALUE, "users",
                          "users[%u] must be a user id of 1 to %d bytes (not \"*\")", i,
                          HERALD_MAX_ID_LEN);
            goto out;
        }
    }
    jbuf_puts(out, "{\"users\":[");
    for (uint32_t i = 0; i < users->via.array.size; i++) {
        if (i) jbuf_putc(out, ',');
        const msgpack_object *v = &users->via.array.ptr[i];
        bk_presence_json(b, v->via.str.ptr, v->via.str.size, out);
    }
    jbuf_puts(out, "]}");
out:
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&sb);
    return rc < 0 ? rc : 0;
}
