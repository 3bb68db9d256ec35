/* mpread.h - readers of well-formed msgpack bytes in place (tags, lengths, strings, maps,
 * integers), shared by mpread.c (frame checks and value readers, codec.h) and codec_scan.c
 * (the notification scan). Private to common/wire. */
#ifndef HERALD_MPREAD_H
#define HERALD_MPREAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "codec_field.h"

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

/* The signed value of an int tag 0xd0..0xd3 with h head bytes v. */
static inline int64_t mp_sext(uint64_t v, unsigned h)
{
    return (int64_t)(v << (64 - 8 * h)) >> (64 - 8 * h);
}

/* codec_span with the common one-byte-head cases (fixint, fixstr) inline. */
static inline size_t mp_span(const uint8_t *q)
{
    uint8_t b = q[0];
    if (b <= 0x7f || b >= 0xe0) return 1;
    if (b >= 0xa0 && b <= 0xbf) return 1u + (b & 0x1fu);
    return codec_span(q);
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

/* The msgpack-c object type codec_unpack gives the value at q. */
static inline msgpack_object_type mp_type(const uint8_t *q)
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
static inline codec_int_kind_t mp_uint(const uint8_t *q, uint64_t *v)
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

#endif
