/* test_dedup.c - the broker's dedup window (broker/dedup.c): exact oldest-first eviction,
 * lookups after the FIFO wraps, colliding hashes, and a random walk against a plain model. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "check_run.h"
#include "dedup.h"
#include "items.h"

static broker_t br;

static void id_of(unsigned n, char out[32])
{
    snprintf(out, 32, "msg-%u", n);
}

/* hash_fn(n, h): the hash the test gives id n (a real one, or forced collisions). */
typedef uint32_t (*hash_fn)(unsigned n, const char *id);

static uint32_t real_hash(unsigned n, const char *id)
{
    (void)n;
    return bk_dedup_hash(id, strlen(id));
}

static uint32_t same_hash(unsigned n, const char *id)
{
    (void)n;
    (void)id;
    return 0xfffffffeu; /* home near the table's end: probe runs wrap to bucket 0 */
}

static uint32_t few_hashes(unsigned n, const char *id)
{
    (void)id;
    return 0xfffffff0u + n % 5 * 7; /* a handful of neighbouring homes, some wrapping */
}

static bk_dedup_entry_t *find(unsigned n, hash_fn hf)
{
    char id[32];
    id_of(n, id);
    return bk_dedup_find(&br, id, strlen(id), hf(n, id));
}

static bk_dedup_entry_t *insert(unsigned n, hash_fn hf, uint64_t seq)
{
    char id[32];
    id_of(n, id);
    return bk_dedup_insert(&br, id, strlen(id), hf(n, id), seq, NULL, 0);
}

/* After ids 0..last were inserted in order into a window of w: exactly the newest w held. */
static void check_window(unsigned last, unsigned w, hash_fn hf)
{
    unsigned first = last + 1 > w ? last + 1 - w : 0;
    for (unsigned n = first > 3 * w ? first - 3 * w : 0; n <= last; n++) {
        bk_dedup_entry_t *e = find(n, hf);
        if (n < first)
            ck_assert_msg(e == NULL, "id %u should be evicted (window %u..%u)", n, first, last);
        else {
            ck_assert_msg(e != NULL, "id %u missing (window %u..%u)", n, first, last);
            ck_assert_uint_eq(bk_dedup_seq(e), n + 1);
        }
    }
    ck_assert_uint_eq(bk_dedup_count(&br), last + 1 < w ? last + 1 : w);
}

static void run_fifo(unsigned w, unsigned total, hash_fn hf)
{
    ck_assert_int_eq(bk_dedup_init(&br, w), 0);
    for (unsigned n = 0; n < total; n++) {
        insert(n, hf, n + 1);
        if (n < 2 * w || n % 97 == 0 || n + 1 == total) check_window(n, w, hf);
    }
    bk_dedup_free(&br);
}

START_TEST(dedup_evicts_exactly_the_oldest_at_the_window_bound)
{
    run_fifo(100, 1000, real_hash);
}
END_TEST

START_TEST(dedup_finds_ids_after_the_fifo_wraps_many_times)
{
    run_fifo(37, 37 * 50 + 11, real_hash);
}
END_TEST

START_TEST(dedup_stays_exact_when_every_id_has_the_same_hash)
{
    run_fifo(20, 300, same_hash);
}
END_TEST

START_TEST(dedup_stays_exact_with_clustered_hashes_wrapping_the_table)
{
    run_fifo(64, 2000, few_hashes);
}
END_TEST

START_TEST(dedup_evicting_a_queued_entry_clears_its_item_link)
{
    ck_assert_int_eq(bk_dedup_init(&br, 2), 0);
    bk_item_t it = {0};
    it.dedup = bk_dedup_insert(&br, "a", 1, bk_dedup_hash("a", 1), 0, &it, 7);
    ck_assert_ptr_eq(bk_dedup_item(it.dedup), &it);
    insert(1, real_hash, 2);
    ck_assert_ptr_nonnull(it.dedup);
    insert(2, real_hash, 3); /* evicts "a" */
    ck_assert_ptr_null(it.dedup);
    ck_assert_ptr_null(bk_dedup_find(&br, "a", 1, bk_dedup_hash("a", 1)));
    bk_dedup_free(&br);
}
END_TEST

START_TEST(dedup_replayed_duplicate_updates_in_place)
{
    ck_assert_int_eq(bk_dedup_init(&br, 4), 0);
    insert(7, real_hash, 5);
    insert(7, real_hash, 9);
    ck_assert_uint_eq(bk_dedup_count(&br), 1);
    ck_assert_uint_eq(bk_dedup_seq(find(7, real_hash)), 9);
    bk_dedup_free(&br);
}
END_TEST

/* Ingest-style random walk over a small id pool: insert when absent; the window must hold
 * exactly the last w distinct inserts, whatever the hashes. */
START_TEST(dedup_matches_a_plain_fifo_model_on_a_random_walk)
{
    enum { W = 50, POOL = 200, STEPS = 20000 };
    hash_fn fns[] = {real_hash, few_hashes};
    for (unsigned f = 0; f < 2; f++) {
        ck_assert_int_eq(bk_dedup_init(&br, W), 0);
        unsigned fifo[W], head = 0, count = 0;
        srand(1234 + f);
        for (unsigned s = 0; s < STEPS; s++) {
            unsigned n = (unsigned)rand() % POOL;
            bool held = false;
            for (unsigned k = 0; k < count; k++)
                held |= fifo[(head + k) % W] == n;
            ck_assert_msg((find(n, fns[f]) != NULL) == held, "step %u id %u", s, n);
            if (held) continue;
            insert(n, fns[f], s + 1);
            if (count == W) {
                fifo[head] = n;
                head = (head + 1) % W;
            } else {
                fifo[(head + count++) % W] = n;
            }
        }
        for (unsigned n = 0; n < POOL; n++) {
            bool held = false;
            for (unsigned k = 0; k < count; k++)
                held |= fifo[(head + k) % W] == n;
            ck_assert_msg((find(n, fns[f]) != NULL) == held, "final id %u", n);
        }
        bk_dedup_free(&br);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("dedup");
    TCase *tc = tcase_create("window");
    tcase_add_test(tc, dedup_evicts_exactly_the_oldest_at_the_window_bound);
    tcase_add_test(tc, dedup_finds_ids_after_the_fifo_wraps_many_times);
    tcase_add_test(tc, dedup_stays_exact_when_every_id_has_the_same_hash);
    tcase_add_test(tc, dedup_stays_exact_with_clustered_hashes_wrapping_the_table);
    tcase_add_test(tc, dedup_evicting_a_queued_entry_clears_its_item_link);
    tcase_add_test(tc, dedup_replayed_duplicate_updates_in_place);
    tcase_add_test(tc, dedup_matches_a_plain_fifo_model_on_a_random_walk);
    suite_add_tcase(s, tc);
    return check_run_suite(s);
}
