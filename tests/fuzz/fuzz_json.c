/* fuzz_json.c - libFuzzer target: JSON input into the notification path, and the string
 * writer on arbitrary bytes (its output must be valid UTF-8 JSON). */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "json.h"

static msgpack_unpacked u;
static msgpack_sbuffer sb, enc;
static jbuf_t jb;

static void notif_path(const msgpack_object *o)
{
    notif_t n;
    herald_error_t err;
    if (codec_notif_from_object(o, &n, &err) != 0) return;
    msgpack_sbuffer_clear(&enc);
    codec_encode(&n, &enc, NULL);
}

static void json_input(const uint8_t *data, size_t size)
{
    herald_error_t err;
    msgpack_sbuffer_clear(&sb);
    int rc = json_to_msgpack((const char *)data, size, &sb, &err);
    if (rc != 0) {
        if (err.code != HERR_MALFORMED && err.code != HERR_TOO_LARGE) abort();
        return;
    }
    rc = codec_unpack((const uint8_t *)sb.data, sb.size, sb.size, &u, &err);
    if (rc != 0) {
        if (err.code != HERR_MALFORMED) abort(); /* only nesting deeper than msgpack-c's */
        return;
    }
    if (u.data.type == MSGPACK_OBJECT_ARRAY) {
        for (uint32_t i = 0; i < u.data.via.array.size; i++)
            notif_path(&u.data.via.array.ptr[i]);
    } else {
        notif_path(&u.data);
    }
}

static void string_writer(const uint8_t *data, size_t size)
{
    jbuf_reset(&jb);
    jbuf_putc(&jb, '[');
    json_put_str(&jb, (const char *)data, size);
    jbuf_putc(&jb, ']');
    /* jansson checks UTF-8 strictly (no overlongs, surrogates or > U+10FFFF) */
    json_error_t e;
    json_t *j = json_loadb(jb.data, jb.len, JSON_ALLOW_NUL, &e);
    if (!j) abort();
    json_t *s = json_array_get(j, 0);
    /* valid UTF-8 input must come back unchanged */
    json_t *ref = json_stringn((const char *)data, size);
    if (ref && !json_equal(ref, s)) abort();
    json_decref(ref);
    json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_input(data, size);
    string_writer(data, size);
    return 0;
}
