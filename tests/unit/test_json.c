/* test_json.c - JSON string escaping, msgpack rendering, JSON input, client ops. */
#include <check.h>
#include <float.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check_run.h"
#include "clientop.h"
#include "notif_fixture.h"

static jbuf_t jb;

static void setup(void)
{
    jbuf_init(&jb, 16);
}

static void teardown(void)
{
    jbuf_free(&jb);
}

/* Render s[0..n) as a JSON string and return it NUL-terminated (in jb). */
static const char *str_json(const char *s, size_t n)
{
    jbuf_reset(&jb);
    json_put_str(&jb, s, n);
    jbuf_putc(&jb, '\0');
    return jb.data;
}

/* Re-parse a JSON string literal with jansson (strict, validates UTF-8); returns the
 * decoded value in out (cap bytes) and its length. */
static size_t reparse(const char *lit, char *out, size_t cap)
{
    char doc[4096];
    snprintf(doc, sizeof doc, "[%s]", lit);
    json_error_t e;
    json_t *j = json_loads(doc, JSON_ALLOW_NUL, &e);
    ck_assert_msg(j != NULL, "jansson refused %s: %s", lit, e.text);
    json_t *s = json_array_get(j, 0);
    size_t n = json_string_length(s);
    ck_assert_uint_lt(n, cap);
    memcpy(out, json_string_value(s), n);
    json_decref(j);
    return n;
}

START_TEST(json_escapes_quotes_and_backslashes)
{
    ck_assert_str_eq(str_json("a\"b\\c/", 6), "\"a\\\"b\\\\c/\"");
    ck_assert_str_eq(str_json("", 0), "\"\"");
}
END_TEST

START_TEST(json_escapes_every_control_character)
{
    for (int c = 0; c < 0x20; c++) {
        char in[3] = {'x', (char)c, 'y'}, want[16], back[8];
        const char *shortesc;
        switch (c) {
        case '\b':
            shortesc = "\\b";
            break;
        case '\f':
            shortesc = "\\f";
            break;
        case '\n':
            shortesc = "\\n";
            break;
        case '\r':
            shortesc = "\\r";
            break;
        case '\t':
            shortesc = "\\t";
            break;
        default:
            shortesc = NULL;
        }
        if (shortesc)
            snprintf(want, sizeof want, "\"x%sy\"", shortesc);
        else
            snprintf(want, sizeof want, "\"x\\u%04xy\"", c);
        const char *got = str_json(in, 3);
        ck_assert_str_eq(got, want);
        ck_assert_uint_eq(reparse(got, back, sizeof back), 3);
        ck_assert_mem_eq(back, in, 3);
    }
    /* DEL is legal in JSON strings and passes through */
    ck_assert_str_eq(str_json("\x7f", 1), "\"\x7f\"");
}
END_TEST

START_TEST(json_passes_valid_multibyte_utf8)
{
    const char *ok[] = {"\xc3\xa9",     "\xe2\x82\xac", "\xf0\x9d\x84\x9e", "\xf4\x8f\xbf\xbf",
                        "\xef\xbf\xbf", "\xed\x9f\xbf", "\xee\x80\x80",     "\xc2\x80"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        char want[16], back[16];
        snprintf(want, sizeof want, "\"%s\"", ok[i]);
        ck_assert_str_eq(str_json(ok[i], strlen(ok[i])), want);
        size_t n = reparse(jb.data, back, sizeof back);
        ck_assert_uint_eq(n, strlen(ok[i]));
    }
}
END_TEST

