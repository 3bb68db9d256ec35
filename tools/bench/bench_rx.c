/* bench_rx.c - herald-bench e2e's lean WebSocket receiver (plain sockets, epoll, RFC 6455 by
 * hand): the receive side must cost far less than the herald it measures. */
#include "bench_rx.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench_check.h"
#include "bench_wsframe.h"
#include "herald_time.h"
#include "jwt.h"

#define MAX_HANDSHAKES 256 /* connects in flight: below the gateways' listen backlog */
#define MAX_TRIES      3
#define RBUF_SIZE      (64 * 1024) /* bytes per read: many frames per recv */
#define MAX_MESSAGE    (16u << 20) /* a text message larger than this is refused */
#define MAX_HTTP       8192        /* handshake response headers */
#define MAX_EVENTS     512
#define TICK_MS        5
#define TOKEN_TTL_S    86400

typedef enum { RS_IDLE = 0, RS_CONNECTING, RS_HTTP, RS_OPEN, RS_WELCOMED, RS_GONE } rx_state_t;

typedef struct {
    bcheck_t chk;
    int fd;
    unsigned gateway;
    rx_state_t state;
    unsigned tries;
    char key[BWSF_KEY_LEN + 1]; /* this handshake's Sec-WebSocket-Key */
    uint8_t *carry;             /* bytes of an incomplete frame (or response) from the last read */
    size_t carry_len, carry_cap;
    char *frag; /* a text message that arrived in several frames */
    size_t frag_len, frag_cap;
    bool in_frag;
} rx_sess_t;

struct brx_pool {
    bench_run_t *r;
    int ep;
    rx_sess_t *s;
    uint8_t *rbuf; /* one read buffer for all sessions */
    size_t rbuf_cap;
    unsigned next; /* next session index to start connecting */
    unsigned handshaking;
    unsigned welcomed;
    unsigned failed;     /* gave up connecting */
    unsigned dropped;    /* closed after welcome */
    unsigned retry_from; /* lowest index that may need a retry */
};

/* Grow *buf (capacity *cap) to hold need bytes. */
static int reserve(void *buf, size_t *cap, size_t need)
{
    void **b = buf;
    if (need <= *cap) return 0;
    size_t c = need < 4096 ? 4096 : need * 2;
    void *n = realloc(*b, c);
    if (!n) return -1;
    *b = n;
    *cap = c;
    return 0;
}

/* The session ended: before its welcome an error is retried, after it the session counts
 * as dropped. */
static void sess_gone(brx_pool_t *p, rx_sess_t *s, bool error, const char *why)
{
    if (s->fd >= 0) close(s->fd); /* also leaves the epoll set */
    s->fd = -1;
    s->carry_len = s->frag_len = 0;
    s->in_frag = false;
    if (s->state == RS_CONNECTING || s->state == RS_HTTP) p->handshaking--;
    if (s->state == RS_WELCOMED) {
        p->welcomed--;
        p->dropped++;
        s->state = RS_GONE;
        fprintf(stderr, "herald-bench: session %ld (%s) closed: %s\n", (long)(s - p->s),
                p->r->user_ids[s->chk.user], why);
        return;
    }
    if (error && s->tries < MAX_TRIES) {
        s->state = RS_IDLE;
        if (s - p->s < (long)p->retry_from) p->retry_from = (unsigned)(s - p->s);
        return;
    }
    fprintf(stderr, "herald-bench: session %ld (%s) to gateway %u: %s\n", (long)(s - p->s),
            p->r->user_ids[s->chk.user], s->gateway, why);
    s->state = RS_GONE;
    p->failed++;
}

static void sess_connect(brx_pool_t *p, unsigned idx)
{
    rx_sess_t *s = &p->s[idx];
    const bench_run_t *r = p->r;
    struct sockaddr_in to = {.sin_family = AF_INET}, from = {.sin_family = AF_INET};
    struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = s};
    int one = 1;
    const char *host;
    unsigned port;
    s->tries++;
    s->state = RS_CONNECTING;
    p->handshaking++;
    bench_session_gateway(r, idx, &host, &port, NULL);
    to.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &to.sin_addr) != 1) {
        s->tries = MAX_TRIES;
        sess_gone(p, s, true, "gateway host is not an IPv4 address");
        return;
    }
    s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->fd < 0) {
        sess_gone(p, s, true, strerror(errno));
        return;
    }
    if (r->src_addrs > 1) {
        from.sin_addr.s_addr = htonl(0x7f000001u + idx % r->src_addrs);
        /* the port is picked at connect, per destination: S sessions fit per address */
        setsockopt(s->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        if (bind(s->fd, (struct sockaddr *)&from, sizeof from) < 0) {
            sess_gone(p, s, true, strerror(errno));
            return;
        }
    }
    if ((connect(s->fd, (struct sockaddr *)&to, sizeof to) < 0 && errno != EINPROGRESS) ||
        epoll_ctl(p->ep, EPOLL_CTL_ADD, s->fd, &ev) < 0)
        sess_gone(p, s, true, strerror(errno));
}

