/* herald.c - libherald: framed msgpack publishing over the broker's native socket (protocol.md 3).
 * */
#include "herald.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "codec.h"
#include "frame.h"

#define HERALD_MAX_RESPONSE (64u * 1024 * 1024)

struct herald_client {
    char address[300];
    char api_key[128]; /* sent as an auth frame on every connection when not empty */
    int fd;
    uint8_t *rx; /* buffered response bytes */
    size_t rx_len, rx_cap;
    size_t outstanding; /* requests sent whose response was not read yet */
};

static int connect_unix(const char *path, herald_error_t *err)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sa.sun_path)
        return herr_set(err, HERR_BAD_VALUE, "address", "socket path too long: %s", path);
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return herr_set(err, HERR_IO, "address", "socket: %s", strerror(errno));
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        int e = errno;
        close(fd);
        return herr_set(err, HERR_IO, "address", "connect %s: %s", path, strerror(e));
    }
    return fd;
}

static int connect_tcp(const char *hostport, herald_error_t *err)
{
    char host[256];
    const char *colon = strrchr(hostport, ':');
    if (!colon || (size_t)(colon - hostport) >= sizeof host)
        return herr_set(err, HERR_BAD_VALUE, "address", "expected tcp:HOST:PORT, got tcp:%s",
                        hostport);
    memcpy(host, hostport, (size_t)(colon - hostport));
    host[colon - hostport] = '\0';
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    int rc = getaddrinfo(host, colon + 1, &hints, &ai);
    if (rc) return herr_set(err, HERR_IO, "address", "resolve %s: %s", host, gai_strerror(rc));
    int fd = -1;
    for (struct addrinfo *a = ai; a; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, 0);
        if (fd < 0) continue;
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) break;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    if (fd < 0) return herr_set(err, HERR_IO, "address", "connect tcp:%s failed", hostport);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static int client_auth(herald_client_t *c, herald_error_t *err);

static int client_open(herald_client_t *c, herald_error_t *err)
{
    int fd = !strncmp(c->address, "tcp:", 4) ? connect_tcp(c->address + 4, err)
                                             : connect_unix(c->address, err);
    if (fd < 0) return fd;
    c->fd = fd;
    c->rx_len = 0;
    c->outstanding = 0;
    int rc = c->api_key[0] ? client_auth(c, err) : 0;
    if (rc < 0) {
        close(c->fd);
        c->fd = -1;
    }
    return rc;
}

herald_client_t *herald_connect_opts(const char *address, const herald_connect_opts_t *opts,
                                     herald_error_t *err)
{
    herald_client_t *c = calloc(1, sizeof *c);
    if (!c) {
        herr_set(err, HERR_INTERNAL, "", "out of memory");
        return NULL;
    }
    snprintf(c->address, sizeof c->address, "%s", address);
    if (opts && opts->api_key) {
        if (strlen(opts->api_key) >= sizeof c->api_key) {
            herr_set(err, HERR_TOO_LONG, "api_key", "api key longer than %zu bytes",
                     sizeof c->api_key - 1);
            free(c);
            return NULL;
        }
        snprintf(c->api_key, sizeof c->api_key, "%s", opts->api_key);
    }
    if (client_open(c, err) < 0) {
        free(c->rx); /* read the refusal of an auth frame */
        free(c);
        return NULL;
    }
    return c;
}

herald_client_t *herald_connect(const char *address, herald_error_t *err)
{
    return herald_connect_opts(address, NULL, err);
}

void herald_close(herald_client_t *c)
{
    if (!c) return;
    if (c->fd >= 0) close(c->fd);
    free(c->rx);
    free(c);
}

int herald_reconnect(herald_client_t *c, herald_error_t *err)
{
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
    return client_open(c, err);
}

static int send_iov(herald_client_t *c, struct iovec *iov, int n, herald_error_t *err)
{
    while (n > 0) {
        ssize_t w = writev(c->fd, iov, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return herr_set(err, HERR_IO, "socket", "write to broker: %s", strerror(errno));
        }
        while (n > 0 && (size_t)w >= iov->iov_len) {
            w -= (ssize_t)iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (uint8_t *)iov->iov_base + w;
            iov->iov_len -= (size_t)w;
        }
    }
    return 0;
}

