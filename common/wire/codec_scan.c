/* codec_scan.c - the broker's direct ingest path: notifications parsed straight from the
 * bytes of a checked frame (codec.h: codec_notif_scan; the msgpack readers are mpread.h). */
#include <string.h>

#include "codec.h"
#include "codec_field.h"
#include "mpread.h"

/* codec_field_str for the value at q; *len gets the string's length. */
static int str_field(const uint8_t *q, int f, char *dst, size_t cap, bool nonempty, uint8_t *len,
                     herald_error_t *err)
{
    const char *s = NULL;
    uint32_t n = 0;
    bool is_str = mp_str(q, &s, &n);
    *len = (uint8_t)n; /* at most cap (< 256) when accepted */
    return codec_field_str(is_str, s, n, f, dst, cap, nonempty, err);
}

static int uint_field(const uint8_t *q, int f, uint64_t max, uint64_t *out, herald_error_t *err)
{
    uint64_t v = 0;
    codec_int_kind_t k = mp_uint(q, &v);
    return codec_field_uint(k, v, f, max, out, err);
}

/* The payload map's entries, taken in one walk that also finds the map's end. The first
 * PL_INDEXED are indexed (key and value positions); larger payloads are searched in place. */
#define PL_INDEXED 16

typedef struct {
    uint32_t count;
    const uint8_t *first;        /* first key */
    const char *key[PL_INDEXED]; /* NULL: not a str */
    uint32_t klen[PL_INDEXED];
    const uint8_t *val[PL_INDEXED];
} pl_index_t;

/* Index the payload map at pl (header already checked); returns the map's end. */
static const uint8_t *pl_walk(const uint8_t *pl, pl_index_t *x)
{
    const uint8_t *q = pl + mp_map(pl, &x->count);
    x->first = q;
    for (uint32_t i = 0; i < x->count; i++) {
        const char *k = NULL;
        uint32_t kn = 0;
        bool str = mp_str(q, &k, &kn);
        q = str ? (const uint8_t *)k + kn : q + codec_span(q);
        if (i < PL_INDEXED) {
            x->key[i] = str ? k : NULL;
            x->klen[i] = kn;
            x->val[i] = q;
        }
        q += mp_span(q);
    }
    return q;
}

/* model.c's map_get: the value of key, searched from entry *hint on, wrapping around, so
 * with duplicate keys the same entry is found; *hint moves past the match. */
static const uint8_t *pl_get(const pl_index_t *x, const char *key, size_t klen, uint32_t *hint)
{
    uint32_t n = x->count, i = *hint;
    if (n <= PL_INDEXED) {
        for (uint32_t j = 0; j < n; j++, i = i + 1 == n ? 0 : i + 1) {
            const char *k = x->key[i];
            if (k && x->klen[i] == klen && k[0] == key[0] && memcmp(k, key, klen) == 0) {
                *hint = i + 1 == n ? 0 : i + 1;
                return x->val[i];
            }
        }
        return NULL;
    }
    /* in place: walk from the first entry, keeping the first match at or after *hint and
     * the first one before it */
    const uint8_t *q = x->first, *before = NULL;
    uint32_t before_i = 0;
    for (uint32_t j = 0; j < n; j++) {
        const char *k;
        uint32_t kn;
        bool str = mp_str(q, &k, &kn);
        bool match = str && kn == klen && k[0] == key[0] && memcmp(k, key, klen) == 0;
        q = str ? (const uint8_t *)k + kn : q + codec_span(q);
        if (match && j >= i) {
            *hint = j + 1 == n ? 0 : j + 1;
            return q;
        }
        if (match && !before) {
            before = q;
            before_i = j;
        }
        q += mp_span(q);
    }
    if (before) *hint = before_i + 1 == n ? 0 : before_i + 1;
    return before;
}

/* model_validate_payload over the indexed payload x. */
static int payload_check(const msg_type_t *type, const pl_index_t *x, herald_error_t *err)
{
    uint32_t hint = 0;
    for (size_t i = 0; i < type->n_required; i++) {
        const field_spec_t *f = &type->required[i];
        const uint8_t *v = pl_get(x, f->name, f->name_len, &hint);
        msgpack_object_type t = v ? mp_type(v) : MSGPACK_OBJECT_NIL;
        int rc = model_payload_field_check(type, f, v ? &t : NULL, err);
        if (rc) return rc;
    }
    return 0;
}

/* The notification map's keys, each looked at once: f[] gets where each field's value
 * starts, the payload (when a map) is indexed into pl and *payload_end set, *qp moves to
 * the end of the map. Returns 0 or the negative herr. Called once per notification. */
