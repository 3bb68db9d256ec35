/* test_liveness.c - a hung process is a dead process (protocol.md 10): herald-supervisor kills
 * (SIGKILL) and restarts a broker or gateway stopped with SIGSTOP, and one that never
 * beats after its start; clients then resume with every seq exactly once; heraldctl status
 * shows "hung". And the systemd side: READY=1 and WATCHDOG=1 on a real NOTIFY_SOCKET, sent
 * from the event loop (silent while the process is stopped), by the supervisor only. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "gwsys.h"
#include "heartbeat.h"
#include "herald_time.h"

#define HANG_S "2"
#define WAIT_S 30 /* bound on every wait; generous for loaded ASan runs */
#define N      40

static gws_t S;
static char sup_bin[512], ctl_bin[512];

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static uint64_t now_ms(void)
{
    return mono_ns() / 1000000u;
}

/* --- the supervisor and its status file --- */

/* herald-supervisor on S's config with supervisor.hang_s = HANG_S (passed on to every child). */
static pid_t start_supervisor(void)
{
    char log[400];
    snprintf(log, sizeof log, "%s/supervisor.log", S.env.dir);
    char *argv[] = {
        sup_bin, (char *)"-c", S.env.config, (char *)"-o", (char *)"supervisor.hang_s=" HANG_S,
        NULL};
    pid_t pid = procs_spawn(sup_bin, argv, log);
    ck_assert_int_gt(pid, 0);
    return pid;
}

/* SIGTERM the supervisor and wait (bounded) for its exit code. */
static int stop_supervisor(pid_t sup)
{
    int st = procs_stop(sup, WAIT_S * 1000);
    ck_assert_msg(st >= 0, "supervisor did not stop within %d s", WAIT_S);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static json_t *read_status(void)
{
    char path[400];
    snprintf(path, sizeof path, "%s/status.json", S.env.dir);
    return json_load_file(path, 0, NULL);
}

static json_t *status_proc(json_t *st, const char *name)
{
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(st, "processes"), i, p)
    {
        if (!strcmp(gws_jstr(p, "name"), name)) return p;
    }
    return NULL;
}

/* name's pid when it is up (state up, process alive) under a pid other than not_pid, else 0. */
static pid_t up_pid(json_t *st, const char *name, pid_t not_pid)
{
    json_t *p = status_proc(st, name);
    pid_t pid = (pid_t)gws_jint(p, "pid");
    bool up = p && !strcmp(gws_jstr(p, "state"), "up") && pid > 0 && kill(pid, 0) == 0;
    return up && pid != not_pid ? pid : 0;
}

/* Wait (bounded) until name is up under a pid other than not_pid and, for a gateway, healthy
 * (broker link up, ring attached). Returns the status. */
static json_t *wait_up(const char *name, pid_t not_pid)
{
    uint64_t end = now_ms() + WAIT_S * 1000u;
    while (now_ms() < end) {
        json_t *st = read_status();
        if (st && up_pid(st, name, not_pid)) {
            char body[256];
            unsigned id;
            if (sscanf(name, "gateway%u", &id) != 1 ||
                procs_http_get("127.0.0.1", (uint16_t)(S.ws + id), "/healthz", body, sizeof body) ==
                    200)
                return st;
        }
        json_decref(st);
        sleep_ms(50);
    }
    ck_abort_msg("%s not up (other than pid %d) within %d s; see %s/supervisor.log", name,
                 (int)not_pid, WAIT_S, S.env.dir);
    return NULL;
}

static void wait_all_up(void)
{
    json_decref(wait_up("broker", 0));
    for (unsigned i = 0; i < S.n_gw; i++) {
        char name[24];
        snprintf(name, sizeof name, "gateway%u", i);
        json_decref(wait_up(name, 0));
    }
}

/* heraldctl -c <S's config> a1 [a2]; *out is its stdout. Returns its exit code. */
static int run_ctl(const char **out, const char *a1, const char *a2)
{
    static procs_output_t r;
    const char *argv[] = {ctl_bin, "-c", S.env.config, a1, a2, NULL};
    procs_run(argv, &r, WAIT_S);
    *out = r.out;
    return r.rc;
}

/* --- stopping a process without leaking it --- */

typedef struct {
    pid_t target, guard;
    int fd;
} stop_guard_t;

/* kill -STOP target. A guard process SIGKILLs it should this test end (an assertion's _exit
 * included) before stop_release: nothing is left stopped for ever. */
