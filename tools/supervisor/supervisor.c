/* supervisor.c - herald-supervisor: runs the broker and gateway.count gateways from one
 * config in the foreground, restarts whichever dies or hangs (exponential backoff), passes
 * SIGHUP (reload) on to them, and stops all of them cleanly on SIGTERM/SIGINT. One supervisor
 * per runtime dir (flock). Under systemd (Type=notify) it sends READY=1 once all are started
 * and WATCHDOG=1 from its loop. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "herald_time.h"
#include "log.h"
#include "model.h"
#include "sup.h"
#include "sup_status.h"

#define SUP_MAX_OVERRIDES 64

static const char sup_usage[] =
    "usage: herald-supervisor [-c CONFIG] [-o section.key=value]...\n"
    "Runs herald-broker and gateway.count herald-gateway processes in the foreground.\n";

uint64_t sup_now_ms(void)
{
    return mono_ns() / 1000000u;
}

/* Take <runtime.dir>/supervisor.lock. On contention names the holder's pid and fails. */
static int sup_lock(sup_t *s)
{
    char path[PATH_MAX], pid[32] = "";
    herald_error_t err = {0};
    snprintf(path, sizeof path, "%s/%s", s->cfg.runtime_dir, SUP_LOCK_FILE);
    /* reopened at every start, so not O_EXCL: no link followed, an owner and mode check */
    s->lockfd = rtdir_open_file(&s->rt, SUP_LOCK_FILE, O_RDWR | O_CREAT, &err);
    if (s->lockfd < 0) {
        fprintf(stderr, "herald-supervisor: %s\n", err.message);
        s->lockfd = -1;
        return -1;
    }
    if (flock(s->lockfd, LOCK_EX | LOCK_NB) < 0) {
        ssize_t n = errno == EWOULDBLOCK ? pread(s->lockfd, pid, sizeof pid - 1, 0) : -1;
        if (n > 0) pid[strcspn(pid, "\n")] = '\0';
        fprintf(stderr,
                "herald-supervisor: runtime dir %s is already supervised by pid %s "
                "(lock %s held); refusing to start a second supervisor\n",
                s->cfg.runtime_dir, pid[0] ? pid : "?", path);
        close(s->lockfd);
        s->lockfd = -1;
        return -1;
    }
    int n = snprintf(pid, sizeof pid, "%d\n", (int)getpid());
    if (ftruncate(s->lockfd, 0) < 0 || pwrite(s->lockfd, pid, (size_t)n, 0) != n)
        log_warn("could not write our pid into %s: %s", path, strerror(errno));
    if (rtdir_write_file(&s->rt, SUP_PID_FILE, pid, (size_t)n, &err) < 0)
        log_warn("%s", err.message);
    return 0;
}

/* Remove what the stopped node leaves behind: sockets, our pid/status files and the shm
 * objects of our prefix but the journal. The lock file stays (unlinking a lock file races
 * a new holder). */
static void sup_cleanup(sup_t *s)
{
    static const char *const files[] = {"broker.sock", "control.sock", SUP_STATUS_FILE,
                                        SUP_PID_FILE};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        int rc = rtdir_unlink(&s->rt, files[i]);
        if (rc < 0)
            log_warn("could not remove %s/%s: %s", s->cfg.runtime_dir, files[i], strerror(-rc));
    }
    sup_shm_unlink_prefix(s->cfg.shm_prefix);
}

/* Parse the command line and load the config. Returns 0, or 1 after printing the reason. */
static int sup_parse_args(sup_t *s, int argc, char **argv)
{
    const char *explicit_path = NULL;
    herald_error_t err = {0};

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(sup_usage, stdout);
            exit(0);
        }
        if ((strcmp(a, "-c") != 0 && strcmp(a, "--config") != 0 && strcmp(a, "-o") != 0) ||
            i + 1 >= argc) {
            fprintf(stderr, "herald-supervisor: %s %s\n%s", a,
                    i + 1 >= argc ? "needs a value" : "is not an option", sup_usage);
            return 1;
        }
        if (a[1] == 'o') {
            if (s->novr >= SUP_MAX_OVERRIDES) {
                fprintf(stderr, "herald-supervisor: too many -o overrides\n");
                return 1;
            }
            s->overrides[s->novr++] = argv[++i];
        } else {
            explicit_path = argv[++i];
        }
    }
    s->config_path = config_default_path(explicit_path);
    config_defaults(&s->cfg);
    int rc = config_load(&s->cfg, s->config_path, &err);
    bool no_secret = rc == -HERR_MISSING_FIELD && strcmp(err.field, "auth.secret") == 0;
    if (rc < 0 && !no_secret) {
        fprintf(stderr, "herald-supervisor: config %s: %s\n", s->config_path, err.message);
        return 1;
    }
    for (int i = 0; i < s->novr; i++) {
        char key[128];
        const char *eq = strchr(s->overrides[i], '=');
        if (!eq || (size_t)(eq - s->overrides[i]) >= sizeof key) {
            fprintf(stderr, "herald-supervisor: -o %s: expected section.key=value\n",
                    s->overrides[i]);
            return 1;
        }
        snprintf(key, sizeof key, "%.*s", (int)(eq - s->overrides[i]), s->overrides[i]);
        if (config_set(&s->cfg, key, eq + 1, &err) < 0) {
            fprintf(stderr, "herald-supervisor: -o %s: %s\n", s->overrides[i], err.message);
            return 1;
        }
    }
    if (s->cfg.auth_secret[0] == '\0') {
        fprintf(stderr, "herald-supervisor: config %s: auth.secret is required\n", s->config_path);
        return 1;
    }
    if (config_check_exposure(&s->cfg, &err) < 0) {
        fprintf(stderr, "herald-supervisor: config %s: %s\n", s->config_path, err.message);
        return 1;
    }
    model_masks_t masks; /* the children check it too: refuse before starting any */
    if (model_delivery_masks(&s->cfg, &masks, &err) < 0) {
        fprintf(stderr, "herald-supervisor: config %s: %s\n", s->config_path, err.message);
        return 1;
    }
    return 0;
}

