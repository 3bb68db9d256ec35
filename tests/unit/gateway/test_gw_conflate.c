/* test_gw_conflate.c - conflation under backpressure (gateway/conflate.c, driven through
 * deliver.c and records.c as the ring drives them): keys, which pending notifications leave
 * the queues, and the `conflated` frame's seq list. */
#include <check.h>
#include <string.h>

#include "conflate.h"
#include "gwfix.h"
#include "proto.h"
#include "reload.h"
#include "check_run.h"

static gw_t g;

static void setup(void)
{
    herald_error_t err;
    gwfix_init(&g);
    ck_assert_int_eq(gw_reload_delivery(&g, &g.cfg, &err), 0); /* position_update conflates */
    g.conflate_bytes = 0; /* every session with output pending conflates */
}

static void teardown(void)
{
    gwfix_fini(&g);
}

/* The key of a payload given as JSON text. */
static uint64_t key_of(const char *user, unsigned type, const char *payload)
{
    msgpack_sbuffer sb;
    msgpack_unpacked u;
    herald_error_t err = {0};
    msgpack_sbuffer_init(&sb);
    msgpack_unpacked_init(&u);
    ck_assert_int_eq(json_to_msgpack(payload, strlen(payload), &sb, &err), 0);
    size_t off = 0;
    ck_assert_int_eq(msgpack_unpack_next(&u, sb.data, sb.size, &off), MSGPACK_UNPACK_SUCCESS);
    uint64_t k = gw_conflate_key(user, strlen(user), type, &u.data);
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&sb);
    ck_assert_uint_ne(k, 0);
    return k;
}

START_TEST(conflate_key_is_user_type_and_instrument_else_account)
{
    uint64_t k = key_of("u1", 3, "{\"instrument_id\":\"IF\",\"volume_long\":1}");
    ck_assert_uint_eq(k, key_of("u1", 3, "{\"volume_long\":2,\"instrument_id\":\"IF\"}"));
    ck_assert_uint_ne(k, key_of("u1", 3, "{\"instrument_id\":\"IH\"}"));
    ck_assert_uint_ne(k, key_of("u2", 3, "{\"instrument_id\":\"IF\"}"));
    ck_assert_uint_ne(k, key_of("u1", 4, "{\"instrument_id\":\"IF\"}"));
    /* the instrument wins over the account; the account keys when there is no instrument */
    ck_assert_uint_eq(k, key_of("u1", 3, "{\"instrument_id\":\"IF\",\"account_id\":\"A\"}"));
    uint64_t a = key_of("u1", 3, "{\"account_id\":\"A\"}");
    ck_assert_uint_ne(a, key_of("u1", 3, "{\"account_id\":\"B\"}"));
    ck_assert_uint_ne(a, k);
    /* neither: one key per user and type; a non-string id does not count */
    uint64_t none = key_of("u1", 3, "{}");
    ck_assert_uint_eq(none, key_of("u1", 3, "{\"instrument_id\":7}"));
    ck_assert_uint_ne(none, a);
}
END_TEST

static uint8_t rec[8192];

static void ready(gw_session_t *s)
{
    rec_session_ready_t r = {.session = s->id, .last_seq = 0, .bcast_last_seq = 0};
    gw_records_on_record(REC_SESSION_READY, (const uint8_t *)&r, sizeof r, &g);
    ck_assert_int_eq(s->state, SESS_LIVE);
}

static void position(const char *instrument, uint64_t seq)
{
    char json[512];
    snprintf(json, sizeof json,
             "{\"message_type\":\"position_update\",\"user_id\":\"u1\",\"priority\":2,"
             "\"payload\":{\"user_id\":\"u1\",\"instrument_id\":\"%s\",\"volume_long\":1,"
             "\"volume_short\":0,\"cost_long\":1,\"cost_short\":0,\"profit_long\":0,"
             "\"profit_short\":0}}",
             instrument);
    size_t n = gwfix_notif(rec, sizeof rec, json, seq);
    gw_records_on_record(REC_NOTIFY, rec, (uint32_t)n, &g);
}

static bool is_seq(gw_msg_t *m, uint64_t seq)
{
    return m && m->notification && m->seq == seq;
}

static bool is_text(gw_msg_t *m, const char *text)
{
    return m && m->len == strlen(text) && !memcmp(gw_msg_data(m), text, m->len);
}

