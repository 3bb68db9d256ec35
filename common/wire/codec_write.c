/* codec_write.c - codec_encode: the canonical notification layout of codec.h. */
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "codec_field.h"

/* The encoder writes into the sbuffer directly, with one capacity check per value (one for
 * all fields before the payload), instead of a callback per fragment through msgpack_packer. Encodings are the smallest, exactly as
 * msgpack_pack_object chooses them (tested), so payload bytes come out as msgpack-c would
 * write them. */
static bool sb_reserve(msgpack_sbuffer *sb, size_t n)
{
    if (sb->alloc - sb->size >= n) return true;
    size_t cap = sb->alloc ? sb->alloc : MSGPACK_SBUFFER_INIT_SIZE;
    while (cap - sb->size < n)
        cap *= 2;
    char *p = realloc(sb->data, cap);
    if (!p) return false;
    sb->data = p;
    sb->alloc = cap;
    return true;
}

/* Write the low `bytes` bytes of v big-endian at w; return the new end. */
static uint8_t *put_be(uint8_t *w, uint64_t v, unsigned bytes)
{
    for (unsigned i = bytes; i > 0; i--)
        *w++ = (uint8_t)(v >> (8 * (i - 1)));
    return w;
}

/* A tag byte, then put_be. */
static uint8_t *put_tag(uint8_t *w, uint8_t tag, uint64_t v, unsigned bytes)
{
    *w++ = tag;
    return put_be(w, v, bytes);
}

/* A length header: the fix form (fix | n) up to fix_max when fix != 0, else the 8-bit form
 * t8 (when t8 != 0: arrays and maps have none), 16-bit t16 or 32-bit t32. */
static uint8_t *put_len(uint8_t *w, uint8_t fix, unsigned fix_max, const uint8_t t[3], uint64_t n)
{
    if (fix && n <= fix_max) return put_tag(w, (uint8_t)(fix | n), 0, 0);
    if (t[0] && n < 256) return put_tag(w, t[0], n, 1);
    if (n < 65536) return put_tag(w, t[1], n, 2);
    return put_tag(w, t[2], n, 4);
}

static const uint8_t T_STR[3] = {0xd9, 0xda, 0xdb}, T_BIN[3] = {0xc4, 0xc5, 0xc6},
                     T_EXT[3] = {0xc7, 0xc8, 0xc9}, T_ARRAY[3] = {0, 0xdc, 0xdd},
                     T_MAP[3] = {0, 0xde, 0xdf};

/* Copy a string literal (a pre-encoded key) at w; constant sizes compile to plain moves. */
#define PUT_LIT(w, s) (memcpy(w, s, sizeof s - 1), (w) + (sizeof s - 1))

static uint8_t *put_strw(uint8_t *w, const char *s, size_t n)
{
    w = put_len(w, 0xa0, 31, T_STR, n);
    memcpy(w, s, n);
    return w + n;
}

static uint8_t *put_uint(uint8_t *w, uint64_t v)
{
    if (v < 128) return put_tag(w, (uint8_t)v, 0, 0);
    if (v < 256) return put_tag(w, 0xcc, v, 1);
    if (v < 65536) return put_tag(w, 0xcd, v, 2);
    if (v <= UINT32_MAX) return put_tag(w, 0xce, v, 4);
    return put_tag(w, 0xcf, v, 8);
}

static uint8_t *put_int(uint8_t *w, int64_t v)
{
    if (v >= -32) return put_tag(w, (uint8_t)v, 0, 0);
    if (v >= INT8_MIN) return put_tag(w, 0xd0, (uint64_t)v, 1);
    if (v >= INT16_MIN) return put_tag(w, 0xd1, (uint64_t)v, 2);
    if (v >= INT32_MIN) return put_tag(w, 0xd2, (uint64_t)v, 4);
    return put_tag(w, 0xd3, (uint64_t)v, 8);
}

