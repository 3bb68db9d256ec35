/* test_broker.c - herald-broker as a process: publishing, errors, dedup, priorities, seq,
 * routing to rings, history and replay, overload, gateway death, restart, bad input. */
#include <check.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bk_harness.h"
#include "frame.h"
#include "proto.h"

static bkh_t H;
static bkh_gw_t G[2];
static bool exit_hook;

static void cleanup(void)
{
    bkh_gw_free(&G[0]);
    bkh_gw_free(&G[1]);
    bkh_cleanup(&H);
}

/* Start a broker with overrides; clean-up runs on any exit of the test process. */
static void start(const char *const *over)
{
    if (!exit_hook) {
        atexit(cleanup);
        exit_hook = true;
    }
    bkh_init(&H, over);
    ck_assert_msg(bkh_start(&H) == 0, "broker did not start (log %s)", H.logpath);
}

static herald_client_t *client(void)
{
    herald_error_t err;
    herald_client_t *c = herald_connect(H.sock, &err);
    ck_assert_msg(c != NULL, "connect: %s", err.message);
    return c;
}

static herald_result_t publish(herald_client_t *c, const char *user, int prio, const char *id)
{
    char json[512];
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    bkh_notice_json(json, sizeof json, user, prio, id);
    bkh_msgpack(&sb, json);
    herald_result_t r;
    herald_error_t err;
    ck_assert_msg(herald_publish(c, (uint8_t *)sb.data, sb.size, &r, &err) == 0, "publish: %s",
                  err.message);
    msgpack_sbuffer_destroy(&sb);
    return r;
}

static void attach_and_open(int gi, unsigned id, const char *user)
{
    ck_assert_int_eq(bkh_gw_attach(&G[gi], &H, id), 0);
    size_t from = G[gi].n;
    ck_assert_int_eq(bkh_gw_open(&G[gi], 1, user, 0), 0);
    ck_assert_int_ge(bkh_gw_wait_type(&G[gi], from, REC_SESSION_READY, 5000), 0);
}

static size_t count_type(bkh_gw_t *g, uint32_t type)
{
    size_t n = 0;
    for (size_t i = 0; i < g->n; i++)
        n += g->recs[i].type == type;
    return n;
}

START_TEST(native_publish_is_sequenced_and_written_to_the_routed_ring)
{
    start(NULL);
    attach_and_open(0, 0, "alice");
    herald_client_t *c = client();
    for (int i = 1; i <= 3; i++) {
        herald_result_t r = publish(c, "alice", 1, NULL);
        ck_assert(r.ok);
        ck_assert_uint_eq(r.seq, (uint64_t)i);
        ck_assert(!r.duplicate);
    }
    herald_result_t other = publish(c, "bob", 1, NULL);
    ck_assert_uint_eq(other.seq, 1);
    bkh_gw_collect(&G[0], 4, 2000);
    ck_assert_uint_eq(count_type(&G[0], REC_NOTIFY), 3); /* bob is not routed here */
    for (size_t i = 0, k = 1; i < G[0].n; i++)
        if (G[0].recs[i].type == REC_NOTIFY) ck_assert_uint_eq(G[0].recs[i].seq, k++);
    herald_close(c);
}
END_TEST

START_TEST(native_batch_answers_every_item_on_its_own)
{
    start(NULL);
    herald_client_t *c = client();
    msgpack_sbuffer a, b, bad;
    msgpack_sbuffer_init(&a);
    msgpack_sbuffer_init(&b);
    msgpack_sbuffer_init(&bad);
    char json[512];
    bkh_notice_json(json, sizeof json, "u1", 2, "");
    bkh_msgpack(&a, json);
    bkh_msgpack(&b, json);
    bkh_msgpack(&bad, "{\"message_type\":\"order_filled\",\"user_id\":\"u1\",\"payload\":{}}");
    const uint8_t *maps[3] = {(uint8_t *)a.data, (uint8_t *)bad.data, (uint8_t *)b.data};
    size_t lens[3] = {a.size, bad.size, b.size};
    herald_result_t res[3];
    herald_error_t err;
    ck_assert_int_eq(herald_publish_batch(c, maps, lens, 3, res, &err), 0);
    ck_assert(res[0].ok && res[0].seq == 1);
    ck_assert(!res[1].ok);
    ck_assert_str_eq(res[1].error, "missing_field");
    ck_assert_msg(strstr(res[1].message, "payload.order_id"), "message names the field: %s",
                  res[1].message);
    ck_assert(res[2].ok && res[2].seq == 2);
    msgpack_sbuffer_destroy(&a);
    msgpack_sbuffer_destroy(&b);
    msgpack_sbuffer_destroy(&bad);
    herald_close(c);
}
END_TEST

START_TEST(http_publish_object_and_array_with_keep_alive)
{
    start(NULL);
    int fd = bkh_http_connect(&H);
    char json[512], arr[1200];
    bkh_notice_json(json, sizeof json, "u1", 1, "h1");
    bkh_http_resp_t r;
    ck_assert_int_eq(bkh_http(fd, "POST", "/api/publish", "", json, strlen(json), &r), 200);
    ck_assert_msg(strstr(r.body, "\"seq\":1") && strstr(r.body, "\"message_id\":\"h1\"") &&
                      strstr(r.body, "\"duplicate\":false"),
                  "%s", r.body);
    bkh_http_free(&r);
    char j2[512];
    bkh_notice_json(j2, sizeof j2, "u1", 3, "h2");
    snprintf(arr, sizeof arr, "[%s,{\"message_type\":\"nope\",\"user_id\":\"u1\"},%s]", j2, json);
    ck_assert_int_eq(bkh_http(fd, "POST", "/api/publish", "", arr, strlen(arr), &r), 200);
    ck_assert_msg(r.body[0] == '[' && strstr(r.body, "{\"seq\":2,\"message_id\":\"h2\"") &&
                      strstr(r.body, "\"error\":\"unknown_type\"") &&
                      strstr(r.body, "{\"seq\":1,\"message_id\":\"h1\",\"duplicate\":true}"),
                  "%s", r.body);
    bkh_http_free(&r);
    ck_assert_int_eq(bkh_http(fd, "GET", "/api/stats", "", NULL, 0, &r), 200);
    ck_assert_msg(strstr(r.body, "\"messages_sent\":2") && strstr(r.body, "\"queue_sizes\":["),
                  "%s", r.body);
    bkh_http_free(&r);
    ck_assert_int_eq(bkh_http(fd, "GET", "/api/route?user=alice", "", NULL, 0, &r), 200);
    ck_assert_msg(strstr(r.body, "\"user\":\"alice\"") && strstr(r.body, "ws://127.0.0.1:75"), "%s",
                  r.body);
    bkh_http_free(&r);
    ck_assert_int_eq(bkh_http(fd, "GET", "/metrics", "", NULL, 0, &r), 200);
    ck_assert(strstr(r.body, "herald_broker_messages_sent_total 2") != NULL);
    bkh_http_free(&r);
    ck_assert_int_eq(bkh_http(fd, "GET", "/healthz", "", NULL, 0, &r), 200);
    bkh_http_free(&r);
    /* a single node: nothing of cluster mode runs, and it says so */
    ck_assert_int_eq(bkh_http(fd, "GET", "/api/cluster", "", NULL, 0, &r), 200);
    ck_assert_str_eq(r.body, "{\"enabled\":false}");
    bkh_http_free(&r);
    ck_assert_int_eq(bkh_http(fd, "GET", "/metrics", "", NULL, 0, &r), 200);
    ck_assert(strstr(r.body, "herald_cluster_") == NULL);
    bkh_http_free(&r);
    close(fd);
}
END_TEST

