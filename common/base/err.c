/* err.c - error code names and the error record helper. */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const herr_names[] = {
    [0] = "ok",
    [HERR_TRUNCATED - HERR_BASE + 1] = "truncated",
    [HERR_MALFORMED - HERR_BASE + 1] = "malformed",
    [HERR_NOT_MAP - HERR_BASE + 1] = "not_map",
    [HERR_BAD_KIND - HERR_BASE + 1] = "bad_kind",
    [HERR_TOO_LONG - HERR_BASE + 1] = "too_long",
    [HERR_TOO_LARGE - HERR_BASE + 1] = "too_large",
    [HERR_UNKNOWN_TYPE - HERR_BASE + 1] = "unknown_type",
    [HERR_MISSING_FIELD - HERR_BASE + 1] = "missing_field",
    [HERR_BAD_VALUE - HERR_BASE + 1] = "bad_value",
    [HERR_TRAILING - HERR_BASE + 1] = "trailing_bytes",
    [HERR_UNKNOWN_OP - HERR_BASE + 1] = "unknown_op",
    [HERR_QUEUE_FULL - HERR_BASE + 1] = "queue_full",
    [HERR_UNAUTHORIZED - HERR_BASE + 1] = "unauthorized",
    [HERR_NOT_FOUND - HERR_BASE + 1] = "not_found",
    [HERR_IO - HERR_BASE + 1] = "io_error",
    [HERR_CORRUPT - HERR_BASE + 1] = "corrupt",
    [HERR_INTERNAL - HERR_BASE + 1] = "internal",
    [HERR_TIMEOUT - HERR_BASE + 1] = "timeout",
    [HERR_ID_CONFLICT - HERR_BASE + 1] = "id_conflict",
    [HERR_OVER_CAPACITY - HERR_BASE + 1] = "over_capacity",
    [HERR_NO_ROOM - HERR_BASE + 1] = "no_room",
    [HERR_UNAVAILABLE - HERR_BASE + 1] = "unavailable",
};

const char *herr_code(herr_t code)
{
    if (code != HERR_OK && (code < HERR_BASE || code >= HERR__END)) return "internal";
    const char *name = herr_names[herr_index(code)];
    return name ? name : "internal";
}

int herr_set(herald_error_t *err, herr_t code, const char *field, const char *fmt, ...)
{
    if (err) {
        err->code = code;
        snprintf(err->field, sizeof err->field, "%s", field ? field : "");
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return -(int)code;
}
