/* test_gw_users.c - the gateway's user and session tables (gateway/users.c). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_run.h"
#include "users.h"

static gw_session_t *add(gw_users_t *t, const char *user, bool acks)
{
    gw_session_t *s = calloc(1, sizeof *s);
    ck_assert_ptr_nonnull(s);
    s->acks = acks;
    gw_users_add(t, s, user);
    return s;
}

START_TEST(users_links_sessions_to_their_user_newest_first_and_counts_them)
{
    gw_users_t *t = gw_users_new(100);
    gw_session_t *a = add(t, "u1", false), *b = add(t, "u1", true), *c = add(t, "u2", false);
    ck_assert_uint_eq(a->id, 101);
    ck_assert_uint_eq(b->id, 102);
    ck_assert_uint_eq(c->id, 103);
    gw_user_t *u1 = gw_users_find(t, "u1", 2);
    ck_assert_ptr_nonnull(u1);
    ck_assert_ptr_eq(a->user, u1);
    ck_assert_ptr_eq(u1->sessions, b);
    ck_assert_ptr_eq(b->unext, a);
    ck_assert_uint_eq(u1->n_sessions, 2);
    ck_assert_uint_eq(u1->n_open, 2);
    ck_assert_uint_eq(u1->n_acks, 1);
    ck_assert_ptr_eq(gw_users_all(t), c);
    ck_assert_uint_eq(gw_users_n_sessions(t), 3);
    ck_assert_uint_eq(gw_users_n_users(t), 2);
    ck_assert_ptr_eq(gw_users_session(t, 102), b);
    ck_assert_ptr_null(gw_users_session(t, 104));
    /* "u" is a prefix of both ids, not a user */
    ck_assert_ptr_null(gw_users_find(t, "u", 1));
    gw_users_remove(t, c);
    gw_users_remove(t, b);
    gw_users_remove(t, a);
    free(a);
    free(b);
    free(c);
    gw_users_free(t);
}
END_TEST

START_TEST(users_drops_a_user_with_its_last_session_and_keeps_the_broadcast_user)
{
    gw_users_t *t = gw_users_new(0);
    gw_session_t *a = add(t, "u1", true), *b = add(t, "u1", false);
    b->close_code = 4009; /* a closing session no longer counts as open */
    b->user->n_open--;
    gw_users_remove(t, b);
    gw_user_t *u1 = gw_users_find(t, "u1", 2);
    ck_assert_ptr_nonnull(u1);
    ck_assert_uint_eq(u1->n_sessions, 1);
    ck_assert_uint_eq(u1->n_open, 1);
    ck_assert_uint_eq(u1->n_acks, 1);
    ck_assert_ptr_null(b->user);
    ck_assert_ptr_null(gw_users_session(t, b->id));
    gw_users_remove(t, a);
    ck_assert_ptr_null(gw_users_find(t, "u1", 2));
    ck_assert_uint_eq(gw_users_n_users(t), 0);
    ck_assert_ptr_null(gw_users_all(t));
    ck_assert_str_eq(gw_users_bcast(t)->id, "*");
    ck_assert_ptr_null(gw_users_find(t, "*", 1)); /* the broadcast user is in no table */
    free(a);
    free(b);
    gw_users_free(t);
}
END_TEST

static void count_user(gw_user_t *u, void *ctx)
{
    (void)u;
    (*(unsigned *)ctx)++;
}

START_TEST(users_tables_grow_past_their_first_size_and_find_every_entry)
{
    enum { N = 5000 };
    gw_users_t *t = gw_users_new(0);
    gw_session_t **s = calloc(N, sizeof *s);
    char id[32];
    for (unsigned i = 0; i < N; i++) {
        snprintf(id, sizeof id, "user-%u", i / 2); /* two sessions per user */
        s[i] = add(t, id, false);
    }
    ck_assert_uint_eq(gw_users_n_users(t), N / 2);
    unsigned users = 0;
    gw_users_each(t, count_user, &users);
    ck_assert_uint_eq(users, N / 2);
    for (unsigned i = 0; i < N; i++) {
        snprintf(id, sizeof id, "user-%u", i / 2);
        ck_assert_ptr_eq(gw_users_session(t, s[i]->id), s[i]);
        ck_assert_ptr_eq(gw_users_find(t, id, strlen(id)), s[i]->user);
    }
    for (unsigned i = 0; i < N; i += 2)
        gw_users_remove(t, s[i]);
    ck_assert_uint_eq(gw_users_n_sessions(t), N / 2);
    ck_assert_uint_eq(gw_users_n_users(t), N / 2);
    for (unsigned i = 0; i < N; i++)
        ck_assert_ptr_eq(gw_users_session(t, s[i]->id), i % 2 ? s[i] : NULL);
    for (unsigned i = 1; i < N; i += 2)
        gw_users_remove(t, s[i]);
    ck_assert_uint_eq(gw_users_n_users(t), 0);
    for (unsigned i = 0; i < N; i++)
        free(s[i]);
    free(s);
    gw_users_free(t);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("gw_users");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, users_links_sessions_to_their_user_newest_first_and_counts_them);
    tcase_add_test(tc, users_drops_a_user_with_its_last_session_and_keeps_the_broadcast_user);
    tcase_add_test(tc, users_tables_grow_past_their_first_size_and_find_every_entry);
    suite_add_tcase(s, tc);
    return check_run_suite(s);
}
