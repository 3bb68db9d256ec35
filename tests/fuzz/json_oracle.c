/* json_oracle.c - jansson + msgpack-c: the reference json_to_msgpack is checked against. */
#include "json_oracle.h"

#include <jansson.h>
#include <string.h>

static int pack_json(msgpack_packer *pk, const json_t *j)
{
    int bad = 0;
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        const char *key;
        json_t *val;
        bad |= msgpack_pack_map(pk, json_object_size(j));
        json_object_foreach((json_t *)j, key, val)
        {
            bad |= msgpack_pack_str_with_body(pk, key, strlen(key));
            bad |= pack_json(pk, val);
        }
        break;
    }
    case JSON_ARRAY:
        bad |= msgpack_pack_array(pk, json_array_size(j));
        for (size_t i = 0; i < json_array_size(j); i++)
            bad |= pack_json(pk, json_array_get(j, i));
        break;
    case JSON_STRING:
        bad |= msgpack_pack_str_with_body(pk, json_string_value(j), json_string_length(j));
        break;
    case JSON_INTEGER:
        bad |= msgpack_pack_int64(pk, json_integer_value(j));
        break;
    case JSON_REAL:
        bad |= msgpack_pack_double(pk, json_real_value(j));
        break;
    case JSON_TRUE:
        bad |= msgpack_pack_true(pk);
        break;
    case JSON_FALSE:
        bad |= msgpack_pack_false(pk);
        break;
    case JSON_NULL:
        bad |= msgpack_pack_nil(pk);
        break;
    }
    return bad;
}

int oracle_json_to_msgpack(const char *text, size_t len, msgpack_sbuffer *out, herald_error_t *err)
{
    if (memchr(text, '\0', len))
        return herr_set(err, HERR_MALFORMED, "", "invalid JSON: raw NUL byte");
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return herr_set(err, HERR_MALFORMED, "", "invalid JSON at line %d, column %d: %s",
                        jerr.line, jerr.column, jerr.text);
    size_t start = out->size;
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    int bad = pack_json(&pk, root);
    bool object = json_is_object(root);
    json_decref(root);
    if (bad) {
        out->size = start;
        return herr_set(err, HERR_INTERNAL, "", "out of memory converting JSON");
    }
    if (object && out->size - start > HERALD_MAX_NOTIF_BYTES) {
        size_t n = out->size - start;
        out->size = start;
        return herr_set(err, HERR_TOO_LARGE, "", "notification is %zu bytes, limit %d", n,
                        HERALD_MAX_NOTIF_BYTES);
    }
    return 0;
}
