/* bench_slow.h - herald-bench e2e --slow-readers K: K more sessions that read very slowly
 * while position updates (a conflatable type, protocol.md 14) are published for them, beside the
 * measured sessions. Do they stay open, what do they get, and does anyone else notice? */
#ifndef HERALD_BENCH_SLOW_H
#define HERALD_BENCH_SLOW_H

#include "bench_e2e.h"

typedef struct bslow bslow_t;

/* Connect the r->slow_readers sessions (users bench-slow-<k>, spread over the gateways) and
 * wait for their welcomes, then start the thread that publishes r->slow_rate position
 * updates per second for them (its own producer connection) and reads each at
 * r->slow_read_bps. NULL (the reason on stderr) on failure. */
bslow_t *bslow_start(bench_run_t *r);

/* Stop publishing and reading, fill r->slow_* and free everything. NULL is ignored. */
void bslow_stop(bslow_t *s);

#endif
