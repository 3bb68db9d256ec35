/* cl_state.h - what a partition's stream says so far: every user's last seq and the last
 * message ids (the dedup window). Kept by the owner as its writes are acknowledged, rebuilt
 * by a new owner from a checkpoint and the stream, saved in checkpoints. Not thread-safe. */
#ifndef HERALD_CL_STATE_H
#define HERALD_CL_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "cluster.h"

typedef struct cl_state cl_state_t;

/* An empty state remembering the last `window` message ids (>= 1). NULL on out-of-memory. */
cl_state_t *cl_state_new(uint32_t window);
void cl_state_free(cl_state_t *s);
/* Keep fn(record bytes) with every message id applied from now on (checkpoints carry it). */
void cl_state_set_fingerprint(cl_state_t *s, cl_fingerprint_fn fn);

/* Take one stored record into account: its user's last seq (never lowered) and its id (with
 * its fingerprint). */
void cl_state_apply(cl_state_t *s, const cl_rec_t *r);

/* A user's last seq, 0 if unknown. */
uint64_t cl_state_user_seq(const cl_state_t *s, const char *user, size_t len);
size_t cl_state_user_count(const cl_state_t *s);
size_t cl_state_id_count(const cl_state_t *s);

/* The checkpoint payload of s at stream position stream_seq, malloc'd (*len bytes), or NULL
 * on out-of-memory. Format in docs/cluster.md. */
uint8_t *cl_state_encode(const cl_state_t *s, uint64_t stream_seq, size_t *len);

/* Load a checkpoint payload (version 1: ids without fingerprints, or 2) into s (users' seqs
 * raised, ids appended). Returns 0 with its stream position in *stream_seq, or -1 if buf is
 * not a well-formed checkpoint (s may then hold part of it). */
int cl_state_decode(cl_state_t *s, const uint8_t *buf, size_t len, uint64_t *stream_seq);

/* The takeover view of s in one malloc'd block (free() it), or NULL on out-of-memory. */
cl_takeover_t *cl_state_takeover(const cl_state_t *s);

#endif