static void stop_guarded(stop_guard_t *g, pid_t target)
{
    int p[2];
    ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
    g->target = target;
    g->guard = fork();
    ck_assert_int_ge(g->guard, 0);
    if (g->guard == 0) {
        char c;
        close(p[1]);
        if (read(p[0], &c, 1) != 1) kill(target, SIGKILL);
        _exit(0);
    }
    close(p[0]);
    g->fd = p[1];
    ck_assert_int_eq(kill(target, SIGSTOP), 0);
}

static void stop_release(stop_guard_t *g)
{
    ck_assert_int_eq(write(g->fd, "x", 1), 1);
    close(g->fd);
    waitpid(g->guard, NULL, 0);
}

/* --- clients --- */

/* Read notifications into seen[] until seq `last` arrives or the connection ends or goes
 * quiet for 3 s. Asserts increasing order; counts duplicates. Returns the highest seq. */
static uint64_t drain_into(wsc_t *c, unsigned char *seen, uint64_t last, uint64_t *dups)
{
    uint64_t high = 0;
    const char *m;
    while (high < last && wsc_recv(c, &m, NULL, 3000) >= 0) {
        json_t *j = json_loads(m, 0, NULL);
        ck_assert_msg(j != NULL, "not JSON: %s", m);
        if (!strcmp(gws_jstr(j, "type"), "notification")) {
            uint64_t s = gws_jint(j, "seq");
            ck_assert_msg(s > high, "seq %llu after %llu", (unsigned long long)s,
                          (unsigned long long)high);
            if (s <= N && seen[s]++) (*dups)++;
            high = s;
        }
        json_decref(j);
    }
    return high;
}

/* Every seq from..N seen exactly once, none below from. */
static void assert_each_once(const unsigned char *seen, uint64_t from, uint64_t dups)
{
    ck_assert_uint_eq(dups, 0);
    for (uint64_t s = 1; s <= N; s++)
        ck_assert_msg(seen[s] == (s >= from), "seq %llu seen %u times", (unsigned long long)s,
                      seen[s]);
}

static void publish_range(uint64_t from, uint64_t to)
{
    for (uint64_t i = from; i <= to; i++)
        ck_assert_uint_eq(gws_publish_http(&S, "u1", "position_limit", -1), i);
}

/* The process `name` after a hang: restarted, last exit "hung", one hang, and heraldctl
 * status (text and --json) says so. */
static void assert_reported_hung(const char *name)
{
    const char *out;
    json_t *st = read_status();
    json_t *p = status_proc(st, name);
    ck_assert_str_eq(gws_jstr(p, "last_exit"), "hung");
    ck_assert_uint_eq(gws_jint(p, "hangs"), 1);
    ck_assert_uint_eq(gws_jint(p, "restarts"), 1);
    json_decref(st);

    ck_assert_int_eq(run_ctl(&out, "status", "--json"), 0);
    st = json_loads(out, 0, NULL);
    ck_assert_msg(st, "status --json: %s", out);
    p = status_proc(st, name);
    ck_assert_str_eq(gws_jstr(p, "last_exit"), "hung");
    ck_assert_uint_eq(gws_jint(p, "hangs"), 1);
    ck_assert(json_is_true(json_object_get(p, "up")));
    ck_assert(json_is_integer(json_object_get(p, "heartbeat_age_ms")));
    ck_assert_int_lt(json_integer_value(json_object_get(p, "heartbeat_age_ms")), WAIT_S * 1000);
    json_decref(st);

    ck_assert_int_eq(run_ctl(&out, "status", NULL), 0);
    const char *row = strstr(out, name);
    ck_assert_msg(row, "status: %s", out);
    const char *eol = strchr(row, '\n');
    const char *hung = strstr(row, "hung");
    ck_assert_msg(hung && (!eol || hung < eol), "no \"hung\" in the %s row: %s", name, out);
}

/* --- the tests --- */

