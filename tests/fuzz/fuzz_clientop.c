/* fuzz_clientop.c - libFuzzer target: client ops. The first byte picks the subprotocol
 * (odd: msgpack, even: JSON); the rest is the frame. */
#include <stdlib.h>

#include "clientop.h"
#include "model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size); /* libFuzzer calls it */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0;
    client_op_t op;
    herald_error_t err;
    int rc = data[0] & 1 ? clientop_parse_msgpack(data + 1, size - 1, &op, &err)
                         : clientop_parse_json((const char *)data + 1, size - 1, &op, &err);
    if (rc != 0) {
        if (rc != -(int)err.code || err.code == HERR_OK) abort();
        return 0;
    }
    if (op.kind > OP_ACKS || (op.channels >> CH__COUNT) != 0) abort();
    if (op.kind != OP_RESUME && op.since != 0) abort();
    if (op.kind == OP_ACK ? op.seq == 0 : op.seq != 0) abort();
    if (op.kind != OP_ACKS && op.on) abort();
    if (op.kind == OP_REFRESH ? op.token_len == 0 || op.token_len > CLIENTOP_TOKEN_MAX
                              : op.token_len != 0)
        abort();
    return 0;
}
