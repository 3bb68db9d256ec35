/* revoke.c - POST /api/disconnect on the broker: the user locks, the `disconnect` requests
 * to the gateways over their control connections, and the answer once every gateway asked
 * has said how many sessions it closed (or BK_DISCONNECT_WAIT_NS passed). See revoke.h. */
#include "native.h"
#include "revoke.h"
#include "route.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec.h"
#include "json.h"

typedef struct {
    char user[HERALD_MAX_ID_LEN + 1];
    uint64_t until_ns;
} bk_lock_t;

/* A request waiting for its gateways' answers. */
typedef struct bk_pending {
    struct bk_pending *next;
    uint64_t id;
    uint64_t waiting[BK_MAX_GATEWAYS / 64]; /* bit per gateway asked and not answered yet */
    uint64_t closed;
    uint64_t deadline_ns; /* monotonic */
    char user[HERALD_MAX_ID_LEN + 1];
    bk_disconnect_done_fn done;
    void *ctx;
} bk_pending_t;

struct bk_revoke {
    bk_lock_t *locks; /* few, set by the operator: an array searched linearly */
    size_t n_locks, cap_locks;
    bk_pending_t *pending;
    uint64_t next_id;
};

static uint64_t now_wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t now_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static struct bk_revoke *revoke_state(broker_t *b)
{
    if (!b->revoke) {
        b->revoke = calloc(1, sizeof *b->revoke);
        if (!b->revoke) abort();
    }
    return b->revoke;
}

void bk_revoke_free(broker_t *b)
{
    struct bk_revoke *r = b->revoke;
    if (!r) return;
    for (bk_pending_t *p = r->pending, *nx; p; p = nx) {
        nx = p->next;
        free(p);
    }
    free(r->locks);
    free(r);
    b->revoke = NULL;
}

uint64_t bk_revoke_locks(const broker_t *b)
{
    return b->revoke ? b->revoke->n_locks : 0;
}

int bk_disconnect_parse(const char *body, size_t len, bk_disconnect_args_t *a, herald_error_t *err)
{
    msgpack_sbuffer sb;
    msgpack_unpacked u;
    memset(a, 0, sizeof *a);
    if (!body || !len) return herr_set(err, HERR_MALFORMED, "", "the body is empty");
    msgpack_sbuffer_init(&sb);
    msgpack_unpacked_init(&u);
    int rc = json_to_msgpack(body, len, &sb, err);
    if (rc == 0) rc = codec_unpack((const uint8_t *)sb.data, sb.size, sb.size, &u, err);
    if (rc < 0) goto out;
    if (u.data.type != MSGPACK_OBJECT_MAP) {
        rc = herr_set(err, HERR_NOT_MAP, "", "the body must be a JSON object");
        goto out;
    }
    const msgpack_object *user = codec_map_get(&u.data, "user_id");
    const msgpack_object *until = codec_map_get(&u.data, "until");
    if (!user) {
        rc = herr_set(err, HERR_MISSING_FIELD, "user_id", "user_id is required");
    } else if (user->type != MSGPACK_OBJECT_STR) {
        rc = herr_set(err, HERR_BAD_KIND, "user_id", "user_id must be a string");
    } else if (!user->via.str.size || user->via.str.size > HERALD_MAX_ID_LEN ||
               memchr(user->via.str.ptr, '\0', user->via.str.size) ||
               (user->via.str.size == 1 && user->via.str.ptr[0] == '*')) {
        rc = herr_set(err, HERR_BAD_VALUE, "user_id",
                      "user_id must be a user id of 1 to %d bytes (not the broadcast \"*\")",
                      HERALD_MAX_ID_LEN);
    } else if (until && until->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        rc = herr_set(err, HERR_BAD_VALUE, "until", "until must not be negative");
    } else if (until && until->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
        rc = herr_set(err, HERR_BAD_KIND, "until", "until must be an integer (ns since the epoch)");
    } else {
        memcpy(a->user, user->via.str.ptr, user->via.str.size);
        a->user[user->via.str.size] = '\0';
        a->has_until = until != NULL;
        a->until_ns = until ? until->via.u64 : 0;
    }
out:
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

void bk_disconnect_render(jbuf_t *out, uint64_t closed)
{
    jbuf_puts(out, "{\"closed\":");
    jbuf_put_u64(out, closed);
    jbuf_putc(out, '}');
}

static bk_lock_t *lock_find(struct bk_revoke *r, const char *user)
{
    for (size_t i = 0; i < r->n_locks; i++)
        if (strcmp(r->locks[i].user, user) == 0) return &r->locks[i];
    return NULL;
}

static void lock_remove(struct bk_revoke *r, bk_lock_t *l)
{
    *l = r->locks[--r->n_locks];
}

/* Set user's lock to until (a past time removes it). Returns 0 or -1 when the table is full. */
static int lock_set(struct bk_revoke *r, const char *user, uint64_t until_ns, bool later_wins)
{
    bk_lock_t *l = lock_find(r, user);
    if (until_ns <= now_wall_ns()) {
        if (l && !later_wins) lock_remove(r, l);
        return 0;
    }
    if (l) {
        if (!later_wins || until_ns > l->until_ns) l->until_ns = until_ns;
        return 0;
    }
    if (r->n_locks == BK_MAX_LOCKS) return -1;
    if (r->n_locks == r->cap_locks) {
        size_t cap = r->cap_locks ? r->cap_locks * 2 : 16;
        bk_lock_t *n = realloc(r->locks, cap * sizeof *n);
        if (!n) abort();
        r->locks = n;
        r->cap_locks = cap;
    }
    l = &r->locks[r->n_locks++];
    snprintf(l->user, sizeof l->user, "%s", user);
    l->until_ns = until_ns;
    return 0;
}

static void pk_str(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str_with_body(pk, s, strlen(s));
}

/* disconnect {op, id, user[, until]} to g. */
static void send_disconnect(broker_t *b, bk_gateway_t *g, uint64_t id, const char *user,
                            bool has_until, uint64_t until_ns)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, has_until ? 4 : 3);
    pk_str(&pk, "op");
    pk_str(&pk, "disconnect");
    pk_str(&pk, "id");
    msgpack_pack_uint64(&pk, id);
    pk_str(&pk, "user");
    pk_str(&pk, user);
    if (has_until) {
        pk_str(&pk, "until");
        msgpack_pack_uint64(&pk, until_ns);
    }
    bk_native_send(b, g->ctrl, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
}

