/* test_config.c - the INI configuration: protocol.md 8 keys, their defaults and what each accepts
 * (refusals are in test_config_errors.c). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check_run.h"
#include "config.h"
#include "config_text.h"
#include "log.h"
#include "rtdir.h"
#include "skip.h"

START_TEST(config_defaults_equal_spec_8)
{
    herald_config_t c;
    config_defaults(&c);
    char rt[256];
    rtdir_default(rt, sizeof rt);
    ck_assert_str_eq(c.runtime_dir, rt);
    if (geteuid() == 0) ck_assert_str_eq(c.runtime_dir, "/run/herald");
    ck_assert_str_eq(c.shm_prefix, "herald");
    ck_assert_str_eq(c.runtime_group, "");
    ck_assert_uint_eq(c.max_memory, 1ull << 30);
    ck_assert_str_eq(c.broker_http.host, "127.0.0.1");
    ck_assert_uint_eq(c.broker_http.port, 7480);
    ck_assert_uint_eq(c.broker_tcp.port, 0);
    ck_assert_str_eq(c.broker_api_key, "");
    ck_assert_uint_eq(c.dedup_window, 10000);
    ck_assert_uint_eq(c.queue_capacity[0], 10000);
    ck_assert_uint_eq(c.queue_capacity[1], 50000);
    ck_assert_uint_eq(c.queue_capacity[2], 100000);
    ck_assert_uint_eq(c.queue_capacity[3], 50000);
    ck_assert_uint_eq(c.history_size, 1000);
    ck_assert_uint_eq(c.history_age_s, 300);
    ck_assert_uint_eq(c.gateway_count, 2);
    ck_assert_str_eq(c.gateway_listen.host, "127.0.0.1");
    ck_assert_uint_eq(c.gateway_listen.port, 7500);
    ck_assert_uint_eq(c.ring_bytes, 16u << 20);
    ck_assert_uint_eq(c.batch_size, 100);
    ck_assert_uint_eq(c.flush_ms[0], 5);
    ck_assert_uint_eq(c.flush_ms[1], 100);
    ck_assert_uint_eq(c.flush_ms[2], 1000);
    ck_assert_uint_eq(c.ping_interval_s, 30);
    ck_assert_uint_eq(c.session_timeout_s, 300);
    ck_assert_uint_eq(c.max_pending_bytes, 4u << 20);
    ck_assert_uint_eq(c.max_sessions_per_user, 16);
    ck_assert_uint_eq(c.max_connections, 0);
    ck_assert_uint_eq(c.resumes_per_minute, 30);
    ck_assert_str_eq(c.gateway_tls_cert, "");
    ck_assert_str_eq(c.gateway_tls_key, "");
    ck_assert_str_eq(c.broker_tls_cert, "");
    ck_assert_str_eq(c.broker_tls_key, "");
    ck_assert_str_eq(c.auth_secret, "");
    ck_assert_str_eq(c.web_dir, "");
    ck_assert_str_ne(config_web_dir(&c), "");
    ck_assert_str_eq(c.auth_previous_secrets, "");
    ck_assert(c.auth_require_exp);
    ck_assert_uint_eq(c.auth_leeway_s, 5);
    ck_assert_str_eq(c.auth_audience, "");
    ck_assert_str_eq(c.auth_issuer, "");
    ck_assert(!c.auth_allow_dev_secret);
    ck_assert_int_eq(c.log_level, LOG_INFO);
    ck_assert_uint_eq(c.hang_s, 5);
    ck_assert_str_eq(c.cluster_nats, "");
    ck_assert_uint_eq(c.cluster_node_id, 1);
    ck_assert_uint_eq(c.cluster_partitions, 16);
    ck_assert_uint_eq(c.cluster_replicas, 3);
    ck_assert_str_eq(c.path, "");
}
END_TEST

START_TEST(config_deploy_ini_loads_and_equals_the_defaults_but_the_secret)
{
    char path[600];
    config_text_deploy_ini(path, sizeof path);
    herald_config_t c, d;
    herald_error_t err;
    ck_assert_msg(config_load(&c, path, &err) == 0, "%s", err.message);
    ck_assert_str_eq(c.path, path);
    ck_assert_ptr_nonnull(strstr(c.auth_secret, "development"));
    config_defaults(&d);
    memcpy(d.auth_secret, c.auth_secret, sizeof d.auth_secret);
    memcpy(d.path, c.path, sizeof d.path);
    ck_assert_mem_eq(&c, &d, sizeof c);
}
END_TEST

static const char *const every_key[] = {
    "runtime.dir",
    "runtime.shm_prefix",
    "runtime.group",
    "runtime.web_dir",
    "broker.http",
    "broker.tcp",
    "broker.api_key",
    "broker.dedup_window",
    "broker.queue_capacity",
    "broker.history_size",
    "broker.history_age_s",
    "broker.max_memory",
    "gateway.count",
    "gateway.listen",
    "gateway.ring_bytes",
    "gateway.batch_size",
    "gateway.flush_ms",
    "gateway.ping_interval_s",
    "gateway.session_timeout_s",
    "gateway.max_pending_bytes",
    "gateway.max_sessions_per_user",
    "gateway.max_connections",
    "gateway.resumes_per_minute",
    "gateway.conflate_bytes",
    "delivery.conflate",
    "delivery.ack_required",
    "delivery.ack_timeout_ms",
    "delivery.ack_max_attempts",
    "gateway.tls_cert",
    "gateway.tls_key",
    "broker.tls_cert",
    "broker.tls_key",
    "auth.secret",
    "auth.previous_secrets",
    "auth.require_exp",
    "auth.leeway_s",
    "auth.audience",
    "auth.issuer",
    "auth.allow_dev_secret",
    "log.level",
    "supervisor.hang_s",
    "cluster.nats",
    "cluster.node_id",
    "cluster.partitions",
    "cluster.replicas",
};

/* protocol.md 8: "every key documented there with its default". */
START_TEST(config_deploy_ini_documents_every_key_in_its_section)
{
    char path[600];
    config_text_deploy_ini(path, sizeof path);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    static char text[16384];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    for (size_t i = 0; i < sizeof every_key / sizeof every_key[0]; i++) {
        char section[32], line[64];
        const char *dot = strchr(every_key[i], '.');
        snprintf(section, sizeof section, "\n[%.*s]\n", (int)(dot - every_key[i]), every_key[i]);
        snprintf(line, sizeof line, "\n%s =", dot + 1);
        const char *sec = strstr(text, section);
        ck_assert_msg(sec != NULL, "no %s", section);
        const char *key = strstr(sec, line);
        ck_assert_msg(key != NULL, "%s not in deploy/herald.ini", every_key[i]);
        const char *next_sec = strstr(sec + 1, "\n[");
        ck_assert_msg(!next_sec || key < next_sec, "%s outside its section", every_key[i]);
        const char *prev = key - 1;
        while (prev > text && prev[-1] != '\n')
            prev--;
        ck_assert_msg(*prev == ';', "%s has no comment line above it", every_key[i]);
    }
}
END_TEST

