/* test_json_in.c - JSON input (json_to_msgpack, common/json_in.c) against jansson + msgpack-c. */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_run.h"
#include "json.h"
#include "json_oracle.h"

static msgpack_sbuffer sb, ref;

static void setup(void)
{
    msgpack_sbuffer_init(&sb);
    msgpack_sbuffer_init(&ref);
}

static void teardown(void)
{
    msgpack_sbuffer_destroy(&sb);
    msgpack_sbuffer_destroy(&ref);
}

/* Convert text[0..len) with both; they must agree on the verdict and, if accepted, on every
 * byte. Returns the verdict (0 or -code); err gets json_to_msgpack's error. */
static int both(const char *text, size_t len, herald_error_t *err)
{
    herald_error_t rerr;
    msgpack_sbuffer_clear(&sb);
    msgpack_sbuffer_clear(&ref);
    /* an exact-size copy, so a read past len trips ASan */
    char *copy = malloc(len ? len : 1);
    ck_assert_ptr_nonnull(copy);
    memcpy(copy, text, len);
    int rc = json_to_msgpack(copy, len, &sb, err);
    int rrc = oracle_json_to_msgpack(copy, len, &ref, &rerr);
    free(copy);
    ck_assert_msg(rc == rrc, "%.60s: ours %d (%s), jansson %d (%s)", text, rc,
                  rc ? err->message : "", rrc, rrc ? rerr.message : "");
    ck_assert_uint_eq(sb.size, ref.size);
    ck_assert_msg(!sb.size || !memcmp(sb.data, ref.data, sb.size), "%.60s: bytes differ", text);
    /* and on where a syntax error is (the oracle gives no place for a raw NUL) */
    int line = 0, rline = 0, col = 0, rcol = 0;
    const char *at = "invalid JSON at line %d, column %d";
    if (rc == -HERR_MALFORMED && sscanf(rerr.message, at, &rline, &rcol) == 2) {
        ck_assert_int_eq(sscanf(err->message, at, &line, &col), 2);
        ck_assert_msg(line == rline && col == rcol, "%.60s: '%s' vs jansson '%s'", text,
                      err->message, rerr.message);
    }
    return rc;
}

static void accepted(const char *text)
{
    herald_error_t err;
    ck_assert_msg(both(text, strlen(text), &err) == 0, "%.60s refused: %s", text, err.message);
}

/* Refused with HERR_MALFORMED, the message holding `want`. */
static void refused(const char *text, size_t len, const char *want)
{
    herald_error_t err = {0};
    ck_assert_int_eq(both(text, len, &err), -HERR_MALFORMED);
    ck_assert_msg(strncmp(err.message, "invalid JSON at line ", 21) == 0, "%s", err.message);
    ck_assert_msg(strstr(err.message, want), "'%s' not in '%s'", want, err.message);
}

#define REFUSED(lit, want) refused(lit, sizeof(lit) - 1, want)

START_TEST(json_in_accepts_rfc8259_documents_with_msgpack_c_bytes)
{
    accepted("{}");
    accepted("[]");
    accepted(" \t\r\n{ \"a\" : [ 1 , 2 ] , \"b\" : { } } \n");
    accepted("[true,false,null,\"\",0,-1,1.5,-0.0,1e2,1E-2,1e+2,0.000123]");
    accepted(
        "{\"message_id\":\"0000000000000a3f\",\"message_type\":\"system_notice\","
        "\"user_id\":\"user17\",\"priority\":1,\"source\":\"bench\",\"payload\":{\"title\":"
        "\"bench\",\"level\":\"info\",\"content\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}}");
    accepted("[[[[[[]]]]],{\"a\":{\"b\":{\"c\":[{}]}}}]");
    accepted("{\"a\":{\"a\":1},\"b\":{\"a\":2}}"); /* same key in different objects */
    accepted("[\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xef\xbf\xbf\xf4\x8f\xbf\xbf\"]");
}
END_TEST

