/* bench_check.h - herald-bench e2e's per-session delivery checks (loss, duplicates, order per
 * priority, foreign) and latency recording, shared by both receivers. */
#ifndef HERALD_BENCH_CHECK_H
#define HERALD_BENCH_CHECK_H

#include "bench_e2e.h"
#include "bench_parse.h"

typedef struct {
    unsigned user;                        /* index into r->user_ids */
    uint64_t last_seq[HERALD_PRIORITIES]; /* order check per priority (protocol.md 4) */
    uint8_t *seen;                        /* bit k: the user's k-th notification arrived */
} bcheck_t;

/* Allocate c's bitmap for user. Returns 0, or -1 on out-of-memory. */
int bcheck_init(bcheck_t *c, const bench_run_t *r, unsigned user);

/* Forget what c saw (for repeated self-test rounds). */
void bcheck_reset(bcheck_t *c, const bench_run_t *r);

void bcheck_free(bcheck_t *c);

/* Parse one text message of c's session and account for it in r (notification checks and
 * latency, other/malformed counters). Returns the message kind (what was parsed in *out, if
 * not NULL); BMSG_WELCOME is left to the caller. */
bmsg_kind_t bcheck_frame(bench_run_t *r, bcheck_t *c, const char *data, size_t len, bmsg_t *out);

#endif
