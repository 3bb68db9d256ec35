/* http.c - the broker's HTTP/1.1 server on its event loop (http.h): listen and accept,
 * connections and their I/O (plain or TLS), the flush of answered responses and the idle
 * sweep. Parsing is in http_parse.c, responses in http_resp.c. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "herald_time.h"
#include "http_int.h"

/* --- I/O: plain sockets, or OpenSSL on them (broker.tls_cert) --- */

enum { IO_BLOCK = -2, IO_FAIL = -1 };

/* Bytes read (> 0), 0 at end of stream, IO_BLOCK when nothing is there yet, IO_FAIL. */
static ssize_t conn_recv(bk_http_conn_t *c, void *buf, size_t n)
{
    if (!c->ssl) {
        ssize_t r = recv(c->io.fd, buf, n, 0);
        if (r >= 0) return r;
        return errno == EAGAIN || errno == EINTR ? IO_BLOCK : IO_FAIL;
    }
    c->tls_want_read = c->tls_want_write = false;
    int r = SSL_read(c->ssl, buf, n > INT32_MAX ? INT32_MAX : (int)n);
    if (r > 0) return r;
    switch (SSL_get_error(c->ssl, r)) {
    case SSL_ERROR_WANT_READ:
        return IO_BLOCK;
    case SSL_ERROR_WANT_WRITE:
        c->tls_want_write = true;
        return IO_BLOCK;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    default:
        ERR_clear_error();
        return IO_FAIL; /* a failed handshake or a broken record: nothing to answer */
    }
}

/* Bytes sent (> 0), IO_BLOCK when the socket (or the TLS engine) cannot take any now, or
 * IO_FAIL. */
static ssize_t conn_send(bk_http_conn_t *c, const void *buf, size_t n)
{
    if (!c->ssl) {
        ssize_t w = send(c->io.fd, buf, n, MSG_NOSIGNAL);
        if (w >= 0) return w;
        return errno == EAGAIN || errno == EINTR ? IO_BLOCK : IO_FAIL;
    }
    c->tls_want_read = c->tls_want_write = false;
    int w = SSL_write(c->ssl, buf, n > INT32_MAX ? INT32_MAX : (int)n);
    if (w > 0) return w;
    switch (SSL_get_error(c->ssl, w)) {
    case SSL_ERROR_WANT_WRITE:
        return IO_BLOCK;
    case SSL_ERROR_WANT_READ:
        c->tls_want_read = true;
        return IO_BLOCK;
    default:
        ERR_clear_error();
        return IO_FAIL;
    }
}

void bk_http_conn_update_interest(broker_t *b, bk_http_conn_t *c)
{
    bool paused = HTTP_PARSER_ERRNO(&c->parser) == HPE_PAUSED && c->rx_off < c->rx_len;
    bool want_read = (!c->closing && !paused && c->tx.len - c->tx_off <= BK_TX_PAUSE);
    bool want_write = c->tx.len > c->tx_off || c->tls_want_write;
    if (want_read != c->reading && !want_read) b->c.read_pauses++;
    c->reading = want_read;
    if (c->closing && !c->head && !want_write) bk_http_conn_mark_dirty(b, c); /* flush closes it */
    uint32_t ev = (want_read || c->tls_want_read ? LOOP_READ : 0u) | (want_write ? LOOP_WRITE : 0u);
    loop_io_set(b->loop, &c->io, ev);
}

/* Write what the socket takes. -1 when the connection is finished (closed or failed). */
static int conn_write(broker_t *b, bk_http_conn_t *c)
{
    while (c->tx_off < c->tx.len) {
        ssize_t w = conn_send(c, c->tx.data + c->tx_off, c->tx.len - c->tx_off);
        if (w == IO_BLOCK) break;
        if (w < 0) return -1;
        c->tx_off += (size_t)w;
        c->active_ns = loop_now(b->loop);
    }
    if (c->tx_off == c->tx.len) {
        c->tx_off = 0;
        jbuf_reset(&c->tx);
        if (c->closing && !c->head) return -1; /* everything owed is out */
    }
    bk_http_conn_update_interest(b, c);
    return 0;
}

