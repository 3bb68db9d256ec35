/* test_model.c - the type table and payload schema against protocol.md 2; message ids. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "check_run.h"
#include "notif_fixture.h"

/* protocol.md 2, written out independently of model.c's table. */
static const struct {
    const char *name;
    const char *channel;
    int priority;
    const char *required; /* "name:kind ..." with kind s (string), n (number), i (integer) */
} spec[] = {
    {"order_accepted", "trade", 1,
     "order_id:s exchange_order_id:s instrument_id:s direction:s offset:s price:n volume:n "
     "order_type:s frozen_margin:n"},
    {"order_partially_filled", "trade", 1,
     "order_id:s exchange_order_id:s instrument_id:s filled_volume:n remaining_volume:n "
     "average_price:n"},
    {"order_filled", "trade", 1,
     "order_id:s exchange_order_id:s instrument_id:s filled_volume:n average_price:n"},
    {"order_canceled", "trade", 1, "order_id:s exchange_order_id:s instrument_id:s reason:s"},
    {"trade_executed", "trade", 1,
     "trade_id:s order_id:s exchange_order_id:s instrument_id:s direction:s offset:s price:n "
     "volume:n commission:n fill_type:s"},
    {"trade_canceled", "trade", 1, ""},
    {"order_rejected", "trade", 0, "order_id:s instrument_id:s reason:s error_code:i"},
    {"order_expired", "trade", 3, ""},
    {"account_open", "account", 2,
     "account_id:s user_id:s account_name:s init_cash:n account_type:i"},
    {"account_update", "account", 2,
     "user_id:s balance:n available:n frozen:n margin:n position_profit:n close_profit:n "
     "risk_ratio:n"},
    {"position_update", "position", 2,
     "user_id:s instrument_id:s volume_long:n volume_short:n cost_long:n cost_short:n "
     "profit_long:n profit_short:n"},
    {"position_profit", "position", 2, ""},
    {"risk_alert", "risk", 0,
     "user_id:s alert_type:s severity:s message:s risk_ratio:n suggestion:s"},
    {"margin_call", "risk", 0, "user_id:s current_margin:n required_margin:n deadline:i message:s"},
    {"position_limit", "risk", 0, ""},
    {"system_notice", "system", 3, "title:s content:s level:s"},
    {"trading_session_start", "system", 3, ""},
    {"trading_session_end", "system", 3, ""},
    {"market_halt", "system", 3, ""},
};
#define N_SPEC (sizeof spec / sizeof spec[0])

START_TEST(model_type_table_matches_spec)
{
    size_t count;
    model_types(&count);
    ck_assert_uint_eq(count, N_SPEC);
    for (size_t i = 0; i < N_SPEC; i++) {
        const msg_type_t *t = model_type_find(spec[i].name, strlen(spec[i].name));
        ck_assert_msg(t != NULL, "%s missing", spec[i].name);
        ck_assert_str_eq(t->name, spec[i].name);
        char near[64]; /* each one-byte change of the name finds nothing */
        for (size_t k = 0; k < strlen(spec[i].name); k++) {
            snprintf(near, sizeof near, "%s", spec[i].name);
            near[k] ^= 0x20;
            ck_assert_ptr_null(model_type_find(near, strlen(near)));
        }
        ck_assert_str_eq(model_channel_name(t->channel), spec[i].channel);
        ck_assert_int_eq(t->priority, spec[i].priority);
    }
}
END_TEST

START_TEST(model_required_fields_and_kinds_match_spec)
{
    for (size_t i = 0; i < N_SPEC; i++) {
        const msg_type_t *t = model_type_find(spec[i].name, strlen(spec[i].name));
        char want[512], got[512] = "";
        snprintf(want, sizeof want, "%s", spec[i].required);
        for (size_t f = 0; f < t->n_required; f++) {
            const char *k = t->required[f].kind == FK_STRING   ? "s"
                            : t->required[f].kind == FK_NUMBER ? "n"
                                                               : "i";
            size_t at = strlen(got);
            snprintf(got + at, sizeof got - at, "%s%s:%s", f ? " " : "", t->required[f].name, k);
        }
        ck_assert_str_eq(got, want);
    }
}
END_TEST

START_TEST(model_type_find_rejects_unknown_names_and_prefixes)
{
    ck_assert_ptr_null(model_type_find("order", 5));
    ck_assert_ptr_null(model_type_find("order_acceptedX", 15));
    ck_assert_ptr_null(model_type_find("", 0));
    ck_assert_ptr_nonnull(model_type_find("order_accepted!", 14));
}
END_TEST

