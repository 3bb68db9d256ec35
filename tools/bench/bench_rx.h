/* bench_rx.h - herald-bench e2e's lean WebSocket receiver: S client sessions on plain
 * non-blocking sockets and one epoll loop, the handshake written by hand, server frames
 * parsed in place from 64 KiB reads (no per-byte parser, no extensions). */
#ifndef HERALD_BENCH_RX_H
#define HERALD_BENCH_RX_H

#include "bench_e2e.h"

typedef struct brx_pool brx_pool_t;

/* Create the pool (sessions not yet connected). NULL on failure, the reason on stderr. */
brx_pool_t *brx_create(bench_run_t *r);

/* Connect every session (at most a few hundred handshakes in flight) and wait until each
 * has its `welcome`, up to timeout_s. Returns 0 when all are welcomed, -1 otherwise (the
 * reason on stderr). */
int brx_connect_all(brx_pool_t *p, double timeout_s);

/* Serve the sessions until the publisher is done and every owed delivery arrived, or until
 * deadline (mono ns), or a stop signal. Fills the receive-side fields of the run. */
void brx_receive(brx_pool_t *p, uint64_t deadline);

/* Sessions that closed or failed after being welcomed (each one loses deliveries). */
unsigned brx_sessions_dropped(const brx_pool_t *p);

/* Close every session and free the pool. */
void brx_destroy(brx_pool_t *p);

#endif
