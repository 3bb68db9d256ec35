/* sup_children.c - herald-supervisor: starting, watching, restarting and stopping the
 * broker and the gateways. Watching is twofold: waitpid for children that exit, and their
 * heartbeats (heartbeat.h) for children that stop answering without exiting. */
#include <dirent.h>
#include <errno.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "herald_time.h"
#include "log.h"
#include "sup.h"

/* Is dir/name executable? Fills out with the path. */
static bool sup_try_bin(char *out, size_t len, const char *dir, const char *name)
{
    int n = snprintf(out, len, "%s/%s", dir, name);
    return n > 0 && (size_t)n < len && access(out, X_OK) == 0;
}

static int sup_find_one(char *out, size_t len, const char *name, const char *subdir)
{
    const char *env = getenv("HERALD_BIN_DIR");
    char exe[PATH_MAX], up[PATH_MAX + 16];
    if (env && *env) {
        if (sup_try_bin(out, len, env, name)) return 0;
        fprintf(stderr, "herald-supervisor: no executable %s in HERALD_BIN_DIR=%s\n", name, env);
        return -1;
    }
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n < 0) {
        fprintf(stderr, "herald-supervisor: /proc/self/exe: %s\n", strerror(errno));
        return -1;
    }
    exe[n] = '\0';
    const char *dir = dirname(exe);
    if (sup_try_bin(out, len, dir, name)) return 0;
    snprintf(up, sizeof up, "%s/../../%s", dir, subdir); /* build tree: tools/supervisor/.. */
    if (sup_try_bin(out, len, up, name)) return 0;
    fprintf(stderr, "herald-supervisor: %s not found next to %s (set HERALD_BIN_DIR)\n", name, dir);
    return -1;
}

int sup_find_binaries(sup_t *s)
{
    if (sup_find_one(s->bin_broker, sizeof s->bin_broker, "herald-broker", "broker") < 0) return -1;
    return sup_find_one(s->bin_gateway, sizeof s->bin_gateway, "herald-gateway", "gateway");
}

int sup_children_init(sup_t *s)
{
    s->nkids = 1 + s->cfg.gateway_count;
    s->kids = calloc(s->nkids, sizeof *s->kids);
    if (!s->kids) {
        log_error("out of memory for %zu children", s->nkids);
        return -1;
    }
    for (size_t i = 0; i < s->nkids; i++) {
        sup_child_t *c = &s->kids[i];
        c->gw_id = (int)i - 1;
        c->state = SUP_STOPPED;
        c->backoff_ms = SUP_BACKOFF_MIN_MS;
        if (i == 0)
            snprintf(c->name, sizeof c->name, "broker");
        else if (snprintf(c->name, sizeof c->name, "gateway%d", c->gw_id) >= (int)sizeof c->name)
            return -1;
    }
    return 0;
}

/* In the forked child: restore signals, own process group (a terminal's Ctrl-C reaches only
 * the supervisor, which stops the children in order), die with the supervisor, exec. */
