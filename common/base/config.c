/* config.c - strict INI configuration (libinih): the SPEC 8 keys, their defaults, bounds and
 * error messages that name the file, the line and the key.
 *
 * Debian's libinih is built without INI_HANDLER_LINENO, so we feed it through our own line
 * reader (ini_parse_stream), which counts lines, strips leading blanks (so no line is taken
 * as a multi-line continuation), checks that every line has the shape of a section, a
 * key = value pair or a comment, and knows every section name, so even an empty unknown
 * section is reported. */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ini.h>

#include "log.h"
#include "rtdir.h"

/* A unix socket path is at most 107 bytes; leave room for "/control.sock" and friends. */
#define CONFIG_DIR_MAX 80
#define SIZE_K         1024ull
#define SIZE_M         (1024ull * 1024)
#define SIZE_G         (1024ull * 1024 * 1024)

typedef enum {
    KT_STRING,        /* any text up to size - 1 bytes, may be empty */
    KT_SECRET,        /* like KT_STRING, never echoed in messages, must not be empty */
    KT_DIR,           /* path up to CONFIG_DIR_MAX bytes; empty = rtdir_default */
    KT_NAME,          /* non-empty [A-Za-z0-9._-] (goes into /dev/shm names) */
    KT_HOST_PORT,     /* host:port */
    KT_HOST_PORT_OFF, /* host:port, or empty / "off" */
    KT_U32,           /* integer in [min, max] */
    KT_U32_LIST,      /* exactly `size` comma-separated integers in [min, max] */
    KT_SIZE,          /* bytes with optional K/M/G suffix, in [min, max] */
    KT_SIZE_POW2,     /* same, and a power of two */
    KT_LEVEL,         /* debug|info|warn|error */
    KT_IDLE,          /* sleep | backoff:<spin_us>,<yield_us> (two u32 fields) */
    KT_BOOL,          /* true|false|yes|no|on|off|1|0 */
    KT_URL_LIST,      /* [nats://|tls://][credentials@]host:port[,...], or empty / "off" */
    KT_PATH,          /* a file path up to size - 1 bytes, may be empty (= unset) */
    KT_SECRET_LIST,   /* comma-separated secrets, may be empty, never echoed */
    KT_NAME_LIST,     /* comma-separated names [a-z0-9_], may be empty (message_type lists) */
} key_type_t;

typedef struct {
    const char *section;
    const char *name;
    key_type_t type;
    size_t offset; /* of the field in herald_config_t */
    size_t size;   /* string buffer bytes, or list length */
    uint64_t min, max;
} config_key_t;

#define F(field)  offsetof(herald_config_t, field)
#define SZ(field) sizeof(((herald_config_t *)0)->field)

