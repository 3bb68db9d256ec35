/* config.h - the INI configuration (libinih): every protocol.md 8 key, defaults, strict parsing. */
#ifndef HERALD_CONFIG_H
#define HERALD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "herald_limits.h"

typedef struct {
    char host[64];
    uint16_t port; /* 0 = off */
} host_port_t;

typedef struct {
    /* [cluster] (protocol.md 11) */
    char cluster_nats[512]; /* comma-separated NATS URLs, "" = single node (off) */
    uint32_t cluster_node_id;
    uint32_t cluster_partitions;
    uint32_t cluster_replicas;
    /* [runtime] */
    char runtime_dir[256];
    char shm_prefix[64];
    char runtime_group[64]; /* "" = none: sockets 0600; else broker.sock 0660 for this group */
    uint32_t idle_spin_us, idle_yield_us; /* runtime.idle: 0,0 = sleep */
    char web_dir[256]; /* static files of the web pages; "" = HERALD_WEB_DIR (config_web_dir) */
    /* [broker] */
    host_port_t broker_http;
    host_port_t broker_tcp; /* port 0 = off */
    char broker_api_key[128];
    uint32_t dedup_window;
    uint32_t queue_capacity[HERALD_PRIORITIES];
    uint32_t history_size;
    uint32_t history_age_s;
    uint64_t max_memory;           /* users + history + dedup bound (protocol.md 12) */
    uint32_t http_timeout_s;       /* a request must complete within this */
    uint32_t http_idle_s;          /* idle keep-alive connections closed after this */
    uint64_t http_body_max;        /* larger bodies get 413 */
    uint32_t http_max_connections; /* HTTP connections open at once */
    /* [gateway] */
    uint32_t gateway_count;
    host_port_t gateway_listen; /* base port; gateway i listens on port + i */
    uint64_t ring_bytes;
    uint32_t batch_size;
    uint32_t flush_ms[3]; /* P1, P2, P3 */
    uint32_t ping_interval_s;
    uint32_t session_timeout_s;
    uint64_t max_pending_bytes;
    uint32_t max_sessions_per_user; /* past it the user's oldest session is closed (4009) */
    uint32_t max_connections;       /* WebSocket sessions per gateway; 0 = fd limit - reserve */
    uint32_t resumes_per_minute;    /* resume ops one session may send per minute */
    uint64_t conflate_bytes;    /* pending output past which conflation starts; 0 = max_pending/4 */
    char gateway_tls_cert[256]; /* PEM; with tls_key: serve wss:// ("" = plain ws://) */
    char gateway_tls_key[256];
    /* [broker] TLS for the HTTP API (served by the broker's HTTP server) */
    char broker_tls_cert[256];
    char broker_tls_key[256];
    /* [auth] */
    char auth_secret[256];
    char auth_previous_secrets[1024]; /* comma-separated; verified, never used to sign */
    bool auth_require_exp;
    uint32_t auth_leeway_s;  /* applies to exp, nbf and iat */
    char auth_audience[128]; /* "" = aud not checked */
    char auth_issuer[128];   /* "" = iss not checked */
    bool auth_allow_dev_secret;
    /* [delivery] (protocol.md 14): message_type lists are checked against the type table by
     * model_delivery_masks (common/wire/model.h), which the processes call after loading */
    char conflate_types[512];     /* comma-separated conflatable types ("" = none) */
    char ack_required_types[512]; /* comma-separated types tracked for acknowledgement */
    uint32_t ack_timeout_ms;      /* an unacknowledged one is re-sent after this */
    uint32_t ack_max_attempts;    /* sends in all (the first included) before giving up */
    /* [slo] */
    uint32_t slo_ms[HERALD_PRIORITIES]; /* latency objectives per priority (protocol.md 14) */
    /* [log] */
    int log_level;
    /* [supervisor] */
    uint32_t hang_s; /* a child silent this long is killed and restarted; 0 = never */
    char path[512];  /* file this was loaded from ("" = defaults only) */
} herald_config_t;

/* The development secret deploy/herald.ini ships with. It is public, so the processes that
 * verify tokens refuse it unless auth.allow_dev_secret is true. */
#define HERALD_DEV_SECRET "herald-development-secret-NOT-FOR-PRODUCTION"

/* Fill cfg with protocol.md 8 defaults (auth_secret empty; runtime_dir from rtdir_default). */
void config_defaults(herald_config_t *cfg);

/* Load an INI file over the defaults. Unknown section/key or bad value -> HERR_BAD_VALUE
 * with err->field = "section.key" and a message naming file, line and the expected form.
 * A missing file -> HERR_IO. An empty auth.secret after loading -> HERR_MISSING_FIELD. */
int config_load(herald_config_t *cfg, const char *path, herald_error_t *err);

/* Apply one "section.key=value" override (command-line -o flags). Same errors. */
int config_set(herald_config_t *cfg, const char *dotted_key, const char *value,
               herald_error_t *err);

/* Resolve the config path: explicit, else $HERALD_CONFIG, else "deploy/herald.ini". */
const char *config_default_path(const char *explicit_path);

/* The exposure rule of protocol.md 12, checked by the programs that open listeners once every
 * override is applied: a broker.http or broker.tcp on a non-loopback address needs
 * broker.api_key. Returns 0, or HERR_BAD_VALUE naming the key with a message saying why. */
int config_check_exposure(const herald_config_t *cfg, herald_error_t *err);

/* True for 127.0.0.0/8, ::1 and "localhost". */
bool config_host_is_loopback(const char *host);
/* The directory of the web pages' static files: runtime.web_dir, or when empty the
 * installed <datadir>/herald/web (HERALD_WEB_DIR, set by the build). */
const char *config_web_dir(const herald_config_t *cfg);

/* Sizes like "16M", "4M", "512K", "1G", "4096". Returns 0 or -1. */
int config_parse_size(const char *s, uint64_t *out);

/* Keys that only make sense together (tls_cert + tls_key), checked once every override is
 * applied (an -o may give the second half). Returns 0 or HERR_BAD_VALUE naming the key. */
int config_check_pairs(const herald_config_t *cfg, herald_error_t *err);

/* True when auth.secret or one of auth.previous_secrets is HERALD_DEV_SECRET. */
bool config_uses_dev_secret(const herald_config_t *cfg);

/* Log a loud warning when cfg uses the development secret with auth.allow_dev_secret. */
void config_log_dev_secret(const herald_config_t *cfg);

/* The conflation threshold in effect: gateway.conflate_bytes, or max_pending_bytes / 4. */
static inline uint64_t config_conflate_bytes(const herald_config_t *cfg)
{
    return cfg->conflate_bytes ? cfg->conflate_bytes : cfg->max_pending_bytes / 4;
}

/* "host:port" -> hp. Returns 0 or -1. */
int config_parse_host_port(const char *s, host_port_t *hp);

#endif
