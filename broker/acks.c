/* acks.c - acknowledged delivery (protocol.md 14): each user's outstanding ack_required
 * notifications, the single re-send timer, and the control and HTTP sides (acks.h). */
#include "acks.h"
#include "items.h"
#include "route.h"
#include "users.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec.h"
#include "proto.h"
#include "seedhash.h"

enum { ACK_DUE = 0, ACK_WAITING, ACK_EXHAUSTED };

struct ack_user;

/* One outstanding notification: a copy of its record (history may drop it first). */
typedef struct bk_ack {
    struct bk_ack *dnext, *dprev; /* the due list (state ACK_DUE only) */
    struct bk_ack *anext, *aprev; /* every entry, oldest first: what the bounds evict */
    struct bk_ack *unext;         /* the user's entries, in seq order */
    struct ack_user *u;
    uint64_t seq;
    uint64_t delivered_at; /* wall clock ns of the first send */
    uint64_t due_ns;       /* CLOCK_MONOTONIC: re-send (or give up) then */
    uint32_t attempts;     /* sends so far, the first included */
    uint8_t state;
    uint8_t type; /* model_type_index */
    char message_id[HERALD_MAX_ID_LEN + 1];
    uint32_t len;
    uint8_t bytes[]; /* the canonical record, seq set */
} bk_ack_t;

/* A user with opted-in sessions or outstanding notifications (freed when it has neither). */
typedef struct ack_user {
    struct ack_user *hnext;
    uint32_t hash;
    uint8_t id_len;
    char id[HERALD_MAX_ID_LEN + 1];
    struct ack_gw {
        uint16_t gw;
        uint32_t n;
    } * gws; /* opted-in sessions per gateway */
    uint16_t n_gws, cap_gws;
    uint32_t sessions; /* their sum */
    bk_ack_t *head, *tail;
    uint32_t count;
    uint32_t waiting; /* entries in ACK_WAITING */
} ack_user_t;

struct bk_acks {
    ack_user_t **tab;
    size_t tab_size, n_users;
    bk_ack_t *due_head, *due_tail;
    bk_ack_t *all_head, *all_tail;
    uint64_t n, bytes;
    uint64_t timeout_ns;
    uint32_t max_attempts;
    loop_timer_t timer;
    msgpack_unpacked unp;
    log_ratelimit_t rl;
    uint64_t tracked, acked, unknown, redeliveries, timed_out, exhausted, evicted;
};

static uint64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* --- users --- */

static ack_user_t *user_find(struct bk_acks *a, const char *id, size_t len, bool create)
{
    if (!len || len > HERALD_MAX_ID_LEN) return NULL;
    uint32_t h = (uint32_t)seedhash(id, len); /* keyed: user ids come from outside */
    ack_user_t **pp = &a->tab[h & (a->tab_size - 1)];
    for (ack_user_t *u = *pp; u; u = u->hnext)
        if (u->hash == h && u->id_len == len && !memcmp(u->id, id, len)) return u;
    if (!create) return NULL;
    if (a->n_users >= a->tab_size) {
        size_t size = a->tab_size * 2;
        ack_user_t **tab = calloc(size, sizeof *tab);
        if (!tab) abort();
        for (size_t i = 0; i < a->tab_size; i++)
            for (ack_user_t *u = a->tab[i], *nx; u; u = nx) {
                nx = u->hnext;
                u->hnext = tab[u->hash & (size - 1)];
                tab[u->hash & (size - 1)] = u;
            }
        free(a->tab);
        a->tab = tab;
        a->tab_size = size;
        pp = &a->tab[h & (size - 1)];
    }
    ack_user_t *u = calloc(1, sizeof *u);
    if (!u) abort();
    memcpy(u->id, id, len);
    u->id_len = (uint8_t)len;
    u->hash = h;
    u->hnext = *pp;
    *pp = u;
    a->n_users++;
    return u;
}

