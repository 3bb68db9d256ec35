/* herald-bench.c - load generator and benchmark driver: one subcommand per measure (protocol.md
 * 9). */
#include <stdio.h>
#include <string.h>

#include "bench.h"

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help;
} bench_cmd_t;

static const bench_cmd_t bench_cmds[] = {
    {"ring", bench_ring_main, "SPSC ring throughput, producer and consumer in two processes"},
    {"broker", bench_broker_main, "broker ingress (native batches or HTTP) into rings"},
    {"codec", bench_codec_main, "broker ingest decode + encode, ns per notification, in-process"},
    {"floor", bench_floor_main,
     "this machine's floor: wake-up latency, minimal HTTP responder, "
     "TCP fan-out"},
    {"e2e", bench_e2e_main, "end to end: publish -> broker -> gateways -> WebSocket sessions"},
#ifdef HERALD_CLUSTER
    {"cluster", bench_cluster_main,
     "cluster appends to NATS JetStream (cluster mode's write path)"},
#endif
};

static void bench_usage(FILE *out)
{
    fprintf(out, "usage: herald-bench <command> [options]   (<command> --help for its options)\n");
    for (size_t i = 0; i < sizeof bench_cmds / sizeof bench_cmds[0]; i++)
        fprintf(out, "  %-8s %s\n", bench_cmds[i].name, bench_cmds[i].help);
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        bench_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < sizeof bench_cmds / sizeof bench_cmds[0]; i++)
        if (strcmp(argv[1], bench_cmds[i].name) == 0) return bench_cmds[i].run(argc - 1, argv + 1);
    fprintf(stderr, "herald-bench: unknown command '%s'\n", argv[1]);
    bench_usage(stderr);
    return 2;
}
