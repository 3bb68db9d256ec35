/* test_http.c - the broker's HTTP/1.1 server as clients really use it: pipelining, chunked
 * bodies, missing lengths, oversized headers and bodies, slow and idle clients, many
 * connections. */
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "bk_harness.h"
#include "fdio.h"
#include "herald_time.h"
#include "tls.h"

static bkh_t H;
static bool exit_hook;

static void cleanup(void)
{
    bkh_cleanup(&H);
}

static void start(const char *const *over)
{
    if (!exit_hook) {
        atexit(cleanup);
        exit_hook = true;
    }
    bkh_init(&H, over);
    ck_assert_msg(bkh_start(&H) == 0, "broker did not start (log %s)", H.logpath);
}

/* Append one request to buf. */
static void put_request(char **buf, size_t *len, const char *method, const char *path,
                        const char *headers, const char *body)
{
    size_t bl = body ? strlen(body) : 0;
    size_t need = *len + 512 + strlen(headers) + bl;
    *buf = realloc(*buf, need);
    int n = snprintf(*buf + *len, need - *len,
                     "%s %s HTTP/1.1\r\nHost: t\r\n%sContent-Length: %zu\r\n\r\n%s", method, path,
                     headers, bl, body ? body : "");
    *len += (size_t)n;
}

static void write_all(int fd, const char *p, size_t n)
{
    ck_assert_msg(fd_write_all(fd, p, n) == 0, "write: %s", strerror(errno));
}

typedef struct {
    int status;
    char body[512];
    bool close;
} resp_t;

/* Read until `want` responses are parsed, the peer closes, or timeout_ms passes. Returns
 * how many were read; *eof tells whether the connection closed. */
static int read_responses(int fd, resp_t *out, int want, int timeout_ms, bool *eof)
{
    static char buf[1 << 20];
    size_t len = 0;
    int got = 0;
    uint64_t end = mono_ns() + (uint64_t)timeout_ms * 1000000ull;
    *eof = false;
    while (got < want) {
        /* parse what is buffered */
        char *eoh;
        while (got < want && len && (eoh = memmem(buf, len, "\r\n\r\n", 4))) {
            char *cl = strcasestr(buf, "content-length:");
            size_t clen = cl && cl < eoh ? strtoul(cl + 15, NULL, 10) : 0;
            size_t total = (size_t)(eoh + 4 - buf) + clen;
            if (len < total) break;
            out[got].status = atoi(buf + 9);
            out[got].close = memmem(buf, (size_t)(eoh - buf), "Connection: close", 17) != NULL;
            snprintf(out[got].body, sizeof out[got].body, "%.*s", (int)clen, eoh + 4);
            got++;
            memmove(buf, buf + total, len - total);
            len -= total;
        }
        if (got == want) break;
        uint64_t now = mono_ns();
        if (now >= end) break;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, (int)((end - now) / 1000000) + 1) <= 0) continue;
        ssize_t r = read(fd, buf + len, sizeof buf - len - 1);
        if (r <= 0) {
            *eof = true;
            break;
        }
        len += (size_t)r;
        buf[len] = '\0';
    }
    return got;
}

/* True when the peer has closed fd (read returns 0) within timeout_ms. */
static bool closed_within(int fd, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    char c[4096];
    uint64_t end = mono_ns() + (uint64_t)timeout_ms * 1000000ull;
    while (mono_ns() < end) {
        if (poll(&p, 1, 100) <= 0) continue;
        ssize_t r = read(fd, c, sizeof c);
        if (r == 0 || (r < 0 && errno == ECONNRESET)) return true;
    }
    return false;
}

static void notice(char *out, size_t cap, const char *user, const char *id)
{
    bkh_notice_json(out, cap, user, 2, id);
}

