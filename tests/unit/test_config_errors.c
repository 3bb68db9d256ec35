/* test_config_errors.c - the INI configuration refuses bad input: each message names the
 * file, the line and the key, and never echoes a secret. */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "check_run.h"
#include "config.h"
#include "config_text.h"

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
        int rc = config_text_load(&c, text, &err, path);
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
    ck_assert_int_eq(config_text_load(&c, text, &err, NULL), -HERR_BAD_VALUE);
    ck_assert_ptr_null(strstr(err.message, "kkkk"));
    /* A NATS server list may carry credentials. */
    ck_assert_int_eq(config_text_load(&c,
                                      "[cluster]\nnats = nats://herald:pw-x1@h:4222\n" SECRET_LINE,
                                      &err, NULL),
                     0);
    ck_assert_str_eq(c.cluster_nats, "nats://herald:pw-x1@h:4222");
    ck_assert_int_eq(
        config_text_load(&c, "[cluster]\nnats = nats://herald:pw-x1@h:0\n" SECRET_LINE, &err, NULL),
        -HERR_BAD_VALUE);
    ck_assert_ptr_null(strstr(err.message, "pw-x1"));
    snprintf(text, sizeof text, SECRET_LINE "previous_secrets = kkkkkk,,kkkk\n");
    ck_assert_int_eq(config_text_load(&c, text, &err, NULL), -HERR_BAD_VALUE);
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
    config_text_deploy_ini(path, sizeof path);
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
    int rc = config_text_load(&c, text, &err, path);
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
    ck_assert_int_eq(
        config_text_load(&c, "[gateway]\nlisten = 127.0.0.1:65534\n" SECRET_LINE, &err, NULL), 0);
    ck_assert_int_eq(
        config_text_load(&c, "[broker]\nhttp = 10.0.0.1:7501\n" SECRET_LINE, &err, NULL), 0);
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

/* protocol.md 12: a listener other hosts can reach needs the api key. */
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
    Suite *s = suite_create("config_errors");
    TCase *tc = tcase_create("config_errors");
    tcase_add_test(tc, config_rejects_each_bad_value_naming_key_line_and_file);
    tcase_add_test(tc, config_never_echoes_secrets_in_errors);
    tcase_add_test(tc, config_knows_the_development_secret_and_pairs_tls_files);
    tcase_add_test(tc, config_rejects_unknown_keys_and_sections);
    tcase_add_test(tc, config_rejects_malformed_duplicate_and_overlong_lines);
    tcase_add_test(tc, config_requires_auth_secret);
    tcase_add_test(tc, config_rejects_gateway_ports_past_65535_or_clashing);
    tcase_add_test(tc, config_missing_file_is_an_io_error);
    tcase_add_test(tc, config_non_loopback_broker_listener_needs_an_api_key);
    suite_add_tcase(s, tc);
    return check_run_suite(s);
}