START_TEST(http_errors_are_json_naming_the_problem)
{
    start(NULL);
    int fd = bkh_http_connect(&H);
    bkh_http_resp_t r;
    const char *missing = "{\"message_type\":\"order_rejected\",\"user_id\":\"u\",\"payload\":"
                          "{\"order_id\":\"o\",\"instrument_id\":\"i\",\"reason\":\"r\"}}";
    ck_assert_int_eq(bkh_http(fd, "POST", "/api/publish", "", missing, strlen(missing), &r), 400);
    ck_assert_msg(strstr(r.body, "\"error\":\"missing_field\"") &&
                      strstr(r.body, "payload.error_code"),
                  "%s", r.body);
    bkh_http_free(&r);
    const char *kind = "{\"message_type\":\"system_notice\",\"user_id\":7}";
    ck_assert_int_eq(bkh_http(fd, "POST", "/api/publish", "", kind, strlen(kind), &r), 400);
    ck_assert_msg(strstr(r.body, "user_id"), "%s", r.body);
    bkh_http_free(&r);
    ck_assert_int_eq(bkh_http(fd, "POST", "/api/publish", "", "{oops", 5, &r), 400);
    ck_assert_msg(strstr(r.body, "\"error\":\"malformed\""), "%s", r.body);
    bkh_http_free(&r);
    size_t big = 70 * 1024;
    char *body = malloc(big + 300);
    int n = snprintf(body, big + 300,
                     "{\"message_type\":\"system_notice\",\"user_id\":\"u\",\"payload\":{\"title\""
                     ":\"t\",\"level\":\"x\",\"content\":\"");
    memset(body + n, 'a', big);
    strcpy(body + n + big, "\"}}");
    ck_assert_int_eq(bkh_http(fd, "POST", "/api/publish", "", body, strlen(body), &r), 413);
    ck_assert_msg(strstr(r.body, "\"error\":\"too_large\""), "%s", r.body);
    bkh_http_free(&r);
    free(body);
    ck_assert_int_eq(bkh_http(fd, "GET", "/nowhere", "", NULL, 0, &r), 404);
    ck_assert_msg(strstr(r.body, "\"error\":\"not_found\""), "%s", r.body);
    bkh_http_free(&r);
    ck_assert_int_eq(bkh_http(fd, "GET", "/healthz", "", NULL, 0, &r), 200);
    bkh_http_free(&r);
    close(fd);
}
END_TEST

START_TEST(http_requires_the_api_key_when_configured)
{
    const char *over[] = {"broker.api_key=s3cret", NULL};
    start(over);
    int fd = bkh_http_connect(&H);
    char json[512];
    bkh_notice_json(json, sizeof json, "u1", 1, "");
    bkh_http_resp_t r;
    ck_assert_int_eq(bkh_http(fd, "POST", "/api/publish", "", json, strlen(json), &r), 401);
    ck_assert_msg(strstr(r.body, "\"error\":\"unauthorized\""), "%s", r.body);
    bkh_http_free(&r);
    ck_assert_int_eq(bkh_http(fd, "POST", "/api/publish", "Authorization: apikey wrong\r\n", json,
                              strlen(json), &r),
                     401);
    bkh_http_free(&r);
    ck_assert_int_eq(bkh_http(fd, "POST", "/api/publish", "Authorization: apikey s3cret\r\n", json,
                              strlen(json), &r),
                     200);
    bkh_http_free(&r);
    close(fd);
}
END_TEST

START_TEST(native_errors_keep_the_connection_when_framing_is_intact)
{
    start(NULL);
    herald_client_t *c = client();
    herald_error_t err;
    herald_result_t r;
    const uint8_t garbage[] = {0xc1, 0xff, 0x00};
    ck_assert_int_eq(herald_send(c, garbage, sizeof garbage, &err), 0);
    ck_assert_int_eq(herald_recv_results(c, &r, 1, &err), 1);
    ck_assert(!r.ok);
    ck_assert_str_eq(r.error, "malformed");
    const uint8_t number[] = {0x05};
    ck_assert_int_eq(herald_send(c, number, 1, &err), 0);
    ck_assert_int_eq(herald_recv_results(c, &r, 1, &err), 1);
    ck_assert(!r.ok);
    ck_assert_str_eq(r.error, "not_map");
    r = publish(c, "u1", 0, NULL);
    ck_assert(r.ok && r.seq == 1);
    herald_close(c);
}
END_TEST

