/* main.c - herald-broker: configuration, the lws loop, timers, signals, start-up state. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"
#include "reload.h"
#include "revoke.h"

broker_t *g_broker;
static volatile sig_atomic_t stop_signal, reload_signal;

static void on_signal(int sig)
{
    if (sig == SIGHUP)
        reload_signal = 1;
    else
        stop_signal = sig;
    if (g_broker && g_broker->ctx) lws_cancel_service(g_broker->ctx);
}

static void tick_cb(lws_sorted_usec_list_t *sul)
{
    broker_t *b = lws_container_of(sul, broker_t, sul_tick);
    bk_rings_heartbeat(b);
    bk_revoke_tick(b);
    lws_sul_schedule(b->ctx, 0, &b->sul_tick, tick_cb, LWS_US_PER_SEC);
}

static int mkdir_p(const char *dir)
{
    char tmp[4352];
    if (snprintf(tmp, sizeof tmp, "%s", dir) >= (int)sizeof tmp) return -1;
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(tmp, 0755) < 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    return mkdir(tmp, 0755) < 0 && errno != EEXIST ? -1 : 0;
}

/* Rings left by a previous broker keep their positions: re-open them as producer now so
 * their gateways' hello re-attaches (and heraldctl sees a live producer). */
static void reopen_rings(broker_t *b)
{
    DIR *d = opendir("/dev/shm");
    if (!d) return;
    char prefix[80];
    snprintf(prefix, sizeof prefix, "%s.gw", b->cfg.shm_prefix);
    size_t pl = strlen(prefix);
    for (struct dirent *e; (e = readdir(d));) {
        unsigned id;
        char tail[8];
        if (strncmp(e->d_name, prefix, pl) || sscanf(e->d_name + pl, "%u%7s", &id, tail) != 2 ||
            strcmp(tail, ".ring") || id >= BK_MAX_GATEWAYS || b->gws[id])
            continue;
        herald_error_t err;
        bk_gateway_t *g = calloc(1, sizeof *g);
        if (!g) abort();
        g->id = id;
        if (ring_open(&g->ring, e->d_name, RING_PRODUCER, b->cfg.ring_bytes, id, &err) < 0) {
            log_warn("ring %s not re-attached: %s", e->d_name, err.message);
            free(g);
            continue;
        }
        b->gws[id] = g;
        log_info("ring %s re-attached as producer", e->d_name);
    }
    closedir(d);
}

static int usage(const char *argv0)
{
    fprintf(stderr, "usage: %s -c CONFIG [-o section.key=value ...]\n", argv0);
    return 2;
}

static const char *config_path;

static int load_config(broker_t *b, int argc, char **argv)
{
    const char *path = NULL;
    int opt;
    herald_error_t err;
    while ((opt = getopt(argc, argv, "c:o:h")) != -1) {
        if (opt == 'c')
            path = optarg;
        else if (opt != 'o')
            return usage(argv[0]);
    }
    config_defaults(&b->cfg);
    config_path = config_default_path(path);
    if (config_load(&b->cfg, config_path, &err) < 0) {
        fprintf(stderr, "herald-broker: %s\n", err.message);
        return 1;
    }
    optind = 1;
    while ((opt = getopt(argc, argv, "c:o:h")) != -1) {
        if (opt != 'o') continue;
        char key[128];
        const char *eq = strchr(optarg, '=');
        if (!eq || (size_t)(eq - optarg) >= sizeof key) {
            fprintf(stderr, "herald-broker: -o expects section.key=value, got %s\n", optarg);
            return 1;
        }
        memcpy(key, optarg, (size_t)(eq - optarg));
        key[eq - optarg] = '\0';
        if (config_set(&b->cfg, key, eq + 1, &err) < 0) {
            fprintf(stderr, "herald-broker: %s\n", err.message);
            return 1;
        }
    }
    return 0;
}

