/* test_items.c - the broker's item allocator (broker/items.c) in its production form, 2 MiB
 * huge-page chunks carved into 64-byte classes: items never overlap, are reused last-freed
 * first within their class, survive many chunks, and big items fall back to malloc. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "check_run.h"
#include "items.h"

static bk_item_t *item(uint32_t len, uint8_t fill)
{
    bk_item_t *it = bk_items_new(len);
    memset(it, 0, sizeof *it);
    it->len = len;
    memset(it->bytes, fill, len);
    return it;
}

START_TEST(items_are_aligned_disjoint_and_keep_their_bytes_across_chunks)
{
    enum { N = 40000 }; /* about 12 MiB of items: several chunks */
    bk_item_t **its = malloc(N * sizeof *its);
    for (unsigned i = 0; i < N; i++) {
        its[i] = item(1 + i % 500, (uint8_t)i);
        ck_assert_uint_eq((uintptr_t)its[i] % 64, 0);
    }
    uint8_t want[500];
    for (unsigned i = 0; i < N; i++) {
        ck_assert_uint_eq(its[i]->len, 1 + i % 500);
        memset(want, (uint8_t)i, its[i]->len);
        ck_assert_msg(!memcmp(its[i]->bytes, want, its[i]->len), "item %u overwritten", i);
    }
    for (unsigned i = 0; i < N; i++)
        bk_items_free(its[i]);
    free(its);
    bk_items_release();
}
END_TEST

START_TEST(items_of_one_class_come_back_last_freed_first)
{
    /* lengths that, with the item header, round to the same 192-byte class */
    uint32_t big = (uint32_t)(192 - sizeof(bk_item_t)), small = big - 20;
    bk_item_t *a = item(small, 1), *b = item(big, 2);
    bk_item_t *c = item(1000, 3);
    bk_items_free(a);
    bk_items_free(b); /* same class as a */
    bk_items_free(c);
    ck_assert_ptr_eq(bk_items_new(big - 10), b);
    ck_assert_ptr_eq(bk_items_new(small - 10), a);
    bk_item_t *d = bk_items_new(small); /* the class list is empty: fresh memory */
    ck_assert_ptr_ne(d, a);
    ck_assert_ptr_ne(d, b);
    ck_assert_ptr_ne(d, c);
    ck_assert_ptr_eq(bk_items_new(1000), c);
    bk_items_release();
}
END_TEST

START_TEST(items_over_two_kib_use_malloc)
{
    bk_item_t *big = item(64 * 1024, 7);
    ck_assert_uint_eq(big->bytes[64 * 1024 - 1], 7);
    bk_items_free(big); /* ASan reports it if it were not malloc'd */
    bk_items_release();
}
END_TEST

START_TEST(huge_alloc_is_zeroed_and_two_mib_aligned)
{
    size_t n = 3u << 20;
    uint8_t *p = bk_items_huge_alloc(n);
    ck_assert_uint_eq((uintptr_t)p % (2u << 20), 0);
    for (size_t i = 0; i < n; i += 4096)
        ck_assert_uint_eq(p[i], 0);
    memset(p, 0xab, n);
    bk_items_huge_free(p, n);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("items");
    TCase *tc = tcase_create("items");
    tcase_add_test(tc, items_are_aligned_disjoint_and_keep_their_bytes_across_chunks);
    tcase_add_test(tc, items_of_one_class_come_back_last_freed_first);
    tcase_add_test(tc, items_over_two_kib_use_malloc);
    tcase_add_test(tc, huge_alloc_is_zeroed_and_two_mib_aligned);
    suite_add_tcase(s, tc);
    return check_run_suite(s);
}
