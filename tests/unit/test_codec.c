/* test_codec.c - strict msgpack decoding and the canonical encoding of notifications. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "check_run.h"
#include "notif_fixture.h"

static msgpack_sbuffer sb, out;
static msgpack_unpacked u, u2;

static void setup(void)
{
    msgpack_sbuffer_init(&sb);
    msgpack_sbuffer_init(&out);
    msgpack_unpacked_init(&u);
    msgpack_unpacked_init(&u2);
}

static void teardown(void)
{
    msgpack_sbuffer_destroy(&sb);
    msgpack_sbuffer_destroy(&out);
    msgpack_unpacked_destroy(&u);
    msgpack_unpacked_destroy(&u2);
}

/* Pack a msgpack object to bytes in a fresh buffer, for byte-exact comparisons. */
static void pack_obj(msgpack_sbuffer *dst, const msgpack_object *o)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, dst, msgpack_sbuffer_write);
    msgpack_pack_object(&pk, *o);
}

static void roundtrip(const msg_type_t *t, const char *user)
{
    msgpack_packer pk;
    msgpack_sbuffer_clear(&sb);
    msgpack_sbuffer_clear(&out);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    fx_notif_map(&pk, t, user);
    herald_error_t err = {0};
    notif_t n, back;
    ck_assert_int_eq(
        codec_unpack((const uint8_t *)sb.data, sb.size, HERALD_MAX_NOTIF_BYTES, &u, &err), 0);
    ck_assert_msg(codec_notif_from_object(&u.data, &n, &err) == 0, "%s: %s", t->name, err.message);
    n.seq = 42;
    size_t seq_off = 0;
    long len = codec_encode(&n, &out, &seq_off);
    ck_assert_int_gt(len, 0);
    ck_assert_uint_eq((size_t)len, out.size);
    ck_assert_uint_eq(seq_off, CODEC_SEQ_OFFSET);
    ck_assert_msg(codec_decode((const uint8_t *)out.data, out.size, &u2, &back, &err) == 0,
                  "%s: %s", t->name, err.message);
    ck_assert_ptr_eq(back.type, t);
    ck_assert_str_eq(back.message_id, "m-1");
    ck_assert_str_eq(back.user_id, user);
    ck_assert_str_eq(back.source, "MatchingEngine");
    ck_assert_int_eq(back.priority, 2);
    ck_assert_uint_eq(back.timestamp, 1764000000000000000ull);
    ck_assert_uint_eq(back.seq, 42);
    msgpack_sbuffer a, b;
    msgpack_sbuffer_init(&a);
    msgpack_sbuffer_init(&b);
    pack_obj(&a, &n.payload);
    pack_obj(&b, &back.payload);
    ck_assert_uint_eq(a.size, b.size);
    ck_assert_mem_eq(a.data, b.data, a.size);
    msgpack_sbuffer_destroy(&a);
    msgpack_sbuffer_destroy(&b);
}

START_TEST(codec_round_trips_every_type)
{
    size_t count;
    const msg_type_t *types = model_types(&count);
    for (size_t i = 0; i < count; i++)
        roundtrip(&types[i], "u1");
}
END_TEST

START_TEST(codec_round_trips_broadcast_user)
{
    size_t count;
    const msg_type_t *types = model_types(&count);
    for (size_t i = 0; i < count; i++)
        roundtrip(&types[i], "*");
    notif_t n;
    herald_error_t err;
    ck_assert_int_eq(codec_decode((const uint8_t *)out.data, out.size, &u2, &n, &err), 0);
    ck_assert(model_is_broadcast(&n));
}
END_TEST

