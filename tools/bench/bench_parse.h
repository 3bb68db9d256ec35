/* bench_parse.h - what herald-bench reads from a server frame: a fast path for the gateway's
 * notification rendering and a full JSON fallback (jansson) for anything else. */
#ifndef HERALD_BENCH_PARSE_H
#define HERALD_BENCH_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"

typedef enum {
    BMSG_NOTIFICATION = 0,
    BMSG_WELCOME,
    BMSG_OTHER,     /* valid JSON object of another type (error, gap, pong ...) */
    BMSG_MALFORMED, /* not JSON, or a notification without the fields below */
} bmsg_kind_t;

/* The fields the bench needs. `bench_t0` and `bench_i` are payload fields the bench puts
 * in every notification it publishes (send time on CLOCK_MONOTONIC, publish index). */
typedef struct {
    bmsg_kind_t kind;
    uint64_t seq;
    unsigned priority;
    uint64_t bench_t0;
    uint64_t bench_i;
    char user_id[HERALD_MAX_ID_LEN + 1];
    char message_type[24]; /* of a notification ("" if longer) */
    char type[24];         /* the "type" field for BMSG_OTHER (truncated) */
} bmsg_t;

/* Parse one frame. Tries the fast path (fields in the order json_render_notif writes them,
 * bench fields first in the payload), falls back to a full parse. Returns m->kind. */
bmsg_kind_t bparse_frame(const char *s, size_t len, bmsg_t *m);

/* The full-parse path alone (exposed so tests can check both paths agree). */
bmsg_kind_t bparse_frame_slow(const char *s, size_t len, bmsg_t *m);

#endif
