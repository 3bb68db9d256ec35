/* test_codec_scan.c - the direct ingest path (codec_check .. codec_encode_to) accepts, refuses
 * and encodes exactly as the object path (codec_unpack, codec_notif_from_object,
 * model_validate_payload, codec_encode) does for the same bytes. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "notif_fixture.h"

#define BIG_LIMIT (1u << 20)

static msgpack_sbuffer sb, enc;
static msgpack_unpacked u;
static uint8_t out[CODEC_ENCODE_CAP];

static void setup(void)
{
    msgpack_sbuffer_init(&sb);
    msgpack_sbuffer_init(&enc);
    msgpack_unpacked_init(&u);
}

static void teardown(void)
{
    msgpack_sbuffer_destroy(&sb);
    msgpack_sbuffer_destroy(&enc);
    msgpack_unpacked_destroy(&u);
}

static void same_error(int ra, const herald_error_t *ea, int rb, const herald_error_t *eb)
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
static int both_paths(const uint8_t *p, size_t len, herald_error_t *err)
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

static int both_json(const char *json, herald_error_t *err)
{
    fx_json(&sb, json);
    return both_paths((const uint8_t *)sb.data, sb.size, err);
}

static int both_sb(herald_error_t *err)
{
    return both_paths((const uint8_t *)sb.data, sb.size, err);
}

START_TEST(scan_accepts_every_type_as_the_object_path)
{
    size_t count;
    const msg_type_t *t = model_types(&count);
    for (size_t i = 0; i < count; i++) {
        msgpack_packer pk;
        msgpack_sbuffer_clear(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        fx_notif_map(&pk, &t[i], i % 2 ? "*" : "u1");
        herald_error_t err;
        ck_assert_msg(both_sb(&err) == 0, "%s: %s", t[i].name, err.message);
    }
}
END_TEST

START_TEST(scan_refuses_every_payload_schema_error_as_the_object_path)
{
    size_t count;
    const msg_type_t *t = model_types(&count);
    for (size_t i = 0; i < count; i++) {
        for (size_t f = 0; f < t[i].n_required; f++) {
            for (int missing = 0; missing < 2; missing++) {
                msgpack_packer pk;
                msgpack_sbuffer_clear(&sb);
                msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
                msgpack_pack_map(&pk, 3);
                msgpack_pack_str_with_body(&pk, "message_type", 12);
                msgpack_pack_str_with_body(&pk, t[i].name, strlen(t[i].name));
                msgpack_pack_str_with_body(&pk, "user_id", 7);
                msgpack_pack_str_with_body(&pk, "u", 1);
                msgpack_pack_str_with_body(&pk, "payload", 7);
                fx_payload(&pk, &t[i], missing ? f : (size_t)-1, missing ? (size_t)-1 : f);
                herald_error_t err;
                int rc = both_sb(&err);
                ck_assert_int_eq(rc, missing ? -HERR_MISSING_FIELD : -HERR_BAD_KIND);
                char want[80];
                snprintf(want, sizeof want, "payload.%s", t[i].required[f].name);
                ck_assert_str_eq(err.field, want);
            }
        }
    }
}
END_TEST

/* The producer-map vectors of test_codec.c, each with the code the object path gives. */
START_TEST(scan_refuses_every_field_error_as_the_object_path)
{
#define T(body) "{\"message_type\":\"market_halt\",\"user_id\":\"u\"," body "}"
    static const struct {
        const char *json;
        herr_t code;
    } v[] = {
        {"{\"message_type\":\"market_halt\",\"user_id\":7}", HERR_BAD_KIND},
        {"{\"message_type\":1,\"user_id\":\"u\"}", HERR_BAD_KIND},
        {T("\"message_id\":12"), HERR_BAD_KIND},
        {T("\"priority\":\"1\""), HERR_BAD_KIND},
        {T("\"priority\":1.0"), HERR_BAD_KIND},
        {T("\"timestamp\":\"now\""), HERR_BAD_KIND},
        {T("\"timestamp\":1.5"), HERR_BAD_KIND},
        {T("\"source\":null"), HERR_BAD_KIND},
        {T("\"payload\":[1]"), HERR_BAD_KIND},
        {T("\"priority\":4"), HERR_BAD_VALUE},
        {T("\"priority\":-1"), HERR_BAD_VALUE},
        {T("\"timestamp\":-5"), HERR_BAD_VALUE},
        {"{\"message_type\":\"market_halt\",\"user_id\":\"\"}", HERR_BAD_VALUE},
        {T("\"message_id\":\"\""), HERR_BAD_VALUE},
        {T("\"colour\":\"red\""), HERR_BAD_VALUE},
        {T("\"an_unknown_field_whose_name_is_longer_than_sixty_four_bytes_by_some\":1"),
         HERR_BAD_VALUE},
        {T("\"message_id\":\"a123456789b123456789c123456789d123456789e123456789f123456789g1234\""),
         HERR_TOO_LONG},
        {T("\"source\":\"a123456789b123456789c123456789d12\""), HERR_TOO_LONG},
        {"{\"message_type\":\"order_teleported\",\"user_id\":\"u\"}", HERR_UNKNOWN_TYPE},
        {"{\"message_type\":\"\",\"user_id\":\"u\"}", HERR_UNKNOWN_TYPE},
        {"{\"user_id\":\"u\"}", HERR_MISSING_FIELD},
        {"{\"message_type\":\"market_halt\"}", HERR_MISSING_FIELD},
        {"{\"message_type\":\"order_rejected\",\"user_id\":\"u\"}", HERR_MISSING_FIELD},
        {"[1]", HERR_NOT_MAP},
        {"{}", HERR_MISSING_FIELD},
        /* accepted, with defaults or the broker's fields ignored */
        {T("\"priority\":0,\"timestamp\":9223372036854775807,\"source\":\"s\""), HERR_OK},
        {T("\"type\":5,\"channel\":[1],\"seq\":\"x\""), HERR_OK},
        {T("\"message_id\":\"a123456789b123456789c123456789d123456789e123456789f123456789g123\","
           "\"source\":\"a123456789b123456789c123456789d1\""),
         HERR_OK},
    };
#undef T
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        herald_error_t err;
        int rc = both_json(v[i].json, &err);
        ck_assert_msg(rc == -(int)v[i].code, "%s: got %d (%s)", v[i].json, rc, err.message);
    }
    herald_error_t err;
    /* keys that are not strings; a value no JSON can carry */
    msgpack_sbuffer_clear(&sb);
    msgpack_sbuffer_write(&sb, "\x81\x01\x02", 3);
    ck_assert_int_eq(both_sb(&err), -HERR_BAD_KIND);
    msgpack_sbuffer_clear(&sb);
    msgpack_sbuffer_write(&sb, "\xa1x", 2);
    ck_assert_int_eq(both_sb(&err), -HERR_NOT_MAP);
    static const char bin_user[] = "\x82\xacmessage_type\xabmarket_halt\xa7user_id\xc4\x01u";
    msgpack_sbuffer_clear(&sb);
    msgpack_sbuffer_write(&sb, bin_user, sizeof bin_user - 1);
    ck_assert_int_eq(both_sb(&err), -HERR_BAD_KIND);
    static const char dup[] = "\x82\xa7user_id\xa1u\xa7user_id\xa1v";
    msgpack_sbuffer_clear(&sb);
    msgpack_sbuffer_write(&sb, dup, sizeof dup - 1);
    ck_assert_int_eq(both_sb(&err), -HERR_BAD_VALUE);
    ck_assert_str_eq(err.field, "user_id");
    static const char ts_max[] = "\x83\xacmessage_type\xabmarket_halt\xa7user_id\xa1u"
                                 "\xa9timestamp\xcf\xff\xff\xff\xff\xff\xff\xff\xff";
    msgpack_sbuffer_clear(&sb);
    msgpack_sbuffer_write(&sb, ts_max, sizeof ts_max - 1);
    ck_assert_int_eq(both_sb(&err), 0);
    /* NUL bytes: in a value, and in an unknown key (the name shown stops there) */
    static const char nul_id[] = "\x83\xacmessage_type\xabmarket_halt\xa7user_id\xa1u"
                                 "\xaamessage_id\xa3u\x00v";
    msgpack_sbuffer_clear(&sb);
    msgpack_sbuffer_write(&sb, nul_id, sizeof nul_id - 1);
    ck_assert_int_eq(both_sb(&err), -HERR_BAD_VALUE);
    ck_assert_str_eq(err.field, "message_id");
    msgpack_sbuffer_clear(&sb);
    msgpack_sbuffer_write(&sb, "\x81\xa3x\x00y\x01", 6);
    ck_assert_int_eq(both_sb(&err), -HERR_BAD_VALUE);
    ck_assert_str_eq(err.field, "x");
}
END_TEST