START_TEST(native_oversized_frame_is_refused_and_closed)
{
    start(NULL);
    herald_client_t *c = client();
    uint8_t hdr[4];
    frame_put_len(hdr, 1u << 30); /* announce a 1 GiB frame */
    int raw = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", H.sock);
    ck_assert_int_eq(connect(raw, (struct sockaddr *)&sa, sizeof sa), 0);
    ck_assert_int_eq(write(raw, hdr, 4), 4);
    uint8_t buf[512];
    ssize_t total = 0, n;
    while ((n = read(raw, buf + total, sizeof buf - (size_t)total)) > 0)
        total += n;
    ck_assert_int_gt(total, 4); /* an error frame, then EOF */
    ck_assert(memmem(buf, (size_t)total, "too_large", 9) != NULL);
    close(raw);
    herald_result_t r = publish(c, "u1", 1, NULL); /* the broker still serves */
    ck_assert(r.ok);
    herald_close(c);
}
END_TEST

/* A frame body: msgpack array32 header for n items followed by items (n copies of item). */
static uint8_t *batch_body(uint32_t n, const void *item, size_t ilen, size_t *len)
{
    *len = 5 + (size_t)n * ilen;
    uint8_t *b = malloc(*len);
    ck_assert_ptr_nonnull(b);
    b[0] = 0xdd;
    frame_put_len(b + 1, n); /* big-endian u32, as in the frame header */
    for (uint32_t i = 0; i < n; i++)
        memcpy(b + 5 + (size_t)i * ilen, item, ilen);
    return b;
}

START_TEST(batch_over_the_item_limit_is_refused_whole_and_one_at_the_limit_works)
{
    start(NULL);
    herald_client_t *c = client();
    herald_error_t err;
    herald_result_t *res = calloc(10000, sizeof *res);
    ck_assert_ptr_nonnull(res);
    /* 10,001 empty maps: one byte each, one too_large answer for the whole frame */
    const uint8_t empty = 0x80;
    size_t len;
    uint8_t *body = batch_body(10001, &empty, 1, &len);
    ck_assert_int_eq(herald_send(c, body, len, &err), 0);
    ck_assert_int_eq(herald_recv_results(c, res, 10000, &err), 1);
    ck_assert(!res[0].ok);
    ck_assert_str_eq(res[0].error, "too_large");
    ck_assert_msg(strstr(res[0].message, "10000"), "names the limit: %s", res[0].message);
    free(body);
    /* exactly the limit, of valid notices: every item sequenced */
    char json[512];
    msgpack_sbuffer one;
    msgpack_sbuffer_init(&one);
    bkh_notice_json(json, sizeof json, "cap", 2, "");
    bkh_msgpack(&one, json);
    body = batch_body(10000, one.data, one.size, &len);
    ck_assert_int_eq(herald_send(c, body, len, &err), 0);
    ck_assert_int_eq(herald_recv_results(c, res, 10000, &err), 10000);
    for (uint32_t i = 0; i < 10000; i++)
        ck_assert_msg(res[i].ok && res[i].seq == i + 1, "item %u: %s", i, res[i].error);
    free(body);
    msgpack_sbuffer_destroy(&one);
    /* HTTP: the same limit */
    size_t hlen = 2 + 10001 * 3;
    char *arr = malloc(hlen + 1);
    ck_assert_ptr_nonnull(arr);
    arr[0] = '[';
    for (size_t i = 0; i < 10001; i++)
        memcpy(arr + 1 + i * 3, i ? ",{}" : "{} ", 3);
    arr[hlen - 1] = ']';
    arr[hlen] = 0;
    int fd = bkh_http_connect(&H);
    bkh_http_resp_t r;
    ck_assert_int_eq(bkh_http(fd, "POST", "/api/publish", "", arr, hlen, &r), 413);
    ck_assert_msg(strstr(r.body, "\"error\":\"too_large\"") && strstr(r.body, "10000"), "%s",
                  r.body);
    bkh_http_free(&r);
    free(arr);
    ck_assert_int_eq(bkh_http(fd, "GET", "/api/stats", "", NULL, 0, &r), 200);
    ck_assert_msg(strstr(r.body, "\"messages_too_large\":2"), "%s", r.body);
    bkh_http_free(&r);
    close(fd);
    ck_assert(publish(c, "cap", 1, NULL).ok); /* still serving */
    free(res);
    herald_close(c);
}
END_TEST

START_TEST(duplicate_message_id_gets_the_original_seq_and_one_delivery)
{
    start(NULL);
    attach_and_open(0, 0, "dd");
    herald_client_t *c = client();
    herald_result_t a = publish(c, "dd", 1, "same-id");
    herald_result_t x = publish(c, "dd", 1, "other-id");
    herald_result_t b = publish(c, "dd", 1, "same-id");
    ck_assert(a.ok && !a.duplicate);
    ck_assert(b.ok && b.duplicate);
    ck_assert_uint_eq(a.seq, b.seq);
    ck_assert_uint_eq(x.seq, 2);
    bkh_gw_collect(&G[0], 4, 300);
    ck_assert_uint_eq(count_type(&G[0], REC_NOTIFY), 2);
    herald_close(c);
}
END_TEST

/* Pipelined: two batches of many P3 then one P0; the P0 must reach the ring before the last
 * P3. */
