/* codec.c - strict validation of notification maps and canonical records (codec.h).
 * The msgpack reader is in codec_read.c, the canonical writer in codec_write.c. */
#include "codec.h"
#include "codec_field.h"

#include <stdio.h>
#include <string.h>

const char *const codec_field_names[F__COUNT] = {
    "type",    "seq",      "message_id", "message_type", "channel",
    "user_id", "priority", "timestamp",  "source",       "payload",
};

/* Each length has its own constant-size compares, which compile to a load and a compare. */
#define KEY_IS(lit) (memcmp(k, lit, sizeof lit - 1) == 0)

int codec_field_index(const char *k, uint32_t n)
{
    switch (n) {
    case 3:
        return KEY_IS("seq") ? F_SEQ : -1;
    case 4:
        return KEY_IS("type") ? F_TYPE : -1;
    case 6:
        return KEY_IS("source") ? F_SOURCE : -1;
    case 7:
        return KEY_IS("user_id")   ? F_USER_ID
               : KEY_IS("payload") ? F_PAYLOAD
               : KEY_IS("channel") ? F_CHANNEL
                                   : -1;
    case 8:
        return KEY_IS("priority") ? F_PRIORITY : -1;
    case 9:
        return KEY_IS("timestamp") ? F_TIMESTAMP : -1;
    case 10:
        return KEY_IS("message_id") ? F_MESSAGE_ID : -1;
    case 12:
        return KEY_IS("message_type") ? F_MESSAGE_TYPE : -1;
    default:
        return -1;
    }
}

int codec_field_unknown(const char *k, uint32_t n, herald_error_t *err)
{
    char name[HERALD_MAX_ID_LEN + 1];
    int shown = n > HERALD_MAX_ID_LEN ? HERALD_MAX_ID_LEN : (int)n;
    snprintf(name, sizeof name, "%.*s", shown, k);
    return herr_set(err, HERR_BAD_VALUE, name, "unknown field \"%s\"", name);
}

int codec_field_missing(int f, herald_error_t *err)
{
    return herr_set(err, HERR_MISSING_FIELD, codec_field_names[f], "%s is required",
                    codec_field_names[f]);
}

int codec_field_unknown_type(const char *s, uint32_t n, herald_error_t *err)
{
    int shown = n > HERALD_MAX_ID_LEN ? HERALD_MAX_ID_LEN : (int)n;
    return herr_set(err, HERR_UNKNOWN_TYPE, "message_type", "unknown message_type \"%.*s\"", shown,
                    s);
}

/* Copy n bytes from s to dst 8 at a time, and tell whether none of them is NUL (ids are
 * short: one pass with word loads instead of a memchr and a memcpy call). dst has room for
 * n + 1 bytes; what it holds when false is returned does not matter. */
static bool copy_no_nul(char *dst, const char *s, size_t n)
{
    const uint64_t lo = 0x0101010101010101ull, hi = 0x8080808080808080ull;
    uint64_t zero = 0, w;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        memcpy(&w, s + i, 8);
        zero |= (w - lo) & ~w & hi; /* nonzero iff some byte of w is 0 */
        memcpy(dst + i, &w, 8);
    }
    for (; i < n; i++) {
        dst[i] = s[i];
        zero |= s[i] == '\0';
    }
    return zero == 0;
}

int codec_field_str(bool is_str, const char *s, size_t n, int f, char *dst, size_t cap,
                    bool nonempty, herald_error_t *err)
{
    const char *name = codec_field_names[f];
    if (!is_str) return herr_set(err, HERR_BAD_KIND, name, "%s must be a string", name);
    if (n > cap)
        return herr_set(err, HERR_TOO_LONG, name, "%s is %zu bytes, limit %zu", name, n, cap);
    if (nonempty && n == 0) return herr_set(err, HERR_BAD_VALUE, name, "%s is empty", name);
    if (!copy_no_nul(dst, s, n))
        return herr_set(err, HERR_BAD_VALUE, name, "%s contains a NUL byte", name);
    dst[n] = '\0';
    return 0;
}

