/* bench_floor.c - `herald-bench floor`: what this machine's kernel allows, measured with the
 * least a server can do, so that herald's figures can be read against it (protocol.md 9).
 *
 *   wake    a chain of H processes relaying an 8-byte timestamp over unix sockets, each
 *           blocked in epoll_wait as herald's processes are; the latency of H wake-ups (a P0
 *           notification takes 3: producer -> broker -> gateway -> client).
 *   http1   a minimal HTTP/1.1 responder (one recv and one send per ready connection, a fixed
 *           200 answer per complete request, nothing parsed or stored) under the same load
 *           generator as `broker --mode http1`: its CPU per request is the floor of herald's.
 *   fanout  one process writing one B-byte message per send to S loopback TCP connections at
 *           a rate, in 1 ms slices (as a gateway's flushes), a second process draining them:
 *           the sender's CPU per send is the floor of a gateway's per delivery.
 * Each child reports its own CPU time (CLOCK_PROCESS_CPUTIME_ID) through a pipe. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "bench_http1.h"
#include "herald_time.h"

#define FL_RX_BUF (64u * 1024)
#define FL_MAXHOP 8

typedef struct {
    const char *mode;
    unsigned hops, conns, pipeline, sessions, bytes, runs;
    uint64_t count;
    double rate, gap_us;
} fl_opts_t;

static double cpu_self_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Read one double a child wrote to fd (its CPU seconds); -1 if it wrote none. */
static double fl_read_cpu(int fd)
{
    double v;
    return read(fd, &v, sizeof v) == (ssize_t)sizeof v ? v : -1;
}

static void fl_reap(pid_t pid)
{
    if (pid <= 0) return;
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

/* ---- wake ---- */

/* Relay h: wait in epoll for a timestamp on in, pass it on to out (the last one turns it
 * into the chain's latency). */
static void fl_relay(int in, int out, bool last)
{
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN};
    epoll_ctl(ep, EPOLL_CTL_ADD, in, &ev);
    for (;;) {
        struct epoll_event e;
        if (epoll_wait(ep, &e, 1, -1) < 0 && errno != EINTR) _exit(1);
        uint64_t v;
        if (read(in, &v, sizeof v) != (ssize_t)sizeof v) _exit(0);
        if (last) v = mono_ns() - v;
        if (write(out, &v, sizeof v) != (ssize_t)sizeof v) _exit(0);
    }
}

static int fl_wake(const fl_opts_t *o)
{
    int sp[FL_MAXHOP + 1][2];
    pid_t kids[FL_MAXHOP] = {0};
    for (unsigned i = 0; i <= o->hops; i++)
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp[i]) < 0) {
            fprintf(stderr, "herald-bench floor: socketpair: %s\n", strerror(errno));
            return 1;
        }
    for (unsigned h = 0; h < o->hops; h++) {
        kids[h] = fork();
        if (kids[h] == 0) fl_relay(sp[h][1], sp[h + 1][0], h + 1 == o->hops);
    }
    uint64_t *lat = calloc(o->count, sizeof *lat);
    int rc = 0;
    for (uint64_t i = 0; i < o->count && lat; i++) {
        uint64_t t = mono_ns();
        if (write(sp[0][0], &t, sizeof t) != (ssize_t)sizeof t ||
            read(sp[o->hops][1], &lat[i], sizeof lat[i]) != (ssize_t)sizeof lat[i]) {
            rc = 1;
            break;
        }
        struct timespec gap = {0, (long)(o->gap_us * 1000)};
        nanosleep(&gap, NULL);
    }
    for (unsigned h = 0; h < o->hops; h++)
        fl_reap(kids[h]);
    if (rc == 0 && lat) {
        qsort(lat, o->count, sizeof *lat, cmp_u64);
        uint64_t n = o->count;
        printf("{\"bench\":\"floor\",\"mode\":\"wake\",\"hops\":%u,\"count\":%llu,\"gap_us\":%.0f,"
               "\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,\"max_us\":%.1f}\n",
               o->hops, (unsigned long long)n, o->gap_us, (double)lat[n / 2] / 1e3,
               (double)lat[n * 9 / 10] / 1e3, (double)lat[n * 99 / 100] / 1e3,
               (double)lat[n - 1] / 1e3);
    }
    free(lat);
    for (unsigned i = 0; i <= o->hops; i++)
        close(sp[i][0]), close(sp[i][1]);
    return rc;
}

/* ---- http1 ---- */

static const char FL_ANSWER[] =
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
    "Content-Length: 35\r\n\r\n{\"ok\":true,\"results\":[{\"seq\":1}]}\r\n";