static void conn_read(broker_t *b, bk_http_conn_t *c)
{
again:
    if (c->rx_cap - c->rx_len < HTTP_READ_CHUNK) {
        if (c->rx_off) {
            memmove(c->rx, c->rx + c->rx_off, c->rx_len - c->rx_off);
            c->rx_len -= c->rx_off;
            c->rx_off = 0;
        }
        if (c->rx_cap - c->rx_len < HTTP_READ_CHUNK) {
            size_t cap = c->rx_cap ? c->rx_cap * 2 : HTTP_READ_CHUNK;
            uint8_t *p = realloc(c->rx, cap);
            if (!p) abort();
            c->rx = p;
            c->rx_cap = cap;
        }
    }
    ssize_t n = conn_recv(c, c->rx + c->rx_len, c->rx_cap - c->rx_len);
    if (n == 0 || n == IO_FAIL) {
        /* The peer is gone (or half-closed: it sends no more requests). What it already sent
         * is still answered if it reads; an incomplete request is dropped. */
        bk_http_conn_stop_input(c);
        if (!c->head && c->tx.len == c->tx_off) {
            bk_http_conn_close(b, c);
            return;
        }
        bk_http_conn_update_interest(b, c);
        return;
    }
    if (n < 0) {
        bk_http_conn_update_interest(b, c); /* TLS may need to send before it can read */
        return;
    }
    c->rx_len += (size_t)n;
    c->active_ns = loop_now(b->loop);
    bk_http_conn_parse(b, c);
    /* TLS keeps what it decrypted but we did not take: the socket will not say so again */
    if (c->ssl && c->reading && SSL_pending(c->ssl) > 0) goto again;
}

static void conn_io(loop_t *l, loop_io_t *io, uint32_t ready)
{
    (void)l;
    bk_http_conn_t *c = io->ctx;
    broker_t *b = c->b;
    if (c->ssl) { /* either readiness may be what the TLS engine waited for */
        if (c->tx.len > c->tx_off && conn_write(b, c) < 0) {
            bk_http_conn_close(b, c);
            return;
        }
        if (c->reading || c->tls_want_write) conn_read(b, c);
        return;
    }
    if ((ready & LOOP_WRITE) && conn_write(b, c) < 0) {
        bk_http_conn_close(b, c);
        return;
    }
    if ((ready & LOOP_READ) && c->reading) conn_read(b, c);
}

/* Forget the queued requests: answered or half-parsed ones are freed, a publish still in the
 * pipeline is orphaned (bk_http_respond frees it when it completes). */
void bk_http_conn_drop_queue(bk_http_conn_t *c)
{
    for (bk_http_msg_t *m = c->head, *nx; m; m = nx) {
        nx = m->next;
        if (m->done || m == c->cur) {
            jbuf_free(&m->resp);
            free(m);
        } else {
            m->conn = NULL;
        }
    }
    c->head = c->tail = c->cur = NULL;
    c->outstanding = 0;
}

void bk_http_conn_close(broker_t *b, bk_http_conn_t *c)
{
    bk_http_t *h = b->http;
    loop_io_del(b->loop, &c->io);
    close(c->io.fd);
    bk_http_conn_drop_queue(c);
    if (c->dirty) {
        bk_http_conn_t **pp = &h->dirty;
        while (*pp != c)
            pp = &(*pp)->dirty_next;
        *pp = c->dirty_next;
    }
    if (c->prev)
        c->prev->next = c->next;
    else
        h->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    h->n_conns--;
    if (c->ssl) SSL_free(c->ssl); /* no close_notify: the peer sees the TCP close */
    jbuf_free(&c->tx);
    jbuf_free(&c->url);
    free(c->rx);
    free(c->body);
    free(c);
}

