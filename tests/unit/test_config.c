/* test_config.c - the INI configuration: SPEC 8 keys and defaults, strict errors. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check_run.h"
#include "config.h"
#include "log.h"
#include "rtdir.h"
#include "skip.h"

#define SECRET_LINE "[auth]\nsecret = s3cret-for-tests\n"

/* Load INI text from an anonymous memory file (nothing to clean up). The path in messages
 * is /proc/self/fd/N; it is copied to path_out when given. */
static int load_text(herald_config_t *cfg, const char *text, herald_error_t *err, char *path_out)
{
    int fd = memfd_create("herald-test-config", MFD_CLOEXEC);
    ck_assert_int_ge(fd, 0);
    size_t len = strlen(text);
    ck_assert_int_eq(write(fd, text, len), (ssize_t)len);
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    if (path_out) strcpy(path_out, path);
    memset(err, 0, sizeof *err);
    int rc = config_load(cfg, path, err);
    close(fd);
    return rc;
}

static void deploy_ini_path(char *buf, size_t n)
{
    const char *root = getenv("HERALD_SOURCE_ROOT");
    ck_assert_msg(root != NULL, "HERALD_SOURCE_ROOT is not set (run through meson test)");
    snprintf(buf, n, "%s/deploy/herald.ini", root);
}

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
    deploy_ini_path(path, sizeof path);
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

