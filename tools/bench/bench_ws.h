/* bench_ws.h - herald-bench's WebSocket session pool: S client sessions in one lws context,
 * each authenticated with its own JWT, checked and timed on every notification. */
#ifndef HERALD_BENCH_WS_H
#define HERALD_BENCH_WS_H

#include "bench_e2e.h"

typedef struct bws_pool bws_pool_t;

/* Create the pool (one lws client context, sessions not yet connected). NULL on failure,
 * with the reason on stderr. */
bws_pool_t *bws_create(bench_run_t *r);

/* Connect every session (at most a few hundred handshakes in flight) and wait until each
 * has its `welcome`, up to timeout_s. Returns 0 when all are welcomed, -1 otherwise (the
 * reason on stderr). */
int bws_connect_all(bws_pool_t *p, double timeout_s);

/* Serve the sessions until the publisher is done and every owed delivery arrived, or until
 * deadline (mono ns), or a stop signal. Fills the receive-side fields of the run. */
void bws_receive(bws_pool_t *p, uint64_t deadline);

/* Sessions that closed or failed after being welcomed (each one loses deliveries). */
unsigned bws_sessions_dropped(const bws_pool_t *p);

/* Self-test of the per-frame receive path (RFC 6455 framing as the lean receiver parses
 * it, JSON parse, checks, histogram) without sockets: run `rounds` passes over `frames`
 * notification frames rendered like the gateway's, addressed to r's users. Returns the thread CPU seconds spent, or -1 on out-of-memory. */
double bws_selftest(bench_run_t *r, unsigned frames, unsigned rounds);

/* Close every session and free the pool. */
void bws_destroy(bws_pool_t *p);

#endif
