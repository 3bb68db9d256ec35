/* test_http_client.c - the tools' blocking HTTP client against canned server responses. */
#include <check.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check_run.h"
#include "http_client.h"

static int lfd = -1;
static unsigned port;
static pid_t server = -1;

/* Serve one connection: read the request head, write reply (len bytes), close. A NULL
 * reply accepts and never answers (for timeouts). */
static void serve_once(const char *reply, size_t len)
{
    lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    ck_assert_int_eq(listen(lfd, 1), 0);
    getsockname(lfd, (struct sockaddr *)&sa, &sl);
    port = ntohs(sa.sin_port);
    server = fork();
    ck_assert_int_ge(server, 0);
    if (server == 0) {
        int c = accept(lfd, NULL, NULL);
        char req[4096];
        size_t n = 0;
        while (n < sizeof req - 1) {
            ssize_t k = read(c, req + n, sizeof req - 1 - n);
            if (k <= 0) break;
            n += (size_t)k;
            req[n] = '\0';
            char *end = strstr(req, "\r\n\r\n"), *cl = strstr(req, "Content-Length: ");
            if (end && (size_t)(end + 4 - req) + (cl ? strtoul(cl + 16, NULL, 10) : 0) <= n) break;
        }
        if (!reply) pause();
        if (write(c, reply, len) < 0) _exit(1);
        close(c);
        _exit(0);
    }
}

static void teardown(void)
{
    if (server > 0) {
        kill(server, SIGKILL);
        waitpid(server, NULL, 0);
    }
    if (lfd >= 0) close(lfd);
    server = lfd = -1;
}

#define REPLY(s) serve_once(s, sizeof(s) - 1)

START_TEST(http_reads_a_body_by_content_length)
{
    http_response_t res;
    herald_error_t err = {0};
    REPLY("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n"
          "{\"a\":12345}");
    ck_assert_int_eq(http_request("127.0.0.1", (uint16_t)port, "GET", "/api/stats", NULL, NULL, 0,
                                  2000, &res, &err),
                     0);
    ck_assert_int_eq(res.status, 200);
    ck_assert_str_eq(res.body, "{\"a\":12345}");
    ck_assert_uint_eq(res.body_len, 11);
    http_response_free(&res);
}
END_TEST

START_TEST(http_decodes_a_chunked_body)
{
    http_response_t res;
    herald_error_t err = {0};
    REPLY("HTTP/1.1 200 OK\r\ntransfer-encoding: "
          "chunked\r\n\r\n4\r\n{\"b\"\r\n3\r\n:1}\r\n0\r\n\r\n");
    ck_assert_int_eq(
        http_request("127.0.0.1", (uint16_t)port, "GET", "/stats", NULL, NULL, 0, 2000, &res, &err),
        0);
    ck_assert_int_eq(res.status, 200);
    ck_assert_str_eq(res.body, "{\"b\":1}");
    http_response_free(&res);
}
END_TEST

START_TEST(http_reads_until_close_without_content_length)
{
    http_response_t res;
    herald_error_t err = {0};
    REPLY("HTTP/1.0 404 Not Found\r\n\r\nno such thing");
    ck_assert_int_eq(http_request("127.0.0.1", (uint16_t)port, "POST", "/x", "X-A: b\r\n", "{}", 2,
                                  2000, &res, &err),
                     0);
    ck_assert_int_eq(res.status, 404);
    ck_assert_str_eq(res.body, "no such thing");
    http_response_free(&res);
}
END_TEST

START_TEST(http_rejects_a_response_that_is_not_http)
{
    http_response_t res;
    herald_error_t err = {0};
    REPLY("SSH-2.0-OpenSSH\r\n\r\n");
    ck_assert_int_eq(
        http_request("127.0.0.1", (uint16_t)port, "GET", "/", NULL, NULL, 0, 2000, &res, &err),
        -HERR_MALFORMED);
    ck_assert_ptr_nonnull(strstr(err.message, "not an HTTP"));
}
END_TEST

START_TEST(http_times_out_on_a_silent_server)
{
    http_response_t res;
    herald_error_t err = {0};
    serve_once(NULL, 0);
    ck_assert_int_eq(
        http_request("127.0.0.1", (uint16_t)port, "GET", "/", NULL, NULL, 0, 200, &res, &err),
        -HERR_IO);
    ck_assert_ptr_nonnull(strstr(err.message, "timed out"));
}
END_TEST

START_TEST(http_names_the_address_it_could_not_reach)
{
    http_response_t res;
    herald_error_t err = {0};
    int fd = socket(AF_INET, SOCK_STREAM, 0); /* bound, not listening: refuses */
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    bind(fd, (struct sockaddr *)&sa, sizeof sa);
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    char where[32];
    snprintf(where, sizeof where, "127.0.0.1:%u", ntohs(sa.sin_port));
    ck_assert_int_eq(
        http_request("127.0.0.1", ntohs(sa.sin_port), "GET", "/", NULL, NULL, 0, 2000, &res, &err),
        -HERR_IO);
    ck_assert_ptr_nonnull(strstr(err.message, where));
    ck_assert_ptr_nonnull(strstr(err.message, "refused"));
    close(fd);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("http_client");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_test(tc, http_reads_a_body_by_content_length);
    tcase_add_test(tc, http_decodes_a_chunked_body);
    tcase_add_test(tc, http_reads_until_close_without_content_length);
    tcase_add_test(tc, http_rejects_a_response_that_is_not_http);
    tcase_add_test(tc, http_times_out_on_a_silent_server);
    tcase_add_test(tc, http_names_the_address_it_could_not_reach);
    suite_add_tcase(s, tc);
    return check_run_suite(s);
}