/* SPEC 8: "every key documented there with its default". */
START_TEST(config_deploy_ini_documents_every_key_in_its_section)
{
    char path[600];
    deploy_ini_path(path, sizeof path);
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

START_TEST(config_parses_every_key)
{
    const char *text = "[runtime]\n"
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
    herald_config_t c;
    herald_error_t err;
    ck_assert_msg(load_text(&c, text, &err, NULL) == 0, "%s", err.message);
    ck_assert_str_eq(c.runtime_dir, "/run/herald-test");
    ck_assert_str_eq(c.shm_prefix, "herald_t-1.x");
    ck_assert_str_eq(c.broker_http.host, "0.0.0.0");
    ck_assert_uint_eq(c.broker_http.port, 8080);
    ck_assert_str_eq(c.broker_tcp.host, "127.0.0.1");
    ck_assert_uint_eq(c.broker_tcp.port, 7481);
    ck_assert_str_eq(c.broker_api_key, "k-123");
    ck_assert_uint_eq(c.dedup_window, 500);
    for (unsigned i = 0; i < 4; i++)
        ck_assert_uint_eq(c.queue_capacity[i], i + 1);
    ck_assert_uint_eq(c.history_size, 7);
    ck_assert_uint_eq(c.history_age_s, 60);
    ck_assert_uint_eq(c.max_memory, 64u << 20);
    ck_assert_str_eq(c.runtime_group, "herald");
    ck_assert_uint_eq(c.gateway_count, 4);
    ck_assert_str_eq(c.gateway_listen.host, "::1");
    ck_assert_uint_eq(c.gateway_listen.port, 9000);
    ck_assert_uint_eq(c.ring_bytes, 1ull << 30);
    ck_assert_uint_eq(c.batch_size, 10);
    ck_assert_uint_eq(c.flush_ms[0], 0);
    ck_assert_uint_eq(c.flush_ms[1], 50);
    ck_assert_uint_eq(c.flush_ms[2], 2000);
    ck_assert_uint_eq(c.ping_interval_s, 5);
    ck_assert_uint_eq(c.session_timeout_s, 60);
    ck_assert_uint_eq(c.max_pending_bytes, 512 * 1024);
    ck_assert_uint_eq(c.max_sessions_per_user, 3);
    ck_assert_uint_eq(c.max_connections, 1000);
    ck_assert_uint_eq(c.resumes_per_minute, 7);
    ck_assert_str_eq(c.gateway_tls_cert, "/etc/herald/gw.pem");
    ck_assert_str_eq(c.gateway_tls_key, "/etc/herald/gw.key");
    ck_assert_str_eq(c.broker_tls_cert, "/etc/herald/bk.pem");
    ck_assert_str_eq(c.broker_tls_key, "/etc/herald/bk.key");
    ck_assert_str_eq(c.auth_secret, "abc;def");
    ck_assert_str_eq(c.web_dir, "/srv/herald web");
    ck_assert_str_eq(config_web_dir(&c), "/srv/herald web");
    ck_assert_str_eq(c.auth_previous_secrets, "old1, old2");
    ck_assert(!c.auth_require_exp);
    ck_assert_uint_eq(c.auth_leeway_s, 30);
    ck_assert_str_eq(c.auth_audience, "herald");
    ck_assert_str_eq(c.auth_issuer, "https://auth.example");
    ck_assert(c.auth_allow_dev_secret);
    ck_assert_int_eq(c.log_level, LOG_DEBUG);
    ck_assert_uint_eq(c.hang_s, 0);
    ck_assert_str_eq(c.cluster_nats,
                     "nats://10.0.0.1:4222, tls://nats-2.example:4222,127.0.0.1:4223");
    ck_assert_uint_eq(c.cluster_node_id, 3);
    ck_assert_uint_eq(c.cluster_partitions, 64);
    ck_assert_uint_eq(c.cluster_replicas, 5);
    ck_assert_uint_eq(c.conflate_bytes, 64 * 1024);
    ck_assert_uint_eq(config_conflate_bytes(&c), 64 * 1024);
    ck_assert_str_eq(c.conflate_types, "position_update , account_update");
    ck_assert_str_eq(c.ack_required_types, "");
    ck_assert_uint_eq(c.ack_timeout_ms, 250);
    ck_assert_uint_eq(c.ack_max_attempts, 9);
    ck_assert_int_eq(load_text(&c, "[cluster]\nnats = off\n" SECRET_LINE, &err, NULL), 0);
    ck_assert_str_eq(c.cluster_nats, "");
}
END_TEST

/* SPEC 14: the type lists take names (which ones exist is model_delivery_masks' check), the
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
    ck_assert_msg(load_text(&c, text, &err, NULL) == 0, "%s", err.message);
    ck_assert_uint_eq(c.broker_tcp.port, 0);
    ck_assert_str_eq(c.broker_api_key, "");
    ck_assert_uint_eq(c.gateway_count, 3);
    ck_assert_str_eq(c.auth_secret, "s3cret-for-tests");
    ck_assert_int_eq(load_text(&c, "[broker]\ntcp =\n" SECRET_LINE, &err, NULL), 0);
    ck_assert_uint_eq(c.broker_tcp.port, 0);
}
END_TEST

static const struct {
    const char *section, *key, *value;
} bad_values[] = {
    {"runtime", "dir",
     "/tmp/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"},
    {"runtime", "shm_prefix", "a/b"},
    {"runtime", "shm_prefix", ""},
    {"broker", "http", "127.0.0.1"},
    {"broker", "http", "127.0.0.1:0"},
    {"broker", "http", "127.0.0.1:65536"},
    {"broker", "http", ":7480"},
    {"broker", "http", "localhost:http"},
    {"broker", "http", "::1:7480"},
    {"broker", "http", "off"},
    {"broker", "tcp", "127.0.0.1:99999"},
    {"broker", "tcp", "on"},
    {"broker", "api_key",
     "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"
     "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"},
    {"broker", "dedup_window", "0"},
    {"broker", "dedup_window", "-1"},
    {"broker", "dedup_window", "10k"},
    {"broker", "dedup_window", "99999999999999999999999"},
    {"broker", "queue_capacity", "1,2,3"},
    {"broker", "queue_capacity", "1,2,3,4,5"},
    {"broker", "queue_capacity", "1,,3,4"},
    {"broker", "queue_capacity", "1,2,3,0"},
    {"broker", "queue_capacity", "1,2,3,4,"},
    {"broker", "history_size", "0"},
    {"broker", "history_age_s", "x"},
    {"broker", "max_memory", "1M"},
    {"broker", "max_memory", "2048G"},
    {"broker", "max_memory", "1T"},
    {"runtime", "group", "gggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggg"},
    {"gateway", "count", "0"},
    {"gateway", "count", "257"},
    {"gateway", "listen", "localhost"},
    {"gateway", "ring_bytes", "15M"},
    {"gateway", "ring_bytes", "2K"},
    {"gateway", "ring_bytes", "2G"},
    {"gateway", "ring_bytes", "16MB"},
    {"gateway", "ring_bytes", "M"},
    {"gateway", "batch_size", "0"},
    {"gateway", "flush_ms", "5,100"},
    {"gateway", "flush_ms", "5,100,1000,1"},
    {"gateway", "flush_ms", "5,100,60001"},
    {"gateway", "ping_interval_s", "0"},
    {"gateway", "session_timeout_s", "1.5"},
    {"gateway", "max_pending_bytes", "1K"},
    {"gateway", "max_pending_bytes", "4X"},
    {"gateway", "max_sessions_per_user", "0"},
    {"gateway", "max_connections", "-1"},
    {"gateway", "resumes_per_minute", "0"},
    {"auth", "require_exp", "maybe"},
    {"auth", "leeway_s", "3601"},
    {"auth", "allow_dev_secret", "2"},
    {"auth", "previous_secrets", "a,,b"},
    {"auth", "previous_secrets", " , "},
    {"log", "level", "verbose"},
    {"log", "level", "INFO"},
    {"supervisor", "hang_s", "3601"},
    {"supervisor", "hang_s", "-1"},
    {"supervisor", "hang_s", "5s"},
    {"auth", "allow_dev_secret", "maybe"},
    {"cluster", "nats", "nats://10.0.0.1"},
    {"cluster", "nats", "nats://10.0.0.1:4222,"},
    {"cluster", "nats", "nats://a:4222,,nats://b:4222"},
    {"cluster", "nats", "http://10.0.0.1:4222"},
    {"cluster", "nats", "nats://10.0.0.1:4222/path"},
    {"cluster", "nats", "nats://10.0.0.1:70000"},
    {"cluster", "nats", "on"},
    {"cluster", "node_id", "0"},
    {"cluster", "node_id", "65536"},
    {"cluster", "partitions", "0"},
    {"cluster", "partitions", "1025"},
    {"cluster", "replicas", "0"},
    {"cluster", "replicas", "6"},
};

START_TEST(config_rejects_each_bad_value_naming_key_line_and_file)
{
    char text[512], path[64], field[72], at[96];
    herald_config_t c;
    herald_error_t err;
    for (size_t i = 0; i < sizeof bad_values / sizeof bad_values[0]; i++) {
        snprintf(text, sizeof text, "; test\n\n# line 3\n[%s]\n%s = %s\n" SECRET_LINE,
                 bad_values[i].section, bad_values[i].key, bad_values[i].value);
        int rc = load_text(&c, text, &err, path);
        snprintf(field, sizeof field, "%s.%s", bad_values[i].section, bad_values[i].key);
        snprintf(at, sizeof at, "%s:5: ", path);
        ck_assert_msg(rc == -HERR_BAD_VALUE, "%s = \"%s\" accepted", field, bad_values[i].value);
        ck_assert_int_eq(err.code, HERR_BAD_VALUE);
        ck_assert_str_eq(err.field, field);
        ck_assert_msg(strncmp(err.message, at, strlen(at)) == 0, "message: %s", err.message);
        ck_assert_msg(strstr(err.message, "expected") != NULL, "message: %s", err.message);
        ck_assert_msg(strstr(err.message, field) != NULL, "message: %s", err.message);
    }
}
END_TEST

START_TEST(config_never_echoes_secrets_in_errors)
{
    char text[1024], big[200];
    herald_config_t c;
    herald_error_t err;
    memset(big, 'k', 150);
    big[150] = '\0';
    snprintf(text, sizeof text, "[broker]\napi_key = %s\n" SECRET_LINE, big);
    ck_assert_int_eq(load_text(&c, text, &err, NULL), -HERR_BAD_VALUE);
    ck_assert_ptr_null(strstr(err.message, "kkkk"));
    /* A NATS server list may carry credentials. */
    ck_assert_int_eq(
        load_text(&c, "[cluster]\nnats = nats://herald:pw-x1@h:4222\n" SECRET_LINE, &err, NULL), 0);
    ck_assert_str_eq(c.cluster_nats, "nats://herald:pw-x1@h:4222");
    ck_assert_int_eq(
        load_text(&c, "[cluster]\nnats = nats://herald:pw-x1@h:0\n" SECRET_LINE, &err, NULL),
        -HERR_BAD_VALUE);
    ck_assert_ptr_null(strstr(err.message, "pw-x1"));
    snprintf(text, sizeof text, SECRET_LINE "previous_secrets = kkkkkk,,kkkk\n");
    ck_assert_int_eq(load_text(&c, text, &err, NULL), -HERR_BAD_VALUE);
    ck_assert_ptr_null(strstr(err.message, "kkkk"));
}
END_TEST

