/* control.h - the gateway's link to the broker over <runtime.dir>/control.sock (proto.h):
 * connect with backoff, hello, open/close/replay/acks/ack requests, the broker's disconnect,
 * and resync after a broker restart. */
#ifndef HERALD_GW_CONTROL_H
#define HERALD_GW_CONTROL_H

#include <stdbool.h>
#include <stdint.h>

#include "gw.h"
#include "users.h"

/* What the link asks of the layers above it (the event-loop core gives them): attach the
 * ring when the broker accepts the hello (-1 refuses the link), and resync the sessions
 * after the link's own resync (the users' positions, the locks). */
typedef struct {
    int (*attach)(gw_t *g);
    void (*resynced)(gw_t *g);
} gw_control_hooks_t;

void gw_control_init(gw_t *g, const gw_control_hooks_t *hooks);
/* Close the link and free its buffers; sends nothing more (the state stays for fini). */
void gw_control_close(gw_t *g);
void gw_control_fini(gw_t *g);
/* Connect (when down): sends hello and posts the first recv. Failure schedules a retry. */
void gw_control_try_connect(gw_t *g);
/* A completion of the link's recv (UD_CTL_RECV) or POLLOUT (UD_CTL_POLLOUT). */
void gw_control_on_cqe(gw_t *g, unsigned tag, uint64_t gen, int res);
/* Is the link up (hello answered)? */
bool gw_control_up(const gw_t *g);
/* When to try connecting again (CLOCK_MONOTONIC ns); UINT64_MAX unless the link is down. */
uint64_t gw_control_retry_at(const gw_t *g);

void gw_control_send_open(gw_t *g, gw_session_t *s);
void gw_control_send_close(gw_t *g, gw_session_t *s);
void gw_control_send_replay(gw_t *g, uint64_t session, const char *user, uint64_t from,
                            uint64_t to);
/* Session s opted in (or out): tell the broker (which keeps each user's outstanding set). */
void gw_control_send_acks(gw_t *g, gw_session_t *s);
/* A session of user acknowledged seq: queued, sent with the others of this loop pass. */
void gw_control_send_ack(gw_t *g, const char *user, uint64_t seq);
/* End of a loop pass: send what gw_control_send_ack queued. */
void gw_control_flush_deferred(gw_t *g);

#endif
