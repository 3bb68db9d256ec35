/* err.c - error code names and the error record helper. */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const herr_names[HERR__COUNT] = {
    [HERR_OK] = "ok",
    [HERR_TRUNCATED] = "truncated",
    [HERR_MALFORMED] = "malformed",
    [HERR_NOT_MAP] = "not_map",
    [HERR_BAD_KIND] = "bad_kind",
    [HERR_TOO_LONG] = "too_long",
    [HERR_TOO_LARGE] = "too_large",
    [HERR_UNKNOWN_TYPE] = "unknown_type",
    [HERR_MISSING_FIELD] = "missing_field",
    [HERR_BAD_VALUE] = "bad_value",
    [HERR_TRAILING] = "trailing_bytes",
    [HERR_UNKNOWN_OP] = "unknown_op",
    [HERR_QUEUE_FULL] = "queue_full",
    [HERR_UNAUTHORIZED] = "unauthorized",
    [HERR_NOT_FOUND] = "not_found",
    [HERR_IO] = "io_error",
    [HERR_CORRUPT] = "corrupt",
    [HERR_INTERNAL] = "internal",
    [HERR_TIMEOUT] = "timeout",
    [HERR_ID_CONFLICT] = "id_conflict",
    [HERR_OVER_CAPACITY] = "over_capacity",
    [HERR_UNAVAILABLE] = "unavailable",
};

const char *herr_code(herr_t code)
{
    if ((unsigned)code >= HERR__COUNT) return "internal";
    return herr_names[code];
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