START_TEST(config_knows_the_development_secret_and_pairs_tls_files)
{
    herald_config_t c;
    herald_error_t err;
    config_defaults(&c);
    strcpy(c.auth_secret, "mine");
    ck_assert(!config_uses_dev_secret(&c));
    strcpy(c.auth_previous_secrets, "a, " HERALD_DEV_SECRET " ,b");
    ck_assert(config_uses_dev_secret(&c));
    strcpy(c.auth_previous_secrets, "x" HERALD_DEV_SECRET);
    ck_assert(!config_uses_dev_secret(&c));
    strcpy(c.auth_secret, HERALD_DEV_SECRET);
    ck_assert(config_uses_dev_secret(&c));
    /* deploy/herald.ini ships the development secret */
    char path[600];
    deploy_ini_path(path, sizeof path);
    ck_assert_int_eq(config_load(&c, path, &err), 0);
    ck_assert(config_uses_dev_secret(&c));
    ck_assert(!c.auth_allow_dev_secret);
    /* tls_cert without tls_key (or the reverse) is refused once the overrides are in */
    ck_assert_int_eq(config_set(&c, "gateway.tls_cert", "/c.pem", &err), 0);
    ck_assert_int_eq(config_check_pairs(&c, &err), -HERR_BAD_VALUE);
    ck_assert_str_eq(err.field, "gateway.tls_key");
    ck_assert_int_eq(config_set(&c, "gateway.tls_key", "/k.pem", &err), 0);
    ck_assert_int_eq(config_check_pairs(&c, &err), 0);
    ck_assert_int_eq(config_set(&c, "broker.tls_key", "/k.pem", &err), 0);
    ck_assert_int_eq(config_check_pairs(&c, &err), -HERR_BAD_VALUE);
    ck_assert_str_eq(err.field, "broker.tls_key");
}
END_TEST

