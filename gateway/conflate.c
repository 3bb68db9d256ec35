/* conflate.c - conflation under backpressure (protocol.md 14): once a session's pending output is
 * past gateway.conflate_bytes, a notification of a conflatable type takes the place of the
 * older pending one with the same key (user + type + instrument_id or account_id): the older
 * one leaves the queue, and right before the newer one the session gets
 * {"type":"conflated","seqs":[...]} naming every seq it will not get. Below the threshold
 * nothing here runs: a session pays one comparison per notification.
 *
 * The index (key -> queue slot of the pending notification) exists only while a session
 * conflates; it is built from the queues when the session passes the threshold and dropped
 * when it has written down to half of it. A `conflated` frame stays next to the notification
 * it announces, so when that one is replaced too the frame is taken along, names one more
 * seq and goes in before the newest: each key holds at most one notification and one
 * `conflated` frame in the queues however long the client does not read. */
#include "conflate.h"

#include <stdlib.h>
#include <string.h>

#include "json.h"

#define CF_MIN_SLOTS 64
#define CF_MAX_KEYS  65536 /* keys indexed per session; further keys are not conflated */

struct gw_conflate_ent {
    uint64_t key; /* 0 = empty slot */
    gw_msg_t *m;  /* the indexed notification (checked against its slot before use) */
    uint64_t pos; /* its absolute position in its queue */
    bool held;    /* in s->held (else s->ready) */
    bool has_c;   /* a `conflated` frame announcing it is at pos - 1 in the same queue */
};
typedef struct gw_conflate_ent cf_ent_t;

struct gw_conflate {
    cf_ent_t *tab;
    uint32_t cap, n; /* open addressing, linear probing, at most half full */
};

/* --- keys --- */

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

static const msgpack_object *map_str(const msgpack_object *map, const char *key)
{
    if (!map || map->type != MSGPACK_OBJECT_MAP) return NULL;
    size_t kl = strlen(key);
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr[i].key, *v = &map->via.map.ptr[i].val;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == kl &&
            !memcmp(k->via.str.ptr, key, kl))
            return v->type == MSGPACK_OBJECT_STR ? v : NULL;
    }
    return NULL;
}

uint64_t gw_conflate_key(const char *user, size_t ulen, unsigned type,
                         const msgpack_object *payload)
{
    uint64_t h = 1469598103934665603ull;
    uint8_t sep[2] = {0xff, (uint8_t)type};
    h = fnv(h, user, ulen);
    h = fnv(h, sep, sizeof sep);
    const msgpack_object *id = map_str(payload, "instrument_id");
    if (!id) id = map_str(payload, "account_id");
    if (id) h = fnv(h, id->via.str.ptr, id->via.str.size);
    h ^= h >> 31; /* spread the low-entropy tail over the bits the table indexes by */
    h *= 0x9e3779b97f4a7c15ull;
    return h ? h : 1;
}

/* The key of a queued notification frame whose key was never needed: read it back from the
 * frame (the canonical record, or the JSON we rendered). 0 if it cannot be read. */
static uint64_t cf_key_of_frame(const gw_msg_t *m)
{
    msgpack_unpacked u;
    msgpack_sbuffer sb;
    herald_error_t err;
    uint64_t key = 0;
    msgpack_unpacked_init(&u);
    msgpack_sbuffer_init(&sb);
    const char *bytes = (const char *)m->buf + LWS_PRE;
    size_t len = m->len;
    if (!m->binary) {
        if (json_to_msgpack(bytes, len, &sb, &err) < 0) goto out;
        bytes = sb.data;
        len = sb.size;
    }
    size_t off = 0;
    if (msgpack_unpack_next(&u, bytes, len, &off) != MSGPACK_UNPACK_SUCCESS) goto out;
    const msgpack_object *user = map_str(&u.data, "user_id");
    if (!user) goto out;
    const msgpack_object *payload = NULL;
    for (uint32_t i = 0; i < u.data.via.map.size; i++) {
        const msgpack_object *k = &u.data.via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == 7 &&
            !memcmp(k->via.str.ptr, "payload", 7))
            payload = &u.data.via.map.ptr[i].val;
    }
    key = gw_conflate_key(user->via.str.ptr, user->via.str.size, m->type, payload);
