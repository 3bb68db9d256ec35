/* model.h - the notification model: type table (channel, default priority), payload schema
 * as data, and the decoded notification record. See protocol.md section 2. */
#ifndef HERALD_MODEL_H
#define HERALD_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "config.h"
#include "err.h"
#include "herald_limits.h"

typedef enum { CH_TRADE = 0, CH_ACCOUNT, CH_POSITION, CH_RISK, CH_SYSTEM, CH__COUNT } channel_t;

/* Kind a payload field must have. */
typedef enum {
    FK_STRING = 0,
    FK_NUMBER, /* integer or float */
    FK_INTEGER,
} field_kind_t;

typedef struct {
    const char *name;
    field_kind_t kind;
    size_t name_len; /* strlen(name) */
} field_spec_t;

/* One row of the type table. `required` lists payload fields that must be present with
 * the given kinds; extra payload fields are passed through untouched. */
typedef struct {
    const char *name;
    size_t name_len; /* strlen(name), for lookups and encoders */
    channel_t channel;
    uint8_t priority;
    const field_spec_t *required;
    size_t n_required;
} msg_type_t;

/* A decoded notification. Strings are NUL-terminated copies; `payload` is a msgpack map
 * object that borrows from the zone / buffer it was decoded from (valid as long as that is). */
typedef struct {
    char message_id[HERALD_MAX_ID_LEN + 1];
    char user_id[HERALD_MAX_ID_LEN + 1];
    char source[HERALD_MAX_SOURCE_LEN + 1];
    const msg_type_t *type;
    uint8_t priority;
    bool has_priority;      /* priority was given (else the type's default applies) */
    bool has_timestamp;     /* timestamp was given (else the broker sets it) */
    uint64_t timestamp;     /* ns since epoch */
    uint64_t seq;           /* 0 = not yet assigned */
    msgpack_object payload; /* MSGPACK_OBJECT_MAP (empty map when absent) */
    /* Set by codec_notif_scan instead of `payload` (which it leaves NIL): the payload map's
     * msgpack bytes as received (borrowed from the input; a static empty map when absent).
     * NULL when `payload` holds it. Only codec_encode_to reads it. */
    const uint8_t *payload_raw;
    uint32_t payload_raw_len;
    /* strlen of message_id, user_id and source, also set by codec_notif_scan for
     * codec_encode_to (the object path leaves them unset). */
    uint8_t message_id_len, user_id_len, source_len;
} notif_t;

/* The type table: all rows, in the order of protocol.md 2. */
const msg_type_t *model_types(size_t *count);

/* Look up a message_type by name (len bytes, not NUL-terminated); NULL if unknown. */
const msg_type_t *model_type_find(const char *name, size_t len);

/* Position of t in the type table: its bit in a type mask (1u << index). */
unsigned model_type_index(const msg_type_t *t);

/* Types of protocol.md 14 delivery semantics as masks over model_type_index. */
typedef struct {
    uint32_t conflate;     /* delivery.conflate */
    uint32_t ack_required; /* delivery.ack_required */
} model_masks_t;

/* The masks of cfg's delivery.conflate and delivery.ack_required. Errors (HERR_BAD_VALUE
 * naming the key): a name that is no message_type, or a type in both lists (a conflated
 * notification could never be acknowledged). The processes call this after loading their
 * configuration (config.c itself cannot see the type table). */
int model_delivery_masks(const herald_config_t *cfg, model_masks_t *m, herald_error_t *err);

const char *model_channel_name(channel_t ch);

/* Parse a channel name; returns -1 if unknown. */
int model_channel_find(const char *name, size_t len);

/* Check the payload map against the type's required fields and kinds. On failure fills
 * err with HERR_MISSING_FIELD / HERR_BAD_KIND / HERR_NOT_MAP naming "payload.<field>". */
int model_validate_payload(const msg_type_t *type, const msgpack_object *payload,
                           herald_error_t *err);

/* One step of model_validate_payload, for validators that walk payload bytes: the required
 * field f of type is absent (t NULL) or has kind *t. Returns 0 if that is acceptable, else
 * fills err exactly as model_validate_payload would. */
int model_payload_field_check(const msg_type_t *type, const field_spec_t *f,
                              const msgpack_object_type *t, herald_error_t *err);

static inline bool model_is_broadcast(const notif_t *n)
{
    return n->user_id[0] == '*' && n->user_id[1] == '\0';
}

/* Fill message_id with a random UUIDv4-style id (36 chars). */
void model_gen_message_id(char out[HERALD_MAX_ID_LEN + 1]);

#endif
