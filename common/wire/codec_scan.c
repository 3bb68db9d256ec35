/* codec_scan.c - the broker's direct ingest path: msgpack checked and stepped over in place,
 * notifications parsed straight from their bytes (codec.h: codec_skip .. codec_notif_scan). */
#include <string.h>

#include <msgpack/unpack_define.h> /* MSGPACK_EMBED_STACK_SIZE: the reader's nesting limit */

#include "codec.h"
#include "codec_field.h"

/* Bytes of the fixed-size head after a 0xc0..0xdf tag: a length, count or the value itself
 * (codec_field.h; the object reader uses it too). */
const uint8_t codec_mp_head[32] = {
    [0x04] = 1, [0x05] = 2, [0x06] = 4,                         /* bin */
    [0x07] = 2, [0x08] = 3, [0x09] = 5,                         /* ext: length + type */
    [0x0a] = 4, [0x0b] = 8,                                     /* float */
    [0x0c] = 1, [0x0d] = 2, [0x0e] = 4, [0x0f] = 8,             /* uint */
    [0x10] = 1, [0x11] = 2, [0x12] = 4, [0x13] = 8,             /* int */
    [0x14] = 1, [0x15] = 1, [0x16] = 1, [0x17] = 1, [0x18] = 1, /* fixext: type */
    [0x19] = 1, [0x1a] = 2, [0x1b] = 4,                         /* str */
    [0x1c] = 2, [0x1d] = 4, [0x1e] = 2, [0x1f] = 4,             /* array, map */
};