START_TEST(hundred_pipelined_requests_in_one_write_are_answered_in_order)
{
    start(NULL);
    char *buf = NULL, body[512], id[32];
    size_t len = 0;
    for (int i = 0; i < 100; i++) {
        snprintf(id, sizeof id, "pipe-%d", i);
        notice(body, sizeof body, "pipe", id);
        if (i == 40)
            put_request(&buf, &len, "GET", "/healthz", "", NULL);
        else if (i == 50)
            put_request(&buf, &len, "POST", "/api/publish", "", "{\"message_type\":");
        else
            put_request(&buf, &len, "POST", "/api/publish", "", body);
    }
    int fd = bkh_http_connect(&H);
    write_all(fd, buf, len); /* one write: the broker sees them pipelined */
    free(buf);
    static resp_t r[100];
    bool eof;
    ck_assert_int_eq(read_responses(fd, r, 100, 10000, &eof), 100);
    uint64_t seq = 0;
    for (int i = 0; i < 100; i++) {
        if (i == 40) {
            ck_assert_int_eq(r[i].status, 200);
            ck_assert_ptr_nonnull(strstr(r[i].body, "\"status\":\"ok\""));
            continue;
        }
        if (i == 50) { /* its own error; the connection and the rest go on */
            ck_assert_int_eq(r[i].status, 400);
            ck_assert_ptr_nonnull(strstr(r[i].body, "invalid JSON"));
            ck_assert(!r[i].close);
            continue;
        }
        ck_assert_msg(r[i].status == 200, "response %d: %d %s", i, r[i].status, r[i].body);
        snprintf(id, sizeof id, "\"pipe-%d\"", i);
        ck_assert_msg(strstr(r[i].body, id), "response %d out of order: %s", i, r[i].body);
        uint64_t s = bkh_stat_of(r[i].body, "seq");
        ck_assert_uint_eq(s, seq + 1);
        seq = s;
    }
    ck_assert_uint_eq(seq, 98);
    close(fd);
}
END_TEST

START_TEST(pipelined_requests_without_the_api_key_are_each_answered_401)
{
    const char *over[] = {"broker.api_key=k3y", NULL};
    start(over);
    char *buf = NULL, body[512];
    size_t len = 0;
    notice(body, sizeof body, "auth", "");
    for (int i = 0; i < 10; i++)
        put_request(&buf, &len, "POST", "/api/publish",
                    i == 7 ? "Authorization: apikey wrong\r\n" : "", body);
    put_request(&buf, &len, "POST", "/api/publish", "Authorization: apikey k3y\r\n", body);
    put_request(&buf, &len, "GET", "/api/stats", "", NULL); /* reading needs no key on loopback */
    int fd = bkh_http_connect(&H);
    write_all(fd, buf, len);
    free(buf);
    resp_t r[12];
    bool eof;
    ck_assert_int_eq(read_responses(fd, r, 12, 10000, &eof), 12);
    for (int i = 0; i < 10; i++) {
        ck_assert_int_eq(r[i].status, 401);
        ck_assert_ptr_nonnull(strstr(r[i].body, "unauthorized"));
    }
    ck_assert_int_eq(r[10].status, 200);
    ck_assert_uint_eq(bkh_stat_of(r[10].body, "seq"), 1);
    ck_assert_int_eq(r[11].status, 200);
    ck_assert_uint_eq(bkh_stat_of(r[11].body, "unauthorized"), 10);
    close(fd);
}
END_TEST

START_TEST(chunked_body_is_published)
{
    start(NULL);
    char body[512], req[2048];
    notice(body, sizeof body, "chunky", "ch-1");
    size_t bl = strlen(body);
    int n = snprintf(req, sizeof req,
                     "POST /api/publish HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "%zx\r\n%.*s\r\n%zx\r\n%s\r\n0\r\n\r\n",
                     (size_t)7, 7, body, bl - 7, body + 7);
    int fd = bkh_http_connect(&H);
    write_all(fd, req, (size_t)n);
    resp_t r[1];
    bool eof;
    ck_assert_int_eq(read_responses(fd, r, 1, 5000, &eof), 1);
    ck_assert_msg(r[0].status == 200, "%d %s", r[0].status, r[0].body);
    ck_assert_ptr_nonnull(strstr(r[0].body, "\"ch-1\""));
    close(fd);
}
END_TEST

START_TEST(post_without_a_length_gets_411_and_the_connection_closes)
{
    start(NULL);
    const char req[] = "POST /api/publish HTTP/1.1\r\nHost: t\r\n\r\n{\"message_type\":1}";
    int fd = bkh_http_connect(&H);
    write_all(fd, req, sizeof req - 1);
    resp_t r[1];
    bool eof;
    ck_assert_int_eq(read_responses(fd, r, 1, 5000, &eof), 1);
    ck_assert_int_eq(r[0].status, 411);
    ck_assert(r[0].close);
    ck_assert(closed_within(fd, 3000));
    close(fd);
}
END_TEST

START_TEST(oversized_headers_get_431)
{
    start(NULL);
    size_t big = 70 * 1024;
    char *req = malloc(big + 256);
    int n = snprintf(req, 256, "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Pad: ");
    memset(req + n, 'a', big);
    memcpy(req + n + big, "\r\n\r\n", 4);
    int fd = bkh_http_connect(&H);
    write_all(fd, req, (size_t)n + big + 4);
    free(req);
    resp_t r[1];
    bool eof;
    ck_assert_int_eq(read_responses(fd, r, 1, 5000, &eof), 1);
    ck_assert_int_eq(r[0].status, 431);
    ck_assert(closed_within(fd, 3000));
    close(fd);
}
END_TEST