START_TEST(codec_applies_defaults_for_absent_fields)
{
    notif_t n;
    herald_error_t err = {0};
    ck_assert_int_eq(
        fx_notif("{\"message_type\":\"order_rejected\",\"user_id\":\"u7\",\"payload\":"
                 "{\"order_id\":\"o\",\"instrument_id\":\"i\",\"reason\":\"r\",\"error_code\":3}}",
                 &sb, &u, &n, &err),
        0);
    ck_assert_int_eq(n.priority, 0);
    ck_assert(!n.has_priority);
    ck_assert(!n.has_timestamp);
    ck_assert_uint_eq(strlen(n.message_id), 36);
    ck_assert_str_eq(n.source, "");
    ck_assert_uint_eq(n.seq, 0);
    ck_assert_int_eq(
        fx_notif("{\"message_type\":\"market_halt\",\"user_id\":\"*\"}", &sb, &u, &n, &err), 0);
    ck_assert_int_eq(n.payload.type, MSGPACK_OBJECT_MAP);
    ck_assert_uint_eq(n.payload.via.map.size, 0);
    ck_assert_int_eq(n.priority, 3);
    ck_assert(model_is_broadcast(&n));
}
END_TEST

START_TEST(codec_ignores_broker_fields_from_producers)
{
    notif_t n;
    herald_error_t err = {0};
    ck_assert_int_eq(fx_notif("{\"type\":5,\"channel\":\"nope\",\"seq\":\"x\",\"message_type\":"
                              "\"market_halt\",\"user_id\":\"u\",\"priority\":1,\"timestamp\":9}",
                              &sb, &u, &n, &err),
                     0);
    ck_assert_uint_eq(n.seq, 0);
    ck_assert(n.has_priority);
    ck_assert_int_eq(n.priority, 1);
    ck_assert(n.has_timestamp);
    ck_assert_uint_eq(n.timestamp, 9);
}
END_TEST

START_TEST(codec_seq_is_fixed_width_at_documented_offset)
{
    notif_t n, back;
    herald_error_t err = {0};
    ck_assert_int_eq(
        fx_notif("{\"message_type\":\"market_halt\",\"user_id\":\"u\",\"timestamp\":0}", &sb, &u,
                 &n, &err),
        0);
    n.seq = 0;
    long small = codec_encode(&n, &out, NULL);
    const uint8_t *p = (const uint8_t *)out.data;
    ck_assert_int_eq(p[0], 0x8a);
    ck_assert_int_eq(p[CODEC_SEQ_OFFSET - 1], 0xcf);
    ck_assert_mem_eq(p + 1, "\xa4type\xacnotification\xa3seq", CODEC_SEQ_OFFSET - 2);
    n.seq = UINT64_MAX;
    n.timestamp = UINT64_MAX;
    msgpack_sbuffer_clear(&out);
    ck_assert_int_eq(codec_encode(&n, &out, NULL), small); /* widths do not depend on values */
    codec_patch_seq((uint8_t *)out.data, CODEC_SEQ_OFFSET, 0x0102030405060708ull);
    ck_assert_int_eq(codec_decode((const uint8_t *)out.data, out.size, &u2, &back, &err), 0);
    ck_assert_uint_eq(back.seq, 0x0102030405060708ull);
    ck_assert_uint_eq(back.timestamp, UINT64_MAX);
}
END_TEST