typedef struct {
    int fd;
    size_t len;
    char buf[FL_RX_BUF];
} fl_conn_t;

/* Complete requests at the front of c->buf, consumed; answers appended to out. */
static size_t fl_requests(fl_conn_t *c, char *out, size_t cap)
{
    size_t off = 0, olen = 0;
    for (;;) {
        char *p = c->buf + off, *eoh = memmem(p, c->len - off, "\r\n\r\n", 4);
        if (!eoh) break;
        char *cl = memmem(p, (size_t)(eoh - p), "Content-Length: ", 16);
        size_t total = (size_t)(eoh + 4 - p) + (cl ? strtoul(cl + 16, NULL, 10) : 0);
        if (total > c->len - off || olen + sizeof FL_ANSWER > cap) break;
        memcpy(out + olen, FL_ANSWER, sizeof FL_ANSWER - 1);
        olen += sizeof FL_ANSWER - 1;
        off += total;
    }
    memmove(c->buf, c->buf + off, c->len - off);
    c->len -= off;
    return olen;
}

static volatile sig_atomic_t fl_stop;
static void fl_on_term(int sig)
{
    (void)sig;
    fl_stop = 1;
}

/* fork() with SIGTERM blocked across it, so the child has its handler before the parent's
 * SIGTERM can arrive, however short the run. */
static pid_t fl_fork(void)
{
    sigset_t term, old;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    sigprocmask(SIG_BLOCK, &term, &old);
    pid_t pid = fork();
    if (pid == 0) {
        struct sigaction sa = {.sa_handler = fl_on_term}; /* no SA_RESTART: accept stops */
        sigaction(SIGTERM, &sa, NULL);
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    return pid;
}

/* The responder: serve lfd until SIGTERM, then write its CPU seconds to res. */
static void fl_responder(int lfd, int res)
{
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    static char out[FL_RX_BUF * 2];
    while (!fl_stop) {
        struct epoll_event es[64];
        int n = epoll_wait(ep, es, 64, 100);
        for (int k = 0; k < n; k++) {
            fl_conn_t *c = es[k].data.ptr;
            if (!c) {
                int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd < 0 || !(c = calloc(1, sizeof *c))) continue;
                int one = 1;
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                c->fd = fd;
                struct epoll_event ce = {.events = EPOLLIN, .data.ptr = c};
                epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ce);
                continue;
            }
            ssize_t r = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
            if (r <= 0) {
                if (r < 0 && errno == EAGAIN) continue;
                close(c->fd);
                free(c);
                continue;
            }
            c->len += (size_t)r;
            size_t olen = fl_requests(c, out, sizeof out);
            if (olen && send(c->fd, out, olen, MSG_NOSIGNAL) != (ssize_t)olen) _exit(1);
        }
    }
    double cpu = cpu_self_s();
    _exit(write(res, &cpu, sizeof cpu) == (ssize_t)sizeof cpu ? 0 : 1);
}

static size_t fl_body(void *ctx, uint64_t i, char *buf, size_t cap)
{
    (void)ctx;
    return (size_t)snprintf(buf, cap,
                            "{\"message_id\":\"fl-%016llx\",\"message_type\":\"system_notice\","
                            "\"user_id\":\"user%u\",\"priority\":1,\"payload\":{\"content\":\""
                            "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                            "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}}",
                            (unsigned long long)i, (unsigned)(i % 1000));
}

static void fl_answer(void *ctx, uint64_t i, int status, const char *body, size_t len)
{
    (void)i, (void)body, (void)len;
    if (status != 200) ++*(unsigned *)ctx;
}

static int fl_listen(uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 1024) < 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &sl) < 0) {
        if (fd >= 0) close(fd);
        return -1;
    }
    *port = ntohs(sa.sin_port);
    return fd;
}

/* One run: requests/s, responder and load generator CPU seconds; 0 or -1. */
static int fl_http1_once(const fl_opts_t *o, double *per_s, double *cpu_s, double *client_s)
{
    uint16_t port;
    int lfd = fl_listen(&port), res[2] = {-1, -1};
    if (lfd < 0 || pipe(res) < 0) {
        fprintf(stderr, "herald-bench floor: http1: listen or pipe: %s\n", strerror(errno));
        if (lfd >= 0) close(lfd);
        return -1;
    }
    pid_t kid = fl_fork();
    if (kid == 0) fl_responder(lfd, res[1]);
    close(lfd);
    unsigned bad = 0;
    bh1_opts_t ho = {.port = port,
                     .conns = o->conns,
                     .pipeline = o->pipeline,
                     .count = o->count,
                     .timeout_s = 120,
                     .body = fl_body,
                     .answer = fl_answer,
                     .ctx = &bad};
    bh1_result_t r;
    double c0 = cpu_self_s();
    int rc = bh1_run(&ho, &r);
    *client_s = cpu_self_s() - c0;
    kill(kid, SIGTERM);
    *cpu_s = fl_read_cpu(res[0]);
    waitpid(kid, NULL, 0);
    close(res[0]), close(res[1]);
    if (rc < 0 || bad || *cpu_s < 0) {
        fprintf(stderr, "herald-bench floor: http1: %s (%u not 200)\n", r.error, bad);
        return -1;
    }
    *per_s = (double)r.answered / ((double)(r.t_end - r.t_start) / 1e9);
    return 0;
}

