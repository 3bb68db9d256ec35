/* main.c - herald-broker: configuration, the lws loop, timers, signals, start-up state. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"
#include "herald_time.h"

broker_t *g_broker;
static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
    stop_signal = sig;
    if (g_broker && g_broker->ctx) lws_cancel_service(g_broker->ctx);
}

static void tick_cb(lws_sorted_usec_list_t *sul)
{
    broker_t *b = lws_container_of(sul, broker_t, sul_tick);
    bk_rings_heartbeat(b);
    if (bk_users_sweep(b, now_ns())) bk_journal_flush(b); /* the floors it raised */
    lws_sul_schedule(b->ctx, 0, &b->sul_tick, tick_cb, LWS_US_PER_SEC);
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
    if (config_load(&b->cfg, config_default_path(path), &err) < 0) {
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
    int rc = load_config(b, argc, argv);
    if (rc) return rc;
    log_init("broker", -1);
    log_set_level((log_level_t)b->cfg.log_level);
    g_broker = b;

    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    if (config_check_exposure(&b->cfg, &err) < 0 ||
        rtdir_open(&b->rt, b->cfg.runtime_dir, b->cfg.runtime_group, &err) < 0) {
        log_error("%s", err.message);
        return 1;
    }
    bk_queue_init(b);
    if (bk_users_init(b) < 0 || bk_dedup_init(b, b->cfg.dedup_window) < 0) {
        log_error("out of memory at start-up");
        return 1;
    }
    b->mem_fixed += bk_dedup_bytes(b);
    if (b->mem_fixed >= b->cfg.max_memory / 2) {
        log_error("broker.max_memory %llu bytes: the dedup window (broker.dedup_window %u) and "
                  "fixed tables take %llu of it already; raise it or lower the window",
                  (unsigned long long)b->cfg.max_memory, b->cfg.dedup_window,
                  (unsigned long long)b->mem_fixed);
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
    }
    log_info("broker stopping (signal %d)", (int)stop_signal);
    lws_context_destroy(b->ctx);
    bk_journal_flush(b);
    bk_journal_close(b);
    bk_gateways_free(b);
    bk_users_free(b);
    bk_items_release();
    bk_dedup_free(b);
    rtdir_close(&b->rt);
    return 0;
}