static int put_object(msgpack_sbuffer *sb, const msgpack_object *o)
{
    if (!sb_reserve(sb, 10)) return -1; /* any header or scalar */
    uint8_t *w = (uint8_t *)sb->data + sb->size, *w0 = w;
    uint64_t bits;
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        *w++ = 0xc0;
        break;
    case MSGPACK_OBJECT_BOOLEAN:
        *w++ = o->via.boolean ? 0xc3 : 0xc2;
        break;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        w = put_uint(w, o->via.u64);
        break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        w = put_int(w, o->via.i64);
        break;
    case MSGPACK_OBJECT_FLOAT32: {
        float f = (float)o->via.f64;
        uint32_t b32;
        memcpy(&b32, &f, sizeof b32);
        w = put_tag(w, 0xca, b32, 4);
        break;
    }
    case MSGPACK_OBJECT_FLOAT64:
        memcpy(&bits, &o->via.f64, sizeof bits);
        w = put_tag(w, 0xcb, bits, 8);
        break;
    case MSGPACK_OBJECT_STR:
        if (!sb_reserve(sb, o->via.str.size + 5)) return -1;
        w = put_strw((uint8_t *)sb->data + sb->size, o->via.str.ptr, o->via.str.size);
        sb->size = (size_t)((char *)w - sb->data);
        return 0;
    case MSGPACK_OBJECT_BIN:
    case MSGPACK_OBJECT_EXT: {
        uint32_t n = o->type == MSGPACK_OBJECT_BIN ? o->via.bin.size : o->via.ext.size;
        const char *p = o->type == MSGPACK_OBJECT_BIN ? o->via.bin.ptr : o->via.ext.ptr;
        if (o->type == MSGPACK_OBJECT_BIN) {
            w = put_len(w, 0, 0, T_BIN, n);
        } else {
            static const uint8_t fixext[17] = {
                [1] = 0xd4, [2] = 0xd5, [4] = 0xd6, [8] = 0xd7, [16] = 0xd8};
            if (n <= 16 && fixext[n])
                w = put_tag(w, fixext[n], 0, 0);
            else
                w = put_len(w, 0, 0, T_EXT, n);
            *w++ = (uint8_t)o->via.ext.type;
        }
        sb->size += (size_t)(w - w0);
        if (!sb_reserve(sb, n)) return -1;
        memcpy(sb->data + sb->size, p, n);
        sb->size += n;
        return 0;
    }
    case MSGPACK_OBJECT_ARRAY:
        w = put_len(w, 0x90, 15, T_ARRAY, o->via.array.size);
        sb->size += (size_t)(w - w0);
        for (uint32_t i = 0; i < o->via.array.size; i++)
            if (put_object(sb, &o->via.array.ptr[i])) return -1;
        return 0;
    case MSGPACK_OBJECT_MAP:
        w = put_len(w, 0x80, 15, T_MAP, o->via.map.size);
        sb->size += (size_t)(w - w0);
        for (uint32_t i = 0; i < o->via.map.size; i++)
            if (put_object(sb, &o->via.map.ptr[i].key) || put_object(sb, &o->via.map.ptr[i].val))
                return -1;
        return 0;
    default:
        *w++ = 0xc0;
        break; /* no other kinds exist */
    }
    sb->size += (size_t)(w - w0);
    return 0;
}

/* String lengths of the canonical fields before the payload. */
typedef struct {
    const char *ch;
    size_t id, type, ch_len, user, src;
} head_lens_t;

/* Room the fields before the payload take at most: keys and fixed fields are under 128
 * bytes, each of the five strings adds at most a 5-byte header. */
static size_t head_room(const head_lens_t *l)
{
    return 128 + 5 * 5 + l->id + l->type + l->ch_len + l->user + l->src;
}

/* Write the map header and every field before the payload's value (its key included). */
static uint8_t *put_head(uint8_t *w, const notif_t *n, const head_lens_t *l)
{
    static const char head[] = "\x8a\xa4type\xacnotification\xa3seq\xcf";
    _Static_assert(sizeof head - 1 == CODEC_SEQ_OFFSET, "canonical seq offset");
    w = PUT_LIT(w, head);
    w = put_be(w, n->seq, 8); /* head ends with the 0xcf tag */
    w = PUT_LIT(w, "\xaamessage_id");
    w = put_strw(w, n->message_id, l->id);
    w = PUT_LIT(w, "\xacmessage_type");
    w = put_strw(w, n->type->name, l->type);
    w = PUT_LIT(w, "\xa7"
                   "channel");
    w = put_strw(w, l->ch, l->ch_len);
    w = PUT_LIT(w, "\xa7user_id");
    w = put_strw(w, n->user_id, l->user);
    w = PUT_LIT(w, "\xa8priority");
    *w++ = n->priority & 0x7f; /* positive fixint */
    w = PUT_LIT(w, "\xa9timestamp");
    w = put_tag(w, 0xcf, n->timestamp, 8);
    w = PUT_LIT(w, "\xa6source");
    w = put_strw(w, n->source, l->src);
    return PUT_LIT(w, "\xa7payload");
}

