/* check_run.c - the one main of every Check suite (see check_run.h). */
#include "check_run.h"

#include <stdlib.h>

int check_run_suite(Suite *suite)
{
    SRunner *sr = srunner_create(suite);
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