START_TEST(p0_overtakes_a_queued_p3_backlog)
{
    start(NULL);
    attach_and_open(0, 0, "pp");
    herald_client_t *c = client();
    const int n = 10000; /* per batch: the item limit */
    char json[512];
    msgpack_sbuffer one, batch;
    msgpack_sbuffer_init(&one);
    msgpack_sbuffer_init(&batch);
    bkh_notice_json(json, sizeof json, "pp", 3, "");
    bkh_msgpack(&one, json);
    uint8_t arr[5] = {0xdd, (uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
    msgpack_sbuffer_write(&batch, (char *)arr, 5);
    for (int i = 0; i < n; i++)
        msgpack_sbuffer_write(&batch, one.data, one.size);
    bkh_notice_json(json, sizeof json, "pp", 0, "the-p0");
    bkh_msgpack(&one, json);
    herald_error_t err;
    ck_assert_int_eq(herald_send(c, (uint8_t *)batch.data, batch.size, &err), 0);
    ck_assert_int_eq(herald_send(c, (uint8_t *)batch.data, batch.size, &err), 0);
    ck_assert_int_eq(herald_send(c, (uint8_t *)one.data, one.size, &err), 0);
    herald_result_t *res = calloc((size_t)n, sizeof *res);
    ck_assert_int_eq(herald_recv_results(c, res, (size_t)n, &err), n);
    ck_assert_int_eq(herald_recv_results(c, res, (size_t)n, &err), n);
    herald_result_t p0;
    ck_assert_int_eq(herald_recv_results(c, &p0, 1, &err), 1);
    ck_assert(p0.ok);
    bkh_gw_collect(&G[0], 2 * (size_t)n + 2, 5000);
    long p0_at = -1, last_p3 = -1;
    for (size_t i = 0; i < G[0].n; i++) {
        if (G[0].recs[i].type != REC_NOTIFY) continue;
        if (G[0].recs[i].prio == 0) p0_at = (long)i;
        if (G[0].recs[i].prio == 3) last_p3 = (long)i;
    }
    ck_assert_int_ge(p0_at, 0);
    ck_assert_msg(p0_at < last_p3, "P0 at %ld, last P3 at %ld", p0_at, last_p3);
    free(res);
    msgpack_sbuffer_destroy(&one);
    msgpack_sbuffer_destroy(&batch);
    herald_close(c);
}
END_TEST

START_TEST(seq_is_gap_free_per_user_across_priorities)
{
    start(NULL);
    const char *users[] = {"s0", "s1", "s2", "s3"};
    ck_assert_int_eq(bkh_gw_attach(&G[0], &H, 0), 0);
    for (int u = 0; u < 4; u++)
        ck_assert_int_eq(bkh_gw_open(&G[0], (uint64_t)u + 1, users[u], 0), 0);
    herald_client_t *c = client();
    usleep(50000);
    const int n = 4000;
    msgpack_sbuffer batch, one;
    msgpack_sbuffer_init(&batch);
    msgpack_sbuffer_init(&one);
    uint8_t arr[5] = {0xdd, 0, 0, (uint8_t)(n >> 8), (uint8_t)n};
    msgpack_sbuffer_write(&batch, (char *)arr, 5);
    char json[512];
    for (int i = 0; i < n; i++) {
        bkh_notice_json(json, sizeof json, users[(i * 7) % 4], (i * 13) % 4, "");
        bkh_msgpack(&one, json);
        msgpack_sbuffer_write(&batch, one.data, one.size);
    }
    herald_error_t err;
    herald_result_t *res = calloc((size_t)n, sizeof *res);
    for (int rep = 0; rep < 3; rep++) {
        ck_assert_int_eq(herald_send(c, (uint8_t *)batch.data, batch.size, &err), 0);
        ck_assert_int_eq(herald_recv_results(c, res, (size_t)n, &err), n);
    }
    bkh_gw_collect(&G[0], 4 + 3 * (size_t)n, 5000);
    uint64_t next[4] = {1, 1, 1, 1};
    for (size_t i = 0; i < G[0].n; i++) {
        if (G[0].recs[i].type != REC_NOTIFY) continue;
        int u = G[0].recs[i].user[1] - '0';
        ck_assert_uint_eq(G[0].recs[i].seq, next[u]);
        next[u]++;
    }
    ck_assert_uint_eq(next[0] + next[1] + next[2] + next[3] - 4, 3 * (uint64_t)n);
    free(res);
    msgpack_sbuffer_destroy(&batch);
    msgpack_sbuffer_destroy(&one);
    herald_close(c);
}
END_TEST

/* ring_bytes 4096: max record 512 bytes, and a gateway that never reads fills it quickly. */
START_TEST(small_ring_refuses_big_notifications_and_counts_a_discarded_backlog)
{
    const char *over[] = {"gateway.ring_bytes=4096", NULL};
    start(over);
    attach_and_open(0, 0, "bl");
    herald_client_t *c = client();
    char json[1400], content[701];
    memset(content, 'x', 700);
    content[700] = 0;
    snprintf(json, sizeof json,
             "{\"message_type\":\"system_notice\",\"user_id\":\"bl\",\"payload\":"
             "{\"title\":\"t\",\"content\":\"%s\",\"level\":\"info\"}}",
             content);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    bkh_msgpack(&sb, json);
    herald_result_t r;
    herald_error_t err;
    ck_assert_int_eq(herald_publish(c, (uint8_t *)sb.data, sb.size, &r, &err), 0);
    ck_assert(!r.ok);
    ck_assert_str_eq(r.error, "too_large");
    ck_assert_msg(strstr(r.message, "ring"), "%s", r.message);
    msgpack_sbuffer_destroy(&sb);
    for (int i = 0; i < 60; i++)
        ck_assert(publish(c, "bl", 1, NULL).ok);
    int fd = bkh_http_connect(&H);
    bkh_http_resp_t h;
    ck_assert_int_eq(bkh_http(fd, "GET", "/api/stats", "", NULL, 0, &h), 200);
    uint64_t backlogged = bkh_stat_of(h.body, "backlogged");
    ck_assert_uint_gt(backlogged, 0);
    ck_assert_uint_eq(bkh_stat_of(h.body, "ring_drops"), 0);
    bkh_http_free(&h);
    bkh_gw_disconnect(&G[0]);
    for (int i = 0; i < 100; i++) {
        ck_assert_int_eq(bkh_http(fd, "GET", "/api/stats", "", NULL, 0, &h), 200);
        bool gone = bkh_stat_of(h.body, "active_gateways") == 0;
        if (gone) break;
        bkh_http_free(&h);
        struct timespec ts = {0, 20 * 1000000};
        nanosleep(&ts, NULL);
    }
    ck_assert_uint_eq(bkh_stat_of(h.body, "active_gateways"), 0);
    ck_assert_uint_eq(bkh_stat_of(h.body, "ring_drops"), backlogged);
    bkh_http_free(&h);
    close(fd);
    herald_close(c);
}
END_TEST

START_TEST(broadcast_reaches_every_attached_ring)
{
    start(NULL);
    ck_assert_int_eq(bkh_gw_attach(&G[0], &H, 0), 0);
    ck_assert_int_eq(bkh_gw_attach(&G[1], &H, 1), 0);
    herald_client_t *c = client();
    herald_result_t r = publish(c, "*", 3, NULL);
    ck_assert(r.ok && r.seq == 1);
    r = publish(c, "*", 3, NULL);
    ck_assert_uint_eq(r.seq, 2);
    bkh_gw_collect(&G[0], 2, 2000);
    bkh_gw_collect(&G[1], 2, 2000);
    ck_assert_uint_eq(count_type(&G[0], REC_NOTIFY), 2);
    ck_assert_uint_eq(count_type(&G[1], REC_NOTIFY), 2);
    ck_assert_str_eq(G[1].recs[1].user, "*");
    herald_close(c);
}
END_TEST

START_TEST(open_with_since_replays_history_bounded_by_count_with_a_gap)
{
    const char *over[] = {"broker.history_size=5", NULL};
    start(over);
    herald_client_t *c = client();
    for (int i = 0; i < 10; i++)
        publish(c, "hh", 2, NULL);
    ck_assert_int_eq(bkh_gw_attach(&G[0], &H, 0), 0);
    ck_assert_int_eq(bkh_gw_open(&G[0], 9, "hh", 2), 0);
    ck_assert_int_ge(bkh_gw_wait_type(&G[0], 0, REC_REPLAY_END, 3000), 0);
    bkh_rec_t *r = G[0].recs;
    ck_assert_uint_eq(r[0].type, REC_SESSION_READY);
    ck_assert_uint_eq(r[0].last_seq, 10);
    ck_assert_uint_eq(r[1].type, REC_GAP);
    ck_assert_uint_eq(r[1].from, 3);
    ck_assert_uint_eq(r[1].to, 5);
    for (int i = 0; i < 5; i++) {
        ck_assert_uint_eq(r[2 + i].type, REC_REPLAY);
        ck_assert_uint_eq(r[2 + i].seq, 6 + (uint64_t)i);
        ck_assert_uint_eq(r[2 + i].session, 9);
    }
    ck_assert_uint_eq(r[7].type, REC_REPLAY_END);
    ck_assert_str_eq(r[7].user, "hh");
    /* Live notifications follow the replay. */
    herald_result_t x = publish(c, "hh", 2, NULL);
    ck_assert_uint_eq(x.seq, 11);
    bkh_gw_collect(&G[0], 9, 2000);
    ck_assert_uint_eq(G[0].recs[8].type, REC_NOTIFY);
    ck_assert_uint_eq(G[0].recs[8].seq, 11);
    herald_close(c);
}
END_TEST

/* A gateway that never reads: every open with since=1 replays the whole history into the
 * backlog, which must stay bounded (64 MiB); past it, opens get a gap instead. */
START_TEST(replays_into_a_full_backlog_are_bounded_and_answered_with_a_gap)
{
    const char *over[] = {"gateway.ring_bytes=4096", NULL};
    start(over);
    attach_and_open(0, 0, "rb");
    herald_client_t *c = client();
    char json[512];
    msgpack_sbuffer one;
    msgpack_sbuffer_init(&one);
    bkh_notice_json(json, sizeof json, "rb", 1, "");
    bkh_msgpack(&one, json);
    size_t len;
    uint8_t *body = batch_body(1000, one.data, one.size, &len);
    herald_result_t *res = calloc(1000, sizeof *res);
    herald_error_t err;
    ck_assert_int_eq(herald_send(c, body, len, &err), 0);
    ck_assert_int_eq(herald_recv_results(c, res, 1000, &err), 1000);
    ck_assert(res[999].ok && res[999].seq == 1000);
    free(res);
    free(body);
    msgpack_sbuffer_destroy(&one);
    const int opens = 450; /* ~170 KB of history each: 75 MB unbounded */
    for (int i = 0; i < opens; i++)
        ck_assert_int_eq(bkh_gw_open(&G[0], 2 + i, "rb", 1), 0);
    int fd = bkh_http_connect(&H);
    bkh_http_resp_t h = {0};
    for (int i = 0; i < 500; i++) {
        ck_assert_int_eq(bkh_http(fd, "GET", "/api/stats", "", NULL, 0, &h), 200);
        if (bkh_stat_of(h.body, "replays") >= (uint64_t)opens) break;
        bkh_http_free(&h);
        struct timespec ts = {0, 20 * 1000000};
        nanosleep(&ts, NULL);
    }
    ck_assert_uint_eq(bkh_stat_of(h.body, "replays"), opens);
    uint64_t bl = bkh_stat_of(h.body, "backlog_bytes");
    ck_assert_msg(bl <= 65u * 1024 * 1024, "backlog %llu bytes", (unsigned long long)bl);
    ck_assert_uint_gt(bkh_stat_of(h.body, "gaps"), 0);
    bkh_http_free(&h);
    close(fd);
    herald_close(c);
}
END_TEST

START_TEST(history_expires_by_age)
{
    const char *over[] = {"broker.history_age_s=1", NULL};
    start(over);
    herald_client_t *c = client();
    for (int i = 0; i < 3; i++)
        publish(c, "aa", 2, NULL);
    usleep(1500000);
    publish(c, "aa", 2, NULL);
    ck_assert_int_eq(bkh_gw_attach(&G[0], &H, 0), 0);
    ck_assert_int_eq(bkh_gw_replay(&G[0], 0, "aa", 1, 4), 0);
    ck_assert_int_ge(bkh_gw_wait_type(&G[0], 0, REC_REPLAY_END, 3000), 0);
    ck_assert_uint_eq(G[0].recs[0].type, REC_GAP);
    ck_assert_uint_eq(G[0].recs[0].from, 1);
    ck_assert_uint_eq(G[0].recs[0].to, 3);
    ck_assert_uint_eq(G[0].recs[1].type, REC_REPLAY);
    ck_assert_uint_eq(G[0].recs[1].seq, 4);
    ck_assert_uint_eq(G[0].recs[1].session, 0);
    herald_close(c);
}
END_TEST

START_TEST(full_queue_refuses_then_recovers)
{
    const char *over[] = {"broker.queue_capacity=1,1,1,1", NULL};
    start(over);
    herald_client_t *c = client();
    char json[512];
    msgpack_sbuffer one;
    msgpack_sbuffer_init(&one);
    bkh_notice_json(json, sizeof json, "qf", 3, "");
    bkh_msgpack(&one, json);
    const uint8_t *maps[3] = {(uint8_t *)one.data, (uint8_t *)one.data, (uint8_t *)one.data};
    size_t lens[3] = {one.size, one.size, one.size};
    herald_result_t res[3];
    herald_error_t err;
    ck_assert_int_eq(herald_publish_batch(c, maps, lens, 3, res, &err), 0);
    ck_assert(res[0].ok);
    ck_assert_str_eq(res[1].error, "queue_full");
    ck_assert_str_eq(res[2].error, "queue_full");
    herald_result_t r = publish(c, "qf", 3, NULL);
    ck_assert(r.ok);
    ck_assert_uint_eq(r.seq, 2);
    int fd = bkh_http_connect(&H);
    bkh_http_resp_t hr;
    ck_assert_int_eq(bkh_http(fd, "GET", "/api/stats", "", NULL, 0, &hr), 200);
    ck_assert_msg(strstr(hr.body, "\"queue_full\":[0,0,0,2]"), "%s", hr.body);
    bkh_http_free(&hr);
    close(fd);
    msgpack_sbuffer_destroy(&one);
    herald_close(c);
}
END_TEST

/* A full queue answers HTTP with 503 and Retry-After. Filling the queue between drain rounds
 * needs concurrent input: a child floods native batches while we publish over HTTP. */
START_TEST(http_publish_to_a_full_queue_is_503_with_retry_after)
{
    const char *over[] = {"broker.queue_capacity=1,1,1,1", NULL};
    start(over);
    pid_t child = fork();
    if (child == 0) {
        herald_error_t err;
        herald_client_t *c = herald_connect(H.sock, &err);
        if (!c) _exit(1);
        char json[512];
        msgpack_sbuffer one, batch;
        msgpack_sbuffer_init(&one);
        msgpack_sbuffer_init(&batch);
        bkh_notice_json(json, sizeof json, "flood", 3, "");
        bkh_msgpack(&one, json);
        uint8_t arr[3] = {0xdc, 0, 64};
        msgpack_sbuffer_write(&batch, (char *)arr, 3);
        for (int i = 0; i < 64; i++)
            msgpack_sbuffer_write(&batch, one.data, one.size);
        herald_result_t res[64];
        for (int i = 0; i < 100000; i++) { /* until killed; bounded anyway */
            if (herald_send(c, (uint8_t *)batch.data, batch.size, &err) < 0) break;
            if (i >= 8 && herald_recv_results(c, res, 64, &err) < 0) break;
        }
        _exit(0);
    }
    /* Requests on four connections in flight at once: those that land in the same loop pass
     * meet the queue that the first of them (or the flood) filled, before the next drain. */
    enum { CONNS = 4 };
    int fd[CONNS];
    for (int k = 0; k < CONNS; k++)
        fd[k] = bkh_http_connect(&H);
    char json[512];
    bkh_notice_json(json, sizeof json, "web", 3, "");
    bool got503 = false;
    time_t deadline = time(NULL) + 20;
    for (int i = 0; i < 100000 && !got503 && time(NULL) < deadline; i++) {
        for (int k = 0; k < CONNS; k++)
            ck_assert_int_eq(bkh_http_send(fd[k], "POST", "/api/publish", "", json, strlen(json)),
                             0);
        for (int k = 0; k < CONNS; k++) {
            bkh_http_resp_t r;
            int st = bkh_http_recv(fd[k], &r);
            if (st == 503) {
                got503 = true;
                ck_assert_msg(strcasestr(r.headers, "retry-after: 1") != NULL, "%s", r.headers);
                ck_assert_msg(strstr(r.body, "\"error\":\"queue_full\""), "%s", r.body);
            } else {
                ck_assert_int_eq(st, 200);
            }
            bkh_http_free(&r);
        }
    }
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    for (int k = 0; k < CONNS; k++)
        close(fd[k]);
    ck_assert_msg(got503, "no HTTP publish met a full queue");
}
END_TEST

START_TEST(gateway_death_stops_routing_and_reattach_works)
{
    start(NULL);
    attach_and_open(0, 0, "gd");
    herald_client_t *c = client();
    publish(c, "gd", 1, NULL);
    bkh_gw_collect(&G[0], 2, 2000);
    ck_assert_uint_eq(count_type(&G[0], REC_NOTIFY), 1);
    bkh_gw_disconnect(&G[0]);
    usleep(100000);
    publish(c, "gd", 1, NULL);
    bkh_gw_collect(&G[0], 3, 200);
    ck_assert_uint_eq(count_type(&G[0], REC_NOTIFY), 1); /* not routed any more */
    int fd = bkh_http_connect(&H);
    bkh_http_resp_t hr;
    bkh_http(fd, "GET", "/api/stats", "", NULL, 0, &hr);
    ck_assert_msg(strstr(hr.body, "\"active_gateways\":0") && strstr(hr.body, "\"attached\":false"),
                  "%s", hr.body);
    bkh_http_free(&hr);
    close(fd);
    /* Re-attach with the same id, open again: routing resumes on the same ring. */
    size_t from = G[0].n;
    ck_assert_int_eq(bkh_gw_attach(&G[0], &H, 0), 0);
    ck_assert_int_eq(bkh_gw_open(&G[0], 2, "gd", 0), 0);
    long ready = bkh_gw_wait_type(&G[0], from, REC_SESSION_READY, 3000);
    ck_assert_int_ge(ready, 0);
    ck_assert_uint_eq(G[0].recs[ready].last_seq, 2);
    herald_result_t r = publish(c, "gd", 1, NULL);
    ck_assert_uint_eq(r.seq, 3);
    bkh_gw_collect(&G[0], (size_t)ready + 2, 2000);
    ck_assert_uint_eq(G[0].recs[ready + 1].seq, 3);
    herald_close(c);
}
END_TEST

START_TEST(broker_kill9_restart_keeps_seq_history_and_dedup)
{
    start(NULL);
    attach_and_open(0, 0, "rk");
    herald_client_t *c = client();
    for (int i = 1; i <= 5; i++) {
        char id[16];
        snprintf(id, sizeof id, "rk-%d", i);
        publish(c, "rk", 1, id);
    }
    herald_close(c);
    bkh_gw_collect(&G[0], 6, 2000);
    bkh_stop(&H, SIGKILL);
    ck_assert_int_eq(bkh_start(&H), 0);
    c = client();
    herald_result_t d = publish(c, "rk", 1, "rk-3");
    ck_assert(d.ok && d.duplicate);
    ck_assert_uint_eq(d.seq, 3);
    herald_result_t n = publish(c, "rk", 1, "rk-6");
    ck_assert(!n.duplicate);
    ck_assert_uint_eq(n.seq, 6);
    /* The gateway reconnects: hello re-attaches the same ring, resync replays what it missed. */
    size_t from = G[0].n;
    bkh_gw_disconnect(&G[0]);
    ck_assert_int_eq(bkh_gw_attach(&G[0], &H, 0), 0);
    ck_assert_int_eq(bkh_gw_resync(&G[0], "rk", 1, 5), 0);
    long end = bkh_gw_wait_type(&G[0], from, REC_REPLAY_END, 3000);
    ck_assert_int_ge(end, 0);
    ck_assert_uint_eq(G[0].recs[end - 1].type, REC_REPLAY);
    ck_assert_uint_eq(G[0].recs[end - 1].seq, 6);
    /* History survived: replay from 1. */
    from = G[0].n;
    ck_assert_int_eq(bkh_gw_replay(&G[0], 0, "rk", 1, 6), 0);
    end = bkh_gw_wait_type(&G[0], from, REC_REPLAY_END, 3000);
    ck_assert_int_eq(end - (long)from, 6);
    herald_result_t live = publish(c, "rk", 1, NULL);
    ck_assert_uint_eq(live.seq, 7);
    bkh_gw_collect(&G[0], (size_t)end + 2, 2000);
    ck_assert_uint_eq(G[0].recs[end + 1].seq, 7); /* routed again after resync */
    herald_close(c);
}
END_TEST

/* HERALD_TEST_JOURNAL_FAIL_AFTER=2: the third journal write fails (as on a full /dev/shm),
 * once. Its round is refused with io_error and never happens: no ring sees it, its seq is
 * not used, and a retry is a new publish; a kill -9 then reuses nothing anyone saw. */
START_TEST(failed_journal_write_publishes_nothing_of_its_round)
{
    setenv("HERALD_TEST_JOURNAL_FAIL_AFTER", "2", 1);
    start(NULL);
    unsetenv("HERALD_TEST_JOURNAL_FAIL_AFTER");
    attach_and_open(0, 0, "jf");
    herald_client_t *c = client();
    ck_assert_uint_eq(publish(c, "jf", 1, "jf-1").seq, 1);
    ck_assert_uint_eq(publish(c, "jf", 1, "jf-2").seq, 2);
    herald_result_t r = publish(c, "jf", 1, "jf-3");
    ck_assert(!r.ok);
    ck_assert_str_eq(r.error, "io_error");
    ck_assert_msg(strstr(r.message, "journal"), "names the journal: %s", r.message);
    /* while the journal is failing publishes are refused; once it can grow again the retry
     * is published as new, with the seq the failed round would have had */
    for (int i = 0; i < 100 && !r.ok; i++) {
        struct timespec ts = {0, 50 * 1000000};
        nanosleep(&ts, NULL);
        r = publish(c, "jf", 1, "jf-3");
    }
    ck_assert_msg(r.ok && !r.duplicate && r.seq == 3, "retry: ok %d dup %d seq %llu %s", r.ok,
                  r.duplicate, (unsigned long long)r.seq, r.error);
    ck_assert_uint_eq(publish(c, "jf", 1, "jf-4").seq, 4);
    bkh_gw_collect(&G[0], 5, 3000);
    /* the ring holds 1..4 once each: nothing of the failed round went out before it failed */
    ck_assert_uint_eq(count_type(&G[0], REC_NOTIFY), 4);
    for (size_t i = 0, k = 1; i < G[0].n; i++)
        if (G[0].recs[i].type == REC_NOTIFY) {
            ck_assert_uint_eq(G[0].recs[i].seq, k);
            ck_assert_msg(strcmp(G[0].recs[i].message_id, "jf-3") || k == 3, "seq %zu", k);
            k++;
        }
    ck_assert_uint_ge(bkh_stat(&H, "journal_errors"), 1);
    herald_close(c);
    bkh_stop(&H, SIGKILL);
    ck_assert_int_eq(bkh_start(&H), 0);
    c = client();
    r = publish(c, "jf", 1, "jf-3");
    ck_assert(r.ok && r.duplicate && r.seq == 3);
    r = publish(c, "jf", 1, "jf-5");
    ck_assert_msg(!r.duplicate && r.seq == 5, "seq after restart %llu", (unsigned long long)r.seq);
    herald_close(c);
}
END_TEST

START_TEST(corrupt_journal_tail_is_truncated_and_counted)
{
    start(NULL);
    herald_client_t *c = client();
    for (int i = 0; i < 3; i++)
        publish(c, "cj", 1, NULL);
    herald_close(c);
    bkh_stop(&H, SIGKILL);
    char path[200];
    snprintf(path, sizeof path, "/dev/shm/%s.broker.journal", H.env.shm_prefix);
    FILE *f = fopen(path, "r+b"); /* garbage where the next record would go */
    ck_assert_ptr_nonnull(f);
    uint64_t committed = 0;
    fseek(f, 24, SEEK_SET); /* the header's committed end */
    ck_assert_int_eq(fread(&committed, 8, 1, f), 1);
    ck_assert_uint_gt(committed, 64);
    fseek(f, (long)committed, SEEK_SET);
    fwrite("\x40\x00\x00\x00garbage-tail", 1, 16, f);
    fclose(f);
    ck_assert_int_eq(bkh_start(&H), 0);
    c = client();
    herald_result_t r = publish(c, "cj", 1, NULL);
    ck_assert_uint_eq(r.seq, 4);
    ck_assert_uint_eq(bkh_stat(&H, "journal_corrupt"), 1);
    herald_close(c);
}
END_TEST

START_TEST(bad_control_messages_get_errors_and_never_crash)
{
    start(NULL);
    ck_assert_int_eq(bkh_gw_attach(&G[0], &H, 0), 0);
    const uint8_t junk[] = {0, 0, 0, 3, 0xc1, 0xc1, 0xc1};
    ck_assert_int_eq(write(G[0].fd, junk, sizeof junk), (ssize_t)sizeof junk);
    uint8_t buf[512];
    ssize_t n = read(G[0].fd, buf, sizeof buf);
    ck_assert_int_gt(n, 4);
    ck_assert(memmem(buf, (size_t)n, "error", 5) != NULL);
    ck_assert_int_eq(bkh_gw_replay(&G[0], 0, "", 1, 2), 0); /* empty user */
    n = read(G[0].fd, buf, sizeof buf);
    ck_assert(n > 4 && memmem(buf, (size_t)n, "user", 4) != NULL);
    herald_client_t *c = client();
    herald_result_t r = publish(c, "ok", 1, NULL);
    ck_assert(r.ok);
    herald_close(c);
}
END_TEST

/* A producer that never reads: the broker stops reading it once ~8 MiB of responses wait,
 * counts the pause, and still answers every frame in order once the producer reads. */
START_TEST(native_producer_not_reading_is_paused_then_fully_answered)
{
    enum { ITEMS = 1000, MAX_FRAMES = 600 };
    start(NULL);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", H.sock);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    /* One frame: an array of ITEMS non-objects, each answered with an error (~70 bytes). */
    uint8_t frame[FRAME_HDR + 3 + ITEMS];
    frame_put_len(frame, 3 + ITEMS);
    frame[FRAME_HDR] = 0xdc;
    frame[FRAME_HDR + 1] = ITEMS >> 8;
    frame[FRAME_HDR + 2] = ITEMS & 0xff;
    memset(frame + FRAME_HDR + 3, 0x01, ITEMS);
    unsigned started = 0;
    size_t left = 0; /* bytes of the current frame not yet written */
    for (;;) {       /* fill until the broker stops taking frames (or a bound) */
        if (!left) {
            if (started == MAX_FRAMES) break;
            started++;
            left = sizeof frame;
        }
        ssize_t w = write(fd, frame + sizeof frame - left, left);
        if (w > 0) {
            left -= (size_t)w;
            continue;
        }
        struct pollfd p = {fd, POLLOUT, 0};
        if (poll(&p, 1, 1000) == 0) break;
    }
    ck_assert_uint_gt(started, 130); /* more than 8 MiB of answers were asked for */
    uint64_t pauses = 0;
    for (int i = 0; i < 100 && !(pauses = bkh_stat(&H, "read_pauses")); i++)
        usleep(100000);
    ck_assert_uint_ge(pauses, 1);
    /* Now read: every frame started gets its answer (finishing the partial one). */
    size_t cap = 1 << 20, have = 0;
    uint8_t *buf = malloc(cap);
    unsigned answered = 0;
    time_t deadline = time(NULL) + 60;
    while (answered < started && time(NULL) < deadline) {
        struct pollfd p = {fd, (short)(POLLIN | (left ? POLLOUT : 0)), 0};
        poll(&p, 1, 1000);
        if (left && (p.revents & POLLOUT)) {
            ssize_t w = write(fd, frame + sizeof frame - left, left);
            if (w > 0) left -= (size_t)w;
        }
        ssize_t n = read(fd, buf + have, cap - have);
        if (n <= 0) continue;
        have += (size_t)n;
        size_t off = 0;
        const uint8_t *body;
        size_t blen;
        long k;
        while ((k = frame_next(buf + off, have - off, cap, &body, &blen)) > 0) {
            ck_assert(memmem(body, blen, "error", 5) != NULL);
            answered++;
            off += (size_t)k;
        }
        memmove(buf, buf + off, have - off);
        have -= off;
    }
    free(buf);
    close(fd);
    ck_assert_uint_eq(answered, started);
    herald_client_t *c = client();
    ck_assert(publish(c, "bp", 1, NULL).ok);
    herald_close(c);
}
END_TEST

static Suite *broker_suite(void)
{
    Suite *s = suite_create("broker");
    TCase *t = tcase_create("process");
    tcase_set_timeout(t, 120);
    tcase_add_checked_fixture(t, NULL, cleanup);
    tcase_add_test(t, native_publish_is_sequenced_and_written_to_the_routed_ring);
    tcase_add_test(t, native_batch_answers_every_item_on_its_own);
    tcase_add_test(t, http_publish_object_and_array_with_keep_alive);
    tcase_add_test(t, http_errors_are_json_naming_the_problem);
    tcase_add_test(t, http_requires_the_api_key_when_configured);
    tcase_add_test(t, native_errors_keep_the_connection_when_framing_is_intact);
    tcase_add_test(t, native_oversized_frame_is_refused_and_closed);
    tcase_add_test(t, batch_over_the_item_limit_is_refused_whole_and_one_at_the_limit_works);
    tcase_add_test(t, duplicate_message_id_gets_the_original_seq_and_one_delivery);
    tcase_add_test(t, p0_overtakes_a_queued_p3_backlog);
    tcase_add_test(t, seq_is_gap_free_per_user_across_priorities);
    tcase_add_test(t, broadcast_reaches_every_attached_ring);
    tcase_add_test(t, small_ring_refuses_big_notifications_and_counts_a_discarded_backlog);
    tcase_add_test(t, open_with_since_replays_history_bounded_by_count_with_a_gap);
    tcase_add_test(t, replays_into_a_full_backlog_are_bounded_and_answered_with_a_gap);
    tcase_add_test(t, history_expires_by_age);
    tcase_add_test(t, full_queue_refuses_then_recovers);
    tcase_add_test(t, http_publish_to_a_full_queue_is_503_with_retry_after);
    tcase_add_test(t, gateway_death_stops_routing_and_reattach_works);
    tcase_add_test(t, broker_kill9_restart_keeps_seq_history_and_dedup);
    tcase_add_test(t, corrupt_journal_tail_is_truncated_and_counted);
    tcase_add_test(t, failed_journal_write_publishes_nothing_of_its_round);
    tcase_add_test(t, bad_control_messages_get_errors_and_never_crash);
    tcase_add_test(t, native_producer_not_reading_is_paused_then_fully_answered);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return procs_run_suite(broker_suite());
}