int herald_send(herald_client_t *c, const uint8_t *body, size_t len, herald_error_t *err)
{
    if (c->fd < 0) return herr_set(err, HERR_IO, "socket", "not connected");
    if (len > UINT32_MAX) return herr_set(err, HERR_TOO_LARGE, "", "frame too large");
    uint8_t hdr[FRAME_HDR];
    frame_put_len(hdr, (uint32_t)len);
    struct iovec iov[2] = {{hdr, FRAME_HDR}, {(void *)body, len}};
    int rc = send_iov(c, iov, 2, err);
    if (rc == 0) c->outstanding++;
    return rc;
}

/* Responses are read in place (a batch's is an array of up to 10,000 maps): no object tree,
 * no allocation. The frame was checked well-formed (codec_check), so every read below is
 * within it. */
static void copy_str(char *dst, size_t cap, const char *s, uint32_t n)
{
    snprintf(dst, cap, "%.*s", (int)n, s);
}

/* One result from the value at p; returns the bytes it spans. */
static size_t result_at(const uint8_t *p, herald_result_t *r)
{
    memset(r, 0, sizeof *r);
    uint32_t pairs;
    size_t off = codec_map_open(p, &pairs);
    if (!off) {
        snprintf(r->error, sizeof r->error, "internal");
        snprintf(r->message, sizeof r->message, "response is not a map");
        return codec_span(p);
    }
    for (uint32_t i = 0; i < pairs; i++) {
        const char *k, *vs;
        uint32_t kl, vl;
        bool str = codec_str_at(p + off, &k, &kl);
        off += codec_span(p + off);
        const uint8_t *v = p + off;
        off += codec_span(v);
        if (!str) continue;
        if (kl == 2 && !memcmp(k, "ok", 2) && (v[0] == 0xc2 || v[0] == 0xc3))
            r->ok = v[0] == 0xc3;
        else if (kl == 9 && !memcmp(k, "duplicate", 9) && (v[0] == 0xc2 || v[0] == 0xc3))
            r->duplicate = v[0] == 0xc3;
        else if (kl == 3 && !memcmp(k, "seq", 3))
            codec_uint_at(v, &r->seq); /* left 0 unless an integer >= 0 */
        else if (kl == 5 && !memcmp(k, "error", 5) && codec_str_at(v, &vs, &vl))
            copy_str(r->error, sizeof r->error, vs, vl);
        else if (kl == 7 && !memcmp(k, "message", 7) && codec_str_at(v, &vs, &vl))
            copy_str(r->message, sizeof r->message, vs, vl);
    }
    return off;
}

/* Read until one whole frame is buffered; returns its total length (header + body). */
static long read_frame(herald_client_t *c, herald_error_t *err)
{
    for (;;) {
        const uint8_t *body;
        size_t blen;
        long n = frame_next(c->rx, c->rx_len, HERALD_MAX_RESPONSE, &body, &blen);
        if (n < 0) return herr_set(err, HERR_MALFORMED, "", "response frame too large");
        if (n > 0) return n;
        if (c->rx_cap - c->rx_len < 65536) {
            size_t cap = c->rx_cap ? c->rx_cap * 2 : 1 << 17;
            uint8_t *p = realloc(c->rx, cap);
            if (!p) return herr_set(err, HERR_INTERNAL, "", "out of memory");
            c->rx = p;
            c->rx_cap = cap;
        }
        ssize_t r = read(c->fd, c->rx + c->rx_len, c->rx_cap - c->rx_len);
        if (r == 0) return herr_set(err, HERR_IO, "socket", "broker closed the connection");
        if (r < 0) {
            if (errno == EINTR) continue;
            return herr_set(err, HERR_IO, "socket", "read from broker: %s", strerror(errno));
        }
        c->rx_len += (size_t)r;
    }
}

