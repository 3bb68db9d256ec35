/* fuzz_codec.c - libFuzzer target: strict msgpack decode, validation, canonical round trip. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "json.h"

/* Reused across inputs, as the broker and gateways reuse theirs. */
static msgpack_unpacked u, u2, u3;
static msgpack_sbuffer sb, sb2;
static jbuf_t jb;

/* The writer's output must parse. Integers are read as reals because jansson refuses
 * integers beyond int64 (valid JSON, and a uint64 seq can be one). */
static void check_json(void)
{
    json_error_t e;
    json_t *j =
        json_loadb(jb.data, jb.len, JSON_DECODE_ANY | JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, &e);
    /* \u0000 in an object key is valid JSON that jansson does not support: not our error */
    if (!j && strstr(e.text, "NUL byte in object key")) return;
    if (!j) abort(); /* the writer produced invalid JSON */
    json_decref(j);
}

static void check_same(const notif_t *a, const notif_t *b)
{
    if (a->type != b->type || a->priority != b->priority || a->timestamp != b->timestamp ||
        a->seq != b->seq || strcmp(a->message_id, b->message_id) ||
        strcmp(a->user_id, b->user_id) || strcmp(a->source, b->source))
        abort();
}

/* Encode n, decode it back, and check the record is a fixed point of decode+encode. */
static void round_trip(const notif_t *n)
{
    msgpack_sbuffer_clear(&sb);
    size_t off = 0;
    long len = codec_encode(n, &sb, &off);
    if (len == -HERR_TOO_LARGE) return;
    if (len <= 0 || off != CODEC_SEQ_OFFSET || (size_t)len != sb.size) abort();
    notif_t back;
    herald_error_t err;
    if (codec_decode((const uint8_t *)sb.data, sb.size, &u2, &back, &err) != 0) abort();
    check_same(n, &back);
    msgpack_sbuffer_clear(&sb2);
    if (codec_encode(&back, &sb2, NULL) != len || memcmp(sb.data, sb2.data, sb.size) != 0) abort();
    jbuf_reset(&jb);
    json_render_notif(&jb, &back);
    check_json();
}

/* Differential check against msgpack-c: where our reader accepts, msgpack-c must build the
 * same objects (compared as re-packed bytes, so NaN compares equal); where ours finds bad
 * bytes, msgpack-c must refuse too. Not run on truncated input: msgpack-c would allocate
 * whatever the headers announce, which is what our reader exists to avoid. */
static void check_against_msgpack_c(const uint8_t *data, size_t size, int rc)
{
    if (rc != 0 && rc != -HERR_MALFORMED) return;
    msgpack_zone *z = msgpack_zone_new(MSGPACK_ZONE_CHUNK_SIZE);
    msgpack_object theirs;
    size_t off = 0;
    msgpack_unpack_return r = msgpack_unpack((const char *)data, size, &off, z, &theirs);
    if (rc == 0) {
        if (r != MSGPACK_UNPACK_SUCCESS) abort();
        msgpack_sbuffer_clear(&sb);
        msgpack_sbuffer_clear(&sb2);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_object(&pk, u.data);
        msgpack_packer_init(&pk, &sb2, msgpack_sbuffer_write);
        msgpack_pack_object(&pk, theirs);
        if (sb.size != sb2.size || memcmp(sb.data, sb2.data, sb.size) != 0) abort();
    } else if (r == MSGPACK_UNPACK_SUCCESS || r == MSGPACK_UNPACK_EXTRA_BYTES) {
        abort();
    }
    msgpack_zone_free(z);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size); /* libFuzzer calls it */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    herald_error_t err;
    notif_t n;
    int rc = codec_unpack(data, size, HERALD_MAX_NOTIF_BYTES, &u, &err);
    check_against_msgpack_c(data, size, rc);
    if (rc != 0) {
        if (rc != -(int)err.code || err.code == HERR_OK) abort();
    } else {
        jbuf_reset(&jb);
        json_put_msgpack(&jb, &u.data);
        check_json();
        memset(&n, 0, sizeof n);
        rc = codec_notif_from_object(&u.data, &n, &err);
        if (rc != 0 && rc != -(int)err.code) abort();
        if (rc == 0) round_trip(&n);
    }
    /* the same bytes as a ring record */
    if (codec_decode(data, size, &u3, &n, &err) == 0) round_trip(&n);
    return 0;
}
