/* gwsys.c - a real herald-broker plus gateways for the gateway system suites. */
#include "gwsys.h"

#include <check.h>
#include <msgpack.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "json.h"
#include "jwt.h"

/* argv for bin: fixed head, then -o for every override. */
static void gws_argv(gws_t *s, char **argv, size_t cap, char *const *head, size_t n_head)
{
    size_t n = 0;
    for (; n < n_head; n++)
        argv[n] = head[n];
    for (size_t i = 0; s->opts[i] && n + 3 < cap; i++) {
        argv[n++] = (char *)"-o";
        argv[n++] = (char *)s->opts[i];
    }
    argv[n] = NULL;
}

void gws_spawn_broker(gws_t *s)
{
    char log[400], *argv[4 + 2 * GWS_MAX_OPT];
    char *head[] = {s->bin_broker, (char *)"-c", s->env.config};
    snprintf(log, sizeof log, "%s/broker.log", s->env.dir);
    gws_argv(s, argv, sizeof argv / sizeof argv[0], head, 3);
    if (s->producer) herald_close(s->producer); /* connects afresh to the new broker */
    s->producer = NULL;
    s->broker = procs_spawn(s->bin_broker, argv, log);
    ck_assert_int_gt(s->broker, 0);
    ck_assert_int_eq(procs_wait_tcp("127.0.0.1", s->http, GWS_WAIT), 0);
    ck_assert_int_eq(procs_wait_unix(s->sock, GWS_WAIT), 0);
}

void gws_launch_gateway(gws_t *s, unsigned id)
{
    char idbuf[8], log[400], *argv[6 + 2 * GWS_MAX_OPT];
    snprintf(idbuf, sizeof idbuf, "%u", id);
    snprintf(log, sizeof log, "%s/gateway%u.log", s->env.dir, id);
    char *head[] = {s->bin_gw, (char *)"--id", idbuf, (char *)"-c", s->env.config};
    gws_argv(s, argv, sizeof argv / sizeof argv[0], head, 5);
    s->gw[id] = procs_spawn(s->bin_gw, argv, log);
    ck_assert_int_gt(s->gw[id], 0);
    ck_assert_int_eq(procs_wait_tcp("127.0.0.1", (uint16_t)(s->ws + id), GWS_WAIT), 0);
}

void gws_spawn_gateway(gws_t *s, unsigned id)
{
    char body[256];
    gws_launch_gateway(s, id);
    /* healthy = broker link up and ring attached */
    int st = 0;
    for (int i = 0; i < 250 && st != 200; i++) {
        st = gws_gw_get(s, id, "/healthz", body, sizeof body);
        if (st != 200) usleep(20000);
    }
    ck_assert_int_eq(st, 200);
}

void gws_write_config(gws_t *s, const char *secret, const char *extra)
{
    char ini[2048];
    snprintf(ini, sizeof ini,
             "[broker]\nhttp = 127.0.0.1:%u\n[gateway]\ncount = %u\nlisten = 127.0.0.1:%u\n"
             "ring_bytes = 4M\n[auth]\nsecret = %s\n%s",
             s->http, s->n_gw, s->ws, secret, extra ? extra : "");
    ck_assert_int_eq(procs_env_write_config(&s->env, ini), 0);
}

void gws_init(gws_t *s, unsigned n_gw, const char *const *overrides)
{
    memset(s, 0, sizeof *s);
    ck_assert_uint_le(n_gw, GWS_MAX_GW);
    s->n_gw = n_gw;
    for (size_t i = 0; overrides && overrides[i] && i < GWS_MAX_OPT; i++) {
        s->opts[i] = overrides[i];
        if (!strncmp(overrides[i], "gateway.tls_cert=", 17))
            snprintf(s->ca, sizeof s->ca, "%s", overrides[i] + 17);
    }
    ck_assert_int_eq(procs_env_init(&s->env, "gws"), 0);
    s->http = procs_free_ports(1);
    s->ws = procs_free_ports(GWS_MAX_GW);
    ck_assert(s->http && s->ws);
    gws_write_config(s, GWS_SECRET, NULL);
    snprintf(s->sock, sizeof s->sock, "%s/broker.sock", s->env.dir);
    procs_build_path("broker/herald-broker", s->bin_broker, sizeof s->bin_broker);
    procs_build_path("gateway/herald-gateway", s->bin_gw, sizeof s->bin_gw);
}

