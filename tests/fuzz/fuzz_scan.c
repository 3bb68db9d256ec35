/* fuzz_scan.c - libFuzzer target: the direct ingest path (codec_check, codec_span,
 * codec_notif_scan, codec_encode_to) against the object path (codec_unpack,
 * codec_notif_from_object, model_validate_payload, codec_encode) on the same bytes: same
 * accept/refuse, same error code, field and message, same encoded bytes. */
#include <stdlib.h>
#include <string.h>

#include "codec.h"

/* Reused across inputs, as the broker reuses its own. */
static msgpack_unpacked u;
static msgpack_sbuffer sb;
static uint8_t out[CODEC_ENCODE_CAP];

static void same_error(int ra, const herald_error_t *ea, int rb, const herald_error_t *eb)
{
    if (ra != rb) abort();
    if (ra == 0) return;
    if (ra != -(int)ea->code || ea->code != eb->code || strcmp(ea->field, eb->field) != 0 ||
        strcmp(ea->message, eb->message) != 0)
        abort();
}

/* Whether the producer map obj names a message_id (else both paths generate one). */
static bool has_message_id(const msgpack_object *obj)
{
    for (uint32_t i = 0; i < obj->via.map.size; i++) {
        const msgpack_object *k = &obj->via.map.ptr[i].key;
        if (k->via.str.size == 10 && memcmp(k->via.str.ptr, "message_id", 10) == 0) return true;
    }
    return false;
}

/* One notification: obj is the object path's value for the bytes p[0..len). */
static void check_item(const msgpack_object *obj, const uint8_t *p, size_t len, uint64_t salt)
{
    notif_t a, b;
    herald_error_t ea, eb;
    int ra = codec_notif_from_object(obj, &a, &ea);
    if (ra == 0) ra = model_validate_payload(a.type, &a.payload, &ea);
    long used = codec_notif_scan(p, len, &b, &eb);
    same_error(ra, &ea, used < 0 ? (int)used : 0, &eb);
    if (ra != 0) return;
    if (used != (long)len) abort();
    if (a.type != b.type || a.priority != b.priority || a.has_priority != b.has_priority ||
        a.has_timestamp != b.has_timestamp || a.timestamp != b.timestamp || a.seq != b.seq ||
        strcmp(a.user_id, b.user_id) != 0 || strcmp(a.source, b.source) != 0)
        abort();
    if (has_message_id(obj)) {
        if (strcmp(a.message_id, b.message_id) != 0) abort();
    } else {
        if (strlen(b.message_id) != 36) abort();
        memcpy(b.message_id, a.message_id, sizeof a.message_id);
    }
    /* what the broker does before encoding */
    if (!a.has_timestamp) a.timestamp = b.timestamp = salt * 0x9e3779b97f4a7c15ull;
    a.seq = b.seq = salt;

    msgpack_sbuffer_clear(&sb);
    long la = codec_encode(&a, &sb, NULL);
    long lb = codec_encode_to(&b, out, sizeof out);
    if (la != lb) abort();
    if (la > 0 && memcmp(sb.data, out, (size_t)la) != 0) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size); /* libFuzzer calls it */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    herald_error_t ea, eb;
    int ra = codec_unpack(data, size, HERALD_MAX_NOTIF_BYTES, &u, &ea);
    int rb = codec_check(data, size, HERALD_MAX_NOTIF_BYTES, &eb);
    same_error(ra, &ea, rb, &eb);

    /* codec_skip reports the value's own length, or the reader's error */
    long sk = codec_skip(data, size, &eb);
    if (ra == 0 || ra == -HERR_TRAILING) {
        if (sk <= 0 || (size_t)sk > size || (ra == 0) != ((size_t)sk == size)) abort();
    } else if (ra != -HERR_TOO_LARGE) {
        same_error(ra, &ea, sk < 0 ? (int)sk : 0, &eb);
    }
    if (ra != 0) return 0;

    const msgpack_object *o = &u.data;
    if (o->type != MSGPACK_OBJECT_ARRAY) {
        if (codec_span(data) != size) abort();
        check_item(o, data, size, size);
        return 0;
    }
    uint32_t count = 0;
    size_t off = codec_array_open(data, size, &count);
    if (off == 0 || count != o->via.array.size) abort();
    for (uint32_t i = 0; i < count; i++) {
        size_t len = codec_span(data + off);
        if (off + len > size || codec_skip(data + off, size - off, &eb) != (long)len) abort();
        check_item(&o->via.array.ptr[i], data + off, len, i);
        off += len;
    }
    if (off != size) abort();
    return 0;
}
