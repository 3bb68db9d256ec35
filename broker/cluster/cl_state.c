/* cl_state.c - a partition's durable view: users' last seqs (an open-addressed index over an
 * array of entries) and a FIFO ring of the last message ids; checkpoint (de)serialisation. */
#include "cl_state.h"

#include <stdlib.h>
#include <string.h>

#include "cl_wire.h"
#include "model.h"

typedef struct {
    uint64_t seq;
    uint32_t hash;
    uint8_t len;
    char id[HERALD_MAX_ID_LEN];
} cl_user_ent_t;

typedef struct {
    uint64_t seq, fp;
    uint8_t len;
    char id[HERALD_MAX_ID_LEN];
} cl_id_ent_t;

struct cl_state {
    cl_user_ent_t *users; /* users[0..n_users) */
    size_t n_users, cap_users;
    uint32_t *index; /* slot + 1 of a user, 0 = empty; at most half full */
    size_t index_size;
    cl_id_ent_t *ids; /* ring: the oldest at ids[head] */
    uint32_t window, head, n_ids;
    cl_fingerprint_fn fp; /* of applied records, or NULL */
};

static uint32_t cl_hash(const char *s, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (uint8_t)s[i]) * 0x100000001b3ull;
    return (uint32_t)(h ^ h >> 32);
}

cl_state_t *cl_state_new(uint32_t window)
{
    cl_state_t *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->window = window ? window : 1;
    s->ids = calloc(s->window, sizeof *s->ids);
    s->index_size = 64;
    s->index = calloc(s->index_size, sizeof *s->index);
    if (!s->ids || !s->index) {
        cl_state_free(s);
        return NULL;
    }
    return s;
}

void cl_state_set_fingerprint(cl_state_t *s, cl_fingerprint_fn fn)
{
    s->fp = fn;
}

void cl_state_free(cl_state_t *s)
{
    if (!s) return;
    free(s->users);
    free(s->index);
    free(s->ids);
    free(s);
}

static uint32_t *cl_index_find(const cl_state_t *s, const char *user, size_t len, uint32_t h)
{
    size_t mask = s->index_size - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        uint32_t *slot = &s->index[i];
        if (*slot == 0) return slot;
        const cl_user_ent_t *e = &s->users[*slot - 1];
        if (e->hash == h && e->len == len && memcmp(e->id, user, len) == 0) return slot;
    }
}

static int cl_index_grow(cl_state_t *s)
{
    size_t size = s->index_size * 2;
    uint32_t *index = calloc(size, sizeof *index);
    if (!index) return -1;
    free(s->index);
    s->index = index;
    s->index_size = size;
    for (size_t i = 0; i < s->n_users; i++) {
        const cl_user_ent_t *e = &s->users[i];
        *cl_index_find(s, e->id, e->len, e->hash) = (uint32_t)i + 1;
    }
    return 0;
}

/* Set user's seq to max(seq, known). Out of memory leaves the user out (a takeover then
 * starts that user lower; never reached in practice, the broker aborts on OOM first). */
static void cl_user_raise(cl_state_t *s, const char *user, size_t len, uint64_t seq)
{
    if (len == 0 || len > HERALD_MAX_ID_LEN) return;
    uint32_t h = cl_hash(user, len);
    uint32_t *slot = cl_index_find(s, user, len, h);
    if (*slot) {
        cl_user_ent_t *e = &s->users[*slot - 1];
        if (seq > e->seq) e->seq = seq;
        return;
    }
    if ((s->n_users + 1) * 2 > s->index_size) {
        if (cl_index_grow(s) < 0) return;
        slot = cl_index_find(s, user, len, h);
    }
    if (s->n_users == s->cap_users) {
        size_t cap = s->cap_users ? s->cap_users * 2 : 64;
        cl_user_ent_t *u = realloc(s->users, cap * sizeof *u);
        if (!u) return;
        s->users = u;
        s->cap_users = cap;
    }
    cl_user_ent_t *e = &s->users[s->n_users++];
    e->seq = seq;
    e->hash = h;
    e->len = (uint8_t)len;
    memcpy(e->id, user, len);
    *slot = (uint32_t)s->n_users;
}

static void cl_id_push(cl_state_t *s, const char *id, size_t len, uint64_t seq, uint64_t fp)
{
    if (len == 0 || len > HERALD_MAX_ID_LEN) return;
    uint32_t at = (s->head + s->n_ids) % s->window;
    if (s->n_ids == s->window) {
        s->head = (s->head + 1) % s->window; /* evict the oldest */
    } else {
        s->n_ids++;
    }
    cl_id_ent_t *e = &s->ids[at];
    e->seq = seq;
    e->fp = fp;
    e->len = (uint8_t)len;
    memcpy(e->id, id, len);
}

void cl_state_apply(cl_state_t *s, const cl_rec_t *r)
{
    cl_user_raise(s, r->user, r->user_len, r->seq);
    cl_id_push(s, r->message_id, r->id_len, r->seq, s->fp ? s->fp(r->bytes, r->len) : 0);
}

uint64_t cl_state_user_seq(const cl_state_t *s, const char *user, size_t len)
{
    if (len == 0 || len > HERALD_MAX_ID_LEN) return 0;
    uint32_t *slot = cl_index_find(s, user, len, cl_hash(user, len));
    return *slot ? s->users[*slot - 1].seq : 0;
}

size_t cl_state_user_count(const cl_state_t *s)
{
    return s->n_users;
}

size_t cl_state_id_count(const cl_state_t *s)
{
    return s->n_ids;
}

