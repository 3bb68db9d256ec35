/* mpread.c - msgpack checked and stepped over in place: whole frames validated once
 * (codec_check), values spanned and read without an object tree (codec.h: codec_skip ..
 * codec_uint_at). What the broker's ingest and libherald's response reader share. */
#include <string.h>

#include <msgpack/unpack_define.h> /* MSGPACK_EMBED_STACK_SIZE: the reader's nesting limit */

#include "mpread.h"

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
