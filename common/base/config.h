/* config.h - the INI configuration (libinih): every SPEC 8 key, defaults, strict parsing. */
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
    /* [runtime] */
    char runtime_dir[256];
    char shm_prefix[64];
    char runtime_group[64]; /* "" = none: sockets 0600; else broker.sock 0660 for this group */
    /* [broker] */
    host_port_t broker_http;
    host_port_t broker_tcp; /* port 0 = off */
    char broker_api_key[128];
    uint32_t dedup_window;
    uint32_t queue_capacity[HERALD_PRIORITIES];
    uint32_t history_size;
    uint32_t history_age_s;
    uint64_t max_memory; /* users + history + dedup bound (SPEC 12) */
    /* [gateway] */
    uint32_t gateway_count;
    host_port_t gateway_listen; /* base port; gateway i listens on port + i */
    uint64_t ring_bytes;
    uint32_t batch_size;
    uint32_t flush_ms[3]; /* P1, P2, P3 */
    uint32_t ping_interval_s;
    uint32_t session_timeout_s;
    uint64_t max_pending_bytes;
    /* [auth] */
    char auth_secret[256];
    /* [log] */
    int log_level;
    char path[512]; /* file this was loaded from ("" = defaults only) */
} herald_config_t;

/* Fill cfg with SPEC 8 defaults (auth_secret empty; runtime_dir from rtdir_default). */
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

/* The exposure rule of SPEC 12, checked by the programs that open listeners once every
 * override is applied: a broker.http or broker.tcp on a non-loopback address needs
 * broker.api_key. Returns 0, or HERR_BAD_VALUE naming the key with a message saying why. */
int config_check_exposure(const herald_config_t *cfg, herald_error_t *err);

/* True for 127.0.0.0/8, ::1 and "localhost". */
bool config_host_is_loopback(const char *host);

/* Sizes like "16M", "4M", "512K", "1G", "4096". Returns 0 or -1. */
int config_parse_size(const char *s, uint64_t *out);

/* "host:port" -> hp. Returns 0 or -1. */
int config_parse_host_port(const char *s, host_port_t *hp);

#endif