static const config_key_t config_keys[] = {
    {"runtime", "dir", KT_DIR, F(runtime_dir), SZ(runtime_dir), 0, 0},
    {"runtime", "shm_prefix", KT_NAME, F(shm_prefix), SZ(shm_prefix), 0, 0},
    {"runtime", "group", KT_STRING, F(runtime_group), SZ(runtime_group), 0, 0},
    {"runtime", "idle", KT_IDLE, F(idle_spin_us), 0, 0, 1000000},
    {"runtime", "web_dir", KT_STRING, F(web_dir), SZ(web_dir), 0, 0},
    {"broker", "http", KT_HOST_PORT, F(broker_http), 0, 0, 0},
    {"broker", "tcp", KT_HOST_PORT_OFF, F(broker_tcp), 0, 0, 0},
    {"broker", "api_key", KT_STRING, F(broker_api_key), SZ(broker_api_key), 0, 0},
    {"broker", "dedup_window", KT_U32, F(dedup_window), 0, 1, 10000000},
    {"broker", "queue_capacity", KT_U32_LIST, F(queue_capacity), HERALD_PRIORITIES, 1, 10000000},
    {"broker", "history_size", KT_U32, F(history_size), 0, 1, 100000},
    {"broker", "history_age_s", KT_U32, F(history_age_s), 0, 1, 604800},
    {"broker", "max_memory", KT_SIZE, F(max_memory), 0, 16 * SIZE_M, 1024 * SIZE_G},
    {"broker", "http_timeout_s", KT_U32, F(http_timeout_s), 0, 1, 3600},
    {"broker", "http_idle_s", KT_U32, F(http_idle_s), 0, 1, 86400},
    {"broker", "http_body_max", KT_SIZE, F(http_body_max), 0, 4 * SIZE_K, 256 * SIZE_M},
    {"broker", "http_max_connections", KT_U32, F(http_max_connections), 0, 1, 1000000},
    {"gateway", "count", KT_U32, F(gateway_count), 0, 1, 256},
    {"gateway", "listen", KT_HOST_PORT, F(gateway_listen), 0, 0, 0},
    {"gateway", "ring_bytes", KT_SIZE_POW2, F(ring_bytes), 0, 4 * SIZE_K, SIZE_G},
    {"gateway", "batch_size", KT_U32, F(batch_size), 0, 1, 100000},
    {"gateway", "flush_ms", KT_U32_LIST, F(flush_ms), 3, 0, 60000},
    {"gateway", "ping_interval_s", KT_U32, F(ping_interval_s), 0, 1, 3600},
    {"gateway", "session_timeout_s", KT_U32, F(session_timeout_s), 0, 1, 86400},
    {"gateway", "max_pending_bytes", KT_SIZE, F(max_pending_bytes), 0, 4 * SIZE_K, SIZE_G},
    {"gateway", "max_sessions_per_user", KT_U32, F(max_sessions_per_user), 0, 1, 1000000},
    {"gateway", "max_connections", KT_U32, F(max_connections), 0, 0, 10000000},
    {"gateway", "resumes_per_minute", KT_U32, F(resumes_per_minute), 0, 1, 100000},
    {"gateway", "conflate_bytes", KT_SIZE, F(conflate_bytes), 0, 0, SIZE_G},
    {"delivery", "conflate", KT_NAME_LIST, F(conflate_types), SZ(conflate_types), 0, 0},
    {"delivery", "ack_required", KT_NAME_LIST, F(ack_required_types), SZ(ack_required_types), 0, 0},
    {"delivery", "ack_timeout_ms", KT_U32, F(ack_timeout_ms), 0, 10, 3600000},
    {"delivery", "ack_max_attempts", KT_U32, F(ack_max_attempts), 0, 1, 100},
    {"gateway", "tls_cert", KT_PATH, F(gateway_tls_cert), SZ(gateway_tls_cert), 0, 0},
    {"gateway", "tls_key", KT_PATH, F(gateway_tls_key), SZ(gateway_tls_key), 0, 0},
    {"broker", "tls_cert", KT_PATH, F(broker_tls_cert), SZ(broker_tls_cert), 0, 0},
    {"broker", "tls_key", KT_PATH, F(broker_tls_key), SZ(broker_tls_key), 0, 0},
    {"auth", "secret", KT_SECRET, F(auth_secret), SZ(auth_secret), 0, 0},
    {"auth", "previous_secrets", KT_SECRET_LIST, F(auth_previous_secrets),
     SZ(auth_previous_secrets), 0, 0},
    {"auth", "require_exp", KT_BOOL, F(auth_require_exp), 0, 0, 0},
    {"auth", "leeway_s", KT_U32, F(auth_leeway_s), 0, 0, 3600},
    {"auth", "audience", KT_STRING, F(auth_audience), SZ(auth_audience), 0, 0},
    {"auth", "issuer", KT_STRING, F(auth_issuer), SZ(auth_issuer), 0, 0},
    {"auth", "allow_dev_secret", KT_BOOL, F(auth_allow_dev_secret), 0, 0, 0},
    {"log", "level", KT_LEVEL, F(log_level), 0, 0, 0},
    {"supervisor", "hang_s", KT_U32, F(hang_s), 0, 0, 3600},
    {"slo", "p0_ms", KT_U32, F(slo_ms[0]), 0, 1, 3600000},
    {"slo", "p1_ms", KT_U32, F(slo_ms[1]), 0, 1, 3600000},
    {"slo", "p2_ms", KT_U32, F(slo_ms[2]), 0, 1, 3600000},
    {"slo", "p3_ms", KT_U32, F(slo_ms[3]), 0, 1, 3600000},
    {"cluster", "nats", KT_URL_LIST, F(cluster_nats), SZ(cluster_nats), 0, 0},
    {"cluster", "node_id", KT_U32, F(cluster_node_id), 0, 1, 65535},
    {"cluster", "partitions", KT_U32, F(cluster_partitions), 0, 1, 1024},
    {"cluster", "replicas", KT_U32, F(cluster_replicas), 0, 1, 5},
};

#define CONFIG_NKEYS (sizeof config_keys / sizeof config_keys[0])

static const char *const config_sections[] = {"runtime",    "broker",  "gateway", "auth",    "log",
                                              "supervisor", "cluster", "slo",     "delivery"};

