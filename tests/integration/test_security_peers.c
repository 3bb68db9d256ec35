/* test_security_peers.c - protocol.md 12 against real processes: the broker's sockets refuse
 * peers of another uid (nobody, 65534) but let the runtime group publish; native TCP and
 * HTTP publishing need the api key; exposed listeners need one; failed handshakes cannot
 * flood the log. Cases that act as nobody need root: without it they are SKIP. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "bk_harness.h"
#include "frame.h"
#include "gwsys.h"
#include "proto.h"
#include "sec_util.h"

static bkh_t H;

static void cleanup(void)
{
    bkh_cleanup(&H);
}

/* --- finding 3: the control socket --- */

START_TEST(control_and_broker_sockets_refuse_a_peer_of_another_uid)
{
    NEED_ROOT();
    bkh_init(&H, NULL);
    ck_assert_int_eq(bkh_start(&H), 0);
    /* as if the directory and sockets had been left open to everyone */
    ck_assert_int_eq(chmod(H.env.dir, 0755), 0);
    ck_assert_int_eq(chmod(H.ctrl, 0666), 0);
    ck_assert_int_eq(chmod(H.sock, 0666), 0);

    xchg_t *x = xchg_new();
    snprintf(x->path, sizeof x->path, "%s", H.ctrl);
    char hello[128];
    snprintf(hello, sizeof hello, "{\"op\":\"hello\",\"gw\":0,\"pid\":1,\"version\":%u}",
             PROTO_VERSION);
    xchg_add(x, hello);
    ck_assert_int_eq(sec_as_nobody(xchg_run, x), 0);
    ck_assert_int_eq(x->connect_errno, 0);
    ck_assert_msg(x->closed && !xchg_in_has(x, "hello_ok"), "nobody was answered on control.sock");
    ck_assert_uint_eq(bkh_stat(&H, "ctrl_refused"), 1);
    ck_assert_uint_eq(bkh_stat(&H, "active_gateways"), 0);

    char pub[512];
    bkh_notice_json(pub, sizeof pub, "victim", 1, "forged-1");
    memset(x, 0, sizeof *x);
    snprintf(x->path, sizeof x->path, "%s", H.sock);
    xchg_add(x, pub);
    ck_assert_int_eq(sec_as_nobody(xchg_run, x), 0);
    ck_assert_msg(x->closed && !xchg_in_has(x, "seq"), "nobody could publish on broker.sock");
    ck_assert_uint_eq(bkh_stat(&H, "native_refused"), 1);
    ck_assert_uint_eq(bkh_stat(&H, "messages_accepted"), 0);
    ck_assert(sec_file_contains(H.logpath, "refused a connection from uid 65534"));

    int fd = bkh_http_connect(&H);
    bkh_http_resp_t hr;
    ck_assert_int_eq(bkh_http(fd, "GET", "/metrics", "", NULL, 0, &hr), 200);
    ck_assert_ptr_nonnull(strstr(hr.body, "herald_broker_ctrl_refused_total 1"));
    ck_assert_ptr_nonnull(strstr(hr.body, "herald_broker_native_refused_total 1"));
    bkh_http_free(&hr);
    close(fd);

    /* our own uid still gets in */
    bkh_gw_t g = {0};
    ck_assert_int_eq(bkh_gw_attach(&g, &H, 0), 0);
    bkh_gw_free(&g);
    munmap(x, sizeof *x);
}
END_TEST

