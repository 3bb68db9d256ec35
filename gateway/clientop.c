/* clientop.c - decoding of WebSocket client ops (protocol.md 6) from JSON or msgpack.
 *
 * JSON input is converted to msgpack (json_to_msgpack) and takes the msgpack path, so both
 * subprotocols accept and refuse exactly the same ops. Unknown extra fields are ignored:
 * clients may tag their ops (e.g. an "id") without breaking. */
#include "clientop.h"

#include <stddef.h>
#include <string.h>

#include "codec.h"
#include "json.h"
#include "model.h"

#define CLIENTOP_MAX_BYTES 4096 /* an op is tiny; anything larger is refused */

static bool key_is(const msgpack_object *k, const char *name)
{
    size_t n = strlen(name);
    return k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
           memcmp(k->via.str.ptr, name, n) == 0;
}

static const msgpack_object *op_get(const msgpack_object *map, const char *name)
{
    for (uint32_t i = 0; i < map->via.map.size; i++)
        if (key_is(&map->via.map.ptr[i].key, name)) return &map->via.map.ptr[i].val;
    return NULL;
}

static int parse_channels(const msgpack_object *map, client_op_t *op, herald_error_t *err)
{
    const msgpack_object *v = op_get(map, "channels");
    if (!v) return herr_set(err, HERR_MISSING_FIELD, "channels", "channels is required");
    if (v->type != MSGPACK_OBJECT_ARRAY)
        return herr_set(err, HERR_BAD_KIND, "channels", "channels must be an array of strings");
    for (uint32_t i = 0; i < v->via.array.size; i++) {
        const msgpack_object *c = &v->via.array.ptr[i];
        if (c->type != MSGPACK_OBJECT_STR)
            return herr_set(err, HERR_BAD_KIND, "channels", "channels[%u] must be a string", i);
        int ch = model_channel_find(c->via.str.ptr, c->via.str.size);
        if (ch < 0) {
            int shown = c->via.str.size > 32 ? 32 : (int)c->via.str.size;
            return herr_set(err, HERR_BAD_VALUE, "channels", "unknown channel \"%.*s\"", shown,
                            c->via.str.ptr);
        }
        op->channels |= 1u << ch;
    }
    return 0;
}

static int parse_op(const msgpack_object *map, client_op_t *op, herald_error_t *err)
{
    memset(op, 0, offsetof(client_op_t, token));
    if (map->type != MSGPACK_OBJECT_MAP)
        return herr_set(err, HERR_NOT_MAP, "", "an op must be an object");
    const msgpack_object *v = op_get(map, "op");
    if (!v) return herr_set(err, HERR_MISSING_FIELD, "op", "op is required");
    if (v->type != MSGPACK_OBJECT_STR)
        return herr_set(err, HERR_BAD_KIND, "op", "op must be a string");
    if (key_is(v, "subscribe")) {
        op->kind = OP_SUBSCRIBE;
        return parse_channels(map, op, err);
    }
    if (key_is(v, "unsubscribe")) {
        op->kind = OP_UNSUBSCRIBE;
        return parse_channels(map, op, err);
    }
    if (key_is(v, "ping")) {
        op->kind = OP_PING;
        return 0;
    }
    if (key_is(v, "refresh")) {
        op->kind = OP_REFRESH;
        const msgpack_object *t = op_get(map, "token");
        if (!t) return herr_set(err, HERR_MISSING_FIELD, "token", "token is required");
        if (t->type != MSGPACK_OBJECT_STR)
            return herr_set(err, HERR_BAD_KIND, "token", "token must be a string");
        if (t->via.str.size == 0 || t->via.str.size > CLIENTOP_TOKEN_MAX)
            return herr_set(err, HERR_BAD_VALUE, "token", "token must be 1 to %d bytes",
                            CLIENTOP_TOKEN_MAX);
        memcpy(op->token, t->via.str.ptr, t->via.str.size);
        op->token_len = t->via.str.size;
        return 0;
    }
    if (key_is(v, "ack")) {
        op->kind = OP_ACK;
        const msgpack_object *s = op_get(map, "seq");
        if (!s) return herr_set(err, HERR_MISSING_FIELD, "seq", "seq is required");
        if (s->type != MSGPACK_OBJECT_POSITIVE_INTEGER &&
            s->type != MSGPACK_OBJECT_NEGATIVE_INTEGER)
            return herr_set(err, HERR_BAD_KIND, "seq", "seq must be an integer");
        if (s->type == MSGPACK_OBJECT_NEGATIVE_INTEGER || s->via.u64 == 0)
            return herr_set(err, HERR_BAD_VALUE, "seq", "seq must be 1 or more");
        op->seq = s->via.u64;
        return 0;
    }
    if (key_is(v, "acks")) {
        op->kind = OP_ACKS;
        const msgpack_object *on = op_get(map, "on");
        if (!on) return herr_set(err, HERR_MISSING_FIELD, "on", "on is required");
        if (on->type != MSGPACK_OBJECT_BOOLEAN)
            return herr_set(err, HERR_BAD_KIND, "on", "on must be true or false");
        op->on = on->via.boolean;
        return 0;
    }
    if (key_is(v, "resume")) {
        op->kind = OP_RESUME;
        const msgpack_object *s = op_get(map, "since");
        if (!s) return herr_set(err, HERR_MISSING_FIELD, "since", "since is required");
        if (s->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
            return herr_set(err, HERR_BAD_VALUE, "since", "since must not be negative");
        if (s->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
            return herr_set(err, HERR_BAD_KIND, "since", "since must be an integer");
        op->since = s->via.u64;
        return 0;
    }
    int shown = v->via.str.size > 32 ? 32 : (int)v->via.str.size;
    return herr_set(err, HERR_UNKNOWN_OP, "op", "unknown op \"%.*s\"", shown, v->via.str.ptr);
}

int clientop_parse_msgpack(const uint8_t *buf, size_t len, client_op_t *op, herald_error_t *err)
{
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    int rc = codec_unpack(buf, len, CLIENTOP_MAX_BYTES, &u, err);
    if (rc == 0) rc = parse_op(&u.data, op, err);
    msgpack_unpacked_destroy(&u);
    return rc;
}

int clientop_parse_json(const char *text, size_t len, client_op_t *op, herald_error_t *err)
{
    if (len > CLIENTOP_MAX_BYTES)
        return herr_set(err, HERR_TOO_LARGE, "", "op is %zu bytes, limit %d", len,
                        CLIENTOP_MAX_BYTES);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    int rc = json_to_msgpack(text, len, &sb, err);
    if (rc == 0) rc = clientop_parse_msgpack((const uint8_t *)sb.data, sb.size, op, err);
    msgpack_sbuffer_destroy(&sb);
    return rc;
}