long codec_encode(const notif_t *n, msgpack_sbuffer *sb, size_t *seq_off)
{
    const char *ch = model_channel_name(n->type->channel);
    head_lens_t l = {ch,         strlen(n->message_id), strlen(n->type->name),
                     strlen(ch), strlen(n->user_id),    strlen(n->source)};
    size_t start = sb->size;
    /* Everything before the payload in one reservation. */
    if (!sb_reserve(sb, head_room(&l))) return -HERR_INTERNAL;
    uint8_t *w = put_head((uint8_t *)sb->data + start, n, &l);
    sb->size = (size_t)((char *)w - sb->data);
    int bad = 0;
    if (n->payload.type == MSGPACK_OBJECT_MAP)
        bad = put_object(sb, &n->payload);
    else if (sb_reserve(sb, 1))
        sb->data[sb->size++] = (char)0x80;
    else
        bad = -1;

    size_t len = sb->size - start;
    if (bad || len > HERALD_MAX_NOTIF_BYTES) {
        sb->size = start;
        return bad ? -HERR_INTERNAL : -HERR_TOO_LARGE;
    }
    if (seq_off) *seq_off = CODEC_SEQ_OFFSET;
    return (long)len;
}

/* put_canonical for one value whose head byte b is 0xc0 or above (*pp just past b): write
 * its smallest head, move *pp past the input head and return the new end. *body gets how
 * many body bytes follow (str, bin, ext), *left grows by a container's values. */
static inline uint8_t *put_canonical_head(uint8_t *w, uint8_t b, const uint8_t **pp, uint64_t *left,
                                          uint64_t *body)
{
    const uint8_t *p = *pp;
    unsigned h = codec_mp_head[b - 0xc0];
    uint64_t v = 0;
    for (unsigned i = 0; i < h; i++)
        v = (v << 8) | p[i];
    p += h;
    *pp = p;
    *body = 0;
    switch (b) {
    case 0xca: { /* via.f64 round trip: a signalling NaN comes back quiet */
        uint32_t bits = (uint32_t)v;
        if ((bits & 0x7f800000u) == 0x7f800000u && (bits & 0x007fffffu)) bits |= 0x00400000u;
        w = put_tag(w, 0xca, bits, 4);
        break;
    }
    case 0xcb:
        w = put_tag(w, 0xcb, v, 8);
        break;
    case 0xcc:
    case 0xcd:
    case 0xce:
    case 0xcf:
        w = put_uint(w, v);
        break;
    case 0xd0:
    case 0xd1:
    case 0xd2:
    case 0xd3: {
        int64_t i = (int64_t)(v << (64 - 8 * h)) >> (64 - 8 * h);
        w = i < 0 ? put_int(w, i) : put_uint(w, (uint64_t)i);
        break;
    }
    case 0xc4:
    case 0xc5:
    case 0xc6:
        *body = v;
        w = put_len(w, 0, 0, T_BIN, v);
        break;
    case 0xc7:
    case 0xc8:
    case 0xc9:
    case 0xd4:
    case 0xd5:
    case 0xd6:
    case 0xd7:
    case 0xd8: {
        static const uint8_t fixext[17] = {
            [1] = 0xd4, [2] = 0xd5, [4] = 0xd6, [8] = 0xd7, [16] = 0xd8};
        *body = b >= 0xd4 ? 1u << (b - 0xd4) : v >> 8;
        if (*body <= 16 && fixext[*body])
            *w++ = fixext[*body];
        else
            w = put_len(w, 0, 0, T_EXT, *body);
        *w++ = p[-1]; /* the type byte ends the head */
        break;
    }
    case 0xd9:
    case 0xda:
    case 0xdb:
        *body = v;
        w = put_len(w, 0xa0, 31, T_STR, v);
        break;
    case 0xdc:
    case 0xdd:
        w = put_len(w, 0x90, 15, T_ARRAY, v);
        *left += v;
        break;
    case 0xde:
    case 0xdf:
        w = put_len(w, 0x80, 15, T_MAP, v);
        *left += 2 * v;
        break;
    default: /* nil, false, true */
        *w++ = b;
        break;
    }
    return w;
}

/* Re-emit the well-formed msgpack value at p in the smallest encodings: the bytes put_object
 * writes for the object codec_unpack builds from it. A flat walk (`left` counts the values
 * still to copy), since output order is input order. Returns the new end, or NULL if the
 * output would pass lim (checked once per value, with room for any header). */
static uint8_t *put_canonical(uint8_t *w, const uint8_t *p, const uint8_t *lim)
{
    uint64_t left = 1;
    do {
        left--;
        if (lim - w < 10) return NULL;
        uint8_t b = *p++;
        if (b <= 0x7f || b >= 0xe0) {
            *w++ = b;
            continue;
        }
        if (b <= 0x9f) { /* fixmap, fixarray */
            *w++ = b;
            left += b <= 0x8f ? 2u * (b & 0x0fu) : b & 0x0fu;
            continue;
        }
        if (b <= 0xbf) { /* fixstr */
            size_t n = b & 0x1fu;
            if ((size_t)(lim - w) < n + 1) return NULL;
            *w++ = b;
            memcpy(w, p, n);
            w += n;
            p += n;
            continue;
        }
        uint64_t body;
        w = put_canonical_head(w, b, &p, &left, &body);
        if (body) {
            if ((uint64_t)(lim - w) < body) return NULL;
            memcpy(w, p, body);
            w += body;
            p += body;
        }
    } while (left);
    return w;
}

