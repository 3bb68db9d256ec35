/* test_bench_hist.c - herald-bench's latency histogram: bucket bounds and percentile math. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>

#include "check_run.h"
#include "hist.h"

static hist_t h;

START_TEST(hist_is_exact_below_128)
{
    hist_init(&h);
    for (uint64_t v = 0; v < 128; v++)
        hist_record(&h, v);
    ck_assert_uint_eq(h.count, 128);
    ck_assert_uint_eq(hist_percentile(&h, 50), 63);
    ck_assert_uint_eq(hist_percentile(&h, 1), 1);
    ck_assert_uint_eq(hist_percentile(&h, 100), 127);
    for (uint64_t v = 0; v < 128; v++)
        ck_assert_uint_eq(hist_bucket_high(hist_index(v)), v);
}
END_TEST

START_TEST(hist_buckets_contain_their_values_within_one_128th)
{
    uint64_t vals[] = {128,
                       129,
                       255,
                       256,
                       257,
                       1000,
                       999999,
                       1ull << 40,
                       (1ull << 40) + 12345,
                       UINT64_MAX - 1,
                       UINT64_MAX};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        unsigned idx = hist_index(vals[i]);
        ck_assert_uint_lt(idx, HIST_BUCKETS);
        uint64_t high = hist_bucket_high(idx);
        ck_assert_uint_ge(high, vals[i]);
        ck_assert_msg((double)(high - vals[i]) <= (double)vals[i] / 128.0,
                      "value %llu bucket high %llu", (unsigned long long)vals[i],
                      (unsigned long long)high);
        if (idx > 0) ck_assert_uint_lt(hist_bucket_high(idx - 1), vals[i]);
    }
}
END_TEST

START_TEST(hist_indexes_are_monotonic_in_value)
{
    unsigned last = 0;
    for (uint64_t v = 1; v < (1ull << 62); v += v / 37 + 1) {
        unsigned idx = hist_index(v);
        ck_assert_uint_ge(idx, last);
        last = idx;
    }
}
END_TEST

/* 1..100000 us in ns: p50 = 50000 us, p99 = 99000 us, p99.9 = 99900 us, within 1%. */
START_TEST(hist_percentiles_of_a_uniform_range_are_within_one_percent)
{
    hist_init(&h);
    for (uint64_t v = 1; v <= 100000; v++)
        hist_record(&h, v * 1000);
    const double p[] = {50, 90, 99, 99.9};
    const double want[] = {50000e3, 90000e3, 99000e3, 99900e3};
    for (int i = 0; i < 4; i++) {
        double got = (double)hist_percentile(&h, p[i]);
        ck_assert_msg(got >= want[i] && got <= want[i] * 1.01, "p%.1f = %.0f, want %.0f", p[i], got,
                      want[i]);
    }
    ck_assert_uint_eq(hist_percentile(&h, 100), 100000000);
    ck_assert_uint_eq(h.min, 1000);
    ck_assert(hist_mean(&h) > 50000e3 && hist_mean(&h) < 50001e3);
}
END_TEST

START_TEST(hist_percentile_never_exceeds_max_nor_undercuts_min)
{
    hist_init(&h);
    hist_record(&h, 1000001);
    for (int i = 0; i < 10; i++)
        ck_assert_uint_eq(hist_percentile(&h, i * 10 + 1), 1000001);
    hist_init(&h);
    ck_assert_uint_eq(hist_percentile(&h, 99), 0);
    ck_assert_uint_eq(hist_percentile(&h, 100), 0);
    ck_assert(hist_mean(&h) == 0.0);
}
END_TEST

/* One outlier in 1000: p99.9 is the 999th value, max is the outlier. */
START_TEST(hist_tail_percentiles_count_ranks_not_interpolate)
{
    hist_init(&h);
    for (int i = 0; i < 999; i++)
        hist_record(&h, 100);
    hist_record(&h, 5000000);
    ck_assert_uint_eq(hist_percentile(&h, 99.9), 100);
    ck_assert_uint_eq(hist_percentile(&h, 99.91), 5000000);
    ck_assert_uint_eq(hist_percentile(&h, 100), 5000000);
}
END_TEST

START_TEST(hist_merge_equals_recording_everything_in_one)
{
    static hist_t a, b, all;
    hist_init(&a);
    hist_init(&b);
    hist_init(&all);
    for (uint64_t v = 1; v < 50000; v += 7) {
        hist_record(v % 2 ? &a : &b, v * 31);
        hist_record(&all, v * 31);
    }
    hist_merge(&a, &b);
    ck_assert_uint_eq(a.count, all.count);
    ck_assert_uint_eq(a.min, all.min);
    ck_assert_uint_eq(a.max, all.max);
    for (double p = 1; p <= 100; p += 0.5)
        ck_assert_uint_eq(hist_percentile(&a, p), hist_percentile(&all, p));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("bench_hist");
    TCase *tc = tcase_create("bench_hist");
    tcase_add_test(tc, hist_is_exact_below_128);
    tcase_add_test(tc, hist_buckets_contain_their_values_within_one_128th);
    tcase_add_test(tc, hist_indexes_are_monotonic_in_value);
    tcase_add_test(tc, hist_percentiles_of_a_uniform_range_are_within_one_percent);
    tcase_add_test(tc, hist_percentile_never_exceeds_max_nor_undercuts_min);
    tcase_add_test(tc, hist_tail_percentiles_count_ranks_not_interpolate);
    tcase_add_test(tc, hist_merge_equals_recording_everything_in_one);
    suite_add_tcase(s, tc);
    return check_run_suite(s);
}
