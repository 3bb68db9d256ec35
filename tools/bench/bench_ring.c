/* bench_ring.c - `herald-bench ring`: records/s and GB/s through one ring between two processes.
 *
 * Each run creates a fresh ring, forks the consumer (pinned to the last CPU; the producer
 * stays on CPU 0), and times from the producer's first write to the consumer's last read
 * (CLOCK_MONOTONIC is shared by both processes). The producer writes batches and publishes
 * once per batch; the consumer reads in batches, checks every record's sequence number,
 * spins briefly when the ring is empty and then sleeps on the doorbell. The median of the
 * runs is reported as one JSON line and a table.
 */
#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "doorbell.h"
#include "herald_time.h"
#include "ring.h"

#define BENCH_TIMEOUT_S 120
#define BENCH_MAX_RUNS  32

typedef struct {
    uint32_t size;
    uint64_t count;
    int runs;
    size_t ring_bytes;
    uint32_t batch;
    bool pin;
} ring_bench_opts_t;

/* What the consumer sends back to the producer when it has read everything. */
typedef struct {
    uint64_t end_ns, received, out_of_order, sleeps;
} ring_bench_result_t;

typedef struct {
    double rec_per_s, gb_per_s, prod_cpu_s, cons_cpu_s;
    uint64_t sleeps, wakeups;
} ring_bench_run_t;

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void pin_to(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    sched_setaffinity(0, sizeof set, &set);
}

static double rusage_cpu_s(const struct rusage *ru)
{
    return (double)ru->ru_utime.tv_sec + (double)ru->ru_utime.tv_usec / 1e6 +
           (double)ru->ru_stime.tv_sec + (double)ru->ru_stime.tv_usec / 1e6;
}

static int consume_record(uint32_t type, const uint8_t *data, uint32_t len, void *ctx)
{
    ring_bench_result_t *res = ctx;
    uint64_t seq = res->received;
    if (len >= 8) memcpy(&seq, data, 8);
    (void)type;
    res->out_of_order += seq != res->received;
    res->received++;
    return 0;
}

/* The consumer process: read `count` records, then report through fd. */
static int bench_consumer(const char *name, const ring_bench_opts_t *o, int ready_fd, int result_fd)
{
    herald_error_t err;
    ring_t *r;
    if (ring_open(&r, name, RING_CONSUMER, 0, 0, &err) < 0) {
        fprintf(stderr, "herald-bench: consumer: %s\n", err.message);
        return 1;
    }
    ring_bench_result_t res = {0};
    char go = 1;
    if (write(ready_fd, &go, 1) != 1) return 1;
    uint64_t deadline = mono_ns() + BENCH_TIMEOUT_S * 1000000000ull;
    unsigned idle = 0;
    while (res.received < o->count) {
        long n = ring_read_batch(r, consume_record, &res, 4096);
        if (n > 0) {
            idle = 0;
            continue;
        }
        if (n < 0) {
            fprintf(stderr, "herald-bench: consumer: corrupt record\n");
            return 1;
        }
        if (++idle < 4096) {
            cpu_relax();
            continue;
        }
        if (mono_ns() > deadline) break;
        uint32_t v;
        if (ring_prepare_sleep(r, &v)) {
            res.sleeps++;
            doorbell_wait(ring_doorbell_word(r), v, 100);
            ring_end_sleep(r);
        }
        idle = 0;
    }
    res.end_ns = mono_ns();
    ring_close(r);
    return write(result_fd, &res, sizeof res) == (ssize_t)sizeof res ? 0 : 1;
}

/* The producer (this process): write count records of o->size bytes, each starting with its
 * sequence number (as the broker writes an encoded notification from its own buffer). */
static int bench_produce(ring_t *r, const ring_bench_opts_t *o, uint8_t *payload)
{
    uint64_t seq = 0, spins = 0;
    uint64_t deadline = mono_ns() + BENCH_TIMEOUT_S * 1000000000ull;
    size_t seq_bytes = o->size >= 8 ? 8 : 0;
    while (seq < o->count) {
        uint64_t end = seq + o->batch < o->count ? seq + o->batch : o->count;
        for (; seq < end; seq++) {
            memcpy(payload, &seq, seq_bytes);
            int rc = ring_write(r, RING_REC_USER, payload, o->size);
            if (rc == -HERR_NO_ROOM) break;
            if (rc < 0) {
                fprintf(stderr, "herald-bench: ring_write: %s\n", herr_code((herr_t)-rc));
                return -1;
            }
        }
        if (ring_publish(r)) ring_wake(r);
        if (seq < end) { /* full: let the consumer catch up */
            cpu_relax();
            if ((++spins & 0xffff) == 0 && mono_ns() > deadline) return -1;
        }
    }
    return 0;
}

