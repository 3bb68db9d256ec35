/* http.c - the broker's HTTP/1.1 server on its event loop (http.h): accept, parse with
 * http-parser, keep requests in arrival order, write their responses in that order. */
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <http_parser.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "broker.h"
#include "herald_time.h"

#define HTTP_READ_CHUNK (64u * 1024)
#define HTTP_AUTH_MAX   256 /* longer Authorization values are kept as "too long" */
#define HTTP_NAME_MAX   32  /* header names we look at are shorter */

typedef struct bk_http_conn bk_http_conn_t;

/* One request of a connection, from its first byte until its response is written. */
struct bk_http_msg {
    bk_http_msg_t *next;
    bk_http_conn_t *conn; /* NULL once the connection closed (orphan) */
    bool done;            /* resp holds the whole response */
    bool close_after;     /* close the connection once this response is written */
    jbuf_t resp;
};

typedef enum { HDR_OTHER, HDR_AUTH, HDR_EXPECT } hdr_kind_t;

struct bk_http_conn {
    loop_io_t io;
    broker_t *b;
    bk_http_conn_t *prev, *next; /* every connection, for the sweep */
    bk_http_conn_t *dirty_next;  /* on the flush list */
    bool dirty;
    http_parser parser;
    /* input not yet parsed (kept while parsing is paused) */
    uint8_t *rx;
    size_t rx_off, rx_len, rx_cap;
    /* output */
    jbuf_t tx;
    size_t tx_off;
    /* requests in arrival order; the tail may be the one being parsed */
    bk_http_msg_t *head, *tail;
    unsigned outstanding;
    /* the request being parsed */
    bk_http_msg_t *cur;
    jbuf_t url;
    char name[HTTP_NAME_MAX];
    size_t name_len;
    bool in_value;
    hdr_kind_t hdr;
    char auth[HTTP_AUTH_MAX];
    size_t auth_len;
    bool auth_long, expect_continue;
    size_t header_bytes;
    int refuse; /* a status decided on the headers (411, 413, 414, 431) */
    uint8_t *body;
    size_t body_len, body_cap;
    uint64_t started_ns; /* monotonic: first byte of the current request, 0 between requests */
    uint64_t active_ns;  /* last read or write */
    bool reading;        /* READ interest is on */
    bool closing;        /* no more input: close once the answered responses are out */
    SSL *ssl;            /* broker.tls_cert: this connection speaks TLS */
    bool tls_want_read;  /* the TLS engine needs input before it can go on */
    bool tls_want_write; /* ... or needs to send (a handshake) */
    bool in_parse;       /* inside http_parser_execute (its callbacks must not re-enter) */
};

typedef struct bk_http {
    loop_io_t listen;
    bk_http_conn_t *conns;
    bk_http_conn_t *dirty;
    size_t n_conns;
    msgpack_sbuffer mp; /* JSON bodies converted to msgpack */
    bk_http_handler_fn handle;
    loop_timer_t listen_retry; /* out of descriptors: accept again later */
    SSL_CTX *tls;              /* broker.tls_cert / tls_key: HTTPS */
} bk_http_t;

static void conn_close(broker_t *b, bk_http_conn_t *c);
static void conn_drop_queue(bk_http_conn_t *c);
static void conn_update_interest(broker_t *b, bk_http_conn_t *c);
static void conn_parse(broker_t *b, bk_http_conn_t *c);

static void conn_mark_dirty(broker_t *b, bk_http_conn_t *c)
{
    if (c->dirty) return;
    c->dirty = true;
    c->dirty_next = b->http->dirty;
    b->http->dirty = c;
}

/* --- responses --- */

static const char *status_text(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 411:
        return "Length Required";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return "Unknown";
    }
}

/* Move the answered requests at the head of c's queue into its output. */
static void conn_collect(broker_t *b, bk_http_conn_t *c)
{
    bool was_full = c->outstanding >= BK_HTTP_PIPELINE_MAX;
    while (c->head && c->head->done) {
        bk_http_msg_t *m = c->head;
        c->head = m->next;
        if (!c->head) c->tail = NULL;
        c->outstanding--;
        if (!c->tx.len) { /* the common case: take the buffer instead of copying it */
            jbuf_t t = c->tx;
            c->tx = m->resp;
            m->resp = t;
            c->tx_off = 0;
        } else {
            jbuf_put(&c->tx, m->resp.data, m->resp.len);
        }
        bool last = m->close_after;
        jbuf_free(&m->resp);
        free(m);
        if (last) { /* nothing after a closing response is answered */
            c->closing = true;
            conn_drop_queue(c);
            break;
        }
    }
    /* Parsing stopped at the pipelining bound resumes once there is room. */
    if (was_full && c->outstanding < BK_HTTP_PIPELINE_MAX && !c->closing && !c->in_parse)
        conn_parse(b, c);
}

