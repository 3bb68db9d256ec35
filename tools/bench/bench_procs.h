/* bench_procs.h - the herald processes under test: spawn a private broker and gateways,
 * find running ones, sample their CPU and memory from /proc, stop and clean up. */
#ifndef HERALD_BENCH_PROCS_H
#define HERALD_BENCH_PROCS_H

#include <stdbool.h>
#include <sys/types.h>

#include "bench_e2e.h"

typedef struct {
    char name[24]; /* "broker", "gateway0", ... */
    pid_t pid;     /* 0 = unknown */
    bool ours;     /* started by us: stop and reap it */
    double cpu0_s; /* user+system seconds at the start of the measurement */
    double cpu_s;  /* ... at the end */
    long rss0_kib; /* VmRSS at the start */
    long rss_kib;  /* VmRSS at the end */
    long hwm_kib;  /* VmHWM (peak RSS) at the end */
} bproc_t;

typedef struct {
    bproc_t procs[1 + BENCH_MAX_GATEWAYS];
    unsigned n;
    double sys_busy0_s;  /* machine-wide busy CPU seconds (/proc/stat) at the start */
    double sys_busy_s;   /* ... at the end */
    char run_dir[128];   /* private runtime dir (spawn mode), "" otherwise */
    char shm_prefix[64]; /* our shm prefix (spawn mode) */
} bprocs_t;

/* Spawn mode: choose a private runtime dir, shm prefix and free loopback ports, write them
 * as overrides into r (and r->cfg), start herald-broker then r->gateways herald-gateway
 * processes, and wait until each accepts connections. Returns 0, or -1 with the reason on
 * stderr (whatever was started is left in ps for bprocs_stop). */
int bprocs_spawn(bprocs_t *ps, bench_run_t *r);

/* Target mode: find the pids of a running herald (or of every --node) from its rings'
 * headers. */
void bprocs_find(bprocs_t *ps, const bench_run_t *r);

/* Sample CPU (start = true: the baseline) and, at the end, memory of every known process;
 * also the machine's busy CPU time, so a report shows load from processes not ours. */
void bprocs_sample(bprocs_t *ps, bool start);

/* Stop the processes we started (SIGTERM, then SIGKILL after 5 s), reap them, remove our
 * runtime dir and every /dev/shm object with our prefix. Safe to call more than once. */
void bprocs_stop(bprocs_t *ps);

#endif
