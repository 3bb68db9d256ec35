/* skip.h - how a Check test case says it cannot run here. */
#ifndef HERALD_TEST_SKIP_H
#define HERALD_TEST_SKIP_H

#include <stdio.h>

/* Report the running Check test case as skipped, with the reason, and leave it. tests/run.sh
 * counts each "SKIP <test>: reason" line apart from passes. Use it only where the test cannot
 * run here (not root, no private mount, an optional program missing), never to hide a
 * failure. A whole test program that cannot run exits 77 instead. */
#define TEST_SKIP(...)                                                                             \
    do {                                                                                           \
        printf("SKIP %s: ", __func__);                                                             \
        printf(__VA_ARGS__);                                                                       \
        printf("\n");                                                                              \
        fflush(stdout);                                                                            \
        return;                                                                                    \
    } while (0)

#endif