static const char every_key_ini[] =
    "[runtime]\n"
    "dir = /run/herald-test\n"
    "shm_prefix = herald_t-1.x\n"
    "group = herald\n"
    "web_dir = /srv/herald web\n"
    "[broker]\n"
    "http = 0.0.0.0:8080\n"
    "tcp = 127.0.0.1:7481\n"
    "api_key = k-123\n"
    "dedup_window = 500\n"
    "queue_capacity = 1, 2 ,3,4\n"
    "history_size = 7\n"
    "history_age_s = 60\n"
    "max_memory = 64M\n"
    "[gateway]\n"
    "count = 4\n"
    "listen = [::1]:9000\n"
    "ring_bytes = 1G\n"
    "batch_size = 10\n"
    "flush_ms = 0,50,2000\n"
    "ping_interval_s = 5\n"
    "session_timeout_s = 60\n"
    "max_pending_bytes = 512K\n"
    "max_sessions_per_user = 3\n"
    "max_connections = 1000\n"
    "resumes_per_minute = 7\n"
    "conflate_bytes = 64K\n"
    "tls_cert = /etc/herald/gw.pem\n"
    "tls_key = /etc/herald/gw.key\n"
    "[broker]\n"
    "tls_cert = /etc/herald/bk.pem\n"
    "tls_key = /etc/herald/bk.key\n"
    "[auth]\n"
    "secret = abc;def\n"
    "previous_secrets = old1, old2\n"
    "require_exp = false\n"
    "leeway_s = 30\n"
    "audience = herald\n"
    "issuer = https://auth.example\n"
    "allow_dev_secret = yes\n"
    "[log]\n"
    "level = debug ; inline comment\n"
    "[supervisor]\n"
    "hang_s = 0\n"
    "[cluster]\n"
    "nats = nats://10.0.0.1:4222, tls://nats-2.example:4222,127.0.0.1:4223\n"
    "node_id = 3\n"
    "partitions = 64\n"
    "replicas = 5\n"
    "[delivery]\n"
    "conflate = position_update , account_update\n"
    "ack_required =\n"
    "ack_timeout_ms = 250\n"
    "ack_max_attempts = 9\n";

