/* test_codec_scan.c - the direct ingest path (codec_check .. codec_encode_to) accepts, refuses
 * and encodes exactly as the object path (codec_unpack, codec_notif_from_object,
 * model_validate_payload, codec_encode) does for the same bytes. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "check_run.h"
#include "notif_fixture.h"
#include "scan_paths.h"

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
    tcase_add_checked_fixture(tc, scan_paths_setup, scan_paths_teardown);
    tcase_add_test(tc, scan_accepts_every_type_as_the_object_path);
    tcase_add_test(tc, scan_refuses_every_payload_schema_error_as_the_object_path);
    tcase_add_test(tc, scan_refuses_every_field_error_as_the_object_path);
    tcase_add_test(tc, scan_reencodes_non_minimal_encodings_as_put_object);
    tcase_add_test(tc, scan_finds_payload_fields_in_any_order_and_first_duplicate_from_hint);
    tcase_add_test(tc, scan_handles_nested_payloads_bin_ext_and_many_entries);
    tcase_add_test(tc, scan_generates_a_message_id_and_applies_defaults);
    tcase_add_test(tc, scan_refuses_a_nul_at_any_position_of_a_string_field);
    suite_add_tcase(s, tc);
    return check_run_suite(s);
}