static void listen_resume(loop_t *l, loop_timer_t *t)
{
    broker_t *b = t->ctx;
    loop_io_set(l, &b->http->listen, LOOP_READ);
}

static void on_accept(loop_t *l, loop_io_t *io, uint32_t ready)
{
    (void)ready;
    broker_t *b = io->ctx;
    bk_http_t *h = b->http;
    for (int i = 0; i < 64; i++) {
        int fd = accept4(io->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE) {
                /* The pending connection stays in the backlog and the listener readable:
                 * stop watching it for 100 ms rather than spin on it. */
                b->c.http_refused++;
                loop_io_set(l, io, 0);
                loop_timer_at(l, &h->listen_retry, loop_now(l) + 100 * 1000000ull);
                if (log_ratelimit_ok(&b->rl_bad, 5))
                    log_warn("HTTP: out of file descriptors; accepting again in 100 ms");
            }
            return;
        }
        if (h->n_conns >= b->cfg.http_max_connections) {
            b->c.http_refused++;
            static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                                       "Retry-After: 1\r\nConnection: close\r\n\r\n";
            ssize_t w = send(fd, busy, sizeof busy - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
            (void)w;
            close(fd);
            if (log_ratelimit_ok(&b->rl_bad, 5))
                log_warn("HTTP: connection refused at broker.http_max_connections (%u)",
                         b->cfg.http_max_connections);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (bk_http_adopt(b, fd) == 0) b->c.http_connections++;
    }
}

int bk_http_adopt(broker_t *b, int fd)
{
    bk_http_t *h = b->http;
    bk_http_conn_t *c = calloc(1, sizeof *c);
    if (!c) abort();
    c->b = b;
    c->io = (loop_io_t){.fd = fd, .fn = conn_io, .ctx = c};
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    jbuf_init(&c->tx, 0);
    jbuf_init(&c->url, 0);
    c->active_ns = loop_now(b->loop);
    if (h->tls) {
        c->ssl = SSL_new(h->tls);
        if (!c->ssl || !SSL_set_fd(c->ssl, fd)) abort(); /* out of memory */
        SSL_set_accept_state(c->ssl);
    }
    if (loop_io_add(b->loop, &c->io, LOOP_READ) < 0) {
        close(fd);
        if (c->ssl) SSL_free(c->ssl);
        jbuf_free(&c->tx);
        jbuf_free(&c->url);
        free(c);
        return -1;
    }
    c->reading = true;
    c->next = h->conns;
    if (h->conns) h->conns->prev = c;
    h->conns = c;
    h->n_conns++;
    return 0;
}

void bk_http_init(broker_t *b)
{
    bk_http_t *h = calloc(1, sizeof *h);
    if (!h) abort();
    msgpack_sbuffer_init(&h->mp);
    h->listen.fd = -1;
    h->handle = b->hooks.http_request;
    loop_timer_init(&h->listen_retry, listen_resume, b);
    b->http = h;
}

void bk_http_set_handler(broker_t *b, bk_http_handler_fn fn)
{
    b->http->handle = fn;
}

/* The TLS context of broker.tls_cert / tls_key (TLS 1.2 and later). 0 or -HERR_BAD_VALUE
 * naming the file that does not load. */
static int tls_open(bk_http_t *h, const herald_config_t *cfg, herald_error_t *err)
{
    h->tls = SSL_CTX_new(TLS_server_method());
    if (!h->tls) return herr_set(err, HERR_INTERNAL, "broker.tls_cert", "SSL_CTX_new failed");
    SSL_CTX_set_min_proto_version(h->tls, TLS1_2_VERSION);
    /* the output buffer may move (realloc) between a blocked write and its retry */
    SSL_CTX_set_mode(h->tls, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    char why[160];
    if (SSL_CTX_use_certificate_chain_file(h->tls, cfg->broker_tls_cert) != 1) {
        ERR_error_string_n(ERR_get_error(), why, sizeof why);
        return herr_set(err, HERR_BAD_VALUE, "broker.tls_cert", "broker.tls_cert %s: %s",
                        cfg->broker_tls_cert, why);
    }
    if (SSL_CTX_use_PrivateKey_file(h->tls, cfg->broker_tls_key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(h->tls) != 1) {
        ERR_error_string_n(ERR_get_error(), why, sizeof why);
        return herr_set(err, HERR_BAD_VALUE, "broker.tls_key", "broker.tls_key %s: %s",
                        cfg->broker_tls_key, why);
    }
    return 0;
}

int bk_http_listen(broker_t *b, herald_error_t *err)
{
    bk_http_init(b);
    bk_http_t *h = b->http;
    if (b->cfg.broker_tls_cert[0]) {
        int rc = tls_open(h, &b->cfg, err);
        if (rc < 0) return rc;
    }
    const host_port_t *hp = &b->cfg.broker_http;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(hp->port)};
    if (inet_pton(AF_INET, hp->host, &sa.sin_addr) != 1)
        return herr_set(err, HERR_BAD_VALUE, "broker.http", "not an IPv4 address: %s", hp->host);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return herr_set(err, HERR_IO, "broker.http", "socket: %s", strerror(errno));
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 1024) < 0) {
        int e = errno;
        close(fd);
        return herr_set(err, HERR_IO, "broker.http", "cannot serve HTTP on %s:%u: %s", hp->host,
                        hp->port, strerror(e));
    }
    h->listen = (loop_io_t){.fd = fd, .fn = on_accept, .ctx = b};
    if (loop_io_add(b->loop, &h->listen, LOOP_READ) < 0) {
        close(fd);
        return herr_set(err, HERR_IO, "broker.http", "epoll: %s", strerror(errno));
    }
    return 0;
}

