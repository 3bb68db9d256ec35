/* notif_fixture.h - test helpers: msgpack from JSON text, valid payloads for any type. */
#ifndef HERALD_NOTIF_FIXTURE_H
#define HERALD_NOTIF_FIXTURE_H

#include <check.h>
#include <stdio.h>
#include <string.h>

#include "codec.h"
#include "json.h"
#include "model.h"

/* Replace sb's content by the msgpack form of JSON text (which must be valid). */
static inline void fx_json(msgpack_sbuffer *sb, const char *json)
{
    herald_error_t err = {0};
    msgpack_sbuffer_clear(sb);
    int rc = json_to_msgpack(json, strlen(json), sb, &err);
    ck_assert_msg(rc == 0, "fixture JSON refused: %s (%s)", err.message, json);
}

/* Decode a producer notification given as JSON text. Returns codec_notif_from_object's rc. */
static inline int fx_notif(const char *json, msgpack_sbuffer *sb, msgpack_unpacked *u, notif_t *n,
                           herald_error_t *err)
{
    fx_json(sb, json);
    int rc = codec_unpack((const uint8_t *)sb->data, sb->size, HERALD_MAX_NOTIF_BYTES, u, err);
    ck_assert_int_eq(rc, 0);
    memset(n, 0, sizeof *n);
    return codec_notif_from_object(&u->data, n, err);
}

/* Pack a payload map for t: every required field with a value of its kind, except field
 * `skip` (left out) and field `wrong` (given a value of another kind); then an extra field.
 * Use (size_t)-1 for neither. */
static inline void fx_payload(msgpack_packer *pk, const msg_type_t *t, size_t skip, size_t wrong)
{
    msgpack_pack_map(pk, (uint32_t)(t->n_required - (skip < t->n_required) + 1));
    for (size_t i = 0; i < t->n_required; i++) {
        if (i == skip) continue;
        const char *name = t->required[i].name;
        msgpack_pack_str_with_body(pk, name, strlen(name));
        field_kind_t k = t->required[i].kind;
        if (i == wrong) {
            switch (k) {
            case FK_STRING:
                msgpack_pack_int64(pk, 1);
                break;
            case FK_NUMBER:
                msgpack_pack_str_with_body(pk, "1.5", 3);
                break;
            case FK_INTEGER:
                msgpack_pack_double(pk, 1.5);
                break; /* a float is not an integer */
            }
            continue;
        }
        switch (k) {
        case FK_STRING:
            msgpack_pack_str_with_body(pk, "ab\"c", 4);
            break;
        case FK_NUMBER:
            msgpack_pack_double(pk, 3521.25);
            break;
        case FK_INTEGER:
            msgpack_pack_int64(pk, -7);
            break;
        }
    }
    msgpack_pack_str_with_body(pk, "note", 4);
    msgpack_pack_str_with_body(pk, "extra fields pass through", 25);
}

/* Pack a complete producer notification map of type t for user. */
static inline void fx_notif_map(msgpack_packer *pk, const msg_type_t *t, const char *user)
{
    msgpack_pack_map(pk, 7);
    msgpack_pack_str_with_body(pk, "message_id", 10);
    msgpack_pack_str_with_body(pk, "m-1", 3);
    msgpack_pack_str_with_body(pk, "message_type", 12);
    msgpack_pack_str_with_body(pk, t->name, strlen(t->name));
    msgpack_pack_str_with_body(pk, "user_id", 7);
    msgpack_pack_str_with_body(pk, user, strlen(user));
    msgpack_pack_str_with_body(pk, "priority", 8);
    msgpack_pack_uint8(pk, 2);
    msgpack_pack_str_with_body(pk, "timestamp", 9);
    msgpack_pack_uint64(pk, 1764000000000000000ull);
    msgpack_pack_str_with_body(pk, "source", 6);
    msgpack_pack_str_with_body(pk, "MatchingEngine", 14);
    msgpack_pack_str_with_body(pk, "payload", 7);
    fx_payload(pk, t, (size_t)-1, (size_t)-1);
}

#endif
