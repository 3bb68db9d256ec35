/* codec.c - strict msgpack decoding and the canonical encoding of notifications. */
#include "codec.h"

#include <string.h>

#include <msgpack/unpack_define.h> /* MSGPACK_EMBED_STACK_SIZE: msgpack-c's nesting limit */

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
    /* The fixed-size head after the tag: a length, count or the value itself. */
    static const uint8_t head[32] = {
        [0x04] = 1, [0x05] = 2, [0x06] = 4,                         /* bin */
        [0x07] = 2, [0x08] = 3, [0x09] = 5,                         /* ext: length + type */
        [0x0a] = 4, [0x0b] = 8,                                     /* float */
        [0x0c] = 1, [0x0d] = 2, [0x0e] = 4, [0x0f] = 8,             /* uint */
        [0x10] = 1, [0x11] = 2, [0x12] = 4, [0x13] = 8,             /* int */
        [0x14] = 1, [0x15] = 1, [0x16] = 1, [0x17] = 1, [0x18] = 1, /* fixext: type */
        [0x19] = 1, [0x1a] = 2, [0x1b] = 4,                         /* str */
        [0x1c] = 2, [0x1d] = 4, [0x1e] = 2, [0x1f] = 4,             /* array, map */
    };
    unsigned h = head[b - 0xc0];
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
    case 0xca: {
        uint32_t bits = (uint32_t)v;
        float f;
        memcpy(&f, &bits, sizeof f);
        o->type = MSGPACK_OBJECT_FLOAT32;
        o->via.f64 = f;
        return 0;
    }
    case 0xcb:
        o->type = MSGPACK_OBJECT_FLOAT64;
        memcpy(&o->via.f64, &v, sizeof v);
        return 0;
    case 0xcc:
    case 0xcd:
    case 0xce:
    case 0xcf:
        o->type = MSGPACK_OBJECT_POSITIVE_INTEGER;
        o->via.u64 = v;
        return 0;
    case 0xd0:
    case 0xd1:
    case 0xd2:
    case 0xd3: {
        /* sign-extend the h-byte value; non-negative ones are positive, as in msgpack-c */
        int64_t i = (int64_t)(v << (64 - 8 * h)) >> (64 - 8 * h);
        o->type = i < 0 ? MSGPACK_OBJECT_NEGATIVE_INTEGER : MSGPACK_OBJECT_POSITIVE_INTEGER;
        o->via.i64 = i;
        return 0;
    }
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

enum {
    F_TYPE = 0,
    F_SEQ,
    F_MESSAGE_ID,
    F_MESSAGE_TYPE,
    F_CHANNEL,
    F_USER_ID,
    F_PRIORITY,
    F_TIMESTAMP,
    F_SOURCE,
    F_PAYLOAD,
    F__COUNT
};

static const char *const field_names[F__COUNT] = {
    "type",    "seq",      "message_id", "message_type", "channel",
    "user_id", "priority", "timestamp",  "source",       "payload",
};

static int field_index(const char *k, uint32_t n)
{
    int i;
    switch (n) {
    case 3:
        i = F_SEQ;
        break;
    case 4:
        i = F_TYPE;
        break;
    case 6:
        i = F_SOURCE;
        break;
    case 7:
        i = k[0] == 'c' ? F_CHANNEL : k[0] == 'u' ? F_USER_ID : F_PAYLOAD;
        break;
    case 8:
        i = F_PRIORITY;
        break;
    case 9:
        i = F_TIMESTAMP;
        break;
    case 10:
        i = F_MESSAGE_ID;
        break;
    case 12:
        i = F_MESSAGE_TYPE;
        break;
    default:
        return -1;
    }
    return memcmp(k, field_names[i], n) == 0 ? i : -1;
}

/* Copy a string field into dst (cap bytes + NUL). Ids must be non-empty; no field may
 * hold a NUL byte, since every consumer treats them as C strings. */
static int str_field(const msgpack_object *v, int f, char *dst, size_t cap, bool nonempty,
                     herald_error_t *err)
{
    const char *name = field_names[f];
    if (v->type != MSGPACK_OBJECT_STR)
        return herr_set(err, HERR_BAD_KIND, name, "%s must be a string", name);
    size_t n = v->via.str.size;
    if (n > cap)
        return herr_set(err, HERR_TOO_LONG, name, "%s is %zu bytes, limit %zu", name, n, cap);
    if (nonempty && n == 0) return herr_set(err, HERR_BAD_VALUE, name, "%s is empty", name);
    if (memchr(v->via.str.ptr, '\0', n))
        return herr_set(err, HERR_BAD_VALUE, name, "%s contains a NUL byte", name);
    memcpy(dst, v->via.str.ptr, n);
    dst[n] = '\0';
    return 0;
}