START_TEST(broker_stopped_with_sigstop_is_killed_as_hung_restarted_and_sessions_lose_nothing)
{
    unsigned char seen[N + 1] = {0}, seen2[N + 1] = {0};
    uint64_t dups = 0, dups2 = 0;
    stop_guard_t g;
    gws_init(&S, 1, NULL);
    pid_t sup = start_supervisor();
    wait_all_up();

    /* a healthy, idle node is not taken for hung: quiet for longer than hang_s */
    sleep_ms(atoi(HANG_S) * 1000 + 1500);
    json_t *st = read_status();
    pid_t broker = up_pid(st, "broker", 0);
    ck_assert_int_gt(broker, 0);
    for (int i = 0; i < 2; i++) {
        json_t *p = status_proc(st, i ? "gateway0" : "broker");
        ck_assert_uint_eq(gws_jint(p, "hangs"), 0);
        ck_assert_uint_eq(gws_jint(p, "restarts"), 0);
    }
    json_decref(st);

    wsc_t *c = gws_client(&S, 0, "u1", NULL, NULL);
    publish_range(1, N / 2);
    ck_assert_uint_eq(drain_into(c, seen, N / 2, &dups), N / 2);

    uint64_t t0 = now_ms();
    stop_guarded(&g, broker);
    json_decref(wait_up("broker", broker));
    ck_assert_uint_lt(now_ms() - t0, WAIT_S * 1000u);
    ck_assert_msg(kill(broker, 0) < 0 && errno == ESRCH, "the hung broker %d still exists",
                  (int)broker);
    stop_release(&g);
    assert_reported_hung("broker");
    json_decref(wait_up("gateway0", 0)); /* re-attached to the new broker */

    /* the journal kept the sequence; the session kept by the gateway gets what follows */
    ck_assert_int_eq(procs_wait_tcp("127.0.0.1", S.http, WAIT_S * 1000), 0);
    publish_range(N / 2 + 1, N);
    ck_assert_uint_eq(drain_into(c, seen, N, &dups), N);
    ck_assert(!wsc_is_closed(c));
    assert_each_once(seen, 1, dups);
    wsc_close(c);

    /* and a client that reconnects resumes from the restored history */
    c = gws_client(&S, 0, "u1", "?since=1", NULL);
    ck_assert_uint_eq(drain_into(c, seen2, N, &dups2), N);
    assert_each_once(seen2, 2, dups2);
    gws_expect_type(c, "resumed", NULL);
    wsc_close(c);
    ck_assert_int_eq(stop_supervisor(sup), 0);
    gws_stop(&S);
}
END_TEST

START_TEST(gateway_stopped_with_sigstop_is_killed_as_hung_restarted_and_clients_resume_exactly)
{
    unsigned char seen[N + 1] = {0};
    uint64_t dups = 0;
    stop_guard_t g;
    gws_init(&S, 1, NULL);
    pid_t sup = start_supervisor();
    wait_all_up();
    json_t *st = read_status();
    pid_t gw = up_pid(st, "gateway0", 0);
    json_decref(st);

    wsc_t *c = gws_client(&S, 0, "u1", NULL, NULL);
    publish_range(1, N / 2);
    ck_assert_uint_eq(drain_into(c, seen, N / 2, &dups), N / 2);

    uint64_t t0 = now_ms();
    stop_guarded(&g, gw);
    publish_range(N / 2 + 1, 3 * N / 4); /* the broker acknowledges while the gateway hangs */
    json_decref(wait_up("gateway0", gw));
    ck_assert_uint_lt(now_ms() - t0, WAIT_S * 1000u);
    ck_assert_msg(kill(gw, 0) < 0 && errno == ESRCH, "the hung gateway %d still exists", (int)gw);
    stop_release(&g);
    assert_reported_hung("gateway0");

    /* the killed gateway's connection ends; nothing it held reached the client */
    uint64_t high = drain_into(c, seen, N, &dups);
    ck_assert(wsc_is_closed(c));
    wsc_close(c);
    if (high < N / 2) high = N / 2;
    publish_range(3 * N / 4 + 1, N);
    char q[32];
    snprintf(q, sizeof q, "?since=%llu", (unsigned long long)high);
    c = gws_client(&S, 0, "u1", q, NULL);
    ck_assert_uint_eq(drain_into(c, seen, N, &dups), N);
    assert_each_once(seen, 1, dups);
    wsc_close(c);
    ck_assert_int_eq(stop_supervisor(sup), 0);
    gws_stop(&S);
}
END_TEST

