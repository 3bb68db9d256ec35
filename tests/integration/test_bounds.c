/* test_bounds.c - the gateway's amplification bounds against the real broker (protocol.md 12):
 * sessions per user (the oldest closed with 4009), resumes per session per minute
 * (rate_limited), connections per gateway (503), and the per-session output bound counted
 * in the bytes queued frames really hold (a flood of tiny frames ends in 4008). */
#include <arpa/inet.h>
#include <check.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "bench_wsframe.h"
#include "gwsys.h"

static gws_t S;

START_TEST(seventeenth_session_of_a_user_closes_the_oldest_with_4009)
{
    gws_start(&S, 1, NULL); /* gateway.max_sessions_per_user = 16 */
    wsc_t *c[17];
    for (int i = 0; i < 17; i++)
        c[i] = gws_client(&S, 0, "u1", NULL, NULL);
    gws_expect_close(c[0], 4009);
    ck_assert_uint_eq(gws_stat(&S, 0, "session_limit_closes"), 1);
    uint64_t seq = gws_publish(&S, "u1", "position_limit", 0, 0);
    for (int i = 1; i < 17; i++) {
        gws_expect_seq(c[i], seq);
        ck_assert(!wsc_is_closed(c[i]));
    }
    /* another user is not affected by u1's count */
    wsc_t *other = gws_client(&S, 0, "u2", NULL, NULL);
    ck_assert_uint_eq(gws_stat(&S, 0, "session_limit_closes"), 1);
    wsc_close(other);
    for (int i = 0; i < 17; i++)
        wsc_close(c[i]);
    gws_stop(&S);
}
END_TEST

START_TEST(resume_flood_is_rate_limited_per_session)
{
    gws_start(&S, 1, (const char *const[]){"gateway.resumes_per_minute=3", NULL});
    gws_publish(&S, "u1", "position_limit", 0, 0);
    /* since=1 at connect is the first resume of the bucket */
    wsc_t *c = gws_client(&S, 0, "u1", "?since=1", NULL);
    gws_expect_type(c, "resumed", NULL);
    for (int i = 0; i < 2; i++) {
        wsc_send_text(c, "{\"op\":\"resume\",\"since\":1}");
        gws_expect_type(c, "resumed", NULL);
    }
    wsc_send_text(c, "{\"op\":\"resume\",\"since\":1}");
    json_t *j;
    gws_expect_type(c, "error", &j);
    ck_assert_str_eq(gws_jstr(j, "code"), "rate_limited");
    json_decref(j);
    ck_assert_uint_eq(gws_stat(&S, 0, "resumes_rate_limited"), 1);
    /* the session itself is fine, and another session has its own bucket */
    gws_expect_seq(c, gws_publish(&S, "u1", "position_limit", 0, 0));
    wsc_t *d = gws_client(&S, 0, "u1", NULL, NULL);
    wsc_send_text(d, "{\"op\":\"resume\",\"since\":1}");
    gws_expect_seq(d, 2);
    gws_expect_type(d, "resumed", NULL);
    wsc_close(c);
    wsc_close(d);
    gws_stop(&S);
}
END_TEST

START_TEST(connection_cap_answers_503_and_frees_with_a_close)
{
    char tok[512];
    gws_start(&S, 1, (const char *const[]){"gateway.max_connections=2", NULL});
    wsc_t *a = gws_client(&S, 0, "u1", NULL, NULL);
    wsc_t *b = gws_client(&S, 0, "u2", NULL, NULL);
    wsc_t *c = NULL;
    gws_token("u3", tok, sizeof tok);
    ck_assert_int_eq(gws_connect(&S, 0, tok, NULL, &c), 503);
    ck_assert_uint_eq(gws_stat(&S, 0, "connections_refused"), 1);
    ck_assert_uint_eq(gws_stat(&S, 0, "active_sessions"), 2);
    wsc_close(a);
    for (int i = 0; i < 250 && gws_stat(&S, 0, "active_sessions") > 1; i++)
        usleep(20000);
    c = gws_client(&S, 0, "u3", NULL, NULL);
    wsc_close(b);
    wsc_close(c);
    gws_stop(&S);
}
END_TEST