START_TEST(a_declared_body_over_the_limit_is_refused_before_it_is_sent)
{
    const char *over[] = {"broker.http_body_max=64K", NULL};
    start(over);
    const char req[] = "POST /api/publish HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000\r\n\r\n";
    int fd = bkh_http_connect(&H);
    write_all(fd, req, sizeof req - 1); /* the body never comes: the answer must not wait */
    resp_t r[1];
    bool eof;
    ck_assert_int_eq(read_responses(fd, r, 1, 5000, &eof), 1);
    ck_assert_int_eq(r[0].status, 413);
    ck_assert_ptr_nonnull(strstr(r[0].body, "http_body_max"));
    ck_assert(closed_within(fd, 3000));
    close(fd);
    /* a chunked body that grows past the limit is cut the same way */
    fd = bkh_http_connect(&H);
    const char head[] =
        "POST /api/publish HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n";
    write_all(fd, head, sizeof head - 1);
    static char chunk[40 * 1024 + 16];
    int cl = snprintf(chunk, 16, "%x\r\n", 40 * 1024);
    memset(chunk + cl, '[', 40 * 1024);
    memcpy(chunk + cl + 40 * 1024, "\r\n", 2);
    write_all(fd, chunk, (size_t)cl + 40 * 1024 + 2);
    write_all(fd, chunk, (size_t)cl + 40 * 1024 + 2);
    ck_assert_int_eq(read_responses(fd, r, 1, 5000, &eof), 1);
    ck_assert_int_eq(r[0].status, 413);
    close(fd);
}
END_TEST

START_TEST(a_request_trickled_a_byte_at_a_time_is_cut_with_408)
{
    const char *over[] = {"broker.http_timeout_s=1", NULL};
    start(over);
    const char req[] = "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: 1234567890\r\n\r\n";
    int fd = bkh_http_connect(&H);
    bool cut = false;
    for (size_t i = 0; i < sizeof req - 1 && !cut; i++) {
        if (write(fd, req + i, 1) != 1) {
            cut = true;
            break;
        }
        struct pollfd p = {.fd = fd, .events = POLLIN};
        cut = poll(&p, 1, 250) > 0; /* the broker spoke (408) */
    }
    ck_assert_msg(cut, "the trickled request was never cut");
    resp_t r[1];
    bool eof;
    ck_assert_int_eq(read_responses(fd, r, 1, 3000, &eof), 1);
    ck_assert_int_eq(r[0].status, 408);
    ck_assert(closed_within(fd, 3000));
    close(fd);
    ck_assert_uint_ge(bkh_stat(&H, "timeouts"), 1);
}
END_TEST

START_TEST(an_idle_keep_alive_connection_is_closed_after_http_idle_s)
{
    const char *over[] = {"broker.http_idle_s=1", NULL};
    start(over);
    int fd = bkh_http_connect(&H);
    bkh_http_resp_t hr;
    ck_assert_int_eq(bkh_http(fd, "GET", "/healthz", "", NULL, 0, &hr), 200);
    bkh_http_free(&hr);
    ck_assert(closed_within(fd, 4000));
    close(fd);
}
END_TEST

START_TEST(five_thousand_idle_connections_do_not_stop_publishing)
{
    enum { N = 5000 };
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_max < N + 200)
        TEST_SKIP("RLIMIT_NOFILE hard limit %lu < %d", (unsigned long)rl.rlim_max, N + 200);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    start(NULL);
    static int fds[N];
    for (int i = 0; i < N; i++) {
        fds[i] = bkh_http_connect(&H);
        ck_assert_msg(fds[i] >= 0, "connection %d: %s", i, strerror(errno));
    }
    /* half of them start a request and stop mid-way */
    for (int i = 0; i < N; i += 2)
        write_all(fds[i], "POST /api/publish HTTP/1.1\r\nContent-Length: 10\r\n\r\n{", 50);
    char body[512];
    notice(body, sizeof body, "busy", "");
    uint64_t t0 = mono_ns();
    int fd = bkh_http_connect(&H);
    for (int i = 0; i < 20; i++) {
        bkh_http_resp_t hr;
        ck_assert_int_eq(bkh_http(fd, "POST", "/api/publish", "", body, strlen(body), &hr), 200);
        ck_assert_uint_eq(bkh_stat_of(hr.body, "seq"), (uint64_t)i + 1);
        bkh_http_free(&hr);
    }
    ck_assert_msg(mono_ns() - t0 < 5000000000ull, "publishing stalled behind idle connections");
    ck_assert_uint_ge(bkh_stat(&H, "connections_open"), N);
    close(fd);
    for (int i = 0; i < N; i++)
        close(fds[i]);
}
END_TEST

