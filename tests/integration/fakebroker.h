/* fakebroker.h - a scripted stand-in for herald-broker's gateway side (proto.h), kept ONLY
 * for fault injection the real broker cannot produce on demand: a corrupt ring record, a
 * seq gap in the live ring (simulated drops) with the gap-fill protocol, a refused control
 * request, and a ready record delayed across a control-link reconnect. It serves
 * control.sock and produces one gateway's ring. All other gateway tests use the real broker. */
#ifndef HERALD_TEST_FAKEBROKER_H
#define HERALD_TEST_FAKEBROKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct fb fb_t;

/* A control request from the gateway. */
typedef struct {
    char op[16];
    uint64_t session, since, from, to, after, sessions, gw;
    char user[72];
} fb_req_t;

/* Listen on <dir>/control.sock and create ring <prefix>.gw<id>.ring of ring_bytes. */
fb_t *fb_start(const char *dir, const char *prefix, unsigned gw_id, size_t ring_bytes);

/* Accept the gateway's connection, read its hello and answer hello_ok. 0 or -1. */
int fb_accept(fb_t *fb, int timeout_ms);

/* Next request frame from the gateway; 0, or -1 on timeout / closed. */
int fb_next(fb_t *fb, fb_req_t *req, int timeout_ms);

/* Next request with the given op (others are dropped); 0 or -1. */
int fb_expect(fb_t *fb, const char *op, fb_req_t *req, int timeout_ms);

/* Close the gateway's control connection (it reconnects; fb_accept it again). */
void fb_drop(fb_t *fb);

/* Answer {op:error} on the control link (as the broker refuses one request); 0 or -1. */
int fb_error(fb_t *fb, const char *code, const char *message);

/* Records (each one published and the doorbell rung at once). */
void fb_ready(fb_t *fb, uint64_t session, uint64_t last_seq, uint64_t bcast_last_seq);
/* message_type without required payload fields: position_limit (risk), market_halt
 * (system) ...; the payload is empty. */
void fb_notify(fb_t *fb, const char *user, uint64_t seq, const char *type, unsigned prio);
void fb_replay(fb_t *fb, uint64_t session, const char *user, uint64_t seq, const char *type,
               unsigned prio);
void fb_range(fb_t *fb, bool gap, uint64_t session, const char *user, uint64_t from, uint64_t to);
/* A record whose header length is invalid (the consumer must count it as corrupt). */
void fb_corrupt(fb_t *fb);

/* Close everything, unlink the ring. NULL ignored. */
void fb_stop(fb_t *fb);

#endif