START_TEST(json_replaces_each_invalid_utf8_class)
{
#define R "\xef\xbf\xbd"
    const struct {
        const char *in, *want;
    } cases[] = {
        {"\x80", R}, /* stray continuation */
        {"a\xbf"
         "b",
         "a" R "b"},                   /* stray continuation inside text */
        {"\xc0\xaf", R R},             /* overlong 2-byte lead */
        {"\xc1\xbf", R R},             /* overlong 2-byte lead */
        {"\xe0\x80\xaf", R R R},       /* overlong 3-byte */
        {"\xf0\x80\x80\xaf", R R R R}, /* overlong 4-byte */
        {"\xed\xa0\x80", R R R},       /* UTF-16 surrogate */
        {"\xed\xbf\xbf", R R R},       /* UTF-16 surrogate */
        {"\xf4\x90\x80\x80", R R R R}, /* above U+10FFFF */
        {"\xf5\x80\x80\x80", R R R R}, /* lead > 0xF4 */
        {"\xff", R},                   /* never valid */
        {"\xfe", R},                   /* never valid */
        {"\xe2\x82", R},               /* truncated at the end */
        {"\xe2\x82"
         "A",
         R "A"},                        /* truncated before ASCII */
        {"\xf0\x9d\x84", R},            /* truncated 4-byte */
        {"\xc3", R},                    /* truncated 2-byte */
        {"\xc3\xa9\xc3", "\xc3\xa9" R}, /* valid then truncated */
    };
#undef R
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char want[64], back[64];
        snprintf(want, sizeof want, "\"%s\"", cases[i].want);
        ck_assert_str_eq(str_json(cases[i].in, strlen(cases[i].in)), want);
        reparse(jb.data, back, sizeof back);
    }
}
END_TEST

START_TEST(json_output_of_random_bytes_is_valid_json)
{
    unsigned seed = 12345;
    char in[64], back[1024];
    for (int round = 0; round < 5000; round++) {
        size_t n = (size_t)(rand_r(&seed) % (int)sizeof in);
        for (size_t i = 0; i < n; i++)
            in[i] = (char)rand_r(&seed);
        str_json(in, n);
        reparse(jb.data, back, sizeof back);
    }
}
END_TEST

/* Render msgpack bytes as JSON text (NUL-terminated in jb). */
static const char *mp_json(const char *bytes, size_t n)
{
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    ck_assert_int_eq(codec_unpack((const uint8_t *)bytes, n, 1 << 20, &u, NULL), 0);
    jbuf_reset(&jb);
    json_put_msgpack(&jb, &u.data);
    jbuf_putc(&jb, '\0');
    msgpack_unpacked_destroy(&u);
    return jb.data;
}

#define MP(lit) mp_json(lit, sizeof lit - 1)

START_TEST(json_renders_every_msgpack_kind)
{
    ck_assert_str_eq(MP("\xc0"), "null");
    ck_assert_str_eq(MP("\xc3"), "true");
    ck_assert_str_eq(MP("\xc2"), "false");
    ck_assert_str_eq(MP("\x00"), "0");
    ck_assert_str_eq(MP("\xcf\xff\xff\xff\xff\xff\xff\xff\xff"), "18446744073709551615");
    ck_assert_str_eq(MP("\xd3\x80\x00\x00\x00\x00\x00\x00\x00"), "-9223372036854775808");
    ck_assert_str_eq(MP("\xff"), "-1");
    ck_assert_str_eq(MP("\xcb\x3f\xb9\x99\x99\x99\x99\x99\x9a"), "0.1");
    ck_assert_str_eq(MP("\xcb\x3f\xf0\x00\x00\x00\x00\x00\x00"), "1.0");
    ck_assert_str_eq(MP("\xca\x3f\xc0\x00\x00"), "1.5");
    ck_assert_str_eq(MP("\xcb\x7f\xf8\x00\x00\x00\x00\x00\x00"), "null"); /* NaN */
    ck_assert_str_eq(MP("\xcb\x7f\xf0\x00\x00\x00\x00\x00\x00"), "null"); /* +inf */
    ck_assert_str_eq(MP("\xcb\xff\xf0\x00\x00\x00\x00\x00\x00"), "null"); /* -inf */
    ck_assert_str_eq(MP("\xa3"
                        "a\"b"),
                     "\"a\\\"b\"");
    ck_assert_str_eq(MP("\xc4\x02"
                        "a\x01"),
                     "\"a\\u0001\"");
    ck_assert_str_eq(MP("\xd4\x01\x02"), "null"); /* ext */
    ck_assert_str_eq(MP("\x92\x90\x80"), "[[],{}]");
    ck_assert_str_eq(MP("\x82\xa1k\x91\xc0\x01\xa1v"), "{\"k\":[null],\"1\":\"v\"}");
    ck_assert_str_eq(MP("\x81\x91\x01\x02"), "{\"[1]\":2}");
    ck_assert_str_eq(MP("\x81\xa3k\x00y\x01"), "{\"k\\u0000y\":1}");
    ck_assert_str_eq(MP("\x82\xc3\x01\xcb\x3f\xf8\x00\x00\x00\x00\x00\x00\x02"),
                     "{\"true\":1,\"1.5\":2}");
    /* a map key inside a map key is not stringified again */
    ck_assert_str_eq(MP("\x81\x81\x81\x01\x02\x03\x04"), "{\"{\\\"{...}\\\":3}\":4}");
}
END_TEST

