/* natsfix.h - real nats-server processes for the cluster tests: one server or a 3-server
 * JetStream cluster on free loopback ports, each with its own store dir in a private temp
 * dir; every pid and dir is recorded through tests/procs.h, so they are cleaned up even when
 * a test fails. */
#ifndef HERALD_TEST_NATSFIX_H
#define HERALD_TEST_NATSFIX_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "procs.h"

#define NATSFIX_MAX 3

typedef struct {
    int n;
    procs_env_t env;
    pid_t pid[NATSFIX_MAX]; /* 0 = not running */
    uint16_t client_port[NATSFIX_MAX], route_port[NATSFIX_MAX];
    char url[256]; /* every server: nats://127.0.0.1:p1,nats://... */
    char one_url[NATSFIX_MAX][64];
} natsfix_t;

/* The nats-server binary, or NULL when it is not installed (the suite then exits 77). */
const char *natsfix_server_path(void);

/* A cluster suite's main: SKIP (exit 77, saying why) without nats-server, else run it. */
int natsfix_run_suite(struct Suite *suite);

/* Start n (1 or 3) servers and wait until JetStream answers (a meta leader exists).
 * Returns 0 or -1. */
int natsfix_start(natsfix_t *f, int n);

/* Start server i again (same ports and store) after a kill; waits for its client port. */
int natsfix_restart(natsfix_t *f, int i);

/* Send sig to server i; SIGKILL also reaps it. */
void natsfix_signal(natsfix_t *f, int i, int sig);

/* The index of the server leading stream (asked through url), or -1. */
int natsfix_stream_leader(natsfix_t *f, const char *stream);

/* Every message of stream, in order: fn(seq, subject, data, len, ctx). Returns how many or -1. */
typedef void (*natsfix_msg_fn)(uint64_t seq, const char *subject, const void *data, int len,
                               const char *msg_id, void *ctx);
long natsfix_read_stream(natsfix_t *f, const char *stream, natsfix_msg_fn fn, void *ctx);

/* Put key's value in bucket again, as a new revision (0 or -1). */
int natsfix_kv_rewrite(natsfix_t *f, const char *bucket, const char *key);

/* Put value under key in bucket, whatever is there (0 or -1). */
int natsfix_kv_put(natsfix_t *f, const char *bucket, const char *key, const char *value);
/* Stop every server (SIGTERM, then SIGKILL). */
void natsfix_stop(natsfix_t *f);

#endif
