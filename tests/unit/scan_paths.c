/* scan_paths.c - the codec suites' check that the scan path and the object path agree
 * (see scan_paths.h). */
#include <check.h>
#include <string.h>

/* before scan_paths.h: its helpers' parameters are named like the globals declared there */
#include "notif_fixture.h"
#include "scan_paths.h"

msgpack_sbuffer sb;
msgpack_unpacked u;
uint8_t out[CODEC_ENCODE_CAP];
static msgpack_sbuffer enc; /* codec_encode's output in both_paths */

void scan_paths_setup(void)
{
    msgpack_sbuffer_init(&sb);
    msgpack_sbuffer_init(&enc);
    msgpack_unpacked_init(&u);
}

void scan_paths_teardown(void)
{
    msgpack_sbuffer_destroy(&sb);
    msgpack_sbuffer_destroy(&enc);
    msgpack_unpacked_destroy(&u);
}

void same_error(int ra, const herald_error_t *ea, int rb, const herald_error_t *eb)
{
    ck_assert_int_eq(ra, rb);
    if (ra == 0) return;
    ck_assert_int_eq(ea->code, eb->code);
    ck_assert_str_eq(ea->field, eb->field);
    ck_assert_str_eq(ea->message, eb->message);
}

static bool names_message_id(const msgpack_object *o)
{
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object *k = &o->via.map.ptr[i].key;
        if (k->via.str.size == 10 && memcmp(k->via.str.ptr, "message_id", 10) == 0) return true;
    }
    return false;
}

/* Run one notification's bytes through both paths, assert the same outcome (error, fields,
 * encoded bytes) and return the rc; *err gets the error. */
int both_paths(const uint8_t *p, size_t len, herald_error_t *err)
{
    herald_error_t ea = {0}, eb = {0};
    int ra = codec_unpack(p, len, BIG_LIMIT, &u, &ea);
    int rb = codec_check(p, len, BIG_LIMIT, &eb);
    same_error(ra, &ea, rb, &eb);
    *err = ea;
    if (ra) return ra;
    notif_t a, b;
    ra = codec_notif_from_object(&u.data, &a, &ea);
    if (ra == 0) ra = model_validate_payload(a.type, &a.payload, &ea);
    long used = codec_notif_scan(p, len, &b, &eb);
    same_error(ra, &ea, used < 0 ? (int)used : 0, &eb);
    *err = ea;
    if (ra) return ra;
    ck_assert_int_eq(used, (long)len);
    ck_assert_ptr_eq(a.type, b.type);
    ck_assert_int_eq(a.priority, b.priority);
    ck_assert_int_eq(a.has_priority, b.has_priority);
    ck_assert_int_eq(a.has_timestamp, b.has_timestamp);
    ck_assert_uint_eq(a.timestamp, b.timestamp);
    ck_assert_str_eq(a.user_id, b.user_id);
    ck_assert_str_eq(a.source, b.source);
    if (names_message_id(&u.data)) {
        ck_assert_str_eq(a.message_id, b.message_id);
    } else {
        ck_assert_uint_eq(strlen(b.message_id), 36);
        memcpy(b.message_id, a.message_id, sizeof a.message_id);
    }
    a.seq = b.seq = 0x0102030405060708ull;
    msgpack_sbuffer_clear(&enc);
    long la = codec_encode(&a, &enc, NULL);
    long lb = codec_encode_to(&b, out, sizeof out);
    ck_assert_int_eq(la, lb);
    if (la > 0) ck_assert_mem_eq(enc.data, out, (size_t)la);
    return la < 0 ? (int)la : 0;
}

int both_json(const char *json, herald_error_t *err)
{
    fx_json(&sb, json);
    return both_paths((const uint8_t *)sb.data, sb.size, err);
}

int both_sb(herald_error_t *err)
{
    return both_paths((const uint8_t *)sb.data, sb.size, err);
}