START_TEST(json_nested_map_keys_render_in_linear_size)
{
    /* 30 maps, each the single key of the next: naive stringifying doubles per level */
    char in[64];
    memset(in, 0x81, 30);
    in[30] = 0x01;
    for (int i = 31; i < 61; i++)
        in[i] = 0x02;
    const char *out = mp_json(in, 61);
    ck_assert_uint_lt(strlen(out), 400);
}
END_TEST

START_TEST(json_floats_round_trip_exactly)
{
    const double vals[] = {
        0.1,   0.1 + 0.2,           1.0 / 3, DBL_MAX, DBL_MIN, 5e-324, -0.0, 3521.25, 1e21,
        -1e-7, 123456789012345678.0};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        msgpack_object o = {.type = MSGPACK_OBJECT_FLOAT64, .via.f64 = vals[i]};
        jbuf_reset(&jb);
        jbuf_putc(&jb, '[');
        json_put_msgpack(&jb, &o);
        jbuf_put(&jb, "]", 2);
        json_error_t e;
        json_t *j = json_loads(jb.data, 0, &e);
        ck_assert_msg(j != NULL, "%s: %s", jb.data, e.text);
        ck_assert_msg(json_is_real(json_array_get(j, 0)), "%s is not a real", jb.data);
        ck_assert_msg(json_real_value(json_array_get(j, 0)) == vals[i], "%s", jb.data);
        json_decref(j);
    }
}
END_TEST

static const char *double_json(double v)
{
    msgpack_object o = {.type = MSGPACK_OBJECT_FLOAT64, .via.f64 = v};
    jbuf_reset(&jb);
    json_put_msgpack(&jb, &o);
    jbuf_putc(&jb, '\0');
    return jb.data;
}

START_TEST(json_writes_short_decimals_for_common_prices)
{
    ck_assert_str_eq(double_json(3521.2), "3521.2");
    ck_assert_str_eq(double_json(0.3), "0.3");
    ck_assert_str_eq(double_json(-1.25), "-1.25");
    ck_assert_str_eq(double_json(100.0), "100.0");
    ck_assert_str_eq(double_json(-0.0), "-0.0");
    ck_assert_str_eq(double_json(0.005), "0.005");
    ck_assert_str_eq(double_json(0.1 + 0.2), "0.30000000000000004");
    ck_assert_str_eq(double_json(1e21), "1e+21");
}
END_TEST

START_TEST(json_random_doubles_round_trip)
{
    unsigned seed = 777;
    for (int i = 0; i < 200000; i++) {
        double v;
        if (i & 1) {
            uint64_t bits = ((uint64_t)rand_r(&seed) << 42) ^ ((uint64_t)rand_r(&seed) << 21) ^
                            (uint64_t)rand_r(&seed);
            memcpy(&v, &bits, sizeof v);
            if (!isfinite(v)) continue;
        } else {
            v = (double)(rand_r(&seed) % 100000000) / pow(10, rand_r(&seed) % 12);
        }
        const char *t = double_json(v);
        char *end;
        double back = strtod(t, &end);
        ck_assert_msg(*end == '\0' && back == v && signbit(back) == signbit(v), "%.17g -> %s", v,
                      t);
        ck_assert_msg(strpbrk(t, ".e") != NULL, "%s reads back as an integer", t);
    }
}
END_TEST

