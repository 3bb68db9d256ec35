/* http_client.c - a tiny blocking HTTP/1.1 client: one request per connection, plain or
 * TLS (OpenSSL, the peer verified). */
#include "http_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#define HTTP_MAX_RESPONSE (16u << 20)

/* Wait until fd is ready for events; -1 with errno ETIMEDOUT on timeout. */
static int http_wait(int fd, short events, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = events};
    int n;
    do {
        n = poll(&p, 1, timeout_ms);
    } while (n < 0 && errno == EINTR);
    if (n == 0) errno = ETIMEDOUT;
    return n > 0 ? 0 : -1;
}

/* Connect with a bound on the time it takes. Returns the fd (blocking mode) or -1. */
static int http_connect(const char *host, uint16_t port, int timeout_ms, herald_error_t *err)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    char ports[8];
    snprintf(ports, sizeof ports, "%u", (unsigned)port);
    int rc = getaddrinfo(host, ports, &hints, &ai);
    if (rc != 0) {
        herr_set(err, HERR_IO, host, "%s:%u: %s", host, (unsigned)port, gai_strerror(rc));
        return -1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) goto fail;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        if (errno != EINPROGRESS || http_wait(fd, POLLOUT, timeout_ms) < 0) goto fail;
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
        if (soerr) {
            errno = soerr;
            goto fail;
        }
    }
    freeaddrinfo(ai);
    return fd;
fail:
    herr_set(err, HERR_IO, host, "connect %s:%u: %s", host, (unsigned)port, strerror(errno));
    if (fd >= 0) close(fd);
    freeaddrinfo(ai);
    return -1;
}

/* One connection: a socket, and the TLS session on it when there is one. */
typedef struct {
    int fd;
    SSL_CTX *ctx;
    SSL *ssl;
} http_conn_t;

/* TLS over the connected c->fd: blocking, bounded by socket timeouts (OpenSSL buffers
 * records, so poll() on the socket would not say when data is readable). */
static int http_tls_start(http_conn_t *c, const http_target_t *t, int timeout_ms,
                          herald_error_t *err)
{
    const char *why = "out of memory";
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    int flags = fcntl(c->fd, F_GETFL);
    unsigned char addr[16];
    bool ip = inet_pton(AF_INET, t->host, addr) == 1 || inet_pton(AF_INET6, t->host, addr) == 1;
    if (flags < 0 || fcntl(c->fd, F_SETFL, flags & ~O_NONBLOCK) < 0 ||
        setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0 ||
        setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) < 0) {
        why = strerror(errno);
        goto fail;
    }
    if (!(c->ctx = SSL_CTX_new(TLS_client_method()))) goto fail;
    SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
    if ((t->cafile ? SSL_CTX_load_verify_locations(c->ctx, t->cafile, NULL)
                   : SSL_CTX_set_default_verify_paths(c->ctx)) != 1) {
        why = t->cafile ? "cannot load the CA file" : "cannot load the system's CAs";
        goto fail;
    }
    if (!(c->ssl = SSL_new(c->ctx)) || !SSL_set_fd(c->ssl, c->fd)) goto fail;
    X509_VERIFY_PARAM *vp = SSL_get0_param(c->ssl);
    if (!(ip ? X509_VERIFY_PARAM_set1_ip_asc(vp, t->host)
             : X509_VERIFY_PARAM_set1_host(vp, t->host, 0) &&
                   SSL_set_tlsext_host_name(c->ssl, t->host)))
        goto fail;
    if (SSL_connect(c->ssl) != 1) {
        long v = SSL_get_verify_result(c->ssl);
        why = v != X509_V_OK ? X509_verify_cert_error_string(v) : "TLS handshake failed";
        goto fail;
    }
    return 0;
fail:
    herr_set(err, HERR_IO, t->host, "TLS to %s:%u: %s", t->host, (unsigned)t->port, why);
    ERR_clear_error();
    return -1;
}

static void http_conn_close(http_conn_t *c)
{
    if (c->ssl) SSL_free(c->ssl);
    SSL_CTX_free(c->ctx);
    if (c->fd >= 0) close(c->fd);
    ERR_clear_error();
}

