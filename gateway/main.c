/* main.c - herald-gateway: command line, configuration, the lws context (WebSocket + HTTP on
 * gateway.listen port + id) on a libev loop, and signals. The rest is loop.c and the
 * modules under it. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>

#include "auth.h"
#include "control.h"
#include "deliver.h"
#include "gw.h"
#include "http.h"
#include "log.h"
#include "loop.h"
#include "reload.h"
#include "session.h"
#include "users.h"

static struct ev_loop *gw_loop;

/* Before each wait of the loop: what the pass queued for the broker goes out in one send. */
static void gw_on_prepare(struct ev_loop *loop, ev_prepare *w, int revents)
{
    (void)loop;
    (void)revents;
    gw_control_flush_deferred(w->data);
}

static void gw_on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)w;
    (void)revents;
    ev_break(loop, EVBREAK_ALL);
}

/* A SIGHUP that arrives while the gateway starts (before the loop watches it) is kept
 * here and served once the loop's watcher is in place. */
static volatile sig_atomic_t gw_hup_early;

static void gw_on_early_hup(int sig)
{
    (void)sig;
    gw_hup_early = 1;
}

/* SIGHUP (systemctl reload): re-read the config, keep every session. */
static void gw_on_hup(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)loop;
    (void)revents;
    gw_reload(w->data);
}

static const struct lws_extension gw_extensions[] = {
    {"permessage-deflate", lws_extension_callback_pm_deflate,
     "permessage-deflate; client_no_context_takeover; client_max_window_bits"},
    {NULL, NULL, NULL},
};

/* protocols[0] serves plain HTTP and gates upgrades; herald.json is the default subprotocol
 * (pvo "default") for clients that name none. `user` != NULL marks the msgpack protocol.
 * tx_packet_size: lws sends at most this (else rx_buffer_size) + LWS_PRE + 4 bytes per
 * send() and buffers the rest for POLLOUT, so with a small receive buffer it must be given,
 * or a coalesced write of 64 KiB would go out in 532-byte sends. */