START_TEST(json_renders_the_spec_notification_frame)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    notif_t n;
    herald_error_t err;
    ck_assert_int_eq(fx_notif("{\"message_id\":\"m\\\"1\",\"message_type\":\"trade_canceled\","
                              "\"user_id\":\"u1\",\"timestamp\":1764000000000000000,"
                              "\"source\":\"MatchingEngine\",\"payload\":{\"trade_id\":\"t9\","
                              "\"price\":12.5,\"volume\":3}}",
                              &sb, &u, &n, &err),
                     0);
    n.seq = 17;
    jbuf_reset(&jb);
    json_render_notif(&jb, &n);
    jbuf_putc(&jb, '\0');
    ck_assert_str_eq(jb.data, "{\"type\":\"notification\",\"seq\":17,\"message_id\":\"m\\\"1\","
                              "\"message_type\":\"trade_canceled\",\"channel\":\"trade\","
                              "\"user_id\":\"u1\",\"priority\":1,\"timestamp\":1764000000000000000,"
                              "\"source\":\"MatchingEngine\",\"payload\":{\"trade_id\":\"t9\","
                              "\"price\":12.5,\"volume\":3}}");
    ck_assert_ptr_eq(jb.data, jb.base + 16); /* headroom kept */
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&sb);
}
END_TEST

START_TEST(json_input_round_trips_through_msgpack)
{
    const char *docs[] = {
        "{\"a\":1,\"b\":[true,false,null],\"c\":\"x\\u00e9\\n\",\"d\":-5,\"f\":{\"g\":{}}}",
        "[{\"x\":9223372036854775807},{\"y\":-9223372036854775808},[]]",
        "{}",
    };
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        msgpack_sbuffer_clear(&sb);
        herald_error_t err;
        ck_assert_int_eq(json_to_msgpack(docs[i], strlen(docs[i]), &sb, &err), 0);
        const char *back = mp_json(sb.data, sb.size);
        json_t *a = json_loads(docs[i], 0, NULL), *b = json_loads(back, 0, NULL);
        ck_assert_msg(json_equal(a, b), "%s -> %s", docs[i], back);
        json_decref(a);
        json_decref(b);
    }
    /* integers stay integers, reals become float64 */
    msgpack_sbuffer_clear(&sb);
    ck_assert_int_eq(json_to_msgpack("[1,1.0]", 7, &sb, NULL), 0);
    ck_assert_mem_eq(sb.data, "\x92\x01\xcb\x3f\xf0\x00\x00\x00\x00\x00\x00", 11);
    msgpack_sbuffer_destroy(&sb);
}
END_TEST

static void expect_bad_json(const char *text, herr_t code, const char *in_msg)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    herald_error_t err = {0};
    ck_assert_int_eq(json_to_msgpack(text, strlen(text), &sb, &err), -(int)code);
    ck_assert_msg(strstr(err.message, in_msg), "'%s' not in '%s'", in_msg, err.message);
    ck_assert_uint_eq(sb.size, 0);
    msgpack_sbuffer_destroy(&sb);
}

START_TEST(json_input_errors_name_line_and_column)
{
    expect_bad_json("{\"a\":1,}", HERR_MALFORMED, "line 1, column 8");
    expect_bad_json("{\n  \"a\": tru\n}", HERR_MALFORMED, "line 2");
    expect_bad_json("{\"a\":1,\"a\":2}", HERR_MALFORMED, "duplicate");
    expect_bad_json("42", HERR_MALFORMED, "line 1");
    expect_bad_json("", HERR_MALFORMED, "line");
    expect_bad_json("{\"a\":\"\xff\"}", HERR_MALFORMED, "line 1");
    expect_bad_json("{\"a\":\"\\u0000\"}", HERR_MALFORMED, "line 1");
    expect_bad_json("{\"a\":1} x", HERR_MALFORMED, "line 1");
}
END_TEST

START_TEST(json_input_refuses_an_object_over_64k_but_not_an_array)
{
    size_t n = HERALD_MAX_NOTIF_BYTES + 10;
    char *text = malloc(n + 32);
    int k = snprintf(text, n + 32, "{\"a\":\"");
    memset(text + k, 'x', n);
    strcpy(text + k + n, "\"}");
    expect_bad_json(text, HERR_TOO_LARGE, "limit");
    strcpy(text + k + n, "\"]");
    memcpy(text, "[    \"", 6);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    ck_assert_int_eq(json_to_msgpack(text, strlen(text), &sb, NULL), 0);
    msgpack_sbuffer_destroy(&sb);
    free(text);
}
END_TEST