/* Pack a payload holding every kind at the boundaries of its encodings. */
static void pack_boundary_payload(msgpack_packer *pk)
{
    static char big[20000];
    const uint64_t uints[] = {0,     127,   128,         255,         256,
                              65535, 65536, 4294967295u, 4294967296u, UINT64_MAX};
    const int64_t ints[] = {
        -1, -32, -33, -128, -129, -32768, -32769, INT32_MIN, (int64_t)INT32_MIN - 1, INT64_MIN};
    const size_t lens[] = {0, 1, 2, 3, 4, 8, 16, 17, 31, 32, 255, 256, 20000};
    size_t nl = sizeof lens / sizeof lens[0];
    msgpack_pack_map(pk, 9);
    msgpack_pack_str_with_body(pk, "u", 1);
    msgpack_pack_array(pk, 10);
    for (int i = 0; i < 10; i++)
        msgpack_pack_uint64(pk, uints[i]);
    msgpack_pack_str_with_body(pk, "i", 1);
    msgpack_pack_array(pk, 10);
    for (int i = 0; i < 10; i++)
        msgpack_pack_int64(pk, ints[i]);
    msgpack_pack_str_with_body(pk, "f", 1);
    msgpack_pack_array(pk, 4);
    msgpack_pack_float(pk, 1.5f);
    msgpack_pack_double(pk, -0.1);
    msgpack_pack_nil(pk);
    msgpack_pack_true(pk);
    msgpack_pack_str_with_body(pk, "s", 1);
    msgpack_pack_array(pk, (uint32_t)nl);
    for (size_t i = 0; i < nl; i++)
        msgpack_pack_str_with_body(pk, big, lens[i] / 2);
    msgpack_pack_str_with_body(pk, "b", 1);
    msgpack_pack_array(pk, (uint32_t)nl);
    for (size_t i = 0; i < nl; i++)
        msgpack_pack_bin_with_body(pk, big, lens[i] / 2);
    msgpack_pack_str_with_body(pk, "e", 1);
    msgpack_pack_array(pk, (uint32_t)nl);
    for (size_t i = 0; i < nl; i++)
        msgpack_pack_ext_with_body(pk, big, lens[i] / 2, -3);
    msgpack_pack_str_with_body(pk, "a", 1);
    msgpack_pack_array(pk, 2);
    msgpack_pack_array(pk, 15);
    for (int i = 0; i < 15; i++)
        msgpack_pack_nil(pk);
    msgpack_pack_array(pk, 16);
    for (int i = 0; i < 16; i++)
        msgpack_pack_nil(pk);
    msgpack_pack_str_with_body(pk, "m", 1);
    msgpack_pack_map(pk, 16);
    for (int i = 0; i < 16; i++) {
        msgpack_pack_int(pk, i);
        msgpack_pack_map(pk, 0);
    }
    msgpack_pack_uint8(pk, 7); /* a non-string key */
    msgpack_pack_array(pk, 0);
}

START_TEST(codec_encodes_payload_exactly_as_msgpack_c)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 3);
    msgpack_pack_str_with_body(&pk, "message_type", 12);
    msgpack_pack_str_with_body(&pk, "market_halt", 11);
    msgpack_pack_str_with_body(&pk, "user_id", 7);
    msgpack_pack_str_with_body(&pk, "u", 1);
    msgpack_pack_str_with_body(&pk, "payload", 7);
    pack_boundary_payload(&pk);
    herald_error_t err = {0};
    notif_t n, back;
    ck_assert_int_eq(
        codec_unpack((const uint8_t *)sb.data, sb.size, HERALD_MAX_NOTIF_BYTES, &u, &err), 0);
    ck_assert_msg(codec_notif_from_object(&u.data, &n, &err) == 0, "%s", err.message);
    long len = codec_encode(&n, &out, NULL);
    ck_assert_int_gt(len, 0);
    msgpack_sbuffer ref;
    msgpack_sbuffer_init(&ref);
    pack_obj(&ref, &n.payload);
    ck_assert_uint_gt((size_t)len, ref.size);
    ck_assert_mem_eq(out.data + (size_t)len - ref.size, ref.data, ref.size);
    ck_assert_mem_eq(out.data + (size_t)len - ref.size - 8, "\xa7payload", 8);
    ck_assert_int_eq(codec_decode((const uint8_t *)out.data, out.size, &u2, &back, &err), 0);
    msgpack_sbuffer_destroy(&ref);
}
END_TEST

START_TEST(codec_encode_appends_after_existing_bytes)
{
    notif_t n, back;
    herald_error_t err = {0};
    ck_assert_int_eq(
        fx_notif("{\"message_type\":\"market_halt\",\"user_id\":\"u\"}", &sb, &u, &n, &err), 0);
    msgpack_sbuffer_write(&out, "abc", 3);
    size_t off;
    long len = codec_encode(&n, &out, &off);
    ck_assert_uint_eq(out.size, 3 + (size_t)len);
    ck_assert_int_eq(codec_decode((const uint8_t *)out.data + 3, (size_t)len, &u2, &back, &err), 0);
}
END_TEST

