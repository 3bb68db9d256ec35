/* json_in.h - internals shared by json_in.c (structure) and json_lex.c (tokens, errors,
 * output) of json_to_msgpack; not an interface for other modules. */
#ifndef HERALD_JSON_IN_H
#define HERALD_JSON_IN_H

#include <stdbool.h>
#include <stdint.h>

#include "json.h"

#define JIN_MAX_DEPTH   2048 /* jansson's JSON_PARSER_MAX_DEPTH; deeper values are refused */
#define JIN_LINEAR_KEYS 16   /* objects with more keys find duplicates through a hash set */

/* A key of an open object: its bytes in the output. */
typedef struct {
    size_t off, len;
} jin_key_t;

/* An open array or object. */
typedef struct {
    size_t hdr;     /* output offset of the container's 1-byte header */
    size_t kbase;   /* objects: index of the first key in jin_t.keys */
    uint32_t count; /* elements, or key/value pairs */
    bool obj;
    uint64_t *set; /* objects past JIN_LINEAR_KEYS keys: hashed keys, see jin_key_add */
    size_t setcap; /* slots in set, a power of two */
} jin_frame_t;

/* A container whose header must be widened (more than 15 elements). */
typedef struct {
    size_t hdr;
    uint32_t count;
    bool obj;
} jin_fix_t;

/* One conversion: the input, the output and what is open. */
typedef struct {
    const uint8_t *base, *end;
    msgpack_sbuffer *out;
    herald_error_t *err;
    int rc;          /* the error returned, once refused */
    uint64_t seed;   /* key hash seed, 0 until a large object needs it */
    jin_frame_t *st; /* open containers, innermost last */
    size_t nst, capst;
    jin_key_t *keys; /* keys of the open objects, in order */
    size_t nkeys, capkeys;
    jin_fix_t *fix;
    size_t nfix, capfix;
    jin_frame_t st0[32];
    jin_key_t keys0[64];
} jin_t;

/* Refuse the input (HERR_MALFORMED, stored in j->rc and returned): line and column are
 * those of the last byte before offset `upto` (jansson's convention: columns count
 * characters); `near` is the offending token, quoted if short and printable, or j->end for
 * "near end of file", or NULL. */
int jin_fail(jin_t *j, size_t upto, const uint8_t *near, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Refuse the token at p (or the end): the error points at its end and quotes it. */
int jin_fail_token(jin_t *j, const uint8_t *p, const char *what);

/* HERR_INTERNAL "out of memory", stored in j->rc and returned. */
int jin_oom(jin_t *j);

/* Grow the output buffer to hold n more bytes; < 0 out of memory. */
int jin_grow_out(jin_t *j, size_t n);

/* Make room for n more output bytes. */
static inline int jin_room(jin_t *j, size_t n)
{
    return j->out->alloc - j->out->size >= n ? 0 : jin_grow_out(j, n);
}

static inline void jin_be16(uint8_t *w, uint32_t v)
{
    w[0] = (uint8_t)(v >> 8);
    w[1] = (uint8_t)v;
}

static inline void jin_be32(uint8_t *w, uint32_t v)
{
    jin_be16(w, v >> 16);
    jin_be16(w + 2, v);
}

static inline void jin_be64(uint8_t *w, uint64_t v)
{
    jin_be32(w, (uint32_t)(v >> 32));
    jin_be32(w + 4, (uint32_t)v);
}

/* The string at p (its opening quote) appended as a msgpack str; *body and *n get the
 * output offset and length of its bytes. Returns the byte after the closing quote, or NULL
 * after refusing (j->rc). */
const uint8_t *jin_string(jin_t *j, const uint8_t *p, size_t *body, size_t *n);

/* The number at p ('-' or a digit) appended as a msgpack int (integer syntax, must fit
 * int64) or float64 (with a fraction or exponent, strtod's value). Returns the byte after
 * it, or NULL after refusing (j->rc). */
const uint8_t *jin_number(jin_t *j, const uint8_t *p);

#endif
