/* bench_report.h - herald-bench e2e results: one JSON line on stdout, a table on stderr. */
#ifndef HERALD_BENCH_REPORT_H
#define HERALD_BENCH_REPORT_H

#include "bench_e2e.h"
#include "bench_procs.h"

typedef struct {
    uint64_t expected;      /* deliveries owed for acknowledged notifications */
    uint64_t lost;          /* expected - received (never negative) */
    double elapsed_s;       /* first publish -> last delivery (or last ack) */
    double delivered_per_s; /* received / elapsed: includes the P2/P3 flush-delay tail */
    double peak_per_s;      /* most deliveries in any 1 s window (sustained rate) */
    double steady_per_s;    /* deliveries/s over the middle 80 % of publishing (0: too short) */
    double herald_cpu_s;    /* broker + gateways during the measurement */
    double herald_cpu_us_per_delivery;
    double bench_cpu_s;      /* whole bench process during the measurement */
    double rx_ceiling_per_s; /* deliveries per CPU second of the receive loop */
    unsigned dropped_sessions;
} bench_totals_t;

/* Derive the totals of a finished run. */
void bench_totals(const bench_run_t *r, unsigned dropped_sessions, double bench_cpu_s,
                  bench_totals_t *t);

/* Derive the herald CPU figures once the processes are sampled. */
void bench_totals_cpu(const bench_run_t *r, const bprocs_t *ps, bench_totals_t *t);

/* Write the JSON line (stdout) and the readable table (stderr). */
void bench_report(const bench_run_t *r, const bprocs_t *ps, const bench_totals_t *t);

/* --idle: gateway memory per idle session, from RSS before the sessions and after settling. */
void bench_report_idle(const bench_run_t *r, const bprocs_t *ps, double settle_s);

#endif