START_TEST(codec_reports_truncation_at_every_prefix)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    fx_notif_map(&pk, model_type_find("trade_executed", 14), "u1");
    for (size_t len = 0; len < sb.size; len++) {
        herald_error_t err = {0};
        ck_assert_int_eq(
            codec_unpack((const uint8_t *)sb.data, len, HERALD_MAX_NOTIF_BYTES, &u, &err),
            -HERR_TRUNCATED);
        ck_assert_int_eq(err.code, HERR_TRUNCATED);
    }
    notif_t n;
    herald_error_t err;
    ck_assert_int_eq(
        codec_unpack((const uint8_t *)sb.data, sb.size, HERALD_MAX_NOTIF_BYTES, &u, &err), 0);
    ck_assert_int_eq(codec_notif_from_object(&u.data, &n, &err), 0);
    long len = codec_encode(&n, &out, NULL);
    for (long l = 0; l < len; l++)
        ck_assert_int_eq(codec_decode((const uint8_t *)out.data, (size_t)l, &u2, &n, &err),
                         -HERR_TRUNCATED);
}
END_TEST

START_TEST(codec_refuses_huge_container_headers_without_allocating)
{
    herald_error_t err;
    ck_assert_int_eq(codec_unpack((const uint8_t *)"\xdd\xff\xff\xff\xff", 5, 100, &u, &err),
                     -HERR_TRUNCATED);
    ck_assert_int_eq(codec_unpack((const uint8_t *)"\xdf\xff\xff\xff\xff\x01", 6, 100, &u, &err),
                     -HERR_TRUNCATED);
    ck_assert_int_eq(codec_unpack((const uint8_t *)"\xdb\xff\xff\xff\xff", 5, 100, &u, &err),
                     -HERR_TRUNCATED);
}
END_TEST

START_TEST(codec_reports_trailing_bytes)
{
    herald_error_t err;
    ck_assert_int_eq(codec_unpack((const uint8_t *)"\x80\x00", 2, 100, &u, &err), -HERR_TRAILING);
    ck_assert_int_eq(err.code, HERR_TRAILING);
}
END_TEST

START_TEST(codec_reports_malformed_bytes_and_deep_nesting)
{
    herald_error_t err;
    ck_assert_int_eq(codec_unpack((const uint8_t *)"\xc1", 1, 100, &u, &err), -HERR_MALFORMED);
    ck_assert_int_eq(codec_unpack((const uint8_t *)"\x81\xa1k\xc1", 4, 100, &u, &err),
                     -HERR_MALFORMED);
    uint8_t deep[40];
    /* msgpack-c holds 32 nested containers: 32 arrays around a nil decode, 33 do not */
    memset(deep, 0x91, 32);
    deep[32] = 0xc0;
    ck_assert_int_eq(codec_unpack(deep, 33, 100, &u, &err), 0);
    deep[32] = 0x90;
    ck_assert_int_eq(codec_unpack(deep, 33, 100, &u, &err), -HERR_MALFORMED);
    memset(deep, 0x91, sizeof deep - 1);
    deep[sizeof deep - 1] = 0xc0;
    ck_assert_int_eq(codec_unpack(deep, sizeof deep, 100, &u, &err), -HERR_MALFORMED);
    /* the unpacked object is reusable after an error */
    ck_assert_int_eq(codec_unpack((const uint8_t *)"\x91\x01", 2, 100, &u, &err), 0);
    ck_assert_int_eq(u.data.type, MSGPACK_OBJECT_ARRAY);
}
END_TEST

START_TEST(codec_refuses_input_over_the_limit)
{
    herald_error_t err;
    uint8_t buf[101] = {0};
    ck_assert_int_eq(codec_unpack(buf, 101, 100, &u, &err), -HERR_TOO_LARGE);
    ck_assert_int_eq(err.code, HERR_TOO_LARGE);
}
END_TEST

