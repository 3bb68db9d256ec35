/* codec_read.c - codec_unpack: a strict one-pass msgpack reader with bounded allocation. */
#include <string.h>

#include <msgpack/unpack_define.h> /* MSGPACK_EMBED_STACK_SIZE: msgpack-c's nesting limit */

#include "codec.h"
#include "codec_field.h"

/* A one-pass msgpack reader that builds msgpack_object trees in a msgpack-c zone.
 *
 * Why not msgpack_unpack: msgpack-c allocates count*sizeof(object) as soon as it sees an
 * array/map header, so a 5-byte "array of 2^32 items" asks for ~100 GB, and a 64 KiB input
 * of array16 headers for tens of GB. Here a container may announce at most as many items
 * as there are bytes left that no enclosing container has claimed (each item needs one), so
 * all containers together allocate at most one object (or key/value pair) per input byte.
 * It also tells truncation (TRUNCATED) from bad bytes (MALFORMED), and it is one pass where
 * a pre-scan plus msgpack_unpack would be two. Objects are exactly what msgpack-c builds
 * (same types, strings pointing into the input), and nesting is limited like msgpack-c's
 * (MSGPACK_EMBED_STACK_SIZE open containers), so other code sees no difference. */
typedef struct {
    const uint8_t *p, *end;
    msgpack_zone *zone;
    unsigned depth;   /* open containers around the value being read */
    uint64_t pending; /* values enclosing containers still expect after this one */
} mp_reader_t;