START_TEST(json_in_refuses_what_jansson_refuses)
{
    REFUSED("42", "'[' or '{' expected");
    REFUSED("\"x\"", "'[' or '{' expected");
    REFUSED("true", "'[' or '{' expected");
    REFUSED("", "'[' or '{' expected near end of file");
    REFUSED("  \n", "'[' or '{' expected");
    REFUSED("\xef\xbb\xbf{}", "'[' or '{' expected"); /* no byte order mark */
    REFUSED("{\"a\":1,}", "string or '}' expected near '}'");
    REFUSED("[1,]", "unexpected token near ']'");
    REFUSED("[,1]", "unexpected token");
    REFUSED("[1 2]", "']' expected");
    REFUSED("{\"a\" 1}", "':' expected");
    REFUSED("{\"a\":}", "unexpected token");
    REFUSED("{1:2}", "string or '}' expected");
    REFUSED("[1 /* c */]", "']' expected");
    REFUSED("[1] // c", "end of file expected");
    REFUSED("[NaN]", "invalid token");
    REFUSED("[Infinity]", "invalid token");
    REFUSED("[-Infinity]", "invalid token");
    REFUSED("[truex]", "invalid token near 'truex'");
    REFUSED("[nul]", "invalid token");
    REFUSED("['a']", "invalid token");
    REFUSED("{\"a\":1} x", "end of file expected near 'x'");
    REFUSED("{\"a\":1}{}", "end of file expected");
    REFUSED("[1,2", "']' expected near end of file");
    REFUSED("{\"a\":[", "unexpected token near end of file");
    REFUSED("[\"abc", "premature end of input");
    REFUSED("[\"a\\", "premature end of input");
    REFUSED("[\f]", "invalid token");
    REFUSED("[\v1]", "invalid token");
    REFUSED("[1]\0", "");    /* a raw NUL is never JSON */
    REFUSED("[1\0]", "");    /* (jansson 2.14 skips this one) */
    REFUSED("[true\0]", ""); /* (and this one) */
}
END_TEST

START_TEST(json_in_reads_numbers_as_jansson_does)
{
    REFUSED("[01]", "invalid token");
    REFUSED("[-01]", "invalid token");
    REFUSED("[1.]", "invalid token");
    REFUSED("[.5]", "invalid token");
    REFUSED("[1e]", "invalid token");
    REFUSED("[1e+]", "invalid token");
    REFUSED("[+1]", "invalid token");
    REFUSED("[-]", "invalid token");
    REFUSED("[--1]", "invalid token");
    REFUSED("[0x10]", "']' expected");
    REFUSED("[1.5.2]", "']' expected");
    /* -0 is the integer 0; -0.0 is a real */
    accepted("[-0,-0.0,0e0,-0e-0]");
    herald_error_t err;
    ck_assert_int_eq(both("[-0]", 4, &err), 0);
    ck_assert_mem_eq(sb.data, "\x91\x00", 2);
    /* underflow is accepted (0 or subnormal), overflow refused */
    accepted("[1e-400,-1e-400,4.9e-324,2.4e-324,2.2250738585072011e-308]");
    REFUSED("[1e400]", "real number overflow near '1e400'");
    REFUSED("[-1e400]", "real number overflow");
    REFUSED("[1.7976931348623159e308]", "real number overflow");
    accepted("[1.7976931348623157e308,1.7976931348623158e308]");
    accepted("[0e99999999999999999999,1e-99999999999999999999]");
}
END_TEST

START_TEST(json_in_packs_int64_edges_as_msgpack_pack_int64)
{
    static const int64_t v[] = {0,
                                1,
                                31,
                                32,
                                127,
                                128,
                                255,
                                256,
                                65535,
                                65536,
                                4294967295LL,
                                4294967296LL,
                                INT64_MAX,
                                -1,
                                -32,
                                -33,
                                -128,
                                -129,
                                -32768,
                                -32769,
                                -2147483648LL,
                                -2147483649LL,
                                INT64_MIN};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        char text[64];
        snprintf(text, sizeof text, "[%lld]", (long long)v[i]);
        accepted(text);
        msgpack_sbuffer want;
        msgpack_sbuffer_init(&want);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &want, msgpack_sbuffer_write);
        msgpack_pack_array(&pk, 1);
        msgpack_pack_int64(&pk, v[i]);
        ck_assert_uint_eq(sb.size, want.size);
        ck_assert_mem_eq(sb.data, want.data, want.size);
        msgpack_sbuffer_destroy(&want);
    }
    REFUSED("[9223372036854775808]", "too big integer");
    REFUSED("[-9223372036854775809]", "too big negative integer");
    REFUSED("[123456789012345678901234567890]", "too big integer");
    REFUSED("{\"a\":-99999999999999999999}", "too big negative integer");
}
END_TEST

