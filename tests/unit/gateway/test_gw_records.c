/* test_gw_records.c - the ring record stream (gateway/records.c) on real gateway state:
 * readiness, live fan-out, channel filters, broadcasts, gap detection with held records and
 * the fill, gap messages, batching by priority, bad records. */
#include <check.h>
#include <string.h>

#include "gwfix.h"
#include "check_run.h"
#include "proto.h"

static gw_t g;
static uint8_t rec[8192];

static void setup(void)
{
    gwfix_init(&g);
}

static void teardown(void)
{
    gwfix_fini(&g);
}

static void ready(gw_session_t *s, uint64_t last, uint64_t bcast_last)
{
    rec_session_ready_t r = {.session = s->id, .last_seq = last, .bcast_last_seq = bcast_last};
    gw_records_on_record(REC_SESSION_READY, (const uint8_t *)&r, sizeof r, &g);
}

/* An order_rejected (P0, trade channel) of user, or a system_notice (P3) when notice. */
static size_t notif(const char *user, bool notice, uint64_t seq)
{
    char json[512];
    if (notice)
        snprintf(json, sizeof json,
                 "{\"message_type\":\"system_notice\",\"user_id\":\"%s\",\"payload\":{\"title\":"
                 "\"t\",\"content\":\"c\",\"level\":\"info\"}}",
                 user);
    else
        snprintf(json, sizeof json,
                 "{\"message_type\":\"order_rejected\",\"user_id\":\"%s\",\"payload\":"
                 "{\"order_id\":\"o\",\"instrument_id\":\"IF\",\"reason\":\"r\",\"error_code\":3}}",
                 user);
    return gwfix_notif(rec, sizeof rec, json, seq);
}

static void live(const char *user, uint64_t seq)
{
    size_t n = notif(user, false, seq);
    gw_records_on_record(REC_NOTIFY, rec, (uint32_t)n, &g);
}

static void fill(const char *user, uint64_t seq)
{
    rec_replay_t h = {.session = 0};
    uint8_t buf[sizeof rec + sizeof h];
    size_t n = notif(user, false, seq);
    memcpy(buf, &h, sizeof h);
    memcpy(buf + sizeof h, rec, n);
    gw_records_on_record(REC_REPLAY, buf, (uint32_t)(sizeof h + n), &g);
}

static void range(uint32_t type, uint64_t session, const char *user, uint64_t from, uint64_t to)
{
    rec_range_t r = {.session = session, .from = from, .to = to};
    uint8_t buf[sizeof r + 64];
    memcpy(buf, &r, sizeof r);
    memcpy(buf + sizeof r, user, strlen(user));
    gw_records_on_record(type, buf, (uint32_t)(sizeof r + strlen(user)), &g);
}

/* The seqs of the notifications queued for s, as "1,2,3" (other frames as their type). */
static const char *queued(gw_session_t *s)
{
    static char out[256];
    size_t n = 0;
    out[0] = '\0';
    gw_msg_t *m;
    for (unsigned i = 0; (m = gwfix_queued(s, i)); i++) {
        const char *sep = i ? "," : "";
        if (m->notification)
            n += (size_t)snprintf(out + n, sizeof out - n, "%s%llu", sep,
                                  (unsigned long long)m->seq);
        else if (gwfix_has(m, "welcome"))
            n += (size_t)snprintf(out + n, sizeof out - n, "%sW", sep);
        else if (gwfix_has(m, "gap"))
            n += (size_t)snprintf(out + n, sizeof out - n, "%sG", sep);
        else
            n += (size_t)snprintf(out + n, sizeof out - n, "%s?", sep);
    }
    return out;
}

START_TEST(records_ready_welcomes_the_session_and_delivers_live_from_after_last_seq)
{
    gw_session_t *s = gwfix_session(&g, "u1", false), *other = gwfix_session(&g, "u2", false);
    live("u1", 5); /* before READY: the user's position is unknown */
    ready(s, 10, 0);
    ck_assert_int_eq(s->state, SESS_LIVE);
    ck_assert_uint_eq(s->live_from, 11);
    char want[128];
    snprintf(want, sizeof want, "\"session_id\":\"%s\",\"user_id\":\"u1\",\"gateway\":0}",
             s->id_str);
    ck_assert(gwfix_has(gwfix_queued(s, 0), want));
    live("u1", 11);
    live("u1", 11); /* delivered already */
    live("u1", 12);
    ck_assert_str_eq(queued(s), "W,11,12");
    ck_assert(gwfix_has(gwfix_queued(s, 1), "\"seq\":11"));
    ck_assert(gwfix_has(gwfix_queued(s, 1), "\"message_type\":\"order_rejected\""));
    ck_assert_str_eq(queued(other), ""); /* another user's, and not ready */
    ck_assert_uint_eq(g.c.ring_records, 5);
}
END_TEST

