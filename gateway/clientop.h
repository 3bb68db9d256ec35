/* clientop.h - decoding of WebSocket client ops (protocol.md 6), from JSON or msgpack. */
#ifndef HERALD_CLIENTOP_H
#define HERALD_CLIENTOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef enum {
    OP_SUBSCRIBE = 0,
    OP_UNSUBSCRIBE,
    OP_RESUME,
    OP_PING,
    OP_REFRESH,
    OP_ACK,  /* acknowledged delivery (protocol.md 14): {"op":"ack","seq":S} */
    OP_ACKS, /* opt in or out: {"op":"acks","on":true|false} */
} client_op_kind_t;

#define CLIENTOP_TOKEN_MAX 4000 /* an op is at most 4 KiB, so is the token in it */

typedef struct {
    client_op_kind_t kind;
    uint32_t channels; /* bit (1u << channel_t) for subscribe/unsubscribe */
    uint64_t since;    /* resume */
    uint64_t seq;      /* ack */
    bool on;           /* acks */
    size_t token_len;  /* refresh: the token, not NUL-terminated */
    char token[CLIENTOP_TOKEN_MAX];
} client_op_t;

/* {"op":"subscribe","channels":["trade"]}, {"op":"unsubscribe",...}, {"op":"resume","since":S},
 * {"op":"ping"}, {"op":"refresh","token":T}, {"op":"ack","seq":S} (S >= 1),
 * {"op":"acks","on":true|false}. Errors: HERR_MALFORMED, HERR_NOT_MAP,
 * HERR_UNKNOWN_OP, HERR_MISSING_FIELD,
 * HERR_BAD_KIND, HERR_BAD_VALUE (unknown channel, negative since) - each naming the field;
 * also HERR_TOO_LARGE (an op over 4 KiB) and, for msgpack, HERR_TRUNCATED / HERR_TRAILING.
 * Unknown extra fields are ignored. */
int clientop_parse_json(const char *text, size_t len, client_op_t *op, herald_error_t *err);
int clientop_parse_msgpack(const uint8_t *buf, size_t len, client_op_t *op, herald_error_t *err);

#endif