static inline int scan_keys(const uint8_t **qp, uint32_t count, const uint8_t **f, pl_index_t *pl,
                            const uint8_t **payload_end, herald_error_t *err)
{
    const uint8_t *q = *qp;
    for (uint32_t i = 0; i < count; i++) {
        const char *k;
        uint32_t kn;
        if (!mp_str(q, &k, &kn))
            return herr_set(err, HERR_BAD_KIND, "", "notification keys must be strings");
        int idx = codec_field_index(k, kn);
        if (idx < 0) return codec_field_unknown(k, kn, err);
        if (f[idx])
            return herr_set(err, HERR_BAD_VALUE, codec_field_names[idx], "duplicate field %s",
                            codec_field_names[idx]);
        q = (const uint8_t *)k + kn;
        f[idx] = q;
        if (idx == F_PAYLOAD && mp_map(q, &pl->count)) {
            q = *payload_end = pl_walk(q, pl);
        } else {
            q += mp_span(q);
        }
    }
    *qp = q;
    return 0;
}

/* message_type, user_id and message_id (generated when absent), in notif_parse's order. */
static inline int scan_ids(const uint8_t *const *f, notif_t *n, herald_error_t *err)
{
    const char *s;
    uint32_t sn;
    if (!f[F_MESSAGE_TYPE]) return codec_field_missing(F_MESSAGE_TYPE, err);
    if (!mp_str(f[F_MESSAGE_TYPE], &s, &sn))
        return herr_set(err, HERR_BAD_KIND, "message_type", "message_type must be a string");
    n->type = model_type_find(s, sn);
    if (!n->type) return codec_field_unknown_type(s, sn, err);

    if (!f[F_USER_ID]) return codec_field_missing(F_USER_ID, err);
    int rc = str_field(f[F_USER_ID], F_USER_ID, n->user_id, HERALD_MAX_ID_LEN, true,
                       &n->user_id_len, err);
    if (rc) return rc;

    if (f[F_MESSAGE_ID])
        return str_field(f[F_MESSAGE_ID], F_MESSAGE_ID, n->message_id, HERALD_MAX_ID_LEN, true,
                         &n->message_id_len, err);
    model_gen_message_id(n->message_id);
    n->message_id_len = (uint8_t)strlen(n->message_id);
    return 0;
}

/* priority (the type's when absent), timestamp and source. */
static inline int scan_options(const uint8_t *const *f, notif_t *n, herald_error_t *err)
{
    int rc;
    uint64_t u = 0;
    n->has_priority = f[F_PRIORITY] != NULL;
    if (f[F_PRIORITY]) {
        rc = uint_field(f[F_PRIORITY], F_PRIORITY, HERALD_PRIORITIES - 1, &u, err);
        if (rc) return rc;
        n->priority = (uint8_t)u;
    } else {
        n->priority = n->type->priority;
    }

    n->has_timestamp = f[F_TIMESTAMP] != NULL;
    n->timestamp = 0;
    if (f[F_TIMESTAMP]) {
        rc = uint_field(f[F_TIMESTAMP], F_TIMESTAMP, UINT64_MAX, &n->timestamp, err);
        if (rc) return rc;
    }

    n->source[0] = '\0';
    n->source_len = 0;
    if (f[F_SOURCE])
        return str_field(f[F_SOURCE], F_SOURCE, n->source, HERALD_MAX_SOURCE_LEN, false,
                         &n->source_len, err);
    return 0;
}

/* codec.c's notif_parse for a producer map (record=false), reading bytes: the same checks
 * in the same order. Fields the broker does not read (payload as an object) are not set.
 * Every key is looked at before any value, so on success q has passed the whole map. */
long codec_notif_scan(const uint8_t *p, size_t len, notif_t *n, herald_error_t *err)
{
    if (len == 0) return herr_set(err, HERR_TRUNCATED, "", "input ends inside a msgpack value");
    uint32_t count;
    unsigned hdr = mp_map(p, &count);
    if (!hdr) return herr_set(err, HERR_NOT_MAP, "", "a notification must be a map");
    const uint8_t *f[F__COUNT] = {0}, *payload_end = NULL;
    pl_index_t pl;
    pl.count = 0;
    pl.first = NULL;
    const uint8_t *q = p + hdr;
    int rc = scan_keys(&q, count, f, &pl, &payload_end, err);
    if (!rc) rc = scan_ids(f, n, err);
    if (!rc) rc = scan_options(f, n, err);
    if (rc) return rc;

    static const uint8_t empty_map[1] = {0x80};
    n->payload.type = MSGPACK_OBJECT_NIL;
    n->seq = 0;
    if (f[F_PAYLOAD]) {
        if (!mp_map(f[F_PAYLOAD], &count))
            return herr_set(err, HERR_BAD_KIND, "payload", "payload must be a map");
        n->payload_raw = f[F_PAYLOAD];
        n->payload_raw_len = (uint32_t)(payload_end - f[F_PAYLOAD]);
    } else {
        n->payload_raw = empty_map;
        n->payload_raw_len = 1;
    }
    rc = payload_check(n->type, &pl, err);
    return rc ? rc : (long)(q - p);
}