/* Start connects up to the handshake bound: new sessions first, then retries. */
static void pool_start_connects(brx_pool_t *p)
{
    const bench_run_t *r = p->r;
    while (p->handshaking < MAX_HANDSHAKES && p->next < r->sessions)
        sess_connect(p, p->next++);
    for (unsigned i = p->retry_from; i < p->next && p->handshaking < MAX_HANDSHAKES; i++) {
        if (p->s[i].state != RS_IDLE) {
            if (i == p->retry_from) p->retry_from++;
            continue;
        }
        sess_connect(p, i);
    }
}

/* Connected: send the Upgrade request and wait for the response. */
static void sess_send_upgrade(brx_pool_t *p, rx_sess_t *s)
{
    const bench_run_t *r = p->r;
    const char *user = r->user_ids[s->chk.user];
    char token[512], req[1200];
    const char *host;
    unsigned port;
    int err = 0;
    socklen_t elen = sizeof err;
    bench_session_gateway(r, (unsigned)(s - p->s), &host, &port, NULL);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = s};
    if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0 || err) {
        sess_gone(p, s, true, strerror(err ? err : errno));
        return;
    }
    if (jwt_mint_for(&r->cfg, user, (uint64_t)time(NULL), TOKEN_TTL_S, token, sizeof token) < 0 ||
        bwsf_new_key(s->key) < 0) {
        s->tries = MAX_TRIES;
        sess_gone(p, s, true, "no token or no random key");
        return;
    }
    int n = snprintf(req, sizeof req,
                     "GET /ws?token=%s%s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: herald.json\r\n\r\n",
                     token, r->acks ? "&acks=1" : "", host, (int)port, s->key);
    /* a fresh socket's send buffer takes the whole request at once */
    if (n >= (int)sizeof req || send(s->fd, req, (size_t)n, MSG_NOSIGNAL) != n ||
        epoll_ctl(p->ep, EPOLL_CTL_MOD, s->fd, &ev) < 0) {
        sess_gone(p, s, true, "cannot send the upgrade request");
        return;
    }
    s->state = RS_HTTP;
}

/* The value of header name in the response head (CRLF-separated, NUL-ended), or NULL;
 * *len gets its length. */
static const char *header_value(const char *head, const char *name, size_t *len)
{
    size_t nl = strlen(name);
    for (const char *l = strstr(head, "\r\n"); l; l = strstr(l, "\r\n")) {
        l += 2;
        if (strncasecmp(l, name, nl) != 0 || l[nl] != ':') continue;
        const char *v = l + nl + 1, *e = strstr(v, "\r\n");
        while (*v == ' ' || *v == '\t')
            v++;
        if (!e) e = v + strlen(v);
        while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        *len = (size_t)(e - v);
        return v;
    }
    return NULL;
}

/* Check the 101 response in buf[0..head_len) (head_len covers the blank line). Returns NULL
 * if it accepts our key and protocol, else what is wrong. */
static const char *check_upgrade(rx_sess_t *s, char *buf, size_t head_len)
{
    char accept[BWSF_ACCEPT_LEN + 1];
    const char *v;
    size_t n;
    buf[head_len - 2] = '\0'; /* keeps the last header's CRLF */
    if (strncmp(buf, "HTTP/1.1 101", 12) != 0) return "handshake refused (no 101)";
    bwsf_accept(s->key, accept);
    if (!(v = header_value(buf, "Sec-WebSocket-Accept", &n)) || n != BWSF_ACCEPT_LEN ||
        memcmp(v, accept, n) != 0)
        return "bad Sec-WebSocket-Accept";
    if (!(v = header_value(buf, "Sec-WebSocket-Protocol", &n)) || n != 11 ||
        memcmp(v, "herald.json", 11) != 0)
        return "server did not agree to herald.json";
    if (header_value(buf, "Sec-WebSocket-Extensions", &n)) return "unasked-for extension";
    return NULL;
}

/* Send a masked frame of at most 125 bytes (pong, close, an ack); one that does not fit is
 * dropped (the socket send buffer is near empty: the bench sends little else). */
