/* bench.h - herald-bench subcommands: each is a main-like entry point taking its own argv. */
#ifndef HERALD_BENCH_H
#define HERALD_BENCH_H

/* `herald-bench ring ...`: ring throughput between two processes (bench_ring.c). */
int bench_ring_main(int argc, char **argv);

/* `herald-bench broker ...`: broker ingress (native or HTTP) into rings (bench_broker.c). */
int bench_broker_main(int argc, char **argv);
/* `herald-bench e2e ...`: end to end through broker, rings, gateways and WebSocket
 * sessions (bench_e2e.c). */
int bench_e2e_main(int argc, char **argv);

#endif
