/* bench_procs.c - start, observe and stop the herald under test (by pid, never by name). */
#include "bench_procs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>

#include "herald_time.h"
#include "ring.h"

#define READY_TIMEOUT_NS (15ull * 1000000000ull)
#define STOP_GRACE_NS    (5ull * 1000000000ull)

/* Path of a herald binary: $HERALD_BIN_DIR, else beside our executable, else in the build
 * tree's sibling folder (build/tools/bench/herald-bench -> build/broker/herald-broker). */
static int find_bin(const char *name, const char *subdir, char *out, size_t outlen)
{
    char self[512], dir[512];
    const char *env = getenv("HERALD_BIN_DIR");
    if (env) {
        snprintf(out, outlen, "%s/%s", env, name);
        return access(out, X_OK) == 0 ? 0 : -1;
    }
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n < 0) return -1;
    self[n] = '\0';
    if (snprintf(dir, sizeof dir, "%s", dirname(self)) >= (int)sizeof dir) return -1;
    if (snprintf(out, outlen, "%s/%s", dir, name) >= (int)outlen) return -1;
    if (access(out, X_OK) == 0) return 0;
    if (snprintf(out, outlen, "%s/../../%s/%s", dir, subdir, name) >= (int)outlen) return -1;
    return access(out, X_OK) == 0 ? 0 : -1;
}

/* A base port with `count` consecutive free TCP ports on 127.0.0.1, below the ephemeral
 * range so our own client connections cannot take them. 0 if none found. */
static unsigned free_ports(unsigned count)
{
    unsigned seed = (unsigned)getpid() * 7919u + (unsigned)mono_ns();
    for (int attempt = 0; attempt < 200; attempt++) {
        unsigned base = 20000 + (seed + (unsigned)attempt * 613u) % 10000;
        unsigned ok = 0;
        for (; ok < count; ok++) {
            struct sockaddr_in sa = {.sin_family = AF_INET,
                                     .sin_port = htons((uint16_t)(base + ok)),
                                     .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
            int fd = socket(AF_INET, SOCK_STREAM, 0);
            int bad = fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0;
            if (fd >= 0) close(fd);
            if (bad) break;
        }
        if (ok == count) return base;
    }
    return 0;
}

static int set_override(bench_run_t *r, char *store, size_t len, const char *key, const char *value)
{
    herald_error_t err;
    if (r->n_overrides >= BENCH_MAX_OVERRIDES) return -1;
    if (snprintf(store, len, "%s=%s", key, value) >= (int)len) return -1;
    r->overrides[r->n_overrides++] = store;
    if (config_set(&r->cfg, key, value, &err) < 0) {
        fprintf(stderr, "herald-bench: %s: %s\n", key, err.message);
        return -1;
    }
    return 0;
}

static pid_t start_child(bprocs_t *ps, const bench_run_t *r, const char *bin, int gw)
{
    const char *argv[8 + 2 * BENCH_MAX_OVERRIDES];
    char id[16], log[200];
    int n = 0;
    argv[n++] = bin;
    if (gw >= 0) {
        snprintf(id, sizeof id, "%d", gw);
        argv[n++] = "--id";
        argv[n++] = id;
    }
    argv[n++] = "-c";
    argv[n++] = r->config_path;
    for (unsigned i = 0; i < r->n_overrides; i++) {
        argv[n++] = "-o";
        argv[n++] = r->overrides[i];
    }
    argv[n] = NULL;
    if (gw < 0)
        snprintf(log, sizeof log, "%s/broker.log", ps->run_dir);
    else
        snprintf(log, sizeof log, "%s/gateway%d.log", ps->run_dir, gw);
    pid_t parent = getpid(), pid = fork();
    if (pid != 0) return pid;
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the bench */
    if (getppid() != parent) _exit(1);
    setpgid(0, 0); /* a Ctrl-C reaches the bench, which stops us in order */
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
    }
    execv(bin, (char *const *)argv);
    fprintf(stderr, "exec %s: %s\n", bin, strerror(errno));
    _exit(127);
}

static bool connects(const struct sockaddr *sa, socklen_t len)
{
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool ok = fd >= 0 && connect(fd, sa, len) == 0;
    if (fd >= 0) close(fd);
    return ok;
}

/* Wait until addr accepts connections while pid lives. */
static int wait_ready(bproc_t *p, const struct sockaddr *sa, socklen_t len)
{
    uint64_t deadline = mono_ns() + READY_TIMEOUT_NS;
    while (mono_ns() < deadline) {
        int st;
        if (waitpid(p->pid, &st, WNOHANG) == p->pid) {
            fprintf(stderr, "herald-bench: %s (pid %d) exited during start-up (status %d)\n",
                    p->name, (int)p->pid, WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st));
            p->pid = 0;
            return -1;
        }
        if (connects(sa, len)) return 0;
        struct timespec ts = {0, 20 * 1000000};
        nanosleep(&ts, NULL);
    }
    fprintf(stderr, "herald-bench: %s (pid %d) not accepting connections after 15 s\n", p->name,
            (int)p->pid);
    return -1;
}

