/* sec_util.h - the security suites' tools: act as another local user (nobody), send
 * framed requests on a fresh connection and read the answer, read logs, run the broker
 * until it stops. Shared by test_security.c and test_security_peers.c. */
#ifndef HERALD_TEST_SEC_UTIL_H
#define HERALD_TEST_SEC_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bk_harness.h"
#include "skip.h"

#define NOBODY 65534

#define NEED_ROOT()                                                                                \
    do {                                                                                           \
        if (geteuid() != 0) TEST_SKIP("needs root to act as a second user (nobody)");              \
    } while (0)

/* Run fn(arg) in a child that has become nobody (uid, gid 65534, no other groups). Returns
 * fn's result, 100 when the privileges could not be dropped, 200 when the child died. */
int sec_as_nobody(int (*fn)(void *), void *arg);

/* One request on a fresh connection, as whoever runs it (xchg_run, also as sec_as_nobody's
 * fn). */

typedef struct {
    char path[100];   /* unix socket, or "" for TCP */
    uint16_t port;    /* 127.0.0.1 port when path is "" */
    uint8_t out[512]; /* framed requests sent after connecting */
    size_t out_len;
    /* results */
    int connect_errno; /* 0 = connected */
    size_t in_len;     /* body of the first response frame, 0 = none */
    uint8_t in[4096];
    bool closed; /* the broker closed the connection (EOF/reset) within 3 s of the answer */
} xchg_t;

/* A zeroed xchg_t on a shared page, so that a child running as nobody can hand its results
 * back (munmap it when done). */
xchg_t *xchg_new(void);

/* Append the framed msgpack form of JSON text to x's requests. */
void xchg_add(xchg_t *x, const char *json);

/* Connect, send x's requests, read the first answer and whether the peer closed. Returns 0. */
int xchg_run(void *arg);

/* Does the first answer hold s? */
bool xchg_in_has(const xchg_t *x, const char *s);

/* Does the file hold needle / how many times? (0 / false when it cannot be read) */
bool sec_file_contains(const char *path, const char *needle);
int sec_count_in_file(const char *path, const char *needle);

/* The broker alone with extra -o overrides; returns its exit status (it must stop). */
int sec_broker_exit_status(bkh_t *h, const char *const *extra);

#endif
