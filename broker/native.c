/* native.c - the framed-msgpack sockets (broker.sock, optional TCP, control.sock) on the
 * broker's loop: accept, read frames, answer in request order. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "broker.h"
#include "frame.h"
#include "guard.h"
#include "native.h"
#include "ingest.h"
#include "pipeline.h"

#define READ_CHUNK (256u * 1024)
#define CTRL_MAX   (1u << 20)

static msgpack_sbuffer resp;

/* The native and control connections (listeners too). */
struct bk_native {
    bk_conn_t *conns; /* every connection and listener */
    bk_conn_t *dirty; /* connections with responses to flush */
};

static void conn_io(loop_t *l, loop_io_t *io, uint32_t ready);
static void conn_accept(loop_t *l, loop_io_t *io, uint32_t ready);

/* Watch fd on the loop as a connection (or listener) of the given kind; closes fd on failure. */
static bk_conn_t *conn_adopt(broker_t *b, int fd, conn_kind_t kind)
{
    bk_conn_t *c = calloc(1, sizeof *c);
    if (!c) abort();
    c->b = b;
    c->kind = kind;
    bool listener = kind == CONN_LISTEN_NATIVE || kind == CONN_LISTEN_CTRL;
    c->io = (loop_io_t){.fd = fd, .fn = listener ? conn_accept : conn_io, .ctx = c};
    if (loop_io_add(b->loop, &c->io, LOOP_READ) < 0) {
        close(fd);
        free(c);
        return NULL;
    }
    c->reading = true;
    c->next = b->native->conns;
    if (b->native->conns) b->native->conns->prev = c;
    b->native->conns = c;
    return c;
}

static int listen_tcp(const host_port_t *hp, herald_error_t *err)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(hp->port)};
    if (inet_pton(AF_INET, hp->host, &sa.sin_addr) != 1)
        return herr_set(err, HERR_BAD_VALUE, "broker.tcp", "not an IPv4 address: %s", hp->host);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0) return herr_set(err, HERR_IO, "broker.tcp", "socket: %s", strerror(errno));
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 512) < 0) {
        int e = errno;
        close(fd);
        return herr_set(err, HERR_IO, "broker.tcp", "bind %s:%u: %s", hp->host, hp->port,
                        strerror(e));
    }
    return fd;
}

int bk_native_listen(broker_t *b, herald_error_t *err)
{
    b->native = calloc(1, sizeof *b->native);
    if (!b->native) abort();
    char path[300];
    /* 0600, or 0660 for runtime.group: producers of that group may publish */
    snprintf(path, sizeof path, "%s/broker.sock", b->cfg.runtime_dir);
    int fd = rtdir_listen(&b->rt, "broker.sock", true, 512, err);
    if (fd < 0 || !conn_adopt(b, fd, CONN_LISTEN_NATIVE)) goto fail;
    snprintf(path, sizeof path, "%s/control.sock", b->cfg.runtime_dir);
    fd = rtdir_listen(&b->rt, "control.sock", false, 512, err);
    if (fd < 0 || !conn_adopt(b, fd, CONN_LISTEN_CTRL)) goto fail;
    if (b->cfg.broker_tcp.port) {
        fd = listen_tcp(&b->cfg.broker_tcp, err);
        if (fd < 0 || !conn_adopt(b, fd, CONN_LISTEN_NATIVE)) goto fail;
    }
    return 0;
fail:
    if (fd >= 0) herr_set(err, HERR_IO, path, "epoll refused the listening socket");
    return -1;
}

static void tx_reserve(bk_conn_t *c, size_t n)
{
    if (c->tx_off && c->tx_off == c->tx_len) c->tx_off = c->tx_len = 0;
    if (c->tx_len + n <= c->tx_cap) return;
    if (c->tx_off) {
        memmove(c->tx, c->tx + c->tx_off, c->tx_len - c->tx_off);
        c->tx_len -= c->tx_off;
        c->tx_off = 0;
        if (c->tx_len + n <= c->tx_cap) return;
    }
    size_t cap = c->tx_cap ? c->tx_cap : 64 * 1024;
    while (cap < c->tx_len + n)
        cap *= 2;
    uint8_t *p = realloc(c->tx, cap);
    if (!p) abort();
    c->tx = p;
    c->tx_cap = cap;
}

