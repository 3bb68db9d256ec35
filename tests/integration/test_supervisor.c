/* test_supervisor.c - herald-supervisor with the real broker and gateways: one instance per
 * runtime dir, restarts after kill -9, a clean SIGTERM stop, heraldctl status, and the
 * README quick start (token, tail, publish). Skipped (exit 77) until the binaries exist. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "procs.h"

#define SECRET  "test-secret-for-the-supervisor"
#define N_TESTS 5
#define WAIT_S  30

static char bin_dir[512], ctl_bin[600], sup_bin[600];
static int test_no; /* which of the N_TESTS directories this test uses */
static char dir[N_TESTS][128], prefix[N_TESTS][64];
static char cfgpath[300], rundir[300];
static unsigned http_port, gw_port;

/* `span` consecutive free loopback ports (tests/procs.h). */
static unsigned free_ports(unsigned span)
{
    uint16_t base = procs_free_ports(span);
    ck_assert_msg(base != 0, "no free loopback ports");
    return base;
}

/* (Re)write test n's config with the given secret. */
static void write_config(int n, const char *secret)
{
    FILE *f = fopen(cfgpath, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f,
            "[runtime]\ndir = %s\nshm_prefix = %s\n[broker]\nhttp = 127.0.0.1:%u\n"
            "[gateway]\ncount = 2\nlisten = 127.0.0.1:%u\nring_bytes = 1M\n[auth]\nsecret = %s\n",
            rundir, prefix[n], http_port, gw_port, secret);
    fclose(f);
}

/* Per test: its own runtime dir, shm prefix, ports and config. */
static void use_test_dir(int n)
{
    test_no = n;
    http_port = free_ports(1);
    gw_port = free_ports(2);
    snprintf(rundir, sizeof rundir, "%s/run", dir[n]);
    snprintf(cfgpath, sizeof cfgpath, "%s/herald.ini", dir[n]);
    mkdir(dir[n], 0700);
    write_config(n, SECRET);
}

/* Start argv with stdout to a pipe (*out_fd, may be NULL: to the log) and stderr appended to
 * <dir>/<log>; it gets `deathsig` when this test process dies, so a failing test leaves
 * nothing running. */
static pid_t spawn(const char *const *argv, const char *log, int *out_fd, int deathsig)
{
    char path[400];
    int p[2] = {-1, -1};
    snprintf(path, sizeof path, "%s/%s", dir[test_no], log);
    if (out_fd) ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
    pid_t parent = getpid(), pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, deathsig);
        if (getppid() != parent) _exit(1);
        int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0600);
        dup2(fd, 2);
        dup2(out_fd ? p[1] : fd, 1);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    if (out_fd) {
        close(p[1]);
        *out_fd = p[0];
    }
    return pid;
}

static pid_t start_supervisor(void)
{
    return spawn((const char *const[]){sup_bin, "-c", cfgpath, NULL}, "supervisor.log", NULL,
                 SIGTERM);
}

/* Run heraldctl to completion (bounded) with stdout into out; returns its exit code. */
static int run_ctl(char *out, size_t outlen, const char *const *args)
{
    static procs_output_t r;
    const char *argv[16] = {ctl_bin, "-c", cfgpath};
    int n = 3;
    for (int i = 0; args[i] && n < 15; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    procs_run(argv, &r, WAIT_S);
    size_t len = strnlen(r.out, outlen - 1);
    memcpy(out, r.out, len);
    out[len] = '\0';
    return r.rc;
}

/* status.json, or NULL when absent. */
static json_t *read_status(void)
{
    char path[400];
    snprintf(path, sizeof path, "%s/status.json", rundir);
    return json_load_file(path, 0, NULL);
}

static json_t *status_proc(json_t *st, const char *name)
{
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(st, "processes"), i, p)
    {
        if (strcmp(json_string_value(json_object_get(p, "name")) ?: "", name) == 0) return p;
    }
    return NULL;
}

static pid_t proc_pid(json_t *st, const char *name)
{
    return (pid_t)json_integer_value(json_object_get(status_proc(st, name), "pid"));
}

