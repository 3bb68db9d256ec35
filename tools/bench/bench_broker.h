/* bench_broker.h - `herald-bench broker`'s parts: the run (bench_broker.c: the private
 * broker, the bench gateway, the median) and the producers (bench_broker_load.c). */
#ifndef HERALD_BENCH_BROKER_H
#define HERALD_BENCH_BROKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <msgpack.h>

#define BB_TIMEOUT_S 120 /* bound on one run's publishing and draining */

typedef struct {
    const char *mode; /* native | http | http1 */
    uint64_t count;
    uint32_t batch, pipeline, users, runs, payload, conns;
    bool no_ids; /* leave message_id out: the broker generates one per notification */
    const char *broker_bin;
} bb_opts_t;

/* A private broker of one run. */
typedef struct {
    char dir[64], prefix[64], sock[100], ctrl[100];
    uint16_t http_port;
    pid_t pid;
} bb_broker_t;

/* Pack s as a msgpack str. */
void bb_pk_str(msgpack_packer *pk, const char *s);

/* Publish o->count notifications to broker b, each a way: pipelined native batch frames on
 * one connection (*refused counts notifications the broker refused), JSON array bodies on
 * keep-alive HTTP connections, or one notification per HTTP/1.1 request (bench_http1).
 * Return 0, or -1 with the reason on stderr. */
int bb_produce_native(const bb_broker_t *b, const bb_opts_t *o, uint64_t *refused);
int bb_produce_http(const bb_broker_t *b, const bb_opts_t *o);
int bb_produce_http1(const bb_broker_t *b, const bb_opts_t *o);

#endif