void bk_native_send(broker_t *b, bk_conn_t *c, const void *buf, size_t len)
{
    tx_reserve(c, FRAME_HDR + len);
    frame_put_len(c->tx + c->tx_len, (uint32_t)len);
    memcpy(c->tx + c->tx_len + FRAME_HDR, buf, len);
    c->tx_len += FRAME_HDR + len;
    bk_native_mark_dirty(b, c);
}

static void pack_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

/* An accepted item's {"ok":true,"seq":N,"duplicate":B}, written as one block: this is
 * per notification, so no packer call per field. */
static void pack_ok(msgpack_packer *pk, const bk_result_t *r)
{
    static const uint8_t head[] = {0x83, 0xa2, 'o', 'k', 0xc3, 0xa3, 's', 'e', 'q'};
    static const uint8_t dup[] = {0xa9, 'd', 'u', 'p', 'l', 'i', 'c', 'a', 't', 'e'};
    uint8_t out[sizeof head + 9 + sizeof dup + 1], *w = out + sizeof head;
    memcpy(out, head, sizeof head);
    /* the smallest msgpack uint form, as msgpack_pack_uint64 writes it */
    int bytes = r->seq < 0x80          ? 0
                : r->seq <= 0xff       ? 1
                : r->seq <= 0xffff     ? 2
                : r->seq <= UINT32_MAX ? 4
                                       : 8;
    if (bytes) *w++ = bytes == 1 ? 0xcc : bytes == 2 ? 0xcd : bytes == 4 ? 0xce : 0xcf;
    for (int i = bytes ? bytes - 1 : 0; i >= 0; i--)
        *w++ = (uint8_t)(r->seq >> (8 * i));
    memcpy(w, dup, sizeof dup);
    w += sizeof dup;
    *w++ = r->duplicate ? 0xc3 : 0xc2;
    pk->callback(pk->data, (const char *)out, (size_t)(w - out));
}

static void pack_result(msgpack_packer *pk, const bk_result_t *r)
{
    if (r->code == HERR_OK) {
        pack_ok(pk, r);
        return;
    }
    msgpack_pack_map(pk, 3);
    pack_str(pk, "ok");
    msgpack_pack_false(pk);
    pack_str(pk, "error");
    pack_str(pk, herr_code(r->code));
    pack_str(pk, "message");
    pack_str(pk, r->message ? r->message : "");
}

void bk_native_pack_response(const bk_req_t *req, msgpack_sbuffer *sb)
{
    msgpack_packer pk;
    sb->size = 0;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    if (req->frame_code != HERR_OK) {
        bk_result_t r = {.code = req->frame_code, .message = req->frame_msg};
        pack_result(&pk, &r);
    } else if (req->batch) {
        msgpack_pack_array(&pk, req->n);
        for (uint32_t i = 0; i < req->n; i++)
            pack_result(&pk, &req->res[i]);
    } else {
        pack_result(&pk, &req->res[0]);
    }
}

/* Append the response frame of a completed request to the connection's output. */
static void conn_put_response(bk_conn_t *c, const bk_req_t *req)
{
    bk_native_pack_response(req, &resp);
    tx_reserve(c, FRAME_HDR + resp.size);
    frame_put_len(c->tx + c->tx_len, (uint32_t)resp.size);
    memcpy(c->tx + c->tx_len + FRAME_HDR, resp.data, resp.size);
    c->tx_len += FRAME_HDR + resp.size;
}

/* READ interest unless paused (its peer left too many responses unread); WRITE interest
 * while output waits. */
