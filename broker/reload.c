/* reload.c - SIGHUP on the broker (systemctl reload): re-read the config and apply what can
 * change in place (api key, log level, queue bounds, history bounds, [auth]); the rest keeps
 * its running value until a restart. No connection, session or queued notification is
 * touched. */
#include "reload.h"

#include <string.h>

#include "acks.h"
#include "log.h"
#include "pipeline.h"

/* A key read only at start: report a change and keep the running value. */
#define BK_KEEP(n, old, field, name)                                                               \
    do {                                                                                           \
        if (memcmp(&(n)->field, &(old)->field, sizeof(n)->field) != 0) {                           \
            log_warn("reload: %s changed; it applies when the broker restarts", name);             \
            memcpy(&(n)->field, &(old)->field, sizeof(n)->field);                                  \
        }                                                                                          \
    } while (0)

void bk_reload(broker_t *b, const herald_config_t *cfg)
{
    static herald_config_t n; /* large: off the loop's stack */
    n = *cfg;
    BK_KEEP(&n, &b->cfg, runtime_dir, "runtime.dir");
    BK_KEEP(&n, &b->cfg, shm_prefix, "runtime.shm_prefix");
    BK_KEEP(&n, &b->cfg, runtime_group, "runtime.group");
    if (n.max_memory < 2 * b->mem_fixed) { /* as at start: the fixed tables fit in half */
        log_warn("reload: broker.max_memory %llu is below twice the fixed tables (%llu); kept "
                 "at %llu",
                 (unsigned long long)n.max_memory, (unsigned long long)b->mem_fixed,
                 (unsigned long long)b->cfg.max_memory);
        n.max_memory = b->cfg.max_memory;
    }
    BK_KEEP(&n, &b->cfg, broker_http, "broker.http");
    BK_KEEP(&n, &b->cfg, broker_tcp, "broker.tcp");
    BK_KEEP(&n, &b->cfg, dedup_window, "broker.dedup_window");
    BK_KEEP(&n, &b->cfg, broker_tls_cert, "broker.tls_cert");
    BK_KEEP(&n, &b->cfg, broker_tls_key, "broker.tls_key");
    BK_KEEP(&n, &b->cfg, ring_bytes, "gateway.ring_bytes");
    BK_KEEP(&n, &b->cfg, gateway_count, "gateway.count");
    BK_KEEP(&n, &b->cfg, gateway_listen, "gateway.listen");
    BK_KEEP(&n, &b->cfg, gateway_tls_cert, "gateway.tls_cert");
    BK_KEEP(&n, &b->cfg, gateway_tls_key, "gateway.tls_key");
    bool key_changed = strcmp(n.broker_api_key, b->cfg.broker_api_key) != 0;
    b->cfg = n;
    for (int p = 0; p < HERALD_PRIORITIES; p++)
        bk_pipeline_set_cap(
            b, p, n.queue_capacity[p]); /* a lower bound refuses new publishes until drained */
    log_set_level((log_level_t)n.log_level);
    config_log_dev_secret(&n);
    b->c.reloads++;
    log_info("reloaded %s: log level %d, queues %u,%u,%u,%u, history %u / %u s%s", n.path,
             n.log_level, n.queue_capacity[0], n.queue_capacity[1], n.queue_capacity[2],
             n.queue_capacity[3], n.history_size, n.history_age_s,
             key_changed ? ", broker.api_key changed" : "");
}

int bk_reload_from(broker_t *b, const char *path, int argc, char **argv)
{
    static herald_config_t n;
    herald_error_t err;
    int rc = config_load(&n, path, &err);
    for (int i = 1; rc == 0 && i < argc; i++) {
        const char *kv;
        if (strcmp(argv[i], "-o") == 0 && i + 1 < argc)
            kv = argv[++i];
        else if (strncmp(argv[i], "-o", 2) == 0 && argv[i][2])
            kv = argv[i] + 2; /* getopt's attached form */
        else
            continue;
        char key[128];
        const char *eq = strchr(kv, '=');
        if (!eq || (size_t)(eq - kv) >= sizeof key) {
            rc = herr_set(&err, HERR_BAD_VALUE, kv, "-o %s: expected section.key=value", kv);
            break;
        }
        memcpy(key, kv, (size_t)(eq - kv));
        key[eq - kv] = '\0';
        rc = config_set(&n, key, eq + 1, &err);
    }
    model_masks_t masks;
    if (rc == 0) rc = config_check_pairs(&n, &err);
    if (rc == 0) rc = config_check_exposure(&n, &err); /* no key on an exposed listener */
    if (rc == 0) rc = model_delivery_masks(&n, &masks, &err);
    if (rc < 0) {
        b->c.reload_errors++;
        log_error("reload of %s refused, the running configuration stays: %s", path, err.message);
        return -1;
    }
    bk_reload(b, &n);
    bk_acks_configure(b, &masks);
    return 0;
}