/* xorshift64*, so runs repeat */
static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 2685821657736338717ull;
}

START_TEST(json_in_reads_reals_bit_exact_as_strtod)
{
    static const char *fmt[] = {"[%.17g]", "[%.15g]", "[%.6e]", "[%.3f]", "[%.20e]"};
    char text[512];
    for (int i = 0; i < 60000; i++) {
        double d;
        uint64_t bits = rnd();
        if (i % 3 == 0) { /* prices and other short decimals */
            d = (double)(bits % 10000000) / (double)(1u << (bits >> 60));
        } else {
            memcpy(&d, &bits, sizeof d);
        }
        if (!isfinite(d)) continue;
        const char *f = fmt[i % 5];
        snprintf(text, sizeof text, f, d);
        if (!strchr(text, '.') && !strchr(text, 'e')) continue; /* an integer */
        herald_error_t err;
        int rc = both(text, strlen(text), &err);
        ck_assert_msg(rc == 0, "%s: %s", text, err.message);
        double want = strtod(text + 1, NULL), got;
        uint64_t be;
        ck_assert_uint_eq((uint8_t)sb.data[1], 0xcb);
        memcpy(&be, sb.data + 2, 8);
        be = __builtin_bswap64(be);
        memcpy(&got, &be, 8);
        ck_assert_msg(memcmp(&got, &want, 8) == 0, "%s: %a vs strtod %a", text, got, want);
    }
    /* long mantissas and halfway cases take strtod's path */
    accepted("[9007199254740993.0,9007199254740992.5,0.1000000000000000055511151231257827,"
             "2.47032822920623272e-324,1.00000000000000011102230246251565404236316680908203125,"
             "123456789012345678901234567890.5e-10,0.0000000000000000000000000000001]");
    accepted("[1e22,1e23,-1e22,1e-22,1e-23,9007199254740992e22,9007199254740993e-22]");
}
END_TEST

START_TEST(json_in_decodes_escapes_and_surrogate_pairs)
{
    herald_error_t err;
    const char *t = "[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u0001\\u00e9\\u20AC\\ud83d\\ude00\"]";
    ck_assert_int_eq(both(t, strlen(t), &err), 0);
    ck_assert_mem_eq(sb.data, "\x91\xb2\"\\/\b\f\n\r\t\x01\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80",
                     20);
    /* the header is sized for the decoded length: 40 escapes of 2 bytes -> fixstr of 20 */
    accepted("[\"\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\"]");
    ck_assert_uint_eq((uint8_t)sb.data[1], 0xa0 | 20);
    accepted("{\"\\u00e9\":1,\"e\\u0301\":2}");
    REFUSED("[\"\\ud800\"]", "invalid Unicode '\\uD800'");
    REFUSED("[\"\\udc00\"]", "invalid Unicode '\\uDC00'");
    REFUSED("[\"\\ud800\\u0041\"]", "invalid Unicode '\\uD800\\u0041'");
    REFUSED("[\"\\ud800\\ud800\"]", "invalid Unicode");
    REFUSED("[\"\\ud800\\n\"]", "invalid Unicode '\\uD800'");
    REFUSED("[\"\\ude00\\ud83d\"]", "invalid Unicode");
    REFUSED("[\"\\x\"]", "invalid escape");
    REFUSED("[\"\\U0041\"]", "invalid escape");
    REFUSED("[\"\\u12g4\"]", "invalid escape");
    REFUSED("[\"\\u123\"]", "invalid escape");
    REFUSED("[\"\\u0000\"]", "\\u0000 is not allowed");
    REFUSED("{\"\\u0000\":1}", "\\u0000 is not allowed");
    REFUSED("[\"a\\u0000b\"]", "\\u0000 is not allowed");
}
END_TEST

