/* http_client.h - a tiny blocking HTTP/1.1 client for the tools (loopback admin APIs),
 * over plain TCP or TLS. */
#ifndef HERALD_HTTP_CLIENT_H
#define HERALD_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef struct {
    int status; /* HTTP status code */
    char *body; /* NUL-terminated, malloc'ed; free with http_response_free */
    size_t body_len;
} http_response_t;

/* One request on a fresh connection ("Connection: close"): method GET or POST, body may be
 * NULL. headers: extra header lines each ending in "\r\n", or NULL. The connect and every
 * read/write are bounded by timeout_ms. Reads until Content-Length bytes or the peer
 * closes. Errors: HERR_IO naming host:port and the failing step, HERR_MALFORMED for a
 * response that is not HTTP/1.x, HERR_TOO_LARGE past 16 MiB. */
int http_request(const char *host, uint16_t port, const char *method, const char *path,
                 const char *headers, const char *body, size_t body_len, int timeout_ms,
                 http_response_t *res, herald_error_t *err);

/* Where a request goes: host:port, over TLS when tls. The server's certificate is verified
 * against cafile (PEM; NULL = the system's trusted CAs) and its name against host. */
typedef struct {
    const char *host;
    uint16_t port;
    bool tls;
    const char *cafile;
} http_target_t;

/* http_request to target t (TLS errors, verification included, are HERR_IO naming the
 * peer and the reason). */
int http_request_to(const http_target_t *t, const char *method, const char *path,
                    const char *headers, const char *body, size_t body_len, int timeout_ms,
                    http_response_t *res, herald_error_t *err);

void http_response_free(http_response_t *res);

#endif
