/* hstreams.h - the partition streams of a cluster test, read back from the NATS servers. */
#ifndef HERALD_TEST_HSTREAMS_H
#define HERALD_TEST_HSTREAMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hnode.h"
#include "natsfix.h"

/* One notification as stored: its user, message id and seq. */
typedef struct {
    char user[32], id[48];
    uint64_t seq;
} srec_t;

typedef struct {
    srec_t *v;
    size_t n, cap;
    bool bad;
} srecs_t;

/* natsfix_read_stream's visitor: appends the records of round messages to the srecs_t ctx
 * (bad set for a round that does not parse). */
void hstreams_collect(uint64_t seq, const char *subject, const void *data, int len,
                      const char *msg_id, void *ctx);

/* Every partition's stream (0..parts, the last the broadcast one) against the load: each
 * user's seqs are 1..N in stream order, each message id is stored once, and what is stored is
 * exactly what was acknowledged (every acknowledged item with its seq; nothing stored that the
 * load did not get acknowledged). Fails the running Check test otherwise. */
void hstreams_verify(natsfix_t *nf, unsigned parts, const hload_t *l);

#endif