void config_defaults(herald_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    rtdir_default(cfg->runtime_dir, sizeof cfg->runtime_dir);
    snprintf(cfg->shm_prefix, sizeof cfg->shm_prefix, "herald");
    snprintf(cfg->broker_http.host, sizeof cfg->broker_http.host, "127.0.0.1");
    cfg->broker_http.port = 7480;
    cfg->dedup_window = 10000;
    const uint32_t queues[HERALD_PRIORITIES] = {10000, 50000, 100000, 50000};
    memcpy(cfg->queue_capacity, queues, sizeof queues);
    cfg->history_size = 1000;
    cfg->history_age_s = 300;
    cfg->max_memory = SIZE_G;
    cfg->http_timeout_s = 10;
    cfg->http_idle_s = 60;
    cfg->http_body_max = 16 * SIZE_M;
    cfg->http_max_connections = 10000;
    cfg->gateway_count = 2;
    snprintf(cfg->gateway_listen.host, sizeof cfg->gateway_listen.host, "127.0.0.1");
    cfg->gateway_listen.port = 7500;
    cfg->ring_bytes = 16 * SIZE_M;
    cfg->batch_size = 100;
    cfg->flush_ms[0] = 5;
    cfg->flush_ms[1] = 100;
    cfg->flush_ms[2] = 1000;
    cfg->ping_interval_s = 30;
    cfg->session_timeout_s = 300;
    cfg->max_pending_bytes = 4 * SIZE_M;
    cfg->max_sessions_per_user = 16;
    cfg->resumes_per_minute = 30;
    snprintf(cfg->conflate_types, sizeof cfg->conflate_types, "%s",
             "position_update,position_profit,account_update");
    snprintf(cfg->ack_required_types, sizeof cfg->ack_required_types, "%s",
             "margin_call,risk_alert");
    cfg->ack_timeout_ms = 2000;
    cfg->ack_max_attempts = 5;
    cfg->auth_require_exp = true;
    cfg->auth_leeway_s = 5;
    cfg->log_level = LOG_INFO;
    cfg->cluster_node_id = 1;
    cfg->cluster_partitions = 16;
    cfg->cluster_replicas = 3;
    cfg->hang_s = 5;
    const uint32_t slo[HERALD_PRIORITIES] = {1, 6, 101, 1001};
    memcpy(cfg->slo_ms, slo, sizeof slo);
}

#ifndef HERALD_WEB_DIR
#define HERALD_WEB_DIR "/usr/local/share/herald/web"
#endif

const char *config_web_dir(const herald_config_t *cfg)
{
    return cfg->web_dir[0] ? cfg->web_dir : HERALD_WEB_DIR;
}

/* Does the comma-separated list hold item (whole entries, blanks around them ignored)? */
static bool list_has(const char *list, const char *item)
{
    size_t n = strlen(item);
    for (const char *p = list; *p;) {
        while (*p == ' ' || *p == '\t')
            p++;
        size_t len = strcspn(p, ",");
        size_t trimmed = len;
        while (trimmed && (p[trimmed - 1] == ' ' || p[trimmed - 1] == '\t'))
            trimmed--;
        if (trimmed == n && memcmp(p, item, n) == 0) return true;
        p += len;
        if (*p == ',') p++;
    }
    return false;
}

bool config_uses_dev_secret(const herald_config_t *cfg)
{
    return strcmp(cfg->auth_secret, HERALD_DEV_SECRET) == 0 ||
           list_has(cfg->auth_previous_secrets, HERALD_DEV_SECRET);
}

void config_log_dev_secret(const herald_config_t *cfg)
{
    if (!config_uses_dev_secret(cfg) || !cfg->auth_allow_dev_secret) return;
    log_warn("*****************************************************************************");
    log_warn("auth.secret is the PUBLIC DEVELOPMENT SECRET of deploy/herald.ini and");
    log_warn("auth.allow_dev_secret = true: anyone can mint tokens for any user.");
    log_warn("Development only: set your own auth.secret before real users connect.");
    log_warn("*****************************************************************************");
}

const char *config_default_path(const char *explicit_path)
{
    if (explicit_path && *explicit_path) return explicit_path;
    const char *env = getenv("HERALD_CONFIG");
    if (env && *env) return env;
    return "deploy/herald.ini";
}

/* Decimal digits only (no sign, no blanks), without overflow. */
static int parse_u64(const char *s, const char **end, uint64_t *out)
{
    uint64_t v = 0;
    const char *p = s;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10) return -1;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    if (p == s) return -1;
    *end = p;
    *out = v;
    return 0;
}