/* Every integer and length in its widest form: the object path re-encodes them smallest. */
START_TEST(scan_reencodes_non_minimal_encodings_as_put_object)
{
    static const uint8_t wide[] = "\xde\x00\x05"
                                  "\xacmessage_type\xd9\x0bmarket_halt"
                                  "\xa7user_id\xda\x00\x01u"
                                  "\xa8priority\xcf\x00\x00\x00\x00\x00\x00\x00\x02"
                                  "\xa9timestamp\xd3\x00\x00\x00\x00\x00\x00\x00\x09"
                                  "\xa7payload\xdf\x00\x00\x00\x0c"
                                  "\xd9\x01"
                                  "a"
                                  "\xd0\x05" /* int8 5 -> fixint */
                                  "\xa1"
                                  "b"
                                  "\xd1\xff\x00" /* int16 -256 stays */
                                  "\xa1"
                                  "c"
                                  "\xd2\xff\xff\xff\xe0" /* int32 -32 -> fixint */
                                  "\xa1"
                                  "d"
                                  "\xd3\x7f\xff\xff\xff\xff\xff\xff\xff" /* int64 max -> uint64 */
                                  "\xa1"
                                  "e"
                                  "\xce\x00\x00\x00\x80" /* uint32 128 -> uint8 */
                                  "\xa1"
                                  "f"
                                  "\xcd\x00\x07" /* uint16 7 -> fixint */
                                  "\xa1"
                                  "g"
                                  "\xdd\x00\x00\x00\x02\xc7\x01\x05\x01\xc8\x00\x10\xfe"
                                  "0123456789abcdef" /* ext8/16 -> fixext1/16 */
                                  "\xa1"
                                  "h"
                                  "\x92\xc5\x00\x01\x00\xc6\x00\x00\x00\x00" /* bin16/32 -> bin8 */
                                  "\xa1"
                                  "i"
                                  "\xca\x7f\x80\x00\x01" /* float32 signalling NaN */
                                  "\xa1"
                                  "j"
                                  "\xca\xff\xbf\xff\xff" /* float32 quiet NaN */
                                  "\xa1"
                                  "k"
                                  "\xcb\x7f\xf0\x00\x00\x00\x00\x00\x01" /* float64 sNaN: kept */
                                  "\xa1"
                                  "l"
                                  "\xdc\x00\x01\xde\x00\x01\xdb\x00\x00\x00\x01"
                                  "k"
                                  "\xc7\x00\x01"; /* ext8 of 0 bytes stays */
    herald_error_t err;
    ck_assert_int_eq(both_paths(wide, sizeof wide - 1, &err), 0);
    /* and the payload did shrink */
    notif_t n;
    ck_assert_int_gt(codec_notif_scan(wide, sizeof wide - 1, &n, &err), 0);
    long len = codec_encode_to(&n, out, sizeof out);
    ck_assert_int_gt(len, 0);
    const uint8_t *key = memmem(out, (size_t)len, "\xa7payload", 8);
    ck_assert_ptr_nonnull(key);
    size_t canon = (size_t)len - (size_t)(key + 8 - out);
    ck_assert_uint_eq(codec_span(key + 8), canon);
    ck_assert_uint_lt(canon, n.payload_raw_len);
}
END_TEST

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

