/* broker_suite.h - the broker process suites' fixture (test_broker*.c): one broker H, two
 * test gateways G, and helpers to start, publish and attach. Each suite that includes it
 * has its own copy: the state is static, the helpers static inline. */
#ifndef HERALD_TEST_BROKER_SUITE_H
#define HERALD_TEST_BROKER_SUITE_H

#include <check.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "bk_harness.h"
#include "frame.h"
#include "proto.h"

static bkh_t H;
static bkh_gw_t G[2];
static bool exit_hook;

static inline void cleanup(void)
{
    bkh_gw_free(&G[0]);
    bkh_gw_free(&G[1]);
    bkh_cleanup(&H);
}

/* Start a broker with overrides; clean-up runs on any exit of the test process. */
static inline void start(const char *const *over)
{
    if (!exit_hook) {
        atexit(cleanup);
        exit_hook = true;
    }
    bkh_init(&H, over);
    ck_assert_msg(bkh_start(&H) == 0, "broker did not start (log %s)", H.logpath);
}

static inline herald_client_t *client(void)
{
    herald_error_t err;
    herald_client_t *c = herald_connect(H.sock, &err);
    ck_assert_msg(c != NULL, "connect: %s", err.message);
    return c;
}

static inline herald_result_t publish(herald_client_t *c, const char *user, int prio,
                                      const char *id)
{
    char json[512];
    bkh_notice_json(json, sizeof json, user, prio, id);
    return bkh_publish_json(c, json);
}

static inline void attach_and_open(int gi, unsigned id, const char *user)
{
    ck_assert_int_eq(bkh_gw_attach(&G[gi], &H, id), 0);
    size_t from = G[gi].n;
    ck_assert_int_eq(bkh_gw_open(&G[gi], 1, user, 0), 0);
    ck_assert_int_ge(bkh_gw_wait_type(&G[gi], from, REC_SESSION_READY, 5000), 0);
}

static inline size_t count_type(bkh_gw_t *g, uint32_t type)
{
    size_t n = 0;
    for (size_t i = 0; i < g->n; i++)
        n += g->recs[i].type == type;
    return n;
}

/* A native batch body: n copies of item (ilen bytes) in a msgpack array; *len gets its size. */
static inline uint8_t *batch_body(uint32_t n, const void *item, size_t ilen, size_t *len)
{
    *len = 5 + (size_t)n * ilen;
    uint8_t *b = malloc(*len);
    ck_assert_ptr_nonnull(b);
    b[0] = 0xdd;
    frame_put_len(b + 1, n); /* big-endian u32, as in the frame header */
    for (uint32_t i = 0; i < n; i++)
        memcpy(b + 5 + (size_t)i * ilen, item, ilen);
    return b;
}

#endif