static int uint_field(const msgpack_object *v, int f, uint64_t max, uint64_t *out,
                      herald_error_t *err)
{
    const char *name = field_names[f];
    if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER ||
        (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER && v->via.u64 > max))
        return herr_set(err, HERR_BAD_VALUE, name, "%s must be in 0..%llu", name,
                        (unsigned long long)max);
    if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return herr_set(err, HERR_BAD_KIND, name, "%s must be an integer", name);
    *out = v->via.u64;
    return 0;
}

static int missing(int f, herald_error_t *err)
{
    return herr_set(err, HERR_MISSING_FIELD, field_names[f], "%s is required", field_names[f]);
}

/* Both entry points share this: a producer map (record=false: broker fields ignored,
 * defaults applied, payload schema checked) or a canonical record (record=true: every
 * field present, type/channel consistent, seq read). */
static int notif_parse(const msgpack_object *obj, notif_t *n, bool record, herald_error_t *err)
{
    if (obj->type != MSGPACK_OBJECT_MAP)
        return herr_set(err, HERR_NOT_MAP, "", "a notification must be a map");
    const msgpack_object *f[F__COUNT] = {0};
    for (uint32_t i = 0; i < obj->via.map.size; i++) {
        const msgpack_object_kv *kv = &obj->via.map.ptr[i];
        if (kv->key.type != MSGPACK_OBJECT_STR)
            return herr_set(err, HERR_BAD_KIND, "", "notification keys must be strings");
        const char *k = kv->key.via.str.ptr;
        uint32_t kn = kv->key.via.str.size;
        int idx = field_index(k, kn);
        if (idx < 0) {
            char name[HERALD_MAX_ID_LEN + 1];
            int shown = kn > HERALD_MAX_ID_LEN ? HERALD_MAX_ID_LEN : (int)kn;
            snprintf(name, sizeof name, "%.*s", shown, k);
            return herr_set(err, HERR_BAD_VALUE, name, "unknown field \"%s\"", name);
        }
        if (f[idx])
            return herr_set(err, HERR_BAD_VALUE, field_names[idx], "duplicate field %s",
                            field_names[idx]);
        f[idx] = &kv->val;
    }

    int rc;
    const msgpack_object *v = f[F_MESSAGE_TYPE];
    if (!v) return missing(F_MESSAGE_TYPE, err);
    if (v->type != MSGPACK_OBJECT_STR)
        return herr_set(err, HERR_BAD_KIND, "message_type", "message_type must be a string");
    n->type = model_type_find(v->via.str.ptr, v->via.str.size);
    if (!n->type) {
        int shown = v->via.str.size > HERALD_MAX_ID_LEN ? HERALD_MAX_ID_LEN : (int)v->via.str.size;
        return herr_set(err, HERR_UNKNOWN_TYPE, "message_type", "unknown message_type \"%.*s\"",
                        shown, v->via.str.ptr);
    }

    if (!f[F_USER_ID]) return missing(F_USER_ID, err);
    rc = str_field(f[F_USER_ID], F_USER_ID, n->user_id, HERALD_MAX_ID_LEN, true, err);
    if (rc) return rc;

    if (f[F_MESSAGE_ID]) {
        rc = str_field(f[F_MESSAGE_ID], F_MESSAGE_ID, n->message_id, HERALD_MAX_ID_LEN, true, err);
        if (rc) return rc;
    } else if (record) {
        return missing(F_MESSAGE_ID, err);
    } else {
        model_gen_message_id(n->message_id);
    }

    uint64_t u = 0;
    n->has_priority = f[F_PRIORITY] != NULL;
    if (f[F_PRIORITY]) {
        rc = uint_field(f[F_PRIORITY], F_PRIORITY, HERALD_PRIORITIES - 1, &u, err);
        if (rc) return rc;
        n->priority = (uint8_t)u;
    } else if (record) {
        return missing(F_PRIORITY, err);
    } else {
        n->priority = n->type->priority;
    }

    n->has_timestamp = f[F_TIMESTAMP] != NULL;
    n->timestamp = 0;
    if (f[F_TIMESTAMP]) {
        rc = uint_field(f[F_TIMESTAMP], F_TIMESTAMP, UINT64_MAX, &n->timestamp, err);
        if (rc) return rc;
    } else if (record) {
        return missing(F_TIMESTAMP, err);
    }

    n->source[0] = '\0';
    if (f[F_SOURCE]) {
        rc = str_field(f[F_SOURCE], F_SOURCE, n->source, HERALD_MAX_SOURCE_LEN, false, err);
        if (rc) return rc;
    } else if (record) {
        return missing(F_SOURCE, err);
    }

    if (f[F_PAYLOAD]) {
        if (f[F_PAYLOAD]->type != MSGPACK_OBJECT_MAP)
            return herr_set(err, HERR_BAD_KIND, "payload", "payload must be a map");
        n->payload = *f[F_PAYLOAD];
    } else if (record) {
        return missing(F_PAYLOAD, err);
    } else {
        memset(&n->payload, 0, sizeof n->payload);
        n->payload.type = MSGPACK_OBJECT_MAP;
    }

    n->seq = 0;
    if (!record) return model_validate_payload(n->type, &n->payload, err);

    v = f[F_TYPE];
    if (!v) return missing(F_TYPE, err);
    if (v->type != MSGPACK_OBJECT_STR || v->via.str.size != 12 ||
        memcmp(v->via.str.ptr, "notification", 12) != 0)
        return herr_set(err, HERR_BAD_VALUE, "type", "type must be \"notification\"");
    if (!f[F_SEQ]) return missing(F_SEQ, err);
    rc = uint_field(f[F_SEQ], F_SEQ, UINT64_MAX, &n->seq, err);
    if (rc) return rc;
    v = f[F_CHANNEL];
    if (!v) return missing(F_CHANNEL, err);
    const char *ch = model_channel_name(n->type->channel);
    if (v->type != MSGPACK_OBJECT_STR || v->via.str.size != strlen(ch) ||
        memcmp(v->via.str.ptr, ch, v->via.str.size) != 0)
        return herr_set(err, HERR_BAD_VALUE, "channel", "channel must be \"%s\" for %s", ch,
                        n->type->name);
    return 0;
}