static void assert_load_fails(const char *text, const char *field, int line, herr_t code)
{
    char path[64], at[96];
    herald_config_t c;
    herald_error_t err;
    int rc = load_text(&c, text, &err, path);
    ck_assert_msg(rc == -(int)code, "accepted or wrong code %d for: %s", rc, text);
    ck_assert_str_eq(err.field, field);
    if (line > 0) {
        snprintf(at, sizeof at, "%s:%d: ", path, line);
        ck_assert_msg(strncmp(err.message, at, strlen(at)) == 0, "message: %s", err.message);
    } else {
        ck_assert_ptr_nonnull(strstr(err.message, path));
    }
}

START_TEST(config_rejects_unknown_keys_and_sections)
{
    assert_load_fails("[broker]\nhttp = 127.0.0.1:1\nhttpp = x\n" SECRET_LINE, "broker.httpp", 3,
                      HERR_BAD_VALUE);
    assert_load_fails("\n[brokr]\nhttp = 127.0.0.1:1\n" SECRET_LINE, "brokr", 2, HERR_BAD_VALUE);
    assert_load_fails(SECRET_LINE "[extra]\n", "extra", 3, HERR_BAD_VALUE);
    assert_load_fails("level = info\n" SECRET_LINE, "level", 1, HERR_BAD_VALUE);
    assert_load_fails(SECRET_LINE "[log]\nLevel = info\n", "log.Level", 4, HERR_BAD_VALUE);
}
END_TEST

START_TEST(config_rejects_malformed_duplicate_and_overlong_lines)
{
    assert_load_fails("[log]\nlevel = info\njust some words\n" SECRET_LINE, "", 3, HERR_BAD_VALUE);
    assert_load_fails("[log\nlevel = info\n" SECRET_LINE, "", 1, HERR_BAD_VALUE);
    assert_load_fails("[log]\nlevel = info\n\nlevel = warn\n" SECRET_LINE, "log.level", 4,
                      HERR_BAD_VALUE);
    char text[600];
    snprintf(text, sizeof text, SECRET_LINE "[broker]\napi_key = %0250d\n", 7);
    assert_load_fails(text, "", 4, HERR_BAD_VALUE);
}
END_TEST

START_TEST(config_requires_auth_secret)
{
    assert_load_fails("[log]\nlevel = warn\n", "auth.secret", 0, HERR_MISSING_FIELD);
    assert_load_fails("[auth]\nsecret =\n", "auth.secret", 0, HERR_MISSING_FIELD);
    assert_load_fails("", "auth.secret", 0, HERR_MISSING_FIELD);
}
END_TEST

