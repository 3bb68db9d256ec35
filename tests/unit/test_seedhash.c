/* test_seedhash.c - the keyed hash of the user and dedup tables (common/base/seedhash.h):
 * stable within a process, different from one process to the next (no precomputed flood),
 * and spread over buckets. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check_run.h"
#include "seedhash.h"
#include "shard.h"

/* seedhash("user-42") as computed by a fresh process (fork, then its own key). */
static uint64_t hash_in_child(void)
{
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    pid_t pid = fork();
    if (pid == 0) {
        seedhash_ready = false; /* as a freshly started process */
        uint64_t h = seedhash("user-42", 7);
        _exit(write(p[1], &h, sizeof h) == sizeof h ? 0 : 1);
    }
    close(p[1]);
    uint64_t h = 0;
    ck_assert_int_eq(read(p[0], &h, sizeof h), sizeof h);
    close(p[0]);
    int st;
    waitpid(pid, &st, 0);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    return h;
}

START_TEST(seedhash_is_stable_in_a_process_and_differs_between_processes)
{
    ck_assert_uint_eq(seedhash("user-42", 7), seedhash("user-42", 7));
    ck_assert_uint_ne(seedhash("user-42", 7), seedhash("user-43", 7));
    uint64_t a = hash_in_child(), b = hash_in_child(), c = hash_in_child();
    ck_assert(a != b || b != c); /* three equal draws of 256 key bits: never */
}
END_TEST

START_TEST(seedhash_spreads_similar_ids_over_buckets)
{
    enum { BUCKETS = 1024, IDS = 64 * BUCKETS };
    static unsigned count[BUCKETS];
    char id[32];
    for (unsigned i = 0; i < IDS; i++) {
        int n = snprintf(id, sizeof id, "order-%08u", i);
        count[seedhash(id, (size_t)n) & (BUCKETS - 1)]++;
    }
    unsigned max = 0;
    for (unsigned i = 0; i < BUCKETS; i++)
        if (count[i] > max) max = count[i];
    ck_assert_uint_lt(max, 4 * IDS / BUCKETS); /* mean 64 */
    /* every length, including the tail bytes, takes part */
    ck_assert_uint_ne(seedhash("abcdefgh1", 9), seedhash("abcdefgh2", 9));
    ck_assert_uint_ne(seedhash("", 0), seedhash("\0", 1));
}
END_TEST

/* The shard contract with nginx stays unkeyed: the same gateway in every process. */
START_TEST(shard_routing_does_not_depend_on_the_process_key)
{
    unsigned here = shard_gateway("user-42", 7, 8);
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    pid_t pid = fork();
    if (pid == 0) {
        seedhash_ready = false;
        seedhash_init();
        unsigned g = shard_gateway("user-42", 7, 8);
        _exit(write(p[1], &g, sizeof g) == sizeof g ? 0 : 1);
    }
    close(p[1]);
    unsigned there = 99;
    ck_assert_int_eq(read(p[0], &there, sizeof there), sizeof there);
    close(p[0]);
    waitpid(pid, NULL, 0);
    ck_assert_uint_eq(here, there);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("seedhash");
    TCase *tc = tcase_create("seedhash");
    tcase_add_test(tc, seedhash_is_stable_in_a_process_and_differs_between_processes);
    tcase_add_test(tc, seedhash_spreads_similar_ids_over_buckets);
    tcase_add_test(tc, shard_routing_does_not_depend_on_the_process_key);
    suite_add_tcase(s, tc);
    return check_run_suite(s);
}