void gws_start(gws_t *s, unsigned n_gw, const char *const *overrides)
{
    gws_init(s, n_gw, overrides);
    gws_spawn_broker(s);
    for (unsigned i = 0; i < n_gw; i++)
        gws_spawn_gateway(s, i);
}

void gws_stop(gws_t *s)
{
    if (s->producer) herald_close(s->producer);
    s->producer = NULL;
    for (unsigned i = 0; i < GWS_MAX_GW; i++)
        if (s->gw[i] > 0) procs_stop(s->gw[i], 3000);
    if (s->broker > 0) procs_stop(s->broker, 3000);
    memset(s->gw, 0, sizeof s->gw);
    s->broker = 0;
    procs_cleanup();
}

void gws_kill9(gws_t *s, pid_t *pid)
{
    (void)s;
    ck_assert_int_eq(procs_kill(*pid, SIGKILL), 0);
    procs_reap(*pid, GWS_WAIT);
    *pid = 0;
}

/* The notification as JSON text; message ids are unique per test process. */
static void gws_notif_json(char *out, size_t cap, const char *user, const char *type, int prio,
                           size_t pad)
{
    static unsigned n;
    int len = snprintf(out, cap,
                       "{\"user_id\":\"%s\",\"message_type\":\"%s\",\"message_id\":\"t%d-%u\","
                       "\"source\":\"test\"",
                       user, type, (int)getpid(), n++);
    if (prio >= 0) len += snprintf(out + len, cap - (size_t)len, ",\"priority\":%d", prio);
    len += snprintf(out + len, cap - (size_t)len, ",\"payload\":{\"pad\":\"");
    ck_assert_uint_lt((size_t)len + pad + 8, cap);
    memset(out + len, 'x', pad);
    snprintf(out + len + pad, cap - (size_t)len - pad, "\"}}");
}

uint64_t gws_publish(gws_t *s, const char *user, const char *type, int prio, size_t pad)
{
    static char text[70000];
    herald_error_t err;
    herald_result_t res;
    msgpack_sbuffer sb;
    gws_notif_json(text, sizeof text, user, type, prio, pad);
    msgpack_sbuffer_init(&sb);
    ck_assert_int_eq(json_to_msgpack(text, strlen(text), &sb, &err), 0);
    if (!s->producer) s->producer = herald_connect(s->sock, &err);
    ck_assert_msg(s->producer != NULL, "herald_connect: %s", err.message);
    int rc = herald_publish(s->producer, (const uint8_t *)sb.data, sb.size, &res, &err);
    msgpack_sbuffer_destroy(&sb);
    ck_assert_msg(rc == 0 && res.ok, "publish: %s %s", err.message, res.message);
    return res.seq;
}

uint64_t gws_publish_json(gws_t *s, const char *json, size_t n, uint64_t *seqs)
{
    herald_error_t err;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    ck_assert_msg(json_to_msgpack(json, strlen(json), &sb, &err) == 0, "%s", err.message);
    if (!s->producer) s->producer = herald_connect(s->sock, &err);
    ck_assert_msg(s->producer != NULL, "herald_connect: %s", err.message);
    ck_assert_int_eq(herald_send(s->producer, (const uint8_t *)sb.data, sb.size, &err), 0);
    msgpack_sbuffer_destroy(&sb);
    herald_result_t *res = calloc(n, sizeof *res);
    ck_assert_ptr_nonnull(res);
    ck_assert_int_eq(herald_recv_results(s->producer, res, n, &err), (long)n);
    for (size_t i = 0; i < n; i++) {
        ck_assert_msg(res[i].ok, "publish %zu: %s %s", i, res[i].error, res[i].message);
        if (seqs) seqs[i] = res[i].seq;
    }
    uint64_t first = res[0].seq;
    free(res);
    return first;
}

uint64_t gws_publish_http(gws_t *s, const char *user, const char *type, int prio)
{
    char body[512], resp[1024];
    gws_notif_json(body, sizeof body, user, type, prio, 0);
    int st = procs_http_post("127.0.0.1", s->http, "/api/publish", "application/json", NULL, body,
                             resp, sizeof resp);
    ck_assert_msg(st == 200, "publish: %d %s", st, resp);
    const char *p = strstr(resp, "\"seq\":");
    ck_assert_ptr_nonnull(p);
    return strtoull(p + 6, NULL, 10);
}