static bool proc_up(json_t *st, const char *name)
{
    json_t *p = status_proc(st, name);
    const char *state = json_string_value(json_object_get(p, "state"));
    pid_t pid = (pid_t)json_integer_value(json_object_get(p, "pid"));
    return state && strcmp(state, "up") == 0 && pid > 0 && kill(pid, 0) == 0;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* Wait (bounded) until broker, gateway0 and gateway1 are up; returns the status. */
static json_t *wait_all_up(void)
{
    for (int i = 0; i < WAIT_S * 20; i++) {
        json_t *st = read_status();
        if (st && proc_up(st, "broker") && proc_up(st, "gateway0") && proc_up(st, "gateway1"))
            return st;
        json_decref(st);
        sleep_ms(50);
    }
    ck_abort_msg("processes not all up within %d s (see %s/supervisor.log)", WAIT_S, dir[test_no]);
    return NULL;
}

/* Wait (bounded) until `name` runs again under a pid other than old. */
static json_t *wait_restarted(const char *name, pid_t old)
{
    for (int i = 0; i < WAIT_S * 20; i++) {
        json_t *st = read_status();
        if (st && proc_up(st, name) && proc_pid(st, name) != old) return st;
        json_decref(st);
        sleep_ms(50);
    }
    ck_abort_msg("%s not restarted within %d s", name, WAIT_S);
    return NULL;
}

/* SIGTERM the supervisor and wait (bounded) for it; returns its exit code. */
static int stop_supervisor(pid_t sup)
{
    int st;
    kill(sup, SIGTERM);
    for (int i = 0; i < WAIT_S * 20; i++) {
        if (waitpid(sup, &st, WNOHANG) == sup) return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        sleep_ms(50);
    }
    kill(sup, SIGKILL);
    waitpid(sup, &st, 0);
    ck_abort_msg("supervisor did not stop within %d s", WAIT_S);
    return -1;
}

START_TEST(supervisor_refuses_a_second_instance_on_the_same_runtime_dir)
{
    static char out[4096], log[4096], path[400];
    use_test_dir(0);
    pid_t sup = start_supervisor();
    json_decref(wait_all_up());
    ck_assert_int_eq(run_ctl(out, sizeof out, (const char *const[]){"status", NULL}), 0);

    pid_t second =
        spawn((const char *const[]){sup_bin, "-c", cfgpath, NULL}, "second.log", NULL, SIGKILL);
    int st;
    ck_assert_int_eq(waitpid(second, &st, 0), second);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 1);
    snprintf(path, sizeof path, "%s/second.log", dir[0]);
    FILE *f = fopen(path, "r");
    size_t n = fread(log, 1, sizeof log - 1, f);
    fclose(f);
    log[n] = '\0';
    char pidstr[32];
    snprintf(pidstr, sizeof pidstr, "pid %d", (int)sup);
    ck_assert_msg(strstr(log, pidstr), "second supervisor said: %s", log);
    /* the first one is undisturbed */
    json_decref(wait_all_up());
    ck_assert_int_eq(stop_supervisor(sup), 0);
}
END_TEST

START_TEST(supervisor_restarts_a_gateway_and_the_broker_killed_with_sigkill)
{
    static char out[8192];
    use_test_dir(1);
    pid_t sup = start_supervisor();
    json_t *st = wait_all_up();
    pid_t gw = proc_pid(st, "gateway0"), broker = proc_pid(st, "broker");
    json_decref(st);

    ck_assert_int_eq(kill(gw, SIGKILL), 0);
    st = wait_restarted("gateway0", gw);
    json_t *p = status_proc(st, "gateway0");
    ck_assert_int_eq(json_integer_value(json_object_get(p, "restarts")), 1);
    ck_assert_str_eq(json_string_value(json_object_get(p, "last_exit")), "signal 9 (Killed)");
    json_decref(st);

    ck_assert_int_eq(kill(broker, SIGKILL), 0);
    st = wait_restarted("broker", broker);
    ck_assert_int_eq(json_integer_value(json_object_get(status_proc(st, "broker"), "restarts")), 1);
    json_decref(st);

    ck_assert_int_eq(run_ctl(out, sizeof out, (const char *const[]){"status", "--json", NULL}), 0);
    st = json_loads(out, 0, NULL);
    ck_assert_ptr_nonnull(st);
    ck_assert(json_is_true(json_object_get(status_proc(st, "gateway0"), "up")));
    ck_assert(json_is_true(json_object_get(status_proc(st, "broker"), "up")));
    ck_assert_int_eq(json_integer_value(json_object_get(status_proc(st, "gateway0"), "restarts")),
                     1);
    json_decref(st);
    ck_assert_int_eq(stop_supervisor(sup), 0);
}
END_TEST