static inline uint64_t mp_be(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

/* What follows the head of a tag in 0xc0..0xdf (head value v): body bytes to step over, or
 * items a container announces (*items, 0 for scalars). */
static inline uint64_t mp_body_len(uint8_t b, uint64_t v, uint64_t *items)
{
    *items = 0;
    switch (b) {
    case 0xc4:
    case 0xc5:
    case 0xc6:
    case 0xd9:
    case 0xda:
    case 0xdb:
        return v;
    case 0xc7:
    case 0xc8:
    case 0xc9:
        return v >> 8;
    case 0xd4:
    case 0xd5:
    case 0xd6:
    case 0xd7:
    case 0xd8:
        return 1u << (b - 0xd4);
    case 0xdc:
    case 0xdd:
        *items = v;
        return 0;
    case 0xde:
    case 0xdf:
        *items = 2 * v;
        return 0;
    default:
        return 0;
    }
}

/* The reader's rules without its objects: codec_read.c's mp_read and mp_container walked
 * iteratively. `cur` counts the values the innermost open container still expects after the
 * one being read (outer ones are saved in `outer`), and `pending` is the sum over all open
 * containers, the reader's r->pending: so a container is refused as truncated at the same
 * byte, and nesting is refused at the same depth. */
static long mp_skip(const uint8_t *p, size_t len)
{
    const uint8_t *q = p, *end = p + len;
    uint64_t outer[MSGPACK_EMBED_STACK_SIZE], pending = 0, cur = 0;
    unsigned depth = 0;
    for (;;) {
        if (q >= end) return -HERR_TRUNCATED;
        uint8_t b = *q++;
        uint64_t items = 0;
        bool container = false;
        if (b <= 0x7f || b >= 0xe0) {
            /* fixint */
        } else if (b >= 0xa0 && b <= 0xbf) {
            if ((size_t)(end - q) < (b & 0x1fu)) return -HERR_TRUNCATED;
            q += b & 0x1fu;
        } else if (b <= 0x9f) {
            container = true;
            items = b <= 0x8f ? 2u * (b & 0x0fu) : b & 0x0fu;
        } else {
            if (b == 0xc1) return -HERR_MALFORMED;
            unsigned h = codec_mp_head[b - 0xc0];
            if ((size_t)(end - q) < h) return -HERR_TRUNCATED;
            uint64_t body = mp_body_len(b, mp_be(q, h), &items);
            q += h;
            container = b >= 0xdc;
            if (body > (uint64_t)(end - q)) return -HERR_TRUNCATED;
            q += body;
        }
        if (container) {
            if (depth >= MSGPACK_EMBED_STACK_SIZE) return -HERR_MALFORMED;
            if (items + pending > (uint64_t)(end - q)) return -HERR_TRUNCATED;
            if (items) {
                outer[depth++] = cur;
                cur = items;
                pending += items;
            }
        }
        while (cur == 0) {
            if (depth == 0) return (long)(q - p);
            cur = outer[--depth];
        }
        cur--;
        pending--;
    }
}

static int skip_error(int rc, herald_error_t *err)
{
    if (rc == -HERR_TRUNCATED)
        return herr_set(err, HERR_TRUNCATED, "", "input ends inside a msgpack value");
    return herr_set(err, HERR_MALFORMED, "", "invalid msgpack (or nested over %d deep)",
                    MSGPACK_EMBED_STACK_SIZE);
}

long codec_skip(const uint8_t *p, size_t len, herald_error_t *err)
{
    long rc = mp_skip(p, len);
    return rc < 0 ? skip_error((int)rc, err) : rc;
}

int codec_check(const uint8_t *buf, size_t len, size_t max_bytes, herald_error_t *err)
{
    if (len > max_bytes)
        return herr_set(err, HERR_TOO_LARGE, "", "input is %zu bytes, limit %zu", len, max_bytes);
    long rc = mp_skip(buf, len);
    if (rc < 0) return skip_error((int)rc, err);
    if ((size_t)rc < len)
        return herr_set(err, HERR_TRAILING, "", "%zu bytes after the msgpack value",
                        len - (size_t)rc);
    return 0;
}

/* codec_span with the common one-byte-head cases (fixint, fixstr) inline. */
static inline size_t mp_span(const uint8_t *q)
{
    uint8_t b = q[0];
    if (b <= 0x7f || b >= 0xe0) return 1;
    if (b >= 0xa0 && b <= 0xbf) return 1u + (b & 0x1fu);
    return codec_span(q);
}

size_t codec_span(const uint8_t *p)
{
    const uint8_t *q = p;
    uint64_t left = 1;
    do {
        left--;
        uint8_t b = *q++;
        if (b <= 0x7f || b >= 0xe0) continue;
        if (b <= 0x8f) {
            left += 2u * (b & 0x0fu);
        } else if (b <= 0x9f) {
            left += b & 0x0fu;
        } else if (b <= 0xbf) {
            q += b & 0x1fu;
        } else {
            unsigned h = codec_mp_head[b - 0xc0];
            uint64_t items, body = mp_body_len(b, mp_be(q, h), &items);
            q += h + body;
            left += items;
        }
    } while (left);
    return (size_t)(q - p);
}

size_t codec_array_open(const uint8_t *p, size_t len, uint32_t *count)
{
    if (len >= 1 && (p[0] & 0xf0u) == 0x90u) {
        *count = p[0] & 0x0fu;
        return 1;
    }
    if (len >= 3 && p[0] == 0xdc) {
        *count = (uint32_t)mp_be(p + 1, 2);
        return 3;
    }
    if (len >= 5 && p[0] == 0xdd) {
        *count = (uint32_t)mp_be(p + 1, 4);
        return 5;
    }
    return 0;
}

/* The str at q: sets *s and *n and returns true, or returns false if q is no str. */
static inline bool mp_str(const uint8_t *q, const char **s, uint32_t *n)
{
    uint8_t b = q[0];
    unsigned h;
    if (b >= 0xa0 && b <= 0xbf) {
        *n = b & 0x1fu;
        h = 0;
    } else if (b >= 0xd9 && b <= 0xdb) {
        h = codec_mp_head[b - 0xc0];
        *n = (uint32_t)mp_be(q + 1, h);
    } else {
        return false;
    }
    *s = (const char *)q + 1 + h;
    return true;
}

/* The map header at q: sets *count and returns the header length, or 0 if q is no map. */
static inline unsigned mp_map(const uint8_t *q, uint32_t *count)
{
    if ((q[0] & 0xf0u) == 0x80u) {
        *count = q[0] & 0x0fu;
        return 1;
    }
    if (q[0] == 0xde || q[0] == 0xdf) {
        unsigned h = codec_mp_head[q[0] - 0xc0];
        *count = (uint32_t)mp_be(q + 1, h);
        return 1 + h;
    }
    return 0;
}

/* The signed value of an int tag 0xd0..0xd3 with h head bytes v. */
static inline int64_t mp_sext(uint64_t v, unsigned h)
{
    return (int64_t)(v << (64 - 8 * h)) >> (64 - 8 * h);
}

/* The msgpack-c object type codec_unpack gives the value at q. */
static msgpack_object_type mp_type(const uint8_t *q)
{
    uint8_t b = q[0];
    if (b <= 0x7f) return MSGPACK_OBJECT_POSITIVE_INTEGER;
    if (b >= 0xe0) return MSGPACK_OBJECT_NEGATIVE_INTEGER;
    if (b <= 0x8f) return MSGPACK_OBJECT_MAP;
    if (b <= 0x9f) return MSGPACK_OBJECT_ARRAY;
    if (b <= 0xbf) return MSGPACK_OBJECT_STR;
    switch (b) {
    case 0xc2:
    case 0xc3:
        return MSGPACK_OBJECT_BOOLEAN;
    case 0xc4:
    case 0xc5:
    case 0xc6:
        return MSGPACK_OBJECT_BIN;
    case 0xca:
        return MSGPACK_OBJECT_FLOAT32;
    case 0xcb:
        return MSGPACK_OBJECT_FLOAT64;
    case 0xcc:
    case 0xcd:
    case 0xce:
    case 0xcf:
        return MSGPACK_OBJECT_POSITIVE_INTEGER;
    case 0xd0:
    case 0xd1:
    case 0xd2:
    case 0xd3: {
        unsigned h = codec_mp_head[b - 0xc0];
        return mp_sext(mp_be(q + 1, h), h) < 0 ? MSGPACK_OBJECT_NEGATIVE_INTEGER
                                               : MSGPACK_OBJECT_POSITIVE_INTEGER;
    }
    case 0xd9:
    case 0xda:
    case 0xdb:
        return MSGPACK_OBJECT_STR;
    case 0xdc:
    case 0xdd:
        return MSGPACK_OBJECT_ARRAY;
    case 0xde:
    case 0xdf:
        return MSGPACK_OBJECT_MAP;
    case 0xc0:
        return MSGPACK_OBJECT_NIL;
    default:
        return MSGPACK_OBJECT_EXT; /* 0xc7..0xc9, 0xd4..0xd8 */
    }
}

/* The value at q read as codec_field_uint wants it (msgpack-c's kind and via.u64). */
static codec_int_kind_t mp_uint(const uint8_t *q, uint64_t *v)
{
    uint8_t b = q[0];
    if (b <= 0x7f) {
        *v = b;
        return INT_POSITIVE;
    }
    if (b >= 0xe0) return INT_NEGATIVE;
    if (b >= 0xcc && b <= 0xd3) {
        unsigned h = codec_mp_head[b - 0xc0];
        *v = mp_be(q + 1, h);
        if (b <= 0xcf) return INT_POSITIVE;
        int64_t i = mp_sext(*v, h);
        *v = (uint64_t)i;
        return i < 0 ? INT_NEGATIVE : INT_POSITIVE;
    }
    return INT_NONE;
}

size_t codec_map_open(const uint8_t *p, uint32_t *count)
{
    return mp_map(p, count);
}

bool codec_str_at(const uint8_t *p, const char **s, uint32_t *n)
{
    return mp_str(p, s, n);
}

bool codec_uint_at(const uint8_t *p, uint64_t *v)
{
    uint64_t u = 0;
    if (mp_uint(p, &u) != INT_POSITIVE) return false;
    *v = u;
    return true;
}

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

/* codec.c's notif_parse for a producer map (record=false), reading bytes: the same checks
 * in the same order. Fields the broker does not read (payload as an object) are not set.
 * Every key is looked at before any value, so on success q has passed the whole map. */
long codec_notif_scan(const uint8_t *p, size_t len, notif_t *n, herald_error_t *err)
{
    if (len == 0) return herr_set(err, HERR_TRUNCATED, "", "input ends inside a msgpack value");
    uint32_t count;
    unsigned hdr = mp_map(p, &count);
    if (!hdr) return herr_set(err, HERR_NOT_MAP, "", "a notification must be a map");
    const uint8_t *f[F__COUNT] = {0}, *q = p + hdr, *payload_end = NULL;
    pl_index_t pl;
    pl.count = 0;
    pl.first = NULL;
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
        if (idx == F_PAYLOAD && mp_map(q, &pl.count)) {
            q = payload_end = pl_walk(q, &pl);
        } else {
            q += mp_span(q);
        }
    }

    int rc;
    const char *s;
    uint32_t sn;
    if (!f[F_MESSAGE_TYPE]) return codec_field_missing(F_MESSAGE_TYPE, err);
    if (!mp_str(f[F_MESSAGE_TYPE], &s, &sn))
        return herr_set(err, HERR_BAD_KIND, "message_type", "message_type must be a string");
    n->type = model_type_find(s, sn);
    if (!n->type) return codec_field_unknown_type(s, sn, err);

    if (!f[F_USER_ID]) return codec_field_missing(F_USER_ID, err);
    rc = str_field(f[F_USER_ID], F_USER_ID, n->user_id, HERALD_MAX_ID_LEN, true, &n->user_id_len,
                   err);
    if (rc) return rc;

    if (f[F_MESSAGE_ID]) {
        rc = str_field(f[F_MESSAGE_ID], F_MESSAGE_ID, n->message_id, HERALD_MAX_ID_LEN, true,
                       &n->message_id_len, err);
        if (rc) return rc;
    } else {
        model_gen_message_id(n->message_id);
        n->message_id_len = (uint8_t)strlen(n->message_id);
    }

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
    if (f[F_SOURCE]) {
        rc = str_field(f[F_SOURCE], F_SOURCE, n->source, HERALD_MAX_SOURCE_LEN, false,
                       &n->source_len, err);
        if (rc) return rc;
    }

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