long herald_results_parse(const uint8_t *p, size_t len, herald_result_t *res, size_t max)
{
    herald_error_t bad;
    if (codec_check(p, len, HERALD_MAX_RESPONSE, &bad) < 0) return -1;
    uint32_t items;
    size_t off = codec_array_open(p, len, &items);
    if (!off) {
        if (!max) return 0;
        result_at(p, &res[0]);
        return 1;
    }
    long count = 0;
    for (uint32_t i = 0; i < items && (size_t)count < max; i++)
        off += result_at(p + off, &res[count++]);
    return count;
}

long herald_recv_results(herald_client_t *c, herald_result_t *res, size_t max, herald_error_t *err)
{
    if (c->fd < 0) return herr_set(err, HERR_IO, "socket", "not connected");
    if (!c->outstanding) return herr_set(err, HERR_BAD_VALUE, "", "no request outstanding");
    long n = read_frame(c, err);
    if (n < 0) return n;
    long count = herald_results_parse(c->rx + FRAME_HDR, (size_t)n - FRAME_HDR, res, max);
    memmove(c->rx, c->rx + n, c->rx_len - (size_t)n);
    c->rx_len -= (size_t)n;
    c->outstanding--;
    if (count < 0) return herr_set(err, HERR_MALFORMED, "", "undecodable response frame");
    return count;
}

/* {"auth":"<key>"} and its answer, before anything else on the connection. */
static int client_auth(herald_client_t *c, herald_error_t *err)
{
    size_t klen = strlen(c->api_key);
    uint8_t body[8 + sizeof c->api_key] = {0x81, 0xa4, 'a', 'u', 't', 'h', 0xd9, (uint8_t)klen};
    memcpy(body + 8, c->api_key, klen);
    herald_result_t r;
    int rc = herald_send(c, body, 8 + klen, err);
    if (rc < 0) return rc;
    long n = herald_recv_results(c, &r, 1, err);
    if (n < 0) return (int)n;
    if (n != 1) return herr_set(err, HERR_MALFORMED, "", "empty answer to the auth frame");
    if (!r.ok)
        return herr_set(err, HERR_UNAUTHORIZED, "api_key", "broker refused the api key: %s",
                        r.message[0] ? r.message : r.error);
    return 0;
}

int herald_publish(herald_client_t *c, const uint8_t *map, size_t len, herald_result_t *res,
                   herald_error_t *err)
{
    int rc = herald_send(c, map, len, err);
    if (rc < 0) return rc;
    long n = herald_recv_results(c, res, 1, err);
    if (n < 0) return (int)n;
    return n == 1 ? 0 : herr_set(err, HERR_MALFORMED, "", "empty response");
}

int herald_publish_batch(herald_client_t *c, const uint8_t *const *maps, const size_t *lens,
                         size_t n, herald_result_t *res, herald_error_t *err)
{
    if (c->fd < 0) return herr_set(err, HERR_IO, "socket", "not connected");
    if (n > UINT32_MAX) return herr_set(err, HERR_TOO_LARGE, "", "batch too large");
    uint8_t arr[5] = {0xdd, (uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8),
                      (uint8_t)n}; /* array32 header */
    size_t total = sizeof arr;
    for (size_t i = 0; i < n; i++)
        total += lens[i];
    uint8_t *body = malloc(total);
    if (!body) return herr_set(err, HERR_INTERNAL, "", "out of memory");
    memcpy(body, arr, sizeof arr);
    size_t off = sizeof arr;
    for (size_t i = 0; i < n; i++) {
        memcpy(body + off, maps[i], lens[i]);
        off += lens[i];
    }
    int rc = herald_send(c, body, total, err);
    free(body);
    if (rc < 0) return rc;
    long got = herald_recv_results(c, res, n, err);
    if (got < 0) return (int)got;
    if ((size_t)got == n) return 0;
    /* A whole-frame refusal answers with one map: give every item that answer. */
    if (got == 1)
        for (size_t i = 1; i < n; i++)
            res[i] = res[0];
    return 0;
}