/* The hashed lookup against a plain scan of the rows, on random names made of the rows'
 * own characters and lengths (mostly misses, with hashes colliding with real rows). */
START_TEST(model_type_find_agrees_with_a_scan_of_the_rows)
{
    size_t count;
    const msg_type_t *rows = model_types(&count);
    srand(11);
    char name[40];
    for (int trial = 0; trial < 200000; trial++) {
        const msg_type_t *like = &rows[rand() % (int)count];
        size_t len = like->name_len + (size_t)(rand() % 3) - 1;
        if (len == 0 || len >= sizeof name) continue;
        for (size_t i = 0; i < len; i++) /* mostly the row's own bytes, a few changed */
            name[i] = i < like->name_len && rand() % 8 ? like->name[i] : "aeinorst_"[rand() % 9];
        const msg_type_t *want = NULL;
        for (size_t r = 0; r < count; r++)
            if (rows[r].name_len == len && !memcmp(rows[r].name, name, len)) want = &rows[r];
        ck_assert_ptr_eq(model_type_find(name, len), want);
    }
}
END_TEST

START_TEST(model_channels_have_spec_names)
{
    const char *names[] = {"trade", "account", "position", "risk", "system"};
    for (int i = 0; i < CH__COUNT; i++) {
        ck_assert_str_eq(model_channel_name((channel_t)i), names[i]);
        ck_assert_int_eq(model_channel_find(names[i], strlen(names[i])), i);
    }
    ck_assert_int_eq(model_channel_find("trades", 6), -1);
    ck_assert_int_eq(model_channel_find("tra", 3), -1);
}
END_TEST

/* Validate a payload built by fx_payload(skip, wrong); returns rc and fills err. */
static int validate(const msg_type_t *t, size_t skip, size_t wrong, herald_error_t *err)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    fx_payload(&pk, t, skip, wrong);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    ck_assert_int_eq(codec_unpack((const uint8_t *)sb.data, sb.size, 1 << 20, &u, NULL), 0);
    int rc = model_validate_payload(t, &u.data, err);
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

START_TEST(model_accepts_complete_payload_with_extra_fields)
{
    size_t count;
    const msg_type_t *types = model_types(&count);
    for (size_t i = 0; i < count; i++) {
        herald_error_t err = {0};
        ck_assert_msg(validate(&types[i], (size_t)-1, (size_t)-1, &err) == 0, "%s: %s",
                      types[i].name, err.message);
    }
}
END_TEST

START_TEST(model_names_each_missing_required_field)
{
    size_t count;
    const msg_type_t *types = model_types(&count);
    for (size_t i = 0; i < count; i++) {
        for (size_t f = 0; f < types[i].n_required; f++) {
            herald_error_t err = {0};
            char want[80];
            snprintf(want, sizeof want, "payload.%s", types[i].required[f].name);
            ck_assert_int_eq(validate(&types[i], f, (size_t)-1, &err), -HERR_MISSING_FIELD);
            ck_assert_int_eq(err.code, HERR_MISSING_FIELD);
            ck_assert_str_eq(err.field, want);
            ck_assert_ptr_nonnull(strstr(err.message, want));
        }
    }
}
END_TEST

START_TEST(model_names_each_field_of_wrong_kind)
{
    size_t count;
    const msg_type_t *types = model_types(&count);
    for (size_t i = 0; i < count; i++) {
        for (size_t f = 0; f < types[i].n_required; f++) {
            herald_error_t err = {0};
            char want[80];
            snprintf(want, sizeof want, "payload.%s", types[i].required[f].name);
            ck_assert_int_eq(validate(&types[i], (size_t)-1, f, &err), -HERR_BAD_KIND);
            ck_assert_str_eq(err.field, want);
        }
    }
}
END_TEST

