/* config_keys.c - the configuration keys of herald.ini (protocol.md 8): their table, the syntax
 * of each value type, and the phrase that says what a key takes when a value is refused. */
#include "config_keys.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "rtdir.h"

#define F(field)  offsetof(herald_config_t, field)
#define SZ(field) sizeof(((herald_config_t *)0)->field)

const config_key_t config_keys[] = {
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

_Static_assert(sizeof config_keys / sizeof config_keys[0] == CONFIG_NKEYS,
               "CONFIG_NKEYS counts the entries of config_keys");

static const char *const config_sections[] = {"runtime",    "broker",  "gateway", "auth",    "log",
                                              "supervisor", "cluster", "slo",     "delivery"};

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

/* Text keys: check value against the key's syntax, then copy it into the field if it fits. */
static int config_apply_text(char *field, const config_key_t *k, const char *value, size_t len)
{
    switch (k->type) {
    case KT_DIR:
        if (len > CONFIG_DIR_MAX) return -1;
        if (len == 0) { /* the default, as config_defaults sets it */
            rtdir_default(field, k->size);
            return 0;
        }
        break;
    case KT_NAME:
        if (len == 0 || strspn(value, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                      "abcdefghijklmnopqrstuvwxyz"
                                      "0123456789._-") != len)
            return -1;
        break;
    case KT_URL_LIST:
        if (len == 0 || strcmp(value, "off") == 0) {
            field[0] = '\0';
            return 0;
        }
        if (parse_url_list(value) < 0) return -1;
        break;
    case KT_SECRET_LIST:
        if (!list_entries_ok(value)) return -1;
        break;
    case KT_NAME_LIST:
        if (!name_list_ok(value)) return -1;
        break;
    default: /* KT_STRING, KT_SECRET, KT_PATH: any text that fits */
        break;
    }
    if (len >= k->size) return -1;
    memcpy(field, value, len + 1);
    return 0;
}

/* Keys that hold a number, an address, a level or a flag: parse value into the field. */
static int config_apply_value(char *field, const config_key_t *k, const char *value, size_t len)
{
    const char *end;
    uint64_t v;
    switch (k->type) {
    case KT_HOST_PORT_OFF:
        if (len == 0 || strcmp(value, "off") == 0) {
            memset(field, 0, sizeof(host_port_t));
            return 0;
        }
        /* fall through */
    case KT_HOST_PORT:
        return config_parse_host_port(value, (host_port_t *)(void *)field);
    case KT_U32:
        if (parse_u64(value, &end, &v) < 0 || *end || v < k->min || v > k->max) return -1;
        *(uint32_t *)(void *)field = (uint32_t)v;
        return 0;
    case KT_U32_LIST:
        return parse_u32_list(value, (uint32_t *)(void *)field, k->size, k->min, k->max);
    case KT_SIZE:
    case KT_SIZE_POW2:
        if (config_parse_size(value, &v) < 0 || v < k->min || v > k->max) return -1;
        if (k->type == KT_SIZE_POW2 && (v & (v - 1)) != 0) return -1;
        *(uint64_t *)(void *)field = v;
        return 0;
    case KT_LEVEL: {
        int lvl = log_level_parse(value);
        if (lvl < 0) return -1;
        *(int *)(void *)field = lvl;
        return 0;
    }
    case KT_IDLE: {
        uint32_t *us = (uint32_t *)(void *)field; /* spin, then yield */
        if (strcmp(value, "sleep") == 0) {
            us[0] = us[1] = 0;
            return 0;
        }
        if (strncmp(value, "backoff:", 8) != 0) return -1;
        return parse_u32_list(value + 8, us, 2, 0, k->max);
    }
    case KT_BOOL:
        return parse_bool(value, (bool *)(void *)field);
    default:
        return config_apply_text(field, k, value, len);
    }
}

/* What key k takes, as a phrase after "expected", into buf. */
static void config_key_expected(const config_key_t *k, char *buf, size_t n)
{
    char a[24], b[24];
    unsigned long long min = k->min, max = k->max;
    switch (k->type) {
    case KT_STRING:
    case KT_SECRET:
        snprintf(buf, n, "at most %zu bytes", k->size - 1);
        break;
    case KT_DIR:
        snprintf(buf, n, "a directory path of at most %d bytes (empty: the default)",
                 CONFIG_DIR_MAX);
        break;
    case KT_NAME:
        snprintf(buf, n, "1 to %zu characters from A-Z a-z 0-9 . _ -", k->size - 1);
        break;
    case KT_HOST_PORT:
        snprintf(buf, n, "host:port with port 1..65535");
        break;
    case KT_HOST_PORT_OFF:
        snprintf(buf, n, "host:port with port 1..65535, or off");
        break;
    case KT_U32:
        snprintf(buf, n, "an integer from %llu to %llu", min, max);
        break;
    case KT_U32_LIST:
        snprintf(buf, n, "%zu comma-separated integers from %llu to %llu", k->size, min, max);
        break;
    case KT_SIZE:
        snprintf(buf, n, "a size from %s to %s (bytes, or with K, M or G)",
                 size_str(k->min, a, sizeof a), size_str(k->max, b, sizeof b));
        break;
    case KT_SIZE_POW2:
        snprintf(buf, n, "a power-of-two size from %s to %s (like 16M)",
                 size_str(k->min, a, sizeof a), size_str(k->max, b, sizeof b));
        break;
    case KT_LEVEL:
        snprintf(buf, n, "debug, info, warn or error");
        break;
    case KT_IDLE:
        snprintf(buf, n, "sleep, or backoff:<spin_us>,<yield_us> (each 0 to %llu)", max);
        break;
    case KT_URL_LIST:
        snprintf(buf, n, "off, or nats://host:port[,nats://host:port...] (at most 32)");
        break;
    case KT_BOOL:
        snprintf(buf, n, "true or false");
        break;
    case KT_PATH:
        snprintf(buf, n, "a file path of at most %zu bytes", k->size - 1);
        break;
    case KT_SECRET_LIST:
        snprintf(buf, n, "comma-separated non-empty secrets, at most %zu bytes in all",
                 k->size - 1);
        break;
    case KT_NAME_LIST:
        snprintf(buf, n, "comma-separated message types (at most 32), or nothing");
        break;
    }
}

int config_key_apply(herald_config_t *cfg, const config_key_t *k, const char *value, char *expected,
                     size_t elen)
{
    if (config_apply_value((char *)cfg + k->offset, k, value, strlen(value)) == 0) return 0;
    config_key_expected(k, expected, elen);
    return -1;
}

bool config_section_known(const char *section)
{
    for (size_t i = 0; i < sizeof config_sections / sizeof config_sections[0]; i++)
        if (strcmp(section, config_sections[i]) == 0) return true;
    return false;
}

const config_key_t *config_key_find(const char *section, const char *name)
{
    for (size_t i = 0; i < CONFIG_NKEYS; i++)
        if (strcmp(config_keys[i].section, section) == 0 && strcmp(config_keys[i].name, name) == 0)
            return &config_keys[i];
    return NULL;
}