int bk_disconnect(broker_t *b, const bk_disconnect_args_t *a, bk_disconnect_done_fn done, void *ctx,
                  uint64_t *handle, uint64_t *closed, herald_error_t *err)
{
    struct bk_revoke *r = revoke_state(b);
    *handle = 0;
    *closed = 0;
    if (a->has_until && lock_set(r, a->user, a->until_ns, false) < 0)
        return herr_set(err, HERR_QUEUE_FULL, "until",
                        "%d users are locked already, the most "
                        "the broker holds",
                        BK_MAX_LOCKS);
    b->c.disconnects++;
    bk_pending_t *p = calloc(1, sizeof *p);
    if (!p) abort();
    p->id = ++r->next_id;
    bool asked = false;
    for (unsigned i = 0; i < BK_MAX_GATEWAYS; i++) {
        bk_gateway_t *g = bk_route_gateway(b, i);
        if (!g || !g->attached || !g->ctrl) continue;
        send_disconnect(b, g, p->id, a->user, a->has_until, a->until_ns);
        p->waiting[i / 64] |= 1ull << (i % 64);
        asked = true;
    }
    log_info("disconnect of user %s%s: %s", a->user,
             a->has_until ? (a->until_ns > now_wall_ns() ? " (locked)" : " (lock lifted)") : "",
             asked ? "asked the gateways" : "no gateway attached");
    if (!asked) {
        free(p);
        return 0;
    }
    bk_native_flush(b); /* called from the HTTP side: nothing else flushes control output */
    snprintf(p->user, sizeof p->user, "%s", a->user);
    p->deadline_ns = now_mono_ns() + BK_DISCONNECT_WAIT_NS;
    p->done = done;
    p->ctx = ctx;
    p->next = r->pending;
    r->pending = p;
    *handle = p->id;
    return 1;
}

static bool pending_waits(const bk_pending_t *p)
{
    for (size_t i = 0; i < BK_MAX_GATEWAYS / 64; i++)
        if (p->waiting[i]) return true;
    return false;
}

/* Unlink *pp, count it, call its done (the callback may start new requests). */
static void pending_finish(broker_t *b, bk_pending_t **pp)
{
    bk_pending_t *p = *pp;
    *pp = p->next;
    b->c.disconnect_closed += p->closed;
    log_info("disconnect of user %s: %llu session(s) closed", p->user,
             (unsigned long long)p->closed);
    if (p->done) p->done(b, p->ctx, p->closed);
    free(p);
}

