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
#include "bench_http1.h"
#include "doorbell.h"
#include "frame.h"
#include "herald.h"
#include "herald_time.h"
#include "proto.h"
#include "ring.h"

#define BB_MAX_RUNS  16
#define BB_TIMEOUT_S 120

typedef struct {
    const char *mode; /* native | http | http1 */
    uint64_t count;
    uint32_t batch, pipeline, users, runs, payload, conns;
    bool no_ids; /* leave message_id out: the broker generates one per notification */
    const char *broker_bin;
} bb_opts_t;

/* Every notification carries a unique message_id, as producers relying on dedup send:
 * BB_ID_LEN hex digits at known offsets in the pre-encoded bodies, rewritten per request. */

typedef struct {
    uint8_t *body;
    size_t *off; /* batch offsets of the id digits in body */
} bb_body_t;

/* Write request number req's ids (req * batch + i) into body. */
static void ids_stamp(const bb_body_t *b, uint32_t batch, uint64_t req)
{
    static const char hex[] = "0123456789abcdef";
    for (uint32_t i = 0; i < batch; i++) {
        uint64_t id = req * batch + i;
        uint8_t *d = b->body + b->off[i];
        for (int k = BB_ID_LEN - 1; k >= 0; k--, id >>= 4)
            d[k] = (uint8_t)hex[id & 15];
    }
}

typedef struct {
    char dir[64], prefix[64], sock[100], ctrl[100];
    uint16_t http_port;
    pid_t pid;
} bb_broker_t;

typedef struct {
    uint64_t end_ns, received;
} bb_consumer_result_t;