START_TEST(model_numbers_accept_integers_and_floats)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    const msg_type_t *t = model_type_find("order_filled", 12);
    const char *ok[] = {
        "{\"order_id\":\"o\",\"exchange_order_id\":\"e\",\"instrument_id\":\"i\","
        "\"filled_volume\":3,\"average_price\":-1.5}",
        "{\"order_id\":\"o\",\"exchange_order_id\":\"e\",\"instrument_id\":\"i\","
        "\"filled_volume\":-3,\"average_price\":2}",
    };
    for (size_t i = 0; i < 2; i++) {
        fx_json(&sb, ok[i]);
        ck_assert_int_eq(codec_unpack((const uint8_t *)sb.data, sb.size, 1 << 20, &u, NULL), 0);
        ck_assert_int_eq(model_validate_payload(t, &u.data, NULL), 0);
    }
    fx_json(&sb, "[1]");
    ck_assert_int_eq(codec_unpack((const uint8_t *)sb.data, sb.size, 1 << 20, &u, NULL), 0);
    herald_error_t err = {0};
    ck_assert_int_eq(model_validate_payload(t, &u.data, &err), -HERR_NOT_MAP);
    ck_assert_str_eq(err.field, "payload");
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&sb);
}
END_TEST

static int cmp_id(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* protocol.md 14: the delivery type lists as masks; unknown names and a type in both lists are
 * refused with the key named. */
START_TEST(model_delivery_masks_name_types_and_refuse_overlap)
{
    herald_config_t c;
    herald_error_t err;
    model_masks_t m;
    config_defaults(&c);
    ck_assert_int_eq(model_delivery_masks(&c, &m, &err), 0);
    const char *conf[] = {"position_update", "position_profit", "account_update"};
    uint32_t want = 0;
    for (int i = 0; i < 3; i++)
        want |= 1u << model_type_index(model_type_find(conf[i], strlen(conf[i])));
    ck_assert_uint_eq(m.conflate, want);
    ck_assert_uint_eq(m.ack_required,
                      (1u << model_type_index(model_type_find("margin_call", 11))) |
                          (1u << model_type_index(model_type_find("risk_alert", 10))));
    snprintf(c.conflate_types, sizeof c.conflate_types, "position_update, nosuch_type");
    ck_assert_int_lt(model_delivery_masks(&c, &m, &err), 0);
    ck_assert_str_eq(err.field, "delivery.conflate");
    ck_assert_ptr_nonnull(strstr(err.message, "nosuch_type"));
    snprintf(c.conflate_types, sizeof c.conflate_types, "margin_call");
    ck_assert_int_lt(model_delivery_masks(&c, &m, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.message, "margin_call"));
    snprintf(c.conflate_types, sizeof c.conflate_types, "%s", "");
    snprintf(c.ack_required_types, sizeof c.ack_required_types, "%s", "");
    ck_assert_int_eq(model_delivery_masks(&c, &m, &err), 0);
    ck_assert_uint_eq(m.conflate | m.ack_required, 0);
}
END_TEST

START_TEST(model_generates_distinct_uuid_v4_ids)
{
    enum { COUNT = 2000 };
    static char ids[COUNT][HERALD_MAX_ID_LEN + 1];
    for (int i = 0; i < COUNT; i++) {
        char *id = ids[i];
        model_gen_message_id(id);
        ck_assert_uint_eq(strlen(id), 36);
        for (int c = 0; c < 36; c++) {
            if (c == 8 || c == 13 || c == 18 || c == 23)
                ck_assert_int_eq(id[c], '-');
            else
                ck_assert_ptr_nonnull(strchr("0123456789abcdef", id[c]));
        }
        ck_assert_int_eq(id[14], '4');
        ck_assert_ptr_nonnull(strchr("89ab", id[19]));
    }
    qsort(ids, COUNT, sizeof ids[0], cmp_id);
    for (int i = 1; i < COUNT; i++)
        ck_assert_str_ne(ids[i - 1], ids[i]);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("model");
    TCase *tc = tcase_create("model");
    tcase_add_test(tc, model_type_table_matches_spec);
    tcase_add_test(tc, model_required_fields_and_kinds_match_spec);
    tcase_add_test(tc, model_type_find_rejects_unknown_names_and_prefixes);
    tcase_add_test(tc, model_type_find_agrees_with_a_scan_of_the_rows);
    tcase_add_test(tc, model_channels_have_spec_names);
    tcase_add_test(tc, model_accepts_complete_payload_with_extra_fields);
    tcase_add_test(tc, model_names_each_missing_required_field);
    tcase_add_test(tc, model_names_each_field_of_wrong_kind);
    tcase_add_test(tc, model_numbers_accept_integers_and_floats);
    tcase_add_test(tc, model_generates_distinct_uuid_v4_ids);
    tcase_add_test(tc, model_delivery_masks_name_types_and_refuse_overlap);
    suite_add_tcase(s, tc);
    return check_run_suite(s);
}