static void op_ok(const char *json, client_op_kind_t kind, uint32_t channels, uint64_t since)
{
    client_op_t op;
    herald_error_t err = {0};
    ck_assert_msg(clientop_parse_json(json, strlen(json), &op, &err) == 0, "%s: %s", json,
                  err.message);
    ck_assert_int_eq(op.kind, kind);
    ck_assert_uint_eq(op.channels, channels);
    ck_assert_uint_eq(op.since, since);
    /* the same op as msgpack */
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    fx_json(&sb, json);
    client_op_t op2;
    ck_assert_int_eq(clientop_parse_msgpack((const uint8_t *)sb.data, sb.size, &op2, &err), 0);
    ck_assert_int_eq(op2.kind, kind);
    ck_assert_uint_eq(op2.channels, channels);
    ck_assert_uint_eq(op2.since, since);
    msgpack_sbuffer_destroy(&sb);
}

static void op_bad(const char *json, herr_t code, const char *field)
{
    client_op_t op;
    herald_error_t err = {0};
    ck_assert_int_eq(clientop_parse_json(json, strlen(json), &op, &err), -(int)code);
    ck_assert_str_eq(err.field, field);
    if (code == HERR_MALFORMED) return;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    fx_json(&sb, json);
    ck_assert_int_eq(clientop_parse_msgpack((const uint8_t *)sb.data, sb.size, &op, &err),
                     -(int)code);
    ck_assert_str_eq(err.field, field);
    msgpack_sbuffer_destroy(&sb);
}

START_TEST(clientop_parses_every_op)
{
    op_ok("{\"op\":\"subscribe\",\"channels\":[\"trade\",\"risk\"]}", OP_SUBSCRIBE,
          (1u << CH_TRADE) | (1u << CH_RISK), 0);
    op_ok("{\"op\":\"subscribe\",\"channels\":[\"trade\",\"account\",\"position\",\"risk\","
          "\"system\"]}",
          OP_SUBSCRIBE, 0x1f, 0);
    op_ok("{\"op\":\"unsubscribe\",\"channels\":[\"system\"]}", OP_UNSUBSCRIBE, 1u << CH_SYSTEM, 0);
    op_ok("{\"op\":\"unsubscribe\",\"channels\":[]}", OP_UNSUBSCRIBE, 0, 0);
    op_ok("{\"op\":\"resume\",\"since\":42}", OP_RESUME, 0, 42);
    op_ok("{\"op\":\"resume\",\"since\":0}", OP_RESUME, 0, 0);
    op_ok("{\"op\":\"ping\"}", OP_PING, 0, 0);
    op_ok("{\"id\":7,\"op\":\"ping\"}", OP_PING, 0, 0);
    op_ok("{\"op\":\"refresh\",\"token\":\"a.b.c\"}", OP_REFRESH, 0, 0);
    op_ok("{\"op\":\"ack\",\"seq\":17}", OP_ACK, 0, 0);
    op_ok("{\"op\":\"acks\",\"on\":true}", OP_ACKS, 0, 0);
    client_op_t op;
    herald_error_t err;
    const char *ack = "{\"op\":\"ack\",\"seq\":9223372036854775807}";
    ck_assert_int_eq(clientop_parse_json(ack, strlen(ack), &op, &err), 0);
    ck_assert_uint_eq(op.seq, (uint64_t)INT64_MAX);
    const char *off = "{\"op\":\"acks\",\"on\":false}";
    ck_assert_int_eq(clientop_parse_json(off, strlen(off), &op, &err), 0);
    ck_assert(!op.on);
    const char *json = "{\"op\":\"refresh\",\"token\":\"eyJ.eyJ.sig\"}";
    ck_assert_int_eq(clientop_parse_json(json, strlen(json), &op, &err), 0);
    ck_assert_uint_eq(op.token_len, 11);
    ck_assert_mem_eq(op.token, "eyJ.eyJ.sig", 11);
}
END_TEST