static void conn_interest(broker_t *b, bk_conn_t *c)
{
    bool want_read = !c->paused && !c->closing;
    bool want_write = c->tx_off < c->tx_len;
    c->reading = want_read;
    loop_io_set(b->loop, &c->io, (want_read ? LOOP_READ : 0u) | (want_write ? LOOP_WRITE : 0u));
}

/* Backpressure: a peer that does not read its responses stops being read (its writes then
 * block in the kernel) until its unsent output drains to half the bound. */
static void conn_pause_check(broker_t *b, bk_conn_t *c)
{
    if (c->paused || c->tx_len - c->tx_off <= BK_TX_PAUSE) return;
    c->paused = true;
    b->c.read_pauses++;
}

static void conn_resume(bk_conn_t *c)
{
    if (!c->paused || c->tx_len - c->tx_off > BK_TX_PAUSE / 2) return;
    c->paused = false;
}

/* Write what the socket takes. Returns -1 if the peer is gone (or a closing connection has
 * written everything). */
static int conn_write(broker_t *b, bk_conn_t *c)
{
    while (c->tx_off < c->tx_len) {
        ssize_t w = send(c->io.fd, c->tx + c->tx_off, c->tx_len - c->tx_off, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) break;
            return -1;
        }
        c->tx_off += (size_t)w;
        conn_resume(c);
    }
    if (c->tx_off == c->tx_len) {
        c->tx_off = c->tx_len = 0;
        if (c->closing) return -1;
    }
    conn_pause_check(b, c);
    conn_interest(b, c);
    return 0;
}

void bk_native_mark_dirty(broker_t *b, bk_conn_t *c)
{
    if (c->dirty) return;
    c->dirty = true;
    c->dirty_next = b->native->dirty;
    b->native->dirty = c;
}

static void conn_pop_done(bk_conn_t *c)
{
    while (c->rq_head && c->rq_head->pending == 0) {
        bk_req_t *r = c->rq_head;
        c->rq_head = r->next;
        if (!c->rq_head) c->rq_tail = NULL;
        conn_put_response(c, r);
        bk_req_free(r);
    }
}

static void conn_close(broker_t *b, bk_conn_t *c);

void bk_native_flush(broker_t *b)
{
    if (!b->native) return; /* not listening (tests) */
    while (b->native->dirty) {
        bk_conn_t *c = b->native->dirty;
        b->native->dirty = c->dirty_next;
        c->dirty = false;
        conn_pop_done(c);
        if (conn_write(b, c) < 0) conn_close(b, c);
    }
}

static void native_frame(broker_t *b, bk_conn_t *c, const uint8_t *body, size_t len)
{
    b->c.native_frames++;
    bk_req_t *r = bk_ingest_body(b, body, len);
    r->conn = c;
    if (c->rq_tail)
        c->rq_tail->next = r;
    else
        c->rq_head = r;
    c->rq_tail = r;
    if (r->pending == 0) bk_native_mark_dirty(b, c);
}

/* Parse complete frames out of rx. Returns -1 when the stream cannot continue. */
static int conn_frames(broker_t *b, bk_conn_t *c)
{
    size_t off = 0;
    size_t max = c->kind == CONN_CTRL ? CTRL_MAX : BK_MAX_FRAME;
    int rc = 0;
    while (off < c->rx_len) {
        const uint8_t *body;
        size_t blen;
        long n = frame_next(c->rx + off, c->rx_len - off, max, &body, &blen);
        if (n == 0) break;
        if (n < 0) {
            b->c.bad_frames++;
            if (log_ratelimit_ok(&b->rl_bad, 5))
                log_warn("closing connection: frame announces more than %zu bytes", max);
            bk_req_t *r = bk_req_new(0);
            r->frame_code = HERR_TOO_LARGE;
            snprintf(r->frame_msg, sizeof r->frame_msg, "frame exceeds %zu bytes", max);
            if (c->kind == CONN_NATIVE) {
                if (c->rq_tail)
                    c->rq_tail->next = r;
                else
                    c->rq_head = r;
                c->rq_tail = r;
            } else {
                bk_req_free(r);
            }
            c->closing = true;
            bk_native_mark_dirty(b, c);
            rc = -1;
            off = c->rx_len;
            break;
        }
        off += (size_t)n;
        if (c->kind == CONN_NATIVE && c->auth != BK_AUTH_DONE) {
            msgpack_sbuffer answer;
            msgpack_sbuffer_init(&answer);
            int a = bk_guard_auth_frame(b, &c->auth, body, blen, &answer);
            if (answer.size) bk_native_send(b, c, answer.data, answer.size);
            msgpack_sbuffer_destroy(&answer);
            if (a < 0) {
                c->closing = true;
                rc = -1;
                off = c->rx_len;
                break;
            }
            if (a > 0) continue;
        }
        if (c->kind == CONN_NATIVE)
            native_frame(b, c, body, blen);
        else
            b->hooks.ctrl_frame(b, c, body, blen);
    }
    if (off) {
        memmove(c->rx, c->rx + off, c->rx_len - off);
        c->rx_len -= off;
    }
    return rc;
}