START_TEST(runtime_group_members_may_publish_but_not_reach_control)
{
    NEED_ROOT();
    struct group *gr = getgrgid(NOBODY);
    if (!gr) TEST_SKIP("no group 65534 on this machine");
    const char *over[] = {"runtime.group=65534", NULL};
    bkh_init(&H, over);
    ck_assert_int_eq(bkh_start(&H), 0);
    struct stat st;
    ck_assert_int_eq(stat(H.env.dir, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0710);
    ck_assert_uint_eq(st.st_gid, NOBODY);
    ck_assert_int_eq(stat(H.sock, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0660);
    ck_assert_uint_eq(st.st_gid, NOBODY);
    ck_assert_int_eq(stat(H.ctrl, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0600);

    xchg_t *x = xchg_new();
    char pub[512];
    bkh_notice_json(pub, sizeof pub, "g1", 1, "group-1");
    snprintf(x->path, sizeof x->path, "%s", H.sock);
    xchg_add(x, pub);
    ck_assert_int_eq(sec_as_nobody(xchg_run, x), 0); /* nobody is in group 65534 */
    ck_assert_int_eq(x->connect_errno, 0);
    ck_assert_msg(xchg_in_has(x, "seq"), "a group member could not publish");
    memset(x, 0, sizeof *x);
    snprintf(x->path, sizeof x->path, "%s", H.ctrl);
    xchg_add(x, "{\"op\":\"hello\",\"gw\":0,\"pid\":1,\"version\":1}");
    ck_assert_int_eq(sec_as_nobody(xchg_run, x), 0);
    ck_assert_int_eq(x->connect_errno, EACCES);
    munmap(x, sizeof *x);
}
END_TEST

/* --- finding 4: ingress auth --- */

/* Framed publishes on native TCP without the key, with a wrong one, or a malformed auth
 * frame are answered "unauthorized" and the connection closed; none is accepted. */
static void native_tcp_refuses_publishes_without_the_key(uint16_t tcp, const char *pub)
{
    xchg_t *x = xchg_new();
    x->port = tcp;
    xchg_add(x, pub); /* no auth frame */
    xchg_run(x);
    ck_assert_msg(xchg_in_has(x, "unauthorized") && x->closed, "publish without the key answered");

    memset(x, 0, sizeof *x);
    x->port = tcp;
    xchg_add(x, "{\"auth\":\"s3cr3t-kez\"}");
    xchg_add(x, pub);
    xchg_run(x);
    ck_assert(xchg_in_has(x, "unauthorized") && x->closed);
    ck_assert(xchg_in_has(x, "wrong api key"));

    memset(x, 0, sizeof *x);
    x->port = tcp;
    xchg_add(x, "{\"auth\":12}");
    xchg_run(x);
    ck_assert(xchg_in_has(x, "unauthorized") && x->closed);
    ck_assert_uint_eq(bkh_stat(&H, "unauthorized"), 3);
    ck_assert_uint_eq(bkh_stat(&H, "messages_accepted"), 0);
    munmap(x, sizeof *x);
}

/* libherald with the key authenticates once per connection, a wrong key is refused by
 * name; the unix socket needs no key (its mode and the peer check guard it). */
static void libherald_authenticates_on_tcp_only(uint16_t tcp, const char *pub)
{
    char addr[64];
    snprintf(addr, sizeof addr, "tcp:127.0.0.1:%u", tcp);
    herald_error_t err;
    herald_connect_opts_t opts = {.api_key = "s3cr3t-key"};
    herald_client_t *c = herald_connect_opts(addr, &opts, &err);
    ck_assert_msg(c != NULL, "%s", err.message);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    bkh_msgpack(&sb, pub);
    herald_result_t res;
    ck_assert_int_eq(herald_publish(c, (const uint8_t *)sb.data, sb.size, &res, &err), 0);
    ck_assert(res.ok);
    ck_assert_uint_eq(res.seq, 1);
    ck_assert_int_eq(herald_reconnect(c, &err), 0); /* authenticates again */
    ck_assert_int_eq(herald_publish(c, (const uint8_t *)sb.data, sb.size, &res, &err), 0);
    ck_assert_uint_eq(res.seq, 2);
    herald_close(c);
    opts.api_key = "wrong";
    ck_assert_ptr_null(herald_connect_opts(addr, &opts, &err));
    ck_assert_int_eq(err.code, HERR_UNAUTHORIZED);
    ck_assert_ptr_nonnull(strstr(err.message, "wrong api key"));

    /* the unix socket needs no key (its mode and the peer check guard it) */
    c = herald_connect(H.sock, &err);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(herald_publish(c, (const uint8_t *)sb.data, sb.size, &res, &err), 0);
    ck_assert_uint_eq(res.seq, 3);
    herald_close(c);
    msgpack_sbuffer_destroy(&sb);
}

/* HTTP: publishing needs the key; stats, metrics and route do not. */
static void http_publish_needs_the_key(const char *pub)
{
    int fd = bkh_http_connect(&H);
    bkh_http_resp_t hr;
    ck_assert_int_eq(bkh_http(fd, "POST", "/api/publish", "", pub, strlen(pub), &hr), 401);
    bkh_http_free(&hr);
    ck_assert_int_eq(bkh_http(fd, "POST", "/api/publish", "Authorization: apikey s3cr3t-kex\r\n",
                              pub, strlen(pub), &hr),
                     401);
    bkh_http_free(&hr);
    ck_assert_int_eq(bkh_http(fd, "POST", "/api/publish", "Authorization: apikey s3cr3t-key\r\n",
                              pub, strlen(pub), &hr),
                     200);
    bkh_http_free(&hr);
    ck_assert_int_eq(bkh_http(fd, "GET", "/api/stats", "", NULL, 0, &hr), 200);
    bkh_http_free(&hr);
    ck_assert_int_eq(bkh_http(fd, "GET", "/metrics", "", NULL, 0, &hr), 200);
    bkh_http_free(&hr);
    ck_assert_int_eq(bkh_http(fd, "GET", "/api/route?user=u1", "", NULL, 0, &hr), 200);
    bkh_http_free(&hr);
    close(fd);
}

START_TEST(native_tcp_takes_an_auth_frame_first_when_an_api_key_is_set)
{
    uint16_t tcp = procs_free_ports(1);
    char tcpo[64];
    snprintf(tcpo, sizeof tcpo, "broker.tcp=127.0.0.1:%u", tcp);
    const char *over[] = {"broker.api_key=s3cr3t-key", tcpo, NULL};
    bkh_init(&H, over);
    ck_assert_int_eq(bkh_start(&H), 0);
    ck_assert_int_eq(procs_wait_tcp("127.0.0.1", tcp, 5000), 0);
    char pub[512];
    bkh_notice_json(pub, sizeof pub, "u1", 1, "");
    native_tcp_refuses_publishes_without_the_key(tcp, pub);
    libherald_authenticates_on_tcp_only(tcp, pub);
    http_publish_needs_the_key(pub);
}
END_TEST

START_TEST(exposed_listeners_without_an_api_key_are_refused_at_start)
{
    bkh_init(&H, NULL);
    char tcpo[64], httpo[64];
    snprintf(tcpo, sizeof tcpo, "broker.tcp=0.0.0.0:%u", procs_free_ports(1));
    const char *tcp_over[] = {tcpo, NULL};
    int st = sec_broker_exit_status(&H, tcp_over);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 1, "broker status %d", st);
    ck_assert(sec_file_contains(H.logpath, "broker.tcp 0.0.0.0"));
    ck_assert(sec_file_contains(H.logpath, "broker.api_key"));
    snprintf(httpo, sizeof httpo, "broker.http=0.0.0.0:%u", procs_free_ports(1));
    const char *http_over[] = {httpo, NULL};
    st = sec_broker_exit_status(&H, http_over);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 1, "broker status %d", st);
    ck_assert(sec_file_contains(H.logpath, "broker.http 0.0.0.0"));
    /* the supervisor says so before starting anything */
    char sup[512], log[400];
    procs_build_path("tools/supervisor/herald-supervisor", sup, sizeof sup);
    snprintf(log, sizeof log, "%s/sup.log", H.env.dir);
    char *argv[] = {sup, (char *)"-c", H.env.config, (char *)"-o", httpo, NULL};
    st = procs_reap(procs_spawn(sup, argv, log), 10000);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 1, "supervisor status %d", st);
    ck_assert(sec_file_contains(log, "broker.api_key"));
}
END_TEST

