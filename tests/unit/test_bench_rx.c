/* test_bench_rx.c - herald-bench's lean receiver against a scripted fake gateway on loopback:
 * handshake checks, welcome, ping answered with a masked pong, close answered and counted. */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check_run.h"
#include "bench_rx.h"
#include "bench_wsframe.h"
#include "herald_time.h"

typedef struct {
    int lfd;
    bool bad_accept; /* answer with a wrong Sec-WebSocket-Accept */
    /* what the fake gateway saw (read after joining) */
    char request[4096];
    uint8_t pong[200];
    size_t pong_len;
    uint8_t close_reply[16];
    size_t close_len;
} fake_gw_t;

static int read_until(int fd, char *buf, size_t cap, const char *end)
{
    size_t n = 0;
    while (n + 1 < cap) {
        ssize_t k = recv(fd, buf + n, 1, 0);
        if (k <= 0) return -1;
        buf[++n] = '\0';
        if (strstr(buf, end)) return (int)n;
    }
    return -1;
}

/* Read one whole masked client frame into out; returns its size or -1. */
static ssize_t read_client_frame(int fd, uint8_t *out, size_t cap)
{
    size_t n = 0;
    while (n < 2 || n < (size_t)(6 + (out[1] & 0x7f))) {
        if (n >= cap) return -1;
        ssize_t k = recv(fd, out + n, 1, 0);
        if (k <= 0) return -1;
        n++;
    }
    return (ssize_t)n;
}

static void *fake_gw_run(void *arg)
{
    fake_gw_t *g = arg;
    int fd = accept(g->lfd, NULL, NULL);
    char accept_key[BWSF_ACCEPT_LEN + 1], resp[512], key[64] = "";
    static const char welcome[] = "{\"type\":\"welcome\",\"session_id\":\"s1\"}";
    uint8_t frame[200];
    if (fd < 0 || read_until(fd, g->request, sizeof g->request, "\r\n\r\n") < 0) goto out;
    const char *k = strstr(g->request, "Sec-WebSocket-Key: ");
    if (k) sscanf(k + 19, "%63[^\r]", key);
    bwsf_accept(key, accept_key);
    if (g->bad_accept) accept_key[0] ^= 1;
    int n = snprintf(resp, sizeof resp,
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nsec-websocket-accept: %s\r\n"
                     "Sec-WebSocket-Protocol: herald.json\r\n\r\n",
                     accept_key);
    /* the welcome in the same segment as the response head, as a gateway may send it */
    memcpy(resp + n, "\x81", 1);
    resp[n + 1] = (char)(sizeof welcome - 1);
    memcpy(resp + n + 2, welcome, sizeof welcome - 1);
    if (send(fd, resp, (size_t)n + 2 + sizeof welcome - 1, MSG_NOSIGNAL) < 0 || g->bad_accept)
        goto out;
    usleep(100000);
    memcpy(frame, "\x89\x04ping", 6);
    if (send(fd, frame, 6, MSG_NOSIGNAL) != 6) goto out;
    ssize_t got = read_client_frame(fd, g->pong, sizeof g->pong);
    if (got < 0) goto out;
    g->pong_len = (size_t)got;
    memcpy(frame, "\x88\x02\x03\xe8", 4); /* close 1000 */
    if (send(fd, frame, 4, MSG_NOSIGNAL) != 4) goto out;
    got = read_client_frame(fd, g->close_reply, sizeof g->close_reply);
    if (got > 0) g->close_len = (size_t)got;
out:
    if (fd >= 0) close(fd);
    return NULL;
}

static volatile sig_atomic_t no_stop;

/* A run of one session of one user against the fake gateway g (listening). */
static void run_init(bench_run_t *r, fake_gw_t *g, char (*user_ids)[24])
{
    struct sockaddr_in a;
    socklen_t alen = sizeof a;
    memset(r, 0, sizeof *r);
    r->sessions = r->users = r->gateways = r->src_addrs = 1;
    r->messages = 1;
    r->stop = &no_stop;
    snprintf(r->cfg.auth_secret, sizeof r->cfg.auth_secret, "test-secret-%d", (int)getpid());
    snprintf(r->cfg.gateway_listen.host, sizeof r->cfg.gateway_listen.host, "127.0.0.1");
    ck_assert_int_eq(getsockname(g->lfd, (struct sockaddr *)&a, &alen), 0);
    r->cfg.gateway_listen.port = ntohs(a.sin_port);
    snprintf(user_ids[0], 24, "u1");
    r->user_ids = user_ids;
}

static int fake_listen(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(listen(fd, 4), 0);
    return fd;
}

START_TEST(rx_handshakes_answers_ping_with_masked_pong_and_counts_a_close)
{
    static fake_gw_t g;
    static char user_ids[1][24];
    bench_run_t r;
    pthread_t th;
    memset(&g, 0, sizeof g);
    g.lfd = fake_listen();
    run_init(&r, &g, user_ids);
    ck_assert_int_eq(pthread_create(&th, NULL, fake_gw_run, &g), 0);
    brx_pool_t *p = brx_create(&r);
    ck_assert_ptr_nonnull(p);
    int rc = brx_connect_all(p, 10);
    brx_receive(p, mono_ns() + 2000000000ull); /* until the fake gateway closed */
    unsigned dropped = brx_sessions_dropped(p);
    brx_destroy(p);
    pthread_join(th, NULL);
    close(g.lfd);
    ck_assert_int_eq(rc, 0);
    ck_assert_ptr_nonnull(strstr(g.request, "GET /ws?token="));
    ck_assert_ptr_nonnull(strstr(g.request, "\r\nSec-WebSocket-Protocol: herald.json\r\n"));
    ck_assert_ptr_null(strstr(g.request, "Sec-WebSocket-Extensions"));
    ck_assert_uint_eq(g.pong_len, 10);
    ck_assert_uint_eq(g.pong[0], 0x8a);
    ck_assert_uint_eq(g.pong[1], 0x80 | 4);
    for (int i = 0; i < 4; i++)
        ck_assert_uint_eq(g.pong[6 + i] ^ g.pong[2 + i], (uint8_t) "ping"[i]);
    ck_assert_uint_eq(g.close_len, 8);
    ck_assert_uint_eq(g.close_reply[0], 0x88);
    ck_assert_uint_eq(g.close_reply[6] ^ g.close_reply[2], 0x03);
    ck_assert_uint_eq(g.close_reply[7] ^ g.close_reply[3], 0xe8);
    ck_assert_uint_eq(dropped, 1);
    ck_assert_uint_eq(r.malformed + r.other_frames, 0);
}
END_TEST

START_TEST(rx_refuses_a_wrong_accept_key)
{
    static fake_gw_t g;
    static char user_ids[1][24];
    bench_run_t r;
    pthread_t th;
    memset(&g, 0, sizeof g);
    g.lfd = fake_listen();
    g.bad_accept = true;
    run_init(&r, &g, user_ids);
    ck_assert_int_eq(pthread_create(&th, NULL, fake_gw_run, &g), 0);
    brx_pool_t *p = brx_create(&r);
    ck_assert_ptr_nonnull(p);
    int rc = brx_connect_all(p, 10);
    brx_destroy(p);
    pthread_join(th, NULL);
    close(g.lfd);
    ck_assert_int_eq(rc, -1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("bench_rx");
    TCase *tc = tcase_create("bench_rx");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, rx_handshakes_answers_ping_with_masked_pong_and_counts_a_close);
    tcase_add_test(tc, rx_refuses_a_wrong_accept_key);
    suite_add_tcase(s, tc);
    return check_run_suite(s);
}