/* A raw WebSocket client: the test decides exactly what goes on the wire and when. */
static int raw_connect(uint16_t port, const char *token)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    char key[BWSF_KEY_LEN + 1], req[1200], resp[4096];
    ck_assert_int_eq(bwsf_new_key(key), 0);
    int n = snprintf(req, sizeof req,
                     "GET /ws?token=%s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: herald.json\r\n\r\n",
                     token, key);
    ck_assert_int_eq(send(fd, req, (size_t)n, MSG_NOSIGNAL), n);
    /* read the 101 up to its blank line, byte by byte, so no frame is swallowed */
    size_t got = 0;
    while (got < sizeof resp - 1 && !(got >= 4 && !memcmp(resp + got - 4, "\r\n\r\n", 4))) {
        ck_assert_int_eq(recv(fd, resp + got, 1, 0), 1);
        got++;
    }
    resp[got] = '\0';
    ck_assert_msg(!strncmp(resp, "HTTP/1.1 101", 12), "handshake: %s", resp);
    return fd;
}

/* Read frames until a close arrives; returns its code (0 if the connection ended first). */
static int raw_close_code(int fd)
{
    static uint8_t buf[1 << 20];
    size_t have = 0;
    for (;;) {
        bwsf_frame_t f;
        bwsf_rc_t rc;
        while ((rc = bwsf_parse(buf, have, sizeof buf, &f)) == BWSF_OK) {
            if (f.opcode == BWSF_CLOSE) return f.len >= 2 ? f.payload[0] << 8 | f.payload[1] : 0;
            memmove(buf, buf + f.frame_len, have - f.frame_len);
            have -= f.frame_len;
        }
        ck_assert_int_eq(rc, BWSF_NEED_MORE);
        ssize_t r = recv(fd, buf + have, sizeof buf - have, 0);
        if (r <= 0) return 0;
        have += (size_t)r;
    }
}

/* 200 pings sent in one write, answers never read: 200 pong frames of 15 bytes are 3000
 * payload bytes, under a 4 KiB bound, but each queued frame holds ~60 bytes more (header,
 * LWS_PRE, allocator, queue slot, framing): counted as such, the session passes the bound
 * and is closed with 4008. */
START_TEST(small_frame_flood_hits_4008_by_real_bytes)
{
    char tok[512];
    gws_start(&S, 1, (const char *const[]){"gateway.max_pending_bytes=4K", NULL});
    gws_token("u1", tok, sizeof tok);
    int fd = raw_connect(S.ws, tok);
    static uint8_t burst[200 * 32];
    size_t len = 0;
    const char *ping = "{\"op\":\"ping\"}";
    for (int i = 0; i < 200; i++)
        len += bwsf_write_masked(burst + len, sizeof burst - len, BWSF_TEXT, (const uint8_t *)ping,
                                 strlen(ping), 0x5a5a0000u + (uint32_t)i);
    ck_assert_int_eq(send(fd, burst, len, MSG_NOSIGNAL), (ssize_t)len);
    ck_assert_int_eq(raw_close_code(fd), 4008);
    close(fd);
    ck_assert_uint_eq(gws_stat(&S, 0, "slow_consumer_closes"), 1);
    /* a client that reads its pongs is not affected */
    wsc_t *c = gws_client(&S, 0, "u2", NULL, NULL);
    for (int i = 0; i < 200; i++) {
        wsc_send_text(c, ping);
        gws_expect_type(c, "pong", NULL);
    }
    ck_assert(!wsc_is_closed(c));
    wsc_close(c);
    gws_stop(&S);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("bounds");
    TCase *tc = tcase_create("bounds");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, seventeenth_session_of_a_user_closes_the_oldest_with_4009);
    tcase_add_test(tc, resume_flood_is_rate_limited_per_session);
    tcase_add_test(tc, connection_cap_answers_503_and_frees_with_a_close);
    tcase_add_test(tc, small_frame_flood_hits_4008_by_real_bytes);
    suite_add_tcase(s, tc);
    return gws_run(s);
}