/* A memory bound the fixed tables alone would take half of: refused at start, naming both
 * keys, rather than a broker that refuses every publish as over capacity. */
START_TEST(a_memory_bound_below_the_fixed_tables_is_refused_at_start)
{
    bkh_init(&H, NULL);
    const char *over[] = {"broker.max_memory=16M", "broker.dedup_window=2000000", NULL};
    int st = sec_broker_exit_status(&H, over);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 1, "broker status %d", st);
    ck_assert(sec_file_contains(H.logpath, "broker.max_memory"));
    ck_assert(sec_file_contains(H.logpath, "broker.dedup_window"));
}
END_TEST

/* --- finding 9: log flooding by failed handshakes --- */

START_TEST(failed_handshakes_are_all_counted_but_logged_rate_limited)
{
    gws_t s;
    gws_start(&s, 1, NULL);
    char url[128], log[400];
    snprintf(url, sizeof url, "ws://127.0.0.1:%u/ws", s.ws);
    enum { N = 300 };
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < N; i++) {
        wsc_t *c = NULL;
        ck_assert_int_eq(wsc_connect(&c, url, "not-a-token", NULL, 5000), 401);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    /* the gateway logs at most 5 a second: the bound follows how long the loop took (a
     * loaded machine makes it slower, not the limit looser) */
    int seconds = (int)(t1.tv_sec - t0.tv_sec) + 2;
    ck_assert_uint_eq(
        gws_stat(&s, 0, "auth_failures_missing") + gws_stat(&s, 0, "auth_failures_bad_signature") +
            gws_stat(&s, 0, "auth_failures_expired") + gws_stat(&s, 0, "auth_failures_invalid"),
        N);
    snprintf(log, sizeof log, "%s/gateway0.log", s.env.dir);
    int lines = sec_count_in_file(log, "handshake refused");
    ck_assert_msg(lines <= 5 * seconds && lines < N, "%d of %d failed handshakes logged in %d s",
                  lines, N, seconds);
    ck_assert_int_ge(lines, 1);
    gws_stop(&s);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("security_peers");
    TCase *t = tcase_create("security_peers");
    tcase_set_timeout(t, 240);
    tcase_add_checked_fixture(t, NULL, cleanup);
    tcase_add_test(t, control_and_broker_sockets_refuse_a_peer_of_another_uid);
    tcase_add_test(t, runtime_group_members_may_publish_but_not_reach_control);
    tcase_add_test(t, native_tcp_takes_an_auth_frame_first_when_an_api_key_is_set);
    tcase_add_test(t, exposed_listeners_without_an_api_key_are_refused_at_start);
    tcase_add_test(t, a_memory_bound_below_the_fixed_tables_is_refused_at_start);
    tcase_add_test(t, failed_handshakes_are_all_counted_but_logged_rate_limited);
    suite_add_tcase(s, t);
    return procs_run_suite(s);
}
