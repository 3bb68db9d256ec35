/* codec.h - msgpack encoding and strict decoding of notifications (msgpack-c).
 *
 * The canonical encoding of a notification is exactly the `herald.msgpack` client frame:
 * a 10-entry map in this order
 *   type:"notification", seq, message_id, message_type, channel, user_id, priority,
 *   timestamp, source, payload
 * where seq and timestamp are always written as msgpack uint64 (0xcf + 8 bytes big-endian)
 * so the broker can patch the seq in place after queueing. Rings and history carry these
 * bytes; a gateway forwards them unchanged to msgpack sessions. */
#ifndef HERALD_CODEC_H
#define HERALD_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "err.h"
#include "model.h"

/* Unpack exactly one msgpack value from buf[0..len). Errors: HERR_TRUNCATED (input ends
 * inside the value), HERR_MALFORMED, HERR_TRAILING (bytes after it), HERR_TOO_LARGE
 * (len > max_bytes). `out` must be msgpack_unpacked_init'ed by the caller and destroyed
 * by the caller; objects borrow from its zone. Never reads outside buf. */
int codec_unpack(const uint8_t *buf, size_t len, size_t max_bytes, msgpack_unpacked *out,
                 herald_error_t *err);

/* Validate a producer's notification map and fill n. Applies the type's default priority
 * when absent; leaves has_timestamp false when absent; generates message_id when absent.
 * Fields "type", "channel" and "seq" are accepted and ignored (they are the broker's);
 * any other unknown field is HERR_BAD_VALUE naming it. Errors name the field. */
int codec_notif_from_object(const msgpack_object *obj, notif_t *n, herald_error_t *err);

/* Decode a canonical record (as written by codec_encode) back into n. Same strictness. */
int codec_decode(const uint8_t *buf, size_t len, msgpack_unpacked *scratch, notif_t *n,
                 herald_error_t *err);

/* Append the canonical encoding of n to sb. If seq_off is not NULL it receives the byte
 * offset (from the start of this encoding) of the 8 seq bytes, for codec_patch_seq.
 * Returns the encoded length, or a negative herr on HERR_TOO_LARGE. */
long codec_encode(const notif_t *n, msgpack_sbuffer *sb, size_t *seq_off);

/* Overwrite the big-endian seq at buf+seq_off. */
static inline void codec_patch_seq(uint8_t *buf, size_t seq_off, uint64_t seq)
{
    for (int i = 7; i >= 0; i--) {
        buf[seq_off + (size_t)i] = (uint8_t)(seq & 0xff);
        seq >>= 8;
    }
}

/* Offsets of seq and timestamp in a canonical encoding (fixed layout prefix). */
#define CODEC_SEQ_OFFSET 24 /* 0x8a, "type"(5), "notification"(13), "seq"(4), 0xcf(1) */

#endif