START_TEST(conflate_replaces_the_pending_notification_of_a_key_and_names_every_seq_once)
{
    gw_session_t *s = gwfix_session(&g, "u1", false);
    ready(s); /* the welcome is pending: the session conflates from now on */
    position("IF", 1);
    position("IH", 2);
    ck_assert_ptr_nonnull(s->cf);
    ck_assert_uint_eq(g.c.conflate_entries, 1);
    position("IF", 3); /* replaces 1 */
    position("IF", 4); /* replaces 3: the conflated frame takes 3 too, and moves */
    ck_assert_uint_eq(gwfix_n_queued(s), 4);
    ck_assert(gwfix_has(gwfix_queued(s, 0), "\"welcome\""));
    ck_assert(is_seq(gwfix_queued(s, 1), 2));
    ck_assert(is_text(gwfix_queued(s, 2), "{\"type\":\"conflated\",\"seqs\":[1,3]}"));
    ck_assert(is_seq(gwfix_queued(s, 3), 4));
    ck_assert_ptr_null(gwfix_queued(s, 4));
    unsigned t = model_type_index(model_type_find("position_update", 15));
    ck_assert_uint_eq(g.c.conflated[t], 2);
    /* what remains is what is counted */
    size_t bytes = 0;
    for (unsigned i = 0; i < 4; i++)
        bytes += gw_msg_cost(gwfix_queued(s, i));
    ck_assert_uint_eq(s->pending_bytes, bytes);
}
END_TEST

START_TEST(conflate_follows_held_notifications_into_the_ready_queue)
{
    gw_session_t *s = gwfix_session(&g, "u1", false);
    ready(s);
    position("IF", 1);
    ck_assert_uint_eq(gw_fifo_frames(&s->held), 1);
    gw_deliver_flush(&g, s); /* the P2 batch moves to the ready queue */
    ck_assert_uint_eq(gw_fifo_frames(&s->held), 0);
    position("IF", 2);
    ck_assert_uint_eq(gwfix_n_queued(s), 3);
    ck_assert(is_text(gwfix_queued(s, 1), "{\"type\":\"conflated\",\"seqs\":[1]}"));
    ck_assert(is_seq(gwfix_queued(s, 2), 2));
    ck_assert_uint_eq(s->ready.holes, 1); /* seq 1's slot, skipped when it reaches the front */
}
END_TEST

START_TEST(conflate_msgpack_frame_is_a_map_with_a_uint64_seq_array)
{
    gw_session_t *s = gwfix_session(&g, "u1", true);
    ready(s);
    position("IF", 1);
    position("IF", 2);
    position("IF", 3);
    gw_msg_t *c = gwfix_queued(s, 1);
    ck_assert(c && c->binary && c->conflated);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    ck_assert_int_eq(msgpack_unpack_next(&u, (const char *)gw_msg_data(c), c->len, &off),
                     MSGPACK_UNPACK_SUCCESS);
    ck_assert_uint_eq(off, c->len);
    const msgpack_object *seqs = codec_map_get(&u.data, "seqs"),
                         *type = codec_map_get(&u.data, "type");
    ck_assert(type && type->type == MSGPACK_OBJECT_STR && type->via.str.size == 9 &&
              !memcmp(type->via.str.ptr, "conflated", 9));
    ck_assert(seqs && seqs->type == MSGPACK_OBJECT_ARRAY && seqs->via.array.size == 2);
    ck_assert_uint_eq(seqs->via.array.ptr[0].via.u64, 1);
    ck_assert_uint_eq(seqs->via.array.ptr[1].via.u64, 2);
    ck_assert(is_seq(gwfix_queued(s, 2), 3));
    msgpack_unpacked_destroy(&u);
}
END_TEST

START_TEST(conflate_leaves_other_types_and_p0_alone)
{
    gw_session_t *s = gwfix_session(&g, "u1", false);
    ready(s);
    const char *rej = "{\"message_type\":\"order_rejected\",\"user_id\":\"u1\",\"payload\":"
                      "{\"order_id\":\"o\",\"instrument_id\":\"IF\",\"reason\":\"r\","
                      "\"error_code\":3}}";
    for (uint64_t seq = 1; seq <= 3; seq++) {
        size_t n = gwfix_notif(rec, sizeof rec, rej, seq);
        gw_records_on_record(REC_NOTIFY, rec, (uint32_t)n, &g);
    }
    ck_assert_uint_eq(gwfix_n_queued(s), 4);
    ck_assert_ptr_null(s->cf);
}
END_TEST

START_TEST(conflate_still_closes_a_session_past_max_pending_bytes)
{
    gw_session_t *s = gwfix_session(&g, "u1", false);
    ready(s);
    position("IF", 1);
    g.cfg.max_pending_bytes = s->pending_bytes + 10; /* the next one does not fit */
    position("IH", 2);
    ck_assert_uint_eq(s->close_code, 4008);
    ck_assert_uint_eq(g.c.slow_closes, 1);
    ck_assert_uint_eq(gwfix_n_queued(s), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("gw_conflate");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, conflate_key_is_user_type_and_instrument_else_account);
    tcase_add_test(tc,
                   conflate_replaces_the_pending_notification_of_a_key_and_names_every_seq_once);
    tcase_add_test(tc, conflate_follows_held_notifications_into_the_ready_queue);
    tcase_add_test(tc, conflate_msgpack_frame_is_a_map_with_a_uint64_seq_array);
    tcase_add_test(tc, conflate_leaves_other_types_and_p0_alone);
    tcase_add_test(tc, conflate_still_closes_a_session_past_max_pending_bytes);
    suite_add_tcase(s, tc);
    return check_run_suite(s);
}
