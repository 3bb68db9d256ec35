/* test_gw_frames.c - control frames to clients (gateway/frames.c): the JSON text of each,
 * and its msgpack form holding the same map. */
#include <check.h>
#include <string.h>

#include "frames.h"
#include "json.h"
#include "model.h"
#include "check_run.h"

static jbuf_t jb;

static void setup(void)
{
    jbuf_init(&jb, LWS_PRE);
}

static void teardown(void)
{
    jbuf_free(&jb);
}

/* m is a text frame with exactly json; bin is a binary frame with the msgpack form of the
 * same map (json_to_msgpack of that text). Both references are dropped. */
static void check_pair(gw_msg_t *m, gw_msg_t *bin, const char *json)
{
    ck_assert(!m->binary);
    ck_assert(bin->binary);
    ck_assert_uint_eq(m->refs, 1);
    ck_assert_uint_eq(m->len, strlen(json));
    ck_assert_msg(!memcmp(gw_msg_data(m), json, m->len), "got %.*s", (int)m->len,
                  (const char *)gw_msg_data(m));
    msgpack_sbuffer sb;
    herald_error_t err = {0};
    msgpack_sbuffer_init(&sb);
    ck_assert_int_eq(json_to_msgpack(json, strlen(json), &sb, &err), 0);
    ck_assert_uint_eq(bin->len, sb.size);
    ck_assert(!memcmp(gw_msg_data(bin), sb.data, sb.size));
    msgpack_sbuffer_destroy(&sb);
    gw_msg_unref(m);
    gw_msg_unref(bin);
}

START_TEST(frames_welcome_names_session_user_and_gateway)
{
    check_pair(gw_frames_welcome(&jb, false, "3-1a", "u\"1", 3),
               gw_frames_welcome(&jb, true, "3-1a", "u\"1", 3),
               "{\"type\":\"welcome\",\"session_id\":\"3-1a\",\"user_id\":\"u\\\"1\","
               "\"gateway\":3}");
}
END_TEST

START_TEST(frames_gap_and_resumed_carry_their_range)
{
    check_pair(gw_frames_range(&jb, false, "gap", 12, 13),
               gw_frames_range(&jb, true, "gap", 12, 13),
               "{\"type\":\"gap\",\"from\":12,\"to\":13}");
    check_pair(gw_frames_range(&jb, false, "resumed", 1, 4294967296ull),
               gw_frames_range(&jb, true, "resumed", 1, 4294967296ull),
               "{\"type\":\"resumed\",\"from\":1,\"to\":4294967296}");
}
END_TEST

START_TEST(frames_subscribed_lists_the_channel_names_of_the_mask)
{
    uint32_t mask = (1u << CH_TRADE) | (1u << CH_SYSTEM);
    char want[128];
    snprintf(want, sizeof want, "{\"type\":\"subscribed\",\"channels\":[\"%s\",\"%s\"]}",
             model_channel_name(CH_TRADE < CH_SYSTEM ? CH_TRADE : CH_SYSTEM),
             model_channel_name(CH_TRADE < CH_SYSTEM ? CH_SYSTEM : CH_TRADE));
    check_pair(gw_frames_subscribed(&jb, false, mask), gw_frames_subscribed(&jb, true, mask), want);
    check_pair(gw_frames_subscribed(&jb, false, 0), gw_frames_subscribed(&jb, true, 0),
               "{\"type\":\"subscribed\",\"channels\":[]}");
}
END_TEST

START_TEST(frames_pong_error_refreshed_and_acks)
{
    check_pair(gw_frames_pong(&jb, false), gw_frames_pong(&jb, true), "{\"type\":\"pong\"}");
    check_pair(gw_frames_error(&jb, false, "rate_limited", "too many"),
               gw_frames_error(&jb, true, "rate_limited", "too many"),
               "{\"type\":\"error\",\"code\":\"rate_limited\",\"message\":\"too many\"}");
    check_pair(gw_frames_refreshed(&jb, false, 1764000000),
               gw_frames_refreshed(&jb, true, 1764000000),
               "{\"type\":\"refreshed\",\"exp\":1764000000}");
    check_pair(gw_frames_acks(&jb, false, true), gw_frames_acks(&jb, true, true),
               "{\"type\":\"acks\",\"on\":true}");
    check_pair(gw_frames_acks(&jb, false, false), gw_frames_acks(&jb, true, false),
               "{\"type\":\"acks\",\"on\":false}");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("gw_frames");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, frames_welcome_names_session_user_and_gateway);
    tcase_add_test(tc, frames_gap_and_resumed_carry_their_range);
    tcase_add_test(tc, frames_subscribed_lists_the_channel_names_of_the_mask);
    tcase_add_test(tc, frames_pong_error_refreshed_and_acks);
    suite_add_tcase(s, tc);
    return check_run_suite(s);
}