void gws_token(const char *user, char *out, size_t cap)
{
    ck_assert_int_gt(jwt_mint(GWS_SECRET, user, (uint64_t)time(NULL), 3600, out, cap), 0);
}

void gws_url(gws_t *s, unsigned gw, const char *query, char *out, size_t cap)
{
    snprintf(out, cap, "%s://127.0.0.1:%u/ws%s", s->ca[0] ? "wss" : "ws", s->ws + gw,
             query ? query : "");
}

int gws_connect(gws_t *s, unsigned gw, const char *token, const char *query, wsc_t **out)
{
    char url[4600];
    gws_url(s, gw, query, url, sizeof url);
    wsc_trust(s->ca[0] ? s->ca : NULL);
    return wsc_connect(out, url, token, NULL, GWS_WAIT);
}

wsc_t *gws_client(gws_t *s, unsigned gw, const char *user, const char *query, const char *proto)
{
    char tok[512], url[256];
    wsc_t *c;
    gws_token(user, tok, sizeof tok);
    gws_url(s, gw, query, url, sizeof url);
    wsc_trust(s->ca[0] ? s->ca : NULL);
    ck_assert_int_eq(wsc_connect(&c, url, tok, proto, GWS_WAIT), 101);
    const char *m;
    bool bin;
    long n = wsc_recv(c, &m, &bin, GWS_WAIT);
    ck_assert_int_gt(n, 0);
    ck_assert_msg(memmem(m, (size_t)n, "welcome", 7), "first message is the welcome");
    ck_assert_msg(memmem(m, (size_t)n, user, strlen(user)), "welcome names the user");
    return c;
}

int gws_gw_get(gws_t *s, unsigned gw, const char *path, char *body, size_t cap)
{
    uint16_t port = (uint16_t)(s->ws + gw);
    if (s->ca[0]) return tls_http_get("127.0.0.1", port, s->ca, path, body, cap);
    return procs_http_get("127.0.0.1", port, path, body, cap);
}

uint64_t gws_stat(gws_t *s, unsigned gw, const char *key)
{
    char body[8192], pat[96];
    ck_assert_int_eq(gws_gw_get(s, gw, "/stats", body, sizeof body), 200);
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(body, pat);
    ck_assert_msg(p != NULL, "no %s in %s", key, body);
    return strtoull(p + strlen(pat), NULL, 10);
}

json_t *gws_json(wsc_t *c, int timeout_ms)
{
    const char *m;
    if (wsc_recv(c, &m, NULL, timeout_ms) < 0) return NULL;
    json_t *j = json_loads(m, 0, NULL);
    ck_assert_msg(j != NULL, "not JSON: %s", m);
    return j;
}

const char *gws_jstr(json_t *j, const char *k)
{
    const char *s = json_string_value(json_object_get(j, k));
    return s ? s : "";
}

uint64_t gws_jint(json_t *j, const char *k)
{
    return (uint64_t)json_integer_value(json_object_get(j, k));
}

void gws_expect_type(wsc_t *c, const char *type, json_t **out)
{
    json_t *j = gws_json(c, GWS_WAIT);
    ck_assert_msg(j != NULL, "no %s message", type);
    ck_assert_str_eq(gws_jstr(j, "type"), type);
    if (out)
        *out = j;
    else
        json_decref(j);
}

void gws_expect_seq(wsc_t *c, uint64_t seq)
{
    json_t *j;
    gws_expect_type(c, "notification", &j);
    ck_assert_uint_eq(gws_jint(j, "seq"), seq);
    json_decref(j);
}

void gws_expect_silence(wsc_t *c, int ms)
{
    const char *m;
    long n = wsc_recv(c, &m, NULL, ms);
    ck_assert_msg(n == -1, "expected nothing, got: %s", n >= 0 ? m : "(closed)");
}

void gws_expect_close(wsc_t *c, int code)
{
    const char *m;
    long n;
    while ((n = wsc_recv(c, &m, NULL, GWS_WAIT)) >= 0)
        continue;
    ck_assert_int_eq(n, -2);
    ck_assert_int_eq(wsc_close_code(c), code);
}

int gws_run(Suite *suite)
{
    return procs_run_suite(suite);
}