/* How many /dev/shm/<pfx>.* objects exist, journal ones or the others. */
static int count_shm(const char *pfx, bool journal)
{
    int n = 0;
    size_t pl = strlen(pfx);
    DIR *d = opendir("/dev/shm");
    for (struct dirent *e; d && (e = readdir(d));)
        n += strncmp(e->d_name, pfx, pl) == 0 && e->d_name[pl] == '.' &&
             (strncmp(e->d_name + pl, ".broker.journal", 15) == 0) == journal;
    if (d) closedir(d);
    return n;
}

/* A clean stop leaves nothing behind but the journal; the next start continues each
 * user's sequence (a client resuming with since=N after a restart must not see seqs
 * start again at 1). */
START_TEST(supervisor_sigterm_stops_everything_and_leaves_only_the_journal)
{
    static char out[8192], path[400];
    static const char *const names[] = {"broker", "gateway0", "gateway1"};
    pid_t pids[3];
    use_test_dir(2);
    pid_t sup = start_supervisor();
    json_t *st = wait_all_up();
    for (int i = 0; i < 3; i++)
        pids[i] = proc_pid(st, names[i]);
    json_decref(st);

    ck_assert_int_eq(run_ctl(out, sizeof out, (const char *const[]){"status", NULL}), 0);
    for (int i = 0; i < 3; i++) {
        char row[64];
        snprintf(row, sizeof row, "%d up", (int)pids[i]);
        ck_assert_msg(strstr(out, names[i]) && strstr(out, row), "status: %s", out);
    }
    ck_assert_int_gt(count_shm(prefix[2], false), 0);
    ck_assert_int_eq(run_ctl(out, sizeof out,
                             (const char *const[]){"publish", "--user", "stop-user", "--type",
                                                   "order_expired", "--id", "st-1", NULL}),
                     0);
    ck_assert_str_eq(out, "seq 1\n");

    ck_assert_int_eq(stop_supervisor(sup), 0);
    for (int i = 0; i < 3; i++)
        ck_assert_msg(kill(pids[i], 0) < 0 && errno == ESRCH, "%s (pid %d) still exists", names[i],
                      (int)pids[i]);
    static const char *const files[] = {"broker.sock", "control.sock", "status.json",
                                        "supervisor.pid"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", rundir, files[i]);
        ck_assert_msg(access(path, F_OK) < 0, "%s left behind", path);
    }
    ck_assert_int_eq(count_shm(prefix[2], false), 0);
    ck_assert_int_gt(count_shm(prefix[2], true), 0);
    ck_assert_int_eq(run_ctl(out, sizeof out, (const char *const[]){"status", NULL}), 1);

    sup = start_supervisor();
    json_decref(wait_all_up());
    ck_assert_int_eq(run_ctl(out, sizeof out,
                             (const char *const[]){"publish", "--user", "stop-user", "--type",
                                                   "order_expired", "--id", "st-2", NULL}),
                     0);
    ck_assert_str_eq(out, "seq 2\n");
    ck_assert_int_eq(stop_supervisor(sup), 0);
}
END_TEST

