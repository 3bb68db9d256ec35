/* acks.h - acknowledged delivery (protocol.md 14): the broker keeps each user's outstanding set of
 * ack_required notifications and re-sends what is not acknowledged in time.
 *
 * A notification of a delivery.ack_required type is tracked when, as it is routed, its user
 * has at least one session that opted in (?acks=1 or the acks op; gateways report those in
 * open/close/acks/resync). It is outstanding until a session of the user answers
 * {"op":"ack","seq":S} (any session may: the gateway passes `ack {user, seq}` on). After
 * delivery.ack_timeout_ms it is written again, as REC_REDELIVER, to every gateway where the
 * user has opted-in sessions, which re-send it to those sessions with "redelivery":true;
 * at most delivery.ack_max_attempts sends in all, after which it stays listed (GET
 * /api/unacked) for the producer to escalate, but is not re-sent. A redelivery that finds no
 * opted-in session waits for one: the first session that opts in gets it at once.
 *
 * The state lives here, not in the gateways, so a gateway's kill -9 loses nothing: its
 * clients reconnect (to it or another gateway), opt in again, and get the re-send. It is
 * kept in memory: a broker restart forgets it (docs/architecture.md). Everything is keyed
 * by user id, independent of the user table (which may forget idle users).
 *
 * One timer for all of them: entries sit in one list in due order (every entry waits the
 * same timeout, so appending keeps it sorted) and a loop timer is armed at the head. */
#ifndef HERALD_BK_ACKS_H
#define HERALD_BK_ACKS_H

#include <stdbool.h>
#include <stdint.h>

#include <msgpack.h>

#include "broker.h"

#define BK_ACKS_MAX       100000u             /* outstanding notifications, all users */
#define BK_ACKS_PER_USER  256u                /* outstanding per user */
#define BK_ACKS_BYTES_MAX (64u * 1024 * 1024) /* their copies, all users */

/* Set up (masks from b->cfg; the caller checked them). Returns 0 or -1 (out of memory). */
int bk_acks_init(broker_t *b);
/* A reload: the ack_required mask, timeout and attempts of the new configuration apply to
 * what is routed and re-sent from now on. */
void bk_acks_configure(broker_t *b, const model_masks_t *m);
void bk_acks_free(broker_t *b);

/* Is a notification of type t tracked? (ingest marks its item; no other cost per publish.) */
static inline bool bk_acks_type(const broker_t *b, const msg_type_t *t)
{
    return b->masks.ack_required >> model_type_index(t) & 1u;
}

/* The drain round routed it (it->ack set): start tracking it if its user has an opted-in
 * session. */
void bk_acks_published(broker_t *b, const bk_item_t *it);

/* --- control protocol hooks (control.c) --- */
/* Opted-in sessions of user (len bytes) on gateway g change by delta (open/close with
 * acks, the acks op). A rise re-sends the user's waiting notifications to g at once. */
void bk_acks_sessions(broker_t *b, bk_gateway_t *g, const char *user, size_t len, int delta);
/* resync after a broker restart or a link drop: g has n opted-in sessions of user. */
void bk_acks_resync(broker_t *b, bk_gateway_t *g, const char *user, size_t len, uint32_t n);
/* ack {user, seq} from g. */
int bk_acks_on_ack(broker_t *b, const msgpack_object *o, herald_error_t *err);
/* g detached: its opted-in sessions are gone. */
void bk_acks_gateway_down(broker_t *b, bk_gateway_t *g);

/* --- HTTP and metrics --- */
/* {"user":U,"unacked":[{"seq":S,"message_id":..,"message_type":..,"delivered_at":ns,
 * "attempts":N},...]} in seq order into out. */
void bk_acks_unacked_json(broker_t *b, const char *user, size_t len, jbuf_t *out);
/* ,"acks":{...} for /api/stats (leading comma included). */
void bk_acks_stats_json(broker_t *b, jbuf_t *out);
void bk_acks_metrics(broker_t *b, jbuf_t *out);

#endif