void bk_disconnect_cancel(broker_t *b, uint64_t handle)
{
    if (!b->revoke) return;
    for (bk_pending_t *p = b->revoke->pending; p; p = p->next)
        if (p->id == handle) p->done = NULL; /* still absorbs the gateways' answers */
}

void bk_revoke_gateway_up(broker_t *b, bk_gateway_t *g)
{
    struct bk_revoke *r = b->revoke;
    if (!r || !g->ctrl) return;
    uint64_t now = now_wall_ns();
    for (size_t i = 0; i < r->n_locks; i++)
        if (r->locks[i].until_ns > now)
            send_disconnect(b, g, 0, r->locks[i].user, true, r->locks[i].until_ns);
}

/* Clear gateway gw's bit in every request; finish those that wait for nobody now. */
static void pending_drop_gateway(broker_t *b, unsigned gw, uint64_t id, uint64_t closed)
{
    struct bk_revoke *r = b->revoke;
    uint64_t bit = 1ull << (gw % 64);
    for (bk_pending_t **pp = &r->pending; *pp;) {
        bk_pending_t *p = *pp;
        if ((id && p->id != id) || !(p->waiting[gw / 64] & bit)) {
            pp = &p->next;
            continue;
        }
        p->waiting[gw / 64] &= ~bit;
        p->closed += closed;
        if (pending_waits(p))
            pp = &p->next;
        else
            pending_finish(b, pp); /* *pp is the next one now */
    }
}

void bk_revoke_gateway_down(broker_t *b, bk_gateway_t *g)
{
    if (b->revoke) pending_drop_gateway(b, g->id, 0, 0);
}

int bk_revoke_on_disconnected(broker_t *b, bk_gateway_t *g, const msgpack_object *o,
                              herald_error_t *err)
{
    const msgpack_object *id = codec_map_get(o, "id"), *closed = codec_map_get(o, "closed");
    if (!id || id->type != MSGPACK_OBJECT_POSITIVE_INTEGER || !closed ||
        closed->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return herr_set(err, HERR_BAD_VALUE, "id",
                        "disconnected needs non-negative integers id and closed");
    if (b->revoke) pending_drop_gateway(b, g->id, id->via.u64, closed->via.u64);
    return 0;
}

int bk_revoke_on_lock(broker_t *b, const msgpack_object *o, herald_error_t *err)
{
    const msgpack_object *user = codec_map_get(o, "user"), *until = codec_map_get(o, "until");
    char uid[HERALD_MAX_ID_LEN + 1];
    if (!user || user->type != MSGPACK_OBJECT_STR || !user->via.str.size ||
        user->via.str.size > HERALD_MAX_ID_LEN || !until ||
        until->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return herr_set(err, HERR_BAD_VALUE, "user", "lock needs a user and an integer until");
    memcpy(uid, user->via.str.ptr, user->via.str.size);
    uid[user->via.str.size] = '\0';
    if (lock_set(revoke_state(b), uid, until->via.u64, true) < 0)
        return herr_set(err, HERR_QUEUE_FULL, "user", "lock table full (%d)", BK_MAX_LOCKS);
    return 0;
}

void bk_revoke_tick(broker_t *b)
{
    struct bk_revoke *r = b->revoke;
    if (!r) return;
    uint64_t mono = now_mono_ns(), wall = now_wall_ns();
    for (bk_pending_t **pp = &r->pending; *pp;) {
        bk_pending_t *p = *pp;
        if (p->deadline_ns > mono) {
            pp = &p->next;
            continue;
        }
        char ids[256] = "";
        size_t n = 0;
        for (unsigned i = 0; i < BK_MAX_GATEWAYS && n + 8 < sizeof ids; i++)
            if (p->waiting[i / 64] & (1ull << (i % 64)))
                n += (size_t)snprintf(ids + n, sizeof ids - n, " %u", i);
        b->c.disconnect_timeouts++;
        log_warn("disconnect of user %s: no answer within %llu s from gateway(s)%s; answering "
                 "with the sessions counted so far",
                 p->user, (unsigned long long)(BK_DISCONNECT_WAIT_NS / 1000000000ull), ids);
        pending_finish(b, pp);
    }
    for (size_t i = 0; i < r->n_locks;)
        if (r->locks[i].until_ns <= wall)
            lock_remove(r, &r->locks[i]);
        else
            i++;
}