/* every_key_ini's [runtime] and [broker] values. */
static void every_key_check_runtime_and_broker(const herald_config_t *c)
{
    ck_assert_str_eq(c->runtime_dir, "/run/herald-test");
    ck_assert_str_eq(c->shm_prefix, "herald_t-1.x");
    ck_assert_str_eq(c->broker_http.host, "0.0.0.0");
    ck_assert_uint_eq(c->broker_http.port, 8080);
    ck_assert_str_eq(c->broker_tcp.host, "127.0.0.1");
    ck_assert_uint_eq(c->broker_tcp.port, 7481);
    ck_assert_str_eq(c->broker_api_key, "k-123");
    ck_assert_uint_eq(c->dedup_window, 500);
    for (unsigned i = 0; i < 4; i++)
        ck_assert_uint_eq(c->queue_capacity[i], i + 1);
    ck_assert_uint_eq(c->history_size, 7);
    ck_assert_uint_eq(c->history_age_s, 60);
    ck_assert_uint_eq(c->max_memory, 64u << 20);
    ck_assert_str_eq(c->runtime_group, "herald");
    ck_assert_str_eq(c->broker_tls_cert, "/etc/herald/bk.pem");
    ck_assert_str_eq(c->broker_tls_key, "/etc/herald/bk.key");
    ck_assert_str_eq(c->web_dir, "/srv/herald web");
    ck_assert_str_eq(config_web_dir(c), "/srv/herald web");
}

/* every_key_ini's [gateway] values. */
static void every_key_check_gateway(const herald_config_t *c)
{
    ck_assert_uint_eq(c->gateway_count, 4);
    ck_assert_str_eq(c->gateway_listen.host, "::1");
    ck_assert_uint_eq(c->gateway_listen.port, 9000);
    ck_assert_uint_eq(c->ring_bytes, 1ull << 30);
    ck_assert_uint_eq(c->batch_size, 10);
    ck_assert_uint_eq(c->flush_ms[0], 0);
    ck_assert_uint_eq(c->flush_ms[1], 50);
    ck_assert_uint_eq(c->flush_ms[2], 2000);
    ck_assert_uint_eq(c->ping_interval_s, 5);
    ck_assert_uint_eq(c->session_timeout_s, 60);
    ck_assert_uint_eq(c->max_pending_bytes, 512 * 1024);
    ck_assert_uint_eq(c->max_sessions_per_user, 3);
    ck_assert_uint_eq(c->max_connections, 1000);
    ck_assert_uint_eq(c->resumes_per_minute, 7);
    ck_assert_str_eq(c->gateway_tls_cert, "/etc/herald/gw.pem");
    ck_assert_str_eq(c->gateway_tls_key, "/etc/herald/gw.key");
    ck_assert_uint_eq(c->conflate_bytes, 64 * 1024);
    ck_assert_uint_eq(config_conflate_bytes(c), 64 * 1024);
}

