/* err.h - error codes shared by every herald module, and the error record that names what failed. */
#ifndef HERALD_ERR_H
#define HERALD_ERR_H

#include <stddef.h>

/* Every decoder and validator returns one of these (0 = ok). The string form
 * (herr_code) is what producers and clients see in "error" fields. */
typedef enum {
    HERR_OK = 0,
    HERR_TRUNCATED,     /* input ends inside a value */
    HERR_MALFORMED,     /* not valid msgpack / JSON */
    HERR_NOT_MAP,       /* a notification must be a map / object */
    HERR_BAD_KIND,      /* a field has the wrong kind (string vs number ...) */
    HERR_TOO_LONG,      /* a string field exceeds its bound */
    HERR_TOO_LARGE,     /* the notification exceeds HERALD_MAX_NOTIF_BYTES */
    HERR_UNKNOWN_TYPE,  /* message_type not in the type table */
    HERR_MISSING_FIELD, /* a required field is absent */
    HERR_BAD_VALUE,     /* a value is out of range (priority 7, empty user_id ...) */
    HERR_TRAILING,      /* bytes after the value */
    HERR_UNKNOWN_OP,    /* client op not known */
    HERR_QUEUE_FULL,    /* broker priority queue full */
    HERR_UNAUTHORIZED,  /* missing or wrong api key / token */
    HERR_NOT_FOUND,     /* no such route / object */
    HERR_IO,            /* system call failed; message has errno text */
    HERR_CORRUPT,       /* shared memory or file failed validation */
    HERR_INTERNAL,
    HERR_TIMEOUT,       /* a request did not complete in time */
    HERR_ID_CONFLICT,   /* a message_id already used for another user, type or payload */
    HERR_OVER_CAPACITY, /* the broker is at its memory bound (broker.max_memory) */
    HERR_UNAVAILABLE,   /* cluster mode: the user's partition has no writable owner right now */
    HERR__COUNT
} herr_t;

/* An error as the caller reports it: a code, the offending field or object
 * (may be empty) and a one-line human message naming it. */
typedef struct {
    herr_t code;
    char field[72];
    char message[200];
} herald_error_t;

/* Stable lowercase code string for an error ("too_large", "queue_full" ...). */
const char *herr_code(herr_t code);

/* Fill err (if not NULL) with code, field and a printf-style message; returns -(int)code
 * so callers can write `return herr_set(err, HERR_X, "f", "...")`. */
int herr_set(herald_error_t *err, herr_t code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