int config_parse_size(const char *s, uint64_t *out)
{
    const char *end;
    uint64_t v, mult = 1;
    if (!s || parse_u64(s, &end, &v) < 0) return -1;
    switch (*end) {
    case '\0':
        break;
    case 'K':
    case 'k':
        mult = SIZE_K;
        end++;
        break;
    case 'M':
    case 'm':
        mult = SIZE_M;
        end++;
        break;
    case 'G':
    case 'g':
        mult = SIZE_G;
        end++;
        break;
    default:
        return -1;
    }
    if (*end != '\0' || v > UINT64_MAX / mult) return -1;
    *out = v * mult;
    return 0;
}

int config_parse_host_port(const char *s, host_port_t *hp)
{
    const char *colon = s ? strrchr(s, ':') : NULL;
    if (!colon) return -1;
    const char *host = s;
    size_t hlen = (size_t)(colon - s);
    if (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']') { /* [::1]:7480 */
        host++;
        hlen -= 2;
    } else if (memchr(host, ':', hlen)) {
        return -1; /* a bare IPv6 address is ambiguous */
    }
    if (hlen == 0 || hlen >= sizeof hp->host) return -1;
    for (size_t i = 0; i < hlen; i++)
        if (host[i] == ' ' || host[i] == '\t' || host[i] == '[' || host[i] == ']') return -1;
    const char *end;
    uint64_t port;
    if (parse_u64(colon + 1, &end, &port) < 0 || *end != '\0' || port < 1 || port > 65535)
        return -1;
    memset(hp, 0, sizeof *hp);
    memcpy(hp->host, host, hlen);
    hp->host[hlen] = '\0';
    hp->port = (uint16_t)port;
    return 0;
}

/* "4K", "16M", "1G" or plain bytes, the way a user would write v. */
static const char *size_str(uint64_t v, char *buf, size_t n)
{
    if (v >= SIZE_G && v % SIZE_G == 0)
        snprintf(buf, n, "%lluG", (unsigned long long)(v / SIZE_G));
    else if (v >= SIZE_M && v % SIZE_M == 0)
        snprintf(buf, n, "%lluM", (unsigned long long)(v / SIZE_M));
    else if (v >= SIZE_K && v % SIZE_K == 0)
        snprintf(buf, n, "%lluK", (unsigned long long)(v / SIZE_K));
    else
        snprintf(buf, n, "%llu", (unsigned long long)v);
    return buf;
}

/* Parse exactly n comma-separated integers in [min, max] (blanks around commas allowed). */
static int parse_u32_list(const char *s, uint32_t *out, size_t n, uint64_t min, uint64_t max)
{
    uint32_t tmp[8];
    size_t count = 0;
    const char *p = s;
    for (;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        uint64_t v;
        if (count == n || parse_u64(p, &p, &v) < 0 || v < min || v > max) return -1;
        tmp[count++] = (uint32_t)v;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '\0') break;
        if (*p++ != ',') return -1;
    }
    if (count != n) return -1;
    memcpy(out, tmp, n * sizeof *out);
    return 0;
}

/* A NATS server list: comma-separated [nats://|tls://][credentials@]host:port, at most 32,
 * blanks around commas allowed. Returns 0 or -1. */
static int parse_url_list(const char *s)
{
    int n = 0;
    const char *p = s;
    for (;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        const char *end = p + strcspn(p, ",");
        const char *last = end;
        while (last > p && (last[-1] == ' ' || last[-1] == '\t'))
            last--;
        char one[160];
        size_t len = (size_t)(last - p);
        if (len == 0 || len >= sizeof one || ++n > 32) return -1;
        memcpy(one, p, len);
        one[len] = '\0';
        const char *hp = one;
        if (strncmp(hp, "nats://", 7) == 0)
            hp += 7;
        else if (strncmp(hp, "tls://", 6) == 0)
            hp += 6;
        const char *at = strrchr(hp, '@'); /* user:password@ or token@ */
        if (at) hp = at + 1;
        host_port_t parsed;
        if (strchr(hp, '/') || config_parse_host_port(hp, &parsed) < 0) return -1;
        if (*end == '\0') return 0;
        p = end + 1;
    }
}

static int parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"}, *const no[] = {"false", "no",
                                                                                "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

/* Every entry of a comma-separated list is non-empty once blanks are trimmed. */
static bool list_entries_ok(const char *s)
{
    if (!*s) return true;
    for (const char *p = s;;) {
        size_t len = strcspn(p, ",");
        if (strspn(p, " \t") >= len) return false;
        if (!p[len]) return true;
        p += len + 1;
    }
}

/* A list of names: comma-separated entries of [a-z0-9_] (blanks around commas allowed), at
 * most 32, or empty. Whether each names a message_type is for model_delivery_masks. */