static int http_send_all(http_conn_t *c, const char *p, size_t n, int timeout_ms)
{
    int fd = c->fd;
    while (n > 0) {
        if (c->ssl) {
            int w = SSL_write(c->ssl, p, (int)n);
            if (w <= 0) {
                errno = EIO;
                return -1;
            }
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (http_wait(fd, POLLOUT, timeout_ms) < 0) return -1;
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (w < 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* The value of header `name` (with its colon) in a header block, or NULL. */
static const char *http_header(const char *hdrs, size_t hlen, const char *name)
{
    size_t nl = strlen(name);
    for (const char *p = hdrs; p && p < hdrs + hlen; p = strstr(p, "\r\n")) {
        p += (p[0] == '\r') ? 2 : 0;
        if (strncasecmp(p, name, nl) == 0) return p + nl + strspn(p + nl, " \t");
    }
    return NULL;
}

/* Decode a complete chunked body in place; returns its length, or -1 if it is incomplete
 * or malformed. */
static long http_dechunk(char *body, size_t len)
{
    size_t in = 0, out = 0;
    for (;;) {
        char *end;
        if (in >= len) return -1;
        unsigned long n = strtoul(body + in, &end, 16);
        char *crlf = strstr(end, "\r\n");
        if (end == body + in || !crlf || (size_t)(crlf - body) + 2 > len) return -1;
        in = (size_t)(crlf - body) + 2;
        if (n == 0) return (long)out;
        if (n > len - in) return -1;
        memmove(body + out, body + in, n);
        out += n;
        in += n + 2;
    }
}

/* Read what is there, up to n bytes: > 0 bytes, 0 at the end, -1 with errno. */
static ssize_t http_recv(http_conn_t *c, char *p, size_t n, int timeout_ms)
{
    if (c->ssl) {
        int r = SSL_read(c->ssl, p, (int)n);
        if (r > 0) return r;
        int e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_ZERO_RETURN) return 0;
        if (e == SSL_ERROR_SYSCALL && errno == 0) return 0; /* closed without close_notify */
        if (e != SSL_ERROR_SYSCALL) errno = EIO;
        if (errno == EAGAIN) errno = ETIMEDOUT;
        return -1;
    }
    if (http_wait(c->fd, POLLIN, timeout_ms) < 0) return -1;
    for (;;) {
        ssize_t r = recv(c->fd, p, n, 0);
        if (r >= 0 || (errno != EINTR && errno != EAGAIN)) return r;
        if (http_wait(c->fd, POLLIN, timeout_ms) < 0) return -1;
    }
}

int http_request(const char *host, uint16_t port, const char *method, const char *path,
                 const char *headers, const char *body, size_t body_len, int timeout_ms,
                 http_response_t *res, herald_error_t *err)
{
    http_target_t t = {.host = host, .port = port};
    return http_request_to(&t, method, path, headers, body, body_len, timeout_ms, res, err);
}

/* The request line and headers, then the body. Returns 0, -HERR_TOO_LARGE (err set), or
 * -HERR_IO (err set). */
static int http_send_request(http_conn_t *c, const http_target_t *t, const char *method,
                             const char *path, const char *headers, const char *body,
                             size_t body_len, int timeout_ms, herald_error_t *err)
{
    char req[2048];
    int n = snprintf(req, sizeof req,
                     "%s %s HTTP/1.1\r\nHost: %s:%u\r\nConnection: close\r\n"
                     "Content-Length: %zu\r\n%s\r\n",
                     method, path, t->host, (unsigned)t->port, body ? body_len : 0,
                     headers ? headers : "");
    if (n < 0 || (size_t)n >= sizeof req)
        return herr_set(err, HERR_TOO_LARGE, path, "request header for %s too long", path);
    if (http_send_all(c, req, (size_t)n, timeout_ms) < 0 ||
        (body && http_send_all(c, body, body_len, timeout_ms) < 0))
        return herr_set(err, HERR_IO, t->host, "send to %s:%u: %s", t->host, (unsigned)t->port,
                        strerror(errno));
    return 0;
}

/* A response as read: buf[0..len) (NUL-terminated), hend past the blank line once seen. */
typedef struct {
    char *buf, *hend;
    size_t len, cap;
    long clen; /* Content-Length, -1 = none */
    bool chunked;
} http_raw_t;

/* Read until Content-Length bytes of body, the end of a chunked body, or the peer closes.
 * Returns 0, -HERR_TOO_LARGE or -HERR_IO (err set, or not when out of memory). */
static int http_read_response(http_conn_t *c, const http_target_t *t, int timeout_ms, http_raw_t *r,
                              herald_error_t *err)
{
    r->cap = 16384;
    r->clen = -1;
    r->buf = malloc(r->cap + 1);
    if (!r->buf) return -HERR_IO;
    for (;;) {
        if (r->hend && r->clen >= 0 && r->len >= (size_t)(r->hend - r->buf) + (size_t)r->clen)
            break;
        if (r->len == r->cap) {
            if (r->cap >= HTTP_MAX_RESPONSE)
                return herr_set(err, HERR_TOO_LARGE, t->host, "response from %s:%u over 16 MiB",
                                t->host, (unsigned)t->port);
            size_t hoff = r->hend ? (size_t)(r->hend - r->buf) : 0; /* before buf may move */
            char *nb = realloc(r->buf, r->cap * 2 + 1);
            if (!nb) return -HERR_IO;
            r->hend = r->hend ? nb + hoff : NULL;
            r->buf = nb;
            r->cap *= 2;
        }
        ssize_t n = http_recv(c, r->buf + r->len, r->cap - r->len, timeout_ms);
        if (n < 0)
            return herr_set(err, HERR_IO, t->host, "read from %s:%u: %s", t->host,
                            (unsigned)t->port, strerror(errno));
        if (n == 0) break;
        r->len += (size_t)n;
        r->buf[r->len] = '\0';
        if (!r->hend && (r->hend = strstr(r->buf, "\r\n\r\n"))) {
            r->hend += 4;
            size_t hl = (size_t)(r->hend - r->buf);
            const char *cl = http_header(r->buf, hl, "Content-Length:");
            const char *te = http_header(r->buf, hl, "Transfer-Encoding:");
            r->clen = cl ? strtol(cl, NULL, 10) : -1;
            r->chunked = te && strncasecmp(te, "chunked", 7) == 0;
        }
        if (r->chunked && r->len >= 5 && memcmp(r->buf + r->len - 5, "0\r\n\r\n", 5) == 0) break;
    }
    r->buf[r->len] = '\0';
    return 0;
}

/* Status and body of r into res (the body moved to the front of r->buf, which res takes).
 * Returns 0 or -HERR_MALFORMED (err set). */
static int http_parse_response(http_raw_t *r, const http_target_t *t, http_response_t *res,
                               herald_error_t *err)
{
    char *buf = r->buf;
    if (!r->hend || sscanf(buf, "HTTP/1.%*d %d", &res->status) != 1)
        return herr_set(err, HERR_MALFORMED, t->host, "%s:%u: not an HTTP/1.x response", t->host,
                        (unsigned)t->port);
    res->body_len = r->len - (size_t)(r->hend - buf);
    if (r->clen >= 0 && res->body_len > (size_t)r->clen) res->body_len = (size_t)r->clen;
    memmove(buf, r->hend, res->body_len);
    if (r->chunked) {
        long dl = http_dechunk(buf, res->body_len);
        if (dl < 0)
            return herr_set(err, HERR_MALFORMED, t->host, "%s:%u: bad chunked body", t->host,
                            (unsigned)t->port);
        res->body_len = (size_t)dl;
    }
    buf[res->body_len] = '\0';
    res->body = buf;
    r->buf = NULL;
    return 0;
}

int http_request_to(const http_target_t *t, const char *method, const char *path,
                    const char *headers, const char *body, size_t body_len, int timeout_ms,
                    http_response_t *res, herald_error_t *err)
{
    memset(res, 0, sizeof *res);
    http_conn_t c = {.fd = http_connect(t->host, t->port, timeout_ms, err)};
    if (c.fd < 0) return -HERR_IO;
    if (t->tls && http_tls_start(&c, t, timeout_ms, err) < 0) {
        http_conn_close(&c);
        return -HERR_IO;
    }
    http_raw_t r = {0};
    int rc = http_send_request(&c, t, method, path, headers, body, body_len, timeout_ms, err);
    if (rc == 0) rc = http_read_response(&c, t, timeout_ms, &r, err);
    if (rc == 0) rc = http_parse_response(&r, t, res, err);
    if (rc == -HERR_IO && err && err->code != HERR_IO)
        herr_set(err, HERR_IO, t->host, "%s:%u: out of memory", t->host, (unsigned)t->port);
    free(r.buf);
    http_conn_close(&c);
    return rc;
}

void http_response_free(http_response_t *res)
{
    free(res->body);
    res->body = NULL;
    res->body_len = 0;
}