static int bench_ring_once(const ring_bench_opts_t *o, int run, ring_bench_run_t *out)
{
    char name[96];
    snprintf(name, sizeof name, "herald-bench.%d.%d.ring", (int)getpid(), run);
    herald_error_t err;
    ring_t *r;
    if (ring_open(&r, name, RING_PRODUCER, o->ring_bytes, 0, &err) < 0) {
        fprintf(stderr, "herald-bench: %s\n", err.message);
        return -1;
    }
    int rc = -1, ready[2] = {-1, -1}, result[2] = {-1, -1};
    uint8_t *payload = calloc(1, o->size + 8);
    if (!payload || pipe(ready) < 0 || pipe(result) < 0) goto out;
    for (uint32_t i = 0; i < o->size; i++)
        payload[i] = (uint8_t)i;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    pid_t pid = fork();
    if (pid < 0) goto out;
    if (pid == 0) {
        if (o->pin && ncpu > 1) pin_to((int)ncpu - 1);
        _exit(bench_consumer(name, o, ready[1], result[1]));
    }
    if (o->pin) pin_to(0);
    char go;
    struct rusage ru0, ru1, ruc;
    ring_bench_result_t res = {0};
    if (read(ready[0], &go, 1) != 1) goto reap;
    getrusage(RUSAGE_SELF, &ru0);
    uint64_t t0 = mono_ns();
    if (bench_produce(r, o, payload) < 0) {
        kill(pid, SIGKILL);
        goto reap;
    }
    getrusage(RUSAGE_SELF, &ru1);
    if (read(result[0], &res, sizeof res) != (ssize_t)sizeof res) goto reap;
    if (res.received != o->count || res.out_of_order) {
        fprintf(stderr, "herald-bench: consumer got %llu records, %llu out of order\n",
                (unsigned long long)res.received, (unsigned long long)res.out_of_order);
        goto reap;
    }
    double secs = (double)(res.end_ns - t0) / 1e9;
    out->rec_per_s = (double)o->count / secs;
    out->gb_per_s = (double)o->count * o->size / secs / 1e9;
    out->prod_cpu_s = rusage_cpu_s(&ru1) - rusage_cpu_s(&ru0);
    out->sleeps = res.sleeps;
    out->wakeups = atomic_load(&ring_header(r)->wakeups);
    rc = 0;
reap:
    if (wait4(pid, NULL, 0, &ruc) == pid) out->cons_cpu_s = rusage_cpu_s(&ruc);
out:
    for (int i = 0; i < 2; i++) {
        if (ready[i] >= 0) close(ready[i]);
        if (result[i] >= 0) close(result[i]);
    }
    free(payload);
    ring_close(r);
    ring_unlink(name);
    return rc;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

typedef struct {
    uint32_t size;
    uint64_t count;
    double rec_med, gb_med, rec_min, rec_max, prod_cpu, cons_cpu;
    uint64_t sleeps;
    double all[BENCH_MAX_RUNS];
    int runs;
} ring_bench_summary_t;

static int bench_ring_size(const ring_bench_opts_t *o, ring_bench_summary_t *s)
{
    double gb[BENCH_MAX_RUNS], pc[BENCH_MAX_RUNS], cc[BENCH_MAX_RUNS];
    s->size = o->size;
    s->count = o->count;
    s->runs = o->runs;
    s->sleeps = 0;
    for (int i = 0; i < o->runs; i++) {
        ring_bench_run_t run = {0};
        if (bench_ring_once(o, i, &run) < 0) return -1;
        s->all[i] = run.rec_per_s;
        gb[i] = run.gb_per_s;
        pc[i] = run.prod_cpu_s;
        cc[i] = run.cons_cpu_s;
        s->sleeps += run.sleeps;
    }
    double sorted[BENCH_MAX_RUNS];
    memcpy(sorted, s->all, sizeof(double) * (size_t)o->runs);
    s->rec_med = median(sorted, o->runs);
    s->rec_min = sorted[0];
    s->rec_max = sorted[o->runs - 1];
    s->gb_med = median(gb, o->runs);
    s->prod_cpu = median(pc, o->runs);
    s->cons_cpu = median(cc, o->runs);
    return 0;
}

static void bench_ring_usage(FILE *out)
{
    fprintf(out, "usage: herald-bench ring [--size N] [--count N] [--runs K] [--ring-bytes N]\n"
                 "                         [--batch N] [--no-pin]\n"
                 "  --size N        payload bytes per record (default: 64 and 1024)\n"
                 "  --count N       records per run (default 50M for <= 256 B, else 5M)\n"
                 "  --runs K        runs per size; the median is reported (default 5)\n"
                 "  --ring-bytes N  ring capacity (default 16 MiB, as deployed)\n"
                 "  --batch N       records per publish (default 256)\n"
                 "  --no-pin        do not pin producer and consumer to separate CPUs\n");
}

int bench_ring_main(int argc, char **argv)
{
    ring_bench_opts_t o = {.runs = 5, .ring_bytes = 16u << 20, .batch = 256, .pin = true};
    uint32_t size = 0;
    uint64_t count = 0;
    static const struct option opts[] = {
        {"size", 1, 0, 's'},  {"count", 1, 0, 'n'},  {"runs", 1, 0, 'r'}, {"ring-bytes", 1, 0, 'b'},
        {"batch", 1, 0, 'B'}, {"no-pin", 0, 0, 'P'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            size = (uint32_t)strtoul(optarg, NULL, 0);
            break;
        case 'n':
            count = strtoull(optarg, NULL, 0);
            break;
        case 'r':
            o.runs = atoi(optarg);
            break;
        case 'b':
            o.ring_bytes = strtoull(optarg, NULL, 0);
            break;
        case 'B':
            o.batch = (uint32_t)strtoul(optarg, NULL, 0);
            break;
        case 'P':
            o.pin = false;
            break;
        case 'h':
            bench_ring_usage(stdout);
            return 0;
        default:
            bench_ring_usage(stderr);
            return 2;
        }
    }
    if (o.runs < 1 || o.runs > BENCH_MAX_RUNS || o.batch == 0) {
        fprintf(stderr, "herald-bench ring: --runs must be 1..%d, --batch > 0\n", BENCH_MAX_RUNS);
        return 2;
    }
    uint32_t sizes[2] = {64, 1024};
    int nsizes = 2;
    if (size) {
        sizes[0] = size;
        nsizes = 1;
    }
    ring_bench_summary_t sum[2];
    for (int i = 0; i < nsizes; i++) {
        o.size = sizes[i];
        o.count = count ? count : o.size <= 256 ? 50000000ull : 5000000ull;
        if (bench_ring_size(&o, &sum[i]) < 0) {
            fprintf(stderr, "herald-bench ring: run failed (size %u)\n", o.size);
            return 1;
        }
    }
    printf("{\"bench\":\"ring\",\"ring_bytes\":%zu,\"batch\":%u,\"pinned\":%s,\"results\":[",
           o.ring_bytes, o.batch, o.pin ? "true" : "false");
    for (int i = 0; i < nsizes; i++) {
        ring_bench_summary_t *s = &sum[i];
        printf("%s{\"size\":%u,\"count\":%llu,\"runs\":%d,\"records_per_s\":%.0f,"
               "\"gb_per_s\":%.3f,\"records_per_s_min\":%.0f,\"records_per_s_max\":%.0f,"
               "\"producer_cpu_s\":%.3f,\"consumer_cpu_s\":%.3f,\"consumer_sleeps\":%llu,"
               "\"runs_records_per_s\":[",
               i ? "," : "", s->size, (unsigned long long)s->count, s->runs, s->rec_med, s->gb_med,
               s->rec_min, s->rec_max, s->prod_cpu, s->cons_cpu, (unsigned long long)s->sleeps);
        for (int k = 0; k < s->runs; k++)
            printf("%s%.0f", k ? "," : "", s->all[k]);
        printf("]}");
    }
    printf("]}\n");
    printf("\n%8s %12s %6s %14s %9s %14s %14s\n", "size", "count", "runs", "median rec/s", "GB/s",
           "min rec/s", "max rec/s");
    for (int i = 0; i < nsizes; i++)
        printf("%8u %12llu %6d %14.0f %9.3f %14.0f %14.0f\n", sum[i].size,
               (unsigned long long)sum[i].count, sum[i].runs, sum[i].rec_med, sum[i].gb_med,
               sum[i].rec_min, sum[i].rec_max);
    return 0;
}
