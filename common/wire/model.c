/* model.c - the protocol.md 2 type table, the payload schema as data, and message id generation. */
#include "model.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* Field kinds follow protocol.md 2: prices, volumes, margins, cash, profits, costs and ratios are
 * numbers (integer or float); ids, directions, reasons, messages and other labels are
 * strings; error_code, account_type and deadline are integers. */
/* clang-format off */
#define S(f) {f, FK_STRING, sizeof f - 1}
#define N(f) {f, FK_NUMBER, sizeof f - 1}
#define I(f) {f, FK_INTEGER, sizeof f - 1}
/* clang-format on */

static const field_spec_t req_order_accepted[] = {
    S("order_id"),      S("exchange_order_id"),
    S("instrument_id"), S("direction"),
    S("offset"),        N("price"),
    N("volume"),        S("order_type"),
    N("frozen_margin"),
};
static const field_spec_t req_order_rejected[] = {
    S("order_id"),
    S("instrument_id"),
    S("reason"),
    I("error_code"),
};
static const field_spec_t req_order_partially_filled[] = {
    S("order_id"),      S("exchange_order_id"), S("instrument_id"),
    N("filled_volume"), N("remaining_volume"),  N("average_price"),
};
static const field_spec_t req_order_filled[] = {
    S("order_id"),      S("exchange_order_id"), S("instrument_id"),
    N("filled_volume"), N("average_price"),
};
static const field_spec_t req_order_canceled[] = {
    S("order_id"),
    S("exchange_order_id"),
    S("instrument_id"),
    S("reason"),
};
static const field_spec_t req_trade_executed[] = {
    S("trade_id"),      S("order_id"),  S("exchange_order_id"),
    S("instrument_id"), S("direction"), S("offset"),
    N("price"),         N("volume"),    N("commission"),
    S("fill_type"),
};
static const field_spec_t req_account_open[] = {
    S("account_id"), S("user_id"), S("account_name"), N("init_cash"), I("account_type"),
};
static const field_spec_t req_account_update[] = {
    S("user_id"), N("balance"),         N("available"),    N("frozen"),
    N("margin"),  N("position_profit"), N("close_profit"), N("risk_ratio"),
};
static const field_spec_t req_position_update[] = {
    S("user_id"),   S("instrument_id"), N("volume_long"), N("volume_short"),
    N("cost_long"), N("cost_short"),    N("profit_long"), N("profit_short"),
};
static const field_spec_t req_risk_alert[] = {
    S("user_id"), S("alert_type"), S("severity"), S("message"), N("risk_ratio"), S("suggestion"),
};
static const field_spec_t req_margin_call[] = {
    S("user_id"), N("current_margin"), N("required_margin"), I("deadline"), S("message"),
};
static const field_spec_t req_system_notice[] = {
    S("title"),
    S("content"),
    S("level"),
};

#define ROW(name, ch, prio, req)                                                                   \
    {                                                                                              \
        name, sizeof name - 1, ch, prio, req, sizeof req / sizeof req[0]                           \
    }
#define BARE(name, ch, prio)                                                                       \
    {                                                                                              \
        name, sizeof name - 1, ch, prio, NULL, 0                                                   \
    }

static const msg_type_t types[] = {
    ROW("order_accepted", CH_TRADE, 1, req_order_accepted),
    ROW("order_partially_filled", CH_TRADE, 1, req_order_partially_filled),
    ROW("order_filled", CH_TRADE, 1, req_order_filled),
    ROW("order_canceled", CH_TRADE, 1, req_order_canceled),
    ROW("trade_executed", CH_TRADE, 1, req_trade_executed),
    BARE("trade_canceled", CH_TRADE, 1),
    ROW("order_rejected", CH_TRADE, 0, req_order_rejected),
    BARE("order_expired", CH_TRADE, 3),
    ROW("account_open", CH_ACCOUNT, 2, req_account_open),
    ROW("account_update", CH_ACCOUNT, 2, req_account_update),
    ROW("position_update", CH_POSITION, 2, req_position_update),
    BARE("position_profit", CH_POSITION, 2),
    ROW("risk_alert", CH_RISK, 0, req_risk_alert),
    ROW("margin_call", CH_RISK, 0, req_margin_call),
    BARE("position_limit", CH_RISK, 0),
    ROW("system_notice", CH_SYSTEM, 3, req_system_notice),
    BARE("trading_session_start", CH_SYSTEM, 3),
    BARE("trading_session_end", CH_SYSTEM, 3),
    BARE("market_halt", CH_SYSTEM, 3),
};