START_TEST(codec_encode_refuses_notification_over_64k)
{
    size_t big = HERALD_MAX_NOTIF_BYTES;
    char *json = malloc(big + 200);
    char *s = malloc(big + 1);
    memset(s, 'x', big);
    s[big] = '\0';
    snprintf(json, big + 200,
             "{\"message_type\":\"market_halt\",\"user_id\":\"u\",\"payload\":{\"t\":\"%s\"}}", s);
    msgpack_sbuffer_clear(&sb);
    herald_error_t err = {0};
    ck_assert_int_eq(json_to_msgpack(json, strlen(json), &sb, &err), -HERR_TOO_LARGE);
    /* the same through the native path: unpack (generous limit), validate, encode */
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 3);
    msgpack_pack_str_with_body(&pk, "message_type", 12);
    msgpack_pack_str_with_body(&pk, "market_halt", 11);
    msgpack_pack_str_with_body(&pk, "user_id", 7);
    msgpack_pack_str_with_body(&pk, "u", 1);
    msgpack_pack_str_with_body(&pk, "payload", 7);
    msgpack_pack_map(&pk, 1);
    msgpack_pack_str_with_body(&pk, "t", 1);
    msgpack_pack_str_with_body(&pk, s, big);
    notif_t n;
    ck_assert_int_eq(codec_unpack((const uint8_t *)sb.data, sb.size, 1 << 20, &u, &err), 0);
    ck_assert_int_eq(codec_notif_from_object(&u.data, &n, &err), 0);
    msgpack_sbuffer_write(&out, "abc", 3);
    ck_assert_int_eq(codec_encode(&n, &out, NULL), -HERR_TOO_LARGE);
    ck_assert_uint_eq(out.size, 3); /* nothing left behind */
    free(s);
    free(json);
}
END_TEST

/* Decode a producer map written as JSON and expect code + field. */
static void expect(const char *json, herr_t code, const char *field)
{
    notif_t n;
    herald_error_t err = {0};
    int rc = fx_notif(json, &sb, &u, &n, &err);
    ck_assert_msg(rc == -(int)code, "%s: got %d (%s) want %s", json, rc, err.message,
                  herr_code(code));
    ck_assert_int_eq(err.code, code);
    ck_assert_str_eq(err.field, field);
}

#define T(body) "{\"message_type\":\"market_halt\",\"user_id\":\"u\"," body "}"

START_TEST(codec_names_fields_of_wrong_kind)
{
    expect("{\"message_type\":\"market_halt\",\"user_id\":7}", HERR_BAD_KIND, "user_id");
    expect("{\"message_type\":1,\"user_id\":\"u\"}", HERR_BAD_KIND, "message_type");
    expect(T("\"message_id\":12"), HERR_BAD_KIND, "message_id");
    expect(T("\"priority\":\"1\""), HERR_BAD_KIND, "priority");
    expect(T("\"priority\":1.0"), HERR_BAD_KIND, "priority");
    expect(T("\"timestamp\":\"now\""), HERR_BAD_KIND, "timestamp");
    expect(T("\"timestamp\":1.5"), HERR_BAD_KIND, "timestamp");
    expect(T("\"source\":null"), HERR_BAD_KIND, "source");
    expect(T("\"payload\":[1]"), HERR_BAD_KIND, "payload");
}
END_TEST

START_TEST(codec_names_values_out_of_range)
{
    expect(T("\"priority\":4"), HERR_BAD_VALUE, "priority");
    expect(T("\"priority\":-1"), HERR_BAD_VALUE, "priority");
    expect(T("\"timestamp\":-5"), HERR_BAD_VALUE, "timestamp");
    expect("{\"message_type\":\"market_halt\",\"user_id\":\"\"}", HERR_BAD_VALUE, "user_id");
    expect(T("\"message_id\":\"\""), HERR_BAD_VALUE, "message_id");
}
END_TEST