/* Forget u once it has no opted-in session and nothing outstanding. */
static void user_release(struct bk_acks *a, ack_user_t *u)
{
    if (u->sessions || u->count) return;
    for (ack_user_t **pp = &a->tab[u->hash & (a->tab_size - 1)]; *pp; pp = &(*pp)->hnext)
        if (*pp == u) {
            *pp = u->hnext;
            break;
        }
    a->n_users--;
    free(u->gws);
    free(u);
}

static struct ack_gw *user_gw(ack_user_t *u, unsigned gw, bool create)
{
    for (uint16_t i = 0; i < u->n_gws; i++)
        if (u->gws[i].gw == gw) return &u->gws[i];
    if (!create) return NULL;
    if (u->n_gws == u->cap_gws) {
        uint16_t cap = u->cap_gws ? (uint16_t)(u->cap_gws * 2) : 2;
        struct ack_gw *n = realloc(u->gws, cap * sizeof *n);
        if (!n) abort();
        u->gws = n;
        u->cap_gws = cap;
    }
    u->gws[u->n_gws] = (struct ack_gw){(uint16_t)gw, 0};
    return &u->gws[u->n_gws++];
}

/* --- the due list and the timer --- */

static void due_unlink(struct bk_acks *a, bk_ack_t *e)
{
    if (e->dprev)
        e->dprev->dnext = e->dnext;
    else
        a->due_head = e->dnext;
    if (e->dnext)
        e->dnext->dprev = e->dprev;
    else
        a->due_tail = e->dprev;
    e->dnext = e->dprev = NULL;
}

/* Insert e by due time, from the tail: O(1) while the timeout stays what it was. */
static void due_insert(broker_t *b, bk_ack_t *e)
{
    struct bk_acks *a = b->acks;
    bk_ack_t *after = a->due_tail;
    while (after && after->due_ns > e->due_ns)
        after = after->dprev;
    e->dprev = after;
    e->dnext = after ? after->dnext : a->due_head;
    if (e->dnext)
        e->dnext->dprev = e;
    else
        a->due_tail = e;
    if (after)
        after->dnext = e;
    else
        a->due_head = e;
    e->state = ACK_DUE;
    if (a->due_head == e) loop_timer_at(b->loop, &a->timer, e->due_ns);
}

/* Drop e from every list and free it. */
static void entry_free(broker_t *b, bk_ack_t *e)
{
    struct bk_acks *a = b->acks;
    ack_user_t *u = e->u;
    if (e->state == ACK_DUE) due_unlink(a, e);
    if (e->state == ACK_WAITING) u->waiting--;
    if (e->aprev)
        e->aprev->anext = e->anext;
    else
        a->all_head = e->anext;
    if (e->anext)
        e->anext->aprev = e->aprev;
    else
        a->all_tail = e->aprev;
    bk_ack_t **pp = &u->head, *prev = NULL;
    while (*pp != e) {
        prev = *pp;
        pp = &(*pp)->unext;
    }
    *pp = e->unext;
    if (u->tail == e) u->tail = prev;
    u->count--;
    a->n--;
    a->bytes -= e->len;
    free(e);
    user_release(a, u);
}

/* Write e to every attached gateway where its user has opted-in sessions; counts a send. */
static void entry_send(broker_t *b, bk_ack_t *e)
{
    struct bk_acks *a = b->acks;
    rec_replay_t rh = {.session = 0}; /* every opted-in session of the user there */
    for (uint16_t i = 0; i < e->u->n_gws; i++) {
        bk_gateway_t *g = bk_route_gateway(b, e->u->gws[i].gw);
        if (e->u->gws[i].n && g && g->attached)
            bk_route_write(b, g, REC_REDELIVER, &rh, sizeof rh, e->bytes, e->len);
    }
    e->attempts++;
    a->redeliveries++;
    e->due_ns = loop_now(b->loop) + a->timeout_ns;
    due_insert(b, e);
}