/* Block the signals we handle and route them to a signalfd (handled in the poll loop). */
static int sup_signals(sup_t *s)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGHUP);
    if (sigprocmask(SIG_BLOCK, &set, NULL) < 0) return -1;
    signal(SIGPIPE, SIG_IGN);
    s->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    return s->sigfd < 0 ? -1 : 0;
}

/* SIGHUP (systemctl reload): re-read our own log level, and pass the signal to every child,
 * each of which re-reads the config itself (secrets, log level, limits) and keeps its
 * sessions. The process layout (gateway.count, binaries, runtime dir) needs a restart. */
static void sup_reload(sup_t *s)
{
    herald_config_t n;
    herald_error_t err = {0};
    int rc = config_load(&n, s->config_path, &err);
    for (int i = 0; rc == 0 && i < s->novr; i++) {
        char key[128];
        const char *eq = strchr(s->overrides[i], '=');
        snprintf(key, sizeof key, "%.*s", (int)(eq - s->overrides[i]), s->overrides[i]);
        rc = config_set(&n, key, eq + 1, &err);
    }
    model_masks_t masks;
    if (rc == 0) rc = model_delivery_masks(&n, &masks, &err);
    if (rc < 0) {
        log_error("SIGHUP: %s does not load (%s); the children keep their configuration too",
                  s->config_path, err.message);
    } else {
        log_set_level((log_level_t)n.log_level);
        if (n.gateway_count != s->cfg.gateway_count)
            log_warn("SIGHUP: gateway.count changed; restart the supervisor to apply it");
    }
    size_t sent = sup_forward_signal(s, SIGHUP);
    log_info("SIGHUP: reload asked of %zu process(es)", sent);
}

/* Drain the signalfd: SIGCHLD reaps, SIGTERM/SIGINT begin the stop, SIGHUP reloads. */
static void sup_handle_signals(sup_t *s)
{
    struct signalfd_siginfo si;
    while (read(s->sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
        if (si.ssi_signo == SIGCHLD) {
            sup_reap(s);
        } else if (si.ssi_signo == SIGHUP) {
            if (!s->stopping) sup_reload(s);
        } else if (!s->stopping) {
            log_info("%s received: stopping", strsignal((int)si.ssi_signo));
            sup_begin_stop(s);
        }
    }
}

int main(int argc, char **argv)
{
    static char *overrides[SUP_MAX_OVERRIDES];
    static sup_t s = {.overrides = overrides, .sigfd = -1, .lockfd = -1, .rt = {.fd = -1}};
    int rc = 1;

    log_init("supervisor", -1);
    if (sup_parse_args(&s, argc, argv)) return 1;
    log_set_level((log_level_t)s.cfg.log_level);
    config_log_dev_secret(&s.cfg);
    herald_error_t err = {0};
    if (rtdir_open(&s.rt, s.cfg.runtime_dir, s.cfg.runtime_group, &err) < 0) {
        fprintf(stderr, "herald-supervisor: %s\n", err.message);
        return 1;
    }
    if (sup_lock(&s) < 0) return 1;
    if (sup_find_binaries(&s) < 0) goto out;
    if (sup_signals(&s) < 0) {
        log_error("signal setup failed: %s", strerror(errno));
        goto out;
    }
    if (sup_children_init(&s) < 0) goto out;
    log_info("supervising %s and %u gateway(s) (config %s, runtime dir %s, hang_s %u)",
             s.bin_broker, s.cfg.gateway_count, s.config_path, s.cfg.runtime_dir, s.cfg.hang_s);
    hb_notify_init(&s.notify, mono_ns());
    sup_spawn(&s, &s.kids[0]);
    while (!sup_step(&s)) {
        hb_beat(&s.notify, mono_ns()); /* systemd's watchdog only: no heartbeat object */
        struct pollfd p = {.fd = s.sigfd, .events = POLLIN};
        int n = poll(&p, 1, sup_poll_timeout(&s));
        if (n < 0 && errno != EINTR) {
            log_error("poll: %s", strerror(errno));
            break;
        }
        if (n > 0) sup_handle_signals(&s);
    }
    sup_cleanup(&s);
    log_info("stopped");
    rc = 0;
out:
    free(s.kids);
    if (s.sigfd >= 0) close(s.sigfd);
    if (s.lockfd >= 0) {
        if (rc) rtdir_unlink(&s.rt, SUP_PID_FILE); /* a clean stop removed it already */
        close(s.lockfd);
    }
    rtdir_close(&s.rt);
    return rc;
}
