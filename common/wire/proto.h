/* proto.h - broker <-> gateway protocol: ring record types and control-socket messages.
 *
 * Data flows broker -> gateway only through the ring, in one order. The control socket
 * (<runtime.dir>/control.sock, unix stream) carries the gateway's requests and the
 * broker's hello reply as frames (frame.h) holding one msgpack map each.
 *
 * Gateway -> broker (key "op"):
 *   hello  {op, gw, pid, version}                       first frame; broker attaches the ring
 *   open   {op, session, user, since[, acks]}           a session of `user` opened; since=0: no
 *                                                       resume; acks=1: opted in to acknowledged
 *                                                       delivery (protocol.md 14)
 *   close  {op, session, user[, acks]}                  that session closed (acks=1: opted in)
 *   acks   {op, session, user, on}                      the session opted in (on=1) or out (0)
 *   ack    {op, user, seq}                              a session of `user` acknowledged seq
 *   replay {op, session, user, from, to}                re-send seqs [from,to] from history;
 *                                                       session 0 = for every session of the user
 *                                                       (gap fill after ring drops)
 *   resync {op, user, sessions, after[, acks]}          after a broker restart: `sessions` open
 *                                                       sessions of `user` (`acks` of them opted
 *                                                       in), last seq seen `after`;
 *                                                       user "*": replay broadcasts, no route
 *   lock {op, user, until}                              after (re)connecting: a lock the gateway
 *                                                       holds (the broker may have restarted)
 *   disconnected {op, id, closed}                       answer to disconnect `id`: sessions closed
 * Broker -> gateway:
 *   hello_ok {op, broker_pid, ring, capacity}  |  error {op, code, message} (then close
 *   after a refused hello; any other refused request leaves the link up)
 *   disconnect {op, id, user[, until]}                  close every session of `user` with 4003;
 *                                                       with `until` (wall clock ns) lock the user
 *                                                       out until then (a past time lifts the
 *                                                       lock); id != 0: answer `disconnected`
 *
 * For `open` the broker, in one step (nothing else interleaves in the ring):
 *   adds the route (refcounted per gateway and user), writes REC_SESSION_READY with the
 *   user's last seq and the broadcast last seq, then for since>0 the history records
 *   (since, last] as REC_REPLAY addressed to the session, preceded by REC_GAP if history
 *   no longer covers all of it, then REC_REPLAY_END. Live REC_NOTIFY records follow. With
 *   acks=1, the user's notifications that wait for an opted-in session (REC_REDELIVER) come
 *   after those.
 *
 * REC_REDELIVER (broker/acks.c) re-sends an unacknowledged ack_required notification to every
 * opted-in session of its user on the gateway (header session 0); the gateway marks it
 * "redelivery":true. It may repeat a seq the session has, and may reach a session whose live
 * start is past it: that is the point of it.
 */
#ifndef HERALD_PROTO_H
#define HERALD_PROTO_H

#include <stdint.h>

#include "ring.h"

#define PROTO_VERSION 3u

enum {
    REC_NOTIFY = RING_REC_USER, /* canonical notification (codec.h), live */
    REC_SESSION_READY,          /* rec_session_ready_t */
    REC_REPLAY,                 /* rec_replay_t + canonical notification */
    REC_REPLAY_END,             /* rec_range_t + user_id bytes */
    REC_GAP,                    /* rec_range_t + user_id bytes */
    REC_CLOCK,                  /* rec_clock_t: when the records after it were written */
    REC_REDELIVER,              /* rec_replay_t + canonical notification (acknowledged delivery) */
};

/* Written before the first record of each broker round that writes to the ring: the
 * records after it (until the next) were written at or after `mono_ns` (CLOCK_MONOTONIC).
 * The gateway measures flush deadlines from it, so a record read late (the broker did not
 * ring: it could wait, see ring_publish_due) is still flushed within its delay of being
 * written. */
typedef struct {
    uint64_t mono_ns;
} rec_clock_t;

typedef struct {
    uint64_t session;
    uint64_t last_seq;       /* user's last assigned seq at routing time */
    uint64_t bcast_last_seq; /* broadcast sequence's last seq at routing time */
} rec_session_ready_t;

typedef struct {
    uint64_t session; /* 0 = every session of the notification's user on this gateway */
} rec_replay_t;

typedef struct {
    uint64_t session; /* 0 = user-level */
    uint64_t from;
    uint64_t to;
    /* followed by the user_id bytes (not NUL-terminated) up to the record length */
} rec_range_t;

#endif
