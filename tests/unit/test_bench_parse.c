/* test_bench_parse.c - herald-bench's frame parser: fast path, full-parse fallback, refusals. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "check_run.h"
#include "bench_parse.h"

#define NOTIF                                                                                      \
    "{\"type\":\"notification\",\"seq\":17,\"message_id\":\"m-1\",\"message_type\":"               \
    "\"trade_executed\",\"channel\":\"trade\",\"user_id\":\"u1\",\"priority\":2,"                  \
    "\"timestamp\":1764000000000000000,\"source\":\"MatchingEngine\",\"payload\":{"                \
    "\"bench_t0\":123456789,\"bench_i\":42,\"price\":1.5}}"

static bmsg_kind_t parse(const char *s, bmsg_t *m)
{
    memset(m, 0xa5, sizeof *m);
    return bparse_frame(s, strlen(s), m);
}

START_TEST(parse_reads_a_gateway_notification)
{
    bmsg_t m, slow;
    ck_assert_int_eq(parse(NOTIF, &m), BMSG_NOTIFICATION);
    ck_assert_uint_eq(m.seq, 17);
    ck_assert_uint_eq(m.priority, 2);
    ck_assert_uint_eq(m.bench_t0, 123456789);
    ck_assert_uint_eq(m.bench_i, 42);
    ck_assert_str_eq(m.user_id, "u1");
    ck_assert_int_eq(bparse_frame_slow(NOTIF, strlen(NOTIF), &slow), BMSG_NOTIFICATION);
    ck_assert_uint_eq(slow.seq, m.seq);
    ck_assert_uint_eq(slow.priority, m.priority);
    ck_assert_uint_eq(slow.bench_t0, m.bench_t0);
    ck_assert_uint_eq(slow.bench_i, m.bench_i);
    ck_assert_str_eq(slow.user_id, m.user_id);
}
END_TEST

START_TEST(parse_falls_back_when_fields_come_in_another_order)
{
    bmsg_t m;
    const char *s = "{\"payload\":{\"x\":1,\"bench_i\":7,\"bench_t0\":99},\"priority\":0,"
                    "\"user_id\":\"a\\\"b\",\"seq\":3,\"type\":\"notification\"}";
    ck_assert_int_eq(parse(s, &m), BMSG_NOTIFICATION);
    ck_assert_uint_eq(m.seq, 3);
    ck_assert_uint_eq(m.priority, 0);
    ck_assert_uint_eq(m.bench_i, 7);
    ck_assert_uint_eq(m.bench_t0, 99);
    ck_assert_str_eq(m.user_id, "a\"b");
}
END_TEST

START_TEST(parse_names_welcome_and_other_frames)
{
    bmsg_t m;
    ck_assert_int_eq(parse("{\"type\":\"welcome\",\"session_id\":\"s\",\"user_id\":\"u1\","
                           "\"gateway\":0}",
                           &m),
                     BMSG_WELCOME);
    ck_assert_int_eq(parse("{\"type\":\"gap\",\"from\":1,\"to\":4}", &m), BMSG_OTHER);
    ck_assert_str_eq(m.type, "gap");
}
END_TEST

START_TEST(parse_refuses_notifications_without_bench_fields_or_broken_json)
{
    bmsg_t m;
    ck_assert_int_eq(parse("{\"type\":\"notification\",\"seq\":1,\"user_id\":\"u\","
                           "\"priority\":1,\"payload\":{}}",
                           &m),
                     BMSG_MALFORMED);
    ck_assert_int_eq(parse("{\"type\":\"notification\",\"seq\":1,\"user_id\":\"u\","
                           "\"priority\":9,\"payload\":{\"bench_t0\":1,\"bench_i\":1}}",
                           &m),
                     BMSG_MALFORMED);
    ck_assert_int_eq(parse("{\"type\":\"notification\",\"seq\":", &m), BMSG_MALFORMED);
    ck_assert_int_eq(parse("[1,2]", &m), BMSG_MALFORMED);
    ck_assert_int_eq(parse("", &m), BMSG_MALFORMED);
}
END_TEST

/* The fast path must never read past len: parse a prefix of a valid frame in a buffer
 * that ends exactly there (ASan catches an overread). */
START_TEST(parse_stays_inside_the_frame)
{
    bmsg_t m;
    size_t n = strlen(NOTIF);
    for (size_t cut = 0; cut < n; cut++) {
        char *b = malloc(cut ? cut : 1);
        memcpy(b, NOTIF, cut);
        bmsg_kind_t k = bparse_frame(b, cut, &m);
        ck_assert_int_ne(k, BMSG_WELCOME);
        free(b);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("bench_parse");
    TCase *tc = tcase_create("bench_parse");
    tcase_add_test(tc, parse_reads_a_gateway_notification);
    tcase_add_test(tc, parse_falls_back_when_fields_come_in_another_order);
    tcase_add_test(tc, parse_names_welcome_and_other_frames);
    tcase_add_test(tc, parse_refuses_notifications_without_bench_fields_or_broken_json);
    tcase_add_test(tc, parse_stays_inside_the_frame);
    suite_add_tcase(s, tc);
    return check_run_suite(s);
}