out:
    msgpack_sbuffer_destroy(&sb);
    msgpack_unpacked_destroy(&u);
    return key;
}

/* --- the index --- */

static cf_ent_t *cf_find(struct gw_conflate *cf, uint64_t key)
{
    for (uint32_t i = (uint32_t)key & (cf->cap - 1);; i = (i + 1) & (cf->cap - 1))
        if (cf->tab[i].key == key || !cf->tab[i].key) return &cf->tab[i];
}

static gw_fifo_t *cf_queue(gw_session_t *s, const cf_ent_t *e)
{
    return e->held ? &s->held : &s->ready;
}

/* Is e's notification still queued where e says? (Written frames leave stale entries.) */
static bool cf_live(gw_session_t *s, const cf_ent_t *e)
{
    gw_msg_t **slot = gw_fifo_slot(cf_queue(s, e), e->pos);
    return slot && *slot == e->m;
}

static void cf_rebuild(gw_session_t *s, uint32_t cap)
{
    struct gw_conflate *cf = s->cf;
    cf_ent_t *old = cf->tab;
    uint32_t ocap = cf->cap;
    cf->tab = calloc(cap, sizeof *cf->tab);
    if (!cf->tab) abort();
    cf->cap = cap;
    cf->n = 0;
    for (uint32_t i = 0; i < ocap; i++) {
        if (!old[i].key || !cf_live(s, &old[i])) continue; /* written since: forget it */
        *cf_find(cf, old[i].key) = old[i];
        cf->n++;
    }
    free(old);
}

/* The entry for key, creating it (empty: key set, m NULL) when absent; NULL when the index
 * is full of live keys. */
static cf_ent_t *cf_get(gw_session_t *s, uint64_t key)
{
    struct gw_conflate *cf = s->cf;
    cf_ent_t *e = cf_find(cf, key);
    if (e->key) return e;
    if ((cf->n + 1) * 2 > cf->cap) {
        cf_rebuild(s, cf->cap); /* drop the stale entries first */
        if ((cf->n + 1) * 2 > cf->cap) {
            if (cf->cap >= 2 * CF_MAX_KEYS) return NULL;
            cf_rebuild(s, cf->cap * 2);
        }
        e = cf_find(cf, key);
    }
    *e = (cf_ent_t){.key = key};
    cf->n++;
    return e;
}

static uint64_t cf_msg_key(gw_msg_t *m)
{
    if (!m->ckey) m->ckey = cf_key_of_frame(m); /* shared frames keep it for every session */
    return m->ckey;
}

void gw_conflate_begin(gw_session_t *s)
{
    s->cf = calloc(1, sizeof *s->cf);
    if (!s->cf) abort();
    s->cf->cap = CF_MIN_SLOTS;
    s->cf->tab = calloc(CF_MIN_SLOTS, sizeof *s->cf->tab);
    if (!s->cf->tab) abort();
    for (int h = 0; h < 2; h++) {
        gw_fifo_t *f = h ? &s->held : &s->ready;
        gw_msg_t *prev = NULL;
        for (uint64_t pos = f->base; pos < f->base + f->count; pos++) {
            gw_msg_t *m = *gw_fifo_slot(f, pos);
            if (m && m->conflatable && cf_msg_key(m)) {
                cf_ent_t *e = cf_get(s, m->ckey);
                if (e) *e = (cf_ent_t){m->ckey, m, pos, h == 1, prev && prev->conflated};
            }
            prev = m;
        }
    }
}

void gw_conflate_end(gw_session_t *s)
{
    if (!s->cf) return;
    free(s->cf->tab);
    free(s->cf);
    s->cf = NULL;
}

void gw_conflate_moved(gw_session_t *s, uint64_t held_base, uint64_t ready_end)
{
    struct gw_conflate *cf = s->cf;
    for (uint32_t i = 0; i < cf->cap; i++) {
        cf_ent_t *e = &cf->tab[i];
        if (!e->key || !e->held) continue;
        if (e->pos < held_base) { /* written before the move: leave it stale in ready */
            e->m = NULL;
            e->held = false;
            continue;
        }
        e->pos = ready_end + (e->pos - held_base);
        e->held = false;
    }
}

/* --- the `conflated` frame --- */

/* JSON: {"type":"conflated","seqs":[S1,S2]}; msgpack: the same map with the array as array32
 * (its count patched in place as seqs are added). */
