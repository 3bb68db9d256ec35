/* bench_sys.h - a private herald system for benchmarks: a broker and N gateways started in a
 * temp runtime dir with free ports, their CPU/RSS, and their clean-up. */
#ifndef HERALD_BENCH_SYS_H
#define HERALD_BENCH_SYS_H

#include <stdint.h>
#include <sys/types.h>

#define BENCH_SYS_MAX_GW 8

typedef struct {
    char dir[96], prefix[64], config[200];
    uint16_t http, ws; /* broker HTTP port; gateway i listens on ws + i */
    unsigned gateways;
    pid_t broker, gw[BENCH_SYS_MAX_GW];
} bench_sys_t;

/* Write a config (auth.secret = secret) and start herald-broker and `gateways` herald-gateways
 * from bin_dir (a build dir with broker/ and gateway/). Returns 0 or -1 (then call
 * bench_sys_stop). */
int bench_sys_start(bench_sys_t *sys, const char *bin_dir, unsigned gateways, const char *secret);

/* SIGTERM every process, reap, remove the runtime dir and shm objects. */
void bench_sys_stop(bench_sys_t *sys);

/* CPU seconds (user + system) and RSS (MiB) of pid, from /proc. */
void bench_proc_usage(pid_t pid, double *cpu_s, double *rss_mib);

#endif