void bk_http_respond_as(broker_t *b, bk_http_msg_t *m, int status, const char *ctype,
                        const char *body, size_t len, unsigned flags)
{
    if (!m->conn) { /* its connection is gone */
        jbuf_free(&m->resp);
        free(m);
        return;
    }
    bk_http_conn_t *c = m->conn;
    if (flags & BK_HTTP_CLOSE) m->close_after = true;
    if (!ctype) ctype = flags & BK_HTTP_TEXT ? "text/plain; version=0.0.4" : "application/json";
    char head[320];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s%s%s\r\n",
                     status, status_text(status), ctype, len,
                     flags & BK_HTTP_RETRY_AFTER ? "Retry-After: 1\r\n" : "",
                     flags & BK_HTTP_CORS ? "Access-Control-Allow-Origin: *\r\n" : "",
                     m->close_after ? "Connection: close\r\n" : "");
    jbuf_reset(&m->resp);
    jbuf_reserve(&m->resp, (size_t)n + len);
    jbuf_put(&m->resp, head, (size_t)n);
    jbuf_put(&m->resp, body, len);
    m->done = true;
    b->c.http_responses[status / 100 < 6 ? status / 100 : 5]++;
    if (m == c->head) {
        conn_collect(b, c);
        conn_mark_dirty(b, c);
    }
}

void bk_http_respond(broker_t *b, bk_http_msg_t *m, int status, const char *body, size_t len,
                     unsigned flags)
{
    bk_http_respond_as(b, m, status, NULL, body, len, flags);
}

void bk_http_error_flags(broker_t *b, bk_http_msg_t *m, int status, herr_t code, const char *msg,
                         unsigned flags)
{
    jbuf_t o;
    jbuf_init(&o, 0);
    jbuf_puts(&o, "{\"error\":");
    json_put_str(&o, herr_code(code), strlen(herr_code(code)));
    jbuf_puts(&o, ",\"message\":");
    json_put_str(&o, msg, strlen(msg));
    jbuf_putc(&o, '}');
    if (code == HERR_QUEUE_FULL || code == HERR_IO || code == HERR_OVER_CAPACITY ||
        code == HERR_UNAVAILABLE)
        flags |= BK_HTTP_RETRY_AFTER;
    bk_http_respond(b, m, status, o.data, o.len, flags);
    jbuf_free(&o);
}

void bk_http_error(broker_t *b, bk_http_msg_t *m, int status, herr_t code, const char *msg)
{
    bk_http_error_flags(b, m, status, code, msg, 0);
}

/* A protocol error: answer it after the earlier requests and read no more. */
static void conn_fail(broker_t *b, bk_http_conn_t *c, int status, const char *msg)
{
    bk_http_msg_t *m = c->cur;
    c->cur = NULL;
    c->started_ns = 0;
    if (!m) { /* between requests: give the error a slot of its own */
        m = calloc(1, sizeof *m);
        if (!m) abort();
        m->conn = c;
        if (c->tail)
            c->tail->next = m;
        else
            c->head = m;
        c->tail = m;
        c->outstanding++;
    }
    c->closing = true; /* stop reading; closes once the responses before it are out */
    m->close_after = true;
    b->c.http_errors++;
    if (log_ratelimit_ok(&b->rl_bad, 5)) log_warn("HTTP request refused (%d): %s", status, msg);
    bk_http_error(b, m, status, status == 408 ? HERR_TIMEOUT : HERR_MALFORMED, msg);
    conn_update_interest(b, c);
}

/* Read no more requests: the one being parsed (the tail) is dropped unanswered, the others
 * are answered, then the connection closes. */
static void conn_stop_input(bk_http_conn_t *c)
{
    c->closing = true;
    if (!c->cur) return;
    bk_http_msg_t *prev = NULL;
    for (bk_http_msg_t *m = c->head; m != c->cur; m = m->next)
        prev = m;
    if (prev)
        prev->next = NULL;
    else
        c->head = NULL;
    c->tail = prev;
    jbuf_free(&c->cur->resp);
    free(c->cur);
    c->cur = NULL;
    c->started_ns = 0;
    c->outstanding--;
}

/* --- parsing --- */

static void body_put(bk_http_conn_t *c, const char *at, size_t len)
{
    if (c->body_len + len > c->body_cap) {
        size_t cap = c->body_cap ? c->body_cap : 4096;
        while (cap < c->body_len + len)
            cap *= 2;
        uint8_t *p = realloc(c->body, cap);
        if (!p) abort();
        c->body = p;
        c->body_cap = cap;
    }
    memcpy(c->body + c->body_len, at, len);
    c->body_len += len;
}