static const struct lws_protocols gw_protocols[] = {
    {"http", gw_http_callback, 0, 0, 0, NULL, 0},
    {"herald.json", gw_loop_session_callback, sizeof(gw_session_t), GW_LWS_RX_BUF, 0, NULL,
     GW_WRITE_COALESCE},
    {"herald.msgpack", gw_loop_session_callback, sizeof(gw_session_t), GW_LWS_RX_BUF, 0, (void *)1,
     GW_WRITE_COALESCE},
    {"gw-uring", gw_loop_uring_callback, 0, 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static const struct lws_protocol_vhost_options gw_pvo_default = {NULL, NULL, "default", "1"};
static const struct lws_protocol_vhost_options gw_pvo = {NULL, &gw_pvo_default, "herald.json", ""};

static void gw_usage(void)
{
    fprintf(stderr, "usage: herald-gateway --id N [-c CONFIG] [-o section.key=value ...]\n");
}

static int gw_parse_args(gw_t *g, int argc, char **argv)
{
    herald_error_t err;
    int have_id = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-c") && i + 1 < argc)
            g->config_path = argv[++i];
        else if (!strcmp(argv[i], "--id") && i + 1 < argc) {
            char *end;
            unsigned long id = strtoul(argv[++i], &end, 10);
            if (*end || id > 1023) {
                fprintf(stderr, "herald-gateway: bad --id %s\n", argv[i]);
                return -1;
            }
            g->id = (unsigned)id;
            have_id = 1;
        } else if (!strcmp(argv[i], "-o") && i + 1 < argc) {
            i++;
        } else {
            gw_usage();
            return -1;
        }
    }
    if (!have_id) {
        gw_usage();
        return -1;
    }
    g->config_path = config_default_path(g->config_path);
    g->argc = argc;
    g->argv = argv;
    if (gw_reload_read(g, &g->cfg, &err) < 0 || gw_auth_configure(&g->cfg, &g->auth, &err) < 0 ||
        gw_reload_delivery(g, &g->cfg, &err) < 0) {
        fprintf(stderr, "herald-gateway: config: %s\n", err.message);
        return -1;
    }
    g->max_connections = gw_reload_max_connections(&g->cfg);
    return 0;
}

/* lws runs on a libev loop (epoll): with thousands of sessions lws's own poll() backend
 * would scan every descriptor on each wake-up. */
static int gw_lws_start(gw_t *g)
{
    struct lws_context_creation_info info;
    static void *loops[1];
    memset(&info, 0, sizeof info);
    gw_loop = ev_default_loop(EVBACKEND_EPOLL);
    if (!gw_loop) {
        log_error("libev: no epoll loop");
        return -1;
    }
    loops[0] = gw_loop;
    info.foreign_loops = loops;
    info.port = g->cfg.gateway_listen.port + (int)g->id;
    info.iface = g->cfg.gateway_listen.host[0] ? g->cfg.gateway_listen.host : NULL;
    info.protocols = gw_protocols;
    info.pvo = &gw_pvo;
    info.extensions = gw_extensions;
    info.user = g;
    info.pt_serv_buf_size = 64 * 1024;
    info.options = LWS_SERVER_OPTION_DISABLE_IPV6 | LWS_SERVER_OPTION_LIBEV;
    info.timeout_secs = 10;
    if (g->cfg.gateway_tls_cert[0]) {
        /* wss:// only: a plain connection to this port fails its TLS handshake */
        const char *files[] = {g->cfg.gateway_tls_cert, g->cfg.gateway_tls_key};
        for (size_t i = 0; i < 2; i++)
            if (access(files[i], R_OK) < 0) {
                log_error("gateway.%s %s: %s", i ? "tls_key" : "tls_cert", files[i],
                          strerror(errno));
                return -1;
            }
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        info.ssl_cert_filepath = g->cfg.gateway_tls_cert;
        info.ssl_private_key_filepath = g->cfg.gateway_tls_key;
    }
    g->lws = lws_create_context(&info);
    if (!g->lws) {
        log_error("cannot listen on %s:%d%s", info.iface ? info.iface : "*", info.port,
                  g->cfg.gateway_tls_cert[0] ? " (or the TLS certificate/key did not load)" : "");
        return -1;
    }
    g->vh = lws_get_vhost_by_name(g->lws, "default");
    if (!g->vh) {
        log_error("lws default vhost missing");
        return -1;
    }
    /* lws initialises the protocols (and binds herald.json as the vhost default) only when
     * its system state reaches OPERATIONAL, which on a foreign loop happens from a timer in
     * the first loop pass. A WebSocket upgrade served before that is bound to no protocol:
     * the client gets its 101 but LWS_CALLBACK_ESTABLISHED never reaches us and the session
     * hangs. So reach OPERATIONAL now, before the first connection can be accepted. */
    lws_state_manager_t *sm = lws_system_get_state_manager(g->lws);
    if (sm) lws_state_transition_steps(sm, LWS_SYSTATE_OPERATIONAL);
    log_info("listening on %s:%d (%s)", info.iface ? info.iface : "*", info.port,
             g->cfg.gateway_tls_cert[0] ? "wss, TLS" : "ws, plain");
    return 0;
}

static void gw_lws_log(int level, const char *line)
{
    log_write(level == LLL_ERR ? LOG_ERROR : LOG_WARN, "lws: %.*s", (int)strcspn(line, "\n"), line);
}

int main(int argc, char **argv)
{
    static gw_t gw;
    gw_t *g = &gw;
    int rc = 1;

    /* until the loop handles it, a reload signal must not kill a starting gateway */
    struct sigaction early = {.sa_handler = gw_on_early_hup};
    sigaction(SIGHUP, &early, NULL);
    if (gw_parse_args(g, argc, argv) < 0) return 2;
    log_init("gateway", (int)g->id);
    log_set_level((log_level_t)g->cfg.log_level);
    config_log_dev_secret(&g->cfg);
    lws_set_log_level(LLL_ERR, gw_lws_log);
    signal(SIGPIPE, SIG_IGN);

    char hb_name[HB_NAME_MAX + 1];
    herald_error_t err;
    snprintf(hb_name, sizeof hb_name, "gateway%u", g->id);
    if (hb_open(&g->hb, g->cfg.shm_prefix, hb_name, &err) < 0) {
        log_error("%s", err.message);
        return 1;
    }
    jbuf_init(&g->jb, LWS_PRE);
    msgpack_unpacked_init(&g->unp);
    /* Session ids stay unique across restarts of this gateway (the broker may still hold
     * routes of the previous incarnation until it sees the control socket close). */
    gw_loop_init(g, ((uint64_t)time(NULL) & 0xffffffffu) << 20);
    if (gw_lws_start(g) < 0) goto out;
    if (gw_loop_start(g) < 0) goto out;

    ev_signal sig_term, sig_int, sig_hup;
    ev_prepare prep;
    ev_prepare_init(&prep, gw_on_prepare);
    prep.data = g;
    ev_prepare_start(gw_loop, &prep);
    ev_signal_init(&sig_term, gw_on_signal, SIGTERM);
    ev_signal_init(&sig_int, gw_on_signal, SIGINT);
    ev_signal_init(&sig_hup, gw_on_hup, SIGHUP);
    sig_hup.data = g;
    ev_signal_start(gw_loop, &sig_term);
    ev_signal_start(gw_loop, &sig_int);
    hb_notify_ready(&g->hb);
    ev_signal_start(gw_loop, &sig_hup);
    if (gw_hup_early) gw_reload(g); /* the config may have changed after we read it */
    ev_run(gw_loop, 0);
    log_info("stopping: %zu sessions", gw_users_n_sessions(g->users));
    rc = 0;
out:
    gw_loop_stop(g);
    if (g->lws) lws_context_destroy(g->lws);
    gw_loop_fini(g);
    msgpack_unpacked_destroy(&g->unp);
    jbuf_free(&g->jb);
    hb_close(&g->hb);
    return rc;
}