static void sess_send_control(rx_sess_t *s, unsigned opcode, const uint8_t *payload, size_t len)
{
    uint8_t out[131];
    size_t n = bwsf_write_masked(out, sizeof out, opcode, payload, len, (uint32_t)rand());
    if (n) (void)!send(s->fd, out, n, MSG_NOSIGNAL | MSG_DONTWAIT);
}

static void sess_on_text(brx_pool_t *p, rx_sess_t *s, const char *data, size_t len)
{
    bmsg_t m;
    bmsg_kind_t kind = bcheck_frame(p->r, &s->chk, data, len, &m);
    if (kind == BMSG_WELCOME && s->state == RS_OPEN) {
        s->state = RS_WELCOMED;
        p->welcomed++;
    } else if (kind == BMSG_NOTIFICATION && p->r->acks && !strcmp(m.message_type, "margin_call")) {
        /* --acks: acknowledge what needs it, as a client app would once it showed it */
        char op[64];
        int n = snprintf(op, sizeof op, "{\"op\":\"ack\",\"seq\":%llu}", (unsigned long long)m.seq);
        sess_send_control(s, BWSF_TEXT, (const uint8_t *)op, (size_t)n);
        p->r->acks_sent++;
    }
}

/* Handle one frame. Returns 0, or -1 when the session ended (closed or refused). */
static int sess_on_frame(brx_pool_t *p, rx_sess_t *s, const bwsf_frame_t *f)
{
    switch (f->opcode) {
    case BWSF_PING:
        sess_send_control(s, BWSF_PONG, f->payload, (size_t)f->len);
        return 0;
    case BWSF_PONG:
        return 0;
    case BWSF_CLOSE:
        sess_send_control(s, BWSF_CLOSE, f->payload, f->len >= 2 ? 2 : 0);
        sess_gone(p, s, false, "closed by the gateway");
        return -1;
    case BWSF_BINARY:
        p->r->malformed++;
        return 0;
    default:
        break;
    }
    if ((f->opcode == BWSF_CONT) != s->in_frag) {
        sess_gone(p, s, false, "bad fragment sequence");
        return -1;
    }
    if (f->fin && !s->in_frag) {
        sess_on_text(p, s, (const char *)f->payload, (size_t)f->len);
        return 0;
    }
    if (s->frag_len + f->len > MAX_MESSAGE ||
        reserve(&s->frag, &s->frag_cap, s->frag_len + (size_t)f->len) < 0) {
        sess_gone(p, s, false, "fragmented message too big");
        return -1;
    }
    memcpy(s->frag + s->frag_len, f->payload, (size_t)f->len);
    s->frag_len += (size_t)f->len;
    s->in_frag = !f->fin;
    if (f->fin) {
        sess_on_text(p, s, s->frag, s->frag_len);
        s->frag_len = 0;
    }
    return 0;
}

/* Parse the frames in buf[0..len); keep an incomplete tail in the session. */
static void sess_parse(brx_pool_t *p, rx_sess_t *s, const uint8_t *buf, size_t len)
{
    size_t off = 0;
    bwsf_frame_t f;
    for (;;) {
        bwsf_rc_t rc = bwsf_parse(buf + off, len - off, MAX_MESSAGE, &f);
        if (rc == BWSF_NEED_MORE) break;
        if (rc < 0) {
            sess_gone(p, s, false, bwsf_strerror(rc));
            return;
        }
        if (sess_on_frame(p, s, &f) < 0) return;
        off += f.frame_len;
    }
    s->carry_len = 0;
    if (off < len) {
        if (reserve(&s->carry, &s->carry_cap, len - off) < 0) {
            sess_gone(p, s, false, "out of memory");
            return;
        }
        memmove(s->carry, buf + off, len - off);
        s->carry_len = len - off;
    }
}