static void acks_timer_cb(loop_t *l, loop_timer_t *t)
{
    broker_t *b = t->ctx;
    struct bk_acks *a = b->acks;
    uint64_t now = loop_now(l);
    bk_ack_t *e;
    bool sent = false;
    while ((e = a->due_head) && e->due_ns <= now) {
        due_unlink(a, e);
        if (e->attempts == 1) a->timed_out++; /* herald_unacked_total: once per notification */
        if (e->attempts >= a->max_attempts) {
            e->state = ACK_EXHAUSTED;
            a->exhausted++;
            if (log_ratelimit_ok(&a->rl, 5))
                log_warn("user %s: seq %llu (%s) not acknowledged after %u sends; no more re-sends",
                         e->u->id, (unsigned long long)e->seq, e->message_id, e->attempts);
        } else if (e->u->sessions) {
            entry_send(b, e);
            sent = true;
        } else {
            e->state = ACK_WAITING; /* the next session that opts in gets it */
            e->u->waiting++;
        }
    }
    if (a->due_head) loop_timer_at(l, &a->timer, a->due_head->due_ns);
    if (sent) bk_route_publish(b);
}

/* --- life cycle --- */

void bk_acks_configure(broker_t *b, const model_masks_t *m)
{
    b->masks = *m;
    b->acks->timeout_ns = (uint64_t)b->cfg.ack_timeout_ms * 1000000ull;
    b->acks->max_attempts = b->cfg.ack_max_attempts;
}

int bk_acks_init(broker_t *b)
{
    struct bk_acks *a = calloc(1, sizeof *a);
    if (!a) return -1;
    a->tab_size = 256;
    a->tab = calloc(a->tab_size, sizeof *a->tab);
    if (!a->tab) {
        free(a);
        return -1;
    }
    msgpack_unpacked_init(&a->unp);
    loop_timer_init(&a->timer, acks_timer_cb, b);
    b->acks = a;
    a->timeout_ns = (uint64_t)b->cfg.ack_timeout_ms * 1000000ull;
    a->max_attempts = b->cfg.ack_max_attempts;
    return 0;
}

void bk_acks_free(broker_t *b)
{
    struct bk_acks *a = b->acks;
    if (!a) return;
    loop_timer_cancel(b->loop, &a->timer);
    for (bk_ack_t *e = a->all_head, *nx; e; e = nx) {
        nx = e->anext;
        free(e);
    }
    for (size_t i = 0; i < a->tab_size; i++)
        for (ack_user_t *u = a->tab[i], *nx; u; u = nx) {
            nx = u->hnext;
            free(u->gws);
            free(u);
        }
    free(a->tab);
    msgpack_unpacked_destroy(&a->unp);
    free(a);
    b->acks = NULL;
}

/* --- tracking --- */

static void evict(broker_t *b, bk_ack_t *e, const char *why)
{
    struct bk_acks *a = b->acks;
    a->evicted++;
    if (log_ratelimit_ok(&a->rl, 5))
        log_warn("user %s: outstanding seq %llu (%s) forgotten unacknowledged: %s (%llu so far)",
                 e->u->id, (unsigned long long)e->seq, e->message_id, why,
                 (unsigned long long)a->evicted);
    entry_free(b, e);
}