static uint64_t mp_be(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

static int mp_read(mp_reader_t *r, msgpack_object *o);

static int mp_container(mp_reader_t *r, msgpack_object *o, uint64_t n, bool map)
{
    if (r->depth >= MSGPACK_EMBED_STACK_SIZE) return -HERR_MALFORMED;
    uint64_t need = map ? 2 * n : n, outer = r->pending;
    if (need + outer > (uint64_t)(r->end - r->p)) return -HERR_TRUNCATED;
    size_t each = map ? sizeof(msgpack_object_kv) : sizeof(msgpack_object);
    void *items = NULL;
    if (n) {
        items = msgpack_zone_malloc(r->zone, (size_t)n * each);
        if (!items) return -HERR_INTERNAL;
    }
    if (map) {
        o->type = MSGPACK_OBJECT_MAP;
        o->via.map.size = (uint32_t)n;
        o->via.map.ptr = items;
    } else {
        o->type = MSGPACK_OBJECT_ARRAY;
        o->via.array.size = (uint32_t)n;
        o->via.array.ptr = items;
    }
    r->depth++;
    int rc = 0;
    for (uint64_t j = 0; j < need && rc == 0; j++) {
        r->pending = outer + need - j - 1;
        msgpack_object *slot =
            map ? (j & 1 ? &o->via.map.ptr[j / 2].val : &o->via.map.ptr[j / 2].key)
                : &o->via.array.ptr[j];
        rc = mp_read(r, slot);
    }
    r->depth--;
    r->pending = outer;
    return rc;
}

/* Take n bytes of body (a str, bin or ext), pointing into the input. */
static int mp_body(mp_reader_t *r, uint64_t n, const char **ptr, uint32_t *size)
{
    if (n > (uint64_t)(r->end - r->p)) return -HERR_TRUNCATED;
    *ptr = (const char *)r->p;
    *size = (uint32_t)n;
    r->p += n;
    return 0;
}

/* A float or an integer with head byte b (0xca..0xd3) and big-endian value v of h bytes. */
static inline void mp_number(msgpack_object *o, uint8_t b, uint64_t v, unsigned h)
{
    switch (b) {
    case 0xca: {
        uint32_t bits = (uint32_t)v;
        float f;
        memcpy(&f, &bits, sizeof f);
        o->type = MSGPACK_OBJECT_FLOAT32;
        o->via.f64 = f;
        break;
    }
    case 0xcb:
        o->type = MSGPACK_OBJECT_FLOAT64;
        memcpy(&o->via.f64, &v, sizeof v);
        break;
    case 0xcc:
    case 0xcd:
    case 0xce:
    case 0xcf:
        o->type = MSGPACK_OBJECT_POSITIVE_INTEGER;
        o->via.u64 = v;
        break;
    case 0xd0:
    case 0xd1:
    case 0xd2:
    case 0xd3: {
        /* sign-extend the h-byte value; non-negative ones are positive, as in msgpack-c */
        int64_t i = (int64_t)(v << (64 - 8 * h)) >> (64 - 8 * h);
        o->type = i < 0 ? MSGPACK_OBJECT_NEGATIVE_INTEGER : MSGPACK_OBJECT_POSITIVE_INTEGER;
        o->via.i64 = i;
        break;
    }
    }
}

static int mp_read(mp_reader_t *r, msgpack_object *o)
{
    if (r->p >= r->end) return -HERR_TRUNCATED;
    uint8_t b = *r->p++;
    if (b <= 0x7f) {
        o->type = MSGPACK_OBJECT_POSITIVE_INTEGER;
        o->via.u64 = b;
        return 0;
    }
    if (b >= 0xe0) {
        o->type = MSGPACK_OBJECT_NEGATIVE_INTEGER;
        o->via.i64 = (int8_t)b;
        return 0;
    }
    if (b <= 0x8f) return mp_container(r, o, b & 0x0fu, true);
    if (b <= 0x9f) return mp_container(r, o, b & 0x0fu, false);
    if (b <= 0xbf) {
        o->type = MSGPACK_OBJECT_STR;
        return mp_body(r, b & 0x1fu, &o->via.str.ptr, &o->via.str.size);
    }
    unsigned h = codec_mp_head[b - 0xc0]; /* the fixed-size head after the tag */
    if ((size_t)(r->end - r->p) < h) return -HERR_TRUNCATED;
    const uint8_t *q = r->p;
    r->p += h;
    uint64_t v = mp_be(q, h);
    switch (b) {
    case 0xc0:
        o->type = MSGPACK_OBJECT_NIL;
        return 0;
    case 0xc2:
    case 0xc3:
        o->type = MSGPACK_OBJECT_BOOLEAN;
        o->via.boolean = b == 0xc3;
        return 0;
    case 0xc4:
    case 0xc5:
    case 0xc6:
        o->type = MSGPACK_OBJECT_BIN;
        return mp_body(r, v, &o->via.bin.ptr, &o->via.bin.size);
    case 0xc7:
    case 0xc8:
    case 0xc9:
        o->type = MSGPACK_OBJECT_EXT;
        o->via.ext.type = (int8_t)q[h - 1];
        return mp_body(r, v >> 8, &o->via.ext.ptr, &o->via.ext.size);
    case 0xca:
    case 0xcb:
    case 0xcc:
    case 0xcd:
    case 0xce:
    case 0xcf:
    case 0xd0:
    case 0xd1:
    case 0xd2:
    case 0xd3:
        mp_number(o, b, v, h);
        return 0;
    case 0xd4:
    case 0xd5:
    case 0xd6:
    case 0xd7:
    case 0xd8:
        o->type = MSGPACK_OBJECT_EXT;
        o->via.ext.type = (int8_t)v;
        return mp_body(r, 1u << (b - 0xd4), &o->via.ext.ptr, &o->via.ext.size);
    case 0xd9:
    case 0xda:
    case 0xdb:
        o->type = MSGPACK_OBJECT_STR;
        return mp_body(r, v, &o->via.str.ptr, &o->via.str.size);
    case 0xdc:
    case 0xdd:
        return mp_container(r, o, v, false);
    case 0xde:
    case 0xdf:
        return mp_container(r, o, v, true);
    default:
        return -HERR_MALFORMED; /* 0xc1: never used */
    }
}

int codec_unpack(const uint8_t *buf, size_t len, size_t max_bytes, msgpack_unpacked *out,
                 herald_error_t *err)
{
    memset(&out->data, 0, sizeof out->data);
    if (len > max_bytes)
        return herr_set(err, HERR_TOO_LARGE, "", "input is %zu bytes, limit %zu", len, max_bytes);
    /* Reuse the caller's zone (cleared, keeping its chunk): a decode does not allocate. */
    if (!out->zone) {
        out->zone = msgpack_zone_new(MSGPACK_ZONE_CHUNK_SIZE);
        if (!out->zone) return herr_set(err, HERR_INTERNAL, "", "out of memory");
    } else {
        msgpack_zone_clear(out->zone);
    }
    mp_reader_t r = {.p = buf, .end = buf + len, .zone = out->zone};
    int rc = mp_read(&r, &out->data);
    if (rc == 0 && r.p < r.end)
        return herr_set(err, HERR_TRAILING, "", "%zu bytes after the msgpack value",
                        (size_t)(r.end - r.p));
    if (rc == 0) return 0;
    memset(&out->data, 0, sizeof out->data);
    if (rc == -HERR_TRUNCATED)
        return herr_set(err, HERR_TRUNCATED, "", "input ends inside a msgpack value");
    if (rc == -HERR_MALFORMED)
        return herr_set(err, HERR_MALFORMED, "", "invalid msgpack (or nested over %d deep)",
                        MSGPACK_EMBED_STACK_SIZE);
    return herr_set(err, HERR_INTERNAL, "", "out of memory");
}