int codec_notif_from_object(const msgpack_object *obj, notif_t *n, herald_error_t *err)
{
    return notif_parse(obj, n, false, err);
}

int codec_decode(const uint8_t *buf, size_t len, msgpack_unpacked *scratch, notif_t *n,
                 herald_error_t *err)
{
    int rc = codec_unpack(buf, len, HERALD_MAX_NOTIF_BYTES, scratch, err);
    if (rc) return rc;
    return notif_parse(&scratch->data, n, true, err);
}

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

long codec_encode(const notif_t *n, msgpack_sbuffer *sb, size_t *seq_off)
{
    static const char head[] = "\x8a\xa4type\xacnotification\xa3seq\xcf";
    _Static_assert(sizeof head - 1 == CODEC_SEQ_OFFSET, "canonical seq offset");
    size_t start = sb->size;
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    uint8_t u64[9] = {0xcf};
    int bad = 0;

    bad |= msgpack_sbuffer_write(sb, head, sizeof head - 1);
    put_be64(u64 + 1, n->seq);
    bad |= msgpack_sbuffer_write(sb, (const char *)u64 + 1, 8);
    bad |= msgpack_sbuffer_write(sb, "\xaamessage_id", 11);
    bad |= msgpack_pack_str_with_body(&pk, n->message_id, strlen(n->message_id));
    bad |= msgpack_sbuffer_write(sb, "\xacmessage_type", 13);
    bad |= msgpack_pack_str_with_body(&pk, n->type->name, strlen(n->type->name));
    const char *ch = model_channel_name(n->type->channel);
    bad |= msgpack_sbuffer_write(sb,
                                 "\xa7"
                                 "channel",
                                 8);
    bad |= msgpack_pack_str_with_body(&pk, ch, strlen(ch));
    bad |= msgpack_sbuffer_write(sb, "\xa7user_id", 8);
    bad |= msgpack_pack_str_with_body(&pk, n->user_id, strlen(n->user_id));
    bad |= msgpack_sbuffer_write(sb, "\xa8priority", 9);
    uint8_t prio = n->priority & 0x7f; /* positive fixint */
    bad |= msgpack_sbuffer_write(sb, (const char *)&prio, 1);
    bad |= msgpack_sbuffer_write(sb, "\xa9timestamp", 10);
    put_be64(u64 + 1, n->timestamp);
    bad |= msgpack_sbuffer_write(sb, (const char *)u64, 9);
    bad |= msgpack_sbuffer_write(sb, "\xa6source", 7);
    bad |= msgpack_pack_str_with_body(&pk, n->source, strlen(n->source));
    bad |= msgpack_sbuffer_write(sb, "\xa7payload", 8);
    if (n->payload.type == MSGPACK_OBJECT_MAP)
        bad |= msgpack_pack_object(&pk, n->payload);
    else
        bad |= msgpack_pack_map(&pk, 0);

    size_t len = sb->size - start;
    if (bad || len > HERALD_MAX_NOTIF_BYTES) {
        sb->size = start;
        return bad ? -HERR_INTERNAL : -HERR_TOO_LARGE;
    }
    if (seq_off) *seq_off = CODEC_SEQ_OFFSET;
    return (long)len;
}
