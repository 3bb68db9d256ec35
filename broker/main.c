/* main.c - herald-broker: configuration, the event loop, timers, signals, start-up state. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "acks.h"
#include "broker.h"
#include "clustered.h"
#include "core.h"
#include "dedup.h"
#include "herald_time.h"
#include "http.h"
#include "items.h"
#include "journal.h"
#include "native.h"
#include "pipeline.h"
#include "presence.h"
#include "reload.h"
#include "revoke.h"
#include "route.h"
#include "users.h"

static const char *config_path;
static int g_argc; /* for SIGHUP: the reload re-reads the file and re-applies -o */
static char **g_argv;

static void on_signal(loop_t *l, int sig, void *ctx)
{
    broker_t *b = ctx;
    if (sig == SIGHUP) {
        bk_reload_from(b, config_path, g_argc, g_argv);
        return;
    }
    log_info("broker stopping (signal %d)", sig);
    loop_stop(l);
}

static void tick_cb(loop_t *l, loop_timer_t *t)
{
    broker_t *b = t->ctx;
    bk_route_heartbeat(b);
    if (bk_users_sweep(b, now_ns())) bk_journal_flush(b); /* the floors it raised */
    bk_http_sweep(b);
    bk_revoke_tick(b);
    bk_journal_tick(b);
    hb_beat(&b->hb, loop_now(l));
    loop_timer_at(l, t, loop_now(l) + 1000000000ull);
}

/* End of every loop pass: one drain round for everything read in it, then the answers. */
static void pass_end(loop_t *l, void *ctx)
{
    broker_t *b = ctx;
    hb_beat(&b->hb, loop_now(l));
    bk_drain(b);
    bk_native_flush(b);
    bk_http_flush(b);
    /* Only now: a round that took everything needs no extra pass (a non-blocking
     * epoll_wait per round at a steady rate, before). */
    if (bk_drain_pending(b)) loop_again(l);
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
    if (model_delivery_masks(&b->cfg, &b->masks, &err) < 0) {
        fprintf(stderr, "herald-broker: %s\n", err.message);
        return 1;
    }
    return 0;
}

/* Blocked from the start (the loop reads them from a signalfd): a SIGHUP or SIGTERM that
 * arrives during start-up waits, and is acted on once the loop runs. */
static void block_signals(void)
{
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGHUP);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigprocmask(SIG_BLOCK, &sigs, NULL);
}

/* Every connection is a descriptor: take what the hard limit allows. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* The modules, the journal read back, the rings re-opened, the sockets listening. 0, or -1
 * (logged). */
static int start(broker_t *b)
{
    herald_error_t err = {0};
    if (config_check_exposure(&b->cfg, &err) < 0 ||
        rtdir_open(&b->rt, b->cfg.runtime_dir, b->cfg.runtime_group, &err) < 0 ||
        hb_open(&b->hb, b->cfg.shm_prefix, "broker", &err) < 0 || bk_core_open(b, &err) < 0) {
        log_error("%s", err.message);
        return -1;
    }
    bk_route_reopen(b);
    /* The cluster first: a broker whose ports answer is connected to its cluster. */
    if (bk_cluster_start(b, &err) < 0 || bk_http_listen(b, &err) < 0 ||
        bk_native_listen(b, &err) < 0) {
        log_error("%s", err.message);
        return -1;
    }
    return 0;
}

/* After the loop: connections closed, the journal flushed, every module freed. */
static void stop(broker_t *b)
{
    bk_http_close(b);
    bk_native_close(b);
    bk_cluster_close(b);
    bk_core_close(b);
    hb_close(&b->hb);
    rtdir_close(&b->rt);
}

int main(int argc, char **argv)
{
    static broker_t broker;
    broker_t *b = &broker;
    block_signals();
    g_argc = argc;
    g_argv = argv;
    int rc = load_config(b, argc, argv);
    if (rc) return rc;
    log_init("broker", -1);
    log_set_level((log_level_t)b->cfg.log_level);
    config_log_dev_secret(&b->cfg);
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();
    if (start(b) < 0) return 1;
    loop_on_signal(b->loop, on_signal, b);
    loop_on_pass_end(b->loop, pass_end, b);
    loop_timer_init(&b->tick, tick_cb, b);
    loop_timer_at(b->loop, &b->tick, loop_now(b->loop) + 1000000000ull);
    log_info("broker up: http %s:%u, native %s/broker.sock%s, control %s/control.sock",
             b->cfg.broker_http.host, b->cfg.broker_http.port, b->cfg.runtime_dir,
             b->cfg.broker_tcp.port ? " + tcp" : "", b->cfg.runtime_dir);
    hb_notify_ready(&b->hb);

    rc = loop_run(b->loop) < 0 ? 1 : 0;
    if (rc) log_error("event loop failed: %s", strerror(errno));
    stop(b);
    return rc;
}
