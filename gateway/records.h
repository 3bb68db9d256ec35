/* records.h - the ring record stream (proto.h): session readiness, live notifications fanned
 * out to the user's sessions, per-user seq gap detection with held records and session-0
 * replay, session-addressed replays for resume, re-sends for acknowledged delivery. */
#ifndef HERALD_GW_RECORDS_H
#define HERALD_GW_RECORDS_H

#include <stdint.h>

#include "gw.h"
#include "users.h"

/* ring_read_batch's callback (ctx is the gw_t): one record of type. Bad records are
 * counted (bad_records) and skipped; always returns 0. */
int gw_records_on_record(uint32_t type, const uint8_t *data, uint32_t len, void *ctx);
/* The session-addressed replay of s ended at `to`: answer `resumed` if a resume waits for
 * it (frames replayed so far are flushed first) and stop accepting replayed records. */
void gw_records_replay_end(gw_t *g, gw_session_t *s, uint64_t to);
/* After the broker link came (back) up: open the sessions still waiting for READY, and
 * re-ask each session's outstanding resume replay from the first seq not delivered. */
void gw_records_resync(gw_t *g);

#endif
