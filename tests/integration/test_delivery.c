/* test_delivery.c - SPEC 14 delivery semantics against the real broker and gateways:
 * conflation of a client that stops reading, acknowledged delivery with re-sends across a
 * gateway kill -9, and presence across two gateways. */
#include <check.h>
#include <jansson.h>
#include <msgpack.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gwsys.h"
#include "rawws.h"

static gws_t S;

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A msgpack object as a jansson value (the test reads both subprotocols the same way). */
static json_t *mp_to_json(const msgpack_object *o)
{
    switch (o->type) {
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        return json_integer((json_int_t)o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return json_integer((json_int_t)o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return json_real(o->via.f64);
    case MSGPACK_OBJECT_BOOLEAN:
        return json_boolean(o->via.boolean);
    case MSGPACK_OBJECT_STR:
        return json_stringn(o->via.str.ptr, o->via.str.size);
    case MSGPACK_OBJECT_ARRAY: {
        json_t *a = json_array();
        for (uint32_t i = 0; i < o->via.array.size; i++)
            json_array_append_new(a, mp_to_json(&o->via.array.ptr[i]));
        return a;
    }
    case MSGPACK_OBJECT_MAP: {
        json_t *m = json_object();
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            const msgpack_object *k = &o->via.map.ptr[i].key;
            char key[128];
            snprintf(key, sizeof key, "%.*s", (int)k->via.str.size, k->via.str.ptr);
            json_object_set_new(m, key, mp_to_json(&o->via.map.ptr[i].val));
        }
        return m;
    }
    default:
        return json_null();
    }
}

/* The next message of a raw client as JSON (either subprotocol); NULL on timeout or close. */
static json_t *raw_json(rawws_t *c, int timeout_ms)
{
    const uint8_t *d;
    long n = rawws_recv(c, &d, timeout_ms);
    if (n < 0) return NULL;
    if (c->opcode == 0x1) {
        json_t *j = json_loadb((const char *)d, (size_t)n, 0, NULL);
        ck_assert_msg(j != NULL, "a JSON message: %.*s", (int)n, d);
        return j;
    }
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    ck_assert_int_eq(msgpack_unpack_next(&u, (const char *)d, (size_t)n, &off),
                     MSGPACK_UNPACK_SUCCESS);
    ck_assert_uint_eq(off, (size_t)n);
    json_t *j = mp_to_json(&u.data);
    msgpack_unpacked_destroy(&u);
    return j;
}

static void raw_token_connect(rawws_t *c, unsigned gw, const char *user, const char *query,
                              const char *proto, int rcvbuf)
{
    char tok[512];
    gws_token(user, tok, sizeof tok);
    rawws_connect(c, (uint16_t)(S.ws + gw), tok, query, proto, rcvbuf);
    json_t *w = raw_json(c, GWS_WAIT);
    ck_assert_ptr_nonnull(w);
    ck_assert_str_eq(gws_jstr(w, "type"), "welcome");
    json_decref(w);
}

#define N_UPDATES    10000
#define N_INSTRUMENT 10
#define PUB_BATCH    500

/* Position updates k = first .. first+count-1 of user: instrument I<k % 10>, volume_long k
 * (so the latest value of each instrument is known). seqs[k] gets each one's seq. */
static void publish_positions(const char *user, unsigned first, unsigned count, uint64_t *seqs)
{
    static char json[PUB_BATCH * 400];
    for (unsigned k = first; k < first + count; k += PUB_BATCH) {
        unsigned n = first + count - k < PUB_BATCH ? first + count - k : PUB_BATCH;
        size_t len = 0;
        json[len++] = '[';
        for (unsigned i = 0; i < n; i++)
            len += (size_t)snprintf(
                json + len, sizeof json - len,
                "%s{\"user_id\":\"%s\",\"message_type\":\"position_update\",\"message_id\":"
                "\"pu-%d-%s-%u\",\"payload\":{\"user_id\":\"%s\",\"instrument_id\":\"I%u\","
                "\"volume_long\":%u,\"volume_short\":0,\"cost_long\":3512.5,\"cost_short\":0,"
                "\"profit_long\":12.25,\"profit_short\":0}}",
                i ? "," : "", user, (int)getpid(), user, k + i, user, (k + i) % N_INSTRUMENT,
                k + i);
        json[len++] = ']';
        json[len] = '\0';
        gws_publish_json(&S, json, n, seqs + k);
    }
}

/* Trade notifications of about the same size as the position updates. */
static void publish_trades(const char *user, unsigned count)
{
    static char json[PUB_BATCH * 400];
    for (unsigned k = 0; k < count; k += PUB_BATCH) {
        size_t len = 0;
        json[len++] = '[';
        for (unsigned i = 0; i < PUB_BATCH; i++)
            len += (size_t)snprintf(
                json + len, sizeof json - len,
                "%s{\"user_id\":\"%s\",\"message_type\":\"order_canceled\",\"message_id\":"
                "\"oc-%d-%s-%u\",\"payload\":{\"order_id\":\"O%u\",\"exchange_order_id\":"
                "\"X%u\",\"instrument_id\":\"I%u\",\"reason\":\"user request, by the book\"}}",
                i ? "," : "", user, (int)getpid(), user, k + i, k + i, k + i,
                (k + i) % N_INSTRUMENT);
        json[len++] = ']';
        json[len] = '\0';
        gws_publish_json(&S, json, PUB_BATCH, NULL);
    }
}

/* Wait until gateway gw has read its ring and its batches were due (P2: 100 ms). */
static void wait_gateway_caught_up(unsigned gw)
{
    uint64_t end = mono_ms() + GWS_WAIT;
    while (gws_stat(&S, gw, "ring_lag_records") && mono_ms() < end)
        usleep(20000);
    usleep(300000);
}

/* A client that stops reading while N_UPDATES position updates for 10 instruments arrive:
 * once it reads again it gets the latest value of every instrument, every seq exactly once
 * either delivered or named in a `conflated` message (which comes right before the newer
 * notification of the same instrument), seqs in order, and it is not closed. */
static void conflation_case(const char *proto)
{
    const char *o[] = {"gateway.max_pending_bytes=256K", NULL};
    gws_start(&S, 1, o);
    static uint64_t seqs[N_UPDATES];
    static uint8_t seen[N_UPDATES + 1];
    static int64_t inst_of[N_UPDATES + 1];
    memset(seen, 0, sizeof seen);
    rawws_t c;
    raw_token_connect(&c, 0, "slowpos", NULL, proto, 4096); /* and now it does not read */
    publish_positions("slowpos", 0, N_UPDATES, seqs);
    for (unsigned k = 0; k < N_UPDATES; k++) {
        ck_assert_uint_eq(seqs[k], k + 1);
        inst_of[seqs[k]] = k % N_INSTRUMENT;
    }
    wait_gateway_caught_up(0);
    ck_assert_uint_gt(gws_stat(&S, 0, "conflated_position_update"), 0);
    ck_assert_uint_eq(gws_stat(&S, 0, "slow_consumer_closes"), 0);

    /* reading again */
    unsigned accounted = 0, delivered = 0, conflated_msgs = 0;
    int64_t last_value[N_INSTRUMENT];
    for (unsigned i = 0; i < N_INSTRUMENT; i++)
        last_value[i] = -1;
    uint64_t last_seq = 0;
    json_t *pending_conflated = NULL;
    uint64_t end = mono_ms() + GWS_WAIT;
    while (accounted < N_UPDATES && mono_ms() < end) {
        json_t *j = raw_json(&c, 2000);
        ck_assert_msg(j != NULL, "message (%u of %u accounted, close %d)", accounted, N_UPDATES,
                      c.close_code);
        const char *type = gws_jstr(j, "type");
        if (!strcmp(type, "conflated")) {
            ck_assert_ptr_null(pending_conflated); /* one per superseding notification */
            json_t *list = json_object_get(j, "seqs");
            ck_assert(json_is_array(list) && json_array_size(list) > 0);
            uint64_t prev = 0;
            for (size_t i = 0; i < json_array_size(list); i++) {
                uint64_t s = (uint64_t)json_integer_value(json_array_get(list, i));
                ck_assert(s >= 1 && s <= N_UPDATES && s > prev);
                ck_assert_msg(!seen[s], "seq %llu accounted twice", (unsigned long long)s);
                seen[s] = 1;
                prev = s;
                accounted++;
            }
            conflated_msgs++;
            pending_conflated = j;
            continue;
        }
        ck_assert_str_eq(type, "notification");
        uint64_t s = gws_jint(j, "seq");
        ck_assert(s >= 1 && s <= N_UPDATES);
        ck_assert_msg(s > last_seq, "seq %llu after %llu: same priority, in order",
                      (unsigned long long)s, (unsigned long long)last_seq);
        last_seq = s;
        ck_assert_msg(!seen[s], "seq %llu delivered after being named conflated",
                      (unsigned long long)s);
        seen[s] = 1;
        accounted++;
        delivered++;
        json_t *payload = json_object_get(j, "payload");
        unsigned inst = (unsigned)atoi(gws_jstr(payload, "instrument_id") + 1);
        ck_assert_int_eq(inst, inst_of[s]);
        last_value[inst] = (int64_t)json_integer_value(json_object_get(payload, "volume_long"));
        if (pending_conflated) { /* it named older seqs of this same instrument */
            json_t *list = json_object_get(pending_conflated, "seqs");
            for (size_t i = 0; i < json_array_size(list); i++) {
                uint64_t cs = (uint64_t)json_integer_value(json_array_get(list, i));
                ck_assert_uint_lt(cs, s);
                ck_assert_int_eq(inst_of[cs], inst);
            }
            json_decref(pending_conflated);
            pending_conflated = NULL;
        }
        json_decref(j);
    }
    ck_assert_uint_eq(accounted, N_UPDATES);
    ck_assert_ptr_null(pending_conflated);
    for (unsigned i = 0; i < N_INSTRUMENT; i++)
        ck_assert_int_eq(last_value[i], N_UPDATES - N_INSTRUMENT + i); /* the latest value */
    ck_assert_uint_gt(conflated_msgs, 0);
    ck_assert_uint_lt(delivered, N_UPDATES);
    /* still open: it answers a ping */
    rawws_send_text(&c, "{\"op\":\"ping\"}");
    json_t *pong = raw_json(&c, GWS_WAIT);
    ck_assert_ptr_nonnull(pong);
    ck_assert_str_eq(gws_jstr(pong, "type"), "pong");
    json_decref(pong);
    ck_assert_uint_eq(gws_stat(&S, 0, "slow_consumer_closes"), 0);
    ck_assert_uint_eq(gws_stat(&S, 0, "conflated_position_update"), N_UPDATES - delivered);
    rawws_close(&c);
    gws_stop(&S);
}

START_TEST(stalled_client_gets_latest_positions_and_a_conflated_account_json)
{
    conflation_case("herald.json");
}
END_TEST

START_TEST(stalled_client_gets_latest_positions_and_a_conflated_account_msgpack)
{
    conflation_case("herald.msgpack");
}
END_TEST

/* Trade notifications are not conflatable: an equally slow client is closed with 4008. */
START_TEST(stalled_client_of_trades_is_closed_4008)
{
    const char *o[] = {"gateway.max_pending_bytes=256K", NULL};
    gws_start(&S, 1, o);
    rawws_t c;
    raw_token_connect(&c, 0, "slowtrade", NULL, NULL, 4096);
    publish_trades("slowtrade", N_UPDATES);
    wait_gateway_caught_up(0);
    ck_assert_uint_eq(gws_stat(&S, 0, "slow_consumer_closes"), 1);
    uint64_t end = mono_ms() + GWS_WAIT;
    json_t *j;
    while ((j = raw_json(&c, 2000)) && mono_ms() < end)
        json_decref(j);
    ck_assert_int_eq(c.close_code, 4008);
    ck_assert_uint_eq(gws_stat(&S, 0, "conflated_messages"), 0);
    rawws_close(&c);
    gws_stop(&S);
}
END_TEST

static Suite *delivery_suite(void)
{
    Suite *s = suite_create("delivery");
    TCase *tc = tcase_create("conflation");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, stalled_client_gets_latest_positions_and_a_conflated_account_json);
    tcase_add_test(tc, stalled_client_gets_latest_positions_and_a_conflated_account_msgpack);
    tcase_add_test(tc, stalled_client_of_trades_is_closed_4008);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return gws_run(delivery_suite());
}