static bool name_list_ok(const char *s)
{
    int n = 0;
    for (const char *p = s;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        size_t len = strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789_");
        if (len == 0) return *p == '\0' && n == 0; /* only the empty list has no entry */
        if (++n > 32) return false;
        p += len;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '\0') return true;
        if (*p++ != ',') return false;
    }
}

/* Parse value for key k into cfg. On failure fills expected with what the key takes. */
static int config_apply(herald_config_t *cfg, const config_key_t *k, const char *value,
                        char *expected, size_t elen)
{
    char *field = (char *)cfg + k->offset;
    size_t len = strlen(value);
    const char *end;
    uint64_t v;
    char a[24], b[24];

    switch (k->type) {
    case KT_STRING:
    case KT_SECRET:
        if (len >= k->size) break;
        memcpy(field, value, len + 1);
        return 0;
    case KT_DIR:
        if (len > CONFIG_DIR_MAX) break;
        if (len == 0) /* the default, as config_defaults sets it */
            rtdir_default(field, k->size);
        else
            memcpy(field, value, len + 1);
        return 0;
    case KT_NAME:
        if (len == 0 || len >= k->size ||
            strspn(value, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                          "abcdefghijklmnopqrstuvwxyz"
                          "0123456789._-") != len)
            break;
        memcpy(field, value, len + 1);
        return 0;
    case KT_HOST_PORT_OFF:
        if (len == 0 || strcmp(value, "off") == 0) {
            memset(field, 0, sizeof(host_port_t));
            return 0;
        }
        /* fall through */
    case KT_HOST_PORT: {
        host_port_t hp;
        if (config_parse_host_port(value, &hp) < 0) break;
        memcpy(field, &hp, sizeof hp);
        return 0;
    }
    case KT_U32:
        if (parse_u64(value, &end, &v) < 0 || *end || v < k->min || v > k->max) break;
        *(uint32_t *)(void *)field = (uint32_t)v;
        return 0;
    case KT_U32_LIST:
        if (parse_u32_list(value, (uint32_t *)(void *)field, k->size, k->min, k->max) < 0) break;
        return 0;
    case KT_SIZE:
    case KT_SIZE_POW2:
        if (config_parse_size(value, &v) < 0 || v < k->min || v > k->max) break;
        if (k->type == KT_SIZE_POW2 && (v & (v - 1)) != 0) break;
        *(uint64_t *)(void *)field = v;
        return 0;
    case KT_LEVEL: {
        int lvl = log_level_parse(value);
        if (lvl < 0) break;
        *(int *)(void *)field = lvl;
        return 0;
    }
    case KT_IDLE: {
        uint32_t *us = (uint32_t *)(void *)field; /* spin, then yield */
        if (strcmp(value, "sleep") == 0) {
            us[0] = us[1] = 0;
            return 0;
        }
        if (strncmp(value, "backoff:", 8) != 0 || parse_u32_list(value + 8, us, 2, 0, k->max) < 0)
            break;
        return 0;
    }
    case KT_URL_LIST:
        if (len == 0 || strcmp(value, "off") == 0) {
            field[0] = '\0';
            return 0;
        }
        if (len >= k->size || parse_url_list(value) < 0) break;
        memcpy(field, value, len + 1);
        return 0;
    case KT_BOOL:
        if (parse_bool(value, (bool *)(void *)field) < 0) break;
        return 0;
    case KT_PATH:
        if (len >= k->size) break;
        memcpy(field, value, len + 1);
        return 0;
    case KT_SECRET_LIST:
        if (len >= k->size || !list_entries_ok(value)) break;
        memcpy(field, value, len + 1);
        return 0;
    case KT_NAME_LIST:
        if (len >= k->size || !name_list_ok(value)) break;
        memcpy(field, value, len + 1);
        return 0;
    }

    switch (k->type) {
    case KT_STRING:
    case KT_SECRET:
        snprintf(expected, elen, "at most %zu bytes", k->size - 1);
        break;
    case KT_DIR:
        snprintf(expected, elen, "a directory path of at most %d bytes (empty: the default)",
                 CONFIG_DIR_MAX);
        break;
    case KT_NAME:
        snprintf(expected, elen, "1 to %zu characters from A-Z a-z 0-9 . _ -", k->size - 1);
        break;
    case KT_HOST_PORT:
        snprintf(expected, elen, "host:port with port 1..65535");
        break;
    case KT_HOST_PORT_OFF:
        snprintf(expected, elen, "host:port with port 1..65535, or off");
        break;
    case KT_U32:
        snprintf(expected, elen, "an integer from %llu to %llu", (unsigned long long)k->min,
                 (unsigned long long)k->max);
        break;
    case KT_U32_LIST:
        snprintf(expected, elen, "%zu comma-separated integers from %llu to %llu", k->size,
                 (unsigned long long)k->min, (unsigned long long)k->max);
        break;
    case KT_SIZE:
        snprintf(expected, elen, "a size from %s to %s (bytes, or with K, M or G)",
                 size_str(k->min, a, sizeof a), size_str(k->max, b, sizeof b));
        break;
    case KT_SIZE_POW2:
        snprintf(expected, elen, "a power-of-two size from %s to %s (like 16M)",
                 size_str(k->min, a, sizeof a), size_str(k->max, b, sizeof b));
        break;
    case KT_LEVEL:
        snprintf(expected, elen, "debug, info, warn or error");
        break;
    case KT_IDLE:
        snprintf(expected, elen, "sleep, or backoff:<spin_us>,<yield_us> (each 0 to %llu)",
                 (unsigned long long)k->max);
        break;
    case KT_URL_LIST:
        snprintf(expected, elen, "off, or nats://host:port[,nats://host:port...] (at most 32)");
        break;
    case KT_BOOL:
        snprintf(expected, elen, "true or false");
        break;
    case KT_PATH:
        snprintf(expected, elen, "a file path of at most %zu bytes", k->size - 1);
        break;
    case KT_SECRET_LIST:
        snprintf(expected, elen, "comma-separated non-empty secrets, at most %zu bytes in all",
                 k->size - 1);
        break;
    case KT_NAME_LIST:
        snprintf(expected, elen, "comma-separated message types (at most 32), or nothing");
        break;
    }
    return -1;
}