long codec_encode_to(const notif_t *n, uint8_t *out, size_t cap)
{
    if (!n->payload_raw) return -HERR_INTERNAL;
    const char *ch = model_channel_name(n->type->channel);
    head_lens_t l = {ch,         n->message_id_len, n->type->name_len,
                     strlen(ch), n->user_id_len,    n->source_len};
    /* Everything before the payload, as in codec_encode. */
    if (cap < head_room(&l)) return -HERR_TOO_LARGE;
    uint8_t *w = put_head(out, n, &l);
    w = put_canonical(w, n->payload_raw, out + cap);
    if (!w || w - out > HERALD_MAX_NOTIF_BYTES) return -HERR_TOO_LARGE;
    return (long)(w - out);
}

/* Bytes put_strw writes for a string of n bytes. */
static size_t str_size(size_t n)
{
    return (n <= 31 ? 1 : n < 256 ? 2 : n < 65536 ? 3 : 5) + n;
}

void codec_encode_parts(const notif_t *n, const uint8_t *rec, size_t len, codec_parts_t *out)
{
    /* put_head's layout, in byte counts: keys, then each value */
    size_t type_len = n->type->name_len, user_len = n->user_id_len;
    size_t off = CODEC_SEQ_OFFSET + 8 + 11 + str_size(n->message_id_len) + 13;
    out->type = (const char *)rec + off + str_size(type_len) - type_len;
    out->type_len = (uint32_t)type_len;
    off += str_size(type_len) + 8;
    off += str_size(rec[off] & 0x1fu) + 8; /* the channel: a fixstr, its length in its header */
    out->user = (const char *)rec + off + str_size(user_len) - user_len;
    out->user_len = (uint32_t)user_len;
    off += str_size(user_len) + 10 + 19 + 7 + str_size(n->source_len) + 8;
    out->payload = rec + off;
    out->payload_len = len - off;
}

/* The key bytes before each value of the canonical head, as put_head writes them. */
static const uint8_t *skip_key(const uint8_t *p, const uint8_t *end, const char *key, size_t n)
{
    if ((size_t)(end - p) < n || memcmp(p, key, n)) return NULL;
    return p + n;
}

/* A string value at p within end: its bytes in s and n; returns the byte after it. */
static const uint8_t *take_str(const uint8_t *p, const uint8_t *end, const char **s, uint32_t *n)
{
    if (p >= end) return NULL;
    size_t hdr = (*p & 0xe0) == 0xa0 ? 1 : *p == 0xd9 ? 2 : *p == 0xda ? 3 : 0;
    if (!hdr || (size_t)(end - p) < hdr || !codec_str_at(p, s, n)) return NULL;
    if ((size_t)(end - p) - hdr < *n) return NULL;
    return p + hdr + *n;
}

int codec_canonical_parts(const uint8_t *rec, size_t len, codec_parts_t *out)
{
    static const char head[] = "\x8a\xa4type\xacnotification\xa3seq\xcf";
    const uint8_t *p = rec, *end = rec + len;
    const char *skip;
    uint32_t skip_len;
    if (len < CODEC_SEQ_OFFSET + 8 || memcmp(rec, head, CODEC_SEQ_OFFSET)) return -HERR_MALFORMED;
    p += CODEC_SEQ_OFFSET + 8;
#define KEY(lit)  (p = p ? skip_key(p, end, lit, sizeof lit - 1) : NULL)
#define STR(s, n) (p = p ? take_str(p, end, s, n) : NULL)
    KEY("\xaamessage_id");
    STR(&skip, &skip_len);
    KEY("\xacmessage_type");
    STR(&out->type, &out->type_len);
    KEY("\xa7"
        "channel");
    STR(&skip, &skip_len);
    KEY("\xa7user_id");
    STR(&out->user, &out->user_len);
    KEY("\xa8priority");
    if (p) p = end - p >= 1 ? p + 1 : NULL;
    KEY("\xa9timestamp");
    if (p) p = end - p >= 9 && *p == 0xcf ? p + 9 : NULL;
    KEY("\xa6source");
    STR(&skip, &skip_len);
    KEY("\xa7payload");
#undef KEY
#undef STR
    if (!p || p >= end) return -HERR_MALFORMED;
    out->payload = p;
    out->payload_len = (size_t)(end - p);
    return 0;
}