static int fl_http1(const fl_opts_t *o)
{
    double per_s[16], us[16], cus[16];
    for (unsigned i = 0; i < o->runs; i++) {
        double cpu, client;
        if (fl_http1_once(o, &per_s[i], &cpu, &client) < 0) return 1;
        us[i] = cpu * 1e6 / (double)o->count;
        cus[i] = client * 1e6 / (double)o->count;
    }
    qsort(per_s, o->runs, sizeof *per_s, cmp_dbl);
    qsort(us, o->runs, sizeof *us, cmp_dbl);
    qsort(cus, o->runs, sizeof *cus, cmp_dbl);
    printf("{\"bench\":\"floor\",\"mode\":\"http1\",\"count\":%llu,\"conns\":%u,\"pipeline\":%u,"
           "\"runs\":%u,\"median_per_s\":%.0f,\"responder_cpu_us_per_request\":%.2f,"
           "\"client_cpu_us_per_request\":%.2f}\n",
           (unsigned long long)o->count, o->conns, o->pipeline, o->runs, per_s[o->runs / 2],
           us[o->runs / 2], cus[o->runs / 2]);
    return 0;
}

/* ---- fanout ---- */

/* The receiver: accept S connections on lfd, drain them until SIGTERM, write its CPU. */
static void fl_drain(int lfd, unsigned sessions, int res)
{
    int ep = epoll_create1(0);
    for (unsigned i = 0; i < sessions; i++) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) _exit(1);
        struct epoll_event e = {.events = EPOLLIN, .data.fd = fd};
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
    }
    double cpu0 = cpu_self_s();
    static char buf[FL_RX_BUF];
    while (!fl_stop) {
        struct epoll_event es[256];
        int n = epoll_wait(ep, es, 256, 100);
        for (int k = 0; k < n; k++)
            while (recv(es[k].data.fd, buf, sizeof buf, 0) > 0) {
            }
    }
    double cpu = cpu_self_s() - cpu0;
    _exit(write(res, &cpu, sizeof cpu) == (ssize_t)sizeof cpu ? 0 : 1);
}

/* The sender (this process): count messages of o->bytes to the sessions round-robin, paced
 * to o->rate in 1 ms slices. Returns its CPU seconds, or -1; *secs the time it took. */
static double fl_send(const fl_opts_t *o, const int *fds, double *secs)
{
    char *msg = calloc(1, o->bytes);
    if (!msg) return -1;
    double cpu0 = cpu_self_s();
    uint64_t start = mono_ns(), sent = 0, rr = 0;
    while (sent < o->count) {
        uint64_t now = mono_ns();
        uint64_t due = (uint64_t)((double)(now - start) * o->rate / 1e9) + 1;
        for (; sent < due && sent < o->count; sent++, rr = (rr + 1) % o->sessions)
            if (send(fds[rr], msg, o->bytes, MSG_NOSIGNAL) != (ssize_t)o->bytes) {
                fprintf(stderr, "herald-bench floor: fanout: send to session %llu: %s\n",
                        (unsigned long long)rr, strerror(errno));
                free(msg);
                return -1;
            }
        uint64_t next = now + 1000000 - (now - start) % 1000000;
        struct timespec ts = {(time_t)(next / 1000000000ull), (long)(next % 1000000000ull)};
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
    }
    free(msg);
    *secs = (double)(mono_ns() - start) / 1e9;
    return cpu_self_s() - cpu0;
}

