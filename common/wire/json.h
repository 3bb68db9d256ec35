/* json.h - a small fast JSON writer (client frames) and JSON input straight to msgpack.
 *
 * Strings are written with quotes, backslashes and control characters escaped; invalid
 * UTF-8 sequences are replaced by U+FFFD (so output is always valid UTF-8 JSON): one U+FFFD
 * per maximal invalid subpart, as Unicode recommends (overlong forms, surrogates, > U+10FFFF,
 * bytes 0xF5..0xFF, stray continuation bytes and truncated sequences are all invalid). */
#ifndef HERALD_JSON_H
#define HERALD_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "err.h"
#include "model.h"

/* Growable output buffer. `head` bytes of headroom are reserved before data (e.g. LWS_PRE)
 * so the bytes can be handed to lws_write without a copy. */
typedef struct {
    char *base;  /* allocation */
    char *data;  /* base + head */
    size_t len;  /* bytes in data */
    size_t cap;  /* bytes available from data */
    size_t head; /* headroom before data */
} jbuf_t;

void jbuf_init(jbuf_t *b, size_t headroom);
void jbuf_free(jbuf_t *b);
static inline void jbuf_reset(jbuf_t *b)
{
    b->len = 0;
}
/* Ensure room for n more bytes; aborts on out-of-memory (like malloc failure elsewhere). */
void jbuf_reserve(jbuf_t *b, size_t n);
void jbuf_put(jbuf_t *b, const void *p, size_t n);
void jbuf_putc(jbuf_t *b, char c);
void jbuf_puts(jbuf_t *b, const char *s);
void jbuf_put_u64(jbuf_t *b, uint64_t v);
/* `"key":v`, after a comma when comma (a member of an object being written). The key is
 * written as given: it must need no escaping. */
void jbuf_put_kv_u64(jbuf_t *b, const char *key, uint64_t v, bool comma);
void jbuf_put_i64(jbuf_t *b, int64_t v);

/* A JSON string literal (with quotes) of s[0..n), escaped, invalid UTF-8 -> U+FFFD. */
void json_put_str(jbuf_t *b, const char *s, size_t n);

/* Any msgpack object as JSON: maps with non-string keys have keys stringified; bin is
 * written as a string of its bytes (escaped); ext as null; floats that are not finite as null. */
void json_put_msgpack(jbuf_t *b, const msgpack_object *o);

/* The client "notification" frame of protocol.md 6. */
void json_render_notif(jbuf_t *b, const notif_t *n);

/* Parse JSON text (object or array; text[0..len), need not be NUL-terminated) into msgpack
 * bytes appended to out, so HTTP input takes the same validation path as native input.
 * Strict RFC 8259 as jansson 2.14 with JSON_REJECT_DUPLICATES (json_in.c says what that
 * means): no duplicate keys, no \u0000, at most 2048 levels of nesting. Integers stay
 * integers (refused outside int64), reals become float64 with strtod's value; the bytes are
 * those msgpack-c's packer writes (smallest forms). Errors: HERR_MALFORMED with "invalid JSON
 * at line L, column C: <reason>", HERR_TOO_LARGE for a top-level object whose msgpack form
 * exceeds HERALD_MAX_NOTIF_BYTES, HERR_INTERNAL out of memory; out is unchanged on error. */
int json_to_msgpack(const char *text, size_t len, msgpack_sbuffer *out, herald_error_t *err);

#endif
