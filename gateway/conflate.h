/* conflate.h - conflation under backpressure (protocol.md 14): the keys, and the index of a
 * session's pending conflatable notifications (key -> queue slot) that lets a newer
 * notification take the place of an older one. deliver.c decides when and queues. */
#ifndef HERALD_GW_CONFLATE_H
#define HERALD_GW_CONFLATE_H

#include <stdbool.h>
#include <stdint.h>

#include <msgpack.h>

#include "users.h"

typedef struct gw_conflate_ent gw_conflate_ent_t;

/* The conflation key of a notification of user (ulen bytes) and type (model_type_index):
 * user + type + payload.instrument_id (else payload.account_id, else nothing). Never 0. */
uint64_t gw_conflate_key(const char *user, size_t ulen, unsigned type,
                         const msgpack_object *payload);
/* Start conflating s: index every queued notification (the newest of a key wins). */
void gw_conflate_begin(gw_session_t *s);
/* The index entry of m's key (read back from the frame when m->ckey is 0), created when
 * absent; NULL when the key cannot be read or the index is full of live keys. */
gw_conflate_ent_t *gw_conflate_entry(gw_session_t *s, gw_msg_t *m);
/* If the notification e indexes is still queued, take it out (its slot becomes a hole,
 * s->pending_bytes drops its cost), count its seq in conflated[its type] and return a
 * `conflated` frame naming that seq after the seqs its own `conflated` frame named (that
 * frame is taken out too). The caller owns the frame. NULL when nothing is pending. */
gw_msg_t *gw_conflate_replace(gw_session_t *s, gw_conflate_ent_t *e, uint64_t conflated[32]);
/* e now indexes m at absolute position pos of the held (else ready) queue, with a
 * `conflated` frame right before it when has_c; m NULL: nothing pending under the key. */
void gw_conflate_set(gw_conflate_ent_t *e, gw_msg_t *m, uint64_t pos, bool held, bool has_c);
/* The held queue's slots from held_base on moved to the ready queue from ready_end on. */
void gw_conflate_moved(gw_session_t *s, uint64_t held_base, uint64_t ready_end);
/* Stop conflating s (drop its index); a no-op when it is not. */
void gw_conflate_end(gw_session_t *s);

#endif
