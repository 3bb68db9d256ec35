/* test_err.c - error codes: stable names and the error record helper. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "check_run.h"
#include "err.h"

START_TEST(err_codes_have_distinct_stable_names)
{
    ck_assert_str_eq(herr_code(HERR_TOO_LARGE), "too_large");
    ck_assert_str_eq(herr_code(HERR_QUEUE_FULL), "queue_full");
    ck_assert_str_eq(herr_code(HERR_UNAUTHORIZED), "unauthorized");
    for (unsigned a = 0; a < HERR__COUNT; a++) {
        ck_assert_uint_eq(herr_index(herr_at(a)), a);
        if (herr_at(a) != HERR_INTERNAL) ck_assert_str_ne(herr_code(herr_at(a)), "internal");
        for (unsigned b = a + 1; b < HERR__COUNT; b++)
            ck_assert_str_ne(herr_code(herr_at(a)), herr_code(herr_at(b)));
    }
    ck_assert_str_eq(herr_code((herr_t)999), "internal");
    ck_assert_str_eq(herr_code((herr_t)5), "internal"); /* an errno value is not a code */
}
END_TEST

/* No code collides with an errno value: a stray -errno is never read as one of ours. */
START_TEST(err_codes_are_apart_from_errno_values)
{
    for (unsigned a = 1; a < HERR__COUNT; a++)
        ck_assert_int_ge((int)herr_at(a), HERR_BASE);
    ck_assert_int_gt(HERR_BASE, EHWPOISON); /* the largest errno value Linux returns */
    ck_assert_int_eq(HERR_OK, 0);
}
END_TEST

START_TEST(err_set_names_field_and_returns_negative_code)
{
    herald_error_t e;
    int rc = herr_set(&e, HERR_MISSING_FIELD, "payload.order_id", "%s is required", "order_id");
    ck_assert_int_eq(rc, -HERR_MISSING_FIELD);
    ck_assert_int_eq(e.code, HERR_MISSING_FIELD);
    ck_assert_str_eq(e.field, "payload.order_id");
    ck_assert_str_eq(e.message, "order_id is required");
    ck_assert_int_eq(herr_set(NULL, HERR_IO, NULL, "x"), -HERR_IO);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("err");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, err_codes_have_distinct_stable_names);
    tcase_add_test(tc, err_set_names_field_and_returns_negative_code);
    tcase_add_test(tc, err_codes_are_apart_from_errno_values);
    suite_add_tcase(s, tc);
    return check_run_suite(s);
}