START_TEST(records_hold_what_follows_a_seq_gap_until_the_fill_arrives)
{
    gw_session_t *s = gwfix_session(&g, "u1", false);
    ready(s, 10, 0);
    live("u1", 11);
    live("u1", 14); /* 12..13 lost in the ring */
    gw_user_t *u = s->user;
    ck_assert(u->filling);
    ck_assert_uint_eq(u->fill_to, 13);
    ck_assert_uint_eq(u->n_held, 1);
    ck_assert_uint_eq(g.c.gaps_detected, 1);
    ck_assert_uint_eq(g.c.replays_requested, 1);
    live("u1", 15);
    ck_assert_str_eq(queued(s), "W,11");
    fill("u1", 12);
    fill("u1", 13);
    ck_assert(!u->filling);
    ck_assert_uint_eq(u->n_held, 0);
    ck_assert_str_eq(queued(s), "W,11,12,13,14,15");
    ck_assert_uint_eq(u->last, 15);
}
END_TEST

START_TEST(records_fill_that_ends_short_becomes_a_gap_message)
{
    gw_session_t *s = gwfix_session(&g, "u1", false);
    ready(s, 10, 0);
    live("u1", 11);
    live("u1", 15);
    fill("u1", 13);                         /* 12 no longer in history */
    range(REC_REPLAY_END, 0, "u1", 12, 14); /* ... nor 14 */
    ck_assert_str_eq(queued(s), "W,11,G,13,G,15");
    ck_assert(gwfix_has(gwfix_queued(s, 2), "{\"type\":\"gap\",\"from\":12,\"to\":12}"));
    ck_assert(gwfix_has(gwfix_queued(s, 4), "{\"type\":\"gap\",\"from\":14,\"to\":14}"));
    ck_assert_uint_eq(g.c.gap_msgs, 2);
    ck_assert(!s->user->filling);
}
END_TEST

START_TEST(records_honour_channel_filters_and_broadcasts_reach_every_session)
{
    gw_session_t *a = gwfix_session(&g, "u1", false), *b = gwfix_session(&g, "u2", true);
    ready(a, 0, 0);
    ready(b, 0, 0);
    a->filtered = true;
    a->channels = 1u << CH_SYSTEM; /* not the trade channel */
    live("u1", 1);
    live("*", 1);
    ck_assert_str_eq(queued(a), "W");
    ck_assert_str_eq(queued(b), "W,1");
    ck_assert(gwfix_queued(b, 1)->binary); /* the msgpack session gets the record's bytes */
}
END_TEST

START_TEST(records_batch_p1_to_p3_and_send_p0_at_once)
{
    gw_session_t *s = gwfix_session(&g, "u1", false);
    ready(s, 0, 0);
    size_t n = notif("u1", true, 1); /* P3 */
    gw_records_on_record(REC_NOTIFY, rec, (uint32_t)n, &g);
    live("u1", 2); /* P0 */
    ck_assert_uint_eq(gw_fifo_frames(&s->ready), 2);
    ck_assert_uint_eq(gw_fifo_frames(&s->held), 1);
    ck_assert(s->dl[2].on); /* waits for its P3 deadline */
    ck_assert_uint_ne(gw_deliver_next_deadline(&g), 0);
    gw_deliver_flush(&g, s);
    ck_assert_str_eq(queued(s), "W,2,1");
    ck_assert_uint_eq(gw_deliver_next_deadline(&g), 0);
}
END_TEST

START_TEST(records_count_and_skip_bad_records)
{
    gw_session_t *s = gwfix_session(&g, "u1", false);
    ready(s, 0, 0);
    uint8_t junk[8] = {0xc1, 0, 0, 0, 0, 0, 0, 0};
    gw_records_on_record(REC_NOTIFY, junk, sizeof junk, &g); /* not msgpack */
    gw_records_on_record(REC_SESSION_READY, junk, 4, &g);    /* short */
    gw_records_on_record(RING_REC_USER + 60, junk, 8, &g);   /* unknown type */
    gw_records_on_record(REC_GAP, junk, 8, &g);              /* short range */
    ck_assert_uint_eq(g.c.bad_records, 4);
    live("u1", 1);
    ck_assert_str_eq(queued(s), "W,1");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("gw_records");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, records_ready_welcomes_the_session_and_delivers_live_from_after_last_seq);
    tcase_add_test(tc, records_hold_what_follows_a_seq_gap_until_the_fill_arrives);
    tcase_add_test(tc, records_fill_that_ends_short_becomes_a_gap_message);
    tcase_add_test(tc, records_honour_channel_filters_and_broadcasts_reach_every_session);
    tcase_add_test(tc, records_batch_p1_to_p3_and_send_p0_at_once);
    tcase_add_test(tc, records_count_and_skip_bad_records);
    suite_add_tcase(s, tc);
    return check_run_suite(s);
}
