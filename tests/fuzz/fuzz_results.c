/* fuzz_results.c - libFuzzer target: libherald's response reader (herald_results_parse)
 * against msgpack-c's object tree read the way libherald read it before (the oracle below):
 * the same verdict, the same count, the same fields in every result. The first byte is max
 * (the caller's room for results, 0..15); the rest is the frame body. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "codec.h"
#include "herald.h"

static void oracle_result(const msgpack_object *o, herald_result_t *r)
{
    memset(r, 0, sizeof *r);
    if (o->type != MSGPACK_OBJECT_MAP) {
        snprintf(r->error, sizeof r->error, "internal");
        snprintf(r->message, sizeof r->message, "response is not a map");
        return;
    }
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object *k = &o->via.map.ptr[i].key, *v = &o->via.map.ptr[i].val;
        if (k->type != MSGPACK_OBJECT_STR) continue;
        const char *ks = k->via.str.ptr;
        size_t kl = k->via.str.size;
        if (kl == 2 && !memcmp(ks, "ok", 2) && v->type == MSGPACK_OBJECT_BOOLEAN)
            r->ok = v->via.boolean;
        else if (kl == 3 && !memcmp(ks, "seq", 3) && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
            r->seq = v->via.u64;
        else if (kl == 9 && !memcmp(ks, "duplicate", 9) && v->type == MSGPACK_OBJECT_BOOLEAN)
            r->duplicate = v->via.boolean;
        else if (kl == 5 && !memcmp(ks, "error", 5) && v->type == MSGPACK_OBJECT_STR)
            snprintf(r->error, sizeof r->error, "%.*s", (int)v->via.str.size, v->via.str.ptr);
        else if (kl == 7 && !memcmp(ks, "message", 7) && v->type == MSGPACK_OBJECT_STR)
            snprintf(r->message, sizeof r->message, "%.*s", (int)v->via.str.size, v->via.str.ptr);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size); /* libFuzzer calls it */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0;
    size_t max = data[0] % 16;
    const uint8_t *body = data + 1;
    size_t len = size - 1;
    herald_result_t got[16], want[16];
    long n = herald_results_parse(body, len, got, max);
    herald_error_t err;
    /* Ill-formed msgpack is codec_check's verdict (held equal to msgpack-c's reader by
     * fuzz_codec and fuzz_scan); msgpack-c is not asked about it here, since it allocates
     * what a bogus container count announces before finding the input short. */
    if (codec_check(body, len, 64u << 20, &err) < 0) {
        if (n != -1) abort();
        return 0;
    }
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    if (msgpack_unpack_next(&u, (const char *)body, len, &off) != MSGPACK_UNPACK_SUCCESS ||
        off != len)
        abort(); /* codec_check accepted what msgpack-c does not read whole */
    long m = 0;
    const msgpack_object *o = &u.data;
    if (o->type == MSGPACK_OBJECT_ARRAY) {
        for (uint32_t i = 0; i < o->via.array.size && (size_t)m < max; i++)
            oracle_result(&o->via.array.ptr[i], &want[m++]);
    } else if (max) {
        oracle_result(o, &want[m++]);
    }
    msgpack_unpacked_destroy(&u);
    if (n != m) abort();
    for (long i = 0; i < n; i++)
        if (got[i].ok != want[i].ok || got[i].duplicate != want[i].duplicate ||
            got[i].seq != want[i].seq || strcmp(got[i].error, want[i].error) != 0 ||
            strcmp(got[i].message, want[i].message) != 0)
            abort();
    return 0;
}
