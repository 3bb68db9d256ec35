/* test_conflation.c - protocol.md 14 conflation against the real broker and gateways: a client
 * that stops reading gets the latest value of every instrument and the seqs it missed named
 * in `conflated` messages (JSON and msgpack); one whose types do not conflate is closed 4008. */
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
#include "herald_time.h"
#include "rawws.h"

static gws_t S;

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
/* ~800 bytes of padding per notification: 10,000 of them are ~10 MB, far more than the kernel
 * buffers for one socket (a few MB even with a 4 KiB receive buffer), so the gateway's own
 * queue fills whatever the machine's TCP settings. */
#define PAD   "memo: settlement T+0; venue XSHG; routed via smart order router; standard fees"
#define PAD10 PAD PAD PAD PAD PAD PAD PAD PAD PAD PAD

/* Position updates k = first .. first+count-1 of user: instrument I<k % 10>, volume_long k
 * (so the latest value of each instrument is known). seqs[k] gets each one's seq. */
static void publish_positions(const char *user, unsigned first, unsigned count, uint64_t *seqs)
{
    static char json[PUB_BATCH * 1400];
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
                "\"profit_long\":12.25,\"profit_short\":0,\"memo\":\"" PAD10 "\"}}",
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
    static char json[PUB_BATCH * 1400];
    for (unsigned k = 0; k < count; k += PUB_BATCH) {
        size_t len = 0;
        json[len++] = '[';
        for (unsigned i = 0; i < PUB_BATCH; i++)
            len += (size_t)snprintf(
                json + len, sizeof json - len,
                "%s{\"user_id\":\"%s\",\"message_type\":\"order_canceled\",\"message_id\":"
                "\"oc-%d-%s-%u\",\"payload\":{\"order_id\":\"O%u\",\"exchange_order_id\":"
                "\"X%u\",\"instrument_id\":\"I%u\",\"reason\":\"user request\",\"memo\":\"" PAD10
                "\"}}",
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

/* What a reading client has accounted for, seq by seq. */
typedef struct {
    uint8_t seen[N_UPDATES + 1];    /* seq delivered or named conflated */
    int64_t inst_of[N_UPDATES + 1]; /* seq -> instrument */
    int64_t last_value[N_INSTRUMENT];
    uint64_t last_seq;
    json_t *pending_conflated; /* a `conflated` message, until the notification it precedes */
    unsigned accounted, delivered, conflated_msgs;
} conflation_read_t;

/* A `conflated` message: every seq it names is new, in order, and accounted once. */
static void conflation_take_list(conflation_read_t *r, json_t *j)
{
    ck_assert_ptr_null(r->pending_conflated); /* one per superseding notification */
    json_t *list = json_object_get(j, "seqs");
    ck_assert(json_is_array(list) && json_array_size(list) > 0);
    uint64_t prev = 0;
    for (size_t i = 0; i < json_array_size(list); i++) {
        uint64_t s = (uint64_t)json_integer_value(json_array_get(list, i));
        ck_assert(s >= 1 && s <= N_UPDATES && s > prev);
        ck_assert_msg(!r->seen[s], "seq %llu accounted twice", (unsigned long long)s);
        r->seen[s] = 1;
        prev = s;
        r->accounted++;
    }
    r->conflated_msgs++;
    r->pending_conflated = j;
}

/* A notification: seqs in order, never one named conflated before; a pending `conflated`
 * message named older seqs of this same instrument. */
static void conflation_take_notification(conflation_read_t *r, json_t *j)
{
    ck_assert_str_eq(gws_jstr(j, "type"), "notification");
    uint64_t s = gws_jint(j, "seq");
    ck_assert(s >= 1 && s <= N_UPDATES);
    ck_assert_msg(s > r->last_seq, "seq %llu after %llu: same priority, in order",
                  (unsigned long long)s, (unsigned long long)r->last_seq);
    r->last_seq = s;
    ck_assert_msg(!r->seen[s], "seq %llu delivered after being named conflated",
                  (unsigned long long)s);
    r->seen[s] = 1;
    r->accounted++;
    r->delivered++;
    json_t *payload = json_object_get(j, "payload");
    unsigned inst = (unsigned)atoi(gws_jstr(payload, "instrument_id") + 1);
    ck_assert_int_eq(inst, r->inst_of[s]);
    r->last_value[inst] = (int64_t)json_integer_value(json_object_get(payload, "volume_long"));
    if (r->pending_conflated) {
        json_t *list = json_object_get(r->pending_conflated, "seqs");
        for (size_t i = 0; i < json_array_size(list); i++) {
            uint64_t cs = (uint64_t)json_integer_value(json_array_get(list, i));
            ck_assert_uint_lt(cs, s);
            ck_assert_int_eq(r->inst_of[cs], inst);
        }
        json_decref(r->pending_conflated);
        r->pending_conflated = NULL;
    }
    json_decref(j);
}

/* A client that stops reading while N_UPDATES position updates for 10 instruments arrive:
 * once it reads again it gets the latest value of every instrument, every seq exactly once
 * either delivered or named in a `conflated` message (which comes right before the newer
 * notification of the same instrument), seqs in order, and it is not closed. */
static void conflation_case(const char *proto)
{
    static uint64_t seqs[N_UPDATES];
    static conflation_read_t r;
    const char *o[] = {"gateway.max_pending_bytes=512K", NULL};
    gws_start(&S, 1, o);
    memset(&r, 0, sizeof r);
    rawws_t c;
    raw_token_connect(&c, 0, "slowpos", NULL, proto, 4096); /* and now it does not read */
    publish_positions("slowpos", 0, N_UPDATES, seqs);
    for (unsigned k = 0; k < N_UPDATES; k++) {
        ck_assert_uint_eq(seqs[k], k + 1);
        r.inst_of[seqs[k]] = k % N_INSTRUMENT;
    }
    wait_gateway_caught_up(0);
    ck_assert_uint_gt(gws_stat(&S, 0, "conflated_position_update"), 0);
    ck_assert_uint_eq(gws_stat(&S, 0, "slow_consumer_closes"), 0);

    /* reading again */
    for (unsigned i = 0; i < N_INSTRUMENT; i++)
        r.last_value[i] = -1;
    uint64_t end = mono_ms() + GWS_WAIT;
    while (r.accounted < N_UPDATES && mono_ms() < end) {
        json_t *j = raw_json(&c, 2000);
        ck_assert_msg(j != NULL, "message (%u of %u accounted, close %d)", r.accounted, N_UPDATES,
                      c.close_code);
        if (!strcmp(gws_jstr(j, "type"), "conflated"))
            conflation_take_list(&r, j);
        else
            conflation_take_notification(&r, j);
    }
    ck_assert_uint_eq(r.accounted, N_UPDATES);
    ck_assert_ptr_null(r.pending_conflated);
    for (unsigned i = 0; i < N_INSTRUMENT; i++)
        ck_assert_int_eq(r.last_value[i], N_UPDATES - N_INSTRUMENT + i); /* the latest value */
    ck_assert_uint_gt(r.conflated_msgs, 0);
    ck_assert_uint_lt(r.delivered, N_UPDATES);
    /* still open: it answers a ping */
    rawws_send_text(&c, "{\"op\":\"ping\"}");
    json_t *pong = raw_json(&c, GWS_WAIT);
    ck_assert_ptr_nonnull(pong);
    ck_assert_str_eq(gws_jstr(pong, "type"), "pong");
    json_decref(pong);
    ck_assert_uint_eq(gws_stat(&S, 0, "slow_consumer_closes"), 0);
    ck_assert_uint_eq(gws_stat(&S, 0, "conflated_position_update"), N_UPDATES - r.delivered);
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

int main(void)
{
    Suite *s = suite_create("conflation");
    TCase *tc = tcase_create("conflation");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, stalled_client_gets_latest_positions_and_a_conflated_account_json);
    tcase_add_test(tc, stalled_client_gets_latest_positions_and_a_conflated_account_msgpack);
    tcase_add_test(tc, stalled_client_of_trades_is_closed_4008);
    suite_add_tcase(s, tc);
    return gws_run(s);
}
