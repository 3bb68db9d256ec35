/* http_client.c - a tiny blocking HTTP/1.1 client: one request per connection. */
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
#include <unistd.h>

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

static int http_send_all(int fd, const char *p, size_t n, int timeout_ms)
{
    while (n > 0) {
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

int http_request(const char *host, uint16_t port, const char *method, const char *path,
                 const char *headers, const char *body, size_t body_len, int timeout_ms,
                 http_response_t *res, herald_error_t *err)
{
    char req[2048];
    size_t cap = 16384, len = 0;
    char *buf = NULL, *hend = NULL;
    long clen = -1;
    bool chunked = false;
    int rc = -HERR_IO;

    memset(res, 0, sizeof *res);
    int fd = http_connect(host, port, timeout_ms, err);
    if (fd < 0) return -HERR_IO;
    int n =
        snprintf(req, sizeof req,
                 "%s %s HTTP/1.1\r\nHost: %s:%u\r\nConnection: close\r\n"
                 "Content-Length: %zu\r\n%s\r\n",
                 method, path, host, (unsigned)port, body ? body_len : 0, headers ? headers : "");
    if (n < 0 || (size_t)n >= sizeof req) {
        rc = herr_set(err, HERR_TOO_LARGE, path, "request header for %s too long", path);
        goto out;
    }
    if (http_send_all(fd, req, (size_t)n, timeout_ms) < 0 ||
        (body && http_send_all(fd, body, body_len, timeout_ms) < 0)) {
        herr_set(err, HERR_IO, host, "send to %s:%u: %s", host, (unsigned)port, strerror(errno));
        goto out;
    }
    buf = malloc(cap + 1);
    if (!buf) goto out;
    for (;;) {
        if (hend && clen >= 0 && len >= (size_t)(hend - buf) + (size_t)clen) break;
        if (len == cap) {
            if (cap >= HTTP_MAX_RESPONSE) {
                rc = herr_set(err, HERR_TOO_LARGE, host, "response from %s:%u over 16 MiB", host,
                              (unsigned)port);
                goto out;
            }
            char *nb = realloc(buf, cap * 2 + 1);
            if (!nb) goto out;
            buf = nb;
            cap *= 2;
        }
        if (http_wait(fd, POLLIN, timeout_ms) < 0) {
            herr_set(err, HERR_IO, host, "read from %s:%u: %s", host, (unsigned)port,
                     strerror(errno));
            goto out;
        }
        ssize_t r = recv(fd, buf + len, cap - len, 0);
        if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (r < 0) {
            herr_set(err, HERR_IO, host, "read from %s:%u: %s", host, (unsigned)port,
                     strerror(errno));
            goto out;
        }
        if (r == 0) break;
        len += (size_t)r;
        buf[len] = '\0';
        if (!hend && (hend = strstr(buf, "\r\n\r\n"))) {
            hend += 4;
            size_t hl = (size_t)(hend - buf);
            const char *cl = http_header(buf, hl, "Content-Length:");
            const char *te = http_header(buf, hl, "Transfer-Encoding:");
            clen = cl ? strtol(cl, NULL, 10) : -1;
            chunked = te && strncasecmp(te, "chunked", 7) == 0;
        }
        if (chunked && len >= 5 && memcmp(buf + len - 5, "0\r\n\r\n", 5) == 0) break;
    }
    buf[len] = '\0';
    if (!hend || sscanf(buf, "HTTP/1.%*d %d", &res->status) != 1) {
        rc = herr_set(err, HERR_MALFORMED, host, "%s:%u: not an HTTP/1.x response", host,
                      (unsigned)port);
        goto out;
    }
    res->body_len = len - (size_t)(hend - buf);
    if (clen >= 0 && res->body_len > (size_t)clen) res->body_len = (size_t)clen;
    memmove(buf, hend, res->body_len);
    if (chunked) {
        long dl = http_dechunk(buf, res->body_len);
        if (dl < 0) {
            rc = herr_set(err, HERR_MALFORMED, host, "%s:%u: bad chunked body", host,
                          (unsigned)port);
            goto out;
        }
        res->body_len = (size_t)dl;
    }
    buf[res->body_len] = '\0';
    res->body = buf;
    buf = NULL;
    rc = 0;
out:
    if (rc == -HERR_IO && err && err->code != HERR_IO)
        herr_set(err, HERR_IO, host, "%s:%u: out of memory", host, (unsigned)port);
    free(buf);
    close(fd);
    return rc;
}

void http_response_free(http_response_t *res)
{
    free(res->body);
    res->body = NULL;
    res->body_len = 0;
}