void bk_acks_published(broker_t *b, const bk_item_t *it)
{
    struct bk_acks *a = b->acks;
    const bk_user_t *bu = it->user;
    if (bu == bk_users_bcast(b)) return; /* broadcasts have no user to answer for them */
    ack_user_t *u = user_find(a, bu->id, bu->id_len, false);
    if (!u || !u->sessions) return;
    notif_t n;
    herald_error_t err;
    if (codec_decode(it->bytes, it->len, &a->unp, &n, &err) < 0) return; /* ours: cannot fail */
    if (u->count >= BK_ACKS_PER_USER) evict(b, u->head, "the user's outstanding bound");
    while (a->all_head && (a->n >= BK_ACKS_MAX || a->bytes + it->len > BK_ACKS_BYTES_MAX))
        evict(b, a->all_head, "the broker's outstanding bound");
    bk_ack_t *e = calloc(1, sizeof *e + it->len);
    if (!e) abort();
    e->u = u;
    e->seq = it->seq;
    e->delivered_at = wall_ns();
    e->attempts = 1;
    e->type = (uint8_t)model_type_index(n.type);
    memcpy(e->message_id, n.message_id, sizeof e->message_id);
    e->len = it->len;
    memcpy(e->bytes, it->bytes, it->len);
    if (u->tail)
        u->tail->unext = e;
    else
        u->head = e;
    u->tail = e;
    u->count++;
    e->aprev = a->all_tail;
    if (a->all_tail)
        a->all_tail->anext = e;
    else
        a->all_head = e;
    a->all_tail = e;
    a->n++;
    a->bytes += e->len;
    a->tracked++;
    e->due_ns = loop_now(b->loop) + a->timeout_ns;
    due_insert(b, e);
}

/* --- control protocol --- */

/* The user's notifications waiting for an opted-in session: send them now. */
static void send_waiting(broker_t *b, ack_user_t *u)
{
    for (bk_ack_t *e = u->head; e && u->waiting; e = e->unext) {
        if (e->state != ACK_WAITING) continue;
        u->waiting--;
        entry_send(b, e);
    }
}

void bk_acks_sessions(broker_t *b, bk_gateway_t *g, const char *user, size_t len, int delta)
{
    struct bk_acks *a = b->acks;
    ack_user_t *u = user_find(a, user, len, delta > 0);
    if (!u || !delta) return;
    struct ack_gw *ag = user_gw(u, g->id, delta > 0);
    if (!ag) return;
    if (delta < 0 && ag->n < (uint32_t)-delta) delta = -(int)ag->n;
    ag->n = (uint32_t)((int64_t)ag->n + delta);
    u->sessions = (uint32_t)((int64_t)u->sessions + delta);
    if (!ag->n) *ag = u->gws[--u->n_gws];
    if (delta > 0 && u->waiting) send_waiting(b, u);
    user_release(a, u);
}

void bk_acks_resync(broker_t *b, bk_gateway_t *g, const char *user, size_t len, uint32_t n)
{
    ack_user_t *u = user_find(b->acks, user, len, false);
    struct ack_gw *ag = u ? user_gw(u, g->id, false) : NULL;
    uint32_t have = ag ? ag->n : 0;
    if (n > have) bk_acks_sessions(b, g, user, len, (int)(n - have));
}

void bk_acks_gateway_down(broker_t *b, bk_gateway_t *g)
{
    struct bk_acks *a = b->acks;
    for (size_t i = 0; i < a->tab_size; i++)
        for (ack_user_t *u = a->tab[i], *nx; u; u = nx) {
            nx = u->hnext;
            struct ack_gw *ag = user_gw(u, g->id, false);
            if (!ag) continue;
            u->sessions -= ag->n;
            *ag = u->gws[--u->n_gws];
            user_release(a, u);
        }
}

