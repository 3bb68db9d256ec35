/* test_broker_queues.c - herald-broker as a process: priorities and per-user seq, routing
 * to every ring, full rings and queues, HTTP 503, and a producer that stops reading. */
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

#include "bk_harness.h"
#include "broker_suite.h"
#include "frame.h"
#include "proto.h"

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

static Suite *broker_queues_suite(void)
{
    Suite *s = suite_create("broker_queues");
    TCase *t = tcase_create("process");
    tcase_set_timeout(t, 120);
    tcase_add_checked_fixture(t, NULL, cleanup);
    tcase_add_test(t, p0_overtakes_a_queued_p3_backlog);
    tcase_add_test(t, seq_is_gap_free_per_user_across_priorities);
    tcase_add_test(t, broadcast_reaches_every_attached_ring);
    tcase_add_test(t, small_ring_refuses_big_notifications_and_counts_a_discarded_backlog);
    tcase_add_test(t, full_queue_refuses_then_recovers);
    tcase_add_test(t, http_publish_to_a_full_queue_is_503_with_retry_after);
    tcase_add_test(t, native_producer_not_reading_is_paused_then_fully_answered);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return procs_run_suite(broker_queues_suite());
}
