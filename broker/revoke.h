/* revoke.h - revocation (protocol.md 12): POST /api/disconnect closes a user's sessions on every
 * gateway with 4003 and answers how many were closed; with `until` the user is locked out
 * (handshakes get 401) until then. The broker keeps the locks and hands them to every
 * gateway that attaches; gateways hand theirs back after a broker restart. */
#ifndef HERALD_BK_REVOKE_H
#define HERALD_BK_REVOKE_H

#include <stdbool.h>
#include <stdint.h>

#include <msgpack.h>

#include "broker.h"

#define BK_DISCONNECT_WAIT_NS                                                                      \
    (5ull * 1000000000ull)  /* a gateway that does not answer by then
                                                       is left out of `closed` (logged) */
#define BK_MAX_LOCKS 100000 /* user locks held at once */

/* A request as POST /api/disconnect gives it. */
typedef struct {
    char user[HERALD_MAX_ID_LEN + 1];
    bool has_until;    /* `until` given: set the lock (a past time lifts it) */
    uint64_t until_ns; /* wall clock, ns since the epoch */
} bk_disconnect_args_t;

/* Called once with the number of sessions the gateways closed. */
typedef void (*bk_disconnect_done_fn)(broker_t *b, void *ctx, uint64_t closed);

/* Parse the JSON body {"user_id":U[,"until":ns]}. Errors: HERR_MALFORMED (not JSON),
 * HERR_NOT_MAP, HERR_MISSING_FIELD / HERR_BAD_KIND / HERR_BAD_VALUE naming user_id or until
 * (the user "*", an id over 64 bytes, a negative until). Unknown fields are ignored. */
int bk_disconnect_parse(const char *body, size_t len, bk_disconnect_args_t *a, herald_error_t *err);

/* Ask every attached gateway to close a->user's sessions (and set the lock first, so the
 * closed sessions cannot come straight back). Returns 0 when it completed at once (no
 * gateway attached: *closed = 0, done is never called), 1 when gateways were asked: done
 * is called exactly once, from the control-socket reads or bk_revoke_tick, unless
 * bk_disconnect_cancel(b, *handle) came first. Errors: HERR_QUEUE_FULL when BK_MAX_LOCKS
 * locks are held. */
int bk_disconnect(broker_t *b, const bk_disconnect_args_t *a, bk_disconnect_done_fn done, void *ctx,
                  uint64_t *handle, uint64_t *closed, herald_error_t *err);

/* The requester went away (its HTTP connection closed): never call its done. */
void bk_disconnect_cancel(broker_t *b, uint64_t handle);

/* Render the answer {"closed":N}. */
void bk_disconnect_render(jbuf_t *out, uint64_t closed);

/* --- hooks of the control protocol (control.c) and the loop --- */
/* Gateway g attached (after hello_ok): send it every lock in force. */
void bk_revoke_gateway_up(broker_t *b, bk_gateway_t *g);
/* Gateway g detached: requests stop waiting for it (its sessions are gone with it). */
void bk_revoke_gateway_down(broker_t *b, bk_gateway_t *g);
/* disconnected {id, closed} from g. */
int bk_revoke_on_disconnected(broker_t *b, bk_gateway_t *g, const msgpack_object *o,
                              herald_error_t *err);
/* lock {user, until} from g (its locks, after a broker restart): the later until wins. */
int bk_revoke_on_lock(broker_t *b, const msgpack_object *o, herald_error_t *err);
/* Once a second: finish requests whose gateways did not answer in BK_DISCONNECT_WAIT_NS,
 * forget locks that ran out. */
void bk_revoke_tick(broker_t *b);
/* Locks in force (a gauge for /api/stats). */
uint64_t bk_revoke_locks(const broker_t *b);
void bk_revoke_free(broker_t *b);

#endif
