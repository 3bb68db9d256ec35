/* fuzz_json.c - libFuzzer target: json_to_msgpack against jansson + msgpack-c (same verdict,
 * same bytes), its output into the notification path, and the string writer on arbitrary
 * bytes (its output must be valid UTF-8 JSON). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "json.h"
#include "json_oracle.h"

static msgpack_unpacked u;
static msgpack_sbuffer sb, ref, enc;
static jbuf_t jb;

static void notif_path(const msgpack_object *o)
{
    notif_t n;
    herald_error_t err;
    if (codec_notif_from_object(o, &n, &err) != 0) return;
    msgpack_sbuffer_clear(&enc);
    codec_encode(&n, &enc, NULL);
}

/* Both converters append after one byte already in the buffer, which must stay. */
static void json_input(const uint8_t *data, size_t size)
{
    herald_error_t err, rerr;
    msgpack_sbuffer_clear(&sb);
    msgpack_sbuffer_clear(&ref);
    msgpack_sbuffer_write(&sb, "\xc1", 1);
    msgpack_sbuffer_write(&ref, "\xc1", 1);
    int rc = json_to_msgpack((const char *)data, size, &sb, &err);
    int rrc = oracle_json_to_msgpack((const char *)data, size, &ref, &rerr);
    if (rc != rrc) {
        fprintf(stderr, "json_to_msgpack: %d %s\njansson: %d %s\n", rc, rc ? err.message : "", rrc,
                rrc ? rerr.message : "");
        abort();
    }
    if (sb.size != ref.size || memcmp(sb.data, ref.data, sb.size) != 0) {
        fprintf(stderr, "msgpack differs: %zu bytes vs jansson's %zu\n", sb.size, ref.size);
        abort();
    }
    if (rc != 0) {
        if (err.code != HERR_MALFORMED && err.code != HERR_TOO_LARGE) abort();
        /* a syntax error is placed where jansson places it (no place for a raw NUL) */
        int line, col, rline, rcol;
        const char *at = "invalid JSON at line %d, column %d";
        if (err.code == HERR_MALFORMED && sscanf(err.message, at, &line, &col) != 2) abort();
        if (err.code == HERR_MALFORMED && sscanf(rerr.message, at, &rline, &rcol) == 2 &&
            (line != rline || col != rcol)) {
            fprintf(stderr, "json_to_msgpack: %s\njansson: %s\n", err.message, rerr.message);
            abort();
        }
        return;
    }
    rc = codec_unpack((const uint8_t *)sb.data + 1, sb.size - 1, sb.size - 1, &u, &err);
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
    json_t *want = json_stringn((const char *)data, size);
    if (want && !json_equal(want, s)) abort();
    json_decref(want);
    json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size); /* libFuzzer calls it */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_input(data, size);
    string_writer(data, size);
    return 0;
}
