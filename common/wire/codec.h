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

/* The direct ingest path (codec_scan.c), for the broker's hot loop: no object tree, no
 * allocation. The same acceptance rules, error codes and messages as codec_unpack +
 * codec_notif_from_object + model_validate_payload, and codec_encode's bytes.
 *
 * A frame: codec_check(body, len, max, err) first (nothing is scanned unless the whole frame
 * is well-formed); if codec_array_open finds an array, its items follow the header back to
 * back: codec_notif_scan returns each one's length, codec_span gives it after a refusal.
 * Once the caller has set timestamp and seq, codec_encode_to writes the record. */

/* Check that p[0..len) starts with one well-formed msgpack value by codec_unpack's rules
 * (nesting limit, announced counts against the bytes left) and return its length. Errors as
 * codec_unpack's for the same bytes: HERR_TRUNCATED, HERR_MALFORMED. Reads only p[0..len). */
long codec_skip(const uint8_t *p, size_t len, herald_error_t *err);

/* codec_skip over all of buf, with codec_unpack's errors for the same bytes, HERR_TOO_LARGE
 * (len > max_bytes) and HERR_TRAILING included. */
int codec_check(const uint8_t *buf, size_t len, size_t max_bytes, herald_error_t *err);

/* Length of the msgpack value at p, which must be well-formed (codec_skip accepted it or a
 * value containing it): no checks. */
size_t codec_span(const uint8_t *p);

/* If p[0..len) starts with an array header, store the item count and return the header
 * length; else return 0. */
size_t codec_array_open(const uint8_t *p, size_t len, uint32_t *count);

/* Readers of one value at p, well-formed (as codec_span). A map header: stores the entry
 * count and returns the header length, or 0 if p is no map. A str: sets *s and *n, or
 * returns false. An integer >= 0 (any width, signed forms too, as msgpack-c reads them):
 * sets *v, or returns false leaving *v alone. */
size_t codec_map_open(const uint8_t *p, uint32_t *count);
bool codec_str_at(const uint8_t *p, const char **s, uint32_t *n);
bool codec_uint_at(const uint8_t *p, uint64_t *v);

/* codec_notif_from_object for the map at p, well-formed and within p[0..len) (checked by
 * codec_check/codec_skip, alone or as an item): the same checks in the same order, so the
 * same first error (code, field, message). Returns the map's length in bytes, or a negative
 * herr. n->payload is left NIL; n->payload_raw borrows the payload bytes from p (a static
 * empty map when absent). Sets every field codec_encode_to reads and the has_ flags, nothing
 * else (n is not cleared first). */
long codec_notif_scan(const uint8_t *p, size_t len, notif_t *n, herald_error_t *err);

/* Size of an output buffer for which codec_encode_to fails only where codec_encode does. */
#define CODEC_ENCODE_CAP (HERALD_MAX_NOTIF_BYTES + 16)

/* Write the canonical encoding of n, as filled by codec_notif_scan (payload_raw and the
 * string lengths set; change message_id, user_id or source only with their _len), to
 * out[0..cap): byte for byte what codec_encode writes for the notif_t the object path builds
 * from the same input (the payload re-emitted in the smallest encodings). Returns the length,
 * -HERR_TOO_LARGE (over HERALD_MAX_NOTIF_BYTES, or over cap), or -HERR_INTERNAL when
 * payload_raw is NULL. The seq is at CODEC_SEQ_OFFSET. */
long codec_encode_to(const notif_t *n, uint8_t *out, size_t cap);

/* What a canonical encoding says a notification is about, borrowed from its bytes: the
 * message_type and user_id strings and the payload (its last field, up to the end). */
typedef struct {
    const char *type, *user;
    uint32_t type_len, user_len;
    const uint8_t *payload;
    size_t payload_len;
} codec_parts_t;

/* Find those parts in rec[0..len), a record as codec_encode / codec_encode_to write it
 * (fixed key order and forms; only the lengths vary). Returns 0, or -HERR_MALFORMED when
 * rec is not laid out that way (never reads past len). */
int codec_canonical_parts(const uint8_t *rec, size_t len, codec_parts_t *out);

/* The same parts of rec[0..len), which codec_encode_to has just written from n, from n's
 * string lengths instead of a walk (the broker's ingest path). */
void codec_encode_parts(const notif_t *n, const uint8_t *rec, size_t len, codec_parts_t *out);

/* The value of string key `key` in map o (the first one), or NULL if o is not a map or has
 * no such key. For control messages; notifications go through the stricter parsers. */
const msgpack_object *codec_map_get(const msgpack_object *o, const char *key);

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