START_TEST(clientop_names_what_is_wrong)
{
    op_bad("{\"op\":", HERR_MALFORMED, "");
    op_bad("[\"ping\"]", HERR_NOT_MAP, "");
    op_bad("{\"channels\":[]}", HERR_MISSING_FIELD, "op");
    op_bad("{\"op\":5}", HERR_BAD_KIND, "op");
    op_bad("{\"op\":\"dance\"}", HERR_UNKNOWN_OP, "op");
    op_bad("{\"op\":\"subscribe\"}", HERR_MISSING_FIELD, "channels");
    op_bad("{\"op\":\"subscribe\",\"channels\":\"trade\"}", HERR_BAD_KIND, "channels");
    op_bad("{\"op\":\"subscribe\",\"channels\":[1]}", HERR_BAD_KIND, "channels");
    op_bad("{\"op\":\"unsubscribe\",\"channels\":[\"trade\",\"bogus\"]}", HERR_BAD_VALUE,
           "channels");
    op_bad("{\"op\":\"resume\"}", HERR_MISSING_FIELD, "since");
    op_bad("{\"op\":\"resume\",\"since\":-1}", HERR_BAD_VALUE, "since");
    op_bad("{\"op\":\"resume\",\"since\":\"1\"}", HERR_BAD_KIND, "since");
    op_bad("{\"op\":\"resume\",\"since\":1.5}", HERR_BAD_KIND, "since");
    op_bad("{\"op\":\"refresh\"}", HERR_MISSING_FIELD, "token");
    op_bad("{\"op\":\"refresh\",\"token\":7}", HERR_BAD_KIND, "token");
    op_bad("{\"op\":\"refresh\",\"token\":\"\"}", HERR_BAD_VALUE, "token");
    op_bad("{\"op\":\"ack\"}", HERR_MISSING_FIELD, "seq");
    op_bad("{\"op\":\"ack\",\"seq\":0}", HERR_BAD_VALUE, "seq");
    op_bad("{\"op\":\"ack\",\"seq\":-3}", HERR_BAD_VALUE, "seq");
    op_bad("{\"op\":\"ack\",\"seq\":\"3\"}", HERR_BAD_KIND, "seq");
    op_bad("{\"op\":\"acks\"}", HERR_MISSING_FIELD, "on");
    op_bad("{\"op\":\"acks\",\"on\":1}", HERR_BAD_KIND, "on");
    client_op_t op;
    herald_error_t err;
    ck_assert_int_eq(clientop_parse_msgpack((const uint8_t *)"\x81\xa2op", 4, &op, &err),
                     -HERR_TRUNCATED);
    ck_assert_int_eq(clientop_parse_msgpack((const uint8_t *)"\x80\x80", 2, &op, &err),
                     -HERR_TRAILING);
    static char big[8192];
    memset(big, ' ', sizeof big);
    memcpy(big, "{\"op\":\"ping\"}", 13);
    ck_assert_int_eq(clientop_parse_json(big, sizeof big, &op, &err), -HERR_TOO_LARGE);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("json");
    TCase *tc = tcase_create("json");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, json_escapes_quotes_and_backslashes);
    tcase_add_test(tc, json_escapes_every_control_character);
    tcase_add_test(tc, json_passes_valid_multibyte_utf8);
    tcase_add_test(tc, json_replaces_each_invalid_utf8_class);
    tcase_add_test(tc, json_output_of_random_bytes_is_valid_json);
    tcase_add_test(tc, json_renders_every_msgpack_kind);
    tcase_add_test(tc, json_nested_map_keys_render_in_linear_size);
    tcase_add_test(tc, json_floats_round_trip_exactly);
    tcase_add_test(tc, json_writes_short_decimals_for_common_prices);
    tcase_add_test(tc, json_random_doubles_round_trip);
    tcase_add_test(tc, json_renders_the_spec_notification_frame);
    tcase_add_test(tc, json_input_round_trips_through_msgpack);
    tcase_add_test(tc, json_input_errors_name_line_and_column);
    tcase_add_test(tc, json_input_refuses_an_object_over_64k_but_not_an_array);
    tcase_add_test(tc, clientop_parses_every_op);
    tcase_add_test(tc, clientop_names_what_is_wrong);
    suite_add_tcase(s, tc);
    return check_run_suite(s);
}
