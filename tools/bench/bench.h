/* bench.h - herald-bench subcommands: each is a main-like entry point taking its own argv. */
#ifndef HERALD_BENCH_H
#define HERALD_BENCH_H

#include <stddef.h>
#include <stdint.h>

/* `herald-bench ring ...`: ring throughput between two processes (bench_ring.c). */
int bench_ring_main(int argc, char **argv);

/* `herald-bench broker ...`: broker ingress (native or HTTP) into rings (bench_broker.c). */
int bench_broker_main(int argc, char **argv);
/* `herald-bench e2e ...`: end to end through broker, rings, gateways and WebSocket
 * sessions (bench_e2e.c). */
int bench_e2e_main(int argc, char **argv);

/* `herald-bench codec ...`: ns per notification of the broker's ingest decode + encode,
 * object path against scan path, in this process (bench_codec.c). */
int bench_codec_main(int argc, char **argv);

/* `herald-bench floor ...`: what this machine allows with the least a server can do: wake-up
 * latency, a minimal HTTP responder's CPU per request, CPU per TCP send (bench_floor.c). */
int bench_floor_main(int argc, char **argv);

/* `herald-bench cluster ...`: the cluster layer's appends to a NATS JetStream (bench_cluster.c,
 * built with libnats). */
int bench_cluster_main(int argc, char **argv);

/* One msgpack notification of herald-bench's shape for user u with `payload` bytes of
 * content; with id_off, a BB_ID_LEN-digit message_id (zeros) whose offset in sb is stored
 * there (bench_broker.c). */
#define BB_ID_LEN 16
struct msgpack_packer;
struct msgpack_sbuffer;
void bench_pack_notif(struct msgpack_packer *pk, struct msgpack_sbuffer *sb, uint32_t u,
                      uint32_t payload, size_t *id_off);

#endif
