/* http_parse.c - requests from a connection's bytes (http-parser callbacks): the target,
 * the few headers the broker reads, the body; refusals decided on the headers (411, 413,
 * 414, 431, 100-continue) and the hand-off of each complete request to the handler. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "herald_time.h"
#include "http_int.h"

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
    bk_http_msg_t *m = bk_http_conn_push_msg(c);
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
        jbuf_puts(&c->tx, "HTTP/1.1 100 Continue\r\n\r\n"), bk_http_conn_mark_dirty(b, c);
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
    bk_http_conn_fail(b, c, st, msg);
}

/* Run the parser over the unparsed input, until it is used up, paused or broken. */
void bk_http_conn_parse(broker_t *b, bk_http_conn_t *c)
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
            bk_http_conn_fail(b, c, 400, msg);
            break;
        }
    }
    if (c->rx_off == c->rx_len) c->rx_off = c->rx_len = 0;
    bk_http_conn_update_interest(b, c);
}