START_TEST(child_that_never_beats_after_its_start_is_killed_as_hung)
{
    char dir[400], path[500], gw[512], log[600];
    gws_init(&S, 1, NULL);
    /* a "broker" that starts and then does nothing at all */
    snprintf(dir, sizeof dir, "%s/bin", S.env.dir);
    ck_assert_int_eq(mkdir(dir, 0700), 0);
    snprintf(path, sizeof path, "%s/herald-broker", dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("#!/bin/sh\nexec sleep 600\n", f);
    fclose(f);
    ck_assert_int_eq(chmod(path, 0700), 0);
    snprintf(path, sizeof path, "%s/herald-gateway", dir);
    ck_assert_int_eq(symlink(realpath(S.bin_gw, gw) ? gw : S.bin_gw, path), 0);
    setenv("HERALD_BIN_DIR", dir, 1);
    pid_t sup = start_supervisor();
    unsetenv("HERALD_BIN_DIR");

    json_t *st = NULL;
    uint64_t end = now_ms() + WAIT_S * 1000u;
    for (; now_ms() < end; sleep_ms(50)) {
        json_decref(st);
        st = read_status();
        if (st && gws_jint(status_proc(st, "broker"), "hangs") >= 1) break;
    }
    json_t *p = status_proc(st, "broker");
    ck_assert_msg(gws_jint(p, "hangs") >= 1, "the silent broker was never killed");
    ck_assert_str_eq(gws_jstr(p, "last_exit"), "hung");
    json_decref(st);
    ck_assert_int_eq(stop_supervisor(sup), 0);
    snprintf(log, sizeof log, "%s/supervisor.log", S.env.dir);
    f = fopen(log, "r");
    static char text[65536];
    size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
    if (f) fclose(f);
    text[n] = '\0';
    ck_assert_msg(strstr(text, "no heartbeat since its start"), "supervisor log: %s", text);
    gws_stop(&S);
}
END_TEST

/* --- systemd's notify socket --- */

/* A unix datagram socket at <env dir>/<name> that receives the sender's credentials. */
static int notify_socket(const char *name, char *path, size_t cap)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(path, cap, "%s/%s", S.env.dir, name);
    ck_assert_uint_lt(strlen(path), sizeof sa.sun_path);
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    int one = 1;
    ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof one), 0);
    return fd;
}

/* The next datagram within ms (text into msg, sender into *pid); false on timeout. */
static bool notify_recv(int fd, int ms, char *msg, size_t cap, pid_t *pid)
{
    union {
        char buf[CMSG_SPACE(sizeof(struct ucred))];
        struct cmsghdr align;
    } ctl;
    struct iovec iov = {.iov_base = msg, .iov_len = cap - 1};
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf};
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, ms) != 1) return false;
    ssize_t n = recvmsg(fd, &mh, 0);
    ck_assert_int_ge(n, 0);
    msg[n] = '\0';
    *pid = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS)
            *pid = ((struct ucred *)(void *)CMSG_DATA(c))->pid;
    return true;
}

/* Wait (bounded) for a datagram equal to want; every datagram seen must come from pid. */
static void notify_expect(int fd, const char *want, pid_t pid)
{
    char msg[256];
    pid_t from;
    uint64_t end = now_ms() + WAIT_S * 1000u;
    while (now_ms() < end) {
        if (!notify_recv(fd, 200, msg, sizeof msg, &from)) continue;
        ck_assert_msg(from == pid, "\"%s\" from pid %d, expected only pid %d", msg, (int)from,
                      (int)pid);
        if (!strcmp(msg, want)) return;
    }
    ck_abort_msg("no %s from pid %d within %d s", want, (int)pid, WAIT_S);
}

static uint64_t beat_of(const char *name, pid_t pid)
{
    hb_snapshot_t hb;
    herald_error_t err;
    ck_assert_msg(hb_read(S.env.shm_prefix, name, &hb, &err) == 0, "%s", err.message);
    ck_assert_int_eq(hb.pid, pid);
    return hb.beat_ns;
}