int codec_field_uint(codec_int_kind_t k, uint64_t v, int f, uint64_t max, uint64_t *out,
                     herald_error_t *err)
{
    const char *name = codec_field_names[f];
    if (k == INT_NEGATIVE || (k == INT_POSITIVE && v > max))
        return herr_set(err, HERR_BAD_VALUE, name, "%s must be in 0..%llu", name,
                        (unsigned long long)max);
    if (k != INT_POSITIVE) return herr_set(err, HERR_BAD_KIND, name, "%s must be an integer", name);
    *out = v;
    return 0;
}

static int str_field(const msgpack_object *v, int f, char *dst, size_t cap, bool nonempty,
                     herald_error_t *err)
{
    return codec_field_str(v->type == MSGPACK_OBJECT_STR, v->via.str.ptr, v->via.str.size, f, dst,
                           cap, nonempty, err);
}

static int uint_field(const msgpack_object *v, int f, uint64_t max, uint64_t *out,
                      herald_error_t *err)
{
    codec_int_kind_t k = v->type == MSGPACK_OBJECT_POSITIVE_INTEGER   ? INT_POSITIVE
                         : v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER ? INT_NEGATIVE
                                                                      : INT_NONE;
    return codec_field_uint(k, v->via.u64, f, max, out, err);
}

/* The map's keys: f[] gets each field's value. Returns 0 or the negative herr. */
static int notif_keys(const msgpack_object *obj, const msgpack_object **f, herald_error_t *err)
{
    if (obj->type != MSGPACK_OBJECT_MAP)
        return herr_set(err, HERR_NOT_MAP, "", "a notification must be a map");
    for (uint32_t i = 0; i < obj->via.map.size; i++) {
        const msgpack_object_kv *kv = &obj->via.map.ptr[i];
        if (kv->key.type != MSGPACK_OBJECT_STR)
            return herr_set(err, HERR_BAD_KIND, "", "notification keys must be strings");
        const char *k = kv->key.via.str.ptr;
        uint32_t kn = kv->key.via.str.size;
        int idx = codec_field_index(k, kn);
        if (idx < 0) return codec_field_unknown(k, kn, err);
        if (f[idx])
            return herr_set(err, HERR_BAD_VALUE, codec_field_names[idx], "duplicate field %s",
                            codec_field_names[idx]);
        f[idx] = &kv->val;
    }
    return 0;
}

/* message_type, user_id and message_id (generated for a producer map without one). */
static int notif_ids(const msgpack_object *const *f, notif_t *n, bool record, herald_error_t *err)
{
    const msgpack_object *v = f[F_MESSAGE_TYPE];
    if (!v) return codec_field_missing(F_MESSAGE_TYPE, err);
    if (v->type != MSGPACK_OBJECT_STR)
        return herr_set(err, HERR_BAD_KIND, "message_type", "message_type must be a string");
    n->type = model_type_find(v->via.str.ptr, v->via.str.size);
    if (!n->type) return codec_field_unknown_type(v->via.str.ptr, v->via.str.size, err);

    if (!f[F_USER_ID]) return codec_field_missing(F_USER_ID, err);
    int rc = str_field(f[F_USER_ID], F_USER_ID, n->user_id, HERALD_MAX_ID_LEN, true, err);
    if (rc) return rc;

    if (f[F_MESSAGE_ID])
        return str_field(f[F_MESSAGE_ID], F_MESSAGE_ID, n->message_id, HERALD_MAX_ID_LEN, true,
                         err);
    if (record) return codec_field_missing(F_MESSAGE_ID, err);
    model_gen_message_id(n->message_id);
    return 0;
}