static int on_message_begin(http_parser *p)
{
    bk_http_conn_t *c = p->data;
    bk_http_msg_t *m = calloc(1, sizeof *m);
    if (!m) abort();
    m->conn = c;
    if (c->tail)
        c->tail->next = m;
    else
        c->head = m;
    c->tail = m;
    c->outstanding++;
    c->cur = m;
    c->started_ns = loop_now(c->b->loop);
    jbuf_reset(&c->url);
    c->name_len = c->auth_len = c->header_bytes = c->body_len = 0;
    c->in_value = c->auth_long = c->expect_continue = false;
    c->hdr = HDR_OTHER;
    c->refuse = 0;
    return 0;
}

static int header_bytes(bk_http_conn_t *c, size_t len)
{
    c->header_bytes += len;
    if (c->header_bytes <= BK_HTTP_HEADER_MAX) return 0;
    c->refuse = 431;
    return -1; /* stops the parser: the request is answered 431 */
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    bk_http_conn_t *c = p->data;
    if (header_bytes(c, len)) return -1;
    jbuf_put(&c->url, at, len);
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    bk_http_conn_t *c = p->data;
    if (header_bytes(c, len)) return -1;
    if (c->in_value) { /* a new header starts */
        c->in_value = false;
        c->name_len = 0;
    }
    for (size_t i = 0; i < len; i++)
        if (c->name_len < HTTP_NAME_MAX) c->name[c->name_len++] = (char)(at[i] | 0x20);
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    bk_http_conn_t *c = p->data;
    if (header_bytes(c, len)) return -1;
    if (!c->in_value) { /* the name is complete */
        c->in_value = true;
        c->hdr = HDR_OTHER;
        if (c->name_len == 13 && !memcmp(c->name, "authorization", 13)) {
            c->hdr = HDR_AUTH;
            c->auth_len = 0;
        } else if (c->name_len == 6 && !memcmp(c->name, "expect", 6)) {
            c->hdr = HDR_EXPECT;
        }
    }
    if (c->hdr == HDR_AUTH) {
        if (c->auth_len + len > HTTP_AUTH_MAX)
            c->auth_long = true;
        else
            memcpy(c->auth + c->auth_len, at, len), c->auth_len += len;
    } else if (c->hdr == HDR_EXPECT && len >= 12 && !strncasecmp(at, "100-continue", 12)) {
        c->expect_continue = true;
    }
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    bk_http_conn_t *c = p->data;
    broker_t *b = c->b;
    bool chunked = p->flags & F_CHUNKED, has_len = p->flags & F_CONTENTLENGTH;
    if (p->upgrade) /* set on the headers: nothing here speaks another protocol */
        c->refuse = 400;
    else if (c->url.len > 8192)
        c->refuse = 414;
    else if (p->method == HTTP_POST && !chunked && !has_len)
        c->refuse = 411;
    else if (has_len && p->content_length > b->cfg.http_body_max)
        c->refuse = 413; /* refused on the headers, before any of the body is read */
    if (c->refuse) {
        http_parser_pause(p, 1);
        return 0;
    }
    /* curl and others wait for this before sending a large body; it may only go out when no
     * earlier response is pending (it belongs to this request). */
    if (c->expect_continue && (has_len || chunked) && c->head == c->cur)
        jbuf_puts(&c->tx, "HTTP/1.1 100 Continue\r\n\r\n"), conn_mark_dirty(b, c);
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    bk_http_conn_t *c = p->data;
    if (c->body_len + len > c->b->cfg.http_body_max) { /* chunked: counted as it arrives */
        c->refuse = 413;
        http_parser_pause(p, 1);
        return 0;
    }
    body_put(c, at, len);
    return 0;
}

/* The split of the request target into path and query. */
static void split_target(const jbuf_t *url, bk_http_request_t *rq)
{
    const char *u = url->data ? url->data : "";
    size_t n = url->len;
    const char *q = memchr(u, '?', n);
    rq->path = u;
    rq->path_len = q ? (size_t)(q - u) : n;
    rq->query = q ? q + 1 : NULL;
    rq->query_len = q ? n - (size_t)(q - u) - 1 : 0;
}