START_TEST(config_rejects_gateway_ports_past_65535_or_clashing)
{
    assert_load_fails("[gateway]\nlisten = 127.0.0.1:65535\n" SECRET_LINE, "gateway.listen", 0,
                      HERR_BAD_VALUE);
    assert_load_fails("[broker]\nhttp = 127.0.0.1:7501\n" SECRET_LINE, "broker.http", 0,
                      HERR_BAD_VALUE);
    assert_load_fails("[broker]\ntcp = 0.0.0.0:7480\n" SECRET_LINE, "broker.tcp", 0,
                      HERR_BAD_VALUE);
    herald_config_t c;
    herald_error_t err;
    ck_assert_int_eq(load_text(&c, "[gateway]\nlisten = 127.0.0.1:65534\n" SECRET_LINE, &err, NULL),
                     0);
    ck_assert_int_eq(load_text(&c, "[broker]\nhttp = 10.0.0.1:7501\n" SECRET_LINE, &err, NULL), 0);
}
END_TEST

START_TEST(config_missing_file_is_an_io_error)
{
    herald_config_t c;
    herald_error_t err;
    ck_assert_int_eq(config_load(&c, "/nonexistent/herald.ini", &err), -HERR_IO);
    ck_assert_str_eq(err.field, "/nonexistent/herald.ini");
    ck_assert_ptr_nonnull(strstr(err.message, "/nonexistent/herald.ini"));
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

/* SPEC 12: the default is private, per user; empty in the file means that default. */
START_TEST(config_runtime_dir_defaults_to_a_private_per_user_dir)
{
    herald_config_t c;
    herald_error_t err;
    ck_assert_msg(load_text(&c, "[runtime]\ndir =\n" SECRET_LINE, &err, NULL) == 0, "%s",
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

/* SPEC 12: a listener other hosts can reach needs the api key. */
START_TEST(config_non_loopback_broker_listener_needs_an_api_key)
{
    herald_config_t c;
    herald_error_t err;
    config_defaults(&c);
    ck_assert_int_eq(config_check_exposure(&c, &err), 0);
    ck_assert_int_eq(config_set(&c, "broker.tcp", "127.0.0.2:7481", &err), 0);
    ck_assert_int_eq(config_check_exposure(&c, &err), 0);
    ck_assert_int_eq(config_set(&c, "broker.tcp", "0.0.0.0:7481", &err), 0);
    ck_assert_int_eq(config_check_exposure(&c, &err), -HERR_BAD_VALUE);
    ck_assert_str_eq(err.field, "broker.api_key");
    ck_assert_ptr_nonnull(strstr(err.message, "broker.tcp 0.0.0.0:7481"));
    ck_assert_int_eq(config_set(&c, "broker.api_key", "k", &err), 0);
    ck_assert_int_eq(config_check_exposure(&c, &err), 0);
    config_defaults(&c);
    ck_assert_int_eq(config_set(&c, "broker.http", "10.1.2.3:7480", &err), 0);
    ck_assert_int_eq(config_check_exposure(&c, &err), -HERR_BAD_VALUE);
    ck_assert_ptr_nonnull(strstr(err.message, "broker.http 10.1.2.3:7480"));
    ck_assert_int_eq(config_set(&c, "broker.http", "[::1]:7480", &err), 0);
    ck_assert_int_eq(config_check_exposure(&c, &err), 0);
    ck_assert_int_eq(config_set(&c, "broker.http", "localhost:7480", &err), 0);
    ck_assert_int_eq(config_check_exposure(&c, &err), 0);
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
    tcase_add_test(tc, config_rejects_each_bad_value_naming_key_line_and_file);
    tcase_add_test(tc, config_never_echoes_secrets_in_errors);
    tcase_add_test(tc, config_knows_the_development_secret_and_pairs_tls_files);
    tcase_add_test(tc, config_rejects_unknown_keys_and_sections);
    tcase_add_test(tc, config_rejects_malformed_duplicate_and_overlong_lines);
    tcase_add_test(tc, config_requires_auth_secret);
    tcase_add_test(tc, config_rejects_gateway_ports_past_65535_or_clashing);
    tcase_add_test(tc, config_missing_file_is_an_io_error);
    tcase_add_test(tc, config_parse_size_takes_k_m_g_and_plain_bytes);
    tcase_add_test(tc, config_parse_host_port_splits_host_and_port);
    tcase_add_test(tc, config_set_overrides_one_key_and_leaves_cfg_alone_on_error);
    tcase_add_test(tc, config_default_path_prefers_explicit_then_env);
    tcase_add_test(tc, config_runtime_dir_defaults_to_a_private_per_user_dir);
    tcase_add_test(tc, config_non_loopback_broker_listener_needs_an_api_key);
    suite_add_tcase(s, tc);
    return check_run_suite(s);
}
