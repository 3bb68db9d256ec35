/* http_int.h - what the broker's HTTP server files share (http.c: connections, I/O and
 * accept; http_parse.c: requests from bytes; http_resp.c: responses in order). Not for the
 * rest of the broker, which sees http.h. */
#ifndef HERALD_BROKER_HTTP_INT_H
#define HERALD_BROKER_HTTP_INT_H

#include <stdlib.h>

#include <http_parser.h>
#include <openssl/ssl.h>

#include "broker.h"
#include "http.h"

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

static inline void bk_http_conn_mark_dirty(broker_t *b, bk_http_conn_t *c)
{
    if (c->dirty) return;
    c->dirty = true;
    c->dirty_next = b->http->dirty;
    b->http->dirty = c;
}

/* A new request slot at the end of c's FIFO (responses leave in this order). */
static inline bk_http_msg_t *bk_http_conn_push_msg(bk_http_conn_t *c)
{
    bk_http_msg_t *m = calloc(1, sizeof *m);
    if (!m) abort();
    m->conn = c;
    if (c->tail)
        c->tail->next = m;
    else
        c->head = m;
    c->tail = m;
    c->outstanding++;
    return m;
}

/* http_parse.c: parse what c has received, queueing requests and calling the handler. */
void bk_http_conn_parse(broker_t *b, bk_http_conn_t *c);

/* http_resp.c: answer the request being parsed with status and an error body, then read
 * no more (the connection closes once the answered responses are out). */
void bk_http_conn_fail(broker_t *b, bk_http_conn_t *c, int status, const char *msg);
/* Read no more requests: the one being parsed is dropped unanswered, the others answered. */
void bk_http_conn_stop_input(bk_http_conn_t *c);

/* http.c */
void bk_http_conn_close(broker_t *b, bk_http_conn_t *c);
/* Free every queued request; an answered one in flight is orphaned. */
void bk_http_conn_drop_queue(bk_http_conn_t *c);
/* Set c's epoll interest from what it waits for (input, output, a TLS handshake). */
void bk_http_conn_update_interest(broker_t *b, bk_http_conn_t *c);

#endif