/* Checkpoint payload: u32 magic, u32 version, u64 stream_seq, u32 n_users, u32 n_ids, then
 * n_users x {u8 len, id, u64 seq} and n_ids x {u8 len, id, u64 seq, u64 fp}, oldest id first
 * (version 1 had no fp). */
#define CL_CKPT_HEAD    24
#define CL_CKPT_VERSION 2

uint8_t *cl_state_encode(const cl_state_t *s, uint64_t stream_seq, size_t *len)
{
    size_t need = CL_CKPT_HEAD;
    for (size_t i = 0; i < s->n_users; i++)
        need += 9u + s->users[i].len;
    for (uint32_t i = 0; i < s->n_ids; i++)
        need += 17u + s->ids[(s->head + i) % s->window].len;
    uint8_t *buf = malloc(need), *p = buf;
    if (!buf) return NULL;
    cl_put32(p, CL_CKPT_MAGIC);
    cl_put32(p + 4, CL_CKPT_VERSION);
    cl_put64(p + 8, stream_seq);
    cl_put32(p + 16, (uint32_t)s->n_users);
    cl_put32(p + 20, s->n_ids);
    p += CL_CKPT_HEAD;
    for (size_t i = 0; i < s->n_users; i++) {
        const cl_user_ent_t *e = &s->users[i];
        *p++ = e->len;
        memcpy(p, e->id, e->len);
        cl_put64(p + e->len, e->seq);
        p += e->len + 8u;
    }
    for (uint32_t i = 0; i < s->n_ids; i++) {
        const cl_id_ent_t *e = &s->ids[(s->head + i) % s->window];
        *p++ = e->len;
        memcpy(p, e->id, e->len);
        cl_put64(p + e->len, e->seq);
        cl_put64(p + e->len + 8, e->fp);
        p += e->len + 16u;
    }
    *len = need;
    return buf;
}

/* Read one {u8 len, bytes, u64 seq[, u64 fp]} at *off (fp when fp is not NULL); returns
 * false if it does not fit. */
static bool cl_ckpt_entry(const uint8_t *buf, size_t len, size_t *off, const char **id,
                          uint8_t *idlen, uint64_t *seq, uint64_t *fp)
{
    if (*off >= len) return false;
    uint8_t n = buf[*off];
    size_t words = fp ? 16 : 8;
    if (n == 0 || n > HERALD_MAX_ID_LEN || len - *off - 1 < (size_t)n + words) return false;
    *id = (const char *)buf + *off + 1;
    *idlen = n;
    *seq = cl_get64(buf + *off + 1 + n);
    if (fp) *fp = cl_get64(buf + *off + 1 + n + 8);
    *off += 1u + n + words;
    return true;
}

int cl_state_decode(cl_state_t *s, const uint8_t *buf, size_t len, uint64_t *stream_seq)
{
    uint32_t version = len >= CL_CKPT_HEAD ? cl_get32(buf + 4) : 0;
    if (len < CL_CKPT_HEAD || cl_get32(buf) != CL_CKPT_MAGIC || version < 1 ||
        version > CL_CKPT_VERSION)
        return -1;
    uint32_t n_users = cl_get32(buf + 16), n_ids = cl_get32(buf + 20);
    size_t off = CL_CKPT_HEAD;
    const char *id;
    uint8_t idlen;
    uint64_t seq, fp = 0;
    for (uint32_t i = 0; i < n_users; i++) {
        if (!cl_ckpt_entry(buf, len, &off, &id, &idlen, &seq, NULL)) return -1;
        cl_user_raise(s, id, idlen, seq);
    }
    for (uint32_t i = 0; i < n_ids; i++) {
        if (!cl_ckpt_entry(buf, len, &off, &id, &idlen, &seq, version > 1 ? &fp : NULL)) return -1;
        cl_id_push(s, id, idlen, seq, fp);
    }
    if (off != len) return -1;
    *stream_seq = cl_get64(buf + 8);
    return 0;
}

cl_takeover_t *cl_state_takeover(const cl_state_t *s)
{
    size_t bytes = sizeof(cl_takeover_t) + s->n_users * sizeof(cl_user_seq_t) +
                   (size_t)s->n_ids * sizeof(cl_id_seq_t);
    for (size_t i = 0; i < s->n_users; i++)
        bytes += s->users[i].len;
    for (uint32_t i = 0; i < s->n_ids; i++)
        bytes += s->ids[(s->head + i) % s->window].len;
    cl_takeover_t *tk = calloc(1, bytes);
    if (!tk) return NULL;
    cl_user_seq_t *users = (cl_user_seq_t *)(tk + 1);
    cl_id_seq_t *ids = (cl_id_seq_t *)(users + s->n_users);
    char *text = (char *)(ids + s->n_ids);
    for (size_t i = 0; i < s->n_users; i++) {
        const cl_user_ent_t *e = &s->users[i];
        memcpy(text, e->id, e->len);
        users[i] = (cl_user_seq_t){.user = text, .seq = e->seq, .user_len = e->len};
        text += e->len;
    }
    for (uint32_t i = 0; i < s->n_ids; i++) {
        const cl_id_ent_t *e = &s->ids[(s->head + i) % s->window];
        memcpy(text, e->id, e->len);
        ids[i] = (cl_id_seq_t){.message_id = text, .seq = e->seq, .fp = e->fp, .id_len = e->len};
        text += e->len;
    }
    tk->users = users;
    tk->n_users = s->n_users;
    tk->ids = ids;
    tk->n_ids = s->n_ids;
    return tk;
}