static void print_log_tail(const bprocs_t *ps, const char *file)
{
    char path[256], line[512];
    snprintf(path, sizeof path, "%s/%s", ps->run_dir, file);
    FILE *f = fopen(path, "r");
    if (!f) return;
    fprintf(stderr, "--- %s\n", path);
    for (int n = 0; fgets(line, sizeof line, f) && n < 40; n++)
        fputs(line, stderr);
    fclose(f);
}

static int write_config(bprocs_t *ps, bench_run_t *r, char *path, size_t len)
{
    unsigned char key[16];
    FILE *f;
    snprintf(path, len, "%s/bench.ini", ps->run_dir);
    int fd = open("/dev/urandom", O_RDONLY);
    if (fd < 0 || read(fd, key, sizeof key) != (ssize_t)sizeof key) {
        if (fd >= 0) close(fd);
        return -1;
    }
    close(fd);
    if (!(f = fopen(path, "w"))) return -1;
    fprintf(f, "; written by herald-bench for one run\n[auth]\nsecret = bench-");
    for (size_t i = 0; i < sizeof key; i++)
        fprintf(f, "%02x", key[i]);
    fprintf(f, "\n");
    if (fclose(f) != 0) return -1;
    r->config_path = path;
    return bench_load_config(r);
}

int bprocs_spawn(bprocs_t *ps, bench_run_t *r)
{
    static char ovr[6][200], cfg_path[200];
    char broker[512], gateway[512], val[64];
    memset(ps, 0, sizeof *ps);
    snprintf(ps->run_dir, sizeof ps->run_dir, "/tmp/herald-bench.XXXXXX");
    if (!mkdtemp(ps->run_dir)) {
        fprintf(stderr, "herald-bench: mkdtemp: %s\n", strerror(errno));
        ps->run_dir[0] = '\0';
        return -1;
    }
    snprintf(ps->shm_prefix, sizeof ps->shm_prefix, "hbench%d", (int)getpid());
    if (find_bin("herald-broker", "broker", broker, sizeof broker) < 0 ||
        find_bin("herald-gateway", "gateway", gateway, sizeof gateway) < 0) {
        fprintf(stderr, "herald-bench: herald-broker/herald-gateway not found beside this "
                        "executable (set HERALD_BIN_DIR)\n");
        return -1;
    }
    if (!r->config_path && write_config(ps, r, cfg_path, sizeof cfg_path) < 0) {
        fprintf(stderr, "herald-bench: cannot write %s/bench.ini\n", ps->run_dir);
        return -1;
    }
    /* one block: two separate picks could hand the broker a gateway's port */
    unsigned gw_base = free_ports(r->gateways + 1), http = gw_base + r->gateways;
    if (!gw_base) {
        fprintf(stderr, "herald-bench: no free loopback ports\n");
        return -1;
    }
    snprintf(val, sizeof val, "%u", r->gateways);
    if (set_override(r, ovr[0], sizeof ovr[0], "runtime.dir", ps->run_dir) < 0 ||
        set_override(r, ovr[1], sizeof ovr[1], "runtime.shm_prefix", ps->shm_prefix) < 0 ||
        set_override(r, ovr[2], sizeof ovr[2], "gateway.count", val) < 0)
        return -1;
    snprintf(val, sizeof val, "127.0.0.1:%u", http);
    if (set_override(r, ovr[3], sizeof ovr[3], "broker.http", val) < 0) return -1;
    snprintf(val, sizeof val, "127.0.0.1:%u", gw_base);
    if (set_override(r, ovr[4], sizeof ovr[4], "gateway.listen", val) < 0) return -1;

    struct sockaddr_un su = {.sun_family = AF_UNIX};
    if (snprintf(su.sun_path, sizeof su.sun_path, "%s/broker.sock", ps->run_dir) >=
        (int)sizeof su.sun_path)
        return -1;
    snprintf(r->broker_addr, sizeof r->broker_addr, "%s", su.sun_path);
    bproc_t *b = &ps->procs[ps->n++];
    snprintf(b->name, sizeof b->name, "broker");
    b->ours = true;
    b->pid = start_child(ps, r, broker, -1);
    if (b->pid < 0 || wait_ready(b, (struct sockaddr *)&su, sizeof su) < 0) goto failed;
    for (unsigned i = 0; i < r->gateways; i++) {
        bproc_t *g = &ps->procs[ps->n++];
        snprintf(g->name, sizeof g->name, "gateway%u", i);
        g->ours = true;
        g->pid = start_child(ps, r, gateway, (int)i);
        struct sockaddr_in sa = {.sin_family = AF_INET,
                                 .sin_port = htons((uint16_t)(gw_base + i)),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        if (g->pid < 0 || wait_ready(g, (struct sockaddr *)&sa, sizeof sa) < 0) goto failed;
    }
    fprintf(stderr, "herald-bench e2e: started in %s:", ps->run_dir);
    for (unsigned i = 0; i < ps->n; i++)
        fprintf(stderr, " %s pid %d", ps->procs[i].name, (int)ps->procs[i].pid);
    fprintf(stderr, "\n");
    return 0;
failed:
    print_log_tail(ps, "broker.log");
    for (unsigned i = 0; i + 1 < ps->n; i++) {
        char f[32];
        snprintf(f, sizeof f, "gateway%u.log", i);
        print_log_tail(ps, f);
    }
    return -1;
}

/* The broker and gateways of one running herald (cfg), from its rings' headers; names get
 * the prefix (a node's, or ""). */
static void find_node(bprocs_t *ps, const herald_config_t *cfg, unsigned gateways,
                      const char *prefix)
{
    if (ps->n >= sizeof ps->procs / sizeof ps->procs[0]) return;
    bproc_t *broker = &ps->procs[ps->n++];
    snprintf(broker->name, sizeof broker->name, "%sbroker", prefix);
    for (unsigned i = 0; i < gateways && i < BENCH_MAX_GATEWAYS; i++) {
        char name[128];
        ring_t *ring;
        ring_stats_t st;
        herald_error_t err;
        if (ps->n >= sizeof ps->procs / sizeof ps->procs[0]) return;
        bproc_t *g = &ps->procs[ps->n++];
        snprintf(g->name, sizeof g->name, "%sgateway%u", prefix, i);
        ring_name(name, sizeof name, cfg->shm_prefix, i);
        if (ring_open(&ring, name, RING_INSPECT, 0, i, &err) < 0) continue;
        ring_stats(ring, &st);
        ring_close(ring);
        g->pid = st.consumer_pid;
        if (!broker->pid) broker->pid = st.producer_pid;
    }
}

void bprocs_find(bprocs_t *ps, const bench_run_t *r)
{
    memset(ps, 0, sizeof *ps);
    if (!r->n_nodes) {
        find_node(ps, &r->cfg, r->gateways, "");
        return;
    }
    for (unsigned k = 0; k < r->n_nodes; k++) {
        char prefix[16];
        snprintf(prefix, sizeof prefix, "n%u.", k + 1);
        find_node(ps, &r->node_cfg[k], r->node_cfg[k].gateway_count, prefix);
    }
}

/* utime + stime of pid in seconds, or -1. */
static double proc_cpu_s(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    unsigned long ut, st;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static long proc_status_kib(pid_t pid, const char *key)
{
    char path[64], line[256];
    long v = -1;
    size_t klen = strlen(key);
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
            v = strtol(line + klen + 1, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}

/* Busy (not idle, not iowait) CPU seconds of the whole machine since boot, or -1. */
static double machine_busy_s(void)
{
    unsigned long long v[8] = {0};
    FILE *f = fopen("/proc/stat", "r");
    if (!f) return -1;
    int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                   &v[4], &v[5], &v[6], &v[7]);
    fclose(f);
    if (n != 8) return -1;
    unsigned long long busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
    return (double)busy / (double)sysconf(_SC_CLK_TCK);
}

void bprocs_sample(bprocs_t *ps, bool start)
{
    if (start)
        ps->sys_busy0_s = machine_busy_s();
    else
        ps->sys_busy_s = machine_busy_s();
    for (unsigned i = 0; i < ps->n; i++) {
        bproc_t *p = &ps->procs[i];
        if (!p->pid) continue;
        double cpu = proc_cpu_s(p->pid);
        if (start) {
            p->cpu0_s = cpu;
            p->rss0_kib = proc_status_kib(p->pid, "VmRSS");
            continue;
        }
        p->cpu_s = cpu;
        p->rss_kib = proc_status_kib(p->pid, "VmRSS");
        p->hwm_kib = proc_status_kib(p->pid, "VmHWM");
    }
}

static void remove_tree_files(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[512];
    if (!d) return;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            unlink(path);
        }
    closedir(d);
    rmdir(dir);
}

static void remove_shm(const char *prefix)
{
    DIR *d = opendir("/dev/shm");
    struct dirent *e;
    size_t plen = strlen(prefix);
    if (!d) return;
    while ((e = readdir(d)))
        if (strncmp(e->d_name, prefix, plen) == 0 && e->d_name[plen] == '.') shm_unlink(e->d_name);
    closedir(d);
}

void bprocs_stop(bprocs_t *ps)
{
    /* gateways first, then the broker: the reverse of start-up */
    for (unsigned i = ps->n; i-- > 0;) {
        bproc_t *p = &ps->procs[i];
        if (!p->ours || p->pid <= 0) continue;
        kill(p->pid, SIGTERM);
        uint64_t deadline = mono_ns() + STOP_GRACE_NS;
        while (waitpid(p->pid, NULL, WNOHANG) == 0) {
            if (mono_ns() > deadline) {
                fprintf(stderr, "herald-bench: %s (pid %d) ignored SIGTERM; killing it\n", p->name,
                        (int)p->pid);
                kill(p->pid, SIGKILL);
                waitpid(p->pid, NULL, 0);
                break;
            }
            struct timespec ts = {0, 10 * 1000000};
            nanosleep(&ts, NULL);
        }
        p->pid = 0;
    }
    if (ps->shm_prefix[0]) remove_shm(ps->shm_prefix);
    if (ps->run_dir[0]) remove_tree_files(ps->run_dir);
    ps->shm_prefix[0] = ps->run_dir[0] = '\0';
}