START_TEST(json_in_refuses_invalid_utf8_and_control_characters)
{
    REFUSED("[\"\xc0\xaf\"]", "unable to decode byte 0xc0");     /* overlong */
    REFUSED("[\"\xe0\x80\xaf\"]", "unable to decode byte 0xe0"); /* overlong */
    REFUSED("[\"\xed\xa0\x80\"]", "unable to decode byte 0xed"); /* surrogate */
    REFUSED("[\"\xf4\x90\x80\x80\"]", "unable to decode");       /* > U+10FFFF */
    REFUSED("[\"\xf5\x80\x80\x80\"]", "unable to decode");
    REFUSED("[\"\x80\"]", "unable to decode byte 0x80");
    REFUSED("[\"\xe2\x82\"]", "unable to decode");
    REFUSED("[\"\xe2\x82", "unable to decode");
    REFUSED("[\"\xc3\"]", "unable to decode");
    REFUSED("[\"\xff\"]", "unable to decode");
    REFUSED("[\xc3\xa9]", "invalid token");
    REFUSED("[\"a\tb\"]", "control character 0x9");
    REFUSED("[\"a\x1f\"]", "control character 0x1f");
    REFUSED("[\"\x01\"]", "control character 0x1");
    REFUSED("[\"a\nb\"]", "unexpected newline");
    REFUSED("[\"a\0b\"]", "");
    accepted("[\"\x7f\"]"); /* DEL is not a control character to JSON */
}
END_TEST

/* [{"k0":0,...,"k<n-1>":n-1}] with `extra` before the closing brace, in a malloc'd string
 * (in an array, so a large one is not refused as a notification over 64 KiB). */
static char *many_keys(unsigned n, const char *extra)
{
    size_t cap = (size_t)n * 24 + strlen(extra) + 8, len = 2;
    char *t = malloc(cap);
    ck_assert_ptr_nonnull(t);
    memcpy(t, "[{", 2);
    for (unsigned i = 0; i < n; i++)
        len += (size_t)snprintf(t + len, cap - len, "%s\"k%u\":%u", i ? "," : "", i, i);
    snprintf(t + len, cap - len, "%s}]", extra);
    return t;
}

START_TEST(json_in_refuses_duplicate_keys_in_small_and_large_objects)
{
    REFUSED("{\"a\":1,\"a\":2}", "duplicate object key near '\"a\"'");
    REFUSED("{\"a\":1,\"\\u0061\":2}", "duplicate object key");
    REFUSED("{\"a\":{\"b\":1,\"c\":2},\"b\":3,\"a\":4}", "duplicate object key");
    REFUSED("{\"a\":{\"b\":1,\"b\":2}}", "duplicate object key");
    REFUSED("{\"\":1,\"\":2}", "duplicate object key");
    accepted("{\"ab\":1,\"a\":2,\"b\":3,\"ba\":4,\"\":5}");
    static const unsigned sizes[] = {15, 16, 17, 33, 64, 65, 200, 10000};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        unsigned n = sizes[i];
        char extra[64];
        char *t = many_keys(n, "");
        accepted(t);
        free(t);
        const unsigned dup[] = {0, n / 2, n - 1};
        for (size_t k = 0; k < 3; k++) {
            snprintf(extra, sizeof extra, ",\"k%u\":0", dup[k]);
            t = many_keys(n, extra);
            refused(t, strlen(t), "duplicate object key");
            free(t);
        }
        /* the same keys again in a nested object are not duplicates */
        t = many_keys(n, ",\"inner\":{\"k0\":0,\"k1\":1}");
        accepted(t);
        free(t);
    }
}
END_TEST

START_TEST(json_in_limits_nesting_to_2048_levels)
{
    char *t = malloc(2 * 2049 + 2);
    ck_assert_ptr_nonnull(t);
    for (unsigned d = 2046; d <= 2049; d++) {
        /* d empty arrays nested: fine up to 2048 */
        memset(t, '[', d);
        memset(t + d, ']', d);
        herald_error_t err = {0};
        int rc = both(t, 2 * d, &err);
        ck_assert_int_eq(rc, d <= 2048 ? 0 : -HERR_MALFORMED);
        /* a scalar inside d arrays is at depth d + 1 */
        t[d] = '1';
        memset(t + d + 1, ']', d);
        rc = both(t, 2 * d + 1, &err);
        ck_assert_int_eq(rc, d + 1 <= 2048 ? 0 : -HERR_MALFORMED);
        if (rc) ck_assert(strstr(err.message, "maximum parsing depth reached"));
    }
    free(t);
    accepted("{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{}}}}}}}}}");
}
END_TEST

