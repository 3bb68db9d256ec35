/* test_shard.c - rendezvous hashing of users over gateways (protocol.md 8 sharding). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_run.h"
#include "shard.h"

#define USERS 100000

static size_t user_name(char *buf, size_t n, unsigned i)
{
    return (size_t)snprintf(buf, n, "user-%u", i);
}

/* Values from an independent Python rendering of the algorithm documented in shard.c: if
 * these change, heraldctl, /api/route and the nginx example disagree with old deployments. */
START_TEST(shard_weights_match_the_documented_algorithm)
{
    ck_assert_uint_eq(shard_weight("u1", 2, 0), 0xc34af8bb8ff59c2bull);
    ck_assert_uint_eq(shard_weight("u1", 2, 1), 0x1793648346d4cc44ull);
    ck_assert_uint_eq(shard_weight("alice", 5, 2), 0x53aafdaef718db43ull);
    ck_assert_uint_eq(shard_weight("0123456789abcdefX", 17, 1), 0xab7a13dd296977b2ull);
    ck_assert_uint_eq(shard_weight("", 0, 2), 0xbe52dd3e77130c20ull);
    const unsigned alice[8] = {0, 1, 1, 1, 1, 1, 6, 6};
    const unsigned empty[8] = {0, 1, 2, 2, 2, 2, 2, 7};
    for (unsigned n = 1; n <= 8; n++) {
        ck_assert_uint_eq(shard_gateway("alice", 5, n), alice[n - 1]);
        ck_assert_uint_eq(shard_gateway("", 0, n), empty[n - 1]);
    }
}
END_TEST

START_TEST(shard_is_deterministic_and_reads_only_len_bytes)
{
    char a[32];
    for (unsigned i = 0; i < 1000; i++) {
        size_t n = user_name(a, sizeof a, i);
        unsigned g = shard_gateway(a, n, 5);
        ck_assert_uint_lt(g, 5);
        ck_assert_uint_eq(shard_gateway(a, n, 5), g);
    }
    ck_assert_uint_eq(shard_weight("u1-and-more", 2, 3), shard_weight("u1", 2, 3));
    ck_assert_uint_ne(shard_weight("u1", 2, 3), shard_weight("u2", 2, 3));
    ck_assert_uint_ne(shard_weight("a", 1, 0), shard_weight("a\0", 2, 0));
    ck_assert_uint_eq(shard_gateway("anyone", 6, 1), 0);
}
END_TEST

START_TEST(shard_picks_the_highest_weight_lower_id_on_tie)
{
    char a[32];
    for (unsigned i = 0; i < 20000; i++) {
        size_t n = user_name(a, sizeof a, i);
        unsigned best = 0;
        for (unsigned g = 1; g < 7; g++)
            if (shard_weight(a, n, g) > shard_weight(a, n, best)) best = g;
        ck_assert_uint_eq(shard_gateway(a, n, 7), best);
    }
}
END_TEST

/* Every gateway gets its share of 100k users within 5% (about 5 standard deviations at
 * 8 gateways; the hash is deterministic, so this passes or fails the same way each run). */
START_TEST(shard_gives_every_gateway_a_fair_share)
{
    for (unsigned count = 2; count <= 8; count++) {
        unsigned hits[8] = {0};
        char a[32];
        for (unsigned i = 0; i < USERS; i++) {
            size_t n = user_name(a, sizeof a, i);
            hits[shard_gateway(a, n, count)]++;
        }
        double fair = (double)USERS / count;
        for (unsigned g = 0; g < count; g++)
            ck_assert_msg(hits[g] > fair * 0.95 && hits[g] < fair * 1.05,
                          "count %u: gateway %u has %u users, fair share %.0f", count, g, hits[g],
                          fair);
    }
}
END_TEST

/* The property protocol.md 8 relies on: going from N to N+1 gateways moves about 1/(N+1) of the
 * users, and every user that moves goes to the new gateway. */
START_TEST(shard_adding_a_gateway_moves_one_in_n_plus_one_users_all_to_it)
{
    for (unsigned n = 1; n <= 8; n++) {
        unsigned moved = 0;
        char a[32];
        for (unsigned i = 0; i < USERS; i++) {
            size_t len = user_name(a, sizeof a, i);
            unsigned before = shard_gateway(a, len, n), after = shard_gateway(a, len, n + 1);
            if (before == after) continue;
            ck_assert_msg(after == n, "%s moved from %u to %u, not to new gateway %u", a, before,
                          after, n);
            moved++;
        }
        double expect = (double)USERS / (n + 1);
        ck_assert_msg(moved > expect * 0.95 && moved < expect * 1.05,
                      "%u -> %u gateways moved %u users, expected about %.0f", n, n + 1, moved,
                      expect);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("shard");
    TCase *tc = tcase_create("shard");
    tcase_add_test(tc, shard_weights_match_the_documented_algorithm);
    tcase_add_test(tc, shard_is_deterministic_and_reads_only_len_bytes);
    tcase_add_test(tc, shard_picks_the_highest_weight_lower_id_on_tie);
    tcase_add_test(tc, shard_gives_every_gateway_a_fair_share);
    tcase_add_test(tc, shard_adding_a_gateway_moves_one_in_n_plus_one_users_all_to_it);
    suite_add_tcase(s, tc);
    return check_run_suite(s);
}
