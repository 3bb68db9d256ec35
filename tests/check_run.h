/* check_run.h - the one main of every Check suite: run it, report, return the exit status. */
#ifndef HERALD_CHECK_RUN_H
#define HERALD_CHECK_RUN_H

#include <check.h>

/* Run every case of suite (output as CK_VERBOSITY says, "normal" when unset) and free it.
 * Returns EXIT_SUCCESS when none failed, else EXIT_FAILURE: return it from main. Suites
 * that start processes use procs_run_suite (procs.h), which wraps this one. */
int check_run_suite(Suite *suite);

#endif
