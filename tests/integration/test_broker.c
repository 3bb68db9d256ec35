/* test_broker.c - herald-broker as a process, its ingest: native and HTTP publishing,
 * batches, errors, the api key, dedup. (Queues and overload: test_broker_queues.c; history,
 * restart and bad control input: test_broker_history.c.) */
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
#include "broker_suite.h"
#include "frame.h"
#include "proto.h"

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
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return procs_run_suite(broker_suite());
}
