/* config.c - strict INI configuration (libinih): the protocol.md 8 keys, their defaults, bounds and
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
#include "config_keys.h"
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
    if (config_key_apply(cfg, k, value, expected, sizeof expected) == 0) return 0;
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