static int write_all(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n) {
        ssize_t w = write(fd, b, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

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

static int tcp_connect(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
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

static void pk_s(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str(pk, strlen(s));
    msgpack_pack_str_body(pk, s, strlen(s));
}

static int ctl_send(int fd, msgpack_sbuffer *sb)
{
    uint8_t hdr[FRAME_HDR];
    frame_put_len(hdr, (uint32_t)sb->size);
    int rc = (write_all(fd, hdr, FRAME_HDR) || write_all(fd, sb->data, sb->size)) ? -1 : 0;
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
    pk_s(&pk, "op"), pk_s(&pk, "hello");
    pk_s(&pk, "gw"), msgpack_pack_uint32(&pk, 0);
    pk_s(&pk, "pid"), msgpack_pack_uint32(&pk, (uint32_t)getpid());
    pk_s(&pk, "version"), msgpack_pack_uint32(&pk, PROTO_VERSION);
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
        pk_s(&pk, "op"), pk_s(&pk, "open");
        pk_s(&pk, "session"), msgpack_pack_uint32(&pk, u + 1);
        pk_s(&pk, "user"), pk_s(&pk, user);
        pk_s(&pk, "since"), msgpack_pack_uint32(&pk, 0);
        if (ctl_send(fd, &sb) < 0) return 1;
    }
    usleep(100000);
    ring_skip_all(r); /* the session-ready records */
    if (write(ready_fd, "r", 1) != 1) return 1;
    uint64_t got = 0, deadline = mono_ns() + BB_TIMEOUT_S * 1000000000ull;
    while (got < o->count && mono_ns() < deadline) {
        if (ring_read_batch(r, count_notify, &got, 65536) > 0) continue;
        uint32_t v;
        if (ring_prepare_sleep(r, &v)) doorbell_wait(ring_doorbell_word(r), v, 100);
        ring_end_sleep(r);
    }
    bb_consumer_result_t res = {mono_ns(), got};
    if (write(result_fd, &res, sizeof res) != sizeof res) return 1;
    ring_close(r);
    close(fd);
    return 0;
}

void bench_pack_notif(msgpack_packer *pk, msgpack_sbuffer *sb, uint32_t u, uint32_t payload,
                      size_t *id_off)
{
    char user[32], pad[1024];
    snprintf(user, sizeof user, "user%u", u);
    memset(pad, 'x', payload < sizeof pad ? payload : sizeof pad - 1);
    msgpack_pack_map(pk, id_off ? 6 : 5);
    if (id_off) {
        pk_s(pk, "message_id");
        msgpack_pack_str(pk, BB_ID_LEN);
        *id_off = sb->size;
        msgpack_pack_str_body(pk, "0000000000000000", BB_ID_LEN);
    }
    pk_s(pk, "message_type"), pk_s(pk, "system_notice");
    pk_s(pk, "user_id"), pk_s(pk, user);
    pk_s(pk, "priority"), msgpack_pack_uint32(pk, 1);
    pk_s(pk, "source"), pk_s(pk, "bench");
    pk_s(pk, "payload");
    msgpack_pack_map(pk, 3);
    pk_s(pk, "title"), pk_s(pk, "bench");
    pk_s(pk, "level"), pk_s(pk, "info");
    pk_s(pk, "content");
    uint32_t n = payload < sizeof pad ? payload : (uint32_t)sizeof pad - 1;
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, pad, n);
}

static int produce_native(const bb_broker_t *b, const bb_opts_t *o, uint64_t *refused)
{
    herald_error_t err;
    herald_client_t *c = herald_connect(b->sock, &err);
    if (!c) return -1;
    uint32_t frames = (uint32_t)((o->count + o->batch - 1) / o->batch);
    msgpack_sbuffer body[8];
    bb_body_t ids[8];
    msgpack_packer pk;
    for (int v = 0; v < 8; v++) { /* a few batch bodies spreading users */
        msgpack_sbuffer_init(&body[v]);
        msgpack_packer_init(&pk, &body[v], msgpack_sbuffer_write);
        msgpack_pack_array(&pk, o->batch);
        ids[v].off = calloc(o->batch, sizeof *ids[v].off);
        for (uint32_t i = 0; i < o->batch; i++)
            bench_pack_notif(&pk, &body[v], (v * o->batch + i) % o->users, o->payload,
                             o->no_ids ? NULL : &ids[v].off[i]);
    }
    herald_result_t *res = malloc(o->batch * sizeof *res);
    uint32_t sent = 0, done = 0;
    int rc = 0;
    while (done < frames) {
        while (sent < frames && sent - done < o->pipeline) {
            if (!o->no_ids) {
                ids[sent % 8].body = (uint8_t *)body[sent % 8].data;
                ids_stamp(&ids[sent % 8], o->batch, sent);
            }
            if (herald_send(c, (uint8_t *)body[sent % 8].data, body[sent % 8].size, &err) < 0) {
                rc = -1;
                goto out;
            }
            sent++;
        }
        long n = herald_recv_results(c, res, o->batch, &err);
        if (n < 0) {
            rc = -1;
            goto out;
        }
        for (long i = 0; i < n; i++)
            *refused += !res[i].ok;
        done++;
    }
out:
    free(res);
    for (int v = 0; v < 8; v++) {
        msgpack_sbuffer_destroy(&body[v]);
        free(ids[v].off);
    }
    herald_close(c);
    return rc;
}

/* Read one HTTP response (headers + Content-Length body) from fd into buf. */
static int http_read(int fd, char *buf, size_t cap)
{
    size_t len = 0;
    for (;;) {
        ssize_t r = read(fd, buf + len, cap - len - 1);
        if (r <= 0) return -1;
        len += (size_t)r;
        buf[len] = '\0';
        char *eoh = strstr(buf, "\r\n\r\n");
        if (!eoh) continue;
        char *cl = strcasestr(buf, "content-length:");
        size_t clen = cl ? strtoul(cl + 15, NULL, 10) : 0;
        if (len >= (size_t)(eoh + 4 - buf) + clen) return atoi(buf + 9);
        if (len + 1 >= cap) return -1;
    }
}

/* Send request number n (its ids stamped first, unless ids is NULL). */
static int http_send(int fd, char *req, size_t len, const bb_body_t *ids, uint32_t batch,
                     uint64_t n)
{
    if (ids) ids_stamp(ids, batch, n);
    return write_all(fd, req, len);
}

static int produce_http(const bb_broker_t *b, const bb_opts_t *o)
{
    char *req = malloc((size_t)o->batch * (o->payload + 256) + 512);
    char *body = malloc((size_t)o->batch * (o->payload + 256) + 8);
    size_t bl = 0, *id_off = calloc(o->batch, sizeof *id_off);
    body[bl++] = '[';
    for (uint32_t i = 0; i < o->batch; i++) {
        bl += (size_t)sprintf(body + bl, "%s{", i ? "," : "");
        if (!o->no_ids) {
            bl += (size_t)sprintf(body + bl, "\"message_id\":\"");
            id_off[i] = bl;
            bl += (size_t)sprintf(body + bl, "%0*u\",", BB_ID_LEN, 0);
        }
        bl += (size_t)sprintf(body + bl,
                              "\"message_type\":\"system_notice\",\"user_id\":\"user%u\","
                              "\"priority\":1,\"source\":\"bench\",\"payload\":{\"title\":"
                              "\"bench\",\"level\":\"info\",\"content\":\"",
                              i % o->users);
        memset(body + bl, 'x', o->payload);
        bl += o->payload;
        bl += (size_t)sprintf(body + bl, "\"}}");
    }
    body[bl++] = ']';
    int hl = sprintf(req,
                     "POST /api/publish HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                     "application/json\r\nContent-Length: %zu\r\n\r\n",
                     bl);
    memcpy(req + hl, body, bl);
    size_t rl = (size_t)hl + bl;
    size_t cap = (size_t)o->batch * 96 + 4096;
    char *resp = malloc(cap);
    uint32_t conns = o->pipeline < 8 ? o->pipeline : 8;
    int fds[8];
    for (uint32_t i = 0; i < conns; i++)
        fds[i] = tcp_connect(b->http_port);
    uint64_t requests = (o->count + o->batch - 1) / o->batch, sent = 0, done = 0;
    int rc = 0;
    bb_body_t ids = {(uint8_t *)req + hl, id_off};
    /* One request in flight per connection; connections take turns. */
    for (uint32_t i = 0; i < conns && sent < requests; i++, sent++)
        if (fds[i] < 0 || http_send(fds[i], req, rl, o->no_ids ? NULL : &ids, o->batch, sent) < 0)
            rc = -1;
    for (uint32_t i = 0; rc == 0 && done < requests; i = (i + 1) % conns) {
        if (done + (sent - done) <= done) break;
        if (http_read(fds[i], resp, cap) != 200) {
            rc = -1;
            break;
        }
        done++;
        if (sent < requests) {
            if (http_send(fds[i], req, rl, o->no_ids ? NULL : &ids, o->batch, sent) < 0) rc = -1;
            sent++;
        }
    }
    for (uint32_t i = 0; i < conns; i++)
        if (fds[i] >= 0) close(fds[i]);
    free(req);
    free(body);
    free(resp);
    free(id_off);
    return rc;
}

/* --mode http1: one system_notice per request, each with its own message_id. */
typedef struct {
    const bb_opts_t *o;
    uint64_t bad; /* answers other than 200 */
} bb_http1_t;

static size_t http1_body(void *ctx, uint64_t i, char *buf, size_t cap)
{
    const bb_opts_t *o = ((bb_http1_t *)ctx)->o;
    static char pad[1024];
    if (!pad[0]) memset(pad, 'x', sizeof pad - 1);
    int n = snprintf(buf, cap,
                     "{\"message_id\":\"bb1-%016llx\",\"message_type\":\"system_notice\","
                     "\"user_id\":\"user%u\",\"priority\":1,\"source\":\"bench\",\"payload\":"
                     "{\"title\":\"bench\",\"level\":\"info\",\"content\":\"%.*s\"}}",
                     (unsigned long long)i, (unsigned)(i % o->users), (int)o->payload, pad);
    return (size_t)n;
}

static void http1_answer(void *ctx, uint64_t i, int status, const char *body, size_t len)
{
    bb_http1_t *h = ctx;
    if (status == 200) return;
    if (!h->bad)
        fprintf(stderr, "herald-bench broker: request %llu answered %d %.*s\n",
                (unsigned long long)i, status, (int)len, body);
    h->bad++;
}

static int produce_http1(const bb_broker_t *b, const bb_opts_t *o)
{
    bb_http1_t h = {.o = o};
    bh1_opts_t ho = {.port = b->http_port,
                     .conns = o->conns,
                     .pipeline = o->pipeline,
                     .count = o->count,
                     .timeout_s = BB_TIMEOUT_S,
                     .body = http1_body,
                     .answer = http1_answer,
                     .ctx = &h};
    bh1_result_t res;
    if (bh1_run(&ho, &res) < 0) {
        fprintf(stderr, "herald-bench broker: http1: %s\n", res.error);
        return -1;
    }
    return h.bad ? -1 : 0;
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
    int prc = !strcmp(o->mode, "http")    ? produce_http(&b, o)
              : !strcmp(o->mode, "http1") ? produce_http1(&b, o)
                                          : produce_native(&b, o, &refused);
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

int bench_broker_main(int argc, char **argv)
{
    static char self_bin[512];
    bb_opts_t o = {.mode = "native", .batch = 1000, .users = 1000, .runs = 3, .payload = 100};
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
            o.mode = optarg;
            break;
        case 'n':
            o.count = strtoull(optarg, NULL, 10);
            break;
        case 'b':
            o.batch = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'p':
            o.pipeline = (uint32_t)strtoul(optarg, NULL, 10), pipe_set = true;
            break;
        case 'u':
            o.users = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 's':
            o.payload = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'r':
            o.runs = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'x':
            o.broker_bin = optarg;
            break;
        case 'i':
            o.no_ids = true;
            break;
        case 'c':
            o.conns = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'h':
            bb_usage(stdout);
            return 0;
        default:
            bb_usage(stderr);
            return 2;
        }
    }
    bool http = !strcmp(o.mode, "http"), http1 = !strcmp(o.mode, "http1");
    if (!http && !http1 && strcmp(o.mode, "native")) {
        bb_usage(stderr);
        return 2;
    }
    if (!o.count) o.count = http || http1 ? 300000 : 2000000;
    if (!pipe_set) o.pipeline = http1 ? 1 : http ? 2 : 8;
    if (!o.conns) o.conns = 16;
    if (http1) o.batch = 1;
    if (!o.batch || !o.users || !o.pipeline || o.payload > 1000 || o.runs < 1 ||
        o.runs > BB_MAX_RUNS) {
        fprintf(stderr, "herald-bench broker: bad option value\n");
        return 2;
    }
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
    double sorted[BB_MAX_RUNS];
    memcpy(sorted, rates, o.runs * sizeof *rates);
    qsort(sorted, o.runs, sizeof *sorted, cmp_d);
    double med = sorted[o.runs / 2];
    printf("{\"bench\":\"broker\",\"mode\":\"%s\",\"count\":%llu,\"batch\":%u,\"pipeline\":%u,"
           "\"users\":%u,\"payload\":%u,\"ids\":%s,\"runs\":%u,\"median_per_s\":%.0f,"
           "\"runs_per_s\":[",
           o.mode, (unsigned long long)o.count, o.batch, o.pipeline, o.users, o.payload,
           o.no_ids ? "false" : "true", o.runs, med);
    for (uint32_t i = 0; i < o.runs; i++)
        printf("%s%.0f", i ? "," : "", rates[i]);
    printf("],\"broker_cpu_s\":[");
    for (uint32_t i = 0; i < o.runs; i++)
        printf("%s%.2f", i ? "," : "", cpu[i]);
    memcpy(sorted, cpu, o.runs * sizeof *cpu);
    qsort(sorted, o.runs, sizeof *sorted, cmp_d);
    double cpu_us = sorted[o.runs / 2] * 1e6 / (double)o.count;
    printf("],\"conns\":%u,\"broker_cpu_us_per_notification\":%.2f}\n", o.conns, cpu_us);
    printf("%-8s %10s %7s %8s %6s %14s %16s\n", "mode", "count", "batch", "pipeline", "conns",
           "median/s", "broker us/notif");
    printf("%-8s %10llu %7u %8u %6u %14.0f %16.2f\n", o.mode, (unsigned long long)o.count, o.batch,
           o.pipeline, o.conns, med, cpu_us);
    return 0;
}