static const char *const channel_names[CH__COUNT] = {
    [CH_TRADE] = "trade", [CH_ACCOUNT] = "account", [CH_POSITION] = "position",
    [CH_RISK] = "risk",   [CH_SYSTEM] = "system",
};

const msg_type_t *model_types(size_t *count)
{
    *count = sizeof types / sizeof types[0];
    return types;
}

/* Type lookup is on every publish's path: an open-addressed table of the rows, keyed by a
 * hash of the name's length, first, middle and last bytes, filled before main runs. */
#define TYPE_TAB 64u
static uint8_t type_tab[TYPE_TAB]; /* row index + 1; 0 is empty */

static unsigned type_hash(const char *name, size_t len)
{
    return (unsigned)(len * 37u + (uint8_t)name[0] * 11u + (uint8_t)name[len / 2] * 5u +
                      (uint8_t)name[len - 1]);
}

__attribute__((constructor)) static void type_tab_fill(void)
{
    _Static_assert(sizeof types / sizeof types[0] < TYPE_TAB / 2, "type table at most half full");
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        unsigned h = type_hash(types[i].name, types[i].name_len);
        while (type_tab[h % TYPE_TAB])
            h++;
        type_tab[h % TYPE_TAB] = (uint8_t)(i + 1);
    }
}

const msg_type_t *model_type_find(const char *name, size_t len)
{
    if (len == 0) return NULL; /* name[0] may be past the caller's buffer */
    for (unsigned h = type_hash(name, len);; h++) {
        unsigned r = type_tab[h % TYPE_TAB];
        if (!r) return NULL;
        const msg_type_t *t = &types[r - 1];
        if (t->name_len == len && memcmp(t->name, name, len) == 0) return t;
    }
}

unsigned model_type_index(const msg_type_t *t)
{
    return (unsigned)(t - types);
}

/* The mask of a comma-separated list of type names (syntax checked by config.c). */
static int type_mask(const char *list, const char *key, uint32_t *mask, herald_error_t *err)
{
    _Static_assert(sizeof types / sizeof types[0] <= 32, "a type mask is 32 bits");
    *mask = 0;
    for (const char *p = list; *p;) {
        p += strspn(p, " \t,");
        size_t len = strcspn(p, " \t,");
        if (!len) break;
        const msg_type_t *t = model_type_find(p, len);
        if (!t)
            return herr_set(err, HERR_BAD_VALUE, key, "%s: \"%.*s\" is not a message_type", key,
                            (int)(len > 40 ? 40 : len), p);
        *mask |= 1u << model_type_index(t);
        p += len;
    }
    return 0;
}

int model_delivery_masks(const herald_config_t *cfg, model_masks_t *m, herald_error_t *err)
{
    if (type_mask(cfg->conflate_types, "delivery.conflate", &m->conflate, err) < 0 ||
        type_mask(cfg->ack_required_types, "delivery.ack_required", &m->ack_required, err) < 0)
        return -1;
    uint32_t both = m->conflate & m->ack_required;
    if (both)
        return herr_set(err, HERR_BAD_VALUE, "delivery.conflate",
                        "delivery.conflate: %s is also in delivery.ack_required (a conflated "
                        "notification could never be acknowledged)",
                        types[__builtin_ctz(both)].name);
    return 0;
}

const char *model_channel_name(channel_t ch)
{
    if ((unsigned)ch >= CH__COUNT) return "unknown";
    return channel_names[ch];
}

int model_channel_find(const char *name, size_t len)
{
    for (int i = 0; i < CH__COUNT; i++) {
        if (strlen(channel_names[i]) == len && memcmp(channel_names[i], name, len) == 0) return i;
    }
    return -1;
}

/* Find key in map, searching from *hint on and wrapping around; producers usually send the
 * fields in schema order, so each lookup then succeeds at its first comparison. */