/* priority, timestamp and source: defaults for a producer map, required in a record. */
static int notif_options(const msgpack_object *const *f, notif_t *n, bool record,
                         herald_error_t *err)
{
    int rc;
    uint64_t u = 0;
    n->has_priority = f[F_PRIORITY] != NULL;
    if (f[F_PRIORITY]) {
        rc = uint_field(f[F_PRIORITY], F_PRIORITY, HERALD_PRIORITIES - 1, &u, err);
        if (rc) return rc;
        n->priority = (uint8_t)u;
    } else if (record) {
        return codec_field_missing(F_PRIORITY, err);
    } else {
        n->priority = n->type->priority;
    }

    n->has_timestamp = f[F_TIMESTAMP] != NULL;
    n->timestamp = 0;
    if (f[F_TIMESTAMP]) {
        rc = uint_field(f[F_TIMESTAMP], F_TIMESTAMP, UINT64_MAX, &n->timestamp, err);
        if (rc) return rc;
    } else if (record) {
        return codec_field_missing(F_TIMESTAMP, err);
    }

    n->source[0] = '\0';
    if (f[F_SOURCE])
        return str_field(f[F_SOURCE], F_SOURCE, n->source, HERALD_MAX_SOURCE_LEN, false, err);
    if (record) return codec_field_missing(F_SOURCE, err);
    return 0;
}

/* payload: a map, or an empty one for a producer map without it. */
static int notif_payload(const msgpack_object *const *f, notif_t *n, bool record,
                         herald_error_t *err)
{
    if (f[F_PAYLOAD]) {
        if (f[F_PAYLOAD]->type != MSGPACK_OBJECT_MAP)
            return herr_set(err, HERR_BAD_KIND, "payload", "payload must be a map");
        n->payload = *f[F_PAYLOAD];
    } else if (record) {
        return codec_field_missing(F_PAYLOAD, err);
    } else {
        memset(&n->payload, 0, sizeof n->payload);
        n->payload.type = MSGPACK_OBJECT_MAP;
    }
    n->payload_raw = NULL;
    n->seq = 0;
    return 0;
}

/* A canonical record's own fields: type "notification", seq, and the type's channel. */
static int notif_record_fields(const msgpack_object *const *f, notif_t *n, herald_error_t *err)
{
    const msgpack_object *v = f[F_TYPE];
    if (!v) return codec_field_missing(F_TYPE, err);
    if (v->type != MSGPACK_OBJECT_STR || v->via.str.size != 12 ||
        memcmp(v->via.str.ptr, "notification", 12) != 0)
        return herr_set(err, HERR_BAD_VALUE, "type", "type must be \"notification\"");
    if (!f[F_SEQ]) return codec_field_missing(F_SEQ, err);
    int rc = uint_field(f[F_SEQ], F_SEQ, UINT64_MAX, &n->seq, err);
    if (rc) return rc;
    v = f[F_CHANNEL];
    if (!v) return codec_field_missing(F_CHANNEL, err);
    const char *ch = model_channel_name(n->type->channel);
    if (v->type != MSGPACK_OBJECT_STR || v->via.str.size != strlen(ch) ||
        memcmp(v->via.str.ptr, ch, v->via.str.size) != 0)
        return herr_set(err, HERR_BAD_VALUE, "channel", "channel must be \"%s\" for %s", ch,
                        n->type->name);
    return 0;
}

/* Both entry points share this: a producer map (record=false: broker fields ignored,
 * defaults applied, payload schema checked) or a canonical record (record=true: every
 * field present, type/channel consistent, seq read). */
static int notif_parse(const msgpack_object *obj, notif_t *n, bool record, herald_error_t *err)
{
    const msgpack_object *f[F__COUNT] = {0};
    int rc = notif_keys(obj, f, err);
    if (!rc) rc = notif_ids(f, n, record, err);
    if (!rc) rc = notif_options(f, n, record, err);
    if (!rc) rc = notif_payload(f, n, record, err);
    if (rc) return rc;
    if (!record) return model_validate_payload(n->type, &n->payload, err);
    return notif_record_fields(f, n, err);
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

const msgpack_object *codec_map_get(const msgpack_object *o, const char *key)
{
    if (o->type != MSGPACK_OBJECT_MAP) return NULL;
    size_t kl = strlen(key);
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object *k = &o->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == kl &&
            !memcmp(k->via.str.ptr, key, kl))
            return &o->via.map.ptr[i].val;
    }
    return NULL;
}