static bool config_section_known(const char *section)
{
    for (size_t i = 0; i < sizeof config_sections / sizeof config_sections[0]; i++)
        if (strcmp(section, config_sections[i]) == 0) return true;
    return false;
}

static const config_key_t *config_key_find(const char *section, const char *name)
{
    for (size_t i = 0; i < CONFIG_NKEYS; i++)
        if (strcmp(config_keys[i].section, section) == 0 && strcmp(config_keys[i].name, name) == 0)
            return &config_keys[i];
    return NULL;
}

/* Look up section.key and apply value; `where` ("file:line" or "command line") starts the
 * message. Returns 0 or a negative HERR_BAD_VALUE with err filled. */
static int config_assign(herald_config_t *cfg, const char *section, const char *name,
                         const char *value, const char *where, const config_key_t **found,
                         herald_error_t *err)
{
    char field[72], expected[96];
    snprintf(field, sizeof field, "%s.%s", section, name);
    if (!config_section_known(section))
        return herr_set(err, HERR_BAD_VALUE, field, "%s: unknown section [%.32s]", where, section);
    const config_key_t *k = config_key_find(section, name);
    if (!k) return herr_set(err, HERR_BAD_VALUE, field, "%s: unknown key %s", where, field);
    if (found) *found = k;
    if (config_apply(cfg, k, value, expected, sizeof expected) == 0) return 0;
    /* Never echoed: secrets, and server lists (they may carry credentials). */
    if (k->type == KT_SECRET || k->type == KT_SECRET_LIST || k->type == KT_URL_LIST ||
        k == config_key_find("broker", "api_key"))
        return herr_set(err, HERR_BAD_VALUE, field, "%s: %s: expected %s", where, field, expected);
    return herr_set(err, HERR_BAD_VALUE, field, "%s: %s: expected %s, got \"%.40s\"", where, field,
                    expected, value);
}

/* Two listeners collide when their ports match on the same or a wildcard address. */
static bool config_ports_clash(const host_port_t *a, uint16_t lo, uint16_t hi, const host_port_t *b)
{
    if (a->port == 0 || b->port < lo || b->port > hi) return false;
    return strcmp(a->host, b->host) == 0 || strcmp(a->host, "0.0.0.0") == 0 ||
           strcmp(b->host, "0.0.0.0") == 0;
}