static const msgpack_object *map_get(const msgpack_object *map, const char *key, size_t klen,
                                     uint32_t *hint)
{
    const msgpack_object_kv *kv = map->via.map.ptr;
    uint32_t n = map->via.map.size;
    for (uint32_t j = 0, i = *hint; j < n; j++, i = i + 1 == n ? 0 : i + 1) {
        const msgpack_object *k = &kv[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == klen &&
            k->via.str.ptr[0] == key[0] && memcmp(k->via.str.ptr, key, klen) == 0) {
            *hint = i + 1 == n ? 0 : i + 1;
            return &kv[i].val;
        }
    }
    return NULL;
}

static bool kind_matches(field_kind_t kind, msgpack_object_type t)
{
    bool integer = t == MSGPACK_OBJECT_POSITIVE_INTEGER || t == MSGPACK_OBJECT_NEGATIVE_INTEGER;
    switch (kind) {
    case FK_STRING:
        return t == MSGPACK_OBJECT_STR;
    case FK_INTEGER:
        return integer;
    case FK_NUMBER:
        return integer || t == MSGPACK_OBJECT_FLOAT64 || t == MSGPACK_OBJECT_FLOAT32;
    }
    return false;
}

static const char *kind_name(field_kind_t kind)
{
    switch (kind) {
    case FK_STRING:
        return "a string";
    case FK_INTEGER:
        return "an integer";
    case FK_NUMBER:
        return "a number";
    }
    return "?";
}

/* Fill err naming "payload.<field>" (herr_set takes the field verbatim). */
static int payload_error(herald_error_t *err, herr_t code, const msg_type_t *type,
                         const field_spec_t *f)
{
    char field[sizeof err->field];
    snprintf(field, sizeof field, "payload.%s", f->name);
    if (code == HERR_MISSING_FIELD)
        return herr_set(err, code, field, "%s is required for %s", field, type->name);
    return herr_set(err, code, field, "%s must be %s", field, kind_name(f->kind));
}

int model_validate_payload(const msg_type_t *type, const msgpack_object *payload,
                           herald_error_t *err)
{
    if (payload->type != MSGPACK_OBJECT_MAP)
        return herr_set(err, HERR_NOT_MAP, "payload", "payload must be a map");
    uint32_t hint = 0;
    for (size_t i = 0; i < type->n_required; i++) {
        const field_spec_t *f = &type->required[i];
        const msgpack_object *v = map_get(payload, f->name, f->name_len, &hint);
        int rc = model_payload_field_check(type, f, v ? &v->type : NULL, err);
        if (rc) return rc;
    }
    return 0;
}

int model_payload_field_check(const msg_type_t *type, const field_spec_t *f,
                              const msgpack_object_type *t, herald_error_t *err)
{
    if (!t) return payload_error(err, HERR_MISSING_FIELD, type, f);
    if (!kind_matches(f->kind, *t)) return payload_error(err, HERR_BAD_KIND, type, f);
    return 0;
}

/* Random bytes are fetched in blocks: one getrandom() call serves 16 ids. */
static _Thread_local uint8_t rnd_pool[4096]; /* one getrandom per 256 ids */
static _Thread_local size_t rnd_left;

static void rnd_refill(void)
{
    size_t got = 0;
    while (got < sizeof rnd_pool) {
        ssize_t r = getrandom(rnd_pool + got, sizeof rnd_pool - got, 0);
        if (r > 0) {
            got += (size_t)r;
        } else if (r < 0 && errno != EINTR) {
            /* No kernel entropy interface: ids must still be unique, not secret. */
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^
                         ((uint64_t)getpid() << 48) ^ (uint64_t)(uintptr_t)&ts;
            for (; got < sizeof rnd_pool; got++) {
                x += 0x9e3779b97f4a7c15ull;
                uint64_t z = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
                rnd_pool[got] = (uint8_t)((z ^ (z >> 27)) * 0x94d049bb133111ebull >> 56);
            }
        }
    }
    rnd_left = sizeof rnd_pool;
}

void model_gen_message_id(char out[HERALD_MAX_ID_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    if (rnd_left < 16) rnd_refill();
    uint8_t b[16];
    memcpy(b, rnd_pool + sizeof rnd_pool - rnd_left, 16);
    rnd_left -= 16;
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    char *p = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) *p++ = '-';
        *p++ = hex[b[i] >> 4];
        *p++ = hex[b[i] & 15];
    }
    *p = '\0';
}