/* The counter key of a JSON stats body at port path, or -1 when it does not answer. */
static long long stat_of(unsigned port, const char *path, const char *key)
{
    char body[16384], pat[96];
    if (procs_http_get("127.0.0.1", (uint16_t)port, path, body, sizeof body) != 200) return -1;
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(body, pat);
    return p ? strtoll(p + strlen(pat), NULL, 10) : -1;
}

/* systemctl reload: SIGHUP to the supervisor reaches the broker and both gateways, which
 * re-read the config (config_reloads) without being restarted; a token of the new secret
 * then opens a session (heraldctl tail mints it from the new file). */
START_TEST(supervisor_sighup_reloads_every_child_without_restarting_them)
{
    static char out[8192];
    static const char *const names[] = {"broker", "gateway0", "gateway1"};
    pid_t pids[3];
    use_test_dir(4);
    pid_t sup = start_supervisor();
    json_t *st = wait_all_up();
    for (int i = 0; i < 3; i++)
        pids[i] = proc_pid(st, names[i]);
    json_decref(st);

    /* the gateways serve HTTP: their loops run (a SIGHUP before that is moot: a starting
     * process reads the file as it is) */
    for (int i = 0; i < WAIT_S * 20; i++) {
        if (stat_of(gw_port, "/stats", "config_reloads") == 0 &&
            stat_of(gw_port + 1, "/stats", "config_reloads") == 0)
            break;
        sleep_ms(50);
    }
    write_config(4, "a-rotated-secret-for-the-supervisor");
    ck_assert_int_eq(kill(sup, SIGHUP), 0);
    long long b = -1, g0 = -1, g1 = -1;
    for (int i = 0; i < WAIT_S * 20 && (b < 1 || g0 < 1 || g1 < 1); i++) {
        b = stat_of(http_port, "/api/stats", "config_reloads");
        g0 = stat_of(gw_port, "/stats", "config_reloads");
        g1 = stat_of(gw_port + 1, "/stats", "config_reloads");
        sleep_ms(50);
    }
    ck_assert_msg(b == 1 && g0 == 1 && g1 == 1, "reloads: broker %lld, gateways %lld %lld", b, g0,
                  g1);
    st = read_status();
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(proc_pid(st, names[i]), pids[i]);
        ck_assert_int_eq(json_integer_value(json_object_get(status_proc(st, names[i]), "restarts")),
                         0);
    }
    json_decref(st);
    ck_assert_int_eq(
        run_ctl(out, sizeof out,
                (const char *const[]){"tail", "--user", "hup-user", "--timeout", "2", NULL}),
        0);
    ck_assert_msg(strstr(out, "\"welcome\""), "tail with the new secret: %s", out);
    ck_assert_int_eq(stop_supervisor(sup), 0);
}
END_TEST

/* Read one line from fd (bounded wait) into line; false at EOF/timeout. */
static bool read_line(int fd, char *line, size_t len)
{
    size_t n = 0;
    time_t deadline = time(NULL) + WAIT_S;
    while (n + 1 < len && time(NULL) < deadline) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 1000) <= 0) continue;
        if (read(fd, line + n, 1) != 1) break;
        if (line[n] == '\n') {
            line[n] = '\0';
            return true;
        }
        n++;
    }
    line[n] = '\0';
    return false;
}

/* quick start: a token can be minted and the user's gateway is listening. */
static void quick_start_gateway_is_up(char *out, size_t cap)
{
    ck_assert_int_eq(run_ctl(out, cap, (const char *const[]){"token", "--user", "qs-user", NULL}),
                     0);
    ck_assert_int_gt(strlen(out), 20);
    ck_assert_int_eq(run_ctl(out, cap, (const char *const[]){"--json", "shard", "qs-user", NULL}),
                     0);
    json_t *sh = json_loads(out, 0, NULL);
    unsigned port = gw_port + (unsigned)json_integer_value(json_object_get(sh, "gateway"));
    ck_assert_msg(procs_wait_tcp("127.0.0.1", (uint16_t)port, WAIT_S * 1000) == 0,
                  "nothing listening on port %u", port);
    json_decref(sh);
}