static int on_message_complete(http_parser *p)
{
    bk_http_conn_t *c = p->data;
    broker_t *b = c->b;
    bk_http_msg_t *m = c->cur;
    c->cur = NULL;
    c->started_ns = 0;
    if (!http_should_keep_alive(p)) { /* the last request: parse nothing after it */
        m->close_after = true;
        c->closing = true;
    }
    bk_http_request_t rq = {
        .method = p->method == HTTP_GET    ? BK_HTTP_GET
                  : p->method == HTTP_POST ? BK_HTTP_POST
                                           : BK_HTTP_OTHER,
        .auth = c->auth_long  ? ""
                : c->auth_len ? c->auth
                              : NULL,
        .auth_len = c->auth_long ? 0 : c->auth_len,
        .body = c->body,
        .body_len = c->body_len,
    };
    if (c->auth_long) rq.auth_len = 0, rq.auth = "(too long)";
    split_target(&c->url, &rq);
    b->c.http_requests++;
    b->http->handle(b, m, &rq);
    if (c->closing || c->outstanding >= BK_HTTP_PIPELINE_MAX) http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

static void refuse_on_headers(broker_t *b, bk_http_conn_t *c)
{
    int st = c->refuse;
    char msg[120];
    if (st == 413)
        snprintf(msg, sizeof msg, "request body exceeds broker.http_body_max (%llu bytes)",
                 (unsigned long long)b->cfg.http_body_max);
    else if (st == 411)
        snprintf(msg, sizeof msg, "a POST needs Content-Length or chunked Transfer-Encoding");
    else if (st == 414)
        snprintf(msg, sizeof msg, "request target exceeds 8192 bytes");
    else if (st == 400)
        snprintf(msg, sizeof msg, "protocol upgrades (and CONNECT) are not served here");
    else
        snprintf(msg, sizeof msg, "request line and headers exceed %u bytes", BK_HTTP_HEADER_MAX);
    if (st == 413) b->c.too_large++;
    conn_fail(b, c, st, msg);
}

/* Run the parser over the unparsed input, until it is used up, paused or broken. */
static void conn_parse(broker_t *b, bk_http_conn_t *c)
{
    while (!c->closing && c->rx_off < c->rx_len) {
        if (HTTP_PARSER_ERRNO(&c->parser) == HPE_PAUSED) {
            if (c->refuse || c->outstanding >= BK_HTTP_PIPELINE_MAX) break;
            http_parser_pause(&c->parser, 0);
        }
        c->in_parse = true;
        size_t n = http_parser_execute(&c->parser, &parser_settings,
                                       (const char *)c->rx + c->rx_off, c->rx_len - c->rx_off);
        c->in_parse = false;
        c->rx_off += n;
        enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
        if (c->refuse) {
            refuse_on_headers(b, c);
            break;
        }
        if (e == HPE_PAUSED) continue; /* the loop head decides */
        if (e != HPE_OK) {
            char msg[160];
            snprintf(msg, sizeof msg, "malformed HTTP request: %s", http_errno_description(e));
            conn_fail(b, c, 400, msg);
            break;
        }
    }
    if (c->rx_off == c->rx_len) c->rx_off = c->rx_len = 0;
    conn_update_interest(b, c);
}

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

static void conn_update_interest(broker_t *b, bk_http_conn_t *c)
{
    bool paused = HTTP_PARSER_ERRNO(&c->parser) == HPE_PAUSED && c->rx_off < c->rx_len;
    bool want_read = (!c->closing && !paused && c->tx.len - c->tx_off <= BK_TX_PAUSE);
    bool want_write = c->tx.len > c->tx_off || c->tls_want_write;
    if (want_read != c->reading && !want_read) b->c.read_pauses++;
    c->reading = want_read;
    if (c->closing && !c->head && !want_write) conn_mark_dirty(b, c); /* flush closes it */
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
    conn_update_interest(b, c);
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
        conn_stop_input(c);
        if (!c->head && c->tx.len == c->tx_off) {
            conn_close(b, c);
            return;
        }
        conn_update_interest(b, c);
        return;
    }
    if (n < 0) {
        conn_update_interest(b, c); /* TLS may need to send before it can read */
        return;
    }
    c->rx_len += (size_t)n;
    c->active_ns = loop_now(b->loop);
    conn_parse(b, c);
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
            conn_close(b, c);
            return;
        }
        if (c->reading || c->tls_want_write) conn_read(b, c);
        return;
    }
    if ((ready & LOOP_WRITE) && conn_write(b, c) < 0) {
        conn_close(b, c);
        return;
    }
    if ((ready & LOOP_READ) && c->reading) conn_read(b, c);
}

/* Forget the queued requests: answered or half-parsed ones are freed, a publish still in the
 * pipeline is orphaned (bk_http_respond frees it when it completes). */
static void conn_drop_queue(bk_http_conn_t *c)
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

static void conn_close(broker_t *b, bk_http_conn_t *c)
{
    bk_http_t *h = b->http;
    loop_io_del(b->loop, &c->io);
    close(c->io.fd);
    conn_drop_queue(c);
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
    h->handle = bk_api_handle;
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
        conn_close(b, h->conns);
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
        if (conn_write(b, c) < 0) conn_close(b, c);
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
            conn_fail(b, c, 408, "request not complete within broker.http_timeout_s");
            conn_mark_dirty(b, c);
        } else if (!c->started_ns && !c->head && c->tx.len == c->tx_off &&
                   now - c->active_ns > idle_max) {
            b->c.http_idle_closes++;
            conn_close(b, c);
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