/* With broker.tls_cert the API is HTTPS: verified GETs, pipelined publishes over one TLS
 * connection answered in order, and a plain-text client gets nothing. */
START_TEST(the_api_serves_https_with_broker_tls_cert)
{
    char dir[] = "/tmp/herald-test-tls-XXXXXX", cert[200], key[200], o1[260], o2[260];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    ck_assert_int_eq(tls_make_cert(dir, "broker", cert, sizeof cert, key, sizeof key), 0);
    snprintf(o1, sizeof o1, "broker.tls_cert=%s", cert);
    snprintf(o2, sizeof o2, "broker.tls_key=%s", key);
    const char *over[] = {o1, o2, NULL};
    start(over);
    char body[4096];
    ck_assert_int_eq(tls_http_get("127.0.0.1", H.http_port, cert, "/healthz", body, sizeof body),
                     200);
    ck_assert_ptr_nonnull(strstr(body, "\"ok\""));
    /* pipelined publishes over one TLS connection */
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    ck_assert_int_eq(SSL_CTX_load_verify_locations(ctx, cert, NULL), 1);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    int fd = bkh_http_connect(&H);
    SSL *ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    SSL_set1_host(ssl, "127.0.0.1");
    ck_assert_int_eq(SSL_connect(ssl), 1);
    char *buf = NULL, n1[512];
    size_t len = 0;
    for (int i = 0; i < 5; i++) {
        char id[24];
        snprintf(id, sizeof id, "tls-%d", i);
        notice(n1, sizeof n1, "tls", id);
        put_request(&buf, &len, "POST", "/api/publish", "", n1);
    }
    ck_assert_int_eq(SSL_write(ssl, buf, (int)len), (int)len);
    free(buf);
    static char in[65536];
    size_t got = 0;
    int answers = 0;
    while (answers < 5 && got < sizeof in - 1) {
        int r = SSL_read(ssl, in + got, (int)(sizeof in - 1 - got));
        ck_assert_int_gt(r, 0);
        got += (size_t)r;
        in[got] = '\0';
        answers = 0;
        for (const char *p = in; (p = strstr(p, "HTTP/1.1 200")); p++)
            answers++;
    }
    for (int i = 0; i < 5; i++) {
        char id[24];
        snprintf(id, sizeof id, "\"tls-%d\"", i);
        const char *at = strstr(in, id);
        ck_assert_msg(at != NULL, "no answer for %s", id);
        if (i) ck_assert(at > strstr(in, "\"tls-0\"")); /* in request order */
    }
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    close(fd);
    /* plain HTTP on the TLS port: no HTTP answer */
    fd = bkh_http_connect(&H);
    write_all(fd, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n", 35);
    resp_t r[1];
    bool eof;
    ck_assert_int_eq(read_responses(fd, r, 1, 2000, &eof), 0);
    close(fd);
    unlink(cert);
    unlink(key);
    rmdir(dir);
}
END_TEST

static Suite *http_suite(void)
{
    Suite *s = suite_create("http");
    TCase *t = tcase_create("process");
    tcase_set_timeout(t, 120);
    tcase_add_checked_fixture(t, NULL, cleanup);
    tcase_add_test(t, hundred_pipelined_requests_in_one_write_are_answered_in_order);
    tcase_add_test(t, pipelined_requests_without_the_api_key_are_each_answered_401);
    tcase_add_test(t, chunked_body_is_published);
    tcase_add_test(t, post_without_a_length_gets_411_and_the_connection_closes);
    tcase_add_test(t, oversized_headers_get_431);
    tcase_add_test(t, a_declared_body_over_the_limit_is_refused_before_it_is_sent);
    tcase_add_test(t, a_request_trickled_a_byte_at_a_time_is_cut_with_408);
    tcase_add_test(t, an_idle_keep_alive_connection_is_closed_after_http_idle_s);
    tcase_add_test(t, five_thousand_idle_connections_do_not_stop_publishing);
    tcase_add_test(t, the_api_serves_https_with_broker_tls_cert);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return procs_run_suite(http_suite());
}
