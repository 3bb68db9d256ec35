/* revoke.h - revocation on the gateway (POST /api/disconnect on the broker, protocol.md 12): users
 * locked out until a time, and the broker's disconnect that closes a user's sessions. */
#ifndef HERALD_GW_REVOKE_H
#define HERALD_GW_REVOKE_H

#include <stdbool.h>
#include <stdint.h>

#include "gw.h"

void gw_revoke_init(gw_t *g);
void gw_revoke_fini(gw_t *g);
/* Is user locked out now (a lock with until in the future)? Cheap when no lock exists. */
bool gw_revoke_locked(gw_t *g, const char *user);
/* Lock user out until until_ns (wall clock ns); a time not in the future lifts the lock. */
void gw_revoke_lock(gw_t *g, const char *user, uint64_t until_ns);
/* Close every session of user with 4003 disconnected; returns how many were open. */
unsigned gw_revoke_disconnect(gw_t *g, const char *user);
/* Call fn for every lock still in force (resync after a broker restart). */
void gw_revoke_each(gw_t *g, void (*fn)(gw_t *g, const char *user, uint64_t until_ns));
/* Forget locks that ran out (called from the tick). */
void gw_revoke_sweep(gw_t *g);

#endif