START_TEST(scan_finds_payload_fields_in_any_order_and_first_duplicate_from_hint)
{
    herald_error_t err;
    /* out of order: every lookup wraps around */
    ck_assert_int_eq(
        both_json("{\"message_type\":\"order_rejected\",\"user_id\":\"u\",\"payload\":{"
                  "\"error_code\":1,\"reason\":\"r\",\"instrument_id\":\"i\",\"order_id\":\"o\"}}",
                  &err),
        0);
    /* duplicates: which one a lookup finds depends on where the previous one matched */
    static const char dup[] = "\x83\xacmessage_type\xadsystem_notice\xa7user_id\xa1u"
                              "\xa7payload\x85\xa5title\xa1t\xa7"
                              "content\xa1"
                              "c\xa5title\x01\xa5level\xa1l\xa7"
                              "content\xc0";
    msgpack_sbuffer_clear(&sb);
    msgpack_sbuffer_write(&sb, dup, sizeof dup - 1);
    ck_assert_int_eq(codec_check((const uint8_t *)sb.data, sb.size, BIG_LIMIT, &err), 0);
    ck_assert_int_eq(both_sb(&err), 0);
    /* the same over 16 entries (searched in place, not indexed): title is found at 18,
     * content after wrapping to 1, level from there at 19 (a search from 0 would find the
     * integer at 0) */
    msgpack_packer pk;
    msgpack_sbuffer_clear(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 3);
    msgpack_pack_str_with_body(&pk, "message_type", 12);
    msgpack_pack_str_with_body(&pk, "system_notice", 13);
    msgpack_pack_str_with_body(&pk, "user_id", 7);
    msgpack_pack_str_with_body(&pk, "u", 1);
    msgpack_pack_str_with_body(&pk, "payload", 7);
    msgpack_pack_map(&pk, 20);
    msgpack_pack_str_with_body(&pk, "level", 5);
    msgpack_pack_int(&pk, 1);
    msgpack_pack_str_with_body(&pk, "content", 7);
    msgpack_pack_str_with_body(&pk, "c", 1);
    for (int i = 2; i < 18; i++) {
        msgpack_pack_int(&pk, i);
        msgpack_pack_str_with_body(&pk, "title", 5);
    }
    msgpack_pack_str_with_body(&pk, "title", 5);
    msgpack_pack_str_with_body(&pk, "t", 1);
    msgpack_pack_str_with_body(&pk, "level", 5);
    msgpack_pack_str_with_body(&pk, "l", 1);
    ck_assert_int_eq(both_sb(&err), 0);
    /* a non-string key among the payload's keys */
    ck_assert_int_eq(both_json("{\"message_type\":\"system_notice\",\"user_id\":\"u\",\"payload\":{"
                               "\"level\":\"l\",\"title\":7,\"content\":\"c\"}}",
                               &err),
                     -HERR_BAD_KIND);
    ck_assert_str_eq(err.field, "payload.title");
}
END_TEST