/* every_key_ini's [auth], [log], [supervisor], [cluster] and [delivery] values. */
static void every_key_check_the_rest(const herald_config_t *c)
{
    ck_assert_str_eq(c->auth_secret, "abc;def");
    ck_assert_str_eq(c->auth_previous_secrets, "old1, old2");
    ck_assert(!c->auth_require_exp);
    ck_assert_uint_eq(c->auth_leeway_s, 30);
    ck_assert_str_eq(c->auth_audience, "herald");
    ck_assert_str_eq(c->auth_issuer, "https://auth.example");
    ck_assert(c->auth_allow_dev_secret);
    ck_assert_int_eq(c->log_level, LOG_DEBUG);
    ck_assert_uint_eq(c->hang_s, 0);
    ck_assert_str_eq(c->cluster_nats,
                     "nats://10.0.0.1:4222, tls://nats-2.example:4222,127.0.0.1:4223");
    ck_assert_uint_eq(c->cluster_node_id, 3);
    ck_assert_uint_eq(c->cluster_partitions, 64);
    ck_assert_uint_eq(c->cluster_replicas, 5);
    ck_assert_str_eq(c->conflate_types, "position_update , account_update");
    ck_assert_str_eq(c->ack_required_types, "");
    ck_assert_uint_eq(c->ack_timeout_ms, 250);
    ck_assert_uint_eq(c->ack_max_attempts, 9);
}

START_TEST(config_parses_every_key)
{
    herald_config_t c;
    herald_error_t err;
    ck_assert_msg(config_text_load(&c, every_key_ini, &err, NULL) == 0, "%s", err.message);
    every_key_check_runtime_and_broker(&c);
    every_key_check_gateway(&c);
    every_key_check_the_rest(&c);
    ck_assert_int_eq(config_text_load(&c, "[cluster]\nnats = off\n" SECRET_LINE, &err, NULL), 0);
    ck_assert_str_eq(c.cluster_nats, "");
}
END_TEST

/* protocol.md 14: the type lists take names (which ones exist is model_delivery_masks' check), the
 * conflation threshold defaults to a quarter of the output bound. */
START_TEST(config_delivery_keys_take_name_lists_and_bounds)
{
    herald_config_t c;
    herald_error_t err;
    config_defaults(&c);
    ck_assert_str_eq(c.conflate_types, "position_update,position_profit,account_update");
    ck_assert_str_eq(c.ack_required_types, "margin_call,risk_alert");
    ck_assert_uint_eq(c.ack_timeout_ms, 2000);
    ck_assert_uint_eq(c.ack_max_attempts, 5);
    ck_assert_uint_eq(config_conflate_bytes(&c), c.max_pending_bytes / 4);
    const char *bad[] = {"delivery.conflate=position update",
                         "delivery.conflate=a,,b",
                         "delivery.conflate=a,",
                         "delivery.ack_required=Margin_Call",
                         "delivery.ack_timeout_ms=5",
                         "delivery.ack_max_attempts=0",
                         "delivery.ack_max_attempts=101",
                         "gateway.conflate_bytes=2G"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char key[64];
        const char *eq = strchr(bad[i], '=');
        snprintf(key, sizeof key, "%.*s", (int)(eq - bad[i]), bad[i]);
        ck_assert_msg(config_set(&c, key, eq + 1, &err) < 0, "%s accepted", bad[i]);
        ck_assert_str_eq(err.field, key);
    }
    ck_assert_int_eq(config_set(&c, "delivery.conflate", "", &err), 0);
    ck_assert_str_eq(c.conflate_types, "");
    ck_assert_int_eq(config_set(&c, "delivery.ack_required", " margin_call ,risk_alert", &err), 0);
}
END_TEST