int bk_acks_on_ack(broker_t *b, const msgpack_object *o, herald_error_t *err)
{
    struct bk_acks *a = b->acks;
    const msgpack_object *user = codec_map_get(o, "user"), *seq = codec_map_get(o, "seq");
    if (!user || user->type != MSGPACK_OBJECT_STR || !seq ||
        seq->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return herr_set(err, HERR_BAD_VALUE, "ack", "ack needs user (string) and seq (integer)");
    ack_user_t *u = user_find(a, user->via.str.ptr, user->via.str.size, false);
    for (bk_ack_t *e = u ? u->head : NULL; e && e->seq <= seq->via.u64; e = e->unext) {
        if (e->seq != seq->via.u64) continue;
        a->acked++;
        entry_free(b, e);
        return 0;
    }
    a->unknown++; /* acknowledged already, never tracked, or forgotten: nothing to do */
    return 0;
}

/* --- HTTP and metrics --- */

void bk_acks_unacked_json(broker_t *b, const char *user, size_t len, jbuf_t *o)
{
    size_t ntypes;
    const msg_type_t *types = model_types(&ntypes);
    ack_user_t *u = user_find(b->acks, user, len, false);
    jbuf_puts(o, "{\"user\":");
    json_put_str(o, user, len);
    jbuf_puts(o, ",\"unacked\":[");
    for (bk_ack_t *e = u ? u->head : NULL; e; e = e->unext) {
        if (e != u->head) jbuf_putc(o, ',');
        jbuf_puts(o, "{\"seq\":");
        jbuf_put_u64(o, e->seq);
        jbuf_puts(o, ",\"message_id\":");
        json_put_str(o, e->message_id, strlen(e->message_id));
        jbuf_puts(o, ",\"message_type\":");
        const char *t = e->type < ntypes ? types[e->type].name : "";
        json_put_str(o, t, strlen(t));
        jbuf_puts(o, ",\"delivered_at\":");
        jbuf_put_u64(o, e->delivered_at);
        jbuf_puts(o, ",\"attempts\":");
        jbuf_put_u64(o, e->attempts);
        jbuf_putc(o, '}');
    }
    jbuf_puts(o, "]}");
}

void bk_acks_stats_json(broker_t *b, jbuf_t *o)
{
    const struct bk_acks *a = b->acks;
    const struct {
        const char *k;
        uint64_t v;
    } kv[] = {{"outstanding", a->n},
              {"tracked", a->tracked},
              {"acked", a->acked},
              {"unknown_acks", a->unknown},
              {"redeliveries", a->redeliveries},
              {"unacked_total", a->timed_out},
              {"exhausted", a->exhausted},
              {"evicted", a->evicted}};
    jbuf_puts(o, ",\"acks\":{");
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++) {
        if (i) jbuf_putc(o, ',');
        json_put_str(o, kv[i].k, strlen(kv[i].k));
        jbuf_putc(o, ':');
        jbuf_put_u64(o, kv[i].v);
    }
    jbuf_putc(o, '}');
}

void bk_acks_metrics(broker_t *b, jbuf_t *o)
{
    const struct bk_acks *a = b->acks;
    const struct {
        const char *name, *type, *help;
        uint64_t v;
    } m[] = {
        {"herald_unacked", "gauge",
         "ack_required notifications outstanding (not acknowledged yet).", a->n},
        {"herald_unacked_total", "counter",
         "ack_required notifications not acknowledged within delivery.ack_timeout_ms (each "
         "counted once).",
         a->timed_out},
        {"herald_broker_acks_tracked_total", "counter",
         "ack_required notifications tracked (their user had an opted-in session).", a->tracked},
        {"herald_broker_acks_total", "counter", "Acknowledgements that settled a notification.",
         a->acked},
        {"herald_broker_acks_unknown_total", "counter",
         "Acknowledgements of nothing outstanding (repeated, or never tracked).", a->unknown},
        {"herald_broker_redeliveries_total", "counter", "Re-sends of unacknowledged notifications.",
         a->redeliveries},
        {"herald_broker_acks_exhausted_total", "counter",
         "Notifications still unacknowledged after delivery.ack_max_attempts sends.", a->exhausted},
        {"herald_broker_acks_evicted_total", "counter",
         "Outstanding notifications forgotten at the bounds (per user, all users, bytes).",
         a->evicted},
    };
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++) {
        jbuf_puts(o, "# HELP ");
        jbuf_puts(o, m[i].name);
        jbuf_putc(o, ' ');
        jbuf_puts(o, m[i].help);
        jbuf_puts(o, "\n# TYPE ");
        jbuf_puts(o, m[i].name);
        jbuf_putc(o, ' ');
        jbuf_puts(o, m[i].type);
        jbuf_putc(o, '\n');
        jbuf_puts(o, m[i].name);
        jbuf_putc(o, ' ');
        jbuf_put_u64(o, m[i].v);
        jbuf_putc(o, '\n');
    }
}