void bk_http_close(broker_t *b)
{
    bk_http_t *h = b->http;
    if (!h) return;
    while (h->conns)
        bk_http_conn_close(b, h->conns);
    loop_timer_cancel(b->loop, &h->listen_retry);
    if (h->listen.fd >= 0) {
        loop_io_del(b->loop, &h->listen);
        close(h->listen.fd);
    }
    msgpack_sbuffer_destroy(&h->mp);
    if (h->tls) SSL_CTX_free(h->tls);
    free(h);
    b->http = NULL;
}

void bk_http_flush(broker_t *b)
{
    bk_http_t *h = b->http;
    while (h->dirty) {
        bk_http_conn_t *c = h->dirty;
        h->dirty = c->dirty_next;
        c->dirty = false;
        if (conn_write(b, c) < 0) bk_http_conn_close(b, c);
    }
}

void bk_http_sweep(broker_t *b)
{
    uint64_t now = loop_now(b->loop);
    uint64_t req_max = (uint64_t)b->cfg.http_timeout_s * 1000000000ull;
    uint64_t idle_max = (uint64_t)b->cfg.http_idle_s * 1000000000ull;
    for (bk_http_conn_t *c = b->http->conns, *nx; c; c = nx) {
        nx = c->next;
        if (c->started_ns && now - c->started_ns > req_max && !c->closing) {
            b->c.http_timeouts++;
            bk_http_conn_fail(b, c, 408, "request not complete within broker.http_timeout_s");
            bk_http_conn_mark_dirty(b, c);
        } else if (!c->started_ns && !c->head && c->tx.len == c->tx_off &&
                   now - c->active_ns > idle_max) {
            b->c.http_idle_closes++;
            bk_http_conn_close(b, c);
        }
    }
}

size_t bk_http_connections(const broker_t *b)
{
    return b->http ? b->http->n_conns : 0;
}

msgpack_sbuffer *bk_http_scratch(broker_t *b)
{
    return &b->http->mp;
}