/* Checks that span keys: the gateway port range and the listeners' ports. */
static int config_check(const herald_config_t *cfg, const char *where, herald_error_t *err)
{
    const host_port_t *gw = &cfg->gateway_listen;
    uint32_t last = (uint32_t)gw->port + cfg->gateway_count - 1;
    if (last > 65535)
        return herr_set(err, HERR_BAD_VALUE, "gateway.listen",
                        "%s: gateway.listen port %u + gateway.count %u passes port 65535", where,
                        gw->port, cfg->gateway_count);
    if (config_ports_clash(gw, gw->port, (uint16_t)last, &cfg->broker_http))
        return herr_set(err, HERR_BAD_VALUE, "broker.http",
                        "%s: broker.http port %u is one of the gateway ports %u..%u", where,
                        cfg->broker_http.port, gw->port, last);
    if (cfg->broker_tcp.port && config_ports_clash(gw, gw->port, (uint16_t)last, &cfg->broker_tcp))
        return herr_set(err, HERR_BAD_VALUE, "broker.tcp",
                        "%s: broker.tcp port %u is one of the gateway ports %u..%u", where,
                        cfg->broker_tcp.port, gw->port, last);
    if (config_ports_clash(&cfg->broker_http, cfg->broker_http.port, cfg->broker_http.port,
                           &cfg->broker_tcp))
        return herr_set(err, HERR_BAD_VALUE, "broker.tcp",
                        "%s: broker.tcp uses the broker.http port %u", where, cfg->broker_tcp.port);
    return 0;
}

bool config_host_is_loopback(const char *host)
{
    return strncmp(host, "127.", 4) == 0 || strcmp(host, "::1") == 0 ||
           strcmp(host, "localhost") == 0;
}

int config_check_exposure(const herald_config_t *cfg, herald_error_t *err)
{
    if (cfg->broker_api_key[0]) return 0;
    if (!config_host_is_loopback(cfg->broker_http.host))
        return herr_set(err, HERR_BAD_VALUE, "broker.api_key",
                        "broker.http %s:%u is not a loopback address: set broker.api_key so that "
                        "other hosts cannot publish without it",
                        cfg->broker_http.host, cfg->broker_http.port);
    if (cfg->broker_tcp.port && !config_host_is_loopback(cfg->broker_tcp.host))
        return herr_set(err, HERR_BAD_VALUE, "broker.api_key",
                        "broker.tcp %s:%u is not a loopback address: set broker.api_key so that "
                        "other hosts cannot publish without it",
                        cfg->broker_tcp.host, cfg->broker_tcp.port);
    return 0;
}

int config_check_pairs(const herald_config_t *cfg, herald_error_t *err)
{
    if (!cfg->gateway_tls_cert[0] != !cfg->gateway_tls_key[0])
        return herr_set(err, HERR_BAD_VALUE, "gateway.tls_key",
                        "gateway.tls_cert and gateway.tls_key are set together or not at all");
    if (!cfg->broker_tls_cert[0] != !cfg->broker_tls_key[0])
        return herr_set(err, HERR_BAD_VALUE, "broker.tls_key",
                        "broker.tls_cert and broker.tls_key are set together or not at all");
    return 0;
}

int config_set(herald_config_t *cfg, const char *dotted_key, const char *value, herald_error_t *err)
{
    const char *where = "command line";
    const char *dot = dotted_key ? strchr(dotted_key, '.') : NULL;
    if (!dot || !value)
        return herr_set(err, HERR_BAD_VALUE, dotted_key ? dotted_key : "",
                        "%s: expected section.key=value", where);
    char section[32];
    size_t slen = (size_t)(dot - dotted_key);
    if (slen >= sizeof section)
        return herr_set(err, HERR_BAD_VALUE, dotted_key, "%s: unknown key %s", where, dotted_key);
    memcpy(section, dotted_key, slen);
    section[slen] = '\0';
    const config_key_t *k = NULL;
    herald_config_t saved = *cfg; /* an override that fails leaves cfg as it was */
    int rc = config_assign(cfg, section, dot + 1, value, where, &k, err);
    if (rc == 0 && k->type == KT_SECRET && cfg->auth_secret[0] == '\0')
        rc = herr_set(err, HERR_BAD_VALUE, "auth.secret", "%s: auth.secret must not be empty",
                      where);
    if (rc == 0) rc = config_check(cfg, where, err);
    if (rc < 0) *cfg = saved;
    return rc;
}

/* State of one config_load: the line reader's and the handler's. */
typedef struct {
    herald_config_t *cfg;
    herald_error_t *err;
    const char *path;
    FILE *file;
    char *buf; /* getline buffer */
    size_t cap;
    int lineno;                 /* lines read so far = the line inih is working on */
    int err_line;               /* line of the first error we reported, 0 = none */
    int rc;                     /* that error's return code */
    int key_line[CONFIG_NKEYS]; /* where each key was set: a second setting is an error */
} config_parse_t;

static void config_fail(config_parse_t *p, int rc)
{
    p->err_line = p->lineno;
    p->rc = rc;
}

