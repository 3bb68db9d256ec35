/* bench_http1.c - one notification per HTTP request (bench_http1.h). */
#include "bench_http1.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "herald_time.h"

#define BH1_BODY_MAX 8192
#define BH1_SLICE_NS 1000000ull /* paced sends go out in 1 ms slices */
#define BH1_RX_BUF   (256u * 1024)

typedef struct {
    int fd;
    uint64_t *fifo; /* request numbers in flight, oldest first */
    unsigned head, busy;
    char *rx;
    size_t rx_len;
    char *tx;
    size_t tx_off, tx_len, tx_cap;
    bool want_out;
} bh1_conn_t;

static int bh1_connect(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        if (fd >= 0) close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

/* Append request i to c's output. */
static void bh1_put(const bh1_opts_t *o, bh1_conn_t *c, uint64_t i)
{
    static char body[BH1_BODY_MAX];
    size_t bl = o->body(o->ctx, i, body, sizeof body);
    size_t need = c->tx_len + bl + 256;
    if (need > c->tx_cap) {
        c->tx_cap = need * 2;
        c->tx = realloc(c->tx, c->tx_cap);
        if (!c->tx) abort();
    }
    int hl = snprintf(c->tx + c->tx_len, 256,
                      "POST /api/publish HTTP/1.1\r\nHost: 127.0.0.1\r\n%s%s%s"
                      "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                      o->api_key ? "Authorization: apikey " : "", o->api_key ? o->api_key : "",
                      o->api_key ? "\r\n" : "", bl);
    memcpy(c->tx + c->tx_len + hl, body, bl);
    c->tx_len += (size_t)hl + bl;
    c->fifo[(c->head + c->busy) % o->pipeline] = i;
    c->busy++;
}

static int bh1_flush(bh1_conn_t *c)
{
    while (c->tx_off < c->tx_len) {
        ssize_t w =
            send(c->fd, c->tx + c->tx_off, c->tx_len - c->tx_off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) return 0;
            return -1;
        }
        c->tx_off += (size_t)w;
    }
    c->tx_off = c->tx_len = 0;
    return 0;
}

/* Parse the complete responses in c->rx. Returns responses parsed, or -1 on garbage. */
static long bh1_parse(const bh1_opts_t *o, bh1_conn_t *c)
{
    long n = 0;
    size_t off = 0;
    while (c->busy) {
        char *p = c->rx + off;
        size_t left = c->rx_len - off;
        char *eoh = memmem(p, left, "\r\n\r\n", 4);
        if (!eoh) break;
        if (left < 12 || memcmp(p, "HTTP/1.1 ", 9)) return -1;
        char *cl = memmem(p, (size_t)(eoh - p), "Content-Length: ", 16);
        size_t clen = cl ? strtoul(cl + 16, NULL, 10) : 0;
        size_t total = (size_t)(eoh + 4 - p) + clen;
        if (total > left) break;
        uint64_t i = c->fifo[c->head];
        c->head = (c->head + 1) % o->pipeline;
        c->busy--;
        o->answer(o->ctx, i, atoi(p + 9), eoh + 4, clen);
        off += total;
        n++;
    }
    memmove(c->rx, c->rx + off, c->rx_len - off);
    c->rx_len -= off;
    return n;
}

static uint64_t bh1_due(const bh1_opts_t *o, uint64_t start, uint64_t now)
{
    if (o->rate <= 0) return o->count;
    uint64_t due = (uint64_t)((double)(now - start) * o->rate / 1e9) + 1;
    return due < o->count ? due : o->count;
}

/* Connect o->conns connections and watch each for input. Returns 0, or -1 with res->error. */
static int bh1_open(const bh1_opts_t *o, bh1_conn_t *cs, int ep, bh1_result_t *res)
{
    for (unsigned k = 0; k < o->conns; k++)
        cs[k].fd = -1;
    for (unsigned k = 0; k < o->conns; k++) {
        bh1_conn_t *c = &cs[k];
        c->fd = bh1_connect(o->port);
        c->fifo = calloc(o->pipeline, sizeof *c->fifo);
        c->rx = malloc(BH1_RX_BUF);
        if (c->fd < 0) {
            snprintf(res->error, sizeof res->error, "connect 127.0.0.1:%u: %s", o->port,
                     strerror(errno));
            return -1;
        }
        struct epoll_event e = {.events = EPOLLIN, .data.ptr = c};
        epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &e);
    }
    return 0;
}