static int fl_fanout(const fl_opts_t *o)
{
    uint16_t port;
    int lfd = fl_listen(&port), res[2] = {-1, -1};
    int *fds = calloc(o->sessions, sizeof *fds);
    if (lfd < 0 || !fds || pipe(res) < 0) {
        fprintf(stderr, "herald-bench floor: fanout: listen or pipe: %s\n", strerror(errno));
        if (lfd >= 0) close(lfd);
        free(fds);
        return 1;
    }
    pid_t kid = fl_fork();
    if (kid == 0) fl_drain(lfd, o->sessions, res[1]);
    close(lfd);
    int rc = 1;
    struct sockaddr_in sa = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    unsigned n = 0;
    for (; n < o->sessions; n++) {
        int one = 1;
        fds[n] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fds[n] < 0 || connect(fds[n], (struct sockaddr *)&sa, sizeof sa) < 0) break;
        setsockopt(fds[n], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    double secs = 0, snd = n == o->sessions ? fl_send(o, fds, &secs) : -1;
    usleep(200000);
    kill(kid, SIGTERM);
    double rcv = fl_read_cpu(res[0]);
    waitpid(kid, NULL, 0);
    if (snd >= 0 && rcv >= 0) {
        printf("{\"bench\":\"floor\",\"mode\":\"fanout\",\"sessions\":%u,\"rate\":%.0f,"
               "\"bytes\":%u,\"count\":%llu,\"achieved_per_s\":%.0f,"
               "\"sender_cpu_us_per_send\":%.2f,\"receiver_cpu_us_per_message\":%.2f}\n",
               o->sessions, o->rate, o->bytes, (unsigned long long)o->count,
               (double)o->count / secs, snd * 1e6 / (double)o->count, rcv * 1e6 / (double)o->count);
        rc = 0;
    } else {
        fprintf(stderr, "herald-bench floor: fanout: %s\n",
                n < o->sessions ? "cannot open the sessions" : "a process failed");
    }
    for (unsigned i = 0; i < n; i++)
        close(fds[i]);
    free(fds);
    close(res[0]), close(res[1]);
    return rc;
}

static void fl_usage(FILE *out)
{
    fprintf(out,
            "usage: herald-bench floor --mode wake|http1|fanout [options]\n"
            "  wake:   --hops H (3) --count N (5000) --gap-us G (500): latency of H wake-ups\n"
            "  http1:  --conns C (16) --pipeline P (1) --count N (300000) --runs R (3):\n"
            "          a minimal HTTP responder's CPU per request\n"
            "  fanout: --sessions S (1000) --rate R (20000) --bytes B (350) --count N (200000):\n"
            "          CPU per send to S loopback TCP connections\n");
}

int bench_floor_main(int argc, char **argv)
{
    fl_opts_t o = {.mode = "wake",
                   .hops = 3,
                   .conns = 16,
                   .pipeline = 1,
                   .sessions = 1000,
                   .bytes = 350,
                   .runs = 3,
                   .rate = 20000,
                   .gap_us = 500};
    static const struct option opts[] = {
        {"mode", required_argument, 0, 'm'},  {"hops", required_argument, 0, 'H'},
        {"count", required_argument, 0, 'n'}, {"gap-us", required_argument, 0, 'g'},
        {"conns", required_argument, 0, 'c'}, {"pipeline", required_argument, 0, 'p'},
        {"runs", required_argument, 0, 'r'},  {"sessions", required_argument, 0, 'S'},
        {"rate", required_argument, 0, 'R'},  {"bytes", required_argument, 0, 'b'},
        {"help", no_argument, 0, 'h'},        {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "m:n:S:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'm':
            o.mode = optarg;
            break;
        case 'H':
            o.hops = (unsigned)atoi(optarg);
            break;
        case 'n':
            o.count = strtoull(optarg, NULL, 10);
            break;
        case 'g':
            o.gap_us = atof(optarg);
            break;
        case 'c':
            o.conns = (unsigned)atoi(optarg);
            break;
        case 'p':
            o.pipeline = (unsigned)atoi(optarg);
            break;
        case 'r':
            o.runs = (unsigned)atoi(optarg);
            break;
        case 'S':
            o.sessions = (unsigned)atoi(optarg);
            break;
        case 'R':
            o.rate = atof(optarg);
            break;
        case 'b':
            o.bytes = (unsigned)atoi(optarg);
            break;
        case 'h':
            fl_usage(stdout);
            return 0;
        default:
            fl_usage(stderr);
            return 2;
        }
    }
    bool wake = !strcmp(o.mode, "wake"), http1 = !strcmp(o.mode, "http1"),
         fanout = !strcmp(o.mode, "fanout");
    if (!o.count) o.count = wake ? 5000 : http1 ? 300000 : 200000;
    if ((!wake && !http1 && !fanout) || o.hops < 1 || o.hops > FL_MAXHOP || !o.conns ||
        !o.pipeline || !o.sessions || !o.bytes || o.runs < 1 || o.runs > 16 || o.rate <= 0) {
        fl_usage(stderr);
        return 2;
    }
    return wake ? fl_wake(&o) : http1 ? fl_http1(&o) : fl_fanout(&o);
}