START_TEST(json_in_errors_point_at_line_and_column)
{
    /* as jansson: the column of the last character read, tokens read whole */
    REFUSED("{\"a\":1,}", "at line 1, column 8: string or '}' expected near '}'");
    REFUSED("{\n  \"a\": tru\n}", "at line 2, column 10: invalid token near 'tru'");
    REFUSED("[\n1,\n2\n", "at line 4, column 0: ']' expected near end of file");
    REFUSED("[01]", "at line 1, column 2: invalid token");
    REFUSED("[1.]", "at line 1, column 3: invalid token");
    REFUSED("{\"a\":1,\n\"a\":2}", "at line 2, column 3: duplicate object key");
    REFUSED("[9223372036854775808]", "at line 1, column 20: too big integer");
    REFUSED("[\"a\nb\"]", "at line 1, column 3: unexpected newline");
    REFUSED("[\"\xc3\xa9\t\"]", "at line 1, column 3: control character 0x9");
    REFUSED("[\"\xc3\"]", "at line 1, column 2: unable to decode byte 0xc3");
    REFUSED("{\"a\":1}\n\n x", "at line 3, column 2: end of file expected near 'x'");
    REFUSED("\n\n", "at line 3, column 0: '[' or '{' expected near end of file");
    REFUSED("[\"ab\\ud800cd\"]", "at line 1, column 13: invalid Unicode '\\uD800'");
    REFUSED("{\"a\":1 \"b\\\n\"}", "at line 2, column 0: invalid escape");
}
END_TEST

START_TEST(json_in_writes_the_smallest_headers)
{
    /* strings: fixstr / str8 / str16 / str32 at each boundary */
    static const size_t lens[] = {0, 31, 32, 255, 256, 65535, 65536};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        char *t = malloc(lens[i] + 5);
        ck_assert_ptr_nonnull(t);
        memcpy(t, "[\"", 2);
        memset(t + 2, 'x', lens[i]);
        memcpy(t + 2 + lens[i], "\"]", 3);
        accepted(t);
        free(t);
    }
    /* arrays and maps: fix / 16 / 32 forms at each boundary, also nested */
    static const unsigned counts[] = {0, 15, 16, 65535, 65536};
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        unsigned n = counts[i];
        char *t = malloc(4 * (size_t)n + 16);
        ck_assert_ptr_nonnull(t);
        size_t len = 0;
        t[len++] = '[';
        for (unsigned k = 0; k < n; k++) {
            memcpy(t + len, k ? ",[1]" : "[17", k ? 4 : 3);
            len += k ? 4 : 3;
            if (!k) t[len++] = ']';
        }
        memcpy(t + len, "]", 2);
        accepted(t);
        free(t);
        t = many_keys(n, n ? ",\"x\":[[],{}]" : "\"x\":[[],{}]");
        accepted(t);
        free(t);
    }
    accepted("[[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16],{\"a\":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,"
             "15,16,17]},[[[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]]]]");
}
END_TEST

START_TEST(json_in_appends_to_the_buffer_and_leaves_it_on_error)
{
    herald_error_t err;
    msgpack_sbuffer_clear(&sb);
    msgpack_sbuffer_write(&sb, "AB", 2);
    const char *t = "[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16]";
    ck_assert_int_eq(json_to_msgpack(t, strlen(t), &sb, &err), 0);
    ck_assert_uint_eq(sb.size, 2 + 3 + 16);
    ck_assert_mem_eq(sb.data, "AB\xdc\x00\x10\x01\x02", 7);
    ck_assert_int_eq(json_to_msgpack(t, strlen(t) - 1, &sb, &err), -HERR_MALFORMED);
    ck_assert_uint_eq(sb.size, 2 + 3 + 16);
    ck_assert_int_eq(json_to_msgpack("[\"x\"]", 5, &sb, NULL), 0); /* err may be NULL */
    ck_assert_int_eq(json_to_msgpack("[\"x\"", 4, &sb, NULL), -HERR_MALFORMED);
    ck_assert_uint_eq(sb.size, 2 + 3 + 16 + 3);
}
END_TEST