static const struct lws_protocols protocols[] = {
    {"http", NULL, 0, 0, 0, NULL, 0}, /* filled from bk_http_protocol */
    {"herald-raw", NULL, 0, 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

int main(int argc, char **argv)
{
    static broker_t broker;
    broker_t *b = &broker;
    herald_error_t err = {0};
    /* before the config is read: a SIGHUP from then on reloads it once the loop runs */
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGHUP, &sa, NULL);
    int rc = load_config(b, argc, argv);
    if (rc) return rc;
    log_init("broker", -1);
    log_set_level((log_level_t)b->cfg.log_level);
    config_log_dev_secret(&b->cfg);
    g_broker = b;

    signal(SIGPIPE, SIG_IGN);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    if (b->cfg.broker_tls_cert[0]) {
        /* never serve plain HTTP where HTTPS was asked for */
        log_error("broker.tls_cert is set but this broker serves plain HTTP only; unset it, or "
                  "terminate TLS in front of the broker (deploy/nginx/herald-tls.conf)");
        return 1;
    }
    if (mkdir_p(b->cfg.runtime_dir) < 0) {
        log_error("cannot create runtime.dir %s: %s", b->cfg.runtime_dir, strerror(errno));
        return 1;
    }
    bk_queue_init(b);
    if (bk_users_init(b) < 0 || bk_dedup_init(b, b->cfg.dedup_window) < 0) {
        log_error("out of memory at start-up");
        return 1;
    }
    if (bk_journal_open(b, &err) < 0) {
        log_error("%s", err.message);
        return 1;
    }
    reopen_rings(b);

    struct lws_protocols protos[3];
    memcpy(protos, protocols, sizeof protos);
    protos[0] = bk_http_protocol;
    protos[1] = bk_raw_protocol;
    lws_set_log_level(LLL_ERR, NULL);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = b->cfg.broker_http.port;
    info.iface = b->cfg.broker_http.host;
    info.protocols = protos;
    info.options = LWS_SERVER_OPTION_DISABLE_IPV6;
    info.keepalive_timeout = 60;
    info.timeout_secs = 60;
    b->ctx = lws_create_context(&info);
    if (!b->ctx) {
        log_error("cannot serve HTTP on %s:%u (port in use?)", b->cfg.broker_http.host,
                  b->cfg.broker_http.port);
        return 1;
    }
    b->vh = lws_get_vhost_by_name(b->ctx, "default");
    /* Protocols are initialised when lws's system state reaches OPERATIONAL, normally from a
     * timer in the first service pass; a request accepted before that would find no
     * protocol bound. Reach it now, before any socket is served. */
    lws_state_manager_t *sm = lws_system_get_state_manager(b->ctx);
    if (sm) lws_state_transition_steps(sm, LWS_SYSTATE_OPERATIONAL);
    if (bk_native_listen(b, &err) < 0) {
        log_error("%s", err.message);
        lws_context_destroy(b->ctx);
        return 1;
    }
    lws_sul_schedule(b->ctx, 0, &b->sul_tick, tick_cb, LWS_US_PER_SEC);
    log_info("broker up: http %s:%u, native %s/broker.sock%s, control %s/control.sock",
             b->cfg.broker_http.host, b->cfg.broker_http.port, b->cfg.runtime_dir,
             b->cfg.broker_tcp.port ? " + tcp" : "", b->cfg.runtime_dir);

    while (!stop_signal && lws_service(b->ctx, 0) >= 0) {
        if (reload_signal) {
            reload_signal = 0;
            bk_reload_from(b, config_path, argc, argv);
        }
    }
    log_info("broker stopping (signal %d)", (int)stop_signal);
    lws_context_destroy(b->ctx);
    bk_journal_flush(b);
    bk_journal_close(b);
    bk_gateways_free(b);
    bk_users_free(b);
    bk_items_release();
    bk_dedup_free(b);
    bk_revoke_free(b);
    return 0;
}