static void sup_exec_child(const sup_t *s, const sup_child_t *c, pid_t parent)
{
    const char *argv[8 + 2 * 64];
    char id[16];
    int n = 0;
    sigset_t none;

    sigemptyset(&none);
    /* a reload asked before the child's own handler is in place is moot (it reads the
     * config as it starts); it must not kill it */
    signal(SIGHUP, SIG_IGN);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    /* systemd's notify socket is the supervisor's (the unit's main pid) alone */
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(1);
    argv[n++] = c->gw_id < 0 ? s->bin_broker : s->bin_gateway;
    if (c->gw_id >= 0) {
        snprintf(id, sizeof id, "%d", c->gw_id);
        argv[n++] = "--id";
        argv[n++] = id;
    }
    argv[n++] = "-c";
    argv[n++] = s->config_path;
    for (int i = 0; i < s->novr && i < 64; i++) {
        argv[n++] = "-o";
        argv[n++] = s->overrides[i];
    }
    argv[n] = NULL;
    execv(argv[0], (char *const *)argv);
    fprintf(stderr, "herald-supervisor: exec %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

/* Schedule c's next start after its backoff, doubling the backoff up to the maximum. */
static void sup_schedule_restart(sup_child_t *c, uint64_t now)
{
    c->state = SUP_BACKOFF;
    c->restart_at_ms = now + c->backoff_ms;
    c->backoff_ms = c->backoff_ms * 2 > SUP_BACKOFF_MAX_MS ? SUP_BACKOFF_MAX_MS : c->backoff_ms * 2;
}

void sup_spawn(sup_t *s, sup_child_t *c)
{
    pid_t parent = getpid();
    uint64_t now = sup_now_ms();
    pid_t pid = fork();
    if (pid == 0) sup_exec_child(s, c, parent);
    if (pid < 0) {
        log_error("%s: fork failed: %s; retrying in %llu ms", c->name, strerror(errno),
                  (unsigned long long)c->backoff_ms);
        sup_schedule_restart(c, now);
        sup_write_status(s);
        return;
    }
    if (c->started_once) c->restarts++;
    c->started_once = true;
    c->pid = pid;
    c->started_at = time(NULL);
    c->started_ms = now;
    c->hung = false;
    c->alive_ns = mono_ns(); /* the grace for its first beat starts now */
    c->state = c->gw_id < 0 ? SUP_STARTING : SUP_UP;
    c->ready_by_ms = now + SUP_READY_WAIT_MS;
    log_info("%s started, pid %d%s", c->name, (int)pid, c->restarts ? " (restart)" : "");
    sup_write_status(s);
}

static void sup_describe_exit(char *out, size_t len, int status)
{
    if (WIFEXITED(status))
        snprintf(out, len, "exit %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(out, len, "signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
    else
        snprintf(out, len, "status %d", status);
}

void sup_reap(sup_t *s)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        sup_child_t *c = NULL;
        for (size_t i = 0; i < s->nkids; i++)
            if (s->kids[i].pid == pid) c = &s->kids[i];
        if (!c) continue;
        uint64_t now = sup_now_ms();
        if (c->hung)
            snprintf(c->last_exit, sizeof c->last_exit, "hung");
        else
            sup_describe_exit(c->last_exit, sizeof c->last_exit, status);
        c->pid = 0;
        c->hung = false;
        if (s->stopping) {
            c->state = SUP_STOPPED;
            log_info("%s stopped (%s)", c->name, c->last_exit);
        } else {
            if (now - c->started_ms >= SUP_STABLE_MS) c->backoff_ms = SUP_BACKOFF_MIN_MS;
            log_warn("%s (pid %d) %s %s; restarting in %llu ms", c->name, (int)pid,
                     strcmp(c->last_exit, "hung") ? "died:" : "was", c->last_exit,
                     (unsigned long long)c->backoff_ms);
            sup_schedule_restart(c, now);
        }
        sup_write_status(s);
    }
}

/* Does <runtime.dir>/broker.sock accept a connection? Non-blocking: a broker that hangs
 * with a full accept queue must not hang the supervisor too (EAGAIN counts as not ready). */
static bool sup_broker_ready(const sup_t *s)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (snprintf(sa.sun_path, sizeof sa.sun_path, "%s/broker.sock", s->cfg.runtime_dir) >=
        (int)sizeof sa.sun_path)
        return false;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return false;
    bool ok = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    close(fd);
    return ok;
}

/* Send sig to every running child in [from, to). Returns how many are still running. */
static size_t sup_signal_range(sup_t *s, size_t from, size_t to, int sig)
{
    size_t running = 0;
    for (size_t i = from; i < to; i++) {
        sup_child_t *c = &s->kids[i];
        if (c->pid > 0) {
            running++;
            if (sig) {
                kill(c->pid, sig);
                c->state = SUP_STOPPING;
            }
        } else {
            c->state = SUP_STOPPED;
        }
    }
    return running;
}

size_t sup_forward_signal(sup_t *s, int sig)
{
    size_t sent = 0;
    for (size_t i = 0; i < s->nkids; i++)
        if (s->kids[i].pid > 0 && kill(s->kids[i].pid, sig) == 0) sent++;
    return sent;
}

void sup_begin_stop(sup_t *s)
{
    s->stopping = true;
    s->stop_phase = 0;
    s->stop_deadline_ms = sup_now_ms() + SUP_STOP_GRACE_MS;
    sup_signal_range(s, 1, s->nkids, SIGTERM);
    sup_write_status(s);
}

/* Advance the stop: gateways first, then the broker; SIGKILL whoever outlives the grace. */
static bool sup_step_stop(sup_t *s, uint64_t now)
{
    size_t from = s->stop_phase == 0 ? 1 : 0, to = s->stop_phase == 0 ? s->nkids : 1;
    size_t running = sup_signal_range(s, from, to, 0);
    if (running && now >= s->stop_deadline_ms) {
        log_warn("%zu %s still running after %u ms: SIGKILL", running,
                 s->stop_phase == 0 ? "gateway(s)" : "broker", SUP_STOP_GRACE_MS);
        sup_signal_range(s, from, to, SIGKILL);
        s->stop_deadline_ms = now + SUP_STOP_GRACE_MS;
    }
    if (running) return false;
    if (s->stop_phase == 1) return true;
    s->stop_phase = 1;
    s->stop_deadline_ms = now + SUP_STOP_GRACE_MS;
    if (sup_signal_range(s, 0, 1, SIGTERM) == 0) return true;
    sup_write_status(s);
    return false;
}

