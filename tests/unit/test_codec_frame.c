/* test_codec_frame.c - the codec around one notification: skipping and checking raw
 * msgpack as codec_unpack does, stepping through a batch, the 64 KiB output bound and the
 * offsets of a canonical record's parts. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "check_run.h"
#include "notif_fixture.h"
#include "scan_paths.h"

/* The broker's dedup fingerprint reads the type, user and payload of a canonical record:
 * found by offsets at ingest, by a walk when a journal is replayed. Both find the same. */
START_TEST(encode_parts_find_what_the_walk_finds)
{
    static const size_t lens[] = {1, 30, 31, 32, 64};
    char id[65], user[65], src[33];
    for (size_t a = 0; a < 5; a++)
        for (size_t k = 0; k < 5; k++)
            for (size_t c = 0; c < 4; c++) {
                memset(id, 'i', lens[a]);
                id[lens[a]] = '\0';
                memset(user, 'u', lens[k]);
                user[lens[k]] = '\0';
                size_t sl = lens[c] > 32 ? 32 : lens[c];
                memset(src, 's', sl);
                src[sl] = '\0';
                char json[512];
                snprintf(json, sizeof json,
                         "{\"message_id\":\"%s\",\"message_type\":\"%s\",\"user_id\":\"%s\","
                         "\"source\":\"%s\",\"payload\":{\"title\":\"t\",\"content\":\"c\","
                         "\"level\":\"info\",\"n\":%zu}}",
                         id, c & 1 ? "system_notice" : "market_halt", user, src, a * 7 + k);
                msgpack_sbuffer mp;
                msgpack_sbuffer_init(&mp);
                herald_error_t err;
                ck_assert_int_eq(json_to_msgpack(json, strlen(json), &mp, &err), 0);
                notif_t n;
                memset(&n, 0, sizeof n);
                ck_assert_int_gt(codec_notif_scan((uint8_t *)mp.data, mp.size, &n, &err), 0);
                n.timestamp = 12345;
                long len = codec_encode_to(&n, out, sizeof out);
                ck_assert_int_gt(len, 0);
                codec_parts_t walk, offs;
                ck_assert_int_eq(codec_canonical_parts(out, (size_t)len, &walk), 0);
                codec_encode_parts(&n, out, (size_t)len, &offs);
                ck_assert_ptr_eq(walk.type, offs.type);
                ck_assert_uint_eq(walk.type_len, offs.type_len);
                ck_assert_ptr_eq(walk.user, offs.user);
                ck_assert_uint_eq(walk.user_len, offs.user_len);
                ck_assert_ptr_eq(walk.payload, offs.payload);
                ck_assert_uint_eq(walk.payload_len, offs.payload_len);
                ck_assert_mem_eq(walk.user, user, lens[k]);
                ck_assert_uint_eq(codec_span(walk.payload), walk.payload_len);
                /* and the walk refuses what is not canonical, without reading past it */
                ck_assert_int_eq(codec_canonical_parts(out, (size_t)(walk.payload - out), &walk),
                                 -HERR_MALFORMED);
                msgpack_sbuffer_destroy(&mp);
            }
}
END_TEST

/* codec_skip/codec_check give codec_unpack's code and message for the same bytes. */
static void skip_like_unpack(const uint8_t *p, size_t len)
{
    herald_error_t ea, eb;
    int ra = codec_unpack(p, len, BIG_LIMIT, &u, &ea);
    int rb = codec_check(p, len, BIG_LIMIT, &eb);
    same_error(ra, &ea, rb, &eb);
    long sk = codec_skip(p, len, &eb);
    if (ra == 0 || ra == -HERR_TRAILING) {
        ck_assert_int_gt(sk, 0);
        ck_assert_int_eq(ra == 0, (size_t)sk == len);
        ck_assert_uint_eq(codec_span(p), (size_t)sk);
    } else {
        same_error(ra, &ea, (int)sk, &eb);
    }
}

START_TEST(skip_reports_truncation_malformation_and_depth_as_unpack)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    fx_notif_map(&pk, model_type_find("trade_executed", 14), "u1");
    for (size_t len = 0; len <= sb.size; len++)
        skip_like_unpack((const uint8_t *)sb.data, len);
    static const struct {
        const char *b;
        size_t n;
    } v[] = {
        {"\xdd\xff\xff\xff\xff", 5},
        {"\xdf\xff\xff\xff\xff\x01", 6},
        {"\xdb\xff\xff\xff\xff", 5},
        {"\xc6\xff\xff\xff\xff", 5},
        {"\xc9\xff\xff\xff\xff\x01", 6},
        {"\xc1", 1},
        {"\x81\xa1k\xc1", 4},
        {"\x80\x00", 2},
        {"\x92\x92\x01", 3},
        {"\x92\x92\x01\x01\xc1", 5},
        {"\x92\x92\x01\xc1", 4}, /* the outer item still owed makes it truncated */
        {"\x92\x91\xc1\x01", 4},
        {"\x91\x92\x01", 3},
        {"\x92\x81\xc0", 3},
        {"\xd8\x01", 2},
        {"\xca\x00\x00", 3},
        {"\xd4", 1},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        skip_like_unpack((const uint8_t *)v[i].b, v[i].n);
    uint8_t deep[40];
    for (size_t depth = 30; depth < 35; depth++) {
        memset(deep, 0x91, depth);
        deep[depth] = 0xc0;
        skip_like_unpack(deep, depth + 1);
        deep[depth] = 0x90; /* an empty container one deeper */
        skip_like_unpack(deep, depth + 1);
        deep[depth] = 0xc1; /* which error comes first */
        skip_like_unpack(deep, depth + 1);
        skip_like_unpack(deep, depth);
    }
    herald_error_t err;
    uint8_t big[101] = {0};
    ck_assert_int_eq(codec_check(big, 101, 100, &err), -HERR_TOO_LARGE);
    ck_assert_int_eq(codec_unpack(big, 101, 100, &u, &err), -HERR_TOO_LARGE);
}
END_TEST

