/* http_resp.c - the broker's HTTP responses: rendered into the request's slot, written in
 * arrival order (a pipelined connection gets its answers in the order it asked). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "herald_time.h"
#include "http_int.h"

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
            bk_http_conn_drop_queue(c);
            break;
        }
    }
    /* Parsing stopped at the pipelining bound resumes once there is room. */
    if (was_full && c->outstanding < BK_HTTP_PIPELINE_MAX && !c->closing && !c->in_parse)
        bk_http_conn_parse(b, c);
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
    /* Formatted by hand: snprintf was a few per cent of a pipelined publish's CPU. */
    jbuf_t *r = &m->resp;
    jbuf_reset(r);
    jbuf_reserve(r, 200 + strlen(ctype) + len);
    jbuf_puts(r, "HTTP/1.1 ");
    jbuf_put_u64(r, (uint64_t)status);
    jbuf_putc(r, ' ');
    jbuf_puts(r, status_text(status));
    jbuf_puts(r, "\r\nContent-Type: ");
    jbuf_puts(r, ctype);
    jbuf_puts(r, "\r\nContent-Length: ");
    jbuf_put_u64(r, len);
    jbuf_puts(r, "\r\n");
    if (flags & BK_HTTP_RETRY_AFTER) jbuf_puts(r, "Retry-After: 1\r\n");
    if (flags & BK_HTTP_CORS) jbuf_puts(r, "Access-Control-Allow-Origin: *\r\n");
    if (m->close_after) jbuf_puts(r, "Connection: close\r\n");
    jbuf_puts(r, "\r\n");
    jbuf_put(r, body, len);
    m->done = true;
    b->c.http_responses[status / 100 < 6 ? status / 100 : 5]++;
    if (m == c->head) {
        conn_collect(b, c);
        bk_http_conn_mark_dirty(b, c);
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
void bk_http_conn_fail(broker_t *b, bk_http_conn_t *c, int status, const char *msg)
{
    bk_http_msg_t *m = c->cur;
    c->cur = NULL;
    c->started_ns = 0;
    if (!m) m = bk_http_conn_push_msg(c); /* between requests: the error's own slot */
    c->closing = true; /* stop reading; closes once the responses before it are out */
    m->close_after = true;
    b->c.http_errors++;
    if (log_ratelimit_ok(&b->rl_bad, 5)) log_warn("HTTP request refused (%d): %s", status, msg);
    bk_http_error(b, m, status, status == 408 ? HERR_TIMEOUT : HERR_MALFORMED, msg);
    bk_http_conn_update_interest(b, c);
}

/* Read no more requests: the one being parsed (the tail) is dropped unanswered, the others
 * are answered, then the connection closes. */
void bk_http_conn_stop_input(bk_http_conn_t *c)
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
