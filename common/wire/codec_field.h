/* codec_field.h - the notification map's fields and their checks, shared by the object
 * parser (codec.c) and the byte scanner (codec_scan.c) so both refuse with the same words,
 * and the msgpack head sizes the byte walkers share. Private to the codec. */
#ifndef HERALD_CODEC_FIELD_H
#define HERALD_CODEC_FIELD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

enum {
    F_TYPE = 0,
    F_SEQ,
    F_MESSAGE_ID,
    F_MESSAGE_TYPE,
    F_CHANNEL,
    F_USER_ID,
    F_PRIORITY,
    F_TIMESTAMP,
    F_SOURCE,
    F_PAYLOAD,
    F__COUNT
};

/* How a value reads as an integer: its msgpack-c object kind collapsed to three cases. */
typedef enum { INT_NONE = 0, INT_POSITIVE, INT_NEGATIVE } codec_int_kind_t;

extern const char *const codec_field_names[F__COUNT];

/* Bytes after a msgpack tag 0xc0 + i holding a length, count or the value (bin 1/2/4, ext
 * length + type, float, int, fixext type, str, array, map); 0 for the others. */
extern const uint8_t codec_mp_head[32];

/* The field index of key k (n bytes), or -1 if it is not a notification field. */
int codec_field_index(const char *k, uint32_t n);

/* Refuse key k (n bytes) as an unknown field. Returns the negative herr. */
int codec_field_unknown(const char *k, uint32_t n, herald_error_t *err);

/* Refuse field f as missing. Returns the negative herr. */
int codec_field_missing(int f, herald_error_t *err);

/* Refuse message_type s (n bytes) as unknown. Returns the negative herr. */
int codec_field_unknown_type(const char *s, uint32_t n, herald_error_t *err);

/* Check a string field (is_str: the value is a msgpack str s of n bytes) and copy it into
 * dst (cap bytes + NUL). Ids must be non-empty; no field may hold a NUL byte, since every
 * consumer treats them as C strings. Returns 0 or the negative herr. */
int codec_field_str(bool is_str, const char *s, size_t n, int f, char *dst, size_t cap,
                    bool nonempty, herald_error_t *err);

/* Check an unsigned field of kind k and value v (as msgpack-c's via.u64) against 0..max and
 * store it in *out. Returns 0 or the negative herr. */
int codec_field_uint(codec_int_kind_t k, uint64_t v, int f, uint64_t max, uint64_t *out,
                     herald_error_t *err);

#endif