/* Readable: one read of up to the buffer size behind what the last read left over. */
static void sess_on_readable(brx_pool_t *p, rx_sess_t *s)
{
    size_t have = s->carry_len;
    bwsf_frame_t f;
    size_t want = have + 4096; /* room to read into, and for a NUL */
    /* a frame larger than the buffer: grow it to hold the whole frame */
    if (s->state != RS_HTTP && bwsf_parse(s->carry, have, MAX_MESSAGE, &f) == BWSF_NEED_MORE &&
        f.need >= want)
        want = f.need + 1;
    if (reserve(&p->rbuf, &p->rbuf_cap, want) < 0) {
        sess_gone(p, s, false, "out of memory");
        return;
    }
    if (have) memcpy(p->rbuf, s->carry, have);
    ssize_t n = recv(s->fd, p->rbuf + have, p->rbuf_cap - have - 1, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n <= 0) {
        sess_gone(p, s, s->state == RS_HTTP, n < 0 ? strerror(errno) : "connection closed");
        return;
    }
    size_t len = have + (size_t)n;
    if (s->state == RS_HTTP) {
        p->rbuf[len] = '\0';
        char *end = strstr((char *)p->rbuf, "\r\n\r\n");
        const char *why;
        if (!end) { /* keep the partial response for the next read */
            if (len >= MAX_HTTP || reserve(&s->carry, &s->carry_cap, len) < 0) {
                sess_gone(p, s, false, "handshake response too long");
                return;
            }
            memcpy(s->carry, p->rbuf, len);
            s->carry_len = len;
            return;
        }
        size_t head = (size_t)(end - (char *)p->rbuf) + 4;
        if ((why = check_upgrade(s, (char *)p->rbuf, head))) {
            s->tries = MAX_TRIES;
            sess_gone(p, s, true, why);
            return;
        }
        p->handshaking--;
        s->state = RS_OPEN;
        sess_parse(p, s, p->rbuf + head, len - head);
        return;
    }
    sess_parse(p, s, p->rbuf, len);
}

/* Wait up to TICK_MS for events and handle them. */
static void pool_service(brx_pool_t *p)
{
    struct epoll_event ev[MAX_EVENTS];
    int n = epoll_wait(p->ep, ev, MAX_EVENTS, TICK_MS);
    for (int i = 0; i < n; i++) {
        rx_sess_t *s = ev[i].data.ptr;
        if (s->fd < 0) continue; /* ended earlier in this batch */
        if (s->state == RS_CONNECTING)
            sess_send_upgrade(p, s);
        else
            sess_on_readable(p, s);
    }
}

brx_pool_t *brx_create(bench_run_t *r)
{
    brx_pool_t *p = calloc(1, sizeof *p);
    if (!p) goto oom;
    p->r = r;
    p->ep = -1;
    if (!(p->s = calloc(r->sessions, sizeof *p->s))) goto oom;
    for (unsigned i = 0; i < r->sessions; i++) {
        rx_sess_t *s = &p->s[i];
        s->fd = -1;
        const char *host;
        unsigned port;
        bench_session_gateway(r, i, &host, &port, &s->gateway);
        if (bcheck_init(&s->chk, r, i % r->users) < 0) goto oom;
    }
    p->rbuf_cap = RBUF_SIZE;
    if (!(p->rbuf = malloc(p->rbuf_cap))) goto oom;
    if ((p->ep = epoll_create1(EPOLL_CLOEXEC)) < 0) {
        fprintf(stderr, "herald-bench: epoll_create1: %s\n", strerror(errno));
        brx_destroy(p);
        return NULL;
    }
    srand((unsigned)mono_ns()); /* pong/close masks: RFC 6455 wants them unpredictable */
    return p;
oom:
    fprintf(stderr, "herald-bench: out of memory for %u sessions\n", r->sessions);
    brx_destroy(p);
    return NULL;
}

int brx_connect_all(brx_pool_t *p, double timeout_s)
{
    const bench_run_t *r = p->r;
    uint64_t deadline = mono_ns() + (uint64_t)(timeout_s * 1e9);
    while (p->welcomed + p->failed + p->dropped < r->sessions && !*r->stop &&
           mono_ns() < deadline) {
        pool_start_connects(p);
        pool_service(p);
    }
    if (p->welcomed == r->sessions) return 0;
    fprintf(stderr, "herald-bench: %u of %u sessions welcomed (%u failed, %u closed)%s\n",
            p->welcomed, r->sessions, p->failed, p->dropped,
            mono_ns() >= deadline ? ", connect phase timed out" : "");
    return -1;
}

void brx_receive(brx_pool_t *p, uint64_t deadline)
{
    bench_run_t *r = p->r;
    double cpu0 = bench_thread_cpu_s();
    while (!*r->stop && mono_ns() < deadline) {
        pool_service(p);
        if (bench_rx_done(r)) break;
    }
    r->rx_cpu_s = bench_thread_cpu_s() - cpu0;
}

unsigned brx_sessions_dropped(const brx_pool_t *p)
{
    return p->dropped;
}

void brx_destroy(brx_pool_t *p)
{
    if (!p) return;
    if (p->s) {
        for (unsigned i = 0; i < p->r->sessions; i++) {
            rx_sess_t *s = &p->s[i];
            if (s->fd >= 0) close(s->fd);
            bcheck_free(&s->chk);
            free(s->carry);
            free(s->frag);
        }
        free(p->s);
    }
    if (p->ep >= 0) close(p->ep);
    free(p->rbuf);
    free(p);
}