START_TEST(codec_names_over_long_strings)
{
    char json[512], s65[66], s33[34];
    memset(s65, 'a', 65);
    s65[65] = '\0';
    memset(s33, 'b', 33);
    s33[33] = '\0';
    snprintf(json, sizeof json, T("\"message_id\":\"%s\""), s65);
    expect(json, HERR_TOO_LONG, "message_id");
    snprintf(json, sizeof json, "{\"message_type\":\"market_halt\",\"user_id\":\"%s\"}", s65);
    expect(json, HERR_TOO_LONG, "user_id");
    snprintf(json, sizeof json, T("\"source\":\"%s\""), s33);
    expect(json, HERR_TOO_LONG, "source");
    /* the bounds themselves are accepted */
    notif_t n;
    herald_error_t err;
    snprintf(json, sizeof json,
             "{\"message_type\":\"market_halt\",\"user_id\":\"%.64s\",\"message_id\":\"%.64s\","
             "\"source\":\"%.32s\"}",
             s65, s65, s33);
    ck_assert_int_eq(fx_notif(json, &sb, &u, &n, &err), 0);
    ck_assert_uint_eq(strlen(n.user_id), 64);
    ck_assert_uint_eq(strlen(n.source), 32);
}
END_TEST

START_TEST(codec_names_unknown_type_and_missing_fields)
{
    notif_t n;
    herald_error_t err;
    ck_assert_int_eq(
        fx_notif("{\"message_type\":\"order_teleported\",\"user_id\":\"u\"}", &sb, &u, &n, &err),
        -HERR_UNKNOWN_TYPE);
    ck_assert_str_eq(err.field, "message_type");
    ck_assert_ptr_nonnull(strstr(err.message, "order_teleported"));
    expect("{\"user_id\":\"u\"}", HERR_MISSING_FIELD, "message_type");
    expect("{\"message_type\":\"market_halt\"}", HERR_MISSING_FIELD, "user_id");
    expect("{\"message_type\":\"order_rejected\",\"user_id\":\"u\"}", HERR_MISSING_FIELD,
           "payload.order_id");
    expect("{\"message_type\":\"order_rejected\",\"user_id\":\"u\",\"payload\":{\"order_id\":\"o\","
           "\"instrument_id\":\"i\",\"reason\":\"r\",\"error_code\":\"E1\"}}",
           HERR_BAD_KIND, "payload.error_code");
}
END_TEST

START_TEST(codec_names_unknown_and_duplicate_fields)
{
    expect(T("\"colour\":\"red\""), HERR_BAD_VALUE, "colour");
    herald_error_t err;
    notif_t n;
    /* msgpack allows duplicate keys; a notification does not */
    const uint8_t dup[] = "\x82\xa7user_id\xa1u\xa7user_id\xa1v";
    ck_assert_int_eq(codec_unpack(dup, sizeof dup - 1, 100, &u, &err), 0);
    ck_assert_int_eq(codec_notif_from_object(&u.data, &n, &err), -HERR_BAD_VALUE);
    ck_assert_str_eq(err.field, "user_id");
}
END_TEST

START_TEST(codec_requires_a_map_with_string_keys)
{
    herald_error_t err;
    notif_t n;
    ck_assert_int_eq(codec_unpack((const uint8_t *)"\x91\x01", 2, 100, &u, &err), 0);
    ck_assert_int_eq(codec_notif_from_object(&u.data, &n, &err), -HERR_NOT_MAP);
    ck_assert_int_eq(codec_unpack((const uint8_t *)"\xa1x", 2, 100, &u, &err), 0);
    ck_assert_int_eq(codec_notif_from_object(&u.data, &n, &err), -HERR_NOT_MAP);
    ck_assert_int_eq(codec_unpack((const uint8_t *)"\x81\x01\x02", 3, 100, &u, &err), 0);
    ck_assert_int_eq(codec_notif_from_object(&u.data, &n, &err), -HERR_BAD_KIND);
}
END_TEST