/* quick start: a tail as the user prints the welcome, then a notification published with
 * heraldctl publish, and exits after --count 1. */
static void quick_start_tail_sees_a_publish(char *out, size_t cap)
{
    static char line[8192];
    int tail_out;
    pid_t tail = spawn((const char *const[]){ctl_bin, "-c", cfgpath, "tail", "--user", "qs-user",
                                             "--count", "1", "--timeout", "30", NULL},
                       "tail.log", &tail_out, SIGKILL);
    ck_assert_msg(read_line(tail_out, line, sizeof line), "tail printed nothing");
    ck_assert_msg(strstr(line, "\"welcome\""), "first line: %s", line);

    ck_assert_int_eq(run_ctl(out, cap,
                             (const char *const[]){"publish", "--user", "qs-user", "--type",
                                                   "system_notice", "--id", "qs-1", "--payload",
                                                   "{\"title\":\"hi\",\"content\":\"quick start\","
                                                   "\"level\":\"info\"}",
                                                   NULL}),
                     0);
    ck_assert_str_eq(out, "seq 1\n");
    ck_assert_msg(read_line(tail_out, line, sizeof line), "tail printed no notification");
    json_t *n = json_loads(line, 0, NULL);
    ck_assert_msg(n, "not JSON: %s", line);
    ck_assert_str_eq(json_string_value(json_object_get(n, "type")), "notification");
    ck_assert_str_eq(json_string_value(json_object_get(n, "message_id")), "qs-1");
    ck_assert_str_eq(json_string_value(json_object_get(n, "user_id")), "qs-user");
    ck_assert_int_eq(json_integer_value(json_object_get(n, "seq")), 1);
    json_decref(n);
    int st;
    ck_assert_int_eq(waitpid(tail, &st, 0), tail);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    close(tail_out);
}

/* quick start: a later tail resumes with --since; refusals are one-line failures. */
static void quick_start_resume_and_refusals(char *out, size_t cap)
{
    /* a later session resumes: what was published after `since` comes first */
    ck_assert_int_eq(run_ctl(out, cap,
                             (const char *const[]){"publish", "--user", "qs-user", "--type",
                                                   "order_expired", "--id", "qs-2", NULL}),
                     0);
    ck_assert_int_eq(run_ctl(out, cap,
                             (const char *const[]){"tail", "--user", "qs-user", "--since", "1",
                                                   "--count", "1", "--timeout", "10", NULL}),
                     0);
    ck_assert_msg(strstr(out, "\"message_id\":\"qs-2\"") && !strstr(out, "\"qs-1\""),
                  "tail --since 1: %s", out);

    /* refusals are one-line failures: a publish the broker rejects, a token it does not sign */
    ck_assert_int_eq(run_ctl(out, cap,
                             (const char *const[]){"publish", "--user", "qs-user", "--type",
                                                   "order_filled", NULL}),
                     1);
    ck_assert_int_eq(run_ctl(out, cap,
                             (const char *const[]){"tail", "--user", "qs-user", "--timeout", "10",
                                                   "-o", "auth.secret=not-the-secret", NULL}),
                     1);
}

/* quick start: heraldctl stats and rings show the running node. */
static void quick_start_operator_views(char *out, size_t cap)
{
    /* the operator's views of the running node */
    ck_assert_int_eq(run_ctl(out, cap, (const char *const[]){"stats", "--json", NULL}), 0);
    json_t *stats = json_loads(out, 0, NULL);
    ck_assert_msg(stats, "stats: %s", out);
    ck_assert_int_ge(
        json_integer_value(json_object_get(json_object_get(stats, "broker"), "messages_sent")), 1);
    ck_assert_int_eq(json_array_size(json_object_get(stats, "gateways")), 2);
    for (size_t i = 0; i < 2; i++)
        ck_assert_ptr_nonnull(json_object_get(json_array_get(json_object_get(stats, "gateways"), i),
                                              "messages_pushed"));
    json_decref(stats);
    ck_assert_int_eq(run_ctl(out, cap, (const char *const[]){"rings", "--json", NULL}), 0);
    json_t *rings = json_loads(out, 0, NULL);
    ck_assert_int_eq(json_array_size(rings), 2);
    for (size_t i = 0; i < 2; i++) {
        json_t *r = json_array_get(rings, i);
        ck_assert_str_eq(json_string_value(json_object_get(r, "producer")), "alive");
        ck_assert_str_eq(json_string_value(json_object_get(r, "consumer")), "alive");
    }
    json_decref(rings);
}