START_TEST(config_accepts_comments_blanks_indentation_crlf_and_tcp_off)
{
    const char *text = "\xEF\xBB\xBF# a comment\r\n"
                       "\r\n"
                       "[broker]\r\n"
                       "   tcp = off\r\n"
                       "\tapi_key =\r\n"
                       "[gateway]\r\n"
                       "count: 3\r\n" SECRET_LINE;
    herald_config_t c;
    herald_error_t err;
    ck_assert_msg(config_text_load(&c, text, &err, NULL) == 0, "%s", err.message);
    ck_assert_uint_eq(c.broker_tcp.port, 0);
    ck_assert_str_eq(c.broker_api_key, "");
    ck_assert_uint_eq(c.gateway_count, 3);
    ck_assert_str_eq(c.auth_secret, "s3cret-for-tests");
    ck_assert_int_eq(config_text_load(&c, "[broker]\ntcp =\n" SECRET_LINE, &err, NULL), 0);
    ck_assert_uint_eq(c.broker_tcp.port, 0);
}
END_TEST

START_TEST(config_parse_size_takes_k_m_g_and_plain_bytes)
{
    uint64_t v;
    ck_assert_int_eq(config_parse_size("16M", &v), 0);
    ck_assert_uint_eq(v, 16ull << 20);
    ck_assert_int_eq(config_parse_size("4M", &v), 0);
    ck_assert_uint_eq(v, 4ull << 20);
    ck_assert_int_eq(config_parse_size("512K", &v), 0);
    ck_assert_uint_eq(v, 512ull << 10);
    ck_assert_int_eq(config_parse_size("1G", &v), 0);
    ck_assert_uint_eq(v, 1ull << 30);
    ck_assert_int_eq(config_parse_size("4096", &v), 0);
    ck_assert_uint_eq(v, 4096);
    ck_assert_int_eq(config_parse_size("2k", &v), 0);
    ck_assert_uint_eq(v, 2048);
    const char *bad[] = {"",
                         "M",
                         "16MB",
                         "1.5M",
                         "-1",
                         " 16M",
                         "16M ",
                         "16T",
                         "99999999999999999999",
                         "17179869184G"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(config_parse_size(bad[i], &v) == -1, "accepted \"%s\"", bad[i]);
}
END_TEST

START_TEST(config_parse_host_port_splits_host_and_port)
{
    host_port_t hp;
    ck_assert_int_eq(config_parse_host_port("127.0.0.1:7480", &hp), 0);
    ck_assert_str_eq(hp.host, "127.0.0.1");
    ck_assert_uint_eq(hp.port, 7480);
    ck_assert_int_eq(config_parse_host_port("localhost:1", &hp), 0);
    ck_assert_str_eq(hp.host, "localhost");
    ck_assert_uint_eq(hp.port, 1);
    ck_assert_int_eq(config_parse_host_port("[::1]:65535", &hp), 0);
    ck_assert_str_eq(hp.host, "::1");
    ck_assert_uint_eq(hp.port, 65535);
    const char *bad[] = {
        "",           "127.0.0.1",
        "127.0.0.1:", ":80",
        "h:0",        "h:65536",
        "h:80x",      "h:-1",
        "::1:80",     "[]:80",
        "a b:80",     "hhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhh:80"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(config_parse_host_port(bad[i], &hp) == -1, "accepted \"%s\"", bad[i]);
}
END_TEST

START_TEST(config_set_overrides_one_key_and_leaves_cfg_alone_on_error)
{
    herald_config_t c, before;
    herald_error_t err;
    config_defaults(&c);
    ck_assert_int_eq(config_set(&c, "gateway.count", "5", &err), 0);
    ck_assert_uint_eq(c.gateway_count, 5);
    ck_assert_int_eq(config_set(&c, "auth.secret", "from-the-command-line", &err), 0);
    ck_assert_str_eq(c.auth_secret, "from-the-command-line");
    ck_assert_int_eq(config_set(&c, "log.level", "error", &err), 0);
    ck_assert_int_eq(c.log_level, LOG_ERROR);
    before = c;
    ck_assert_int_eq(config_set(&c, "gateway.count", "zero", &err), -HERR_BAD_VALUE);
    ck_assert_str_eq(err.field, "gateway.count");
    ck_assert_ptr_nonnull(strstr(err.message, "command line"));
    ck_assert_int_eq(config_set(&c, "gateway.counts", "1", &err), -HERR_BAD_VALUE);
    ck_assert_str_eq(err.field, "gateway.counts");
    ck_assert_int_eq(config_set(&c, "count", "1", &err), -HERR_BAD_VALUE);
    ck_assert_int_eq(config_set(&c, "auth.secret", "", &err), -HERR_BAD_VALUE);
    ck_assert_str_eq(err.field, "auth.secret");
    ck_assert_int_eq(config_set(&c, "gateway.listen", "127.0.0.1:65534", &err), -HERR_BAD_VALUE);
    ck_assert_str_eq(err.field, "gateway.listen");
    char longsecret[300];
    memset(longsecret, 's', 299);
    longsecret[299] = '\0';
    ck_assert_int_eq(config_set(&c, "auth.secret", longsecret, &err), -HERR_BAD_VALUE);
    ck_assert_ptr_null(strstr(err.message, "sss"));
    ck_assert_mem_eq(&c, &before, sizeof c);
}
END_TEST

START_TEST(config_default_path_prefers_explicit_then_env)
{
    unsetenv("HERALD_CONFIG");
    ck_assert_str_eq(config_default_path(NULL), "deploy/herald.ini");
    ck_assert_str_eq(config_default_path(""), "deploy/herald.ini");
    setenv("HERALD_CONFIG", "/etc/herald.ini", 1);
    ck_assert_str_eq(config_default_path(NULL), "/etc/herald.ini");
    ck_assert_str_eq(config_default_path("x.ini"), "x.ini");
    unsetenv("HERALD_CONFIG");
}
END_TEST

/* protocol.md 12: the default is private, per user; empty in the file means that default. */
START_TEST(config_runtime_dir_defaults_to_a_private_per_user_dir)
{
    herald_config_t c;
    herald_error_t err;
    ck_assert_msg(config_text_load(&c, "[runtime]\ndir =\n" SECRET_LINE, &err, NULL) == 0, "%s",
                  err.message);
    char rt[256];
    rtdir_default(rt, sizeof rt);
    ck_assert_str_eq(c.runtime_dir, rt);
    if (geteuid() != 0) {
        TEST_SKIP("the non-root defaults are checked as another uid, which needs root");
    }
    ck_assert_str_eq(rt, "/run/herald");
    /* as uid 65534, with and without XDG_RUNTIME_DIR */
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    pid_t pid = fork();
    if (pid == 0) {
        char a[256], b[256], out[520];
        if (setresuid(65534, 65534, 65534) < 0) _exit(2);
        setenv("XDG_RUNTIME_DIR", "/run/user/65534", 1);
        rtdir_default(a, sizeof a);
        unsetenv("XDG_RUNTIME_DIR");
        rtdir_default(b, sizeof b);
        int n = snprintf(out, sizeof out, "%s|%s", a, b);
        _exit(write(p[1], out, (size_t)n) == n ? 0 : 3);
    }
    close(p[1]);
    char got[520] = "";
    ssize_t n = read(p[0], got, sizeof got - 1);
    close(p[0]);
    int st;
    waitpid(pid, &st, 0);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    got[n > 0 ? n : 0] = '\0';
    ck_assert_str_eq(got, "/run/user/65534/herald|/tmp/herald-65534");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("config");
    tcase_add_test(tc, config_defaults_equal_spec_8);
    tcase_add_test(tc, config_deploy_ini_loads_and_equals_the_defaults_but_the_secret);
    tcase_add_test(tc, config_deploy_ini_documents_every_key_in_its_section);
    tcase_add_test(tc, config_parses_every_key);
    tcase_add_test(tc, config_delivery_keys_take_name_lists_and_bounds);
    tcase_add_test(tc, config_accepts_comments_blanks_indentation_crlf_and_tcp_off);
    tcase_add_test(tc, config_parse_size_takes_k_m_g_and_plain_bytes);
    tcase_add_test(tc, config_parse_host_port_splits_host_and_port);
    tcase_add_test(tc, config_set_overrides_one_key_and_leaves_cfg_alone_on_error);
    tcase_add_test(tc, config_default_path_prefers_explicit_then_env);
    tcase_add_test(tc, config_runtime_dir_defaults_to_a_private_per_user_dir);
    suite_add_tcase(s, tc);
    return check_run_suite(s);
}