START_TEST(codec_decode_is_strict_about_records)
{
    herald_error_t err;
    notif_t n;
    /* a producer map is not a record: broker fields are missing */
    fx_json(&sb, "{\"message_type\":\"market_halt\",\"user_id\":\"u\"}");
    ck_assert_int_eq(codec_decode((const uint8_t *)sb.data, sb.size, &u2, &n, &err),
                     -HERR_MISSING_FIELD);
    fx_json(
        &sb,
        "{\"type\":\"notification\",\"seq\":1,\"message_id\":\"m\",\"message_type\":\"market_"
        "halt\","
        "\"channel\":\"trade\",\"user_id\":\"u\",\"priority\":3,\"timestamp\":1,\"source\":\"\","
        "\"payload\":{}}");
    ck_assert_int_eq(codec_decode((const uint8_t *)sb.data, sb.size, &u2, &n, &err),
                     -HERR_BAD_VALUE);
    ck_assert_str_eq(err.field, "channel");
    fx_json(
        &sb,
        "{\"type\":\"welcome\",\"seq\":1,\"message_id\":\"m\",\"message_type\":\"market_halt\","
        "\"channel\":\"system\",\"user_id\":\"u\",\"priority\":3,\"timestamp\":1,\"source\":\"\","
        "\"payload\":{}}");
    ck_assert_int_eq(codec_decode((const uint8_t *)sb.data, sb.size, &u2, &n, &err),
                     -HERR_BAD_VALUE);
    ck_assert_str_eq(err.field, "type");
    msgpack_sbuffer_write(&sb, "\x00", 1);
    ck_assert_int_eq(codec_decode((const uint8_t *)sb.data, sb.size, &u2, &n, &err),
                     -HERR_TRAILING);
}
END_TEST

START_TEST(codec_error_codes_are_distinct)
{
    const herr_t codes[] = {HERR_TRUNCATED, HERR_MALFORMED, HERR_NOT_MAP,      HERR_BAD_KIND,
                            HERR_TOO_LONG,  HERR_TOO_LARGE, HERR_UNKNOWN_TYPE, HERR_MISSING_FIELD,
                            HERR_BAD_VALUE, HERR_TRAILING};
    size_t n = sizeof codes / sizeof codes[0];
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++) {
            ck_assert_int_ne(codes[i], codes[j]);
            ck_assert_str_ne(herr_code(codes[i]), herr_code(codes[j]));
        }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("codec");
    TCase *tc = tcase_create("codec");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, codec_round_trips_every_type);
    tcase_add_test(tc, codec_round_trips_broadcast_user);
    tcase_add_test(tc, codec_applies_defaults_for_absent_fields);
    tcase_add_test(tc, codec_ignores_broker_fields_from_producers);
    tcase_add_test(tc, codec_seq_is_fixed_width_at_documented_offset);
    tcase_add_test(tc, codec_encodes_payload_exactly_as_msgpack_c);
    tcase_add_test(tc, codec_encode_appends_after_existing_bytes);
    tcase_add_test(tc, codec_reports_truncation_at_every_prefix);
    tcase_add_test(tc, codec_refuses_huge_container_headers_without_allocating);
    tcase_add_test(tc, codec_reports_trailing_bytes);
    tcase_add_test(tc, codec_reports_malformed_bytes_and_deep_nesting);
    tcase_add_test(tc, codec_refuses_input_over_the_limit);
    tcase_add_test(tc, codec_encode_refuses_notification_over_64k);
    tcase_add_test(tc, codec_names_fields_of_wrong_kind);
    tcase_add_test(tc, codec_names_values_out_of_range);
    tcase_add_test(tc, codec_names_over_long_strings);
    tcase_add_test(tc, codec_names_unknown_type_and_missing_fields);
    tcase_add_test(tc, codec_names_unknown_and_duplicate_fields);
    tcase_add_test(tc, codec_requires_a_map_with_string_keys);
    tcase_add_test(tc, codec_decode_is_strict_about_records);
    tcase_add_test(tc, codec_error_codes_are_distinct);
    suite_add_tcase(s, tc);
    return check_run_suite(s);
}