START_TEST(processes_notify_ready_and_a_watchdog_that_stops_with_their_event_loop)
{
    char bpath[300], gpath[300], msg[256];
    pid_t from;
    stop_guard_t g;
    gws_init(&S, 1, NULL);
    int bfd = notify_socket("broker.notify", bpath, sizeof bpath);
    int gfd = notify_socket("gw.notify", gpath, sizeof gpath);
    setenv("WATCHDOG_USEC", "1000000", 1); /* WatchdogSec=1: a ping every 500 ms */
    setenv("NOTIFY_SOCKET", bpath, 1);
    gws_spawn_broker(&S);
    setenv("NOTIFY_SOCKET", gpath, 1);
    gws_spawn_gateway(&S, 0);
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");

    notify_expect(bfd, "READY=1", S.broker);
    notify_expect(bfd, "WATCHDOG=1", S.broker);
    notify_expect(bfd, "WATCHDOG=1", S.broker);
    notify_expect(gfd, "READY=1", S.gw[0]);
    notify_expect(gfd, "WATCHDOG=1", S.gw[0]);
    notify_expect(gfd, "WATCHDOG=1", S.gw[0]);
    ck_assert_uint_gt(beat_of("gateway0", S.gw[0]), 0);
    ck_assert_uint_gt(beat_of("broker", S.broker), 0);

    /* a stopped loop pings nobody and beats nothing: no helper thread keeps it "alive" */
    stop_guarded(&g, S.gw[0]);
    sleep_ms(300);
    while (notify_recv(gfd, 0, msg, sizeof msg, &from))
        continue; /* what was sent before the stop */
    uint64_t beat = beat_of("gateway0", S.gw[0]);
    ck_assert_msg(!notify_recv(gfd, 1500, msg, sizeof msg, &from),
                  "\"%s\" from pid %d while the gateway was stopped", msg, (int)from);
    ck_assert_uint_eq(beat_of("gateway0", S.gw[0]), beat);
    ck_assert_int_eq(kill(S.gw[0], SIGCONT), 0);
    stop_release(&g);
    notify_expect(gfd, "WATCHDOG=1", S.gw[0]);
    ck_assert_uint_gt(beat_of("gateway0", S.gw[0]), beat);

    /* a clean exit removes the heartbeat */
    ck_assert_int_eq(procs_stop(S.gw[0], WAIT_S * 1000), 0);
    S.gw[0] = 0;
    hb_snapshot_t hb;
    ck_assert_int_eq(hb_read(S.env.shm_prefix, "gateway0", &hb, NULL), -HERR_NOT_FOUND);
    close(bfd);
    close(gfd);
    gws_stop(&S);
}
END_TEST

START_TEST(supervisor_alone_notifies_systemd_once_everything_is_up)
{
    char path[300], msg[256];
    pid_t from;
    gws_init(&S, 2, NULL);
    int fd = notify_socket("sup.notify", path, sizeof path);
    setenv("NOTIFY_SOCKET", path, 1);
    setenv("WATCHDOG_USEC", "2000000", 1);
    pid_t sup = start_supervisor();
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");

    notify_expect(fd, "READY=1", sup);
    json_t *st = read_status();
    ck_assert_int_gt(up_pid(st, "broker", 0), 0); /* READY=1 only once the broker serves */
    ck_assert_int_gt(gws_jint(status_proc(st, "gateway1"), "pid"), 0);
    json_decref(st);
    wait_all_up();
    notify_expect(fd, "WATCHDOG=1", sup);
    /* the children run under the unit too, but only the supervisor may talk to systemd */
    for (uint64_t end = now_ms() + 2500; now_ms() < end;)
        if (notify_recv(fd, 100, msg, sizeof msg, &from))
            ck_assert_msg(from == sup, "\"%s\" from pid %d, not the supervisor %d", msg, (int)from,
                          (int)sup);
    ck_assert_int_eq(stop_supervisor(sup), 0);
    close(fd);
    gws_stop(&S);
}
END_TEST

static Suite *liveness_suite(void)
{
    Suite *s = suite_create("liveness");
    TCase *tc = tcase_create("liveness");
    tcase_set_timeout(tc, 240);
    tcase_add_test(
        tc, broker_stopped_with_sigstop_is_killed_as_hung_restarted_and_sessions_lose_nothing);
    tcase_add_test(
        tc, gateway_stopped_with_sigstop_is_killed_as_hung_restarted_and_clients_resume_exactly);
    tcase_add_test(tc, child_that_never_beats_after_its_start_is_killed_as_hung);
    tcase_add_test(tc, processes_notify_ready_and_a_watchdog_that_stops_with_their_event_loop);
    tcase_add_test(tc, supervisor_alone_notifies_systemd_once_everything_is_up);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    procs_build_path("tools/supervisor/herald-supervisor", sup_bin, sizeof sup_bin);
    procs_build_path("tools/heraldctl/heraldctl", ctl_bin, sizeof ctl_bin);
    return gws_run(liveness_suite());
}