START_TEST(quick_start_tail_prints_a_published_notification)
{
    static char out[8192];
    use_test_dir(3);
    pid_t sup = start_supervisor();
    json_decref(wait_all_up());
    quick_start_gateway_is_up(out, sizeof out);
    quick_start_tail_sees_a_publish(out, sizeof out);
    quick_start_resume_and_refusals(out, sizeof out);
    quick_start_operator_views(out, sizeof out);
    ck_assert_int_eq(stop_supervisor(sup), 0);
}
END_TEST

/* Parent side: after the test case, wait for each supervisor to release its lock (a failed
 * test's supervisor got SIGTERM through PDEATHSIG and is cleaning up), then remove what
 * remains: files, the dirs and any shm object of the test prefixes. */
static void teardown_all(void)
{
    char path[700];
    for (int n = 0; n < N_TESTS; n++) {
        char lock[700];
        snprintf(lock, sizeof lock, "%s/run/supervisor.lock", dir[n]);
        int fd = open(lock, O_RDWR);
        for (int i = 0; fd >= 0 && i < WAIT_S * 20; i++) {
            if (flock(fd, LOCK_EX | LOCK_NB) == 0) break;
            sleep_ms(50);
        }
        if (fd >= 0) close(fd);
        size_t pl = strlen(prefix[n]);
        DIR *d = opendir("/dev/shm");
        for (struct dirent *e; d && (e = readdir(d));) {
            if (strncmp(e->d_name, prefix[n], pl) != 0 || e->d_name[pl] != '.') continue;
            snprintf(path, sizeof path, "/dev/shm/%s", e->d_name);
            unlink(path);
        }
        if (d) closedir(d);
        procs_rmtree(dir[n]);
    }
}

int main(void)
{
    const char *build = getenv("HERALD_BUILD_ROOT");
    char broker[700], gateway[700];
    snprintf(bin_dir, sizeof bin_dir, "%s", build ? build : "build");
    snprintf(ctl_bin, sizeof ctl_bin, "%s/tools/heraldctl/heraldctl", bin_dir);
    snprintf(sup_bin, sizeof sup_bin, "%s/tools/supervisor/herald-supervisor", bin_dir);
    snprintf(broker, sizeof broker, "%s/broker/herald-broker", bin_dir);
    snprintf(gateway, sizeof gateway, "%s/gateway/herald-gateway", bin_dir);
    if (access(broker, X_OK) < 0 || access(gateway, X_OK) < 0) {
        printf("skipped: %s or %s not built yet\n", broker, gateway);
        return 77;
    }
    for (int n = 0; n < N_TESTS; n++) {
        snprintf(dir[n], sizeof dir[n], "/tmp/herald-test-sup-%d-%d", (int)getpid(), n);
        snprintf(prefix[n], sizeof prefix[n], "hsup%d-%d", (int)getpid(), n);
    }
    Suite *s = suite_create("supervisor");
    TCase *tc = tcase_create("supervisor");
    tcase_add_unchecked_fixture(tc, NULL, teardown_all);
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, supervisor_refuses_a_second_instance_on_the_same_runtime_dir);
    tcase_add_test(tc, supervisor_restarts_a_gateway_and_the_broker_killed_with_sigkill);
    tcase_add_test(tc, supervisor_sigterm_stops_everything_and_leaves_only_the_journal);
    tcase_add_test(tc, quick_start_tail_prints_a_published_notification);
    tcase_add_test(tc, supervisor_sighup_reloads_every_child_without_restarting_them);
    suite_add_tcase(s, tc);
    return procs_run_suite(s);
}
