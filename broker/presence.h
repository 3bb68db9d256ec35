/* presence.h - presence (protocol.md 14): whether a user is online, on which gateways, with how
 * many
 * sessions, and when it was last seen.
 *
 * Online state is the broker's routing state (users.c: routes refcounted per gateway by the
 * sessions gateways report), read when asked; nothing is done per notification. This module
 * adds what routing forgets: when each user's last session closed, for users offline now
 * (at most BK_PRESENCE_MAX, the longest offline forgotten first; in memory, so a broker
 * restart forgets it and those users read as never seen until they come and go again). */
#ifndef HERALD_BK_PRESENCE_H
#define HERALD_BK_PRESENCE_H

#include <stddef.h>

#include "broker.h"

#define BK_PRESENCE_MAX   100000u /* offline users whose last_seen is kept */
#define BK_PRESENCE_BATCH 1000u   /* users per POST /api/presence */

int bk_presence_init(broker_t *b);
void bk_presence_free(broker_t *b);

/* users.c hooks: id (len bytes) got its first route / lost its last one (now). */
void bk_presence_online(broker_t *b, const char *id, size_t len);
void bk_presence_offline(broker_t *b, const char *id, size_t len);

/* {"user":U,"online":bool,"sessions":N,"gateways":[...],"last_seen":ns} into out:
 * last_seen is now while online, when the last session closed while offline, 0 if never
 * seen. */
void bk_presence_json(broker_t *b, const char *id, size_t len, jbuf_t *out);

/* POST /api/presence body {"users":[U,...]} -> {"users":[<bk_presence_json>,...]} in order.
 * Returns 0, or an error (HERR_MALFORMED, HERR_NOT_MAP, HERR_MISSING_FIELD / HERR_BAD_KIND /
 * HERR_BAD_VALUE naming users, HERR_TOO_LARGE past BK_PRESENCE_BATCH) with out untouched. */
int bk_presence_batch_json(broker_t *b, const char *body, size_t len, jbuf_t *out,
                           herald_error_t *err);

/* Users whose last_seen is kept (a gauge). */
size_t bk_presence_remembered(const broker_t *b);

#endif