static void bh1_close(const bh1_opts_t *o, bh1_conn_t *cs, int ep)
{
    for (unsigned k = 0; k < o->conns; k++) {
        if (cs[k].fd >= 0) close(cs[k].fd);
        free(cs[k].fifo);
        free(cs[k].rx);
        free(cs[k].tx);
    }
    free(cs);
    close(ep);
}

/* Send requests *next .. due-1, spread over the connections with room from rr on; watch for
 * output where some is left. Returns 0, or -1 with res->error. */
static int bh1_send_due(const bh1_opts_t *o, bh1_conn_t *cs, int ep, unsigned rr, uint64_t *next,
                        uint64_t due, bh1_result_t *res)
{
    for (unsigned k = 0; k < o->conns && *next < due; k++) {
        bh1_conn_t *c = &cs[(rr + k) % o->conns];
        while (c->busy < o->pipeline && *next < due)
            bh1_put(o, c, (*next)++);
        if (c->tx_len && bh1_flush(c) < 0) {
            snprintf(res->error, sizeof res->error, "send: %s", strerror(errno));
            return -1;
        }
        bool out = c->tx_len > 0;
        if (out != c->want_out) {
            struct epoll_event e = {.events = EPOLLIN | (out ? EPOLLOUT : 0u), .data.ptr = c};
            epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
            c->want_out = out;
        }
    }
    return 0;
}

/* How long to wait for answers: until the slice of the next request due at o->rate. */
static int bh1_wait_ms(const bh1_opts_t *o, uint64_t start, uint64_t next, uint64_t now)
{
    if (o->rate <= 0 || next >= o->count) return 100;
    uint64_t at = start + (uint64_t)((double)next * 1e9 / o->rate);
    at += BH1_SLICE_NS - 1 - (at - start + BH1_SLICE_NS - 1) % BH1_SLICE_NS;
    return at > now ? (int)((at - now) / 1000000) : 0;
}

/* Wait up to timeout ms, flush and read what is ready, count the answers. Returns 0; -1 for a
 * malformed response (res->error set); -2 when a connection closed or failed. */
static int bh1_receive(const bh1_opts_t *o, int ep, int timeout, bh1_result_t *res)
{
    struct epoll_event ev[64];
    int n = epoll_wait(ep, ev, 64, timeout);
    for (int k = 0; k < n; k++) {
        bh1_conn_t *c = ev[k].data.ptr;
        if ((ev[k].events & EPOLLOUT) && bh1_flush(c) < 0) return -2;
        if (!(ev[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) continue;
        ssize_t r = recv(c->fd, c->rx + c->rx_len, BH1_RX_BUF - c->rx_len, MSG_DONTWAIT);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) return -2;
        if (r < 0) continue;
        c->rx_len += (size_t)r;
        long got = bh1_parse(o, c);
        if (got < 0) {
            snprintf(res->error, sizeof res->error, "malformed HTTP response");
            return -1;
        }
        res->answered += (uint64_t)got;
        if (got) res->t_end = mono_ns();
    }
    return 0;
}

int bh1_run(const bh1_opts_t *o, bh1_result_t *res)
{
    memset(res, 0, sizeof *res);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    bh1_conn_t *cs = calloc(o->conns, sizeof *cs);
    int rc = -1;
    if (bh1_open(o, cs, ep, res) < 0) goto out;
    uint64_t start = mono_ns(), deadline = start + (uint64_t)(o->timeout_s * 1e9), next = 0;
    res->t_start = start;
    unsigned rr = 0; /* connection that gets the next request first */
    while (res->answered < o->count && !(o->stop && *o->stop)) {
        uint64_t now = mono_ns();
        if (now > deadline) {
            snprintf(res->error, sizeof res->error, "timeout: %llu of %llu answered",
                     (unsigned long long)res->answered, (unsigned long long)o->count);
            goto out;
        }
        if (bh1_send_due(o, cs, ep, rr, &next, bh1_due(o, start, now), res) < 0) goto out;
        rr = (rr + 1) % o->conns;
        res->sent = next;
        int got = bh1_receive(o, ep, bh1_wait_ms(o, start, next, now), res);
        if (got == -1) goto out;
        if (got == -2) {
            snprintf(res->error, sizeof res->error,
                     "connection closed by the broker after %llu answers",
                     (unsigned long long)res->answered);
            goto out;
        }
    }
    rc = res->answered >= o->count ? 0 : -1;
    if (rc < 0 && !res->error[0]) snprintf(res->error, sizeof res->error, "stopped");
out:
    bh1_close(o, cs, ep);
    return rc;
}