/* SIGKILL a running child whose heartbeat has been silent for supervisor.hang_s (counted
 * from its start until its first beat). Never waits for it: the SIGCHLD of its death
 * restarts it through sup_reap like any other exit, recorded as "hung". */
static void sup_check_hangs(sup_t *s, uint64_t now_ms)
{
    if (!s->cfg.hang_s || now_ms < s->hang_check_at_ms) return;
    s->hang_check_at_ms = now_ms + SUP_HANG_CHECK_MS;
    uint64_t now = mono_ns(), hang_ns = (uint64_t)s->cfg.hang_s * 1000000000ull;
    for (size_t i = 0; i < s->nkids; i++) {
        sup_child_t *c = &s->kids[i];
        if (c->pid <= 0 || c->hung || (c->state != SUP_UP && c->state != SUP_STARTING)) continue;
        hb_snapshot_t hb;
        bool beaten = hb_read(s->cfg.shm_prefix, c->name, &hb, NULL) == 0 && hb.pid == c->pid;
        if (beaten && hb.beat_ns > c->alive_ns) c->alive_ns = hb.beat_ns;
        uint64_t silent = now > c->alive_ns ? now - c->alive_ns : 0;
        if (silent < hang_ns) continue;
        c->hung = true;
        c->hangs++;
        log_warn("%s (pid %d) hung: %s for %.1f s (supervisor.hang_s = %u); SIGKILL", c->name,
                 (int)c->pid, beaten ? "heartbeat silent" : "no heartbeat since its start",
                 (double)silent / 1e9, s->cfg.hang_s);
        if (kill(c->pid, SIGKILL) < 0)
            log_error("%s: kill(%d, SIGKILL): %s", c->name, (int)c->pid, strerror(errno));
        sup_write_status(s);
    }
}

bool sup_step(sup_t *s)
{
    uint64_t now = sup_now_ms();
    if (s->stopping) return sup_step_stop(s, now);
    sup_check_hangs(s, now);
    for (size_t i = 0; i < s->nkids; i++) {
        sup_child_t *c = &s->kids[i];
        if (c->state == SUP_BACKOFF && now >= c->restart_at_ms) sup_spawn(s, c);
    }
    sup_child_t *b = &s->kids[0];
    if (b->state == SUP_STARTING) {
        bool ready = sup_broker_ready(s);
        if (!ready && now < b->ready_by_ms) return false;
        if (ready)
            log_info("broker ready (pid %d)", (int)b->pid);
        else
            log_warn("broker.sock not accepting after %u ms; starting gateways anyway",
                     SUP_READY_WAIT_MS);
        b->state = SUP_UP;
        sup_write_status(s);
        if (!s->gateways_started) {
            s->gateways_started = true;
            for (size_t i = 1; i < s->nkids; i++)
                sup_spawn(s, &s->kids[i]);
        }
        if (!s->ready_notified) {
            s->ready_notified = true;
            hb_notify_ready(&s->notify);
        }
    }
    return false;
}

int sup_poll_timeout(const sup_t *s)
{
    uint64_t now = sup_now_ms(), next = UINT64_MAX;
    if (s->stopping) next = s->stop_deadline_ms;
    for (size_t i = 0; i < s->nkids && !s->stopping; i++) {
        const sup_child_t *c = &s->kids[i];
        if (c->state == SUP_BACKOFF && c->restart_at_ms < next) next = c->restart_at_ms;
        if (c->state == SUP_STARTING && now + SUP_READY_POLL_MS < next)
            next = now + SUP_READY_POLL_MS;
        if (c->pid > 0 && s->cfg.hang_s && s->hang_check_at_ms < next) next = s->hang_check_at_ms;
    }
    if (s->notify.wd_period_ns) {
        uint64_t wd_ms = s->notify.wd_next_ns / 1000000u + 1; /* mono_ns and sup_now_ms agree */
        if (wd_ms < next) next = wd_ms;
    }
    if (next == UINT64_MAX) return -1;
    return next <= now ? 0 : (int)(next - now);
}

void sup_shm_unlink_prefix(const char *prefix)
{
    size_t pl = strlen(prefix);
    DIR *d = opendir("/dev/shm");
    if (!d) return;
    for (struct dirent *e; (e = readdir(d));) {
        if (strncmp(e->d_name, prefix, pl) != 0 || e->d_name[pl] != '.') continue;
        if (strncmp(e->d_name + pl, ".broker.journal", 15) == 0) continue; /* see the header */
        if (shm_unlink(e->d_name) < 0 && errno != ENOENT)
            log_warn("could not remove /dev/shm/%s: %s", e->d_name, strerror(errno));
        else
            log_info("removed /dev/shm/%s", e->d_name);
    }
    closedir(d);
}