/* Read what is there and take its complete frames. Returns -1 when the peer is gone. */
static int conn_read(broker_t *b, bk_conn_t *c)
{
    if (c->rx_cap - c->rx_len < READ_CHUNK) {
        size_t cap = c->rx_cap ? c->rx_cap : READ_CHUNK * 2;
        while (cap - c->rx_len < READ_CHUNK)
            cap *= 2;
        uint8_t *p = realloc(c->rx, cap);
        if (!p) abort();
        c->rx = p;
        c->rx_cap = cap;
    }
    ssize_t n = recv(c->io.fd, c->rx + c->rx_len, READ_CHUNK, 0);
    if (n == 0) return -1;
    if (n < 0) return (errno == EAGAIN || errno == EINTR) ? 0 : -1;
    c->rx_len += (size_t)n;
    conn_frames(b, c);
    bk_native_mark_dirty(b, c); /* answers (or a pause) are settled at the end of the pass */
    return 0;
}

static void conn_accept(loop_t *l, loop_io_t *io, uint32_t ready)
{
    (void)l;
    (void)ready;
    bk_conn_t *lc = io->ctx;
    broker_t *b = lc->b;
    for (int i = 0; i < 64; i++) {
        int fd = accept4(io->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) return;
        int auth = bk_guard_accept(b, fd, lc->kind == CONN_LISTEN_CTRL);
        if (auth < 0) {
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* fails harmlessly on unix */
        bk_conn_t *c = conn_adopt(b, fd, lc->kind == CONN_LISTEN_CTRL ? CONN_CTRL : CONN_NATIVE);
        if (c) c->auth = (uint8_t)auth;
    }
}

static void conn_close(broker_t *b, bk_conn_t *c)
{
    loop_io_del(b->loop, &c->io);
    close(c->io.fd);
    if (c->kind == CONN_CTRL) b->hooks.ctrl_closed(b, c);
    for (bk_req_t *r = c->rq_head, *nx; r; r = nx) {
        nx = r->next;
        bk_req_orphan(b, r);
    }
    if (c->dirty) { /* unlink from the flush list */
        bk_conn_t **pp = &b->native->dirty;
        while (*pp != c)
            pp = &(*pp)->dirty_next;
        *pp = c->dirty_next;
    }
    if (c->prev)
        c->prev->next = c->next;
    else
        b->native->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    free(c->rx);
    free(c->tx);
    free(c);
}

void bk_native_close(broker_t *b)
{
    if (!b->native) return;
    while (b->native->conns)
        conn_close(b, b->native->conns);
    free(b->native);
    b->native = NULL;
}

static void conn_io(loop_t *l, loop_io_t *io, uint32_t ready)
{
    (void)l;
    bk_conn_t *c = io->ctx;
    broker_t *b = c->b;
    if ((ready & LOOP_WRITE) && conn_write(b, c) < 0) {
        conn_close(b, c);
        return;
    }
    if ((ready & LOOP_READ) && c->reading && conn_read(b, c) < 0) conn_close(b, c);
}
