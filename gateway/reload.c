/* reload.c - the gateway's configuration, read at start and again on SIGHUP (systemctl
 * reload): secrets, log level and limits change in place and every session stays; keys that
 * need a restart (listen address, ring, runtime dir, TLS files) keep their old values with a
 * warning; a config that fails to load is logged and the running one kept. */
#include "reload.h"

#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "auth.h"
#include "deliver.h"
#include "log.h"
#include "users.h"

/* Descriptors kept out of the connection cap when gateway.max_connections is 0 (auto):
 * listener, io_uring, ring, control socket, /metrics scrapes, lws internals. */
#define GW_FD_RESERVE 64

int gw_reload_read(const gw_t *g, herald_config_t *cfg, herald_error_t *err)
{
    config_defaults(cfg);
    if (config_load(cfg, g->config_path, err) < 0) return -1;
    /* -o overrides apply after the file, in order */
    for (int i = 1; i < g->argc; i++) {
        if (strcmp(g->argv[i], "-o") || i + 1 >= g->argc) continue;
        char kv[512];
        snprintf(kv, sizeof kv, "%s", g->argv[++i]);
        char *eq = strchr(kv, '=');
        if (!eq) return herr_set(err, HERR_BAD_VALUE, kv, "-o %s: expected section.key=value", kv);
        *eq = '\0';
        if (config_set(cfg, kv, eq + 1, err) < 0) return -1;
    }
    return config_check_pairs(cfg, err);
}

int gw_reload_delivery(gw_t *g, const herald_config_t *cfg, herald_error_t *err)
{
    model_masks_t m;
    if (model_delivery_masks(cfg, &m, err) < 0) return -1;
    g->masks = m;
    g->conflate_bytes = config_conflate_bytes(cfg);
    return 0;
}

uint32_t gw_reload_max_connections(const herald_config_t *cfg)
{
    if (cfg->max_connections) return cfg->max_connections;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY) return 1000000;
    return rl.rlim_cur > GW_FD_RESERVE + 1 ? (uint32_t)(rl.rlim_cur - GW_FD_RESERVE) : 1;
}

/* Keys read only at start: a changed value is reported and the running one kept. */
#define GW_KEEP(n, old, field, name)                                                               \
    do {                                                                                           \
        if (memcmp(&(n)->field, &(old)->field, sizeof(n)->field) != 0) {                           \
            log_warn("reload: %s changed; it applies when the gateway restarts", name);            \
            memcpy(&(n)->field, &(old)->field, sizeof(n)->field);                                  \
        }                                                                                          \
    } while (0)

int gw_reload(gw_t *g)
{
    static herald_config_t n; /* large: not on the loop's stack */
    jwt_policy_t auth;
    herald_error_t err;
    model_masks_t masks;
    if (gw_reload_read(g, &n, &err) < 0 || gw_auth_configure(&n, &auth, &err) < 0 ||
        model_delivery_masks(&n, &masks, &err) < 0) {
        g->c.reload_errors++;
        log_error("reload of %s refused, the running configuration stays: %s", g->config_path,
                  err.message);
        return -1;
    }
    GW_KEEP(&n, &g->cfg, runtime_dir, "runtime.dir");
    GW_KEEP(&n, &g->cfg, shm_prefix, "runtime.shm_prefix");
    GW_KEEP(&n, &g->cfg, gateway_listen, "gateway.listen");
    GW_KEEP(&n, &g->cfg, ring_bytes, "gateway.ring_bytes");
    GW_KEEP(&n, &g->cfg, gateway_tls_cert, "gateway.tls_cert");
    GW_KEEP(&n, &g->cfg, gateway_tls_key, "gateway.tls_key");
    bool secret_changed = strcmp(n.auth_secret, g->cfg.auth_secret) != 0;
    if (memcmp(n.flush_ms, g->cfg.flush_ms, sizeof n.flush_ms) != 0) {
        /* Each deadline list is sorted because all its entries got the same delay: flush
         * what waits under the old delays (early is allowed) before new ones apply. */
        gw_deliver_flush_all(g);
    }
    g->cfg = n;
    g->auth = auth;
    gw_reload_delivery(g, &n, &err); /* checked above */
    g->max_connections = gw_reload_max_connections(&n);
    log_set_level((log_level_t)n.log_level);
    config_log_dev_secret(&n);
    g->c.reloads++;
    log_info("reloaded %s: %u secret(s)%s, log level %d, max_pending_bytes %llu, "
             "max_sessions_per_user %u, max_connections %u; %zu sessions kept",
             g->config_path, auth.n_secrets, secret_changed ? " (auth.secret changed)" : "",
             n.log_level, (unsigned long long)n.max_pending_bytes, n.max_sessions_per_user,
             g->max_connections, gw_users_n_sessions(g->users));
    return 0;
}
