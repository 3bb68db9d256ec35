/* http.h - the broker's HTTP/1.1 server: connections, request parsing, pipelined responses.
 *
 * Requests are parsed with http-parser (Debian libhttp-parser) and handed whole (headers and
 * body) to the API (api.c). Responses leave in request order whatever order they complete
 * in; a connection with too many requests outstanding is not read until they are answered.
 * Limits (protocol.md 10): a header block over 64 KiB gets 431, a declared body over
 * broker.http_body_max 413 before it is read, a POST with neither Content-Length nor chunked
 * encoding 411, a request not complete within broker.http_timeout_s 408; idle keep-alive
 * connections close after broker.http_idle_s. Each of those closes the connection after the
 * response; malformed requests get 400 and close. */
#ifndef HERALD_BK_HTTP_H
#define HERALD_BK_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "err.h"

struct broker;
struct bk_req;
typedef struct bk_http_msg bk_http_msg_t;

#define BK_HTTP_HEADER_MAX   (64u * 1024) /* request line + headers */
#define BK_HTTP_PIPELINE_MAX 64           /* requests outstanding before reading pauses */

typedef enum { BK_HTTP_GET, BK_HTTP_POST, BK_HTTP_OTHER } bk_http_method_t;

/* A complete request, valid during the API call only. */
typedef struct {
    bk_http_method_t method;
    const char *path; /* without the query; not NUL-terminated */
    size_t path_len;
    const char *query; /* after '?', or NULL */
    size_t query_len;
    const char *auth; /* Authorization header value, or NULL */
    size_t auth_len;
    const uint8_t *body;
    size_t body_len;
} bk_http_request_t;

/* Response flags. BK_HTTP_CORS adds Access-Control-Allow-Origin: * (webui.h). */
enum {
    BK_HTTP_RETRY_AFTER = 1u << 0,
    BK_HTTP_CLOSE = 1u << 1,
    BK_HTTP_TEXT = 1u << 2,
    BK_HTTP_CORS = 1u << 3,
};

/* Listen on broker.http. 0, or -HERR_* with err naming the address. */
int bk_http_listen(struct broker *b, herald_error_t *err);
/* Close every connection and the listener (shutdown). */
void bk_http_close(struct broker *b);

/* Answer m (JSON body unless BK_HTTP_TEXT). May be called at once from the API or later
 * (a publish waiting for its seqs); the response goes out when every earlier request of its
 * connection has been answered. m is gone after this call. If the connection closed in the
 * meantime the response is dropped. */
void bk_http_respond(struct broker *b, bk_http_msg_t *m, int status, const char *body, size_t len,
                     unsigned flags);
/* The same with a content type of the caller's (NULL: as bk_http_respond). */
void bk_http_respond_as(struct broker *b, bk_http_msg_t *m, int status, const char *ctype,
                        const char *body, size_t len, unsigned flags);
/* {"error":code,"message":msg} with status (and the flags' extra headers). */
void bk_http_error(struct broker *b, bk_http_msg_t *m, int status, herr_t code, const char *msg);
void bk_http_error_flags(struct broker *b, bk_http_msg_t *m, int status, herr_t code,
                         const char *msg, unsigned flags);

/* A publish request of m completed: render and answer it (pipeline.c calls this). */
void bk_http_req_done(struct broker *b, struct bk_req *req);

/* Timeouts: 408 for requests older than http_timeout_s, close idle connections. Once a
 * second. */
void bk_http_sweep(struct broker *b);

/* Write pending responses (end of each loop pass). */
void bk_http_flush(struct broker *b);

/* Connections now open. */
size_t bk_http_connections(const struct broker *b);

/* The server state without a listener (bk_http_listen calls it). */
void bk_http_init(struct broker *b);
/* Tests and fuzzing: serve requests with fn instead of the API (bk_api_handle). */
typedef void (*bk_http_handler_fn)(struct broker *b, bk_http_msg_t *m, const bk_http_request_t *rq);
void bk_http_set_handler(struct broker *b, bk_http_handler_fn fn);
/* Serve the connected stream socket fd (non-blocking) as an HTTP connection. 0 or -1. */
int bk_http_adopt(struct broker *b, int fd);

/* api.c's response scratch for msgpack bodies (reset per use). */
msgpack_sbuffer *bk_http_scratch(struct broker *b);

#endif