START_TEST(scan_handles_nested_payloads_bin_ext_and_many_entries)
{
    herald_error_t err;
    msgpack_packer pk;
    msgpack_sbuffer_clear(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 3);
    msgpack_pack_str_with_body(&pk, "message_type", 12);
    msgpack_pack_str_with_body(&pk, "system_notice", 13);
    msgpack_pack_str_with_body(&pk, "user_id", 7);
    msgpack_pack_str_with_body(&pk, "u", 1);
    msgpack_pack_str_with_body(&pk, "payload", 7);
    msgpack_pack_map(&pk, 43);
    for (int i = 0; i < 40; i++) {
        msgpack_pack_int(&pk, i - 20); /* integer keys */
        msgpack_pack_map(&pk, 2);
        msgpack_pack_bin_with_body(&pk, "\x00\x01", 2);
        msgpack_pack_ext_with_body(&pk, "0123456789abcdefghij", (size_t)(i % 20), (int8_t)i);
        msgpack_pack_array(&pk, 1);
        msgpack_pack_array(&pk, 17);
        for (int j = 0; j < 17; j++)
            msgpack_pack_float(&pk, (float)j / 3);
        msgpack_pack_nil(&pk);
    }
    msgpack_pack_str_with_body(&pk, "content", 7);
    msgpack_pack_str_with_body(&pk, "c", 1);
    msgpack_pack_str_with_body(&pk, "title", 5);
    msgpack_pack_str_with_body(&pk, "t", 1);
    msgpack_pack_str_with_body(&pk, "level", 5);
    msgpack_pack_str_with_body(&pk, "l", 1);
    ck_assert_int_eq(both_sb(&err), 0);
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

/* A string field is copied whole, or refused when any one of its bytes is NUL: every
 * length up to 40 (word-at-a-time copy and its byte tail), every position. */
START_TEST(scan_refuses_a_nul_at_any_position_of_a_string_field)
{
    for (size_t len = 1; len <= 40; len++) {
        for (long nul = -1; nul < (long)len; nul++) {
            uint8_t buf[128];
            size_t n = 0;
            static const char head[] = "\x82\xacmessage_type\xabmarket_halt\xa7user_id";
            memcpy(buf, head, sizeof head - 1);
            n = sizeof head - 1;
            buf[n++] = (uint8_t)(0xa0 | len); /* fixstr: len <= 31 */
            if (len > 31) {
                buf[n - 1] = 0xd9;
                buf[n++] = (uint8_t)len;
            }
            for (size_t i = 0; i < len; i++)
                buf[n + i] = (uint8_t)('a' + (i * 7 + len) % 26);
            if (nul >= 0) buf[n + (size_t)nul] = 0;
            notif_t nt;
            herald_error_t err;
            long rc = codec_notif_scan(buf, n + len, &nt, &err);
            if (nul >= 0) {
                ck_assert_int_eq(rc, -HERR_BAD_VALUE);
                ck_assert_str_eq(err.field, "user_id");
            } else {
                ck_assert_int_eq(rc, (long)(n + len));
                ck_assert_uint_eq(nt.user_id_len, len);
                ck_assert(!memcmp(nt.user_id, buf + n, len) && nt.user_id[len] == '\0');
            }
        }
    }
}
END_TEST

START_TEST(scan_generates_a_message_id_and_applies_defaults)
{
    notif_t n;
    herald_error_t err;
    fx_json(&sb, "{\"message_type\":\"order_expired\",\"user_id\":\"u\"}");
    ck_assert_int_gt(codec_notif_scan((const uint8_t *)sb.data, sb.size, &n, &err), 0);
    ck_assert_uint_eq(strlen(n.message_id), 36);
    ck_assert_int_eq(n.priority, 3);
    ck_assert(!n.has_priority);
    ck_assert(!n.has_timestamp);
    ck_assert_str_eq(n.source, "");
    ck_assert_uint_eq(n.payload_raw_len, 1);
    ck_assert_int_eq(n.payload_raw[0], 0x80);
    ck_assert_int_eq(n.payload.type, MSGPACK_OBJECT_NIL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("codec_scan");
    TCase *tc = tcase_create("codec_scan");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, scan_accepts_every_type_as_the_object_path);
    tcase_add_test(tc, scan_refuses_every_payload_schema_error_as_the_object_path);
    tcase_add_test(tc, scan_refuses_every_field_error_as_the_object_path);
    tcase_add_test(tc, scan_reencodes_non_minimal_encodings_as_put_object);
    tcase_add_test(tc, scan_finds_payload_fields_in_any_order_and_first_duplicate_from_hint);
    tcase_add_test(tc, scan_handles_nested_payloads_bin_ext_and_many_entries);
    tcase_add_test(tc, skip_reports_truncation_malformation_and_depth_as_unpack);
    tcase_add_test(tc, scan_steps_through_a_batch);
    tcase_add_test(tc, encode_to_refuses_over_64k_exactly_where_codec_encode_does);
    tcase_add_test(tc, scan_generates_a_message_id_and_applies_defaults);
    tcase_add_test(tc, scan_refuses_a_nul_at_any_position_of_a_string_field);
    tcase_add_test(tc, encode_parts_find_what_the_walk_finds);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