/* Check one line's shape (blank, comment, [section] or key = value). Returns 0 or -1. */
static int config_check_line(config_parse_t *p, const char *s)
{
    char where[300];
    snprintf(where, sizeof where, "%s:%d", p->path, p->lineno);
    size_t n = strcspn(s, "\r\n");
    if (n == 0 || s[0] == ';' || s[0] == '#') return 0;
    if (s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (!close) {
            config_fail(p, herr_set(p->err, HERR_BAD_VALUE, "", "%s: expected [section]", where));
            return -1;
        }
        char section[32];
        size_t len = (size_t)(close - s - 1);
        snprintf(section, sizeof section, "%.*s", (int)len, s + 1);
        if (len < sizeof section && config_section_known(section)) return 0;
        config_fail(p, herr_set(p->err, HERR_BAD_VALUE, section, "%s: unknown section [%s]", where,
                                section));
        return -1;
    }
    if (memchr(s, '=', n) || memchr(s, ':', n)) return 0;
    config_fail(p, herr_set(p->err, HERR_BAD_VALUE, "",
                            "%s: expected [section], key = value or a ; comment, got \"%.*s\"",
                            where, (int)(n < 40 ? n : 40), s));
    return -1;
}

/* inih's fgets-style reader: one whole line per call, leading blanks removed. Lines that
 * do not fit inih's buffer are an error rather than being split. Stops at the first error. */
static char *config_read_line(char *str, int num, void *stream)
{
    config_parse_t *p = stream;
    if (p->err_line) return NULL;
    ssize_t n = getline(&p->buf, &p->cap, p->file);
    if (n < 0) return NULL;
    p->lineno++;
    char *s = p->buf;
    if (p->lineno == 1 && strncmp(s, "\xEF\xBB\xBF", 3) == 0) s += 3; /* UTF-8 BOM */
    while (*s == ' ' || *s == '\t')
        s++;
    size_t len = strlen(s);
    if (len + 1 > (size_t)num) {
        config_fail(p, herr_set(p->err, HERR_BAD_VALUE, "", "%s:%d: line longer than %d bytes",
                                p->path, p->lineno, num - 2));
        return NULL;
    }
    if (config_check_line(p, s) < 0) return NULL;
    memcpy(str, s, len + 1);
    return str;
}

static int config_handler(void *user, const char *section, const char *name, const char *value)
{
    config_parse_t *p = user;
    if (p->err_line) return 1;
    char where[300];
    snprintf(where, sizeof where, "%s:%d", p->path, p->lineno);
    if (*section == '\0') {
        config_fail(p, herr_set(p->err, HERR_BAD_VALUE, name, "%s: key %.32s before any [section]",
                                where, name));
        return 0;
    }
    const config_key_t *k = config_key_find(section, name);
    if (k && p->key_line[k - config_keys]) {
        char field[72];
        snprintf(field, sizeof field, "%s.%s", section, name);
        config_fail(p, herr_set(p->err, HERR_BAD_VALUE, field, "%s: %s is already set on line %d",
                                where, field, p->key_line[k - config_keys]));
        return 0;
    }
    int rc = config_assign(p->cfg, section, name, value, where, &k, p->err);
    if (rc < 0) {
        config_fail(p, rc);
        return 0;
    }
    p->key_line[k - config_keys] = p->lineno;
    return 1;
}

int config_load(herald_config_t *cfg, const char *path, herald_error_t *err)
{
    config_defaults(cfg);
    config_parse_t p = {.cfg = cfg, .err = err, .path = path};
    p.file = fopen(path, "r");
    if (!p.file) return herr_set(err, HERR_IO, path, "%s: cannot open: %s", path, strerror(errno));
    int rc = 0;
    int line = ini_parse_stream(config_read_line, &p, config_handler, &p);
    if (ferror(p.file)) {
        rc = herr_set(err, HERR_IO, path, "%s: read failed: %s", path, strerror(errno));
    } else if (line > 0 && (p.err_line == 0 || line < p.err_line)) {
        rc = herr_set(err, HERR_BAD_VALUE, "", "%s:%d: not valid INI", path, line);
    } else if (p.err_line) {
        rc = p.rc;
    } else if (line < 0) {
        rc = herr_set(err, HERR_INTERNAL, path, "%s: inih failed (%d)", path, line);
    }
    free(p.buf);
    fclose(p.file);
    if (rc < 0) return rc;

    snprintf(cfg->path, sizeof cfg->path, "%s", path);
    if (cfg->auth_secret[0] == '\0')
        return herr_set(err, HERR_MISSING_FIELD, "auth.secret",
                        "%s: auth.secret is required (the HS256 secret for client tokens)", path);
    return config_check(cfg, path, err);
}