static const char CF_JSON_HEAD[] = "{\"type\":\"conflated\",\"seqs\":[";
static const uint8_t CF_MP_HEAD[] = {0x82, 0xa4, 't', 'y',  'p', 'e', 0xa9, 'c',  'o',
                                     'n',  'f',  'l', 'a',  't', 'e', 'd',  0xa4, 's',
                                     'e',  'q',  's', 0xdd, 0,   0,   0,    0};
#define CF_MP_COUNT 22 /* offset of the array32 count */

static gw_msg_t *cf_frame_new(bool binary)
{
    uint32_t cap = 128;
    gw_msg_t *c = calloc(1, sizeof *c + LWS_PRE + cap);
    if (!c) abort();
    c->refs = 1;
    c->binary = binary;
    c->conflated = true;
    c->cap = cap;
    if (binary) {
        memcpy(gw_msg_data(c), CF_MP_HEAD, sizeof CF_MP_HEAD);
        c->len = sizeof CF_MP_HEAD;
    } else {
        memcpy(gw_msg_data(c), CF_JSON_HEAD, sizeof CF_JSON_HEAD - 1);
        memcpy(gw_msg_data(c) + sizeof CF_JSON_HEAD - 1, "]}", 2);
        c->len = sizeof CF_JSON_HEAD - 1 + 2;
    }
    return c;
}

/* Append seq to c (which the caller holds out of any queue); may move c. */
static gw_msg_t *cf_frame_add(gw_msg_t *c, uint64_t seq)
{
    if (c->len + 24 > c->cap) {
        uint32_t cap = c->cap * 2;
        c = realloc(c, sizeof *c + LWS_PRE + cap);
        if (!c) abort();
        c->cap = cap;
    }
    uint8_t *d = gw_msg_data(c);
    if (c->binary) {
        uint32_t n = (uint32_t)d[CF_MP_COUNT] << 24 | (uint32_t)d[CF_MP_COUNT + 1] << 16 |
                     (uint32_t)d[CF_MP_COUNT + 2] << 8 | d[CF_MP_COUNT + 3];
        n++;
        for (int i = 0; i < 4; i++)
            d[CF_MP_COUNT + i] = (uint8_t)(n >> (24 - 8 * i));
        d[c->len++] = 0xcf; /* uint64: one form for every seq */
        for (int i = 7; i >= 0; i--)
            d[c->len++] = (uint8_t)(seq >> (8 * i));
        return c;
    }
    c->len -= 2; /* the closing "]}" */
    if (d[c->len - 1] != '[') d[c->len++] = ',';
    char num[24];
    int k = 0;
    do
        num[k++] = (char)('0' + seq % 10);
    while ((seq /= 10));
    while (k)
        d[c->len++] = (uint8_t)num[--k];
    d[c->len++] = ']';
    d[c->len++] = '}';
    return c;
}

/* --- replacing --- */

gw_conflate_ent_t *gw_conflate_entry(gw_session_t *s, gw_msg_t *m)
{
    return cf_msg_key(m) ? cf_get(s, m->ckey) : NULL;
}

gw_msg_t *gw_conflate_replace(gw_session_t *s, gw_conflate_ent_t *e, uint64_t conflated[32])
{
    if (!e->m || !cf_live(s, e)) return NULL;
    gw_fifo_t *q = cf_queue(s, e);
    gw_msg_t *old = gw_fifo_take(q, gw_fifo_slot(q, e->pos)), *c;
    s->pending_bytes -= gw_msg_cost(old);
    conflated[old->type & 31]++;
    gw_msg_t **cs = e->has_c ? gw_fifo_slot(q, e->pos - 1) : NULL;
    if (cs && *cs && (*cs)->conflated) {
        c = gw_fifo_take(q, cs);
        s->pending_bytes -= gw_msg_cost(c);
    } else {
        c = cf_frame_new(s->binary);
    }
    c = cf_frame_add(c, old->seq);
    gw_msg_unref(old);
    return c;
}

void gw_conflate_set(gw_conflate_ent_t *e, gw_msg_t *m, uint64_t pos, bool held, bool has_c)
{
    *e = (cf_ent_t){e->key, m, m ? pos : 0, m && held, m && has_c};
}
