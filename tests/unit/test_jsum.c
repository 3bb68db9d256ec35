/* test_jsum.c - the broker journal's record checksum (broker/jsum.c): hardware and table
 * give the same sums, and a changed bit, epoch, length or header changes the sum. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "check_run.h"
#include "jsum.h"

static uint8_t buf[600];

static void fill(void)
{
    srand(7);
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)rand();
}

/* Journals written by earlier builds must still check out: the sums of lengths 0..299 as
 * version 2 of the journal format defines them, folded into one number. */
START_TEST(jsum_values_are_those_of_journal_format_2)
{
    fill();
    for (int hw = 1; hw >= 0; hw--) {
        jsum_use_hw(hw);
        uint64_t acc = 0;
        for (size_t n = 0; n < 300; n++)
            acc = (acc << 7 | acc >> 57) ^ jsum(n * 0x10001, 0x1234 + n, ~n, buf + n % 8, n);
        ck_assert_uint_eq(acc, 0xe618e874d472160dull);
        ck_assert_uint_eq(jsum(1, 2, 3, buf, 280), 1419833799u);
    }
    jsum_use_hw(true);
}
END_TEST

START_TEST(jsum_hardware_and_table_agree_at_every_length)
{
    fill();
    if (!jsum_use_hw(true)) {
        jsum_use_hw(false);
        return; /* no SSE4.2 here: only the table exists */
    }
    uint32_t hw[300];
    for (size_t n = 0; n < 300; n++)
        hw[n] = jsum(n * 0x10001, 0x1234 + n, ~n, buf + n % 8, n);
    jsum_use_hw(false);
    for (size_t n = 0; n < 300; n++)
        ck_assert_uint_eq(jsum(n * 0x10001, 0x1234 + n, ~n, buf + n % 8, n), hw[n]);
    jsum_use_hw(true);
}
END_TEST

static void check_single_bit_flips(bool hw)
{
    fill();
    jsum_use_hw(hw);
    for (size_t n = 1; n <= 260; n += 37) {
        uint32_t ref = jsum(5, 77, 99, buf, n);
        for (size_t bit = 0; bit < n * 8; bit++) {
            buf[bit / 8] ^= (uint8_t)(1u << bit % 8);
            ck_assert_uint_ne(jsum(5, 77, 99, buf, n), ref);
            buf[bit / 8] ^= (uint8_t)(1u << bit % 8);
        }
        for (int bit = 0; bit < 64; bit++) {
            ck_assert_uint_ne(jsum(5, 77 ^ (1ull << bit), 99, buf, n), ref);
            ck_assert_uint_ne(jsum(5, 77, 99 ^ (1ull << bit), buf, n), ref);
            ck_assert_uint_ne(jsum(5 ^ (1ull << bit), 77, 99, buf, n), ref);
        }
    }
    jsum_use_hw(true);
}

START_TEST(jsum_changes_with_any_single_bit_of_data_header_word_or_epoch)
{
    check_single_bit_flips(true);
    check_single_bit_flips(false);
}
END_TEST

START_TEST(jsum_of_zeros_depends_on_length_and_epoch)
{
    static const uint8_t zero[64];
    ck_assert_uint_ne(jsum(1, 0, 0, zero, 8), jsum(1, 0, 0, zero, 16));
    ck_assert_uint_ne(jsum(1, 0, 0, zero, 40), jsum(1, 0, 0, zero, 48));
    ck_assert_uint_ne(jsum(1, 0, 0, zero, 40), jsum(3, 0, 0, zero, 40));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("jsum");
    TCase *t = tcase_create("sum");
    tcase_add_test(t, jsum_values_are_those_of_journal_format_2);
    tcase_add_test(t, jsum_hardware_and_table_agree_at_every_length);
    tcase_add_test(t, jsum_changes_with_any_single_bit_of_data_header_word_or_epoch);
    tcase_add_test(t, jsum_of_zeros_depends_on_length_and_epoch);
    suite_add_tcase(s, t);
    return check_run_suite(s);
}