START_TEST(json_in_never_reads_past_len)
{
    const char *doc = "{\"a\":[1,-2.5e3,true,false,null,\"x\\u00e9\\ud83d\\ude00\"],\"b\":{}}";
    size_t n = strlen(doc);
    herald_error_t err;
    for (size_t len = 0; len < n; len++) /* each prefix, in an exact-size buffer */
        ck_assert_int_eq(both(doc, len, &err), -HERR_MALFORMED);
    ck_assert_int_eq(both(doc, n, &err), 0);
}
END_TEST

START_TEST(json_in_agrees_with_jansson_on_mutated_documents)
{
    static const char *seeds[] = {
        "{\"message_id\":\"0000000000000a3f\",\"message_type\":\"system_notice\",\"user_id\":"
        "\"user17\",\"priority\":1,\"payload\":{\"title\":\"t\",\"n\":[1.5e3,-0,true,null]}}",
        "[\"\\ud83d\\ude00\\u00e9\\n\",{\"a\":{\"b\":[]}},12345678901234567890,1e400,-7]",
        "{\"a\":1,\"b\":2,\"c\":3,\"d\":4,\"e\":5,\"f\":6,\"g\":7,\"h\":8,\"i\":9,\"j\":10,\"k\":"
        "11,"
        "\"l\":12,\"m\":13,\"n\":14,\"o\":15,\"p\":16,\"q\":17,\"r\":18}",
    };
    static const char alphabet[] =
        "{}[],:\"\\u0123456789abcdefABCDEF.eE+-tfnrl \n\xc3\xa9\xed\xf4\x80";
    char buf[512];
    for (int i = 0; i < 40000; i++) {
        const char *s = seeds[i % 3];
        size_t len = strlen(s);
        memcpy(buf, s, len);
        for (int m = 0, k = 1 + (int)(rnd() % 4); m < k; m++) {
            size_t at = rnd() % len;
            switch (rnd() % 3) {
            case 0: /* replace */
                buf[at] = alphabet[rnd() % (sizeof alphabet - 1)];
                break;
            case 1: /* delete */
                memmove(buf + at, buf + at + 1, len - at - 1);
                len--;
                break;
            default: /* insert */
                if (len + 1 < sizeof buf) {
                    memmove(buf + at + 1, buf + at, len - at);
                    buf[at] = alphabet[rnd() % (sizeof alphabet - 1)];
                    len++;
                }
            }
        }
        herald_error_t err;
        both(buf, len, &err);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("json_in");
    TCase *tc = tcase_create("json_in");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, json_in_accepts_rfc8259_documents_with_msgpack_c_bytes);
    tcase_add_test(tc, json_in_refuses_what_jansson_refuses);
    tcase_add_test(tc, json_in_reads_numbers_as_jansson_does);
    tcase_add_test(tc, json_in_packs_int64_edges_as_msgpack_pack_int64);
    tcase_add_test(tc, json_in_reads_reals_bit_exact_as_strtod);
    tcase_add_test(tc, json_in_decodes_escapes_and_surrogate_pairs);
    tcase_add_test(tc, json_in_refuses_invalid_utf8_and_control_characters);
    tcase_add_test(tc, json_in_refuses_duplicate_keys_in_small_and_large_objects);
    tcase_add_test(tc, json_in_limits_nesting_to_2048_levels);
    tcase_add_test(tc, json_in_errors_point_at_line_and_column);
    tcase_add_test(tc, json_in_writes_the_smallest_headers);
    tcase_add_test(tc, json_in_appends_to_the_buffer_and_leaves_it_on_error);
    tcase_add_test(tc, json_in_never_reads_past_len);
    tcase_add_test(tc, json_in_agrees_with_jansson_on_mutated_documents);
    suite_add_tcase(s, tc);
    return check_run_suite(s);
}