START_TEST(scan_steps_through_a_batch)
{
    fx_json(&sb, "[{\"message_type\":\"market_halt\",\"user_id\":\"u\"},{\"user_id\":\"u\"},"
                 "{\"message_type\":\"system_notice\",\"user_id\":\"*\",\"payload\":{\"title\":"
                 "\"t\",\"level\":\"info\",\"content\":\"c\"}},7]");
    const uint8_t *p = (const uint8_t *)sb.data;
    herald_error_t err;
    ck_assert_int_eq(codec_check(p, sb.size, BIG_LIMIT, &err), 0);
    uint32_t count = 0;
    size_t off = codec_array_open(p, sb.size, &count);
    ck_assert_uint_eq(off, 1);
    ck_assert_uint_eq(count, 4);
    static const int want[] = {0, -HERR_MISSING_FIELD, 0, -HERR_NOT_MAP};
    for (uint32_t i = 0; i < count; i++) {
        size_t len = codec_span(p + off);
        ck_assert_int_eq(both_paths(p + off, len, &err), want[i]);
        off += len;
    }
    ck_assert_uint_eq(off, sb.size);
    ck_assert_uint_eq(codec_array_open(p + 1, sb.size - 1, &count), 0);
    ck_assert_uint_eq(codec_array_open((const uint8_t *)"\xdc\x01\x00", 3, &count), 3);
    ck_assert_uint_eq(count, 256);
    ck_assert_uint_eq(codec_array_open((const uint8_t *)"\xdd\x00\x01\x00\x00", 5, &count), 5);
    ck_assert_uint_eq(count, 65536);
}
END_TEST

/* A notification whose payload holds one str of n bytes written with a str32 header, then
 * `pad` int64 zeros (9 bytes each in, 1 byte each out). */
static void pack_big(size_t n, size_t pad)
{
    static const uint8_t head[] = "\x83\xacmessage_type\xabmarket_halt\xa7user_id\xa1u\xa7payload";
    msgpack_sbuffer_clear(&sb);
    msgpack_sbuffer_write(&sb, (const char *)head, sizeof head - 1);
    uint8_t h[5] = {0xdf, 0, 0, (uint8_t)((pad + 1) >> 8), (uint8_t)(pad + 1)};
    msgpack_sbuffer_write(&sb, (const char *)h, 5);
    msgpack_sbuffer_write(&sb, "\xa1t", 2);
    uint8_t sh[5] = {0xdb, (uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
    msgpack_sbuffer_write(&sb, (const char *)sh, 5);
    char *s = malloc(n + 1);
    memset(s, 'x', n);
    msgpack_sbuffer_write(&sb, s, n);
    free(s);
    for (size_t i = 0; i < pad; i++) {
        uint8_t kv[12] = {0xcd, (uint8_t)(i >> 8), (uint8_t)i, 0xd3};
        msgpack_sbuffer_write(&sb, (const char *)kv, sizeof kv);
    }
}

START_TEST(encode_to_refuses_over_64k_exactly_where_codec_encode_does)
{
    herald_error_t err;
    /* around the limit; the str takes a str16 header here and at the limit */
    notif_t n;
    pack_big(1000, 0);
    ck_assert_int_eq(both_sb(&err), 0);
    ck_assert_int_gt(codec_notif_scan((const uint8_t *)sb.data, sb.size, &n, &err), 0);
    long fixed = codec_encode_to(&n, out, sizeof out) - 1000;
    for (long d = -2; d <= 2; d++) {
        pack_big((size_t)(HERALD_MAX_NOTIF_BYTES - fixed + d), 0);
        int rc = both_sb(&err);
        ck_assert_int_eq(rc, d <= 0 ? 0 : -HERR_TOO_LARGE);
    }
    /* input over 64 KiB that shrinks under it: 3000 int64 keys and values of 9+9 bytes in,
     * 3+1 out */
    pack_big(40000, 3000);
    ck_assert_uint_gt(sb.size, HERALD_MAX_NOTIF_BYTES);
    ck_assert_int_eq(both_sb(&err), 0);
    /* a buffer too small is refused, never overrun */
    pack_big(1000, 0);
    ck_assert_int_gt(codec_notif_scan((const uint8_t *)sb.data, sb.size, &n, &err), 0);
    n.seq = 1;
    uint8_t *small = malloc(600);
    ck_assert_int_eq(codec_encode_to(&n, small, 600), -HERR_TOO_LARGE);
    free(small);
    /* a notif_t from the object path has no payload bytes */
    n.payload_raw = NULL;
    ck_assert_int_eq(codec_encode_to(&n, out, sizeof out), -HERR_INTERNAL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("codec_frame");
    TCase *tc = tcase_create("codec_frame");
    tcase_add_checked_fixture(tc, scan_paths_setup, scan_paths_teardown);
    tcase_add_test(tc, encode_parts_find_what_the_walk_finds);
    tcase_add_test(tc, skip_reports_truncation_malformation_and_depth_as_unpack);
    tcase_add_test(tc, scan_steps_through_a_batch);
    tcase_add_test(tc, encode_to_refuses_over_64k_exactly_where_codec_encode_does);
    suite_add_tcase(s, tc);
    return check_run_suite(s);
}
