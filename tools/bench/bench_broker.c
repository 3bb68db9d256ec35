/* bench_broker.c - `herald-bench broker`: notifications/s from producers into the rings.
 *
 * Each run starts a private herald-broker (own runtime dir, shm prefix and HTTP port), forks a
 * bench consumer that attaches to ring 0 through the control socket like a gateway, opens one
 * session per user and drains the ring (sleeping on the doorbell when empty), and then
 * publishes `count` notifications: natively as pipelined batch frames, or over HTTP keep-alive
 * as JSON array bodies. Throughput is count / (first send .. consumer read the last record).
 * The median of the runs is reported as one JSON line and a table.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <msgpack.h>

#include "bench.h"
#include "bench_broker.h"
#include "doorbell.h"
#include "fdio.h"
#include "frame.h"
#include "herald.h"
#include "herald_time.h"
#include "proto.h"
#include "ring.h"

#define BB_MAX_RUNS   16
#define BB_WAKE_BY_MS 5 /* the default gateway.flush_ms of P1 */

typedef struct {
    uint64_t end_ns, received;
} bb_consumer_result_t;

static uint16_t free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    bind(fd, (struct sockaddr *)&sa, sizeof sa);
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    close(fd);
    return ntohs(sa.sin_port);
}

static int unix_connect(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int broker_start(bb_broker_t *b, const bb_opts_t *o)
{
    memset(b, 0, sizeof *b);
    snprintf(b->dir, sizeof b->dir, "/tmp/hbench.%d.XXXXXX", (int)getpid());
    if (!mkdtemp(b->dir)) return -1;
    snprintf(b->prefix, sizeof b->prefix, "hbench%d", (int)getpid());
    snprintf(b->sock, sizeof b->sock, "%s/broker.sock", b->dir);
    snprintf(b->ctrl, sizeof b->ctrl, "%s/control.sock", b->dir);
    b->http_port = free_port();
    char cfg[128], http[64], rt[128], pf[96];
    snprintf(cfg, sizeof cfg, "%s/herald.ini", b->dir);
    FILE *f = fopen(cfg, "w");
    if (!f) return -1;
    fprintf(f, "[broker]\nqueue_capacity = 1000000,1000000,1000000,1000000\nhistory_size = 100\n"
               "[gateway]\nring_bytes = 64M\n[auth]\nsecret = bench\n[log]\nlevel = warn\n");
    fclose(f);
    snprintf(http, sizeof http, "broker.http=127.0.0.1:%u", b->http_port);
    snprintf(rt, sizeof rt, "runtime.dir=%s", b->dir);
    snprintf(pf, sizeof pf, "runtime.shm_prefix=%s", b->prefix);
    b->pid = fork();
    if (b->pid < 0) return -1;
    if (b->pid == 0) {
        execl(o->broker_bin, o->broker_bin, "-c", cfg, "-o", http, "-o", rt, "-o", pf,
              (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 500; i++) {
        int fd = unix_connect(b->ctrl);
        if (fd >= 0) {
            close(fd);
            return 0;
        }
        usleep(10000);
    }
    return -1;
}

static void broker_stop(bb_broker_t *b)
{
    if (b->pid > 0) {
        kill(b->pid, SIGKILL);
        waitpid(b->pid, NULL, 0);
        b->pid = 0;
    }
    DIR *d = opendir("/dev/shm");
    size_t pl = strlen(b->prefix);
    for (struct dirent *e; d && (e = readdir(d));) {
        if (strncmp(e->d_name, b->prefix, pl) || e->d_name[pl] != '.') continue;
        char p[400];
        snprintf(p, sizeof p, "/dev/shm/%s", e->d_name);
        unlink(p);
    }
    if (d) closedir(d);
    const char *files[] = {"broker.sock", "control.sock", "herald.ini"};
    for (size_t i = 0; i < 3; i++) {
        char p[200];
        snprintf(p, sizeof p, "%s/%s", b->dir, files[i]);
        unlink(p);
    }
    rmdir(b->dir);
}

static int ctl_send(int fd, msgpack_sbuffer *sb)
{
    uint8_t hdr[FRAME_HDR];
    frame_put_len(hdr, (uint32_t)sb->size);
    int rc = (fd_write_all(fd, hdr, FRAME_HDR) || fd_write_all(fd, sb->data, sb->size)) ? -1 : 0;
    msgpack_sbuffer_clear(sb);
    return rc;
}

static int count_notify(uint32_t type, const uint8_t *data, uint32_t len, void *ctx)
{
    (void)data;
    (void)len;
    if (type == REC_NOTIFY) ++*(uint64_t *)ctx;
    return 0;
}

/* The bench gateway: hello, one session per user, then drain until `count` notifications. */
static int consumer_run(const bb_broker_t *b, const bb_opts_t *o, int ready_fd, int result_fd)
{
    int fd = unix_connect(b->ctrl);
    if (fd < 0) return 1;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 4);
    bb_pk_str(&pk, "op"), bb_pk_str(&pk, "hello");
    bb_pk_str(&pk, "gw"), msgpack_pack_uint32(&pk, 0);
    bb_pk_str(&pk, "pid"), msgpack_pack_uint32(&pk, (uint32_t)getpid());
    bb_pk_str(&pk, "version"), msgpack_pack_uint32(&pk, PROTO_VERSION);
    if (ctl_send(fd, &sb) < 0) return 1;
    uint8_t buf[512];
    if (read(fd, buf, sizeof buf) <= 0) return 1;
    char name[160];
    herald_error_t err;
    ring_t *r;
    ring_name(name, sizeof name, b->prefix, 0);
    if (ring_open(&r, name, RING_CONSUMER, 0, 0, &err) < 0) return 1;
    for (uint32_t u = 0; u < o->users; u++) {
        char user[32];
        snprintf(user, sizeof user, "user%u", u);
        msgpack_pack_map(&pk, 4);
        bb_pk_str(&pk, "op"), bb_pk_str(&pk, "open");
        bb_pk_str(&pk, "session"), msgpack_pack_uint32(&pk, u + 1);
        bb_pk_str(&pk, "user"), bb_pk_str(&pk, user);
        bb_pk_str(&pk, "since"), msgpack_pack_uint32(&pk, 0);
        if (ctl_send(fd, &sb) < 0) return 1;
    }
    usleep(100000);
    ring_skip_all(r); /* the session-ready records */
    if (write(ready_fd, "r", 1) != 1) return 1;
    uint64_t got = 0, deadline = mono_ns() + BB_TIMEOUT_S * 1000000000ull;
    while (got < o->count && mono_ns() < deadline) {
        if (ring_read_batch(r, count_notify, &got, 65536) > 0) continue;
        /* Sleep as a gateway does: promise to look again within P1's flush delay, so the
         * broker rings only for what cannot wait that long (P0, batch_size deferred, a
         * quarter-full ring), not for every round. */
        if (ring_set_wake_by(r, mono_ns() + BB_WAKE_BY_MS * 1000000ull)) continue;
        uint32_t v;
        if (ring_prepare_sleep(r, &v)) doorbell_wait(ring_doorbell_word(r), v, BB_WAKE_BY_MS);
        ring_end_sleep(r);
    }
    bb_consumer_result_t res = {mono_ns(), got};
    if (write(result_fd, &res, sizeof res) != sizeof res) return 1;
    ring_close(r);
    close(fd);
    return 0;
}

static int bb_once(const bb_opts_t *o, double *per_s, double *broker_cpu)
{
    bb_broker_t b;
    int rc = -1;
    int ready[2], result[2];
    if (broker_start(&b, o) < 0) {
        fprintf(stderr, "herald-bench broker: cannot start %s\n", o->broker_bin);
        broker_stop(&b);
        return -1;
    }
    if (pipe(ready) < 0 || pipe(result) < 0) goto out;
    pid_t cons = fork();
    if (cons == 0) _exit(consumer_run(&b, o, ready[1], result[1]));
    char ch;
    if (read(ready[0], &ch, 1) != 1) goto reap;
    uint64_t start = mono_ns(), refused = 0;
    int prc = !strcmp(o->mode, "http")    ? bb_produce_http(&b, o)
              : !strcmp(o->mode, "http1") ? bb_produce_http1(&b, o)
                                          : bb_produce_native(&b, o, &refused);
    bb_consumer_result_t res;
    if (prc == 0 && read(result[0], &res, sizeof res) == sizeof res &&
        res.received >= o->count - refused) {
        *per_s = (double)res.received / ((double)(res.end_ns - start) / 1e9);
        rc = 0;
    } else {
        fprintf(stderr, "herald-bench broker: run failed (producer rc %d, refused %llu)\n", prc,
                (unsigned long long)refused);
    }
    char statp[64], line[1024];
    snprintf(statp, sizeof statp, "/proc/%d/stat", (int)b.pid);
    FILE *f = fopen(statp, "r");
    if (f && fgets(line, sizeof line, f)) {
        char *p = strrchr(line, ')');
        unsigned long ut = 0, st = 0;
        if (p &&
            sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) == 2)
            *broker_cpu = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
    }
    if (f) fclose(f);
reap:
    kill(cons, SIGKILL);
    waitpid(cons, NULL, 0);
out:
    broker_stop(&b);
    return rc;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void bb_usage(FILE *out)
{
    fprintf(out, "usage: herald-bench broker [--mode native|http|http1] [--count N] [--batch B]\n"
                 "         [--pipeline P] [--conns C] [--users U] [--payload BYTES] [--runs R]\n"
                 "         [--no-ids] [--broker-bin PATH]\n"
                 "  native: P batch frames of B in flight on one connection (defaults 2000000,\n"
                 "  1000, 8); http: P keep-alive connections, one array body of B each\n"
                 "  (defaults 300000, 1000, 2); http1: one notification per request on C\n"
                 "  keep-alive connections, P pipelined on each (defaults 300000, C 16, P 1).\n"
                 "  The broker and a bench gateway run per run. Each notification has a unique\n"
                 "  message_id unless --no-ids (http and native).\n");
}

/* Read the options into o. Returns 0 to run, 1 after --help, or -1 on a bad option or value
 * (usage on stderr). */
static int bb_parse_opts(int argc, char **argv, bb_opts_t *o)
{
    bool pipe_set = false;
    static const struct option longopts[] = {
        {"mode", required_argument, 0, 'm'},  {"count", required_argument, 0, 'n'},
        {"batch", required_argument, 0, 'b'}, {"pipeline", required_argument, 0, 'p'},
        {"users", required_argument, 0, 'u'}, {"payload", required_argument, 0, 's'},
        {"runs", required_argument, 0, 'r'},  {"broker-bin", required_argument, 0, 'x'},
        {"no-ids", no_argument, 0, 'i'},      {"help", no_argument, 0, 'h'},
        {"conns", required_argument, 0, 'c'}, {0, 0, 0, 0},
    };
    int opt;
    while ((opt = getopt_long(argc, argv, "m:n:b:p:u:s:r:x:ihc:", longopts, NULL)) != -1) {
        switch (opt) {
        case 'm':
            o->mode = optarg;
            break;
        case 'n':
            o->count = strtoull(optarg, NULL, 10);
            break;
        case 'b':
            o->batch = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'p':
            o->pipeline = (uint32_t)strtoul(optarg, NULL, 10), pipe_set = true;
            break;
        case 'u':
            o->users = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 's':
            o->payload = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'r':
            o->runs = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'x':
            o->broker_bin = optarg;
            break;
        case 'i':
            o->no_ids = true;
            break;
        case 'c':
            o->conns = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'h':
            bb_usage(stdout);
            return 1;
        default:
            bb_usage(stderr);
            return -1;
        }
    }
    bool http = !strcmp(o->mode, "http"), http1 = !strcmp(o->mode, "http1");
    if (!http && !http1 && strcmp(o->mode, "native")) {
        bb_usage(stderr);
        return -1;
    }
    if (!o->count) o->count = http || http1 ? 300000 : 2000000;
    if (!pipe_set) o->pipeline = http1 ? 1 : http ? 2 : 8;
    if (!o->conns) o->conns = 16;
    if (http1) o->batch = 1;
    if (!o->batch || !o->users || !o->pipeline || o->payload > 1000 || o->runs < 1 ||
        o->runs > BB_MAX_RUNS) {
        fprintf(stderr, "herald-bench broker: bad option value\n");
        return -1;
    }
    return 0;
}

/* Print the runs' rates and broker CPU, and their medians, as one JSON line and a table. */
static void bb_report(const bb_opts_t *o, const double *rates, const double *cpu)
{
    double sorted[BB_MAX_RUNS];
    memcpy(sorted, rates, o->runs * sizeof *rates);
    qsort(sorted, o->runs, sizeof *sorted, cmp_d);
    double med = sorted[o->runs / 2];
    printf("{\"bench\":\"broker\",\"mode\":\"%s\",\"count\":%llu,\"batch\":%u,\"pipeline\":%u,"
           "\"users\":%u,\"payload\":%u,\"ids\":%s,\"runs\":%u,\"median_per_s\":%.0f,"
           "\"runs_per_s\":[",
           o->mode, (unsigned long long)o->count, o->batch, o->pipeline, o->users, o->payload,
           o->no_ids ? "false" : "true", o->runs, med);
    for (uint32_t i = 0; i < o->runs; i++)
        printf("%s%.0f", i ? "," : "", rates[i]);
    printf("],\"broker_cpu_s\":[");
    for (uint32_t i = 0; i < o->runs; i++)
        printf("%s%.2f", i ? "," : "", cpu[i]);
    memcpy(sorted, cpu, o->runs * sizeof *cpu);
    qsort(sorted, o->runs, sizeof *sorted, cmp_d);
    double cpu_us = sorted[o->runs / 2] * 1e6 / (double)o->count;
    printf("],\"conns\":%u,\"broker_cpu_us_per_notification\":%.2f}\n", o->conns, cpu_us);
    printf("%-8s %10s %7s %8s %6s %14s %16s\n", "mode", "count", "batch", "pipeline", "conns",
           "median/s", "broker us/notif");
    printf("%-8s %10llu %7u %8u %6u %14.0f %16.2f\n", o->mode, (unsigned long long)o->count,
           o->batch, o->pipeline, o->conns, med, cpu_us);
}

int bench_broker_main(int argc, char **argv)
{
    static char self_bin[512];
    bb_opts_t o = {.mode = "native", .batch = 1000, .users = 1000, .runs = 3, .payload = 100};
    int prc = bb_parse_opts(argc, argv, &o);
    if (prc) return prc > 0 ? 0 : 2;
    if (!o.broker_bin) { /* build tree: tools/bench/../../broker/herald-broker */
        ssize_t n = readlink("/proc/self/exe", self_bin, sizeof self_bin - 32);
        if (n <= 0) return 1;
        self_bin[n] = '\0';
        char *slash = strrchr(self_bin, '/');
        strcpy(slash, "/../../broker/herald-broker");
        o.broker_bin = self_bin;
    }
    double rates[BB_MAX_RUNS], cpu[BB_MAX_RUNS];
    for (uint32_t i = 0; i < o.runs; i++) {
        cpu[i] = 0;
        if (bb_once(&o, &rates[i], &cpu[i]) < 0) return 1;
    }
    bb_report(&o, rates, cpu);
    return 0;
}
