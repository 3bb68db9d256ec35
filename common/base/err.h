/* err.h - error codes shared by every herald module, and the error record that names what failed. */
#ifndef HERALD_ERR_H
#define HERALD_ERR_H

#include <stddef.h>

/* The error convention (docs/architecture.md, "Errors"): a function of herald's own logic
 * returns 0 (or a count) on success and a negative HERR_* on failure, with a herald_error_t
 * naming what failed when its caller needs a message. HERR_* values start at HERR_BASE so a
 * -errno that slips through is never taken for one of them. Only thin wrappers of a kernel
 * interface keep the kernel's convention, and say so in their header (doorbell.h and
 * rtdir.h: -errno as io_uring; jfile.h: -1 with errno as libc); their callers convert.
 *
 * The string form (herr_code) is what producers and clients see in "error" fields. */
#define HERR_BASE 1000

typedef enum {
    HERR_OK = 0,
    HERR_TRUNCATED = HERR_BASE, /* input ends inside a value */
    HERR_MALFORMED,             /* not valid msgpack / JSON */
    HERR_NOT_MAP,               /* a notification must be a map / object */
    HERR_BAD_KIND,              /* a field has the wrong kind (string vs number ...) */
    HERR_TOO_LONG,              /* a string field exceeds its bound */
    HERR_TOO_LARGE,             /* the notification (or a record) exceeds its bound */
    HERR_UNKNOWN_TYPE,          /* message_type not in the type table */
    HERR_MISSING_FIELD,         /* a required field is absent */
    HERR_BAD_VALUE,             /* a value is out of range (priority 7, empty user_id ...) */
    HERR_TRAILING,              /* bytes after the value */
    HERR_UNKNOWN_OP,            /* client op not known */
    HERR_QUEUE_FULL,            /* broker priority queue full */
    HERR_UNAUTHORIZED,          /* missing or wrong api key / token */
    HERR_NOT_FOUND,             /* no such route / object */
    HERR_IO,                    /* system call failed; message has errno text */
    HERR_CORRUPT,               /* shared memory or file failed validation */
    HERR_INTERNAL,
    HERR_TIMEOUT,       /* a request did not complete in time */
    HERR_ID_CONFLICT,   /* a message_id already used for another user, type or payload */
    HERR_OVER_CAPACITY, /* the broker is at its memory bound (broker.max_memory) */
    HERR_NO_ROOM,       /* a ring has no room for the record now (the writer keeps it) */
    HERR_UNAVAILABLE,   /* cluster mode: the user's partition has no writable owner right now */
    HERR__END           /* one past the last code */
} herr_t;

/* Codes, HERR_OK included, and their dense index (for tables and loops over every code). */
#define HERR__COUNT ((unsigned)(HERR__END - HERR_BASE) + 1u)
static inline unsigned herr_index(herr_t code)
{
    return code == HERR_OK ? 0u : (unsigned)(code - HERR_BASE) + 1u;
}
static inline herr_t herr_at(unsigned index)
{
    return index == 0 ? HERR_OK : (herr_t)(HERR_BASE + (int)index - 1);
}

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
